//! `cutover check` as a black box against real servers on loopback.
//!
//! ```text
//!  knotd 127.0.0.3:P  test.          (parent: delegates example.test to ns1, ns2)
//!  cutover 127.0.0.1:P example.test  serial 2, www A 192.0.2.1 TTL 30   (ns1: `cutover serve`)
//!  knotd 127.0.0.2:P  example.test   serial 1, www A 192.0.2.100        (ns2, lagging)
//!  unbound            stub test. → .3, example.test → .1
//! ```
//!
//! The binary finds both servers through Unbound, flags ns2 and exits 1;
//! `--json` holds both serials; `--expect` decides the exit status; Unbound's
//! TTL left is below the zone's; `--watch` exits 0 once ns2 catches up.

mod peers;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peers::{args, cutover, start_on_free_ports_async, CutoverNs, Guard, Knot, Ports, Unbound};

/// The parent zone: delegates example.test. to ns1 and ns2, with glue.
const PARENT: &str = "$TTL 60\n@ SOA ns.test. hostmaster.test. 1 60 60 600 60\n@ NS ns.test.\n\
ns A 127.0.0.3\nexample NS ns1.example.test.\nexample NS ns2.example.test.\n\
ns1.example A 127.0.0.1\nns2.example A 127.0.0.2\n";

/// example.test. at `serial` with www pointing at 192.0.2.`www` (TTL 30).
fn child_zone(serial: u32, www: u8) -> String {
    format!(
        "$TTL 60\n@ SOA ns1.example.test. hostmaster.example.test. {serial} 60 60 600 60\n\
         @ NS ns1\n@ NS ns2\nns1 A 127.0.0.1\nns2 A 127.0.0.2\nwww 30 A 192.0.2.{www}\n"
    )
}

/// The servers and the resolver of a test.
struct Peers {
    /// The authoritative port (the same on every address).
    port: u16,
    /// ns1: cutover's own nameserver, serial 2.
    ns1: CutoverNs,
    /// ns2: serial 1, a different www.
    ns2: Knot,
    /// The parent zone's server.
    _parent: Knot,
    /// The caching resolver.
    unbound: Unbound,
}

impl Peers {
    /// Starts cutover's nameserver, two knotd and Unbound.
    async fn start() -> Peers {
        // The three servers share a port (the NS records name hosts, not
        // ports): started together, again on another port if one was taken.
        let (port, parent, ns1, ns2) =
            start_on_free_ports_async("the three nameservers", async |ports: &mut Ports| {
                let port = ports.pick(&[[127, 0, 0, 1], [127, 0, 0, 2], [127, 0, 0, 3]]);
                let at = |last: u8| SocketAddr::from(([127, 0, 0, last], port));
                let parent = Knot::try_start(at(3), &[("test.", PARENT)]).await?;
                let ns1 =
                    CutoverNs::try_start(at(1), &[("example.test.", &child_zone(2, 1))]).await?;
                let ns2 = Knot::try_start(at(2), &[("example.test.", &child_zone(1, 100))]).await?;
                Ok((port, parent, ns1, ns2))
            })
            .await;
        let stubs = [("test.", parent.addr), ("example.test.", ns1.addr)];
        let unbound = Unbound::start(&stubs, "", "example.test.").await;
        Peers {
            port,
            ns1,
            ns2,
            _parent: parent,
            unbound,
        }
    }

    /// `check example.test www --type A` against these peers, plus `extra`.
    fn check(&self, extra: &[&str]) -> Vec<String> {
        let mut words = args(&[
            "check",
            "example.test",
            "www",
            "--type",
            "A",
            "--timeout",
            "500ms",
            "--retries",
            "1",
        ]);
        words.push("--port".into());
        words.push(self.port.to_string());
        words.push("--resolver".into());
        words.push(format!("plain={}", self.unbound.addr));
        words.extend(args(extra));
        words
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lagging_server_is_flagged_and_expectations_decide_the_exit_status() {
    let peers = Peers::start().await;
    let ns1 = peers.ns1.addr.to_string();
    let ns2 = peers.ns2.addr.to_string();

    // The servers found through Unbound and the parent; ns2 lags.
    let started = Instant::now();
    let run = cutover(&peers.check(&[])).await;
    eprintln!("{}", run.stdout);
    assert_eq!(
        run.code,
        Some(1),
        "a lagging server must exit 1; stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    let line = |needle: &str| {
        run.stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line for {needle} in:\n{}", run.stdout))
            .to_string()
    };
    let ns2_line = line(&ns2);
    assert!(
        ns2_line.contains("lagging: serial 1 behind 2") && ns2_line.contains("192.0.2.100"),
        "expected ns2's line flagged as lagging with its old data, saw: {ns2_line}"
    );
    let ns1_line = line(&ns1);
    assert!(
        ns1_line.trim_end().ends_with(" ok") && ns1_line.contains(" 2 "),
        "expected ns1 at serial 2 without flags, saw: {ns1_line}"
    );
    assert!(
        run.stdout.contains("resolver plain"),
        "a line for the resolver:\n{}",
        run.stdout
    );

    // The same observations as JSON.
    let run = cutover(&peers.check(&["--json"])).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("--json must print JSON ({e}):\n{}", run.stdout));
    let serials: Vec<(String, u64)> = report["servers"]
        .as_array()
        .expect("a servers array")
        .iter()
        .map(|s| {
            (
                s["address"].as_str().unwrap().to_string(),
                s["serial"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        serials,
        vec![(ns1.clone(), 2), (ns2.clone(), 1)],
        "the JSON holds both serials: {report:#}"
    );
    assert_eq!(report["newest_serial"], 2);
    assert_eq!(report["agrees"], false);

    // Only ns1, expecting its data: everything agrees.
    let run =
        cutover(&peers.check(&["--authority", &ns1, "--expect", "www", "A", "192.0.2.1"])).await;
    assert_eq!(
        run.code,
        Some(0),
        "ns1 and the cache both give 192.0.2.1; stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("verdict: everything agrees"));
    let run =
        cutover(&peers.check(&["--authority", &ns1, "--expect", "www", "A", "192.0.2.9"])).await;
    assert_eq!(
        run.code,
        Some(1),
        "192.0.2.9 is not served:\n{}",
        run.stdout
    );
    assert!(
        line_of(&run.stdout, &ns1).contains("expected 192.0.2.9"),
        "ns1's line names the expected value:\n{}",
        run.stdout
    );

    // Unbound has held www since the first run: its TTL left is below 30.
    let held = Duration::from_millis(1200).saturating_sub(started.elapsed());
    tokio::time::sleep(held).await;
    let run = cutover(&peers.check(&["--authority", &ns1, "--json"])).await;
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let server_ttl = report["servers"][0]["ttl"].as_u64();
    let left = report["resolvers"][0]["ttl_left"].as_u64();
    assert_eq!(server_ttl, Some(30), "ns1 gives the zone's TTL: {report:#}");
    assert!(
        left.is_some_and(|left| left < 30),
        "expected Unbound's TTL left below 30 after holding www over a second, saw {left:?}"
    );
    let release = report["resolvers"][0]["released_in_seconds"].as_u64();
    // The countdown is taken a moment after the reply: up to a second less.
    assert!(
        matches!((release, left), (Some(r), Some(l)) if r <= l && r + 1 >= l),
        "the cache lets go when its TTL left runs out: released in {release:?} s, TTL left {left:?}"
    );
    assert!(
        report["all_released_at"].is_string(),
        "the time all caches let go: {report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_refreshes_until_the_lagging_server_catches_up_then_exits_zero() {
    let peers = Peers::start().await;
    let ns1 = peers.ns1.addr.to_string();
    let ns2 = peers.ns2.addr.to_string();
    let words = peers.check(&[
        "--authority",
        &ns1,
        "--authority",
        &ns2,
        "--watch",
        "--interval",
        "300ms",
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(&words)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the cutover binary runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut watcher = Guard {
        child,
        what: "cutover check --watch",
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        watcher.child.try_wait().unwrap().is_none(),
        "--watch must keep going while ns2 lags"
    );
    peers.ns2.replace_zone("example.test.", &child_zone(2, 1));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = watcher.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "--watch did not exit within 10 s of ns2 catching up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "--watch exits 0 once all agree:\n{out}"
    );
    assert!(
        out.contains("lagging: serial 1 behind 2"),
        "an early round flagged ns2:\n{out}"
    );
    assert!(
        out.trim_end().ends_with("verdict: everything agrees"),
        "the last round agrees:\n{out}"
    );
    // In a pipe: rounds one after the other and the waits as plain lines,
    // never a carriage return or an escape code to redraw a line.
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    for (stream, text) in [("stdout", &out), ("stderr", &err)] {
        assert!(
            !text.contains('\r') && !text.contains('\u{1b}'),
            "--watch in a pipe wrote a terminal control to {stream}:\n{text:?}"
        );
    }
    assert!(
        out.matches("verdict: NOT everything agrees").count() >= 2,
        "expected every round printed after the last:\n{out}"
    );
}

/// The line of `text` that mentions `needle` (empty when none does).
fn line_of(text: &str, needle: &str) -> String {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn resolver_public_asks_the_documented_public_resolvers() {
    // An authority that holds its port and never answers: the check is
    // about who is asked, not what they say (this host may not reach them).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let authority = silent.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args([
            "check",
            "example.test.",
            "--authority",
            &authority,
            "--resolver",
            "public",
            "--resolver",
            "1.1.1.1",
            "--timeout",
            "100ms",
            "--retries",
            "0",
            "--json",
        ])
        .env_remove("CUTOVER_SERVER")
        .output()
        .expect("cutover runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let asked: Vec<(String, String)> = json["resolvers"]
        .as_array()
        .expect("resolver rows")
        .iter()
        .map(|r| {
            (
                r["resolver"].as_str().unwrap().to_string(),
                r["address"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("google-1", "8.8.8.8:53"),
        ("google-2", "8.8.4.4:53"),
        ("cloudflare-1", "1.1.1.1:53"),
        ("cloudflare-2", "1.0.0.1:53"),
        ("quad9-1", "9.9.9.9:53"),
        ("quad9-2", "149.112.112.112:53"),
        ("opendns-1", "208.67.222.222:53"),
        ("opendns-2", "208.67.220.220:53"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(l, a)| (l.to_string(), a.to_string()))
        .collect();
    assert_eq!(
        asked, expected,
        "one SOA row per public resolver, in the documented order, 1.1.1.1 given again asked once"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the silent authority fails the check"
    );
}
