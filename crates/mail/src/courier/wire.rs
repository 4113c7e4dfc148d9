//! The bytes the courier writes that need care: RFC 3461 xtext for DSN
//! parameters, the DATA section (CRLF line ends only, dot-stuffed), and the
//! TLS client config of opportunistic (and required) STARTTLS.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// RFC 3461 xtext: `+XX` for `+`, `=`, controls, space and non-ASCII.
pub fn xtext(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if byte == b'+' || byte == b'=' || byte <= b' ' || byte >= 0x7F {
            encoded.push_str(&format!("+{byte:02X}"));
        } else {
            encoded.push(byte as char);
        }
    }
    encoded
}

/// The content as DATA bytes: every line end (CRLF, bare LF, bare CR) made
/// CRLF, leading dots doubled, and the CRLF "." CRLF terminator added.
pub fn wire_data(content: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(content.len() + content.len() / 40 + 5);
    let mut stuffer = Stuffer::default();
    stuffer.push(content, &mut wire);
    stuffer.finish(&mut wire);
    wire
}

/// [`wire_data`] piece by piece: content fed in any pieces gives the same
/// bytes as fed whole, so a message is sent without being whole in memory.
#[derive(Debug, Clone, Copy)]
pub struct Stuffer {
    /// Whether the next byte starts a line.
    line_start: bool,
    /// Whether the last byte was a CR (a LF right after it is its line end).
    after_cr: bool,
}

impl Default for Stuffer {
    /// At the start of the content.
    fn default() -> Self {
        Stuffer {
            line_start: true,
            after_cr: false,
        }
    }
}

impl Stuffer {
    /// Appends the DATA bytes of `content` (the next piece) to `wire`.
    pub fn push(&mut self, content: &[u8], wire: &mut Vec<u8>) {
        for &byte in content {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            if self.line_start && byte == b'.' {
                wire.push(b'.');
            }
            match byte {
                b'\r' | b'\n' => {
                    wire.extend_from_slice(b"\r\n");
                    self.after_cr = byte == b'\r';
                    self.line_start = true;
                }
                _ => {
                    wire.push(byte);
                    self.line_start = false;
                }
            }
        }
    }

    /// Appends the end: a CRLF when the content did not end a line, then
    /// the "." CRLF terminator.
    pub fn finish(self, wire: &mut Vec<u8>) {
        if !self.line_start {
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
    }
}

/// A TLS client config for opportunistic STARTTLS (like Postfix's
/// `smtp_tls_security_level = may`): encryption against passive listeners,
/// no certificate check, since MX hosts rarely have names that verify.
pub fn opportunistic_tls() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        });
    // The ring provider always supports the safe default versions.
    Arc::new(config.expect("ring supports TLS 1.2 and 1.3"))
}

/// The certificate verifier of opportunistic TLS: accepts any certificate,
/// still checks the handshake signatures with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    /// Accepts every certificate (opportunistic TLS).
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    /// Checks a TLS 1.2 handshake signature.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    /// Checks a TLS 1.3 handshake signature.
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    /// The provider's signature schemes.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No bare CR or LF ever leaves, and dots are stuffed.
    #[test]
    fn wire_data_normalises_and_stuffs() {
        assert_eq!(
            wire_data(b"a\nb\rc\r\n.d\n..e"),
            b"a\r\nb\r\nc\r\n..d\r\n...e\r\n.\r\n"
        );
        assert_eq!(wire_data(b""), b".\r\n");
        assert_eq!(wire_data(b"x\r\n"), b"x\r\n.\r\n");
        let wire = wire_data(b"evil\n.\r\nMAIL FROM:<x@y>\r\n");
        assert_eq!(wire, b"evil\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n");
    }

    /// Fed in pieces of any size, the stuffer gives what wire_data gives
    /// whole (a CR LF split between pieces is one line end).
    #[test]
    fn pieces_give_the_same_bytes() {
        let content = b"a\r\n.b\rc\n\r\n..d\r\r\ne\n.\r\nf\r";
        let whole = wire_data(content);
        for size in 1..content.len() {
            let mut stuffer = Stuffer::default();
            let mut wire = Vec::new();
            for piece in content.chunks(size) {
                stuffer.push(piece, &mut wire);
            }
            stuffer.finish(&mut wire);
            assert_eq!(wire, whole, "pieces of {size}");
        }
    }

    /// xtext encodes the characters RFC 3461 reserves.
    #[test]
    fn xtext_encodes_reserved() {
        assert_eq!(xtext("a+b=c d\r"), "a+2Bb+3Dc+20d+0D");
    }
}
