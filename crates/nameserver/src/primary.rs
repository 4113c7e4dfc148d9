//! The seam between the server and a primary: which messages leave the
//! lock-free answer path, and the pure pieces a primary answers them with.
//!
//! ```text
//!  datagram / TCP frame ──routed(bytes)?── no ──▶ answer(&Catalog, ..)        (plain QUERY: unchanged)
//!                                  │ yes: opcode ≠ QUERY, qtype AXFR/IXFR,
//!                                  │      any additional record but one OPT
//!                                  ▼
//!           Primary::handle(request, client, transport) ──▶ response messages
//!           (UDP: handed to a thread of its own, the workers never wait;
//!            TCP: a blocking task, every message framed in order)
//! ```
//!
//! [`routed`] looks at a few header bytes, the question name's labels and
//! the bytes after the question; it never allocates. It errs towards
//! routing: a message it cannot classify cheaply (a compressed question
//! name, an OPT not right after the question) goes to the primary, which
//! answers a plain query with [`answer`](crate::answer) too.

pub mod notify;

use std::net::SocketAddr;

use crate::answer::Transport;

/// Opcode QUERY.
pub const OPCODE_QUERY: u8 = 0;
/// Opcode NOTIFY (RFC 1996).
pub const OPCODE_NOTIFY: u8 = 4;
/// Opcode UPDATE (RFC 2136).
pub const OPCODE_UPDATE: u8 = 5;
/// QTYPE IXFR.
pub const IXFR: u16 = 251;
/// QTYPE AXFR.
pub const AXFR: u16 = 252;
/// Type OPT.
const OPT: u16 = 41;
/// Type SOA.
const SOA: u16 = 6;

/// What the server does with a routed message before the primary's own
/// thread sees it (see [`Primary::triage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Triage {
    /// Answered on the spot: the response buffer holds the answer to send.
    Answer,
    /// Not answered at all.
    Drop,
    /// Handed to [`Primary::handle`] in this lane.
    Queue(Lane),
}

/// The lanes of the queue of routed UDP messages: the primary's thread
/// takes from `Signed` first, so a flood of unsigned messages cannot crowd
/// out the messages signed with a configured key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// The TSIG verified with a configured key.
    Signed,
    /// Everything else.
    Unsigned,
}

/// What answers the messages the answer path does not: UPDATE, NOTIFY,
/// transfers and TSIG-signed messages.
pub trait Primary: Send + Sync + std::fmt::Debug {
    /// Looks at a routed `request` from `client` on the receiving thread,
    /// before it is queued, and says what to do with it. Cheap checks only
    /// (a TSIG verified, an address against an ACL), so that what would be
    /// refused anyway never takes a place in the queue; an answer given
    /// here goes into `response` (cleared first). The default queues
    /// everything in the unsigned lane.
    fn triage(
        &self,
        request: &[u8],
        client: SocketAddr,
        transport: Transport,
        response: &mut Vec<u8>,
    ) -> Triage {
        let _ = (request, client, transport, response);
        Triage::Queue(Lane::Unsigned)
    }

    /// Answers one routed `request` from `client` over `transport` by
    /// pushing the response messages, in order, onto `responses` (none: no
    /// answer is sent; over UDP only the first is sent).
    fn handle(
        &self,
        request: &[u8],
        client: SocketAddr,
        transport: Transport,
        responses: &mut Vec<Vec<u8>>,
    );

    /// Answers routed requests that were waiting together (a run taken off
    /// the UDP queue): `responses` becomes one list of messages per
    /// request, in order. A primary that does better with them together
    /// (UPDATEs committed in one transaction) overrides this; the default
    /// answers each in turn with [`Primary::handle`].
    fn handle_all(
        &self,
        requests: &[(&[u8], SocketAddr)],
        transport: Transport,
        responses: &mut Vec<Vec<Vec<u8>>>,
    ) {
        responses.clear();
        for (request, client) in requests {
            let mut messages = Vec::new();
            self.handle(request, *client, transport, &mut messages);
            responses.push(messages);
        }
    }
}

/// True when `message` must go to the primary: a request (QR clear) with an
/// opcode other than QUERY, a question for AXFR or IXFR, or an additional
/// section that is not empty or a lone OPT right after the question (a TSIG,
/// for one). Everything else stays on the answer path, which also drops or
/// FORMERRs what is malformed.
pub fn routed(message: &[u8]) -> bool {
    let Some(header) = message.get(..12) else {
        return false;
    };
    if header[2] & 0x80 != 0 {
        return false;
    }
    if (header[2] >> 3) & 0x0f != OPCODE_QUERY {
        return true;
    }
    let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    if count(4) != 1 {
        return count(10) != 0;
    }
    let mut at = 12;
    loop {
        let Some(&len) = message.get(at) else {
            return false;
        };
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return true;
        }
        at += 1 + usize::from(len);
    }
    let Some(fixed) = message.get(at..at + 4) else {
        return false;
    };
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    if qtype == AXFR || qtype == IXFR {
        return true;
    }
    match count(10) {
        0 => false,
        1 if count(6) == 0 && count(8) == 0 => {
            // A lone OPT: owner root (one zero byte), then type 41.
            message.get(at + 4..at + 7) != Some(&[0, 0, OPT as u8][..])
        }
        _ => true,
    }
}

/// The parts of a routed request a primary dispatches on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The message ID.
    pub id: u16,
    /// The opcode.
    pub opcode: u8,
    /// The question name in wire form as received (case kept), when there
    /// is exactly one question.
    pub qname: Option<Vec<u8>>,
    /// QTYPE (0 without a question).
    pub qtype: u16,
    /// The serial of the SOA in the authority section (an IXFR's client
    /// version), when there is one.
    pub client_serial: Option<u32>,
}

impl Request {
    /// Reads the header, the question and an IXFR's authority SOA; `None`
    /// for a message shorter than a header, a response, or a question that
    /// does not parse.
    pub fn parse(message: &[u8]) -> Option<Request> {
        let header = message.get(..12)?;
        if header[2] & 0x80 != 0 {
            return None;
        }
        let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
        let mut request = Request {
            id: count(0),
            opcode: (header[2] >> 3) & 0x0f,
            qname: None,
            qtype: 0,
            client_serial: None,
        };
        if count(4) != 1 {
            return Some(request);
        }
        let len = cutover_zone::rdata::wire_name_len(message.get(12..)?)?;
        let fixed = message.get(12 + len..12 + len + 4)?;
        request.qname = Some(message[12..12 + len].to_vec());
        request.qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let mut at = 12 + len + 4;
        for _ in 0..count(6) {
            at = skip_record(message, at)?.0;
        }
        if count(8) >= 1 {
            if let Some((_, rtype, rdata)) = skip_record(message, at) {
                if rtype == SOA {
                    let after_mname = skip_name(message, rdata)?;
                    let after_rname = skip_name(message, after_mname)?;
                    let serial = message.get(after_rname..after_rname + 4)?;
                    request.client_serial = Some(u32::from_be_bytes(serial.try_into().ok()?));
                }
            }
        }
        Some(request)
    }
}

/// Skips the name at `at` (labels, maybe ending in a pointer); the offset
/// after it.
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *message.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => {
                message.get(at + 1)?;
                return Some(at + 2);
            }
            l if l & 0xc0 != 0 => return None,
            l => at += 1 + usize::from(l),
        }
    }
    None
}

/// Skips the record at `at`: (offset after it, its type, where its RDATA starts).
fn skip_record(message: &[u8], at: usize) -> Option<(usize, u16, usize)> {
    let at = skip_name(message, at)?;
    let fixed = message.get(at..at + 10)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let end = at + 10 + rdlength;
    if end > message.len() {
        return None;
    }
    Some((end, rtype, at + 10))
}

/// A response to `request` with no records but the question echoed: ID,
/// QR, the request's opcode and RD, AA when `authoritative`, and `rcode`.
/// Empty when the request is shorter than a header.
pub fn bare_response(request: &[u8], rcode: u8, authoritative: bool) -> Vec<u8> {
    let Some(header) = request.get(..12) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&header[..2]);
    out.push(0x80 | (header[2] & 0x79) | if authoritative { 0x04 } else { 0 });
    out.push(rcode & 0x0f);
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    let question = (qdcount == 1)
        .then(|| {
            let rest = request.get(12..)?;
            let len = cutover_zone::rdata::wire_name_len(rest)?;
            rest.get(..len + 4)
        })
        .flatten();
    out.extend_from_slice(&u16::from(question.is_some()).to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    if let Some(question) = question {
        out.extend_from_slice(question);
    }
    out
}

/// Whether `transport` may carry a transfer's many messages.
pub fn streams(transport: Transport) -> bool {
    transport == Transport::Tcp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `example.` of `qtype` with `additional` appended and
    /// ARCOUNT `arcount`.
    fn query(opcode: u8, qtype: u16, arcount: u16, additional: &[u8]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, opcode << 3, 0, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(b"\x07example\x00");
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(additional);
        m
    }

    /// An OPT record with a 1232-byte payload.
    const OPT_RR: [u8; 11] = [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn plain_queries_stay_on_the_answer_path() {
        assert!(!routed(&query(0, 1, 0, &[])), "A, no EDNS");
        assert!(!routed(&query(0, 6, 1, &OPT_RR)), "SOA with EDNS");
        assert!(!routed(&[0; 5]), "too short: answer drops it");
        let mut response = query(0, 1, 0, &[]);
        response[2] |= 0x80;
        assert!(!routed(&response), "a response is dropped by answer");
    }

    #[test]
    fn updates_notifies_transfers_and_signed_messages_are_routed() {
        assert!(routed(&query(5, 6, 0, &[])), "UPDATE");
        assert!(routed(&query(4, 6, 0, &[])), "NOTIFY");
        assert!(routed(&query(0, 252, 0, &[])), "AXFR");
        assert!(routed(&query(0, 251, 0, &[])), "IXFR");
        // A TSIG-like record (owner "k.", type 250) alone or after OPT.
        let tsig = [1, b'k', 0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 0];
        assert!(routed(&query(0, 6, 1, &tsig)), "signed query");
        let mut both = OPT_RR.to_vec();
        both.extend_from_slice(&tsig);
        assert!(routed(&query(0, 6, 2, &both)), "OPT then TSIG");
        let mut compressed = query(0, 1, 0, &[]);
        compressed[12] = 0xc0;
        assert!(
            routed(&compressed),
            "a compressed question goes to the careful path"
        );
    }

    #[test]
    fn request_reads_the_ixfr_client_serial() {
        let mut m = query(0, 251, 0, &[]);
        m[9] = 1; // NSCOUNT
                  // example. SOA: pointer to the qname, type, class, TTL, RDLENGTH.
        m.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22]);
        m.extend_from_slice(&[1, b'a', 0xc0, 12, 0xc0, 12]);
        m.extend_from_slice(&2024_0101u32.to_be_bytes());
        m.extend_from_slice(&[0; 16]);
        let request = Request::parse(&m).expect("parses");
        assert_eq!(request.qtype, IXFR);
        assert_eq!(
            request.client_serial,
            Some(2024_0101),
            "serial from the authority SOA"
        );
        assert_eq!(request.qname.as_deref(), Some(&b"\x07example\x00"[..]));
    }

    #[test]
    fn bare_response_echoes_the_question() {
        let request = query(4, 6, 0, &[]);
        let response = bare_response(&request, 0, true);
        assert_eq!(&response[..2], &[0x12, 0x34], "ID");
        assert_eq!(response[2], 0x80 | (4 << 3) | 0x04, "QR, NOTIFY, AA");
        assert_eq!(&response[12..], &request[12..], "question echoed");
        assert!(bare_response(&[1, 2], 0, false).is_empty());
    }
}
