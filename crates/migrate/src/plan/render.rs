//! The plan as a person reads it: the changes, then each step with its
//! absolute time, what it does and why, then the warnings.

use std::fmt::Write;

use super::{words, Plan, StepKind, Touch};

/// The zones and providers of a plan of several zones, in words ("3 zones
/// through cutover's store: a.example., b.example., c.example."); `None`
/// for a plan of one zone.
pub fn zones_words(plan: &Plan) -> Option<String> {
    if !plan.many_zones() {
        return None;
    }
    let providers = plan.provider_list();
    let per_provider: Vec<String> = super::zones::touches(&plan.zone_list(), &providers, None)
        .iter()
        .map(|t| {
            format!(
                "{} ({} zone{})",
                t.provider,
                t.zones.len(),
                if t.zones.len() == 1 { "" } else { "s" }
            )
        })
        .collect();
    Some(format!(
        "{} zones through {}",
        plan.zone_list().len(),
        per_provider.join(" and ")
    ))
}

/// What a step touches, in words ("cutover's store: a.example., b.example.;
/// RFC 2136 at …: c.example."); `None` when it names nothing.
pub fn touch_words(touches: &[Touch]) -> Option<String> {
    if touches.is_empty() {
        return None;
    }
    Some(
        touches
            .iter()
            .map(|t| format!("{}: {}", t.provider, t.zones.join(", ")))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// The plan in words, one step per paragraph.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    match zones_words(plan) {
        Some(zones) => {
            let _ = writeln!(out, "Migration of {zones}");
        }
        None => {
            let _ = writeln!(out, "Migration of {} through {}", plan.zone, plan.provider);
        }
    }
    let _ = writeln!(out, "planned at {}\n", to_second(plan.created_at));
    let _ = writeln!(out, "Changes ({}):", plan.changes.len());
    for c in &plan.changes {
        let before = match &c.before {
            Some(b) => format!("{} (TTL {})", b.values.join(" "), b.ttl),
            None => "(absent)".into(),
        };
        let _ = writeln!(
            out,
            "  {} {}: {} → {} (TTL {} during, {} after) — {}",
            c.name,
            c.rtype,
            before,
            c.after.join(" "),
            plan.low_ttl,
            c.final_ttl,
            c.reason
        );
    }
    let _ = writeln!(out, "\nTimeline:");
    for (i, step) in plan.steps.iter().enumerate() {
        let wait = if step.after_previous > 0 {
            format!(
                " (at least {} after the previous step)",
                words(step.after_previous)
            )
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {:>2}. {}{wait}", i + 1, to_second(step.at));
        let _ = writeln!(out, "      {}", step.what);
        if let Some(touched) = touch_words(&step.touches).filter(|_| plan.many_zones()) {
            let _ = writeln!(out, "      zones: {touched}");
        }
        if let Some(mail) = mail_words(plan, step.kind) {
            let _ = writeln!(out, "      {mail}");
        }
        let _ = writeln!(out, "      why: {}", step.why);
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings:");
        for w in &plan.warnings {
            let _ = writeln!(out, "  ! {w}");
        }
    }
    out
}

/// What the mail relay is told at a step of a plan with a `[mail]` part,
/// in words (`None` at the steps that do not touch the mail).
pub fn mail_words(plan: &Plan, kind: StepKind) -> Option<String> {
    let mail = plan.mail.as_ref()?;
    match kind {
        StepKind::Switch => Some(format!(
            "mail: hold {}'s mail in the relay's queue just before, and send it to {} (no longer {}) once the records are switched",
            mail.domain, mail.to, mail.from
        )),
        StepKind::VerifySwitch => Some(format!(
            "mail: once verified, release {}'s held mail to {}; if the switch is reverted, it goes back to {} and is released there",
            mail.domain, mail.to, mail.from
        )),
        _ => None,
    }
}

/// A step's name in words ("switch", "verify switch").
pub(crate) fn step_words(kind: StepKind) -> String {
    kind.as_str().replace('_', " ")
}

/// A time as people read it in a plan: to the second (the plan keeps the
/// exact instant; waits are rounded up, so no step shows earlier than it runs).
pub(crate) fn to_second(at: jiff::Timestamp) -> jiff::Timestamp {
    at.round(
        jiff::TimestampRound::new()
            .smallest(jiff::Unit::Second)
            .mode(jiff::RoundMode::Ceil),
    )
    .unwrap_or(at)
}
