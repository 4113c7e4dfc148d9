//! The control plane of `cutover serve`: the JSON API under `/api/v1`, the
//! dashboard at `/`, `/metrics`, served when `[http] listen` is set.
//!
//! ```text
//!  cutover_api::ROUTES ──router()──▶ one axum route per entry:
//!     Public ──────────────────────────────▶ handler
//!     Read/Admin ──auth::require(scope)──▶ handler      (401 no/bad token, 403 scope)
//!
//!  handlers ──spawn_blocking──▶ Store (zones, records: Store::edit, all or nothing)
//!                          └──▶ MailControl (the relay's control socket, or the spool)
//!                          └──▶ `cutover check|verify --json` (this binary, a child process)
//!  errors ──ApiError──▶ { "error": { "code", "message" } } with its status
//! ```
//!
//! The server runs on its own thread and tokio runtime, so a slow request
//! never delays the nameserver or the reload watcher.

mod auth;
mod checks;
mod dashboard;
mod events;
mod mail;
mod metrics;
mod migrations;
mod tls;
pub mod tokens;
mod zones;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use cutover_api::{ErrorBody, ErrorCode, Method, RouteId, Scope, ROUTES};
use cutover_store::{Store, StoreError};

use self::tokens::TokenBook;

/// The `[http]` section of the config.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where the API, dashboard and /metrics listen, e.g. "127.0.0.1:8053".
    pub listen: SocketAddr,
    /// The certificate chain (PEM) for HTTPS; plain HTTP without it.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); required with `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

/// What the handlers share.
#[derive(Clone)]
pub struct Control {
    /// The store (its own connection; `&Store` is `Sync`).
    store: Arc<Store>,
    /// The API tokens.
    tokens: Arc<TokenBook>,
    /// The relay's spool directory, when mail is configured.
    mail_spool: Option<PathBuf>,
    /// When the control plane started, for `cutover_uptime_seconds`.
    started: std::time::Instant,
    /// The last propagation matrix of each migration and when it was asked,
    /// so open dashboards share one `cutover check` a second.
    matrices: Arc<
        std::sync::Mutex<
            std::collections::HashMap<i64, (std::time::Instant, cutover_api::Propagation)>,
        >,
    >,
}

impl Control {
    /// Opens the store and the token table at `store_path`.
    pub fn open(
        store_path: &std::path::Path,
        mail_spool: Option<PathBuf>,
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
        })
    }
}

/// An error answer: a code (which decides the status) and a sentence.
#[derive(Debug)]
pub struct ApiError {
    /// What kind of failure.
    code: ErrorCode,
    /// For people.
    message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// A 400 for input that does not parse or make sense.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    /// A 500 for a failure on our side.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let code = match &error {
            StoreError::ZoneNotFound(_) | StoreError::VersionNotFound { .. } => ErrorCode::NotFound,
            StoreError::Invalid { .. }
            | StoreError::Edit { .. }
            | StoreError::Diff { .. }
            | StoreError::SerialMismatch { .. }
            | StoreError::SerialNotNewer { .. }
            | StoreError::ZoneExists(_) => ErrorCode::Rejected,
            _ => ErrorCode::Internal,
        };
        ApiError::new(code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorBody::new(self.code, self.message))).into_response()
    }
}

/// A handler's outcome.
pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// Runs blocking work (SQLite, child processes, the mail control socket)
/// off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
}

/// A JSON body parsed by serde, with a JSON error when it does not parse.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))
}

/// The axum method filter of a table method.
fn filter(method: Method) -> MethodFilter {
    match method {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Delete => MethodFilter::DELETE,
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
        RouteId::MigrationEvents => on(method, migrations::events),
    }
}

/// The router: every route of the table, guarded by its scope.
pub fn router(control: Control) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        let mut method_router = handler(route.id, filter(route.method));
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

/// `GET /api/v1/openapi.json`.
async fn openapi() -> Json<serde_json::Value> {
    Json(cutover_api::openapi::document(env!("CARGO_PKG_VERSION")))
}

/// Starts the control plane of `cutover serve` when `[http]` is configured.
pub fn start(
    config: &crate::config::Config,
    store_path: &std::path::Path,
) -> anyhow::Result<Option<HttpServer>> {
    let Some(http) = &config.http else {
        return Ok(None);
    };
    let spool = config.mail.as_ref().map(|mail| mail.spool.clone());
    let tls = match (&http.tls_cert, &http.tls_key) {
        (Some(cert), Some(key)) => Some(
            cutover_mail::server::tls_from_pem(cert, key)
                .map_err(|e| anyhow::anyhow!("[http] tls_cert/tls_key: {e}"))?,
        ),
        (None, None) => None,
        _ => anyhow::bail!("[http]: tls_cert and tls_key go together"),
    };
    let control = Control::open(store_path, spool)?;
    HttpServer::spawn(http.listen, control, tls).map(Some)
}

/// A running control plane; dropping it stops it.
pub struct HttpServer {
    /// Tells the server to stop.
    stop: tokio::sync::watch::Sender<bool>,
    /// The server's thread.
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `listen` and serves the control plane on a thread of its own.
    pub fn spawn(
        listen: SocketAddr,
        control: Control,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> anyhow::Result<HttpServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cutover-http")
            .enable_all()
            .build()
            .context("cannot start the control plane's runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(listen))
            .with_context(|| format!("[http] listen: cannot bind {listen}"))?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let app = router(control);
        let thread = std::thread::Builder::new()
            .name("cutover-http-main".into())
            .spawn(move || {
                let (mut graceful, mut hard) = (stopped.clone(), stopped);
                if let Some(tls) = tls {
                    runtime.block_on(tls::serve(listener, app, tls, graceful));
                    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
                    return;
                }
                runtime.block_on(async move {
                    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                        let _ = graceful.wait_for(|stop| *stop).await;
                    });
                    // Event streams never end by themselves: a second after
                    // the stop, whatever is still open is cut.
                    let deadline = async move {
                        let _ = hard.wait_for(|stop| *stop).await;
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    };
                    tokio::select! {
                        served = server => if let Err(error) = served {
                            tracing::error!("the control plane stopped: {error}");
                        },
                        () = deadline => {}
                    }
                });
                runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            })?;
        tracing::info!("control plane on {scheme}://{local_addr}/");
        Ok(HttpServer {
            stop,
            thread: Some(thread),
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
