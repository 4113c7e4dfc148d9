//! The TSIG fault matrix through a running `cutover serve`,
//! over UDP and over TCP, each case compared with what knotd answers to the
//! same message: wrong secret, unknown key, skewed clock (signed 400 s in
//! the past, and `faketime -f -400s kdig`), TSIG not last, oversized MAC,
//! truncated MAC, unsigned; and a good signature answered and signed.

mod primary_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cutover_nameserver::tsig::{
    sign_request, Key, ResponseError, ResponseStatus, ResponseVerifier, BADKEY, BADSIG, BADTIME,
    FORMERR, NOTAUTH,
};
use primary_support::*;

/// Another secret for the transfer key's name.
const WRONG_SECRET: &str = "d3Jvbmcgc2VjcmV0IGZvciB0aGUgc2FtZSBuYW1l";

/// The wall clock in seconds.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The transfer key with `secret`.
fn key(secret: &str) -> Arc<Key> {
    Arc::new(Key::from_text(XFR_KEY, "hmac-sha256", secret).unwrap())
}

/// A SOA query for the zone with ID `id`.
fn query(id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
    m
}

/// How a message travels.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// One datagram.
    Udp,
    /// One framed message on a new connection.
    Tcp,
}

/// Sends `message` to `server` and returns the answer.
fn exchange(server: SocketAddr, message: &[u8], via: Via) -> Vec<u8> {
    match via {
        Via::Udp => {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            socket.send_to(message, server).unwrap();
            let mut buf = vec![0u8; 65535];
            let len = socket
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no UDP answer from {server}: {e}"));
            buf.truncate(len);
            buf
        }
        Via::Tcp => {
            let mut stream = TcpStream::connect(server).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            let mut framed = (message.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(message);
            stream.write_all(&framed).unwrap();
            let mut len = [0u8; 2];
            stream
                .read_exact(&mut len)
                .unwrap_or_else(|e| panic!("no TCP answer from {server}: {e}"));
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut buf).unwrap();
            buf
        }
    }
}

/// (RCODE, TSIG error when the answer carries a TSIG) as the client's
/// verifier reads `answer`.
fn verdict(answer: &[u8], verifier: &mut ResponseVerifier, at: u64) -> (u8, Option<u16>) {
    let error = match verifier.verify(answer, at) {
        Ok(ResponseStatus::Verified) => Some(0),
        Err(ResponseError::Refused(code)) | Err(ResponseError::ServerError(code)) => Some(code),
        Err(ResponseError::ServerBadTime { .. }) => Some(BADTIME),
        Err(ResponseError::Unsigned) => None,
        other => panic!("unexpected answer: {other:?}"),
    };
    (answer[3] & 0x0f, error)
}

/// A knotd serving the zone with the transfer key known.
struct Knot {
    /// The process.
    _guard: Guard,
    /// Where it answers.
    addr: SocketAddr,
    /// Its files.
    _dir: tempfile::TempDir,
}

impl Knot {
    /// Starts knotd on a free port (again on another if that one was taken)
    /// and waits until it answers the zone.
    fn start() -> Knot {
        start_on_free_ports("knotd", |ports: &mut Ports| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("zone"), zone_text(0)).unwrap();
            let port = ports.pick(&[LOOPBACK]);
            let conf = format!(
                "server:\n    rundir: {d}\n    listen: 127.0.0.1@{port}\n\
                 database:\n    storage: {d}\n\
                 log:\n  - target: stderr\n    any: warning\n\
                 key:\n  - id: {XFR_KEY}\n    algorithm: hmac-sha256\n    secret: {XFR_SECRET}\n\
                 acl:\n  - id: a\n    key: {XFR_KEY}\n    action: transfer\n\
                 zone:\n  - domain: {ORIGIN}\n    storage: {d}\n    file: zone\n    acl: a\n",
                d = dir.path().display()
            );
            std::fs::write(dir.path().join("knot.conf"), conf).unwrap();
            let log = dir.path().join("knotd.log");
            let child = Command::new("knotd")
                .arg("-c")
                .arg(dir.path().join("knot.conf"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("knotd must be installed (package knot)");
            let addr = SocketAddr::from((LOOPBACK, port));
            let mut guard = Guard {
                child,
                what: "knotd",
            };
            wait_bound("knotd", &mut guard.child, &Socket::dns(addr), &log)?;
            let deadline = std::time::Instant::now() + SERVE_LIMIT;
            while soa_serial(addr, ORIGIN).is_none() {
                if std::time::Instant::now() > deadline {
                    return Err(StartError::Failed(format!(
                        "knotd on {addr} did not answer within {SERVE_LIMIT:?}; its log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(Knot {
                _guard: guard,
                addr,
                _dir: dir,
            })
        })
    }
}

/// Rebuilds a signed query (TSIG from `unsigned_len`, names uncompressed)
/// with its MAC replaced by `edit(mac)`.
fn with_mac(signed: &[u8], unsigned_len: usize, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let past_name = |mut at: usize| {
        while signed[at] != 0 {
            at += 1 + signed[at] as usize;
        }
        at + 1
    };
    let rdata_start = past_name(unsigned_len) + 10;
    let mac_size_at = past_name(rdata_start) + 8;
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

/// One case of the matrix: a message built by `build` (returning it and the
/// verifier and clock to read answers with), sent to knotd over UDP and to
/// cutover over UDP and TCP; returns (knotd's, ours over UDP, ours over TCP).
fn case(
    knot: &Knot,
    ours: SocketAddr,
    build: impl Fn() -> (Vec<u8>, ResponseVerifier, u64),
) -> [(u8, Option<u16>); 3] {
    let (message, mut v, at) = build();
    let knot_answer = verdict(&exchange(knot.addr, &message, Via::Udp), &mut v, at);
    let (message, mut v, at) = build();
    let udp = verdict(&exchange(ours, &message, Via::Udp), &mut v, at);
    let (message, mut v, at) = build();
    let tcp = verdict(&exchange(ours, &message, Via::Tcp), &mut v, at);
    [knot_answer, udp, tcp]
}

#[test]
fn tsig_matrix_through_the_server_matches_knotd_on_udp_and_tcp() {
    let scratch = Scratch::with_zone(3000);
    let serve = Serve::start_free(&scratch.path("serve.log"), |port| {
        scratch.config(port, "", &format!("transfer_keys = [\"{XFR_KEY}\"]\n"))
    });
    let knot = Knot::start();
    let ours = serve.addr;
    let t = now();
    let len = query(0).len();

    // A good signature: answered NOERROR and signed, by both.
    let [k, u, c] = case(&knot, ours, || {
        let mut m = query(1);
        let v = sign_request(&mut m, key(XFR_SECRET), t).unwrap();
        (m, v, t)
    });
    assert_eq!(k, (0, Some(0)), "knotd: good signature, verified answer");
    assert_eq!((u, c), (k, k), "good signature: ours (UDP, TCP) vs knotd");

    // Wrong secret: NOTAUTH/BADSIG, unsigned.
    let [k, u, c] = case(&knot, ours, || {
        let mut m = query(2);
        let v = sign_request(&mut m, key(WRONG_SECRET), t).unwrap();
        (m, v, t)
    });
    assert_eq!(k, (NOTAUTH, Some(BADSIG)), "knotd: wrong secret");
    assert_eq!((u, c), (k, k), "wrong secret: ours (UDP, TCP) vs knotd");

    // Unknown key: NOTAUTH/BADKEY, unsigned.
    let [k, u, c] = case(&knot, ours, || {
        let stranger =
            Arc::new(Key::from_text("stranger.example.", "hmac-sha256", XFR_SECRET).unwrap());
        let mut m = query(3);
        let v = sign_request(&mut m, stranger, t).unwrap();
        (m, v, t)
    });
    assert_eq!(k, (NOTAUTH, Some(BADKEY)), "knotd: unknown key");
    assert_eq!((u, c), (k, k), "unknown key: ours (UDP, TCP) vs knotd");

    // Signed 400 s in the past: NOTAUTH/BADTIME, signed (the verifier
    // reading it at the client's skewed clock accepts the MAC).
    let [k, u, c] = case(&knot, ours, || {
        let mut m = query(4);
        let v = sign_request(&mut m, key(XFR_SECRET), t - 400).unwrap();
        (m, v, t - 400)
    });
    assert_eq!(k, (NOTAUTH, Some(BADTIME)), "knotd: skewed clock");
    assert_eq!((u, c), (k, k), "skewed clock: ours (UDP, TCP) vs knotd");

    // TSIG not last: FORMERR, no TSIG.
    let [k, u, c] = case(&knot, ours, || {
        let mut m = query(5);
        let v = sign_request(&mut m, key(XFR_SECRET), t).unwrap();
        m.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
        m[11] += 1;
        (m, v, t)
    });
    assert_eq!(u, (FORMERR, None), "TSIG not last: ours over UDP");
    assert_eq!((k, c), (u, u), "TSIG not last: knotd and ours over TCP");

    // Oversized MAC: FORMERR and never signed. knotd 3.2 answers BADSIG
    // (unsigned) where RFC 8945 §5.2.2.1 says FORMERR.
    let [k, u, c] = case(&knot, ours, || {
        let mut m = query(6);
        let v = sign_request(&mut m, key(XFR_SECRET), t).unwrap();
        (with_mac(&m, len, |mac| mac.push(0)), v, t)
    });
    assert_eq!(
        (u, c),
        ((FORMERR, None), (FORMERR, None)),
        "oversized MAC: ours"
    );
    assert_eq!(
        k,
        (NOTAUTH, Some(BADSIG)),
        "oversized MAC: knotd, unsigned too"
    );

    // MAC truncated below the floor: FORMERR (knotd: BADSIG, unsigned).
    let [k, u, c] = case(&knot, ours, || {
        let mut m = query(7);
        let v = sign_request(&mut m, key(XFR_SECRET), t).unwrap();
        (with_mac(&m, len, |mac| mac.truncate(15)), v, t)
    });
    assert_eq!(
        (u, c),
        ((FORMERR, None), (FORMERR, None)),
        "short MAC: ours"
    );
    assert_eq!(k, (NOTAUTH, Some(BADSIG)), "short MAC: knotd, unsigned too");

    // Unsigned: answered, no TSIG, by both.
    for via in [Via::Udp, Via::Tcp] {
        let answer = exchange(ours, &query(8), via);
        assert_eq!(
            answer[3] & 0x0f,
            0,
            "unsigned SOA query over {via:?}: NOERROR"
        );
    }
    assert_eq!(
        exchange(knot.addr, &query(8), Via::Udp)[3] & 0x0f,
        0,
        "knotd, unsigned"
    );

    // A client whose clock is 400 s behind (faketime): both answer BADTIME.
    let y = format!("hmac-sha256:{XFR_KEY}:{XFR_SECRET}");
    for (who, server) in [("knotd", knot.addr), ("cutover", ours)] {
        for transport in ["+notcp", "+tcp"] {
            let out = Command::new("faketime")
                .args([
                    "-f",
                    "-400s",
                    "kdig",
                    "-y",
                    &y,
                    "-p",
                    &server.port().to_string(),
                ])
                .arg(format!("@{}", server.ip()))
                .args([transport, "+retry=0", ORIGIN, "SOA"])
                .output()
                .expect("faketime and kdig must be installed");
            let all = text(&out.stdout) + &text(&out.stderr);
            assert!(
                all.contains("BADTIME"),
                "faketime -400s kdig {transport} to {who}: expected BADTIME, saw:\n{all}"
            );
        }
    }
}

#[test]
fn a_signed_axfr_stream_verifies_message_by_message() {
    let scratch = Scratch::with_zone(8000);
    let serve = Serve::start_free(&scratch.path("serve.log"), |port| {
        scratch.config(port, "", &format!("transfer_keys = [\"{XFR_KEY}\"]\n"))
    });
    // Our own client verifies every message of the stream.
    let mut m = query(9);
    let qtype_at = m.len() - 4;
    m[qtype_at..qtype_at + 2].copy_from_slice(&252u16.to_be_bytes());
    let mut verifier = sign_request(&mut m, key(XFR_SECRET), now()).unwrap();
    let mut stream = TcpStream::connect(serve.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut framed = (m.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&m);
    stream.write_all(&framed).unwrap();
    let expected = 8000 + 5;
    let (mut messages, mut records) = (0, 0);
    while records < expected && messages < 1000 {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).expect("the AXFR ended early");
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(buf[3] & 0x0f, 0, "message {messages}: NOERROR");
        assert_eq!(
            verifier.verify(&buf, now()),
            Ok(ResponseStatus::Verified),
            "message {messages} of our AXFR must carry a TSIG that verifies"
        );
        records += u16::from_be_bytes([buf[6], buf[7]]) as usize;
        messages += 1;
    }
    assert!(
        messages > 1,
        "8000 records take several messages, got {messages}"
    );
    assert_eq!(records, expected, "SOA, NS, ns1, www, the hosts, SOA");
    assert_eq!(verifier.finish(), Ok(()), "the stream ends signed");
}
