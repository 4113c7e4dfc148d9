//! The answer function: query bytes in, response bytes out, no I/O, no lock,
//! no allocation in the common case (the caller's buffer is reused).
//!
//! ```text
//!  bytes ─Query::parse─▶ checks (FORMERR, BADVERS, opcode, class, type) ─▶ Catalog::find (longest match;
//!        DS from the parent) ─▶ resolve in the zone:
//!           exact node ─────────────▶ RRset │ CNAME (follow in zone, bounded) │ NODATA + SOA
//!           delegation above ───────▶ referral: NS in authority, glue, AA=0
//!           DNAME above ────────────▶ DNAME + synthesised CNAME (follow)
//!           closest encloser + `*` ─▶ wildcard answer with the query name as owner
//!           nothing ────────────────▶ NXDOMAIN + SOA
//!        ─▶ additional A/AAAA for NS/MX/SRV targets ─▶ OPT
//! ```
//!
//! Where Knot DNS 3.2 (the reference the differential test compares with)
//! departs from a plain reading of the RFCs, this follows Knot:
//! - more than one question, or a question that does not parse: no response;
//! - records in the answer or authority section of a query are ignored;
//! - ANY returns the RRset with the lowest type code only (RFC 8482 lets a
//!   server pick one), over UDP and TCP alike;
//! - a DNAME substitution that would exceed 255 bytes gives NXDOMAIN with
//!   the DNAME (RFC 6672 says YXDOMAIN);
//! - CD is not copied into the response; NOTIFY and UPDATE get NOTAUTH
//!   (Knot with no ACL), as do AXFR (TCP) and IXFR;
//! - REFUSED for a name outside every zone carries EDE 20 (not authoritative)
//!   when the query had EDNS; QCLASS ANY is answered as IN, other classes
//!   are REFUSED (Knot's CH `version.bind`/`id.server` are not answered);
//! - a negative answer's SOA that does not fit is left out without TC; an
//!   answer or referral RRset that does not fit is left out with TC, keeping
//!   the RRsets before it; additional records that do not fit are left out.

use crate::catalog::Catalog;
use crate::snapshot::{Interrupt, NodeRef, RrsetRef, ZoneSnapshot};
use crate::wire::{is_at_or_below, NameBuf, OptRecord, Query, Response, Section, WireName};

/// How the query arrived, which bounds the response size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: the response must fit the client's EDNS size (at most 1232).
    Udp,
    /// TCP: up to 65535 bytes.
    Tcp,
}

/// RCODE values used here.
mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// Format error.
    pub const FORMERR: u8 = 1;
    /// Server failure.
    pub const SERVFAIL: u8 = 2;
    /// Name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// Not implemented.
    pub const NOTIMP: u8 = 4;
    /// Refused.
    pub const REFUSED: u8 = 5;
    /// Not authorised.
    pub const NOTAUTH: u8 = 9;
}

/// Record types the answer path treats specially.
mod rtype {
    /// CNAME.
    pub const CNAME: u16 = 5;
    /// SOA.
    pub const SOA: u16 = 6;
    /// NS.
    pub const NS: u16 = 2;
    /// DS.
    pub const DS: u16 = 43;
    /// DNAME.
    pub const DNAME: u16 = 39;
    /// A.
    pub const A: u16 = 1;
    /// AAAA.
    pub const AAAA: u16 = 28;
    /// IXFR.
    pub const IXFR: u16 = 251;
    /// AXFR.
    pub const AXFR: u16 = 252;
    /// ANY.
    pub const ANY: u16 = 255;
}

/// Our EDNS UDP payload size (DNS Flag Day 2020).
const UDP_PAYLOAD: u16 = 1232;
/// The most CNAME/DNAME links followed inside a zone.
const CHAIN_MAX: usize = 16;
/// The most target names whose addresses go in the additional section.
const ADDITIONAL_MAX: usize = 32;
/// Extended DNS Error "Not Authoritative" (RFC 8914 §4.21).
const EDE_NOT_AUTHORITATIVE: u16 = 20;

/// Writes the response for `query` into `response` (cleared first). Returns
/// false when no response must be sent: a message too short to hold a
/// header, one with QR=1, or (as Knot DNS does) one whose question section
/// does not parse or holds more than one question.
pub fn answer(
    catalog: &Catalog,
    query: &[u8],
    transport: Transport,
    response: &mut Vec<u8>,
) -> bool {
    response.clear();
    let Some(query) = Query::parse(query) else {
        return false;
    };
    let max = match transport {
        Transport::Tcp => 65535,
        Transport::Udp => query
            .edns
            .map_or(512, |e| e.udp_size.clamp(512, UDP_PAYLOAD) as usize),
    };
    if query.malformed.is_some() {
        error(response, &query, max, rcode::FORMERR, None);
        return true;
    }
    let opt = query.edns.map(|e| OptRecord {
        udp_size: UDP_PAYLOAD,
        extended_rcode: 0,
        dnssec_ok: e.dnssec_ok,
        extended_error: None,
    });
    if let (Some(edns), Some(mut opt)) = (query.edns, opt) {
        if edns.version > 0 {
            opt.extended_rcode = 1; // BADVERS = 16: upper bits 1, lower 0.
            error(response, &query, max, rcode::NOERROR, Some(opt));
            return true;
        }
    }
    let code = match query.opcode() {
        0 if !query.has_question() => Some(rcode::FORMERR),
        0 => None,
        4 | 5 if !query.has_question() => Some(rcode::FORMERR),
        4 | 5 => Some(rcode::NOTAUTH),
        _ => Some(rcode::NOTIMP),
    };
    if let Some(code) = code {
        error(response, &query, max, code, opt);
        return true;
    }
    if query.qclass != 1 && query.qclass != rtype::ANY {
        error(response, &query, max, rcode::REFUSED, opt);
        return true;
    }
    let code = match query.qtype {
        0 => Some(rcode::NOTIMP),
        rtype::AXFR if transport == Transport::Udp => Some(rcode::NOTIMP),
        rtype::AXFR | rtype::IXFR => Some(rcode::NOTAUTH),
        _ => None,
    };
    if let Some(code) = code {
        error(response, &query, max, code, opt);
        return true;
    }
    let zone = match query.qtype {
        rtype::DS if query.qname.label_count() > 0 => catalog.find(&query.qname, 1),
        _ => None,
    }
    .or_else(|| catalog.find(&query.qname, 0));
    let Some(zone) = zone else {
        let opt = opt.map(|o| OptRecord {
            extended_error: Some(EDE_NOT_AUTHORITATIVE),
            ..o
        });
        error(response, &query, max, rcode::REFUSED, opt);
        return true;
    };
    if catalog.expired_apex(zone) {
        // A secondary zone past its SOA expire (RFC 1034 §4.3.5).
        error(response, &query, max, rcode::SERVFAIL, opt);
        return true;
    }
    let limit = max - opt.map_or(0, |o| o.size());
    let mut out = Response::new(response, &query, limit);
    out.set_authoritative(true);
    let mut resolver = Resolver {
        zone,
        qtype: query.qtype,
        out,
        additional: [(&[], 0); ADDITIONAL_MAX],
        additional_count: 0,
        visited: [u32::MAX; CHAIN_MAX + 1],
        visited_count: 0,
    };
    resolver.resolve(&query);
    resolver.finish(opt);
    true
}

/// Writes a response that is only a header, the question and maybe OPT.
fn error(buf: &mut Vec<u8>, query: &Query<'_>, max: usize, code: u8, opt: Option<OptRecord>) {
    let mut out = Response::new(buf, query, max);
    out.set_rcode(code);
    out.finish(opt);
}

/// What a name leads to inside a zone.
enum Lookup<'z> {
    /// This node answers (found, or the wildcard that covers the name).
    Node(NodeRef<'z>),
    /// A delegation at or above the name: refer to this cut.
    Referral(NodeRef<'z>),
    /// A DNAME above the name, at this node.
    Dname(NodeRef<'z>),
    /// Nothing at or below the closest encloser.
    NxDomain,
}

/// The state of one answer being built.
struct Resolver<'z, 'b> {
    /// The zone answering.
    zone: &'z ZoneSnapshot,
    /// The query type.
    qtype: u16,
    /// The response.
    out: Response<'b>,
    /// Targets whose addresses go in the additional section: the name
    /// (lowercased wire form) and the node holding the addresses.
    additional: [(&'z [u8], u32); ADDITIONAL_MAX],
    /// Entries used in `additional`.
    additional_count: usize,
    /// Nodes answered from so far (CNAME loop detection).
    visited: [u32; CHAIN_MAX + 1],
    /// Entries used in `visited`.
    visited_count: usize,
}

impl<'z> Resolver<'z, '_> {
    /// Finds where `name` leads in the zone.
    fn lookup(&self, name: &NameBuf) -> Lookup<'z> {
        let zone = self.zone;
        if let Some(node) = zone.find(name.wire()) {
            return match node.exact() {
                None => Lookup::Node(node),
                Some(Interrupt::Cut(id)) if id == node.id() && self.qtype == rtype::DS => {
                    Lookup::Node(node)
                }
                Some(Interrupt::Cut(id)) => Lookup::Referral(zone.node(id)),
                Some(Interrupt::Dname(id)) => Lookup::Dname(zone.node(id)),
            };
        }
        let apex_labels = zone.apex_node().labels();
        for i in 1..=name.label_count().saturating_sub(apex_labels) {
            let Some(encloser) = zone.find(name.suffix(i)) else {
                continue;
            };
            return match (encloser.below(), encloser.wildcard()) {
                (Some(Interrupt::Cut(id)), _) => Lookup::Referral(zone.node(id)),
                (Some(Interrupt::Dname(id)), _) => Lookup::Dname(zone.node(id)),
                (None, Some(wildcard)) => Lookup::Node(zone.node(wildcard)),
                (None, None) => Lookup::NxDomain,
            };
        }
        Lookup::NxDomain
    }

    /// Answers the question, following CNAMEs and DNAMEs inside the zone.
    fn resolve(&mut self, query: &Query<'_>) {
        let mut name = query.qname.clone();
        let question = WireName {
            original: query.qname_wire(),
            lower: query.qname.wire(),
        };
        for step in 0..=CHAIN_MAX {
            let owner = if step == 0 {
                question
            } else {
                WireName {
                    original: name.wire(),
                    lower: name.wire(),
                }
            };
            let next = match self.lookup(&name) {
                Lookup::Node(node) => self.at_node(node, owner),
                Lookup::Referral(cut) => {
                    if step == 0 {
                        self.out.set_authoritative(false);
                    }
                    if let Some(ns) = cut.rrset(rtype::NS) {
                        if self.put(owner_of(cut), ns, Section::Authority) {
                            self.want_additional(ns);
                        }
                    }
                    None
                }
                Lookup::Dname(node) => self.synthesise(node, owner, &name),
                Lookup::NxDomain => {
                    self.out.set_rcode(rcode::NXDOMAIN);
                    self.negative();
                    None
                }
            };
            match next {
                Some(target) => name = target,
                None => return,
            }
        }
    }

    /// Answers from a node; returns the CNAME target to follow, if any.
    fn at_node(&mut self, node: NodeRef<'z>, owner: WireName<'_>) -> Option<NameBuf> {
        self.visited[self.visited_count.min(CHAIN_MAX)] = node.id();
        self.visited_count += 1;
        let set = match self.qtype {
            rtype::ANY => node.first_rrset(),
            qtype => node.rrset(qtype),
        };
        if let Some(set) = set {
            if self.put(owner, set, Section::Answer) {
                self.want_additional(set);
            }
            return None;
        }
        let Some(cname) = node.rrset(rtype::CNAME) else {
            self.negative();
            return None;
        };
        if !self.put(owner, cname, Section::Answer) {
            return None;
        }
        let record = cname.first_record()?;
        let target = NameBuf::from_wire(record.lower)?;
        if !is_at_or_below(target.wire(), self.zone.apex()) || self.visited_count > CHAIN_MAX {
            return None;
        }
        if let Some(next) = self.zone.find(target.wire()) {
            if self.visited[..self.visited_count].contains(&next.id()) {
                return None;
            }
        }
        Some(target)
    }

    /// Writes a DNAME and the CNAME it synthesises for `name`; returns the
    /// new name to follow when it is in the zone.
    fn synthesise(
        &mut self,
        node: NodeRef<'z>,
        owner: WireName<'_>,
        name: &NameBuf,
    ) -> Option<NameBuf> {
        let dname = node.rrset(rtype::DNAME)?;
        if !self.put(owner_of(node), dname, Section::Answer) {
            return None;
        }
        let record = dname.first_record()?;
        let Some(target) = name.substitute(
            name.label_count().saturating_sub(node.labels()),
            record.lower,
        ) else {
            // Knot answers NXDOMAIN here; RFC 6672 §2.2 says YXDOMAIN.
            self.out.set_rcode(rcode::NXDOMAIN);
            self.negative();
            return None;
        };
        let mark = self.out.mark();
        let start = self.out.begin_record(owner, rtype::CNAME, dname.ttl());
        self.out.put_name(WireName {
            original: target.wire(),
            lower: target.wire(),
        });
        self.out.end_record(start, Section::Answer);
        if !self.out.fits() {
            self.out.rollback(mark);
            self.out.set_truncated();
            return None;
        }
        self.visited_count += 1;
        (is_at_or_below(target.wire(), self.zone.apex()) && self.visited_count <= CHAIN_MAX)
            .then_some(target)
    }

    /// Puts the apex SOA in the authority section, with the negative TTL.
    fn negative(&mut self) {
        let apex = self.zone.apex_node();
        if let Some(soa) = apex.rrset(rtype::SOA) {
            // Knot leaves the SOA out, without TC, when it does not fit.
            self.put_with_ttl(
                owner_of(apex),
                soa,
                Section::Authority,
                self.zone.negative_ttl(),
                false,
            );
        }
    }

    /// Writes an RRset; on overflow rolls it back, sets TC and returns false.
    fn put(&mut self, owner: WireName<'_>, set: RrsetRef<'_>, section: Section) -> bool {
        self.put_with_ttl(
            owner,
            set,
            section,
            set.ttl(),
            section != Section::Additional,
        )
    }

    /// Writes an RRset with a given TTL; on overflow rolls it back, sets TC
    /// when `truncates`, and returns false.
    fn put_with_ttl(
        &mut self,
        owner: WireName<'_>,
        set: RrsetRef<'_>,
        section: Section,
        ttl: u32,
        truncates: bool,
    ) -> bool {
        if self.out.is_truncated() {
            return false;
        }
        let mark = self.out.mark();
        for record in set.records() {
            let start = self.out.begin_record(owner, set.rtype(), ttl);
            let mut at = 0;
            for &(name_at, len) in record.names {
                let (name_at, end) = (name_at as usize, name_at as usize + len as usize);
                self.out.put_bytes(&record.wire[at..name_at]);
                self.out.put_name(WireName {
                    original: &record.wire[name_at..end],
                    lower: &record.lower[name_at..end],
                });
                at = end;
            }
            self.out.put_bytes(&record.wire[at..]);
            self.out.end_record(start, section);
        }
        if self.out.fits() {
            return true;
        }
        self.out.rollback(mark);
        if truncates {
            self.out.set_truncated();
        }
        false
    }

    /// Remembers the targets of an NS/MX/SRV RRset for the additional section.
    fn want_additional(&mut self, set: RrsetRef<'z>) {
        for target in set.additional_targets() {
            let known = self.additional[..self.additional_count]
                .iter()
                .any(|&(name, _)| name == target.0);
            if !known && self.additional_count < ADDITIONAL_MAX {
                self.additional[self.additional_count] = target;
                self.additional_count += 1;
            }
        }
    }

    /// Writes the additional section and OPT.
    fn finish(mut self, opt: Option<OptRecord>) {
        if !self.out.is_truncated() {
            let targets = self.additional;
            'targets: for &(name, node) in &targets[..self.additional_count] {
                let node = self.zone.node(node);
                for rtype in [rtype::A, rtype::AAAA] {
                    let Some(set) = node.rrset(rtype) else {
                        continue;
                    };
                    let owner = WireName {
                        original: name,
                        lower: name,
                    };
                    if !self.put(owner, set, Section::Additional) {
                        break 'targets;
                    }
                }
            }
        }
        self.out.finish(opt);
    }
}

/// A node's owner name, for writing.
fn owner_of(node: NodeRef<'_>) -> WireName<'_> {
    WireName {
        original: node.owner(),
        lower: node.owner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SnapshotBuilder;
    use cutover_zone::rdata::{push_name, Soa, DNAME};
    use cutover_zone::{Name, Rdata, Record, RecordType, Zone};
    use hickory_proto::op::{Message, ResponseCode};
    use std::str::FromStr;
    use std::sync::Arc;

    /// A name from text.
    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    /// RDATA holding `prefix` then a name.
    fn with_name(rtype: u16, prefix: &[u8], name: &str) -> Rdata {
        let mut wire = prefix.to_vec();
        push_name(&mut wire, &n(name));
        Rdata::from_wire(RecordType::from(rtype), &wire).unwrap()
    }

    /// The parent test zone, covering each case the answer path handles.
    fn parent() -> Zone {
        let mut z = Zone::new(n("example.test."));
        let soa = Soa {
            mname: n("ns1.example.test."),
            rname: n("hostmaster.example.test."),
            serial: 7,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 300,
        };
        let records = [
            ("example.test.", 3600, Rdata::soa(&soa)),
            (
                "example.test.",
                3600,
                with_name(2, b"", "ns1.example.test."),
            ),
            (
                "example.test.",
                3600,
                with_name(15, b"\x00\x0a", "mail.example.test."),
            ),
            ("example.test.", 3600, Rdata::a([192, 0, 2, 1].into())),
            ("ns1.example.test.", 3600, Rdata::a([192, 0, 2, 53].into())),
            ("mail.example.test.", 3600, Rdata::a([192, 0, 2, 25].into())),
            (
                "mail.example.test.",
                3600,
                Rdata::aaaa("2001:db8::25".parse().unwrap()),
            ),
            ("www.example.test.", 300, Rdata::a([192, 0, 2, 80].into())),
            (
                "alias.example.test.",
                60,
                with_name(5, b"", "www.example.test."),
            ),
            (
                "loop1.example.test.",
                60,
                with_name(5, b"", "loop2.example.test."),
            ),
            (
                "loop2.example.test.",
                60,
                with_name(5, b"", "loop1.example.test."),
            ),
            ("a.b.ent.example.test.", 60, Rdata::a([192, 0, 2, 7].into())),
            (
                "*.wild.example.test.",
                60,
                Rdata::a([192, 0, 2, 100].into()),
            ),
            (
                "sub.wild.example.test.",
                60,
                Rdata::a([192, 0, 2, 101].into()),
            ),
            (
                "x.*.ent2.example.test.",
                60,
                Rdata::a([192, 0, 2, 8].into()),
            ),
            (
                "deleg.example.test.",
                3600,
                with_name(2, b"", "ns.deleg.example.test."),
            ),
            (
                "deleg.example.test.",
                3600,
                Rdata::from_wire(RecordType::DS, &[0x30, 0x39, 13, 2, 1, 2, 3, 4]).unwrap(),
            ),
            (
                "ns.deleg.example.test.",
                3600,
                Rdata::a([192, 0, 2, 200].into()),
            ),
            (
                "dn.example.test.",
                120,
                with_name(DNAME, b"", "target.example.test."),
            ),
            (
                "x.target.example.test.",
                60,
                Rdata::a([192, 0, 2, 10].into()),
            ),
            (
                "dnlong.example.test.",
                120,
                with_name(
                    DNAME,
                    b"",
                    &format!("{0}.{0}.{0}.example.test.", "a".repeat(60)),
                ),
            ),
            (
                "child.example.test.",
                3600,
                with_name(2, b"", "ns.child.example.test."),
            ),
        ];
        for (name, ttl, rdata) in records {
            z.add(Record {
                name: n(name),
                ttl,
                rdata,
            })
            .unwrap();
        }
        for i in 0..40u8 {
            z.add(Record {
                name: n("big.example.test."),
                ttl: 60,
                rdata: Rdata::a([198, 51, 100, i].into()),
            })
            .unwrap();
        }
        z
    }

    /// The child zone, served beside its parent.
    fn child() -> Zone {
        let mut z = Zone::new(n("child.example.test."));
        let soa = Soa {
            mname: n("ns.child.example.test."),
            rname: n("h.child.example.test."),
            serial: 1,
            refresh: 1,
            retry: 1,
            expire: 1,
            minimum: 60,
        };
        z.add(Record {
            name: n("child.example.test."),
            ttl: 600,
            rdata: Rdata::soa(&soa),
        })
        .unwrap();
        z.add(Record {
            name: n("www.child.example.test."),
            ttl: 600,
            rdata: Rdata::a([192, 0, 2, 211].into()),
        })
        .unwrap();
        z
    }

    /// The catalog of both zones.
    fn catalog() -> Catalog {
        Catalog::new(vec![
            Arc::new(ZoneSnapshot::build(&parent())),
            Arc::new(ZoneSnapshot::build(&child())),
        ])
    }

    /// A query message: name (case kept), type, flags byte 2, and an OPT
    /// record (size, version, DO) when given.
    fn query(name: &str, qtype: u16, rd: bool, edns: Option<(u16, u8, bool)>) -> Vec<u8> {
        let mut q = vec![
            0xab,
            0xcd,
            u8::from(rd),
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(edns.is_some()),
        ];
        for label in name.split('.').filter(|l| !l.is_empty()) {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        if let Some((size, version, dnssec_ok)) = edns {
            q.extend_from_slice(&[0, 0, 41]);
            q.extend_from_slice(&size.to_be_bytes());
            q.extend_from_slice(&[0, version, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
        }
        q
    }

    /// Answers `msg` and parses the response.
    fn ask_raw(msg: &[u8], transport: Transport) -> (Vec<u8>, Message) {
        let mut out = Vec::new();
        assert!(
            answer(&catalog(), msg, transport, &mut out),
            "expected a response to {msg:02x?}"
        );
        let parsed = Message::from_vec(&out)
            .unwrap_or_else(|e| panic!("response does not parse ({e}): {out:02x?}"));
        (out, parsed)
    }

    /// Answers a plain UDP query without EDNS.
    fn ask(name: &str, qtype: u16) -> Message {
        ask_raw(&query(name, qtype, false, None), Transport::Udp).1
    }

    /// The records of a section as lowercased text, sorted.
    fn texts(records: &[hickory_proto::rr::Record]) -> Vec<String> {
        let mut v: Vec<String> = records
            .iter()
            .map(|r| r.to_string().to_lowercase())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_positive_answer_is_authoritative_and_keeps_the_question_case() {
        let (bytes, m) = ask_raw(&query("WwW.Example.TEST", 1, true, None), Transport::Udp);
        assert_eq!(m.metadata.id, 0xabcd);
        assert!(
            m.metadata.authoritative
                && m.metadata.recursion_desired
                && !m.metadata.recursion_available
        );
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(&bytes[12..30], b"\x03WwW\x07Example\x04TEST\x00");
        assert_eq!(texts(&m.answers), ["www.example.test. 300 in a 192.0.2.80"]);
        assert!(m.authorities.is_empty() && m.additionals.is_empty());
    }

    #[test]
    fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
        let m = ask("nx.example.test", 1);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities.len(), 1);
        assert_eq!(m.authorities[0].ttl, 300, "min(SOA TTL 3600, MINIMUM 300)");
        let m = ask("www.example.test", 28);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty() && m.authorities.len() == 1);
        // An empty non-terminal exists: NODATA, not NXDOMAIN.
        let m = ask("b.ent.example.test", 1);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_eq!(
            ask("x.www.example.test", 1).metadata.response_code,
            ResponseCode::NXDomain
        );
    }

    #[test]
    fn cnames_are_followed_and_loops_stop() {
        let m = ask("alias.example.test", 1);
        assert_eq!(
            texts(&m.answers),
            [
                "alias.example.test. 60 in cname www.example.test.",
                "www.example.test. 300 in a 192.0.2.80"
            ]
        );
        let m = ask("loop1.example.test", 1);
        assert_eq!(
            m.answers.len(),
            2,
            "loop1 -> loop2 -> (loop1 already answered): {:?}",
            texts(&m.answers)
        );
        assert_eq!(
            ask("alias.example.test", 5).answers.len(),
            1,
            "a CNAME query is not followed"
        );
    }

    #[test]
    fn wildcards_follow_rfc_4592() {
        let m = ask("Foo.Bar.wild.example.test", 1);
        assert_eq!(
            texts(&m.answers),
            ["foo.bar.wild.example.test. 60 in a 192.0.2.100"]
        );
        // sub.wild exists, so the wildcard does not cover names below it.
        assert_eq!(
            ask("x.sub.wild.example.test", 1).metadata.response_code,
            ResponseCode::NXDomain
        );
        // `*.ent2` exists only as an empty non-terminal: NODATA.
        let m = ask("foo.ent2.example.test", 1);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_eq!(ask("*.wild.example.test", 1).answers.len(), 1);
    }

    #[test]
    fn delegations_give_referrals_but_ds_is_answered_by_the_parent() {
        for name in [
            "deleg.example.test",
            "x.deleg.example.test",
            "ns.deleg.example.test",
        ] {
            let m = ask(name, 1);
            assert!(
                !m.metadata.authoritative,
                "{name}: a referral is not authoritative"
            );
            assert!(m.answers.is_empty());
            assert_eq!(
                texts(&m.authorities),
                ["deleg.example.test. 3600 in ns ns.deleg.example.test."]
            );
            assert_eq!(
                texts(&m.additionals),
                ["ns.deleg.example.test. 3600 in a 192.0.2.200"]
            );
        }
        let m = ask("deleg.example.test", 43);
        assert!(m.metadata.authoritative);
        assert_eq!(m.answers.len(), 1);
        // DS at the apex of the served child zone comes from the parent.
        let m = ask("child.example.test", 43);
        assert!(m.metadata.authoritative && m.answers.is_empty());
        assert_eq!(m.authorities[0].name.to_string(), "example.test.");
    }

    #[test]
    fn the_longest_matching_zone_answers() {
        let m = ask("www.child.example.test", 1);
        assert!(m.metadata.authoritative);
        assert_eq!(
            texts(&m.answers),
            ["www.child.example.test. 600 in a 192.0.2.211"]
        );
    }

    #[test]
    fn dname_synthesises_a_cname_and_fails_when_too_long() {
        let m = ask("x.dn.example.test", 1);
        let answers = texts(&m.answers);
        assert_eq!(answers.len(), 3, "{answers:?}");
        assert!(
            answers.contains(&"x.dn.example.test. 120 in cname x.target.example.test.".to_string())
        );
        let long = format!("{}.dnlong.example.test", "b".repeat(60));
        let m = ask(&long, 1);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NXDomain,
            "Knot's rcode for an overlong DNAME result"
        );
        assert_eq!(m.answers.len(), 1);
    }

    #[test]
    fn any_returns_one_rrset_and_mx_brings_addresses() {
        let m = ask("example.test", 255);
        assert_eq!(texts(&m.answers), ["example.test. 3600 in a 192.0.2.1"]);
        let m = ask("example.test", 15);
        assert_eq!(
            texts(&m.additionals),
            [
                "mail.example.test. 3600 in a 192.0.2.25",
                "mail.example.test. 3600 in aaaa 2001:db8::25"
            ]
        );
    }

    #[test]
    fn edns_sizes_truncation_and_tcp() {
        let (bytes, m) = ask_raw(&query("big.example.test", 1, false, None), Transport::Udp);
        assert!(
            m.metadata.truncation && m.answers.is_empty(),
            "40 A records do not fit 512 bytes"
        );
        assert!(bytes.len() <= 512);
        let (bytes, m) = ask_raw(
            &query("big.example.test", 1, false, Some((4096, 0, true))),
            Transport::Udp,
        );
        assert!(!m.metadata.truncation, "they fit min(4096, 1232)");
        assert!(bytes.len() <= 1232);
        let edns = m.edns.as_ref().expect("OPT echoed");
        assert_eq!((edns.max_payload(), edns.flags().dnssec_ok), (1232, true));
        let (_, m) = ask_raw(
            &query("big.example.test", 1, false, Some((100, 0, false))),
            Transport::Udp,
        );
        assert!(m.metadata.truncation, "a size below 512 counts as 512");
        let (_, m) = ask_raw(&query("big.example.test", 1, false, None), Transport::Tcp);
        assert_eq!(m.answers.len(), 40);
        let (bytes, m) = ask_raw(
            &query("example.test", 6, false, Some((1232, 1, false))),
            Transport::Udp,
        );
        assert_eq!(bytes[3] & 0x0f, 0);
        assert_eq!(
            m.edns.as_ref().map(|e| e.rcode_high()),
            Some(1),
            "BADVERS = 16"
        );
        assert!(!m.metadata.authoritative && m.answers.is_empty());
    }

    #[test]
    fn errors_refusals_and_silence() {
        let (bytes, m) = ask_raw(
            &query("example.org", 1, false, Some((1232, 0, false))),
            Transport::Udp,
        );
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert!(!m.metadata.authoritative);
        assert!(
            bytes.ends_with(&[0, 6, 0, 15, 0, 2, 0, 20]),
            "EDE 20 as Knot sends it: {bytes:02x?}"
        );
        let mut status = query("example.test", 6, false, None);
        status[2] = 2 << 3;
        assert_eq!(
            ask_raw(&status, Transport::Udp).1.metadata.response_code,
            ResponseCode::NotImp
        );
        let mut chaos = query("example.test", 6, false, None);
        let at = chaos.len() - 1;
        chaos[at] = 3;
        assert_eq!(
            ask_raw(&chaos, Transport::Udp).1.metadata.response_code,
            ResponseCode::Refused
        );
        let mut trailing = query("example.test", 6, false, None);
        trailing.push(0);
        assert_eq!(
            ask_raw(&trailing, Transport::Udp).1.metadata.response_code,
            ResponseCode::FormErr
        );
        let no_question = [0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            ask_raw(&no_question, Transport::Udp)
                .1
                .metadata
                .response_code,
            ResponseCode::FormErr
        );
        let mut out = vec![1, 2, 3];
        assert!(!answer(
            &catalog(),
            &no_question[..11],
            Transport::Udp,
            &mut out
        ));
        assert!(
            out.is_empty(),
            "the buffer is cleared even when nothing is sent"
        );
        let mut response_bit = query("example.test", 6, false, None);
        response_bit[2] |= 0x80;
        assert!(!answer(&catalog(), &response_bit, Transport::Udp, &mut out));
        assert!(!answer(
            &Catalog::empty(),
            &[0; 5],
            Transport::Tcp,
            &mut out
        ));
    }

    #[test]
    fn a_snapshot_fed_record_by_record_in_any_order_answers_the_same() {
        let zone = parent();
        let mut records: Vec<Record> = zone.records().collect();
        records.reverse();
        let mut builder = SnapshotBuilder::new(&n("EXAMPLE.test."));
        for record in &records {
            let mut owner = Vec::new();
            // Owners in upper case, as a zone file may write them.
            push_name(&mut owner, &record.name);
            owner.make_ascii_uppercase();
            let rtype = u16::from(record.rdata.rtype());
            builder
                .add(&owner, rtype, record.ttl, record.rdata.wire())
                .unwrap();
        }
        let streamed = Catalog::new(vec![Arc::new(builder.finish())]);
        let built = Catalog::new(vec![Arc::new(ZoneSnapshot::build(&zone))]);
        let names = [
            "example.test",
            "www.example.test",
            "alias.example.test",
            "loop1.example.test",
            "b.ent.example.test",
            "nx.example.test",
            "foo.bar.wild.example.test",
            "x.sub.wild.example.test",
            "foo.ent2.example.test",
            "deleg.example.test",
            "x.deleg.example.test",
            "x.dn.example.test",
            "big.example.test",
            "child.example.test",
        ];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for name in names {
            for qtype in [1, 2, 5, 6, 15, 28, 43, 255] {
                let msg = query(name, qtype, false, Some((1232, 0, false)));
                assert!(answer(&streamed, &msg, Transport::Udp, &mut a));
                assert!(answer(&built, &msg, Transport::Udp, &mut b));
                assert_eq!(a, b, "{name} type {qtype}: streamed vs built snapshot");
            }
        }
    }

    #[test]
    fn names_in_responses_are_compressed() {
        let (bytes, m) = ask_raw(&query("example.test", 15, false, None), Transport::Udp);
        assert_eq!(m.answers.len(), 1);
        // Header 12 + question 18; MX owner is a pointer (2) + 10 fixed + 2
        // preference + "mail" and a pointer (7); then two address records
        // whose owner points at "mail" (2 + 10 + 4, 2 + 10 + 16).
        assert_eq!(
            bytes.len(),
            12 + 18 + (2 + 10 + 2 + 7) + (2 + 10 + 4) + (2 + 10 + 16)
        );
    }
}
