//! Issue 14's locations as network namespaces on this machine: three
//! namespaces, each with its own Unbound and a `cutover agent` inside,
//! verify migrations run by the serve on the host.
//!
//! ```text
//!  host: cutover serve (dns 127.0.0.1:P and 10.A.B.1:Q, http 10.A.B.1:H)
//!        old web 10.A.B.2:W, new web 10.A.B.3:W, Unbound (local's resolver)
//!     │ veth ── netns fra1: Unbound (.2:53, stub to 10.A.B.1:Q), cutover agent --location fra1
//!     │ veth ── netns nyc1: the same (in one test its Unbound has a TTL floor)
//!     │ veth ── netns sgp1: the same
//! ```
//!
//! A migration verified from all three (and local); one whose nyc1
//! resolver holds the old address (`cache-min-ttl`), kept retrying with
//! nyc1 and the stale value named, then rolled back; one where fra1 loses
//! the new server after the switch (an nftables drop rule in fra1), rolled
//! back with fra1 named while a client in every other namespace and on the
//! host, requesting every 50 ms through its own resolver, saw no failed
//! request. Needs root, iproute2 and nftables (`.ci/run` installs them);
//! the namespaces are removed when a test ends, failed or not.

mod migration;
mod netns;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use migration::{assert_rolled_back_by, ok, steps, Client, Guard, HttpServer, Site, Unbound};
use netns::Network;
use serde_json::Value;

/// A fresh cache: nothing fetched ahead, nothing served past its TTL.
const FRESH: &str = "    prefetch: no\n    serve-expired: no\n";

/// A stale cache: whatever it fetched, it keeps for an hour (a TTL floor).
const STALE: &str = "    prefetch: no\n    serve-expired: no\n    cache-min-ttl: 3600\n";

/// The final states of a migration.
const FINAL: [&str; 4] = ["done", "rolled_back", "failed", "paused"];

/// The serve on the host, the namespaces with their resolvers and agents,
/// the old and the new web server.
struct Field {
    /// The agents (killed first).
    agents: Vec<netns::Agent>,
    /// The namespaces' resolvers, in the order of `network.locations`.
    resolvers: Vec<netns::Resolver>,
    /// local's resolver, on the host.
    local: Unbound,
    /// `cutover serve`.
    _serve: Guard,
    /// The old and the new web server (both up for the whole test).
    _web: [HttpServer; 2],
    /// Their port (the same on both addresses).
    web_port: u16,
    /// Serve's nameserver as the namespaces reach it.
    dns_hub: SocketAddr,
    /// The control plane's URL.
    server: String,
    /// A read token.
    reader: String,
    /// The store, config and logs.
    site: Site,
    /// The namespaces (removed last).
    network: Network,
}

impl Field {
    /// One namespace per (location, cache settings of its Unbound), each
    /// with its agent; returns once every agent is listed online.
    fn new(locations: &[(&str, &str)]) -> Field {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let names: Vec<&str> = locations.iter().map(|(n, _)| *n).collect();
        let network = Network::new(&names);
        let hub = network.hub(1);
        let dns_hub = cutover_peers::Reservation::new(&[hub]);
        let http = cutover_peers::Reservation::new(&[hub]);
        let (dns_hub_addr, http_addr) = (dns_hub.on(hub), http.on(hub));
        let dir = tempfile::tempdir().expect("a tempdir");
        let store = dir.path().join("cutover.db");
        let zone = dir.path().join("example.test.zone");
        std::fs::write(
            &zone,
            migration::zone_text_at(Ipv4Addr::from(network.hub(2)), 2),
        )
        .unwrap();
        let store_arg = store.display().to_string();
        ok(
            "zone import",
            migration::cutover(
                &[
                    "--store",
                    &store_arg,
                    "zone",
                    "import",
                    zone.to_str().unwrap(),
                    "--origin",
                    "example.test.",
                ],
                &[],
            ),
        );
        let token = |name: &str, scope: &str| {
            ok(
                "token create",
                migration::cutover(
                    &[
                        "--store", &store_arg, "token", "create", name, "--scope", scope,
                    ],
                    &[],
                ),
            )
            .trim()
            .to_owned()
        };
        let (agent_token, reader) = (token("far", "agent"), token("viewer", "read"));
        let mut site = Site::from_store(dir, store, |addr| {
            format!(
                "store = {store_arg:?}\n[dns]\nlisten = [\"{addr}\", \"{dns_hub_addr}\"]\nudp_workers = 1\n\
                 [http]\nlisten = \"{http_addr}\"\n\
                 [agents]\noffline_after = \"3s\"\npoll_wait = \"1s\"\nlease = \"10s\"\nanswer_within = \"20s\"\n"
            )
        });
        site.hold_until_serve(dns_hub);
        site.hold_until_serve(http);
        let serve = site.serve(&[]);
        let local = migration::unbound(&runtime, site.addr);
        let [old, new]: [std::net::TcpListener; 2] =
            cutover_peers::hold_tcp(&[network.hub(2), network.hub(3)])
                .try_into()
                .expect("two listeners");
        let web_port = old.local_addr().unwrap().port();
        let web = [HttpServer::start(old, "old"), HttpServer::start(new, "new")];
        let server = format!("http://{http_addr}");
        let mut resolvers = Vec::new();
        let mut agents = Vec::new();
        for ((_, cache), location) in locations.iter().zip(&network.locations) {
            let resolver = location.unbound(dns_hub_addr, cache);
            agents.push(location.agent(&server, &agent_token, resolver.addr, site.dir.path()));
            resolvers.push(resolver);
        }
        let field = Field {
            agents,
            resolvers,
            local,
            _serve: serve,
            _web: web,
            web_port,
            dns_hub: dns_hub_addr,
            server,
            reader,
            site,
            network,
        };
        // Every agent reaches serve from its namespace: listed online.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let listed = field.agents_listed();
            let online = |agent: &netns::Agent| {
                listed.lines().any(|l| {
                    l.starts_with(agent.name.trim_end_matches("-a"))
                        && l.contains(&agent.name)
                        && l.contains("online")
                })
            };
            if field.agents.iter().all(online) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "expected every agent online from its namespace, `cutover agents` said:\n{listed}\nagents' logs:\n{}",
                field.agent_logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        field
    }

    /// `cutover agents` through the API (stdout and stderr).
    fn agents_listed(&self) -> String {
        let out = migration::cutover(
            &["--server", &self.server, "--token", &self.reader, "agents"],
            &[],
        );
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// Every agent's log, for messages.
    fn agent_logs(&self) -> String {
        self.agents
            .iter()
            .map(|a| format!("--- {}:\n{}", a.name, a.log()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The hub's address `last` as an address.
    fn hub(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::from(self.network.hub(last))
    }

    /// The migration file: www from the old web server's address to the new
    /// one's, its /healthz checked, verified through serve's nameserver and
    /// local's resolver from `locations` (a TOML value). The authority is
    /// serve's hub address: the agents ask it too, and 127.0.0.1 in a
    /// namespace is the namespace's own loopback.
    fn migration(&self, locations: &str) -> String {
        self.site.migration_file(&format!(
            "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n\
             [[move]]\nfrom = \"{}\"\nto = \"{}\"\n\
             [ttl]\nduring = 2\n\
             [[check]]\nhttp = \"http://www.example.test:{}/healthz\"\nexpect_status = 200\n\
             [schedule]\nobserve = \"1s\"\nmargin = \"1s\"\n\
             [verify]\nauthorities = [\"{}\"]\nresolvers = [\"{}\"]\ntries = 3\ninterval = \"1s\"\n\
             locations = {locations}\n",
            self.hub(2),
            self.hub(3),
            self.web_port,
            self.dns_hub,
            self.local.addr,
        ))
    }

    /// Waits (at most `limit`) until migration `id` is in one of `states`;
    /// `migrate show --json`.
    fn wait_state(&self, id: i64, states: &[&str], limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let shown = migration::show(&self.site, id);
            let state = shown["migration"]["summary"]["state"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            if states.contains(&state.as_str()) {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "expected migration {id} to reach {states:?} within {limit:?}, it is {state:?}: {shown:#}\nagents' logs:\n{}\nserve's log:\n{}",
                self.agent_logs(),
                self.site.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A step's evidence per location: (location, agrees), sorted by location.
fn agreement(step: &Value) -> Vec<(String, bool)> {
    let mut per: Vec<(String, bool)> = step["evidence"]["locations"]
        .as_array()
        .unwrap_or_else(|| panic!("expected the evidence per location: {step:#}"))
        .iter()
        .map(|l| {
            (
                l["location"].as_str().unwrap_or("").to_owned(),
                l["agrees"] == true,
            )
        })
        .collect();
    per.sort();
    per
}

/// (location, agrees) pairs, sorted, from literals.
fn expected(pairs: &[(&str, bool)]) -> Vec<(String, bool)> {
    let mut per: Vec<(String, bool)> = pairs.iter().map(|(l, a)| (l.to_string(), *a)).collect();
    per.sort();
    per
}

#[test]
fn a_migration_is_verified_from_three_namespaces() {
    let field = Field::new(&[("fra1", FRESH), ("nyc1", FRESH), ("sgp1", FRESH)]);
    let file = field.migration("\"all\"");
    let id = migration::start(&field.site, &file);
    let shown = field.wait_state(id, &FINAL, Duration::from_secs(90));
    assert_eq!(
        shown["migration"]["summary"]["state"],
        "done",
        "expected the migration verified from every namespace: {shown:#}\nserve's log:\n{}",
        field.site.log()
    );
    let all = expected(&[
        ("local", true),
        ("fra1", true),
        ("nyc1", true),
        ("sgp1", true),
    ]);
    for kind in ["verify_new", "verify_switch"] {
        let step = steps(&shown, kind);
        let last = step
            .last()
            .unwrap_or_else(|| panic!("a {kind} step: {shown:#}"));
        assert_eq!(last["outcome"], "done", "{kind}: {last:#}");
        assert_eq!(
            agreement(last),
            all,
            "{kind}: expected local and the three namespaces to agree: {last:#}"
        );
    }
    // The switch seen through each namespace's own resolver: named by
    // location in the survey.
    let switch = steps(&shown, "verify_switch");
    let resolvers: Vec<&str> = switch[0]["evidence"]["survey"]["resolvers"]
        .as_array()
        .expect("the survey's resolvers")
        .iter()
        .filter_map(|r| r["server"].as_str())
        .collect();
    for (location, resolver) in field.network.locations.iter().zip(&field.resolvers) {
        assert!(
            resolvers
                .iter()
                .any(|r| r.contains(&resolver.addr.ip().to_string())
                    && r.ends_with(&format!("from {}", location.name))),
            "expected {}'s resolver {} among {resolvers:?}",
            location.name,
            resolver.addr
        );
    }
    // `cutover agents`: the three, online, each having answered jobs.
    let listed = field.agents_listed();
    for location in ["fra1", "nyc1", "sgp1"] {
        assert!(
            listed.lines().any(|l| l.starts_with(location)
                && l.contains(&format!("{location}-a"))
                && l.contains("online")),
            "expected {location}-a listed online:\n{listed}"
        );
    }
    let out = ok(
        "agents --json",
        migration::cutover(
            &[
                "--server",
                &field.server,
                "--token",
                &field.reader,
                "agents",
                "--json",
            ],
            &[],
        ),
    );
    let list: Value = serde_json::from_str(&out).expect("agents --json is JSON");
    for location in ["fra1", "nyc1", "sgp1"] {
        let name = format!("{location}-a");
        let agent = list["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["name"] == name.as_str()))
            .unwrap_or_else(|| panic!("expected {name} listed: {list:#}"));
        let done = agent["jobs_done"].as_u64().unwrap_or(0);
        assert!(
            done >= 2,
            "expected {name} to have answered the checks and surveys, saw {done}: {list:#}"
        );
    }
}

#[test]
fn a_namespace_with_a_stale_cache_keeps_the_migration_waiting_then_rolls_it_back() {
    let field = Field::new(&[("fra1", FRESH), ("nyc1", STALE), ("sgp1", FRESH)]);
    let old = field.hub(2);
    // nyc1's resolver caches the old address for an hour.
    let stale = &field.resolvers[1];
    let (seen, ttl) = migration::address(stale.addr, "www.example.test.", true)
        .unwrap_or_else(|e| panic!("nyc1's resolver answers www: {e}"));
    assert_eq!(seen.to_string(), old.to_string(), "nyc1 resolves www");
    assert!(
        ttl > 60,
        "expected nyc1's floor to keep www for an hour, saw TTL {ttl}"
    );
    let file = field.migration("[\"local\", \"fra1\", \"nyc1\", \"sgp1\"]");
    let id = migration::start(&field.site, &file);
    // Waiting, not failed: a look that kept it retrying while nyc1 is stale.
    let waiting = field.wait_state(
        id,
        &["verifying", "rolled_back", "failed", "done"],
        Duration::from_secs(60),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut shown = waiting;
    while !steps(&shown, "verify_switch")
        .iter()
        .any(|s| s["outcome"] == "retrying")
    {
        assert!(
            Instant::now() < deadline,
            "expected a look at the switch kept retrying: {shown:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
        shown = migration::show(&field.site, id);
    }
    let state = shown["migration"]["summary"]["state"]
        .as_str()
        .unwrap_or("");
    assert!(
        !["failed", "rolled_back", "done"].contains(&state),
        "expected the migration still waiting on nyc1 after its first look, it is {state}: {shown:#}"
    );
    let shown = field.wait_state(id, &FINAL, Duration::from_secs(90));
    let verify =
        assert_rolled_back_by(&shown, "nyc1", &old.to_string(), &["local", "fra1", "sgp1"]);
    for step in &verify {
        assert_eq!(
            agreement(step),
            expected(&[
                ("local", true),
                ("fra1", true),
                ("nyc1", false),
                ("sgp1", true)
            ]),
            "{step:#}"
        );
    }
    assert!(
        !steps(&shown, "revert").is_empty(),
        "expected the switch reverted: {shown:#}"
    );
}

#[test]
fn a_namespace_that_drops_the_new_server_rolls_back_with_no_failed_request_elsewhere() {
    let field = Field::new(&[("fra1", FRESH), ("nyc1", FRESH), ("sgp1", FRESH)]);
    let new = field.hub(3);
    // Users elsewhere: on the host through local's resolver, and in nyc1
    // and sgp1 through theirs, each asking every 50 ms and requesting the
    // address it got.
    let mut clients = vec![(
        "host".to_owned(),
        Client::start(field.local.addr, field.site.addr, field.web_port),
    )];
    for (location, resolver) in field.network.locations.iter().zip(&field.resolvers).skip(1) {
        let netns = location.netns.clone();
        clients.push((
            location.name.clone(),
            Client::start_in(resolver.addr, field.dns_hub, field.web_port, move || {
                netns::Location::enter(&netns)
            }),
        ));
    }
    for (name, client) in &clients {
        migration::wait_for(
            client,
            Duration::from_secs(30),
            &format!("the {name} client served once before the migration"),
            |samples| samples.iter().any(|s| s.served_by.is_ok()),
        );
    }
    let file = field.migration("[\"local\", \"fra1\", \"nyc1\", \"sgp1\"]");
    let id = migration::start(&field.site, &file);
    // Once the switch is made, fra1 drops whatever it sends to the new
    // server.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = migration::status(&field.site, id)["state"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if now == "verifying" {
            break;
        }
        assert!(
            !FINAL.contains(&now.as_str()),
            "expected the switch verified from every location first, the migration is {now}; serve's log:\n{}\nagents' logs:\n{}",
            field.site.log(),
            field.agent_logs()
        );
        assert!(
            Instant::now() < deadline,
            "expected the switch within 60 s, it is {now}; serve's log:\n{}",
            field.site.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let fra1 = field.network.location("fra1");
    fra1.drop_traffic_to(field.network.hub(3));
    let rules = fra1.rules();
    assert!(
        rules.contains(&format!("ip daddr {new} drop")),
        "expected fra1's drop rule in its ruleset:\n{rules}"
    );
    let shown = field.wait_state(id, &FINAL, Duration::from_secs(60));
    let seen: Vec<(String, Vec<migration::Sample>)> = clients
        .into_iter()
        .map(|(name, client)| (name, client.finish()))
        .collect();
    assert_eq!(
        shown["migration"]["summary"]["state"], "rolled_back",
        "expected fra1's failed checks to roll the migration back: {shown:#}\nserve's log:\n{}\nagents' logs:\n{}",
        field.site.log(),
        field.agent_logs()
    );
    let verify = steps(&shown, "verify_switch");
    let last = verify.last().expect("a verify_switch step");
    assert_eq!(last["outcome"], "failed", "{last:#}");
    let reason = last["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains(&format!("/healthz (resolved to {new}) from fra1")),
        "expected fra1's failed check named: {reason}"
    );
    for other in ["local", "nyc1", "sgp1"] {
        assert!(
            !reason.contains(&format!("from {other}")),
            "expected only fra1 named, {other} is too: {reason}"
        );
    }
    assert_eq!(
        agreement(last),
        expected(&[
            ("local", true),
            ("fra1", false),
            ("nyc1", true),
            ("sgp1", true)
        ]),
        "{last:#}"
    );
    assert!(
        !steps(&shown, "revert").is_empty(),
        "expected the switch reverted: {shown:#}"
    );
    // No user elsewhere saw a failed request, through the migration and
    // its rollback.
    for (name, samples) in &seen {
        let failed = migration::failures(samples);
        let by: BTreeSet<String> = samples
            .iter()
            .filter_map(|s| s.served_by.as_ref().ok().cloned())
            .collect();
        let by_new = samples
            .iter()
            .filter(|s| s.served_by.as_deref() == Ok("new"))
            .count();
        eprintln!(
            "{name}: {} requests, {} failed, {by_new} served by the new server",
            samples.len(),
            failed.len()
        );
        assert!(
            failed.is_empty(),
            "expected 0 failed requests from {name}, saw {} of {}:\n{}",
            failed.len(),
            samples.len(),
            failed.join("\n")
        );
        assert!(
            samples.len() >= 40,
            "expected the {name} client to request all along (every 50 ms), it made {} requests, served by {by:?}",
            samples.len()
        );
    }
}

/// `ip` is what the namespaces are made with: a missing iproute2 fails
/// here first, by name.
#[test]
fn iproute2_and_nftables_are_installed() {
    for (program, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let out = Command::new(program).arg("-V").output();
        assert!(
            out.as_ref().is_ok_and(|o| o.status.success()),
            "expected {program} (package {package}) installed: {out:?}"
        );
    }
}
