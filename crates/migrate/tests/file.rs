//! The migration file: the repository's example parses, and bad files are
//! refused with line, column and what was expected.

use std::path::Path;

use cutover_migrate::file::{
    AfterTtl, CheckKind, MigrationFile, Move, SwitchAt, DEFAULT_DURING_TTL,
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

/// Waits and TTLs are read by `cutover_zone::duration`, the reader of
/// every duration in cutover: numbers are seconds, text takes units.
#[test]
fn durations_read_as_seconds() {
    let head = "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n";
    for (observe, secs) in [
        ("90", 90),
        ("\"90\"", 90),
        ("\"10s\"", 10),
        ("\"1h\"", 3600),
        ("\"1h30m\"", 5400),
        ("\"1h 30m\"", 5400),
        ("\"2 days\"", 172_800),
        ("\"3d\"", 259_200),
        ("\"1w\"", 604_800),
    ] {
        let text = format!("{head}[schedule]\nobserve = {observe}\n");
        let file = MigrationFile::parse(&text, "m.toml").expect(&text);
        assert_eq!(file.schedule.observe, secs, "observe = {observe}");
    }
    // TTLs take BIND's forms too, in any case.
    for (ttl, during, after) in [
        ("during = \"1h\"\nafter = \"1W2D\"", 3600, 777_600),
        ("during = \"5M\"\nafter = \"1d\"", 300, 86_400),
        ("during = \"1h30\"\nafter = 86400", 3630, 86_400),
    ] {
        let text = format!("{head}[ttl]\n{ttl}\n");
        let file = MigrationFile::parse(&text, "m.toml").expect(&text);
        assert_eq!(file.ttl.during, during, "{ttl}");
        assert_eq!(file.ttl.after, AfterTtl::Fixed(after), "{ttl}");
    }
    refused_at(&[
        (&format!("{head}[schedule]\nobserve = ‸\"10x\"\n"), "schedule.observe: invalid duration \"10x\": expected seconds or a number with a unit, e.g. 90, 90s, 500ms, 5m, 1h30m, 2 days, 1w"),
        (&format!("{head}[schedule]\nobserve = ‸\"\"\n"), "schedule.observe: invalid duration \"\""),
        (&format!("{head}[schedule]\nmargin = ‸\"1.5s\"\n"), "schedule.margin: \"1.5s\" is not a whole number of seconds"),
        (&format!("{head}[schedule]\nmargin = ‸\"1W\"\n"), "units are written in lower case"),
        (&format!("{head}[verify]\ninterval = ‸\"1 month\"\n"), "months and years have no fixed length"),
        (&format!("{head}[ttl]\nduring = ‸\"soon\"\n"), "ttl.during: invalid TTL \"soon\": expected seconds or a number with units, e.g. 3600, 1h, 1h30m, 2 days, 1w, or BIND's 1W2D3H"),
        (&format!("{head}[ttl]\nafter = ‸\"1.5s\"\n"), "a TTL is whole seconds"),
        (&format!("{head}[ttl]\nafter = ‸\"100000w\"\n"), "TTL \"100000w\" is out of range: a TTL is 0 to 2147483647 seconds (RFC 2181 §8)"),
    ]);
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

/// The head of every refused file below: a zone, the embedded provider,
/// one move by address (lines 1-6).
const HEAD: &str = "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n";

/// The line and column of the `‸` in `text`, and the text without it.
fn marked(text: &str) -> (usize, usize, String) {
    let at = text.find('‸').expect("the case marks where the error is");
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line, column, text.replace('‸', ""))
}

/// Every file of `cases` is refused exactly at its `‸`, with a message
/// holding the fragment.
fn refused_at(cases: &[(&str, &str)]) {
    for (text, fragment) in cases {
        let (line, column, text) = marked(text);
        let e = refused(&text);
        let place = format!("m.toml:{line}:{column}: ");
        assert!(
            e.starts_with(&place) && e.contains(fragment),
            "expected {place}…{fragment}…, saw {e}\nin:\n{text}"
        );
    }
}

/// The file-level refusals of the truthfulness issue: moves merged or
/// chained, a TTL "lowered" to more than a day, a cache nobody can flush,
/// unknown keys in `[flush]`, `[mail]` and the inline provider.
#[test]
fn what_the_moves_ttls_flush_and_mail_cannot_mean_is_refused_at_its_place() {
    let head = HEAD;
    refused_at(&[
        (&format!("{head}[[move]]\nfrom = ‸\"192.0.2.10\"\nto = \"198.51.100.30\"\n"), "192.0.2.10 is already moved by the [[move]] at line 4"),
        (&format!("{head}[[move]]\nfrom = ‸\"198.51.100.20\"\nto = \"198.51.100.30\"\n"), "is the `to` of the [[move]] at line 4"),
        (&format!("{head}[[move]]\nfrom = \"198.51.100.30\"\nto = ‸\"192.0.2.10\"\n"), "is the `from` of the [[move]] at line 4"),
        (&format!("{head}[ttl]\nduring = ‸999999\n"), "ttl.during: 11d 13h 46m 39s is out of range: expected 1s to 1d"),
        (&format!("{head}[ttl]\nduring = ‸0\n"), "out of range"),
        (&format!("{head}[ttl]\nafter = ‸30\n"), "ttl.after (30s) is below ttl.during (60s)"),
        (&format!("{head}[ttl]\nafter = ‸4294967296\n"), "out of range"),
        (&format!("{head}[flush]\ncaches = [‸\"netscape\"]\n"), "\"netscape\" is not a cache cutover can flush"),
        (&format!("{head}[flush]\ncaches = [\"unbound\", \"bind\", ‸\"named\"]\n"), "repeats a cache"),
        (&format!("{head}[flush]\ncaches = [\"all\", ‸\"unbound\"]\n"), "already flushed by \"all\""),
        (&format!("{head}[flush]\ncaches = []\n‸cache = [\"unbound\"]\n"), "unknown field `cache`"),
        (&format!("{head}[mail]\ndomain = \"example.com\"\nfrom = \"old:25\"\nto = \"new:25\"\n‸hold = true\n"), "unknown field `hold`"),
        (&format!("{head}[mail]\ndomain = \"example.com\"\nfrom = \"old:25\"\nto = ‸\"old:25\"\n"), "mail.to is mail.from"),
        ("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\", ‸keyfile = \"x\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n", "unknown field `keyfile`"),
    ]);
}

/// The rest of the file's fields: every range, empty or repeated lists,
/// and values that name nothing a migration can use.
#[test]
fn every_field_out_of_range_or_repeated_is_refused_at_its_place() {
    let head = HEAD;
    let explicit = "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = \"www\"\ntype = \"A\"\n";
    let pdns = |settings: &str| {
        format!("version = 1\nzone = \"example.com.\"\nprovider = {{ kind = \"powerdns\", {settings} }}\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n")
    };
    let rfc = |keys: &str| {
        format!("version = 1\nzone = \"example.com.\"\nprovider = {{ kind = \"rfc2136\", server = \"192.0.2.53:53\", key = \"ops.\" }}\n{keys}[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n")
    };
    let key = |name: &str, algorithm: &str| {
        format!("[[key]]\nname = \"{name}\"\nalgorithm = \"{algorithm}\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n")
    };
    refused_at(&[
        // moves
        ("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = ‸\"0.0.0.0\"\n", "cannot be a server's address"),
        (&format!("{explicit}values = [\"198.51.100.20\"]\nspf = ‸true\n"), "`spf` applies only to a move by address"),
        (&format!("{explicit}values = [\"198.51.100.20\", ‸\"198.51.100.20\"]\n"), "is given twice"),
        (&format!("{explicit}values = ‸[]\n"), "`values` is empty"),
        (&format!("{explicit}values = [\"198.51.100.20\"]\n[[move]]\nname = ‸\"www.example.com.\"\ntype = \"A\"\nvalues = [\"198.51.100.21\"]\n"), "www.example.com. A is already set by the [[move]] at line 4"),
        ("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = \"shop\"\ntype = \"CNAME\"\nvalues = [\"a.example.net.\", ‸\"b.example.net.\"]\n", "a CNAME has exactly one value"),
        ("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = ‸\"@\"\ntype = \"CNAME\"\nvalues = [\"a.example.net.\"]\n", "apex, which cannot hold a CNAME"),
        ("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = \"www\"\ntype = ‸\"RRSIG\"\nvalues = [\"x\"]\n", "RRSIG records cannot be moved"),
        ("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = ‸\"www.example.net.\"\ntype = \"A\"\nvalues = [\"198.51.100.20\"]\n", "is not in the zone example.com."),
        ("version = 1\nzone = ‸\".\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n", "the root zone cannot be migrated"),
        // checks
        (&format!("{head}[[check]]\nhttp = \"http://www.example.com/\"\nexpect_status = ‸700\n"), "expect_status 700: expected an HTTP status from 100 to 599"),
        (&format!("{head}[[check]]\nhttp = \"http://www.example.com/\"\nbody_contains = ‸\"\"\n"), "body_contains is empty"),
        (&format!("{head}[[check]]\ntcp = ‸\"www.example.com:0\"\n"), "port 0 cannot be checked"),
        (&format!("{head}[[check]]\nhttp = ‸\"http://www.example.com:0/\"\n"), "port 0 cannot be checked"),
        (&format!("{head}[[check]]\ntcp = ‸\"www example.com:80\"\n"), "is not a host name or an address"),
        (&format!("{head}[[check]]\ntcp = \"www.example.com:80\"\n‸[[check]]\ntcp = \"www.example.com:80\"\n"), "repeats an earlier one"),
        (&format!("{head}[[check]]\ntcp = \"www.example.com:80\"\nexpect_status = ‸200\n"), "apply only to an http check"),
        (&format!("{head}[[check]]\ntcp = \"www.example.com:80\"\naddress = ‸\"224.0.0.1\"\n"), "cannot be a server's address"),
        // schedule
        (&format!("{head}[schedule]\nobserve = ‸\"31d\"\n"), "schedule.observe: 31d is out of range: expected 0s to 30d"),
        (&format!("{head}[schedule]\nmargin = ‸\"2d\"\n"), "schedule.margin: 2d is out of range"),
        (&format!("{head}[schedule]\nmargin = ‸-5\n"), "expected seconds or a duration"),
        // verify
        (&format!("{head}[verify]\ninterval = ‸0\n"), "verify.interval: 0s is out of range: expected 1s to 1h"),
        (&format!("{head}[verify]\ntries = ‸0\n"), "verify.tries 0: expected 1 to 100"),
        (&format!("{head}[verify]\ntries = ‸101\n"), "verify.tries 101"),
        (&format!("{head}[verify]\nresolvers = [\"127.0.0.1\", ‸\"127.0.0.1:53\"]\n"), "127.0.0.1:53 is listed twice"),
        (&format!("{head}[verify]\nauthorities = [‸\"127.0.0.1:0\"]\n"), "cannot be asked"),
        (&format!("{head}[verify]\nresolvers = ‸[]\n"), "verify.resolvers is empty and no authorities are listed"),
        (&format!("{head}[verify]\nlocations = [\"local\", \"fra1\"]\nquorum = ‸3\n"), "verify.quorum 3: expected 1 to the 2 locations listed, or \"all\""),
        (&format!("{head}[verify]\nquorum = ‸0\n"), "verify.quorum 0: expected 1 to the 1 location listed"),
        (&format!("{head}[verify]\nquorum = ‸\"most\"\n"), "verify.quorum: expected \"all\" or how many locations must agree"),
        (&format!("{head}[verify]\nlocations = ‸[\"fra1\", \"fra1\"]\n"), "verify.locations: \"fra1\" is listed twice"),
        (&format!("{head}[verify]\nlocations = ‸[\"local\", \"all\"]\n"), "\"all\" alone, not in a list"),
        (&format!("{head}[verify]\nlocations = ‸\"everywhere\"\n"), "verify.locations: expected \"all\" or a list of location names"),
        (&format!("{head}[verify]\nlocations = ‸[]\n"), "verify.locations: expected \"all\" or a list"),
        // providers
        ("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\", url = ‸\"http://x\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n", "`url` does not apply to the embedded provider (it takes no settings)"),
        ("version = 1\nzone = \"example.com.\"\nprovider = ‸{ kind = \"cloud\", service = \"cloudflare\", token_file = \"/etc/cf\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n", "provider.nameservers: expected the zone's authoritative servers"),
        (&pdns("url = ‸\"http://u:p@127.0.0.1:8081\", api_key_file = \"/k\""), "provider.url holds credentials"),
        (&pdns("url = ‸\"http://127.0.0.1:8081/?api-key=k\", api_key_file = \"/k\""), "without a query or fragment"),
        (&pdns("url = \"http://127.0.0.1:8081\", api_key = \"k\", api_key_file = ‸\"/k\""), "give the API key once: api_key_file, api_key_env or api_key, not two"),
        (&pdns("url = \"http://127.0.0.1:8081\", api_key_file = \"/k\", server_id = ‸\"../zones\""), "provider.server_id \"../zones\""),
        (&pdns("url = \"http://127.0.0.1:8081\", api_key_file = \"/k\", token = ‸\"t\""), "`token` does not apply to the powerdns provider (it takes url, api_key, api_key_file, api_key_env, server_id)"),
        (&pdns("url = \"http://127.0.0.1:8081\", api_key = ‸\"\""), "provider.api_key is empty"),
        (&rfc(&format!("{}{}", key("ops.", "hmac-sha256"), key("other.", "hmac-sha256").replace("name = ", "name = ‸"))), "[[key]] \"other.\" is not the provider's key"),
        (&rfc(&format!("{}{}", key("ops.", "hmac-sha256"), key("OPS", "hmac-sha256").replace("name = ", "name = ‸"))), "a [[key]] named OPS. is given twice"),
        (&rfc(&key("ops.", "hmac-md6").replace("algorithm = ", "algorithm = ‸")), "[[key]] ops.:"),
        ("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"rfc2136\", server = ‸\"192.0.2.53:0\", key = \"ops.\", key_file = \"/k\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n", "port 0"),
    ]);
}

/// A secret in the file is never in its `Debug` form (what a panic or a
/// log line would print), and redacting the text blanks it.
#[test]
fn secrets_stay_out_of_debug_forms_and_redacted_text() {
    let text = "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"rfc2136\", server = \"192.0.2.53:53\", key = \"ops.\" }\n[[key]]\nname = \"ops.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n";
    let file = MigrationFile::parse(text, "m.toml").expect("parses");
    let debug = format!("{file:?}");
    assert!(!debug.contains("c2VjcmV0c2VjcmV0c2VjcmV0"), "{debug}");
    let pdns = "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"powerdns\", url = \"http://127.0.0.1:8081\", api_key = \"pdns-key-XYZ\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n";
    let file = MigrationFile::parse(pdns, "m.toml").expect("parses");
    assert!(!format!("{file:?}").contains("pdns-key-XYZ"));
    assert_eq!(
        file.spots.inline_secrets,
        vec![(
            "provider.api_key".to_string(),
            cutover_migrate::file::Spot {
                line: 3,
                column: 74
            }
        )],
        "the inline secret is known, at its place"
    );
    let redacted = cutover_migrate::file::redact(pdns);
    assert!(!redacted.contains("pdns-key-XYZ"), "{redacted}");
    assert!(
        MigrationFile::parse(&redacted, "m.toml").is_ok(),
        "the redacted text still reads:\n{redacted}"
    );
}

/// `api_key_file` is taken from the migration file's folder when relative,
/// and read only when the provider is built.
#[test]
fn a_relative_secret_file_is_taken_from_the_files_folder() {
    let text = "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"powerdns\", url = \"http://127.0.0.1:8081\", api_key_file = \"pdns.key\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n";
    let file = MigrationFile::parse(text, "/etc/cutover/moves/m.toml").expect("parses");
    match &file.provider {
        ProviderSpec::Powerdns { api_key, .. } => assert_eq!(
            api_key,
            &cutover_migrate::provider::Secret::File("/etc/cutover/moves/pdns.key".into())
        ),
        other => panic!("expected powerdns, saw {other:?}"),
    }
    assert_eq!(file.spots.local_files.len(), 1, "{:?}", file.spots);
    assert!(file.spots.inline_secrets.is_empty());
}

/// `approve` names a planned step after `before_`: anything else is refused
/// at its place with every gate it could be; a known one is read.
#[test]
fn an_approval_gate_names_a_planned_step() {
    let moves = "[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n";
    let top = "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n";
    refused_at(&[
        (&format!("{top}approve = ‸\"before_swich\"\n{moves}"), "unknown approval gate \"before_swich\": expected \"before_\" and a step's name, one of \"before_lower_ttls\", \"before_wait_for_caches\", \"before_verify_new\", \"before_note_serials\", \"before_switch\", \"before_flush_caches\", \"before_verify_switch\", \"before_observe\" or \"before_restore_ttls\""),
        (&format!("{top}approve = ‸\"switch\"\n{moves}"), "unknown approval gate \"switch\""),
        (&format!("{top}approve = ‸\"before_approval\"\n{moves}"), "unknown approval gate"),
        (&format!("{top}approve = ‸true\n{moves}"), "invalid type"),
    ]);
    let file = MigrationFile::parse(
        &format!("{top}approve = \"before_switch\"\n{moves}"),
        "m.toml",
    )
    .expect("a known gate parses");
    assert_eq!(file.approve, Some(cutover_migrate::StepKind::Switch));
    assert_eq!(
        file.spots.approve.map(|s| (s.line, s.column)),
        Some((4, 11)),
        "its place is kept"
    );
    let none = MigrationFile::parse(&format!("{top}{moves}"), "m.toml").expect("parses");
    assert_eq!(none.approve, None, "no gate unless the file asks");
}

/// A secret given by environment variable: only the variable's name is in
/// the file; a bad name or a secret given twice is refused at its place, and
/// a variable unset here is refused at its name, naming it and no value.
#[test]
fn a_secret_from_the_environment_is_refused_at_its_name_when_bad_or_unset() {
    let pdns = |settings: &str| {
        format!("version = 1\nzone = \"example.com.\"\nprovider = {{ kind = \"powerdns\", url = \"http://127.0.0.1:8081\", {settings} }}\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n")
    };
    let rfc = |secret: &str| {
        format!("version = 1\nzone = \"example.com.\"\nprovider = {{ kind = \"rfc2136\", server = \"192.0.2.53:53\", key = \"ops.\" }}\n[[key]]\nname = \"ops.\"\nalgorithm = \"hmac-sha256\"\n{secret}[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n")
    };
    refused_at(&[
        (
            &pdns("api_key_env = ‸\"1PDNS\""),
            "provider.api_key_env \"1PDNS\": expected an environment variable's name",
        ),
        (
            &pdns("api_key_env = ‸\"PDNS-KEY\""),
            "expected an environment variable's name",
        ),
        (
            &pdns("api_key_env = ‸\"\""),
            "provider.api_key_env is empty",
        ),
        (
            &pdns("api_key = \"k\", api_key_env = ‸\"PDNS_KEY\""),
            "give the API key once: api_key_file, api_key_env or api_key, not two",
        ),
        (
            &pdns("api_key_file = \"/k\", api_key_env = ‸\"PDNS_KEY\""),
            "not two",
        ),
        (
            &pdns("server_id = \"localhost\", token_env = ‸\"T\""),
            "`token_env` does not apply to the powerdns provider",
        ),
        (
            &rfc("secret_env = ‸\"OPS KEY\"\n"),
            "key.secret_env \"OPS KEY\": expected an environment variable's name",
        ),
        (
            &rfc("secret = \"c2VjcmV0\"\nsecret_env = ‸\"OPS_KEY\"\n"),
            "give the secret once: secret_env or secret, not both",
        ),
        (
            &rfc("‸secret_envs = \"OPS_KEY\"\n"),
            "unknown field `secret_envs`",
        ),
    ]);

    let unset = "CUTOVER_TEST_SURELY_UNSET_7F3A";
    let text = pdns(&format!("api_key_env = ‸\"{unset}\""));
    let (line, column, text) = marked(&text);
    let file = MigrationFile::parse(&text, "m.toml").expect("a variable's name parses");
    match &file.provider {
        ProviderSpec::Powerdns { api_key, .. } => assert_eq!(
            api_key,
            &cutover_migrate::provider::Secret::Env(unset.into())
        ),
        other => panic!("expected powerdns, saw {other:?}"),
    }
    assert!(file.spots.inline_secrets.is_empty(), "{:?}", file.spots);
    assert!(file.spots.local_files.is_empty(), "{:?}", file.spots);
    let refusals: Vec<String> = file
        .env_refusals()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        refusals,
        vec![format!("m.toml:{line}:{column}: provider.api_key_env: the environment variable {unset} is not set: expected the secret in it")],
        "the unset variable is refused at its name"
    );
    let through_the_api: Vec<String> = file
        .env_names_through_the_api()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        through_the_api.len() == 1
            && through_the_api[0]
                .starts_with(&format!("m.toml:{line}:{column}: provider.api_key_env: "))
            && through_the_api[0].contains("server's environment"),
        "a file sent through the API may name no variable: {through_the_api:?}"
    );

    // A variable this process has (the test runner always has PATH) is not
    // refused, and its value is in no error or debug form.
    let file = MigrationFile::parse(&rfc("secret_env = \"PATH\"\n"), "m.toml").expect("parses");
    assert!(file.env_refusals().is_empty(), "PATH is set");
    let path = std::env::var("PATH").expect("PATH");
    assert!(
        !format!("{file:?}").contains(&path),
        "the value is not in the Debug form"
    );
    assert_eq!(
        cutover_migrate::file::redact(&rfc("secret_env = \"PATH\"\n")),
        rfc("secret_env = \"PATH\"\n"),
        "a variable's name is not a secret: shown as written"
    );
}

/// `[verify] locations` and `quorum`: the default is the local process
/// alone, every location must agree; a list and a number are kept, and the
/// plan names the locations.
#[test]
fn verify_locations_and_quorum_are_read_and_named_in_the_plan() {
    let head = "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n";
    let plain = MigrationFile::parse(head, "m.toml").expect("parses");
    assert!(plain.verify.local_only(), "expected local only by default");
    assert_eq!(
        plain.verify.quorum, None,
        "expected every location by default"
    );
    assert_eq!(plain.verify.from_where(), None);
    let text = format!("{head}[verify]\nlocations = [\"local\", \"fra1\", \"nyc1\"]\nquorum = 2\n");
    let file = MigrationFile::parse(&text, "m.toml").expect("parses");
    assert_eq!(
        file.verify.locations,
        cutover_migrate::file::Locations::Listed(vec![
            "local".into(),
            "fra1".into(),
            "nyc1".into()
        ])
    );
    assert_eq!(file.verify.quorum, Some(2));
    assert_eq!(file.verify.remote_locations(), ["fra1", "nyc1"]);
    assert_eq!(
        file.verify.from_where().as_deref(),
        Some("from local, fra1, nyc1 (at least 2 must agree)")
    );
    let all = MigrationFile::parse(&format!("{head}[verify]\nlocations = \"all\"\n"), "m.toml")
        .expect("parses");
    assert_eq!(all.verify.locations, cutover_migrate::file::Locations::All);
}
