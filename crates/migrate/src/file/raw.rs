//! The migration file as written: version 1's tables, every value with its
//! span, and every table closed to keys it does not know
//! (`deny_unknown_fields`), so a misspelt key is an error at its place
//! rather than a setting silently ignored.

use serde::Deserialize;
use toml::Spanned;

/// Only the version, read first.
#[derive(Deserialize)]
pub(super) struct VersionOnly {
    /// The format version.
    pub version: Option<Spanned<toml::Value>>,
}

/// Version 1 as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawV1 {
    /// Always 1 here.
    #[allow(dead_code)]
    pub version: u32,
    /// The zone.
    pub zone: Spanned<String>,
    /// The provider.
    pub provider: Spanned<RawProvider>,
    /// Inline TSIG keys.
    #[serde(default)]
    pub key: Vec<Spanned<RawKey>>,
    /// The moves.
    #[serde(default, rename = "move")]
    pub moves: Vec<Spanned<RawMove>>,
    /// `[ttl]`.
    #[serde(default)]
    pub ttl: Option<RawTtl>,
    /// `[[check]]`.
    #[serde(default)]
    pub check: Vec<Spanned<RawCheck>>,
    /// `[schedule]`.
    #[serde(default)]
    pub schedule: Option<RawSchedule>,
    /// `[verify]`.
    #[serde(default)]
    pub verify: Option<Spanned<RawVerify>>,
    /// `[flush]`.
    #[serde(default)]
    pub flush: Option<RawFlush>,
    /// `[mail]`.
    #[serde(default)]
    pub mail: Option<Spanned<RawMail>>,
    /// `approve = "before_switch"`: the step an operator's approval gates.
    #[serde(default)]
    pub approve: Option<Spanned<String>>,
    /// `[[notify]]`: who is told what happens.
    #[serde(default)]
    pub notify: Vec<Spanned<RawNotify>>,
}

/// A `[[notify]]` as written: every key any kind takes; which ones a kind
/// accepts is checked after. The same table is read from `cutover serve`'s
/// config.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// `webhook`, `slack` or `email`.
    pub kind: Option<Spanned<String>>,
    /// webhook, slack: where to POST (a secret: a Slack URL is its token).
    pub url: Option<Spanned<String>>,
    /// webhook, slack: a file whose first line is the URL.
    pub url_file: Option<Spanned<String>>,
    /// webhook, slack: the environment variable holding the URL.
    pub url_env: Option<Spanned<String>>,
    /// webhook: the HMAC key, inline (a secret).
    pub secret: Option<Spanned<String>>,
    /// webhook: a file holding the HMAC key.
    pub secret_file: Option<Spanned<String>>,
    /// webhook: the environment variable holding the HMAC key.
    pub secret_env: Option<Spanned<String>>,
    /// email: the SMTP server, `host:port`.
    pub smtp: Option<Spanned<String>>,
    /// email: the sender address.
    pub from: Option<Spanned<String>>,
    /// email: the recipients.
    pub to: Option<Spanned<Vec<Spanned<String>>>>,
    /// Which happenings (default: all).
    pub on: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `provider = { kind = …, … }` as written: every key any kind takes; which
/// ones a kind accepts is checked after.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    /// `embedded`, `rfc2136`, `powerdns` or `cloud`.
    pub kind: Option<Spanned<String>>,
    /// rfc2136: the primary's address.
    pub server: Option<Spanned<String>>,
    /// rfc2136: the TSIG key's name.
    pub key: Option<Spanned<String>>,
    /// rfc2136: a file holding the key.
    pub key_file: Option<Spanned<String>>,
    /// powerdns, cloud: the API's base URL.
    pub url: Option<Spanned<String>>,
    /// powerdns: the API key, inline (a secret).
    pub api_key: Option<Spanned<String>>,
    /// powerdns: a file holding the API key.
    pub api_key_file: Option<Spanned<String>>,
    /// powerdns: the environment variable holding the API key.
    pub api_key_env: Option<Spanned<String>>,
    /// powerdns: the server id in the API.
    pub server_id: Option<Spanned<String>>,
    /// cloud: which host.
    pub service: Option<Spanned<String>>,
    /// cloud: the API token, inline (a secret).
    pub token: Option<Spanned<String>>,
    /// cloud: a file holding the API token.
    pub token_file: Option<Spanned<String>>,
    /// cloud: the environment variable holding the API token.
    pub token_env: Option<Spanned<String>>,
    /// cloud: the host's id of the zone.
    pub zone_id: Option<Spanned<String>>,
}

/// A `[[key]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    /// The key's name.
    pub name: Spanned<String>,
    /// The algorithm.
    pub algorithm: Spanned<String>,
    /// The secret, base64 (a secret).
    pub secret: Option<Spanned<String>>,
    /// The environment variable holding the secret (base64).
    pub secret_env: Option<Spanned<String>>,
}

/// A `[[move]]` as written: by address or explicit.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMove {
    /// Old address.
    pub from: Option<Spanned<String>>,
    /// New address.
    pub to: Option<Spanned<String>>,
    /// Rewrite SPF terms too (moves by address only).
    pub spf: Option<Spanned<bool>>,
    /// Owner (explicit form).
    pub name: Option<Spanned<String>>,
    /// Type (explicit form).
    #[serde(rename = "type")]
    pub rtype: Option<Spanned<String>>,
    /// New values (explicit form).
    pub values: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[ttl]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTtl {
    /// TTL during the move.
    pub during: Option<Spanned<toml::Value>>,
    /// TTL after the move: "original" or a number.
    pub after: Option<Spanned<toml::Value>>,
}

/// `[[check]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    /// URL.
    pub http: Option<Spanned<String>>,
    /// host:port.
    pub smtp: Option<Spanned<String>>,
    /// host:port.
    pub tcp: Option<Spanned<String>>,
    /// For http.
    pub expect_status: Option<Spanned<i64>>,
    /// For http.
    pub body_contains: Option<Spanned<String>>,
    /// Pin address.
    pub address: Option<Spanned<String>>,
}

/// `[schedule]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    /// "earliest" or RFC 3339.
    pub switch_at: Option<Spanned<String>>,
    /// Duration.
    pub observe: Option<Spanned<toml::Value>>,
    /// Duration.
    pub margin: Option<Spanned<toml::Value>>,
}

/// `[verify]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerify {
    /// Addresses.
    pub authorities: Option<Spanned<Vec<Spanned<String>>>>,
    /// Addresses.
    pub resolvers: Option<Spanned<Vec<Spanned<String>>>>,
    /// Count.
    pub tries: Option<Spanned<i64>>,
    /// Duration.
    pub interval: Option<Spanned<toml::Value>>,
}

/// `[flush]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlush {
    /// Cache names.
    #[serde(default)]
    pub caches: Vec<Spanned<String>>,
}

/// `[mail]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
    /// The mail domain.
    pub domain: Spanned<String>,
    /// host:port before.
    pub from: Spanned<String>,
    /// host:port after.
    pub to: Spanned<String>,
}

impl std::fmt::Debug for RawNotify {
    /// The kind only: the table may hold a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawNotify")
            .field("kind", &self.kind.as_ref().map(|k| k.get_ref()))
            .finish_non_exhaustive()
    }
}
