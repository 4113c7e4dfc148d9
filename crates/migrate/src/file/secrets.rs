//! The secrets a migration file may hold, and the one function that blanks
//! them out of its text before the text is shown anywhere (API answers,
//! events, `migrate show`, logs).
//!
//! ```text
//!  file text ──toml (spans of the secret values only)──▶ each value replaced by "(redacted)"
//!            └── not TOML: the whole text is withheld
//! ```
//!
//! The stored copy of a migration file keeps what it was started with: the
//! runner builds the provider from it again whenever `cutover serve`
//! restarts. A secret given by file (`api_key_file`, `token_file`,
//! `key_file`, a `[[notify]]`'s `secret_file`) or by environment variable
//! (`api_key_env`, `token_env`, a `[[key]]`'s or a `[[notify]]`'s
//! `secret_env`: only the variable's name is written) is read
//! then and never stored; a secret written inline is
//! stored with the migration, in the store's file, and shown nowhere.

use serde::Deserialize;
use toml::Spanned;

/// The keys whose values are secrets, as a migration file writes them
/// (besides a cloud host's credentials: every key its service marks as one).
pub const SECRET_KEYS: &[&str] = &[
    "provider.api_key",
    "provider.token",
    "key.secret",
    "zone.provider.api_key",
    "zone.provider.token",
    "notify.secret",
    "notify.url",
    "notify.password",
];

/// Whether `key` of the provider table holds a secret: PowerDNS's
/// `api_key`, or a credential of any cloud service.
fn provider_secret(key: &str) -> bool {
    key == "api_key"
        || cutover_provider::cloud::services::all_keys()
            .iter()
            .any(|s| s.secret && s.key == key)
}

/// What a redacted value becomes.
const REDACTED: &str = "\"(redacted)\"";

/// Only the secret-bearing parts of a file; every other key is ignored.
#[derive(Deserialize)]
struct SecretsOnly {
    /// The provider table.
    #[serde(default)]
    provider: Option<ProviderSecrets>,
    /// The `[[key]]` tables.
    #[serde(default)]
    key: Vec<KeySecret>,
    /// `zone = NAME`, or `[[zone]]` tables with providers of their own.
    #[serde(default)]
    zone: Option<super::raw::OneOrTables<ZoneSecrets>>,
    /// The `[[notify]]` tables.
    #[serde(default)]
    notify: Vec<NotifySecrets>,
}

/// A `[[zone]]`'s provider's secrets.
#[derive(Deserialize)]
struct ZoneSecrets {
    /// Its provider table.
    #[serde(default)]
    provider: Option<ProviderSecrets>,
}

/// A `[[notify]]`'s secrets: the webhook's signing key, the URL (a
/// Slack-compatible URL is its own token), an e-mail login's password.
#[derive(Deserialize)]
struct NotifySecrets {
    /// The HMAC key.
    secret: Option<Spanned<toml::Value>>,
    /// The URL.
    url: Option<Spanned<toml::Value>>,
    /// An e-mail login's password.
    password: Option<Spanned<toml::Value>>,
}

/// The provider table, every key with its place (only the secret ones are used).
type ProviderSecrets = std::collections::BTreeMap<String, Spanned<toml::Value>>;

/// A `[[key]]`'s secret.
#[derive(Deserialize)]
struct KeySecret {
    /// The base64 secret.
    secret: Option<Spanned<toml::Value>>,
}

/// The text with the value of every secret key replaced by
/// `"(redacted)"`, everything else (comments, layout, line numbers) kept.
/// A text that is not TOML is withheld whole: its secrets cannot be found.
pub fn redact(text: &str) -> String {
    let Ok(found) = toml::from_str::<SecretsOnly>(text) else {
        return "# (the migration file is withheld: it could not be read to redact its secrets)\n"
            .to_string();
    };
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    let zones = match &found.zone {
        Some(super::raw::OneOrTables::Tables(tables)) => tables.as_slice(),
        _ => &[],
    };
    let providers = zones
        .iter()
        .filter_map(|z| z.get_ref().provider.as_ref())
        .chain(&found.provider);
    for provider in providers {
        spans.extend(
            provider
                .iter()
                .filter(|(key, _)| provider_secret(key))
                .map(|(_, value)| value.span()),
        );
    }
    spans.extend(
        found
            .key
            .iter()
            .filter_map(|k| k.secret.as_ref().map(Spanned::span)),
    );
    for n in &found.notify {
        spans.extend(
            [&n.secret, &n.url, &n.password]
                .into_iter()
                .flatten()
                .map(Spanned::span),
        );
    }
    spans.sort_by_key(|s| std::cmp::Reverse(s.start));
    let mut out = text.to_string();
    for span in spans {
        if span.end <= out.len()
            && out.is_char_boundary(span.start)
            && out.is_char_boundary(span.end)
        {
            out.replace_range(span, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_is_blanked_and_the_rest_kept() {
        let text = "version = 1 # v\nprovider = { kind = \"powerdns\", url = \"http://x\", api_key = \"pdns-SECRET-1\" }\n[[key]]\nname = \"ops.\"\nalgorithm = \"hmac-sha256\"\nsecret = '''tsig-SECRET-2'''\n[[key]]\nname = \"b.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"tsig-SECRET-3\"\n";
        let out = redact(text);
        for secret in ["pdns-SECRET-1", "tsig-SECRET-2", "tsig-SECRET-3"] {
            assert!(!out.contains(secret), "{secret} left in:\n{out}");
        }
        assert_eq!(
            out.lines().count(),
            text.lines().count(),
            "lines kept:\n{out}"
        );
        assert!(out.contains("url = \"http://x\""), "{out}");
        assert!(out.contains("version = 1 # v"), "{out}");
        assert_eq!(out.matches("(redacted)").count(), 3, "{out}");
    }

    #[test]
    fn a_cloud_token_in_a_provider_table_is_blanked() {
        let text = "version = 1\n[provider]\nkind = \"cloud\"\nservice = \"x\"\ntoken = \"cloud-SECRET\"\n";
        let out = redact(text);
        assert!(!out.contains("cloud-SECRET"), "{out}");
    }

    #[test]
    fn a_zone_tables_provider_secret_is_blanked() {
        let text = "version = 1\n[[zone]]\nname = \"a.example.\"\nprovider = { kind = \"powerdns\", url = \"http://x\", api_key = \"zone-SECRET\" }\n[[zone]]\nname = \"b.example.\"\n";
        let out = redact(text);
        assert!(!out.contains("zone-SECRET"), "{out}");
        assert_eq!(out.matches("(redacted)").count(), 1, "{out}");
        assert!(out.contains("b.example."), "{out}");
    }

    #[test]
    fn a_notify_secret_and_url_are_blanked() {
        let text = "version = 1\n[[notify]]\nkind = \"webhook\"\nurl = \"https://h.example/hook-SECRET-URL\"\nsecret = \"hmac-SECRET\"\n[[notify]]\nkind = \"slack\"\nurl = \"https://hooks.example/T0/B0/slack-SECRET\"\n";
        let out = redact(text);
        for secret in ["hook-SECRET-URL", "hmac-SECRET", "slack-SECRET"] {
            assert!(!out.contains(secret), "{secret} left in:\n{out}");
        }
        assert_eq!(out.matches("(redacted)").count(), 3, "{out}");
    }

    #[test]
    fn a_text_that_is_not_toml_is_withheld() {
        let out = redact("provider = { api_key = \"SECRET\" \n");
        assert!(!out.contains("SECRET"), "{out}");
    }
}
