//! TSIG against real peers: what `knsupdate`, `nsupdate -y` and `kdig -y`
//! send verifies with our module (and fails with a wrong secret or a clock
//! 400 s off); what our module signs is accepted by `knotd` (SOA over UDP,
//! a multi-message AXFR over TCP whose every message we verify); and for
//! each case of the TSIG matrix, knotd's answer is compared with ours.
//!
//! The peers must be installed (knot, knot-dnsutils, bind9-dnsutils,
//! faketime): a missing one fails the test, it is never skipped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cutover_nameserver::tsig::{
    sign_request, verify_request, Key, KeyRing, Rejection, ResponseError, ResponseStatus, Verified,
    BADKEY, BADSIG, BADTIME, FORMERR, NOTAUTH,
};
use cutover_peers::{
    start_on_free_ports, wait_bound, Ports, Socket, StartError, ANSWER_LIMIT, LOOPBACK,
};

/// The shared key's name.
const KEY_NAME: &str = "xfr.example.";
/// The shared key's secret (32 bytes, base64).
const SECRET: &str = "q1SXa5nV3l9Mz7K0EYXlPjxfDt6vNfV9v0k1b7GHHgY=";
/// Another secret for the same name.
const WRONG_SECRET: &str = "c29tZXRoaW5nIGVsc2UgZW50aXJlbHkgZGlmZmVyZW50";
/// How many A records the transferred zone holds.
const ZONE_RECORDS: usize = 3000;

/// Kills and reaps a peer process when the test ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The wall clock in seconds (the module never reads it; the tests do).
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The shared key with `secret`.
fn key(secret: &str) -> Arc<Key> {
    Arc::new(Key::from_text(KEY_NAME, "hmac-sha256", secret).unwrap())
}

/// A ring holding the shared key with `secret`.
fn ring(secret: &str) -> KeyRing {
    KeyRing::from_keys([(*key(secret)).clone()]).unwrap()
}

/// Starts `program` with `args`, stdin piped, output dropped; panics naming
/// the program when it is not installed.
fn spawn(program: &str, args: &[&str], stdin: Option<&str>) -> Peer {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
    let mut input = child.stdin.take().expect("stdin was piped");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write the script");
    }
    drop(input);
    Peer(child)
}

/// Runs `program` against a UDP listener on 127.0.0.1 and returns the first
/// datagram it sends (nothing is answered).
fn capture(program: &str, args: &[&str], script: Option<&str>) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let port = socket.local_addr().unwrap().port().to_string();
    let args: Vec<String> = args.iter().map(|a| a.replace("PORT", &port)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let script = script.map(|s| s.replace("PORT", &port));
    let _peer = spawn(program, &args, script.as_deref());
    let mut buf = vec![0u8; 65535];
    let (len, _) = socket
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("{program} sent nothing to 127.0.0.1:{port}: {e}"));
    buf.truncate(len);
    buf
}

/// The UPDATE script for `knsupdate` / `nsupdate`.
const UPDATE_SCRIPT: &str =
    "server 127.0.0.1 PORT\nzone example.\nupdate add new.example. 60 A 192.0.2.7\nsend\n";

/// The `-y` argument for the shared key with `secret`.
fn y(secret: &str) -> String {
    format!("hmac-sha256:{KEY_NAME}:{secret}")
}

/// What our verifier says about a captured request at our clock.
fn verdict(message: &[u8], secret: &str) -> Result<Verified, Rejection> {
    verify_request(message, &ring(secret), now())
}

#[test]
fn knsupdate_nsupdate_and_kdig_requests_verify() {
    let key_arg = y(SECRET);
    let captures = [
        (
            "knsupdate",
            capture("knsupdate", &["-y", &key_arg], Some(UPDATE_SCRIPT)),
        ),
        (
            "nsupdate",
            capture("nsupdate", &["-y", &key_arg], Some(UPDATE_SCRIPT)),
        ),
        (
            "kdig",
            capture(
                "kdig",
                &[
                    "-y",
                    &key_arg,
                    "@127.0.0.1",
                    "-p",
                    "PORT",
                    "+notcp",
                    "+retry=0",
                    "example.",
                    "SOA",
                ],
                None,
            ),
        ),
    ];
    for (tool, message) in &captures {
        match verdict(message, SECRET) {
            Ok(Verified::Signed(signer)) => {
                assert_eq!(signer.key().name.to_ascii(), KEY_NAME, "{tool}")
            }
            other => panic!("{tool}: expected a verified request, got {other:?}"),
        }
        match verdict(message, WRONG_SECRET) {
            Err(Rejection::BadSig(_)) => {}
            other => panic!("{tool} with a wrong secret: expected BADSIG, got {other:?}"),
        }
        match verify_request(message, &KeyRing::new(), now()) {
            Err(Rejection::BadKey(_)) => {}
            other => panic!("{tool} with no key: expected BADKEY, got {other:?}"),
        }
    }
}

#[test]
fn knsupdate_with_a_skewed_clock_is_badtime() {
    let key_arg = y(SECRET);
    let message = capture(
        "faketime",
        &["-f", "-400s", "knsupdate", "-y", &key_arg],
        Some(UPDATE_SCRIPT),
    );
    match verdict(&message, SECRET) {
        Err(Rejection::BadTime {
            request_time,
            our_time,
            ..
        }) => {
            let skew = our_time.abs_diff(request_time);
            assert!((390..=410).contains(&skew), "skew {skew} s, expected ~400");
        }
        other => panic!("faketime -400s knsupdate: expected BADTIME, got {other:?}"),
    }
    // The MAC is checked first: with a wrong secret it is BADSIG, not BADTIME.
    assert!(matches!(
        verdict(&message, WRONG_SECRET),
        Err(Rejection::BadSig(_))
    ));
}

/// A running knotd serving `example.` (SOA, NS, [`ZONE_RECORDS`] A records)
/// with the shared key and an ACL allowing transfers to it.
struct Knot {
    /// The process.
    _peer: Peer,
    /// Its port (UDP and TCP) on 127.0.0.1.
    port: u16,
    /// Its config and zone files.
    _dir: tempfile::TempDir,
}

impl Knot {
    /// Starts knotd on a free port and waits until it answers for the zone
    /// (started again on another port if that one was taken).
    fn start() -> Knot {
        start_on_free_ports("knotd", |ports: &mut Ports| {
            let dir = tempfile::tempdir().unwrap();
            write_zone(&dir.path().join("example.zone"));
            let port = ports.pick(&[LOOPBACK]);
            let config = format!(
                "server:\n    rundir: {d}\n    listen: 127.0.0.1@{port}\n\
                 database:\n    storage: {d}\n\
                 log:\n  - target: stderr\n    any: warning\n\
                 key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
                 acl:\n  - id: a\n    key: {KEY_NAME}\n    action: transfer\n\
                 zone:\n  - domain: example.\n    storage: {d}\n    file: example.zone\n    acl: a\n",
                d = dir.path().display()
            );
            let config_path = dir.path().join("knot.conf");
            std::fs::write(&config_path, config).unwrap();
            let log = dir.path().join("knotd.log");
            let child = Command::new("knotd")
                .arg("-c")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run knotd (is knot installed?): {e}"));
            let mut peer = Peer(child);
            let addr = SocketAddr::from((LOOPBACK, port));
            wait_bound("knotd", &mut peer.0, &Socket::dns(addr), &log)?;
            if !wait_for_zone(port) {
                return Err(StartError::Failed(format!(
                    "knotd on {addr} did not serve example. within {ANSWER_LIMIT:?}; its log:\n{}",
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

    /// Sends `query` over UDP and returns the answer.
    fn udp(&self, query: &[u8]) -> Vec<u8> {
        udp_exchange(self.port, query).expect("knotd did not answer over UDP")
    }
}

/// One UDP query and its answer, or `None` after a second.
fn udp_exchange(port: u16, query: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    socket.send_to(query, ("127.0.0.1", port)).ok()?;
    let mut buf = vec![0u8; 65535];
    let len = socket.recv(&mut buf).ok()?;
    buf.truncate(len);
    Some(buf)
}

/// Polls knotd until it answers the zone's SOA (NOERROR, one answer).
fn wait_for_zone(port: u16) -> bool {
    let deadline = Instant::now() + ANSWER_LIMIT;
    while Instant::now() < deadline {
        if let Some(answer) = udp_exchange(port, &query(1, 6)) {
            if rcode(&answer) == 0 && answer[7] == 1 {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Writes the zone knotd serves.
fn write_zone(path: &Path) {
    let mut text = String::from(
        "$ORIGIN example.\n$TTL 3600\n\
         @ SOA ns1 hostmaster 2024010101 3600 600 86400 300\n\
         @ NS ns1\nns1 A 192.0.2.1\n",
    );
    for i in 0..ZONE_RECORDS {
        text.push_str(&format!(
            "host{i} A 198.51.{}.{}\n",
            (i / 250) % 256,
            i % 250 + 1
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// A query for `example.` of type `qtype` with ID `id`.
fn query(id: u16, qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(b"\x07example\x00");
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

/// The RCODE in a message's header.
fn rcode(message: &[u8]) -> u8 {
    message[3] & 0x0f
}

/// The types of the answer records of a message.
fn answer_types(message: &[u8]) -> Vec<u16> {
    /// Skips a name at `at`.
    fn skip(message: &[u8], mut at: usize) -> usize {
        loop {
            let len = message[at] as usize;
            if len == 0 {
                return at + 1;
            }
            if len & 0xc0 == 0xc0 {
                return at + 2;
            }
            at += 1 + len;
        }
    }
    let questions = u16::from_be_bytes([message[4], message[5]]);
    let answers = u16::from_be_bytes([message[6], message[7]]);
    let mut at = 12;
    for _ in 0..questions {
        at = skip(message, at) + 4;
    }
    let mut types = Vec::new();
    for _ in 0..answers {
        at = skip(message, at);
        types.push(u16::from_be_bytes([message[at], message[at + 1]]));
        let rdlength = u16::from_be_bytes([message[at + 8], message[at + 9]]) as usize;
        at += 10 + rdlength;
    }
    types
}

/// The offset just past the uncompressed name at `at`.
fn past_name(message: &[u8], mut at: usize) -> usize {
    while message[at] != 0 {
        at += 1 + message[at] as usize;
    }
    at + 1
}

/// Rebuilds a query we signed (the TSIG starts at `unsigned_len`, with
/// uncompressed names) with its MAC replaced by `edit(mac)`.
fn with_mac(signed: &[u8], unsigned_len: usize, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    // Owner, then type, class, TTL (8 bytes), RDLENGTH (2), RDATA.
    let rdata_start = past_name(signed, unsigned_len) + 10;
    // Algorithm name, Time Signed (6), Fudge (2), MAC Size (2), MAC.
    let mac_size_at = past_name(signed, rdata_start) + 8;
    let mac_len = u16::from_be_bytes([signed[mac_size_at], signed[mac_size_at + 1]]) as usize;
    let mut mac = signed[mac_size_at + 2..mac_size_at + 2 + mac_len].to_vec();
    edit(&mut mac);
    let mut out = signed[..mac_size_at].to_vec();
    out.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    out.extend_from_slice(&mac);
    out.extend_from_slice(&signed[mac_size_at + 2 + mac_len..]);
    let rdlength = (out.len() - rdata_start) as u16;
    out[rdata_start - 2..rdata_start].copy_from_slice(&rdlength.to_be_bytes());
    out
}

#[test]
fn knotd_accepts_our_signed_soa_query_and_its_answer_verifies() {
    let knot = Knot::start();
    let mut message = query(0x4242, 6);
    let mut verifier = sign_request(&mut message, key(SECRET), now()).unwrap();
    let answer = knot.udp(&message);
    assert_eq!(rcode(&answer), 0, "knotd's RCODE for a signed SOA query");
    assert_eq!(answer_types(&answer), vec![6], "one SOA in the answer");
    assert_eq!(
        verifier.verify(&answer, now()),
        Ok(ResponseStatus::Verified)
    );
    assert_eq!(verifier.finish(), Ok(()));
}

#[test]
fn knotd_axfr_with_our_signature_verifies_every_message() {
    let knot = Knot::start();
    let mut message = query(0x5151, 252);
    let mut verifier = sign_request(&mut message, key(SECRET), now()).unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", knot.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&message);
    stream.write_all(&framed).unwrap();
    let (mut messages, mut records, mut soas) = (0, 0, 0);
    while soas < 2 && messages < 1000 {
        let mut len = [0u8; 2];
        stream
            .read_exact(&mut len)
            .expect("knotd closed the AXFR early");
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(rcode(&buf), 0, "message {messages} of the AXFR");
        assert_eq!(
            verifier.verify(&buf, now()),
            Ok(ResponseStatus::Verified),
            "message {messages} of knotd's AXFR"
        );
        let types = answer_types(&buf);
        soas += types.iter().filter(|&&t| t == 6).count();
        records += types.len();
        messages += 1;
    }
    assert_eq!(soas, 2, "the AXFR ends with the SOA");
    assert!(
        messages > 1,
        "a {ZONE_RECORDS}-record AXFR takes several messages, got {messages}"
    );
    assert_eq!(records, ZONE_RECORDS + 4, "SOA, NS, ns1 A, the hosts, SOA");
    assert_eq!(verifier.finish(), Ok(()));
}

/// knotd's answer to `message` over UDP and ours, as (RCODE, TSIG error
/// or None when the answer carries no TSIG or one that is not ours to read).
fn both_answers(
    knot: &Knot,
    message: &[u8],
    verifier_for_knot: &mut cutover_nameserver::tsig::ResponseVerifier,
    at: u64,
) -> ((u8, Option<u16>), (u8, Option<u16>)) {
    let answer = knot.udp(message);
    let knot_error = match verifier_for_knot.verify(&answer, at) {
        Err(ResponseError::Refused(code)) | Err(ResponseError::ServerError(code)) => Some(code),
        Err(ResponseError::ServerBadTime { .. }) => Some(BADTIME),
        Err(ResponseError::Unsigned) => None,
        other => panic!("unexpected knotd answer: {other:?}"),
    };
    let ours = match verify_request(message, &ring(SECRET), now()) {
        Ok(verdict) => panic!("expected a rejection, we accepted: {verdict:?}"),
        Err(rejection) => (rejection.rcode(), rejection.tsig_error()),
    };
    ((rcode(&answer), knot_error), ours)
}

#[test]
fn tsig_matrix_matches_knotd() {
    let knot = Knot::start();
    let t = now();

    // Wrong secret: knotd and we answer NOTAUTH/BADSIG, unsigned.
    let mut m = query(1, 6);
    let mut v = sign_request(&mut m, key(WRONG_SECRET), t).unwrap();
    let (knot_answer, ours) = both_answers(&knot, &m, &mut v, t);
    assert_eq!(knot_answer, (NOTAUTH, Some(BADSIG)), "knotd, wrong secret");
    assert_eq!(ours, knot_answer, "wrong secret: ours vs knotd");

    // Unknown key: BADKEY.
    let stranger = Arc::new(Key::from_text("stranger.example.", "hmac-sha256", SECRET).unwrap());
    let mut m = query(2, 6);
    let mut v = sign_request(&mut m, stranger, t).unwrap();
    let (knot_answer, ours) = both_answers(&knot, &m, &mut v, t);
    assert_eq!(knot_answer, (NOTAUTH, Some(BADKEY)), "knotd, unknown key");
    assert_eq!(ours, knot_answer, "unknown key: ours vs knotd");

    // Clock 400 s behind: BADTIME, signed.
    let mut m = query(3, 6);
    let mut v = sign_request(&mut m, key(SECRET), t - 400).unwrap();
    let (knot_answer, ours) = both_answers(&knot, &m, &mut v, t - 400);
    assert_eq!(knot_answer, (NOTAUTH, Some(BADTIME)), "knotd, skewed clock");
    assert_eq!(ours, knot_answer, "skewed clock: ours vs knotd");

    // TSIG not last: FORMERR.
    let mut m = query(4, 6);
    let len = m.len();
    let mut v = sign_request(&mut m, key(SECRET), t).unwrap();
    m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
    m[11] += 1;
    let (knot_answer, ours) = both_answers(&knot, &m, &mut v, t);
    assert_eq!(ours, (FORMERR, None), "TSIG not last: ours");
    assert_eq!(knot_answer, ours, "TSIG not last: knotd vs ours");

    // Oversized MAC: FORMERR and unsigned.
    let mut m = query(5, 6);
    let mut v = sign_request(&mut m, key(SECRET), t).unwrap();
    let m = with_mac(&m, len, |mac| mac.push(0));
    let (knot_answer, ours) = both_answers(&knot, &m, &mut v, t);
    assert_eq!(ours, (FORMERR, None), "oversized MAC: ours");
    // knotd 3.2 answers NOTAUTH/BADSIG where RFC 8945 §5.2.2.1 says FORMERR;
    // both answers are unsigned (`Refused` means MAC Size 0), which is what
    // matters: an oversized MAC never gets a signed answer.
    assert_eq!(knot_answer, (NOTAUTH, Some(BADSIG)), "oversized MAC: knotd");

    // MAC truncated below the floor (15 < 16 bytes): FORMERR.
    let mut m = query(6, 6);
    let mut v = sign_request(&mut m, key(SECRET), t).unwrap();
    let m = with_mac(&m, len, |mac| mac.truncate(15));
    let (knot_answer, ours) = both_answers(&knot, &m, &mut v, t);
    assert_eq!(ours, (FORMERR, None), "short MAC: ours");
    // Here too knotd 3.2 answers BADSIG (unsigned) where the RFC says FORMERR.
    assert_eq!(knot_answer, (NOTAUTH, Some(BADSIG)), "short MAC: knotd");

    // A MAC truncated within the rules (16 of 32 bytes): we accept it.
    let mut m = query(8, 6);
    sign_request(&mut m, key(SECRET), t).unwrap();
    let m = with_mac(&m, len, |mac| mac.truncate(16));
    assert!(matches!(
        verify_request(&m, &ring(SECRET), t),
        Ok(Verified::Signed(_))
    ));
    // knotd 3.2 refuses every truncated MAC (a stricter local policy,
    // which RFC 8945 §5.2.4 allows); we accept the RFC's minimum.
    assert_eq!(rcode(&knot.udp(&m)), NOTAUTH, "allowed truncation: knotd");

    // Unsigned: both answer (NOERROR for a SOA query).
    assert!(matches!(
        verify_request(&query(7, 6), &ring(SECRET), t),
        Ok(Verified::Unsigned)
    ));
    assert_eq!(
        rcode(&knot.udp(&query(7, 6))),
        0,
        "knotd, unsigned SOA query"
    );
}
