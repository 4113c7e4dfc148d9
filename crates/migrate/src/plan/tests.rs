//! Planner tests: every wait computation and every warning, with the time
//! passed in (a three-day plan is computed in microseconds).

use cutover_zone::zonefile::parse_str;
use jiff::Timestamp;

use super::*;
use crate::observe::{Answered, ServerView, Survey};

/// The zone every test starts from.
const ZONE: &str = r#"
$ORIGIN example.com.
$TTL 3600
@       IN SOA  ns1.example.com. hostmaster.example.com. 2026112601 3600 600 1209600 300
        IN NS   ns1
        IN NS   ns2
        IN MX   10 mail
        IN A    192.0.2.10
        IN TXT  "v=spf1 mx ip4:192.0.2.10 -all"
ns1     IN A    192.0.2.53
ns2     IN A    192.0.2.54
www 7200 IN A   192.0.2.10
        IN AAAA 2001:db8::10
mail    IN A    192.0.2.25
shop    IN CNAME www
_submission._tcp IN SRV 0 1 587 mail
"#;

/// The zone.
fn zone() -> Zone {
    parse_str(ZONE, "example.com.zone", None)
        .expect("test zone parses")
        .zone
}

/// A fixed "now".
fn now() -> Timestamp {
    "2026-03-01T00:00:00Z".parse().expect("time")
}

/// A migration file from its moves and extra tables.
fn file(body: &str) -> MigrationFile {
    let text = format!(
        "version = 1\nzone = \"example.com.\"\nprovider = {{ kind = \"embedded\" }}\n{body}"
    );
    MigrationFile::parse(&text, "m.toml").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The web move by address, with schedule margin 60 and observe 1h.
fn web(extra: &str) -> MigrationFile {
    file(&format!(
        "[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n[schedule]\nmargin = 60\nobserve = \"1h\"\n{extra}"
    ))
}

/// The step of a kind.
fn step(plan: &Plan, kind: StepKind) -> &Step {
    plan.steps
        .iter()
        .find(|s| s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} step in {:#?}", plan.steps))
}

/// Seconds between two times.
fn secs(from: Timestamp, to: Timestamp) -> i64 {
    to.as_second() - from.as_second()
}

/// A survey where one authority serves `name rtype` with `ttl`.
fn served(name: &str, rtype: &str, ttl: u32) -> Observations {
    Observations {
        at: Some(now()),
        survey: Survey {
            authorities: vec![ServerView {
                server: "ns1.example.com. 192.0.2.53:53".into(),
                serial: Some(2026112601),
                answers: vec![Answered {
                    name: name.into(),
                    rtype: rtype.into(),
                    ttl: Some(ttl),
                    values: vec![],
                    error: None,
                }],
            }],
            ..Survey::default()
        },
        ttl_floor: None,
    }
}

#[test]
fn the_wait_is_the_longest_provider_ttl_plus_the_margin() {
    let plan = plan(&web(""), &zone(), &Observations::default(), now()).expect("plan");
    let wait = step(&plan, StepKind::WaitForCaches);
    assert_eq!(
        wait.after_previous,
        7200 + 60,
        "www A has TTL 7200; margin 60"
    );
    assert_eq!(secs(now(), wait.at), 7260, "wait ends 7260 s after now");
    assert!(
        wait.why
            .contains("www.example.com. A has TTL 7200s at the provider"),
        "the wait is explained: {}",
        wait.why
    );
    let switch = step(&plan, StepKind::Switch);
    assert_eq!(
        switch.at, wait.at,
        "switch_at = earliest switches when the wait ends"
    );
    let verify = step(&plan, StepKind::VerifySwitch);
    assert_eq!(
        secs(switch.at, verify.at),
        61,
        "verification one low TTL (60) + 1 s after the switch"
    );
    let restore = step(&plan, StepKind::RestoreTtls);
    assert_eq!(secs(verify.at, restore.at), 3600, "observe 1h");
    let kinds: Vec<StepKind> = plan.steps.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        vec![
            StepKind::LowerTtls,
            StepKind::WaitForCaches,
            StepKind::VerifyNew,
            StepKind::NoteSerials,
            StepKind::Switch,
            StepKind::FlushCaches,
            StepKind::VerifySwitch,
            StepKind::Observe,
            StepKind::RestoreTtls
        ],
        "the steps in the seed's order"
    );
}

#[test]
fn a_three_day_ttl_gives_a_three_day_plan() {
    let text = ZONE.replace("www 7200 IN A", "www 259200 IN A");
    let zone = parse_str(&text, "z", None).expect("zone").zone;
    let mut f = web("");
    f.schedule.observe = 86_400;
    let plan = plan(&f, &zone, &Observations::default(), now()).expect("plan");
    let switch = step(&plan, StepKind::Switch);
    assert_eq!(
        switch.at,
        "2026-03-04T00:01:00Z".parse::<Timestamp>().expect("t"),
        "three days and the margin after now"
    );
    let restore = step(&plan, StepKind::RestoreTtls);
    assert_eq!(
        restore.at,
        "2026-03-05T00:02:01Z".parse::<Timestamp>().expect("t"),
        "switch + 61 s + 24 h"
    );
    assert_eq!(
        plan.changes
            .iter()
            .find(|c| c.name == "www.example.com.")
            .map(|c| c.final_ttl),
        Some(259_200),
        "the original TTL comes back at the end"
    );
}

#[test]
fn a_higher_ttl_served_by_an_authority_lengthens_the_wait() {
    let plan = plan(
        &web(""),
        &zone(),
        &served("www.example.com.", "A", 86_400),
        now(),
    )
    .expect("plan");
    let wait = step(&plan, StepKind::WaitForCaches);
    assert_eq!(
        wait.after_previous,
        86_400 + 60,
        "the served TTL wins over the provider's 7200"
    );
    assert!(
        wait.why.contains("ns1.example.com. 192.0.2.53:53 serves"),
        "{}",
        wait.why
    );
}

#[test]
fn a_resolver_holding_more_lengthens_the_wait() {
    let mut obs = Observations::default();
    obs.survey.resolvers.push(ServerView {
        server: "127.0.0.1:53".into(),
        serial: None,
        answers: vec![Answered {
            name: "www.example.com.".into(),
            rtype: "A".into(),
            ttl: Some(9000),
            values: vec!["192.0.2.10".into()],
            error: None,
        }],
    });
    let plan = plan(&web(""), &zone(), &obs, now()).expect("plan");
    let wait = step(&plan, StepKind::WaitForCaches);
    assert_eq!(
        wait.after_previous, 9060,
        "9000 s left in a resolver + margin"
    );
    assert!(
        wait.why.contains("resolver 127.0.0.1:53 still holds"),
        "{}",
        wait.why
    );
}

#[test]
fn a_ttl_floor_raises_the_low_ttl_and_is_warned_about() {
    let obs = Observations {
        ttl_floor: Some(300),
        ..Observations::default()
    };
    let plan = plan(&web(""), &zone(), &obs, now()).expect("plan");
    assert_eq!(plan.low_ttl, 300, "the floor replaces the requested 60");
    let verify = step(&plan, StepKind::VerifySwitch);
    assert_eq!(
        verify.after_previous, 301,
        "verification waits the floor, not 60"
    );
    assert!(
        plan.warnings.iter().any(|w| matches!(
            w,
            Warning::TtlFloor {
                requested: 60,
                served: 300,
                ..
            }
        )),
        "floor warning expected: {:?}",
        plan.warnings
    );
}

#[test]
fn an_authority_raising_the_ttl_is_a_floor() {
    // The provider holds 7200 for www A; an authority serves 10000: it raised it.
    let plan = plan(
        &web(""),
        &zone(),
        &served("www.example.com.", "A", 10_000),
        now(),
    )
    .expect("plan");
    assert_eq!(plan.low_ttl, 10_000, "low TTL follows what is served");
    assert!(
        plan.warnings
            .iter()
            .any(|w| matches!(w, Warning::TtlFloor { served: 10_000, .. })),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn a_later_switch_time_is_kept_and_an_earlier_one_is_refused_with_a_warning() {
    let plan = plan(
        &web("switch_at = \"2026-03-02T02:00:00Z\"\n"),
        &zone(),
        &Observations::default(),
        now(),
    )
    .expect("plan");
    let at: Timestamp = "2026-03-02T02:00:00Z".parse().expect("t");
    assert_eq!(
        step(&plan, StepKind::Switch).at,
        at,
        "switch at the file's time"
    );
    assert_eq!(
        step(&plan, StepKind::VerifyNew).at,
        at,
        "the new servers are checked just before"
    );
    assert!(
        plan.warnings.is_empty()
            || !plan
                .warnings
                .iter()
                .any(|w| matches!(w, Warning::SwitchTooEarly { .. }))
    );

    let plan = super::plan(
        &web("switch_at = \"2026-03-01T00:30:00Z\"\n"),
        &zone(),
        &Observations::default(),
        now(),
    )
    .expect("plan");
    assert_eq!(
        secs(now(), step(&plan, StepKind::Switch).at),
        7260,
        "moved to the earliest safe time"
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| matches!(w, Warning::SwitchTooEarly { .. })),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn address_moves_find_every_holder_and_offer_spf() {
    let plan = plan(&web(""), &zone(), &Observations::default(), now()).expect("plan");
    let names: Vec<(&str, &str)> = plan
        .changes
        .iter()
        .map(|c| (c.name.as_str(), c.rtype.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![("example.com.", "A"), ("www.example.com.", "A")],
        "every A holding 192.0.2.10, and nothing else"
    );
    assert_eq!(plan.changes[1].after, vec!["198.51.100.20".to_string()]);
    assert!(
        plan.warnings
            .iter()
            .any(|w| matches!(w, Warning::SpfOffered { name, .. } if name == "example.com.")),
        "SPF naming the old address is offered: {:?}",
        plan.warnings
    );
}

#[test]
fn spf_true_rewrites_the_spf_term() {
    let f = file("[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\nspf = true\n");
    let plan = plan(&f, &zone(), &Observations::default(), now()).expect("plan");
    let txt = plan
        .changes
        .iter()
        .find(|c| c.rtype == "TXT")
        .unwrap_or_else(|| panic!("a TXT change expected: {:?}", plan.changes));
    assert_eq!(
        txt.after,
        vec!["\"v=spf1 mx ip4:198.51.100.20 -all\"".to_string()],
        "term rewritten"
    );
    assert!(!plan
        .warnings
        .iter()
        .any(|w| matches!(w, Warning::SpfOffered { .. })));
}

#[test]
fn a_cname_and_an_mx_leading_to_moving_names_are_warned_about() {
    let plan = plan(&web(""), &zone(), &Observations::default(), now()).expect("plan");
    assert!(
        plan.warnings.iter().any(
            |w| matches!(w, Warning::LeadsToMovingAddress { name, rtype, target }
            if name == "shop.example.com." && rtype == "CNAME" && target == "www.example.com.")
        ),
        "shop CNAME www: {:?}",
        plan.warnings
    );
    let f = file("[[move]]\nfrom = \"192.0.2.25\"\nto = \"198.51.100.25\"\n");
    let plan = super::plan(&f, &zone(), &Observations::default(), now()).expect("plan");
    assert!(
        plan.warnings.iter().any(
            |w| matches!(w, Warning::LeadsToMovingAddress { rtype, target, .. }
            if rtype == "MX" && target == "mail.example.com.")
        ),
        "MX target moves: {:?}",
        plan.warnings
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| matches!(w, Warning::LeadsToMovingAddress { rtype, .. } if rtype == "SRV")),
        "SRV target moves: {:?}",
        plan.warnings
    );
    let mail = plan
        .warnings
        .iter()
        .find(|w| matches!(w, Warning::MailAddress { .. }))
        .unwrap_or_else(|| panic!("mail address warning expected: {:?}", plan.warnings));
    assert!(
        matches!(
            mail,
            Warning::MailAddress {
                spf_covers: false,
                ..
            }
        ),
        "the SPF record does not name 198.51.100.25: {mail:?}"
    );
    let text = mail.to_string();
    assert!(
        text.contains("PTR") && text.contains("SPF"),
        "says what to change: {text}"
    );
}

#[test]
fn moving_a_name_server_address_is_a_glue_warning() {
    let f = file("[[move]]\nfrom = \"192.0.2.53\"\nto = \"198.51.100.53\"\n");
    let plan = plan(&f, &zone(), &Observations::default(), now()).expect("plan");
    assert!(
        plan.warnings
            .iter()
            .any(|w| matches!(w, Warning::NsOrGlue { name, .. } if name == "ns1.example.com.")),
        "{:?}",
        plan.warnings
    );
    let f = file("[[move]]\nname = \"@\"\ntype = \"NS\"\nvalues = [\"ns1.example.net.\", \"ns2.example.net.\"]\n");
    let plan = super::plan(&f, &zone(), &Observations::default(), now()).expect("plan");
    let w = plan
        .warnings
        .iter()
        .find(|w| matches!(w, Warning::NsOrGlue { .. }))
        .unwrap_or_else(|| panic!("NS warning expected: {:?}", plan.warnings));
    assert!(
        w.to_string().contains("parent"),
        "explains the parent's TTL: {w}"
    );
}

#[test]
fn a_new_name_is_held_back_by_negative_caching() {
    let f = file("[[move]]\nname = \"api\"\ntype = \"A\"\nvalues = [\"198.51.100.30\"]\n");
    let plan = plan(&f, &zone(), &Observations::default(), now()).expect("plan");
    assert!(
        plan.warnings.iter().any(|w| matches!(w, Warning::NegativeCaching { name, seconds: 300 } if name == "api.example.com.")),
        "SOA minimum 300: {:?}",
        plan.warnings
    );
    assert_eq!(plan.changes[0].before, None, "the RRset was absent");
    assert_eq!(
        step(&plan, StepKind::WaitForCaches).after_previous,
        60,
        "nothing old to wait for: the margin only"
    );
}

#[test]
fn an_address_nobody_holds_is_an_error() {
    let f = file("[[move]]\nfrom = \"203.0.113.9\"\nto = \"198.51.100.20\"\n");
    let err = plan(&f, &zone(), &Observations::default(), now()).expect_err("nothing to move");
    assert!(
        matches!(&err, PlanError::Refused(_))
            && err.to_string().starts_with("m.toml:5:8: ")
            && err.to_string().contains("holds 203.0.113.9"),
        "refused at the move's `from`: {err}"
    );
}

#[test]
fn the_plan_round_trips_through_json_and_renders_each_step() {
    let plan = plan(&web(""), &zone(), &Observations::default(), now()).expect("plan");
    let json = serde_json::to_string(&plan).expect("serialise");
    let back: Plan = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, plan, "the stored plan reads back equal");
    let origin = Name::from_ascii("example.com.").expect("name");
    let www = &plan.changes[1];
    let old = www.original(&origin).expect("parse").expect("present");
    assert_eq!(old.ttl, 7200);
    assert_eq!(www.new_at(&origin, 60).expect("parse").ttl, 60);
    let text = render(&plan);
    assert!(
        text.contains("2026-03-01T02:01:00Z"),
        "absolute switch time in the text:\n{text}"
    );
    assert!(
        text.contains("why: the longest TTL a cache may hold"),
        "waits explained:\n{text}"
    );
    assert!(text.contains("Warnings:"), "warnings listed:\n{text}");
}

#[test]
fn a_cname_over_other_data_is_refused_at_planning() {
    let f = file("[[move]]\nname = \"www\"\ntype = \"CNAME\"\nvalues = [\"web.example.net.\"]\n");
    let err = plan(&f, &zone(), &Observations::default(), now()).expect_err("CNAME beside A");
    let text = err.to_string();
    assert!(
        text.starts_with("m.toml:5:8: ") && text.contains("has A records"),
        "refused at the move's `name`, naming the data beside: {err}"
    );
    let f = file("[[move]]\nname = \"shop\"\ntype = \"CNAME\"\nvalues = [\"web.example.net.\"]\n");
    let plan =
        plan(&f, &zone(), &Observations::default(), now()).expect("retargeting a CNAME is fine");
    assert_eq!(plan.changes[0].after, vec!["web.example.net.".to_string()]);
}

#[test]
fn an_approval_gate_takes_the_time_and_wait_of_the_step_it_gates() {
    let without = plan(&web(""), &zone(), &Observations::default(), now()).expect("plan");
    let gated = file(
        "approve = \"before_verify_switch\"\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n[schedule]\nmargin = 60\nobserve = \"1h\"\n",
    );
    let with = plan(&gated, &zone(), &Observations::default(), now()).expect("plan");
    assert_eq!(with.steps.len(), without.steps.len() + 1, "one step more");
    let at = with
        .steps
        .iter()
        .position(|s| s.kind == StepKind::Approval)
        .expect("a gate");
    assert_eq!(
        with.steps[at + 1].kind,
        StepKind::VerifySwitch,
        "just before the step it gates"
    );
    let plain = step(&without, StepKind::VerifySwitch);
    let gate = &with.steps[at];
    assert_eq!(
        (gate.at, gate.after_previous),
        (plain.at, plain.after_previous),
        "the gate falls due when the gated step would have"
    );
    let verify = &with.steps[at + 1];
    assert_eq!(
        (verify.at, verify.after_previous),
        (plain.at, 0),
        "the gated step follows the approval at once, never before its own time"
    );
    assert!(
        gate.what
            .starts_with("wait for approval before the verify switch")
            && gate.what.contains("cutover migrate approve"),
        "{}",
        gate.what
    );
    assert!(
        gate.why.contains("approve = \"before_verify_switch\""),
        "{}",
        gate.why
    );
    let text = render(&with);
    assert!(
        text.contains("wait for approval before the verify switch"),
        "the rendered plan shows the gate:\n{text}"
    );
    let json = serde_json::to_value(&with).expect("json");
    assert_eq!(
        json["steps"][at]["kind"], "approval",
        "and its JSON: {json}"
    );
    // Everything but the gate is as without it.
    let mut others = with.steps.clone();
    others.remove(at);
    others[at].after_previous = plain.after_previous;
    assert_eq!(others, without.steps);
}
