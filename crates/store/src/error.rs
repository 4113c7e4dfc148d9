//! What can go wrong in the store, each case naming the zone, serial or file
//! it is about.

use std::path::PathBuf;

use cutover_zone::diff::DiffError;
use cutover_zone::{Name, Serial};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No zone with this origin in the store.
    #[error("zone {0} is not in the store")]
    ZoneNotFound(Name),
    /// `create_zone` for an origin that is already there.
    #[error("zone {0} is already in the store")]
    ZoneExists(Name),
    /// Another writer changed the zone since the caller read it.
    #[error("{origin}: the zone changed underneath: expected serial {expected}, found {found}")]
    SerialMismatch {
        /// The zone.
        origin: Name,
        /// The serial the caller's diff starts from.
        expected: Serial,
        /// The serial in the store.
        found: Serial,
    },
    /// A new version whose serial does not rise (RFC 1982) over the current one.
    #[error("{origin}: new serial {new} is not newer than the current serial {current}")]
    SerialNotNewer {
        /// The zone.
        origin: Name,
        /// The serial in the store.
        current: Serial,
        /// The serial proposed.
        new: Serial,
    },
    /// The zone (as given, or as a diff would leave it) fails its checks.
    #[error("{origin}: the zone fails its checks: {reasons}")]
    Invalid {
        /// The zone.
        origin: Name,
        /// Every failed check, joined with "; ".
        reasons: String,
    },
    /// A diff that does not fit the zone (a record to remove is missing…).
    #[error("{origin}: the diff does not apply: {source}")]
    Diff {
        /// The zone.
        origin: Name,
        /// What the zone model said (boxed: it can hold whole records).
        source: Box<DiffError>,
    },
    /// The caller's edit function refused.
    #[error("{origin}: {reason}")]
    Edit {
        /// The zone.
        origin: Name,
        /// The edit's own error message.
        reason: String,
    },
    /// No version of the zone had this serial.
    #[error("{origin}: no version with serial {serial} in the journal")]
    VersionNotFound {
        /// The zone.
        origin: Name,
        /// The serial asked for.
        serial: Serial,
    },
    /// The journal cannot produce the steps asked for (IXFR falls back to AXFR).
    #[error("{origin}: the journal cannot serve changes since serial {since}: {reason}")]
    JournalUnavailable {
        /// The zone.
        origin: Name,
        /// The serial asked for.
        since: Serial,
        /// Why not.
        reason: &'static str,
    },
    /// The file was written by a newer cutover.
    #[error("{path}: store schema version {found} is newer than this cutover supports ({supported}); upgrade cutover")]
    SchemaTooNew {
        /// The store file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest schema this binary knows.
        supported: i64,
    },
    /// Stored bytes that do not decode (the file was damaged or edited by hand).
    #[error("{path}: corrupt store: {reason}")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What did not decode.
        reason: String,
    },
    /// The store can only be read (a read-only filesystem, a file or
    /// directory this user may not write), and this needs more.
    #[error("{path} can only be read: {reason}")]
    ReadOnly {
        /// The store file.
        path: PathBuf,
        /// What cannot be written, and what it means.
        reason: String,
    },
    /// SQLite refused or failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}
