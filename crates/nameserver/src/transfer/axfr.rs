//! The AXFR response (RFC 5936 §2.2): the zone's SOA, every other record,
//! and the SOA again, packed into as many messages as it takes.

use cutover_zone::{Record, RecordType, Zone};

use super::message::{BuildError, Packer, Question};

/// The messages of an AXFR response to the query `query_id` for `question`,
/// each at most `max_message` bytes (clamped to 512…65535; pass
/// [`super::message_limit`] when each will be signed).
pub fn axfr_messages(
    zone: &Zone,
    query_id: u16,
    question: &Question,
    max_message: usize,
) -> Result<Vec<Vec<u8>>, BuildError> {
    let mut packer = Packer::new(query_id, question, max_message);
    push_zone(&mut packer, zone)?;
    Ok(packer.finish())
}

/// Pushes the whole zone in AXFR order: SOA, the rest canonically, SOA.
pub(crate) fn push_zone(packer: &mut Packer<'_>, zone: &Zone) -> Result<(), BuildError> {
    let soa = soa_record(zone)?;
    packer.push(&soa)?;
    for record in zone.records() {
        let is_apex_soa = record.rdata.rtype() == RecordType::SOA && record.name == *zone.origin();
        if !is_apex_soa {
            packer.push(&record)?;
        }
    }
    packer.push(&soa)
}

/// The zone's SOA as a record.
pub(crate) fn soa_record(zone: &Zone) -> Result<Record, BuildError> {
    let no_soa = || BuildError::NoSoa {
        origin: zone.origin().clone(),
    };
    let set = zone
        .get(zone.origin(), RecordType::SOA)
        .ok_or_else(no_soa)?;
    let rdata = set.rdatas().first().ok_or_else(no_soa)?;
    Ok(Record {
        name: zone.origin().clone(),
        ttl: set.ttl,
        rdata: rdata.clone(),
    })
}
