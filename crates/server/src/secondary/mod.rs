//! serve as a secondary: the zones whose `[[zone]]` names a `primary` are
//! transferred from it (AXFR first, IXFR after) on its NOTIFY and on the
//! SOA's timers, checked, and stored as new versions, which the reload
//! watcher publishes like any other (and NOTIFYs onward: a secondary can
//! be the primary of another). One thread of its own, off the answer path.
//!
//! ```text
//!  start: the stored version is served at once (reload), the expire timer runs from the
//!         last successful check (stored: a restart does not extend it)
//!  refresh thread ◀──NOTIFY (primary::notify_in → Secondaries::notified)── now
//!     due zone ──refresh::refresh (SOA?, IXFR │ AXFR, ZoneSnapshot::check)──▶ Store::store_transferred
//!        ├─ ok ──▶ next at refresh; expire pushed back; expired → answered again
//!        └─ failed (logged with the reason) ──▶ next at retry; the stored version stays
//!     expire passed ──▶ Catalog::with_expired (under the served lock) ──▶ SERVFAIL
//!  store generation moved ──reload watcher──▶ published (Catalog::with_zone clears expired) ──▶ NOTIFY out
//! ```

pub mod handle;
pub mod refresh;
pub mod timers;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use cutover_nameserver::Catalog;
use cutover_store::{Held, Store};
use cutover_zone::{Name, Zone};

pub use self::handle::{NotifyVerdict, Secondaries, Upstream};
use self::refresh::Refreshed;
use self::timers::{SoaTimers, Timers};
use crate::primary::Served;

/// The longest the thread sleeps before it looks at its stop flag.
const TICK: Duration = Duration::from_millis(200);

/// The running refresh thread.
pub struct RefreshThread {
    /// Set to stop it.
    stop: Arc<AtomicBool>,
    /// The thread.
    thread: Option<JoinHandle<()>>,
}

impl RefreshThread {
    /// Starts the refresh thread for `secondaries` on the store at
    /// `store_path`, NOTIFYs coming through `notifies`; expiry is published
    /// into `catalog` under the `served` lock.
    pub fn start(
        secondaries: Secondaries,
        notifies: Receiver<Name>,
        store_path: &Path,
        catalog: Arc<ArcSwap<Catalog>>,
        served: Served,
    ) -> anyhow::Result<RefreshThread> {
        let store = Store::open(store_path)
            .with_context(|| format!("cannot open the store {}", store_path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("secondary".into())
            .spawn(move || {
                let mut zones = Zones {
                    secondaries,
                    store,
                    catalog,
                    served,
                    timers: BTreeMap::new(),
                    held: BTreeMap::new(),
                    failures: BTreeMap::new(),
                };
                zones.run(&notifies, &stopping);
            })
            .context("cannot start the secondary's refresh thread")?;
        Ok(RefreshThread {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for RefreshThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread's state.
struct Zones {
    /// The secondary zones.
    secondaries: Secondaries,
    /// Its own handle on the store.
    store: Store,
    /// What the server answers from.
    catalog: Arc<ArcSwap<Catalog>>,
    /// The serials published (its lock orders writers of the catalog).
    served: Served,
    /// Each zone's schedule.
    timers: BTreeMap<Name, Timers>,
    /// Each zone's stored version as last read, with the store generation
    /// it was read at (read again once that moved).
    held: BTreeMap<Name, Held>,
    /// Each zone's last failure and how many times in a row it came, so a
    /// primary down for long is logged at 1, 2, 4, 8… tries, not every try.
    failures: BTreeMap<Name, (String, u64)>,
}

impl Zones {
    /// Until `stop` is set: refresh what is due, take NOTIFYs, expire.
    fn run(&mut self, notifies: &Receiver<Name>, stop: &AtomicBool) {
        let now = Instant::now();
        let secondaries = self.secondaries.clone();
        for (origin, upstream) in secondaries.zones() {
            let soa = self.current(origin).as_deref().and_then(SoaTimers::of);
            // The expire counts from the last successful check, stored.
            let since = match self.store.secondary_checked_at(origin) {
                Ok(at) => at.map(|at| {
                    let ago = jiff::Timestamp::now().as_second() - at.as_second();
                    Duration::from_secs(ago.max(0) as u64)
                }),
                Err(error) => {
                    tracing::warn!(zone = %origin, "secondary: cannot read when the primary was last checked, the expire counts from now: {error}");
                    None
                }
            };
            let ago = match since {
                Some(since) => format!("the last successful check was {} s ago", since.as_secs()),
                None => "no successful check is recorded".to_string(),
            };
            match soa {
                Some(soa) => tracing::info!(zone = %origin,
                    "secondary: serving the stored version, expires in {} s without a successful check of {} ({ago})",
                    soa.expire.saturating_sub(since.unwrap_or_default()).as_secs(), list(&upstream.primaries)),
                None => tracing::info!(zone = %origin,
                    "secondary: nothing stored yet, not served until transferred from {}",
                    list(&upstream.primaries)),
            }
            self.timers.insert(
                origin.clone(),
                Timers::start(now, soa, upstream.refresh_min, since),
            );
        }
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let due: Vec<Name> = self
                .timers
                .iter()
                .filter(|(_, t)| t.next_check <= now)
                .map(|(origin, _)| origin.clone())
                .collect();
            for origin in due {
                self.refresh(&origin);
            }
            let now = Instant::now();
            for (origin, timers) in &mut self.timers {
                if timers.expire_due(now) {
                    tracing::error!(zone = %origin, "secondary: EXPIRED: no successful check of its primary within the SOA expire; answered SERVFAIL until a transfer succeeds");
                    set_expired(&self.catalog, &self.served, origin, true);
                }
            }
            let wait = self
                .timers
                .values()
                .map(|t| t.next_check.saturating_duration_since(now))
                .min()
                .unwrap_or(TICK)
                .min(TICK);
            match notifies.recv_timeout(wait) {
                Ok(origin) => {
                    if let Some(timers) = self.timers.get_mut(&origin) {
                        tracing::info!(zone = %origin, "secondary: NOTIFY from the primary: checking now");
                        timers.notified(Instant::now());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        }
    }

    /// The version of `origin` stored, if any: the one held while the
    /// store's generation has not moved, else read again.
    fn current(&mut self, origin: &Name) -> Option<Arc<Zone>> {
        let generation = self.store.generation();
        if let (Ok(generation), Some(held)) = (&generation, self.held.get(origin)) {
            if held.generation == *generation {
                return Some(Arc::clone(&held.zone));
            }
        }
        match self.store.held_zone(origin) {
            Ok(Some(held)) => {
                let zone = Arc::clone(&held.zone);
                self.held.insert(origin.clone(), held);
                Some(zone)
            }
            Ok(None) => {
                self.held.remove(origin);
                None
            }
            Err(error) => {
                tracing::error!(zone = %origin, "secondary: cannot read the stored zone: {error}");
                None
            }
        }
    }

    /// One refresh of `origin`, its outcome logged and its timers moved.
    fn refresh(&mut self, origin: &Name) {
        let Some(upstream) = self.secondaries.upstream(origin).cloned() else {
            return;
        };
        let started = Instant::now();
        let current = self.current(origin);
        let outcome = refresh::refresh(&self.store, origin, current.as_ref(), &upstream);
        let soa = self.current(origin).as_deref().and_then(SoaTimers::of);
        let now = Instant::now();
        let Some(timers) = self.timers.get_mut(origin) else {
            return;
        };
        match (outcome, soa) {
            (Ok(done), Some(soa)) => {
                match &done {
                    Refreshed::UpToDate { ours, theirs } => tracing::debug!(zone = %origin,
                        "secondary: up to date at serial {ours} (the primary has {theirs})"),
                    Refreshed::Stored {
                        from,
                        to,
                        how,
                        primary,
                    } => tracing::info!(zone = %origin,
                        took = ?started.elapsed(),
                        "secondary: {how} in from {primary}: serial {} → {to}, stored",
                        from.map_or("none".to_string(), |s| s.to_string())),
                }
                if let Err(error) = self.store.secondary_checked(origin, jiff::Timestamp::now()) {
                    tracing::warn!(zone = %origin, "secondary: cannot record the successful check (a restart would count the expire from then): {error}");
                }
                if timers.succeeded(now, soa) {
                    tracing::info!(zone = %origin, "secondary: answered again after a successful check");
                    set_expired(&self.catalog, &self.served, origin, false);
                }
            }
            (Ok(_), None) => {
                tracing::error!(zone = %origin, "secondary: the refresh succeeded but no zone is stored");
                timers.failed(now, None);
            }
            (Err(error), soa) => {
                timers.failed(now, soa);
                let reason = format!("{error:#}");
                let next = timers.next_check.saturating_duration_since(now).as_secs();
                let entry = self
                    .failures
                    .entry(origin.clone())
                    .or_insert_with(|| (String::new(), 0));
                if entry.0 == reason {
                    entry.1 += 1;
                } else {
                    *entry = (reason.clone(), 1);
                }
                if entry.1.is_power_of_two() {
                    let times = match entry.1 {
                        1 => String::new(),
                        n => format!(" ({n} times in a row)"),
                    };
                    tracing::warn!(zone = %origin,
                        "secondary: refresh FAILED{times}, nothing stored, the stored version stays: {reason}; next try in {next} s");
                }
                return;
            }
        }
        self.failures.remove(origin);
    }
}

/// Marks `origin` expired (or not) in the published catalog, under the
/// `served` lock every publisher takes.
fn set_expired(catalog: &ArcSwap<Catalog>, served: &Served, origin: &Name, expired: bool) {
    let _served = served.lock().unwrap_or_else(PoisonError::into_inner);
    let next = catalog.load().with_expired(origin, expired);
    catalog.store(Arc::new(next));
}

/// Addresses as a comma-separated list.
fn list(addrs: &[std::net::SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
