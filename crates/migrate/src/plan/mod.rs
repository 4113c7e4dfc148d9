//! The planner: from the migration file, the zone as the provider holds it,
//! what the servers serve, and the time, a timeline of steps with absolute
//! times, each wait explained in words, and the warnings TTLs cannot fix.
//! Pure: no clock, no network.
//!
//! ```text
//!  MigrationFile ─┐
//!  Zone ──────────┼─▶ changes (RRset before → after) ──▶ waits ──▶ steps with times
//!  Observations ──┤                                        │
//!  now ───────────┘                          warnings ◀─────┘
//!
//!  lower TTLs → wait → verify new → note serials → switch → flush → verify → observe → restore
//! ```

mod changes;
pub mod preflight;
mod render;
mod waits;
mod warnings;

use std::net::IpAddr;

use cutover_zone::zonefile::{rdata_from_text, rdata_to_text};
use cutover_zone::{Name, RecordType, Rrset, Zone};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::file::{AfterTtl, Check, FileError, MailMove, MigrationFile, SwitchAt, Verify};
use crate::observe::Observations;

pub use render::{mail_words, render};
pub use warnings::Warning;

/// A migration's plan: what changes, the steps and when, and the warnings.
/// Stored as JSON beside the migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = MigrationPlan)]
pub struct Plan {
    /// The zone (absolute, presentation form).
    pub zone: String,
    /// The provider, in words.
    pub provider: String,
    /// When the plan was made.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Every RRset that changes.
    pub changes: Vec<RrsetChange>,
    /// The TTL the RRsets carry during the move: the file's `during`, or a
    /// provider's floor when it is higher.
    pub low_ttl: u32,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// What TTLs cannot fix, and other things to know.
    pub warnings: Vec<Warning>,
    /// The service checks.
    pub checks: Vec<Check>,
    /// Where checks are pinned before the switch when they name no address.
    #[schema(value_type = Vec<String>)]
    pub new_addresses: Vec<IpAddr>,
    /// How the switch is verified.
    pub verify: Verify,
    /// Local caches to flush after the switch.
    pub flush: Vec<String>,
    /// The mail relay's part.
    pub mail: Option<MailMove>,
}

/// One RRset's journey: as it was, lowered, switched, restored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RrsetChange {
    /// Owner (absolute, presentation form).
    pub name: String,
    /// Record type ("A").
    pub rtype: String,
    /// The RRset as the provider held it when planned (`None`: absent, a new name or type).
    pub before: Option<RrsetText>,
    /// The new values.
    pub after: Vec<String>,
    /// The TTL at the end.
    pub final_ttl: u32,
    /// Why it changes ("holds 192.0.2.10", "SPF term ip4:192.0.2.10", "listed in the file").
    pub reason: String,
}

/// An RRset in presentation form (the plan is JSON; RDATA round-trips
/// through the zone-file syntax).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RrsetText {
    /// The TTL.
    pub ttl: u32,
    /// The values, in canonical order.
    pub values: Vec<String>,
}

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Set every moving RRset's TTL to the low TTL, values unchanged.
    LowerTtls,
    /// Wait until every cache must have dropped what it held at the old TTL.
    WaitForCaches,
    /// Service checks pinned to the new addresses.
    VerifyNew,
    /// Record every authority's SOA serial.
    NoteSerials,
    /// Put the new values in place (low TTL kept).
    Switch,
    /// Empty the listed local caches.
    FlushCaches,
    /// Serial risen everywhere, new values everywhere, checks green; with tries.
    VerifySwitch,
    /// Watch for the observation period, then check once more.
    Observe,
    /// Put the final TTLs back.
    RestoreTtls,
    /// Wait for an operator's approval (`approve = "before_<step>"` in the
    /// file) before the step after it: nothing after it runs until then.
    Approval,
}

impl StepKind {
    /// The steps a plan always has, in their order (the approval gate,
    /// only where the file asks for it, is not among them).
    pub const PLANNED: [StepKind; 9] = [
        StepKind::LowerTtls,
        StepKind::WaitForCaches,
        StepKind::VerifyNew,
        StepKind::NoteSerials,
        StepKind::Switch,
        StepKind::FlushCaches,
        StepKind::VerifySwitch,
        StepKind::Observe,
        StepKind::RestoreTtls,
    ];
}

/// One step of the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = PlannedStep)]
pub struct Step {
    /// What it does.
    pub kind: StepKind,
    /// When it is planned to run (the runner may run it later, never earlier).
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The least time after the previous step is done (s): a wait that a
    /// late previous step pushes back rather than shortens.
    pub after_previous: u64,
    /// What it does, in words.
    pub what: String,
    /// Why then, in words.
    pub why: String,
}

/// Why no plan could be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The zone read from the provider is not the one the file names.
    #[error("the provider returned the zone {found}, the migration file names {expected}")]
    WrongZone {
        /// The file's zone.
        expected: String,
        /// What came back.
        found: String,
    },
    /// The zone has no SOA.
    #[error("the zone {0} has no SOA record")]
    NoSoa(String),
    /// The file asks for what cannot work with this zone: each reason at
    /// its place in the file.
    #[error("{0}")]
    Refused(Refusals),
    /// A value in the plan does not parse back.
    #[error("{0}")]
    Data(String),
}

/// Reasons a migration file is refused, each at its place, one a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusals(pub Vec<FileError>);

impl std::fmt::Display for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for Refusals {}

/// The absolute time `secs` seconds after `t` (saturating).
pub fn later(t: Timestamp, secs: u64) -> Timestamp {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    t.checked_add(SignedDuration::from_secs(secs))
        .unwrap_or(Timestamp::MAX)
}

/// The absolute time `secs` seconds before `t` (saturating).
pub fn earlier(t: Timestamp, secs: u64) -> Timestamp {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    t.checked_sub(SignedDuration::from_secs(secs))
        .unwrap_or(Timestamp::MIN)
}

/// A duration in words ("3d 2h", "1m 30s", "1h 30m"): the one form cutover
/// prints durations in (`cutover_zone::duration::words`).
pub fn words(secs: u64) -> String {
    cutover_zone::duration::words(std::time::Duration::from_secs(secs))
}

impl RrsetText {
    /// The presentation form of an RRset.
    pub fn of(rrset: &Rrset) -> RrsetText {
        RrsetText {
            ttl: rrset.ttl,
            values: rrset.rdatas().iter().map(rdata_to_text).collect(),
        }
    }

    /// The RRset back from its presentation form.
    pub fn to_rrset(&self, rtype: RecordType, origin: &Name) -> Result<Rrset, PlanError> {
        rrset_of(rtype, self.ttl, &self.values, origin)
    }
}

/// Builds an RRset from presentation-form values.
pub fn rrset_of(
    rtype: RecordType,
    ttl: u32,
    values: &[String],
    origin: &Name,
) -> Result<Rrset, PlanError> {
    let mut set = Rrset::default();
    set.ttl = ttl;
    for v in values {
        let rdata = rdata_from_text(rtype, v, origin)
            .map_err(|e| PlanError::Data(format!("{rtype} {v:?}: {e}")))?;
        set.insert(rdata);
    }
    Ok(set)
}

impl RrsetChange {
    /// The owner as a name.
    pub fn owner(&self) -> Result<Name, PlanError> {
        Name::from_ascii(&self.name).map_err(|e| PlanError::Data(format!("{}: {e}", self.name)))
    }

    /// The type.
    pub fn record_type(&self) -> Result<RecordType, PlanError> {
        self.rtype
            .parse()
            .map_err(|_| PlanError::Data(format!("unknown type {}", self.rtype)))
    }

    /// The RRset before the move (`None`: absent).
    pub fn original(&self, origin: &Name) -> Result<Option<Rrset>, PlanError> {
        self.before
            .as_ref()
            .map(|b| b.to_rrset(self.record_type()?, origin))
            .transpose()
    }

    /// The old values at the low TTL (`None` when the RRset was absent).
    pub fn old_low(&self, origin: &Name, low: u32) -> Result<Option<Rrset>, PlanError> {
        Ok(self.original(origin)?.map(|mut s| {
            s.ttl = low;
            s
        }))
    }

    /// The new values at a TTL.
    pub fn new_at(&self, origin: &Name, ttl: u32) -> Result<Rrset, PlanError> {
        rrset_of(self.record_type()?, ttl, &self.after, origin)
    }

    /// The old values at their original TTL (`None` when absent).
    pub fn old_final(&self, origin: &Name) -> Result<Option<Rrset>, PlanError> {
        self.original(origin)
    }
}

/// Refuses what cannot work with this zone (the first part of [`plan`],
/// which needs no observation): callers ask it before probing the servers,
/// so that a file that cannot work is refused at once.
pub fn refuse(file: &MigrationFile, zone: &Zone, now: Timestamp) -> Result<(), PlanError> {
    let changes = changes::changes(file, zone, &mut Vec::new())
        .map_err(|e| PlanError::Refused(Refusals(vec![e])))?;
    let refused = preflight::refusals(file, zone, &changes, now);
    if refused.is_empty() {
        Ok(())
    } else {
        Err(PlanError::Refused(Refusals(refused)))
    }
}

/// Makes the plan. Pure: everything it knows is passed in.
pub fn plan(
    file: &MigrationFile,
    zone: &Zone,
    observed: &Observations,
    now: Timestamp,
) -> Result<Plan, PlanError> {
    if zone.origin() != &file.zone {
        return Err(PlanError::WrongZone {
            expected: file.zone.to_string(),
            found: zone.origin().to_string(),
        });
    }
    let soa = zone
        .soa()
        .ok_or_else(|| PlanError::NoSoa(file.zone.to_string()))?;
    let mut warnings = Vec::new();
    let changes = changes::changes(file, zone, &mut warnings)
        .map_err(|e| PlanError::Refused(Refusals(vec![e])))?;
    let refused = preflight::refusals(file, zone, &changes, now);
    if !refused.is_empty() {
        return Err(PlanError::Refused(Refusals(refused)));
    }
    for (key, spot) in &file.spots.inline_secrets {
        warnings.push(Warning::InlineSecret {
            key: key.clone(),
            line: spot.line,
        });
    }

    // The low TTL: the file's, unless the provider or the servers impose more.
    let floor = waits::ttl_floor(&changes, observed, file.ttl.during);
    let low_ttl = file
        .ttl
        .during
        .max(floor.as_ref().map(|(t, _)| *t).unwrap_or(0));
    if let Some((t, source)) = &floor {
        if *t > file.ttl.during {
            warnings.push(Warning::TtlFloor {
                requested: file.ttl.during,
                served: *t,
                source: source.clone(),
            });
        }
    }

    // The wait after lowering: the longest TTL any cache may hold the old data for.
    let (wait_ttl, wait_why) = waits::longest_ttl(&changes, observed);
    let margin = file.schedule.margin;
    let wait = u64::from(wait_ttl) + margin;

    warnings::collect(file, zone, &changes, &soa, &mut warnings);

    let mut steps = Vec::new();
    // Lower as late as the switch time allows: low TTLs cost queries.
    let earliest_switch = later(now, wait);
    let (lower_at, lower_why) = match file.schedule.switch_at {
        SwitchAt::At(t) if t > earliest_switch => (
            earlier(t, wait),
            format!(
                "one wait ({}) before the switch the file sets at {t}, so that every cache has let go of the old TTL by then and TTLs stay high until needed",
                words(wait)
            ),
        ),
        _ => (
            now,
            "now: after the switch every cache must let go of the old values within the low TTL".to_string(),
        ),
    };
    steps.push(Step {
        kind: StepKind::LowerTtls,
        at: lower_at,
        after_previous: 0,
        what: format!(
            "lower the TTL of {} RRset{} to {low_ttl}s, values unchanged",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        ),
        why: lower_why,
    });
    let earliest = later(lower_at, wait);
    steps.push(Step {
        kind: StepKind::WaitForCaches,
        at: earliest,
        after_previous: wait,
        what: format!("wait {} until {}", words(wait), render::to_second(earliest)),
        why: format!("{wait_why}, plus a margin of {}", words(margin)),
    });
    let switch_at = match file.schedule.switch_at {
        SwitchAt::Earliest => earliest,
        SwitchAt::At(t) if t >= earliest => t,
        SwitchAt::At(t) => {
            warnings.push(Warning::SwitchTooEarly {
                requested: t,
                earliest,
            });
            earliest
        }
    };
    let pins = file.new_addresses();
    steps.push(Step {
        kind: StepKind::VerifyNew,
        at: switch_at,
        after_previous: 0,
        what: if file.checks.is_empty() {
            "no service checks are listed: nothing to verify before the switch".into()
        } else {
            format!(
                "run {} service check{} pinned to the new address{}",
                file.checks.len(),
                if file.checks.len() == 1 { "" } else { "s" },
                if pins.len() == 1 { "" } else { "es" },
            )
        },
        why: if file.schedule.switch_at == SwitchAt::At(switch_at) {
            format!("just before the switch, which the file sets at {switch_at}")
        } else {
            "just before the switch: the new servers must answer before anyone is sent there".into()
        },
    });
    steps.push(Step {
        kind: StepKind::NoteSerials,
        at: switch_at,
        after_previous: 0,
        what: "note the SOA serial every authoritative address serves".into(),
        why: "after the switch, every authority must serve a newer serial".into(),
    });
    steps.push(Step {
        kind: StepKind::Switch,
        at: switch_at,
        after_previous: 0,
        what: format!("put the new values in place, TTL {low_ttl}s"),
        why: "every cache now holds the old values for at most the low TTL".into(),
    });
    steps.push(Step {
        kind: StepKind::FlushCaches,
        at: switch_at,
        after_previous: 0,
        what: if file.flush.caches.is_empty() {
            "no local caches are listed to flush".into()
        } else {
            format!("flush {}", file.flush.caches.join(", "))
        },
        why: "local caches would otherwise serve the old values for up to the low TTL".into(),
    });
    let verify_delay = u64::from(low_ttl) + 1;
    let verify_at = later(switch_at, verify_delay);
    let tries = file.verify.tries;
    steps.push(Step {
        kind: StepKind::VerifySwitch,
        at: verify_at,
        after_previous: verify_delay,
        what: format!(
            "verify: serial risen on every authority, new values at every authority and resolver, service checks green (up to {tries} tr{}, {} apart)",
            if tries == 1 { "y" } else { "ies" },
            words(file.verify.interval)
        ),
        why: format!(
            "resolvers drop the old values within the low TTL ({low_ttl}s) after the switch; on {tries} failure{} the switch is reverted with the low TTL still in place",
            if tries == 1 { "" } else { "s" }
        ),
    });
    let observe = file.schedule.observe;
    let observe_end = later(verify_at, observe);
    steps.push(Step {
        kind: StepKind::Observe,
        at: observe_end,
        after_previous: observe,
        what: format!("observe for {}, then run the service checks once more", words(observe)),
        why: "problems that show only under real traffic can still be rolled back quickly while the TTL is low".into(),
    });
    steps.push(Step {
        kind: StepKind::RestoreTtls,
        at: observe_end,
        after_previous: 0,
        what: match file.ttl.after {
            AfterTtl::Original => "restore every moved RRset's original TTL".into(),
            AfterTtl::Fixed(t) => format!("set the moved RRsets' TTL to {t}s"),
        },
        why: "low TTLs cost queries and resilience once the move is settled".into(),
    });
    if let Some(gated) = file.approve {
        gate(&mut steps, gated);
    }

    Ok(Plan {
        zone: file.zone.to_string(),
        provider: file.provider.describe(),
        created_at: now,
        changes,
        low_ttl,
        steps,
        warnings,
        checks: file.checks.clone(),
        new_addresses: pins,
        verify: file.verify.clone(),
        flush: file.flush.caches.clone(),
        mail: file.mail.clone(),
    })
}

/// Puts the approval gate before the step `gated`: the gate takes that
/// step's time and wait (it is asked when the step falls due), and the step
/// follows it at once when approved, never earlier than its own time.
fn gate(steps: &mut Vec<Step>, gated: StepKind) {
    let Some(index) = steps.iter().position(|s| s.kind == gated) else {
        return;
    };
    let step = &mut steps[index];
    let after_previous = std::mem::take(&mut step.after_previous);
    let before = render::step_words(gated);
    let gate = Step {
        kind: StepKind::Approval,
        at: step.at,
        after_previous,
        what: format!(
            "wait for approval before the {before}: nothing more runs until `cutover migrate approve ID`, the dashboard's Approve button or POST /api/v1/migrations/ID/approve"
        ),
        why: format!(
            "the migration file asks for it (approve = \"before_{}\"); the migration waits here, across restarts, for as long as it takes",
            gated.as_str()
        ),
    };
    steps.insert(index, gate);
}

#[cfg(test)]
mod tests;
