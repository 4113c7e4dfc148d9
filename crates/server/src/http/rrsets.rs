//! `PATCH /api/v1/zones/{zone}/rrsets`: PowerDNS's batch of RRset changes,
//! applied in one version, all or nothing, by the same path as every other
//! record change (`edits`):
//!
//! ```text
//!  RrsetPatch { rrsets: [{name, type, ttl, changetype, records}] }
//!     ──operator::rrset_edits, entry by entry (400 naming rrsets[i])──▶ [Edit]
//!     ──edits::commit (one UPDATE on an excerpt of the zone; 422 naming
//!       rrsets[i] for a change the rules refuse)──▶ one serial, one transaction
//!     ──serve's reload watcher woken──▶ answered once published (durable and served)
//!  ?dry_run=true (or "dry_run": true) ──▶ the same diff, nothing written
//! ```

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use cutover_api::{ChangeResult, Changetype, RrsetPatch};
use cutover_nameserver::update::operator::{self, RrsetAction};

use super::blocking::blocking;
use super::control::Control;
use super::edits::{commit, edit_error, refuse_secondary, served};
use super::error::{parse_body, zone_name, ApiError, ApiResult};
use super::zones::change_result;

/// `PATCH /api/v1/zones/{zone}/rrsets`.
pub async fn patch(
    State(control): State<Control>,
    Path(zone): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult<ChangeResult> {
    let origin = zone_name(&zone)?;
    let dry_query = dry_run_param(query.as_deref())?;
    let patch: RrsetPatch = parse_body(&body)?;
    refuse_secondary(&control, &origin)?;
    if patch.rrsets.is_empty() {
        return Err(ApiError::bad_request("rrsets is empty: nothing to change"));
    }
    let mut edits = Vec::new();
    let mut entry_of = Vec::new();
    for (i, rrset) in patch.rrsets.iter().enumerate() {
        if rrset.records.iter().any(|r| r.disabled) {
            return Err(ApiError::bad_request(format!(
                "rrsets[{i}]: a disabled record cannot be stored (cutover serves every record it holds)"
            )));
        }
        let action = match rrset.changetype {
            Changetype::Replace => RrsetAction::Replace,
            Changetype::Delete => RrsetAction::Delete,
            Changetype::Extend => RrsetAction::Extend,
            Changetype::Prune => RrsetAction::Prune,
        };
        let datas: Vec<&str> = rrset.records.iter().map(|r| r.content.as_str()).collect();
        let found = operator::rrset_edits(
            action,
            &rrset.name,
            &rrset.rtype,
            rrset.ttl,
            &datas,
            &origin,
        )
        .map_err(|error| {
            let mut refused = edit_error(error);
            refused.message = format!("rrsets[{i}]: {}", refused.message);
            refused
        })?;
        entry_of.extend(std::iter::repeat_n(i, found.len()));
        edits.extend(found);
    }
    let dry_run = dry_query || patch.dry_run;
    let comment = format!("api: rrsets patch ({} changes)", patch.rrsets.len());
    let store = control.store.clone();
    let publication = control.publication.clone();
    let result = blocking(move || {
        let blame = |edit: usize| format!("rrsets[{}]", entry_of[edit]);
        let committed = commit(&store, &origin, &comment, dry_run, &edits, blame)?;
        let unserved = match (&committed.diff, dry_run) {
            (Some(diff), false) => served(publication.as_ref(), &origin, diff.to),
            _ => None,
        };
        let mut result = change_result(
            &origin,
            committed,
            dry_run,
            "the zone already holds exactly these RRsets",
        );
        result.note = result.note.or(unserved);
        Ok(result)
    })
    .await?;
    Ok(Json(result))
}

/// `dry_run=true|false`, the one query parameter taken.
fn dry_run_param(query: Option<&str>) -> Result<bool, ApiError> {
    let mut dry_run = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        dry_run = match pair {
            "dry_run=true" | "dry_run=1" | "dry_run" => true,
            "dry_run=false" | "dry_run=0" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?} (use dry_run=true)"
                )))
            }
        };
    }
    Ok(dry_run)
}
