//! The migration file: the repository's example parses, and bad files are
//! refused with line, column and what was expected.

use std::path::Path;

use cutover_migrate::file::{
    parse_duration, AfterTtl, CheckKind, MigrationFile, Move, SwitchAt, DEFAULT_DURING_TTL,
};
use cutover_migrate::provider::ProviderSpec;

/// The example file in the repository root.
fn example_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/move-web.toml")
}

#[test]
fn the_example_file_parses() {
    let file = MigrationFile::read(&example_path()).expect("examples/move-web.toml parses");
    assert_eq!(file.zone.to_string(), "example.com.", "zone");
    assert_eq!(file.provider, ProviderSpec::Embedded, "provider");
    assert_eq!(
        file.moves.len(),
        2,
        "two moves expected, saw {:?}",
        file.moves
    );
    assert!(
        matches!(&file.moves[0], Move::Address { from, to, spf: true }
            if from.to_string() == "192.0.2.10" && to.to_string() == "198.51.100.20"),
        "first move: expected 192.0.2.10 -> 198.51.100.20 with spf, saw {:?}",
        file.moves[0]
    );
    assert_eq!(file.ttl.during, 60);
    assert_eq!(file.ttl.after, AfterTtl::Original);
    assert_eq!(file.checks.len(), 2, "checks: {:?}", file.checks);
    assert!(
        matches!(&file.checks[1].kind, CheckKind::Tcp { host, port: 443 } if host == "www.example.com"),
        "second check: {:?}",
        file.checks[1]
    );
    assert_eq!(file.schedule.switch_at, SwitchAt::Earliest);
    assert_eq!(file.schedule.observe, 24 * 3600, "observe 24h in seconds");
    assert_eq!(file.schedule.margin, 60, "margin 1m in seconds");
    assert_eq!(file.verify.tries, 3);
    assert_eq!(file.verify.interval, 10);
    assert_eq!(file.verify.resolvers[0].to_string(), "127.0.0.1:53");
}

/// Parses text expected to fail, returning the error's text.
fn refused(text: &str) -> String {
    match MigrationFile::parse(text, "m.toml") {
        Ok(f) => panic!("expected the file to be refused, it parsed: {f:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_minimal_file_takes_the_defaults() {
    let file = MigrationFile::parse(
        "version = 1\nzone = \"example.com\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = \"www\"\ntype = \"a\"\nvalues = [\"198.51.100.20\"]\n",
        "m.toml",
    )
    .expect("minimal file parses");
    assert_eq!(
        file.zone.to_string(),
        "example.com.",
        "a relative zone is made absolute"
    );
    assert_eq!(file.ttl.during, DEFAULT_DURING_TTL);
    assert!(
        matches!(&file.moves[0], Move::Explicit { name, .. } if name.to_string() == "www.example.com."),
        "relative owner completed with the zone: {:?}",
        file.moves[0]
    );
    assert_eq!(file.verify.tries, 3);
}

#[test]
fn an_unknown_key_is_refused_at_its_place() {
    let e = refused("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n[ttl]\nduring = 60\nafterwards = 10\n");
    assert!(
        e.starts_with("m.toml:9:1: "),
        "expected the error at line 9 column 1, saw {e}"
    );
    assert!(e.contains("afterwards"), "the message names the key: {e}");
}

#[test]
fn a_bad_address_is_refused_with_line_column_and_what_was_expected() {
    let e = refused("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.300\"\nto = \"198.51.100.20\"\n");
    assert!(
        e.starts_with("m.toml:5:8: "),
        "expected line 5 column 8 (the value), saw {e}"
    );
    assert!(
        e.contains("not an IP address"),
        "says what was expected: {e}"
    );
}

#[test]
fn mixed_address_families_are_refused() {
    let e = refused("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"2001:db8::1\"\n");
    assert!(e.starts_with("m.toml:6:6: "), "at the `to` value: {e}");
    assert!(e.contains("same address family"), "{e}");
}

#[test]
fn explicit_values_are_checked_as_record_data() {
    let e = refused("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = \"www\"\ntype = \"A\"\nvalues = [\"198.51.100.20\", \"not-an-ip\"]\n");
    assert!(e.starts_with("m.toml:7:28: "), "at the bad value: {e}");
    assert!(e.contains("not valid A data"), "{e}");
}

#[test]
fn a_missing_or_newer_version_is_refused() {
    let e = refused("zone = \"example.com.\"\n");
    assert!(e.contains("version = 1"), "{e}");
    let e = refused("version = 2\nzone = \"example.com.\"\n");
    assert!(e.starts_with("m.toml:1:11: "), "{e}");
    assert!(e.contains("unsupported version 2"), "{e}");
}

#[test]
fn an_rfc2136_provider_needs_a_key() {
    let e = refused("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"rfc2136\", server = \"127.0.0.1:53\", key = \"ops.\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n");
    assert!(e.starts_with("m.toml:3:"), "at the provider: {e}");
    assert!(
        e.contains("[[key]]"),
        "says where the key may come from: {e}"
    );
    let ok = MigrationFile::parse("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"rfc2136\", server = \"127.0.0.1:53\", key = \"ops.\" }\n[[key]]\nname = \"ops\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0\"\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n", "m.toml");
    assert!(ok.is_ok(), "an inline [[key]] satisfies it: {ok:?}");
}

#[test]
fn an_unknown_provider_kind_is_refused() {
    let e = refused("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"bind\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n");
    assert!(e.starts_with("m.toml:3:"), "{e}");
    assert!(e.contains("embedded"), "lists the kinds expected: {e}");
}

#[test]
fn checks_need_exactly_one_protocol() {
    let e = refused("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n[[check]]\nhttp = \"http://www.example.com/\"\ntcp = \"www.example.com:80\"\n");
    assert!(
        e.starts_with("m.toml:7:1: "),
        "at the [[check]] header: {e}"
    );
    assert!(e.contains("exactly one"), "{e}");
}

#[test]
fn a_bad_switch_time_is_refused() {
    let e = refused("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n[schedule]\nswitch_at = \"tomorrow\"\n");
    assert!(e.starts_with("m.toml:8:13: "), "{e}");
    assert!(e.contains("RFC 3339"), "{e}");
}

#[test]
fn durations_read_as_seconds() {
    for (text, secs) in [
        ("90", 90),
        ("10s", 10),
        ("1h30m", 5400),
        ("3d", 259_200),
        ("1w", 604_800),
    ] {
        assert_eq!(parse_duration(text), Ok(secs), "{text}");
    }
    assert!(parse_duration("10x").is_err(), "an unknown unit is refused");
    assert!(parse_duration("").is_err(), "empty is refused");
}

#[test]
fn the_example_file_plans_against_the_example_zone() {
    let file = MigrationFile::read(&example_path()).expect("example parses");
    let zone = cutover_zone::zonefile::parse_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/example.com.zone"),
        None,
    )
    .expect("example zone parses")
    .zone;
    let now: jiff::Timestamp = "2026-03-01T00:00:00Z".parse().expect("time");
    let plan = cutover_migrate::plan(&file, &zone, &Default::default(), now).expect("plan");
    let changes: Vec<(String, String)> = plan
        .changes
        .iter()
        .map(|c| (c.name.clone(), c.rtype.clone()))
        .collect();
    for expected in [
        ("example.com.", "A"),
        ("example.com.", "TXT"),
        ("www.example.com.", "A"),
        ("www.example.com.", "AAAA"),
    ] {
        assert!(
            changes.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} moves; changes: {changes:?}"
        );
    }
    let text = cutover_migrate::render(&plan);
    assert!(
        text.contains("shop.example.com. CNAME leads to www.example.com."),
        "the CNAME to a moving name is warned about:\n{text}"
    );
}
