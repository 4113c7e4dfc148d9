//! The outbox: one row per notice and target, written before anything is
//! sent and marked delivered only once the receiver took it; and a cursor
//! per scope through the events already turned into rows.
//!
//! ```text
//!  migration_notification: (event, target) once ── next_at ≤ now and not delivered: due
//!      claim: next_at pushed out (another process leaves it) ── send ──▶ delivered_at │ attempts, last_error, next_at
//!  migration_notify_cursor: scope ("file" │ "serve") → the last event turned into rows
//! ```

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Notice;
use crate::runner::RunnerError;

/// SQLite's error with the store's path.
fn on<T>(r: rusqlite::Result<T>, path: &Path) -> Result<T, RunnerError> {
    r.map_err(|source| RunnerError::Sqlite {
        path: path.to_owned(),
        source,
    })
}

/// A timestamp from unix milliseconds.
fn ts(v: i64) -> Timestamp {
    Timestamp::from_millisecond(v).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Where one notice to one target stands, for `migrate show` and the API:
/// counted from what happened, never claimed delivered before the receiver
/// took it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// The notice's id (`m3-e17`), as the receiver sees it.
    pub notice: String,
    /// What happened ("switch").
    pub event: String,
    /// The target, shown without secrets ("webhook to hooks.example.com").
    pub target: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the receiver took it (`None`: not delivered yet).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<Timestamp>,
    /// Why the last attempt failed (`None`: it did not, or none was made).
    pub last_error: Option<String>,
    /// When the last attempt was made.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_try_at: Option<Timestamp>,
    /// When the next attempt is due (`None`: delivered).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_at: Option<Timestamp>,
}

/// A row to write: a notice for one target.
pub(super) struct NewRow {
    /// The event it comes from.
    pub event_id: i64,
    /// The migration.
    pub migration_id: i64,
    /// The target's key (`file:0`, `serve:1:webhook to h`).
    pub target: String,
    /// The target, in words.
    pub label: String,
    /// The notice.
    pub notice: Notice,
}

/// A due row, read.
pub(super) struct Due {
    /// Row id.
    pub id: i64,
    /// The migration.
    pub migration_id: i64,
    /// The target's key.
    pub target: String,
    /// The target, in words.
    pub label: String,
    /// The notice.
    pub notice: Notice,
    /// Attempts so far.
    pub attempts: u32,
    /// When its next attempt is due.
    pub next_at: Timestamp,
}

/// The last event of `scope` already turned into rows (`None`: the scope
/// never ran in this store).
pub(super) fn cursor(
    conn: &Connection,
    path: &Path,
    scope: &str,
) -> Result<Option<i64>, RunnerError> {
    on(
        conn.query_row(
            "SELECT event_id FROM migration_notify_cursor WHERE scope = ?1",
            [scope],
            |r| r.get(0),
        )
        .optional(),
        path,
    )
}

/// The newest event's id (0: none).
pub(super) fn last_event(conn: &Connection, path: &Path) -> Result<i64, RunnerError> {
    on(
        conn.query_row(
            "SELECT coalesce(max(id), 0) FROM migration_event",
            [],
            |r| r.get(0),
        ),
        path,
    )
}

/// The migrations with events in `(after, through]`.
pub(super) fn migrations_with_events(
    conn: &Connection,
    path: &Path,
    after: i64,
    through: i64,
) -> Result<Vec<i64>, RunnerError> {
    let mut stmt = on(
        conn.prepare(
            "SELECT DISTINCT migration_id FROM migration_event WHERE id > ?1 AND id <= ?2 ORDER BY migration_id",
        ),
        path,
    )?;
    let rows = on(stmt.query_map([after, through], |r| r.get(0)), path)?;
    on(rows.collect(), path)
}

/// Writes `rows` (each (event, target) once) and moves the scope's cursor
/// to `through`, in one transaction.
pub(super) fn enqueue(
    conn: &mut Connection,
    path: &Path,
    scope: &str,
    rows: &[NewRow],
    through: i64,
    now: Timestamp,
) -> Result<usize, RunnerError> {
    let tx = on(
        conn.transaction_with_behavior(TransactionBehavior::Immediate),
        path,
    )?;
    let mut added = 0;
    for row in rows {
        added += on(
            tx.execute(
                "INSERT OR IGNORE INTO migration_notification
                     (migration_id, event_id, target, label, happening, notice, created_at, attempts, next_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?7)",
                params![
                    row.migration_id,
                    row.event_id,
                    row.target,
                    row.label,
                    row.notice.event.as_str(),
                    row.notice.json(),
                    now.as_millisecond(),
                ],
            ),
            path,
        )?;
    }
    on(
        tx.execute(
            "INSERT INTO migration_notify_cursor (scope, event_id) VALUES (?1, ?2)
             ON CONFLICT (scope) DO UPDATE SET event_id = max(event_id, excluded.event_id)",
            params![scope, through],
        ),
        path,
    )?;
    on(tx.commit(), path)?;
    Ok(added)
}

/// The rows not delivered yet, in the order of their events (the caller
/// sends a target's notices in that order).
pub(super) fn undelivered(conn: &Connection, path: &Path) -> Result<Vec<Due>, RunnerError> {
    let mut stmt = on(
        conn.prepare(
            "SELECT id, migration_id, target, label, notice, attempts, next_at FROM migration_notification
             WHERE delivered_at IS NULL ORDER BY event_id, id LIMIT 1000",
        ),
        path,
    )?;
    let rows = on(
        stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        }),
        path,
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (id, migration_id, target, label, notice, attempts, next_at) = on(row, path)?;
        // A notice this cutover cannot read is left for one that can.
        if let Ok(notice) = serde_json::from_str(&notice) {
            out.push(Due {
                id,
                migration_id,
                target,
                label,
                notice,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                next_at: ts(next_at),
            });
        }
    }
    Ok(out)
}

/// Takes a due row for one attempt: its next attempt is pushed to `until`,
/// so another process (or a later pass) leaves it while it is sent. False
/// when someone else took it first.
pub(super) fn claim(
    conn: &Connection,
    path: &Path,
    id: i64,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool, RunnerError> {
    let changed = on(
        conn.execute(
            "UPDATE migration_notification SET next_at = ?3
             WHERE id = ?1 AND delivered_at IS NULL AND next_at <= ?2",
            params![id, now.as_millisecond(), until.as_millisecond()],
        ),
        path,
    )?;
    Ok(changed == 1)
}

/// The receiver took the row's notice at `at`.
pub(super) fn delivered(
    conn: &Connection,
    path: &Path,
    id: i64,
    at: Timestamp,
) -> Result<(), RunnerError> {
    on(
        conn.execute(
            "UPDATE migration_notification
             SET attempts = attempts + 1, delivered_at = ?2, last_try_at = ?2
             WHERE id = ?1",
            params![id, at.as_millisecond()],
        ),
        path,
    )?;
    Ok(())
}

/// An attempt failed at `at` for `error`; the next is due at `next`.
pub(super) fn failed(
    conn: &Connection,
    path: &Path,
    id: i64,
    at: Timestamp,
    error: &str,
    next: Timestamp,
) -> Result<(), RunnerError> {
    on(
        conn.execute(
            "UPDATE migration_notification
             SET attempts = attempts + 1, last_error = ?3, last_try_at = ?2, next_at = ?4
             WHERE id = ?1",
            params![id, at.as_millisecond(), error, next.as_millisecond()],
        ),
        path,
    )?;
    Ok(())
}

/// Every notice of migration `id` and where it stands, in order.
pub(super) fn of(conn: &Connection, path: &Path, id: i64) -> Result<Vec<Delivery>, RunnerError> {
    let mut stmt = on(
        conn.prepare(
            "SELECT notice, happening, label, attempts, delivered_at, last_error, last_try_at, next_at
             FROM migration_notification WHERE migration_id = ?1 ORDER BY event_id, id",
        ),
        path,
    )?;
    let rows = on(
        stmt.query_map([id], |r| {
            let notice: String = r.get(0)?;
            let delivered_at: Option<i64> = r.get(4)?;
            Ok(Delivery {
                notice: serde_json::from_str::<Notice>(&notice)
                    .map(|n| n.id)
                    .unwrap_or_default(),
                event: r.get(1)?,
                target: r.get(2)?,
                attempts: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                delivered_at: delivered_at.map(ts),
                last_error: r.get(5)?,
                last_try_at: r.get::<_, Option<i64>>(6)?.map(ts),
                next_at: if delivered_at.is_some() {
                    None
                } else {
                    Some(ts(r.get(7)?))
                },
            })
        }),
        path,
    )?;
    on(rows.collect(), path)
}

/// Notices not delivered yet, over the whole store.
pub(super) fn pending(conn: &Connection, path: &Path) -> Result<usize, RunnerError> {
    on(
        conn.query_row(
            "SELECT count(*) FROM migration_notification WHERE delivered_at IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        ),
        path,
    )
    .map(|n| usize::try_from(n).unwrap_or(0))
}
