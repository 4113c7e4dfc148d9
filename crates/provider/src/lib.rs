//! Providers: where a zone's records live, behind one narrow seam.
//!
//! ```text
//!  migration runner ──read──▶ Provider ──▶ cutover's store │ RFC 2136 server │ PowerDNS API │ cloud host
//!                   ──apply(changes, each with what it expects)──▶ all or nothing, or Conflict
//! ```
//!
//! A [`Change`] carries the RRset the plan saw (`expect`) and the RRset it
//! wants (`set`). A provider applies a change set only if every `expect`
//! still holds, so nothing someone else changed is overwritten: RFC 2136
//! sends them as prerequisites, the store compares inside its transaction,
//! HTTP providers read, compare and write.
//!
//! The trait is blocking: callers on an async runtime use `spawn_blocking`.
//!
//! The implementations, one module each, all checked by one shared test
//! battery (`tests/battery`) against real servers:
//!
//! | module | where the records live | how `expect` is kept |
//! |---|---|---|
//! | [`embedded`] | cutover's own store | compared inside the store's write transaction |
//! | [`rfc2136`] | any server taking RFC 2136 UPDATE with TSIG | prerequisites in the UPDATE itself |
//! | [`powerdns`] | PowerDNS Authoritative's HTTP API | read, compare, then one atomic PATCH |
//! | `cloud` | cloud DNS hosts through `dns-update` (rustls) | read (Route 53: its API, TTLs included; others: DNS), compare, write RRset by RRset |
//!
//! Whatever the provider, [`readback`] asks the zone's authoritative servers
//! what they now serve and reports TTLs raised above what was asked (a
//! provider's TTL floor).

#![allow(clippy::result_large_err)]

use cutover_zone::{Name, RecordType, Rrset, Serial, Zone};

pub mod cloud;
mod condition;
pub mod embedded;
pub mod powerdns;
mod query;
pub mod readback;
pub mod rfc2136;

pub use condition::rrset_text;
pub use embedded::EmbeddedProvider;
pub use powerdns::{PowerDnsConfig, PowerDnsProvider};
pub use rfc2136::{Rfc2136Config, Rfc2136Provider};

/// One RRset to change: what the plan saw there, and what it should become.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Owner name (absolute).
    pub name: Name,
    /// Record type.
    pub rtype: RecordType,
    /// What the RRset must hold now for the change to go ahead (`None`: absent).
    pub expect: Option<Rrset>,
    /// What it becomes (`None`: deleted).
    pub set: Option<Rrset>,
}

/// What a provider reports after applying a change set.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Applied {
    /// The zone's SOA serial after the change, when the provider knows it.
    pub serial: Option<Serial>,
}

/// Why a provider could not read or change a zone.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// An RRset no longer holds what the plan saw: someone else changed it.
    /// Nothing was changed.
    #[error("{name} {rtype} was changed by someone else since the plan read it: expected {expected}, found {found}")]
    Conflict {
        /// Owner name.
        name: Name,
        /// Record type.
        rtype: RecordType,
        /// What the plan saw, in zone-file form ("absent" when none).
        expected: String,
        /// What is there now, in zone-file form ("absent" when none).
        found: String,
    },
    /// The zone is not held by this provider.
    #[error("the provider does not hold the zone {0}")]
    UnknownZone(Name),
    /// The provider refused the request (authentication, policy, bad data).
    #[error("the provider refused: {0}")]
    Refused(String),
    /// The provider could not be reached or did not answer in time.
    #[error("the provider is unreachable: {0}")]
    Unreachable(String),
    /// This provider cannot do what was asked (e.g. list a zone).
    #[error("not supported by this provider: {0}")]
    Unsupported(String),
}

/// Where a zone's records live.
pub trait Provider: Send + Sync {
    /// What this provider is, for logs and the plan ("cutover's store",
    /// "RFC 2136 at 192.0.2.53:53 with key ops.").
    fn describe(&self) -> String;

    /// The whole zone as the provider holds it now.
    fn read(&self, zone: &Name) -> Result<Zone, ProviderError>;

    /// Applies every change or none: each change's `expect` must still hold,
    /// else [`ProviderError::Conflict`] and nothing changed. Applying a change
    /// set whose `set` values are already in place succeeds and changes
    /// nothing (steps are redone after a crash).
    fn apply(&self, zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError>;

    /// Every zone the provider holds, for a migration file's
    /// `zones = "*"`. The default: it cannot say
    /// ([`ProviderError::Unsupported`], with the reason).
    fn zones(&self) -> Result<Vec<Name>, ProviderError> {
        Err(ProviderError::Unsupported(format!(
            "{} cannot list the zones it holds",
            self.describe()
        )))
    }

    /// The RRsets at the given names and types, in order (`None`: absent).
    /// The default reads the whole zone; providers that cannot list a zone
    /// (cloud hosts) answer this one by DNS instead.
    fn read_rrsets(
        &self,
        zone: &Name,
        keys: &[(Name, RecordType)],
    ) -> Result<Vec<Option<Rrset>>, ProviderError> {
        let whole = self.read(zone)?;
        Ok(keys
            .iter()
            .map(|(name, rtype)| whole.get(name, *rtype).cloned())
            .collect())
    }
}

impl Change {
    /// The (name, type) key of the change.
    pub fn key(&self) -> (Name, RecordType) {
        (self.name.clone(), self.rtype)
    }
}
