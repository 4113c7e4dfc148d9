//! The `[http]` section of the config: where the control plane listens, and
//! the bounds that keep it answering under attack (connections, timeouts,
//! probe work, probe targets, the files a migration sent through the API
//! may name). Every bound has a default and a most.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer};

use crate::targets::AllowRule;

/// The `[http]` section of the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where the API, dashboard and /metrics listen, e.g. "127.0.0.1:8053".
    pub listen: SocketAddr,
    /// The certificate chain (PEM) for HTTPS; plain HTTP without it.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); required with `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Connections open at once (this listener's share of the process's
    /// file descriptors). At the cap, a new connection takes the place of
    /// the one idle longest (no request in progress); when every one is
    /// busy it is refused, and the refusals are logged once per 10 s.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (from the
    /// connection, or from the previous answer), and its TLS handshake;
    /// then the connection is closed (nginx's `client_header_timeout`).
    #[serde(
        default = "default_header_timeout",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body; then 408.
    #[serde(
        default = "default_body_timeout",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub body_timeout: Duration,
    /// Probes (check, verify, plan, start, propagation) running at once,
    /// from every token but admin ones; more get 429.
    #[serde(default = "default_max_probes")]
    pub max_probes: usize,
    /// Probes running at once for one token; more get 429.
    #[serde(default = "default_max_probes_per_token")]
    pub max_probes_per_token: usize,
    /// The longest a probe may run; then it is stopped (504). A caller's
    /// `timeout` above it is refused (400).
    #[serde(
        default = "default_probe_timeout",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub probe_timeout: Duration,
    /// Targets a probe token may reach besides what the stored zones and
    /// migrations name: IPs, CIDR prefixes, names, `*.name`, each with an
    /// optional `:PORT` (`[IPv6]:PORT`).
    #[serde(default, deserialize_with = "allow_rules")]
    pub probe_allow: Vec<AllowRule>,
    /// The one directory whose files (`key_file`, `token_file`) a migration
    /// file sent through the API may name, by absolute path; none when unset.
    #[serde(default)]
    pub migration_dir: Option<PathBuf>,
}

/// The most `max_connections` may be.
pub const MAX_CONNECTIONS: usize = 65_536;
/// The most `max_probes` may be.
pub const MAX_PROBES: usize = 1024;
/// The longest `header_timeout`, `body_timeout` and `probe_timeout` may be.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// The shortest they may be.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);

/// 256 connections.
fn default_max_connections() -> usize {
    256
}

/// Ten seconds for the headers.
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Ten seconds for the body.
fn default_body_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Eight probes at once.
fn default_max_probes() -> usize {
    8
}

/// Two probes at once per token.
fn default_max_probes_per_token() -> usize {
    2
}

/// Thirty seconds a probe.
fn default_probe_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Deserializes the `probe_allow` list.
fn allow_rules<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<AllowRule>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(|text| text.parse().map_err(de::Error::custom))
        .collect()
}

impl HttpConfig {
    /// Checks the bounds serde cannot: each in its range.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(format!(
                "max_connections = {}: expected 1 to {MAX_CONNECTIONS}",
                self.max_connections
            ));
        }
        if !(1..=MAX_PROBES).contains(&self.max_probes) {
            return Err(format!(
                "max_probes = {}: expected 1 to {MAX_PROBES}",
                self.max_probes
            ));
        }
        if !(1..=self.max_probes).contains(&self.max_probes_per_token) {
            return Err(format!(
                "max_probes_per_token = {}: expected 1 to max_probes ({})",
                self.max_probes_per_token, self.max_probes
            ));
        }
        for (key, value) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("probe_timeout", self.probe_timeout),
        ] {
            if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&value) {
                let words = cutover_zone::duration::words;
                return Err(format!(
                    "{key} = {}: expected {} to {}",
                    words(value),
                    words(MIN_TIMEOUT),
                    words(MAX_TIMEOUT)
                ));
            }
        }
        if let Some(dir) = &self.migration_dir {
            if !dir.is_absolute() {
                return Err(format!(
                    "migration_dir = {:?}: expected an absolute path",
                    dir.display()
                ));
            }
        }
        Ok(())
    }

    /// A config with every default, listening on `listen` (tests).
    #[cfg(test)]
    pub fn on(listen: SocketAddr) -> HttpConfig {
        HttpConfig {
            listen,
            tls_cert: None,
            tls_key: None,
            max_connections: default_max_connections(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            max_probes: default_max_probes(),
            max_probes_per_token: default_max_probes_per_token(),
            probe_timeout: default_probe_timeout(),
            probe_allow: Vec::new(),
            migration_dir: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_out_of_range_are_refused_by_name() {
        let good = HttpConfig::on(SocketAddr::from(([127, 0, 0, 1], 8053)));
        assert_eq!(good.validate(), Ok(()), "expected the defaults valid");
        let cases: Vec<(HttpConfig, &str)> = vec![
            (
                HttpConfig {
                    max_connections: 0,
                    ..good.clone()
                },
                "max_connections",
            ),
            (
                HttpConfig {
                    max_probes: 5000,
                    ..good.clone()
                },
                "max_probes",
            ),
            (
                HttpConfig {
                    max_probes_per_token: 9,
                    ..good.clone()
                },
                "max_probes_per_token",
            ),
            (
                HttpConfig {
                    header_timeout: Duration::from_secs(3600),
                    ..good.clone()
                },
                "header_timeout",
            ),
            (
                HttpConfig {
                    body_timeout: Duration::ZERO,
                    ..good.clone()
                },
                "body_timeout",
            ),
            (
                HttpConfig {
                    migration_dir: Some("keys".into()),
                    ..good.clone()
                },
                "migration_dir",
            ),
        ];
        for (config, key) in cases {
            let refused = config.validate();
            assert!(
                refused.as_ref().is_err_and(|e| e.starts_with(key)),
                "expected {key} refused by name, seen {refused:?}"
            );
        }
    }

    /// `[http]` timeouts are read as every duration of cutover is
    /// (`cutover_zone::duration`): units, words or seconds.
    #[test]
    fn timeouts_take_units_words_or_seconds() {
        let listen = "listen = \"127.0.0.1:8053\"\n";
        let config: HttpConfig = toml::from_str(&format!(
            "{listen}header_timeout = \"1m 30s\"\nbody_timeout = 5\nprobe_timeout = \"1h\"\n"
        ))
        .expect("durations in three forms");
        assert_eq!(config.header_timeout, Duration::from_secs(90));
        assert_eq!(config.body_timeout, Duration::from_secs(5));
        assert_eq!(config.probe_timeout, Duration::from_secs(3600));
        assert_eq!(
            config.validate(),
            Err("probe_timeout = 1h: expected 100ms to 10m".to_owned())
        );
        let error = toml::from_str::<HttpConfig>(&format!("{listen}body_timeout = \"soon\"\n"))
            .unwrap_err()
            .to_string();
        for fragment in [
            "line 2",
            "body_timeout = \"soon\"",
            "invalid duration \"soon\": expected seconds or a number with a unit",
        ] {
            assert!(error.contains(fragment), "expected {fragment:?} in {error}");
        }
    }
}
