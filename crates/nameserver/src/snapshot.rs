//! Zone snapshots: a [`Zone`] turned, once, into the immutable form the
//! answer path reads without allocating or locking.
//!
//! ```text
//!  Zone ──build──▶ ZoneSnapshot
//!                   ├─ index: lowercased wire owner ──▶ node id (every ancestor up to the apex too:
//!                   │                                    empty non-terminals exist, so NXDOMAIN is exact)
//!                   └─ nodes[id]: RRsets sorted by type, each record's RDATA pre-encoded
//!                        ├─ interrupt: the delegation or DNAME above that takes over the answer
//!                        ├─ wildcard: the `*` child, if any
//!                        └─ additional: per NS/MX/SRV RRset, the in-zone A/AAAA of its targets
//! ```
//!
//! Names are keyed in lowercased wire form, so the answer path can look up a
//! query name and each of its ancestors as suffixes of one stack buffer.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use cutover_zone::rdata::DNAME;
use cutover_zone::{Name, RecordType, Serial, Zone};

/// The index from lowercased wire owner names to node ids.
type NodeIndex = HashMap<Box<[u8]>, u32, BuildHasherDefault<NameHasher>>;

/// A zone prepared for answering.
pub struct ZoneSnapshot {
    /// The apex name.
    origin: Name,
    /// The apex in lowercased wire form.
    apex: Box<[u8]>,
    /// The SOA serial.
    serial: Serial,
    /// Every node, the apex first.
    nodes: Vec<Node>,
    /// Owner name to node id.
    index: NodeIndex,
    /// The TTL of the SOA in negative answers: min(SOA TTL, SOA MINIMUM).
    negative_ttl: u32,
}

/// One owner name and what the answer path needs to know about it.
pub(crate) struct Node {
    /// This node's id (its position in the snapshot).
    pub(crate) id: u32,
    /// The number of labels of the owner, root excluded.
    pub(crate) labels: u8,
    /// The owner in wire form, case as in the zone.
    pub(crate) owner: Box<[u8]>,
    /// The owner lowercased.
    pub(crate) owner_lower: Box<[u8]>,
    /// The RRsets, sorted by type code (empty for an empty non-terminal).
    pub(crate) rrsets: Box<[EncodedRrset]>,
    /// What takes over a query for exactly this name.
    pub(crate) exact: Option<Interrupt>,
    /// What takes over a query for a name below this one.
    pub(crate) below: Option<Interrupt>,
    /// The node `*.<this name>`, when it exists.
    pub(crate) wildcard: Option<u32>,
}

/// A delegation or a DNAME that answers instead of the node itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// A zone cut (NS below the apex) at this node: answer with a referral.
    Cut(u32),
    /// A DNAME at this node: synthesise a CNAME.
    Dname(u32),
}

/// An RRset with its records ready to copy into a response.
pub(crate) struct EncodedRrset {
    /// The type code.
    pub(crate) rtype: u16,
    /// The TTL.
    pub(crate) ttl: u32,
    /// The records, in canonical order.
    pub(crate) records: Box<[EncodedRecord]>,
    /// For NS, MX and SRV: the address records to add for the targets.
    pub(crate) additional: Box<[Additional]>,
}

/// One record's RDATA.
pub(crate) struct EncodedRecord {
    /// Uncompressed RDATA as in the zone.
    pub(crate) wire: Box<[u8]>,
    /// The same bytes lowercased (empty when the data holds no name).
    pub(crate) lower: Box<[u8]>,
    /// Where compressible names sit in `wire` (start, length), for NS,
    /// CNAME, PTR, MX and SOA (RFC 3597 §4: never any other type).
    pub(crate) names: [(u16, u16); 2],
    /// How many of `names` are used.
    pub(crate) name_count: u8,
}

/// Address records to put in the additional section for one target name.
pub(crate) struct Additional {
    /// The target name, wire form, as written in the referring record.
    pub(crate) owner: Box<[u8]>,
    /// The target name lowercased.
    pub(crate) owner_lower: Box<[u8]>,
    /// The node holding the A/AAAA (the target itself, or the wildcard
    /// that covers it).
    pub(crate) node: u32,
}

/// A fast hash for owner names (the zone's names are inserted by its
/// operator; queries only look up, so colliding inserts are not an attack).
#[derive(Default, Clone, Copy)]
pub(crate) struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.mix(u64::from_le_bytes(tail) ^ ((rest.len() as u64) << 56));
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

impl NameHasher {
    /// Folds one word in (the FxHash step).
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl ZoneSnapshot {
    /// Prepares a zone for answering.
    pub fn build(zone: &Zone) -> ZoneSnapshot {
        let origin = zone.origin().clone();
        let apex = lower_wire(&origin);
        let mut nodes: Vec<Node> = Vec::new();
        let mut index = NodeIndex::default();
        let add_node = |nodes: &mut Vec<Node>, index: &mut NodeIndex, owner: &[u8]| -> u32 {
            let lower = lowercase(owner);
            if let Some(id) = index.get(&lower[..]) {
                return *id;
            }
            let id = nodes.len() as u32;
            nodes.push(Node {
                id,
                labels: crate::wire::NameBuf::from_wire(&lower)
                    .map_or(0, |n| n.label_count() as u8),
                owner: owner.into(),
                owner_lower: lower.clone().into(),
                rrsets: Box::new([]),
                exact: None,
                below: None,
                wildcard: None,
            });
            index.insert(lower.into(), id);
            id
        };
        add_node(&mut nodes, &mut index, &origin_wire(&origin));
        // Every owner and every ancestor between it and the apex.
        for (name, _) in zone.nodes() {
            let wire = origin_wire(name);
            let mut start = 0;
            while wire.len() - start > apex.len() {
                add_node(&mut nodes, &mut index, &wire[start..]);
                start += 1 + wire[start] as usize;
            }
        }
        for (name, node) in zone.nodes() {
            let id = index[&lower_wire(name)[..]] as usize;
            nodes[id].rrsets = node
                .rrsets()
                .map(|(rtype, rrset)| EncodedRrset {
                    rtype: u16::from(rtype),
                    ttl: rrset.ttl,
                    records: rrset
                        .rdatas()
                        .iter()
                        .map(|r| encode(u16::from(rtype), r.wire()))
                        .collect(),
                    additional: Box::new([]),
                })
                .collect();
        }
        let mut snapshot = ZoneSnapshot {
            serial: zone.serial().unwrap_or(Serial(0)),
            negative_ttl: zone
                .soa()
                .map(|soa| soa.minimum.min(zone.soa_ttl().unwrap_or(soa.minimum)))
                .unwrap_or(0),
            origin,
            apex,
            nodes,
            index,
        };
        snapshot.link();
        snapshot
    }

    /// Computes interrupts, wildcard children and additional targets.
    fn link(&mut self) {
        let apex_len = self.apex.len();
        for id in 0..self.nodes.len() {
            let owner = self.nodes[id].owner_lower.clone();
            // Ancestors from the top down: the first cut or DNAME found wins.
            let mut starts = Vec::new();
            let mut s = 0;
            while owner.len() - s > apex_len {
                starts.push(s);
                s += 1 + owner[s] as usize;
            }
            let mut exact = None;
            let mut below = None;
            for (depth, start) in starts.iter().rev().enumerate() {
                let is_self = depth == starts.len() - 1;
                let Some(&anc) = self.index.get(&owner[*start..]) else {
                    continue;
                };
                let node = &self.nodes[anc as usize];
                if node.has(u16::from(RecordType::NS)) {
                    exact = exact.or(Some(Interrupt::Cut(anc)));
                    below = below.or(Some(Interrupt::Cut(anc)));
                }
                if node.has(DNAME) {
                    if !is_self {
                        exact = exact.or(Some(Interrupt::Dname(anc)));
                    }
                    below = below.or(Some(Interrupt::Dname(anc)));
                }
            }
            if id == 0 && self.nodes[0].has(DNAME) {
                below = Some(Interrupt::Dname(0));
            }
            let mut wildcard = Vec::with_capacity(owner.len() + 2);
            wildcard.extend_from_slice(b"\x01*");
            wildcard.extend_from_slice(&owner);
            let node = &mut self.nodes[id];
            node.exact = exact;
            node.below = below;
            node.wildcard = self.index.get(&wildcard[..]).copied();
        }
        for id in 0..self.nodes.len() {
            for set in 0..self.nodes[id].rrsets.len() {
                let rrset = &self.nodes[id].rrsets[set];
                let offset = match rrset.rtype {
                    2 => 0,
                    15 => 2,
                    33 => 6,
                    _ => continue,
                };
                let mut additional: Vec<Additional> = Vec::new();
                for record in rrset.records.iter() {
                    let Some(target) = record.wire.get(offset..) else {
                        continue;
                    };
                    let target_lower = lowercase(target);
                    if additional
                        .iter()
                        .any(|a| *a.owner_lower == target_lower[..])
                    {
                        continue;
                    }
                    if let Some(node) = self.address_node(&target_lower) {
                        additional.push(Additional {
                            owner: target.into(),
                            owner_lower: target_lower.into(),
                            node,
                        });
                    }
                }
                self.nodes[id].rrsets[set].additional = additional.into();
            }
        }
    }

    /// The node whose A/AAAA answer for `target` (exactly, or by wildcard).
    fn address_node(&self, target: &[u8]) -> Option<u32> {
        if !crate::wire::is_at_or_below(target, &self.apex) {
            return None;
        }
        let has_address = |id: u32| {
            let n = &self.nodes[id as usize];
            (n.has(1) || n.has(28)).then_some(id)
        };
        if let Some(&id) = self.index.get(target) {
            return has_address(id);
        }
        let mut s = 0;
        while target[s] != 0 {
            s += 1 + target[s] as usize;
            if let Some(&id) = self.index.get(&target[s..]) {
                return self.nodes[id as usize].wildcard.and_then(has_address);
            }
        }
        None
    }

    /// The apex name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The SOA serial.
    pub fn serial(&self) -> Serial {
        self.serial
    }

    /// The apex, lowercased wire form.
    pub(crate) fn apex(&self) -> &[u8] {
        &self.apex
    }

    /// The apex node.
    pub(crate) fn apex_node(&self) -> &Node {
        &self.nodes[0]
    }

    /// The node at a lowercased wire name.
    pub(crate) fn find(&self, lower: &[u8]) -> Option<&Node> {
        self.index.get(lower).map(|id| &self.nodes[*id as usize])
    }

    /// A node by id.
    pub(crate) fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    /// The TTL of the SOA in negative answers.
    pub(crate) fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }
}

impl std::fmt::Debug for ZoneSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneSnapshot")
            .field("origin", &self.origin.to_string())
            .field("serial", &self.serial)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

impl Node {
    /// True when the node has an RRset of this type.
    pub(crate) fn has(&self, rtype: u16) -> bool {
        self.rrset(rtype).is_some()
    }

    /// The RRset of one type.
    pub(crate) fn rrset(&self, rtype: u16) -> Option<&EncodedRrset> {
        self.rrsets
            .binary_search_by_key(&rtype, |s| s.rtype)
            .ok()
            .map(|i| &self.rrsets[i])
    }
}

/// Pre-encodes one record's RDATA, locating the names that may be compressed.
fn encode(rtype: u16, wire: &[u8]) -> EncodedRecord {
    let mut names = [(0u16, 0u16); 2];
    let mut name_count = 0u8;
    let mut mark = |start: usize| {
        if let Some(len) = cutover_zone::rdata::wire_name_len(wire.get(start..).unwrap_or_default())
        {
            names[name_count as usize] = (start as u16, len as u16);
            name_count += 1;
            return start + len;
        }
        start
    };
    match rtype {
        2 | 5 | 12 => {
            mark(0);
        }
        15 => {
            mark(2);
        }
        6 => {
            let next = mark(0);
            if next > 0 {
                mark(next);
            }
        }
        _ => {}
    }
    let lower = match rtype {
        2 | 5 | 6 | 12 | 15 | 33 => lowercase(wire),
        t if t == DNAME => lowercase(wire),
        _ => Vec::new(),
    };
    EncodedRecord {
        wire: wire.into(),
        lower: lower.into(),
        names,
        name_count,
    }
}

/// A name in wire form, case kept.
fn origin_wire(name: &Name) -> Vec<u8> {
    let mut wire = Vec::with_capacity(name.len() + 2);
    cutover_zone::rdata::push_name(&mut wire, name);
    wire
}

/// A name in wire form, lowercased.
fn lower_wire(name: &Name) -> Box<[u8]> {
    lowercase(&origin_wire(name)).into()
}

/// ASCII-lowercases bytes (label lengths are below 64, so never altered).
fn lowercase(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(u8::to_ascii_lowercase).collect()
}
