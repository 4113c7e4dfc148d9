//! The approval gate on a test clock: a migration whose file says
//! `approve = "before_STEP"` waits when the gate falls due (waiting, not
//! failing), holds there across a reopening of the store for as long as it
//! takes, goes on only once an approval naming who gave it is recorded, and
//! asks again after a rollback and a resume.

mod support;

use std::sync::atomic::Ordering;

use cutover_migrate::runner::{EventKind, RunnerError, StepOutcome, StepStatus};
use cutover_migrate::{Clock, State, StepKind};
use support::*;

/// The runner tests' file with an approval gate before `step`.
fn gated(step: &str) -> String {
    FILE.replacen(
        "provider = { kind = \"embedded\" }\n",
        &format!("provider = {{ kind = \"embedded\" }}\napprove = \"before_{step}\"\n"),
        1,
    )
}

#[test]
fn the_gate_holds_the_switch_until_approved_and_names_who_approved() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, &gated("switch"));
    match m.approve(id, w.clock.now(), "alice", None) {
        Err(RunnerError::NotAwaitingApproval { state, .. }) => assert_eq!(state, State::Planned),
        other => panic!("expected a refusal before the gate, saw {other:?}"),
    }
    m.tick(id, &w.fx()).expect("lower");
    let r = w.tick_when_due(&m, id);
    assert_eq!(
        kinds(&r),
        ["wait_for_caches", "verify_new", "note_serials", "approval"],
        "everything before the gate runs at the switch time, then the gate"
    );
    assert_eq!(r.state, State::AwaitingApproval);
    assert_eq!(
        r.next_due, None,
        "nothing runs by itself while awaiting approval"
    );
    let gate = r.did.last().expect("the gate's attempt");
    assert_eq!(
        gate.outcome,
        Some(StepOutcome::Waiting),
        "waiting, not failing"
    );
    assert!(
        gate.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("awaiting approval before the switch")),
        "{:?}",
        gate.reason
    );
    let asked_at = gate.done_at.expect("the wait is recorded as it begins");
    assert_eq!(w.www().1, ["192.0.2.10"], "not switched");

    // A day later, in a process that opened the store anew: still waiting.
    w.clock.advance(86_400);
    let m = w.open();
    let r = m.tick(id, &w.fx()).expect("tick");
    assert!(
        r.did.is_empty(),
        "nothing runs while awaiting approval: {:?}",
        kinds(&r)
    );
    let summary = m.status(id).expect("status");
    assert_eq!(summary.state, State::AwaitingApproval);
    assert_eq!(summary.awaiting_approval_since, Some(asked_at));
    assert_eq!(w.www().1, ["192.0.2.10"], "still not switched");
    assert!(
        m.active().expect("active").is_empty(),
        "no runner is given it"
    );
    let detail = m.show(id).expect("show");
    let entry = detail
        .timeline
        .iter()
        .find(|t| t.kind == StepKind::Approval)
        .expect("the gate in the timeline");
    match &entry.status {
        StepStatus::Next {
            due: None,
            last: Some(last),
        } => {
            assert_eq!((last.outcome, last.at), (StepOutcome::Waiting, asked_at))
        }
        other => panic!("expected the gate next, waiting since {asked_at}, saw {other:?}"),
    }

    let approved_at = w.clock.now();
    let summary = m.approve(id, approved_at, "alice", None).expect("approve");
    assert_eq!(
        summary.state,
        State::Switching,
        "back where the switch puts it"
    );
    assert_eq!(summary.awaiting_approval_since, None);
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(
        kinds(&r),
        ["approval", "switch", "flush_caches"],
        "the switch follows at once"
    );
    assert_eq!(r.did[0].outcome, Some(StepOutcome::Done));
    assert_eq!(r.did[0].reason.as_deref(), Some("approved by alice"));
    assert_eq!(r.did[0].evidence["approved_by"], "alice");
    assert_eq!(w.www().1, ["198.51.100.20"], "switched once approved");
    match m.approve(id, w.clock.now(), "bob", None) {
        Err(e @ RunnerError::NotAwaitingApproval { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "migration {id} is verifying, not awaiting approval: there is nothing to approve"
            )
        ),
        other => panic!("expected a second approval refused, saw {other:?}"),
    }

    let events = m.events(id).expect("events");
    let approval = events
        .iter()
        .find(|e| e.kind == EventKind::Approval)
        .expect("the approval is an event");
    assert_eq!(
        (approval.by.as_deref(), approval.at, approval.text.as_str()),
        (Some("alice"), approved_at, "approved by alice")
    );
    let texts: Vec<&str> = events.iter().map(|e| e.text.as_str()).collect();
    let from = texts
        .iter()
        .position(|t| t.starts_with("approval: waiting"))
        .unwrap_or_else(|| panic!("the gate's wait is an event: {texts:#?}"));
    assert_eq!(
        texts[from..from + 4],
        [
            texts[from],
            "awaiting approval: awaiting approval before the switch: `cutover migrate approve 1`",
            "approved by alice",
            "approval: done: approved by alice",
        ],
        "{texts:#?}"
    );
    while !m.status(id).expect("status").state.is_final() {
        w.tick_when_due(&m, id);
    }
    assert_eq!(m.status(id).expect("status").state, State::Done);
}

#[test]
fn a_gate_before_a_wait_is_asked_when_the_wait_is_over_and_never_shortens_it() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, &gated("wait_for_caches"));
    m.tick(id, &w.fx()).expect("lower");
    assert_eq!(
        m.status(id).expect("status").state,
        State::Waiting,
        "waiting for caches, not yet for approval"
    );
    let due = m.status(id).expect("status").next_due.expect("due");
    assert_eq!(
        since_t0(due),
        7260,
        "the gate falls due when the wait is over"
    );
    w.clock.advance(7000);
    assert!(m.tick(id, &w.fx()).expect("tick").did.is_empty());
    let r = w.tick_when_due(&m, id);
    assert_eq!(kinds(&r), ["approval"]);
    assert_eq!(r.state, State::AwaitingApproval);
    w.clock.advance(600);
    m.approve(id, w.clock.now(), "ops", None).expect("approve");
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(
        kinds(&r),
        [
            "approval",
            "wait_for_caches",
            "verify_new",
            "note_serials",
            "switch",
            "flush_caches"
        ],
        "the wait was over before the approval: everything due runs at once"
    );
}

#[test]
fn paused_at_the_gate_it_asks_again_when_resumed_and_after_a_rollback_too() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, &gated("switch"));
    m.tick(id, &w.fx()).expect("lower");
    w.tick_when_due(&m, id);
    assert_eq!(m.status(id).expect("status").state, State::AwaitingApproval);
    m.pause(id, w.clock.now(), "lunch").expect("pause");
    assert!(
        m.approve(id, w.clock.now(), "alice", None).is_err(),
        "a paused migration awaits no approval"
    );
    m.resume(id, w.clock.now()).expect("resume");
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(kinds(&r), ["approval"], "resumed, the gate asks again");
    assert_eq!(r.state, State::AwaitingApproval);
    let waits = m
        .show(id)
        .expect("show")
        .steps
        .iter()
        .filter(|s| s.kind == "approval" && s.outcome == Some(StepOutcome::Waiting))
        .count();
    assert_eq!(waits, 2, "each wait at the gate is recorded");
    m.approve(id, w.clock.now(), "alice", None)
        .expect("approve");
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(kinds(&r), ["approval", "switch", "flush_caches"]);

    // The switch fails its verification and is reverted; resumed, it tries
    // the switch again, and the first approval does not count for it.
    w.checks.healthy.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        w.tick_when_due(&m, id);
    }
    assert_eq!(m.status(id).expect("status").state, State::RolledBack);
    w.checks.healthy.store(true, Ordering::SeqCst);
    m.resume(id, w.clock.now()).expect("resume");
    let r = w.tick_when_due(&m, id);
    assert_eq!(kinds(&r), ["verify_new", "note_serials", "approval"]);
    assert_eq!(
        r.state,
        State::AwaitingApproval,
        "asked again before the second switch"
    );
    assert_eq!(
        w.www().1,
        ["192.0.2.10"],
        "not switched again without approval"
    );
    m.approve(id, w.clock.now(), "bob", Some("checked by hand"))
        .expect("approve");
    let last = m.events(id).expect("events").pop().expect("an event");
    assert_eq!(last.text, "approved by bob: checked by hand");
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(r.did[0].reason.as_deref(), Some("approved by bob"));
    assert_eq!(w.www().1, ["198.51.100.20"]);
}
