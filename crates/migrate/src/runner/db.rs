//! The runner's tables in the store's SQLite file: `migration` (one row per
//! migration: file, plan, state, cursor), `migration_step` (every step and
//! attempt, started and ended, with its outcome, reason and evidence),
//! `migration_audit` (every record change, written as an intent before it
//! is applied), `migration_event` (everything that happened, appended) and
//! `migration_observation` (what the servers served, for the chart: see
//! `observations`).
//!
//! ```text
//!  open ──CREATE IF NOT EXISTS (the first tables)──▶ migration_schema.version < UPGRADES.len()?
//!        ──▶ each missing upgrade, in one IMMEDIATE transaction (a store written by an
//!            older cutover is brought up to date in place; a second process waits, then finds it done)
//! ```
//!
//! The store crate owns `PRAGMA user_version`, so the runner counts its own
//! upgrades in `migration_schema`. Every time written here is read from the
//! clock at the moment of writing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::events::{self, NewEvent};
use super::{AuditEntry, Cause, EventKind, Phase, State, StepOutcome, StepRecord};
use crate::effects::Clock;
use crate::plan::{Plan, RrsetText, StepKind};

/// The first tables, created when missing (as the first cutover wrote
/// them: [`UPGRADES`] take them from there).
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS migration (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    zone           TEXT NOT NULL,
    file_name      TEXT NOT NULL,
    file_text      TEXT NOT NULL,          -- the migration file as written
    plan           TEXT NOT NULL,          -- JSON
    state          TEXT NOT NULL,
    phase          TEXT NOT NULL,          -- what the records hold
    cursor         INTEGER NOT NULL,       -- index of the next planned step
    attempts       INTEGER NOT NULL,       -- failed attempts of that step
    last_done_at   INTEGER,                -- unix ms: the previous step's end
    last_try_at    INTEGER,                -- unix ms: the last failed attempt
    rollback       TEXT,                   -- NULL, 'manual' or 'auto' while rolling back
    reason         TEXT,
    low_ttl        INTEGER NOT NULL,
    serials        TEXT NOT NULL,          -- JSON {server: serial} noted before the switch
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS migration_step (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    migration_id INTEGER NOT NULL REFERENCES migration(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    position     INTEGER,                  -- the planned step's index; NULL for rollback steps
    attempt      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    done_at      INTEGER,
    outcome      TEXT,
    evidence     TEXT NOT NULL             -- JSON
) STRICT;
CREATE INDEX IF NOT EXISTS migration_step_by_migration ON migration_step (migration_id, id);
CREATE TABLE IF NOT EXISTS migration_audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    migration_id INTEGER NOT NULL REFERENCES migration(id) ON DELETE CASCADE,
    step_id      INTEGER NOT NULL REFERENCES migration_step(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    rtype        TEXT NOT NULL,
    old          TEXT,                     -- JSON RrsetText, NULL: absent
    new          TEXT,                     -- JSON RrsetText, NULL: deleted
    intended_at  INTEGER NOT NULL,
    applied_at   INTEGER,
    status       TEXT NOT NULL             -- intended | applied | refused
) STRICT;
CREATE INDEX IF NOT EXISTS migration_audit_by_step ON migration_audit (step_id);
CREATE TABLE IF NOT EXISTS migration_schema (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL               -- how many of UPGRADES are applied
) STRICT;
"#;

/// The upgrades of the runner's tables, in order; entry `i` takes them from
/// version `i` to `i + 1`. Each runs once, in place, in one transaction.
const UPGRADES: &[&str] = &[
    // 1: a reason per step; the outcome words that tell waiting, retrying,
    // done, failed and skipped apart; the append-only events, with the
    // history already recorded carried over.
    r#"
    ALTER TABLE migration_step ADD COLUMN reason TEXT;
    UPDATE migration_step SET outcome = 'done' WHERE outcome = 'ok';
    UPDATE migration_step SET outcome = 'failed',
        reason = json_extract(evidence, '$.conflict') || '; nothing was overwritten'
        WHERE outcome = 'conflict';
    -- A flush step that looked before every authority served the switch
    -- waited; it was stored as failed.
    UPDATE migration_step SET outcome = 'waiting',
        reason = 'not flushing yet: the switch is not served everywhere'
        WHERE outcome = 'failed' AND kind = 'flush_caches'
          AND json_type(evidence, '$.waiting_for') IS NOT NULL;
    CREATE TABLE migration_event (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        migration_id INTEGER NOT NULL REFERENCES migration(id),
        at           INTEGER NOT NULL,     -- unix ms, read from the clock when written
        cause        TEXT NOT NULL,        -- automatic | operator | conflict
        kind         TEXT NOT NULL,        -- started | step | state
        step_id      INTEGER REFERENCES migration_step(id),
        step         TEXT,                 -- the step's kind, for step events
        outcome      TEXT,                 -- done | skipped | waiting | retrying | failed
        state_from   TEXT,                 -- NULL: not recorded (carried over)
        state_to     TEXT,
        reason       TEXT
    ) STRICT;
    CREATE INDEX migration_event_by_migration ON migration_event (migration_id, id);
    CREATE TRIGGER migration_event_no_update BEFORE UPDATE ON migration_event
        BEGIN SELECT RAISE(ABORT, 'migration events are append-only'); END;
    CREATE TRIGGER migration_event_no_delete BEFORE DELETE ON migration_event
        BEGIN SELECT RAISE(ABORT, 'migration events are append-only'); END;
    -- What older stores recorded: each migration's start and every ended step.
    INSERT INTO migration_event (migration_id, at, cause, kind, state_to, reason)
        SELECT id, created_at, 'operator', 'started', NULL, 'from ' || file_name
        FROM migration ORDER BY id;
    INSERT INTO migration_event (migration_id, at, cause, kind, step_id, step, outcome, reason)
        SELECT migration_id, done_at,
               CASE WHEN json_type(evidence, '$.conflict') IS NOT NULL THEN 'conflict' ELSE 'automatic' END,
               'step', id, kind, outcome, reason
        FROM migration_step WHERE done_at IS NOT NULL ORDER BY done_at, id;
    "#,
    // 2: who did it, for the events a named person causes (an approval:
    // the API token's name, or the local user on the command line).
    r#"
    ALTER TABLE migration_event ADD COLUMN actor TEXT;
    "#,
    // 3: what the servers served over the migration, for the dashboard's
    // chart (`observations`): one row per run of surveys that counted
    // alike, the newest MAX_ROWS kept per migration.
    r#"
    CREATE TABLE migration_observation (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        migration_id    INTEGER NOT NULL REFERENCES migration(id) ON DELETE CASCADE,
        at              INTEGER NOT NULL,  -- unix ms: the run's first survey
        last_at         INTEGER NOT NULL,  -- unix ms: its last survey
        surveys         INTEGER NOT NULL,  -- how many surveys the run holds
        source          TEXT NOT NULL,     -- the step that asked first, or 'watch'
        authorities     INTEGER NOT NULL,
        authorities_old INTEGER NOT NULL,
        authorities_new INTEGER NOT NULL,
        resolvers       INTEGER NOT NULL,
        resolvers_old   INTEGER NOT NULL,
        resolvers_new   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX migration_observation_by_migration ON migration_observation (migration_id, id);
    "#,
    // 4: the notification outbox, one row per notice and target,
    // marked delivered only once the receiver took it; and how far each
    // scope ("file": the migration files' targets, "serve": serve's) has
    // turned events into rows.
    r#"
    CREATE TABLE migration_notification (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        migration_id INTEGER NOT NULL REFERENCES migration(id),
        event_id     INTEGER NOT NULL REFERENCES migration_event(id),
        target       TEXT NOT NULL,        -- file:N | serve:N:label
        label        TEXT NOT NULL,        -- the target in words, without secrets
        happening    TEXT NOT NULL,        -- wait | switch | failure | rollback | approval | end
        notice       TEXT NOT NULL,        -- JSON, as sent (no secret)
        created_at   INTEGER NOT NULL,
        attempts     INTEGER NOT NULL,
        next_at      INTEGER NOT NULL,     -- unix ms: due (a claim pushes it out)
        last_error   TEXT,
        last_try_at  INTEGER,
        delivered_at INTEGER,
        UNIQUE (event_id, target)
    ) STRICT;
    CREATE INDEX migration_notification_due ON migration_notification (delivered_at, next_at);
    CREATE INDEX migration_notification_by_migration ON migration_notification (migration_id, event_id);
    CREATE TABLE migration_notify_cursor (
        scope    TEXT PRIMARY KEY,
        event_id INTEGER NOT NULL
    ) STRICT;
    "#,
];

/// How long a connection waits for another writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the runner could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// No migration has this id.
    #[error("no migration with id {0}")]
    NotFound(i64),
    /// The stored plan or evidence does not read back.
    #[error("migration {id}: stored data is unreadable: {reason}")]
    Corrupt {
        /// The migration.
        id: i64,
        /// What is wrong.
        reason: String,
    },
    /// An approval was given to a migration that awaits none.
    #[error("migration {id} is {state}, not awaiting approval: there is nothing to approve")]
    NotAwaitingApproval {
        /// The migration.
        id: i64,
        /// Its state.
        state: State,
    },
    /// The operation does not apply in the migration's state.
    #[error("migration {id} is {state}: cannot {operation}")]
    WrongState {
        /// The migration.
        id: i64,
        /// Its state.
        state: State,
        /// What was asked.
        operation: &'static str,
    },
}

/// Attaches the file to SQLite errors.
pub(super) trait On<T> {
    /// The error with the store's path.
    fn on(self, path: &Path) -> Result<T, RunnerError>;
}

impl<T> On<T> for rusqlite::Result<T> {
    fn on(self, path: &Path) -> Result<T, RunnerError> {
        self.map_err(|source| RunnerError::Sqlite {
            path: path.to_owned(),
            source,
        })
    }
}

/// A migration row, read.
#[derive(Clone, Debug)]
pub(super) struct Migration {
    /// Id.
    pub id: i64,
    /// Zone.
    pub zone: String,
    /// File name.
    pub file_name: String,
    /// File text.
    pub file_text: String,
    /// The plan.
    pub plan: Plan,
    /// State.
    pub state: State,
    /// What the records hold.
    pub phase: Phase,
    /// The next planned step.
    pub cursor: usize,
    /// Failed attempts of that step.
    pub attempts: u32,
    /// When the previous step was done.
    pub last_done_at: Option<Timestamp>,
    /// The last failed attempt.
    pub last_try_at: Option<Timestamp>,
    /// A rollback in progress: "manual" or "auto".
    pub rollback: Option<String>,
    /// Why paused, failed, rolled back.
    pub reason: Option<String>,
    /// The TTL in force during the move (raised when a floor is found).
    pub low_ttl: u32,
    /// Serials noted before the switch.
    pub serials: BTreeMap<String, u32>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// The state and rollback request as last read or written by this
    /// process: an operator's command that arrives while a step runs is
    /// told apart from the runner's own changes by comparing with these.
    pub seen: (State, Option<String>),
}

/// Unix milliseconds.
pub(super) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// A timestamp from unix milliseconds.
pub(super) fn ts(v: i64) -> Timestamp {
    Timestamp::from_millisecond(v).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A state from its stored name.
pub(super) fn state_of(s: &str) -> Option<State> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// A phase from its stored name.
fn phase_of(s: &str) -> Option<Phase> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// A step kind's stored name.
pub(super) fn kind_str(k: StepKind) -> &'static str {
    match k {
        StepKind::LowerTtls => "lower_ttls",
        StepKind::WaitForCaches => "wait_for_caches",
        StepKind::VerifyNew => "verify_new",
        StepKind::NoteSerials => "note_serials",
        StepKind::Switch => "switch",
        StepKind::FlushCaches => "flush_caches",
        StepKind::VerifySwitch => "verify_switch",
        StepKind::Observe => "observe",
        StepKind::RestoreTtls => "restore_ttls",
        StepKind::Approval => "approval",
    }
}

/// Opens the file with the durability pragmas and creates the tables.
pub(super) fn open(path: &Path) -> Result<Connection, RunnerError> {
    let conn = Connection::open(path).on(path)?;
    conn.busy_timeout(BUSY_TIMEOUT).on(path)?;
    let _mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .on(path)?;
    conn.pragma_update(None, "synchronous", "FULL").on(path)?;
    conn.pragma_update(None, "foreign_keys", "ON").on(path)?;
    let mut conn = conn;
    upgrade(&mut conn, path)?;
    Ok(conn)
}

/// Creates the tables when missing and applies the upgrades the file lacks,
/// in one transaction; a file upgraded by a newer cutover is refused.
fn upgrade(conn: &mut Connection, path: &Path) -> Result<(), RunnerError> {
    let current = |conn: &Connection| -> rusqlite::Result<Option<i64>> {
        conn.query_row(
            "SELECT version FROM migration_schema WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()
    };
    let supported = UPGRADES.len() as i64;
    // Most opens find everything in place: no write, no lock.
    let in_place = conn
        .prepare("SELECT 1 FROM sqlite_master WHERE name = 'migration_schema'")
        .and_then(|mut s| s.exists([]))
        .on(path)?
        && current(conn).on(path)? == Some(supported);
    if in_place {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .on(path)?;
    tx.execute_batch(SCHEMA).on(path)?;
    let found = current(&tx).on(path)?.unwrap_or(0);
    if found > supported {
        return Err(RunnerError::Corrupt {
            id: 0,
            reason: format!(
                "the migration tables are at version {found}, this cutover knows {supported}: written by a newer cutover"
            ),
        });
    }
    for sql in &UPGRADES[usize::try_from(found).unwrap_or(0)..] {
        tx.execute_batch(sql).on(path)?;
    }
    tx.execute(
        "INSERT INTO migration_schema (id, version) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        [supported],
    )
    .on(path)?;
    tx.commit().on(path)
}

/// Stores a new migration, and its start as its first event.
pub(super) fn insert(
    conn: &mut Connection,
    path: &Path,
    file_name: &str,
    file_text: &str,
    plan: &Plan,
    now: Timestamp,
) -> Result<i64, RunnerError> {
    let plan_json = serde_json::to_string(plan).map_err(|e| RunnerError::Corrupt {
        id: 0,
        reason: e.to_string(),
    })?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .on(path)?;
    tx.execute(
        "INSERT INTO migration (zone, file_name, file_text, plan, state, phase, cursor, attempts,
             last_done_at, last_try_at, rollback, reason, low_ttl, serials, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'planned', 'original', 0, 0, NULL, NULL, NULL, NULL, ?5, '{}', ?6, ?6)",
        params![plan.zone, file_name, file_text, plan_json, plan.low_ttl, ms(now)],
    )
    .on(path)?;
    let id = tx.last_insert_rowid();
    events::append(
        &tx,
        path,
        id,
        now,
        &NewEvent {
            cause: Cause::Operator,
            kind: EventKind::Started,
            step_id: None,
            step: None,
            outcome: None,
            from: None,
            to: Some(State::Planned),
            by: None,
            reason: Some(format!("from {file_name}")),
        },
    )?;
    tx.commit().on(path)?;
    Ok(id)
}

/// Every migration id, oldest first.
pub(super) fn ids(conn: &Connection, path: &Path) -> Result<Vec<i64>, RunnerError> {
    let mut stmt = conn
        .prepare("SELECT id FROM migration ORDER BY id")
        .on(path)?;
    let rows = stmt.query_map([], |r| r.get(0)).on(path)?;
    rows.collect::<Result<Vec<i64>, _>>().on(path)
}

/// Reads one migration.
pub(super) fn load(conn: &Connection, path: &Path, id: i64) -> Result<Migration, RunnerError> {
    let row = conn
        .query_row(
            "SELECT zone, file_name, file_text, plan, state, phase, cursor, attempts, last_done_at,
                    last_try_at, rollback, reason, low_ttl, serials, created_at, updated_at
             FROM migration WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                    ),
                    (
                        r.get::<_, Option<i64>>(8)?,
                        r.get::<_, Option<i64>>(9)?,
                        r.get::<_, Option<String>>(10)?,
                        r.get::<_, Option<String>>(11)?,
                        r.get::<_, i64>(12)?,
                        r.get::<_, String>(13)?,
                        r.get::<_, i64>(14)?,
                        r.get::<_, i64>(15)?,
                    ),
                ))
            },
        )
        .optional()
        .on(path)?
        .ok_or(RunnerError::NotFound(id))?;
    let ((zone, file_name, file_text, plan, state, phase, cursor, attempts), rest) = row;
    let (last_done_at, last_try_at, rollback, reason, low_ttl, serials, created_at, updated_at) =
        rest;
    let corrupt = |reason: String| RunnerError::Corrupt { id, reason };
    let rollback_seen = rollback.clone();
    Ok(Migration {
        id,
        zone,
        file_name,
        file_text,
        plan: serde_json::from_str(&plan).map_err(|e| corrupt(format!("plan: {e}")))?,
        state: state_of(&state).ok_or_else(|| corrupt(format!("unknown state {state:?}")))?,
        phase: phase_of(&phase).ok_or_else(|| corrupt(format!("unknown phase {phase:?}")))?,
        cursor: usize::try_from(cursor).unwrap_or(0),
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_done_at: last_done_at.map(ts),
        last_try_at: last_try_at.map(ts),
        rollback,
        reason,
        low_ttl: u32::try_from(low_ttl).unwrap_or(0),
        serials: serde_json::from_str(&serials).map_err(|e| corrupt(format!("serials: {e}")))?,
        created_at: ts(created_at),
        updated_at: ts(updated_at),
        seen: (state_of(&state).unwrap_or(State::Failed), rollback_seen),
    })
}

/// Writes back a migration's mutable fields.
pub(super) fn save(
    conn: &Connection,
    path: &Path,
    m: &Migration,
    now: Timestamp,
) -> Result<(), RunnerError> {
    let serials = serde_json::to_string(&m.serials).unwrap_or_else(|_| "{}".into());
    conn.execute(
        "UPDATE migration SET state = ?2, phase = ?3, cursor = ?4, attempts = ?5, last_done_at = ?6,
             last_try_at = ?7, rollback = ?8, reason = ?9, low_ttl = ?10, serials = ?11, updated_at = ?12
         WHERE id = ?1",
        params![
            m.id,
            m.state.as_str(),
            m.phase.as_str(),
            m.cursor as i64,
            m.attempts,
            m.last_done_at.map(ms),
            m.last_try_at.map(ms),
            m.rollback,
            m.reason,
            m.low_ttl,
            serials,
            ms(now)
        ],
    )
    .on(path)?;
    Ok(())
}

/// Every recorded step of a migration.
pub(super) fn steps(
    conn: &Connection,
    path: &Path,
    id: i64,
) -> Result<Vec<StepRecord>, RunnerError> {
    let mut stmt = conn
        .prepare(
            "SELECT id, kind, attempt, started_at, done_at, outcome, evidence, reason, position
             FROM migration_step WHERE migration_id = ?1 ORDER BY id",
        )
        .on(path)?;
    let rows = stmt.query_map([id], step_record).on(path)?;
    rows.collect::<Result<Vec<_>, _>>().on(path)
}

/// A step row (`id, kind, attempt, started_at, done_at, outcome,
/// evidence, reason, position`) as a record.
fn step_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<StepRecord> {
    Ok(StepRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        position: r
            .get::<_, Option<i64>>(8)?
            .and_then(|p| usize::try_from(p).ok()),
        attempt: r.get(2)?,
        started_at: ts(r.get(3)?),
        done_at: r.get::<_, Option<i64>>(4)?.map(ts),
        outcome: r
            .get::<_, Option<String>>(5)?
            .as_deref()
            .and_then(StepOutcome::parse),
        reason: r.get(7)?,
        evidence: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or(serde_json::Value::Null),
    })
}

/// One recorded step by id.
pub(super) fn step(
    conn: &Connection,
    path: &Path,
    step_id: i64,
) -> Result<StepRecord, RunnerError> {
    conn.query_row(
        "SELECT id, kind, attempt, started_at, done_at, outcome, evidence, reason, position
         FROM migration_step WHERE id = ?1",
        [step_id],
        step_record,
    )
    .on(path)
}

/// The unfinished step row of this kind, if any, to be redone: one left
/// open by a provider error, or one a crash cut short. The second is
/// recorded as an event as it is taken up again (`clock`: its time), since
/// nothing else would tell that the process stopped in the middle of it.
pub(super) fn unfinished(
    conn: &Connection,
    path: &Path,
    m: &Migration,
    kind: &str,
    clock: &dyn Clock,
) -> Result<Option<i64>, RunnerError> {
    let open: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT id, outcome FROM migration_step WHERE migration_id = ?1 AND kind = ?2 AND done_at IS NULL
             ORDER BY id DESC LIMIT 1",
            params![m.id, kind],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .on(path)?;
    if let Some((step_id, None)) = &open {
        events::append(
            conn,
            path,
            m.id,
            clock.now(),
            &NewEvent {
                cause: Cause::Automatic,
                kind: EventKind::Step,
                step_id: Some(*step_id),
                step: Some(kind.to_string()),
                outcome: None,
                from: Some(m.state),
                to: Some(m.state),
                by: None,
                reason: Some(
                    "cut short: the process stopped before the step ended; redone from its record"
                        .into(),
                ),
            },
        )?;
    }
    Ok(open.map(|(id, _)| id))
}

/// One record change to audit.
pub(super) struct Intent {
    /// Owner.
    pub name: String,
    /// Type.
    pub rtype: String,
    /// Before.
    pub old: Option<RrsetText>,
    /// After.
    pub new: Option<RrsetText>,
}

/// Records a step as started (and its record changes as intents) in one
/// transaction, stamped with the clock's time as it is written; returns
/// the step row id.
pub(super) fn begin(
    conn: &mut Connection,
    path: &Path,
    m: &Migration,
    kind: &str,
    position: Option<usize>,
    intents: &[Intent],
    clock: &dyn Clock,
) -> Result<i64, RunnerError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .on(path)?;
    let now = clock.now();
    tx.execute(
        "INSERT INTO migration_step (migration_id, kind, position, attempt, started_at, evidence)
         VALUES (?1, ?2, ?3, ?4, ?5, '{}')",
        params![
            m.id,
            kind,
            position.map(|p| p as i64),
            m.attempts + 1,
            ms(now)
        ],
    )
    .on(path)?;
    let step_id = tx.last_insert_rowid();
    for intent in intents {
        tx.execute(
            "INSERT INTO migration_audit (migration_id, step_id, name, rtype, old, new, intended_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'intended')",
            params![
                m.id,
                step_id,
                intent.name,
                intent.rtype,
                intent.old.as_ref().and_then(|o| serde_json::to_string(o).ok()),
                intent.new.as_ref().and_then(|o| serde_json::to_string(o).ok()),
                ms(now)
            ],
        )
        .on(path)?;
    }
    tx.commit().on(path)?;
    Ok(step_id)
}

/// Marks the intents of a step for these RRsets (owner, type) applied,
/// with the clock's time as it is written: the zones a step of several
/// zones changed before one of them failed.
pub(super) fn applied(
    conn: &mut Connection,
    path: &Path,
    step_id: i64,
    rrsets: &[(String, String)],
    clock: &dyn Clock,
) -> Result<(), RunnerError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .on(path)?;
    let now = clock.now();
    for (name, rtype) in rrsets {
        tx.execute(
            "UPDATE migration_audit SET status = 'applied', applied_at = ?4
             WHERE step_id = ?1 AND name = ?2 AND rtype = ?3 AND status = 'intended'",
            params![step_id, name, rtype, ms(now)],
        )
        .on(path)?;
    }
    tx.commit().on(path)
}

/// Which of the migration's times an ending stamps with its own time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stamp {
    /// `last_done_at`: the step is done; the next wait counts from now.
    Done,
    /// `last_try_at`: an attempt that is tried again after the interval.
    Try,
    /// Neither (the caller has set what it needs).
    Nothing,
}

/// How a step attempt ended, as [`finish`] and [`note`] record it.
pub(super) struct Ending<'a> {
    /// The step row.
    pub step_id: i64,
    /// How it ended.
    pub outcome: StepOutcome,
    /// Why, in words.
    pub reason: Option<String>,
    /// What it saw and did.
    pub evidence: &'a serde_json::Value,
    /// What the step's audit intents become ("applied", "refused"), if any.
    pub audit: Option<&'a str>,
    /// Who or what caused the ending.
    pub cause: Cause,
    /// Which time of the migration the ending stamps.
    pub stamp: Stamp,
}

/// Records a step as ended and saves the migration, with the step's event
/// (and the change of state it brought), in one transaction stamped with
/// the clock's time as it is written.
pub(super) fn finish(
    conn: &mut Connection,
    path: &Path,
    m: &mut Migration,
    ending: Ending<'_>,
    clock: &dyn Clock,
) -> Result<(), RunnerError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .on(path)?;
    let now = clock.now();
    tx.execute(
        "UPDATE migration_step SET done_at = ?2, outcome = ?3, reason = ?4, evidence = ?5 WHERE id = ?1",
        params![
            ending.step_id,
            ms(now),
            ending.outcome.as_str(),
            ending.reason,
            ending.evidence.to_string()
        ],
    )
    .on(path)?;
    if let Some(status) = ending.audit {
        let applied = (status == "applied").then_some(ms(now));
        tx.execute(
            "UPDATE migration_audit SET status = ?2, applied_at = ?3 WHERE step_id = ?1 AND status = 'intended'",
            params![ending.step_id, status, applied],
        )
        .on(path)?;
    }
    observe_step(&tx, path, m, now, &ending)?;
    stamp(m, ending.stamp, now);
    commit_merged(tx, path, m, now, Some(&ending))
}

/// Records the survey of a step's evidence, if it asked the moving
/// records, among the migration's observations (the dashboard's chart).
fn observe_step(
    conn: &Connection,
    path: &Path,
    m: &Migration,
    now: Timestamp,
    ending: &Ending<'_>,
) -> Result<(), RunnerError> {
    let Some(survey) = ending
        .evidence
        .get("survey")
        .and_then(|s| serde_json::from_value::<crate::observe::Survey>(s.clone()).ok())
    else {
        return Ok(());
    };
    let source = step_kind(conn, path, ending.step_id)?;
    super::observations::record(conn, path, m.id, &m.plan, now, &source, &survey)?;
    Ok(())
}

/// Records how an attempt of a step that stays open ended (a provider that
/// could not be reached, or refused: the step is redone from its intents
/// later) and saves the migration, with the event, in one transaction.
pub(super) fn note(
    conn: &mut Connection,
    path: &Path,
    m: &mut Migration,
    ending: Ending<'_>,
    clock: &dyn Clock,
) -> Result<(), RunnerError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .on(path)?;
    let now = clock.now();
    tx.execute(
        "UPDATE migration_step SET outcome = ?2, reason = ?3, evidence = ?4 WHERE id = ?1",
        params![
            ending.step_id,
            ending.outcome.as_str(),
            ending.reason,
            ending.evidence.to_string()
        ],
    )
    .on(path)?;
    stamp(m, ending.stamp, now);
    commit_merged(tx, path, m, now, Some(&ending))
}

/// Sets the migration's time that `which` names to `now`.
fn stamp(m: &mut Migration, which: Stamp, now: Timestamp) {
    match which {
        Stamp::Done => m.last_done_at = Some(now),
        Stamp::Try => m.last_try_at = Some(now),
        Stamp::Nothing => {}
    }
}

/// Saves the runner's changes to a migration in one transaction, keeping
/// an operator's pause, abort or rollback that arrived meanwhile, with an
/// event when its state changed (`cause`: what changed it).
pub(super) fn update(
    conn: &mut Connection,
    path: &Path,
    m: &mut Migration,
    cause: Cause,
    clock: &dyn Clock,
) -> Result<(), RunnerError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .on(path)?;
    let now = clock.now();
    let ending = None::<&Ending<'_>>;
    commit_merged_by(tx, path, m, now, ending, cause)
}

/// Saves the migration in `tx`, keeping an operator's pause, abort or
/// rollback that arrived meanwhile, appends the events, and commits.
fn commit_merged(
    tx: Transaction<'_>,
    path: &Path,
    m: &mut Migration,
    now: Timestamp,
    ending: Option<&Ending<'_>>,
) -> Result<(), RunnerError> {
    let cause = ending.map_or(Cause::Automatic, |e| e.cause);
    commit_merged_by(tx, path, m, now, ending, cause)
}

/// [`commit_merged`] with the cause of a change of state given.
fn commit_merged_by(
    tx: Transaction<'_>,
    path: &Path,
    m: &mut Migration,
    now: Timestamp,
    ending: Option<&Ending<'_>>,
    cause: Cause,
) -> Result<(), RunnerError> {
    let stored = super::control::merge_operator(&tx, path, m)?;
    save(&tx, path, m, now)?;
    if let Some(ending) = ending {
        events::append(
            &tx,
            path,
            m.id,
            now,
            &NewEvent {
                cause: ending.cause,
                kind: EventKind::Step,
                step_id: Some(ending.step_id),
                step: Some(step_kind(&tx, path, ending.step_id)?),
                outcome: Some(ending.outcome),
                from: stored,
                to: Some(m.state),
                by: None,
                reason: ending.reason.clone(),
            },
        )?;
    }
    // A change of state the runner made: every one when no step ended; after
    // a step, the ones that need the operator's eye (the step's event already
    // says where the migration went).
    let notable = matches!(
        m.state,
        State::Paused
            | State::AwaitingApproval
            | State::RollingBack
            | State::RolledBack
            | State::Done
            | State::Failed
    );
    if stored != Some(m.state) && (ending.is_none() || notable) {
        events::append(
            &tx,
            path,
            m.id,
            now,
            &NewEvent {
                cause,
                kind: EventKind::State,
                step_id: ending.map(|e| e.step_id),
                step: None,
                outcome: None,
                from: stored,
                to: Some(m.state),
                by: None,
                // Rolled back and done need no reason: the events before say why.
                reason: m
                    .reason
                    .clone()
                    .filter(|_| !matches!(m.state, State::Done | State::RolledBack)),
            },
        )?;
    }
    tx.commit().on(path)?;
    m.seen = (m.state, m.rollback.clone());
    Ok(())
}

/// The kind of a step row.
fn step_kind(conn: &Connection, path: &Path, step_id: i64) -> Result<String, RunnerError> {
    conn.query_row(
        "SELECT kind FROM migration_step WHERE id = ?1",
        [step_id],
        |r| r.get(0),
    )
    .on(path)
}

/// The audit log of a migration.
pub(super) fn audit(
    conn: &Connection,
    path: &Path,
    id: i64,
) -> Result<Vec<AuditEntry>, RunnerError> {
    let mut stmt = conn
        .prepare(
            "SELECT a.id, a.step_id, s.kind, a.name, a.rtype, a.old, a.new, a.intended_at, a.applied_at, a.status
             FROM migration_audit a JOIN migration_step s ON s.id = a.step_id
             WHERE a.migration_id = ?1 ORDER BY a.id",
        )
        .on(path)?;
    let rows = stmt
        .query_map([id], |r| {
            let old: Option<String> = r.get(5)?;
            let new: Option<String> = r.get(6)?;
            Ok(AuditEntry {
                id: r.get(0)?,
                step_id: r.get(1)?,
                step: r.get(2)?,
                name: r.get(3)?,
                rtype: r.get(4)?,
                old: old.and_then(|t| serde_json::from_str(&t).ok()),
                new: new.and_then(|t| serde_json::from_str(&t).ok()),
                intended_at: ts(r.get(7)?),
                applied_at: r.get::<_, Option<i64>>(8)?.map(ts),
                status: r.get(9)?,
            })
        })
        .on(path)?;
    rows.collect::<Result<Vec<_>, _>>().on(path)
}
