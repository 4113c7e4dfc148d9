//! The preflight: what a migration file asks that cannot work, found before
//! anything changes, each at its place in the file.
//!
//! ```text
//!  refusals (pure, file + zone + changes + now): the plan is refused
//!    a TTL "lowered" above the original · switch_at absurdly far
//!    a check that can never pass: a name looked up with no resolver,
//!      a name that does not move (or moves in the family not looked up),
//!      a name with no address after the switch, a pin the name never leads
//!      to, TLS to a bare address, no address to pin to before the switch
//!  hazards (pure, + what the servers say now + the other migrations):
//!    refused unless the operator forces them
//!    another active migration on the same RRsets · an authority serving a
//!    newer serial than the provider's (the switch would lower it) · an
//!    authority or resolver that does not answer
//! ```
//!
//! How a check runs decides what it needs: before the switch it is pinned
//! to its `address` or to every new address of the moves; after the switch
//! it looks its host up through the first of `verify.resolvers`, A first,
//! then AAAA, as a client would.

use std::net::IpAddr;

use cutover_zone::zonefile::rdata_to_text;
use cutover_zone::{Name, RecordType, Serial, Zone};
use jiff::Timestamp;

use super::{later, words, Plan, RrsetChange};
use crate::file::{CheckKind, FileError, MigrationFile, Move, Spot, MAX_SWITCH_AHEAD};
use crate::observe::Observations;

/// Another migration that has not finished, as the hazards see it.
#[derive(Clone, Copy, Debug)]
pub struct Active<'a> {
    /// Its id.
    pub id: i64,
    /// Its state, in words ("running", "paused").
    pub state: &'a str,
    /// Its plan.
    pub plan: &'a Plan,
}

/// The place of the move that makes `change`: the explicit move setting it,
/// else the address move whose `from` it holds (or names in an SPF term).
pub fn move_spot(file: &MigrationFile, change: &RrsetChange) -> Spot {
    let before: Vec<String> = change
        .before
        .as_ref()
        .map(|b| b.values.clone())
        .unwrap_or_default();
    let found = file.moves.iter().enumerate().find(|(_, m)| match m {
        Move::Explicit { name, rtype, .. } => {
            name.to_string().eq_ignore_ascii_case(&change.name) && rtype.to_string() == change.rtype
        }
        Move::Address { from, .. } => {
            let text = from.to_string();
            before
                .iter()
                .any(|v| *v == text || v.contains(&format!(":{text}")))
        }
    });
    let index = found.map(|(i, _)| i).unwrap_or(0);
    file.spots
        .moves
        .get(index)
        .map(|m| m.subject)
        .unwrap_or_default()
}

/// The delegation `name` is at or below: the closest name between it and
/// the apex (the apex excluded) that holds NS records.
fn delegation(zone: &Zone, name: &Name) -> Option<Name> {
    let mut at = name.clone();
    let mut cut = None;
    while at != *zone.origin() && zone.origin().zone_of(&at) {
        if zone.get(&at, RecordType::NS).is_some() {
            cut = Some(at.clone());
        }
        at = at.base_name();
    }
    cut
}

/// True when `name` is a name server of the delegation at `cut` (its
/// addresses are glue, which the zone serves).
fn glue_of(zone: &Zone, cut: &Name, name: &Name) -> bool {
    zone.get(cut, RecordType::NS).is_some_and(|ns| {
        ns.rdatas()
            .iter()
            .filter_map(cutover_zone::Rdata::target)
            .any(|t| t == *name)
    })
}

/// Where a check's host leads after the switch.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Leads {
    /// The host is an address.
    Address(IpAddr),
    /// A name outside the zone: where it leads is not this zone's to say.
    Outside,
    /// A name below a delegation: the child zone's servers answer for it.
    Delegated {
        /// Where the zone is cut.
        cut: Name,
    },
    /// Through a CNAME that leaves the zone.
    External {
        /// The CNAME's target outside the zone.
        target: String,
        /// Whether a CNAME on the way is one the migration changes.
        moving: bool,
    },
    /// To addresses, looked up as the check does: A first, then AAAA.
    Addresses {
        /// The name holding them (the host, or the end of its CNAMEs).
        name: Name,
        /// The type looked up first that has records.
        family: RecordType,
        /// Whether that RRset, or a CNAME on the way, is one the migration changes.
        moving: bool,
        /// Every address the name has after the switch (A and AAAA).
        all: Vec<IpAddr>,
        /// The values before the switch of the RRset looked up, when it does not move.
        stays: Vec<String>,
        /// A/AAAA types the migration changes at the name.
        moving_types: Vec<RecordType>,
    },
    /// To no address at all.
    Nothing {
        /// The name without A or AAAA after the switch.
        name: Name,
    },
}

/// An RRset after the switch: its values and whether the migration sets it.
fn after(
    zone: &Zone,
    changes: &[RrsetChange],
    name: &Name,
    rtype: RecordType,
) -> (Vec<String>, bool) {
    let text = name.to_string();
    let rtype_text = rtype.to_string();
    if let Some(c) = changes
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(&text) && c.rtype == rtype_text)
    {
        return (c.after.clone(), true);
    }
    let values = zone
        .get(name, rtype)
        .map(|s| s.rdatas().iter().map(rdata_to_text).collect())
        .unwrap_or_default();
    (values, false)
}

/// True when a name has data after the switch (in the zone, or set by a change).
fn exists(zone: &Zone, changes: &[RrsetChange], name: &Name) -> bool {
    let text = name.to_string();
    zone.node(name).is_some() || changes.iter().any(|c| c.name.eq_ignore_ascii_case(&text))
}

/// The name that answers for `name`: itself, or the wildcard covering it.
fn answering(zone: &Zone, changes: &[RrsetChange], name: &Name) -> Name {
    if exists(zone, changes, name) {
        return name.clone();
    }
    let mut ancestor = name.base_name();
    while zone.origin().zone_of(&ancestor) {
        if let Ok(wild) = Name::from_ascii("*").and_then(|w| w.append_domain(&ancestor)) {
            if exists(zone, changes, &wild) {
                return wild;
            }
        }
        if exists(zone, changes, &ancestor) || ancestor.is_root() {
            break;
        }
        ancestor = ancestor.base_name();
    }
    name.clone()
}

/// Where `host` leads after the switch, following CNAMEs inside the zone.
fn leads(zone: &Zone, changes: &[RrsetChange], host: &str) -> Leads {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Leads::Address(ip);
    }
    let Ok(mut name) = Name::from_ascii(format!("{}.", host.trim_end_matches('.'))) else {
        return Leads::Outside;
    };
    if !zone.origin().zone_of(&name) {
        return Leads::Outside;
    }
    let mut through_moving = false;
    for _ in 0..8 {
        if let Some(cut) = delegation(zone, &name) {
            return Leads::Delegated { cut };
        }
        let at = answering(zone, changes, &name);
        let (cname, cname_moves) = after(zone, changes, &at, RecordType::CNAME);
        if let Some(target) = cname.first() {
            through_moving |= cname_moves;
            let Ok(next) = Name::from_ascii(target) else {
                return Leads::Nothing { name };
            };
            if !zone.origin().zone_of(&next) {
                return Leads::External {
                    target: next.to_string(),
                    moving: through_moving,
                };
            }
            name = next;
            continue;
        }
        let (a, a_moves) = after(zone, changes, &at, RecordType::A);
        let (aaaa, aaaa_moves) = after(zone, changes, &at, RecordType::AAAA);
        let all: Vec<IpAddr> = a
            .iter()
            .chain(&aaaa)
            .filter_map(|v| v.parse().ok())
            .collect();
        let mut moving_types = Vec::new();
        if a_moves {
            moving_types.push(RecordType::A);
        }
        if aaaa_moves {
            moving_types.push(RecordType::AAAA);
        }
        let before = |rtype| {
            zone.get(&at, rtype)
                .map(|s| s.rdatas().iter().map(rdata_to_text).collect())
                .unwrap_or_default()
        };
        return if !a.is_empty() {
            Leads::Addresses {
                name,
                family: RecordType::A,
                moving: through_moving || a_moves,
                all,
                stays: if a_moves {
                    Vec::new()
                } else {
                    before(RecordType::A)
                },
                moving_types,
            }
        } else if !aaaa.is_empty() {
            Leads::Addresses {
                name,
                family: RecordType::AAAA,
                moving: through_moving || aaaa_moves,
                all,
                stays: if aaaa_moves {
                    Vec::new()
                } else {
                    before(RecordType::AAAA)
                },
                moving_types,
            }
        } else {
            Leads::Nothing { name }
        };
    }
    Leads::Nothing { name }
}

/// Addresses in words.
fn listed(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the file asks that cannot work with this zone, at its places.
pub(super) fn refusals(
    file: &MigrationFile,
    zone: &Zone,
    changes: &[RrsetChange],
    now: Timestamp,
) -> Vec<FileError> {
    let mut out = Vec::new();
    for c in changes {
        let Ok(name) = Name::from_ascii(&c.name) else {
            continue;
        };
        let Some(cut) = delegation(zone, &name) else {
            continue;
        };
        if name == cut && c.rtype == "DS" {
            continue;
        }
        out.push(file.error_at(
            move_spot(file, c),
            format!(
                "{} {} is {} the delegation at {cut}: the zone's servers answer for it with a referral, so verification could never see the new values; change it in the delegated zone{}",
                c.name,
                c.rtype,
                if name == cut { "at" } else { "below" },
                if glue_of(zone, &cut, &name) || c.rtype == "NS" {
                    " (and the delegation here by hand, with its parent TTL)"
                } else {
                    ""
                }
            ),
        ));
    }
    ttl_refusals(file, changes, &mut out);
    if let (crate::file::SwitchAt::At(t), Some(spot)) =
        (file.schedule.switch_at, file.spots.switch_at)
    {
        if t > later(now, MAX_SWITCH_AHEAD) {
            out.push(file.error_at(
                spot,
                format!(
                    "switch_at {t} is more than {} ahead: the TTLs would be lowered long before, and the zone would change under the plan meanwhile; start the migration closer to it",
                    words(MAX_SWITCH_AHEAD)
                ),
            ));
        }
    }
    for (i, check) in file.checks.iter().enumerate() {
        out.extend(check_refusal(file, zone, changes, i, check));
    }
    out
}

/// A "lowered" TTL above an RRset's own.
fn ttl_refusals(file: &MigrationFile, changes: &[RrsetChange], out: &mut Vec<FileError>) {
    let during = file.ttl.during;
    let mut seen = false;
    for c in changes {
        let Some(before) = &c.before else { continue };
        if before.ttl >= during || seen {
            continue;
        }
        seen = true;
        let message = format!(
            "{} {} has TTL {}s, below ttl.during ({during}s{}): the move would raise it, and caches would hold the new values longer, not shorter; set [ttl] during = {} or less",
            c.name,
            c.rtype,
            before.ttl,
            if file.spots.ttl_during.is_some() {
                ""
            } else {
                ", the default"
            },
            before.ttl
        );
        let spot = file.spots.ttl_during.unwrap_or_else(|| move_spot(file, c));
        out.push(file.error_at(spot, message));
    }
}

/// Why one check can never pass, if it cannot.
fn check_refusal(
    file: &MigrationFile,
    zone: &Zone,
    changes: &[RrsetChange],
    index: usize,
    check: &crate::file::Check,
) -> Option<FileError> {
    let spots = file.spots.checks.get(index).copied().unwrap_or_default();
    let at = |message: String| Some(file.error_at(spots.target, message));
    let (host, tls) = match &check.kind {
        CheckKind::Http { url, .. } => match cutover_probe::service::http::Url::parse(url) {
            Ok(u) => (u.host, u.tls),
            Err(e) => return at(format!("{url:?}: {e}")),
        },
        CheckKind::Smtp { host, .. } | CheckKind::Tcp { host, .. } => (host.clone(), false),
    };
    let new = file.new_addresses();
    let pins: Vec<IpAddr> = match check.address {
        Some(a) => vec![a],
        None => new.clone(),
    };
    let leads = leads(zone, changes, &host);
    if let Leads::Address(ip) = leads {
        if tls {
            return at(format!(
                "this https check names the address {ip}: TLS checks the certificate against a name, and a certificate rarely names an address; write the host name in the URL (pinned to the new address before the switch all the same)"
            ));
        }
        if !new.contains(&ip) {
            return at(format!(
                "this check names the address {ip}, which no move gives (the new addresses are {}): it would check a server the migration does not send anyone to",
                if new.is_empty() { "none".to_string() } else { listed(&new) }
            ));
        }
        if let Some(other) = pins.iter().find(|p| **p != ip) {
            let spot = spots.address.unwrap_or(spots.target);
            return Some(file.error_at(
                spot,
                format!("this check names the address {ip} but would be pinned to {other} before the switch: set `address = \"{ip}\"`, or write a host name"),
            ));
        }
        return None;
    }
    if file.verify.resolvers.is_empty() {
        let line = file.spots.resolvers.map(|s| s.line).unwrap_or(0);
        return at(format!(
            "{host} is looked up through verify.resolvers after the switch, and `resolvers = []` (line {line}) lists none: the check could never run; list a resolver"
        ));
    }
    if pins.is_empty() {
        return Some(file.error_at(
            spots.at,
            "before the switch a check is pinned to the new addresses, and the moves give none (they set no A or AAAA record): set `address = ` to the new server's address in this [[check]]",
        ));
    }
    match leads {
        Leads::Address(_) => None,
        Leads::Outside => at(format!(
            "{host} is not in the zone {}: no move changes where it leads, so after the switch this check would still reach the servers it reaches now; check a name of the zone that moves",
            file.zone
        )),
        Leads::Delegated { cut } => at(format!(
            "{host} is below the delegation at {cut}: its addresses come from that zone's own servers, which this migration does not change"
        )),
        Leads::External { target, moving } => {
            if moving {
                None
            } else {
                at(format!(
                    "{host} leads to {target}, outside the zone, through CNAMEs this migration does not change: after the switch this check would still reach the servers it reaches now"
                ))
            }
        }
        Leads::Nothing { name } => at(if name.to_string().eq_ignore_ascii_case(&format!("{}.", host.trim_end_matches('.'))) {
            format!("{host} has no A or AAAA record after the switch: it cannot be looked up, so the check could never reach a server")
        } else {
            format!("{host} leads to {name}, which has no A or AAAA record after the switch: the check could never reach a server")
        }),
        Leads::Addresses {
            name,
            family,
            moving,
            all,
            stays,
            moving_types,
        } => {
            if !moving {
                let also = if moving_types.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (only its {} moves, and a check looks A up first)",
                        moving_types
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )
                };
                let via = if name.to_string().eq_ignore_ascii_case(&format!("{}.", host.trim_end_matches('.'))) {
                    String::new()
                } else {
                    format!(" (through {name})")
                };
                return at(format!(
                    "{host}{via} does not move: its {family} record{} stay{} {}{also}, so after the switch this check would reach the old server, not the new one",
                    if stays.len() == 1 { "" } else { "s" },
                    if stays.len() == 1 { "s" } else { "" },
                    stays.join(", ")
                ));
            }
            let stray: Vec<IpAddr> = pins.iter().filter(|p| !all.contains(p)).copied().collect();
            if stray.is_empty() {
                return None;
            }
            let families: Vec<&str> = [
                (all.iter().any(IpAddr::is_ipv4), "A"),
                (all.iter().any(IpAddr::is_ipv6), "AAAA"),
            ]
            .into_iter()
            .filter_map(|(has, f)| has.then_some(f))
            .collect();
            let family_note = if stray.iter().all(|p| !all.iter().any(|a| a.is_ipv4() == p.is_ipv4())) {
                format!(
                    " ({host} has no {} record after the switch)",
                    if stray[0].is_ipv4() { "A" } else { "AAAA" }
                )
            } else {
                String::new()
            };
            match (check.address, spots.address) {
                (Some(a), Some(spot)) => Some(file.error_at(
                    spot,
                    format!(
                        "address {a} is not one {host} has after the switch ({}){family_note}: the check before the switch would test a server the name does not lead to",
                        listed(&all)
                    ),
                )),
                _ => Some(file.error_at(
                    spots.at,
                    format!(
                        "before the switch this check is pinned to every new address of the moves, and {host} does not lead to {}{family_note} (it has {} {}): set `address` to one of its new addresses in this [[check]]",
                        listed(&stray),
                        families.join("/"),
                        listed(&all)
                    ),
                )),
            }
        }
    }
}

/// What the servers say now, and the other migrations, against this plan:
/// what would make it fail, each at the place of the file it concerns.
/// The caller refuses them unless told to go on.
pub fn hazards(
    file: &MigrationFile,
    zone: &Zone,
    plan: &Plan,
    observed: &Observations,
    others: &[Active<'_>],
) -> Vec<FileError> {
    let mut out = Vec::new();
    for other in others {
        for c in &plan.changes {
            let clash = other
                .plan
                .changes
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&c.name) && o.rtype == c.rtype);
            if clash {
                out.push(file.error_at(
                    move_spot(file, c),
                    format!(
                        "{} {} is also moved by migration {} ({}): two migrations on one RRset undo each other's steps; let it finish, or abort or roll it back first",
                        c.name, c.rtype, other.id, other.state
                    ),
                ));
            }
        }
    }
    if observed.at.is_none() {
        return out;
    }
    let survey = &observed.survey;
    let verify_spot = file
        .spots
        .authorities
        .or(file.spots.verify)
        .unwrap_or(file.spots.zone);
    if survey.authorities.is_empty() {
        let why = if survey.problems.is_empty() {
            String::new()
        } else {
            format!(" ({})", survey.problems.join("; "))
        };
        let why = if file.provider == crate::provider::ProviderSpec::Embedded {
            format!("{why} (with the embedded provider the authority is often this cutover: is `cutover serve` running?)")
        } else {
            why
        };
        out.push(file.error_at(
            verify_spot,
            format!(
                "no authoritative server of {} could be asked now{why}: after the switch none could show the new serial, and verification would fail and roll the switch back",
                file.zone
            ),
        ));
    }
    let provider_serial = zone.serial();
    let hint = if file.provider == crate::provider::ProviderSpec::Embedded {
        " (with the embedded provider the authority is often this cutover: is `cutover serve` running?)"
    } else {
        ""
    };
    for a in &survey.authorities {
        match (a.serial, provider_serial) {
            (None, _) => out.push(file.error_at(
                verify_spot,
                format!(
                    "authority {} gave no SOA serial now{hint}: verification needs every authority's serial to rise after the switch",
                    a.server
                ),
            )),
            (Some(served), Some(held)) if Serial(served).is_newer_than(held) => {
                out.push(file.error_at(
                    verify_spot,
                    format!(
                        "authority {} serves serial {served}, newer than the provider's {}: the switch would lower the serial there, so it would keep the old records and verification would fail",
                        a.server, held.0
                    ),
                ))
            }
            _ => {}
        }
    }
    for a in &survey.authorities {
        if a.serial.is_none() || a.serial != provider_serial.map(|s| s.0) {
            continue;
        }
        if let Some((c, seen)) = differing(plan, &a.answers, false) {
            out.push(file.error_at(
                verify_spot,
                format!(
                    "authority {} serves {} {} as {seen} at the provider's own serial, where the provider holds {}: it serves another copy of the zone, and would never serve the switch",
                    a.server,
                    c.name,
                    c.rtype,
                    c.before.as_ref().map(|b| b.values.join(" ")).unwrap_or_default()
                ),
            ));
        }
    }
    let resolver_spot = file
        .spots
        .resolvers
        .or(file.spots.verify)
        .unwrap_or(file.spots.zone);
    for r in &survey.resolvers {
        let unreachable = !r.answers.is_empty()
            && r.answers.iter().all(|a| {
                a.error.as_deref().is_some_and(|e| {
                    e == "timeout" || e == "REFUSED" || e.starts_with("network error")
                })
            });
        let default = if file.spots.resolvers.is_some() {
            ""
        } else {
            " (the default of verify.resolvers)"
        };
        if unreachable {
            let why = r.answers[0].error.clone().unwrap_or_default();
            out.push(file.error_at(
                resolver_spot,
                format!(
                    "resolver {}{default} does not answer now ({why}): verification asks it for the new values after the switch, and would fail",
                    r.server,
                ),
            ));
        } else if let Some((c, seen)) = differing(plan, &r.answers, true) {
            out.push(file.error_at(
                resolver_spot,
                format!(
                    "resolver {}{default} answers {} {} with {seen}, which the provider does not hold ({}): it does not reach this zone's servers, and would never see the switch",
                    r.server,
                    c.name,
                    c.rtype,
                    c.before.as_ref().map(|b| b.values.join(" ")).unwrap_or_default()
                ),
            ));
        }
    }
    out
}

/// Values in a comparable form: lower case, sorted.
fn normal(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = values.iter().map(|v| v.to_ascii_lowercase()).collect();
    out.sort();
    out.dedup();
    out
}

/// The first moving RRset that existed before and that these answers give
/// otherwise than the provider holds it (a resolver may also still hold
/// the new values, `cached`), with what was seen. A transport failure
/// says nothing about the data and is skipped.
fn differing<'a>(
    plan: &'a Plan,
    answers: &[crate::observe::Answered],
    cached: bool,
) -> Option<(&'a RrsetChange, String)> {
    for c in &plan.changes {
        let Some(before) = &c.before else { continue };
        let Some(seen) = answers
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(&c.name) && a.rtype == c.rtype)
        else {
            continue;
        };
        let shown = match &seen.error {
            Some(e) if e == "timeout" || e == "REFUSED" || e.starts_with("network error") => {
                continue
            }
            Some(e) => e.clone(),
            None => {
                let values = normal(&seen.values);
                if values == normal(&before.values) || (cached && values == normal(&c.after)) {
                    continue;
                }
                seen.values.join(" ")
            }
        };
        return Some((c, shown));
    }
    None
}
