//! The SvcParams of SVCB and HTTPS records (RFC 9460 §2.1, appendix A) in
//! presentation form: `key=value` pairs, to and from their wire form
//! (sorted by key, each as key, length, value).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::lexer::Token;
use super::presentation::{
    base64_to_text, parse_base64, parse_number, shorten, string_to_text, unescape,
};

/// The keys with names (RFC 9460 §14.3.2); others print as `keyNNNNN`.
const KEYS: &[(&str, u16)] = &[
    ("mandatory", 0),
    ("alpn", 1),
    ("no-default-alpn", 2),
    ("port", 3),
    ("ipv4hint", 4),
    ("ech", 5),
    ("ipv6hint", 6),
];

/// A bad parameter, at which of the parameter tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    /// Index of the offending token among the parameters.
    pub token: usize,
    /// What is wrong.
    pub message: String,
}

/// A key number from its name or `keyNNNNN` form.
fn key_from_text(text: &str) -> Option<u16> {
    if let Some((_, key)) = KEYS.iter().find(|(name, _)| *name == text) {
        return Some(*key);
    }
    let digits = text.strip_prefix("key")?;
    parse_number(digits, "key", 65534).ok().map(|n| n as u16)
}

/// The name of a key.
fn key_to_text(key: u16) -> String {
    match KEYS.iter().find(|(_, k)| *k == key) {
        Some((name, _)) => (*name).to_string(),
        None => format!("key{key}"),
    }
}

/// Splits a value-list (RFC 9460 appendix A.1) on commas not escaped by a
/// backslash; `\,` and `\\` stand for themselves.
fn split_list(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let mut current = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if i + 1 < bytes.len() => {
                current.push(bytes[i + 1]);
                i += 2;
            }
            b',' => {
                items.push(std::mem::take(&mut current));
                i += 1;
            }
            b => {
                current.push(b);
                i += 1;
            }
        }
    }
    items.push(current);
    items
}

/// Parses the value of one key into its wire form.
fn value_to_wire(key: u16, name: &str, value: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let needs = || format!("SvcParam {name} needs a value");
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let mut wire = Vec::new();
    match key {
        0 => {
            let mut keys = Vec::new();
            for item in split_list(value.ok_or_else(needs)?) {
                let item = text(&item);
                let k = key_from_text(&item).ok_or_else(|| {
                    format!("unknown SvcParam key \"{}\" in mandatory", shorten(&item))
                })?;
                keys.push(k);
            }
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err("a key is listed twice in mandatory".into());
            }
            keys.iter()
                .for_each(|k| wire.extend_from_slice(&k.to_be_bytes()));
        }
        1 => {
            for item in split_list(value.ok_or_else(needs)?) {
                if item.is_empty() || item.len() > 255 {
                    return Err("alpn protocol ids must be 1 to 255 bytes long".into());
                }
                wire.push(item.len() as u8);
                wire.extend_from_slice(&item);
            }
        }
        2 => {
            if value.is_some_and(|v| !v.is_empty()) {
                return Err("SvcParam no-default-alpn takes no value".into());
            }
        }
        3 => {
            let port = parse_number(&text(value.ok_or_else(needs)?), "port", 65535)?;
            wire.extend_from_slice(&(port as u16).to_be_bytes());
        }
        4 => {
            for item in split_list(value.ok_or_else(needs)?) {
                let item = text(&item);
                let addr = Ipv4Addr::from_str(&item)
                    .map_err(|_| format!("invalid IPv4 address \"{}\"", shorten(&item)))?;
                wire.extend_from_slice(&addr.octets());
            }
        }
        5 => wire = parse_base64(&text(value.ok_or_else(needs)?), "ech")?,
        6 => {
            for item in split_list(value.ok_or_else(needs)?) {
                let item = text(&item);
                let addr = Ipv6Addr::from_str(&item)
                    .map_err(|_| format!("invalid IPv6 address \"{}\"", shorten(&item)))?;
                wire.extend_from_slice(&addr.octets());
            }
        }
        _ => wire.extend_from_slice(value.unwrap_or_default()),
    }
    if wire.len() > 65535 {
        return Err(format!("SvcParam {name} value is longer than 65535 bytes"));
    }
    Ok(wire)
}

/// Parses `key[=value]` tokens and appends the params in wire form.
pub fn parse_params(tokens: &[Token], out: &mut Vec<u8>) -> Result<(), ParamError> {
    let mut params: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    for (index, token) in tokens.iter().enumerate() {
        let error = |message: String| ParamError {
            token: index,
            message,
        };
        let (name, value) = match token.text.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (token.text.as_str(), None),
        };
        let key = key_from_text(name)
            .ok_or_else(|| error(format!("unknown SvcParam key \"{}\"", shorten(name))))?;
        let value = value.map(unescape).transpose().map_err(error)?;
        let wire = value_to_wire(key, name, value.as_deref()).map_err(error)?;
        if params.insert(key, wire).is_some() {
            return Err(error(format!("SvcParam {name} is given twice")));
        }
    }
    for (key, value) in params {
        out.extend_from_slice(&key.to_be_bytes());
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(&value);
    }
    Ok(())
}

/// Escapes one value-list item: `,` and `\` get a backslash.
fn list_item(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b == b',' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// The text of one param, or `None` when its value does not decode.
fn param_to_text(key: u16, value: &[u8]) -> Option<String> {
    let name = key_to_text(key);
    let text = match key {
        0 => {
            if value.is_empty() || !value.chunks_exact(2).remainder().is_empty() {
                return None;
            }
            let keys: Vec<String> = value
                .chunks(2)
                .map(|c| key_to_text(u16::from_be_bytes([c[0], c[1]])))
                .collect();
            format!("{name}={}", keys.join(","))
        }
        1 => {
            let mut items = Vec::new();
            let mut i = 0;
            while i < value.len() {
                let len = usize::from(value[i]);
                let item = value.get(i + 1..i + 1 + len).filter(|s| !s.is_empty())?;
                items.push(list_item(item));
                i += 1 + len;
            }
            if items.is_empty() {
                return None;
            }
            format!("{name}={}", string_to_text(&items.join(&b","[..])))
        }
        2 => {
            if !value.is_empty() {
                return None;
            }
            name
        }
        3 => {
            let port = u16::from_be_bytes(<[u8; 2]>::try_from(value).ok()?);
            format!("{name}={port}")
        }
        4 => {
            if value.is_empty() || !value.chunks_exact(4).remainder().is_empty() {
                return None;
            }
            let addrs: Vec<String> = value
                .chunks(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string())
                .collect();
            format!("{name}={}", addrs.join(","))
        }
        5 => {
            if value.is_empty() {
                return None;
            }
            format!("{name}={}", base64_to_text(value))
        }
        6 => {
            if value.is_empty() || !value.chunks_exact(16).remainder().is_empty() {
                return None;
            }
            let addrs: Vec<String> = value
                .chunks(16)
                .map(|c| Ipv6Addr::from(<[u8; 16]>::try_from(c).unwrap_or_default()).to_string())
                .collect();
            format!("{name}={}", addrs.join(","))
        }
        _ => format!("{name}={}", string_to_text(value)),
    };
    Some(text)
}

/// The params of wire data in text, or `None` when it does not decode
/// (the record then prints in the generic form).
pub fn params_to_text(mut wire: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut last: Option<u16> = None;
    while !wire.is_empty() {
        let head = wire.get(..4)?;
        let key = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let value = wire.get(4..4 + len)?;
        if last.is_some_and(|l| l >= key) || key == 65535 {
            return None;
        }
        last = Some(key);
        out.push(param_to_text(key, value)?);
        wire = &wire[4 + len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zonefile::lexer::entries;

    /// The wire form of a text of params.
    fn wire(text: &str) -> Result<Vec<u8>, String> {
        let tokens = entries(text).unwrap().remove(0).tokens;
        let mut out = Vec::new();
        parse_params(&tokens, &mut out).map_err(|e| e.message)?;
        Ok(out)
    }

    #[test]
    fn params_are_sorted_and_round_trip() {
        let w = wire("port=53 mandatory=port alpn=\"h\\\\,2\",h3 key65000=\"x y\" no-default-alpn")
            .unwrap();
        let text = params_to_text(&w).unwrap().join(" ");
        assert_eq!(
            text,
            "mandatory=port alpn=\"h\\\\,2,h3\" no-default-alpn port=53 key65000=\"x y\""
        );
        assert_eq!(wire(&text).unwrap(), w);
        // mandatory (key 0) comes first: key, length 2, the key of port.
        assert_eq!(&w[..6], &[0, 0, 0, 2, 0, 3]);
    }

    #[test]
    fn bad_params_are_named() {
        assert_eq!(
            wire("port=99999").unwrap_err(),
            "invalid port \"99999\": expected a number from 0 to 65535"
        );
        assert_eq!(
            wire("bogus=1").unwrap_err(),
            "unknown SvcParam key \"bogus\""
        );
        assert_eq!(
            wire("port=1 port=2").unwrap_err(),
            "SvcParam port is given twice"
        );
        assert_eq!(
            wire("ipv4hint=1.2.3").unwrap_err(),
            "invalid IPv4 address \"1.2.3\""
        );
    }
}
