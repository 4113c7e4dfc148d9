//! A `[[notify]]` table, typed: where to tell what happens (a webhook, a
//! Slack-compatible incoming webhook, e-mail through an SMTP server) and
//! which happenings. The same table is read from a migration file (errors
//! at FILE:LINE:COLUMN) and from `cutover serve`'s config; both hand the
//! raw table and its text here.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::file::RawNotify;
use crate::provider::Secret;

/// What happened, as a notification names it (`on = [...]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Happening {
    /// A step begins a wait longer than a minute before the next.
    Wait,
    /// The switch is done: the records hold the new values.
    Switch,
    /// A step attempt failed (retried or not), or the migration failed.
    Failure,
    /// A rollback began.
    Rollback,
    /// The migration awaits an operator's approval.
    Approval,
    /// The migration ended: done, rolled back or aborted.
    End,
}

impl Happening {
    /// Every happening, in the order of the type.
    pub const ALL: [Happening; 6] = [
        Happening::Wait,
        Happening::Switch,
        Happening::Failure,
        Happening::Rollback,
        Happening::Approval,
        Happening::End,
    ];

    /// The name written in `on = [...]` and sent ("switch").
    pub fn as_str(self) -> &'static str {
        match self {
            Happening::Wait => "wait",
            Happening::Switch => "switch",
            Happening::Failure => "failure",
            Happening::Rollback => "rollback",
            Happening::Approval => "approval",
            Happening::End => "end",
        }
    }

    /// The happening a name stands for.
    pub fn parse(text: &str) -> Option<Happening> {
        Happening::ALL.into_iter().find(|h| h.as_str() == text)
    }
}

impl fmt::Display for Happening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a notification goes.
#[derive(Clone, PartialEq, Eq)]
pub enum Channel {
    /// A JSON POST signed with HMAC-SHA256 (see [`super::sign`]).
    Webhook {
        /// The URL (shown only as its host).
        url: Secret,
        /// The HMAC key.
        secret: Secret,
        /// PEM certificates to verify an `https://` server with instead of
        /// the web's roots (a private CA).
        ca_file: Option<PathBuf>,
    },
    /// A Slack-compatible incoming webhook: `{"text": …}`.
    Slack {
        /// The URL (a secret: a Slack URL is its own token).
        url: Secret,
        /// As a webhook's.
        ca_file: Option<PathBuf>,
    },
    /// A plain-text e-mail through an SMTP server.
    Email {
        /// `host:port` of the SMTP server.
        smtp: String,
        /// The sender.
        from: String,
        /// The recipients.
        to: Vec<String>,
        /// How the connection is protected.
        tls: MailTls,
        /// The login (AUTH PLAIN), over TLS only.
        login: Option<MailLogin>,
        /// PEM certificates to verify the server with instead of the web's
        /// roots (a private CA).
        ca_file: Option<PathBuf>,
    },
}

/// How the e-mail client protects its connection to the SMTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailTls {
    /// Plain text (a local relay or MTA on a trusted path).
    None,
    /// STARTTLS, required: a server that does not offer it is not sent to.
    StartTls,
    /// TLS from the first byte (port 465, "implicit TLS").
    Tls,
}

impl MailTls {
    /// The word written in `tls = …`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailTls::None => "none",
            MailTls::StartTls => "starttls",
            MailTls::Tls => "tls",
        }
    }
}

/// An SMTP login: AUTH PLAIN with a user name and a password (a secret).
#[derive(Clone, PartialEq, Eq)]
pub struct MailLogin {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Secret,
}

/// One `[[notify]]` table.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// Where.
    pub channel: Channel,
    /// Which happenings (every one when the table names none).
    pub on: Vec<Happening>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("channel", &self.label())
            .field("on", &self.on)
            .finish()
    }
}

/// The host of a URL, for showing it without its path (which may be a
/// token).
fn host_of(url: &str) -> &str {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

/// Where a URL is, in words without it: its host, or where it is read from.
fn url_words(url: &Secret) -> String {
    match url {
        Secret::Inline(url) => host_of(url).to_string(),
        Secret::File(path) => format!("the URL in {}", path.display()),
        Secret::Env(name) => format!("the URL in ${name}"),
    }
}

/// An `http://` or `https://` URL with a host and no `user:password@`; the
/// error says what was expected (never the URL).
pub(super) fn check_url(text: &str, key: &str) -> Result<(), String> {
    let Some(rest) = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
    else {
        return Err(format!("{key}: expected an http:// or https:// URL"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(format!(
            "{key}: expected a host after http:// or https:// (and no user:password@)"
        ));
    }
    Ok(())
}

impl Target {
    /// How the target is shown: "webhook to hooks.example.com", "e-mail to
    /// ops@example.com via 127.0.0.1:25" (never a URL's path or a secret).
    pub fn label(&self) -> String {
        match &self.channel {
            Channel::Webhook { url, .. } => format!("webhook to {}", url_words(url)),
            Channel::Slack { url, .. } => format!("slack to {}", url_words(url)),
            Channel::Email { smtp, to, tls, .. } => match tls {
                MailTls::None => format!("e-mail to {} via {smtp}", to.join(", ")),
                tls => format!("e-mail to {} via {smtp} ({})", to.join(", "), tls.as_str()),
            },
        }
    }

    /// True when the target is told of `happening`.
    pub fn wants(&self, happening: Happening) -> bool {
        self.on.is_empty() || self.on.contains(&happening)
    }

    /// A relative `secret_file` or `url_file` taken from `dir`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let secrets: Vec<&mut Secret> = match &mut self.channel {
            Channel::Webhook {
                url,
                secret,
                ca_file,
            } => {
                relative_to(dir, ca_file);
                vec![url, secret]
            }
            Channel::Slack { url, ca_file } => {
                relative_to(dir, ca_file);
                vec![url]
            }
            Channel::Email { login, ca_file, .. } => {
                relative_to(dir, ca_file);
                login.iter_mut().map(|l| &mut l.password).collect()
            }
        };
        for secret in secrets {
            if let Secret::File(path) = secret {
                if path.is_relative() {
                    *path = dir.join(&*path);
                }
            }
        }
    }

    /// Types a raw `[[notify]]` table. An error is the byte offset in the
    /// text it was read from and what was expected; `noted` hears of each
    /// secret written inline (`notify.secret`, a Slack `notify.url`), file
    /// (`notify.secret_file`, `notify.url_file`) and environment variable
    /// (`notify.secret_env`, `notify.url_env`: its name) the table names,
    /// with the offset of its value.
    pub fn from_raw(
        raw: &Spanned<RawNotify>,
        noted: &mut dyn FnMut(Noted, &str, usize),
    ) -> Result<Target, (usize, String)> {
        let table = raw.get_ref();
        let at = |s: &Spanned<String>| s.span().start;
        let Some(kind) = &table.kind else {
            return Err((
                raw.span().start,
                "[[notify]]: expected `kind = \"webhook\"`, \"slack\" or \"email\"".into(),
            ));
        };
        let refuse = |key: &str, value: &Option<Spanned<String>>| match value {
            Some(v) => Err((
                at(v),
                format!(
                    "[[notify]] of kind {:?} takes no `{key}`",
                    kind.get_ref().trim()
                ),
            )),
            None => Ok(()),
        };
        let env_name = |e: &Spanned<String>, key: &str| -> Result<String, (usize, String)> {
            let name = e.get_ref().trim();
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid {
                Ok(name.to_string())
            } else {
                Err((at(e), format!("{key} {name:?}: expected an environment variable's name (letters, digits and '_')")))
            }
        };
        // The URL: inline, from a file (first line) or from a variable.
        let url = |noted: &mut dyn FnMut(Noted, &str, usize),
                   inline_is_secret: bool|
         -> Result<Secret, (usize, String)> {
            match (&table.url, &table.url_file, &table.url_env) {
                (Some(url), None, None) => {
                    let text = url.get_ref().trim();
                    check_url(text, "notify.url").map_err(|why| (at(url), why))?;
                    if inline_is_secret {
                        noted(Noted::Inline, "notify.url", at(url));
                    }
                    Ok(Secret::Inline(text.to_string()))
                }
                (None, Some(f), None) => {
                    noted(Noted::File, "notify.url_file", at(f));
                    Ok(Secret::File(PathBuf::from(f.get_ref().trim())))
                }
                (None, None, Some(e)) => {
                    let name = env_name(e, "notify.url_env")?;
                    noted(Noted::Env("notify.url_env"), &name, at(e));
                    Ok(Secret::Env(name))
                }
                (None, None, None) => Err((
                    raw.span().start,
                    format!(
                        "[[notify]] of kind {:?}: expected `url = \"https://…\"`, `url_file = PATH` or `url_env = NAME`",
                        kind.get_ref().trim()
                    ),
                )),
                (u, f, e) => {
                    let second = [e.as_ref(), f.as_ref(), u.as_ref()]
                        .into_iter()
                        .flatten()
                        .next()
                        .expect("two of three are given");
                    Err((
                        at(second),
                        "give the URL once: url, url_file or url_env, not two".into(),
                    ))
                }
            }
        };
        let mut on = Vec::new();
        if let Some(list) = &table.on {
            for name in list.get_ref() {
                let Some(h) = Happening::parse(name.get_ref().trim()) else {
                    let all: Vec<&str> = Happening::ALL.iter().map(|h| h.as_str()).collect();
                    return Err((
                        at(name),
                        format!(
                            "notify.on: unknown happening {:?}: expected some of {}",
                            name.get_ref(),
                            all.join(", ")
                        ),
                    ));
                };
                if !on.contains(&h) {
                    on.push(h);
                }
            }
            if on.is_empty() {
                return Err((
                    list.span().start,
                    "notify.on is empty: leave it out to be told of everything".into(),
                ));
            }
        }
        let channel = match kind.get_ref().trim() {
            "webhook" => {
                refuse("smtp", &table.smtp)?;
                refuse("from", &table.from)?;
                refuse_mail_keys(table, &refuse)?;
                if let Some(to) = &table.to {
                    return Err((to.span().start, "[[notify]] of kind \"webhook\" takes no `to`".into()));
                }
                let url = url(noted, false)?;
                let secret = one_secret(
                    [&table.secret, &table.secret_file, &table.secret_env],
                    ["notify.secret", "notify.secret_file", "notify.secret_env"],
                    ("the signing key", true),
                    noted,
                    &env_name,
                )?
                .ok_or_else(|| {
                    (
                        raw.span().start,
                        "[[notify]] of kind \"webhook\": expected the signing key: `secret_file = PATH`, `secret_env = NAME` or `secret`".to_string(),
                    )
                })?;
                Channel::Webhook {
                    url,
                    secret,
                    ca_file: https_ca_file(table),
                }
            }
            "slack" => {
                for (key, value) in [
                    ("smtp", &table.smtp),
                    ("from", &table.from),
                    ("secret", &table.secret),
                    ("secret_file", &table.secret_file),
                    ("secret_env", &table.secret_env),
                ] {
                    refuse(key, value)?;
                }
                if let Some(to) = &table.to {
                    return Err((to.span().start, "[[notify]] of kind \"slack\" takes no `to`".into()));
                }
                refuse_mail_keys(table, &refuse)?;
                Channel::Slack {
                    url: url(noted, true)?,
                    ca_file: https_ca_file(table),
                }
            }
            "email" => {
                for (key, value) in [
                    ("url", &table.url),
                    ("url_file", &table.url_file),
                    ("url_env", &table.url_env),
                    ("secret", &table.secret),
                    ("secret_file", &table.secret_file),
                    ("secret_env", &table.secret_env),
                ] {
                    refuse(key, value)?;
                }
                let Some(smtp) = &table.smtp else {
                    return Err((raw.span().start, "[[notify]] of kind \"email\": expected `smtp = \"host:port\"` (the SMTP server)".into()));
                };
                let server = smtp.get_ref().trim();
                let port_ok = server
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
                if !port_ok {
                    return Err((at(smtp), format!("notify.smtp {server:?}: expected \"host:port\", e.g. \"127.0.0.1:25\"")));
                }
                let Some(from) = &table.from else {
                    return Err((raw.span().start, "[[notify]] of kind \"email\": expected `from = \"cutover@example.com\"`".into()));
                };
                let address = |s: &Spanned<String>, key: &str| {
                    let a = s.get_ref().trim();
                    let ok = a.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
                        && !a.contains([' ', '<', '>', '\r', '\n']);
                    if ok {
                        Ok(a.to_string())
                    } else {
                        Err((at(s), format!("notify.{key} {a:?}: expected an e-mail address such as \"ops@example.com\"")))
                    }
                };
                let from = address(from, "from")?;
                let Some(to) = &table.to else {
                    return Err((raw.span().start, "[[notify]] of kind \"email\": expected `to = [\"ops@example.com\"]`".into()));
                };
                let to = to
                    .get_ref()
                    .iter()
                    .map(|t| address(t, "to"))
                    .collect::<Result<Vec<_>, _>>()?;
                if to.is_empty() {
                    return Err((table.to.as_ref().map_or(0, |t| t.span().start), "notify.to is empty: expected at least one address".into()));
                }
                let login = login(table, raw.span().start, noted, &env_name)?;
                let tls = match &table.tls {
                    None if login.is_some() => MailTls::StartTls,
                    None => MailTls::None,
                    Some(t) => match t.get_ref().trim() {
                        "none" => MailTls::None,
                        "starttls" => MailTls::StartTls,
                        "tls" => MailTls::Tls,
                        other => return Err((at(t), format!("notify.tls {other:?}: expected \"none\", \"starttls\" (STARTTLS, required) or \"tls\" (TLS from the first byte, as on port 465)"))),
                    },
                };
                if let (MailTls::None, Some(name)) = (tls, &table.username) {
                    return Err((at(name), "notify.username: a login over plain text sends the password in clear: set tls = \"starttls\" or \"tls\"".into()));
                }
                let ca_file = match (&table.ca_file, tls) {
                    (Some(f), MailTls::None) => {
                        return Err((at(f), "notify.ca_file: there is no certificate to check with tls = \"none\"".into()))
                    }
                    (Some(f), _) => Some(PathBuf::from(f.get_ref().trim())),
                    (None, _) => None,
                };
                Channel::Email { smtp: server.to_string(), from, to, tls, login, ca_file }
            }
            other => {
                return Err((
                    at(kind),
                    format!("[[notify]]: unknown kind {other:?}: expected \"webhook\", \"slack\" or \"email\""),
                ))
            }
        };
        Ok(Target { channel, on })
    }
}

/// What [`Target::from_raw`] tells its caller of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noted {
    /// A secret written in the table (its key).
    Inline,
    /// A file holding a secret (its key).
    File,
    /// An environment variable holding a secret (its name; the key).
    Env(&'static str),
}

/// An error of a table: the byte offset in its text and what was expected.
type TableError = (usize, String);

/// Refuses a key given in a table that takes none.
type KeyRefusal<'a> = dyn Fn(&str, &Option<Spanned<String>>) -> Result<(), TableError> + 'a;

/// Reads an environment variable's name given under a key.
type EnvName<'a> = dyn Fn(&Spanned<String>, &str) -> Result<String, TableError> + 'a;

/// A relative path taken from `dir`.
fn relative_to(dir: &Path, path: &mut Option<PathBuf>) {
    if let Some(path) = path.as_mut().filter(|p| p.is_relative()) {
        *path = dir.join(&*path);
    }
}

/// A webhook's or Slack's `ca_file`.
fn https_ca_file(table: &RawNotify) -> Option<PathBuf> {
    table
        .ca_file
        .as_ref()
        .map(|f| PathBuf::from(f.get_ref().trim()))
}

/// Refuses the e-mail-only keys (`tls`, `username`, `password…`) in a
/// table of another kind.
fn refuse_mail_keys(table: &RawNotify, refuse: &KeyRefusal<'_>) -> Result<(), (usize, String)> {
    for (key, value) in [
        ("tls", &table.tls),
        ("username", &table.username),
        ("password", &table.password),
        ("password_file", &table.password_file),
        ("password_env", &table.password_env),
    ] {
        refuse(key, value)?;
    }
    Ok(())
}

/// A secret given one way of three — inline, by file, by environment
/// variable, under `keys` in that order — each way noted; `None` when none
/// is. `what` names it when two are given; `trim` trims an inline value.
fn one_secret(
    given: [&Option<Spanned<String>>; 3],
    keys: [&'static str; 3],
    (what, trim): (&str, bool),
    noted: &mut dyn FnMut(Noted, &str, usize),
    env_name: &EnvName<'_>,
) -> Result<Option<Secret>, TableError> {
    let at = |s: &Spanned<String>| s.span().start;
    let [inline_key, file_key, env_key] = keys;
    match given {
        [None, None, None] => Ok(None),
        [Some(v), None, None] => {
            if v.get_ref().trim().is_empty() {
                return Err((at(v), format!("{inline_key} is empty")));
            }
            noted(Noted::Inline, inline_key, at(v));
            let value = match trim {
                true => v.get_ref().trim().to_string(),
                false => v.get_ref().clone(),
            };
            Ok(Some(Secret::Inline(value)))
        }
        [None, Some(f), None] => {
            noted(Noted::File, file_key, at(f));
            Ok(Some(Secret::File(PathBuf::from(f.get_ref().trim()))))
        }
        [None, None, Some(e)] => {
            let name = env_name(e, env_key)?;
            noted(Noted::Env(env_key), &name, at(e));
            Ok(Some(Secret::Env(name)))
        }
        [v, f, e] => {
            let second = [e.as_ref(), f.as_ref(), v.as_ref()]
                .into_iter()
                .flatten()
                .next()
                .expect("two of three are given");
            let short = |key: &str| key.trim_start_matches("notify.").to_string();
            Err((
                at(second),
                format!(
                    "give {what} once: {}, {} or {}, not two",
                    short(file_key),
                    short(env_key),
                    short(inline_key)
                ),
            ))
        }
    }
}

/// An e-mail table's login: `username` with the password inline, from a
/// file or from an environment variable (each noted), or none.
fn login(
    table: &RawNotify,
    start: usize,
    noted: &mut dyn FnMut(Noted, &str, usize),
    env_name: &EnvName<'_>,
) -> Result<Option<MailLogin>, (usize, String)> {
    let at = |s: &Spanned<String>| s.span().start;
    let password = one_secret(
        [&table.password, &table.password_file, &table.password_env],
        [
            "notify.password",
            "notify.password_file",
            "notify.password_env",
        ],
        ("the password", false),
        noted,
        env_name,
    )?;
    match (&table.username, password) {
        (None, None) => Ok(None),
        (Some(name), Some(password)) => {
            let username = name.get_ref().trim();
            if username.is_empty() || username.contains(['\r', '\n', '\0']) {
                return Err((at(name), "notify.username: expected the login's user name".into()));
            }
            Ok(Some(MailLogin {
                username: username.to_string(),
                password,
            }))
        }
        (Some(name), None) => Err((
            at(name),
            "notify.username: expected its password: `password_file = PATH`, `password_env = NAME` or `password`".into(),
        )),
        (None, Some(_)) => Err((
            start,
            "[[notify]] of kind \"email\": a password without `username`: expected the login's user name".into(),
        )),
    }
}
