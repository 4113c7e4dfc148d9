//! The spool: every accepted message is a file on disk, fsynced before the
//! client gets its 250, with a status per recipient beside it.
//!
//! ```text
//!  spool/
//!    <id>.msg      envelope header lines, a blank line, the content
//!                  written once: create .tmp, write, fsync, rename, fsync dir
//!                  (received mail streams into `incoming-….tmp` as it
//!                  arrives: [`Incoming`]; the id is given at the rename)
//!    <id>.status   one line per recipient (state, attempts, next, error)
//!                  plus `held`/`warned`; rewritten the same atomic way
//!    controls      held domains and destination overrides of the queue
//!    *.tmp         leftovers of a crash: removed on open
//! ```
//!
//! The rename of `<id>.msg` is the commit point: a message without a status
//! file is scheduled for all recipients. Ids sort in the order messages were
//! committed (their 250s). A message refused, failed or cut off is never
//! renamed: its `.tmp` is removed at once, or when the spool next opens.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use thiserror::Error;

use crate::envelope::{DsnReturn, Envelope, Notify, Recipient};
use crate::session::Message;

/// A spool failure; the session answers 451 to any of them.
#[derive(Debug, Error)]
pub enum SpoolError {
    /// A file operation failed.
    #[error("spool file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A spool file does not read back.
    #[error("spool file {path} line {line}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// No message with this id is spooled.
    #[error("no spooled message {0}")]
    Missing(String),
}

/// Where one recipient of a spooled message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first or next attempt.
    Scheduled,
    /// Accepted by the destination.
    Delivered,
    /// The last attempt failed temporarily; retried at `next_attempt`.
    Deferred,
    /// Failed permanently (5xx or queue lifetime passed); a DSN was queued.
    Failed,
}

/// The delivery status of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it is next due (meaningful for Scheduled and Deferred).
    pub next_attempt: SystemTime,
    /// The last error from the destination, if any.
    pub last_error: Option<String>,
}

/// A message in the spool, with its statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    /// The queue id, sorting in arrival order.
    pub id: String,
    /// The envelope.
    pub envelope: Envelope,
    /// One status per envelope recipient, same order.
    pub statuses: Vec<RecipientStatus>,
    /// Held by an operator: not delivered until released.
    pub held: bool,
    /// A delay warning was already sent.
    pub warned: bool,
    /// The content size in octets.
    pub size: u64,
}

impl Spooled {
    /// Whether every recipient is delivered or failed.
    pub fn is_finished(&self) -> bool {
        self.statuses.iter().all(|status| {
            matches!(
                status.state,
                DeliveryState::Delivered | DeliveryState::Failed
            )
        })
    }
}

/// A message being received: its spool file, written as the content
/// arrives and renamed into the queue only by [`Incoming::commit`]. Dropped
/// uncommitted, its file is removed.
#[derive(Debug)]
pub struct Incoming {
    /// The open temporary file.
    file: File,
    /// Its path.
    temporary: PathBuf,
    /// The envelope (dated when the file was opened).
    envelope: Envelope,
    /// Octets written to the file so far.
    written: u64,
    /// Where the content starts in the file.
    content_start: u64,
    /// Whether the file became a queued message (nothing to remove).
    committed: bool,
}

/// The spool directory.
#[derive(Debug)]
pub struct Spool {
    /// The directory.
    directory: PathBuf,
    /// A counter that makes ids unique within one process.
    counter: AtomicU64,
}

impl Spool {
    /// Opens (creating) the spool at `directory`, removing crash leftovers.
    pub fn open(directory: impl Into<PathBuf>) -> Result<Spool, SpoolError> {
        let directory = directory.into();
        fs::create_dir_all(&directory).map_err(|source| io_error(&directory, source))?;
        for entry in fs::read_dir(&directory).map_err(|source| io_error(&directory, source))? {
            let path = entry.map_err(|source| io_error(&directory, source))?.path();
            if path.extension().is_some_and(|extension| extension == "tmp") {
                fs::remove_file(&path).map_err(|source| io_error(&path, source))?;
            }
        }
        Ok(Spool {
            directory,
            counter: AtomicU64::new(0),
        })
    }

    /// The spool directory.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Stores `message` durably; only after this returns Ok may 250 be sent.
    pub fn store(&self, message: &Message, now: SystemTime) -> Result<Spooled, SpoolError> {
        let mut incoming = self.open_incoming(message.envelope.clone())?;
        incoming.append(&message.content)?;
        self.commit(incoming, now)
    }

    /// Opens a file for a message arriving now with `envelope` (its
    /// `received` time kept) and writes the envelope to it. Nothing is
    /// queued until [`Spool::commit`].
    pub fn open_incoming(&self, envelope: Envelope) -> Result<Incoming, SpoolError> {
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let temporary = self
            .directory
            .join(format!("incoming-{count:X}-{:08X}.tmp", fastrand::u32(..)));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .map_err(|source| io_error(&temporary, source))?;
        let mut incoming = Incoming {
            file,
            temporary,
            envelope,
            written: 0,
            content_start: 0,
            committed: false,
        };
        let mut header = encode_envelope(&incoming.envelope).into_bytes();
        header.push(b'\n');
        incoming.append(&header)?;
        incoming.content_start = incoming.written;
        Ok(incoming)
    }

    /// Makes `incoming` a queued message: fsync, rename to `<id>.msg` (the
    /// commit point), fsync of the directory. Only after this returns Ok
    /// may 250 be sent; on Err nothing of it is left to deliver.
    pub fn commit(&self, mut incoming: Incoming, now: SystemTime) -> Result<Spooled, SpoolError> {
        incoming
            .file
            .sync_all()
            .map_err(|source| io_error(&incoming.temporary, source))?;
        let id = self.new_id(now);
        let path = self.directory.join(format!("{id}.msg"));
        fs::rename(&incoming.temporary, &path).map_err(|source| io_error(&path, source))?;
        incoming.committed = true;
        if let Err(error) = self.sync_directory() {
            // The client is told 451 and will send again: a message left
            // here would be delivered twice (best effort: the disk failed).
            let _ = fs::remove_file(&path);
            return Err(error);
        }
        let envelope = std::mem::replace(&mut incoming.envelope, empty_envelope());
        Ok(Spooled {
            id,
            statuses: envelope
                .recipients
                .iter()
                .map(|_| RecipientStatus {
                    state: DeliveryState::Scheduled,
                    attempts: 0,
                    next_attempt: now,
                    last_error: None,
                })
                .collect(),
            envelope,
            held: false,
            warned: false,
            size: incoming.written - incoming.content_start,
        })
    }

    /// Writes the statuses of `spooled` durably.
    pub fn update(&self, spooled: &Spooled) -> Result<(), SpoolError> {
        self.write_atomically(
            &format!("{}.status", spooled.id),
            encode_status(spooled).as_bytes(),
        )
    }

    /// Removes a message and its status (finished or deleted).
    pub fn remove(&self, id: &str) -> Result<(), SpoolError> {
        for name in [format!("{id}.status"), format!("{id}.msg")] {
            let path = self.directory.join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error(&path, source)),
            }
        }
        self.sync_directory()
    }

    /// Removes several messages with one directory fsync at the end.
    pub fn remove_all(&self, ids: &[String]) -> Result<(), SpoolError> {
        if ids.is_empty() {
            return Ok(());
        }
        for id in ids {
            for name in [format!("{id}.status"), format!("{id}.msg")] {
                let path = self.directory.join(name);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(io_error(&path, source)),
                }
            }
        }
        self.sync_directory()
    }

    /// The content of a spooled message.
    pub fn content(&self, id: &str) -> Result<Vec<u8>, SpoolError> {
        let path = self.directory.join(format!("{id}.msg"));
        let mut bytes = fs::read(&path).map_err(|source| missing(id, &path, source))?;
        let start = header_end(&bytes).ok_or_else(|| corrupt(&path, 1, "no end of envelope"))?;
        bytes.drain(..start);
        Ok(bytes)
    }

    /// The file of a spooled message and where its content starts (for
    /// delivery, which reads it piece by piece).
    pub fn content_file(&self, id: &str) -> Result<(PathBuf, u64), SpoolError> {
        let path = self.directory.join(format!("{id}.msg"));
        let file = File::open(&path).map_err(|source| missing(id, &path, source))?;
        let (_, start) = read_envelope(&mut io::BufReader::new(file), &path)?;
        Ok((path, start))
    }

    /// The first `limit` octets (at most) of a spooled message's content,
    /// without reading the rest (for showing its headers).
    pub fn head(&self, id: &str, limit: usize) -> Result<Vec<u8>, SpoolError> {
        let path = self.directory.join(format!("{id}.msg"));
        let file = File::open(&path).map_err(|source| missing(id, &path, source))?;
        let mut reader = io::BufReader::new(file);
        read_envelope(&mut reader, &path)?;
        let mut head = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(reader, limit as u64), &mut head)
            .map_err(|source| io_error(&path, source))?;
        Ok(head)
    }

    /// Every spooled message with its statuses, in arrival order.
    pub fn load(&self) -> Result<Vec<Spooled>, SpoolError> {
        let mut found = BTreeMap::new();
        let entries =
            fs::read_dir(&self.directory).map_err(|source| io_error(&self.directory, source))?;
        for entry in entries {
            let path = entry
                .map_err(|source| io_error(&self.directory, source))?
                .path();
            if path.extension().is_some_and(|extension| extension == "msg") {
                if let Some(id) = path.file_stem().and_then(|stem| stem.to_str()) {
                    found.insert(id.to_string(), path.clone());
                }
            }
        }
        let mut spooled = Vec::with_capacity(found.len());
        for (id, path) in found {
            // The envelope only: a message's content is not read to load it.
            let file = File::open(&path).map_err(|source| io_error(&path, source))?;
            let length = file
                .metadata()
                .map_err(|source| io_error(&path, source))?
                .len();
            let (header, start) = read_envelope(&mut io::BufReader::new(file), &path)?;
            let envelope = decode_envelope(&header, &path)?;
            let mut message = Spooled {
                id: id.clone(),
                statuses: envelope
                    .recipients
                    .iter()
                    .map(|_| RecipientStatus {
                        state: DeliveryState::Scheduled,
                        attempts: 0,
                        next_attempt: envelope.received,
                        last_error: None,
                    })
                    .collect(),
                envelope,
                held: false,
                warned: false,
                size: length.saturating_sub(start),
            };
            let status_path = self.directory.join(format!("{id}.status"));
            match fs::read_to_string(&status_path) {
                Ok(text) => decode_status(&text, &status_path, &mut message)?,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error(&status_path, source)),
            }
            spooled.push(message);
        }
        Ok(spooled)
    }

    /// Writes a small named file of the spool atomically (the queue controls).
    pub fn write_file(&self, name: &str, contents: &str) -> Result<(), SpoolError> {
        self.write_atomically(name, contents.as_bytes())
    }

    /// Reads a small named file of the spool; None when absent.
    pub fn read_file(&self, name: &str) -> Result<Option<String>, SpoolError> {
        let path = self.directory.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(io_error(&path, source)),
        }
    }

    /// A fresh id: time in microseconds, a counter and a random part, in hex.
    fn new_id(&self, now: SystemTime) -> String {
        let micros = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        let count = self.counter.fetch_add(1, Ordering::Relaxed) & 0xFF_FFFF;
        format!("{micros:014X}{count:06X}{:04X}", fastrand::u16(..))
    }

    /// Create `.tmp`, write, fsync, rename over `name`, fsync the directory.
    fn write_atomically(&self, name: &str, bytes: &[u8]) -> Result<(), SpoolError> {
        let path = self.directory.join(name);
        let temporary = self.directory.join(format!("{name}.tmp"));
        let result = (|| {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temporary)?;
            // pwrite, not write: the only pwrite64 calls of the relay are
            // the spool's, so fault injection (strace) can aim at them alone.
            std::os::unix::fs::FileExt::write_all_at(&file, bytes, 0)?;
            file.sync_all()
        })();
        if let Err(source) = result {
            let _ = fs::remove_file(&temporary);
            return Err(io_error(&temporary, source));
        }
        if let Err(source) = fs::rename(&temporary, &path) {
            let _ = fs::remove_file(&temporary);
            return Err(io_error(&path, source));
        }
        self.sync_directory()
    }

    /// fsync of the directory, so that renames and removals are durable.
    fn sync_directory(&self) -> Result<(), SpoolError> {
        File::open(&self.directory)
            .and_then(|directory| directory.sync_all())
            .map_err(|source| io_error(&self.directory, source))
    }
}

impl Incoming {
    /// Appends content to the file (pwrite: see `write_atomically`).
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, bytes, self.written)
            .map_err(|source| io_error(&self.temporary, source))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Octets of content written so far.
    pub fn size(&self) -> u64 {
        self.written - self.content_start
    }
}

impl Drop for Incoming {
    /// Removes the file of a message that was not committed.
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temporary);
        }
    }
}

/// An envelope with nothing in it (what a committed [`Incoming`] keeps).
fn empty_envelope() -> Envelope {
    Envelope {
        sender: String::new(),
        recipients: Vec::new(),
        envelope_id: None,
        dsn_return: None,
        eight_bit: false,
        smtputf8: false,
        helo: String::new(),
        client: IpAddr::from([0, 0, 0, 0]),
        received: SystemTime::UNIX_EPOCH,
    }
}

/// An Io error about `path`.
fn io_error(path: &Path, source: io::Error) -> SpoolError {
    SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A Corrupt error about `path` at `line`.
fn corrupt(path: &Path, line: usize, reason: impl Into<String>) -> SpoolError {
    SpoolError::Corrupt {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

/// The longest envelope header read (a hundred recipients take ~30 KiB).
const MAX_ENVELOPE: u64 = 16 << 20;

/// Reads the envelope header of a message file up to its blank line; returns
/// it (without the blank line) and where the content starts.
fn read_envelope(reader: &mut impl io::BufRead, path: &Path) -> Result<(String, u64), SpoolError> {
    let mut header = Vec::new();
    let mut limited = io::Read::take(reader, MAX_ENVELOPE);
    loop {
        let before = header.len();
        let read = io::BufRead::read_until(&mut limited, b'\n', &mut header)
            .map_err(|source| io_error(path, source))?;
        if read == 0 {
            return Err(corrupt(path, 1, "no end of envelope"));
        }
        if header[before..] == *b"\n" {
            header.truncate(before);
            break;
        }
    }
    let start = header.len() as u64 + 1;
    let header =
        String::from_utf8(header).map_err(|_| corrupt(path, 1, "envelope is not UTF-8"))?;
    Ok((header, start))
}

/// The error for a message file that could not be opened or read.
fn missing(id: &str, path: &Path, source: io::Error) -> SpoolError {
    match source.kind() {
        io::ErrorKind::NotFound => SpoolError::Missing(id.to_string()),
        _ => io_error(path, source),
    }
}

/// The offset just after the blank line ending the envelope header.
fn header_end(bytes: &[u8]) -> Option<usize> {
    if bytes.first() == Some(&b'\n') {
        return Some(1);
    }
    bytes
        .windows(2)
        .position(|pair| pair == b"\n\n")
        .map(|position| position + 2)
}

/// Percent-escapes `%`, spaces, controls and non-ASCII so a value is one token.
pub(crate) fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if byte == b'%' || byte <= b' ' || byte >= 0x7F {
            escaped.push_str(&format!("%{byte:02X}"));
        } else {
            escaped.push(byte as char);
        }
    }
    escaped
}

/// Reverses [`escape`]; None on a malformed escape or invalid UTF-8.
pub(crate) fn unescape(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut value = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = token.get(index + 1..index + 3)?;
            value.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            value.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(value).ok()
}

/// Seconds.nanoseconds since the epoch.
fn encode_time(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", since.as_secs(), since.subsec_nanos())
}

/// Reverses [`encode_time`].
fn decode_time(token: &str) -> Option<SystemTime> {
    let (seconds, nanoseconds) = token.split_once('.')?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(seconds.parse().ok()?, nanoseconds.parse().ok()?))
}

/// The envelope as header lines, each `key value`.
fn encode_envelope(envelope: &Envelope) -> String {
    let mut text = String::from("cutover-spool 1\n");
    text.push_str(&format!("received {}\n", encode_time(envelope.received)));
    text.push_str(&format!("client {}\n", envelope.client));
    text.push_str(&format!("helo {}\n", escape(&envelope.helo)));
    text.push_str(&format!("sender {}\n", escape(&envelope.sender)));
    if let Some(id) = &envelope.envelope_id {
        text.push_str(&format!("envid {}\n", escape(id)));
    }
    match envelope.dsn_return {
        Some(DsnReturn::Full) => text.push_str("ret full\n"),
        Some(DsnReturn::Headers) => text.push_str("ret hdrs\n"),
        None => {}
    }
    if envelope.eight_bit {
        text.push_str("eightbit 1\n");
    }
    if envelope.smtputf8 {
        text.push_str("smtputf8 1\n");
    }
    for recipient in &envelope.recipients {
        text.push_str(&format!("rcpt {}\n", escape(&recipient.address)));
        let notify = recipient.notify;
        let flags: String = [
            (notify.success, 'S'),
            (notify.failure, 'F'),
            (notify.delay, 'D'),
            (notify.never, 'N'),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, letter)| *letter)
        .collect();
        if !flags.is_empty() {
            text.push_str(&format!("notify {flags}\n"));
        }
        if let Some(original) = &recipient.original {
            text.push_str(&format!("orcpt {}\n", escape(original)));
        }
    }
    text
}

/// Reverses [`encode_envelope`]; `header` excludes the blank line.
fn decode_envelope(header: &str, path: &Path) -> Result<Envelope, SpoolError> {
    let mut envelope = Envelope {
        sender: String::new(),
        recipients: Vec::new(),
        envelope_id: None,
        dsn_return: None,
        eight_bit: false,
        smtputf8: false,
        helo: String::new(),
        client: IpAddr::from([0, 0, 0, 0]),
        received: SystemTime::UNIX_EPOCH,
    };
    for (index, line) in header.lines().enumerate() {
        let number = index + 1;
        let bad = |reason: &str| corrupt(path, number, format!("{reason}: {line:?}"));
        let (key, value) = line.split_once(' ').ok_or_else(|| bad("no value"))?;
        let text = || unescape(value).ok_or_else(|| bad("bad escape"));
        match key {
            "cutover-spool" if value == "1" => {}
            "received" => envelope.received = decode_time(value).ok_or_else(|| bad("bad time"))?,
            "client" => envelope.client = value.parse().map_err(|_| bad("bad address"))?,
            "helo" => envelope.helo = text()?,
            "sender" => envelope.sender = text()?,
            "envid" => envelope.envelope_id = Some(text()?),
            "ret" => {
                envelope.dsn_return = Some(match value {
                    "full" => DsnReturn::Full,
                    "hdrs" => DsnReturn::Headers,
                    _ => return Err(bad("bad RET")),
                })
            }
            "eightbit" => envelope.eight_bit = true,
            "smtputf8" => envelope.smtputf8 = true,
            "rcpt" => {
                let address = text()?;
                let domain = address
                    .rsplit_once('@')
                    .map(|(_, domain)| domain.to_lowercase())
                    .ok_or_else(|| bad("recipient without domain"))?;
                envelope.recipients.push(Recipient {
                    address,
                    domain,
                    original: None,
                    notify: Notify::default(),
                });
            }
            "notify" | "orcpt" => {
                let recipient = envelope
                    .recipients
                    .last_mut()
                    .ok_or_else(|| bad("before any rcpt"))?;
                if key == "orcpt" {
                    recipient.original = Some(text()?);
                } else {
                    recipient.notify = Notify {
                        success: value.contains('S'),
                        failure: value.contains('F'),
                        delay: value.contains('D'),
                        never: value.contains('N'),
                    };
                }
            }
            _ => return Err(bad("unknown key")),
        }
    }
    if envelope.recipients.is_empty() {
        return Err(corrupt(path, 1, "no recipients"));
    }
    Ok(envelope)
}

/// The status file: flags, then `state attempts next error` per recipient.
fn encode_status(spooled: &Spooled) -> String {
    let mut text = format!(
        "held {}\nwarned {}\n",
        u8::from(spooled.held),
        u8::from(spooled.warned)
    );
    for status in &spooled.statuses {
        let state = match status.state {
            DeliveryState::Scheduled => "scheduled",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Deferred => "deferred",
            DeliveryState::Failed => "failed",
        };
        text.push_str(&format!(
            "rcpt {state} {} {} {}\n",
            status.attempts,
            encode_time(status.next_attempt),
            status
                .last_error
                .as_deref()
                .map(|error| escape(error).replace('-', "%2D"))
                .unwrap_or_else(|| "-".into())
        ));
    }
    text
}

/// Reverses [`encode_status`] into `spooled`.
fn decode_status(text: &str, path: &Path, spooled: &mut Spooled) -> Result<(), SpoolError> {
    let mut statuses = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let bad = |reason: &str| corrupt(path, index + 1, format!("{reason}: {line:?}"));
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["held", flag] => spooled.held = *flag == "1",
            ["warned", flag] => spooled.warned = *flag == "1",
            ["rcpt", state, attempts, next, error] => statuses.push(RecipientStatus {
                state: match *state {
                    "scheduled" => DeliveryState::Scheduled,
                    "delivered" => DeliveryState::Delivered,
                    "deferred" => DeliveryState::Deferred,
                    "failed" => DeliveryState::Failed,
                    _ => return Err(bad("bad state")),
                },
                attempts: attempts.parse().map_err(|_| bad("bad attempts"))?,
                next_attempt: decode_time(next).ok_or_else(|| bad("bad time"))?,
                last_error: match *error {
                    "-" => None,
                    other => Some(unescape(other).ok_or_else(|| bad("bad escape"))?),
                },
            }),
            _ => return Err(bad("unknown line")),
        }
    }
    if statuses.len() != spooled.statuses.len() {
        return Err(corrupt(
            path,
            1,
            format!(
                "{} statuses for {} recipients",
                statuses.len(),
                spooled.statuses.len()
            ),
        ));
    }
    spooled.statuses = statuses;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Escaping round-trips controls, spaces, percent signs and UTF-8.
    #[test]
    fn escape_round_trips() {
        for value in ["", "a b", "100%", "x\r\ny\0", "josé@ex.test", "-"] {
            assert_eq!(
                unescape(&escape(value)).as_deref(),
                Some(value),
                "{value:?}"
            );
            assert!(
                !escape(value).contains([' ', '\n']),
                "{value:?} escaped with a separator"
            );
        }
    }
}
