//! The approval gate as a black box: a migration whose file says
//! `approve = "before_switch"` stops before the switch, holds there while
//! `cutover serve` is stopped and started again, and goes on only once
//! `cutover --server … migrate approve ID` is given; the event log names the
//! token that approved, and approving what awaits nothing is refused.
//!
//! ```text
//!  migrate start ──▶ serve's scheduler: lower, wait, verify new, note serials ──▶ awaiting approval
//!  serve stopped, started again ──▶ still awaiting (nothing switched)
//!  cutover --server H --token T migrate approve ID ──▶ POST …/approve ──▶ switch … done
//! ```

mod control;
mod migration;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use control::{assert_error, ok, Site};
use serde_json::Value;

/// `migrate status ID --json` of the site: the migration's summary.
fn status(site: &Site, id: i64) -> Value {
    let out = ok(
        "migrate status",
        site.run(&["migrate", "status", &id.to_string(), "--json"]),
    );
    let all: Value = serde_json::from_str(&out).expect("status --json is JSON");
    all[0].clone()
}

/// Waits until the migration is in `state` (up to 60 s); returns its summary.
fn wait_state(site: &Site, id: i64, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let summary = status(site, id);
        if summary["state"] == state {
            return summary;
        }
        assert!(
            Instant::now() < deadline,
            "expected migration {id} to reach {state} within 60 s, it is {summary}; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Where www points now, as the site's nameserver answers.
fn www(site: &Site) -> IpAddr {
    migration::address(site.dns, "www.example.test.", false)
        .expect("www answers")
        .0
}

#[test]
fn the_gate_holds_a_migration_across_a_restart_until_approved() {
    let mut site = Site::start("");
    let file = site.dir.path().join("move-web.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\napprove = \"before_switch\"\n\
             [[move]]\nfrom = \"{}\"\nto = \"{}\"\n[ttl]\nduring = 1\n[schedule]\nmargin = 1\nobserve = \"1s\"\n\
             [verify]\nauthorities = [\"{}\"]\nresolvers = []\ntries = 1\ninterval = 1\n",
            migration::OLD,
            migration::NEW,
            site.dns
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let planned = ok("migrate plan", site.run(&["migrate", "plan", &file]));
    assert!(
        planned.contains("wait for approval before the switch"),
        "expected the plan to show the gate, seen:\n{planned}"
    );
    let started = ok(
        "migrate start",
        site.run(&["migrate", "start", &file, "--json"]),
    );
    let started: Value = serde_json::from_str(&started).expect("start --json is JSON");
    let id = started["id"].as_i64().expect("an id");
    let plan_steps: Vec<&str> = started["plan"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["kind"].as_str())
        .collect();
    let gate = plan_steps.iter().position(|k| *k == "approval");
    assert_eq!(
        gate.map(|at| plan_steps[at + 1]),
        Some("switch"),
        "expected the gate just before the switch in the JSON plan, seen {plan_steps:?}"
    );

    let waiting = wait_state(&site, id, "awaiting_approval");
    let since = waiting["awaiting_approval_since"].clone();
    assert!(since.is_string(), "expected since when, seen {waiting}");
    assert_eq!(
        www(&site),
        IpAddr::V4(migration::OLD),
        "nothing is switched before approval"
    );
    let shown = ok(
        "migrate show",
        site.run(&["migrate", "show", &id.to_string()]),
    );
    assert!(
        shown.contains("awaiting approval since") && shown.contains("when approved"),
        "expected show to say since when it waits, seen:\n{shown}"
    );

    // Stopped and started again: the migration still waits, as it was.
    site.serve = None;
    assert_eq!(status(&site, id)["state"], "awaiting_approval");
    site.serve_again();
    let after = status(&site, id);
    assert_eq!(
        (&after["state"], &after["awaiting_approval_since"]),
        (&Value::from("awaiting_approval"), &since),
        "expected the same wait after the restart, seen {after}"
    );
    assert_eq!(www(&site), IpAddr::V4(migration::OLD), "still not switched");

    // A read token may not approve; an admin token through --server does.
    let url = format!("http://{}", site.http);
    let remote = |token: &str, args: &[&str]| {
        let mut all = vec!["--server", url.as_str(), "--token", token];
        all.extend_from_slice(args);
        control::cutover(&all)
    };
    let refused = remote(&site.reader, &["migrate", "approve", &id.to_string()]);
    assert_eq!(refused.status.code(), Some(1), "a read token is refused");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("forbidden"),
        "expected the API's refusal, seen {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(status(&site, id)["state"], "awaiting_approval");
    let approved = ok(
        "remote migrate approve",
        remote(
            &site.admin,
            &[
                "migrate",
                "approve",
                &id.to_string(),
                "--reason",
                "checked the new site",
            ],
        ),
    );
    assert!(
        approved.starts_with(&format!("migration {id}: approved by ops at "))
            && approved.contains("(checked the new site); it goes on ("),
        "expected what was recorded printed, seen {approved}"
    );
    wait_state(&site, id, "done");
    assert_eq!(
        www(&site),
        IpAddr::V4(migration::NEW),
        "switched once approved"
    );

    let detail = site
        .call(
            "GET",
            &format!("/api/v1/migrations/{id}"),
            Some(&site.reader),
            None,
        )
        .1;
    let events = detail["events"].as_array().expect("events");
    let at = |text: &str| {
        events
            .iter()
            .position(|e| e["text"].as_str().is_some_and(|t| t.starts_with(text)))
            .unwrap_or_else(|| panic!("expected an event {text:?} in {events:#?}"))
    };
    let approval = &events[at("approved by ops")];
    assert_eq!(
        (&approval["kind"], &approval["by"], &approval["cause"]),
        (
            &Value::from("approval"),
            &Value::from("ops"),
            &Value::from("operator")
        ),
        "{approval}"
    );
    assert!(
        at("approval: waiting") < at("approved by ops")
            && at("approved by ops") < at("approval: done")
            && at("approval: done") < at("switch: done"),
        "expected the wait, the approval, then the switch, in {events:#?}"
    );
    let audit = site
        .call(
            "GET",
            &format!("/api/v1/migrations/{id}/audit"),
            Some(&site.reader),
            None,
        )
        .1;
    let switched = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["step"] == "switch")
        .expect("the switch in the audit");
    let (approved_at, switched_at) = (
        approval["at"].as_str().expect("a time"),
        switched["intended_at"].as_str().expect("a time"),
    );
    assert!(
        switched_at.parse::<jiff::Timestamp>().unwrap()
            >= approved_at.parse::<jiff::Timestamp>().unwrap(),
        "expected the switch decided after the approval ({approved_at}), seen {switched_at}"
    );

    // Nothing awaits approval any more: refused, here and through the API.
    let again = site.run(&["migrate", "approve", &id.to_string()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!(
            "migration {id} is done, not awaiting approval: there is nothing to approve"
        )),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_error(
        &site.call(
            "POST",
            &format!("/api/v1/migrations/{id}/approve"),
            Some(&site.admin),
            None,
        ),
        422,
        "rejected",
        "approving a migration that awaits nothing",
    );
}
