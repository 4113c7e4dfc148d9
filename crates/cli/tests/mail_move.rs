//! The mail move through the `cutover` binary: `cutover serve` runs the
//! relay from `[mail]`; the destination is down, mail is accepted and
//! queued; `cutover mail hold / retarget / release` move it to a new
//! address where smtp-sink listens; every message arrives exactly once, in
//! order of arrival per recipient. Then the controls at rest (no relay
//! running) and a restart that keeps the retarget.

mod mail_support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mail_support::{
    arrivals, log_length, refusing_tcp, send, sink, start_on_free_ports, wait_bound_from, Guard,
    Ports, Socket, StartError, LOOPBACK,
};

/// The test's files and the binary's invocations.
struct Scene {
    /// The temporary directory.
    directory: tempfile::TempDir,
    /// The config file.
    config: PathBuf,
    /// The relay's SMTP port.
    smtp: u16,
    /// The nameserver's port.
    dns: u16,
}

impl Scene {
    /// A config relaying ourdom.test (alice, bob) to 127.0.0.1:`destination`
    /// on free ports, and `cutover serve` started on it (again on other
    /// ports if one was taken).
    fn start(destination: u16) -> (Scene, Guard) {
        let directory = tempfile::tempdir().unwrap();
        let config = directory.path().join("cutover.toml");
        let (smtp, dns, serve) = start_on_free_ports("cutover serve", |ports: &mut Ports| {
            let smtp = ports.pick(&[LOOPBACK]);
            let dns = ports.pick(&[LOOPBACK]);
            std::fs::write(
                &config,
                format!(
                    "store = {store:?}\n[dns]\nlisten = [\"127.0.0.1:{dns}\"]\nudp_workers = 1\n\
                     [mail]\nlisten = [\"127.0.0.1:{smtp}\"]\nhostname = \"mx.relay.test\"\n\
                     spool = {spool:?}\nfirst_retry = \"200ms\"\nmax_retry = \"1s\"\n\
                     connect_timeout = \"2s\"\n\
                     [[mail.domain]]\nname = \"ourdom.test\"\n\
                     destination = \"127.0.0.1:{destination}\"\n\
                     recipients = [\"alice@ourdom.test\", \"bob\"]\n",
                    store = directory.path().join("cutover.db"),
                    spool = directory.path().join("spool"),
                ),
            )
            .unwrap();
            let serve = try_serve(directory.path(), &config, smtp, dns)?;
            Ok((smtp, dns, serve))
        });
        let scene = Scene {
            directory,
            config,
            smtp,
            dns,
        };
        (scene, serve)
    }

    /// Starts `cutover serve` again on the scene's config and ports (after
    /// it was stopped); the test fails if a port was taken meanwhile.
    fn serve(&self) -> Guard {
        try_serve(self.directory.path(), &self.config, self.smtp, self.dns)
            .unwrap_or_else(|e| panic!("cutover serve did not start again: {e}"))
    }

    /// Runs `cutover --config C mail ARGS…`.
    fn mail(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["--config", self.config.to_str().unwrap(), "mail"])
            .args(args)
            .output()
            .expect("run cutover mail")
    }

    /// Runs `cutover mail ARGS…`, asserting success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.mail(args);
        assert!(
            out.status.success(),
            "cutover mail {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The queue as JSON.
    fn queue(&self) -> Vec<serde_json::Value> {
        let text = self.ok(&["queue", "--json"]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON {text:?}: {e}"))
    }

    /// Waits until `done` holds for the queue, 20 s at most.
    fn wait_queue(&self, what: &str, done: impl Fn(&[serde_json::Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let queue = self.queue();
            if done(&queue) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; queue: {queue:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends one message to `to` with `subject`; asserts the 250.
    fn send(&self, to: &str, subject: &str) {
        send(self.smtp, to, subject);
    }
}

/// One start of `cutover serve` on `config` (its log appended to
/// `directory/serve.log`), waiting until it holds the nameserver's and the
/// relay's ports: `InUse` when one was taken.
fn try_serve(
    directory: &std::path::Path,
    config: &std::path::Path,
    smtp: u16,
    dns: u16,
) -> Result<Guard, StartError> {
    let log = directory.join("serve.log");
    let from = log_length(&log);
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start cutover serve");
    let mut guard = Guard(child);
    let [udp, tcp] = Socket::dns(std::net::SocketAddr::from((LOOPBACK, dns)));
    let relay = Socket::Tcp(std::net::SocketAddr::from((LOOPBACK, smtp)));
    wait_bound_from(
        "cutover serve",
        &mut guard.0,
        &[udp, tcp, relay],
        &log,
        from,
    )?;
    Ok(guard)
}

/// The move, driven through the CLI against a running `cutover serve`.
#[test]
fn the_move_through_the_cli_delivers_each_message_once_in_order() {
    // The destination is down: a port the test holds without listening.
    let (_dead, dead) = refusing_tcp(LOOPBACK);
    let (scene, serve) = Scene::start(dead.port());
    let mut sent = Vec::new();
    for number in 0..30 {
        let to = if number % 3 == 0 {
            "bob@ourdom.test"
        } else {
            "alice@ourdom.test"
        };
        let subject = format!("move-{number:02}");
        scene.send(to, &subject);
        sent.push((to.to_string(), subject));
    }
    scene.wait_queue("30 messages deferred with a connect error", |queue| {
        queue.len() == 30
            && queue.iter().all(|message| {
                let recipient = &message["recipients"][0];
                recipient["state"] == "deferred"
                    && recipient["attempts"].as_u64() >= Some(1)
                    && recipient["last_error"]
                        .as_str()
                        .is_some_and(|error| error.contains("connect"))
            })
    });
    // One line per recipient under a header naming the columns, each with
    // its state and attempts: `grep ourdom.test` finds every one.
    let listing = scene.ok(&["queue"]);
    let header: Vec<&str> = listing
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let deferred = listing
        .lines()
        .filter(|l| l.contains("ourdom.test") && l.split_whitespace().any(|w| w == "deferred"))
        .count();
    assert!(
        listing.contains("30 message(s)")
            && header.starts_with(&[
                "ID",
                "AGE",
                "SIZE",
                "HELD",
                "SENDER",
                "RECIPIENT",
                "STATE",
                "ATTEMPTS"
            ])
            && deferred == 30,
        "the human listing shows states and attempts:\n{listing}"
    );
    let held = scene.ok(&["hold", "--domain", "ourdom.test"]);
    assert!(held.starts_with("30 message(s) held\n"), "hold: {held}");
    let (_sink, dump, new) = sink(scene.directory.path());
    // The default keeps the hold (`--keep-held`, the older spelling, too).
    let retarget = scene.ok(&[
        "retarget",
        "ourdom.test",
        &format!("127.0.0.1:{new}"),
        "--keep-held",
    ]);
    assert!(
        retarget.contains(&format!("ourdom.test now goes to 127.0.0.1:{new}"))
            && retarget.contains("0 message(s) due now")
            && retarget.contains("30 message(s) held: they stay held"),
        "retarget: {retarget}"
    );
    let first = scene.queue()[0]["id"].as_str().unwrap().to_string();
    let shown = scene.ok(&["show", &first]);
    assert!(
        shown.contains("held:     yes")
            && shown.contains(&format!("to=127.0.0.1:{new}"))
            && shown.contains("Subject: move-00"),
        "show must say held, the new destination and the headers:\n{shown}"
    );
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        arrivals(&dump).is_empty(),
        "held mail must not be delivered, sink got {:?}",
        arrivals(&dump)
    );
    let released = scene.ok(&["release", "--domain", "ourdom.test"]);
    assert!(
        released.starts_with("30 message(s) released (due now)\n"),
        "release: {released}"
    );
    scene.wait_queue("the queue to empty", |queue| queue.is_empty());
    let arrived = arrivals(&dump);
    assert_eq!(arrived.len(), 30, "each message exactly once: {arrived:?}");
    for recipient in ["alice@ourdom.test", "bob@ourdom.test"] {
        let expected: Vec<&String> = sent
            .iter()
            .filter(|(to, _)| to == recipient)
            .map(|(_, subject)| subject)
            .collect();
        let seen: Vec<&String> = arrived
            .iter()
            .filter(|(to, _)| to == recipient)
            .map(|(_, subject)| subject)
            .collect();
        assert_eq!(seen, expected, "{recipient}: arrival order");
    }
    // At rest: no relay; the controls work on the spool directly.
    drop(serve);
    assert!(scene.queue().is_empty(), "the queue at rest is empty");
    scene.ok(&["hold", "--domain", "ourdom.test"]);
    // Restarted: the hold (set at rest) and the retarget (set while running) hold.
    let _serve = scene.serve();
    scene.send("alice@ourdom.test", "after-restart");
    scene.wait_queue("the new message held", |queue| {
        queue.len() == 1 && queue[0]["held"] == true
    });
    let id = scene.queue()[0]["id"].as_str().unwrap().to_string();
    let refused = scene.mail(&["delete", &id]);
    assert_eq!(
        refused.status.code(),
        Some(4),
        "delete without --yes exits 4"
    );
    let unknown = scene.mail(&["show", "NOSUCHID"]);
    assert_eq!(
        unknown.status.code(),
        Some(1),
        "show of an unknown id fails"
    );
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no queued message NOSUCHID"),
        "the error names the id: {}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    scene.ok(&["release", "--all"]);
    scene.wait_queue("the restarted relay to deliver", |queue| queue.is_empty());
    let arrived = arrivals(&dump);
    assert_eq!(
        arrived.last().map(|(_, subject)| subject.as_str()),
        Some("after-restart"),
        "after the restart mail still goes to the retargeted sink"
    );
    assert_eq!(arrived.len(), 31, "nothing delivered twice");
}
