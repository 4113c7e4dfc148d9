//! HTTP and HTTPS to a URL pinned to an address, as `curl --resolve` does:
//! the connection goes to the given IP, SNI and Host come from the URL.
//!
//! ```text
//!  Url::parse (url) ──▶ tcp::open(ip:port) ──[tls::handshake SNI=host]──▶ hyper http1 (GET, Connection: close)
//!       ──▶ status, headers, body (≤ MAX_BODY) ──▶ HttpObservation ──compare(old, new)──▶ differences
//! ```
//!
//! The probe opens the connection itself and hands the stream to hyper's
//! connection-level client (`hyper::client::conn::http1`), not to a pooled
//! client that resolves names: that is what pins the address while the URL's
//! host goes out as SNI and Host, and what lets `tls::handshake` record the
//! chain and the verdict of the very connection the request runs on. hyper
//! writes the request and parses the response (status line, headers,
//! Content-Length, chunked and close-delimited bodies); the probe bounds the
//! head (`MAX_HEAD`, hyper's 100 headers), the body (`MAX_BODY`) and the time
//! (`HttpRequest::timeout` per step).
//!
//! Redirects are reported (status and Location), never followed: a redirect
//! to another host would leave the pinned address.

use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper::header::{ACCEPT, CONNECTION, HOST, USER_AGENT};
use hyper::http::uri::PathAndQuery;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::tls::{self, hex, TlsObservation, Verdict};
use super::{tcp, ServiceError};

/// The largest response body read; a longer one is an error, not a truncation.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// The largest response head (status line and headers) read.
pub const MAX_HEAD: usize = 256 * 1024;

/// The response headers compared between old and new.
pub const HEADERS_THAT_MATTER: [&str; 6] = [
    "content-type",
    "location",
    "cache-control",
    "strict-transport-security",
    "content-security-policy",
    "access-control-allow-origin",
];

/// An http or https URL, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// True for https.
    pub tls: bool,
    /// The host (SNI and Host header): lowercase, IDNA-encoded, an IPv6 address without brackets.
    pub host: String,
    /// The port (explicit, or 80/443).
    pub port: u16,
    /// Path and query, starting with '/', percent-encoded.
    pub path: String,
}

/// One probe: a URL, the address to pin it to, what to look for.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// The URL.
    pub url: Url,
    /// The address to connect to instead of resolving the host.
    pub address: IpAddr,
    /// A substring the body must contain, if any.
    pub body_contains: Option<String>,
    /// The timeout of each step (connect, handshake, response).
    pub timeout: Duration,
}

/// What one HTTP probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpObservation {
    /// The address the URL was pinned to.
    pub address: SocketAddr,
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body length.
    pub body_len: usize,
    /// SHA-256 of the body, hex.
    pub body_sha256: String,
    /// Whether the body contains the requested substring.
    pub body_contains: Option<bool>,
    /// For a 3xx, where it points.
    pub redirect: Option<String>,
    /// Time from connect to the end of the response.
    pub elapsed: Duration,
    /// The TLS handshake (https only).
    pub tls: Option<TlsObservation>,
}

/// One difference between the old and the new address's answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// What differs ("status", "header content-type", "body", "certificate issuer"…).
    pub what: String,
    /// The old value.
    pub old: String,
    /// The new value.
    pub new: String,
}

/// The status and headers of a response, and its whole body.
struct Response {
    /// The status code.
    status: u16,
    /// Header names (lowercase) and values, in the order hyper keeps them.
    headers: Vec<(String, String)>,
    /// The body, transfer coding removed.
    body: Bytes,
}

impl Url {
    /// Parses an `http://` or `https://` URL (WHATWG rules, by the `url`
    /// crate: IDNA hosts, IPv6 in brackets, percent-encoding); credentials
    /// and other schemes are refused.
    pub fn parse(text: &str) -> Result<Url, ServiceError> {
        let bad = |reason: &str| ServiceError::Url {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let parsed = url::Url::parse(text).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => {
                bad("no scheme: write it as http://HOST/… or https://HOST/…")
            }
            other => bad(&other.to_string()),
        })?;
        let tls = match parsed.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(bad("only http:// and https:// URLs are probed")),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("credentials in the URL are not sent by probes"));
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(name)) if !name.is_empty() => name.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(bad("no host")),
        };
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let mut path = parsed.path().to_string();
        if let Some(query) = parsed.query() {
            path.push('?');
            path.push_str(query);
        }
        // The request line carries it as it is: hyper must accept it.
        PathAndQuery::try_from(path.as_str())
            .map_err(|e| bad(&format!("the path {path:?} cannot be sent: {e}")))?;
        Ok(Url {
            tls,
            host,
            port,
            path,
        })
    }

    /// The Host header value.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl HttpObservation {
    /// The first value of a header (name in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Fetches the URL from the pinned address.
pub async fn fetch(
    request: &HttpRequest,
    roots: &Arc<RootCertStore>,
    now: SystemTime,
) -> Result<HttpObservation, ServiceError> {
    fetch_with_body(request, roots, now)
        .await
        .map(|(seen, _)| seen)
}

/// Fetches the URL from the pinned address, and keeps the body.
pub async fn fetch_with_body(
    request: &HttpRequest,
    roots: &Arc<RootCertStore>,
    now: SystemTime,
) -> Result<(HttpObservation, Vec<u8>), ServiceError> {
    let address = SocketAddr::new(request.address, request.url.port);
    let started = Instant::now();
    let connected = tcp::open(address, request.timeout).await?;
    let (response, tls) = if request.url.tls {
        let handshake = tls::handshake(connected.stream, address, &request.url.host, roots, now);
        let (stream, seen) = tokio::time::timeout(request.timeout, handshake)
            .await
            .map_err(|_| ServiceError::Timeout {
                address,
                stage: "TLS handshake",
            })??;
        let stream = CloseNotifyOptional(stream);
        (exchange(stream, request, address).await?, Some(seen))
    } else {
        (exchange(connected.stream, request, address).await?, None)
    };
    let redirect = if (300..400).contains(&response.status) {
        response
            .headers
            .iter()
            .find(|(n, _)| n == "location")
            .map(|(_, v)| v.clone())
    } else {
        None
    };
    let body_contains = request.body_contains.as_ref().map(|needle| {
        response
            .body
            .windows(needle.len().max(1))
            .any(|w| w == needle.as_bytes())
    });
    let observation = HttpObservation {
        address,
        status: response.status,
        body_len: response.body.len(),
        body_sha256: hex(ring::digest::digest(&ring::digest::SHA256, &response.body).as_ref()),
        headers: response.headers,
        body_contains,
        redirect,
        elapsed: started.elapsed(),
        tls,
    };
    Ok((observation, response.body.to_vec()))
}

/// The GET the probe sends: origin-form target, the URL's host as Host.
fn get(url: &Url) -> Result<Request<Empty<Bytes>>, hyper::http::Error> {
    Request::get(url.path.as_str())
        .header(HOST, url.host_header())
        .header(USER_AGENT, "cutover-probe")
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::new())
}

/// Sends the GET over `stream` with hyper and reads the whole response,
/// within the request's timeout and the size limits.
async fn exchange<S>(
    stream: S,
    request: &HttpRequest,
    address: SocketAddr,
) -> Result<Response, ServiceError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let get = get(&request.url).map_err(|e| ServiceError::Url {
        url: format!("{}{}", request.url.host_header(), request.url.path),
        reason: e.to_string(),
    })?;
    let talk = async {
        let (mut sender, connection) = http1::Builder::new()
            .max_header_size(MAX_HEAD)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| failure(address, &e))?;
        let response = async {
            let response = sender
                .send_request(get)
                .await
                .map_err(|e| failure(address, &e))?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        ServiceError::Protocol {
                            address,
                            reason: format!("response body larger than {MAX_BODY} bytes"),
                        }
                    } else {
                        failure(address, e.as_ref())
                    }
                })?
                .to_bytes();
            let headers = head
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_string(),
                        String::from_utf8_lossy(value.as_bytes()).trim().to_string(),
                    )
                })
                .collect();
            Ok(Response {
                status: head.status.as_u16(),
                headers,
                body,
            })
        };
        // The connection future does the I/O; the response is read while it
        // runs. Once the response is whole, the connection is dropped (closed).
        let mut connection = pin!(connection);
        let mut response = pin!(response);
        tokio::select! {
            biased;
            done = &mut response => done,
            _ = &mut connection => response.await,
        }
    };
    tokio::time::timeout(request.timeout, talk)
        .await
        .map_err(|_| ServiceError::Timeout {
            address,
            stage: "HTTP response",
        })?
}

/// A hyper error as the probe reports it: its chain of causes, as I/O when
/// the system said it, as a protocol error otherwise (a response cut short
/// of its length is the server's fault, not the network's).
fn failure(address: SocketAddr, error: &(dyn StdError + 'static)) -> ServiceError {
    let mut reason = error.to_string();
    let mut io = false;
    let mut cause = error.source();
    while let Some(e) = cause {
        io |= e
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() != io::ErrorKind::UnexpectedEof);
        reason.push_str(": ");
        reason.push_str(&e.to_string());
        cause = e.source();
    }
    if io {
        ServiceError::Io { address, reason }
    } else {
        ServiceError::Protocol { address, reason }
    }
}

/// A TLS stream whose end without close_notify reads as an ordinary end.
///
/// Many servers close without a TLS close_notify. That only matters for a
/// body delimited by the close: Content-Length and chunked bodies are checked
/// for completeness by hyper all the same, as the old hand-written reader did.
struct CloseNotifyOptional<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for CloseNotifyOptional<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CloseNotifyOptional<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// What differs between the answers of the old and the new address. Pure.
pub fn compare(old: &HttpObservation, new: &HttpObservation) -> Vec<Difference> {
    let mut differences = Vec::new();
    let mut differ = |what: String, a: String, b: String| {
        if a != b {
            differences.push(Difference {
                what,
                old: a,
                new: b,
            });
        }
    };
    differ(
        "status".into(),
        old.status.to_string(),
        new.status.to_string(),
    );
    for name in HEADERS_THAT_MATTER {
        differ(
            format!("header {name}"),
            old.header(name).unwrap_or("(none)").to_string(),
            new.header(name).unwrap_or("(none)").to_string(),
        );
    }
    differ(
        "body".into(),
        old.body_sha256.clone(),
        new.body_sha256.clone(),
    );
    differ(
        "body contains".into(),
        format!("{:?}", old.body_contains),
        format!("{:?}", new.body_contains),
    );
    let verdict = |o: &HttpObservation| {
        o.tls
            .as_ref()
            .map(|t| t.verdict.to_string())
            .unwrap_or_else(|| "(no TLS)".into())
    };
    differ("certificate verdict".into(), verdict(old), verdict(new));
    let leaf = |o: &HttpObservation, f: fn(&tls::CertificateView) -> String| {
        o.tls
            .as_ref()
            .and_then(|t| t.leaf())
            .map(f)
            .unwrap_or_else(|| "(none)".into())
    };
    differ(
        "certificate issuer".into(),
        leaf(old, |c| c.issuer.clone()),
        leaf(new, |c| c.issuer.clone()),
    );
    differ(
        "certificate names".into(),
        leaf(old, |c| c.dns_names.join(",")),
        leaf(new, |c| c.dns_names.join(",")),
    );
    differences
}

/// True when the observation's certificate is valid (or there is no TLS).
pub fn certificate_ok(observation: &HttpObservation) -> bool {
    observation
        .tls
        .as_ref()
        .is_none_or(|t| t.verdict == Verdict::Valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_path() {
        let url = Url::parse("https://WWW.Example.test:8443/a?b=1#frag").unwrap();
        assert_eq!(
            (url.tls, url.host.as_str(), url.port, url.path.as_str()),
            (true, "www.example.test", 8443, "/a?b=1")
        );
        assert_eq!(url.host_header(), "www.example.test:8443");
        let url = Url::parse("http://[2001:db8::1]").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        assert_eq!(url.host_header(), "[2001:db8::1]");
        let url = Url::parse("https://bücher.example.test:443?q").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.path.as_str(),
                url.host_header().as_str()
            ),
            (
                "xn--bcher-kva.example.test",
                "/?q",
                "xn--bcher-kva.example.test"
            ),
            "an IDN host goes out as its A-label, a default port is not repeated"
        );
        let url = Url::parse("http://example.test/a b").unwrap();
        assert_eq!(url.path, "/a%20b", "the path is sent percent-encoded");
        assert!(Url::parse("ftp://example.test/").is_err());
        assert!(Url::parse("https://user:pw@example.test/").is_err());
        assert!(Url::parse("https://example.test:99999/").is_err());
        let no_scheme = Url::parse("www.example.test/").unwrap_err().to_string();
        assert!(no_scheme.contains("no scheme"), "{no_scheme}");
    }
}
