//! The control plane's connections: accepted under a cap, timed while they
//! send headers, timed while they do not read what they are sent, and
//! served by hyper (HTTP/1.1, over TLS when configured).
//!
//! ```text
//!  accept ──Registry::admit──▶ under [http] max_connections ──────────────────────────▶ task
//!              at the cap: the connection idle longest (no request in progress,
//!              and its socket read to the end: waiting for its client) is closed
//!              to make room; one whose task has not read what it was sent yet
//!              is waited for (it may hold a request); every one busy: refused
//!              (closed at once, counted, logged once per 10 s)
//!  task: TLS handshake (header_timeout) ──▶ hyper: headers within header_timeout
//!        (from the connection, or from the previous answer; else closed)
//!        ──▶ request: busy ──▶ answer sent to its end: idle again
//!        writes stalled for SEND_TIMEOUT ──▶ closed
//!  stop ──▶ no more accepts; each connection finishes its answer (1 s at most)
//! ```
//!
//! A connection with a request in progress is never closed to make room:
//! requests are bounded elsewhere (the body timeout, the probe budget, the
//! event streams' cap per token), and only a request that passed the token
//! check can be slow, since bodies are read after it.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;

/// How long a write may stall (the client not reading) before the
/// connection is closed (nginx's `send_timeout`).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the refusals at the cap are logged, at most.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// How long open connections get to finish when the server stops.
const DRAIN: Duration = Duration::from_secs(1);

/// How often the accept loop looks again while it waits at the cap for a
/// connection's task to read what it was sent (a wake-up is also sent when
/// one does; this is the backstop).
const ROOM_POLL: Duration = Duration::from_millis(20);

/// The bounds of the connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `[http] max_connections`.
    pub max_connections: usize,
    /// `[http] header_timeout` (also the TLS handshake's and the idle time
    /// between two requests).
    pub header_timeout: Duration,
}

/// One open connection.
#[derive(Debug)]
struct Slot {
    /// Requests in progress (answers not yet sent to their end).
    busy: usize,
    /// When it last had none.
    idle_since: Instant,
    /// True once its task found nothing more to read since the last request
    /// began (or since the accept): it waits for its client. Until then its
    /// socket may hold a request no one read yet, so it is not closed to
    /// make room.
    drained: bool,
    /// Told when it must close to make room.
    evict: Arc<Notify>,
}

/// The open connections and what happened at the cap.
#[derive(Debug, Default)]
struct State {
    /// The next connection's id.
    next: u64,
    /// Every open connection.
    open: HashMap<u64, Slot>,
    /// Refused since the last log line.
    refused: u64,
    /// Closed to make room since the last log line.
    evicted: u64,
    /// When the last log line was written.
    logged: Option<Instant>,
    /// Refused since the start.
    refused_total: u64,
    /// Closed to make room since the start.
    evicted_total: u64,
}

/// The open connections of one listener, under its cap.
#[derive(Debug)]
pub struct Registry {
    /// The cap.
    max: usize,
    /// Behind a lock taken per connection and per request, never per query
    /// of the nameserver.
    state: Mutex<State>,
    /// Told when a connection was drained, went idle or closed (the accept
    /// loop waiting at the cap looks again).
    changed: Notify,
}

/// What the registry says of a new connection.
#[derive(Debug)]
enum Admission {
    /// Serve it: its id and its eviction signal.
    Admitted(u64, Arc<Notify>),
    /// Close it.
    Refused,
    /// At the cap, with connections whose tasks have not read what they
    /// were sent yet: ask again once one has.
    Wait,
}

impl Registry {
    /// A registry with this cap.
    pub fn new(max: usize) -> Registry {
        Registry {
            max: max.max(1),
            state: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// The state, even if a thread panicked holding it.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection, closing the one idle longest at the cap;
    /// waits while a connection's task has not read what it was sent yet;
    /// refuses when every open connection is busy.
    fn admit(&self, now: Instant) -> Admission {
        let mut state = self.lock();
        if state.open.len() >= self.max {
            let idlest = state
                .open
                .iter()
                .filter(|(_, slot)| slot.busy == 0 && slot.drained)
                .min_by_key(|(_, slot)| slot.idle_since)
                .map(|(id, _)| *id);
            match idlest.and_then(|id| state.open.remove(&id)) {
                Some(slot) => {
                    slot.evict.notify_one();
                    state.evicted += 1;
                    state.evicted_total += 1;
                    self.log(&mut state, now);
                }
                None if state.open.values().any(|slot| slot.busy == 0) => {
                    return Admission::Wait;
                }
                None => {
                    state.refused += 1;
                    state.refused_total += 1;
                    self.log(&mut state, now);
                    return Admission::Refused;
                }
            }
        }
        state.next += 1;
        let id = state.next;
        let evict = Arc::new(Notify::new());
        state.open.insert(
            id,
            Slot {
                busy: 0,
                idle_since: now,
                drained: false,
                evict: evict.clone(),
            },
        );
        Admission::Admitted(id, evict)
    }

    /// Logs what happened at the cap: the first time at once, then at most
    /// once per [`LOG_EVERY`] with the counts since.
    fn log(&self, state: &mut State, now: Instant) {
        if state
            .logged
            .is_some_and(|at| now.duration_since(at) < LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            "control plane: at [http] max_connections ({}): {} connections refused (every open \
             one busy) and {} idle ones closed to make room{}",
            self.max,
            state.refused,
            state.evicted,
            match state.logged {
                Some(at) => format!(" in the last {} s", now.duration_since(at).as_secs()),
                None => String::new(),
            }
        );
        state.refused = 0;
        state.evicted = 0;
        state.logged = Some(now);
    }

    /// A request began on connection `id`.
    fn busy(&self, id: u64) {
        if let Some(slot) = self.lock().open.get_mut(&id) {
            slot.busy += 1;
            slot.drained = false;
        }
    }

    /// Connection `id`'s task found nothing more to read: it waits for its
    /// client (true once per wait; a no-op when already known).
    fn drained(&self, id: u64) {
        let changed = self
            .lock()
            .open
            .get_mut(&id)
            .is_some_and(|slot| !std::mem::replace(&mut slot.drained, true));
        if changed {
            self.changed.notify_waiters();
        }
    }

    /// A request's answer on connection `id` ended (sent, or dropped).
    fn idle(&self, id: u64) {
        if let Some(slot) = self.lock().open.get_mut(&id) {
            slot.busy = slot.busy.saturating_sub(1);
            if slot.busy == 0 {
                slot.idle_since = Instant::now();
            }
        }
        self.changed.notify_waiters();
    }

    /// Connection `id` closed.
    fn leave(&self, id: u64) {
        self.lock().open.remove(&id);
        self.changed.notify_waiters();
    }

    /// Admits a new connection as [`Registry::admit`] does, waiting (at
    /// most until `stop`) while it says to; `None` when stopped.
    async fn admit_waiting(&self, stop: &mut watch::Receiver<bool>) -> Option<Admission> {
        loop {
            let changed = self.changed.notified();
            match self.admit(Instant::now()) {
                Admission::Wait => {}
                admission => return Some(admission),
            }
            tokio::select! {
                _ = tokio::time::timeout(ROOM_POLL, changed) => {}
                _ = stop.wait_for(|stop| *stop) => return None,
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Connections open now, refused since the start, and closed to make
    /// room since the start.
    pub fn counts(&self) -> (usize, u64, u64) {
        let state = self.lock();
        (state.open.len(), state.refused_total, state.evicted_total)
    }
}

/// Marks a request of a connection in progress until dropped.
struct Busy {
    /// The registry.
    registry: Arc<Registry>,
    /// The connection.
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.registry.idle(self.id);
    }
}

/// Removes a connection from the registry when its task ends.
struct Leave {
    /// The registry.
    registry: Arc<Registry>,
    /// The connection.
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.registry.leave(self.id);
    }
}

/// A body that keeps `guard` alive until it is sent to its end or dropped:
/// a connection's busy mark, a budget's permit.
pub struct Held<B, G> {
    /// The body.
    body: B,
    /// What lives as long as it.
    _guard: G,
}

impl<B, G> Held<B, G> {
    /// `body`, holding `guard`.
    pub fn new(body: B, guard: G) -> Held<B, G> {
        Held {
            body,
            _guard: guard,
        }
    }
}

impl<B: hyper::body::Body + Unpin, G: Unpin> hyper::body::Body for Held<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A stream whose writes may stall no longer than a limit: a client that
/// stops reading is cut off.
struct SendTimeout<T> {
    /// The stream.
    inner: T,
    /// How long a write may stay pending.
    limit: Duration,
    /// Armed while a write is pending.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> SendTimeout<T> {
    /// `inner`, its writes limited to `limit`.
    fn new(inner: T, limit: Duration) -> SendTimeout<T> {
        SendTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    /// After a write made no progress: pending, or an error once stalled too long.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for the send timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// After a write: disarms the timer on progress.
    fn progress<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match poll {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progress(cx, poll)
    }
}

/// A connection's socket that tells the registry when a read finds nothing
/// more (the connection then waits for its client and may make room).
struct Watched<T> {
    /// The socket.
    inner: T,
    /// The registry.
    registry: Arc<Registry>,
    /// The connection.
    id: u64,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if poll.is_pending() {
            self.registry.drained(self.id);
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let mut accept_failed: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, most likely: wait rather than
                // spin, and say so once per interval.
                if accept_failed.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                    tracing::warn!(
                        "control plane: accept failed: {error} (is [http] max_connections above \
                         what the process's file descriptor limit leaves?)"
                    );
                    accept_failed = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // At the cap, a connection whose task has not read its socket yet
        // is waited for (the kernel's backlog holds the next clients).
        let (id, evict) = match registry.admit_waiting(&mut stop).await {
            Some(Admission::Admitted(id, evict)) => (id, evict),
            Some(Admission::Refused | Admission::Wait) => {
                drop(tcp);
                continue;
            }
            None => return,
        };
        let leave = Leave {
            registry: registry.clone(),
            id,
        };
        let (app, acceptor, stop, registry) = (
            app.clone(),
            acceptor.clone(),
            stop.clone(),
            registry.clone(),
        );
        tokio::spawn(async move {
            let _leave = leave;
            let _ = tcp.set_nodelay(true);
            let tcp = Watched {
                inner: tcp,
                registry: registry.clone(),
                id,
            };
            let connection = async {
                match acceptor {
                    None => connection(tcp, app, limits, id, registry, stop).await,
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await;
                        match handshake {
                            Ok(Ok(tls)) => connection(tls, app, limits, id, registry, stop).await,
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, "control plane: TLS handshake failed: {error}")
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "control plane: TLS handshake timed out")
                            }
                        }
                    }
                }
            };
            tokio::select! {
                () = connection => {}
                () = evict.notified() => {
                    tracing::debug!(%peer, "control plane: idle connection closed to make room");
                }
            }
        });
    }
}

/// Serves one connection's requests with hyper.
async fn connection<I>(
    io: I,
    app: Router,
    limits: Limits,
    id: u64,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tower = TowerToHyperService::new(app);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        registry.busy(id);
        let busy = Busy {
            registry: registry.clone(),
            id,
        };
        let answer = hyper::service::Service::call(&tower, request);
        async move {
            let response = answer.await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| Body::new(Held::new(body, busy))))
        }
    });
    let io = TokioIo::new(SendTimeout::new(io, SEND_TIMEOUT));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => {
            if let Err(error) = served {
                tracing::debug!("control plane: connection ended: {error}");
            }
        }
        () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_off_and_one_that_reads_is_not() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut timed = SendTimeout::new(server, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.map(|_| all.len())
        });
        timed
            .write_all(&[7u8; 4096])
            .await
            .expect("a reading client takes it all");
        timed.shutdown().await.expect("shut down");
        drop(timed);
        assert_eq!(
            reader.await.unwrap().unwrap(),
            4096,
            "expected every byte read"
        );

        let (server, _client) = tokio::io::duplex(64);
        let mut timed = SendTimeout::new(server, Duration::from_millis(200));
        let stalled = timed.write_all(&[7u8; 4096]).await;
        assert_eq!(
            stalled.map_err(|e| e.kind()),
            Err(io::ErrorKind::TimedOut),
            "expected a write to a client that reads nothing to time out"
        );
    }

    #[test]
    fn at_the_cap_the_idlest_makes_room_and_busy_ones_never_do() {
        let registry = Registry::new(2);
        let start = Instant::now();
        let Admission::Admitted(first, first_evict) = registry.admit(start) else {
            panic!("expected the first admitted");
        };
        let Admission::Admitted(second, _) = registry.admit(start + Duration::from_secs(1)) else {
            panic!("expected the second admitted");
        };
        // Neither task has read its socket yet: either may hold a request.
        assert!(
            matches!(
                registry.admit(start + Duration::from_secs(2)),
                Admission::Wait
            ),
            "expected a wait while no connection was read to its end"
        );
        registry.drained(first);
        registry.drained(second);
        let Admission::Admitted(third, _) = registry.admit(start + Duration::from_secs(2)) else {
            panic!("expected the third admitted in place of the idlest");
        };
        assert_eq!(registry.open(), 2, "expected the cap kept");
        assert!(
            futures_util::FutureExt::now_or_never(first_evict.notified()).is_some(),
            "expected the first, idle longest, told to close"
        );
        registry.busy(second);
        registry.busy(third);
        assert!(
            matches!(
                registry.admit(start + Duration::from_secs(3)),
                Admission::Refused
            ),
            "expected a refusal when every connection is busy"
        );
        registry.idle(third);
        registry.drained(third);
        assert!(
            matches!(
                registry.admit(start + Duration::from_secs(4)),
                Admission::Admitted(..)
            ),
            "expected room once one is idle again"
        );
        registry.leave(first);
        assert_eq!(registry.open(), 2, "expected a closed connection gone");
    }
}
