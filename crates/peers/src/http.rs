//! A plain HTTP/1.1 server that says which server it is: the "old" and the
//! "new" web servers of the end-to-end migration tests, on two loopback
//! addresses.
//!
//! ```text
//!  GET /         ──▶ 200, body = the server's name ("old" / "new")
//!  GET /healthz  ──▶ 200 "ok" while healthy, 503 "unhealthy" once told to fail
//! ```
//!
//! The test binds the listener and hands it over (`hold_tcp` gives the old
//! and the new server one port on two addresses), so no other test can take
//! the port in between. It runs on a thread of its own (blocking sockets), so it serves the same
//! way inside and outside a tokio runtime, and stops when dropped. Every
//! request is counted, so a test can tell whether a server was still used.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the server shares with the test that owns it.
#[derive(Debug, Default)]
pub struct HttpState {
    /// False once the test told `/healthz` to fail.
    healthy: AtomicBool,
    /// Requests answered on `/`.
    served: AtomicU64,
    /// Requests answered on `/healthz`.
    health_checks: AtomicU64,
    /// Set on drop: the accept loop ends.
    stop: AtomicBool,
}

/// A running named HTTP server, stopped on drop.
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The name it answers with.
    pub name: String,
    /// Shared with the serving thread.
    state: Arc<HttpState>,
    /// The accept loop.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Starts a server on `listener` (bound and held by the test, see
    /// [`crate::hold_tcp`]) whose `/` answers `name`; healthy at first.
    pub fn start(listener: TcpListener, name: &str) -> HttpServer {
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        listener
            .set_nonblocking(true)
            .expect("a listener can be made non-blocking");
        let state = Arc::new(HttpState {
            healthy: AtomicBool::new(true),
            ..HttpState::default()
        });
        let shared = Arc::clone(&state);
        let body = name.to_string();
        let thread = std::thread::spawn(move || accept_loop(listener, &shared, &body));
        HttpServer {
            addr,
            name: name.to_string(),
            state,
            thread: Some(thread),
        }
    }

    /// Makes `/healthz` answer 503 (false) or 200 (true) from now on.
    pub fn set_healthy(&self, healthy: bool) {
        self.state.healthy.store(healthy, Ordering::SeqCst);
    }

    /// How many requests `/` has answered.
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::SeqCst)
    }

    /// How many requests `/healthz` has answered.
    pub fn health_checks(&self) -> u64 {
        self.state.health_checks.load(Ordering::SeqCst)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until told to stop, one thread per connection.
fn accept_loop(listener: TcpListener, state: &Arc<HttpState>, body: &str) {
    while !state.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let state = Arc::clone(state);
                let body = body.to_string();
                std::thread::spawn(move || answer(stream, &state, &body));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Reads one request head and answers it, then closes the connection.
fn answer(mut stream: TcpStream, state: &HttpState, body: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        if request.len() > 16 * 1024 {
            return;
        }
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, text) = if path.starts_with("/healthz") {
        state.health_checks.fetch_add(1, Ordering::SeqCst);
        if state.healthy.load(Ordering::SeqCst) {
            ("200 OK", "ok".to_string())
        } else {
            ("503 Service Unavailable", "unhealthy".to_string())
        }
    } else {
        state.served.fetch_add(1, Ordering::SeqCst);
        ("200 OK", body.to_string())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

/// One `GET path` to `addr` with `host` as the Host header; returns the
/// status code and the body, or what went wrong.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{addr} sent no HTTP status line: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
