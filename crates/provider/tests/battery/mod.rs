//! The one test battery every provider runs, against a real server each:
//! the same zone, the same change sets, the same edits by "someone else"
//! made with the server's own tool.
//!
//! ```text
//!  read sees the zone → a change set lands → re-applying changes nothing
//!  → someone else's edit is a conflict, nothing written → a name someone
//!  else created is a conflict → deleting an RRset → a TTL-only change
//!  → a TTL raised behind our back is seen by the read-back
//! ```

#![allow(dead_code)]

pub mod powerdns;
pub mod rfc2136;

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use cutover_provider::{readback, Change, Provider, ProviderError};
use cutover_zone::{Name, Rdata, RecordType, Rrset};

/// The zone every provider starts with.
pub const ZONE_TEXT: &str = "$ORIGIN example.test.
$TTL 3600
@     IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300
@     IN NS  ns1.example.test.
@     IN MX  10 mail.example.test.
@     IN TXT \"v=spf1 ip4:192.0.2.25 -all\"
ns1   IN A   192.0.2.53
www   IN A   192.0.2.10
mail  IN A   192.0.2.25
api   IN A   192.0.2.30
ftp   IN A   192.0.2.21
old   IN A   192.0.2.40
ttl   IN A   192.0.2.60
short IN A   192.0.2.50
";

/// The zone's origin.
pub const ORIGIN: &str = "example.test.";

/// The TSIG key of the RFC 2136 servers: (name, base64 secret).
pub const KEY: (&str, &str) = ("ops.", "c2VjcmV0LWZvci10aGUtcHJvdmlkZXItYmF0dGVyeS0zMmI=");

/// One provider under test and the means to act as someone else.
pub struct Subject<'a> {
    /// The provider.
    pub provider: &'a dyn Provider,
    /// Someone else's edit: the A RRset of `label` (relative to the zone)
    /// becomes one record of `address` with `ttl`, through the server's own tool.
    pub edit: &'a dyn Fn(&str, u32, Ipv4Addr),
    /// The authoritative server to read back from by DNS, when there is one.
    pub dns: Option<SocketAddr>,
    /// Whether `read` lists the whole zone (cloud hosts read by DNS do not).
    pub lists_zone: bool,
    /// Whether a change raises the zone's SOA serial (Route 53 keeps it at 1).
    pub serial_moves: bool,
}

/// A runtime for the async launchers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A name in the zone.
pub fn name(label: &str) -> Name {
    Name::from_str(&format!("{label}.{ORIGIN}")).unwrap()
}

/// An A RRset of one address.
pub fn a(ttl: u32, address: [u8; 4]) -> Rrset {
    Rrset::new(ttl, Rdata::a(Ipv4Addr::from(address)))
}

/// A change of `label`'s A RRset.
pub fn change(label: &str, expect: Option<Rrset>, set: Option<Rrset>) -> Change {
    Change {
        name: name(label),
        rtype: RecordType::A,
        expect,
        set,
    }
}

/// The A RRsets of `labels` as the provider reads them now.
fn current(s: &Subject, labels: &[&str]) -> Vec<Option<Rrset>> {
    let keys: Vec<_> = labels.iter().map(|l| (name(l), RecordType::A)).collect();
    s.provider
        .read_rrsets(&zone(), &keys)
        .unwrap_or_else(|e| panic!("{}: read_rrsets failed: {e}", s.provider.describe()))
}

/// The zone's origin as a name.
pub fn zone() -> Name {
    Name::from_str(ORIGIN).unwrap()
}

/// Runs every case in order (each uses names of its own).
pub fn run_all(s: &Subject) {
    let who = s.provider.describe();
    eprintln!("battery: {who}");
    read_sees_the_zone(s);
    a_change_set_lands(s);
    reapplying_changes_nothing(s);
    someone_elses_edit_is_a_conflict(s);
    a_name_someone_else_created_is_a_conflict(s);
    deleting_an_rrset(s);
    a_ttl_only_change(s);
    a_large_rrset_lands(s);
    the_apex_ns_set_changes(s);
    an_unknown_zone_is_named(s);
    if let Some(dns) = s.dns {
        a_raised_ttl_is_seen_by_the_read_back(s, dns);
    }
    eprintln!("battery: {who}: every case passed");
}

/// `read` returns the zone as loaded (or, for a host that cannot list a
/// zone, says so clearly while `read_rrsets` works).
pub fn read_sees_the_zone(s: &Subject) {
    if s.lists_zone {
        let z = s
            .provider
            .read(&zone())
            .unwrap_or_else(|e| panic!("{}: read failed: {e}", s.provider.describe()));
        assert_eq!(
            z.get(&name("www"), RecordType::A),
            Some(&a(3600, [192, 0, 2, 10])),
            "www A as loaded"
        );
        assert!(z.soa().is_some(), "the zone read has its SOA");
        assert!(
            z.get(&zone(), RecordType::MX).is_some() && z.get(&zone(), RecordType::TXT).is_some(),
            "MX and TXT at the apex read back"
        );
        assert!(
            z.record_count() >= 12,
            "expected at least 12 records, read {}",
            z.record_count()
        );
        let nowhere = Name::from_str("nowhere.test.").unwrap();
        match s.provider.read(&nowhere) {
            Err(ProviderError::UnknownZone(n)) => assert_eq!(n, nowhere),
            other => panic!("expected UnknownZone for nowhere.test., saw {other:?}"),
        }
    } else {
        match s.provider.read(&zone()) {
            Err(ProviderError::Unsupported(why)) => {
                assert!(
                    why.contains("example.test"),
                    "the message names the zone: {why}"
                )
            }
            other => panic!("expected Unsupported from a provider that cannot list, saw {other:?}"),
        }
    }
    assert_eq!(
        current(s, &["www", "absent"]),
        vec![Some(a(3600, [192, 0, 2, 10])), None],
        "read_rrsets of www A and a name that does not exist"
    );
}

/// The change set of [`a_change_set_lands`].
fn switch() -> Vec<Change> {
    vec![
        change(
            "www",
            Some(a(3600, [192, 0, 2, 10])),
            Some(a(60, [198, 51, 100, 20])),
        ),
        change(
            "mail",
            Some(a(3600, [192, 0, 2, 25])),
            Some(a(60, [198, 51, 100, 25])),
        ),
        change("new", None, Some(a(60, [198, 51, 100, 30]))),
    ]
}

/// Three changes (two replaced, one new name) land together; nothing else moves.
pub fn a_change_set_lands(s: &Subject) {
    let changes = switch();
    let applied = s
        .provider
        .apply(&zone(), &changes)
        .unwrap_or_else(|e| panic!("{}: apply failed: {e}", s.provider.describe()));
    let seen = current(s, &["www", "mail", "new", "api"]);
    let wanted: Vec<_> = changes.iter().map(|c| c.set.clone()).collect();
    assert_eq!(
        seen[..3],
        wanted[..],
        "every RRset of the set reads back as set"
    );
    assert_eq!(
        seen[3],
        Some(a(3600, [192, 0, 2, 30])),
        "api A is untouched"
    );
    if s.lists_zone && s.serial_moves {
        let serial = s.provider.read(&zone()).unwrap().serial();
        assert!(
            serial.is_some_and(|s| s.0 > 1),
            "the serial rose above 1, read {serial:?}"
        );
        if let Some(reported) = applied.serial {
            assert_eq!(
                Some(reported),
                serial,
                "apply reports the serial the zone has"
            );
        }
    }
}

/// Re-applying the same change set (a step redone after a crash) succeeds
/// and changes nothing, not even the serial.
pub fn reapplying_changes_nothing(s: &Subject) {
    let before = s.lists_zone.then(|| s.provider.read(&zone()).unwrap());
    let first = s.provider.apply(&zone(), &switch());
    let second = s.provider.apply(&zone(), &switch());
    let (first, second) = match (first, second) {
        (Ok(f), Ok(s)) => (f, s),
        other => panic!("re-applying must succeed, saw {other:?}"),
    };
    assert_eq!(
        first.serial, second.serial,
        "no serial change on a re-apply"
    );
    if let Some(before) = before {
        assert_eq!(
            s.provider.read(&zone()).unwrap(),
            before,
            "the whole zone is as it was before the re-apply"
        );
    }
}

/// Between read and apply someone else changes api A: the change set
/// (which also touches ftp A) stops with a conflict naming api, and
/// neither their edit nor ftp is overwritten.
pub fn someone_elses_edit_is_a_conflict(s: &Subject) {
    let seen = current(s, &["api", "ftp"]);
    assert_eq!(
        seen[0],
        Some(a(3600, [192, 0, 2, 30])),
        "api A before the edit"
    );
    (s.edit)("api", 3600, Ipv4Addr::new(203, 0, 113, 99));
    let changes = [
        change("ftp", seen[1].clone(), Some(a(60, [198, 51, 100, 21]))),
        change("api", seen[0].clone(), Some(a(60, [198, 51, 100, 31]))),
    ];
    match s.provider.apply(&zone(), &changes) {
        Err(e @ ProviderError::Conflict { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("api.example.test.") && text.contains("203.0.113.99"),
                "the conflict names the record and what is there now: {text}"
            );
            assert!(
                text.contains("192.0.2.30"),
                "the conflict says what was expected: {text}"
            );
            eprintln!("battery: {}: {text}", s.provider.describe());
        }
        other => panic!("expected a Conflict on api A, saw {other:?}"),
    }
    assert_eq!(
        current(s, &["api", "ftp"]),
        vec![
            Some(a(3600, [203, 0, 113, 99])),
            Some(a(3600, [192, 0, 2, 21]))
        ],
        "someone else's api A is kept and ftp A (same change set) was not written"
    );
}

/// A name the plan saw absent but someone else created is a conflict too.
pub fn a_name_someone_else_created_is_a_conflict(s: &Subject) {
    assert_eq!(
        current(s, &["late"]),
        vec![None],
        "late A is absent at first"
    );
    (s.edit)("late", 3600, Ipv4Addr::new(203, 0, 113, 7));
    let changes = [change("late", None, Some(a(60, [198, 51, 100, 7])))];
    match s.provider.apply(&zone(), &changes) {
        Err(ProviderError::Conflict {
            name: n,
            expected,
            found,
            ..
        }) => {
            assert_eq!(n, name("late"), "the conflict names late");
            assert_eq!(expected, "absent", "expected absent");
            assert!(
                found.contains("203.0.113.7"),
                "found says what is there: {found}"
            );
        }
        other => panic!("expected a Conflict on late A, saw {other:?}"),
    }
    assert_eq!(
        current(s, &["late"]),
        vec![Some(a(3600, [203, 0, 113, 7]))],
        "late kept"
    );
}

/// Deleting an RRset (the name's only data) removes it.
pub fn deleting_an_rrset(s: &Subject) {
    let changes = [change("old", Some(a(3600, [192, 0, 2, 40])), None)];
    s.provider
        .apply(&zone(), &changes)
        .unwrap_or_else(|e| panic!("{}: delete failed: {e}", s.provider.describe()));
    assert_eq!(current(s, &["old"]), vec![None], "old A is gone");
    s.provider
        .apply(&zone(), &changes)
        .unwrap_or_else(|e| panic!("{}: re-delete failed: {e}", s.provider.describe()));
}

/// Lowering only the TTL (the first step of every migration) lands.
pub fn a_ttl_only_change(s: &Subject) {
    let changes = [change(
        "ttl",
        Some(a(3600, [192, 0, 2, 60])),
        Some(a(60, [192, 0, 2, 60])),
    )];
    s.provider
        .apply(&zone(), &changes)
        .unwrap_or_else(|e| panic!("{}: TTL change failed: {e}", s.provider.describe()));
    assert_eq!(
        current(s, &["ttl"]),
        vec![Some(a(60, [192, 0, 2, 60]))],
        "TTL now 60"
    );
}

/// A TTL lowered to 60 and then raised to 300 behind our back (as a host
/// with a TTL floor does) is reported by the read-back, with both values.
pub fn a_raised_ttl_is_seen_by_the_read_back(s: &Subject, dns: SocketAddr) {
    let changes = [change(
        "short",
        Some(a(3600, [192, 0, 2, 50])),
        Some(a(60, [192, 0, 2, 50])),
    )];
    s.provider.apply(&zone(), &changes).unwrap();
    let clean = readback::check(&[dns], &changes, Duration::from_secs(2));
    assert!(
        clean.floors.is_empty(),
        "no floor right after the apply: {clean:?}"
    );
    assert!(
        clean.unanswered.is_empty(),
        "every server answered: {clean:?}"
    );
    (s.edit)("short", 300, Ipv4Addr::new(192, 0, 2, 50));
    let seen = readback::check(&[dns], &changes, Duration::from_secs(2));
    assert_eq!(seen.floors.len(), 1, "one floor expected, saw {seen:?}");
    let floor = &seen.floors[0];
    assert_eq!(
        (&floor.name, floor.requested, floor.served),
        (&name("short"), 60, 300),
        "the floor names short A, asked 60, served 300"
    );
}

/// A change set the provider refuses as a whole (a CNAME beside mail's A
/// record, next to a valid change of www) writes nothing: for providers
/// whose write is one transaction (the store, PowerDNS's PATCH).
pub fn a_refused_change_set_writes_nothing(s: &Subject) {
    let www = current(s, &["www"]).remove(0);
    let target = Rdata::name_only(RecordType::CNAME, &name("www"));
    let changes = [
        change("www", www.clone(), Some(a(60, [198, 51, 100, 99]))),
        Change {
            name: name("mail"),
            rtype: RecordType::CNAME,
            expect: None,
            set: Some(Rrset::new(60, target)),
        },
    ];
    match s.provider.apply(&zone(), &changes) {
        Err(ProviderError::Refused(why)) => {
            assert!(
                why.contains("mail.example.test"),
                "the refusal names mail: {why}"
            );
            eprintln!("battery: {}: {why}", s.provider.describe());
        }
        other => panic!("expected the CNAME beside A to be refused, saw {other:?}"),
    }
    assert_eq!(
        current(s, &["www"]),
        vec![www],
        "www A was not written either"
    );
}

/// An RRset of 30 TXT records (about 2.4 KB): the UPDATE is too long for
/// UDP and the answer to the read is truncated, so both go over TCP.
pub fn a_large_rrset_lands(s: &Subject) {
    let big = name("big");
    let mut rrset: Option<Rrset> = None;
    for i in 0..30 {
        let text =
            format!("\"record {i:02} of a set too large for one UDP answer, padding padding\"");
        let rdata =
            cutover_zone::zonefile::rdata_from_text(RecordType::TXT, &text, &zone()).unwrap();
        match &mut rrset {
            None => rrset = Some(Rrset::new(300, rdata)),
            Some(set) => {
                set.insert(rdata);
            }
        }
    }
    let changes = [Change {
        name: big.clone(),
        rtype: RecordType::TXT,
        expect: None,
        set: rrset.clone(),
    }];
    s.provider
        .apply(&zone(), &changes)
        .unwrap_or_else(|e| panic!("{}: large RRset failed: {e}", s.provider.describe()));
    let seen = s
        .provider
        .read_rrsets(&zone(), &[(big, RecordType::TXT)])
        .unwrap_or_else(|e| {
            panic!(
                "{}: reading the large RRset failed: {e}",
                s.provider.describe()
            )
        });
    assert_eq!(seen, vec![rrset], "all 30 TXT records read back");
}

/// The apex NS set replaced ({ns1} → {ns2}, ns2's glue added first): RFC
/// 2136 servers ignore an RRset delete of the apex NS, so this takes the
/// add-then-delete-each path.
pub fn the_apex_ns_set_changes(s: &Subject) {
    let z = zone();
    s.provider
        .apply(&z, &[change("ns2", None, Some(a(3600, [192, 0, 2, 54])))])
        .unwrap_or_else(|e| panic!("{}: ns2 glue failed: {e}", s.provider.describe()));
    let ns = |label: &str| Rdata::name_only(RecordType::NS, &name(label));
    let now = s
        .provider
        .read_rrsets(&z, &[(z.clone(), RecordType::NS)])
        .unwrap();
    assert_eq!(
        now,
        vec![Some(Rrset::new(3600, ns("ns1")))],
        "apex NS as loaded"
    );
    let changes = [Change {
        name: z.clone(),
        rtype: RecordType::NS,
        expect: now[0].clone(),
        set: Some(Rrset::new(3600, ns("ns2"))),
    }];
    s.provider
        .apply(&z, &changes)
        .unwrap_or_else(|e| panic!("{}: apex NS change failed: {e}", s.provider.describe()));
    assert_eq!(
        s.provider
            .read_rrsets(&z, &[(z.clone(), RecordType::NS)])
            .unwrap(),
        vec![changes[0].set.clone()],
        "apex NS is now ns2 only"
    );
}

/// A change set for a zone the provider does not hold names the zone.
pub fn an_unknown_zone_is_named(s: &Subject) {
    let nowhere = Name::from_str("nowhere.test.").unwrap();
    let changes = [Change {
        name: Name::from_str("www.nowhere.test.").unwrap(),
        rtype: RecordType::A,
        expect: None,
        set: Some(a(60, [198, 51, 100, 1])),
    }];
    match s.provider.apply(&nowhere, &changes) {
        Err(ProviderError::UnknownZone(n)) => assert_eq!(n, nowhere, "names nowhere.test."),
        other => panic!("expected UnknownZone for nowhere.test., saw {other:?}"),
    }
}
