//! TSIG keys: a name, an algorithm and a secret, read from the formats BIND
//! (`key "name" { … };`), Knot (`key: - id: …`), the `-y alg:name:secret`
//! option of dig/kdig/nsupdate, and cutover's own config (`[[key]]`), and
//! written back in BIND and Knot form; and the [`KeyRing`] verification
//! looks keys up in.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use hickory_proto::rr::Name;

use super::algorithm::{Algorithm, UnknownAlgorithm};

/// A TSIG key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// The key's name (compared case-insensitively).
    pub name: Name,
    /// The HMAC algorithm.
    pub algorithm: Algorithm,
    /// The shared secret (raw bytes, base64 in files).
    pub secret: Vec<u8>,
}

/// A key as cutover's config file gives it: `[[key]] name, algorithm, secret`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key's name, e.g. `transfer.example.`.
    pub name: String,
    /// The algorithm, e.g. `hmac-sha256` (the default).
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

/// Keys by name, looked up case-insensitively.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    /// Keys by their lowercase uncompressed wire name.
    keys: BTreeMap<Vec<u8>, Arc<Key>>,
}

/// Why a key could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The name is not a domain name.
    #[error("invalid key name {name:?}: {reason}")]
    Name {
        /// The name as written.
        name: String,
        /// What hickory said about it.
        reason: String,
    },
    /// The algorithm is not one we know.
    #[error(transparent)]
    Algorithm(#[from] UnknownAlgorithm),
    /// The secret is not base64.
    #[error("secret of key {key:?} is not valid base64: {reason}")]
    Secret {
        /// The key's name.
        key: String,
        /// What the decoder said.
        reason: String,
    },
    /// The secret decodes to nothing.
    #[error("secret of key {0:?} is empty")]
    EmptySecret(String),
    /// Two keys with the same name.
    #[error("key {0:?} is defined twice")]
    Duplicate(String),
    /// A key file that does not have the expected shape.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line in the text.
        line: usize,
        /// What was expected and what was found.
        message: String,
    },
}

/// The algorithm a `[[key]]` gets when it names none.
fn default_algorithm() -> String {
    Algorithm::HmacSha256.text().to_string()
}

impl Key {
    /// A key named `name` (text) with a raw `secret`, which must not be empty.
    pub fn new(name: &str, algorithm: Algorithm, secret: Vec<u8>) -> Result<Key, KeyError> {
        let mut parsed = Name::from_ascii(name).map_err(|e| KeyError::Name {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        parsed.set_fqdn(true);
        if parsed.is_root() {
            return Err(KeyError::Name {
                name: name.to_string(),
                reason: "a key needs a name other than the root".into(),
            });
        }
        if secret.is_empty() {
            return Err(KeyError::EmptySecret(name.to_string()));
        }
        Ok(Key {
            name: parsed,
            algorithm,
            secret,
        })
    }

    /// A key from its three parts as text: name, algorithm, base64 secret.
    pub fn from_text(name: &str, algorithm: &str, secret: &str) -> Result<Key, KeyError> {
        let algorithm = Algorithm::from_str(algorithm)?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|e| KeyError::Secret {
                key: name.to_string(),
                reason: e.to_string(),
            })?;
        Key::new(name, algorithm, secret)
    }

    /// A key from cutover's config shape.
    pub fn from_config(config: &KeyConfig) -> Result<Key, KeyError> {
        Key::from_text(&config.name, &config.algorithm, &config.secret)
    }

    /// A key from the `[alg:]name:secret` form of `dig -y`, `kdig -y`,
    /// `knsupdate -y` and `nsupdate -y` (the algorithm defaults to hmac-sha256).
    pub fn from_short(text: &str) -> Result<Key, KeyError> {
        let parts: Vec<&str> = text.trim().split(':').collect();
        match parts.as_slice() {
            [name, secret] => Key::from_text(name, Algorithm::HmacSha256.text(), secret),
            [algorithm, name, secret] => Key::from_text(name, algorithm, secret),
            _ => Err(KeyError::Syntax {
                line: 1,
                message: format!("expected [algorithm:]name:secret, found {text:?}"),
            }),
        }
    }

    /// Every `key "name" { algorithm …; secret "…"; };` statement of a BIND
    /// key file (as `tsig-keygen` writes it). Comments (`#`, `//`, `/* */`)
    /// are skipped; any other statement is an error.
    pub fn parse_bind(text: &str) -> Result<Vec<Key>, KeyError> {
        let tokens = bind_tokens(text)?;
        let mut keys = Vec::new();
        let mut at = 0;
        while at < tokens.len() {
            let (line, word) = &tokens[at];
            if !word.eq_ignore_ascii_case("key") {
                return Err(syntax(*line, format!("expected `key`, found {word:?}")));
            }
            let name = token(&tokens, at + 1, "a key name")?;
            expect(&tokens, at + 2, "{")?;
            at += 3;
            let (mut algorithm, mut secret) = (None, None);
            loop {
                let (line, word) = token(&tokens, at, "`algorithm`, `secret` or `}`")?;
                if word == "}" {
                    expect(&tokens, at + 1, ";")?;
                    at += 2;
                    break;
                }
                let value = token(&tokens, at + 1, "a value")?.1.clone();
                expect(&tokens, at + 2, ";")?;
                match word.to_ascii_lowercase().as_str() {
                    "algorithm" => algorithm = Some(value),
                    "secret" => secret = Some(value),
                    _ => return Err(syntax(*line, format!("unknown key option {word:?}"))),
                }
                at += 3;
            }
            let line = tokens[at - 1].0;
            let algorithm = algorithm
                .ok_or_else(|| syntax(line, format!("key {:?} has no algorithm", name.1)))?;
            let secret =
                secret.ok_or_else(|| syntax(line, format!("key {:?} has no secret", name.1)))?;
            keys.push(Key::from_text(&name.1, &algorithm, &secret)?);
        }
        Ok(keys)
    }

    /// Every key of the `key:` section of a Knot config (as `keymgr -t`
    /// writes it): `- id: NAME` followed by `algorithm:` and `secret:` lines.
    /// Other sections are skipped; without a `key:` line the whole text is
    /// read as that section's list.
    pub fn parse_knot(text: &str) -> Result<Vec<Key>, KeyError> {
        let has_section = text
            .lines()
            .any(|l| strip_hash_comment(l).trim_end() == "key:");
        let mut in_section = !has_section;
        let mut keys = Vec::new();
        /// A key whose lines are still being read: line, id, algorithm, secret.
        type Partial = (usize, String, Option<String>, Option<String>);
        let mut current: Option<Partial> = None;
        let finish = |partial: Partial| -> Result<Key, KeyError> {
            let (line, id, algorithm, secret) = partial;
            let algorithm =
                algorithm.ok_or_else(|| syntax(line, format!("key {id:?} has no algorithm")))?;
            let secret = secret.ok_or_else(|| syntax(line, format!("key {id:?} has no secret")))?;
            Key::from_text(&id, &algorithm, &secret)
        };
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = strip_hash_comment(raw).trim_end();
            if content.trim().is_empty() {
                continue;
            }
            if !content.starts_with([' ', '\t', '-']) {
                // A top-level section header.
                if let Some(partial) = current.take() {
                    keys.push(finish(partial)?);
                }
                in_section = content == "key:";
                continue;
            }
            if !in_section {
                continue;
            }
            let mut item = content.trim_start();
            if let Some(rest) = item.strip_prefix('-') {
                if let Some(partial) = current.take() {
                    keys.push(finish(partial)?);
                }
                item = rest.trim_start();
                let (field, value) = knot_field(line, item)?;
                if field != "id" {
                    return Err(syntax(line, format!("expected `id:`, found {field:?}")));
                }
                current = Some((line, value, None, None));
                continue;
            }
            let (field, value) = knot_field(line, item)?;
            let Some(partial) = current.as_mut() else {
                return Err(syntax(line, format!("{field:?} before any `- id:`")));
            };
            match field.as_str() {
                "algorithm" => partial.2 = Some(value),
                "secret" => partial.3 = Some(value),
                _ => return Err(syntax(line, format!("unknown key option {field:?}"))),
            }
        }
        if let Some(partial) = current.take() {
            keys.push(finish(partial)?);
        }
        Ok(keys)
    }

    /// The key's name as lowercase uncompressed wire bytes.
    pub fn wire_name(&self) -> Vec<u8> {
        name_to_wire(&self.name)
    }

    /// The secret in base64.
    pub fn secret_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.secret)
    }

    /// The key as a BIND `key` statement.
    pub fn to_bind(&self) -> String {
        format!(
            "key \"{}\" {{\n\talgorithm {};\n\tsecret \"{}\";\n}};\n",
            self.name.to_ascii().trim_end_matches('.'),
            self.algorithm,
            self.secret_base64()
        )
    }

    /// The key as an entry of Knot's `key:` section.
    pub fn to_knot(&self) -> String {
        let mut out = String::from("key:\n");
        let _ = writeln!(out, "  - id: {}", self.name.to_ascii());
        let _ = writeln!(out, "    algorithm: {}", self.algorithm);
        let _ = writeln!(out, "    secret: {}", self.secret_base64());
        out
    }

    /// The key in the `alg:name:secret` form of `-y` options.
    pub fn to_short(&self) -> String {
        format!(
            "{}:{}:{}",
            self.algorithm,
            self.name.to_ascii(),
            self.secret_base64()
        )
    }
}

impl std::fmt::Debug for Key {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name.to_ascii())
            .field("algorithm", &self.algorithm)
            .field("secret", &"<hidden>")
            .finish()
    }
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> KeyRing {
        KeyRing::default()
    }

    /// A ring of `keys`; two with the same name are an error.
    pub fn from_keys(keys: impl IntoIterator<Item = Key>) -> Result<KeyRing, KeyError> {
        let mut ring = KeyRing::new();
        for key in keys {
            ring.insert(key)?;
        }
        Ok(ring)
    }

    /// Adds a key; a key of the same name (in any case) is an error.
    pub fn insert(&mut self, key: Key) -> Result<(), KeyError> {
        let wire = key.wire_name();
        if self.keys.contains_key(&wire) {
            return Err(KeyError::Duplicate(key.name.to_ascii()));
        }
        self.keys.insert(wire, Arc::new(key));
        Ok(())
    }

    /// The key called `name`, in any case.
    pub fn get(&self, name: &Name) -> Option<&Arc<Key>> {
        self.keys.get(&name_to_wire(name))
    }

    /// The key whose lowercase wire name is `wire`.
    pub(crate) fn get_wire(&self, wire: &[u8]) -> Option<&Arc<Key>> {
        self.keys.get(wire)
    }

    /// How many keys the ring holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in canonical name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Key>> {
        self.keys.values()
    }
}

/// `name` as lowercase uncompressed wire bytes (always ending in the root).
pub(crate) fn name_to_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        // hickory keeps labels at most 63 bytes long.
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// A `KeyError::Syntax` at `line`.
fn syntax(line: usize, message: String) -> KeyError {
    KeyError::Syntax { line, message }
}

/// Token `at`, or an error saying `what` was expected at the end of the text.
fn token<'t>(
    tokens: &'t [(usize, String)],
    at: usize,
    what: &str,
) -> Result<&'t (usize, String), KeyError> {
    tokens.get(at).ok_or_else(|| {
        let line = tokens.last().map_or(1, |t| t.0);
        syntax(line, format!("expected {what}, found the end of the text"))
    })
}

/// Checks that token `at` is the punctuation `want`.
fn expect(tokens: &[(usize, String)], at: usize, want: &str) -> Result<(), KeyError> {
    let (line, word) = token(tokens, at, &format!("`{want}`"))?;
    if word == want {
        Ok(())
    } else {
        Err(syntax(*line, format!("expected `{want}`, found {word:?}")))
    }
}

/// Splits BIND config text into (line, token): words, quoted strings (quotes
/// removed), and the punctuation `{`, `}`, `;`. Comments are dropped.
fn bind_tokens(text: &str) -> Result<Vec<(usize, String)>, KeyError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut last = ' ';
                loop {
                    let Some(c) = chars.next() else {
                        return Err(syntax(start, "unterminated /* comment".into()));
                    };
                    if c == '\n' {
                        line += 1;
                    }
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '{' | '}' | ';' => tokens.push((line, c.to_string())),
            '"' => {
                let start = line;
                let mut word = String::new();
                loop {
                    match chars.next() {
                        None => return Err(syntax(start, "unterminated quoted string".into())),
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            word.push(c);
                        }
                    }
                }
                tokens.push((start, word));
            }
            c => {
                let mut word = c.to_string();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '{' | '}' | ';' | '"') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push((line, word));
            }
        }
    }
    Ok(tokens)
}

/// A Knot line without its `#` comment (base64 and names never hold `#`).
fn strip_hash_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(before, _)| before)
}

/// Splits `field: value` (the value unquoted).
fn knot_field(line: usize, item: &str) -> Result<(String, String), KeyError> {
    let (field, value) = item
        .split_once(':')
        .ok_or_else(|| syntax(line, format!("expected `field: value`, found {item:?}")))?;
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    Ok((field.trim().to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `tsig-keygen -a hmac-sha256 xfr.example.` writes.
    const BIND: &str = r#"# a comment
key "xfr.example." {
	algorithm hmac-sha256;
	secret "q1SXa5nV3l9Mz7K0EYXlPjxfDt6vNfV9v0k1b7GHHgY=";
};
/* another */ key second { algorithm "HMAC-SHA512"; secret "c2Vjb25k"; }; // end
"#;

    /// What `keymgr -t xfr.example. hmac-sha256` writes, inside a larger config.
    const KNOT: &str = "server:\n    listen: 127.0.0.1@53\n\
# hmac-sha256:xfr.example.:q1SXa5nV3l9Mz7K0EYXlPjxfDt6vNfV9v0k1b7GHHgY=\n\
key:\n  - id: xfr.example.\n    algorithm: hmac-sha256\n    secret: q1SXa5nV3l9Mz7K0EYXlPjxfDt6vNfV9v0k1b7GHHgY=\n\
  - id: \"second\"\n    algorithm: hmac-md5\n    secret: c2Vjb25k   # comment\n\
acl:\n  - id: a\n    key: xfr.example.\n";

    /// BIND key files with comments, quoting and two keys.
    #[test]
    fn parses_bind_key_files() {
        let keys = Key::parse_bind(BIND).unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert_eq!(keys[0].name.to_ascii(), "xfr.example.");
        assert_eq!(keys[0].algorithm, Algorithm::HmacSha256);
        assert_eq!(keys[0].secret.len(), 32);
        assert_eq!(keys[1].name.to_ascii(), "second.");
        assert_eq!(keys[1].algorithm, Algorithm::HmacSha512);
        assert_eq!(keys[1].secret, b"second");
        // Written and read back, unchanged.
        assert_eq!(
            Key::parse_bind(&keys[0].to_bind()).unwrap(),
            vec![keys[0].clone()]
        );
    }

    /// Knot's `key:` section, skipping the other sections.
    #[test]
    fn parses_knot_key_sections() {
        let keys = Key::parse_knot(KNOT).unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert_eq!(keys[0].name.to_ascii(), "xfr.example.");
        assert_eq!(keys[1].algorithm, Algorithm::HmacMd5);
        assert_eq!(keys[1].secret, b"second");
        assert_eq!(
            Key::parse_knot(&keys[0].to_knot()).unwrap(),
            vec![keys[0].clone()]
        );
        let bare = "- id: k\n  algorithm: hmac-sha384\n  secret: c2Vjb25k\n";
        assert_eq!(
            Key::parse_knot(bare).unwrap()[0].algorithm,
            Algorithm::HmacSha384
        );
    }

    /// The `-y` form and cutover's config form.
    #[test]
    fn parses_short_and_config_forms() {
        let key = Key::from_short("hmac-sha1:K.Example:c2Vjb25k").unwrap();
        assert_eq!(key.algorithm, Algorithm::HmacSha1);
        assert_eq!(Key::from_short(&key.to_short()).unwrap(), key);
        let config: KeyConfig =
            toml::from_str("name = \"k.example.\"\nsecret = \"c2Vjb25k\"\n").unwrap();
        let key = Key::from_config(&config).unwrap();
        assert_eq!(key.algorithm, Algorithm::HmacSha256);
        assert!(toml::from_str::<KeyConfig>("name='a'\nsecret='b'\nfudge=3\n").is_err());
    }

    /// Each bad input is named in the error.
    #[test]
    fn errors_name_the_bad_input() {
        let cases = [
            (
                Key::from_text("k", "hmac-sha224", "c2Vjb25k"),
                "hmac-sha224",
            ),
            (Key::from_text("k", "hmac-sha256", "not base64!"), "base64"),
            (Key::from_text("k", "hmac-sha256", ""), "empty"),
            (Key::from_text("a..b", "hmac-sha256", "c2Vjb25k"), "a..b"),
            (Key::from_text(".", "hmac-sha256", "c2Vjb25k"), "root"),
        ];
        for (result, needle) in cases {
            let text = result.unwrap_err().to_string();
            assert!(text.contains(needle), "expected {needle:?} in {text:?}");
        }
        let text = Key::parse_bind("key k { algorithm hmac-sha256; };")
            .unwrap_err()
            .to_string();
        assert!(text.contains("no secret"), "{text}");
        let text = Key::parse_bind("options { };").unwrap_err().to_string();
        assert!(
            text.contains("line 1") && text.contains("options"),
            "{text}"
        );
        let text = Key::parse_bind("key k {\n algorithm hmac-sha256;\n secret \"x").unwrap_err();
        assert!(text.to_string().contains("line 3"), "{text}");
        let text = Key::parse_knot("key:\n  - id: k\n    secret: c2Vjb25k\n").unwrap_err();
        assert!(text.to_string().contains("no algorithm"), "{text}");
    }

    /// Lookup ignores case; a second key of the same name is refused.
    #[test]
    fn key_ring_is_case_insensitive() {
        let mut ring = KeyRing::new();
        ring.insert(Key::from_text("Xfr.Example", "hmac-sha256", "c2Vjb25k").unwrap())
            .unwrap();
        let found = ring.get(&Name::from_ascii("xFR.exAMPLE.").unwrap());
        assert!(found.is_some());
        let again = Key::from_text("XFR.EXAMPLE.", "hmac-sha512", "c2Vjb25k").unwrap();
        assert_eq!(
            ring.insert(again),
            Err(KeyError::Duplicate("XFR.EXAMPLE.".into()))
        );
        assert_eq!(ring.len(), 1);
        assert!(format!("{:?}", ring).contains("<hidden>"));
    }
}
