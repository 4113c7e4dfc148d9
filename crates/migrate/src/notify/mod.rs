//! Notifications: telling people what a migration does, by webhook, Slack
//! or e-mail, without ever holding a step up.
//!
//! ```text
//!  runner ──appends──▶ migration_event (append-only)
//!                            │  Worker (its own thread, in `migrate run` and `serve`)
//!                            ▼
//!  enqueue: events after the cursor ──notice_of (pure: event → happening, words)──▶
//!           one outbox row per (event, target that wants it), cursor moved, one transaction
//!  deliver: due rows ──claim (next_at pushed out)──▶ webhook (signed) │ slack │ SMTP
//!           ├─ delivered ──▶ delivered_at
//!           └─ failed ──▶ attempts + 1, last error, next_at = now + backoff (1 s, 2 s, 4 s … 15 min, jittered)
//! ```
//!
//! Delivery is at least once: a row is marked delivered only after the
//! receiver accepted it (an HTTP 2xx, SMTP's 250 after DATA), and a row not
//! delivered stays in the store, so a process started later goes on trying.
//! A receiver may get a notice twice (a crash between its answer and the
//! mark): the `id` of the notice is the same every time, for de-duplication.
//!
//! Nothing here runs on the runner's thread: the runner only appends its
//! events, and a webhook that never answers delays nothing but the other
//! notifications (each attempt is bounded by [`SEND_TIMEOUT`]).
//!
//! The webhook's signature (documented in the README): headers
//! `X-Cutover-Timestamp: <unix seconds>` and `X-Cutover-Signature:
//! sha256=<hex>`, the hex HMAC-SHA256, keyed with the target's secret, of
//! the timestamp, a `.` and the body's bytes. A receiver recomputes it and
//! refuses a timestamp too far from its clock (a replay).

mod outbox;
mod send;
mod target;
mod worker;

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::runner::{Detail, Event, EventKind, State, StepOutcome};

pub use outbox::Delivery;
pub use send::{https_roots, sign, SEND_TIMEOUT};
pub use target::{Channel, Happening, MailLogin, MailTls, Noted, Target};
pub use worker::{backoff_from, deliveries, Pass, Scope, Worker, WorkerHandle};

/// A wait longer than this is announced (`wait`).
pub const ANNOUNCED_WAIT: Duration = Duration::from_secs(60);

/// One notice: what happened to a migration, as every channel sends it
/// (the webhook's JSON body is this, serialized).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Stable across retries and processes: `m<migration>-e<event>`.
    pub id: String,
    /// The migration's id.
    pub migration: i64,
    /// The migration file's name, as it was started.
    pub name: String,
    /// The zone (the first, when it moves several).
    pub zone: String,
    /// Every zone it moves (`zone` first).
    #[serde(default)]
    pub zones: Vec<String>,
    /// What happened.
    pub event: Happening,
    /// The step it concerns, if any ("switch").
    pub step: Option<String>,
    /// The migration's state after it ("awaiting_approval"; after the
    /// switch, "flushing", the state the switch moved it to).
    pub state: Option<String>,
    /// What happened, in words.
    pub message: String,
    /// When it happened (RFC 3339).
    pub time: Timestamp,
}

/// The notice an event makes, if any (pure): `detail` is the migration's
/// plan and recorded steps, for the waits.
///
/// - a step done or skipped after which the next planned step is due more
///   than [`ANNOUNCED_WAIT`] later: `wait`;
/// - the switch done: `switch`;
/// - a step attempt that failed (retried or not), the state `failed`: `failure`;
/// - the state `rolling_back`: `rollback`; `awaiting_approval`: `approval`;
/// - the states `done`, `rolled_back`, `aborted`: `end`.
pub fn notice_of(detail: &Detail, event: &Event) -> Option<Notice> {
    let summary = &detail.summary;
    let (happening, message) = match event.kind {
        EventKind::Step => match event.outcome? {
            StepOutcome::Failed | StepOutcome::Retrying => (Happening::Failure, event.text.clone()),
            StepOutcome::Done if event.step.as_deref() == Some("switch") => (
                Happening::Switch,
                "switched: the records hold the new values".to_string(),
            ),
            StepOutcome::Done | StepOutcome::Skipped => {
                let position = detail
                    .steps
                    .iter()
                    .find(|s| Some(s.id) == event.step_id)
                    .and_then(|s| s.position)?;
                let next = detail.plan.steps.get(position + 1)?;
                let due = next
                    .at
                    .max(crate::plan::later(event.at, next.after_previous));
                let wait = due.duration_since(event.at);
                let wait = Duration::try_from(wait).ok()?;
                if wait <= ANNOUNCED_WAIT {
                    return None;
                }
                let wait = Duration::from_secs(wait.as_secs());
                (
                    Happening::Wait,
                    format!(
                        "{}; waiting {} before {} (due {due})",
                        event.text,
                        cutover_zone::duration::words(wait),
                        crate::runner::step_words(next.kind.as_str())
                    ),
                )
            }
            StepOutcome::Waiting => return None,
        },
        EventKind::State => match event.to? {
            State::AwaitingApproval => (Happening::Approval, event.text.clone()),
            State::RollingBack => (Happening::Rollback, event.text.clone()),
            State::Failed => (Happening::Failure, event.text.clone()),
            State::Done | State::RolledBack | State::Aborted => {
                (Happening::End, event.text.clone())
            }
            _ => return None,
        },
        EventKind::Started | EventKind::Approval => return None,
    };
    Some(Notice {
        id: format!("m{}-e{}", summary.id, event.id),
        migration: summary.id,
        name: summary.file_name.clone(),
        zone: summary.zone.clone(),
        zones: summary.zones.clone(),
        event: happening,
        step: event.step.clone(),
        state: state_after(detail, event).map(|s| s.as_str().to_string()),
        message,
        time: event.at,
    })
}

/// The migration's state just after `event`: the state the last event
/// up to it (itself included) moved it to. A step event records no state
/// of its own; the state change a step makes is recorded just before it.
fn state_after(detail: &Detail, event: &Event) -> Option<State> {
    event.to.or_else(|| {
        detail
            .events
            .iter()
            .rev()
            .filter(|e| e.id <= event.id)
            .find_map(|e| e.to)
    })
}

impl Notice {
    /// The webhook's body: this notice as JSON.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a notice serializes")
    }

    /// The one sentence a person reads (Slack's text, the e-mail's subject
    /// line and first line): "cutover: migration 3 (example.com.): switched: …".
    pub fn sentence(&self) -> String {
        format!(
            "cutover: migration {} of {} ({}): {}",
            self.migration,
            crate::runner::zone_label(&self.zone, self.zones.len()),
            self.event,
            self.message
        )
    }

    /// A Slack-compatible incoming webhook's body: `{"text": …}`.
    pub fn slack(&self) -> String {
        serde_json::json!({ "text": self.sentence() }).to_string()
    }

    /// A plain-text e-mail (RFC 5322 header and body, CRLF lines, dot-stuffed
    /// for SMTP's DATA is left to the sender).
    pub fn email(&self, from: &str, to: &[String], date: Timestamp) -> String {
        let subject: String = self
            .sentence()
            .chars()
            .filter(|c| !c.is_control())
            .take(150)
            .collect();
        let date = date.strftime("%a, %d %b %Y %H:%M:%S +0000");
        let body = format!(
            "{}\r\n\r\nmigration: {}\r\nfile: {}\r\n{}\r\nevent: {}\r\nstep: {}\r\nstate: {}\r\ntime: {}\r\nid: {}\r\n",
            self.message,
            self.migration,
            self.name,
            match self.zones.len() {
                0 | 1 => format!("zone: {}", self.zone),
                _ => format!("zones: {}", self.zones.join(", ")),
            },
            self.event,
            self.step.as_deref().unwrap_or("-"),
            self.state.as_deref().unwrap_or("-"),
            self.time,
            self.id
        );
        format!(
            "From: {from}\r\nTo: {}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{}.{}@cutover>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}",
            to.join(", "),
            self.id,
            date_stamp(self.time)
        )
    }
}

/// Milliseconds of a time, for unique Message-IDs.
fn date_stamp(t: Timestamp) -> i64 {
    t.as_millisecond()
}
