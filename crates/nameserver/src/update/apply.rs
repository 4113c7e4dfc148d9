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

/// Applies `update` to `zone` for `signer` (the key `tsig::verify_request`
/// verified, `None` when unsigned) from `client`, under `policy`, with the
/// clock at `now_unix` (for the date-based serial of [`Serial::next`]).
///
/// Nothing is changed on error; on success the caller persists the diff and
/// publishes the zone (see the module docs of [`crate::update`]).
pub fn apply(
    zone: &Zone,
    update: &Update,
    signer: Option<&Name>,
    client: IpAddr,
    policy: &Policy,
    now_unix: u32,
) -> Result<Outcome, UpdateError> {
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
    for change in &update.changes {
        apply_change(&mut next, change, policy)?;
    }
    if next.is_unchanged() {
        return Ok(Outcome::Unchanged);
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
    Ok(Outcome::Changed { diff: next.diff() })
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

/// Applies one change with the special rules of §3.4.2.
fn apply_change(
    next: &mut ZoneEdit<'_>,
    change: &Change,
    policy: &Policy,
) -> Result<(), UpdateError> {
    let origin = next.origin().clone();
    match change {
        Change::Add(record) => add(next, record, policy),
        Change::DeleteRrset { name, rtype } => {
            // §3.4.2.3: the apex SOA and NS RRsets are never deleted whole.
            if *name == origin && matches!(*rtype, RecordType::SOA | RecordType::NS) {
                return Ok(());
            }
            set(next, name, *rtype, Rrset::default())
        }
        Change::DeleteName { name } => {
            for rtype in next.types(name) {
                if *name == origin && matches!(rtype, RecordType::SOA | RecordType::NS) {
                    continue;
                }
                set(next, name, rtype, Rrset::default())?;
            }
            Ok(())
        }
        Change::DeleteRecord { name, rdata } => {
            let rtype = rdata.rtype();
            // §3.4.2.4: the SOA is never deleted, the last apex NS neither.
            if rtype == RecordType::SOA {
                return Ok(());
            }
            let Some(existing) = next.get(name, rtype) else {
                return Ok(());
            };
            let Some(found) = existing
                .rdatas()
                .iter()
                .find(|r| canonical_wire(r) == canonical_wire(rdata))
                .cloned()
            else {
                return Ok(());
            };
            if *name == origin && rtype == RecordType::NS && existing.len() == 1 {
                return Ok(());
            }
            next.remove(name, &found);
            Ok(())
        }
    }
}

/// Adds one record (§3.4.2.2): the SOA only replaces, and only with a newer
/// serial; a CNAME never joins other data nor other data a CNAME; a CNAME
/// replaces a CNAME; the RRset takes the TTL of the record added.
fn add(next: &mut ZoneEdit<'_>, record: &Record, policy: &Policy) -> Result<(), UpdateError> {
    let rtype = record.rdata.rtype();
    let name = &record.name;
    if rtype == RecordType::SOA {
        let Some(new) = record.rdata.as_soa() else {
            return Ok(());
        };
        let newer = next
            .serial()
            .is_some_and(|current| Serial(new.serial).is_newer_than(current));
        if *name != *next.origin() || !newer {
            return Ok(());
        }
        return set(
            next,
            name,
            rtype,
            Rrset::new(record.ttl, record.rdata.clone()),
        );
    }
    let dnssec = |t: RecordType| matches!(t, RecordType::RRSIG | RecordType::NSEC);
    let types = next.types(name);
    if !types.is_empty() {
        let has_cname = types.contains(&RecordType::CNAME);
        let has_other = types.iter().any(|t| *t != RecordType::CNAME && !dnssec(*t));
        if rtype == RecordType::CNAME && has_other {
            return Ok(());
        }
        if rtype != RecordType::CNAME && !dnssec(rtype) && has_cname {
            return Ok(());
        }
    }
    if rtype == RecordType::CNAME {
        return set(
            next,
            name,
            rtype,
            Rrset::new(record.ttl, record.rdata.clone()),
        );
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
    set(next, name, rtype, rrset)
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
