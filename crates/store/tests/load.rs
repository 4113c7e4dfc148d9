//! How long a large zone takes to store and load. Prints the timings
//! (run with `--release --nocapture` to measure); asserts the round trip.

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Instant;

use cutover_store::Store;
use cutover_zone::rdata::Soa;
use cutover_zone::{Name, Rdata, Record, RecordType, Zone};

/// Records in the zone measured (fewer in debug builds, to keep the test fast).
const RECORDS: u32 = if cfg!(debug_assertions) {
    20_000
} else {
    100_000
};

/// A name from text.
fn n(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

#[test]
fn a_hundred_thousand_record_zone_round_trips() {
    let mut zone = Zone::new(n("big.example."));
    let soa = Soa {
        mname: n("ns1.big.example."),
        rname: n("hostmaster.big.example."),
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 300,
    };
    zone.add(Record {
        name: n("big.example."),
        ttl: 3600,
        rdata: Rdata::soa(&soa),
    })
    .unwrap();
    let ns = Rdata::name_only(RecordType::NS, &n("ns1.big.example."));
    zone.add(Record {
        name: n("big.example."),
        ttl: 3600,
        rdata: ns,
    })
    .unwrap();
    zone.add(Record {
        name: n("ns1.big.example."),
        ttl: 3600,
        rdata: Rdata::a(Ipv4Addr::new(192, 0, 2, 1)),
    })
    .unwrap();
    for i in 0..RECORDS - 3 {
        let name = n(&format!("host{i}.big.example."));
        zone.add(Record {
            name,
            ttl: 300,
            rdata: Rdata::a(Ipv4Addr::from(0x0a00_0000 + i)),
        })
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("cutover.db")).unwrap();

    let started = Instant::now();
    store.create_zone(&zone, "import").unwrap();
    let create = started.elapsed();
    let started = Instant::now();
    let loaded = store
        .zone(&n("big.example."))
        .unwrap()
        .expect("zone present");
    let load = started.elapsed();
    let started = Instant::now();
    let diff = store
        .edit(&n("big.example."), "one more", |z: &mut Zone| {
            z.add(Record {
                name: n("extra.big.example."),
                ttl: 60,
                rdata: Rdata::a([192, 0, 2, 9].into()),
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
        })
        .unwrap();
    let edit = started.elapsed();
    println!("{RECORDS} records: create {create:?}, load {load:?}, edit {edit:?}");

    assert_eq!(loaded.record_count(), RECORDS as usize);
    assert!(
        loaded == zone,
        "the loaded zone differs from the one stored"
    );
    assert_eq!(
        diff.added.len(),
        2,
        "new SOA and the extra record: {diff:?}"
    );
}
