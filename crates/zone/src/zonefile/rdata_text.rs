//! RDATA in presentation form, both ways, per record type: the text after
//! the type in a zone file line, to and from [`Rdata`] wire bytes.
//!
//! Every type accepts the RFC 3597 generic form `\# LENGTH HEX`. Types
//! without a text form here print in that generic form, and so does any
//! data that does not decode as its type says (so printing never fails).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::rr::domain::Label;
use hickory_proto::rr::{Name, RecordType};

use super::lexer::Token;
use super::presentation::{
    hex_to_text, name_to_text, parse_hex, parse_name, parse_number, parse_string, shorten,
    string_to_text, unescape,
};
use super::svcb;
use crate::duration::zone_seconds;
use crate::rdata::{push_name, Rdata, DNAME, SPF};

/// The record types with a text form here, by mnemonic and code.
const TYPES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("SRV", 33),
    ("NAPTR", 35),
    ("DNAME", DNAME),
    ("SSHFP", 44),
    ("TLSA", 52),
    ("SVCB", 64),
    ("HTTPS", 65),
    ("SPF", SPF),
    ("CAA", 257),
];

/// Why some RDATA text is wrong, and at which of its tokens (an index equal
/// to the number of tokens means "at the end": something is missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdataTextError {
    /// Index of the offending token.
    pub token: usize,
    /// What is wrong.
    pub message: String,
}

/// The mnemonic of a type (`TYPEnnn` for the ones without a text form here).
pub fn type_to_text(rtype: RecordType) -> String {
    let code = u16::from(rtype);
    match TYPES.iter().find(|(_, c)| *c == code) {
        Some((name, _)) => (*name).to_string(),
        None => format!("TYPE{code}"),
    }
}

/// A type from its mnemonic (any case) or its `TYPEnnn` form; other
/// mnemonics hickory knows are accepted too (their data must then be in
/// the generic form).
pub fn type_from_text(text: &str) -> Option<RecordType> {
    let upper = text.to_ascii_uppercase();
    if let Some((_, code)) = TYPES.iter().find(|(name, _)| *name == upper) {
        return Some(RecordType::from(*code));
    }
    if let Some(digits) = upper.strip_prefix("TYPE") {
        let code = parse_number(digits, "type", 65535).ok()?;
        return Some(RecordType::from(code as u16));
    }
    match RecordType::from_str(&upper) {
        Ok(RecordType::Unknown(_)) | Err(_) => None,
        Ok(t) => Some(t),
    }
}

/// The cursor over the data tokens of one record.
struct Fields<'a> {
    /// The data tokens.
    tokens: &'a [Token],
    /// Index of the next token.
    next: usize,
    /// The type, for messages.
    rtype: RecordType,
}

impl<'a> Fields<'a> {
    /// The next token, or an error saying `what` was expected.
    fn take(&mut self, what: &str) -> Result<&'a Token, RdataTextError> {
        let token = self.tokens.get(self.next).ok_or_else(|| RdataTextError {
            token: self.tokens.len(),
            message: format!(
                "expected {what} in the {} data, found the end of the record",
                type_to_text(self.rtype)
            ),
        })?;
        self.next += 1;
        Ok(token)
    }

    /// An error about the token just taken.
    fn error(&self, message: String) -> RdataTextError {
        RdataTextError {
            token: self.next.saturating_sub(1),
            message,
        }
    }

    /// A domain name.
    fn name(
        &mut self,
        what: &str,
        origin: Option<&Name>,
        wire: &mut Vec<u8>,
    ) -> Result<(), RdataTextError> {
        let token = self.take(what)?;
        let name = parse_name(&token.text, origin).map_err(|m| self.error(m))?;
        push_name(wire, &name);
        Ok(())
    }

    /// A decimal number of at most `max`.
    fn number(&mut self, what: &str, max: u32) -> Result<u32, RdataTextError> {
        let token = self.take(what)?;
        parse_number(&token.text, what, max).map_err(|m| self.error(m))
    }

    /// An 8-bit number.
    fn u8(&mut self, what: &str, wire: &mut Vec<u8>) -> Result<(), RdataTextError> {
        let n = self.number(what, 255)?;
        wire.push(n as u8);
        Ok(())
    }

    /// A 16-bit number.
    fn u16(&mut self, what: &str, wire: &mut Vec<u8>) -> Result<(), RdataTextError> {
        let n = self.number(what, 65535)?;
        wire.extend_from_slice(&(n as u16).to_be_bytes());
        Ok(())
    }

    /// A 32-bit duration (units allowed, as BIND and Knot accept in SOA).
    fn duration(&mut self, what: &str, wire: &mut Vec<u8>) -> Result<(), RdataTextError> {
        let token = self.take(what)?;
        let n = zone_seconds(&token.text, what).map_err(|e| self.error(e.to_string()))?;
        wire.extend_from_slice(&n.to_be_bytes());
        Ok(())
    }

    /// A character-string, with its length byte.
    fn string(&mut self, what: &str, wire: &mut Vec<u8>) -> Result<(), RdataTextError> {
        let token = self.take(what)?;
        let bytes = parse_string(&token.text, what).map_err(|m| self.error(m))?;
        wire.push(bytes.len() as u8);
        wire.extend_from_slice(&bytes);
        Ok(())
    }

    /// All remaining tokens as one run of hex digits (at least one byte).
    fn rest_hex(&mut self, what: &str, wire: &mut Vec<u8>) -> Result<(), RdataTextError> {
        let first = self.next;
        self.take(what)?;
        let joined: String = self.tokens[first..]
            .iter()
            .map(|t| t.text.as_str())
            .collect();
        self.next = self.tokens.len();
        let bytes = parse_hex(&joined, what).map_err(|m| RdataTextError {
            token: first,
            message: m,
        })?;
        wire.extend_from_slice(&bytes);
        Ok(())
    }

    /// Fails when tokens are left over.
    fn finish(&self) -> Result<(), RdataTextError> {
        match self.tokens.get(self.next) {
            None => Ok(()),
            Some(extra) => Err(RdataTextError {
                token: self.next,
                message: format!(
                    "unexpected \"{}\" after the end of the {} data",
                    shorten(&extra.text),
                    type_to_text(self.rtype)
                ),
            }),
        }
    }
}

/// Parses the data tokens of a record of type `rtype`.
pub fn parse_rdata(
    rtype: RecordType,
    tokens: &[Token],
    origin: Option<&Name>,
) -> Result<Rdata, RdataTextError> {
    let mut f = Fields {
        tokens,
        next: 0,
        rtype,
    };
    let mut wire = Vec::with_capacity(64);
    let generic = tokens.first().is_some_and(|t| t.text == "\\#" && !t.quoted);
    if generic {
        f.next = 1;
        let len = f.number("the RDATA length after \\#", 65535)? as usize;
        if f.tokens.len() > f.next {
            f.rest_hex("the RDATA hex", &mut wire)?;
        }
        if wire.len() != len {
            return Err(RdataTextError {
                token: 1,
                message: format!(
                    "\\# length {len} does not match the {} bytes of hex data",
                    wire.len()
                ),
            });
        }
    } else {
        typed_rdata(&mut f, origin, &mut wire)?;
        f.finish()?;
    }
    Rdata::from_wire(rtype, &wire).map_err(|e| RdataTextError {
        token: 0,
        message: e.to_string(),
    })
}

/// Parses the typed presentation form of each type into `wire`.
fn typed_rdata(
    f: &mut Fields<'_>,
    origin: Option<&Name>,
    wire: &mut Vec<u8>,
) -> Result<(), RdataTextError> {
    let code = u16::from(f.rtype);
    match code {
        1 => {
            let token = f.take("an IPv4 address")?;
            let addr = Ipv4Addr::from_str(&token.text).map_err(|_| {
                f.error(format!("invalid IPv4 address \"{}\"", shorten(&token.text)))
            })?;
            wire.extend_from_slice(&addr.octets());
        }
        28 => {
            let token = f.take("an IPv6 address")?;
            let addr = Ipv6Addr::from_str(&token.text).map_err(|_| {
                f.error(format!("invalid IPv6 address \"{}\"", shorten(&token.text)))
            })?;
            wire.extend_from_slice(&addr.octets());
        }
        2 | 5 | 12 | DNAME => f.name("a domain name", origin, wire)?,
        6 => {
            f.name("the primary nameserver (MNAME)", origin, wire)?;
            f.name("the responsible mailbox (RNAME)", origin, wire)?;
            let serial = f.number("serial", u32::MAX)?;
            wire.extend_from_slice(&serial.to_be_bytes());
            f.duration("refresh", wire)?;
            f.duration("retry", wire)?;
            f.duration("expire", wire)?;
            f.duration("minimum", wire)?;
        }
        15 => {
            f.u16("preference", wire)?;
            f.name("the mail exchange", origin, wire)?;
        }
        16 | SPF => {
            f.string("a character-string", wire)?;
            while f.next < f.tokens.len() {
                f.string("a character-string", wire)?;
            }
        }
        33 => {
            f.u16("priority", wire)?;
            f.u16("weight", wire)?;
            f.u16("port", wire)?;
            f.name("the target", origin, wire)?;
        }
        35 => {
            f.u16("order", wire)?;
            f.u16("preference", wire)?;
            f.string("flags", wire)?;
            f.string("services", wire)?;
            f.string("regexp", wire)?;
            f.name("the replacement", origin, wire)?;
        }
        44 => {
            f.u8("algorithm", wire)?;
            f.u8("fingerprint type", wire)?;
            f.rest_hex("fingerprint", wire)?;
        }
        52 => {
            f.u8("certificate usage", wire)?;
            f.u8("selector", wire)?;
            f.u8("matching type", wire)?;
            f.rest_hex("certificate association data", wire)?;
        }
        64 | 65 => {
            f.u16("priority", wire)?;
            f.name("the target name", origin, wire)?;
            let start = f.next;
            f.next = f.tokens.len();
            svcb::parse_params(&f.tokens[start..], wire).map_err(|e| RdataTextError {
                token: start + e.token,
                message: e.message,
            })?;
        }
        257 => {
            f.u8("flags", wire)?;
            let tag = f.take("a property tag")?;
            let ok = !tag.text.is_empty()
                && tag.text.len() <= 255
                && tag.text.bytes().all(|b| b.is_ascii_alphanumeric());
            if !ok {
                return Err(f.error(format!(
                    "invalid CAA tag \"{}\": expected letters and digits",
                    shorten(&tag.text)
                )));
            }
            wire.push(tag.text.len() as u8);
            wire.extend_from_slice(tag.text.as_bytes());
            let value = f.take("a property value")?;
            wire.extend(unescape(&value.text).map_err(|m| f.error(m))?);
        }
        _ => {
            return Err(RdataTextError {
                token: 0,
                message: format!(
                    "no text form for {} data here; use the RFC 3597 form \\# LENGTH HEX",
                    type_to_text(f.rtype)
                ),
            })
        }
    }
    Ok(())
}

/// A reader over wire bytes, for printing.
struct Reader<'a> {
    /// The bytes.
    buf: &'a [u8],
    /// Where the next read starts.
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The next `n` bytes.
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(out)
    }

    /// An 8-bit number.
    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    /// A 16-bit number.
    fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A 32-bit number.
    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A character-string.
    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.u8()?;
        self.bytes(usize::from(len))
    }

    /// An uncompressed domain name.
    fn name(&mut self) -> Option<Name> {
        let mut labels = Vec::new();
        loop {
            let len = usize::from(self.u8()?);
            if len == 0 {
                break;
            }
            if len > 63 {
                return None;
            }
            labels.push(Label::from_raw_bytes(self.bytes(len)?).ok()?);
        }
        Name::from_labels(labels).ok()
    }

    /// Everything not read yet.
    fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos.min(self.buf.len())..];
        self.pos = self.buf.len();
        out
    }

    /// True when every byte was read.
    fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// The presentation form of the data only (no owner, TTL, class or type).
pub fn rdata_to_text(rdata: &Rdata) -> String {
    typed_text(rdata).unwrap_or_else(|| generic_text(rdata.wire()))
}

/// The RFC 3597 form `\# LENGTH HEX`.
pub fn generic_text(wire: &[u8]) -> String {
    if wire.is_empty() {
        "\\# 0".into()
    } else {
        format!("\\# {} {}", wire.len(), hex_to_text(wire))
    }
}

/// The typed form, or `None` when the type has none here or the bytes do
/// not decode.
fn typed_text(rdata: &Rdata) -> Option<String> {
    let mut r = Reader {
        buf: rdata.wire(),
        pos: 0,
    };
    let text = match u16::from(rdata.rtype()) {
        1 => Ipv4Addr::from(<[u8; 4]>::try_from(r.rest()).ok()?).to_string(),
        28 => Ipv6Addr::from(<[u8; 16]>::try_from(r.rest()).ok()?).to_string(),
        2 | 5 | 12 | DNAME => name_to_text(&r.name()?),
        6 => {
            let (m, n) = (r.name()?, r.name()?);
            let v = [r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?];
            format!(
                "{} {} {} {} {} {} {}",
                name_to_text(&m),
                name_to_text(&n),
                v[0],
                v[1],
                v[2],
                v[3],
                v[4]
            )
        }
        15 => {
            let pref = r.u16()?;
            format!("{pref} {}", name_to_text(&r.name()?))
        }
        16 | SPF => {
            let mut parts = Vec::new();
            while !r.done() {
                parts.push(string_to_text(r.string()?));
            }
            if parts.is_empty() {
                return None;
            }
            parts.join(" ")
        }
        33 => {
            let (p, w, port) = (r.u16()?, r.u16()?, r.u16()?);
            format!("{p} {w} {port} {}", name_to_text(&r.name()?))
        }
        35 => {
            let (order, pref) = (r.u16()?, r.u16()?);
            let (flags, services, regexp) = (r.string()?, r.string()?, r.string()?);
            format!(
                "{order} {pref} {} {} {} {}",
                string_to_text(flags),
                string_to_text(services),
                string_to_text(regexp),
                name_to_text(&r.name()?)
            )
        }
        44 => {
            let (alg, kind) = (r.u8()?, r.u8()?);
            let data = r.rest();
            if data.is_empty() {
                return None;
            }
            format!("{alg} {kind} {}", hex_to_text(data))
        }
        52 => {
            let (usage, selector, matching) = (r.u8()?, r.u8()?, r.u8()?);
            let data = r.rest();
            if data.is_empty() {
                return None;
            }
            format!("{usage} {selector} {matching} {}", hex_to_text(data))
        }
        64 | 65 => {
            let priority = r.u16()?;
            let target = r.name()?;
            let params = svcb::params_to_text(r.rest())?;
            let mut text = format!("{priority} {}", name_to_text(&target));
            for p in params {
                text.push(' ');
                text.push_str(&p);
            }
            text
        }
        257 => {
            let flags = r.u8()?;
            let tag = r.string()?;
            if tag.is_empty() || !tag.iter().all(u8::is_ascii_alphanumeric) {
                return None;
            }
            let tag = std::str::from_utf8(tag).ok()?;
            format!("{flags} {tag} {}", string_to_text(r.rest()))
        }
        _ => return None,
    };
    r.done().then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zonefile::lexer::entries;

    /// Parses data text for a type, relative names under example.com.
    fn parse(rtype: &str, text: &str) -> Result<Rdata, RdataTextError> {
        let origin = Name::from_str("example.com.").unwrap();
        let tokens = entries(text).unwrap().remove(0).tokens;
        parse_rdata(type_from_text(rtype).unwrap(), &tokens, Some(&origin))
    }

    #[test]
    fn every_type_prints_what_it_parsed() {
        let cases = [
            ("A", "192.0.2.1"),
            ("AAAA", "2001:db8::1"),
            ("NS", "ns1.example.com."),
            ("DNAME", "a\\.b.example.net."),
            (
                "SOA",
                "ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300",
            ),
            ("MX", "10 mail.example.com."),
            ("TXT", "\"hello world\" \"a\\\"b\\\\c\\009\""),
            ("SPF", "\"v=spf1 -all\""),
            ("SRV", "0 5 5060 sip.example.com."),
            (
                "NAPTR",
                "100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:x@example.com!\" .",
            ),
            ("SSHFP", "4 2 0123456789ABCDEF"),
            (
                "TLSA",
                "3 1 1 D2ABDE240D7CD3EE6B4B28C54DF034B97983A1D16E8A410E4561CB106618E971",
            ),
            ("CAA", "0 issue \"letsencrypt.org\""),
            (
                "HTTPS",
                "1 . alpn=\"h2,h3\" port=8443 ipv4hint=192.0.2.1,192.0.2.2",
            ),
            ("TYPE65000", "\\# 3 ABCDEF"),
        ];
        for (rtype, text) in cases {
            let rdata =
                parse(rtype, text).unwrap_or_else(|e| panic!("{rtype} {text}: {}", e.message));
            assert_eq!(rdata_to_text(&rdata), text, "printing {rtype}");
        }
    }

    #[test]
    fn generic_form_for_a_known_type() {
        let rdata = parse("A", "\\# 4 0A000001").unwrap();
        assert_eq!(rdata.wire(), [10, 0, 0, 1]);
        assert_eq!(rdata_to_text(&rdata), "10.0.0.1");
        let e = parse("A", "\\# 5 0A000001").unwrap_err();
        assert_eq!(
            e.message,
            "\\# length 5 does not match the 4 bytes of hex data"
        );
    }

    #[test]
    fn soa_times_take_units_and_names_are_completed() {
        let rdata = parse("SOA", "ns hostmaster 2024 1h 10m 2w 5m").unwrap();
        let soa = rdata.as_soa().unwrap();
        assert_eq!(soa.mname.to_string(), "ns.example.com.");
        assert_eq!(
            (soa.refresh, soa.retry, soa.expire, soa.minimum),
            (3600, 600, 1_209_600, 300)
        );
    }

    #[test]
    fn errors_name_the_token() {
        let e = parse("MX", "10").unwrap_err();
        assert_eq!(
            (e.token, e.message.as_str()),
            (
                1,
                "expected the mail exchange in the MX data, found the end of the record"
            )
        );
        let e = parse("A", "1.2.3.4 5").unwrap_err();
        assert_eq!(e.token, 1);
        let e = parse("TXT", &format!("\"{}\"", "x".repeat(256))).unwrap_err();
        assert!(e.message.contains("longer than 255"), "{}", e.message);
    }
}
