//! The one way the API changes a zone's records, shared by `POST …/records`
//! and `PATCH …/rrsets`: the operator's edits (RFC 2136, strict) worked out
//! on an excerpt of the zone inside the store's write transaction
//! (`Store::update_rrsets`: the touched names, never the whole zone), or,
//! dry, on the same excerpt without writing. A change written is answered
//! once `serve` publishes it (`served`): durable and served.

use cutover_api::ErrorCode;
use cutover_nameserver::update::operator::{self, BatchError, Edit, EditError};
use cutover_nameserver::update::Outcome;
use cutover_store::{Store, StoreError};
use cutover_zone::{Name, Serial, Zone, ZoneDiff};

use super::control::{Control, Publication};
use super::error::ApiError;

/// What a commit did: the diff (`None`: the zone already held exactly
/// this) and the serial of the version it was worked out on.
pub struct Committed {
    /// The diff written (or, dry, that would be).
    pub diff: Option<ZoneDiff>,
    /// The serial before.
    pub serial: Serial,
}

/// A refusal for a secondary zone, whose records change on its primary only.
pub fn refuse_secondary(control: &Control, origin: &Name) -> Result<(), ApiError> {
    let Some(primaries) = control.secondary_zones.get(origin) else {
        return Ok(());
    };
    let primaries: Vec<String> = primaries.iter().map(ToString::to_string).collect();
    Err(ApiError::new(
        ErrorCode::Rejected,
        format!(
            "zone {origin} is a secondary zone here (primary = {}): its records come from \
             its primary by zone transfer; change it on the primary",
            primaries.join(", ")
        ),
    ))
}

/// An edit refused: 400 for input that does not parse, 422 for a change
/// the zone's rules refuse (the same words as `cutover record`).
pub fn edit_error(error: EditError) -> ApiError {
    match error {
        EditError::Invalid(_) | EditError::MissingData => ApiError::bad_request(error.to_string()),
        other => ApiError::new(ErrorCode::Rejected, other.to_string()),
    }
}

/// Applies `edits` in one version (or, dry, works out the diff): a refusal
/// names the edit to blame through `blame` (its index → the words that
/// place it, e.g. `rrsets[2]`).
pub fn commit(
    store: &Store,
    origin: &Name,
    comment: &str,
    dry_run: bool,
    edits: &[Edit],
    blame: impl Fn(usize) -> String,
) -> Result<Committed, ApiError> {
    let now = u32::try_from(crate::primary::wall_clock()).unwrap_or(u32::MAX);
    let work_out = |zone: &Zone| -> Result<Option<ZoneDiff>, ApiError> {
        let outcome =
            operator::apply_batch(zone, edits, now).map_err(|BatchError { index, error }| {
                let mut refused = edit_error(error);
                refused.message = match index {
                    Some(i) => format!("{origin}: {}: {}", blame(i), refused.message),
                    None => format!("{origin}: {}", refused.message),
                };
                refused
            })?;
        Ok(match outcome {
            Outcome::Unchanged => None,
            Outcome::Changed { diff, .. } => Some(diff),
        })
    };
    let names: Vec<Name> = edits.iter().map(|edit| edit.name.clone()).collect();
    let edited = match dry_run {
        true => store.preview_rrsets(origin, &names, work_out),
        false => store.update_rrsets(origin, &names, comment, work_out),
    };
    let edited = match edited {
        Err(StoreError::ZoneNotFound(_)) => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("zone {origin} is not in the store"),
            ))
        }
        other => other?,
    };
    Ok(Committed {
        diff: edited.outcome?,
        serial: edited.serial,
    })
}

/// How long a written change may take to be published before the answer
/// says it is written but not served yet.
const SERVED_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Wakes serve's reload watcher and waits until `origin` is published at
/// `serial` or newer (RFC 1982); `None` once it is (or when nothing is
/// served here), else the words for the answer's note.
pub fn served(publication: Option<&Publication>, origin: &Name, serial: Serial) -> Option<String> {
    let publication = publication?;
    let _ = publication.wake.send(());
    let deadline = std::time::Instant::now() + SERVED_LIMIT;
    loop {
        let published = publication
            .served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(origin)
            .copied();
        if published.is_some_and(|p| p == serial || p.is_newer_than(serial)) {
            return None;
        }
        if std::time::Instant::now() > deadline {
            return Some(format!(
                "written (serial {serial}), but not served after {}s: serve publishes {} \
                 (see its log for why the new version is refused)",
                SERVED_LIMIT.as_secs(),
                published.map_or("nothing for this zone".to_owned(), |p| format!(
                    "serial {p}"
                ))
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
