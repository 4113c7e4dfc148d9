//! The AXFR client against a real knotd: a zone of 3000 records (several
//! messages) transferred unsigned from a zone open to loopback, and signed
//! from a zone whose ACL requires a TSIG key, each equal to the zone file
//! knotd serves; a wrong secret, a missing key and an unknown zone are
//! refused with a message that says so.
//!
//! knotd must be installed: a missing one fails the test, never skips it.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_nameserver::transfer::{fetch_axfr, Limits, TransferError};
use cutover_nameserver::tsig::Key;
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

/// knotd in the foreground on loopback, with its files in a tempdir.
struct Knot {
    /// The process.
    _peer: Peer,
    /// Where it listens (UDP and TCP).
    address: SocketAddr,
    /// Its config, zone files and database.
    dir: tempfile::TempDir,
}

impl Knot {
    /// Starts knotd serving `open.test.` (transfers to 127.0.0.1 unsigned)
    /// and `example.test.` (transfers only with the key), started again on
    /// another port when the one picked was taken meanwhile.
    fn start() -> Knot {
        start_on_free_ports("knotd", |ports: &mut Ports| {
            let dir = tempfile::tempdir().unwrap();
            for zone in ["open.test.", "example.test."] {
                std::fs::write(dir.path().join(format!("{zone}zone")), zone_text(zone)).unwrap();
            }
            let port = ports.pick(&[LOOPBACK]);
            let config = format!(
                "server:\n    rundir: {d}\n    listen: 127.0.0.1@{port}\n\
                 database:\n    storage: {d}\n\
                 log:\n  - target: stderr\n    any: warning\n\
                 key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
                 acl:\n  - id: signed\n    key: {KEY_NAME}\n    action: transfer\n\
                 \x20 - id: loopback\n    address: 127.0.0.1\n    action: transfer\n\
                 zone:\n  - domain: open.test.\n    storage: {d}\n    file: open.test.zone\n    acl: loopback\n\
                 \x20 - domain: example.test.\n    storage: {d}\n    file: example.test.zone\n    acl: signed\n",
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
            if !(serves(address, "open.test.") && serves(address, "example.test.")) {
                return Err(StartError::Failed(format!(
                    "knotd on {address} did not serve the test zones within {ANSWER_LIMIT:?}; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )));
            }
            Ok(Knot {
                _peer: peer,
                address,
                dir,
            })
        })
    }

    /// The zone knotd serves, read from the file we gave it.
    fn source(&self, zone: &str) -> Zone {
        zonefile::parse_file(&self.dir.path().join(format!("{zone}zone")), None)
            .unwrap()
            .zone
    }
}

/// Polls until the server at `address` answers `zone SOA` with NOERROR and
/// one answer, for up to [`ANSWER_LIMIT`].
fn serves(address: SocketAddr, zone: &str) -> bool {
    let deadline = Instant::now() + ANSWER_LIMIT;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut query = vec![0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    cutover_zone::rdata::push_name(&mut query, &name(zone));
    query.extend_from_slice(&[0, 6, 0, 1]);
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
    Name::from_str(text).unwrap()
}

/// The shared key with `secret`.
fn key(secret: &str) -> Arc<Key> {
    Arc::new(Key::from_text(KEY_NAME, "hmac-sha256", secret).unwrap())
}

/// A zone of about 3000 records: 2000 A and 1000 TXT, more than one
/// 64 KiB message holds.
fn zone_text(origin: &str) -> String {
    let mut text = format!(
        "$ORIGIN {origin}\n$TTL 3600\n\
         @ SOA ns1 hostmaster 2024010101 3600 600 86400 300\n\
         @ NS ns1\nns1 A 192.0.2.1\n@ MX 10 mail\nmail A 192.0.2.25\n\
         mail AAAA 2001:db8::25\nwww CNAME @\n_sip._tcp SRV 10 5 5060 mail\n"
    );
    for i in 0..2000 {
        text.push_str(&format!(
            "host{i} A 198.51.{}.{}\n",
            (i / 250) % 256,
            i % 250 + 1
        ));
    }
    for i in 0..1000 {
        text.push_str(&format!(
            "note{i} 600 TXT \"record {i} of a zone that spans several messages\"\n"
        ));
    }
    text
}

#[test]
fn unsigned_axfr_from_knotd_equals_its_zone_and_spans_several_messages() {
    let knot = Knot::start();
    let transfer = fetch_axfr(knot.address, &name("open.test."), None, Limits::default())
        .unwrap_or_else(|e| panic!("unsigned AXFR of open.test. from knotd failed: {e}"));
    assert!(
        transfer.messages > 1,
        "expected knotd to send several messages, got {}",
        transfer.messages
    );
    let expected = knot.source("open.test.");
    assert_eq!(transfer.zone.record_count(), expected.record_count());
    assert!(
        transfer.zone == expected,
        "the transferred zone differs from the file knotd serves"
    );
}

#[test]
fn signed_axfr_from_knotd_verifies_every_message_and_equals_its_zone() {
    let knot = Knot::start();
    let transfer = fetch_axfr(
        knot.address,
        &name("example.test."),
        Some(key(SECRET)),
        Limits::default(),
    )
    .unwrap_or_else(|e| panic!("signed AXFR of example.test. from knotd failed: {e}"));
    assert!(transfer.messages > 1, "got {} messages", transfer.messages);
    assert!(
        transfer.zone == knot.source("example.test."),
        "the transferred zone differs from the file knotd serves"
    );
}

#[test]
fn knotd_refusals_are_reported_clearly() {
    let knot = Knot::start();
    let zone = name("example.test.");

    let err = fetch_axfr(
        knot.address,
        &zone,
        Some(key(WRONG_SECRET)),
        Limits::default(),
    )
    .expect_err("a wrong secret was accepted");
    let text = err.to_string();
    assert!(
        matches!(err, TransferError::Refused { .. })
            && text.contains("NOTAUTH")
            && text.contains("BADSIG"),
        "wrong secret: expected a NOTAUTH refusal, got {text}"
    );

    let err = fetch_axfr(knot.address, &zone, None, Limits::default())
        .expect_err("an unsigned transfer of a keyed zone was accepted");
    assert!(
        matches!(err, TransferError::Refused { .. }),
        "no key: expected a refusal, got {err}"
    );

    let err = fetch_axfr(
        knot.address,
        &name("nowhere.test."),
        None,
        Limits::default(),
    )
    .expect_err("an unknown zone transferred");
    assert!(
        matches!(err, TransferError::Refused { .. }),
        "unknown zone: expected a refusal, got {err}"
    );
    println!("refusals: {text} / {err}");

    let err = fetch_axfr(
        knot.address,
        &name("open.test."),
        None,
        Limits {
            max_records: 500,
            ..Limits::default()
        },
    )
    .expect_err("a transfer over the record cap was accepted");
    assert!(
        matches!(err, TransferError::TooManyRecords { limit: 500 }),
        "record cap: got {err}"
    );
}
