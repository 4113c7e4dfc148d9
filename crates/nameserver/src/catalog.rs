//! The catalog: the set of zone snapshots served, and the choice of the zone
//! that answers a name (the longest match, so a served child zone wins over
//! its served parent).
//!
//! A catalog is immutable; `with_zone` and `without_zone` build a new one,
//! which the server publishes atomically.

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

    /// A copy with `zone` added or replaced.
    pub fn with_zone(&self, zone: Arc<ZoneSnapshot>) -> Catalog {
        let mut zones = self.zones.clone();
        zones.push(zone);
        Catalog::new(zones)
    }

    /// A copy without the zone at `origin`.
    pub fn without_zone(&self, origin: &Name) -> Catalog {
        Catalog::new(
            self.zones
                .iter()
                .filter(|z| z.origin() != origin)
                .cloned()
                .collect(),
        )
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
}
