//! `cutover flush [NAME…]`: empty the DNS caches on this machine and those
//! the config's `[flush]` section names, and say what to do for the rest.
//!
//! The work is `cutover_flush`'s; this module reads the command line and the
//! config and prints the report (a table, or JSON with `--json`). The exit
//! status is 1 when any cache failed to flush; a cache that is not running
//! is not a failure.

use std::fmt::Write as _;

use anyhow::bail;
use cutover_flush::{Entry, Kind, Outcome, Report, Scope, Settings};

use crate::commands::table::{Table, Tone};
use cutover_server::config::Config;

/// Arguments of `cutover flush`.
#[derive(Debug, clap::Args)]
pub struct FlushArgs {
    /// Names to flush; every entry of every cache when none is given.
    /// systemd-resolved, nscd and dnsmasq can only drop their whole cache.
    #[arg(value_name = "NAME", value_parser = name)]
    pub names: Vec<String>,
    /// Flush everything at and below each name (Unbound flush_zone, rndc flushtree).
    #[arg(long)]
    pub tree: bool,
    /// Only this kind of cache (repeatable): systemd-resolved, nscd, dnsmasq, unbound, bind.
    #[arg(long = "cache", value_name = "KIND", value_parser = kind)]
    pub caches: Vec<Kind>,
    /// Show the commands that would run, and run none.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cutover flush` with the `[flush]` section of `config` (defaults without one).
pub fn run(args: &FlushArgs, config: Option<&Config>) -> anyhow::Result<()> {
    let settings = config.map(|c| c.flush.clone()).unwrap_or_default();
    let scope = Scope::from_names(&args.names, args.tree)?;
    let report = cutover_flush::flush(&settings, &scope, &args.caches, args.dry_run);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let colour = crate::commands::common::colour_on(&std::io::stdout());
        print!("{}", render(&report, &settings, colour));
    }
    let failed = report
        .caches
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Failed { .. }))
        .count();
    if failed > 0 {
        bail!(
            "{failed} of {} caches could not be flushed",
            report.caches.len()
        );
    }
    Ok(())
}

/// The report as text: one line per cache with its commands under it, then
/// the platforms cutover cannot reach; with `colour`, a failed cache in red.
pub fn render(report: &Report, settings: &Settings, colour: bool) -> String {
    let mut caches = Table::bare();
    for entry in &report.caches {
        let mut lines = vec![detail(entry)];
        // A failure already names the command that failed.
        if matches!(entry.outcome, Outcome::Flushed | Outcome::WouldRun) {
            lines.extend(entry.commands.iter().map(|command| format!("$ {command}")));
        }
        let tone = match entry.outcome {
            Outcome::Failed { .. } => Tone::Alarm,
            _ => Tone::Plain,
        };
        caches.toned(
            tone,
            [
                status(entry).to_owned(),
                entry.cache.name().to_owned(),
                lines.join("\n"),
            ],
        );
    }
    let mut out = caches.render(colour);
    if !settings.local {
        out.push_str("(caches on this machine not looked for: [flush] local = false)\n");
    }
    out.push_str("\nElsewhere, out of cutover's reach — run these where the cache lives:\n");
    let mut advice = Table::bare().indent(2);
    for item in &report.advice {
        let mut command = item.command.to_owned();
        if !item.note.is_empty() {
            let _ = write!(command, "   ({})", item.note);
        }
        advice.row([item.platform.to_string(), command]);
    }
    out.push_str(&advice.render(colour));
    out
}

/// The first column: what happened.
fn status(entry: &Entry) -> &'static str {
    match entry.outcome {
        Outcome::Flushed => "flushed",
        Outcome::WouldRun => "would flush",
        Outcome::NotRunning { .. } => "not running",
        Outcome::Failed { .. } => "FAILED",
    }
}

/// The rest of the line: which instance, what it lost or why not.
fn detail(entry: &Entry) -> String {
    match &entry.outcome {
        Outcome::Flushed | Outcome::WouldRun => format!("{}: {}", entry.instance, entry.scope),
        Outcome::NotRunning { why } => why.clone(),
        Outcome::Failed { why } => format!("{}: {why}", entry.instance),
    }
}

/// A name from the command line, checked as the flush library checks it.
fn name(text: &str) -> Result<String, String> {
    Scope::from_names(&[text.to_string()], false)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

/// A cache kind from the command line.
fn kind(text: &str) -> Result<Kind, String> {
    text.parse()
        .map_err(|e: cutover_flush::FlushError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_commands_only_where_they_ran_or_would() {
        let report = Report {
            caches: vec![
                Entry {
                    cache: Kind::Dnsmasq,
                    instance: "pid 9".into(),
                    scope: "whole cache".into(),
                    outcome: Outcome::Flushed,
                    commands: vec!["kill -HUP 9".into()],
                },
                Entry {
                    cache: Kind::Nscd,
                    instance: "this machine".into(),
                    scope: "whole cache".into(),
                    outcome: Outcome::NotRunning {
                        why: "no nscd process".into(),
                    },
                    commands: vec![],
                },
            ],
            advice: cutover_flush::advice::everywhere(),
        };
        let text = render(&report, &Settings::default(), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            &lines[..3],
            &[
                "flushed      dnsmasq  pid 9: whole cache",
                "                      $ kill -HUP 9",
                "not running  nscd     no nscd process",
            ],
            "saw:\n{text}"
        );
        assert!(
            text.contains("Windows                   ipconfig /flushdns"),
            "the advice is listed:\n{text}"
        );
    }
}
