//! The delivery worker: a thread of its own that turns new events into
//! outbox rows and sends what is due, retrying with exponential backoff
//! and jitter (1 s, 2 s, 4 s … at most 15 minutes, each between half and
//! all of that), by the injected clock.
//!
//! ```text
//!  every poll (or wake): enqueue (file targets; serve's targets) ──▶ deliver due rows one by one
//!  stop ──▶ the pass under way ends (at most one attempt, SEND_TIMEOUT), the thread is joined
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::Timestamp;

use super::outbox::{self, NewRow};
use super::{notice_of, send, Delivery, Target, SEND_TIMEOUT};
use crate::effects::Clock;
use crate::file::MigrationFile;
use crate::plan::later;
use crate::runner::{Migrations, RunnerError};

/// The longest wait between two attempts of one notice (s).
const MAX_BACKOFF: u64 = 15 * 60;

/// Whose targets a worker serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The `[[notify]]` tables of the migration files.
    File,
    /// `cutover serve`'s `[[notify]]` tables: every migration of its store.
    Serve,
}

impl Scope {
    /// The cursor's name in the store.
    fn key(self) -> &'static str {
        match self {
            Scope::File => "file",
            Scope::Serve => "serve",
        }
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Rows written for new events.
    pub queued: usize,
    /// Notices the receivers took.
    pub delivered: usize,
    /// Attempts that failed (each retried later).
    pub failed: usize,
}

/// Turns events into notices and delivers them; [`Worker::spawn`] runs it
/// on a thread of its own.
#[derive(Clone)]
pub struct Worker {
    /// The store file.
    store: PathBuf,
    /// The time, for due times and backoff.
    clock: Arc<dyn Clock>,
    /// serve's targets (empty: only the files').
    serve: Vec<Target>,
    /// Time between passes when nothing wakes the worker.
    poll: Duration,
    /// How far each scope was read without a row to write (kept here: a
    /// store with no `[[notify]]` anywhere is never written to).
    read: Arc<Mutex<BTreeMap<&'static str, i64>>>,
    /// Whether this worker sends the file targets' notices of a migration
    /// (the process that runs it: its environment holds the secrets).
    mine: Arc<dyn Fn(i64) -> bool + Send + Sync>,
}

/// A running worker: stopped (and joined) by [`WorkerHandle::stop`] or on drop.
pub struct WorkerHandle {
    /// The stop flag and the wake-up.
    signal: Arc<(Mutex<bool>, Condvar)>,
    /// The thread.
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// A worker for the migration files' targets in the store at `store`.
    pub fn new(store: &Path, clock: Arc<dyn Clock>) -> Worker {
        Worker {
            store: store.to_owned(),
            clock,
            serve: Vec::new(),
            poll: Duration::from_secs(1),
            mine: Arc::new(|_| true),
            read: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Sends the migration files' notices only of the migrations `mine`
    /// accepts (default: all): `migrate run ID` sends its migration's,
    /// serve those of the migrations no `migrate run` carries out, so the
    /// process that runs a migration, whose environment has its secrets,
    /// is the one that signs its notices. serve's own targets are its alone.
    pub fn only_for(mut self, mine: impl Fn(i64) -> bool + Send + Sync + 'static) -> Worker {
        self.mine = Arc::new(mine);
        self
    }

    /// Also `cutover serve`'s targets, for every migration of the store.
    pub fn with_serve_targets(mut self, targets: Vec<Target>) -> Worker {
        self.serve = targets;
        self
    }

    /// The time between passes (default 1 s).
    pub fn poll_every(mut self, poll: Duration) -> Worker {
        self.poll = poll;
        self
    }

    /// One pass: new events into rows, then every due row sent once.
    pub fn pass(&self, migrations: &Migrations) -> Result<Pass, RunnerError> {
        let mut pass = Pass::default();
        pass.queued += self.enqueue(migrations, Scope::File)?;
        if !self.serve.is_empty() {
            pass.queued += self.enqueue(migrations, Scope::Serve)?;
        }
        self.deliver(migrations, &mut pass)?;
        Ok(pass)
    }

    /// Notices not delivered yet, over the whole store.
    pub fn pending(&self, migrations: &Migrations) -> Result<usize, RunnerError> {
        migrations.with_conn(|conn, path| outbox::pending(conn, path))
    }

    /// The targets of migration `id`'s file (none when it cannot be read).
    fn file_targets(migrations: &Migrations, id: i64) -> Vec<Target> {
        let Ok((name, text)) = migrations.file_text(id) else {
            return Vec::new();
        };
        match MigrationFile::parse(&text, &name) {
            Ok(file) => file.notify,
            Err(e) => {
                tracing::warn!(
                    "migration {id}: its stored file cannot be read for its [[notify]] tables: {e}"
                );
                Vec::new()
            }
        }
    }

    /// A serve target's key: its place and words, so that a config edited
    /// between restarts does not send a row to another target.
    fn serve_key(index: usize, target: &Target) -> String {
        format!("serve:{index}:{}", target.label())
    }

    /// New events of `scope` into outbox rows.
    fn enqueue(&self, migrations: &Migrations, scope: Scope) -> Result<usize, RunnerError> {
        let (cursor, through) = migrations.with_conn(|conn, path| {
            Ok::<_, RunnerError>((
                outbox::cursor(conn, path, scope.key())?,
                outbox::last_event(conn, path)?,
            ))
        })?;
        let read = self
            .read
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(scope.key())
            .copied();
        let after = match (scope, cursor.max(read)) {
            (_, Some(c)) => c,
            (Scope::File, None) => 0,
            // serve's targets are told of what happens from now on, not of
            // a store's history.
            (Scope::Serve, None) => through,
        };
        let remember = |through: i64| {
            self.read
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(scope.key(), through);
        };
        if through <= after {
            // serve's first look: where its targets begin.
            remember(after);
            return Ok(0);
        }
        let ids = migrations
            .with_conn(|conn, path| outbox::migrations_with_events(conn, path, after, through))?;
        let mut rows = Vec::new();
        for id in ids {
            let targets: Vec<(String, Target)> = match scope {
                Scope::File => Self::file_targets(migrations, id)
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| (format!("file:{i}"), t))
                    .collect(),
                Scope::Serve => self
                    .serve
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (Self::serve_key(i, t), t.clone()))
                    .collect(),
            };
            if targets.is_empty() {
                continue;
            }
            let detail = migrations.show(id)?;
            for event in detail
                .events
                .iter()
                .filter(|e| e.id > after && e.id <= through)
            {
                let Some(notice) = notice_of(&detail, event) else {
                    continue;
                };
                for (key, target) in &targets {
                    if target.wants(notice.event) {
                        rows.push(NewRow {
                            event_id: event.id,
                            migration_id: id,
                            target: key.clone(),
                            label: target.label(),
                            notice: notice.clone(),
                        });
                    }
                }
            }
        }
        if rows.is_empty() {
            // Nothing to send: remembered here, nothing written.
            remember(through);
            return Ok(0);
        }
        let now = self.clock.now();
        let added = migrations.with_conn(|conn, path| {
            outbox::enqueue(conn, path, scope.key(), &rows, through, now)
        })?;
        remember(through);
        Ok(added)
    }

    /// Every due row this worker knows the target of, sent once; a
    /// target's notices in the order of their events (a later one waits
    /// while an earlier one is not delivered).
    fn deliver(&self, migrations: &Migrations, pass: &mut Pass) -> Result<(), RunnerError> {
        let rows = migrations.with_conn(|conn, path| outbox::undelivered(conn, path))?;
        let mut files: BTreeMap<i64, Vec<Target>> = BTreeMap::new();
        let mut held: BTreeSet<(i64, String)> = BTreeSet::new();
        for row in rows {
            let key = (row.migration_id, row.target.clone());
            if held.contains(&key) {
                continue;
            }
            if row.next_at > self.clock.now() {
                held.insert(key);
                continue;
            }
            let target = if let Some(i) = row.target.strip_prefix("file:") {
                if !(self.mine)(row.migration_id) {
                    continue;
                }
                let targets = files
                    .entry(row.migration_id)
                    .or_insert_with(|| Self::file_targets(migrations, row.migration_id));
                i.parse::<usize>()
                    .ok()
                    .and_then(|i| targets.get(i).cloned())
            } else {
                self.serve
                    .iter()
                    .enumerate()
                    .find(|(i, t)| Self::serve_key(*i, t) == row.target)
                    .map(|(_, t)| t.clone())
            };
            // Another process's target (serve's, seen from `migrate run`): left to it.
            let Some(target) = target else { continue };
            let now = self.clock.now();
            let lease = later(now, SEND_TIMEOUT.as_secs() + 60);
            if !migrations.with_conn(|conn, path| outbox::claim(conn, path, row.id, now, lease))? {
                continue;
            }
            match send::send(&target.channel, &row.notice, now) {
                Ok(()) => {
                    let at = self.clock.now();
                    migrations.with_conn(|conn, path| outbox::delivered(conn, path, row.id, at))?;
                    pass.delivered += 1;
                    tracing::info!(
                        "migration {}: {} notice {} delivered to {}",
                        row.migration_id,
                        row.notice.event,
                        row.notice.id,
                        row.label
                    );
                }
                Err(error) => {
                    let at = self.clock.now();
                    let attempts = row.attempts + 1;
                    let next = backoff_from(at, attempts);
                    migrations.with_conn(|conn, path| {
                        outbox::failed(conn, path, row.id, at, &error, next)
                    })?;
                    pass.failed += 1;
                    held.insert(key);
                    tracing::warn!(
                        "migration {}: notification {} to {}: attempt {attempts} failed: {error}; next try at {next}",
                        row.migration_id,
                        row.notice.id,
                        row.label
                    );
                }
            }
        }
        Ok(())
    }

    /// Runs passes on a thread of its own until stopped.
    pub fn spawn(self) -> std::io::Result<WorkerHandle> {
        let signal = Arc::new((Mutex::new(false), Condvar::new()));
        let theirs = Arc::clone(&signal);
        let thread = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || self.run(&theirs))?;
        Ok(WorkerHandle {
            signal,
            thread: Some(thread),
        })
    }

    /// The loop of [`Worker::spawn`].
    fn run(&self, signal: &(Mutex<bool>, Condvar)) {
        let mut migrations: Option<Migrations> = None;
        // The last error logged: a store that stays broken is said once.
        let mut said = String::new();
        let mut say = |error: Option<String>| match error {
            Some(error) if error != said => {
                tracing::error!("notifications: {error}");
                said = error;
            }
            Some(_) => {}
            None => said.clear(),
        };
        loop {
            if migrations.is_none() {
                match Migrations::open(&self.store) {
                    Ok(m) => migrations = Some(m),
                    Err(e) => say(Some(format!("cannot open the store: {e}"))),
                }
            }
            if let Some(m) = &migrations {
                say(self.pass(m).err().map(|e| e.to_string()));
            }
            let (lock, wake) = signal;
            let stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
            if *stopped {
                return;
            }
            let (stopped, _) = wake
                .wait_timeout(stopped, self.poll)
                .unwrap_or_else(|e| e.into_inner());
            if *stopped {
                return;
            }
        }
    }
}

impl WorkerHandle {
    /// Stops the worker after the attempt under way and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    /// Sets the flag and joins.
    fn halt(&mut self) {
        let (lock, wake) = &*self.signal;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// When attempt `attempts + 1` is due after a failure at `at`: 2^(n-1)
/// seconds (at most [`MAX_BACKOFF`]), between half and all of it.
pub fn backoff_from(at: Timestamp, attempts: u32) -> Timestamp {
    let full_ms = 1000u64 << attempts.saturating_sub(1).min(20);
    let full_ms = full_ms.min(MAX_BACKOFF * 1000);
    let ms = full_ms / 2 + fastrand::u64(0..=full_ms / 2);
    at.checked_add(jiff::SignedDuration::from_millis(
        i64::try_from(ms).unwrap_or(i64::MAX),
    ))
    .unwrap_or(Timestamp::MAX)
}

/// Every notice of migration `id` and where it stands.
pub fn deliveries(migrations: &Migrations, id: i64) -> Result<Vec<Delivery>, RunnerError> {
    migrations.with_conn(|conn, path| outbox::of(conn, path, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_a_second_to_fifteen_minutes_with_jitter() {
        let at: Timestamp = "2026-03-01T00:00:00Z".parse().unwrap();
        for (attempts, full_ms) in [
            (1, 1_000),
            (2, 2_000),
            (3, 4_000),
            (11, 900_000),
            (40, 900_000),
        ] {
            for _ in 0..50 {
                let ms = backoff_from(at, attempts).duration_since(at).as_millis();
                assert!(
                    (full_ms / 2..=full_ms).contains(&ms),
                    "attempt {attempts}: expected between {} and {full_ms} ms, saw {ms}",
                    full_ms / 2
                );
            }
        }
    }
}
