//! Issue 14's fleet in network namespaces: `cutover serve` as the primary
//! on the host, two `cutover serve` secondaries (`[[zone]] primary`), each
//! in a namespace of its own, transferring from the primary over their
//! veth pairs (TSIG-signed, NOTIFY and the SOA refresh of 1 s). A
//! migration on the primary is verified on all three (every serial, every
//! answer); then one secondary is killed while the primary changes twice,
//! and once started again it catches up by one IXFR of both steps.
//!
//! ```text
//!  host: cutover serve (primary; 127.0.0.1:P, 10.A.C.1:P, 10.A.D.1:P) ── NOTIFY ──▶
//!     │ veth ── netns ns2: cutover serve (secondary) on 10.A.C.2:53, primary = 10.A.C.1:P
//!     │ veth ── netns ns3: cutover serve (secondary) on 10.A.D.2:53, primary = 10.A.D.1:P
//! ```
//!
//! Needs root, iproute2 and the cutover binary; the namespaces are removed
//! when the test ends, failed or not.

mod netns;
mod primary_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use netns::{Location, Network};
use primary_support::*;

/// How long a change may take to reach a secondary (a deadline for a
/// loaded machine, not a measurement).
const CONVERGE: Duration = Duration::from_secs(30);

/// The `[[key]]` of the transfers (and the NOTIFYs).
fn transfer_key() -> String {
    format!(
        "[[key]]\nname = \"{XFR_KEY}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{XFR_SECRET}\"\n"
    )
}

/// A `cutover serve` secondary running in a namespace; killed on drop.
struct Secondary {
    /// The process.
    guard: Guard,
    /// Where it answers (the namespace's address, port 53).
    addr: SocketAddr,
    /// Its config.
    config: PathBuf,
    /// Its current log.
    log: PathBuf,
}

impl Secondary {
    /// Writes the config of a secondary of `primary` into `dir` (its
    /// store there, empty: the zone comes from the primary) and starts it
    /// in `location`.
    fn start(location: &Location, primary: SocketAddr, dir: &Path) -> Secondary {
        let addr = SocketAddr::from((location.inside(), 53));
        let config = dir.join("cutover.toml");
        std::fs::write(
            &config,
            format!(
                "store = {:?}\n[dns]\nlisten = [\"{addr}\"]\nudp_workers = 1\n{}\
                 [[zone]]\nname = \"{ORIGIN}\"\nprimary = \"{primary}\"\nprimary_key = \"{XFR_KEY}\"\n\
                 transfer_keys = [\"{XFR_KEY}\"]\n",
                dir.join("cutover.db").display().to_string(),
                transfer_key()
            ),
        )
        .unwrap();
        Secondary::spawn(location, addr, config, dir.join("serve.log"))
    }

    /// Starts `cutover serve --config CONFIG` in `location`, logging into
    /// `log`, and waits until it answers the zone's SOA.
    fn spawn(location: &Location, addr: SocketAddr, config: PathBuf, log: PathBuf) -> Secondary {
        let child = location
            .command(env!("CARGO_BIN_EXE_cutover"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cutover serve runs in the namespace");
        let mut secondary = Secondary {
            guard: Guard {
                child,
                what: "cutover serve (secondary, netns)",
            },
            addr,
            config,
            log,
        };
        let deadline = Instant::now() + SERVE_LIMIT;
        loop {
            let last = match netns::soa(addr, ORIGIN, false) {
                Ok(_) => break,
                Err(e) => e,
            };
            if let Ok(Some(status)) = secondary.guard.child.try_wait() {
                panic!(
                    "the secondary in {} exited ({status}); log:\n{}",
                    location.name,
                    secondary.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "expected the secondary in {} to answer {ORIGIN} SOA within {SERVE_LIMIT:?}, last: {last}; log:\n{}",
                location.name,
                secondary.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        secondary
    }

    /// Kills it (SIGKILL) and reaps it.
    fn kill(&mut self) {
        let _ = self.guard.child.kill();
        let _ = self.guard.child.wait();
    }

    /// Starts it again in `location` on its config, logging into `log`.
    fn restart(&self, location: &Location, log: PathBuf) -> Secondary {
        Secondary::spawn(location, self.addr, self.config.clone(), log)
    }

    /// What it logged.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Waits until `server` answers the zone's SOA with `serial`; panics with
/// what it served and the log otherwise.
fn wait_serial(server: SocketAddr, serial: u32, log: impl Fn() -> String) {
    let deadline = Instant::now() + CONVERGE;
    let mut seen = Err(String::new());
    while Instant::now() < deadline {
        seen = netns::soa(server, ORIGIN, false);
        if seen == Ok(serial) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "expected {server} to serve {ORIGIN} at serial {serial} within {CONVERGE:?}, it serves {seen:?}; log:\n{}",
        log()
    );
}

#[test]
fn a_migration_is_verified_on_the_primary_and_two_secondaries_in_namespaces_and_a_restarted_one_catches_up_by_ixfr(
) {
    let network = Network::new(&["ns2", "ns3"]);
    // The primary's store: the zone with short TTLs, so the migration's
    // waits are seconds, and a refresh of 1 s.
    let primary = Scratch {
        dir: tempfile::tempdir().unwrap(),
    };
    let file = primary.path("example.com.zone");
    std::fs::write(
        &file,
        "$ORIGIN example.com.\n$TTL 2\n@ SOA ns1 hostmaster 1 1 1 3600 2\n\
         @ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\n",
    )
    .unwrap();
    primary.ok(&["zone", "import", file.to_str().unwrap()]);
    // One port on loopback and on the host's end of each pair, held until
    // the primary starts.
    let mut addresses = vec![LOOPBACK];
    addresses.extend(network.locations.iter().map(Location::host));
    let port = cutover_peers::Reservation::new(&addresses);
    let listen: Vec<String> = addresses
        .iter()
        .map(|a| format!("\"{}\"", port.on(*a)))
        .collect();
    let notify: Vec<String> = network
        .locations
        .iter()
        .map(|l| format!("\"{}\"", SocketAddr::from((l.inside(), 53))))
        .collect();
    let config = primary.path("cutover.toml");
    std::fs::write(
        &config,
        format!(
            "store = {:?}\n[dns]\nlisten = [{}]\nudp_workers = 1\n{}\
             [[zone]]\nname = \"{ORIGIN}\"\ntransfer_keys = [\"{XFR_KEY}\"]\nnotify = [{}]\nnotify_key = \"{XFR_KEY}\"\n",
            primary.path("cutover.db").display().to_string(),
            listen.join(", "),
            transfer_key(),
            notify.join(", ")
        ),
    )
    .unwrap();
    port.release();
    let primary_serve = Serve::start(&config, port.port, &primary.path("serve.log"));

    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut secondaries: Vec<Secondary> = network
        .locations
        .iter()
        .zip(&dirs)
        .map(|(l, d)| Secondary::start(l, port.on(l.host()), d.path()))
        .collect();
    for secondary in &secondaries {
        wait_serial(secondary.addr, 1, || secondary.log());
        assert!(
            secondary.log().contains("secondary: AXFR in from"),
            "expected the first transfer an AXFR; log:\n{}",
            secondary.log()
        );
    }

    // A migration on the primary, verified on the primary and both
    // secondaries.
    let authorities: Vec<SocketAddr> = std::iter::once(primary_serve.addr)
        .chain(secondaries.iter().map(|s| s.addr))
        .collect();
    let (state, detail) = migrate_www_verified_on(&primary, &authorities, || primary_serve.log());
    assert_eq!(
        state,
        "done",
        "expected the migration verified on all three: {detail:#}\nprimary's log:\n{}",
        primary_serve.log()
    );
    let serial = primary.serial();
    assert!(
        serial > 1,
        "expected the migration to raise the serial, it is {serial}"
    );
    for (server, log) in std::iter::once((primary_serve.addr, primary_serve.log()))
        .chain(secondaries.iter().map(|s| (s.addr, s.log())))
    {
        assert_eq!(
            netns::soa(server, ORIGIN, false),
            Ok(serial),
            "expected {server} to serve the primary's serial {serial}; log:\n{log}"
        );
    }
    let evidence = detail["migration"]["steps"].to_string();
    for server in std::iter::once(primary_serve.addr).chain(secondaries.iter().map(|s| s.addr)) {
        assert!(
            evidence.contains(&server.to_string()),
            "expected the verification to name {server}: {evidence}"
        );
    }
    let answer = kdig(secondaries[1].addr, &["www.example.com.", "A", "+short"]);
    assert_eq!(answer.trim(), "192.0.2.20", "ns3 answers the moved www");

    // ns3 down while the primary changes twice: started again, it catches
    // up by one IXFR of both steps; ns2 follows each change.
    let ns3 = network.location("ns3");
    secondaries[1].kill();
    for (step, name) in ["b1", "b2"].iter().enumerate() {
        primary.ok(&[
            "record",
            "set",
            ORIGIN,
            name,
            "A",
            &format!("203.0.113.{}", step + 10),
        ]);
    }
    let caught_up = primary.serial();
    assert_eq!(caught_up, serial + 2, "two changes, two serials");
    wait_serial(secondaries[0].addr, caught_up, || secondaries[0].log());
    let restarted = secondaries[1].restart(ns3, dirs[1].path().join("serve-2.log"));
    wait_serial(restarted.addr, caught_up, || restarted.log());
    let log = restarted.log();
    let primary_addr = port.on(ns3.host());
    assert!(
        log.contains(&format!(
            "secondary: IXFR (incremental, 2 steps) in from {primary_addr}: serial {serial} → {caught_up}"
        )),
        "expected the restarted secondary to catch up by one IXFR of 2 steps from {primary_addr}; log:\n{log}"
    );
    assert!(
        primary_serve.log().contains("IXFR out: incremental"),
        "expected the primary to serve incremental IXFRs; log:\n{}",
        primary_serve.log()
    );
    assert_eq!(
        axfr_zone(restarted.addr, true),
        parse_zone(&primary.ok(&["zone", "export", ORIGIN])),
        "ns3's zone vs the primary's export after the catch-up"
    );
}
