//! The battery against cutover's own store (a store file in a tempdir).

mod battery;

use std::net::Ipv4Addr;
use std::sync::Arc;

use cutover_provider::EmbeddedProvider;
use cutover_store::Store;
use cutover_zone::zonefile;
use cutover_zone::RecordType;

/// Every battery case and a change set the zone checks refuse, against the store.
#[test]
fn embedded_store_passes_the_battery() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("cutover.db")).unwrap());
    let parsed = zonefile::parse_str(battery::ZONE_TEXT, "battery.zone", Some(&battery::zone()))
        .expect("the battery zone parses");
    store.create_zone(&parsed.zone, "battery").unwrap();
    let provider = EmbeddedProvider::new(store.clone());
    assert_eq!(
        cutover_provider::Provider::zones(&provider).expect("the store lists its zones"),
        vec![battery::zone()],
        "zones = \"*\": the store's one zone"
    );
    let edit = |label: &str, ttl: u32, address: Ipv4Addr| {
        store
            .edit(&battery::zone(), "someone else", |z| {
                z.set_rrset(
                    &battery::name(label),
                    RecordType::A,
                    battery::a(ttl, address.octets()),
                )
                .map_err(|e| e.to_string())
            })
            .expect("someone else's edit of the store");
    };
    battery::run_all(&battery::Subject {
        provider: &provider,
        edit: &edit,
        dns: None,
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
    let versions = store.versions(&battery::zone()).unwrap();
    assert!(
        versions.len() >= 6,
        "every landed change set is one journal version; saw {}",
        versions.len()
    );
}
