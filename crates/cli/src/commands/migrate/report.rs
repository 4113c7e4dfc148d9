//! How migrations read on a terminal: steps with their outcome, reason and
//! evidence, the timeline of `show`, the events as they happened, the
//! audit log, summaries with who carries them out, and times in words.
//!
//! ```text
//!  StepRecord ──print_step──▶ "12:00:01Z flush caches     waiting" + why + evidence_lines
//!  StepRecord.evidence (JSON) ──evidence_lines──▶ "authority … answered: serial …", "ok   http://… status 200", "mail hold …", …
//!  Detail + audit + carrier ──render_detail──▶ header, timeline [done|skip|FAIL|NEXT|    |----], steps, events, audit log
//!  Summary + attention ──render_summaries──▶ the table of `list|status`
//!  (render_*: the same text from the store here and from the API through `--server`)
//! ```
//!
//! Every word printed comes from a name of the engine's own vocabulary
//! (`State::as_str`, `Phase::as_str`, `StepOutcome::as_str`,
//! `StepKind::as_str`), never from Rust's `Debug`.

use std::path::Path;
use std::time::Duration;

use cutover_migrate::notify::Delivery;
use cutover_migrate::runner::{AuditEntry, Detail, Event, StepRecord, StepStatus, Summary};
use cutover_migrate::{Migrations, State};
use jiff::Timestamp;

use crate::commands::table::{Table, Tone};
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
    let notifications = cutover_migrate::notify::deliveries(migrations, id)?;
    let now = Timestamp::now();
    if json {
        let mut migration = serde_json::to_value(&detail)?;
        migration["summary"] = annotated(&detail.summary, store, now);
        // Where the API's answer has them.
        migration["notifications"] = serde_json::to_value(&notifications)?;
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"migration": migration, "audit": audit})
            )?
        );
        return Ok(());
    }
    let note = attention(&detail.summary, carrier(store, id), now);
    print!(
        "{}",
        render_detail(
            &detail,
            &audit,
            note.as_deref(),
            now,
            crate::commands::common::colour_on(&std::io::stdout())
        )
    );
    print!("{}", notifications_text(&notifications));
    Ok(())
}

/// The notifications of a migration, for `show`: how many were delivered,
/// and each one not delivered with its attempts and last error (nothing
/// when the file and serve name no target).
pub fn notifications_text(all: &[Delivery]) -> String {
    if all.is_empty() {
        return String::new();
    }
    let delivered = all.iter().filter(|d| d.delivered_at.is_some()).count();
    let mut out = format!(
        "\nnotifications: {delivered} delivered, {} not delivered\n",
        all.len() - delivered
    );
    for d in all {
        out.push_str(&format!("  {}\n", delivery_line(d)));
    }
    out
}

/// One notification in words: "approval to webhook to h:8080: 3
/// attempts, last error HTTP 500 at 12:01:02, next try at 12:01:06".
pub fn delivery_line(d: &Delivery) -> String {
    let attempts = match d.attempts {
        1 => "1 attempt".to_string(),
        n => format!("{n} attempts"),
    };
    match d.delivered_at {
        Some(at) => format!(
            "{} ({}) to {}: delivered at {} ({attempts})",
            d.event,
            d.notice,
            d.target,
            clock(at)
        ),
        None => {
            let last = match (&d.last_error, d.last_try_at) {
                (Some(e), Some(at)) => format!(", last error {e} at {}", clock(at)),
                (Some(e), None) => format!(", last error {e}"),
                _ => String::new(),
            };
            let next = d
                .next_at
                .map(|t| format!(", next try at {}", clock(t)))
                .unwrap_or_default();
            format!(
                "{} ({}) to {}: NOT delivered, {attempts}{last}{next}",
                d.event, d.notice, d.target
            )
        }
    }
}

/// `show ID` as text, the same here and through `--server`: the header,
/// what the operator must know (`note`), the timeline [done|skip|FAIL|NEXT|
/// |----], the steps recorded with their evidence, the events and the audit log.
pub fn render_detail(
    detail: &Detail,
    audit: &[AuditEntry],
    note: Option<&str>,
    now: Timestamp,
    colour: bool,
) -> String {
    let s = &detail.summary;
    let mut out = format!(
        "migration {} of {} ({}): {} — records {}\n",
        s.id, s.zone, s.file_name, s.state, s.phase
    );
    if let Some(zones) = cutover_migrate::plan::zones_words(&detail.plan) {
        out.push_str(&format!("zones: {zones}\n"));
    }
    if let Some(reason) = &s.reason {
        out.push_str(&format!("reason: {reason}\n"));
    }
    if let Some(since) = s.awaiting_approval_since {
        out.push_str(&format!(
            "awaiting approval since {} ({}): `cutover migrate approve {}`, the dashboard's Approve button or POST /api/v1/migrations/{}/approve lets it go on\n",
            clock(since),
            relative(since, now),
            s.id,
            s.id
        ));
    }
    if let Some(note) = note {
        out.push_str(&format!("! {note}\n"));
    }
    out.push_str("\ntimeline:\n");
    let mut timeline = Table::bare().indent(2);
    for entry in &detail.timeline {
        let (mark, when, why) = match &entry.status {
            StepStatus::Done { at } => ("done", clock(*at), None),
            StepStatus::Skipped { at, reason } => {
                ("skip", at.map(clock).unwrap_or_default(), reason.clone())
            }
            StepStatus::Failed { at, reason } => ("FAIL", clock(*at), reason.clone()),
            StepStatus::Next { due, last } => {
                let when = match (due, note) {
                    (Some(due), Some(_)) if *due <= now => format!("{} (overdue)", clock(*due)),
                    (Some(due), _) => format!("{} ({})", clock(*due), relative(*due, now)),
                    (None, _) if s.state == State::AwaitingApproval => "when approved".into(),
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
        // What the step does, then under it what the relay is told and why
        // it stands where it does.
        let touched =
            cutover_migrate::plan::touch_words(&entry.touches).map(|t| format!("zones: {t}"));
        let what: Vec<&str> = [
            Some(entry.what.as_str()),
            touched.as_deref(),
            entry.mail.as_deref(),
            why.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let tone = match entry.status {
            StepStatus::Failed { .. } => Tone::Alarm,
            _ => Tone::Plain,
        };
        timeline.toned(tone, [format!("[{mark}]"), when, what.join("\n")]);
    }
    out.push_str(&timeline.render(colour));
    out.push_str("\nsteps recorded:\n");
    for step in &detail.steps {
        out.push_str(&step_text(step));
    }
    out.push_str("\nevents (as they happened):\n");
    out.push_str(&events_text(&detail.events, colour));
    out.push_str(&format!("\naudit log ({} record changes):\n", audit.len()));
    out.push_str(&audit_text(audit, colour));
    out
}

/// The events, one line each: time, cause, what happened.
fn events_text(events: &[Event], colour: bool) -> String {
    let mut table = Table::bare().indent(2);
    for event in events {
        table.row([clock(event.at), event.cause.to_string(), event.text.clone()]);
    }
    table.render(colour)
}

/// The audit log, one line per change.
pub fn print_audit(audit: &[AuditEntry]) {
    print!(
        "{}",
        audit_text(
            audit,
            crate::commands::common::colour_on(&std::io::stdout())
        )
    );
}

/// The audit log as text: number, step, the change, whether and when it
/// was applied.
fn audit_text(audit: &[AuditEntry], colour: bool) -> String {
    let side = |r: &Option<cutover_migrate::plan::RrsetText>| match r {
        Some(r) => format!("{} {}", r.ttl, r.values.join(" ")),
        None => "(absent)".into(),
    };
    let mut table = Table::bare().indent(2);
    for a in audit {
        table.row([
            format!("#{}", a.id),
            a.step.clone(),
            format!(
                "{} {}: {} → {}",
                a.name,
                a.rtype,
                side(&a.old),
                side(&a.new)
            ),
            format!(
                "[{}{}]",
                a.status,
                a.applied_at
                    .map(|t| format!(" at {}", clock(t)))
                    .unwrap_or_default()
            ),
        ]);
    }
    table.render(colour)
}

/// One recorded step: when, what, its outcome and why, then its evidence.
pub fn print_step(step: &StepRecord) {
    print!("{}", step_text(step));
}

/// One recorded step as lines. Not a table: `migrate run` prints each
/// step as it ends, before the next is known, so the step's name is
/// padded to the longest name of the engine's vocabulary ("restore
/// original", 16) and every step lines up with the others all the same.
fn step_text(step: &StepRecord) -> String {
    let at = step.done_at.unwrap_or(step.started_at);
    let outcome = match (step.outcome, step.done_at) {
        (Some(outcome), Some(_)) => outcome.as_str().to_string(),
        // Left open to be redone (a provider error).
        (Some(outcome), None) => format!("{outcome}, left open"),
        (None, _) => {
            "started, not finished (running, or cut short: redone on the next tick)".into()
        }
    };
    let mut out = format!(
        "{} {:<16} {}{}\n",
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
        out.push_str(&format!("      {reason}\n"));
    }
    for line in evidence_lines(&step.evidence) {
        out.push_str(&format!("      {line}\n"));
    }
    out
}

/// One migration of `migrate list|status`: its summary and what the
/// operator must know of it, from the store or from the API.
pub struct Listed {
    /// The migration.
    pub summary: Summary,
    /// A migration nothing runs, a step overdue ([`attention`]).
    pub attention: Option<String>,
}

impl Listed {
    /// A migration of the store at `store`, with what its lock files say
    /// of who runs it.
    pub(super) fn here(summary: Summary, store: &Path, now: Timestamp) -> Listed {
        let attention = attention(&summary, carrier(store, summary.id), now);
        Listed { summary, attention }
    }
}

/// Summaries as a table, then what the operator must know of each (a
/// migration nothing runs, a step overdue); `empty` when there are none.
/// The same here and through `--server`.
pub fn render_summaries(all: &[Listed], empty: &str, now: Timestamp, colour: bool) -> String {
    if all.is_empty() {
        return format!("{empty}\n");
    }
    let mut table =
        Table::new(["ID", "ZONE", "STATE", "RECORDS", "NEXT", "DUE", "FILE"]).right(&[0]);
    let mut notes = String::new();
    for Listed {
        summary: s,
        attention: note,
    } in all
    {
        let due = match (s.next_due, note) {
            (Some(t), Some(_)) if t <= now => format!("{} (overdue)", clock(t)),
            (Some(t), _) => format!("{} ({})", clock(t), relative(t, now)),
            (None, _) => "-".into(),
        };
        let tone = match (note, s.state) {
            (Some(_), _) | (None, State::Failed) => Tone::Alarm,
            _ => Tone::Plain,
        };
        table.toned(
            tone,
            [
                s.id.to_string(),
                s.zone_label(),
                s.state.as_str().to_owned(),
                s.phase.as_str().to_owned(),
                s.next_step
                    .map(|k| label(k.as_str()))
                    .unwrap_or_else(|| "-".into()),
                due,
                s.file_name.clone(),
            ],
        );
        if let Some(note) = note {
            notes.push_str(&format!("! migration {}: {note}\n", s.id));
        }
    }
    let mut out = table.render(colour);
    out.push_str(&notes);
    out
}

/// Prints [`render_summaries`] of the migrations of the store at `store`.
pub(super) fn print_summaries(all: Vec<Summary>, empty: &str, store: &Path) {
    let now = Timestamp::now();
    let all: Vec<Listed> = all
        .into_iter()
        .map(|s| Listed::here(s, store, now))
        .collect();
    print!(
        "{}",
        render_summaries(
            &all,
            empty,
            now,
            crate::commands::common::colour_on(&std::io::stdout())
        )
    );
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

/// What `approve` did, from what the store recorded: who approved and
/// when, where the migration stands now, and what the operator must know
/// (`note`: nothing runs it). The same here and through `--server`.
pub fn approved_text(summary: &Summary, events: &[Event], note: Option<&str>) -> String {
    let approval = events
        .iter()
        .rev()
        .find(|e| e.kind == cutover_migrate::runner::EventKind::Approval);
    let mut out = match approval {
        Some(event) => format!(
            "migration {}: approved by {} at {}{}; it goes on ({})\n",
            summary.id,
            event.by.as_deref().unwrap_or("an operator"),
            clock(event.at),
            event
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            summary.state
        ),
        None => format!(
            "migration {}: {} (no approval is in its record)\n",
            summary.id, summary.state
        ),
    };
    if let Some(note) = note {
        out.push_str(&format!("! {note}\n"));
    }
    out
}

/// After `start`: who carries the migration out, or that nothing will
/// until `cutover serve` or `migrate run` runs.
pub(super) fn print_started(summary: &Summary, store: &Path) {
    let id = summary.id;
    let due = match summary.next_due {
        Some(t) if t <= Timestamp::now() => "now".to_string(),
        Some(t) => format!("at {} ({})", clock(t), relative(t, Timestamp::now())),
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

/// "in 5 s" / "12 s ago", from `now`.
pub(super) fn relative(t: Timestamp, now: Timestamp) -> String {
    let secs = t.duration_since(now).as_secs_f64();
    if secs >= 0.0 {
        format!("in {}", seconds(Duration::from_secs_f64(secs)))
    } else {
        format!("{} ago", seconds(Duration::from_secs_f64(-secs)))
    }
}
