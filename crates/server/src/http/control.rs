//! What every handler of the control plane shares: the store, the
//! tokens, the bounds of its work and its probes ([`Control`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cutover_store::Store;

use super::budget::Budget;
use super::connections::Registry;
use super::probes::Probes;
use super::tokens::TokenBook;
use crate::config::http::HttpConfig;

/// What the handlers share.
#[derive(Clone)]
pub struct Control {
    /// The store (its own connection; `&Store` is `Sync`).
    pub(super) store: Arc<Store>,
    /// The API tokens.
    pub(super) tokens: Arc<TokenBook>,
    /// The relay's spool directory, when mail is configured.
    pub(super) mail_spool: Option<PathBuf>,
    /// When the control plane started, for `cutover_uptime_seconds`.
    pub(super) started: std::time::Instant,
    /// The last propagation matrix of each migration and when it was asked,
    /// so open dashboards share one `cutover check` a second.
    pub(super) matrices: Arc<
        std::sync::Mutex<
            std::collections::HashMap<i64, (std::time::Instant, cutover_api::Propagation)>,
        >,
    >,
    /// One propagation check per migration at a time: the others wait for
    /// its matrix.
    pub(super) asking:
        Arc<std::sync::Mutex<std::collections::HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
    /// The work bounds (probes, event streams).
    pub(super) budget: Budget,
    /// Probe targets, the probe timeout, the migration files' directory.
    pub(super) probes: Arc<Probes>,
    /// `[http] body_timeout`.
    pub(super) body_timeout: Duration,
    /// The open connections (for /metrics).
    pub(super) connections: Arc<Registry>,
    /// serve's config file (absolute), passed to the `migrate plan|start`
    /// children so they check the same site.
    pub(super) config: Option<PathBuf>,
    /// The zones serve is a secondary of, with their primaries: their
    /// records change on the primary only.
    pub(super) secondary_zones:
        Arc<std::collections::BTreeMap<cutover_zone::Name, Vec<SocketAddr>>>,
    /// What serve publishes, so a change is answered once it is served
    /// (none when the control plane runs without a nameserver).
    pub(super) publication: Option<Publication>,
    /// The `cutover agent`s and their jobs, shared with the scheduler.
    pub(super) agents: Arc<crate::agents::board::Board>,
}

/// The nameserver's published versions, and the way to wake its reload
/// watcher at once after a change.
#[derive(Clone)]
pub struct Publication {
    /// The serial published for each zone.
    pub served: crate::primary::Served,
    /// Wakes the reload watcher (it otherwise looks every 250 ms).
    pub wake: std::sync::mpsc::Sender<()>,
}

impl Control {
    /// Opens the store and the token table at `store_path`, with the bounds
    /// of `http`; `dns_listen` are the nameserver's own addresses (probes
    /// may ask them).
    pub fn open(
        store_path: &std::path::Path,
        mail_spool: Option<PathBuf>,
        http: &HttpConfig,
        dns_listen: &[SocketAddr],
    ) -> anyhow::Result<Control> {
        let store = Store::open(store_path)
            .with_context(|| format!("cannot open the store {}", store_path.display()))?;
        let tokens = TokenBook::open(store_path)?;
        Ok(Control {
            store: Arc::new(store),
            tokens: Arc::new(tokens),
            mail_spool,
            started: std::time::Instant::now(),
            matrices: Arc::default(),
            asking: Arc::default(),
            budget: Budget::new(http.max_probes, http.max_probes_per_token),
            probes: Arc::new(Probes::new(
                http.probe_allow.clone(),
                dns_listen,
                http.probe_timeout,
                http.migration_dir.clone(),
            )),
            body_timeout: http.body_timeout,
            connections: Arc::new(Registry::new(http.max_connections)),
            config: None,
            secondary_zones: Arc::default(),
            publication: None,
            agents: Arc::new(crate::agents::board::Board::new(Default::default())),
        })
    }
}
