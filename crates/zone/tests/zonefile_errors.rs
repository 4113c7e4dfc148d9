//! One test per zone-file error message: each asserts the exact
//! `file:line:column: message` a user sees.

use std::path::Path;

use cutover_zone::zonefile::{parse_file, parse_str, rdata_from_text, ZoneFileError};
use cutover_zone::{Name, RecordType};

/// A valid zone's first five lines; the line under test is line 6.
const PRELUDE: &str =
    "$ORIGIN example.com.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.1\n";

/// Parses `text` as `x.zone` and returns the error it must give.
fn error_of(text: &str) -> String {
    match parse_str(text, "x.zone", None) {
        Ok(parsed) => panic!(
            "expected an error for:\n{text}\ngot a zone of {} records",
            parsed.zone.record_count()
        ),
        Err(e) => e.to_string(),
    }
}

/// The error of the prelude followed by `line`.
fn error_after_prelude(line: &str) -> String {
    error_of(&format!("{PRELUDE}{line}\n"))
}

#[test]
fn unknown_type_after_class() {
    assert_eq!(
        error_after_prelude("www IN AX 192.0.2.1"),
        "x.zone:6:8: expected a TTL or a record type, found \"AX\""
    );
}

#[test]
fn unknown_type_after_ttl_and_class() {
    assert_eq!(
        error_after_prelude("www 60 IN AX 192.0.2.1"),
        "x.zone:6:11: expected a record type, found \"AX\""
    );
}

#[test]
fn invalid_ipv4_address() {
    assert_eq!(
        error_after_prelude("www A 1.2.3"),
        "x.zone:6:7: invalid IPv4 address \"1.2.3\""
    );
}

#[test]
fn invalid_ipv6_address() {
    assert_eq!(
        error_after_prelude("www AAAA 2001:db8::g"),
        "x.zone:6:10: invalid IPv6 address \"2001:db8::g\""
    );
}

#[test]
fn unterminated_quoted_string() {
    assert_eq!(
        error_after_prelude("www TXT \"abc"),
        "x.zone:6:9: unterminated quoted string"
    );
}

#[test]
fn unbalanced_closing_parenthesis() {
    assert_eq!(
        error_after_prelude("www A 192.0.2.1 )"),
        "x.zone:6:17: unbalanced ')'"
    );
}

#[test]
fn unbalanced_opening_parenthesis() {
    assert_eq!(
        error_after_prelude("www TXT ( \"a\"\n\"b\""),
        "x.zone:6:9: unbalanced '(': no ')' before the end of the file"
    );
}

#[test]
fn relative_name_without_origin() {
    assert_eq!(
        error_of("www 300 A 192.0.2.1\n"),
        "x.zone:1:1: relative name \"www\" but no $ORIGIN is set"
    );
}

#[test]
fn other_classes_are_refused() {
    assert_eq!(
        error_after_prelude("www CH A 192.0.2.1"),
        "x.zone:6:5: class CH is not supported (only IN)"
    );
    assert_eq!(
        error_after_prelude("www 60 CLASS3 A 192.0.2.1"),
        "x.zone:6:8: class CLASS3 is not supported (only IN)"
    );
}

#[test]
fn invalid_ttl() {
    assert_eq!(
        error_after_prelude("www 1x A 192.0.2.1"),
        "x.zone:6:5: invalid TTL \"1x\": expected seconds or numbers with units \
         s, m, h, d, w (any case), e.g. 3600, 1h30m, 1W2D"
    );
    assert_eq!(
        error_after_prelude("$TTL 2147483648"),
        "x.zone:6:6: TTL \"2147483648\" is out of range: a TTL is 0 to 2147483647 \
         seconds (RFC 2181 §8)"
    );
    // Forms only cutover's other readers take are not zone-file TTLs:
    // named and knotd would refuse the file.
    assert!(error_after_prelude("www 1hour A 192.0.2.1")
        .starts_with("x.zone:6:5: invalid TTL \"1hour\": expected seconds"));
    assert_eq!(
        error_after_prelude("@ SOA ns hm 1 2 3 4 4294967296"),
        "x.zone:6:21: minimum \"4294967296\" is larger than 4294967295"
    );
}

#[test]
fn ttls_in_bind_units_are_read_in_any_case() {
    let parsed = parse_str(
        "$ORIGIN example.com.\n$TTL 1W2D3H\n@ SOA ns hm 1 1h 15M 1w 5m\n NS ns\n\
         ns 1h30m A 192.0.2.1\nwww 1H30 A 192.0.2.2\nmail A 192.0.2.3\n",
        "x.zone",
        None,
    )
    .expect("BIND's unit forms parse");
    let ttl = |name: &str| {
        let name = Name::from_ascii(name).unwrap();
        parsed.zone.get(&name, RecordType::A).expect("an A").ttl
    };
    assert_eq!(ttl("ns.example.com."), 5400, "1h30m");
    assert_eq!(
        ttl("www.example.com."),
        3630,
        "1H30: the trailing number is seconds"
    );
    assert_eq!(ttl("mail.example.com."), 788_400, "$TTL 1W2D3H");
}

#[test]
fn missing_data_is_reported_at_the_last_token() {
    assert_eq!(
        error_after_prelude("www MX 10"),
        "x.zone:6:8: expected the mail exchange in the MX data, found the end of the record"
    );
    assert_eq!(
        error_after_prelude("www 60 IN"),
        "x.zone:6:8: expected a record type, found the end of the record"
    );
}

#[test]
fn trailing_data_is_refused() {
    assert_eq!(
        error_after_prelude("www CNAME a b"),
        "x.zone:6:13: unexpected \"b\" after the end of the CNAME data"
    );
}

#[test]
fn long_txt_string_is_refused() {
    let line = format!("www TXT \"{}\"", "x".repeat(256));
    assert_eq!(
        error_after_prelude(&line),
        "x.zone:6:9: a character-string of 256 bytes is longer than 255; split it into several quoted strings"
    );
}

#[test]
fn a_4096_byte_token_is_an_error_not_a_panic() {
    let token = "a".repeat(5000);
    assert_eq!(
        error_after_prelude(&format!("{token} A 192.0.2.1")),
        format!(
            "x.zone:6:1: label of 5000 bytes in name \"{}...\" is longer than 63",
            "a".repeat(57)
        )
    );
    let text = format!("{PRELUDE}www TXT {}\n", "b".repeat(4096));
    assert!(
        error_of(&text).starts_with("x.zone:6:9: a character-string of 4096 bytes"),
        "{}",
        error_of(&text)
    );
}

#[test]
fn generic_length_mismatch() {
    assert_eq!(
        error_after_prelude("www TYPE123 \\# 5 0a000001"),
        "x.zone:6:16: \\# length 5 does not match the 4 bytes of hex data"
    );
}

#[test]
fn unknown_directive() {
    assert_eq!(
        error_after_prelude("$GENERATE 1-3 h$ A 192.0.2.$"),
        "x.zone:6:1: unknown directive \"$GENERATE\" (expected $ORIGIN, $TTL or $INCLUDE)"
    );
}

#[test]
fn no_ttl_anywhere() {
    assert_eq!(
        error_of("$ORIGIN example.com.\nwww A 192.0.2.1\n"),
        "x.zone:2:1: no TTL for this record: give one or set $TTL before it"
    );
}

#[test]
fn cname_beside_other_data_at_the_first_record_of_the_owner() {
    assert_eq!(
        error_after_prelude("www A 192.0.2.2\nwww CNAME ns"),
        "x.zone:6:1: www.example.com.: CNAME beside other data (A)"
    );
}

#[test]
fn out_of_zone_data() {
    assert_eq!(
        error_after_prelude("www.example.net. A 192.0.2.2"),
        "x.zone:6:1: www.example.net. is outside the zone example.com."
    );
}

#[test]
fn no_soa_at_the_apex() {
    assert_eq!(
        error_of("$ORIGIN example.com.\n$TTL 300\n@ NS ns\nns A 192.0.2.1\n"),
        "x.zone:3:1: no SOA record at the zone apex example.com."
    );
}

#[test]
fn missing_glue() {
    assert_eq!(
        error_after_prelude("sub NS ns.sub"),
        "x.zone:6:1: sub.example.com.: NS ns.sub.example.com. needs glue (an A or AAAA record for ns.sub.example.com.) but the zone has none"
    );
}

#[test]
fn ttl_mismatch_is_a_warning_keeping_the_first_ttl() {
    let text = format!("{PRELUDE}www 60 A 192.0.2.2\nwww 120 A 192.0.2.3\n");
    let parsed = parse_str(&text, "x.zone", None).unwrap();
    let warnings: Vec<String> = parsed
        .warnings
        .iter()
        .map(ZoneFileError::to_string)
        .collect();
    assert_eq!(
        warnings,
        ["x.zone:7:1: TTL 120 differs from the TTL 60 of the A RRset it joins; keeping 60"]
    );
    let www: Name = "www.example.com.".parse().unwrap();
    assert_eq!(parsed.zone.get(&www, RecordType::A).unwrap().ttl, 60);
    assert_eq!(parsed.zone.get(&www, RecordType::A).unwrap().len(), 2);
}

#[test]
fn include_loop_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.zone");
    std::fs::write(&a, format!("{PRELUDE}$INCLUDE b.zone\n")).unwrap();
    std::fs::write(dir.path().join("b.zone"), "$INCLUDE a.zone\n").unwrap();
    let err = parse_file(&a, None).unwrap_err();
    let b = dir.path().join("b.zone");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1:10: $INCLUDE loop: {} is already being read",
            b.display(),
            a.display()
        )
    );
}

#[test]
fn include_deeper_than_ten_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..12 {
        std::fs::write(
            dir.path().join(format!("{i}.zone")),
            format!("$INCLUDE {}.zone\n", i + 1),
        )
        .unwrap();
    }
    let err = parse_file(&dir.path().join("0.zone"), None).unwrap_err();
    let tenth = dir.path().join("10.zone");
    assert_eq!(
        err.to_string(),
        format!(
            "{}:1:10: $INCLUDE nested more than 10 files deep",
            tenth.display()
        )
    );
}

#[test]
fn missing_include_file() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("top.zone");
    std::fs::write(&top, format!("{PRELUDE}$INCLUDE nowhere.zone\n")).unwrap();
    let err = parse_file(&top, None).unwrap_err().to_string();
    let expected = format!(
        "{}:6:10: cannot read $INCLUDE file {}: ",
        top.display(),
        dir.path().join("nowhere.zone").display()
    );
    assert!(
        err.starts_with(&expected),
        "expected {expected}..., got {err}"
    );
}

#[test]
fn unreadable_zone_file() {
    let err = parse_file(Path::new("/nonexistent/x.zone"), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/nonexistent/x.zone:0:0: cannot read the zone file: "),
        "{err}"
    );
}

#[test]
fn rdata_from_text_reports_the_problem() {
    let origin: Name = "example.com.".parse().unwrap();
    assert_eq!(
        rdata_from_text(RecordType::A, "1.2.3", &origin).unwrap_err(),
        "invalid IPv4 address \"1.2.3\""
    );
    let mx = rdata_from_text(RecordType::MX, "10 mail", &origin).unwrap();
    assert_eq!(mx.target().unwrap().to_string(), "mail.example.com.");
    assert_eq!(
        rdata_from_text(RecordType::HINFO, "a b", &origin).unwrap_err(),
        "no text form for TYPE13 data here; use the RFC 3597 form \\# LENGTH HEX"
    );
}
