//! The command tree: the global options ([`Cli`]) and the top-level verbs
//! ([`Command`]), each verb's arguments taken from its command's module.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::{
    agent, check, flush, key, mail, migrate, packaging, provider, record, token, verify, zone,
};

/// Move services between servers through DNS without downtime.
#[derive(Debug, Parser)]
#[command(name = "cutover", version = super::common::VERSION, about)]
#[command(
    after_help = "Exit status: 0 done, 1 failed, 2 bad command line or config, \
                        3 bad zone file, 4 refused without --yes."
)]
pub struct Cli {
    /// The config file (default ./cutover.toml, then /etc/cutover/cutover.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The store file, for commands that need only the store (default: the
    /// config's `store`, else ./cutover.db).
    #[arg(long, global = true, value_name = "PATH")]
    pub store: Option<PathBuf>,
    /// Act through the HTTP API of a remote `cutover serve`, e.g.
    /// http://127.0.0.1:8053 (zone list, record, migrate list|show, mail queue).
    /// Given before the command (`cutover --server URL zone list`).
    #[arg(long, value_name = "URL", env = "CUTOVER_SERVER")]
    pub server: Option<String>,
    /// The API token for --server.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CUTOVER_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// True when `server` came from `CUTOVER_SERVER`, not the command line
    /// (set by `main` from clap's value source).
    #[arg(skip)]
    pub server_from_env: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import, export, list, show, diff and delete zones.
    #[command(subcommand)]
    Zone(zone::ZoneCommand),
    /// Add, replace and delete records (each change bumps the serial).
    #[command(subcommand)]
    Record(record::RecordCommand),
    /// Generate TSIG keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Run the nameserver on the zones in the store.
    Serve,
    /// A whole migration on loopback in about half a minute: a site and its
    /// mail moved to new servers, each step with its evidence.
    Demo,
    /// What every authoritative server and every cache answers for a zone.
    Check(check::CheckArgs),
    /// A service checked at an address of your choosing, before DNS points there.
    Verify(verify::VerifyArgs),
    /// Empty the DNS caches on this machine and those the config names.
    Flush(flush::FlushArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(packaging::CompletionsArgs),
    /// Print the man page (roff), or write every command's page into a directory.
    Manpage(packaging::ManpageArgs),
    /// The mail relay's queue and the move controls (hold, retarget, release…).
    Mail(mail::MailArgs),
    /// Plan, start, run and steer migrations (lower TTLs, switch, verify, roll back, restore).
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
    /// Bearer tokens of the HTTP API (create prints the token once).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// A probe agent for another location: polls a serve's control plane
    /// (connecting out only) for checks, runs them from here, posts the
    /// results. Runs until stopped.
    Agent(agent::AgentArgs),
    /// The agents a serve knows, online or offline (through --server).
    Agents(agent::AgentsArgs),
    /// Where zones live: the provider kinds and cloud hosts (list), and a
    /// migration file's provider tried by reading through it (test).
    #[command(subcommand)]
    Provider(provider::ProviderCommand),
}
