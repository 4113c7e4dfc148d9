//! How migrations read on a terminal: steps with their evidence, the
//! timeline of `show`, the audit log, summaries, and times in words.
//!
//! ```text
//!  StepRecord.evidence (JSON) ──evidence_lines──▶ "authority … answered: serial …", "ok   http://… status 200", …
//!  Detail + audit ──show──▶ timeline [done|NEXT|    ] + steps + audit log
//! ```

use std::time::Duration;

use cutover_migrate::runner::{AuditEntry, StepRecord, StepStatus, Summary};
use cutover_migrate::Migrations;
use jiff::Timestamp;
use serde_json::Value;

/// `show ID`.
pub(super) fn show(migrations: &Migrations, id: i64, json: bool) -> anyhow::Result<()> {
    let detail = migrations.show(id)?;
    let audit = migrations.audit(id)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"migration": detail, "audit": audit})
            )?
        );
        return Ok(());
    }
    let s = &detail.summary;
    println!(
        "migration {} of {} ({}), {} — records {:?}",
        s.id, s.zone, s.file_name, s.state, s.phase
    );
    if let Some(reason) = &s.reason {
        println!("reason: {reason}");
    }
    println!("\ntimeline:");
    for entry in &detail.timeline {
        let (mark, when) = match &entry.status {
            StepStatus::Done { at } => ("done", clock(*at)),
            StepStatus::Next { due: Some(due) } => {
                ("NEXT", format!("{} ({})", clock(*due), relative(*due)))
            }
            StepStatus::Next { due: None } => ("NEXT", "when resumed".into()),
            StepStatus::Pending { at } => ("    ", format!("{} (planned)", clock(*at))),
            StepStatus::Skipped => ("skip", String::new()),
        };
        println!("  [{mark}] {when:<32} {}", entry.what);
    }
    println!("\nsteps recorded:");
    for step in &detail.steps {
        print_step(step);
    }
    println!("\naudit log ({} record changes):", audit.len());
    print_audit(&audit);
    Ok(())
}

/// The audit log, one line per change.
pub fn print_audit(audit: &[AuditEntry]) {
    for a in audit {
        let side = |r: &Option<cutover_migrate::plan::RrsetText>| match r {
            Some(r) => format!("{} {}", r.ttl, r.values.join(" ")),
            None => "(absent)".into(),
        };
        println!(
            "  #{:<3} {:<14} {} {}: {} → {}  [{}{}]",
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

/// One recorded step with its evidence.
pub fn print_step(step: &StepRecord) {
    let outcome = step.outcome.as_deref().unwrap_or("interrupted");
    let at = step.done_at.unwrap_or(step.started_at);
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
    for line in evidence_lines(&step.evidence) {
        println!("      {line}");
    }
}

/// A step's evidence as lines a person reads: changes, servers' answers,
/// serials, check results, problems.
pub fn evidence_lines(evidence: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    for change in evidence["changes"].as_array().into_iter().flatten() {
        let side = |r: &Value| match r.is_null() {
            true => "(absent)".to_string(),
            false => format!(
                "{} {}",
                r["ttl"],
                r["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        };
        out.push(format!(
            "{} {}: {} → {}",
            text(&change["name"]),
            text(&change["type"]),
            side(&change["old"]),
            side(&change["new"])
        ));
    }
    if let Some(note) = evidence["note"].as_str() {
        out.push(note.to_string());
    }
    if let Some(wait) = evidence["why"].as_str() {
        out.push(wait.to_string());
    }
    for (role, servers) in [
        ("authority", &evidence["survey"]["authorities"]),
        ("resolver", &evidence["survey"]["resolvers"]),
    ] {
        for server in servers.as_array().into_iter().flatten() {
            let answers: Vec<String> = server["answers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| match a["error"].as_str() {
                    Some(e) => format!("{} {}: {e}", text(&a["name"]), text(&a["rtype"])),
                    None => format!(
                        "{} {} {} {}",
                        text(&a["name"]),
                        a["ttl"],
                        text(&a["rtype"]),
                        a["values"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(text)
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                })
                .collect();
            let serial = server["serial"]
                .as_u64()
                .map(|s| format!("serial {s}; "))
                .unwrap_or_default();
            out.push(format!(
                "{role} {} answered: {serial}{}",
                text(&server["server"]),
                answers.join("; ")
            ));
        }
    }
    if let Some(serials) = evidence["serials"].as_object() {
        let all: Vec<String> = serials.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push(format!("serials noted: {}", all.join(", ")));
    }
    for check in evidence["checks"].as_array().into_iter().flatten() {
        let ok = check["ok"].as_bool().unwrap_or(false);
        out.push(format!(
            "{} {}: {}",
            if ok { "ok  " } else { "FAIL" },
            text(&check["what"]),
            text(&check["detail"])
        ));
    }
    for problem in evidence["problems"].as_array().into_iter().flatten() {
        out.push(format!("problem: {}", text(problem)));
    }
    for flushed in evidence["flushed"].as_array().into_iter().flatten() {
        out.push(format!(
            "flush {}: {}",
            text(&flushed["cache"]),
            flushed["result"]
        ));
    }
    if let Some(conflict) = evidence["conflict"].as_str() {
        out.push(format!("CONFLICT: {conflict}"));
    }
    out
}

/// Summaries as a table.
pub(super) fn print_summaries(all: &[Summary], empty: &str) {
    if all.is_empty() {
        println!("{empty}");
        return;
    }
    println!(
        "{:>4}  {:<20} {:<14} {:<9} {:<16} {:<22} file",
        "id", "zone", "state", "records", "next", "due"
    );
    for s in all {
        println!(
            "{:>4}  {:<20} {:<14} {:<9} {:<16} {:<22} {}",
            s.id,
            s.zone,
            s.state.as_str(),
            format!("{:?}", s.phase).to_lowercase(),
            s.next_step
                .map(|k| label(&format!("{k:?}")))
                .unwrap_or_else(|| "-".into()),
            s.next_due
                .map(|t| format!("{} ({})", clock(t), relative(t)))
                .unwrap_or_else(|| "-".into()),
            s.file_name
        );
    }
}

/// The outcome of pause/resume/abort/rollback.
pub(super) fn print_control(summary: &Summary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
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
    }
    Ok(())
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

/// A duration in whole units: "42 s", "3 min 20 s", "2 h 5 min", "3 d 4 h".
pub(super) fn seconds(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min {} s", s / 60, s % 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}
