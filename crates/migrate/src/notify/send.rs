//! Sending one notice: a signed webhook POST, a Slack-compatible POST, or
//! an e-mail through an SMTP server (a small client: EHLO, MAIL, RCPT,
//! DATA, QUIT, no TLS: the server is the site's own relay or a local MTA).
//! Each attempt is bounded by [`SEND_TIMEOUT`]; an error never holds a
//! secret (a URL's path is left out of it).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha2::Sha256;

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
        Channel::Webhook { url, secret } => {
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
            )
        }
        Channel::Slack { url } => post(&revealed_url(url)?, &notice.slack(), &[]),
        Channel::Email { smtp, from, to } => {
            let message = notice.email(from, to, now);
            mail(smtp, from, to, &message)
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

/// A JSON POST to `url`; any 2xx is taken.
fn post(url: &str, body: &str, headers: &[(&str, String)]) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(SEND_TIMEOUT))
        .max_redirects(0)
        .build()
        .into();
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

/// One SMTP reply: its code and text (multi-line replies joined).
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
        text.push(' ');
    }
}

/// Sends `message` from `from` to `to` through the SMTP server at `server`.
fn mail(server: &str, from: &str, to: &[String], message: &str) -> Result<(), String> {
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
    let mut writer = stream
        .try_clone()
        .map_err(|e| format!("SMTP {server}: {e}"))?;
    let mut reader = BufReader::new(stream);
    let expect = |reader: &mut BufReader<TcpStream>, what: &str, ok: u16| {
        let (code, text) = reply(reader)?;
        if code == ok {
            Ok(())
        } else {
            Err(format!("SMTP {server}: {what}: {code} {text}"))
        }
    };
    let mut say = |line: &str| {
        writer
            .write_all(line.as_bytes())
            .and_then(|()| writer.write_all(b"\r\n"))
            .map_err(|e| format!("SMTP {server}: {e}"))
    };
    expect(&mut reader, "greeting", 220)?;
    say("EHLO cutover")?;
    expect(&mut reader, "EHLO", 250)?;
    say(&format!("MAIL FROM:<{from}>"))?;
    expect(&mut reader, "MAIL FROM", 250)?;
    for rcpt in to {
        say(&format!("RCPT TO:<{rcpt}>"))?;
        expect(&mut reader, "RCPT TO", 250)?;
    }
    say("DATA")?;
    expect(&mut reader, "DATA", 354)?;
    let mut data = String::with_capacity(message.len() + 8);
    for line in message.split("\r\n") {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.push('.');
    say(&data)?;
    expect(&mut reader, "end of data", 250)?;
    let _ = say("QUIT");
    Ok(())
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
