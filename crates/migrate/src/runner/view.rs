//! How a migration reads from outside: when its next step falls due, its
//! summary, and its timeline with what is done, next and pending.

use jiff::Timestamp;

use super::db::{kind_str, Migration};
use super::{Detail, State, StepRecord, StepStatus, Summary, TimelineEntry};
use crate::plan::{later, StepKind};

impl Migration {
    /// The state a resumed migration goes back to.
    pub(super) fn resumed_state(&self) -> State {
        if self.rollback.is_some() {
            return State::RollingBack;
        }
        match self.plan.steps.get(self.cursor) {
            Some(_) if self.cursor == 0 && self.last_done_at.is_none() => State::Planned,
            Some(step) => State::before(step.kind),
            None => State::Done,
        }
    }

    /// True when ticks have something to do now or later.
    pub(super) fn runs_by_itself(&self) -> bool {
        !(self.state.is_final() || matches!(self.state, State::Paused | State::RolledBack))
    }

    /// The least delay of the step at the cursor after the previous one.
    fn delay(&self, index: usize) -> u64 {
        let Some(step) = self.plan.steps.get(index) else {
            return 0;
        };
        match step.kind {
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
        if self.attempts > 0 {
            if let Some(t) = self.last_try_at {
                due = due.max(later(t, self.plan.verify.interval.max(1)));
            }
        }
        Some(due)
    }

    /// The summary.
    pub(super) fn summary(&self) -> Summary {
        Summary {
            id: self.id,
            zone: self.zone.clone(),
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
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The detail, with the timeline.
    pub(super) fn detail(&self, steps: Vec<StepRecord>) -> Detail {
        let done_at = |index: usize| -> Option<Timestamp> {
            let kind = kind_str(self.plan.steps[index].kind);
            steps
                .iter()
                .rev()
                .find(|s| s.kind == kind && s.outcome.as_deref() == Some("ok"))
                .and_then(|s| s.done_at)
        };
        let stopped = matches!(
            self.state,
            State::Aborted | State::Failed | State::RolledBack | State::RollingBack
        );
        let mut timeline = Vec::new();
        // Planned times after the cursor move with the real progress.
        let mut projected = self.next_due().unwrap_or(self.updated_at);
        for (i, step) in self.plan.steps.iter().enumerate() {
            let status = if i < self.cursor {
                match done_at(i) {
                    Some(at) => StepStatus::Done { at },
                    None => StepStatus::Done {
                        at: self.updated_at,
                    },
                }
            } else if stopped {
                StepStatus::Skipped
            } else if i == self.cursor {
                StepStatus::Next {
                    due: self.next_due(),
                }
            } else {
                projected = step.at.max(later(projected, self.delay(i)));
                StepStatus::Pending { at: projected }
            };
            timeline.push(TimelineEntry {
                kind: step.kind,
                what: step.what.clone(),
                why: step.why.clone(),
                status,
            });
        }
        Detail {
            summary: self.summary(),
            plan: self.plan.clone(),
            file_text: crate::file::redact(&self.file_text),
            timeline,
            steps,
        }
    }
}
