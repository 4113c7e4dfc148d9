//! The checks a snapshot must pass before it is served, as Knot checks a
//! zone when it loads it: the store can be changed by hand (sqlite3), and a
//! damaged zone must not be answered from.
//!
//! ```text
//!  ZoneSnapshot::check ──▶ apex: exactly one SOA record, and NS
//!                      ──▶ every name: no SOA below the apex, a CNAME alone
//!                          and single, one DNAME at most
//!                      ──▶ every record: RDATA that decodes as its type
//!                          (A 4 bytes, AAAA 16, one uncompressed name for
//!                          NS/CNAME/PTR/DNAME, …; other types by the zone
//!                          model's own decoder)
//! ```
//!
//! The checks read the snapshot as built (no `Zone`), once per load; the
//! answer path never runs them.

use std::fmt;

use cutover_zone::rdata::{wire_name_len, DNAME};
use cutover_zone::{Rdata, RecordType};

use super::{record_ref, rtype, NodeRef, ZoneSnapshot};

/// Problems reported in full; more are only counted.
const SHOWN: usize = 10;

/// Why a snapshot must not be served: its problems, the first few spelt out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unservable {
    /// The problems found, at most [`SHOWN`].
    pub problems: Vec<String>,
    /// How many more there are.
    pub more: usize,
}

/// The type codes the checks name.
mod code {
    /// MX.
    pub const MX: u16 = 15;
    /// TXT.
    pub const TXT: u16 = 16;
    /// SRV.
    pub const SRV: u16 = 33;
    /// RRSIG.
    pub const RRSIG: u16 = 46;
    /// NSEC.
    pub const NSEC: u16 = 47;
}

impl ZoneSnapshot {
    /// Checks what a served zone needs (see the module docs); `Err` lists
    /// what is wrong.
    pub fn check(&self) -> Result<(), Unservable> {
        let mut found = Found::default();
        self.check_apex(&mut found);
        for node in self.nodes() {
            check_node(node, &mut found);
        }
        found.finish()
    }

    /// [`ZoneSnapshot::check`] for a snapshot patched from one that passed
    /// it: the apex, and the nodes at `owners` (lowercased wire form), the
    /// only ones whose data changed.
    pub fn check_at<'o>(
        &self,
        owners: impl IntoIterator<Item = &'o [u8]>,
    ) -> Result<(), Unservable> {
        let mut found = Found::default();
        self.check_apex(&mut found);
        for owner in owners {
            if let Some(node) = self.find(owner) {
                check_node(node, &mut found);
            }
        }
        found.finish()
    }

    /// The apex holds one SOA and NS.
    fn check_apex(&self, found: &mut Found) {
        let apex = self.apex_node();
        match apex.rrset(rtype::SOA) {
            None => found.push(|| "no SOA record at the apex".to_string()),
            Some(soa) if soa.set.record_count > 1 => found.push(|| {
                format!(
                    "{} SOA records at the apex, where one must be",
                    soa.set.record_count
                )
            }),
            Some(_) => {}
        }
        if !apex.has(rtype::NS) {
            found.push(|| "no NS records at the apex".to_string());
        }
    }
}

/// The checks of one name: no SOA below the apex, a CNAME alone and
/// single, one DNAME at most, RDATA that decodes as its type.
fn check_node(node: NodeRef<'_>, found: &mut Found) {
    let owner = || name_text(node.owner());
    let sets = node.rrsets();
    let has = |code: u16| sets.iter().any(|set| set.rtype == code);
    if node.id() != 0 && has(rtype::SOA) {
        found.push(|| format!("{}: an SOA record below the apex", owner()));
    }
    if let Some(cname) = sets.iter().find(|set| set.rtype == rtype::CNAME) {
        if cname.record_count > 1 {
            found.push(|| format!("{}: {} CNAME records", owner(), cname.record_count));
        }
        let other = sets
            .iter()
            .find(|set| !matches!(set.rtype, rtype::CNAME | code::RRSIG | code::NSEC));
        if let Some(other) = other {
            found.push(|| {
                format!(
                    "{}: a CNAME beside {} data",
                    owner(),
                    RecordType::from(other.rtype)
                )
            });
        }
    }
    if sets
        .iter()
        .any(|set| set.rtype == DNAME && set.record_count > 1)
    {
        found.push(|| format!("{}: more than one DNAME record", owner()));
    }
    for set in sets {
        let records = set.first_record as usize..(set.first_record + set.record_count) as usize;
        for record in &node.tables.records[records] {
            let wire = record_ref(&node.tables.bytes, record).wire;
            if let Err(reason) = rdata_fits(set.rtype, wire) {
                found.push(|| {
                    format!(
                        "{} {}: {} bytes of RDATA do not decode as {}: {reason}",
                        owner(),
                        RecordType::from(set.rtype),
                        wire.len(),
                        RecordType::from(set.rtype)
                    )
                });
            }
        }
    }
}

/// The problems collected so far.
#[derive(Default)]
struct Found {
    /// Spelt out.
    problems: Vec<String>,
    /// Only counted.
    more: usize,
}

impl Found {
    /// Adds a problem (described only while fewer than [`SHOWN`] are).
    fn push(&mut self, describe: impl FnOnce() -> String) {
        if self.problems.len() < SHOWN {
            self.problems.push(describe());
        } else {
            self.more += 1;
        }
    }

    /// `Ok` when nothing was found.
    fn finish(self) -> Result<(), Unservable> {
        if self.problems.is_empty() {
            return Ok(());
        }
        Err(Unservable {
            problems: self.problems,
            more: self.more,
        })
    }
}

impl fmt::Display for Unservable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("; "))?;
        if self.more > 0 {
            write!(f, "; and {} more", self.more)?;
        }
        Ok(())
    }
}

impl std::error::Error for Unservable {}

/// Whether `wire` is well-formed RDATA of type `code`: the common types
/// checked here without allocating, the others by the zone model's decoder.
fn rdata_fits(code: u16, wire: &[u8]) -> Result<(), String> {
    let one_name = |at: usize| match wire.get(at..).and_then(wire_name_len) {
        Some(len) if at + len == wire.len() => Ok(()),
        Some(_) => Err("bytes left after the name".to_string()),
        None => Err("not an uncompressed domain name".to_string()),
    };
    match code {
        rtype::A if wire.len() == 4 => Ok(()),
        rtype::A => Err("an IPv4 address is 4 bytes".to_string()),
        rtype::AAAA if wire.len() == 16 => Ok(()),
        rtype::AAAA => Err("an IPv6 address is 16 bytes".to_string()),
        rtype::NS | rtype::CNAME | rtype::PTR | DNAME => one_name(0),
        code::MX if wire.len() > 2 => one_name(2),
        code::SRV if wire.len() > 6 => one_name(6),
        code::MX | code::SRV => Err("too short".to_string()),
        rtype::SOA => {
            let names = wire_name_len(wire)
                .and_then(|a| wire.get(a..).and_then(wire_name_len).map(|b| a + b));
            match names {
                Some(len) if len + 20 == wire.len() => Ok(()),
                _ => Err("an SOA is two names and five 32-bit numbers".to_string()),
            }
        }
        code::TXT => {
            let mut at = 0;
            while at < wire.len() {
                at += 1 + usize::from(wire[at]);
            }
            if at == wire.len() && !wire.is_empty() {
                Ok(())
            } else {
                Err("not a sequence of character strings".to_string())
            }
        }
        _ => Rdata::from_wire(RecordType::from(code), wire)
            .map(drop)
            .map_err(|error| error.to_string()),
    }
}

/// A lowercased wire name as text, for messages ("www.example.com.").
fn name_text(wire: &[u8]) -> String {
    let mut text = String::new();
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            break;
        }
        let label = wire
            .get(at + 1..at + 1 + usize::from(len))
            .unwrap_or_default();
        for &byte in label {
            match byte {
                b'.' | b'\\' => {
                    text.push('\\');
                    text.push(char::from(byte));
                }
                0x21..=0x7e => text.push(char::from(byte)),
                _ => text.push_str(&format!("\\{byte:03}")),
            }
        }
        text.push('.');
        at += 1 + usize::from(len);
    }
    if text.is_empty() {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SnapshotBuilder;
    use cutover_zone::Name;

    /// A wire name from text.
    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        cutover_zone::rdata::push_name(&mut out, &Name::from_ascii(name).unwrap());
        out
    }

    /// SOA RDATA with `serial`.
    fn soa(serial: u32) -> Vec<u8> {
        let mut rdata = wire("ns.example.test.");
        rdata.extend(wire("hostmaster.example.test."));
        for value in [serial, 3600, 600, 86400, 300] {
            rdata.extend_from_slice(&value.to_be_bytes());
        }
        rdata
    }

    /// A snapshot of example.test. from (owner, type, RDATA) rows.
    fn built(rows: &[(&str, u16, Vec<u8>)]) -> ZoneSnapshot {
        let origin = Name::from_ascii("example.test.").unwrap();
        let mut builder = SnapshotBuilder::new(&origin);
        for (owner, code, rdata) in rows {
            builder.add(&wire(owner), *code, 300, rdata).unwrap();
        }
        builder.finish()
    }

    /// The rows of a sound zone.
    fn sound() -> Vec<(&'static str, u16, Vec<u8>)> {
        vec![
            ("example.test.", rtype::SOA, soa(7)),
            ("example.test.", rtype::NS, wire("ns.example.test.")),
            ("ns.example.test.", rtype::A, vec![192, 0, 2, 53]),
            ("www.example.test.", rtype::AAAA, vec![0x20; 16]),
            (
                "mail.example.test.",
                code::MX,
                [&[0, 10][..], &wire("ns.example.test.")].concat(),
            ),
            ("txt.example.test.", code::TXT, b"\x05hello\x00".to_vec()),
            (
                "alias.example.test.",
                rtype::CNAME,
                wire("www.example.test."),
            ),
        ]
    }

    #[test]
    fn a_sound_zone_passes() {
        assert_eq!(built(&sound()).check(), Ok(()));
    }

    /// Regression: an A record with 2-byte RDATA, written into the store
    /// by hand, was answered as a malformed packet.
    #[test]
    fn rdata_that_is_not_its_type_is_found() {
        let mut rows = sound();
        rows.push(("bad.example.test.", rtype::A, vec![192, 0]));
        rows.push(("six.example.test.", rtype::AAAA, vec![0; 4]));
        rows.push(("ns2.example.test.", rtype::NS, vec![3, b'a', b'b']));
        rows.push(("t.example.test.", code::TXT, vec![9, b'x']));
        let error = built(&rows).check().unwrap_err();
        let text = error.to_string();
        for part in [
            "bad.example.test. A: 2 bytes of RDATA do not decode as A",
            "six.example.test. AAAA: 4 bytes",
            "ns2.example.test. NS",
            "t.example.test. TXT",
        ] {
            assert!(text.contains(part), "{part:?} missing from: {text}");
        }
    }

    /// Regression: a zone whose SOA was deleted by hand was served with
    /// serial 0.
    #[test]
    fn a_zone_without_its_soa_or_apex_ns_is_found() {
        let rows: Vec<_> = sound().into_iter().skip(2).collect();
        let text = built(&rows).check().unwrap_err().to_string();
        assert!(text.contains("no SOA record at the apex"), "{text}");
        assert!(text.contains("no NS records at the apex"), "{text}");
        let mut two = sound();
        two.push(("example.test.", rtype::SOA, soa(8)));
        let text = built(&two).check().unwrap_err().to_string();
        assert!(text.contains("2 SOA records at the apex"), "{text}");
    }

    #[test]
    fn cname_and_soa_rules_are_found_and_long_lists_are_cut() {
        let mut rows = sound();
        rows.push(("alias.example.test.", rtype::A, vec![192, 0, 2, 1]));
        rows.push(("sub.example.test.", rtype::SOA, soa(1)));
        let text = built(&rows).check().unwrap_err().to_string();
        assert!(
            text.contains("alias.example.test.: a CNAME beside A data"),
            "{text}"
        );
        assert!(
            text.contains("sub.example.test.: an SOA record below the apex"),
            "{text}"
        );
        let mut many = sound();
        let names: Vec<String> = (0..15).map(|i| format!("h{i}.example.test.")).collect();
        for name in &names {
            many.push((name.as_str(), rtype::A, vec![1]));
        }
        let error = built(&many).check().unwrap_err();
        assert_eq!((error.problems.len(), error.more), (10, 5));
        assert!(error.to_string().ends_with("; and 5 more"));
    }
}
