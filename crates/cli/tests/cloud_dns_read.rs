//! A cloud host read by DNS and written through its HTTP API, end to end:
//! PowerDNS on loopback, driven through dns-update's own PowerDNS client
//! (`kind = "cloud", service = "pdns"`), the same path Cloudflare, deSEC,
//! Hetzner, Google and the others take, with a real server behind it.
//!
//! ```text
//!  cutover ──AXFR (unsigned) / one query per RRset──▶ pdns_server (DNS)
//!          ──dns-update: PATCH /api/v1/servers/localhost/zones/host.test.──▶ (API)
//!  Unbound ──stub──▶ pdns_server
//! ```
//!
//! - A host that transfers the zone to this machine is listed whole, and
//!   a move by address is planned and run to the end.
//! - A host that transfers it to no one (`disable-axfr`) is planned from
//!   the RRsets the file names, with the warning that says so; a move by
//!   address is refused at its line; a named move runs to the end.
//! - `zones = "*"` through PowerDNS's own API (`kind = "powerdns"`): the
//!   zones its list gives, each read whole, a move by address planned and
//!   run across them, a zone without the address left alone.

mod migration;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use cutover_peers::powerdns::PowerDns;
use migration::*;

/// The variable the migration file names for the API key.
const KEY_VAR: &str = "CUTOVER_TEST_PDNS_API_KEY";

/// The TTL of www at the host.
const TTL: u32 = 4;

/// The host's zone: www on the old address.
fn host_zone() -> String {
    format!(
        "$ORIGIN host.test.\n$TTL 3600\n\
         @ IN SOA ns1 hostmaster 2026120501 3600 600 1209600 5\n\
         @ IN NS ns1\n\
         ns1 IN A 127.0.0.1\n\
         www {TTL} IN A {OLD}\n\
         shop {TTL} IN A {OLD}\n"
    )
}

/// The migration file: `moves` through PowerDNS's API at `pdns`, verified
/// on it and through `resolver`.
fn file_text(pdns: &PowerDns, resolver: std::net::SocketAddr, moves: &str) -> String {
    format!(
        "version = 1\nzone = \"host.test.\"\n\
         provider = {{ kind = \"cloud\", service = \"pdns\", api_key_env = \"{KEY_VAR}\", url = \"{url}\", nameservers = [\"{ns}\"] }}\n\
         {moves}\
         [ttl]\nduring = 2\n\
         [schedule]\nobserve = \"2s\"\nmargin = \"1s\"\n\
         [verify]\nauthorities = [\"{ns}\"]\nresolvers = [\"{resolver}\"]\ntries = 3\ninterval = \"1s\"\n",
        url = pdns.api_url,
        ns = pdns.addr,
    )
}

/// Stdout and stderr together.
fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits until `name` at the host answers `expected` at its own TTL.
fn served(pdns: &PowerDns, name: &str, expected: IpAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = address(pdns.addr, name, false);
    while seen != Ok((expected, TTL)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        seen = address(pdns.addr, name, false);
    }
    assert_eq!(
        seen,
        Ok((expected, TTL)),
        "{name} at PowerDNS: expected {expected} at TTL {TTL}"
    );
}

/// Runs migration `file` under `cutover serve` to its end; returns its detail.
fn run_to_the_end(site: &Site, file: &str, key: &str) -> serde_json::Value {
    let _serve = site.serve(&[(KEY_VAR, key)]);
    let started = ok(
        "migrate start",
        site.run(&["migrate", "start", file, "--json"], &[(KEY_VAR, key)]),
    );
    let id = serde_json::from_str::<serde_json::Value>(&started).expect("start --json")["id"]
        .as_i64()
        .expect("an id");
    let summary = wait_state(
        site,
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
    show(site, id)
}

#[test]
fn a_host_that_transfers_the_zone_is_listed_and_moved_by_address_through_its_api() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pdns = runtime.block_on(PowerDns::start(LOOPBACK, &[("host.test.", &host_zone())]));
    let cache = runtime.block_on(Unbound::start(
        &[("host.test", pdns.addr)],
        "    prefetch: no\n    serve-expired: no\n",
        "host.test.",
    ));
    let site = Site::new(TTL);
    let file = site.migration_file(&file_text(
        &pdns,
        cache.addr,
        &format!("[[move]]\nfrom = \"{OLD}\"\nto = \"{NEW}\"\n"),
    ));
    let key = pdns.api_key.as_str();

    let out = site.run(&["provider", "test", &file], &[(KEY_VAR, key)]);
    let text = said(&out);
    assert!(out.status.success(), "provider test: {text}");
    assert!(
        text.contains("read 5 records of host.test. (the whole zone); nothing was changed"),
        "the zone listed by AXFR: {text}"
    );

    let planned = ok(
        "migrate plan",
        site.run(&["migrate", "plan", &file], &[(KEY_VAR, key)]),
    );
    for moved in [
        "www.host.test. A: 127.0.0.2",
        "shop.host.test. A: 127.0.0.2",
    ] {
        assert!(
            planned.contains(moved),
            "a move by address finds {moved} in the listed zone: {planned}"
        );
    }
    assert!(
        !planned.contains("cannot list"),
        "a listed zone carries no partial-read warning: {planned}"
    );

    let detail = run_to_the_end(&site, &file, key);
    served(&pdns, "www.host.test.", IpAddr::V4(NEW));
    served(&pdns, "shop.host.test.", IpAddr::V4(NEW));
    let shown = detail.to_string();
    assert!(!shown.contains(key), "the API key is shown: {shown}");
}

#[test]
fn a_host_that_transfers_to_no_one_is_planned_from_the_named_rrsets_and_refuses_a_move_by_address()
{
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pdns = runtime.block_on(PowerDns::start_with(
        LOOPBACK,
        &[("host.test.", &host_zone())],
        "disable-axfr=yes\n",
    ));
    let cache = runtime.block_on(Unbound::start(
        &[("host.test", pdns.addr)],
        "    prefetch: no\n    serve-expired: no\n",
        "host.test.",
    ));
    let site = Site::new(TTL);
    let key = pdns.api_key.as_str();

    // A move by address: refused at its `from`, saying why and the way out.
    let by_address = site.migration_file(&file_text(
        &pdns,
        cache.addr,
        &format!("[[move]]\nfrom = \"{OLD}\"\nto = \"{NEW}\"\n"),
    ));
    let out = site.run(&["migrate", "plan", &by_address], &[(KEY_VAR, key)]);
    let text = said(&out);
    assert_eq!(out.status.code(), Some(2), "refused with exit 2: {text}");
    assert!(
        text.contains(&format!(
            "{by_address}:5:8: a move by address searches the whole zone, and PowerDNS Authoritative cannot list the zone host.test.: its API client gives no TTLs and no server transferred the zone (the server refused the transfer of host.test.: NOTAUTH)"
        )),
        "refused at the move's `from`: {text}"
    );
    assert!(
        text.contains("name the RRsets to move instead"),
        "the way out: {text}"
    );

    // A named move: planned from what was read, and said so.
    let named = site.migration_file(&file_text(
        &pdns,
        cache.addr,
        &format!("[[move]]\nname = \"www\"\ntype = \"A\"\nvalues = [\"{NEW}\"]\n"),
    ));
    let out = site.run(&["provider", "test", &named], &[(KEY_VAR, key)]);
    let text = said(&out);
    assert!(out.status.success(), "provider test: {text}");
    assert!(
        text.contains("cannot list host.test.; asked for the 7 RRsets a migration reads of it")
            && text.contains("): 3 records found; nothing was changed"),
        "provider test reads RRset by RRset: {text}"
    );
    let planned = ok(
        "migrate plan",
        site.run(&["migrate", "plan", &named], &[(KEY_VAR, key)]),
    );
    assert!(
        planned.contains(&format!("www.host.test. A: {OLD} (TTL {TTL}) → {NEW}")),
        "www's old value and TTL as read by DNS: {planned}"
    );
    assert!(
        planned.contains(
            "host.test.: PowerDNS Authoritative (through dns-update) cannot list the zone"
        ) && planned.contains("so the plan was made from 7 RRsets asked for one by one")
            && planned.contains("), 3 of them found;"),
        "the plan says it was made from a partial read: {planned}"
    );

    let detail = run_to_the_end(&site, &named, key);
    served(&pdns, "www.host.test.", IpAddr::V4(NEW));
    let untouched = address(pdns.addr, "shop.host.test.", false);
    assert_eq!(
        untouched,
        Ok((IpAddr::V4(OLD), TTL)),
        "a record the file does not name stays as it was"
    );
    let shown = detail.to_string();
    assert!(!shown.contains(key), "the API key is shown: {shown}");
}

/// A zone of the PowerDNS server that does not hold the old address.
fn quiet_zone() -> String {
    "$ORIGIN quiet.test.\n$TTL 3600\n\
     @ IN SOA ns1.host.test. hostmaster.host.test. 2026120501 3600 600 1209600 5\n\
     @ IN NS ns1.host.test.\n\
     www 4 IN A 127.0.0.9\n"
        .to_string()
}

/// A second zone that holds the old address.
fn shop_zone() -> String {
    format!(
        "$ORIGIN shop.test.\n$TTL 3600\n\
         @ IN SOA ns1.host.test. hostmaster.host.test. 2026120501 3600 600 1209600 5\n\
         @ IN NS ns1.host.test.\n\
         @ {TTL} IN A {OLD}\n"
    )
}

#[test]
fn every_zone_a_powerdns_api_lists_is_moved_by_address_with_zones_star() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pdns = runtime.block_on(PowerDns::start(
        LOOPBACK,
        &[
            ("host.test.", &host_zone()),
            ("quiet.test.", &quiet_zone()),
            ("shop.test.", &shop_zone()),
        ],
    ));
    let cache = runtime.block_on(Unbound::start(
        &[
            ("host.test", pdns.addr),
            ("quiet.test", pdns.addr),
            ("shop.test", pdns.addr),
        ],
        "    prefetch: no\n    serve-expired: no\n",
        "host.test.",
    ));
    let site = Site::new(TTL);
    let key = pdns.api_key.as_str();
    let file = site.migration_file(&format!(
        "version = 1\nzones = \"*\"\n\
         provider = {{ kind = \"powerdns\", api_key_env = \"{KEY_VAR}\", url = \"{url}\" }}\n\
         [[move]]\nfrom = \"{OLD}\"\nto = \"{NEW}\"\n\
         [ttl]\nduring = 2\n\
         [schedule]\nobserve = \"2s\"\nmargin = \"1s\"\n\
         [verify]\nauthorities = [\"{ns}\"]\nresolvers = [\"{resolver}\"]\ntries = 3\ninterval = \"1s\"\n",
        url = pdns.api_url,
        ns = pdns.addr,
        resolver = cache.addr,
    ));

    // provider test: the zones the API lists, then each read whole.
    let out = site.run(&["provider", "test", &file], &[(KEY_VAR, key)]);
    let text = said(&out);
    assert!(out.status.success(), "provider test: {text}");
    assert!(
        text.contains("lists 3 zones for zones = \"*\": host.test., quiet.test., shop.test."),
        "the listed zones: {text}"
    );
    for read in [
        "read 5 records of host.test. (the whole zone)",
        "read 3 records of quiet.test. (the whole zone)",
        "read 3 records of shop.test. (the whole zone)",
    ] {
        assert!(text.contains(read), "{read}: {text}");
    }
    let out = site.run(&["provider", "test", "--json", &file], &[(KEY_VAR, key)]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("provider test --json ({e}): {}", said(&out)));
    let zones: Vec<&str> = json
        .as_array()
        .unwrap_or_else(|| panic!("several zones: a list of views: {json}"))
        .iter()
        .map(|v| v["zone"].as_str().unwrap())
        .collect();
    assert_eq!(zones, ["host.test.", "quiet.test.", "shop.test."], "{json}");

    // The plan: the address in two zones, the third named as left alone.
    let planned = ok(
        "migrate plan",
        site.run(&["migrate", "plan", &file], &[(KEY_VAR, key)]),
    );
    for moved in [
        format!("www.host.test. A: {OLD} (TTL {TTL}) → {NEW}"),
        format!("shop.host.test. A: {OLD} (TTL {TTL}) → {NEW}"),
        format!("shop.test. A: {OLD} (TTL {TTL}) → {NEW}"),
    ] {
        assert!(planned.contains(&moved), "{moved}: {planned}");
    }
    assert!(
        planned.contains("quiet.test.: no record in it holds a moving address")
            && !planned.contains("www.quiet.test. A: "),
        "quiet.test. is named, nothing in it moves: {planned}"
    );

    let detail = run_to_the_end(&site, &file, key);
    served(&pdns, "www.host.test.", IpAddr::V4(NEW));
    served(&pdns, "shop.host.test.", IpAddr::V4(NEW));
    served(&pdns, "shop.test.", IpAddr::V4(NEW));
    assert_eq!(
        address(pdns.addr, "www.quiet.test.", false),
        Ok((IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9)), 4)),
        "a zone without the address is left as it was"
    );
    let shown = detail.to_string();
    assert!(!shown.contains(key), "the API key is shown: {shown}");
}
