//! A zone written the way BIND admins write it (with `$INCLUDE` of a second
//! file) parses to exactly the records we expect, with wire bytes computed
//! by hand from the RFCs for the tricky types (SVCB with params, CAA,
//! NAPTR, TLSA, a generic type).

use std::path::Path;

use cutover_zone::zonefile::parse_file;
use cutover_zone::{Name, RecordType};

/// Bytes from hex written with spaces for readability.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn bind_style_zone_with_include_gives_the_expected_records() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bind.zone");
    let parsed =
        parse_file(&path, None).unwrap_or_else(|e| panic!("bind.zone should parse, got {e}"));
    assert_eq!(parsed.warnings, vec![]);
    // bind.test. in wire form, used in several records.
    let bind_test = "04 62696e64 04 74657374 00";
    // (owner, type code, wire bytes); every TTL is the $TTL 86400.
    let expected: Vec<(&str, u16, Vec<u8>)> = vec![
        (
            "bind.test.",
            6,
            hex(&format!(
                "02 6e73 {bind_test} 05 61646d696e {bind_test} 78a4 b4c5 00000e10 00000384 00093a80 00000e10"
            )),
        ),
        ("bind.test.", 2, hex(&format!("02 6e73 {bind_test}"))),
        // CAA: flags 0, tag length 9, "issuewild", value ";" (RFC 8659 §4.1).
        ("bind.test.", 257, hex("00 09 697373756577696c64 3b")),
        // SVCB: priority 1, target, then alpn (key 1: one 3-byte id "dot"),
        // port (key 3: 853), ipv4hint (key 4) in key order (RFC 9460 §2.2).
        (
            "_dns.bind.test.",
            64,
            hex(&format!(
                "0001 03 646e73 {bind_test} 0001 0004 03 646f74 0003 0002 0355 0004 0004 c6336435"
            )),
        ),
        ("ns.bind.test.", 1, hex("c6 33 64 01")),
        // TLSA: usage 2, selector 0, matching type 1, data abcd (RFC 6698 §2.1).
        ("_25._tcp.mx.bind.test.", 52, hex("02 00 01 abcd")),
        // Generic RFC 3597 data for type 4660 (0x1234).
        ("odd.bind.test.", 4660, hex("010203")),
        // NAPTR: order 10, preference 20, "S", "SIP+D2T", "", replacement (RFC 3403 §4.1).
        (
            "sip.bind.test.",
            35,
            hex(&format!("000a 0014 01 53 07 5349502b443254 00 04 5f736970 04 5f746370 {bind_test}")),
        ),
    ];
    let mut seen: Vec<(Name, u16, Vec<u8>, u32)> = parsed
        .zone
        .records()
        .map(|r| {
            (
                r.name.clone(),
                u16::from(r.rdata.rtype()),
                r.rdata.wire().to_vec(),
                r.ttl,
            )
        })
        .collect();
    let mut want: Vec<(Name, u16, Vec<u8>, u32)> = expected
        .into_iter()
        .map(|(owner, code, wire)| (owner.parse().unwrap(), code, wire, 86400))
        .collect();
    seen.sort();
    want.sort();
    assert_eq!(seen, want, "records of bind.zone (owner, type, wire, ttl)");
    assert_eq!(parsed.zone.soa().unwrap().serial, 2024060101);
    assert_eq!(u16::from(RecordType::SVCB), 64);
}
