//! What the end-to-end migration tests share: a site (a store with a zone,
//! served by `cutover serve` with its scheduler), DNS queries, the binary,
//! and a client that resolves through a cache and requests every 50 ms.
//!
//! ```text
//!  Client ──every 50 ms──▶ Unbound ──stub──▶ cutover serve (127.0.0.1:P) ◀── store ◀── cutover migrate start
//!     │                                                              (scheduler runs the steps)
//!     └──GET / ──▶ the address Unbound gave: old (127.0.0.2) or new (127.0.0.3)
//! ```

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};

#[allow(unused_imports)]
pub use cutover_peers::http::{get, HttpServer};
#[allow(unused_imports)]
pub use cutover_peers::{
    hold_tcp, hold_tcp_on, log_length, wait_bound, wait_bound_from, Guard, Reservation, Socket,
    StartError, Unbound, LOOPBACK,
};

/// The old server's address.
pub const OLD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The new server's address.
pub const NEW: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// The test zone: www on the old address with the given TTL.
pub fn zone_text(ttl: u32) -> String {
    zone_text_at(OLD, ttl)
}

/// The test zone with www on `old` (an address other than [`OLD`], e.g. one
/// network namespaces reach) at TTL `ttl`.
pub fn zone_text_at(old: Ipv4Addr, ttl: u32) -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 3600\n\
         @ IN SOA ns1 hostmaster 2026112601 3600 600 1209600 5\n\
         @ IN NS ns1\n\
         ns1 IN A 127.0.0.1\n\
         www {ttl} IN A {old}\n\
         other 300 IN A 192.0.2.99\n"
    )
}

/// Runs the binary with `args` and returns its output (RUST_LOG=warn).
pub fn cutover(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cutover"));
    command.args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the cutover binary runs")
}

/// Panics with stdout and stderr unless the run exited 0; returns stdout.
pub fn ok(what: &str, output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what}: expected exit 0, saw {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

/// A store with the test zone and a config to serve it.
pub struct Site {
    /// Files of the site.
    pub dir: tempfile::TempDir,
    /// The store.
    pub store: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// Where `cutover serve` listens.
    pub addr: SocketAddr,
    /// The ports of `addr` and of the config's other listeners, held by
    /// the test until serve first starts (the migrations the store keeps
    /// name this address, so it never changes).
    held: Vec<Reservation>,
}

/// How many times [`Site::start_serve`] starts serve on the site's port
/// when it finds the port in use for a moment.
pub const SERVE_STARTS: u32 = 10;

/// How long a started `cutover serve` may take to bind and answer (a
/// deadline for a loaded machine, not a measurement).
pub const SERVE_LIMIT: Duration = Duration::from_secs(60);

impl Site {
    /// Imports the zone with www at TTL `ttl` into a fresh store and writes
    /// a config listening on a free 127.0.0.1 port.
    pub fn new(ttl: u32) -> Site {
        let dir = tempfile::tempdir().expect("a tempdir");
        let store = dir.path().join("cutover.db");
        let file = dir.path().join("example.test.zone");
        std::fs::write(&file, zone_text(ttl)).unwrap();
        let store_arg = store.display().to_string();
        let file_arg = file.display().to_string();
        ok(
            "zone import",
            cutover(
                &[
                    "--store",
                    &store_arg,
                    "zone",
                    "import",
                    &file_arg,
                    "--origin",
                    "example.test.",
                ],
                &[],
            ),
        );
        Site::from_store(dir, store, |addr| {
            format!("store = {store_arg:?}\n[dns]\nlisten = [\"{addr}\"]\nudp_workers = 1\n")
        })
    }

    /// A site over `dir` and its `store` (zones imported) whose config is
    /// `config(addr)`, `addr` being where its nameserver will listen.
    pub fn from_store(
        dir: tempfile::TempDir,
        store: PathBuf,
        config: impl FnOnce(SocketAddr) -> String,
    ) -> Site {
        let port = Reservation::new(&[LOOPBACK]);
        let addr = port.on(LOOPBACK);
        let path = dir.path().join("cutover.toml");
        std::fs::write(&path, config(addr)).unwrap();
        Site {
            dir,
            store,
            config: path,
            addr,
            held: vec![port],
        }
    }

    /// Holds `port` (another listener of the config, e.g. `[mail] listen`)
    /// until serve first starts.
    pub fn hold_until_serve(&mut self, port: Reservation) {
        self.held.push(port);
    }

    /// `cutover --config CONFIG ARGS…`.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let config = self.config.display().to_string();
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        cutover(&all, env)
    }

    /// Starts `cutover serve` (nameserver and scheduler) and waits until it
    /// holds its port and answers; panics with its log when it exits, finds
    /// its port taken or does not answer within [`SERVE_LIMIT`].
    pub fn serve(&self, env: &[(&str, &str)]) -> Guard {
        let (mut guard, bound) = self.start_serve(env);
        if let Err(e) = bound {
            panic!(
                "cutover serve did not start on {} (the site's port, named by its migrations, cannot change): {e}",
                self.addr
            );
        }
        let deadline = Instant::now() + SERVE_LIMIT;
        while lookup(self.addr, "example.test.", RecordType::SOA, false).is_err() {
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!("cutover serve exited ({status}); log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "cutover serve did not answer within {SERVE_LIMIT:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        guard
    }

    /// Starts `cutover serve` and waits until it holds the site's port or
    /// exits. A start that found the port in use is made again on the same
    /// port (the site's migrations name it), up to [`SERVE_STARTS`] times:
    /// the port was held for this site, so what holds it for a moment is a
    /// copy of the test's own socket, inherited by a child another test
    /// thread was starting (a forked child keeps the parent's descriptors
    /// until it executes its program). Returns the last start and how it
    /// went: bound, or why not (a serve that exited for another reason,
    /// e.g. at a crash point, is the caller's to judge).
    pub fn start_serve(&self, env: &[(&str, &str)]) -> (Guard, Result<(), StartError>) {
        let mut attempt = 1;
        loop {
            let from = log_length(&self.log_path());
            let mut guard = self.spawn_serve(env);
            let bound = wait_bound_from(
                "cutover serve",
                &mut guard.child,
                &Socket::dns(self.addr),
                &self.log_path(),
                from,
            );
            match bound {
                Err(StartError::InUse(_)) if attempt < SERVE_STARTS => {
                    let _ = guard.child.kill();
                    let _ = guard.child.wait();
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                bound => return (guard, bound),
            }
        }
    }

    /// Where `cutover serve` logs (appended to by every start).
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// Lets the site's ports go, for a serve about to start (a second call
    /// does nothing): every start of serve calls this, also one the test
    /// spawns itself (e.g. under strace).
    pub fn let_ports_go(&self) {
        for port in &self.held {
            port.release();
        }
    }

    /// Starts `cutover serve` without waiting for it (the site's port,
    /// held until now, is let go just before).
    pub fn spawn_serve(&self, env: &[(&str, &str)]) -> Guard {
        self.let_ports_go();
        let log = self.log_path();
        let mut command = Command::new(env!("CARGO_BIN_EXE_cutover"));
        command
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            );
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("cutover serve runs");
        Guard {
            child,
            what: "cutover serve",
        }
    }

    /// What `cutover serve` logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Writes a migration file into the site's folder and returns its path.
    pub fn migration_file(&self, text: &str) -> String {
        let path = self.dir.path().join("move-web.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

/// Waits until the child exits (up to `limit`), else panics.
pub fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One query over UDP; the addresses (A) or the SOA serial (as an address
/// of no meaning is not returned: SOA answers give `serial` in the TTL slot).
pub fn lookup(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    recursion: bool,
) -> Result<Vec<(RData, u32)>, String> {
    let mut query = Message::new(fastid(), MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = recursion;
    query.add_query(Query::query(
        Name::from_str(name).map_err(|e| e.to_string())?,
        rtype,
    ));
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    // From loopback to loopback; elsewhere (a network namespace's address)
    // from whatever address routes there.
    let from = if server.ip().is_loopback() {
        "127.0.0.1:0"
    } else {
        "0.0.0.0:0"
    };
    let socket = UdpSocket::bind(from).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    socket.send_to(&bytes, server).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    let len = socket
        .recv(&mut buf)
        .map_err(|e| format!("no answer from {server}: {e}"))?;
    let response = Message::from_vec(&buf[..len]).map_err(|e| e.to_string())?;
    let answers: Vec<(RData, u32)> = response
        .answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| (r.data.clone(), r.ttl))
        .collect();
    if answers.is_empty() {
        return Err(format!(
            "{server} gave no {rtype} for {name}: {:?}",
            response.metadata.response_code
        ));
    }
    Ok(answers)
}

/// The IPv4 address and TTL of `name` A at `server`.
pub fn address(server: SocketAddr, name: &str, recursion: bool) -> Result<(IpAddr, u32), String> {
    let answers = lookup(server, name, RecordType::A, recursion)?;
    match answers.first() {
        Some((RData::A(a), ttl)) => Ok((IpAddr::V4(a.0), *ttl)),
        _ => Err(format!("{server}: no A record for {name}")),
    }
}

/// A query ID from the clock.
fn fastid() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos >> 8) as u16 ^ (nanos as u16)
}

/// One request of the client.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When it started, from the client's start.
    pub at: Duration,
    /// What the authoritative server (cutover) answered for www right then.
    pub authoritative: Option<IpAddr>,
    /// What the cache (Unbound) answered, with the TTL left.
    pub resolved: Result<(IpAddr, u32), String>,
    /// Which server answered `GET /` ("old"/"new"), or what failed.
    pub served_by: Result<String, String>,
}

/// A client resolving www through a cache and requesting every 50 ms, on a
/// thread of its own; it also asks the authoritative server each time, to
/// date the switch.
pub struct Client {
    /// When it started.
    pub start: Instant,
    /// Everything it saw.
    samples: Arc<Mutex<Vec<Sample>>>,
    /// Set to stop it.
    stop: Arc<AtomicBool>,
    /// The loop.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    /// Starts requesting `http://www.example.test:PORT/`, resolving through `cache`.
    pub fn start(cache: SocketAddr, authority: SocketAddr, port: u16) -> Client {
        Client::start_in(cache, authority, port, || {})
    }

    /// [`Client::start`] whose thread first runs `enter` (e.g. moves itself
    /// into a network namespace, where it then opens every socket).
    pub fn start_in(
        cache: SocketAddr,
        authority: SocketAddr,
        port: u16,
        enter: impl FnOnce() + Send + 'static,
    ) -> Client {
        let start = Instant::now();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, flag) = (Arc::clone(&samples), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            enter();
            let name = "www.example.test.";
            while !flag.load(Ordering::SeqCst) {
                let tick = Instant::now();
                let authoritative = address(authority, name, false).ok().map(|(a, _)| a);
                let resolved = address(cache, name, true);
                let served_by = match &resolved {
                    Ok((ip, _)) => get(SocketAddr::new(*ip, port), "www.example.test", "/")
                        .and_then(|(status, body)| {
                            if status == 200 {
                                Ok(body)
                            } else {
                                Err(format!("HTTP {status}"))
                            }
                        }),
                    Err(e) => Err(format!("resolution failed: {e}")),
                };
                seen.lock().unwrap().push(Sample {
                    at: tick - start,
                    authoritative,
                    resolved,
                    served_by,
                });
                let spent = tick.elapsed();
                if spent < Duration::from_millis(50) {
                    std::thread::sleep(Duration::from_millis(50) - spent);
                }
            }
        });
        Client {
            start,
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// A copy of what it saw so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// Stops it and returns everything it saw.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.samples()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The first moment the authoritative server answered `to` for www, after
/// `after`.
pub fn switched_at(samples: &[Sample], to: IpAddr, after: Duration) -> Option<Duration> {
    samples
        .iter()
        .find(|s| s.at >= after && s.authoritative == Some(to))
        .map(|s| s.at)
}

/// The last sample served by `name` before `until`, if any.
pub fn last_served_by(samples: &[Sample], name: &str, until: Duration) -> Option<Duration> {
    samples
        .iter()
        .rev()
        .find(|s| s.at < until && s.served_by.as_deref() == Ok(name))
        .map(|s| s.at)
}

/// Every failed request, described.
pub fn failures(samples: &[Sample]) -> Vec<String> {
    samples
        .iter()
        .filter_map(|s| {
            s.served_by
                .as_ref()
                .err()
                .map(|e| format!("at {:.2?}: {e}", s.at))
        })
        .collect()
}

/// Waits until `predicate` holds on the client's samples, up to `limit`.
pub fn wait_for(
    client: &Client,
    limit: Duration,
    what: &str,
    predicate: impl Fn(&[Sample]) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        if predicate(&client.samples()) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server settings of the clients' cache: nothing fetched ahead,
/// nothing served past its TTL.
const CACHE: &str = "    prefetch: no\n    serve-expired: no\n";

/// Starts Unbound stubbing example.test to `authority`, on a runtime of its
/// own (the launcher is async), and waits until it answers through it.
pub fn unbound(runtime: &tokio::runtime::Runtime, authority: SocketAddr) -> Unbound {
    runtime.block_on(Unbound::start(
        &[("example.test", authority)],
        CACHE,
        "example.test.",
    ))
}

/// [`unbound`] with its remote control open ([`Unbound::control`]),
/// returned once it holds its ports: `authority` need not run yet (a
/// config naming the control port can be written first);
/// [`Unbound::wait_answering`] waits for the stub later.
pub fn unbound_controlled(runtime: &tokio::runtime::Runtime, authority: SocketAddr) -> Unbound {
    runtime.block_on(Unbound::start_controlled(
        &[("example.test", authority)],
        CACHE,
        None,
    ))
}

/// A path as a string argument.
pub fn arg(path: &Path) -> String {
    path.display().to_string()
}

/// The migration file of the end-to-end tests: www from old to new, TTL 2
/// during the move, the new server's /healthz checked, verification through
/// cutover (authority) and the cache (resolver).
pub fn migration_text(authority: SocketAddr, resolver: SocketAddr, web_port: u16) -> String {
    format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n\
         [[move]]\nfrom = \"{OLD}\"\nto = \"{NEW}\"\n\
         [ttl]\nduring = 2\n\
         [[check]]\nhttp = \"http://www.example.test:{web_port}/healthz\"\nexpect_status = 200\n\
         [schedule]\nobserve = \"3s\"\nmargin = \"1s\"\n\
         [verify]\nauthorities = [\"{authority}\"]\nresolvers = [\"{resolver}\"]\ntries = 3\ninterval = \"1s\"\n"
    )
}

/// `migrate status ID --json`: the migration's summary.
pub fn status(site: &Site, id: i64) -> serde_json::Value {
    let out = ok(
        "migrate status",
        site.run(&["migrate", "status", &id.to_string(), "--json"], &[]),
    );
    let all: serde_json::Value = serde_json::from_str(&out).expect("status --json is JSON");
    all[0].clone()
}

/// Waits until the migration's state is one of `states` (up to `limit`); returns it.
pub fn wait_state(site: &Site, id: i64, states: &[&str], limit: Duration) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let summary = status(site, id);
        if states.iter().any(|s| summary["state"] == *s) {
            return summary;
        }
        assert!(
            Instant::now() < deadline,
            "expected migration {id} to reach {states:?} within {limit:?}, it is {}; serve log:\n{}",
            summary,
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `migrate start FILE --json`: the new migration's id.
pub fn start(site: &Site, file: &str) -> i64 {
    let out = ok(
        "migrate start",
        site.run(&["migrate", "start", file, "--json"], &[]),
    );
    let started: serde_json::Value = serde_json::from_str(&out).expect("start --json is JSON");
    started["id"].as_i64().expect("start --json has an id")
}

/// `migrate start FILE --json --force` while `cutover serve` is down on
/// purpose (nothing may run before the test starts it): the authority and
/// resolver of the file do not answer yet, which `start` refuses without
/// `--force`. Returns the new migration's id.
pub fn start_before_serve(site: &Site, file: &str) -> i64 {
    let out = ok(
        "migrate start --force",
        site.run(&["migrate", "start", file, "--json", "--force"], &[]),
    );
    let started: serde_json::Value = serde_json::from_str(&out).expect("start --json is JSON");
    started["id"].as_i64().expect("start --json has an id")
}

/// `migrate show ID --json`: the migration and its audit log.
pub fn show(site: &Site, id: i64) -> serde_json::Value {
    let out = ok(
        "migrate show",
        site.run(&["migrate", "show", &id.to_string(), "--json"], &[]),
    );
    serde_json::from_str(&out).expect("show --json is JSON")
}

/// The steps named `kind` of a migration shown by `migrate show --json`.
pub fn steps<'a>(shown: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    shown["migration"]["steps"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["kind"] == kind).collect())
        .unwrap_or_default()
}

/// Asserts that the migration `shown` was rolled back by `stale`'s resolver
/// holding `old`: its verify_switch looked twice (retrying), then failed,
/// each time naming `stale` and what it saw and none of `others`. Returns
/// those steps.
pub fn assert_rolled_back_by<'a>(
    shown: &'a serde_json::Value,
    stale: &str,
    old: &str,
    others: &[&str],
) -> Vec<&'a serde_json::Value> {
    assert_eq!(
        shown["migration"]["summary"]["state"], "rolled_back",
        "expected {stale}'s stale answer to roll the migration back: {shown:#}"
    );
    let verify = steps(shown, "verify_switch");
    let outcomes: Vec<&str> = verify
        .iter()
        .filter_map(|s| s["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["retrying", "retrying", "failed"],
        "expected two looks that kept it waiting, then the failure: {shown:#}"
    );
    for step in &verify {
        let reason = step["reason"].as_str().unwrap_or("");
        assert!(
            reason.contains(&format!(
                "from {stale} answers www.example.test. A with {old}"
            )),
            "expected {stale} and the stale value it saw named: {reason}"
        );
        for other in others {
            assert!(
                !reason.contains(&format!("from {other}")),
                "expected only {stale} named, {other} is too: {reason}"
            );
        }
    }
    verify
}
