//! The canonical writer: a zone as text that re-imports to the same
//! [`Zone`], stable byte for byte.
//!
//! Layout: an `$ORIGIN` line, the SOA, the apex NS, the rest of the apex,
//! then every other name in canonical (DNSSEC) order. One record per line,
//! absolute names, explicit TTL and class; types by code, data by wire
//! bytes (the order a [`Zone`] keeps them in).

use hickory_proto::rr::RecordType;

use super::presentation::name_to_text;
use super::rdata_text::{rdata_to_text, type_to_text};
use crate::zone::{Record, Rrset, Zone};

/// The canonical text of a zone.
pub fn write(zone: &Zone) -> String {
    let mut out = format!("$ORIGIN {}\n", name_to_text(zone.origin()));
    for (name, node) in zone.nodes() {
        let mut sets: Vec<(RecordType, &Rrset)> = node.rrsets().collect();
        if name == zone.origin() {
            // SOA first, then NS, then the rest in type order (stable sort).
            sets.sort_by_key(|(t, _)| match *t {
                RecordType::SOA => 0,
                RecordType::NS => 1,
                _ => 2,
            });
        }
        for (_, set) in sets {
            for rdata in set.rdatas() {
                let record = Record {
                    name: name.clone(),
                    ttl: set.ttl,
                    rdata: rdata.clone(),
                };
                out.push_str(&record_to_text(&record));
                out.push('\n');
            }
        }
    }
    out
}

/// One record on one line: `owner TTL IN TYPE data`.
pub fn record_to_text(record: &Record) -> String {
    format!(
        "{} {} IN {} {}",
        name_to_text(&record.name),
        record.ttl,
        type_to_text(record.rdata.rtype()),
        rdata_to_text(&record.rdata)
    )
}
