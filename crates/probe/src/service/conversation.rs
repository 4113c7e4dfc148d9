//! A line conversation over a stream that may switch to TLS midway, shared
//! by the SMTP, IMAP and POP3 probes.
//!
//! ```text
//!  TCP ──send/read lines──▶ STARTTLS ──into_plain (buffer must be empty)──▶ TLS ──send/read lines──▶
//! ```
//!
//! Lines are capped in length and every read has the probe's timeout. Data
//! the server sends after its STARTTLS reply and before the handshake is a
//! protocol violation (the CVE-2011-0411 class), so switching refuses it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::tls::{self, TlsObservation};
use super::ServiceError;

/// The longest line accepted (RFC 5321 allows 512 for replies; be generous).
const MAX_LINE: usize = 8192;

/// Any stream a conversation can run over (TCP, or TLS over TCP).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A line-based conversation with one server.
pub struct Conversation {
    /// The stream, buffered for reading lines.
    reader: BufReader<Box<dyn Stream>>,
    /// The server, for errors.
    pub address: SocketAddr,
    /// The timeout of each step.
    pub timeout: Duration,
}

impl Conversation {
    /// A conversation over `stream`.
    pub fn new(stream: Box<dyn Stream>, address: SocketAddr, timeout: Duration) -> Conversation {
        Conversation {
            reader: BufReader::new(stream),
            address,
            timeout,
        }
    }

    /// Reads one line, without its CRLF.
    pub async fn line(&mut self, stage: &'static str) -> Result<String, ServiceError> {
        let mut buf = Vec::new();
        let address = self.address;
        let read = async {
            loop {
                let available = self.reader.fill_buf().await?;
                if available.is_empty() {
                    return Ok::<bool, std::io::Error>(false);
                }
                let (take, done) = match available.iter().position(|b| *b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (available.len(), false),
                };
                buf.extend_from_slice(&available[..take]);
                self.reader.consume(take);
                if done || buf.len() > MAX_LINE {
                    return Ok(true);
                }
            }
        };
        match tokio::time::timeout(self.timeout, read).await {
            Err(_) => Err(ServiceError::Timeout { address, stage }),
            Ok(Err(e)) => Err(ServiceError::Io {
                address,
                reason: e.to_string(),
            }),
            Ok(Ok(false)) if buf.is_empty() => Err(ServiceError::Protocol {
                address,
                reason: format!("connection closed during {stage}"),
            }),
            Ok(Ok(_)) if buf.len() > MAX_LINE => Err(ServiceError::Protocol {
                address,
                reason: format!("a line longer than {MAX_LINE} bytes during {stage}"),
            }),
            Ok(Ok(_)) => {
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                Ok(String::from_utf8_lossy(&buf).into_owned())
            }
        }
    }

    /// Sends one line (CRLF added).
    pub async fn send(&mut self, line: &str, stage: &'static str) -> Result<(), ServiceError> {
        let address = self.address;
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        let stream = self.reader.get_mut();
        let write = async {
            stream.write_all(&bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Err(_) => Err(ServiceError::Timeout { address, stage }),
            Ok(Err(e)) => Err(ServiceError::Io {
                address,
                reason: e.to_string(),
            }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The raw stream, for a TLS handshake; refuses when the server already
    /// sent more (pipelined data before the handshake).
    pub fn into_plain(self) -> Result<Box<dyn Stream>, ServiceError> {
        if !self.reader.buffer().is_empty() {
            return Err(ServiceError::Protocol {
                address: self.address,
                reason: format!(
                    "{} bytes sent after the STARTTLS reply, before the handshake",
                    self.reader.buffer().len()
                ),
            });
        }
        Ok(self.reader.into_inner())
    }

    /// Switches to TLS after the server agreed to STARTTLS/STLS: the
    /// handshake (within the timeout) with `server_name` as SNI, and the same
    /// conversation continued over TLS, with what the handshake showed.
    pub async fn upgrade(
        self,
        server_name: &str,
        roots: &Arc<RootCertStore>,
        now: SystemTime,
    ) -> Result<(Conversation, TlsObservation), ServiceError> {
        let (address, timeout) = (self.address, self.timeout);
        let plain = self.into_plain()?;
        let handshake = tls::handshake(plain, address, server_name, roots, now);
        let (stream, seen) = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| ServiceError::Timeout {
                address,
                stage: "TLS handshake",
            })??;
        Ok((Conversation::new(Box::new(stream), address, timeout), seen))
    }
}
