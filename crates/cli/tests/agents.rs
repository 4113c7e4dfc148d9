//! Probe agents on loopback, as real processes: `cutover serve` with its
//! control plane, and `cutover agent`s at locations of their own, each
//! asking its own Unbound.
//!
//! ```text
//!  cutover agent --location fra1 ──HTTP (agent token)──▶ cutover serve ([http], [agents])
//!     └──▶ Unbound fra1 ──stub──┐                            │ scheduler: the migration's checks
//!  cutover agent --location nyc1 ────────────────────────────┤   from local, fra1, nyc1
//!     └──▶ Unbound nyc1 (cache-min-ttl: stale) ──stub──┐     │
//!                                                      ▼     ▼
//!                                           cutover serve's nameserver (example.test.)
//! ```
//!
//! A migration verified from every location; one whose nyc1 resolver holds
//! the old value, kept retrying and rolled back with nyc1 named; an agent
//! killed (-9) mid-job, its job leased again and itself shown offline; the
//! agent token refused everywhere else and no other token taken as an
//! agent's; an agent polling again after serve restarts.

mod agent_support;
mod control;
mod migration;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_support::{
    agent, agents, agents_section, online, unbound, wait_agents, Agent, FRESH, STALE,
};
use control::{assert_error, ok, Guard, Site};
use migration::{assert_rolled_back_by, steps};
use serde_json::{json, Value};

/// The migration file: www from 127.0.0.2 to 127.0.0.3, its /healthz on
/// the new address checked, verified from `locations` through serve's
/// nameserver (authority) and `resolver` (local's).
fn migration(site: &Site, resolver: SocketAddr, web_port: u16, locations: &str) -> String {
    let text = format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n\
         [[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 2\n\
         [[check]]\nhttp = \"http://www.example.test:{web_port}/healthz\"\nexpect_status = 200\n\
         [schedule]\nobserve = \"1s\"\nmargin = \"1s\"\n\
         [verify]\nauthorities = [\"{}\"]\nresolvers = [\"{resolver}\"]\ntries = 3\ninterval = \"1s\"\nlocations = {locations}\n",
        site.dns
    );
    let path = site.dir.path().join("move-web.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The new web server, on 127.0.0.3.
fn new_web() -> (u16, cutover_peers::http::HttpServer) {
    let listener = cutover_peers::hold_tcp_on([127, 0, 0, 3]);
    let port = listener.local_addr().expect("bound").port();
    (
        port,
        cutover_peers::http::HttpServer::start(listener, "new"),
    )
}

/// `migrate start FILE --json` on the site's store; the id.
fn start(site: &Site, file: &str) -> i64 {
    let out = ok(
        "migrate start",
        site.run(&["migrate", "start", file, "--json"]),
    );
    let started: Value = serde_json::from_str(&out).expect("start --json is JSON");
    started["id"].as_i64().expect("an id")
}

/// `migrate show ID --json`.
fn show(site: &Site, id: i64) -> Value {
    let out = ok(
        "migrate show",
        site.run(&["migrate", "show", &id.to_string(), "--json"]),
    );
    serde_json::from_str(&out).expect("show --json is JSON")
}

/// Waits (at most `limit`) until migration `id` is in one of `states`.
fn wait_state(site: &Site, id: i64, states: &[&str], limit: Duration, agents: &[&Agent]) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let shown = show(site, id);
        let state = shown["migration"]["summary"]["state"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if states.contains(&state.as_str()) {
            return shown;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = agents.iter().map(|a| a.log()).collect();
            panic!(
                "expected migration {id} to reach {states:?} within {limit:?}, it is {state:?}: {shown:#}\nagents' logs:\n{}\nserve's log:\n{}",
                logs.join("\n---\n"),
                site.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `cutover --server … check example.test. www --type A --authority DNS
/// --from ARGS…` with the admin token.
fn check_from(site: &Site, from: &[&str]) -> std::process::Output {
    let (server, dns) = (site.url(""), site.dns.to_string());
    let mut args = vec![
        "--server",
        &server,
        "--token",
        &site.admin,
        "check",
        "example.test.",
        "www",
        "--type",
        "A",
        "--authority",
        &dns,
        "--from",
    ];
    args.extend_from_slice(from);
    control::cutover(&args)
}

#[test]
fn a_migration_is_verified_from_every_location() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = Site::start(&agents_section("10s"));
    let token = site.token("agents", "agent");
    let local = unbound(&runtime, site.dns, FRESH);
    let fra1 = unbound(&runtime, site.dns, FRESH);
    let nyc1 = unbound(&runtime, site.dns, FRESH);
    let a = Agent::start(&site, &token, "fra1", "fra1-a", Some(fra1.addr));
    let b = Agent::start(&site, &token, "nyc1", "nyc1-a", Some(nyc1.addr));
    wait_agents(
        &site,
        Duration::from_secs(30),
        "fra1-a and nyc1-a online",
        |l| online(l, &["fra1-a", "nyc1-a"]),
        &[&a, &b],
    );
    let (port, _web) = new_web();
    let file = migration(&site, local.addr, port, "[\"local\", \"fra1\", \"nyc1\"]");

    let plan = ok("migrate plan", site.run(&["migrate", "plan", &file]));
    assert!(
        plan.contains("from local, fra1, nyc1 (all must agree)"),
        "expected the plan to name the locations:\n{plan}"
    );
    let id = start(&site, &file);
    let shown = wait_state(
        &site,
        id,
        &["done", "rolled_back", "failed", "paused"],
        Duration::from_secs(90),
        &[&a, &b],
    );
    assert_eq!(
        shown["migration"]["summary"]["state"],
        "done",
        "{shown:#}\nserve's log:\n{}",
        site.log()
    );
    for kind in ["verify_new", "verify_switch"] {
        let step = steps(&shown, kind);
        let last = step
            .last()
            .unwrap_or_else(|| panic!("a {kind} step: {shown:#}"));
        assert_eq!(last["outcome"], "done", "{kind}: {last:#}");
        let locations = &last["evidence"]["locations"];
        let agreed: Vec<(&str, bool)> = locations
            .as_array()
            .unwrap_or_else(|| panic!("{kind}: expected the evidence per location: {last:#}"))
            .iter()
            .map(|l| (l["location"].as_str().unwrap_or(""), l["agrees"] == true))
            .collect();
        assert_eq!(
            agreed,
            [("local", true), ("fra1", true), ("nyc1", true)],
            "{kind}: expected every location to agree: {last:#}"
        );
    }
    let switch = steps(&shown, "verify_switch");
    let resolvers: Vec<&str> = switch[0]["evidence"]["survey"]["resolvers"]
        .as_array()
        .expect("the survey's resolvers")
        .iter()
        .filter_map(|r| r["server"].as_str())
        .collect();
    for location in ["local", "fra1", "nyc1"] {
        assert!(
            resolvers
                .iter()
                .any(|r| r.ends_with(&format!("from {location}"))),
            "expected a resolver seen from {location} among {resolvers:?}"
        );
    }
    let list = agents(&site);
    for name in ["fra1-a", "nyc1-a"] {
        let done = agent(&list, name).expect("listed")["jobs_done"]
            .as_u64()
            .unwrap_or(0);
        assert!(
            done >= 2,
            "expected {name} to have answered the checks and surveys, saw {done}: {list:#}"
        );
    }

    // The same view by hand: `check --from` through the API, a row per
    // location and server with the value and the TTL.
    let out = ok("check --from", check_from(&site, &["all"]));
    for location in ["local", "fra1", "nyc1"] {
        assert!(
            out.lines().any(|l| l.starts_with(location)
                && l.contains("www.example.test. A")
                && l.contains("127.0.0.3")),
            "expected {location} to see www at 127.0.0.3:\n{out}"
        );
    }
    assert!(
        out.contains("3 of 3 locations answered without a problem"),
        "{out}"
    );
    // A location no agent serves is a problem: named, not counted, and
    // the command fails.
    let ghost = check_from(&site, &["local,ghost1"]);
    let said = String::from_utf8_lossy(&ghost.stdout);
    assert!(
        !ghost.status.success()
            && said.contains("problem: ghost1")
            && said.contains("1 of 2 locations answered without a problem"),
        "expected check --from local,ghost1 to fail naming ghost1, saw {}:\n{said}{}",
        ghost.status,
        String::from_utf8_lossy(&ghost.stderr)
    );
    // `cutover agents` through the API.
    let listed = ok(
        "agents",
        control::cutover(&["--server", &site.url(""), "--token", &site.reader, "agents"]),
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("fra1") && l.contains("fra1-a") && l.contains("online")),
        "expected fra1-a listed online:\n{listed}"
    );
    let metrics = site.text("/metrics").2;
    assert!(
        metrics.contains("cutover_agents{location=\"fra1\",state=\"online\"} 1"),
        "expected the agents metric: {}",
        metrics
            .lines()
            .filter(|l| l.contains("agent"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_location_with_a_stale_cache_keeps_the_migration_retrying_then_rolls_it_back() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = Site::start(&agents_section("10s"));
    let token = site.token("agents", "agent");
    let local = unbound(&runtime, site.dns, FRESH);
    let fra1 = unbound(&runtime, site.dns, FRESH);
    let nyc1 = unbound(&runtime, site.dns, STALE);
    // nyc1's resolver caches the old address for an hour.
    let (old, ttl) = migration::address(nyc1.addr, "www.example.test.", true)
        .unwrap_or_else(|e| panic!("nyc1's resolver answers www: {e}"));
    assert_eq!(old.to_string(), "127.0.0.2");
    assert!(
        ttl > 60,
        "expected nyc1's floor to keep www for an hour, saw TTL {ttl}"
    );
    let a = Agent::start(&site, &token, "fra1", "fra1-a", Some(fra1.addr));
    let b = Agent::start(&site, &token, "nyc1", "nyc1-a", Some(nyc1.addr));
    wait_agents(
        &site,
        Duration::from_secs(30),
        "fra1-a and nyc1-a online",
        |l| online(l, &["fra1-a", "nyc1-a"]),
        &[&a, &b],
    );
    let (port, _web) = new_web();
    let file = migration(&site, local.addr, port, "[\"local\", \"fra1\", \"nyc1\"]");
    let id = start(&site, &file);
    let shown = wait_state(
        &site,
        id,
        &["done", "rolled_back", "failed", "paused"],
        Duration::from_secs(90),
        &[&a, &b],
    );
    let verify = assert_rolled_back_by(&shown, "nyc1", "127.0.0.2", &["fra1", "local"]);
    for step in &verify {
        let per: Vec<(&str, bool)> = step["evidence"]["locations"]
            .as_array()
            .expect("the evidence per location")
            .iter()
            .map(|l| (l["location"].as_str().unwrap_or(""), l["agrees"] == true))
            .collect();
        assert_eq!(
            per,
            [("local", true), ("fra1", true), ("nyc1", false)],
            "{step:#}"
        );
    }
    assert!(
        !steps(&shown, "revert").is_empty(),
        "expected the switch reverted: {shown:#}"
    );
}

#[test]
fn an_agent_killed_mid_job_has_its_job_leased_again_and_is_shown_offline() {
    let site = Site::start(&agents_section("6s"));
    let token = site.token("agents", "agent");
    let mut fleet = [
        (
            "fra1-a",
            Agent::start(&site, &token, "fra1", "fra1-a", None),
        ),
        (
            "fra1-b",
            Agent::start(&site, &token, "fra1", "fra1-b", None),
        ),
    ];
    let logs = |fleet: &[(&str, Agent)]| {
        fleet
            .iter()
            .map(|(_, a)| a.log())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    wait_agents(
        &site,
        Duration::from_secs(30),
        "fra1-a and fra1-b online",
        |l| online(l, &["fra1-a", "fra1-b"]),
        &[&fleet[0].1, &fleet[1].1],
    );
    // An authority that never answers: the job takes the agent's probe
    // timeouts (1 s, twice), time enough to be killed in.
    let silent = cutover_peers::hold_udp_on([127, 0, 0, 1]);
    let silent_addr = silent.local_addr().unwrap();
    let body = json!({
        "zone": "example.test.",
        "rrsets": [{"name": "www.example.test.", "rtype": "A"}],
        "verify": {"authorities": [silent_addr.to_string()], "resolvers": [], "tries": 1, "interval": 1,
                   "locations": {"listed": ["fra1"]}, "quorum": null}
    })
    .to_string();
    let url = site.url("/api/v1/checks/from");
    let admin = site.admin.clone();
    let asked = std::thread::spawn(move || control::raw(&url, "POST", Some(&admin), Some(&body)));
    let list = wait_agents(
        &site,
        Duration::from_secs(30),
        "one agent holding the job",
        |l| {
            l["agents"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["jobs_leased"] == 1))
        },
        &[&fleet[0].1, &fleet[1].1],
    );
    let holder = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["jobs_leased"] == 1)
        .and_then(|a| a["name"].as_str())
        .unwrap()
        .to_owned();
    let index = fleet
        .iter()
        .position(|(n, _)| *n == holder)
        .expect("the holder is ours");
    let survivor = fleet[1 - index].0;
    // SIGKILL: it never posts its result.
    fleet[index]
        .1
        .guard
        .child
        .kill()
        .expect("kill -9 the agent");
    fleet[index].1.guard.child.wait().expect("reaped");

    let (status, _, text) = asked
        .join()
        .expect("the check's thread")
        .expect("the check answers");
    assert_eq!(status, 200, "check from fra1: {text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    control::assert_schema("CheckFromResult", &answer);
    assert_eq!(answer["locations"][0]["location"], "fra1", "{answer:#}");
    let problems = answer["locations"][0]["survey"]["problems"].to_string();
    assert!(
        !problems.contains("no agent online") && !problems.contains("no answer within"),
        "expected fra1 answered by {survivor} after the lease passed, saw problems {problems}\nlogs:\n{}",
        logs(&fleet)
    );
    let list = wait_agents(
        &site,
        Duration::from_secs(30),
        "the killed agent offline",
        |l| agent(l, &holder).is_some_and(|a| a["online"] == false),
        &[&fleet[1 - index].1],
    );
    let taken = agent(&list, survivor).expect("listed");
    assert_eq!(
        taken["jobs_done"], 1,
        "expected {survivor} to have done the job: {list:#}"
    );
    assert_eq!(taken["online"], true, "{list:#}");
    assert_eq!(
        agent(&list, &holder).expect("listed")["jobs_done"],
        0,
        "{list:#}"
    );
    let metrics = site.text("/metrics").2;
    assert!(
        metrics.contains("cutover_agent_jobs_requeued_total 1")
            || metrics.contains("cutover_agent_jobs_requeued 1"),
        "expected one job queued again: {}",
        metrics
            .lines()
            .filter(|l| l.contains("agent"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let listed = ok(
        "agents",
        control::cutover(&["--server", &site.url(""), "--token", &site.reader, "agents"]),
    );
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&holder) && l.contains("offline")),
        "expected {holder} listed offline:\n{listed}"
    );
    drop(silent);
}

#[test]
fn the_agent_token_is_refused_elsewhere_and_no_other_token_poses_as_an_agent() {
    let site = Site::start(&agents_section("10s"));
    let token = site.token("agents", "agent");
    for (method, path, body) in [
        ("GET", "/api/v1/whoami", None),
        ("GET", "/api/v1/zones", None),
        ("GET", "/api/v1/agents", None),
        ("GET", "/api/v1/migrations", None),
        ("POST", "/api/v1/checks/check", Some("{}")),
        ("POST", "/api/v1/checks/from", Some("{}")),
        ("POST", "/api/v1/zones/example.test./records", Some("{}")),
        ("POST", "/api/v1/mail/hold", Some("{}")),
    ] {
        let seen = site.call(method, path, Some(&token), body);
        assert_error(
            &seen,
            403,
            "forbidden",
            &format!("{method} {path} with an agent token"),
        );
    }
    let hello = r#"{"name": "x1", "location": "fra1"}"#;
    for (who, other) in [
        ("admin", &site.admin),
        ("read", &site.reader),
        ("probe", &site.prober),
    ] {
        let seen = site.call("POST", "/api/v1/agents/poll", Some(other), Some(hello));
        assert_error(
            &seen,
            403,
            "forbidden",
            &format!("a poll with the {who} token"),
        );
        let seen = site.call(
            "POST",
            "/api/v1/agents/results",
            Some(other),
            Some(r#"{"name": "x1", "location": "fra1", "job": 1, "outcome": {"survey": {"authorities": [], "resolvers": [], "problems": []}}}"#),
        );
        assert_error(
            &seen,
            403,
            "forbidden",
            &format!("a result with the {who} token"),
        );
    }
    let (status, polled) = site.call("POST", "/api/v1/agents/poll", Some(&token), Some(hello));
    assert_eq!(status, 200, "{polled}");
    assert_eq!(polled["job"], Value::Null, "expected no job: {polled}");
    let (status, taken) = site.call(
        "POST",
        "/api/v1/agents/results",
        Some(&token),
        Some(r#"{"name": "x1", "location": "fra1", "job": 7, "outcome": {"survey": {"authorities": [], "resolvers": [], "problems": []}}}"#),
    );
    assert_eq!(status, 200, "{taken}");
    assert_eq!(
        taken["accepted"], false,
        "expected a job nobody waits for refused: {taken}"
    );
    let seen = site.call(
        "POST",
        "/api/v1/agents/poll",
        Some(&token),
        Some(r#"{"name": "x1", "location": "local"}"#),
    );
    assert_error(&seen, 400, "bad_request", "an agent calling itself local");
    let list = agents(&site);
    assert_eq!(
        agent(&list, "x1").expect("x1 listed")["token"],
        "agents",
        "{list:#}"
    );
}

#[test]
fn an_agent_polls_again_after_serve_restarts() {
    let mut site = Site::start(&agents_section("10s"));
    let token = site.token("agents", "agent");
    let a = Agent::start(&site, &token, "fra1", "fra1-a", None);
    wait_agents(
        &site,
        Duration::from_secs(30),
        "fra1-a online",
        |l| online(l, &["fra1-a"]),
        &[&a],
    );
    site.serve = None;
    // The agent finds serve gone and backs off.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.log().contains("trying again in") {
        assert!(
            Instant::now() < deadline,
            "expected the agent to back off while serve is down; its log:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    site.serve_again();
    // Serve's board starts empty: the agent is listed again only once it polled.
    wait_agents(
        &site,
        Duration::from_secs(30),
        "fra1-a online again",
        |l| online(l, &["fra1-a"]),
        &[&a],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.log().contains("reached again after") {
        assert!(
            Instant::now() < deadline,
            "expected the agent to say it reached serve again; its log:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn migrate_run_refuses_a_migration_verified_from_other_locations() {
    let mut site = Site::start(&agents_section("10s"));
    // Serve stopped: `migrate run` is the only runner.
    site.serve = None;
    let (port, _web) = new_web();
    let file = migration(&site, site.dns, port, "[\"local\", \"fra1\"]");
    let store = site.store.display().to_string();
    let started = ok(
        "migrate start --force",
        control::cutover(&[
            "--store", &store, "migrate", "start", &file, "--json", "--force",
        ]),
    );
    let id = serde_json::from_str::<Value>(&started).expect("JSON")["id"]
        .as_i64()
        .expect("an id");
    let out = control::cutover(&["--store", &store, "migrate", "run", &id.to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected migrate run refused, it exited 0: {stderr}"
    );
    assert!(
        stderr.contains(
            "verifies from fra1 ([verify] locations): only `cutover serve` reaches the agents"
        ),
        "expected the refusal to say why: {stderr}"
    );
}

#[test]
fn an_agent_trusts_a_private_ca_with_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let (cert, key) = (dir.path().join("api.pem"), dir.path().join("api.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let store = dir.path().join("cutover.db");
    let store_arg = store.to_str().unwrap();
    let token = |name: &str, scope: &str| {
        ok(
            "token create",
            control::cutover(&[
                "--store", store_arg, "token", "create", name, "--scope", scope,
            ]),
        )
        .trim()
        .to_owned()
    };
    let (agent_token, reader) = (token("agents", "agent"), token("viewer", "read"));
    let config = dir.path().join("cutover.toml");
    let log = dir.path().join("serve.log");
    let (http, _serve) = control::start_on_free_ports("cutover serve", |ports| {
        let dns = ports.on(control::LOOPBACK);
        let http = ports.pick(&[control::LOOPBACK]);
        std::fs::write(
            &config,
            format!("store = {store:?}\n[dns]\nlisten = [\"{dns}\"]\nudp_workers = 1\n[http]\nlisten = \"127.0.0.1:{http}\"\ntls_cert = {cert:?}\ntls_key = {key:?}\n{}", agents_section("10s")),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut serve = Guard {
            child,
            what: "cutover serve",
        };
        let [udp, tcp] = control::Socket::dns(dns);
        let https = control::Socket::Tcp(SocketAddr::from((control::LOOPBACK, http)));
        control::wait_bound("cutover serve", &mut serve.child, &[udp, tcp, https], &log)?;
        Ok((http, serve))
    });
    let server = format!("https://localhost:{http}");
    let spawn = |name: &str, ca: Option<&std::path::Path>| {
        let log = dir.path().join(format!("agent-{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_cutover"));
        command
            .args([
                "agent",
                "--server",
                &server,
                "--location",
                "fra1",
                "--name",
                name,
            ])
            .env("CUTOVER_AGENT_TOKEN", &agent_token)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(ca) = ca {
            command.arg("--ca-file").arg(ca);
        }
        Agent {
            guard: Guard {
                child: command.spawn().expect("cutover agent runs"),
                what: "cutover agent",
            },
            log,
        }
    };
    let trusting = spawn("fra1-ca", Some(&cert));
    let untrusting = spawn("fra1-web", None);
    // The listing, over HTTPS with the same CA (curl).
    let listing = || {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "5",
                "--resolve",
                &format!("localhost:{http}:127.0.0.1"),
            ])
            .args([
                "--cacert",
                cert.to_str().unwrap(),
                "-H",
                &format!("Authorization: Bearer {reader}"),
            ])
            .arg(format!("{server}/api/v1/agents"))
            .output()
            .expect("curl runs");
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = listing();
        if online(&list, &["fra1-ca"]) {
            assert!(
                agent(&list, "fra1-web").is_none(),
                "expected the agent without the CA never listed: {list:#}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected fra1-ca online over HTTPS, seen {list:#}; its log:\n{}",
            trusting.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !untrusting.log().contains("trying again in") {
        assert!(
            Instant::now() < deadline,
            "expected the agent without --ca-file to refuse the certificate and back off; its log:\n{}",
            untrusting.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !untrusting.log().contains(&agent_token),
        "expected the token never logged"
    );
}

#[test]
fn a_quorum_of_two_goes_on_past_a_stale_location_and_names_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = Site::start(&agents_section("10s"));
    let token = site.token("agents", "agent");
    let local = unbound(&runtime, site.dns, FRESH);
    let fra1 = unbound(&runtime, site.dns, FRESH);
    let nyc1 = unbound(&runtime, site.dns, STALE);
    let (old, _) = migration::address(nyc1.addr, "www.example.test.", true)
        .unwrap_or_else(|e| panic!("nyc1's resolver answers www: {e}"));
    assert_eq!(old.to_string(), "127.0.0.2");
    let a = Agent::start(&site, &token, "fra1", "fra1-a", Some(fra1.addr));
    let b = Agent::start(&site, &token, "nyc1", "nyc1-a", Some(nyc1.addr));
    wait_agents(
        &site,
        Duration::from_secs(30),
        "fra1-a and nyc1-a online",
        |l| online(l, &["fra1-a", "nyc1-a"]),
        &[&a, &b],
    );
    let (port, _web) = new_web();
    let file = migration(
        &site,
        local.addr,
        port,
        "[\"local\", \"fra1\", \"nyc1\"]\nquorum = 2",
    );
    let plan = ok("migrate plan", site.run(&["migrate", "plan", &file]));
    assert!(
        plan.contains("from local, fra1, nyc1 (at least 2 must agree)"),
        "{plan}"
    );
    let id = start(&site, &file);
    let shown = wait_state(
        &site,
        id,
        &["done", "rolled_back", "failed", "paused"],
        Duration::from_secs(90),
        &[&a, &b],
    );
    assert_eq!(shown["migration"]["summary"]["state"], "done", "{shown:#}");
    let verify = steps(&shown, "verify_switch");
    assert_eq!(
        verify.len(),
        1,
        "expected one look, the quorum met at once: {shown:#}"
    );
    assert_eq!(verify[0]["outcome"], "done");
    let reason = verify[0]["reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("2 of 3 locations agree (quorum 2); nyc1 did not:")
            && reason.contains("from nyc1 answers www.example.test. A with 127.0.0.2"),
        "expected the disagreeing location named beside the quorum: {reason}"
    );
}

/// `--resolvers public`: the agent asks the documented public resolvers.
/// This host reaches no Internet, so what is true here is that each is in
/// the location's report, each with an error (a timeout or unreachable),
/// and the location is therefore not clean: `check --from` exits 1.
#[test]
fn an_agent_with_the_public_resolvers_asks_each_and_says_when_none_answers() {
    let site = Site::start(&agents_section("10s"));
    let token = site.token("agents", "agent");
    let a = Agent::start_with(
        &site,
        &token,
        "pub1",
        "pub1-a",
        &["--probe-timeout", "300ms", "--resolvers", "public"],
    );
    wait_agents(
        &site,
        Duration::from_secs(30),
        "pub1-a online",
        |l| online(l, &["pub1-a"]),
        &[&a],
    );
    let started = Instant::now();
    let out = check_from(&site, &["pub1", "--json"]);
    let took = started.elapsed();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected check --from pub1 to exit 1 (not clean), saw {}:\n{said}{}\nthe agent's log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        a.log()
    );
    let result: Value = serde_json::from_str(&said).expect("check --from --json is JSON");
    let located = &result["locations"][0];
    assert_eq!(located["location"], "pub1", "{result:#}");
    let survey = &located["survey"];
    // The authority answered: the location's trouble is the resolvers alone.
    let authorities = survey["authorities"].as_array().expect("authorities");
    assert!(
        !authorities.is_empty()
            && authorities
                .iter()
                .all(|v| v["answers"].as_array().is_some_and(|a| a
                    .iter()
                    .all(|a| a["error"].is_null() && a["values"] == json!(["127.0.0.2"])))),
        "expected serve's nameserver to answer www from pub1: {survey:#}"
    );
    let resolvers = survey["resolvers"].as_array().expect("resolvers");
    let public = cutover_probe::caches::public_resolvers();
    assert_eq!(
        resolvers.len(),
        public.len(),
        "expected one row per public resolver, no other: {survey:#}"
    );
    for resolver in &public {
        let address = resolver.address.to_string();
        let row = resolvers
            .iter()
            .find(|v| v["server"].as_str().is_some_and(|s| s.contains(&address)))
            .unwrap_or_else(|| panic!("expected {address} asked from pub1: {survey:#}"));
        let answers = row["answers"].as_array().expect("answers");
        assert!(
            !answers.is_empty()
                && answers
                    .iter()
                    .all(|a| a["error"].as_str().is_some_and(|e| !e.is_empty())
                        && a["values"].as_array().is_some_and(Vec::is_empty)),
            "expected {address} to have given no answer here (no Internet), an error said: {row:#}"
        );
    }
    assert!(
        took < Duration::from_secs(20),
        "expected the timeouts short (--probe-timeout 300ms), took {took:?}"
    );
}
