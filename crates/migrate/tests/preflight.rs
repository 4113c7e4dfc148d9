//! The preflight: what a file asks that the zone, the servers or the other
//! migrations make impossible is refused at its line and column, before
//! anything changes. Pure: the zone and the observations are made up here
//! (the binary's tests show the same refusals end to end).

use cutover_migrate::observe::{Answered, ServerView, Survey};
use cutover_migrate::plan::preflight::{hazards, Active};
use cutover_migrate::{plan, MigrationFile, Observations, PlanError};
use cutover_zone::zonefile::parse_str;
use cutover_zone::Zone;
use jiff::Timestamp;

/// www and the apex on 192.0.2.10 (www also on 2001:db8::10), a mail host
/// on .25, shop a CNAME to www, ext a CNAME out of the zone, txt only TXT,
/// low with a TTL of 30 s, sub delegated (ns.sub its glue, deep.sub
/// occluded).
const ZONE: &str = r#"
$ORIGIN example.com.
$TTL 3600
@       IN SOA  ns1.example.com. hostmaster.example.com. 2026112601 3600 600 1209600 300
        IN NS   ns1
        IN A    192.0.2.10
ns1     IN A    192.0.2.53
www 300 IN A    192.0.2.10
        IN AAAA 2001:db8::10
mail    IN A    192.0.2.25
shop    IN CNAME www
ext     IN CNAME www.example.net.
txt     IN TXT  "hello"
low  30 IN A    192.0.2.30
sub     IN NS   ns.sub
ns.sub  IN A    192.0.2.77
deep.sub IN A   192.0.2.78
*.wild  IN A    192.0.2.10
"#;

/// The zone.
fn zone() -> Zone {
    parse_str(ZONE, "z", None).expect("zone").zone
}

/// A fixed now.
fn now() -> Timestamp {
    "2026-03-01T00:00:00Z".parse().expect("time")
}

/// The head: www and the apex move from .10 to 198.51.100.20 (lines 1-6);
/// `[verify]` follows at line 7 when `tail` starts with it.
const HEAD: &str = "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n";

/// The line and column of the `‸` in `text`, and the text without it.
fn marked(text: &str) -> (usize, usize, String) {
    let at = text.find('‸').expect("the case marks where the refusal is");
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line, column, text.replace('‸', ""))
}

/// The plan of `text` is refused at its `‸` with the fragment.
fn refused_at(text: &str, fragment: &str) {
    let (line, column, text) = marked(text);
    let file = MigrationFile::parse(&text, "m.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    let err = match plan(&file, &zone(), &Observations::default(), now()) {
        Ok(_) => {
            panic!("expected a refusal at {line}:{column} ({fragment}), the plan was made:\n{text}")
        }
        Err(e) => e,
    };
    assert!(matches!(err, PlanError::Refused(_)), "{err}");
    let place = format!("m.toml:{line}:{column}: ");
    let message = err.to_string();
    assert!(
        message.starts_with(&place) && message.contains(fragment),
        "expected {place}…{fragment}…, saw {message}\nin:\n{text}"
    );
    assert!(
        cutover_migrate::plan::refuse(&file, &zone(), now()).is_err(),
        "refuse() says the same before any probe"
    );
}

/// The plan of `text` is made.
fn planned(text: &str) -> cutover_migrate::Plan {
    let file = MigrationFile::parse(text, "m.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    plan(&file, &zone(), &Observations::default(), now()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The truthfulness issue's case: no resolver, and a check that needs one
/// to look its name up after the switch.
#[test]
fn a_check_looked_up_with_no_resolver_is_refused() {
    refused_at(
        &format!("{HEAD}[[check]]\nhttp = ‸\"http://www.example.com/healthz\"\n[verify]\nauthorities = [\"192.0.2.53\"]\nresolvers = []\n"),
        "www.example.com is looked up through verify.resolvers after the switch, and `resolvers = []` (line 11) lists none",
    );
    // Naming a new address needs no lookup.
    planned(&format!("{HEAD}[[check]]\nhttp = \"http://198.51.100.20/healthz\"\n[verify]\nauthorities = [\"192.0.2.53\"]\nresolvers = []\n"));
}

/// Every way a check can be unevaluable, each at its place.
#[test]
fn checks_that_could_never_pass_are_refused_at_their_place() {
    let cases: &[(String, &str)] = &[
        (format!("{HEAD}[[check]]\ntcp = ‸\"mail.example.com:25\"\n"), "mail.example.com does not move: its A record stays 192.0.2.25"),
        (format!("{HEAD}[[check]]\nhttp = ‸\"https://www.example.org/\"\n"), "www.example.org is not in the zone example.com."),
        (format!("{HEAD}[[check]]\nhttp = ‸\"http://ext.example.com/\"\n"), "ext.example.com leads to www.example.net., outside the zone, through CNAMEs this migration does not change"),
        (format!("{HEAD}[[check]]\ntcp = ‸\"txt.example.com:80\"\n"), "txt.example.com has no A or AAAA record after the switch"),
        (format!("{HEAD}[[check]]\ntcp = ‸\"nowhere.example.com:80\"\n"), "nowhere.example.com has no A or AAAA record"),
        (format!("{HEAD}[[check]]\nhttp = ‸\"https://198.51.100.20/\"\n"), "TLS checks the certificate against a name"),
        (format!("{HEAD}[[check]]\ntcp = ‸\"192.0.2.10:80\"\n"), "names the address 192.0.2.10, which no move gives"),
        (format!("{HEAD}[[check]]\ntcp = \"www.example.com:80\"\naddress = ‸\"198.51.100.99\"\n"), "address 198.51.100.99 is not one www.example.com has after the switch (198.51.100.20, 2001:db8::10)"),
        (format!("{HEAD}[[check]]\ntcp = \"example.com:80\"\naddress = ‸\"2001:db8::10\"\n"), "(example.com has no AAAA record after the switch)"),
        (format!("{HEAD}[[move]]\nfrom = \"192.0.2.25\"\nto = \"198.51.100.25\"\n‸[[check]]\ntcp = \"www.example.com:80\"\n"), "pinned to every new address of the moves, and www.example.com does not lead to 198.51.100.25"),
        ("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = \"txt\"\ntype = \"TXT\"\nvalues = ['\"bye\"']\n‸[[check]]\ntcp = \"www.example.com:80\"\n".to_string(), "the moves give none"),
        ("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"2001:db8::10\"\nto = \"2001:db8::20\"\n[[check]]\ntcp = ‸\"www.example.com:80\"\n".to_string(), "its A record stays 192.0.2.10 (only its AAAA moves, and a check looks A up first)"),
    ];
    for (text, fragment) in cases {
        refused_at(text, fragment);
    }
    // What can pass is planned: a CNAME to a moving name, a wildcard that
    // moves, the new address itself, a pin the name leads to.
    planned(&format!("{HEAD}[[check]]\nhttp = \"http://shop.example.com/\"\n[[check]]\ntcp = \"a.wild.example.com:80\"\n[[check]]\ntcp = \"198.51.100.20:80\"\n[[check]]\nhttp = \"https://www.example.com/\"\naddress = \"198.51.100.20\"\n"));
}

/// Records at or below a delegation are answered with a referral: a change
/// there could never be verified, nor a check of a name there.
#[test]
fn what_a_delegation_answers_for_is_refused() {
    refused_at(
        "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = ‸\"ns.sub\"\ntype = \"A\"\nvalues = [\"198.51.100.77\"]\n",
        "ns.sub.example.com. A is below the delegation at sub.example.com.: the zone's servers answer for it with a referral",
    );
    refused_at(
        "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = ‸\"192.0.2.78\"\nto = \"198.51.100.78\"\n",
        "deep.sub.example.com. A is below the delegation at sub.example.com.",
    );
    refused_at(
        "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = ‸\"sub\"\ntype = \"NS\"\nvalues = [\"ns.example.net.\"]\n",
        "sub.example.com. NS is at the delegation at sub.example.com.",
    );
    refused_at(
        &format!("{HEAD}[[check]]\ntcp = ‸\"deep.sub.example.com:80\"\n"),
        "deep.sub.example.com is below the delegation at sub.example.com.: its addresses come from that zone's own servers",
    );
}

/// A TTL the move would raise is refused at `ttl.during`, or at the move
/// when the default is what raises it.
#[test]
fn a_lowering_that_would_raise_a_ttl_is_refused() {
    refused_at(
        &format!("{HEAD}[ttl]\nduring = ‸600\n"),
        "www.example.com. A has TTL 300s, below ttl.during (600s): the move would raise it",
    );
    refused_at(
        "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nname = ‸\"low\"\ntype = \"A\"\nvalues = [\"198.51.100.30\"]\n[ttl]\nafter = 3600\n",
        "low.example.com. A has TTL 30s, below ttl.during (60s, the default)",
    );
    let ok = planned(&format!("{HEAD}[ttl]\nduring = 300\n"));
    assert_eq!(ok.low_ttl, 300, "a TTL already at the low value is kept");
}

/// Refusals that only the zone can tell, which used to come without a
/// place: nothing holds the address, an explicit move over one by address.
#[test]
fn moves_the_zone_cannot_carry_are_refused_at_the_move() {
    refused_at(
        "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = ‸\"203.0.113.9\"\nto = \"198.51.100.20\"\n",
        "no A or AAAA record in example.com. holds 203.0.113.9",
    );
    refused_at(
        &format!("{HEAD}[[move]]\nname = ‸\"www\"\ntype = \"A\"\nvalues = [\"198.51.100.21\"]\n"),
        "www.example.com. A already moves by address (holds 192.0.2.10)",
    );
    refused_at(
        &format!("{HEAD}[schedule]\nswitch_at = ‸\"2031-01-01T00:00:00Z\"\n"),
        "more than 366d ahead",
    );
}

/// One authority's view: its serial, and www A with `ttl` or an error.
fn authority(server: &str, serial: Option<u32>, error: Option<&str>) -> ServerView {
    ServerView {
        server: server.into(),
        serial,
        answers: vec![Answered {
            name: "www.example.com.".into(),
            rtype: "A".into(),
            ttl: error.is_none().then_some(300),
            values: if error.is_none() {
                vec!["192.0.2.10".into()]
            } else {
                vec![]
            },
            error: error.map(str::to_string),
        }],
    }
}

/// What the servers say now and the other migrations: each hazard at the
/// place it concerns.
#[test]
fn hazards_name_the_server_or_migration_and_the_place() {
    let text = format!("{HEAD}[verify]\nauthorities = [\"192.0.2.53\", \"192.0.2.54\"]\nresolvers = [\"127.0.0.1:5301\"]\n");
    let file = MigrationFile::parse(&text, "m.toml").expect("file");
    let zone = zone();
    let clean = Observations::from_survey(
        Survey {
            authorities: vec![authority("192.0.2.53:53", Some(2026112601), None)],
            resolvers: vec![authority("127.0.0.1:5301", None, None)],
            problems: vec![],
        },
        now(),
    );
    let plan = plan(&file, &zone, &clean, now()).expect("plan");
    assert!(
        hazards(&file, &zone, &plan, &clean, &[]).is_empty(),
        "a clean survey and no other migration: no hazard"
    );

    let troubled = Observations::from_survey(
        Survey {
            authorities: vec![
                authority("192.0.2.53:53", Some(2026112700), None),
                authority("192.0.2.54:53", None, Some("timeout")),
            ],
            resolvers: vec![authority("127.0.0.1:5301", None, Some("timeout"))],
            problems: vec![],
        },
        now(),
    );
    let found: Vec<String> = hazards(&file, &zone, &plan, &troubled, &[])
        .iter()
        .map(ToString::to_string)
        .collect();
    let expected = [
        "m.toml:8:15: authority 192.0.2.53:53 serves serial 2026112700, newer than the provider's 2026112601: the switch would lower the serial there",
        "m.toml:8:15: authority 192.0.2.54:53 gave no SOA serial now",
        "m.toml:9:13: resolver 127.0.0.1:5301 does not answer now (timeout)",
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (seen, wanted) in found.iter().zip(expected) {
        assert!(seen.starts_with(wanted), "expected {wanted}…, saw {seen}");
    }

    let mut elsewhere = authority("192.0.2.53:53", Some(2026112601), None);
    elsewhere.answers[0].values = vec!["203.0.113.5".into()];
    let mut lost = authority("127.0.0.1:5301", None, Some("NXDOMAIN"));
    lost.serial = None;
    let other_copy = Observations::from_survey(
        Survey {
            authorities: vec![elsewhere],
            resolvers: vec![lost],
            problems: vec![],
        },
        now(),
    );
    let found: Vec<String> = hazards(&file, &zone, &plan, &other_copy, &[])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("m.toml:8:15: authority 192.0.2.53:53 serves www.example.com. A as 203.0.113.5 at the provider's own serial, where the provider holds 192.0.2.10"),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with("m.toml:9:13: resolver 127.0.0.1:5301 answers www.example.com. A with NXDOMAIN, which the provider does not hold (192.0.2.10)"),
        "{found:#?}"
    );

    let nobody = Observations::from_survey(
        Survey {
            problems: vec!["no NS address found".into()],
            ..Survey::default()
        },
        now(),
    );
    let found = hazards(&file, &zone, &plan, &nobody, &[]);
    assert!(
        found[0]
            .to_string()
            .starts_with("m.toml:8:15: no authoritative server of example.com. could be asked now (no NS address found)"),
        "{found:?}"
    );

    let other = Active {
        id: 7,
        state: "waiting",
        plan: &plan,
    };
    let found: Vec<String> = hazards(&file, &zone, &plan, &Observations::default(), &[other])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        found.iter().any(|h| h
            .starts_with("m.toml:5:8: www.example.com. A is also moved by migration 7 (waiting)")),
        "{found:#?}"
    );
}

/// A secret written in the file is a warning of the plan, at its line.
#[test]
fn an_inline_secret_is_warned_about() {
    let text = "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"rfc2136\", server = \"192.0.2.53:53\", key = \"ops.\" }\n[[key]]\nname = \"ops.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n";
    let plan = planned(text);
    let warned: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warned.iter().any(|w| w
            .starts_with("key.secret is written in the migration file (line 7)")
            && w.contains("key_file")),
        "{warned:#?}"
    );
    assert!(
        !warned
            .iter()
            .any(|w| w.contains("c2VjcmV0c2VjcmV0c2VjcmV0")),
        "{warned:#?}"
    );
}
