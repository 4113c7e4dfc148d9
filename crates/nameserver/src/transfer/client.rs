//! The AXFR client of `cutover zone import --axfr` (RFC 5936): one query
//! over TCP, many answer messages, every one checked before any of it is
//! believed, and a [`Zone`] at the end, or nothing.
//!
//! ```text
//!  axfr_query(zone, id) ──sign_request (with a key)──▶ TCP ──▶ server
//!  each message ──AxfrReceiver::receive──▶ TSIG verified (with a key)
//!                                         header: our ID, a response, QUERY, NOERROR
//!                                         caps on bytes and records
//!                                         first record: the apex SOA
//!                                         records in the zone, class IN
//!                                         the SOA again ──▶ Done (nothing may follow)
//!  finish() ──▶ Zone   (only after the final SOA, and with a key the final TSIG)
//! ```
//!
//! The receiver is pure (bytes and the clock's seconds in); [`fetch_axfr`]
//! does the TCP around it. Any failure refuses the whole transfer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cutover_zone::{Name, Rdata, Record, RecordType, Zone, ZoneError};
use hickory_proto::rr::RData;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, Restrict};

use crate::tsig::{sign_request, Key, ResponseError, ResponseVerifier, SignError};

/// The AXFR query type.
const AXFR: u16 = 252;
/// The header's length.
const HEADER_LEN: usize = 12;

/// Bounds on one transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Records accepted, the two SOAs included.
    pub max_records: usize,
    /// Message bytes accepted, over all messages.
    pub max_bytes: usize,
    /// How long the server may stay silent.
    pub idle: Duration,
    /// How long the whole transfer may take.
    pub total: Duration,
}

/// A finished transfer: the zone and what it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// The zone received.
    pub zone: Zone,
    /// Messages received.
    pub messages: usize,
    /// Bytes received (messages, without TCP length prefixes).
    pub bytes: usize,
}

/// Where a transfer stands after a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More messages are due.
    More,
    /// The final SOA arrived.
    Done,
}

/// Why a transfer was refused; nothing of it is to be used.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Connecting, sending or receiving failed.
    #[error("transfer from {server}: {source}")]
    Io {
        /// The server.
        server: SocketAddr,
        /// What the socket said.
        source: std::io::Error,
    },
    /// The server stayed silent, or the transfer ran past its time.
    #[error("transfer from {server}: no answer within {seconds} s")]
    Timeout {
        /// The server.
        server: SocketAddr,
        /// The limit that ran out.
        seconds: u64,
    },
    /// The server closed the connection before the final SOA.
    #[error("the server closed the connection after {messages} messages, before the final SOA")]
    Incomplete {
        /// Messages received.
        messages: usize,
    },
    /// The request could not be signed.
    #[error("cannot sign the AXFR request: {0}")]
    Sign(#[from] SignError),
    /// A message's TSIG did not verify (or was missing).
    #[error("message {message} of the transfer: TSIG: {source}")]
    Tsig {
        /// Which message (from 1).
        message: usize,
        /// What the verifier said.
        source: ResponseError,
    },
    /// The server answered with an error RCODE.
    #[error("the server refused the transfer of {zone}: {rcode}")]
    Refused {
        /// The zone asked for.
        zone: Name,
        /// The RCODE's name.
        rcode: String,
    },
    /// A message does not parse, or is not an answer to our query.
    #[error("message {message} of the transfer: {reason}")]
    Malformed {
        /// Which message (from 1).
        message: usize,
        /// What is wrong.
        reason: String,
    },
    /// The first record is not the zone's SOA.
    #[error("the transfer of {zone} does not start with its SOA (found {found})")]
    NoLeadingSoa {
        /// The zone.
        zone: Name,
        /// What came first.
        found: String,
    },
    /// A record outside the zone, or of a class other than IN.
    #[error("message {message}: record {name} {rtype} {reason}")]
    BadRecord {
        /// Which message (from 1).
        message: usize,
        /// Its owner.
        name: Name,
        /// Its type.
        rtype: RecordType,
        /// What is wrong with it.
        reason: String,
    },
    /// Data after the final SOA.
    #[error("message {message}: data after the final SOA")]
    AfterEnd {
        /// Which message (from 1).
        message: usize,
    },
    /// More records than [`Limits::max_records`].
    #[error("the transfer exceeds {limit} records")]
    TooManyRecords {
        /// The cap.
        limit: usize,
    },
    /// More bytes than [`Limits::max_bytes`].
    #[error("the transfer exceeds {limit} bytes")]
    TooManyBytes {
        /// The cap.
        limit: usize,
    },
    /// A record the zone model refuses.
    #[error("message {message}: {source}")]
    Zone {
        /// Which message (from 1).
        message: usize,
        /// What the zone model said (boxed: it can hold two names).
        source: Box<ZoneError>,
    },
}

/// What every message of a transfer's answer (AXFR, IXFR, an SOA query)
/// is checked for before any of its records is believed: TSIG, our ID, a
/// response to a QUERY, NOERROR, no TC, caps on bytes and records, class IN.
#[derive(Debug)]
pub(crate) struct Checks {
    /// The zone asked for.
    pub(crate) origin: Name,
    /// The ID of our query.
    query_id: u16,
    /// Verifies every message when the request was signed.
    verifier: Option<ResponseVerifier>,
    /// The caps.
    limits: Limits,
    /// Messages received.
    pub(crate) messages: usize,
    /// Records received.
    records: usize,
    /// Bytes received.
    pub(crate) bytes: usize,
}

/// Builds a zone out of the messages of one AXFR response.
#[derive(Debug)]
pub struct AxfrReceiver {
    /// The zone being received.
    zone: Zone,
    /// The checks on every message.
    checks: Checks,
    /// The opening SOA's data, once seen.
    first_soa: Option<Rdata>,
    /// Whether the final SOA arrived.
    done: bool,
}

/// Takes the messages of a transfer's answer, one at a time.
pub trait Receiver {
    /// Takes the next message, received at `now` (seconds).
    fn receive(&mut self, message: &[u8], now: u64) -> Result<Progress, TransferError>;
}

impl Default for Limits {
    /// A million records, 256 MiB, 30 s of silence, 10 minutes in all.
    fn default() -> Limits {
        Limits {
            max_records: 1_000_000,
            max_bytes: 256 << 20,
            idle: Duration::from_secs(30),
            total: Duration::from_secs(600),
        }
    }
}

impl Checks {
    /// Checks for the answer to the query `query_id` for `origin`;
    /// `verifier` is what signing the query returned, if it was signed.
    pub(crate) fn new(
        origin: Name,
        query_id: u16,
        verifier: Option<ResponseVerifier>,
        limits: Limits,
    ) -> Checks {
        Checks {
            origin,
            query_id,
            verifier,
            limits,
            messages: 0,
            records: 0,
            bytes: 0,
        }
    }

    /// Checks the next message and returns its answer records.
    pub(crate) fn answers(
        &mut self,
        message: &[u8],
        now: u64,
    ) -> Result<Vec<Record>, TransferError> {
        self.messages += 1;
        let index = self.messages;
        self.bytes = self.bytes.saturating_add(message.len());
        if self.bytes > self.limits.max_bytes {
            return Err(TransferError::TooManyBytes {
                limit: self.limits.max_bytes,
            });
        }
        if let Some(verifier) = self.verifier.as_mut() {
            if let Err(source) = verifier.verify(message, now) {
                // An error RCODE says more than "unsigned" or "BADSIG" alone.
                return Err(match message.get(3).map(|b| b & 0x0f) {
                    Some(rcode) if rcode != 0 => TransferError::Refused {
                        zone: self.origin.clone(),
                        rcode: format!("{} ({})", rcode_name(rcode), tsig_refusal(&source)),
                    },
                    _ => TransferError::Tsig {
                        message: index,
                        source,
                    },
                });
            }
        }
        let malformed = |reason: String| TransferError::Malformed {
            message: index,
            reason,
        };
        let header = message
            .get(..HEADER_LEN)
            .ok_or_else(|| malformed(format!("{} bytes, shorter than a header", message.len())))?;
        let id = u16::from_be_bytes([header[0], header[1]]);
        if id != self.query_id {
            return Err(malformed(format!(
                "ID {id} does not match the query's {}",
                self.query_id
            )));
        }
        if header[2] & 0x80 == 0 || (header[2] >> 3) & 0x0f != 0 {
            return Err(malformed("not a response to a QUERY".into()));
        }
        let rcode = header[3] & 0x0f;
        if rcode != 0 {
            return Err(TransferError::Refused {
                zone: self.origin.clone(),
                rcode: rcode_name(rcode),
            });
        }
        if header[2] & 0x02 != 0 {
            return Err(malformed("the TC bit is set".into()));
        }
        let questions = u16::from_be_bytes([header[4], header[5]]);
        let answers = u16::from_be_bytes([header[6], header[7]]);
        let mut decoder = BinDecoder::new(message);
        // The header's 12 bytes are there: checked above.
        let _ = decoder.read_slice(HEADER_LEN);
        for _ in 0..questions {
            Name::read(&mut decoder)
                .and_then(|_| decoder.read_slice(4).map(drop))
                .map_err(|e| malformed(format!("bad question: {e}")))?;
        }
        let mut records = Vec::with_capacity(usize::from(answers).min(4096));
        for _ in 0..answers {
            self.records += 1;
            if self.records > self.limits.max_records {
                return Err(TransferError::TooManyRecords {
                    limit: self.limits.max_records,
                });
            }
            records.push(read_record(&mut decoder, index)?);
        }
        Ok(records)
    }

    /// With a key: whether the last message was signed (RFC 8945 lets
    /// messages between go unsigned, never the last).
    pub(crate) fn finish(&self) -> Result<(), TransferError> {
        match &self.verifier {
            Some(verifier) => verifier.finish().map_err(|source| TransferError::Tsig {
                message: self.messages,
                source,
            }),
            None => Ok(()),
        }
    }
}

impl Receiver for AxfrReceiver {
    fn receive(&mut self, message: &[u8], now: u64) -> Result<Progress, TransferError> {
        AxfrReceiver::receive(self, message, now)
    }
}

impl AxfrReceiver {
    /// A receiver for the answer to the query `query_id` for `origin`;
    /// `verifier` is what signing the query returned, if it was signed.
    pub fn new(
        origin: Name,
        query_id: u16,
        verifier: Option<ResponseVerifier>,
        limits: Limits,
    ) -> AxfrReceiver {
        AxfrReceiver {
            zone: Zone::new(origin.clone()),
            checks: Checks::new(origin, query_id, verifier, limits),
            first_soa: None,
            done: false,
        }
    }

    /// Takes the next message of the response, received at `now` (seconds).
    pub fn receive(&mut self, message: &[u8], now: u64) -> Result<Progress, TransferError> {
        if self.done {
            return Err(TransferError::AfterEnd {
                message: self.checks.messages + 1,
            });
        }
        let records = self.checks.answers(message, now)?;
        let index = self.checks.messages;
        for record in records {
            if self.done {
                return Err(TransferError::AfterEnd { message: index });
            }
            self.take(record, index)?;
        }
        Ok(if self.done {
            Progress::Done
        } else {
            Progress::More
        })
    }

    /// Messages received so far.
    pub fn messages(&self) -> usize {
        self.checks.messages
    }

    /// Message bytes received so far.
    pub fn bytes(&self) -> usize {
        self.checks.bytes
    }

    /// The zone, once the final SOA (and with a key, a final signed
    /// message) arrived.
    pub fn finish(self) -> Result<Zone, TransferError> {
        if !self.done {
            return Err(TransferError::Incomplete {
                messages: self.checks.messages,
            });
        }
        self.checks.finish()?;
        Ok(self.zone)
    }

    /// Adds one answer record to the zone, watching for the SOAs.
    fn take(&mut self, record: Record, index: usize) -> Result<(), TransferError> {
        let origin = self.zone.origin().clone();
        let is_soa = record.rdata.rtype() == RecordType::SOA;
        let Some(first) = &self.first_soa else {
            if !is_soa || record.name != origin {
                return Err(TransferError::NoLeadingSoa {
                    zone: origin,
                    found: format!("{} {}", record.name, record.rdata.rtype()),
                });
            }
            self.first_soa = Some(record.rdata.clone());
            return self.add(record, index);
        };
        if is_soa {
            if record.name != origin || record.rdata != *first {
                return Err(TransferError::BadRecord {
                    message: index,
                    name: record.name,
                    rtype: RecordType::SOA,
                    reason: "is an SOA that differs from the opening one".into(),
                });
            }
            self.done = true;
            return Ok(());
        }
        if !self.zone.contains_name(&record.name) {
            return Err(TransferError::BadRecord {
                message: index,
                name: record.name,
                rtype: record.rdata.rtype(),
                reason: format!("is outside the zone {origin}"),
            });
        }
        self.add(record, index)
    }

    /// Adds a record the checks passed.
    fn add(&mut self, record: Record, index: usize) -> Result<(), TransferError> {
        self.zone
            .add(record)
            .map(drop)
            .map_err(|source| TransferError::Zone {
                message: index,
                source: Box::new(source),
            })
    }
}

/// The AXFR query for `zone` with ID `id` (no EDNS).
pub fn axfr_query(zone: &Name, id: u16) -> Vec<u8> {
    let mut query = Vec::with_capacity(HEADER_LEN + zone.len() + 6);
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    cutover_zone::rdata::push_name(&mut query, zone);
    query.extend_from_slice(&AXFR.to_be_bytes());
    query.extend_from_slice(&1u16.to_be_bytes());
    query
}

/// Transfers `zone` from `server` over TCP, signed with `key` when given,
/// within `limits`. Reads the wall clock for TSIG.
pub fn fetch_axfr(
    server: SocketAddr,
    zone: &Name,
    key: Option<Arc<Key>>,
    limits: Limits,
) -> Result<Transfer, TransferError> {
    let id = random_id();
    let mut query = axfr_query(zone, id);
    let verifier = match key {
        Some(key) => Some(sign_request(&mut query, key, unix_now())?),
        None => None,
    };
    let receiver = AxfrReceiver::new(zone.clone(), id, verifier, limits);
    let receiver = exchange(server, &query, receiver, limits)?;
    let (messages, bytes) = (receiver.messages(), receiver.bytes());
    Ok(Transfer {
        zone: receiver.finish()?,
        messages,
        bytes,
    })
}

/// Sends the query and feeds the receiver until the final SOA or the end
/// of the connection; the receiver decides whether that was enough.
pub(crate) fn exchange<R: Receiver>(
    server: SocketAddr,
    query: &[u8],
    mut receiver: R,
    limits: Limits,
) -> Result<R, TransferError> {
    let io = |source| TransferError::Io { server, source };
    let deadline = Instant::now() + limits.total;
    let mut stream = TcpStream::connect_timeout(&server, limits.idle).map_err(io)?;
    stream.set_write_timeout(Some(limits.idle)).map_err(io)?;
    // A query is at most a header, a 255-byte name and a TSIG: well under 64 KiB.
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).map_err(io)?;
    let mut buf = Vec::with_capacity(65535);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TransferError::Timeout {
                server,
                seconds: limits.total.as_secs(),
            });
        }
        stream
            .set_read_timeout(Some(left.min(limits.idle)))
            .map_err(io)?;
        let mut prefix = [0u8; 2];
        match read_exact(&mut stream, &mut prefix) {
            Ok(true) => {}
            Ok(false) => return Ok(receiver),
            Err(e) if is_timeout(&e) => {
                return Err(TransferError::Timeout {
                    server,
                    seconds: limits.idle.as_secs(),
                })
            }
            Err(e) => return Err(io(e)),
        }
        buf.resize(usize::from(u16::from_be_bytes(prefix)), 0);
        match read_exact(&mut stream, &mut buf) {
            Ok(true) => {}
            Ok(false) => return Ok(receiver),
            Err(e) if is_timeout(&e) => {
                return Err(TransferError::Timeout {
                    server,
                    seconds: limits.idle.as_secs(),
                })
            }
            Err(e) => return Err(io(e)),
        }
        if receiver.receive(&buf, unix_now())? == Progress::Done {
            return Ok(receiver);
        }
    }
}

/// Reads one answer record at the decoder's position (names may be
/// compressed anywhere in the message).
pub(crate) fn read_record(
    decoder: &mut BinDecoder<'_>,
    index: usize,
) -> Result<Record, TransferError> {
    let malformed = |reason: String| TransferError::Malformed {
        message: index,
        reason,
    };
    let name = Name::read(decoder).map_err(|e| malformed(format!("bad owner name: {e}")))?;
    let fixed = decoder
        .read_slice(10)
        .map_err(|e| malformed(format!("record {name} cut short: {e}")))?
        .unverified(/*fixed-size fields, each value read below is valid*/);
    let rtype = RecordType::from(u16::from_be_bytes([fixed[0], fixed[1]]));
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let len = u16::from_be_bytes([fixed[8], fixed[9]]);
    if class != 1 {
        return Err(TransferError::BadRecord {
            message: index,
            name,
            rtype,
            reason: format!("has class {class}, not IN"),
        });
    }
    if usize::from(len) > decoder.len() {
        return Err(malformed(format!("record {name} {rtype}: RDATA cut short")));
    }
    let bad = |reason: String| TransferError::BadRecord {
        message: index,
        name: name.clone(),
        rtype,
        reason,
    };
    let start = decoder.index();
    let rdata = if len == 0 {
        Rdata::from_wire(rtype, &[]).map_err(|e| bad(e.to_string()))?
    } else {
        let value = RData::read(decoder, rtype, Restrict::new(len))
            .map_err(|e| bad(format!("has bad RDATA: {e}")))?;
        if decoder.index() != start + usize::from(len) {
            return Err(bad("has RDATA whose length disagrees with RDLENGTH".into()));
        }
        Rdata::from_hickory(&value).map_err(|e| bad(e.to_string()))?
    };
    Ok(Record { name, ttl, rdata })
}

/// Fills `buf` from `stream`; `Ok(false)` when the peer closed the
/// connection before the first byte.
fn read_exact(stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// True for the errors a read timeout gives.
fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The wall clock in seconds since 1970 (0 before it, which TSIG refuses).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A query ID nobody off the path can guess: std's per-process random
/// hash keys, mixed with the clock.
pub(crate) fn random_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u16
}

/// What a TSIG failure on an error answer means to the user.
fn tsig_refusal(error: &ResponseError) -> String {
    match error {
        ResponseError::Refused(16) => {
            "TSIG BADSIG: the server has another secret for this key".into()
        }
        ResponseError::Refused(17) => "TSIG BADKEY: the server does not know this key".into(),
        ResponseError::Refused(18) | ResponseError::ServerBadTime { .. } => {
            "TSIG BADTIME: the clocks differ by more than the fudge".into()
        }
        ResponseError::Unsigned => "answered without a TSIG".into(),
        other => format!("TSIG: {other}"),
    }
}

/// The mnemonic of an RCODE.
fn rcode_name(rcode: u8) -> String {
    match rcode {
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        9 => "NOTAUTH".into(),
        other => format!("RCODE {other}"),
    }
}
