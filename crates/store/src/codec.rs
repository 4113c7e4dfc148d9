//! How names and records are laid out in the store's columns.
//!
//! Owner names are stored as the lowercase uncompressed wire form, so equal
//! names (DNS names compare without case) have equal keys and the primary key
//! index orders a zone's rows by owner. RDATA is the [`Rdata`] wire blob.

use cutover_zone::rdata::push_name;
use cutover_zone::{Name, Rdata, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

/// The column form of a name: lowercase wire bytes.
pub fn name_key(name: &Name) -> Vec<u8> {
    let mut wire = Vec::with_capacity(name.len() + 2);
    push_name(&mut wire, &name.to_lowercase());
    wire
}

/// A name back from its column form.
pub fn name_from_key(key: &[u8]) -> Result<Name, String> {
    let mut decoder = BinDecoder::new(key);
    let name = Name::read(&mut decoder).map_err(|e| format!("bad stored name: {e}"))?;
    if decoder.index() != key.len() {
        return Err("bad stored name: trailing bytes".into());
    }
    Ok(name)
}

/// One record row as read from a table.
pub struct RecordRow {
    /// Owner, column form.
    pub owner: Vec<u8>,
    /// Type code.
    pub rtype: u16,
    /// TTL.
    pub ttl: u32,
    /// RDATA wire bytes.
    pub rdata: Vec<u8>,
}

impl RecordRow {
    /// Reads the four columns starting at `first`.
    pub fn read(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<RecordRow> {
        Ok(RecordRow {
            owner: row.get(first)?,
            rtype: row.get(first + 1)?,
            ttl: row.get(first + 2)?,
            rdata: row.get(first + 3)?,
        })
    }

    /// The record, decoding the owner (or reusing `previous` when it is the
    /// same owner, the common case when rows come in key order).
    pub fn decode(&self, previous: Option<(&[u8], &Name)>) -> Result<Record, String> {
        let name = match previous {
            Some((key, name)) if key == self.owner.as_slice() => name.clone(),
            _ => name_from_key(&self.owner)?,
        };
        let rdata = Rdata::from_wire(RecordType::from(self.rtype), &self.rdata)
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(Record {
            name,
            ttl: self.ttl,
            rdata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn names_of_any_case_share_one_key() {
        let upper = Name::from_str("WWW.Example.COM.").unwrap();
        let lower = Name::from_str("www.example.com.").unwrap();
        assert_eq!(name_key(&upper), name_key(&lower));
        assert_eq!(name_from_key(&name_key(&upper)).unwrap(), lower);
        assert!(name_from_key(&[3, b'w', b'w']).is_err());
    }
}
