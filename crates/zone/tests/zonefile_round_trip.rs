//! Round trip of a zone file using every feature and type the parser
//! supports: parse → write → parse gives the same zone, and writing is
//! stable byte for byte. Knot's `kzonecheck` must accept what we write.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use cutover_zone::zonefile::{parse_file, parse_str, record_to_text, write, Parsed};
use cutover_zone::{Name, RecordType};

/// The path of a test zone file.
fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file)
}

/// A name from text.
fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

/// The every-type zone, parsed without an origin argument.
fn every() -> Parsed {
    parse_file(&data("every.zone"), None)
        .unwrap_or_else(|e| panic!("every.zone should parse, got {e}"))
}

#[test]
fn every_feature_round_trips_identically() {
    let parsed = every();
    assert_eq!(
        parsed.warnings,
        vec![],
        "every.zone should parse without warnings"
    );
    let zone = parsed.zone;
    assert_eq!(zone.origin(), &name("example.com."));
    // 33 records: every line with a type in every.zone and the included file.
    assert_eq!(
        zone.record_count(),
        33,
        "record count; zone:\n{}",
        write(&zone)
    );
    let text = write(&zone);
    let again = parse_str(&text, "written.zone", None)
        .unwrap_or_else(|e| panic!("written text should parse, got {e}\n{text}"));
    assert_eq!(again.zone, zone, "re-imported zone differs; text:\n{text}");
    assert_eq!(
        write(&again.zone),
        text,
        "write(parse(write(z))) must equal write(z)"
    );
}

#[test]
fn features_land_where_bind_puts_them() {
    let zone = every().zone;
    let ttl = |owner: &str, rtype: RecordType| {
        zone.get(&name(owner), rtype)
            .unwrap_or_else(|| panic!("expected {rtype} at {owner}"))
            .ttl
    };
    assert_eq!(ttl("example.com.", RecordType::SOA), 5400, "$TTL 1h30m");
    assert_eq!(ttl("example.com.", RecordType::MX), 3600, "explicit TTL");
    assert_eq!(
        ttl("example.com.", RecordType::TXT),
        5400,
        "$TTL wins over the previous TTL"
    );
    assert_eq!(
        ttl("ns1.example.com.", RecordType::AAAA),
        86400,
        "TTL after class"
    );
    assert_eq!(
        ttl("sub.example.com.", RecordType::NS),
        600,
        "$INCLUDE origin"
    );
    assert_eq!(ttl("ns.sub.example.com.", RecordType::A), 600);
    assert_eq!(
        ttl("back.example.com.", RecordType::A),
        5400,
        "origin restored after $INCLUDE"
    );
    let soa = zone.soa().unwrap();
    assert_eq!(
        (soa.refresh, soa.retry, soa.expire, soa.minimum),
        (3600, 900, 604800, 300)
    );
    let escaped = zone
        .node(&name("a\\.b.example.com."))
        .expect("escaped dot stays in the label");
    assert_eq!(name("a\\.b.example.com.").num_labels(), 3);
    assert!(escaped.get(RecordType::A).is_some());
    let txt = zone
        .get(&name("txt.example.com."), RecordType::TXT)
        .unwrap();
    let first = txt.rdatas().iter().find(|r| r.wire()[1] == b'q').unwrap();
    let mut expected = vec![30u8];
    expected.extend_from_slice(b"quote \" and backslash \\ and AB");
    expected.extend_from_slice(b"\x0dsecond string\x08unquoted");
    assert_eq!(first.wire(), &expected[..]);
    let generic = zone
        .get(&name("generic.example.com."), RecordType::Unknown(123))
        .unwrap();
    assert_eq!(generic.rdatas()[0].wire(), [10, 0, 0, 1]);
    let a = zone
        .get(&name("generic.example.com."), RecordType::A)
        .unwrap();
    assert_eq!(
        a.rdatas()[0].wire(),
        [192, 0, 2, 7],
        "\\# form of a known type under CLASS1"
    );
    let dname = zone
        .get(&name("legacy.example.com."), RecordType::from(39))
        .unwrap();
    assert_eq!(dname.rdatas()[0].wire(), b"\x07example\x03org\x00");
    let empty = zone
        .get(&name("empty-txt.example.com."), RecordType::TXT)
        .unwrap();
    assert_eq!(empty.rdatas()[0].wire(), [0]);
}

#[test]
fn writer_puts_soa_then_apex_ns_first() {
    let text = write(&every().zone);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "$ORIGIN example.com.");
    assert_eq!(
        lines[1],
        "example.com. 5400 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 3600 900 604800 300"
    );
    assert!(
        lines[2].starts_with("example.com. 5400 IN NS "),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("example.com. 5400 IN NS "),
        "{}",
        lines[3]
    );
    assert!(
        text.contains("\ngeneric.example.com. 5400 IN TYPE123 \\# 4 0A000001\n"),
        "{text}"
    );
    assert!(
        text.contains("\ngeneric.example.com. 5400 IN TYPE65534 \\# 0\n"),
        "{text}"
    );
    assert!(
        text.contains("\na\\.b.example.com. 5400 IN A 192.0.2.99\n"),
        "{text}"
    );
    let record = every()
        .zone
        .records()
        .find(|r| r.rdata.rtype() == RecordType::CAA)
        .unwrap();
    assert_eq!(
        record_to_text(&record),
        "example.com. 5400 IN CAA 0 issue \"letsencrypt.org\""
    );
}

#[test]
fn kzonecheck_accepts_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.com.zone");
    std::fs::write(&file, write(&every().zone)).unwrap();
    let output = Command::new("kzonecheck")
        .arg("-o")
        .arg("example.com.")
        .arg(&file)
        .output()
        .expect("kzonecheck (knot-dnssecutils) must be installed to run this test");
    assert!(
        output.status.success(),
        "expected kzonecheck to accept the written zone, it said ({}):\n{}{}\nzone:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&file).unwrap()
    );
}

#[test]
fn every_one_character_deletion_parses_or_errors_and_round_trips() {
    // A cheap, deterministic cousin of the fuzz target: remove each
    // character of every.zone in turn. Nothing may panic, and whatever
    // still parses must write and re-import identically.
    let path = data("every.zone");
    let text = std::fs::read_to_string(&path).unwrap();
    let file = path.display().to_string();
    let (mut parsed_count, mut error_count) = (0, 0);
    for (at, ch) in text.char_indices() {
        let mut mutated = text.clone();
        mutated.replace_range(at..at + ch.len_utf8(), "");
        match parse_str(&mutated, &file, None) {
            Ok(parsed) => {
                parsed_count += 1;
                let written = write(&parsed.zone);
                let again = parse_str(&written, "written.zone", None).unwrap_or_else(|e| {
                    panic!("deleting byte {at}: written text should parse, got {e}\n{written}")
                });
                assert_eq!(
                    again.zone, parsed.zone,
                    "deleting byte {at}: re-import differs"
                );
            }
            Err(e) => {
                error_count += 1;
                assert!(
                    e.line >= 1 && e.column >= 1,
                    "deleting byte {at}: error without a position: {e}"
                );
            }
        }
    }
    assert!(
        parsed_count > 0 && error_count > 0,
        "parsed {parsed_count}, errors {error_count}"
    );
}
