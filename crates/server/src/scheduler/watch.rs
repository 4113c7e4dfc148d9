//! The watch: between steps, `cutover serve` asks the servers of every
//! migration that runs by itself (and of one rolled back, until the caches
//! have let go) what they serve for the moving records, at most once per
//! verification interval (`Migrations::watch`), so that the dashboard's
//! chart of old and new values has points while caches let go. A thread of
//! its own, so a silent server delays no step.
//!
//! ```text
//!  every 500 ms: Migrations::watched(now) ──▶ for each id: Migrations::watch(id, ProbeChecks, clock)
//!      ──due? (the last observation is older than verify.interval)──▶ survey ──▶ migration_observation
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cutover_migrate::checks::ProbeChecks;
use cutover_migrate::{Migrations, SystemClock};

/// How often the watch looks for a migration whose survey is due.
const LOOK: Duration = Duration::from_millis(500);

/// The watch thread; stopped (and joined) on drop.
pub struct Watch {
    /// Set to end the loop.
    stop: Arc<AtomicBool>,
    /// The loop.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// Starts watching the migrations of the store at `store`.
    pub fn start(store: &Path) -> anyhow::Result<Watch> {
        let migrations = Migrations::open(store)
            .with_context(|| format!("cannot open the migrations in {}", store.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || run(&migrations, &flag))
            .context("cannot start the watch thread")?;
        Ok(Watch {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The loop: survey every active migration that is due, until `stop`.
fn run(migrations: &Migrations, stop: &AtomicBool) {
    let checks = ProbeChecks::new();
    while !stop.load(Ordering::SeqCst) {
        let active = migrations
            .watched(jiff::Timestamp::now())
            .unwrap_or_else(|error| {
                tracing::debug!("watch: cannot list the migrations: {error}");
                Vec::new()
            });
        for id in active {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if let Err(error) = migrations.watch(id, &checks, &SystemClock) {
                tracing::debug!("migration {id}: watch: {error}");
            }
        }
        std::thread::sleep(LOOK);
    }
}
