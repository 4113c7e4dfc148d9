//! DNS messages on the answer path: a zero-copy query reader and a response
//! writer with bounded name compression.
//!
//! ```text
//!  query bytes ──Query::parse──▶ Query { id, flags, question (lowercased, on the stack), EDNS }
//!  Response::new(buf, limit) ──put_name / put_rrset / …──▶ bytes, TC when an RRset does not fit
//! ```
//!
//! Nothing here allocates except the caller's response `Vec`, which is reused.

/// The largest wire name (RFC 1035 §2.3.4).
pub const NAME_MAX: usize = 255;
/// The OPT pseudo-record type.
pub const OPT: u16 = 41;
/// How many name suffixes the compression table remembers per message.
const COMPRESSION_ENTRIES: usize = 32;

/// A domain name in uncompressed, lowercased wire form, with its label
/// offsets, held on the stack.
#[derive(Clone)]
pub struct NameBuf {
    /// The wire bytes (lowercased), `len` of them used.
    bytes: [u8; NAME_MAX],
    /// Bytes used, including the root label.
    len: u8,
    /// Where each label (not the root) starts.
    starts: [u8; 128],
    /// Number of labels, root excluded.
    count: u8,
}

/// Why a name could not be read from a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The message ends inside the name.
    #[error("name runs past the end of the message")]
    Truncated,
    /// A label length with the top bits set (a pointer where none is allowed,
    /// or an extended label type).
    #[error("compression pointer or unknown label type where none is allowed")]
    BadLabel,
    /// More than 255 bytes.
    #[error("name longer than 255 bytes")]
    TooLong,
}

impl NameBuf {
    /// The root name.
    pub fn root() -> NameBuf {
        NameBuf {
            bytes: [0; NAME_MAX],
            len: 1,
            starts: [0; 128],
            count: 0,
        }
    }

    /// Reads an uncompressed name at the start of `buf`, lowercasing it.
    /// Returns the name and the bytes it took.
    pub fn read(buf: &[u8]) -> Result<(NameBuf, usize), NameError> {
        let mut name = NameBuf::root();
        let mut i = 0usize;
        loop {
            let len = *buf.get(i).ok_or(NameError::Truncated)? as usize;
            if len & 0xc0 != 0 {
                return Err(NameError::BadLabel);
            }
            if i + 1 + len > NAME_MAX {
                return Err(NameError::TooLong);
            }
            if len == 0 {
                name.bytes[i] = 0;
                name.len = (i + 1) as u8;
                return Ok((name, i + 1));
            }
            let label = buf.get(i + 1..i + 1 + len).ok_or(NameError::Truncated)?;
            name.starts[name.count as usize] = i as u8;
            name.count += 1;
            name.bytes[i] = len as u8;
            for (d, s) in name.bytes[i + 1..i + 1 + len].iter_mut().zip(label) {
                *d = s.to_ascii_lowercase();
            }
            i += 1 + len;
        }
    }

    /// The name from a trusted, well-formed uncompressed wire name.
    pub fn from_wire(wire: &[u8]) -> Option<NameBuf> {
        NameBuf::read(wire).ok().map(|(n, _)| n)
    }

    /// The lowercased wire bytes.
    pub fn wire(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The number of labels, root excluded.
    pub fn label_count(&self) -> usize {
        self.count as usize
    }

    /// The suffix that starts at label `index` (0 = the whole name).
    pub fn suffix(&self, index: usize) -> &[u8] {
        if index >= self.count as usize {
            return &self.bytes[self.len as usize - 1..self.len as usize];
        }
        &self.bytes[self.starts[index] as usize..self.len as usize]
    }

    /// Replaces the suffix from label `index` with `target` (a DNAME
    /// substitution); `None` when the result would exceed 255 bytes.
    pub fn substitute(&self, index: usize, target: &[u8]) -> Option<NameBuf> {
        let end = if index < self.count as usize {
            self.starts[index] as usize
        } else {
            self.len as usize - 1
        };
        let prefix = &self.bytes[..end];
        if prefix.len() + target.len() > NAME_MAX {
            return None;
        }
        let mut joined = [0u8; NAME_MAX];
        joined[..prefix.len()].copy_from_slice(prefix);
        joined[prefix.len()..prefix.len() + target.len()].copy_from_slice(target);
        NameBuf::from_wire(&joined[..prefix.len() + target.len()])
    }
}

/// True when `name` is `apex` or below it (both lowercased wire names).
pub fn is_at_or_below(name: &[u8], apex: &[u8]) -> bool {
    if apex.len() > name.len() || !name.ends_with(apex) {
        return false;
    }
    // The suffix must start on a label boundary.
    let cut = name.len() - apex.len();
    let mut i = 0;
    while i < cut {
        i += 1 + name[i] as usize;
    }
    i == cut
}

/// The EDNS(0) part of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// The requestor's UDP payload size.
    pub udp_size: u16,
    /// The EDNS version.
    pub version: u8,
    /// The DO bit.
    pub dnssec_ok: bool,
}

/// What was wrong with a query after its question was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// A record in the answer, authority or additional section does not
    /// parse, bytes follow the last record, or OPT is misplaced or repeated.
    Records,
}

/// A query read from the wire. The question name is lowercased into a stack
/// buffer; the original bytes are kept by reference so its case can be echoed.
pub struct Query<'q> {
    /// The header (12 bytes).
    pub header: &'q [u8],
    /// The question section exactly as received (name, type, class), empty
    /// when QDCOUNT is 0.
    pub question: &'q [u8],
    /// The question name, lowercased.
    pub qname: NameBuf,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// The OPT record, when there is exactly one.
    pub edns: Option<Edns>,
    /// A problem found after the question, which makes the answer FORMERR.
    pub malformed: Option<Malformed>,
}

impl<'q> Query<'q> {
    /// Reads a query. `None` means no response must be sent: shorter than a
    /// header, QR set, more than one question, or a question that does not
    /// parse (what Knot DNS does with these).
    pub fn parse(msg: &'q [u8]) -> Option<Query<'q>> {
        let header = msg.get(..12)?;
        if header[2] & 0x80 != 0 {
            return None;
        }
        let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
        let (qdcount, ancount, nscount, arcount) = (count(4), count(6), count(8), count(10));
        if qdcount > 1 {
            return None;
        }
        let mut query = Query {
            header,
            question: &[],
            qname: NameBuf::root(),
            qtype: 0,
            qclass: 0,
            edns: None,
            malformed: None,
        };
        let mut at = 12;
        if qdcount == 1 {
            let (qname, used) = NameBuf::read(&msg[12..]).ok()?;
            let fixed = msg.get(12 + used..12 + used + 4)?;
            query.qname = qname;
            query.qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
            query.qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
            at = 12 + used + 4;
            query.question = &msg[12..at];
        }
        let records = [(ancount, false), (nscount, false), (arcount, true)];
        let mut opts = 0;
        'sections: for (n, additional) in records {
            for _ in 0..n {
                match skip_record(msg, at) {
                    Some((next, rtype)) if rtype == OPT => {
                        opts += 1;
                        match (additional, opts, parse_opt(msg, at, next)) {
                            (true, 1, Some(edns)) => query.edns = Some(edns),
                            _ => {
                                query.malformed = Some(Malformed::Records);
                                break 'sections;
                            }
                        }
                        at = next;
                    }
                    Some((next, _)) => at = next,
                    None => {
                        query.malformed = Some(Malformed::Records);
                        break 'sections;
                    }
                }
            }
        }
        if query.malformed.is_none() && at != msg.len() {
            query.malformed = Some(Malformed::Records);
        }
        if query.malformed.is_some() {
            query.edns = None;
        }
        Some(query)
    }

    /// The message ID.
    pub fn id(&self) -> u16 {
        u16::from_be_bytes([self.header[0], self.header[1]])
    }

    /// The opcode.
    pub fn opcode(&self) -> u8 {
        (self.header[2] >> 3) & 0x0f
    }

    /// The RD bit.
    pub fn recursion_desired(&self) -> bool {
        self.header[2] & 0x01 != 0
    }

    /// True when the query has a question.
    pub fn has_question(&self) -> bool {
        !self.question.is_empty()
    }

    /// The question name as received (original case, uncompressed).
    pub fn qname_wire(&self) -> &'q [u8] {
        &self.question[..self.question.len().saturating_sub(4)]
    }
}

/// Skips a resource record starting at `at` (its owner may be compressed);
/// returns where the next starts and the record's type.
fn skip_record(msg: &[u8], at: usize) -> Option<(usize, u16)> {
    let mut i = at;
    loop {
        let len = *msg.get(i)? as usize;
        match len & 0xc0 {
            0xc0 => {
                msg.get(i + 1)?;
                i += 2;
                break;
            }
            0 if len == 0 => {
                i += 1;
                break;
            }
            0 => i += 1 + len,
            _ => return None,
        }
        if i - at > NAME_MAX {
            return None;
        }
    }
    let fixed = msg.get(i..i + 10)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let end = i + 10 + rdlen;
    if end > msg.len() {
        return None;
    }
    Some((end, rtype))
}

/// Reads the OPT record spanning `at..end`; `None` when its options do not
/// add up to its RDLENGTH.
fn parse_opt(msg: &[u8], at: usize, end: usize) -> Option<Edns> {
    // The fixed part sits right before RDATA; find it from the end of the owner.
    let mut i = at;
    loop {
        let len = msg[i] as usize;
        if len & 0xc0 == 0xc0 {
            i += 2;
            break;
        }
        i += 1 + len;
        if len == 0 {
            break;
        }
    }
    let fixed = &msg[i..i + 10];
    let mut o = i + 10;
    while o < end {
        let head = msg.get(o..o + 4)?;
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        o += 4 + len;
    }
    if o != end {
        return None;
    }
    Some(Edns {
        udp_size: u16::from_be_bytes([fixed[2], fixed[3]]),
        version: fixed[5],
        dnssec_ok: fixed[6] & 0x80 != 0,
    })
}

/// A name to write: its bytes as they should appear and their lowercased
/// form (same length), both uncompressed.
#[derive(Clone, Copy)]
pub struct WireName<'a> {
    /// As written (case kept).
    pub original: &'a [u8],
    /// Lowercased, for compression matching.
    pub lower: &'a [u8],
}

/// A response under construction: the header, the question, then records,
/// with a bounded compression table.
pub struct Response<'b> {
    /// The output (header included).
    buf: &'b mut Vec<u8>,
    /// The size the message must not exceed (the OPT record's room is
    /// already taken off).
    limit: usize,
    /// Compression entries: where a name suffix starts, and its wire length.
    table: [(u16, u8); COMPRESSION_ENTRIES],
    /// Entries used.
    entries: usize,
    /// Section counts: answer, authority, additional.
    counts: [u16; 3],
}

/// The sections records go in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Answer.
    Answer = 0,
    /// Authority.
    Authority = 1,
    /// Additional.
    Additional = 2,
}

/// A position to roll back to when an RRset does not fit.
#[derive(Clone, Copy)]
pub struct Mark {
    /// Bytes written.
    len: usize,
    /// Compression entries in use.
    entries: usize,
    /// Section counts.
    counts: [u16; 3],
}

impl<'b> Response<'b> {
    /// Starts a response to `query` in `buf` (cleared), copying the ID and
    /// opcode, setting QR and copying RD, then the question when there is one.
    pub fn new(buf: &'b mut Vec<u8>, query: &Query<'_>, limit: usize) -> Response<'b> {
        buf.clear();
        let h = query.header;
        buf.extend_from_slice(&[h[0], h[1], 0x80 | (h[2] & 0x79), 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut response = Response {
            buf,
            limit,
            table: [(0, 0); COMPRESSION_ENTRIES],
            entries: 0,
            counts: [0; 3],
        };
        if query.has_question() {
            response.buf[5] = 1;
            let name = WireName {
                original: query.qname_wire(),
                lower: query.qname.wire(),
            };
            response.put_name(name);
            response
                .buf
                .extend_from_slice(&query.question[query.question.len() - 4..]);
        }
        response
    }

    /// Sets the AA bit.
    pub fn set_authoritative(&mut self, on: bool) {
        if on {
            self.buf[2] |= 0x04;
        } else {
            self.buf[2] &= !0x04;
        }
    }

    /// Sets the TC bit.
    pub fn set_truncated(&mut self) {
        self.buf[2] |= 0x02;
    }

    /// True when TC is set.
    pub fn is_truncated(&self) -> bool {
        self.buf[2] & 0x02 != 0
    }

    /// Sets the RCODE (low four bits).
    pub fn set_rcode(&mut self, rcode: u8) {
        self.buf[3] = (self.buf[3] & 0xf0) | (rcode & 0x0f);
    }

    /// The current position, for [`Response::rollback`].
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            entries: self.entries,
            counts: self.counts,
        }
    }

    /// Forgets everything written since `mark`.
    pub fn rollback(&mut self, mark: Mark) {
        self.buf.truncate(mark.len);
        self.entries = mark.entries;
        self.counts = mark.counts;
    }

    /// True when the message is within its limit.
    pub fn fits(&self) -> bool {
        self.buf.len() <= self.limit
    }

    /// Writes a name, compressed against what is already in the message.
    pub fn put_name(&mut self, name: WireName<'_>) {
        let lower = name.lower;
        // Find the longest suffix already in the message.
        let mut start = 0usize;
        let mut pointer = None;
        while lower[start] != 0 {
            let suffix = &lower[start..];
            if let Some(pos) = self.find(suffix) {
                pointer = Some(pos);
                break;
            }
            start += 1 + lower[start] as usize;
        }
        // Write the labels before it, remembering each new suffix.
        let mut i = 0;
        while i < start {
            let pos = self.buf.len();
            if pos < 0x4000 && self.entries < COMPRESSION_ENTRIES {
                self.table[self.entries] = (pos as u16, (lower.len() - i) as u8);
                self.entries += 1;
            }
            let len = name.original[i] as usize;
            self.buf.extend_from_slice(&name.original[i..i + 1 + len]);
            i += 1 + len;
        }
        match pointer {
            Some(pos) => self.buf.extend_from_slice(&(0xc000 | pos).to_be_bytes()),
            None => self.buf.push(0),
        }
    }

    /// Where a lowercased wire name already appears in the message.
    fn find(&self, suffix: &[u8]) -> Option<u16> {
        self.table[..self.entries]
            .iter()
            .find(|(pos, len)| {
                *len as usize == suffix.len() && self.same_name(*pos as usize, suffix)
            })
            .map(|(pos, _)| *pos)
    }

    /// True when the (possibly compressed) name at `pos` in our own output
    /// equals `lower` ignoring case. Pointers we wrote point backwards, so
    /// this ends.
    fn same_name(&self, mut pos: usize, lower: &[u8]) -> bool {
        let msg = &self.buf[..];
        let mut i = 0;
        loop {
            let len = msg[pos] as usize;
            if len & 0xc0 == 0xc0 {
                let target = ((len & 0x3f) << 8) | msg[pos + 1] as usize;
                if target >= pos {
                    return false;
                }
                pos = target;
                continue;
            }
            if lower[i] as usize != len {
                return false;
            }
            if len == 0 {
                return true;
            }
            let ours = &msg[pos + 1..pos + 1 + len];
            if !ours
                .iter()
                .zip(&lower[i + 1..i + 1 + len])
                .all(|(a, b)| a.to_ascii_lowercase() == *b)
            {
                return false;
            }
            pos += 1 + len;
            i += 1 + len;
        }
    }

    /// Writes a record's fixed part (type, class IN, TTL) and reserves
    /// RDLENGTH; returns where RDATA starts.
    pub fn begin_record(&mut self, owner: WireName<'_>, rtype: u16, ttl: u32) -> usize {
        self.put_name(owner);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&1u16.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.len()
    }

    /// Appends raw RDATA bytes.
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Fills in RDLENGTH and counts the record in `section`.
    pub fn end_record(&mut self, rdata_start: usize, section: Section) {
        let len = (self.buf.len() - rdata_start) as u16;
        self.buf[rdata_start - 2..rdata_start].copy_from_slice(&len.to_be_bytes());
        self.counts[section as usize] += 1;
    }

    /// Writes the section counts and, when asked, the OPT record (which
    /// may go past `limit`: its room was set aside by the caller).
    pub fn finish(self, opt: Option<OptRecord>) {
        let mut counts = self.counts;
        if let Some(opt) = opt {
            counts[2] += 1;
            self.buf.push(0);
            self.buf.extend_from_slice(&OPT.to_be_bytes());
            self.buf.extend_from_slice(&opt.udp_size.to_be_bytes());
            self.buf.push(opt.extended_rcode);
            self.buf.push(0);
            self.buf
                .extend_from_slice(&(if opt.dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
            match opt.extended_error {
                Some(code) => {
                    self.buf.extend_from_slice(&6u16.to_be_bytes());
                    self.buf.extend_from_slice(&15u16.to_be_bytes());
                    self.buf.extend_from_slice(&2u16.to_be_bytes());
                    self.buf.extend_from_slice(&code.to_be_bytes());
                }
                None => self.buf.extend_from_slice(&[0, 0]),
            }
        }
        for (i, n) in counts.iter().enumerate() {
            self.buf[6 + 2 * i..8 + 2 * i].copy_from_slice(&n.to_be_bytes());
        }
    }
}

/// The OPT record of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptRecord {
    /// Our UDP payload size.
    pub udp_size: u16,
    /// The upper eight bits of the 12-bit RCODE (1 for BADVERS).
    pub extended_rcode: u8,
    /// The DO bit, echoed.
    pub dnssec_ok: bool,
    /// An Extended DNS Error (RFC 8914) info code.
    pub extended_error: Option<u16>,
}

impl OptRecord {
    /// The bytes this OPT record takes.
    pub fn size(&self) -> usize {
        11 + if self.extended_error.is_some() { 6 } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` (text, dot-separated) with type A.
    fn query(name: &str, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, arcount as u8];
        for label in name.split('.').filter(|l| !l.is_empty()) {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q.extend_from_slice(extra);
        q
    }

    #[test]
    fn question_is_lowercased_and_kept_as_sent() {
        let msg = query("WwW.Example.TEST", &[], 0);
        let q = Query::parse(&msg).expect("a well-formed query parses");
        assert_eq!(q.qname.wire(), b"\x03www\x07example\x04test\x00");
        assert_eq!(q.qname_wire(), b"\x03WwW\x07Example\x04TEST\x00");
        assert_eq!(q.qname.label_count(), 3);
        assert_eq!(q.qname.suffix(1), b"\x07example\x04test\x00");
        assert_eq!(q.qname.suffix(3), b"\x00");
        assert!(q.malformed.is_none());
    }

    #[test]
    fn opt_is_read_and_two_opts_are_malformed() {
        let opt = [0, 0, 41, 0x10, 0, 0, 1, 0x80, 0, 0, 0];
        let msg = query("a.test", &opt, 1);
        let q = Query::parse(&msg).unwrap();
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 4096,
                version: 1,
                dnssec_ok: true
            })
        );
        let two = query("a.test", &[opt, opt].concat(), 2);
        assert_eq!(
            Query::parse(&two).unwrap().malformed,
            Some(Malformed::Records)
        );
    }

    #[test]
    fn malformed_questions_get_no_answer() {
        assert!(Query::parse(&[0; 11]).is_none());
        let mut compressed = query("a.test", &[], 0);
        compressed.truncate(12);
        compressed.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        assert!(Query::parse(&compressed).is_none());
        let mut long = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert!(Query::parse(&long).is_none());
    }

    #[test]
    fn names_are_compressed_against_earlier_suffixes() {
        let msg = query("www.example.test", &[], 0);
        let q = Query::parse(&msg).unwrap();
        let mut buf = Vec::new();
        let mut r = Response::new(&mut buf, &q, 512);
        let lower = b"\x04mail\x07example\x04test\x00";
        r.put_name(WireName {
            original: b"\x04MAIL\x07example\x04test\x00",
            lower,
        });
        r.finish(None);
        // Question at 12; then "MAIL" and a pointer to "example.test" at 16.
        assert_eq!(&buf[12 + 18 + 4..], b"\x04MAIL\xc0\x10");
    }

    #[test]
    fn dname_substitution_checks_the_length() {
        let name = NameBuf::from_wire(b"\x01x\x02dn\x04test\x00").unwrap();
        let out = name.substitute(1, b"\x06target\x00").unwrap();
        assert_eq!(out.wire(), b"\x01x\x06target\x00");
        let long = [
            &[63u8][..],
            &[b'a'; 63],
            &[63],
            &[b'a'; 63],
            &[63],
            &[b'a'; 63],
            &[60],
            &[b'a'; 60],
            &[0],
        ]
        .concat();
        assert!(name.substitute(1, &long).is_none());
        assert!(is_at_or_below(b"\x01x\x04test\x00", b"\x04test\x00"));
        assert!(!is_at_or_below(b"\x05xtest\x00", b"\x04test\x00"));
    }
}
