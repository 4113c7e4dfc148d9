//! The next version of a zone as the RRsets a change touches, laid over the
//! current version — borrowed, never copied — so a change to one name of a
//! large zone costs what it touches, not what the zone holds.
//!
//! ```text
//!  &Zone (current; passed its checks) ─┐
//!  set() / ZoneDiff ───────────────────┴─▶ ZoneEdit { touched RRsets }
//!        ├─ check():  apex SOA/NS, every touched name, and what depends on them
//!        │            (NS whose glue lost its addresses, NS under a removed cut)
//!        ├─ diff():   ZoneDiff of the touched RRsets (journal, IXFR), SOA first
//!        └─ into_changes().apply(&mut Zone): the same version, in place
//! ```
//!
//! [`ZoneEdit::check`] finds what [`Zone::check`] would find in the next
//! version, given that the current version passes [`Zone::check`]: every
//! check of `Zone::check` depends only on a node's own data, on the NS of its
//! ancestors (occlusion) and on the addresses of its NS targets, and each of
//! those dependencies that a change can break is looked at here.

use std::collections::{BTreeMap, BTreeSet};

use hickory_proto::rr::{Name, RecordType};

use crate::diff::{DiffError, ZoneDiff};
use crate::rdata::Rdata;
use crate::rules;
use crate::serial::Serial;
use crate::zone::{Record, Rrset, Zone, ZoneError};

/// The touched RRsets of a zone's next version over the current version.
#[derive(Clone, Debug)]
pub struct ZoneEdit<'a> {
    /// The current version.
    current: &'a Zone,
    /// Every touched RRset as the next version holds it (empty: deleted).
    touched: BTreeMap<(Name, u16), Rrset>,
}

/// The touched RRsets of a [`ZoneEdit`], detached from the zone it borrowed,
/// to apply to that zone in place.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// Owner, type and new content (empty: deleted).
    rrsets: Vec<(Name, RecordType, Rrset)>,
}

impl<'a> ZoneEdit<'a> {
    /// An edit that changes nothing yet.
    pub fn new(current: &'a Zone) -> ZoneEdit<'a> {
        ZoneEdit {
            current,
            touched: BTreeMap::new(),
        }
    }

    /// The edit `diff` makes to `current`, all or nothing, with the rules of
    /// [`ZoneDiff::apply_to`] (the diff must start at the current serial,
    /// every record removed must be there with its TTL, a record added with
    /// another TTL gives the whole RRset that TTL).
    pub fn from_diff(current: &'a Zone, diff: &ZoneDiff) -> Result<ZoneEdit<'a>, DiffError> {
        let actual = current.serial().unwrap_or(Serial(0));
        if actual != diff.from {
            return Err(DiffError::SerialMismatch {
                expected: diff.from,
                actual,
            });
        }
        let mut edit = ZoneEdit::new(current);
        for r in &diff.removed {
            let rtype = r.rdata.rtype();
            let mut set = match edit.get(&r.name, rtype) {
                Some(set) if set.ttl == r.ttl && set.contains(&r.rdata) => set.clone(),
                _ => return Err(DiffError::Missing(Box::new(r.clone()))),
            };
            set.remove(&r.rdata);
            edit.set(&r.name, rtype, set)?;
        }
        for r in &diff.added {
            let rtype = r.rdata.rtype();
            let mut set = edit.get(&r.name, rtype).cloned().unwrap_or_default();
            set.ttl = r.ttl;
            set.insert(r.rdata.clone());
            edit.set(&r.name, rtype, set)?;
        }
        Ok(edit)
    }

    /// The version the edit starts from.
    pub fn current(&self) -> &'a Zone {
        self.current
    }

    /// The apex name.
    pub fn origin(&self) -> &'a Name {
        self.current.origin()
    }

    /// The RRset of a name and type in the next version.
    pub fn get(&self, name: &Name, rtype: RecordType) -> Option<&Rrset> {
        match self.touched.get(&(name.clone(), u16::from(rtype))) {
            Some(set) => (!set.is_empty()).then_some(set),
            None => self.current.get(name, rtype),
        }
    }

    /// The types that own data at `name` in the next version, by type code.
    pub fn types(&self, name: &Name) -> Vec<RecordType> {
        let mut codes: BTreeSet<u16> = self
            .current
            .node(name)
            .map(|node| node.rrsets().map(|(t, _)| u16::from(t)).collect())
            .unwrap_or_default();
        let range = (name.clone(), 0)..=(name.clone(), u16::MAX);
        for ((_, code), set) in self.touched.range(range) {
            if set.is_empty() {
                codes.remove(code);
            } else {
                codes.insert(*code);
            }
        }
        codes.into_iter().map(RecordType::from).collect()
    }

    /// Replaces (or, with an empty set, deletes) the RRset of a name and type.
    pub fn set(&mut self, name: &Name, rtype: RecordType, rrset: Rrset) -> Result<(), ZoneError> {
        if !self.current.contains_name(name) {
            return Err(ZoneError::OutOfZone {
                name: name.clone(),
                origin: self.origin().clone(),
            });
        }
        self.touched.insert((name.clone(), u16::from(rtype)), rrset);
        Ok(())
    }

    /// Removes one record; returns false when it was not there.
    pub fn remove(&mut self, name: &Name, rdata: &Rdata) -> bool {
        let rtype = rdata.rtype();
        let Some(mut set) = self.get(name, rtype).cloned() else {
            return false;
        };
        if !set.remove(rdata) {
            return false;
        }
        self.touched.insert((name.clone(), u16::from(rtype)), set);
        true
    }

    /// The serial of the next version's SOA.
    pub fn serial(&self) -> Option<Serial> {
        let soa = self.get(self.origin(), RecordType::SOA)?.rdatas().first()?;
        soa.as_soa().map(|s| Serial(s.serial))
    }

    /// Replaces the serial of the next version's SOA (no-op without an SOA).
    pub fn set_serial(&mut self, serial: Serial) {
        let origin = self.origin();
        let Some(set) = self.get(origin, RecordType::SOA) else {
            return;
        };
        let ttl = set.ttl;
        let Some(mut soa) = set.rdatas().first().and_then(Rdata::as_soa) else {
            return;
        };
        soa.serial = serial.0;
        self.touched.insert(
            (origin.clone(), u16::from(RecordType::SOA)),
            Rrset::new(ttl, Rdata::soa(&soa)),
        );
    }

    /// True when every touched RRset is as the current version holds it.
    pub fn is_unchanged(&self) -> bool {
        self.touched.iter().all(|((name, code), set)| {
            match self.current.get(name, RecordType::from(*code)) {
                Some(old) => old == set,
                None => set.is_empty(),
            }
        })
    }

    /// Every touched RRset: owner, type and the next version's content
    /// (`None`: deleted), in canonical order.
    pub fn rrsets(&self) -> impl Iterator<Item = (&Name, RecordType, Option<&Rrset>)> {
        self.touched.iter().map(|((name, code), set)| {
            (
                name,
                RecordType::from(*code),
                (!set.is_empty()).then_some(set),
            )
        })
    }

    /// The records removed and added, looking only at the touched RRsets; a
    /// TTL change removes and re-adds the whole set. SOA first.
    pub fn diff(&self) -> ZoneDiff {
        let mut diff = ZoneDiff {
            from: self.current.serial().unwrap_or(Serial(0)),
            to: self.serial().unwrap_or(Serial(0)),
            removed: Vec::new(),
            added: Vec::new(),
        };
        for (name, rtype, new) in self.rrsets() {
            let old = self.current.get(name, rtype);
            let same_ttl = matches!((old, new), (Some(a), Some(b)) if a.ttl == b.ttl);
            let record = |ttl: u32, rdata: &Rdata| Record {
                name: name.clone(),
                ttl,
                rdata: rdata.clone(),
            };
            if let Some(old) = old {
                for rdata in old.rdatas() {
                    if !same_ttl || !new.is_some_and(|n| n.contains(rdata)) {
                        diff.removed.push(record(old.ttl, rdata));
                    }
                }
            }
            if let Some(new) = new {
                for rdata in new.rdatas() {
                    if !same_ttl || !old.is_some_and(|o| o.contains(rdata)) {
                        diff.added.push(record(new.ttl, rdata));
                    }
                }
            }
        }
        diff.removed
            .sort_by_key(|r| r.rdata.rtype() != RecordType::SOA);
        diff.added
            .sort_by_key(|r| r.rdata.rtype() != RecordType::SOA);
        diff
    }

    /// What [`Zone::check`] would find in the next version, assuming the
    /// current one passes it: the apex, every touched name, the NS whose
    /// in-zone targets lost their last address, and the NS below a
    /// delegation the edit removed.
    pub fn check(&self) -> Vec<ZoneError> {
        let origin = self.origin();
        let mut errors = Vec::new();
        rules::check_apex(self, &mut errors);
        let names: BTreeSet<&Name> = self.touched.keys().map(|(name, _)| name).collect();
        for name in &names {
            rules::check_node(self, name, &mut errors);
        }
        // What depends on the touched names: NS that relied on an address
        // now gone, and NS that a removed delegation no longer occludes.
        let address = |t: RecordType| matches!(t, RecordType::A | RecordType::AAAA);
        let mut lost_addresses = BTreeSet::new();
        let mut removed_cuts = Vec::new();
        for (name, rtype, new) in self.rrsets() {
            if address(rtype)
                && self.get(name, RecordType::A).is_none()
                && self.get(name, RecordType::AAAA).is_none()
            {
                lost_addresses.insert(name);
            }
            if rtype == RecordType::NS
                && name != origin
                && new.is_none()
                && self.current.get(name, RecordType::NS).is_some()
            {
                removed_cuts.push(name);
            }
        }
        if lost_addresses.is_empty() && removed_cuts.is_empty() {
            return errors;
        }
        for (name, node) in self.current.nodes() {
            if names.contains(name) || node.get(RecordType::NS).is_none() {
                continue;
            }
            let uncovered = removed_cuts
                .iter()
                .any(|cut| cut.zone_of(name) && *cut != name);
            let lost_glue = node
                .get(RecordType::NS)
                .into_iter()
                .flat_map(Rrset::rdatas)
                .filter_map(Rdata::target)
                .any(|target| lost_addresses.contains(&target));
            if uncovered || lost_glue {
                rules::check_glue(self, name, &mut errors);
            }
        }
        errors
    }

    /// The touched RRsets, owned, to apply in place to the zone this edit
    /// started from.
    pub fn into_changes(self) -> Changes {
        Changes {
            rrsets: self
                .touched
                .into_iter()
                .map(|((name, code), set)| (name, RecordType::from(code), set))
                .collect(),
        }
    }
}

impl Changes {
    /// Makes `zone` the version the edit produced (it must be the version the
    /// edit started from); O(touched RRsets), nothing copied.
    pub fn apply(self, zone: &mut Zone) -> Result<(), ZoneError> {
        for (name, rtype, set) in self.rrsets {
            zone.set_rrset(&name, rtype, set)?;
        }
        Ok(())
    }
}

/// Applies `diff` to `zone` in place, all or nothing, with the rules of
/// [`ZoneDiff::apply_to`] but without copying the zone.
pub fn apply_in_place(zone: &mut Zone, diff: &ZoneDiff) -> Result<(), DiffError> {
    let changes = ZoneEdit::from_diff(zone, diff)?.into_changes();
    changes.apply(zone)?;
    Ok(())
}

impl rules::Version for ZoneEdit<'_> {
    fn origin(&self) -> &Name {
        ZoneEdit::origin(self)
    }

    fn rrset(&self, name: &Name, rtype: RecordType) -> Option<&Rrset> {
        self.get(name, rtype)
    }

    fn types(&self, name: &Name) -> Vec<RecordType> {
        ZoneEdit::types(self, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdata::Soa;
    use std::str::FromStr;

    /// A name from text.
    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    /// example.com.: SOA, apex NS ns1 with glue, a delegation `sub` with
    /// glue, and below it an occluded glueless NS at `deep.sub`.
    fn sample() -> Zone {
        let mut z = Zone::new(n("example.com."));
        let soa = Soa {
            mname: n("ns1.example.com."),
            rname: n("hostmaster.example.com."),
            serial: 1,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 300,
        };
        let mut add = |name: &str, rdata: Rdata| {
            z.add(Record {
                name: n(name),
                ttl: 300,
                rdata,
            })
            .unwrap();
        };
        add("example.com.", Rdata::soa(&soa));
        add("example.com.", ns("ns1.example.com."));
        add("ns1.example.com.", Rdata::a([192, 0, 2, 1].into()));
        add("sub.example.com.", ns("ns.sub.example.com."));
        add("ns.sub.example.com.", Rdata::a([192, 0, 2, 2].into()));
        add("deep.sub.example.com.", ns("ns.deep.sub.example.com."));
        add("www.example.com.", Rdata::a([192, 0, 2, 3].into()));
        z
    }

    /// NS data.
    fn ns(target: &str) -> Rdata {
        Rdata::name_only(RecordType::NS, &n(target))
    }

    /// A case: what it is, the RRsets set, how many problems it makes.
    type Case<'a> = (&'a str, Vec<(&'a str, RecordType, Rrset)>, usize);

    /// Sets one RRset in an edit and a copy of the zone alike, and holds the
    /// edit's local check against the copy's whole-zone check.
    fn agree(zone: &Zone, changes: &[(&str, RecordType, Rrset)]) -> Vec<ZoneError> {
        let mut edit = ZoneEdit::new(zone);
        let mut whole = zone.clone();
        for (name, rtype, set) in changes {
            edit.set(&n(name), *rtype, set.clone()).unwrap();
            whole.set_rrset(&n(name), *rtype, set.clone()).unwrap();
        }
        let mut local = edit.check();
        let mut full = whole.check();
        local.sort_by_key(ToString::to_string);
        full.sort_by_key(ToString::to_string);
        assert_eq!(local, full, "local checks must find what Zone::check finds");
        let mut in_place = zone.clone();
        edit.clone().into_changes().apply(&mut in_place).unwrap();
        assert_eq!(
            in_place, whole,
            "the changes applied in place give the same zone"
        );
        let mut replayed = zone.clone();
        edit.diff().apply_to(&mut replayed).unwrap();
        assert_eq!(replayed, whole, "the edit's diff gives the same zone");
        local
    }

    #[test]
    fn local_checks_find_what_the_whole_zone_check_finds() {
        let zone = sample();
        assert_eq!(zone.check(), vec![], "the sample is valid");
        let gone = Rrset::default;
        let cname = Rrset::new(60, Rdata::name_only(RecordType::CNAME, &n("example.com.")));
        let cases: Vec<Case<'_>> = vec![
            (
                "an address added",
                vec![(
                    "new.example.com.",
                    RecordType::A,
                    Rrset::new(1, Rdata::a([10, 0, 0, 1].into())),
                )],
                0,
            ),
            (
                "glue of a delegation removed",
                vec![("ns.sub.example.com.", RecordType::A, gone())],
                1,
            ),
            (
                "apex glue removed",
                vec![("ns1.example.com.", RecordType::A, gone())],
                1,
            ),
            (
                "a delegation removed",
                vec![("sub.example.com.", RecordType::NS, gone())],
                1,
            ),
            (
                "apex NS removed",
                vec![("example.com.", RecordType::NS, gone())],
                1,
            ),
            (
                "SOA removed",
                vec![("example.com.", RecordType::SOA, gone())],
                1,
            ),
            (
                "CNAME beside an A",
                vec![("www.example.com.", RecordType::CNAME, cname.clone())],
                1,
            ),
            (
                "CNAME replacing the A",
                vec![
                    ("www.example.com.", RecordType::A, gone()),
                    ("www.example.com.", RecordType::CNAME, cname),
                ],
                0,
            ),
            (
                "SOA below the apex",
                vec![(
                    "www.example.com.",
                    RecordType::SOA,
                    zone.get(&n("example.com."), RecordType::SOA)
                        .unwrap()
                        .clone(),
                )],
                1,
            ),
        ];
        for (what, changes, errors) in cases {
            let found = agree(&zone, &changes);
            assert_eq!(
                found.len(),
                errors,
                "{what}: expected {errors} problems, saw {found:?}"
            );
        }
    }

    #[test]
    fn an_edit_that_sets_what_is_there_is_unchanged_and_diffs_to_nothing() {
        let zone = sample();
        let mut edit = ZoneEdit::new(&zone);
        let www = zone
            .get(&n("www.example.com."), RecordType::A)
            .unwrap()
            .clone();
        edit.set(&n("www.example.com."), RecordType::A, www)
            .unwrap();
        edit.set(&n("none.example.com."), RecordType::TXT, Rrset::default())
            .unwrap();
        assert!(edit.is_unchanged(), "setting what is there changes nothing");
        assert!(
            edit.diff().is_empty(),
            "and diffs to nothing: {:?}",
            edit.diff()
        );
        let outside = edit.set(&n("example.org."), RecordType::A, Rrset::default());
        assert!(
            matches!(outside, Err(ZoneError::OutOfZone { .. })),
            "saw {outside:?}"
        );
    }

    #[test]
    fn a_diff_that_does_not_fit_the_zone_is_refused_whole() {
        let zone = sample();
        let mut diff = ZoneDiff {
            from: Serial(1),
            to: Serial(2),
            removed: vec![Record {
                name: n("www.example.com."),
                ttl: 999,
                rdata: Rdata::a([192, 0, 2, 3].into()),
            }],
            added: vec![],
        };
        let wrong_ttl = ZoneEdit::from_diff(&zone, &diff).map(|_| ());
        assert!(
            matches!(wrong_ttl, Err(DiffError::Missing(_))),
            "saw {wrong_ttl:?}"
        );
        diff.from = Serial(7);
        let wrong_serial = ZoneEdit::from_diff(&zone, &diff).map(|_| ());
        assert!(
            matches!(wrong_serial, Err(DiffError::SerialMismatch { .. })),
            "saw {wrong_serial:?}"
        );
    }
}
