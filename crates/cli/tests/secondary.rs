//! `cutover serve` as a secondary (`[[zone]] primary`, `primary_key`) of
//! real primaries on loopback: Knot DNS and BIND 9 (AXFR at first, IXFR on
//! their NOTIFY after a change), another `cutover serve` with Knot as the
//! secondary of the secondary (a chain; the middle one restarted while the
//! primary changes catches up by IXFR), a migration on a primary verified
//! on it and two cutover secondaries (every serial, every answer), a restart that serves the stored
//! zone with the primary gone, SERVFAIL after the SOA expire counted from
//! the last successful check (stored: a restart does not extend it) and
//! back once the primary is, a transfer that fails its checks and one cut mid-way
//! (a misbehaving primary of our own) each keeping the old zone, and the
//! fall-back to a second primary. The zone is read-only on the secondary
//! (UPDATE, `cutover record` and the control API refused).
//!
//! The peers must be installed (knot, bind9, knot-dnsutils): a missing one
//! fails the test.

mod primary_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cutover_peers::bind::Bind;
use cutover_peers::knot_primary::KnotPrimary;
use primary_support::*;

/// How long a change may take to reach a secondary (a deadline for a
/// loaded machine, not a measurement).
const CONVERGE: Duration = Duration::from_secs(30);

/// The zone at `serial`, with SOA timers `refresh retry expire` (seconds),
/// `hosts` extra A records and `extra` lines.
fn zone_at(serial: u32, timers: &str, hosts: usize, extra: &str) -> String {
    let mut text = format!(
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster {serial} {timers} 300\n\
         @ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\n{extra}"
    );
    for i in 0..hosts {
        text.push_str(&format!("h{i} A 198.51.100.{}\n", i % 250 + 1));
    }
    text
}

/// An empty scratch directory (no zone imported: the secondary gets it
/// from its primary).
fn empty_scratch() -> Scratch {
    Scratch {
        dir: tempfile::tempdir().unwrap(),
    }
}

/// The `[[zone]]` lines of a secondary of `primary`, transfers signed with
/// the transfer key, transferable unsigned from loopback.
fn secondary_of(primary: SocketAddr) -> String {
    format!(
        "primary = \"{primary}\"\nprimary_key = \"{XFR_KEY}\"\ntransfer_from = [\"127.0.0.0/8\"]\n"
    )
}

/// Waits until `server` answers the zone's SOA with `serial`; panics with
/// what it served and the log otherwise.
fn wait_serial(server: SocketAddr, serial: u32, log: impl Fn() -> String) {
    let deadline = Instant::now() + CONVERGE;
    let mut seen = None;
    while Instant::now() < deadline {
        seen = soa_serial(server, ORIGIN);
        if seen == Some(serial) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "expected {server} to serve {ORIGIN} at serial {serial} within {CONVERGE:?}, it serves {seen:?}; log:\n{}",
        log()
    );
}

/// The status kdig reports for the zone's SOA at `server` ("NOERROR",
/// "SERVFAIL"…), or the whole output when it has none.
fn soa_status(server: SocketAddr) -> String {
    let out = kdig(server, &[ORIGIN, "SOA"]);
    out.split("status: ")
        .nth(1)
        .and_then(|rest| rest.split([',', ';']).next())
        .map_or(out.clone(), str::to_string)
}

/// Waits until `text()` contains `wanted`; panics with it otherwise.
fn wait_for(what: &str, wanted: &str, text: impl Fn() -> String) {
    let deadline = Instant::now() + CONVERGE;
    while Instant::now() < deadline {
        if text().contains(wanted) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "expected {wanted:?} in {what} within {CONVERGE:?}; it is:\n{}",
        text()
    );
}

/// A tokio runtime for the peers' async starts.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Starts knotd as the primary of the zone `text`, NOTIFYing a `cutover
/// serve` it then starts as its secondary; both again on other ports if
/// one was taken.
fn knot_and_secondary(scratch: &Scratch, text: &str) -> (KnotPrimary, Serve) {
    let runtime = runtime();
    start_on_free_ports("knotd and serve", |ports: &mut Ports| {
        let port = ports.pick(&[LOOPBACK]);
        let knot_addr = ports.on(LOOPBACK);
        let knot = runtime.block_on(KnotPrimary::try_start_notifying(
            knot_addr,
            &[(ORIGIN, text)],
            (XFR_KEY, XFR_SECRET),
            Some(SocketAddr::from((LOOPBACK, port))),
        ))?;
        let config = scratch.config(port, "", &secondary_of(knot_addr));
        let serve = Serve::try_start(&config, port, &scratch.path("serve.log"))?;
        Ok((knot, serve))
    })
}

#[test]
fn knot_as_primary_axfr_first_then_ixfr_on_its_notify() {
    let scratch = empty_scratch();
    let (knot, serve) = knot_and_secondary(&scratch, &zone_at(1, "3600 600 86400", 20, ""));
    assert_eq!(soa_serial(serve.addr, ORIGIN), Some(1), "serial 1 served");
    assert!(
        serve.log().contains("secondary: AXFR in from"),
        "the first transfer is an AXFR; log:\n{}",
        serve.log()
    );

    // A change on Knot: its NOTIFY (the SOA refresh is an hour) makes
    // cutover fetch it by IXFR.
    knot.knsupdate("zone example.com.\nupdate add new.example.com. 300 A 192.0.2.99");
    let serial = soa_serial(knot.addr, ORIGIN).expect("knotd answers its SOA");
    assert!(serial > 1, "knotd raised its serial, it is {serial}");
    wait_serial(serve.addr, serial, || serve.log());
    let log = serve.log();
    assert!(
        log.contains("NOTIFY from the primary: checking now"),
        "the NOTIFY was taken; log:\n{log}"
    );
    assert!(
        log.contains(&format!(
            "secondary: IXFR (incremental, 1 steps) in from {}: serial 1 → {serial}",
            knot.addr
        )),
        "the change came by IXFR; log:\n{log}"
    );
    let answer = kdig(serve.addr, &["new.example.com.", "A", "+short"]);
    assert_eq!(answer.trim(), "192.0.2.99", "the new record is answered");
    assert_eq!(
        axfr_zone(serve.addr, false),
        axfr_zone(knot.addr, true),
        "cutover's zone equals knotd's"
    );
    let versions = scratch.ok(&["zone", "show", ORIGIN]);
    assert!(
        versions.contains("IXFR (incremental, 1 steps) from") && versions.contains("AXFR from"),
        "the store's journal says how each version came; it is:\n{versions}"
    );

    // Read-only here: UPDATE is REFUSED, `cutover record` refuses.
    let out = send_update(
        "knsupdate",
        serve.addr,
        XFR_KEY,
        XFR_SECRET,
        &["update add mine.example.com. 300 A 192.0.2.5"],
    );
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("REFUSED"),
        "UPDATE to a secondary zone: expected REFUSED, saw:\n{said}"
    );
    let out = scratch.run(&["record", "set", ORIGIN, "mine", "A", "192.0.2.5"]);
    let said = text(&out.stderr);
    assert!(
        !out.status.success() && said.contains("is a secondary zone here"),
        "`cutover record set` on a secondary zone: expected a refusal, saw {}:\n{said}",
        out.status
    );
    assert_eq!(
        soa_serial(serve.addr, ORIGIN),
        Some(serial),
        "nothing changed"
    );
}

#[test]
fn bind_as_primary_axfr_then_a_change_on_its_notify() {
    let scratch = empty_scratch();
    let runtime = runtime();
    let text = zone_at(1, "3600 600 86400", 10, "");
    // The first primary listed refuses every connection: the second is used.
    let (_refusing, dead) = cutover_peers::refusing_tcp(LOOPBACK);
    let (bind, serve) = start_on_free_ports("named and serve", |ports: &mut Ports| {
        let port = ports.pick(&[LOOPBACK]);
        let bind_addr = ports.on(LOOPBACK);
        let bind = runtime.block_on(Bind::try_start_notifying(
            bind_addr,
            &[(ORIGIN, text.as_str())],
            (XFR_KEY, XFR_SECRET),
            Some(SocketAddr::from((LOOPBACK, port))),
        ))?;
        let config = scratch.config(
            port,
            "",
            &format!(
                "primary = [\"{dead}\", \"{bind_addr}\"]\nprimary_key = \"{XFR_KEY}\"\n\
                 transfer_from = [\"127.0.0.0/8\"]\n"
            ),
        );
        let serve = Serve::try_start(&config, port, &scratch.path("serve.log"))?;
        Ok((bind, serve))
    });
    assert_eq!(soa_serial(serve.addr, ORIGIN), Some(1));
    bind.nsupdate("zone example.com.\nupdate add bind.example.com. 300 TXT \"from named\"");
    let serial = soa_serial(bind.addr, ORIGIN).expect("named answers its SOA");
    assert!(serial > 1, "named raised its serial, it is {serial}");
    wait_serial(serve.addr, serial, || serve.log());
    assert_eq!(
        axfr_zone(serve.addr, false),
        axfr_zone(bind.addr, true),
        "cutover's zone equals named's"
    );
    let log = serve.log();
    assert!(
        log.contains(&format!(
            "secondary: IXFR (incremental, 1 steps) in from {}",
            bind.addr
        )),
        "the change came by IXFR from named, the second primary; log:\n{log}"
    );
}

#[test]
fn cutover_to_cutover_to_knot_a_record_set_on_the_primary_reaches_knot() {
    let primary_scratch = Scratch::with_zone(30);
    let secondary_scratch = empty_scratch();
    let key = TsigKey {
        name: XFR_KEY.into(),
        algorithm: "hmac-sha256".into(),
        secret: XFR_SECRET.into(),
    };
    let (primary, secondary, knot) = start_on_free_ports(
        "serve, serve and knotd",
        |ports: &mut Ports| {
            let primary_port = ports.pick(&[LOOPBACK]);
            let secondary_port = ports.pick(&[LOOPBACK]);
            let knot_addr = ports.on(LOOPBACK);
            let primary_addr = SocketAddr::from((LOOPBACK, primary_port));
            let secondary_addr = SocketAddr::from((LOOPBACK, secondary_port));
            let config = primary_scratch.config(
                primary_port,
                "",
                &format!(
                    "transfer_keys = [\"{XFR_KEY}\"]\nnotify = [\"{secondary_addr}\"]\n\
                     notify_key = \"{XFR_KEY}\"\n"
                ),
            );
            let primary =
                Serve::try_start(&config, primary_port, &primary_scratch.path("serve.log"))?;
            let config = secondary_scratch.config(
                secondary_port,
                "",
                &format!(
                    "primary = \"{primary_addr}\"\nprimary_key = \"{XFR_KEY}\"\n\
                     transfer_keys = [\"{XFR_KEY}\"]\nnotify = [\"{knot_addr}\"]\nnotify_key = \"{XFR_KEY}\"\n"
                ),
            );
            let secondary = Serve::try_start(
                &config,
                secondary_port,
                &secondary_scratch.path("serve.log"),
            )?;
            let knot = Secondary::try_knot(knot_addr, ORIGIN, secondary_addr, &key)?;
            Ok((primary, secondary, knot))
        },
    );
    knot.wait_serial(ORIGIN, 1, CONVERGE);

    for (step, name) in ["a1", "a2", "a3"].iter().enumerate() {
        primary_scratch.ok(&[
            "record",
            "set",
            ORIGIN,
            name,
            "A",
            &format!("203.0.113.{}", step + 1),
        ]);
        let serial = primary_scratch.serial();
        wait_serial(secondary.addr, serial, || secondary.log());
        knot.wait_serial(ORIGIN, serial, CONVERGE);
    }
    let exported = parse_zone(&primary_scratch.ok(&["zone", "export", ORIGIN]));
    assert_eq!(
        axfr_zone(secondary.addr, true),
        exported,
        "the secondary's zone vs the primary's export"
    );
    assert_eq!(
        axfr_zone(knot.addr, false),
        exported,
        "knotd's zone vs the primary's export"
    );
    let log = secondary.log();
    assert_eq!(
        log.matches("secondary: IXFR (incremental, 1 steps) in from")
            .count(),
        3,
        "each change came to the secondary by IXFR; log:\n{log}"
    );
    assert!(
        primary.log().contains("IXFR out: incremental"),
        "the primary served incremental IXFRs; log:\n{}",
        primary.log()
    );

    // The secondary down while the primary changes twice: restarted, it
    // catches up by one IXFR of both steps, and Knot behind it follows.
    let mut secondary = secondary;
    secondary.kill();
    for (step, name) in ["b1", "b2"].iter().enumerate() {
        primary_scratch.ok(&[
            "record",
            "set",
            ORIGIN,
            name,
            "A",
            &format!("203.0.113.{}", step + 10),
        ]);
    }
    let serial = primary_scratch.serial();
    let secondary = secondary.restart(&secondary_scratch.path("serve-2.log"));
    wait_serial(secondary.addr, serial, || secondary.log());
    knot.wait_serial(ORIGIN, serial, CONVERGE);
    let log = secondary.log();
    assert!(
        log.contains("secondary: IXFR (incremental, 2 steps) in from"),
        "the restarted secondary caught up by IXFR; log:\n{log}"
    );
    assert_eq!(
        axfr_zone(knot.addr, false),
        parse_zone(&primary_scratch.ok(&["zone", "export", ORIGIN])),
        "knotd's zone vs the primary's export after the catch-up"
    );
}

#[test]
fn a_restarted_secondary_serves_its_stored_zone_expires_without_its_primary_and_comes_back() {
    let scratch = empty_scratch();
    let expire = 8;
    let timers = format!("1 1 {expire}");
    // No check can succeed before serve starts: the expiry comes no earlier
    // than `expire` after this.
    let started_at = Instant::now();
    let (knot, mut serve) = knot_and_secondary(&scratch, &zone_at(1, &timers, 5, ""));
    let knot_addr = knot.addr;
    assert_eq!(soa_serial(serve.addr, ORIGIN), Some(1));

    // The primary gone, the secondary down for 4 s and restarted: it
    // answers from the store before any word from the primary, and its
    // expire counts from the last successful check, not from the restart.
    drop(knot);
    serve.kill();
    std::thread::sleep(Duration::from_secs(4));
    let serve = serve.restart(&scratch.path("serve-2.log"));
    assert_eq!(
        soa_status(serve.addr),
        "NOERROR",
        "the stored zone is served at once"
    );
    let log = serve.log();
    let left: u64 = log
        .split("serving the stored version, expires in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the restart says when the zone expires; log:\n{log}"));
    assert!(
        left <= expire - 4 && log.contains("the last successful check was"),
        "4 s after the last check the expire has at most {} s left, the restart said {left}; log:\n{log}",
        expire - 4
    );

    // No successful check for `expire` seconds: SERVFAIL.
    let deadline = Instant::now() + CONVERGE;
    while soa_status(serve.addr) != "SERVFAIL" {
        assert!(
            Instant::now() < deadline,
            "expected SERVFAIL within {CONVERGE:?} of the expire ({expire} s); saw {}; log:\n{}",
            soa_status(serve.addr),
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        started_at.elapsed() >= Duration::from_secs(expire - 1),
        "SERVFAIL came {:?} after serve first started, before the expire of {expire} s",
        started_at.elapsed()
    );
    let log = serve.log();
    assert!(
        log.contains("refresh FAILED") && log.contains("EXPIRED"),
        "failures and the expiry are logged; log:\n{log}"
    );

    // The primary back, on its address, with a newer serial: answered again.
    let _knot = runtime()
        .block_on(KnotPrimary::try_start_notifying(
            knot_addr,
            &[(ORIGIN, &zone_at(2, &timers, 5, ""))],
            (XFR_KEY, XFR_SECRET),
            Some(serve.addr),
        ))
        .unwrap_or_else(|e| panic!("knotd did not start again on {knot_addr}: {e}"));
    wait_serial(serve.addr, 2, || serve.log());
    assert_eq!(soa_status(serve.addr), "NOERROR");
}

#[test]
fn a_transfer_that_fails_its_checks_keeps_the_zone_served() {
    let scratch = empty_scratch();
    let (knot, serve) = knot_and_secondary(&scratch, &zone_at(1, "3600 600 86400", 5, ""));
    assert_eq!(soa_serial(serve.addr, ORIGIN), Some(1));

    // Serial 5 without the apex NS (knotd serves it with its semantic
    // checks off); a served zone must have one.
    let broken = zone_at(5, "3600 600 86400", 5, "").replace("@ NS ns1\n", "");
    knot.replace_zone(ORIGIN, &broken);
    assert_eq!(
        soa_serial(knot.addr, ORIGIN),
        Some(5),
        "knotd serves the broken zone"
    );
    wait_for("the secondary's log", "refresh FAILED", || serve.log());
    let log = serve.log();
    assert!(
        log.contains("fails the checks a served zone must pass"),
        "the reason is logged; log:\n{log}"
    );
    assert_eq!(
        soa_serial(serve.addr, ORIGIN),
        Some(1),
        "serial 1 still served"
    );
    assert_eq!(scratch.serial(), 1, "nothing stored");

    // Fixed on the primary: taken.
    knot.replace_zone(ORIGIN, &zone_at(6, "3600 600 86400", 5, ""));
    wait_serial(serve.addr, 6, || serve.log());
    assert_eq!(scratch.serial(), 6);
}

#[test]
fn the_control_api_refuses_a_record_change_to_a_secondary_zone() {
    let scratch = empty_scratch();
    let runtime = runtime();
    let zone = zone_at(1, "3600 600 86400", 3, "");
    let (_knot, serve, http) = start_on_free_ports("knotd and serve", |ports: &mut Ports| {
        let port = ports.pick(&[LOOPBACK]);
        let http = ports.on(LOOPBACK);
        let knot_addr = ports.on(LOOPBACK);
        let knot = runtime.block_on(KnotPrimary::try_start(
            knot_addr,
            &[(ORIGIN, zone.as_str())],
            (XFR_KEY, XFR_SECRET),
        ))?;
        let config = scratch.config(
            port,
            &format!("[http]\nlisten = \"{http}\"\n"),
            &secondary_of(knot_addr),
        );
        let serve = Serve::try_start(&config, port, &scratch.path("serve.log"))?;
        Ok((knot, serve, http))
    });
    let token = scratch.ok(&["token", "create", "ops", "--scope", "admin"]);
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-X", "POST"])
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", token.trim()))
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"action":"set","name":"mine","type":"A","data":"192.0.2.5"}"#)
        .arg(format!("http://{http}/api/v1/zones/{ORIGIN}/records"))
        .output()
        .expect("curl runs");
    let said = text(&out.stdout);
    assert!(
        said.ends_with("422") && said.contains("is a secondary zone here"),
        "expected 422 naming the secondary zone, saw:\n{said}\nlog:\n{}",
        serve.log()
    );
    assert_eq!(soa_serial(serve.addr, ORIGIN), Some(1), "nothing changed");
}

/// A primary that misbehaves on purpose (no real server stops mid-way on
/// demand): it answers the SOA query and transfers in AXFR form over TCP,
/// but while `cut` is set it closes the connection after half of the
/// transfer's messages.
struct CuttingPrimary {
    /// Where it listens (TCP).
    addr: SocketAddr,
    /// The zone it serves.
    zone: std::sync::Arc<std::sync::Mutex<cutover_zone::Zone>>,
    /// Whether transfers are cut.
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CuttingPrimary {
    /// Starts it on a held port of loopback, serving `zone`.
    fn start(zone: cutover_zone::Zone) -> CuttingPrimary {
        let listener = cutover_peers::hold_tcp_on(LOOPBACK);
        let addr = listener.local_addr().unwrap();
        let zone = std::sync::Arc::new(std::sync::Mutex::new(zone));
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (served, cutting) = (zone.clone(), cut.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let zone = served.lock().unwrap().clone();
                let cutting = cutting.load(std::sync::atomic::Ordering::Relaxed);
                let _ = CuttingPrimary::serve(stream, &zone, cutting);
            }
        });
        CuttingPrimary { addr, zone, cut }
    }

    /// Answers one query on `stream`.
    fn serve(
        mut stream: std::net::TcpStream,
        zone: &cutover_zone::Zone,
        cutting: bool,
    ) -> std::io::Result<()> {
        use std::io::{Read, Write};
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix)?;
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut query)?;
        // The question: the name from byte 12, then the type.
        let mut at = 12;
        while query.get(at).is_some_and(|&len| len != 0) {
            at += 1 + usize::from(query[at]);
        }
        let qtype = u16::from_be_bytes([query[at + 1], query[at + 2]]);
        let messages = if qtype == 6 {
            let catalog = cutover_nameserver::Catalog::new(vec![std::sync::Arc::new(
                cutover_nameserver::ZoneSnapshot::build(zone),
            )]);
            let mut response = Vec::new();
            cutover_nameserver::answer(
                &catalog,
                &query,
                cutover_nameserver::Transport::Tcp,
                &mut response,
            );
            vec![response]
        } else {
            let id = u16::from_be_bytes([query[0], query[1]]);
            let question = cutover_nameserver::transfer::Question {
                name: zone.origin().clone(),
                qtype: cutover_zone::RecordType::from(qtype),
            };
            let all =
                cutover_nameserver::transfer::axfr_messages(zone, id, &question, 512).unwrap();
            let keep = if cutting { all.len() / 2 } else { all.len() };
            all.into_iter().take(keep).collect()
        };
        for message in messages {
            stream.write_all(&(message.len() as u16).to_be_bytes())?;
            stream.write_all(&message)?;
        }
        Ok(())
    }
}

#[test]
fn a_transfer_cut_mid_way_keeps_the_zone_served() {
    let scratch = empty_scratch();
    let zone = |serial| parse_zone(&zone_at(serial, "1 1 3600", 60, ""));
    let primary = CuttingPrimary::start(zone(1));
    let serve = Serve::start_free(&scratch.path("serve.log"), |port| {
        scratch.config(port, "", &format!("primary = \"{}\"\n", primary.addr))
    });
    assert_eq!(soa_serial(serve.addr, ORIGIN), Some(1));

    // Serial 2, its transfers cut after half of their messages.
    primary
        .cut
        .store(true, std::sync::atomic::Ordering::Relaxed);
    *primary.zone.lock().unwrap() = zone(2);
    wait_for("the secondary's log", "before the final SOA", || {
        serve.log()
    });
    assert_eq!(
        soa_serial(serve.addr, ORIGIN),
        Some(1),
        "serial 1 still served"
    );
    assert_eq!(scratch.serial(), 1, "nothing stored");

    // Whole again: taken (the SOA refresh is 1 s).
    primary
        .cut
        .store(false, std::sync::atomic::Ordering::Relaxed);
    wait_serial(serve.addr, 2, || serve.log());
}

#[test]
fn a_migration_is_verified_on_the_primary_and_two_cutover_secondaries() {
    // The zone with short TTLs, so the migration's waits are seconds.
    let primary_scratch = Scratch {
        dir: tempfile::tempdir().unwrap(),
    };
    let file = primary_scratch.path("example.com.zone");
    std::fs::write(
        &file,
        "$ORIGIN example.com.\n$TTL 2\n@ SOA ns1 hostmaster 1 1 1 3600 2\n\
         @ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\n",
    )
    .unwrap();
    primary_scratch.ok(&["zone", "import", file.to_str().unwrap()]);
    let scratches = [empty_scratch(), empty_scratch()];
    let (primary, secondaries) =
        start_on_free_ports("serve and two secondaries", |ports: &mut Ports| {
            let primary_port = ports.pick(&[LOOPBACK]);
            let ports_of: Vec<u16> = scratches.iter().map(|_| ports.pick(&[LOOPBACK])).collect();
            let primary_addr = SocketAddr::from((LOOPBACK, primary_port));
            let notify: Vec<String> = ports_of
                .iter()
                .map(|p| format!("\"{}\"", SocketAddr::from((LOOPBACK, *p))))
                .collect();
            let config = primary_scratch.config(
                primary_port,
                "",
                &format!(
                    "transfer_keys = [\"{XFR_KEY}\"]\nnotify = [{}]\nnotify_key = \"{XFR_KEY}\"\n",
                    notify.join(", ")
                ),
            );
            let primary =
                Serve::try_start(&config, primary_port, &primary_scratch.path("serve.log"))?;
            let mut secondaries = Vec::new();
            for (scratch, port) in scratches.iter().zip(&ports_of) {
                let config = scratch.config(
                    *port,
                    "",
                    &format!("primary = \"{primary_addr}\"\nprimary_key = \"{XFR_KEY}\"\n"),
                );
                secondaries.push(Serve::try_start(
                    &config,
                    *port,
                    &scratch.path("serve.log"),
                )?);
            }
            Ok((primary, secondaries))
        });
    for secondary in &secondaries {
        wait_serial(secondary.addr, 1, || secondary.log());
    }
    let authorities: Vec<SocketAddr> = std::iter::once(primary.addr)
        .chain(secondaries.iter().map(|s| s.addr))
        .collect();
    let (state, detail) = migrate_www_verified_on(&primary_scratch, &authorities, || primary.log());
    assert_eq!(
        state, "done",
        "the migration verified on all three: {detail:#}"
    );
    let serial = primary_scratch.serial();
    for server in std::iter::once(&primary).chain(&secondaries) {
        assert_eq!(
            soa_serial(server.addr, ORIGIN),
            Some(serial),
            "{} serves the primary's serial {serial}",
            server.addr
        );
    }
    let evidence = detail["migration"]["steps"].to_string();
    for server in std::iter::once(&primary).chain(&secondaries) {
        assert!(
            evidence.contains(&server.addr.to_string()),
            "the verification names {}: {evidence}",
            server.addr
        );
    }
}
