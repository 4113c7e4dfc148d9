//! The battery against the cloud provider: dns-update's
//! PowerDNS backend pointed at a local pdns_server, the nearest thing to a
//! cloud DNS host that runs on loopback. Reads go by DNS to the server's
//! DNS port, as they would to a cloud host's nameservers.

mod battery;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use cutover_peers::powerdns::PowerDns;
use cutover_provider::cloud::CloudProvider;
use cutover_provider::{Change, Provider, ProviderError};
use cutover_zone::{Name, Rdata, RecordType, Rrset};
use dns_update::DnsUpdater;

/// `pdns` driven as a cloud host: dns-update's PowerDNS client for
/// writes, DNS to `addr` for reads.
fn as_cloud_host(pdns: &PowerDns, addr: SocketAddr) -> CloudProvider {
    let updater = DnsUpdater::new_pdns(
        &pdns.api_key,
        Some(&pdns.api_url),
        Some("localhost"),
        Some(Duration::from_secs(10)),
    )
    .expect("a dns-update PowerDNS client");
    CloudProvider::new(
        updater,
        format!("PowerDNS at {} as a cloud host", pdns.api_url),
        vec![addr],
        Duration::from_secs(2),
    )
    .unwrap()
}

/// Every battery case, an unmodelled type, MX and TXT, and the documented non-atomic write.
#[test]
fn cloud_host_through_dns_update_passes_the_battery() {
    // A host that transfers its zones to no one: read RRset by RRset.
    let (addr, pdns) = battery::powerdns::start_with("disable-axfr=yes\n");
    let provider = as_cloud_host(&pdns, addr);
    let edit = |label: &str, ttl: u32, address: Ipv4Addr| {
        battery::powerdns::replace_a(&pdns, label, ttl, address)
    };
    battery::run_all(&battery::Subject {
        provider: &provider,
        edit: &edit,
        dns: Some(addr),
        lists_zone: false,
        serial_moves: true,
    });

    // A type the crate does not model is refused before anything is written.
    let sshfp = Rdata::from_wire(RecordType::SSHFP, &[1, 1, 0xab, 0xcd]).unwrap();
    let changes = [Change {
        name: battery::name("www"),
        rtype: RecordType::SSHFP,
        expect: None,
        set: Some(Rrset::new(60, sshfp)),
    }];
    match provider.apply(&battery::zone(), &changes) {
        Err(ProviderError::Unsupported(why)) => assert!(why.contains("SSHFP"), "{why}"),
        other => panic!("expected Unsupported for SSHFP, saw {other:?}"),
    }

    // MX and TXT go through the crate's record model and read back equal.
    let apex: Name = battery::zone();
    let mx = cutover_zone::zonefile::rdata_from_text(RecordType::MX, "20 mx2.example.test.", &apex)
        .unwrap();
    let txt = cutover_zone::zonefile::rdata_from_text(
        RecordType::TXT,
        "\"v=spf1 ip4:198.51.100.25 -all\"",
        &apex,
    )
    .unwrap();
    let keys = [
        (apex.clone(), RecordType::MX),
        (apex.clone(), RecordType::TXT),
    ];
    let now = provider.read_rrsets(&apex, &keys).unwrap();
    let changes = [
        Change {
            name: apex.clone(),
            rtype: RecordType::MX,
            expect: now[0].clone(),
            set: Some(Rrset::new(300, mx)),
        },
        Change {
            name: apex.clone(),
            rtype: RecordType::TXT,
            expect: now[1].clone(),
            set: Some(Rrset::new(300, txt)),
        },
    ];
    provider.apply(&apex, &changes).expect("MX and TXT change");
    let after = provider.read_rrsets(&apex, &keys).unwrap();
    assert_eq!(after[0], changes[0].set, "MX reads back as set");
    assert_eq!(after[1], changes[1].set, "TXT reads back as set");

    // Not atomic across RRsets (documented): a change set whose second
    // RRset the host refuses leaves the first one written.
    let www = provider
        .read_rrsets(&apex, &[(battery::name("www"), RecordType::A)])
        .unwrap();
    let target = Rdata::name_only(RecordType::CNAME, &battery::name("www"));
    let changes = [
        battery::change(
            "www",
            www[0].clone(),
            Some(battery::a(60, [198, 51, 100, 99])),
        ),
        Change {
            name: battery::name("mail"),
            rtype: RecordType::CNAME,
            expect: None,
            set: Some(Rrset::new(60, target)),
        },
    ];
    match provider.apply(&apex, &changes) {
        Err(ProviderError::Refused(why)) => {
            assert!(
                why.contains("mail.example.test"),
                "the refusal names mail: {why}"
            )
        }
        other => panic!("expected the CNAME beside A to be refused, saw {other:?}"),
    }
    assert_eq!(
        provider
            .read_rrsets(&apex, &[(battery::name("www"), RecordType::A)])
            .unwrap(),
        vec![changes[0].set.clone()],
        "the first RRset was written before the host refused the second"
    );
}

/// A host whose servers transfer the zone to this machine is listed whole
/// by AXFR, TTLs included, as it serves it.
#[test]
fn a_cloud_host_that_transfers_the_zone_is_listed_whole() {
    let (addr, pdns) = battery::powerdns::start();
    let provider = as_cloud_host(&pdns, addr);
    let zone = provider
        .read(&battery::zone())
        .unwrap_or_else(|e| panic!("expected the zone by AXFR, saw {e}"));
    assert!(zone.soa().is_some(), "the zone listed has its SOA");
    assert_eq!(
        zone.get(&battery::name("www"), RecordType::A),
        Some(&battery::a(3600, [192, 0, 2, 10])),
        "www A with its TTL, as served"
    );
    assert!(
        zone.record_count() >= 12,
        "expected the whole zone (at least 12 records), read {}",
        zone.record_count()
    );
    // A host read by DNS cannot say which zones it holds: zones = "*" is
    // refused, with why.
    match provider.zones() {
        Err(ProviderError::Unsupported(why)) => assert!(
            why.contains("cannot list the zones it holds"),
            "says why: {why}"
        ),
        other => panic!("expected Unsupported, saw {other:?}"),
    }
}
