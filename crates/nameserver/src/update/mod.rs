//! Dynamic updates (RFC 2136) as a pure core: bytes and a zone in, a diff or
//! a refusal out. No sockets, no clock, no store: the server passes the time,
//! the verified TSIG signer and the client address in, and makes the change
//! durable itself.
//!
//! ```text
//!  request bytes ──tsig::verify_request──▶ signer (or unsigned)        (caller)
//!        │
//!        └──Update::parse──▶ Update { zone, prerequisites, changes }
//!                               │
//!  apply(&zone, &update, signer, client, &policy, now)
//!        1. zone section names this zone             else NOTAUTH
//!        2. the signer/address has a rule for it     else REFUSED
//!        3. record cap                               else REFUSED
//!        4. prerequisites against the zone (§3.2)    YXDOMAIN/NXDOMAIN/YXRRSET/NXRRSET/NOTZONE
//!        5. prescan: in zone, allowed by the ACL     NOTZONE / REFUSED
//!        6. changes in order on a ZoneEdit (§3.4.2)  special rules: SOA, apex NS, CNAME
//!        7. serial rises, RRset cap, ZoneEdit::check else REFUSED, nothing applied
//!        ▼
//!  Outcome::Unchanged                       ──▶ NOERROR, nothing to write
//!  Outcome::Changed { diff }                ──▶ Store::apply(diff) in one transaction,
//!                                               then apply it to the zone, publish it,
//!                                               then response(request, NoError)
//! ```
//!
//! All or nothing: `apply` borrows the zone, lays the touched RRsets over it
//! ([`ZoneEdit`](cutover_zone::ZoneEdit): no copy of the zone, checks at the
//! touched names and what depends on them) and returns either the
//! [`ZoneDiff`](cutover_zone::ZoneDiff) to the new version (old SOA first in
//! `removed`, new SOA first in `added`) or an error and no change. The caller
//! writes the diff with `cutover_store::Store::apply` (one SQLite transaction,
//! fsynced), applies it to its zone (`cutover_zone::edit::apply_in_place`),
//! and only then swaps in a snapshot built from it and answers NOERROR; if the store refuses the diff
//! (another writer moved the zone on), the caller answers SERVFAIL and
//! publishes nothing.

// The errors carry the offending names (so their messages name the bad
// input); an UPDATE is refused at most once per message, a cold path, so
// their size does not matter.
#![allow(clippy::result_large_err)]

mod apply;
mod message;
pub mod operator;
mod policy;
mod response;

#[cfg(test)]
mod tests;

pub use apply::{apply, apply_noting, Ignored, Outcome, UpdateError};
pub use message::{Change, ParseError, Prerequisite, Update};
pub use policy::{NamePattern, Policy, Prefix, PrefixError, Rule};
pub use response::response;

/// The response codes an UPDATE can end with (RFC 1035 §4.1.1, RFC 2136 §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateRcode {
    /// The update was applied (or changed nothing).
    NoError,
    /// The message is malformed.
    FormErr,
    /// The server failed (for the caller: the store refused the diff).
    ServFail,
    /// A "name is in use" prerequisite failed.
    NxDomain,
    /// The opcode is not supported.
    NotImp,
    /// Policy forbids the update, or a cap was passed, or the result would
    /// not be a valid zone.
    Refused,
    /// A "name is not in use" prerequisite failed.
    YxDomain,
    /// An "RRset does not exist" prerequisite failed.
    YxRrset,
    /// An "RRset exists" prerequisite (value-independent or not) failed.
    NxRrset,
    /// This server is not authoritative for the zone named.
    NotAuth,
    /// A name is outside the zone named in the zone section.
    NotZone,
}

impl UpdateRcode {
    /// The 4-bit RCODE on the wire.
    pub fn code(self) -> u8 {
        match self {
            UpdateRcode::NoError => 0,
            UpdateRcode::FormErr => 1,
            UpdateRcode::ServFail => 2,
            UpdateRcode::NxDomain => 3,
            UpdateRcode::NotImp => 4,
            UpdateRcode::Refused => 5,
            UpdateRcode::YxDomain => 6,
            UpdateRcode::YxRrset => 7,
            UpdateRcode::NxRrset => 8,
            UpdateRcode::NotAuth => 9,
            UpdateRcode::NotZone => 10,
        }
    }
}

/// The UPDATE opcode (RFC 2136 §1).
pub const OPCODE_UPDATE: u8 = 5;
