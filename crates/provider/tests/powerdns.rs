//! The battery against PowerDNS Authoritative through its HTTP API;
//! "someone else" is pdnsutil on the same database.
//!
//! PowerDNS has no prerequisites: the provider reads, compares and PATCHes.
//! A conflict found by the comparison writes nothing (the PATCH is never
//! sent), which is what the battery checks; an edit landing inside the
//! few milliseconds between GET and PATCH would be overwritten (documented
//! in the module).

mod battery;

use std::net::Ipv4Addr;

use cutover_provider::{PowerDnsConfig, PowerDnsProvider, Provider, ProviderError};

/// Every battery case, a PATCH refused whole, and a wrong API key, against PowerDNS.
#[test]
fn powerdns_api_passes_the_battery() {
    let (addr, pdns) = battery::powerdns::start();
    let provider = PowerDnsProvider::new(&PowerDnsConfig {
        url: pdns.api_url.clone(),
        api_key: pdns.api_key.clone(),
        server: None,
        timeout_ms: None,
    });
    let edit = |label: &str, ttl: u32, address: Ipv4Addr| {
        battery::powerdns::replace_a(&pdns, label, ttl, address)
    };
    battery::run_all(&battery::Subject {
        provider: &provider,
        edit: &edit,
        dns: Some(addr),
        lists_zone: true,
        serial_moves: true,
    });

    battery::a_refused_change_set_writes_nothing(&battery::Subject {
        provider: &provider,
        edit: &edit,
        dns: None,
        lists_zone: true,
        serial_moves: true,
    });
    // A wrong API key is refused.
    let wrong = PowerDnsProvider::new(&PowerDnsConfig {
        url: pdns.api_url.clone(),
        api_key: "not-the-key".into(),
        server: None,
        timeout_ms: None,
    });
    match wrong.read(&battery::zone()) {
        Err(ProviderError::Refused(why)) => assert!(why.contains("key"), "says the key: {why}"),
        other => panic!("expected Refused for a wrong API key, saw {other:?}"),
    }
    // zones = "*": the server's list of zones, through the same key.
    assert_eq!(
        provider.zones().expect("PowerDNS lists its zones"),
        vec![battery::zone()],
        "the one zone the server holds"
    );
    match wrong.zones() {
        Err(ProviderError::Refused(why)) => assert!(why.contains("key"), "says the key: {why}"),
        other => panic!("expected Refused for a wrong API key, saw {other:?}"),
    }
}
