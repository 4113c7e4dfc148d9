//! Fuzzes the answer function: any bytes, both transports. It must not panic
//! or hang, and every response must be a well-formed DNS message that echoes
//! the query's ID, has QR set, and fits the transport's size limit.
//!
//! The same bytes also describe changes (the first byte's low nibble counts
//! them, three bytes each from the end of the input: owner, type, records or
//! deletion): each is patched into the last version of the zone
//! (`ZoneSnapshot::patched_with_zone`, as the UPDATE path does), and the
//! query must be answered by the patched snapshot byte for byte as by one
//! built from scratch from the same zone.

#![no_main]

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use cutover_nameserver::{answer, Catalog, Transport, ZoneSnapshot};
use cutover_zone::rdata::{push_name, Soa, DNAME};
use cutover_zone::{Name, Rdata, Record, RecordType, Rrset, Zone, ZoneDiff};

/// A small catalog with every kind of node the answer path handles.
fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::new(vec![Arc::new(ZoneSnapshot::build(zone()))]))
}

/// The zone of [`catalog`].
fn zone() -> &'static Zone {
    static ZONE: OnceLock<Zone> = OnceLock::new();
    ZONE.get_or_init(|| {
        let n = |s: &str| Name::from_str(s).unwrap();
        let mut zone = Zone::new(n("example.test."));
        let soa = Soa {
            mname: n("ns1.example.test."),
            rname: n("hostmaster.example.test."),
            serial: 1,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 300,
        };
        let mut add = |name: &str, ttl: u32, rdata: Rdata| {
            zone.add(Record {
                name: n(name),
                ttl,
                rdata,
            })
            .unwrap();
        };
        let name_rdata = |t: RecordType, target: &str| Rdata::name_only(t, &n(target));
        add("example.test.", 3600, Rdata::soa(&soa));
        add(
            "example.test.",
            3600,
            name_rdata(RecordType::NS, "ns1.example.test."),
        );
        add("ns1.example.test.", 3600, Rdata::a([192, 0, 2, 1].into()));
        add("www.example.test.", 300, Rdata::a([192, 0, 2, 2].into()));
        add(
            "www.example.test.",
            300,
            Rdata::aaaa("2001:db8::2".parse().unwrap()),
        );
        add(
            "alias.example.test.",
            300,
            name_rdata(RecordType::CNAME, "www.example.test."),
        );
        add(
            "loop.example.test.",
            300,
            name_rdata(RecordType::CNAME, "loop.example.test."),
        );
        add(
            "*.wild.example.test.",
            300,
            name_rdata(RecordType::CNAME, "alias.example.test."),
        );
        add(
            "deleg.example.test.",
            300,
            name_rdata(RecordType::NS, "ns.deleg.example.test."),
        );
        add(
            "ns.deleg.example.test.",
            300,
            Rdata::a([192, 0, 2, 3].into()),
        );
        let mut mx = vec![0, 10];
        push_name(&mut mx, &n("www.example.test."));
        add(
            "example.test.",
            300,
            Rdata::from_wire(RecordType::MX, &mx).unwrap(),
        );
        let mut dname = Vec::new();
        push_name(&mut dname, &n("example.test."));
        add(
            "dn.example.test.",
            300,
            Rdata::from_wire(RecordType::from(DNAME), &dname).unwrap(),
        );
        for i in 0..60u8 {
            add("big.example.test.", 300, Rdata::a([198, 51, 100, i].into()));
        }
        zone
    })
}

/// Owners the changes pick from.
const OWNERS: &[&str] = &[
    "example.test.",
    "www.example.test.",
    "ns1.example.test.",
    "alias.example.test.",
    "x.wild.example.test.",
    "*.wild.example.test.",
    "deleg.example.test.",
    "ns.deleg.example.test.",
    "dn.example.test.",
    "a.b.new.example.test.",
    "*.new.example.test.",
    "*.example.test.",
    "Mixed.Example.TEST.",
    "big.example.test.",
    "x.dn.example.test.",
    "sub.ns1.example.test.",
];

/// Types the changes pick from.
const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::NS,
    RecordType::MX,
    RecordType::CNAME,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::PTR,
];

/// Record `choice` of type `rtype`; targets in and out of the zone.
fn rdata(rtype: RecordType, choice: u8) -> Rdata {
    let n = |s: &str| Name::from_str(s).unwrap();
    let target = n(OWNERS[usize::from(choice) % OWNERS.len()].trim_start_matches("*."));
    let target = match choice % 5 {
        4 => n("ns.elsewhere.test."),
        _ => target,
    };
    let mut wire = Vec::new();
    match rtype {
        RecordType::A => return Rdata::a([192, 0, 2, choice].into()),
        RecordType::AAAA => return Rdata::aaaa(format!("2001:db8::{choice}").parse().unwrap()),
        RecordType::NS | RecordType::CNAME | RecordType::PTR => {
            return Rdata::name_only(rtype, &target)
        }
        RecordType::MX => {
            wire.extend_from_slice(&u16::from(choice).to_be_bytes());
            push_name(&mut wire, &target);
        }
        RecordType::SRV => {
            wire.extend_from_slice(&[0, 1, 0, choice, 0, 53]);
            push_name(&mut wire, &target);
        }
        _ => wire.extend_from_slice(&[1, choice]),
    }
    Rdata::from_wire(rtype, &wire).unwrap()
}

/// The zone after one change (owner, type, records: bit 7 deletes, the
/// low two bits + 1 count the records) with its serial raised.
fn changed(zone: &Zone, change: [u8; 3], serial: u32) -> Zone {
    let mut next = zone.clone();
    let name = Name::from_str(OWNERS[usize::from(change[0]) % OWNERS.len()]).unwrap();
    let rtype = TYPES[usize::from(change[1]) % TYPES.len()];
    let mut rrset = Rrset::default();
    if change[2] & 0x80 == 0 {
        rrset.ttl = 60 + u32::from(change[2] >> 4);
        for i in 0..=(change[2] & 3) {
            rrset.insert(rdata(rtype, change[2].wrapping_add(i * 7) >> 2));
        }
    }
    next.set_rrset(&name, rtype, rrset).unwrap();
    let mut soa = next.soa().unwrap();
    soa.serial = serial;
    let apex = next.origin().clone();
    let ttl = next.soa_ttl().unwrap();
    next.set_rrset(&apex, RecordType::SOA, Rrset::new(ttl, Rdata::soa(&soa)))
        .unwrap();
    next
}

/// Patches the changes the input describes into the zone one by one, and
/// checks that the query is answered by each patched version as by one
/// built from scratch.
fn patched_answers_as_built(data: &[u8]) {
    let Some(&first) = data.first() else {
        return;
    };
    let count = usize::from(first & 0x0f).min(data.len() / 3);
    let mut zone = zone().clone();
    let mut snapshot = Arc::new(ZoneSnapshot::build(&zone));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (i, change) in data[data.len() - count * 3..].chunks_exact(3).enumerate() {
        let next = changed(&zone, [change[0], change[1], change[2]], 2 + i as u32);
        let diff = ZoneDiff::between(&zone, &next);
        let built = Arc::new(ZoneSnapshot::build(&next));
        snapshot = match snapshot.patched_with_zone(&next, &diff) {
            Ok(patched) => Arc::new(patched),
            Err(_) => Arc::clone(&built),
        };
        let patched_catalog = Catalog::new(vec![Arc::clone(&snapshot)]);
        let built_catalog = Catalog::new(vec![built]);
        for transport in [Transport::Udp, Transport::Tcp] {
            let sent = answer(&patched_catalog, data, transport, &mut a);
            assert_eq!(sent, answer(&built_catalog, data, transport, &mut b));
            assert_eq!(a, b, "after change {i}: patched vs built, {transport:?}");
        }
        zone = next;
    }
}

/// Reads a (possibly compressed) name at `at`; pointers must point backwards.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    let mut end = None;
    let mut hops = 0;
    let mut total = 0;
    loop {
        let len = *msg.get(at)? as usize;
        if len & 0xc0 == 0xc0 {
            let target = ((len & 0x3f) << 8) | *msg.get(at + 1)? as usize;
            end.get_or_insert(at + 2);
            if target >= at || hops > 127 {
                return None;
            }
            hops += 1;
            at = target;
            continue;
        }
        assert!(len < 64, "response has a label of {len} bytes");
        total += len + 1;
        assert!(total <= 255, "response has a name over 255 bytes");
        if len == 0 {
            return Some(end.unwrap_or(at + 1));
        }
        at += 1 + len;
    }
}

/// Checks that `response` is a well-formed answer to `query`.
fn check(query: &[u8], response: &[u8], transport: Transport) {
    assert!(response.len() >= 12, "response shorter than a header");
    assert_eq!(
        &response[..2],
        &query[..2],
        "response ID differs from the query's"
    );
    assert!(response[2] & 0x80 != 0, "QR not set");
    let limit = if transport == Transport::Udp {
        1232
    } else {
        65535
    };
    assert!(
        response.len() <= limit,
        "{} bytes over {transport:?}",
        response.len()
    );
    let count = |i: usize| u16::from_be_bytes([response[i], response[i + 1]]) as usize;
    let mut at = 12;
    for _ in 0..count(4) {
        at = skip_name(response, at).expect("question name does not parse") + 4;
    }
    for _ in 0..count(6) + count(8) + count(10) {
        at = skip_name(response, at).expect("owner name does not parse");
        let fixed = response.get(at..at + 10).expect("record header cut short");
        let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        at += 10 + rdlen;
        assert!(at <= response.len(), "RDATA runs past the end");
    }
    assert_eq!(at, response.len(), "bytes after the last record");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut response = Vec::with_capacity(65535);
    for transport in [Transport::Udp, Transport::Tcp] {
        if answer(catalog(), data, transport, &mut response) {
            check(data, &response, transport);
        }
    }
    patched_answers_as_built(data);
});
