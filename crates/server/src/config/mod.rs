//! The configuration file: where the store lives, how the nameserver
//! listens, and per-zone policy (the zones' data lives in the store).
//!
//! Every key is known: an unknown or misspelt key is an error naming the file,
//! line and column, never silently ignored. The file carries a `version`
//! (1 when absent) so later formats can be told apart.

pub mod agents;
pub mod duration;
pub mod http;
pub mod mail;
#[cfg(test)]
mod reference;
pub mod relay;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use cutover_nameserver::rrl::{Prefix, RrlConfig};
pub use cutover_nameserver::update::{NamePattern, Prefix as UpdatePrefix};
use cutover_zone::{Name, RecordType};
use serde::{de, Deserialize, Deserializer};

use self::duration::DurationText;
pub use self::duration::{duration, MAX_DURATION};

/// The only config format version this cutover reads.
pub const VERSION: u32 = 1;

/// `message` prefixed with the line and column of byte `offset` of `text`.
fn at_offset(text: &str, offset: usize, message: &str) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}: {message}")
}

/// Where the config is looked for when `--config` is not given, in order.
pub const DEFAULT_PATHS: &[&str] = &["./cutover.toml", "/etc/cutover/cutover.toml"];

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file this was read from (not a key of the file).
    #[serde(skip)]
    pub source: PathBuf,
    /// Format version of the file.
    #[serde(default = "default_version")]
    pub version: u32,
    /// The SQLite store file.
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// The nameserver.
    #[serde(default)]
    pub dns: Dns,
    /// Per-zone policy.
    #[serde(default)]
    pub zone: Vec<ZonePolicy>,
    /// TSIG keys, as BIND and Knot write them (name, algorithm, base64 secret).
    #[serde(default)]
    pub key: Vec<cutover_nameserver::tsig::KeyConfig>,
    /// The mail relay (backup MX); not run when the section is absent.
    #[serde(default)]
    pub mail: Option<mail::MailConfig>,
    /// Caches `cutover flush` empties besides those found on this machine.
    #[serde(default)]
    pub flush: cutover_flush::Settings,
    /// The control plane (HTTP API, dashboard, /metrics); off when absent.
    #[serde(default)]
    pub http: Option<http::HttpConfig>,
    /// `[[notify]]`, as written: told of every migration the scheduler
    /// runs (typed into [`Config::notify_targets`] when read).
    #[serde(default)]
    pub notify: Vec<toml::Spanned<cutover_migrate::file::RawNotify>>,
    /// The `[[notify]]` tables, typed (not a key of the file).
    #[serde(skip)]
    pub notify_targets: Vec<cutover_migrate::notify::Target>,
    /// `[[relay]]`: the other cutover relays of the migrated domains,
    /// steered by the migration's mail steps through their control planes.
    #[serde(default)]
    pub relay: Vec<relay::RelayPeer>,
    /// How the control plane treats `cutover agent`s (offline, leases, waits).
    #[serde(default)]
    pub agents: agents::AgentsConfig,
}

/// The `[dns]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// Addresses to serve on (UDP and TCP each).
    #[serde(default = "default_listen", deserialize_with = "dns_listen")]
    pub listen: Vec<SocketAddr>,
    /// UDP worker threads per address; 0 means one per core.
    #[serde(default, deserialize_with = "dns_udp_workers")]
    pub udp_workers: usize,
    /// How long an idle TCP connection is kept, e.g. "10s".
    #[serde(
        default = "default_tcp_idle_timeout",
        deserialize_with = "dns_tcp_idle_timeout"
    )]
    pub tcp_idle_timeout: Duration,
    /// TCP connections at once over all addresses: the DNS listener's
    /// budget of file descriptors.
    #[serde(
        default = "default_tcp_max_connections",
        deserialize_with = "dns_tcp_max_connections"
    )]
    pub tcp_max_connections: usize,
    /// TCP connections at once from one client (an IPv4 address or an
    /// IPv6 /64); more than `tcp_max_connections` counts as that.
    #[serde(
        default = "default_tcp_max_connections_per_client",
        deserialize_with = "dns_tcp_max_connections_per_client"
    )]
    pub tcp_max_connections_per_client: usize,
    /// While three quarters of `tcp_max_connections` are in use, a TCP
    /// connection idle this long is closed, e.g. "1s"; longer than
    /// `tcp_idle_timeout` counts as that.
    #[serde(
        default = "default_tcp_pressure_idle_timeout",
        deserialize_with = "dns_tcp_pressure_idle_timeout"
    )]
    pub tcp_pressure_idle_timeout: Duration,
    /// Response rate limiting of UDP answers; off when the section is absent.
    #[serde(default)]
    pub rrl: Option<Rrl>,
    /// The most records (prerequisites plus changes) one UPDATE may hold;
    /// more is REFUSED.
    #[serde(
        default = "default_max_update_records",
        deserialize_with = "dns_max_update_records"
    )]
    pub max_update_records: usize,
    /// The most records an RRset may hold after an UPDATE; more is REFUSED.
    #[serde(
        default = "default_max_rrset_records",
        deserialize_with = "dns_max_rrset_records"
    )]
    pub max_rrset_records: usize,
}

/// The `[dns.rrl]` section: response rate limiting as in BIND and Knot.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rrl {
    /// Identical responses per second to one client prefix.
    #[serde(default = "default_rrl_rate", deserialize_with = "rrl_rate")]
    pub responses_per_second: u32,
    /// How long a flood is remembered, e.g. "15s".
    #[serde(default = "default_rrl_window", deserialize_with = "rrl_window")]
    pub window: Duration,
    /// Every Nth limited response is sent truncated (TC=1); 0 never, 1 always.
    #[serde(default = "default_rrl_slip", deserialize_with = "rrl_slip")]
    pub slip: u32,
    /// Bits of an IPv4 client address that make its prefix.
    #[serde(default = "default_rrl_ipv4_prefix")]
    pub ipv4_prefix: u8,
    /// Bits of an IPv6 client address that make its prefix.
    #[serde(default = "default_rrl_ipv6_prefix")]
    pub ipv6_prefix: u8,
    /// Client prefixes never limited, e.g. ["127.0.0.0/8"].
    #[serde(default, deserialize_with = "prefixes")]
    pub exempt: Vec<Prefix>,
    /// Entries in the limiter's table (fixed memory, about 32 bytes each).
    #[serde(
        default = "default_rrl_table_size",
        deserialize_with = "rrl_table_size"
    )]
    pub table_size: usize,
}

/// One `[[zone]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZonePolicy {
    /// The zone's apex.
    #[serde(deserialize_with = "domain_name")]
    pub name: Name,
    /// TSIG keys (names of `[[key]]`s) that may change anything in the
    /// zone by RFC 2136 UPDATE, e.g. `["ops."]`.
    #[serde(default, deserialize_with = "domain_names")]
    pub update_keys: Vec<Name>,
    /// Finer UPDATE grants: a key, the names and the types it may change.
    #[serde(default)]
    pub update_rule: Vec<UpdateRule>,
    /// Client prefixes whose unsigned UPDATEs are accepted for the whole
    /// zone, e.g. `["127.0.0.1/32"]`; none by default.
    #[serde(default, deserialize_with = "parsed_list")]
    pub allow_unsigned_update_from: Vec<UpdatePrefix>,
    /// TSIG keys that may transfer the zone (AXFR/IXFR).
    #[serde(default, deserialize_with = "domain_names")]
    pub transfer_keys: Vec<Name>,
    /// Client prefixes that may transfer the zone unsigned.
    #[serde(default, deserialize_with = "parsed_list")]
    pub transfer_from: Vec<UpdatePrefix>,
    /// Secondaries sent a NOTIFY on every change, as "ip:port".
    #[serde(default, deserialize_with = "zone_notify")]
    pub notify: Vec<SocketAddr>,
    /// The key (a `[[key]]` name) NOTIFYs are signed with; unsigned when absent.
    #[serde(default, deserialize_with = "optional_domain_name")]
    pub notify_key: Option<Name>,
    /// The primaries this zone is transferred from, as "ip:port" (one, or a
    /// list tried in order); with one, serve is a secondary of the zone and
    /// the zone cannot be changed here.
    #[serde(default, deserialize_with = "zone_primary")]
    pub primary: Vec<SocketAddr>,
    /// The key (a `[[key]]` name) transfers from the primary are signed
    /// with, and that the primary's NOTIFYs must carry; as written, with
    /// its place in the file (read with [`ZonePolicy::primary_key_name`]).
    #[serde(default)]
    pub primary_key: Option<toml::Spanned<String>>,
    /// The shortest refresh and retry interval, whatever the SOA says (the
    /// SOA's refresh and retry are used above it); 1 s when absent.
    #[serde(default = "default_refresh_min", deserialize_with = "zone_refresh_min")]
    pub refresh_min: Duration,
}

impl ZonePolicy {
    /// Whether serve is a secondary of this zone (it names a primary).
    pub fn is_secondary(&self) -> bool {
        !self.primary.is_empty()
    }

    /// The name of `primary_key`, absolute; `None` when absent (or not a
    /// name, which [`Config::parse`] refuses).
    pub fn primary_key_name(&self) -> Option<Name> {
        self.primary_key
            .as_ref()
            .and_then(|text| absolute::<de::value::Error>(text.get_ref()).ok())
    }
}

/// One `[[zone.update_rule]]`: what one key may change.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRule {
    /// The key's name.
    #[serde(deserialize_with = "domain_name")]
    pub key: Name,
    /// Owner names: exact ("www.example.com.") or everything strictly below
    /// a name ("*.web.example.com.").
    #[serde(deserialize_with = "parsed_list")]
    pub names: Vec<NamePattern>,
    /// Record types ("A", "AAAA", "TXT"…); every type when absent.
    #[serde(default, deserialize_with = "record_types")]
    pub types: Option<Vec<RecordType>>,
}

/// Why the configuration could not be used; always names the file.
#[derive(Debug)]
pub struct ConfigError {
    /// The file (or the places searched).
    pub path: String,
    /// What is wrong, with line and column when the parser gave them.
    pub message: String,
}

impl Default for Dns {
    fn default() -> Dns {
        Dns {
            listen: default_listen(),
            udp_workers: 0,
            tcp_idle_timeout: default_tcp_idle_timeout(),
            tcp_max_connections: default_tcp_max_connections(),
            tcp_max_connections_per_client: default_tcp_max_connections_per_client(),
            tcp_pressure_idle_timeout: default_tcp_pressure_idle_timeout(),
            rrl: None,
            max_update_records: default_max_update_records(),
            max_rrset_records: default_max_rrset_records(),
        }
    }
}

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        config.source = path.to_owned();
        // A [[notify]]'s secret_file is taken from the config's folder.
        if let Some(dir) = path.parent() {
            for target in &mut config.notify_targets {
                target.resolve_paths(dir);
            }
            for relay in &mut config.relay {
                relay.resolve_paths(dir);
            }
        }
        Ok(config)
    }

    /// Checks a config held in memory (the demo's, a test's) as
    /// [`Config::load`] checks a file; `name` stands for the file in
    /// errors, and `source` stays empty: there is no file.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        let error = |message: String| ConfigError {
            path: name.to_owned(),
            message,
        };
        let mut config: Config =
            toml::from_str(text).map_err(|e| error(e.to_string().trim_end().to_string()))?;
        config.notify_targets = config
            .notify
            .iter()
            .map(|raw| {
                cutover_migrate::notify::Target::from_raw(raw, &mut |_, _, _| {})
                    .map_err(|(offset, message)| error(at_offset(text, offset, &message)))
            })
            .collect::<Result<_, _>>()?;
        if config.version != VERSION {
            return Err(error(format!(
                "config version {} is not supported (this cutover reads version {VERSION})",
                config.version
            )));
        }
        relay::validate(&config.relay)
            .map_err(|(offset, message)| error(at_offset(text, offset, &message)))?;
        if let Some(mail) = &config.mail {
            mail.validate(Some(text))
                .map_err(|e| error(format!("[mail]: {e}")))?;
        }
        if let Some(http) = &config.http {
            http.validate().map_err(|e| error(format!("[http]: {e}")))?;
        }
        config
            .agents
            .validate()
            .map_err(|e| error(format!("[agents]: {e}")))?;
        if let Some(rrl) = &config.dns.rrl {
            rrl.to_server()
                .validate()
                .map_err(|e| error(format!("[dns.rrl]: {e}")))?;
        }
        config.check_key_names().map_err(error)?;
        config.check_primaries(text).map_err(error)?;
        config.flush.validate().map_err(|e| error(e.to_string()))?;
        let mut names: Vec<&Name> = config.zone.iter().map(|z| &z.name).collect();
        names.sort();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(error(format!("zone {} is configured twice", pair[0])));
        }
        Ok(config)
    }

    /// Every key a `[[zone]]` names must be a `[[key]]`.
    fn check_key_names(&self) -> Result<(), String> {
        let known = |name: &Name| {
            self.key.iter().any(|key| {
                Name::from_str(&key.name).is_ok_and(|mut k| {
                    k.set_fqdn(true);
                    k == *name
                })
            })
        };
        for zone in &self.zone {
            let named = zone
                .update_keys
                .iter()
                .map(|k| ("update_keys", k))
                .chain(zone.update_rule.iter().map(|r| ("update_rule.key", &r.key)))
                .chain(zone.transfer_keys.iter().map(|k| ("transfer_keys", k)))
                .chain(zone.notify_key.iter().map(|k| ("notify_key", k)));
            for (field, name) in named {
                if !known(name) {
                    return Err(format!(
                        "zone {}: {field} names the key {name}, which no [[key]] defines",
                        zone.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// A `[[zone]]`'s `primary_key` must name a `[[key]]` and needs a
    /// `primary`; the error gives the key's line and column.
    fn check_primaries(&self, text: &str) -> Result<(), String> {
        for zone in &self.zone {
            let Some(written) = &zone.primary_key else {
                continue;
            };
            let at = |message: String| {
                let before = &text[..written.span().start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(
                    "line {line}, column {column}: zone {}: {message}",
                    zone.name
                )
            };
            let name = absolute::<de::value::Error>(written.get_ref())
                .map_err(|e| at(format!("primary_key: {e}")))?;
            if !self.key_defined(&name) {
                return Err(at(format!(
                    "primary_key names the key {name}, which no [[key]] defines"
                )));
            }
            if zone.primary.is_empty() {
                return Err(at(
                    "primary_key is given, but no primary to use it with".into()
                ));
            }
        }
        Ok(())
    }

    /// Whether a `[[key]]` has the name `name`.
    fn key_defined(&self, name: &Name) -> bool {
        self.key.iter().any(|key| {
            Name::from_str(&key.name).is_ok_and(|mut k| {
                k.set_fqdn(true);
                k == *name
            })
        })
    }

    /// The config named by `--config`, else the first of [`DEFAULT_PATHS`]
    /// that exists; `None` when there is none (only allowed without `--config`).
    pub fn find(explicit: Option<&Path>) -> Result<Option<Config>, ConfigError> {
        if let Some(path) = explicit {
            return Config::load(path).map(Some);
        }
        for candidate in DEFAULT_PATHS {
            let path = Path::new(candidate);
            if path.exists() {
                return Config::load(path).map(Some);
            }
        }
        Ok(None)
    }
}

impl Rrl {
    /// The nameserver's form of this section.
    pub fn to_server(&self) -> RrlConfig {
        RrlConfig {
            responses_per_second: self.responses_per_second,
            window: self.window,
            slip: self.slip,
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
            exempt: self.exempt.clone(),
            table_size: self.table_size,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The version assumed when the file has none.
fn default_version() -> u32 {
    VERSION
}

/// The store path when the config names none.
fn default_store() -> PathBuf {
    PathBuf::from("/var/lib/cutover/cutover.db")
}

/// Every address, port 53.
fn default_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([0, 0, 0, 0], 53)),
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 53)),
    ]
}

/// Ten seconds, as Knot and NSD default to.
fn default_tcp_idle_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The TCP connection budget when `[dns]` gives none.
fn default_tcp_max_connections() -> usize {
    1024
}

/// The per-client share of TCP connections when `[dns]` gives none.
fn default_tcp_max_connections_per_client() -> usize {
    32
}

/// The idle time after which TCP connections are closed under pressure.
fn default_tcp_pressure_idle_timeout() -> Duration {
    Duration::from_secs(1)
}

/// The RRL rate when the section gives none.
fn default_rrl_rate() -> u32 {
    RrlConfig::default().responses_per_second
}

/// The RRL window when the section gives none (15 s, as BIND).
fn default_rrl_window() -> Duration {
    RrlConfig::default().window
}

/// The RRL slip ratio when the section gives none (2, as BIND and Knot).
fn default_rrl_slip() -> u32 {
    RrlConfig::default().slip
}

/// The IPv4 prefix length when the section gives none (24).
fn default_rrl_ipv4_prefix() -> u8 {
    RrlConfig::default().ipv4_prefix
}

/// The IPv6 prefix length when the section gives none (56).
fn default_rrl_ipv6_prefix() -> u8 {
    RrlConfig::default().ipv6_prefix
}

/// The RRL table size when the section gives none.
fn default_rrl_table_size() -> usize {
    RrlConfig::default().table_size
}

/// The UPDATE record cap when `[dns]` gives none (BIND's and Knot's range).
fn default_max_update_records() -> usize {
    1000
}

/// The RRset size cap after an UPDATE when `[dns]` gives none.
fn default_max_rrset_records() -> usize {
    500
}

/// Deserializes a whole number that must lie in `min..=max`; the error
/// names the key (`key`: "[section] name") and the range.
fn number_within<'de, D, T>(deserializer: D, key: &str, min: u64, max: u64) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let value = i64::deserialize(deserializer)?;
    let fits = u64::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .and_then(|v| T::try_from(v).ok());
    fits.ok_or_else(|| {
        de::Error::custom(format!(
            "{key} = {value} is out of range: it must be at least {min} and at most {max}"
        ))
    })
}

/// Deserializes a duration that must lie in `min..=max` (text or seconds,
/// as [`duration`]); the error names the key and the range.
fn duration_within<'de, D: Deserializer<'de>>(
    deserializer: D,
    key: &str,
    min: Duration,
    max: Duration,
) -> Result<Duration, D::Error> {
    let text = deserializer.deserialize_any(DurationText)?;
    cutover_zone::duration::duration(&text, min..=max)
        .map_err(|e| de::Error::custom(format!("{key}: {e}")))
}

/// Deserializes a list that may hold at most `max` entries.
fn list_within<'de, D, T>(
    deserializer: D,
    key: &str,
    min: usize,
    max: usize,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let items = Vec::<T>::deserialize(deserializer)?;
    if items.len() < min || items.len() > max {
        return Err(de::Error::custom(format!(
            "{key} lists {} entries: it must list at least {min} and at most {max}",
            items.len()
        )));
    }
    Ok(items)
}

/// Declares a deserializer for one bounded number key.
macro_rules! bounded_number {
    ($name:ident, $type:ty, $key:literal, $min:expr, $max:expr) => {
        #[doc = concat!("Deserializes `", $key, "` within its range.")]
        fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<$type, D::Error> {
            number_within(deserializer, $key, $min, $max)
        }
    };
}

/// Declares a deserializer for one bounded duration key.
macro_rules! bounded_duration {
    ($name:ident, $key:literal, $min:expr, $max:expr) => {
        #[doc = concat!("Deserializes `", $key, "` within its range.")]
        fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
            duration_within(deserializer, $key, $min, $max)
        }
    };
}

/// Declares a deserializer for one list key with a bounded length.
macro_rules! bounded_list {
    ($name:ident, $type:ty, $key:literal, $min:expr, $max:expr) => {
        #[doc = concat!("Deserializes `", $key, "` within its length.")]
        fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<$type>, D::Error> {
            list_within(deserializer, $key, $min, $max)
        }
    };
}

bounded_list!(dns_listen, SocketAddr, "[dns] listen", 1, 64);
bounded_number!(dns_udp_workers, usize, "[dns] udp_workers", 0, 256);
bounded_duration!(
    dns_tcp_idle_timeout,
    "[dns] tcp_idle_timeout",
    Duration::from_millis(100),
    Duration::from_secs(3600)
);
bounded_number!(
    dns_tcp_max_connections,
    usize,
    "[dns] tcp_max_connections",
    1,
    1 << 16
);
bounded_number!(
    dns_tcp_max_connections_per_client,
    usize,
    "[dns] tcp_max_connections_per_client",
    1,
    1 << 16
);
bounded_duration!(
    dns_tcp_pressure_idle_timeout,
    "[dns] tcp_pressure_idle_timeout",
    Duration::from_millis(100),
    Duration::from_secs(3600)
);
bounded_number!(
    dns_max_update_records,
    usize,
    "[dns] max_update_records",
    1,
    65535
);
bounded_number!(
    dns_max_rrset_records,
    usize,
    "[dns] max_rrset_records",
    1,
    65535
);
bounded_number!(
    rrl_rate,
    u32,
    "[dns.rrl] responses_per_second",
    1,
    1_000_000
);
bounded_duration!(
    rrl_window,
    "[dns.rrl] window",
    Duration::from_secs(1),
    cutover_nameserver::rrl::WINDOW_MAX
);
bounded_number!(rrl_slip, u32, "[dns.rrl] slip", 0, 10);
bounded_number!(
    rrl_table_size,
    usize,
    "[dns.rrl] table_size",
    1,
    cutover_nameserver::rrl::TABLE_SIZE_MAX as u64
);
bounded_list!(zone_notify, SocketAddr, "[[zone]] notify", 0, 64);
bounded_duration!(
    zone_refresh_min,
    "[[zone]] refresh_min",
    Duration::from_millis(100),
    Duration::from_secs(86_400)
);

/// The shortest refresh and retry of a secondary zone when none is given.
fn default_refresh_min() -> Duration {
    Duration::from_secs(1)
}

/// Deserializes `[[zone]] primary`: one "ip:port" or a list of them (at
/// most 8).
fn zone_primary<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<SocketAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let texts = match OneOrMany::deserialize(deserializer).map_err(|_| {
        de::Error::custom("[[zone]] primary: expected \"ip:port\" or a list of them")
    })? {
        OneOrMany::One(text) => vec![text],
        OneOrMany::Many(texts) => texts,
    };
    if texts.is_empty() || texts.len() > 8 {
        return Err(de::Error::custom(format!(
            "[[zone]] primary lists {} entries: it must list at least 1 and at most 8",
            texts.len()
        )));
    }
    texts
        .iter()
        .map(|text| {
            text.parse().map_err(|e| {
                de::Error::custom(format!(
                    "[[zone]] primary {text:?}: {e}, expected \"ip:port\""
                ))
            })
        })
        .collect()
}

/// Deserializes a list of address prefixes such as "192.0.2.0/24".
fn prefixes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Prefix>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(|text| text.parse().map_err(de::Error::custom))
        .collect()
}

/// Deserializes a list of values read with `FromStr` (prefixes, name patterns).
fn parsed_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|e| de::Error::custom(format!("{text:?}: {e}")))
        })
        .collect()
}

/// Deserializes a list of absolute domain names.
fn domain_names<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Name>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts.iter().map(|text| absolute(text)).collect()
}

/// Deserializes an optional absolute domain name.
fn optional_domain_name<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Name>, D::Error> {
    let text = String::deserialize(deserializer)?;
    absolute(&text).map(Some)
}

/// Deserializes a list of record type mnemonics.
fn record_types<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<RecordType>>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(
            |text| match RecordType::from_str(&text.to_ascii_uppercase()) {
                Ok(RecordType::Unknown(_)) | Err(_) => {
                    Err(de::Error::custom(format!("unknown record type {text:?}")))
                }
                Ok(rtype) => Ok(rtype),
            },
        )
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// An absolute domain name from text.
fn absolute<E: de::Error>(text: &str) -> Result<Name, E> {
    let mut name = Name::from_str(text)
        .map_err(|e| E::custom(format!("invalid domain name {text:?}: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Deserializes an absolute domain name.
fn domain_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Name, D::Error> {
    let text = String::deserialize(deserializer)?;
    let mut name = Name::from_str(&text)
        .map_err(|e| de::Error::custom(format!("invalid domain name {text:?}: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Config durations are read by `cutover_zone::duration`, as the
    /// migration file's and the command line's are.
    #[test]
    fn durations_take_units_words_or_seconds() {
        for (value, expected) in [
            ("\"10s\"", Duration::from_secs(10)),
            ("\"250ms\"", Duration::from_millis(250)),
            ("\"1h\"", Duration::from_secs(3600)),
            ("\"30 minutes\"", Duration::from_secs(1800)),
            ("\"90\"", Duration::from_secs(90)),
            ("90", Duration::from_secs(90)),
        ] {
            let config = parse(&format!("[dns]\ntcp_idle_timeout = {value}\n"))
                .unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(config.dns.tcp_idle_timeout, expected, "{value}");
        }
        let error = parse("[dns]\ntcp_idle_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2, column 20"), "{error}");
        assert!(
            error.contains(
                "[dns] tcp_idle_timeout: invalid duration \"soon\": expected seconds \
                 or a number with a unit, e.g. 90, 90s, 500ms, 5m, 1h30m, 2 days, 1w"
            ),
            "{error}"
        );
        let error = parse("[dns]\ntcp_idle_timeout = \"2h\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "[dns] tcp_idle_timeout: duration \"2h\" is out of range: expected 100ms to 1h"
            ),
            "{error}"
        );
        let error = parse("[dns]\ntcp_idle_timeout = true\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("a number of seconds"), "{error}");
    }

    /// Parses `text` as a config file.
    fn parse(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cutover.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    #[test]
    fn rrl_section_is_read_with_defaults() {
        let config = parse(
            "[dns.rrl]\nresponses_per_second = 5\nwindow = \"10s\"\nslip = 1\n\
             ipv4_prefix = 32\nipv6_prefix = 64\nexempt = [\"127.0.0.0/8\", \"::1\"]\n",
        )
        .unwrap();
        let rrl = config.dns.rrl.expect("[dns.rrl] given").to_server();
        assert_eq!(
            rrl,
            RrlConfig {
                responses_per_second: 5,
                window: Duration::from_secs(10),
                slip: 1,
                ipv4_prefix: 32,
                ipv6_prefix: 64,
                exempt: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
                table_size: RrlConfig::default().table_size,
            }
        );
        let defaults = parse("[dns.rrl]\n").unwrap().dns.rrl.unwrap().to_server();
        assert_eq!(defaults, RrlConfig::default());
        assert!(
            parse("").unwrap().dns.rrl.is_none(),
            "RRL is off by default"
        );
    }

    #[test]
    fn zone_primary_keys_are_read_and_checked() {
        let config = parse(
            "[dns]\nmax_update_records = 5\n\
             [[key]]\nname = \"ops.\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n\
             [[zone]]\nname = \"example.com.\"\nupdate_keys = [\"ops.\"]\n\
             allow_unsigned_update_from = [\"127.0.0.1/32\"]\ntransfer_keys = [\"ops\"]\n\
             transfer_from = [\"::1\"]\nnotify = [\"127.0.0.1:5300\"]\nnotify_key = \"ops.\"\n\
             [[zone.update_rule]]\nkey = \"ops.\"\nnames = [\"*.web.example.com.\"]\ntypes = [\"a\", \"AAAA\"]\n",
        )
        .unwrap();
        assert_eq!(config.dns.max_update_records, 5);
        assert_eq!(config.dns.max_rrset_records, 500, "default RRset cap");
        let zone = &config.zone[0];
        assert_eq!(zone.update_keys.len(), 1);
        assert_eq!(zone.transfer_keys[0].to_ascii(), "ops.", "made absolute");
        assert_eq!(zone.notify.len(), 1);
        let rule = &zone.update_rule[0];
        assert_eq!(rule.types, Some(vec![RecordType::A, RecordType::AAAA]));
        assert!(matches!(rule.names[0], NamePattern::Below(_)));
        let error =
            parse("[[zone]]\nname = \"example.com.\"\nupdate_keys = [\"nobody.\"]\n").unwrap_err();
        assert!(error.message.contains("nobody."), "{error}");
        let error = parse("[[zone]]\nname = \"a.\"\nupdate_rule = [{ key = \"k.\", names = [\"a.\"], types = [\"BOGUS\"] }]\n")
            .unwrap_err();
        assert!(error.message.contains("BOGUS"), "{error}");
    }

    #[test]
    fn a_secondary_zone_names_its_primaries_and_a_known_key() {
        let keys = "[[key]]\nname = \"xfr.\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n";
        let config = parse(&format!(
            "{keys}[[zone]]\nname = \"a.\"\nprimary = \"192.0.2.1:53\"\nprimary_key = \"xfr\"\n\
             [[zone]]\nname = \"b.\"\nprimary = [\"192.0.2.1:53\", \"[2001:db8::1]:5300\"]\n\
             refresh_min = \"5s\"\n[[zone]]\nname = \"c.\"\n"
        ))
        .unwrap();
        let (a, b, c) = (&config.zone[0], &config.zone[1], &config.zone[2]);
        assert_eq!(a.primary, vec!["192.0.2.1:53".parse().unwrap()]);
        assert_eq!(a.primary_key_name().unwrap().to_ascii(), "xfr.");
        assert_eq!(a.refresh_min, Duration::from_secs(1), "default");
        assert_eq!(b.primary.len(), 2);
        assert_eq!(b.refresh_min, Duration::from_secs(5));
        assert!(a.is_secondary() && b.is_secondary() && !c.is_secondary());

        let error = parse(&format!(
            "{keys}[[zone]]\nname = \"a.\"\nprimary = \"192.0.2.1:53\"\nprimary_key = \"nobody.\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("cutover.toml: line 7, column 15: zone a.: primary_key names the key nobody., which no [[key]] defines"),
            "{error}"
        );
        let error = parse(&format!(
            "{keys}[[zone]]\nname = \"a.\"\nprimary_key = \"xfr.\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("line 6, column 15") && error.contains("no primary"),
            "{error}"
        );
        let error = parse("[[zone]]\nname = \"a.\"\nprimary = \"192.0.2.1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 3") && error.contains("[[zone]] primary \"192.0.2.1\""),
            "{error}"
        );
        let error = parse("[[zone]]\nname = \"a.\"\nprimary = []\n").unwrap_err();
        assert!(error.message.contains("at least 1"), "{error}");
    }

    #[test]
    fn rrl_section_names_bad_values() {
        let error = parse("[dns.rrl]\nexempt = [\"10.0.0.0/40\"]\n").unwrap_err();
        assert!(error.message.contains("10.0.0.0/40"), "{error}");
        let error = parse("[dns.rrl]\nresponses_per_second = 0\n").unwrap_err();
        assert!(error.message.contains("responses_per_second"), "{error}");
        let error = parse("[dns.rrl]\nipv6_prefix = 129\n").unwrap_err();
        assert!(error.message.contains("ipv6_prefix 129"), "{error}");
        let error = parse("[dns.rrl]\nrate = 5\n").unwrap_err();
        assert!(error.message.contains("rate"), "{error}");
    }

    /// Regression: `[dns.rrl] table_size = 1099511627776` aborted `serve`
    /// with "memory allocation of 2199023255552 bytes failed".
    #[test]
    fn a_size_past_its_maximum_is_an_error_naming_file_line_and_key() {
        let error = parse("[dns.rrl]\ntable_size = 1099511627776\n").unwrap_err();
        assert!(error.path.ends_with("cutover.toml"), "{error}");
        for part in [
            "line 2",
            "[dns.rrl] table_size = 1099511627776",
            "at most 16777216",
        ] {
            assert!(
                error.message.contains(part),
                "{part:?} missing from: {error}"
            );
        }
    }

    #[test]
    fn every_bounded_key_refuses_what_is_past_its_range() {
        let cases = [
            ("[dns]\nudp_workers = 100000\n", "[dns] udp_workers"),
            (
                "[dns]\ntcp_idle_timeout = \"2h\"\n",
                "[dns] tcp_idle_timeout",
            ),
            (
                "[dns]\ntcp_idle_timeout = \"0ms\"\n",
                "[dns] tcp_idle_timeout",
            ),
            (
                "[dns]\ntcp_max_connections = 0\n",
                "[dns] tcp_max_connections",
            ),
            (
                "[dns]\ntcp_max_connections = 10000000\n",
                "[dns] tcp_max_connections",
            ),
            (
                "[dns]\ntcp_max_connections_per_client = 0\n",
                "[dns] tcp_max_connections_per_client",
            ),
            (
                "[dns]\ntcp_pressure_idle_timeout = \"2h\"\n",
                "[dns] tcp_pressure_idle_timeout",
            ),
            (
                "[dns]\nmax_update_records = 0\n",
                "[dns] max_update_records",
            ),
            (
                "[dns]\nmax_update_records = 99999999999\n",
                "[dns] max_update_records",
            ),
            ("[dns]\nmax_rrset_records = -1\n", "[dns] max_rrset_records"),
            ("[dns]\nlisten = []\n", "[dns] listen"),
            (
                "[dns.rrl]\nresponses_per_second = 5000000\n",
                "[dns.rrl] responses_per_second",
            ),
            (
                "[dns.rrl]\nwindow = \"99999999999999h\"\n",
                "[dns.rrl] window",
            ),
            ("[dns.rrl]\nslip = 11\n", "[dns.rrl] slip"),
            ("[dns.rrl]\ntable_size = 0\n", "[dns.rrl] table_size"),
            ("[dns.rrl]\nipv4_prefix = 300\n", "ipv4_prefix"),
        ];
        for (text, key) in cases {
            let error = parse(text).expect_err(text);
            assert!(
                error.message.contains(key),
                "{text:?}: expected {key:?} in: {error}"
            );
        }
        let many: Vec<String> = (0..65).map(|i| format!("\"192.0.2.{i}:53\"")).collect();
        let error = parse(&format!(
            "[[zone]]\nname = \"a.\"\nnotify = [{}]\n",
            many.join(", ")
        ))
        .unwrap_err();
        assert!(
            error.message.contains("[[zone]] notify lists 65 entries"),
            "{error}"
        );
        let limits = parse(
            "[dns]\ntcp_max_connections = 65536\ntcp_max_connections_per_client = 65536\n\
             tcp_idle_timeout = \"1h\"\ntcp_pressure_idle_timeout = \"1h\"\n\
             [dns.rrl]\ntable_size = 16777216\nslip = 10\n",
        )
        .expect("the maxima themselves are accepted");
        assert_eq!(limits.dns.tcp_max_connections, 65536);
        let clamped = parse("[dns]\ntcp_max_connections = 10\ntcp_idle_timeout = \"500ms\"\n")
            .expect("companions left at their defaults are clamped by the server, not refused");
        assert_eq!(clamped.dns.tcp_max_connections_per_client, 32);
        assert_eq!(limits.dns.rrl.unwrap().table_size, 16_777_216);
    }

    #[test]
    fn notify_tables_are_typed_and_a_bad_one_names_line_and_column() {
        let config = parse(
            "[[notify]]\nkind = \"webhook\"\nurl = \"https://h.example/x\"\nsecret_env = \"HOOK\"\non = [\"end\"]\n",
        )
        .expect("a webhook");
        assert_eq!(config.notify_targets.len(), 1);
        assert_eq!(config.notify_targets[0].label(), "webhook to h.example");
        let error = parse(
            "\n[[notify]]\nkind = \"email\"\nsmtp = \"relay\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("line 4, column 8: notify.smtp \"relay\": expected \"host:port\""),
            "{error}"
        );
    }
}
