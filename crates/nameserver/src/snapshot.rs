//! Zone snapshots: a zone turned, once, into the compact immutable form the
//! answer path reads without allocating or locking.
//!
//! ```text
//!  records ──SnapshotBuilder::add (one at a time)──▶ finish ──▶ ZoneSnapshot
//!  (store rows, or ZoneSnapshot::build(&Zone))
//!
//!  ZoneSnapshot
//!   ├─ bytes: one arena: lowercased owners (an ancestor shares its child's
//!   │         bytes), RDATA, and a lowercased copy of RDATA holding names
//!   ├─ index: open addressing table of node ids, keyed by the owner bytes
//!   │         (every ancestor up to the apex too: empty non-terminals exist,
//!   │         so NXDOMAIN is exact)
//!   ├─ nodes[id]    ─▶ rrsets[first..first + count], sorted by type
//!   │     ├─ interrupt: the delegation or DNAME above that takes over the answer
//!   │     └─ wildcard: the `*` child, if any
//!   ├─ rrsets[i]    ─▶ records[first..], additional[first..]
//!   ├─ records[i]   ─▶ RDATA in `bytes`, where its compressible names sit
//!   └─ additional[i]: an NS/MX/SRV target in the zone and the node with its A/AAAA
//! ```
//!
//! Every table is a flat `Vec` of small `Copy` structs that refer to each
//! other by `u32` index or arena offset, so a record costs a few tens of
//! bytes and the whole snapshot is a handful of allocations. Names are
//! lowercased wire form: the answer path looks a query name and each of its
//! ancestors up as suffixes of one stack buffer, and writes owners lowercase
//! (the question is copied from the query, so it keeps its case).

mod check;
mod patch;

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use cutover_zone::rdata::{wire_name_len, DNAME};
use cutover_zone::{Name, Serial, Zone};

use crate::wire::{is_at_or_below, NAME_MAX};

pub use check::Unservable;
pub use patch::{Rebuild, RrsetChange};

/// Marks an absent node id.
const NONE: u32 = u32::MAX;
/// Marks an empty slot in the name index (no node has id [`NONE`]).
const EMPTY: u64 = u64::MAX;
/// The hash tag half of an index slot.
const TAG_BITS: u64 = 0xffff_ffff << 32;
/// The tag bits of a packed interrupt.
const INTERRUPT_TAG: u32 = 0b11 << 30;
/// Packed interrupt tag: a zone cut.
const TAG_CUT: u32 = 0b01 << 30;
/// Packed interrupt tag: a DNAME.
const TAG_DNAME: u32 = 0b10 << 30;
/// The most additional targets with addresses used per RRset (the answer
/// path uses at most 32 per response).
const ADDITIONAL_PER_RRSET: usize = 32;
/// The largest record count hint the builder sizes its tables for (a
/// wrong hint must not reserve gigabytes).
pub const CAPACITY_HINT_MAX: usize = 1 << 24;
/// The most nodes a snapshot holds (ids keep two bits for the interrupt tag).
const NODES_MAX: usize = 1 << 30;
/// Record type codes the build looks at.
mod rtype {
    /// NS.
    pub const NS: u16 = 2;
    /// CNAME.
    pub const CNAME: u16 = 5;
    /// SOA.
    pub const SOA: u16 = 6;
    /// PTR.
    pub const PTR: u16 = 12;
    /// MX.
    pub const MX: u16 = 15;
    /// SRV.
    pub const SRV: u16 = 33;
    /// A.
    pub const A: u16 = 1;
    /// AAAA.
    pub const AAAA: u16 = 28;
}

/// A zone prepared for answering: a base arena, shared between versions,
/// and an overlay of the nodes changed since it was built (see
/// [`ZoneSnapshot::patched`]).
pub struct ZoneSnapshot {
    /// The apex name.
    origin: Name,
    /// The apex in lowercased wire form.
    apex: Box<[u8]>,
    /// The SOA serial.
    serial: Serial,
    /// The TTL of the SOA in negative answers: min(SOA TTL, SOA MINIMUM).
    negative_ttl: u32,
    /// The arena built from scratch, shared by every version patched from it.
    base: Arc<Base>,
    /// The nodes changed since the base was built.
    overlay: Overlay,
    /// The number of nodes.
    node_count: usize,
    /// The number of records.
    record_count: usize,
}

/// The flat tables a node's RRsets live in (the base arena's, or one
/// patched node's own).
#[derive(Default)]
struct Tables {
    /// Every byte: owners, RDATA, lowercased RDATA.
    bytes: Box<[u8]>,
    /// Every RRset, a node's contiguous and sorted by type.
    rrsets: Box<[Rrset]>,
    /// Every record, an RRset's contiguous and in canonical order.
    records: Box<[Record]>,
    /// Every additional target, an RRset's contiguous.
    additional: Box<[Additional]>,
}

/// A zone built from scratch into one arena.
struct Base {
    /// The RRsets, records, targets and bytes.
    tables: Tables,
    /// Every node, the apex first.
    nodes: Box<[Node]>,
    /// How many nodes sit directly below each node (read when patching:
    /// a node with none and no data is removed).
    children: Box<[u32]>,
    /// Owner name to node id.
    index: NameIndex,
}

/// One node as changed since the base was built: its whole content, in
/// tables of its own.
struct Patch {
    /// Its RRsets, records, targets and owner bytes.
    tables: Tables,
    /// The node (owner at offset 0 of `tables.bytes`, RRsets from 0).
    node: Node,
    /// How many nodes sit directly below it.
    children: u32,
}

/// The hasher of node ids in the overlay.
type IdHash = BuildHasherDefault<NameHasher>;

/// The nodes changed since the base was built, in persistent maps: a new
/// version shares every entry it did not change with the one it came from.
#[derive(Clone, Default)]
struct Overlay {
    /// True when anything was patched (the answer path then consults the
    /// maps, and resolves additional targets as it goes).
    patched: bool,
    /// Node id to its new content, or `None` for a base node deleted.
    by_id: rpds::HashTrieMapSync<u32, Option<Arc<Patch>>, IdHash>,
    /// Owner (lowercased wire form) to id, for nodes the base does not hold.
    by_name: rpds::HashTrieMapSync<Box<[u8]>, u32, IdHash>,
    /// The id the next new node gets.
    next_id: u32,
    /// Entries plus records held: what decides when to compact.
    weight: usize,
    /// Heap bytes of the patched nodes (estimated).
    heap: usize,
}

/// One owner name and what the answer path needs to know about it.
#[derive(Clone, Copy, Debug)]
struct Node {
    /// Where the lowercased owner starts in the arena.
    owner: u32,
    /// The owner's length in bytes.
    owner_len: u8,
    /// The number of labels of the owner, root excluded.
    labels: u8,
    /// How many RRsets (0 for an empty non-terminal).
    rrset_count: u16,
    /// The first RRset.
    first_rrset: u32,
    /// What takes over a query below this name (and, unless it is a DNAME
    /// at this very node, for this name): tag bits and a node id.
    interrupt: u32,
    /// The node `*.<this name>`, or [`NONE`].
    wildcard: u32,
}

/// A delegation or a DNAME that answers instead of the node itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// A zone cut (NS below the apex) at this node: answer with a referral.
    Cut(u32),
    /// A DNAME at this node: synthesise a CNAME.
    Dname(u32),
}

/// One RRset: its type, TTL and where its records and additional targets are.
#[derive(Clone, Copy, Debug)]
struct Rrset {
    /// The type code.
    rtype: u16,
    /// How many additional targets.
    additional_count: u16,
    /// The TTL.
    ttl: u32,
    /// The first record.
    first_record: u32,
    /// How many records.
    record_count: u32,
    /// The first additional target.
    first_additional: u32,
}

/// One record's RDATA, located in the arena.
#[derive(Clone, Copy, Debug)]
struct Record {
    /// Where the RDATA starts.
    wire: u32,
    /// Its length.
    len: u16,
    /// How many of `names` are used.
    name_count: u8,
    /// True when a lowercased copy follows the RDATA (otherwise the RDATA
    /// is its own lowercase form).
    lower_follows: bool,
    /// Where compressible names sit in the RDATA (start, length), for NS,
    /// CNAME, PTR, MX and SOA (RFC 3597 §4: never any other type).
    names: [(u16, u16); 2],
}

/// Address records to put in the additional section for one target name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Additional {
    /// Where the lowercased target name starts in the arena.
    owner: u32,
    /// Its length.
    owner_len: u8,
    /// The node holding the A/AAAA (the target itself, or the wildcard
    /// that covers it).
    node: u32,
}

/// A node as the answer path sees it.
#[derive(Clone, Copy)]
pub(crate) struct NodeRef<'z> {
    /// The snapshot it belongs to.
    zone: &'z ZoneSnapshot,
    /// The tables its RRsets are in.
    tables: &'z Tables,
    /// Its id.
    id: u32,
    /// Its entry.
    node: &'z Node,
}

/// An RRset as the answer path sees it.
#[derive(Clone, Copy)]
pub(crate) struct RrsetRef<'z> {
    /// The snapshot it belongs to.
    zone: &'z ZoneSnapshot,
    /// The tables its records are in.
    tables: &'z Tables,
    /// Its entry.
    set: &'z Rrset,
}

/// One record's bytes, ready to copy into a response.
#[derive(Clone, Copy)]
pub(crate) struct RecordRef<'z> {
    /// Uncompressed RDATA as in the zone.
    pub(crate) wire: &'z [u8],
    /// The same bytes lowercased.
    pub(crate) lower: &'z [u8],
    /// Where compressible names sit in `wire` (start, length).
    pub(crate) names: &'z [(u16, u16)],
}

/// The name index: open addressing over node ids, linear probing, keyed by
/// the owner bytes read from the arena. Each slot carries 32 bits of the
/// name's hash beside the id, so a probe past another name compares no bytes
/// (and touches neither its node nor the arena).
struct NameIndex {
    /// Hash tag (high half) and node id (low half), [`EMPTY`] for an empty
    /// slot; a power-of-two count.
    slots: Box<[u64]>,
    /// 64 minus log2 of the slot count: a hash's top bits pick the slot.
    shift: u32,
}

/// Why a record cannot go into a snapshot.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// The owner is not a well-formed uncompressed wire name.
    #[error("owner {0:02x?} is not an uncompressed wire name")]
    BadOwner(Vec<u8>),
    /// The owner is not at or below the zone's apex.
    #[error("owner {owner:02x?} is outside the zone {origin}")]
    OutOfZone {
        /// The owner, wire form.
        owner: Vec<u8>,
        /// The zone's apex.
        origin: String,
    },
    /// The RDATA is longer than 65535 bytes.
    #[error("RDATA of {0} bytes is longer than 65535")]
    RdataTooLong(usize),
    /// The zone does not fit the snapshot's 32-bit offsets.
    #[error("the zone is too large for one snapshot ({0})")]
    TooLarge(&'static str),
}

/// Builds a [`ZoneSnapshot`] from records fed one at a time, in any order.
pub struct SnapshotBuilder {
    /// The apex name.
    origin: Name,
    /// The apex, lowercased wire form (also at offset 0 of `bytes`).
    apex: Box<[u8]>,
    /// The arena being filled.
    bytes: Vec<u8>,
    /// The nodes so far (RRset fields filled in by `finish`).
    nodes: Vec<Node>,
    /// The parent of each node ([`NONE`] for the apex), always a lower id.
    parents: Vec<u32>,
    /// The records so far, in arrival order.
    pending: Vec<Pending>,
    /// Owner to node id, grown as nodes come.
    index: NameIndex,
    /// The node of the last record added (rows usually come grouped by owner).
    last: u32,
}

/// A record added but not yet grouped into its RRset.
#[derive(Clone, Copy)]
struct Pending {
    /// Its node.
    node: u32,
    /// Its type.
    rtype: u16,
    /// Its RDATA length.
    len: u16,
    /// Its TTL.
    ttl: u32,
    /// Where its RDATA starts in the arena (a lowercased copy follows when
    /// the type holds names and the data has upper case).
    wire: u32,
}

impl ZoneSnapshot {
    /// Prepares a zone for answering.
    pub fn build(zone: &Zone) -> ZoneSnapshot {
        let mut builder = SnapshotBuilder::with_capacity(zone.origin(), zone.record_count());
        let mut owner = Vec::with_capacity(NAME_MAX);
        for (name, node) in zone.nodes() {
            owner.clear();
            cutover_zone::rdata::push_name(&mut owner, name);
            for (rtype, rrset) in node.rrsets() {
                for rdata in rrset.rdatas() {
                    // A Zone holds only names at or below its origin and
                    // RDATA it could parse (at most 65535 bytes): the
                    // builder accepts every such record.
                    builder
                        .add(&owner, u16::from(rtype), rrset.ttl, rdata.wire())
                        .expect("a Zone's records fit a snapshot");
                }
            }
        }
        builder.finish()
    }

    /// The apex name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The SOA serial.
    pub fn serial(&self) -> Serial {
        self.serial
    }

    /// The number of nodes (owners and empty non-terminals).
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// The number of records.
    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// The number of nodes changed since the base arena was built (0 for a
    /// snapshot built from scratch).
    pub fn patched_nodes(&self) -> usize {
        self.overlay.by_id.size()
    }

    /// The heap bytes the snapshot holds (the base arena, shared with the
    /// versions patched from it, and the overlay, estimated).
    pub fn heap_size(&self) -> usize {
        use std::mem::size_of;
        let base = &self.base;
        base.tables.heap_size()
            + self.apex.len()
            + base.nodes.len() * (size_of::<Node>() + size_of::<u32>())
            + base.index.slots.len() * size_of::<u64>()
            + self.overlay.heap
    }

    /// The apex, lowercased wire form.
    pub(crate) fn apex(&self) -> &[u8] {
        &self.apex
    }

    /// The apex node.
    pub(crate) fn apex_node(&self) -> NodeRef<'_> {
        self.node(0)
    }

    /// The node at a lowercased wire name: the overlay's version when it
    /// changed the node (none when it deleted it), else the base's.
    pub(crate) fn find(&self, lower: &[u8]) -> Option<NodeRef<'_>> {
        let base = &*self.base;
        let overlay = &self.overlay;
        match base.index.find(lower, &base.tables.bytes, &base.nodes) {
            Some(id) if !overlay.patched => Some(self.base_node(id)),
            Some(id) => match overlay.by_id.get(&id) {
                None => Some(self.base_node(id)),
                Some(patch) => patch.as_deref().map(|patch| self.patch_node(id, patch)),
            },
            None if !overlay.patched => None,
            None => {
                let id = *overlay.by_name.get(lower)?;
                let patch = overlay.by_id.get(&id)?.as_deref()?;
                Some(self.patch_node(id, patch))
            }
        }
    }

    /// A node by id (ids come from this snapshot: the apex, a node found,
    /// or one a node refers to, which is never one deleted).
    pub(crate) fn node(&self, id: u32) -> NodeRef<'_> {
        if self.overlay.patched {
            if let Some(patch) = self.overlay.by_id.get(&id) {
                match patch {
                    Some(patch) => return self.patch_node(id, patch),
                    None => {
                        // Patching keeps no reference to a deleted node.
                        debug_assert!(false, "node {id} was deleted");
                        return self.base_node(0);
                    }
                }
            }
        }
        self.base_node(id)
    }

    /// A node of the base arena.
    fn base_node(&self, id: u32) -> NodeRef<'_> {
        NodeRef {
            zone: self,
            tables: &self.base.tables,
            id,
            node: &self.base.nodes[id as usize],
        }
    }

    /// A node of the overlay.
    fn patch_node<'z>(&'z self, id: u32, patch: &'z Patch) -> NodeRef<'z> {
        NodeRef {
            zone: self,
            tables: &patch.tables,
            id,
            node: &patch.node,
        }
    }

    /// Every node: the base's the overlay did not change or delete, then
    /// the overlay's.
    fn nodes(&self) -> impl Iterator<Item = NodeRef<'_>> {
        let overlay = &self.overlay;
        let base = (0..self.base.nodes.len() as u32)
            .filter(move |id| !overlay.patched || !overlay.by_id.contains_key(id))
            .map(move |id| self.base_node(id));
        let patched = overlay
            .by_id
            .iter()
            .filter_map(move |(&id, patch)| Some(self.patch_node(id, patch.as_deref()?)));
        base.chain(patched)
    }

    /// How many nodes sit directly below node `id`.
    fn children(&self, id: u32) -> u32 {
        match self.overlay.by_id.get(&id) {
            Some(patch) => patch.as_ref().map_or(0, |p| p.children),
            None => self.base.children.get(id as usize).copied().unwrap_or(0),
        }
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
            .field("nodes", &self.node_count)
            .field("records", &self.record_count)
            .field("patched", &self.overlay.by_id.size())
            .finish()
    }
}

impl<'z> NodeRef<'z> {
    /// The node's id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The number of labels of the owner, root excluded.
    pub(crate) fn labels(&self) -> usize {
        self.node.labels as usize
    }

    /// The owner, lowercased wire form.
    pub(crate) fn owner(&self) -> &'z [u8] {
        owner_bytes(&self.tables.bytes, self.node)
    }

    /// What takes over a query for a name below this one (ids of nodes
    /// stay the same when the overlay changes them).
    pub(crate) fn below(&self) -> Option<Interrupt> {
        unpack(self.node.interrupt)
    }

    /// What takes over a query for exactly this name: the same as below,
    /// except that a DNAME at this node answers for names below it only.
    pub(crate) fn exact(&self) -> Option<Interrupt> {
        match self.below() {
            Some(Interrupt::Dname(id)) if id == self.id => None,
            other => other,
        }
    }

    /// The node `*.<this name>`, when it exists.
    pub(crate) fn wildcard(&self) -> Option<u32> {
        (self.node.wildcard != NONE).then_some(self.node.wildcard)
    }

    /// The RRsets, sorted by type code.
    fn rrsets(&self) -> &'z [Rrset] {
        let first = self.node.first_rrset as usize;
        &self.tables.rrsets[first..first + self.node.rrset_count as usize]
    }

    /// An RRset of this node.
    fn set(&self, set: &'z Rrset) -> RrsetRef<'z> {
        RrsetRef {
            zone: self.zone,
            tables: self.tables,
            set,
        }
    }

    /// The RRset with the lowest type code (for ANY).
    pub(crate) fn first_rrset(&self) -> Option<RrsetRef<'z>> {
        self.rrsets().first().map(|set| self.set(set))
    }

    /// The RRset of one type.
    pub(crate) fn rrset(&self, rtype: u16) -> Option<RrsetRef<'z>> {
        let sets = self.rrsets();
        let at = sets.binary_search_by_key(&rtype, |s| s.rtype).ok()?;
        Some(self.set(&sets[at]))
    }

    /// True when the node has an RRset of this type.
    pub(crate) fn has(&self, rtype: u16) -> bool {
        self.rrset(rtype).is_some()
    }
}

impl<'z> RrsetRef<'z> {
    /// The type code.
    pub(crate) fn rtype(&self) -> u16 {
        self.set.rtype
    }

    /// The TTL.
    pub(crate) fn ttl(&self) -> u32 {
        self.set.ttl
    }

    /// The records, in canonical order.
    pub(crate) fn records(&self) -> impl Iterator<Item = RecordRef<'z>> + 'z {
        let first = self.set.first_record as usize;
        let bytes: &'z [u8] = &self.tables.bytes;
        self.tables.records[first..first + self.set.record_count as usize]
            .iter()
            .map(move |record| record_ref(bytes, record))
    }

    /// The first record.
    pub(crate) fn first_record(&self) -> Option<RecordRef<'z>> {
        self.records().next()
    }

    /// For NS, MX and SRV: the targets in the zone, once each, in record
    /// order.
    fn additional(&self) -> &'z [Additional] {
        let first = self.set.first_additional as usize;
        &self.tables.additional[first..first + self.set.additional_count as usize]
    }

    /// For NS, MX and SRV: the first 32 targets with addresses, each with
    /// the node holding them (the target, or the wildcard covering it). A
    /// snapshot built from scratch found the nodes when it was built; a
    /// patched one looks them up now, so a change to a target's addresses
    /// needs no change to the RRsets that name it.
    pub(crate) fn additional_targets(&self) -> impl Iterator<Item = (&'z [u8], u32)> + 'z {
        let (zone, bytes) = (self.zone, &self.tables.bytes[..]);
        self.additional()
            .iter()
            .filter_map(move |target| {
                let at = target.owner as usize;
                let name = &bytes[at..at + target.owner_len as usize];
                let node = match zone.overlay.patched {
                    false => (target.node != NONE).then_some(target.node),
                    true => zone.address_node(name),
                };
                node.map(|node| (name, node))
            })
            .take(ADDITIONAL_PER_RRSET)
    }
}

impl Tables {
    /// The heap bytes the tables hold.
    fn heap_size(&self) -> usize {
        use std::mem::size_of;
        self.bytes.len()
            + self.rrsets.len() * size_of::<Rrset>()
            + self.records.len() * size_of::<Record>()
            + self.additional.len() * size_of::<Additional>()
    }
}

impl NameIndex {
    /// An empty index with room for `count` names at load ≤ 0.75.
    fn with_capacity(count: usize) -> NameIndex {
        let slots = NameIndex::slots_for(count);
        NameIndex {
            slots: vec![EMPTY; slots].into_boxed_slice(),
            shift: 64 - slots.trailing_zeros(),
        }
    }

    /// The power-of-two slot count that holds `count` names at load ≤ 0.75.
    fn slots_for(count: usize) -> usize {
        (count.saturating_mul(4) / 3 + 1)
            .next_power_of_two()
            .max(16)
    }

    /// The slot where probing for `name` starts, and the tag its slots carry.
    fn home(&self, name: &[u8]) -> (usize, u64) {
        let mut hasher = NameHasher::default();
        hasher.write(name);
        let hash = hasher.finish().wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((hash >> self.shift) as usize, hash << 32)
    }

    /// The id of the node named `name`.
    fn find(&self, name: &[u8], bytes: &[u8], nodes: &[Node]) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let (mut at, tag) = self.home(name);
        loop {
            let slot = self.slots[at];
            if slot == EMPTY {
                return None;
            }
            let id = slot as u32;
            if slot & TAG_BITS == tag && owner_bytes(bytes, &nodes[id as usize]) == name {
                return Some(id);
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds a node id under `name` (not present yet); `count` is the number
    /// of ids the index will then hold.
    fn insert(&mut self, name: &[u8], id: u32, count: usize, bytes: &[u8], nodes: &[Node]) {
        if count * 4 > self.slots.len() * 3 {
            self.resize(self.slots.len() * 2, bytes, nodes);
        }
        self.place(name, id);
    }

    /// Rebuilds the table at exactly the size `count` names need (a
    /// capacity hint can have been too large, or growth overshot).
    fn fit(&mut self, count: usize, bytes: &[u8], nodes: &[Node]) {
        let slots = NameIndex::slots_for(count);
        if slots != self.slots.len() {
            self.resize(slots, bytes, nodes);
        }
    }

    /// Moves every id into a table of `slots` slots.
    fn resize(&mut self, slots: usize, bytes: &[u8], nodes: &[Node]) {
        let mut resized = NameIndex {
            slots: vec![EMPTY; slots].into_boxed_slice(),
            shift: 64 - slots.trailing_zeros(),
        };
        for &slot in self.slots.iter().filter(|&&slot| slot != EMPTY) {
            let id = slot as u32;
            resized.place(owner_bytes(bytes, &nodes[id as usize]), id);
        }
        *self = resized;
    }

    /// Puts an id in the first free slot from its home.
    fn place(&mut self, name: &[u8], id: u32) {
        let mask = self.slots.len() - 1;
        let (mut at, tag) = self.home(name);
        while self.slots[at] != EMPTY {
            at = (at + 1) & mask;
        }
        self.slots[at] = tag | u64::from(id);
    }
}

impl SnapshotBuilder {
    /// A builder for the zone at `origin`.
    pub fn new(origin: &Name) -> SnapshotBuilder {
        SnapshotBuilder::with_capacity(origin, 0)
    }

    /// A builder for the zone at `origin` expecting about `records` records
    /// (sizes the tables once instead of growing them; a hint above
    /// [`CAPACITY_HINT_MAX`] counts as that much, the tables grow past it).
    pub fn with_capacity(origin: &Name, records: usize) -> SnapshotBuilder {
        let records = records.min(CAPACITY_HINT_MAX);
        let mut apex = Vec::with_capacity(origin.len() + 2);
        cutover_zone::rdata::push_name(&mut apex, origin);
        apex.make_ascii_lowercase();
        let mut builder = SnapshotBuilder {
            origin: origin.clone(),
            apex: apex.clone().into(),
            bytes: Vec::with_capacity(records.saturating_mul(24).max(apex.len())),
            nodes: Vec::with_capacity(records.saturating_add(1)),
            parents: Vec::with_capacity(records.saturating_add(1)),
            pending: Vec::with_capacity(records),
            index: NameIndex::with_capacity(records.saturating_add(1)),
            last: 0,
        };
        builder.bytes.extend_from_slice(&apex);
        // The first node of an empty builder is far below every limit.
        builder
            .push_node(0, apex.len(), NONE)
            .expect("the apex node fits an empty snapshot");
        builder
    }

    /// Adds one record: its owner (uncompressed wire form, any case), type,
    /// TTL and uncompressed RDATA. Records may come in any order; an RRset
    /// whose records disagree on the TTL gets the smallest, and duplicate
    /// records are kept once.
    pub fn add(
        &mut self,
        owner_wire: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> Result<(), BuildError> {
        let len = u16::try_from(rdata.len()).map_err(|_| BuildError::RdataTooLong(rdata.len()))?;
        let node = self.node_for(owner_wire)?;
        let wire = self.offset(rdata.len() * 2)?;
        self.bytes.extend_from_slice(rdata);
        if holds_names(rtype) && rdata.iter().any(u8::is_ascii_uppercase) {
            self.bytes.extend(rdata.iter().map(u8::to_ascii_lowercase));
        }
        self.pending.push(Pending {
            node,
            rtype,
            len,
            ttl,
            wire,
        });
        Ok(())
    }

    /// Groups the records into RRsets, links delegations, DNAMEs, wildcards
    /// and additional targets, and returns the snapshot.
    pub fn finish(self) -> ZoneSnapshot {
        let SnapshotBuilder {
            origin,
            apex,
            bytes,
            mut nodes,
            parents,
            mut pending,
            mut index,
            last: _,
        } = self;
        index.fit(nodes.len(), &bytes, &nodes);
        let rdata = |p: &Pending| &bytes[p.wire as usize..p.wire as usize + p.len as usize];
        pending.sort_unstable_by(|a, b| {
            (a.node, a.rtype)
                .cmp(&(b.node, b.rtype))
                .then_with(|| rdata(a).cmp(rdata(b)))
                .then(a.ttl.cmp(&b.ttl))
        });
        pending.dedup_by(|b, a| a.node == b.node && a.rtype == b.rtype && rdata(a) == rdata(b));
        let mut rrsets: Vec<Rrset> = Vec::with_capacity(pending.len());
        let mut records: Vec<Record> = Vec::with_capacity(pending.len());
        let mut previous: Option<(u32, u16)> = None;
        for p in &pending {
            if previous == Some((p.node, p.rtype)) {
                let set = rrsets.last_mut().expect("a previous record made an RRset");
                set.record_count += 1;
                set.ttl = set.ttl.min(p.ttl);
            } else if nodes[p.node as usize].rrset_count == u16::MAX {
                // 65535 types at one name: no real zone has them; the rest
                // are left out rather than overflow the count.
                continue;
            } else {
                let node = &mut nodes[p.node as usize];
                if node.rrset_count == 0 {
                    node.first_rrset = rrsets.len() as u32;
                }
                node.rrset_count += 1;
                rrsets.push(Rrset {
                    rtype: p.rtype,
                    additional_count: 0,
                    ttl: p.ttl,
                    first_record: records.len() as u32,
                    record_count: 1,
                    first_additional: 0,
                });
                previous = Some((p.node, p.rtype));
            }
            records.push(encode(p, rdata(p)));
        }
        drop(pending);
        let mut children = vec![0u32; nodes.len()];
        for &parent in &parents {
            if parent != NONE {
                children[parent as usize] += 1;
            }
        }
        let (node_count, record_count) = (nodes.len(), records.len());
        let base = Base {
            tables: Tables {
                bytes: bytes.into_boxed_slice(),
                rrsets: rrsets.into_boxed_slice(),
                records: records.into_boxed_slice(),
                additional: Box::new([]),
            },
            nodes: nodes.into_boxed_slice(),
            children: children.into_boxed_slice(),
            index,
        };
        let mut snapshot = ZoneSnapshot {
            origin,
            apex,
            serial: Serial(0),
            negative_ttl: 0,
            base: Arc::new(base),
            overlay: Overlay {
                next_id: node_count as u32,
                ..Overlay::default()
            },
            node_count,
            record_count,
        };
        snapshot.read_soa();
        snapshot.link(&parents);
        snapshot
    }

    /// The id of the node for `owner`, adding it and every missing ancestor
    /// down to the apex.
    fn node_for(&mut self, owner: &[u8]) -> Result<u32, BuildError> {
        let len = wire_name_len(owner)
            .filter(|&len| len == owner.len() && len <= NAME_MAX)
            .ok_or_else(|| BuildError::BadOwner(owner.to_vec()))?;
        let mut lower = [0u8; NAME_MAX];
        for (to, from) in lower.iter_mut().zip(owner) {
            *to = from.to_ascii_lowercase();
        }
        let lower = &lower[..len];
        if owner_bytes(&self.bytes, &self.nodes[self.last as usize]) == lower {
            return Ok(self.last);
        }
        if let Some(id) = self.index.find(lower, &self.bytes, &self.nodes) {
            self.last = id;
            return Ok(id);
        }
        if !is_at_or_below(lower, &self.apex) {
            return Err(BuildError::OutOfZone {
                owner: owner.to_vec(),
                origin: self.origin.to_string(),
            });
        }
        // The closest ancestor that exists; the names below it are added
        // from the top down, so a parent's id is below its children's.
        let mut missing = [0u8; NAME_MAX / 2 + 1];
        let mut count = 0;
        let mut start = 0;
        let mut parent = loop {
            missing[count] = start as u8;
            count += 1;
            start += 1 + lower[start] as usize;
            if len - start <= self.apex.len() {
                break 0;
            }
            if let Some(id) = self.index.find(&lower[start..], &self.bytes, &self.nodes) {
                break id;
            }
        };
        // The ancestors share the owner's bytes.
        let at = self.offset(len)?;
        self.bytes.extend_from_slice(lower);
        for &start in missing[..count].iter().rev() {
            parent = self.push_node(at + u32::from(start), len - start as usize, parent)?;
        }
        self.last = parent;
        Ok(parent)
    }

    /// Adds a node whose owner is `len` bytes at `at` in the arena, below
    /// the node `parent` ([`NONE`] for the apex).
    fn push_node(&mut self, at: u32, len: usize, parent: u32) -> Result<u32, BuildError> {
        if self.nodes.len() >= NODES_MAX {
            return Err(BuildError::TooLarge("more than 2^30 names"));
        }
        let id = self.nodes.len() as u32;
        let owner = &self.bytes[at as usize..at as usize + len];
        self.nodes.push(Node {
            owner: at,
            owner_len: len as u8,
            labels: label_count(owner),
            rrset_count: 0,
            first_rrset: 0,
            interrupt: 0,
            wildcard: NONE,
        });
        if owner.starts_with(b"\x01*") && parent != NONE {
            self.nodes[parent as usize].wildcard = id;
        }
        self.parents.push(parent);
        self.index
            .insert(owner, id, self.nodes.len(), &self.bytes, &self.nodes);
        Ok(id)
    }

    /// The arena offset of the next byte, checking that `more` bytes still
    /// fit 32-bit offsets.
    fn offset(&self, more: usize) -> Result<u32, BuildError> {
        u32::try_from(self.bytes.len() + more)
            .map(|_| self.bytes.len() as u32)
            .map_err(|_| BuildError::TooLarge("more than 4 GiB of names and data"))
    }
}

impl ZoneSnapshot {
    /// Reads the serial and negative TTL from the apex SOA.
    fn read_soa(&mut self) {
        let Some(soa) = self.apex_node().rrset(rtype::SOA) else {
            return;
        };
        let ttl = soa.ttl();
        let Some(record) = soa.first_record() else {
            return;
        };
        let fixed = record
            .names
            .iter()
            .map(|&(_, len)| len as usize)
            .sum::<usize>();
        let field = |at: usize| -> Option<u32> {
            let bytes = record.wire.get(fixed + at..fixed + at + 4)?;
            Some(u32::from_be_bytes(bytes.try_into().ok()?))
        };
        if let (Some(serial), Some(minimum)) = (field(0), field(16)) {
            self.serial = Serial(serial);
            self.negative_ttl = minimum.min(ttl);
        }
    }

    /// Computes interrupts and additional targets of a snapshot just built
    /// (wildcard children are linked as nodes are added). `parents[id]` is
    /// below `id`, so one pass from the apex down sees every parent before
    /// its children.
    fn link(&mut self, parents: &[u32]) {
        for (id, &parent) in parents.iter().enumerate() {
            let node = self.node(id as u32);
            // The topmost cut or DNAME wins; the apex's NS is no cut, and a
            // DNAME at the apex rewrites only names that do not exist.
            let inherited = match parent {
                0 | NONE => 0,
                parent => self.base.nodes[parent as usize].interrupt,
            };
            let interrupt = if inherited != 0 {
                inherited
            } else if id != 0 && node.has(rtype::NS) {
                TAG_CUT | id as u32
            } else if node.has(DNAME) {
                TAG_DNAME | id as u32
            } else {
                0
            };
            self.base_mut().nodes[id].interrupt = interrupt;
        }
        let mut additional: Vec<Additional> = Vec::new();
        let mut ranges = Vec::new();
        let tables = &self.base.tables;
        for (set, rrset) in tables.rrsets.iter().enumerate() {
            let first = additional.len();
            for target in targets(tables, rrset, &self.apex) {
                let name = &tables.bytes[target.owner as usize..][..target.owner_len as usize];
                let node = self.address_node(name).unwrap_or(NONE);
                additional.push(Additional { node, ..target });
            }
            if additional.len() > first {
                ranges.push((set, first, additional.len() - first));
            }
        }
        let base = self.base_mut();
        for (set, first, count) in ranges {
            let set = &mut base.tables.rrsets[set];
            set.first_additional = first as u32;
            set.additional_count = count as u16;
        }
        base.tables.additional = additional.into_boxed_slice();
    }

    /// The base arena, while the snapshot is being built (not shared yet).
    fn base_mut(&mut self) -> &mut Base {
        Arc::get_mut(&mut self.base).expect("a snapshot being built shares its base with none")
    }

    /// The node whose A/AAAA answer for `target` (exactly, or by wildcard).
    fn address_node(&self, target: &[u8]) -> Option<u32> {
        if !is_at_or_below(target, &self.apex) {
            return None;
        }
        let has_address = |id: u32| {
            let n = self.node(id);
            (n.has(rtype::A) || n.has(rtype::AAAA)).then_some(id)
        };
        if let Some(node) = self.find(target) {
            return has_address(node.id);
        }
        let mut s = 0;
        while target[s] != 0 {
            s += 1 + target[s] as usize;
            if let Some(node) = self.find(&target[s..]) {
                return node.wildcard().and_then(has_address);
            }
        }
        None
    }
}

/// The targets of an NS, MX or SRV RRset that are in the zone (at or below
/// `apex`), once each and in record order, at most 65535 (node: [`NONE`]);
/// none for other types.
fn targets<'t>(
    tables: &'t Tables,
    rrset: &Rrset,
    apex: &'t [u8],
) -> impl Iterator<Item = Additional> + 't {
    let offset = match rrset.rtype {
        rtype::NS => Some(0),
        rtype::MX => Some(2),
        rtype::SRV => Some(6),
        _ => None,
    };
    let records = match offset {
        Some(_) => rrset.first_record as usize..(rrset.first_record + rrset.record_count) as usize,
        None => 0..0,
    };
    let offset = offset.unwrap_or(0);
    let mut seen: Vec<(u32, u8)> = Vec::new();
    tables.records[records].iter().filter_map(move |record| {
        let lower_at = record_lower_at(record) as usize;
        let start = lower_at + offset;
        let len = tables
            .bytes
            .get(start..lower_at + record.len as usize)
            .and_then(wire_name_len)?;
        let target = &tables.bytes[start..start + len];
        let name = |&(at, len): &(u32, u8)| &tables.bytes[at as usize..at as usize + len as usize];
        if !is_at_or_below(target, apex)
            || seen.len() >= usize::from(u16::MAX)
            || seen.iter().any(|seen| name(seen) == target)
        {
            return None;
        }
        seen.push((start as u32, len as u8));
        Some(Additional {
            owner: start as u32,
            owner_len: len as u8,
            node: NONE,
        })
    })
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

/// A node's owner bytes in the arena.
fn owner_bytes<'a>(bytes: &'a [u8], node: &Node) -> &'a [u8] {
    &bytes[node.owner as usize..node.owner as usize + node.owner_len as usize]
}

/// Where a record's lowercased RDATA starts.
fn record_lower_at(record: &Record) -> u32 {
    match record.lower_follows {
        true => record.wire + u32::from(record.len),
        false => record.wire,
    }
}

/// A record's bytes from the arena.
fn record_ref<'a>(bytes: &'a [u8], record: &'a Record) -> RecordRef<'a> {
    let (wire, lower) = (record.wire as usize, record_lower_at(record) as usize);
    let len = record.len as usize;
    RecordRef {
        wire: &bytes[wire..wire + len],
        lower: &bytes[lower..lower + len],
        names: &record.names[..record.name_count as usize],
    }
}

/// Unpacks a node's interrupt field.
fn unpack(packed: u32) -> Option<Interrupt> {
    let id = packed & !INTERRUPT_TAG;
    match packed & INTERRUPT_TAG {
        TAG_CUT => Some(Interrupt::Cut(id)),
        TAG_DNAME => Some(Interrupt::Dname(id)),
        _ => None,
    }
}

/// The number of labels of a well-formed wire name, root excluded.
fn label_count(name: &[u8]) -> u8 {
    let (mut at, mut count) = (0, 0u8);
    while at < name.len() && name[at] != 0 {
        at += 1 + name[at] as usize;
        count += 1;
    }
    count
}

/// True when RDATA of this type holds names a response uses or lowercases
/// (NS, CNAME, SOA, PTR, MX, SRV, DNAME).
fn holds_names(rtype: u16) -> bool {
    matches!(
        rtype,
        rtype::NS | rtype::CNAME | rtype::SOA | rtype::PTR | rtype::MX | rtype::SRV | DNAME
    )
}

/// Locates the names that may be compressed in one record's RDATA.
fn encode(pending: &Pending, wire: &[u8]) -> Record {
    let mut names = [(0u16, 0u16); 2];
    let mut name_count = 0u8;
    let mut mark = |start: usize| {
        if let Some(len) = wire_name_len(wire.get(start..).unwrap_or_default()) {
            names[name_count as usize] = (start as u16, len as u16);
            name_count += 1;
            return start + len;
        }
        start
    };
    match pending.rtype {
        rtype::NS | rtype::CNAME | rtype::PTR => {
            mark(0);
        }
        rtype::MX => {
            mark(2);
        }
        rtype::SOA => {
            let next = mark(0);
            if next > 0 {
                mark(next);
            }
        }
        _ => {}
    }
    Record {
        wire: pending.wire,
        len: pending.len,
        name_count,
        lower_follows: holds_names(pending.rtype) && wire.iter().any(u8::is_ascii_uppercase),
        names,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_zone::rdata::push_name;
    use std::str::FromStr;

    /// A name in wire form, case kept.
    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        push_name(&mut out, &Name::from_ascii(name).unwrap());
        out
    }

    /// SOA RDATA with this serial and minimum.
    fn soa(serial: u32, minimum: u32) -> Vec<u8> {
        let mut rdata = wire("ns.Example.test.");
        rdata.extend(wire("h.example.test."));
        for field in [serial, 1, 2, 3, minimum] {
            rdata.extend(field.to_be_bytes());
        }
        rdata
    }

    #[test]
    fn records_in_any_order_and_case_group_into_sorted_rrsets() {
        let mut b = SnapshotBuilder::new(&Name::from_str("Example.TEST.").unwrap());
        b.add(&wire("WWW.example.test."), 1, 300, &[192, 0, 2, 2])
            .unwrap();
        b.add(&wire("example.test."), 6, 3600, &soa(42, 60))
            .unwrap();
        b.add(&wire("www.example.test."), 1, 200, &[192, 0, 2, 1])
            .unwrap();
        b.add(&wire("www.example.test."), 1, 300, &[192, 0, 2, 1])
            .unwrap();
        b.add(&wire("a.b.example.test."), 16, 60, b"\x02hi")
            .unwrap();
        let s = b.finish();
        assert_eq!(s.serial(), Serial(42));
        assert_eq!(s.negative_ttl(), 60, "min(SOA TTL 3600, MINIMUM 60)");
        assert_eq!(s.record_count(), 4, "the duplicate A record is kept once");
        assert_eq!(s.node_count(), 4, "apex, www, b (empty non-terminal), a.b");
        let www = s.find(&wire("www.example.test.")).expect("www is found");
        assert_eq!(www.owner(), &wire("www.example.test.")[..]);
        let a = www.rrset(1).expect("www has an A RRset");
        assert_eq!(a.ttl(), 200, "the smallest TTL of the RRset");
        let data: Vec<&[u8]> = a.records().map(|r| r.wire).collect();
        assert_eq!(data, [&[192, 0, 2, 1][..], &[192, 0, 2, 2][..]]);
        let ent = s
            .find(&wire("b.example.test."))
            .expect("the empty non-terminal exists");
        assert!(ent.first_rrset().is_none());
        assert!(s.find(&wire("c.example.test.")).is_none());
        let apex_soa = s.apex_node().rrset(6).unwrap().first_record().unwrap();
        assert_eq!(apex_soa.names.len(), 2);
        assert_eq!(
            &apex_soa.lower[..4],
            b"\x02ns\x07",
            "lowercased copy of the SOA names"
        );
        assert_eq!(
            &apex_soa.wire[4..11],
            b"Example",
            "the RDATA keeps its case"
        );
    }

    #[test]
    fn owners_outside_the_zone_or_malformed_are_refused() {
        let mut b = SnapshotBuilder::new(&Name::from_str("example.test.").unwrap());
        assert!(matches!(
            b.add(&wire("example.org."), 1, 60, &[1, 2, 3, 4]),
            Err(BuildError::OutOfZone { .. })
        ));
        assert_eq!(
            b.add(&[3, b'w', b'w'], 1, 60, &[1, 2, 3, 4]),
            Err(BuildError::BadOwner(vec![3, b'w', b'w']))
        );
        assert_eq!(
            b.add(&wire("x.example.test."), 16, 60, &vec![0; 70000]),
            Err(BuildError::RdataTooLong(70000))
        );
        assert_eq!(b.finish().record_count(), 0);
    }

    #[test]
    fn the_index_finds_every_one_of_many_names() {
        let mut b = SnapshotBuilder::new(&Name::from_str("big.test.").unwrap());
        for i in 0..5000u32 {
            b.add(&wire(&format!("h{i}.big.test.")), 1, 60, &i.to_be_bytes())
                .unwrap();
        }
        let s = b.finish();
        assert_eq!(s.node_count(), 5001);
        for i in 0..5000u32 {
            let node = s
                .find(&wire(&format!("h{i}.big.test.")))
                .unwrap_or_else(|| panic!("h{i} not found"));
            let rdata = node.rrset(1).unwrap().first_record().unwrap().wire;
            assert_eq!(rdata, i.to_be_bytes(), "h{i} has its own address");
        }
        assert!(s.find(&wire("h5000.big.test.")).is_none());
        let load = s.node_count() as f64 / s.base.index.slots.len() as f64;
        assert!(load <= 0.75, "index load {load} above 0.75");
        let per_record = s.heap_size() / s.record_count();
        assert!(
            per_record <= 100,
            "expected at most 100 heap bytes per record, saw {per_record}"
        );
    }

    #[test]
    fn the_tables_hold_small_entries() {
        use std::mem::size_of;
        let sizes = [
            size_of::<Node>(),
            size_of::<Rrset>(),
            size_of::<Record>(),
            size_of::<Additional>(),
        ];
        assert_eq!(sizes, [20, 20, 16, 12], "Node, Rrset, Record, Additional");
    }

    #[test]
    fn interrupts_and_wildcards_are_linked() {
        let mut b = SnapshotBuilder::new(&Name::from_str("example.test.").unwrap());
        b.add(
            &wire("deleg.example.test."),
            2,
            60,
            &wire("ns.deleg.example.test."),
        )
        .unwrap();
        b.add(&wire("ns.deleg.example.test."), 1, 60, &[192, 0, 2, 1])
            .unwrap();
        b.add(
            &wire("dn.example.test."),
            DNAME,
            60,
            &wire("t.example.test."),
        )
        .unwrap();
        b.add(&wire("*.w.example.test."), 1, 60, &[192, 0, 2, 2])
            .unwrap();
        let s = b.finish();
        let deleg = s.find(&wire("deleg.example.test.")).unwrap();
        assert_eq!(deleg.exact(), Some(Interrupt::Cut(deleg.id())));
        let glue = s.find(&wire("ns.deleg.example.test.")).unwrap();
        assert_eq!(glue.below(), Some(Interrupt::Cut(deleg.id())));
        let additional: Vec<_> = deleg.rrset(2).unwrap().additional_targets().collect();
        assert_eq!(additional.len(), 1, "glue is additional data for the NS");
        assert_eq!(additional[0].1, glue.id());
        let dn = s.find(&wire("dn.example.test.")).unwrap();
        assert_eq!(
            (dn.exact(), dn.below()),
            (None, Some(Interrupt::Dname(dn.id())))
        );
        let w = s.find(&wire("w.example.test.")).unwrap();
        let star = s.find(&wire("*.w.example.test.")).unwrap();
        assert_eq!(w.wildcard(), Some(star.id()));
        assert_eq!(s.apex_node().wildcard(), None);
    }
}
