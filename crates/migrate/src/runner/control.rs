//! What operators do to a migration (pause, resume, abort, roll back,
//! approve the gate it waits at), and
//! how the runner keeps such a command when it arrives while a step runs.

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{Connection, TransactionBehavior};

use super::db::{load, save, state_of, Migration, On, RunnerError};
use super::events::{self, NewEvent};
use super::{Cause, EventKind, Phase, State, Summary};
use crate::plan::StepKind;

/// An operator's command.
pub(super) enum Control<'a> {
    /// Pause, with a reason.
    Pause(&'a str),
    /// Resume.
    Resume,
    /// Abort, with a reason.
    Abort(&'a str),
    /// Roll back, with a reason.
    Rollback(&'a str),
    /// Approve the gate the migration waits at: by whom, and why.
    Approve(&'a str, Option<&'a str>),
}

/// Applies an operator's command.
pub(super) fn control(
    conn: &mut Connection,
    path: &Path,
    id: i64,
    now: Timestamp,
    command: Control<'_>,
) -> Result<Summary, RunnerError> {
    // Read and write in one transaction: a runner finishing a step in
    // another process cannot slip in between.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .on(path)?;
    let summary = command_in(&tx, path, id, now, command)?;
    tx.commit().on(path)?;
    Ok(summary)
}

/// Applies an operator's command inside the caller's transaction.
fn command_in(
    conn: &Connection,
    path: &Path,
    id: i64,
    now: Timestamp,
    command: Control<'_>,
) -> Result<Summary, RunnerError> {
    let mut m = load(conn, path, id)?;
    let from = m.state;
    let wrong = |operation| RunnerError::WrongState {
        id,
        state: m.state,
        operation,
    };
    let said = match &command {
        Control::Pause(reason) | Control::Abort(reason) | Control::Rollback(reason) => {
            Some(reason.to_string())
        }
        Control::Approve(_, reason) => reason.map(str::to_string),
        Control::Resume => None,
    };
    let mut kind = EventKind::State;
    let mut by = None;
    let mut step_id = None;
    match command {
        Control::Pause(reason) => {
            if m.state.is_final() || matches!(m.state, State::RolledBack | State::RollingBack) {
                return Err(wrong("pause"));
            }
            m.state = State::Paused;
            m.reason = Some(reason.to_string());
        }
        Control::Resume => match m.state {
            State::Paused => {
                m.state = m.resumed_state();
                m.reason = None;
                m.attempts = 0;
                m.last_try_at = None;
            }
            State::RolledBack if m.phase == Phase::Lowered => {
                // Try the switch again, from the checks of the new servers
                // (behind the approval gate before them, if the file asks
                // for one: an approval of the first try does not count).
                let steps = &m.plan.steps;
                m.cursor = steps
                    .iter()
                    .position(|s| s.kind == StepKind::VerifyNew)
                    .map(|at| match at.checked_sub(1) {
                        Some(gate) if steps[gate].kind == StepKind::Approval => gate,
                        _ => at,
                    })
                    .unwrap_or(m.cursor);
                m.state = m.state_at(m.cursor);
                m.reason = None;
                m.attempts = 0;
                m.last_try_at = None;
                m.last_done_at = Some(now);
            }
            _ => return Err(wrong("resume")),
        },
        Control::Abort(reason) => {
            if m.state.is_final() {
                return Err(wrong("abort"));
            }
            m.state = State::Aborted;
            m.rollback = None;
            m.reason = Some(reason.to_string());
        }
        Control::Rollback(reason) => {
            let nothing_to_undo = m.phase == Phase::Original;
            if m.state.is_final() || nothing_to_undo && m.state == State::RolledBack {
                return Err(wrong("roll back"));
            }
            m.state = State::RollingBack;
            m.rollback = Some("manual".into());
            m.reason = Some(reason.to_string());
            m.attempts = 0;
            m.last_try_at = None;
        }
        Control::Approve(who, _) => {
            let gate = match m.state {
                State::AwaitingApproval => events::waiting_gate(conn, path, id, m.cursor)?,
                _ => None,
            };
            let Some(gate) = gate else {
                return Err(RunnerError::NotAwaitingApproval { id, state: m.state });
            };
            // Back where the gated step puts it: the next tick finds the
            // approval, goes past the gate and runs the step.
            m.state = m.state_at(m.cursor);
            m.reason = None;
            m.attempts = 0;
            m.last_try_at = None;
            kind = EventKind::Approval;
            by = Some(who.to_string());
            step_id = Some(gate);
        }
    }
    save(conn, path, &m, now)?;
    events::append(
        conn,
        path,
        id,
        now,
        &NewEvent {
            cause: Cause::Operator,
            kind,
            step_id,
            step: step_id.map(|_| "approval".to_string()),
            outcome: None,
            from: Some(from),
            to: Some(m.state),
            by,
            reason: said,
        },
    )?;
    Ok(m.summary())
}

/// Folds into `m` an operator's command stored since this process last
/// read or wrote the migration: abort and pause win over the runner's next
/// state, a rollback request is kept; a final state the runner reached
/// (done, failed) stands. Returns the state stored before this save.
pub(super) fn merge_operator(
    conn: &Connection,
    path: &Path,
    m: &mut Migration,
) -> Result<Option<State>, RunnerError> {
    let (state, rollback, reason): (String, Option<String>, Option<String>) = conn
        .query_row(
            "SELECT state, rollback, reason FROM migration WHERE id = ?1",
            [m.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .on(path)?;
    let Some(state) = state_of(&state) else {
        return Ok(None);
    };
    if (state, &rollback) == (m.seen.0, &m.seen.1) || m.state.is_final() {
        return Ok(Some(state));
    }
    match state {
        State::Aborted => {
            m.state = State::Aborted;
            m.rollback = None;
            m.reason = reason;
        }
        State::Paused => {
            m.state = State::Paused;
            m.reason = reason;
        }
        State::RollingBack if rollback.is_some() && m.rollback.is_none() => {
            m.state = State::RollingBack;
            m.rollback = rollback;
            m.reason = reason;
            m.attempts = 0;
            m.last_try_at = None;
        }
        _ => {}
    }
    Ok(Some(state))
}
