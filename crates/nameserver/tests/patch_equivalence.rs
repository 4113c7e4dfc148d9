//! A patched snapshot answers exactly as one built from scratch: random
//! sequences of changes to a small zone with every kind of node (empty
//! non-terminals, wildcards, a delegation with glue, a DNAME, CNAMEs, NS/MX/
//! SRV targets with and without addresses), each change patched into the
//! previous version (itself patched), and after each one every query of a
//! fixed set answered by both, byte for byte.

use std::str::FromStr;
use std::sync::Arc;

use cutover_nameserver::{answer, Catalog, Transport, ZoneSnapshot};
use cutover_zone::rdata::{push_name, Soa};
use cutover_zone::{Name, Rdata, RecordType, Rrset, Zone, ZoneDiff};
use proptest::prelude::*;

/// The zone's apex.
const ORIGIN: &str = "ex.test.";

/// Owners the changes pick from (relative to the apex; "@" is the apex).
const OWNERS: &[&str] = &[
    "@",
    "a",
    "b",
    "x.a",
    "y.x.a",
    "*",
    "*.a",
    "*.x.a",
    "deleg",
    "ns.deleg",
    "sub.deleg",
    "dn",
    "ns1",
    "ns2",
    "mail",
    "c.b",
    "*.c.b",
    "Mixed.B",
    "q.y.x.a",
];

/// Names asked that no change creates (below the owners, beside them).
const MORE_QUERIES: &[&str] = &[
    "q",
    "q.a",
    "q.x.a",
    "z.q.x.a",
    "q.deleg",
    "q.b",
    "q.c.b",
    "z.q.c.b",
    "q.dn",
    "q.ns1",
    "q.mixed.b",
    "r.q.y.x.a",
];

/// The types changed.
const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::NS,
    RecordType::MX,
    RecordType::CNAME,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::DNAME,
];

/// The types asked.
const QTYPES: &[u16] = &[1, 2, 5, 6, 15, 16, 28, 33, 39, 43, 255];

/// A name from text relative to the apex.
fn name(relative: &str) -> Name {
    match relative {
        "@" => Name::from_str(ORIGIN).unwrap(),
        _ => Name::from_str(&format!("{relative}.{ORIGIN}")).unwrap(),
    }
}

/// Record `choice` of type `rtype` (a small pool each, targets in and out
/// of the zone).
fn rdata(rtype: RecordType, choice: usize) -> Rdata {
    let targets = ["ns1", "ns2", "mail", "x.a", "q.a", "Ns1", "deleg", "y.x.a"];
    let target = |i: usize| match i % 9 {
        8 => Name::from_str("ns.elsewhere.test.").unwrap(),
        i => name(targets[i]),
    };
    let mut wire = Vec::new();
    match rtype {
        RecordType::A => return Rdata::a([192, 0, 2, choice as u8].into()),
        RecordType::AAAA => {
            return Rdata::aaaa(format!("2001:db8::{choice}").parse().unwrap());
        }
        RecordType::NS | RecordType::CNAME => {
            return Rdata::name_only(rtype, &target(choice));
        }
        RecordType::DNAME => {
            return Rdata::name_only(rtype, &name(["a", "x.a", "b"][choice % 3]));
        }
        RecordType::MX => {
            wire.extend_from_slice(&(10 * choice as u16).to_be_bytes());
            push_name(&mut wire, &target(choice + 2));
        }
        RecordType::SRV => {
            wire.extend_from_slice(&[0, 1, 0, choice as u8, 0, 53]);
            push_name(&mut wire, &target(choice + 5));
        }
        _ => wire.extend_from_slice(&[1, b'a' + choice as u8]),
    }
    Rdata::from_wire(rtype, &wire).unwrap()
}

/// The SOA with this serial.
fn soa(serial: u32) -> Rdata {
    Rdata::soa(&Soa {
        mname: name("ns1"),
        rname: name("hostmaster"),
        serial,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 120,
    })
}

/// The zone changes start from.
fn start() -> Zone {
    let mut zone = Zone::new(name("@"));
    let mut set = |owner: &str, rtype: RecordType, ttl: u32, choices: &[usize]| {
        let mut rrset = Rrset::new(ttl, rdata(rtype, choices[0]));
        for &c in &choices[1..] {
            rrset.insert(rdata(rtype, c));
        }
        zone.set_rrset(&name(owner), rtype, rrset).unwrap();
    };
    set("@", RecordType::NS, 3600, &[0, 1]);
    set("@", RecordType::MX, 3600, &[0]);
    set("ns1", RecordType::A, 3600, &[1]);
    set("ns2", RecordType::AAAA, 3600, &[2]);
    set("mail", RecordType::A, 300, &[3]);
    set("y.x.a", RecordType::TXT, 60, &[0]);
    set("*.a", RecordType::A, 60, &[4]);
    set("*.c.b", RecordType::CNAME, 60, &[0]);
    set("deleg", RecordType::NS, 3600, &[7, 6]);
    set("ns.deleg", RecordType::A, 3600, &[5]);
    set("dn", RecordType::DNAME, 60, &[0]);
    set("b", RecordType::SRV, 60, &[0, 1]);
    zone.set_rrset(&name("@"), RecordType::SOA, Rrset::new(3600, soa(1)))
        .unwrap();
    zone
}

/// One change: an owner, a type, and the records it gets (none: deleted).
type Op = (usize, usize, Option<Vec<usize>>);

/// Applies a step's changes and raises the serial.
fn step(zone: &Zone, ops: &[Op], serial: u32) -> Zone {
    let mut next = zone.clone();
    for (owner, rtype, records) in ops {
        let (owner, rtype) = (
            name(OWNERS[*owner % OWNERS.len()]),
            TYPES[*rtype % TYPES.len()],
        );
        let rrset = match records {
            Some(choices) if !choices.is_empty() => {
                let mut rrset = Rrset::new(300 + choices[0] as u32, rdata(rtype, choices[0]));
                for &c in &choices[1..] {
                    rrset.insert(rdata(rtype, c));
                }
                rrset
            }
            _ => Rrset::default(),
        };
        next.set_rrset(&owner, rtype, rrset).unwrap();
    }
    next.set_rrset(&name("@"), RecordType::SOA, Rrset::new(3600, soa(serial)))
        .unwrap();
    next
}

/// A query for `qname` of `qtype`, with EDNS (1232 bytes) or without (512).
fn query(qname: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    push_name(&mut q, &Name::from_str(qname).unwrap());
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    if edns {
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    q
}

/// Every name asked, absolute.
fn qnames() -> Vec<String> {
    OWNERS
        .iter()
        .chain(MORE_QUERIES)
        .map(|relative| name(relative).to_string())
        .collect()
}

/// Asserts that `patched` answers every query as `built` does.
fn same_answers(patched: &Arc<ZoneSnapshot>, built: &Arc<ZoneSnapshot>, what: &str) {
    assert_eq!(patched.serial(), built.serial(), "{what}: serial");
    assert_eq!(
        patched.record_count(),
        built.record_count(),
        "{what}: records"
    );
    assert_eq!(
        patched.node_count(),
        built.node_count(),
        "{what}: nodes (ENTs)"
    );
    assert_eq!(
        patched.check().is_ok(),
        built.check().is_ok(),
        "{what}: zone checks"
    );
    let patched_catalog = Catalog::new(vec![Arc::clone(patched)]);
    let built_catalog = Catalog::new(vec![Arc::clone(built)]);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for qname in qnames() {
        for &qtype in QTYPES {
            for (edns, transport) in [
                (true, Transport::Udp),
                (false, Transport::Udp),
                (false, Transport::Tcp),
            ] {
                let q = query(&qname, qtype, edns);
                assert!(answer(&patched_catalog, &q, transport, &mut a));
                assert!(answer(&built_catalog, &q, transport, &mut b));
                assert_eq!(
                    a, b,
                    "{what}: {qname} type {qtype} edns {edns} {transport:?}: patched vs built"
                );
            }
        }
    }
}

/// Runs a sequence of steps: each patched into the last version (with the
/// zone, as the UPDATE path does, and with the diff alone, as a reload
/// from the journal does), each compared with a build from scratch.
/// Returns how many steps were patched (not rebuilt).
fn run(steps: &[Vec<Op>]) -> usize {
    let mut zone = start();
    let mut by_zone = Arc::new(ZoneSnapshot::build(&zone));
    let mut by_diff = Arc::clone(&by_zone);
    let mut patched = 0;
    for (i, ops) in steps.iter().enumerate() {
        let next = step(&zone, ops, 2 + i as u32);
        let diff = ZoneDiff::between(&zone, &next);
        let built = Arc::new(ZoneSnapshot::build(&next));
        by_zone = match by_zone.patched_with_zone(&next, &diff) {
            Ok(snapshot) => {
                patched += 1;
                Arc::new(snapshot)
            }
            Err(_) => Arc::clone(&built),
        };
        by_diff = match by_diff.patched_with_diffs(std::slice::from_ref(&diff)) {
            Ok(snapshot) => Arc::new(snapshot),
            Err(_) => Arc::clone(&built),
        };
        same_answers(&by_zone, &built, &format!("step {i} {ops:?} (zone)"));
        same_answers(&by_diff, &built, &format!("step {i} {ops:?} (diff)"));
        zone = next;
    }
    patched
}

/// One change: any owner, any type, 1 to 3 records or none.
fn op() -> impl Strategy<Value = Op> {
    (
        0..OWNERS.len(),
        0..TYPES.len(),
        prop::option::weighted(0.7, prop::collection::vec(0..9usize, 1..4)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_patched_snapshot_answers_as_one_built_from_scratch(
        steps in prop::collection::vec(prop::collection::vec(op(), 1..4), 1..16)
    ) {
        run(&steps);
    }
}

/// The changes the property test is after, spelt out: glue and target
/// addresses changing, empty non-terminals coming and going, wildcards
/// coming and going, a name deleted and added back. Each must be patched,
/// not rebuilt.
#[test]
fn the_cases_that_matter_are_patched_and_answer_the_same() {
    let (a, aaaa, txt, cname) = (0, 1, 5, 4);
    let owner = |relative: &str| OWNERS.iter().position(|o| *o == relative).unwrap();
    let steps: Vec<Vec<Op>> = vec![
        vec![(owner("ns1"), a, Some(vec![2, 3]))],
        vec![(owner("ns.deleg"), a, None)],
        vec![(owner("ns.deleg"), aaaa, Some(vec![1]))],
        vec![(owner("ns1"), a, None)],
        vec![(owner("q.y.x.a"), txt, Some(vec![1]))],
        vec![(owner("y.x.a"), txt, None)],
        vec![(owner("q.y.x.a"), txt, None)],
        vec![(owner("*.x.a"), a, Some(vec![1]))],
        vec![(owner("*.a"), a, None)],
        vec![(owner("Mixed.B"), cname, Some(vec![3]))],
        vec![
            (owner("*.c.b"), cname, None),
            (owner("c.b"), a, Some(vec![1])),
        ],
        vec![(owner("ns1"), a, Some(vec![1]))],
        vec![(owner("sub.deleg"), a, Some(vec![1]))],
        vec![(owner("y.x.a"), txt, Some(vec![2]))],
    ];
    assert_eq!(run(&steps), steps.len(), "every step patched");
}
