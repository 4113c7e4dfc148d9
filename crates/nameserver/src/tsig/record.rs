//! The TSIG record on the wire: finding it in a message (it must be the one
//! and only TSIG, and the last record of the additional section), reading its
//! RDATA, writing one, and feeding the digest components of RFC 8945 §4.3
//! into a MAC.
//!
//! ```text
//!  header │ question │ answer │ authority │ additional … │ TSIG RR │ (nothing after)
//!  ───────────── digested: ID := Original ID, ARCOUNT − 1 ─┘
//! ```
//!
//! Every length is checked before it is used; the walk over the message
//! consumes at least one byte per record, so its work is bounded by the
//! message's size.

use super::algorithm::MacState;

/// The TSIG record type.
pub const TSIG_TYPE: u16 = 250;
/// The class ANY, which a TSIG record must have.
pub const CLASS_ANY: u16 = 255;
/// The largest value of the 48-bit Time Signed field.
pub const TIME_MAX: u64 = (1 << 48) - 1;
/// The size of a DNS header.
const HEADER: usize = 12;
/// The longest wire name.
const NAME_MAX: usize = 255;

/// Why a message's TSIG (or the message around it) cannot be read: all are
/// answered with FORMERR and no TSIG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Shorter than a DNS header.
    #[error("message of {0} bytes is shorter than a DNS header")]
    Header(usize),
    /// A name, question or record runs past the end of the message.
    #[error("message ends inside a record at offset {0}")]
    Truncated(usize),
    /// A label type that is neither a length nor a pointer.
    #[error("unknown label type at offset {0}")]
    Label(usize),
    /// A compressed name that loops, points forward or is too long.
    #[error("bad compressed name at offset {0}")]
    Name(usize),
    /// Bytes after the last record.
    #[error("{0} bytes after the last record")]
    Trailing(usize),
    /// A TSIG record in the answer or authority section.
    #[error("TSIG record outside the additional section at offset {0}")]
    Section(usize),
    /// More than one TSIG record.
    #[error("more than one TSIG record (the second at offset {0})")]
    Twice(usize),
    /// A TSIG record followed by other additional records.
    #[error("TSIG record at offset {0} is not the last record")]
    NotLast(usize),
    /// A TSIG record whose class is not ANY or whose TTL is not 0.
    #[error("TSIG record with class {class} and TTL {ttl} (must be ANY and 0)")]
    ClassOrTtl {
        /// The class found.
        class: u16,
        /// The TTL found.
        ttl: u32,
    },
    /// TSIG RDATA whose fields do not add up to its RDLENGTH.
    #[error("TSIG RDATA of {0} bytes does not match its fields")]
    Rdata(usize),
    /// A MAC longer than the algorithm's output (RFC 8945 §5.2.2.1).
    #[error("MAC of {len} bytes is longer than the algorithm's {max}")]
    MacTooLong {
        /// The MAC size received.
        len: usize,
        /// The algorithm's output length.
        max: usize,
    },
    /// A MAC shorter than the truncation floor (RFC 8945 §5.2.2.1).
    #[error("MAC of {len} bytes is shorter than the allowed {min}")]
    MacTooShort {
        /// The MAC size received.
        len: usize,
        /// The shortest allowed.
        min: usize,
    },
}

/// A TSIG record found in a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TsigRecord<'m> {
    /// Offset of the record's first byte: the message without TSIG ends here.
    pub start: usize,
    /// The key name, lowercase uncompressed wire form.
    pub key_name: Vec<u8>,
    /// The algorithm name, lowercase uncompressed wire form.
    pub algorithm: Vec<u8>,
    /// Time Signed (seconds since the epoch, 48 bits).
    pub time_signed: u64,
    /// Fudge (seconds).
    pub fudge: u16,
    /// The MAC as received.
    pub mac: &'m [u8],
    /// Original ID.
    pub original_id: u16,
    /// TSIG error code.
    pub error: u16,
    /// Other Data.
    pub other: &'m [u8],
}

/// The TSIG fields a signer writes (the MAC is computed separately).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TsigFields<'a> {
    /// The key name, lowercase wire form.
    pub key_name: &'a [u8],
    /// The algorithm name, lowercase wire form.
    pub algorithm: &'a [u8],
    /// Time Signed.
    pub time_signed: u64,
    /// Fudge.
    pub fudge: u16,
    /// Original ID.
    pub original_id: u16,
    /// TSIG error code.
    pub error: u16,
    /// Other Data.
    pub other: &'a [u8],
}

/// The big-endian u16 at `at`, if the message holds it.
fn u16_at(message: &[u8], at: usize) -> Option<u16> {
    let bytes = message.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(message: &[u8], mut at: usize) -> Result<usize, Malformed> {
    let start = at;
    loop {
        let len = *message.get(at).ok_or(Malformed::Truncated(at))? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(at + 1),
            0x00 => {
                at += 1 + len;
                if at - start > NAME_MAX {
                    return Err(Malformed::Name(start));
                }
            }
            0xc0 => {
                return if at + 2 <= message.len() {
                    Ok(at + 2)
                } else {
                    Err(Malformed::Truncated(at))
                }
            }
            _ => return Err(Malformed::Label(at)),
        }
    }
}

/// Reads the name at `at`, following compression pointers (each must point
/// strictly before the label that holds it, so the walk ends), lowercased
/// and uncompressed. Returns the name and the offset just past it in place.
pub(crate) fn read_name(message: &[u8], at: usize) -> Result<(Vec<u8>, usize), Malformed> {
    let mut name = Vec::new();
    let mut cursor = at;
    let mut end = None;
    loop {
        let len = *message.get(cursor).ok_or(Malformed::Truncated(cursor))? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => {
                name.push(0);
                if name.len() > NAME_MAX {
                    return Err(Malformed::Name(at));
                }
                return Ok((name, end.unwrap_or(cursor + 1)));
            }
            0x00 => {
                let label = message
                    .get(cursor + 1..cursor + 1 + len)
                    .ok_or(Malformed::Truncated(cursor))?;
                name.push(len as u8);
                name.extend(label.iter().map(u8::to_ascii_lowercase));
                if name.len() >= NAME_MAX {
                    return Err(Malformed::Name(at));
                }
                cursor += 1 + len;
            }
            0xc0 => {
                let pointer = u16_at(message, cursor).ok_or(Malformed::Truncated(cursor))?;
                let target = (pointer & 0x3fff) as usize;
                if target >= cursor {
                    return Err(Malformed::Name(at));
                }
                end.get_or_insert(cursor + 2);
                cursor = target;
            }
            _ => return Err(Malformed::Label(cursor)),
        }
    }
}

/// Finds the message's TSIG record: `None` when there is none; an error when
/// the message does not parse, or the TSIG is not the one and only record at
/// the very end of the additional section.
pub(crate) fn find(message: &[u8]) -> Result<Option<TsigRecord<'_>>, Malformed> {
    if message.len() < HEADER {
        return Err(Malformed::Header(message.len()));
    }
    // Header counts: the length check above makes these reads infallible.
    let count = |at: usize| u16_at(message, at).unwrap_or(0) as usize;
    let (questions, answers, authority, additional) = (count(4), count(6), count(8), count(10));
    let mut at = HEADER;
    for _ in 0..questions {
        at = skip_name(message, at)?;
        at += 4;
        if at > message.len() {
            return Err(Malformed::Truncated(at - 4));
        }
    }
    let mut tsig: Option<(usize, usize)> = None;
    let sections = [(answers, false), (authority, false), (additional, true)];
    for (count, is_additional) in sections {
        for index in 0..count {
            let start = at;
            at = skip_name(message, at)?;
            let rtype = u16_at(message, at).ok_or(Malformed::Truncated(start))?;
            let rdlength = u16_at(message, at + 8).ok_or(Malformed::Truncated(start))? as usize;
            at += 10 + rdlength;
            if at > message.len() {
                return Err(Malformed::Truncated(start));
            }
            if rtype == TSIG_TYPE {
                if !is_additional {
                    return Err(Malformed::Section(start));
                }
                if tsig.is_some() {
                    return Err(Malformed::Twice(start));
                }
                tsig = Some((start, index));
            }
        }
    }
    if at != message.len() {
        return Err(Malformed::Trailing(message.len() - at));
    }
    match tsig {
        None => Ok(None),
        Some((start, index)) if index + 1 != additional => Err(Malformed::NotLast(start)),
        Some((start, _)) => parse(message, start).map(Some),
    }
}

/// Reads the TSIG record that starts at `start` and ends the message.
fn parse(message: &[u8], start: usize) -> Result<TsigRecord<'_>, Malformed> {
    let (key_name, at) = read_name(message, start)?;
    let truncated = Malformed::Truncated(start);
    let class = u16_at(message, at + 2).ok_or(truncated)?;
    let ttl_bytes = message.get(at + 4..at + 8).ok_or(truncated)?;
    let ttl = u32::from_be_bytes([ttl_bytes[0], ttl_bytes[1], ttl_bytes[2], ttl_bytes[3]]);
    if class != CLASS_ANY || ttl != 0 {
        return Err(Malformed::ClassOrTtl { class, ttl });
    }
    let rdlength = u16_at(message, at + 8).ok_or(truncated)? as usize;
    let rdata_start = at + 10;
    let rdata_end = rdata_start + rdlength;
    // `find` checked the record fits; the RDATA ends the message.
    let rdata_error = Malformed::Rdata(rdlength);
    let (algorithm, mut at) = read_name(message, rdata_start)?;
    let fixed = message.get(at..at + 10).ok_or(rdata_error)?;
    let time_signed = u64::from_be_bytes([
        0, 0, fixed[0], fixed[1], fixed[2], fixed[3], fixed[4], fixed[5],
    ]);
    let fudge = u16::from_be_bytes([fixed[6], fixed[7]]);
    let mac_len = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    at += 10;
    let mac = message.get(at..at + mac_len).ok_or(rdata_error)?;
    at += mac_len;
    let tail = message.get(at..at + 6).ok_or(rdata_error)?;
    let original_id = u16::from_be_bytes([tail[0], tail[1]]);
    let error = u16::from_be_bytes([tail[2], tail[3]]);
    let other_len = u16::from_be_bytes([tail[4], tail[5]]) as usize;
    at += 6;
    let other = message.get(at..at + other_len).ok_or(rdata_error)?;
    at += other_len;
    if at != rdata_end {
        return Err(rdata_error);
    }
    Ok(TsigRecord {
        start,
        key_name,
        algorithm,
        time_signed,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// Feeds the message without its TSIG into `mac`: the bytes before the
/// record, with the ID replaced by `original_id` and ARCOUNT decremented.
pub(crate) fn digest_message(mac: &mut MacState, message: &[u8], tsig: &TsigRecord<'_>) {
    // `find` checked the header is whole and that ARCOUNT counts the TSIG
    // (so it is at least 1).
    let mut header = [0u8; HEADER];
    header.copy_from_slice(&message[..HEADER]);
    header[..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    let arcount = u16::from_be_bytes([header[10], header[11]]).saturating_sub(1);
    header[10..].copy_from_slice(&arcount.to_be_bytes());
    mac.update(&header);
    mac.update(&message[HEADER..tsig.start]);
}

/// Feeds a MAC as a digest prefix (request MAC or prior MAC): size, then MAC.
pub(crate) fn digest_prior_mac(mac: &mut MacState, prior: &[u8]) {
    // MACs we hold came from a u16 MAC Size field or our own HMAC output.
    mac.update(&(prior.len() as u16).to_be_bytes());
    mac.update(prior);
}

/// Feeds the TSIG variables (RFC 8945 §4.3.3) into `mac`.
pub(crate) fn digest_variables(mac: &mut MacState, fields: &TsigFields<'_>) {
    mac.update(fields.key_name);
    mac.update(&CLASS_ANY.to_be_bytes());
    mac.update(&0u32.to_be_bytes());
    mac.update(fields.algorithm);
    digest_timers(mac, fields.time_signed, fields.fudge);
    mac.update(&fields.error.to_be_bytes());
    // Other Data is at most 6 bytes when we write it, and came from a u16
    // length field when we read it.
    mac.update(&(fields.other.len() as u16).to_be_bytes());
    mac.update(fields.other);
}

/// Feeds the TSIG timers (Time Signed, Fudge) into `mac`.
pub(crate) fn digest_timers(mac: &mut MacState, time_signed: u64, fudge: u16) {
    mac.update(&time_signed.to_be_bytes()[2..]);
    mac.update(&fudge.to_be_bytes());
}

/// The size of the TSIG record [`append`] writes for these fields and MAC.
pub(crate) fn record_len(fields: &TsigFields<'_>, mac_len: usize) -> usize {
    fields.key_name.len() + 10 + fields.algorithm.len() + 16 + mac_len + fields.other.len()
}

/// Appends the TSIG record to `message` and counts it in ARCOUNT. The caller
/// has checked the header is whole, ARCOUNT has room, and the sizes fit.
pub(crate) fn append(message: &mut Vec<u8>, fields: &TsigFields<'_>, mac: &[u8]) {
    let rdlength = fields.algorithm.len() + 16 + mac.len() + fields.other.len();
    message.extend_from_slice(fields.key_name);
    message.extend_from_slice(&TSIG_TYPE.to_be_bytes());
    message.extend_from_slice(&CLASS_ANY.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    message.extend_from_slice(&(rdlength as u16).to_be_bytes());
    message.extend_from_slice(fields.algorithm);
    message.extend_from_slice(&fields.time_signed.to_be_bytes()[2..]);
    message.extend_from_slice(&fields.fudge.to_be_bytes());
    message.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    message.extend_from_slice(mac);
    message.extend_from_slice(&fields.original_id.to_be_bytes());
    message.extend_from_slice(&fields.error.to_be_bytes());
    message.extend_from_slice(&(fields.other.len() as u16).to_be_bytes());
    message.extend_from_slice(fields.other);
    let arcount = u16::from_be_bytes([message[10], message[11]]).wrapping_add(1);
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `a.example. SOA` with `additional` extra bytes and count.
    fn query(arcount: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&arcount.to_be_bytes());
        m.extend_from_slice(b"\x01a\x07example\x00\x00\x06\x00\x01");
        m
    }

    /// Compression pointers are followed backwards only.
    #[test]
    fn read_name_follows_backward_pointers_only() {
        let mut m = query(0);
        let ptr_at = m.len();
        m.extend_from_slice(&[0x01, b'B', 0xc0, 12]);
        let (name, end) = read_name(&m, ptr_at).unwrap();
        assert_eq!(name, b"\x01b\x01a\x07example\x00");
        assert_eq!(end, m.len());
        // A pointer to itself, and one forward.
        let at = m.len();
        m.extend_from_slice(&[0xc0, at as u8]);
        assert_eq!(read_name(&m, at), Err(Malformed::Name(at)));
        m.extend_from_slice(&[0xc0, 0xff]);
        assert_eq!(read_name(&m, at + 2), Err(Malformed::Name(at + 2)));
    }

    /// A message without TSIG has none; one with junk after it is refused.
    #[test]
    fn finds_no_tsig_and_refuses_trailing_bytes() {
        assert_eq!(find(&query(0)), Ok(None));
        let mut m = query(0);
        m.push(0);
        assert_eq!(find(&m), Err(Malformed::Trailing(1)));
        assert_eq!(find(&m[..5]), Err(Malformed::Header(5)));
        // ARCOUNT promises a record that is not there.
        assert!(matches!(find(&query(1)), Err(Malformed::Truncated(_))));
    }
}
