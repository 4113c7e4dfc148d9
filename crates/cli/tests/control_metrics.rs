//! `/metrics` after known traffic: queries over UDP and TCP with known
//! RCODEs, one UPDATE and one AXFR, then a scrape whose counts must match
//! exactly (the serve process is fresh, and nothing else queries it).

mod control;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use control::Site;

/// A DNS message: one question, this opcode, no flags.
fn message(id: u16, opcode: u8, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = vec![
        (id >> 8) as u8,
        id as u8,
        opcode << 3,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out
}

/// Sends over UDP; returns the RCODE of the answer.
fn udp(server: SocketAddr, query: &[u8]) -> u8 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    socket.send_to(query, server).unwrap();
    let mut buffer = [0u8; 4096];
    let n = socket.recv(&mut buffer).expect("a UDP answer");
    assert!(
        n >= 12 && buffer[..2] == query[..2],
        "expected an answer to our id"
    );
    buffer[3] & 0x0f
}

/// How long a test that holds the store's writer waits for an answer.
const LONG: Duration = Duration::from_secs(60);

/// Sends over TCP; returns the RCODE of the first answer.
fn tcp(server: SocketAddr, query: &[u8]) -> u8 {
    tcp_within(Duration::from_secs(3), server, query)
}

/// Sends over TCP and waits up to `limit` for the answer (to our ID); its
/// RCODE.
fn tcp_within(limit: Duration, server: SocketAddr, query: &[u8]) -> u8 {
    let mut stream = TcpStream::connect(server).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).unwrap();
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).expect("a TCP answer");
    let mut answer = vec![0u8; u16::from_be_bytes(length) as usize];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(answer[..2], query[..2], "expected the answer to our id");
    answer[3] & 0x0f
}

/// The value of the series `line` (name and labels) in the scrape.
fn value(scrape: &str, series: &str) -> u64 {
    scrape
        .lines()
        .find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The sum of every series of a metric.
fn sum(scrape: &str, metric: &str) -> u64 {
    scrape
        .lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_scrape_counts_the_traffic_it_saw() {
    let site = Site::start("");
    let dns = site.dns;
    let mut id = 1;
    let mut next = || {
        id += 1;
        id
    };
    for _ in 0..3 {
        assert_eq!(
            udp(dns, &message(next(), 0, "www.example.test.", 1)),
            0,
            "expected NOERROR over UDP"
        );
    }
    for _ in 0..2 {
        assert_eq!(
            udp(dns, &message(next(), 0, "nope.example.test.", 1)),
            3,
            "expected NXDOMAIN over UDP"
        );
    }
    assert_eq!(
        udp(dns, &message(next(), 0, "www.elsewhere.test.", 1)),
        5,
        "expected REFUSED over UDP"
    );
    for _ in 0..2 {
        assert_eq!(
            tcp(dns, &message(next(), 0, "www.example.test.", 1)),
            0,
            "expected NOERROR over TCP"
        );
    }
    assert_eq!(
        tcp(dns, &message(next(), 0, "nope.example.test.", 1)),
        3,
        "expected NXDOMAIN over TCP"
    );
    let update = udp(dns, &message(next(), 5, "example.test.", 6));
    assert_ne!(update, 0, "expected an unsigned UPDATE refused");
    let transfer = tcp(dns, &message(next(), 0, "example.test.", 252));
    assert_ne!(transfer, 0, "expected an unsigned AXFR refused");

    let (status, _, scrape) = site.text("/metrics");
    assert_eq!(status, 200, "expected the scrape");
    for (series, expected) in [
        (
            "cutover_dns_answers_total{transport=\"udp\",rcode=\"NOERROR\"}",
            3,
        ),
        (
            "cutover_dns_answers_total{transport=\"udp\",rcode=\"NXDOMAIN\"}",
            2,
        ),
        (
            "cutover_dns_answers_total{transport=\"udp\",rcode=\"REFUSED\"}",
            1,
        ),
        (
            "cutover_dns_answers_total{transport=\"tcp\",rcode=\"NOERROR\"}",
            2,
        ),
        (
            "cutover_dns_answers_total{transport=\"tcp\",rcode=\"NXDOMAIN\"}",
            1,
        ),
        ("cutover_dns_rrl_total{action=\"drop\"}", 0),
    ] {
        assert_eq!(
            value(&scrape, series),
            expected,
            "expected {series} {expected}; scrape:\n{scrape}"
        );
    }
    assert_eq!(
        sum(&scrape, "cutover_dns_answers_total"),
        9,
        "expected 9 answers in all; scrape:\n{scrape}"
    );
    assert_eq!(
        sum(&scrape, "cutover_dns_updates_total"),
        1,
        "expected one UPDATE; scrape:\n{scrape}"
    );
    assert_eq!(
        sum(&scrape, "cutover_dns_transfers_total"),
        1,
        "expected one transfer; scrape:\n{scrape}"
    );
    let rcode = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH",
    ][usize::from(update).min(9)];
    assert_eq!(
        value(
            &scrape,
            &format!("cutover_dns_updates_total{{rcode=\"{rcode}\"}}")
        ),
        1,
        "expected the UPDATE under its RCODE {rcode}; scrape:\n{scrape}"
    );

    // A second scrape after more traffic moves by exactly that much.
    assert_eq!(
        udp(dns, &message(next(), 0, "www.example.test.", 1)),
        0,
        "expected NOERROR"
    );
    let (_, _, again) = site.text("/metrics");
    assert_eq!(
        value(
            &again,
            "cutover_dns_answers_total{transport=\"udp\",rcode=\"NOERROR\"}"
        ),
        4,
        "expected one more UDP NOERROR; scrape:\n{again}"
    );
}

#[test]
fn response_rate_limiting_drops_are_counted() {
    // RRL on: one identical answer per second to a client prefix, no slips.
    let site =
        Site::start_with_dns("[dns.rrl]\nresponses_per_second = 1\nslip = 0\nwindow = \"15s\"\n");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = 20u16;
    for id in 0..sent {
        socket
            .send_to(&message(id + 100, 0, "www.example.test.", 1), site.dns)
            .unwrap();
    }
    socket
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    let mut answered = 0u64;
    while socket.recv(&mut buffer).is_ok() {
        answered += 1;
    }
    assert!(
        answered >= 1 && answered < u64::from(sent),
        "expected some answers limited, seen {answered} of {sent} answered"
    );
    let (_, _, scrape) = site.text("/metrics");
    assert_eq!(
        value(&scrape, "cutover_dns_rrl_total{action=\"drop\"}"),
        u64::from(sent) - answered,
        "expected every unanswered query counted as an RRL drop; scrape:\n{scrape}"
    );
    assert_eq!(
        value(&scrape, "cutover_dns_answers_total{transport=\"udp\",rcode=\"NOERROR\"}"),
        u64::from(sent),
        "expected every query answered by the answer path (the limit applies after); scrape:\n{scrape}"
    );
}

/// Regression (issue "every word true", 5, and bounded labels): a
/// migration's steps are counted by step and outcome over every migration
/// (no migration id, no zone as a label), with outcomes that tell done and
/// skipped apart: a flush with no cache listed is skipped, not ok.
#[test]
fn a_migration_is_counted_by_step_and_outcome_with_bounded_labels() {
    let site = Site::start("");
    let (_, _, empty) = site.text("/metrics");
    for line in [
        "cutover_migrations{state=\"planned\"} 0",
        "cutover_migrations{state=\"done\"} 0",
        "cutover_migrations_overdue 0",
    ] {
        assert!(
            empty.lines().any(|l| l == line),
            "expected {line:?} before any migration; scrape:\n{empty}"
        );
    }
    let text = format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n[[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 1\n[schedule]\nmargin = 1\nobserve = \"1s\"\n[verify]\nauthorities = [\"{}\"]\nresolvers = []\ntries = 3\ninterval = 1\n",
        site.dns
    );
    let body = serde_json::json!({"file_name": "move-web.toml", "text": text}).to_string();
    let (status, created) = site.call("POST", "/api/v1/migrations", Some(&site.admin), Some(&body));
    assert_eq!(
        status, 200,
        "expected the migration started, seen {created}"
    );
    let id = created["id"].as_i64().expect("an id");
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let (_, detail) = site.call(
            "GET",
            &format!("/api/v1/migrations/{id}"),
            Some(&site.reader),
            None,
        );
        let state = detail["summary"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if ["done", "failed", "rolled_back", "aborted"].contains(&state.as_str()) {
            assert_eq!(state, "done", "expected the migration done, seen {detail}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected the migration done within 40 s, seen {detail}; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, _, scrape) = site.text("/metrics");
    for (step, outcome) in [
        ("lower_ttls", "done"),
        ("wait_for_caches", "done"),
        ("verify_new", "skipped"),
        ("note_serials", "done"),
        ("switch", "done"),
        ("flush_caches", "skipped"),
        ("observe", "done"),
        ("restore_ttls", "done"),
    ] {
        let series =
            format!("cutover_migration_steps_total{{step=\"{step}\",outcome=\"{outcome}\"}}");
        assert_eq!(
            value(&scrape, &series),
            1,
            "expected {series} 1; scrape:\n{scrape}"
        );
    }
    assert_eq!(
        value(
            &scrape,
            "cutover_migration_steps_total{step=\"verify_switch\",outcome=\"done\"}"
        ),
        1,
        "expected one verification that passed; scrape:\n{scrape}"
    );
    assert_eq!(
        value(&scrape, "cutover_migrations{state=\"done\"}"),
        1,
        "expected the migration counted as done; scrape:\n{scrape}"
    );
    let migration_lines: Vec<&str> = scrape
        .lines()
        .filter(|l| l.starts_with("cutover_migration"))
        .collect();
    assert!(
        migration_lines
            .iter()
            .all(|l| !l.contains("id=") && !l.contains("zone=")),
        "expected no migration id or zone as a label, seen {migration_lines:#?}"
    );
    assert!(
        !migration_lines
            .iter()
            .any(|l| l.contains("outcome=\"failed\"")),
        "expected nothing counted as failed, seen {migration_lines:#?}"
    );
}

/// An unsigned UPDATE adding `{label}.example.test. 300 A 10.9.0.{last}`.
fn adding(id: u16, label: &str, last: u8) -> Vec<u8> {
    let mut out = message(id, 5, "example.test.", 6);
    out[9] = 1; // one RR in the update section
    out.push(label.len() as u8);
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 10, 9, 0, last]);
    out
}

/// As [`adding`], with the prerequisite "www.example.test. is not in use"
/// (RFC 2136 §2.4.5), which fails: www exists.
fn adding_unless_www(id: u16, label: &str, last: u8) -> Vec<u8> {
    let plain = adding(id, label, last);
    let question_end = 12 + "example.test.".len() + 1 + 4;
    let mut out = plain[..question_end].to_vec();
    out[7] = 1; // one RR in the prerequisite section
    out.extend_from_slice(b"\x03www");
    out.extend_from_slice(&[0xc0, 12, 0, 255, 0, 254, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&plain[question_end..]);
    out
}

/// The group commit seen from outside: while another process holds the
/// store's write lock, UPDATEs sent at once queue (the gauge counts them);
/// once the lock is let go they are committed in ONE write transaction,
/// each answered on its own (NOERROR, or YXDOMAIN for the one whose
/// prerequisite fails, which alone changes nothing), each change in the zone.
#[test]
fn updates_queued_behind_a_held_write_lock_are_committed_in_one_batch() {
    const UPDATES: usize = 16;
    const FAILING: usize = 7;
    let site = Site::start(
        "[[zone]]\nname = \"example.test.\"\nallow_unsigned_update_from = [\"127.0.0.1/32\"]\n",
    );
    let dns = site.dns;
    let scrape = || {
        let (status, _, text) = site.text("/metrics");
        assert_eq!(status, 200, "expected the scrape");
        text
    };
    let before = scrape();
    let batches = value(&before, "cutover_update_batches_total");
    let committed = value(&before, "cutover_updates_committed_total");

    // Another writer holds the store: serve's leader waits in BEGIN
    // IMMEDIATE (its busy timeout is 10 s) before it takes any member.
    let holder = rusqlite::Connection::open(&site.store).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let senders: Vec<_> = (0..UPDATES)
        .map(|i| {
            std::thread::spawn(move || {
                let build = if i == FAILING {
                    adding_unless_www
                } else {
                    adding
                };
                tcp_within(LONG, dns, &build(100 + i as u16, &format!("g{i}"), i as u8))
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let mut waiting = 0;
    while std::time::Instant::now() < deadline {
        waiting = value(&scrape(), "cutover_updates_waiting");
        if waiting == UPDATES as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        waiting,
        UPDATES as u64,
        "expected all {UPDATES} UPDATEs waiting for the held writer; log:\n{}",
        site.log()
    );
    let rcodes: Vec<u8> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    let expected: Vec<u8> = (0..UPDATES)
        .map(|i| if i == FAILING { 6 } else { 0 })
        .collect();
    assert_eq!(
        rcodes,
        expected,
        "expected every UPDATE NOERROR but #{FAILING} YXDOMAIN; log:\n{}",
        site.log()
    );
    let after = scrape();
    assert_eq!(
        (
            value(&after, "cutover_update_batches_total") - batches,
            value(&after, "cutover_updates_committed_total") - committed,
            value(&after, "cutover_updates_waiting"),
        ),
        (1, UPDATES as u64 - 1, 0),
        "expected (batches, UPDATEs committed, waiting) after; scrape:\n{after}"
    );
    for i in 0..UPDATES {
        let name = format!("g{i}.example.test.");
        let (rcode, what) = if i == FAILING {
            (3, "NXDOMAIN: its UPDATE failed")
        } else {
            (0, "served after its NOERROR")
        };
        assert_eq!(
            tcp_within(LONG, dns, &message(900 + i as u16, 0, &name, 1)),
            rcode,
            "expected {name} {what}"
        );
    }
}
