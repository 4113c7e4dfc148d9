//! The inbound side of the relay: one task per client connection driving
//! a [`Session`] (timeouts, STARTTLS, the cap per client), storing each
//! message before its 250, and verifying recipients of verified domains.
//!
//! ```text
//!  TcpStream ─► Session.feed ─► Reply ──────────────► client
//!                   │  Message ─► spawn_blocking(Spool::store) ─► stored(Ok → 250 | Err → 451)
//!                   │  Verify  ─► RecipientBook / Courier::verify ─► verified(250 | 550 | 450)
//!                   └─ StartTls ─► TLS handshake ─► tls_started
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use super::{blocking, lock, Shared};
use crate::courier::{Courier, Probe};
use crate::recipients::Lookup;
use crate::session::{Event, Message, Session, Verdict};

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

/// Serves one client connection to its end.
pub(super) async fn connection<C: Courier>(
    shared: Arc<Shared<C>>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let mut stream = Stream::Plain(stream);
    let over_cap = {
        let mut clients = lock(&shared.clients);
        let count = clients.entry(peer.ip()).or_insert(0);
        *count += 1;
        *count > shared.config.max_connections_per_client
    };
    let _slot = ClientSlot {
        clients: &shared.clients,
        address: peer.ip(),
    };
    if over_cap {
        let _ = stream
            .io()
            .write_all(b"421 4.7.0 Too many connections from your address\r\n")
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
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let limit = if session.in_data() {
            shared.config.data_timeout
        } else {
            shared.config.command_timeout
        };
        let read = match timeout(limit, stream.io().read(&mut buffer)).await {
            Err(_) => {
                let reply = session.abort("Timeout, closing connection");
                let _ = stream.io().write_all(&reply.to_wire()).await;
                return;
            }
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(read)) => read,
        };
        let mut events: std::collections::VecDeque<Event> =
            session.feed(&buffer[..read], SystemTime::now()).into();
        let mut output = Vec::new();
        while let Some(event) = events.pop_front() {
            match event {
                Event::Reply(reply) => output.extend_from_slice(&reply.to_wire()),
                Event::Message(message) => {
                    let outcome = accept(&shared, *message).await;
                    events.extend(session.stored(outcome, SystemTime::now()));
                }
                Event::Verify(address) => {
                    let verdict = verify(&shared, &address).await;
                    events.extend(session.verified(verdict, SystemTime::now()));
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
                    match timeout(shared.config.command_timeout, handshake).await {
                        Ok(Ok(secured)) => stream = Stream::Tls(Box::new(secured)),
                        _ => return,
                    }
                    session.tls_started();
                }
                Event::Close => {
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

/// The verdict on a recipient of a verified domain: remembered, or asked
/// of the domain's current destination (see [`crate::recipients`]).
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
            return book.remembered(address);
        }
    };
    let news = {
        let mut book = lock(&shared.book);
        book.available(&destination);
        book.learn(address, accepted, now)
    };
    if news {
        if let Err(error) = shared.book_file.append(address, accepted, now) {
            tracing::warn!(%error, "cannot remember a verified recipient");
        }
    }
    if accepted {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    }
}

/// Stores an accepted message; Ok(queue id) only once it is on disk.
async fn accept<C>(shared: &Arc<Shared<C>>, message: Message) -> Result<String, String> {
    let spool = shared.spool.clone();
    match blocking(move || spool.store(&message, SystemTime::now())).await {
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
