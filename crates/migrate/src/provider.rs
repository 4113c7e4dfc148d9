//! The provider named in a migration file: its settings as written, checked,
//! and the one place that turns them into a [`Provider`].
//!
//! ```text
//!  provider = { kind = "embedded" | "rfc2136" | "powerdns" | "cloud", … }
//!        │ (parsed with the file; a cloud host's keys are those of its
//!        │  service in cutover_provider::cloud::services::SERVICES)
//!        ▼
//!  ProviderSpec ──build(spec, keys, context)──▶ Box<dyn Provider>
//!                     └─ secrets given by file or environment variable are read here, each time
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cutover_nameserver::tsig::Key;
use cutover_provider::cloud::{services, CloudProvider, CloudSettings};
use cutover_provider::embedded::EmbeddedProvider;
use cutover_provider::powerdns::{PowerDnsConfig, PowerDnsProvider};
use cutover_provider::rfc2136::Rfc2136Provider;
use cutover_provider::Provider;
use cutover_store::Store;

/// The provider kinds this build of cutover can use.
pub const KINDS: &[&str] = &["embedded", "rfc2136", "powerdns", "cloud"];

/// What each kind is, in a few words (`cutover provider list`).
pub const KIND_WORDS: &[(&str, &str)] = &[
    ("embedded", "cutover's own store (the default); no settings"),
    (
        "rfc2136",
        "any server taking RFC 2136 UPDATE signed with TSIG: server, key, key_file or a [[key]]",
    ),
    (
        "powerdns",
        "PowerDNS Authoritative's HTTP API: url, api_key (or api_key_file / api_key_env), server_id",
    ),
    (
        "cloud",
        "a cloud DNS host through its API: service, and the keys of that service",
    ),
];

/// How long one request to a cloud host may take.
const CLOUD_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a zone's records live, as the migration file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderSpec {
    /// cutover's own store (the default).
    Embedded,
    /// Any standard server through RFC 2136 UPDATE signed with TSIG.
    Rfc2136 {
        /// The primary's address (`host:port` or an IP).
        server: String,
        /// The TSIG key's name (`"ops."`).
        key: String,
        /// A file holding the key (BIND or Knot format); else a `[[key]]`
        /// of the migration file with this name.
        key_file: Option<PathBuf>,
    },
    /// PowerDNS through its HTTP API.
    Powerdns {
        /// The API base URL (`http://127.0.0.1:8081`).
        url: String,
        /// The API key.
        api_key: Secret,
        /// The server id in the API (default `localhost`).
        server_id: Option<String>,
    },
    /// A cloud DNS host, reached through its HTTP API (one of
    /// `cutover_provider::cloud::services::SERVICES`).
    Cloud {
        /// Which host (`route53`, `cloudflare`, `desec`, …).
        service: String,
        /// Its credentials by key (`token`, `secret_access_key`, …).
        secrets: Vec<(String, Secret)>,
        /// Its other settings by key (`region`, `zone_id`, `url`, …).
        settings: Vec<(String, String)>,
        /// The zone's authoritative servers (hosts read by DNS).
        nameservers: Vec<String>,
    },
}

/// A secret (an API key or token): written in the file, or read from a
/// file or an environment variable when the provider is built. Its `Debug`
/// form never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Written in the migration file (stored with the migration, shown nowhere).
    Inline(String),
    /// Read from this file, first line, surrounding blanks trimmed; a file
    /// holding a JSON document (a service account's key) is taken whole.
    File(PathBuf),
    /// Read from this environment variable of the process that builds the
    /// provider (`migrate plan|start|run`, `serve`'s scheduler), surrounding
    /// blanks trimmed; never stored.
    Env(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Inline(\"(redacted)\")"),
            Secret::File(path) => f.debug_tuple("File").field(path).finish(),
            Secret::Env(name) => f.debug_tuple("Env").field(name).finish(),
        }
    }
}

/// The value of environment variable `name`, surrounding blanks trimmed;
/// the error names the variable and `what` it should hold, never a value.
pub fn env_secret(name: &str, what: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
        Ok(_) => Err(format!(
            "the environment variable {name} is empty: expected {what} in it"
        )),
        Err(std::env::VarError::NotPresent) => Err(format!(
            "the environment variable {name} is not set: expected {what} in it"
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "the environment variable {name} is not UTF-8: expected {what} in it"
        )),
    }
}

impl Secret {
    /// The secret itself; `what` names it in errors (which never hold it).
    pub fn reveal(&self, what: &str) -> Result<String, BuildError> {
        match self {
            Secret::Inline(text) => Ok(text.clone()),
            Secret::Env(name) => env_secret(name, what).map_err(BuildError::Invalid),
            Secret::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    BuildError::Invalid(format!("cannot read {what} from {}: {e}", path.display()))
                })?;
                // A JSON document (Google's service-account key) spans lines.
                if text.trim_start().starts_with('{') {
                    return Ok(text.trim().to_string());
                }
                let line = text.lines().next().unwrap_or_default().trim().to_string();
                if line.is_empty() {
                    return Err(BuildError::Invalid(format!(
                        "{} is empty: expected {what} on its first line",
                        path.display()
                    )));
                }
                Ok(line)
            }
        }
    }
}

/// A TSIG key given inline in the migration file (`[[key]]`). Its `Debug`
/// form never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// The key's name (`"ops."`).
    pub name: String,
    /// The algorithm (`hmac-sha256`, …).
    pub algorithm: String,
    /// The secret, base64: inline, or the environment variable holding it.
    pub secret: Secret,
}

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySpec")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"(redacted)")
            .finish()
    }
}

/// What [`build`] needs besides the spec.
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    /// The store file, for the embedded provider.
    pub store: Option<PathBuf>,
}

/// Why a provider could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The spec names something this build cannot construct, and why.
    #[error("{0}")]
    Unavailable(String),
    /// The spec is incomplete or inconsistent.
    #[error("provider: {0}")]
    Invalid(String),
}

impl ProviderSpec {
    /// A short name of the kind ("embedded", "rfc2136", …).
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderSpec::Embedded => "embedded",
            ProviderSpec::Rfc2136 { .. } => "rfc2136",
            ProviderSpec::Powerdns { .. } => "powerdns",
            ProviderSpec::Cloud { .. } => "cloud",
        }
    }

    /// Checks what parsing cannot: that an RFC 2136 key can be found, that
    /// a cloud host has a token.
    pub fn check(&self, keys: &[KeySpec]) -> Result<(), String> {
        match self {
            ProviderSpec::Embedded => Ok(()),
            ProviderSpec::Rfc2136 {
                server,
                key,
                key_file,
            } => {
                if server.trim().is_empty() {
                    return Err(
                        "provider.server: expected the primary's address, e.g. \"192.0.2.53:53\""
                            .into(),
                    );
                }
                let wanted = key.trim_end_matches('.');
                if key_file.is_none()
                    && !keys
                        .iter()
                        .any(|k| k.name.trim_end_matches('.').eq_ignore_ascii_case(wanted))
                {
                    return Err(format!(
                        "provider.key {key:?}: expected `key_file = PATH` or a [[key]] named {key:?} in this file"
                    ));
                }
                Ok(())
            }
            ProviderSpec::Powerdns { url, .. } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!(
                        "provider.url {url:?}: expected an http:// or https:// URL"
                    ));
                }
                Ok(())
            }
            ProviderSpec::Cloud {
                service,
                secrets,
                settings,
                nameservers,
            } => {
                let Some(found) = services::service(service) else {
                    return Err(format!(
                        "provider.service {service:?}: expected one of {}",
                        services::names()
                    ));
                };
                for setting in found.settings.iter().filter(|s| s.required) {
                    let given = if setting.key == "nameservers" {
                        !nameservers.is_empty()
                    } else if setting.secret {
                        secrets.iter().any(|(k, _)| k == setting.key)
                    } else {
                        settings.iter().any(|(k, _)| k == setting.key)
                    };
                    if !given {
                        return Err(format!(
                            "provider.{}: expected {} ({} needs it)",
                            setting.key, setting.what, found.title
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// Makes a relative secret file path relative to `dir` (the migration
    /// file's folder).
    pub fn resolve_paths(&mut self, dir: &Path) {
        if let ProviderSpec::Cloud { secrets, .. } = self {
            for (_, secret) in secrets {
                if let Secret::File(path) = secret {
                    if path.is_relative() {
                        *path = dir.join(&*path);
                    }
                }
            }
            return;
        }
        let path = match self {
            ProviderSpec::Rfc2136 {
                key_file: Some(path),
                ..
            }
            | ProviderSpec::Powerdns {
                api_key: Secret::File(path),
                ..
            } => path,
            _ => return,
        };
        if path.is_relative() {
            *path = dir.join(&*path);
        }
    }

    /// How the plan describes it.
    pub fn describe(&self) -> String {
        match self {
            ProviderSpec::Embedded => "cutover's store".into(),
            ProviderSpec::Rfc2136 { server, key, .. } => {
                format!("RFC 2136 at {server} with key {key}")
            }
            ProviderSpec::Powerdns { url, .. } => format!("PowerDNS API at {url}"),
            ProviderSpec::Cloud { service, .. } => match services::service(service) {
                Some(found) => format!("{} (cloud: {service})", found.title),
                None => format!("{service} (cloud)"),
            },
        }
    }

    /// The files the provider reads its secrets from, each with its key
    /// (`provider.key_file`, `provider.token_file`, …).
    pub fn secret_files(&self) -> Vec<(String, &PathBuf)> {
        match self {
            ProviderSpec::Rfc2136 {
                key_file: Some(path),
                ..
            } => vec![("key_file".into(), path)],
            ProviderSpec::Powerdns {
                api_key: Secret::File(path),
                ..
            } => vec![("api_key_file".into(), path)],
            ProviderSpec::Cloud { secrets, .. } => secrets
                .iter()
                .filter_map(|(key, secret)| match secret {
                    Secret::File(path) => Some((format!("{key}_file"), path)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Builds the provider a migration file names. The one place that knows
/// every implementation. Secrets are read here (files, environment), used
/// to build the client, and never put in an error.
pub fn build(
    spec: &ProviderSpec,
    keys: &[KeySpec],
    context: &BuildContext,
) -> Result<Box<dyn Provider>, BuildError> {
    spec.check(keys).map_err(BuildError::Invalid)?;
    match spec {
        ProviderSpec::Embedded => {
            let path = context.store.as_ref().ok_or_else(|| {
                BuildError::Invalid("the embedded provider needs the store file".into())
            })?;
            let store = Store::open(path).map_err(|e| {
                BuildError::Invalid(format!("cannot open the store {}: {e}", path.display()))
            })?;
            Ok(Box::new(EmbeddedProvider::new(Arc::new(store))))
        }
        ProviderSpec::Rfc2136 {
            server,
            key,
            key_file,
        } => {
            let address = socket_address(server)?;
            let key = tsig_key(key, key_file.as_deref(), keys)?;
            Ok(Box::new(Rfc2136Provider::new(
                address,
                key,
                Duration::from_secs(3),
            )))
        }
        ProviderSpec::Powerdns {
            url,
            api_key,
            server_id,
        } => Ok(Box::new(PowerDnsProvider::new(&PowerDnsConfig {
            url: url.clone(),
            api_key: api_key.reveal("the PowerDNS API key")?,
            server: server_id.clone(),
            timeout_ms: None,
        }))),
        ProviderSpec::Cloud {
            service,
            secrets,
            settings,
            nameservers,
        } => {
            let found = services::service(service).ok_or_else(|| {
                BuildError::Invalid(format!(
                    "provider.service {service:?}: expected one of {}",
                    services::names()
                ))
            })?;
            let mut values = std::collections::BTreeMap::new();
            for (key, secret) in secrets {
                let what = found
                    .settings
                    .iter()
                    .find(|s| s.key == key)
                    .map_or("the credential", |s| s.what);
                values.insert(
                    key.clone(),
                    secret.reveal(&format!("provider.{key} ({what})"))?,
                );
            }
            for (key, value) in settings {
                values.insert(key.clone(), value.clone());
            }
            let nameservers = nameservers
                .iter()
                .map(|n| socket_address(n))
                .collect::<Result<Vec<_>, _>>()?;
            let provider = CloudProvider::connect(CloudSettings {
                service: service.clone(),
                values,
                nameservers,
                timeout: CLOUD_TIMEOUT,
            })
            .map_err(|e| BuildError::Invalid(e.to_string()))?;
            Ok(Box::new(provider))
        }
    }
}

/// `host:port` or an IP (port 53), resolved.
fn socket_address(server: &str) -> Result<SocketAddr, BuildError> {
    let server = server.trim();
    if let Ok(ip) = server.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let with_port = if server
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        server.to_string()
    } else {
        format!("{server}:53")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            BuildError::Invalid(format!(
                "provider.server {server:?}: expected an address such as \"192.0.2.53:53\""
            ))
        })
}

/// The TSIG key named `name`: from `key_file` (BIND, Knot or `alg:name:secret`
/// form) or from the file's inline `[[key]]`s.
fn tsig_key(name: &str, key_file: Option<&Path>, keys: &[KeySpec]) -> Result<Key, BuildError> {
    let wanted = name.trim_end_matches('.').to_ascii_lowercase();
    let matches = |k: &Key| {
        k.name
            .to_string()
            .trim_end_matches('.')
            .to_ascii_lowercase()
            == wanted
    };
    if let Some(path) = key_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            BuildError::Invalid(format!("cannot read the key file {}: {e}", path.display()))
        })?;
        let found = Key::parse_bind(&text)
            .ok()
            .filter(|k| !k.is_empty())
            .or_else(|| Key::parse_knot(&text).ok().filter(|k| !k.is_empty()))
            .or_else(|| Key::from_short(text.trim()).ok().map(|k| vec![k]))
            .ok_or_else(|| {
                BuildError::Invalid(format!(
                    "{}: expected a BIND or Knot key file, or alg:name:secret",
                    path.display()
                ))
            })?;
        return found.into_iter().find(matches).ok_or_else(|| {
            BuildError::Invalid(format!("{} has no key named {name:?}", path.display()))
        });
    }
    let spec = keys
        .iter()
        .find(|k| k.name.trim_end_matches('.').eq_ignore_ascii_case(&wanted))
        .ok_or_else(|| BuildError::Invalid(format!("no [[key]] named {name:?}")))?;
    let secret = spec
        .secret
        .reveal(&format!("the secret of [[key]] {name:?}"))?;
    Key::from_text(&spec.name, &spec.algorithm, &secret)
        .map_err(|e| BuildError::Invalid(format!("[[key]] {name:?}: {e}")))
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn a_secret_file_gives_its_first_line_or_a_whole_json_document() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "  tok-123  \nignored\n").unwrap();
        assert_eq!(Secret::File(token).reveal("the token").unwrap(), "tok-123");
        let key = dir.path().join("key.json");
        let json = "{\n  \"client_email\": \"a@b\",\n  \"private_key\": \"k\"\n}";
        std::fs::write(&key, format!("{json}\n")).unwrap();
        assert_eq!(Secret::File(key).reveal("the key").unwrap(), json);
    }
}
