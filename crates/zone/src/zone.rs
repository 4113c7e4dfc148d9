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
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Node {
    rrsets: BTreeMap<u16, Rrset>,
}

/// A whole zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    origin: Name,
    nodes: BTreeMap<Name, Node>,
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
        for name in self.nodes.keys() {
            rules::check_node(self, name, &mut errors);
        }
        errors
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
}
