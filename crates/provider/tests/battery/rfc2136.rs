//! RFC 2136 only: the server's prerequisites, with no read before the
//! UPDATE, keep what someone else wrote (the case of a write landing
//! between the provider's read and its UPDATE).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use cutover_nameserver::tsig::Key;
use cutover_provider::{Provider, ProviderError, Rfc2136Provider};

use super::{a, change, name, zone};

/// Every battery case, the server's own prerequisites, an ignored CNAME and
/// an unknown key, against the RFC 2136 server at `addr` that serves the
/// battery zone and knows [`super::KEY`]; `send` hands an nsupdate script
/// (without `send`) to the server's own tool, as someone else.
pub fn run_against(addr: SocketAddr, send: &dyn Fn(&str)) {
    let key = Key::from_text(super::KEY.0, "hmac-sha256", super::KEY.1).unwrap();
    let provider = Rfc2136Provider::new(addr, key, Duration::from_secs(2));
    let edit = |label: &str, ttl: u32, address: Ipv4Addr| {
        send(&format!(
            "zone {origin}\nupdate delete {label}.{origin} A\nupdate add {label}.{origin} {ttl} A {address}",
            origin = super::ORIGIN
        ));
    };
    super::run_all(&super::Subject {
        provider: &provider,
        edit: &edit,
        dns: Some(addr),
        lists_zone: true,
        serial_moves: true,
    });

    prerequisites_keep_a_late_edit(&provider, &edit);
    an_ignored_record_is_reported(&provider);

    // A key the server does not know is refused, and says which key.
    let stranger = Key::from_text("stranger.", "hmac-sha256", super::KEY.1).unwrap();
    let refused = Rfc2136Provider::new(addr, stranger, Duration::from_secs(2));
    let changes = [change("www", None, Some(a(60, [198, 51, 100, 99])))];
    match refused.apply(&zone(), &changes) {
        Err(ProviderError::Conflict { .. }) => {}
        other => panic!("www exists, so the pre-read conflict comes first; saw {other:?}"),
    }
    let changes = [change("fresh", None, Some(a(60, [198, 51, 100, 99])))];
    match refused.apply(&zone(), &changes) {
        Err(ProviderError::Refused(why)) => {
            assert!(why.contains("stranger"), "the refusal names the key: {why}")
        }
        other => panic!("expected Refused for an unknown key, saw {other:?}"),
    }
}

/// Someone else edits `guard` A; an UPDATE still expecting the old value
/// (sent straight, without the pre-read) is refused by the server
/// (NXRRSET), reported as a conflict naming guard, and the other change
/// of the same UPDATE (`other` A) is not applied either. Then the same
/// for a name the UPDATE expects absent but someone else created (YXRRSET).
pub fn prerequisites_keep_a_late_edit(
    provider: &Rfc2136Provider,
    edit: &dyn Fn(&str, u32, Ipv4Addr),
) {
    let z = zone();
    let before = provider.read(&z).expect("AXFR before");
    let guard_then = before
        .get(&name("guard"), cutover_zone::RecordType::A)
        .cloned();
    assert_eq!(guard_then, None, "guard A absent in the battery zone");
    // Create the two names the case works on, through the provider.
    provider
        .apply(
            &z,
            &[
                change("guard", None, Some(a(3600, [192, 0, 2, 70]))),
                change("other", None, Some(a(3600, [192, 0, 2, 71]))),
            ],
        )
        .expect("create guard and other");
    edit("guard", 3600, Ipv4Addr::new(203, 0, 113, 70));
    let stale = [
        change(
            "other",
            Some(a(3600, [192, 0, 2, 71])),
            Some(a(60, [198, 51, 100, 71])),
        ),
        change(
            "guard",
            Some(a(3600, [192, 0, 2, 70])),
            Some(a(60, [198, 51, 100, 70])),
        ),
    ];
    match provider.update(&z, &stale) {
        Err(ProviderError::Conflict { name: n, found, .. }) => {
            assert_eq!(n, name("guard"), "the conflict names guard");
            assert!(
                found.contains("203.0.113.70"),
                "found names the new value: {found}"
            );
        }
        other => panic!("expected the server's NXRRSET as a Conflict, saw {other:?}"),
    }
    let after = provider.read(&z).expect("AXFR after");
    assert_eq!(
        after.get(&name("guard"), cutover_zone::RecordType::A),
        Some(&a(3600, [203, 0, 113, 70])),
        "someone else's guard A is kept"
    );
    assert_eq!(
        after.get(&name("other"), cutover_zone::RecordType::A),
        Some(&a(3600, [192, 0, 2, 71])),
        "the other change of the refused UPDATE was not applied"
    );

    edit("racer", 3600, Ipv4Addr::new(203, 0, 113, 71));
    let absent = [change("racer", None, Some(a(60, [198, 51, 100, 72])))];
    match provider.update(&z, &absent) {
        Err(ProviderError::Conflict {
            name: n, expected, ..
        }) => {
            assert_eq!(
                (n, expected.as_str()),
                (name("racer"), "absent"),
                "YXRRSET conflict"
            );
        }
        other => panic!("expected the server's YXRRSET as a Conflict, saw {other:?}"),
    }
    assert_eq!(
        provider
            .read(&z)
            .unwrap()
            .get(&name("racer"), cutover_zone::RecordType::A),
        Some(&a(3600, [203, 0, 113, 71])),
        "someone else's racer A is kept"
    );
}

/// A CNAME added beside an A record: RFC 2136 servers answer NOERROR and
/// ignore it (§3.4.2.2); the provider reads back and refuses by name.
pub fn an_ignored_record_is_reported(provider: &Rfc2136Provider) {
    let z = zone();
    provider
        .apply(&z, &[change("both", None, Some(a(3600, [192, 0, 2, 80])))])
        .expect("create both A");
    let target = cutover_zone::Rdata::name_only(cutover_zone::RecordType::CNAME, &name("www"));
    let cname = cutover_provider::Change {
        name: name("both"),
        rtype: cutover_zone::RecordType::CNAME,
        expect: None,
        set: Some(cutover_zone::Rrset::new(60, target)),
    };
    match provider.apply(&z, &[cname]) {
        Err(ProviderError::Refused(why)) => {
            assert!(
                why.contains("both.example.test. CNAME") && why.contains("ignored"),
                "the refusal names the ignored RRset: {why}"
            );
            eprintln!("battery: {}: {why}", provider.describe());
        }
        other => panic!("expected the ignored CNAME to be refused, saw {other:?}"),
    }
}
