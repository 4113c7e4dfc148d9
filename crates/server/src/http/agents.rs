//! The agents' routes: the long poll and the results (agent tokens only),
//! the listing (read), and a survey from several locations by hand
//! (admin: `cutover check --from`).
//!
//! ```text
//!  POST /api/v1/agents/poll    {name, location} ──Board::poll (≤ poll_wait)──▶ {job | none, lease_seconds}
//!  POST /api/v1/agents/results {name, location, job, outcome} ──Board::report──▶ {accepted, reason}
//!  GET  /api/v1/agents ──Board::agents──▶ online / offline, last seen, jobs
//!  POST /api/v1/checks/from {zone, rrsets, verify} ──LocatedChecks::surveys_from──▶ a survey per location
//! ```

use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use cutover_api::{AgentAccepted, AgentList, AgentView};
use cutover_migrate::agent::{
    AgentHello, AgentPolled, AgentReport, CheckFromRequest, CheckFromResult, LocatedSurvey,
};
use cutover_migrate::checks::ProbeChecks;
use cutover_migrate::file::{valid_location, Verify};
use cutover_migrate::{Checks, Survey};
use cutover_zone::{Name, RecordType};

use super::caller::Caller;
use super::control::Control;
use super::error::{parse_body, ApiError, ApiResult};
use crate::agents::located::LocatedChecks;

/// A name or location checked as a location name is.
fn checked(what: &str, text: &str) -> Result<(), ApiError> {
    if valid_location(text) && text != cutover_migrate::file::LOCAL {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} {text:?}: expected 1 to 64 letters, digits, '-', '_' or '.', not \"all\" nor \"local\""
        )))
    }
}

/// `POST /api/v1/agents/poll`.
pub async fn poll(
    State(control): State<Control>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<AgentPolled> {
    let hello: AgentHello = parse_body(&body)?;
    checked("name", &hello.name)?;
    checked("location", &hello.location)?;
    let job = control
        .agents
        .poll(&hello.name, &hello.location, &caller.name)
        .await;
    Ok(Json(AgentPolled {
        job,
        lease_seconds: control.agents.config().lease.as_secs().max(1),
    }))
}

/// `POST /api/v1/agents/results`.
pub async fn report(
    State(control): State<Control>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<AgentAccepted> {
    let report: AgentReport = parse_body(&body)?;
    checked("name", &report.name)?;
    checked("location", &report.location)?;
    let taken = control.agents.report(
        &report.name,
        &report.location,
        &caller.name,
        report.job,
        report.outcome,
    );
    Ok(Json(AgentAccepted {
        accepted: taken.is_ok(),
        reason: taken.err(),
    }))
}

/// `GET /api/v1/agents`.
pub async fn list(State(control): State<Control>) -> Json<AgentList> {
    let agents = control
        .agents
        .agents()
        .into_iter()
        .map(|row| AgentView {
            name: row.name,
            location: row.location,
            token: row.token,
            online: row.online,
            last_seen: row.seen_at.to_string(),
            seen_seconds_ago: row.seen_ago.as_secs(),
            jobs_done: row.done,
            jobs_leased: row.leased,
        })
        .collect();
    Json(AgentList {
        agents,
        offline_after_seconds: control.agents.config().offline_after.as_secs(),
    })
}

/// A zone's RRsets asked from every location `verify` names (`"all"`
/// resolved as the board knows the locations now): `local` through serve's
/// probes, the others through their agents, at once; each location's
/// survey in order, a location that could not be asked with a problem
/// saying why. `check --from`'s route and the propagation matrix's.
pub async fn surveys_from(
    control: &Control,
    zone: Name,
    rrsets: Vec<(Name, RecordType)>,
    verify: Verify,
) -> Result<Vec<(String, Survey)>, ApiError> {
    let board = control.agents.clone();
    tokio::task::spawn_blocking(move || {
        let checks = LocatedChecks::new(ProbeChecks::new(), Some(board));
        let locations = checks.locations(&verify);
        checks.surveys_from(&locations, &zone, &rrsets, &verify)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the survey stopped: {e}")))
}

/// `POST /api/v1/checks/from`.
pub async fn check_from(State(control): State<Control>, body: Bytes) -> ApiResult<CheckFromResult> {
    let request: CheckFromRequest = parse_body(&body)?;
    let zone = Name::from_ascii(&request.zone)
        .map_err(|e| ApiError::bad_request(format!("zone {:?}: {e}", request.zone)))?;
    let mut rrsets = Vec::new();
    for q in &request.rrsets {
        let name = Name::from_ascii(&q.name)
            .map_err(|e| ApiError::bad_request(format!("name {:?}: {e}", q.name)))?;
        let rtype: RecordType = q
            .rtype
            .parse()
            .map_err(|_| ApiError::bad_request(format!("type {:?} is unknown", q.rtype)))?;
        rrsets.push((name, rtype));
    }
    let located = surveys_from(&control, zone, rrsets, request.verify).await?;
    Ok(Json(CheckFromResult {
        locations: located
            .into_iter()
            .map(|(location, survey)| LocatedSurvey { location, survey })
            .collect(),
    }))
}
