//! What the servers served over a migration's life, for the dashboard's
//! chart: each survey of the moving records (a step's, or the watch's that
//! `cutover serve` makes between steps) counted as how many authorities and
//! how many resolvers gave the old values, the new values, or something
//! else, and stored per migration in `migration_observation`.
//!
//! ```text
//!  step survey (lower_ttls, note_serials, verify_switch) ──┐
//!  watch (serve, at most one survey per verify.interval) ──┴─▶ tally (pure: plan × survey)
//!      ──▶ same counts as the last row? ── yes ──▶ that row's last_at and surveys move on
//!                                       └─ no ───▶ a new row; past MAX_ROWS the oldest go
//! ```
//!
//! Bounded: a run of equal counts is one row (its first and last time), so
//! rows grow with the changes, not with time; at most [`MAX_ROWS`] per
//! migration are kept (the newest), and the watch asks at most once per
//! [`watch_every`].

use std::collections::BTreeSet;
use std::path::Path;

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::db::{ms, ts, On, RunnerError};
use crate::effects::{Checks, Clock};
use crate::observe::{ServerView, Survey};
use crate::plan::{later, Plan};
use cutover_zone::{Name, RecordType};

/// The most rows kept per migration (the newest).
pub const MAX_ROWS: usize = 2000;

/// How many servers of one kind gave what.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = ObservationTally)]
pub struct Tally {
    /// Servers asked.
    pub total: u32,
    /// Those that gave the old values for every moving record.
    pub old: u32,
    /// Those that gave the new values for every moving record.
    pub new: u32,
}

/// One stored observation: a run of surveys that counted alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = MigrationObservation)]
pub struct Observation {
    /// Row id: observations are in the order they were made.
    pub id: i64,
    /// When the first survey of the run was made.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// When the last survey of the run was made (`at` for a run of one).
    #[schema(value_type = String, format = DateTime)]
    pub last_at: Timestamp,
    /// How many surveys the run holds.
    pub surveys: u32,
    /// What made the first survey: a step ("verify_switch") or "watch".
    pub source: String,
    /// The authoritative addresses.
    pub authorities: Tally,
    /// The resolvers.
    pub resolvers: Tally,
}

/// How often the watch asks: the plan's verification interval, between
/// one second and a minute.
pub fn watch_every(plan: &Plan) -> u64 {
    plan.verify.interval.clamp(1, 60)
}

/// A set of values in a comparable form (lower case, no trailing dot).
fn normal<'a>(values: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    values
        .into_iter()
        .map(|v| v.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect()
}

/// What one server gave for every moving record: `Some(true)` new
/// everywhere, `Some(false)` old everywhere, `None` anything else (a mix,
/// other values, an error or no answer).
fn side_of(plan: &Plan, view: &ServerView) -> Option<bool> {
    let mut all_new = true;
    let mut all_old = true;
    for change in &plan.changes {
        let key = change.name.trim_end_matches('.');
        let answer = view.answers.iter().find(|a| {
            a.name.trim_end_matches('.').eq_ignore_ascii_case(key) && a.rtype == change.rtype
        });
        let answer = answer.filter(|a| a.error.is_none())?;
        let seen = normal(&answer.values);
        all_new &= seen == normal(&change.after);
        let before = change.before.as_ref().map(|b| normal(&b.values));
        all_old &= before.unwrap_or_default() == seen;
    }
    match (all_new, all_old) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// Counts one kind of server.
fn tally_of(plan: &Plan, views: &[ServerView]) -> Tally {
    let mut tally = Tally {
        total: u32::try_from(views.len()).unwrap_or(u32::MAX),
        ..Tally::default()
    };
    for view in views {
        match side_of(plan, view) {
            Some(true) => tally.new += 1,
            Some(false) => tally.old += 1,
            None => {}
        }
    }
    tally
}

/// A survey counted against the plan: (authorities, resolvers); `None`
/// when it asked none of the moving records (a survey of serials only).
pub fn tally(plan: &Plan, survey: &Survey) -> Option<(Tally, Tally)> {
    let asked = survey
        .authorities
        .iter()
        .chain(&survey.resolvers)
        .any(|view| !view.answers.is_empty());
    (asked && !plan.changes.is_empty()).then(|| {
        (
            tally_of(plan, &survey.authorities),
            tally_of(plan, &survey.resolvers),
        )
    })
}

/// The columns of an observation row, in the order [`row`] reads them.
const COLUMNS: &str = "id, at, last_at, surveys, source, authorities, authorities_old, \
     authorities_new, resolvers, resolvers_old, resolvers_new";

/// An observation row as an observation.
fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Observation> {
    Ok(Observation {
        id: r.get(0)?,
        at: ts(r.get(1)?),
        last_at: ts(r.get(2)?),
        surveys: r.get(3)?,
        source: r.get(4)?,
        authorities: Tally {
            total: r.get(5)?,
            old: r.get(6)?,
            new: r.get(7)?,
        },
        resolvers: Tally {
            total: r.get(8)?,
            old: r.get(9)?,
            new: r.get(10)?,
        },
    })
}

/// The newest observation of a migration.
pub(super) fn last(
    conn: &Connection,
    path: &Path,
    id: i64,
) -> Result<Option<Observation>, RunnerError> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM migration_observation WHERE migration_id = ?1 ORDER BY id DESC LIMIT 1"
        ),
        [id],
        row,
    )
    .optional()
    .on(path)
}

/// Every observation of a migration, oldest first.
pub(super) fn of(conn: &Connection, path: &Path, id: i64) -> Result<Vec<Observation>, RunnerError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM migration_observation WHERE migration_id = ?1 ORDER BY id"
        ))
        .on(path)?;
    let rows = stmt.query_map([id], row).on(path)?;
    rows.collect::<Result<Vec<_>, _>>().on(path)
}

/// Records a survey of migration `id` made `at` by `source` (nothing when
/// it asked none of the moving records): the last row moves on when it
/// counted alike, else a new row, keeping the newest [`MAX_ROWS`].
pub(super) fn record(
    conn: &Connection,
    path: &Path,
    id: i64,
    plan: &Plan,
    at: Timestamp,
    source: &str,
    survey: &Survey,
) -> Result<Option<Observation>, RunnerError> {
    record_capped(conn, path, id, plan, at, source, survey, MAX_ROWS)
}

/// [`record`], keeping the newest `cap` rows.
#[allow(clippy::too_many_arguments)]
fn record_capped(
    conn: &Connection,
    path: &Path,
    id: i64,
    plan: &Plan,
    at: Timestamp,
    source: &str,
    survey: &Survey,
    cap: usize,
) -> Result<Option<Observation>, RunnerError> {
    let Some((authorities, resolvers)) = tally(plan, survey) else {
        return Ok(None);
    };
    match last(conn, path, id)? {
        Some(last)
            if (last.authorities, last.resolvers) == (authorities, resolvers)
                && at >= last.last_at =>
        {
            conn.execute(
                "UPDATE migration_observation SET last_at = ?2, surveys = surveys + 1 WHERE id = ?1",
                params![last.id, ms(at)],
            )
            .on(path)?;
        }
        _ => {
            conn.execute(
                "INSERT INTO migration_observation (migration_id, at, last_at, surveys, source,
                     authorities, authorities_old, authorities_new, resolvers, resolvers_old, resolvers_new)
                 VALUES (?1, ?2, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    id,
                    ms(at),
                    source,
                    authorities.total,
                    authorities.old,
                    authorities.new,
                    resolvers.total,
                    resolvers.old,
                    resolvers.new
                ],
            )
            .on(path)?;
            conn.execute(
                "DELETE FROM migration_observation WHERE migration_id = ?1 AND id NOT IN
                     (SELECT id FROM migration_observation WHERE migration_id = ?1 ORDER BY id DESC LIMIT ?2)",
                params![id, i64::try_from(cap).unwrap_or(i64::MAX)],
            )
            .on(path)?;
        }
    }
    last(conn, path, id)
}

/// True while the watch asks for migration `m` at `now`: while it runs by
/// itself, and after a rollback until every cache has had the low TTL to
/// let go of the new values and two more surveys were due (so the chart
/// shows the old values come back).
pub(super) fn watched(m: &super::db::Migration, now: Timestamp) -> bool {
    let settled = later(
        m.updated_at,
        u64::from(m.low_ttl) + 2 * watch_every(&m.plan),
    );
    m.runs_by_itself() || (m.state == super::State::RolledBack && now < settled)
}

/// The migrations that may be watched: those not done, aborted or failed
/// (read without loading the finished ones' plans).
pub(super) fn candidates(conn: &Connection, path: &Path) -> Result<Vec<i64>, RunnerError> {
    let mut stmt = conn
        .prepare(
            "SELECT id FROM migration WHERE state NOT IN ('done', 'aborted', 'failed') ORDER BY id",
        )
        .on(path)?;
    let rows = stmt.query_map([], |r| r.get(0)).on(path)?;
    rows.collect::<Result<Vec<i64>, _>>().on(path)
}

/// The watch: a survey of the moving records of migration `id` while it
/// is [`watched`] and nothing was observed for [`watch_every`] (by any
/// process: the rows say when), recorded as `watch`. `None`: not due, or
/// nothing to count. The survey runs with the store unlocked.
pub(super) fn watch(
    conn: &std::sync::Mutex<Connection>,
    path: &Path,
    id: i64,
    checks: &dyn Checks,
    clock: &dyn Clock,
) -> Result<Option<Observation>, RunnerError> {
    let lock = || conn.lock().unwrap_or_else(|e| e.into_inner());
    let m = {
        let conn = lock();
        let m = super::db::load(&conn, path, id)?;
        let seen = last(&conn, path, id)?.map(|o| o.last_at);
        let due = seen.is_none_or(|at| clock.now() >= later(at, watch_every(&m.plan)));
        if !(watched(&m, clock.now()) && due) {
            return Ok(None);
        }
        m
    };
    let Ok(zone) = Name::from_ascii(&m.plan.zone) else {
        return Ok(None);
    };
    let questions: Vec<(Name, RecordType)> = m
        .plan
        .changes
        .iter()
        .filter_map(|c| Some((c.owner().ok()?, c.record_type().ok()?)))
        .collect();
    if questions.is_empty() {
        return Ok(None);
    }
    let survey = checks.survey(&zone, &questions, &m.plan.verify);
    // Kept only if still watched when it is written: nothing is added for a
    // migration paused meanwhile, nor once the watch is over.
    let conn = lock();
    let at = clock.now();
    if !watched(&super::db::load(&conn, path, id)?, at) {
        return Ok(None);
    }
    record(&conn, path, id, &m.plan, at, "watch", &survey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Answered;

    /// A plan moving www from .10 to .20 (the rest of the plan unread here).
    fn plan() -> Plan {
        let mut plan: Plan = serde_json::from_value(serde_json::json!({
            "zone": "example.com.", "provider": "embedded", "created_at": "2026-03-01T00:00:00Z",
            "changes": [{"name": "www.example.com.", "rtype": "A",
                "before": {"ttl": 3600, "values": ["192.0.2.10"]}, "after": ["198.51.100.20"],
                "final_ttl": 3600, "reason": "moves"}],
            "low_ttl": 60, "steps": [], "warnings": [], "checks": [], "new_addresses": [],
            "verify": {"authorities": [], "resolvers": [], "tries": 3, "interval": 10},
            "flush": [], "mail": null
        }))
        .expect("a plan");
        plan.verify.interval = 10;
        plan
    }

    /// A server that gave `values` for www (an error when `None`).
    fn view(values: Option<&str>) -> ServerView {
        ServerView {
            server: "s".into(),
            serial: None,
            answers: vec![Answered {
                name: "WWW.example.com.".into(),
                rtype: "A".into(),
                ttl: Some(60),
                values: values.into_iter().map(str::to_owned).collect(),
                error: values.is_none().then(|| "timeout".into()),
            }],
        }
    }

    #[test]
    fn servers_are_counted_old_new_or_neither_by_the_plan() {
        let survey = Survey {
            authorities: vec![view(Some("198.51.100.20")), view(Some("192.0.2.10"))],
            resolvers: vec![
                view(Some("192.0.2.10")),
                view(None),
                view(Some("192.0.2.99")),
            ],
            problems: vec![],
        };
        assert_eq!(
            tally(&plan(), &survey),
            Some((
                Tally {
                    total: 2,
                    old: 1,
                    new: 1
                },
                Tally {
                    total: 3,
                    old: 1,
                    new: 0
                }
            )),
            "expected one authority old and one new, one resolver old and two neither"
        );
        let serials_only = Survey {
            authorities: vec![ServerView {
                server: "s".into(),
                serial: Some(7),
                answers: vec![],
            }],
            ..Survey::default()
        };
        assert_eq!(
            tally(&plan(), &serials_only),
            None,
            "expected a survey of serials only not counted"
        );
    }

    #[test]
    fn a_server_on_new_values_for_one_record_and_old_for_another_is_neither() {
        let mut plan = plan();
        let mut apex = plan.changes[0].clone();
        apex.name = "example.com.".into();
        plan.changes.push(apex);
        let answer = |name: &str, value: &str| Answered {
            name: name.into(),
            rtype: "A".into(),
            ttl: Some(60),
            values: vec![value.into()],
            error: None,
        };
        let server = |www: &str, apex: &str| ServerView {
            server: "s".into(),
            serial: None,
            answers: vec![
                answer("www.example.com.", www),
                answer("example.com.", apex),
            ],
        };
        let survey = Survey {
            authorities: vec![
                server("198.51.100.20", "198.51.100.20"),
                server("198.51.100.20", "192.0.2.10"),
                server("192.0.2.10", "192.0.2.10"),
            ],
            resolvers: vec![ServerView {
                server: "r".into(),
                serial: None,
                answers: vec![answer("www.example.com.", "198.51.100.20")],
            }],
            problems: vec![],
        };
        assert_eq!(
            tally(&plan, &survey),
            Some((
                Tally {
                    total: 3,
                    old: 1,
                    new: 1
                },
                Tally {
                    total: 1,
                    old: 0,
                    new: 0
                }
            )),
            "expected a server new for both records new, one old for both old, a mix neither, \
             and a resolver that answered one record of two neither"
        );
    }

    #[test]
    fn equal_counts_extend_a_row_and_the_oldest_rows_go_past_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cutover.db");
        let mut conn = super::super::db::open(&path).expect("open");
        let plan = plan();
        let id = super::super::db::insert(&mut conn, &path, "m.toml", "", &plan, t(0))
            .expect("a migration");
        let survey = |value: &str| Survey {
            authorities: vec![view(Some(value))],
            resolvers: vec![],
            problems: vec![],
        };
        let record = |at: i64, value: &str| {
            record_capped(&conn, &path, id, &plan, t(at), "watch", &survey(value), 3)
                .expect("recorded")
                .expect("counted")
        };
        record(0, "192.0.2.10");
        let run = record(5, "192.0.2.10");
        assert_eq!(
            (run.at, run.last_at, run.surveys),
            (t(0), t(5), 2),
            "expected two equal surveys in one row, from the first to the last"
        );
        record(6, "198.51.100.20");
        record(7, "192.0.2.99");
        record(8, "192.0.2.10");
        let rows = of(&conn, &path, id).expect("rows");
        let times: Vec<Timestamp> = rows.iter().map(|o| o.at).collect();
        assert_eq!(
            times,
            [t(6), t(7), t(8)],
            "expected the newest three rows kept, seen {rows:?}"
        );
    }

    /// `seconds` after the tests' start.
    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_772_323_200 + seconds).expect("a time")
    }
}
