//! Zones and records through the API: listings, versions and diffs read
//! from the store; changes made exactly as `cutover record add|set|delete`
//! makes them, through the RFC 2136 path:
//!
//! ```text
//!  RecordChange ──parse (400 on bad input)──▶ Update { changes }
//!     ──update::apply (all or nothing; 422 when refused)──▶ ZoneDiff
//!     ──Store::apply (one fsynced transaction)──▶ serial bumped, journalled
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use cutover_api::{
    ChangeAction, ChangeResult, DiffView, ErrorCode, RecordChange, RecordView, VersionList,
    VersionView, ZoneList, ZoneSummary, ZoneView,
};
use cutover_nameserver::update::{self, Change as UpdateChange, Outcome, Policy, Rule, Update};
use cutover_store::{Store, StoreError};
use cutover_zone::{zonefile, Name, Rdata, Record, RecordType, Serial, Zone, ZoneDiff};

use super::{blocking, parse_body, ApiError, ApiResult, Control};

/// TTL of a new RRset when none is given (as `cutover record`).
const DEFAULT_TTL: u32 = 3600;

/// A zone apex from a path segment (always absolute).
pub fn zone_name(text: &str) -> Result<Name, ApiError> {
    let mut name = Name::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid zone name {text:?}: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

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

/// `GET /api/v1/zones/{zone}/diff?from=S&to=S` (default: the last change).
pub async fn diff(
    State(control): State<Control>,
    Path(zone): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<DiffView> {
    let origin = zone_name(&zone)?;
    let (mut from, mut to) = (None, None);
    for pair in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("from", value)) => from = Some(serial_param("from", value)?),
            Some(("to", value)) => to = Some(serial_param("to", value)?),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {pair:?} (use from and to)"
                )))
            }
        }
    }
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
    let edit = Edit::parse(&change, &origin)?;
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
    let result =
        blocking(move || commit(&store, &origin, comment.trim_end(), dry_run, &edit)).await?;
    Ok(Json(result))
}

/// The address the API's updates are attributed to (the local operator's).
const OPERATOR: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How often a change is retried when another writer moved the zone on
/// between our read and our write.
const ATTEMPTS: usize = 3;

/// The operator's policy: the whole zone, no caps (as `cutover record`).
fn operator_policy(origin: &Name) -> Result<Policy, ApiError> {
    let prefix = update::Prefix::from_str("127.0.0.1/32")
        .map_err(|e| ApiError::internal(format!("the operator prefix: {e}")))?;
    Ok(Policy {
        keys: Vec::new(),
        unsigned: vec![(prefix, Rule::whole_zone(origin.clone()))],
        max_records: usize::MAX,
        max_rrset: usize::MAX,
    })
}

/// Builds the UPDATE from the current zone and applies it as a network
/// UPDATE is applied: `update::apply` (all or nothing), then one
/// `Store::apply` (or, dry, nothing).
fn commit(
    store: &Store,
    origin: &Name,
    comment: &str,
    dry_run: bool,
    edit: &Edit,
) -> Result<ChangeResult, ApiError> {
    let policy = operator_policy(origin)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let zone = store.zone(origin)?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("zone {origin} is not in the store"),
            )
        })?;
        let request = Update {
            id: 0,
            zone: origin.clone(),
            prerequisites: Vec::new(),
            changes: edit.changes(&zone)?,
        };
        let now = u32::try_from(crate::primary::wall_clock()).unwrap_or(u32::MAX);
        let outcome = update::apply(&zone, &request, None, OPERATOR, &policy, now)
            .map_err(|e| ApiError::new(ErrorCode::Rejected, format!("{origin}: {e}")))?;
        let diff = match outcome {
            Outcome::Unchanged => {
                let serial = zone.serial().unwrap_or(Serial(0));
                let empty = ZoneDiff {
                    from: serial,
                    to: serial,
                    removed: Vec::new(),
                    added: Vec::new(),
                };
                return Ok(ChangeResult {
                    diff: diff_view(origin, &empty),
                    applied: false,
                });
            }
            Outcome::Changed { diff, .. } => diff,
        };
        if dry_run {
            return Ok(ChangeResult {
                diff: diff_view(origin, &diff),
                applied: false,
            });
        }
        match store.apply(origin, &diff, comment) {
            Ok(_) => {
                return Ok(ChangeResult {
                    diff: diff_view(origin, &diff),
                    applied: true,
                })
            }
            Err(StoreError::SerialMismatch { .. }) if attempt < ATTEMPTS => continue,
            Err(error) => return Err(error.into()),
        }
    }
}

/// A record change, parsed and checked before the store is touched.
struct Edit {
    /// What to do.
    action: ChangeAction,
    /// The owner, absolute.
    name: Name,
    /// The type.
    rtype: RecordType,
    /// The data (required for add and set).
    rdata: Option<Rdata>,
    /// The TTL asked for.
    ttl: Option<u32>,
}

impl Edit {
    /// Reads a [`RecordChange`] against the zone `origin`.
    fn parse(change: &RecordChange, origin: &Name) -> Result<Edit, ApiError> {
        let name = owner_name(&change.name, origin)?;
        let rtype = record_type(&change.rtype)?;
        let rdata = match change.data.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => {
                Some(zonefile::rdata_from_text(rtype, text, origin).map_err(|e| {
                    ApiError::bad_request(format!("invalid {rtype} data {text:?}: {e}"))
                })?)
            }
            _ => None,
        };
        if rdata.is_none() && change.action != ChangeAction::Delete {
            return Err(ApiError::bad_request(
                "\"data\" is required to add or set a record",
            ));
        }
        Ok(Edit {
            action: change.action,
            name,
            rtype,
            rdata,
            ttl: change.ttl,
        })
    }

    /// The UPDATE's changes against the current zone.
    fn changes(&self, zone: &Zone) -> Result<Vec<UpdateChange>, ApiError> {
        let (name, rtype) = (&self.name, self.rtype);
        let ttl = || {
            self.ttl
                .or(zone.get(name, rtype).map(|s| s.ttl))
                .unwrap_or(DEFAULT_TTL)
        };
        let record = |rdata: &Rdata| Record {
            name: name.clone(),
            ttl: ttl(),
            rdata: rdata.clone(),
        };
        match (self.action, &self.rdata) {
            (ChangeAction::Add, Some(rdata)) => Ok(vec![UpdateChange::Add(record(rdata))]),
            (ChangeAction::Set, Some(rdata)) => Ok(vec![
                UpdateChange::DeleteRrset {
                    name: name.clone(),
                    rtype,
                },
                UpdateChange::Add(record(rdata)),
            ]),
            (ChangeAction::Delete, Some(rdata)) => {
                if !zone.get(name, rtype).is_some_and(|set| set.contains(rdata)) {
                    return Err(ApiError::new(
                        ErrorCode::Rejected,
                        format!("{name} has no {rtype} record with that data"),
                    ));
                }
                Ok(vec![UpdateChange::DeleteRecord {
                    name: name.clone(),
                    rdata: rdata.clone(),
                }])
            }
            (ChangeAction::Delete, None) => {
                if zone.get(name, rtype).is_none() {
                    return Err(ApiError::new(
                        ErrorCode::Rejected,
                        format!("{name} has no {rtype} records"),
                    ));
                }
                Ok(vec![UpdateChange::DeleteRrset {
                    name: name.clone(),
                    rtype,
                }])
            }
            (_, None) => Err(ApiError::bad_request(
                "\"data\" is required to add or set a record",
            )),
        }
    }
}

/// An owner name: "@" is the apex, "x." is absolute, anything else is
/// relative to the zone; it must be inside the zone.
fn owner_name(text: &str, origin: &Name) -> Result<Name, ApiError> {
    if text == "@" {
        return Ok(origin.clone());
    }
    let name = Name::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid name {text:?}: {e}")))?;
    let name = if name.is_fqdn() {
        name
    } else {
        name.append_domain(origin)
            .map_err(|e| ApiError::bad_request(format!("invalid name {text:?} in {origin}: {e}")))?
    };
    if !origin.zone_of(&name) {
        return Err(ApiError::bad_request(format!(
            "{name} is outside the zone {origin}"
        )));
    }
    Ok(name)
}

/// A record type by mnemonic (or TYPEnnn).
fn record_type(text: &str) -> Result<RecordType, ApiError> {
    let upper = text.to_ascii_uppercase();
    if let Some(code) = upper
        .strip_prefix("TYPE")
        .and_then(|n| n.parse::<u16>().ok())
    {
        return Ok(RecordType::from(code));
    }
    if upper == "DNAME" {
        return Ok(RecordType::from(cutover_zone::rdata::DNAME));
    }
    match RecordType::from_str(&upper) {
        Ok(RecordType::Unknown(_)) | Err(_) => Err(ApiError::bad_request(format!(
            "unknown record type {text:?}"
        ))),
        Ok(rtype) => Ok(rtype),
    }
}
