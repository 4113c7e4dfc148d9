//! Immutable, query-optimised zone snapshots (API placeholder, being written).

use cutover_zone::{Name, Serial, Zone};

/// A zone prepared for answering.
#[derive(Debug)]
pub struct ZoneSnapshot {
    /// The zone as loaded.
    zone: Zone,
}

impl ZoneSnapshot {
    /// Prepares a zone for answering.
    pub fn build(zone: &Zone) -> ZoneSnapshot {
        ZoneSnapshot { zone: zone.clone() }
    }

    /// The apex name.
    pub fn origin(&self) -> &Name {
        self.zone.origin()
    }

    /// The SOA serial.
    pub fn serial(&self) -> Serial {
        self.zone.serial().unwrap_or(Serial(0))
    }
}
