//! Who runs a migration right now: one process at a time. `cutover migrate
//! run ID` holds a migration's lease for as long as it runs; the scheduler
//! of `cutover serve` takes it for each tick and leaves alone a migration
//! whose lease someone else holds.
//!
//! ```text
//!  STORE.migration-ID.lock ──try_lock (flock LOCK_EX|LOCK_NB)──▶ Lease (released on drop, or when the process dies)
//!  the migration is final ──Lease::retire──▶ the file removed while its lock is held
//!  cutover serve starts ──sweep──▶ the files of final (or unknown) migrations removed, each under its lock
//! ```
//!
//! The kernel releases an flock when its holder dies, so a crashed runner
//! never leaves a stale lease behind; it leaves the file, which is removed
//! once the migration is final (by whoever holds the lease then, or by the
//! sweep when `serve` starts).
//!
//! The lock is std's `File::try_lock` (flock(2) on Linux and the BSDs,
//! LockFileEx on Windows), as for cutover-mail's spool lock: what the fs4
//! and fd-lock crates wrap, without a crate.
//!
//! A lock file is only ever removed by the holder of its lock, and a taker
//! checks after locking that the path still names the file it locked: a
//! taker that opened the file just before it was removed would otherwise
//! hold a lock on a file nobody else can open any more, while the next
//! taker makes a new one and locks that too.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use cutover_migrate::Migrations;

/// A held lease on one migration; released on drop.
#[derive(Debug)]
pub struct Lease {
    /// The locked file (the lock lives as long as it is open).
    _file: File,
    /// Where it is.
    path: PathBuf,
}

/// How many times a taker opens the file again after finding it removed
/// under its lock (each time, someone retired the lease in between).
const REOPENS: usize = 8;

/// The lock file of migration `id` beside the store file.
pub(crate) fn lock_path(store: &Path, id: i64) -> PathBuf {
    let (prefix, suffix) = lock_name(store);
    let mut name = prefix;
    name.push(format!("{id}{suffix}"));
    store.with_file_name(name)
}

/// The name of every migration's lock file, before and after the id.
fn lock_name(store: &Path) -> (std::ffi::OsString, &'static str) {
    let mut prefix = store.file_name().unwrap_or_default().to_os_string();
    prefix.push(".migration-");
    (prefix, ".lock")
}

impl Lease {
    /// Takes the lease of migration `id` if nobody holds it; `Ok(None)` when
    /// another process (or handle) does.
    pub fn try_take(store: &Path, id: i64) -> std::io::Result<Option<Lease>> {
        let path = lock_path(store, id);
        for _ in 0..REOPENS {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(error)) => return Err(error),
            }
            if names(&path, &file)? {
                return Ok(Some(Lease { _file: file, path }));
            }
        }
        Err(std::io::Error::other(format!(
            "{} was removed under its lock {REOPENS} times in a row",
            path.display()
        )))
    }

    /// Removes the lock file, then lets the lease go: for a migration that
    /// is final, which no runner will take again.
    pub fn retire(self) -> std::io::Result<()> {
        std::fs::remove_file(&self.path)
    }
}

/// True when `path` names `file` (the same inode on the same device).
fn names(path: &Path, file: &File) -> std::io::Result<bool> {
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Removes the lock file of migration `id` when nobody holds its lease;
/// true when it did. For a migration that just became final.
pub fn retire_if_free(store: &Path, id: i64) -> std::io::Result<bool> {
    match Lease::try_take(store, id)? {
        Some(lease) => lease.retire().map(|()| true),
        None => Ok(false),
    }
}

/// Removes the lock files beside the store of the migrations `gone` says
/// are final or unknown, each under its lease (one held elsewhere is left
/// alone); returns how many it removed.
pub fn sweep(store: &Path, gone: impl Fn(i64) -> bool) -> std::io::Result<usize> {
    let (prefix, suffix) = lock_name(store);
    let prefix = prefix.to_string_lossy().into_owned();
    let directory = match store.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(directory)? {
        let name = entry?.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|name| name.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(suffix))
            .and_then(|id| id.parse::<i64>().ok())
        else {
            continue;
        };
        if gone(id) && retire_if_free(store, id)? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// At the start of `cutover serve`: [`sweep`] the lock files of the
/// migrations of the store that are final or unknown; what it did, or
/// could not do, is logged (a file left is only untidy).
pub fn sweep_finished(store: &Path, migrations: &Migrations) {
    let going: BTreeSet<i64> = match migrations.list() {
        Ok(all) => all
            .iter()
            .filter(|s| !s.state.is_final())
            .map(|s| s.id)
            .collect(),
        Err(error) => {
            tracing::warn!("cannot list the migrations to tidy their lock files: {error}");
            return;
        }
    };
    match sweep(store, |id| !going.contains(&id)) {
        Ok(0) => {}
        Ok(removed) => tracing::info!(
            "removed {removed} lock file(s) of finished migrations beside {}",
            store.display()
        ),
        Err(error) => tracing::warn!(
            "cannot tidy the lock files of finished migrations beside {}: {error}",
            store.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_free_again_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("cutover.db");
        let held = Lease::try_take(&store, 3).unwrap().expect("free at first");
        assert!(Lease::try_take(&store, 3).unwrap().is_none(), "held");
        assert!(
            Lease::try_take(&store, 4).unwrap().is_some(),
            "per migration"
        );
        drop(held);
        assert!(Lease::try_take(&store, 3).unwrap().is_some(), "released");
    }

    #[test]
    fn a_lock_file_goes_only_under_its_lock_and_a_late_taker_takes_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("cutover.db");
        let path = lock_path(&store, 7);
        // A taker that opened the file just before it was retired...
        let stale = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        let lease = Lease::try_take(&store, 7).unwrap().unwrap();
        assert!(!retire_if_free(&store, 7).unwrap(), "held: left alone");
        lease.retire().unwrap();
        assert!(!path.exists(), "retired");
        // ...locks a file nobody can open any more, and sees that it is not
        // the one the path names (try_take then opens the path again)...
        stale.try_lock().unwrap();
        assert!(!names(&path, &stale).unwrap());
        // ...while the next taker holds the lease all the same.
        let lease = Lease::try_take(&store, 7).unwrap();
        assert!(lease.is_some() && path.exists(), "a new file, locked");
        assert!(Lease::try_take(&store, 7).unwrap().is_none());
    }

    #[test]
    fn the_sweep_removes_the_files_of_final_migrations_nobody_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("cutover.db");
        for id in [1, 2, 3] {
            drop(Lease::try_take(&store, id).unwrap());
        }
        std::fs::write(dir.path().join("cutover.db.migration-x.lock"), "").unwrap();
        std::fs::write(dir.path().join("other.db.migration-1.lock"), "").unwrap();
        let held = Lease::try_take(&store, 2).unwrap().unwrap();
        // 1 and 2 are final; 3 is not.
        let removed = sweep(&store, |id| id != 3).unwrap();
        assert_eq!(removed, 1, "2 is held, 3 goes on");
        assert!(!lock_path(&store, 1).exists());
        assert!(lock_path(&store, 2).exists() && lock_path(&store, 3).exists());
        assert!(dir.path().join("cutover.db.migration-x.lock").exists());
        assert!(dir.path().join("other.db.migration-1.lock").exists());
        drop(held);
        assert_eq!(sweep(&store, |id| id != 3).unwrap(), 1);
        assert!(!lock_path(&store, 2).exists());
    }
}
