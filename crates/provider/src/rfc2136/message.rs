//! The UPDATE message (RFC 2136 §2) for a change set, built by hand in wire
//! form: pure, so what is sent can be read in a test.
//!
//! ```text
//!  header   opcode UPDATE, ZOCOUNT 1, PRCOUNT, UPCOUNT
//!  zone     ZONE SOA IN
//!  prereqs  expect present: every record, class IN, TTL 0   (§2.4.2 RRset exists, value dependent)
//!           expect absent:  NAME TYPE NONE, no data           (§2.4.3 RRset does not exist)
//!  updates  the old RRset deleted (class ANY, §2.5.2), then every new record added (class IN)
//!           at the apex, NS: new records added first, old ones deleted one by one
//!           (servers ignore an RRset delete of the apex NS, §3.4.2.3)
//! ```

use cutover_zone::rdata::push_name;
use cutover_zone::{Name, RecordType};

use crate::Change;

/// The UPDATE opcode, in the header's second byte (opcode << 3).
const OPCODE_UPDATE: u8 = 5 << 3;
/// Class IN.
const CLASS_IN: u16 = 1;
/// Class NONE (RFC 2136 §1.3).
const CLASS_NONE: u16 = 254;
/// Class ANY.
const CLASS_ANY: u16 = 255;

/// The sections of an UPDATE being built.
struct Sections {
    /// Prerequisite records, in wire form.
    prereqs: Vec<u8>,
    /// Their count.
    prereq_count: u16,
    /// Update records, in wire form.
    updates: Vec<u8>,
    /// Their count.
    update_count: u16,
}

/// Appends one resource record to `buf`.
fn push_record(
    buf: &mut Vec<u8>,
    name: &Name,
    rtype: RecordType,
    class: u16,
    ttl: u32,
    rdata: &[u8],
) {
    push_name(buf, name);
    buf.extend_from_slice(&u16::from(rtype).to_be_bytes());
    buf.extend_from_slice(&class.to_be_bytes());
    buf.extend_from_slice(&ttl.to_be_bytes());
    // RDATA comes from an Rdata, which holds at most 65535 bytes.
    buf.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    buf.extend_from_slice(rdata);
}

impl Sections {
    /// A prerequisite record.
    fn prereq(&mut self, name: &Name, rtype: RecordType, class: u16, rdata: &[u8]) {
        push_record(&mut self.prereqs, name, rtype, class, 0, rdata);
        self.prereq_count += 1;
    }

    /// An update record.
    fn update(&mut self, name: &Name, rtype: RecordType, class: u16, ttl: u32, rdata: &[u8]) {
        push_record(&mut self.updates, name, rtype, class, ttl, rdata);
        self.update_count += 1;
    }
}

/// The UPDATE for `changes` to `zone`, with message ID `id` (unsigned).
pub fn update_message(zone: &Name, changes: &[&Change], id: u16) -> Vec<u8> {
    let mut s = Sections {
        prereqs: Vec::new(),
        prereq_count: 0,
        updates: Vec::new(),
        update_count: 0,
    };
    for change in changes {
        let (name, rtype) = (&change.name, change.rtype);
        let expect = change.expect.as_ref().filter(|r| !r.is_empty());
        let set = change.set.as_ref().filter(|r| !r.is_empty());
        match expect {
            Some(old) => {
                for rdata in old.rdatas() {
                    s.prereq(name, rtype, CLASS_IN, rdata.wire());
                }
            }
            None => s.prereq(name, rtype, CLASS_NONE, &[]),
        }
        let apex_ns = rtype == RecordType::NS && name == zone;
        if apex_ns {
            if let Some(new) = set {
                for rdata in new.rdatas() {
                    s.update(name, rtype, CLASS_IN, new.ttl, rdata.wire());
                }
            }
            for rdata in expect.map(|o| o.rdatas()).unwrap_or_default() {
                if !set.is_some_and(|n| n.contains(rdata)) {
                    s.update(name, rtype, CLASS_NONE, 0, rdata.wire());
                }
            }
            continue;
        }
        if expect.is_some() {
            s.update(name, rtype, CLASS_ANY, 0, &[]);
        }
        if let Some(new) = set {
            for rdata in new.rdatas() {
                s.update(name, rtype, CLASS_IN, new.ttl, rdata.wire());
            }
        }
    }
    let mut message = Vec::with_capacity(12 + zone.len() + 6 + s.prereqs.len() + s.updates.len());
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&[OPCODE_UPDATE, 0]);
    message.extend_from_slice(&1u16.to_be_bytes());
    message.extend_from_slice(&s.prereq_count.to_be_bytes());
    message.extend_from_slice(&s.update_count.to_be_bytes());
    message.extend_from_slice(&0u16.to_be_bytes());
    push_name(&mut message, zone);
    message.extend_from_slice(&u16::from(RecordType::SOA).to_be_bytes());
    message.extend_from_slice(&CLASS_IN.to_be_bytes());
    message.extend_from_slice(&s.prereqs);
    message.extend_from_slice(&s.updates);
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_zone::{Rdata, Rrset};
    use hickory_proto::op::{Message, OpCode};
    use hickory_proto::rr::DNSClass;
    use std::str::FromStr;

    #[test]
    fn prerequisites_and_updates_follow_rfc_2136() {
        let zone = Name::from_str("example.test.").unwrap();
        let www = Name::from_str("www.example.test.").unwrap();
        let new = Name::from_str("new.example.test.").unwrap();
        let replace = Change {
            name: www.clone(),
            rtype: RecordType::A,
            expect: Some(Rrset::new(3600, Rdata::a([192, 0, 2, 10].into()))),
            set: Some(Rrset::new(60, Rdata::a([198, 51, 100, 20].into()))),
        };
        let create = Change {
            name: new.clone(),
            rtype: RecordType::A,
            expect: None,
            set: Some(Rrset::new(60, Rdata::a([198, 51, 100, 21].into()))),
        };
        let bytes = update_message(&zone, &[&replace, &create], 0x1234);
        // hickory reads an UPDATE's sections as query/answer/authority.
        let m = Message::from_vec(&bytes).expect("the UPDATE decodes");
        assert_eq!(m.metadata.op_code, OpCode::Update, "opcode");
        assert_eq!(m.queries.len(), 1, "one zone");
        let prereqs: Vec<_> = m
            .answers
            .iter()
            .map(|r| (r.name.to_string(), r.dns_class, r.ttl))
            .collect();
        assert_eq!(
            prereqs,
            vec![
                (www.to_string(), DNSClass::IN, 0),
                (new.to_string(), DNSClass::NONE, 0)
            ],
            "value-dependent prerequisite for www, does-not-exist for new"
        );
        let updates: Vec<_> = m
            .authorities
            .iter()
            .map(|r| (r.name.to_string(), r.dns_class, r.ttl))
            .collect();
        assert_eq!(
            updates,
            vec![
                (www.to_string(), DNSClass::ANY, 0),
                (www.to_string(), DNSClass::IN, 60),
                (new.to_string(), DNSClass::IN, 60)
            ],
            "delete the old www RRset, add the new records"
        );
    }
}
