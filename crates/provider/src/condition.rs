//! The one rule every provider applies before it writes: each change's
//! RRset must hold what the plan saw (`expect`) or already what the plan
//! wants (`set`, a change redone after a crash). Anything else is someone
//! else's edit, and the whole change set stops with a conflict.
//!
//! ```text
//!  current == set     ──▶ already done: skipped
//!  current == expect  ──▶ pending: written
//!  otherwise          ──▶ Conflict (nothing written)
//! ```
//!
//! Pure: the provider reads the current RRsets its own way (a store
//! transaction, DNS queries, an API) and passes them in.

use cutover_zone::zonefile::record_to_text;
use cutover_zone::{Name, Record, RecordType, Rrset};

use crate::{Change, ProviderError};

/// An RRset in zone-file form, records separated by "; " ("absent" when none).
pub fn rrset_text(name: &Name, rrset: Option<&Rrset>) -> String {
    match present(rrset) {
        None => "absent".into(),
        Some(rrset) => rrset
            .rdatas()
            .iter()
            .map(|rdata| {
                record_to_text(&Record {
                    name: name.clone(),
                    ttl: rrset.ttl,
                    rdata: rdata.clone(),
                })
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// An RRset with at least one record, or `None` (an empty set is absence).
pub(crate) fn present(rrset: Option<&Rrset>) -> Option<&Rrset> {
    rrset.filter(|r| !r.is_empty())
}

/// Whether two RRsets (or absences) are the same, TTL included.
pub(crate) fn same(a: Option<&Rrset>, b: Option<&Rrset>) -> bool {
    present(a) == present(b)
}

/// The changes still to write, given the RRset each one finds now (same
/// order as `changes`); a [`ProviderError::Conflict`] naming the first
/// change whose RRset is neither `expect` nor `set`.
pub(crate) fn pending<'c>(
    changes: &'c [Change],
    current: &[Option<Rrset>],
) -> Result<Vec<&'c Change>, ProviderError> {
    let mut out = Vec::new();
    for (change, now) in changes.iter().zip(current) {
        if same(now.as_ref(), change.set.as_ref()) {
            continue;
        }
        if !same(now.as_ref(), change.expect.as_ref()) {
            return Err(conflict(change, now.as_ref()));
        }
        out.push(change);
    }
    Ok(out)
}

/// The conflict error for `change`, which found `now`.
pub(crate) fn conflict(change: &Change, now: Option<&Rrset>) -> ProviderError {
    ProviderError::Conflict {
        name: change.name.clone(),
        rtype: change.rtype,
        expected: rrset_text(&change.name, change.expect.as_ref()),
        found: rrset_text(&change.name, now),
    }
}

/// Refuses a change set that names a record outside the zone or whose data
/// is of another type than the change says.
pub(crate) fn well_formed(zone: &Name, changes: &[Change]) -> Result<(), ProviderError> {
    for change in changes {
        if !zone.zone_of(&change.name) {
            return Err(ProviderError::Refused(format!(
                "{} is outside the zone {zone}",
                change.name
            )));
        }
        for rrset in [&change.expect, &change.set].into_iter().flatten() {
            if let Some(other) = rrset.rdatas().iter().find(|r| r.rtype() != change.rtype) {
                return Err(ProviderError::Refused(format!(
                    "{} {}: the change holds {} data",
                    change.name,
                    change.rtype,
                    other.rtype()
                )));
            }
        }
        if change.rtype == RecordType::SOA {
            return Err(ProviderError::Refused(format!(
                "{}: the SOA is the provider's to change, not a change set's",
                change.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_zone::Rdata;
    use std::str::FromStr;

    /// An A RRset with one address.
    fn a(ttl: u32, last: u8) -> Rrset {
        Rrset::new(ttl, Rdata::a([192, 0, 2, last].into()))
    }

    /// A change of www A from `expect` to `set`.
    fn change(expect: Option<Rrset>, set: Option<Rrset>) -> Change {
        Change {
            name: Name::from_str("www.example.test.").unwrap(),
            rtype: RecordType::A,
            expect,
            set,
        }
    }

    #[test]
    fn each_state_is_judged() {
        let changes = [
            change(Some(a(60, 1)), Some(a(60, 2))),
            change(None, Some(a(60, 3))),
            change(Some(a(60, 4)), None),
        ];
        let at_expect = [Some(a(60, 1)), None, Some(a(60, 4))];
        assert_eq!(
            pending(&changes, &at_expect).unwrap().len(),
            3,
            "all pending"
        );
        let at_set = [Some(a(60, 2)), Some(a(60, 3)), None];
        assert!(pending(&changes, &at_set).unwrap().is_empty(), "all done");
        let ttl_changed = [Some(a(300, 1)), None, Some(a(60, 4))];
        match pending(&changes, &ttl_changed) {
            Err(ProviderError::Conflict {
                expected, found, ..
            }) => {
                assert_eq!(expected, "www.example.test. 60 IN A 192.0.2.1");
                assert_eq!(found, "www.example.test. 300 IN A 192.0.2.1");
            }
            other => panic!("expected a conflict on the TTL, saw {other:?}"),
        }
        let created = [Some(a(60, 1)), Some(a(60, 9)), Some(a(60, 4))];
        let err = pending(&changes, &created).unwrap_err().to_string();
        assert!(
            err.contains("expected absent, found www.example.test. 60 IN A 192.0.2.9"),
            "expected the conflict to say what was found, saw {err}"
        );
    }
}
