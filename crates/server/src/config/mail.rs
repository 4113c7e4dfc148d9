//! The `[mail]` section of the config: the backup-MX relay, checked when
//! the config loads and turned into the relay's own config
//! (`MailConfig::relay_config`; `crate::relay` runs it).
//!
//! ```toml
//! [mail]
//! listen = ["0.0.0.0:25"]
//! hostname = "mx2.example.com"
//! spool = "/var/lib/cutover/mail"
//! max_connections = 1000            # sessions in all; past 3/4 of it: stress mode
//! postmaster = "postmaster@example.com"   # where RCPT TO:<postmaster> goes
//! [mail.tls]                      # STARTTLS offered when present; reloaded when the files change
//! cert = "/etc/cutover/mx.pem"
//! key = "/etc/cutover/mx.key"
//! [[mail.domain]]
//! name = "example.com"
//! destination = "mail-old.example.com:25"
//! recipients = ["alice@example.com", "bob"]   # or ["@example.com"] for any, or:
//! # verify = "destination"                    # ask the destination at RCPT time
//! tls_required = false                        # STARTTLS required when delivering there
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cutover_mail::address::{parse_forward_path, Mailbox};
use cutover_mail::server::tls_from_pem;
use cutover_mail::{Destination, Policy, RelayConfig, RelayDomain, Schedule};
use serde::Deserialize;
use toml::Spanned;

/// The `[mail]` section: the backup-MX relay.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// Addresses the relay listens on for SMTP.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// The relay's host name (greeting, EHLO, Received, loop guard).
    pub hostname: String,
    /// The spool directory (messages, statuses, controls, control socket).
    #[serde(default = "default_spool")]
    pub spool: PathBuf,
    /// The STARTTLS certificate and key; no STARTTLS when absent.
    #[serde(default)]
    pub tls: Option<MailTls>,
    /// The relayed domains.
    #[serde(default)]
    pub domain: Vec<MailDomain>,
    /// Largest message accepted, in octets (advertised with SIZE).
    #[serde(default = "default_max_message_size")]
    pub max_message_size: usize,
    /// Most recipients in one transaction (more get 452).
    #[serde(default = "default_max_recipients")]
    pub max_recipients: usize,
    /// Most simultaneous connections from one client address (more get 421).
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Most simultaneous sessions in all (more get 421); past three
    /// quarters of it the relay is under stress.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The command and data timeout under stress, e.g. "10s" (Postfix's).
    #[serde(
        default = "default_stress_timeout",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub stress_timeout: Duration,
    /// Where `RCPT TO:<postmaster>` goes: a mailbox of a relayed domain
    /// (default: postmaster@ the first `[[mail.domain]]`).
    #[serde(default)]
    pub postmaster: Option<String>,
    /// The most recipients the destinations accepted that are remembered
    /// (`verify = "destination"`); refused ones: a tenth of it.
    #[serde(default = "default_verify_cache_size")]
    pub verify_cache_size: usize,
    /// How long a recipient the destination accepted is remembered, e.g. "31d".
    #[serde(
        default = "default_verify_positive_ttl",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub verify_positive_ttl: Duration,
    /// How long a recipient the destination refused is remembered, e.g. "10m".
    #[serde(
        default = "default_verify_negative_ttl",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub verify_negative_ttl: Duration,
    /// Longest wait for a command, e.g. "5m" (RFC 5321 §4.5.3.2).
    #[serde(
        default = "default_command_timeout",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub command_timeout: Duration,
    /// Longest wait for more message data, e.g. "10m".
    #[serde(
        default = "default_data_timeout",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub data_timeout: Duration,
    /// How long a message is retried before it bounces, e.g. "5d".
    #[serde(
        default = "default_queue_lifetime",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub queue_lifetime: Duration,
    /// Age after which the sender gets one delay warning, e.g. "4h".
    #[serde(
        default = "default_delay_warning",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub delay_warning: Duration,
    /// The wait after the first failed attempt (doubling from there), e.g. "1m".
    #[serde(
        default = "default_first_retry",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub first_retry: Duration,
    /// The longest wait between attempts, e.g. "1h".
    #[serde(
        default = "default_max_retry",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub max_retry: Duration,
    /// Longest wait to connect to a destination, e.g. "30s".
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub connect_timeout: Duration,
}

/// `[mail.tls]`: the STARTTLS certificate chain and key, PEM files.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailTls {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// One `[[mail.domain]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailDomain {
    /// The domain relayed, as written (with its place in the file).
    pub name: Spanned<String>,
    /// Where its mail goes: "host", "host:port" or "[v6]:port".
    pub destination: String,
    /// Its recipients: "user@domain", "user", or "@domain" for any.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// "destination": recipients not listed are asked of the destination.
    #[serde(default)]
    pub verify: Option<String>,
    /// STARTTLS is required when delivering to the destination.
    #[serde(default)]
    pub tls_required: bool,
}

/// The most sessions `max_connections` may allow (each holds a file descriptor).
const MAX_CONNECTIONS: usize = 65_536;

/// The most recipients `verify_cache_size` may remember.
const MAX_VERIFY_CACHE: usize = 10_000_000;

impl MailDomain {
    /// The domain as the relay keys it: lower case, no final dot.
    pub fn domain(&self) -> String {
        normalize(self.name.get_ref())
    }
}

impl MailConfig {
    /// Checks what serde cannot: destinations, recipient lists, duplicates
    /// (named with their line and column when `source`, the file's text, is
    /// given), limits and the postmaster.
    pub fn validate(&self, source: Option<&str>) -> Result<(), String> {
        if self.listen.is_empty() {
            return Err("listen: at least one address is needed".into());
        }
        for (index, address) in self.listen.iter().enumerate() {
            if self.listen[..index].contains(address) {
                return Err(format!("listen: {address} is listed twice"));
            }
        }
        if self.hostname.trim().is_empty() {
            return Err("hostname must not be empty".into());
        }
        let mut seen: BTreeMap<String, &MailDomain> = BTreeMap::new();
        for domain in &self.domain {
            let name = domain.domain();
            if let Some(first) = seen.get(&name) {
                return Err(format!(
                    "[[mail.domain]] name = {:?}{} is the same domain as name = {:?}{} \
                     (names are compared without case and final dot): list each domain once",
                    domain.name.get_ref(),
                    place(source, &domain.name),
                    first.name.get_ref(),
                    place(source, &first.name),
                ));
            }
            seen.insert(name.clone(), domain);
            self.relay_domain(domain)?;
            domain
                .destination
                .parse::<Destination>()
                .map_err(|error| format!("domain {name}: {error}"))?;
        }
        let within = |key: &str, value: usize, low: usize, high: usize| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(format!("{key} = {value}: expected {low} to {high}"))
            }
        };
        within("max_connections", self.max_connections, 1, MAX_CONNECTIONS)?;
        within("max_message_size", self.max_message_size, 1024, 1 << 30)?;
        within(
            "max_connections_per_client",
            self.max_connections_per_client,
            1,
            self.max_connections,
        )
        .map_err(|error| format!("{error} (at most max_connections)"))?;
        within(
            "verify_cache_size",
            self.verify_cache_size,
            1,
            MAX_VERIFY_CACHE,
        )?;
        let seconds = |key: &str, value: Duration, low: u64, high: u64| {
            if (low..=high).contains(&value.as_secs()) {
                Ok(())
            } else {
                let words = cutover_zone::duration::words;
                Err(format!(
                    "{key} = {}: expected {} to {}",
                    words(value),
                    words(Duration::from_secs(low)),
                    words(Duration::from_secs(high))
                ))
            }
        };
        seconds("stress_timeout", self.stress_timeout, 1, 300)?;
        seconds(
            "verify_positive_ttl",
            self.verify_positive_ttl,
            60,
            365 * 86_400,
        )?;
        seconds("verify_negative_ttl", self.verify_negative_ttl, 0, 86_400)?;
        self.postmaster()?;
        Ok(())
    }

    /// The mailbox `RCPT TO:<postmaster>` goes to: `postmaster`, or
    /// postmaster@ the first domain; it must be in a relayed domain.
    pub fn postmaster(&self) -> Result<Option<Mailbox>, String> {
        let Some(first) = self.domain.first() else {
            return Ok(None);
        };
        let Some(configured) = &self.postmaster else {
            return Ok(Some(Mailbox {
                local: "postmaster".into(),
                domain: first.domain(),
            }));
        };
        let mailbox = parse_forward_path(configured, true)
            .map_err(|error| format!("postmaster = {configured:?}: {error}"))?;
        if !self
            .domain
            .iter()
            .any(|domain| domain.domain() == mailbox.domain)
        {
            return Err(format!(
                "postmaster = {configured:?}: {} is not a [[mail.domain]] (the relay \
                 delivers only to its domains)",
                mailbox.domain
            ));
        }
        Ok(Some(mailbox))
    }

    /// Each domain's configured destination (for listings at rest).
    pub fn routes(&self) -> BTreeMap<String, Destination> {
        self.domain
            .iter()
            .filter_map(|domain| Some((domain.domain(), domain.destination.parse().ok()?)))
            .collect()
    }

    /// The relay's config: policy, routes, limits and schedule.
    pub fn relay_config(&self) -> Result<RelayConfig, String> {
        let mut policy = Policy::new(self.hostname.clone());
        policy.max_message_size = self.max_message_size;
        policy.max_recipients = self.max_recipients;
        policy.postmaster = self.postmaster()?;
        let mut config = RelayConfig::new(self.spool.clone(), policy);
        for domain in &self.domain {
            let name = domain.domain();
            config
                .policy
                .domains
                .insert(name.clone(), self.relay_domain(domain)?);
            let mut destination: Destination = domain
                .destination
                .parse()
                .map_err(|error| format!("domain {name}: {error}"))?;
            destination.require_tls = domain.tls_required;
            config.routes.insert(name, destination);
        }
        config.schedule = Schedule {
            first_retry: self.first_retry,
            max_retry: self.max_retry,
            lifetime: self.queue_lifetime,
            delay_warning: self.delay_warning,
        };
        config.command_timeout = self.command_timeout;
        config.data_timeout = self.data_timeout;
        config.max_connections_per_client = self.max_connections_per_client;
        config.max_connections = self.max_connections;
        config.stress_timeout = self.stress_timeout;
        config.verify_cache_size = self.verify_cache_size;
        config.verify_positive_ttl = self.verify_positive_ttl;
        config.verify_negative_ttl = self.verify_negative_ttl;
        if let Some(tls) = &self.tls {
            config.tls = Some(tls_from_pem(&tls.cert, &tls.key).map_err(|e| e.to_string())?);
        }
        Ok(config)
    }

    /// One domain's acceptance rules.
    fn relay_domain(&self, domain: &MailDomain) -> Result<RelayDomain, String> {
        let name = domain.domain();
        let mut relayed = RelayDomain::default();
        match domain.verify.as_deref() {
            None => {}
            Some("destination") => relayed.verify = true,
            Some(other) => {
                return Err(format!(
                    "domain {name}: verify = {other:?}; the only choice is \"destination\""
                ))
            }
        }
        for recipient in &domain.recipients {
            let (local, at) = match recipient.rsplit_once('@') {
                Some((local, at)) => (local, Some(at)),
                None => (recipient.as_str(), None),
            };
            if at.is_some_and(|at| normalize(at) != name) {
                return Err(format!(
                    "domain {name}: recipient {recipient:?} is not in the domain"
                ));
            }
            if local.is_empty() {
                relayed.any = true;
            } else {
                relayed.recipients.insert(local.to_lowercase());
            }
        }
        if !relayed.any && !relayed.verify && relayed.recipients.is_empty() {
            return Err(format!(
                "domain {name}: give recipients = [...] or verify = \"destination\" \
                 (accepting unknown recipients would make backscatter)"
            ));
        }
        Ok(relayed)
    }
}

/// A domain as the relay keys it: lower case, without the final dot.
fn normalize(domain: &str) -> String {
    domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase()
}

/// " (line L, column C)" of a spanned value in `source`, or nothing.
fn place(source: Option<&str>, value: &Spanned<String>) -> String {
    let Some(text) = source else {
        return String::new();
    };
    let start = value.span().start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |newline| newline + 1) + 1;
    format!(" (line {line}, column {column})")
}

/// Port 25 on every address.
fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([0, 0, 0, 0], 25))]
}

/// The spool next to the store's default place.
fn default_spool() -> PathBuf {
    PathBuf::from("/var/lib/cutover/mail")
}

/// 35 MiB, as many providers accept.
fn default_max_message_size() -> usize {
    35 * 1024 * 1024
}

/// RFC 5321 §4.5.3.1.8's minimum.
fn default_max_recipients() -> usize {
    100
}

/// Ten connections from one address at once.
fn default_max_connections_per_client() -> usize {
    10
}

/// A thousand sessions at once.
fn default_max_connections() -> usize {
    1000
}

/// Ten seconds, Postfix's under stress.
fn default_stress_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A hundred thousand recipients.
fn default_verify_cache_size() -> usize {
    100_000
}

/// 31 days, Postfix's address_verify_positive_expire_time.
fn default_verify_positive_ttl() -> Duration {
    Duration::from_secs(31 * 86_400)
}

/// Ten minutes.
fn default_verify_negative_ttl() -> Duration {
    Duration::from_secs(600)
}

/// RFC 5321 §4.5.3.2: 5 minutes for a command.
fn default_command_timeout() -> Duration {
    Duration::from_secs(300)
}

/// RFC 5321 §4.5.3.2: 10 minutes between data blocks.
fn default_data_timeout() -> Duration {
    Duration::from_secs(600)
}

/// Five days, as Postfix's maximal_queue_lifetime.
fn default_queue_lifetime() -> Duration {
    Schedule::default().lifetime
}

/// Four hours, as Postfix's delay_warning_time when set.
fn default_delay_warning() -> Duration {
    Schedule::default().delay_warning
}

/// One minute.
fn default_first_retry() -> Duration {
    Schedule::default().first_retry
}

/// One hour.
fn default_max_retry() -> Duration {
    Schedule::default().max_retry
}

/// Thirty seconds.
fn default_connect_timeout() -> Duration {
    Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a `[mail]` section.
    fn parse(text: &str) -> Result<MailConfig, String> {
        let config: MailConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate(Some(text))?;
        Ok(config)
    }

    /// Defaults, recipient forms and per-domain TLS reach the relay config.
    #[test]
    fn section_becomes_a_relay_config() {
        let config = parse(
            "hostname = \"mx.test\"\nspool = \"/tmp/x\"\nqueue_lifetime = \"2d\"\n\
             [[domain]]\nname = \"A.test\"\ndestination = \"10.0.0.1:2525\"\n\
             recipients = [\"alice@a.test\", \"Bob\"]\ntls_required = true\n\
             [[domain]]\nname = \"b.test\"\ndestination = \"mx.b.test\"\nverify = \"destination\"\n\
             [[domain]]\nname = \"c.test\"\ndestination = \"mx.c.test\"\nrecipients = [\"@c.test\"]\n",
        )
        .unwrap();
        let relay = config.relay_config().unwrap();
        assert_eq!(relay.schedule.lifetime, Duration::from_secs(2 * 86_400));
        assert_eq!(relay.command_timeout, Duration::from_secs(300));
        let a = &relay.policy.domains["a.test"];
        assert!(
            a.recipients.contains("alice") && a.recipients.contains("bob"),
            "{a:?}"
        );
        assert!(relay.routes["a.test"].require_tls, "tls_required kept");
        assert_eq!(relay.routes["b.test"].port, 25, "default port 25");
        assert!(relay.policy.domains["b.test"].verify);
        assert!(relay.policy.domains["c.test"].any);
    }

    /// The same domain twice, however it is spelt, is refused with both
    /// spellings and their places in the file; the domain is keyed without
    /// case and final dot, so `Example.COM.` is relayed as example.com.
    #[test]
    fn duplicate_domains_are_refused_naming_both() {
        let text = "hostname = \"mx.test\"\n\
                    [[domain]]\nname = \"example.com\"\ndestination = \"10.0.0.1\"\nrecipients = [\"a\"]\n\
                    [[domain]]\nname = \"other.test\"\ndestination = \"10.0.0.3\"\nrecipients = [\"a\"]\n\
                    [[domain]]\nname = \"Example.COM.\"\ndestination = \"10.0.0.2\"\nrecipients = [\"b\"]\n";
        let error = parse(text).unwrap_err();
        assert!(
            error.contains("\"Example.COM.\" (line 11, column 8)")
                && error.contains("\"example.com\" (line 3, column 8)")
                && error.contains("list each domain once"),
            "{error}"
        );
        let config = parse(
            "hostname = \"mx.test\"\n[[domain]]\nname = \"Example.COM.\"\n\
             destination = \"10.0.0.2\"\nrecipients = [\"b@example.com\"]\n",
        )
        .unwrap();
        let relay = config.relay_config().unwrap();
        assert!(
            relay.policy.relays("example.com"),
            "{:?}",
            relay.policy.domains
        );
        assert!(relay.policy.knows("b", "example.com"));
        assert!(relay.routes.contains_key("example.com"));
    }

    /// `RCPT TO:<postmaster>` goes to postmaster@ the first domain unless
    /// `postmaster` names a mailbox of a relayed domain; any other is refused.
    #[test]
    fn postmaster_is_a_mailbox_of_a_relayed_domain() {
        let base = "hostname = \"mx.test\"\n{extra}[[domain]]\nname = \"A.test\"\n\
                    destination = \"10.0.0.1\"\nrecipients = [\"a\"]\n\
                    [[domain]]\nname = \"b.test\"\ndestination = \"10.0.0.2\"\nrecipients = [\"b\"]\n";
        let config = parse(&base.replace("{extra}", "")).unwrap();
        let postmaster = config.relay_config().unwrap().policy.postmaster.unwrap();
        assert_eq!(
            (postmaster.local.as_str(), postmaster.domain.as_str()),
            ("postmaster", "a.test")
        );
        let config =
            parse(&base.replace("{extra}", "postmaster = \"hostmaster@B.test\"\n")).unwrap();
        let postmaster = config.relay_config().unwrap().policy.postmaster.unwrap();
        assert_eq!(
            (postmaster.local.as_str(), postmaster.domain.as_str()),
            ("hostmaster", "b.test")
        );
        for (extra, expected) in [
            ("postmaster = \"root@ext.test\"\n", "not a [[mail.domain]]"),
            ("postmaster = \"u%ext.test@a.test\"\n", "routing character"),
            ("postmaster = \"nobody\"\n", "postmaster = \"nobody\""),
        ] {
            let error = parse(&base.replace("{extra}", extra)).unwrap_err();
            assert!(error.contains(expected), "expected {expected:?} in {error}");
        }
    }

    /// The session caps and the recipient memory have defaults, reach the
    /// relay, and are refused outside their range.
    #[test]
    fn caps_have_defaults_and_ranges() {
        let base = "hostname = \"mx.test\"\n{extra}[[domain]]\nname = \"a.test\"\n\
                    destination = \"10.0.0.1\"\nrecipients = [\"a\"]\n";
        let relay = parse(&base.replace("{extra}", ""))
            .unwrap()
            .relay_config()
            .unwrap();
        assert_eq!(relay.max_connections, 1000);
        assert_eq!(relay.stress_timeout, Duration::from_secs(10));
        assert_eq!(relay.verify_cache_size, 100_000);
        assert_eq!(relay.verify_negative_ttl, Duration::from_secs(600));
        assert_eq!(relay.verify_positive_ttl, Duration::from_secs(31 * 86_400));
        let relay = parse(&base.replace(
            "{extra}",
            "max_connections = 50\nmax_connections_per_client = 5\nstress_timeout = \"2s\"\n\
             verify_cache_size = 10\nverify_negative_ttl = \"1m\"\n",
        ))
        .unwrap()
        .relay_config()
        .unwrap();
        assert_eq!(
            (relay.max_connections, relay.max_connections_per_client),
            (50, 5)
        );
        assert_eq!(relay.stress_timeout, Duration::from_secs(2));
        assert_eq!(relay.verify_cache_size, 10);
        assert_eq!(relay.verify_negative_ttl, Duration::from_secs(60));
        // Durations are read by `cutover_zone::duration`: units, words, seconds.
        let relay = parse(&base.replace(
            "{extra}",
            "queue_lifetime = \"1 week\"\nfirst_retry = 90\ndelay_warning = \"1h30m\"\n",
        ))
        .unwrap()
        .relay_config()
        .unwrap();
        assert_eq!(relay.schedule.lifetime, Duration::from_secs(7 * 86_400));
        assert_eq!(relay.schedule.first_retry, Duration::from_secs(90));
        assert_eq!(relay.schedule.delay_warning, Duration::from_secs(5400));
        for (extra, expected) in [
            (
                "max_connections = 0\n",
                "max_connections = 0: expected 1 to 65536",
            ),
            ("max_connections = 100000\n", "expected 1 to 65536"),
            (
                "max_connections = 5\n",
                "max_connections_per_client = 10: expected 1 to 5 (at most max_connections)",
            ),
            (
                "stress_timeout = \"0s\"\n",
                "stress_timeout = 0s: expected 1s to 5m",
            ),
            (
                "delay_warning = \"soon\"\n",
                "invalid duration \"soon\": expected seconds or a number with a unit",
            ),
            (
                "queue_lifetime = \"1 month\"\n",
                "months and years have no fixed length",
            ),
            (
                "queue_lifetime = \"367d\"\n",
                "duration \"367d\" is out of range: expected 0s to 366d",
            ),
            ("verify_cache_size = 0\n", "verify_cache_size = 0"),
            ("verify_negative_ttl = \"2d\"\n", "verify_negative_ttl"),
            ("max_message_size = 10000000000\n", "max_message_size"),
            (
                "listen = [\"127.0.0.1:25\", \"127.0.0.1:25\"]\n",
                "listen: 127.0.0.1:25 is listed twice",
            ),
        ] {
            let error = parse(&base.replace("{extra}", extra)).unwrap_err();
            assert!(error.contains(expected), "expected {expected:?} in {error}");
        }
    }

    /// Bad sections name the domain and what is wrong.
    #[test]
    fn bad_sections_are_refused() {
        let base = "hostname = \"mx.test\"\n[[domain]]\nname = \"a.test\"\n";
        let cases = [
            (
                "destination = \"h:99999\"\nrecipients = [\"x\"]\n",
                "invalid destination",
            ),
            ("destination = \"h\"\n", "backscatter"),
            ("destination = \"h\"\nverify = \"list\"\n", "only choice"),
            (
                "destination = \"h\"\nrecipients = [\"x@other.test\"]\n",
                "not in the domain",
            ),
            (
                "destination = \"h\"\nrecipients = [\"x\"]\nfoo = 1\n",
                "unknown field",
            ),
        ];
        for (rest, expected) in cases {
            let error = parse(&format!("{base}{rest}")).unwrap_err();
            assert!(error.contains(expected), "expected {expected:?} in {error}");
        }
    }
}
