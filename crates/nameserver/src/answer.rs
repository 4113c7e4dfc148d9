//! The answer function (API placeholder, being written: answers SERVFAIL).

use crate::catalog::Catalog;

/// How the query arrived, which bounds the response size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: the response must fit the client's EDNS size (at most 1232).
    Udp,
    /// TCP: up to 65535 bytes.
    Tcp,
}

/// Writes the response for `query` into `response` (cleared first). Returns
/// false when no response must be sent.
pub fn answer(_catalog: &Catalog, query: &[u8], _transport: Transport, response: &mut Vec<u8>) -> bool {
    response.clear();
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return false;
    }
    response.extend_from_slice(&query[..12]);
    response[2] |= 0x80;
    response[3] = 2;
    true
}
