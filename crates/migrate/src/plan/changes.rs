//! Which RRsets a migration changes: every A/AAAA holding a moving
//! address (several moves over one RRset compose), SPF terms naming it
//! when asked, and the RRsets listed explicitly.

use std::net::IpAddr;

use cutover_zone::zonefile::rdata_to_text;
use cutover_zone::{Rdata, RecordType, Rrset, Zone};

use super::{warnings, RrsetChange, RrsetText, Warning};
use crate::file::{address_of, AfterTtl, FileError, MigrationFile, Move};

/// True when an A or AAAA record of the zone holds `address`.
pub(super) fn holds(zone: &Zone, address: IpAddr) -> bool {
    zone.nodes().any(|(_, node)| {
        node.rrsets()
            .any(|(_, set)| set.rdatas().iter().any(|r| address_of(r) == Some(address)))
    })
}

/// The RRset changes the moves make; what the zone makes impossible is
/// refused at the move's place in the file. `each_move_here`: a move by
/// address that no record of this zone holds is refused (one zone); with
/// several, the caller asks that some zone holds it.
pub(super) fn changes(
    file: &MigrationFile,
    zone: &Zone,
    warnings: &mut Vec<Warning>,
    each_move_here: bool,
) -> Result<Vec<RrsetChange>, FileError> {
    let mut out: Vec<RrsetChange> = Vec::new();
    // A new RRset has no original TTL: it ends at an hour (or the low TTL
    // if that is higher), the common default of zone files.
    let final_ttl = |before: Option<&Rrset>| match file.ttl.after {
        AfterTtl::Fixed(t) => t,
        AfterTtl::Original => before.map(|s| s.ttl).unwrap_or(file.ttl.during.max(3600)),
    };
    // The place of the i-th move.
    let spot = |i: usize| {
        file.spots
            .moves
            .get(i)
            .map(|m| m.subject)
            .unwrap_or_default()
    };
    let push =
        |change: RrsetChange, i: usize, out: &mut Vec<RrsetChange>| -> Result<(), FileError> {
            if let Some(existing) = out
                .iter_mut()
                .find(|c| c.name.eq_ignore_ascii_case(&change.name) && c.rtype == change.rtype)
            {
                // Address moves over one RRset are composed before this point;
                // an explicit move of an RRset already moving is ambiguous.
                return Err(file.error_at(
                    spot(i),
                    format!(
                        "{} {} already moves by address ({}): set it by one move only",
                        existing.name, change.rtype, existing.reason
                    ),
                ));
            }
            out.push(change);
            Ok(())
        };
    // Address moves first, composed: one RRset holding several moving
    // addresses becomes one change.
    let address_moves: Vec<(usize, IpAddr, IpAddr, bool)> = file
        .moves
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match m {
            Move::Address { from, to, spf } => Some((i, *from, *to, *spf)),
            Move::Explicit { .. } => None,
        })
        .collect();
    for (i, from, _, _) in address_moves.iter().filter(|_| each_move_here) {
        if !holds(zone, *from) {
            return Err(file.error_at(
                spot(*i),
                format!(
                    "no A or AAAA record in {} holds {from}: nothing to move",
                    file.zone
                ),
            ));
        }
    }
    for (owner, node) in zone.nodes() {
        for (rtype, set) in node.rrsets() {
            let mut moved: Option<Rrset> = None;
            let mut reasons = Vec::new();
            match rtype {
                RecordType::A | RecordType::AAAA => {
                    for (_, from, to, _) in &address_moves {
                        let old = Rdata::a_or_aaaa(*from);
                        if set.contains(&old) {
                            let target = moved.get_or_insert_with(|| set.clone());
                            target.remove(&old);
                            target.insert(Rdata::a_or_aaaa(*to));
                            reasons.push(format!("holds {from}"));
                        }
                    }
                }
                RecordType::TXT | RecordType::Unknown(99) => {
                    for (_, from, to, spf) in &address_moves {
                        let base = moved.clone().unwrap_or_else(|| set.clone());
                        if let Some(rewritten) = warnings::spf_rewrite(&base, *from, *to) {
                            if *spf {
                                moved = Some(rewritten);
                                reasons.push(format!("SPF term naming {from}"));
                            } else {
                                warnings.push(Warning::SpfOffered {
                                    name: owner.to_string(),
                                    from: *from,
                                    to: *to,
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
            if let Some(after) = moved {
                let first = address_moves.first().map(|m| m.0).unwrap_or(0);
                push(
                    RrsetChange {
                        name: owner.to_string(),
                        rtype: rtype.to_string(),
                        before: Some(RrsetText::of(set)),
                        after: after.rdatas().iter().map(rdata_to_text).collect(),
                        final_ttl: final_ttl(Some(set)),
                        reason: reasons.join(", "),
                        zone: None,
                    },
                    first,
                    &mut out,
                )?;
            }
        }
    }
    for (i, m) in file.moves.iter().enumerate() {
        let Move::Explicit {
            name,
            rtype,
            rdatas,
            ..
        } = m
        else {
            continue;
        };
        // A CNAME cannot share its name with other data (RFC 1034 §3.6.2),
        // and a move only replaces one RRset: refuse the plan rather than a
        // switch the provider would reject.
        if let Some(node) = zone.node(name) {
            let clash = node.rrsets().map(|(t, _)| t).find(|t| {
                *t != *rtype
                    && (*rtype == RecordType::CNAME || *t == RecordType::CNAME)
                    && !matches!(t, RecordType::RRSIG | RecordType::NSEC)
            });
            if let Some(other) = clash {
                return Err(file.error_at(
                    spot(i),
                    format!(
                        "{name} {rtype} cannot be set: {name} has {other} records, and a CNAME cannot share its name with other data; move or remove them first"
                    ),
                ));
            }
        }
        let before = zone.get(name, *rtype);
        let mut after = Rrset::default();
        for r in rdatas {
            after.insert(r.clone());
        }
        if let Some(b) = before {
            if b.rdatas() == after.rdatas() {
                warnings.push(Warning::AlreadyInPlace {
                    name: name.to_string(),
                    rtype: rtype.to_string(),
                });
            }
        }
        push(
            RrsetChange {
                name: name.to_string(),
                rtype: rtype.to_string(),
                before: before.map(RrsetText::of),
                after: after.rdatas().iter().map(rdata_to_text).collect(),
                final_ttl: final_ttl(before),
                reason: "listed in the migration file".into(),
                zone: None,
            },
            i,
            &mut out,
        )?;
    }
    Ok(out)
}

/// A/AAAA RDATA of an address.
trait AddressRdata {
    /// The A (IPv4) or AAAA (IPv6) record of an address.
    fn a_or_aaaa(ip: IpAddr) -> Rdata;
}

impl AddressRdata for Rdata {
    fn a_or_aaaa(ip: IpAddr) -> Rdata {
        match ip {
            IpAddr::V4(v4) => Rdata::a(v4),
            IpAddr::V6(v6) => Rdata::aaaa(v6),
        }
    }
}
