//! The battery against Amazon Route 53's API as moto implements it, on
//! loopback: writes through dns-update's Route 53 client pointed at moto,
//! reads through the API (ListResourceRecordSets, TTLs included), "someone
//! else's" edits through boto3. moto serves no DNS, so the DNS read-back of
//! a raised TTL is checked through the API instead.

mod battery;

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::time::Duration;

use cutover_peers::moto::Moto;
use cutover_provider::cloud::route53::Route53Access;
use cutover_provider::cloud::CloudProvider;
use cutover_provider::{Change, Provider, ProviderError};
use cutover_zone::zonefile::{parse_str, rdata_to_text};
use cutover_zone::{Rdata, RecordType, Rrset};

/// moto with a hosted zone of the battery zone; its id.
pub fn moto_with_battery_zone() -> (Moto, String) {
    let mut moto = Moto::start();
    let id = moto.create_zone(battery::ORIGIN);
    let zone = parse_str(battery::ZONE_TEXT, "battery", None)
        .expect("the battery zone parses")
        .zone;
    let lines: Vec<(String, u32, String, String)> = zone
        .records()
        .map(|r| {
            (
                r.name.to_string(),
                r.ttl,
                r.rdata.rtype().to_string(),
                rdata_to_text(&r.rdata),
            )
        })
        .collect();
    moto.load(&id, &lines);
    (moto, id)
}

/// Credentials moto takes (it checks none).
fn access(endpoint: &str, zone_id: Option<String>) -> Route53Access {
    Route53Access {
        access_key_id: "AKIDCUTOVERTEST".into(),
        secret_access_key: "route53-secret-for-the-battery".into(),
        session_token: None,
        region: "us-east-1".into(),
        zone_id,
        endpoint: endpoint.into(),
    }
}

/// Every battery case through dns-update's Route 53 client, then what
/// only an API read shows: a TTL raised behind our back, read back.
#[test]
fn route53_through_dns_update_against_moto_passes_the_battery() {
    let (moto, id) = moto_with_battery_zone();
    let endpoint = moto.endpoint.clone();
    let moto = RefCell::new(moto);
    // The hosted zone is found by its name (no zone_id given).
    let provider =
        CloudProvider::route53(access(&endpoint, None), Duration::from_secs(10)).unwrap();
    let edit = |label: &str, ttl: u32, address: Ipv4Addr| {
        moto.borrow_mut().upsert(
            &id,
            &format!("{label}.{}", battery::ORIGIN),
            "A",
            ttl,
            &[&address.to_string()],
        )
    };
    battery::run_all(&battery::Subject {
        provider: &provider,
        edit: &edit,
        dns: None,
        lists_zone: true,
        serial_moves: false,
    });

    // A TTL lowered to 60 and raised to 300 by someone else reads back as 300.
    let changes = [battery::change(
        "short",
        Some(battery::a(3600, [192, 0, 2, 50])),
        Some(battery::a(60, [192, 0, 2, 50])),
    )];
    provider.apply(&battery::zone(), &changes).unwrap();
    edit("short", 300, Ipv4Addr::new(192, 0, 2, 50));
    let seen = provider
        .read_rrsets(&battery::zone(), &[(battery::name("short"), RecordType::A)])
        .unwrap();
    assert_eq!(
        seen,
        vec![Some(battery::a(300, [192, 0, 2, 50]))],
        "the TTL someone else raised reads back through the API"
    );

    // A type the crate does not model is refused before anything is written.
    let sshfp = Rdata::from_wire(RecordType::SSHFP, &[1, 1, 0xab, 0xcd]).unwrap();
    let refused = [Change {
        name: battery::name("www"),
        rtype: RecordType::SSHFP,
        expect: None,
        set: Some(Rrset::new(60, sshfp)),
    }];
    match provider.apply(&battery::zone(), &refused) {
        Err(ProviderError::Unsupported(why)) => assert!(why.contains("SSHFP"), "{why}"),
        other => panic!("expected Unsupported for SSHFP, saw {other:?}"),
    }

    // The same hosted zone named by its id reads the same.
    let by_id =
        CloudProvider::route53(access(&endpoint, Some(id.clone())), Duration::from_secs(10))
            .unwrap();
    assert_eq!(
        by_id.read(&battery::zone()).unwrap(),
        provider.read(&battery::zone()).unwrap(),
        "zone_id = {id} reads the zone found by name"
    );
}

/// `zones = "*"`: every hosted zone of the account, across pages (Route 53
/// gives 100 a page), each then read by the id the list gave.
#[test]
fn route53_lists_every_hosted_zone_page_after_page() {
    let mut moto = Moto::start();
    let created: Vec<String> = (0..103).map(|i| format!("z{i:03}.list.test.")).collect();
    let ids: Vec<String> = created.iter().map(|name| moto.create_zone(name)).collect();
    // moto's own SOA of a new zone is not in zone-file form: give the
    // zone read below a real one.
    moto.upsert(
        &ids[102],
        "z102.list.test.",
        "SOA",
        3600,
        &["ns1.list.test. hostmaster.list.test. 1 3600 600 86400 300"],
    );
    let provider =
        CloudProvider::route53(access(&moto.endpoint, None), Duration::from_secs(10)).unwrap();
    let mut listed: Vec<String> = provider
        .zones()
        .expect("Route 53 lists its zones")
        .iter()
        .map(|n| n.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        listed.len(),
        103,
        "every zone, past the first page: {listed:?}"
    );
    assert_eq!(listed, created, "the zones' names");
    let last = cutover_zone::Name::from_ascii("z102.list.test.").unwrap();
    let zone = provider.read(&last).expect("a listed zone reads");
    assert!(
        zone.get(&last, RecordType::SOA).is_some(),
        "the zone of the second page read by its listed id: {zone:?}"
    );
}
