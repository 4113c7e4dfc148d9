//! A zone: its origin and every node below it, each node a set of RRsets.
//!
//! Names are keyed by hickory's `Name`, whose `Ord` is the DNSSEC canonical
//! order (case-insensitive), so iteration is canonical and lookups ignore
//! case. RRsets keep their data sorted and free of duplicates.

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, RecordType};

use crate::rdata::{Rdata, Soa};
use crate::rules;
use crate::serial::Serial;

/// One resource record: owner, TTL and data (class IN throughout cutover).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// Owner name (absolute).
    pub name: Name,
    /// Time to live in seconds.
    pub ttl: u32,
    /// Type and data.
    pub rdata: Rdata,
}

/// The records of one name and type, which share one TTL (RFC 2181 §5.2).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Rrset {
    /// The TTL shared by every record of the set.
    pub ttl: u32,
    /// The data, sorted by wire bytes, without duplicates.
    rdatas: Vec<Rdata>,
}

/// All RRsets at one owner name, keyed by type code.
///
/// A sorted vector rather than a map: a node holds a handful of types, and
/// a vector of one costs its one entry where a B-tree leaf costs eleven
/// (a 1,000,000-record zone is about 350 MB smaller).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Node {
    rrsets: TypeMap,
}

/// RRsets by type code, sorted by it, one per type.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct TypeMap(Vec<(u16, Rrset)>);

impl TypeMap {
    fn find(&self, key: u16) -> Result<usize, usize> {
        self.0.binary_search_by_key(&key, |(t, _)| *t)
    }

    fn get(&self, key: &u16) -> Option<&Rrset> {
        self.find(*key).ok().map(|at| &self.0[at].1)
    }

    fn get_mut(&mut self, key: &u16) -> Option<&mut Rrset> {
        self.find(*key).ok().map(|at| &mut self.0[at].1)
    }

    /// Sets the RRset of a type, replacing any.
    fn insert(&mut self, key: u16, set: Rrset) {
        match self.find(key) {
            Ok(at) => self.0[at].1 = set,
            Err(at) => {
                // Most names have one type: room for exactly one at first
                // (a `Vec` grows to four at its first push, 120 bytes a name
                // never used), then doubling.
                if self.0.len() == self.0.capacity() {
                    self.0.reserve_exact(self.0.len().max(1));
                }
                self.0.insert(at, (key, set));
            }
        }
    }

    fn remove(&mut self, key: &u16) {
        if let Ok(at) = self.find(*key) {
            self.0.remove(at);
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&u16, &Rrset)> {
        self.0.iter().map(|(t, s)| (t, s))
    }

    fn values(&self) -> impl Iterator<Item = &Rrset> {
        self.0.iter().map(|(_, s)| s)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A whole zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    origin: Name,
    nodes: BTreeMap<Name, Node>,
}

/// A zone built by [`Zone::from_records`], with what adding its records
/// one by one would have said.
#[derive(Clone, Debug)]
pub struct Built {
    /// The zone.
    pub zone: Zone,
    /// Each record that joined an RRset of another TTL: its index and the
    /// TTL the set kept (the first record's), by index.
    pub ttl_conflicts: Vec<(usize, u32)>,
    /// The TTL and type of each of those records, in the same order.
    pub conflicting: Vec<(u32, RecordType)>,
    /// For each node, in canonical order, the index of its first record.
    pub first_records: Vec<usize>,
}

/// Puts `items` in the order `order` gives (`items[k]` becomes what was at
/// `order[k]`), in place: each cycle of the permutation followed once, a
/// bit per item to know which are done.
fn permute<T>(items: &mut [T], order: &[usize]) {
    let mut done = vec![false; items.len()];
    for start in 0..items.len() {
        let mut at = start;
        while !done[at] {
            done[at] = true;
            let from = order[at];
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

/// Bytes that sort as names do in hickory's `Ord` (RFC 4034 §6.1: labels
/// from the right, each compared octet by octet ignoring ASCII case, a
/// shorter label first; fewer labels first; a relative name before an
/// absolute one). Octets 0 and 1 are escaped as 1,1 and 1,2 so that the
/// label terminator 0 sorts below every octet.
fn canonical_key(name: &Name) -> Box<[u8]> {
    let mut key = Vec::with_capacity(name.len() + 4);
    key.push(u8::from(name.is_fqdn()));
    for label in name.iter().rev() {
        for &b in label {
            match b.to_ascii_lowercase() {
                0 => key.extend_from_slice(&[1, 1]),
                1 => key.extend_from_slice(&[1, 2]),
                b => key.push(b),
            }
        }
        key.push(0);
    }
    key.into_boxed_slice()
}

/// What is wrong with a zone's content, found when adding data or by
/// [`Zone::check`].
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZoneError {
    /// The owner is not at or below the origin.
    #[error("{name} is outside the zone {origin}")]
    OutOfZone {
        /// The owner name.
        name: Name,
        /// The zone's origin.
        origin: Name,
    },
    /// No SOA at the apex.
    #[error("no SOA record at the zone apex {origin}")]
    NoSoa {
        /// The zone's origin.
        origin: Name,
    },
    /// An SOA somewhere other than the apex, or more than one at the apex.
    #[error("{name}: {reason}")]
    BadSoa {
        /// The owner name.
        name: Name,
        /// What is wrong.
        reason: &'static str,
    },
    /// No NS at the apex.
    #[error("no NS records at the zone apex {origin}")]
    NoApexNs {
        /// The zone's origin.
        origin: Name,
    },
    /// A CNAME shares its owner with other data (RFC 1034 §3.6.2).
    #[error("{name}: CNAME beside other data ({other})")]
    CnameAndOtherData {
        /// The owner name.
        name: Name,
        /// One of the other types there.
        other: RecordType,
    },
    /// More than one CNAME at a name.
    #[error("{name}: more than one CNAME record")]
    MultipleCnames {
        /// The owner name.
        name: Name,
    },
    /// More than one DNAME at a name (RFC 6672 §2.4).
    #[error("{name}: more than one DNAME record")]
    MultipleDnames {
        /// The owner name.
        name: Name,
    },
    /// An in-zone nameserver that has no address record.
    #[error(
        "{name}: NS {target} needs glue (an A or AAAA record for {target}) but the zone has none"
    )]
    MissingGlue {
        /// The owner of the NS record.
        name: Name,
        /// The nameserver's name.
        target: Name,
    },
}

impl Rrset {
    /// An RRset with one record.
    pub fn new(ttl: u32, rdata: Rdata) -> Rrset {
        Rrset {
            ttl,
            rdatas: vec![rdata],
        }
    }

    /// The data of the set, in canonical order.
    pub fn rdatas(&self) -> &[Rdata] {
        &self.rdatas
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.rdatas.len()
    }

    /// True when the set has no records.
    pub fn is_empty(&self) -> bool {
        self.rdatas.is_empty()
    }

    /// Adds data; returns false when it was there already.
    pub fn insert(&mut self, rdata: Rdata) -> bool {
        match self.rdatas.binary_search(&rdata) {
            Ok(_) => false,
            Err(at) => {
                self.rdatas.insert(at, rdata);
                true
            }
        }
    }

    /// Removes data; returns false when it was not there.
    pub fn remove(&mut self, rdata: &Rdata) -> bool {
        match self.rdatas.binary_search(rdata) {
            Ok(at) => {
                self.rdatas.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// True when the set holds this data.
    pub fn contains(&self, rdata: &Rdata) -> bool {
        self.rdatas.binary_search(rdata).is_ok()
    }
}

impl Node {
    /// The RRset of one type.
    pub fn get(&self, rtype: RecordType) -> Option<&Rrset> {
        self.rrsets.get(&u16::from(rtype))
    }

    /// Every RRset at the node, by type code.
    pub fn rrsets(&self) -> impl Iterator<Item = (RecordType, &Rrset)> {
        self.rrsets.iter().map(|(t, s)| (RecordType::from(*t), s))
    }

    /// True when the node holds no data (an empty non-terminal, or removed).
    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty()
    }
}

impl Zone {
    /// An empty zone at `origin`.
    pub fn new(origin: Name) -> Zone {
        let mut origin = origin;
        origin.set_fqdn(true);
        Zone {
            origin,
            nodes: BTreeMap::new(),
        }
    }

    /// The apex name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The SOA at the apex.
    pub fn soa(&self) -> Option<Soa> {
        self.get(&self.origin, RecordType::SOA)?
            .rdatas()
            .first()?
            .as_soa()
    }

    /// The TTL of the SOA RRset.
    pub fn soa_ttl(&self) -> Option<u32> {
        self.get(&self.origin, RecordType::SOA).map(|s| s.ttl)
    }

    /// The serial of the SOA at the apex.
    pub fn serial(&self) -> Option<Serial> {
        self.soa().map(|s| Serial(s.serial))
    }

    /// Replaces the serial in the apex SOA (no-op without an SOA).
    pub fn set_serial(&mut self, serial: Serial) {
        let Some(mut soa) = self.soa() else { return };
        let ttl = self.soa_ttl().unwrap_or(0);
        soa.serial = serial.0;
        let node = self.nodes.entry(self.origin.clone()).or_default();
        node.rrsets.insert(
            u16::from(RecordType::SOA),
            Rrset::new(ttl, Rdata::soa(&soa)),
        );
    }

    /// True when `name` is at or below the origin.
    pub fn contains_name(&self, name: &Name) -> bool {
        self.origin.zone_of(name)
    }

    /// Adds one record. When the RRset exists with another TTL, the set keeps
    /// its TTL and `Ok(Some(existing_ttl))` says so. Duplicates are ignored.
    pub fn add(&mut self, record: Record) -> Result<Option<u32>, ZoneError> {
        if !self.contains_name(&record.name) {
            return Err(ZoneError::OutOfZone {
                name: record.name,
                origin: self.origin.clone(),
            });
        }
        let node = self.nodes.entry(record.name).or_default();
        let key = u16::from(record.rdata.rtype());
        match node.rrsets.get_mut(&key) {
            Some(set) => {
                set.insert(record.rdata);
                Ok((set.ttl != record.ttl).then_some(set.ttl))
            }
            None => {
                node.rrsets
                    .insert(key, Rrset::new(record.ttl, record.rdata));
                Ok(None)
            }
        }
    }

    /// A zone of many records at once, as if each were [`Zone::add`]ed in
    /// order, but sorted once instead of looked up one by one: a zone file
    /// of a million records is read in seconds, not tens of them (hickory's
    /// `Name` comparison, label by label from the right, is slow; here each
    /// name is turned once into bytes that compare as the names do).
    ///
    /// Fails with the index of the first record outside the zone.
    pub fn from_records(origin: Name, records: Vec<Record>) -> Result<Built, (usize, ZoneError)> {
        let mut zone = Zone::new(origin);
        if let Some(at) = records.iter().position(|r| !zone.contains_name(&r.name)) {
            let name = records[at].name.clone();
            return Err((
                at,
                ZoneError::OutOfZone {
                    name,
                    origin: zone.origin.clone(),
                },
            ));
        }
        // Sorted by key, then by index (file order among equal names).
        let keys: Vec<Box<[u8]>> = records.iter().map(|r| canonical_key(&r.name)).collect();
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]).then(a.cmp(&b)));
        // Where each node starts in that order; then the keys go (a bit
        // per record is all that is left of them).
        let starts: Vec<bool> = (0..order.len())
            .map(|k| k == 0 || keys[order[k - 1]] != keys[order[k]])
            .collect();
        drop(keys);
        let mut records = records;
        permute(&mut records, &order);
        // Taken from the back (the last node first), the vector given back
        // to the allocator as it empties: what the records held becomes the
        // nodes' without both being held whole at once.
        let mut conflicts = Vec::new();
        let mut first_records = Vec::with_capacity(starts.iter().filter(|&&s| s).count());
        let mut nodes: Vec<(Name, Node)> = Vec::with_capacity(first_records.capacity());
        let mut group: Vec<(usize, Record)> = Vec::new();
        for k in (0..order.len()).rev() {
            let record = records.pop().expect("one record per place in the order");
            group.push((order[k], record));
            if records.len() < records.capacity() - records.capacity() / 8 {
                records.shrink_to_fit();
            }
            if !starts[k] {
                continue;
            }
            // The node's records, in file order.
            let mut members = group.drain(..).rev();
            let (first, record) = members.next().expect("a node has a record");
            let mut node = Node::default();
            node.rrsets.insert(
                u16::from(record.rdata.rtype()),
                Rrset::new(record.ttl, record.rdata),
            );
            for (index, record) in members {
                let rtype = u16::from(record.rdata.rtype());
                match node.rrsets.get_mut(&rtype) {
                    Some(set) => {
                        set.insert(record.rdata);
                        if set.ttl != record.ttl {
                            conflicts.push((index, set.ttl, record.ttl, RecordType::from(rtype)));
                        }
                    }
                    None => node
                        .rrsets
                        .insert(rtype, Rrset::new(record.ttl, record.rdata)),
                }
            }
            nodes.push((record.name, node));
            first_records.push(first);
        }
        drop((records, order, starts));
        nodes.reverse();
        first_records.reverse();
        conflicts.sort_unstable_by_key(|&(index, ..)| index);
        let (ttl_conflicts, conflicting) = conflicts
            .into_iter()
            .map(|(index, kept, ttl, rtype)| ((index, kept), (ttl, rtype)))
            .unzip();
        // In canonical order already: the B-tree is built without comparing
        // more than neighbours.
        zone.nodes = nodes.into_iter().collect();
        Ok(Built {
            zone,
            ttl_conflicts,
            conflicting,
            first_records,
        })
    }

    /// Removes one record; returns false when it was not there.
    pub fn remove(&mut self, name: &Name, rdata: &Rdata) -> bool {
        let Some(node) = self.nodes.get_mut(name) else {
            return false;
        };
        let key = u16::from(rdata.rtype());
        let Some(set) = node.rrsets.get_mut(&key) else {
            return false;
        };
        let removed = set.remove(rdata);
        if set.is_empty() {
            node.rrsets.remove(&key);
        }
        if node.is_empty() {
            self.nodes.remove(name);
        }
        removed
    }

    /// Replaces (or, with an empty set, deletes) the RRset of a name and type.
    pub fn set_rrset(
        &mut self,
        name: &Name,
        rtype: RecordType,
        rrset: Rrset,
    ) -> Result<(), ZoneError> {
        if !self.contains_name(name) {
            return Err(ZoneError::OutOfZone {
                name: name.clone(),
                origin: self.origin.clone(),
            });
        }
        let key = u16::from(rtype);
        if rrset.is_empty() {
            if let Some(node) = self.nodes.get_mut(name) {
                node.rrsets.remove(&key);
                if node.is_empty() {
                    self.nodes.remove(name);
                }
            }
        } else {
            self.nodes
                .entry(name.clone())
                .or_default()
                .rrsets
                .insert(key, rrset);
        }
        Ok(())
    }

    /// The RRset of a name and type.
    pub fn get(&self, name: &Name, rtype: RecordType) -> Option<&Rrset> {
        self.nodes.get(name)?.get(rtype)
    }

    /// The node at a name (only names that own data have nodes).
    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Every node, in canonical order.
    pub fn nodes(&self) -> impl Iterator<Item = (&Name, &Node)> {
        self.nodes.iter()
    }

    /// Every record, in canonical order (owner, then type code, then data).
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.nodes.iter().flat_map(|(name, node)| {
            node.rrsets.values().flat_map(move |set| {
                set.rdatas.iter().map(move |rdata| Record {
                    name: name.clone(),
                    ttl: set.ttl,
                    rdata: rdata.clone(),
                })
            })
        })
    }

    /// Number of records.
    pub fn record_count(&self) -> usize {
        self.nodes
            .values()
            .flat_map(|n| n.rrsets.values())
            .map(Rrset::len)
            .sum()
    }

    /// True when `name` is strictly below a delegation (NS not at the apex),
    /// i.e. occluded data such as glue.
    pub fn is_below_cut(&self, name: &Name) -> bool {
        self.cut_above(name).is_some_and(|cut| cut != *name)
    }

    /// The highest delegation point (NS below the apex) at or above `name`.
    pub fn cut_above(&self, name: &Name) -> Option<Name> {
        let depth = self.origin.num_labels();
        let mut labels = depth + 1;
        while labels <= name.num_labels() {
            let ancestor = name.trim_to(labels as usize);
            if self.get(&ancestor, RecordType::NS).is_some() {
                return Some(ancestor);
            }
            labels += 1;
        }
        None
    }

    /// The semantic checks a zone must pass to be served, in a stable order.
    pub fn check(&self) -> Vec<ZoneError> {
        let mut errors = Vec::new();
        rules::check_apex(self, &mut errors);
        for (name, node) in &self.nodes {
            rules::check_node(
                &AtNode {
                    zone: self,
                    name,
                    node,
                },
                name,
                &mut errors,
            );
        }
        errors
    }
}

/// The zone as the rules read it while checking one node: questions about
/// that node (asked with the very name the check iterates) are answered
/// from it without a lookup, which for a zone of a million names saves
/// four million searches of the tree.
struct AtNode<'z> {
    zone: &'z Zone,
    name: &'z Name,
    node: &'z Node,
}

impl rules::Version for AtNode<'_> {
    fn origin(&self) -> &Name {
        &self.zone.origin
    }

    fn rrset(&self, name: &Name, rtype: RecordType) -> Option<&Rrset> {
        if std::ptr::eq(name, self.name) {
            self.node.get(rtype)
        } else {
            self.zone.get(name, rtype)
        }
    }

    fn types(&self, name: &Name) -> Vec<RecordType> {
        if std::ptr::eq(name, self.name) {
            self.node.rrsets().map(|(t, _)| t).collect()
        } else {
            rules::Version::types(self.zone, name)
        }
    }
}

impl rules::Version for Zone {
    fn origin(&self) -> &Name {
        &self.origin
    }

    fn rrset(&self, name: &Name, rtype: RecordType) -> Option<&Rrset> {
        self.get(name, rtype)
    }

    fn types(&self, name: &Name) -> Vec<RecordType> {
        self.node(name)
            .map(|node| node.rrsets().map(|(t, _)| t).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

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
        z.add(Record {
            name: n("example.com."),
            ttl: 3600,
            rdata: Rdata::soa(&soa),
        })
        .unwrap();
        z.add(Record {
            name: n("example.com."),
            ttl: 3600,
            rdata: Rdata::name_only(RecordType::NS, &n("ns1.example.com.")),
        })
        .unwrap();
        z.add(Record {
            name: n("ns1.example.com."),
            ttl: 3600,
            rdata: Rdata::a([192, 0, 2, 1].into()),
        })
        .unwrap();
        z
    }

    #[test]
    fn a_valid_zone_passes_the_checks() {
        assert_eq!(sample().check(), vec![]);
        assert_eq!(sample().serial(), Some(Serial(1)));
    }

    #[test]
    fn cname_beside_other_data_is_refused() {
        let mut z = sample();
        z.add(Record {
            name: n("www.example.com."),
            ttl: 60,
            rdata: Rdata::a([192, 0, 2, 2].into()),
        })
        .unwrap();
        z.add(Record {
            name: n("WWW.example.com."),
            ttl: 60,
            rdata: Rdata::name_only(RecordType::CNAME, &n("example.com.")),
        })
        .unwrap();
        assert!(matches!(z.check()[0], ZoneError::CnameAndOtherData { .. }));
    }

    #[test]
    fn missing_glue_and_out_of_zone_are_found() {
        let mut z = sample();
        z.add(Record {
            name: n("sub.example.com."),
            ttl: 60,
            rdata: Rdata::name_only(RecordType::NS, &n("ns.sub.example.com.")),
        })
        .unwrap();
        assert!(
            matches!(&z.check()[0], ZoneError::MissingGlue { target, .. } if *target == n("ns.sub.example.com."))
        );
        let err = z
            .add(Record {
                name: n("example.org."),
                ttl: 1,
                rdata: Rdata::a([1, 2, 3, 4].into()),
            })
            .unwrap_err();
        assert!(matches!(err, ZoneError::OutOfZone { .. }));
        assert!(z.is_below_cut(&n("ns.sub.example.com.")));
        assert!(!z.is_below_cut(&n("sub.example.com.")));
    }

    #[test]
    fn set_serial_changes_only_the_serial() {
        let mut z = sample();
        z.set_serial(Serial(42));
        assert_eq!(z.serial(), Some(Serial(42)));
        assert_eq!(z.soa().unwrap().minimum, 300);
    }

    /// A small deterministic generator (xorshift64*), so a failure replays.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A name of 0–3 random labels over a small alphabet that includes
    /// both cases and the octets the key escapes, below `suffix`.
    fn random_name(rng: &mut Random, suffix: &Name) -> Name {
        const OCTETS: &[u8] = &[b'a', b'A', b'b', b'B', b'-', b'0', 0, 1, 2, 0xff, b'z'];
        let mut name = suffix.clone();
        for _ in 0..rng.below(4) {
            let len = 1 + rng.below(3) as usize;
            let label: Vec<u8> = (0..len)
                .map(|_| OCTETS[rng.below(OCTETS.len() as u64) as usize])
                .collect();
            name = Name::from_labels([label.as_slice()])
                .unwrap()
                .append_domain(&name)
                .unwrap();
        }
        name
    }

    #[test]
    fn canonical_keys_sort_as_names_do() {
        let mut rng = Random(0x9e37_79b9_7f4a_7c15);
        let suffixes = [n("example.com."), n("."), n("a.example.com.")];
        let mut names: Vec<Name> = (0..3000)
            .map(|i| random_name(&mut rng, &suffixes[i % suffixes.len()]))
            .collect();
        let mut relative = Name::from_labels([b"a".as_slice(), b"b".as_slice()]).unwrap();
        relative.set_fqdn(false);
        names.push(relative);
        for pair in names.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert_eq!(
                canonical_key(a).cmp(&canonical_key(b)),
                a.cmp(b),
                "{a:?} vs {b:?}"
            );
        }
        for _ in 0..20_000 {
            let a = &names[rng.below(names.len() as u64) as usize];
            let b = &names[rng.below(names.len() as u64) as usize];
            assert_eq!(
                canonical_key(a).cmp(&canonical_key(b)),
                a.cmp(b),
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn from_records_is_adding_each_record_in_order() {
        let mut rng = Random(42);
        let origin = n("example.com.");
        for round in 0..200 {
            let mut records = Vec::new();
            for _ in 0..rng.below(60) {
                let name = random_name(&mut rng, &origin);
                let ttl = [300, 600][rng.below(2) as usize];
                let rdata = match rng.below(3) {
                    0 => Rdata::a(std::net::Ipv4Addr::from(rng.below(4) as u32)),
                    1 => Rdata::name_only(RecordType::NS, &random_name(&mut rng, &origin)),
                    _ => Rdata::name_only(RecordType::CNAME, &random_name(&mut rng, &origin)),
                };
                records.push(Record { name, ttl, rdata });
            }
            if round % 10 == 0 {
                let at = rng.below(records.len() as u64 + 1) as usize;
                records.insert(
                    at,
                    Record {
                        name: n("elsewhere.org."),
                        ttl: 1,
                        rdata: Rdata::a(std::net::Ipv4Addr::LOCALHOST),
                    },
                );
            }
            let mut one_by_one = Zone::new(origin.clone());
            let mut conflicts = Vec::new();
            let mut failed = None;
            for (i, record) in records.iter().enumerate() {
                match one_by_one.add(record.clone()) {
                    Ok(Some(kept)) => conflicts.push((i, kept)),
                    Ok(None) => {}
                    Err(e) => {
                        failed = Some((i, e));
                        break;
                    }
                }
            }
            match (Zone::from_records(origin.clone(), records.clone()), failed) {
                (Ok(built), None) => {
                    assert_eq!(built.zone, one_by_one, "round {round}: {records:?}");
                    let keys: Vec<&Name> = built.zone.nodes().map(|(k, _)| k).collect();
                    let expected: Vec<&Name> = one_by_one.nodes().map(|(k, _)| k).collect();
                    // The key kept is the first spelling, as `entry` keeps it.
                    for (a, b) in keys.iter().zip(&expected) {
                        assert!(a.eq_case(b), "round {round}: {a} vs {b}");
                    }
                    assert_eq!(built.ttl_conflicts, conflicts, "round {round}");
                    let conflicting: Vec<(u32, RecordType)> = conflicts
                        .iter()
                        .map(|&(i, _)| (records[i].ttl, records[i].rdata.rtype()))
                        .collect();
                    assert_eq!(built.conflicting, conflicting, "round {round}");
                    for (node, &first) in built.first_records.iter().enumerate() {
                        assert!(records[first].name == *keys[node], "round {round}");
                        assert!(
                            records[..first].iter().all(|r| r.name != *keys[node]),
                            "round {round}: the first record of {}",
                            keys[node]
                        );
                    }
                }
                (Err((at, e)), Some((i, f))) => {
                    assert_eq!((at, e), (i, f), "round {round}");
                }
                (built, failed) => panic!(
                    "round {round}: from_records {:?}, one by one {failed:?}",
                    built.map(|b| b.zone)
                ),
            }
        }
    }
}
