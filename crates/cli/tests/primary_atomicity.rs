//! An UPDATE is all or nothing, through a running `cutover serve`: one that
//! fails a prerequisite, a cap or the ACL changes nothing (store, served
//! snapshot, serial); and `kill -9` at random moments while a large update
//! is being applied leaves the zone at the old version or the new, never
//! between (checked with `zone list` and `zone export` after a restart);
//! and a `cutover record` edit beside a running serve returns once served.

mod primary_support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use primary_support::*;

/// Records in the zone before the large updates.
const BASE_HOSTS: usize = 20_000;
/// Records one large update adds (as many as one TCP message holds with
/// room to spare).
const BATCH: usize = 2_500;

/// The `zone list` record count of the zone.
fn record_count(scratch: &Scratch) -> u64 {
    let list = scratch.ok(&["zone", "list"]);
    let line = list.lines().find(|l| l.starts_with(ORIGIN)).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// An UPDATE adding `count` A records `b{round}-{i}.example.com.`, owner
/// names compressed against the zone section; signed with the ops key.
fn large_update(round: usize, count: usize) -> Vec<u8> {
    let mut m = vec![0x77, round as u8, 5 << 3, 0, 0, 1, 0, 0];
    m.extend_from_slice(&(count as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
    for i in 0..count {
        let label = format!("b{round}-{i}");
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4]);
        m.extend_from_slice(&[10, (round % 256) as u8, (i / 256) as u8, (i % 256) as u8]);
    }
    sign_with_ops_key(&mut m);
    m
}

/// Sends `message` over TCP; with `wait`, returns the answer's RCODE.
fn send_tcp(server: SocketAddr, message: &[u8], wait: bool) -> Option<u8> {
    if wait {
        return exchange_tcp(server, message).map(|answer| answer[3] & 0x0f);
    }
    let mut stream = TcpStream::connect(server).unwrap();
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).unwrap();
    // Keep the connection open while the caller kills the server.
    std::mem::forget(stream);
    None
}

/// `cutover serve` on a free port with a config that lets the ops key
/// update the zone, with `dns_extra` in `[dns]`, its log in `log`.
fn updatable(scratch: &Scratch, dns_extra: &str, log: &Path) -> Serve {
    Serve::start_free(log, |port| {
        scratch.config(port, dns_extra, &format!("update_keys = [\"{OPS_KEY}\"]\n"))
    })
}

/// What the store and the server show: (store serial, served serial, export).
fn state(scratch: &Scratch, serve: &Serve) -> (u32, Option<u32>, String) {
    (
        scratch.serial(),
        soa_serial(serve.addr, ORIGIN),
        scratch.ok(&["zone", "export", ORIGIN]),
    )
}

#[test]
fn refused_updates_change_nothing() {
    let scratch = Scratch::with_zone(5);
    let serve = updatable(
        &scratch,
        "max_update_records = 4\nmax_rrset_records = 3\n",
        &scratch.path("serve.log"),
    );
    let port = serve.addr.port();
    let before = state(&scratch, &serve);
    assert_eq!(
        before.1,
        Some(before.0),
        "served serial = store serial at start"
    );

    let cases: [(&str, &str, Vec<&str>, &str); 4] = [
        (
            "a failed prerequisite",
            OPS_SECRET,
            vec![
                "prereq nxdomain www.example.com.",
                "update add x1.example.com. 60 A 192.0.2.1",
            ],
            "YXDOMAIN",
        ),
        (
            "more records than max_update_records",
            OPS_SECRET,
            vec![
                "update add x1.example.com. 60 A 192.0.2.1",
                "update add x2.example.com. 60 A 192.0.2.2",
                "update add x3.example.com. 60 A 192.0.2.3",
                "update add x4.example.com. 60 A 192.0.2.4",
                "update add x5.example.com. 60 A 192.0.2.5",
            ],
            "REFUSED",
        ),
        (
            "an RRset past max_rrset_records",
            OPS_SECRET,
            vec![
                "update add x1.example.com. 60 A 192.0.2.1",
                "update add x1.example.com. 60 A 192.0.2.2",
                "update add x1.example.com. 60 A 192.0.2.3",
                "update add x1.example.com. 60 A 192.0.2.4",
            ],
            "REFUSED",
        ),
        (
            "a wrong secret",
            XFR_SECRET,
            vec!["update add x1.example.com. 60 A 192.0.2.1"],
            "BADSIG",
        ),
    ];
    for (what, secret, lines, expected) in cases {
        let out = send_update("knsupdate", serve.addr, OPS_KEY, secret, &lines);
        let said = text(&out.stdout) + &text(&out.stderr);
        assert!(
            said.contains(expected),
            "{what}: expected {expected} from the server, knsupdate said:\n{said}"
        );
        assert_eq!(state(&scratch, &serve), before, "{what}: something changed");
    }
    // Unsigned: refused (no address is allowed unsigned updates).
    let out = run_tool(
        "nsupdate",
        &[],
        &format!(
            "server 127.0.0.1 {port}\nzone {ORIGIN}\nupdate add x1.example.com. 60 A 192.0.2.1\nsend\n"
        ),
    );
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains("REFUSED"), "unsigned update: {said}");
    assert_eq!(
        state(&scratch, &serve),
        before,
        "unsigned update changed something"
    );
    // And one within the caps goes through.
    let out = send_update(
        "knsupdate",
        serve.addr,
        OPS_KEY,
        OPS_SECRET,
        &["update add x1.example.com. 60 A 192.0.2.1"],
    );
    assert!(
        out.status.success(),
        "a good update failed: {}",
        text(&out.stderr)
    );
    let after = state(&scratch, &serve);
    assert_ne!(after.0, before.0, "the good update raised the serial");
    assert_eq!(after.1, Some(after.0), "and it is served at once");
}

#[test]
fn kill_9_while_applying_a_large_update_leaves_old_or_new() {
    let scratch = Scratch::with_zone(BASE_HOSTS);
    let log = scratch.path("serve.log");

    // Calibrate: how long one large update takes to be answered.
    let serve = updatable(&scratch, "max_update_records = 5000\n", &log);
    let (config, port) = (serve.config.clone(), serve.addr.port());
    let count0 = record_count(&scratch);
    let started = Instant::now();
    let rcode = send_tcp(serve.addr, &large_update(0, BATCH), true);
    let took = started.elapsed();
    assert_eq!(
        rcode,
        Some(0),
        "the calibration update; log:\n{}",
        serve.log()
    );
    assert_eq!(record_count(&scratch), count0 + BATCH as u64);
    drop(serve);

    // Then kill -9 at moments spread over that time, a few rounds.
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let (mut old_seen, mut new_seen) = (0, 0);
    for round in 1..=5 {
        let mut serve = Serve::start(&config, port, &log);
        let (serial, count) = (scratch.serial(), record_count(&scratch));
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = took.mul_f64(((seed >> 33) % 1000) as f64 / 1000.0 * 1.2);
        send_tcp(serve.addr, &large_update(round, BATCH), false);
        std::thread::sleep(delay);
        serve.kill();
        let (after_serial, after_count) = (scratch.serial(), record_count(&scratch));
        let export = scratch.ok(&["zone", "export", ORIGIN]);
        let batch_lines = export.matches(&format!("b{round}-")).count();
        if after_serial == serial {
            assert_eq!(
                after_count, count,
                "round {round}: old serial, other records"
            );
            assert_eq!(
                batch_lines, 0,
                "round {round}: old serial but records of the update"
            );
            old_seen += 1;
        } else {
            assert_eq!(
                after_count,
                count + BATCH as u64,
                "round {round}: new serial, partial update"
            );
            assert_eq!(
                batch_lines, BATCH,
                "round {round}: new serial, not every record exported"
            );
            new_seen += 1;
        }
        // The restarted server serves what the store holds.
        let serve = Serve::start(&config, port, &log);
        assert_eq!(
            soa_serial(serve.addr, ORIGIN),
            Some(after_serial),
            "round {round}: served after restart"
        );
    }
    eprintln!("kill -9 rounds: {old_seen} left the old version, {new_seen} the new (calibration {took:?})");
}

#[test]
fn kill_at_each_fsync_of_the_commit_leaves_old_or_new_and_no_early_noerror() {
    let scratch = Scratch::with_zone(2_000);
    let log = scratch.path("serve.log");
    let first = updatable(&scratch, "max_update_records = 5000\n", &log);
    let (config, port) = (first.config.clone(), first.addr.port());
    drop(first);
    for (round, when) in [(11usize, 1u32), (12, 2), (13, 3)] {
        let mut serve = Serve::start(&config, port, &log);
        let (serial, count) = (scratch.serial(), record_count(&scratch));
        // SIGKILL the server at its `when`-th fsync/fdatasync from now on:
        // inside the UPDATE's commit.
        let mut strace = std::process::Command::new("strace")
            .args([
                "-f",
                "-p",
                &serve.child.id().to_string(),
                "-qq",
                "-e",
                "trace=fsync,fdatasync",
            ])
            .arg("-e")
            .arg(format!("inject=fsync,fdatasync:signal=SIGKILL:when={when}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("strace must be installed");
        std::thread::sleep(Duration::from_millis(500));
        let rcode = send_tcp(serve.addr, &large_update(round, BATCH), true);
        let _ = strace.kill();
        let _ = strace.wait();
        serve.kill();
        let (after_serial, after_count) = (scratch.serial(), record_count(&scratch));
        let batch_lines = scratch
            .ok(&["zone", "export", ORIGIN])
            .matches(&format!("b{round}-"))
            .count();
        let new = after_serial != serial;
        if new {
            assert_eq!(
                after_count,
                count + BATCH as u64,
                "fsync {when}: new serial, partial update"
            );
            assert_eq!(
                batch_lines, BATCH,
                "fsync {when}: new serial, records missing"
            );
        } else {
            assert_eq!(
                (after_count, batch_lines),
                (count, 0),
                "fsync {when}: old serial, records of the update"
            );
            assert_ne!(
                rcode,
                Some(0),
                "fsync {when}: NOERROR answered but the update is not in the store"
            );
        }
        eprintln!(
            "kill at fsync {when}: answer {rcode:?}, left the {} version",
            if new { "new" } else { "old" }
        );
    }
}

#[test]
fn a_record_edit_beside_a_running_serve_returns_once_served() {
    let scratch = Scratch::with_zone(5);
    let serve = Serve::start_free(&scratch.path("serve.log"), |port| {
        scratch.config(port, "", "")
    });
    let config = scratch.path("cutover.toml");
    // serve answers before its scheduler has taken the store's lock, which
    // is how the command knows a serve runs there: wait for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cutover_server::scheduler::presence::scheduler_runs(&scratch.path("cutover.db")) {
        assert!(
            Instant::now() < deadline,
            "serve's scheduler did not take the store's lock; log:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = scratch.ok(&[
        "--config",
        config.to_str().unwrap(),
        "record",
        "set",
        ORIGIN,
        "www",
        "A",
        "203.0.113.77",
    ]);
    let serial = scratch.serial();
    assert!(
        out.contains(&format!(
            "served by cutover serve on {} (serial {serial})",
            serve.addr
        )),
        "the command says serve serves the new serial: {out}"
    );
    // Served on return: the very next query sees it, with no wait.
    let answer = kdig(serve.addr, &["+short", "www.example.com.", "A"]);
    assert_eq!(answer.trim(), "203.0.113.77", "answered at once: {answer}");
}
