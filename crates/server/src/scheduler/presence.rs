//! Whether anything carries a store's migrations out right now: a started
//! migration does nothing by itself, and a status that counts "3 s ago",
//! "5 min ago"… forever would hide that nothing runs it.
//!
//! ```text
//!  cutover serve (scheduler) ──holds for its lifetime──▶ read lock on STORE.scheduler.lock
//!  cutover migrate run ID    ──holds for its lifetime──▶ read lock on STORE.migration-ID.lock
//!  status / show / start     ──F_OFD_GETLK (asks, takes nothing)──▶ Serve | Run | Nobody
//! ```
//!
//! Why a lock and not a heartbeat row: a lock costs no write (a heartbeat
//! in a `synchronous=FULL` store would fsync every second, forever), and
//! the kernel drops it the moment its holder dies, `kill -9` included, so
//! it never claims a runner that is gone and needs no clock to judge
//! staleness. The locks are open file description (OFD) record locks, not
//! `flock`: only they can be *asked about* (`F_OFD_GETLK`) without being
//! taken, so two status commands asking at once never see each other as a
//! runner. They are independent of the `flock` lease on the same
//! migration file ([`super::lease`]). A lock file that does not exist means
//! nothing runs there (nothing ever did, or the migration is final and its
//! file was removed): asking creates nothing.
//!
//! Hand-written over libc for that one reason: std's `File::lock` family
//! and the fs4 and fd-lock crates take and release locks (flock), and none
//! of them can ask whether a lock is held without taking it.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_migrate::plan::StepKind;
use cutover_migrate::runner::{Phase, Summary};
use cutover_migrate::State;
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

/// A held presence lock; released on drop (or when the process dies).
#[derive(Debug)]
pub struct Presence {
    /// The locked file (the lock lives as long as it is open).
    _file: File,
}

/// Who carries a migration out now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    /// The scheduler of a `cutover serve` on this store.
    Serve,
    /// A `cutover migrate run ID` of this migration.
    Run,
    /// Nothing: the migration waits until one of them starts.
    Nobody,
}

/// How late a step may be while a runner lives before it is called
/// overdue (a tick that runs checks with timeouts can take a while).
const GRACE: Duration = Duration::from_secs(60);

/// The scheduler's lock file beside the store file.
fn scheduler_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".scheduler.lock");
    store.with_file_name(name)
}

/// A whole-file lock request of type `kind` (`F_RDLCK`, `F_WRLCK`).
fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value of it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 0;
    lock
}

impl Presence {
    /// Held by `cutover serve`'s scheduler for as long as it runs.
    pub fn scheduler(store: &Path) -> std::io::Result<Presence> {
        Presence::hold(&scheduler_path(store))
    }

    /// Held by `cutover migrate run ID` for as long as it runs.
    pub fn run(store: &Path, id: i64) -> std::io::Result<Presence> {
        Presence::hold(&super::lease::lock_path(store, id))
    }

    /// A read lock on `path` (created if missing), waiting for none: read
    /// locks never conflict with each other, and nobody takes a write lock.
    fn hold(path: &Path) -> std::io::Result<Presence> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let mut lock = whole_file(libc::F_RDLCK);
        // SAFETY: fcntl on a descriptor we own and keep open, with a valid `flock`.
        let held = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut lock) };
        if held == 0 {
            Ok(Presence { _file: file })
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// True when some open file description holds a lock on `path` (asked,
/// not taken); false when the file does not exist.
fn held(path: &Path) -> std::io::Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    let mut lock = whole_file(libc::F_WRLCK);
    // SAFETY: fcntl on a descriptor we own, with a valid `flock` it fills in.
    let asked = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    if asked != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
}

/// Who carries migration `id` of the store at `store` out now: a `migrate
/// run` of it (serve's scheduler leaves it alone meanwhile), else serve's
/// scheduler, else nothing. A lock that cannot be asked about counts as
/// not held: the answer errs toward "nothing runs it", which sends the
/// operator to look, never toward a runner that is not there.
pub fn carrier(store: &Path, id: i64) -> Carrier {
    if held(&super::lease::lock_path(store, id)).unwrap_or(false) {
        Carrier::Run
    } else if scheduler_runs(store) {
        Carrier::Serve
    } else {
        Carrier::Nobody
    }
}

/// True while the scheduler of a `cutover serve` holds the store at `store`
/// (it carries out every migration no `migrate run` holds).
pub fn scheduler_runs(store: &Path) -> bool {
    held(&scheduler_path(store)).unwrap_or(false)
}

/// What an operator must know about who runs the migration, in words, or
/// `None` when all is as it should be: nothing runs it (due or not), or its
/// step is more than a minute overdue although a runner lives.
pub fn attention(summary: &Summary, carrier: Carrier, now: Timestamp) -> Option<String> {
    let due = summary.next_due?;
    let late = Duration::try_from(now.duration_since(due)).unwrap_or(Duration::ZERO);
    match carrier {
        Carrier::Nobody if due <= now => Some(format!(
            "overdue: nothing is running this migration; start `cutover serve` on this store, or run `cutover migrate run {}`",
            summary.id
        )),
        Carrier::Nobody => Some(format!(
            "nothing is running this migration: its next step will not run until `cutover serve` runs on this store, or `cutover migrate run {}`",
            summary.id
        )),
        Carrier::Serve if late > GRACE => Some(format!(
            "overdue by {}: `cutover serve` runs on this store but has not run it (see its log)",
            cutover_migrate::words::seconds(late)
        )),
        Carrier::Run if late > GRACE => Some(format!(
            "overdue by {}: `cutover migrate run {}` runs but has not run it (see its output)",
            cutover_migrate::words::seconds(late),
            summary.id
        )),
        Carrier::Serve | Carrier::Run => None,
    }
}

/// A migration's summary with who carries it out and what the operator must
/// know: what `cutover migrate list|status --json` print and the API gives
/// (its schema in the OpenAPI document is derived from this type).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = MigrationSummary)]
pub struct Annotated {
    /// Its id.
    pub id: i64,
    /// The zone (the first, when it moves several).
    pub zone: String,
    /// Every zone it moves (`zone` first).
    pub zones: Vec<String>,
    /// The file it came from, as named at start.
    pub file_name: String,
    /// Where it stands.
    pub state: State,
    /// What the records hold.
    pub phase: Phase,
    /// Why it is paused, failed or rolled back.
    pub reason: Option<String>,
    /// The next step, if any.
    pub next_step: Option<StepKind>,
    /// When the next step falls due (`null` when nothing will run by itself).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_due: Option<Timestamp>,
    /// Since when it waits at its approval gate (`null`: it does not).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub awaiting_approval_since: Option<Timestamp>,
    /// When it was started.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Who carries it out now.
    pub carried_by: Carrier,
    /// What the operator must know about who runs it (`null`: all is well).
    pub attention: Option<String>,
}

impl Annotated {
    /// The summary of a migration of the store at `store`, annotated at `now`.
    pub fn new(summary: &Summary, store: &Path, now: Timestamp) -> Annotated {
        let carried_by = carrier(store, summary.id);
        let attention = attention(summary, carried_by, now);
        // Every field by name: a field added to the engine's summary does
        // not compile here until it is given (or left out) on purpose.
        let Summary {
            id,
            zone,
            zones,
            file_name,
            state,
            phase,
            reason,
            next_step,
            next_due,
            awaiting_approval_since,
            created_at,
            updated_at,
        } = summary.clone();
        Annotated {
            id,
            zone,
            zones,
            file_name,
            state,
            phase,
            reason,
            next_step,
            next_due,
            awaiting_approval_since,
            created_at,
            updated_at,
            carried_by,
            attention,
        }
    }
}

/// A summary as JSON with who carries it out (`carried_by`: "serve",
/// "run", "nobody") and what the operator must know (`attention`, or null).
pub fn annotated(summary: &Summary, store: &Path, now: Timestamp) -> serde_json::Value {
    serde_json::to_value(Annotated::new(summary, store, now)).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary of migration `id` due at `due`.
    fn due_at(id: i64, due: Option<Timestamp>) -> Summary {
        Summary {
            id,
            zone: "example.test.".into(),
            zones: vec!["example.test.".into()],
            file_name: "m.toml".into(),
            state: cutover_migrate::State::Waiting,
            phase: cutover_migrate::runner::Phase::Lowered,
            reason: None,
            next_step: None,
            next_due: due,
            awaiting_approval_since: None,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_locks_say_who_runs_and_asking_takes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("cutover.db");
        assert_eq!(carrier(&store, 1), Carrier::Nobody, "no lock file yet");
        assert!(
            !scheduler_path(&store).exists(),
            "asking must not create the lock file"
        );
        let serve = Presence::scheduler(&store).unwrap();
        assert_eq!(carrier(&store, 1), Carrier::Serve);
        // A second scheduler on the store holds its lock too: read locks share.
        let second = Presence::scheduler(&store).unwrap();
        assert_eq!(carrier(&store, 1), Carrier::Serve);
        drop(serve);
        assert_eq!(carrier(&store, 1), Carrier::Serve, "one is left");
        drop(second);
        assert_eq!(
            carrier(&store, 1),
            Carrier::Nobody,
            "released with its holder"
        );
        let run = Presence::run(&store, 1).unwrap();
        assert_eq!(carrier(&store, 1), Carrier::Run);
        assert_eq!(
            carrier(&store, 2),
            Carrier::Nobody,
            "only migration 1 is run"
        );
        // The flock lease on the same file is independent of the presence lock.
        let lease = super::super::lease::Lease::try_take(&store, 1).unwrap();
        assert!(
            lease.is_some(),
            "the lease is free while `run` is between ticks"
        );
        drop(run);
        assert_eq!(carrier(&store, 1), Carrier::Nobody);
    }

    #[test]
    fn attention_names_what_nothing_runs_and_what_is_late() {
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        let ago = |secs: i64| now - jiff::SignedDuration::from_secs(secs);
        let due_now = due_at(7, Some(ago(3)));
        assert!(attention(&due_now, Carrier::Nobody, now).is_some_and(|a| a
            .starts_with("overdue: nothing is running this migration")
            && a.contains("cutover migrate run 7")));
        assert!(
            attention(&due_at(7, Some(ago(-600))), Carrier::Nobody, now)
                .is_some_and(|a| a.starts_with("nothing is running this migration")),
            "not due yet, but nothing will run it"
        );
        assert_eq!(
            attention(&due_now, Carrier::Serve, now),
            None,
            "3 s late with serve: fine"
        );
        assert!(attention(&due_at(7, Some(ago(300))), Carrier::Serve, now)
            .is_some_and(|a| a.starts_with("overdue by 5m: `cutover serve` runs")));
        assert_eq!(
            attention(&due_at(7, None), Carrier::Nobody, now),
            None,
            "nothing due (paused, done): nothing to say"
        );
    }
}
