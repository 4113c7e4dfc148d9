//! The set of zones served (API placeholder, being written).

use std::sync::Arc;

use cutover_zone::Name;

use crate::snapshot::ZoneSnapshot;

/// Every zone served, for longest-match selection.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// The snapshots.
    zones: Vec<Arc<ZoneSnapshot>>,
}

impl Catalog {
    /// A catalog of these zones.
    pub fn new(zones: Vec<Arc<ZoneSnapshot>>) -> Catalog {
        Catalog { zones }
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
        let mut zones: Vec<_> = self.zones.iter().filter(|z| z.origin() != zone.origin()).cloned().collect();
        zones.push(zone);
        Catalog { zones }
    }

    /// A copy without the zone at `origin`.
    pub fn without_zone(&self, origin: &Name) -> Catalog {
        Catalog { zones: self.zones.iter().filter(|z| z.origin() != origin).cloned().collect() }
    }
}
