//! A mix of providers in one move: two zones in cutover's store, one in
//! Knot changed through RFC 2136 UPDATE signed with TSIG, all holding the
//! retired address 127.0.0.2. Planned (`migrate plan --json`: one wait
//! from the longest TTL of any zone, here Knot's; one switch step per
//! provider, each naming its zones) and run by `cutover serve` to the end,
//! verified on each zone's own authorities (the Knot zone's `[[zone]]
//! authorities`) and through Unbound.
//!
//! ```text
//!  cutover serve (scheduler) ──store──▶ example.test., shop.test.
//!                            ──RFC 2136 + TSIG──▶ knotd: knot.test.
//!  Unbound ──stub──▶ serve │ knotd
//! ```

mod migration;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cutover_peers::knot_primary::KnotPrimary;
use migration::*;

/// The TSIG key Knot takes updates with: (name, base64 secret).
const KEY: (&str, &str) = ("ops.", "c2VjcmV0LWZvci10aGUtcHJvdmlkZXItYmF0dGVyeS0zMmI=");

/// The TTL of www in the store's zones.
const STORE_TTL: u32 = 4;

/// The TTL of www in the Knot zone: the longest.
const KNOT_TTL: u32 = 6;

/// A zone with www on the old address at `ttl`.
fn zone_of(origin: &str, ttl: u32) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 3600\n\
         @ IN SOA ns1 hostmaster 2026112601 3600 600 1209600 5\n\
         @ IN NS ns1\n\
         ns1 IN A 127.0.0.1\n\
         www {ttl} IN A {OLD}\n"
    )
}

#[test]
fn zones_in_the_store_and_in_knot_move_in_one_plan_with_a_switch_per_provider() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = Site::new(STORE_TTL);
    let shop = site.dir.path().join("shop.test.zone");
    std::fs::write(&shop, zone_of("shop.test.", STORE_TTL)).unwrap();
    ok(
        "zone import",
        cutover(
            &[
                "--store",
                &arg(&site.store),
                "zone",
                "import",
                &arg(&shop),
                "--origin",
                "shop.test.",
            ],
            &[],
        ),
    );
    let _serve = site.serve(&[]);
    let knot = runtime.block_on(KnotPrimary::start(
        LOOPBACK,
        &[("knot.test.", &zone_of("knot.test.", KNOT_TTL))],
        KEY,
    ));
    let cache = runtime.block_on(Unbound::start(
        &[
            ("example.test", site.addr),
            ("shop.test", site.addr),
            ("knot.test", knot.addr),
        ],
        "    prefetch: no\n    serve-expired: no\n",
        "example.test.",
    ));
    let key_file = site.dir.path().join("ops.key");
    std::fs::write(&key_file, format!("hmac-sha256:{}:{}\n", KEY.0, KEY.1)).unwrap();
    let file = site.migration_file(&format!(
        "version = 1\nzones = [\"example.test.\", \"shop.test.\"]\nprovider = {{ kind = \"embedded\" }}\n\
         [[zone]]\nname = \"knot.test.\"\n\
         provider = {{ kind = \"rfc2136\", server = \"{knot}\", key = \"ops.\", key_file = {key:?} }}\n\
         authorities = [\"{knot}\"]\n\
         [[move]]\nfrom = \"{OLD}\"\nto = \"{NEW}\"\n\
         [ttl]\nduring = 2\n\
         [schedule]\nobserve = \"2s\"\nmargin = \"1s\"\n\
         [verify]\nauthorities = [\"{serve}\"]\nresolvers = [\"{cache}\"]\ntries = 3\ninterval = \"1s\"\n",
        knot = knot.addr,
        key = arg(&key_file),
        serve = site.addr,
        cache = cache.addr,
    ));

    let planned = ok(
        "migrate plan",
        site.run(&["migrate", "plan", &file, "--json"], &[]),
    );
    let plan: serde_json::Value = serde_json::from_str(&planned).expect("plan --json is JSON");
    let steps = plan["steps"].as_array().expect("steps");
    let wait = steps
        .iter()
        .find(|s| s["kind"] == "wait_for_caches")
        .expect("a wait");
    assert_eq!(
        wait["after_previous"],
        u64::from(KNOT_TTL) + 1,
        "one wait from the longest TTL of any zone (Knot's) plus the margin: {wait}"
    );
    let switches: Vec<(String, Vec<String>)> = steps
        .iter()
        .filter(|s| s["kind"] == "switch")
        .map(|s| {
            let touch = &s["touches"][0];
            (
                touch["provider"].as_str().unwrap_or_default().to_string(),
                touch["zones"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|z| z.as_str().map(String::from))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        switches,
        [
            (
                "cutover's store".to_string(),
                vec!["example.test.".to_string(), "shop.test.".to_string()]
            ),
            (
                format!("RFC 2136 at {} with key ops.", knot.addr),
                vec!["knot.test.".to_string()]
            ),
        ],
        "one switch step per provider, each naming its zones: {}",
        plan["steps"]
    );

    let id = start(&site, &file);
    let summary = wait_state(
        &site,
        id,
        &["done", "failed", "rolled_back", "paused"],
        Duration::from_secs(90),
    );
    assert_eq!(
        summary["state"],
        "done",
        "expected the migration done, saw {summary}; serve log:\n{}",
        site.log()
    );
    for (server, zone, ttl) in [
        (site.addr, "example.test.", STORE_TTL),
        (site.addr, "shop.test.", STORE_TTL),
        (knot.addr, "knot.test.", KNOT_TTL),
    ] {
        // What the store holds is served within the reload interval.
        let name = format!("www.{zone}");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mut seen = address(server, &name, false);
        while seen != Ok((IpAddr::V4(NEW), ttl)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            seen = address(server, &name, false);
        }
        assert_eq!(
            seen,
            Ok((IpAddr::V4(NEW), ttl)),
            "www.{zone} at {server}: the new address at its own TTL"
        );
    }
    let detail = show(&site, id);
    let switched: Vec<&serde_json::Value> = detail["migration"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "switch")
        .collect();
    assert_eq!(switched.len(), 2, "two switch steps ran: {switched:?}");
    assert_eq!(
        switched[1]["evidence"]["provider"],
        format!("RFC 2136 at {} with key ops.", knot.addr),
        "the second switch went through Knot: {}",
        switched[1]["evidence"]
    );
    let asked: Vec<&str> = detail["migration"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "verify_switch" && s["outcome"] == "done")
        .expect("verified")["evidence"]["survey"]["authorities"]
        .as_array()
        .expect("authorities")
        .iter()
        .filter_map(|a| a["server"].as_str())
        .collect();
    let (serve, knot_at): (SocketAddr, SocketAddr) = (site.addr, knot.addr);
    assert_eq!(
        asked,
        [
            format!("example.test. ({serve})"),
            format!("shop.test. ({serve})"),
            format!("knot.test. ({knot_at})"),
        ],
        "each zone verified on its own authorities"
    );
    assert_eq!(
        detail["audit"].as_array().map(Vec::len),
        Some(9),
        "three zones, each lowered, switched and restored"
    );
}
