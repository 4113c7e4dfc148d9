//! One UPDATE waiting for the writer: what the queue holds and the group
//! commit (`commit.rs`) works out. A leaf: it imports no file of its own.

use std::net::SocketAddr;

use cutover_nameserver::update::Update;
use cutover_zone::Name;

/// One UPDATE waiting for the writer: parsed and admitted, answered once
/// the batch that holds it commits.
#[derive(Debug)]
pub struct Pending {
    /// The request as received (the answer echoes it).
    pub request: Vec<u8>,
    /// The request parsed.
    pub parsed: Update,
    /// The key that signed it, if any.
    pub key: Option<Name>,
    /// Who sent it.
    pub client: SocketAddr,
    /// `key NAME` or `unsigned from ADDRESS`, for the log and the journal.
    pub who: String,
    /// The clock when it arrived, seconds (for the serial).
    pub now: u32,
}
