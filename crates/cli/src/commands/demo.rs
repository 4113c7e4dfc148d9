//! `cutover demo`: a whole migration on one machine in about half a minute,
//! with nothing to install, each step printed as it happens with its
//! evidence.
//!
//! ```text
//!  temp store ◀── sample zone (www, mail, apex on 127.0.0.2; TTL 10 s)
//!      │ reload watcher (as in `cutover serve`)
//!      ▼
//!  cutover's nameserver on 127.0.0.1:P ◀── a client: resolve www (kept for its TTL), GET / every 200 ms
//!      ▲                                         │
//!      │ records changed by the runner           ▼
//!  migration runner (ticks) ── checks ──▶ old 127.0.0.2 / new 127.0.0.3 (web + SMTP)
//! ```
//!
//! Times are scaled down: a TTL of an hour becomes 10 s, the 60 s TTL of
//! the move becomes 2 s, a day of observation becomes 5 s. The steps, the
//! waits computed from the TTLs, the checks and the audit log are exactly
//! those of a real migration.

mod stage;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arc_swap::ArcSwap;
use cutover_migrate::checks::{observe, ProbeChecks};
use cutover_migrate::{plan, render, MigrationFile, Migrations, State};
use cutover_nameserver::server::{spawn, ServerConfig};
use cutover_nameserver::Catalog;
use cutover_store::Store;
use cutover_zone::{zonefile, Name, RecordType};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::RData;
use jiff::Timestamp;

use self::stage::{fetch, Stage, NEW, OLD};
use super::migrate::{print_audit, print_step};
use cutover_server::scheduler::Wiring;

/// The demo's zone: the service on the old address, with the TTL of an
/// hour scaled down to 10 s.
fn zone_text() -> String {
    format!(
        "$ORIGIN example.com.\n$TTL 3600\n\
         @       IN SOA ns1 hostmaster 2026112601 3600 600 1209600 300\n\
         @       IN NS   ns1\n\
         @       IN MX   10 mail\n\
         @    10 IN A    {OLD}\n\
         @    10 IN TXT  \"v=spf1 mx ip4:{OLD} -all\"\n\
         ns1     IN A    127.0.0.1\n\
         www  10 IN A    {OLD}\n\
         mail 10 IN A    {OLD}\n\
         shop    IN CNAME www\n"
    )
}

/// The demo's migration file, scaled down.
fn migration_text(ns: SocketAddr, web_port: u16, smtp_port: u16) -> String {
    format!(
        "version = 1\n\
         zone = \"example.com.\"\n\
         provider = {{ kind = \"embedded\" }}\n\n\
         [[move]]                  # every A record holding the old address\n\
         from = \"{OLD}\"\n\
         to = \"{NEW}\"\n\
         spf = true                # and the SPF term naming it\n\n\
         [ttl]\n\
         during = 2                # 60 s in real life\n\
         after = \"original\"\n\n\
         [[check]]\n\
         http = \"http://www.example.com:{web_port}/healthz\"\n\
         expect_status = 200\n\n\
         [[check]]\n\
         smtp = \"mail.example.com:{smtp_port}\"\n\n\
         [schedule]\n\
         switch_at = \"earliest\"\n\
         observe = \"5s\"            # 24 h in real life\n\
         margin = \"1s\"\n\n\
         [verify]\n\
         authorities = [\"{ns}\"]\n\
         resolvers = [\"{ns}\"]\n\
         tries = 3\n\
         interval = \"1s\"\n"
    )
}

/// Runs the demo and removes its temporary folder.
pub fn run() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let result = tour(&dir.0);
    drop(dir);
    result
}

/// The steps of the demo.
fn tour(dir: &Path) -> anyhow::Result<()> {
    let origin = Name::from_str("example.com.")?;
    let began = Instant::now();

    heading("a zone in a fresh store, served by cutover's nameserver");
    let parsed = zonefile::parse_str(&zone_text(), "demo zone", None)?;
    let store_path = dir.join("cutover.db");
    let store = Store::open(&store_path)?;
    store.create_zone(&parsed.zone, "demo: the zone before the move")?;
    let catalog = Arc::new(ArcSwap::from_pointee(Catalog::empty()));
    let mut served = Default::default();
    cutover_server::reload::reload(&store, &catalog, &mut served);
    let server = spawn(
        ServerConfig {
            listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
            udp_workers: 1,
            ..ServerConfig::default()
        },
        Arc::clone(&catalog),
    )
    .context("cannot start the nameserver")?;
    let ns = *server
        .local_addrs()
        .first()
        .context("the nameserver has no address")?;
    let watcher = Watcher::start(store_path.clone(), Arc::clone(&catalog));
    println!(
        "   store {}, nameserver on {ns} (UDP and TCP)",
        store_path.display()
    );
    for name in ["example.com.", "www.example.com.", "mail.example.com."] {
        for (owner, ttl, data) in ask(ns, &Name::from_str(name)?, RecordType::A)? {
            println!("   {owner:<20} {ttl:>5} IN A {data}");
        }
    }

    heading("an old and a new server on two loopback addresses");
    let stage = Stage::start()?;
    for host in [&stage.old, &stage.new] {
        let body = fetch(host.address.into(), stage.web_port, "www.example.com")?;
        println!(
            "   {:<3} {}: web on port {} says {body:?}, SMTP on port {}",
            host.name, host.address, stage.web_port, stage.smtp_port
        );
    }
    let client = Client::start(ns, stage.web_port);
    println!(
        "   a client now requests www every 200 ms, keeping each answer of the nameserver for its TTL"
    );

    heading("the migration file");
    let text = migration_text(ns, stage.web_port, stage.smtp_port);
    for line in text.lines() {
        println!("   | {line}");
    }
    let file = MigrationFile::parse(&text, "demo.toml")?;

    heading("cutover migrate plan: the timeline, each wait explained");
    // The demo lists no caches to flush.
    let wiring = Wiring::new(
        &file,
        &store_path,
        &cutover_server::scheduler::Site::default(),
    )?;
    let zone = wiring.provider().read(&origin)?;
    let checks = ProbeChecks::new();
    let now = Timestamp::now();
    let planned = plan(&file, &zone, &observe(&checks, &file, &zone, now), now)?;
    for line in render(&planned).lines() {
        println!("   {line}");
    }

    heading("cutover migrate start, then run: each step as it happens");
    let migrations = Migrations::open(&store_path)?;
    let id = migrations.start("demo.toml", &text, &planned, Timestamp::now())?;
    println!("   migration {id} stored with its plan");
    let state = drive(&migrations, &wiring, id, &client, &stage)?;

    heading("the final report");
    let summary = migrations.status(id)?;
    println!(
        "   migration {id}: {} (records {})",
        summary.state, summary.phase
    );
    println!("   audit log, every record change with its old and new value:");
    print_audit(&migrations.audit(id)?);
    println!("   the zone's journal:");
    for version in store.versions(&origin)? {
        println!(
            "     serial {:>10}  +{} -{}  {}",
            version.serial, version.added, version.removed, version.comment
        );
    }
    let tally = client.stop();
    println!(
        "   the client made {} requests during the move: {} served by the old server, {} by the new, {} failed",
        tally.total, tally.old, tally.new, tally.failed
    );
    let last = fetch_through(ns, stage.web_port)?;
    println!("   now: www resolves to {} and {last:?}", last_address(ns)?);
    watcher.stop();
    server.shutdown();
    drop(stage);
    if state != State::Done {
        bail!(
            "the migration ended {state}: {}",
            summary.reason.unwrap_or_default()
        );
    }
    if tally.failed > 0 {
        bail!("{} requests failed during the move", tally.failed);
    }
    if !last.contains("new") {
        bail!("www is not served by the new server at the end: {last:?}");
    }
    println!(
        "\ndone in {:.0} s: example.com moved from {OLD} to {NEW} without a failed request; \
         every change is in the audit log.",
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Ticks the migration until it ends, printing each step with its evidence
/// and what a client sees after it; returns the final state.
fn drive(
    migrations: &Migrations,
    wiring: &Wiring,
    id: i64,
    client: &Client,
    stage: &Stage,
) -> anyhow::Result<State> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let report = wiring.tick(migrations, id)?;
        for step in &report.did {
            print_step(step);
        }
        if !report.did.is_empty() {
            // The nameserver reloads within 50 ms and the client asks every 200 ms.
            std::thread::sleep(Duration::from_millis(300));
            let (seen, served) = client.last();
            println!("      a client now: {seen} → {served}");
        }
        let runs_on =
            !report.state.is_final() && !matches!(report.state, State::Paused | State::RolledBack);
        let Some(due) = report.next_due.filter(|_| runs_on) else {
            let _ = stage;
            return Ok(report.state);
        };
        if Instant::now() > deadline {
            bail!("the demo's migration did not finish within 2 minutes");
        }
        let wait =
            Duration::try_from(due.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO);
        if wait >= Duration::from_secs(1) {
            println!("   … waiting {:.0} s for the next step", wait.as_secs_f64());
        }
        std::thread::sleep(wait.max(Duration::from_millis(20)));
    }
}

/// Prints a section heading.
fn heading(what: &str) {
    println!("\n== {what}");
}

/// One answer record: owner, TTL, data.
type AnswerLine = (String, u32, String);

/// Sends one query over UDP and returns the answer section.
fn ask(addr: SocketAddr, name: &Name, rtype: RecordType) -> anyhow::Result<Vec<AnswerLine>> {
    let mut query = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    query.add_query(Query::query(name.clone(), rtype));
    let bytes = query.to_vec()?;
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    socket.send_to(&bytes, addr)?;
    let mut buf = [0u8; 4096];
    let len = socket
        .recv(&mut buf)
        .with_context(|| format!("no answer from {addr}"))?;
    let response = Message::from_vec(&buf[..len])?;
    Ok(response
        .answers
        .iter()
        .map(|r| {
            let data = match &r.data {
                RData::A(a) => a.to_string(),
                other => other.to_string(),
            };
            (r.name.to_string(), r.ttl, data)
        })
        .collect())
}

/// www's address at the nameserver.
fn last_address(ns: SocketAddr) -> anyhow::Result<String> {
    let answer = ask(ns, &Name::from_str("www.example.com.")?, RecordType::A)?;
    Ok(answer
        .first()
        .map(|(_, _, a)| a.clone())
        .unwrap_or_default())
}

/// Resolves www at the nameserver and fetches `/` from the address.
fn fetch_through(ns: SocketAddr, port: u16) -> anyhow::Result<String> {
    let address: Ipv4Addr = last_address(ns)?.parse().context("www has no address")?;
    fetch(address.into(), port, "www.example.com")
}

/// A query ID that differs between runs.
fn rand_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id()) as u16
}

/// www's address from the client's cache while its TTL lasts, else from the
/// nameserver (then cached); with what the client saw, in words.
fn resolve(
    ns: SocketAddr,
    cached: &mut Option<(Ipv4Addr, Instant)>,
) -> anyhow::Result<(Ipv4Addr, String)> {
    if let Some((address, until)) = *cached {
        let left = until.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            let seen = format!(
                "www is {address} (cached, {:.1} s left)",
                left.as_secs_f64()
            );
            return Ok((address, seen));
        }
    }
    let answer = ask(ns, &Name::from_str("www.example.com.")?, RecordType::A)?;
    let (_, ttl, data) = answer.first().context("no address for www")?;
    let address: Ipv4Addr = data.parse()?;
    *cached = Some((
        address,
        Instant::now() + Duration::from_secs(u64::from(*ttl)),
    ));
    Ok((
        address,
        format!("www is {address} (asked the nameserver: TTL {ttl})"),
    ))
}

/// What the demo's client counted.
#[derive(Debug, Default)]
struct Tally {
    /// Requests made.
    total: u64,
    /// Served by the old server.
    old: u64,
    /// Served by the new server.
    new: u64,
    /// Failed (resolution, connection or answer).
    failed: u64,
}

/// A client resolving www at the nameserver and requesting `/` every 200 ms.
struct Client {
    /// Counters: total, old, new, failed.
    counts: Arc<[AtomicU64; 4]>,
    /// The last thing it saw: the address with its TTL, and who served it.
    last: Arc<std::sync::Mutex<(String, String)>>,
    /// Set to stop it.
    stop: Arc<AtomicBool>,
    /// The loop.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    /// Starts the client.
    fn start(ns: SocketAddr, port: u16) -> Client {
        let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
        let last = Arc::new(std::sync::Mutex::new((String::new(), String::new())));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, l, s) = (Arc::clone(&counts), Arc::clone(&last), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            // Like a stub resolver with a cache: an answer is kept for its TTL.
            let mut cached: Option<(Ipv4Addr, Instant)> = None;
            while !s.load(Ordering::SeqCst) {
                let result = resolve(ns, &mut cached).and_then(|(address, seen)| {
                    Ok((seen, fetch(address.into(), port, "www.example.com")?))
                });
                c[0].fetch_add(1, Ordering::SeqCst);
                let mut last = l.lock().unwrap_or_else(|e| e.into_inner());
                match result {
                    Ok((seen, body)) => {
                        let slot = if body.contains("old") { 1 } else { 2 };
                        c[slot].fetch_add(1, Ordering::SeqCst);
                        *last = (seen, body);
                    }
                    Err(error) => {
                        c[3].fetch_add(1, Ordering::SeqCst);
                        *last = ("www unreachable".into(), format!("failed: {error:#}"));
                    }
                }
                drop(last);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Client {
            counts,
            last,
            stop,
            thread: Some(thread),
        }
    }

    /// What the client saw last.
    fn last(&self) -> (String, String) {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the client and returns its counts.
    fn stop(mut self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let n = |i: usize| self.counts[i].load(Ordering::SeqCst);
        Tally {
            total: n(0),
            old: n(1),
            new: n(2),
            failed: n(3),
        }
    }
}

/// The reload watcher of `cutover serve`, on a thread of its own, over a
/// second connection to the store (as a separate process would see it).
struct Watcher {
    /// Set to stop it.
    stop: Arc<AtomicBool>,
    /// The loop.
    thread: std::thread::JoinHandle<()>,
}

impl Watcher {
    /// Starts polling the store's generation every 50 ms.
    fn start(path: PathBuf, catalog: Arc<ArcSwap<Catalog>>) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let Ok(store) = Store::open(&path) else {
                return;
            };
            let mut served = Default::default();
            let mut generation = 0;
            while !flag.load(Ordering::Relaxed) {
                if let Ok(now) = store.generation() {
                    if now != generation {
                        generation = now;
                        cutover_server::reload::reload(&store, &catalog, &mut served);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Watcher { stop, thread }
    }

    /// Stops the watcher and waits for it.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// A temporary folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh folder under the system's temporary directory.
    fn new() -> anyhow::Result<TempDir> {
        let path =
            std::env::temp_dir().join(format!("cutover-demo-{}-{}", std::process::id(), rand_id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
