//! The providers of a migration of several zones behind one [`Provider`]:
//! each zone's reads and change sets go to the provider its file names.
//!
//! ```text
//!  runner ──apply(zone, changes)──▶ Routed ──the zone's provider──▶ cutover's store │ RFC 2136 │ PowerDNS
//! ```
//!
//! A file of one provider gets that provider itself ([`build_for`]), as
//! before several zones.

#![allow(clippy::result_large_err)]

use cutover_provider::{Applied, Change, Provider, ProviderError};
use cutover_zone::{Name, RecordType, Rrset, Zone};

use crate::file::MigrationFile;
use crate::provider::{build, BuildContext, BuildError, ProviderSpec};

/// Several providers, each with its zones.
pub struct Routed {
    /// Each provider and the zones it holds for the migration.
    routes: Vec<(Vec<Name>, Box<dyn Provider>)>,
}

/// The provider of a migration file: the one it names, or, when its zones
/// name several, one that sends each zone to its own.
pub fn build_for(
    file: &MigrationFile,
    context: &BuildContext,
) -> Result<Box<dyn Provider>, BuildError> {
    if file.providers.len() <= 1 {
        let spec = file.providers.first().unwrap_or(&file.provider);
        return build(spec, &file.keys, context);
    }
    let mut routes = Vec::new();
    for (index, spec) in file.providers.iter().enumerate() {
        let zones: Vec<Name> = file
            .zones
            .iter()
            .filter(|z| z.provider == index)
            .map(|z| z.name.clone())
            .collect();
        routes.push((zones, build(spec, &file.keys, context)?));
    }
    Ok(Box::new(Routed { routes }))
}

/// The specs a file's zones name, each once.
pub fn specs(file: &MigrationFile) -> &[ProviderSpec] {
    if file.providers.is_empty() {
        std::slice::from_ref(&file.provider)
    } else {
        &file.providers
    }
}

impl Routed {
    /// Each provider with the zones it holds.
    pub fn new(routes: Vec<(Vec<Name>, Box<dyn Provider>)>) -> Routed {
        Routed { routes }
    }

    /// The provider of `zone`.
    fn of(&self, zone: &Name) -> Result<&dyn Provider, ProviderError> {
        self.routes
            .iter()
            .find(|(zones, _)| zones.contains(zone))
            .map(|(_, p)| &**p)
            .ok_or_else(|| ProviderError::UnknownZone(zone.clone()))
    }
}

impl Provider for Routed {
    fn describe(&self) -> String {
        self.routes
            .iter()
            .map(|(zones, p)| {
                format!(
                    "{} for {}",
                    p.describe(),
                    zones
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn read(&self, zone: &Name) -> Result<Zone, ProviderError> {
        self.of(zone)?.read(zone)
    }

    fn apply(&self, zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError> {
        self.of(zone)?.apply(zone, changes)
    }

    fn read_rrsets(
        &self,
        zone: &Name,
        keys: &[(Name, RecordType)],
    ) -> Result<Vec<Option<Rrset>>, ProviderError> {
        self.of(zone)?.read_rrsets(zone, keys)
    }
}
