//! The zone model of cutover: what a zone *is*, independent of how it is
//! stored, served or edited.
//!
//! ```text
//!   zone file ──parse──▶ Zone ──diff(old,new)──▶ ZoneDiff ──▶ store journal / IXFR / migrations
//!                         │
//!                         └──▶ nameserver snapshot (answer path)
//! ```
//!
//! Names, record types and RDATA codecs come from hickory-proto. RDATA is kept
//! in its uncompressed wire form ([`Rdata`]), so equality, ordering, storage
//! and the answer path all work on the same bytes.

// Zone errors carry the offending names (for messages that name the bad
// input); they are returned on cold paths only, so their size does not matter.
#![allow(clippy::result_large_err)]

pub mod diff;
pub mod duration;
pub mod edit;
pub mod rdata;
mod rules;
pub mod serial;
pub mod zone;
pub mod zonefile;

pub use diff::ZoneDiff;
pub use edit::ZoneEdit;
pub use hickory_proto::rr::{DNSClass, Name, RecordType};
pub use rdata::{Rdata, RdataError};
pub use serial::Serial;
pub use zone::{Node, Record, Rrset, Zone, ZoneError};
