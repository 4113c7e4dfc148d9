//! The catalog: the set of zone snapshots served, and the choice of the zone
//! that answers a name (the longest match, so a served child zone wins over
//! its served parent).
//!
//! A catalog is immutable; `with_zone` and `without_zone` build a new one,
//! which the server publishes atomically. A secondary zone whose expire
//! timer ran out is kept but marked expired (`with_expired`): it is
//! answered SERVFAIL until a new version of it is published.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use cutover_zone::Name;

use crate::snapshot::{NameHasher, ZoneSnapshot};
use crate::wire::NameBuf;

/// Every zone served, for longest-match selection.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// The snapshots, in the order given.
    zones: Vec<Arc<ZoneSnapshot>>,
    /// Lowercased wire apex to position in `zones`.
    by_apex: HashMap<Box<[u8]>, usize, BuildHasherDefault<NameHasher>>,
    /// Lowercased wire apexes of the zones expired (answered SERVFAIL).
    expired: Vec<Box<[u8]>>,
}

impl Catalog {
    /// A catalog of these zones (a later zone with the same origin replaces
    /// an earlier one).
    pub fn new(zones: Vec<Arc<ZoneSnapshot>>) -> Catalog {
        let mut catalog = Catalog::default();
        for zone in zones {
            match catalog.by_apex.get(zone.apex()) {
                Some(&at) => catalog.zones[at] = zone,
                None => {
                    catalog
                        .by_apex
                        .insert(zone.apex().into(), catalog.zones.len());
                    catalog.zones.push(zone);
                }
            }
        }
        catalog
    }

    /// A catalog serving nothing.
    pub fn empty() -> Catalog {
        Catalog::default()
    }

    /// The zones served.
    pub fn zones(&self) -> impl Iterator<Item = &Arc<ZoneSnapshot>> {
        self.zones.iter()
    }

    /// The zone served at `origin`.
    pub fn get(&self, origin: &Name) -> Option<&Arc<ZoneSnapshot>> {
        self.zones.iter().find(|z| z.origin() == origin)
    }

    /// A copy with `zone` added or replaced (a replaced zone is no longer
    /// expired: it is a new version).
    pub fn with_zone(&self, zone: Arc<ZoneSnapshot>) -> Catalog {
        let mut expired = self.expired.clone();
        expired.retain(|apex| **apex != *zone.apex());
        let mut zones = self.zones.clone();
        zones.push(zone);
        Catalog {
            expired,
            ..Catalog::new(zones)
        }
    }

    /// A copy without the zone at `origin`.
    pub fn without_zone(&self, origin: &Name) -> Catalog {
        let kept: Vec<Arc<ZoneSnapshot>> = self
            .zones
            .iter()
            .filter(|z| z.origin() != origin)
            .cloned()
            .collect();
        let mut expired = self.expired.clone();
        expired.retain(|apex| kept.iter().any(|z| **apex == *z.apex()));
        Catalog {
            expired,
            ..Catalog::new(kept)
        }
    }

    /// A copy with the zone at `origin` marked expired (`true`: answered
    /// SERVFAIL) or served again (`false`); unchanged when it is not served.
    pub fn with_expired(&self, origin: &Name, expired: bool) -> Catalog {
        let mut next = self.clone();
        let Some(zone) = self.zones.iter().find(|z| z.origin() == origin) else {
            return next;
        };
        next.expired.retain(|apex| **apex != *zone.apex());
        if expired {
            next.expired.push(zone.apex().into());
        }
        next
    }

    /// Whether the zone at `origin` is marked expired.
    pub fn is_expired(&self, origin: &Name) -> bool {
        self.zones
            .iter()
            .find(|z| z.origin() == origin)
            .is_some_and(|zone| self.expired_apex(zone))
    }

    /// Whether `zone` is marked expired (a compare per expired zone; none
    /// in the common case).
    pub(crate) fn expired_apex(&self, zone: &ZoneSnapshot) -> bool {
        !self.expired.is_empty() && self.expired.iter().any(|apex| **apex == *zone.apex())
    }

    /// The zone whose apex is the longest suffix of `name`, looking only at
    /// suffixes from label `skip` on (1 for DS, which lives in the parent).
    pub(crate) fn find(&self, name: &NameBuf, skip: usize) -> Option<&ZoneSnapshot> {
        if self.zones.is_empty() {
            return None;
        }
        (skip..=name.label_count())
            .find_map(|i| self.by_apex.get(name.suffix(i)))
            .map(|&at| &*self.zones[at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_zone::rdata::Soa;
    use cutover_zone::{Rdata, Record, RecordType, Zone};
    use std::str::FromStr;

    /// A minimal zone at `origin`.
    fn zone(origin: &str) -> Arc<ZoneSnapshot> {
        let n = |s: &str| Name::from_str(s).unwrap();
        let mut z = Zone::new(n(origin));
        let soa = Soa {
            mname: n("ns."),
            rname: n("h."),
            serial: 1,
            refresh: 1,
            retry: 1,
            expire: 1,
            minimum: 1,
        };
        z.add(Record {
            name: n(origin),
            ttl: 1,
            rdata: Rdata::soa(&soa),
        })
        .unwrap();
        z.add(Record {
            name: n(origin),
            ttl: 1,
            rdata: Rdata::name_only(RecordType::NS, &n("ns.")),
        })
        .unwrap();
        Arc::new(ZoneSnapshot::build(&z))
    }

    /// Which zone answers `name` (text).
    fn pick(catalog: &Catalog, name: &str, skip: usize) -> Option<String> {
        let mut wire = Vec::new();
        cutover_zone::rdata::push_name(&mut wire, &Name::from_str(name).unwrap());
        let buf = NameBuf::from_wire(&wire).unwrap();
        catalog.find(&buf, skip).map(|z| z.origin().to_string())
    }

    #[test]
    fn the_longest_match_wins_and_ds_goes_to_the_parent() {
        let catalog = Catalog::new(vec![zone("example.test."), zone("child.example.test.")]);
        assert_eq!(
            pick(&catalog, "www.CHILD.example.test.", 0).as_deref(),
            Some("child.example.test.")
        );
        assert_eq!(
            pick(&catalog, "www.example.test.", 0).as_deref(),
            Some("example.test.")
        );
        assert_eq!(
            pick(&catalog, "child.example.test.", 1).as_deref(),
            Some("example.test.")
        );
        assert_eq!(pick(&catalog, "example.org.", 0), None);
        let smaller = catalog.without_zone(&Name::from_str("child.example.test.").unwrap());
        assert_eq!(smaller.zones().count(), 1);
        assert_eq!(
            pick(&smaller, "www.child.example.test.", 0).as_deref(),
            Some("example.test.")
        );
        let again = smaller.with_zone(zone("child.example.test."));
        assert_eq!(again.zones().count(), 2);
        assert_eq!(again.with_zone(zone("example.test.")).zones().count(), 2);
    }

    #[test]
    fn an_expired_zone_stays_expired_until_a_new_version_is_published() {
        let origin = Name::from_str("example.test.").unwrap();
        let other = Name::from_str("child.example.test.").unwrap();
        let catalog = Catalog::new(vec![zone("example.test."), zone("child.example.test.")]);
        let expired = catalog.with_expired(&origin, true);
        assert!(expired.is_expired(&origin) && !expired.is_expired(&other));
        assert!(
            expired
                .with_zone(zone("child.example.test."))
                .is_expired(&origin),
            "another zone's new version leaves it expired"
        );
        assert!(!expired.with_zone(zone("example.test.")).is_expired(&origin));
        assert!(!expired.with_expired(&origin, false).is_expired(&origin));
        assert!(!expired.without_zone(&origin).is_expired(&origin));
    }
}
