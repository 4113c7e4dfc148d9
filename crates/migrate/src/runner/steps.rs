//! Running the steps: each one recorded before and after, record changes
//! written as audit intents first, checks judged against the plan.
//!
//! ```text
//!  tick ──▶ load ──due?──▶ rollback pending? ──▶ revert / restore_original
//!                   │                   no ──▶ the planned step at the cursor
//!                   └── repeat while the next step is due now
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use cutover_provider::{Change, ProviderError};
use cutover_zone::{Name, RecordType, Rrset, Serial};
use jiff::Timestamp;
use rusqlite::Connection;
use serde_json::json;

use super::db::{self, kind_str, Ending, Intent, Migration, RunnerError};
use super::verify::{judge_switch, pinned_checks, served_floor};
use super::{Effects, Phase, State, StepRecord, TickReport};
use crate::observe::{CheckResult, Survey};
use crate::plan::{Plan, PlanError, RrsetText, StepKind};

/// At most this many steps run in one tick (a guard against a loop).
const MAX_STEPS_PER_TICK: usize = 64;

/// What a step came to.
enum Outcome {
    /// Done; go on.
    Ok(serde_json::Value),
    /// Failed this attempt; maybe try again.
    Failed(serde_json::Value, String),
}

/// Runs every due step.
pub(super) fn tick(
    conn: &mut Connection,
    path: &Path,
    id: i64,
    fx: &Effects<'_>,
) -> Result<TickReport, RunnerError> {
    let mut did = Vec::new();
    for _ in 0..MAX_STEPS_PER_TICK {
        let m = db::load(conn, path, id)?;
        let now = fx.clock.now();
        if !m.runs_by_itself() || m.next_due().is_none_or(|due| due > now) {
            break;
        }
        let record = if m.rollback.is_some() {
            rollback_step(conn, path, m, fx)?
        } else {
            forward_step(conn, path, m, fx)?
        };
        did.extend(record);
    }
    let m = db::load(conn, path, id)?;
    Ok(TickReport {
        id,
        state: m.state,
        did,
        next_due: m.next_due(),
        reason: m.reason.clone(),
    })
}

/// The zone's origin.
fn origin(m: &Migration) -> Result<Name, RunnerError> {
    Name::from_ascii(&m.plan.zone).map_err(|e| RunnerError::Corrupt {
        id: m.id,
        reason: format!("zone {}: {e}", m.plan.zone),
    })
}

/// A plan error as stored-data corruption.
fn corrupt(id: i64) -> impl Fn(PlanError) -> RunnerError {
    move |e| RunnerError::Corrupt {
        id,
        reason: e.to_string(),
    }
}

/// Each change's RRset in a phase.
fn rrsets_in(plan: &Plan, origin: &Name, phase: Phase) -> Result<Vec<Option<Rrset>>, PlanError> {
    plan.changes
        .iter()
        .map(|c| match phase {
            Phase::Original => c.original(origin),
            Phase::Lowered => c.old_low(origin, plan.low_ttl),
            Phase::Switched => c.new_at(origin, plan.low_ttl).map(Some),
            Phase::Restored => c.new_at(origin, c.final_ttl).map(Some),
        })
        .collect()
}

/// The RRsets of interest: every moving one.
fn questions(plan: &Plan) -> Vec<(Name, RecordType)> {
    plan.changes
        .iter()
        .filter_map(|c| Some((c.owner().ok()?, c.record_type().ok()?)))
        .collect()
}

/// Loads the step row back, for the report.
fn record(conn: &Connection, path: &Path, step_id: i64) -> Result<StepRecord, RunnerError> {
    db::step(conn, path, step_id)
}

/// Moves the cursor past a finished step.
fn advance(m: &mut Migration, now: Timestamp) {
    m.cursor += 1;
    m.attempts = 0;
    m.last_try_at = None;
    m.last_done_at = Some(now);
    m.reason = None;
    m.state = match m.plan.steps.get(m.cursor) {
        Some(step) => State::before(step.kind),
        None => State::Done,
    };
}

/// Runs the planned step at the cursor.
fn forward_step(
    conn: &mut Connection,
    path: &Path,
    mut m: Migration,
    fx: &Effects<'_>,
) -> Result<Option<StepRecord>, RunnerError> {
    let Some(step) = m.plan.steps.get(m.cursor).cloned() else {
        m.state = State::Done;
        db::update(conn, path, &mut m, fx.clock.now())?;
        return Ok(None);
    };
    let now = fx.clock.now();
    if m.state != State::before(step.kind) {
        m.state = State::before(step.kind);
        db::update(conn, path, &mut m, now)?;
        if !m.runs_by_itself() {
            // An operator paused or aborted it just now.
            return Ok(None);
        }
    }
    let kind = kind_str(step.kind);
    match step.kind {
        StepKind::LowerTtls => {
            let r = change_records(conn, path, &mut m, fx, kind, Phase::Lowered)?;
            if let Some(evidence) = r.applied {
                // A TTL floor: the servers keep more than the low TTL asked.
                let survey = fx
                    .checks
                    .survey(&origin(&m)?, &questions(&m.plan), &m.plan.verify);
                let applied = evidence["serial"]
                    .as_u64()
                    .and_then(|s| u32::try_from(s).ok());
                let mut evidence = evidence;
                if let Some(t) = served_floor(&m.plan, &survey, applied).filter(|t| *t > m.low_ttl)
                {
                    m.low_ttl = t;
                    evidence["ttl_floor"] = json!(t);
                }
                evidence["survey"] = json!(survey);
                finish_moved(
                    conn,
                    path,
                    &mut m,
                    r.step_id,
                    &evidence,
                    Phase::Lowered,
                    now,
                )?;
            }
            record(conn, path, r.step_id).map(Some)
        }
        StepKind::Switch => {
            let mut mail = Vec::new();
            if let Some(mv) = &m.plan.mail {
                mail.push(json!({"hold": fx.mail.hold(&mv.domain)}));
            }
            let r = change_records(conn, path, &mut m, fx, kind, Phase::Switched)?;
            if let Some(mut evidence) = r.applied {
                if let Some(mv) = &m.plan.mail {
                    mail.push(json!({"retarget": fx.mail.retarget(&mv.domain, &mv.to)}));
                }
                if !mail.is_empty() {
                    evidence["mail"] = json!(mail);
                }
                finish_moved(
                    conn,
                    path,
                    &mut m,
                    r.step_id,
                    &evidence,
                    Phase::Switched,
                    now,
                )?;
            }
            record(conn, path, r.step_id).map(Some)
        }
        StepKind::RestoreTtls => {
            let r = change_records(conn, path, &mut m, fx, kind, Phase::Restored)?;
            if let Some(evidence) = r.applied {
                finish_moved(
                    conn,
                    path,
                    &mut m,
                    r.step_id,
                    &evidence,
                    Phase::Restored,
                    now,
                )?;
            }
            record(conn, path, r.step_id).map(Some)
        }
        _ => {
            let step_id = match db::unfinished(conn, path, m.id, kind)? {
                Some(id) => id,
                None => db::begin(conn, path, &m, kind, Some(m.cursor), &[], now)?,
            };
            let outcome = run_check_step(step.kind, &mut m, fx)?;
            let now = fx.clock.now();
            match outcome {
                Outcome::Ok(evidence) => {
                    advance(&mut m, now);
                    finish_checked(conn, path, &mut m, step_id, "ok", &evidence, now)?;
                }
                Outcome::Failed(evidence, why) => {
                    m.attempts += 1;
                    m.last_try_at = Some(now);
                    let tries = m.plan.verify.tries.max(1);
                    m.reason = Some(format!("{why} (try {} of {tries})", m.attempts));
                    if m.attempts >= tries {
                        match step.kind {
                            StepKind::VerifySwitch | StepKind::Observe => {
                                m.rollback = Some("auto".into());
                                m.state = State::RollingBack;
                                m.attempts = 0;
                                m.last_try_at = None;
                                m.reason = Some(format!(
                                    "rolled back automatically: verification after the switch failed {tries} time{}: {why}",
                                    if tries == 1 { "" } else { "s" }
                                ));
                            }
                            _ => {
                                m.state = State::Paused;
                                m.reason = Some(format!(
                                    "paused: {why} ({tries} tr{}); fix it and resume, or roll back",
                                    if tries == 1 { "y" } else { "ies" }
                                ));
                            }
                        }
                    }
                    finish_checked(conn, path, &mut m, step_id, "failed", &evidence, now)?;
                }
            }
            record(conn, path, step_id).map(Some)
        }
    }
}

/// Finishes a record-changing step that applied: the migration moves to
/// phase `to` and past the step, the step's intents become "applied".
fn finish_moved(
    conn: &mut Connection,
    path: &Path,
    m: &mut Migration,
    step_id: i64,
    evidence: &serde_json::Value,
    to: Phase,
    now: Timestamp,
) -> Result<(), RunnerError> {
    m.phase = to;
    advance(m, now);
    finish_applied(conn, path, m, step_id, evidence, now)
}

/// Records a record-changing step as finished `ok`, its intents "applied".
fn finish_applied(
    conn: &mut Connection,
    path: &Path,
    m: &mut Migration,
    step_id: i64,
    evidence: &serde_json::Value,
    now: Timestamp,
) -> Result<(), RunnerError> {
    let ending = Ending {
        step_id,
        outcome: "ok",
        evidence,
        audit: Some("applied"),
    };
    db::finish(conn, path, m, ending, now)
}

/// Records a step that only looked as finished with `outcome` (no audit).
fn finish_checked(
    conn: &mut Connection,
    path: &Path,
    m: &mut Migration,
    step_id: i64,
    outcome: &str,
    evidence: &serde_json::Value,
    now: Timestamp,
) -> Result<(), RunnerError> {
    let ending = Ending {
        step_id,
        outcome,
        evidence,
        audit: None,
    };
    db::finish(conn, path, m, ending, now)
}

/// What a record-changing step came to.
struct Applied {
    /// The step row.
    step_id: i64,
    /// The evidence when applied (the caller finishes the step); `None`
    /// when the step was already finished here (conflict) or left open
    /// for a retry (provider error).
    applied: Option<serde_json::Value>,
}

/// Changes the moving RRsets from the migration's phase to `to`: intents
/// first, then the provider, leaving the caller to finish the step.
fn change_records(
    conn: &mut Connection,
    path: &Path,
    m: &mut Migration,
    fx: &Effects<'_>,
    kind: &str,
    to: Phase,
) -> Result<Applied, RunnerError> {
    let origin = origin(m)?;
    let now = fx.clock.now();
    let before = rrsets_in(&m.plan, &origin, m.phase).map_err(corrupt(m.id))?;
    let after = rrsets_in(&m.plan, &origin, to).map_err(corrupt(m.id))?;
    let mut changes = Vec::new();
    let mut intents = Vec::new();
    for ((c, old), new) in m.plan.changes.iter().zip(before).zip(after) {
        if old == new {
            continue;
        }
        let rtype = c.record_type().map_err(corrupt(m.id))?;
        intents.push(Intent {
            name: c.name.clone(),
            rtype: c.rtype.clone(),
            old: old.as_ref().map(RrsetText::of),
            new: new.as_ref().map(RrsetText::of),
        });
        changes.push(Change {
            name: c.owner().map_err(corrupt(m.id))?,
            rtype,
            expect: old,
            set: new,
        });
    }
    // A step interrupted by a crash is redone from its own intents.
    let position = (!matches!(kind, "revert" | "restore_original")).then_some(m.cursor);
    let step_id = match db::unfinished(conn, path, m.id, kind)? {
        Some(id) => id,
        None => db::begin(conn, path, m, kind, position, &intents, now)?,
    };
    let described: Vec<_> = intents
        .iter()
        .map(|i| json!({"name": i.name, "type": i.rtype, "old": i.old, "new": i.new}))
        .collect();
    if changes.is_empty() {
        return Ok(Applied {
            step_id,
            applied: Some(json!({"changes": [], "note": "nothing to change"})),
        });
    }
    match fx.provider.apply(&origin, &changes) {
        Ok(applied) => Ok(Applied {
            step_id,
            applied: Some(json!({
                "provider": fx.provider.describe(),
                "changes": described,
                "serial": applied.serial.map(|s| s.0),
            })),
        }),
        Err(e @ ProviderError::Conflict { .. }) => {
            let now = fx.clock.now();
            m.state = State::Failed;
            m.rollback = None;
            m.reason = Some(format!("stopped: {e}; nothing was overwritten"));
            let evidence = json!({"provider": fx.provider.describe(), "changes": described, "conflict": e.to_string()});
            db::finish(
                conn,
                path,
                m,
                Ending {
                    step_id,
                    outcome: "conflict",
                    evidence: &evidence,
                    audit: Some("refused"),
                },
                now,
            )?;
            Ok(Applied {
                step_id,
                applied: None,
            })
        }
        Err(
            e @ (ProviderError::Refused(_)
            | ProviderError::UnknownZone(_)
            | ProviderError::Unsupported(_)),
        ) => {
            // Trying again will not help until someone fixes it: pause, with
            // the step left open so that `resume` redoes it from its intents.
            let now = fx.clock.now();
            m.state = State::Paused;
            m.reason = Some(format!(
                "paused: {kind}: {e}; fix it and resume, or roll back"
            ));
            db::update(conn, path, m, now)?;
            Ok(Applied {
                step_id,
                applied: None,
            })
        }
        Err(e) => {
            // Unreachable: nothing is known to have changed (or not). The
            // step stays open and is redone (idempotently, from the same
            // intents) after the interval.
            let now = fx.clock.now();
            m.attempts += 1;
            m.last_try_at = Some(now);
            m.reason = Some(format!("{kind}: {e}; retrying"));
            db::update(conn, path, m, now)?;
            Ok(Applied {
                step_id,
                applied: None,
            })
        }
    }
}

/// Runs a step that only looks (and flushes): wait, checks, serials.
fn run_check_step(
    kind: StepKind,
    m: &mut Migration,
    fx: &Effects<'_>,
) -> Result<Outcome, RunnerError> {
    let origin = origin(m)?;
    let plan = &m.plan;
    Ok(match kind {
        StepKind::WaitForCaches => Outcome::Ok(json!({
            "waited_since": m.last_done_at,
            "until": fx.clock.now(),
        })),
        StepKind::VerifyNew => {
            let results = pinned_checks(plan, fx);
            let failed: Vec<&CheckResult> = results.iter().filter(|r| !r.ok).collect();
            let evidence = json!({"checks": results});
            if failed.is_empty() {
                Outcome::Ok(evidence)
            } else {
                let why = failed
                    .iter()
                    .map(|r| format!("{}: {}", r.what, r.detail))
                    .collect::<Vec<_>>()
                    .join("; ");
                Outcome::Failed(evidence, format!("the new servers are not ready: {why}"))
            }
        }
        StepKind::NoteSerials => {
            let survey = fx.checks.survey(&origin, &questions(plan), &plan.verify);
            m.serials = survey
                .authorities
                .iter()
                .filter_map(|a| a.serial.map(|s| (a.server.clone(), s)))
                .collect::<BTreeMap<_, _>>();
            Outcome::Ok(json!({"serials": m.serials, "survey": survey}))
        }
        StepKind::FlushCaches => {
            // A cache flushed before the authorities serve the switch asks
            // again at once and caches the old data anew: wait (retrying
            // every `verify.interval`) until every authority serves a newer
            // serial than noted; after `tries`, flush anyway and say so.
            let lagging = if plan.flush.is_empty() {
                Vec::new()
            } else {
                let survey = fx.checks.survey(&origin, &[], &plan.verify);
                serials_not_risen(&m.serials, &survey)
            };
            let last_try = m.attempts + 1 >= plan.verify.tries.max(1);
            if !lagging.is_empty() && !last_try {
                return Ok(Outcome::Failed(
                    json!({"waiting_for": lagging}),
                    format!(
                        "not flushing yet: the switch is not served everywhere ({})",
                        lagging.join("; ")
                    ),
                ));
            }
            let names: Vec<Name> = questions(plan).into_iter().map(|(n, _)| n).collect();
            let flushed: Vec<_> = plan
                .flush
                .iter()
                .map(|cache| json!({"cache": cache, "result": fx.flusher.flush(cache, &names)}))
                .collect();
            Outcome::Ok(json!({"flushed": flushed, "still_lagging": lagging}))
        }
        StepKind::VerifySwitch => {
            let survey = fx.checks.survey(&origin, &questions(plan), &plan.verify);
            let results: Vec<CheckResult> = plan
                .checks
                .iter()
                .map(|c| fx.checks.service(c, None, &plan.verify))
                .collect();
            let mut problems = judge_switch(plan, &m.serials, &survey);
            problems.extend(
                results
                    .iter()
                    .filter(|r| !r.ok)
                    .map(|r| format!("{}: {}", r.what, r.detail)),
            );
            let mut evidence = json!({"survey": survey, "checks": results, "problems": problems});
            if problems.is_empty() {
                if let Some(mv) = &plan.mail {
                    evidence["mail"] = json!({"release": fx.mail.release(&mv.domain)});
                }
                Outcome::Ok(evidence)
            } else {
                Outcome::Failed(evidence, problems.join("; "))
            }
        }
        StepKind::Observe => {
            let results: Vec<CheckResult> = plan
                .checks
                .iter()
                .map(|c| fx.checks.service(c, None, &plan.verify))
                .collect();
            let failed: Vec<String> = results
                .iter()
                .filter(|r| !r.ok)
                .map(|r| format!("{}: {}", r.what, r.detail))
                .collect();
            let evidence = json!({"checks": results});
            if failed.is_empty() {
                Outcome::Ok(evidence)
            } else {
                Outcome::Failed(evidence, failed.join("; "))
            }
        }
        StepKind::LowerTtls | StepKind::Switch | StepKind::RestoreTtls => {
            unreachable!("record-changing steps are run by change_records")
        }
    })
}

/// Runs the next rollback step: revert the switch (low TTL kept), then (for
/// a manual rollback) restore the original TTLs.
fn rollback_step(
    conn: &mut Connection,
    path: &Path,
    mut m: Migration,
    fx: &Effects<'_>,
) -> Result<Option<StepRecord>, RunnerError> {
    let manual = m.rollback.as_deref() == Some("manual");
    let now = fx.clock.now();
    let (kind, to) = match m.phase {
        Phase::Switched | Phase::Restored => ("revert", Phase::Lowered),
        Phase::Lowered if manual => ("restore_original", Phase::Original),
        Phase::Lowered | Phase::Original => {
            m.state = State::RolledBack;
            m.rollback = None;
            db::update(conn, path, &mut m, now)?;
            return Ok(None);
        }
    };
    if m.state != State::RollingBack {
        m.state = State::RollingBack;
        db::update(conn, path, &mut m, now)?;
    }
    let r = change_records(conn, path, &mut m, fx, kind, to)?;
    if let Some(mut evidence) = r.applied {
        if kind == "revert" {
            if let Some(mv) = &m.plan.mail {
                evidence["mail"] = json!({
                    "retarget": fx.mail.retarget(&mv.domain, &mv.from),
                    "release": fx.mail.release(&mv.domain),
                });
            }
        }
        let now = fx.clock.now();
        m.phase = to;
        m.attempts = 0;
        m.last_try_at = None;
        m.last_done_at = Some(now);
        if to == Phase::Original || !manual {
            m.state = State::RolledBack;
            m.rollback = None;
        }
        finish_applied(conn, path, &mut m, r.step_id, &evidence, now)?;
    }
    record(conn, path, r.step_id).map(Some)
}

/// The authorities that do not yet serve a serial newer than the one noted
/// before the switch, in words.
fn serials_not_risen(serials: &BTreeMap<String, u32>, survey: &Survey) -> Vec<String> {
    survey
        .authorities
        .iter()
        .filter_map(|a| match (serials.get(&a.server), a.serial) {
            (Some(before), Some(now)) if !Serial(now).is_newer_than(Serial(*before)) => {
                Some(format!("{} serves serial {now}", a.server))
            }
            (_, None) => Some(format!("{} gave no SOA serial", a.server)),
            _ => None,
        })
        .collect()
}
