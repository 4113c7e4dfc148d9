//! `cutover serve`: the daemon (`cutover_server::Server`) until SIGTERM or
//! SIGINT. Everything that runs inside it lives in the `cutover-server`
//! crate; this is the command's whole part.

use std::path::Path;

use cutover_server::config::Config;
use cutover_server::Server;

/// Runs the server until SIGTERM or SIGINT.
pub fn run(config: &Config, store_override: Option<&Path>) -> anyhow::Result<()> {
    Server::start(config, store_override)?.wait_for_signal()
}
