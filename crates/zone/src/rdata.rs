//! RDATA in its uncompressed wire form, with the few typed views the rest of
//! cutover needs (SOA fields, the target name of NS/CNAME/DNAME/MX/SRV/PTR).

use std::fmt;

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};

/// One record's data: its type and its uncompressed wire bytes.
///
/// Equality and ordering are on the bytes (names inside keep their case, as
/// written), which is the order cutover keeps RRsets in.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rdata {
    rtype: u16,
    wire: Box<[u8]>,
}

/// Why some bytes or a hickory value are not valid RDATA of a type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RdataError {
    /// The bytes do not decode as the type claims.
    #[error("invalid {rtype} rdata: {reason}")]
    Invalid {
        /// The record type.
        rtype: RecordType,
        /// What the decoder said.
        reason: String,
    },
    /// RDATA is limited to 65535 bytes.
    #[error("{rtype} rdata of {len} bytes is longer than 65535")]
    TooLong {
        /// The record type.
        rtype: RecordType,
        /// The length seen.
        len: usize,
    },
}

/// The fields of an SOA record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Soa {
    /// Primary nameserver.
    pub mname: Name,
    /// Responsible mailbox.
    pub rname: Name,
    /// Zone serial.
    pub serial: u32,
    /// Refresh interval (s).
    pub refresh: u32,
    /// Retry interval (s).
    pub retry: u32,
    /// Expire (s).
    pub expire: u32,
    /// Minimum / negative-caching TTL (s).
    pub minimum: u32,
}

impl Rdata {
    /// RDATA from wire bytes, checked by decoding them (names must be
    /// uncompressed: there is nothing for a pointer to point at).
    pub fn from_wire(rtype: RecordType, wire: &[u8]) -> Result<Rdata, RdataError> {
        if wire.len() > 65535 {
            return Err(RdataError::TooLong {
                rtype,
                len: wire.len(),
            });
        }
        let rdata = Rdata {
            rtype: u16::from(rtype),
            wire: wire.into(),
        };
        rdata.check()?;
        Ok(rdata)
    }

    /// RDATA from a hickory value, encoded without name compression.
    pub fn from_hickory(value: &RData) -> Result<Rdata, RdataError> {
        let rtype = value.record_type();
        let mut buf = Vec::with_capacity(64);
        {
            let mut encoder = BinEncoder::new(&mut buf);
            encoder.set_name_encoding(NameEncoding::Uncompressed);
            value.emit(&mut encoder).map_err(|e| RdataError::Invalid {
                rtype,
                reason: e.to_string(),
            })?;
        }
        Rdata::from_wire(rtype, &buf)
    }

    /// An SOA from its fields.
    pub fn soa(soa: &Soa) -> Rdata {
        let mut wire = Vec::with_capacity(64);
        push_name(&mut wire, &soa.mname);
        push_name(&mut wire, &soa.rname);
        for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
            wire.extend_from_slice(&v.to_be_bytes());
        }
        Rdata {
            rtype: u16::from(RecordType::SOA),
            wire: wire.into(),
        }
    }

    /// An A record.
    pub fn a(addr: std::net::Ipv4Addr) -> Rdata {
        Rdata {
            rtype: 1,
            wire: addr.octets().into(),
        }
    }

    /// An AAAA record.
    pub fn aaaa(addr: std::net::Ipv6Addr) -> Rdata {
        Rdata {
            rtype: 28,
            wire: addr.octets().into(),
        }
    }

    /// A record whose data is one domain name (NS, CNAME, DNAME, PTR).
    pub fn name_only(rtype: RecordType, name: &Name) -> Rdata {
        let mut wire = Vec::with_capacity(name.len() + 2);
        push_name(&mut wire, name);
        Rdata {
            rtype: u16::from(rtype),
            wire: wire.into(),
        }
    }

    /// The record type.
    pub fn rtype(&self) -> RecordType {
        RecordType::from(self.rtype)
    }

    /// The uncompressed wire bytes.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Decodes into hickory's typed value (types hickory does not know,
    /// DNAME among them, come back as `RData::Unknown`).
    pub fn to_hickory(&self) -> Result<RData, RdataError> {
        let rtype = self.rtype();
        let mut decoder = BinDecoder::new(&self.wire);
        let value = RData::read(&mut decoder, rtype, Restrict::new(self.wire.len() as u16))
            .map_err(|e| RdataError::Invalid {
                rtype,
                reason: e.to_string(),
            })?;
        if decoder.index() != self.wire.len() {
            return Err(RdataError::Invalid {
                rtype,
                reason: format!("{} trailing bytes", self.wire.len() - decoder.index()),
            });
        }
        Ok(value)
    }

    /// The SOA fields, when this is an SOA.
    pub fn as_soa(&self) -> Option<Soa> {
        if self.rtype() != RecordType::SOA {
            return None;
        }
        let mut d = BinDecoder::new(&self.wire);
        let mname = Name::read(&mut d).ok()?;
        let rname = Name::read(&mut d).ok()?;
        let rest = d.read_slice(20).ok()?.unverified();
        let n = |i: usize| u32::from_be_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        Some(Soa {
            mname,
            rname,
            serial: n(0),
            refresh: n(4),
            retry: n(8),
            expire: n(12),
            minimum: n(16),
        })
    }

    /// Where the target name starts in the wire bytes, for the types whose
    /// data points at another name.
    pub fn target_offset(&self) -> Option<usize> {
        match self.rtype() {
            RecordType::NS | RecordType::CNAME | RecordType::PTR => Some(0),
            t if u16::from(t) == DNAME => Some(0),
            RecordType::MX => Some(2),
            RecordType::SRV => Some(6),
            _ => None,
        }
    }

    /// The name this record points at (NS, CNAME, DNAME, PTR host, MX
    /// exchange, SRV target).
    pub fn target(&self) -> Option<Name> {
        let offset = self.target_offset()?;
        Name::read(&mut BinDecoder::new(self.wire.get(offset..)?)).ok()
    }

    /// Decodes fully to make sure the bytes are what the type says.
    fn check(&self) -> Result<(), RdataError> {
        if let Some(offset) = self.target_offset() {
            let rest = self.wire.get(offset..).unwrap_or_default();
            let name_len = wire_name_len(rest).ok_or_else(|| RdataError::Invalid {
                rtype: self.rtype(),
                reason: "bad or compressed domain name".into(),
            })?;
            if u16::from(self.rtype()) == DNAME && name_len != rest.len() {
                return Err(RdataError::Invalid {
                    rtype: self.rtype(),
                    reason: "trailing bytes".into(),
                });
            }
        }
        if self.rtype() == RecordType::SOA {
            let ok = wire_name_len(&self.wire).and_then(|a| {
                wire_name_len(&self.wire[a..]).map(|b| a + b + 20 == self.wire.len())
            });
            if ok != Some(true) {
                return Err(RdataError::Invalid {
                    rtype: RecordType::SOA,
                    reason: "expected two names and five 32-bit numbers".into(),
                });
            }
        }
        self.to_hickory().map(|_| ())
    }
}

/// The DNAME type code (hickory has no typed DNAME).
pub const DNAME: u16 = 39;
/// The SPF type code (RFC 7208 keeps it for compatibility; data as TXT).
pub const SPF: u16 = 99;

/// Appends a name in uncompressed wire form, keeping its case.
pub fn push_name(buf: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        buf.push(label.len() as u8);
        buf.extend_from_slice(label);
    }
    buf.push(0);
}

/// The length of an uncompressed wire name at the start of `buf`, or `None`
/// if it is malformed, compressed or longer than 255 bytes.
pub fn wire_name_len(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let len = *buf.get(i)? as usize;
        if len & 0xc0 != 0 {
            return None;
        }
        i += 1 + len;
        if i > 255 || i > buf.len() {
            return None;
        }
        if len == 0 {
            return Some(i);
        }
    }
}

impl fmt::Debug for Rdata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.rtype())?;
        for b in self.wire.iter() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn soa_round_trips_through_wire() {
        let soa = Soa {
            mname: Name::from_str("ns1.example.com.").unwrap(),
            rname: Name::from_str("hostmaster.example.com.").unwrap(),
            serial: 2024010101,
            refresh: 3600,
            retry: 600,
            expire: 1209600,
            minimum: 300,
        };
        let rdata = Rdata::soa(&soa);
        assert_eq!(rdata.as_soa(), Some(soa));
        assert!(Rdata::from_wire(RecordType::SOA, rdata.wire()).is_ok());
    }

    #[test]
    fn compressed_names_are_refused() {
        assert!(Rdata::from_wire(RecordType::NS, &[0xc0, 0x0c]).is_err());
        assert!(Rdata::from_wire(RecordType::from(DNAME), &[3, b'f', b'o', b'o', 0]).is_ok());
        assert!(Rdata::from_wire(RecordType::from(DNAME), &[3, b'f', b'o', b'o', 0, 1]).is_err());
    }

    #[test]
    fn targets_of_mx_and_srv() {
        let mx = Rdata::from_wire(RecordType::MX, b"\x00\x0a\x04mail\x07example\x00").unwrap();
        assert_eq!(mx.target().unwrap().to_string(), "mail.example.");
        let srv = Rdata::from_wire(RecordType::SRV, b"\x00\x01\x00\x02\x00\x19\x02mx\x00").unwrap();
        assert_eq!(srv.target().unwrap().to_string(), "mx.");
    }
}
