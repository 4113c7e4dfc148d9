//! NOTIFY out (RFC 1996): the message a primary sends its secondaries when a
//! zone changes, how an answer is recognised as its acknowledgement, and
//! the retry schedule. Pure: the sender does the I/O and keeps the clock.
//!
//! ```text
//!  change ──▶ message(zone, id, soa) ──(sign with notify_key)──▶ UDP to each secondary
//!                 ▲                                                    │
//!                 └── no ack within RETRY_DELAYS[n] ── try n+1 ◀───────┤
//!                                              acknowledgement(..) ◀───┘ done
//! ```

use std::time::Duration;

/// How long to wait for an acknowledgement after each try: 1 s, 2 s, 4 s,
/// 8 s, 16 s, then give up (about half a minute in all, as BIND and Knot).
pub const RETRY_DELAYS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// What an answer to one of our NOTIFYs says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Not an answer to this NOTIFY (other ID, not a response, other
    /// opcode or question): keep waiting.
    Unrelated,
    /// Acknowledged (NOERROR).
    Acknowledged,
    /// Refused with this RCODE: retrying will not help.
    Refused(u8),
}

/// The NOTIFY for the zone `zone` (lowercase wire name) with ID `id`: AA
/// set, the question `zone SOA IN`, and the current SOA (`ttl`, RDATA in
/// wire form) in the answer section as RFC 1996 §3.7 allows.
pub fn message(zone: &[u8], id: u16, soa: Option<(u32, &[u8])>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + zone.len() * 2);
    out.extend_from_slice(&id.to_be_bytes());
    out.push((super::OPCODE_NOTIFY << 3) | 0x04);
    out.push(0);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&u16::from(soa.is_some()).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(zone);
    out.extend_from_slice(&[0, 6, 0, 1]);
    if let Some((ttl, rdata)) = soa {
        // The owner is the question name, at offset 12.
        out.extend_from_slice(&[0xc0, 12, 0, 6, 0, 1]);
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len().min(65535) as u16).to_be_bytes());
        out.extend_from_slice(rdata);
    }
    out
}

/// Reads `answer` as a reply to the NOTIFY `id` for `zone`.
pub fn reply(answer: &[u8], id: u16, zone: &[u8]) -> Reply {
    let Some(header) = answer.get(..12) else {
        return Reply::Unrelated;
    };
    let opcode = (header[2] >> 3) & 0x0f;
    if u16::from_be_bytes([header[0], header[1]]) != id
        || header[2] & 0x80 == 0
        || opcode != super::OPCODE_NOTIFY
    {
        return Reply::Unrelated;
    }
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    if qdcount == 1 {
        let echoed = answer
            .get(12..12 + zone.len())
            .is_some_and(|name| name.eq_ignore_ascii_case(zone));
        if !echoed {
            return Reply::Unrelated;
        }
    }
    match header[3] & 0x0f {
        0 => Reply::Acknowledged,
        code => Reply::Refused(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &[u8] = b"\x07example\x00";

    #[test]
    fn message_carries_the_question_and_the_soa() {
        let m = message(ZONE, 7, Some((3600, &[1, 2, 3])));
        assert_eq!(&m[..2], &[0, 7]);
        assert_eq!(m[2], 0x24, "opcode NOTIFY and AA");
        assert_eq!(&m[4..8], &[0, 1, 0, 1], "one question, one answer");
        assert_eq!(&m[12..12 + ZONE.len()], ZONE);
        assert_eq!(&m[m.len() - 5..], &[0, 3, 1, 2, 3], "RDLENGTH and RDATA");
    }

    #[test]
    fn only_a_matching_response_acknowledges() {
        let m = message(ZONE, 9, None);
        let mut ack = m.clone();
        ack[2] |= 0x80;
        assert_eq!(reply(&ack, 9, ZONE), Reply::Acknowledged);
        assert_eq!(reply(&ack, 10, ZONE), Reply::Unrelated, "other ID");
        assert_eq!(reply(&m, 9, ZONE), Reply::Unrelated, "QR clear");
        let mut refused = ack.clone();
        refused[3] = 5;
        assert_eq!(reply(&refused, 9, ZONE), Reply::Refused(5));
        let mut other = ack;
        other[13] = b'x';
        assert_eq!(reply(&other, 9, ZONE), Reply::Unrelated, "other zone");
    }
}
