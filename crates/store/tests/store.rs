//! The store's promises: round trips, atomic diffs, rising serials, history
//! that can be rebuilt, and changes visible to a second handle.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use cutover_store::{Store, StoreError};
use cutover_zone::rdata::Soa;
use cutover_zone::{Name, Rdata, Record, RecordType, Rrset, Serial, Zone, ZoneDiff};

/// A name from text.
fn n(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// A small valid zone at `example.com.` with the given serial.
fn sample(serial: u32) -> Zone {
    let mut z = Zone::new(n("example.com."));
    let soa = Soa {
        mname: n("ns1.example.com."),
        rname: n("hostmaster.example.com."),
        serial,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 300,
    };
    let records = [
        ("example.com.", 3600, Rdata::soa(&soa)),
        (
            "example.com.",
            3600,
            Rdata::name_only(RecordType::NS, &n("ns1.example.com.")),
        ),
        (
            "ns1.example.com.",
            3600,
            Rdata::a(Ipv4Addr::new(192, 0, 2, 1)),
        ),
        (
            "www.example.com.",
            300,
            Rdata::a(Ipv4Addr::new(192, 0, 2, 10)),
        ),
        (
            "www.example.com.",
            300,
            Rdata::a(Ipv4Addr::new(192, 0, 2, 11)),
        ),
    ];
    for (name, ttl, rdata) in records {
        z.add(Record {
            name: n(name),
            ttl,
            rdata,
        })
        .unwrap();
    }
    z
}

/// A valid zone at `example.org.` (never stored by these tests).
fn other_zone() -> Zone {
    let mut zone = Zone::new(n("example.org."));
    let soa = sample(9).soa().unwrap();
    zone.add(Record {
        name: n("example.org."),
        ttl: 60,
        rdata: Rdata::soa(&soa),
    })
    .unwrap();
    let ns = Rdata::name_only(RecordType::NS, &n("ns.example.net."));
    zone.add(Record {
        name: n("example.org."),
        ttl: 60,
        rdata: ns,
    })
    .unwrap();
    zone
}

/// A fresh store in a temporary directory (kept alive by the returned guard).
fn fresh() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cutover.db");
    let store = Store::open(&path).unwrap();
    (dir, path, store)
}

/// Adds an A record for `name` through `Store::edit`.
fn add_a(store: &Store, name: &str, addr: [u8; 4]) -> ZoneDiff {
    store
        .edit(
            &n("example.com."),
            &format!("add {name}"),
            |z: &mut Zone| {
                let record = Record {
                    name: n(name),
                    ttl: 60,
                    rdata: Rdata::a(addr.into()),
                };
                z.add(record).map(|_| ()).map_err(|e| e.to_string())
            },
        )
        .unwrap()
}

#[test]
fn a_created_zone_loads_back_equal() {
    let (_dir, _path, store) = fresh();
    let zone = sample(7);
    store.create_zone(&zone, "import").unwrap();
    let loaded = store
        .zone(&n("EXAMPLE.com."))
        .unwrap()
        .expect("zone present");
    assert_eq!(loaded, zone, "loaded zone differs from the one created");
    let list = store.zones().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].origin.clone(), list[0].serial, list[0].records),
        (n("example.com."), Serial(7), 5)
    );
    let versions = store.versions(&n("example.com.")).unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(
        (versions[0].serial, versions[0].from, versions[0].added),
        (Serial(7), None, 5)
    );
    assert_eq!(versions[0].comment, "import");
    assert!(store.zone(&n("example.org.")).unwrap().is_none());
    let again = store.create_zone(&zone, "again").unwrap_err();
    assert!(
        matches!(again, StoreError::ZoneExists(_)),
        "expected ZoneExists, got {again}"
    );
}

#[test]
fn a_zone_failing_its_checks_is_not_created() {
    let (_dir, _path, store) = fresh();
    let mut zone = sample(1);
    zone.set_rrset(&n("example.com."), RecordType::NS, Rrset::default())
        .unwrap();
    let err = store.create_zone(&zone, "bad").unwrap_err();
    assert!(
        err.to_string().contains("no NS records at the zone apex"),
        "message was: {err}"
    );
    assert!(store.zones().unwrap().is_empty());
}

#[test]
fn a_diff_failing_its_checks_changes_nothing() {
    let (_dir, _path, store) = fresh();
    let origin = n("example.com.");
    store.create_zone(&sample(1), "import").unwrap();
    let generation = store.generation().unwrap();
    // Removing the glue of the in-zone nameserver leaves the zone invalid.
    let mut broken = sample(2);
    broken.remove(
        &n("ns1.example.com."),
        &Rdata::a(Ipv4Addr::new(192, 0, 2, 1)),
    );
    let diff = ZoneDiff::between(&sample(1), &broken);
    let err = store.apply(&origin, &diff, "break it").unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid { reasons, .. } if reasons.contains("needs glue")),
        "expected a glue check failure, got {err}"
    );
    assert_eq!(
        store.zone(&origin).unwrap().unwrap(),
        sample(1),
        "records changed"
    );
    assert_eq!(store.versions(&origin).unwrap().len(), 1, "journal changed");
    assert_eq!(
        store.zones().unwrap()[0].serial,
        Serial(1),
        "serial changed"
    );
    assert_eq!(store.generation().unwrap(), generation, "generation moved");

    // A diff removing a record that is not there is refused too.
    let mut phantom = ZoneDiff::between(&sample(1), &sample(2));
    phantom.removed.push(Record {
        name: n("nope.example.com."),
        ttl: 1,
        rdata: Rdata::a([1, 1, 1, 1].into()),
    });
    assert!(matches!(
        store.apply(&origin, &phantom, "x"),
        Err(StoreError::Diff { .. })
    ));
    // An edit whose closure fails changes nothing and says why.
    let err = store
        .edit(&origin, "refused", |z: &mut Zone| {
            z.set_serial(Serial(99));
            Err("the edit said no")
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "example.com.: the edit said no");
    assert_eq!(store.zone(&origin).unwrap().unwrap(), sample(1));
    assert_eq!(store.generation().unwrap(), generation, "generation moved");
}

#[test]
fn a_diff_for_an_old_serial_is_refused_with_both_serials() {
    let (_dir, _path, store) = fresh();
    let origin = n("example.com.");
    store.create_zone(&sample(1), "import").unwrap();
    let diff = ZoneDiff::between(&sample(1), &sample(2));
    assert_eq!(store.apply(&origin, &diff, "first").unwrap(), Serial(2));
    let err = store.apply(&origin, &diff, "replayed").unwrap_err();
    assert_eq!(
        err.to_string(),
        "example.com.: the zone changed underneath: expected serial 1, found 2"
    );
}

#[test]
fn serials_always_rise() {
    let (_dir, _path, store) = fresh();
    let origin = n("example.com.");
    // A serial far ahead of the clock: edits must still move it forward.
    store.create_zone(&sample(4_000_000_000), "import").unwrap();
    let mut last = Serial(4_000_000_000);
    for i in 0..5u8 {
        let diff = add_a(&store, &format!("h{i}.example.com."), [10, 0, 0, i]);
        assert_eq!(diff.from, last);
        assert!(
            diff.to.is_newer_than(last),
            "serial {} is not newer than {last}",
            diff.to
        );
        last = diff.to;
    }
    // A diff that does not raise the serial is refused.
    let current = store.zone(&origin).unwrap().unwrap();
    let mut same_serial = current.clone();
    same_serial
        .add(Record {
            name: n("x.example.com."),
            ttl: 1,
            rdata: Rdata::a([1, 2, 3, 4].into()),
        })
        .unwrap();
    let diff = ZoneDiff::between(&current, &same_serial);
    assert!(matches!(
        store.apply(&origin, &diff, "x"),
        Err(StoreError::SerialNotNewer { .. })
    ));
    // A re-import with an older serial gets a bumped one.
    let reimport = store.replace_zone(&sample(1), "reimport").unwrap();
    assert!(
        reimport.to.is_newer_than(last),
        "re-import serial {} not newer than {last}",
        reimport.to
    );
    // An edit that changes nothing does not bump the serial.
    let noop = store
        .edit(&origin, "noop", |_: &mut Zone| Ok::<(), String>(()))
        .unwrap();
    assert!(noop.is_empty());
    assert_eq!(noop.to, reimport.to);
}

#[test]
fn old_versions_are_rebuilt_and_diffed() {
    let (_dir, _path, store) = fresh();
    let origin = n("example.com.");
    let v1 = sample(1);
    store.create_zone(&v1, "import").unwrap();
    let d2 = add_a(&store, "mail.example.com.", [192, 0, 2, 25]);
    let v2 = store.zone(&origin).unwrap().unwrap();
    // v3: a TTL change of www and a removal.
    let d3 = store
        .edit(&origin, "ttl", |z: &mut Zone| {
            let mut www = z
                .get(&n("www.example.com."), RecordType::A)
                .unwrap()
                .clone();
            www.ttl = 30;
            z.set_rrset(&n("www.example.com."), RecordType::A, www)
                .map_err(|e| e.to_string())?;
            z.remove(&n("mail.example.com."), &Rdata::a([192, 0, 2, 25].into()));
            Ok::<(), String>(())
        })
        .unwrap();
    let v3 = store.zone(&origin).unwrap().unwrap();
    assert_eq!(
        d3.removed.len(),
        4,
        "old SOA, mail, two www at the old TTL: {d3:?}"
    );
    assert_eq!(store.zone_at(&origin, Serial(1)).unwrap(), v1);
    assert_eq!(store.zone_at(&origin, d2.to).unwrap(), v2);
    assert_eq!(store.zone_at(&origin, d3.to).unwrap(), v3);
    assert_eq!(
        store.diff(&origin, Serial(1), d3.to).unwrap(),
        ZoneDiff::between(&v1, &v3)
    );
    assert_eq!(
        store.diff(&origin, d3.to, d2.to).unwrap(),
        ZoneDiff::between(&v3, &v2)
    );
    assert!(matches!(
        store.zone_at(&origin, Serial(12345)),
        Err(StoreError::VersionNotFound { .. })
    ));
    let steps = store.journal(&origin, Serial(1)).unwrap();
    assert_eq!(steps, vec![d2.clone(), d3.clone()]);
    assert!(store.journal(&origin, d3.to).unwrap().is_empty());
    assert!(matches!(
        store.journal(&origin, Serial(5)),
        Err(StoreError::JournalUnavailable { .. })
    ));
    let versions: Vec<_> = store
        .versions(&origin)
        .unwrap()
        .iter()
        .map(|v| (v.serial, v.comment.clone()))
        .collect();
    assert_eq!(
        versions,
        vec![
            (Serial(1), "import".into()),
            (d2.to, "add mail.example.com.".into()),
            (d3.to, "ttl".into())
        ]
    );
}

#[test]
fn a_reimport_journals_the_diff() {
    let (_dir, _path, store) = fresh();
    let origin = n("example.com.");
    store.create_zone(&sample(1), "import").unwrap();
    let mut changed = sample(5);
    changed.remove(&n("www.example.com."), &Rdata::a([192, 0, 2, 11].into()));
    let diff = store.replace_zone(&changed, "reimport").unwrap();
    assert_eq!((diff.from, diff.to), (Serial(1), Serial(5)));
    assert_eq!(
        (diff.removed.len(), diff.added.len()),
        (2, 1),
        "SOA and one www out, SOA in: {diff:?}"
    );
    assert_eq!(store.zone(&origin).unwrap().unwrap(), changed);
    assert_eq!(store.zone_at(&origin, Serial(1)).unwrap(), sample(1));
    let versions = store.versions(&origin).unwrap();
    assert_eq!(
        (versions.len(), versions[1].comment.as_str()),
        (2, "reimport")
    );
    // The same content again changes nothing.
    let again = store.replace_zone(&changed, "again").unwrap();
    assert!(again.is_empty(), "identical re-import produced {again:?}");
    assert_eq!(store.versions(&origin).unwrap().len(), 2);
    assert!(matches!(
        store.replace_zone(&other_zone(), "x"),
        Err(StoreError::ZoneNotFound(_))
    ));
}

#[test]
fn a_second_handle_sees_the_generation_move() {
    let (_dir, path, writer) = fresh();
    let reader = Store::open(&path).unwrap();
    let origin = n("example.com.");
    let g0 = reader.generation().unwrap();
    writer.create_zone(&sample(1), "import").unwrap();
    let g1 = reader.generation().unwrap();
    assert_ne!(g0, g1, "generation did not move after create");
    add_a(&writer, "new.example.com.", [192, 0, 2, 99]);
    let g2 = reader.generation().unwrap();
    assert_ne!(g1, g2, "generation did not move after edit");
    let seen = reader.zone(&origin).unwrap().unwrap();
    assert!(
        seen.get(&n("new.example.com."), RecordType::A).is_some(),
        "reader does not see the edit"
    );
    writer.delete_zone(&origin).unwrap();
    assert_ne!(
        reader.generation().unwrap(),
        g2,
        "generation did not move after delete"
    );
    assert!(reader.zone(&origin).unwrap().is_none());
    assert!(matches!(
        reader.delete_zone(&origin),
        Err(StoreError::ZoneNotFound(_))
    ));
}

#[test]
fn everything_survives_a_reopen() {
    let (_dir, path, store) = fresh();
    let origin = n("example.com.");
    store.create_zone(&sample(1), "import").unwrap();
    let diff = add_a(&store, "kept.example.com.", [192, 0, 2, 7]);
    let before = store.zone(&origin).unwrap().unwrap();
    let generation = store.generation().unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.zone(&origin).unwrap().unwrap(), before);
    assert_eq!(store.versions(&origin).unwrap().len(), 2);
    assert_eq!(store.zone_at(&origin, Serial(1)).unwrap(), sample(1));
    assert_eq!(store.journal(&origin, Serial(1)).unwrap(), vec![diff]);
    assert_eq!(store.generation().unwrap(), generation);
}

#[test]
fn a_store_from_a_newer_cutover_is_refused() {
    let (_dir, path, store) = fresh();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).err().expect("open must fail");
    let text = err.to_string();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }) && text.contains("cutover.db"),
        "expected SchemaTooNew naming the file, got {text}"
    );
}

#[test]
fn apply_to_takes_the_callers_current_version_and_checks_its_serial() {
    let (_dir, _path, store) = fresh();
    let origin = n("example.com.");
    store.create_zone(&sample(1), "import").unwrap();
    let diff = ZoneDiff::between(&sample(1), &sample(2));
    assert_eq!(
        store.apply_to(&sample(1), &diff, "first").unwrap(),
        Serial(2)
    );
    assert_eq!(store.zone(&origin).unwrap(), Some(sample(2)), "applied");
    // A stale current version (serial 1 while the store is at 2) is refused.
    let next = ZoneDiff::between(&sample(2), &sample(3));
    let err = store.apply_to(&sample(1), &next, "stale").unwrap_err();
    assert!(
        matches!(err, StoreError::SerialMismatch { .. }),
        "stale: {err}"
    );
    assert_eq!(
        store.zone(&origin).unwrap(),
        Some(sample(2)),
        "nothing changed"
    );
    assert_eq!(
        store.apply_to(&sample(2), &next, "second").unwrap(),
        Serial(3)
    );
}

/// A record `name A 192.0.2.last` with a 60 s TTL.
fn a_record(name: &str, last: u8) -> Record {
    Record {
        name: n(name),
        ttl: 60,
        rdata: Rdata::a(Ipv4Addr::new(192, 0, 2, last)),
    }
}

/// The diff adding `record` to `zone`, serial + 1.
fn adding(zone: &Zone, record: Record) -> ZoneDiff {
    let mut next = zone.clone();
    next.add(record).unwrap();
    next.set_serial(Serial(zone.serial().unwrap().0 + 1));
    ZoneDiff::between(zone, &next)
}

/// Regression: an UPDATE held the zone it had read, another writer (the
/// CLI, a second `serve`) committed, and the UPDATE failed with "the zone
/// changed underneath" (SERVFAIL). `update_zone` works the change out on
/// the version it writes over.
#[test]
fn update_zone_works_the_change_out_on_the_version_it_writes_over() {
    let (_dir, path, store) = fresh();
    let origin = n("example.com.");
    store.create_zone(&sample(1), "import").unwrap();
    let held = store
        .held_zone(&origin)
        .unwrap()
        .expect("the zone is stored");
    // Another handle (as another process would) changes the zone.
    let other = Store::open(&path).unwrap();
    other
        .edit(&origin, "cli", |zone: &mut Zone| {
            zone.add(a_record("cli.example.com.", 7))
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .unwrap();
    let mut seen = None;
    let updated = store
        .update_zone(&origin, Some(&held), "update", |zone| {
            seen = zone.serial();
            Ok::<_, String>(Some(adding(zone, a_record("upd.example.com.", 8))))
        })
        .unwrap();
    assert_ne!(
        seen,
        Some(Serial(1)),
        "the change saw the version written by the other handle"
    );
    assert!(
        !Arc::ptr_eq(&updated.base.zone, &held.zone),
        "a stale held version is read again"
    );
    let (diff, generation) = updated.outcome.unwrap().expect("written");
    assert_eq!(
        generation,
        store.generation().unwrap(),
        "the generation after the write"
    );
    let current = store.zone(&origin).unwrap().unwrap();
    for name in ["cli.example.com.", "upd.example.com."] {
        assert!(current.node(&n(name)).is_some(), "{name} is in the zone");
    }
    assert_eq!(current.serial(), Some(diff.to));

    // Held and still current: used as is, not read again.
    let held = store.held_zone(&origin).unwrap().unwrap();
    let updated = store
        .update_zone(&origin, Some(&held), "update", |_| Ok::<_, String>(None))
        .unwrap();
    assert!(
        Arc::ptr_eq(&updated.base.zone, &held.zone),
        "a current version is reused"
    );
    assert!(matches!(updated.outcome, Ok(None)));

    // A refusal writes nothing and is handed back.
    let before = store.generation().unwrap();
    let refused = store
        .update_zone(&origin, None, "update", |_| {
            Err::<Option<ZoneDiff>, _>("no")
        })
        .unwrap();
    assert_eq!(refused.outcome.unwrap_err(), "no");
    assert_eq!(store.generation().unwrap(), before, "nothing written");
    assert!(matches!(
        store.update_zone(&n("example.org."), None, "update", |_| Ok::<_, String>(
            None
        )),
        Err(StoreError::ZoneNotFound(_))
    ));
}

/// Two handles updating one zone from two threads: every change lands,
/// none fails (each is worked out inside the write transaction).
#[test]
fn concurrent_update_zone_calls_all_land() {
    let (_dir, path, store) = fresh();
    let origin = n("example.com.");
    store.create_zone(&sample(1), "import").unwrap();
    let writers: Vec<_> = (0..2u8)
        .map(|writer| {
            let path = path.clone();
            let origin = origin.clone();
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                let mut held = None;
                for i in 0..25u8 {
                    let name = format!("w{writer}-{i}.example.com.");
                    let updated = store
                        .update_zone(&origin, held.as_ref(), "update", |zone| {
                            Ok::<_, String>(Some(adding(zone, a_record(&name, i))))
                        })
                        .unwrap_or_else(|e| panic!("writer {writer}, change {i}: {e}"));
                    let (diff, generation) = updated.outcome.unwrap().unwrap();
                    let mut zone = (*updated.base.zone).clone();
                    diff.apply_to(&mut zone).unwrap();
                    held = Some(cutover_store::Held {
                        generation,
                        zone: Arc::new(zone),
                    });
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let zone = store.zone(&origin).unwrap().unwrap();
    for writer in 0..2 {
        for i in 0..25 {
            let name = format!("w{writer}-{i}.example.com.");
            assert!(zone.node(&n(&name)).is_some(), "{name} missing");
        }
    }
    assert_eq!(
        zone.serial(),
        Some(Serial(51)),
        "50 changes, each serial + 1"
    );
}

#[test]
fn a_transfer_is_stored_whole_or_not_at_all() {
    use cutover_store::Transferred;
    let (_dir, _path, store) = fresh();
    let origin = n("example.com.");
    let v1 = sample(1);
    assert_eq!(
        store
            .store_transferred(&origin, Transferred::Whole(&v1), "AXFR")
            .unwrap(),
        Serial(1),
        "the first transfer creates the zone"
    );
    // IXFR steps 1 → 2 → 3, in one transaction, journalled as they came.
    let mut v2 = sample(2);
    v2.add(Record {
        name: n("new.example.com."),
        ttl: 300,
        rdata: Rdata::a(Ipv4Addr::new(192, 0, 2, 50)),
    })
    .unwrap();
    let mut v3 = v2.clone();
    v3.set_serial(Serial(3));
    let steps = [ZoneDiff::between(&v1, &v2), ZoneDiff::between(&v2, &v3)];
    assert_eq!(
        store
            .store_transferred(&origin, Transferred::Steps(&steps), "IXFR")
            .unwrap(),
        Serial(3)
    );
    assert_eq!(store.zone(&origin).unwrap().unwrap(), v3);
    assert_eq!(store.journal(&origin, Serial(1)).unwrap().len(), 2);
    // A whole zone whose serial does not rise, steps that do not start at
    // the stored serial, a zone failing its checks: nothing written.
    let before = store.generation().unwrap();
    assert!(store
        .store_transferred(&origin, Transferred::Whole(&sample(2)), "AXFR")
        .is_err());
    assert!(store
        .store_transferred(&origin, Transferred::Steps(&steps), "IXFR")
        .is_err());
    let mut broken = sample(9);
    assert!(broken.remove(
        &origin,
        &Rdata::name_only(RecordType::NS, &n("ns1.example.com."))
    ));
    assert!(store
        .store_transferred(&origin, Transferred::Whole(&broken), "AXFR")
        .is_err());
    assert_eq!(store.generation().unwrap(), before, "nothing written");
    assert_eq!(store.zone(&origin).unwrap().unwrap(), v3);
}

#[test]
fn a_secondary_check_is_kept_per_zone_moves_no_generation_and_goes_with_the_zone() {
    let (_dir, path, store) = fresh();
    let zone = sample(1);
    let origin = zone.origin().clone();
    store.create_zone(&zone, "import").unwrap();
    assert_eq!(store.secondary_checked_at(&origin).unwrap(), None);
    let generation = store.generation().unwrap();
    let at = jiff::Timestamp::from_second(1_780_000_000).unwrap();
    store.secondary_checked(&origin, at).unwrap();
    store
        .secondary_checked(&origin, at + jiff::SignedDuration::from_secs(60))
        .unwrap();
    assert_eq!(
        store.generation().unwrap(),
        generation,
        "no zone data changed: watchers are not woken to reload"
    );
    // Another handle (a restarted serve) reads the latest.
    let again = Store::open(&path).unwrap();
    assert_eq!(
        again.secondary_checked_at(&origin).unwrap(),
        Some(at + jiff::SignedDuration::from_secs(60))
    );
    assert!(matches!(
        store.secondary_checked(&n("absent.test."), at),
        Err(StoreError::ZoneNotFound(_))
    ));
    store.delete_zone(&origin).unwrap();
    assert_eq!(store.secondary_checked_at(&origin).unwrap(), None);
}

#[test]
fn every_secondary_check_is_listed_by_zone() {
    let (_dir, _path, store) = fresh();
    let (a, b) = (sample(1), other_zone());
    store.create_zone(&a, "import").unwrap();
    store.create_zone(&b, "import").unwrap();
    assert!(store.secondary_checks().unwrap().is_empty());
    let at = jiff::Timestamp::from_second(1_780_000_000).unwrap();
    store.secondary_checked(b.origin(), at).unwrap();
    assert_eq!(
        store.secondary_checks().unwrap(),
        vec![(b.origin().clone(), at)],
        "only the zone checked, with its time"
    );
}

/// A zone with delegations: glue at the apex and below a cut, an occluded
/// glueless NS under it, an NS that leans on the apex's glue, a CNAME.
fn delegated() -> Zone {
    let mut zone = sample(1);
    let ns = |target: &str| Rdata::name_only(RecordType::NS, &n(target));
    let records = [
        ("sub.example.com.", ns("ns.sub.example.com.")),
        ("ns.sub.example.com.", Rdata::a(Ipv4Addr::new(192, 0, 2, 2))),
        ("deep.sub.example.com.", ns("ns.deep.sub.example.com.")),
        ("other.example.com.", ns("ns1.example.com.")),
        ("lame.example.com.", ns("ns.elsewhere.org.")),
        ("host.example.com.", Rdata::a(Ipv4Addr::new(192, 0, 2, 3))),
        (
            "alias.example.com.",
            Rdata::name_only(RecordType::CNAME, &n("www.example.com.")),
        ),
    ];
    for (name, rdata) in records {
        zone.add(Record {
            name: n(name),
            ttl: 300,
            rdata,
        })
        .unwrap();
    }
    assert_eq!(zone.check(), vec![], "the zone is valid");
    zone
}

/// Sets one RRset (empty: deletes it) with the serial raised, checking
/// nothing itself: the store's own checks judge the diff.
fn setting(
    zone: &Zone,
    name: &Name,
    rtype: RecordType,
    rrset: &Rrset,
) -> Result<Option<ZoneDiff>, String> {
    let mut edit = cutover_zone::ZoneEdit::new(zone);
    edit.set(name, rtype, rrset.clone())
        .map_err(|e| e.to_string())?;
    if edit.is_unchanged() {
        return Ok(None);
    }
    edit.set_serial(Serial(zone.serial().unwrap().0 + 1));
    Ok(Some(edit.diff()))
}

#[test]
fn an_edit_on_an_excerpt_is_judged_as_on_the_whole_zone() {
    let ns = |target: &str| Rrset::new(300, Rdata::name_only(RecordType::NS, &n(target)));
    let a = |last: u8| Rrset::new(300, Rdata::a(Ipv4Addr::new(192, 0, 2, last)));
    let gone = Rrset::default;
    let cases: Vec<(&str, &str, RecordType, Rrset)> = vec![
        ("an address set", "www.example.com.", RecordType::A, a(9)),
        ("a new name", "new.example.com.", RecordType::A, a(9)),
        (
            "apex glue removed",
            "ns1.example.com.",
            RecordType::A,
            gone(),
        ),
        (
            "glue below a cut removed",
            "ns.sub.example.com.",
            RecordType::A,
            gone(),
        ),
        (
            "a delegation removed",
            "sub.example.com.",
            RecordType::NS,
            gone(),
        ),
        (
            "a lame delegation removed",
            "lame.example.com.",
            RecordType::NS,
            gone(),
        ),
        (
            "an NS to a name with an address",
            "d1.example.com.",
            RecordType::NS,
            ns("host.example.com."),
        ),
        (
            "an NS to a name without one",
            "d2.example.com.",
            RecordType::NS,
            ns("none.example.com."),
        ),
        (
            "an NS below a cut, glueless",
            "x.sub.example.com.",
            RecordType::NS,
            ns("ns.x.sub.example.com."),
        ),
        (
            "data beside a CNAME",
            "alias.example.com.",
            RecordType::A,
            a(9),
        ),
        ("apex NS removed", "example.com.", RecordType::NS, gone()),
        (
            "the address of a name nobody delegates to",
            "host.example.com.",
            RecordType::A,
            gone(),
        ),
        (
            "what is there already",
            "www.example.com.",
            RecordType::TXT,
            gone(),
        ),
    ];
    for (what, name, rtype, rrset) in cases {
        let name = n(name);
        let (_whole_dir, _, whole) = fresh();
        let (_excerpt_dir, _, excerpt) = fresh();
        let zone = delegated();
        whole.create_zone(&zone, "import").unwrap();
        excerpt.create_zone(&zone, "import").unwrap();
        let origin = n("example.com.");
        let change = |zone: &Zone| setting(zone, &name, rtype, &rrset);
        let by_whole = whole
            .update_zone(&origin, None, what, change)
            .map(|updated| updated.outcome.map(|o| o.map(|(diff, _)| diff)));
        let preview = excerpt
            .preview_rrsets(&origin, std::slice::from_ref(&name), change)
            .map(|edited| edited.outcome);
        let by_excerpt = excerpt
            .update_rrsets(&origin, std::slice::from_ref(&name), what, change)
            .map(|edited| edited.outcome);
        let words = |seen: &Result<Result<Option<ZoneDiff>, String>, StoreError>| match seen {
            Ok(outcome) => format!("{outcome:?}"),
            Err(error) => format!("error: {error}"),
        };
        assert_eq!(
            words(&by_excerpt),
            words(&by_whole),
            "{what}: the excerpt must be judged as the whole zone is"
        );
        assert_eq!(
            words(&preview),
            words(&by_whole),
            "{what}: the preview must be what the write does"
        );
        assert_eq!(
            excerpt.zone(&origin).unwrap(),
            whole.zone(&origin).unwrap(),
            "{what}: both stores must hold the same version"
        );
    }
}
