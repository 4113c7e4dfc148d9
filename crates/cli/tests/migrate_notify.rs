//! Notifications through the binary: `cutover serve` with a `[[notify]]`
//! webhook in its config and a migration file with a Slack-compatible one;
//! an HTTP server in the test (its port held from bind to end) receives
//! them as the scheduler runs the migration past its approval gate, each
//! webhook signed; `migrate show` says what was delivered; no secret is in
//! any output, the serve log or the API.
//!
//! ```text
//!  cutover serve (config [[notify]] webhook) ──scheduler──▶ migration (file [[notify]] slack)
//!      └─ notify worker thread ──POST──▶ HookServer (TcpListener on port 0)
//!  cutover migrate show ID ──▶ "notifications: N delivered, 0 not delivered"
//! ```

mod control;
mod mail_support;
mod migration;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control::{ok, Site};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One request received: path, headers (names lowercased), body.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("expected JSON, saw {:?}: {e}", self.body))
    }
}

/// An HTTP server answering 200 to everything, recording what it got.
fn hook_server() -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    hook_server_answering(200)
}

/// An HTTP server answering `status` to everything, recording what it got.
fn hook_server_answering(status: u16) -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received = Arc::new(Mutex::new(Vec::new()));
    let theirs = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Some(request) = read_request(&stream) {
                theirs.lock().unwrap().push(request);
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        }
    });
    (addr, received)
}

/// One HTTP/1.1 request with a Content-Length body.
fn read_request(stream: &TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
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

/// `migrate status ID --json`: the state.
fn state(site: &Site, id: i64) -> String {
    let out = ok(
        "migrate status",
        site.run(&["migrate", "status", &id.to_string(), "--json"]),
    );
    let all: Value = serde_json::from_str(&out).expect("JSON");
    all[0]["state"].as_str().unwrap_or_default().to_string()
}

/// Waits (60 s at most) until `done()` holds.
fn wait(site: &Site, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "expected {what} within 60 s; serve's log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const SERVE_SECRET: &str = "serve-hmac-SECRET-5d1e";

#[test]
fn serve_tells_its_webhook_and_the_files_slack_and_show_says_what_was_delivered() {
    let (hook, received) = hook_server();
    let mut site = Site::start(&format!(
        "[[notify]]\nkind = \"webhook\"\nurl = \"http://{hook}/serve/path-SECRET\"\nsecret = \"{SERVE_SECRET}\"\n"
    ));
    let file = site.dir.path().join("move-web.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\napprove = \"before_switch\"\n\
             [[move]]\nfrom = \"{}\"\nto = \"{}\"\n[ttl]\nduring = 1\n[schedule]\nmargin = 1\nobserve = \"1s\"\n\
             [verify]\nauthorities = [\"{}\"]\nresolvers = []\ntries = 1\ninterval = 1\n\
             [[notify]]\nkind = \"slack\"\nurl = \"http://{hook}/slack/T0/B0/slack-SECRET\"\non = [\"approval\", \"end\"]\n",
            migration::OLD,
            migration::NEW,
            site.dns
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    // A Slack URL is its own token: stored with the migration, so the store
    // must be its owner's alone (else `migrate start` refuses it).
    std::fs::set_permissions(
        &site.store,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let started = ok(
        "migrate start",
        site.run(&["migrate", "start", &file, "--json"]),
    );
    let started: Value = serde_json::from_str(&started).expect("JSON");
    let id = started["id"].as_i64().expect("an id");
    let got = |path: &str, event: &str| {
        received.lock().unwrap().iter().any(|r| {
            r.path.starts_with(path)
                && (r.json()["event"] == event
                    || r.json()["text"]
                        .as_str()
                        .is_some_and(|t| t.contains(&format!("({event})"))))
        })
    };
    wait(&site, "the approval on both URLs", || {
        got("/serve/", "approval") && got("/slack/", "approval")
    });
    assert_eq!(state(&site, id), "awaiting_approval");
    ok(
        "migrate approve",
        site.run(&["migrate", "approve", &id.to_string()]),
    );
    wait(&site, "the end on both URLs", || {
        got("/serve/", "end") && got("/slack/", "end")
    });
    assert_eq!(state(&site, id), "done");

    let all = received.lock().unwrap().clone();
    let serve: Vec<&Request> = all
        .iter()
        .filter(|r| r.path.starts_with("/serve/"))
        .collect();
    let events: Vec<String> = serve
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        events,
        ["approval", "switch", "end"],
        "expected serve's webhook told of the approval, the switch and the end, in order"
    );
    for r in &serve {
        let stamp = r.header("x-cutover-timestamp");
        let mut mac = Hmac::<Sha256>::new_from_slice(SERVE_SECRET.as_bytes()).unwrap();
        mac.update(format!("{stamp}.{}", r.body).as_bytes());
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            r.header("x-cutover-signature"),
            format!("sha256={hex}"),
            "expected HMAC-SHA256 over \"{stamp}.\" and the body"
        );
        assert_eq!(r.json()["migration"], id);
    }
    let slack: Vec<&Request> = all
        .iter()
        .filter(|r| r.path.starts_with("/slack/"))
        .collect();
    assert_eq!(
        slack.len(),
        2,
        "the file's slack asked for approval and end: {slack:#?}"
    );
    assert!(
        slack
            .iter()
            .all(|r| r.json().as_object().is_some_and(|o| o.len() == 1)),
        "a Slack body holds only its text: {slack:#?}"
    );

    let shown = ok(
        "migrate show",
        site.run(&["migrate", "show", &id.to_string()]),
    );
    assert!(
        shown.contains("notifications: 5 delivered, 0 not delivered"),
        "expected show to count the 5 notifications delivered, seen:\n{shown}"
    );
    assert!(
        shown.contains(&format!("switch (m{id}-e"))
            && shown.contains(&format!("to webhook to {hook}: delivered at")),
        "expected each notification with its target by host, seen:\n{shown}"
    );
    let json = ok(
        "migrate show --json",
        site.run(&["migrate", "show", &id.to_string(), "--json"]),
    );
    let parsed: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        parsed["migration"]["notifications"]
            .as_array()
            .map(Vec::len),
        Some(5),
        "{json}"
    );
    // The API gives the same, checked against its OpenAPI schema; and the
    // remote `show` prints what the local one does.
    let (status, detail) = site.call(
        "GET",
        &format!("/api/v1/migrations/{id}"),
        Some(&site.reader),
        None,
    );
    assert_eq!(status, 200);
    let api = detail["notifications"]
        .as_array()
        .expect("notifications in the API");
    assert_eq!(api.len(), 5, "{detail}");
    assert!(
        api.iter()
            .all(|d| d["attempts"] == 1 && d["delivered_at"].is_string()),
        "{api:#?}"
    );
    let url = format!("http://{}", site.http);
    let remote = ok(
        "remote migrate show",
        control::cutover(&[
            "--server",
            &url,
            "--token",
            &site.reader,
            "migrate",
            "show",
            &id.to_string(),
        ]),
    );
    assert!(
        remote.contains("notifications: 5 delivered, 0 not delivered"),
        "expected the remote show to count them too, seen:\n{remote}"
    );
    let api_text = detail.to_string();
    site.serve = None;
    let log = site.log();
    for secret in [SERVE_SECRET, "path-SECRET", "slack-SECRET"] {
        for (what, text) in [
            ("show", &shown),
            ("show --json", &json),
            ("the API", &api_text),
            ("remote show", &remote),
            ("serve's log", &log),
        ] {
            assert!(!text.contains(secret), "{secret} is in {what}:\n{text}");
        }
    }
}

/// `migrate run ID` starts its own delivery thread for the file's targets:
/// a webhook that takes everything gets the switch and the end; one that
/// answers 500 to everything holds nothing up, and `run` says at its end,
/// truthfully, that its notice was not delivered and why.
#[test]
fn migrate_run_delivers_and_says_what_it_could_not() {
    let (good, received) = hook_server();
    let (bad, refused) = hook_server_answering(500);
    let site = migration::Site::new(2);
    // A nameserver for the checks; its scheduler leaves the migration to
    // `run`, which holds the migration's lease.
    let _serve = site.serve(&[]);
    let listener = cutover_peers::hold_tcp_on(migration::NEW.octets());
    let port = listener.local_addr().expect("a bound listener").port();
    let _new = migration::HttpServer::start(listener, "new");
    let text = migration::migration_text(site.addr, site.addr, port).replace(
        "[schedule]\nobserve = \"3s\"",
        "[schedule]\nobserve = \"1s\"",
    );
    let file = site.migration_file(&format!(
        "{text}[[notify]]\nkind = \"webhook\"\nurl = \"http://{good}/good\"\nsecret_env = \"HOOK_KEY\"\non = [\"switch\", \"end\"]\n\
         [[notify]]\nkind = \"webhook\"\nurl = \"http://{bad}/bad\"\nsecret_env = \"HOOK_KEY\"\non = [\"end\"]\n"
    ));
    let env = [("HOOK_KEY", "run-hmac-SECRET-0b7")];
    let out = site.run(&["migrate", "start", &file, "--json"], &env);
    let started: Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|e| {
            panic!(
                "migrate start --json: {e}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let id = started["id"].as_i64().expect("an id");
    let began = Instant::now();
    let out = site.run(&["migrate", "run", &id.to_string()], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "run exits 0 when done, whatever the notifications; stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        events,
        ["switch", "end"],
        "the good webhook got both, in order"
    );
    let tries = refused.lock().unwrap().len();
    assert!(
        tries >= 2,
        "expected the failing webhook tried again during run's last 10 s, it was tried {tries} time(s)"
    );
    assert!(
        stdout.contains("notifications: 2 delivered, 1 not delivered"),
        "expected run to count what was delivered, seen:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "to webhook to {bad}: NOT delivered, {tries} attempts, last error HTTP 500 at"
        )),
        "expected the failure said with its attempts and error, seen:\n{stdout}"
    );
    assert!(
        stdout.contains("kept in the store"),
        "expected run to say the notice is kept, seen:\n{stdout}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "run took {:?}",
        began.elapsed()
    );
    assert!(
        !stdout.contains("run-hmac-SECRET-0b7"),
        "the secret is in run's output"
    );
}

/// An e-mail notification through cutover's own relay: serve's config has
/// `[mail]` relaying ops.test to smtp-sink and a `[[notify]]` e-mail to
/// ops@ops.test through that relay; the approval notice arrives at the sink.
#[test]
fn an_email_goes_through_serves_own_relay() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let (_sink, dump, sink_port) = mail_support::sink(scratch.path());
    let spool = scratch.path().join("spool");
    let site = Site::start_picking(|ports| {
        let relay = ports.pick(&[control::LOOPBACK]);
        format!(
            "[mail]\nlisten = [\"127.0.0.1:{relay}\"]\nhostname = \"mx.relay.test\"\nspool = {spool:?}\n\
             first_retry = \"200ms\"\nmax_retry = \"1s\"\n\
             [[mail.domain]]\nname = \"ops.test\"\ndestination = \"127.0.0.1:{sink_port}\"\n\
             recipients = [\"ops@ops.test\"]\n\
             [[notify]]\nkind = \"email\"\nsmtp = \"127.0.0.1:{relay}\"\nfrom = \"cutover@relay.test\"\n\
             to = [\"ops@ops.test\"]\non = [\"approval\"]\n"
        )
    });
    let file = site.dir.path().join("move-web.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\napprove = \"before_switch\"\n\
             [[move]]\nfrom = \"{}\"\nto = \"{}\"\n[ttl]\nduring = 1\n[schedule]\nmargin = 1\nobserve = \"1s\"\n\
             [verify]\nauthorities = [\"{}\"]\nresolvers = []\ntries = 1\ninterval = 1\n",
            migration::OLD,
            migration::NEW,
            site.dns
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let started = ok(
        "migrate start",
        site.run(&["migrate", "start", &file, "--json"]),
    );
    let id = serde_json::from_str::<Value>(&started).expect("JSON")["id"]
        .as_i64()
        .expect("an id");
    let subject = format!("cutover: migration {id} of example.test. (approval): awaiting approval");
    wait(
        &site,
        "the approval e-mail at the sink, through the relay",
        || {
            std::fs::read_to_string(&dump)
                .unwrap_or_default()
                .contains(&subject)
        },
    );
    let text = std::fs::read_to_string(&dump).unwrap_or_default();
    assert!(
        text.contains("X-Rcpt-Args: <ops@ops.test>") || text.contains("X-Rcpt-To: <ops@ops.test>"),
        "expected the relay to deliver to ops@ops.test, the sink has:\n{text}"
    );
    let shown = ok(
        "migrate show",
        site.run(&["migrate", "show", &id.to_string()]),
    );
    assert!(
        shown.contains("notifications: 1 delivered, 0 not delivered"),
        "expected show to count the e-mail delivered (the relay's 250), seen:\n{shown}"
    );
}
