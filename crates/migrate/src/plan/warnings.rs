//! What TTLs cannot fix, found in the zone: delegation and glue whose TTL
//! lives at the parent, new names held back by negative caching, names that
//! lead to a moving address (MX, CNAME, SRV), mail's SPF and PTR for a new
//! address — and the SPF rewrite that address moves offer.

use std::fmt;
use std::net::IpAddr;

use cutover_zone::rdata::Soa;
use cutover_zone::{Name, Rdata, RecordType, Rrset, Zone};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::RrsetChange;
use crate::file::MigrationFile;

/// Something the operator should know before starting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum Warning {
    /// A warning about one zone of a migration of several.
    InZone {
        /// The zone.
        zone: String,
        /// The warning.
        #[schema(value_type = Object)]
        about: Box<Warning>,
    },
    /// The provider cannot list the zone: the plan was made from the
    /// RRsets it read one by one, and the rest of the zone was not looked at.
    PartialRead {
        /// The zone.
        zone: String,
        /// The provider, in words.
        provider: String,
        /// The RRsets asked for (`NAME TYPE`).
        asked: Vec<String>,
        /// How many of them exist.
        found: usize,
    },
    /// A zone of the file in which nothing moves: it is left alone.
    NothingMoves {
        /// The zone.
        zone: String,
    },
    /// The servers keep a higher TTL than asked: waits use the floor.
    TtlFloor {
        /// The file's `ttl.during`.
        requested: u32,
        /// The TTL actually served.
        served: u32,
        /// Where it was seen.
        source: String,
    },
    /// `switch_at` comes before the earliest safe time.
    SwitchTooEarly {
        /// The file's time.
        #[schema(value_type = String, format = DateTime)]
        requested: Timestamp,
        /// The earliest safe time, used instead.
        #[schema(value_type = String, format = DateTime)]
        earliest: Timestamp,
    },
    /// An SPF record names the old address; `spf = true` would move it too.
    SpfOffered {
        /// The owner of the SPF record.
        name: String,
        /// The old address.
        #[schema(value_type = String)]
        from: IpAddr,
        /// The new address.
        #[schema(value_type = String)]
        to: IpAddr,
    },
    /// An explicit move's values are already there.
    AlreadyInPlace {
        /// Owner.
        name: String,
        /// Type.
        rtype: String,
    },
    /// A delegation or glue change: the parent's TTL governs it.
    NsOrGlue {
        /// Owner.
        name: String,
        /// Type.
        rtype: String,
        /// What it is (an NS RRset, the address of a name server …).
        detail: String,
    },
    /// A name that does not exist yet: resolvers that asked for it hold the
    /// NXDOMAIN for up to the negative TTL.
    NegativeCaching {
        /// The new name.
        name: String,
        /// The negative TTL (min of the SOA minimum and the SOA's TTL, RFC 2308).
        seconds: u32,
    },
    /// A record leading to a moving name (MX, CNAME, SRV target).
    LeadsToMovingAddress {
        /// The record's owner.
        name: String,
        /// Its type.
        rtype: String,
        /// The moving name it leads to.
        target: String,
    },
    /// A secret is written in the migration file, and so stored with it.
    InlineSecret {
        /// The key (`provider.api_key`, `key.secret`).
        key: String,
        /// Its line in the file.
        line: usize,
    },
    /// A hazard the operator chose to go on with (`--force`).
    Forced {
        /// What it is, with its place in the file.
        what: String,
    },
    /// A mail server's address moves: SPF and reverse DNS must follow.
    MailAddress {
        /// The MX target that moves.
        target: String,
        /// The new address.
        #[schema(value_type = String)]
        address: IpAddr,
        /// Whether an SPF record in the zone already names the new address.
        spf_covers: bool,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::InZone { zone, about } => write!(f, "{zone}: {about}"),
            Warning::PartialRead { zone, provider, asked, found } => write!(
                f,
                "{zone}: {provider} cannot list the zone, so the plan was made from {} RRsets asked for one by one ({}), {found} of them found; the zone's other records were not looked at (a record elsewhere leading to a moving name is not warned about)",
                asked.len(),
                asked.join(", ")
            ),
            Warning::NothingMoves { zone } => write!(
                f,
                "{zone}: no record in it holds a moving address and no move names it: it is left alone"
            ),
            Warning::TtlFloor { requested, served, source } => write!(
                f,
                "TTL floor: {requested}s was asked for, but {source}; every wait after the switch is computed from {served}s"
            ),
            Warning::SwitchTooEarly { requested, earliest } => write!(
                f,
                "switch_at {requested} is before caches can have dropped the old TTL; the switch is planned at {earliest}"
            ),
            Warning::SpfOffered { name, from, to } => write!(
                f,
                "{name} has an SPF record naming {from}: set `spf = true` on the move to change it to {to} too, or edit it yourself"
            ),
            Warning::AlreadyInPlace { name, rtype } => write!(
                f,
                "{name} {rtype} already holds the values the file gives: only its TTL will change"
            ),
            Warning::NsOrGlue { name, rtype, detail } => write!(
                f,
                "{name} {rtype} is {detail}: resolvers also cache the copy at the parent zone, whose TTL cutover cannot lower; change the registrar's records separately and expect up to the parent's TTL (often 1-2 days)"
            ),
            Warning::NegativeCaching { name, seconds } => write!(
                f,
                "{name} does not exist yet: resolvers that asked for it keep the NXDOMAIN for up to {seconds}s (the SOA minimum) after it appears"
            ),
            Warning::LeadsToMovingAddress { name, rtype, target } => write!(
                f,
                "{name} {rtype} leads to {target}, which moves: what uses {name} moves with it"
            ),
            Warning::InlineSecret { key, line } => write!(
                f,
                "{key} is written in the migration file (line {line}): it is stored with the migration, readable by whoever can read the store (never shown: every answer, event and log redacts it); prefer {}",
                if key == "key.secret" {
                    "the provider's key_file = PATH (a BIND or Knot key file) or secret_env = NAME (an environment variable)"
                } else if key == "provider.token" {
                    "token_file = PATH or token_env = NAME"
                } else {
                    "api_key_file = PATH (a file holding only the key) or api_key_env = NAME (an environment variable)"
                }
            ),
            Warning::Forced { what } => write!(f, "forced: {what}"),
            Warning::MailAddress { target, address, spf_covers } => {
                write!(f, "mail server {target} moves to {address}: set its PTR (reverse DNS) to {target}")?;
                if !*spf_covers {
                    write!(f, " and allow {address} in the domain's SPF record")?;
                }
                write!(f, ", or receivers may refuse its mail")
            }
        }
    }
}

/// Adds the warnings found in the zone about these changes.
pub(super) fn collect(
    file: &MigrationFile,
    zone: &Zone,
    changes: &[RrsetChange],
    soa: &Soa,
    out: &mut Vec<Warning>,
) {
    let negative_ttl = soa.minimum.min(zone.soa_ttl().unwrap_or(soa.minimum));
    let moving: Vec<(Name, &RrsetChange)> = changes
        .iter()
        .filter_map(|c| Name::from_ascii(&c.name).ok().map(|n| (n, c)))
        .collect();
    let moving_address_names: Vec<&Name> = moving
        .iter()
        .filter(|(_, c)| c.rtype == "A" || c.rtype == "AAAA")
        .map(|(n, _)| n)
        .collect();
    // Name servers: every NS target anywhere in the zone.
    let mut ns_targets: Vec<Name> = Vec::new();
    for (_, node) in zone.nodes() {
        if let Some(ns) = node.get(RecordType::NS) {
            ns_targets.extend(ns.rdatas().iter().filter_map(Rdata::target));
        }
    }
    for (name, c) in &moving {
        if c.rtype == "NS" {
            out.push(Warning::NsOrGlue {
                name: c.name.clone(),
                rtype: c.rtype.clone(),
                detail: if *name == file.zone {
                    "the zone's own NS set".into()
                } else {
                    "a delegation".into()
                },
            });
        } else if (c.rtype == "A" || c.rtype == "AAAA") && ns_targets.contains(name) {
            out.push(Warning::NsOrGlue {
                name: c.name.clone(),
                rtype: c.rtype.clone(),
                detail: "the address of a name server (glue at the parent)".into(),
            });
        }
        if zone.node(name).is_none() {
            out.push(Warning::NegativeCaching {
                name: c.name.clone(),
                seconds: negative_ttl,
            });
        }
    }
    // Records leading to moving names, and mail servers among them.
    for (owner, node) in zone.nodes() {
        for (rtype, set) in node.rrsets() {
            if !matches!(rtype, RecordType::MX | RecordType::CNAME | RecordType::SRV) {
                continue;
            }
            for rdata in set.rdatas() {
                let Some(target) = rdata.target() else {
                    continue;
                };
                if !moving_address_names.contains(&&target) {
                    continue;
                }
                out.push(Warning::LeadsToMovingAddress {
                    name: owner.to_string(),
                    rtype: rtype.to_string(),
                    target: target.to_string(),
                });
                if rtype == RecordType::MX {
                    for (name, c) in &moving {
                        if *name != target {
                            continue;
                        }
                        for value in &c.after {
                            let Ok(ip) = value.parse::<IpAddr>() else {
                                continue;
                            };
                            let was_there =
                                c.before.as_ref().is_some_and(|b| b.values.contains(value));
                            if was_there {
                                continue;
                            }
                            out.push(Warning::MailAddress {
                                target: target.to_string(),
                                address: ip,
                                spf_covers: spf_names(zone, owner, ip),
                            });
                        }
                    }
                }
            }
        }
    }
    out.dedup();
}

/// True when an SPF record at `owner` names `ip` in an `ip4:`/`ip6:` term.
fn spf_names(zone: &Zone, owner: &Name, ip: IpAddr) -> bool {
    let Some(set) = zone.get(owner, RecordType::TXT) else {
        return false;
    };
    set.rdatas().iter().any(|r| {
        strings(r).iter().any(|s| {
            let text = String::from_utf8_lossy(s);
            text.starts_with("v=spf1") && text.split_whitespace().any(|t| term_names(t, ip))
        })
    })
}

/// The character-strings of a TXT record.
fn strings(rdata: &Rdata) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut wire = rdata.wire();
    while let Some((&len, rest)) = wire.split_first() {
        let len = usize::from(len);
        if rest.len() < len {
            break;
        }
        out.push(rest[..len].to_vec());
        wire = &rest[len..];
    }
    out
}

/// True when an SPF term is `ip4:ADDR`, `ip6:ADDR` (optionally with a
/// host-sized prefix length) for `ip`, with any qualifier.
fn term_names(term: &str, ip: IpAddr) -> bool {
    let term = term.trim_start_matches(['+', '-', '~', '?']);
    let (mechanism, value) = match term.split_once(':') {
        Some(x) => x,
        None => return false,
    };
    let full = if ip.is_ipv4() { "32" } else { "128" };
    let (addr, prefix) = value.split_once('/').unwrap_or((value, full));
    let family_ok = match ip {
        IpAddr::V4(_) => mechanism.eq_ignore_ascii_case("ip4"),
        IpAddr::V6(_) => mechanism.eq_ignore_ascii_case("ip6"),
    };
    family_ok && prefix == full && addr.parse::<IpAddr>().ok() == Some(ip)
}

/// The RRset with every SPF term naming `from` rewritten to `to`; `None`
/// when no SPF string names `from`.
pub(super) fn spf_rewrite(set: &Rrset, from: IpAddr, to: IpAddr) -> Option<Rrset> {
    let mut changed = false;
    let mut out = Rrset::default();
    out.ttl = set.ttl;
    for rdata in set.rdatas() {
        let parts = strings(rdata);
        let mut wire = Vec::new();
        let mut this_changed = false;
        for s in &parts {
            let text = String::from_utf8_lossy(s).into_owned();
            let rewritten = if text.starts_with("v=spf1") || this_changed || parts.len() > 1 {
                let terms: Vec<String> = text
                    .split(' ')
                    .map(|t| {
                        if term_names(t, from) {
                            this_changed = true;
                            let qualifier: String =
                                t.chars().take_while(|c| "+-~?".contains(*c)).collect();
                            let mech = if to.is_ipv4() { "ip4" } else { "ip6" };
                            format!("{qualifier}{mech}:{to}")
                        } else {
                            t.to_string()
                        }
                    })
                    .collect();
                terms.join(" ")
            } else {
                text
            };
            let bytes = rewritten.into_bytes();
            if bytes.len() > 255 {
                return None;
            }
            wire.push(bytes.len() as u8);
            wire.extend_from_slice(&bytes);
        }
        let spf = parts.first().is_some_and(|s| s.starts_with(b"v=spf1"));
        if this_changed && spf {
            changed = true;
            out.insert(Rdata::from_wire(rdata.rtype(), &wire).ok()?);
        } else {
            out.insert(rdata.clone());
        }
    }
    changed.then_some(out)
}
