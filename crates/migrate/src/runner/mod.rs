//! The runner: a migration's lifecycle, persisted in the store's SQLite file
//! as it changes, advanced by `tick` when steps fall due.
//!
//! ```text
//!  Planned ─▶ Lowering ─▶ Waiting ─▶ VerifyingNew ─▶ Switching ─▶ Flushing ─▶ Verifying ─▶ Observing ─▶ Restoring ─▶ Done
//!                              │            │ checks fail            │                   │ fails `tries` times
//!                              │            ▼ `tries` times          │                   ▼ (or the last observe check)
//!                              │         Paused ◀── pause ── any ────┤      RolledBack (switch reverted, TTL still low)
//!                              │            └── resume ─▶ where it was                    │ resume ─▶ VerifyingNew
//!                              │                                                          │ rollback ─▶ RollingBack
//!   approval gate (`approve = "before_STEP"`): the gate falls due ─▶ AwaitingApproval (step outcome: waiting)
//!                 ── approve (an event naming who) ─▶ where it was ─▶ the gate is done, STEP runs
//!   rollback (any point) ─▶ RollingBack: revert the switch (low TTL kept), restore the original TTLs ─▶ RolledBack
//!   abort (any point)    ─▶ Aborted: nothing more is done; records stay as they are
//!   provider Conflict    ─▶ Failed: someone else changed a record; nothing was overwritten
//! ```
//!
//! Every step is recorded before it runs (`started`) and after (its
//! outcome: done, skipped, waiting, retrying or failed, with the reason in
//! words and the evidence of what it saw and did, as JSON). A step that changes
//! records first writes an audit row per RRset (old and new) as an intent,
//! in the same transaction as its `started` mark; then applies the change
//! through the provider (conditional on the old RRset, and idempotent);
//! then marks the rows applied and the step done in one transaction. A
//! crash anywhere in between is redone on the next tick from the same
//! intents, so every change is applied and audited exactly once.
//!
//! Waits are counted from when the previous step was actually done (and
//! never before the plan's time), so a late or paused runner never
//! shortens a safety wait.
//!
//! What happened is kept apart from where things stand: every change of
//! state and every ending of a step attempt is appended to the migration's
//! events (`migration_event`, which the store refuses to update or delete),
//! with its time, its cause (automatic, the operator, a conflict) and the
//! step whose evidence it rests on. Each time is read from the clock at the
//! moment it is written.

mod control;
mod db;
mod events;
pub mod observations;
mod steps;
mod verify;
mod view;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use cutover_provider::Provider;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::effects::{Checks, Clock, Flusher, MailControl};
use crate::plan::{Plan, RrsetText, StepKind};

pub use db::RunnerError;
pub use events::step_words;

/// Where a migration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[schema(as = MigrationState)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Stored, nothing done yet.
    Planned,
    /// Lowering the TTLs.
    Lowering,
    /// Waiting for caches to drop the old TTL.
    Waiting,
    /// Checking the new servers before the switch.
    VerifyingNew,
    /// Switching to the new values.
    Switching,
    /// Flushing local caches.
    Flushing,
    /// Verifying the switch.
    Verifying,
    /// Observing the new servers at the low TTL.
    Observing,
    /// Restoring the TTLs.
    Restoring,
    /// Finished.
    Done,
    /// Stopped by the operator or by failing pre-switch checks; `resume` goes on.
    Paused,
    /// Held at the approval gate the file asks for: nothing runs until an
    /// operator approves (`approve`); waiting, not failing.
    AwaitingApproval,
    /// A rollback is being carried out.
    RollingBack,
    /// The switch was reverted (automatically: TTL still low; manually: TTLs restored too).
    RolledBack,
    /// Stopped for good by the operator.
    Aborted,
    /// Stopped for good: a conflict or an error that needs a person.
    Failed,
}

/// What the zone holds of the moving RRsets, as far as the runner changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The original values at their original TTLs.
    Original,
    /// The original values at the low TTL.
    Lowered,
    /// The new values at the low TTL.
    Switched,
    /// The new values at their final TTLs.
    Restored,
}

/// How one attempt of a step ended: the words every output uses (text,
/// JSON, the dashboard, the metrics).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It did what it does; the migration went on.
    Done,
    /// It had nothing to do (no caches listed, no checks, nothing to
    /// change); the migration went on.
    Skipped,
    /// It looked and must wait before it acts (caches are flushed only once
    /// every authority serves the switch); it looks again after the
    /// interval. Nothing failed.
    Waiting,
    /// This attempt failed; the step is tried again after the interval.
    Retrying,
    /// It failed and is not tried again by itself: the migration paused,
    /// rolls back, or stopped.
    Failed,
}

/// Who or what caused an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The runner, by the plan and what it saw.
    Automatic,
    /// An operator's command (the CLI or the API).
    Operator,
    /// Someone else changed a record the migration was about to change.
    Conflict,
}

/// What kind of thing an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The migration was stored.
    Started,
    /// An attempt of a step ended (or, for a provider that could not be
    /// reached or refused, stopped with the step left open to be redone; or
    /// a step a crash cut short is taken up again).
    Step,
    /// The migration's state changed.
    State,
    /// An operator approved the gate the migration waited at (`by`: who).
    Approval,
}

/// One thing that happened to a migration, as it happened. Events are only
/// ever appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = MigrationEvent)]
pub struct Event {
    /// Row id: events are in the order they happened.
    pub id: i64,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Who or what caused it.
    pub cause: Cause,
    /// What it records.
    pub kind: EventKind,
    /// The step row whose evidence it rests on, if any.
    pub step_id: Option<i64>,
    /// The step ("switch", "revert", …), for step events.
    pub step: Option<String>,
    /// How the step attempt ended, for step events (`None`: a step a crash
    /// cut short, taken up again).
    pub outcome: Option<StepOutcome>,
    /// The state before (`None`: not recorded).
    pub from: Option<State>,
    /// The state after (`None`: not recorded).
    pub to: Option<State>,
    /// Why, in words.
    pub reason: Option<String>,
    /// Who did it, when it was a person with a name (an approval: the API
    /// token's name, or the local user on the command line).
    #[serde(default)]
    pub by: Option<String>,
    /// The whole event in words ("paused by the operator: lunch").
    pub text: String,
}

/// The effects a tick may use.
pub struct Effects<'a> {
    /// Where the zone's records live.
    pub provider: &'a dyn Provider,
    /// DNS verification and service checks.
    pub checks: &'a dyn Checks,
    /// Local caches.
    pub flusher: &'a dyn Flusher,
    /// The mail relay.
    pub mail: &'a dyn MailControl,
    /// The time.
    pub clock: &'a dyn Clock,
}

/// One migration in a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Its id.
    pub id: i64,
    /// The zone (the first, when it moves several).
    pub zone: String,
    /// Every zone it moves, in the file's order (`zone` first).
    #[serde(default)]
    pub zones: Vec<String>,
    /// The file it came from, as named at start.
    pub file_name: String,
    /// Where it stands.
    pub state: State,
    /// What the records hold.
    pub phase: Phase,
    /// Why it is paused, failed or rolled back.
    pub reason: Option<String>,
    /// The next step, if any.
    pub next_step: Option<StepKind>,
    /// When the next step falls due (`None` when nothing will run by itself).
    pub next_due: Option<Timestamp>,
    /// Since when it waits at its approval gate (`None`: it does not).
    #[serde(default)]
    pub awaiting_approval_since: Option<Timestamp>,
    /// When it was started.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Summary {
    /// Its zones in a few words: "example.com.", or "example.com. and 49
    /// more zones" when it moves several.
    pub fn zone_label(&self) -> String {
        zone_label(&self.zone, self.zones.len())
    }
}

/// `first`, or "`first` and N more zones" of `count` zones in all.
pub fn zone_label(first: &str, count: usize) -> String {
    match count {
        0 | 1 => first.to_string(),
        2 => format!("{first} and 1 more zone"),
        n => format!("{first} and {} more zones", n - 1),
    }
}

/// A recorded step (or attempt of one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepRecord {
    /// Row id.
    pub id: i64,
    /// The step ("lower_ttls", …, "revert", "restore_original").
    pub kind: String,
    /// The planned step's index (`None`: a rollback step).
    pub position: Option<usize>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it started.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When it ended (`None`: still open: running, interrupted by a crash,
    /// or left open to be redone after a provider error).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub done_at: Option<Timestamp>,
    /// How it ended (`None`: it has not, yet).
    pub outcome: Option<StepOutcome>,
    /// Why, in words (what it waits for, what failed, why nothing was done).
    pub reason: Option<String>,
    /// What it saw and did.
    pub evidence: serde_json::Value,
}

/// The last attempt of a step: when it ended, how, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    /// How it ended.
    pub outcome: StepOutcome,
    /// When (for an attempt left open, when it stopped).
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Why, in words.
    pub reason: Option<String>,
}

/// Where a planned step stands, for `show`: read from what was recorded,
/// so a step that ran shows when, even after a rollback undid it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepStatus {
    /// Done at this time.
    Done {
        /// When.
        #[schema(value_type = String, format = DateTime)]
        at: Timestamp,
    },
    /// Ran with nothing to do (or, with no time, no record of it is left).
    Skipped {
        /// When (`None`: no record).
        #[schema(value_type = Option<String>, format = DateTime)]
        at: Option<Timestamp>,
        /// Why nothing was done.
        reason: Option<String>,
    },
    /// The next step; due at this time (`None`: paused, waiting for the operator).
    Next {
        /// When.
        #[schema(value_type = Option<String>, format = DateTime)]
        due: Option<Timestamp>,
        /// Its last attempt, when it waits or is retried.
        last: Option<Attempt>,
    },
    /// Later; at this time by the real progress (while paused: the plan's time).
    Pending {
        /// When.
        #[schema(value_type = String, format = DateTime)]
        at: Timestamp,
    },
    /// Its last attempt failed and the migration stopped or turned back.
    Failed {
        /// When.
        #[schema(value_type = String, format = DateTime)]
        at: Timestamp,
        /// Why.
        reason: Option<String>,
    },
    /// Will not run: the migration stopped (aborted, failed, rolled back) before it.
    NotRun,
}

/// One planned step with where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    /// The step.
    pub kind: StepKind,
    /// What it does.
    pub what: String,
    /// Why then.
    pub why: String,
    /// What the mail relay is told at this step, in words (`None`: nothing).
    pub mail: Option<String>,
    /// The providers and zones it changes or asks about, when the
    /// migration has several zones (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub touches: Vec<crate::plan::Touch>,
    /// Where it stands.
    pub status: StepStatus,
}

/// Everything about one migration, for `show`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    /// The summary.
    pub summary: Summary,
    /// The plan it was started with.
    pub plan: Plan,
    /// The migration file as written, its secrets redacted ([`crate::file::redact`]).
    pub file_text: String,
    /// The timeline, with what is done, next and when.
    pub timeline: Vec<TimelineEntry>,
    /// Every recorded step and attempt, in order.
    pub steps: Vec<StepRecord>,
    /// Everything that happened, in order.
    pub events: Vec<Event>,
}

/// One record change in the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// The step that made it.
    pub step_id: i64,
    /// The step's kind.
    pub step: String,
    /// Owner.
    pub name: String,
    /// Type.
    pub rtype: String,
    /// The RRset before (`None`: absent).
    pub old: Option<RrsetText>,
    /// The RRset after (`None`: deleted).
    pub new: Option<RrsetText>,
    /// When it was decided (written before applying).
    #[schema(value_type = String, format = DateTime)]
    pub intended_at: Timestamp,
    /// When the provider applied it (`None`: not applied).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub applied_at: Option<Timestamp>,
    /// "intended", "applied" or "refused".
    pub status: String,
}

/// What one tick did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TickReport {
    /// The migration.
    pub id: i64,
    /// Where it stands after the tick.
    pub state: State,
    /// The steps run (or attempted) during the tick.
    pub did: Vec<StepRecord>,
    /// When the next step falls due (`None`: nothing will run by itself).
    pub next_due: Option<Timestamp>,
    /// Why it is paused, failed or rolled back.
    pub reason: Option<String>,
}

/// Every migration in one store file.
pub struct Migrations {
    /// The connection, shared by the operations of this handle.
    conn: Mutex<rusqlite::Connection>,
    /// The file, for messages.
    path: std::path::PathBuf,
}

impl StepOutcome {
    /// Every outcome, in the order of the type.
    pub const ALL: [StepOutcome; 5] = [
        StepOutcome::Done,
        StepOutcome::Skipped,
        StepOutcome::Waiting,
        StepOutcome::Retrying,
        StepOutcome::Failed,
    ];

    /// The name stored and shown ("retrying").
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::Skipped => "skipped",
            StepOutcome::Waiting => "waiting",
            StepOutcome::Retrying => "retrying",
            StepOutcome::Failed => "failed",
        }
    }

    /// The outcome a stored name stands for.
    pub fn parse(text: &str) -> Option<StepOutcome> {
        StepOutcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// True when the migration went past the step.
    pub fn advanced(self) -> bool {
        matches!(self, StepOutcome::Done | StepOutcome::Skipped)
    }
}

impl std::fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Cause {
    /// The name stored and shown ("operator").
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Automatic => "automatic",
            Cause::Operator => "operator",
            Cause::Conflict => "conflict",
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Phase {
    /// The name stored and shown ("lowered").
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Original => "original",
            Phase::Lowered => "lowered",
            Phase::Switched => "switched",
            Phase::Restored => "restored",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl State {
    /// Every state, in the order of the type.
    pub const ALL: [State; 16] = [
        State::Planned,
        State::Lowering,
        State::Waiting,
        State::VerifyingNew,
        State::Switching,
        State::Flushing,
        State::Verifying,
        State::Observing,
        State::Restoring,
        State::Done,
        State::Paused,
        State::AwaitingApproval,
        State::RollingBack,
        State::RolledBack,
        State::Aborted,
        State::Failed,
    ];

    /// True when the runner has steps to run by itself in this state.
    pub fn runs_by_itself(self) -> bool {
        !(self.is_final()
            || matches!(
                self,
                State::Paused | State::AwaitingApproval | State::RolledBack
            ))
    }

    /// True when nothing will happen any more.
    pub fn is_final(self) -> bool {
        matches!(self, State::Done | State::Aborted | State::Failed)
    }

    /// The state while `kind` is the next step.
    pub fn before(kind: StepKind) -> State {
        match kind {
            StepKind::LowerTtls => State::Lowering,
            StepKind::WaitForCaches => State::Waiting,
            StepKind::VerifyNew | StepKind::NoteSerials => State::VerifyingNew,
            StepKind::Switch => State::Switching,
            StepKind::FlushCaches => State::Flushing,
            StepKind::VerifySwitch => State::Verifying,
            StepKind::Observe => State::Observing,
            StepKind::RestoreTtls => State::Restoring,
            // Held there once the gate falls due; until then the migration
            // stands where the gated step puts it (`Migration::state_at`).
            StepKind::Approval => State::AwaitingApproval,
        }
    }

    /// The name stored and shown ("verifying_new").
    pub fn as_str(self) -> &'static str {
        match self {
            State::Planned => "planned",
            State::Lowering => "lowering",
            State::Waiting => "waiting",
            State::VerifyingNew => "verifying_new",
            State::Switching => "switching",
            State::Flushing => "flushing",
            State::Verifying => "verifying",
            State::Observing => "observing",
            State::Restoring => "restoring",
            State::Done => "done",
            State::Paused => "paused",
            State::AwaitingApproval => "awaiting_approval",
            State::RollingBack => "rolling_back",
            State::RolledBack => "rolled_back",
            State::Aborted => "aborted",
            State::Failed => "failed",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A step's stored name, kept beside the runner that stores it.
impl StepKind {
    /// The name stored and shown ("lower_ttls").
    pub fn as_str(self) -> &'static str {
        db::kind_str(self)
    }
}

impl Migrations {
    /// Opens the migration tables in the store file at `path` (creating
    /// them if missing), on a connection of its own (WAL, synchronous=FULL).
    pub fn open(path: &Path) -> Result<Migrations, RunnerError> {
        let conn = db::open(path)?;
        Ok(Migrations {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        })
    }

    /// Runs `f` on this handle's connection (the notification outbox lives
    /// in the same store file, beside the events it is made from).
    pub(crate) fn with_conn<R>(&self, f: impl FnOnce(&mut rusqlite::Connection, &Path) -> R) -> R {
        f(&mut self.conn(), &self.path)
    }

    /// The connection.
    fn conn(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a new migration with its file (as written) and plan; returns its id.
    pub fn start(
        &self,
        file_name: &str,
        file_text: &str,
        plan: &Plan,
        now: Timestamp,
    ) -> Result<i64, RunnerError> {
        db::insert(
            &mut self.conn(),
            &self.path,
            file_name,
            file_text,
            plan,
            now,
        )
    }

    /// Every migration, newest first.
    pub fn list(&self) -> Result<Vec<Summary>, RunnerError> {
        let conn = self.conn();
        let ids = db::ids(&conn, &self.path)?;
        ids.into_iter()
            .rev()
            .map(|id| db::load(&conn, &self.path, id).map(|m| m.summary()))
            .collect()
    }

    /// The ids of migrations that may have work to do (not final, not paused).
    pub fn active(&self) -> Result<Vec<i64>, RunnerError> {
        let conn = self.conn();
        let mut out = Vec::new();
        for id in db::ids(&conn, &self.path)? {
            let m = db::load(&conn, &self.path, id)?;
            if m.runs_by_itself() {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// One migration's summary.
    pub fn status(&self, id: i64) -> Result<Summary, RunnerError> {
        Ok(db::load(&self.conn(), &self.path, id)?.summary())
    }

    /// One migration: plan, timeline, recorded steps, events.
    pub fn show(&self, id: i64) -> Result<Detail, RunnerError> {
        let conn = self.conn();
        let m = db::load(&conn, &self.path, id)?;
        let steps = db::steps(&conn, &self.path, id)?;
        let events = events::of(&conn, &self.path, id)?;
        Ok(m.detail(steps, events))
    }

    /// Everything that happened to one migration, in order.
    pub fn events(&self, id: i64) -> Result<Vec<Event>, RunnerError> {
        let conn = self.conn();
        db::load(&conn, &self.path, id)?;
        events::of(&conn, &self.path, id)
    }

    /// How many step attempts ended with each outcome, by step, over every
    /// migration in the store (from the events, so the counts only grow).
    pub fn step_counts(&self) -> Result<Vec<(String, StepOutcome, u64)>, RunnerError> {
        events::step_counts(&self.conn(), &self.path)
    }

    /// The migration file text it was started with, secrets and all: for
    /// building its provider again, never for showing.
    pub fn file_text(&self, id: i64) -> Result<(String, String), RunnerError> {
        let m = db::load(&self.conn(), &self.path, id)?;
        Ok((m.file_name.clone(), m.file_text.clone()))
    }

    /// Every record change made by the migration, in order.
    pub fn audit(&self, id: i64) -> Result<Vec<AuditEntry>, RunnerError> {
        db::audit(&self.conn(), &self.path, id)
    }

    /// Stops a running migration where it is (records stay as they are).
    pub fn pause(&self, id: i64, now: Timestamp, reason: &str) -> Result<Summary, RunnerError> {
        control::control(
            &mut self.conn(),
            &self.path,
            id,
            now,
            control::Control::Pause(reason),
        )
    }

    /// Goes on with a paused migration; a migration rolled back
    /// automatically (TTL still low) tries the switch again from the
    /// pre-switch checks.
    pub fn resume(&self, id: i64, now: Timestamp) -> Result<Summary, RunnerError> {
        control::control(
            &mut self.conn(),
            &self.path,
            id,
            now,
            control::Control::Resume,
        )
    }

    /// Stops for good; records stay as they are.
    pub fn abort(&self, id: i64, now: Timestamp, reason: &str) -> Result<Summary, RunnerError> {
        control::control(
            &mut self.conn(),
            &self.path,
            id,
            now,
            control::Control::Abort(reason),
        )
    }

    /// Approves the gate a migration awaits approval at (`by`: who, and
    /// `reason`, as recorded in its event); the next tick goes past the
    /// gate. Refused when the migration is not awaiting approval.
    pub fn approve(
        &self,
        id: i64,
        now: Timestamp,
        by: &str,
        reason: Option<&str>,
    ) -> Result<Summary, RunnerError> {
        control::control(
            &mut self.conn(),
            &self.path,
            id,
            now,
            control::Control::Approve(by, reason),
        )
    }

    /// Asks for a rollback (any point before the end): the next tick
    /// reverts the switch with the low TTL kept, then restores the
    /// original TTLs.
    pub fn rollback(&self, id: i64, now: Timestamp, reason: &str) -> Result<Summary, RunnerError> {
        control::control(
            &mut self.conn(),
            &self.path,
            id,
            now,
            control::Control::Rollback(reason),
        )
    }

    /// What the servers served over migration `id`'s life, oldest first
    /// (the dashboard's chart): runs of surveys that counted alike.
    pub fn observations(&self, id: i64) -> Result<Vec<observations::Observation>, RunnerError> {
        let conn = self.conn();
        db::load(&conn, &self.path, id)?;
        observations::of(&conn, &self.path, id)
    }

    /// The migrations serve's watch asks for at `now`: those that run by
    /// themselves, and those rolled back until the caches have let go
    /// ([`observations::watched`] says how long).
    pub fn watched(&self, now: Timestamp) -> Result<Vec<i64>, RunnerError> {
        let conn = self.conn();
        let mut out = Vec::new();
        for id in observations::candidates(&conn, &self.path)? {
            let m = db::load(&conn, &self.path, id)?;
            if observations::watched(&m, now) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// True while serve's watch asks for migration `id` at `now` (its
    /// observations may still grow).
    pub fn watching(&self, id: i64, now: Timestamp) -> Result<bool, RunnerError> {
        let m = db::load(&self.conn(), &self.path, id)?;
        Ok(observations::watched(&m, now))
    }

    /// Surveys the moving records of migration `id` and records what the
    /// servers serve, while the watch asks for it and nothing was observed for
    /// [`observations::watch_every`]; `None` when not due (or nothing to
    /// count). `cutover serve` calls it between steps, so the chart has
    /// points while caches let go.
    pub fn watch(
        &self,
        id: i64,
        checks: &dyn Checks,
        clock: &dyn Clock,
    ) -> Result<Option<observations::Observation>, RunnerError> {
        observations::watch(&self.conn, &self.path, id, checks, clock)
    }

    /// Runs every step of migration `id` that is due now (by `effects.clock`),
    /// one after another, and says what it did and when the next falls due.
    pub fn tick(&self, id: i64, effects: &Effects<'_>) -> Result<TickReport, RunnerError> {
        steps::tick(&mut self.conn(), &self.path, id, effects)
    }
}
