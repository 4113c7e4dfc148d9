//! Who runs a migration right now: one process at a time. `cutover migrate
//! run ID` holds a migration's lease for as long as it runs; the scheduler
//! of `cutover serve` takes it for each tick and leaves alone a migration
//! whose lease someone else holds.
//!
//! ```text
//!  STORE.migration-ID.lock ──flock(LOCK_EX | LOCK_NB)──▶ Lease (released on drop, or when the process dies)
//! ```
//!
//! The kernel releases an flock when its holder dies, so a crashed runner
//! never leaves a stale lease behind.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A held lease on one migration; released on drop.
#[derive(Debug)]
pub struct Lease {
    /// The locked file (the lock lives as long as it is open).
    _file: File,
}

/// The lock file of migration `id` beside the store file.
pub(crate) fn lock_path(store: &Path, id: i64) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".migration-{id}.lock"));
    store.with_file_name(name)
}

impl Lease {
    /// Takes the lease of migration `id` if nobody holds it; `Ok(None)` when
    /// another process (or handle) does.
    pub fn try_take(store: &Path, id: i64) -> std::io::Result<Option<Lease>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path(store, id))?;
        // SAFETY: flock on a file descriptor we own and keep open; no memory is shared.
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if taken == 0 {
            return Ok(Some(Lease { _file: file }));
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(error)
        }
    }
}
