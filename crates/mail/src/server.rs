//! The relay's edge: the tokio listener that drives one session per
//! connection (`inbound`: timeouts, STARTTLS, a cap on sessions and one per
//! client, stress mode, recipient verification), streams messages into the
//! [`Spool`] and commits them before answering 250, the
//! delivery loop (`delivery`) that hands due mail to the [`Courier`] and
//! writes the outcomes back, and the control socket (`Relay::control`).
//!
//! ```text
//!  TcpListener ─► slot? (max_connections) ─no─► 421, closed; refusals logged once per 10 s
//!       │ yes
//!       ▼
//!  connection task ─► Session ─Open/Data/Commit─► spawn_blocking(Incoming, Spool::commit)
//!                        ▲                           │ Ok: Queue::insert, wake
//!                        └──── stored(Ok|Err) ◄──────┘
//!  delivery loop: sweep (expiry, delay DSNs) ─► due batches ─► Courier (one
//!                 task per destination) ─► Queue::record ─► Spool::update/remove
//!                 ─► failure DSNs spooled ─► sleep until next due or woken
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
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
use inbound::{connection, Idlers, SessionSlot};

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
    /// Most simultaneous connections from one client address (an IPv6
    /// client: its /64).
    pub max_connections_per_client: usize,
    /// Most simultaneous sessions in all; more get 421 at once. Past three
    /// quarters of it the relay is under stress.
    pub max_connections: usize,
    /// The command and data timeout under stress (Postfix: 10 s).
    pub stress_timeout: Duration,
    /// How long a destination that failed a recipient probe is not asked
    /// again (its remembered verdicts answer meanwhile).
    pub verify_pause: Duration,
    /// The most recipients the destinations accepted that are remembered
    /// (refused ones: a tenth of it).
    pub verify_cache_size: usize,
    /// How long an accepted recipient is remembered.
    pub verify_positive_ttl: Duration,
    /// How long a refused recipient is remembered.
    pub verify_negative_ttl: Duration,
    /// The most recipient probes running at once.
    pub verify_concurrency: usize,
}

impl RelayConfig {
    /// A config with RFC 5321 §4.5.3.2 timeouts, 10 connections per client,
    /// 1000 in all, and the recipient memory's defaults.
    pub fn new(spool: impl Into<PathBuf>, policy: Policy) -> Self {
        let book = RecipientBook::default();
        RelayConfig {
            spool: spool.into(),
            policy,
            tls: None,
            routes: BTreeMap::new(),
            schedule: Schedule::default(),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            max_connections_per_client: 10,
            max_connections: 1000,
            stress_timeout: Duration::from_secs(10),
            verify_pause: Duration::from_secs(30),
            verify_cache_size: book.capacity,
            verify_positive_ttl: book.positive_ttl,
            verify_negative_ttl: book.negative_ttl,
            verify_concurrency: 16,
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
    /// Clients whose sessions sat idle past the stress timeout, and when:
    /// refused while the relay is under stress (see `inbound`).
    idlers: Mutex<Idlers>,
    /// Sessions open now (each holds a [`SessionSlot`]).
    sessions: AtomicUsize,
    /// Whether the relay is under stress; sessions watch it.
    pressure: watch::Sender<bool>,
    /// Until when (milliseconds since `started`) the relay is under stress
    /// whatever the count (it ran out of file descriptors).
    stressed_until: AtomicU64,
    /// When the relay was opened.
    started: Instant,
    /// The most sessions taken now: `max_connections`, or fewer for a while
    /// after the process ran out of file descriptors (see `stress_for`).
    ceiling: AtomicUsize,
    /// Recipient probes that may start now.
    probes: Semaphore,
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
    book_file: Mutex<RecipientFile>,
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
        let mut book_file = RecipientFile::new(&config.spool);
        let mut book = RecipientBook::default();
        book.pause = config.verify_pause;
        book.capacity = config.verify_cache_size.max(1);
        book.positive_ttl = config.verify_positive_ttl;
        book.negative_ttl = config.verify_negative_ttl;
        if let Err(error) = book_file.load(&mut book, SystemTime::now()) {
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
                idlers: Mutex::new(Idlers::default()),
                sessions: AtomicUsize::new(0),
                pressure: watch::Sender::new(false),
                stressed_until: AtomicU64::new(0),
                started: Instant::now(),
                ceiling: AtomicUsize::new(config.max_connections),
                probes: Semaphore::new(config.verify_concurrency.max(1)),
                config,
                accepted: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                deferred: AtomicU64::new(0),
                bounced: AtomicU64::new(0),
                book: Mutex::new(book),
                book_file: Mutex::new(book_file),
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

    /// Accepts connections on `listener` forever, one task each, within
    /// `max_connections` (more get 421 and are closed at once). A refused
    /// or failed accept is logged once per 10 s with the count since, not
    /// each time; running out of file descriptors puts the relay under
    /// stress for 10 s, so that idle sessions give theirs back.
    pub async fn serve(&self, listener: TcpListener) {
        let interval = Duration::from_secs(10);
        let mut busy = Throttle::new(interval);
        let mut failed = Throttle::new(interval);
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let Some(slot) = SessionSlot::take(&self.shared) else {
                        // Best effort, never waiting: the socket buffer is empty.
                        let _ = stream.try_write(BUSY);
                        if let Some(count) = busy.note(Instant::now()) {
                            tracing::warn!(
                                "mail: {count} connection(s) refused with 421 since the last \
                                 report: max_connections ({}) sessions open",
                                self.shared.config.max_connections
                            );
                        }
                        continue;
                    };
                    let shared = self.shared.clone();
                    tokio::spawn(async move { connection(shared, stream, peer, slot).await });
                }
                Err(error) => {
                    let exhausted =
                        matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                    if exhausted {
                        self.shared.out_of_descriptors(interval);
                    }
                    if let Some(count) = failed.note(Instant::now()) {
                        let ceiling = self.shared.ceiling.load(Ordering::Relaxed);
                        tracing::warn!(
                            %error,
                            "mail: accepting a connection failed {count} time(s) since the last \
                             report{}",
                            if exhausted {
                                format!(
                                    "; under stress, taking at most {ceiling} sessions for 10 s \
                                     (max_connections is above what the process can open)"
                                )
                            } else {
                                String::new()
                            }
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
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

    /// Holds mail (`cutover mail hold`); returns the messages it held.
    pub async fn hold(&self, selector: Selector) -> Result<Vec<String>, RelayError> {
        let effect = lock(&self.shared.queue).hold(&selector);
        self.after_control(effect.changed).await?;
        Ok(effect.ids)
    }

    /// Releases mail (`cutover mail release`); it is due at once. Returns
    /// the messages it released.
    pub async fn release(&self, selector: Selector) -> Result<Vec<String>, RelayError> {
        let effect = lock(&self.shared.queue).release(&selector, SystemTime::now());
        self.after_control(effect.changed).await?;
        Ok(effect.ids)
    }

    /// Makes waiting mail that is not held due now (`cutover mail flush`);
    /// returns the messages due.
    pub async fn flush(&self, selector: Selector) -> Result<Vec<String>, RelayError> {
        let effect = lock(&self.shared.queue).flush(&selector, SystemTime::now());
        self.after_control(effect.changed).await?;
        Ok(effect.ids)
    }

    /// Points `domain` at `destination` (`cutover mail retarget`); held
    /// mail stays held. Returns the messages due now.
    pub async fn retarget(
        &self,
        domain: &str,
        destination: Destination,
    ) -> Result<Vec<String>, RelayError> {
        let retargeted =
            lock(&self.shared.queue).retarget(domain, destination, SystemTime::now(), false);
        self.after_control(retargeted.changed).await?;
        Ok(retargeted.due)
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
            if let Ok(content) = blocking(move || spool.head(&id, control::HEAD)).await {
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

    /// How many recipients the relay remembers from its destinations
    /// (accepted and refused, expired ones not yet dropped included).
    pub fn recipients_remembered(&self) -> usize {
        lock(&self.shared.book).len()
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

/// The answer to a connection over `max_connections`.
const BUSY: &[u8] = b"421 4.7.0 Too many connections, try again later\r\n";

/// Counts occurrences of something logged at most once per interval: the
/// first is reported at once, later ones with the count since the report.
#[derive(Debug)]
struct Throttle {
    /// The interval.
    interval: Duration,
    /// When it was last reported.
    last: Option<Instant>,
    /// Occurrences not yet reported.
    count: u64,
}

impl Throttle {
    /// A throttle reporting at most once per `interval`.
    fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            last: None,
            count: 0,
        }
    }

    /// One occurrence at `now`: Some(occurrences to report) when it is time.
    fn note(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// File descriptors left for the spool, deliveries and probes when the
/// process ran out of them: the sessions taken stay this far below.
const DESCRIPTOR_RESERVE: usize = 32;

impl<C> Shared<C> {
    /// The process ran out of file descriptors: for `period`, the relay is
    /// under stress (idle sessions go) and takes sessions only up to
    /// [`DESCRIPTOR_RESERVE`] below those open now, so that the ones it
    /// keeps can still store their mail.
    fn out_of_descriptors(&self, period: Duration) {
        let sessions = self.sessions.load(Ordering::Acquire);
        let ceiling = sessions.saturating_sub(DESCRIPTOR_RESERVE).max(1);
        self.ceiling.fetch_min(ceiling, Ordering::AcqRel);
        let until = self.started.elapsed() + period;
        self.stressed_until
            .fetch_max(until.as_millis() as u64, Ordering::Relaxed);
        self.update_pressure();
    }

    /// The most sessions taken now (`max_connections` again once the
    /// period after running out of descriptors is over).
    fn ceiling(&self) -> usize {
        let forced =
            self.stressed_until.load(Ordering::Relaxed) > self.started.elapsed().as_millis() as u64;
        if !forced {
            self.ceiling
                .store(self.config.max_connections, Ordering::Release);
        }
        self.ceiling.load(Ordering::Acquire)
    }

    /// Re-evaluates the stress: on from three quarters of `max_connections`
    /// (or while forced), off again below half of it.
    fn update_pressure(&self) {
        let sessions = self.sessions.load(Ordering::Acquire);
        let maximum = self.config.max_connections;
        let forced =
            self.stressed_until.load(Ordering::Relaxed) > self.started.elapsed().as_millis() as u64;
        self.pressure.send_if_modified(|stressed| {
            let next = forced
                || if *stressed {
                    sessions * 2 >= maximum
                } else {
                    sessions * 4 >= maximum * 3
                };
            let changed = next != *stressed;
            *stressed = next;
            changed
        });
    }
}

impl<C: Send + Sync + 'static> Shared<C> {
    /// Persists what a destination said of `address` at `now` (blocking
    /// work off the async threads), rewriting the file when most of it is
    /// superseded.
    async fn remember(self: &Arc<Self>, address: &str, accepted: bool, now: SystemTime) {
        let shared = self.clone();
        let address = address.to_string();
        let written = tokio::task::spawn_blocking(move || {
            let mut file = lock(&shared.book_file);
            file.append(&address, accepted, now)?;
            let entries = {
                let book = lock(&shared.book);
                file.due_for_rewrite(&book).then(|| book.entries(now))
            };
            match entries {
                Some(entries) => file.rewrite(&entries),
                None => Ok(()),
            }
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot remember a verified recipient"),
            Err(error) => tracing::warn!(%error, "cannot remember a verified recipient"),
        }
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
