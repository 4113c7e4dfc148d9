//! Unit tests of UPDATE parsing, policy and application: every
//! prerequisite and update form, each special rule of RFC 2136 §3.4.2, the
//! ACL, the caps and the FORMERR cases.

use std::net::IpAddr;
use std::str::FromStr;

use cutover_zone::rdata::{push_name, Soa};
use cutover_zone::{Name, Rdata, Record, RecordType, Serial, Zone, ZoneError};

use super::*;

/// A name from text.
fn n(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// The loopback client.
fn local() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// The test key's name.
fn key() -> Name {
    n("k.example.com.")
}

/// A policy letting [`key`] change all of example.com.
fn open() -> Policy {
    let mut policy = Policy::deny_all();
    policy
        .keys
        .push((key(), Rule::whole_zone(n("example.com."))));
    policy
}

/// SOA data with a serial.
fn soa(serial: u32) -> Rdata {
    Rdata::soa(&Soa {
        mname: n("ns1.example.com."),
        rname: n("hostmaster.example.com."),
        serial,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 300,
    })
}

/// example.com. at serial 10: SOA, two apex NS with glue, an apex TXT,
/// www A, alias CNAME, old A and TXT.
fn zone() -> Zone {
    let mut z = Zone::new(n("example.com."));
    let mut add = |name: &str, ttl: u32, rdata: Rdata| {
        z.add(Record {
            name: n(name),
            ttl,
            rdata,
        })
        .unwrap();
    };
    add("example.com.", 3600, soa(10));
    add("example.com.", 3600, ns("ns1.example.com."));
    add("example.com.", 3600, ns("ns2.example.com."));
    add("ns1.example.com.", 3600, Rdata::a([192, 0, 2, 1].into()));
    add("ns2.example.com.", 3600, Rdata::a([192, 0, 2, 2].into()));
    add("example.com.", 3600, txt(b"\x05apex!"));
    add("old.example.com.", 300, Rdata::a([192, 0, 2, 20].into()));
    add("old.example.com.", 300, txt(b"\x03old"));
    add("www.example.com.", 300, Rdata::a([192, 0, 2, 10].into()));
    add("www.example.com.", 300, Rdata::a([192, 0, 2, 11].into()));
    add(
        "alias.example.com.",
        300,
        Rdata::name_only(RecordType::CNAME, &n("www.example.com.")),
    );
    z
}

/// NS data.
fn ns(target: &str) -> Rdata {
    Rdata::name_only(RecordType::NS, &n(target))
}

/// TXT data from its wire form.
fn txt(wire: &[u8]) -> Rdata {
    Rdata::from_wire(RecordType::TXT, wire).unwrap()
}

/// A data.
fn a(last: u8) -> Rdata {
    Rdata::a([192, 0, 2, last].into())
}

/// Builds UPDATE messages on the wire.
struct Message {
    /// Header flags byte 2.
    flags: u8,
    /// The zone section entries: (name, type, class).
    zone: Vec<(Name, u16, u16)>,
    /// Prerequisite records.
    prerequisites: Vec<Vec<u8>>,
    /// Update records.
    updates: Vec<Vec<u8>>,
    /// Additional records.
    additional: Vec<Vec<u8>>,
}

impl Message {
    /// An UPDATE for example.com.
    fn new() -> Message {
        Message {
            flags: OPCODE_UPDATE << 3,
            zone: vec![(n("example.com."), 6, 1)],
            prerequisites: vec![],
            updates: vec![],
            additional: vec![],
        }
    }

    /// One record's wire form.
    fn record(name: &str, rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_name(&mut out, &n(name));
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&class.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
        out
    }

    /// Adds a prerequisite record.
    fn pre(mut self, name: &str, rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Message {
        self.prerequisites
            .push(Message::record(name, rtype, class, ttl, rdata));
        self
    }

    /// Adds an update record.
    fn up(mut self, name: &str, rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Message {
        self.updates
            .push(Message::record(name, rtype, class, ttl, rdata));
        self
    }

    /// The bytes.
    fn wire(&self) -> Vec<u8> {
        let mut out = vec![0x12, 0x34, self.flags, 0];
        for count in [
            self.zone.len(),
            self.prerequisites.len(),
            self.updates.len(),
            self.additional.len(),
        ] {
            out.extend_from_slice(&(count as u16).to_be_bytes());
        }
        for (name, rtype, class) in &self.zone {
            push_name(&mut out, name);
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&class.to_be_bytes());
        }
        for r in self
            .prerequisites
            .iter()
            .chain(&self.updates)
            .chain(&self.additional)
        {
            out.extend_from_slice(r);
        }
        out
    }

    /// Parses the bytes.
    fn parse(&self) -> Result<Update, ParseError> {
        Update::parse(&self.wire())
    }

    /// Parses and applies as [`key`] under [`open`] at time 0.
    fn apply(&self) -> Result<Outcome, UpdateError> {
        self.apply_with(&open(), Some(&key()))
    }

    /// Parses and applies under a policy and signer.
    fn apply_with(&self, policy: &Policy, signer: Option<&Name>) -> Result<Outcome, UpdateError> {
        let update = self.parse().expect("the test message parses");
        apply(&zone(), &update, signer, local(), policy, 0)
    }
}

/// Type codes used below.
const A: u16 = 1;
/// NS.
const NS: u16 = 2;
/// CNAME.
const CNAME: u16 = 5;
/// SOA.
const SOA: u16 = 6;
/// TXT.
const TXT: u16 = 16;
/// AAAA.
const AAAA: u16 = 28;
/// ANY (type and class).
const ANY: u16 = 255;
/// Class IN.
const IN: u16 = 1;
/// Class NONE.
const NONE: u16 = 254;

/// The zone an accepted, changing update produced: its diff applied to the
/// old zone by copy and in place (the two must agree), and the result must
/// pass the whole-zone checks the update checked only where it touched.
fn changed(outcome: Result<Outcome, UpdateError>) -> Zone {
    match outcome {
        Ok(Outcome::Changed { diff }) => {
            let mut new = zone();
            diff.apply_to(&mut new)
                .expect("the diff applies to the old zone");
            let mut in_place = zone();
            cutover_zone::edit::apply_in_place(&mut in_place, &diff)
                .expect("the diff applies in place");
            assert_eq!(in_place, new, "in place and by copy, the diff must agree");
            assert_eq!(new.check(), vec![], "the new zone must pass Zone::check");
            new
        }
        other => panic!("expected a change, saw {other:?}"),
    }
}

/// The RCODE of a refused update.
fn rcode(outcome: Result<Outcome, UpdateError>) -> UpdateRcode {
    match outcome {
        Err(e) => e.rcode(),
        Ok(o) => panic!("expected a refusal, saw {o:?}"),
    }
}

/// The A addresses' last octets at a name.
fn a_set(z: &Zone, name: &str) -> Vec<u8> {
    z.get(&n(name), RecordType::A)
        .map(|s| s.rdatas().iter().map(|r| r.wire()[3]).collect())
        .unwrap_or_default()
}

#[test]
fn parse_reads_every_prerequisite_and_update_form() {
    let update = Message::new()
        .pre("www.example.com.", ANY, ANY, 0, &[])
        .pre("www.example.com.", A, ANY, 0, &[])
        .pre("new.example.com.", ANY, NONE, 0, &[])
        .pre("new.example.com.", A, NONE, 0, &[])
        .pre("www.example.com.", A, IN, 0, &[192, 0, 2, 11])
        .pre("www.example.com.", A, IN, 0, &[192, 0, 2, 10])
        .up("new.example.com.", A, IN, 60, &[192, 0, 2, 99])
        .up("www.example.com.", TXT, ANY, 0, &[])
        .up("old.example.com.", ANY, ANY, 0, &[])
        .up("www.example.com.", A, NONE, 0, &[192, 0, 2, 10])
        .parse()
        .unwrap();
    let www = n("www.example.com.");
    assert_eq!(update.id, 0x1234);
    assert_eq!(update.zone, n("example.com."));
    assert_eq!(
        update.prerequisites,
        vec![
            Prerequisite::NameInUse { name: www.clone() },
            Prerequisite::RrsetExists {
                name: www.clone(),
                rtype: RecordType::A
            },
            Prerequisite::NameNotInUse {
                name: n("new.example.com.")
            },
            Prerequisite::RrsetDoesNotExist {
                name: n("new.example.com."),
                rtype: RecordType::A
            },
            Prerequisite::RrsetEquals {
                name: www.clone(),
                rtype: RecordType::A,
                rdatas: vec![a(10), a(11)]
            },
        ]
    );
    assert_eq!(
        update.changes,
        vec![
            Change::Add(Record {
                name: n("new.example.com."),
                ttl: 60,
                rdata: a(99)
            }),
            Change::DeleteRrset {
                name: www.clone(),
                rtype: RecordType::TXT
            },
            Change::DeleteName {
                name: n("old.example.com.")
            },
            Change::DeleteRecord {
                name: www,
                rdata: a(10)
            },
        ]
    );
}

#[test]
fn compressed_names_in_data_are_stored_uncompressed() {
    // The NS data is a pointer to the zone name at offset 12.
    let update = Message::new()
        .up("example.com.", NS, IN, 60, &[0xc0, 12])
        .parse()
        .unwrap();
    assert_eq!(
        update.changes,
        vec![Change::Add(Record {
            name: n("example.com."),
            ttl: 60,
            rdata: ns("example.com.")
        })]
    );
}

#[test]
fn a_tsig_record_in_the_additional_section_is_skipped() {
    let mut message = Message::new().up("x.example.com.", A, IN, 60, &[192, 0, 2, 5]);
    message
        .additional
        .push(Message::record("k.example.com.", 250, ANY, 0, &[1, 2, 3]));
    let update = message.parse().unwrap();
    assert_eq!(update.changes.len(), 1, "the TSIG is not a change");
}

#[test]
fn malformed_updates_are_formerr() {
    let cases: Vec<(&str, Message)> = vec![
        ("two zones", {
            let mut m = Message::new();
            m.zone.push((n("example.org."), SOA, IN));
            m
        }),
        ("no zone", {
            let mut m = Message::new();
            m.zone.clear();
            m
        }),
        ("zone type A", {
            let mut m = Message::new();
            m.zone[0].1 = A;
            m
        }),
        ("a response", {
            let mut m = Message::new();
            m.flags |= 0x80;
            m
        }),
        ("opcode QUERY", {
            let mut m = Message::new();
            m.flags = 0;
            m
        }),
        (
            "prerequisite TTL",
            Message::new().pre("www.example.com.", A, ANY, 5, &[]),
        ),
        (
            "prerequisite ANY with data",
            Message::new().pre("www.example.com.", A, ANY, 0, &[1, 2, 3, 4]),
        ),
        (
            "prerequisite NONE with data",
            Message::new().pre("www.example.com.", A, NONE, 0, &[1, 2, 3, 4]),
        ),
        (
            "prerequisite class CH",
            Message::new().pre("www.example.com.", A, 3, 0, &[]),
        ),
        (
            "value prerequisite of type ANY",
            Message::new().pre("www.example.com.", ANY, IN, 0, &[1]),
        ),
        (
            "add of type ANY",
            Message::new().up("www.example.com.", ANY, IN, 0, &[1]),
        ),
        (
            "add of AXFR",
            Message::new().up("www.example.com.", 252, IN, 0, &[1]),
        ),
        (
            "add without data",
            Message::new().up("www.example.com.", A, IN, 60, &[]),
        ),
        (
            "add with bad data",
            Message::new().up("www.example.com.", A, IN, 60, &[1, 2, 3]),
        ),
        (
            "delete RRset with TTL",
            Message::new().up("www.example.com.", A, ANY, 60, &[]),
        ),
        (
            "delete RRset with data",
            Message::new().up("www.example.com.", A, ANY, 0, &[1, 2, 3, 4]),
        ),
        (
            "delete RRset of MAILA",
            Message::new().up("www.example.com.", 254, ANY, 0, &[]),
        ),
        (
            "delete record with TTL",
            Message::new().up("www.example.com.", A, NONE, 60, &[1, 2, 3, 4]),
        ),
        (
            "delete record without data",
            Message::new().up("www.example.com.", A, NONE, 0, &[]),
        ),
        (
            "delete record of type ANY",
            Message::new().up("www.example.com.", ANY, NONE, 0, &[1]),
        ),
        (
            "update class CH",
            Message::new().up("www.example.com.", A, 3, 0, &[1, 2, 3, 4]),
        ),
    ];
    for (what, message) in cases {
        match message.parse() {
            Err(e) => assert_eq!(e.rcode(), UpdateRcode::FormErr, "{what}: {e}"),
            Ok(u) => panic!("{what}: expected FORMERR, parsed {u:?}"),
        }
    }
    let wire = Message::new()
        .up("www.example.com.", A, IN, 60, &[1, 2, 3, 4])
        .wire();
    for cut in 0..wire.len() {
        let e = Update::parse(&wire[..cut]).expect_err("a truncated message");
        assert_eq!(e.rcode(), UpdateRcode::FormErr, "cut at {cut}: {e}");
    }
    let mut trailing = wire.clone();
    trailing.push(0);
    assert_eq!(Update::parse(&trailing), Err(ParseError::Trailing(1)));
}

#[test]
fn a_zone_class_other_than_in_is_notauth() {
    let mut m = Message::new();
    m.zone[0].2 = 3;
    assert_eq!(m.parse().unwrap_err().rcode(), UpdateRcode::NotAuth);
}

#[test]
fn each_prerequisite_passes_when_true_and_fails_with_its_rcode() {
    let add = |m: Message| m.up("new.example.com.", A, IN, 60, &[192, 0, 2, 99]);
    let cases = [
        (
            Message::new().pre("www.example.com.", ANY, ANY, 0, &[]),
            Message::new().pre("nope.example.com.", ANY, ANY, 0, &[]),
            UpdateRcode::NxDomain,
        ),
        (
            Message::new().pre("www.example.com.", A, ANY, 0, &[]),
            Message::new().pre("www.example.com.", TXT, ANY, 0, &[]),
            UpdateRcode::NxRrset,
        ),
        (
            Message::new().pre("nope.example.com.", ANY, NONE, 0, &[]),
            Message::new().pre("www.example.com.", ANY, NONE, 0, &[]),
            UpdateRcode::YxDomain,
        ),
        (
            Message::new().pre("www.example.com.", TXT, NONE, 0, &[]),
            Message::new().pre("www.example.com.", A, NONE, 0, &[]),
            UpdateRcode::YxRrset,
        ),
        (
            Message::new()
                .pre("www.example.com.", A, IN, 0, &[192, 0, 2, 11])
                .pre("www.example.com.", A, IN, 0, &[192, 0, 2, 10]),
            Message::new().pre("www.example.com.", A, IN, 0, &[192, 0, 2, 10]),
            UpdateRcode::NxRrset,
        ),
        (
            Message::new().pre("www.example.com.", A, ANY, 0, &[]),
            Message::new().pre("www.example.org.", A, ANY, 0, &[]),
            UpdateRcode::NotZone,
        ),
    ];
    for (i, (pass, fail, code)) in cases.into_iter().enumerate() {
        let z = changed(add(pass).apply());
        assert_eq!(a_set(&z, "new.example.com."), vec![99], "case {i} passes");
        assert_eq!(rcode(add(fail).apply()), code, "case {i} fails");
    }
}

#[test]
fn value_prerequisites_compare_names_in_data_without_case() {
    let z = changed(
        Message::new()
            .pre(
                "alias.example.com.",
                CNAME,
                IN,
                0,
                b"\x03WWW\x07EXAMPLE\x03com\x00",
            )
            .up("new.example.com.", A, IN, 60, &[192, 0, 2, 99])
            .apply(),
    );
    assert_eq!(a_set(&z, "new.example.com."), vec![99]);
}

#[test]
fn add_delete_rrset_delete_name_and_delete_record() {
    let z = changed(
        Message::new()
            .up("www.example.com.", A, IN, 60, &[192, 0, 2, 12])
            .up("www.example.com.", A, NONE, 0, &[192, 0, 2, 10])
            .up("alias.example.com.", CNAME, ANY, 0, &[])
            .up("old.example.com.", ANY, ANY, 0, &[])
            .apply(),
    );
    assert_eq!(a_set(&z, "www.example.com."), vec![11, 12]);
    assert_eq!(
        z.get(&n("www.example.com."), RecordType::A).unwrap().ttl,
        60,
        "the RRset takes the TTL of the record added"
    );
    assert!(z.node(&n("alias.example.com.")).is_none());
    assert!(z.node(&n("old.example.com.")).is_none());
    assert_eq!(z.serial(), Some(Serial(11)));
}

#[test]
fn deleting_what_is_not_there_changes_nothing_and_keeps_the_serial() {
    let outcome = Message::new()
        .up("nope.example.com.", ANY, ANY, 0, &[])
        .up("www.example.com.", TXT, ANY, 0, &[])
        .up("www.example.com.", A, NONE, 0, &[10, 0, 0, 1])
        .up("www.example.com.", A, IN, 300, &[192, 0, 2, 10])
        .apply();
    assert_eq!(outcome, Ok(Outcome::Unchanged));
}

#[test]
fn the_serial_rises_by_date_when_the_clock_is_ahead() {
    let update = Message::new()
        .up("x.example.com.", A, IN, 60, &[192, 0, 2, 5])
        .parse()
        .unwrap();
    match apply(
        &zone(),
        &update,
        Some(&key()),
        local(),
        &open(),
        1_700_000_000,
    ) {
        Ok(Outcome::Changed { diff }) => {
            let mut zone = zone();
            diff.apply_to(&mut zone).expect("the diff applies");
            assert_eq!(zone.serial(), Some(Serial(1_700_000_000)));
            assert_eq!((diff.from, diff.to), (Serial(10), Serial(1_700_000_000)));
            assert_eq!(diff.removed[0].rdata, soa(10), "old SOA first");
            assert_eq!(
                diff.added[0].rdata.rtype(),
                RecordType::SOA,
                "new SOA first"
            );
        }
        other => panic!("expected a change, saw {other:?}"),
    }
}

#[test]
fn the_soa_is_replaced_only_at_the_apex_and_only_by_a_newer_serial() {
    let z = changed(
        Message::new()
            .up("example.com.", SOA, IN, 600, soa(50).wire())
            .apply(),
    );
    assert_eq!(
        z.serial(),
        Some(Serial(50)),
        "an explicit newer serial is kept"
    );
    assert_eq!(z.soa_ttl(), Some(600));
    assert_eq!(
        Message::new()
            .up("example.com.", SOA, IN, 600, soa(9).wire())
            .apply(),
        Ok(Outcome::Unchanged),
        "an older serial is ignored"
    );
    assert_eq!(
        Message::new()
            .up("example.com.", SOA, IN, 3600, soa(10).wire())
            .apply(),
        Ok(Outcome::Unchanged),
        "the same serial is ignored"
    );
    assert_eq!(
        Message::new()
            .up("www.example.com.", SOA, IN, 600, soa(50).wire())
            .apply(),
        Ok(Outcome::Unchanged),
        "an SOA below the apex is ignored"
    );
}

#[test]
fn the_soa_is_never_deleted() {
    for message in [
        Message::new().up("example.com.", SOA, ANY, 0, &[]),
        Message::new().up("example.com.", SOA, NONE, 0, soa(10).wire()),
    ] {
        assert_eq!(message.apply(), Ok(Outcome::Unchanged));
    }
}

#[test]
fn the_apex_ns_rrset_is_never_deleted_whole_nor_its_last_record() {
    assert_eq!(
        Message::new().up("example.com.", NS, ANY, 0, &[]).apply(),
        Ok(Outcome::Unchanged)
    );
    let mut ns1 = Vec::new();
    push_name(&mut ns1, &n("ns1.example.com."));
    let mut ns2 = Vec::new();
    push_name(&mut ns2, &n("ns2.example.com."));
    let z = changed(
        Message::new()
            .up("example.com.", NS, NONE, 0, &ns1)
            .up("example.com.", NS, NONE, 0, &ns2)
            .apply(),
    );
    assert_eq!(
        z.get(&n("example.com."), RecordType::NS).unwrap().rdatas(),
        &[ns("ns2.example.com.")],
        "the first delete lands, the last NS stays"
    );
}

#[test]
fn deleting_all_at_the_apex_keeps_soa_and_ns() {
    let z = changed(Message::new().up("example.com.", ANY, ANY, 0, &[]).apply());
    let types: Vec<RecordType> = z
        .node(&n("example.com."))
        .unwrap()
        .rrsets()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(types, vec![RecordType::NS, RecordType::SOA]);
}

#[test]
fn a_cname_never_joins_other_data_nor_other_data_a_cname() {
    let mut target = Vec::new();
    push_name(&mut target, &n("elsewhere.example.net."));
    assert_eq!(
        Message::new()
            .up("www.example.com.", CNAME, IN, 60, &target)
            .up("alias.example.com.", A, IN, 60, &[192, 0, 2, 5])
            .apply(),
        Ok(Outcome::Unchanged)
    );
    let z = changed(
        Message::new()
            .up("alias.example.com.", CNAME, IN, 60, &target)
            .apply(),
    );
    assert_eq!(
        z.get(&n("alias.example.com."), RecordType::CNAME)
            .unwrap()
            .rdatas(),
        &[Rdata::name_only(
            RecordType::CNAME,
            &n("elsewhere.example.net.")
        )],
        "a CNAME replaces the CNAME"
    );
    // Deleting the data first lets the CNAME in, within one update.
    let z = changed(
        Message::new()
            .up("www.example.com.", A, ANY, 0, &[])
            .up("www.example.com.", CNAME, IN, 60, &target)
            .apply(),
    );
    assert!(z.get(&n("www.example.com."), RecordType::CNAME).is_some());
}

#[test]
fn a_result_that_fails_the_zone_checks_is_refused() {
    let mut glueless = Vec::new();
    push_name(&mut glueless, &n("ns.sub.example.com."));
    let error = Message::new()
        .up("sub.example.com.", NS, IN, 60, &glueless)
        .apply()
        .unwrap_err();
    assert!(
        matches!(error, UpdateError::Invalid(_)),
        "expected a zone check failure, saw {error}"
    );
    assert_eq!(error.rcode(), UpdateRcode::Refused);
}

/// The check code of a refused update (`None` when it was not a zone check).
fn invalid(outcome: Result<Outcome, UpdateError>) -> Option<ZoneError> {
    match outcome {
        Err(UpdateError::Invalid(error)) => Some(error),
        _ => None,
    }
}

#[test]
fn removing_the_last_address_of_an_in_zone_nameserver_is_refused() {
    // ns1 is untouched as an NS owner: only its target lost its address.
    let outcome = Message::new()
        .up("ns1.example.com.", A, ANY, 0, &[])
        .apply();
    assert!(
        matches!(invalid(outcome.clone()), Some(ZoneError::MissingGlue { ref target, .. }) if *target == n("ns1.example.com.")),
        "expected MissingGlue for ns1, saw {outcome:?}"
    );
    // Another address kept, or given in the same update: accepted.
    let z = changed(
        Message::new()
            .up(
                "ns1.example.com.",
                AAAA,
                IN,
                60,
                &[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            )
            .up("ns1.example.com.", A, ANY, 0, &[])
            .apply(),
    );
    assert!(
        z.get(&n("ns1.example.com."), RecordType::A).is_none(),
        "A deleted"
    );
}

#[test]
fn removing_a_delegation_uncovers_the_nameservers_below_it_to_the_checks() {
    let target = |name: &str| {
        let mut wire = Vec::new();
        push_name(&mut wire, &n(name));
        wire
    };
    // A delegation with glue, and below it an occluded glueless NS (valid).
    let delegated = changed(
        Message::new()
            .up(
                "sub.example.com.",
                NS,
                IN,
                60,
                &target("ns.sub.example.com."),
            )
            .up("ns.sub.example.com.", A, IN, 60, &[192, 0, 2, 53])
            .up(
                "deep.sub.example.com.",
                NS,
                IN,
                60,
                &target("ns.deep.sub.example.com."),
            )
            .apply(),
    );
    let undelegate = Message::new()
        .up("sub.example.com.", NS, ANY, 0, &[])
        .parse()
        .unwrap();
    let outcome = apply(&delegated, &undelegate, Some(&key()), local(), &open(), 0);
    assert!(
        matches!(invalid(outcome.clone()), Some(ZoneError::MissingGlue { ref name, .. }) if *name == n("deep.sub.example.com.")),
        "expected MissingGlue at deep.sub, saw {outcome:?}"
    );
    // The delegation's glue removed: sub's NS, untouched, lost its address.
    let unglue = Message::new()
        .up("ns.sub.example.com.", A, ANY, 0, &[])
        .parse()
        .unwrap();
    let outcome = apply(&delegated, &unglue, Some(&key()), local(), &open(), 0);
    assert!(
        matches!(invalid(outcome.clone()), Some(ZoneError::MissingGlue { ref name, .. }) if *name == n("sub.example.com.")),
        "expected MissingGlue at sub, saw {outcome:?}"
    );
    let mut whole = delegated.clone();
    whole
        .set_rrset(&n("sub.example.com."), RecordType::NS, Default::default())
        .unwrap();
    assert_eq!(
        whole.check().len(),
        1,
        "the whole-zone check agrees: {:?}",
        whole.check()
    );
}

#[test]
fn names_outside_the_zone_are_notzone_and_another_zone_is_notauth() {
    assert_eq!(
        rcode(
            Message::new()
                .up("www.example.org.", A, IN, 60, &[1, 2, 3, 4])
                .apply()
        ),
        UpdateRcode::NotZone
    );
    let mut other = Message::new();
    other.zone[0].0 = n("example.org.");
    assert_eq!(rcode(other.apply()), UpdateRcode::NotAuth);
}

#[test]
fn the_acl_limits_zones_names_and_types() {
    let mut policy = Policy::deny_all();
    policy.keys.push((
        key(),
        Rule {
            zones: vec![n("example.com.")],
            names: vec![
                "*.dyn.example.com.".parse().unwrap(),
                "www.example.com.".parse().unwrap(),
            ],
            types: Some(vec![RecordType::A, RecordType::AAAA]),
        },
    ));
    let signer = key();
    let try_ = |m: Message| m.apply_with(&policy, Some(&signer));
    changed(try_(Message::new().up(
        "h1.dyn.example.com.",
        A,
        IN,
        60,
        &[1, 2, 3, 4],
    )));
    changed(try_(Message::new().up(
        "a.b.dyn.example.com.",
        A,
        IN,
        60,
        &[1, 2, 3, 4],
    )));
    changed(try_(Message::new().up(
        "WWW.example.com.",
        A,
        IN,
        60,
        &[1, 2, 3, 4],
    )));
    for (what, m) in [
        (
            "the wildcard's own name",
            Message::new().up("dyn.example.com.", A, IN, 60, &[1, 2, 3, 4]),
        ),
        (
            "a name no pattern covers",
            Message::new().up("mail.example.com.", A, IN, 60, &[1, 2, 3, 4]),
        ),
        (
            "a type not listed",
            Message::new().up("h1.dyn.example.com.", TXT, IN, 60, b"\x01x"),
        ),
        (
            "a delete of every type",
            Message::new().up("www.example.com.", ANY, ANY, 0, &[]),
        ),
    ] {
        assert_eq!(rcode(try_(m)), UpdateRcode::Refused, "{what}");
    }
    let other_key = n("other.example.com.");
    let m = Message::new().up("www.example.com.", A, IN, 60, &[1, 2, 3, 4]);
    assert!(matches!(
        m.apply_with(&policy, Some(&other_key)),
        Err(UpdateError::NoAccess { .. })
    ));
    let mut org = Policy::deny_all();
    org.keys.push((key(), Rule::whole_zone(n("example.org."))));
    assert!(
        matches!(
            m.apply_with(&org, Some(&key())),
            Err(UpdateError::NoAccess { .. })
        ),
        "a rule for another zone grants nothing here"
    );
}

#[test]
fn unsigned_updates_are_refused_unless_allowed_for_the_address() {
    let m = Message::new().up("x.example.com.", A, IN, 60, &[1, 2, 3, 4]);
    assert_eq!(rcode(m.apply_with(&open(), None)), UpdateRcode::Refused);
    let mut policy = Policy::deny_all();
    policy.unsigned.push((
        "127.0.0.0/8".parse().unwrap(),
        Rule::whole_zone(n("example.com.")),
    ));
    changed(m.apply_with(&policy, None));
    let update = m.parse().unwrap();
    let outside = IpAddr::from([192, 0, 2, 1]);
    assert_eq!(
        apply(&zone(), &update, None, outside, &policy, 0).map_err(|e| e.rcode()),
        Err(UpdateRcode::Refused)
    );
    assert_eq!(
        apply(&zone(), &update, Some(&key()), local(), &policy, 0).map_err(|e| e.rcode()),
        Err(UpdateRcode::Refused),
        "an address rule is for unsigned updates only"
    );
}

#[test]
fn prefixes_match_their_bits_only() {
    let p: Prefix = "192.0.2.0/24".parse().unwrap();
    assert!(p.contains(IpAddr::from([192, 0, 2, 200])));
    assert!(!p.contains(IpAddr::from([192, 0, 3, 1])));
    assert!(!p.contains("::ffff:192.0.2.1".parse().unwrap()));
    let v6: Prefix = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
    assert!(!v6.contains("2001:db9::1".parse().unwrap()));
    let host: Prefix = "10.0.0.1".parse().unwrap();
    assert!(host.contains(IpAddr::from([10, 0, 0, 1])));
    assert!(!host.contains(IpAddr::from([10, 0, 0, 2])));
    assert!("10.0.0.0/33".parse::<Prefix>().is_err());
    assert!("nope/8".parse::<Prefix>().is_err());
}

#[test]
fn caps_on_records_per_update_and_per_rrset_refuse() {
    let mut policy = open();
    policy.max_records = 2;
    let three = Message::new()
        .pre("www.example.com.", A, ANY, 0, &[])
        .up("x.example.com.", A, IN, 60, &[1, 2, 3, 4])
        .up("y.example.com.", A, IN, 60, &[1, 2, 3, 4]);
    assert!(matches!(
        three.apply_with(&policy, Some(&key())),
        Err(UpdateError::TooManyRecords { count: 3, max: 2 })
    ));
    let mut policy = open();
    policy.max_rrset = 3;
    let third = Message::new().up("www.example.com.", A, IN, 60, &[192, 0, 2, 12]);
    changed(third.apply_with(&policy, Some(&key())));
    let fourth = third.up("www.example.com.", A, IN, 60, &[192, 0, 2, 13]);
    assert!(matches!(
        fourth.apply_with(&policy, Some(&key())),
        Err(UpdateError::RrsetTooLarge {
            count: 4,
            max: 3,
            ..
        })
    ));
}

#[test]
fn the_response_echoes_id_opcode_and_zone() {
    let request = Message::new()
        .up("x.example.com.", A, IN, 60, &[1, 2, 3, 4])
        .wire();
    let out = response(&request, UpdateRcode::NxRrset);
    assert_eq!(&out[..2], &[0x12, 0x34]);
    assert_eq!(out[2], 0x80 | (OPCODE_UPDATE << 3), "QR and opcode 5");
    assert_eq!(out[3], 8, "RCODE NXRRSET");
    assert_eq!(&out[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&out[12..], &request[12..12 + 13 + 4], "the zone section");
    assert_eq!(
        response(&request[..11], UpdateRcode::FormErr),
        Vec::<u8>::new()
    );
    let header_only = response(&request[..12], UpdateRcode::FormErr);
    assert_eq!(header_only.len(), 12);
    assert_eq!(&header_only[4..6], &[0, 0], "no zone to echo");
}
