//! Who may change what: the UPDATE access policy. Rules are granted to a
//! TSIG key (by its name) or, for unsigned updates, to a client address
//! prefix; nothing is allowed that no rule grants. Caps bound the work one
//! update can cause.
//!
//! A rule names zones, owner-name patterns and types:
//!
//! ```text
//!  Rule { zones: [example.com.], names: [www.example.com., *.dyn.example.com.], types: Some([A, AAAA]) }
//!          ▲ exact zone origins     ▲ exact name        ▲ any name strictly below   ▲ None = every type
//! ```

use std::net::IpAddr;
use std::str::FromStr;

use cutover_zone::{Name, RecordType};

/// The UPDATE policy of a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Rules per TSIG key name (a key with no rule may change nothing).
    pub keys: Vec<(Name, Rule)>,
    /// Rules for unsigned updates per client prefix; empty refuses every
    /// unsigned update.
    pub unsigned: Vec<(Prefix, Rule)>,
    /// The most records the prerequisite and update sections of one update
    /// may hold together.
    pub max_records: usize,
    /// The most records any RRset may hold after an update.
    pub max_rrset: usize,
}

/// What one key or address may change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The zones (origins) the rule covers.
    pub zones: Vec<Name>,
    /// The owner names it covers.
    pub names: Vec<NamePattern>,
    /// The types it covers; `None` for every type.
    pub types: Option<Vec<RecordType>>,
}

/// An owner-name pattern of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamePattern {
    /// Exactly this name (case-insensitive).
    Exact(Name),
    /// `*.suffix.`: any name strictly below the suffix.
    Below(Name),
}

/// An address prefix such as `127.0.0.1/32` or `2001:db8::/48`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// The network address.
    address: IpAddr,
    /// The prefix length in bits (IPv4 addresses sit in the top 32 bits of
    /// the 128-bit form `contains` compares).
    length: u8,
}

/// Why a text is not an address prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Not an address.
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// A length longer than the address.
    #[error("{0:?}: prefix length must be a number up to 32 (IPv4) or 128 (IPv6)")]
    Length(String),
}

impl Policy {
    /// A policy that allows nothing, with caps in the range BIND and Knot use.
    pub fn deny_all() -> Policy {
        Policy {
            keys: Vec::new(),
            unsigned: Vec::new(),
            max_records: 1000,
            max_rrset: 500,
        }
    }

    /// The rules that apply to an update signed by `signer` (or unsigned,
    /// from `client`) for `zone`.
    pub fn rules_for<'p>(
        &'p self,
        zone: &'p Name,
        signer: Option<&'p Name>,
        client: IpAddr,
    ) -> impl Iterator<Item = &'p Rule> + 'p {
        let signed = self
            .keys
            .iter()
            .filter(move |(key, _)| Some(key) == signer)
            .map(|(_, rule)| rule);
        let unsigned = self
            .unsigned
            .iter()
            .filter(move |(prefix, _)| signer.is_none() && prefix.contains(client))
            .map(|(_, rule)| rule);
        signed
            .chain(unsigned)
            .filter(move |rule| rule.zones.iter().any(|z| z == zone))
    }
}

impl Rule {
    /// A rule covering every name and type of one zone.
    pub fn whole_zone(zone: Name) -> Rule {
        Rule {
            names: vec![
                NamePattern::Exact(zone.clone()),
                NamePattern::Below(zone.clone()),
            ],
            zones: vec![zone],
            types: None,
        }
    }

    /// True when the rule covers `name` and `rtype` (`None`: every type,
    /// as a delete of all RRsets at a name needs).
    pub fn allows(&self, name: &Name, rtype: Option<RecordType>) -> bool {
        let name_ok = self.names.iter().any(|p| p.matches(name));
        let type_ok = match (&self.types, rtype) {
            (None, _) => true,
            (Some(types), Some(t)) => types.contains(&t),
            (Some(_), None) => false,
        };
        name_ok && type_ok
    }
}

impl NamePattern {
    /// True when `name` matches.
    pub fn matches(&self, name: &Name) -> bool {
        match self {
            NamePattern::Exact(exact) => exact == name,
            NamePattern::Below(suffix) => suffix.zone_of(name) && suffix != name,
        }
    }
}

impl FromStr for NamePattern {
    type Err = String;

    /// `*.example.com.` is [`NamePattern::Below`], any other name is exact.
    fn from_str(text: &str) -> Result<NamePattern, String> {
        let (below, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut name = Name::from_str(rest).map_err(|e| format!("{text:?}: {e}"))?;
        name.set_fqdn(true);
        Ok(if below {
            NamePattern::Below(name)
        } else {
            NamePattern::Exact(name)
        })
    }
}

impl Prefix {
    /// The prefix of one address (/32 or /128).
    pub fn host(address: IpAddr) -> Prefix {
        let length = if address.is_ipv4() { 32 } else { 128 };
        Prefix { address, length }
    }

    /// True when `address` is inside the prefix (IPv4 and IPv6 never match
    /// each other).
    pub fn contains(&self, address: IpAddr) -> bool {
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        if self.address.is_ipv4() != address.is_ipv4() {
            return false;
        }
        let length = u32::from(self.length);
        let mask = if length == 0 {
            0
        } else {
            u128::MAX << (128 - length)
        };
        bits(self.address) & mask == bits(address) & mask
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// `ADDRESS` (a host) or `ADDRESS/LENGTH`.
    fn from_str(text: &str) -> Result<Prefix, PrefixError> {
        let (address, length) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let address =
            IpAddr::from_str(address).map_err(|_| PrefixError::Address(text.to_string()))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let length = match length {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| PrefixError::Length(text.to_string()))?,
        };
        Ok(Prefix { address, length })
    }
}
