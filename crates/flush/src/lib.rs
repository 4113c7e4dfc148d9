//! Flushing DNS caches: what `cutover flush` and a migration's flush step do.
//!
//! A cache that still holds the old address keeps sending clients to the old
//! server until its TTL runs out; flushing it makes the next lookup fresh.
//! This crate finds the caches on this machine (by their processes) and the
//! ones the config names (control channels, pid files), works out the exact
//! commands that empty them, runs those commands, and reports each cache as
//! flushed, not running, or failed with the reason. For what it cannot reach
//! (other machines, browsers, the JVM) it gives the commands to run by hand.
//!
//! ```text
//!  /proc ──detect::processes──▶ [Process] ─┐
//!  Settings ([flush] in the config) ───────┼─▶ detect::instances (pure) ──▶ [Instance]
//!                                          │        running / configured / not running
//!  Scope (names, subtrees or everything) ──┴─▶ plan::invocations (pure) ──▶ [Invocation]
//!                                                                             │
//!                    run::execute (spawn, timeout)  ◀── or only shown (dry run)
//!                                 │
//!                                 ▼
//!            Report: one Entry per cache instance + advice for the rest
//! ```
//!
//! Only [`detect::processes`] and [`run`] touch the system; the rest is pure
//! and tested with made-up process tables.

pub mod advice;
pub mod detect;
pub mod plan;
pub mod run;
pub mod settings;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use advice::Advice;
pub use detect::{Instance, Place, Process, State};
pub use plan::{Arg, Invocation};
pub use run::{flush, flush_with};
pub use settings::{BindControl, Control, DnsmasqPidFile, Settings, UnboundControl};

/// The kinds of cache cutover knows how to flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// systemd-resolved, the stub resolver of many Linux systems.
    SystemdResolved,
    /// The name service cache daemon of glibc.
    Nscd,
    /// dnsmasq, a small caching forwarder.
    Dnsmasq,
    /// Unbound, a recursive resolver.
    Unbound,
    /// BIND's named as a resolver.
    Bind,
}

/// What to flush.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every entry of every cache.
    Everything,
    /// These names (absolute, lowercase); with `tree`, everything at and below them.
    Names {
        /// The names, each ending in a dot.
        names: Vec<String>,
        /// Whether names below each name go too.
        tree: bool,
    },
}

/// The outcome for one cache instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Its commands ran and succeeded.
    Flushed,
    /// A dry run: the commands were only shown.
    WouldRun,
    /// It does not run here (or its pid file names no live process).
    NotRunning {
        /// How that was found.
        why: String,
    },
    /// A command failed.
    Failed {
        /// The command's error output, or why it could not run.
        why: String,
    },
}

/// One cache instance in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The kind of cache.
    pub cache: Kind,
    /// Which instance: "pid 812", "control 10.0.0.53:953", "pid file …".
    pub instance: String,
    /// What was (or would be) removed: the names, or "whole cache".
    pub scope: String,
    /// How it went.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The commands, as a shell would show them.
    pub commands: Vec<String>,
}

/// Everything one flush did, and what is left to do by hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// One entry per cache instance, configured ones included.
    pub caches: Vec<Entry>,
    /// Commands for the caches cutover cannot reach from here.
    pub advice: Vec<Advice>,
}

/// Why a flush request cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlushError {
    /// A name that is not a host name.
    #[error("{name:?} is not a domain name: {why}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A cache kind nobody knows.
    #[error("unknown cache {0:?} (known: systemd-resolved, nscd, dnsmasq, unbound, bind)")]
    UnknownKind(String),
    /// A control address that is not `host:port`.
    #[error("control {0:?} is not host:port")]
    BadControl(String),
    /// An Unbound control channel with only some of its certificate files.
    #[error("[[flush.unbound]] {0}: give all of server_cert, control_key and control_cert, or none (plain TCP, control-use-cert: no)")]
    PartialCertificates(String),
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 5] = [
        Kind::SystemdResolved,
        Kind::Nscd,
        Kind::Dnsmasq,
        Kind::Unbound,
        Kind::Bind,
    ];

    /// The name used on the command line, in config and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SystemdResolved => "systemd-resolved",
            Kind::Nscd => "nscd",
            Kind::Dnsmasq => "dnsmasq",
            Kind::Unbound => "unbound",
            Kind::Bind => "bind",
        }
    }

    /// Whether the cache can drop single names (else only the whole cache).
    pub fn flushes_names(self) -> bool {
        matches!(self, Kind::Unbound | Kind::Bind)
    }
}

impl Scope {
    /// The scope for `names` from a user: everything when empty, else each
    /// name checked and made absolute and lowercase.
    pub fn from_names(names: &[String], tree: bool) -> Result<Scope, FlushError> {
        if names.is_empty() {
            return Ok(Scope::Everything);
        }
        let names = names
            .iter()
            .map(|n| checked_name(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scope::Names { names, tree })
    }

    /// What a cache of `kind` loses under this scope, in words.
    pub fn describe(&self, kind: Kind) -> String {
        match self {
            Scope::Names { names, tree } if kind.flushes_names() => {
                let list = names.join(" ");
                if *tree {
                    format!("{list} and below")
                } else {
                    list
                }
            }
            Scope::Names { .. } => "whole cache (it cannot drop single names)".to_string(),
            Scope::Everything => "whole cache".to_string(),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = FlushError;

    fn from_str(text: &str) -> Result<Kind, FlushError> {
        match text.to_ascii_lowercase().as_str() {
            "systemd-resolved" | "resolved" => Ok(Kind::SystemdResolved),
            "nscd" => Ok(Kind::Nscd),
            "dnsmasq" => Ok(Kind::Dnsmasq),
            "unbound" => Ok(Kind::Unbound),
            "bind" | "named" => Ok(Kind::Bind),
            _ => Err(FlushError::UnknownKind(text.to_string())),
        }
    }
}

impl Report {
    /// True when no cache failed (not running is not a failure).
    pub fn succeeded(&self) -> bool {
        !self
            .caches
            .iter()
            .any(|e| matches!(e.outcome, Outcome::Failed { .. }))
    }
}

/// A host name checked for what the cache tools accept, absolute and
/// lowercase. A leading `-` is refused so no name reads as an option.
fn checked_name(text: &str) -> Result<String, FlushError> {
    let bad = |why| FlushError::BadName {
        name: text.to_string(),
        why,
    };
    let relative = text.strip_suffix('.').unwrap_or(text);
    if relative.is_empty() {
        return Err(bad("empty (give no names to flush everything)"));
    }
    if relative.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    for label in relative.split('.') {
        if label.is_empty() {
            return Err(bad("an empty label"));
        }
        if label.len() > 63 {
            return Err(bad("a label longer than 63 characters"));
        }
        if label.starts_with('-') {
            return Err(bad("a label starts with '-'"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(
                "only letters, digits, '-' and '_' may appear in a label",
            ));
        }
    }
    Ok(format!("{}.", relative.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_absolute_and_checked() {
        let scope = Scope::from_names(
            &["WWW.Example.com".into(), "mail.example.com.".into()],
            false,
        )
        .expect("two good names");
        assert_eq!(
            scope,
            Scope::Names {
                names: vec!["www.example.com.".into(), "mail.example.com.".into()],
                tree: false
            }
        );
        assert_eq!(Scope::from_names(&[], true), Ok(Scope::Everything));
        for bad in ["-rf", "a..b", "a b.com", ".", "x;reboot"] {
            assert!(
                matches!(
                    Scope::from_names(&[bad.to_string()], false),
                    Err(FlushError::BadName { .. })
                ),
                "expected {bad:?} to be refused"
            );
        }
    }

    #[test]
    fn kinds_read_their_names() {
        for kind in Kind::ALL {
            assert_eq!(
                kind.name().parse::<Kind>(),
                Ok(kind),
                "round trip of {kind}"
            );
        }
        assert_eq!("named".parse::<Kind>(), Ok(Kind::Bind));
        assert!(matches!(
            "pdns".parse::<Kind>(),
            Err(FlushError::UnknownKind(_))
        ));
    }

    #[test]
    fn scope_says_what_each_cache_loses() {
        let scope = Scope::from_names(&["www.example.com".into()], true).unwrap();
        assert_eq!(scope.describe(Kind::Unbound), "www.example.com. and below");
        assert_eq!(
            scope.describe(Kind::Dnsmasq),
            "whole cache (it cannot drop single names)"
        );
        assert_eq!(Scope::Everything.describe(Kind::Bind), "whole cache");
    }
}
