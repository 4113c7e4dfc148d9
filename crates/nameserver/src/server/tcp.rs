//! TCP serving (RFC 7766): a listener per address, one task per connection,
//! messages framed by a two-byte length.
//!
//! ```text
//!  accept ─(connection cap: over it, close at once)─▶ task:
//!     read ─▶ every complete frame: answer(.., Transport::Tcp) ─▶ output ─▶ write
//!       ▲                                                                    │
//!       └──────────── until EOF, a malformed frame, idle timeout, stop ──────┘
//! ```
//!
//! A frame [`routed`] to the primary (UPDATE, NOTIFY, AXFR/IXFR, TSIG) is
//! answered on a blocking thread (`spawn_blocking`: an UPDATE waits for
//! fsync); its responses (a whole transfer, every message signed) are framed
//! in order before the next frame is read.
//!
//! Pipelined queries are answered in order. Reads and writes are bounded by
//! the idle timeout, so a client that stops sending or stops reading holds
//! only its own connection, and only that long.

use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{sleep_until, timeout, Instant};

use crate::answer::{answer, Transport};
use crate::catalog::Catalog;
use crate::primary::{routed, Primary};

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
    /// Connections served at once, over all listeners.
    pub(super) max_connections: usize,
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
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    runtime.block_on(async {
        let accepting: Vec<_> = listeners
            .into_iter()
            .map(|listener| {
                tokio::spawn(accept_loop(
                    listener,
                    catalog.clone(),
                    limits,
                    permits.clone(),
                    stop.clone(),
                    routing.clone(),
                ))
            })
            .collect();
        for task in accepting {
            // A JoinError means the accept loop panicked; nothing to do but log.
            if task.await.is_err() {
                tracing::error!("a TCP accept loop panicked");
            }
        }
    });
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
}

/// Accepts connections on one listener until stopped.
async fn accept_loop(
    listener: TcpListener,
    catalog: Arc<ArcSwap<Catalog>>,
    limits: Limits,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    routing: Routing,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let catalog = catalog.clone();
                        let stop = stop.clone();
                        let routing = routing.clone();
                        tokio::spawn(async move {
                            let close = serve_connection(stream, peer, &catalog, limits, stop, routing).await;
                            tracing::debug!(%peer, %close, "TCP connection closed");
                            drop(permit);
                        });
                    }
                    Err(_) => tracing::debug!(%peer, "TCP connection limit reached; closed at once"),
                },
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

/// Serves one connection until it closes, goes idle, or the server stops.
async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    catalog: &ArcSwap<Catalog>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    routing: Routing,
) -> Close {
    // Responses are written in whole batches, so Nagle only adds delay.
    let _ = stream.set_nodelay(true);
    let mut input: Vec<u8> = Vec::with_capacity(4096);
    let mut output: Vec<u8> = Vec::with_capacity(4096);
    let mut response: Vec<u8> = Vec::with_capacity(4096);
    let mut deadline = Instant::now() + limits.idle_timeout;
    loop {
        let mut consumed = 0;
        while let Some(frame) = next_frame(&input[consumed..]) {
            let query = match frame {
                Frame::Message(query) => query,
                Frame::Malformed(length) => return Close::Malformed(length),
            };
            consumed += 2 + query.len();
            deadline = Instant::now() + limits.idle_timeout;
            if let Some(primary) = routing.as_ref().filter(|_| routed(query)) {
                let (primary, request) = (Arc::clone(primary), query.to_vec());
                let handled = tokio::task::spawn_blocking(move || {
                    let mut responses = Vec::new();
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
                                    write(&mut stream, &mut output, limits.idle_timeout).await
                                {
                                    return close;
                                }
                            }
                        }
                    }
                    Err(_) => {
                        tracing::error!(%peer, "the primary panicked on a TCP request; dropped it")
                    }
                }
                deadline = Instant::now() + limits.idle_timeout;
                continue;
            }
            let zones = catalog.load();
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
        tokio::select! {
            biased;
            _ = stop.changed() => return Close::Stopping,
            _ = sleep_until(deadline) => return Close::Idle,
            read = stream.read_buf(&mut input) => match read {
                Ok(0) => return Close::Eof,
                Ok(_) => {}
                Err(e) => return Close::Failed(e),
            },
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
