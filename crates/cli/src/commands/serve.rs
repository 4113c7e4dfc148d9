//! `cutover serve`: the nameserver on the zones in the store, reloading a
//! zone as soon as another process changes it.
//!
//! ```text
//!  store ──for_each_record (rows streamed)──▶ SnapshotBuilder ──▶ Catalog ──ArcSwap──▶ server (UDP/TCP threads)
//!    ▲                                              ▲
//!    └── every 250 ms: generation() changed? ──▶ reload the zones whose serial
//!                                                 changed, publish a new Catalog
//!  SIGTERM / SIGINT ──▶ server shutdown ──▶ exit 0
//!  scheduler thread (crate::scheduler) ──▶ due migration steps, through the store
//!  UPDATE / NOTIFY / AXFR / IXFR / TSIG ──▶ crate::primary (publishes under the same
//!                                           `served` lock; the watcher skips what it published)
//!  every serial change the watcher publishes ──▶ NOTIFY out to the zone's secondaries
//! ```
//!
//! No `Zone` is built for serving: the store's rows go one at a time into
//! the snapshot builder, so a load peaks at about the size of the snapshot.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use cutover_nameserver::server::{spawn, ServerConfig};
use cutover_nameserver::snapshot::SnapshotBuilder;
use cutover_nameserver::{Catalog, ZoneSnapshot};
use cutover_store::{Store, StoreError, ZoneInfo};
use cutover_zone::{Name, Serial};
use tokio::signal::unix::{signal, SignalKind};

use crate::config::Config;
use crate::primary::notifier::Notifier;
use crate::primary::{key_ring, Served, StorePrimary};

/// How often the store's generation is polled.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Runs the server until SIGTERM or SIGINT.
pub fn run(config: &Config, store_override: Option<&Path>) -> anyhow::Result<()> {
    raise_descriptor_limit(config);
    let store_path = store_override.unwrap_or(&config.store);
    let store = Store::open(store_path)
        .with_context(|| format!("cannot open the store {}", store_path.display()))?;
    if let Some(why) = store.read_only() {
        anyhow::bail!(
            "cutover serve needs to write the store {}: it stores every UPDATE, runs the \
             migrations, and SQLite keeps its side files {}-wal and {}-shm beside it; but {why}. \
             Reading commands (zone list, export, show, diff) work on it as it is",
            store_path.display(),
            store_path.display(),
            store_path.display()
        );
    }
    let stored = store.zones()?;
    for policy in &config.zone {
        if !stored.iter().any(|info| info.origin == policy.name) {
            tracing::warn!(zone = %policy.name, "configured zone is not in the store; import it with `cutover zone import`");
        }
    }
    let mut generation = store.generation()?;
    let served: Served = Arc::new(Mutex::new(BTreeMap::new()));
    let catalog = Arc::new(ArcSwap::from_pointee(Catalog::empty()));
    let notifier = Notifier::start(config, &key_ring(config)?)?;
    let mut refused = Refused::new();
    reload_and_notify(&store, &catalog, &served, &mut refused, &notifier);
    let primary = StorePrimary::new(
        config,
        store_path,
        Arc::clone(&catalog),
        Arc::clone(&served),
        notifier.clone(),
    )?;
    let server_config = ServerConfig {
        primary: Some(Arc::new(primary)),
        listen: config.dns.listen.clone(),
        udp_workers: config.dns.udp_workers,
        tcp_idle_timeout: config.dns.tcp_idle_timeout,
        tcp_max_connections: config.dns.tcp_max_connections,
        tcp_max_connections_per_client: config.dns.tcp_max_connections_per_client,
        tcp_pressure_idle_timeout: config.dns.tcp_pressure_idle_timeout,
        rrl: config.dns.rrl.as_ref().map(|rrl| rrl.to_server()),
        ..ServerConfig::default()
    };
    let server =
        spawn(server_config, Arc::clone(&catalog)).context("cannot start the nameserver")?;
    for addr in server.local_addrs() {
        tracing::info!("listening on {addr}");
    }
    // The mail relay (when `[mail]` is configured) runs until this returns.
    let _mail = config
        .mail
        .as_ref()
        .map(crate::mail::MailService::start)
        .transpose()?;
    // The control plane (when `[http]` is configured) serves until this returns.
    let _http = crate::http::start(config, store_path)?;
    // The migration scheduler runs due steps on a thread of its own until this returns.
    let _scheduler =
        crate::scheduler::Scheduler::start(store_path, &crate::scheduler::Site::of(Some(config)))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the watcher runtime")?;
    runtime.block_on(async {
        let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = terminate.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
                _ = interrupt.recv() => { tracing::info!("SIGINT: shutting down"); break; }
                _ = tick.tick() => match store.generation() {
                    Ok(now) if now != generation => {
                        generation = now;
                        reload_and_notify(&store, &catalog, &served, &mut refused, &notifier);
                    }
                    Ok(_) => {}
                    Err(error) => tracing::error!("cannot read the store generation: {error}"),
                },
            }
        }
        anyhow::Ok(())
    })?;
    server.shutdown();
    Ok(())
}

/// Raises the soft limit of open files to the hard limit (every listener
/// has its own budget inside it: `[dns] tcp_max_connections` for DNS over
/// TCP) and logs the figure; a limit that cannot be raised is logged, not
/// fatal.
fn raise_descriptor_limit(config: &Config) {
    let budget = config.dns.tcp_max_connections;
    match descriptor_limit::raise() {
        Ok((before, after)) => {
            if before == after {
                tracing::info!(
                    limit = after,
                    dns_tcp_budget = budget,
                    "open files: the soft limit is already the hard limit, {after}"
                );
            } else {
                tracing::info!(
                    limit = after,
                    dns_tcp_budget = budget,
                    "open files: soft limit raised from {before} to the hard limit, {after}"
                );
            }
            if budget as u64 >= after {
                tracing::warn!(
                    "[dns] tcp_max_connections = {budget} does not fit under the open-file limit \
                     {after}: connections would fail to be accepted (EMFILE) before the budget \
                     is reached; lower it or raise LimitNOFILE"
                );
            }
        }
        Err(error) => tracing::warn!("open files: cannot read or raise the limit: {error}"),
    }
}

/// The process's limit of open files (RLIMIT_NOFILE).
mod descriptor_limit {
    /// Raises the soft limit to the hard limit; returns (before, after).
    pub fn raise() -> std::io::Result<(libc::rlim_t, libc::rlim_t)> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the struct given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let before = limit.rlim_cur;
        // An unlimited hard limit still stops at the kernel's fs.nr_open.
        let target = if limit.rlim_max == libc::RLIM_INFINITY {
            std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(1 << 20)
        } else {
            limit.rlim_max
        };
        if limit.rlim_cur < target {
            limit.rlim_cur = target;
            // SAFETY: setrlimit reads one rlimit from the struct given.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok((before, limit.rlim_cur))
    }
}

/// Reloads under the `served` lock the primary also publishes under, and
/// sends a NOTIFY for every zone whose published serial changed.
fn reload_and_notify(
    store: &Store,
    catalog: &ArcSwap<Catalog>,
    served: &Served,
    refused: &mut Refused,
    notifier: &Notifier,
) {
    let mut served = served.lock().unwrap_or_else(PoisonError::into_inner);
    let before = served.clone();
    reload_checked(store, catalog, &mut served, refused);
    for (origin, serial) in served.iter() {
        if before.get(origin) != Some(serial) {
            notifier.changed(origin);
        }
    }
}

/// The zones whose stored version was refused for serving, as the store
/// listed them then: not tried (nor logged) again until that changes.
pub(crate) type Refused = BTreeMap<Name, ZoneInfo>;

/// Brings the published catalog in line with the store: zones whose serial
/// changed are rebuilt, new ones added, deleted ones dropped. A zone that
/// fails to load or to pass its checks keeps its old snapshot. `served`
/// maps each zone to the serial published.
pub(crate) fn reload(
    store: &Store,
    catalog: &ArcSwap<Catalog>,
    served: &mut BTreeMap<Name, Serial>,
) {
    reload_checked(store, catalog, served, &mut Refused::new());
}

/// [`reload`], remembering in `refused` the versions refused for serving
/// (a stored zone that does not pass its checks: the store was changed by
/// hand), so they are logged once rather than on every change of the store.
fn reload_checked(
    store: &Store,
    catalog: &ArcSwap<Catalog>,
    served: &mut BTreeMap<Name, Serial>,
    refused: &mut Refused,
) {
    let zones = match store.zones() {
        Ok(zones) => zones,
        Err(error) => {
            tracing::error!("cannot list the zones in the store, keeping what is served: {error}");
            return;
        }
    };
    let mut next = Catalog::clone(&catalog.load());
    let mut changed = false;
    for info in &zones {
        let old = served.get(&info.origin).copied();
        if old == Some(info.serial) || refused.get(&info.origin) == Some(info) {
            continue;
        }
        match load(store, info) {
            Ok(Some(snapshot)) => {
                let new = snapshot.serial();
                let (records, bytes) = (snapshot.record_count(), snapshot.heap_size());
                next = next.with_zone(Arc::new(snapshot));
                served.insert(info.origin.clone(), new);
                refused.remove(&info.origin);
                changed = true;
                match old {
                    Some(old) => {
                        tracing::info!(zone = %info.origin, records, bytes, "reloaded, serial {old} → {new}")
                    }
                    None => {
                        tracing::info!(zone = %info.origin, records, bytes, "loaded, serial {new}")
                    }
                }
            }
            Ok(None) => {} // deleted between the listing and the load; the next poll drops it
            Err(error) => {
                refused.insert(info.origin.clone(), info.clone());
                match old {
                    Some(old) => tracing::error!(
                        zone = %info.origin,
                        "the stored version (serial {}) cannot be served, still serving serial {old}: {error:#}",
                        info.serial
                    ),
                    None => tracing::error!(
                        zone = %info.origin,
                        "NOT SERVED: the stored version (serial {}) cannot be served and there is \
                         no earlier good version; fix it (zone export, edit, zone import) or \
                         restore the store: {error:#}",
                        info.serial
                    ),
                }
            }
        }
    }
    refused.retain(|origin, _| zones.iter().any(|info| info.origin == *origin));
    let gone: Vec<Name> = served
        .keys()
        .filter(|origin| !zones.iter().any(|info| info.origin == **origin))
        .cloned()
        .collect();
    for origin in gone {
        next = next.without_zone(&origin);
        served.remove(&origin);
        changed = true;
        tracing::info!(zone = %origin, "removed from the store, no longer served");
    }
    if changed {
        catalog.store(Arc::new(next));
    }
}

/// Builds the snapshot of one zone straight from the store's rows and
/// checks it (`ZoneSnapshot::check`, and the SOA serial against the
/// store's); `None` when the zone was deleted since it was listed. A row
/// the builder refuses or a check that fails (the store was damaged or
/// changed by hand) fails the whole zone.
fn load(store: &Store, info: &ZoneInfo) -> anyhow::Result<Option<ZoneSnapshot>> {
    let records = usize::try_from(info.records).unwrap_or(usize::MAX);
    let mut builder = SnapshotBuilder::with_capacity(&info.origin, records);
    let mut refused = None;
    let streamed = store.for_each_record(&info.origin, |owner, rtype, ttl, rdata| {
        if refused.is_none() {
            refused = builder.add(owner, rtype, ttl, rdata).err();
        }
    });
    let stored_serial = match streamed {
        Ok(serial) => serial,
        Err(StoreError::ZoneNotFound(_)) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    if let Some(error) = refused {
        anyhow::bail!("a stored record does not fit a snapshot: {error}");
    }
    let snapshot = builder.finish();
    snapshot
        .check()
        .context("the stored zone fails its checks")?;
    if snapshot.serial() != stored_serial {
        anyhow::bail!(
            "the zone's SOA says serial {}, but the store recorded serial {stored_serial}",
            snapshot.serial()
        );
    }
    Ok(Some(snapshot))
}
