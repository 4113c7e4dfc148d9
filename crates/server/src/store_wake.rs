//! The reload watcher's wake-up: inotify on the store's folder, so a
//! commit by any process (`cutover record`, `zone import`, another
//! `serve`'s API) wakes the watcher at once instead of at its next poll.
//!
//! ```text
//!  writer commits ──write(2) to STORE-wal (or STORE)──▶ kernel: IN_MODIFY / IN_CLOSE_WRITE
//!  watcher ──poll(inotify fd, interval)──▶ woken: check the generation now, and again
//!                                          after 1, 2, 4 … 64 ms while it has not moved
//!                                          (at once, and from 1 ms again, on each new write)
//!          └── timeout (no event, or no inotify): check, as before
//! ```
//!
//! Why inotify, and why the re-checks: SQLite in WAL mode writes a
//! commit's frames to `STORE-wal`, syncs them, and only then publishes the
//! commit in `STORE-shm` — a memory map, which inotify does not see. So the
//! event can come a moment before the commit is visible to readers; the
//! short re-checks cover the sync (a writer that exits also closes the
//! file: IN_CLOSE_WRITE after its last commit). Polling SQLite's
//! `data_version` would still be polling, and a wake-up sent over the
//! control socket would miss writers that do not know serve is running.
//! The poll interval stays as the fallback: inotify may be missing (a
//! network filesystem, a full watch table), and then nothing changes.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// The pauses between re-checks after a wake-up whose commit was not
/// visible yet (about 127 ms in all); a new write ends a pause early and
/// starts them again.
pub const RECHECKS: [Duration; 7] = [
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(4),
    Duration::from_millis(8),
    Duration::from_millis(16),
    Duration::from_millis(32),
    Duration::from_millis(64),
];

impl StoreWake {
    /// After a wake-up: asks `moved` now, then after each pause of
    /// [`RECHECKS`] — at once when the store's files are written again,
    /// and from the first pause on — until it says yes; whether it did.
    pub fn settle(&self, mut moved: impl FnMut() -> bool) -> bool {
        if moved() {
            return true;
        }
        let mut next = 0;
        while let Some(pause) = RECHECKS.get(next) {
            next = match self.wait(*pause) {
                true => 0,
                false => next + 1,
            };
            if moved() {
                return true;
            }
        }
        false
    }
}

/// An inotify watch on the store's folder, for its file and `-wal`.
pub struct StoreWake {
    /// The inotify instance (non-blocking).
    fd: OwnedFd,
    /// The store file's name and its `-wal`'s, the events that count.
    names: [OsString; 2],
}

impl StoreWake {
    /// Watches the folder of the store at `path`.
    pub fn new(path: &Path) -> std::io::Result<StoreWake> {
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other("the store path names no file"))?
            .to_os_string();
        let mut wal = name.clone();
        wal.push("-wal");
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::other("the store's folder has a NUL in its name"))?;
        // SAFETY: inotify_init1 takes flags only; a non-negative result is a
        // new descriptor owned here.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mask = libc::IN_MODIFY | libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_CREATE;
        // SAFETY: the descriptor is open and `dir` is a NUL-terminated path.
        let watch = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), dir.as_ptr(), mask) };
        if watch < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(StoreWake {
            fd,
            names: [name, wal],
        })
    }

    /// Waits up to `timeout` for a write to the store's files; true when
    /// one came (every pending event is read), false at the timeout.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut poll = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, for the length given.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready <= 0 {
            return false;
        }
        self.drain()
    }

    /// Reads every pending event; true when one names the store's files.
    fn drain(&self) -> bool {
        let mut hit = false;
        let mut buffer = [0u8; 4096];
        loop {
            // SAFETY: reads into a buffer of the length given.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                )
            };
            if n <= 0 {
                return hit;
            }
            let mut at = 0usize;
            let n = n as usize;
            let header = std::mem::size_of::<libc::inotify_event>();
            while at + header <= n {
                // SAFETY: the kernel wrote a whole event header at `at`;
                // read unaligned, the buffer being bytes.
                let event: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buffer.as_ptr().add(at).cast()) };
                let name_len = event.len as usize;
                let name = &buffer[at + header..(at + header + name_len).min(n)];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                if self.names.iter().any(|n| n.as_bytes() == name) {
                    hit = true;
                }
                at += header + name_len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_by_another_handle_wakes_the_watcher_and_other_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.db");
        let store = cutover_store::Store::open(&path).unwrap();
        let wake = StoreWake::new(&path).unwrap();
        let before = store.generation().unwrap();
        // Another file of the folder is no reason to wake.
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        assert!(
            !wake.wait(Duration::from_millis(200)),
            "a write to another file woke the watcher"
        );
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let other = cutover_store::Store::open(&path).unwrap();
            let zone = cutover_zone::zonefile::parse_str(
                "$ORIGIN w.test.\n@ 60 IN SOA ns hm 1 60 60 60 60\n@ 60 IN NS ns\nns 60 IN A 192.0.2.1\n",
                "w.test",
                None,
            )
            .unwrap()
            .zone;
            other.create_zone(&zone, "test").unwrap();
        });
        // Woken by the commit, long before the 30 s fallback: the loop of
        // the watcher, asserting every wake-up came from an event.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(wake.wait(left), "no wake-up within 30 s of the commit");
            if wake.settle(|| store.generation().unwrap() != before) {
                break;
            }
        }
        writer.join().unwrap();
    }
}
