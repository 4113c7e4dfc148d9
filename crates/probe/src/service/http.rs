//! HTTP and HTTPS to a URL pinned to an address, as `curl --resolve` does:
//! the connection goes to the given IP, SNI and Host come from the URL.
//!
//! ```text
//!  Url::parse ──▶ tcp::open(ip:port) ──[tls::handshake SNI=host]──▶ GET (Connection: close)
//!       ──read to EOF──▶ parse_response (pure) ──▶ HttpObservation ──compare(old, new)──▶ differences
//! ```
//!
//! Redirects are reported (status and Location), never followed: a redirect
//! to another host would leave the pinned address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::RootCertStore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::tls::{self, hex, TlsObservation, Verdict};
use super::{tcp, ServiceError};

/// The largest response read (headers and body).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

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
    /// The host (SNI and Host header).
    pub host: String,
    /// The port (explicit, or 80/443).
    pub port: u16,
    /// Path and query, starting with '/'.
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

/// A parsed HTTP/1.x response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (chunked encoding removed).
    pub body: Vec<u8>,
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

impl Url {
    /// Parses `http[s]://host[:port][/path]` (IPv6 hosts in brackets).
    pub fn parse(text: &str) -> Result<Url, ServiceError> {
        let bad = |reason: &str| ServiceError::Url {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("only http:// and https:// URLs are probed"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let path = path.split('#').next().unwrap_or("/").to_string();
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not sent by probes"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (host.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
            None if tls => 443,
            None => 80,
        };
        Ok(Url {
            tls,
            host: host.to_ascii_lowercase(),
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
    let (bytes, tls) = if request.url.tls {
        let handshake = tls::handshake(connected.stream, address, &request.url.host, roots, now);
        let (stream, seen) = tokio::time::timeout(request.timeout, handshake)
            .await
            .map_err(|_| ServiceError::Timeout {
                address,
                stage: "TLS handshake",
            })??;
        (exchange(stream, request, address).await?, Some(seen))
    } else {
        (exchange(connected.stream, request, address).await?, None)
    };
    let response =
        parse_response(&bytes).map_err(|reason| ServiceError::Protocol { address, reason })?;
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
    Ok((observation, response.body))
}

/// Sends the GET and reads the whole response.
async fn exchange<S>(
    mut stream: S,
    request: &HttpRequest,
    address: SocketAddr,
) -> Result<Vec<u8>, ServiceError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cutover-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        request.url.path,
        request.url.host_header()
    );
    let io = |e: std::io::Error| ServiceError::Io {
        address,
        reason: e.to_string(),
    };
    let talk = async {
        stream.write_all(head.as_bytes()).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let mut bytes = Vec::new();
        let mut chunk = vec![0u8; 16384];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                // Many servers close without a TLS close_notify; what was
                // read is checked against Content-Length or chunking anyway.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(io(e)),
            }
            if bytes.len() > MAX_RESPONSE {
                return Err(ServiceError::Protocol {
                    address,
                    reason: format!("response larger than {MAX_RESPONSE} bytes"),
                });
            }
        }
        Ok(bytes)
    };
    tokio::time::timeout(request.timeout, talk)
        .await
        .map_err(|_| ServiceError::Timeout {
            address,
            stage: "HTTP response",
        })?
}

/// Parses a complete HTTP/1.x response (read until the server closed).
pub fn parse_response(bytes: &[u8]) -> Result<Response, String> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no end of headers")?;
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "the response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("status line {status_line:?} is not HTTP/1.x"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| format!("status line {status_line:?} has no status code"))?;
    let reason = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header line {line:?} has no colon"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let raw = &bytes[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(raw)?
    } else if let Some(length) = find("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("Content-Length {length:?} is not a number"))?;
        if raw.len() < length {
            return Err(format!(
                "body of {} bytes, Content-Length says {length}",
                raw.len()
            ));
        }
        raw[..length].to_vec()
    } else {
        raw.to_vec()
    };
    Ok(Response {
        status,
        reason,
        headers,
        body,
    })
}

/// Removes chunked transfer encoding.
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line has no CRLF")?;
        let size_text =
            std::str::from_utf8(&raw[..line_end]).map_err(|_| "chunk size not ASCII")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("chunk size {size_text:?} is not hex"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if raw.len() < size + 2 {
            return Err(format!("a chunk of {size} bytes is cut short"));
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
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
        assert!(Url::parse("ftp://example.test/").is_err());
        assert!(Url::parse("https://user:pw@example.test/").is_err());
    }

    #[test]
    fn responses_parse_with_length_or_chunks() {
        let r = parse_response(
            b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nContent-Length: 2\r\n\r\nhiEXTRA",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (301, &b"hi"[..]));
        assert_eq!(r.headers[0], ("location".into(), "https://x/".into()));
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, b"abcde");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }
}
