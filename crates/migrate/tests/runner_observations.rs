//! What the servers served over a migration, as the dashboard's chart reads
//! it, on a test clock: the watch and the steps' surveys counted old / new
//! per kind of server, a run of equal counts kept as one row, the watch
//! asking at most once per verification interval and only while the
//! migration runs by itself.

mod support;

use cutover_migrate::runner::observations::Tally;
use cutover_migrate::{Clock, State};
use support::*;

#[test]
fn the_watch_and_the_steps_record_old_then_new_at_a_bounded_rate() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    let first = m
        .watch(id, &w.checks, &w.clock)
        .expect("watch")
        .expect("the first watch observes");
    let old = Tally {
        total: 1,
        old: 1,
        new: 0,
    };
    assert_eq!(
        (first.source.as_str(), first.authorities, first.resolvers),
        ("watch", old, old),
        "expected the authority and the resolver on the old values, seen {first:?}"
    );
    w.clock.advance(9);
    assert_eq!(
        m.watch(id, &w.checks, &w.clock).expect("watch"),
        None,
        "expected no second survey within the verification interval (10 s)"
    );
    let surveys = w.checks.surveys.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(surveys, 1, "expected one survey asked, seen {surveys}");

    // The lowering's survey counts alike: the same row, one survey more.
    m.tick(id, &w.fx()).expect("lower");
    let rows = m.observations(id).expect("observations");
    assert_eq!(
        rows.iter().map(|o| o.surveys).collect::<Vec<_>>(),
        [2],
        "expected the lowering's survey in the watch's row, seen {rows:?}"
    );
    assert_eq!(
        rows[0].last_at,
        w.clock.now(),
        "expected the run to end at the lowering"
    );

    for _ in 0..20 {
        if m.status(id).expect("status").state == State::Observing {
            break;
        }
        w.tick_when_due(&m, id);
    }
    assert_eq!(m.status(id).expect("status").state, State::Observing);
    let rows = m.observations(id).expect("observations");
    let last = rows.last().expect("rows");
    let new = Tally {
        total: 1,
        old: 0,
        new: 1,
    };
    assert_eq!(
        (last.source.as_str(), last.authorities, last.resolvers),
        ("verify_switch", new, new),
        "expected the verification to see the new values everywhere, seen {rows:?}"
    );
    assert_eq!(
        rows.first().map(|o| (o.authorities, o.resolvers)),
        Some((old, old)),
        "expected the first row still old, seen {rows:?}"
    );
    assert!(
        rows.windows(2)
            .all(|p| p[0].at <= p[1].at && p[0].last_at <= p[1].at),
        "expected the rows in time order, seen {rows:?}"
    );

    // Rolled back: watched until the caches have had the low TTL to let go
    // of the new values, and two more intervals.
    m.rollback(id, w.clock.now(), "test").expect("rollback");
    for _ in 0..5 {
        if m.status(id).expect("status").state == State::RolledBack {
            break;
        }
        w.tick_when_due(&m, id);
    }
    assert_eq!(m.status(id).expect("status").state, State::RolledBack);
    w.clock.advance(10);
    let back = m
        .watch(id, &w.checks, &w.clock)
        .expect("watch")
        .expect("a rolled-back migration is watched while caches let go");
    assert_eq!(
        (back.authorities, back.resolvers),
        (old, old),
        "expected the old values back, seen {back:?}"
    );
    let low = u64::from(m.show(id).expect("show").plan.low_ttl);
    w.clock.advance(low + 20);
    assert!(
        !m.watching(id, w.clock.now()).expect("watching"),
        "expected the watch over once the low TTL ({low} s) and two intervals passed"
    );
    assert_eq!(m.watch(id, &w.checks, &w.clock).expect("watch"), None);
    assert!(m.watched(w.clock.now()).expect("watched").is_empty());
}

#[test]
fn a_paused_migration_is_not_watched() {
    let w = World::new();
    let m = w.open();
    let id = w.start(&m, FILE);
    m.tick(id, &w.fx()).expect("lower");
    m.pause(id, w.clock.now(), "lunch").expect("pause");
    w.clock.advance(3600);
    let before = w.checks.surveys.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(m.watch(id, &w.checks, &w.clock).expect("watch"), None);
    assert_eq!(
        w.checks.surveys.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "expected no survey of a paused migration"
    );
    assert!(!m.watching(id, w.clock.now()).expect("watching"));
}
