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
mod zones;

use std::net::IpAddr;

use cutover_zone::zonefile::{rdata_from_text, rdata_to_text};
use cutover_zone::{Name, RecordType, Rrset, Zone};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::file::{
    AfterTtl, Check, FileError, MailMove, MigrationFile, Move, SwitchAt, Verify, ZoneTarget,
};
use crate::observe::Observations;

pub use render::{mail_words, render, touch_words, zones_words};
pub use warnings::Warning;
pub use zones::view as zone_view;

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
    /// Every zone whose records move, with its provider (an index into
    /// `providers`); the first is `zone`. Empty in a plan made before
    /// migrations had several zones: `zone` through `provider`.
    #[serde(default)]
    pub zones: Vec<PlanZone>,
    /// Every provider, in words, in the order the zones first name them;
    /// the first is `provider`.
    #[serde(default)]
    pub providers: Vec<String>,
}

/// One zone of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanZone {
    /// The zone (absolute, presentation form).
    pub zone: String,
    /// Its provider: an index into the plan's `providers`.
    pub provider: usize,
    /// The authoritative addresses asked about it, when its `[[zone]]`
    /// lists its own (empty: `verify.authorities`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub authorities: Vec<std::net::SocketAddr>,
}

/// What a step changes or asks about: a provider and its zones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Touch {
    /// The provider, in words.
    pub provider: String,
    /// Its zones the step touches.
    pub zones: Vec<String>,
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
    /// The zone it is in (`None` in plans made before migrations had
    /// several zones: the plan's `zone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
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
    /// The providers and zones it changes or asks about (empty: none, or a
    /// plan made before migrations had several zones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub touches: Vec<Touch>,
    /// A switch step: the provider (an index into the plan's `providers`)
    /// whose zones it switches; one switch step per provider (`None`: every
    /// zone, a plan made before several providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<usize>,
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
    refuse_zones(file, std::slice::from_ref(zone), now)
}

/// [`refuse`] for a file of several zones: `zones` holds each of them as
/// its provider holds it.
pub fn refuse_zones(file: &MigrationFile, zones: &[Zone], now: Timestamp) -> Result<(), PlanError> {
    gather(file, zones, now).map(|_| ())
}

/// One zone's part of a plan: the zone, its changes (tagged with it), and
/// the warnings its changes gave.
struct ZonePart<'a> {
    /// The zone in the file.
    target: ZoneTarget,
    /// The file as if it named this zone alone.
    view: MigrationFile,
    /// The zone as the provider holds it.
    zone: &'a Zone,
    /// What changes in it.
    changes: Vec<RrsetChange>,
    /// Warnings about its changes.
    warnings: Vec<Warning>,
}

/// Each zone's changes, every refusal of every zone at once.
fn gather<'a>(
    file: &MigrationFile,
    zones: &'a [Zone],
    now: Timestamp,
) -> Result<Vec<ZonePart<'a>>, PlanError> {
    let many = file.many_zones();
    let mut parts = Vec::new();
    for target in &file.zones {
        let Some(zone) = zones.iter().find(|z| z.origin() == &target.name) else {
            return Err(PlanError::WrongZone {
                expected: target.name.to_string(),
                found: zones
                    .iter()
                    .map(|z| z.origin().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if zone.soa().is_none() {
            return Err(PlanError::NoSoa(target.name.to_string()));
        }
        parts.push((target.clone(), zone));
    }
    if many {
        // A move by address needs a record holding it in some zone, not in each.
        for (i, m) in file.moves.iter().enumerate() {
            let Move::Address { from, .. } = m else {
                continue;
            };
            if !parts.iter().any(|(_, z)| changes::holds(z, *from)) {
                let spot = file
                    .spots
                    .moves
                    .get(i)
                    .map(|m| m.subject)
                    .unwrap_or_default();
                return Err(PlanError::Refused(Refusals(vec![file.error_at(
                    spot,
                    format!(
                        "no A or AAAA record in any of the {} zones holds {from}: nothing to move",
                        parts.len()
                    ),
                )])));
            }
        }
    }
    let mut refused = Vec::new();
    if many {
        for (i, c) in file.checks.iter().enumerate() {
            if let Some(host) = zones::check_host(&c.kind) {
                if file.zone_of(&host).is_none() {
                    let spot = file
                        .spots
                        .checks
                        .get(i)
                        .map(|s| s.target)
                        .unwrap_or_default();
                    refused.push(file.error_at(
                        spot,
                        format!(
                            "{host} is in none of the migration's zones: no move changes where it leads, so after the switch this check would still reach the servers it reaches now; check a name that moves"
                        ),
                    ));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (target, zone) in parts {
        let view = zones::view(file, &target);
        let mut warnings = Vec::new();
        let mut changes = changes::changes(&view, zone, &mut warnings, !many)
            .map_err(|e| PlanError::Refused(Refusals(vec![e])))?;
        refused.extend(preflight::refusals(&view, zone, &changes, now));
        for c in &mut changes {
            c.zone = Some(target.name.to_string());
        }
        out.push(ZonePart {
            target,
            view,
            zone,
            changes,
            warnings,
        });
    }
    if refused.is_empty() {
        Ok(out)
    } else {
        Err(PlanError::Refused(Refusals(refused)))
    }
}

/// A zone's warning, named with its zone when the plan has several.
fn in_zone(many: bool, zone: &Name, warning: Warning) -> Warning {
    if many {
        Warning::InZone {
            zone: zone.to_string(),
            about: Box::new(warning),
        }
    } else {
        warning
    }
}

/// Makes the plan. Pure: everything it knows is passed in.
pub fn plan(
    file: &MigrationFile,
    zone: &Zone,
    observed: &Observations,
    now: Timestamp,
) -> Result<Plan, PlanError> {
    if zone.origin() != &file.zone && !file.many_zones() {
        return Err(PlanError::WrongZone {
            expected: file.zone.to_string(),
            found: zone.origin().to_string(),
        });
    }
    plan_zones(file, std::slice::from_ref(zone), observed, now)
}

/// Makes the plan of a file of several zones: `zones` holds each of them
/// as its provider holds it, `observed` what the servers serve of all of
/// them ([`crate::checks::observe_zones`]). One timeline: the wait after
/// lowering counts from the longest TTL in any zone; one switch step per
/// provider; the TTLs lowered and restored, and the switch verified, in
/// every zone. Pure: everything it knows is passed in.
pub fn plan_zones(
    file: &MigrationFile,
    zones: &[Zone],
    observed: &Observations,
    now: Timestamp,
) -> Result<Plan, PlanError> {
    let many = file.many_zones();
    let parts = gather(file, zones, now)?;
    let mut warnings = Vec::new();
    let mut changes: Vec<RrsetChange> = Vec::new();
    // The zones that change, and their providers in the order they are first named.
    let mut plan_zones: Vec<PlanZone> = Vec::new();
    let mut used: Vec<usize> = Vec::new();
    for part in &parts {
        for w in &part.warnings {
            warnings.push(in_zone(many, &part.target.name, w.clone()));
        }
        if part.changes.is_empty() {
            warnings.push(Warning::NothingMoves {
                zone: part.target.name.to_string(),
            });
            continue;
        }
        let index = match used.iter().position(|p| *p == part.target.provider) {
            Some(i) => i,
            None => {
                used.push(part.target.provider);
                used.len() - 1
            }
        };
        plan_zones.push(PlanZone {
            zone: part.target.name.to_string(),
            provider: index,
            authorities: part.target.authorities.clone(),
        });
        changes.extend(part.changes.iter().cloned());
    }
    let providers: Vec<String> = used.iter().map(|p| file.providers[*p].describe()).collect();
    let first = parts
        .iter()
        .find(|p| !p.changes.is_empty())
        .or(parts.first())
        .ok_or_else(|| PlanError::Data("the migration names no zone".into()))?;
    let plan_zone = first.target.name.to_string();
    let plan_provider = file.providers[first.target.provider].describe();
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

    for part in &parts {
        let soa = part.zone.soa().expect("gather refuses a zone without SOA");
        let mut found = Vec::new();
        warnings::collect(&part.view, part.zone, &part.changes, &soa, &mut found);
        warnings.extend(
            found
                .into_iter()
                .map(|w| in_zone(many, &part.target.name, w)),
        );
    }
    let touch_all = zones::touches(&plan_zones, &providers, None);
    let zone_count = plan_zones.len();
    let in_zones = if many {
        format!(
            " in {zone_count} zone{}",
            if zone_count == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };

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
            "lower the TTL of {} RRset{}{in_zones} to {low_ttl}s, values unchanged",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        ),
        why: lower_why,
        touches: touch_all.clone(),
        provider: None,
    });
    let earliest = later(lower_at, wait);
    steps.push(Step {
        kind: StepKind::WaitForCaches,
        at: earliest,
        after_previous: wait,
        what: format!("wait {} until {}", words(wait), render::to_second(earliest)),
        why: format!("{wait_why}, plus a margin of {}", words(margin)),
        touches: Vec::new(),
        provider: None,
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
                "run {} service check{} pinned to the new address{}{}",
                file.checks.len(),
                if file.checks.len() == 1 { "" } else { "s" },
                if pins.len() == 1 { "" } else { "es" },
                from_where(&file.verify),
            )
        },
        why: if file.schedule.switch_at == SwitchAt::At(switch_at) {
            format!("just before the switch, which the file sets at {switch_at}")
        } else {
            "just before the switch: the new servers must answer before anyone is sent there".into()
        },
        touches: Vec::new(),
        provider: None,
    });
    steps.push(Step {
        kind: StepKind::NoteSerials,
        at: switch_at,
        after_previous: 0,
        what: if many {
            format!("note the SOA serial every authoritative address serves for each of the {zone_count} zones")
        } else {
            "note the SOA serial every authoritative address serves".into()
        },
        why: "after the switch, every authority must serve a newer serial".into(),
        touches: touch_all.clone(),
        provider: None,
    });
    // One switch step per provider, one after the other at the same time.
    for (index, described) in providers.iter().enumerate() {
        let touch = zones::touches(&plan_zones, &providers, Some(index));
        let count = touch.iter().map(|t| t.zones.len()).sum::<usize>();
        let what = if many {
            format!(
                "put the new values in place in {count} zone{} through {described}, TTL {low_ttl}s ({})",
                if count == 1 { "" } else { "s" },
                if count == 1 {
                    "one change set, all or nothing".to_string()
                } else {
                    "one change set per zone, each all or nothing: a zone is switched whole or not at all, the zones one after another".to_string()
                }
            )
        } else {
            format!("put the new values in place, TTL {low_ttl}s")
        };
        steps.push(Step {
            kind: StepKind::Switch,
            at: switch_at,
            after_previous: 0,
            what,
            why: "every cache now holds the old values for at most the low TTL".into(),
            touches: touch,
            provider: Some(index),
        });
    }
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
        touches: touch_all.clone(),
        provider: None,
    });
    let verify_delay = u64::from(low_ttl) + 1;
    let verify_at = later(switch_at, verify_delay);
    let tries = file.verify.tries;
    steps.push(Step {
        kind: StepKind::VerifySwitch,
        at: verify_at,
        after_previous: verify_delay,
        what: format!(
            "verify: serial risen on every authority, new values at every authority and resolver, service checks green{} (up to {tries} tr{}, {} apart)",
            from_where(&file.verify),
            if tries == 1 { "y" } else { "ies" },
            words(file.verify.interval)
        ),
        why: format!(
            "resolvers drop the old values within the low TTL ({low_ttl}s) after the switch; on {tries} failure{} the switch is reverted with the low TTL still in place",
            if tries == 1 { "" } else { "s" }
        ),
        touches: touch_all.clone(),
        provider: None,
    });
    let observe = file.schedule.observe;
    let observe_end = later(verify_at, observe);
    steps.push(Step {
        kind: StepKind::Observe,
        at: observe_end,
        after_previous: observe,
        what: format!("observe for {}, then run the service checks once more", words(observe)),
        why: "problems that show only under real traffic can still be rolled back quickly while the TTL is low".into(),
        touches: Vec::new(),
        provider: None,
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
        touches: touch_all,
        provider: None,
    });
    if let Some(gated) = file.approve {
        gate(&mut steps, gated);
    }

    Ok(Plan {
        zone: plan_zone,
        provider: plan_provider,
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
        zones: plan_zones,
        providers,
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
        touches: Vec::new(),
        provider: None,
    };
    steps.insert(index, gate);
}

/// " from local, fra1 (all must agree)" when the checks run from more than
/// the local process; nothing otherwise.
fn from_where(verify: &crate::file::Verify) -> String {
    verify
        .from_where()
        .map(|w| format!(" {w}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
