//! The command tree of the `cutover` binary and what every command shares:
//! finding the config and the store, reading names, printing diffs.

pub mod check;
pub mod countdown;
pub mod demo;
pub mod flush;
pub mod key;
pub mod mail;
pub mod migrate;
pub mod packaging;
pub mod record;
pub mod remote;
pub mod serve;
pub mod table;
pub mod token;
pub mod verify;
pub mod zone;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{Parser, Subcommand};
use cutover_store::Store;
use cutover_zone::duration::DurationError;
use cutover_zone::{Name, ZoneDiff};

use cutover_server::config::{Config, ConfigError};

/// Move services between servers through DNS without downtime.
#[derive(Debug, Parser)]
#[command(name = "cutover", version = crate::VERSION, about)]
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
}

/// A change that needs `--yes` and did not get it (exit status 4).
#[derive(Debug)]
pub struct Unconfirmed(pub String);

impl fmt::Display for Unconfirmed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (add --yes to do it)", self.0)
    }
}

impl std::error::Error for Unconfirmed {}

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(server) = &cli.server {
        match remote::reach(&cli.command) {
            remote::Reach::Remote => return remote::run(&cli, server),
            // `check`, `verify`, `serve`…: they act from this machine by
            // nature; an exported CUTOVER_SERVER does not concern them.
            remote::Reach::Here if cli.server_from_env => {}
            reach => return Err(remote::refusal(&cli, server, reach)),
        }
    }
    match &cli.command {
        Command::Zone(command) => {
            let need = match command {
                zone::ZoneCommand::Import { .. } => Need::Create,
                _ => Need::Existing,
            };
            zone::run_with_config(command, &open_store(&cli, need)?, cli.config.as_deref())
        }
        Command::Record(command) => record::run(command, &open_store(&cli, Need::Existing)?),
        Command::Demo => demo::run(),
        Command::Key(command) => key::run(command),
        Command::Check(args) => check::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Flush(args) => flush::run(args, Config::find(cli.config.as_deref())?.as_ref()),
        Command::Completions(args) => packaging::completions(args),
        Command::Manpage(args) => packaging::manpage(args),
        Command::Mail(args) => mail::run(args, cli.config.as_deref()),
        Command::Migrate(command) => migrate::run(command, &cli),
        Command::Token(command) => {
            let (path, from) = store_place(&cli)?;
            if !matches!(command, token::TokenCommand::Create { .. }) {
                require_store(&path, &from)?;
            }
            token::run(command, &path)
        }
        Command::Serve => {
            let config = Config::find(cli.config.as_deref())?.ok_or_else(|| ConfigError {
                path: cutover_server::config::DEFAULT_PATHS.join(", "),
                message: "no config file found (give one with --config FILE)".into(),
            })?;
            serve::run(&config, cli.store.as_deref())
        }
    }
}

/// The store file named by `--store`, else by the config, else
/// ./cutover.db, and where its name came from, for messages.
fn store_place(cli: &Cli) -> anyhow::Result<(PathBuf, String)> {
    Ok(match &cli.store {
        Some(path) => (path.clone(), "--store".to_owned()),
        None => match Config::find(cli.config.as_deref())? {
            Some(config) => {
                let from = format!("the `store` of {}", config.source.display());
                (config.store, from)
            }
            None => (
                PathBuf::from("./cutover.db"),
                format!(
                    "the default: no --store, and no config at {}",
                    cutover_server::config::DEFAULT_PATHS.join(" or ")
                ),
            ),
        },
    })
}

/// Whether a command may create the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Only a store that exists (reading, or changing what is there).
    Existing,
    /// A new store is made when there is none (`zone import`, `token create`…).
    Create,
}

/// Opens the store named by `--store`, else by the config, else
/// ./cutover.db; with [`Need::Existing`] a missing file is an error that
/// says where cutover looked, never a new empty store.
fn open_store(cli: &Cli, need: Need) -> anyhow::Result<Store> {
    let (path, from) = store_place(cli)?;
    if need == Need::Existing {
        require_store(&path, &from)?;
    }
    Store::open(&path).with_context(|| format!("cannot open the store {}", path.display()))
}

/// An error unless the store file exists.
fn require_store(path: &std::path::Path, from: &str) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    anyhow::bail!(
        "no store at {} ({from}); give --store PATH or --config FILE, or make one with `cutover zone import`",
        path.display()
    )
}

/// A zone's apex from the command line (always absolute).
pub fn zone_name(text: &str) -> anyhow::Result<Name> {
    let mut name =
        Name::from_str(text).map_err(|e| anyhow::anyhow!("invalid zone name {text:?}: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// A diff as `-`/`+` lines, removed records first, each in zone-file form.
pub fn diff_lines(diff: &ZoneDiff) -> String {
    let mut out = String::new();
    for record in &diff.removed {
        out.push_str("- ");
        out.push_str(&cutover_zone::zonefile::record_to_text(record));
        out.push('\n');
    }
    for record in &diff.added {
        out.push_str("+ ");
        out.push_str(&cutover_zone::zonefile::record_to_text(record));
        out.push('\n');
    }
    out
}

/// `--timeout`: how long one step may take, from 1ms to [`MAX_WAIT`]
/// (`500ms`, `2s`, `1.5`, `1m`): the API's grammar, shared with
/// `cutover verify`'s arguments.
pub use cutover_api::verify::{timeout, MAX_WAIT};

/// `--interval`: the time between two rounds, from 100ms (no busy loop)
/// to [`MAX_WAIT`].
pub fn interval(text: &str) -> Result<Duration, DurationError> {
    cutover_zone::duration::duration(text, Duration::from_millis(100)..=MAX_WAIT)
}

/// A time as RFC 3339 in UTC, to the second.
pub fn timestamp(time: SystemTime) -> String {
    match jiff::Timestamp::try_from(time) {
        Ok(t) => t
            .round(jiff::Unit::Second)
            .unwrap_or(t)
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        Err(_) => format!("{time:?}"),
    }
}
