//! The store: the one source of truth for zone data, in one SQLite file.
//!
//! It holds the current records of every zone and the full history of each
//! zone as diffs (the journal), so any version can be listed, rebuilt and
//! compared, and IXFR can be served from it.
//!
//! ```text
//!   create_zone ─┐
//!   replace_zone ├─▶ diff ─▶ ONE write transaction (BEGIN IMMEDIATE, fsynced):
//!   edit ────────┤            records of the touched RRsets rewritten
//!   apply ───────┘            + version row + journal rows + generation += 1
//!
//!   update_rrsets     an excerpt (apex, touched names, what their checks read)
//!                     ─▶ change ─▶ diff ─▶ the same one write transaction
//!   zone()            current records ──────────────────────────▶ Zone
//!   for_each_record() current records, one row at a time ─────────▶ callback (no Zone built)
//!   zone_at(serial)   current records ◀─ inverse diffs, newest first ─▶ Zone
//!   generation()      changes on every commit, from any process (reload watch)
//! ```
//!
//! Every change goes through a diff checked against the current serial, and
//! the zone it leaves must pass the zone checks — [`ZoneEdit::check`], at the
//! names the diff touches and what depends on them, the stored version having
//! passed them all — without copying the zone; a change that fails writes
//! nothing. Serials always rise (RFC 1982).

mod codec;
mod error;
mod excerpt;
mod schema;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cutover_zone::{Name, Serial, Zone, ZoneDiff, ZoneEdit, ZoneError};
use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::codec::{name_from_key, name_key, RecordRow};
pub use crate::error::StoreError;
pub use crate::schema::MIGRATIONS;

/// A handle on the store file. Cheap to share (`&Store` is `Sync`); every
/// write is one transaction, so several handles and processes can use one
/// file (SQLite lets one writer in at a time).
pub struct Store {
    /// The file, for error messages.
    path: PathBuf,
    /// The one connection of this handle.
    conn: Mutex<Connection>,
    /// Why the store is open read-only, when it is.
    read_only: Option<String>,
}

/// A zone in the store, as `zone list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneInfo {
    /// The apex.
    pub origin: Name,
    /// The current serial.
    pub serial: Serial,
    /// Number of records.
    pub records: u64,
    /// When the zone last changed.
    pub updated_at: Timestamp,
}

/// A version of a zone as a writer keeps it between changes, with the
/// store generation it was read at: still current while the store's
/// generation has not moved.
#[derive(Clone, Debug)]
pub struct Held {
    /// The store generation the zone was read (or written) at.
    pub generation: u64,
    /// The zone.
    pub zone: Arc<Zone>,
}

/// What [`Store::update_zone`] did.
#[derive(Debug)]
pub struct Updated<E> {
    /// The version the change was worked out on: the one held when the
    /// store had not changed since, else the one read inside the write
    /// transaction (another writer, in this process or another, got there
    /// first).
    pub base: Held,
    /// The change's verdict: written (the diff and the generation after the
    /// write), nothing to write, or the change's own refusal.
    pub outcome: Result<Option<(ZoneDiff, u64)>, E>,
}

/// What [`Store::update_rrsets`] and [`Store::preview_rrsets`] did.
#[derive(Debug)]
pub struct Edited<E> {
    /// The serial of the version the change was worked out on (the one
    /// current inside the transaction).
    pub serial: Serial,
    /// The change's verdict: the diff (written, or for a preview what would
    /// be), nothing to write, or the change's own refusal.
    pub outcome: Result<Option<ZoneDiff>, E>,
}

/// The write transaction of a group commit ([`Store::batch`]): changes
/// worked out one after another, each on the state the ones before it left,
/// each in a savepoint of its own.
pub struct Batch<'a> {
    /// The transaction.
    db: Db<'a>,
    /// Why the transaction must not be committed: a member's savepoint
    /// could not be rolled back, so what it wrote may still be there.
    broken: Option<StoreError>,
}

impl Batch<'_> {
    /// [`Store::update_zone`] as one member of the batch: worked out on the
    /// version the members before it left (`held`, when it is still that
    /// version, else read inside the transaction), written in a savepoint
    /// that is rolled back when it fails (`Err`: this member stored
    /// nothing; the batch goes on). Durable only once [`Store::batch`]
    /// returns `Ok`.
    pub fn update_zone<E>(
        &mut self,
        origin: &Name,
        held: Option<&Held>,
        comment: &str,
        change: impl FnOnce(&Zone) -> Result<Option<ZoneDiff>, E>,
    ) -> Result<Updated<E>, StoreError> {
        if let Some(error) = &self.broken {
            return Err(self.db.corrupt(format!(
                "not worked out: the batch's transaction is rolled back ({error})"
            )));
        }
        let conn = self.db.conn;
        conn.execute_batch("SAVEPOINT member").on(self.db.path)?;
        let result = self.db.update_zone(origin, held, comment, change);
        let close = match &result {
            Ok(_) => "RELEASE member",
            Err(_) => "ROLLBACK TO member; RELEASE member",
        };
        if let Err(error) = conn.execute_batch(close).on(self.db.path) {
            let told = self.db.corrupt(format!(
                "a member's savepoint could not be closed ({error}); the whole batch is rolled back"
            ));
            self.broken = Some(error);
            return Err(told);
        }
        result
    }
}

/// What a primary transferred, for [`Store::store_transferred`].
#[derive(Clone, Copy, Debug)]
pub enum Transferred<'a> {
    /// The whole zone (AXFR, or an IXFR answered in AXFR form).
    Whole(&'a Zone),
    /// The steps of an IXFR, oldest first, from the stored serial on.
    Steps(&'a [ZoneDiff]),
}

/// One version of a zone in its journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// The serial of this version.
    pub serial: Serial,
    /// The serial it was made from (`None` for the version that created the zone).
    pub from: Option<Serial>,
    /// When it was committed.
    pub at: Timestamp,
    /// What the writer said about it.
    pub comment: String,
    /// Records added by this version.
    pub added: u64,
    /// Records removed by this version.
    pub removed: u64,
}

/// Turns SQLite errors into [`StoreError::Sqlite`] naming the file.
pub(crate) trait SqliteContext<T> {
    /// Attaches the store's path to the error.
    fn on(self, path: &Path) -> Result<T, StoreError>;
}

impl<T> SqliteContext<T> for rusqlite::Result<T> {
    fn on(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        })
    }
}

impl Store {
    /// Opens the store at `path`, creating the file if missing and bringing
    /// its schema up to date; refuses a file written by a newer cutover.
    ///
    /// A store that exists but cannot be written (read-only filesystem,
    /// permissions) is opened read-only: reads work, and every write fails
    /// with [`StoreError::ReadOnly`] saying why (see [`Store::read_only`]).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let (conn, access) = schema::open(path)?;
        Ok(Store {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            read_only: match access {
                schema::Access::ReadWrite => None,
                schema::Access::ReadOnly(why) => Some(why),
            },
        })
    }

    /// Why the store is open read-only (what cannot be written), or `None`
    /// when it can be written.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds a new zone, which must pass its checks and not exist yet.
    pub fn create_zone(&self, zone: &Zone, comment: &str) -> Result<(), StoreError> {
        let origin = zone.origin();
        let serial = checked(zone)?;
        self.write(|db| {
            if db.zone_row(origin)?.is_some() {
                return Err(StoreError::ZoneExists(origin.clone()));
            }
            db.insert_zone(zone, serial, comment)?;
            db.bump_generation()
        })
    }

    /// Stores what a primary transferred of a zone this store keeps as a
    /// secondary, in one write transaction: a whole zone (AXFR) over the
    /// stored version (or as the first one), or the steps of an IXFR applied
    /// in order to the stored version. Every version passes the checks any
    /// change passes and raises the serial (RFC 1982); otherwise nothing is
    /// written. Returns the serial stored.
    pub fn store_transferred(
        &self,
        origin: &Name,
        transferred: Transferred<'_>,
        comment: &str,
    ) -> Result<Serial, StoreError> {
        if let Transferred::Whole(zone) = transferred {
            checked(zone)?;
        }
        self.write(|db| match (db.zone_row(origin)?, transferred) {
            (None, Transferred::Whole(zone)) => {
                let serial = checked(zone)?;
                db.insert_zone(zone, serial, comment)?;
                db.bump_generation()?;
                Ok(serial)
            }
            (None, Transferred::Steps(_)) => Err(StoreError::ZoneNotFound(origin.clone())),
            (Some((id, _)), Transferred::Whole(zone)) => {
                let current = db.load(id, origin)?;
                let diff = ZoneDiff::between(&current, zone);
                db.commit_diff(id, origin, &current, &diff, comment)
                    .map(|d| d.to)
            }
            (Some((id, serial)), Transferred::Steps(steps)) => {
                let mut current = db.load(id, origin)?;
                let mut at = serial;
                for step in steps {
                    if step.from != at {
                        return Err(StoreError::SerialMismatch {
                            origin: origin.clone(),
                            expected: step.from,
                            found: at,
                        });
                    }
                    db.commit_diff(id, origin, &current, step, comment)?;
                    cutover_zone::edit::apply_in_place(&mut current, step).map_err(|source| {
                        StoreError::Diff {
                            origin: origin.clone(),
                            source: Box::new(source),
                        }
                    })?;
                    at = step.to;
                }
                Ok(at)
            }
        })
    }

    /// Records that the primary of the secondary zone `origin` was checked
    /// successfully at `at` (up to date, or a transfer stored). Changes no
    /// zone data and does not move the generation.
    pub fn secondary_checked(&self, origin: &Name, at: Timestamp) -> Result<(), StoreError> {
        self.write(|db| {
            let (id, _) = db.existing_zone(origin)?;
            db.conn
                .execute(
                    "INSERT INTO secondary_check (zone_id, checked_at) VALUES (?1, ?2) \
                     ON CONFLICT (zone_id) DO UPDATE SET checked_at = excluded.checked_at",
                    params![id, at.as_second()],
                )
                .on(db.path)
                .map(|_| ())
        })
    }

    /// Every secondary zone's last successful check of its primary.
    pub fn secondary_checks(&self) -> Result<Vec<(Name, Timestamp)>, StoreError> {
        self.read(|db| {
            let mut statement = db
                .conn
                .prepare(
                    "SELECT zone.origin, secondary_check.checked_at FROM secondary_check \
                     JOIN zone ON zone.id = secondary_check.zone_id ORDER BY zone.origin",
                )
                .on(db.path)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
                })
                .on(db.path)?;
            let mut out = Vec::new();
            for row in rows {
                let (key, seconds) = row.on(db.path)?;
                let name =
                    name_from_key(&key).map_err(|e| db.corrupt(format!("a zone's name: {e}")))?;
                out.push((name, db.timestamp(seconds)?));
            }
            Ok(out)
        })
    }

    /// When the primary of the secondary zone `origin` was last checked
    /// successfully; `None` when never (or the zone is not stored).
    pub fn secondary_checked_at(&self, origin: &Name) -> Result<Option<Timestamp>, StoreError> {
        self.read(|db| {
            let Some((id, _)) = db.zone_row(origin)? else {
                return Ok(None);
            };
            let seconds: Option<i64> = db
                .conn
                .query_row(
                    "SELECT checked_at FROM secondary_check WHERE zone_id = ?1",
                    [id],
                    |row| row.get(0),
                )
                .optional()
                .on(db.path)?;
            seconds.map(|s| db.timestamp(s)).transpose()
        })
    }

    /// Replaces a zone's content with `zone` (a re-import), journalling the
    /// difference. When the new serial does not rise over the current one it
    /// is bumped. Content equal to the current version changes nothing and
    /// returns an empty diff.
    pub fn replace_zone(&self, zone: &Zone, comment: &str) -> Result<ZoneDiff, StoreError> {
        checked(zone)?;
        let origin = zone.origin();
        self.write(|db| {
            let (id, serial) = db.existing_zone(origin)?;
            let current = db.load(id, origin)?;
            let Some(next) = replacement(&current, zone, serial, unix_time()) else {
                return Ok(unchanged(serial));
            };
            let diff = ZoneDiff::between(&current, &next);
            db.commit_diff(id, origin, &current, &diff, comment)
        })
    }

    /// What [`Store::replace_zone`] would do now, without writing: the diff
    /// with the serial the replacement would take (for `--dry-run`).
    pub fn preview_replace(&self, zone: &Zone) -> Result<ZoneDiff, StoreError> {
        checked(zone)?;
        let origin = zone.origin();
        self.read(|db| {
            let (id, serial) = db.existing_zone(origin)?;
            let current = db.load(id, origin)?;
            Ok(match replacement(&current, zone, serial, unix_time()) {
                Some(next) => ZoneDiff::between(&current, &next),
                None => unchanged(serial),
            })
        })
    }

    /// Removes a zone with its whole history.
    pub fn delete_zone(&self, origin: &Name) -> Result<(), StoreError> {
        self.write(|db| {
            let deleted = db
                .conn
                .execute("DELETE FROM zone WHERE origin = ?1", [name_key(origin)])
                .on(db.path)?;
            if deleted == 0 {
                return Err(StoreError::ZoneNotFound(origin.clone()));
            }
            db.bump_generation()
        })
    }

    /// The current version of a zone, `None` when it is not in the store.
    pub fn zone(&self, origin: &Name) -> Result<Option<Zone>, StoreError> {
        self.read(|db| match db.zone_row(origin)? {
            Some((id, _)) => db.load(id, origin).map(Some),
            None => Ok(None),
        })
    }

    /// Streams the current records of a zone to `record(owner, rtype, ttl,
    /// rdata)` in one read transaction, without building a [`Zone`]: owners
    /// come as lowercase uncompressed wire names, RDATA as uncompressed wire
    /// bytes, in the store's key order (grouped by owner, then type). No
    /// allocation per record. Returns the serial of the version streamed.
    pub fn for_each_record(
        &self,
        origin: &Name,
        mut record: impl FnMut(&[u8], u16, u32, &[u8]),
    ) -> Result<Serial, StoreError> {
        self.read(|db| {
            let (id, serial) = db.existing_zone(origin)?;
            let mut stmt = db
                .conn
                .prepare_cached("SELECT owner, rtype, ttl, rdata FROM record WHERE zone_id = ?1")
                .on(db.path)?;
            let mut rows = stmt.query([id]).on(db.path)?;
            while let Some(row) = rows.next().on(db.path)? {
                let blob = |at: usize| match row.get_ref(at).on(db.path)? {
                    rusqlite::types::ValueRef::Blob(bytes) => Ok(bytes),
                    other => Err(db.corrupt(format!(
                        "zone {origin}: record column {at} is {:?}, not a blob",
                        other.data_type()
                    ))),
                };
                let rtype: u16 = row.get(1).on(db.path)?;
                let ttl: u32 = row.get(2).on(db.path)?;
                record(blob(0)?, rtype, ttl, blob(3)?);
            }
            Ok(serial)
        })
    }

    /// The version of a zone that had `serial` (the latest one, should a
    /// serial have been used twice), rebuilt from the journal.
    pub fn zone_at(&self, origin: &Name, serial: Serial) -> Result<Zone, StoreError> {
        self.read(|db| {
            let (id, _) = db.existing_zone(origin)?;
            let seq = db
                .version_seq(id, serial)?
                .ok_or_else(|| StoreError::VersionNotFound {
                    origin: origin.clone(),
                    serial,
                })?;
            let mut zone = db.load(id, origin)?;
            db.rewind(id, origin, &mut zone, db.last_seq(id)?, seq)?;
            Ok(zone)
        })
    }

    /// Every zone in the store, in canonical order of their names.
    pub fn zones(&self) -> Result<Vec<ZoneInfo>, StoreError> {
        self.read(|db| {
            let mut stmt = db
                .conn
                .prepare_cached("SELECT origin, serial, records, updated_at FROM zone")
                .on(db.path)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, u32>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .on(db.path)?;
            let mut zones = Vec::new();
            for row in rows {
                let (origin, serial, records, updated_at) = row.on(db.path)?;
                zones.push(ZoneInfo {
                    origin: name_from_key(&origin).map_err(|reason| db.corrupt(reason))?,
                    serial: Serial(serial),
                    records: records.max(0) as u64,
                    updated_at: db.timestamp(updated_at)?,
                });
            }
            zones.sort_by(|a, b| a.origin.cmp(&b.origin));
            Ok(zones)
        })
    }

    /// Every version of a zone, oldest first.
    pub fn versions(&self, origin: &Name) -> Result<Vec<VersionInfo>, StoreError> {
        self.read(|db| {
            let (id, _) = db.existing_zone(origin)?;
            let mut stmt = db
                .conn
                .prepare_cached(
                    "SELECT serial_from, serial_to, at, comment, added, removed
                     FROM version WHERE zone_id = ?1 ORDER BY seq",
                )
                .on(db.path)?;
            let rows = stmt
                .query_map([id], |row| {
                    Ok((
                        row.get::<_, Option<u32>>(0)?,
                        row.get::<_, u32>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, i64>(5)?,
                    ))
                })
                .on(db.path)?;
            let mut versions = Vec::new();
            for row in rows {
                let (from, to, at, comment, added, removed) = row.on(db.path)?;
                versions.push(VersionInfo {
                    serial: Serial(to),
                    from: from.map(Serial),
                    at: db.timestamp(at)?,
                    comment,
                    added: added.max(0) as u64,
                    removed: removed.max(0) as u64,
                });
            }
            Ok(versions)
        })
    }

    /// The difference between two versions of a zone (in either direction).
    pub fn diff(&self, origin: &Name, from: Serial, to: Serial) -> Result<ZoneDiff, StoreError> {
        self.read(|db| {
            let (id, _) = db.existing_zone(origin)?;
            let seq_of = |serial| {
                db.version_seq(id, serial)?
                    .ok_or_else(|| StoreError::VersionNotFound {
                        origin: origin.clone(),
                        serial,
                    })
            };
            let (from_seq, to_seq) = (seq_of(from)?, seq_of(to)?);
            if from_seq == to_seq {
                return Ok(unchanged(to));
            }
            let (newer, older) = (from_seq.max(to_seq), from_seq.min(to_seq));
            let mut zone = db.load(id, origin)?;
            db.rewind(id, origin, &mut zone, db.last_seq(id)?, newer)?;
            let newer_zone = zone.clone();
            db.rewind(id, origin, &mut zone, newer, older)?;
            Ok(if from_seq < to_seq {
                ZoneDiff::between(&zone, &newer_zone)
            } else {
                ZoneDiff::between(&newer_zone, &zone)
            })
        })
    }

    /// Each step of the journal after the version with serial `since`, oldest
    /// first (for IXFR); empty when `since` is current, an error when the
    /// journal does not reach back to `since`.
    pub fn journal(&self, origin: &Name, since: Serial) -> Result<Vec<ZoneDiff>, StoreError> {
        self.read(|db| {
            let (id, serial) = db.existing_zone(origin)?;
            if serial == since {
                return Ok(Vec::new());
            }
            let Some(start) = db.version_seq(id, since)? else {
                return Err(StoreError::JournalUnavailable {
                    origin: origin.clone(),
                    since,
                    reason: "no version with that serial in the journal",
                });
            };
            let last = db.last_seq(id)?;
            ((start + 1)..=last)
                .map(|seq| db.journal_diff(id, seq))
                .collect()
        })
    }

    /// Applies `diff` to the zone atomically: it must start at the current
    /// serial, raise it, and leave a zone that passes its checks. Records and
    /// journal are written in one fsynced transaction. Returns the new serial.
    pub fn apply(
        &self,
        origin: &Name,
        diff: &ZoneDiff,
        comment: &str,
    ) -> Result<Serial, StoreError> {
        self.write(|db| {
            let (id, serial) = db.existing_zone(origin)?;
            if diff.from != serial {
                return Err(StoreError::SerialMismatch {
                    origin: origin.clone(),
                    expected: diff.from,
                    found: serial,
                });
            }
            let current = db.load(id, origin)?;
            db.commit_diff(id, origin, &current, diff, comment)
                .map(|d| d.to)
        })
    }

    /// [`Store::apply`] for a caller that already holds the current version
    /// (the UPDATE path of `cutover serve`): the same checks in the same one
    /// transaction, without reading every record back first. `current` must
    /// be the stored version; its serial is checked inside the transaction.
    pub fn apply_to(
        &self,
        current: &Zone,
        diff: &ZoneDiff,
        comment: &str,
    ) -> Result<Serial, StoreError> {
        let origin = current.origin();
        self.write(|db| {
            let (id, serial) = db.existing_zone(origin)?;
            if diff.from != serial || current.serial() != Some(serial) {
                return Err(StoreError::SerialMismatch {
                    origin: origin.clone(),
                    expected: diff.from,
                    found: serial,
                });
            }
            db.commit_diff(id, origin, current, diff, comment)
                .map(|d| d.to)
        })
    }

    /// Works out a change on the current version of a zone and writes it,
    /// all inside one write transaction, so no other writer (another thread,
    /// another process) can change the zone in between: `change` sees the
    /// version it is applied to. `held` is the version the caller kept from
    /// its last read or write; it is used when the store's generation still
    /// matches, otherwise the zone is read inside the transaction. `change`
    /// returns the diff to write (from the version it was given, serial
    /// raised), `None` when nothing changes, or its own refusal, which
    /// writes nothing. The diff passes the same checks as [`Store::apply`].
    pub fn update_zone<E>(
        &self,
        origin: &Name,
        held: Option<&Held>,
        comment: &str,
        change: impl FnOnce(&Zone) -> Result<Option<ZoneDiff>, E>,
    ) -> Result<Updated<E>, StoreError> {
        self.write(|db| db.update_zone(origin, held, comment, change))
    }

    /// Runs `work` in ONE write transaction (`BEGIN IMMEDIATE`) and commits
    /// it (one fsync) when `work` returns: the group commit of `cutover
    /// serve`'s UPDATEs. Each change `work` makes through
    /// [`Batch::update_zone`] is worked out on the state the ones before it
    /// left, in a savepoint of its own, so one that fails leaves nothing and
    /// the others stand. `Err` when the transaction cannot begin or commit
    /// (then none of the changes is stored) or a member's savepoint could
    /// not be rolled back (then the whole transaction is).
    pub fn batch<T>(&self, work: impl FnOnce(&mut Batch<'_>) -> T) -> Result<T, StoreError> {
        self.write(|db| {
            let mut batch = Batch {
                db: *db,
                broken: None,
            };
            let out = work(&mut batch);
            match batch.broken {
                Some(error) => Err(error),
                None => Ok(out),
            }
        })
    }

    /// Works out a change on an excerpt of the current version — the apex,
    /// the RRsets at `names` (every name the change reads), and what the
    /// zone checks of its diff need there — and writes it, all inside one
    /// write transaction, never reading the whole zone: what
    /// [`Store::update_zone`] does for a change that reads only `names`.
    /// `change` may be called more than once (when its diff names what the
    /// excerpt did not hold yet, it is worked out again on a larger one);
    /// it gets the same version every time. The diff passes the checks of
    /// [`Store::apply`]; a refusal writes nothing.
    pub fn update_rrsets<E>(
        &self,
        origin: &Name,
        names: &[Name],
        comment: &str,
        change: impl Fn(&Zone) -> Result<Option<ZoneDiff>, E>,
    ) -> Result<Edited<E>, StoreError> {
        self.write(|db| {
            let (id, serial) = db.existing_zone(origin)?;
            let (excerpt, verdict) = db.work_out_on_excerpt(id, origin, names, change)?;
            let outcome = match verdict {
                Ok(Some(diff)) => {
                    if diff.from != serial {
                        return Err(StoreError::SerialMismatch {
                            origin: origin.clone(),
                            expected: diff.from,
                            found: serial,
                        });
                    }
                    Ok(Some(db.commit_diff(
                        id,
                        origin,
                        &excerpt.zone,
                        &diff,
                        comment,
                    )?))
                }
                other => other,
            };
            Ok(Edited { serial, outcome })
        })
    }

    /// What [`Store::update_rrsets`] would write now, without writing (for
    /// `--dry-run`): the same excerpt, the same change, the same checks, in
    /// one read transaction; the diff is the one the write would journal.
    pub fn preview_rrsets<E>(
        &self,
        origin: &Name,
        names: &[Name],
        change: impl Fn(&Zone) -> Result<Option<ZoneDiff>, E>,
    ) -> Result<Edited<E>, StoreError> {
        self.read(|db| {
            let (id, serial) = db.existing_zone(origin)?;
            let (excerpt, verdict) = db.work_out_on_excerpt(id, origin, names, change)?;
            let outcome = match verdict {
                Ok(Some(diff)) => {
                    let next = checked_diff(origin, &excerpt.zone, &diff)?;
                    Ok(Some(next.diff()))
                }
                other => other,
            };
            Ok(Edited { serial, outcome })
        })
    }

    /// The current version of a zone with the generation it belongs to,
    /// read in one transaction; `None` when the zone is not in the store.
    pub fn held_zone(&self, origin: &Name) -> Result<Option<Held>, StoreError> {
        self.read(|db| {
            let generation = db.generation()?;
            match db.zone_row(origin)? {
                Some((id, _)) => Ok(Some(Held {
                    generation,
                    zone: Arc::new(db.load(id, origin)?),
                })),
                None => Ok(None),
            }
        })
    }

    /// Changes a zone through `edit`: the current version is cloned, edited,
    /// given a new serial (the unix time when that is newer, otherwise +1,
    /// unless the edit raised it itself), checked and applied, all inside one
    /// write transaction. Nothing changes when `edit` fails or the result
    /// fails its checks; an edit that changes nothing returns an empty diff.
    pub fn edit<E: fmt::Display>(
        &self,
        origin: &Name,
        comment: &str,
        edit: impl FnOnce(&mut Zone) -> Result<(), E>,
    ) -> Result<ZoneDiff, StoreError> {
        self.write(|db| {
            let (id, serial) = db.existing_zone(origin)?;
            let current = db.load(id, origin)?;
            let Some(next) = edited(origin, &current, edit)? else {
                return Ok(unchanged(serial));
            };
            let diff = ZoneDiff::between(&current, &next);
            db.commit_diff(id, origin, &current, &diff, comment)
        })
    }

    /// What [`Store::edit`] would do, without writing: the diff, or the error
    /// the edit would fail with (for `--dry-run`).
    pub fn preview_edit<E: fmt::Display>(
        &self,
        origin: &Name,
        edit: impl FnOnce(&mut Zone) -> Result<(), E>,
    ) -> Result<ZoneDiff, StoreError> {
        self.read(|db| {
            let (id, serial) = db.existing_zone(origin)?;
            let current = db.load(id, origin)?;
            let Some(next) = edited(origin, &current, edit)? else {
                return Ok(unchanged(serial));
            };
            check(&next)?;
            Ok(ZoneDiff::between(&current, &next))
        })
    }

    /// A number that changes on every committed write, from any process;
    /// one indexed read, cheap enough to poll every 250 ms.
    pub fn generation(&self) -> Result<u64, StoreError> {
        let conn = self.connection();
        let value: i64 = conn
            .prepare_cached("SELECT value FROM generation WHERE id = 1")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .on(&self.path)?;
        Ok(value as u64)
    }

    /// The connection, even if another thread panicked holding it (SQLite
    /// rolled back whatever transaction it had open).
    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` in a write transaction (`BEGIN IMMEDIATE`), committed when
    /// it succeeds and rolled back when it fails.
    fn write<T>(
        &self,
        work: impl FnOnce(&Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Some(why) = &self.read_only {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
                reason: format!("{why}; this change needs write access"),
            });
        }
        let mut conn = self.connection();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .on(&self.path)?;
        let out = work(&Db {
            conn: &tx,
            path: &self.path,
        })?;
        tx.commit().on(&self.path)?;
        Ok(out)
    }

    /// Runs `work` in a read transaction, so it sees one consistent version.
    fn read<T>(
        &self,
        work: impl FnOnce(&Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.connection();
        let tx = conn.transaction().on(&self.path)?;
        work(&Db {
            conn: &tx,
            path: &self.path,
        })
    }
}

/// The queries and writes of the store, on a connection inside a transaction.
#[derive(Clone, Copy)]
struct Db<'a> {
    /// The transaction's connection.
    conn: &'a Connection,
    /// The file, for error messages.
    path: &'a Path,
}

impl Db<'_> {
    /// [`Store::update_zone`] inside the caller's write transaction.
    fn update_zone<E>(
        &self,
        origin: &Name,
        held: Option<&Held>,
        comment: &str,
        change: impl FnOnce(&Zone) -> Result<Option<ZoneDiff>, E>,
    ) -> Result<Updated<E>, StoreError> {
        let db = self;
        let (id, serial) = db.existing_zone(origin)?;
        let generation = db.generation()?;
        let base = match held {
            Some(held) if held.generation == generation && held.zone.serial() == Some(serial) => {
                Arc::clone(&held.zone)
            }
            _ => Arc::new(db.load(id, origin)?),
        };
        let outcome = match change(&base) {
            Ok(Some(diff)) => {
                if diff.from != serial {
                    return Err(StoreError::SerialMismatch {
                        origin: origin.clone(),
                        expected: diff.from,
                        found: serial,
                    });
                }
                db.commit_diff(id, origin, &base, &diff, comment)?;
                Ok(Some((diff, db.generation()?)))
            }
            Ok(None) => Ok(None),
            Err(refusal) => Err(refusal),
        };
        Ok(Updated {
            base: Held {
                generation,
                zone: base,
            },
            outcome,
        })
    }

    /// Inserts a zone that is not in the store, with its first version.
    fn insert_zone(&self, zone: &Zone, serial: Serial, comment: &str) -> Result<(), StoreError> {
        let db = self;
        let origin = zone.origin();
        let now = Timestamp::now().as_second();
        let count = zone.record_count() as i64;
        db.conn
            .execute(
                "INSERT INTO zone (origin, serial, records, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![name_key(origin), serial.0, count, now],
            )
            .on(db.path)?;
        let id = db.conn.last_insert_rowid();
        let mut insert = db
            .conn
            .prepare_cached(
                "INSERT INTO record (zone_id, owner, rtype, ttl, rdata) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .on(db.path)?;
        for (name, node) in zone.nodes() {
            let owner = name_key(name);
            for (rtype, rrset) in node.rrsets() {
                for rdata in rrset.rdatas() {
                    insert
                        .execute(params![
                            id,
                            owner,
                            u16::from(rtype),
                            rrset.ttl,
                            rdata.wire()
                        ])
                        .on(db.path)?;
                }
            }
        }
        db.conn
            .execute(
                "INSERT INTO version (zone_id, seq, serial_from, serial_to, at, comment, added, removed)
                 VALUES (?1, 1, NULL, ?2, ?3, ?4, ?5, 0)",
                params![id, serial.0, now, comment, count],
            )
            .on(db.path)?;
        Ok(())
    }

    /// The id and serial of a zone, if present.
    fn zone_row(&self, origin: &Name) -> Result<Option<(i64, Serial)>, StoreError> {
        self.conn
            .prepare_cached("SELECT id, serial FROM zone WHERE origin = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([name_key(origin)], |row| {
                    Ok((row.get(0)?, Serial(row.get(1)?)))
                })
                .optional()
            })
            .on(self.path)
    }

    /// The id and serial of a zone that must be present.
    fn existing_zone(&self, origin: &Name) -> Result<(i64, Serial), StoreError> {
        self.zone_row(origin)?
            .ok_or_else(|| StoreError::ZoneNotFound(origin.clone()))
    }

    /// Loads the current records of a zone.
    fn load(&self, id: i64, origin: &Name) -> Result<Zone, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT owner, rtype, ttl, rdata FROM record WHERE zone_id = ?1")
            .on(self.path)?;
        let mut rows = stmt.query([id]).on(self.path)?;
        let mut zone = Zone::new(origin.clone());
        let mut previous: Option<(Vec<u8>, Name)> = None;
        while let Some(row) = rows.next().on(self.path)? {
            let row = RecordRow::read(row, 0).on(self.path)?;
            let same_owner = previous.as_ref().is_some_and(|(key, _)| *key == row.owner);
            let record = row
                .decode(previous.as_ref().map(|(key, name)| (key.as_slice(), name)))
                .map_err(|reason| self.corrupt(format!("zone {origin}: {reason}")))?;
            if !same_owner {
                previous = Some((row.owner, record.name.clone()));
            }
            zone.add(record)
                .map_err(|e| self.corrupt(format!("zone {origin}: {e}")))?;
        }
        Ok(zone)
    }

    /// The sequence number of the latest version with `serial`.
    fn version_seq(&self, id: i64, serial: Serial) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT seq FROM version WHERE zone_id = ?1 AND serial_to = ?2 ORDER BY seq DESC LIMIT 1",
            )
            .and_then(|mut stmt| stmt.query_row(params![id, serial.0], |row| row.get(0)).optional())
            .on(self.path)
    }

    /// The sequence number of the current version.
    fn last_seq(&self, id: i64) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM version WHERE zone_id = ?1",
                [id],
                |row| row.get(0),
            )
            .on(self.path)
    }

    /// Takes `zone` (the version `from_seq`) back to the version `to_seq` by
    /// applying the inverse of each step in between, newest first.
    fn rewind(
        &self,
        id: i64,
        origin: &Name,
        zone: &mut Zone,
        from_seq: i64,
        to_seq: i64,
    ) -> Result<(), StoreError> {
        for seq in ((to_seq + 1)..=from_seq).rev() {
            let step = self.journal_diff(id, seq)?;
            let inverse = ZoneDiff {
                from: step.to,
                to: step.from,
                removed: step.added,
                added: step.removed,
            };
            inverse.apply_to(zone).map_err(|e| {
                self.corrupt(format!(
                    "zone {origin}: journal step {seq} does not undo: {e}"
                ))
            })?;
        }
        Ok(())
    }

    /// The diff journalled as version `seq`.
    fn journal_diff(&self, id: i64, seq: i64) -> Result<ZoneDiff, StoreError> {
        let (from, to): (Option<u32>, u32) = self
            .conn
            .query_row(
                "SELECT serial_from, serial_to FROM version WHERE zone_id = ?1 AND seq = ?2",
                params![id, seq],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .on(self.path)?;
        let from =
            from.ok_or_else(|| self.corrupt(format!("version {seq} has no previous serial")))?;
        let mut diff = ZoneDiff {
            from: Serial(from),
            to: Serial(to),
            removed: Vec::new(),
            added: Vec::new(),
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT added, owner, rtype, ttl, rdata FROM journal
                 WHERE zone_id = ?1 AND seq = ?2 ORDER BY pos",
            )
            .on(self.path)?;
        let mut rows = stmt.query(params![id, seq]).on(self.path)?;
        while let Some(row) = rows.next().on(self.path)? {
            let added: bool = row.get(0).on(self.path)?;
            let record = RecordRow::read(row, 1)
                .on(self.path)?
                .decode(None)
                .map_err(|reason| self.corrupt(format!("journal step {seq}: {reason}")))?;
            if added {
                diff.added.push(record);
            } else {
                diff.removed.push(record);
            }
        }
        Ok(diff)
    }

    /// Checks and writes one new version: the touched RRsets, the version
    /// row, its journal, the zone row and the generation. Returns the diff as
    /// journalled (whole-RRset TTL changes spelled out).
    fn commit_diff(
        &self,
        id: i64,
        origin: &Name,
        current: &Zone,
        diff: &ZoneDiff,
        comment: &str,
    ) -> Result<ZoneDiff, StoreError> {
        let next = checked_diff(origin, current, diff)?;
        let journalled = next.diff();
        self.write_rrsets(id, &next)?;
        let records = journalled.added.len() as i64 - journalled.removed.len() as i64;
        self.write_version(id, &journalled, records, comment)?;
        Ok(journalled)
    }

    /// Rewrites the rows of the RRsets `next` touched to what it holds.
    fn write_rrsets(&self, id: i64, next: &ZoneEdit<'_>) -> Result<(), StoreError> {
        let mut delete = self
            .conn
            .prepare_cached("DELETE FROM record WHERE zone_id = ?1 AND owner = ?2 AND rtype = ?3")
            .on(self.path)?;
        let mut insert = self
            .conn
            .prepare_cached("INSERT INTO record (zone_id, owner, rtype, ttl, rdata) VALUES (?1, ?2, ?3, ?4, ?5)")
            .on(self.path)?;
        for (name, rtype, rrset) in next.rrsets() {
            let owner = name_key(name);
            let rtype = u16::from(rtype);
            delete.execute(params![id, owner, rtype]).on(self.path)?;
            if let Some(rrset) = rrset {
                for rdata in rrset.rdatas() {
                    insert
                        .execute(params![id, owner, rtype, rrset.ttl, rdata.wire()])
                        .on(self.path)?;
                }
            }
        }
        Ok(())
    }

    /// Appends a version and its journal rows, and moves the zone row on
    /// (`records_added`: records in the zone now less before).
    fn write_version(
        &self,
        id: i64,
        diff: &ZoneDiff,
        records_added: i64,
        comment: &str,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now().as_second();
        let seq = self.last_seq(id)? + 1;
        self.conn
            .execute(
                "INSERT INTO version (zone_id, seq, serial_from, serial_to, at, comment, added, removed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    seq,
                    diff.from.0,
                    diff.to.0,
                    now,
                    comment,
                    diff.added.len() as i64,
                    diff.removed.len() as i64
                ],
            )
            .on(self.path)?;
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT INTO journal (zone_id, seq, pos, added, owner, rtype, ttl, rdata)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .on(self.path)?;
        let steps = diff
            .removed
            .iter()
            .map(|r| (false, r))
            .chain(diff.added.iter().map(|r| (true, r)));
        for (pos, (added, record)) in steps.enumerate() {
            insert
                .execute(params![
                    id,
                    seq,
                    pos as i64,
                    added,
                    name_key(&record.name),
                    u16::from(record.rdata.rtype()),
                    record.ttl,
                    record.rdata.wire()
                ])
                .on(self.path)?;
        }
        self.conn
            .execute(
                "UPDATE zone SET serial = ?2, records = records + ?3, updated_at = ?4 WHERE id = ?1",
                params![id, diff.to.0, records_added, now],
            )
            .on(self.path)?;
        self.bump_generation()
    }

    /// The generation counter as this transaction sees it.
    fn generation(&self) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM generation WHERE id = 1")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
            .map(|value| value as u64)
            .on(self.path)
    }

    /// Moves the generation counter on, so watchers see this commit.
    fn bump_generation(&self) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE generation SET value = value + 1 WHERE id = 1", [])
            .on(self.path)
            .map(|_| ())
    }

    /// A stored unix time as a timestamp.
    fn timestamp(&self, seconds: i64) -> Result<Timestamp, StoreError> {
        Timestamp::from_second(seconds)
            .map_err(|e| self.corrupt(format!("bad time {seconds}: {e}")))
    }

    /// A corruption error for this file.
    fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The next version `diff` makes of `current`, checked: the serial rises,
/// the diff fits the version, and the touched RRsets over it (no copy of
/// the zone; checks where the diff touched, the stored version having
/// passed them all) pass the zone checks.
fn checked_diff<'a>(
    origin: &Name,
    current: &'a Zone,
    diff: &ZoneDiff,
) -> Result<ZoneEdit<'a>, StoreError> {
    if !diff.to.is_newer_than(diff.from) {
        return Err(StoreError::SerialNotNewer {
            origin: origin.clone(),
            current: diff.from,
            new: diff.to,
        });
    }
    let next = ZoneEdit::from_diff(current, diff).map_err(|source| StoreError::Diff {
        origin: origin.clone(),
        source: Box::new(source),
    })?;
    if next.serial() != Some(diff.to) {
        return Err(StoreError::Invalid {
            origin: origin.clone(),
            reasons: format!(
                "the diff says serial {} but leaves the SOA serial at {}",
                diff.to,
                next.serial()
                    .map_or("nothing".to_string(), |s| s.to_string())
            ),
        });
    }
    problems(origin, next.check())?;
    Ok(next)
}

/// The zone's checks as an error, if any fail.
fn check(zone: &Zone) -> Result<(), StoreError> {
    problems(zone.origin(), zone.check())
}

/// The problems a check found as an error, if there are any.
fn problems(origin: &Name, problems: Vec<ZoneError>) -> Result<(), StoreError> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(StoreError::Invalid {
        origin: origin.clone(),
        reasons: problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// Checks a zone and returns its serial.
fn checked(zone: &Zone) -> Result<Serial, StoreError> {
    check(zone)?;
    zone.serial().ok_or_else(|| StoreError::Invalid {
        origin: zone.origin().clone(),
        reasons: "no SOA record".into(),
    })
}

/// The current unix time as a serial candidate.
fn unix_time() -> Option<u32> {
    u32::try_from(Timestamp::now().as_second()).ok()
}

/// The version a re-import of `zone` over `current` (at `serial`) makes:
/// `None` when the content is the same; else `zone` with its own serial
/// when that rises over `serial` (RFC 1982), otherwise the next serial
/// ([`Serial::next`] at `now`).
fn replacement(current: &Zone, zone: &Zone, serial: Serial, now: Option<u32>) -> Option<Zone> {
    let mut next = zone.clone();
    next.set_serial(serial);
    if next == *current {
        return None;
    }
    next = zone.clone();
    if !next.serial().is_some_and(|s| s.is_newer_than(serial)) {
        next.set_serial(serial.next(now));
    }
    Some(next)
}
/// The diff of a change that changes nothing.
fn unchanged(serial: Serial) -> ZoneDiff {
    ZoneDiff {
        from: serial,
        to: serial,
        removed: Vec::new(),
        added: Vec::new(),
    }
}

/// Runs `edit` on a copy of `current` and gives the result a rising serial;
/// `None` when the edit changed nothing.
fn edited<E: fmt::Display>(
    origin: &Name,
    current: &Zone,
    edit: impl FnOnce(&mut Zone) -> Result<(), E>,
) -> Result<Option<Zone>, StoreError> {
    let mut next = current.clone();
    edit(&mut next).map_err(|e| StoreError::Edit {
        origin: origin.clone(),
        reason: e.to_string(),
    })?;
    if next == *current {
        return Ok(None);
    }
    let old = current.serial().unwrap_or(Serial(0));
    if !next.serial().is_some_and(|s| s.is_newer_than(old)) {
        next.set_serial(old.next(unix_time()));
    }
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_zone::rdata::{push_name, Soa};
    use cutover_zone::{Rdata, Record, RecordType};

    /// A name from text, case kept.
    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// A small zone with mixed-case owners and several RRsets.
    fn sample() -> Zone {
        let mut zone = Zone::new(n("example.test."));
        let soa = Soa {
            mname: n("ns1.example.test."),
            rname: n("hostmaster.example.test."),
            serial: 9,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 300,
        };
        let mut ns = Vec::new();
        push_name(&mut ns, &n("NS1.example.test."));
        let records = [
            ("example.test.", 3600, Rdata::soa(&soa)),
            (
                "example.test.",
                3600,
                Rdata::from_wire(RecordType::NS, &ns).unwrap(),
            ),
            ("NS1.Example.test.", 300, Rdata::a([192, 0, 2, 53].into())),
            ("www.example.test.", 60, Rdata::a([192, 0, 2, 80].into())),
            ("WWW.example.test.", 60, Rdata::a([192, 0, 2, 81].into())),
        ];
        for (name, ttl, rdata) in records {
            zone.add(Record {
                name: n(name),
                ttl,
                rdata,
            })
            .unwrap();
        }
        zone
    }

    /// The diff that adds `name` A 192.0.2.7 to `zone` and raises its serial by one.
    fn adding(zone: &Zone, name: &str) -> ZoneDiff {
        let mut next = zone.clone();
        next.add(Record {
            name: n(name),
            ttl: 60,
            rdata: Rdata::a([192, 0, 2, 7].into()),
        })
        .unwrap();
        next.set_serial(Serial(zone.serial().unwrap().0 + 1));
        ZoneDiff::between(zone, &next)
    }

    #[test]
    fn a_batch_member_builds_on_the_ones_before_it_and_one_that_fails_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).unwrap();
        let origin = n("example.test.");
        store.create_zone(&sample(), "test").unwrap();
        let serials = store
            .batch(|batch| {
                let first = batch
                    .update_zone(&origin, None, "first", |z| {
                        Ok::<_, ()>(Some(adding(z, "a.example.test.")))
                    })
                    .unwrap();
                let (diff, _) = first.outcome.unwrap().unwrap();
                // A diff that starts at the serial written over: fails, alone.
                let stale = batch.update_zone(&origin, None, "stale", |z| {
                    let mut diff = adding(z, "b.example.test.");
                    diff.from = Serial(9);
                    Ok::<_, ()>(Some(diff))
                });
                assert!(stale.is_err(), "a diff from an old serial is refused");
                let third = batch
                    .update_zone(&origin, None, "third", |z| {
                        assert!(
                            z.get(&n("a.example.test."), RecordType::A).is_some(),
                            "the third sees what the first wrote"
                        );
                        Ok::<_, ()>(Some(adding(z, "c.example.test.")))
                    })
                    .unwrap();
                (diff.to, third.outcome.unwrap().unwrap().0.to)
            })
            .unwrap();
        assert_eq!(serials, (Serial(10), Serial(11)), "one version each");
        let zone = store.zone(&origin).unwrap().unwrap();
        assert!(zone.get(&n("a.example.test."), RecordType::A).is_some());
        assert!(
            zone.get(&n("b.example.test."), RecordType::A).is_none(),
            "the failed member left nothing"
        );
        assert!(zone.get(&n("c.example.test."), RecordType::A).is_some());
        let versions = store.versions(&origin).unwrap();
        assert_eq!(
            versions
                .iter()
                .map(|v| v.comment.as_str())
                .collect::<Vec<_>>(),
            ["test", "first", "third"],
            "the journal: one version per member that changed the zone"
        );
    }

    #[test]
    fn for_each_record_streams_the_current_records_without_a_zone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).unwrap();
        let zone = sample();
        store.create_zone(&zone, "test").unwrap();
        store
            .edit(&n("example.test."), "add", |z: &mut Zone| {
                z.add(Record {
                    name: n("new.example.test."),
                    ttl: 60,
                    rdata: Rdata::a([192, 0, 2, 9].into()),
                })
                .map(|_| ())
                .map_err(|e| e.to_string())
            })
            .unwrap();
        let current = store.zone(&n("example.test.")).unwrap().unwrap();
        let mut expected: Vec<(Vec<u8>, u16, u32, Vec<u8>)> = current
            .records()
            .map(|r| {
                (
                    name_key(&r.name),
                    u16::from(r.rdata.rtype()),
                    r.ttl,
                    r.rdata.wire().to_vec(),
                )
            })
            .collect();
        expected.sort();
        let mut seen = Vec::new();
        let serial = store
            .for_each_record(&n("Example.TEST."), |owner, rtype, ttl, rdata| {
                seen.push((owner.to_vec(), rtype, ttl, rdata.to_vec()));
            })
            .unwrap();
        assert_eq!(
            Some(serial),
            current.serial(),
            "the serial of the version streamed"
        );
        assert!(
            seen.windows(2).all(|w| w[0].0 <= w[1].0),
            "rows come grouped by owner: {seen:?}"
        );
        assert!(
            seen.iter()
                .all(|(owner, ..)| !owner.iter().any(u8::is_ascii_uppercase)),
            "owners are lowercase: {seen:?}"
        );
        seen.sort();
        assert_eq!(
            seen, expected,
            "the streamed records are the current version"
        );
        assert_eq!(seen.len(), 6, "five created plus one edited in");
        let missing = store.for_each_record(&n("other.test."), |_, _, _, _| {
            panic!("no record of a missing zone")
        });
        assert!(
            matches!(missing, Err(StoreError::ZoneNotFound(ref o)) if *o == n("other.test.")),
            "expected ZoneNotFound, got {missing:?}"
        );
    }

    #[test]
    fn apply_to_checks_what_the_diff_touches_and_what_depends_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).unwrap();
        let zone = sample();
        store.create_zone(&zone, "test").unwrap();
        let soa = |serial: u32| {
            let mut soa = zone.soa().unwrap();
            soa.serial = serial;
            Record {
                name: n("example.test."),
                ttl: 3600,
                rdata: Rdata::soa(&soa),
            }
        };
        // The apex NS's glue removed (only the SOA touched at the apex): the
        // NS target lost its last address, so the store must refuse it.
        let glue = Record {
            name: n("ns1.example.test."),
            ttl: 300,
            rdata: Rdata::a([192, 0, 2, 53].into()),
        };
        let unglue = ZoneDiff {
            from: Serial(9),
            to: Serial(10),
            removed: vec![soa(9), glue],
            added: vec![soa(10)],
        };
        let refused = store.apply_to(&zone, &unglue, "unglue");
        assert!(
            matches!(refused, Err(StoreError::Invalid { ref reasons, .. }) if reasons.contains("needs glue")),
            "expected a missing-glue refusal, saw {refused:?}"
        );
        assert_eq!(
            store.zone(&n("example.test.")).unwrap(),
            Some(zone.clone()),
            "a refused diff writes nothing"
        );
        // An address added: stored, counted, journalled.
        let add = ZoneDiff {
            from: Serial(9),
            to: Serial(10),
            removed: vec![soa(9)],
            added: vec![
                soa(10),
                Record {
                    name: n("new.example.test."),
                    ttl: 60,
                    rdata: Rdata::a([192, 0, 2, 9].into()),
                },
            ],
        };
        assert_eq!(store.apply_to(&zone, &add, "add").unwrap(), Serial(10));
        let mut expected = zone.clone();
        add.apply_to(&mut expected).unwrap();
        assert_eq!(
            store.zone(&n("example.test.")).unwrap(),
            Some(expected),
            "the stored version is the diff applied"
        );
        let info = store.zones().unwrap();
        assert_eq!(info[0].records, 6, "five records plus one, seen {info:?}");
        assert_eq!(
            store.journal(&n("example.test."), Serial(9)).unwrap(),
            vec![add],
            "the journal holds the diff"
        );
    }
}
