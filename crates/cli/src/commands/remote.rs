//! `cutover --server URL …`: commands carried out by a remote `cutover
//! serve` through its HTTP API (the request and response types are
//! `cutover_api`'s, shared with the server), with the token from `--token`
//! or `CUTOVER_TOKEN`.
//!
//! ```text
//!  zone list ──────────────▶ GET  /api/v1/zones
//!  zone export ────────────▶ GET  /api/v1/zones/{zone}/export
//!  record add|set|delete ──▶ POST /api/v1/zones/{zone}/records
//!  record apply FILE|- ────▶ PATCH /api/v1/zones/{zone}/rrsets (the file read and
//!                            checked here first; rrsets[i] in an error → FILE:LINE)
//!  migrate list | show ID ─▶ GET  /api/v1/migrations[/{id}]
//!  migrate approve ID ─────▶ POST /api/v1/migrations/{id}/approve (who: the token's name)
//!  mail queue ─────────────▶ GET  /api/v1/mail/queue
//!  agents ─────────────────▶ GET  /api/v1/agents
//!  check --from LOCS ──────▶ POST /api/v1/checks/from (a survey per location)
//!  an error answer ────────▶ its message, exit status 1
//! ```

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use cutover_api::{
    ChangeAction, ChangeResult, Changetype, ErrorBody, MailQueue, MigrationAction, MigrationList,
    RecordChange, RrsetPatch, RrsetPatchEntry, RrsetRecord, ZoneExport, ZoneList,
};
use cutover_migrate::runner::{AuditEntry, Detail, Summary};
use cutover_nameserver::update::operator::RrsetAction;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::mail::{render_queue, MailCommand};
use super::migrate::{
    approved_text, notifications_text, render_detail, render_summaries, Listed, MigrateCommand,
    NO_MIGRATIONS,
};
use super::record::RecordCommand;
use super::tree::{Cli, Command};
use super::zone::{ListedZone, ZoneCommand};

/// A client of one remote control plane.
struct Remote {
    /// The base URL, without a trailing slash.
    base: String,
    /// The bearer token.
    token: Option<String>,
    /// The HTTP agent (errors are answers, not failures).
    agent: ureq::Agent,
}

impl Remote {
    /// A client of `base`.
    fn new(base: &str, token: Option<String>) -> Remote {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Remote {
            base: base.trim_end_matches('/').to_owned(),
            token,
            agent,
        }
    }

    /// Sends a request; returns the answer's JSON, or the API's error message.
    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<T> {
        let url = format!("{}{}{path}", self.base, cutover_api::PREFIX);
        let auth = self.token.as_ref().map(|token| format!("Bearer {token}"));
        let response = match (method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            ("PATCH", body) => {
                let mut request = self.agent.patch(&url).content_type("application/json");
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(body.unwrap_or_default())
            }
            (_, body) => {
                let mut request = self.agent.post(&url).content_type("application/json");
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(body.unwrap_or_default())
            }
        };
        let mut response = response.with_context(|| format!("cannot reach {url}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("cannot read the answer of {url}"))?;
        if !(200..300).contains(&status) {
            return match serde_json::from_str::<ErrorBody>(&text) {
                Ok(error) => Err(anyhow!(
                    "{} ({status} {})",
                    error.error.message,
                    error.error.code
                )),
                Err(_) => Err(anyhow!("{url} answered {status}: {}", text.trim())),
            };
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{url} answered something else than expected"))
    }
}

/// Where a command can run when `--server` (or `CUTOVER_SERVER`) is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Through the API of the remote serve.
    Remote,
    /// Only here, by nature (it asks the network from this machine, or
    /// needs no store): an exported `CUTOVER_SERVER` is ignored.
    Here,
    /// On a store, but not through the API (yet): refused rather than run
    /// on a local store the operator did not mean.
    StoreOnly,
}

/// Where `command` can run.
pub fn reach(command: &Command) -> Reach {
    match command {
        Command::Zone(ZoneCommand::List | ZoneCommand::Export { .. })
        | Command::Record(_)
        | Command::Migrate(
            MigrateCommand::List(_) | MigrateCommand::Show(_) | MigrateCommand::Approve(_),
        )
        | Command::Mail(super::mail::MailArgs {
            command: MailCommand::Queue { .. },
            ..
        }) => Reach::Remote,
        Command::Check(args) if args.from.is_some() => Reach::Remote,
        Command::Agents(_) => Reach::Remote,
        Command::Check(_)
        | Command::Agent(_)
        | Command::Verify(_)
        | Command::Key(_)
        | Command::Flush(_)
        | Command::Completions(_)
        | Command::Manpage(_)
        | Command::Demo
        | Command::Provider(_)
        | Command::Serve => Reach::Here,
        Command::Zone(_) | Command::Migrate(_) | Command::Mail(_) | Command::Token(_) => {
            Reach::StoreOnly
        }
    }
}

/// The error for a command that cannot run with `--server` set, naming
/// where the server came from and what to do.
pub fn refusal(cli: &Cli, server: &str, reach: Reach) -> anyhow::Error {
    let source = match cli.server_from_env {
        true => format!("CUTOVER_SERVER is set to {server}"),
        false => format!("--server {server} was given"),
    };
    let remote =
        "zone list, zone export, record add|set|delete|apply, migrate list|show|approve, mail queue, agents, check --from";
    match reach {
        Reach::Here => anyhow!(
            "{source}, but this command runs on this machine, not through the API: drop --server"
        ),
        _ => anyhow!(
            "{source}, but this command does not work through the API (it does: {remote}); \
             run it on the server's machine, or unset CUTOVER_SERVER to act on a local store"
        ),
    }
}

/// Colour on standard output (a terminal, `NO_COLOR` unset).
fn colour() -> bool {
    crate::commands::common::colour_on(&std::io::stdout())
}

/// Prints a change's answer as the local command prints it: the serial
/// change and the diff, or why nothing was written.
fn print_change(result: &ChangeResult) {
    let diff = &result.diff;
    if diff.added.is_empty() && diff.removed.is_empty() {
        let note = result.note.as_deref().unwrap_or("nothing written");
        println!("{}: {note}, serial stays {}", diff.origin, diff.to);
        return;
    }
    match result.applied {
        true => println!("{}: serial {} → {}", diff.origin, diff.from, diff.to),
        false => println!(
            "{}: serial would go {} → {}",
            diff.origin, diff.from, diff.to
        ),
    }
    for record in &diff.removed {
        println!(
            "- {} {} IN {} {}",
            record.name, record.ttl, record.rtype, record.data
        );
    }
    for record in &diff.added {
        println!(
            "+ {} {} IN {} {}",
            record.name, record.ttl, record.rtype, record.data
        );
    }
    match (result.applied, &result.note) {
        (false, _) => println!("dry run: nothing changed"),
        (true, Some(note)) => println!("{}: {note}", diff.origin),
        (true, None) => {}
    }
}

/// One entry of a change file as the API's RRset change.
fn rrset_change(entry: &super::changes::Entry) -> RrsetPatchEntry {
    RrsetPatchEntry {
        name: entry.owner.clone(),
        rtype: entry.rtype.clone(),
        ttl: entry.ttl,
        changetype: match entry.action {
            RrsetAction::Replace => Changetype::Replace,
            RrsetAction::Delete => Changetype::Delete,
            RrsetAction::Extend => Changetype::Extend,
            RrsetAction::Prune => Changetype::Prune,
        },
        records: entry
            .datas
            .iter()
            .map(|data| RrsetRecord {
                content: data.clone(),
                disabled: false,
            })
            .collect(),
    }
}

/// The server's words with `rrsets[i]` turned back into the place in the
/// change file of entry `i`.
fn placed(message: &str, label: &str, entries: &[super::changes::Entry]) -> String {
    let Some(start) = message.find("rrsets[") else {
        return message.to_owned();
    };
    let rest = &message[start + "rrsets[".len()..];
    let Some(end) = rest.find(']') else {
        return message.to_owned();
    };
    match rest[..end]
        .parse::<usize>()
        .ok()
        .and_then(|i| entries.get(i))
    {
        Some(entry) => format!(
            "{}{label}:{}{}",
            &message[..start],
            entry.line,
            &rest[end + 1..]
        ),
        None => message.to_owned(),
    }
}

/// Runs the command through the remote serve; commands it cannot carry are refused.
pub fn run(cli: &Cli, server: &str) -> anyhow::Result<()> {
    let remote = Remote::new(server, cli.token.clone());
    match &cli.command {
        Command::Agents(args) => {
            let list: cutover_api::AgentList = remote.call("GET", "/agents", None)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                super::agent::print_agents(&list);
            }
            Ok(())
        }
        Command::Check(args) if args.from.is_some() => {
            let from = args.from.as_deref().unwrap_or("all");
            let request = super::check::from_request(args, from)?;
            let result: cutover_migrate::agent::CheckFromResult = remote.call(
                "POST",
                "/checks/from",
                Some(serde_json::to_string(&request)?),
            )?;
            super::check::print_from(&result, args.json)
        }
        Command::Zone(ZoneCommand::List) => {
            let list: ZoneList = remote.call("GET", "/zones", None)?;
            super::zone::print_list(list.zones.into_iter().map(|zone| ListedZone {
                origin: zone.origin,
                serial: zone.serial,
                records: zone.records,
                updated_at: zone.updated_at,
            }));
            Ok(())
        }
        Command::Zone(ZoneCommand::Export {
            zone,
            serial,
            output,
        }) => {
            let query = serial.map(|s| format!("?serial={s}")).unwrap_or_default();
            let export: ZoneExport =
                remote.call("GET", &format!("/zones/{zone}/export{query}"), None)?;
            super::zone::write_export(&export.text, output.as_ref())
        }
        Command::Record(RecordCommand::Apply(batch)) => {
            let origin = super::common::zone_name(&batch.zone)?;
            let (label, entries) = batch.read(&origin)?;
            let patch = RrsetPatch {
                rrsets: entries.iter().map(rrset_change).collect(),
                dry_run: batch.dry_run,
            };
            let body = serde_json::to_string(&patch)?;
            let path = format!("/zones/{}/rrsets", batch.zone);
            let result: ChangeResult = remote
                .call("PATCH", &path, Some(body))
                .map_err(|e| anyhow!("{}", placed(&e.to_string(), &label, &entries)))?;
            print_change(&result);
            Ok(())
        }
        Command::Record(command) => {
            let (zone, change) = match command {
                RecordCommand::Add(c) | RecordCommand::Set(c) => (
                    c.zone.clone(),
                    RecordChange {
                        action: if matches!(command, RecordCommand::Add(_)) {
                            ChangeAction::Add
                        } else {
                            ChangeAction::Set
                        },
                        name: c.name.clone(),
                        rtype: c.rtype.clone(),
                        data: Some(c.data.join(" ")),
                        ttl: c.ttl,
                        dry_run: c.dry_run,
                        replace: c.replace,
                    },
                ),
                RecordCommand::Delete(r) => (
                    r.zone.clone(),
                    RecordChange {
                        action: ChangeAction::Delete,
                        name: r.name.clone(),
                        rtype: r.rtype.clone(),
                        data: (!r.data.is_empty()).then(|| r.data.join(" ")),
                        ttl: None,
                        dry_run: r.dry_run,
                        replace: false,
                    },
                ),
                RecordCommand::Apply(_) => unreachable!("record apply is matched above"),
            };
            let body = serde_json::to_string(&change)?;
            let result: ChangeResult =
                remote.call("POST", &format!("/zones/{zone}/records"), Some(body))?;
            print_change(&result);
            Ok(())
        }
        Command::Migrate(MigrateCommand::List(args)) => {
            let list: MigrationList = remote.call("GET", "/migrations", None)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list.migrations)?);
                return Ok(());
            }
            let listed = list
                .migrations
                .into_iter()
                .map(|value| {
                    let attention = value["attention"].as_str().map(str::to_owned);
                    let summary = serde_json::from_value(value)
                        .context("the server answered a migration this cutover cannot read")?;
                    Ok(Listed { summary, attention })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            print!(
                "{}",
                render_summaries(&listed, NO_MIGRATIONS, Timestamp::now(), colour())
            );
            Ok(())
        }
        Command::Migrate(MigrateCommand::Show(args)) => {
            let id = args.id;
            let mut migration: Value = remote.call("GET", &format!("/migrations/{id}"), None)?;
            let audit: Value = remote.call("GET", &format!("/migrations/{id}/audit"), None)?;
            let mut audit = audit;
            let audit = audit["entries"].take();
            if args.json {
                let both = serde_json::json!({"migration": migration, "audit": audit});
                println!("{}", serde_json::to_string_pretty(&both)?);
                return Ok(());
            }
            let attention = migration["summary"]["attention"]
                .as_str()
                .map(str::to_owned);
            let unreadable = "the server answered a migration this cutover cannot read";
            let notifications: Vec<cutover_migrate::notify::Delivery> =
                serde_json::from_value(migration["notifications"].take()).unwrap_or_default();
            let detail: Detail = serde_json::from_value(migration.take()).context(unreadable)?;
            let audit: Vec<AuditEntry> = serde_json::from_value(audit).context(unreadable)?;
            print!(
                "{}",
                render_detail(
                    &detail,
                    &audit,
                    attention.as_deref(),
                    Timestamp::now(),
                    colour()
                )
            );
            print!("{}", notifications_text(&notifications));
            Ok(())
        }
        Command::Migrate(MigrateCommand::Approve(args)) => {
            let id = args.id;
            let body = serde_json::to_string(&MigrationAction {
                reason: args.reason.clone(),
            })?;
            let answer: Value =
                remote.call("POST", &format!("/migrations/{id}/approve"), Some(body))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            let unreadable = "the server answered a migration this cutover cannot read";
            let attention = answer["attention"].as_str().map(str::to_owned);
            let summary: Summary = serde_json::from_value(answer).context(unreadable)?;
            // Who approved and when, as the server recorded it.
            let detail: Detail = remote.call("GET", &format!("/migrations/{id}"), None)?;
            print!(
                "{}",
                approved_text(&summary, &detail.events, attention.as_deref())
            );
            Ok(())
        }
        Command::Mail(args) => match &args.command {
            MailCommand::Queue { json } => {
                let queue: MailQueue = remote.call("GET", "/mail/queue", None)?;
                if *json {
                    println!("{}", serde_json::to_string_pretty(&queue.messages)?);
                    return Ok(());
                }
                print!("{}", render_queue(&queue.messages, colour()));
                Ok(())
            }
            _ => bail!("with --server, `mail` supports only `queue` (use the API for the rest)"),
        },
        _ => Err(refusal(cli, server, Reach::StoreOnly)),
    }
}
