//! `cutover token create|list|revoke`: the bearer tokens of the HTTP API.
//! A token is printed once, when created; the store keeps only its SHA-256.

use clap::{Subcommand, ValueEnum};

use super::table::Table;
use cutover_server::http::tokens::{TokenBook, TokenScope};

/// The `token` verbs.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (once: only its hash is kept).
    Create {
        /// A name for it, e.g. ci or dashboard.
        name: String,
        /// What it may do; the scopes nest (admin ⊇ probe ⊇ read): read (GET
        /// routes), probe (read, and check/verify/plan to the targets the
        /// zones, migrations and `[http] probe_allow` name) or admin
        /// (everything but the agents' routes); agent stands apart: a
        /// `cutover agent` fetches jobs and posts results, nothing else.
        #[arg(long, value_enum, default_value = "read")]
        scope: ScopeArg,
    },
    /// List the tokens (names and scopes; never the secrets).
    List,
    /// Revoke a token: it stops working at once.
    Revoke {
        /// Its name.
        name: String,
    },
}

/// `--scope` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScopeArg {
    /// Read-only routes.
    Read,
    /// Read-only routes, and probes (check, verify, plan) to the allowed targets.
    Probe,
    /// Every route but the agents'.
    Admin,
    /// A `cutover agent`: fetch jobs and post their results, nothing else.
    Agent,
}

/// Runs a `token` verb against the token table of the store at `store`.
pub fn run(command: &TokenCommand, store: &std::path::Path) -> anyhow::Result<()> {
    let book = TokenBook::open(store)?;
    match command {
        TokenCommand::Create { name, scope } => {
            let scope = match scope {
                ScopeArg::Read => TokenScope::Read,
                ScopeArg::Probe => TokenScope::Probe,
                ScopeArg::Admin => TokenScope::Admin,
                ScopeArg::Agent => TokenScope::Agent,
            };
            let token = book.create(name, scope)?;
            eprintln!("token {name:?} ({}); it is shown only now:", scope.as_str());
            println!("{token}");
        }
        TokenCommand::List => {
            let tokens = book.list()?;
            if tokens.is_empty() {
                println!(
                    "no tokens (make one with `cutover token create NAME --scope read|probe|admin|agent`)"
                );
                return Ok(());
            }
            let mut table = Table::new(["NAME", "SCOPE", "CREATED"]);
            for token in tokens {
                table.row([
                    token.name,
                    token.scope.as_str().to_owned(),
                    token.created_at.to_string(),
                ]);
            }
            table.print();
        }
        TokenCommand::Revoke { name } => {
            book.revoke(name)?;
            println!("token {name:?} revoked");
        }
    }
    Ok(())
}
