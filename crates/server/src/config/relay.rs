//! The `[[relay]]` tables of the config: the other cutover relays of the
//! domains this serve migrates (MX 20 beside this serve's MX 10…), each
//! steered through its own control plane by the migration's mail steps.
//!
//! ```toml
//! [[relay]]
//! name = "mx2"
//! url = "https://mx2.example.com:8443"   # that serve's [http]
//! ca_file = "/etc/cutover/mx2-ca.pem"    # https only; default: the web's roots
//! token_file = "/etc/cutover/mx2.token"  # or token_env = "NAME", or token = "…"
//! ```
//!
//! The token is a secret: it is read when a step needs it (a changed file
//! is picked up), sent only in the `Authorization` header, and never shown
//! (`Debug` prints `<secret>`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// The most `[[relay]]` tables a config may hold.
pub const MAX_RELAYS: usize = 8;

/// One `[[relay]]` table, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayPeer {
    /// How the relay is named in evidence and errors ("mx2").
    pub name: Spanned<String>,
    /// That serve's control plane: `http://host:port` or `https://host:port`.
    pub url: Spanned<String>,
    /// The CA certificate(s) its HTTPS certificate is checked against.
    #[serde(default)]
    pub ca_file: Option<Spanned<PathBuf>>,
    /// A file holding its admin token.
    #[serde(default)]
    pub token_file: Option<Spanned<PathBuf>>,
    /// The environment variable holding its admin token.
    #[serde(default)]
    pub token_env: Option<Spanned<String>>,
    /// Its admin token, in the config itself.
    #[serde(default)]
    pub token: Option<Spanned<Secret>>,
}

/// A token written in the config: never shown.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    /// `<secret>`, whatever it holds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl RelayPeer {
    /// The URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.url.get_ref().trim_end_matches('/')
    }

    /// The admin token, read from where the table says (the error names
    /// the place, never the token).
    pub fn token(&self) -> Result<String, String> {
        let name = self.name.get_ref();
        let token = if let Some(file) = &self.token_file {
            let path = file.get_ref();
            std::fs::read_to_string(path)
                .map_err(|e| format!("relay {name}: token_file {}: {e}", path.display()))?
        } else if let Some(env) = &self.token_env {
            std::env::var(env.get_ref()).map_err(|_| {
                format!(
                    "relay {name}: token_env {}: the variable is not set (or not UTF-8)",
                    env.get_ref()
                )
            })?
        } else if let Some(token) = &self.token {
            token.get_ref().0.clone()
        } else {
            return Err(format!("relay {name}: no token is configured"));
        };
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err(format!("relay {name}: its token is empty"));
        }
        Ok(token)
    }

    /// A relative `token_file` or `ca_file` taken from `dir` (the config's folder).
    pub fn resolve_paths(&mut self, dir: &Path) {
        for path in [&mut self.token_file, &mut self.ca_file]
            .into_iter()
            .flatten()
        {
            if path.get_ref().is_relative() {
                *path.get_mut() = dir.join(path.get_ref());
            }
        }
    }
}

/// Checks the `[[relay]]` tables: at most [`MAX_RELAYS`], each with a
/// name of its own, an http(s) URL, one way to its token, `ca_file` only
/// for https. An error carries the byte offset of what is wrong.
pub fn validate(relays: &[RelayPeer]) -> Result<(), (usize, String)> {
    if relays.len() > MAX_RELAYS {
        let at = relays[MAX_RELAYS].name.span().start;
        return Err((
            at,
            format!(
                "{} [[relay]] tables: at most {MAX_RELAYS} are allowed",
                relays.len()
            ),
        ));
    }
    for (index, relay) in relays.iter().enumerate() {
        let name = relay.name.get_ref();
        let name_ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err((
                relay.name.span().start,
                format!("relay.name {name:?}: expected 1 to 63 letters, digits, '-', '_' or '.'"),
            ));
        }
        if relays[..index]
            .iter()
            .any(|other| other.name.get_ref() == name)
        {
            return Err((
                relay.name.span().start,
                format!("relay.name {name:?} is given to two [[relay]] tables"),
            ));
        }
        let url = relay.url.get_ref();
        let https = url.starts_with("https://");
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        let host = rest.map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
        let url_ok = host.is_some_and(|host| !host.is_empty() && !host.contains('@'))
            && rest.is_some_and(|rest| !rest.contains(['?', '#']))
            && !url.contains(char::is_whitespace);
        if !url_ok {
            return Err((
                relay.url.span().start,
                format!(
                    "relay.url of {name}: expected http://host:port or https://host:port \
                     (that serve's [http]; no user:password@, query or fragment)"
                ),
            ));
        }
        if let Some(ca_file) = &relay.ca_file {
            if !https {
                return Err((
                    ca_file.span().start,
                    format!("relay.ca_file of {name}: only for an https:// url"),
                ));
            }
        }
        let ways = [
            relay.token_file.as_ref().map(|t| t.span().start),
            relay.token_env.as_ref().map(|t| t.span().start),
            relay.token.as_ref().map(|t| t.span().start),
        ];
        let mut given: Vec<usize> = ways.into_iter().flatten().collect();
        given.sort_unstable();
        match given.as_slice() {
            [] => {
                return Err((
                    relay.name.span().start,
                    format!(
                        "[[relay]] {name}: expected its admin token: \
                         `token_file = PATH`, `token_env = NAME` or `token`"
                    ),
                ))
            }
            [_] => {}
            [_, second, ..] => {
                return Err((
                    *second,
                    format!(
                        "[[relay]] {name}: give the token once: token_file, token_env or token, not two"
                    ),
                ))
            }
        }
        if let Some(env) = &relay.token_env {
            let text = env.get_ref();
            if text.is_empty() || text.contains(['=', '\0']) {
                return Err((
                    env.span().start,
                    format!("relay.token_env of {name}: expected an environment variable's name"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// Parses a config of `[[relay]]` tables (and nothing else).
    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, "t.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn relays_are_read_and_their_token_never_shown() {
        let config = parse(
            "[[relay]]\nname = \"mx2\"\nurl = \"http://127.0.0.1:8080/\"\ntoken = \"s3cr3t-token\"\n\
             [[relay]]\nname = \"mx3\"\nurl = \"https://mx3.example:8443\"\nca_file = \"ca.pem\"\ntoken_env = \"MX3\"\n",
        )
        .unwrap();
        assert_eq!(config.relay.len(), 2);
        assert_eq!(config.relay[0].base(), "http://127.0.0.1:8080");
        assert_eq!(config.relay[0].token().unwrap(), "s3cr3t-token");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t"), "the token in Debug: {shown}");
        let error = config.relay[1].token().unwrap_err();
        assert!(
            error.contains("relay mx3: token_env MX3"),
            "names the relay and the variable: {error}"
        );
    }

    #[test]
    fn a_bad_relay_names_its_line_and_column() {
        for (text, said) in [
            (
                "\n[[relay]]\nname = \"mx2\"\nurl = \"ftp://h\"\ntoken = \"t\"\n",
                "line 4, column 7: relay.url of mx2: expected http://host:port or https://host:port",
            ),
            (
                "[[relay]]\nname = \"mx2\"\nurl = \"http://h:1\"\n",
                "line 2, column 8: [[relay]] mx2: expected its admin token",
            ),
            (
                "[[relay]]\nname = \"mx2\"\nurl = \"http://h:1\"\ntoken = \"t\"\ntoken_env = \"T\"\n",
                "line 5, column 13: [[relay]] mx2: give the token once",
            ),
            (
                "[[relay]]\nname = \"mx2\"\nurl = \"http://h:1\"\nca_file = \"c.pem\"\ntoken = \"t\"\n",
                "line 4, column 11: relay.ca_file of mx2: only for an https:// url",
            ),
            (
                "[[relay]]\nname = \"mx2\"\nurl = \"http://h:1\"\ntoken = \"t\"\n\
                 [[relay]]\nname = \"mx2\"\nurl = \"http://h:2\"\ntoken = \"t\"\n",
                "line 6, column 8: relay.name \"mx2\" is given to two [[relay]] tables",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(said), "expected {said:?}, saw {error}");
            assert!(!error.contains("\"t\""), "no token in the error: {error}");
        }
        let many: String = (0..9)
            .map(|i| {
                format!("[[relay]]\nname = \"mx{i}\"\nurl = \"http://h:{i}\"\ntoken = \"t\"\n")
            })
            .collect();
        let error = parse(&many).unwrap_err();
        assert!(
            error.contains("line 34, column 8: 9 [[relay]] tables: at most 8 are allowed"),
            "{error}"
        );
    }
}
