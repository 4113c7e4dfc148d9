//! UDP serving: a group of SO_REUSEPORT sockets on one port, each drained by
//! its own thread in batches.
//!
//! ```text
//!  recvmmsg (≤ BATCH datagrams, blocks for the first only)
//!     └─▶ for each: catalog.load() ─▶ answer(.., Transport::Udp, &mut response[i])
//!                   └─▶ RRL (when on): Limiter::check(client, response, now)
//!                         Send ─▶ as is │ Slip ─▶ rrl::slip (TC=1, question only) │ Drop ─▶ skipped
//!  sendmmsg (every response left, to the address its query came from)
//! ```
//!
//! A message [`routed`] to the primary (UPDATE, NOTIFY, transfers, TSIG) is
//! first triaged by the worker ([`Primary::triage`]: a bad TSIG or an
//! unsigned UPDATE from an address no rule names is answered there, through
//! RRL like any answer); the rest is copied into a bounded queue of two
//! lanes and answered by the primary's own thread, which takes the signed
//! lane first and replies from the same socket. The worker never waits on
//! it (a full lane drops the message, as a busy network could), so a flood
//! of unsigned or forged messages neither fills the queue nor delays the
//! messages signed with a configured key.
//!
//! Every buffer and message header is allocated once per worker and reused.

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::answer::{answer, Transport};
use crate::catalog::Catalog;
use crate::primary::{routed, Lane, Primary, Triage};
use crate::rrl::{self, Limiter, Verdict};

/// Datagrams moved per recvmmsg/sendmmsg call.
const BATCH: usize = 32;

/// Room for the largest possible datagram, so nothing is ever truncated.
const DATAGRAM_MAX: usize = 65535;

/// The shortest time between two log lines about failed receives.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The longest a worker waits for a datagram before checking the stop flag.
const WAKE_INTERVAL: Duration = Duration::from_millis(200);

/// One UDP worker: a socket and what it answers from.
pub(super) struct Worker {
    /// The worker's own socket.
    socket: Arc<Socket>,
    /// The zones served, swapped by whoever publishes new snapshots.
    catalog: Arc<ArcSwap<Catalog>>,
    /// Set when the worker must return.
    stop: Arc<AtomicBool>,
    /// Response rate limiting, when on.
    rate_limit: Option<RateLimit>,
    /// Where routed messages go, when a primary is configured.
    routing: Option<Routing>,
}

/// The primary of a server and the queue in front of its thread.
#[derive(Clone)]
pub(super) struct Routing {
    /// Triages on the worker, answers on its own thread.
    pub(super) primary: Arc<dyn Primary>,
    /// The queue its thread drains.
    pub(super) queue: Arc<RoutedQueue>,
}

/// Routed datagrams waiting for the primary's thread, in two lanes.
pub(super) struct RoutedQueue {
    /// The lanes.
    lanes: Mutex<Lanes>,
    /// Signalled when a datagram is queued.
    ready: Condvar,
}

/// The two lanes of a [`RoutedQueue`].
#[derive(Default)]
struct Lanes {
    /// Messages whose TSIG verified; taken first.
    signed: VecDeque<Routed>,
    /// The rest.
    unsigned: VecDeque<Routed>,
}

/// A routed datagram on its way to the primary's thread.
pub(super) struct Routed {
    /// The request bytes.
    request: Vec<u8>,
    /// Who sent it.
    client: SocketAddr,
    /// The socket it came in on (the reply leaves from it).
    socket: Arc<Socket>,
}

/// Signed routed datagrams waiting for the primary, at most; more are dropped.
const SIGNED_QUEUE: usize = 1024;

/// Unsigned routed datagrams waiting for the primary, at most; more are
/// dropped.
const UNSIGNED_QUEUE: usize = 256;

impl RoutedQueue {
    /// An empty queue.
    pub(super) fn new() -> RoutedQueue {
        RoutedQueue {
            lanes: Mutex::new(Lanes::default()),
            ready: Condvar::new(),
        }
    }

    /// Queues `routed` in `lane`; false (and dropped) when the lane is full.
    fn push(&self, lane: Lane, routed: Routed) -> bool {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let (queue, limit) = match lane {
            Lane::Signed => (&mut lanes.signed, SIGNED_QUEUE),
            Lane::Unsigned => (&mut lanes.unsigned, UNSIGNED_QUEUE),
        };
        if queue.len() >= limit {
            return false;
        }
        queue.push_back(routed);
        drop(lanes);
        self.ready.notify_one();
        true
    }

    /// The datagrams waiting, at most `max`, signed lane first; waits for
    /// one, and returns an empty run once `stop` is set.
    fn pop_run(&self, stop: &AtomicBool, max: usize) -> Vec<Routed> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if stop.load(Ordering::Relaxed) {
                return Vec::new();
            }
            let waiting = lanes.signed.len() + lanes.unsigned.len();
            if waiting > 0 {
                let mut run = Vec::with_capacity(waiting.min(max));
                while run.len() < max {
                    match lanes
                        .signed
                        .pop_front()
                        .or_else(|| lanes.unsigned.pop_front())
                    {
                        Some(routed) => run.push(routed),
                        None => break,
                    }
                }
                return run;
            }
            lanes = self
                .ready
                .wait_timeout(lanes, WAKE_INTERVAL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The shared limiter and the instant its clock counts from.
pub(super) struct RateLimit {
    /// The limiter all UDP workers share.
    pub(super) limiter: Arc<Limiter>,
    /// Time zero of the limiter's clock, the same for every worker.
    pub(super) epoch: Instant,
}

/// A worker's buffers and the message headers that point into them.
///
/// The headers hold raw pointers into the boxed buffers, whose heap storage
/// never moves, so the struct may move freely; it is not `Send` and lives on
/// its worker's stack.
struct Batch {
    /// BATCH receive buffers of DATAGRAM_MAX bytes, back to back.
    queries: Box<[u8]>,
    /// Client addresses, filled by recvmmsg and read by sendmmsg.
    peers: Box<[libc::sockaddr_storage]>,
    /// One receive iovec per query buffer.
    receive_iov: Box<[libc::iovec]>,
    /// Receive headers.
    receive: Box<[libc::mmsghdr]>,
    /// Responses, one per received datagram (cleared by `answer`).
    responses: Vec<Vec<u8>>,
    /// One send iovec per response to send.
    send_iov: Box<[libc::iovec]>,
    /// Send headers, the first `n` filled per round.
    send: Box<[libc::mmsghdr]>,
}

impl Worker {
    /// A worker for `socket`.
    pub(super) fn new(
        socket: Arc<Socket>,
        catalog: Arc<ArcSwap<Catalog>>,
        stop: Arc<AtomicBool>,
        rate_limit: Option<RateLimit>,
        routing: Option<Routing>,
    ) -> Worker {
        Worker {
            socket,
            catalog,
            stop,
            rate_limit,
            routing,
        }
    }

    /// Serves until the stop flag is set.
    pub(super) fn run(self) {
        let mut batch = Batch::new();
        let fd = self.socket.as_raw_fd();
        // Failed receives since the last log line, and when that was.
        let (mut failures, mut logged): (u64, Option<Instant>) = (0, None);
        while !self.stop.load(Ordering::Relaxed) {
            let received = match batch.receive(fd) {
                Ok(n) => n,
                Err(e) => {
                    if !transient(&e) {
                        failures += 1;
                        if logged.is_none_or(|at| at.elapsed() >= FAILURE_LOG_INTERVAL) {
                            tracing::warn!(error = %e, "UDP receive failed ({failures} times since the last such line)");
                            (failures, logged) = (0, Some(Instant::now()));
                        }
                        // Avoid spinning on a persistent error.
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    continue;
                }
            };
            let routing = self.routing.as_ref().map(|routing| (routing, &self.socket));
            let ready =
                batch.answer_all(received, &self.catalog, self.rate_limit.as_ref(), routing);
            batch.send(fd, ready);
        }
    }
}

impl Batch {
    /// Allocates the buffers and points the receive headers at them.
    fn new() -> Batch {
        let mut batch = Batch {
            queries: vec![0u8; BATCH * DATAGRAM_MAX].into_boxed_slice(),
            // SAFETY: all-zero bytes are a valid sockaddr_storage, iovec and
            // mmsghdr (plain C structs of integers and null pointers).
            peers: (0..BATCH).map(|_| unsafe { mem::zeroed() }).collect(),
            receive_iov: (0..BATCH).map(|_| unsafe { mem::zeroed() }).collect(),
            receive: (0..BATCH).map(|_| unsafe { mem::zeroed() }).collect(),
            responses: (0..BATCH).map(|_| Vec::with_capacity(4096)).collect(),
            send_iov: (0..BATCH).map(|_| unsafe { mem::zeroed() }).collect(),
            send: (0..BATCH).map(|_| unsafe { mem::zeroed() }).collect(),
        };
        for i in 0..BATCH {
            batch.receive_iov[i] = libc::iovec {
                iov_base: batch.queries[i * DATAGRAM_MAX..].as_mut_ptr().cast(),
                iov_len: DATAGRAM_MAX,
            };
            let header = &mut batch.receive[i].msg_hdr;
            header.msg_name = (&mut batch.peers[i] as *mut libc::sockaddr_storage).cast();
            header.msg_iov = &mut batch.receive_iov[i];
            header.msg_iovlen = 1;
        }
        batch
    }

    /// Waits for at least one datagram and takes up to BATCH; returns how many.
    fn receive(&mut self, fd: libc::c_int) -> io::Result<usize> {
        for message in self.receive.iter_mut() {
            message.msg_hdr.msg_namelen =
                mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            message.msg_hdr.msg_flags = 0;
            message.msg_len = 0;
        }
        // SAFETY: every header points at live buffers of the lengths given
        // (set up in `new`, owned by self); the kernel writes only within them.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.receive.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Answers the first `received` datagrams and fills the send headers;
    /// returns how many responses are ready.
    fn answer_all(
        &mut self,
        received: usize,
        catalog: &ArcSwap<Catalog>,
        rate_limit: Option<&RateLimit>,
        routing: Option<(&Routing, &Arc<Socket>)>,
    ) -> usize {
        let mut ready = 0;
        // One reading of the clock per batch: the batch arrived at once.
        let now = rate_limit.map(|r| r.epoch.elapsed());
        for i in 0..received {
            let message = &self.receive[i];
            let length = (message.msg_len as usize).min(DATAGRAM_MAX);
            let query = &self.queries[i * DATAGRAM_MAX..i * DATAGRAM_MAX + length];
            let response = &mut self.responses[i];
            if let Some((routing, socket)) = routing.filter(|_| routed(query)) {
                let Some(client) = peer_addr(&self.peers[i]) else {
                    continue;
                };
                let triage = catch_unwind(AssertUnwindSafe(|| {
                    routing
                        .primary
                        .triage(query, client, Transport::Udp, response)
                }));
                match triage {
                    Ok(Triage::Answer) => {
                        crate::metrics::routed(query, std::slice::from_ref(response));
                    }
                    Ok(Triage::Drop) => {
                        crate::metrics::routed(query, &[]);
                        continue;
                    }
                    Ok(Triage::Queue(lane)) => {
                        let routed = Routed {
                            request: query.to_vec(),
                            client,
                            socket: Arc::clone(socket),
                        };
                        if !routing.queue.push(lane, routed) {
                            tracing::debug!(%client, ?lane, "primary queue full; routed datagram dropped");
                        }
                        continue;
                    }
                    Err(_) => {
                        tracing::error!(%client, "the primary's triage panicked on a UDP request; dropped it");
                        continue;
                    }
                }
            } else {
                let zones = catalog.load();
                // A bug in the answer path must cost one query, not the worker.
                let answered = catch_unwind(AssertUnwindSafe(|| {
                    answer(&zones, query, Transport::Udp, response)
                }));
                match answered {
                    Ok(true) => crate::metrics::answered(Transport::Udp, response),
                    Ok(false) => continue,
                    Err(_) => {
                        tracing::error!("answer panicked on a UDP query; dropped it");
                        continue;
                    }
                }
            }
            if let (Some(rate_limit), Some(now), Some(client)) =
                (rate_limit, now, peer_ip(&self.peers[i]))
            {
                match rate_limit.limiter.check(client, response, now) {
                    Verdict::Send => {}
                    Verdict::Slip => {
                        crate::metrics::rrl_slipped();
                        rrl::slip(response)
                    }
                    Verdict::Drop => {
                        crate::metrics::rrl_dropped();
                        continue;
                    }
                }
            }
            self.send_iov[ready] = libc::iovec {
                iov_base: response.as_mut_ptr().cast(),
                iov_len: response.len(),
            };
            let header = &mut self.send[ready].msg_hdr;
            header.msg_name = (&mut self.peers[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = self.receive[i].msg_hdr.msg_namelen;
            header.msg_iov = &mut self.send_iov[ready];
            header.msg_iovlen = 1;
            ready += 1;
        }
        ready
    }

    /// Sends the first `ready` responses; a response the kernel refuses is
    /// dropped (as the network could have), the rest still go.
    fn send(&mut self, fd: libc::c_int, ready: usize) {
        let mut sent = 0;
        while sent < ready {
            // SAFETY: the first `ready` send headers were filled by
            // `answer_all` and point at live responses and peer addresses.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.send[sent..].as_mut_ptr(),
                    (ready - sent) as libc::c_uint,
                    0,
                )
            };
            if n > 0 {
                sent += n as usize;
                continue;
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::Interrupted => {}
                // The send timeout expired: the socket buffer stays full, drop the rest.
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return,
                _ => {
                    tracing::debug!(error = %error, "UDP send failed; response dropped");
                    sent += 1;
                }
            }
        }
    }
}

/// Routed datagrams handed to the primary together at most: those waiting
/// when its thread looks, so UPDATEs that queued while it was busy are
/// committed together (see `Primary::handle_all`).
const ROUTED_RUN: usize = 64;

/// Answers routed datagrams with `primary`, signed lane first, each run of
/// those waiting together, until `stop` is set.
pub(super) fn serve_routed(routing: Routing, stop: Arc<AtomicBool>) {
    let Routing { primary, queue } = routing;
    let mut responses: Vec<Vec<Vec<u8>>> = Vec::new();
    loop {
        let run = queue.pop_run(&stop, ROUTED_RUN);
        if run.is_empty() {
            return;
        }
        let requests: Vec<(&[u8], SocketAddr)> = run
            .iter()
            .map(|routed| (routed.request.as_slice(), routed.client))
            .collect();
        let handled = catch_unwind(AssertUnwindSafe(|| {
            primary.handle_all(&requests, Transport::Udp, &mut responses)
        }));
        if handled.is_err() {
            tracing::error!(
                requests = run.len(),
                "the primary panicked on a run of UDP requests; dropped them"
            );
            continue;
        }
        for (routed, messages) in run.iter().zip(&responses) {
            crate::metrics::routed(&routed.request, messages);
            if let Some(response) = messages.first() {
                let to = SockAddr::from(routed.client);
                if let Err(e) = routed.socket.send_to(response, &to) {
                    tracing::debug!(client = %routed.client, error = %e, "UDP reply from the primary not sent");
                }
            }
        }
    }
}

/// The address and port in a peer address filled by recvmmsg.
fn peer_addr(peer: &libc::sockaddr_storage) -> Option<SocketAddr> {
    let ip = peer_ip(peer)?;
    let port = match libc::c_int::from(peer.ss_family) {
        // SAFETY: as in `peer_ip`: the family says which struct it holds.
        libc::AF_INET => u16::from_be(unsafe {
            (*(peer as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()).sin_port
        }),
        // SAFETY: as above, for sockaddr_in6.
        _ => u16::from_be(unsafe {
            (*(peer as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()).sin6_port
        }),
    };
    Some(SocketAddr::new(ip, port))
}

/// The IP address in a peer address filled by recvmmsg; `None` for a family
/// other than IPv4 and IPv6 (which a UDP/IP socket never reports).
fn peer_ip(peer: &libc::sockaddr_storage) -> Option<IpAddr> {
    match libc::c_int::from(peer.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for any sockaddr.
            let v4 =
                unsafe { &*(peer as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 =
                unsafe { &*(peer as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// True for the errors a receive loop expects: timeouts, signals, the wake-up
/// on shutdown.
fn transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Binds `count` SO_REUSEPORT sockets on `addr`; when its port is 0 the first
/// picks the port and the others join it.
pub(super) fn bind_group(
    addr: SocketAddr,
    count: usize,
    receive_buffer: usize,
) -> io::Result<Vec<Socket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut target = addr;
    for _ in 0..count.max(1) {
        let socket = bind_one(target, receive_buffer)
            .map_err(|e| io::Error::new(e.kind(), format!("UDP {target}: {e}")))?;
        if target.port() == 0 {
            target = local_addr(&socket)?;
        }
        sockets.push(socket);
    }
    Ok(sockets)
}

/// One blocking UDP socket on `addr`, ready for a worker.
fn bind_one(addr: SocketAddr, receive_buffer: usize) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // So that [::]:53 and 0.0.0.0:53 can both be configured.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    set_receive_buffer(&socket, receive_buffer);
    socket.set_read_timeout(Some(WAKE_INTERVAL))?;
    socket.set_write_timeout(Some(WAKE_INTERVAL))?;
    socket.bind(&SockAddr::from(addr))?;
    Ok(socket)
}

/// Asks for a receive buffer of `bytes`, forcing it past `net.core.rmem_max`
/// when the process has CAP_NET_ADMIN; a smaller buffer is logged, not fatal.
fn set_receive_buffer(socket: &Socket, bytes: usize) {
    if bytes == 0 {
        return;
    }
    let _ = socket.set_recv_buffer_size(bytes);
    // Linux reports twice the size asked for (room for bookkeeping).
    if socket.recv_buffer_size().unwrap_or(0) >= bytes {
        return;
    }
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket and a pointer to a c_int of the length given.
    let forced = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&value as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced != 0 {
        tracing::debug!(
            requested = bytes,
            got = socket.recv_buffer_size().unwrap_or(0),
            "UDP receive buffer limited by net.core.rmem_max"
        );
    }
}

/// The address a socket is bound to.
pub(super) fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket.local_addr()?.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "UDP socket bound to a non-IP address",
        )
    })
}
