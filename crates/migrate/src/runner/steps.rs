//! Running the steps: each one recorded before and after, record changes
//! written as audit intents first, checks judged against the plan.
//!
//! ```text
//!  tick ──▶ load ──due?──▶ rollback pending? ──▶ revert / restore_original
//!                   │                   no ──▶ the planned step at the cursor
//!                   └── repeat while the next step is due now
//!
//!  a step that looks ──▶ done | skipped (nothing to do)       ──▶ the next step
//!                    ──▶ waiting (flush: the switch is not served everywhere yet)
//!                    ──▶ retrying (try n of `tries`)           ──▶ again after `interval`
//!                    ──▶ failed (the last try)                 ──▶ paused, or rolled back after the switch
//!                    ──▶ failed (a flush that could not flush)  ──▶ the next step (flushing only shortens a wait)
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use cutover_provider::{Change, ProviderError};
use cutover_zone::{Name, RecordType, Rrset, Serial};
use rusqlite::Connection;
use serde_json::json;

use super::db::{self, kind_str, Ending, Intent, Migration, RunnerError, Stamp};
use super::events;
use super::verify::{
    failed_checks, judge_switch, named, pinned_checks, served_floor, services_from, verdict,
};
use super::{Cause, Effects, Phase, State, StepOutcome, StepRecord, TickReport};
use crate::observe::{CheckResult, Survey};
use crate::plan::{Plan, PlanError, RrsetText, StepKind};

/// At most this many steps run in one tick (a guard against a loop).
const MAX_STEPS_PER_TICK: usize = 64;

/// What a step that only looks came to.
enum Looked {
    /// Went past it: done, or skipped with nothing to do (and why).
    Past(StepOutcome, serde_json::Value, Option<String>),
    /// Must wait before it acts (why); looks again after the interval.
    Wait(serde_json::Value, String),
    /// Failed this attempt (why); maybe tried again.
    Failed(serde_json::Value, String),
    /// Did its part but a mail relay did not acknowledge (why): tried
    /// again after the interval, however many times, never rolled back
    /// for it (the records are verified; only the mail waits).
    Retry(serde_json::Value, String),
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

/// A plan error as stored-data corruption.
fn corrupt(id: i64) -> impl Fn(PlanError) -> RunnerError {
    move |e| RunnerError::Corrupt {
        id,
        reason: e.to_string(),
    }
}

/// Each change's RRset in a phase.
fn rrsets_in(plan: &Plan, phase: Phase) -> Result<Vec<Option<Rrset>>, PlanError> {
    plan.changes
        .iter()
        .map(|c| {
            let origin = Name::from_ascii(plan.zone_of(c))
                .map_err(|e| PlanError::Data(format!("zone {}: {e}", plan.zone_of(c))))?;
            match phase {
                Phase::Original => c.original(&origin),
                Phase::Lowered => c.old_low(&origin, plan.low_ttl),
                Phase::Switched => c.new_at(&origin, plan.low_ttl).map(Some),
                Phase::Restored => c.new_at(&origin, c.final_ttl).map(Some),
            }
        })
        .collect()
}

/// The RRsets of interest in one zone: every moving one.
fn questions(plan: &Plan, zone: &str) -> Vec<(Name, RecordType)> {
    plan.changes
        .iter()
        .filter(|c| plan.zone_of(c).eq_ignore_ascii_case(zone))
        .filter_map(|c| Some((c.owner().ok()?, c.record_type().ok()?)))
        .collect()
}

/// What every zone's servers say, asked zone by zone (with the moving
/// RRsets when `asked`), each server named with its zone when the plan has
/// several ([`Survey::merged`]).
fn surveys(
    m: &Migration,
    fx: &Effects<'_>,
    asked: bool,
) -> Result<Vec<(String, Survey)>, RunnerError> {
    let plan = &m.plan;
    let mut out = Vec::new();
    for z in plan.zone_list() {
        let origin = Name::from_ascii(&z.zone).map_err(|e| RunnerError::Corrupt {
            id: m.id,
            reason: format!("zone {}: {e}", z.zone),
        })?;
        let questions = if asked {
            questions(plan, &z.zone)
        } else {
            Vec::new()
        };
        let survey = fx.checks.survey(&origin, &questions, &plan.verify_of(&z));
        let survey = if plan.many_zones() {
            survey.labelled(&z.zone)
        } else {
            survey
        };
        out.push((z.zone, survey));
    }
    Ok(out)
}

/// Every zone's survey in one, for the evidence.
fn together(per_zone: &[(String, Survey)]) -> Survey {
    let mut out = Survey::default();
    for (_, s) in per_zone {
        out.authorities.extend(s.authorities.iter().cloned());
        out.resolvers.extend(s.resolvers.iter().cloned());
        out.problems.extend(s.problems.iter().cloned());
    }
    out
}

/// One location and each zone's survey from it.
type Located = (String, Vec<(String, Survey)>);

/// What every zone's servers say from each location of the plan (its
/// `[verify] locations`, as the checks resolve them now), each server
/// named with its location when there are several ([`Survey::located`]).
fn surveys_from(
    m: &Migration,
    fx: &Effects<'_>,
    asked: bool,
    locations: &[String],
) -> Result<Vec<Located>, RunnerError> {
    let plan = &m.plan;
    let label = named(locations);
    let mut out: Vec<Located> = locations.iter().map(|l| (l.clone(), Vec::new())).collect();
    for z in plan.zone_list() {
        let origin = Name::from_ascii(&z.zone).map_err(|e| RunnerError::Corrupt {
            id: m.id,
            reason: format!("zone {}: {e}", z.zone),
        })?;
        let questions = if asked {
            questions(plan, &z.zone)
        } else {
            Vec::new()
        };
        let verify = plan.verify_of(&z);
        for (location, survey) in fx
            .checks
            .surveys_from(locations, &origin, &questions, &verify)
        {
            let survey = if plan.many_zones() {
                survey.labelled(&z.zone)
            } else {
                survey
            };
            let survey = if label {
                survey.located(&location)
            } else {
                survey
            };
            if let Some((_, per_zone)) = out.iter_mut().find(|(l, _)| *l == location) {
                per_zone.push((z.zone.clone(), survey));
            }
        }
    }
    Ok(out)
}

/// Every location's surveys in one list of zones' surveys.
fn flattened(per_location: Vec<Located>) -> Vec<(String, Survey)> {
    per_location.into_iter().flat_map(|(_, z)| z).collect()
}

/// Loads the step row back, for the report.
fn record(conn: &Connection, path: &Path, step_id: i64) -> Result<StepRecord, RunnerError> {
    db::step(conn, path, step_id)
}

/// Moves the cursor past a finished step (its ending stamps `last_done_at`).
fn advance(m: &mut Migration) {
    m.cursor += 1;
    m.attempts = 0;
    m.last_try_at = None;
    m.reason = None;
    m.state = m.state_at(m.cursor);
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
        db::update(conn, path, &mut m, Cause::Automatic, fx.clock)?;
        return Ok(None);
    };
    if m.state != m.state_at(m.cursor) {
        m.state = m.state_at(m.cursor);
        db::update(conn, path, &mut m, Cause::Automatic, fx.clock)?;
        if !m.runs_by_itself() {
            // An operator paused or aborted it just now.
            return Ok(None);
        }
    }
    let kind = kind_str(step.kind);
    match step.kind {
        StepKind::LowerTtls => {
            let r = change_records(conn, path, &mut m, fx, kind, Phase::Lowered, None)?;
            if let Some((outcome, evidence)) = r.applied {
                // A TTL floor: the servers keep more than the low TTL asked.
                let per_zone = surveys(&m, fx, true)?;
                let mut floor = None;
                for (zone, survey) in &per_zone {
                    let applied = evidence["zone_serials"][zone.as_str()]
                        .as_u64()
                        .or_else(|| evidence["serial"].as_u64())
                        .and_then(|s| u32::try_from(s).ok());
                    floor = floor.max(served_floor(&m.plan, survey, applied));
                }
                let mut evidence = evidence;
                if let Some(t) = floor.filter(|t| *t > m.low_ttl) {
                    m.low_ttl = t;
                    evidence["ttl_floor"] = json!(t);
                }
                evidence["survey"] = json!(together(&per_zone));
                let reason = moved_reason(outcome, &evidence, m.low_ttl);
                let moved = Moved {
                    step_id: r.step_id,
                    outcome,
                    reason,
                    to: Phase::Lowered,
                };
                finish_moved(conn, path, &mut m, moved, &evidence, fx)?;
            }
            record(conn, path, r.step_id).map(Some)
        }
        StepKind::Switch => {
            let mut mail = Vec::new();
            // With one switch step per provider, the mail moves at the first.
            let mail_moves = m
                .plan
                .mail
                .clone()
                .filter(|_| step.provider.unwrap_or(0) == 0);
            if let Some(mv) = &mail_moves {
                mail.push(mail_evidence(
                    "hold",
                    &mv.domain,
                    None,
                    fx.mail.hold(&mv.domain),
                ));
            }
            let r = change_records(conn, path, &mut m, fx, kind, Phase::Switched, step.provider)?;
            if let Some((outcome, mut evidence)) = r.applied {
                if let Some(mv) = &mail_moves {
                    mail.push(mail_evidence(
                        "retarget",
                        &mv.domain,
                        Some(&mv.to),
                        fx.mail.retarget(&mv.domain, &mv.to),
                    ));
                }
                if !mail.is_empty() {
                    evidence["mail"] = json!(mail);
                }
                let reason = moved_reason(outcome, &evidence, m.low_ttl);
                let moved = Moved {
                    step_id: r.step_id,
                    outcome,
                    reason,
                    to: Phase::Switched,
                };
                finish_moved(conn, path, &mut m, moved, &evidence, fx)?;
            }
            record(conn, path, r.step_id).map(Some)
        }
        StepKind::Approval => approval_step(conn, path, m, fx),
        StepKind::RestoreTtls => {
            let r = change_records(conn, path, &mut m, fx, kind, Phase::Restored, None)?;
            if let Some((outcome, evidence)) = r.applied {
                let reason = moved_reason(outcome, &evidence, m.low_ttl);
                let moved = Moved {
                    step_id: r.step_id,
                    outcome,
                    reason,
                    to: Phase::Restored,
                };
                finish_moved(conn, path, &mut m, moved, &evidence, fx)?;
            }
            record(conn, path, r.step_id).map(Some)
        }
        _ => {
            let step_id = match db::unfinished(conn, path, &m, kind, fx.clock)? {
                Some(id) => id,
                None => db::begin(conn, path, &m, kind, Some(m.cursor), &[], fx.clock)?,
            };
            // A mail action that failed at the switch or at an earlier
            // verification (a relay down): the retarget is asked again
            // before the release, so no relay releases to the old server.
            let mail_unsettled = step.kind == StepKind::VerifySwitch
                && db::steps(conn, path, m.id)?.iter().any(|s| {
                    matches!(s.kind.as_str(), "switch" | "verify_switch")
                        && !mail_failures(&s.evidence).is_empty()
                });
            let looked = run_check_step(step.kind, &mut m, fx, mail_unsettled)?;
            let tries = m.plan.verify.tries.max(1);
            let ending = match looked {
                Looked::Past(outcome, evidence, reason) => {
                    advance(&mut m);
                    (outcome, evidence, reason, Stamp::Done)
                }
                Looked::Wait(evidence, why) => {
                    m.attempts += 1;
                    m.reason = Some(why.clone());
                    (StepOutcome::Waiting, evidence, Some(why), Stamp::Try)
                }
                Looked::Retry(evidence, why) => {
                    m.reason = Some(why.clone());
                    (StepOutcome::Retrying, evidence, Some(why), Stamp::Try)
                }
                Looked::Failed(evidence, why) => {
                    m.attempts += 1;
                    let tried = format!("{why} (try {} of {tries})", m.attempts);
                    m.reason = Some(tried.clone());
                    if m.attempts < tries {
                        (StepOutcome::Retrying, evidence, Some(tried), Stamp::Try)
                    } else {
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
                        (StepOutcome::Failed, evidence, Some(tried), Stamp::Nothing)
                    }
                }
            };
            let (outcome, evidence, reason, stamp) = ending;
            let ending = Ending {
                step_id,
                outcome,
                reason,
                evidence: &evidence,
                audit: None,
                cause: Cause::Automatic,
                stamp,
            };
            db::finish(conn, path, &mut m, ending, fx.clock)?;
            record(conn, path, step_id).map(Some)
        }
    }
}

/// The approval gate: done once an operator's approval of its wait is
/// recorded (the step after it runs at once); else it waits, and the
/// migration awaits approval: nothing runs by itself until an operator
/// approves. The waiting attempt's event is what a notifier reads.
fn approval_step(
    conn: &mut Connection,
    path: &Path,
    mut m: Migration,
    fx: &Effects<'_>,
) -> Result<Option<StepRecord>, RunnerError> {
    let kind = kind_str(StepKind::Approval);
    let position = m.cursor;
    let before = m
        .plan
        .steps
        .get(position + 1)
        .map_or("the end", |s| s.kind.as_str())
        .replace('_', " ");
    let approved = events::approval(conn, path, m.id, position)?;
    let step_id = match db::unfinished(conn, path, &m, kind, fx.clock)? {
        Some(id) => id,
        None => db::begin(conn, path, &m, kind, Some(position), &[], fx.clock)?,
    };
    let (outcome, reason, evidence, stamp) = match approved {
        Some(a) => {
            advance(&mut m);
            (
                StepOutcome::Done,
                format!("approved by {}", a.by),
                json!({"before": before, "approved_by": a.by, "approved_at": a.at, "awaited_since": a.since}),
                Stamp::Done,
            )
        }
        None => {
            m.attempts += 1;
            m.state = State::AwaitingApproval;
            m.reason = Some(format!(
                "awaiting approval before the {before}: `cutover migrate approve {}`",
                m.id
            ));
            (
                StepOutcome::Waiting,
                format!(
                    "awaiting approval before the {before}; nothing more runs until it is approved"
                ),
                json!({"before": before, "awaiting_approval": true}),
                Stamp::Nothing,
            )
        }
    };
    let ending = Ending {
        step_id,
        outcome,
        reason: Some(reason),
        evidence: &evidence,
        audit: None,
        cause: Cause::Automatic,
        stamp,
    };
    db::finish(conn, path, &mut m, ending, fx.clock)?;
    record(conn, path, step_id).map(Some)
}

/// A mail action's result as evidence: `{action, domain, to?, ok, detail}`.
fn mail_evidence(
    action: &str,
    domain: &str,
    to: Option<&str>,
    result: Result<String, String>,
) -> serde_json::Value {
    let (ok, detail) = match result {
        Ok(said) => (true, said),
        Err(said) => (false, said),
    };
    let mut out = json!({"action": action, "domain": domain, "ok": ok, "detail": detail});
    if let Some(to) = to {
        out["to"] = json!(to);
    }
    out
}

/// The mail actions that failed, in words ("mail: hold example.com failed: …").
fn mail_failures(evidence: &serde_json::Value) -> Vec<String> {
    evidence["mail"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["ok"] == json!(false))
        .map(|a| {
            format!(
                "mail: {} {} failed: {}",
                a["action"].as_str().unwrap_or("action"),
                a["domain"].as_str().unwrap_or(""),
                a["detail"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// Why a record-changing step ended as it did, in words: what it changed,
/// or why nothing; and any mail action that failed.
fn moved_reason(
    outcome: StepOutcome,
    evidence: &serde_json::Value,
    low_ttl: u32,
) -> Option<String> {
    let mut said = Vec::new();
    if outcome == StepOutcome::Skipped {
        said.push("nothing to change: the records already hold these values".to_string());
    }
    if let Some(floor) = evidence["ttl_floor"].as_u64() {
        said.push(format!(
            "the servers keep a TTL of at least {floor}s: waits use {low_ttl}s"
        ));
    }
    said.extend(mail_failures(evidence));
    (!said.is_empty()).then(|| said.join("; "))
}

/// A record-changing step that applied, as [`finish_moved`] records it.
struct Moved {
    /// The step row.
    step_id: i64,
    /// Done, or skipped when there was nothing to change.
    outcome: StepOutcome,
    /// Why, in words.
    reason: Option<String>,
    /// The phase the records are in now.
    to: Phase,
}

/// Finishes a record-changing step that applied: the migration moves to
/// phase `to` and past the step, the step's intents become "applied".
fn finish_moved(
    conn: &mut Connection,
    path: &Path,
    m: &mut Migration,
    moved: Moved,
    evidence: &serde_json::Value,
    fx: &Effects<'_>,
) -> Result<(), RunnerError> {
    m.phase = moved.to;
    advance(m);
    let ending = Ending {
        step_id: moved.step_id,
        outcome: moved.outcome,
        reason: moved.reason,
        evidence,
        audit: Some("applied"),
        cause: Cause::Automatic,
        stamp: Stamp::Done,
    };
    db::finish(conn, path, m, ending, fx.clock)
}

/// What a record-changing step came to.
struct Applied {
    /// The step row.
    step_id: i64,
    /// How it went (done, or skipped when there was nothing to change) and
    /// the evidence, when applied (the caller finishes the step); `None`
    /// when the step was already finished here (conflict) or left open to
    /// be redone (provider error).
    applied: Option<(StepOutcome, serde_json::Value)>,
}

/// Changes the moving RRsets from the migration's phase to `to` (a switch:
/// from the lowered values, the zones of provider `only`): intents first,
/// then the provider, one change set per zone, leaving the caller to
/// finish the step.
#[allow(clippy::too_many_arguments)]
fn change_records(
    conn: &mut Connection,
    path: &Path,
    m: &mut Migration,
    fx: &Effects<'_>,
    kind: &str,
    to: Phase,
    only: Option<usize>,
) -> Result<Applied, RunnerError> {
    // One switch step per provider: each goes from the lowered values, and
    // the phase is "switched" from the first on (a revert of a zone not yet
    // switched finds its values in place, which changes nothing).
    let from = if kind == "switch" {
        Phase::Lowered
    } else {
        m.phase
    };
    let before = rrsets_in(&m.plan, from).map_err(corrupt(m.id))?;
    let after = rrsets_in(&m.plan, to).map_err(corrupt(m.id))?;
    // Zone by zone, in the plan's order: (zone, its changes).
    let mut by_zone: Vec<(String, Vec<Change>)> = Vec::new();
    let mut intents = Vec::new();
    for ((c, old), new) in m.plan.changes.iter().zip(before).zip(after) {
        let zone = m.plan.zone_of(c).to_string();
        if old == new || only.is_some_and(|p| m.plan.provider_of(&zone) != p) {
            continue;
        }
        let rtype = c.record_type().map_err(corrupt(m.id))?;
        intents.push(Intent {
            name: c.name.clone(),
            rtype: c.rtype.clone(),
            old: old.as_ref().map(RrsetText::of),
            new: new.as_ref().map(RrsetText::of),
        });
        let change = Change {
            name: c.owner().map_err(corrupt(m.id))?,
            rtype,
            expect: old,
            set: new,
        };
        match by_zone
            .iter_mut()
            .find(|(z, _)| z.eq_ignore_ascii_case(&zone))
        {
            Some((_, changes)) => changes.push(change),
            None => by_zone.push((zone, vec![change])),
        }
    }
    // A step interrupted by a crash is redone from its own intents.
    let position = (!matches!(kind, "revert" | "restore_original")).then_some(m.cursor);
    let step_id = match db::unfinished(conn, path, m, kind, fx.clock)? {
        Some(id) => id,
        None => db::begin(conn, path, m, kind, position, &intents, fx.clock)?,
    };
    let described: Vec<_> = intents
        .iter()
        .map(|i| json!({"name": i.name, "type": i.rtype, "old": i.old, "new": i.new}))
        .collect();
    if by_zone.is_empty() {
        return Ok(Applied {
            step_id,
            applied: Some((StepOutcome::Skipped, json!({"changes": []}))),
        });
    }
    let providers = m.plan.provider_list();
    let provider_words = match only {
        Some(p) if m.plan.many_zones() => providers
            .get(p)
            .cloned()
            .unwrap_or_else(|| fx.provider.describe()),
        _ => fx.provider.describe(),
    };
    let mut zone_serials = serde_json::Map::new();
    let mut done_zones: Vec<String> = Vec::new();
    let mut outcome = Ok(None);
    for (zone, changes) in &by_zone {
        let origin = Name::from_ascii(zone).map_err(|e| RunnerError::Corrupt {
            id: m.id,
            reason: format!("zone {zone}: {e}"),
        })?;
        match fx.provider.apply(&origin, changes) {
            Ok(applied) => {
                zone_serials.insert(zone.clone(), json!(applied.serial.map(|s| s.0)));
                outcome = Ok(applied.serial.map(|s| s.0));
                done_zones.push(zone.clone());
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    // The zones a failure leaves changed, in words.
    let partial: Option<String> = (!done_zones.is_empty()).then(|| {
        format!(
            "{} of {} zones were changed before: {}",
            done_zones.len(),
            by_zone.len(),
            done_zones.join(", ")
        )
    });
    if outcome.is_err() && !done_zones.is_empty() {
        // The zones changed before the failure are applied, and audited so.
        let rrsets: Vec<(String, String)> = m
            .plan
            .changes
            .iter()
            .filter(|c| {
                done_zones
                    .iter()
                    .any(|z| z.eq_ignore_ascii_case(m.plan.zone_of(c)))
            })
            .map(|c| (c.name.clone(), c.rtype.clone()))
            .collect();
        db::applied(conn, path, step_id, &rrsets, fx.clock)?;
    }
    let many = m.plan.many_zones();
    let base = |extra: (&str, serde_json::Value)| {
        let mut v = json!({"provider": provider_words, "changes": described});
        if many {
            v["zones"] = json!(by_zone.iter().map(|(z, _)| z.clone()).collect::<Vec<_>>());
            v["zone_serials"] = json!(zone_serials);
        }
        v[extra.0] = extra.1;
        v
    };
    match outcome {
        // One zone: its serial; several: each zone's, in `zone_serials`.
        Ok(serial) if !many => Ok(Applied {
            step_id,
            applied: Some((StepOutcome::Done, base(("serial", json!(serial))))),
        }),
        Ok(_) => Ok(Applied {
            step_id,
            applied: Some((
                StepOutcome::Done,
                base(("zones_changed", json!(done_zones.len()))),
            )),
        }),
        Err(e @ ProviderError::Conflict { .. }) => {
            let before = partial
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default();
            m.state = State::Failed;
            m.rollback = None;
            m.reason = Some(format!("stopped: {e}; nothing was overwritten{before}"));
            let evidence = base(("conflict", json!(e.to_string())));
            let ending = Ending {
                step_id,
                outcome: StepOutcome::Failed,
                reason: Some(format!("{e}; nothing was overwritten{before}")),
                evidence: &evidence,
                audit: Some("refused"),
                cause: Cause::Conflict,
                stamp: Stamp::Nothing,
            };
            db::finish(conn, path, m, ending, fx.clock)?;
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
            m.state = State::Paused;
            m.reason = Some(format!(
                "paused: {kind}: {e}; fix it and resume, or roll back"
            ));
            let evidence = base(("refused", json!(e.to_string())));
            let said = match &partial {
                None => format!("{e}; nothing was changed; redone when resumed"),
                Some(p) => format!(
                    "{e}; nothing was changed in that zone ({p}); redone when resumed, which changes the zones already changed no more"
                ),
            };
            let ending = Ending {
                step_id,
                outcome: StepOutcome::Failed,
                reason: Some(said),
                evidence: &evidence,
                audit: None,
                cause: Cause::Automatic,
                stamp: Stamp::Nothing,
            };
            db::note(conn, path, m, ending, fx.clock)?;
            Ok(Applied {
                step_id,
                applied: None,
            })
        }
        Err(e) => {
            // Unreachable: nothing is known to have changed (or not). The
            // step stays open and is redone (idempotently, from the same
            // intents) after the interval.
            m.attempts += 1;
            m.reason = Some(format!("{kind}: {e}; retrying"));
            let evidence = base(("unreachable", json!(e.to_string())));
            let ending = Ending {
                step_id,
                outcome: StepOutcome::Retrying,
                reason: Some(format!(
                    "{e}; whether the change was made is not known: redone (it is idempotent) after {}s, attempt {}{}",
                    m.plan.verify.interval.max(1),
                    m.attempts,
                    partial
                        .as_ref()
                        .map(|p| format!(" ({p})"))
                        .unwrap_or_default()
                )),
                evidence: &evidence,
                audit: None,
                cause: Cause::Automatic,
                stamp: Stamp::Try,
            };
            db::note(conn, path, m, ending, fx.clock)?;
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
    mail_unsettled: bool,
) -> Result<Looked, RunnerError> {
    let plan = &m.plan;
    Ok(match kind {
        StepKind::WaitForCaches => Looked::Past(
            StepOutcome::Done,
            json!({
                "waited_since": m.last_done_at,
                "until": fx.clock.now(),
            }),
            None,
        ),
        StepKind::VerifyNew => {
            let locations = fx.checks.locations(&plan.verify);
            let results = pinned_checks(plan, fx, &locations);
            let judged = verdict(plan.verify.quorum, &failed_checks(&locations, &results));
            let checks: Vec<&CheckResult> = results.iter().map(|(_, r)| r).collect();
            let mut evidence = json!({"checks": checks});
            if named(&locations) {
                evidence["locations"] = judged.locations.clone();
            }
            if results.is_empty() {
                Looked::Past(
                    StepOutcome::Skipped,
                    evidence,
                    Some("no service checks are listed: nothing was verified".into()),
                )
            } else if judged.agreed {
                Looked::Past(StepOutcome::Done, evidence, judged.note)
            } else {
                Looked::Failed(
                    evidence,
                    format!(
                        "the new servers are not ready: {}",
                        judged.problems.join("; ")
                    ),
                )
            }
        }
        StepKind::NoteSerials => {
            let locations = fx.checks.locations(&plan.verify);
            let survey = together(&flattened(surveys_from(m, fx, true, &locations)?));
            m.serials = survey
                .authorities
                .iter()
                .filter_map(|a| a.serial.map(|s| (a.server.clone(), s)))
                .collect::<BTreeMap<_, _>>();
            // Noted or not, the verification after the switch asks each
            // authority again; one that gave none here is named now.
            let silent: Vec<&str> = survey
                .authorities
                .iter()
                .filter(|a| a.serial.is_none())
                .map(|a| a.server.as_str())
                .collect();
            let reason = match (survey.authorities.is_empty(), silent.is_empty()) {
                (true, _) => Some("no authoritative server could be asked: nothing was noted; the verification after the switch will fail unless one answers then".to_string()),
                (false, false) => Some(format!(
                    "no SOA serial from {}: the verification after the switch will fail unless it gives one then",
                    silent.join(", ")
                )),
                (false, true) => None,
            };
            Looked::Past(
                StepOutcome::Done,
                json!({"serials": m.serials, "survey": survey}),
                reason,
            )
        }
        StepKind::FlushCaches => {
            if plan.flush.is_empty() {
                return Ok(Looked::Past(
                    StepOutcome::Skipped,
                    json!({"flushed": []}),
                    Some("no local caches are listed to flush".into()),
                ));
            }
            // A cache flushed before the authorities serve the switch asks
            // again at once and caches the old data anew: wait (looking
            // again every `verify.interval`) until every authority serves a
            // newer serial than noted; after `tries` looks, flush anyway
            // and say so.
            let locations = fx.checks.locations(&plan.verify);
            let survey = together(&flattened(surveys_from(m, fx, false, &locations)?));
            let lagging = serials_not_risen(&m.serials, &survey);
            let tries = plan.verify.tries.max(1);
            let last_try = m.attempts + 1 >= tries;
            if !lagging.is_empty() && !last_try {
                return Ok(Looked::Wait(
                    json!({"waiting_for": lagging}),
                    format!(
                        "not flushing yet: the switch is not served everywhere ({}); looking again in {}s (look {} of {tries}, then flushed anyway)",
                        lagging.join("; "),
                        plan.verify.interval.max(1),
                        m.attempts + 1
                    ),
                ));
            }
            let mut names: Vec<Name> = plan.changes.iter().filter_map(|c| c.owner().ok()).collect();
            names.dedup();
            let mut failures = Vec::new();
            let flushed: Vec<_> = plan
                .flush
                .iter()
                .map(|cache| {
                    let (ok, detail) = match fx.flusher.flush(cache, &names) {
                        Ok(said) => (true, said),
                        Err(said) => {
                            failures.push(format!("{cache}: {said}"));
                            (false, said)
                        }
                    };
                    json!({"cache": cache, "ok": ok, "detail": detail})
                })
                .collect();
            let evidence = json!({"flushed": flushed, "still_lagging": lagging});
            let mut said = Vec::new();
            if !lagging.is_empty() {
                said.push(format!(
                    "flushed after {tries} looks although the switch is not served everywhere ({}): caches may fetch the old values again",
                    lagging.join("; ")
                ));
            }
            if failures.is_empty() {
                Looked::Past(
                    StepOutcome::Done,
                    evidence,
                    (!said.is_empty()).then(|| said.join("; ")),
                )
            } else {
                // Flushing only shortens how long caches keep the old values:
                // the migration goes on, the failure is recorded as one.
                said.insert(
                    0,
                    format!(
                        "not flushed: {}; the migration goes on (caches let go of the old values within the low TTL)",
                        failures.join("; ")
                    ),
                );
                Looked::Past(StepOutcome::Failed, evidence, Some(said.join("; ")))
            }
        }
        StepKind::VerifySwitch => {
            // Judged location by location: a location agrees when its
            // surveys and its service checks show no problem.
            let locations = fx.checks.locations(&plan.verify);
            let per_location = surveys_from(m, fx, true, &locations)?;
            let mut results = Vec::new();
            for c in &plan.checks {
                results.extend(services_from(plan, fx, c, None, &locations));
            }
            let failed = failed_checks(&locations, &results);
            let mut judged_per_location = Vec::new();
            for ((location, per_zone), (_, failed)) in per_location.iter().zip(&failed) {
                let mut problems = Vec::new();
                for (zone, survey) in per_zone {
                    problems.extend(judge_switch(plan, Some(zone), &m.serials, survey));
                }
                problems.extend(failed.iter().cloned());
                judged_per_location.push((location.clone(), problems));
            }
            let judged = verdict(plan.verify.quorum, &judged_per_location);
            let survey = together(&flattened(per_location));
            let results: Vec<CheckResult> = results.into_iter().map(|(_, r)| r).collect();
            let problems = if judged.agreed {
                Vec::new()
            } else {
                judged.problems.clone()
            };
            let note = judged.note.clone();
            let mut evidence = json!({"survey": survey, "checks": results, "problems": problems});
            if named(&locations) {
                evidence["locations"] = judged.locations;
            }
            if problems.is_empty() {
                if let Some(mv) = &plan.mail {
                    // Released only once every relay has the new
                    // destination, and done only once every relay released.
                    let mut actions = Vec::new();
                    if mail_unsettled {
                        actions.push(mail_evidence(
                            "retarget",
                            &mv.domain,
                            Some(&mv.to),
                            fx.mail.retarget(&mv.domain, &mv.to),
                        ));
                    }
                    if actions.iter().all(|a| a["ok"] == json!(true)) {
                        actions.push(mail_evidence(
                            "release",
                            &mv.domain,
                            None,
                            fx.mail.release(&mv.domain),
                        ));
                    }
                    evidence["mail"] = json!(actions);
                    let failed = mail_failures(&evidence);
                    if !failed.is_empty() {
                        return Ok(Looked::Retry(
                            evidence,
                            format!(
                                "{}; the mail is asked again in {}s (the switch itself is verified)",
                                failed.join("; "),
                                plan.verify.interval
                            ),
                        ));
                    }
                }
                Looked::Past(StepOutcome::Done, evidence, note)
            } else {
                Looked::Failed(evidence, problems.join("; "))
            }
        }
        StepKind::Observe => {
            let locations = fx.checks.locations(&plan.verify);
            let mut results = Vec::new();
            for c in &plan.checks {
                results.extend(services_from(plan, fx, c, None, &locations));
            }
            let judged = verdict(plan.verify.quorum, &failed_checks(&locations, &results));
            let results: Vec<CheckResult> = results.into_iter().map(|(_, r)| r).collect();
            let mut evidence = json!({"checks": results});
            if named(&locations) {
                evidence["locations"] = judged.locations;
            }
            if judged.agreed {
                let reason = if results.is_empty() {
                    Some(
                        "the observation time passed; no service checks are listed to run"
                            .to_string(),
                    )
                } else {
                    judged.note
                };
                Looked::Past(StepOutcome::Done, evidence, reason)
            } else {
                Looked::Failed(evidence, judged.problems.join("; "))
            }
        }
        StepKind::LowerTtls | StepKind::Switch | StepKind::RestoreTtls => {
            unreachable!("record-changing steps are run by change_records")
        }
        StepKind::Approval => unreachable!("the approval gate is run by approval_step"),
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
    let (kind, to) = match m.phase {
        Phase::Switched | Phase::Restored => ("revert", Phase::Lowered),
        Phase::Lowered if manual => ("restore_original", Phase::Original),
        Phase::Lowered | Phase::Original => {
            m.state = State::RolledBack;
            m.rollback = None;
            db::update(conn, path, &mut m, Cause::Automatic, fx.clock)?;
            return Ok(None);
        }
    };
    if m.state != State::RollingBack {
        m.state = State::RollingBack;
        db::update(conn, path, &mut m, Cause::Automatic, fx.clock)?;
    }
    let r = change_records(conn, path, &mut m, fx, kind, to, None)?;
    if let Some((outcome, mut evidence)) = r.applied {
        if kind == "revert" {
            if let Some(mv) = &m.plan.mail {
                evidence["mail"] = json!([
                    mail_evidence(
                        "retarget",
                        &mv.domain,
                        Some(&mv.from),
                        fx.mail.retarget(&mv.domain, &mv.from)
                    ),
                    mail_evidence("release", &mv.domain, None, fx.mail.release(&mv.domain)),
                ]);
            }
        }
        m.phase = to;
        m.attempts = 0;
        m.last_try_at = None;
        if to == Phase::Original || !manual {
            m.state = State::RolledBack;
            m.rollback = None;
        }
        let ending = Ending {
            step_id: r.step_id,
            outcome,
            reason: moved_reason(outcome, &evidence, m.low_ttl),
            evidence: &evidence,
            audit: Some("applied"),
            cause: Cause::Automatic,
            stamp: Stamp::Done,
        };
        db::finish(conn, path, &mut m, ending, fx.clock)?;
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
