//! A migration over several zones: each zone's part of the file (the file
//! as if it named that zone alone, with the explicit moves and the checks
//! whose names are in it), planned by the one-zone machinery, and what
//! the plan then says about zones and providers.
//!
//! ```text
//!  MigrationFile ──view(zone)──▶ one zone's file ──changes, refusals, warnings──▶ tagged with the zone
//!                                                    └── warnings prefixed with the zone
//! ```

use cutover_zone::Name;

use super::{Plan, PlanZone, RrsetChange, Touch};
use crate::file::{CheckKind, MigrationFile, Move, ZoneTarget};

/// The host name a check reaches (`None`: an address, or a URL that does
/// not parse: the one-zone checks say why).
pub(super) fn check_host(kind: &CheckKind) -> Option<Name> {
    let host = match kind {
        CheckKind::Http { url, .. } => cutover_probe::service::http::Url::parse(url).ok()?.host,
        CheckKind::Smtp { host, .. } | CheckKind::Tcp { host, .. } => host.clone(),
    };
    if host.parse::<std::net::IpAddr>().is_ok()
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok()
    {
        return None;
    }
    let absolute = if host.ends_with('.') {
        host
    } else {
        format!("{host}.")
    };
    Name::from_ascii(absolute).ok()
}

/// The file as if it named only `zone`: its provider, every address move,
/// the explicit moves of names in it, and the checks of names in it (with
/// one zone, every check, so the one-zone refusals speak of the others).
pub fn view(file: &MigrationFile, zone: &ZoneTarget) -> MigrationFile {
    let mut one = file.clone();
    one.zone = zone.name.clone();
    one.provider = file.providers[zone.provider].clone();
    one.zones = vec![ZoneTarget {
        provider: 0,
        ..zone.clone()
    }];
    one.providers = vec![one.provider.clone()];
    one.every_zone = None;
    if !zone.authorities.is_empty() {
        one.verify.authorities = zone.authorities.clone();
    }
    one.spots.zone = zone.spot;
    one.spots.provider = file
        .spots
        .providers
        .get(zone.provider)
        .copied()
        .unwrap_or_default();
    if !file.many_zones() {
        return one;
    }
    let here = |name: &Name| file.zone_of(name).is_some_and(|z| z.name == zone.name);
    let keep_move: Vec<bool> = file
        .moves
        .iter()
        .map(|m| match m {
            Move::Address { .. } => true,
            Move::Explicit { name, .. } => here(name),
        })
        .collect();
    one.moves = keep(&file.moves, &keep_move);
    one.spots.moves = keep(&file.spots.moves, &keep_move);
    // A check of an address (or of a URL that does not parse) goes with
    // the first zone, whose refusals say what is wrong with it.
    let first = file.zones.first().is_some_and(|z| z.name == zone.name);
    let keep_check: Vec<bool> = file
        .checks
        .iter()
        .map(|c| check_host(&c.kind).map_or(first, |h| here(&h)))
        .collect();
    one.checks = keep(&file.checks, &keep_check);
    one.spots.checks = keep(&file.spots.checks, &keep_check);
    one
}

/// The items whose flag is set.
fn keep<T: Clone>(items: &[T], flags: &[bool]) -> Vec<T> {
    items
        .iter()
        .zip(flags)
        .filter(|(_, k)| **k)
        .map(|(i, _)| i.clone())
        .collect()
}

impl Plan {
    /// How a zone of the plan is verified: the plan's `verify`, with the
    /// zone's own authorities when its `[[zone]]` lists them.
    pub fn verify_of(&self, zone: &PlanZone) -> crate::file::Verify {
        let mut verify = self.verify.clone();
        if !zone.authorities.is_empty() {
            verify.authorities = zone.authorities.clone();
        }
        verify
    }

    /// Every zone of the plan with its provider (a plan made before
    /// migrations had several zones: its one zone through its provider).
    pub fn zone_list(&self) -> Vec<PlanZone> {
        if self.zones.is_empty() {
            vec![PlanZone {
                zone: self.zone.clone(),
                provider: 0,
                authorities: Vec::new(),
            }]
        } else {
            self.zones.clone()
        }
    }

    /// Every provider of the plan, in words.
    pub fn provider_list(&self) -> Vec<String> {
        if self.providers.is_empty() {
            vec![self.provider.clone()]
        } else {
            self.providers.clone()
        }
    }

    /// The zone a change is in.
    pub fn zone_of<'a>(&'a self, change: &'a RrsetChange) -> &'a str {
        change.zone.as_deref().unwrap_or(&self.zone)
    }

    /// The provider (index) a zone's records go through.
    pub fn provider_of(&self, zone: &str) -> usize {
        self.zones
            .iter()
            .find(|z| z.zone.eq_ignore_ascii_case(zone))
            .map_or(0, |z| z.provider)
    }

    /// True when the plan moves records in more than one zone.
    pub fn many_zones(&self) -> bool {
        self.zones.len() > 1
    }
}

/// What a step touches: each provider with its zones (`only`: that
/// provider alone).
pub(super) fn touches(zones: &[PlanZone], providers: &[String], only: Option<usize>) -> Vec<Touch> {
    providers
        .iter()
        .enumerate()
        .filter(|(i, _)| only.is_none_or(|o| o == *i))
        .map(|(i, p)| Touch {
            provider: p.clone(),
            zones: zones
                .iter()
                .filter(|z| z.provider == i)
                .map(|z| z.zone.clone())
                .collect(),
        })
        .filter(|t| !t.zones.is_empty())
        .collect()
}
