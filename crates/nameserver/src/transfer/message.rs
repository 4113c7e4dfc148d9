//! Packing a transfer's records into DNS messages: the shared writer of the
//! AXFR and IXFR builders.
//!
//! ```text
//!  records ──push──▶ [header │ question │ rr rr rr …] ≤ cap ──full──▶ next message
//!                    (question in the first message only; owner names
//!                     compressed against earlier owners of the same message)
//! ```
//!
//! Owner names are compressed (exact case, so the receiver sees the names as
//! stored); names inside RDATA are written uncompressed, as RFC 3597 asks for
//! types a receiver may not know. Compression is a hash lookup per suffix of
//! each owner, so packing stays linear in the size of the zone.

use std::collections::HashMap;

use cutover_zone::{Name, Record, RecordType};

use crate::tsig::{signature_len, Key};

/// The largest DNS message over TCP.
pub const MESSAGE_MAX: usize = 65535;
/// The smallest cap the builders accept (a classic UDP message).
pub const MESSAGE_MIN: usize = 512;
/// The DNS header's length.
const HEADER_LEN: usize = 12;
/// Compression pointers can reach only the first 16 KiB of a message.
const POINTER_MAX: usize = 0x3fff;

/// The question a transfer answers, echoed in its first message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The zone's name as the client wrote it.
    pub name: Name,
    /// AXFR or IXFR.
    pub qtype: RecordType,
}

/// Why a transfer response could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The zone has no SOA at its apex.
    #[error("zone {origin} has no SOA record: nothing to transfer")]
    NoSoa {
        /// The zone.
        origin: Name,
    },
    /// One record does not fit in a message of the cap, even alone.
    #[error("{name} {rtype}: a record of {len} bytes does not fit a message of {max} bytes")]
    RecordTooLarge {
        /// Its owner.
        name: Name,
        /// Its type.
        rtype: RecordType,
        /// Its encoded length.
        len: usize,
        /// The message cap.
        max: usize,
    },
}

/// The message cap to build with when every message is to be signed with
/// `key`: the TCP maximum less the TSIG record's bytes.
pub fn message_limit(key: Option<&Key>) -> usize {
    MESSAGE_MAX - key.map_or(0, signature_len)
}

/// Fills messages with answer records, starting a new one when the next
/// record would pass the cap.
pub(crate) struct Packer<'q> {
    /// The response ID.
    id: u16,
    /// The question of the first message.
    question: &'q Question,
    /// The cap on one message's length, clamped to [`MESSAGE_MIN`, `MESSAGE_MAX`].
    max: usize,
    /// Messages finished so far.
    done: Vec<Vec<u8>>,
    /// The message being filled.
    current: Vec<u8>,
    /// Answer records in `current`.
    count: u16,
    /// Exact-case wire suffixes already in `current`, and where they start.
    suffixes: HashMap<Vec<u8>, u16>,
    /// Scratch space for one encoded record.
    scratch: Vec<u8>,
}

impl<'q> Packer<'q> {
    /// A packer for the response `id` to `question`, messages of at most `max` bytes.
    pub(crate) fn new(id: u16, question: &'q Question, max: usize) -> Packer<'q> {
        let mut packer = Packer {
            id,
            question,
            max: max.clamp(MESSAGE_MIN, MESSAGE_MAX),
            done: Vec::new(),
            current: Vec::with_capacity(4096),
            count: 0,
            suffixes: HashMap::new(),
            scratch: Vec::with_capacity(512),
        };
        packer.start();
        packer
    }

    /// Appends one answer record, in a new message when it does not fit.
    pub(crate) fn push(&mut self, record: &Record) -> Result<(), BuildError> {
        self.encode(record);
        if self.current.len() + self.scratch.len() > self.max || self.count == u16::MAX {
            if self.count == 0 {
                return Err(self.too_large(record));
            }
            self.flush();
            self.start();
            self.encode(record);
            if self.current.len() + self.scratch.len() > self.max {
                return Err(self.too_large(record));
            }
        }
        self.remember(&record.name, self.current.len());
        self.current.extend_from_slice(&self.scratch);
        self.count += 1;
        Ok(())
    }

    /// The finished messages (the last one included).
    pub(crate) fn finish(mut self) -> Vec<Vec<u8>> {
        if self.count > 0 || self.done.is_empty() {
            self.flush();
        }
        self.done
    }

    /// Starts a message: header, and the question when it is the first.
    fn start(&mut self) {
        self.current.clear();
        self.suffixes.clear();
        self.count = 0;
        let first = self.done.is_empty();
        self.current.extend_from_slice(&self.id.to_be_bytes());
        // QR and AA set, opcode QUERY, RCODE NOERROR.
        self.current.extend_from_slice(&[0x84, 0x00]);
        self.current
            .extend_from_slice(&[0, u8::from(first), 0, 0, 0, 0, 0, 0]);
        if first {
            let at = self.current.len();
            let mut wire = Vec::with_capacity(self.question.name.len() + 2);
            cutover_zone::rdata::push_name(&mut wire, &self.question.name);
            self.current.extend_from_slice(&wire);
            self.current
                .extend_from_slice(&u16::from(self.question.qtype).to_be_bytes());
            self.current.extend_from_slice(&1u16.to_be_bytes());
            self.remember(&self.question.name.clone(), at);
        }
    }

    /// Sets ANCOUNT and moves the current message to the finished ones.
    fn flush(&mut self) {
        let count = self.count.to_be_bytes();
        self.current[6] = count[0];
        self.current[7] = count[1];
        self.done.push(std::mem::take(&mut self.current));
    }

    /// Encodes `record` into the scratch space as it would sit at the end of
    /// the current message.
    fn encode(&mut self, record: &Record) {
        self.scratch.clear();
        let labels: Vec<&[u8]> = record.name.iter().collect();
        let mut pointer = None;
        let mut written = 0;
        for i in 0..labels.len() {
            if let Some(&at) = self.suffixes.get(&suffix_wire(&labels[i..])) {
                pointer = Some(at);
                break;
            }
            written = i + 1;
        }
        for label in &labels[..written] {
            self.scratch.push(label.len() as u8);
            self.scratch.extend_from_slice(label);
        }
        match pointer {
            Some(at) => self.scratch.extend_from_slice(&(0xc000 | at).to_be_bytes()),
            None => self.scratch.push(0),
        }
        let rdata = record.rdata.wire();
        self.scratch
            .extend_from_slice(&u16::from(record.rdata.rtype()).to_be_bytes());
        self.scratch.extend_from_slice(&1u16.to_be_bytes());
        self.scratch.extend_from_slice(&record.ttl.to_be_bytes());
        // Rdata is at most 65535 bytes: `Rdata::from_wire` refuses longer.
        self.scratch
            .extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.scratch.extend_from_slice(rdata);
    }

    /// Records where the suffixes of `name` written at `at` start, for the
    /// owners that follow (only those a pointer can reach).
    fn remember(&mut self, name: &Name, at: usize) {
        let labels: Vec<&[u8]> = name.iter().collect();
        let mut offset = at;
        for i in 0..labels.len() {
            if offset > POINTER_MAX {
                break;
            }
            let key = suffix_wire(&labels[i..]);
            if self.suffixes.contains_key(&key) {
                // This suffix and every shorter one were written before.
                break;
            }
            self.suffixes.insert(key, offset as u16);
            offset += 1 + labels[i].len();
        }
    }

    /// The error for a record that fits no message.
    fn too_large(&self, record: &Record) -> BuildError {
        BuildError::RecordTooLarge {
            name: record.name.clone(),
            rtype: record.rdata.rtype(),
            len: self.scratch.len(),
            max: self.max - HEADER_LEN,
        }
    }
}

/// The uncompressed wire form of the labels (a suffix of a name), exact case.
fn suffix_wire(labels: &[&[u8]]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1);
    for label in labels {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    wire
}
