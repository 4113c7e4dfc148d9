//! The real checks against real peers: knotd as the authority, Unbound as
//! the resolver, an HTTP server standing for the new web server.

use cutover_migrate::checks::{observe, ProbeChecks};
use cutover_migrate::file::{Check, CheckKind, MigrationFile, Verify};
use cutover_migrate::{plan, Checks, StepKind};
use cutover_peers::http::HttpServer;
use cutover_peers::{hold_tcp_on, Knot, Unbound, LOOPBACK};
use cutover_zone::zonefile::parse_str;
use cutover_zone::{Name, RecordType};
use jiff::Timestamp;

/// The zone knotd serves.
const ZONE: &str = "$ORIGIN example.test.\n$TTL 3600\n\
@ IN SOA ns1 hostmaster 2026030101 3600 600 1209600 300\n\
@ IN NS ns1\n\
ns1 IN A 127.0.0.1\n\
www 300 IN A 127.0.0.1\n";

#[test]
fn surveys_and_service_checks_see_what_real_servers_serve() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let knot = runtime.block_on(Knot::start(LOOPBACK, &[("example.test.", ZONE)]));
    let unbound = runtime.block_on(Unbound::start(
        &[("example.test", knot.addr)],
        "",
        "example.test.",
    ));
    let web = HttpServer::start(hold_tcp_on(LOOPBACK), "new");
    let verify = Verify {
        authorities: vec![knot.addr],
        resolvers: vec![unbound.addr],
        tries: 3,
        interval: 1,
        ..Verify::default()
    };
    let checks = ProbeChecks::new();
    let zone = Name::from_ascii("example.test.").expect("name");
    let www = Name::from_ascii("www.example.test.").expect("name");

    let survey = checks.survey(&zone, &[(www.clone(), RecordType::A)], &verify);
    assert_eq!(
        survey.authorities.len(),
        1,
        "one authority asked: {survey:?}"
    );
    let a = &survey.authorities[0];
    assert_eq!(a.serial, Some(2026030101), "knotd's serial: {a:?}");
    assert_eq!(a.answers[0].values, vec!["127.0.0.1".to_string()], "{a:?}");
    assert_eq!(a.answers[0].ttl, Some(300), "the TTL served: {a:?}");
    let r = &survey.resolvers[0];
    assert_eq!(
        r.answers[0].values,
        vec!["127.0.0.1".to_string()],
        "through Unbound: {r:?}"
    );
    assert!(
        r.answers[0].ttl.is_some_and(|t| t <= 300),
        "the resolver reports the TTL it has left: {r:?}"
    );

    let http = Check {
        kind: CheckKind::Http {
            url: format!("http://www.example.test:{}/healthz", web.addr.port()),
            expect_status: 200,
            body_contains: None,
        },
        address: None,
    };
    let pinned = checks.service(&http, Some("127.0.0.1".parse().expect("ip")), &verify);
    assert!(pinned.ok, "pinned to the new address, healthy: {pinned:?}");
    let named = checks.service(&http, None, &verify);
    assert!(named.ok, "through the names (Unbound): {named:?}");
    assert!(
        named.what.contains("resolved to 127.0.0.1"),
        "{}",
        named.what
    );
    assert!(web.health_checks() >= 2, "the server saw both checks");
    web.set_healthy(false);
    let sick = checks.service(&http, Some("127.0.0.1".parse().expect("ip")), &verify);
    assert!(!sick.ok, "503 fails the check: {sick:?}");
    assert!(
        sick.detail.contains("503"),
        "says what it saw: {}",
        sick.detail
    );

    let tcp = Check {
        kind: CheckKind::Tcp {
            host: "www.example.test".into(),
            port: web.addr.port(),
        },
        address: None,
    };
    assert!(checks.service(&tcp, None, &verify).ok, "the port is open");
    let closed = checks.service(&tcp, Some("127.0.0.9".parse().expect("ip")), &verify);
    assert!(!closed.ok, "nothing listens on 127.0.0.9: {closed:?}");

    // The observations feed the planner: the wait follows what is served.
    let file = MigrationFile::parse(
        &format!(
            "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n\
             [[move]]\nfrom = \"127.0.0.1\"\nto = \"127.0.0.2\"\n[schedule]\nmargin = 5\n\
             [verify]\nauthorities = [\"{}\"]\nresolvers = [\"{}\"]\n",
            knot.addr, unbound.addr
        ),
        "m.toml",
    )
    .expect("file");
    // The provider's copy says 60 s for www; knotd serves 300: the wait follows knotd.
    let held = parse_str(&ZONE.replace("www 300", "www 60"), "z", None)
        .expect("zone")
        .zone;
    let now = Timestamp::now();
    let observed = observe(&checks, &file, &held, now);
    let plan = plan(&file, &held, &observed, now).expect("plan");
    let wait = plan
        .steps
        .iter()
        .find(|s| s.kind == StepKind::WaitForCaches)
        .expect("wait");
    assert_eq!(
        wait.after_previous,
        3600 + 5,
        "ns1 A (3600, it holds 127.0.0.1 too) + margin: {}",
        wait.why
    );
    assert_eq!(
        plan.low_ttl, 300,
        "knotd serving 300 where the provider holds 60 is a floor"
    );
}
