//! A migration's events: everything that happened to it, appended as it
//! happened and never changed (the store refuses an UPDATE or DELETE of
//! `migration_event`), each with its time, its cause and the step whose
//! evidence it rests on; and each in words, for every output alike.
//!
//! ```text
//!  insert ──▶ started            control (pause|resume|abort|rollback) ──▶ state, cause operator
//!                                control approve ──▶ approval, cause operator, by: who
//!  finish / note ──▶ step (+ state when it needs the operator's eye)
//!  update ──▶ state (the runner's own change: automatic, or a conflict)
//! ```

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use super::db::{ms, state_of, ts, On, RunnerError};
use super::{Cause, Event, EventKind, State, StepOutcome};

/// An event to append.
pub(super) struct NewEvent {
    /// Who or what caused it.
    pub cause: Cause,
    /// What it records.
    pub kind: EventKind,
    /// The step row it rests on.
    pub step_id: Option<i64>,
    /// The step's kind.
    pub step: Option<String>,
    /// How the step attempt ended.
    pub outcome: Option<StepOutcome>,
    /// The state before.
    pub from: Option<State>,
    /// The state after.
    pub to: Option<State>,
    /// Why, in words.
    pub reason: Option<String>,
    /// Who, when a named person did it (an approval).
    pub by: Option<String>,
}

/// Appends an event at `at`.
pub(super) fn append(
    conn: &Connection,
    path: &Path,
    migration: i64,
    at: Timestamp,
    event: &NewEvent,
) -> Result<(), RunnerError> {
    conn.execute(
        "INSERT INTO migration_event (migration_id, at, cause, kind, step_id, step, outcome,
             state_from, state_to, reason, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            migration,
            ms(at),
            event.cause.as_str(),
            kind_str(event.kind),
            event.step_id,
            event.step,
            event.outcome.map(StepOutcome::as_str),
            event.from.map(State::as_str),
            event.to.map(State::as_str),
            event.reason,
            event.by,
        ],
    )
    .on(path)?;
    Ok(())
}

/// Every event of a migration, in order.
pub(super) fn of(conn: &Connection, path: &Path, id: i64) -> Result<Vec<Event>, RunnerError> {
    let mut stmt = conn
        .prepare(
            "SELECT id, at, cause, kind, step_id, step, outcome, state_from, state_to, reason, actor
             FROM migration_event WHERE migration_id = ?1 ORDER BY id",
        )
        .on(path)?;
    let rows = stmt
        .query_map([id], |r| {
            let cause: String = r.get(2)?;
            let kind: String = r.get(3)?;
            let mut event = Event {
                id: r.get(0)?,
                at: ts(r.get(1)?),
                cause: match cause.as_str() {
                    "operator" => Cause::Operator,
                    "conflict" => Cause::Conflict,
                    _ => Cause::Automatic,
                },
                kind: match kind.as_str() {
                    "started" => EventKind::Started,
                    "step" => EventKind::Step,
                    "approval" => EventKind::Approval,
                    _ => EventKind::State,
                },
                step_id: r.get(4)?,
                step: r.get(5)?,
                outcome: r
                    .get::<_, Option<String>>(6)?
                    .as_deref()
                    .and_then(StepOutcome::parse),
                from: r.get::<_, Option<String>>(7)?.as_deref().and_then(state_of),
                to: r.get::<_, Option<String>>(8)?.as_deref().and_then(state_of),
                reason: r.get(9)?,
                by: r.get(10)?,
                text: String::new(),
            };
            event.text = words(&event);
            Ok(event)
        })
        .on(path)?;
    rows.collect::<Result<Vec<_>, _>>().on(path)
}

/// An operator's approval of a gate: who, when, and since when the gate
/// had waited.
pub(super) struct Approved {
    /// Who approved.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// When the gate's waiting attempt that was approved ended.
    pub since: Timestamp,
}

/// The approval of the gate at plan position `position`, if its latest
/// ended attempt is a wait that an operator approved (an approval of an
/// earlier pass, before a rollback and a resume, does not count).
pub(super) fn approval(
    conn: &Connection,
    path: &Path,
    migration: i64,
    position: usize,
) -> Result<Option<Approved>, RunnerError> {
    conn.query_row(
        "SELECT e.actor, e.at, s.done_at FROM migration_event e
             JOIN migration_step s ON s.id = e.step_id
         WHERE e.migration_id = ?1 AND e.kind = 'approval' AND s.outcome = 'waiting'
           AND s.id = (SELECT max(id) FROM migration_step
                       WHERE migration_id = ?1 AND kind = 'approval' AND position = ?2
                         AND done_at IS NOT NULL)
         ORDER BY e.id DESC LIMIT 1",
        params![migration, position as i64],
        |r| {
            Ok(Approved {
                by: r
                    .get::<_, Option<String>>(0)?
                    .unwrap_or_else(|| "an operator".into()),
                at: ts(r.get(1)?),
                since: ts(r.get(2)?),
            })
        },
    )
    .optional()
    .on(path)
}

/// The gate's latest ended attempt at plan position `position` if it is a
/// wait (the one an approval now refers to).
pub(super) fn waiting_gate(
    conn: &Connection,
    path: &Path,
    migration: i64,
    position: usize,
) -> Result<Option<i64>, RunnerError> {
    conn.query_row(
        "SELECT id, outcome FROM migration_step
         WHERE migration_id = ?1 AND kind = 'approval' AND position = ?2 AND done_at IS NOT NULL
         ORDER BY id DESC LIMIT 1",
        params![migration, position as i64],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)),
    )
    .optional()
    .on(path)
    .map(|row| row.and_then(|(id, outcome)| (outcome.as_deref() == Some("waiting")).then_some(id)))
}

/// How many step attempts ended with each outcome, by step, over every
/// migration (attempts recorded before outcomes had these words are
/// counted under the word they were carried over as).
pub(super) fn step_counts(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<(String, StepOutcome, u64)>, RunnerError> {
    let mut stmt = conn
        .prepare(
            "SELECT step, outcome, count(*) FROM migration_event
             WHERE kind = 'step' AND step IS NOT NULL AND outcome IS NOT NULL
             GROUP BY step, outcome ORDER BY step, outcome",
        )
        .on(path)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .on(path)?;
    let mut out = Vec::new();
    for row in rows {
        let (step, outcome, count) = row.on(path)?;
        if let Some(outcome) = StepOutcome::parse(&outcome) {
            out.push((step, outcome, u64::try_from(count).unwrap_or(0)));
        }
    }
    Ok(out)
}

/// An event kind's stored name.
fn kind_str(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Started => "started",
        EventKind::Step => "step",
        EventKind::State => "state",
        EventKind::Approval => "approval",
    }
}

/// A step's name in words: "lower_ttls" → "lower ttls".
pub fn step_words(kind: &str) -> String {
    kind.replace('_', " ")
}

/// A state's name in words: "rolled_back" → "rolled back".
fn state_words(state: State) -> String {
    state.as_str().replace('_', " ")
}

/// The event in words: "switch: done", "paused by the operator: lunch",
/// "rolling back automatically: …".
pub(super) fn words(event: &Event) -> String {
    let by = match event.cause {
        Cause::Operator => " by the operator",
        Cause::Automatic => " automatically",
        Cause::Conflict => " on a conflict",
    };
    let head = match event.kind {
        EventKind::Approval => format!(
            "approved by {}",
            event
                .by
                .as_deref()
                .unwrap_or("an operator whose name was not recorded")
        ),
        EventKind::Started => {
            return match &event.reason {
                Some(from) => format!("started{by} {from}"),
                None => format!("started{by}"),
            }
        }
        EventKind::Step => match event.outcome {
            Some(outcome) => format!(
                "{}: {outcome}",
                step_words(event.step.as_deref().unwrap_or("step"))
            ),
            // Taken up again after a crash: the reason says so.
            None => step_words(event.step.as_deref().unwrap_or("step")),
        },
        EventKind::State => match (event.cause, event.from, event.to) {
            (_, _, Some(State::Paused)) => format!("paused{by}"),
            (_, _, Some(State::AwaitingApproval)) => "awaiting approval".into(),
            (_, _, Some(State::Aborted)) => format!("aborted{by}"),
            (Cause::Operator, _, Some(State::RollingBack)) => {
                "rollback requested by the operator".into()
            }
            (_, _, Some(State::RollingBack)) => format!("rolling back{by}"),
            (_, _, Some(State::RolledBack)) => "rolled back".into(),
            (_, _, Some(State::Done)) => "done: every step is done".into(),
            (_, _, Some(State::Failed)) => format!("failed{by}"),
            (Cause::Operator, Some(from), Some(to)) => format!(
                "resumed by the operator ({} → {})",
                state_words(from),
                state_words(to)
            ),
            (_, Some(from), Some(to)) => {
                format!("{} → {}", state_words(from), state_words(to))
            }
            (_, None, Some(to)) => state_words(to),
            (_, _, None) => "changed".into(),
        },
    };
    // The migration's reason often opens with what the head already says.
    let reason = event.reason.as_deref().map(|r| {
        ["paused: ", "rolled back automatically: "]
            .iter()
            .find_map(|said| r.strip_prefix(said))
            .unwrap_or(r)
    });
    match reason {
        Some(reason) if !reason.is_empty() => format!("{head}: {reason}"),
        _ => head,
    }
}
