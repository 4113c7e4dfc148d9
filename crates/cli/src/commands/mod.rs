//! The commands of the `cutover` binary: the modules, and [`run`], which
//! finds the config and the store a command needs and runs it. The tree
//! itself is in `tree`, what the commands share in `common`: no command
//! imports this file.

pub mod agent;
pub mod changes;
pub mod check;
pub mod common;
pub mod countdown;
pub mod demo;
pub mod flush;
pub mod key;
pub mod mail;
pub mod migrate;
pub mod packaging;
pub mod provider;
pub mod record;
pub mod remote;
pub mod serve;
pub mod table;
pub mod token;
pub mod tree;
pub mod verify;
pub mod zone;

use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;
use cutover_store::Store;

pub use self::common::Unconfirmed;
pub use self::tree::{Cli, Command};
use cutover_server::config::{Config, ConfigError};

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
        Command::Record(command) => record::run(
            command,
            &open_store(&cli, Need::Existing)?,
            Config::find(cli.config.as_deref())?.as_ref(),
        ),
        Command::Demo => demo::run(),
        Command::Key(command) => key::run(command),
        Command::Check(args) => check::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Flush(args) => flush::run(args, Config::find(cli.config.as_deref())?.as_ref()),
        Command::Completions(args) => packaging::completions(args, Cli::command()),
        Command::Manpage(args) => packaging::manpage(args, Cli::command()),
        Command::Mail(args) => mail::run(args, cli.config.as_deref()),
        Command::Migrate(command) => {
            let need = match command {
                migrate::MigrateCommand::Plan(_) | migrate::MigrateCommand::Start(_) => {
                    Need::Create
                }
                _ => Need::Existing,
            };
            let path = open_store(&cli, need)?.path().to_path_buf();
            migrate::run(command, &path, cli.config.as_deref())
        }
        Command::Token(command) => {
            let (path, from) = store_place(&cli)?;
            if !matches!(command, token::TokenCommand::Create { .. }) {
                require_store(&path, &from)?;
            }
            token::run(command, &path)
        }
        Command::Provider(command) => {
            let (path, _) = store_place(&cli)?;
            provider::run(command, &path)
        }
        Command::Agent(args) => agent::run(args),
        Command::Agents(_) => anyhow::bail!(
            "`cutover agents` asks a running serve: give --server URL and --token (a read token will do)"
        ),
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
