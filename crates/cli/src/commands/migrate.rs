//! `cutover migrate …`: plan a move, start it, run it, and steer it.
//!
//! ```text
//!  plan FILE   file ──provider.read──▶ zone ──survey──▶ observations ──plan (pure)──▶ timeline (nothing changes)
//!  start FILE  the same, then Migrations::start ──▶ ID   (`cutover serve` runs it from now on;
//!              without one running on the store, it says that nothing will)
//!  run ID      tick ──▶ steps printed with outcome, reason, evidence ──▶ countdown to the next ──▶ … until done or stopped
//!  list | status [ID] | show ID          read the migration tables of the store, and who runs
//!              each migration (scheduler::presence): a step nothing runs is "overdue", not "5 min ago"
//!  pause | resume | abort --yes | rollback --yes   change its state (rollback is carried out right away)
//!  approve ID  record the approval (by the local user) of the gate it awaits at (`approve = "before_STEP"`);
//!              refused (exit 1) when it awaits none. `run` waits at the gate until someone approves.
//! ```
//!
//! Exit status: 0 when the command did what it says (`run`: the migration
//! is done), 1 when it failed or the migration stopped (failed, rolled
//! back, aborted, paused), 2 for a bad migration file, 4 without `--yes`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use cutover_migrate::checks::{observe, ProbeChecks};
use cutover_migrate::notify;
use cutover_migrate::partial;
use cutover_migrate::plan::preflight::{self, Active};
use cutover_migrate::plan::Refusals;
use cutover_migrate::provider::ProviderSpec;
use cutover_migrate::runner::Summary;
use cutover_migrate::{
    render, FileError, MigrationFile, Migrations, Observations, Plan, State, Survey, SystemClock,
    Warning,
};
use cutover_provider::ProviderError;
use cutover_server::scheduler::Site;
use jiff::Timestamp;

mod report;
mod site;

pub use self::report::{
    approved_text, notifications_text, print_audit, print_step, render_detail, render_summaries,
    Listed,
};
use self::report::{clock, label, print_control, print_started, print_summaries, show};
use self::site::{exposure, site_hazards};
use super::common::Unconfirmed;
use super::countdown::{Countdown, Display, Stream};
use cutover_migrate::words::seconds;
use cutover_server::config::{Config, ConfigError};
use cutover_server::scheduler::lease::{self, Lease};
use cutover_server::scheduler::presence::{
    annotated, attention, carrier, scheduler_runs, Annotated, Presence,
};
use cutover_server::scheduler::Wiring;

/// The `migrate` verbs.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Print the timeline of a migration file, with absolute times and warnings; changes nothing.
    Plan(FileArgs),
    /// Store a migration and its plan; `cutover serve` (or `migrate run`) carries it out.
    Start(FileArgs),
    /// Run a migration in the foreground, with its progress and countdowns, until it ends or stops.
    Run(IdArgs),
    /// Every migration in the store.
    List(JsonArgs),
    /// Where migrations stand (the unfinished ones, or one ID).
    Status(StatusArgs),
    /// One migration: its timeline (done, next, when), its steps with evidence, its audit log.
    Show(IdArgs),
    /// Stop a migration where it is; `resume` goes on.
    Pause(IdArgs),
    /// Go on with a paused migration (or retry one rolled back automatically).
    Resume(IdArgs),
    /// Stop a migration for good, leaving the records as they are (needs --yes).
    Abort(ConfirmArgs),
    /// Put the old values back (low TTL kept), then the original TTLs (needs --yes).
    Rollback(ConfirmArgs),
    /// Approve the gate a migration awaits approval at (`approve = "before_switch"`): it goes on.
    Approve(ApproveArgs),
}

/// A migration id to approve, why, and the output format.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The migration's id.
    pub(crate) id: i64,
    /// Why, for the record (beside who approved).
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A migration file and the output format.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// The migration file (TOML, see examples/move-web.toml).
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Go on despite what the servers say now or another migration of the
    /// same records (each is then a warning of the plan); a file that
    /// cannot work is refused all the same.
    #[arg(long)]
    force: bool,
    /// Refuse a file that names files or environment variables of this
    /// machine (key_file, api_key_file, api_key_env, …): set for files sent
    /// through the HTTP API.
    #[arg(long, hide = true)]
    no_local_files: bool,
}

/// A migration id and the output format.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The migration's id (as `start` printed it).
    pub(crate) id: i64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Only the output format.
#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// An optional id and the output format.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One migration (default: every unfinished one).
    id: Option<i64>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// A migration id, a confirmation, and the output format.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The migration's id.
    id: i64,
    /// Yes, do it.
    #[arg(long)]
    yes: bool,
    /// Why, for the record (default: "on the command line").
    #[arg(long)]
    reason: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs one `migrate` verb on the store at `path` (made for `plan` and
/// `start` when there was none), with the config named by `--config`.
pub fn run(command: &MigrateCommand, path: &Path, config: Option<&Path>) -> anyhow::Result<()> {
    let path = path.to_path_buf();
    let migrations = Migrations::open(&path)
        .with_context(|| format!("cannot open the migrations in {}", path.display()))?;
    // The caches a migration's flush step empties (`[flush]`) and the relay
    // its mail steps steer (`[mail]`).
    let site = Site::of(Config::find(config)?.as_ref());
    let now = Timestamp::now();
    match command {
        MigrateCommand::Plan(args) => {
            let (_, _, plan) = make_plan(args, &path, &migrations, &site, config)?;
            let unattended = (!scheduler_runs(&path)).then(|| {
                if plan.verify.local_only() {
                    "nothing is running migrations on this store: once started, nothing happens \
                     until `cutover serve` runs with this store, or `cutover migrate run ID` runs it here"
                        .to_string()
                } else {
                    format!(
                        "nothing is running migrations on this store: once started, nothing happens \
                         until `cutover serve` runs with this store (it is verified from {}: only serve \
                         reaches the agents, `cutover migrate run` refuses it)",
                        plan.verify.remote_locations().join(", ")
                    )
                }
            });
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
                // The plan's JSON is the plan alone; the warning goes beside it.
                if let Some(note) = unattended {
                    eprintln!("warning: {note}");
                }
            } else {
                print!("{}", render(&plan));
                println!(
                    "\nNothing was changed. `cutover migrate start {}{}` starts it.",
                    args.file.display(),
                    if args.force { " --force" } else { "" }
                );
                if let Some(note) = unattended {
                    println!("! {note}.");
                }
            }
            Ok(())
        }
        MigrateCommand::Start(args) => {
            let (file_name, text, plan) = make_plan(args, &path, &migrations, &site, config)?;
            // Stamped when stored: planning (a survey of the servers) takes a while.
            let id = migrations.start(&file_name, &text, &plan, Timestamp::now())?;
            if args.json {
                let who = Annotated::new(&migrations.status(id)?, &path, Timestamp::now());
                println!(
                    "{}",
                    serde_json::json!({
                        "id": id,
                        "plan": plan,
                        "carried_by": who.carried_by,
                        "attention": who.attention,
                    })
                );
            } else {
                print!("{}", render(&plan));
                println!("\nstarted migration {id}");
                print_started(&migrations.status(id)?, &path);
                if !plan.verify.local_only() {
                    println!(
                        "! verified from {}: only `cutover serve` carries it out, through its agents (`cutover migrate run` refuses it)",
                        plan.verify.remote_locations().join(", ")
                    );
                }
            }
            Ok(())
        }
        MigrateCommand::Run(args) => run_foreground(&migrations, args.id, &path, &site, args.json),
        MigrateCommand::List(args) => {
            let all = migrations.list()?;
            if args.json {
                let all: Vec<_> = all.iter().map(|s| annotated(s, &path, now)).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print_summaries(all, NO_MIGRATIONS, &path);
            }
            Ok(())
        }
        MigrateCommand::Status(args) => {
            let shown: Vec<Summary> = match args.id {
                Some(id) => vec![migrations.status(id)?],
                None => migrations
                    .list()?
                    .into_iter()
                    .filter(|s| !s.state.is_final())
                    .collect(),
            };
            if args.json {
                let shown: Vec<_> = shown.iter().map(|s| annotated(s, &path, now)).collect();
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                print_summaries(shown, "no unfinished migrations", &path);
            }
            Ok(())
        }
        MigrateCommand::Show(args) => show(&migrations, args.id, &path, args.json),
        MigrateCommand::Pause(args) => {
            let summary = migrations.pause(args.id, now, FROM_THE_COMMAND_LINE)?;
            print_control(&summary, &path, args.json)
        }
        MigrateCommand::Resume(args) => {
            let summary = migrations.resume(args.id, now)?;
            print_control(&summary, &path, args.json)
        }
        MigrateCommand::Approve(args) => {
            let summary =
                migrations.approve(args.id, now, &local_user(), args.reason.as_deref())?;
            if args.json {
                return print_control(&summary, &path, true);
            }
            let events = migrations.events(args.id)?;
            let note = attention(&summary, carrier(&path, args.id), now);
            print!("{}", approved_text(&summary, &events, note.as_deref()));
            Ok(())
        }
        MigrateCommand::Abort(args) => {
            if !args.yes {
                return Err(Unconfirmed(format!(
                    "abort stops migration {} for good, leaving its records as they are now",
                    args.id
                ))
                .into());
            }
            let reason = args.reason.as_deref().unwrap_or(FROM_THE_COMMAND_LINE);
            let summary = migrations.abort(args.id, now, reason)?;
            // Over: its lock file goes, unless a runner still holds it (that
            // runner removes it as it sees the migration aborted).
            if let Err(error) = lease::retire_if_free(&path, args.id) {
                tracing::warn!(
                    "migration {}: cannot remove its lock file: {error}",
                    args.id
                );
            }
            print_control(&summary, &path, args.json)
        }
        MigrateCommand::Rollback(args) => {
            if !args.yes {
                return Err(Unconfirmed(format!(
                    "rollback puts migration {}'s old values back",
                    args.id
                ))
                .into());
            }
            let reason = args.reason.as_deref().unwrap_or(FROM_THE_COMMAND_LINE);
            migrations.rollback(args.id, now, reason)?;
            // Carried out right away; `cutover serve` would do it within a second too.
            match Lease::try_take(&path, args.id)? {
                Some(_lease) => {
                    let recorded = || {
                        format!(
                            "the rollback of migration {} is recorded (`cutover serve` or `cutover migrate run {}` carries it out), but carrying it out here failed",
                            args.id, args.id
                        )
                    };
                    let wiring = Wiring::for_stored(&migrations, args.id, &path, &site)
                        .with_context(recorded)?;
                    let report = wiring.tick(&migrations, args.id).with_context(recorded)?;
                    if !args.json {
                        for step in &report.did {
                            print_step(step);
                        }
                    }
                }
                None if !args.json => println!(
                    "rollback requested; the process running migration {} carries it out",
                    args.id
                ),
                None => {}
            }
            print_control(&migrations.status(args.id)?, &path, args.json)
        }
    }
}

/// What `migrate list` says of a store without migrations (here and through `--server`).
pub const NO_MIGRATIONS: &str = "no migrations in this store";

/// Who approves on the command line: the local user, as the environment
/// names them.
fn local_user() -> String {
    let name = ["USER", "LOGNAME"]
        .iter()
        .find_map(|key| std::env::var(key).ok().filter(|v| !v.trim().is_empty()));
    match name {
        Some(name) => format!("local user {}", name.trim()),
        None => "a local user whose name the environment does not give".into(),
    }
}

/// The reason recorded for an operator's command given without one.
const FROM_THE_COMMAND_LINE: &str = "on the command line";

/// One zone of a migration file, as its provider holds it; a zone the
/// provider does not hold, or settings it refuses, at their place in the file.
///
/// A provider that cannot list the zone (a cloud host read by DNS that
/// does not transfer it) gives the apex and the RRsets the file names, with
/// the warning that says so; a move by address then cannot be planned.
fn read_zone(
    parsed: &MigrationFile,
    target: &cutover_migrate::file::ZoneTarget,
    provider: &dyn cutover_provider::Provider,
) -> anyhow::Result<(cutover_zone::Zone, Option<Warning>)> {
    match provider.read(&target.name) {
        Ok(zone) => Ok((zone, None)),
        Err(ProviderError::Unsupported(why)) => {
            let view = cutover_migrate::plan::zone_view(parsed, target);
            if let Some(refused) = partial::refusal(&view, &why) {
                return Err(refused.into());
            }
            let read = partial::read(provider, &view).with_context(|| {
                format!(
                    "cannot read {} RRset by RRset from {}",
                    target.name,
                    provider.describe()
                )
            })?;
            let warning = read.warning(&provider.describe());
            Ok((read.zone, Some(warning)))
        }
        Err(e @ ProviderError::UnknownZone(_)) => Err(parsed
            .error_at(target.spot, format!("{e} ({})", provider.describe()))
            .into()),
        Err(e @ ProviderError::Refused(_)) => {
            let spot = parsed
                .spots
                .providers
                .get(target.provider)
                .copied()
                .unwrap_or(parsed.spots.provider);
            Err(parsed
                .error_at(
                    spot,
                    format!("cannot read {}: {e} ({})", target.name, provider.describe()),
                )
                .into())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot read {} from {}",
            target.name,
            provider.describe()
        ))),
    }
}

/// Reads a migration file, the zone from its provider and what the servers
/// serve now, and plans; returns the name to store the file under, its
/// text and the plan. Refused (exit 2, each reason at file:line:column):
/// a file that does not parse or cannot work with the zone; and, unless
/// `--force`, one that the servers now, another active migration or this
/// site's relay and caches would make fail.
fn make_plan(
    args: &FileArgs,
    store: &Path,
    migrations: &Migrations,
    site: &Site,
    config: Option<&Path>,
) -> anyhow::Result<(String, String, Plan)> {
    let file = &args.file;
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        path: file.display().to_string(),
        message: format!("cannot read the migration file: {e}"),
    })?;
    let name = file.display().to_string();
    let mut parsed = MigrationFile::parse(&text, &name)?;
    if args.no_local_files {
        let refused = parsed.env_names_through_the_api();
        if !refused.is_empty() {
            return Err(Refusals(refused).into());
        }
    }
    // A secret's variable unset or empty here: refused at its name, before
    // anything is asked of the provider.
    let unset = parsed.env_refusals();
    if !unset.is_empty() {
        return Err(Refusals(unset).into());
    }
    if args.no_local_files {
        let refused: Vec<FileError> = parsed
            .spots
            .local_files
            .iter()
            .map(|(key, spot)| {
                parsed.error_at(
                    *spot,
                    format!("{key}: a file sent through the API cannot name a file of the server; give the secret inline (it is stored with the migration and never shown)"),
                )
            })
            .collect();
        if !refused.is_empty() {
            return Err(Refusals(refused).into());
        }
    }
    // The name the migration is stored under: the scheduler of `cutover
    // serve` reads it again, from its own working directory, and a relative
    // key_file is taken from the folder of this name.
    let stored_name = if args.no_local_files {
        name.clone()
    } else {
        std::path::absolute(file)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| name.clone())
    };
    let only_embedded = cutover_migrate::routed::specs(&parsed)
        .iter()
        .all(|spec| *spec == ProviderSpec::Embedded);
    let provider = match only_embedded {
        // The store is not the file's: its errors are not the file's either.
        true => cutover_server::scheduler::provider(&parsed, store)?,
        false => cutover_server::scheduler::provider(&parsed, store).map_err(|e| {
            let spot = parsed
                .spots
                .local_files
                .first()
                .map_or(parsed.spots.provider, |(_, spot)| *spot);
            parsed.error_at(spot, format!("{e:#}"))
        })?,
    };
    if let Some(spot) = parsed.every_zone {
        // `zones = "*"`: every zone the provider lists (the store, PowerDNS
        // and Route 53 can; the file refuses the others).
        let listed = provider.zones().map_err(|e| {
            parsed.error_at(
                spot,
                format!(
                    "zones = \"*\": cannot list the zones of {}: {e}",
                    provider.describe()
                ),
            )
        })?;
        parsed.with_zones(listed)?;
    }
    let mut zones = Vec::new();
    let mut partly_read = Vec::new();
    for target in &parsed.zones {
        let (zone, partly) = read_zone(&parsed, target, &*provider)?;
        zones.push(zone);
        partly_read.extend(partly);
    }
    let now = Timestamp::now();
    // What cannot work is refused before the servers are asked anything.
    cutover_migrate::plan::refuse_zones(&parsed, &zones, now)?;
    // Each zone's servers, asked about that zone's part of the file.
    let checks = ProbeChecks::new();
    let views: Vec<MigrationFile> = parsed
        .zones
        .iter()
        .map(|target| cutover_migrate::plan::zone_view(&parsed, target))
        .collect();
    let observed: Vec<Observations> = views
        .iter()
        .zip(&zones)
        .map(|(view, zone)| observe(&checks, view, zone, now))
        .collect();
    let observations = match observed.as_slice() {
        [one] => one.clone(),
        _ => Observations::from_survey(
            Survey::merged(
                zones
                    .iter()
                    .zip(&observed)
                    .map(|(z, o)| (z.origin().to_string(), o.survey.clone()))
                    .collect(),
            ),
            now,
        ),
    };
    let mut plan = cutover_migrate::plan::plan_zones(&parsed, &zones, &observations, now)?;
    plan.warnings.extend(partly_read);
    let details: Vec<(i64, String, Plan)> = migrations
        .list()?
        .into_iter()
        .filter(|s| !s.state.is_final())
        .map(|s| Ok((s.id, s.state.to_string(), migrations.show(s.id)?.plan)))
        .collect::<anyhow::Result<_>>()?;
    let others: Vec<Active<'_>> = details
        .iter()
        .map(|(id, state, plan)| Active {
            id: *id,
            state,
            plan,
        })
        .collect();
    let mut hazards: Vec<FileError> = Vec::new();
    for ((view, zone), observed) in views.iter().zip(&zones).zip(&observed) {
        // Each zone against its own changes and servers.
        let mut part = plan.clone();
        let origin = zone.origin().to_string();
        part.changes
            .retain(|c| plan.zone_of(c).eq_ignore_ascii_case(&origin));
        if part.changes.is_empty() && parsed.many_zones() {
            continue;
        }
        for hazard in preflight::hazards(view, zone, &part, observed, &others) {
            if !hazards.contains(&hazard) {
                hazards.push(hazard);
            }
        }
    }
    hazards.extend(site_hazards(&parsed, site, config));
    if let (Some((key, spot)), Some(exposure)) =
        (parsed.spots.inline_secrets.first(), exposure(store))
    {
        hazards.push(parsed.error_at(
            *spot,
            format!(
                "{key} would be stored with the migration in {}, which {exposure}: give it by file (api_key_file, key_file) or environment variable (api_key_env, secret_env) or make the store readable by its owner only (chmod 600)",
                store.display()
            ),
        ));
    }
    if !hazards.is_empty() {
        if !args.force {
            let mut all = hazards;
            let last = all.len() - 1;
            all[last].message.push_str(
                " (refused; `--force` goes on despite what the servers and the other migrations say now)",
            );
            return Err(Refusals(all).into());
        }
        plan.warnings
            .extend(hazards.into_iter().map(|h| Warning::Forced {
                what: h.to_string(),
            }));
    }
    Ok((stored_name, text, plan))
}

/// `run ID`: ticks until the migration ends or stops, printing each step as
/// it is done and counting down to the next.
pub fn run_foreground(
    migrations: &Migrations,
    id: i64,
    store: &Path,
    site: &Site,
    json: bool,
) -> anyhow::Result<()> {
    let wiring = Wiring::for_stored(migrations, id, store, site)?;
    let lease = take_lease(store, id)?;
    // Says to `migrate status` elsewhere that this migration is being run.
    let presence = Presence::run(store, id)
        .with_context(|| format!("cannot hold the lock of migration {id}"))?;
    let display = Display::choose(std::io::stdout().is_terminal(), json);
    // The file's [[notify]] targets are told on a thread of their own: a
    // receiver that is slow or down never holds a step up.
    let notices =
        notify::Worker::new(store, std::sync::Arc::new(SystemClock)).only_for(move |m| m == id);
    let _sending = notices
        .clone()
        .spawn()
        .map_err(|e| tracing::warn!("notifications: cannot start their thread: {e}"))
        .ok();
    loop {
        let report = wiring.tick(migrations, id)?;
        if json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            for step in &report.did {
                print_step(step);
            }
        }
        if report.state == State::AwaitingApproval {
            await_approval(migrations, id, json)?;
            continue;
        }
        let Some(due) = report.next_due.filter(|_| runs_on(report.state)) else {
            let summary = migrations.status(id)?;
            // Its last notices, while this process still says it runs it
            // (serve leaves them to the process that has their secrets).
            drop(_sending);
            send_the_last_notices(&notices, migrations, id, json);
            if summary.state.is_final() {
                // Over: no runner takes it again, its lock file goes.
                drop(presence);
                if let Err(error) = lease.retire() {
                    tracing::warn!("migration {id}: cannot remove its lock file: {error}");
                }
            }
            return finished(&summary, json);
        };
        let next = migrations.status(id)?.next_step;
        wait_until(due, next.map(|k| label(k.as_str())), display);
    }
}

/// How long `run` goes on trying the migration's last notifications after
/// it ended or stopped.
const LAST_NOTICES: Duration = Duration::from_secs(10);

/// Tries the migration's notifications not delivered yet for up to
/// [`LAST_NOTICES`], then says how many were delivered and how many are
/// left (they stay in the store: `cutover serve`, or this `migrate run`
/// again, goes on trying).
fn send_the_last_notices(notices: &notify::Worker, migrations: &Migrations, id: i64, json: bool) {
    let deadline = std::time::Instant::now() + LAST_NOTICES;
    let left = loop {
        if let Err(e) = notices.pass(migrations) {
            tracing::warn!("notifications: {e}");
        }
        let all = notify::deliveries(migrations, id).unwrap_or_default();
        let left = all.iter().filter(|d| d.delivered_at.is_none()).count();
        if left == 0 || std::time::Instant::now() >= deadline {
            break (all.len() - left, left, all);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (delivered, pending, all) = left;
    if json || all.is_empty() {
        return;
    }
    println!("notifications: {delivered} delivered, {pending} not delivered");
    for d in all.iter().filter(|d| d.delivered_at.is_none()) {
        println!("   {}", report::delivery_line(d));
    }
    if pending > 0 {
        println!(
            "   (kept in the store: `cutover serve` on this store, or `cutover migrate run {id}` again, goes on trying)"
        );
    }
}

/// Waits (reading the store twice a second) until migration `id` no longer
/// awaits approval: approved elsewhere (`cutover migrate approve`, the
/// dashboard, the API), paused, aborted or rolled back.
fn await_approval(migrations: &Migrations, id: i64, json: bool) -> anyhow::Result<()> {
    let summary = migrations.status(id)?;
    if !json {
        let since = summary
            .awaiting_approval_since
            .map(|t| format!(" since {}", clock(t)))
            .unwrap_or_default();
        println!(
            "   … awaiting approval{since}: `cutover migrate approve {id}`, the dashboard's Approve button or POST /api/v1/migrations/{id}/approve lets it go on"
        );
        let _ = std::io::stdout().flush();
    }
    while migrations.status(id)?.state == State::AwaitingApproval {
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// The lease of migration `id`, waiting up to 5 s for a scheduler's tick to
/// end; refused when another `migrate run` holds it.
fn take_lease(store: &Path, id: i64) -> anyhow::Result<Lease> {
    for _ in 0..100 {
        if let Some(lease) = Lease::try_take(store, id)? {
            return Ok(lease);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("migration {id} is being run by another process (another `cutover migrate run {id}`?)")
}

/// True while the runner has steps to run by itself.
fn runs_on(state: State) -> bool {
    !state.is_final() && !matches!(state, State::Paused | State::RolledBack)
}

/// Sleeps until `due`, showing the wait as `display` says: on a terminal a
/// countdown redrawn in place, elsewhere one line when it begins.
fn wait_until(due: Timestamp, next: Option<String>, display: Display) {
    let what = next.unwrap_or_else(|| "the next step".into());
    // The wall clock, asked again at every turn: a wait can last days, and
    // the step is due at a time, not after a duration.
    let left =
        |now: Timestamp| Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO);
    let first = left(Timestamp::now());
    if first.is_zero() {
        return;
    }
    let words = |left: Duration| format!("… {what} at {} (in {})", clock(due), seconds(left));
    if display == Display::Plain {
        println!("   {}", words(first));
        let _ = std::io::stdout().flush();
    }
    let countdown = (display == Display::Live).then(|| Countdown::start(Stream::Stdout, first, 3));
    loop {
        let remaining = left(Timestamp::now());
        if remaining.is_zero() {
            break;
        }
        if let Some(countdown) = &countdown {
            countdown.show(remaining, words(remaining));
        }
        std::thread::sleep(remaining.min(Duration::from_millis(250)));
    }
}

/// The end of `run`: Ok when done, an error saying why otherwise.
fn finished(summary: &Summary, json: bool) -> anyhow::Result<()> {
    if !json {
        println!(
            "\nmigration {}: {}{}",
            summary.id,
            summary.state,
            summary
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
    if summary.state == State::Done {
        Ok(())
    } else {
        bail!(
            "migration {} is {}: {}",
            summary.id,
            summary.state,
            summary.reason.as_deref().unwrap_or("no reason recorded")
        )
    }
}
