//! Service probes: a service checked at an address of the caller's choosing,
//! before DNS points there (the hosts-file trick, built in).
//!
//! ```text
//!  address ──TCP──▶ tcp::connect                      (reachable? how fast?)
//!          ──TCP──▶ http::fetch  ──TLS (SNI = URL host)──▶ status, body, redirect, certificate
//!          ──TCP──▶ smtp::probe  ──EHLO, STARTTLS, EHLO, [MAIL/RCPT/RSET]──▶ replies, certificate
//!          ──TCP──▶ mailbox::probe (IMAP/POP3) ──banner, STARTTLS──▶ certificate
//! ```
//!
//! TLS uses rustls with the ring provider; the chain is validated for the
//! host name against the given roots, and the verdict is *recorded* rather
//! than aborting the probe, so a bad certificate is reported along with the
//! rest of what the service said. Nothing secret is ever sent.

pub mod conversation;
pub mod http;
pub mod mailbox;
pub mod smtp;
pub mod tcp;
pub mod tls;

use std::net::SocketAddr;

/// Why a service probe could not finish.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// The TCP connection failed.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// The address.
        address: SocketAddr,
        /// What the system said.
        reason: String,
    },
    /// A step took longer than the timeout.
    #[error("{address} timed out during {stage}")]
    Timeout {
        /// The address.
        address: SocketAddr,
        /// What was being done.
        stage: &'static str,
    },
    /// The TLS handshake failed (not a certificate verdict: those are recorded).
    #[error("TLS handshake with {address} as {server_name} failed: {reason}")]
    Tls {
        /// The address.
        address: SocketAddr,
        /// The name sent as SNI.
        server_name: String,
        /// What rustls said.
        reason: String,
    },
    /// The server said something the protocol does not allow here.
    #[error("{address} broke the protocol: {reason}")]
    Protocol {
        /// The address.
        address: SocketAddr,
        /// What was wrong.
        reason: String,
    },
    /// An I/O error after the connection was made.
    #[error("I/O error with {address}: {reason}")]
    Io {
        /// The address.
        address: SocketAddr,
        /// What the system said.
        reason: String,
    },
    /// The URL cannot be probed.
    #[error("bad URL {url:?}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file cannot be used.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}
