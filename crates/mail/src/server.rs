//! The relay's edge: the tokio listener that drives one [`Session`] per
//! connection (timeouts, STARTTLS, a cap per client), stores messages in the
//! [`Spool`] before answering 250, and the delivery loop that hands due mail
//! to the [`Courier`] and writes the outcomes back.
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::courier::{Courier, Parcel};
use crate::dsn::{self, ReportKind};
use crate::policy::Policy;
use crate::queue::{
    Destination, DestinationError, Entry, Outcome, Queue, Reports, Schedule, Selector,
};
use crate::session::{Event, Message, Session};
use crate::spool::{Spool, SpoolError};

/// The name of the spool file holding the queue controls.
const CONTROLS: &str = "controls";

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
}

impl<C: Courier> Relay<C> {
    /// Opens the spool, loads the queue where it was, applies saved controls.
    pub fn open(config: RelayConfig, courier: C) -> Result<Self, RelayError> {
        let spool = Spool::open(&config.spool)?;
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

/// Writes the statuses of `ids` to the spool, removing finished messages.
async fn persist<C>(shared: &Arc<Shared<C>>, ids: Vec<String>) -> Result<(), SpoolError> {
    let mut writes = Vec::new();
    {
        let mut queue = lock(&shared.queue);
        for id in ids {
            let finished = queue
                .message(&id)
                .is_some_and(|spooled| spooled.is_finished());
            if finished {
                queue.forget(&id);
                writes.push((id, None));
            } else if let Some(spooled) = queue.message(&id) {
                writes.push((id, Some(spooled.clone())));
            }
        }
    }
    let spool = shared.spool.clone();
    blocking(move || {
        for (id, spooled) in writes {
            match spooled {
                Some(spooled) => spool.update(&spooled)?,
                None => spool.remove(&id)?,
            }
        }
        Ok(())
    })
    .await
}

/// Spools the DSNs for `reports`; returns how many recipients they cover.
async fn send_reports<C>(shared: &Arc<Shared<C>>, reports: Reports) -> Result<(), SpoolError> {
    let now = SystemTime::now();
    let mut wanted = Vec::new();
    {
        let queue = lock(&shared.queue);
        for (kind, list) in [
            (ReportKind::Failed, reports.failed),
            (ReportKind::Delayed, reports.delayed),
        ] {
            for (id, recipients) in list {
                if let Some(spooled) = queue.message(&id) {
                    wanted.push((kind, spooled.clone(), recipients));
                }
            }
        }
    }
    for (kind, spooled, recipients) in wanted {
        if kind == ReportKind::Failed {
            shared
                .bounced
                .fetch_add(recipients.len() as u64, Ordering::Relaxed);
        }
        let spool = shared.spool.clone();
        let hostname = shared.policy.hostname.clone();
        let stored = blocking(move || {
            let content = spool.content(&spooled.id)?;
            match dsn::report(&spooled, &content, &recipients, kind, &hostname, now) {
                Some(report) => spool.store(&report, now).map(Some),
                None => Ok(None),
            }
        })
        .await?;
        if let Some(report) = stored {
            lock(&shared.queue).insert(report);
        }
    }
    Ok(())
}

/// One round: sweep, deliver everything due, record. Returns whether any
/// delivery was attempted.
async fn delivery_round<C: Courier>(shared: &Arc<Shared<C>>) -> bool {
    let now = SystemTime::now();
    let (reports, changed) = lock(&shared.queue).sweep(now);
    if let Err(error) = send_reports(shared, reports).await {
        tracing::error!(%error, "spooling delay/expiry reports");
    }
    if let Err(error) = persist(shared, changed).await {
        tracing::error!(%error, "persisting swept statuses");
    }
    let batches = lock(&shared.queue).due(now);
    if batches.is_empty() {
        return false;
    }
    let mut tasks = JoinSet::new();
    for batch in batches {
        let mut parcels = Vec::new();
        let mut items = Vec::new();
        for item in batch.items {
            let Some(spooled) = lock(&shared.queue).message(&item.id).cloned() else {
                continue;
            };
            let spool = shared.spool.clone();
            let id = item.id.clone();
            let content = match blocking(move || spool.content(&id)).await {
                Ok(content) => Arc::new(content),
                Err(error) => {
                    tracing::error!(%error, id = %item.id, "reading spooled content");
                    continue;
                }
            };
            let mut envelope = spooled.envelope.clone();
            envelope.recipients = item
                .recipients
                .iter()
                .map(|&index| spooled.envelope.recipients[index].clone())
                .collect();
            parcels.push(Parcel { envelope, content });
            items.push(item);
        }
        let shared = shared.clone();
        let destination = batch.destination;
        tasks.spawn(async move {
            let outcomes = shared.courier.deliver(&destination, &parcels).await;
            (items, outcomes)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let Ok((items, outcomes)) = joined else {
            continue;
        };
        let now = SystemTime::now();
        let mut reports = Reports::default();
        let mut changed = Vec::new();
        for (item, outcomes) in items.into_iter().zip(outcomes) {
            for outcome in &outcomes {
                let counter = match outcome {
                    Outcome::Delivered => &shared.delivered,
                    Outcome::Temporary(_) => &shared.deferred,
                    Outcome::Permanent(_) => continue,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            let pairs: Vec<(usize, Outcome)> =
                item.recipients.iter().copied().zip(outcomes).collect();
            let recorded = lock(&shared.queue).record(&item.id, &pairs, now, fastrand::f64());
            reports.failed.extend(recorded.failed);
            changed.push(item.id);
        }
        if let Err(error) = send_reports(shared, reports).await {
            tracing::error!(%error, "spooling failure reports");
        }
        if let Err(error) = persist(shared, changed).await {
            tracing::error!(%error, "persisting delivery outcomes");
        }
    }
    true
}

/// A client connection, plain or TLS.
enum Stream {
    /// Before STARTTLS.
    Plain(TcpStream),
    /// After STARTTLS.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Stream {
    /// The stream as one reader/writer.
    fn io(&mut self) -> &mut (dyn Io + Send) {
        match self {
            Stream::Plain(stream) => stream,
            Stream::Tls(stream) => stream.as_mut(),
        }
    }
}

/// Async read and write together.
trait Io: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// Decrements the per-client count when a connection ends.
struct ClientSlot<'a> {
    /// The counts.
    clients: &'a Mutex<HashMap<IpAddr, usize>>,
    /// This client.
    address: IpAddr,
}

impl Drop for ClientSlot<'_> {
    /// Frees the slot.
    fn drop(&mut self) {
        let mut clients = lock(self.clients);
        if let Some(count) = clients.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                clients.remove(&self.address);
            }
        }
    }
}

/// Serves one client connection to its end.
async fn connection<C: Courier>(shared: Arc<Shared<C>>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let mut stream = Stream::Plain(stream);
    let over_cap = {
        let mut clients = lock(&shared.clients);
        let count = clients.entry(peer.ip()).or_insert(0);
        *count += 1;
        *count > shared.config.max_connections_per_client
    };
    let _slot = ClientSlot {
        clients: &shared.clients,
        address: peer.ip(),
    };
    if over_cap {
        let _ = stream
            .io()
            .write_all(b"421 4.7.0 Too many connections from your address\r\n")
            .await;
        return;
    }
    let mut policy = (*shared.policy).clone();
    let tls = shared
        .tls
        .read()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone();
    policy.tls_available = tls.is_some();
    let mut session = Session::new(Arc::new(policy), peer.ip(), false);
    if stream
        .io()
        .write_all(&session.greeting().to_wire())
        .await
        .is_err()
    {
        return;
    }
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let limit = if session.in_data() {
            shared.config.data_timeout
        } else {
            shared.config.command_timeout
        };
        let read = match timeout(limit, stream.io().read(&mut buffer)).await {
            Err(_) => {
                let reply = session.abort("Timeout, closing connection");
                let _ = stream.io().write_all(&reply.to_wire()).await;
                return;
            }
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(read)) => read,
        };
        let mut events: std::collections::VecDeque<Event> =
            session.feed(&buffer[..read], SystemTime::now()).into();
        let mut output = Vec::new();
        while let Some(event) = events.pop_front() {
            match event {
                Event::Reply(reply) => output.extend_from_slice(&reply.to_wire()),
                Event::Message(message) => {
                    let outcome = accept(&shared, *message).await;
                    events.extend(session.stored(outcome, SystemTime::now()));
                }
                Event::StartTls => {
                    if stream.io().write_all(&output).await.is_err() {
                        return;
                    }
                    output.clear();
                    let (Stream::Plain(tcp), Some(config)) = (stream, tls.clone()) else {
                        return;
                    };
                    let handshake = TlsAcceptor::from(config).accept(tcp);
                    match timeout(shared.config.command_timeout, handshake).await {
                        Ok(Ok(secured)) => stream = Stream::Tls(Box::new(secured)),
                        _ => return,
                    }
                    session.tls_started();
                }
                Event::Close => {
                    let _ = stream.io().write_all(&output).await;
                    let _ = stream.io().shutdown().await;
                    return;
                }
            }
        }
        if !output.is_empty() && stream.io().write_all(&output).await.is_err() {
            return;
        }
    }
}

/// Stores an accepted message; Ok(queue id) only once it is on disk.
async fn accept<C>(shared: &Arc<Shared<C>>, message: Message) -> Result<String, String> {
    let spool = shared.spool.clone();
    match blocking(move || spool.store(&message, SystemTime::now())).await {
        Ok(spooled) => {
            let id = spooled.id.clone();
            lock(&shared.queue).insert(spooled);
            shared.accepted.fetch_add(1, Ordering::Relaxed);
            shared.wake.notify_one();
            Ok(id)
        }
        Err(error) => {
            tracing::error!(%error, "spooling an accepted message");
            Err(error.to_string())
        }
    }
}
