//! What the tests of probe agents share: `cutover agent` processes of a
//! site, each with its log, their listing through the API, and Unbound
//! resolvers of their own (fresh or stale) stubbing the site's zone.
//!
//! ```text
//!  Agent::start(site, token, fra1, …) ──spawn──▶ cutover agent --server site --location fra1 [--resolver …]
//!  wait_agents(site, …) ──GET /api/v1/agents (read token)──▶ until the listing says so
//!  unbound(runtime, site.dns, FRESH|STALE) ──▶ Unbound stubbing example.test to serve's nameserver
//! ```

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::control::{Guard, Site};

/// The `[agents]` section of the tests: offline after 3 s of silence, polls
/// of a second; `lease` and `answer_within` per test.
pub fn agents_section(lease: &str) -> String {
    format!(
        "[agents]\noffline_after = \"3s\"\npoll_wait = \"1s\"\nlease = \"{lease}\"\nanswer_within = \"30s\"\n"
    )
}

/// A running `cutover agent`, its log in the site's folder.
pub struct Agent {
    /// The process (killed on drop).
    pub guard: Guard,
    /// Its log.
    pub log: PathBuf,
}

impl Agent {
    /// Starts `cutover agent` for `site` at `location`, named `name`,
    /// asking `resolver` (if any).
    pub fn start(
        site: &Site,
        token: &str,
        location: &str,
        name: &str,
        resolver: Option<SocketAddr>,
    ) -> Agent {
        let resolver = resolver.map(|r| r.to_string());
        let mut args = vec!["--probe-timeout", "1s"];
        if let Some(resolver) = &resolver {
            args.extend(["--resolver", resolver.as_str()]);
        }
        Agent::start_with(site, token, location, name, &args)
    }

    /// Starts `cutover agent` for `site` at `location`, named `name`, with
    /// `args` besides (`--resolver …`, `--probe-timeout …`).
    pub fn start_with(
        site: &Site,
        token: &str,
        location: &str,
        name: &str,
        args: &[&str],
    ) -> Agent {
        let log = site.dir.path().join(format!("agent-{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_cutover"));
        command
            .args([
                "agent",
                "--server",
                &site.url(""),
                "--location",
                location,
                "--name",
                name,
            ])
            .env("CUTOVER_AGENT_TOKEN", token)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the agent's log"));
        command.args(args);
        Agent {
            guard: Guard {
                child: command.spawn().expect("cutover agent runs"),
                what: "cutover agent",
            },
            log,
        }
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `GET /api/v1/agents` with the read token.
pub fn agents(site: &Site) -> Value {
    let (status, list) = site.call("GET", "/api/v1/agents", Some(&site.reader), None);
    assert_eq!(status, 200, "GET /api/v1/agents: {list}");
    list
}

/// The listed agent named `name`, if any.
pub fn agent<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["agents"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == name)
}

/// Waits (at most `limit`) until `what` holds of the agents' listing;
/// panics with the last listing and the logs otherwise.
pub fn wait_agents(
    site: &Site,
    limit: Duration,
    what: &str,
    mut until: impl FnMut(&Value) -> bool,
    logs: &[&Agent],
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let list = agents(site);
        if until(&list) {
            return list;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|a| a.log()).collect();
            panic!(
                "expected {what} within {limit:?}; the agents: {list:#}\nagents' logs:\n{}\nserve's log:\n{}",
                logs.join("\n---\n"),
                site.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True when every agent of `names` is listed online.
pub fn online(list: &Value, names: &[&str]) -> bool {
    names
        .iter()
        .all(|n| agent(list, n).is_some_and(|a| a["online"] == true))
}

/// An Unbound caching resolver stubbing example.test to `authority`, with
/// `extra` in its server section.
pub fn unbound(
    runtime: &tokio::runtime::Runtime,
    authority: SocketAddr,
    extra: &str,
) -> cutover_peers::Unbound {
    runtime.block_on(cutover_peers::Unbound::start(
        &[("example.test", authority)],
        extra,
        "example.test.",
    ))
}

/// A fresh cache: nothing fetched ahead, nothing served past its TTL.
pub const FRESH: &str = "    prefetch: no\n    serve-expired: no\n";

/// A stale cache: whatever it fetched, it keeps for an hour (a TTL floor).
pub const STALE: &str = "    prefetch: no\n    serve-expired: no\n    cache-min-ttl: 3600\n";
