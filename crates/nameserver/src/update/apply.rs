//! Applying a parsed UPDATE to a zone (RFC 2136 §3): prerequisites, prescan,
//! the changes with the RFC's special rules, the serial, the caps and the
//! zone checks — on a [`ZoneEdit`] over the borrowed zone (the touched
//! RRsets only, never a copy of the zone), so a refusal changes nothing and
//! an update costs what it touches.

use std::net::IpAddr;

use cutover_zone::zone::ZoneError;
use cutover_zone::{Name, Rdata, Record, RecordType, Rrset, Serial, Zone, ZoneDiff, ZoneEdit};

use super::message::{Change, ParseError, Prerequisite, Update};
use super::policy::Policy;
use super::UpdateRcode;

/// What an accepted update does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changed (every change was a no-op or ignored by the RFC's
    /// rules): answer NOERROR, write nothing, keep the serial.
    Unchanged,
    /// The diff from the current version to the next (serial raised,
    /// checks passed): the caller writes it with `Store::apply` in one
    /// transaction, then applies it to its zone (`edit::apply_in_place`)
    /// and publishes that.
    Changed {
        /// From the current version to the next.
        diff: ZoneDiff,
    },
}

/// Why an update was not applied; [`UpdateError::rcode`] is the answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The message does not parse.
    #[error(transparent)]
    Malformed(#[from] ParseError),
    /// The zone section names another zone than the one given.
    #[error("the update is for {requested}, not {zone}")]
    NotAuth {
        /// The zone named in the message.
        requested: Name,
        /// The zone it was applied to.
        zone: Name,
    },
    /// No rule grants this key or address anything in the zone.
    #[error("{who} may not update {zone}")]
    NoAccess {
        /// `key NAME` or `unsigned from ADDRESS`.
        who: String,
        /// The zone.
        zone: Name,
    },
    /// A change the key or address's rules do not cover.
    #[error("{who} may not change {name} {rtype}")]
    Denied {
        /// `key NAME` or `unsigned from ADDRESS`.
        who: String,
        /// Owner.
        name: Name,
        /// Type, or ANY for a delete of all RRsets at a name.
        rtype: RecordType,
    },
    /// More records than [`Policy::max_records`].
    #[error("{count} records in one update, at most {max} allowed")]
    TooManyRecords {
        /// Prerequisites plus changes.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// An RRset would grow past [`Policy::max_rrset`].
    #[error("{name} {rtype} would hold {count} records, at most {max} allowed")]
    RrsetTooLarge {
        /// Owner.
        name: Name,
        /// Type.
        rtype: RecordType,
        /// Its size after the update.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// A name outside the zone.
    #[error("{name} is outside the zone {zone}")]
    NotZone {
        /// The name.
        name: Name,
        /// The zone.
        zone: Name,
    },
    /// "Name is in use" failed.
    #[error("prerequisite failed: {name} owns no records")]
    NameNotInUse {
        /// The name.
        name: Name,
    },
    /// "Name is not in use" failed.
    #[error("prerequisite failed: {name} owns records")]
    NameInUse {
        /// The name.
        name: Name,
    },
    /// "RRset exists" (either form) failed.
    #[error("prerequisite failed: {name} {rtype} does not exist with the data required")]
    RrsetMissing {
        /// Owner.
        name: Name,
        /// Type.
        rtype: RecordType,
    },
    /// "RRset does not exist" failed.
    #[error("prerequisite failed: {name} {rtype} exists")]
    RrsetExists {
        /// Owner.
        name: Name,
        /// Type.
        rtype: RecordType,
    },
    /// The zone would fail its checks.
    #[error("the update would make the zone invalid: {0}")]
    Invalid(ZoneError),
    /// A record the zone model refuses (it cannot happen after the NOTZONE
    /// prescan, but is not unwrapped).
    #[error("cannot add {name}: {error}")]
    Rejected {
        /// Owner.
        name: Name,
        /// What the zone said.
        error: ZoneError,
    },
}

impl UpdateError {
    /// The RCODE to answer with.
    pub fn rcode(&self) -> UpdateRcode {
        match self {
            UpdateError::Malformed(e) => e.rcode(),
            UpdateError::NotAuth { .. } => UpdateRcode::NotAuth,
            UpdateError::NotZone { .. } => UpdateRcode::NotZone,
            UpdateError::NameNotInUse { .. } => UpdateRcode::NxDomain,
            UpdateError::NameInUse { .. } => UpdateRcode::YxDomain,
            UpdateError::RrsetMissing { .. } => UpdateRcode::NxRrset,
            UpdateError::RrsetExists { .. } => UpdateRcode::YxRrset,
            UpdateError::NoAccess { .. }
            | UpdateError::Denied { .. }
            | UpdateError::TooManyRecords { .. }
            | UpdateError::RrsetTooLarge { .. }
            | UpdateError::Invalid(_)
            | UpdateError::Rejected { .. } => UpdateRcode::Refused,
        }
    }
}

/// A change the RFC's rules drop without an error (§3.4.2): a wire UPDATE is
/// answered NOERROR all the same (RFC 2136 says so), but a person who asked
/// for the change is told it was not made, and why ([`apply_noting`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// Data added at a name that holds a CNAME.
    #[error("{name} holds a CNAME, and a name with a CNAME holds no other data (RFC 1034 §3.6.2), so its {rtype} record was not added")]
    DataBesideCname {
        /// The owner.
        name: Name,
        /// The type that was to be added.
        rtype: RecordType,
    },
    /// A CNAME added at a name that holds other data.
    #[error("{name} holds other data ({}), and a CNAME cannot stand beside other data (RFC 1034 §3.6.2), so the CNAME was not added", types_text(.types))]
    CnameBesideData {
        /// The owner.
        name: Name,
        /// The types already there.
        types: Vec<RecordType>,
    },
    /// A delete of the apex SOA or NS RRset as a whole.
    #[error(
        "the {rtype} RRset at the apex {name} is never deleted as a whole (RFC 2136 §3.4.2.3)"
    )]
    ApexRrset {
        /// The apex.
        name: Name,
        /// SOA or NS.
        rtype: RecordType,
    },
    /// A delete of the SOA record.
    #[error("the SOA record of {name} is never deleted (RFC 2136 §3.4.2.4)")]
    SoaDelete {
        /// The apex.
        name: Name,
    },
    /// A delete of the last NS record at the apex.
    #[error("{name} would be left without an NS record, so the last one is never deleted (RFC 2136 §3.4.2.4)")]
    LastApexNs {
        /// The apex.
        name: Name,
    },
    /// An SOA added elsewhere than at the apex, or without a newer serial.
    #[error("an SOA record replaces the zone's only at the apex {origin} and only with a serial newer than {current} (RFC 2136 §3.4.2.2)")]
    SoaNotNewer {
        /// The zone's apex.
        origin: Name,
        /// The zone's serial now.
        current: Serial,
    },
    /// A delete of a record or RRset that is not there.
    #[error("{name} has no {rtype} record to delete")]
    NothingToDelete {
        /// The owner.
        name: Name,
        /// The type.
        rtype: RecordType,
    },
}

/// Types as "A, MX".
fn types_text(types: &[RecordType]) -> String {
    types
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies `update` to `zone` for `signer` (the key `tsig::verify_request`
/// verified, `None` when unsigned) from `client`, under `policy`, with the
/// clock at `now_unix` (for the date-based serial of [`Serial::next`]).
///
/// Nothing is changed on error; on success the caller persists the diff and
/// publishes the zone (see the module docs of [`crate::update`]). Changes
/// the RFC's rules drop are dropped silently, as RFC 2136 says a server
/// does; [`apply_noting`] also returns them.
pub fn apply(
    zone: &Zone,
    update: &Update,
    signer: Option<&Name>,
    client: IpAddr,
    policy: &Policy,
    now_unix: u32,
) -> Result<Outcome, UpdateError> {
    apply_noting(zone, update, signer, client, policy, now_unix).map(|(outcome, _)| outcome)
}

/// [`apply`], and the changes its rules dropped, in the update's order
/// (the operator's edits refuse when there is any: see
/// [`crate::update::operator`]).
pub fn apply_noting(
    zone: &Zone,
    update: &Update,
    signer: Option<&Name>,
    client: IpAddr,
    policy: &Policy,
    now_unix: u32,
) -> Result<(Outcome, Vec<Ignored>), UpdateError> {
    let origin = zone.origin();
    if update.zone != *origin {
        return Err(UpdateError::NotAuth {
            requested: update.zone.clone(),
            zone: origin.clone(),
        });
    }
    let who = || match signer {
        Some(key) => format!("key {key}"),
        None => format!("unsigned from {client}"),
    };
    let rules: Vec<_> = policy.rules_for(origin, signer, client).collect();
    if rules.is_empty() {
        return Err(UpdateError::NoAccess {
            who: who(),
            zone: origin.clone(),
        });
    }
    let count = update.prerequisites.len() + update.changes.len();
    if count > policy.max_records {
        return Err(UpdateError::TooManyRecords {
            count,
            max: policy.max_records,
        });
    }

    for prerequisite in &update.prerequisites {
        check_prerequisite(zone, prerequisite)?;
    }

    // Prescan (§3.4.1): every name in the zone, every change allowed.
    for change in &update.changes {
        let (name, rtype) = match change {
            Change::Add(record) => (&record.name, Some(record.rdata.rtype())),
            Change::DeleteRrset { name, rtype } => (name, Some(*rtype)),
            Change::DeleteName { name } => (name, None),
            Change::DeleteRecord { name, rdata } => (name, Some(rdata.rtype())),
        };
        in_zone(zone, name)?;
        if !rules.iter().any(|rule| rule.allows(name, rtype)) {
            return Err(UpdateError::Denied {
                who: who(),
                name: name.clone(),
                rtype: rtype.unwrap_or(RecordType::ANY),
            });
        }
    }

    let mut next = ZoneEdit::new(zone);
    let mut ignored = Vec::new();
    for change in &update.changes {
        if let Some(dropped) = apply_change(&mut next, change, policy)? {
            ignored.push(dropped);
        }
    }
    if next.is_unchanged() {
        return Ok((Outcome::Unchanged, ignored));
    }
    let old_serial = zone.serial().unwrap_or(Serial(0));
    let explicit = next
        .serial()
        .is_some_and(|serial| serial.is_newer_than(old_serial));
    if !explicit {
        next.set_serial(old_serial.next(Some(now_unix)));
    }
    if let Some(error) = next.check().into_iter().next() {
        return Err(UpdateError::Invalid(error));
    }
    Ok((Outcome::Changed { diff: next.diff() }, ignored))
}

/// NOTZONE unless `name` is at or below the origin.
fn in_zone(zone: &Zone, name: &Name) -> Result<(), UpdateError> {
    if zone.contains_name(name) {
        Ok(())
    } else {
        Err(UpdateError::NotZone {
            name: name.clone(),
            zone: zone.origin().clone(),
        })
    }
}

/// Checks one prerequisite against the zone as it is (§3.2.5).
fn check_prerequisite(zone: &Zone, prerequisite: &Prerequisite) -> Result<(), UpdateError> {
    match prerequisite {
        Prerequisite::NameInUse { name } => {
            in_zone(zone, name)?;
            if zone.node(name).is_none() {
                return Err(UpdateError::NameNotInUse { name: name.clone() });
            }
        }
        Prerequisite::NameNotInUse { name } => {
            in_zone(zone, name)?;
            if zone.node(name).is_some() {
                return Err(UpdateError::NameInUse { name: name.clone() });
            }
        }
        Prerequisite::RrsetExists { name, rtype } => {
            in_zone(zone, name)?;
            if zone.get(name, *rtype).is_none() {
                return Err(UpdateError::RrsetMissing {
                    name: name.clone(),
                    rtype: *rtype,
                });
            }
        }
        Prerequisite::RrsetDoesNotExist { name, rtype } => {
            in_zone(zone, name)?;
            if zone.get(name, *rtype).is_some() {
                return Err(UpdateError::RrsetExists {
                    name: name.clone(),
                    rtype: *rtype,
                });
            }
        }
        Prerequisite::RrsetEquals {
            name,
            rtype,
            rdatas,
        } => {
            in_zone(zone, name)?;
            let equal = zone
                .get(name, *rtype)
                .is_some_and(|set| same_data(set.rdatas(), rdatas));
            if !equal {
                return Err(UpdateError::RrsetMissing {
                    name: name.clone(),
                    rtype: *rtype,
                });
            }
        }
    }
    Ok(())
}

/// True when two sorted, duplicate-free data lists hold the same records,
/// comparing names inside the data without regard to case (as DNS does).
fn same_data(zone: &[Rdata], wanted: &[Rdata]) -> bool {
    let canonical = |list: &[Rdata]| {
        let mut v: Vec<Vec<u8>> = list.iter().map(canonical_wire).collect();
        v.sort();
        v.dedup();
        v
    };
    canonical(zone) == canonical(wanted)
}

/// The data with the names of NS/CNAME/PTR/DNAME/MX/SRV targets and SOA
/// names lowercased, for comparisons.
fn canonical_wire(rdata: &Rdata) -> Vec<u8> {
    let mut wire = rdata.wire().to_vec();
    let mut lower_name_at = |mut i: usize| -> usize {
        while let Some(&len) = wire.get(i) {
            let len = usize::from(len);
            if len == 0 || len & 0xc0 != 0 {
                return i + 1;
            }
            for b in wire.iter_mut().skip(i + 1).take(len) {
                b.make_ascii_lowercase();
            }
            i += 1 + len;
        }
        i
    };
    if rdata.rtype() == RecordType::SOA {
        let after_mname = lower_name_at(0);
        lower_name_at(after_mname);
    } else if let Some(offset) = rdata.target_offset() {
        lower_name_at(offset);
    }
    wire
}

/// Applies one change with the special rules of §3.4.2; a change those
/// rules drop comes back as [`Ignored`].
fn apply_change(
    next: &mut ZoneEdit<'_>,
    change: &Change,
    policy: &Policy,
) -> Result<Option<Ignored>, UpdateError> {
    let origin = next.origin().clone();
    match change {
        Change::Add(record) => add(next, record, policy),
        Change::DeleteRrset { name, rtype } => {
            // §3.4.2.3: the apex SOA and NS RRsets are never deleted whole.
            if *name == origin && matches!(*rtype, RecordType::SOA | RecordType::NS) {
                return Ok(Some(Ignored::ApexRrset {
                    name: origin,
                    rtype: *rtype,
                }));
            }
            if next.get(name, *rtype).is_none() {
                return Ok(Some(Ignored::NothingToDelete {
                    name: name.clone(),
                    rtype: *rtype,
                }));
            }
            set(next, name, *rtype, Rrset::default()).map(|()| None)
        }
        Change::DeleteName { name } => {
            let mut kept = None;
            for rtype in next.types(name) {
                if *name == origin && matches!(rtype, RecordType::SOA | RecordType::NS) {
                    kept.get_or_insert(Ignored::ApexRrset {
                        name: origin.clone(),
                        rtype,
                    });
                    continue;
                }
                set(next, name, rtype, Rrset::default())?;
            }
            Ok(kept)
        }
        Change::DeleteRecord { name, rdata } => {
            let rtype = rdata.rtype();
            // §3.4.2.4: the SOA is never deleted, the last apex NS neither.
            if rtype == RecordType::SOA {
                return Ok(Some(Ignored::SoaDelete { name: origin }));
            }
            let nothing = || {
                Some(Ignored::NothingToDelete {
                    name: name.clone(),
                    rtype,
                })
            };
            let Some(existing) = next.get(name, rtype) else {
                return Ok(nothing());
            };
            let Some(found) = existing
                .rdatas()
                .iter()
                .find(|r| canonical_wire(r) == canonical_wire(rdata))
                .cloned()
            else {
                return Ok(nothing());
            };
            if *name == origin && rtype == RecordType::NS && existing.len() == 1 {
                return Ok(Some(Ignored::LastApexNs { name: origin }));
            }
            next.remove(name, &found);
            Ok(None)
        }
    }
}

/// Adds one record (§3.4.2.2): the SOA only replaces, and only with a newer
/// serial; a CNAME never joins other data nor other data a CNAME; a CNAME
/// replaces a CNAME; the RRset takes the TTL of the record added.
fn add(
    next: &mut ZoneEdit<'_>,
    record: &Record,
    policy: &Policy,
) -> Result<Option<Ignored>, UpdateError> {
    let rtype = record.rdata.rtype();
    let name = &record.name;
    if rtype == RecordType::SOA {
        let current = next.serial().unwrap_or(Serial(0));
        let newer = record
            .rdata
            .as_soa()
            .is_some_and(|new| Serial(new.serial).is_newer_than(current));
        if *name != *next.origin() || !newer {
            return Ok(Some(Ignored::SoaNotNewer {
                origin: next.origin().clone(),
                current,
            }));
        }
        return set(
            next,
            name,
            rtype,
            Rrset::new(record.ttl, record.rdata.clone()),
        )
        .map(|()| None);
    }
    let dnssec = |t: RecordType| matches!(t, RecordType::RRSIG | RecordType::NSEC);
    let types = next.types(name);
    if !types.is_empty() {
        let has_cname = types.contains(&RecordType::CNAME);
        let other: Vec<RecordType> = types
            .iter()
            .copied()
            .filter(|t| *t != RecordType::CNAME && !dnssec(*t))
            .collect();
        if rtype == RecordType::CNAME && !other.is_empty() {
            return Ok(Some(Ignored::CnameBesideData {
                name: name.clone(),
                types: other,
            }));
        }
        if rtype != RecordType::CNAME && !dnssec(rtype) && has_cname {
            return Ok(Some(Ignored::DataBesideCname {
                name: name.clone(),
                rtype,
            }));
        }
    }
    if rtype == RecordType::CNAME {
        return set(
            next,
            name,
            rtype,
            Rrset::new(record.ttl, record.rdata.clone()),
        )
        .map(|()| None);
    }
    let mut rrset = next.get(name, rtype).cloned().unwrap_or_default();
    rrset.ttl = record.ttl;
    rrset.insert(record.rdata.clone());
    if rrset.len() > policy.max_rrset {
        return Err(UpdateError::RrsetTooLarge {
            name: name.clone(),
            rtype,
            count: rrset.len(),
            max: policy.max_rrset,
        });
    }
    set(next, name, rtype, rrset).map(|()| None)
}

/// Replaces an RRset (an empty one deletes it).
fn set(
    next: &mut ZoneEdit<'_>,
    name: &Name,
    rtype: RecordType,
    rrset: Rrset,
) -> Result<(), UpdateError> {
    next.set(name, rtype, rrset)
        .map_err(|error| UpdateError::Rejected {
            name: name.clone(),
            error,
        })
}
