//! The presentation forms shared by every record type: domain names,
//! character-strings, numbers, hex and base64, both ways (TTLs and other
//! durations are read by [`crate::duration`]).
//!
//! Parsing functions take the token text as the lexer kept it (escapes as
//! written) and return a message naming the bad input; the caller adds the
//! file, line and column.

use hickory_proto::rr::domain::Label;
use hickory_proto::rr::Name;

/// Decodes the escapes of a token into bytes: `\DDD` is one byte in
/// decimal, `\X` is X itself. Used for character-strings and labels.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let digits = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        if let Some(d) = digits {
            let value = d.iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
            let byte = u8::try_from(value)
                .map_err(|_| format!("escape \\{} in \"{text}\" is above 255", value))?;
            out.push(byte);
            i += 4;
        } else if let Some(&next) = bytes.get(i + 1) {
            out.push(next);
            i += 2;
        } else {
            return Err(format!("\"{text}\" ends with a lone backslash"));
        }
    }
    Ok(out)
}

/// Parses a domain name, relative ones completed with `origin`; `@` is
/// the origin itself.
pub fn parse_name(text: &str, origin: Option<&Name>) -> Result<Name, String> {
    if text == "@" {
        return origin
            .cloned()
            .ok_or_else(|| "\"@\" but no $ORIGIN is set".to_string());
    }
    if text == "." {
        return Ok(Name::root());
    }
    let bytes = text.as_bytes();
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut absolute = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                if label.is_empty() {
                    return Err(format!("empty label in name \"{text}\""));
                }
                labels.push(std::mem::take(&mut label));
                if i + 1 == bytes.len() {
                    absolute = true;
                }
                i += 1;
            }
            b'\\' => {
                let digits = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(u8::is_ascii_digit));
                if let Some(d) = digits {
                    let value = d.iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
                    let byte = u8::try_from(value).map_err(|_| {
                        format!(
                            "escape \\{value} in name \"{}\" is above 255",
                            shorten(text)
                        )
                    })?;
                    label.push(byte);
                    i += 4;
                } else if let Some(next) = text[i + 1..].chars().next() {
                    let mut buf = [0u8; 4];
                    label.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                    i += 1 + next.len_utf8();
                } else {
                    return Err(format!(
                        "name \"{}\" ends with a lone backslash",
                        shorten(text)
                    ));
                }
            }
            b => {
                label.push(b);
                i += 1;
            }
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    if labels.is_empty() {
        return Err("empty name".into());
    }
    let mut parsed = Vec::with_capacity(labels.len());
    for label in &labels {
        if label.len() > 63 {
            return Err(format!(
                "label of {} bytes in name \"{}\" is longer than 63",
                label.len(),
                shorten(text)
            ));
        }
        parsed.push(
            Label::from_raw_bytes(label)
                .map_err(|e| format!("invalid name \"{}\": {e}", shorten(text)))?,
        );
    }
    let wire_len: usize = labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    let too_long = |len: usize| {
        format!(
            "name \"{}\" is {len} bytes long, more than 255",
            shorten(text)
        )
    };
    if wire_len > 255 {
        return Err(too_long(wire_len));
    }
    let name = Name::from_labels(parsed)
        .map_err(|e| format!("invalid name \"{}\": {e}", shorten(text)))?;
    if absolute {
        return Ok(name);
    }
    let Some(origin) = origin else {
        return Err(format!(
            "relative name \"{}\" but no $ORIGIN is set",
            shorten(text)
        ));
    };
    let full_len = wire_len - 1 + name_wire_len(origin);
    let mut appended = name.append_name(origin).map_err(|_| too_long(full_len))?;
    appended.set_fqdn(true);
    if name_wire_len(&appended) > 255 {
        return Err(too_long(name_wire_len(&appended)));
    }
    Ok(appended)
}

/// The length of a name in wire form.
pub fn name_wire_len(name: &Name) -> usize {
    name.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

/// At most 60 characters of a long input, for messages.
pub fn shorten(text: &str) -> String {
    if text.chars().count() <= 60 {
        return text.to_string();
    }
    let head: String = text.chars().take(57).collect();
    format!("{head}...")
}

/// Writes a name absolute, escaping what a zone file would misread.
pub fn name_to_text(name: &Name) -> String {
    if name.is_root() {
        return ".".into();
    }
    let mut out = String::with_capacity(name.len() + 1);
    for label in name.iter() {
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(b as char);
                }
                0x21..=0x7e => out.push(b as char),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        out.push('.');
    }
    out
}

/// Writes bytes as a quoted character-string.
pub fn string_to_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// Parses a character-string (at most 255 bytes).
pub fn parse_string(text: &str, what: &str) -> Result<Vec<u8>, String> {
    let bytes = unescape(text)?;
    if bytes.len() > 255 {
        return Err(format!(
            "{what} of {} bytes is longer than 255; split it into several quoted strings",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// Parses a decimal number of at most `max`, naming the field in errors.
pub fn parse_number(text: &str, what: &str, max: u32) -> Result<u32, String> {
    let bad = || {
        format!(
            "invalid {what} \"{}\": expected a number from 0 to {max}",
            shorten(text)
        )
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<u64>() {
        Ok(n) if n <= u64::from(max) => Ok(n as u32),
        _ => Err(bad()),
    }
}

/// Parses hex digits (possibly split over several tokens, already joined).
pub fn parse_hex(text: &str, what: &str) -> Result<Vec<u8>, String> {
    let digits = text.as_bytes();
    if !digits.chunks_exact(2).remainder().is_empty() {
        return Err(format!(
            "{what} \"{}\" has an odd number of hex digits",
            shorten(text)
        ));
    }
    let value = |d: u8| (d as char).to_digit(16);
    digits
        .chunks(2)
        .map(|pair| match (value(pair[0]), value(pair[1])) {
            (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
            _ => Err(format!("invalid hex in {what} \"{}\"", shorten(text))),
        })
        .collect()
}

/// Writes bytes as uppercase hex (as Knot and BIND do).
pub fn hex_to_text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The base64 alphabet (RFC 4648 §4).
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Writes bytes in base64 with padding.
pub fn base64_to_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Parses base64; the `=` padding may be present or left out.
pub fn parse_base64(text: &str, what: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("invalid base64 in {what} \"{}\"", shorten(text));
    let trimmed = text.trim_end_matches('=');
    if text.len() - trimmed.len() > 2 || trimmed.len() % 4 == 1 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in trimmed.bytes() {
        let v = BASE64.iter().position(|&a| a == c).ok_or_else(bad)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn names_relative_absolute_and_escaped() {
        let origin = Name::from_str("example.com.").unwrap();
        let n = parse_name("a\\.b", Some(&origin)).unwrap();
        assert_eq!(n.num_labels(), 3);
        assert_eq!(name_to_text(&n), "a\\.b.example.com.");
        assert_eq!(parse_name("@", Some(&origin)).unwrap(), origin);
        assert_eq!(
            name_to_text(&parse_name("\\065\\032x.", None).unwrap()),
            "A\\032x."
        );
        assert_eq!(
            parse_name("www", None).unwrap_err(),
            "relative name \"www\" but no $ORIGIN is set"
        );
        assert!(parse_name("a..b.", None)
            .unwrap_err()
            .contains("empty label"));
        assert!(parse_name(&"a".repeat(64), Some(&origin))
            .unwrap_err()
            .contains("longer than 63"));
        let long = format!("{}.", vec!["a".repeat(60); 5].join("."));
        assert!(parse_name(&long, None)
            .unwrap_err()
            .contains("more than 255"));
    }

    #[test]
    fn strings_hex_and_base64() {
        assert_eq!(unescape("a\\\"b\\\\\\255").unwrap(), b"a\"b\\\xff");
        assert!(unescape("\\256").is_err());
        assert_eq!(string_to_text(b"a\"b\\\xff"), "\"a\\\"b\\\\\\255\"");
        assert_eq!(parse_hex("0aFF", "x").unwrap(), [10, 255]);
        assert!(parse_hex("0aF", "x").is_err());
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\x00\x10"] {
            let text = base64_to_text(data);
            assert_eq!(parse_base64(&text, "x").unwrap(), data, "{text}");
        }
        assert_eq!(base64_to_text(b"foob"), "Zm9vYg==");
    }
}
