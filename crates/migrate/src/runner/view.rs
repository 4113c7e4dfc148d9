//! How a migration reads from outside: when its next step falls due, its
//! summary, and its timeline with what is done, next and pending — read
//! from what was recorded, never made up.
//!
//! ```text
//!  planned step i ── i < cursor ──────────▶ its last row that went past it: done | skipped (at, why)
//!                 ── stopped (rolled back, aborted, failed) ──▶ its last row: done | skipped | failed, else not run
//!                 ── i == cursor ────────▶ next (due, and its last attempt: waiting | retrying | failed)
//!                 ── i > cursor ─────────▶ pending (the plan's time, pushed back by real progress)
//! ```

use jiff::Timestamp;

use super::db::{kind_str, Migration};
use super::{
    Attempt, Detail, Event, State, StepOutcome, StepRecord, StepStatus, Summary, TimelineEntry,
};
use crate::plan::{later, mail_words, StepKind};

impl Migration {
    /// The state a resumed migration goes back to.
    pub(super) fn resumed_state(&self) -> State {
        if self.rollback.is_some() {
            return State::RollingBack;
        }
        match self.plan.steps.get(self.cursor) {
            Some(_) if self.cursor == 0 && self.last_done_at.is_none() => State::Planned,
            Some(_) => self.state_at(self.cursor),
            None => State::Done,
        }
    }

    /// The state while planned step `index` is the next: an approval gate
    /// not yet reached stands where the step it gates puts the migration
    /// (it awaits approval only once the gate falls due).
    pub(super) fn state_at(&self, index: usize) -> State {
        let steps = &self.plan.steps;
        match steps.get(index).map(|s| s.kind) {
            Some(StepKind::Approval) => steps
                .get(index + 1)
                .map_or(State::Done, |gated| State::before(gated.kind)),
            Some(kind) => State::before(kind),
            None => State::Done,
        }
    }

    /// True when ticks have something to do now or later.
    pub(super) fn runs_by_itself(&self) -> bool {
        self.state.runs_by_itself()
    }

    /// The least delay of the step at the cursor after the previous one.
    fn delay(&self, index: usize) -> u64 {
        let steps = &self.plan.steps;
        let Some(step) = steps.get(index) else {
            return 0;
        };
        // An approval gate carries the wait of the step it gates, which
        // then follows it at once.
        let timed = match step.kind {
            StepKind::Approval => steps.get(index + 1).map_or(step.kind, |s| s.kind),
            _ if index > 0 && steps[index - 1].kind == StepKind::Approval => {
                return step.after_previous
            }
            kind => kind,
        };
        match timed {
            // A TTL floor found after lowering pushes the verification back.
            StepKind::VerifySwitch => step.after_previous.max(u64::from(self.low_ttl) + 1),
            _ => step.after_previous,
        }
    }

    /// When the next step falls due (`None`: nothing runs by itself).
    pub(super) fn next_due(&self) -> Option<Timestamp> {
        if !self.runs_by_itself() {
            return None;
        }
        if self.rollback.is_some() {
            return Some(match self.last_try_at {
                Some(t) if self.attempts > 0 => later(t, self.plan.verify.interval.max(1)),
                _ => self.updated_at,
            });
        }
        let step = self.plan.steps.get(self.cursor)?;
        let base = self.last_done_at.unwrap_or(self.created_at);
        let mut due = step.at.max(later(base, self.delay(self.cursor)));
        // A try of this step (a failed or waiting attempt, or mail not
        // acknowledged by every relay, which counts no attempt): the next
        // one after the interval. `advance` clears it.
        if let Some(t) = self.last_try_at {
            due = due.max(later(t, self.plan.verify.interval.max(1)));
        }
        Some(due)
    }

    /// The summary.
    pub(super) fn summary(&self) -> Summary {
        Summary {
            id: self.id,
            zone: self.zone.clone(),
            zones: match self.plan.zones.is_empty() {
                // A plan made before plans named their zones: its one zone.
                true => vec![self.zone.clone()],
                false => self.plan.zones.iter().map(|z| z.zone.clone()).collect(),
            },
            file_name: self.file_name.clone(),
            state: self.state,
            phase: self.phase,
            reason: self.reason.clone(),
            next_step: if self.runs_by_itself() && self.rollback.is_none() {
                self.plan.steps.get(self.cursor).map(|s| s.kind)
            } else {
                None
            },
            next_due: self.next_due(),
            // The state and the stamp are written together as the gate
            // starts to wait; nothing else writes while it waits.
            awaiting_approval_since: (self.state == State::AwaitingApproval)
                .then_some(self.updated_at),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The detail, with the timeline.
    pub(super) fn detail(&self, steps: Vec<StepRecord>, events: Vec<Event>) -> Detail {
        // The rows of planned step `index`, newest first (rows written
        // before positions were recorded are matched by kind).
        let rows_of = |index: usize| {
            let kind = kind_str(self.plan.steps[index].kind);
            steps
                .iter()
                .rev()
                .filter(move |s| s.position.map_or(s.kind == kind, |p| p == index))
        };
        // A step behind the cursor: its last attempt that ended it (done,
        // skipped, or failed — a failed flush does not hold the migration up).
        let past = |index: usize| -> StepStatus {
            let went_past = rows_of(index).find(|s| {
                s.done_at.is_some()
                    && matches!(
                        s.outcome,
                        Some(StepOutcome::Done | StepOutcome::Skipped | StepOutcome::Failed)
                    )
            });
            match went_past {
                Some(row) => status_of(row),
                None => StepStatus::Skipped {
                    at: None,
                    reason: Some("no record of this step is left".into()),
                },
            }
        };
        let stopped = matches!(
            self.state,
            State::Aborted | State::Failed | State::RolledBack | State::RollingBack
        );
        let mut timeline = Vec::new();
        // Planned times after the cursor move with the real progress; while
        // nothing runs by itself (paused), they are the plan's own times:
        // no time after the resume can be promised.
        let due = self.next_due();
        let mut projected = due.unwrap_or(self.updated_at);
        for (i, step) in self.plan.steps.iter().enumerate() {
            let status = if i < self.cursor {
                past(i)
            } else if stopped {
                // What happened to it, when it ran to an end; else it will not run.
                match rows_of(i).next() {
                    Some(row)
                        if row.done_at.is_some()
                            && matches!(
                                row.outcome,
                                Some(
                                    StepOutcome::Done | StepOutcome::Skipped | StepOutcome::Failed
                                )
                            ) =>
                    {
                        status_of(row)
                    }
                    _ => StepStatus::NotRun,
                }
            } else if i == self.cursor {
                StepStatus::Next {
                    due: self.next_due(),
                    // Its last attempt in this pass: one that counts toward
                    // the tries, or one left open by a provider error.
                    last: rows_of(i)
                        .next()
                        .filter(|row| !row.outcome.is_some_and(StepOutcome::advanced))
                        .filter(|row| self.attempts > 0 || row.done_at.is_none())
                        .and_then(attempt_of),
                }
            } else {
                projected = step.at.max(later(projected, self.delay(i)));
                StepStatus::Pending {
                    at: if due.is_some() { projected } else { step.at },
                }
            };
            timeline.push(TimelineEntry {
                kind: step.kind,
                what: step.what.clone(),
                why: step.why.clone(),
                mail: mail_words(&self.plan, step.kind),
                touches: if self.plan.many_zones() {
                    step.touches.clone()
                } else {
                    Vec::new()
                },
                status,
            });
        }
        Detail {
            summary: self.summary(),
            plan: self.plan.clone(),
            file_text: crate::file::redact(&self.file_text),
            timeline,
            steps,
            events,
        }
    }
}

/// The last attempt a step row records, if it ended (or stopped) with an outcome.
fn attempt_of(row: &StepRecord) -> Option<Attempt> {
    Some(Attempt {
        outcome: row.outcome?,
        at: row.done_at.unwrap_or(row.started_at),
        attempt: row.attempt,
        reason: row.reason.clone(),
    })
}

/// Where a step stands by the row of its attempt that ended.
fn status_of(row: &StepRecord) -> StepStatus {
    let at = row.done_at.unwrap_or(row.started_at);
    match row.outcome {
        Some(StepOutcome::Done) => StepStatus::Done { at },
        Some(StepOutcome::Skipped) => StepStatus::Skipped {
            at: Some(at),
            reason: row.reason.clone(),
        },
        _ => StepStatus::Failed {
            at,
            reason: row.reason.clone(),
        },
    }
}
