//! `cutover zone import --axfr` as a black box against a real knotd that
//! requires a TSIG key for transfers: with the key (BIND-format file,
//! Knot-format file, or `--key-name` from the config's `[[key]]`) the zone
//! is stored and `zone export` equals what `kdig AXFR` gets from knotd; with
//! a wrong secret the import is refused with a message naming the cause and
//! nothing is stored.
//!
//! knotd and kdig must be installed: a missing one fails, never skips.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cutover_peers::{
    start_on_free_ports, wait_bound, Ports, Socket, StartError, ANSWER_LIMIT, LOOPBACK,
};
use cutover_zone::{zonefile, Name, Zone};

/// The transfer key's name.
const KEY_NAME: &str = "xfr.example.";
/// Its secret.
const SECRET: &str = "q1SXa5nV3l9Mz7K0EYXlPjxfDt6vNfV9v0k1b7GHHgY=";
/// Another secret under the same name.
const WRONG_SECRET: &str = "c29tZXRoaW5nIGVsc2UgZW50aXJlbHkgZGlmZmVyZW50";

/// A child process, killed and reaped on drop.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// knotd serving `example.test.` (about 3000 records) to signed transfers only.
struct Knot {
    /// The process.
    _peer: Peer,
    /// Its port on 127.0.0.1.
    port: u16,
    /// Its files.
    _dir: tempfile::TempDir,
}

impl Knot {
    /// Starts knotd, started again on another port if the one picked was taken.
    fn start() -> Knot {
        start_on_free_ports("knotd", |ports: &mut Ports| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("example.test.zone"), zone_text()).unwrap();
            let port = ports.pick(&[LOOPBACK]);
            let config = format!(
                "server:\n    rundir: {d}\n    listen: 127.0.0.1@{port}\n\
                 database:\n    storage: {d}\n\
                 log:\n  - target: stderr\n    any: warning\n\
                 key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
                 acl:\n  - id: signed\n    key: {KEY_NAME}\n    action: transfer\n\
                 zone:\n  - domain: example.test.\n    storage: {d}\n    file: example.test.zone\n    acl: signed\n",
                d = dir.path().display()
            );
            let config_path = dir.path().join("knot.conf");
            std::fs::write(&config_path, config).unwrap();
            let log = dir.path().join("knotd.log");
            let mut peer = Peer(
                Command::new("knotd")
                    .arg("-c")
                    .arg(&config_path)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log).unwrap())
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot run knotd (is knot installed?): {e}")),
            );
            let address = SocketAddr::from((LOOPBACK, port));
            wait_bound("knotd", &mut peer.0, &Socket::dns(address), &log)?;
            if !serves(address) {
                return Err(StartError::Failed(format!(
                    "knotd on {address} did not serve example.test. within {ANSWER_LIMIT:?}; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )));
            }
            Ok(Knot {
                _peer: peer,
                port,
                _dir: dir,
            })
        })
    }

    /// What `kdig AXFR` with the key gets from knotd, as a zone.
    fn kdig_axfr(&self) -> Zone {
        let out = Command::new("kdig")
            .arg("@127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-y")
            .arg(format!("hmac-sha256:{KEY_NAME}:{SECRET}"))
            .args(["AXFR", "example.test."])
            .output()
            .unwrap_or_else(|e| panic!("cannot run kdig (is knot-dnsutils installed?): {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "kdig AXFR failed: {text}");
        let records: String = text
            .lines()
            // Comments, blank lines and the TSIG record of each message.
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .filter(|l| l.split_whitespace().nth(3) != Some("TSIG"))
            .map(|l| format!("{l}\n"))
            .collect();
        zonefile::parse_str(&records, "kdig AXFR", Some(&name("example.test.")))
            .unwrap_or_else(|e| panic!("kdig's AXFR does not parse: {e}\n{records}"))
            .zone
    }
}

/// Polls until the server answers `example.test. SOA` with one answer.
fn serves(address: SocketAddr) -> bool {
    let deadline = Instant::now() + ANSWER_LIMIT;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut query = vec![0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x07example\x04test\x00\x00\x06\x00\x01");
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if socket.send_to(&query, address).is_ok() {
            if let Ok(len) = socket.recv(&mut buf) {
                if len >= 12 && buf[3] & 0x0f == 0 && buf[7] == 1 {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A name from text.
fn name(text: &str) -> Name {
    text.parse().unwrap()
}

/// The zone knotd serves: about 3000 records, several AXFR messages.
fn zone_text() -> String {
    let mut text = String::from(
        "$ORIGIN example.test.\n$TTL 3600\n\
         @ SOA ns1 hostmaster 2024010101 3600 600 86400 300\n\
         @ NS ns1\nns1 A 192.0.2.1\n@ MX 10 mail\nmail A 192.0.2.25\n\
         mail AAAA 2001:db8::25\nwww CNAME @\n_sip._tcp SRV 10 5 5060 mail\n\
         @ TXT \"v=spf1 mx -all\"\n",
    );
    for i in 0..2000 {
        text.push_str(&format!("host{i} A 198.51.{}.{}\n", i / 250, i % 250 + 1));
    }
    for i in 0..1000 {
        text.push_str(&format!(
            "note{i} 600 TXT \"note {i} of a multi-message zone\"\n"
        ));
    }
    text
}

/// A scratch directory with a store.
struct Scratch {
    /// Removed on drop.
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A new empty directory.
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes a file into the directory and returns its path.
    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `cutover --store DIR/cutover.db ARGS…` in the directory.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .current_dir(self.dir.path())
            .arg("--store")
            .arg(self.dir.path().join("cutover.db"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the cutover binary runs")
    }

    /// Runs and expects success; returns stdout and stderr.
    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "cutover {args:?} failed with {:?}\nstdout: {stdout}\nstderr: {stderr}",
            out.status.code()
        );
        (stdout, stderr)
    }

    /// The zone as `zone export` prints it.
    fn export(&self) -> Zone {
        let (exported, _) = self.ok(&["zone", "export", "example.test"]);
        zonefile::parse_str(&exported, "export", None)
            .unwrap_or_else(|e| panic!("our export does not parse: {e}"))
            .zone
    }
}

/// Bytes as text.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Imports with `key_args` and checks the export equals knotd's AXFR.
fn import_and_compare(knot: &Knot, scratch: &Scratch, key_args: &[&str]) {
    let server = format!("127.0.0.1:{}", knot.port);
    let mut args = vec!["zone", "import", "--axfr", &server, "example.test"];
    args.extend_from_slice(key_args);
    let (stdout, stderr) = scratch.ok(&args);
    assert!(
        stdout.contains("imported 3009 records, serial 2024010101"),
        "expected 3009 records at serial 2024010101, stdout: {stdout}"
    );
    assert!(
        stderr.contains("every message verified with TSIG key xfr.example."),
        "the import does not say the transfer was verified: {stderr}"
    );
    let messages: usize = stderr
        .split(" in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no message count in {stderr:?}"));
    assert!(
        messages > 1,
        "expected several messages, the import says {messages}"
    );
    let ours = scratch.export();
    let theirs = knot.kdig_axfr();
    assert_eq!(ours.record_count(), theirs.record_count());
    assert!(
        ours == theirs,
        "zone export after the import differs from kdig AXFR"
    );
}

#[test]
fn import_axfr_with_a_bind_key_file_equals_kdigs_axfr() {
    let knot = Knot::start();
    let scratch = Scratch::new();
    let key = scratch.write(
        "xfr.key",
        &format!("key \"{KEY_NAME}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"),
    );
    import_and_compare(&knot, &scratch, &["--key", key.to_str().unwrap()]);

    // Importing again needs --replace --yes; with them, nothing changes.
    let server = format!("127.0.0.1:{}", knot.port);
    let key = key.to_str().unwrap();
    let out = scratch.run(&[
        "zone",
        "import",
        "--axfr",
        &server,
        "example.test",
        "--key",
        key,
    ]);
    assert!(
        !out.status.success(),
        "a second import without --replace succeeded"
    );
    assert!(
        text(&out.stderr).contains("--replace"),
        "{}",
        text(&out.stderr)
    );
    let (stdout, _) = scratch.ok(&[
        "zone",
        "import",
        "--axfr",
        &server,
        "example.test",
        "--key",
        key,
        "--replace",
        "--yes",
    ]);
    assert!(
        stdout.contains("already holds exactly this; nothing written, serial stays 2024010101"),
        "re-import of the same zone: {stdout}"
    );
}

#[test]
fn import_axfr_with_a_knot_key_file_and_with_a_config_key_name() {
    let knot = Knot::start();
    let scratch = Scratch::new();
    let key = scratch.write(
        "xfr.conf",
        &format!("key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n"),
    );
    import_and_compare(&knot, &scratch, &["--key", key.to_str().unwrap()]);

    let scratch = Scratch::new();
    scratch.write(
        "cutover.toml",
        &format!(
            "[[key]]\nname = \"{KEY_NAME}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{SECRET}\"\n"
        ),
    );
    import_and_compare(&knot, &scratch, &["--key-name", "xfr.example"]);
}

#[test]
fn import_axfr_with_a_wrong_secret_is_refused_and_stores_nothing() {
    let knot = Knot::start();
    let scratch = Scratch::new();
    let key = scratch.write(
        "wrong.key",
        &format!("key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{WRONG_SECRET}\"; }};\n"),
    );
    let server = format!("127.0.0.1:{}", knot.port);
    let out = scratch.run(&[
        "zone",
        "import",
        "--axfr",
        &server,
        "example.test",
        "--key",
        key.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit status; stderr: {stderr}");
    for fragment in ["nothing stored", "NOTAUTH", "BADSIG"] {
        assert!(
            stderr.contains(fragment),
            "expected {fragment:?} in the error, got: {stderr}"
        );
    }
    let (list, _) = scratch.ok(&["zone", "list"]);
    assert!(
        !list.contains("example.test"),
        "a refused transfer left the zone in the store: {list}"
    );

    // Without any key, knotd's ACL refuses too.
    let out = scratch.run(&["zone", "import", "--axfr", &server, "example.test"]);
    assert!(!out.status.success(), "an unsigned transfer succeeded");
    assert!(
        text(&out.stderr).contains("NOTAUTH"),
        "unsigned: {}",
        text(&out.stderr)
    );
}
