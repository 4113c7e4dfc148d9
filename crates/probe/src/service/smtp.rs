//! SMTP at an address: banner, EHLO extensions, STARTTLS with the
//! certificate, and optionally whether a RCPT would be accepted.
//!
//! ```text
//!  connect ─▶ 220 banner ─▶ EHLO ─▶ [STARTTLS ─▶ 220 ─▶ TLS ─▶ EHLO]
//!          ─▶ [MAIL FROM:<> ─▶ RCPT TO:<addr> ─▶ RSET] ─▶ QUIT
//! ```
//!
//! The probe never sends DATA: a RCPT test ends with RSET.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::RootCertStore;

use super::conversation::Conversation;
use super::tls::TlsObservation;
use super::{tcp, ServiceError};

/// One SMTP probe.
#[derive(Clone, Debug)]
pub struct SmtpRequest {
    /// The server.
    pub address: SocketAddr,
    /// The name the certificate must be valid for (and the SNI).
    pub server_name: String,
    /// The name sent in EHLO.
    pub helo: String,
    /// Whether to try STARTTLS when offered.
    pub starttls: bool,
    /// A recipient to test with RCPT (never followed by DATA).
    pub rcpt: Option<String>,
    /// The timeout of each step.
    pub timeout: Duration,
}

/// One SMTP reply: its code and the text of each line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text after the code on each line.
    pub lines: Vec<String>,
}

/// What the SMTP probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpObservation {
    /// The greeting.
    pub banner: Reply,
    /// The EHLO reply before TLS.
    pub ehlo: Reply,
    /// The EHLO keywords (uppercase, first word of each line after the first).
    pub extensions: Vec<String>,
    /// The TLS handshake, when STARTTLS was offered and tried.
    pub tls: Option<TlsObservation>,
    /// The EHLO keywords after TLS.
    pub extensions_after_tls: Vec<String>,
    /// MAIL FROM:<> and RCPT replies, when a recipient was tested.
    pub rcpt: Option<(Reply, Reply)>,
    /// From connect to QUIT.
    pub elapsed: Duration,
}

impl Reply {
    /// True for 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The EHLO keywords of this reply (uppercase).
    pub fn keywords(&self) -> Vec<String> {
        self.lines
            .iter()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .map(|w| w.to_ascii_uppercase())
            .collect()
    }
}

/// Parses one reply line: its code, whether more lines follow, and the text.
pub fn parse_reply_line(line: &str) -> Option<(u16, bool, String)> {
    let code: u16 = line
        .get(..3)?
        .parse()
        .ok()
        .filter(|c| (200..600).contains(c))?;
    match line.as_bytes().get(3) {
        None => Some((code, false, String::new())),
        Some(b' ') => Some((code, false, line[4..].to_string())),
        Some(b'-') => Some((code, true, line[4..].to_string())),
        _ => None,
    }
}

/// Reads one (possibly multi-line) reply.
async fn reply(
    conversation: &mut Conversation,
    stage: &'static str,
) -> Result<Reply, ServiceError> {
    let mut lines = Vec::new();
    loop {
        let line = conversation.line(stage).await?;
        let (code, more, text) = parse_reply_line(&line).ok_or_else(|| ServiceError::Protocol {
            address: conversation.address,
            reason: format!("{line:?} is not an SMTP reply line ({stage})"),
        })?;
        lines.push(text);
        if !more {
            return Ok(Reply { code, lines });
        }
        if lines.len() > 1000 {
            return Err(ServiceError::Protocol {
                address: conversation.address,
                reason: format!("a reply of more than 1000 lines ({stage})"),
            });
        }
    }
}

/// Sends a command and reads its reply.
async fn command(
    conversation: &mut Conversation,
    line: &str,
    stage: &'static str,
) -> Result<Reply, ServiceError> {
    conversation.send(line, stage).await?;
    reply(conversation, stage).await
}

/// Runs the SMTP probe.
pub async fn probe(
    request: &SmtpRequest,
    roots: &Arc<RootCertStore>,
    now: SystemTime,
) -> Result<SmtpObservation, ServiceError> {
    let started = Instant::now();
    let address = request.address;
    let connected = tcp::open(address, request.timeout).await?;
    let mut conversation = Conversation::new(Box::new(connected.stream), address, request.timeout);
    let banner = reply(&mut conversation, "banner").await?;
    if banner.code != 220 {
        return Err(ServiceError::Protocol {
            address,
            reason: format!("greeting {} {}", banner.code, banner.lines.join(" ")),
        });
    }
    let ehlo_line = format!("EHLO {}", request.helo);
    let ehlo = command(&mut conversation, &ehlo_line, "EHLO").await?;
    let extensions = ehlo.keywords();
    let mut tls = None;
    let mut extensions_after_tls = Vec::new();
    if request.starttls && extensions.iter().any(|e| e == "STARTTLS") {
        let ready = command(&mut conversation, "STARTTLS", "STARTTLS").await?;
        if ready.code != 220 {
            return Err(ServiceError::Protocol {
                address,
                reason: format!("STARTTLS answered {} {}", ready.code, ready.lines.join(" ")),
            });
        }
        let (upgraded, seen) = conversation
            .upgrade(&request.server_name, roots, now)
            .await?;
        tls = Some(seen);
        conversation = upgraded;
        extensions_after_tls = command(&mut conversation, &ehlo_line, "EHLO after TLS")
            .await?
            .keywords();
    }
    let rcpt = match &request.rcpt {
        Some(recipient) => {
            if recipient.contains(['\r', '\n', '<', '>']) {
                return Err(ServiceError::Protocol {
                    address,
                    reason: format!("recipient {recipient:?} has characters SMTP does not allow"),
                });
            }
            let mail = command(&mut conversation, "MAIL FROM:<>", "MAIL FROM").await?;
            let rcpt = if mail.is_positive() {
                command(&mut conversation, &format!("RCPT TO:<{recipient}>"), "RCPT").await?
            } else {
                mail.clone()
            };
            command(&mut conversation, "RSET", "RSET").await?;
            Some((mail, rcpt))
        }
        None => None,
    };
    // The server may close right after 221; its reply does not matter.
    let _ = command(&mut conversation, "QUIT", "QUIT").await;
    Ok(SmtpObservation {
        banner,
        ehlo,
        extensions,
        tls,
        extensions_after_tls,
        rcpt,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines_parse_and_keywords_come_from_the_ehlo_lines() {
        assert_eq!(
            parse_reply_line("250-mx.example.test"),
            Some((250, true, "mx.example.test".into()))
        );
        assert_eq!(
            parse_reply_line("250 STARTTLS"),
            Some((250, false, "STARTTLS".into()))
        );
        assert_eq!(parse_reply_line("220"), Some((220, false, String::new())));
        assert_eq!(parse_reply_line("hello"), None);
        assert_eq!(parse_reply_line("250+x"), None);
        let ehlo = Reply {
            code: 250,
            lines: vec![
                "mx".into(),
                "pipelining".into(),
                "SIZE 1000".into(),
                "STARTTLS".into(),
            ],
        };
        assert_eq!(ehlo.keywords(), vec!["PIPELINING", "SIZE", "STARTTLS"]);
    }
}
