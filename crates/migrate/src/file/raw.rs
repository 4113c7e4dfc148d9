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
    /// `zone = "example.com."` (one zone), or `[[zone]]` tables (each a
    /// zone, with its own provider or the file's).
    #[serde(default)]
    pub zone: Option<Spanned<OneOrTables<RawZone>>>,
    /// `zones = ["a.example.", …]` sharing the file's provider, or
    /// `zones = "*"`: every zone the provider holds.
    #[serde(default)]
    pub zones: Option<Spanned<toml::Value>>,
    /// The provider of every zone that names none of its own.
    #[serde(default)]
    pub provider: Option<Spanned<RawProvider>>,
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
    /// email: `none`, `starttls` or `tls` (default: `starttls` with a
    /// login, else `none`).
    pub tls: Option<Spanned<String>>,
    /// email: the login's user name (AUTH PLAIN, over TLS only).
    pub username: Option<Spanned<String>>,
    /// email: the login's password, inline (a secret).
    pub password: Option<Spanned<String>>,
    /// email: a file holding the password.
    pub password_file: Option<Spanned<String>>,
    /// email: the environment variable holding the password.
    pub password_env: Option<Spanned<String>>,
    /// email, webhook, slack: PEM certificates to verify the server with
    /// (a private CA).
    pub ca_file: Option<Spanned<String>>,
    /// Which happenings (default: all).
    pub on: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A key that is either one value or an array of tables: `zone =
/// "example.com."` and `[[zone]]` share a name. Read by hand (not an
/// untagged enum, which buffers the value) so that every table keeps the
/// places of its values and a wrong key is an error at its place.
pub(super) enum OneOrTables<T> {
    /// A string.
    One(String),
    /// An array of tables.
    Tables(Vec<Spanned<T>>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrTables<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The visitor of both forms.
        struct Either<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Either<T> {
            type Value = OneOrTables<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a zone's name such as \"example.com.\", or [[zone]] tables")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OneOrTables::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = seq.next_element()? {
                    out.push(t);
                }
                Ok(OneOrTables::Tables(out))
            }
        }
        deserializer.deserialize_any(Either(std::marker::PhantomData))
    }
}

/// A `[[zone]]` as written: a zone and, when it differs from the file's,
/// its provider.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZone {
    /// The zone's name.
    pub name: Spanned<String>,
    /// Where its records live (default: the file's `provider`).
    pub provider: Option<Spanned<RawProvider>>,
    /// The authoritative addresses to ask about this zone (default:
    /// `[verify] authorities`).
    pub authorities: Option<Spanned<Vec<Spanned<String>>>>,
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
    /// cloud: which host (`route53`, `cloudflare`, …).
    pub service: Option<Spanned<String>>,
    /// cloud: the API token, inline (a secret).
    pub token: Option<Spanned<String>>,
    /// cloud: a file holding the API token.
    pub token_file: Option<Spanned<String>>,
    /// cloud: the environment variable holding the API token.
    pub token_env: Option<Spanned<String>>,
    /// cloud: the host's id of the zone (Route 53's hosted zone id).
    pub zone_id: Option<Spanned<String>>,
    /// cloud, route53: the IAM access key id, inline (a secret).
    pub access_key_id: Option<Spanned<String>>,
    /// cloud, route53: the IAM access key id: a file holding it.
    pub access_key_id_file: Option<Spanned<String>>,
    /// cloud, route53: the IAM access key id: the environment variable holding it.
    pub access_key_id_env: Option<Spanned<String>>,
    /// cloud, route53: the IAM secret access key, inline (a secret).
    pub secret_access_key: Option<Spanned<String>>,
    /// cloud, route53: the IAM secret access key: a file holding it.
    pub secret_access_key_file: Option<Spanned<String>>,
    /// cloud, route53: the IAM secret access key: the environment variable holding it.
    pub secret_access_key_env: Option<Spanned<String>>,
    /// cloud, route53: the session token of temporary credentials, inline (a secret).
    pub session_token: Option<Spanned<String>>,
    /// cloud, route53: the session token of temporary credentials: a file holding it.
    pub session_token_file: Option<Spanned<String>>,
    /// cloud, route53: the session token of temporary credentials: the environment variable holding it.
    pub session_token_env: Option<Spanned<String>>,
    /// cloud, ovh: the application key, inline (a secret).
    pub application_key: Option<Spanned<String>>,
    /// cloud, ovh: the application key: a file holding it.
    pub application_key_file: Option<Spanned<String>>,
    /// cloud, ovh: the application key: the environment variable holding it.
    pub application_key_env: Option<Spanned<String>>,
    /// cloud, ovh: the application secret, inline (a secret).
    pub application_secret: Option<Spanned<String>>,
    /// cloud, ovh: the application secret: a file holding it.
    pub application_secret_file: Option<Spanned<String>>,
    /// cloud, ovh: the application secret: the environment variable holding it.
    pub application_secret_env: Option<Spanned<String>>,
    /// cloud, ovh: the consumer key, inline (a secret).
    pub consumer_key: Option<Spanned<String>>,
    /// cloud, ovh: the consumer key: a file holding it.
    pub consumer_key_file: Option<Spanned<String>>,
    /// cloud, ovh: the consumer key: the environment variable holding it.
    pub consumer_key_env: Option<Spanned<String>>,
    /// cloud, azure: the service principal's client secret, inline (a secret).
    pub client_secret: Option<Spanned<String>>,
    /// cloud, azure: the service principal's client secret: a file holding it.
    pub client_secret_file: Option<Spanned<String>>,
    /// cloud, azure: the service principal's client secret: the environment variable holding it.
    pub client_secret_env: Option<Spanned<String>>,
    /// cloud, route53: the signing region.
    pub region: Option<Spanned<String>>,
    /// cloud, ovh: which OVH API.
    pub endpoint: Option<Spanned<String>>,
    /// cloud, azure: the tenant id.
    pub tenant_id: Option<Spanned<String>>,
    /// cloud, azure: the client id.
    pub client_id: Option<Spanned<String>>,
    /// cloud, azure: the subscription id.
    pub subscription_id: Option<Spanned<String>>,
    /// cloud, azure: the resource group.
    pub resource_group: Option<Spanned<String>>,
    /// cloud, google: the service account's JSON key, inline (a secret).
    pub service_account_json: Option<Spanned<String>>,
    /// cloud, google: the service account's JSON key: a file holding it.
    pub service_account_json_file: Option<Spanned<String>>,
    /// cloud, google: the service account's JSON key: the environment variable holding it.
    pub service_account_json_env: Option<Spanned<String>>,
    /// cloud, google: the project id.
    pub project_id: Option<Spanned<String>>,
    /// cloud, google: the managed zone's name.
    pub managed_zone: Option<Spanned<String>>,
    /// cloud, hosts read by DNS: the zone's authoritative servers.
    pub nameservers: Option<Spanned<Vec<Spanned<String>>>>,
}

impl RawProvider {
    /// Every text key as written, with its name.
    pub fn fields(&self) -> Vec<(&'static str, &Option<Spanned<String>>)> {
        vec![
            ("server", &self.server),
            ("key", &self.key),
            ("key_file", &self.key_file),
            ("url", &self.url),
            ("api_key", &self.api_key),
            ("api_key_file", &self.api_key_file),
            ("api_key_env", &self.api_key_env),
            ("server_id", &self.server_id),
            ("service", &self.service),
            ("token", &self.token),
            ("token_file", &self.token_file),
            ("token_env", &self.token_env),
            ("zone_id", &self.zone_id),
            ("access_key_id", &self.access_key_id),
            ("access_key_id_file", &self.access_key_id_file),
            ("access_key_id_env", &self.access_key_id_env),
            ("secret_access_key", &self.secret_access_key),
            ("secret_access_key_file", &self.secret_access_key_file),
            ("secret_access_key_env", &self.secret_access_key_env),
            ("session_token", &self.session_token),
            ("session_token_file", &self.session_token_file),
            ("session_token_env", &self.session_token_env),
            ("application_key", &self.application_key),
            ("application_key_file", &self.application_key_file),
            ("application_key_env", &self.application_key_env),
            ("application_secret", &self.application_secret),
            ("application_secret_file", &self.application_secret_file),
            ("application_secret_env", &self.application_secret_env),
            ("consumer_key", &self.consumer_key),
            ("consumer_key_file", &self.consumer_key_file),
            ("consumer_key_env", &self.consumer_key_env),
            ("client_secret", &self.client_secret),
            ("client_secret_file", &self.client_secret_file),
            ("client_secret_env", &self.client_secret_env),
            ("region", &self.region),
            ("endpoint", &self.endpoint),
            ("tenant_id", &self.tenant_id),
            ("client_id", &self.client_id),
            ("subscription_id", &self.subscription_id),
            ("resource_group", &self.resource_group),
            ("service_account_json", &self.service_account_json),
            ("service_account_json_file", &self.service_account_json_file),
            ("service_account_json_env", &self.service_account_json_env),
            ("project_id", &self.project_id),
            ("managed_zone", &self.managed_zone),
        ]
    }

    /// The text key named `name`, when written.
    pub fn field(&self, name: &str) -> Option<&Spanned<String>> {
        self.fields()
            .into_iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_ref())
    }
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
    /// `"all"` or a list of location names.
    pub locations: Option<Spanned<toml::Value>>,
    /// `"all"` or a count.
    pub quorum: Option<Spanned<toml::Value>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_provider::cloud::services::SERVICES;

    /// Every key a cloud service takes (a secret also as `_file` and
    /// `_env`) is a key of the provider table: a service whose keys the
    /// file refused could be listed but never used.
    #[test]
    fn the_provider_table_takes_every_key_of_every_cloud_service() {
        for service in SERVICES {
            for setting in service.settings {
                let mut keys = vec![setting.key.to_string()];
                if setting.secret {
                    keys.push(format!("{}_file", setting.key));
                    keys.push(format!("{}_env", setting.key));
                }
                for key in keys {
                    let value = match key.as_str() {
                        "nameservers" => "[\"192.0.2.53:53\"]",
                        _ => "\"x\"",
                    };
                    let text = format!("kind = \"cloud\"\n{key} = {value}\n");
                    if let Err(e) = toml::from_str::<RawProvider>(&text) {
                        panic!("{}: provider.{key} is refused: {e}", service.name);
                    }
                }
            }
        }
    }
}
