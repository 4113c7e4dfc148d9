//! `cutover`: move services between servers through DNS without downtime.
//!
//! This file only parses the command line, runs the command and turns its
//! outcome into an exit status, in one place:
//!
//! | status | meaning                                                    |
//! |--------|------------------------------------------------------------|
//! | 0      | done                                                       |
//! | 1      | the operation failed (store error, unknown zone, bad data…) |
//! | 2      | bad command line, configuration or migration file          |
//! | 3      | the zone file does not parse                               |
//! | 4      | refused: the change needs `--yes`                          |

mod commands;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use crate::commands::{Cli, Unconfirmed};
use cutover_server::config::ConfigError;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    cli.server_from_env = matches.value_source("server") == Some(ValueSource::EnvVariable);
    if !matches!(cli.command, commands::Command::Serve) {
        end_quietly_on_closed_pipe();
    }
    // The demo prints its own story; only warnings from the parts it runs.
    let quiet = matches!(cli.command, commands::Command::Demo);
    init_logging(if quiet { "warn" } else { "info" });
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(status(&error))
        }
    }
}

/// The exit status for an error (see the table in the module doc).
fn status(error: &anyhow::Error) -> u8 {
    let refused = error.downcast_ref::<cutover_migrate::FileError>().is_some()
        || error
            .downcast_ref::<cutover_migrate::plan::Refusals>()
            .is_some()
        || matches!(
            error.downcast_ref::<cutover_migrate::PlanError>(),
            Some(cutover_migrate::PlanError::Refused(_))
        );
    if error.downcast_ref::<ConfigError>().is_some() || refused {
        2
    } else if error
        .downcast_ref::<cutover_zone::zonefile::ZoneFileError>()
        .is_some()
    {
        3
    } else if error.downcast_ref::<Unconfirmed>().is_some() {
        4
    } else {
        1
    }
}

/// `cutover zone export … | head` ends quietly when `head` closes the pipe,
/// as every Unix tool does: SIGPIPE back to its default action (the Rust
/// runtime ignores it, so a print to a closed pipe would panic). Not for
/// `serve`, which must outlive any client. Sockets are unaffected: Rust
/// writes to them with MSG_NOSIGNAL.
fn end_quietly_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL before any thread
    // starts touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `default_level`), in
/// colour only when stderr is a terminal and `NO_COLOR` is not set (a log
/// file or journald gets plain text).
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .with_writer(std::io::stderr)
        .init();
}

/// Colour on stderr (see [`colour_on`]).
pub fn colour() -> bool {
    commands::common::colour_on(&std::io::stderr())
}
