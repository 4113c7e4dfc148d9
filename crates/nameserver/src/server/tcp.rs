//! TCP serving (RFC 7766): a listener per address, one task per connection,
//! messages framed by a two-byte length.
//!
//! ```text
//!  accept ─▶ Admission::admit (admission.rs): the client's share spent ─▶ closed at once
//!     │                                       every slot taken ─▶ the connection idle
//!     │                                       longest is told to close, its slot reused
//!     ▼
//!  task: read ─▶ every complete frame: answer(.., Transport::Tcp) ─▶ output ─▶ write
//!          ▲                                                                    │
//!          └── until EOF, a malformed frame, idle timeout, eviction, stop ──────┘
//!  sweeper: every 250 ms, under pressure (¾ of the budget in use), closes the
//!           connections idle longer than the pressure timeout; it logs what was
//!           refused, evicted, swept, and the accept errors, with counts: the first
//!           line of a quiet spell at once, then at most one per 10 s
//! ```
//!
//! A frame [`routed`] to the primary (UPDATE, NOTIFY, AXFR/IXFR, TSIG) is
//! answered on a blocking thread (`spawn_blocking`: an UPDATE waits for
//! fsync); its responses (a whole transfer, every message signed) are framed
//! in order before the next frame is read.
//!
//! Pipelined queries are answered in order. Reads and writes are bounded by
//! the idle timeout, so a client that stops sending or stops reading holds
//! only its own connection, and only that long. A client holding its share
//! of the budget cannot take more; many clients holding idle connections
//! give them up to newcomers. An accept that fails (out of descriptors)
//! backs off instead of spinning, and is logged once per interval.

use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, timeout_at, Instant};

use super::admission::{Admission, Budget, Ticket, Verdict};
use crate::answer::{answer, Transport};
use crate::catalog::Catalog;
use crate::primary::{routed, Primary, Triage};

/// The smallest DNS message: a header. A shorter frame ends the connection.
const HEADER_LEN: usize = 12;

/// Pending responses are written once they reach this size, even while more
/// queries are buffered, so output stays bounded.
const OUTPUT_FLUSH: usize = 64 * 1024;

/// How long in-flight connections get to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The TCP limits of a server.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// Close a connection with no complete query, or a stalled write, for this long.
    pub(super) idle_timeout: Duration,
    /// Under pressure, close a connection with no complete query for this long.
    pub(super) pressure_idle_timeout: Duration,
    /// Connections at once, in all and per client.
    pub(super) budget: Budget,
}

/// The primary frames are routed to, when one is configured.
pub(super) type Routing = Option<Arc<dyn Primary>>;

/// Why a connection ends (for the debug log).
#[derive(Debug)]
enum Close {
    /// The client closed it (possibly mid-frame).
    Eof,
    /// A frame too short to be a DNS message.
    Malformed(usize),
    /// No complete query for the idle timeout.
    Idle,
    /// A response could not be written within the idle timeout.
    WriteStalled,
    /// The socket failed.
    Failed(io::Error),
    /// The server is stopping.
    Stopping,
    /// Closed while idle to make room (a full table, or pressure).
    Evicted,
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::Eof => f.write_str("closed by the client"),
            Close::Malformed(length) => {
                write!(f, "frame of {length} bytes is shorter than a DNS header")
            }
            Close::Idle => f.write_str("idle timeout"),
            Close::WriteStalled => f.write_str("client stopped reading"),
            Close::Failed(e) => write!(f, "socket error: {e}"),
            Close::Stopping => f.write_str("server stopping"),
            Close::Evicted => f.write_str("idle while connections were short; closed to make room"),
        }
    }
}

/// Binds a listening TCP socket on `addr` (non-blocking, for tokio).
pub(super) fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Drives `runtime` on the calling thread: accepts on every listener until
/// `stop` turns true, then lets connections finish and drops the runtime.
pub(super) fn run(
    runtime: tokio::runtime::Runtime,
    listeners: Vec<TcpListener>,
    catalog: Arc<ArcSwap<Catalog>>,
    limits: Limits,
    stop: watch::Receiver<bool>,
    routing: Routing,
) {
    runtime.block_on(async {
        let admission = Admission::new(limits.budget);
        let report = Arc::new(Report::default());
        let sweeper = tokio::spawn(sweep(
            Arc::clone(&admission),
            Arc::clone(&report),
            limits,
            stop.clone(),
        ));
        let accepting: Vec<_> = listeners
            .into_iter()
            .map(|listener| {
                tokio::spawn(accept_loop(
                    listener,
                    Shared {
                        catalog: catalog.clone(),
                        limits,
                        admission: Arc::clone(&admission),
                        report: Arc::clone(&report),
                        routing: routing.clone(),
                    },
                    stop.clone(),
                ))
            })
            .collect();
        for task in accepting {
            // A JoinError means the accept loop panicked; nothing to do but log.
            if task.await.is_err() {
                tracing::error!("a TCP accept loop panicked");
            }
        }
        if sweeper.await.is_err() {
            tracing::error!("the TCP sweeper panicked");
        }
    });
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
}

/// What every accept loop of a server shares.
#[derive(Clone)]
struct Shared {
    /// The zones served.
    catalog: Arc<ArcSwap<Catalog>>,
    /// Timeouts and budget.
    limits: Limits,
    /// The connection table.
    admission: Arc<Admission>,
    /// Counts for the periodic log.
    report: Arc<Report>,
    /// The primary, if any.
    routing: Routing,
}

/// What happened to connections since the last log line, counted by the
/// accept loops and the sweeper and logged by the sweeper once per
/// [`REPORT_INTERVAL`].
#[derive(Default)]
struct Report {
    /// Connections closed at once: their client held its share.
    refused_client: AtomicU64,
    /// Connections closed at once: every slot was busy.
    refused_full: AtomicU64,
    /// Idle connections closed to make room for a new one.
    evicted: AtomicU64,
    /// Idle connections closed early under pressure.
    swept: AtomicU64,
    /// Failed accept calls.
    accept_failed: AtomicU64,
    /// The last accept error, for the log line.
    last_error: Mutex<Option<String>>,
}

/// How often the sweeper looks for idle connections to close under pressure.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// How often the counts of refused, evicted and swept connections and of
/// failed accepts are logged (when any is not zero).
const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// The first wait after a failed accept; it doubles while accepts keep
/// failing, up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);

/// The longest wait between two accept attempts that fail.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(250);

/// How long an accept over the budget waits for the slot of the idle
/// connection it evicted.
const EVICTION_WAIT: Duration = Duration::from_millis(100);

/// Closes idle connections early while the server is under pressure, and
/// logs the report, until stopped.
async fn sweep(
    admission: Arc<Admission>,
    report: Arc<Report>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_report: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        if admission.under_pressure() {
            let told = admission.sweep(now, limits.pressure_idle_timeout);
            report.swept.fetch_add(told as u64, Ordering::Relaxed);
        }
        // The first line of a quiet spell at once, then one per interval.
        let since = last_report.map_or(REPORT_INTERVAL, |at| now.duration_since(at));
        if since >= REPORT_INTERVAL && report.log(&admission, limits, since.min(REPORT_INTERVAL)) {
            last_report = Some(now);
        }
    }
}

impl Report {
    /// Logs and resets the counts, when any is not zero; true when it did.
    fn log(&self, admission: &Admission, limits: Limits, period: Duration) -> bool {
        let take = |counter: &AtomicU64| counter.swap(0, Ordering::Relaxed);
        let refused_client = take(&self.refused_client);
        let refused_full = take(&self.refused_full);
        let evicted = take(&self.evicted);
        let swept = take(&self.swept);
        let failed = take(&self.accept_failed);
        let seconds = period.as_secs().max(1);
        let pressure = refused_client + refused_full + evicted + swept > 0;
        if pressure {
            tracing::warn!(
                in_use = admission.in_use(),
                max_connections = admission.capacity(),
                max_per_client = limits.budget.max_per_client,
                "TCP under pressure in the last {seconds} s: {refused_client} connections refused \
                 (their client held its share), {refused_full} refused (every connection busy), \
                 {evicted} idle connections closed to admit new ones, {swept} closed after \
                 {:?} idle",
                limits.pressure_idle_timeout
            );
        }
        if failed > 0 {
            let error = self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_default();
            tracing::warn!(
                "TCP accept failed {failed} times in the last {seconds} s ({error}); backing off"
            );
        }
        pressure || failed > 0
    }

    /// Counts a failed accept and keeps its error for the log line.
    fn accept_failed(&self, error: &io::Error) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
        self.accept_failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// True for the accept errors that mean the process or the system is out
/// of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).
fn out_of_resources(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accepts connections on one listener until stopped.
async fn accept_loop(listener: TcpListener, shared: Shared, mut stop: watch::Receiver<bool>) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        if *stop.borrow() {
            return;
        }
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            Err(error) => {
                // Counted; the sweeper logs it within 250 ms, then once per interval.
                shared.report.accept_failed(&error);
                if out_of_resources(&error) {
                    // Our own idle connections are descriptors we can give back.
                    let told = shared
                        .admission
                        .sweep(Instant::now(), shared.limits.pressure_idle_timeout);
                    shared
                        .report
                        .swept
                        .fetch_add(told as u64, Ordering::Relaxed);
                }
                // The failed connection stays in the backlog: wait rather than spin.
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Some(ticket) = admit(&shared, peer).await else {
            drop(stream);
            continue;
        };
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let close = serve_connection(stream, peer, &shared, &ticket, stop).await;
            tracing::debug!(%peer, %close, "TCP connection closed");
            drop(ticket);
        });
    }
}

/// A slot for a connection from `peer`: at once when one is free; when
/// every slot is taken, the connection idle longest is told to close and
/// its slot awaited briefly. `None`: close the new connection.
async fn admit(shared: &Shared, peer: SocketAddr) -> Option<Ticket> {
    let deadline = Instant::now() + EVICTION_WAIT;
    let mut evicted = false;
    loop {
        let freed = shared.admission.freed();
        tokio::pin!(freed);
        freed.as_mut().enable();
        match shared.admission.admit(peer.ip()) {
            Verdict::Admitted(ticket) => return Some(ticket),
            Verdict::ClientFull => {
                shared.report.refused_client.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "TCP: the client holds its share of connections; closed at once");
                return None;
            }
            Verdict::Full => {}
        }
        if !evicted {
            if !shared.admission.evict_oldest_idle() {
                shared.report.refused_full.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "TCP: every connection is busy; closed at once");
                return None;
            }
            shared.report.evicted.fetch_add(1, Ordering::Relaxed);
            evicted = true;
        }
        if timeout_at(deadline, freed).await.is_err() {
            shared.report.refused_full.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    }
}

/// Serves one connection until it closes, goes idle, is evicted, or the
/// server stops.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    ticket: &Ticket,
    mut stop: watch::Receiver<bool>,
) -> Close {
    let limits = shared.limits;
    // Responses are written in whole batches, so Nagle only adds delay.
    let _ = stream.set_nodelay(true);
    let mut input: Vec<u8> = Vec::with_capacity(4096);
    let mut output: Vec<u8> = Vec::with_capacity(4096);
    let mut response: Vec<u8> = Vec::with_capacity(4096);
    let mut last_query = Instant::now();
    loop {
        let mut consumed = 0;
        while let Some(frame) = next_frame(&input[consumed..]) {
            let query = match frame {
                Frame::Message(query) => query,
                Frame::Malformed(length) => return Close::Malformed(length),
            };
            consumed += 2 + query.len();
            last_query = Instant::now();
            if let Some(primary) = shared.routing.as_ref().filter(|_| routed(query)) {
                let mut responses = Vec::new();
                match primary.triage(query, peer, Transport::Tcp, &mut response) {
                    Triage::Answer => {
                        crate::metrics::routed(query, std::slice::from_ref(&response));
                        push_frame(&mut output, &response);
                    }
                    Triage::Drop => crate::metrics::routed(query, &responses),
                    Triage::Queue(_) => {
                        let (primary, request) = (Arc::clone(primary), query.to_vec());
                        let handled = tokio::task::spawn_blocking(move || {
                            primary.handle(&request, peer, Transport::Tcp, &mut responses);
                            crate::metrics::routed(&request, &responses);
                            responses
                        })
                        .await;
                        match handled {
                            Ok(responses) => {
                                for response in &responses {
                                    push_frame(&mut output, response);
                                    if output.len() >= OUTPUT_FLUSH {
                                        if let Err(close) =
                                            write(&mut stream, &mut output, limits.idle_timeout)
                                                .await
                                        {
                                            return close;
                                        }
                                    }
                                }
                            }
                            Err(_) => tracing::error!(
                                %peer,
                                "the primary panicked on a TCP request; dropped it"
                            ),
                        }
                    }
                }
                last_query = Instant::now();
                continue;
            }
            let zones = shared.catalog.load();
            // A bug in the answer path must cost one query, not the server.
            let answered = catch_unwind(AssertUnwindSafe(|| {
                answer(&zones, query, Transport::Tcp, &mut response)
            }));
            match answered {
                Ok(true) => {
                    crate::metrics::answered(Transport::Tcp, &response);
                    push_frame(&mut output, &response)
                }
                Ok(false) => {}
                Err(_) => tracing::error!("answer panicked on a TCP query; dropped it"),
            }
            if output.len() >= OUTPUT_FLUSH {
                if let Err(close) = write(&mut stream, &mut output, limits.idle_timeout).await {
                    return close;
                }
            }
        }
        input.drain(..consumed);
        if let Err(close) = write(&mut stream, &mut output, limits.idle_timeout).await {
            return close;
        }
        if input.capacity() - input.len() < 4096 {
            input.reserve(16 * 1024);
        }
        ticket.idle_since(last_query);
        let read = tokio::select! {
            biased;
            _ = stop.changed() => return Close::Stopping,
            _ = ticket.evicted() => return Close::Evicted,
            _ = sleep_until(last_query + limits.idle_timeout) => return Close::Idle,
            read = stream.read_buf(&mut input) => read,
        };
        ticket.busy();
        match read {
            Ok(0) => return Close::Eof,
            Ok(_) => {}
            Err(e) => return Close::Failed(e),
        }
    }
}

/// What the front of a connection's input holds.
#[derive(Debug, PartialEq, Eq)]
enum Frame<'a> {
    /// A complete message (without its length prefix).
    Message(&'a [u8]),
    /// A length prefix too small for a DNS header.
    Malformed(usize),
}

/// The complete frame at the front of `input`, or None while it is still
/// arriving.
fn next_frame(input: &[u8]) -> Option<Frame<'_>> {
    let prefix: [u8; 2] = input.get(..2)?.try_into().ok()?;
    let length = usize::from(u16::from_be_bytes(prefix));
    if length < HEADER_LEN {
        return Some(Frame::Malformed(length));
    }
    input.get(2..2 + length).map(Frame::Message)
}

/// Appends `message` to `output` with its length prefix; a message over
/// 65535 bytes cannot be framed and is dropped (logged).
fn push_frame(output: &mut Vec<u8>, message: &[u8]) {
    let Ok(length) = u16::try_from(message.len()) else {
        tracing::error!(
            length = message.len(),
            "TCP response longer than 65535 bytes; dropped"
        );
        return;
    };
    output.extend_from_slice(&length.to_be_bytes());
    output.extend_from_slice(message);
}

/// Writes and clears `output`, within `limit`.
async fn write(stream: &mut TcpStream, output: &mut Vec<u8>, limit: Duration) -> Result<(), Close> {
    if output.is_empty() {
        return Ok(());
    }
    match timeout(limit, stream.write_all(output)).await {
        Ok(Ok(())) => {
            output.clear();
            Ok(())
        }
        Ok(Err(e)) => Err(Close::Failed(e)),
        Err(_) => Err(Close::WriteStalled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_frame_waits_for_the_whole_message() {
        assert_eq!(next_frame(&[]), None);
        assert_eq!(next_frame(&[0]), None);
        let mut input = vec![0, 12];
        input.extend_from_slice(&[7; 11]);
        assert_eq!(next_frame(&input), None, "11 of 12 bytes is not a frame");
        input.push(7);
        input.push(99);
        assert_eq!(next_frame(&input), Some(Frame::Message(&[7; 12][..])));
    }

    #[test]
    fn next_frame_rejects_frames_shorter_than_a_header() {
        assert_eq!(next_frame(&[0, 0]), Some(Frame::Malformed(0)));
        assert_eq!(next_frame(&[0, 11, 1, 2]), Some(Frame::Malformed(11)));
    }

    #[test]
    fn push_frame_prefixes_the_length_and_drops_oversized_messages() {
        let mut output = Vec::new();
        push_frame(&mut output, &[1, 2, 3]);
        assert_eq!(output, [0, 3, 1, 2, 3]);
        push_frame(&mut output, &vec![0; 65536]);
        assert_eq!(output.len(), 5, "a 65536-byte message must not be framed");
        push_frame(&mut output, &vec![0; 65535]);
        assert_eq!(&output[5..7], &[0xff, 0xff]);
    }
}
