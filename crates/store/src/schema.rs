//! The store's SQL schema and its migrations, applied in order at open.
//!
//! `PRAGMA user_version` holds the number of migrations applied. A file whose
//! version is higher than [`MIGRATIONS`] knows was written by a newer cutover
//! and is refused rather than misread.
//!
//! A store that cannot be written (a read-only filesystem, a file or
//! directory this user may not write) is opened read-only, so reading
//! commands work; every write then fails naming why ([`Access::ReadOnly`]).
//!
//! ```text
//!  open ──read-write (WAL, migrations)── ok ──▶ ReadWrite
//!        └─ failed, and the file exists but cannot be written ──▶ read-only open
//!             ├─ reads (its -wal/-shm exist or can be made) ──────────────▶ ReadOnly(why)
//!             └─ cannot make -shm: a read-only filesystem and no changes left in -wal
//!                   ──▶ immutable open (nothing can change the file) ─────▶ ReadOnly(why)
//!                 otherwise ──▶ error naming the side file and what to do
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

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
    // 2: the NS rows of each zone on their own, so an edit that removes an
    // address or a delegation finds the NS that depend on it without
    // reading every record (`excerpt`).
    r#"
    CREATE INDEX record_ns ON record (zone_id) WHERE rtype = 2;
    "#,
    // 3: when a secondary zone's primary was last checked successfully, so
    // the SOA expire counts from then across restarts.
    r#"
    CREATE TABLE secondary_check (
        zone_id    INTEGER PRIMARY KEY REFERENCES zone(id) ON DELETE CASCADE,
        checked_at INTEGER NOT NULL        -- unix seconds
    ) STRICT;
    "#,
];

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How a store file is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads and writes.
    ReadWrite,
    /// Reads only, for the reason given (what cannot be written).
    ReadOnly(String),
}

/// Opens the file: read-write (creating it if missing, setting the
/// durability pragmas and bringing the schema up to date) when it can be
/// written, read-only when it exists and cannot be.
pub fn open(path: &Path) -> Result<(Connection, Access), StoreError> {
    let failed = match open_read_write(path) {
        Ok(conn) => return Ok((conn, Access::ReadWrite)),
        Err(error) => error,
    };
    let Some(why) = unwritable(path) else {
        return Err(failed);
    };
    if !path.exists() {
        return Err(StoreError::ReadOnly {
            path: path.to_owned(),
            reason: format!("the store does not exist and cannot be created: {why}"),
        });
    }
    let conn = open_read_only(path, &why)?;
    Ok((conn, Access::ReadOnly(why)))
}

/// Why the store at `path` cannot be written (its filesystem is read-only,
/// or this user may not write the file or its directory, where SQLite's
/// WAL mode keeps its side files); `None` when it can be.
fn unwritable(path: &Path) -> Option<String> {
    let dir = directory(path);
    if read_only_filesystem(&dir) {
        return Some(format!(
            "the filesystem holding {} is mounted read-only",
            dir.display()
        ));
    }
    if path.exists() && !writable(path) {
        return Some(format!("{} is not writable by this user", path.display()));
    }
    if !writable(&dir) {
        return Some(format!(
            "the directory {} is not writable by this user (SQLite's WAL mode keeps {} and {} there)",
            dir.display(),
            side_file(path, "-wal").display(),
            side_file(path, "-shm").display()
        ));
    }
    None
}

/// Opens an existing store read-only: as it is when SQLite can use (or
/// make) its side files; else, on a read-only filesystem with no changes
/// left in the `-wal` file, as an immutable file (nothing can change it).
fn open_read_only(path: &Path, why: &str) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let plain =
        Connection::open_with_flags(path, flags).and_then(|conn| readable(&conn).map(|()| conn));
    let conn = match plain {
        Ok(conn) => conn,
        Err(error) => {
            let wal = side_file(path, "-wal");
            let pending = std::fs::metadata(&wal).map_or(0, |m| m.len());
            if pending > 0 {
                return Err(StoreError::ReadOnly {
                    path: path.to_owned(),
                    reason: format!(
                        "{why}, and {} holds {pending} bytes of changes not yet copied into the \
                         store, which SQLite reads only when it can create {} ({error}); open it \
                         once with write access (any cutover command does), or copy the store \
                         with its -wal file to a writable place",
                        wal.display(),
                        side_file(path, "-shm").display()
                    ),
                });
            }
            if !read_only_filesystem(&directory(path)) {
                return Err(StoreError::ReadOnly {
                    path: path.to_owned(),
                    reason: format!(
                        "{why}, and SQLite cannot read a store in WAL mode without creating {} \
                         ({error}); run as the store's owner, or make its directory writable",
                        side_file(path, "-shm").display()
                    ),
                });
            }
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(&uri, flags | OpenFlags::SQLITE_OPEN_URI)
                .and_then(|conn| readable(&conn).map(|()| conn))
                .on(path)?
        }
    };
    conn.busy_timeout(BUSY_TIMEOUT).on(path)?;
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .on(path)?;
    let supported = MIGRATIONS.len() as i64;
    if found > supported {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported,
        });
    }
    if found < supported {
        return Err(StoreError::ReadOnly {
            path: path.to_owned(),
            reason: format!(
                "{why}, and the store's schema (version {found}) needs an upgrade to version \
                 {supported}, which needs write access"
            ),
        });
    }
    Ok(conn)
}

/// Reads one row, which is when SQLite opens the WAL side files.
fn readable(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT value FROM generation WHERE id = 1", [], |_| Ok(()))
}

/// The directory holding `path`.
fn directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `path` with `suffix` appended to its file name (`-wal`, `-shm`).
fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// True when `path` is on a filesystem mounted read-only.
fn read_only_filesystem(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs writes one struct into the zeroed value given and
    // reads the NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let done = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    done == 0 && stat.f_flag & libc::ST_RDONLY != 0
}

/// True when this user may write `path` (access(2), which also says no on
/// a read-only filesystem).
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access reads the NUL-terminated path only.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

/// A path as a `file:` URI path: everything but unreserved characters and
/// slashes percent-encoded.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &byte in path.as_os_str().as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte))
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Opens (creating if missing) the file read-write, sets the durability
/// pragmas and brings the schema up to date.
fn open_read_write(path: &Path) -> Result<Connection, StoreError> {
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
