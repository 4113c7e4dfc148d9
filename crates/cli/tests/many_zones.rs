//! Many zones in one move, end to end and time-scaled: 192.0.2.10 is
//! retired — here the old web server 127.0.0.2 — and everything in 50
//! zones of cutover's store that points at it moves to 127.0.0.3, while a
//! client resolves www.example.test through Unbound and requests every
//! 50 ms. `cutover serve` answers and runs the migration.
//!
//! ```text
//!  client ──50 ms──▶ Unbound (50 stub zones) ──▶ cutover serve (50 zones) ◀── scheduler
//!     └──GET /──▶ old 127.0.0.2 │ new 127.0.0.3
//! ```
//!
//! One migration is rolled back after its switch (every zone back at the
//! old address and its own TTL), then aborted, and a second one runs to
//! the end (every zone on the new address at its own TTL) — with no failed
//! request throughout. The one timeline waits for the longest TTL of any
//! zone (shop37's), not each zone's.

mod migration;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use migration::*;

/// How many zones move.
const ZONES: usize = 50;

/// The TTL of www in every zone but one, scaled down from an hour.
const ORIGINAL_TTL: u32 = 4;

/// The zone whose www has the longest TTL, and that TTL.
const LONGEST: (&str, u32) = ("shop37.test.", 8);

/// The zones: example.test. (the client's) and shop01.test. … shop49.test.
fn zones() -> Vec<String> {
    let mut out = vec!["example.test.".to_string()];
    out.extend((1..ZONES).map(|i| format!("shop{i:02}.test.")));
    out
}

/// The TTL of www in `zone`.
fn ttl_of(zone: &str) -> u32 {
    if zone == LONGEST.0 {
        LONGEST.1
    } else {
        ORIGINAL_TTL
    }
}

/// A shop zone: www (and the apex) on the old address, mail elsewhere.
fn shop_text(origin: &str) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 3600\n\
         @ IN SOA ns1 hostmaster 2026112601 3600 600 1209600 5\n\
         @ IN NS ns1\n\
         ns1 IN A 127.0.0.1\n\
         www {} IN A {OLD}\n\
         mail 300 IN A 192.0.2.99\n",
        ttl_of(origin)
    )
}

/// A store holding the 50 zones and a config serving them.
fn site() -> Site {
    let dir = tempfile::tempdir().expect("a tempdir");
    let store = dir.path().join("cutover.db");
    let store_arg = arg(&store);
    for zone in zones() {
        let text = if zone == "example.test." {
            zone_text(ORIGINAL_TTL)
        } else {
            shop_text(&zone)
        };
        let file = dir.path().join(format!("{zone}zone"));
        std::fs::write(&file, text).unwrap();
        ok(
            "zone import",
            cutover(
                &[
                    "--store",
                    &store_arg,
                    "zone",
                    "import",
                    &arg(&file),
                    "--origin",
                    &zone,
                ],
                &[],
            ),
        );
    }
    Site::from_store(dir, store, |addr| {
        format!("store = {store_arg:?}\n[dns]\nlisten = [\"{addr}\"]\nudp_workers = 1\n")
    })
}

/// The migration file: every zone named, everything at the old address
/// moving to the new one, TTL 2 during the move, observed 6 s (the window
/// in which the test sees it observing and rolls it back).
fn file_text(zones_line: &str, authority: SocketAddr, resolver: SocketAddr, port: u16) -> String {
    format!(
        "version = 1\n{zones_line}\nprovider = {{ kind = \"embedded\" }}\n\
         [[move]]\nfrom = \"{OLD}\"\nto = \"{NEW}\"\n\
         [ttl]\nduring = 2\n\
         [[check]]\nhttp = \"http://www.example.test:{port}/healthz\"\nexpect_status = 200\n\
         [schedule]\nobserve = \"6s\"\nmargin = \"1s\"\n\
         [verify]\nauthorities = [\"{authority}\"]\nresolvers = [\"{resolver}\"]\ntries = 3\ninterval = \"1s\"\n"
    )
}

/// Each zone whose www at cutover serve is not `expected` with TTL `ttl`
/// (`None`: the zone's own), with what it is.
fn astray(site: &Site, expected: IpAddr, ttl: Option<u32>) -> Vec<String> {
    zones()
        .iter()
        .filter_map(|zone| {
            let seen = address(site.addr, &format!("www.{zone}"), false);
            match seen {
                Ok((ip, t)) if ip == expected && t == ttl.unwrap_or_else(|| ttl_of(zone)) => None,
                other => Some(format!("{zone}: {other:?}")),
            }
        })
        .collect()
}

/// [`astray`] until none is (what the store holds is served within the
/// reload watcher's interval, zone by zone), for at most 15 s; the zones
/// still astray then.
fn settled(site: &Site, expected: IpAddr, ttl: Option<u32>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let astray = astray(site, expected, ttl);
        if astray.is_empty() || Instant::now() >= deadline {
            return astray;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn fifty_zones_move_by_address_in_one_timeline_roll_back_whole_and_no_request_fails() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = site();
    let _serve = site.serve(&[]);
    let names = zones();
    let stubs: Vec<(&str, SocketAddr)> = names
        .iter()
        .map(|z| (z.trim_end_matches('.'), site.addr))
        .collect();
    let cache = runtime.block_on(Unbound::start(
        &stubs,
        "    prefetch: no\n    serve-expired: no\n",
        "example.test.",
    ));
    let [old, new]: [std::net::TcpListener; 2] = hold_tcp(&[OLD.octets(), NEW.octets()])
        .try_into()
        .expect("two listeners");
    let port = old.local_addr().expect("a bound listener").port();
    let (old, new) = (HttpServer::start(old, "old"), HttpServer::start(new, "new"));
    let client = Client::start(cache.addr, site.addr, port);
    wait_for(
        &client,
        Duration::from_secs(5),
        "the client served by old",
        |s| s.iter().any(|s| s.served_by.as_deref() == Ok("old")),
    );

    // `zones = "*"`: every zone of the store, planned in one timeline.
    let every = site.migration_file(&file_text("zones = \"*\"", site.addr, cache.addr, port));
    let planned = ok(
        "migrate plan",
        site.run(&["migrate", "plan", &every, "--json"], &[]),
    );
    let plan: serde_json::Value = serde_json::from_str(&planned).expect("plan --json is JSON");
    let planned_zones: Vec<&str> = plan["zones"]
        .as_array()
        .expect("the plan lists its zones")
        .iter()
        .filter_map(|z| z["zone"].as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        planned_zones, sorted,
        "zones = \"*\" plans every zone of the store"
    );
    let wait = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["kind"] == "wait_for_caches")
        .expect("a wait");
    assert_eq!(
        wait["after_previous"],
        u64::from(LONGEST.1) + 1,
        "one wait, from the longest TTL of any zone (shop37's) plus the margin: {wait}"
    );
    let switches: Vec<&serde_json::Value> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "switch")
        .collect();
    assert_eq!(
        switches.len(),
        1,
        "one provider, one switch step: {switches:?}"
    );
    assert_eq!(
        switches[0]["touches"][0]["zones"].as_array().map(Vec::len),
        Some(ZONES),
        "the switch touches the 50 zones"
    );
    let text = ok("migrate plan", site.run(&["migrate", "plan", &every], &[]));
    assert!(
        text.starts_with("Migration of 50 zones through cutover's store (50 zones)"),
        "the plan's text says how many zones and through what:\n{text}"
    );

    // A listed zone the store does not hold is refused at its place (exit 2).
    let unknown = site.migration_file(&file_text(
        "zones = [\"example.test.\", \"nowhere.test.\"]",
        site.addr,
        cache.addr,
        port,
    ));
    let refused = site.run(&["migrate", "plan", &unknown], &[]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "refused: {said}");
    assert!(
        said.contains(&format!("{unknown}:2:27: ")) && said.contains("nowhere.test."),
        "the unknown zone is named at its place: {said}"
    );

    // The listed form: the first migration is rolled back after its switch.
    let listed = names
        .iter()
        .map(|z| format!("{z:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let file = site.migration_file(&file_text(
        &format!("zones = [{listed}]"),
        site.addr,
        cache.addr,
        port,
    ));
    let first = start(&site, &file);
    let started = Instant::now();
    let observing = wait_state(
        &site,
        first,
        &["observing", "done", "failed", "rolled_back", "paused"],
        Duration::from_secs(90),
    );
    assert_eq!(
        observing["state"],
        "observing",
        "expected the first migration switched and verified, saw {observing}; serve log:\n{}",
        site.log()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(u64::from(LONGEST.1) + 1),
        "the switch waited for shop37's TTL: verified {:.1?} after the start",
        started.elapsed()
    );
    let switched = settled(&site, IpAddr::V4(NEW), Some(2));
    assert!(
        switched.is_empty(),
        "while observing, every zone holds the new address at the low TTL; not: {switched:?}"
    );
    assert_eq!(
        observing["zones"].as_array().map(Vec::len),
        Some(ZONES),
        "the summary names every zone: {observing}"
    );
    let list = ok("migrate list", site.run(&["migrate", "list"], &[]));
    let row = list
        .lines()
        .find(|l| l.trim_start().starts_with(&first.to_string()))
        .unwrap_or_else(|| panic!("migration {first} is listed: {list}"));
    assert!(
        row.contains(&format!("example.test. and {} more zones", ZONES - 1)),
        "the list says how many zones it moves: {row}"
    );
    let detail = show(&site, first);
    let verified = detail["migration"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["kind"] == "verify_switch" && s["outcome"] == "done")
        .expect("a verification done");
    let asked = verified["evidence"]["survey"]["authorities"]
        .as_array()
        .map(Vec::len);
    assert_eq!(
        asked,
        Some(ZONES),
        "every zone's changed names verified on its authority: {}",
        verified["evidence"]["survey"]["authorities"]
    );
    ok(
        "migrate rollback",
        site.run(&["migrate", "rollback", &first.to_string(), "--yes"], &[]),
    );
    let rolled = wait_state(
        &site,
        first,
        &["rolled_back", "failed", "paused"],
        Duration::from_secs(60),
    );
    assert_eq!(
        rolled["state"],
        "rolled_back",
        "{rolled}; serve log:\n{}",
        site.log()
    );
    let back = settled(&site, IpAddr::V4(OLD), None);
    assert!(
        back.is_empty(),
        "the rollback put every zone back at the old address and its own TTL; not: {back:?}"
    );
    let audit = show(&site, first)["audit"]
        .as_array()
        .expect("an audit")
        .len();
    assert_eq!(
        audit,
        ZONES * 4,
        "one audited change per zone for lower, switch, revert and restore"
    );
    ok(
        "migrate abort",
        site.run(&["migrate", "abort", &first.to_string(), "--yes"], &[]),
    );

    // The second runs to the end.
    let second = start(&site, &file);
    let done = wait_state(
        &site,
        second,
        &["done", "failed", "rolled_back", "paused"],
        Duration::from_secs(90),
    );
    std::thread::sleep(Duration::from_millis(500));
    let samples = client.finish();
    assert_eq!(
        done["state"],
        "done",
        "expected the second migration done, saw {done}; serve log:\n{}",
        site.log()
    );
    let moved = settled(&site, IpAddr::V4(NEW), None);
    assert!(
        moved.is_empty(),
        "every zone on the new address at its own TTL; not: {moved:?}"
    );
    assert!(
        failures(&samples).is_empty(),
        "expected no failed request in {} requests, saw {:?}",
        samples.len(),
        failures(&samples)
    );
    assert!(
        old.served() > 0 && new.served() > 0,
        "the client was served by both: old {}, new {}",
        old.served(),
        new.served()
    );
    let shown = ok(
        "migrate show",
        site.run(&["migrate", "show", &second.to_string()], &[]),
    );
    assert!(
        shown.contains("zones: 50 zones through cutover's store (50 zones)")
            && shown.contains("zones: cutover's store: example.test., shop01.test.,"),
        "show names the zones of the migration and of its steps:\n{shown}"
    );
    println!(
        "50 zones: {} requests, 0 failed; old served {}, new served {}",
        samples.len(),
        old.served(),
        new.served()
    );
}
