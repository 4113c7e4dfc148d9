//! The demo's stage: an "old" and a "new" server on two loopback addresses,
//! each with a web server and an SMTP listener that say which one they are.
//!
//! ```text
//!  127.0.0.2:WEB  GET /        ──▶ 200 "served by the old server"
//!  127.0.0.3:WEB  GET /healthz ──▶ 200 "ok"
//!  127.0.0.2:SMTP              ──▶ nothing listens: the old mail server is down
//!  127.0.0.3:SMTP MAIL/RCPT/DATA ─▶ 250, each message counted (the new mail server)
//! ```
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so both
//! addresses work without any setup. Each listener runs on a thread of its
//! own and stops when the stage is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

/// The old server's address.
pub const OLD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The new server's address.
pub const NEW: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// One of the two servers: its name, address and request counters.
pub struct Host {
    /// "old" or "new".
    pub name: &'static str,
    /// Its loopback address.
    pub address: Ipv4Addr,
    /// Requests its web server answered.
    pub web_requests: Arc<AtomicU64>,
    /// Messages its mail server took (250 after DATA).
    pub mail_received: Arc<AtomicU64>,
}

/// Both servers, listening; stopped on drop.
pub struct Stage {
    /// The port of both web servers.
    pub web_port: u16,
    /// The port of both SMTP listeners.
    pub smtp_port: u16,
    /// The old server.
    pub old: Host,
    /// The new server.
    pub new: Host,
    /// Set on drop: the accept loops end.
    stop: Arc<AtomicBool>,
    /// The accept loops.
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Stage {
    /// Starts the web servers and SMTP listeners of both hosts.
    pub fn start() -> anyhow::Result<Stage> {
        let stop = Arc::new(AtomicBool::new(false));
        let (webs, web_port) = listeners_on_one_port()?;
        let (smtp, smtp_port) = listeners_on_one_port()?;
        let old = Host {
            name: "old",
            address: OLD,
            web_requests: Arc::new(AtomicU64::new(0)),
            mail_received: Arc::new(AtomicU64::new(0)),
        };
        let new = Host {
            name: "new",
            address: NEW,
            web_requests: Arc::new(AtomicU64::new(0)),
            mail_received: Arc::new(AtomicU64::new(0)),
        };
        let mut threads = Vec::new();
        for ((listener, host), mail) in webs.into_iter().zip([&old, &new]).zip(smtp) {
            let name = host.name;
            let counter = Arc::clone(&host.web_requests);
            let flag = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                accept_loop(listener, &flag, move |s| web(s, name, &counter))
            }));
            if name == "old" {
                // The old mail server is down: its port refuses connections.
                drop(mail);
                continue;
            }
            let received = Arc::clone(&host.mail_received);
            let flag = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                accept_loop(mail, &flag, move |s| smtp_sink(s, name, &received))
            }));
        }
        Ok(Stage {
            web_port,
            smtp_port,
            old,
            new,
            stop,
            threads,
        })
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Binds a TCP listener on OLD and on NEW with the same free port.
fn listeners_on_one_port() -> anyhow::Result<([TcpListener; 2], u16)> {
    for _ in 0..50 {
        let first = TcpListener::bind((OLD, 0)).context("cannot listen on 127.0.0.2")?;
        let port = first.local_addr()?.port();
        if let Ok(second) = TcpListener::bind((NEW, port)) {
            first.set_nonblocking(true)?;
            second.set_nonblocking(true)?;
            return Ok(([first, second], port));
        }
    }
    anyhow::bail!("no port free on both 127.0.0.2 and 127.0.0.3")
}

/// Accepts connections until `stop`, handing each to `serve` on its own thread.
fn accept_loop<F>(listener: TcpListener, stop: &AtomicBool, serve: F)
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let serve = Arc::new(serve);
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let serve = Arc::clone(&serve);
                std::thread::spawn(move || {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    serve(stream)
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Answers one HTTP request: `/healthz` says "ok", anything else says who served it.
fn web(mut stream: TcpStream, name: &str, counter: &AtomicU64) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/");
    let body = if path.starts_with("/healthz") {
        "ok".to_string()
    } else {
        counter.fetch_add(1, Ordering::SeqCst);
        format!("served by the {name} server")
    };
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A mail server that takes every message: 220, EHLO/HELO, MAIL, RCPT,
/// DATA (to the lone dot, then 250 and the message counted), RSET, NOOP,
/// QUIT.
fn smtp_sink(stream: TcpStream, name: &str, received: &AtomicU64) {
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    if write!(out, "220 {name}.example.com ESMTP cutover demo\r\n").is_err() {
        return;
    }
    let mut lines = BufReader::new(stream).lines();
    while let Some(Ok(line)) = lines.next() {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" | "HELO" => format!("250 {name}.example.com\r\n"),
            "MAIL" | "RCPT" | "NOOP" | "RSET" => "250 ok\r\n".to_string(),
            "DATA" => {
                if out.write_all(b"354 end with a lone dot\r\n").is_err() {
                    return;
                }
                let mut ended = false;
                for line in lines.by_ref() {
                    match line {
                        Ok(line) if line == "." => {
                            ended = true;
                            break;
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
                if !ended {
                    return;
                }
                received.fetch_add(1, Ordering::SeqCst);
                "250 queued\r\n".to_string()
            }
            "QUIT" => {
                let _ = write!(out, "221 bye\r\n");
                return;
            }
            _ => "502 not here\r\n".to_string(),
        };
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// One `GET /` to `address:port` with `host` as the Host header: the body.
pub fn fetch(address: IpAddr, port: u16, host: &str) -> anyhow::Result<String> {
    let addr = SocketAddr::new(address, port);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default())
}
