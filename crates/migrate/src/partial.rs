//! What a migration reads of a zone whose provider cannot list it (a cloud
//! host that neither lists with TTLs nor transfers the zone): the apex and
//! the RRsets the file names, each read by DNS from the host's servers.
//!
//! ```text
//!  Provider::read ──Unsupported(why)──▶ keys(view) ──read_rrsets──▶ Zone of those RRsets
//!                                         └─ a move by address in the file: refused
//!                                            (its records can only be found by listing)
//! ```
//!
//! The plan made from such a zone carries [`Warning::PartialRead`]: what
//! was asked for, how much of it exists, and that the rest of the zone was
//! not looked at. `cutover provider test` reads the same.

// The provider's own error, as its trait returns it.
#![allow(clippy::result_large_err)]

use cutover_provider::{Provider, ProviderError};
use cutover_zone::{Name, RecordType, Zone};

use crate::file::{FileError, Move};
use crate::plan::Warning;
use crate::MigrationFile;

/// The RRsets read when the zone cannot be listed: the apex's SOA, NS, A,
/// AAAA and MX; each explicit move's RRset, and at its name the CNAME (or,
/// for a CNAME move, the address, text and mail RRsets) that would clash.
pub fn keys(view: &MigrationFile) -> Vec<(Name, RecordType)> {
    let mut keys: Vec<(Name, RecordType)> = Vec::new();
    let mut add = |key: (Name, RecordType)| {
        if !keys.contains(&key) {
            keys.push(key);
        }
    };
    for rtype in [
        RecordType::SOA,
        RecordType::NS,
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
    ] {
        add((view.zone.clone(), rtype));
    }
    for m in &view.moves {
        let Move::Explicit { name, rtype, .. } = m else {
            continue;
        };
        add((name.clone(), *rtype));
        let clashing: &[RecordType] = match *rtype {
            RecordType::CNAME => &[
                RecordType::A,
                RecordType::AAAA,
                RecordType::TXT,
                RecordType::MX,
            ],
            _ => &[RecordType::CNAME],
        };
        for other in clashing {
            add((name.clone(), *other));
        }
    }
    keys
}

/// A zone read RRset by RRset.
pub struct PartialZone {
    /// The RRsets found, as a zone (absent ones left out).
    pub zone: Zone,
    /// The RRsets asked for (`NAME TYPE`), in [`keys`]' order.
    pub asked: Vec<String>,
    /// How many of them exist.
    pub found: usize,
}

impl PartialZone {
    /// The warning a plan made from it carries.
    pub fn warning(&self, provider: &str) -> Warning {
        Warning::PartialRead {
            zone: self.zone.origin().to_string(),
            provider: provider.to_string(),
            asked: self.asked.clone(),
            found: self.found,
        }
    }
}

/// Why a zone that cannot be listed cannot be planned: the file's first
/// move by address, at its place (its records are found only by listing).
pub fn refusal(view: &MigrationFile, why: &str) -> Option<FileError> {
    let at = view
        .moves
        .iter()
        .position(|m| matches!(m, Move::Address { .. }))?;
    let spot = view
        .spots
        .moves
        .get(at)
        .map_or(view.spots.zone, |s| s.subject);
    Some(view.error_at(
        spot,
        format!(
            "a move by address searches the whole zone, and {why}; name the RRsets to move \
             instead ([[move]] name, type and values), or let this machine transfer the zone \
             (AXFR) from the servers in provider.nameservers"
        ),
    ))
}

/// The zone of `view` as far as it can be read without listing it.
pub fn read(provider: &dyn Provider, view: &MigrationFile) -> Result<PartialZone, ProviderError> {
    let keys = keys(view);
    let found = provider.read_rrsets(&view.zone, &keys)?;
    let mut zone = Zone::new(view.zone.clone());
    let mut asked = Vec::new();
    let mut present = 0;
    for ((name, rtype), rrset) in keys.into_iter().zip(found) {
        asked.push(format!("{name} {rtype}"));
        if let Some(rrset) = rrset {
            present += 1;
            zone.set_rrset(&name, rtype, rrset).map_err(|e| {
                ProviderError::Refused(format!(
                    "{} answered for {name} {rtype}: {e}",
                    provider.describe()
                ))
            })?;
        }
    }
    Ok(PartialZone {
        zone,
        asked,
        found: present,
    })
}
