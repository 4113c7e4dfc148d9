//! The semantic rules a zone version must pass, written once over a view of
//! that version, so the whole-zone check ([`Zone::check`](crate::Zone::check))
//! and an edit's local check ([`ZoneEdit::check`](crate::ZoneEdit::check))
//! cannot drift apart. Which names to check is the caller's business.

use hickory_proto::rr::{Name, RecordType};

use crate::rdata::{Rdata, DNAME};
use crate::zone::{Rrset, ZoneError};

/// A version of a zone as the rules read it.
pub(crate) trait Version {
    /// The zone's origin.
    fn origin(&self) -> &Name;
    /// The RRset of a name and type, if it has data.
    fn rrset(&self, name: &Name, rtype: RecordType) -> Option<&Rrset>;
    /// The types that own data at `name`, by type code.
    fn types(&self, name: &Name) -> Vec<RecordType>;
}

/// The apex: exactly one SOA, and NS records.
pub(crate) fn check_apex(version: &impl Version, errors: &mut Vec<ZoneError>) {
    let origin = version.origin();
    match version.rrset(origin, RecordType::SOA) {
        None => errors.push(ZoneError::NoSoa {
            origin: origin.clone(),
        }),
        Some(set) if set.len() > 1 => errors.push(ZoneError::BadSoa {
            name: origin.clone(),
            reason: "more than one SOA record at the apex",
        }),
        Some(_) => {}
    }
    if version.rrset(origin, RecordType::NS).is_none() {
        errors.push(ZoneError::NoApexNs {
            origin: origin.clone(),
        });
    }
}

/// One name: no SOA below the apex, a CNAME alone and single, one DNAME at
/// most, and glue for the NS it holds.
pub(crate) fn check_node(version: &impl Version, name: &Name, errors: &mut Vec<ZoneError>) {
    if name != version.origin() && version.rrset(name, RecordType::SOA).is_some() {
        errors.push(ZoneError::BadSoa {
            name: name.clone(),
            reason: "SOA record below the zone apex",
        });
    }
    if let Some(cname) = version.rrset(name, RecordType::CNAME) {
        if cname.len() > 1 {
            errors.push(ZoneError::MultipleCnames { name: name.clone() });
        }
        let other = version
            .types(name)
            .into_iter()
            .find(|t| !matches!(*t, RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC));
        if let Some(other) = other {
            errors.push(ZoneError::CnameAndOtherData {
                name: name.clone(),
                other,
            });
        }
    }
    if version
        .rrset(name, RecordType::from(DNAME))
        .is_some_and(|s| s.len() > 1)
    {
        errors.push(ZoneError::MultipleDnames { name: name.clone() });
    }
    check_glue(version, name, errors);
}

/// The NS at one name (none when it is below a delegation): every target
/// inside the zone needs an address, since nobody else can give it.
pub(crate) fn check_glue(version: &impl Version, name: &Name, errors: &mut Vec<ZoneError>) {
    let Some(ns) = version.rrset(name, RecordType::NS) else {
        return;
    };
    if is_below_cut(version, name) {
        return;
    }
    for target in ns.rdatas().iter().filter_map(Rdata::target) {
        let needs_glue = version.origin().zone_of(&target);
        let has_address = version.rrset(&target, RecordType::A).is_some()
            || version.rrset(&target, RecordType::AAAA).is_some();
        if needs_glue && !has_address {
            errors.push(ZoneError::MissingGlue {
                name: name.clone(),
                target,
            });
        }
    }
}

/// True when `name` is strictly below a delegation (NS not at the apex).
pub(crate) fn is_below_cut(version: &impl Version, name: &Name) -> bool {
    let first = version.origin().num_labels() + 1;
    (first..name.num_labels()).any(|labels| {
        let ancestor = name.trim_to(usize::from(labels));
        version.rrset(&ancestor, RecordType::NS).is_some()
    })
}
