//! How migrations read on a terminal: steps with their outcome, reason and
//! evidence, the timeline of `show`, the events as they happened, the
//! audit log, summaries with who carries them out, and times in words.
//!
//! ```text
//!  StepRecord ──print_step──▶ "12:00:01Z flush caches     waiting" + why + evidence_lines
//!  StepRecord.evidence (JSON) ──evidence_lines──▶ "authority … answered: serial …", "ok   http://… status 200", "mail hold …", …
//!  Detail + audit + carrier ──show──▶ header, timeline [done|skip|FAIL|NEXT|    |----], steps, events, audit log
//! ```
//!
//! Every word printed comes from a name of the engine's own vocabulary
//! (`State::as_str`, `Phase::as_str`, `StepOutcome::as_str`,
//! `StepKind::as_str`), never from Rust's `Debug`.

use std::path::Path;
use std::time::Duration;

use cutover_migrate::runner::{AuditEntry, Event, StepRecord, StepStatus, Summary};
use cutover_migrate::Migrations;
use jiff::Timestamp;

use cutover_migrate::words::{evidence_lines, seconds};
use cutover_server::scheduler::presence::{annotated, attention, carrier, Carrier};

/// `show ID`.
pub(super) fn show(
    migrations: &Migrations,
    id: i64,
    store: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let detail = migrations.show(id)?;
    let audit = migrations.audit(id)?;
    let now = Timestamp::now();
    if json {
        let mut migration = serde_json::to_value(&detail)?;
        migration["summary"] = annotated(&detail.summary, store, now);
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"migration": migration, "audit": audit})
            )?
        );
        return Ok(());
    }
    let s = &detail.summary;
    let carried = carrier(store, s.id);
    println!(
        "migration {} of {} ({}): {} — records {}",
        s.id, s.zone, s.file_name, s.state, s.phase
    );
    if let Some(reason) = &s.reason {
        println!("reason: {reason}");
    }
    let note = attention(s, carried, now);
    if let Some(note) = &note {
        println!("! {note}");
    }
    println!("\ntimeline:");
    for entry in &detail.timeline {
        let (mark, when, why) = match &entry.status {
            StepStatus::Done { at } => ("done", clock(*at), None),
            StepStatus::Skipped { at, reason } => {
                ("skip", at.map(clock).unwrap_or_default(), reason.clone())
            }
            StepStatus::Failed { at, reason } => ("FAIL", clock(*at), reason.clone()),
            StepStatus::Next { due, last } => {
                let when = match (due, &note) {
                    (Some(due), Some(_)) if *due <= now => format!("{} (overdue)", clock(*due)),
                    (Some(due), _) => format!("{} ({})", clock(*due), relative(*due)),
                    (None, _) => "when resumed".into(),
                };
                let why = last.as_ref().map(|a| {
                    format!(
                        "last attempt {}: {}{}",
                        clock(a.at),
                        a.outcome,
                        a.reason
                            .as_deref()
                            .map(|r| format!(" — {r}"))
                            .unwrap_or_default()
                    )
                });
                ("NEXT", when, why)
            }
            StepStatus::Pending { at } => ("    ", format!("{} (planned)", clock(*at)), None),
            StepStatus::NotRun => ("----", "will not run".into(), None),
        };
        println!("  [{mark}] {when:<32} {}", entry.what);
        if let Some(mail) = &entry.mail {
            println!("  {:<39} {mail}", "");
        }
        if let Some(why) = why {
            println!("  {:<39} {why}", "");
        }
    }
    println!("\nsteps recorded:");
    for step in &detail.steps {
        print_step(step);
    }
    println!("\nevents (as they happened):");
    print_events(&detail.events);
    println!("\naudit log ({} record changes):", audit.len());
    print_audit(&audit);
    Ok(())
}

/// The events, one line each: time, cause, what happened.
pub(super) fn print_events(events: &[Event]) {
    for event in events {
        println!("  {} {:<9} {}", clock(event.at), event.cause, event.text);
    }
}

/// The audit log, one line per change.
pub fn print_audit(audit: &[AuditEntry]) {
    for a in audit {
        let side = |r: &Option<cutover_migrate::plan::RrsetText>| match r {
            Some(r) => format!("{} {}", r.ttl, r.values.join(" ")),
            None => "(absent)".into(),
        };
        println!(
            "  #{:<3} {:<16} {} {}: {} → {}  [{}{}]",
            a.id,
            a.step,
            a.name,
            a.rtype,
            side(&a.old),
            side(&a.new),
            a.status,
            a.applied_at
                .map(|t| format!(" at {}", clock(t)))
                .unwrap_or_default()
        );
    }
}

/// One recorded step: when, what, its outcome and why, then its evidence.
pub fn print_step(step: &StepRecord) {
    let at = step.done_at.unwrap_or(step.started_at);
    let outcome = match (step.outcome, step.done_at) {
        (Some(outcome), Some(_)) => outcome.as_str().to_string(),
        // Left open to be redone (a provider error).
        (Some(outcome), None) => format!("{outcome}, left open"),
        (None, _) => {
            "started, not finished (running, or cut short: redone on the next tick)".into()
        }
    };
    println!(
        "{} {:<16} {}{}",
        clock(at),
        label(&step.kind),
        outcome,
        if step.attempt > 1 {
            format!(" (attempt {})", step.attempt)
        } else {
            String::new()
        }
    );
    if let Some(reason) = &step.reason {
        println!("      {reason}");
    }
    for line in evidence_lines(&step.evidence) {
        println!("      {line}");
    }
}

/// Summaries as a table, then what the operator must know of each (a
/// migration nothing runs, a step overdue).
pub(super) fn print_summaries(all: &[Summary], empty: &str, store: &Path) {
    if all.is_empty() {
        println!("{empty}");
        return;
    }
    let now = Timestamp::now();
    println!(
        "{:>4}  {:<20} {:<14} {:<9} {:<16} {:<22} file",
        "id", "zone", "state", "records", "next", "due"
    );
    let mut notes = Vec::new();
    for s in all {
        let note = attention(s, carrier(store, s.id), now);
        let due = match (s.next_due, &note) {
            (Some(t), Some(_)) if t <= now => format!("{} (overdue)", clock(t)),
            (Some(t), _) => format!("{} ({})", clock(t), relative(t)),
            (None, _) => "-".into(),
        };
        println!(
            "{:>4}  {:<20} {:<14} {:<9} {:<16} {:<22} {}",
            s.id,
            s.zone,
            s.state.as_str(),
            s.phase.as_str(),
            s.next_step
                .map(|k| label(k.as_str()))
                .unwrap_or_else(|| "-".into()),
            due,
            s.file_name
        );
        if let Some(note) = note {
            notes.push(format!("! migration {}: {note}", s.id));
        }
    }
    for note in notes {
        println!("{note}");
    }
}

/// The outcome of pause/resume/abort/rollback: where the migration stands,
/// and, when it is to go on, whether anything will carry it out.
pub(super) fn print_control(summary: &Summary, store: &Path, json: bool) -> anyhow::Result<()> {
    let now = Timestamp::now();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&annotated(summary, store, now))?
        );
        return Ok(());
    }
    println!(
        "migration {}: {}{}",
        summary.id,
        summary.state,
        summary
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    if let Some(note) = attention(summary, carrier(store, summary.id), now) {
        println!("! {note}");
    }
    Ok(())
}

/// After `start`: who carries the migration out, or that nothing will
/// until `cutover serve` or `migrate run` runs.
pub(super) fn print_started(summary: &Summary, store: &Path) {
    let id = summary.id;
    let due = match summary.next_due {
        Some(t) if t <= Timestamp::now() => "now".to_string(),
        Some(t) => format!("at {} ({})", clock(t), relative(t)),
        None => "when resumed".into(),
    };
    match carrier(store, id) {
        Carrier::Serve => println!(
            "`cutover serve` runs on this store and carries it out: first step due {due}. \
             `cutover migrate show {id}` says where it stands."
        ),
        Carrier::Run | Carrier::Nobody => {
            println!("first step due {due}.");
            println!(
                "! nothing is running migrations on this store: nothing happens until \
                 `cutover serve` runs with this store, or `cutover migrate run {id}` runs it here."
            );
        }
    }
}

/// A step kind in words: "LowerTtls" or "lower_ttls" → "lower ttls".
pub(super) fn label(kind: &str) -> String {
    let mut out = String::new();
    for (i, c) in kind.chars().enumerate() {
        if c == '_' {
            out.push(' ');
        } else if c.is_ascii_uppercase() {
            if i > 0 {
                out.push(' ');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A time as `HH:MM:SS` UTC on today's date, else RFC 3339.
pub(super) fn clock(t: Timestamp) -> String {
    let today = Timestamp::now().strftime("%Y-%m-%d").to_string();
    if t.strftime("%Y-%m-%d").to_string() == today {
        t.strftime("%H:%M:%SZ").to_string()
    } else {
        t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

/// "in 5 s" / "12 s ago".
pub(super) fn relative(t: Timestamp) -> String {
    let secs = t.duration_since(Timestamp::now()).as_secs_f64();
    if secs >= 0.0 {
        format!("in {}", seconds(Duration::from_secs_f64(secs)))
    } else {
        format!("{} ago", seconds(Duration::from_secs_f64(-secs)))
    }
}
