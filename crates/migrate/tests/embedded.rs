//! A whole migration over cutover's own store: the provider built from the
//! migration file (`provider::build`), the runner's tables in the same
//! SQLite file as the zones, the store's journal showing every change.

mod support;

use std::sync::Arc;

use cutover_migrate::provider::{build, BuildContext, BuildError, ProviderSpec, Secret};
use cutover_migrate::{
    plan, Effects, ManualClock, MigrationFile, Migrations, NoFlusher, NoMail, Observations, State,
};
use cutover_provider::Provider;
use cutover_store::Store;
use cutover_zone::zonefile::{parse_str, rdata_to_text};
use cutover_zone::{Name, RecordType};
use support::{t0, ScriptedChecks, FILE, ZONE};

#[test]
fn a_migration_over_the_store_ends_with_the_zone_as_intended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("cutover.db");
    let store = Store::open(&db).expect("store");
    let zone = parse_str(ZONE, "z", None).expect("zone").zone;
    store.create_zone(&zone, "test").expect("create");
    let serial_before = store
        .zone(zone.origin())
        .expect("read")
        .expect("zone")
        .serial();

    let file = MigrationFile::parse(FILE, "m.toml").expect("file");
    let provider: Arc<dyn Provider> = Arc::from(
        build(
            &file.provider,
            &file.keys,
            &BuildContext {
                store: Some(db.clone()),
            },
        )
        .expect("the embedded provider builds"),
    );
    let held = provider.read(&file.zone).expect("read");
    let plan = plan(&file, &held, &Observations::default(), t0()).expect("plan");
    let migrations = Migrations::open(&db).expect("open");
    let id = migrations
        .start("m.toml", FILE, &plan, t0())
        .expect("start");

    let checks = ScriptedChecks::new(provider.clone());
    let clock = ManualClock::new(t0());
    let fx = Effects {
        provider: &*provider,
        checks: &checks,
        flusher: &NoFlusher,
        mail: &NoMail,
        clock: &clock,
    };
    let mut ticks = 0;
    loop {
        let report = migrations.tick(id, &fx).expect("tick");
        ticks += 1;
        match report.next_due {
            Some(due) => clock.set(due),
            None => break,
        }
        assert!(
            ticks < 20,
            "the migration should end in a few ticks: {report:?}"
        );
    }
    let status = migrations.status(id).expect("status");
    assert_eq!(status.state, State::Done, "{status:?}");

    let after = store.zone(zone.origin()).expect("read").expect("zone");
    let www = Name::from_ascii("www.example.com.").expect("name");
    let set = after.get(&www, RecordType::A).expect("www A");
    assert_eq!(set.ttl, 7200, "original TTL restored");
    assert_eq!(
        set.rdatas().iter().map(rdata_to_text).collect::<Vec<_>>(),
        vec!["198.51.100.20".to_string()],
        "www moved"
    );
    let rise = after.serial().expect("serial").0 - serial_before.expect("serial").0;
    assert_eq!(rise, 3, "three versions: lowered, switched, restored");
    let versions = store.versions(zone.origin()).expect("versions");
    assert_eq!(
        versions.len(),
        4,
        "create + three migration versions: {versions:?}"
    );
    assert_eq!(
        migrations.audit(id).expect("audit").len(),
        6,
        "two RRsets x three changes"
    );
}

#[test]
fn build_refuses_what_it_cannot_make_and_names_why() {
    let cloud = ProviderSpec::Cloud {
        service: "cloudflare".into(),
        secrets: vec![(
            "token".into(),
            Secret::File("/nonexistent/cutover/cf.token".into()),
        )],
        settings: Vec::new(),
        nameservers: vec!["127.0.0.1:53".into()],
    };
    match build(&cloud, &[], &BuildContext::default()) {
        Err(BuildError::Invalid(why)) => assert!(
            why.contains("provider.token") && why.contains("/nonexistent/cutover/cf.token"),
            "the key and the file are named: {why}"
        ),
        Err(e) => panic!("expected Invalid, got {e}"),
        Ok(p) => panic!("expected an error, got {}", p.describe()),
    }
    let unknown = ProviderSpec::Cloud {
        service: "nowhere-dns".into(),
        secrets: Vec::new(),
        settings: Vec::new(),
        nameservers: Vec::new(),
    };
    match build(&unknown, &[], &BuildContext::default()) {
        Err(BuildError::Invalid(why)) => assert!(
            why.contains("\"nowhere-dns\"") && why.contains("\"route53\""),
            "the unknown service and the supported ones: {why}"
        ),
        Err(e) => panic!("expected Invalid, got {e}"),
        Ok(p) => panic!("expected an error, got {}", p.describe()),
    }
    match build(&ProviderSpec::Embedded, &[], &BuildContext::default()) {
        Err(BuildError::Invalid(why)) => assert!(why.contains("store"), "{why}"),
        Err(e) => panic!("expected Invalid, got {e}"),
        Ok(p) => panic!("expected an error, got {}", p.describe()),
    }
    let file = MigrationFile::parse(
        "version = 1\nzone = \"example.com.\"\nprovider = { kind = \"rfc2136\", server = \"127.0.0.1:5399\", key = \"ops.\" }\n[[key]]\nname = \"ops.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n",
        "m.toml",
    )
    .expect("file");
    let p = build(&file.provider, &file.keys, &BuildContext::default()).expect("rfc2136 builds");
    assert!(p.describe().contains("127.0.0.1:5399"), "{}", p.describe());
}
