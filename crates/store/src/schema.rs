//! The store's SQL schema and its migrations, applied in order at open.
//!
//! `PRAGMA user_version` holds the number of migrations applied. A file whose
//! version is higher than [`MIGRATIONS`] knows was written by a newer cutover
//! and is refused rather than misread.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;
use crate::SqliteContext;

/// Every migration, in order; entry `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: zones, their current records, and the journal of versions.
    r#"
    CREATE TABLE zone (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        origin     BLOB NOT NULL UNIQUE,   -- lowercase wire form of the apex
        serial     INTEGER NOT NULL,
        records    INTEGER NOT NULL,
        created_at INTEGER NOT NULL,       -- unix seconds
        updated_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE record (
        zone_id INTEGER NOT NULL REFERENCES zone(id) ON DELETE CASCADE,
        owner   BLOB NOT NULL,             -- lowercase wire form
        rtype   INTEGER NOT NULL,
        ttl     INTEGER NOT NULL,
        rdata   BLOB NOT NULL,             -- uncompressed wire form
        PRIMARY KEY (zone_id, owner, rtype, rdata)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE version (
        zone_id     INTEGER NOT NULL REFERENCES zone(id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,      -- 1 for the version that created the zone
        serial_from INTEGER,               -- NULL when the zone was created
        serial_to   INTEGER NOT NULL,
        at          INTEGER NOT NULL,      -- unix seconds
        comment     TEXT NOT NULL,
        added       INTEGER NOT NULL,
        removed     INTEGER NOT NULL,
        PRIMARY KEY (zone_id, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE journal (
        zone_id INTEGER NOT NULL,
        seq     INTEGER NOT NULL,
        pos     INTEGER NOT NULL,          -- order within the diff (SOA first)
        added   INTEGER NOT NULL,          -- 0: removed, 1: added
        owner   BLOB NOT NULL,
        rtype   INTEGER NOT NULL,
        ttl     INTEGER NOT NULL,
        rdata   BLOB NOT NULL,
        PRIMARY KEY (zone_id, seq, pos),
        FOREIGN KEY (zone_id, seq) REFERENCES version(zone_id, seq) ON DELETE CASCADE
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE generation (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        value INTEGER NOT NULL
    ) STRICT;
    INSERT INTO generation (id, value) VALUES (1, 0);
    "#,
];

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if missing) the file, sets the durability pragmas and
/// brings the schema up to date.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).on(path)?;
    conn.busy_timeout(BUSY_TIMEOUT).on(path)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .on(path)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("SQLite refused WAL journal mode (got {mode})"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL").on(path)?;
    conn.pragma_update(None, "foreign_keys", "ON").on(path)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Applies the migrations the file lacks, all in one transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .on(path)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .on(path)?;
    if found < 0 {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            reason: format!("negative schema version {found}"),
        });
    }
    if found > supported {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported,
        });
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql).on(path)?;
    }
    if found < supported {
        tx.pragma_update(None, "user_version", supported).on(path)?;
    }
    tx.commit().on(path)
}
