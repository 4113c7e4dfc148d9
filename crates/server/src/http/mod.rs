//! The control plane of `cutover serve`: the JSON API under `/api/v1`, the
//! dashboard at `/`, `/metrics`, served when `[http] listen` is set.
//!
//! ```text
//!  connections (cap, header and send timeouts) ──▶ cutover_api::ROUTES ──router()──▶ one axum route per entry:
//!     Public ──────────────────────────────────────────────────────────────▶ handler
//!     Read/Probe/Admin ──auth::require(scope)──▶ [budget] ──▶ [body::read] ──▶ handler
//!                       (401 no/bad token, 403 scope)  (429)    (415, 413, 408)
//!
//!  handlers ──spawn_blocking──▶ Store (zones, records: Store::edit, all or nothing)
//!                          └──▶ MailControl (the relay's control socket, or the spool)
//!          ──probes: targets checked (403), budget taken──▶ `cutover check|verify|migrate --json`
//!                          (/proc/self/exe, a child stopped at [http] probe_timeout)
//!  errors ──ApiError──▶ { "error": { "code", "message" } } with its status;
//!  body::json_errors turns any other error answer into the same
//! ```
//!
//! The server runs on its own thread and tokio runtime, so a slow request
//! never delays the nameserver or the reload watcher.
//!
//! What the handlers share lives in leaves they import, never here:
//! `control` (`Control`), `error` (`ApiError`, `ApiResult`, `parse_body`,
//! `zone_name`), `blocking`, `caller` (`Caller`). This file declares the
//! modules and builds the router and the server from them.

mod agents;
mod auth;
mod blocking;
mod body;
mod budget;
mod caller;
mod checks;
mod connections;
mod control;
mod dashboard;
mod documents;
mod edits;
mod error;
mod events;
mod mail;
mod metrics;
mod migrations;
mod probes;
mod rrsets;
pub mod tokens;
mod zones;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use cutover_api::{ErrorCode, Method, RouteId, Scope, ROUTES};

use self::blocking::BLOCKING_THREADS;
use self::budget::Work;
use self::connections::Limits;
pub use self::control::{Control, Publication};
use self::error::ApiError;

/// The route's bound, if its work is bounded per token and in total (the
/// propagation matrix takes its own, only when it asks the servers).
fn work_of(id: RouteId) -> Option<Work> {
    match id {
        RouteId::CheckRun
        | RouteId::VerifyRun
        | RouteId::MigrationPlan
        | RouteId::MigrationCreate
        | RouteId::CheckFrom => Some(Work::Probe),
        RouteId::Events | RouteId::MigrationEvents => Some(Work::Stream),
        _ => None,
    }
}

/// The axum method filter of a table method.
fn filter(method: Method) -> MethodFilter {
    match method {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Delete => MethodFilter::DELETE,
        Method::Patch => MethodFilter::PATCH,
    }
}

/// The handler of a route, on the route's method from the table.
fn handler(id: RouteId, method: MethodFilter) -> MethodRouter<Control> {
    match id {
        RouteId::Dashboard => on(method, dashboard::page),
        RouteId::DashboardScript => on(method, dashboard::script),
        RouteId::DashboardStyle => on(method, dashboard::style),
        RouteId::Metrics => on(method, metrics::scrape),
        RouteId::OpenApi => on(method, openapi),
        RouteId::WhoAmI => on(method, auth::whoami),
        RouteId::ZoneList => on(method, zones::list),
        RouteId::ZoneShow => on(method, zones::show),
        RouteId::ZoneExport => on(method, zones::export),
        RouteId::ZoneVersions => on(method, zones::versions),
        RouteId::ZoneDiff => on(method, zones::diff),
        RouteId::RecordChange => on(method, zones::change),
        RouteId::RrsetPatch => on(method, rrsets::patch),
        RouteId::CheckRun => on(method, checks::check),
        RouteId::VerifyRun => on(method, checks::verify),
        RouteId::MailQueue => on(method, mail::queue),
        RouteId::MailShow => on(method, mail::show),
        RouteId::MailHold => on(method, mail::hold),
        RouteId::MailRelease => on(method, mail::release),
        RouteId::MailRetarget => on(method, mail::retarget),
        RouteId::MailFlush => on(method, mail::flush),
        RouteId::Events => on(method, events::stream),
        RouteId::MigrationList => on(method, migrations::list),
        RouteId::MigrationCreate => on(method, migrations::create),
        RouteId::MigrationPlan => on(method, migrations::plan),
        RouteId::MigrationShow => on(method, migrations::show),
        RouteId::MigrationAudit => on(method, migrations::audit),
        RouteId::MigrationPropagation => on(method, migrations::propagation),
        RouteId::MigrationPause => on(method, migrations::pause),
        RouteId::MigrationResume => on(method, migrations::resume),
        RouteId::MigrationAbort => on(method, migrations::abort),
        RouteId::MigrationRollback => on(method, migrations::rollback),
        RouteId::MigrationApprove => on(method, migrations::approve),
        RouteId::MigrationEvents => on(method, migrations::events),
        RouteId::MigrationObservations => on(method, migrations::observations),
        RouteId::AgentList => on(method, agents::list),
        RouteId::AgentPoll => on(method, agents::poll),
        RouteId::AgentReport => on(method, agents::report),
        RouteId::CheckFrom => on(method, agents::check_from),
    }
}

/// The router: every route of the table, guarded by its scope, its work
/// bounded, its body read (after the token check, so that no one without
/// a token can keep a request open).
pub fn router(control: Control) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        let mut method_router = handler(route.id, filter(route.method));
        if route.request.is_some() {
            method_router = method_router.route_layer(axum::middleware::from_fn_with_state(
                control.body_timeout,
                body::read,
            ));
        }
        if let Some(work) = work_of(route.id) {
            method_router = method_router.route_layer(axum::middleware::from_fn_with_state(
                (control.clone(), work),
                auth::bounded,
            ));
        }
        if route.scope != Scope::Public {
            method_router = method_router.route_layer(axum::middleware::from_fn_with_state(
                (control.clone(), route.scope),
                auth::require,
            ));
        }
        router = router.route(route.path, method_router);
    }
    router
        .fallback(not_found)
        .layer(axum::middleware::map_response(no_store))
        .layer(axum::middleware::from_fn(body::json_errors))
        .layer(axum::middleware::from_fn(body::catch_panics))
        .with_state(control)
}

/// Answers are live data: no cache may keep them.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

/// A path no route serves.
async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route {} {}", request.method(), request.uri().path()),
    )
}

/// `GET /api/v1/openapi.json`: the route table's operations, with the
/// schemas of the API's types and of the migration documents it serves.
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(cutover_api::openapi::document(
        env!("CARGO_PKG_VERSION"),
        documents::schemas(),
    ))
}

/// Starts the control plane of `cutover serve` when `[http]` is configured.
pub fn start(
    config: &crate::config::Config,
    store_path: &std::path::Path,
    publication: Option<Publication>,
    agents: Arc<crate::agents::board::Board>,
) -> anyhow::Result<Option<HttpServer>> {
    let Some(http) = &config.http else {
        return Ok(None);
    };
    http.validate()
        .map_err(|e| anyhow::anyhow!("[http]: {e}"))?;
    let spool = config.mail.as_ref().map(|mail| mail.spool.clone());
    let tls = match (&http.tls_cert, &http.tls_key) {
        (Some(cert), Some(key)) => Some(
            cutover_mail::server::tls_from_pem(cert, key)
                .map_err(|e| anyhow::anyhow!("[http] tls_cert/tls_key: {e}"))?,
        ),
        (None, None) => None,
        _ => anyhow::bail!("[http]: tls_cert and tls_key go together"),
    };
    let mut control = Control::open(store_path, spool, http, &config.dns.listen)?;
    control.publication = publication;
    control.agents = agents;
    control.config = (!config.source.as_os_str().is_empty())
        .then(|| std::path::absolute(&config.source).unwrap_or_else(|_| config.source.clone()));
    control.secondary_zones = std::sync::Arc::new(
        config
            .zone
            .iter()
            .filter(|zone| zone.is_secondary())
            .map(|zone| (zone.name.clone(), zone.primary.clone()))
            .collect(),
    );
    let limits = Limits {
        max_connections: http.max_connections,
        header_timeout: http.header_timeout,
    };
    HttpServer::spawn(http.listen, control, tls, limits).map(Some)
}

/// A running control plane; dropping it stops it.
pub struct HttpServer {
    /// Tells the server to stop.
    stop: tokio::sync::watch::Sender<bool>,
    /// The server's thread.
    thread: Option<JoinHandle<()>>,
    /// The address it listens on (the port the system chose for `:0`).
    local_addr: SocketAddr,
}

impl HttpServer {
    /// The address it listens on (the port the system chose for `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Binds `listen` and serves the control plane on a thread of its own.
    pub fn spawn(
        listen: SocketAddr,
        control: Control,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Limits,
    ) -> anyhow::Result<HttpServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            // Store reads and token lookups are short; probes are child
            // processes awaited without a thread. A flood queues here rather
            // than growing the process by hundreds of threads.
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_name("cutover-http")
            .enable_all()
            .build()
            .context("cannot start the control plane's runtime")?;
        let listener = runtime
            .block_on(async {
                let socket = match listen {
                    SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
                    SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
                }?;
                socket.set_reuseaddr(true)?;
                socket.bind(listen)?;
                socket.listen(1024)
            })
            .with_context(|| format!("[http] listen: cannot bind {listen}"))?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let registry = control.connections.clone();
        let app = router(control);
        let thread = std::thread::Builder::new()
            .name("cutover-http-main".into())
            .spawn(move || {
                runtime.block_on(async {
                    connections::serve(listener, app, tls, limits, registry.clone(), stopped).await;
                    // Each connection finishes its answer (a second at most).
                    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
                    while registry.open() > 0 && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        tracing::info!(
            "control plane on {scheme}://{local_addr}/ (at most {} connections)",
            limits.max_connections
        );
        Ok(HttpServer {
            stop,
            thread: Some(thread),
            local_addr,
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
