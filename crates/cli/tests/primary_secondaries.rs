//! Knot DNS and BIND 9 as secondaries of a running `cutover serve`: TSIG on
//! transfers and NOTIFYs, a series of signed updates by `knsupdate` and
//! `nsupdate`, both secondaries converging to the store's serial, `kdig
//! AXFR` from each equal to `cutover zone export`, and IXFR (not AXFR) used
//! after the first transfer.
//!
//! The peers must be installed (knot, bind9, knot-dnsutils, bind9-dnsutils):
//! a missing one fails the test.

mod primary_support;

use std::time::Duration;

use primary_support::*;

/// How long a secondary gets to catch up with a change.
const CONVERGE: Duration = Duration::from_secs(20);

#[test]
fn knot_and_bind_follow_signed_updates_by_notify_and_ixfr() {
    let scratch = Scratch::with_zone(50);
    let key = TsigKey {
        name: XFR_KEY.into(),
        algorithm: "hmac-sha256".into(),
        secret: XFR_SECRET.into(),
    };
    // serve NOTIFYs the secondaries and they transfer from it: the three
    // start together, all again on other ports if one port was taken.
    let (serve, knot, bind) = start_on_free_ports("serve, knotd and named", |ports: &mut Ports| {
        let port = ports.pick(&[LOOPBACK]);
        let knot_addr = ports.on(LOOPBACK);
        let bind_addr = ports.on(LOOPBACK);
        let config = scratch.config(
            port,
            "",
            &format!(
                "update_keys = [\"{OPS_KEY}\"]\ntransfer_keys = [\"{XFR_KEY}\"]\n\
                 notify = [\"{knot_addr}\", \"{bind_addr}\"]\nnotify_key = \"{XFR_KEY}\"\n"
            ),
        );
        let serve = Serve::try_start(&config, port, &scratch.path("serve.log"))?;
        let knot = Secondary::try_knot(knot_addr, ORIGIN, serve.addr, &key)?;
        let bind = Secondary::try_bind(bind_addr, ORIGIN, serve.addr, &key)?;
        Ok((serve, knot, bind))
    });
    knot.wait_serial(ORIGIN, 1, CONVERGE);
    bind.wait_serial(ORIGIN, 1, CONVERGE);

    // A series of signed updates, alternating the two clients; after each,
    // both secondaries catch up (NOTIFY, then IXFR).
    let steps: [(&str, &[&str]); 6] = [
        (
            "knsupdate",
            &["update add k1.example.com. 300 A 192.0.2.101"],
        ),
        (
            "nsupdate",
            &["update add n1.example.com. 300 TXT \"from nsupdate\""],
        ),
        (
            "knsupdate",
            &[
                "update delete www.example.com. A",
                "update add www.example.com. 60 A 203.0.113.80",
            ],
        ),
        ("nsupdate", &["update delete h3.example.com. A"]),
        (
            "knsupdate",
            &["update add k2.example.com. 300 AAAA 2001:db8::2"],
        ),
        (
            "nsupdate",
            &["update add n2.example.com. 300 MX 10 mail.example.com."],
        ),
    ];
    let mut serial = scratch.serial();
    for (step, (client, lines)) in steps.iter().enumerate() {
        let out = send_update(client, serve.addr, OPS_KEY, OPS_SECRET, lines);
        assert!(
            out.status.success(),
            "step {step}: {client} failed ({}): {}{}\nserver log:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            serve.log()
        );
        let now = scratch.serial();
        assert!(
            (now.wrapping_sub(serial) as i32) > 0,
            "step {step}: serial did not rise: {serial} then {now}"
        );
        serial = now;
        assert_eq!(
            soa_serial(serve.addr, ORIGIN),
            Some(serial),
            "step {step}: the server must publish before answering NOERROR"
        );
        knot.wait_serial(ORIGIN, serial, CONVERGE);
        bind.wait_serial(ORIGIN, serial, CONVERGE);
    }

    // A CLI edit goes through the same path; the reload watcher publishes
    // it and NOTIFYs the secondaries.
    scratch.ok(&["record", "set", ORIGIN, "cli", "TXT", "\"from the CLI\""]);
    serial = scratch.serial();
    knot.wait_serial(ORIGIN, serial, CONVERGE);
    bind.wait_serial(ORIGIN, serial, CONVERGE);

    // Both converge to the same serial, and what each transfers equals the
    // store's export (and cutover's own AXFR).
    assert_eq!(knot.serial(ORIGIN), Some(serial), "knotd's serial");
    assert_eq!(bind.serial(ORIGIN), Some(serial), "named's serial");
    let exported = parse_zone(&scratch.ok(&["zone", "export", ORIGIN]));
    let ours = axfr_zone(serve.addr, true);
    assert_eq!(ours, exported, "cutover's AXFR vs its export");
    assert_eq!(
        axfr_zone(knot.addr, false),
        exported,
        "knotd's AXFR vs cutover's export"
    );
    assert_eq!(
        axfr_zone(bind.addr, false),
        exported,
        "named's AXFR vs cutover's export"
    );
    assert!(
        exported
            .get(
                &"k2.example.com.".parse().unwrap(),
                cutover_zone::RecordType::AAAA
            )
            .is_some(),
        "the last knsupdate's record is in the export"
    );

    // IXFR was used: after the first full transfer per secondary, every
    // transfer was incremental (cutover's log counts both kinds).
    let log = serve.log();
    let incremental = log.matches("IXFR out: incremental").count();
    let full = log.matches("AXFR out: full").count() + log.matches("IXFR out: full").count();
    assert!(
        incremental >= 2 * steps.len(),
        "expected at least {} incremental IXFRs (one per update per secondary), saw {incremental}; log:\n{log}",
        2 * steps.len()
    );
    assert!(
        full <= 3,
        "expected only the two initial full transfers and our own AXFR, saw {full}; log:\n{log}"
    );
    assert!(
        knot.log().contains("IXFR"),
        "knotd never logged an IXFR:\n{}",
        knot.log()
    );
    assert!(
        log.contains("NOTIFY acknowledged"),
        "no NOTIFY was acknowledged; log:\n{log}"
    );
}

/// The records kdig printed, without its comment and blank lines.
fn answer_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
        .collect()
}

#[test]
fn transfers_follow_the_acl_and_ixfr_over_udp_is_the_soa() {
    let scratch = Scratch::with_zone(10);
    let serve = Serve::start_free(&scratch.path("serve.log"), |port| {
        scratch.config(port, "", &format!("transfer_keys = [\"{XFR_KEY}\"]\n"))
    });

    // Unsigned AXFR: not in the ACL.
    let out = kdig(serve.addr, &[ORIGIN, "AXFR"]);
    assert!(
        out.contains("REFUSED"),
        "unsigned AXFR must be REFUSED, saw:\n{out}"
    );
    // Signed by a key with no transfer grant: REFUSED too (signed).
    let ops = format!("hmac-sha256:{OPS_KEY}:{OPS_SECRET}");
    let out = kdig(serve.addr, &["-y", &ops, ORIGIN, "AXFR"]);
    assert!(
        out.contains("REFUSED"),
        "AXFR with the ops key must be REFUSED, saw:\n{out}"
    );
    // Signed by the transfer key: the zone.
    let zone = axfr_zone(serve.addr, true);
    assert_eq!(zone.record_count(), 14, "SOA, NS, ns1, www, 10 hosts");

    // A change, then IXFR from serial 1 over TCP: incremental.
    scratch.ok(&["record", "add", ORIGIN, "new", "A", "192.0.2.77"]);
    let serial = scratch.serial();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while soa_serial(serve.addr, ORIGIN) != Some(serial) {
        assert!(
            std::time::Instant::now() < deadline,
            "the CLI change was not served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let xfr = format!("hmac-sha256:{XFR_KEY}:{XFR_SECRET}");
    let out = kdig(
        serve.addr,
        &["-y", &xfr, ORIGIN, "IXFR=1", "+noall", "+answer"],
    );
    let records = answer_lines(&out);
    assert_eq!(
        records.len(),
        5,
        "IXFR 1→{serial}: SOA, old SOA, new SOA, the added A, SOA; saw:\n{out}"
    );
    assert!(
        out.contains("192.0.2.77"),
        "the added record in the IXFR:\n{out}"
    );
    // Over UDP: our SOA only.
    let out = kdig(
        serve.addr,
        &["-y", &xfr, "+notcp", ORIGIN, "IXFR=1", "+noall", "+answer"],
    );
    let records = answer_lines(&out);
    assert_eq!(
        records.len(),
        1,
        "IXFR over UDP answers the SOA alone; saw:\n{out}"
    );
    assert!(
        records[0].contains("SOA") && records[0].contains(&serial.to_string()),
        "{out}"
    );
    // A serial the journal does not hold: the whole zone, in AXFR form.
    let out = kdig(
        serve.addr,
        &["-y", &xfr, ORIGIN, "IXFR=12345", "+noall", "+answer"],
    );
    let records = answer_lines(&out);
    assert_eq!(
        records.len(),
        15 + 1,
        "IXFR from an unknown serial falls back to the whole zone; saw:\n{out}"
    );
    // NOTIFY in: acknowledged (NOERROR, AA) for our zone, NOTAUTH for another.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut buf = [0u8; 512];
    for (zone, rcode) in [
        (&b"\x07example\x03com\x00"[..], 0u8),
        (&b"\x05other\x00"[..], 9),
    ] {
        let notify = cutover_nameserver::primary::notify::message(zone, 0x4e4e, None);
        socket.send_to(&notify, serve.addr).unwrap();
        let len = socket.recv(&mut buf).expect("NOTIFY answered");
        assert_eq!(buf[3] & 0x0f, rcode, "NOTIFY for {zone:?}: RCODE");
        assert_eq!((buf[2] >> 3) & 0x0f, 4, "the answer is a NOTIFY response");
        assert!(len >= 12 && buf[2] & 0x80 != 0, "QR set");
    }
    // AXFR over UDP is not served.
    let out = kdig(serve.addr, &["-y", &xfr, "+notcp", ORIGIN, "AXFR"]);
    assert!(
        out.contains("NOTIMP"),
        "AXFR over UDP must be refused (NOTIMP), saw:\n{out}"
    );
}

#[test]
fn notify_is_signed_and_retried_with_backoff_until_acknowledged() {
    use cutover_nameserver::tsig::{verify_request, Key, KeyRing, Verified};
    use std::net::UdpSocket;
    use std::time::Instant;

    let scratch = Scratch::with_zone(0);
    let secondary = UdpSocket::bind("127.0.0.1:0").unwrap();
    secondary
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let serve = Serve::start_free(&scratch.path("serve.log"), |port| {
        scratch.config(
            port,
            "",
            &format!(
                "notify = [\"{}\"]\nnotify_key = \"{XFR_KEY}\"\n",
                secondary.local_addr().unwrap()
            ),
        )
    });
    let ring =
        KeyRing::from_keys([Key::from_text(XFR_KEY, "hmac-sha256", XFR_SECRET).unwrap()]).unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    // The start-up load notifies once; drop two tries, acknowledge the third.
    let mut buf = vec![0u8; 4096];
    let mut arrivals = Vec::new();
    let mut last = Vec::new();
    let mut from = None;
    for _ in 0..3 {
        let (len, sender) = secondary.recv_from(&mut buf).unwrap_or_else(|e| {
            panic!(
                "NOTIFY try {} never came: {e}; log:\n{}",
                arrivals.len() + 1,
                serve.log()
            )
        });
        arrivals.push(Instant::now());
        last = buf[..len].to_vec();
        from = Some(sender);
        assert_eq!((last[2] >> 3) & 0x0f, 4, "opcode NOTIFY");
        assert!(
            matches!(verify_request(&last, &ring, now()), Ok(Verified::Signed(_))),
            "every NOTIFY try is signed with the notify key"
        );
    }
    // The first try may have waited in the socket while the server started,
    // so only the gap between the second and third is measured: 2 s.
    let gap = arrivals[2] - arrivals[1];
    assert!(
        gap >= Duration::from_millis(1900),
        "the third try must come 2 s after the second, saw {gap:?}"
    );
    // Acknowledge (a signed answer, as a secondary would send).
    let mut ack = last[..].to_vec();
    let Ok(Verified::Signed(mut signer)) = verify_request(&last, &ring, now()) else {
        panic!("the NOTIFY verifies")
    };
    // Strip the TSIG: the request up to its additional section, ARCOUNT 0.
    let unsigned_len = {
        let mut at = 12;
        while ack[at] != 0 {
            at += 1 + ack[at] as usize;
        }
        at + 5
    };
    ack.truncate(unsigned_len);
    ack[10] = 0;
    ack[11] = 0;
    ack[2] |= 0x80;
    signer.sign(&mut ack, now()).unwrap();
    secondary.send_to(&ack, from.unwrap()).unwrap();
    // No more tries after the acknowledgement (the next would be 4 s later).
    secondary
        .set_read_timeout(Some(Duration::from_secs(6)))
        .unwrap();
    let more = secondary.recv_from(&mut buf);
    assert!(more.is_err(), "a NOTIFY was sent after the acknowledgement");
    assert!(
        serve.log().contains("NOTIFY acknowledged"),
        "log:\n{}",
        serve.log()
    );
}
