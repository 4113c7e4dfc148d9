//! The move controls, one typed API for every caller: `cutover mail …`,
//! the HTTP API and the migration engine all go through [`MailControl`].
//!
//! ```text
//!  MailControl::request(Request)
//!     │ connect spool/control.sock ──ok──► running relay: one JSON line in,
//!     │                                    one JSON line out (Relay::control)
//!     │ no socket / refused
//!     ▼
//!  take spool/lock (the relay holds it while it runs)
//!     ├─ taken: no relay runs: load the spool, apply, write back, release
//!     └─ busy:  the relay is starting: retry the socket for 2 s, then fail
//! ```
//!
//! Every change is on disk before the answer: retargets and domain holds
//! in `spool/controls`, per-message states in `<id>.status`. A retarget
//! therefore survives a restart of the relay.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::queue::{Destination, Queue, Schedule, Selector};
use crate::spool::{DeliveryState, Spool, SpoolError, Spooled};

/// The control socket's name in the spool directory.
pub const SOCKET: &str = "control.sock";
/// The lock file's name in the spool directory (held by a running relay).
pub const LOCK: &str = "lock";
/// The queue controls' name in the spool directory.
pub const CONTROLS: &str = "controls";

/// One operation on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The whole queue, in arrival order.
    Queue,
    /// One message.
    Show {
        /// Its queue id.
        id: String,
    },
    /// Hold mail: nothing selected is delivered until released.
    Hold {
        /// What.
        target: Selector,
    },
    /// Release held mail; it is due at once.
    Release {
        /// What.
        target: Selector,
    },
    /// Make deferred mail due at once.
    Flush {
        /// What.
        target: Selector,
    },
    /// Send a domain's mail to a new destination from now on; its waiting
    /// mail that is not held is due at once. Held mail stays held until
    /// released, here (`release`) or by a Release.
    Retarget {
        /// The domain.
        domain: String,
        /// `host`, `host:port` or `[v6]:port`.
        destination: String,
        /// Release the domain's held mail too.
        #[serde(default)]
        release: bool,
    },
    /// Delete mail without a delivery status notification.
    Delete {
        /// What.
        target: Selector,
    },
    /// The relay's counters and gauges.
    Metrics,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The queue listing.
    Queue(Vec<QueuedMessage>),
    /// One message.
    Message(QueuedMessage),
    /// The ids of the messages the operation held, released, made due or
    /// deleted (whichever it does).
    Changed(Vec<String>),
    /// What a retarget did.
    Retargeted(Retargeted),
    /// Counters and gauges.
    Metrics(MetricsView),
    /// The operation was refused: why.
    Error(String),
}

/// What a retarget did, message by message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retargeted {
    /// Messages of the domain due now at the new destination.
    pub due: Vec<String>,
    /// Messages of the domain it released (asked to release).
    pub released: Vec<String>,
    /// Messages of the domain still held, until released.
    pub held: Vec<String>,
}

/// One queued message as the controls show it: the HTTP API's type, so
/// the CLI, the control socket and the API speak of it the same way.
pub type QueuedMessage = cutover_api::MailMessage;

/// One recipient of a queued message and where it stands.
pub type QueuedRecipient = cutover_api::MailRecipient;

/// The relay's counters and queue gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsView {
    /// Messages accepted since the relay started.
    pub accepted: u64,
    /// Recipients delivered since the relay started.
    pub delivered: u64,
    /// Recipient attempts deferred since the relay started.
    pub deferred: u64,
    /// Recipients failed for good since the relay started.
    pub bounced: u64,
    /// Messages in the queue now.
    pub queued: u64,
    /// Age of the oldest queued message, in seconds.
    pub oldest_seconds: u64,
    /// Whether a relay is running (false: read from the spool at rest).
    pub running: bool,
}

/// Why a control could not be carried out.
#[derive(Debug, Error)]
pub enum ControlError {
    /// The relay (or the spool at rest) refused the operation.
    #[error("{0}")]
    Refused(String),
    /// There is no spool directory there.
    #[error("no mail spool at {0}")]
    NoSpool(PathBuf),
    /// A relay holds the spool but its control socket does not answer.
    #[error("a relay holds {0} but its control socket does not answer")]
    Unreachable(PathBuf),
    /// Talking to the relay failed.
    #[error("control socket {path}: {reason}")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The spool at rest failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The answer was not the kind the request asks for.
    #[error("unexpected answer from the relay: {0:?}")]
    Unexpected(Box<Answer>),
}

/// The controls of the relay whose spool is at `spool`.
#[derive(Debug, Clone)]
pub struct MailControl {
    /// The spool directory.
    spool: PathBuf,
    /// The longest wait for a running relay's answer.
    pub timeout: Duration,
    /// The configured routes, shown in listings of a spool at rest (a
    /// running relay knows its own).
    pub routes: BTreeMap<String, Destination>,
}

/// What [`apply`] did, for the caller to persist.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// The answer.
    pub answer: Option<Answer>,
    /// Messages whose status changed (to write back).
    pub changed: Vec<String>,
    /// Messages deleted (to remove from the spool).
    pub removed: Vec<String>,
    /// Whether the persisted controls changed.
    pub controls: bool,
}

impl MailControl {
    /// The controls of the spool at `spool`.
    pub fn new(spool: impl Into<PathBuf>) -> Self {
        MailControl {
            spool: spool.into(),
            timeout: Duration::from_secs(30),
            routes: BTreeMap::new(),
        }
    }

    /// The spool directory.
    pub fn spool(&self) -> &Path {
        &self.spool
    }

    /// Carries out `request` on the running relay, or on the spool at rest
    /// when none runs. `Answer::Error` comes back as [`ControlError::Refused`].
    pub fn request(&self, request: &Request) -> Result<Answer, ControlError> {
        if !self.spool.is_dir() {
            return Err(ControlError::NoSpool(self.spool.clone()));
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(answer) = self.ask_running(request)? {
                return refused(answer);
            }
            if let Some(lock) = try_lock(&self.spool)? {
                let answer = at_rest(&self.spool, &self.routes, request);
                drop(lock);
                return refused(answer?);
            }
            if Instant::now() >= deadline {
                return Err(ControlError::Unreachable(self.spool.clone()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The queue listing.
    pub fn queue(&self) -> Result<Vec<QueuedMessage>, ControlError> {
        match self.request(&Request::Queue)? {
            Answer::Queue(list) => Ok(list),
            other => Err(ControlError::Unexpected(Box::new(other))),
        }
    }

    /// One message, with its headers.
    pub fn show(&self, id: &str) -> Result<QueuedMessage, ControlError> {
        match self.request(&Request::Show { id: id.into() })? {
            Answer::Message(message) => Ok(message),
            other => Err(ControlError::Unexpected(Box::new(other))),
        }
    }

    /// Holds mail; returns the messages with waiting recipients it held.
    pub fn hold(&self, target: Selector) -> Result<Vec<String>, ControlError> {
        self.changed(Request::Hold { target })
    }

    /// Releases mail; returns the messages it released (due now).
    pub fn release(&self, target: Selector) -> Result<Vec<String>, ControlError> {
        self.changed(Request::Release { target })
    }

    /// Makes waiting mail that is not held due now; returns the messages due.
    pub fn flush(&self, target: Selector) -> Result<Vec<String>, ControlError> {
        self.changed(Request::Flush { target })
    }

    /// Points `domain` at `destination` (releasing its held mail when
    /// `release`); says which messages are due, released, still held.
    pub fn retarget(
        &self,
        domain: &str,
        destination: &str,
        release: bool,
    ) -> Result<Retargeted, ControlError> {
        let request = Request::Retarget {
            domain: domain.into(),
            destination: destination.into(),
            release,
        };
        match self.request(&request)? {
            Answer::Retargeted(retargeted) => Ok(retargeted),
            other => Err(ControlError::Unexpected(Box::new(other))),
        }
    }

    /// Whether a relay runs on the spool (its control socket answers);
    /// without one, controls work on the spool at rest and nothing is sent
    /// until a relay starts.
    pub fn is_running(&self) -> bool {
        UnixStream::connect(self.spool.join(SOCKET)).is_ok()
    }

    /// Deletes mail without a DSN; returns the messages deleted.
    pub fn delete(&self, target: Selector) -> Result<Vec<String>, ControlError> {
        self.changed(Request::Delete { target })
    }

    /// The counters and gauges.
    pub fn metrics(&self) -> Result<MetricsView, ControlError> {
        match self.request(&Request::Metrics)? {
            Answer::Metrics(metrics) => Ok(metrics),
            other => Err(ControlError::Unexpected(Box::new(other))),
        }
    }

    /// A request whose answer is a list of changed ids.
    fn changed(&self, request: Request) -> Result<Vec<String>, ControlError> {
        match self.request(&request)? {
            Answer::Changed(ids) => Ok(ids),
            other => Err(ControlError::Unexpected(Box::new(other))),
        }
    }

    /// Asks the running relay; None when no relay listens on the socket.
    fn ask_running(&self, request: &Request) -> Result<Option<Answer>, ControlError> {
        let path = self.spool.join(SOCKET);
        let failure = |reason: String| ControlError::Socket {
            path: path.clone(),
            reason,
        };
        let mut stream = match UnixStream::connect(&path) {
            Ok(stream) => stream,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None)
            }
            Err(error) => return Err(failure(error.to_string())),
        };
        stream
            .set_read_timeout(Some(self.timeout))
            .map_err(|error| failure(error.to_string()))?;
        let mut line =
            serde_json::to_string(request).map_err(|error| failure(error.to_string()))?;
        line.push('\n');
        stream
            .write_all(line.as_bytes())
            .map_err(|error| failure(error.to_string()))?;
        let mut reply = String::new();
        BufReader::new(stream)
            .read_line(&mut reply)
            .map_err(|error| failure(error.to_string()))?;
        serde_json::from_str(&reply)
            .map(Some)
            .map_err(|error| failure(format!("bad answer {reply:?}: {error}")))
    }
}

/// `Answer::Error` as an error, anything else as it is.
fn refused(answer: Answer) -> Result<Answer, ControlError> {
    match answer {
        Answer::Error(reason) => Err(ControlError::Refused(reason)),
        answer => Ok(answer),
    }
}

/// Takes the spool's lock without waiting; None when someone holds it.
pub(crate) fn try_lock(spool: &Path) -> Result<Option<File>, SpoolError> {
    let path = spool.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| SpoolError::Io {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(source)) => Err(SpoolError::Io { path, source }),
    }
}

/// Carries out `request` on a spool no relay is running on (lock held).
fn at_rest(
    directory: &Path,
    routes: &BTreeMap<String, Destination>,
    request: &Request,
) -> Result<Answer, ControlError> {
    let spool = Spool::open(directory)?;
    let mut queue = Queue::new(Schedule::default(), routes.clone());
    if let Some(controls) = spool.read_file(CONTROLS)? {
        queue
            .apply_controls(&controls)
            .map_err(|error| ControlError::Refused(format!("spool controls: {error}")))?;
    }
    for spooled in spool.load()? {
        // Finished but not yet removed (the relay stopped in between): the
        // relay removes these when it starts.
        if !spooled.is_finished() {
            queue.insert(spooled);
        }
    }
    if *request == Request::Metrics {
        let now = SystemTime::now();
        let list = queue.list(now);
        return Ok(Answer::Metrics(MetricsView {
            queued: list.len() as u64,
            oldest_seconds: list.iter().map(|e| e.age.as_secs()).max().unwrap_or(0),
            running: false,
            ..MetricsView::default()
        }));
    }
    let applied = apply(&mut queue, request, SystemTime::now());
    if applied.controls {
        spool.write_file(CONTROLS, &queue.controls())?;
    }
    for id in &applied.changed {
        if let Some(spooled) = queue.message(id) {
            spool.update(spooled)?;
        }
    }
    for id in &applied.removed {
        spool.remove(id)?;
    }
    let mut answer = applied.answer.unwrap_or(Answer::Changed(Vec::new()));
    if let Answer::Message(message) = &mut answer {
        message.headers = spool.head(&message.id, HEAD).ok().map(|c| headers(&c));
    }
    Ok(answer)
}

/// Applies `request` (anything but Metrics) to `queue` at `now`.
pub(crate) fn apply(queue: &mut Queue, request: &Request, now: SystemTime) -> Applied {
    let mut applied = Applied::default();
    let answer = match request {
        Request::Queue => Answer::Queue(
            queue
                .ids()
                .filter_map(|id| queue.message(id))
                .map(|spooled| describe(queue, spooled, now))
                .collect(),
        ),
        Request::Show { id } => match queue.message(id) {
            Some(spooled) => Answer::Message(describe(queue, spooled, now)),
            None => Answer::Error(format!("no queued message {id}")),
        },
        Request::Hold { target } => {
            if let Some(error) = missing(queue, target) {
                return error;
            }
            applied.controls = matches!(target, Selector::Domain(_));
            let effect = queue.hold(target);
            applied.changed = effect.changed;
            Answer::Changed(effect.ids)
        }
        Request::Release { target } => {
            if let Some(error) = missing(queue, target) {
                return error;
            }
            applied.controls = !matches!(target, Selector::Message(_));
            let effect = queue.release(target, now);
            applied.changed = effect.changed;
            Answer::Changed(effect.ids)
        }
        Request::Flush { target } => {
            if let Some(error) = missing(queue, target) {
                return error;
            }
            let effect = queue.flush(target, now);
            applied.changed = effect.changed;
            Answer::Changed(effect.ids)
        }
        Request::Retarget {
            domain,
            destination,
            release,
        } => match destination.parse::<Destination>() {
            Ok(destination) if !domain.is_empty() => {
                applied.controls = true;
                let retargeted = queue.retarget(domain, destination, now, *release);
                applied.changed = retargeted.changed;
                Answer::Retargeted(Retargeted {
                    due: retargeted.due,
                    released: retargeted.released,
                    held: retargeted.held,
                })
            }
            Ok(_) => Answer::Error("retarget needs a domain".into()),
            Err(error) => Answer::Error(error.to_string()),
        },
        Request::Delete { target } => {
            if let Some(error) = missing(queue, target) {
                return error;
            }
            applied.removed = queue.delete(target);
            Answer::Changed(applied.removed.clone())
        }
        Request::Metrics => Answer::Error("metrics come from the relay".into()),
    };
    applied.answer = Some(answer);
    applied
}

/// An error answer when `target` names a message that is not queued.
fn missing(queue: &Queue, target: &Selector) -> Option<Applied> {
    match target {
        Selector::Message(id) if queue.message(id).is_none() => Some(Applied {
            answer: Some(Answer::Error(format!("no queued message {id}"))),
            ..Applied::default()
        }),
        _ => None,
    }
}

/// The controls' view of one message.
pub(crate) fn describe(queue: &Queue, spooled: &Spooled, now: SystemTime) -> QueuedMessage {
    let seconds = |time: SystemTime| {
        time.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    };
    let recipients = spooled
        .envelope
        .recipients
        .iter()
        .zip(&spooled.statuses)
        .map(|(recipient, status)| QueuedRecipient {
            address: recipient.address.clone(),
            state: match status.state {
                DeliveryState::Scheduled => "scheduled",
                DeliveryState::Deferred => "deferred",
                DeliveryState::Delivered => "delivered",
                DeliveryState::Failed => "failed",
            }
            .into(),
            attempts: status.attempts,
            next_attempt: seconds(status.next_attempt),
            last_error: status.last_error.clone(),
            destination: queue
                .route(&recipient.domain)
                .map(|destination| destination.to_string()),
        })
        .collect();
    QueuedMessage {
        id: spooled.id.clone(),
        sender: spooled.envelope.sender.clone(),
        received: seconds(spooled.envelope.received),
        age_seconds: now
            .duration_since(spooled.envelope.received)
            .unwrap_or_default()
            .as_secs(),
        size: spooled.size,
        held: spooled.held
            || spooled
                .envelope
                .recipients
                .iter()
                .any(|recipient| queue.is_held(&recipient.domain)),
        recipients,
        headers: None,
    }
}

/// How much of a message is read to show its header section.
pub(crate) const HEAD: usize = 8192 + 4;

/// The header section of `content`, at most 8 KiB, lossy UTF-8.
pub(crate) fn headers(content: &[u8]) -> String {
    let end = content
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|position| position + 2)
        .unwrap_or(content.len())
        .min(8192);
    String::from_utf8_lossy(&content[..end]).into_owned()
}
