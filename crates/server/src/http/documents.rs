//! The migration engine's documents as the API gives them, typed: each
//! answer is written from one of these types and its schema in the OpenAPI
//! document is derived from the same type, so the two cannot differ.
//!
//! ```text
//!  Migrations::show ─▶ DetailView (summary annotated) ─▶ GET /migrations/{id}, its events
//!  Migrations::audit ─▶ AuditView ──────────────────────▶ GET /migrations/{id}/audit
//!  `migrate plan|start --json` ─▶ Plan | Created ───────▶ POST /migrations/plan, /migrations
//!  presence::Annotated ─────────────────────────────────▶ list, steering answers
//!  schemas() ─▶ cutover_api::openapi::document (the names of SERVED_ELSEWHERE)
//! ```

use cutover_migrate::notify::Delivery;
use cutover_migrate::runner::{AuditEntry, Detail, Event, StepRecord, TimelineEntry};
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
    /// Every recorded step and attempt, in order.
    pub steps: Vec<StepRecord>,
    /// Everything that happened, in order.
    pub events: Vec<Event>,
    /// Every notification of it (`[[notify]]`) and where it stands:
    /// delivered, or attempts and the last error.
    pub notifications: Vec<Delivery>,
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
            steps,
            events,
            notifications: Vec::new(),
        }
    }
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
