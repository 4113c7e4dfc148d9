//! Migrations through the API: the engine's own records (`Migrations` on the
//! store's SQLite file) for reading and steering, `cutover migrate plan|start`
//! (this binary, a child process) for making them, and a live propagation
//! matrix built from the plan's moving records.
//!
//! ```text
//!  list / show / audit ─────────────▶ Migrations::list|show|audit (each summary with who carries
//!                                      it out and what needs attention: scheduler::presence)
//!  pause / resume / abort / rollback ▶ Migrations::pause|… (the scheduler of
//!                                      `cutover serve` carries the rollback out)
//!  approve ─────────────────────────▶ Migrations::approve, by the token's name
//!  observations ────────────────────▶ Migrations::observations (stored: the steps' surveys and
//!                                      the scheduler's watch; asks no one)
//!  plan / create ──parsed here: files under [http] migration_dir only (403);
//!                  a probe token: its zone, provider, authorities and resolvers
//!                  among the site's targets (403)
//!                ──file in a tempdir──▶ /proc/self/exe --store S migrate plan|start FILE --json
//!  propagation ── read token ──▶ the last matrix known, asking no one: the newer of
//!                 the last check's and the scheduler's last survey (step evidence), with its age
//!              ── probe/admin ──plan: names, types, authorities, resolvers──▶ cutover check --json
//!                 (one at a time per migration, reused for a second, within the budget)
//!                 [verify] locations beyond local ──▶ agents::surveys_from (LocatedChecks,
//!                 as check --from): a survey per location, rows named with it
//!                 ("… from fra1"), a location that could not be asked with its problems
//!                 ──each cell: values == after ? new : values == before ? old : other
//! ```

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::ffi::OsString;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use cutover_api::{
    CheckRequest, ErrorCode, MatrixCell, MatrixLocation, MatrixRow, MigrationAction,
    MigrationFileBody, MigrationList, Propagation, RouteId,
};
use cutover_migrate::file::{valid_location, LOCAL};
use cutover_migrate::{MigrationFile, Migrations, Plan, RunnerError, Survey};
use cutover_zone::{Name, RecordType};
use futures_util::stream::{self, Stream};
use serde_json::Value;

use super::agents;
use super::blocking::blocking;
use super::budget::Work;
use super::caller::Caller;
use super::control::Control;
use super::documents::{AuditView, Created, DetailView, ObservationsView};
use super::error::{parse_body, ApiError, ApiResult};
use super::probes;
use super::tokens::TokenScope;
use crate::scheduler::presence::annotated;

/// How long a propagation matrix is answered again rather than asked anew.
const MATRIX_REUSE: Duration = Duration::from_secs(1);

/// How often a migration's event stream looks for changes.
const POLL: Duration = Duration::from_millis(500);

/// An engine error as an API error.
fn runner_error(error: RunnerError) -> ApiError {
    let code = match &error {
        RunnerError::NotFound(_) => ErrorCode::NotFound,
        RunnerError::WrongState { .. } | RunnerError::NotAwaitingApproval { .. } => {
            ErrorCode::Rejected
        }
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, error.to_string())
}

/// The engine's records in the store file.
fn open(control: &Control) -> Result<Migrations, ApiError> {
    Migrations::open(control.store.path()).map_err(runner_error)
}

/// A migration id from the path.
fn migration_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request(format!("{text:?} is not a migration id")))
}

/// A value as JSON, or a 500.
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /api/v1/migrations`.
pub async fn list(State(control): State<Control>) -> ApiResult<MigrationList> {
    let list = blocking(move || {
        let summaries = open(&control)?.list().map_err(runner_error)?;
        let now = jiff::Timestamp::now();
        Ok(summaries
            .iter()
            .map(|s| annotated(s, control.store.path(), now))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(MigrationList { migrations: list }))
}

/// One migration's detail as JSON, its summary annotated.
fn detail_json(control: &Control, id: i64) -> Result<Value, ApiError> {
    let migrations = open(control)?;
    let detail = migrations.show(id).map_err(runner_error)?;
    let mut view = DetailView::new(detail, control.store.path(), jiff::Timestamp::now());
    view.notifications =
        cutover_migrate::notify::deliveries(&migrations, id).map_err(runner_error)?;
    to_json(&view)
}

/// `GET /api/v1/migrations/{id}`.
pub async fn show(State(control): State<Control>, Path(id): Path<String>) -> ApiResult<Value> {
    let id = migration_id(&id)?;
    let detail = blocking(move || detail_json(&control, id)).await?;
    Ok(Json(detail))
}

/// `GET /api/v1/migrations/{id}/audit`.
pub async fn audit(State(control): State<Control>, Path(id): Path<String>) -> ApiResult<AuditView> {
    let id = migration_id(&id)?;
    let audit = blocking(move || {
        let entries = open(&control)?.audit(id).map_err(runner_error)?;
        Ok(AuditView {
            migration: id,
            entries,
        })
    })
    .await?;
    Ok(Json(audit))
}

/// `GET /api/v1/migrations/{id}/observations`.
pub async fn observations(
    State(control): State<Control>,
    Path(id): Path<String>,
) -> ApiResult<ObservationsView> {
    let id = migration_id(&id)?;
    let view = blocking(move || {
        let migrations = open(&control)?;
        let plan = migrations.show(id).map_err(runner_error)?.plan;
        let observations = migrations.observations(id).map_err(runner_error)?;
        let watching = migrations
            .watching(id, jiff::Timestamp::now())
            .map_err(runner_error)?;
        Ok(ObservationsView {
            watching,
            migration: id,
            every_seconds: cutover_migrate::runner::observations::watch_every(&plan),
            max_rows: cutover_migrate::runner::observations::MAX_ROWS,
            observations,
        })
    })
    .await?;
    Ok(Json(view))
}

/// Which steering operation a route runs.
#[derive(Clone, Copy)]
enum Steer {
    /// Pause.
    Pause,
    /// Resume.
    Resume,
    /// Abort.
    Abort,
    /// Roll back.
    Rollback,
    /// Approve the gate it awaits approval at.
    Approve,
}

/// Runs a steering operation.
async fn steer(
    control: Control,
    caller: Caller,
    id: String,
    body: Bytes,
    steer: Steer,
) -> ApiResult<Value> {
    let id = migration_id(&id)?;
    let action: MigrationAction = if body.is_empty() {
        MigrationAction::default()
    } else {
        parse_body(&body)?
    };
    let said = action.reason.clone();
    let reason = action
        .reason
        .unwrap_or_else(|| format!("through the API by token {:?}", caller.name));
    let summary = blocking(move || {
        let migrations = open(&control)?;
        let now = jiff::Timestamp::now();
        let summary = match steer {
            Steer::Pause => migrations.pause(id, now, &reason),
            Steer::Resume => migrations.resume(id, now),
            Steer::Abort => migrations.abort(id, now, &reason),
            Steer::Rollback => migrations.rollback(id, now, &reason),
            // Who approved is the token's name, recorded apart from the reason.
            Steer::Approve => migrations.approve(id, now, &caller.name, said.as_deref()),
        }
        .map_err(runner_error)?;
        Ok(annotated(&summary, control.store.path(), now))
    })
    .await?;
    Ok(Json(summary))
}

/// Handlers that steer a migration, one a verb, each calling [`steer`].
macro_rules! steering {
    ($($(#[$doc:meta])* $name:ident => $steer:expr;)*) => {$(
        $(#[$doc])*
        pub async fn $name(
            State(c): State<Control>,
            Extension(who): Extension<Caller>,
            Path(id): Path<String>,
            body: Bytes,
        ) -> ApiResult<Value> {
            steer(c, who, id, body, $steer).await
        }
    )*};
}

steering! {
    /// `POST /api/v1/migrations/{id}/pause`.
    pause => Steer::Pause;
    /// `POST /api/v1/migrations/{id}/resume`.
    resume => Steer::Resume;
    /// `POST /api/v1/migrations/{id}/abort`.
    abort => Steer::Abort;
    /// `POST /api/v1/migrations/{id}/rollback`.
    rollback => Steer::Rollback;
    /// `POST /api/v1/migrations/{id}/approve`.
    approve => Steer::Approve;
}

/// Runs `cutover --store S migrate VERB FILE --json` on the body's file,
/// once the file names no file outside `[http] migration_dir` and, for a
/// token below admin, connects only to the site's targets.
async fn migrate_command(
    control: &Control,
    caller: &Caller,
    verb: &str,
    body: &MigrationFileBody,
) -> Result<Value, ApiError> {
    let valid_name = !body.file_name.is_empty()
        && body.file_name.len() <= 128
        && !body.file_name.starts_with('.')
        && body
            .file_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_name {
        return Err(ApiError::bad_request(format!(
            "invalid file_name {:?}: use letters, digits, '-', '_' and '.'",
            body.file_name
        )));
    }
    let parsed = MigrationFile::parse(&body.text, &body.file_name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    control.probes.check_files(&parsed)?;
    if caller.scope != TokenScope::Admin {
        let targets = control.probes.targets(&control.store).await?;
        probes::migration_file(&targets, &parsed)?;
    }
    let dir = tempfile::tempdir()
        .map_err(|e| ApiError::internal(format!("no temporary directory: {e}")))?;
    let file = dir.path().join(&body.file_name);
    std::fs::write(&file, &body.text)
        .map_err(|e| ApiError::internal(format!("cannot write the file: {e}")))?;
    let store = std::path::absolute(control.store.path())
        .unwrap_or_else(|_| control.store.path().to_path_buf());
    let mut args: Vec<OsString> = Vec::new();
    // The site checks (relay, caches) read serve's own config.
    if let Some(config) = &control.config {
        args.extend(["--config".into(), config.clone().into()]);
    }
    args.extend([
        "--store".into(),
        store.into(),
        "migrate".into(),
        verb.into(),
        body.file_name.clone().into(),
        "--json".into(),
    ]);
    // Without [http] migration_dir a file sent through the API names no
    // file of this machine (a `api_key_file = "/etc/…"` would send that
    // file to any URL); with it, `check_files` let only files under it by.
    if control.probes.migration_dir.is_none() {
        args.push("--no-local-files".into());
    }
    if body.force {
        args.push("--force".into());
    }
    let output = probes::run_child(&args, Some(dir.path()), control.probes.timeout).await?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr)
            .trim()
            .replace(&*dir.path().to_string_lossy(), "");
        let message = message.trim_start_matches("error: ").to_owned();
        return Err(ApiError::bad_request(message));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| ApiError::internal(format!("cutover migrate {verb} gave no JSON: {e}")))
}

/// `POST /api/v1/migrations/plan`.
pub async fn plan(
    State(control): State<Control>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Plan> {
    let body: MigrationFileBody = parse_body(&body)?;
    let plan = migrate_command(&control, &caller, "plan", &body).await?;
    Ok(Json(typed(plan, "plan")?))
}

/// The JSON a `cutover migrate VERB --json` child printed, read as its type
/// (so the answer is exactly what the document's schema of that type says).
fn typed<T: serde::de::DeserializeOwned>(value: Value, verb: &str) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        ApiError::internal(format!(
            "cutover migrate {verb} printed an unexpected document: {e}"
        ))
    })
}

/// `POST /api/v1/migrations`.
pub async fn create(
    State(control): State<Control>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Created> {
    let body: MigrationFileBody = parse_body(&body)?;
    let created = migrate_command(&control, &caller, "start", &body).await?;
    Ok(Json(typed(created, "start")?))
}

/// A set of values in a comparable form (lower case, no trailing dot).
fn normal(values: &[String]) -> BTreeSet<String> {
    values
        .iter()
        .map(|value| value.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect()
}

/// The moving records of a plan: (question text, before values, after values).
type Moving = Vec<(String, BTreeSet<String>, BTreeSet<String>)>;

/// Reads what the matrix needs out of a migration's plan.
fn moving(plan: &Value) -> (String, Moving, Vec<String>, Vec<String>, Vec<String>) {
    let zone = plan["zone"].as_str().unwrap_or_default().to_owned();
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut records = Vec::new();
    let mut types = Vec::new();
    let mut names = Vec::new();
    for change in plan["changes"].as_array().into_iter().flatten() {
        let name = change["name"].as_str().unwrap_or_default().to_owned();
        let rtype = change["rtype"].as_str().unwrap_or_default().to_owned();
        let before = normal(&strings(&change["before"]["values"]));
        let after = normal(&strings(&change["after"]));
        records.push((format!("{name} {rtype}"), before, after));
        if !types.contains(&rtype) {
            types.push(rtype);
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let _ = (&names, &types);
    (
        zone,
        records,
        names,
        types,
        strings(&plan["verify"]["authorities"]),
    )
}

/// A zone to check: its name, the names and types that move in it, the
/// authorities to ask.
type ZoneCheck = (String, Vec<String>, Vec<String>, Vec<String>);

/// Each zone of a plan with the names and types that move in it and the
/// authorities to ask (its own, or the plan's): one entry for a plan of one
/// zone (or one made before migrations had several).
fn zones_of(plan: &Value) -> Vec<ZoneCheck> {
    let (zone, _, names, types, authorities) = moving(plan);
    let zones = plan["zones"].as_array().cloned().unwrap_or_default();
    if zones.len() <= 1 {
        return vec![(zone, names, types, authorities)];
    }
    zones
        .iter()
        .map(|z| {
            let origin = z["zone"].as_str().unwrap_or_default().to_owned();
            let mut names = Vec::new();
            let mut types = Vec::new();
            for change in plan["changes"].as_array().into_iter().flatten() {
                if !change["zone"]
                    .as_str()
                    .is_some_and(|c| c.eq_ignore_ascii_case(&origin))
                {
                    continue;
                }
                let name = change["name"].as_str().unwrap_or_default().to_owned();
                let rtype = change["rtype"].as_str().unwrap_or_default().to_owned();
                if !names.contains(&name) {
                    names.push(name);
                }
                if !types.contains(&rtype) {
                    types.push(rtype);
                }
            }
            let own: Vec<String> = z["authorities"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let servers = if own.is_empty() {
                authorities.clone()
            } else {
                own
            };
            (origin, names, types, servers)
        })
        .collect()
}

/// The state of one cell.
fn cell_state(
    records: &[String],
    failed: bool,
    before: &BTreeSet<String>,
    after: &BTreeSet<String>,
) -> &'static str {
    let seen = normal(records);
    if failed && seen.is_empty() {
        "error"
    } else if seen == *after {
        "new"
    } else if seen == *before {
        "old"
    } else {
        "other"
    }
}

/// A resolver's label: its name and address, or the address alone when
/// the name is the address.
fn resolver_label(row: &Value) -> String {
    let name = row["resolver"].as_str().unwrap_or_default();
    let address = row["address"].as_str().unwrap_or_default();
    if name == address || name.is_empty() {
        address.to_owned()
    } else {
        format!("{name} {address}")
    }
}

/// The locations of a report: its `locations` when it names them, else
/// those of its rows in order (`local` when none).
fn report_locations(report: &Value) -> Vec<MatrixLocation> {
    if let Some(listed) = report["locations"].as_array() {
        return listed
            .iter()
            .filter_map(|l| serde_json::from_value(l.clone()).ok())
            .collect();
    }
    let mut out: Vec<MatrixLocation> = Vec::new();
    for row in ["servers", "resolvers"]
        .iter()
        .flat_map(|side| report[*side].as_array().into_iter().flatten())
    {
        let location = row_location(row);
        if !out.iter().any(|l| l.location == location) {
            out.push(MatrixLocation {
                location,
                problems: Vec::new(),
            });
        }
    }
    if out.is_empty() {
        out.push(MatrixLocation {
            location: LOCAL.to_owned(),
            problems: Vec::new(),
        });
    }
    out
}

/// The location a report's row was asked from (`local` when it names none).
fn row_location(row: &Value) -> String {
    row["location"].as_str().unwrap_or(LOCAL).to_owned()
}

/// Builds the matrix from a plan and a `cutover check --json` report (its
/// rows may name their `location`, and the report its `locations`).
pub fn matrix(id: i64, plan: &Value, report: &Value) -> Propagation {
    let (zone, records, _, _, _) = moving(plan);
    let zone =
        cutover_migrate::runner::zone_label(&zone, plan["zones"].as_array().map_or(1, Vec::len));
    let key = |question: &str| question.trim().trim_end_matches('.').to_ascii_lowercase();
    let questions: Vec<String> = records.iter().map(|(q, _, _)| q.clone()).collect();
    let locations = report_locations(report);
    let mut rows: Vec<MatrixRow> = Vec::new();
    for (kind, list, label_of, ttl_field) in [
        (
            "authoritative",
            &report["servers"],
            (|row: &Value| row["address"].as_str().unwrap_or_default().to_owned())
                as fn(&Value) -> String,
            "ttl",
        ),
        (
            "resolver",
            &report["resolvers"],
            resolver_label as fn(&Value) -> String,
            "ttl_left",
        ),
    ] {
        let items: Vec<&Value> = list
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let mut labels: Vec<(String, String)> = Vec::new();
        for item in &items {
            let label = (row_location(item), label_of(item));
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        for (location, label) in labels {
            let cells = records
                .iter()
                .map(|(question, before, after)| {
                    let found = items.iter().find(|row| {
                        label_of(row) == label
                            && row_location(row) == location
                            && key(row["question"].as_str().unwrap_or_default()).replace(". ", " ")
                                == key(question).replace(". ", " ")
                    });
                    match found {
                        None => MatrixCell {
                            question: question.clone(),
                            state: "none".into(),
                            records: Vec::new(),
                            ttl: None,
                        },
                        Some(row) => {
                            let seen: Vec<String> = row["records"]
                                .as_array()
                                .map(|a| {
                                    a.iter()
                                        .filter_map(|v| v.as_str().map(str::to_owned))
                                        .collect()
                                })
                                .unwrap_or_default();
                            let answer = row["answer"]
                                .as_str()
                                .unwrap_or_default()
                                .to_ascii_lowercase();
                            let failed = [
                                "timeout",
                                "timed out",
                                "refused",
                                "servfail",
                                "error",
                                "failed",
                                "unreachable",
                            ]
                            .iter()
                            .any(|word| answer.contains(word));
                            MatrixCell {
                                question: question.clone(),
                                state: cell_state(&seen, failed, before, after).into(),
                                records: seen,
                                ttl: row[ttl_field].as_u64().and_then(|t| u32::try_from(t).ok()),
                            }
                        }
                    }
                })
                .collect();
            rows.push(MatrixRow {
                location,
                kind: kind.into(),
                label,
                cells,
            });
        }
    }
    // Location by location, in the order asked; authoritative rows before
    // resolvers within each (the sort is stable).
    let rank = |location: &str| {
        locations
            .iter()
            .position(|l| l.location == location)
            .unwrap_or(usize::MAX)
    };
    rows.sort_by_key(|row| rank(&row.location));
    Propagation {
        migration: id,
        zone,
        checked_at: report["checked_at"].as_str().map(str::to_owned),
        age_seconds: Some(0),
        source: "check".into(),
        refreshed: false,
        questions,
        rows,
        locations,
        all_released_in_seconds: report["all_released_in_seconds"].as_u64(),
    }
}

/// The last matrix a check of this route made for migration `id`, as it
/// reads now: its age, and the caches' release counted down by it.
fn checked_matrix(control: &Control, id: i64) -> Option<Propagation> {
    let (asked, mut matrix) = control
        .matrices
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .cloned()?;
    let age = asked.elapsed().as_secs();
    matrix.age_seconds = Some(age);
    matrix.all_released_in_seconds = matrix
        .all_released_in_seconds
        .map(|left| left.saturating_sub(age));
    matrix.refreshed = false;
    Some(matrix)
}

/// The matrix of migration `id` if it was asked less than a second ago.
fn recent_matrix(control: &Control, id: i64) -> Option<Propagation> {
    let fresh = control
        .matrices
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .is_some_and(|(asked, _)| asked.elapsed() < MATRIX_REUSE);
    fresh.then(|| checked_matrix(control, id)).flatten()
}

/// The address of a survey's server: "ns1.example. (192.0.2.53:53)" gives
/// "192.0.2.53:53", as a check's report names it.
fn survey_address(server: &str) -> &str {
    server
        .rsplit_once(" (")
        .and_then(|(_, address)| address.strip_suffix(')'))
        .unwrap_or(server)
}

/// The scheduler's last survey of migration `detail` that asked the moving
/// records (the newest step evidence holding answers), and when it ended.
fn last_survey(detail: &Value) -> Option<(jiff::Timestamp, &Value)> {
    let steps = detail["steps"].as_array()?;
    steps.iter().rev().find_map(|step| {
        let survey = &step["evidence"]["survey"];
        let answered = ["authorities", "resolvers"].iter().any(|side| {
            survey[*side].as_array().is_some_and(|views| {
                views
                    .iter()
                    .any(|view| view["answers"].as_array().is_some_and(|a| !a.is_empty()))
            })
        });
        let at = step["done_at"]
            .as_str()
            .or(step["started_at"].as_str())?
            .parse()
            .ok()?;
        answered.then_some((at, survey))
    })
}

/// The locations a plan is verified from: `Some(list)` as its `[verify]
/// locations` name them (`["local"]` when it names none), `None` for
/// `"all"` (which ones the board knew when asked).
fn plan_locations(plan: &Value) -> Option<Vec<String>> {
    match &plan["verify"]["locations"] {
        Value::Null => Some(vec![LOCAL.to_owned()]),
        Value::String(all) if all == "all" => None,
        listed => Some(
            listed["listed"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_else(|| vec![LOCAL.to_owned()]),
        ),
    }
}

/// A server of a survey and the location it was asked from: "127.0.0.1:53
/// from fra1" gives ("127.0.0.1:53", "fra1") when the survey's servers are
/// `named` with their location ([`Survey::located`]); else the server as it
/// is, from `local`.
///
/// [`Survey::located`]: cutover_migrate::Survey::located
fn located_server(server: &str, named: bool) -> (&str, &str) {
    if named {
        if let Some((server, location)) = server.rsplit_once(" from ") {
            if valid_location(location) {
                return (server, location);
            }
        }
    }
    (server, LOCAL)
}

/// The index of `location` in `locations`, added at the end when new.
fn seen(locations: &mut Vec<MatrixLocation>, location: &str) -> usize {
    if let Some(at) = locations.iter().position(|l| l.location == location) {
        return at;
    }
    locations.push(MatrixLocation {
        location: location.to_owned(),
        problems: Vec::new(),
    });
    locations.len() - 1
}

/// A survey of the scheduler (or this route's, from several locations) in
/// the form of a `cutover check --json` report (servers and resolvers, one
/// row per question, each with its location), asked `at`. Its `locations`
/// are `known` in order (for `"all"`: `None`, those the survey names), each
/// with its problems; a survey of more than `local` names its servers and
/// problems with their location ("… from fra1", "fra1: …").
fn survey_report(
    survey: &Value,
    at: jiff::Timestamp,
    known: Option<&[String]>,
    named: bool,
) -> Value {
    let mut locations: Vec<MatrixLocation> = known
        .unwrap_or_default()
        .iter()
        .map(|location| MatrixLocation {
            location: location.clone(),
            problems: Vec::new(),
        })
        .collect();
    let mut sides = serde_json::Map::new();
    for (side, resolver) in [("authorities", false), ("resolvers", true)] {
        let mut rows = Vec::new();
        for view in survey[side].as_array().into_iter().flatten() {
            let (server, location) =
                located_server(view["server"].as_str().unwrap_or_default(), named);
            seen(&mut locations, location);
            for answer in view["answers"].as_array().into_iter().flatten() {
                let question = format!(
                    "{} {}",
                    answer["name"].as_str().unwrap_or_default(),
                    answer["rtype"].as_str().unwrap_or_default()
                );
                let said = match answer["error"].as_str() {
                    Some(error) => format!("error: {error}"),
                    None => String::new(),
                };
                rows.push(if resolver {
                    serde_json::json!({"location": location, "resolver": server, "address": server,
                        "question": question, "records": answer["values"], "ttl_left": answer["ttl"], "answer": said})
                } else {
                    serde_json::json!({"location": location, "address": survey_address(server),
                        "question": question, "records": answer["values"], "ttl": answer["ttl"], "answer": said})
                });
            }
        }
        sides.insert(
            if resolver { "resolvers" } else { "servers" }.to_owned(),
            Value::Array(rows),
        );
    }
    let mut problems: Vec<(usize, String)> = Vec::new();
    for problem in survey["problems"].as_array().into_iter().flatten() {
        let problem = problem.as_str().unwrap_or_default();
        let (location, said) = match problem.split_once(": ") {
            Some((location, said))
                if named
                    && valid_location(location)
                    && known.is_none_or(|k| k.iter().any(|l| l == location)) =>
            {
                (location, said)
            }
            _ => (LOCAL, problem),
        };
        problems.push((seen(&mut locations, location), said.to_owned()));
    }
    if locations.is_empty() {
        seen(&mut locations, LOCAL);
    }
    for (at, said) in problems {
        locations[at].problems.push(said);
    }
    serde_json::json!({
        "checked_at": at.to_string(),
        "servers": sides["servers"],
        "resolvers": sides["resolvers"],
        "locations": locations,
    })
}

/// The longest a resolver of `matrix` still holds what it holds, counted
/// down by `age` seconds: when every cache has let go.
fn released_in(matrix: &Propagation, age: u64) -> Option<u64> {
    matrix
        .rows
        .iter()
        .filter(|row| row.kind == "resolver")
        .flat_map(|row| row.cells.iter().filter_map(|cell| cell.ttl))
        .max()
        .map(|ttl| u64::from(ttl).saturating_sub(age))
}

/// What every location of `plan` sees of its moving records now, asked
/// zone by zone through [`agents::surveys_from`] (`local` through serve's
/// probes, each other location through an agent of it), as a report of
/// located rows.
async fn located_report(control: &Control, plan: &Plan) -> Result<Value, ApiError> {
    let mut located: Vec<(String, Survey)> = Vec::new();
    for z in plan.zone_list() {
        let origin = Name::from_ascii(&z.zone)
            .map_err(|e| ApiError::internal(format!("zone {}: {e}", z.zone)))?;
        let rrsets: Vec<(Name, RecordType)> = plan
            .changes
            .iter()
            .filter(|c| plan.zone_of(c).eq_ignore_ascii_case(&z.zone))
            .filter_map(|c| Some((c.owner().ok()?, c.record_type().ok()?)))
            .collect();
        let verify = plan.verify_of(&z);
        for (location, survey) in agents::surveys_from(control, origin, rrsets, verify).await? {
            let survey = if plan.many_zones() {
                survey.labelled(&z.zone)
            } else {
                survey
            };
            match located.iter_mut().find(|(l, _)| *l == location) {
                Some((_, all)) => {
                    all.authorities.extend(survey.authorities);
                    all.resolvers.extend(survey.resolvers);
                    all.problems.extend(survey.problems);
                }
                None => located.push((location, survey)),
            }
        }
    }
    let locations: Vec<String> = located.iter().map(|(l, _)| l.clone()).collect();
    let mut survey = Survey::default();
    for (location, one) in located {
        let one = one.located(&location);
        survey.authorities.extend(one.authorities);
        survey.resolvers.extend(one.resolvers);
        survey.problems.extend(one.problems);
    }
    Ok(survey_report(
        &to_json(&survey)?,
        jiff::Timestamp::now(),
        Some(&locations),
        true,
    ))
}

/// The last matrix known of migration `id`, asking no one: the newer of
/// this route's last check and the scheduler's last survey, with its age;
/// empty rows (`source: none`) when neither has asked yet.
async fn last_known(control: &Control, id: i64) -> Result<Propagation, ApiError> {
    let looker = control.clone();
    let detail = blocking(move || to_json(&open(&looker)?.show(id).map_err(runner_error)?)).await?;
    let checked = checked_matrix(control, id);
    let now = jiff::Timestamp::now();
    let surveyed = last_survey(&detail).map(|(at, survey)| {
        let age = u64::try_from(now.duration_since(at).as_secs()).unwrap_or(0);
        (age, at, survey)
    });
    match (checked, surveyed) {
        (Some(checked), Some((age, _, _))) if checked.age_seconds <= Some(age) => Ok(checked),
        (Some(checked), None) => Ok(checked),
        (_, Some((age, at, survey))) => {
            let plan = &detail["plan"];
            let known = plan_locations(plan);
            let named = known
                .as_ref()
                .is_none_or(|k| !(k.len() == 1 && k[0] == LOCAL));
            let report = survey_report(survey, at, known.as_deref(), named);
            let mut matrix = matrix(id, plan, &report);
            matrix.source = "scheduler".into();
            matrix.age_seconds = Some(age);
            // What the resolvers held then, counted down by the survey's age.
            matrix.all_released_in_seconds = released_in(&matrix, age);
            Ok(matrix)
        }
        (None, None) => {
            let plan = &detail["plan"];
            let known = plan_locations(plan).unwrap_or_else(|| vec![LOCAL.to_owned()]);
            let report = serde_json::json!({"locations": known
                .iter()
                .map(|location| MatrixLocation { location: location.clone(), problems: Vec::new() })
                .collect::<Vec<_>>()});
            let mut matrix = matrix(id, plan, &report);
            matrix.source = "none".into();
            matrix.checked_at = None;
            matrix.age_seconds = None;
            Ok(matrix)
        }
    }
}

/// Drops a migration's turn when its check ends, so that the turns held
/// are those of checks running (not one per id ever asked).
struct Forget {
    /// The control plane.
    control: Control,
    /// The migration.
    id: i64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.control
            .asking
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// `GET /api/v1/migrations/{id}/propagation`.
pub async fn propagation(
    State(control): State<Control>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Propagation> {
    let id = migration_id(&id)?;
    let may_ask = cutover_api::routes::connects_out_for(RouteId::MigrationPropagation)
        .is_some_and(|needed| caller.scope.api().grants(needed));
    if !may_ask {
        return Ok(Json(last_known(&control, id).await?));
    }
    if let Some(matrix) = recent_matrix(&control, id) {
        return Ok(Json(matrix));
    }
    // One check per migration at a time; the others wait for its matrix.
    let turn = control
        .asking
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(id)
        .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
        .clone();
    let _turn = turn.lock().await;
    let _forget = Forget {
        control: control.clone(),
        id,
    };
    if let Some(matrix) = recent_matrix(&control, id) {
        return Ok(Json(matrix));
    }
    let _permit = control.budget.take(&caller, Work::Probe)?;
    let looker = control.clone();
    let typed = blocking(move || Ok(open(&looker)?.show(id).map_err(runner_error)?.plan)).await?;
    let plan = to_json(&typed)?;
    if !typed.verify.local_only() {
        // Verified from more than here: every location of `[verify]
        // locations` asked as the migration's own steps ask it.
        let report = located_report(&control, &typed).await?;
        let mut matrix = matrix(id, &plan, &report);
        matrix.all_released_in_seconds = released_in(&matrix, 0);
        return Ok(Json(remember(&control, id, matrix)));
    }
    let resolvers: Vec<String> = plan["verify"]["resolvers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // The targets are the migration's own, which an admin stored: asked as
    // an admin would.
    let asker = Caller {
        name: caller.name.clone(),
        scope: TokenScope::Admin,
    };
    // One check per zone (a migration of several zones: each zone's names
    // at its own authorities), the reports joined.
    let mut report = serde_json::json!({"servers": [], "resolvers": []});
    for (zone, names, types, authorities) in zones_of(&plan) {
        let request = CheckRequest {
            zone,
            names: names
                .iter()
                .map(|name| {
                    if name.ends_with('.') {
                        name.clone()
                    } else {
                        format!("{name}.")
                    }
                })
                .collect(),
            types,
            resolvers: resolvers.clone(),
            servers: authorities,
            timeout: Some("1s".into()),
            ..CheckRequest::default()
        };
        let result = super::checks::run_check(&control, &asker, &request).await?;
        for side in ["servers", "resolvers"] {
            let rows = result.report[side].as_array().cloned().unwrap_or_default();
            if let Some(all) = report[side].as_array_mut() {
                all.extend(rows);
            }
        }
        for (key, value) in result.report.as_object().into_iter().flatten() {
            if report.get(key).is_none() {
                report[key.as_str()] = value.clone();
            }
        }
        // Every zone's caches must let go: the longest of them.
        let released = result.report["all_released_in_seconds"].as_u64();
        if let (Some(now), Some(before)) = (released, report["all_released_in_seconds"].as_u64()) {
            report["all_released_in_seconds"] = now.max(before).into();
        }
    }
    Ok(Json(remember(&control, id, matrix(id, &plan, &report))))
}

/// Keeps `matrix`, just asked, as migration `id`'s last; it, refreshed.
fn remember(control: &Control, id: i64, mut matrix: Propagation) -> Propagation {
    control
        .matrices
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, (Instant::now(), matrix.clone()));
    matrix.refreshed = true;
    matrix
}

/// `GET /api/v1/migrations/{id}/events`: `migration` with the detail at
/// once and whenever the summary, timeline or steps change.
pub async fn events(
    State(control): State<Control>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = migration_id(&id)?;
    let probe = control.clone();
    blocking(move || open(&probe)?.status(id).map(|_| ()).map_err(runner_error)).await?;
    let events = stream::unfold(
        (control, None::<String>, true),
        move |(control, last, first)| async move {
            let mut last = last;
            let mut first = first;
            loop {
                if !first {
                    tokio::time::sleep(POLL).await;
                }
                first = false;
                let looker = control.clone();
                let detail = tokio::task::spawn_blocking(move || {
                    let mut value = detail_json(&looker, id).ok()?;
                    if let Some(object) = value.as_object_mut() {
                        object.remove("file_text");
                    }
                    serde_json::to_string(&value).ok()
                })
                .await
                .ok()
                .flatten();
                if let Some(text) = detail {
                    if last.as_deref() != Some(text.as_str()) {
                        last = Some(text.clone());
                        let event = Event::default().event("migration").data(text);
                        return Some((Ok(event), (control, last, first)));
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plan_of_several_zones_is_checked_zone_by_zone_at_each_zones_authorities() {
        let plan = json!({
            "zone": "a.example.",
            "zones": [
                {"zone": "a.example.", "provider": 0},
                {"zone": "k.example.", "provider": 1, "authorities": ["127.0.0.1:5353"]}
            ],
            "changes": [
                {"name": "www.a.example.", "rtype": "A", "zone": "a.example.", "after": ["198.51.100.7"]},
                {"name": "mx.a.example.", "rtype": "AAAA", "zone": "a.example.", "after": ["2001:db8::7"]},
                {"name": "www.k.example.", "rtype": "A", "zone": "k.example.", "after": ["198.51.100.7"]}
            ],
            "verify": {"authorities": ["127.0.0.1:53"], "resolvers": []}
        });
        let zones = zones_of(&plan);
        assert_eq!(
            zones,
            vec![
                (
                    "a.example.".to_string(),
                    vec!["www.a.example.".to_string(), "mx.a.example.".to_string()],
                    vec!["A".to_string(), "AAAA".to_string()],
                    vec!["127.0.0.1:53".to_string()]
                ),
                (
                    "k.example.".to_string(),
                    vec!["www.k.example.".to_string()],
                    vec!["A".to_string()],
                    vec!["127.0.0.1:5353".to_string()]
                ),
            ],
            "each zone's names at its own authorities"
        );
        let one =
            json!({"zone": "a.example.", "changes": plan["changes"], "verify": plan["verify"]});
        assert_eq!(zones_of(&one).len(), 1, "a plan of one zone: one check");
    }

    #[test]
    fn cells_are_old_new_or_other_by_the_plan() {
        let plan = json!({
            "zone": "example.com.",
            "changes": [{"name": "www.example.com.", "rtype": "A", "before": {"ttl": 3600, "values": ["192.0.2.10"]}, "after": ["198.51.100.20"]}],
            "verify": {"authorities": [], "resolvers": []}
        });
        let report = json!({
            "checked_at": "2026-01-01T00:00:00Z",
            "servers": [
                {"address": "127.0.0.1:53", "question": "www.example.com. A", "records": ["198.51.100.20"], "ttl": 60, "answer": "1 record"},
                {"address": "127.0.0.2:53", "question": "www.example.com. A", "records": ["192.0.2.10"], "ttl": 60, "answer": "1 record"}
            ],
            "resolvers": [
                {"resolver": "r1", "address": "127.0.0.1:5353", "question": "www.example.com. A", "records": ["192.0.2.99"], "ttl_left": 42, "answer": "1 record"},
                {"resolver": "r2", "address": "127.0.0.1:5354", "question": "www.example.com. A", "records": [], "ttl_left": null, "answer": "timeout"}
            ],
            "all_released_in_seconds": 42
        });
        let matrix = matrix(7, &plan, &report);
        let states: Vec<(&str, &str)> = matrix
            .rows
            .iter()
            .map(|row| (row.label.as_str(), row.cells[0].state.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("127.0.0.1:53", "new"),
                ("127.0.0.2:53", "old"),
                ("r1 127.0.0.1:5353", "other"),
                ("r2 127.0.0.1:5354", "error")
            ],
            "expected new, old, other, error"
        );
        assert_eq!(
            matrix.rows[2].cells[0].ttl,
            Some(42),
            "expected the TTL left of r1"
        );
        assert_eq!(
            matrix.questions,
            ["www.example.com. A"],
            "expected the moving record"
        );
    }

    #[test]
    fn the_schedulers_last_survey_reads_as_a_matrix() {
        let plan = json!({
            "zone": "example.com.",
            "changes": [{"name": "www.example.com.", "rtype": "A", "before": {"ttl": 3600, "values": ["192.0.2.10"]}, "after": ["198.51.100.20"]}],
            "verify": {"authorities": [], "resolvers": []}
        });
        let survey = |values: &str| {
            json!({
                "authorities": [{"server": "ns1.example.com. (127.0.0.1:53)", "serial": 7,
                    "answers": [{"name": "www.example.com.", "rtype": "A", "ttl": 60, "values": [values], "error": null}]}],
                "resolvers": [{"server": "127.0.0.1:5353", "serial": null,
                    "answers": [{"name": "www.example.com.", "rtype": "A", "ttl": null, "values": [], "error": "timeout"}]}],
                "problems": []
            })
        };
        let detail = json!({"steps": [
            {"done_at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:00Z", "evidence": {"survey": survey("192.0.2.10")}},
            {"done_at": "2026-01-01T00:01:00Z", "started_at": "2026-01-01T00:01:00Z", "evidence": {"survey": survey("198.51.100.20")}},
            {"done_at": null, "started_at": "2026-01-01T00:02:00Z", "evidence": {"survey": {"authorities": [{"server": "x", "answers": []}]}}}
        ]});
        let (at, last) = last_survey(&detail).expect("a survey with answers");
        assert_eq!(
            at.to_string(),
            "2026-01-01T00:01:00Z",
            "expected the newest survey that asked the moving records"
        );
        let matrix = matrix(
            7,
            &plan,
            &survey_report(last, at, Some(&[LOCAL.to_owned()]), false),
        );
        let states: Vec<(&str, &str)> = matrix
            .rows
            .iter()
            .map(|row| (row.label.as_str(), row.cells[0].state.as_str()))
            .collect();
        assert_eq!(
            states,
            [("127.0.0.1:53", "new"), ("127.0.0.1:5353", "error")],
            "expected the authority by its address, new, and the silent resolver as an error"
        );
        assert_eq!(
            matrix.checked_at.as_deref(),
            Some("2026-01-01T00:01:00Z"),
            "expected the survey's time"
        );
    }

    #[test]
    fn a_survey_from_several_locations_reads_as_a_matrix_location_by_location() {
        let plan = json!({
            "zone": "example.com.",
            "changes": [{"name": "www.example.com.", "rtype": "A", "before": {"ttl": 3600, "values": ["192.0.2.10"]}, "after": ["198.51.100.20"]}],
            "verify": {"authorities": [], "resolvers": [], "locations": {"listed": ["local", "fra1", "nyc1", "sfo1"]}}
        });
        let answer = |values: &str, ttl: u32| json!([{"name": "www.example.com.", "rtype": "A", "ttl": ttl, "values": [values], "error": null}]);
        // As the runner stores it: servers and problems named with their
        // location, the locations in any order in the survey.
        let survey = json!({
            "authorities": [
                {"server": "ns1.example.com. (127.0.0.1:53) from nyc1", "serial": 7, "answers": answer("198.51.100.20", 60)},
                {"server": "ns1.example.com. (127.0.0.1:53) from local", "serial": 7, "answers": answer("198.51.100.20", 60)}
            ],
            "resolvers": [
                {"server": "127.0.0.1:5353 from nyc1", "serial": null, "answers": answer("192.0.2.10", 3500)},
                {"server": "127.0.0.1:5354 from fra1", "serial": null, "answers": answer("198.51.100.20", 1)}
            ],
            "problems": ["sfo1: no agent online"]
        });
        let known = plan_locations(&plan).expect("listed locations");
        assert_eq!(
            known,
            ["local", "fra1", "nyc1", "sfo1"],
            "the plan's locations"
        );
        let at: jiff::Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let matrix = matrix(7, &plan, &survey_report(&survey, at, Some(&known), true));
        let rows: Vec<(&str, &str, &str, &str)> = matrix
            .rows
            .iter()
            .map(|row| {
                (
                    row.location.as_str(),
                    row.kind.as_str(),
                    row.label.as_str(),
                    row.cells[0].state.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("local", "authoritative", "127.0.0.1:53", "new"),
                ("fra1", "resolver", "127.0.0.1:5354", "new"),
                ("nyc1", "authoritative", "127.0.0.1:53", "new"),
                ("nyc1", "resolver", "127.0.0.1:5353", "old"),
            ],
            "expected the rows by location, in the plan's order, labelled without it"
        );
        assert_eq!(matrix.rows[3].cells[0].ttl, Some(3500), "nyc1's TTL left");
        let locations: Vec<(&str, Vec<&str>)> = matrix
            .locations
            .iter()
            .map(|l| {
                (
                    l.location.as_str(),
                    l.problems.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            locations,
            [
                ("local", vec![]),
                ("fra1", vec![]),
                ("nyc1", vec![]),
                ("sfo1", vec!["no agent online"])
            ],
            "expected every location, sfo1 with why it gave no answer"
        );
        // `"all"`: the locations are those the survey names.
        let all = json!({"verify": {"locations": "all"}});
        assert_eq!(plan_locations(&all), None, "all is no list");
        let report = survey_report(&survey, at, None, true);
        let named: Vec<&str> = report["locations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["location"].as_str())
            .collect();
        assert_eq!(
            named,
            ["nyc1", "local", "fra1", "sfo1"],
            "in the survey's order"
        );
        // A plan from before locations: local, its servers as they are.
        let old = json!({"verify": {"authorities": []}});
        assert_eq!(plan_locations(&old), Some(vec!["local".to_owned()]));
        assert_eq!(
            located_server("127.0.0.1:53 from fra1", false),
            ("127.0.0.1:53 from fra1", "local"),
            "a local survey's server is never split"
        );
    }
}
