//! The part of a zone a change reads, loaded by point lookups instead of the
//! whole zone: what lets a record edit on a zone of a million records cost
//! what it touches.
//!
//! ```text
//!  names the change touches ──▶ Excerpt: apex, those names, their ancestors
//!      (occlusion), the in-zone targets of every NS loaded (glue)
//!  change(&excerpt) ──▶ diff ──needs more? (targets of NS added; NS that
//!      lose their glue or a cut above them: the NS rows, by their index)
//!      ├─ yes ──▶ load them, work the change out again
//!      └─ no  ──▶ ZoneEdit::check over the excerpt = Zone::check's verdict
//! ```
//!
//! An excerpt holds whole nodes (every RRset of a name), so whatever reads a
//! name sees what the zone holds there; [`ZoneEdit::check`] reads only the
//! apex, the touched names, their ancestors, the targets of their NS, and
//! the NS that depend on them — all of which the excerpt holds before the
//! check runs. What still grows with the zone: finding the NS that depend on
//! a removed address or a removed delegation reads every NS row of the zone
//! (an index of NS rows only, so a zone's delegations, not its records).

use std::collections::BTreeSet;

use cutover_zone::{Name, RecordType, Zone, ZoneDiff, ZoneEdit};
use rusqlite::params;

use crate::codec::{name_from_key, name_key, RecordRow};
use crate::error::StoreError;
use crate::{Db, SqliteContext};

/// How many times a change is worked out again on a larger excerpt before
/// the store gives up (each round loads every name the last diff named, so
/// two are enough; more means the change reads what its diff does not say).
const ROUNDS: usize = 4;

/// A zone's excerpt and the names it holds whole.
pub(crate) struct Excerpt {
    /// The nodes loaded, as a zone (its record count is the excerpt's).
    pub(crate) zone: Zone,
    /// Every name looked up (holding data or not).
    loaded: BTreeSet<Name>,
    /// True once the zone's NS rows were read for dependents.
    dependents_read: bool,
}

impl Db<'_> {
    /// Works `change` out on an excerpt of the zone `id` that holds every
    /// name it touches and every name the checks of its diff read; returns
    /// the excerpt and the change's verdict.
    pub(crate) fn work_out_on_excerpt<E>(
        &self,
        id: i64,
        origin: &Name,
        names: &[Name],
        change: impl Fn(&Zone) -> Result<Option<ZoneDiff>, E>,
    ) -> Result<(Excerpt, Result<Option<ZoneDiff>, E>), StoreError> {
        let mut excerpt = Excerpt {
            zone: Zone::new(origin.clone()),
            loaded: BTreeSet::new(),
            dependents_read: false,
        };
        let mut wanted: Vec<Name> = std::iter::once(origin.clone())
            .chain(names.iter().cloned())
            .collect();
        for _ in 0..ROUNDS {
            self.load_names(id, &mut excerpt, &wanted)?;
            let verdict = change(&excerpt.zone);
            let diff = match &verdict {
                Ok(Some(diff)) => diff,
                _ => return Ok((excerpt, verdict)),
            };
            wanted = diff
                .removed
                .iter()
                .chain(&diff.added)
                .map(|record| record.name.clone())
                .filter(|name| !excerpt.loaded.contains(name))
                .collect();
            if wanted.is_empty() && !excerpt.dependents_read && self.has_dependents(&excerpt, diff)
            {
                wanted = self.dependents(id, origin, &excerpt, diff)?;
                excerpt.dependents_read = true;
            }
            let targets = glue_targets(&excerpt.zone, diff);
            wanted.extend(targets.into_iter().filter(|t| !excerpt.loaded.contains(t)));
            if wanted.is_empty() {
                return Ok((excerpt, verdict));
            }
        }
        Err(self.corrupt(format!(
            "zone {origin}: the change kept reading names its diff did not name"
        )))
    }

    /// Loads `names` whole, their ancestors up to the apex, and the in-zone
    /// targets of every NS RRset that brings.
    fn load_names(&self, id: i64, excerpt: &mut Excerpt, names: &[Name]) -> Result<(), StoreError> {
        let origin = excerpt.zone.origin().clone();
        let mut queue: Vec<Name> = Vec::new();
        for name in names.iter().filter(|n| origin.zone_of(n)) {
            let labels = name.num_labels();
            queue.extend(
                (origin.num_labels()..=labels).map(|count| name.trim_to(usize::from(count))),
            );
        }
        while let Some(name) = queue.pop() {
            if !excerpt.loaded.insert(name.clone()) {
                continue;
            }
            self.load_node(id, &mut excerpt.zone, &name)?;
            let targets = excerpt
                .zone
                .get(&name, RecordType::NS)
                .into_iter()
                .flat_map(|set| set.rdatas().iter().filter_map(|r| r.target()));
            queue.extend(targets.filter(|t| origin.zone_of(t) && !excerpt.loaded.contains(t)));
        }
        Ok(())
    }

    /// Adds every record of one name to `zone`.
    fn load_node(&self, id: i64, zone: &mut Zone, name: &Name) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT owner, rtype, ttl, rdata FROM record WHERE zone_id = ?1 AND owner = ?2",
            )
            .on(self.path)?;
        let mut rows = stmt.query(params![id, name_key(name)]).on(self.path)?;
        let origin = zone.origin().clone();
        while let Some(row) = rows.next().on(self.path)? {
            let record = RecordRow::read(row, 0)
                .on(self.path)?
                .decode(None)
                .map_err(|reason| self.corrupt(format!("zone {origin}: {reason}")))?;
            zone.add(record)
                .map_err(|e| self.corrupt(format!("zone {origin}: {e}")))?;
        }
        Ok(())
    }

    /// True when the diff leaves a name without the last of its addresses
    /// or removes a delegation: NS elsewhere in the zone may depend on it.
    fn has_dependents(&self, excerpt: &Excerpt, diff: &ZoneDiff) -> bool {
        !lost(excerpt, diff).is_empty()
    }

    /// The owners of every NS in the zone that depends on what the diff
    /// removes: NS naming a target that lost its last address, NS below a
    /// delegation that is gone. Reads the zone's NS rows (their own index).
    fn dependents(
        &self,
        id: i64,
        origin: &Name,
        excerpt: &Excerpt,
        diff: &ZoneDiff,
    ) -> Result<Vec<Name>, StoreError> {
        let lost = lost(excerpt, diff);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT owner, rdata FROM record WHERE zone_id = ?1 AND rtype = 2")
            .on(self.path)?;
        let mut rows = stmt.query([id]).on(self.path)?;
        let mut owners = BTreeSet::new();
        while let Some(row) = rows.next().on(self.path)? {
            let owner: Vec<u8> = row.get(0).on(self.path)?;
            let rdata: Vec<u8> = row.get(1).on(self.path)?;
            let name = name_from_key(&owner)
                .map_err(|reason| self.corrupt(format!("zone {origin}: {reason}")))?;
            let target = cutover_zone::Rdata::from_wire(RecordType::NS, &rdata)
                .ok()
                .and_then(|r| r.target());
            let depends = lost.iter().any(|gone| {
                target.as_ref().is_some_and(|t| t == gone) || (gone.zone_of(&name) && *gone != name)
            });
            if depends && !excerpt.loaded.contains(&name) {
                owners.insert(name);
            }
        }
        Ok(owners.into_iter().collect())
    }
}

/// The names whose loss other NS may depend on: those the diff leaves
/// without an address, and the delegations (NS below the apex) it removes.
fn lost(excerpt: &Excerpt, diff: &ZoneDiff) -> Vec<Name> {
    let Ok(next) = ZoneEdit::from_diff(&excerpt.zone, diff) else {
        return Vec::new();
    };
    let origin = excerpt.zone.origin();
    let mut lost: Vec<Name> = Vec::new();
    // A set beside the list: 20,000 names removed in one batch were 2×10⁸
    // name comparisons with `Vec::contains`.
    let mut seen: BTreeSet<&Name> = BTreeSet::new();
    for record in &diff.removed {
        let name = &record.name;
        let gone = match record.rdata.rtype() {
            RecordType::A | RecordType::AAAA => {
                next.get(name, RecordType::A).is_none()
                    && next.get(name, RecordType::AAAA).is_none()
            }
            RecordType::NS => name != origin && next.get(name, RecordType::NS).is_none(),
            _ => false,
        };
        if gone && seen.insert(name) {
            lost.push(name.clone());
        }
    }
    lost
}

/// The in-zone targets of the NS records the diff adds.
fn glue_targets(zone: &Zone, diff: &ZoneDiff) -> Vec<Name> {
    diff.added
        .iter()
        .filter(|r| r.rdata.rtype() == RecordType::NS)
        .filter_map(|r| r.rdata.target())
        .filter(|t| zone.origin().zone_of(t))
        .collect()
}
