//! The secondary's side of a zone transfer (RFC 1995, RFC 5936): the
//! primary's SOA serial, then an IXFR from the serial held, whose answer is
//! one of three forms, every message checked as an AXFR's is
//! ([`super::client`]'s checks: TSIG, ID, RCODE, caps, class IN).
//!
//! ```text
//!  soa_serial ──TCP: SOA query (signed)──▶ the primary's serial
//!  ixfr_query(zone, SOA held) ──TCP──▶ IxfrReceiver::receive, message by message
//!     [SOA n]                                  (n not newer)  ──▶ IxfrAnswer::UpToDate
//!     [SOA n, SOA held, −…, SOA a, +…, …, SOA n]                 ──▶ IxfrAnswer::Incremental(steps)
//!     [SOA n, records…, SOA n]   (the primary chose AXFR form) ──▶ IxfrAnswer::Full(zone)
//! ```
//!
//! The receiver is pure; [`fetch_ixfr`] and [`soa_serial`] do the TCP
//! around it. Any failure refuses the whole answer.

use std::net::SocketAddr;
use std::sync::Arc;

use cutover_zone::{Name, Rdata, Record, RecordType, Serial, Zone, ZoneDiff};

use super::client::{exchange, random_id, unix_now, Checks, Receiver};
use super::{Limits, Progress, TransferError};
use crate::tsig::{sign_request, Key};

/// The IXFR query type.
const IXFR: u16 = 251;
/// The SOA query type.
const SOA: u16 = 6;

/// What an IXFR answer held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IxfrAnswer {
    /// The primary's serial is not newer than ours: nothing to take.
    UpToDate {
        /// The primary's serial.
        serial: Serial,
    },
    /// The changes from our serial to the primary's, oldest first, each
    /// opening its removals with the old SOA and its additions with the new.
    Incremental {
        /// The primary's serial.
        serial: Serial,
        /// The steps.
        steps: Vec<ZoneDiff>,
    },
    /// The whole zone (the primary answered in AXFR form).
    Full(Zone),
}

/// Where the answer stands.
#[derive(Debug)]
enum State {
    /// Nothing received yet.
    Start,
    /// The opening SOA alone.
    Opened,
    /// The AXFR form: the zone so far.
    Whole(Zone),
    /// A step's removals.
    Removing(ZoneDiff),
    /// A step's additions.
    Adding(ZoneDiff),
    /// Complete.
    Done(IxfrAnswer),
}

/// Reads the messages of one IXFR answer.
#[derive(Debug)]
pub struct IxfrReceiver {
    /// The checks on every message.
    checks: Checks,
    /// The serial we asked from.
    ours: Serial,
    /// The opening SOA, once seen.
    first: Option<Record>,
    /// The steps complete so far.
    steps: Vec<ZoneDiff>,
    /// Where the answer stands.
    state: State,
}

impl IxfrReceiver {
    /// A receiver for the answer to the IXFR query `query_id` for `origin`
    /// from serial `ours`; `verifier` is what signing the query returned.
    pub fn new(
        origin: Name,
        ours: Serial,
        query_id: u16,
        verifier: Option<crate::tsig::ResponseVerifier>,
        limits: Limits,
    ) -> IxfrReceiver {
        IxfrReceiver {
            checks: Checks::new(origin, query_id, verifier, limits),
            ours,
            first: None,
            steps: Vec::new(),
            state: State::Start,
        }
    }

    /// Messages received so far.
    pub fn messages(&self) -> usize {
        self.checks.messages
    }

    /// Message bytes received so far.
    pub fn bytes(&self) -> usize {
        self.checks.bytes
    }

    /// Takes the next message of the answer, received at `now` (seconds).
    pub fn receive(&mut self, message: &[u8], now: u64) -> Result<Progress, TransferError> {
        if matches!(self.state, State::Done(_)) {
            return Err(TransferError::AfterEnd {
                message: self.checks.messages + 1,
            });
        }
        let records = self.checks.answers(message, now)?;
        let index = self.checks.messages;
        for record in records {
            if matches!(self.state, State::Done(_)) {
                return Err(TransferError::AfterEnd { message: index });
            }
            self.take(record, index)?;
        }
        // A lone SOA not newer than ours, at the end of a message: up to date.
        if let (State::Opened, Some(first)) = (&self.state, &self.first) {
            let serial = soa_serial_of(&first.rdata);
            if !serial.is_newer_than(self.ours) {
                self.state = State::Done(IxfrAnswer::UpToDate { serial });
            }
        }
        Ok(match self.state {
            State::Done(_) => Progress::Done,
            _ => Progress::More,
        })
    }

    /// The answer, once complete (and with a key, its last message signed).
    pub fn finish(self) -> Result<IxfrAnswer, TransferError> {
        let State::Done(answer) = self.state else {
            return Err(TransferError::Incomplete {
                messages: self.checks.messages,
            });
        };
        self.checks.finish()?;
        Ok(answer)
    }

    /// Takes one answer record.
    fn take(&mut self, record: Record, index: usize) -> Result<(), TransferError> {
        let origin = self.checks.origin.clone();
        let apex_soa = record.rdata.rtype() == RecordType::SOA && record.name == origin;
        let bad = |record: &Record, reason: String| TransferError::BadRecord {
            message: index,
            name: record.name.clone(),
            rtype: record.rdata.rtype(),
            reason,
        };
        if !apex_soa && !origin.zone_of(&record.name) {
            return Err(bad(&record, format!("is outside the zone {origin}")));
        }
        if !apex_soa && record.rdata.rtype() == RecordType::SOA {
            return Err(bad(&record, "is an SOA below the apex".into()));
        }
        let state = std::mem::replace(&mut self.state, State::Start);
        self.state = match state {
            State::Start => {
                if !apex_soa {
                    return Err(TransferError::NoLeadingSoa {
                        zone: origin,
                        found: format!("{} {}", record.name, record.rdata.rtype()),
                    });
                }
                self.first = Some(record);
                State::Opened
            }
            State::Opened => {
                let first = self.first.clone().expect("the opening SOA is kept");
                if apex_soa && record.rdata == first.rdata {
                    // AXFR form of a zone that is its SOA alone.
                    let mut zone = Zone::new(origin);
                    add(&mut zone, first, index)?;
                    State::Done(IxfrAnswer::Full(zone))
                } else if apex_soa && soa_serial_of(&record.rdata) == self.ours {
                    State::Removing(ZoneDiff {
                        from: self.ours,
                        to: self.ours,
                        removed: vec![record],
                        added: Vec::new(),
                    })
                } else if apex_soa {
                    return Err(bad(
                        &record,
                        format!(
                            "is an SOA with serial {}, which is neither ours ({}) nor the opening one",
                            soa_serial_of(&record.rdata),
                            self.ours
                        ),
                    ));
                } else {
                    let mut zone = Zone::new(origin);
                    add(&mut zone, first, index)?;
                    add(&mut zone, record, index)?;
                    State::Whole(zone)
                }
            }
            State::Whole(mut zone) => {
                if apex_soa {
                    let first = self.first.as_ref().expect("the opening SOA is kept");
                    if record.rdata != first.rdata {
                        return Err(bad(
                            &record,
                            "is an SOA that differs from the opening one".into(),
                        ));
                    }
                    State::Done(IxfrAnswer::Full(zone))
                } else {
                    add(&mut zone, record, index)?;
                    State::Whole(zone)
                }
            }
            State::Removing(mut step) => {
                if apex_soa {
                    step.to = soa_serial_of(&record.rdata);
                    step.added.push(record);
                    State::Adding(step)
                } else {
                    step.removed.push(record);
                    State::Removing(step)
                }
            }
            State::Adding(mut step) => {
                if !apex_soa {
                    step.added.push(record);
                    State::Adding(step)
                } else {
                    let first = self.first.as_ref().expect("the opening SOA is kept");
                    let serial = soa_serial_of(&record.rdata);
                    let to = step.to;
                    if !to.is_newer_than(step.from) {
                        return Err(bad(
                            &record,
                            format!(
                                "ends a step from serial {} to {to}, which does not rise",
                                step.from
                            ),
                        ));
                    }
                    self.steps.push(step);
                    if record.rdata == first.rdata && to == serial {
                        State::Done(IxfrAnswer::Incremental {
                            serial,
                            steps: std::mem::take(&mut self.steps),
                        })
                    } else if serial == to {
                        State::Removing(ZoneDiff {
                            from: to,
                            to,
                            removed: vec![record],
                            added: Vec::new(),
                        })
                    } else {
                        return Err(bad(
                            &record,
                            format!(
                                "opens a step at serial {serial}, but the last one ended at {to}"
                            ),
                        ));
                    }
                }
            }
            State::Done(answer) => State::Done(answer),
        };
        Ok(())
    }
}

impl Receiver for IxfrReceiver {
    fn receive(&mut self, message: &[u8], now: u64) -> Result<Progress, TransferError> {
        IxfrReceiver::receive(self, message, now)
    }
}

/// Adds a record to a zone received in AXFR form.
fn add(zone: &mut Zone, record: Record, index: usize) -> Result<(), TransferError> {
    zone.add(record)
        .map(drop)
        .map_err(|source| TransferError::Zone {
            message: index,
            source: Box::new(source),
        })
}

/// The serial of SOA RDATA (0 for anything else, never passed here).
fn soa_serial_of(rdata: &Rdata) -> Serial {
    Serial(rdata.as_soa().map_or(0, |soa| soa.serial))
}

/// The IXFR query for `zone` with ID `id`, our version's SOA (`soa`, the
/// record at the apex) in its authority section.
pub fn ixfr_query(zone: &Name, soa: &Record, id: u16) -> Vec<u8> {
    let mut query = question(zone, id, IXFR, 1);
    cutover_zone::rdata::push_name(&mut query, &soa.name);
    query.extend_from_slice(&u16::from(RecordType::SOA).to_be_bytes());
    query.extend_from_slice(&1u16.to_be_bytes());
    query.extend_from_slice(&soa.ttl.to_be_bytes());
    let wire = soa.rdata.wire();
    query.extend_from_slice(&u16::try_from(wire.len()).unwrap_or(u16::MAX).to_be_bytes());
    query.extend_from_slice(wire);
    query
}

/// A query's header and question, `authority` records announced.
fn question(zone: &Name, id: u16, qtype: u16, authority: u8) -> Vec<u8> {
    let mut query = Vec::with_capacity(12 + zone.len() + 64);
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, authority, 0, 0]);
    cutover_zone::rdata::push_name(&mut query, zone);
    query.extend_from_slice(&qtype.to_be_bytes());
    query.extend_from_slice(&1u16.to_be_bytes());
    query
}

/// A finished IXFR: the answer and what it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IxfrTransfer {
    /// What the primary sent.
    pub answer: IxfrAnswer,
    /// Messages received.
    pub messages: usize,
    /// Bytes received.
    pub bytes: usize,
}

/// Asks `server` over TCP for the changes to `zone` since our version,
/// whose apex SOA is `soa`; signed with `key` when given.
pub fn fetch_ixfr(
    server: SocketAddr,
    zone: &Name,
    soa: &Record,
    key: Option<Arc<Key>>,
    limits: Limits,
) -> Result<IxfrTransfer, TransferError> {
    let id = random_id();
    let mut query = ixfr_query(zone, soa, id);
    let verifier = match key {
        Some(key) => Some(sign_request(&mut query, key, unix_now())?),
        None => None,
    };
    let ours = soa_serial_of(&soa.rdata);
    let receiver = IxfrReceiver::new(zone.clone(), ours, id, verifier, limits);
    let receiver = exchange(server, &query, receiver, limits)?;
    let (messages, bytes) = (receiver.messages(), receiver.bytes());
    Ok(IxfrTransfer {
        answer: receiver.finish()?,
        messages,
        bytes,
    })
}

/// Reads the SOA out of the one message answering an SOA query.
#[derive(Debug)]
struct SoaReceiver {
    /// The checks on the message.
    checks: Checks,
    /// The serial, once read.
    serial: Option<Serial>,
}

impl Receiver for SoaReceiver {
    fn receive(&mut self, message: &[u8], now: u64) -> Result<Progress, TransferError> {
        let records = self.checks.answers(message, now)?;
        let origin = &self.checks.origin;
        self.serial = records
            .iter()
            .find(|r| r.rdata.rtype() == RecordType::SOA && r.name == *origin)
            .map(|r| soa_serial_of(&r.rdata));
        match self.serial {
            Some(_) => Ok(Progress::Done),
            None => Err(TransferError::NoLeadingSoa {
                zone: origin.clone(),
                found: "an answer without the zone's SOA (is the zone served there?)".into(),
            }),
        }
    }
}

/// How many times the SOA is asked over UDP before TCP is tried.
const UDP_TRIES: u32 = 3;
/// How long each UDP try waits for the answer.
const UDP_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The SOA serial of `zone` at `server` (signed with `key` when given), the
/// answer checked as a transfer's messages are: over UDP as secondaries
/// ask (RFC 1034 §4.3.5), three tries of a second; over TCP when the
/// answer is truncated or UDP gets none (a primary or a path that drops
/// UDP).
pub fn soa_serial(
    server: SocketAddr,
    zone: &Name,
    key: Option<Arc<Key>>,
    limits: Limits,
) -> Result<Serial, TransferError> {
    match soa_serial_udp(server, zone, key.clone(), limits)? {
        Some(serial) => Ok(serial),
        None => soa_serial_tcp(server, zone, key, limits),
    }
}

/// A query for the SOA of `zone`, signed with `key` when given, and the
/// receiver that checks its answer.
fn soa_query(
    zone: &Name,
    key: Option<Arc<Key>>,
    limits: Limits,
) -> Result<(Vec<u8>, SoaReceiver), TransferError> {
    let id = random_id();
    let mut query = question(zone, id, SOA, 0);
    let verifier = match key {
        Some(key) => Some(sign_request(&mut query, key, unix_now())?),
        None => None,
    };
    let receiver = SoaReceiver {
        checks: Checks::new(zone.clone(), id, verifier, limits),
        serial: None,
    };
    Ok((query, receiver))
}

/// [`soa_serial`] over UDP: `None` when the answer is truncated or none
/// came (TCP then), an error when the answer refuses or does not check.
fn soa_serial_udp(
    server: SocketAddr,
    zone: &Name,
    key: Option<Arc<Key>>,
    limits: Limits,
) -> Result<Option<Serial>, TransferError> {
    let io = |source| TransferError::Io { server, source };
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(local).map_err(io)?;
    // Only the server's datagrams reach a connected socket.
    socket.connect(server).map_err(io)?;
    let mut buf = vec![0u8; 65535];
    for _ in 0..UDP_TRIES {
        // Each try is a new query (a new ID, a new signature).
        let (query, mut receiver) = soa_query(zone, key.clone(), limits)?;
        let id = [query[0], query[1]];
        socket.send(&query).map_err(io)?;
        let deadline = std::time::Instant::now() + UDP_WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left)).map_err(io)?;
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                // An ICMP port unreachable: nothing listens on UDP there.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
                Err(e) => return Err(io(e)),
            };
            let message = &buf[..n];
            // A late answer to an earlier try is not this one's.
            if message.len() < 12 || message[..2] != id {
                continue;
            }
            if message[2] & 0x02 != 0 {
                return Ok(None);
            }
            receiver.receive(message, unix_now())?;
            receiver.checks.finish()?;
            return Ok(receiver.serial);
        }
    }
    Ok(None)
}

/// [`soa_serial`] over TCP.
fn soa_serial_tcp(
    server: SocketAddr,
    zone: &Name,
    key: Option<Arc<Key>>,
    limits: Limits,
) -> Result<Serial, TransferError> {
    let (query, receiver) = soa_query(zone, key, limits)?;
    let receiver = exchange(server, &query, receiver, limits)?;
    receiver.checks.finish()?;
    receiver.serial.ok_or(TransferError::Incomplete {
        messages: receiver.checks.messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::{ixfr_messages, Question};

    /// example.com. at `serial` with `www` at `last_octet`.
    fn zone(serial: u32, last_octet: u8) -> Zone {
        let text = format!(
            "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h {serial} 60 10 600 30\n@ NS ns1\n\
             ns1 A 192.0.2.1\nwww A 192.0.2.{last_octet}\n"
        );
        let origin: Name = "example.com.".parse().unwrap();
        cutover_zone::zonefile::parse_str(&text, "test", Some(&origin))
            .unwrap()
            .zone
    }

    /// Feeds the IXFR answer the primary's builder makes for `ours` to a
    /// receiver, in messages of at most `max` bytes.
    fn round_trip(current: &Zone, journal: &[ZoneDiff], ours: u32, max: usize) -> IxfrAnswer {
        let question = Question {
            name: current.origin().clone(),
            qtype: RecordType::IXFR,
        };
        let built = ixfr_messages(current, journal, Serial(ours), 7, &question, max).unwrap();
        let mut receiver = IxfrReceiver::new(
            current.origin().clone(),
            Serial(ours),
            7,
            None,
            Limits::default(),
        );
        let last = built.messages.len() - 1;
        for (i, message) in built.messages.iter().enumerate() {
            let progress = receiver.receive(message, 0).unwrap();
            assert_eq!(
                progress == Progress::Done,
                i == last,
                "message {i} of {last}"
            );
        }
        receiver.finish().unwrap()
    }

    #[test]
    fn the_three_forms_of_an_ixfr_answer_are_read() {
        let (v1, v2, v3) = (zone(1, 10), zone(2, 20), zone(3, 30));
        let journal = vec![ZoneDiff::between(&v1, &v2), ZoneDiff::between(&v2, &v3)];
        match round_trip(&v3, &journal, 1, 512) {
            IxfrAnswer::Incremental { serial, steps } => {
                assert_eq!(serial, Serial(3));
                assert_eq!(steps, journal, "the steps as the journal holds them");
            }
            other => panic!("expected incremental, got {other:?}"),
        }
        assert_eq!(
            round_trip(&v3, &[], 1, 512),
            IxfrAnswer::Full(v3.clone()),
            "no journal: AXFR form"
        );
        assert_eq!(
            round_trip(&v3, &[], 3, 512),
            IxfrAnswer::UpToDate { serial: Serial(3) }
        );
        assert_eq!(
            round_trip(&v2, &[], 3, 512),
            IxfrAnswer::UpToDate { serial: Serial(2) },
            "an older primary: up to date, with its serial"
        );
    }

    #[test]
    fn a_cut_or_foreign_answer_is_refused() {
        let (v1, v2) = (zone(1, 10), zone(2, 20));
        let journal = vec![ZoneDiff::between(&v1, &v2)];
        let question = Question {
            name: v2.origin().clone(),
            qtype: RecordType::IXFR,
        };
        let built = ixfr_messages(&v2, &journal, Serial(1), 7, &question, 65535).unwrap();
        let message = &built.messages[0];
        // The message without its last record (the closing SOA): incomplete.
        let mut receiver =
            IxfrReceiver::new(v2.origin().clone(), Serial(1), 7, None, Limits::default());
        let mut cut = message.clone();
        let answers = u16::from_be_bytes([cut[6], cut[7]]) - 1;
        cut[6..8].copy_from_slice(&answers.to_be_bytes());
        assert_eq!(receiver.receive(&cut, 0).unwrap(), Progress::More);
        assert!(matches!(
            receiver.finish(),
            Err(TransferError::Incomplete { .. })
        ));
        // Another ID: refused.
        let mut receiver =
            IxfrReceiver::new(v2.origin().clone(), Serial(1), 8, None, Limits::default());
        assert!(matches!(
            receiver.receive(message, 0),
            Err(TransferError::Malformed { .. })
        ));
        // Truncated bytes never panic.
        for end in 0..message.len() {
            let mut receiver =
                IxfrReceiver::new(v2.origin().clone(), Serial(1), 7, None, Limits::default());
            let _ = receiver.receive(&message[..end], 0);
        }
    }

    /// The catalog of `zone`, answered by the server's own answer function.
    fn catalog_of(zone: &Zone) -> crate::Catalog {
        crate::Catalog::new(vec![Arc::new(crate::ZoneSnapshot::build(zone))])
    }

    #[test]
    fn the_soa_is_asked_over_udp() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = socket.local_addr().unwrap();
        let catalog = catalog_of(&zone(7, 1));
        let answering = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let (n, client) = socket.recv_from(&mut buf).unwrap();
            let mut response = Vec::new();
            assert!(crate::answer::answer(
                &catalog,
                &buf[..n],
                crate::answer::Transport::Udp,
                &mut response
            ));
            socket.send_to(&response, client).unwrap();
        });
        let origin: Name = "example.com.".parse().unwrap();
        let serial = soa_serial(server, &origin, None, Limits::default()).unwrap();
        answering.join().unwrap();
        assert_eq!(serial, Serial(7), "the serial answered over UDP");
    }

    #[test]
    fn a_server_without_udp_is_asked_over_tcp() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let catalog = catalog_of(&zone(9, 1));
        let answering = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = listener.accept().unwrap();
            let mut prefix = [0u8; 2];
            stream.read_exact(&mut prefix).unwrap();
            let mut query = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
            stream.read_exact(&mut query).unwrap();
            let mut response = Vec::new();
            assert!(crate::answer::answer(
                &catalog,
                &query,
                crate::answer::Transport::Tcp,
                &mut response
            ));
            let mut framed = (response.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&response);
            stream.write_all(&framed).unwrap();
        });
        let origin: Name = "example.com.".parse().unwrap();
        // Nothing listens on UDP at that port (or, if something does, it is
        // not a DNS server for the zone): the query goes over TCP.
        let serial = soa_serial(server, &origin, None, Limits::default()).unwrap();
        answering.join().unwrap();
        assert_eq!(serial, Serial(9), "the serial answered over TCP");
    }
}
