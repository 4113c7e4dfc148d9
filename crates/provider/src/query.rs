//! A small blocking DNS transport for the providers: one message to one
//! server, UDP first and TCP when the answer is truncated (or the message
//! too long for UDP), and RRset reads built on it.
//!
//! ```text
//!  message ──(≤ 512 bytes)──▶ UDP ──reply, TC=0──▶ bytes
//!          │                       └─TC=1─┐
//!          └──(longer)────────────────────┴──▶ TCP (2-byte length framing) ──▶ bytes
//! ```
//!
//! Queries are built and classified by the probes' pure functions
//! (`cutover_probe::dns`), so a provider reads an RRset the way `cutover
//! check` sees it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use cutover_probe::dns::{build_query, check_reply, classify, Outcome, Question, Recursion};
use cutover_zone::{Name, Record, RecordType, Rrset, Serial};

use crate::ProviderError;

/// The largest message sent over UDP (RFC 1035 without EDNS).
const UDP_MAX: usize = 512;
/// The EDNS payload size advertised in queries.
const EDNS_PAYLOAD: u16 = 1232;
/// UDP attempts before giving up.
const UDP_ATTEMPTS: u32 = 2;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// No answer in time.
    #[error("no answer from {0} within {1:?}")]
    Timeout(SocketAddr, Duration),
    /// The socket failed.
    #[error("{0}: {1}")]
    Io(SocketAddr, io::Error),
}

impl From<ExchangeError> for ProviderError {
    fn from(e: ExchangeError) -> ProviderError {
        ProviderError::Unreachable(e.to_string())
    }
}

/// Sends `message` to `server` and returns the reply whose ID matches,
/// over UDP (TCP when truncated or too long), each attempt within `timeout`.
pub(crate) fn exchange(
    server: SocketAddr,
    message: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    if message.len() <= UDP_MAX {
        for _ in 0..UDP_ATTEMPTS {
            match udp_exchange(server, message, timeout) {
                Ok(reply) if is_truncated(&reply) => break,
                Ok(reply) => return Ok(reply),
                Err(ExchangeError::Timeout(..)) => continue,
                Err(e) => return Err(e),
            }
        }
    }
    tcp_exchange(server, message, timeout)
}

/// Whether a reply has the TC bit.
fn is_truncated(reply: &[u8]) -> bool {
    reply.len() > 2 && reply[2] & 0x02 != 0
}

/// One UDP attempt: send, then wait for a reply with our ID.
fn udp_exchange(
    server: SocketAddr,
    message: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let io = |e| ExchangeError::Io(server, e);
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(io)?;
    socket.connect(server).map_err(io)?;
    socket.send(message).map_err(io)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ExchangeError::Timeout(server, timeout));
        }
        socket.set_read_timeout(Some(left)).map_err(io)?;
        match socket.recv(&mut buf) {
            Ok(len) if len >= 12 && buf[..2] == message[..2] => return Ok(buf[..len].to_vec()),
            Ok(_) => continue,
            Err(e) if is_timeout(&e) => return Err(ExchangeError::Timeout(server, timeout)),
            Err(e) => return Err(io(e)),
        }
    }
}

/// One TCP exchange within `timeout`.
pub(crate) fn tcp_exchange(
    server: SocketAddr,
    message: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    let fail = |e: io::Error| {
        if is_timeout(&e) {
            ExchangeError::Timeout(server, timeout)
        } else {
            ExchangeError::Io(server, e)
        }
    };
    let len = u16::try_from(message.len()).map_err(|_| {
        ExchangeError::Io(
            server,
            io::Error::new(io::ErrorKind::InvalidInput, "message over 65535 bytes"),
        )
    })?;
    let mut stream = TcpStream::connect_timeout(&server, timeout).map_err(fail)?;
    stream.set_read_timeout(Some(timeout)).map_err(fail)?;
    stream.set_write_timeout(Some(timeout)).map_err(fail)?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).map_err(fail)?;
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).map_err(fail)?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut reply).map_err(fail)?;
    Ok(reply)
}

/// Whether an I/O error is a socket timeout.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Asks `server` (RD=0) for `name rtype` and returns what it answers.
pub(crate) fn ask(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Outcome, ProviderError> {
    let question = Question::new(name.clone(), rtype);
    let (id, bytes) = build_query(&question, Recursion::Off, Some(EDNS_PAYLOAD));
    let reply = exchange(server, &bytes, timeout)?;
    let message = check_reply(id, &question, &reply)
        .map_err(|e| ProviderError::Unreachable(format!("{server}: {e}")))?;
    Ok(classify(&question, &message))
}

/// The RRset `name rtype` as `server` serves it (`None`: no such data).
pub(crate) fn read_rrset(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Option<Rrset>, ProviderError> {
    match ask(server, name, rtype, timeout)? {
        Outcome::Answer(answer) => Ok(rrset_of(name, rtype, &answer.records)),
        Outcome::NoData { .. } | Outcome::NxDomain { .. } | Outcome::Referral { .. } => Ok(None),
        other => Err(outcome_error(server, name, rtype, &other)),
    }
}

/// The RRset `name rtype` of `zone` as `server` serves it; a server that
/// refuses the question (REFUSED, NOTAUTH) does not serve the zone.
pub(crate) fn read_zone_rrset(
    server: SocketAddr,
    zone: &Name,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Option<Rrset>, ProviderError> {
    match ask(server, name, rtype, timeout)? {
        Outcome::Answer(answer) => Ok(rrset_of(name, rtype, &answer.records)),
        Outcome::NoData { .. } | Outcome::NxDomain { .. } | Outcome::Referral { .. } => Ok(None),
        Outcome::Refused | Outcome::OtherRcode(9) => Err(ProviderError::UnknownZone(zone.clone())),
        other => Err(outcome_error(server, name, rtype, &other)),
    }
}

/// The records of `name rtype` among `records`, as one RRset (the lowest
/// TTL seen, as a cache would keep them).
pub(crate) fn rrset_of(name: &Name, rtype: RecordType, records: &[Record]) -> Option<Rrset> {
    let mut rrset: Option<Rrset> = None;
    for record in records
        .iter()
        .filter(|r| r.name == *name && r.rdata.rtype() == rtype)
    {
        match &mut rrset {
            None => rrset = Some(Rrset::new(record.ttl, record.rdata.clone())),
            Some(set) => {
                set.ttl = set.ttl.min(record.ttl);
                set.insert(record.rdata.clone());
            }
        }
    }
    rrset
}

/// The provider error for an answer that is no answer.
pub(crate) fn outcome_error(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    outcome: &Outcome,
) -> ProviderError {
    let what = format!("{server} asked for {name} {rtype}");
    match outcome {
        Outcome::Timeout => ProviderError::Unreachable(format!("{what}: no answer")),
        Outcome::Network(why) => ProviderError::Unreachable(format!("{what}: {why}")),
        Outcome::Refused => ProviderError::Refused(format!("{what}: REFUSED")),
        Outcome::ServFail => ProviderError::Unreachable(format!("{what}: SERVFAIL")),
        other => ProviderError::Refused(format!("{what}: {other:?}")),
    }
}

/// The zone's SOA serial as `server` serves it.
pub(crate) fn serial(server: SocketAddr, zone: &Name, timeout: Duration) -> Option<Serial> {
    let rrset = read_rrset(server, zone, RecordType::SOA, timeout).ok()??;
    rrset
        .rdatas()
        .first()?
        .as_soa()
        .map(|soa| Serial(soa.serial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server on one port: UDP answers every query truncated (TC=1), TCP
    /// answers it in full with a marker byte; returns the address.
    fn truncating_server() -> SocketAddr {
        // The kernel picks a free UDP port; the same number over TCP may be
        // another test's (a full run saw "Address already in use"): take another pair.
        let (udp, tcp, addr) = (0..64)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let addr = udp.local_addr().ok()?;
                let tcp = TcpListener::bind(addr).ok()?;
                Some((udp, tcp, addr))
            })
            .expect("a port free for both UDP and TCP in 64 tries");
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            if let Ok((len, from)) = udp.recv_from(&mut buf) {
                let mut reply = buf[..len.min(12)].to_vec();
                reply[2] |= 0x82;
                let _ = udp.send_to(&reply, from);
            }
        });
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = tcp.accept() {
                let mut prefix = [0u8; 2];
                stream.read_exact(&mut prefix).unwrap();
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
                stream.read_exact(&mut query).unwrap();
                let mut reply = query[..12].to_vec();
                reply[2] |= 0x80;
                reply.push(0xAA);
                let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                stream.write_all(&framed).unwrap();
            }
        });
        addr
    }

    #[test]
    fn a_truncated_udp_answer_is_asked_again_over_tcp() {
        let server = truncating_server();
        let query = [0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let reply = exchange(server, &query, Duration::from_secs(2)).expect("an answer");
        assert_eq!(reply[..2], [0x12, 0x34], "the reply has our ID");
        assert_eq!(
            reply.last(),
            Some(&0xAA),
            "the full answer came over TCP: {reply:?}"
        );
        assert_eq!(reply[2] & 0x02, 0, "the TCP answer is not truncated");
    }

    #[test]
    fn a_silent_server_times_out() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = silent.local_addr().unwrap();
        let query = [0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        match exchange(server, &query, Duration::from_millis(100)) {
            // UDP times out; TCP then finds nothing listening on the port.
            Err(ExchangeError::Io(..) | ExchangeError::Timeout(..)) => {}
            other => panic!("expected a timeout or refusal, saw {other:?}"),
        }
    }
}
