//! The relay's edge: the tokio listener that drives one session per
//! connection (`inbound`: timeouts, STARTTLS, a cap per client, recipient
//! verification), stores messages in the [`Spool`] before answering 250, the
//! delivery loop (`delivery`) that hands due mail to the [`Courier`] and
//! writes the outcomes back, and the control socket (`Relay::control`).
//!
//! ```text
//!  TcpListener ─► connection task ─► Session ─Message─► spawn_blocking(Spool::store)
//!                                        ▲                   │ Ok: Queue::insert, wake
//!                                        └── stored(Ok|Err) ◄┘
//!  delivery loop: sweep (expiry, delay DSNs) ─► due batches ─► Courier (one
//!                 task per destination) ─► Queue::record ─► Spool::update/remove
//!                 ─► failure DSNs spooled ─► sleep until next due or woken
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::timeout;

use crate::control::{self, Answer, MetricsView, Request, CONTROLS, SOCKET};
use crate::courier::Courier;
use crate::policy::Policy;
use crate::queue::{Destination, DestinationError, Entry, Queue, Schedule, Selector};
use crate::recipients::{RecipientBook, RecipientFile};
use crate::spool::{Spool, SpoolError};

mod delivery;
mod inbound;

use delivery::{delivery_round, persist};
use inbound::connection;

/// A relay that cannot start or a control that cannot be applied.
#[derive(Debug, Error)]
pub enum RelayError {
    /// The spool failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The persisted controls hold a bad destination.
    #[error("spool controls: {0}")]
    Controls(#[from] DestinationError),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The TLS certificate or key does not load.
    #[error("TLS certificate {path}: {reason}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No queued message has this id.
    #[error("no queued message {0}")]
    NoSuchMessage(String),
    /// Another relay runs on this spool (it holds `spool/lock`).
    #[error("another relay runs on the spool {0} (it holds the lock file)")]
    Locked(PathBuf),
    /// The control socket could not be bound.
    #[error("cannot bind the control socket {path}: {source}")]
    Control {
        /// The socket path.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Everything the relay needs besides its courier.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The spool directory.
    pub spool: PathBuf,
    /// The acceptance policy (its `tls_available` is set from `tls`).
    pub policy: Policy,
    /// The STARTTLS certificate, if any.
    pub tls: Option<Arc<ServerConfig>>,
    /// Destination per relayed domain; `*` is the fallback (DSNs).
    pub routes: BTreeMap<String, Destination>,
    /// Retry and expiry timings.
    pub schedule: Schedule,
    /// Longest wait for a command line.
    pub command_timeout: Duration,
    /// Longest wait for more message data.
    pub data_timeout: Duration,
    /// Most simultaneous connections from one client address.
    pub max_connections_per_client: usize,
    /// How long a destination that failed a recipient probe is not asked
    /// again (its remembered verdicts answer meanwhile).
    pub verify_pause: Duration,
}

impl RelayConfig {
    /// A config with RFC 5321 §4.5.3.2 timeouts and 10 connections per client.
    pub fn new(spool: impl Into<PathBuf>, policy: Policy) -> Self {
        RelayConfig {
            spool: spool.into(),
            policy,
            tls: None,
            routes: BTreeMap::new(),
            schedule: Schedule::default(),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            max_connections_per_client: 10,
            verify_pause: Duration::from_secs(30),
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Messages accepted (250 after DATA).
    pub accepted: u64,
    /// Recipients delivered.
    pub delivered: u64,
    /// Recipient attempts deferred.
    pub deferred: u64,
    /// Recipients failed for good.
    pub bounced: u64,
    /// Messages in the queue now.
    pub queued: u64,
    /// Age of the oldest queued message.
    pub oldest: Duration,
}

/// The running relay: listener, spool, queue and courier.
pub struct Relay<C: Courier> {
    /// State shared with the tasks.
    shared: Arc<Shared<C>>,
}

impl<C: Courier> Clone for Relay<C> {
    /// Another handle on the same relay.
    fn clone(&self) -> Self {
        Relay {
            shared: self.shared.clone(),
        }
    }
}

/// State shared by the connection tasks, the delivery loop and the controls.
struct Shared<C> {
    /// The acceptance policy.
    policy: Arc<Policy>,
    /// The STARTTLS certificate (reloadable).
    tls: RwLock<Option<Arc<ServerConfig>>>,
    /// The spool.
    spool: Arc<Spool>,
    /// The queue.
    queue: Mutex<Queue>,
    /// The courier.
    courier: C,
    /// Wakes the delivery loop.
    wake: Notify,
    /// Connections per client address.
    clients: Mutex<HashMap<IpAddr, usize>>,
    /// The timeouts and caps.
    config: RelayConfig,
    /// Messages accepted.
    accepted: AtomicU64,
    /// Recipients delivered.
    delivered: AtomicU64,
    /// Recipient attempts deferred.
    deferred: AtomicU64,
    /// Recipients failed.
    bounced: AtomicU64,
    /// Recipients verified with their destinations, remembered.
    book: Mutex<RecipientBook>,
    /// Where the book is persisted.
    book_file: RecipientFile,
    /// The spool's lock, held as long as the relay lives.
    _lock: std::fs::File,
}

impl<C: Courier> Relay<C> {
    /// Opens the spool, loads the queue where it was, applies saved controls.
    pub fn open(config: RelayConfig, courier: C) -> Result<Self, RelayError> {
        std::fs::create_dir_all(&config.spool).map_err(|source| SpoolError::Io {
            path: config.spool.clone(),
            source,
        })?;
        let lock =
            control::try_lock(&config.spool)?.ok_or(RelayError::Locked(config.spool.clone()))?;
        let spool = Spool::open(&config.spool)?;
        let book_file = RecipientFile::new(&config.spool);
        let mut book = RecipientBook::default();
        book.pause = config.verify_pause;
        if let Err(error) = book_file.load(&mut book) {
            tracing::warn!(%error, "verified recipients not loaded; starting without them");
        }
        let mut queue = Queue::new(config.schedule, config.routes.clone());
        if let Some(controls) = spool.read_file(CONTROLS)? {
            queue.apply_controls(&controls)?;
        }
        for spooled in spool.load()? {
            if spooled.is_finished() {
                spool.remove(&spooled.id)?;
            } else {
                queue.insert(spooled);
            }
        }
        let mut policy = config.policy.clone();
        policy.tls_available = config.tls.is_some();
        Ok(Relay {
            shared: Arc::new(Shared {
                policy: Arc::new(policy),
                tls: RwLock::new(config.tls.clone()),
                spool: Arc::new(spool),
                queue: Mutex::new(queue),
                courier,
                wake: Notify::new(),
                clients: Mutex::new(HashMap::new()),
                config,
                accepted: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                deferred: AtomicU64::new(0),
                bounced: AtomicU64::new(0),
                book: Mutex::new(book),
                book_file,
                _lock: lock,
            }),
        })
    }

    /// Binds `address` and serves it until the task is dropped.
    pub async fn listen(&self, address: SocketAddr) -> Result<TcpListener, RelayError> {
        TcpListener::bind(address)
            .await
            .map_err(|source| RelayError::Listen { address, source })
    }

    /// Accepts connections on `listener` forever, one task each.
    pub async fn serve(&self, listener: TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let shared = self.shared.clone();
            tokio::spawn(async move { connection(shared, stream, peer).await });
        }
    }

    /// Delivers due mail forever (see the module documentation).
    pub async fn deliver(&self) {
        loop {
            let attempted = delivery_round(&self.shared).await;
            if attempted {
                continue;
            }
            let wait = {
                let queue = lock(&self.shared.queue);
                queue
                    .next_due()
                    .map(|due| due.duration_since(SystemTime::now()).unwrap_or_default())
                    .unwrap_or(Duration::from_secs(60))
                    .clamp(Duration::from_millis(10), Duration::from_secs(60))
            };
            let _ = timeout(wait, self.shared.wake.notified()).await;
        }
    }

    /// Replaces the STARTTLS certificate for new connections (None: no STARTTLS).
    pub fn reload_tls(&self, tls: Option<Arc<ServerConfig>>) {
        *self
            .shared
            .tls
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = tls;
    }

    /// The queue listing.
    pub fn list(&self) -> Vec<Entry> {
        lock(&self.shared.queue).list(SystemTime::now())
    }

    /// Holds mail (`cutover mail hold`).
    pub async fn hold(&self, selector: Selector) -> Result<(), RelayError> {
        let changed = lock(&self.shared.queue).hold(&selector);
        self.after_control(changed).await
    }

    /// Releases mail (`cutover mail release`); it is due at once.
    pub async fn release(&self, selector: Selector) -> Result<(), RelayError> {
        let changed = lock(&self.shared.queue).release(&selector, SystemTime::now());
        self.after_control(changed).await
    }

    /// Makes deferred mail due now (`cutover mail flush`).
    pub async fn flush(&self, selector: Selector) -> Result<(), RelayError> {
        let changed = lock(&self.shared.queue).flush(&selector, SystemTime::now());
        self.after_control(changed).await
    }

    /// Points `domain` at `destination` (`cutover mail retarget`).
    pub async fn retarget(&self, domain: &str, destination: Destination) -> Result<(), RelayError> {
        let changed = lock(&self.shared.queue).retarget(domain, destination, SystemTime::now());
        self.after_control(changed).await
    }

    /// Deletes mail without a DSN (`cutover mail delete`).
    pub async fn delete(&self, selector: Selector) -> Result<Vec<String>, RelayError> {
        let removed = lock(&self.shared.queue).delete(&selector);
        if let Selector::Message(id) = &selector {
            if removed.is_empty() {
                return Err(RelayError::NoSuchMessage(id.clone()));
            }
        }
        let spool = self.shared.spool.clone();
        let ids = removed.clone();
        blocking(move || ids.iter().try_for_each(|id| spool.remove(id))).await?;
        Ok(removed)
    }

    /// Carries out one control request (what `cutover mail`, the HTTP API
    /// and the migration engine send); changes are on disk before the answer.
    pub async fn control(&self, request: Request) -> Answer {
        if request == Request::Metrics {
            let metrics = self.metrics();
            return Answer::Metrics(MetricsView {
                accepted: metrics.accepted,
                delivered: metrics.delivered,
                deferred: metrics.deferred,
                bounced: metrics.bounced,
                queued: metrics.queued,
                oldest_seconds: metrics.oldest.as_secs(),
                running: true,
            });
        }
        let (applied, controls) = {
            let mut queue = lock(&self.shared.queue);
            let applied = control::apply(&mut queue, &request, SystemTime::now());
            let controls = applied.controls.then(|| queue.controls());
            (applied, controls)
        };
        let spool = self.shared.spool.clone();
        let removed = applied.removed.clone();
        let written = blocking(move || {
            if let Some(controls) = controls {
                spool.write_file(CONTROLS, &controls)?;
            }
            removed.iter().try_for_each(|id| spool.remove(id))
        })
        .await;
        if let Err(error) = written {
            return Answer::Error(format!("not saved: {error}"));
        }
        if let Err(error) = persist(&self.shared, applied.changed).await {
            return Answer::Error(format!("not saved: {error}"));
        }
        self.shared.wake.notify_one();
        let mut answer = applied.answer.unwrap_or(Answer::Changed(Vec::new()));
        if let Answer::Message(message) = &mut answer {
            let spool = self.shared.spool.clone();
            let id = message.id.clone();
            if let Ok(content) = blocking(move || spool.content(&id)).await {
                message.headers = Some(control::headers(&content));
            }
        }
        answer
    }

    /// Serves [`Relay::control`] on `spool/control.sock` (one JSON line in,
    /// one out, per connection) until the task is dropped.
    pub async fn serve_control(&self) -> Result<(), RelayError> {
        let path = self.shared.config.spool.join(SOCKET);
        // A socket left by a killed relay; we hold the lock, so it is stale.
        let _ = std::fs::remove_file(&path);
        let listener =
            tokio::net::UnixListener::bind(&path).map_err(|source| RelayError::Control {
                path: path.clone(),
                source,
            })?;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let relay = self.clone();
            tokio::spawn(async move { relay.control_connection(stream).await });
        }
    }

    /// One control connection: a request line, the answer line.
    async fn control_connection(&self, stream: tokio::net::UnixStream) {
        let (reader, mut writer) = stream.into_split();
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(reader.take(1 << 16));
        let read = timeout(
            Duration::from_secs(10),
            tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line),
        )
        .await;
        if !matches!(read, Ok(Ok(count)) if count > 0) {
            return;
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(request) => self.control(request).await,
            Err(error) => Answer::Error(format!("bad control request: {error}")),
        };
        let Ok(mut reply) = serde_json::to_string(&answer) else {
            return;
        };
        reply.push('\n');
        let _ = writer.write_all(reply.as_bytes()).await;
    }

    /// The counters and queue gauges.
    pub fn metrics(&self) -> Metrics {
        let queue = lock(&self.shared.queue);
        let now = SystemTime::now();
        let entries = queue.list(now);
        Metrics {
            accepted: self.shared.accepted.load(Ordering::Relaxed),
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            deferred: self.shared.deferred.load(Ordering::Relaxed),
            bounced: self.shared.bounced.load(Ordering::Relaxed),
            queued: entries.len() as u64,
            oldest: entries
                .iter()
                .map(|entry| entry.age)
                .max()
                .unwrap_or_default(),
        }
    }

    /// Persists the controls and the changed messages, then wakes delivery.
    async fn after_control(&self, changed: Vec<String>) -> Result<(), RelayError> {
        let controls = lock(&self.shared.queue).controls();
        let spool = self.shared.spool.clone();
        blocking(move || spool.write_file(CONTROLS, &controls)).await?;
        persist(&self.shared, changed).await?;
        self.shared.wake.notify_one();
        Ok(())
    }
}

/// Loads a PEM certificate chain and private key into a STARTTLS config.
pub fn tls_from_pem(certificate: &Path, key: &Path) -> Result<Arc<ServerConfig>, RelayError> {
    let failure = |path: &Path, reason: String| RelayError::Tls {
        path: path.to_path_buf(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .map_err(|error| failure(certificate, error.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|error| failure(certificate, error.to_string()))?;
    if chain.is_empty() {
        return Err(failure(certificate, "no certificate in file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|error| failure(key, error.to_string()))?;
    tls_from_der(chain, key).map_err(|reason| failure(certificate, reason))
}

/// A STARTTLS config from DER certificate chain and key (ring provider).
pub fn tls_from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, String> {
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map(Arc::new)
        .map_err(|error| error.to_string())
}

/// Locks a mutex, recovering from a poisoned lock (the data stays usable).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Runs blocking spool work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, SpoolError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => Err(SpoolError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(error.to_string()),
        }),
    }
}
