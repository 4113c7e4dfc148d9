//! The runner when things go wrong: a crash at every record write and
//! during a check (a restart redoes the step, the audit holds each change
//! once), a restart mid-migration, a lost provider answer, a record changed
//! by someone else, operators acting while a step runs.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use cutover_migrate::runner::{Cause, EventKind};
use cutover_migrate::{Clock, Migrations, State, StepKind};
use cutover_zone::{Rdata, RecordType, Rrset};
use support::*;

#[test]
fn a_restart_mid_migration_continues_from_the_database() {
    let w = World::new();
    let id = {
        let m = w.open();
        let id = w.start(&m, FILE);
        m.tick(id, &w.fx()).expect("lower");
        id
    };
    // A new process: reopen the same file and go on.
    let m = w.open();
    let s = m.status(id).expect("status");
    assert_eq!(s.state, State::Waiting, "the state survived the restart");
    assert_eq!(
        since_t0(s.next_due.expect("due")),
        7260,
        "and so did the wait"
    );
    while !m.status(id).expect("status").state.is_final() {
        w.tick_when_due(&m, id);
    }
    assert_eq!(m.status(id).expect("status").state, State::Done);
    assert_eq!(w.www(), (7200, vec!["198.51.100.20".into()]));
}

/// Runs the migration with a crash at `point`, restarting after it, and
/// checks the end state and the audit.
fn crash_and_finish(point: CrashPoint) {
    let w = World::new();
    let id = {
        let m = w.open();
        w.start(&m, FILE)
    };
    *w.provider.crash.lock().expect("lock") = point;
    let mut crashes = 0;
    for _ in 0..50 {
        let m = w.open();
        if m.status(id).expect("status").state.is_final() {
            break;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            w.tick_when_due(&m, id);
        }));
        if outcome.is_err() {
            crashes += 1;
            // The process died; the next loop opens the file anew.
            *w.provider.crash.lock().expect("lock") = CrashPoint::Never;
        }
    }
    assert_eq!(crashes, 1, "{point:?}: one crash expected");
    let m = w.open();
    let s = m.status(id).expect("status");
    assert_eq!(s.state, State::Done, "{point:?}: the migration completed");
    assert_eq!(
        w.www(),
        (7200, vec!["198.51.100.20".into()]),
        "{point:?}: zone as intended"
    );
    assert_eq!(
        w.provider
            .values("example.com.", RecordType::A)
            .expect("apex"),
        (3600, vec!["198.51.100.20".to_string()]),
        "{point:?}: zone as intended"
    );
    let audit = m.audit(id).expect("audit");
    let steps: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.step.as_str(), a.name.as_str()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("lower_ttls", "example.com."),
            ("lower_ttls", "www.example.com."),
            ("switch", "example.com."),
            ("switch", "www.example.com."),
            ("restore_ttls", "example.com."),
            ("restore_ttls", "www.example.com."),
        ],
        "{point:?}: every change in the audit log exactly once"
    );
    assert!(
        audit.iter().all(|a| a.status == "applied"),
        "{point:?}: {audit:?}"
    );
    assert_eq!(
        w.provider.effective.load(Ordering::SeqCst),
        3,
        "{point:?}: each change made once"
    );
}

#[test]
fn a_crash_at_every_record_write_is_redone_exactly_once() {
    // Applies are numbered 1 (lower), 2 (switch), 3 (restore).
    for n in 1..=3 {
        crash_and_finish(CrashPoint::BeforeApply(n));
        crash_and_finish(CrashPoint::AfterApply(n));
    }
}

#[test]
fn a_record_changed_by_someone_else_stops_the_switch() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    // Someone points www elsewhere between planning and switching.
    w.provider.edit_behind_our_back(
        "www.example.com.",
        Rrset::new(300, Rdata::a("203.0.113.7".parse().expect("ip"))),
    );
    let r = w.tick_when_due(&m, id);
    assert_eq!(r.state, State::Failed, "a conflict stops the migration");
    let reason = r.reason.expect("reason");
    assert!(
        reason.contains("changed by someone else") && reason.contains("nothing was overwritten"),
        "clear message: {reason}"
    );
    assert_eq!(
        w.www(),
        (300, vec!["203.0.113.7".into()]),
        "their change is kept"
    );
    assert_eq!(
        w.provider
            .values("example.com.", RecordType::A)
            .expect("apex")
            .1,
        vec!["192.0.2.10".to_string()],
        "all or nothing: the apex did not switch either"
    );
    let refused: Vec<_> = m
        .audit(id)
        .expect("audit")
        .into_iter()
        .filter(|a| a.status == "refused")
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "the switch's intents are marked refused: {refused:?}"
    );
    // The history says why: the change of state is an event caused by the
    // conflict, with the evidence (issue "every word true", 6).
    let detail = m.show(id).expect("show");
    let stopped = detail
        .events
        .iter()
        .find(|e| e.kind == EventKind::State && e.text.contains("failed"))
        .unwrap_or_else(|| {
            panic!(
                "expected a state event for the failure: {:#?}",
                detail.events
            )
        });
    assert_eq!(
        stopped.cause,
        Cause::Conflict,
        "expected the failure caused by the conflict, saw {stopped:?}"
    );
    assert!(
        stopped.text.contains("on a conflict") || stopped.text.contains("changed by someone else"),
        "expected the event to say the conflict, saw {:?}",
        stopped.text
    );
    assert!(
        m.tick(id, &w.fx()).expect("tick").did.is_empty(),
        "nothing more runs"
    );
}

#[test]
fn an_operator_rollback_during_a_step_is_not_lost() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    w.tick_when_due(&m, id); // through the switch
                             // While the verification runs, another process asks for a rollback.
    let db = w.db();
    let now = w.clock.now();
    *w.checks.during_next_check.lock().expect("lock") = Some(Box::new(move || {
        let other = Migrations::open(&db).expect("second handle");
        other
            .rollback(id, now, "operator, meanwhile")
            .expect("rollback");
    }));
    let r = w.tick_when_due(&m, id);
    assert_eq!(
        kinds(&r),
        vec!["verify_switch", "revert", "restore_original"],
        "the verification finishes, then the rollback runs"
    );
    assert_eq!(r.state, State::RolledBack);
    assert_eq!(r.reason.as_deref(), Some("operator, meanwhile"));
    assert_eq!(w.www(), (7200, vec!["192.0.2.10".into()]));
}

#[test]
fn an_operator_pause_during_a_step_is_not_lost() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    let db = w.db();
    let now = w.clock.now();
    *w.checks.during_next_check.lock().expect("lock") = Some(Box::new(move || {
        let other = Migrations::open(&db).expect("second handle");
        other.pause(id, now, "hold on").expect("pause");
    }));
    let r = w.tick_when_due(&m, id);
    assert_eq!(
        kinds(&r),
        vec!["wait_for_caches", "verify_new"],
        "the running step finishes; nothing after it starts"
    );
    assert_eq!(r.state, State::Paused);
    assert_eq!(
        w.www().1,
        vec!["192.0.2.10".to_string()],
        "not switched while paused"
    );
    let s = m.resume(id, w.clock.now()).expect("resume");
    assert_eq!(
        s.next_step,
        Some(StepKind::NoteSerials),
        "resumes after the finished step"
    );
}

#[test]
fn a_crash_during_a_check_is_redone_on_the_same_step_record() {
    let w = World::new();
    let id = {
        let m = w.open();
        let id = w.start(&m, FILE);
        m.tick(id, &w.fx()).expect("lower");
        id
    };
    *w.checks.during_next_check.lock().expect("lock") = Some(Box::new(|| {
        panic!("simulated crash during the pre-switch check")
    }));
    {
        let m = w.open();
        let crashed = catch_unwind(AssertUnwindSafe(|| {
            w.tick_when_due(&m, id);
        }));
        assert!(crashed.is_err(), "the check crashed the runner");
    }
    let m = w.open();
    let s = m.status(id).expect("status");
    assert_eq!(
        s.state,
        State::VerifyingNew,
        "the crash left it verifying the new servers"
    );
    assert_eq!(w.www().1, vec!["192.0.2.10".to_string()], "not switched");
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(
        kinds(&r),
        vec!["verify_new", "note_serials", "switch", "flush_caches"],
        "redone after the restart"
    );
    let steps = m.show(id).expect("show").steps;
    let verify_new: Vec<_> = steps.iter().filter(|s| s.kind == "verify_new").collect();
    assert_eq!(
        verify_new.len(),
        1,
        "the interrupted record was reused: {verify_new:?}"
    );
    assert_eq!(
        verify_new[0].outcome,
        Some(cutover_migrate::runner::StepOutcome::Done)
    );
}

#[test]
fn a_lost_provider_answer_is_retried_and_audited_once() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    *w.provider.crash.lock().expect("lock") = CrashPoint::LostReply(2);
    let r = w.tick_when_due(&m, id);
    assert_eq!(
        r.state,
        State::Switching,
        "the switch waits for a retry: {r:?}"
    );
    assert!(
        r.reason
            .as_deref()
            .unwrap_or("")
            .contains("the answer was lost"),
        "the operator sees why: {:?}",
        r.reason
    );
    assert_eq!(
        w.www().1,
        vec!["198.51.100.20".to_string()],
        "the change did reach the zone"
    );
    let before = w.clock.now();
    let r = w.tick_when_due(&m, id);
    assert_eq!(
        since_t0(w.clock.now()) - since_t0(before),
        10,
        "retried one interval later"
    );
    assert_eq!(kinds(&r), vec!["switch", "flush_caches"], "{r:?}");
    let switch_rows = m
        .audit(id)
        .expect("audit")
        .into_iter()
        .filter(|a| a.step == "switch")
        .count();
    assert_eq!(switch_rows, 2, "two RRsets switched, each audited once");
    assert_eq!(
        w.provider.effective.load(Ordering::SeqCst),
        2,
        "lower + switch: the retry changed nothing"
    );
}

#[test]
fn a_refusing_provider_pauses_and_resume_redoes_the_step() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    *w.provider.crash.lock().expect("lock") = CrashPoint::Refuse(2);
    let r = w.tick_when_due(&m, id);
    assert_eq!(r.state, State::Paused, "retrying would not help: {r:?}");
    assert!(
        r.reason.as_deref().unwrap_or("").contains("BADKEY"),
        "says why: {:?}",
        r.reason
    );
    assert_eq!(
        w.www().1,
        vec!["192.0.2.10".to_string()],
        "nothing switched"
    );
    m.resume(id, w.clock.now()).expect("resume");
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(kinds(&r), vec!["switch", "flush_caches"], "{r:?}");
    assert_eq!(w.www().1, vec!["198.51.100.20".to_string()]);
    let switch_rows: Vec<_> = m
        .audit(id)
        .expect("audit")
        .into_iter()
        .filter(|a| a.step == "switch")
        .collect();
    assert_eq!(switch_rows.len(), 2, "audited once: {switch_rows:?}");
    assert!(switch_rows.iter().all(|a| a.status == "applied"));
}
