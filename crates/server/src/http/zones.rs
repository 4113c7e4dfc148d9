//! Zones and records through the API: listings, versions and diffs read
//! from the store; changes made exactly as `cutover record add|set|delete`
//! makes them, through the RFC 2136 path:
//!
//! ```text
//!  RecordChange ──parse (400 on bad input)──▶ Update { changes }
//!     ──update::operator::apply (all or nothing; 422 when refused, also
//!       for a change RFC 2136 would drop silently: a CNAME beside data…)──▶ ZoneDiff,
//!       worked out on an excerpt of the zone (`edits`: Store::update_rrsets)
//!     ──one fsynced transaction──▶ serial bumped, journalled
//!     ──serve's reload watcher woken──▶ answered once published (durable and served)
//! ```

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use cutover_api::{
    ChangeAction, ChangeResult, DiffView, ErrorCode, RecordChange, RecordView, VersionList,
    VersionView, ZoneExport, ZoneList, ZoneSummary, ZoneView,
};
use cutover_nameserver::update::operator::{Action, Edit};
use cutover_store::Store;
use cutover_zone::{zonefile, Name, Record, Serial, ZoneDiff};

use super::blocking::blocking;
use super::control::Control;
use super::edits::{commit, edit_error, refuse_secondary, served, Committed};
use super::error::{parse_body, zone_name, ApiError, ApiResult};

/// A record in the API's words.
pub fn record_view(record: &Record) -> RecordView {
    let text = zonefile::record_to_text(record);
    // "owner TTL IN TYPE data"
    let mut words = text.splitn(5, ' ');
    let name = words.next().unwrap_or_default().to_owned();
    let _ttl = words.next();
    let _class = words.next();
    let rtype = words.next().unwrap_or_default().to_owned();
    let data = words.next().unwrap_or_default().to_owned();
    RecordView {
        name,
        ttl: record.ttl,
        rtype,
        data,
    }
}

/// A diff in the API's words.
pub fn diff_view(origin: &Name, diff: &ZoneDiff) -> DiffView {
    DiffView {
        origin: origin.to_string(),
        from: diff.from.0,
        to: diff.to.0,
        removed: diff.removed.iter().map(record_view).collect(),
        added: diff.added.iter().map(record_view).collect(),
    }
}

/// The store shared by the handlers.
fn store(control: &Control) -> std::sync::Arc<Store> {
    control.store.clone()
}

/// `GET /api/v1/zones`.
pub async fn list(State(control): State<Control>) -> ApiResult<ZoneList> {
    let store = store(&control);
    let zones = blocking(move || Ok(store.zones()?)).await?;
    Ok(Json(ZoneList {
        zones: zones
            .into_iter()
            .map(|info| ZoneSummary {
                origin: info.origin.to_string(),
                serial: info.serial.0,
                records: info.records,
                updated_at: info.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            })
            .collect(),
    }))
}

/// `GET /api/v1/zones/{zone}`.
pub async fn show(State(control): State<Control>, Path(zone): Path<String>) -> ApiResult<ZoneView> {
    let origin = zone_name(&zone)?;
    let store = store(&control);
    let found = {
        let origin = origin.clone();
        blocking(move || Ok(store.zone(&origin)?)).await?
    };
    let zone = found.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("zone {origin} is not in the store"),
        )
    })?;
    Ok(Json(ZoneView {
        origin: origin.to_string(),
        serial: zone.serial().map_or(0, |serial| serial.0),
        records: zone.records().map(|record| record_view(&record)).collect(),
    }))
}

/// `GET /api/v1/zones/{zone}/export[?serial=S]`.
pub async fn export(
    State(control): State<Control>,
    Path(zone): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ZoneExport> {
    let origin = zone_name(&zone)?;
    let [serial] = serial_params(query.as_deref(), ["serial"])?;
    let store = store(&control);
    let zone = blocking(move || {
        let zone = match serial {
            Some(serial) => store.zone_at(&origin, serial)?,
            None => store.zone(&origin)?.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    format!("zone {origin} is not in the store"),
                )
            })?,
        };
        Ok(zone)
    })
    .await?;
    Ok(Json(ZoneExport {
        origin: zone.origin().to_string(),
        serial: zone.serial().map_or(0, |serial| serial.0),
        text: zonefile::write(&zone),
    }))
}

/// `GET /api/v1/zones/{zone}/versions`.
pub async fn versions(
    State(control): State<Control>,
    Path(zone): Path<String>,
) -> ApiResult<VersionList> {
    let origin = zone_name(&zone)?;
    let store = store(&control);
    let found = {
        let origin = origin.clone();
        blocking(move || Ok(store.versions(&origin)?)).await?
    };
    Ok(Json(VersionList {
        origin: origin.to_string(),
        versions: found
            .into_iter()
            .map(|version| VersionView {
                serial: version.serial.0,
                from: version.from.map(|serial| serial.0),
                at: version.at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                comment: version.comment,
                added: version.added,
                removed: version.removed,
            })
            .collect(),
    }))
}

/// A serial from a query parameter.
fn serial_param(name: &str, value: &str) -> Result<Serial, ApiError> {
    value.parse::<u32>().map(Serial).map_err(|_| {
        ApiError::bad_request(format!(
            "{name}={value:?} is not a serial (0 to 4294967295)"
        ))
    })
}

/// The serials a query string gives for `names` (each at most once; any
/// other parameter is refused, naming the ones this route takes).
fn serial_params<const N: usize>(
    query: Option<&str>,
    names: [&str; N],
) -> Result<[Option<Serial>; N], ApiError> {
    let mut found = [None; N];
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let known = pair
            .split_once('=')
            .and_then(|(name, value)| Some((names.iter().position(|n| *n == name)?, value)));
        match known {
            Some((index, value)) => found[index] = Some(serial_param(names[index], value)?),
            None => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {pair:?} (use {})",
                    names.join(" and ")
                )))
            }
        }
    }
    Ok(found)
}

/// `GET /api/v1/zones/{zone}/diff?from=S&to=S` (default: the last change).
pub async fn diff(
    State(control): State<Control>,
    Path(zone): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<DiffView> {
    let origin = zone_name(&zone)?;
    let [from, to] = serial_params(query.as_deref(), ["from", "to"])?;
    let store = store(&control);
    let view = blocking(move || {
        let versions = store.versions(&origin)?;
        let last = versions.last().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("zone {origin} has no versions"),
            )
        })?;
        let to = to.unwrap_or(last.serial);
        let from = match from {
            Some(from) => from,
            None => versions
                .iter()
                .find(|version| version.serial == to)
                .and_then(|version| version.from)
                .unwrap_or(to),
        };
        let diff = store.diff(&origin, from, to)?;
        Ok(diff_view(&origin, &diff))
    })
    .await?;
    Ok(Json(view))
}

/// `POST /api/v1/zones/{zone}/records`.
pub async fn change(
    State(control): State<Control>,
    Path(zone): Path<String>,
    body: Bytes,
) -> ApiResult<ChangeResult> {
    let origin = zone_name(&zone)?;
    let change: RecordChange = parse_body(&body)?;
    refuse_secondary(&control, &origin)?;
    let action = match change.action {
        ChangeAction::Add => Action::Add,
        ChangeAction::Set => Action::Set,
        ChangeAction::Delete => Action::Delete,
    };
    let mut edit = Edit::parse(
        action,
        &change.name,
        &change.rtype,
        change.data.as_deref().unwrap_or(""),
        &origin,
    )
    .map_err(edit_error)?;
    edit.ttl = change.ttl;
    edit.replace = change.replace;
    let comment = format!(
        "api: record {} {} {} {}",
        match change.action {
            ChangeAction::Add => "add",
            ChangeAction::Set => "set",
            ChangeAction::Delete => "delete",
        },
        change.name,
        change.rtype,
        change.data.as_deref().unwrap_or("")
    );
    let dry_run = change.dry_run;
    let store = store(&control);
    let publication = control.publication.clone();
    let result = blocking(move || {
        let edits = [edit];
        let committed = commit(&store, &origin, comment.trim_end(), dry_run, &edits, |_| {
            "the change".to_owned()
        })?;
        let [edit] = edits;
        let unserved = match (&committed.diff, dry_run) {
            (Some(diff), false) => served(publication.as_ref(), &origin, diff.to),
            _ => None,
        };
        let mut result = change_result(
            &origin,
            committed,
            dry_run,
            &format!("{} {} already holds exactly this", edit.name, edit.rtype),
        );
        result.note = result.note.or(unserved);
        Ok(result)
    })
    .await?;
    Ok(Json(result))
}

/// The answer to a change: the diff, whether it was written, and why not
/// (`unchanged`: what the zone already holds, in words).
pub fn change_result(
    origin: &Name,
    committed: Committed,
    dry_run: bool,
    unchanged: &str,
) -> ChangeResult {
    let Some(diff) = committed.diff else {
        let empty = ZoneDiff {
            from: committed.serial,
            to: committed.serial,
            removed: Vec::new(),
            added: Vec::new(),
        };
        return ChangeResult {
            diff: diff_view(origin, &empty),
            applied: false,
            note: Some(format!("{unchanged}; nothing written")),
        };
    };
    ChangeResult {
        diff: diff_view(origin, &diff),
        applied: !dry_run,
        note: dry_run.then(|| "dry run: nothing changed".to_owned()),
    }
}
