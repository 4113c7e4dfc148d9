//! Where a probe through the API may connect. A probe token reaches only
//! what the site itself names; an admin token reaches anything (it could
//! add the record that names a target anyway).
//!
//! ```text
//!  stored zones ──apexes, A/AAAA values, NS/MX/CNAME/SRV targets──┐
//!  stored migrations' files ──zone, addresses, endpoints, hosts───┤
//!  [dns] listen, /etc/resolv.conf ──endpoints─────────────────────┼─▶ Targets ──endpoint(host, port)──▶ Ok │ 403 + reason
//!  [http] probe_allow ──AllowRule (IP, CIDR, name, *.name, :port)─┘          └─domain(name)──────────▶ Ok │ 403 + reason
//! ```
//!
//! A name or address the zones or migrations name is reachable on the
//! service ports only ([`SERVICE_PORTS`]: DNS, SMTP, HTTP(S), IMAP, POP3);
//! an exact `address:port` a migration names (a verify authority, a
//! resolver) on that port; a `probe_allow` entry on its port, or on any
//! port when it gives none. Everything else is refused with the reason.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use cutover_zone::Name;

/// The ports a name or address named by a zone or migration may be probed
/// on: DNS, SMTP (25, 465, 587), HTTP and HTTPS, IMAP (143, 993), POP3 (110, 995).
pub const SERVICE_PORTS: &[u16] = &[53, 25, 80, 110, 143, 443, 465, 587, 993, 995];

/// A host a probe names: an address, or a name resolved by the probe.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP address.
    Ip(IpAddr),
    /// A domain name (absolute, lower case).
    Name(Name),
}

impl Host {
    /// An address, or a name (made absolute and lower case).
    pub fn parse(text: &str) -> Option<Host> {
        let text = text.trim();
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(Host::Ip(ip));
        }
        absolute(text).map(Host::Name)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => write!(f, "{name}"),
        }
    }
}

/// A name from text: absolute and lower case; `None` when it is not one.
fn absolute(text: &str) -> Option<Name> {
    if text.is_empty() || text.contains(['/', ':', '@', ' ', '[', ']']) {
        return None;
    }
    let mut name = Name::from_str(text).ok()?;
    name.set_fqdn(true);
    Some(name.to_lowercase())
}

/// `HOST:PORT`, `IP:PORT` or `[IPv6]:PORT`, as `cutover verify` reads it.
pub fn host_port(text: &str) -> Option<(Host, u16)> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Some((Host::Ip(address.ip()), address.port()));
    }
    let (host, port) = text.rsplit_once(':')?;
    Some((Host::parse(host)?, port.parse().ok()?))
}

/// One `[http] probe_allow` entry: what it names, and on which port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowRule {
    /// The addresses or names.
    what: RuleHost,
    /// The one port, or every port.
    port: Option<u16>,
}

/// What an allow rule names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RuleHost {
    /// Addresses in a prefix (a lone address is a full-length prefix).
    Prefix {
        /// The network address.
        network: IpAddr,
        /// Its length in bits.
        bits: u8,
    },
    /// A name, or (`*.name`) every name under it.
    Name {
        /// The name.
        name: Name,
        /// True for the names under it (not itself).
        below: bool,
    },
}

impl FromStr for AllowRule {
    type Err = String;

    /// `192.0.2.7`, `192.0.2.0/24`, `2001:db8::/32`, `[2001:db8::1]:8443`,
    /// `mail.example.net`, `*.example.net`, each with an optional `:PORT`
    /// (an IPv6 address in brackets when it has one).
    fn from_str(text: &str) -> Result<AllowRule, String> {
        let bad = |why: &str| {
            format!(
                "probe_allow entry {text:?}: {why} (expected an IP, a CIDR prefix, a name or \
                 *.name, with an optional :PORT; [IPv6]:PORT)"
            )
        };
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(|| bad("no ']'"))?;
            match after {
                "" => (inside, None),
                _ => (
                    inside,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or_else(|| bad("expected :PORT after ']'"))?,
                    ),
                ),
            }
        } else if text.matches(':').count() > 1 {
            (text, None)
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let port = match port {
            Some(port) => Some(
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad("the port is not 1 to 65535"))?,
            ),
            None => None,
        };
        let what = if let Some((network, bits)) = host.split_once('/') {
            let network: IpAddr = network.parse().map_err(|_| bad("not an IP prefix"))?;
            let most = if network.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits
                .parse()
                .ok()
                .filter(|b| *b <= most)
                .ok_or_else(|| bad("the prefix length is out of range"))?;
            RuleHost::Prefix { network, bits }
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            RuleHost::Prefix { network: ip, bits }
        } else if let Some(parent) = host.strip_prefix("*.") {
            RuleHost::Name {
                name: absolute(parent).ok_or_else(|| bad("not a name"))?,
                below: true,
            }
        } else {
            RuleHost::Name {
                name: absolute(host).ok_or_else(|| bad("not a name"))?,
                below: false,
            }
        };
        Ok(AllowRule { what, port })
    }
}

impl AllowRule {
    /// True when the rule lets a probe reach `host` on `port`.
    fn allows(&self, host: &Host, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && self.names(host)
    }

    /// True when the rule names `host` (whatever the port).
    fn names(&self, host: &Host) -> bool {
        match (&self.what, host) {
            (RuleHost::Prefix { network, bits }, Host::Ip(ip)) => in_prefix(*ip, *network, *bits),
            (RuleHost::Name { name, below }, Host::Name(asked)) => {
                name.zone_of(asked) && (!*below || name != asked)
            }
            _ => false,
        }
    }
}

/// True when `ip` is in `network/bits`.
fn in_prefix(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    let mask = |width: u32| -> u128 {
        match u32::from(bits) {
            0 => 0,
            b => u128::MAX << (width - b.min(width)),
        }
    };
    match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = mask(32) as u32;
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = mask(128);
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

/// What the site names, plus the admin's rules: the targets a probe token may reach.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    /// Zone apexes (stored zones, migrations' zones): names at or under them.
    zones: Vec<Name>,
    /// Names the zones and migrations point at (NS, MX, CNAME, SRV targets, check hosts).
    names: HashSet<Name>,
    /// Addresses the zones and migrations name (A/AAAA values, moves, pins).
    addresses: HashSet<IpAddr>,
    /// Exact endpoints: verify authorities and resolvers, provider servers,
    /// this server's own DNS listeners, the system's resolvers.
    endpoints: HashSet<(Host, u16)>,
    /// `[http] probe_allow`.
    rules: Vec<AllowRule>,
}

impl Targets {
    /// No targets but the admin's rules.
    pub fn with_rules(rules: Vec<AllowRule>) -> Targets {
        Targets {
            rules,
            ..Targets::default()
        }
    }

    /// Adds a zone apex: every name at or under it is named.
    pub fn add_zone(&mut self, apex: &Name) {
        let apex = apex.to_lowercase();
        if !self.zones.contains(&apex) {
            self.zones.push(apex);
        }
    }

    /// Adds a name a zone or migration points at.
    pub fn add_name(&mut self, name: &Name) {
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        self.names.insert(name);
    }

    /// Adds an address a zone or migration names.
    pub fn add_address(&mut self, ip: IpAddr) {
        self.addresses.insert(ip);
    }

    /// Adds a host (address or name) a migration names.
    pub fn add_host(&mut self, host: &Host) {
        match host {
            Host::Ip(ip) => self.add_address(*ip),
            Host::Name(name) => self.add_name(name),
        }
    }

    /// Adds an exact endpoint.
    pub fn add_endpoint(&mut self, host: Host, port: u16) {
        self.endpoints.insert((host, port));
    }

    /// True when a zone or migration names `host` (any port).
    fn named(&self, host: &Host) -> bool {
        match host {
            Host::Ip(ip) => self.addresses.contains(ip),
            Host::Name(name) => {
                let name = name.to_lowercase();
                self.names.contains(&name) || self.zones.iter().any(|apex| apex.zone_of(&name))
            }
        }
    }

    /// May a probe connect to `host` on `port`? `Err` holds the reason.
    pub fn endpoint(&self, host: &Host, port: u16) -> Result<(), String> {
        let allowed = (self.named(host) && SERVICE_PORTS.contains(&port))
            || self.endpoints.contains(&(host.clone(), port))
            || self.rules.iter().any(|rule| rule.allows(host, port));
        if allowed {
            return Ok(());
        }
        let shown = match host {
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            other => format!("{other}:{port}"),
        };
        let why = if self.named(host) {
            format!(
                "{host} is named by a zone or migration, but only its service ports ({}) may be probed",
                ports_text()
            )
        } else {
            format!("{host} is named by no stored zone or migration")
        };
        Err(format!(
            "{shown} is not a target this token may probe: {why}, nor by `[http] probe_allow` \
             (an admin may add it there, or probe with an admin token)"
        ))
    }

    /// May a probe ask about the domain `name` (find its servers, read its
    /// mail records)? `Err` holds the reason.
    pub fn domain(&self, name: &Name) -> Result<(), String> {
        let host = Host::Name(name.to_lowercase());
        if self.named(&host) || self.rules.iter().any(|rule| rule.names(&host)) {
            return Ok(());
        }
        Err(format!(
            "{name} is not a domain this token may probe: it is in no stored zone or migration, \
             nor in `[http] probe_allow` (an admin may add it there, or probe with an admin token)"
        ))
    }
}

/// The service ports, as text.
fn ports_text() -> String {
    SERVICE_PORTS
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host from text.
    fn host(text: &str) -> Host {
        Host::parse(text).expect("a host")
    }

    /// A site: one zone with a mail host outside it, one migration endpoint, two rules.
    fn site() -> Targets {
        let mut targets = Targets::with_rules(vec![
            "203.0.113.0/24:8443".parse().expect("a prefix rule"),
            "*.lab.example.net".parse().expect("a name rule"),
        ]);
        targets.add_zone(&Name::from_str("Example.com.").unwrap());
        targets.add_name(&Name::from_str("mx.provider.net.").unwrap());
        targets.add_address("192.0.2.10".parse().unwrap());
        targets.add_endpoint(host("127.0.0.1"), 5353);
        targets
    }

    #[test]
    fn named_hosts_are_reachable_on_service_ports_only() {
        let targets = site();
        for (what, port) in [
            ("192.0.2.10", 443),
            ("www.example.com", 80),
            ("EXAMPLE.com.", 53),
            ("mx.provider.net", 25),
            ("127.0.0.1", 5353),
            ("203.0.113.9", 8443),
            ("db.lab.example.net", 5432),
        ] {
            assert_eq!(
                targets.endpoint(&host(what), port),
                Ok(()),
                "expected {what}:{port} allowed"
            );
        }
        for (what, port, reason) in [
            ("192.0.2.10", 6379, "only its service ports"),
            ("10.0.0.5", 80, "named by no stored zone"),
            ("127.0.0.1", 53, "named by no stored zone"),
            ("203.0.113.9", 443, "named by no stored zone"),
            ("lab.example.net", 80, "named by no stored zone"),
            ("example.org", 443, "named by no stored zone"),
        ] {
            let refused = targets.endpoint(&host(what), port);
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.contains(reason) && e.contains("probe_allow")),
                "expected {what}:{port} refused with {reason:?}, seen {refused:?}"
            );
        }
    }

    #[test]
    fn domains_are_the_zones_and_what_they_name() {
        let targets = site();
        for name in [
            "example.com.",
            "a.b.example.com.",
            "mx.provider.net.",
            "x.lab.example.net.",
        ] {
            assert_eq!(
                targets.domain(&Name::from_str(name).unwrap()),
                Ok(()),
                "expected {name} allowed"
            );
        }
        for name in ["com.", "provider.net.", "evil.test."] {
            assert!(
                targets.domain(&Name::from_str(name).unwrap()).is_err(),
                "expected {name} refused"
            );
        }
    }

    #[test]
    fn allow_rules_parse_or_name_their_fault() {
        for (text, host_text, port, allowed) in [
            ("192.0.2.7", "192.0.2.7", 1, true),
            ("192.0.2.7:25", "192.0.2.7", 26, false),
            ("10.0.0.0/8", "10.200.0.1", 6379, true),
            ("2001:db8::/32", "2001:db8:1::1", 80, true),
            ("[2001:db8::1]:8443", "2001:db8::1", 8443, true),
            ("[2001:db8::1]:8443", "2001:db8::2", 8443, false),
            ("mail.example.net:587", "mail.example.net", 587, true),
            ("*.example.net", "example.net", 80, false),
            ("0.0.0.0/0", "198.51.100.1", 22, true),
        ] {
            let rule: AllowRule = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                rule.allows(&host(host_text), port),
                allowed,
                "{text} against {host_text}:{port}"
            );
        }
        for text in [
            "",
            "192.0.2.0/33",
            "host:0",
            "host:99999",
            "[::1",
            "a b",
            "1.2.3.4/x",
        ] {
            let refused = text.parse::<AllowRule>();
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.contains("probe_allow entry")),
                "expected {text:?} refused with its name, seen {refused:?}"
            );
        }
    }

    #[test]
    fn host_port_reads_what_verify_reads() {
        assert_eq!(
            host_port("[2001:db8::1]:25"),
            Some((host("2001:db8::1"), 25)),
            "expected a bracketed IPv6 address"
        );
        assert_eq!(
            host_port("Mail.Example.com:587"),
            Some((host("mail.example.com."), 587)),
            "expected a lower-case absolute name"
        );
        assert_eq!(
            host_port("mail.example.com"),
            None,
            "expected no port refused"
        );
    }
}
