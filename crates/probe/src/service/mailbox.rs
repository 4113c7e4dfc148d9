//! IMAP and POP3 at an address: the banner, whether STARTTLS (STLS) is
//! offered, and the certificate after upgrading.
//!
//! ```text
//!  IMAP: * OK banner ─▶ a1 CAPABILITY ─▶ [a2 STARTTLS ─▶ TLS] ─▶ a3 LOGOUT
//!  POP3: +OK banner  ─▶ CAPA          ─▶ [STLS        ─▶ TLS] ─▶ QUIT
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::RootCertStore;

use super::conversation::Conversation;
use super::tls::TlsObservation;
use super::{tcp, ServiceError};

/// The mailbox access protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// IMAP4rev1 (port 143).
    Imap,
    /// POP3 (port 110).
    Pop3,
}

/// One mailbox probe.
#[derive(Clone, Debug)]
pub struct MailboxRequest {
    /// IMAP or POP3.
    pub protocol: Protocol,
    /// The server.
    pub address: SocketAddr,
    /// The name the certificate must be valid for (and the SNI).
    pub server_name: String,
    /// Whether to upgrade when STARTTLS/STLS is offered.
    pub starttls: bool,
    /// The timeout of each step.
    pub timeout: Duration,
}

/// What the mailbox probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxObservation {
    /// The greeting line.
    pub banner: String,
    /// The capabilities listed (uppercase).
    pub capabilities: Vec<String>,
    /// The TLS handshake, when offered and tried.
    pub tls: Option<TlsObservation>,
    /// From connect to logout.
    pub elapsed: Duration,
}

/// Runs the mailbox probe.
pub async fn probe(
    request: &MailboxRequest,
    roots: &Arc<RootCertStore>,
    now: SystemTime,
) -> Result<MailboxObservation, ServiceError> {
    let started = Instant::now();
    let address = request.address;
    let connected = tcp::open(address, request.timeout).await?;
    let mut conversation = Conversation::new(Box::new(connected.stream), address, request.timeout);
    let protocol_error = |reason: String| ServiceError::Protocol { address, reason };
    let banner = conversation.line("banner").await?;
    let (greeting, starttls, ok) = match request.protocol {
        Protocol::Imap => ("* OK", "STARTTLS", "a2 OK"),
        Protocol::Pop3 => ("+OK", "STLS", "+OK"),
    };
    if !banner.starts_with(greeting) {
        return Err(protocol_error(format!(
            "greeting {banner:?} does not start with {greeting:?}"
        )));
    }
    let capabilities = match request.protocol {
        Protocol::Imap => {
            conversation.send("a1 CAPABILITY", "CAPABILITY").await?;
            let mut capabilities = Vec::new();
            loop {
                let line = conversation.line("CAPABILITY").await?;
                if let Some(list) = line.strip_prefix("* CAPABILITY ") {
                    capabilities.extend(list.split_whitespace().map(|c| c.to_ascii_uppercase()));
                } else if line.starts_with("a1 ") {
                    break;
                }
            }
            capabilities
        }
        Protocol::Pop3 => {
            conversation.send("CAPA", "CAPA").await?;
            let first = conversation.line("CAPA").await?;
            let mut capabilities = Vec::new();
            if first.starts_with("+OK") {
                loop {
                    let line = conversation.line("CAPA").await?;
                    if line == "." {
                        break;
                    }
                    if let Some(word) = line.split_whitespace().next() {
                        capabilities.push(word.to_ascii_uppercase());
                    }
                }
            }
            capabilities
        }
    };
    let mut tls = None;
    if request.starttls && capabilities.iter().any(|c| c == starttls) {
        let command = match request.protocol {
            Protocol::Imap => "a2 STARTTLS",
            Protocol::Pop3 => "STLS",
        };
        conversation.send(command, "STARTTLS").await?;
        let answer = conversation.line("STARTTLS").await?;
        if !answer.starts_with(ok) {
            return Err(protocol_error(format!("{command} answered {answer:?}")));
        }
        let (upgraded, seen) = conversation
            .upgrade(&request.server_name, roots, now)
            .await?;
        tls = Some(seen);
        conversation = upgraded;
    }
    let goodbye = match request.protocol {
        Protocol::Imap => "a3 LOGOUT",
        Protocol::Pop3 => "QUIT",
    };
    // The goodbye's answer does not matter; the server may just close.
    let _ = conversation.send(goodbye, "logout").await;
    Ok(MailboxObservation {
        banner,
        capabilities,
        tls,
        elapsed: started.elapsed(),
    })
}
