//! The difference between two versions of a zone: the unit shared by the
//! store's journal, IXFR, dynamic updates and migrations.
//!
//! A diff has the shape of one IXFR "difference sequence" (RFC 1995 §4): the
//! records removed (the old SOA first) and the records added (the new SOA
//! first). A TTL change of an RRset is a removal and an addition of each of
//! its records.

use std::collections::BTreeSet;

use hickory_proto::rr::RecordType;

use crate::serial::Serial;
use crate::zone::{Record, Zone};

/// Records removed and added between two serials of one zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneDiff {
    /// Serial of the version this applies to.
    pub from: Serial,
    /// Serial of the version it produces.
    pub to: Serial,
    /// Records removed (the old SOA first, when the SOA changed).
    pub removed: Vec<Record>,
    /// Records added (the new SOA first, when the SOA changed).
    pub added: Vec<Record>,
}

/// Why a diff does not apply to a zone.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiffError {
    /// The zone is not at the serial the diff starts from.
    #[error("the diff starts at serial {expected}, the zone is at {actual}")]
    SerialMismatch {
        /// The diff's `from`.
        expected: Serial,
        /// The zone's serial.
        actual: Serial,
    },
    /// A record to remove is not in the zone.
    #[error("cannot remove {0:?}: not in the zone")]
    Missing(Box<Record>),
    /// A record added is invalid for the zone.
    #[error(transparent)]
    Zone(#[from] crate::zone::ZoneError),
}

impl ZoneDiff {
    /// The diff that turns `old` into `new` (both of one origin).
    pub fn between(old: &Zone, new: &Zone) -> ZoneDiff {
        let old_set: BTreeSet<RecordKey> = old.records().map(RecordKey).collect();
        let new_set: BTreeSet<RecordKey> = new.records().map(RecordKey).collect();
        let mut removed: Vec<Record> = old_set.difference(&new_set).map(|k| k.0.clone()).collect();
        let mut added: Vec<Record> = new_set.difference(&old_set).map(|k| k.0.clone()).collect();
        let soa_first = |v: &mut Vec<Record>| {
            v.sort_by_key(|r| r.rdata.rtype() != RecordType::SOA);
        };
        soa_first(&mut removed);
        soa_first(&mut added);
        ZoneDiff {
            from: old.serial().unwrap_or(Serial(0)),
            to: new.serial().unwrap_or(Serial(0)),
            removed,
            added,
        }
    }

    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }

    /// Applies the diff to `zone`, all or nothing.
    pub fn apply_to(&self, zone: &mut Zone) -> Result<(), DiffError> {
        let actual = zone.serial().unwrap_or(Serial(0));
        if actual != self.from {
            return Err(DiffError::SerialMismatch {
                expected: self.from,
                actual,
            });
        }
        let mut next = zone.clone();
        for r in &self.removed {
            let present = next
                .get(&r.name, r.rdata.rtype())
                .is_some_and(|s| s.ttl == r.ttl && s.contains(&r.rdata));
            if !present || !next.remove(&r.name, &r.rdata) {
                return Err(DiffError::Missing(Box::new(r.clone())));
            }
        }
        for r in &self.added {
            if let Some(old_ttl) = next.add(r.clone())? {
                // A TTL change arrives as remove-all then add-all; when only
                // part was removed, the new TTL wins for the whole set.
                let _ = old_ttl;
                let mut set = next
                    .get(&r.name, r.rdata.rtype())
                    .cloned()
                    .unwrap_or_default();
                set.ttl = r.ttl;
                next.set_rrset(&r.name, r.rdata.rtype(), set)?;
            }
        }
        *zone = next;
        Ok(())
    }
}

/// A record ordered by owner, type, data and TTL, for set differences.
#[derive(PartialEq, Eq)]
struct RecordKey(Record);

impl Ord for RecordKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.0.name, &self.0.rdata, self.0.ttl).cmp(&(&other.0.name, &other.0.rdata, other.0.ttl))
    }
}

impl PartialOrd for RecordKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdata::{Rdata, Soa};
    use hickory_proto::rr::Name;
    use std::str::FromStr;

    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn zone(serial: u32, www: [u8; 4], ttl: u32) -> Zone {
        let mut z = Zone::new(n("example.com."));
        let soa = Soa {
            mname: n("ns1.example.com."),
            rname: n("h.example.com."),
            serial,
            refresh: 1,
            retry: 1,
            expire: 1,
            minimum: 1,
        };
        z.add(Record {
            name: n("example.com."),
            ttl: 60,
            rdata: Rdata::soa(&soa),
        })
        .unwrap();
        z.add(Record {
            name: n("www.example.com."),
            ttl,
            rdata: Rdata::a(www.into()),
        })
        .unwrap();
        z.add(Record {
            name: n("www.example.com."),
            ttl,
            rdata: Rdata::a([10, 0, 0, 9].into()),
        })
        .unwrap();
        z
    }

    #[test]
    fn diff_then_apply_reaches_the_new_version() {
        let old = zone(1, [192, 0, 2, 1], 3600);
        let new = zone(2, [198, 51, 100, 1], 60);
        let diff = ZoneDiff::between(&old, &new);
        assert_eq!(diff.removed[0].rdata.rtype(), RecordType::SOA);
        assert_eq!(diff.added[0].rdata.rtype(), RecordType::SOA);
        assert_eq!(diff.removed.len(), 3, "old SOA and both old-TTL records");
        let mut z = old.clone();
        diff.apply_to(&mut z).unwrap();
        assert_eq!(z, new);
    }

    #[test]
    fn a_diff_for_another_serial_changes_nothing() {
        let old = zone(1, [192, 0, 2, 1], 3600);
        let new = zone(2, [198, 51, 100, 1], 60);
        let diff = ZoneDiff::between(&old, &new);
        let mut z = new.clone();
        assert!(matches!(
            diff.apply_to(&mut z),
            Err(DiffError::SerialMismatch { .. })
        ));
        assert_eq!(z, new);
    }
}
