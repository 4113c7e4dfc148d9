//! Reading an UPDATE message (RFC 2136 §2) into typed prerequisites and
//! changes. Every form the RFC allows has a variant; anything else is a
//! [`ParseError`], which the server answers with FORMERR (or NOTAUTH for a
//! zone class that is not IN).
//!
//! Names may be compressed anywhere, RDATA included; they are read with
//! hickory's decoder, which only follows pointers backwards (no loops), and
//! the data is kept uncompressed ([`Rdata`]).

use std::collections::BTreeMap;

use cutover_zone::{Name, Rdata, Record, RecordType};
use hickory_proto::rr::RData;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, Restrict};

use super::{UpdateRcode, OPCODE_UPDATE};

/// Class IN, the only zone class cutover serves.
const CLASS_IN: u16 = 1;
/// Class NONE (RFC 2136 §1.3).
const CLASS_NONE: u16 = 254;
/// Class ANY.
const CLASS_ANY: u16 = 255;
/// Type ANY.
const TYPE_ANY: u16 = 255;

/// One UPDATE request, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The message ID, echoed in the response.
    pub id: u16,
    /// The zone named in the zone section.
    pub zone: Name,
    /// The prerequisites, in message order; the RRs of one value-dependent
    /// RRset (§2.4.2) are gathered into one [`Prerequisite::RrsetEquals`].
    pub prerequisites: Vec<Prerequisite>,
    /// The changes, in message order.
    pub changes: Vec<Change>,
}

/// A prerequisite (RFC 2136 §2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prerequisite {
    /// §2.4.1: an RRset of this name and type exists (value-independent).
    RrsetExists {
        /// Owner.
        name: Name,
        /// Type.
        rtype: RecordType,
    },
    /// §2.4.2: the RRset of this name and type is exactly this data.
    RrsetEquals {
        /// Owner.
        name: Name,
        /// Type.
        rtype: RecordType,
        /// The data, sorted and without duplicates.
        rdatas: Vec<Rdata>,
    },
    /// §2.4.3: no RRset of this name and type exists.
    RrsetDoesNotExist {
        /// Owner.
        name: Name,
        /// Type.
        rtype: RecordType,
    },
    /// §2.4.4: the name owns at least one RR.
    NameInUse {
        /// Owner.
        name: Name,
    },
    /// §2.4.5: the name owns no RR.
    NameNotInUse {
        /// Owner.
        name: Name,
    },
}

/// A change (RFC 2136 §2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// §2.5.1: add this record to its RRset.
    Add(Record),
    /// §2.5.2: delete the RRset of this name and type.
    DeleteRrset {
        /// Owner.
        name: Name,
        /// Type.
        rtype: RecordType,
    },
    /// §2.5.3: delete every RRset of this name.
    DeleteName {
        /// Owner.
        name: Name,
    },
    /// §2.5.4: delete this one record.
    DeleteRecord {
        /// Owner.
        name: Name,
        /// The data to delete.
        rdata: Rdata,
    },
}

/// Why bytes are not an UPDATE cutover can process.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The message ends inside a header, record or name.
    #[error("message truncated in the {section} section")]
    Truncated {
        /// Where.
        section: &'static str,
    },
    /// QR is set: this is a response.
    #[error("QR is set: a response, not an UPDATE request")]
    Response,
    /// Not opcode 5.
    #[error("opcode {0} is not UPDATE (5)")]
    NotUpdate(u8),
    /// ZOCOUNT is not 1.
    #[error("zone section holds {0} entries, exactly 1 is required")]
    ZoneCount(u16),
    /// The zone entry's type is not SOA.
    #[error("zone section type is {0}, SOA is required")]
    ZoneType(RecordType),
    /// The zone class is not IN.
    #[error("zone class {0} is not IN")]
    ZoneClass(u16),
    /// A name that does not decode.
    #[error("bad name in the {section} section: {reason}")]
    BadName {
        /// Where.
        section: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A record in a form RFC 2136 does not allow.
    #[error("{section} record {name} {rtype} (class {class}, TTL {ttl}, {rdlength} bytes of data): {reason}")]
    BadForm {
        /// Where.
        section: &'static str,
        /// Owner.
        name: Name,
        /// Type.
        rtype: RecordType,
        /// Class code.
        class: u16,
        /// TTL.
        ttl: u32,
        /// RDLENGTH.
        rdlength: u16,
        /// What is wrong.
        reason: &'static str,
    },
    /// RDATA that does not decode as its type.
    #[error("{section} record {name} {rtype}: bad data: {reason}")]
    BadRdata {
        /// Where.
        section: &'static str,
        /// Owner.
        name: Name,
        /// Type.
        rtype: RecordType,
        /// What the decoder said.
        reason: String,
    },
    /// Bytes after the last record.
    #[error("{0} bytes after the last record")]
    Trailing(usize),
}

impl ParseError {
    /// The RCODE to answer with.
    pub fn rcode(&self) -> UpdateRcode {
        match self {
            ParseError::ZoneClass(_) => UpdateRcode::NotAuth,
            _ => UpdateRcode::FormErr,
        }
    }
}

/// One record as it sits on the wire, its data left in place.
struct RawRecord {
    /// Owner.
    name: Name,
    /// Type code.
    rtype: u16,
    /// Class code.
    class: u16,
    /// TTL.
    ttl: u32,
    /// RDLENGTH.
    rdlength: u16,
    /// Where the data starts in the message.
    rdata_at: usize,
}

impl Update {
    /// Parses an UPDATE request. A TSIG (or OPT) record in the additional
    /// section is skipped: verifying it is `crate::tsig::verify_request`'s
    /// job, done by the caller before this.
    pub fn parse(message: &[u8]) -> Result<Update, ParseError> {
        let header = message
            .get(..12)
            .ok_or(ParseError::Truncated { section: "header" })?;
        let count = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
        if header[2] & 0x80 != 0 {
            return Err(ParseError::Response);
        }
        let opcode = (header[2] >> 3) & 0x0f;
        if opcode != OPCODE_UPDATE {
            return Err(ParseError::NotUpdate(opcode));
        }
        let (zocount, prcount, upcount, adcount) = (count(4), count(6), count(8), count(10));
        if zocount != 1 {
            return Err(ParseError::ZoneCount(zocount));
        }
        let mut decoder = BinDecoder::new(message);
        // The header is 12 bytes long, checked above.
        let _ = decoder.read_slice(12);
        let zone = read_name(&mut decoder, "zone")?;
        let ztype = read_u16(&mut decoder, "zone")?;
        let zclass = read_u16(&mut decoder, "zone")?;
        if ztype != u16::from(RecordType::SOA) {
            return Err(ParseError::ZoneType(RecordType::from(ztype)));
        }
        if zclass != CLASS_IN {
            return Err(ParseError::ZoneClass(zclass));
        }

        let mut prerequisites = Vec::new();
        // Value-dependent prerequisites by (name, type), in first-seen order.
        let mut equal_sets: BTreeMap<(Name, u16), usize> = BTreeMap::new();
        for _ in 0..prcount {
            let raw = read_record(&mut decoder, message, "prerequisite")?;
            let section = "prerequisite";
            let rtype = RecordType::from(raw.rtype);
            if raw.ttl != 0 {
                return Err(bad(&raw, section, "TTL must be 0"));
            }
            let prerequisite = match raw.class {
                CLASS_ANY | CLASS_NONE if raw.rdlength != 0 => {
                    return Err(bad(
                        &raw,
                        section,
                        "RDLENGTH must be 0 with class ANY or NONE",
                    ))
                }
                CLASS_ANY if raw.rtype == TYPE_ANY => Prerequisite::NameInUse { name: raw.name },
                CLASS_ANY => Prerequisite::RrsetExists {
                    name: raw.name,
                    rtype,
                },
                CLASS_NONE if raw.rtype == TYPE_ANY => {
                    Prerequisite::NameNotInUse { name: raw.name }
                }
                CLASS_NONE => Prerequisite::RrsetDoesNotExist {
                    name: raw.name,
                    rtype,
                },
                CLASS_IN => {
                    if is_meta_type(raw.rtype) {
                        return Err(bad(&raw, section, "a meta type cannot have data"));
                    }
                    let rdata = read_rdata(message, &raw, section)?;
                    let key = (raw.name.clone(), raw.rtype);
                    match equal_sets.get(&key) {
                        Some(&at) => {
                            if let Prerequisite::RrsetEquals { rdatas, .. } = &mut prerequisites[at]
                            {
                                if let Err(i) = rdatas.binary_search(&rdata) {
                                    rdatas.insert(i, rdata);
                                }
                            }
                            continue;
                        }
                        None => {
                            equal_sets.insert(key, prerequisites.len());
                            Prerequisite::RrsetEquals {
                                name: raw.name,
                                rtype,
                                rdatas: vec![rdata],
                            }
                        }
                    }
                }
                _ => return Err(bad(&raw, section, "class must be IN, ANY or NONE")),
            };
            prerequisites.push(prerequisite);
        }

        let mut changes = Vec::new();
        for _ in 0..upcount {
            let section = "update";
            let raw = read_record(&mut decoder, message, section)?;
            let rtype = RecordType::from(raw.rtype);
            let change = match raw.class {
                CLASS_IN => {
                    if is_meta_type(raw.rtype) {
                        return Err(bad(&raw, section, "cannot add a meta type"));
                    }
                    if raw.rdlength == 0 {
                        return Err(bad(&raw, section, "an added record needs data"));
                    }
                    let rdata = read_rdata(message, &raw, section)?;
                    Change::Add(Record {
                        name: raw.name,
                        ttl: raw.ttl,
                        rdata,
                    })
                }
                CLASS_ANY | CLASS_NONE if raw.ttl != 0 => {
                    return Err(bad(&raw, section, "TTL must be 0 in a deletion"))
                }
                CLASS_ANY => {
                    if raw.rdlength != 0 {
                        return Err(bad(&raw, section, "RDLENGTH must be 0 with class ANY"));
                    }
                    if raw.rtype == TYPE_ANY {
                        Change::DeleteName { name: raw.name }
                    } else if is_meta_type(raw.rtype) {
                        return Err(bad(&raw, section, "cannot delete a meta type"));
                    } else {
                        Change::DeleteRrset {
                            name: raw.name,
                            rtype,
                        }
                    }
                }
                CLASS_NONE => {
                    if is_meta_type(raw.rtype) {
                        return Err(bad(&raw, section, "cannot delete a meta type"));
                    }
                    if raw.rdlength == 0 {
                        return Err(bad(&raw, section, "deleting one record needs its data"));
                    }
                    let rdata = read_rdata(message, &raw, section)?;
                    Change::DeleteRecord {
                        name: raw.name,
                        rdata,
                    }
                }
                _ => return Err(bad(&raw, section, "class must be IN, ANY or NONE")),
            };
            changes.push(change);
        }

        for _ in 0..adcount {
            read_record(&mut decoder, message, "additional")?;
        }
        if decoder.index() != message.len() {
            return Err(ParseError::Trailing(message.len() - decoder.index()));
        }
        Ok(Update {
            id: u16::from_be_bytes([header[0], header[1]]),
            zone,
            prerequisites,
            changes,
        })
    }
}

/// True for the types that never name stored data: ANY, AXFR, IXFR,
/// MAILA, MAILB and the rest of the 128–255 meta range, OPT, TSIG, TKEY,
/// and type 0.
fn is_meta_type(rtype: u16) -> bool {
    rtype == 0 || rtype == 41 || (128..=255).contains(&rtype)
}

/// The error for a record in a form the RFC does not allow.
fn bad(raw: &RawRecord, section: &'static str, reason: &'static str) -> ParseError {
    ParseError::BadForm {
        section,
        name: raw.name.clone(),
        rtype: RecordType::from(raw.rtype),
        class: raw.class,
        ttl: raw.ttl,
        rdlength: raw.rdlength,
        reason,
    }
}

/// Reads a possibly compressed name.
fn read_name(decoder: &mut BinDecoder<'_>, section: &'static str) -> Result<Name, ParseError> {
    let mut name = Name::read(decoder).map_err(|e| ParseError::BadName {
        section,
        reason: e.to_string(),
    })?;
    name.set_fqdn(true);
    Ok(name)
}

/// Reads a 16-bit number.
fn read_u16(decoder: &mut BinDecoder<'_>, section: &'static str) -> Result<u16, ParseError> {
    decoder
        .read_u16()
        .map(|v| v.unverified())
        .map_err(|_| ParseError::Truncated { section })
}

/// Reads a record's fixed part and steps over its data.
fn read_record(
    decoder: &mut BinDecoder<'_>,
    message: &[u8],
    section: &'static str,
) -> Result<RawRecord, ParseError> {
    let name = read_name(decoder, section)?;
    let rtype = read_u16(decoder, section)?;
    let class = read_u16(decoder, section)?;
    let ttl = decoder
        .read_u32()
        .map(|v| v.unverified())
        .map_err(|_| ParseError::Truncated { section })?;
    let rdlength = read_u16(decoder, section)?;
    let rdata_at = decoder.index();
    if rdata_at + usize::from(rdlength) > message.len() {
        return Err(ParseError::Truncated { section });
    }
    // In bounds: checked just above.
    let _ = decoder.read_slice(usize::from(rdlength));
    Ok(RawRecord {
        name,
        rtype,
        class,
        ttl,
        rdlength,
        rdata_at,
    })
}

/// Decodes a record's data (names in it may be compressed) into the
/// uncompressed form the zone keeps.
fn read_rdata(message: &[u8], raw: &RawRecord, section: &'static str) -> Result<Rdata, ParseError> {
    let rtype = RecordType::from(raw.rtype);
    let error = |reason: String| ParseError::BadRdata {
        section,
        name: raw.name.clone(),
        rtype,
        reason,
    };
    let mut decoder = BinDecoder::new(message);
    // `rdata_at` is inside the message: `read_record` checked it.
    let _ = decoder.read_slice(raw.rdata_at);
    let value = RData::read(&mut decoder, rtype, Restrict::new(raw.rdlength))
        .map_err(|e| error(e.to_string()))?;
    let used = decoder.index() - raw.rdata_at;
    if used != usize::from(raw.rdlength) {
        return Err(error(format!(
            "data used {used} of RDLENGTH {} bytes",
            raw.rdlength
        )));
    }
    if matches!(value, RData::Update0(_)) {
        return Err(error("no data".into()));
    }
    Rdata::from_hickory(&value).map_err(|e| error(e.to_string()))
}
