//! A location in a network namespace of its own, as the issue shows it: a
//! `cutover agent` inside the namespace, joined to the host by a veth pair,
//! verifies a migration with the serve on the host; after the switch the
//! new server becomes unreachable from the namespace (a blackhole route in
//! it), so the verification from there fails, the migration is rolled back,
//! and the evidence names the location while `local` agreed.
//!
//! ```text
//!  host: cutover serve (dns 127.0.0.1:P and 10.213.N.1:Q, http 10.213.N.1:H)
//!        new web server 10.213.N.3:W, Unbound (local's resolver)
//!     │ veth cvhN ── cvnN
//!  netns cutN: cutover agent --location far1 --resolver 10.213.N.1:Q
//!              ip route add blackhole 10.213.N.3 (once the switch is made)
//! ```
//!
//! Needs root and iproute2 (`.ci/run` installs it); the namespace and the
//! veth pair are removed when the test ends, failed or not.

mod migration;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use migration::{ok, Site};
use serde_json::Value;

/// Runs `ip ARGS…`; panics with its error when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip runs (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace joined to the host by a veth pair; removed on drop.
struct Namespace {
    /// Its name.
    name: String,
    /// The host's end of the pair.
    host_link: String,
    /// The third octet of 10.213.N.0/24.
    n: u8,
}

impl Namespace {
    /// Makes the namespace, the pair, the addresses (host .1 and .3, the
    /// namespace .2) and brings them up.
    fn new() -> Namespace {
        let id = std::process::id();
        let n = (id % 200) as u8 + 20;
        let ns = Namespace {
            name: format!("cut{id}"),
            host_link: format!("cvh{}", id % 100_000),
            n,
        };
        // Left over by a run that was killed: removed first.
        let _ = Command::new("ip")
            .args(["netns", "del", &ns.name])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &ns.host_link])
            .stderr(Stdio::null())
            .status();
        let inner = format!("cvn{}", id % 100_000);
        ip(&["netns", "add", &ns.name]);
        ip(&[
            "link",
            "add",
            &ns.host_link,
            "type",
            "veth",
            "peer",
            "name",
            &inner,
        ]);
        ip(&["link", "set", &inner, "netns", &ns.name]);
        ip(&[
            "addr",
            "add",
            &format!("10.213.{n}.1/24"),
            "dev",
            &ns.host_link,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("10.213.{n}.3/32"),
            "dev",
            &ns.host_link,
        ]);
        ip(&["link", "set", &ns.host_link, "up"]);
        ns.exec(&[
            "ip",
            "addr",
            "add",
            &format!("10.213.{n}.2/24"),
            "dev",
            &inner,
        ]);
        ns.exec(&["ip", "link", "set", &inner, "up"]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&[
            "ip",
            "route",
            "add",
            &format!("10.213.{n}.3/32"),
            "via",
            &format!("10.213.{n}.1"),
        ]);
        ns
    }

    /// The host's address `10.213.N.last`.
    fn host(&self, last: u8) -> [u8; 4] {
        [10, 213, self.n, last]
    }

    /// Runs a command inside the namespace; panics when it fails.
    fn exec(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        ip(&all);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .stderr(Stdio::null())
            .status();
    }
}

/// `migrate status ID --json`'s state.
fn state(site: &Site, id: i64) -> String {
    migration::status(site, id)["state"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn a_location_that_cannot_reach_the_new_server_rolls_the_migration_back() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ns = Namespace::new();
    let host = ns.host(1);
    let dns_far = cutover_peers::Reservation::new(&[host]);
    let http = cutover_peers::Reservation::new(&[host]);
    let (dns_far_addr, http_addr) = (dns_far.on(host), http.on(host));
    let dir = tempfile::tempdir().expect("a tempdir");
    let store = dir.path().join("cutover.db");
    let zone = dir.path().join("example.test.zone");
    std::fs::write(&zone, migration::zone_text(2)).unwrap();
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
    let token = ok(
        "token create",
        migration::cutover(
            &[
                "--store", &store_arg, "token", "create", "far", "--scope", "agent",
            ],
            &[],
        ),
    )
    .trim()
    .to_owned();
    let reader = ok(
        "token create",
        migration::cutover(
            &[
                "--store", &store_arg, "token", "create", "viewer", "--scope", "read",
            ],
            &[],
        ),
    )
    .trim()
    .to_owned();
    let mut site = Site::from_store(dir, store, |addr| {
        format!(
            "store = {store_arg:?}\n[dns]\nlisten = [\"{addr}\", \"{dns_far_addr}\"]\nudp_workers = 1\n\
             [http]\nlisten = \"{http_addr}\"\n\
             [agents]\noffline_after = \"3s\"\npoll_wait = \"1s\"\nlease = \"10s\"\nanswer_within = \"20s\"\n"
        )
    });
    site.hold_until_serve(dns_far);
    site.hold_until_serve(http);
    let _serve = site.serve(&[]);
    let local = migration::unbound(&runtime, site.addr);
    // The new web server, on the host's second address of the pair.
    let web = cutover_peers::hold_tcp_on(ns.host(3));
    let web_port = web.local_addr().unwrap().port();
    let _web = cutover_peers::http::HttpServer::start(web, "new");

    let log = site.dir.path().join("agent-far1.log");
    let agent = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            env!("CARGO_BIN_EXE_cutover"),
            "agent",
        ])
        .args([
            "--server",
            &format!("http://{http_addr}"),
            "--location",
            "far1",
            "--name",
            "far1-a",
        ])
        .args([
            "--resolver",
            &dns_far_addr.to_string(),
            "--probe-timeout",
            "1s",
        ])
        .env("CUTOVER_AGENT_TOKEN", &token)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the agent runs in the namespace");
    let _agent = cutover_peers::Guard {
        child: agent,
        what: "cutover agent (netns)",
    };
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The agent reaches serve from its namespace: listed online.
    let server = format!("http://{http_addr}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = migration::cutover(&["--server", &server, "--token", &reader, "agents"], &[]);
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        if listed
            .lines()
            .any(|l| l.starts_with("far1") && l.contains("far1-a") && l.contains("online"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected far1-a online from its namespace, `cutover agents` said:\n{listed}{}\nagent's log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            agent_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let file = site.migration_file(&format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n\
         [[move]]\nfrom = \"127.0.0.2\"\nto = \"10.213.{n}.3\"\n\
         [ttl]\nduring = 2\n\
         [[check]]\nhttp = \"http://www.example.test:{web_port}/healthz\"\nexpect_status = 200\n\
         [schedule]\nobserve = \"1s\"\nmargin = \"1s\"\n\
         [verify]\nauthorities = [\"{dns_far_addr}\"]\nresolvers = [\"{}\"]\ntries = 3\ninterval = \"1s\"\n\
         locations = [\"local\", \"far1\"]\n",
        local.addr,
        n = ns.n
    ));
    let id = migration::start(&site, &file);
    // Once the switch is made, the new server is cut off from far1.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = state(&site, id);
        if now == "verifying" {
            break;
        }
        assert!(
            !["done", "rolled_back", "failed", "paused"].contains(&now.as_str()),
            "expected the switch verified from far1 first, the migration is {now}; serve's log:\n{}\nagent's log:\n{}",
            site.log(),
            agent_log()
        );
        assert!(
            Instant::now() < deadline,
            "expected the switch within 60 s, it is {now}; serve's log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ns.exec(&[
        "ip",
        "route",
        "replace",
        "blackhole",
        &format!("10.213.{}.3/32", ns.n),
    ]);
    let summary = migration::wait_state(
        &site,
        id,
        &["done", "rolled_back", "failed", "paused"],
        Duration::from_secs(60),
    );
    assert_eq!(
        summary["state"], "rolled_back",
        "expected far1's failed checks to roll the migration back: {summary:#}\nserve's log:\n{}\nagent's log:\n{}",
        site.log(),
        agent_log()
    );
    let shown = migration::show(&site, id);
    let verify: Vec<&Value> = shown["migration"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "verify_switch")
        .collect();
    let last = verify.last().expect("a verify_switch step");
    assert_eq!(last["outcome"], "failed", "{last:#}");
    let reason = last["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains(&format!(
            "/healthz (resolved to 10.213.{}.3) from far1",
            ns.n
        )),
        "expected far1's failed check named: {reason}"
    );
    let per: Vec<(&str, bool)> = last["evidence"]["locations"]
        .as_array()
        .expect("the evidence per location")
        .iter()
        .map(|l| (l["location"].as_str().unwrap_or(""), l["agrees"] == true))
        .collect();
    assert_eq!(per, [("local", true), ("far1", false)], "{last:#}");
}
