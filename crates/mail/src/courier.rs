//! Delivery: the narrow seam [`Courier`] (messages in, per-recipient
//! outcomes out) and [`SmtpCourier`], the SMTP client that implements it.
//!
//! ```text
//!  connect ─► 220 ─► EHLO ─► STARTTLS? ─► (TLS) EHLO ─► loop guard
//!     └─ for each parcel, one connection: MAIL ─► RCPT… ─► DATA ─► body ─► .
//!                                          (RSET after a refused parcel)
//!  QUIT
//! ```
//!
//! Outbound never emits a bare CR or LF (every line end becomes CRLF) and
//! always dot-stuffs. Bytes a server sends after its STARTTLS 220 and before
//! the handshake are a STARTTLS injection and abort the connection.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use smtp_proto::EhloResponse;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::envelope::{DsnReturn, Envelope};

mod wire;

use crate::queue::{Destination, Outcome};
pub use wire::{opportunistic_tls, wire_data, xtext, Stuffer};

/// One message to deliver: its envelope (only the recipients of this
/// attempt) and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    /// The envelope, recipients limited to this attempt.
    pub envelope: Envelope,
    /// The content, as spooled.
    pub content: Content,
}

/// Where a parcel's content is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// In memory.
    Memory(Arc<Vec<u8>>),
    /// In a spool file from `start` to its end, read piece by piece as it
    /// is sent (a message is never whole in memory to be delivered).
    File {
        /// The file.
        path: PathBuf,
        /// Where the content starts (after the envelope).
        start: u64,
    },
}

/// The piece of a spool file read and sent at a time.
const DATA_PIECE: usize = 64 * 1024;

/// The delivery seam: deliver `parcels` to `destination`, one outcome per
/// recipient of each parcel, in order. Implementations never panic on peer input.
pub trait Courier: Send + Sync + 'static {
    /// Delivers, reusing one connection for all parcels where possible.
    fn deliver(
        &self,
        destination: &Destination,
        parcels: &[Parcel],
    ) -> impl Future<Output = Vec<Vec<Outcome>>> + Send;

    /// Asks `destination` whether it takes mail for `address` (recipient
    /// verification at RCPT time); nothing is delivered.
    fn verify(
        &self,
        destination: &Destination,
        address: &str,
    ) -> impl Future<Output = Probe> + Send;
}

/// What a destination said of one recipient when asked ([`SmtpCourier::probe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// RCPT got 250/251: the mailbox exists.
    Accepted,
    /// RCPT got 550/551/553: no such mailbox (the reply text).
    Rejected(String),
    /// No answer either way (down, deferred, refused MAIL): why.
    Unavailable(String),
}

/// How the SMTP courier uses TLS.
#[derive(Debug, Clone)]
pub enum TlsPolicy {
    /// Never STARTTLS.
    Off,
    /// STARTTLS when offered; fall back to plain text when not.
    Opportunistic(Arc<ClientConfig>),
    /// STARTTLS required: mail is deferred when it is not offered.
    Required(Arc<ClientConfig>),
}

/// The SMTP client courier.
#[derive(Debug, Clone)]
pub struct SmtpCourier {
    /// Our host name, sent in EHLO and compared with the peer's (loop guard).
    pub hostname: String,
    /// TLS use.
    pub tls: TlsPolicy,
    /// Our own listening addresses: never deliver there (loop guard).
    pub own_addresses: Vec<SocketAddr>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of each reply.
    pub reply_timeout: Duration,
}

/// A bidirectional byte stream (plain TCP or TLS).
trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// Why a connection-level step failed.
#[derive(Debug)]
enum Failure {
    /// Temporary: everything not yet done is deferred.
    Temporary(String),
    /// Permanent: everything not yet done fails (5xx greeting or EHLO/HELO).
    Permanent(String),
}

/// One SMTP reply from the peer.
#[derive(Debug)]
struct PeerReply {
    /// Its code.
    code: u16,
    /// All its lines, CRLF-joined, for logs and DSNs.
    text: String,
    /// Its raw bytes (for EHLO parsing).
    raw: Vec<u8>,
}

/// The ESMTP extensions the peer offered that we use.
#[derive(Debug, Default, Clone, Copy)]
struct Extensions {
    /// STARTTLS.
    starttls: bool,
    /// 8BITMIME.
    eight_bit: bool,
    /// SMTPUTF8.
    smtputf8: bool,
    /// DSN.
    dsn: bool,
}

impl SmtpCourier {
    /// A courier named `hostname`, opportunistic TLS, 30 s / 5 min timeouts.
    pub fn new(hostname: impl Into<String>, own_addresses: Vec<SocketAddr>) -> Self {
        SmtpCourier {
            hostname: hostname.into(),
            tls: TlsPolicy::Opportunistic(opportunistic_tls()),
            own_addresses,
            connect_timeout: Duration::from_secs(30),
            reply_timeout: Duration::from_secs(300),
        }
    }

    /// Whether `address` is one of ours (the loop guard).
    fn is_own(&self, address: &SocketAddr) -> bool {
        self.own_addresses.iter().any(|own| {
            own.port() == address.port()
                && (own.ip() == address.ip()
                    || (own.ip().is_unspecified() && address.ip().is_loopback()))
        })
    }

    /// The whole session; returns outcomes for as many parcels as were done
    /// and the failure that stopped it, if any.
    async fn session(
        &self,
        destination: &Destination,
        parcels: &[Parcel],
        outcomes: &mut Vec<Vec<Outcome>>,
    ) -> Result<(), Failure> {
        let (mut reader, extensions) = self.open(destination).await?;
        for parcel in parcels {
            let result = self.transaction(&mut reader, parcel, extensions).await?;
            outcomes.push(result);
        }
        let _ = self.command(&mut reader, b"QUIT\r\n").await;
        let _ = self.read_reply(&mut reader).await;
        Ok(())
    }

    /// Connects, reads the greeting, says EHLO, upgrades with STARTTLS when
    /// offered (or required: by our policy or by the destination), and
    /// applies the loop guard. Returns the stream and the peer's extensions.
    async fn open(
        &self,
        destination: &Destination,
    ) -> Result<(BufReader<Box<dyn Transport>>, Extensions), Failure> {
        let addresses: Vec<SocketAddr> =
            tokio::net::lookup_host((destination.host.as_str(), destination.port))
                .await
                .map_err(|error| {
                    Failure::Temporary(format!("cannot resolve {destination}: {error}"))
                })?
                .collect();
        if addresses.iter().any(|address| self.is_own(address)) {
            return Err(Failure::Temporary(format!(
                "mail for {destination} loops back to myself"
            )));
        }
        let mut last_error = format!("no address for {destination}");
        let mut connected = None;
        for address in addresses {
            match timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => {
                    connected = Some(stream);
                    break;
                }
                Ok(Err(error)) => last_error = format!("connect to {address}: {error}"),
                Err(_) => last_error = format!("connect to {address}: timed out"),
            }
        }
        let stream = connected.ok_or(Failure::Temporary(last_error))?;
        let _ = stream.set_nodelay(true);
        let mut reader: BufReader<Box<dyn Transport>> = BufReader::new(Box::new(stream));
        let greeting = self.read_reply(&mut reader).await?;
        expect(&greeting, 220, "greeting")?;
        let (mut extensions, peer_name) = self.hello(&mut reader).await?;
        let required = destination.require_tls || matches!(self.tls, TlsPolicy::Required(_));
        let config = match &self.tls {
            TlsPolicy::Opportunistic(config) | TlsPolicy::Required(config) => Some(config.clone()),
            TlsPolicy::Off if destination.require_tls => Some(opportunistic_tls()),
            TlsPolicy::Off => None,
        };
        match (extensions.starttls, config) {
            (true, Some(config)) => {
                self.command(&mut reader, b"STARTTLS\r\n").await?;
                let reply = self.read_reply(&mut reader).await?;
                if reply.code != 220 && required {
                    return Err(Failure::Temporary(format!(
                        "STARTTLS to {destination} refused ({}), and TLS is required",
                        reply.text
                    )));
                }
                expect(&reply, 220, "STARTTLS")?;
                if !reader.buffer().is_empty() {
                    return Err(Failure::Temporary(
                        "data after the STARTTLS reply (STARTTLS injection); aborted".into(),
                    ));
                }
                let name = ServerName::try_from(destination.host.clone()).map_err(|_| {
                    Failure::Temporary(format!("bad TLS name {}", destination.host))
                })?;
                let connector = TlsConnector::from(config);
                let tls = timeout(
                    self.reply_timeout,
                    connector.connect(name, reader.into_inner()),
                )
                .await
                .map_err(|_| Failure::Temporary("TLS handshake timed out".into()))?
                .map_err(|error| Failure::Temporary(format!("TLS handshake: {error}")))?;
                reader = BufReader::new(Box::new(tls));
                (extensions, _) = self.hello(&mut reader).await?;
            }
            _ if required => {
                return Err(Failure::Temporary(format!(
                    "{destination} does not offer STARTTLS, which is required for it; \
                     not delivered in clear text"
                )));
            }
            _ => {}
        }
        if peer_name.eq_ignore_ascii_case(&self.hostname) {
            return Err(Failure::Temporary(format!(
                "mail for {destination} loops back to myself ({peer_name})"
            )));
        }
        Ok((reader, extensions))
    }

    /// Asks `destination` whether it takes mail for `address`: MAIL FROM:<>,
    /// RCPT TO, then RSET and QUIT; no message is sent.
    pub async fn probe(&self, destination: &Destination, address: &str) -> Probe {
        let (mut reader, _) = match self.open(destination).await {
            Ok(opened) => opened,
            Err(Failure::Temporary(error) | Failure::Permanent(error)) => {
                return Probe::Unavailable(error)
            }
        };
        let verdict = async {
            self.command(&mut reader, b"MAIL FROM:<>\r\n").await?;
            let reply = self.read_reply(&mut reader).await?;
            if reply.code != 250 {
                return Ok(Probe::Unavailable(format!(
                    "MAIL FROM:<> refused: {}",
                    reply.text
                )));
            }
            self.command(&mut reader, format!("RCPT TO:<{address}>\r\n").as_bytes())
                .await?;
            let reply = self.read_reply(&mut reader).await?;
            Ok::<Probe, Failure>(match reply.code {
                250 | 251 => Probe::Accepted,
                550 | 551 | 553 => Probe::Rejected(reply.text),
                _ => Probe::Unavailable(reply.text),
            })
        }
        .await;
        let _ = self.command(&mut reader, b"RSET\r\nQUIT\r\n").await;
        match verdict {
            Ok(probe) => probe,
            Err(Failure::Temporary(error) | Failure::Permanent(error)) => Probe::Unavailable(error),
        }
    }

    /// EHLO (HELO when EHLO is refused); returns extensions and peer name.
    async fn hello(
        &self,
        reader: &mut BufReader<Box<dyn Transport>>,
    ) -> Result<(Extensions, String), Failure> {
        self.command(reader, format!("EHLO {}\r\n", self.hostname).as_bytes())
            .await?;
        let reply = self.read_reply(reader).await?;
        if reply.code == 250 {
            let parsed = EhloResponse::parse(&mut reply.raw.iter())
                .map_err(|error| Failure::Temporary(format!("bad EHLO reply: {error}")))?;
            let has = |flag: u32| parsed.capabilities & flag != 0;
            return Ok((
                Extensions {
                    starttls: has(smtp_proto::EXT_START_TLS),
                    eight_bit: has(smtp_proto::EXT_8BIT_MIME),
                    smtputf8: has(smtp_proto::EXT_SMTP_UTF8),
                    dsn: has(smtp_proto::EXT_DSN),
                },
                parsed.hostname,
            ));
        }
        self.command(reader, format!("HELO {}\r\n", self.hostname).as_bytes())
            .await?;
        let reply = self.read_reply(reader).await?;
        expect(&reply, 250, "HELO")?;
        let name = reply
            .text
            .get(4..)
            .unwrap_or("")
            .split(' ')
            .next()
            .unwrap_or("")
            .to_string();
        Ok((Extensions::default(), name))
    }

    /// One MAIL/RCPT/DATA transaction; outcomes per recipient of `parcel`.
    async fn transaction(
        &self,
        reader: &mut BufReader<Box<dyn Transport>>,
        parcel: &Parcel,
        extensions: Extensions,
    ) -> Result<Vec<Outcome>, Failure> {
        let envelope = &parcel.envelope;
        let count = envelope.recipients.len();
        if envelope.smtputf8 && !extensions.smtputf8 {
            return Ok(vec![
                Outcome::Permanent(
                    "5.6.7 destination does not support SMTPUTF8".into()
                );
                count
            ]);
        }
        let mut mail = format!("MAIL FROM:<{}>", envelope.sender);
        if envelope.eight_bit && extensions.eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if envelope.smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        if extensions.dsn {
            match envelope.dsn_return {
                Some(DsnReturn::Full) => mail.push_str(" RET=FULL"),
                Some(DsnReturn::Headers) => mail.push_str(" RET=HDRS"),
                None => {}
            }
            if let Some(id) = &envelope.envelope_id {
                mail.push_str(&format!(" ENVID={}", xtext(id)));
            }
        }
        mail.push_str("\r\n");
        self.command(reader, mail.as_bytes()).await?;
        let reply = self.read_reply(reader).await?;
        if reply.code != 250 {
            self.reset(reader).await?;
            return Ok(vec![refusal(&reply); count]);
        }
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(count);
        for recipient in &envelope.recipients {
            let mut rcpt = format!("RCPT TO:<{}>", recipient.address);
            if extensions.dsn {
                let notify = recipient.notify;
                let mut conditions = Vec::new();
                if notify.never {
                    conditions.push("NEVER");
                } else {
                    if notify.success {
                        conditions.push("SUCCESS");
                    }
                    if notify.failure {
                        conditions.push("FAILURE");
                    }
                    if notify.delay {
                        conditions.push("DELAY");
                    }
                }
                if !conditions.is_empty() {
                    rcpt.push_str(&format!(" NOTIFY={}", conditions.join(",")));
                }
                if let Some(original) = &recipient.original {
                    rcpt.push_str(&format!(" ORCPT=rfc822;{}", xtext(original)));
                }
            }
            rcpt.push_str("\r\n");
            self.command(reader, rcpt.as_bytes()).await?;
            let reply = self.read_reply(reader).await?;
            outcomes.push(if matches!(reply.code, 250 | 251) {
                None
            } else {
                Some(refusal(&reply))
            });
        }
        if outcomes.iter().all(Option::is_some) {
            self.reset(reader).await?;
            return Ok(outcomes.into_iter().flatten().collect());
        }
        self.command(reader, b"DATA\r\n").await?;
        let reply = self.read_reply(reader).await?;
        if reply.code != 354 {
            self.reset(reader).await?;
            let outcome = refusal(&reply);
            return Ok(outcomes
                .into_iter()
                .map(|done| done.unwrap_or_else(|| outcome.clone()))
                .collect());
        }
        self.send_data(reader, &parcel.content).await?;
        let reply = self.read_reply(reader).await?;
        let outcome = if reply.code == 250 {
            Outcome::Delivered
        } else {
            refusal(&reply)
        };
        Ok(outcomes
            .into_iter()
            .map(|done| done.unwrap_or_else(|| outcome.clone()))
            .collect())
    }

    /// Sends a parcel's content as DATA bytes and the terminator; a file is
    /// read and sent piece by piece. A file that cannot be read fails the
    /// connection (temporarily) before the terminator, so nothing cut short
    /// is ever delivered.
    async fn send_data(
        &self,
        reader: &mut BufReader<Box<dyn Transport>>,
        content: &Content,
    ) -> Result<(), Failure> {
        let (path, start) = match content {
            Content::Memory(bytes) => return self.command(reader, &wire_data(bytes)).await,
            Content::File { path, start } => (path, *start),
        };
        let unreadable = |error: std::io::Error| {
            Failure::Temporary(format!("spool file {}: {error}", path.display()))
        };
        let file = Arc::new(std::fs::File::open(path).map_err(unreadable)?);
        let mut stuffer = Stuffer::default();
        let mut piece = vec![0u8; DATA_PIECE];
        let mut wire = Vec::with_capacity(DATA_PIECE + DATA_PIECE / 8);
        let mut offset = start;
        loop {
            // A read of the disk, off the async threads.
            let reading = file.clone();
            let (read, returned) = tokio::task::spawn_blocking(move || {
                let read = std::os::unix::fs::FileExt::read_at(&*reading, &mut piece, offset);
                (read, piece)
            })
            .await
            .map_err(|error| unreadable(std::io::Error::other(error.to_string())))?;
            piece = returned;
            let read = read.map_err(unreadable)?;
            if read == 0 {
                break;
            }
            offset += read as u64;
            wire.clear();
            stuffer.push(&piece[..read], &mut wire);
            self.command(reader, &wire).await?;
        }
        wire.clear();
        stuffer.finish(&mut wire);
        self.command(reader, &wire).await
    }

    /// RSET after a refused transaction.
    async fn reset(&self, reader: &mut BufReader<Box<dyn Transport>>) -> Result<(), Failure> {
        self.command(reader, b"RSET\r\n").await?;
        let reply = self.read_reply(reader).await?;
        expect(&reply, 250, "RSET")
    }

    /// Writes `bytes` (a command or the data) under the reply timeout.
    async fn command(
        &self,
        reader: &mut BufReader<Box<dyn Transport>>,
        bytes: &[u8],
    ) -> Result<(), Failure> {
        let stream = reader.get_mut();
        timeout(self.reply_timeout, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| Failure::Temporary("write timed out".into()))?
        .map_err(|error| Failure::Temporary(format!("write: {error}")))
    }

    /// Reads one (possibly multi-line) reply, bounded in size.
    async fn read_reply(
        &self,
        reader: &mut BufReader<Box<dyn Transport>>,
    ) -> Result<PeerReply, Failure> {
        let mut raw = Vec::new();
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            let read = timeout(self.reply_timeout, read_line(reader, &mut line, 4096))
                .await
                .map_err(|_| Failure::Temporary("reply timed out".into()))?
                .map_err(|error| Failure::Temporary(format!("read: {error}")))?;
            if read == 0 {
                return Err(Failure::Temporary("connection closed by peer".into()));
            }
            raw.extend_from_slice(&line);
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            let code = text
                .get(..3)
                .and_then(|digits| digits.parse::<u16>().ok())
                .filter(|code| (200..600).contains(code))
                .ok_or_else(|| Failure::Temporary(format!("malformed reply {text:?}")))?;
            let last = text.as_bytes().get(3) != Some(&b'-');
            lines.push(text);
            if last {
                return Ok(PeerReply {
                    code,
                    text: lines.join(" / "),
                    raw,
                });
            }
            if lines.len() > 100 {
                return Err(Failure::Temporary("reply longer than 100 lines".into()));
            }
        }
    }
}

impl Courier for SmtpCourier {
    /// A short SMTP session up to RCPT ([`SmtpCourier::probe`]).
    async fn verify(&self, destination: &Destination, address: &str) -> Probe {
        self.probe(destination, address).await
    }

    /// One connection for all parcels; a connection failure defers what is left.
    async fn deliver(&self, destination: &Destination, parcels: &[Parcel]) -> Vec<Vec<Outcome>> {
        let mut outcomes = Vec::with_capacity(parcels.len());
        if let Err(failure) = self.session(destination, parcels, &mut outcomes).await {
            let outcome = match failure {
                Failure::Temporary(error) => Outcome::Temporary(error),
                Failure::Permanent(error) => Outcome::Permanent(error),
            };
            for parcel in &parcels[outcomes.len()..] {
                outcomes.push(vec![outcome.clone(); parcel.envelope.recipients.len()]);
            }
        }
        outcomes
    }
}

/// Reads up to LF (included) into `line`, at most `limit` bytes.
async fn read_line(
    reader: &mut BufReader<Box<dyn Transport>>,
    line: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<usize> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(line.len());
        }
        let (take, done) = match available.iter().position(|&byte| byte == b'\n') {
            Some(position) => (position + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if done {
            return Ok(line.len());
        }
        if line.len() > limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "reply line too long",
            ));
        }
    }
}

/// Fails the step unless `reply` has the `wanted` code.
fn expect(reply: &PeerReply, wanted: u16, step: &str) -> Result<(), Failure> {
    match reply.code {
        code if code == wanted => Ok(()),
        500..=599 => Err(Failure::Permanent(format!("{step}: {}", reply.text))),
        _ => Err(Failure::Temporary(format!("{step}: {}", reply.text))),
    }
}

/// The outcome of a refused MAIL, RCPT or DATA: 5xx permanent, else temporary.
fn refusal(reply: &PeerReply) -> Outcome {
    if (500..600).contains(&reply.code) {
        Outcome::Permanent(reply.text.clone())
    } else {
        Outcome::Temporary(reply.text.clone())
    }
}
