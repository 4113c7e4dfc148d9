//! Migrations of several zones: the file's forms (`zones = [...]`,
//! `[[zone]]` tables, `zones = "*"`) and their refusals at file:line:column;
//! the planner's one timeline over every zone (the longest TTL of any zone,
//! one switch step per provider, warnings named with their zone); and the
//! runner over cutover's store on the injected clock: every zone moved,
//! every zone restored by a rollback, and a zone a conflict stopped told
//! apart from the zones changed before it.

mod support;

use cutover_migrate::file::MigrationFile;
use cutover_migrate::plan::{plan_zones, refuse_zones, render, StepKind, Warning};
use cutover_migrate::provider::{BuildContext, ProviderSpec};
use cutover_migrate::routed::{build_for, Routed};
use cutover_migrate::{
    Clock, Effects, ManualClock, Migrations, NoFlusher, NoMail, Observations, State,
};
use cutover_provider::{EmbeddedProvider, Provider};
use cutover_store::Store;
use cutover_zone::zonefile::{parse_str, rdata_to_text};
use cutover_zone::{Name, RecordType, Zone};
use support::{t0, ScriptedChecks};

/// A zone `origin` whose `www` holds 192.0.2.10 at `ttl` (and, in
/// `extra`, more records).
fn zone(origin: &str, ttl: u32, extra: &str) -> Zone {
    let text = format!(
        "$ORIGIN {origin}\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.53\nwww {ttl} A 192.0.2.10\n{extra}"
    );
    parse_str(&text, "z", None).expect("zone").zone
}

/// Parses a file expected to parse.
fn file(text: &str) -> MigrationFile {
    MigrationFile::parse(text, "m.toml").unwrap_or_else(|e| panic!("the file parses: {e}"))
}

#[test]
fn a_file_names_zones_by_list_by_tables_or_all_of_its_provider() {
    let one = file("version = 1\nzone = \"example.com.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.7\"\n");
    assert_eq!(one.zones.len(), 1, "one zone: {:?}", one.zones);
    assert!(!one.many_zones(), "one zone is not many");

    let listed = file("version = 1\nzones = [\"a.example.\", \"b.example\"]\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.7\"\n");
    let names: Vec<String> = listed.zones.iter().map(|z| z.name.to_string()).collect();
    assert_eq!(
        names,
        ["a.example.", "b.example."],
        "listed zones, made absolute"
    );
    assert_eq!(listed.zone.to_string(), "a.example.", "the first is `zone`");
    assert_eq!(
        listed.providers,
        vec![ProviderSpec::Embedded],
        "one shared provider"
    );
    assert_eq!(
        (listed.zones[1].spot.line, listed.zones[1].spot.column),
        (2, 24),
        "each listed zone keeps its place"
    );

    let mixed = file("version = 1\nzones = [\"a.example.\"]\nprovider = { kind = \"embedded\" }\n[[zone]]\nname = \"k.example.\"\nprovider = { kind = \"rfc2136\", server = \"127.0.0.1:5353\", key = \"ops.\", key_file = \"/k\" }\n[[zone]]\nname = \"b.example.\"\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.7\"\n");
    let of: Vec<(String, usize)> = mixed
        .zones
        .iter()
        .map(|z| (z.name.to_string(), z.provider))
        .collect();
    assert_eq!(
        of,
        [
            ("a.example.".to_string(), 0),
            ("k.example.".to_string(), 1),
            ("b.example.".to_string(), 0)
        ],
        "a [[zone]] without a provider takes the file's"
    );
    assert_eq!(mixed.providers.len(), 2, "{:?}", mixed.providers);
    assert_eq!(mixed.providers[1].kind(), "rfc2136");

    let all = file("version = 1\nzones = \"*\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.7\"\n");
    assert!(all.every_zone.is_some() && all.zones.is_empty(), "{all:?}");
    // The providers that list their zones: PowerDNS's API, Route 53.
    for provider in [
        "{ kind = \"powerdns\", url = \"http://127.0.0.1:8081\", api_key = \"k\" }",
        "{ kind = \"cloud\", service = \"route53\", access_key_id = \"a\", secret_access_key = \"s\" }",
    ] {
        let listed = file(&format!("version = 1\nzones = \"*\"\nprovider = {provider}\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.7\"\n"));
        assert!(listed.every_zone.is_some(), "{provider}: {listed:?}");
    }
    let mut all = all;
    all.with_zones(vec![
        Name::from_ascii("b.example.").unwrap(),
        Name::from_ascii("a.example.").unwrap(),
    ])
    .expect("listed");
    assert_eq!(all.zone.to_string(), "a.example.");
    assert_eq!(all.zones.len(), 2);
    let mut none = file("version = 1\nzones = \"*\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.7\"\n");
    let e = none.with_zones(Vec::new()).expect_err("no zone listed");
    assert!(
        e.to_string().starts_with("m.toml:2:9: ") && e.to_string().contains("holds no zone"),
        "{e}"
    );
}

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

#[test]
fn every_new_key_is_refused_at_its_place() {
    let moves = "[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.7\"\n";
    let embedded = "provider = { kind = \"embedded\" }\n";
    let rfc = "provider = { kind = \"rfc2136\", server = \"127.0.0.1:5353\", key = \"ops.\", key_file = \"/k\" }\n";
    let cases: Vec<(String, &str)> = vec![
        (format!("version = 1\nzone = \"a.example.\"\nzones = ‸[\"b.example.\"]\n{embedded}{moves}"), "`zones` and `zone` (line 2) both name zones"),
        (format!("version = 1\nzones = ‸[]\n{embedded}{moves}"), "`zones` is empty"),
        (format!("version = 1\nzones = ‸[\"a.example.\", 7]\n{embedded}{moves}"), "7 is not a zone's name"),
        (format!("version = 1\nzones = ‸7\n{embedded}{moves}"), "expected a list of zones"),
        (format!("version = 1\nzones = [\"a.example.\", ‸\"A.example\"]\n{embedded}{moves}"), "A.example. is already named at line 2: name each zone once"),
        (format!("version = 1\nzones = [\"a.example.\", ‸\"a b\"]\n{embedded}{moves}"), "is not a domain name"),
        (format!("version = 1\nzones = [‸\".\"]\n{embedded}{moves}"), "the root zone cannot be migrated"),
        (format!("version = 1\n[[zone]]\nname = \"a.example.\"\n{embedded}‸color = \"red\"\n{moves}"), "unknown field `color`"),
        (format!("version = 1\n‸[[zone]]\nprovider = {{ kind = \"embedded\" }}\n{moves}"), "missing field `name`"),
        (format!("version = 1\n[[zone]]\nname = ‸\"a.example.\"\n{moves}"), "[[zone]] a.example.: expected `provider = { kind = … }` in this table"),
        (format!("version = 1\nzones = [‸\"a.example.\"]\n{moves}"), "expected `provider = { kind = \"embedded\" }`"),
        (format!("version = 1\nprovider = ‸{{ kind = \"embedded\" }}\n[[zone]]\nname = \"a.example.\"\n{embedded}{moves}"), "this `provider` is used by no zone"),
        (format!("version = 1\n[[zone]]\nname = \"a.example.\"\nprovider = {{ kind = \"embedded\", url = ‸\"http://x\" }}\n{moves}"), "`url` does not apply to the embedded provider"),
        (format!("version = 1\nzones = ‸\"*\"\n{rfc}{moves}"), "zones = \"*\": the rfc2136 provider cannot list the zones it holds"),
        (format!("version = 1\nzones = ‸\"*\"\nprovider = {{ kind = \"cloud\", service = \"cloudflare\", token = \"t\", nameservers = [\"127.0.0.1:53\"] }}\n{moves}"), "zones = \"*\": the cloud service \"cloudflare\" cannot list the zones it holds"),
        (format!("version = 1\nzones = ‸\"*\"\nprovider = {{ kind = \"cloud\", service = \"route53\", access_key_id = \"a\", secret_access_key = \"s\", zone_id = \"Z1\" }}\n{moves}"), "`zone_id` names one hosted zone"),
        (format!("version = 1\nzones = \"*\"\n{embedded}‸[[zone]]\nname = \"a.example.\"\n{moves}"), "already takes every zone of the provider"),
        (format!("version = 1\nzones = \"*\"\n{embedded}[[move]]\nname = ‸\"www.a.example.\"\ntype = \"A\"\nvalues = [\"198.51.100.7\"]\n"), "takes moves by address only"),
        (format!("version = 1\nzones = [\"a.example.\", \"b.example.\"]\n{embedded}[[move]]\nname = ‸\"www\"\ntype = \"A\"\nvalues = [\"198.51.100.7\"]\n"), "with several zones, write the name absolute"),
        (format!("version = 1\nzones = [\"a.example.\", \"b.example.\"]\n{embedded}[[move]]\nname = ‸\"www.c.example.\"\ntype = \"A\"\nvalues = [\"198.51.100.7\"]\n"), "is in none of the migration's zones (a.example., b.example.)"),
        (format!("version = 1\nzones = [\"a.example.\"]\n{embedded}[[zone]]\nname = \"k.example.\"\n{rfc}[[key]]\nname = ‸\"other.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n{moves}"), "[[key]] \"other.\" is the key of no rfc2136 provider"),
        (format!("version = 1\n{moves}"), "expected the zone"),
        (format!("version = 1\n[[zone]]\nname = \"a.example.\"\n{embedded}authorities = ‸[]\n{moves}"), "[[zone]] a.example.: `authorities` is empty"),
        (format!("version = 1\n[[zone]]\nname = \"a.example.\"\n{embedded}authorities = [\"127.0.0.1:53\", ‸\"127.0.0.1\"]\n{moves}"), "127.0.0.1:53 is listed twice"),
    ];
    let mut wrong = Vec::new();
    for (text, fragment) in &cases {
        let (line, column, text) = if text.contains('‸') {
            marked(text)
        } else {
            (1, 1, text.clone())
        };
        let e = match MigrationFile::parse(&text, "m.toml") {
            Ok(f) => panic!("expected the file to be refused, it parsed: {f:?}\nin:\n{text}"),
            Err(e) => e.to_string(),
        };
        let place = format!("m.toml:{line}:{column}: ");
        if !(e.starts_with(&place) && e.contains(fragment)) {
            wrong.push(format!(
                "expected {place}…{fragment}…, saw {e}\nin:\n{text}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// Three zones moving 192.0.2.10 (b's www with TTL 1 day, a CNAME to it in
/// c), and d, where nothing moves; a and b in the store, c through Knot.
const MANY: &str = "version = 1\nzones = [\"a.example.\", \"b.example.\", \"d.example.\"]\nprovider = { kind = \"embedded\" }\n[[zone]]\nname = \"c.example.\"\nprovider = { kind = \"rfc2136\", server = \"127.0.0.1:5353\", key = \"ops.\", key_file = \"/k\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.7\"\n[schedule]\nmargin = 60\nobserve = \"1h\"\n[verify]\nauthorities = [\"127.0.0.1:5300\"]\nresolvers = [\"127.0.0.1:5301\"]\n";

/// The zones of [`MANY`].
fn many_zones() -> Vec<Zone> {
    let d = "$ORIGIN d.example.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.99\n";
    vec![
        zone("a.example.", 600, ""),
        zone("b.example.", 86_400, ""),
        zone("c.example.", 300, "alias CNAME www\n"),
        parse_str(d, "z", None).expect("zone").zone,
    ]
}

#[test]
fn one_timeline_waits_for_the_longest_ttl_of_any_zone_with_a_switch_per_provider() {
    let file = file(MANY);
    let zones = many_zones();
    refuse_zones(&file, &zones, t0()).expect("nothing refused");
    let plan = plan_zones(&file, &zones, &Observations::default(), t0()).expect("plan");

    let planned: Vec<&str> = plan.zones.iter().map(|z| z.zone.as_str()).collect();
    assert_eq!(
        planned,
        ["a.example.", "b.example.", "c.example."],
        "the zones where something moves (d holds no moving address)"
    );
    assert_eq!(plan.providers.len(), 2, "{:?}", plan.providers);
    assert_eq!(
        plan.changes.len(),
        3,
        "www in a, b and c: {:?}",
        plan.changes
    );
    assert!(
        plan.changes
            .iter()
            .all(|c| c.zone.as_deref() == c.name.strip_prefix("www.")),
        "each change names its zone: {:?}",
        plan.changes
    );

    // The wait: b's day-long TTL, plus the margin, for every zone at once.
    let wait = plan
        .steps
        .iter()
        .find(|s| s.kind == StepKind::WaitForCaches)
        .expect("a wait");
    assert_eq!(wait.after_previous, 86_400 + 60, "{wait:?}");
    assert!(
        wait.why.contains("www.b.example. A has TTL 86400s"),
        "the wait says which zone's record sets it: {}",
        wait.why
    );

    // One switch per provider, at the same time, each naming its zones.
    let switches: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Switch)
        .collect();
    assert_eq!(switches.len(), 2, "{switches:?}");
    assert_eq!(switches[0].provider, Some(0));
    assert_eq!(switches[1].provider, Some(1));
    assert_eq!(switches[0].at, switches[1].at, "both at the switch time");
    assert_eq!(switches[0].touches.len(), 1, "{:?}", switches[0].touches);
    assert_eq!(switches[0].touches[0].provider, "cutover's store");
    assert_eq!(switches[0].touches[0].zones, ["a.example.", "b.example."]);
    assert!(
        switches[1].touches[0]
            .provider
            .starts_with("RFC 2136 at 127.0.0.1:5353")
            && switches[1].touches[0].zones == ["c.example."],
        "{:?}",
        switches[1].touches
    );
    assert!(
        switches[0].what.contains("one change set per zone"),
        "the store's switch says it is atomic per zone: {}",
        switches[0].what
    );
    // Lowering, verification and restoring touch every zone of every provider.
    for kind in [
        StepKind::LowerTtls,
        StepKind::VerifySwitch,
        StepKind::RestoreTtls,
    ] {
        let step = plan.steps.iter().find(|s| s.kind == kind).expect("step");
        let zones: usize = step.touches.iter().map(|t| t.zones.len()).sum();
        assert_eq!(zones, 3, "{kind:?} touches every zone: {:?}", step.touches);
    }

    // Warnings of a zone are named with it.
    let texts: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert!(
        texts
            .iter()
            .any(|w| w.starts_with("c.example.: alias.c.example. CNAME leads to www.c.example.")),
        "c's CNAME warning, prefixed with c: {texts:?}"
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| matches!(w, Warning::NothingMoves { zone } if zone == "d.example.")),
        "d, where nothing moves, is named: {texts:?}"
    );

    // The text says which zones and providers each step touches.
    let text = render(&plan);
    assert!(
        text.starts_with("Migration of 3 zones through cutover's store (2 zones) and RFC 2136"),
        "{text}"
    );
    assert!(
        text.contains("zones: cutover's store: a.example., b.example.\n"),
        "the store's switch names its zones:\n{text}"
    );
    // The JSON too.
    let json = serde_json::to_value(&plan).expect("json");
    assert_eq!(
        json["steps"][4]["touches"][0]["zones"][1], "b.example.",
        "{json}"
    );
}

#[test]
fn an_address_that_no_zone_holds_is_refused_at_its_move() {
    let text = MANY.replace("from = \"192.0.2.10\"", "from = \"192.0.2.11\"");
    let e = refuse_zones(&file(&text), &many_zones(), t0()).expect_err("refused");
    assert!(
        e.to_string()
            .starts_with("m.toml:8:8: no A or AAAA record in any of the 4 zones holds 192.0.2.11"),
        "{e}"
    );
}

/// The store with the zones a, b and c (each www at 192.0.2.10).
fn store_with(db: &std::path::Path, zones: &[&str]) -> Store {
    let store = Store::open(db).expect("store");
    for (i, origin) in zones.iter().enumerate() {
        store
            .create_zone(&zone(origin, 300 * (i as u32 + 1), ""), "test")
            .expect("create");
    }
    store
}

/// The A values and TTL of www in `origin`.
fn www(store: &Store, origin: &str) -> (u32, Vec<String>) {
    let origin = Name::from_ascii(origin).unwrap();
    let zone = store.zone(&origin).expect("read").expect("zone");
    let set = zone
        .get(
            &Name::from_ascii("www")
                .unwrap()
                .append_domain(&origin)
                .unwrap(),
            RecordType::A,
        )
        .expect("www A");
    (set.ttl, set.rdatas().iter().map(rdata_to_text).collect())
}

#[test]
fn the_runner_moves_every_zone_of_the_store_and_a_rollback_restores_every_zone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("cutover.db");
    let names = ["a.example.", "b.example.", "c.example."];
    let store = store_with(&db, &names);
    let text = "version = 1\nzones = [\"a.example.\", \"b.example.\", \"c.example.\"]\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.7\"\n[schedule]\nobserve = \"1h\"\n[verify]\nauthorities = [\"127.0.0.1:5300\"]\n";
    let parsed = file(text);
    let context = BuildContext {
        store: Some(db.clone()),
    };
    let provider: std::sync::Arc<dyn Provider> =
        std::sync::Arc::from(build_for(&parsed, &context).expect("the store"));
    let zones: Vec<Zone> = names
        .iter()
        .map(|n| provider.read(&Name::from_ascii(n).unwrap()).expect("read"))
        .collect();
    let plan = plan_zones(&parsed, &zones, &Observations::default(), t0()).expect("plan");
    let migrations = Migrations::open(&db).expect("open");
    let checks = ScriptedChecks::new(provider.clone());
    let clock = ManualClock::new(t0());
    let fx = Effects {
        provider: &*provider,
        checks: &checks,
        flusher: &NoFlusher,
        mail: &NoMail,
        clock: &clock,
    };
    let run = |id: i64, until: &dyn Fn(State) -> bool| {
        for _ in 0..40 {
            let report = migrations.tick(id, &fx).expect("tick");
            if until(report.state) {
                return report;
            }
            let due = report
                .next_due
                .unwrap_or_else(|| panic!("stuck: {report:?}"));
            if due > clock.now() {
                clock.set(due);
            }
        }
        panic!("the migration did not get there in 40 ticks");
    };

    let id = migrations
        .start("m.toml", text, &plan, t0())
        .expect("start");
    // The wait counts from the longest TTL of any zone: c's 900 s.
    let wait = plan
        .steps
        .iter()
        .find(|s| s.kind == StepKind::WaitForCaches)
        .expect("wait");
    assert_eq!(wait.after_previous, 900 + 60, "{wait:?}");
    let report = run(id, &|s| s == State::Observing);
    let waited = clock.now().as_second() - t0().as_second();
    assert!(
        waited >= 900 + 60 + 61,
        "verified {waited}s after the lowering: {report:?}"
    );
    assert!(
        report.did.iter().any(|s| s.kind == "verify_switch"),
        "verified: {report:?}"
    );
    for name in names {
        assert_eq!(
            www(&store, name),
            (60, vec!["198.51.100.7".to_string()]),
            "{name} switched at the low TTL"
        );
    }
    let detail = migrations.show(id).expect("show");
    let verify = detail
        .steps
        .iter()
        .find(|s| s.kind == "verify_switch")
        .expect("verify step");
    let asked: Vec<&str> = verify.evidence["survey"]["authorities"]
        .as_array()
        .expect("authorities")
        .iter()
        .filter_map(|a| a["server"].as_str())
        .collect();
    assert_eq!(
        asked,
        [
            "127.0.0.1:5300 for a.example.",
            "127.0.0.1:5300 for b.example.",
            "127.0.0.1:5300 for c.example."
        ],
        "every zone verified on its authorities"
    );
    assert_eq!(
        detail
            .timeline
            .iter()
            .filter(|e| e.kind == StepKind::Switch)
            .count(),
        1,
        "one provider, one switch"
    );

    // A rollback restores every zone.
    migrations
        .rollback(id, clock.now(), "test")
        .expect("rollback");
    let report = run(id, &|s| s == State::RolledBack);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            www(&store, name),
            (300 * (i as u32 + 1), vec!["192.0.2.10".to_string()]),
            "{name} back at its address and TTL: {report:?}"
        );
    }
    let audit = migrations.audit(id).expect("audit");
    assert_eq!(
        audit.len(),
        3 * 4,
        "three RRsets, each lowered, switched, reverted, restored: {audit:?}"
    );
    assert!(audit.iter().all(|a| a.status == "applied"), "{audit:?}");
}

#[test]
fn a_conflict_in_one_providers_zone_names_the_zones_switched_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db_a, db_k) = (dir.path().join("a.db"), dir.path().join("k.db"));
    let store_a = store_with(&db_a, &["a.example.", "b.example."]);
    let store_k = store_with(&db_k, &["k.example."]);
    let text = "version = 1\nzones = [\"a.example.\", \"b.example.\"]\nprovider = { kind = \"embedded\" }\n[[zone]]\nname = \"k.example.\"\nprovider = { kind = \"rfc2136\", server = \"127.0.0.1:5353\", key = \"ops.\", key_file = \"/k\" }\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.7\"\n[schedule]\nobserve = \"1h\"\n[verify]\nauthorities = [\"127.0.0.1:5300\"]\n";
    let parsed = file(text);
    // The second provider stands in for the RFC 2136 server: another store.
    let routed = Routed::new(vec![
        (
            vec![
                Name::from_ascii("a.example.").unwrap(),
                Name::from_ascii("b.example.").unwrap(),
            ],
            Box::new(EmbeddedProvider::new(std::sync::Arc::new(
                Store::open(&db_a).unwrap(),
            ))) as Box<dyn Provider>,
        ),
        (
            vec![Name::from_ascii("k.example.").unwrap()],
            Box::new(EmbeddedProvider::new(std::sync::Arc::new(
                Store::open(&db_k).unwrap(),
            ))),
        ),
    ]);
    let provider: std::sync::Arc<dyn Provider> = std::sync::Arc::new(routed);
    let zones: Vec<Zone> = ["a.example.", "b.example.", "k.example."]
        .iter()
        .map(|n| provider.read(&Name::from_ascii(n).unwrap()).expect("read"))
        .collect();
    let plan = plan_zones(&parsed, &zones, &Observations::default(), t0()).expect("plan");
    let migrations = Migrations::open(&db_a).expect("open");
    let checks = ScriptedChecks::new(provider.clone());
    let clock = ManualClock::new(t0());
    let fx = Effects {
        provider: &*provider,
        checks: &checks,
        flusher: &NoFlusher,
        mail: &NoMail,
        clock: &clock,
    };
    let id = migrations
        .start("m.toml", text, &plan, t0())
        .expect("start");
    let mut edited = false;
    for _ in 0..40 {
        let report = migrations.tick(id, &fx).expect("tick");
        if report.state.is_final() {
            break;
        }
        if report.state == State::Waiting && !edited {
            // Someone changes b's www between the lowering and the switch.
            store_a
                .edit(
                    &Name::from_ascii("b.example.").unwrap(),
                    "someone",
                    |z: &mut Zone| {
                        let www = Name::from_ascii("www.b.example.").unwrap();
                        let mut set = z.get(&www, RecordType::A).cloned().unwrap();
                        set.ttl = 42;
                        z.set_rrset(&www, RecordType::A, set)
                            .map_err(|e| e.to_string())
                    },
                )
                .expect("edit");
            edited = true;
        }
        if let Some(due) = report.next_due.filter(|d| *d > clock.now()) {
            clock.set(due);
        }
    }
    let status = migrations.status(id).expect("status");
    assert_eq!(status.state, State::Failed, "{status:?}");
    assert!(edited, "the test edited b while the migration waited");
    let reason = status.reason.unwrap_or_default();
    assert!(
        reason.contains("www.b.example. A was changed by someone else")
            && reason.contains("1 of 2 zones were changed before: a.example."),
        "{reason}"
    );
    assert_eq!(
        www(&store_a, "a.example."),
        (60, vec!["198.51.100.7".to_string()]),
        "a, before b in the store's switch, was switched"
    );
    assert_eq!(
        www(&store_k, "k.example."),
        (60, vec!["192.0.2.10".to_string()]),
        "k, whose provider's switch comes after, was not"
    );
    let audit = migrations.audit(id).expect("audit");
    let switch: Vec<(&str, &str)> = audit
        .iter()
        .filter(|a| a.step == "switch")
        .map(|a| (a.name.as_str(), a.status.as_str()))
        .collect();
    assert_eq!(
        switch,
        [("www.a.example.", "applied"), ("www.b.example.", "refused")],
        "the audit says which zone was switched and which was refused"
    );
}
