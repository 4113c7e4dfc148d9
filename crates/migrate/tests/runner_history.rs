//! The runner's record as an honest history: every time stamped when it
//! happens, outcomes that tell waiting, retrying, done, failed and skipped
//! apart, and events that are only ever appended — an automatic rollback
//! stays in the record after the operator resumes and rolls back by hand.

mod support;

use std::sync::atomic::Ordering;

use cutover_migrate::runner::{Cause, EventKind, StepOutcome, StepStatus};
use cutover_migrate::{Clock, State};
use cutover_provider::Provider;
use support::*;

/// Regression (issue "every word true", 7): steps were stamped done before
/// they started, and audit rows applied before they were intended, because
/// the runner stamped the time its pass began. With a clock that moves on
/// every read, each stamp must come after the one written before it.
#[test]
fn every_time_is_read_when_it_is_written() {
    let w = World::new();
    let clock = TickingClock::new(t0());
    let m = w.open();
    let id = w.start(&m, FILE);
    for _ in 0..20 {
        let status = m.status(id).expect("status");
        if status.state.is_final() {
            break;
        }
        if let Some(due) = status.next_due {
            clock.set(due);
        }
        m.tick(id, &w.fx_on(&clock)).expect("tick");
    }
    assert_eq!(m.status(id).expect("status").state, State::Done);
    let steps = m.show(id).expect("show").steps;
    for step in &steps {
        let done = step.done_at.expect("every step ended");
        assert!(
            done > step.started_at,
            "{} was stamped done at {done}, not after it started at {}",
            step.kind,
            step.started_at
        );
    }
    for pair in steps.windows(2) {
        assert!(
            pair[1].started_at > pair[0].done_at.expect("ended"),
            "{} started at {} before {} was done at {:?}",
            pair[1].kind,
            pair[1].started_at,
            pair[0].kind,
            pair[0].done_at
        );
    }
    for row in m.audit(id).expect("audit") {
        let applied = row.applied_at.expect("applied");
        assert!(
            applied > row.intended_at,
            "{} {} ({}) was stamped applied at {applied}, not after it was intended at {}",
            row.name,
            row.rtype,
            row.step,
            row.intended_at
        );
    }
}

/// The events of a run on the ticking clock are in the order of their times.
#[test]
fn events_are_in_the_order_they_happened() {
    let w = World::new();
    let clock = TickingClock::new(t0());
    let m = w.open();
    let id = w.start(&m, FILE);
    while !m.status(id).expect("status").state.is_final() {
        if let Some(due) = m.status(id).expect("status").next_due {
            clock.set(due);
        }
        m.tick(id, &w.fx_on(&clock)).expect("tick");
    }
    let events = m.events(id).expect("events");
    for pair in events.windows(2) {
        assert!(
            pair[1].at >= pair[0].at,
            "{:?} at {} came after {:?} at {}",
            pair[1].text,
            pair[1].at,
            pair[0].text,
            pair[0].at
        );
    }
    let steps: Vec<String> = events
        .iter()
        .filter(|e| e.kind == EventKind::Step)
        .map(|e| e.text.clone())
        .collect();
    assert_eq!(
        steps,
        [
            "lower ttls: done",
            "wait for caches: done",
            "verify new: done",
            "note serials: done",
            "switch: done",
            "flush caches: skipped: no local caches are listed to flush",
            "verify switch: done",
            "observe: done",
            "restore ttls: done",
        ],
        "one event per step, in words"
    );
    assert_eq!(
        events.first().map(|e| (e.kind, e.cause, e.text.as_str())),
        Some((
            EventKind::Started,
            Cause::Operator,
            "started by the operator from m.toml"
        ))
    );
    assert_eq!(
        events.last().map(|e| e.text.as_str()),
        Some("done: every step is done")
    );
}

/// Regression (issue "every word true", 5): a flush step that only waited
/// for the authorities to serve the switch was recorded as failed.
#[test]
fn waiting_to_flush_is_waiting_not_failing() {
    let w = World::new();
    let m = w.open();
    let text = format!("{FILE}[flush]\ncaches = [\"unbound\"]\n");
    let id = w.start(&m, &text);
    m.tick(id, &w.fx()).expect("lower");
    let noted = w
        .provider
        .read(&"example.com.".parse().unwrap())
        .unwrap()
        .serial()
        .unwrap()
        .0;
    *w.checks.frozen_serial.lock().unwrap() = Some(noted);
    let r = w.tick_when_due(&m, id);
    let flush = r.did.last().expect("the flush step looked");
    assert_eq!(flush.kind, "flush_caches");
    assert_eq!(
        flush.outcome,
        Some(StepOutcome::Waiting),
        "waiting is not failing: {flush:?}"
    );
    assert!(
        flush
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("not flushing yet") && r.contains("serves serial")),
        "the step says what it waits for: {:?}",
        flush.reason
    );
    let detail = m.show(id).expect("show");
    let entry = detail
        .timeline
        .iter()
        .find(|t| t.kind == cutover_migrate::StepKind::FlushCaches)
        .expect("flush in the timeline");
    assert!(
        matches!(&entry.status, StepStatus::Next { due: Some(_), last: Some(a) } if a.outcome == StepOutcome::Waiting),
        "the timeline shows the wait: {:?}",
        entry.status
    );
    *w.checks.frozen_serial.lock().unwrap() = None;
    let r = w.tick_when_due(&m, id);
    assert_eq!(r.did[0].outcome, Some(StepOutcome::Done), "{:?}", r.did[0]);
    let counts = m.step_counts().expect("counts");
    assert!(
        counts.contains(&("flush_caches".into(), StepOutcome::Waiting, 1))
            && counts.contains(&("flush_caches".into(), StepOutcome::Done, 1))
            && !counts
                .iter()
                .any(|(_, outcome, _)| *outcome == StepOutcome::Failed),
        "counted as one wait and one flush, nothing failed: {counts:?}"
    );
}

/// Failed checks that will be tried again are retrying; the last try that
/// turns the migration back is failed; with nothing to do, skipped.
#[test]
fn retrying_failed_and_skipped_are_told_apart() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    let r = w.tick_when_due(&m, id);
    let flush = r.did.last().expect("flush");
    assert_eq!(
        (flush.outcome, flush.reason.as_deref()),
        (
            Some(StepOutcome::Skipped),
            Some("no local caches are listed to flush")
        ),
        "nothing to flush is not a flush: {flush:?}"
    );
    w.checks.healthy.store(false, Ordering::SeqCst);
    let outcomes: Vec<Option<StepOutcome>> = (0..3)
        .map(|_| w.tick_when_due(&m, id).did[0].outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            Some(StepOutcome::Retrying),
            Some(StepOutcome::Retrying),
            Some(StepOutcome::Failed)
        ],
        "two tries to go, then the last"
    );
    let steps = m.show(id).expect("show").steps;
    let last = steps
        .iter()
        .rev()
        .find(|s| s.kind == "verify_switch")
        .expect("verify_switch");
    assert!(
        last.reason
            .as_deref()
            .is_some_and(|r| r.contains("503") && r.contains("try 3 of 3")),
        "the failure says why: {:?}",
        last.reason
    );
}

/// Regression (issue "every word true", 6): after an automatic rollback,
/// `resume` then a manual rollback rewrote the migration's story as "rolled
/// back by the operator" with the switch shown as skipped. Every change of
/// state is an event, with its cause, in the order it happened.
#[test]
fn an_automatic_rollback_stays_in_the_history() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    w.tick_when_due(&m, id); // through the switch
    let switched_at = w.clock.now();
    w.checks.healthy.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        w.tick_when_due(&m, id);
    }
    assert_eq!(m.status(id).expect("status").state, State::RolledBack);
    m.resume(id, w.clock.now()).expect("resume");
    w.clock.advance(5);
    m.rollback(id, w.clock.now(), "the new site is still broken")
        .expect("rollback");
    m.tick(id, &w.fx()).expect("tick");
    assert_eq!(m.status(id).expect("status").state, State::RolledBack);

    let detail = m.show(id).expect("show");
    let texts: Vec<(Cause, String)> = detail
        .events
        .iter()
        .filter(|e| e.kind == EventKind::State)
        .map(|e| (e.cause, e.text.clone()))
        .collect();
    let expected_heads = [
        (Cause::Automatic, "planned → lowering"),
        (
            Cause::Automatic,
            "rolling back automatically: verification after the switch failed 3 times",
        ),
        (Cause::Automatic, "rolled back"),
        (
            Cause::Operator,
            "resumed by the operator (rolled back → verifying new)",
        ),
        (
            Cause::Operator,
            "rollback requested by the operator: the new site is still broken",
        ),
        (Cause::Automatic, "rolled back"),
    ];
    assert_eq!(
        texts.len(),
        expected_heads.len(),
        "every change of state, once: {texts:#?}"
    );
    for ((cause, text), (want_cause, head)) in texts.iter().zip(expected_heads) {
        assert!(
            *cause == want_cause && text.starts_with(head),
            "expected {want_cause:?} {head:?}…, saw {cause:?} {text:?}"
        );
    }
    let steps: Vec<&str> = detail
        .events
        .iter()
        .filter_map(|e| e.step.as_deref())
        .collect();
    assert!(
        steps.ends_with(&[
            "verify_switch",
            "verify_switch",
            "verify_switch",
            "revert",
            "restore_original"
        ]),
        "the tries, the automatic revert and the manual restore: {steps:?}"
    );
    let switch = detail
        .timeline
        .iter()
        .find(|t| t.kind == cutover_migrate::StepKind::Switch)
        .expect("switch");
    assert!(
        matches!(switch.status, StepStatus::Done { at } if at == switched_at),
        "the switch happened, and when: {:?}",
        switch.status
    );
    let verify = detail
        .timeline
        .iter()
        .find(|t| t.kind == cutover_migrate::StepKind::VerifySwitch)
        .expect("verify_switch");
    assert!(
        matches!(&verify.status, StepStatus::Failed { reason: Some(r), .. } if r.contains("503")),
        "the verification failed, and why: {:?}",
        verify.status
    );
    let restore = detail.timeline.last().expect("restore");
    assert_eq!(restore.status, StepStatus::NotRun);
}

/// History is append-only: the store refuses to change or remove an event.
#[test]
fn the_store_refuses_to_rewrite_events() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    let before = m.events(id).expect("events");
    let conn = rusqlite::Connection::open(w.db()).expect("open");
    for sql in [
        "UPDATE migration_event SET reason = 'rewritten'",
        "DELETE FROM migration_event",
    ] {
        let refused = conn.execute(sql, []);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("append-only")),
            "{sql}: expected a refusal, saw {refused:?}"
        );
    }
    assert_eq!(m.events(id).expect("events"), before, "nothing changed");
}

/// The mail actions are evidence in words, not Rust's `Result`.
#[test]
fn mail_evidence_has_no_rust_enums() {
    let w = World::new();
    let m = w.open();
    let text =
        format!("{FILE}[mail]\ndomain = \"example.com\"\nfrom = \"old:25\"\nto = \"new:25\"\n");
    let id = w.start(&m, &text);
    while !m.status(id).expect("status").state.is_final() {
        w.tick_when_due(&m, id);
    }
    let json = serde_json::to_string(&m.show(id).expect("show")).expect("json");
    for raw in ["\"Ok\"", "\"Err\"", "Some(", "None"] {
        assert!(!json.contains(raw), "no {raw} in the record: {json}");
    }
    let steps = m.show(id).expect("show").steps;
    let switch = steps.iter().find(|s| s.kind == "switch").expect("switch");
    assert_eq!(
        switch.evidence["mail"][0],
        serde_json::json!({"action": "hold", "domain": "example.com", "ok": true, "detail": "held"})
    );
    assert_eq!(switch.evidence["mail"][1]["to"], "new:25");
}

/// The runner's tables as the first cutover wrote them.
const FIRST_TABLES: &str = r#"
CREATE TABLE migration (
    id INTEGER PRIMARY KEY AUTOINCREMENT, zone TEXT NOT NULL, file_name TEXT NOT NULL,
    file_text TEXT NOT NULL, plan TEXT NOT NULL, state TEXT NOT NULL, phase TEXT NOT NULL,
    cursor INTEGER NOT NULL, attempts INTEGER NOT NULL, last_done_at INTEGER, last_try_at INTEGER,
    rollback TEXT, reason TEXT, low_ttl INTEGER NOT NULL, serials TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE migration_step (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    migration_id INTEGER NOT NULL REFERENCES migration(id) ON DELETE CASCADE,
    kind TEXT NOT NULL, position INTEGER, attempt INTEGER NOT NULL, started_at INTEGER NOT NULL,
    done_at INTEGER, outcome TEXT, evidence TEXT NOT NULL
) STRICT;
CREATE INDEX migration_step_by_migration ON migration_step (migration_id, id);
CREATE TABLE migration_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    migration_id INTEGER NOT NULL REFERENCES migration(id) ON DELETE CASCADE,
    step_id INTEGER NOT NULL REFERENCES migration_step(id) ON DELETE CASCADE,
    name TEXT NOT NULL, rtype TEXT NOT NULL, old TEXT, new TEXT, intended_at INTEGER NOT NULL,
    applied_at INTEGER, status TEXT NOT NULL
) STRICT;
CREATE INDEX migration_audit_by_step ON migration_audit (step_id);
"#;

/// A store written by the first cutover (outcomes "ok", a flush that waited
/// stored as "failed", no events) is upgraded in place when opened: the
/// outcomes read in today's words, its history becomes events, and the
/// migration goes on.
#[test]
fn an_older_store_is_upgraded_in_place() {
    let w = World::new();
    let text = format!("{FILE}[flush]\ncaches = [\"unbound\"]\n");
    let plan = plan_of(&text, &w.provider);
    let at = |secs: i64| t0().as_millisecond() + secs * 1000;
    {
        let conn = rusqlite::Connection::open(w.db()).expect("open");
        conn.execute_batch(FIRST_TABLES).expect("the first tables");
        conn.execute(
            "INSERT INTO migration VALUES (1, 'example.com.', 'm.toml', ?1, ?2, 'flushing',
                 'lowered', 5, 1, ?3, ?4, NULL, 'not flushing yet: … (try 1 of 3)', 60, '{}', ?5, ?4)",
            rusqlite::params![
                text,
                serde_json::to_string(&plan).expect("plan"),
                at(7260),
                at(7261),
                at(0)
            ],
        )
        .expect("a migration");
        let steps = [
            ("lower_ttls", 0, "ok", "{}"),
            ("wait_for_caches", 1, "ok", "{}"),
            ("verify_new", 2, "ok", "{}"),
            ("note_serials", 3, "ok", "{}"),
            (
                "flush_caches",
                5,
                "failed",
                r#"{"waiting_for":["ns1 serves serial 5"]}"#,
            ),
        ];
        for (i, (kind, position, outcome, evidence)) in steps.iter().enumerate() {
            conn.execute(
                "INSERT INTO migration_step (migration_id, kind, position, attempt, started_at,
                     done_at, outcome, evidence) VALUES (1, ?1, ?2, 1, ?3, ?3, ?4, ?5)",
                rusqlite::params![kind, position, at(i as i64), outcome, evidence],
            )
            .expect("a step");
        }
    }
    let m = w.open();
    let detail = m.show(1).expect("show");
    let outcomes: Vec<(&str, Option<StepOutcome>)> = detail
        .steps
        .iter()
        .map(|s| (s.kind.as_str(), s.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("lower_ttls", Some(StepOutcome::Done)),
            ("wait_for_caches", Some(StepOutcome::Done)),
            ("verify_new", Some(StepOutcome::Done)),
            ("note_serials", Some(StepOutcome::Done)),
            ("flush_caches", Some(StepOutcome::Waiting)),
        ],
        "the stored outcomes in today's words"
    );
    let events: Vec<&str> = detail.events.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        events,
        [
            "started by the operator from m.toml",
            "lower ttls: done",
            "wait for caches: done",
            "verify new: done",
            "note serials: done",
            "flush caches: waiting: not flushing yet: the switch is not served everywhere",
        ],
        "the recorded history carried over as events"
    );
    // A second open finds it done and changes nothing.
    let again = w.open();
    assert_eq!(again.events(1).expect("events").len(), events.len());
    // And the migration goes on.
    let r = w.tick_when_due(&again, 1);
    assert_eq!(
        r.did.first().map(|s| (s.kind.as_str(), s.outcome)),
        Some(("flush_caches", Some(StepOutcome::Done))),
        "{r:?}"
    );
}

/// A provider that cannot be reached leaves the step open and retrying,
/// with an event saying so; the retry finishes it.
#[test]
fn an_unreachable_provider_is_retrying_with_its_event() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    *w.provider.crash.lock().expect("lock") = CrashPoint::LostReply(2);
    let r = w.tick_when_due(&m, id);
    let switch = r.did.last().expect("the switch");
    assert_eq!(
        (switch.kind.as_str(), switch.outcome, switch.done_at),
        ("switch", Some(StepOutcome::Retrying), None),
        "left open to be redone: {switch:?}"
    );
    assert!(
        switch
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("the answer was lost") && r.contains("not known")),
        "{:?}",
        switch.reason
    );
    let r = w.tick_when_due(&m, id);
    assert_eq!(r.did[0].outcome, Some(StepOutcome::Done));
    let texts: Vec<String> = m
        .events(id)
        .expect("events")
        .into_iter()
        .filter(|e| e.step.as_deref() == Some("switch"))
        .map(|e| e.text)
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].starts_with("switch: retrying: "), "{texts:?}");
    assert_eq!(texts[1], "switch: done");
}

/// A flush that could not flush is a failure, said as one, and the
/// migration goes on (flushing only shortens how long caches keep the old
/// values); the timeline shows the failure after the migration went past it.
#[test]
fn a_flush_that_failed_is_failed_and_the_migration_goes_on() {
    let w = World::new();
    let m = w.open();
    let text = format!("{FILE}[flush]\ncaches = [\"unbound\"]\n");
    let id = w.start(&m, &text);
    let fx = cutover_migrate::Effects {
        flusher: &cutover_migrate::NoFlusher,
        ..w.fx()
    };
    m.tick(id, &fx).expect("lower");
    w.clock
        .set(m.status(id).expect("status").next_due.expect("due"));
    let r = m.tick(id, &fx).expect("to the flush");
    let flush = r.did.last().expect("the flush");
    assert_eq!(
        (flush.kind.as_str(), flush.outcome),
        ("flush_caches", Some(StepOutcome::Failed)),
        "{flush:?}"
    );
    assert!(
        flush
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("not flushed: unbound: ") && r.contains("goes on")),
        "{:?}",
        flush.reason
    );
    assert_eq!(r.state, State::Verifying, "the migration went on");
    let detail = m.show(id).expect("show");
    let entry = detail
        .timeline
        .iter()
        .find(|t| t.kind == cutover_migrate::StepKind::FlushCaches)
        .expect("flush");
    assert!(
        matches!(&entry.status, StepStatus::Failed { reason: Some(r), .. } if r.contains("not flushed")),
        "{:?}",
        entry.status
    );
}

/// A step a crash cut short is taken up again with an event saying so:
/// the history does not pretend the process ran straight through.
#[test]
fn a_step_cut_short_by_a_crash_is_in_the_history() {
    let w = World::new();
    let id = {
        let m = w.open();
        let id = w.start(&m, FILE);
        m.tick(id, &w.fx()).expect("lower");
        id
    };
    *w.provider.crash.lock().expect("lock") = CrashPoint::AfterApply(2);
    {
        let m = w.open();
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            w.tick_when_due(&m, id);
        }));
        assert!(crashed.is_err(), "the switch crashed the runner");
    }
    *w.provider.crash.lock().expect("lock") = CrashPoint::Never;
    let m = w.open();
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(r.did[0].kind, "switch");
    assert_eq!(r.did[0].outcome, Some(StepOutcome::Done));
    let switch: Vec<String> = m
        .events(id)
        .expect("events")
        .into_iter()
        .filter(|e| e.step.as_deref() == Some("switch"))
        .map(|e| e.text)
        .collect();
    assert_eq!(
        switch,
        [
            "switch: cut short: the process stopped before the step ended; redone from its record",
            "switch: done"
        ]
    );
}

/// While paused, a later step's time is the plan's own, not a time made up
/// from when the pause began: nothing runs until someone resumes it.
#[test]
fn a_paused_migration_promises_no_times() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    w.clock.advance(100_000);
    m.pause(id, w.clock.now(), "later").expect("pause");
    let detail = m.show(id).expect("show");
    for (entry, step) in detail.timeline.iter().zip(&detail.plan.steps).skip(2) {
        assert_eq!(
            entry.status,
            StepStatus::Pending { at: step.at },
            "{:?}",
            entry.kind
        );
    }
    assert!(
        matches!(
            detail.timeline[1].status,
            StepStatus::Next {
                due: None,
                last: None
            }
        ),
        "{:?}",
        detail.timeline[1].status
    );
}
