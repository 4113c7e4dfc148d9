//! `cutover demo`: a whole migration on one machine in about half a minute,
//! with nothing to install, each step printed as it happens with its
//! evidence: the web site moves, and the mail with it (the seed's backup
//! MX: mail taken while the old mail server is down, held through the
//! switch, delivered to the new server once it is verified).
//!
//! ```text
//!  temp store ◀── sample zone (www, mail, apex on 127.0.0.2; TTL 10 s)
//!      │ Server::start (the daemon of `cutover serve`, its config built in memory;
//!      │ no scheduler: the demo runs its migration in the foreground, as `migrate run` does)
//!      ▼
//!  cutover's nameserver on 127.0.0.1:P ◀── a client: resolve www (kept for its TTL), GET / every 200 ms
//!      ▲                                         │
//!      │ records changed by the runner           ▼
//!  migration runner (ticks) ── checks ──▶ old 127.0.0.2 (web; mail down) / new 127.0.0.3 (web + mail)
//!      │ hold · retarget · release
//!      ▼
//!  cutover's relay (backup MX) on 127.0.0.1:M ◀── a sender: one message every 400 ms
//!      └── queued while 127.0.0.2 is down ──▶ delivered to 127.0.0.3 after the switch is verified
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
use cutover_migrate::checks::{observe, ProbeChecks};
use cutover_migrate::{plan, render, MigrationFile, Migrations, State};
use cutover_server::config::Config;
use cutover_server::{Options, Server};
use cutover_store::Store;
use cutover_zone::{zonefile, Name, RecordType};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::RData;
use jiff::Timestamp;

use self::stage::{fetch, Host, Stage, NEW, OLD};
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
         interval = \"1s\"\n\n\
         [mail]                    # the backup MX holds, retargets and releases example.com's mail\n\
         domain = \"example.com\"\n\
         from = \"{OLD}:{smtp_port}\"\n\
         to = \"{NEW}:{smtp_port}\"\n"
    )
}

/// The demo's config: the nameserver on a port of loopback the system
/// picks, and the relay (backup MX) for example.com, delivering to the old
/// mail server, which is down; retries scaled down like the TTLs.
fn config_text(store: &Path, spool: &Path, smtp_port: u16) -> String {
    format!(
        "store = {store:?}\n\
         [dns]\n\
         listen = [\"127.0.0.1:0\"]\n\
         udp_workers = 1\n\
         [mail]\n\
         listen = [\"127.0.0.1:0\"]\n\
         hostname = \"mx2.example.com\"\n\
         spool = {spool:?}\n\
         first_retry = \"500ms\"\n\
         max_retry = \"1s\"\n\
         connect_timeout = \"1s\"\n\
         [[mail.domain]]\n\
         name = \"example.com\"\n\
         destination = \"{OLD}:{smtp_port}\"\n\
         recipients = [\"@example.com\"]\n"
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
    // The stage first: the relay's destination is the old server's mail port.
    let stage = Stage::start()?;
    let config = Config::parse(
        &config_text(&store_path, &dir.join("spool"), stage.smtp_port),
        "the demo's config",
    )?;
    let mail_config = config
        .mail
        .clone()
        .context("the demo's config has a [mail] section")?;
    // The daemon of `cutover serve`: nameserver, primary, reload watcher
    // (every 50 ms rather than 250, for the demo's short TTLs) and relay.
    let server = Server::start_with(
        &config,
        None,
        &Options {
            watch_interval: Duration::from_millis(50),
            scheduler: false,
        },
    )?;
    let ns = *server
        .dns_addrs()
        .first()
        .context("the nameserver has no address")?;
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
    for host in [&stage.old, &stage.new] {
        let body = fetch(host.address.into(), stage.web_port, "www.example.com")?;
        let mail = match host.name {
            "old" => format!("its mail server (port {}) is down", stage.smtp_port),
            _ => format!("its mail server takes mail on port {}", stage.smtp_port),
        };
        println!(
            "   {:<3} {}: web on port {} says {body:?}; {mail}",
            host.name, host.address, stage.web_port
        );
    }
    let client = Client::start(ns, stage.web_port);
    println!(
        "   a client now requests www every 200 ms, keeping each answer of the nameserver for its TTL"
    );

    heading(
        "the backup MX: cutover's relay takes example.com's mail while the old mail server is down",
    );
    let relay_addr = *server
        .smtp_addrs()
        .first()
        .context("the relay has no address")?;
    let queue = cutover_mail::MailControl::new(mail_config.spool.clone());
    println!(
        "   relay on {relay_addr}, destination {OLD}:{} (the old mail server: nothing answers there)",
        stage.smtp_port
    );
    let sender = Sender::start(relay_addr);
    println!("   a sender now mails someone@example.com through it every 400 ms");
    let mail = MailView {
        sender: &sender,
        queue: &queue,
        new: &stage.new,
    };

    heading("the migration file");
    let text = migration_text(ns, stage.web_port, stage.smtp_port);
    for line in text.lines() {
        println!("   | {line}");
    }
    let file = MigrationFile::parse(&text, "demo.toml")?;

    heading("cutover migrate plan: the timeline, each wait explained");
    // The demo lists no caches to flush.
    let site = cutover_server::scheduler::Site {
        mail: Some(mail_config.clone()),
        ..cutover_server::scheduler::Site::default()
    };
    let wiring = Wiring::new(&file, &store_path, &site)?;
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
    let state = drive(&migrations, &wiring, id, &client, &mail)?;

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
    let mail_tally = mail.finish();
    println!(
        "   mail: {} sent (each answered 250 by the backup MX), {} delivered to the new server, {} lost{}",
        mail_tally.sent,
        mail_tally.delivered,
        mail_tally.sent.saturating_sub(mail_tally.delivered),
        match mail_tally.refused {
            0 => String::new(),
            n => format!(" ({n} refused by the relay, never accepted)"),
        }
    );
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
    if mail_tally.sent == 0 || mail_tally.delivered < mail_tally.sent {
        bail!(
            "{} of {} accepted messages did not reach the new mail server",
            mail_tally.sent.saturating_sub(mail_tally.delivered),
            mail_tally.sent
        );
    }
    println!(
        "\ndone in {:.0} s: example.com moved from {OLD} to {NEW} without a failed request \
         and without losing a message; every change is in the audit log.",
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
    mail: &MailView<'_>,
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
            println!("      mail now: {}", mail.now());
        }
        let runs_on =
            !report.state.is_final() && !matches!(report.state, State::Paused | State::RolledBack);
        let Some(due) = report.next_due.filter(|_| runs_on) else {
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

/// What the sender counted.
#[derive(Clone, Copy, Debug, Default)]
struct MailTally {
    /// Messages the relay answered 250 to (stored, fsynced).
    sent: u64,
    /// Messages the relay refused or that failed before 250.
    refused: u64,
    /// Messages the new mail server took.
    delivered: u64,
}

/// A sender mailing someone@example.com through the relay every 400 ms.
struct Sender {
    /// Accepted (250 after DATA), and refused or failed.
    counts: Arc<[AtomicU64; 2]>,
    /// Set to stop it.
    stop: Arc<AtomicBool>,
    /// The loop.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sender {
    /// Starts sending to the relay at `relay`.
    fn start(relay: SocketAddr) -> Sender {
        let counts: Arc<[AtomicU64; 2]> = Arc::new(Default::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (Arc::clone(&counts), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !s.load(Ordering::SeqCst) {
                n += 1;
                match send_one(relay, n) {
                    Ok(()) => c[0].fetch_add(1, Ordering::SeqCst),
                    Err(_) => c[1].fetch_add(1, Ordering::SeqCst),
                };
                std::thread::sleep(Duration::from_millis(400));
            }
        });
        Sender {
            counts,
            stop,
            thread: Some(thread),
        }
    }

    /// (accepted, refused) so far.
    fn counts(&self) -> (u64, u64) {
        (
            self.counts[0].load(Ordering::SeqCst),
            self.counts[1].load(Ordering::SeqCst),
        )
    }

    /// Stops sending; returns (accepted, refused).
    fn stop(&mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.counts()
    }
}

/// One message through the relay; `Ok` only on the 250 after DATA.
fn send_one(relay: SocketAddr, n: u64) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect_timeout(&relay, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = stream.try_clone()?;
    let mut replies = BufReader::new(stream);
    let mut expect = |code: &str| -> anyhow::Result<()> {
        loop {
            let mut line = String::new();
            replies.read_line(&mut line)?;
            if line.len() < 4 || !line.starts_with(code) {
                bail!("expected {code}, saw {line:?}");
            }
            if line.as_bytes()[3] == b' ' {
                return Ok(());
            }
        }
    };
    expect("220")?;
    for (command, code) in [
        ("EHLO sender.example.net".to_string(), "250"),
        ("MAIL FROM:<shop@sender.example.net>".to_string(), "250"),
        ("RCPT TO:<someone@example.com>".to_string(), "250"),
        ("DATA".to_string(), "354"),
    ] {
        write!(out, "{command}\r\n")?;
        expect(code)?;
    }
    write!(
        out,
        "From: shop@sender.example.net\r\nTo: someone@example.com\r\n\
         Subject: order {n}\r\n\r\nOrder {n}, sent during the move.\r\n.\r\n"
    )?;
    expect("250")?;
    let _ = write!(out, "QUIT\r\n");
    Ok(())
}

/// What the demo shows of the mail: the sender, the relay's queue, and the
/// new mail server.
struct MailView<'a> {
    /// The sender.
    sender: &'a Sender,
    /// The relay's controls (its queue).
    queue: &'a cutover_mail::MailControl,
    /// The new server (its mail counter).
    new: &'a Host,
}

impl MailView<'_> {
    /// The mail in a sentence: sent, queued (held), delivered.
    fn now(&self) -> String {
        let (sent, _) = self.sender.counts();
        let delivered = self.new.mail_received.load(Ordering::SeqCst);
        match self.queue.queue() {
            Ok(queue) => {
                let held = queue.iter().filter(|m| m.held).count();
                format!(
                    "{sent} accepted by the backup MX, {} queued ({held} held), {delivered} delivered to the new server",
                    queue.len()
                )
            }
            Err(error) => format!(
                "{sent} accepted by the backup MX, queue unreadable ({error}), {delivered} delivered"
            ),
        }
    }

    /// Stops the sender, waits (up to 20 s) for the queue to drain to the
    /// new server, and counts.
    fn finish(&self) -> MailTally {
        // The sender is behind a shared reference: stop it through its flag.
        self.sender.stop.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(500));
        let (sent, refused) = self.sender.counts();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let delivered = self.new.mail_received.load(Ordering::SeqCst);
            if delivered >= sent || Instant::now() > deadline {
                return MailTally {
                    sent,
                    refused,
                    delivered,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop();
    }
}
