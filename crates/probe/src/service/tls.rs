//! TLS for the service probes: a handshake that records the certificate
//! chain and the verdict of validating it for the host name.
//!
//! ```text
//!  stream ──handshake(SNI)──▶ RecordingVerifier ──▶ WebPkiServerVerifier (roots)
//!                                   │ verdict kept, handshake continues
//!                                   ▼
//!                           TlsObservation { verdict, chain: issuer, expiry… }
//! ```
//!
//! Recording instead of refusing lets a probe report what a service with a
//! bad certificate answers; the verdict is always part of the observation.
//! Handshake signatures are still checked by the real verifier.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::ServiceError;

/// Where the trust anchors come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsRoots {
    /// Mozilla's roots (webpki-roots).
    WebPki,
    /// The PEM certificates of a file (a private or test CA).
    CaFile(PathBuf),
}

/// Whether the chain is valid for the host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid for the name, chained to a trusted root, in date.
    Valid,
    /// Not valid; the reason is rustls's.
    Invalid(String),
}

/// One certificate of the chain, as a person would want to see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateView {
    /// The subject DN.
    pub subject: String,
    /// The issuer DN.
    pub issuer: String,
    /// The DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// The end of the validity period.
    pub not_after: SystemTime,
    /// Whole days from the probe's `now` to `not_after` (negative once expired).
    pub days_to_expiry: i64,
    /// SHA-256 of the DER, in hex.
    pub sha256: String,
}

/// What the TLS handshake showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsObservation {
    /// The name sent as SNI and validated.
    pub server_name: String,
    /// The protocol version ("TLSv1_3"…).
    pub version: String,
    /// The validation verdict.
    pub verdict: Verdict,
    /// The chain as sent, leaf first.
    pub chain: Vec<CertificateView>,
}

/// Validates with the real verifier, keeps the verdict, lets the handshake go on.
#[derive(Debug)]
struct RecordingVerifier {
    /// The real verifier.
    inner: Arc<WebPkiServerVerifier>,
    /// The verdict of the one handshake this verifier serves.
    verdict: Mutex<Option<Verdict>>,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Valid => write!(f, "valid"),
            Verdict::Invalid(reason) => write!(f, "invalid: {reason}"),
        }
    }
}

impl TlsObservation {
    /// The leaf certificate.
    pub fn leaf(&self) -> Option<&CertificateView> {
        self.chain.first()
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_) => Verdict::Valid,
            Err(e) => Verdict::Invalid(e.to_string()),
        };
        // A poisoned lock only means another thread panicked mid-write of
        // this Option; the value is still a whole Option.
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The root store for `roots`.
pub fn root_store(roots: &TlsRoots) -> Result<Arc<RootCertStore>, ServiceError> {
    let mut store = RootCertStore::empty();
    match roots {
        TlsRoots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TlsRoots::CaFile(path) => {
            let bad = |reason: String| ServiceError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                store.add(cert).map_err(|e| bad(e.to_string()))?;
            }
            if store.is_empty() {
                return Err(bad("no certificate in the file".into()));
            }
        }
    }
    Ok(Arc::new(store))
}

/// Runs the TLS handshake over `stream` with `server_name` as SNI, and
/// returns the TLS stream with what was seen. `now` is used for the days to
/// expiry (rustls validates with the system clock).
pub async fn handshake<S>(
    stream: S,
    address: SocketAddr,
    server_name: &str,
    roots: &Arc<RootCertStore>,
    now: SystemTime,
) -> Result<(TlsStream<S>, TlsObservation), ServiceError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let failed = |reason: String| ServiceError::Tls {
        address,
        server_name: server_name.to_string(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::clone(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| failed(e.to_string()))?;
    let verifier = Arc::new(RecordingVerifier {
        inner,
        verdict: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| failed(e.to_string()))?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (_, connection) = tls.get_ref();
    let version = connection
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    let chain = connection
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|der| view(der.as_ref(), now))
        .collect();
    let verdict = verifier
        .verdict
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(|| Verdict::Invalid("no certificate was verified".into()));
    Ok((
        tls,
        TlsObservation {
            server_name: server_name.to_string(),
            version,
            verdict,
            chain,
        },
    ))
}

/// A certificate's readable fields (placeholders when the DER does not parse:
/// the verdict already says why such a chain is invalid).
pub fn view(der: &[u8], now: SystemTime) -> CertificateView {
    let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let not_after_unix = cert.validity().not_after.timestamp();
            let not_after = if not_after_unix >= 0 {
                SystemTime::UNIX_EPOCH + Duration::from_secs(not_after_unix as u64)
            } else {
                SystemTime::UNIX_EPOCH
            };
            let now_unix = match now.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => d.as_secs() as i64,
                Err(_) => 0,
            };
            let dns_names = match cert.subject_alternative_name() {
                Ok(Some(san)) => san
                    .value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(name) => {
                            Some(name.to_string())
                        }
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            CertificateView {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                dns_names,
                not_after,
                days_to_expiry: (not_after_unix - now_unix).div_euclid(86_400),
                sha256,
            }
        }
        Err(e) => CertificateView {
            subject: format!("(unparsable certificate: {e})"),
            issuer: String::new(),
            dns_names: Vec::new(),
            not_after: SystemTime::UNIX_EPOCH,
            days_to_expiry: 0,
            sha256,
        },
    }
}

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
