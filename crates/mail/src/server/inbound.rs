//! The inbound side of the relay: one task per client connection driving
//! a [`Session`] (timeouts, STARTTLS, the caps on sessions, recipient
//! verification), streaming each message to its spool file as it arrives
//! and committing it before the 250.
//!
//! ```text
//!  accept ─► SessionSlot (max_connections; over it: 421, no task)
//!     ▼
//!  TcpStream ─► Session.feed ─► Reply ──────────────────────► client
//!                   │  Open    ─► spawn_blocking(Spool::open_incoming) ─► opened(354 | 451 | 452)
//!                   │  Data    ─► pending ─(16 KiB)─► spawn_blocking(Incoming::append)
//!                   │  Commit  ─► spawn_blocking(append rest, Spool::commit) ─► stored(250 | 451)
//!                   │  Discard ─► the file is removed
//!                   │  Verify  ─► RecipientBook / Courier::verify ─► verified(250 | 550 | 450)
//!                   └─ StartTls ─► TLS handshake ─► tls_started
//! ```
//!
//! Under stress (three quarters of `max_connections` in use, or the process
//! out of file descriptors) every session waits at most the stress timeout
//! (10 s) for a command or data, idle ones already waiting longer are
//! closed at once, and the session limits shrink (see [`Session::set_stressed`]):
//! Postfix's stress mode. A client whose session was closed under stress
//! (idle past the stress timeout, or too many errors and junk commands) is
//! refused at once while the stress lasts (for a minute at most), so that
//! the slots it held go to other clients, not back to it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_rustls::TlsAcceptor;

use super::{blocking, lock, Shared};
use crate::courier::{Courier, Probe};
use crate::envelope::Envelope;
use crate::recipients::Lookup;
use crate::session::{Event, Session, SpoolRefusal, Verdict};
use crate::spool::{Incoming, SpoolError};

/// The read buffer of a connection.
const READ_BUFFER: usize = 8 * 1024;

/// Content kept in memory before it is written to the spool file.
const FLUSH_AT: usize = 16 * 1024;

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

/// One of the relay's `max_connections` session slots, freed on drop.
pub(super) struct SessionSlot<C> {
    /// The relay.
    shared: Arc<Shared<C>>,
}

impl<C> SessionSlot<C> {
    /// A slot, or None when every one is taken.
    pub(super) fn take(shared: &Arc<Shared<C>>) -> Option<SessionSlot<C>> {
        let taken = shared.sessions.fetch_add(1, Ordering::AcqRel) + 1;
        if taken > shared.ceiling() {
            shared.sessions.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        shared.update_pressure();
        Some(SessionSlot {
            shared: shared.clone(),
        })
    }
}

impl<C> Drop for SessionSlot<C> {
    /// Frees the slot.
    fn drop(&mut self) {
        self.shared.sessions.fetch_sub(1, Ordering::AcqRel);
        self.shared.update_pressure();
    }
}

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

/// The client an address counts as for the per-client cap: an IPv4
/// address, or an IPv6 /64 (one site has a whole /64 to draw from).
pub(crate) fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// How long a client whose session was closed under stress is refused
/// (while the stress lasts).
const IDLER_PENALTY: Duration = Duration::from_secs(60);

/// The most clients remembered (about 40 bytes each).
const IDLERS: usize = 65_536;

/// Clients whose sessions were closed under stress (idle, or erring), and when.
#[derive(Debug, Default)]
pub(crate) struct Idlers {
    /// Client (as [`client_key`]) → when its session was closed.
    closed: HashMap<IpAddr, Instant>,
}

impl Idlers {
    /// Remembers that a session of `client` was closed at `now` (the oldest forgotten first
    /// when the table is full: entries past the penalty, then all).
    fn note(&mut self, client: IpAddr, now: Instant) {
        if self.closed.len() >= IDLERS {
            self.closed
                .retain(|_, at| now.saturating_duration_since(*at) < IDLER_PENALTY);
            if self.closed.len() >= IDLERS {
                self.closed.clear();
            }
        }
        self.closed.insert(client, now);
    }

    /// Whether a session of `client` was closed within the penalty before `now`.
    fn penalized(&self, client: IpAddr, now: Instant) -> bool {
        self.closed
            .get(&client)
            .is_some_and(|at| now.saturating_duration_since(*at) < IDLER_PENALTY)
    }
}

/// The message being received on a connection: its spool file and the
/// content not yet written to it.
struct Reception {
    /// The file; None once a write failed (it is then removed).
    incoming: Option<Incoming>,
    /// Content not yet written.
    pending: Vec<u8>,
}

impl Reception {
    /// Writes the pending content to the file; a failure drops the file.
    async fn flush(&mut self) {
        let Some(mut incoming) = self.incoming.take() else {
            self.pending.clear();
            return;
        };
        let mut pending = std::mem::take(&mut self.pending);
        let written = blocking(move || {
            incoming.append(&pending)?;
            pending.clear();
            Ok((incoming, pending))
        })
        .await;
        match written {
            Ok((incoming, pending)) => {
                self.incoming = Some(incoming);
                self.pending = pending;
            }
            Err(error) => tracing::error!(%error, "spooling message data"),
        }
    }
}

/// Serves one client connection to its end; `slot` is its session slot.
pub(super) async fn connection<C: Courier>(
    shared: Arc<Shared<C>>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: SessionSlot<C>,
) {
    let _slot = slot;
    let _ = stream.set_nodelay(true);
    let mut stream = Stream::Plain(stream);
    let client = client_key(peer.ip());
    let over_cap = {
        let mut clients = lock(&shared.clients);
        let count = clients.entry(client).or_insert(0);
        *count += 1;
        *count > shared.config.max_connections_per_client
    };
    let _client_slot = ClientSlot {
        clients: &shared.clients,
        address: client,
    };
    if over_cap {
        let _ = stream
            .io()
            .write_all(b"421 4.7.0 Too many connections from your address\r\n")
            .await;
        return;
    }
    let mut pressure = shared.pressure.subscribe();
    if *pressure.borrow() && lock(&shared.idlers).penalized(client, Instant::now()) {
        let _ = stream
            .io()
            .write_all(b"421 4.7.0 Your last session idled or erred while we are busy, try again later\r\n")
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
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut reception: Option<Reception> = None;
    loop {
        let waiting_since = Instant::now();
        let read = loop {
            let stressed = *pressure.borrow_and_update();
            session.set_stressed(stressed);
            let mut limit = if session.in_data() {
                shared.config.data_timeout
            } else {
                shared.config.command_timeout
            };
            if stressed {
                limit = limit.min(shared.config.stress_timeout);
            }
            let deadline = waiting_since + limit;
            tokio::select! {
                read = stream.io().read(&mut buffer) => break Some(read),
                () = tokio::time::sleep_until(deadline) => break None,
                changed = pressure.changed() => {
                    if changed.is_err() {
                        // The relay is going away.
                        return;
                    }
                }
            }
        };
        let read = match read {
            None => {
                if *pressure.borrow() {
                    lock(&shared.idlers).note(client, Instant::now());
                }
                let reply = session.abort("Timeout, closing connection");
                let _ = stream.io().write_all(&reply.to_wire()).await;
                return;
            }
            Some(Ok(0)) | Some(Err(_)) => return,
            Some(Ok(read)) => read,
        };
        let mut events: std::collections::VecDeque<Event> = session.feed(&buffer[..read]).into();
        let mut output = Vec::new();
        while let Some(event) = events.pop_front() {
            match event {
                Event::Reply(reply) => output.extend_from_slice(&reply.to_wire()),
                Event::Open(envelope) => {
                    let now = SystemTime::now();
                    let opened = open(&shared, *envelope, now).await;
                    let answer = match opened {
                        Ok(incoming) => {
                            reception = Some(Reception {
                                incoming: Some(incoming),
                                pending: Vec::new(),
                            });
                            Ok(())
                        }
                        Err(refusal) => Err(refusal),
                    };
                    events.extend(session.opened(answer, now));
                }
                Event::Data(content) => {
                    if let Some(reception) = &mut reception {
                        reception.pending.extend_from_slice(&content);
                        if reception.pending.len() >= FLUSH_AT {
                            reception.flush().await;
                        }
                    }
                }
                Event::Commit => {
                    let outcome = match reception.take() {
                        Some(reception) => commit(&shared, reception).await,
                        None => Err("no message open".to_string()),
                    };
                    events.extend(session.stored(outcome));
                }
                Event::Discard => reception = None,
                Event::Verify(address) => {
                    let verdict = verify(&shared, &address).await;
                    events.extend(session.verified(verdict));
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
                    let limit = if *pressure.borrow() {
                        shared.config.stress_timeout
                    } else {
                        shared.config.command_timeout
                    };
                    match timeout(limit, handshake).await {
                        Ok(Ok(secured)) => stream = Stream::Tls(Box::new(secured)),
                        _ => return,
                    }
                    session.tls_started();
                }
                Event::Close => {
                    if session.gave_up() && *pressure.borrow() {
                        lock(&shared.idlers).note(client, Instant::now());
                    }
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

/// Opens a spool file for a message arriving at `now`: refused when the
/// spool's file system has less free space than one and a half messages of
/// the largest size (452, as Postfix), or on any storage error (451).
async fn open<C>(
    shared: &Arc<Shared<C>>,
    mut envelope: Envelope,
    now: SystemTime,
) -> Result<Incoming, SpoolRefusal> {
    envelope.received = now;
    let spool = shared.spool.clone();
    let needed = shared.policy.max_message_size as u64 / 2 * 3;
    let opened = blocking(move || {
        match free_space(spool.directory()) {
            Ok(free) if free < needed => return Ok(Err(SpoolRefusal::Full)),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "free space of the spool unknown"),
        }
        spool.open_incoming(envelope).map(Ok)
    })
    .await;
    match opened {
        Ok(Ok(incoming)) => Ok(incoming),
        Ok(Err(refusal)) => {
            tracing::warn!(
                "spool file system short of space: messages refused with 452 until it is freed"
            );
            Err(refusal)
        }
        Err(error) => {
            tracing::error!(%error, "opening a spool file for a message");
            Err(SpoolRefusal::Failed)
        }
    }
}

/// Writes the rest of a received message and commits it; Ok(queue id)
/// only once it is on disk.
async fn commit<C>(shared: &Arc<Shared<C>>, reception: Reception) -> Result<String, String> {
    let Reception { incoming, pending } = reception;
    let Some(mut incoming) = incoming else {
        return Err("the message could not be written".into());
    };
    let spool = shared.spool.clone();
    let committed = blocking(move || {
        incoming.append(&pending)?;
        spool.commit(incoming, SystemTime::now())
    })
    .await;
    match committed {
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

/// The octets free for an unprivileged user on the file system of `path`.
fn free_space(path: &std::path::Path) -> Result<u64, SpoolError> {
    use std::os::unix::ffi::OsStrExt;
    let failure = |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| failure(std::io::ErrorKind::InvalidInput.into()))?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `name` is a NUL-terminated path and `stats` points to space
    // for one statvfs, which the call fills when it returns 0.
    let status = unsafe { libc::statvfs(name.as_ptr(), stats.as_mut_ptr()) };
    if status != 0 {
        return Err(failure(std::io::Error::last_os_error()));
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let stats = unsafe { stats.assume_init() };
    // The fields are narrower than u64 on 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let (blocks, size) = (stats.f_bavail as u64, stats.f_frsize as u64);
    Ok(blocks.saturating_mul(size))
}

/// The verdict on a recipient of a verified domain: remembered, or asked
/// of the domain's current destination (see [`crate::recipients`]). At
/// most a few probes run at once; a recipient that would wait for one is
/// answered from memory (or 450).
async fn verify<C: Courier>(shared: &Arc<Shared<C>>, address: &str) -> Verdict {
    let now = SystemTime::now();
    let domain = address.rsplit('@').next().unwrap_or_default();
    let destination = lock(&shared.queue).route(domain).cloned();
    let lookup = lock(&shared.book).lookup(address, destination.as_ref(), now);
    let (Lookup::Ask, Some(destination)) = (lookup, destination) else {
        return match lookup {
            Lookup::Answer(verdict) => verdict,
            Lookup::Ask => Verdict::Unknown,
        };
    };
    // A flood of made-up recipients must not become a flood of probes (and
    // of file descriptors): a recipient that cannot get a probe within 5 s
    // is answered from memory, or 450.
    let Ok(Ok(_permit)) = timeout(Duration::from_secs(5), shared.probes.acquire()).await else {
        return lock(&shared.book).remembered(address, now);
    };
    let limit = shared.config.command_timeout.min(Duration::from_secs(30));
    let probe = timeout(limit, shared.courier.verify(&destination, address))
        .await
        .unwrap_or_else(|_| Probe::Unavailable("verification timed out".into()));
    let now = SystemTime::now();
    let accepted = match probe {
        Probe::Accepted => true,
        Probe::Rejected(_) => false,
        Probe::Unavailable(reason) => {
            tracing::info!(%destination, %reason, "recipient verification unavailable");
            let mut book = lock(&shared.book);
            book.unavailable(&destination, now);
            return book.remembered(address, now);
        }
    };
    let news = {
        let mut book = lock(&shared.book);
        book.available(&destination);
        book.learn(address, accepted, now)
    };
    if news {
        shared.remember(address, accepted, now).await;
    }
    if accepted {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idler is refused for the penalty after its session was closed,
    /// and the table stays within its size.
    #[test]
    fn idlers_are_refused_for_a_while() {
        let mut idlers = Idlers::default();
        let start = Instant::now();
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        idlers.note(client, start);
        assert!(idlers.penalized(client, start + Duration::from_secs(59)));
        assert!(!idlers.penalized(client, start + IDLER_PENALTY));
        assert!(!idlers.penalized("192.0.2.8".parse().unwrap(), start));
        for number in 0..(IDLERS as u32 + 10) {
            idlers.note(IpAddr::from(number.to_be_bytes()), start);
        }
        assert!(idlers.closed.len() <= IDLERS, "{}", idlers.closed.len());
    }

    /// IPv4 clients count alone, IPv6 ones by /64, v4-mapped as IPv4.
    #[test]
    fn clients_are_counted_by_address_or_ipv6_64() {
        let key = |text: &str| client_key(text.parse().unwrap()).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
    }
}
