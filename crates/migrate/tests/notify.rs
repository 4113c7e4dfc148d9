//! Notifications on real sockets: a migration run on a test clock tells a
//! webhook (an HTTP server in the test, its port held from bind to end)
//! of its waits, its approval gate, the switch and its end, signed with
//! HMAC-SHA256; a Slack-compatible URL gets `{"text": …}`; Postfix's
//! smtp-sink gets the e-mail, and aiosmtpd, a submission server with TLS
//! from a test CA and a login, gets it over STARTTLS or TLS with AUTH
//! PLAIN (and refuses a wrong password, another CA's certificate); a webhook answering 500 twice is retried
//! until it takes the notice; one down during the run gets it after the
//! worker is started again; and one that never answers holds no step up.
//!
//! ```text
//!  World (memory provider, scripted checks) ──tick on the test clock──▶ store (events)
//!  notify::Worker (its own thread, same clock) ──▶ HookServer (TcpListener on port 0) │ smtp-sink
//! ```

mod support;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover_migrate::notify::{deliveries, Delivery, Worker};
use cutover_migrate::{Clock, ManualClock, Migrations, State};
use cutover_peers::{start_on_free_ports, wait_bound, Guard, Ports, Socket, StartError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use support::*;

/// One request the hook server received.
#[derive(Clone, Debug)]
struct Request {
    /// The path.
    path: String,
    /// Headers, names lowercased.
    headers: Vec<(String, String)>,
    /// The body.
    body: String,
}

impl Request {
    /// A header's value.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("expected a JSON body, saw {:?}: {e}", self.body))
    }
}

/// How the hook server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The statuses scripted, then 200.
    Answer,
    /// Accepts, reads, never answers (holds the connection).
    Hang,
}

/// An HTTP server on a loopback port held from bind to drop.
struct HookServer {
    /// Where it listens.
    addr: SocketAddr,
    /// What it received, in order.
    received: Arc<Mutex<Vec<Request>>>,
    /// Statuses to answer before the 200s.
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl HookServer {
    /// Serves on `listener` in `mode`.
    fn on(listener: TcpListener, mode: Mode) -> HookServer {
        HookServer::serving(listener, mode, None)
    }

    /// Serves HTTPS with `tls` on a kernel-chosen port, answering 200.
    fn https(tls: Arc<rustls::ServerConfig>) -> HookServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        HookServer::serving(listener, Mode::Answer, Some(tls))
    }

    /// Serves on `listener` in `mode`, over TLS when `tls` is given.
    fn serving(
        listener: TcpListener,
        mode: Mode,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> HookServer {
        let addr = listener.local_addr().expect("local addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let (r, s) = (Arc::clone(&received), Arc::clone(&script));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if let Some(config) = &tls {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let Ok(connection) = rustls::ServerConnection::new(Arc::clone(config)) else {
                        continue;
                    };
                    let mut secured = rustls::StreamOwned::new(connection, stream);
                    // A client that refused the certificate ends here.
                    let Some(request) = read_request(&mut secured) else {
                        continue;
                    };
                    r.lock().unwrap().push(request);
                    let _ = write!(
                        secured,
                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = secured.flush();
                    secured.conn.send_close_notify();
                    let _ = secured.conn.complete_io(&mut secured.sock);
                    continue;
                }
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                r.lock().unwrap().push(request);
                if mode == Mode::Hang {
                    held.push(stream);
                    continue;
                }
                let status = s.lock().unwrap().pop_front().unwrap_or(200);
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        HookServer {
            addr,
            received,
            script,
        }
    }

    /// A new server on a kernel-chosen port.
    fn start(mode: Mode) -> HookServer {
        HookServer::on(TcpListener::bind("127.0.0.1:0").expect("bind"), mode)
    }

    /// The URL of `path`.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What it received so far.
    fn received(&self) -> Vec<Request> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (30 s at most) until `done(received)`, advancing `clock` a
    /// little each round so retries fall due.
    fn wait_for(
        &self,
        clock: &ManualClock,
        what: &str,
        done: impl Fn(&[Request]) -> bool,
    ) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.received();
            if done(&seen) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "expected {what} within 30 s; received {} request(s): {:#?}",
                seen.len(),
                seen.iter().map(|r| (&r.path, &r.body)).collect::<Vec<_>>()
            );
            clock.advance(2);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads one HTTP/1.1 request (headers and a Content-Length body).
fn read_request(stream: impl Read) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        path,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

/// The runner tests' file with an approval gate before the switch and
/// these `[[notify]]` tables.
fn file_with(notify: &str) -> String {
    let gated = FILE.replacen(
        "provider = { kind = \"embedded\" }\n",
        "provider = { kind = \"embedded\" }\napprove = \"before_switch\"\n",
        1,
    );
    format!("{gated}{notify}")
}

/// Starts the file's migration at t0; returns its id.
fn start(w: &World, m: &Migrations, text: &str) -> i64 {
    w.start(m, text)
}

/// Ticks on `clock` until the migration is in a state `stop` accepts.
fn run_until(
    w: &World,
    m: &Migrations,
    id: i64,
    clock: &ManualClock,
    stop: impl Fn(State) -> bool,
) {
    for _ in 0..100 {
        let summary = m.status(id).expect("status");
        if stop(summary.state) {
            return;
        }
        let due = summary
            .next_due
            .unwrap_or_else(|| panic!("migration {id} is {} with nothing due", summary.state));
        if due > clock.now() {
            clock.set(due);
        }
        m.tick(id, &w.fx_on(clock)).expect("tick");
    }
    panic!("migration {id} did not get there in 100 ticks");
}

/// The hex HMAC-SHA256 of `<timestamp>.<body>` keyed with `secret`.
fn expected_signature(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `event` of each JSON body, in order.
fn events_of(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// The notices of migration `id` as the store says.
fn deliveries_of(m: &Migrations, id: i64) -> Vec<Delivery> {
    deliveries(m, id).expect("deliveries")
}

const SECRET: &str = "hmac-SECRET-7f3a";

#[test]
fn a_run_tells_the_webhook_signed_and_slack_of_waits_approval_switch_and_end() {
    let hook = HookServer::start(Mode::Answer);
    let w = World::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let m = w.open();
    let text = file_with(&format!(
        "[[notify]]\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n\
         [[notify]]\nkind = \"slack\"\nurl = \"{}\"\non = [\"switch\", \"end\"]\n",
        hook.url("/hook/path-SECRET"),
        hook.url("/slack/T0/B0/slack-SECRET"),
    ));
    let id = start(&w, &m, &text);
    let worker = Worker::new(&w.db(), clock.clone())
        .poll_every(Duration::from_millis(20))
        .spawn()
        .expect("spawn");
    run_until(&w, &m, id, &clock, |s| s == State::AwaitingApproval);
    hook.wait_for(&clock, "the approval notice", |r| {
        events_of(r).contains(&"approval".to_string())
    });
    m.approve(id, clock.now(), "alice", None).expect("approve");
    run_until(&w, &m, id, &clock, |s| s == State::Done);
    let seen = hook.wait_for(&clock, "the end notices on both URLs", |r| {
        r.iter()
            .filter(|r| {
                r.json().get("event").is_some_and(|e| e == "end")
                    || r.json()["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("(end)"))
            })
            .count()
            == 2
    });
    worker.stop();

    let webhook: Vec<Request> = seen
        .iter()
        .filter(|r| r.path.starts_with("/hook/"))
        .cloned()
        .collect();
    let kinds = events_of(&webhook);
    for expected in ["wait", "approval", "switch", "end"] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "expected a {expected} notice on the webhook, saw {kinds:?}"
        );
    }
    let first_wait = &webhook[kinds.iter().position(|k| k == "wait").unwrap()].json();
    assert!(
        first_wait["message"]
            .as_str()
            .is_some_and(|m| m.contains("lower ttls: done") && m.contains("before wait for caches")),
        "expected the first wait to follow the lowering, saw {first_wait}"
    );
    assert!(
        kinds.iter().position(|k| k == "approval") < kinds.iter().position(|k| k == "switch")
            && kinds.iter().position(|k| k == "switch") < kinds.iter().position(|k| k == "end"),
        "expected approval, then switch, then end, saw {kinds:?}"
    );
    let mut ids = Vec::new();
    for r in &webhook {
        let stamp = r.header("x-cutover-timestamp").expect("a timestamp header");
        let signature = r.header("x-cutover-signature").expect("a signature header");
        assert_eq!(
            signature,
            format!("sha256={}", expected_signature(SECRET, stamp, &r.body)),
            "expected the HMAC-SHA256 of \"{stamp}.\" and the body"
        );
        let body = r.json();
        for key in [
            "id",
            "migration",
            "name",
            "zone",
            "event",
            "message",
            "time",
            "state",
            "step",
        ] {
            assert!(body.get(key).is_some(), "expected {key} in {body}");
        }
        assert_eq!(body["migration"], id, "{body}");
        assert_eq!(body["zone"], "example.com.", "{body}");
        let expected_state = match body["event"].as_str() {
            Some("switch") => "flushing",
            Some("approval") => "awaiting_approval",
            Some("end") => "done",
            _ => "",
        };
        assert!(
            body["state"].is_string()
                && (expected_state.is_empty() || body["state"] == expected_state),
            "expected every notice to carry the migration's state ({expected_state:?} for this one), saw {body}"
        );
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "each notice once here: {ids:?}");

    let slack: Vec<&Request> = seen
        .iter()
        .filter(|r| r.path.starts_with("/slack/"))
        .collect();
    let texts: Vec<String> = slack
        .iter()
        .map(|r| {
            let body = r.json();
            assert_eq!(
                body.as_object().map(|o| o.len()),
                Some(1),
                "expected a Slack body holding only text, saw {body}"
            );
            body["text"].as_str().expect("text").to_string()
        })
        .collect();
    assert_eq!(
        texts.len(),
        2,
        "slack asked for switch and end only: {texts:?}"
    );
    assert!(
        texts[0].contains("(switch)") && texts[0].contains("switched"),
        "{texts:?}"
    );
    assert!(
        texts[1].contains("(end)") && texts[1].contains("done"),
        "{texts:?}"
    );

    let all = deliveries_of(&m, id);
    assert!(
        all.iter()
            .all(|d| d.delivered_at.is_some() && d.attempts == 1 && d.last_error.is_none()),
        "expected every notice delivered at the first attempt: {all:#?}"
    );
    assert_eq!(all.len(), seen.len(), "one row per request received");
    // Secrets nowhere but the stored file (inline, by the operator's choice).
    let shown = format!(
        "{}{}",
        serde_json::to_string(&all).unwrap(),
        m.show(id).expect("show").file_text
    );
    for secret in [SECRET, "path-SECRET", "slack-SECRET"] {
        assert!(!shown.contains(secret), "{secret} shown in:\n{shown}");
    }
    assert!(
        all.iter()
            .any(|d| d.target == format!("webhook to {}", hook.addr)),
        "expected the target shown by its host: {all:#?}"
    );
}

#[test]
fn a_webhook_answering_500_twice_gets_the_notice_at_the_third_attempt() {
    let hook = HookServer::start(Mode::Answer);
    hook.script.lock().unwrap().extend([500, 500]);
    let w = World::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let m = w.open();
    let text = file_with(&format!(
        "[[notify]]\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\non = [\"approval\"]\n",
        hook.url("/hook")
    ));
    let id = start(&w, &m, &text);
    run_until(&w, &m, id, &clock, |s| s == State::AwaitingApproval);
    let worker = Worker::new(&w.db(), clock.clone());
    // Passes driven here, one attempt each, the clock moved past the backoff.
    let mut seen_failures = Vec::new();
    for _ in 0..3 {
        let pass = worker.pass(&m).expect("pass");
        if pass.failed == 1 {
            let d = deliveries_of(&m, id);
            seen_failures.push((d[0].attempts, d[0].last_error.clone(), d[0].delivered_at));
        }
        let next = deliveries_of(&m, id)[0].next_at;
        if let Some(next) = next {
            assert!(
                next > clock.now(),
                "a failed attempt is retried later, not at once"
            );
            clock.set(next);
        }
    }
    assert_eq!(
        seen_failures,
        vec![
            (1, Some("HTTP 500".to_string()), None),
            (2, Some("HTTP 500".to_string()), None)
        ],
        "expected two failed attempts shown truthfully (not delivered)"
    );
    let got = hook.received();
    assert_eq!(got.len(), 3, "three attempts reached the server");
    assert!(
        got.iter()
            .all(|r| r.body == got[0].body
                && r.header("x-cutover-id") == got[0].header("x-cutover-id")),
        "the same notice every time, for de-duplication"
    );
    let d = &deliveries_of(&m, id)[0];
    assert_eq!(d.attempts, 3, "{d:?}");
    assert!(d.delivered_at.is_some(), "delivered at the third: {d:?}");
}

#[test]
fn a_webhook_down_during_the_run_gets_its_notices_after_a_restart() {
    // Bound and not listening: connections are refused, and the port stays ours.
    let (socket, addr) = cutover_peers::refusing_tcp([127, 0, 0, 1]);
    let w = World::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let m = w.open();
    let text = file_with(&format!(
        "[[notify]]\nkind = \"webhook\"\nurl = \"http://{addr}/hook\"\nsecret = \"{SECRET}\"\non = [\"approval\", \"switch\", \"end\"]\n"
    ));
    let id = start(&w, &m, &text);
    let worker = Worker::new(&w.db(), clock.clone())
        .poll_every(Duration::from_millis(20))
        .spawn()
        .expect("spawn");
    run_until(&w, &m, id, &clock, |s| s == State::AwaitingApproval);
    m.approve(id, clock.now(), "alice", None).expect("approve");
    run_until(&w, &m, id, &clock, |s| s == State::Done);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = deliveries_of(&m, id);
        if d.len() == 3 && d[0].attempts >= 2 {
            assert!(
                d.iter().all(|d| d.delivered_at.is_none()),
                "nothing claimed delivered while the server is down: {d:#?}"
            );
            assert!(
                d[0].last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("refused")),
                "expected the refusal shown: {d:#?}"
            );
            assert!(
                d[1..].iter().all(|d| d.attempts == 0),
                "the later notices wait behind the first, in order: {d:#?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected 3 notices, the first tried twice, saw {d:#?}"
        );
        clock.advance(5);
        std::thread::sleep(Duration::from_millis(20));
    }
    // The process stops; the server comes up; a new process's worker goes on.
    worker.stop();
    drop(m);
    socket.listen(16).expect("listen");
    let hook = HookServer::on(TcpListener::from(socket), Mode::Answer);
    let m = w.open();
    let _worker = Worker::new(&w.db(), clock.clone())
        .poll_every(Duration::from_millis(20))
        .spawn()
        .expect("spawn");
    let got = hook.wait_for(&clock, "the three notices after the restart", |r| {
        r.len() >= 3
    });
    assert_eq!(events_of(&got), ["approval", "switch", "end"], "in order");
    let deadline = Instant::now() + Duration::from_secs(30);
    while deliveries_of(&m, id)
        .iter()
        .any(|d| d.delivered_at.is_none())
    {
        assert!(
            Instant::now() < deadline,
            "expected every notice marked delivered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_webhook_that_never_answers_holds_no_step_up() {
    let hook = HookServer::start(Mode::Hang);
    let w = World::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let m = w.open();
    let text = format!(
        "{FILE}[[notify]]\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
        hook.url("/hook")
    );
    let id = start(&w, &m, &text);
    let worker = Worker::new(&w.db(), clock.clone())
        .poll_every(Duration::from_millis(20))
        .spawn()
        .expect("spawn");
    m.tick(id, &w.fx_on(&*clock)).expect("lower");
    // The lowering's wait notice is on its way to a server that never answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while hook.received().is_empty() {
        assert!(
            Instant::now() < deadline,
            "expected the worker to reach the hook"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let began = Instant::now();
    run_until(&w, &m, id, &clock, |s| s == State::Done);
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(9),
        "expected the rest of the migration to run without waiting for the hung webhook (its attempt lasts up to {:?}); it took {took:?}",
        cutover_migrate::notify::SEND_TIMEOUT
    );
    let summary = m.status(id).expect("status");
    assert_eq!(summary.state, State::Done);
    // The hung attempt ends by its timeout and is shown as failed.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let d = deliveries_of(&m, id);
        if let Some(failed) = d.iter().find(|d| d.last_error.is_some()) {
            assert!(failed.delivered_at.is_none(), "{failed:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected the hung attempt to time out and be recorded: {d:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    worker.stop();
}

/// smtp-sink dumping every message to a file; killed on drop.
struct Sink {
    /// The process.
    _guard: Guard,
    /// Where it listens.
    addr: SocketAddr,
    /// The dump file.
    dump: PathBuf,
    /// Holds the dump.
    _dir: tempfile::TempDir,
}

/// Postfix's smtp-sink on a free loopback port, every message dumped.
fn smtp_sink() -> Sink {
    start_on_free_ports("smtp-sink", |ports: &mut Ports| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut permissions = std::fs::metadata(dir.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o777);
        std::fs::set_permissions(dir.path(), permissions).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], ports.pick(&[[127, 0, 0, 1]])));
        let dump = dir.path().join("dump");
        let log = dir.path().join("smtp-sink.log");
        let mut command = Command::new(sink_tool());
        if cutover_peers::running_as_root() {
            command.args(["-u", "nobody"]);
        }
        let child = command
            .arg("-D")
            .arg(&dump)
            .arg(addr.to_string())
            .arg("16")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run smtp-sink (package postfix): {e}"));
        let mut guard = Guard {
            child,
            what: "smtp-sink",
        };
        wait_bound("smtp-sink", &mut guard.child, &[Socket::Tcp(addr)], &log)?;
        Ok::<_, StartError>(Sink {
            _guard: guard,
            addr,
            dump,
            _dir: dir,
        })
    })
}

/// Where smtp-sink is installed.
fn sink_tool() -> &'static Path {
    ["/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("smtp-sink is not installed: apt-get install postfix (the tests need it)")
}

#[test]
fn an_email_reaches_an_smtp_server_when_the_migration_awaits_approval() {
    let sink = smtp_sink();
    let w = World::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let m = w.open();
    let text = file_with(&format!(
        "[[notify]]\nkind = \"email\"\nsmtp = \"{}\"\nfrom = \"cutover@example.test\"\nto = [\"ops@example.test\", \"oncall@example.test\"]\non = [\"approval\"]\n",
        sink.addr
    ));
    let id = start(&w, &m, &text);
    let worker = Worker::new(&w.db(), clock.clone())
        .poll_every(Duration::from_millis(20))
        .spawn()
        .expect("spawn");
    run_until(&w, &m, id, &clock, |s| s == State::AwaitingApproval);
    let deadline = Instant::now() + Duration::from_secs(30);
    let dump = loop {
        let dump = std::fs::read_to_string(&sink.dump).unwrap_or_default();
        if dump.contains("awaiting approval") {
            break dump;
        }
        assert!(
            Instant::now() < deadline,
            "expected the e-mail in smtp-sink's dump within 30 s; dump: {dump:?}; deliveries: {:#?}",
            deliveries_of(&m, id)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    worker.stop();
    for expected in [
        "X-Mail-Args: <cutover@example.test>",
        "X-Rcpt-Args: <ops@example.test>",
        "X-Rcpt-Args: <oncall@example.test>",
        &format!("Subject: cutover: migration {id} of example.com. (approval): awaiting approval"),
        &format!("`cutover migrate approve {id}`"),
        "To: ops@example.test, oncall@example.test",
    ] {
        assert!(
            dump.contains(expected),
            "expected {expected:?} in the message:\n{dump}"
        );
    }
    let d = deliveries_of(&m, id);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(d[0].delivered_at.is_some(), "{d:#?}");
    assert_eq!(
        d[0].target,
        format!(
            "e-mail to ops@example.test, oncall@example.test via {}",
            sink.addr
        )
    );
}

#[test]
fn a_webhook_over_https_is_sent_to_a_server_its_ca_file_vouches_for_only() {
    let ca = cutover_peers::TestCa::new();
    let leaf = ca.leaf(&["127.0.0.1"], 365);
    let hook = HookServer::https(cutover_peers::server_config(&leaf));
    let url = format!("https://{}/hook", hook.addr);
    let w = World::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let m = w.open();
    // Two targets on the same server: one trusting the test CA, one the
    // web's roots, which do not vouch for it.
    let text = file_with(&format!(
        "[[notify]]\nkind = \"webhook\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nca_file = \"{}\"\non = [\"approval\"]\n\
         [[notify]]\nkind = \"webhook\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\non = [\"approval\"]\n",
        ca.file.display()
    ));
    let id = start(&w, &m, &text);
    let worker = Worker::new(&w.db(), clock.clone())
        .poll_every(Duration::from_millis(20))
        .spawn()
        .expect("spawn");
    run_until(&w, &m, id, &clock, |s| s == State::AwaitingApproval);
    let received = hook.wait_for(&clock, "the notice over HTTPS", |r| !r.is_empty());
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let seen = deliveries_of(&m, id);
        if seen.iter().any(|d| d.last_error.is_some()) || Instant::now() >= deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    worker.stop();
    let request = &received[0];
    assert_eq!(request.path, "/hook");
    let stamp = request.header("x-cutover-timestamp").expect("timestamp");
    assert_eq!(
        request.header("x-cutover-signature"),
        Some(
            format!(
                "sha256={}",
                expected_signature(SECRET, stamp, &request.body)
            )
            .as_str()
        ),
        "signed over HTTPS as over HTTP"
    );
    assert_eq!(
        seen.iter().filter(|d| d.delivered_at.is_some()).count(),
        1,
        "the target with the CA's file delivered, the other not: {seen:#?}"
    );
    let refused = seen
        .iter()
        .find_map(|d| d.last_error.clone())
        .unwrap_or_else(|| panic!("the target without the CA's file failed: {seen:#?}"));
    assert!(
        refused.to_ascii_lowercase().contains("certificate")
            || refused.to_ascii_lowercase().contains("issuer"),
        "the failure names the certificate: {refused}"
    );
    assert_eq!(hook.received().len(), 1, "the server took one request");
}

/// The login's password, as the submission server knows it.
const SMTP_PASSWORD: &str = "smtp-PASSWORD-3b9e";

/// A migration with `table` runs to its approval gate while the worker
/// sends; the notices once `done` says so (or after 30 s), and the file.
fn email_at_approval(table: &str, done: impl Fn(&[Delivery]) -> bool) -> (Vec<Delivery>, String) {
    let w = World::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let m = w.open();
    let text = file_with(table);
    let id = start(&w, &m, &text);
    let worker = Worker::new(&w.db(), clock.clone())
        .poll_every(Duration::from_millis(20))
        .spawn()
        .expect("spawn");
    run_until(&w, &m, id, &clock, |s| s == State::AwaitingApproval);
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let seen = deliveries_of(&m, id);
        if done(&seen) || Instant::now() >= deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    worker.stop();
    (seen, text)
}

/// The `[[notify]]` table of an e-mail through `addr` with `keys`.
fn email_table(addr: &str, keys: &str) -> String {
    format!(
        "[[notify]]\nkind = \"email\"\nsmtp = \"{addr}\"\nfrom = \"cutover@example.test\"\nto = [\"ops@example.test\"]\non = [\"approval\"]\n{keys}"
    )
}

/// Delivered.
fn delivered(d: &[Delivery]) -> bool {
    d.iter().any(|d| d.delivered_at.is_some())
}

/// An attempt failed.
fn failed(d: &[Delivery]) -> bool {
    d.iter().any(|d| d.last_error.is_some())
}

#[test]
fn an_email_goes_over_starttls_with_a_login_to_a_submission_server() {
    use cutover_peers::submission::{Submission, Tls};
    let ca = cutover_peers::TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.leaf_files(&["127.0.0.1"], dir.path());
    let server = Submission::start(Tls::StartTls, &cert, &key, "notifier", SMTP_PASSWORD);
    let password_file = dir.path().join("smtp.password");
    std::fs::write(&password_file, format!("{SMTP_PASSWORD}\n")).unwrap();
    // A login asks for STARTTLS by default; the CA's file checks the server.
    let table = email_table(
        &server.addr,
        &format!(
            "username = \"notifier\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
            password_file.display(),
            ca.file.display()
        ),
    );
    let (seen, _) = email_at_approval(&table, delivered);
    assert!(delivered(&seen), "expected the notice delivered: {seen:#?}");
    assert_eq!(
        seen[0].target,
        format!("e-mail to ops@example.test via {} (starttls)", server.addr)
    );
    let messages = server.wait_for_message(Duration::from_secs(5));
    assert_eq!(messages.len(), 1, "one message: {messages:#?}");
    assert!(
        messages[0].starts_with("msg\tnotifier\ttls\tcutover@example.test\tops@example.test\t"),
        "taken over TLS after the login of notifier: {}",
        messages[0]
    );
    assert!(
        messages[0].contains("awaiting approval"),
        "the notice: {}",
        messages[0]
    );
}

#[test]
fn an_email_goes_over_tls_from_the_first_byte_and_its_password_is_never_shown() {
    use cutover_peers::submission::{Submission, Tls};
    let ca = cutover_peers::TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.leaf_files(&["127.0.0.1"], dir.path());
    let server = Submission::start(Tls::Implicit, &cert, &key, "notifier", SMTP_PASSWORD);
    let table = email_table(
        &server.addr,
        &format!(
            "tls = \"tls\"\nusername = \"notifier\"\npassword = \"{SMTP_PASSWORD}\"\nca_file = \"{}\"\n",
            ca.file.display()
        ),
    );
    let (seen, text) = email_at_approval(&table, delivered);
    assert!(delivered(&seen), "expected the notice delivered: {seen:#?}");
    let messages = server.wait_for_message(Duration::from_secs(5));
    assert!(
        messages.len() == 1 && messages[0].starts_with("msg\tnotifier\ttls\t"),
        "one message over TLS: {messages:#?}"
    );
    let redacted = cutover_migrate::file::redact(&text);
    assert!(
        !redacted.contains(SMTP_PASSWORD) && redacted.contains("password = \"(redacted)\""),
        "the password is blanked wherever the file is shown: {redacted}"
    );
}

#[test]
fn an_email_refused_by_the_server_fails_with_the_reason_and_sends_nothing() {
    use cutover_peers::submission::{Submission, Tls};
    let ca = cutover_peers::TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.leaf_files(&["127.0.0.1"], dir.path());
    let server = Submission::start(Tls::StartTls, &cert, &key, "notifier", SMTP_PASSWORD);
    let other_ca = cutover_peers::TestCa::new();
    let sink = smtp_sink();
    let wrong = "not-the-PASSWORD-77c1";
    let cases = [
        (
            "a wrong password",
            email_table(
                &server.addr,
                &format!("username = \"notifier\"\npassword = \"{wrong}\"\nca_file = \"{}\"\n", ca.file.display()),
            ),
            "AUTH PLAIN (the login was refused): 535",
        ),
        (
            "a certificate of another CA",
            email_table(
                &server.addr,
                &format!("username = \"notifier\"\npassword = \"{SMTP_PASSWORD}\"\nca_file = \"{}\"\n", other_ca.file.display()),
            ),
            "TLS handshake",
        ),
        (
            "no STARTTLS offered (smtp-sink)",
            email_table(&sink.addr.to_string(), "tls = \"starttls\"\n"),
            "the server does not offer STARTTLS, which tls = \"starttls\" requires: nothing was sent",
        ),
    ];
    for (what, table, reason) in cases {
        let (seen, _) = email_at_approval(&table, failed);
        let error = seen
            .iter()
            .find_map(|d| d.last_error.clone())
            .unwrap_or_else(|| panic!("{what}: expected a failed attempt: {seen:#?}"));
        assert!(
            error.contains(reason),
            "{what}: expected {reason:?} in {error:?}"
        );
        assert!(
            !error.contains(wrong) && !error.contains(SMTP_PASSWORD),
            "{what}: the error shows a password: {error}"
        );
        assert!(!delivered(&seen), "{what}: nothing delivered: {seen:#?}");
    }
    assert!(
        server.messages().is_empty(),
        "the submission server took nothing: {:#?}",
        server.messages()
    );
    let dump = std::fs::read_to_string(&sink.dump).unwrap_or_default();
    assert!(dump.is_empty(), "smtp-sink took nothing: {dump}");
}

#[test]
fn a_secret_given_by_environment_is_nowhere_in_the_store() {
    const VALUE: &str = "env-hmac-SECRET-91c2";
    std::env::set_var("CUTOVER_TEST_NOTIFY_SECRET", VALUE);
    let hook = HookServer::start(Mode::Answer);
    std::env::set_var(
        "CUTOVER_TEST_SLACK_URL",
        hook.url("/slack/T0/B0/env-url-SECRET"),
    );
    let w = World::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let m = w.open();
    let text = file_with(&format!(
        "[[notify]]\nkind = \"webhook\"\nurl = \"{}\"\nsecret_env = \"CUTOVER_TEST_NOTIFY_SECRET\"\non = [\"approval\"]\n\
         [[notify]]\nkind = \"slack\"\nurl_env = \"CUTOVER_TEST_SLACK_URL\"\non = [\"approval\"]\n",
        hook.url("/hook")
    ));
    let id = start(&w, &m, &text);
    run_until(&w, &m, id, &clock, |s| s == State::AwaitingApproval);
    let worker = Worker::new(&w.db(), clock.clone());
    let pass = worker.pass(&m).expect("pass");
    assert_eq!(pass.delivered, 2, "{pass:?}: {:#?}", deliveries_of(&m, id));
    assert_eq!(
        deliveries_of(&m, id)[1].target,
        "slack to the URL in $CUTOVER_TEST_SLACK_URL",
        "a URL from the environment is shown by the variable's name"
    );
    let got = hook.received();
    assert_eq!(
        got[1].path, "/slack/T0/B0/env-url-SECRET",
        "posted to the variable's URL"
    );
    let stamp = got[0].header("x-cutover-timestamp").unwrap();
    assert_eq!(
        got[0].header("x-cutover-signature").unwrap(),
        format!("sha256={}", expected_signature(VALUE, stamp, &got[0].body)),
        "signed with the variable's value"
    );
    drop(m);
    for entry in std::fs::read_dir(w.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in [VALUE, "env-url-SECRET"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in {}",
                path.display()
            );
        }
    }
}

/// The error of `FILE` with `notify` appended, as `m.toml:LINE:COL: …`.
fn refusal(notify: &str) -> String {
    match cutover_migrate::MigrationFile::parse(&format!("{FILE}{notify}"), "m.toml") {
        Ok(_) => panic!("expected {notify:?} refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn notify_tables_are_closed_and_their_errors_name_file_line_and_column() {
    let lines = FILE.lines().count();
    let cases = [
        (
            "[[notify]]\nkind = \"webhook\"\nurl = \"https://h.example/x\"\nsecret = \"s\"\nretries = 3\n",
            format!("m.toml:{}:1: unknown field `retries`", lines + 5),
        ),
        (
            "[[notify]]\nkind = \"pager\"\n",
            format!("m.toml:{}:8: [[notify]]: unknown kind \"pager\"", lines + 2),
        ),
        (
            "[[notify]]\nkind = \"webhook\"\nurl = \"https://h.example/x\"\n",
            format!("m.toml:{}:1: [[notify]] of kind \"webhook\": expected the signing key", lines + 1),
        ),
        (
            "[[notify]]\nkind = \"webhook\"\nurl = \"ftp://h\"\nsecret = \"s\"\n",
            format!("m.toml:{}:7: notify.url: expected an http:// or https:// URL", lines + 3),
        ),
        (
            "[[notify]]\nkind = \"email\"\nsmtp = \"relay\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
            format!("m.toml:{}:8: notify.smtp \"relay\": expected \"host:port\"", lines + 3),
        ),
        (
            "[[notify]]\nkind = \"slack\"\nurl = \"https://h.example/x\"\non = [\"switch\", \"lunch\"]\n",
            format!("m.toml:{}:17: notify.on: unknown happening \"lunch\"", lines + 4),
        ),
        (
            "[[notify]]\nkind = \"slack\"\nurl = \"https://h.example/x\"\nsecret = \"s\"\n",
            format!("m.toml:{}:10: [[notify]] of kind \"slack\" takes no `secret`", lines + 4),
        ),
        (
            "[[notify]]\nkind = \"email\"\nsmtp = \"h:25\"\nfrom = \"a@b\"\nto = [\"c@d\"]\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"\n",
            format!("m.toml:{}:12: notify.username: a login over plain text sends the password in clear", lines + 7),
        ),
        (
            "[[notify]]\nkind = \"email\"\nsmtp = \"h:25\"\nfrom = \"a@b\"\nto = [\"c@d\"]\ntls = \"ssl\"\n",
            format!("m.toml:{}:7: notify.tls \"ssl\": expected \"none\", \"starttls\"", lines + 6),
        ),
        (
            "[[notify]]\nkind = \"email\"\nsmtp = \"h:25\"\nfrom = \"a@b\"\nto = [\"c@d\"]\nusername = \"u\"\n",
            format!("m.toml:{}:12: notify.username: expected its password", lines + 6),
        ),
        (
            "[[notify]]\nkind = \"email\"\nsmtp = \"h:25\"\nfrom = \"a@b\"\nto = [\"c@d\"]\nca_file = \"ca.pem\"\n",
            format!("m.toml:{}:11: notify.ca_file: there is no certificate to check with tls = \"none\"", lines + 6),
        ),
        (
            "[[notify]]\nkind = \"webhook\"\nurl = \"https://h.example/x\"\nsecret = \"s\"\nusername = \"u\"\n",
            format!("m.toml:{}:12: [[notify]] of kind \"webhook\" takes no `username`", lines + 5),
        ),
    ];
    for (table, expected) in cases {
        let seen = refusal(table);
        assert!(
            seen.starts_with(&expected),
            "expected {expected:?}…, saw {seen:?}"
        );
    }
    let file = cutover_migrate::MigrationFile::parse(
        &format!("{FILE}[[notify]]\nkind = \"webhook\"\nurl = \"https://h.example/x\"\nsecret_env = \"HOOK_KEY\"\non = [\"end\"]\n"),
        "m.toml",
    )
    .expect("a webhook by environment variable");
    assert_eq!(file.notify.len(), 1);
    assert_eq!(
        file.spots
            .env_secrets
            .first()
            .map(|(k, n, _)| (k.as_str(), n.as_str())),
        Some(("notify.secret_env", "HOOK_KEY")),
        "the variable is checked where the others are"
    );
}

#[test]
fn a_store_whose_migrations_notify_nobody_is_never_written_by_the_worker() {
    let w = World::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let m = w.open();
    let id = start(&w, &m, FILE);
    let worker = Worker::new(&w.db(), clock.clone());
    m.tick(id, &w.fx_on(&*clock)).expect("lower");
    let pass = worker.pass(&m).expect("pass");
    assert_eq!(pass, Default::default(), "nothing to send");
    let db = rusqlite::Connection::open(w.db()).expect("open");
    let count = |table: &str| -> i64 {
        db.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    };
    assert_eq!(
        (
            count("migration_notification"),
            count("migration_notify_cursor")
        ),
        (0, 0),
        "expected no row written (a fsync-counting crash test and a read-only store see no writes)"
    );
}

#[test]
fn serve_targets_are_told_of_what_happens_after_serve_first_looked_not_of_history() {
    let hook = HookServer::start(Mode::Answer);
    let w = World::new();
    let clock = Arc::new(ManualClock::new(t0()));
    let m = w.open();
    // History before serve's targets existed: a migration that awaited approval.
    let old = start(&w, &m, &file_with(""));
    run_until(&w, &m, old, &clock, |s| s == State::AwaitingApproval);
    let target = cutover_migrate::MigrationFile::parse(
        &format!(
            "{FILE}[[notify]]\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\non = [\"approval\", \"switch\", \"end\"]\n",
            hook.url("/serve")
        ),
        "m.toml",
    )
    .expect("file")
    .notify;
    let worker = Worker::new(&w.db(), clock.clone()).with_serve_targets(target);
    worker.pass(&m).expect("first look");
    m.approve(old, clock.now(), "alice", None).expect("approve");
    run_until(&w, &m, old, &clock, |s| s == State::Done);
    for _ in 0..3 {
        worker.pass(&m).expect("pass");
    }
    let events = events_of(&hook.received());
    assert_eq!(
        events,
        ["switch", "end"],
        "expected serve's webhook told of what happened after it first looked (not the approval before), in order"
    );
}
