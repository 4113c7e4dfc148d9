//! The scheduler: runs the due steps of every active migration, in
//! `cutover serve` (a thread of its own, so the nameserver never waits on
//! it) and in `cutover migrate run ID` (one migration, in the foreground).
//!
//! ```text
//!  every ≤ 1 s:  Migrations::active() ──▶ for each id:
//!                  file text (stored) ──parse──▶ provider (built once per id) + LocatedChecks
//!                    (local probes; the agents of `[verify] locations` through serve's board)
//!                  lease free? (`migrate run ID` holds it) ──▶ Migrations::tick(id, effects) ──▶ due steps run, recorded before and after
//!                  ──▶ log what was done; sleep until the nearest next_due (at most 1 s)
//!  beside it, in serve: the `watch` thread surveys running migrations between steps
//!                  (at most once per verify.interval) for the dashboard's chart
//!  stop flag (serve shuts down) ──▶ the loop ends after the current tick
//!  beside it, a thread of its own: notify::Worker (the files' and the config's [[notify]])
//!  for its whole life: a read lock on STORE.scheduler.lock (`presence`), by which
//!  `migrate start|status|show` tell "serve carries it out" from "nothing runs it"
//! ```
//!
//! The runner is blocking (the probes run on a tokio runtime of their own),
//! which is why it lives on a plain thread and not on serve's runtime.

pub mod crash;
pub mod lease;
pub mod presence;
pub mod watch;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cutover_flush::Settings;
use cutover_migrate::checks::ProbeChecks;
use cutover_migrate::notify;
use cutover_migrate::provider::BuildContext;
use cutover_migrate::runner::StepOutcome;
use cutover_migrate::{Effects, MigrationFile, Migrations, NoMail, State, SystemClock, TickReport};
use cutover_provider::Provider;

use crate::agents::located::LocatedChecks;
use crate::config::mail::MailConfig;
use cutover_migrate::flush::CacheFlusher;

/// What a migration acts on besides its provider: the config's local caches
/// (`[flush]`) and mail relay (`[mail]`), for the flush and mail steps.
#[derive(Clone, Debug, Default)]
pub struct Site {
    /// The caches of the flush step.
    pub flush: Settings,
    /// The relay whose queue the mail steps hold, retarget and release.
    pub mail: Option<MailConfig>,
    /// The other relays of the domain (`[[relay]]`), steered too.
    pub relays: Vec<crate::config::relay::RelayPeer>,
    /// The config's `[[notify]]` targets: told of every migration of the store.
    pub notify: Vec<cutover_migrate::notify::Target>,
    /// serve's agents, for the checks from other locations (`None`
    /// outside serve: a location other than `local` cannot be asked).
    pub agents: Option<std::sync::Arc<crate::agents::board::Board>>,
}

impl Site {
    /// The site a config file describes (the defaults without one).
    pub fn of(config: Option<&crate::config::Config>) -> Site {
        config.map_or_else(Site::default, |config| Site {
            flush: config.flush.clone(),
            mail: config.mail.clone(),
            relays: config.relay.clone(),
            notify: config.notify_targets.clone(),
            agents: None,
        })
    }
}

/// The longest the scheduler sleeps between looks at the store.
const POLL: Duration = Duration::from_secs(1);

/// How long the scheduler waits before trying again to build the provider
/// of a migration whose provider could not be built.
const RETRY_BUILD: Duration = Duration::from_secs(30);

/// What running one migration needs besides the runner: its provider and checks.
pub struct Wiring {
    /// Where the zone's records live (wrapped by the crash hook when asked).
    provider: Box<dyn Provider>,
    /// DNS verification and service checks, from each location.
    checks: LocatedChecks,
    /// The local caches of the flush step (the config's `[flush]` section).
    flusher: CacheFlusher,
    /// The relays of the mail steps (the config's `[mail]` and
    /// `[[relay]]`s: every one must acknowledge), if any.
    mail: Option<Box<dyn cutover_migrate::MailControl>>,
}

impl Wiring {
    /// The provider, checks and cache flusher for a migration file, with
    /// the embedded provider over the store at `store` and the caches of
    /// the config's `[flush]` section.
    pub fn new(file: &MigrationFile, store: &Path, site: &Site) -> anyhow::Result<Wiring> {
        if site.agents.is_none() && !file.verify.local_only() {
            anyhow::bail!(
                "{} verifies from {} ([verify] locations): only `cutover serve` reaches the agents of other locations, so it is not run here (it would be verified from this machine alone); let serve run it, or list only \"local\"",
                file.name,
                file.verify.remote_locations().join(", ")
            );
        }
        let provider = provider(file, store)?;
        let provider = crash::CrashPoints::from_env().wrap(provider);
        Ok(Wiring {
            provider,
            checks: LocatedChecks::new(ProbeChecks::new(), site.agents.clone()),
            flusher: CacheFlusher {
                settings: site.flush.clone(),
            },
            mail: crate::mail_fleet::migration_mail(site.mail.as_ref(), &site.relays),
        })
    }

    /// The wiring of a stored migration, from the file text it was started with.
    pub fn for_stored(
        migrations: &Migrations,
        id: i64,
        store: &Path,
        site: &Site,
    ) -> anyhow::Result<Wiring> {
        let (name, text) = migrations.file_text(id)?;
        let file = MigrationFile::parse(&text, &name)?;
        Wiring::new(&file, store, site)
    }

    /// The provider.
    pub fn provider(&self) -> &dyn Provider {
        &*self.provider
    }

    /// Runs the due steps of migration `id` on the system clock.
    pub fn tick(&self, migrations: &Migrations, id: i64) -> anyhow::Result<TickReport> {
        let effects = Effects {
            provider: &*self.provider,
            checks: &self.checks,
            flusher: &self.flusher,
            mail: match &self.mail {
                Some(mail) => &**mail,
                None => &NoMail,
            },
            clock: &SystemClock,
        };
        let report = migrations
            .tick(id, &effects)
            .with_context(|| format!("migration {id}"))?;
        crash::CrashPoints::from_env().after_tick(&report);
        Ok(report)
    }
}

/// The provider a migration file names (with several, one that sends each
/// zone to its own); the embedded one over `store`.
pub fn provider(file: &MigrationFile, store: &Path) -> anyhow::Result<Box<dyn Provider>> {
    let context = BuildContext {
        store: Some(store.to_path_buf()),
    };
    // Several providers (a [[zone]] of its own): each zone to its own.
    Ok(cutover_migrate::routed::build_for(file, &context)?)
}

/// The scheduler thread of `cutover serve`; stopped (and joined) on drop.
pub struct Scheduler {
    /// Set to end the loop.
    stop: Arc<AtomicBool>,
    /// The loop.
    thread: Option<std::thread::JoinHandle<()>>,
    /// Says to other processes that a scheduler runs on this store
    /// (released after the loop has ended: fields drop after `drop`).
    _presence: Option<presence::Presence>,
    /// The surveys between steps, for the dashboard's chart (`None`: it
    /// could not start, which stops no migration).
    _watch: Option<watch::Watch>,
    /// The notifications' delivery thread (the files' and the config's
    /// `[[notify]]`), stopped on drop.
    _notices: Option<notify::WorkerHandle>,
}

impl Scheduler {
    /// Starts running the due steps of the migrations in the store at
    /// `store`, flushing the caches and steering the relay of `site` when a migration asks.
    pub fn start(store: &Path, site: &Site) -> anyhow::Result<Scheduler> {
        let migrations = Migrations::open(store)
            .with_context(|| format!("cannot open the migrations in {}", store.display()))?;
        lease::sweep_finished(store, &migrations);
        let presence = match presence::Presence::scheduler(store) {
            Ok(presence) => Some(presence),
            Err(error) => {
                tracing::warn!(
                    "scheduler: cannot hold its lock beside {}: `migrate status` will say nothing runs the migrations: {error}",
                    store.display()
                );
                None
            }
        };
        let watch = watch::Watch::start(store)
            .inspect_err(|error| tracing::warn!("scheduler: no chart of the migrations: {error:#}"))
            .ok();
        // Notifications go out on a thread of their own: a receiver that is
        // slow or down never holds a step up.
        let carried = store.to_path_buf();
        let notices = notify::Worker::new(store, Arc::new(SystemClock))
            .with_serve_targets(site.notify.clone())
            // A migration `migrate run` carries out has its notices sent by it.
            .only_for(move |id| presence::carrier(&carried, id) != presence::Carrier::Run)
            .spawn()
            .map_err(|e| tracing::warn!("notifications: cannot start their thread: {e}"))
            .ok();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let store = store.to_path_buf();
        let site = site.clone();
        let thread = std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(move || run_loop(&migrations, &store, &site, &flag))
            .context("cannot start the scheduler thread")?;
        Ok(Scheduler {
            stop,
            thread: Some(thread),
            _presence: presence,
            _watch: watch,
            _notices: notices,
        })
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The loop: tick every active migration, then sleep until the nearest due
/// step (at most [`POLL`]), until `stop`.
fn run_loop(migrations: &Migrations, store: &Path, site: &Site, stop: &AtomicBool) {
    let mut wirings: BTreeMap<i64, Wiring> = BTreeMap::new();
    // Migrations whose provider could not be built, and when that was last tried.
    let mut unbuildable: BTreeMap<i64, std::time::Instant> = BTreeMap::new();
    while !stop.load(Ordering::SeqCst) {
        let mut sleep = POLL;
        let active = match migrations.active() {
            Ok(active) => active,
            Err(error) => {
                tracing::error!("scheduler: cannot list the migrations: {error}");
                Vec::new()
            }
        };
        wirings.retain(|id, _| active.contains(id));
        for id in active {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = wirings.entry(id) {
                if unbuildable
                    .get(&id)
                    .is_some_and(|at| at.elapsed() < RETRY_BUILD)
                {
                    continue;
                }
                match Wiring::for_stored(migrations, id, store, site) {
                    Ok(wiring) => {
                        unbuildable.remove(&id);
                        slot.insert(wiring);
                    }
                    Err(error) => {
                        tracing::error!(
                            "migration {id}: cannot be run (retrying in {}s): {error:#}",
                            RETRY_BUILD.as_secs()
                        );
                        unbuildable.insert(id, std::time::Instant::now());
                        continue;
                    }
                }
            }
            let Some(wiring) = wirings.get(&id) else {
                continue;
            };
            // `cutover migrate run ID` elsewhere holds the lease: leave it to that.
            let held = match lease::Lease::try_take(store, id) {
                Ok(Some(lease)) => lease,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!("migration {id}: cannot take its lease: {error}");
                    continue;
                }
            };
            match wiring.tick(migrations, id) {
                Ok(report) => {
                    log_report(&report);
                    if report.state.is_final() {
                        if let Err(error) = held.retire() {
                            tracing::warn!("migration {id}: cannot remove its lock file: {error}");
                        }
                    } else if let Some(due) = report.next_due {
                        let left = due.duration_since(jiff::Timestamp::now());
                        let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
                        sleep = sleep.min(left.max(Duration::from_millis(50)));
                    }
                }
                Err(error) => tracing::error!("{error:#}"),
            }
        }
        let until = std::time::Instant::now() + sleep;
        while std::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Logs every step a tick ran (its outcome and why, then its evidence) and
/// where the migration stands, in words.
fn log_report(report: &TickReport) {
    for step in &report.did {
        let outcome = step.outcome.map_or("unfinished", |o| o.as_str());
        let mut said: Vec<String> = step.reason.iter().cloned().collect();
        said.extend(cutover_migrate::words::evidence_lines(&step.evidence));
        match step.outcome {
            Some(StepOutcome::Failed | StepOutcome::Retrying) => {
                tracing::warn!(migration = report.id, step = %step.kind, outcome, "{}", said.join("; "))
            }
            _ => {
                tracing::info!(migration = report.id, step = %step.kind, outcome, "{}", said.join("; "))
            }
        }
    }
    if !report.did.is_empty() {
        let next = report
            .next_due
            .map_or_else(|| "none".to_string(), |t| t.to_string());
        // A wait or a retry is said at info; a migration that stopped or
        // turns back needs the operator: a warning.
        let stopped = matches!(
            report.state,
            State::Paused | State::RollingBack | State::RolledBack | State::Failed | State::Aborted
        );
        let said = report.reason.as_deref().unwrap_or("migration advanced");
        if stopped {
            tracing::warn!(migration = report.id, state = %report.state, next_due = %next, "{said}")
        } else {
            tracing::info!(migration = report.id, state = %report.state, next_due = %next, "{said}")
        }
    }
}
