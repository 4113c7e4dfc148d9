//! The runner with a test clock, a zone in memory and scripted checks: a
//! whole migration (hours of plan) in milliseconds, automatic and manual
//! rollback, pause and resume, floors, mail and flush, list and show.

mod support;

use std::sync::atomic::Ordering;

use cutover_migrate::runner::{Phase, StepOutcome, StepStatus};
use cutover_migrate::{Clock, State, StepKind};
use cutover_provider::Provider;
use cutover_zone::RecordType;
use support::*;

#[test]
fn a_whole_migration_runs_on_a_test_clock() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    assert_eq!(m.status(id).expect("status").state, State::Planned);

    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(
        kinds(&r),
        vec!["lower_ttls"],
        "only the lowering is due at t0"
    );
    assert_eq!(r.state, State::Waiting);
    assert_eq!(
        w.www(),
        (60, vec!["192.0.2.10".into()]),
        "TTL lowered, value kept"
    );
    let due = r.next_due.expect("next due");
    assert_eq!(since_t0(due), 7260, "wait = www's TTL 7200 + margin 60");

    // Nothing happens before the wait is over.
    w.clock.advance(7000);
    let r = m.tick(id, &w.fx()).expect("tick");
    assert!(r.did.is_empty(), "nothing due at t0+7000: {:?}", kinds(&r));
    assert_eq!(w.www().1, vec!["192.0.2.10".to_string()]);

    let r = w.tick_when_due(&m, id);
    assert_eq!(
        kinds(&r),
        vec![
            "wait_for_caches",
            "verify_new",
            "note_serials",
            "switch",
            "flush_caches"
        ],
        "everything due at the switch time runs in one tick"
    );
    assert_eq!(r.state, State::Verifying);
    assert_eq!(
        w.www(),
        (60, vec!["198.51.100.20".into()]),
        "switched, low TTL kept"
    );
    assert_eq!(
        w.provider
            .values("example.com.", RecordType::A)
            .expect("apex A")
            .1,
        vec!["198.51.100.20".to_string()],
        "the apex A moved too"
    );
    assert_eq!(
        since_t0(r.next_due.expect("due")),
        7260 + 61,
        "verify one low TTL + 1 s later"
    );

    let r = w.tick_when_due(&m, id);
    assert_eq!(kinds(&r), vec!["verify_switch"]);
    assert_eq!(r.state, State::Observing);
    let evidence = &r.did[0].evidence;
    assert_eq!(
        evidence["problems"],
        serde_json::json!([]),
        "verification saw no problem: {evidence}"
    );

    let r = w.tick_when_due(&m, id);
    assert_eq!(kinds(&r), vec!["observe", "restore_ttls"]);
    assert_eq!(r.state, State::Done);
    assert_eq!(r.next_due, None, "nothing more to do");
    assert_eq!(
        w.www(),
        (7200, vec!["198.51.100.20".into()]),
        "original TTL restored on the new value"
    );
    assert_eq!(
        since_t0(w.clock.now()),
        7260 + 61 + 3600,
        "the whole plan took its planned time on the test clock"
    );

    // Audit: lower (2 RRsets), switch (2), restore (2), each applied once.
    let audit = m.audit(id).expect("audit");
    let steps: Vec<&str> = audit.iter().map(|a| a.step.as_str()).collect();
    assert_eq!(
        steps,
        vec![
            "lower_ttls",
            "lower_ttls",
            "switch",
            "switch",
            "restore_ttls",
            "restore_ttls"
        ],
        "one audit row per RRset change"
    );
    assert!(
        audit
            .iter()
            .all(|a| a.status == "applied" && a.applied_at.is_some()),
        "{audit:?}"
    );
    let switch = audit
        .iter()
        .find(|a| a.step == "switch" && a.name == "www.example.com.")
        .expect("row");
    assert_eq!(
        switch.old.as_ref().map(|o| o.values.clone()),
        Some(vec!["192.0.2.10".to_string()])
    );
    assert_eq!(
        switch.new.as_ref().map(|n| (n.ttl, n.values.clone())),
        Some((60, vec!["198.51.100.20".to_string()]))
    );
    assert_eq!(
        w.provider.effective.load(Ordering::SeqCst),
        3,
        "three zone changes in all"
    );

    let detail = m.show(id).expect("show");
    assert!(
        detail.timeline.iter().all(|t| match t.kind {
            // No caches are listed: nothing was flushed, and it says so.
            StepKind::FlushCaches => matches!(t.status, StepStatus::Skipped { at: Some(_), .. }),
            _ => matches!(t.status, StepStatus::Done { .. }),
        }),
        "every step done in the timeline (the flush skipped): {:?}",
        detail.timeline
    );
}

#[test]
fn failed_verification_rolls_back_by_itself_after_the_tries() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    w.tick_when_due(&m, id); // through the switch
    assert_eq!(w.www().1, vec!["198.51.100.20".to_string()]);

    w.checks.healthy.store(false, Ordering::SeqCst);
    let r = w.tick_when_due(&m, id);
    assert_eq!(kinds(&r), vec!["verify_switch"], "first try");
    assert_eq!(
        r.state,
        State::Verifying,
        "still verifying after one failure"
    );
    assert_eq!(
        r.did[0].outcome,
        Some(StepOutcome::Retrying),
        "a try to go: retrying"
    );
    let first = w.clock.now();
    let r = w.tick_when_due(&m, id);
    assert_eq!(
        since_t0(w.clock.now()) - since_t0(first),
        10,
        "tries are `interval` (10 s) apart"
    );
    assert_eq!(r.state, State::Verifying, "two failures");
    let r = w.tick_when_due(&m, id);
    assert_eq!(
        kinds(&r),
        vec!["verify_switch", "revert"],
        "third failure reverts at once"
    );
    assert_eq!(r.state, State::RolledBack);
    let reason = r.reason.clone().expect("a reason");
    assert!(
        reason.contains("rolled back automatically") && reason.contains("503"),
        "the operator is told why: {reason}"
    );
    assert_eq!(
        w.www(),
        (60, vec!["192.0.2.10".into()]),
        "old value back, low TTL kept"
    );
    assert_eq!(
        r.next_due, None,
        "a rolled-back migration waits for the operator"
    );
    let s = m.status(id).expect("status");
    assert_eq!(s.phase, Phase::Lowered);

    // The operator fixes the new server and resumes: the switch is tried again.
    w.checks.healthy.store(true, Ordering::SeqCst);
    let s = m.resume(id, w.clock.now()).expect("resume");
    assert_eq!(s.state, State::VerifyingNew);
    let r = w.tick_when_due(&m, id);
    assert_eq!(
        kinds(&r),
        vec!["verify_new", "note_serials", "switch", "flush_caches"],
        "the switch is retried from the pre-switch checks"
    );
    assert_eq!(w.www(), (60, vec!["198.51.100.20".into()]));
}

#[test]
fn a_manual_rollback_after_the_switch_reverts_then_restores() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    w.tick_when_due(&m, id);
    assert_eq!(w.www().1, vec!["198.51.100.20".to_string()]);

    let s = m
        .rollback(id, w.clock.now(), "operator: the new site looks wrong")
        .expect("rollback");
    assert_eq!(s.state, State::RollingBack);
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(kinds(&r), vec!["revert", "restore_original"]);
    assert_eq!(r.state, State::RolledBack);
    assert_eq!(
        w.www(),
        (7200, vec!["192.0.2.10".into()]),
        "as before the migration"
    );
    assert_eq!(
        w.provider
            .values("example.com.", RecordType::A)
            .expect("apex"),
        (3600, vec!["192.0.2.10".to_string()])
    );
    let audit = m.audit(id).expect("audit");
    let revert = audit
        .iter()
        .find(|a| a.step == "revert" && a.name == "www.example.com.")
        .expect("row");
    assert_eq!(
        revert.new.as_ref().map(|n| n.ttl),
        Some(60),
        "the revert keeps the low TTL"
    );
    assert_eq!(
        m.status(id).expect("status").reason.as_deref(),
        Some("operator: the new site looks wrong")
    );
    assert!(
        m.resume(id, w.clock.now()).is_err(),
        "a manual rollback is final"
    );
}

#[test]
fn a_manual_rollback_before_the_switch_only_restores_ttls() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    assert_eq!(w.www().0, 60);
    m.rollback(id, w.clock.now(), "changed my mind")
        .expect("rollback");
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(kinds(&r), vec!["restore_original"]);
    assert_eq!(w.www(), (7200, vec!["192.0.2.10".into()]));
    let detail = m.show(id).expect("show");
    assert!(
        detail.timeline[1..]
            .iter()
            .all(|t| t.status == StepStatus::NotRun),
        "the rest will not run: {:?}",
        detail.timeline
    );
}

#[test]
fn pause_holds_and_resume_never_shortens_a_wait() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    let s = m
        .pause(id, w.clock.now(), "maintenance window moved")
        .expect("pause");
    assert_eq!(s.state, State::Paused);
    assert_eq!(s.next_due, None);
    assert!(
        m.active().expect("active").is_empty(),
        "a paused migration is not ticked"
    );

    w.clock.advance(100_000);
    let r = m.tick(id, &w.fx()).expect("tick");
    assert!(
        r.did.is_empty(),
        "nothing runs while paused: {:?}",
        kinds(&r)
    );
    assert_eq!(w.www().1, vec!["192.0.2.10".to_string()]);

    let s = m.resume(id, w.clock.now()).expect("resume");
    assert_eq!(s.state, State::Waiting);
    assert_eq!(m.active().expect("active"), vec![id]);
    let r = m.tick(id, &w.fx()).expect("tick");
    assert_eq!(
        r.state,
        State::Verifying,
        "past the wait, the switch happens at once"
    );

    // Resuming early does not shorten the wait.
    let w2 = World::new();
    let m2 = w2.open();
    let id2 = w2.start(&m2, FILE);
    m2.tick(id2, &w2.fx()).expect("lower");
    m2.pause(id2, w2.clock.now(), "x").expect("pause");
    w2.clock.advance(60);
    m2.resume(id2, w2.clock.now()).expect("resume");
    let due = m2.status(id2).expect("status").next_due.expect("due");
    assert_eq!(since_t0(due), 7260, "the wait still ends at t0 + 7260");
}

#[test]
fn new_servers_failing_before_the_switch_pause_without_switching() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    w.checks.healthy.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        w.tick_when_due(&m, id);
    }
    let s = m.status(id).expect("status");
    assert_eq!(
        s.state,
        State::Paused,
        "three failed tries pause the migration"
    );
    assert!(
        s.reason.as_deref().unwrap_or("").contains("not ready"),
        "{:?}",
        s.reason
    );
    assert_eq!(w.www().1, vec!["192.0.2.10".to_string()], "never switched");
    w.checks.healthy.store(true, Ordering::SeqCst);
    m.resume(id, w.clock.now()).expect("resume");
    let r = m.tick(id, &w.fx()).expect("tick");
    assert!(kinds(&r).contains(&"switch".to_string()), "{:?}", kinds(&r));
}

#[test]
fn a_ttl_floor_seen_after_lowering_pushes_verification_back() {
    let w = World::new();
    *w.checks.floor.lock().expect("lock") = Some(300);
    let m = w.open();
    let id = w.start(&m, FILE);
    let r = m.tick(id, &w.fx()).expect("lower");
    assert_eq!(
        r.did[0].evidence["ttl_floor"],
        serde_json::json!(300),
        "{}",
        r.did[0].evidence
    );
    w.tick_when_due(&m, id); // to the switch
    let switch_at = w.clock.now();
    let due = m.status(id).expect("status").next_due.expect("due");
    assert_eq!(
        due.as_second() - switch_at.as_second(),
        301,
        "verify one floor TTL + 1 s after the switch"
    );
}

#[test]
fn mail_and_flush_are_driven_at_the_right_steps() {
    let w = World::new();
    let m = w.open();
    let text = format!(
        "{FILE}[flush]\ncaches = [\"unbound\"]\n[mail]\ndomain = \"example.com\"\nfrom = \"old:25\"\nto = \"new:25\"\n"
    );
    let id = w.start(&m, &text);
    m.tick(id, &w.fx()).expect("lower");
    w.tick_when_due(&m, id);
    w.tick_when_due(&m, id);
    let calls = w.recorder.calls.lock().expect("lock").clone();
    assert_eq!(
        calls,
        vec![
            "hold example.com".to_string(),
            "retarget example.com new:25".into(),
            "flush unbound 2".into(),
            "release example.com".into()
        ],
        "hold before the switch, retarget after, flush, release once verified"
    );
}

/// A relay that did not acknowledge the switch's hold and retarget: the
/// records switch on time; verify_switch asks the retarget again before
/// any release, and retries (never rolls back) until every relay did both.
#[test]
fn mail_not_acknowledged_is_asked_again_until_it_is() {
    let w = World::new();
    let m = w.open();
    let text =
        format!("{FILE}[mail]\ndomain = \"example.com\"\nfrom = \"old:25\"\nto = \"new:25\"\n");
    let id = w.start(&m, &text);
    m.tick(id, &w.fx()).expect("lower");
    // The relay is down for the switch's two actions and the first
    // verification's retarget.
    *w.recorder.refuse_mail.lock().expect("lock") = 3;
    // Ticks until the first verification's retarget was refused.
    let refused = |w: &World| {
        let calls = w.recorder.calls.lock().expect("lock");
        calls.iter().filter(|c| c.ends_with("refused")).count()
    };
    for _ in 0..5 {
        if refused(&w) == 3 {
            break;
        }
        w.tick_when_due(&m, id);
    }
    assert_eq!(
        refused(&w),
        3,
        "{:?}",
        w.recorder.calls.lock().expect("lock")
    );
    assert_eq!(
        w.www().1,
        vec!["198.51.100.20".to_string()],
        "switched anyway"
    );
    let status = m.status(id).expect("status");
    assert_eq!(status.state, State::Verifying, "{status:?}");
    let reason = status.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("mail: retarget example.com failed: mx2 (http://mx2.test): unreachable"),
        "the reason names the relay: {reason}"
    );
    w.tick_when_due(&m, id); // verify_switch again: retarget, then release
    let calls = w.recorder.calls.lock().expect("lock").clone();
    assert_eq!(
        calls,
        vec![
            "hold example.com refused".to_string(),
            "retarget example.com new:25 refused".into(),
            "retarget example.com new:25 refused".into(),
            "retarget example.com new:25".into(),
            "release example.com".into(),
        ],
        "no release before the retarget was acknowledged"
    );
    let steps = m.show(id).expect("show").steps;
    let verify: Vec<_> = steps.iter().filter(|s| s.kind == "verify_switch").collect();
    assert_eq!(
        verify.iter().map(|s| s.outcome).collect::<Vec<_>>(),
        vec![Some(StepOutcome::Retrying), Some(StepOutcome::Done)],
        "retried once, then done"
    );
}

#[test]
fn caches_are_flushed_only_once_the_authorities_serve_the_switch() {
    let w = World::new();
    let m = w.open();
    let text = format!("{FILE}[flush]\ncaches = [\"unbound\"]\n");
    let id = w.start(&m, &text);
    m.tick(id, &w.fx()).expect("lower");
    // The authorities keep serving the serial noted before the switch.
    let noted = w
        .provider
        .read(&"example.com.".parse().unwrap())
        .unwrap()
        .serial()
        .unwrap()
        .0;
    *w.checks.frozen_serial.lock().unwrap() = Some(noted);
    w.tick_when_due(&m, id);
    let flushes = |w: &World| {
        w.recorder
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with("flush"))
            .count()
    };
    assert_eq!(flushes(&w), 0, "no flush while the old serial is served");
    let status = m.status(id).expect("status");
    assert!(
        status
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("not flushing yet"),
        "the reason says why it waits, seen {:?}",
        status.reason
    );
    *w.checks.frozen_serial.lock().unwrap() = None;
    w.tick_when_due(&m, id);
    assert_eq!(flushes(&w), 1, "flushed once the switch is served");
}

#[test]
fn list_and_show_say_where_each_migration_stands() {
    let w = World::new();
    let m = w.open();
    let a = w.start(&m, FILE);
    let b = w.start(&m, FILE);
    m.tick(a, &w.fx()).expect("lower");
    let list = m.list().expect("list");
    assert_eq!(
        list.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![b, a],
        "newest first"
    );
    assert_eq!(list[1].next_step, Some(StepKind::WaitForCaches));
    let detail = m.show(a).expect("show");
    assert!(
        matches!(detail.timeline[0].status, StepStatus::Done { .. }),
        "{:?}",
        detail.timeline[0]
    );
    assert!(
        matches!(detail.timeline[1].status, StepStatus::Next { due: Some(d), .. } if since_t0(d) == 7260),
        "{:?}",
        detail.timeline[1]
    );
    assert!(matches!(
        detail.timeline[4].status,
        StepStatus::Pending { .. }
    ));
    assert_eq!(detail.steps.len(), 1, "one recorded step");
    assert!(m.abort(a, w.clock.now(), "not today").is_ok());
    assert_eq!(m.status(a).expect("status").state, State::Aborted);
    assert!(
        m.abort(a, w.clock.now(), "again").is_err(),
        "abort is final"
    );
    assert!(w.db().exists(), "the store file holds the migrations");
}
