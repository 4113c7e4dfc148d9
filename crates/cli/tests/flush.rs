//! `cutover flush` against a real Unbound and a real dnsmasq.
//!
//! ```text
//!  knotd 127.0.0.1:K  example.test   www 3600 A 192.0.2.1  ──(zone changed)──▶ 192.0.2.2
//!     ▲                     ▲
//!  unbound (stub zone)   dnsmasq (--server=127.0.0.1#K, pid file)
//!     ▲ remote control       ▲ SIGHUP
//!     └──── cutover flush ───┘
//! ```
//!
//! Each cache is filled with the long-TTL answer, the zone changes at the
//! authoritative server, the caches are seen still answering the old
//! address, cutover flushes them, and they answer the new one. A dry run
//! changes nothing; BIND as a resolver is flushed through its rndc control
//! channel the same way; a dead control channel is a failure with the tool's
//! reason and exit status 1; a local Unbound and dnsmasq are found through
//! /proc and flushed with their own config.

mod peers;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use cutover_flush::{Kind, Outcome, Scope, Settings};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use peers::bind_resolver::BindResolver;
use peers::dnsmasq::Dnsmasq;
use peers::{args, cutover, refusing_tcp, Knot, Unbound};

/// Runs `cutover --config CONFIG flush WORDS… --json`.
async fn flush_json(config: &str, words: &[&str]) -> peers::Run {
    let mut all = vec!["--config", config, "flush"];
    all.extend_from_slice(words);
    all.push("--json");
    cutover(&args(&all)).await
}

/// example.test. at `serial`, www at 192.0.2.`www` with a one-hour TTL.
fn zone(serial: u32, www: u8) -> String {
    format!(
        "$TTL 3600\n@ SOA ns.example.test. hostmaster.example.test. {serial} 60 60 600 60\n\
         @ NS ns\nns A 127.0.0.1\nwww 3600 A 192.0.2.{www}\n"
    )
}

/// The authoritative server and the two caches in front of it.
struct Caches {
    /// The authoritative server.
    knot: Knot,
    /// Unbound with its remote control on `control_port`.
    unbound: Unbound,
    /// Unbound's remote-control port.
    control_port: u16,
    /// dnsmasq forwarding to knot.
    dnsmasq: Dnsmasq,
}

impl Caches {
    /// Starts knotd, then Unbound and dnsmasq in front of it, both holding
    /// www.example.test. → 192.0.2.1 for an hour.
    async fn start() -> Caches {
        let knot = Knot::start([127, 0, 0, 1], &[("example.test.", &zone(1, 1))]).await;
        let unbound =
            Unbound::start_controlled(&[("example.test.", knot.addr)], "", Some("example.test."))
                .await;
        let control_port = unbound.control.expect("started with its control").port();
        let dnsmasq = Dnsmasq::start(knot.addr, "example.test.").await;
        let caches = Caches {
            knot,
            unbound,
            control_port,
            dnsmasq,
        };
        caches.expect_www("before the change", 1, 1).await;
        caches
    }

    /// Changes www at the authoritative server to 192.0.2.`www` and waits
    /// until knotd answers it; the caches still hold 192.0.2.`cached`.
    async fn change(&self, serial: u32, www: u8, cached: u8) {
        change_www(&self.knot, serial, www).await;
        self.expect_www("after the change, before any flush", cached, cached)
            .await;
    }

    /// Asserts what Unbound and dnsmasq answer for www.
    async fn expect_www(&self, when: &str, unbound: u8, dnsmasq: u8) {
        let seen = (
            address(self.unbound.addr, true).await,
            address(self.dnsmasq.addr, true).await,
        );
        assert_eq!(
            seen,
            (
                Ipv4Addr::new(192, 0, 2, unbound),
                Ipv4Addr::new(192, 0, 2, dnsmasq)
            ),
            "{when}: expected (Unbound, dnsmasq) answering 192.0.2.{unbound} and 192.0.2.{dnsmasq}; dnsmasq log:\n{}",
            std::fs::read_to_string(&self.dnsmasq.log).unwrap_or_default()
        );
    }

    /// A config naming both caches, and nothing local.
    fn config(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("cutover.toml");
        std::fs::write(
            &path,
            format!(
                "[flush]\nlocal = false\n\
                 [[flush.unbound]]\ncontrol = \"127.0.0.1:{}\"\n\
                 [[flush.dnsmasq]]\npid_file = {:?}\n",
                self.control_port,
                self.dnsmasq.pid_file.display().to_string()
            ),
        )
        .unwrap();
        path
    }
}

/// Changes www at `knot` to 192.0.2.`www` and waits until knotd answers it.
async fn change_www(knot: &Knot, serial: u32, www: u8) {
    knot.replace_zone("example.test.", &zone(serial, www));
    let deadline = Instant::now() + Duration::from_secs(10);
    while address(knot.addr, false).await != Ipv4Addr::new(192, 0, 2, www) {
        assert!(
            Instant::now() < deadline,
            "knotd did not serve www → 192.0.2.{www} within 10 s of the reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The A record `server` gives for www.example.test. (RD set when `recursion`).
async fn address(server: SocketAddr, recursion: bool) -> Ipv4Addr {
    let mut query = Message::new(0x0f1c, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = recursion;
    query.add_query(Query::query(
        Name::from_str("www.example.test.").unwrap(),
        RecordType::A,
    ));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..3 {
        socket
            .send_to(&query.to_vec().unwrap(), server)
            .await
            .unwrap();
        let Ok(received) =
            tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await
        else {
            continue;
        };
        let len = received.expect("a datagram from the server");
        let response = Message::from_vec(&buf[..len]).expect("a DNS message");
        return response
            .answers
            .iter()
            .find_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{server} gave no A for www: {response:?}"));
    }
    panic!("{server} did not answer www.example.test. A in 3 tries")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_empties_configured_unbound_and_dnsmasq() {
    let caches = Caches::start().await;
    caches.change(2, 2, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = caches.config(dir.path()).display().to_string();

    let dry = flush_json(&config, &["www.example.test", "--dry-run"]).await;
    assert_eq!(dry.code, Some(0), "dry run: {}", dry.stderr);
    let report: serde_json::Value = serde_json::from_str(&dry.stdout).expect("JSON report");
    let outcomes: Vec<(&str, &str)> = report["caches"]
        .as_array()
        .expect("caches[]")
        .iter()
        .map(|c| (c["cache"].as_str().unwrap(), c["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        vec![("dnsmasq", "would_run"), ("unbound", "would_run")],
        "expected only the two configured caches; report:\n{}",
        dry.stdout
    );
    assert_eq!(
        report["caches"][0]["commands"][0],
        format!("kill -HUP {}", caches.dnsmasq.guard.child.id()),
        "the dnsmasq command names the pid from the pid file"
    );
    assert_eq!(
        report["caches"][1]["commands"][0],
        format!(
            "unbound-control -c $TMPDIR/unbound-control.conf -s 127.0.0.1@{} flush www.example.test.",
            caches.control_port
        )
    );
    caches
        .expect_www("after a dry run (nothing flushed)", 1, 1)
        .await;

    let run = cutover(&args(&["--config", &config, "flush", "www.example.test"])).await;
    assert_eq!(
        run.code,
        Some(0),
        "flush failed:\n{}{}",
        run.stdout,
        run.stderr
    );
    let flushed: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("flushed"))
        .collect();
    assert_eq!(
        flushed.len(),
        2,
        "expected two 'flushed' lines, saw:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("sudo dscacheutil -flushcache; sudo killall -HUP mDNSResponder")
            && run.stdout.contains("ipconfig /flushdns"),
        "expected the commands for the platforms out of reach, saw:\n{}",
        run.stdout
    );
    caches.expect_www("after cutover flush", 2, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_control_channel_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cutover.toml");
    // Bound, never listening: nobody answers there while it is held.
    let (_held, dead) = refusing_tcp([127, 0, 0, 1]);
    let dead = dead.port();
    std::fs::write(
        &config,
        format!(
            "[flush]\nlocal = false\n[[flush.unbound]]\ncontrol = \"127.0.0.1:{dead}\"\n\
             [[flush.dnsmasq]]\npid_file = \"{}/none.pid\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let run = flush_json(&config.display().to_string(), &[]).await;
    assert_eq!(
        run.code,
        Some(1),
        "a failed cache must fail the command; saw:\n{}{}",
        run.stdout,
        run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let dnsmasq = &report["caches"][0];
    assert_eq!(dnsmasq["outcome"], "not_running", "{dnsmasq}");
    assert!(
        dnsmasq["why"].as_str().unwrap().contains("none.pid"),
        "the reason names the pid file: {dnsmasq}"
    );
    let unbound = &report["caches"][1];
    assert_eq!(unbound["outcome"], "failed", "{unbound}");
    let why = unbound["why"].as_str().unwrap();
    assert!(
        why.contains("unbound-control") && why.to_lowercase().contains("refused"),
        "expected unbound-control's own reason (connection refused), saw {why:?}"
    );
    assert!(
        run.stderr.contains("1 of 2 caches could not be flushed"),
        "stderr: {}",
        run.stderr
    );

    let bad = cutover(&args(&["flush", "a..b"])).await;
    assert_eq!(
        bad.code,
        Some(2),
        "a bad name is a usage error: {}",
        bad.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_caches_are_found_in_proc_and_flushed_with_their_own_config() {
    let caches = Caches::start().await;
    caches.change(2, 3, 1).await;
    // Only this test's processes: other tests' caches on the machine are left alone.
    let ours = [
        caches.unbound.guard.child.id(),
        caches.dnsmasq.guard.child.id(),
    ];
    let processes: Vec<_> = cutover_flush::detect::processes()
        .into_iter()
        .filter(|p| ours.contains(&p.pid))
        .collect();
    let scope = Scope::from_names(&["example.test".to_string()], true).unwrap();
    let report = cutover_flush::flush_with(
        &processes,
        &Settings::default(),
        &scope,
        &[Kind::Dnsmasq, Kind::Unbound],
        false,
        &|_| unreachable!("no pid files configured"),
        &cutover_flush::run::execute,
    );
    let seen: Vec<(Kind, String, Outcome)> = report
        .caches
        .iter()
        .map(|e| (e.cache, e.commands.join("; "), e.outcome.clone()))
        .collect();
    let conf = caches.unbound.dir.path().join("unbound.conf");
    assert_eq!(
        seen,
        vec![
            (
                Kind::Dnsmasq,
                format!("kill -HUP {}", ours[1]),
                Outcome::Flushed
            ),
            (
                Kind::Unbound,
                format!(
                    "unbound-control -c {} flush_zone example.test.",
                    conf.display()
                ),
                Outcome::Flushed
            ),
        ],
        "expected both found by process name, Unbound with its -c config"
    );
    caches
        .expect_www("after flushing the caches found in /proc", 3, 3)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_empties_a_bind_resolver_through_rndc() {
    let knot = Knot::start([127, 0, 0, 1], &[("example.test.", &zone(1, 1))]).await;
    let named = BindResolver::start("example.test", knot.addr).await;
    assert_eq!(
        address(named.addr, true).await,
        Ipv4Addr::new(192, 0, 2, 1),
        "named resolves www before the change"
    );
    change_www(&knot, 2, 4).await;
    assert_eq!(
        address(named.addr, true).await,
        Ipv4Addr::new(192, 0, 2, 1),
        "named still answers from its cache after the change"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cutover.toml");
    let key = named.key_file.display().to_string();
    std::fs::write(
        &config,
        format!(
            "[flush]\nlocal = false\n[[flush.bind]]\ncontrol = \"{}\"\nkey = {key:?}\n",
            named.control
        ),
    )
    .unwrap();
    let run = flush_json(
        &config.display().to_string(),
        &["www.example.test", "--cache", "bind"],
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "flush failed:\n{}{}",
        run.stdout,
        run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    let entry = &report["caches"][0];
    assert_eq!(entry["outcome"], "flushed", "{entry}");
    assert_eq!(
        entry["commands"][0],
        format!(
            "rndc -s 127.0.0.1 -p {} -k {key} flushname www.example.test.",
            named.control.port()
        )
    );
    assert_eq!(
        report["caches"].as_array().map(Vec::len),
        Some(1),
        "--cache bind reports only BIND: {}",
        run.stdout
    );
    assert_eq!(
        address(named.addr, true).await,
        Ipv4Addr::new(192, 0, 2, 4),
        "named answers the new address after cutover flush"
    );
}
