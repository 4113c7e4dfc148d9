//! The migration engine's documents as the API gives them, typed: each
//! answer is written from one of these types and its schema in the OpenAPI
//! document is derived from the same type, so the two cannot differ.
//!
//! ```text
//!  Migrations::show ─▶ DetailView (summary annotated) ─▶ GET /migrations/{id}, its events
//!  Migrations::audit ─▶ AuditView ──────────────────────▶ GET /migrations/{id}/audit
//!  Migrations::observations ─▶ ObservationsView ─────────▶ GET /migrations/{id}/observations
//!  `migrate plan|start --json` ─▶ Plan | Created ───────▶ POST /migrations/plan, /migrations
//!  presence::Annotated ─────────────────────────────────▶ list, steering answers
//!  schemas() ─▶ cutover_api::openapi::document (the names of SERVED_ELSEWHERE)
//! ```

use cutover_migrate::notify::Delivery;
use cutover_migrate::runner::observations::Observation;
use cutover_migrate::runner::{AuditEntry, Detail, Event, StepOutcome, StepRecord, TimelineEntry};
use cutover_migrate::Plan;
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use crate::scheduler::presence::Annotated;

/// Everything about one migration (`GET /api/v1/migrations/{id}`): the
/// engine's detail with the summary annotated.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = MigrationDetail)]
pub struct DetailView {
    /// The summary, with who carries the migration out.
    pub summary: Annotated,
    /// The plan it was started with.
    pub plan: Plan,
    /// The migration file, as written.
    pub file_text: String,
    /// The timeline, with what is done, next and when.
    pub timeline: Vec<TimelineEntry>,
    /// Every recorded step and attempt, in order, with its evidence in words.
    pub steps: Vec<StepView>,
    /// Everything that happened, in order.
    pub events: Vec<Event>,
    /// Every notification of it (`[[notify]]`) and where it stands:
    /// delivered, or attempts and the last error.
    pub notifications: Vec<Delivery>,
}

/// A recorded step (or attempt of one), with its evidence in the lines a
/// person reads, as `cutover migrate show` prints them.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = MigrationStep)]
pub struct StepView {
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
    pub started_at: jiff::Timestamp,
    /// When it ended (`None`: still open).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub done_at: Option<jiff::Timestamp>,
    /// How it ended (`None`: it has not, yet).
    pub outcome: Option<StepOutcome>,
    /// Why, in words.
    pub reason: Option<String>,
    /// What it saw and did.
    pub evidence: serde_json::Value,
    /// The evidence in words.
    pub evidence_lines: Vec<String>,
}

impl StepView {
    /// The view of a recorded step.
    fn new(record: StepRecord) -> StepView {
        // Every field by name, as in `DetailView::new`.
        let StepRecord {
            id,
            kind,
            position,
            attempt,
            started_at,
            done_at,
            outcome,
            reason,
            evidence,
        } = record;
        StepView {
            evidence_lines: cutover_migrate::words::evidence_lines(&evidence),
            id,
            kind,
            position,
            attempt,
            started_at,
            done_at,
            outcome,
            reason,
            evidence,
        }
    }
}

impl DetailView {
    /// The detail of a migration of the store at `store`, annotated at `now`.
    pub fn new(detail: Detail, store: &std::path::Path, now: jiff::Timestamp) -> DetailView {
        // Every field by name: a field added to the engine's detail does
        // not compile here until it is given (or left out) on purpose.
        let Detail {
            summary,
            plan,
            file_text,
            timeline,
            steps,
            events,
        } = detail;
        DetailView {
            summary: Annotated::new(&summary, store, now),
            plan,
            file_text,
            timeline,
            steps: steps.into_iter().map(StepView::new).collect(),
            events,
            notifications: Vec::new(),
        }
    }
}

/// What the servers served over a migration
/// (`GET /api/v1/migrations/{id}/observations`).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = MigrationObservations)]
pub struct ObservationsView {
    /// The migration.
    pub migration: i64,
    /// At most one survey of serve's watch per this many seconds.
    pub every_seconds: u64,
    /// The most rows kept (the newest).
    pub max_rows: usize,
    /// True while serve's watch still asks for this migration (it runs by
    /// itself, or was rolled back and the caches have not all let go yet):
    /// the observations may still grow.
    pub watching: bool,
    /// The runs of surveys that counted alike, oldest first.
    pub observations: Vec<Observation>,
}

/// Every record change a migration made (`GET /api/v1/migrations/{id}/audit`).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = MigrationAudit)]
pub struct AuditView {
    /// The migration.
    pub migration: i64,
    /// The changes, in the order they were decided.
    pub entries: Vec<AuditEntry>,
}

/// A migration started (`POST /api/v1/migrations`), as `cutover migrate
/// start --json` prints it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = MigrationCreated)]
pub struct Created {
    /// Its id.
    pub id: i64,
    /// Its plan.
    pub plan: Plan,
}

/// Adds the schema of `T` and of every type it contains.
fn add<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

/// The schemas of the documents this module types, under the names the
/// route table gives them ([`cutover_api::types::SERVED_ELSEWHERE`]).
pub fn schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut out = Vec::new();
    add::<Created>(&mut out);
    add::<Plan>(&mut out);
    add::<DetailView>(&mut out);
    add::<Annotated>(&mut out);
    add::<AuditView>(&mut out);
    add::<ObservationsView>(&mut out);
    add::<cutover_migrate::agent::AgentHello>(&mut out);
    add::<cutover_migrate::agent::AgentPolled>(&mut out);
    add::<cutover_migrate::agent::AgentReport>(&mut out);
    add::<cutover_migrate::agent::CheckFromRequest>(&mut out);
    add::<cutover_migrate::agent::CheckFromResult>(&mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_served_elsewhere_has_its_schema_here() {
        let names: Vec<String> = schemas().into_iter().map(|(name, _)| name).collect();
        for name in cutover_api::types::SERVED_ELSEWHERE {
            assert!(
                names.iter().any(|n| n == name),
                "expected a schema {name} among {names:?}"
            );
        }
        let api: Vec<String> = cutover_api::types::schemas()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for name in &names {
            assert!(
                !api.contains(name),
                "expected {name} named once, seen it among the API's own schemas too"
            );
        }
    }
}
