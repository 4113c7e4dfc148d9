//! The runner's effects on the world, each behind a trait the caller
//! passes in: the time, the DNS and service checks, the local caches, the
//! mail relay. The provider is `cutover_provider::Provider`.
//!
//! ```text
//!  runner ──now()──────────▶ Clock        (SystemClock | ManualClock in tests)
//!         ──survey/service─▶ Checks       (ProbeChecks: cutover-probe | scripted in tests)
//!         ──flush──────────▶ Flusher      (no-op default; `cutover flush` elsewhere)
//!         ──hold/retarget──▶ MailControl  (no-op default; the mail relay elsewhere)
//! ```

use std::net::IpAddr;
use std::sync::Mutex;

use cutover_zone::{Name, RecordType};
use jiff::Timestamp;

use crate::file::{Check, Locations, Verify, LOCAL};
use crate::observe::{CheckResult, Survey};

/// The time source of the runner.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told: tests and time-scaled demos.
#[derive(Debug)]
pub struct ManualClock {
    /// The current time.
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: u64) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = crate::plan::later(*now, secs);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// DNS verification and service checks. Blocking: the real implementation
/// runs the async probes on a runtime of its own, so callers on an async
/// runtime use `spawn_blocking`.
pub trait Checks: Send + Sync {
    /// Asks every authoritative address (`verify.authorities`, or the
    /// zone's NS addresses when empty) for the SOA and each RRset, and
    /// every resolver of `verify.resolvers` for each RRset.
    fn survey(&self, zone: &Name, rrsets: &[(Name, RecordType)], verify: &Verify) -> Survey;

    /// Runs one service check, pinned to `pin`, or through the names (as
    /// a client would, via the first of `verify.resolvers`) when `None`.
    fn service(&self, check: &Check, pin: Option<IpAddr>, verify: &Verify) -> CheckResult;

    /// The locations `verify.locations` names, as this implementation
    /// knows them now: here only `local` can be reached, so `"all"` is
    /// `["local"]` (the control plane's implementation adds its agents').
    fn locations(&self, verify: &Verify) -> Vec<String> {
        match &verify.locations {
            Locations::Listed(listed) => listed.clone(),
            Locations::All => vec![LOCAL.to_string()],
        }
    }

    /// [`survey`](Checks::survey) from each of `locations`, in their
    /// order. Here only `local` is asked: any other location gets a survey
    /// whose problem says no agent can be reached from this process, so
    /// it never counts as agreeing.
    fn surveys_from(
        &self,
        locations: &[String],
        zone: &Name,
        rrsets: &[(Name, RecordType)],
        verify: &Verify,
    ) -> Vec<(String, Survey)> {
        locations
            .iter()
            .map(|location| {
                let survey = if location == LOCAL {
                    self.survey(zone, rrsets, verify)
                } else {
                    Survey {
                        problems: vec![NO_AGENTS_HERE.to_string()],
                        ..Survey::default()
                    }
                };
                (location.clone(), survey)
            })
            .collect()
    }

    /// [`service`](Checks::service) from each of `locations`, in their
    /// order; a location other than `local` fails here, saying why.
    fn services_from(
        &self,
        locations: &[String],
        check: &Check,
        pin: Option<IpAddr>,
        verify: &Verify,
    ) -> Vec<(String, CheckResult)> {
        locations
            .iter()
            .map(|location| {
                let result = if location == LOCAL {
                    self.service(check, pin, verify)
                } else {
                    CheckResult {
                        what: crate::checks::describe_at(check, pin),
                        pinned: pin,
                        ok: false,
                        detail: NO_AGENTS_HERE.to_string(),
                    }
                };
                (location.clone(), result)
            })
            .collect()
    }
}

/// Why a location other than `local` cannot be asked outside `cutover serve`.
pub const NO_AGENTS_HERE: &str = "no agent can be asked from this process: only `cutover serve` sends checks to agents (start the migration through serve)";

/// Empties named local DNS caches.
pub trait Flusher: Send + Sync {
    /// Flushes `names` (or everything) from the cache called `cache`;
    /// returns what was done, in words.
    fn flush(&self, cache: &str, names: &[Name]) -> Result<String, String>;
}

/// The mail relay's controls over one domain's queue.
pub trait MailControl: Send + Sync {
    /// Keeps the domain's mail in the queue instead of delivering it.
    fn hold(&self, domain: &str) -> Result<String, String>;
    /// Delivers the domain's mail to `destination` (`host:port`) from now on.
    fn retarget(&self, domain: &str, destination: &str) -> Result<String, String>;
    /// Lets the domain's held mail go.
    fn release(&self, domain: &str) -> Result<String, String>;
}

/// No local caches to flush.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFlusher;

impl Flusher for NoFlusher {
    fn flush(&self, cache: &str, _names: &[Name]) -> Result<String, String> {
        Err(format!(
            "no way to flush {cache:?} is configured; nothing was flushed"
        ))
    }
}

/// No mail relay: every action fails, saying so (a migration file's
/// `[mail]` with no relay to steer is not done by doing nothing).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMail;

impl MailControl for NoMail {
    fn hold(&self, domain: &str) -> Result<String, String> {
        Err(format!("no mail relay is configured: {domain} not held"))
    }
    fn retarget(&self, domain: &str, destination: &str) -> Result<String, String> {
        Err(format!(
            "no mail relay is configured: {domain} not retargeted to {destination}"
        ))
    }
    fn release(&self, domain: &str) -> Result<String, String> {
        Err(format!(
            "no mail relay is configured: {domain} not released"
        ))
    }
}
