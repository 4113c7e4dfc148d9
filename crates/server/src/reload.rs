//! The reload watcher of `cutover serve`: the published catalog follows
//! the store, zone by zone, and a version that fails its checks is never
//! served (the last good one stays).
//!
//! ```text
//!  store ──journal since the serial served──▶ served snapshot patched ──check_at──┐
//!    │     (small change; O(change))                                            ├─▶ Catalog ──ArcSwap──▶ answer path
//!    └──for_each_record (rows streamed)──▶ SnapshotBuilder ──check───────────────┘
//!          (new zone, big change, cut moved, compaction due; O(zone))
//!    ▲
//!    └── woken (inotify) or every 250 ms: generation() changed? ──▶ reload the zones
//!                                         whose serial changed, publish a new Catalog
//!  every serial change published ──▶ NOTIFY out to the zone's secondaries
//! ```
//!
//! A change written by another process (`cutover record`, the API of this
//! or another `serve`, a secondary's transfer) is read back from the
//! store's journal — the diffs since the serial served — and patched into
//! the served snapshot (`ZoneSnapshot::patched_with_diffs`), which is
//! checked at the names the diffs touch. Otherwise no `Zone` is built for
//! serving: the store's rows go one at a time into the snapshot builder, so
//! a load peaks at about the size of the snapshot.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use cutover_nameserver::snapshot::SnapshotBuilder;
use cutover_nameserver::{Catalog, ZoneSnapshot};
use cutover_store::{Store, StoreError, ZoneInfo};
use cutover_zone::rdata::push_name;
use cutover_zone::{Name, Serial};

use crate::primary::notifier::Notifier;
use crate::primary::Served;

/// How often the store's generation is polled.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Reloads under the `served` lock the primary also publishes under, and
/// sends a NOTIFY for every zone whose published serial changed.
pub fn reload_and_notify(
    store: &Store,
    catalog: &ArcSwap<Catalog>,
    served: &Served,
    refused: &mut Refused,
    notifier: &Notifier,
) {
    let mut served = served.lock().unwrap_or_else(PoisonError::into_inner);
    let before = served.clone();
    let built_whole = reload_checked(store, catalog, &mut served, refused);
    for (origin, serial) in served.iter() {
        if before.get(origin) != Some(serial) {
            notifier.changed(origin);
        }
    }
    drop(served);
    if built_whole {
        give_back_freed_memory();
    }
}

/// The zones whose stored version was refused for serving, as the store
/// listed them then: not tried (nor logged) again until that changes.
pub type Refused = BTreeMap<Name, ZoneInfo>;

/// Brings the published catalog in line with the store: zones whose serial
/// changed are rebuilt, new ones added, deleted ones dropped. A zone that
/// fails to load or to pass its checks keeps its old snapshot. `served`
/// maps each zone to the serial published.
pub fn reload(store: &Store, catalog: &ArcSwap<Catalog>, served: &mut BTreeMap<Name, Serial>) {
    if reload_checked(store, catalog, served, &mut Refused::new()) {
        give_back_freed_memory();
    }
}

/// [`reload`], remembering in `refused` the versions refused for serving
/// (a stored zone that does not pass its checks: the store was changed by
/// hand), so they are logged once rather than on every change of the store.
/// True when a zone was loaded whole (not patched).
fn reload_checked(
    store: &Store,
    catalog: &ArcSwap<Catalog>,
    served: &mut BTreeMap<Name, Serial>,
    refused: &mut Refused,
) -> bool {
    let zones = match store.zones() {
        Ok(zones) => zones,
        Err(error) => {
            tracing::error!("cannot list the zones in the store, keeping what is served: {error}");
            return false;
        }
    };
    let mut next = Catalog::clone(&catalog.load());
    let mut changed = false;
    let mut built_whole = false;
    for info in &zones {
        let old = served.get(&info.origin).copied();
        if old == Some(info.serial) || refused.get(&info.origin) == Some(info) {
            continue;
        }
        let served_now = next.get(&info.origin).cloned();
        let patched = match (old, served_now) {
            (Some(old), Some(snapshot)) if snapshot.serial() == old => {
                patch(store, &snapshot, info)
            }
            _ => Ok(None),
        };
        let loaded = match patched {
            Ok(Some(snapshot)) => Ok(Some(snapshot)),
            Ok(None) => {
                built_whole = true;
                load(store, info)
            }
            Err(error) => Err(error),
        };
        match loaded {
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
    built_whole
}

/// After a zone was loaded whole (its `Zone` read from the store and
/// dropped, the snapshot it replaced dropped once no reader holds it), asks
/// the allocator to return the freed pages to the system: glibc keeps them
/// otherwise, and serve would stay at the high-water mark of the rebuild.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The served snapshot `old` patched with the store's journal since its
/// serial, checked at the names the journal touches; `None` when it is
/// better (or only possible) to load the zone whole: no journal back to
/// the serial served, a change of more than a quarter of the zone, a
/// delegation or DNAME that came or went, an overlay due for compaction.
fn patch(
    store: &Store,
    old: &ZoneSnapshot,
    info: &ZoneInfo,
) -> anyhow::Result<Option<ZoneSnapshot>> {
    let Ok(diffs) = store.journal(&info.origin, old.serial()) else {
        return Ok(None);
    };
    let records: usize = diffs.iter().map(|d| d.removed.len() + d.added.len()).sum();
    let Some(last) = diffs.last() else {
        return Ok(None);
    };
    if records > old.record_count() / 4 + 64 {
        return Ok(None);
    }
    let next = match old.patched_with_diffs(&diffs) {
        Ok(next) => next,
        Err(why) => {
            tracing::debug!(zone = %info.origin, "loaded whole: {why}");
            return Ok(None);
        }
    };
    if next.serial() != last.to {
        return Ok(None);
    }
    let owners: Vec<Vec<u8>> = diffs
        .iter()
        .flat_map(|d| d.removed.iter().chain(&d.added))
        .map(|record| {
            let mut owner = Vec::new();
            push_name(&mut owner, &record.name);
            owner.make_ascii_lowercase();
            owner
        })
        .collect();
    next.check_at(owners.iter().map(|o| &o[..]))
        .context("the stored zone fails its checks")?;
    Ok(Some(next))
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

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_nameserver::{answer, Transport};
    use cutover_zone::rdata::Soa;
    use cutover_zone::{Rdata, Record, RecordType, Zone};
    use std::str::FromStr;

    /// A name from text.
    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    /// A zone of 100 hosts, a delegation with glue and an MX.
    fn zone() -> Zone {
        let mut zone = Zone::new(n("example.test."));
        let soa = Soa {
            mname: n("ns1.example.test."),
            rname: n("h.example.test."),
            serial: 1,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 60,
        };
        let mut add = |name: &str, rdata: Rdata| {
            zone.add(Record {
                name: n(name),
                ttl: 300,
                rdata,
            })
            .unwrap();
        };
        add("example.test.", Rdata::soa(&soa));
        add(
            "example.test.",
            Rdata::name_only(RecordType::NS, &n("ns1.example.test.")),
        );
        add("ns1.example.test.", Rdata::a([192, 0, 2, 1].into()));
        for i in 0..100u8 {
            add(
                &format!("h{i}.example.test."),
                Rdata::a([10, 0, 0, i].into()),
            );
        }
        zone
    }

    /// The answer to `name` `qtype` from `catalog`.
    fn ask(catalog: &Catalog, name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        push_name(&mut q, &n(name));
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        let mut out = Vec::new();
        assert!(answer(catalog, &q, Transport::Tcp, &mut out));
        out
    }

    #[test]
    fn a_change_in_the_store_is_patched_into_the_served_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cutover.db")).unwrap();
        store.create_zone(&zone(), "test").unwrap();
        let catalog = ArcSwap::from_pointee(Catalog::empty());
        let mut served = BTreeMap::new();
        reload(&store, &catalog, &mut served);
        let origin = n("example.test.");
        let first = Arc::clone(catalog.load().get(&origin).unwrap());
        assert_eq!(first.patched_nodes(), 0, "loaded whole");
        store
            .edit(&origin, "test", |zone| {
                let new = Record {
                    name: n("new.sub.example.test."),
                    ttl: 300,
                    rdata: Rdata::a([192, 0, 2, 9].into()),
                };
                zone.add(new).map_err(|e| e.to_string())?;
                zone.remove(&n("ns1.example.test."), &Rdata::a([192, 0, 2, 1].into()));
                let moved = Record {
                    name: n("ns1.example.test."),
                    ttl: 300,
                    rdata: Rdata::a([192, 0, 2, 2].into()),
                };
                zone.add(moved).map(drop).map_err(|e| e.to_string())
            })
            .unwrap();
        reload(&store, &catalog, &mut served);
        let now = catalog.load();
        let patched = now.get(&origin).unwrap();
        assert!(patched.serial().is_newer_than(first.serial()));
        assert!(
            (1..=5).contains(&patched.patched_nodes()),
            "patched, not rebuilt: {patched:?}"
        );
        let built = Catalog::new(vec![Arc::new(ZoneSnapshot::build(
            &store.zone(&origin).unwrap().unwrap(),
        ))]);
        for (name, qtype) in [
            ("example.test.", 2),
            ("example.test.", 6),
            ("ns1.example.test.", 1),
            ("new.sub.example.test.", 1),
            ("sub.example.test.", 1),
            ("x.sub.example.test.", 1),
            ("h7.example.test.", 1),
        ] {
            assert_eq!(
                ask(&now, name, qtype),
                ask(&built, name, qtype),
                "{name} {qtype}"
            );
        }
    }
}
