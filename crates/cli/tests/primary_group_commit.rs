//! Group commit through a running `cutover serve`: many signed UPDATEs sent
//! at once over TCP and UDP (so they queue and are committed in batches)
//! are each acknowledged NOERROR and each present in the store afterwards;
//! and `kill -9` in the middle of such a stream loses none it acknowledged
//! and leaves none half stored.

mod primary_support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use primary_support::*;

/// Threads sending at once, and UPDATEs each.
const THREADS: usize = 8;
/// UPDATEs per thread.
const EACH: usize = 25;

/// A signed UPDATE adding `g{thread}-{i}.example.com. A 10.0.thread.i`.
fn update(thread: usize, i: usize) -> Vec<u8> {
    let id = (thread * 1000 + i) as u16;
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[5 << 3, 0, 0, 1, 0, 0, 0, 1, 0, 0]);
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
    let label = format!("g{thread}-{i}");
    m.push(label.len() as u8);
    m.extend_from_slice(label.as_bytes());
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
    m.extend_from_slice(&[10, 0, thread as u8, i as u8]);
    sign_with_ops_key(&mut m);
    m
}

/// Sends over TCP; the RCODE of the answer.
fn over_tcp(server: SocketAddr, message: &[u8]) -> u8 {
    exchange_tcp(server, message).expect("a TCP answer")[3] & 0x0f
}

/// Sends over UDP (no retry: a lost answer fails the test); the RCODE.
fn over_udp(server: SocketAddr, message: &[u8]) -> u8 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    socket.send_to(message, server).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a UDP answer");
    assert!(n >= 12 && buf[..2] == message[..2], "the answer to our ID");
    buf[3] & 0x0f
}

#[test]
fn concurrent_signed_updates_over_tcp_and_udp_are_each_acknowledged_and_kept() {
    let scratch = Scratch::with_zone(10);
    let log = scratch.path("serve.log");
    let serve = Serve::start_free(&log, |port| {
        scratch.config(port, "", &format!("update_keys = [\"{OPS_KEY}\"]\n"))
    });
    let server = serve.addr;
    let senders: Vec<_> = (0..THREADS)
        .map(|thread| {
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        let message = update(thread, i);
                        if thread % 2 == 0 {
                            over_tcp(server, &message)
                        } else {
                            over_udp(server, &message)
                        }
                    })
                    .collect::<Vec<u8>>()
            })
        })
        .collect();
    for (thread, sender) in senders.into_iter().enumerate() {
        let rcodes = sender.join().unwrap();
        assert!(
            rcodes.iter().all(|&rcode| rcode == 0),
            "thread {thread}: every UPDATE NOERROR, got {rcodes:?}; log:\n{}",
            serve.log()
        );
    }
    let exported = scratch.ok(&["zone", "export", ORIGIN]);
    let zone = parse_zone(&exported);
    for thread in 0..THREADS {
        for i in 0..EACH {
            let name: cutover_zone::Name = format!("g{thread}-{i}.{ORIGIN}").parse().unwrap();
            assert!(
                zone.get(&name, cutover_zone::RecordType::A).is_some(),
                "{name} acknowledged but not in the store"
            );
        }
    }
}

/// A signed UPDATE adding `g{thread}-{i}` and `h{thread}-{i}` (two names:
/// the change is whole only with both).
fn pair(thread: usize, i: usize) -> Vec<u8> {
    let id = (thread * 1000 + i) as u16;
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[5 << 3, 0, 0, 1, 0, 0, 0, 2, 0, 0]);
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
    for first in ["g", "h"] {
        let label = format!("{first}{thread}-{i}");
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
        m.extend_from_slice(&[10, thread as u8, (i >> 8) as u8, i as u8]);
    }
    sign_with_ops_key(&mut m);
    m
}

/// What one sender saw: each UPDATE's number and its RCODE (`None`: no answer).
type Answers = Vec<(usize, Option<u8>)>;

/// Sends over TCP; the RCODE, or `None` when the server went away first.
fn over_tcp_until_killed(server: SocketAddr, message: &[u8]) -> Option<u8> {
    exchange_tcp(server, message).map(|answer| answer[3] & 0x0f)
}

/// `kill -9` while UPDATEs stream in from several connections and are
/// committed in batches: after it, every UPDATE answered NOERROR is in the
/// store, every UPDATE is there whole or not at all (never `g` without
/// `h`), and a restarted serve serves the store's serial. Three rounds,
/// each killed at a different moment after at least 20 acknowledgements.
#[test]
fn kill_9_during_batched_commits_keeps_every_acknowledged_update_whole() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let scratch = Scratch::with_zone(10);
    let log = scratch.path("serve.log");
    let mut sent_before = 0;
    for round in 0..3u64 {
        let mut serve = Serve::start_free(&log, |port| {
            scratch.config(port, "", &format!("update_keys = [\"{OPS_KEY}\"]\n"))
        });
        let server = serve.addr;
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..6)
            .map(|thread| {
                let (acknowledged, stop) = (Arc::clone(&acknowledged), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut answers = Vec::new();
                    for i in sent_before.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let rcode = over_tcp_until_killed(server, &pair(thread, i));
                        answers.push((i, rcode));
                        match rcode {
                            Some(0) => _ = acknowledged.fetch_add(1, Ordering::Relaxed),
                            Some(other) => panic!("thread {thread}: UPDATE {i} got RCODE {other}"),
                            None => break,
                        }
                    }
                    answers
                })
            })
            .collect();
        let deadline = std::time::Instant::now() + SERVE_LIMIT;
        while acknowledged.load(Ordering::Relaxed) < 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: expected 20 acknowledgements within {SERVE_LIMIT:?}; log:\n{}",
                serve.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(7 + 31 * round));
        serve.kill();
        stop.store(true, Ordering::Relaxed);
        let answers: Vec<(usize, Answers)> = senders
            .into_iter()
            .enumerate()
            .map(|(thread, sender)| (thread, sender.join().unwrap()))
            .collect();

        let exported = scratch.ok(&["zone", "export", ORIGIN]);
        let zone = parse_zone(&exported);
        let has = |name: String| {
            let name: cutover_zone::Name = format!("{name}.{ORIGIN}").parse().unwrap();
            zone.get(&name, cutover_zone::RecordType::A).is_some()
        };
        let (mut kept, mut lost_unanswered) = (0, 0);
        for (thread, answers) in &answers {
            for &(i, rcode) in answers {
                let (g, h) = (has(format!("g{thread}-{i}")), has(format!("h{thread}-{i}")));
                assert_eq!(
                    g, h,
                    "round {round}: UPDATE {thread}-{i} half stored (g {g}, h {h})"
                );
                if rcode == Some(0) {
                    assert!(
                        g,
                        "round {round}: UPDATE {thread}-{i} acknowledged, not stored"
                    );
                    kept += 1;
                } else if !g {
                    lost_unanswered += 1;
                }
            }
        }
        eprintln!(
            "round {round}: {kept} acknowledged and kept, {lost_unanswered} unanswered and not stored"
        );
        sent_before = answers
            .iter()
            .flat_map(|(_, a)| a.iter().map(|&(i, _)| i + 1))
            .max()
            .unwrap_or(sent_before);

        let again = Serve::start_free(&log, |port| {
            scratch.config(port, "", &format!("update_keys = [\"{OPS_KEY}\"]\n"))
        });
        let served = kdig(again.addr, &["+short", ORIGIN, "SOA"]);
        let serial: u32 = served
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("round {round}: a SOA served, got {served:?}"));
        assert_eq!(
            serial,
            scratch.serial(),
            "round {round}: the restarted serve serves the store's serial"
        );
    }
}
