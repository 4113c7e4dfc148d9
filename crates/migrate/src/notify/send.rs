//! Sending one notice: a signed webhook POST, a Slack-compatible POST, or
//! an e-mail through an SMTP server (a small client: EHLO, STARTTLS or
//! TLS from the first byte when asked, AUTH PLAIN over TLS, MAIL, RCPT,
//! DATA, QUIT; certificates checked against the web's roots or a private
//! CA's file).
//! Each attempt is bounded by [`SEND_TIMEOUT`]; an error never holds a
//! secret (a URL's path is left out of it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use sha2::Sha256;

use super::target::{MailLogin, MailTls};
use super::{Channel, Notice};

/// The longest one attempt may take (connecting, sending, the answer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The webhook signature of `body` sent at `timestamp` (unix seconds):
/// the hex HMAC-SHA256, keyed with `secret`, of `"<timestamp>.<body>"`.
/// Sent as `X-Cutover-Signature: sha256=<hex>` beside
/// `X-Cutover-Timestamp: <timestamp>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends `notice` through `channel` at `now`; the error says why it was
/// not taken, in words without secrets.
pub(super) fn send(channel: &Channel, notice: &Notice, now: Timestamp) -> Result<(), String> {
    match channel {
        Channel::Webhook {
            url,
            secret,
            ca_file,
        } => {
            let url = revealed_url(url)?;
            let url = url.as_str();
            let key = secret
                .reveal("the webhook's signing key")
                .map_err(|e| match e {
                    crate::provider::BuildError::Invalid(why)
                    | crate::provider::BuildError::Unavailable(why) => why,
                })?;
            let body = notice.json();
            let stamp = now.as_second();
            let signature = sign(key.as_bytes(), stamp, body.as_bytes());
            post(
                url,
                &body,
                &[
                    ("X-Cutover-Timestamp", stamp.to_string()),
                    ("X-Cutover-Signature", format!("sha256={signature}")),
                    ("X-Cutover-Event", notice.event.as_str().to_string()),
                    ("X-Cutover-Id", notice.id.clone()),
                ],
                ca_file.as_deref(),
            )
        }
        Channel::Slack { url, ca_file } => post(
            &revealed_url(url)?,
            &notice.slack(),
            &[],
            ca_file.as_deref(),
        ),
        Channel::Email {
            smtp,
            from,
            to,
            tls,
            login,
            ca_file,
        } => {
            let message = notice.email(from, to, now);
            let submission = Submission {
                server: smtp,
                from,
                to,
                tls: *tls,
                login: login.as_ref(),
                ca_file: ca_file.as_deref(),
            };
            mail(&submission, &message)
        }
    }
}

/// The URL, read from where it is given and checked (the error never holds it).
fn revealed_url(url: &crate::provider::Secret) -> Result<String, String> {
    let text = url.reveal("the URL").map_err(|e| match e {
        crate::provider::BuildError::Invalid(why)
        | crate::provider::BuildError::Unavailable(why) => why,
    })?;
    super::target::check_url(&text, "the URL")?;
    Ok(text)
}

/// A JSON POST to `url`; any 2xx is taken. An `https://` server's
/// certificate is checked against the web's roots, or `ca_file`'s.
fn post(
    url: &str,
    body: &str,
    headers: &[(&str, String)],
    ca_file: Option<&Path>,
) -> Result<(), String> {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(SEND_TIMEOUT))
        .max_redirects(0);
    if let Some(path) = ca_file {
        config = config.tls_config(https_roots(path, "notify.ca_file")?);
    }
    let agent: ureq::Agent = config.build().into();
    let mut request = agent
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", concat!("cutover/", env!("CARGO_PKG_VERSION")));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    match request.send(body) {
        Ok(response) => {
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(format!("HTTP {status}"))
            }
        }
        // ureq may name the URL; its path can be a token.
        Err(e) => Err(e.to_string().replace(url, "the URL")),
    }
}

/// A TLS config for ureq trusting the certificates of `path` only; errors
/// name the file as `key` (`notify.ca_file`, `relay.ca_file`).
pub fn https_roots(path: &Path, key: &str) -> Result<ureq::tls::TlsConfig, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
    let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{key} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{key} {}: no certificate in it", path.display()));
    }
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}

/// One SMTP reply: its code and text (multi-line replies joined with
/// `\n`, so a client can read EHLO's extensions line by line).
fn reply(reader: &mut impl BufRead) -> Result<(u16, String), String> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("SMTP: {e}"))?;
        if n == 0 {
            return Err("SMTP: the server closed the connection".into());
        }
        let line = line.trim_end();
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("SMTP: not a reply: {line:?}"))?;
        text.push_str(line.get(4..).unwrap_or_default());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text));
        }
        text.push('\n');
    }
}

/// A conversation with an SMTP server over `S` (plain or TLS).
struct Conversation<'a, S: Read + Write> {
    /// The server, for errors.
    server: &'a str,
    /// The stream, buffered for reading; written through `get_mut`.
    stream: BufReader<S>,
}

impl<S: Read + Write> Conversation<'_, S> {
    /// Sends one command line.
    fn say(&mut self, line: &str) -> Result<(), String> {
        let stream = self.stream.get_mut();
        stream
            .write_all(line.as_bytes())
            .and_then(|()| stream.write_all(b"\r\n"))
            .and_then(|()| stream.flush())
            .map_err(|e| format!("SMTP {}: {e}", self.server))
    }

    /// Reads a reply; an error unless its code is `ok`. Returns its text.
    fn expect(&mut self, what: &str, ok: u16) -> Result<String, String> {
        let (code, text) = reply(&mut self.stream)?;
        if code == ok {
            Ok(text)
        } else {
            Err(format!(
                "SMTP {}: {what}: {code} {}",
                self.server,
                text.replace('\n', " ")
            ))
        }
    }

    /// EHLO; the extensions the server announces, upper case.
    fn hello(&mut self) -> Result<Vec<String>, String> {
        self.say("EHLO cutover")?;
        let text = self.expect("EHLO", 250)?;
        Ok(text
            .lines()
            .skip(1)
            .map(|l| l.trim().to_ascii_uppercase())
            .collect())
    }

    /// AUTH PLAIN, when a login is given (the server must announce it).
    fn login(&mut self, extensions: &[String], login: Option<&Login>) -> Result<(), String> {
        let Some(login) = login else {
            return Ok(());
        };
        let offered = extensions
            .iter()
            .find_map(|e| {
                e.strip_prefix("AUTH")
                    .filter(|m| m.is_empty() || m.starts_with([' ', '=']))
            })
            .map(|m| m.trim_start_matches([' ', '=']).to_string());
        match offered {
            Some(mechanisms) if mechanisms.split_whitespace().any(|m| m == "PLAIN") => {}
            Some(mechanisms) => {
                return Err(format!(
                    "SMTP {}: the server offers AUTH {mechanisms}, not PLAIN: cutover logs in with PLAIN only",
                    self.server
                ))
            }
            None => {
                return Err(format!(
                    "SMTP {}: a login is configured but the server offers no AUTH",
                    self.server
                ))
            }
        }
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{}\0{}", login.username, login.password));
        // The password never reaches an error: the reply is the server's.
        self.say(&format!("AUTH PLAIN {token}"))?;
        self.expect("AUTH PLAIN (the login was refused)", 235)
            .map(|_| ())
    }

    /// MAIL, RCPT, DATA, QUIT.
    fn deliver(&mut self, from: &str, to: &[String], message: &str) -> Result<(), String> {
        self.say(&format!("MAIL FROM:<{from}>"))?;
        self.expect("MAIL FROM", 250)?;
        for rcpt in to {
            self.say(&format!("RCPT TO:<{rcpt}>"))?;
            self.expect("RCPT TO", 250)?;
        }
        self.say("DATA")?;
        self.expect("DATA", 354)?;
        let mut data = String::with_capacity(message.len() + 8);
        for line in message.split("\r\n") {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push('.');
        self.say(&data)?;
        self.expect("end of data", 250)?;
        let _ = self.say("QUIT");
        Ok(())
    }
}

/// A login with its password read.
struct Login {
    /// The user name.
    username: String,
    /// The password (never shown).
    password: String,
}

/// Where and how an e-mail goes.
pub(super) struct Submission<'a> {
    /// `host:port`.
    pub server: &'a str,
    /// The sender.
    pub from: &'a str,
    /// The recipients.
    pub to: &'a [String],
    /// How the connection is protected.
    pub tls: MailTls,
    /// The login, if any.
    pub login: Option<&'a MailLogin>,
    /// A private CA's certificates, if any.
    pub ca_file: Option<&'a Path>,
}

/// The TLS client config: the web's roots, or the certificates of `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|iter| iter.collect::<Result<_, _>>())
                .map_err(|e| format!("notify.ca_file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "notify.ca_file {}: no certificate in it",
                    path.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("notify.ca_file {}: {e}", path.display()))?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| format!("TLS: {e}"))
}

/// `stream` wrapped in TLS to the host of `server` (a name or an address),
/// its certificate checked.
fn tls_stream(
    server: &str,
    stream: TcpStream,
    ca_file: Option<&Path>,
) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let host = server
        .rsplit_once(':')
        .map_or(server, |(host, _)| host)
        .trim_matches(['[', ']']);
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("SMTP {server}: {host:?} cannot name a TLS server: {e}"))?;
    let connection = ClientConnection::new(tls_config(ca_file)?, name)
        .map_err(|e| format!("SMTP {server}: TLS: {e}"))?;
    let mut tls = StreamOwned::new(connection, stream);
    // The handshake now, so a certificate that does not verify is said as such.
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("SMTP {server}: TLS handshake: {e}"))?;
    }
    Ok(tls)
}

/// Sends `message` as `submission` says: plain, STARTTLS or TLS, with
/// AUTH PLAIN when a login is given.
pub(super) fn mail(submission: &Submission<'_>, message: &str) -> Result<(), String> {
    let server = submission.server;
    let login = match submission.login {
        None => None,
        Some(l) => Some(Login {
            username: l.username.clone(),
            password: l
                .password
                .reveal("the e-mail login's password")
                .map_err(|e| match e {
                    crate::provider::BuildError::Invalid(why)
                    | crate::provider::BuildError::Unavailable(why) => why,
                })?,
        }),
    };
    let addr = server
        .to_socket_addrs()
        .map_err(|e| format!("SMTP {server}: {e}"))?
        .next()
        .ok_or_else(|| format!("SMTP {server}: no address"))?;
    let stream = TcpStream::connect_timeout(&addr, SEND_TIMEOUT)
        .map_err(|e| format!("SMTP {server}: {e}"))?;
    stream
        .set_read_timeout(Some(SEND_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(SEND_TIMEOUT)))
        .map_err(|e| format!("SMTP {server}: {e}"))?;
    let (from, to) = (submission.from, submission.to);
    match submission.tls {
        MailTls::Tls => {
            let tls = tls_stream(server, stream, submission.ca_file)?;
            let mut talk = Conversation {
                server,
                stream: BufReader::new(tls),
            };
            talk.expect("greeting", 220)?;
            let extensions = talk.hello()?;
            talk.login(&extensions, login.as_ref())?;
            talk.deliver(from, to, message)
        }
        MailTls::None | MailTls::StartTls => {
            let mut plain = Conversation {
                server,
                stream: BufReader::new(stream),
            };
            plain.expect("greeting", 220)?;
            let extensions = plain.hello()?;
            if submission.tls == MailTls::None {
                plain.login(&extensions, login.as_ref())?;
                return plain.deliver(from, to, message);
            }
            if !extensions.iter().any(|e| e == "STARTTLS") {
                return Err(format!(
                    "SMTP {server}: the server does not offer STARTTLS, which tls = \"starttls\" requires: nothing was sent"
                ));
            }
            plain.say("STARTTLS")?;
            plain.expect("STARTTLS", 220)?;
            // Bytes sent before the handshake would be read as if they came
            // over TLS (a STARTTLS injection): refuse them.
            if !plain.stream.buffer().is_empty() {
                return Err(format!(
                    "SMTP {server}: the server sent data after its STARTTLS reply, before TLS: nothing was sent"
                ));
            }
            let stream = plain.stream.into_inner();
            let tls = tls_stream(server, stream, submission.ca_file)?;
            let mut talk = Conversation {
                server,
                stream: BufReader::new(tls),
            };
            let extensions = talk.hello()?;
            talk.login(&extensions, login.as_ref())?;
            talk.deliver(from, to, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        let hex = sign(b"key", 1700000000, b"{}");
        assert_eq!(
            hex, "9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae",
            "expected OpenSSL's HMAC-SHA256 of \"1700000000.{{}}\""
        );
        assert_ne!(
            hex,
            sign(b"key", 1700000001, b"{}"),
            "the timestamp is signed"
        );
        assert_ne!(hex, sign(b"other", 1700000000, b"{}"), "the key matters");
    }
}
