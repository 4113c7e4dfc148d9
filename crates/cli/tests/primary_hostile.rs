//! `cutover serve` attacked on loopback, as in the security issue "Under
//! attack it keeps its secrets and its service": a spoofable UDP flood of
//! unsigned UPDATEs and forged TSIGs beside signed UPDATEs; concurrent
//! writers (a `record set` loop, a second `serve` on the same store) beside
//! signed UPDATEs; the process out of file descriptors; and the open-file
//! limit raised at start. Raw sockets and the real binary; the figures are
//! asserted with margins and printed.

mod primary_support;

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cutover_nameserver::tsig::{sign_request, Key};
use primary_support::*;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// RCODE SERVFAIL.
const SERVFAIL: u8 = 2;

/// The wall clock in seconds.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An UPDATE of example.com. adding `name A address`, signed with `key`
/// (`None`: unsigned), with message ID `id`.
fn update(id: u16, name: &str, address: [u8; 4], key: Option<(&str, &str)>) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[5 << 3, 0, 0, 1, 0, 0, 0, 1, 0, 0]);
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
    let label = name.split('.').next().unwrap();
    m.push(label.len() as u8);
    m.extend_from_slice(label.as_bytes());
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    m.extend_from_slice(&address);
    if let Some((name, secret)) = key {
        let key = Arc::new(Key::from_text(name, "hmac-sha256", secret).unwrap());
        sign_request(&mut m, key, now()).unwrap();
    }
    m
}

/// A SOA query for example.com. signed with a key the server does not know
/// (`bogus.`, so BADKEY) or with the ops key's name and a wrong secret (BADSIG).
fn forged_query(id: u16, bad_key_name: bool) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
    let name = if bad_key_name { "bogus." } else { OPS_KEY };
    let key = Arc::new(Key::from_text(name, "hmac-sha256", XFR_SECRET).unwrap());
    sign_request(&mut m, key, now()).unwrap();
    m
}

/// Sends `message` over UDP and waits up to `wait` for the answer with its
/// ID; its RCODE.
fn udp_rcode(socket: &UdpSocket, server: SocketAddr, message: &[u8], wait: Duration) -> Option<u8> {
    socket.send_to(message, server).ok()?;
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let len = socket.recv(&mut buf).ok()?;
        if len >= 12 && buf[..2] == message[..2] {
            return Some(buf[3] & 0x0f);
        }
    }
}

/// Sends `message` on a new TCP connection; the answer's RCODE.
fn tcp_rcode(server: SocketAddr, message: &[u8]) -> Option<u8> {
    exchange_tcp(server, message).map(|answer| answer[3] & 0x0f)
}

/// A UDP socket on the loopback address `from`.
fn udp_from(from: Ipv4Addr) -> UdpSocket {
    UdpSocket::bind((from, 0)).unwrap()
}

/// `cutover serve` behind `prefix` (e.g. `prlimit …`) on a free port, the
/// ops key allowed to update the zone, `dns_extra` in `[dns]`, its config
/// in `name` and its log in `log`; waits until it answers the zone's SOA.
fn updatable(scratch: &Scratch, name: &str, dns_extra: &str, prefix: &[&str], log: &Path) -> Serve {
    Serve::start_free_with(prefix, log, |port| {
        let config = scratch.config(port, dns_extra, &format!("update_keys = [\"{OPS_KEY}\"]\n"));
        let named = scratch.path(name);
        std::fs::rename(&config, &named).unwrap();
        named
    })
}

/// The names of the zone as `zone export` shows them.
fn exported(scratch: &Scratch) -> String {
    scratch.ok(&["zone", "export", ORIGIN])
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Clock ticks per second.
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the system.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as u64 }
}

/// Regression: under a spoofable UDP flood of unsigned UPDATEs and
/// bogus-TSIG queries, 14 of 31 signed UPDATEs over UDP were dropped by the
/// primary's bounded queue. The flood is now answered by the UDP worker
/// (REFUSED, BADKEY, BADSIG) and signed messages have a lane of their own.
#[test]
fn signed_updates_are_answered_through_a_flood_of_forged_ones() {
    let scratch = Scratch::with_zone(5);
    let serve = updatable(&scratch, "flood.toml", "", &[], &scratch.path("serve.log"));
    let server = serve.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    // Two flooders, 10,000 datagrams a second each, from other addresses.
    let flooders: Vec<_> = [(3u8, true), (4u8, false)]
        .into_iter()
        .map(|(last, unsigned_updates)| {
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            std::thread::spawn(move || {
                let socket = udp_from(Ipv4Addr::new(127, 0, 0, last));
                let messages: Vec<Vec<u8>> = (0..64u16)
                    .map(|i| match unsigned_updates {
                        true => update(i, &format!("spoof{i}.example.com."), [10, 9, 9, 9], None),
                        false => forged_query(i, i % 2 == 0),
                    })
                    .collect();
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    for message in &messages[..] {
                        let _ = socket.send_to(message, server);
                    }
                    for message in &messages[..36] {
                        let _ = socket.send_to(message, server);
                    }
                    sent.fetch_add(100, Ordering::Relaxed);
                    next += Duration::from_millis(10);
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            })
        })
        .collect();
    // Long enough for a queue shared with the flood to be full.
    std::thread::sleep(Duration::from_secs(1));

    let client = udp_from(Ipv4Addr::LOCALHOST);
    let started = Instant::now();
    let (mut first_try, mut answered, mut other) = (0, 0, Vec::new());
    let total = 100u16;
    for i in 0..total {
        let message = update(
            1000 + i,
            &format!("signed{i}.example.com."),
            [10, 0, 0, i as u8],
            Some((OPS_KEY, OPS_SECRET)),
        );
        // As knsupdate: a second and a third try after a second of silence.
        for attempt in 0..3 {
            match udp_rcode(&client, server, &message, Duration::from_secs(1)) {
                Some(0) => {
                    answered += 1;
                    if attempt == 0 {
                        first_try += 1;
                    }
                    break;
                }
                Some(rcode) => {
                    other.push((i, rcode));
                    break;
                }
                None => continue,
            }
        }
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.join().unwrap();
    }
    let flood = sent.load(Ordering::Relaxed);
    eprintln!(
        "flood: {flood} forged datagrams; signed UDP UPDATEs: {answered}/{total} NOERROR \
         ({first_try} at the first try) in {took:?}; other answers: {other:?}"
    );
    assert!(flood >= 10_000, "the flood sent only {flood} datagrams");
    assert!(
        other.is_empty(),
        "signed UPDATEs answered with another RCODE: {other:?}"
    );
    assert_eq!(
        answered, total,
        "every signed UPDATE answered NOERROR (3 tries each)"
    );
    // Before the fix: 87 of 100 answered in three tries, 64 at the first.
    // The first try can still be lost in the kernel's socket buffer while
    // the worker triages the flood on a busy machine; the margin allows it.
    assert!(
        first_try * 4 >= total * 3,
        "only {first_try} of {total} signed UPDATEs answered at the first try"
    );
    let zone = exported(&scratch);
    for i in 0..total {
        assert!(
            zone.contains(&format!("signed{i}.example.com.")),
            "signed{i} missing"
        );
    }
    assert!(
        !zone.contains("spoof"),
        "an unsigned spoofed UPDATE was applied:\n{zone}"
    );
    let log = serve.log();
    let refused_lines =
        log.matches("UPDATE refused: unsigned").count() + log.matches("TSIG:").count();
    assert!(
        refused_lines <= 10,
        "{refused_lines} log lines for the refused flood (one per 10 s each expected)"
    );
}

/// Regression: 8 of 200 UPDATEs got SERVFAIL ("the zone changed
/// underneath") while a `cutover record set` loop wrote the same zone.
#[test]
fn updates_beside_a_record_set_loop_never_servfail() {
    let scratch = Scratch::with_zone(5);
    let serve = updatable(
        &scratch,
        "writers.toml",
        "",
        &[],
        &scratch.path("serve.log"),
    );
    let server = serve.addr;
    let store = scratch.path("cutover.db");
    let cli = std::thread::spawn(move || {
        let mut failed = Vec::new();
        for i in 0..40 {
            let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
                .arg("--store")
                .arg(&store)
                .args([
                    "record",
                    "set",
                    ORIGIN,
                    &format!("cli{i}"),
                    "A",
                    &format!("10.1.0.{i}"),
                ])
                .env("RUST_LOG", "warn")
                .output()
                .unwrap();
            if !out.status.success() {
                failed.push(text(&out.stderr));
            }
        }
        failed
    });
    let mut rcodes = Vec::new();
    for i in 0..200u16 {
        let message = update(
            i,
            &format!("upd{i}.example.com."),
            [10, 2, (i / 250) as u8, (i % 250) as u8],
            Some((OPS_KEY, OPS_SECRET)),
        );
        rcodes.push(tcp_rcode(server, &message));
    }
    let cli_failed = cli.join().unwrap();
    let servfail = rcodes.iter().filter(|r| **r == Some(SERVFAIL)).count();
    let noerror = rcodes.iter().filter(|r| **r == Some(0)).count();
    eprintln!("200 UPDATEs beside 40 `record set`: {noerror} NOERROR, {servfail} SERVFAIL");
    assert!(cli_failed.is_empty(), "record set failed: {cli_failed:?}");
    assert_eq!(servfail, 0, "SERVFAIL for a benign concurrent write");
    assert_eq!(noerror, 200, "every UPDATE NOERROR: {rcodes:?}");
    let zone = exported(&scratch);
    for i in 0..200 {
        assert!(
            zone.contains(&format!("upd{i}.example.com.")),
            "upd{i} missing"
        );
    }
    for i in 0..40 {
        assert!(
            zone.contains(&format!("cli{i}.example.com.")),
            "cli{i} missing"
        );
    }
    assert!(
        serve.log().contains("read inside the write transaction"),
        "no UPDATE had to re-read the zone: the test did not make writers meet"
    );
}

/// Regression: with two `cutover serve` on one store, 17 of 400 UPDATEs got
/// SERVFAIL.
#[test]
fn two_serves_on_one_store_take_every_update() {
    let scratch = Scratch::with_zone(5);
    let serve_a = updatable(&scratch, "a.toml", "", &[], &scratch.path("a.log"));
    let serve_b = updatable(&scratch, "b.toml", "", &[], &scratch.path("b.log"));
    let senders: Vec<_> = [(0u8, serve_a.addr), (1u8, serve_b.addr)]
        .into_iter()
        .map(|(side, server)| {
            std::thread::spawn(move || {
                (0..200u16)
                    .map(|i| {
                        let message = update(
                            i,
                            &format!("s{side}n{i}.example.com."),
                            [10, 3 + side, (i / 250) as u8, (i % 250) as u8],
                            Some((OPS_KEY, OPS_SECRET)),
                        );
                        tcp_rcode(server, &message)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let rcodes: Vec<Option<u8>> = senders
        .into_iter()
        .flat_map(|sender| sender.join().unwrap())
        .collect();
    let servfail = rcodes.iter().filter(|r| **r == Some(SERVFAIL)).count();
    let noerror = rcodes.iter().filter(|r| **r == Some(0)).count();
    eprintln!(
        "400 UPDATEs through two serves on one store: {noerror} NOERROR, {servfail} SERVFAIL"
    );
    assert_eq!(servfail, 0, "SERVFAIL for a benign concurrent write");
    assert_eq!(noerror, 400, "every UPDATE NOERROR");
    let zone = exported(&scratch);
    for side in 0..2 {
        for i in 0..200 {
            assert!(
                zone.contains(&format!("s{side}n{i}.example.com.")),
                "s{side}n{i} missing"
            );
        }
    }
    let reread = serve_a
        .log()
        .matches("read inside the write transaction")
        .count()
        + serve_b
            .log()
            .matches("read inside the write transaction")
            .count();
    assert!(
        reread > 0,
        "no UPDATE had to re-read the zone: the two serves never met"
    );
    // Both serve the final version.
    let serial = scratch.serial();
    let deadline = Instant::now() + Duration::from_secs(5);
    while [serve_a.addr, serve_b.addr]
        .iter()
        .any(|addr| soa_serial(*addr, ORIGIN) != Some(serial))
    {
        assert!(
            Instant::now() < deadline,
            "a serve did not reach serial {serial}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP connection from the loopback address `from`.
fn connect_from(from: Ipv4Addr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SockAddr::from(SocketAddr::from((from, 0))))?;
    socket.connect_timeout(&SockAddr::from(server), Duration::from_secs(2))?;
    Ok(socket.into())
}

/// Regression: with every descriptor taken, "TCP accept failed" was logged
/// 100 times a second and the accept loop kept waking. Now the process
/// backs off, logs once per interval with a count, gives back its own idle
/// connections, and answers again.
#[test]
fn out_of_descriptors_the_accept_loop_backs_off_and_recovers() {
    let scratch = Scratch::with_zone(5);
    let dns = "tcp_max_connections = 1000\ntcp_max_connections_per_client = 1000\n";
    let serve = updatable(
        &scratch,
        "fds.toml",
        dns,
        &["prlimit", "--nofile=64:64", "--"],
        &scratch.path("serve.log"),
    );
    let pid = serve.child.id();
    let hoarder = Ipv4Addr::new(127, 0, 0, 5);
    let hoard: Vec<TcpStream> = (0..150)
        .filter_map(|_| connect_from(hoarder, serve.addr).ok())
        .collect();
    assert!(
        hoard.len() >= 100,
        "{} connections reached the kernel",
        hoard.len()
    );
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(pid);
    let measured = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let used = (cpu_ticks(pid) - before) as f64 / ticks_per_second() as f64;
    let share = used / measured.elapsed().as_secs_f64();
    let log = serve.log();
    let failures = log.matches("TCP accept failed").count();
    eprintln!(
        "out of descriptors: {:.1}% of a core over 3 s, {failures} accept-failure log lines",
        share * 100.0
    );
    assert!(
        log.contains("Too many open files"),
        "the test did not run the process out of descriptors; log:\n{log}"
    );
    assert!(
        share < 0.5,
        "the accept loop used {:.0}% of a core",
        share * 100.0
    );
    assert!(
        failures <= 3,
        "{failures} log lines for failed accepts in about 3 s:\n{log}"
    );

    // While the hoard is still held, a legitimate query gets through: the
    // server closes its own idle connections to get descriptors back.
    let deadline = Instant::now() + Duration::from_secs(30);
    let query = {
        let mut m = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
        m
    };
    let started = Instant::now();
    while tcp_rcode(serve.addr, &query) != Some(0) {
        assert!(
            Instant::now() < deadline,
            "no TCP answer within 30 s while out of descriptors; log:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "a legitimate TCP query answered {:?} after the measurement",
        started.elapsed()
    );
    drop(hoard);
}

/// `serve` raises the soft limit of open files to the hard limit, and says so.
#[test]
fn serve_raises_the_open_file_limit_to_the_hard_limit() {
    let scratch = Scratch::with_zone(1);
    let serve = updatable(
        &scratch,
        "limit.toml",
        "",
        &["prlimit", "--nofile=256:4096", "--"],
        &scratch.path("serve.log"),
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", serve.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
    assert!(
        serve
            .log()
            .contains("soft limit raised from 256 to the hard limit, 4096"),
        "log:\n{}",
        serve.log()
    );
}
