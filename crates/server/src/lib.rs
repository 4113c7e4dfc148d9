//! `cutover-server`: what runs inside `cutover serve`, apart from the
//! command tree. One entry point, [`Server::start`], that the binary's
//! `serve` calls and that tests use directly.
//!
//! ```text
//!  Config (config: read by every other module, imports none of them)
//!     │
//!  Server::start ──▶ Store (open, checked writable)
//!     ├─ reload    the watcher: store ──▶ checked snapshots ──ArcSwap<Catalog>──▶ nameserver
//!     ├─ primary   UPDATE / NOTIFY / AXFR / IXFR / TSIG, routed from the nameserver
//!     │              (Store::update_zone ──▶ snapshot published ──▶ NOERROR; NOTIFY out)
//!     ├─ secondary the zones with a `primary`: refreshed (SOA, IXFR/AXFR) on NOTIFY and
//!     │              the SOA timers, checked, stored; the watcher publishes them
//!     ├─ relay     the mail relay of [mail] on its own runtime
//!     ├─ http      the control plane of [http]: API, dashboard, /metrics, the agents' polls
//!     ├─ scheduler due migration steps, one thread (lease per migration)
//!     └─ agents    the agents' board (jobs per location, leases, offline), shared by
//!                    http and the scheduler; `agents::client` is `cutover agent` itself
//!  RunningServer::wait_for_signal (SIGTERM / SIGINT) ──▶ shutdown: every part stopped
//! ```
//!
//! The module graph has floors: `config` and `targets` import no other
//! module of the crate; `limits`, `reload`, `primary`, `relay` and
//! `scheduler` import only those floors (and `primary` for what it
//! publishes); `http` sits on top. Nothing here imports the binary. The
//! same holds file by file: no two files import each other round a circle,
//! and a `mod.rs` is imported by none of its children (what they share is
//! in a leaf: `http/control.rs`, `http/error.rs`, `config/duration.rs`…).

pub mod agents;
pub mod config;
pub mod http;
pub mod limits;
pub mod mail_fleet;
pub mod primary;
pub mod relay;
pub mod reload;
pub mod scheduler;
pub mod secondary;
pub mod store_wake;
pub mod targets;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use cutover_nameserver::server::{spawn, ServerConfig, ServerHandle};
use cutover_nameserver::Catalog;
use cutover_store::Store;

use crate::config::Config;
use crate::primary::notifier::Notifier;
use crate::primary::{key_ring, Served, StorePrimary};
use crate::reload::{reload_and_notify, Refused, WATCH_INTERVAL};
use crate::secondary::{RefreshThread, Secondaries};

/// The daemon: the nameserver on the store's zones, the primary, the
/// reload watcher, and the relay, control plane and scheduler as the
/// config asks.
pub struct Server;

/// How a server started in code differs from `cutover serve`'s; the
/// default is serve's.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often the reload watcher asks the store whether it changed
    /// ([`WATCH_INTERVAL`] in serve).
    pub watch_interval: Duration,
    /// Whether the migration scheduler runs (it does in serve); off for a
    /// caller that runs its migrations in the foreground itself, as
    /// `cutover migrate run` does.
    pub scheduler: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            watch_interval: WATCH_INTERVAL,
            scheduler: true,
        }
    }
}

/// A started [`Server`]; every part stops when it is shut down or dropped.
pub struct RunningServer {
    /// The nameserver's workers.
    dns: Option<ServerHandle>,
    /// The mail relay, when `[mail]` is configured.
    mail: Option<relay::MailService>,
    /// The control plane, when `[http]` is configured.
    http: Option<http::HttpServer>,
    /// The migration scheduler.
    scheduler: Option<scheduler::Scheduler>,
    /// Set to stop the watcher.
    stop: Arc<AtomicBool>,
    /// The reload watcher's thread.
    watcher: Option<JoinHandle<()>>,
    /// The secondary zones' refresh thread, when a `[[zone]]` names a primary.
    secondary: Option<RefreshThread>,
    /// The store file served.
    store: PathBuf,
}

impl Server {
    /// Opens the store (`store_override`, else the config's), loads and
    /// checks every zone, and starts every part; errors (a store that
    /// cannot be written, a busy port, a bad spool) come back before
    /// anything is served.
    pub fn start(config: &Config, store_override: Option<&Path>) -> anyhow::Result<RunningServer> {
        Server::start_with(config, store_override, &Options::default())
    }

    /// [`Server::start`] with `options` (the demo: a faster watcher and no
    /// scheduler, its migration run in the foreground); the config may be
    /// one built in memory ([`Config::parse`]).
    pub fn start_with(
        config: &Config,
        store_override: Option<&Path>,
        options: &Options,
    ) -> anyhow::Result<RunningServer> {
        limits::raise_descriptor_limit(config);
        let store_path = store_override.unwrap_or(&config.store).to_path_buf();
        let store = Store::open(&store_path)
            .with_context(|| format!("cannot open the store {}", store_path.display()))?;
        if let Some(why) = store.read_only() {
            anyhow::bail!(
                "cutover serve needs to write the store {path}: it stores every UPDATE, runs the \
                 migrations, and SQLite keeps its side files {path}-wal and {path}-shm beside it; \
                 but {why}. Reading commands (zone list, export, show, diff) work on it as it is",
                path = store_path.display(),
            );
        }
        let stored = store.zones()?;
        for policy in &config.zone {
            if !stored.iter().any(|info| info.origin == policy.name) && !policy.is_secondary() {
                tracing::warn!(zone = %policy.name, "configured zone is not in the store; import it with `cutover zone import`");
            }
        }
        let generation = store.generation()?;
        let served: Served = Arc::new(Mutex::new(BTreeMap::new()));
        let catalog = Arc::new(ArcSwap::from_pointee(Catalog::empty()));
        let keys = key_ring(config)?;
        let notifier = Notifier::start(config, &keys)?;
        let mut refused = Refused::new();
        reload_and_notify(&store, &catalog, &served, &mut refused, &notifier);
        let (secondaries, notifies) = Secondaries::of(config, &keys)?;
        let primary = StorePrimary::new(
            config,
            &store_path,
            Arc::clone(&catalog),
            Arc::clone(&served),
            notifier.clone(),
            secondaries.clone(),
        )?;
        let server_config = ServerConfig {
            primary: Some(Arc::new(primary)),
            listen: config.dns.listen.clone(),
            udp_workers: config.dns.udp_workers,
            tcp_idle_timeout: config.dns.tcp_idle_timeout,
            tcp_max_connections: config.dns.tcp_max_connections,
            tcp_max_connections_per_client: config.dns.tcp_max_connections_per_client,
            tcp_pressure_idle_timeout: config.dns.tcp_pressure_idle_timeout,
            rrl: config.dns.rrl.as_ref().map(|rrl| rrl.to_server()),
            ..ServerConfig::default()
        };
        let dns =
            spawn(server_config, Arc::clone(&catalog)).context("cannot start the nameserver")?;
        for addr in dns.local_addrs() {
            tracing::info!("listening on {addr}");
        }
        let mut running = RunningServer {
            dns: Some(dns),
            mail: None,
            http: None,
            scheduler: None,
            stop: Arc::new(AtomicBool::new(false)),
            watcher: None,
            secondary: None,
            store: store_path.clone(),
        };
        // From here on an error drops `running`, which stops what started.
        if let Some(notifies) = notifies {
            running.secondary = Some(RefreshThread::start(
                secondaries,
                notifies,
                &store_path,
                Arc::clone(&catalog),
                Arc::clone(&served),
            )?);
        }
        let (wake, woken) = std::sync::mpsc::channel();
        let publication = http::Publication {
            served: Arc::clone(&served),
            wake,
        };
        running.watcher = Some(watch(
            store,
            generation,
            catalog,
            served,
            refused,
            notifier,
            (options.watch_interval, woken),
            Arc::clone(&running.stop),
        )?);
        running.mail = config
            .mail
            .as_ref()
            .map(relay::MailService::start)
            .transpose()?;
        // The agents' jobs live in memory, shared by the control plane
        // (polls, results) and the scheduler (the migrations' checks).
        let agents = Arc::new(agents::board::Board::new(config.agents.clone()));
        running.http = http::start(config, &store_path, Some(publication), Arc::clone(&agents))?;
        if options.scheduler {
            let mut site = scheduler::Site::of(Some(config));
            site.agents = Some(agents);
            running.scheduler = Some(scheduler::Scheduler::start(&store_path, &site)?);
        }
        Ok(running)
    }
}

/// Starts the reload watcher: when the store's files are written (inotify),
/// when `asked` says so (the control plane wrote a change and waits for it
/// to be served), and at the latest every `interval` ([`WATCH_INTERVAL`] in
/// serve), when the store's generation moved, the changed zones are
/// reloaded, checked and published.
#[allow(clippy::too_many_arguments)]
fn watch(
    store: Store,
    mut generation: u64,
    catalog: Arc<ArcSwap<Catalog>>,
    served: Served,
    mut refused: Refused,
    notifier: Notifier,
    (interval, asked): (Duration, std::sync::mpsc::Receiver<()>),
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<()>> {
    // A commit by any process wakes the watcher at once; the interval is
    // the fallback (store_wake says why both).
    let wake = store_wake::StoreWake::new(store.path())
        .inspect_err(|error| {
            tracing::warn!(
                "no inotify on the store's folder ({error}): changes by other processes are seen at the next poll, every {} ms",
                interval.as_millis()
            )
        })
        .ok();
    std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || {
            // Waits in slices, so a stop is seen within one however long
            // the interval.
            let slice = interval.min(WATCH_INTERVAL);
            let mut checked = std::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let mut woken = match &wake {
                    Some(wake) => wake.wait(slice),
                    None => match asked.recv_timeout(slice) {
                        Ok(()) => true,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                            std::thread::sleep(slice);
                            false
                        }
                    },
                };
                // Every wake-up the control plane asked for is answered by
                // this round (its write also woke inotify, when there is one).
                while asked.try_recv().is_ok() {
                    woken = true;
                }
                if !woken && checked.elapsed() < interval {
                    continue;
                }
                checked = std::time::Instant::now();
                let mut moved = || match store.generation() {
                    Ok(now) if now != generation => {
                        generation = now;
                        reload_and_notify(&store, &catalog, &served, &mut refused, &notifier);
                        true
                    }
                    Ok(_) => false,
                    Err(error) => {
                        tracing::error!("cannot read the store generation: {error}");
                        false
                    }
                };
                match (&wake, woken) {
                    (Some(wake), true) => wake.settle(moved),
                    _ => moved(),
                };
            }
        })
        .context("cannot start the reload watcher")
}

impl RunningServer {
    /// The nameserver's addresses (the port the system chose for `:0`).
    pub fn dns_addrs(&self) -> Vec<SocketAddr> {
        self.dns
            .as_ref()
            .map(|dns| dns.local_addrs())
            .unwrap_or_default()
    }

    /// The mail relay's addresses (the port the system chose for `:0`);
    /// none without `[mail]`.
    pub fn smtp_addrs(&self) -> Vec<SocketAddr> {
        self.mail
            .as_ref()
            .map(|mail| mail.local_addrs().to_vec())
            .unwrap_or_default()
    }

    /// The control plane's address (the port the system chose for `:0`);
    /// `None` without `[http]`.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(http::HttpServer::local_addr)
    }

    /// The store file served.
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// Serves until SIGTERM or SIGINT, then stops every part.
    pub fn wait_for_signal(self) -> anyhow::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the signal runtime")?;
        runtime.block_on(async {
            let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
            let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            }
            anyhow::Ok(())
        })?;
        self.shutdown();
        Ok(())
    }

    /// Stops every part: the scheduler, the control plane, the relay, the
    /// watcher, then the nameserver.
    pub fn shutdown(mut self) {
        self.stop_parts();
    }

    /// Stops what is still running (idempotent).
    fn stop_parts(&mut self) {
        drop(self.scheduler.take());
        drop(self.http.take());
        drop(self.mail.take());
        drop(self.secondary.take());
        self.stop.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        if let Some(dns) = self.dns.take() {
            dns.shutdown();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_parts();
    }
}
