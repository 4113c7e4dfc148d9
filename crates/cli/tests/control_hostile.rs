//! The control plane of `cutover serve` under attack, as the security issue
//! "Under attack it keeps its secrets and its service" found it: read and
//! probe tokens that make the server connect where the site does not point,
//! a flood of slow probes against an admin, routes that ran the binary
//! after an upgrade replaced it, error answers that were not JSON, and
//! slowloris connections. Real sockets against the real binary.

mod control;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use control::{assert_error, Site};
use serde_json::{json, Value};

/// A raw HTTP answer.
#[derive(Debug)]
struct Answer {
    /// The status.
    status: u16,
    /// The headers, names in lower case.
    headers: HashMap<String, String>,
    /// The body.
    body: String,
}

/// A request as bytes; `Connection: close` so that the answer ends the stream.
fn request(
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: cutover.test\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(kind) = content_type {
        head.push_str(&format!("Content-Type: {kind}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Reads one answer from `stream` (to the end of the stream).
fn read_answer(stream: &mut TcpStream) -> Answer {
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    parse_answer(&bytes)
}

/// Parses an answer's bytes.
fn parse_answer(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("expected an HTTP answer, seen {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("expected a status line, seen {head:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Sends `bytes` to `address` and reads the answer.
fn exchange(address: SocketAddr, bytes: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connect to the control plane");
    stream.write_all(bytes).expect("send the request");
    read_answer(&mut stream)
}

/// Asserts the documented JSON error: the status, JSON, exactly
/// `{"error": {"code", "message"}}`, the code, a message.
fn assert_json_error(answer: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!(
        answer.status, status,
        "{what}: expected status {status}, seen {answer:?}"
    );
    let kind = answer
        .headers
        .get("content-type")
        .cloned()
        .unwrap_or_default();
    assert!(
        kind.starts_with("application/json"),
        "{what}: expected a JSON answer, seen content type {kind:?} and {:?}",
        answer.body
    );
    let body: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{what}: expected JSON, seen {:?}: {e}", answer.body));
    let keys: Vec<&str> = body["error"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        (body.as_object().map(|o| o.len()), keys),
        (Some(1), vec!["code", "message"]),
        "{what}: expected exactly error.code and error.message, seen {body}"
    );
    assert_eq!(
        body["error"]["code"], code,
        "{what}: expected code {code}, seen {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: expected a message, seen {body}"
    );
}

/// An HTTP server on loopback that answers every request with a secret, and
/// counts the connections it saw: the "internal URL" of the attack.
struct Internal {
    /// Where it listens.
    address: SocketAddr,
    /// Connections seen.
    seen: Arc<AtomicUsize>,
}

impl Internal {
    /// Starts it on a port it holds.
    fn start() -> Internal {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the internal server");
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.read(&mut buf);
                let body = "secret=hunter2\n";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Internal { address, seen }
    }

    /// Connections seen so far.
    fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

/// A TCP server that accepts and never says a word: every probe to it waits
/// for its timeout.
struct Tarpit {
    /// Where it listens.
    address: SocketAddr,
    /// Set to stop it.
    stop: Arc<AtomicBool>,
}

impl Tarpit {
    /// Starts it on a port it holds.
    fn start() -> Tarpit {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tarpit");
        let address = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Tarpit { address, stop }
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A migration file for the test zone, moving www to 127.0.0.3, asking the
/// site's own nameserver, with `provider` as its provider line.
fn migration(site: &Site, provider: &str) -> String {
    format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {provider}\n[[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 1\n[schedule]\nswitch_at = \"earliest\"\nmargin = 1\nobserve = \"60s\"\n[verify]\nauthorities = [\"{}\"]\nresolvers = []\ntries = 1\ninterval = 1\n",
        site.dns
    )
}

/// The body of a migration route.
fn file_body(text: &str) -> String {
    json!({"file_name": "move.toml", "text": text}).to_string()
}

/// The number of threads of process `pid`.
fn threads(pid: u32) -> usize {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a thread count")
}

/// The number of open file descriptors of process `pid`.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's descriptors")
        .count()
}

#[test]
fn a_read_or_probe_token_reaches_only_what_the_site_names() {
    let internal = Internal::start();
    let allowed = Internal::start();
    let keys = tempfile::tempdir().expect("a key directory");
    let key_file = keys.path().join("ops.key");
    std::fs::write(&key_file, "hmac-sha256:ops.:c2VjcmV0c2VjcmV0c2VjcmV0").unwrap();
    let site = Site::start(&format!(
        "probe_allow = [\"{}\"]\nmigration_dir = {:?}\n",
        allowed.address,
        keys.path().display().to_string()
    ));
    let secret_url = format!("http://internal.test:{}/secret", internal.address.port());
    let oracle = |token: &str| {
        let body = json!({"kind": "http", "args": [secret_url, "--address", "127.0.0.1", "--body-contains", "secret=h"]});
        site.call(
            "POST",
            "/api/v1/checks/verify",
            Some(token),
            Some(&body.to_string()),
        )
    };
    assert_error(
        &oracle(&site.reader),
        403,
        "forbidden",
        "the oracle with a read token",
    );
    let refused = oracle(&site.prober);
    assert_error(&refused, 403, "forbidden", "the oracle with a probe token");
    let reason = refused.1["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("only its service ports") && reason.contains("probe_allow"),
        "expected the reason (127.0.0.1 is named, port {} is not a service port), seen {reason}",
        internal.address.port()
    );
    let prober = Some(site.prober.as_str());
    for (what, request) in [
        (
            "a port scan",
            json!({"kind": "tcp", "args": [internal.address.to_string()]}),
        ),
        (
            "SSH on a named address",
            json!({"kind": "smtp", "args": ["127.0.0.1:22"]}),
        ),
        (
            "an address no zone names",
            json!({"kind": "http", "args": ["http://x.test/", "--address", "127.0.0.9"]}),
        ),
        (
            "the old address of an oracle",
            json!({"kind": "http", "args": ["http://x.test/", "--address", "127.0.0.1", "--old-address", "10.1.2.3"]}),
        ),
        (
            "a resolver no zone names",
            json!({"kind": "mail", "args": ["example.test.", "--new-ip", "127.0.0.3", "--resolver", "127.0.0.9:53"]}),
        ),
        (
            "a domain no zone names",
            json!({"kind": "mail", "args": ["evil.test.", "--new-ip", "127.0.0.3"]}),
        ),
    ] {
        assert_error(
            &site.call(
                "POST",
                "/api/v1/checks/verify",
                prober,
                Some(&request.to_string()),
            ),
            403,
            "forbidden",
            what,
        );
    }
    for (what, request) in [
        ("a zone not in the store", json!({"zone": "evil.test."})),
        (
            "a server no zone names",
            json!({"zone": "example.test.", "servers": ["127.0.0.9:53"]}),
        ),
        (
            "a resolver no zone names",
            json!({"zone": "example.test.", "resolvers": ["r=127.0.0.9"]}),
        ),
        (
            "the internal port as a server",
            json!({"zone": "example.test.", "servers": [internal.address.to_string()]}),
        ),
        (
            "another port for the zone's own servers",
            json!({"zone": "example.test.", "port": internal.address.port()}),
        ),
    ] {
        assert_error(
            &site.call(
                "POST",
                "/api/v1/checks/check",
                prober,
                Some(&request.to_string()),
            ),
            403,
            "forbidden",
            what,
        );
    }
    let powerdns = migration(
        &site,
        &format!(
            "{{ kind = \"powerdns\", url = \"http://{}/\", api_key = \"x\" }}",
            internal.address
        ),
    );
    assert_error(
        &site.call(
            "POST",
            "/api/v1/migrations/plan",
            prober,
            Some(&file_body(&powerdns)),
        ),
        403,
        "forbidden",
        "a plan whose provider is the internal URL",
    );
    assert_eq!(
        internal.seen(),
        0,
        "expected serve never to have connected to the internal server"
    );

    // Server-side files: outside migration_dir, the same refusal whether the
    // file exists or not, for every token; inside, the plan goes on.
    let rfc2136 = |path: &str| {
        migration(
            &site,
            &format!(
                "{{ kind = \"rfc2136\", server = \"{}\", key = \"ops.\", key_file = {path:?} }}",
                site.dns
            ),
        )
    };
    let mut refusals = Vec::new();
    for path in [
        site.config.display().to_string(),
        site.dir.path().join("nothere.key").display().to_string(),
        format!("{}/../{}", keys.path().display(), "etc-passwd"),
        "/etc/passwd".to_owned(),
    ] {
        for token in [&site.prober, &site.admin] {
            let seen = site.call(
                "POST",
                "/api/v1/migrations/plan",
                Some(token),
                Some(&file_body(&rfc2136(&path))),
            );
            assert_error(&seen, 403, "forbidden", &format!("a key file at {path}"));
            refusals.push(
                seen.1["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    assert!(
        refusals.windows(2).all(|pair| pair[0] == pair[1]),
        "expected one refusal for every path outside, found or not, seen {refusals:?}"
    );
    let inside = site.call(
        "POST",
        "/api/v1/migrations/plan",
        prober,
        Some(&file_body(&rfc2136(&key_file.display().to_string()))),
    );
    assert!(
        inside.0 != 403 && !inside.1.to_string().contains("migration_dir"),
        "expected a key file inside migration_dir read, seen {} {}",
        inside.0,
        inside.1
    );

    // What an admin allows, a probe token reaches; an admin reaches anything.
    let allowed_url = format!("http://allowed.test:{}/", allowed.address.port());
    let body = json!({"kind": "http", "args": [allowed_url, "--address", "127.0.0.1", "--body-contains", "hunter2"]});
    let (status, result) = site.call(
        "POST",
        "/api/v1/checks/verify",
        prober,
        Some(&body.to_string()),
    );
    assert_eq!(
        (status, result["ok"].as_bool(), allowed.seen()),
        (200, Some(true), 1),
        "expected the probe_allow target reached once, seen {status} {result}"
    );
    let (status, result) = oracle(&site.admin);
    assert_eq!(
        (status, result["ok"].as_bool(), internal.seen()),
        (200, Some(true), 1),
        "expected an admin to reach the internal server, seen {status} {result}"
    );
}

#[test]
fn six_hundred_slow_probes_leave_the_admin_answered_within_a_second() {
    let tarpit = Tarpit::start();
    // The defaults: [http] max_connections = 256 for 600 probes and the admin.
    let site = Site::start(&format!("probe_allow = [\"{}\"]\n", tarpit.address));
    let tokens: Vec<String> = (0..5)
        .map(|i| site.token(&format!("flood{i}"), "probe"))
        .collect();
    let slow = |timeout: &str| {
        json!({"kind": "smtp", "args": [tarpit.address.to_string(), "--timeout", timeout]})
            .to_string()
    };
    let hours = site.call(
        "POST",
        "/api/v1/checks/verify",
        Some(&site.prober),
        Some(&slow("2h")),
    );
    assert_error(&hours, 400, "bad_request", "a timeout of hours");
    assert!(
        hours.1.to_string().contains("probe_timeout"),
        "expected the bound named, seen {}",
        hours.1
    );
    let threads_before = threads(site.serve_pid());

    // 600 verifies at once, 120 per token; each would wait 10 s for a banner.
    let body = slow("10s");
    let mut flood: Vec<TcpStream> = (0..600)
        .map(|i| {
            let mut stream = TcpStream::connect(site.http).expect("connect");
            let bytes = request(
                "POST",
                "/api/v1/checks/verify",
                Some(&tokens[i % 5]),
                Some("application/json"),
                body.as_bytes(),
            );
            stream.write_all(&bytes).expect("send a slow verify");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let asked = Instant::now();
        let (status, zones) = site.call("GET", "/api/v1/zones", Some(&site.admin), None);
        let took = asked.elapsed();
        slowest = slowest.max(took);
        assert_eq!(status, 200, "expected the admin's zone list, seen {zones}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        slowest < Duration::from_secs(1),
        "expected the admin answered within 1 s while 600 probes hold, slowest {slowest:?}"
    );
    let (status, admin_probe) = site.call(
        "POST",
        "/api/v1/checks/verify",
        Some(&site.admin),
        Some(&json!({"kind": "tcp", "args": [site.dns.to_string()]}).to_string()),
    );
    assert_eq!(
        (status, admin_probe["ok"].as_bool()),
        (200, Some(true)),
        "expected an admin's probe to run past the probe tokens' total, seen {admin_probe}"
    );
    let (_, metrics, text) = site.text("/metrics");
    let running: usize = text
        .lines()
        .find_map(|line| line.strip_prefix("cutover_http_probes_running "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expected the probes gauge, seen {metrics}"));
    assert!(
        running <= 8,
        "expected at most max_probes (8) running, seen {running}"
    );
    let threads_during = threads(site.serve_pid());
    assert!(
        threads_during <= threads_before + 16,
        "expected serve's threads bounded (probes are children, not blocking threads), \
         seen {threads_before} before and {threads_during} during"
    );

    let (mut answered, mut too_many) = (0, 0);
    for stream in &mut flood {
        let answer = read_answer(stream);
        match answer.status {
            200 => answered += 1,
            429 => {
                assert_json_error(&answer, 429, "too_many_requests", "a probe over the bounds");
                assert_eq!(
                    answer.headers.get("retry-after").map(String::as_str),
                    Some("1"),
                    "expected Retry-After on a 429, seen {answer:?}"
                );
                too_many += 1;
            }
            other => panic!("expected 200 or 429 for each slow probe, seen {other}: {answer:?}"),
        }
    }
    assert_eq!(answered + too_many, 600, "expected every probe answered");
    assert!(
        (1..=8).contains(&answered),
        "expected at most max_probes (8) probes run and the rest refused, seen {answered} run and {too_many} refused"
    );
}

#[test]
fn routes_that_run_the_binary_survive_an_upgrade_that_replaces_it() {
    let dir = tempfile::tempdir().expect("a directory for the binary");
    let binary = dir.path().join("cutover");
    std::fs::copy(env!("CARGO_BIN_EXE_cutover"), &binary).expect("copy the binary");
    let site = Site::start_from(&binary, "");
    let text = migration(&site, "{ kind = \"embedded\" }");
    let (status, created) = site.call(
        "POST",
        "/api/v1/migrations",
        Some(&site.admin),
        Some(&file_body(&text)),
    );
    assert_eq!(status, 200, "expected a migration started, seen {created}");
    let id = created["id"].as_i64().expect("an id");

    // The upgrade: the file is deleted and another program takes its path.
    std::fs::remove_file(&binary).expect("delete the binary");
    std::fs::write(
        &binary,
        "#!/bin/sh\necho 'not the cutover serve runs' >&2\nexit 97\n",
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&binary).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&binary, permissions).unwrap();

    let check = json!({"zone": "example.test.", "names": ["www"], "types": ["A"], "servers": [site.dns.to_string()], "timeout": "1s"});
    let verify = json!({"kind": "tcp", "args": [site.dns.to_string()]});
    let prober = Some(site.prober.as_str());
    let admin = Some(site.admin.as_str());
    let (status, result) = site.call(
        "POST",
        "/api/v1/checks/check",
        prober,
        Some(&check.to_string()),
    );
    assert_eq!(
        (status, result["report"]["servers"][0]["records"].clone()),
        (200, json!(["127.0.0.2"])),
        "check after the upgrade: expected www's address, seen {status} {result}"
    );
    let (status, result) = site.call(
        "POST",
        "/api/v1/checks/verify",
        prober,
        Some(&verify.to_string()),
    );
    assert_eq!(
        (status, result["ok"].as_bool()),
        (200, Some(true)),
        "verify after the upgrade: seen {status} {result}"
    );
    // Migration 1 moves the same RRset: planning it again needs force.
    let forced = json!({"file_name": "move.toml", "text": text, "force": true}).to_string();
    let (status, plan) = site.call("POST", "/api/v1/migrations/plan", prober, Some(&forced));
    assert_eq!(
        (status, plan["zone"].as_str()),
        (200, Some("example.test.")),
        "plan after the upgrade: seen {status} {plan}"
    );
    let (status, second) = site.call("POST", "/api/v1/migrations", admin, Some(&forced));
    assert!(
        status == 200 && second["id"].as_i64().is_some_and(|second| second > id),
        "start after the upgrade: seen {status} {second}"
    );
    let (status, matrix) = site.call(
        "GET",
        &format!("/api/v1/migrations/{id}/propagation"),
        Some(&site.reader),
        None,
    );
    assert_eq!(
        (status, matrix["questions"].clone()),
        (200, json!(["www.example.test. A"])),
        "propagation after the upgrade: seen {status} {matrix}"
    );
    let replaced = std::process::Command::new(&binary)
        .output()
        .expect("run the replacement");
    assert_eq!(
        replaced.status.code(),
        Some(97),
        "expected the path to hold the other program all along"
    );
}

/// The datagrams waiting at `socket` (a resolver that never answers),
/// read without blocking: the questions sent to it so far and not yet
/// counted. A question sent before an HTTP answer came back is in the
/// socket's queue by then (loopback delivers within `sendto`).
fn questions_waiting(socket: &std::net::UdpSocket) -> usize {
    socket.set_nonblocking(true).expect("a non-blocking socket");
    let mut buffer = [0u8; 512];
    let mut count = 0;
    loop {
        match socket.recv_from(&mut buffer) {
            Ok(_) => count += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return count,
            Err(e) => panic!("reading the resolver's socket: {e}"),
        }
    }
}

/// The DNS answers the site's nameserver gave, by /metrics.
fn dns_answers(site: &Site) -> u64 {
    let (_, _, text) = site.text("/metrics");
    text.lines()
        .filter(|line| line.starts_with("cutover_dns_answers_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_read_token_sees_the_last_matrix_and_never_makes_the_server_ask() {
    let site = Site::start("");
    // The migration's resolver: a held socket that counts what it is asked.
    let resolver = cutover_peers::hold_udp_on(control::LOOPBACK);
    let resolver_address = resolver.local_addr().unwrap();
    // A switch three days ahead: the scheduler has nothing due meanwhile,
    // so every question seen below is the propagation route's.
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(72);
    let text = format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n[[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 1\n[schedule]\nswitch_at = \"{}\"\nobserve = \"24h\"\n[verify]\nauthorities = [\"{}\"]\nresolvers = [\"{resolver_address}\"]\ntries = 1\ninterval = 1\n",
        later.strftime("%Y-%m-%dT%H:%M:%SZ"),
        site.dns
    );
    // The resolver never answers: planning refuses it unless forced.
    let forced = json!({"file_name": "move.toml", "text": text, "force": true}).to_string();
    let (status, created) = site.call(
        "POST",
        "/api/v1/migrations",
        Some(&site.admin),
        Some(&forced),
    );
    assert_eq!(status, 200, "expected a migration started, seen {created}");
    let id = created["id"].as_i64().expect("an id");
    let path = format!("/api/v1/migrations/{id}/propagation");
    questions_waiting(&resolver); // What planning asked.
    let (status, detail) = site.call(
        "GET",
        &format!("/api/v1/migrations/{id}"),
        Some(&site.admin),
        None,
    );
    assert!(
        status == 200 && detail["steps"].as_array().is_some_and(Vec::is_empty),
        "expected no step run before the switch three days ahead, seen {detail}"
    );

    // A reader, before anyone asked: nothing known, nothing asked.
    let answers_before = dns_answers(&site);
    for _ in 0..20 {
        let (status, matrix) = site.call("GET", &path, Some(&site.reader), None);
        assert_eq!(
            (
                status,
                matrix["source"].as_str(),
                matrix["refreshed"].as_bool()
            ),
            (200, Some("none"), Some(false)),
            "expected a reader told nothing was asked yet, seen {matrix}"
        );
        assert_eq!(
            (matrix["questions"].clone(), matrix["rows"].clone()),
            (json!(["www.example.test. A"]), json!([])),
            "expected the moving record and no rows, seen {matrix}"
        );
    }
    assert_eq!(
        (
            questions_waiting(&resolver),
            dns_answers(&site) - answers_before
        ),
        (0, 0),
        "expected 20 readers' calls to ask the resolver and the authority nothing"
    );

    // A probe token asks: the resolver and the authority are asked.
    let (status, matrix) = site.call("GET", &path, Some(&site.prober), None);
    assert_eq!(
        (
            status,
            matrix["source"].as_str(),
            matrix["refreshed"].as_bool()
        ),
        (200, Some("check"), Some(true)),
        "expected a probe token's call to ask anew, seen {matrix}"
    );
    assert_eq!(
        matrix["rows"][0]["cells"][0]["state"], "old",
        "expected the authority on the old address, seen {matrix}"
    );
    let asked = questions_waiting(&resolver);
    assert!(
        asked >= 1,
        "expected the probe token's check to ask the resolver, seen {asked} questions"
    );
    let answers_after_probe = dns_answers(&site);
    assert!(
        answers_after_probe > answers_before,
        "expected the probe token's check to ask the authority"
    );

    // A reader afterwards: that matrix, with its age, and still nothing asked.
    for _ in 0..20 {
        let (status, seen) = site.call("GET", &path, Some(&site.reader), None);
        assert_eq!(
            (status, seen["source"].as_str(), seen["refreshed"].as_bool()),
            (200, Some("check"), Some(false)),
            "expected a reader given the last check's matrix, seen {seen}"
        );
        assert!(
            seen["age_seconds"].as_u64().is_some() && seen["checked_at"] == matrix["checked_at"],
            "expected the probe token's matrix with its age, seen {seen}"
        );
        assert_eq!(seen["rows"], matrix["rows"], "expected the same rows");
    }
    // Readers go on asking until the matrix is past the second a probe
    // token's call would reuse it for: a reused matrix cannot explain the
    // zero (10 s: the matrix ages in 1 s; the rest is a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut calls = 20;
    loop {
        let (_, seen) = site.call("GET", &path, Some(&site.reader), None);
        calls += 1;
        assert_eq!(seen["refreshed"], false, "expected no refresh, seen {seen}");
        if seen["age_seconds"].as_u64() >= Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected the matrix aged past a second within 10 s, seen {seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        (questions_waiting(&resolver), dns_answers(&site) - answers_after_probe),
        (0, 0),
        "expected {calls} readers' calls after the check to ask the resolver and the authority nothing"
    );
}

#[test]
fn every_error_is_the_documented_json_error() {
    let site = Site::start("body_timeout = \"3s\"\n");
    let admin = Some(site.admin.as_str());
    let records = "/api/v1/zones/example.test./records";
    let change = br#"{"action":"add","name":"www","type":"A","data":"127.0.0.7"}"#;
    let declared_large = format!(
        "POST {records} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        site.admin,
        3 << 20
    );
    for (what, bytes, status, code) in [
        (
            "a body over the limit",
            declared_large.into_bytes(),
            413,
            "too_large",
        ),
        (
            "an unknown route",
            request("GET", "/api/v1/nothing", admin, None, b""),
            404,
            "not_found",
        ),
        (
            "an unknown route without a token",
            request("GET", "/nothing", None, None, b""),
            404,
            "not_found",
        ),
        (
            "a method the route lacks",
            request("DELETE", "/api/v1/zones", admin, None, b""),
            405,
            "method_not_allowed",
        ),
        (
            "GET on a POST route",
            request("GET", "/api/v1/checks/verify", admin, None, b""),
            405,
            "method_not_allowed",
        ),
        (
            "OPTIONS",
            request("OPTIONS", "/api/v1/zones", admin, None, b""),
            405,
            "method_not_allowed",
        ),
        (
            "a body that is not JSON",
            request(
                "POST",
                records,
                admin,
                Some("application/json"),
                b"{not json",
            ),
            400,
            "bad_request",
        ),
        (
            "a bad query string",
            request(
                "GET",
                "/api/v1/zones/example.test./diff?from=%ZZ",
                admin,
                None,
                b"",
            ),
            400,
            "bad_request",
        ),
        (
            "a path that is not UTF-8",
            request("GET", "/api/v1/zones/%FF%FE", admin, None, b""),
            400,
            "bad_request",
        ),
        (
            "a body without a content type",
            request("POST", records, admin, None, change),
            415,
            "unsupported_media_type",
        ),
        (
            "a body as text/plain",
            request("POST", records, admin, Some("text/plain"), change),
            415,
            "unsupported_media_type",
        ),
        (
            "no token",
            request("POST", records, None, Some("application/json"), change),
            401,
            "unauthenticated",
        ),
    ] {
        assert_json_error(&exchange(site.http, &bytes), status, code, what);
    }
    let allow = exchange(
        site.http,
        &request("DELETE", "/api/v1/zones", admin, None, b""),
    );
    assert!(
        allow
            .headers
            .get("allow")
            .is_some_and(|a| a.contains("GET")),
        "expected the 405 to keep its Allow header, seen {allow:?}"
    );

    // A body that stops coming: 408 after body_timeout; without a token it
    // is never waited for.
    let partial = |token: Option<&str>| {
        let mut head = format!(
            "POST {records} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
        );
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n{\"action\":");
        head.into_bytes()
    };
    let sent = Instant::now();
    let answer = exchange(site.http, &partial(admin));
    let waited = sent.elapsed();
    assert_json_error(&answer, 408, "request_timeout", "a body that stops coming");
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(10),
        "expected the 408 after body_timeout (3 s), seen it after {waited:?}"
    );
    let sent = Instant::now();
    let answer = exchange(site.http, &partial(None));
    assert_json_error(
        &answer,
        401,
        "unauthenticated",
        "a partial body without a token",
    );
    assert!(
        sent.elapsed() < Duration::from_millis(2500),
        "expected the 401 before any body was waited for, seen it after {:?}",
        sent.elapsed()
    );
    let (status, zone) = site.call("GET", "/api/v1/zones/example.test.", admin, None);
    assert!(
        status == 200 && !zone.to_string().contains("127.0.0.7"),
        "expected none of the refused changes applied, seen {zone}"
    );
}

/// A connection trickling a request one byte at a time.
struct Trickle {
    /// The socket.
    stream: TcpStream,
    /// When it was opened.
    opened: Instant,
    /// When it was seen closed.
    closed: Option<Instant>,
    /// Bytes sent so far.
    sent: usize,
}

#[test]
fn slowloris_connections_are_closed_and_the_admin_is_answered_while_they_hold() {
    let site = Site::start("header_timeout = \"2s\"\nmax_connections = 64\n");
    let pid = site.serve_pid();
    let descriptors_before = descriptors(pid);
    let head = format!(
        "GET /api/v1/zones HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nX-Pad: {}\r\n\r\n",
        site.reader,
        "a".repeat(200)
    );
    let head = head.as_bytes();
    let mut trickles: Vec<Trickle> = Vec::new();
    let attack = Instant::now();
    let mut admin_slowest = Duration::ZERO;
    let mut admin_answers = 0;
    let mut most_descriptors = 0;
    let mut next_byte = Instant::now();
    while attack.elapsed() < Duration::from_secs(6) {
        // 300 connections in the first 1.5 s, then they hold.
        while trickles.len() < 300
            && attack.elapsed() >= Duration::from_millis(5 * trickles.len() as u64)
        {
            let stream = TcpStream::connect(site.http).expect("connect");
            stream.set_nonblocking(true).unwrap();
            trickles.push(Trickle {
                stream,
                opened: Instant::now(),
                closed: None,
                sent: 0,
            });
        }
        // One byte every 500 ms on each open connection (never a whole head).
        if Instant::now() >= next_byte {
            next_byte = Instant::now() + Duration::from_millis(500);
            for trickle in trickles.iter_mut().filter(|t| t.closed.is_none()) {
                let byte = &head[trickle.sent % (head.len() - 4)..][..1];
                match trickle.stream.write(byte) {
                    Ok(_) => trickle.sent += 1,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => trickle.closed = Some(Instant::now()),
                }
            }
        }
        for trickle in trickles.iter_mut().filter(|t| t.closed.is_none()) {
            let mut buf = [0u8; 512];
            match trickle.stream.read(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                _ => trickle.closed = Some(Instant::now()),
            }
        }
        most_descriptors = most_descriptors.max(descriptors(pid));
        // While they hold: an admin asks, on a connection of its own.
        let holding = attack.elapsed() > Duration::from_millis(800) && admin_answers < 6;
        if holding && attack.elapsed() > Duration::from_millis(800 + 700 * admin_answers as u64) {
            let asked = Instant::now();
            let (status, zones) = site.call("GET", "/api/v1/zones", Some(&site.admin), None);
            admin_slowest = admin_slowest.max(asked.elapsed());
            assert_eq!(
                status, 200,
                "expected the admin answered during the attack, seen {zones}"
            );
            admin_answers += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let open: Vec<&Trickle> = trickles.iter().filter(|t| t.closed.is_none()).collect();
    assert!(
        open.is_empty(),
        "expected every trickling connection closed within 6 s, {} still open",
        open.len()
    );
    let longest = trickles
        .iter()
        .filter_map(|t| t.closed.map(|closed| closed - t.opened))
        .max()
        .unwrap_or_default();
    assert!(
        longest <= Duration::from_millis(3500),
        "expected each trickling connection closed within header_timeout (2 s) and a margin, the longest held {longest:?}"
    );
    assert!(
        admin_answers >= 5 && admin_slowest < Duration::from_secs(1),
        "expected the admin answered within 1 s while they held, seen {admin_answers} answers, slowest {admin_slowest:?}"
    );
    assert!(
        most_descriptors <= descriptors_before + 64 + 16,
        "expected at most max_connections (64) more descriptors, seen {descriptors_before} before and {most_descriptors} at most"
    );
    let warnings = site
        .log()
        .lines()
        .filter(|line| line.contains("max_connections"))
        .count();
    assert!(
        (1..=2).contains(&warnings),
        "expected the cap logged once per 10 s (1 or 2 lines in 6 s), seen {warnings}:\n{}",
        site.log()
    );
    let (_, _, metrics) = site.text("/metrics");
    let evicted: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("cutover_http_connections_evicted_total "))
        .and_then(|n| n.parse().ok())
        .expect("the evictions counter");
    assert!(
        evicted >= 200,
        "expected the idle trickles evicted at the cap, seen {evicted}"
    );

    // A kept-alive connection left idle is closed after header_timeout too.
    let mut idle = TcpStream::connect(site.http).expect("connect");
    let ask = format!(
        "GET /api/v1/zones HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        site.reader
    );
    idle.write_all(ask.as_bytes()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let since = Instant::now();
    let mut bytes = Vec::new();
    let _ = idle.read_to_end(&mut bytes);
    let held = since.elapsed();
    assert!(
        parse_answer(&bytes).status == 200 && held < Duration::from_secs(5),
        "expected the answer, then the idle connection closed within header_timeout and a margin, held {held:?}"
    );
}

#[test]
fn event_streams_are_bounded_per_token() {
    let site = Site::start("");
    let open_stream = |token: &str| -> (TcpStream, String) {
        let mut stream = TcpStream::connect(site.http).expect("connect");
        let ask = format!(
            "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(ask.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        (stream, String::from_utf8_lossy(&head).into_owned())
    };
    let mut held: Vec<TcpStream> = (0..16)
        .map(|i| {
            let (stream, head) = open_stream(&site.reader);
            assert!(
                head.starts_with("HTTP/1.1 200"),
                "stream {i}: expected it open, seen {head:?}"
            );
            stream
        })
        .collect();
    let refused = exchange(
        site.http,
        &request("GET", "/api/v1/events", Some(&site.reader), None, b""),
    );
    assert_json_error(
        &refused,
        429,
        "too_many_requests",
        "a 17th stream of one token",
    );
    assert!(
        refused.headers.contains_key("retry-after"),
        "expected Retry-After, seen {refused:?}"
    );
    let (_, head) = open_stream(&site.admin);
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "expected another token's stream open, seen {head:?}"
    );
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, head) = open_stream(&site.reader);
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected a stream again once one closed, seen {head:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
