//! A test hook, documented as such: `CUTOVER_CRASH_AT` makes the process
//! abort (as `kill -9` would end it: no unwinding, no flushing) at a chosen
//! point of a migration, so the "crash anywhere" test can show that a
//! restarted runner finishes the migration with every change made and
//! audited exactly once.
//!
//! ```text
//!  CUTOVER_CRASH_AT=intent:N  abort when the Nth record write is about to reach the provider
//!                             (the runner has recorded its intent; nothing applied yet)
//!  CUTOVER_CRASH_AT=write:N   abort right after the provider applied the Nth write
//!                             (the change is in the zone; the runner has not recorded it)
//!  CUTOVER_CRASH_AT=step:N    abort right after the tick in which the Nth step was recorded done
//! ```
//!
//! N counts from 1 within the process. Unset (the normal case), nothing
//! is wrapped and nothing is counted.

use std::sync::atomic::{AtomicU32, Ordering};

use cutover_migrate::TickReport;
use cutover_provider::{Applied, Change, Provider, ProviderError};
use cutover_zone::{Name, RecordType, Rrset, Zone};

/// The environment variable read.
pub const VARIABLE: &str = "CUTOVER_CRASH_AT";

/// Steps recorded done in this process (for `step:N`).
static STEPS_DONE: AtomicU32 = AtomicU32::new(0);

/// Where to abort, as the environment asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoints {
    /// Never (the variable is unset or unreadable).
    Never,
    /// Before the Nth provider write.
    Intent(u32),
    /// After the Nth provider write.
    Write(u32),
    /// After the tick that completed the Nth step.
    Step(u32),
}

impl CrashPoints {
    /// Reads `CUTOVER_CRASH_AT`.
    pub fn from_env() -> CrashPoints {
        std::env::var(VARIABLE)
            .ok()
            .map(|text| CrashPoints::parse(&text))
            .unwrap_or(CrashPoints::Never)
    }

    /// `intent:N`, `write:N` or `step:N`; anything else is `Never`.
    pub fn parse(text: &str) -> CrashPoints {
        let Some((what, n)) = text.split_once(':') else {
            return CrashPoints::Never;
        };
        let Ok(n) = n.trim().parse::<u32>() else {
            return CrashPoints::Never;
        };
        match what.trim() {
            "intent" => CrashPoints::Intent(n),
            "write" => CrashPoints::Write(n),
            "step" => CrashPoints::Step(n),
            _ => CrashPoints::Never,
        }
    }

    /// The provider, wrapped when a write point is asked for.
    pub fn wrap(self, provider: Box<dyn Provider>) -> Box<dyn Provider> {
        match self {
            CrashPoints::Intent(_) | CrashPoints::Write(_) => Box::new(Crashing {
                inner: provider,
                at: self,
                writes: AtomicU32::new(0),
            }),
            _ => provider,
        }
    }

    /// Counts the steps a tick recorded done and aborts past the Nth.
    pub fn after_tick(self, report: &TickReport) {
        // Steps the migration went past (an attempt that waits or is
        // retried is not a step done).
        let done = report
            .did
            .iter()
            .filter(|s| s.outcome.is_some_and(|o| o.advanced()))
            .count();
        let total = STEPS_DONE.fetch_add(done as u32, Ordering::SeqCst) + done as u32;
        if let CrashPoints::Step(n) = self {
            if done > 0 && total >= n {
                abort(&format!("after step {n} was recorded done"));
            }
        }
    }
}

/// Aborts the process, saying where on stderr first.
fn abort(at: &str) -> ! {
    eprintln!("{VARIABLE}: aborting {at}");
    std::process::abort()
}

/// A provider that aborts the process around its Nth write.
struct Crashing {
    /// The real provider.
    inner: Box<dyn Provider>,
    /// Where to abort.
    at: CrashPoints,
    /// Writes seen.
    writes: AtomicU32,
}

impl Provider for Crashing {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn read(&self, zone: &Name) -> Result<Zone, ProviderError> {
        self.inner.read(zone)
    }

    fn read_rrsets(
        &self,
        zone: &Name,
        keys: &[(Name, RecordType)],
    ) -> Result<Vec<Option<Rrset>>, ProviderError> {
        self.inner.read_rrsets(zone, keys)
    }

    fn apply(&self, zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.at == CrashPoints::Intent(n) {
            abort(&format!("before write {n} reached the provider"));
        }
        let applied = self.inner.apply(zone, changes);
        if self.at == CrashPoints::Write(n) && applied.is_ok() {
            abort(&format!(
                "after write {n} was applied, before it was recorded"
            ));
        }
        applied
    }
}
