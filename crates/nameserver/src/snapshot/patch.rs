//! Patching a snapshot: a change publishes a new version that shares the
//! base arena and every overlay entry it did not touch with the old one.
//!
//! ```text
//!  changes (RRsets replaced or deleted)
//!     │ 1. a delegation or DNAME appears or goes? ──▶ Rebuild::CutMoved (caller rebuilds)
//!     │    the overlay past a quarter of the base? ──▶ Rebuild::Compact  (caller rebuilds)
//!     ▼ 2. stage the touched nodes: their new RRsets; missing ancestors made
//!     │    (empty non-terminals), their parents' child counts and `*` links
//!     ▼ 3. nodes left with no data and no children removed, deepest first,
//!     │    up the tree (an empty non-terminal goes with its last child)
//!     ▼ 4. each staged node becomes one Patch (its own small tables), put in
//!          the persistent maps of a copy of the overlay; SOA serial re-read
//! ```
//!
//! What the base arena precomputed and how a patch keeps it true:
//! - the name index and node ids: a node keeps its id; the overlay maps the
//!   id to its new content (or to none: deleted), and names the base does
//!   not hold to new ids;
//! - empty non-terminals: every node counts its children, so adding a name
//!   adds its missing ancestors and removing one removes those left empty;
//! - the `*` child of each node: set and cleared as wildcards come and go;
//! - interrupts (delegation or DNAME above): a new node inherits its
//!   parent's; a change that adds or removes a cut or a DNAME rebuilds;
//! - additional targets: the base found the node holding each target's
//!   addresses; a patched snapshot looks it up when answering, so a change
//!   to `ns1`'s A record needs no change to the NS RRsets naming it;
//! - the SOA serial and negative TTL: read again from the apex.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use cutover_zone::rdata::{push_name, wire_name_len, DNAME};
use cutover_zone::{Zone, ZoneDiff};

use super::rtype;
use super::{
    encode, holds_names, label_count, targets, BuildError, Node, Patch, Pending, Record, Rrset,
    Tables, ZoneSnapshot, NODES_MAX, NONE,
};
use crate::wire::{is_at_or_below, NAME_MAX};

/// The overlay may hold this many entries and records beyond a quarter of
/// the base's records before the next change compacts (rebuilds) instead.
const COMPACT_SLACK: usize = 1024;

/// RRsets by owner (lowercased wire form) and type: TTL and RDATA.
type Contents = BTreeMap<(Vec<u8>, u16), (u32, Vec<Vec<u8>>)>;

/// The new content of one RRset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrsetChange {
    /// The owner, uncompressed wire form, any case.
    pub owner: Vec<u8>,
    /// The type code.
    pub rtype: u16,
    /// The TTL.
    pub ttl: u32,
    /// The RDATA of each record (uncompressed); none: the RRset is deleted.
    pub rdatas: Vec<Vec<u8>>,
}

/// Why a change is not patched in: the caller builds the new version from
/// scratch instead (the answers are the same either way).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rebuild {
    /// The overlay has grown past a quarter of the base: time to compact.
    #[error("the overlay holds {0} entries and records: compacting")]
    Compact(usize),
    /// A delegation or a DNAME appears or goes, which moves what answers
    /// for every name below it.
    #[error("a delegation or DNAME appears or goes")]
    CutMoved,
    /// A record of the change does not fit a snapshot.
    #[error(transparent)]
    Refused(#[from] BuildError),
    /// A diff does not apply to this version (serial, or a record to remove
    /// that is not there).
    #[error("the diff does not apply to the version served: {0}")]
    Mismatch(String),
}

impl ZoneSnapshot {
    /// The snapshot with these RRsets replaced (an empty one deleted), in
    /// order (a later change of the same RRset wins), sharing the base arena
    /// and the untouched overlay entries with `self`: the cost grows with
    /// the nodes touched (and, through the persistent maps, the log of the
    /// overlay's size), not with the zone. `Err` says why the caller must
    /// build the new version from scratch instead.
    pub fn patched(&self, changes: &[RrsetChange]) -> Result<ZoneSnapshot, Rebuild> {
        let limit = self.base.tables.records.len() / 4 + COMPACT_SLACK;
        if self.overlay.weight > limit {
            return Err(Rebuild::Compact(self.overlay.weight));
        }
        let mut stage = Stage {
            zone: self,
            nodes: BTreeMap::new(),
            created: HashMap::new(),
            next_id: self.overlay.next_id,
        };
        for change in changes {
            stage.apply(change)?;
        }
        stage.remove_empty();
        Ok(stage.publish())
    }

    /// The snapshot of `zone`, which is this snapshot's version with `diff`
    /// applied: the RRsets the diff touches are read from `zone`.
    pub fn patched_with_zone(&self, zone: &Zone, diff: &ZoneDiff) -> Result<ZoneSnapshot, Rebuild> {
        if diff.from != self.serial {
            return Err(Rebuild::Mismatch(format!(
                "the diff starts at serial {}, the snapshot is at {}",
                diff.from, self.serial
            )));
        }
        let mut touched: Vec<(&cutover_zone::Name, hickory_proto::rr::RecordType)> = diff
            .removed
            .iter()
            .chain(&diff.added)
            .map(|record| (&record.name, record.rdata.rtype()))
            .collect();
        touched.sort();
        touched.dedup();
        let changes: Vec<RrsetChange> = touched
            .into_iter()
            .map(|(name, rtype)| {
                let mut owner = Vec::with_capacity(NAME_MAX);
                push_name(&mut owner, name);
                let set = zone.get(name, rtype);
                RrsetChange {
                    owner,
                    rtype: u16::from(rtype),
                    ttl: set.map_or(0, |set| set.ttl),
                    rdatas: set
                        .map(|set| set.rdatas().iter().map(|r| r.wire().to_vec()).collect())
                        .unwrap_or_default(),
                }
            })
            .collect();
        self.patched(&changes)
    }

    /// The snapshot with `diffs` applied in order (the store's journal
    /// since this version), with the rules of `ZoneDiff::apply_to`: each
    /// starts at the serial the last left, every record removed must be
    /// there with its TTL, a record added gives its RRset its TTL.
    pub fn patched_with_diffs(&self, diffs: &[ZoneDiff]) -> Result<ZoneSnapshot, Rebuild> {
        let mut serial = self.serial;
        let mut sets = Contents::new();
        for diff in diffs {
            if diff.from != serial {
                return Err(Rebuild::Mismatch(format!(
                    "a diff starts at serial {}, after serial {serial}",
                    diff.from
                )));
            }
            serial = diff.to;
            for record in &diff.removed {
                let (ttl, rdatas) = self.content_of(&mut sets, record);
                let wire = record.rdata.wire();
                let at = rdatas.iter().position(|r| r[..] == *wire);
                match at {
                    Some(at) if *ttl == record.ttl => {
                        rdatas.remove(at);
                    }
                    _ => {
                        return Err(Rebuild::Mismatch(format!(
                            "{} {} is not there to remove",
                            record.name,
                            record.rdata.rtype()
                        )))
                    }
                }
            }
            for record in &diff.added {
                let (ttl, rdatas) = self.content_of(&mut sets, record);
                *ttl = record.ttl;
                let wire = record.rdata.wire();
                if !rdatas.iter().any(|r| r[..] == *wire) {
                    rdatas.push(wire.to_vec());
                }
            }
        }
        let changes: Vec<RrsetChange> = sets
            .into_iter()
            .map(|((owner, rtype), (ttl, rdatas))| RrsetChange {
                owner,
                rtype,
                ttl,
                rdatas,
            })
            .collect();
        self.patched(&changes)
    }

    /// The TTL and RDATA of the RRset of `record`'s owner and type as the
    /// diffs so far leave it, read from this version on first use.
    fn content_of<'s>(
        &self,
        sets: &'s mut Contents,
        record: &cutover_zone::Record,
    ) -> (&'s mut u32, &'s mut Vec<Vec<u8>>) {
        let mut owner = Vec::with_capacity(NAME_MAX);
        push_name(&mut owner, &record.name);
        owner.make_ascii_lowercase();
        let rtype = u16::from(record.rdata.rtype());
        let (ttl, rdatas) =
            sets.entry((owner, rtype)).or_insert_with_key(|(owner, _)| {
                match self.find(owner).and_then(|node| node.rrset(rtype)) {
                    Some(set) => (set.ttl(), set.records().map(|r| r.wire.to_vec()).collect()),
                    None => (0, Vec::new()),
                }
            });
        (ttl, rdatas)
    }
}

/// One RRset of a staged node.
#[derive(Clone)]
struct StagedSet {
    /// The type code.
    rtype: u16,
    /// The TTL.
    ttl: u32,
    /// The RDATA of each record.
    rdatas: Vec<Vec<u8>>,
}

/// A node as the change leaves it.
struct Staged {
    /// The owner, lowercased wire form.
    owner: Vec<u8>,
    /// Its RRsets, sorted by type, none empty.
    sets: Vec<StagedSet>,
    /// How many nodes sit directly below it.
    children: u32,
    /// The interrupt field (kept, or inherited when new).
    interrupt: u32,
    /// The `*` child, or [`NONE`].
    wildcard: u32,
    /// Whether the version patched holds the node.
    existed: bool,
    /// Whether the change removes it.
    deleted: bool,
}

/// The nodes a change touches, as it leaves them.
struct Stage<'z> {
    /// The version patched.
    zone: &'z ZoneSnapshot,
    /// Staged nodes by id.
    nodes: BTreeMap<u32, Staged>,
    /// Nodes the change creates, by owner.
    created: HashMap<Vec<u8>, u32>,
    /// The id the next new node gets.
    next_id: u32,
}

impl Stage<'_> {
    /// Applies one RRset change.
    fn apply(&mut self, change: &RrsetChange) -> Result<(), Rebuild> {
        let owner = &change.owner;
        let len = wire_name_len(owner)
            .filter(|&len| len == owner.len() && len <= NAME_MAX)
            .ok_or_else(|| BuildError::BadOwner(owner.clone()))?;
        let lower: Vec<u8> = owner[..len].to_ascii_lowercase();
        if !is_at_or_below(&lower, &self.zone.apex) {
            return Err(BuildError::OutOfZone {
                owner: owner.clone(),
                origin: self.zone.origin.to_string(),
            }
            .into());
        }
        if let Some(long) = change
            .rdatas
            .iter()
            .find(|r| r.len() > usize::from(u16::MAX))
        {
            return Err(BuildError::RdataTooLong(long.len()).into());
        }
        let present = !change.rdatas.is_empty();
        let is_apex = lower[..] == self.zone.apex[..];
        if (change.rtype == rtype::NS && !is_apex) || change.rtype == DNAME {
            let was = self
                .lookup(&lower)
                .is_some_and(|id| self.has(id, change.rtype));
            if was != present {
                return Err(Rebuild::CutMoved);
            }
        }
        let id = match present {
            true => self.ensure(&lower)?,
            false => match self.lookup(&lower) {
                Some(id) => id,
                None => return Ok(()),
            },
        };
        let node = self.load(id);
        let at = node.sets.binary_search_by_key(&change.rtype, |s| s.rtype);
        let set = StagedSet {
            rtype: change.rtype,
            ttl: change.ttl,
            rdatas: change.rdatas.clone(),
        };
        match (at, present) {
            (Ok(at), true) => node.sets[at] = set,
            (Err(at), true) => node.sets.insert(at, set),
            (Ok(at), false) => {
                node.sets.remove(at);
            }
            (Err(_), false) => {}
        }
        Ok(())
    }

    /// The id of the node at `lower` as staged so far (created, or in the
    /// version patched).
    fn lookup(&self, lower: &[u8]) -> Option<u32> {
        if let Some(&id) = self.created.get(lower) {
            return Some(id);
        }
        self.zone.find(lower).map(|node| node.id())
    }

    /// Whether node `id` has an RRset of type `rtype` as staged so far.
    fn has(&self, id: u32, rtype: u16) -> bool {
        match self.nodes.get(&id) {
            Some(node) => node.sets.iter().any(|s| s.rtype == rtype),
            None => self.zone.node(id).has(rtype),
        }
    }

    /// The staged node `id`, staged from the version patched on first use.
    fn load(&mut self, id: u32) -> &mut Staged {
        let zone = self.zone;
        self.nodes.entry(id).or_insert_with(|| {
            let node = zone.node(id);
            let sets = node
                .rrsets()
                .iter()
                .map(|set| {
                    let set = node.set(set);
                    StagedSet {
                        rtype: set.rtype(),
                        ttl: set.ttl(),
                        rdatas: set.records().map(|r| r.wire.to_vec()).collect(),
                    }
                })
                .collect();
            Staged {
                owner: node.owner().to_vec(),
                sets,
                children: zone.children(id),
                interrupt: node.node.interrupt,
                wildcard: node.node.wildcard,
                existed: true,
                deleted: false,
            }
        })
    }

    /// The id of the node at `lower` (at or below the apex), creating it and
    /// its missing ancestors (empty non-terminals) when it does not exist.
    fn ensure(&mut self, lower: &[u8]) -> Result<u32, Rebuild> {
        if let Some(id) = self.lookup(lower) {
            return Ok(id);
        }
        // The apex always exists, so a missing name has a parent.
        let parent_name = &lower[1 + usize::from(lower[0])..];
        let parent = self.ensure(parent_name)?;
        // A base name deleted earlier keeps its id when it comes back.
        let base = &self.zone.base;
        let id = match base.index.find(lower, &base.tables.bytes, &base.nodes) {
            Some(id) => id,
            None => {
                if self.next_id as usize >= NODES_MAX {
                    return Err(BuildError::TooLarge("more than 2^30 names").into());
                }
                self.next_id += 1;
                self.next_id - 1
            }
        };
        let wildcard = lower.starts_with(b"\x01*");
        let parent_node = self.load(parent);
        parent_node.children += 1;
        if wildcard {
            parent_node.wildcard = id;
        }
        // A new node has no cut or DNAME of its own (that rebuilds): it
        // inherits what is above its parent, as the build does.
        let interrupt = match parent {
            0 => 0,
            _ => parent_node.interrupt,
        };
        self.nodes.insert(
            id,
            Staged {
                owner: lower.to_vec(),
                sets: Vec::new(),
                children: 0,
                interrupt,
                wildcard: NONE,
                existed: false,
                deleted: false,
            },
        );
        self.created.insert(lower.to_vec(), id);
        Ok(id)
    }

    /// Removes the staged nodes left with no data and no children (the
    /// apex stays), deepest first, and then their parents left so.
    fn remove_empty(&mut self) {
        let mut queue: BinaryHeap<(u8, u32)> = self
            .nodes
            .iter()
            .filter(|(&id, node)| id != 0 && node.sets.is_empty() && node.children == 0)
            .map(|(&id, node)| (label_count(&node.owner), id))
            .collect();
        while let Some((_, id)) = queue.pop() {
            let node = &self.nodes[&id];
            if id == 0 || node.deleted || !node.sets.is_empty() || node.children > 0 {
                continue;
            }
            let owner = node.owner.clone();
            self.nodes.get_mut(&id).expect("staged").deleted = true;
            let parent_name = &owner[1 + usize::from(owner[0])..];
            let parent = self
                .lookup(parent_name)
                .expect("the parent of a node exists");
            let parent_node = self.load(parent);
            parent_node.children -= 1;
            if owner.starts_with(b"\x01*") {
                parent_node.wildcard = NONE;
            }
            if parent != 0 && parent_node.sets.is_empty() && parent_node.children == 0 {
                queue.push((label_count(parent_name), parent));
            }
        }
    }

    /// The new version: a copy of the overlay with the staged nodes put in.
    fn publish(self) -> ZoneSnapshot {
        let zone = self.zone;
        let base_nodes = zone.base.nodes.len() as u32;
        let mut overlay = zone.overlay.clone();
        overlay.patched = true;
        overlay.next_id = self.next_id;
        let mut node_count = zone.node_count;
        let mut record_count = zone.record_count;
        for (id, staged) in self.nodes {
            if staged.existed {
                record_count -= zone
                    .node(id)
                    .rrsets()
                    .iter()
                    .map(|s| s.record_count as usize)
                    .sum::<usize>();
            }
            let (old_weight, old_heap) = match overlay.by_id.get(&id) {
                Some(Some(patch)) => (1 + patch.tables.records.len(), patch.tables.heap_size()),
                Some(None) => (1, 0),
                None => (0, 0),
            };
            overlay.weight -= old_weight;
            overlay.heap -= old_heap;
            match (staged.deleted, staged.existed) {
                (true, existed) => {
                    node_count -= usize::from(existed);
                    if id < base_nodes {
                        overlay.by_id.insert_mut(id, None);
                        overlay.weight += 1;
                    } else {
                        overlay.by_id.remove_mut(&id);
                        overlay.by_name.remove_mut(&staged.owner[..]);
                    }
                }
                (false, existed) => {
                    node_count += usize::from(!existed);
                    let patch = make_patch(&staged, &zone.apex);
                    record_count += patch.tables.records.len();
                    overlay.weight += 1 + patch.tables.records.len();
                    overlay.heap += patch.tables.heap_size();
                    if id >= base_nodes && !existed {
                        overlay
                            .by_name
                            .insert_mut(staged.owner.into_boxed_slice(), id);
                    }
                    overlay.by_id.insert_mut(id, Some(Arc::new(patch)));
                }
            }
        }
        let mut next = ZoneSnapshot {
            origin: zone.origin.clone(),
            apex: zone.apex.clone(),
            serial: cutover_zone::Serial(0),
            negative_ttl: 0,
            base: Arc::clone(&zone.base),
            overlay,
            node_count,
            record_count,
        };
        next.read_soa();
        next
    }
}

/// A staged node's tables, laid out as the builder lays out the base's:
/// RRsets by type, records sorted and each kept once, the smallest TTL,
/// a lowercased copy after RDATA holding names with upper case, and the
/// in-zone targets of NS, MX and SRV.
fn make_patch(staged: &Staged, apex: &[u8]) -> Patch {
    let mut bytes = staged.owner.clone();
    let mut rrsets: Vec<Rrset> = Vec::with_capacity(staged.sets.len());
    let mut records: Vec<Record> = Vec::new();
    for set in staged.sets.iter().take(usize::from(u16::MAX)) {
        let mut rdatas: Vec<&[u8]> = set.rdatas.iter().map(|r| &r[..]).collect();
        rdatas.sort_unstable();
        rdatas.dedup();
        rrsets.push(Rrset {
            rtype: set.rtype,
            additional_count: 0,
            ttl: set.ttl,
            first_record: records.len() as u32,
            record_count: rdatas.len() as u32,
            first_additional: 0,
        });
        for rdata in rdatas {
            let pending = Pending {
                node: 0,
                rtype: set.rtype,
                len: rdata.len() as u16,
                ttl: set.ttl,
                wire: bytes.len() as u32,
            };
            bytes.extend_from_slice(rdata);
            if holds_names(set.rtype) && rdata.iter().any(u8::is_ascii_uppercase) {
                bytes.extend(rdata.iter().map(u8::to_ascii_lowercase));
            }
            records.push(encode(&pending, rdata));
        }
    }
    let mut tables = Tables {
        bytes: bytes.into_boxed_slice(),
        rrsets: rrsets.into_boxed_slice(),
        records: records.into_boxed_slice(),
        additional: Box::new([]),
    };
    let mut additional = Vec::new();
    let mut ranges = Vec::new();
    for (at, rrset) in tables.rrsets.iter().enumerate() {
        let first = additional.len();
        additional.extend(targets(&tables, rrset, apex));
        ranges.push((at, first, additional.len() - first));
    }
    for (at, first, count) in ranges {
        tables.rrsets[at].first_additional = first as u32;
        tables.rrsets[at].additional_count = count as u16;
    }
    tables.additional = additional.into_boxed_slice();
    let node = Node {
        owner: 0,
        owner_len: staged.owner.len() as u8,
        labels: label_count(&staged.owner),
        rrset_count: tables.rrsets.len() as u16,
        first_rrset: 0,
        interrupt: staged.interrupt,
        wildcard: staged.wildcard,
    };
    Patch {
        tables,
        node,
        children: staged.children,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_zone::Name;

    /// A name in wire form.
    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        push_name(&mut out, &Name::from_ascii(name).unwrap());
        out
    }

    /// A zone of `hosts` A records below example.test., with an SOA and NS.
    fn zone(hosts: u32) -> ZoneSnapshot {
        let mut b = super::super::SnapshotBuilder::new(&Name::from_ascii("example.test.").unwrap());
        let mut soa = wire("ns.example.test.");
        soa.extend(wire("h.example.test."));
        for field in [1u32, 1, 1, 1, 60] {
            soa.extend(field.to_be_bytes());
        }
        b.add(&wire("example.test."), rtype::SOA, 60, &soa).unwrap();
        b.add(
            &wire("example.test."),
            rtype::NS,
            60,
            &wire("ns.example.test."),
        )
        .unwrap();
        for i in 0..hosts {
            b.add(
                &wire(&format!("h{i}.example.test.")),
                rtype::A,
                60,
                &i.to_be_bytes(),
            )
            .unwrap();
        }
        b.finish()
    }

    /// One A record at `owner`, or none.
    fn a(owner: &str, address: Option<[u8; 4]>) -> RrsetChange {
        RrsetChange {
            owner: wire(owner),
            rtype: rtype::A,
            ttl: 60,
            rdatas: address.map(|a| vec![a.to_vec()]).unwrap_or_default(),
        }
    }

    #[test]
    fn a_patch_shares_the_base_and_copies_only_what_it_touches() {
        let old = zone(1000);
        let new = old
            .patched(&[a("x.y.example.test.", Some([192, 0, 2, 1]))])
            .unwrap();
        assert!(Arc::ptr_eq(&old.base, &new.base), "the arena is shared");
        assert_eq!(
            new.patched_nodes(),
            3,
            "x.y, the new ENT y, and the apex (a new child)"
        );
        assert_eq!((new.node_count(), new.record_count()), (1003, 1003));
        let newer = new.patched(&[a("x.y.example.test.", None)]).unwrap();
        assert_eq!((newer.node_count(), newer.record_count()), (1001, 1002));
        assert!(
            newer.find(&wire("y.example.test.")).is_none(),
            "the ENT went with its child"
        );
        assert!(newer.find(&wire("h7.example.test.")).is_some());
    }

    #[test]
    fn a_cut_or_dname_that_comes_or_goes_rebuilds() {
        let old = zone(10);
        let ns = RrsetChange {
            owner: wire("h1.example.test."),
            rtype: rtype::NS,
            ttl: 60,
            rdatas: vec![wire("ns.elsewhere.test.")],
        };
        assert_eq!(old.patched(&[ns]).err(), Some(Rebuild::CutMoved));
        let dname = RrsetChange {
            owner: wire("d.example.test."),
            rtype: DNAME,
            ttl: 60,
            rdatas: vec![wire("example.org.")],
        };
        assert_eq!(old.patched(&[dname]).err(), Some(Rebuild::CutMoved));
        let apex_ns = RrsetChange {
            owner: wire("example.test."),
            rtype: rtype::NS,
            ttl: 60,
            rdatas: vec![wire("ns2.example.test.")],
        };
        assert!(old.patched(&[apex_ns]).is_ok(), "the apex NS is no cut");
    }

    #[test]
    fn a_full_overlay_asks_for_compaction() {
        let mut snapshot = zone(100);
        let mut patched = 0;
        let why = loop {
            let name = format!("n{patched}.example.test.");
            match snapshot.patched(&[a(&name, Some([10, 0, 0, 1]))]) {
                Ok(next) => snapshot = next,
                Err(why) => break why,
            }
            patched += 1;
        };
        assert!(matches!(why, Rebuild::Compact(_)), "{why}");
        assert!(
            (500..=1100).contains(&patched),
            "compacted after {patched} changes"
        );
    }

    #[test]
    fn bad_changes_are_refused() {
        let old = zone(1);
        assert!(matches!(
            old.patched(&[a("example.org.", Some([1, 2, 3, 4]))]),
            Err(Rebuild::Refused(BuildError::OutOfZone { .. }))
        ));
        let diff = ZoneDiff {
            from: cutover_zone::Serial(7),
            to: cutover_zone::Serial(8),
            removed: Vec::new(),
            added: Vec::new(),
        };
        assert!(matches!(
            old.patched_with_diffs(&[diff]),
            Err(Rebuild::Mismatch(_))
        ));
    }
}
