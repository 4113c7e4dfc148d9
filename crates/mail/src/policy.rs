//! What the relay accepts: the domains it is a backup MX for, their
//! recipients, and the limits every session enforces.

use std::collections::{BTreeMap, BTreeSet};

use crate::address::Mailbox;

/// The relay's acceptance policy, shared by every session.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The relay's own host name, used in the greeting, EHLO and Received.
    pub hostname: String,
    /// The domains relayed, keyed by lower-case domain name.
    pub domains: BTreeMap<String, RelayDomain>,
    /// Largest message accepted, in octets (advertised with SIZE).
    pub max_message_size: usize,
    /// Most recipients accepted in one transaction.
    pub max_recipients: usize,
    /// Longest command line, CRLF included.
    pub max_command_line: usize,
    /// Longest message line, CRLF included (RFC 5321 §4.5.3.1.6: 1000).
    pub max_data_line: usize,
    /// Most Received headers a message may carry before it is a loop.
    pub max_hops: usize,
    /// Most protocol errors in one session before it is closed.
    pub max_errors: usize,
    /// Junk commands (NOOP, RSET, VRFY, HELP) a session may send between
    /// two messages before each counts as an error (Postfix's
    /// `smtpd_junk_command_limit`).
    pub max_junk: usize,
    /// Where `RCPT TO:<postmaster>` (no domain) goes: a mailbox of a relayed
    /// domain (RFC 5321 §4.5.1); refused with 550 when None.
    pub postmaster: Option<Mailbox>,
    /// Whether STARTTLS is offered (a certificate is configured).
    pub tls_available: bool,
}

/// One relayed domain and the recipients it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayDomain {
    /// The local parts accepted, lower case; anything else gets 550 at RCPT.
    pub recipients: BTreeSet<String>,
    /// Every local part is accepted (`@domain` in the config's list).
    pub any: bool,
    /// Recipients not in the list are asked of the destination at RCPT time
    /// (and remembered for when it is down).
    pub verify: bool,
}

/// What the policy says of a recipient in a relayed domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Listed (or the domain takes any local part): 250.
    Known,
    /// Not listed, and the domain is verified against its destination.
    Verify,
    /// Not listed, no verification: 550 (no backscatter).
    Unknown,
}

impl Policy {
    /// A policy with the given host name, no domains and the default limits.
    pub fn new(hostname: impl Into<String>) -> Self {
        Policy {
            hostname: hostname.into(),
            domains: BTreeMap::new(),
            max_message_size: 35 * 1024 * 1024,
            max_recipients: 100,
            max_command_line: 2048,
            max_data_line: 1000,
            max_hops: 30,
            max_errors: 10,
            max_junk: 100,
            postmaster: None,
            tls_available: false,
        }
    }

    /// Adds (or extends) a relayed domain with the given local parts.
    pub fn relay<'a>(
        mut self,
        domain: &str,
        recipients: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let entry = self.domains.entry(domain.to_ascii_lowercase()).or_default();
        entry
            .recipients
            .extend(recipients.into_iter().map(str::to_lowercase));
        self
    }

    /// Whether `domain` (any case) is relayed.
    pub fn relays(&self, domain: &str) -> bool {
        self.domains.contains_key(&domain.to_ascii_lowercase())
    }

    /// Marks `domain` (added if needed) as verified against its destination.
    pub fn verified(mut self, domain: &str) -> Self {
        self.domains
            .entry(domain.to_ascii_lowercase())
            .or_default()
            .verify = true;
        self
    }

    /// Whether `local@domain` is a known recipient of a relayed domain.
    pub fn knows(&self, local: &str, domain: &str) -> bool {
        self.admission(local, domain) == Admission::Known
    }

    /// What to do with `local@domain` at RCPT time. `postmaster` (any
    /// case) is known in every relayed domain (RFC 5321 §4.5.1).
    pub fn admission(&self, local: &str, domain: &str) -> Admission {
        match self.domains.get(&domain.to_ascii_lowercase()) {
            Some(relayed)
                if relayed.any
                    || local.eq_ignore_ascii_case("postmaster")
                    || relayed.recipients.contains(&local.to_lowercase()) =>
            {
                Admission::Known
            }
            Some(relayed) if relayed.verify => Admission::Verify,
            _ => Admission::Unknown,
        }
    }
}
