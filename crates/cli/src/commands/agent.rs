//! `cutover agent`: a probe agent at another location, run until stopped
//! (`cutover_server::agents::client`); and `cutover agents`, the agents a
//! serve knows, through its API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use cutover_api::AgentList;
use cutover_probe::caches;
use cutover_server::agents::client::{self, AgentOptions};

use super::table::{Table, Tone};

/// `cutover agent`'s arguments.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The control plane of the serve to work for: https://control:8053
    /// (http:// for loopback and tests).
    #[arg(long = "server", value_name = "URL")]
    pub control: String,
    /// An agent token (`cutover token create NAME --scope agent`).
    #[arg(
        long = "token",
        value_name = "TOKEN",
        env = "CUTOVER_AGENT_TOKEN",
        hide_env_values = true
    )]
    pub agent_token: String,
    /// Where this agent looks from (fra1, nyc1…): the name a migration's
    /// `[verify] locations` lists.
    #[arg(long, value_name = "NAME")]
    pub location: String,
    /// This agent's name (default: the host's name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A CA certificate (PEM) to check an https:// control plane with
    /// (a private CA); default: the web's roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// A resolver of this location (repeatable), IP[:PORT], `public`
    /// (Google, Cloudflare, Quad9 and OpenDNS, two addresses each: for a
    /// host that reaches the Internet) or `system` (this host's
    /// /etc/resolv.conf): asked instead of the migration's `[verify]
    /// resolvers`. `--resolvers` is the same option.
    #[arg(
        long = "resolver",
        visible_alias = "resolvers",
        value_name = "IP[:PORT]|public|system"
    )]
    pub resolvers: Vec<String>,
    /// How long each probe step waits (500ms, 5s…).
    #[arg(long, default_value = "5s", value_parser = super::common::timeout)]
    pub probe_timeout: Duration,
}

/// `cutover agents`' arguments.
#[derive(Debug, Args)]
pub struct AgentsArgs {
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
}

/// The host's name, for an agent without `--name`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}

/// The agent's resolvers: each `--resolver` in order, `public` and
/// `system` as `check` reads them ([`caches::listed_resolvers`]), each
/// address once.
fn resolvers(given: &[String]) -> anyhow::Result<Vec<SocketAddr>> {
    let listed = caches::listed_resolvers(given).map_err(|e| anyhow::anyhow!("--resolver: {e}"))?;
    Ok(listed.into_iter().map(|r| r.address).collect())
}

/// Runs the agent until a fatal error.
pub fn run(args: &AgentArgs) -> anyhow::Result<()> {
    let resolvers = resolvers(&args.resolvers)?;
    client::run(&AgentOptions {
        server: args.control.clone(),
        token: args.agent_token.clone(),
        location: args.location.clone(),
        name: args.name.clone().unwrap_or_else(hostname),
        ca_file: args.ca_file.clone(),
        resolvers,
        probe_timeout: args.probe_timeout,
    })
}

/// Prints the agents as `cutover agents` does.
pub fn print_agents(list: &AgentList) {
    if list.agents.is_empty() {
        println!("no agent has polled since serve started");
        return;
    }
    let mut table = Table::new([
        "LOCATION",
        "NAME",
        "STATE",
        "LAST SEEN",
        "JOBS DONE",
        "LEASED",
        "TOKEN",
    ])
    .right(&[4, 5]);
    for agent in &list.agents {
        let state = if agent.online { "online" } else { "offline" };
        table.toned(
            if agent.online {
                Tone::Plain
            } else {
                Tone::Alarm
            },
            [
                agent.location.clone(),
                agent.name.clone(),
                state.to_owned(),
                format!("{} ({} s ago)", agent.last_seen, agent.seen_seconds_ago),
                agent.jobs_done.to_string(),
                agent.jobs_leased.to_string(),
                agent.token.clone(),
            ],
        );
    }
    table.print();
    let offline = list.agents.iter().filter(|a| !a.online).count();
    println!(
        "{} online, {offline} offline (silent over {} s; an offline agent never counts as agreeing)",
        list.agents.len() - offline,
        list.offline_after_seconds
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_adds_the_documented_public_resolvers_to_the_given_ones() {
        let given = [
            "10.1.0.53".to_owned(),
            "public".to_owned(),
            "8.8.8.8".to_owned(),
        ];
        let listed = resolvers(&given).expect("valid resolvers");
        let mut expected = vec![SocketAddr::from(([10, 1, 0, 53], 53))];
        expected.extend(caches::public_resolvers().into_iter().map(|r| r.address));
        assert_eq!(
            listed, expected,
            "expected 10.1.0.53, then each public one once"
        );
        assert!(
            resolvers(&["pub".to_owned()]).is_err(),
            "expected a misspelt word refused"
        );
    }
}
