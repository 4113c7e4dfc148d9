//! The network server: serves [`answer`](crate::answer) over UDP and TCP on
//! the configured addresses until [`ServerHandle::shutdown`].
//!
//! ```text
//!                 ┌─ UDP socket 1 (SO_REUSEPORT) ── OS thread: recvmmsg ─▶ answer ─▶ sendmmsg
//!  listen addr ───┼─ UDP socket N (same port)    ── OS thread: recvmmsg ─▶ answer ─▶ sendmmsg
//!                 └─ TCP listener (same port)    ── tokio runtime on its own thread:
//!                                                    admission (budget, per-client share, eviction
//!                                                    of idle connections), one task per connection
//!                                                    (framing, idle timeout)
//!
//!  every query: catalog.load() (ArcSwap guard, no lock) ─▶ answer(&Catalog, bytes, transport)
//!  every UDP response, when RRL is on: Limiter::check ─▶ send │ slip (TC=1) │ drop
//!  UPDATE / NOTIFY / AXFR / IXFR / TSIG (primary::routed), when a primary is set:
//!     Primary::triage on the receiving thread (TSIG verified, ACL) ─▶ answered there │ dropped │
//!     UDP ─▶ bounded queue, signed lane first ─▶ primary thread: Primary::handle ─▶ send_to (same socket)
//!     TCP ─▶ spawn_blocking(Primary::handle) ─▶ every message framed, in order
//! ```
//!
//! As in Knot and NSD, each UDP worker owns its socket and its buffers and
//! moves datagrams in batches; the kernel spreads queries over the sockets of
//! a port by hashing the client address. TCP is served by a small tokio
//! runtime owned by the handle; a slow or silent client only ever holds its
//! own task and is closed after the idle timeout.

mod admission;
mod tcp;
mod udp;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::Socket;

use crate::catalog::Catalog;
use crate::primary::Primary;
use crate::rrl::{Limiter, RrlConfig, RrlCounters};

/// How and where to serve.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Addresses to serve on, UDP and TCP each. Port 0 picks a free port,
    /// shared by the UDP sockets and the TCP listener of that address. UDP
    /// replies leave with the source address the kernel picks (no
    /// IP_PKTINFO yet), so on a host with several addresses list each one
    /// rather than a wildcard.
    pub listen: Vec<SocketAddr>,
    /// UDP sockets and threads per address; 0 means one per core.
    pub udp_workers: usize,
    /// A TCP connection with no complete query (or whose response cannot be
    /// written) for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// At most this many TCP connections at once over all addresses (the
    /// TCP listener's budget of descriptors). A connection over it takes
    /// the place of the connection idle longest, or is closed at once when
    /// none is idle.
    pub tcp_max_connections: usize,
    /// At most this many TCP connections at once from one client (an IPv4
    /// address, an IPv6 /64); more are closed at once.
    pub tcp_max_connections_per_client: usize,
    /// While three quarters of `tcp_max_connections` are in use, a
    /// connection with no complete query for this long is closed.
    pub tcp_pressure_idle_timeout: Duration,
    /// Threads of the TCP runtime (at least 1).
    pub tcp_workers: usize,
    /// Requested SO_RCVBUF of each UDP socket, in bytes (forced past
    /// `net.core.rmem_max` when the process may).
    pub udp_receive_buffer: usize,
    /// Response rate limiting of UDP responses; `None` turns it off.
    pub rrl: Option<RrlConfig>,
    /// What answers UPDATE, NOTIFY, AXFR/IXFR and TSIG-signed messages;
    /// `None` leaves them to the answer path (NOTAUTH, as Knot with no ACL).
    pub primary: Option<Arc<dyn Primary>>,
}

/// A running server; [`shutdown`](ServerHandle::shutdown) (or drop) stops it.
#[derive(Debug)]
pub struct ServerHandle {
    /// The bound addresses, one per configured address (port resolved).
    local_addrs: Vec<SocketAddr>,
    /// Set to make the UDP workers return.
    stop: Arc<AtomicBool>,
    /// The UDP sockets, kept to wake their blocked workers on shutdown.
    udp_sockets: Vec<Arc<Socket>>,
    /// The UDP worker threads.
    udp_threads: Vec<JoinHandle<()>>,
    /// Tells the TCP side to stop accepting and close its connections.
    tcp_stop: tokio::sync::watch::Sender<bool>,
    /// The thread that drives the TCP runtime (and drops it).
    tcp_thread: Option<JoinHandle<()>>,
    /// The UDP response rate limiter, when configured.
    rrl: Option<Arc<Limiter>>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            listen: Vec::new(),
            udp_workers: 0,
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_max_connections: 1024,
            tcp_max_connections_per_client: 32,
            tcp_pressure_idle_timeout: Duration::from_secs(1),
            tcp_workers: 1,
            udp_receive_buffer: 4 << 20,
            rrl: None,
            primary: None,
        }
    }
}

impl ServerHandle {
    /// The addresses actually bound, in the order configured.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.local_addrs.clone()
    }

    /// What response rate limiting did so far (answered, slipped, dropped
    /// UDP responses); `None` when it is off.
    pub fn rrl_counters(&self) -> Option<RrlCounters> {
        self.rrl.as_ref().map(|limiter| limiter.counters())
    }

    /// Stops serving and waits for every thread to end (in-flight TCP
    /// responses are written first, for at most a second).
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Stops every worker and joins it; a second call does nothing.
    fn stop_and_join(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        for socket in &self.udp_sockets {
            // Linux wakes a receiver blocked on a UDP socket that is shut down
            // for reading (the call itself reports ENOTCONN, which is
            // expected); the receive timeout is the fallback.
            let _ = socket.shutdown(std::net::Shutdown::Read);
        }
        // Err only when every receiver is gone, i.e. the TCP side has ended.
        let _ = self.tcp_stop.send(true);
        for thread in self.udp_threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a UDP worker panicked");
            }
        }
        if let Some(thread) = self.tcp_thread.take() {
            if thread.join().is_err() {
                tracing::error!("the TCP server thread panicked");
            }
        }
        tracing::info!(addrs = ?self.local_addrs, "nameserver stopped");
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Binds every configured address (UDP and TCP) and starts serving the
/// catalog that `catalog` holds at the time of each query.
pub fn spawn(config: ServerConfig, catalog: Arc<ArcSwap<Catalog>>) -> io::Result<ServerHandle> {
    if config.listen.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no listen address configured",
        ));
    }
    let rrl = match &config.rrl {
        Some(rrl) => Some(Arc::new(Limiter::new(rrl).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("rrl: {e}"))
        })?)),
        None => None,
    };
    let workers = match config.udp_workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut local_addrs = Vec::with_capacity(config.listen.len());
    let mut udp_sockets = Vec::new();
    let mut tcp_listeners = Vec::new();
    for &addr in &config.listen {
        let (bound, udp, tcp) = bind_address(addr, workers, config.udp_receive_buffer)?;
        local_addrs.push(bound);
        udp_sockets.extend(udp.into_iter().map(Arc::new));
        tcp_listeners.push(tcp);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (tcp_stop, tcp_stopped) = tokio::sync::watch::channel(false);
    let mut handle = ServerHandle {
        local_addrs,
        stop: stop.clone(),
        udp_sockets: udp_sockets.clone(),
        udp_threads: Vec::new(),
        tcp_stop,
        tcp_thread: None,
        rrl: rrl.clone(),
    };
    // From here on, an early return drops `handle`, which stops what started.
    // The limiter's clock: every worker measures time from this instant.
    let epoch = std::time::Instant::now();
    // Routed datagrams: one queue of two lanes, drained by the primary's
    // own thread until the server stops.
    let routing = config.primary.as_ref().map(|primary| udp::Routing {
        primary: Arc::clone(primary),
        queue: Arc::new(udp::RoutedQueue::new()),
    });
    for (index, socket) in udp_sockets.into_iter().enumerate() {
        let limiter = rrl.clone().map(|limiter| udp::RateLimit { limiter, epoch });
        let worker = udp::Worker::new(
            socket,
            catalog.clone(),
            stop.clone(),
            limiter,
            routing.clone(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("cutover-udp-{index}"))
            .spawn(move || worker.run())?;
        handle.udp_threads.push(thread);
    }
    if let Some(routing) = routing {
        let stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("cutover-primary-udp".into())
            .spawn(move || udp::serve_routed(routing, stop))?;
        handle.udp_threads.push(thread);
    }
    let limits = tcp::Limits {
        idle_timeout: config.tcp_idle_timeout,
        pressure_idle_timeout: config
            .tcp_pressure_idle_timeout
            .min(config.tcp_idle_timeout),
        budget: admission::Budget {
            max_connections: config.tcp_max_connections.max(1),
            max_per_client: config.tcp_max_connections_per_client.max(1),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.tcp_workers.max(1))
        .thread_name("cutover-tcp")
        .enable_io()
        .enable_time()
        .build()?;
    let listeners = {
        let _context = runtime.enter();
        tcp_listeners
            .into_iter()
            .map(tokio::net::TcpListener::from_std)
            .collect::<io::Result<Vec<_>>>()?
    };
    let thread = std::thread::Builder::new()
        .name("cutover-tcp-accept".into())
        .spawn(move || {
            tcp::run(
                runtime,
                listeners,
                catalog,
                limits,
                tcp_stopped,
                config.primary,
            )
        })?;
    handle.tcp_thread = Some(thread);
    tracing::info!(addrs = ?handle.local_addrs, udp_workers = workers, "nameserver serving");
    Ok(handle)
}

/// How many times a port-0 address is retried when the UDP port picked is
/// taken for TCP.
const PORT_ATTEMPTS: usize = 16;

/// Binds `workers` UDP sockets and one TCP listener on `addr`, all on the same
/// port; returns the bound address.
fn bind_address(
    addr: SocketAddr,
    workers: usize,
    receive_buffer: usize,
) -> io::Result<(SocketAddr, Vec<Socket>, std::net::TcpListener)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = udp::bind_group(addr, workers, receive_buffer)?;
        let bound = udp::local_addr(&udp[0])?;
        match tcp::bind(bound) {
            Ok(listener) => return Ok((bound, udp, listener)),
            Err(e)
                if addr.port() == 0
                    && e.kind() == io::ErrorKind::AddrInUse
                    && attempt < PORT_ATTEMPTS =>
            {
                continue;
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("TCP {bound}: {e}"))),
        }
    }
}
