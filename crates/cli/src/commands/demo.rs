//! `cutover demo`: the tour, on loopback, with nothing to install.
//!
//! A fresh store in a temporary folder receives the sample zone; cutover's
//! nameserver serves it on a free 127.0.0.1 port; then the two record changes
//! of a move (lower the TTL, switch the address) are made through the store,
//! exactly as `cutover record set` makes them, and each time the demo shows
//! the running server answering the new data, with the serial risen and the
//! journal entry. The migration engine will grow this into the full
//! migration (waits computed from TTLs, checks, rollback).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arc_swap::ArcSwap;
use cutover_nameserver::server::{spawn, ServerConfig};
use cutover_nameserver::Catalog;
use cutover_store::Store;
use cutover_zone::{zonefile, Name, Rdata, RecordType, Rrset, Serial, Zone};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::RData;

use super::{diff_lines, serve};

/// The sample zone the demo serves.
const SAMPLE_ZONE: &str = include_str!("../../../../examples/example.com.zone");

/// The address the sample's `www` moves to.
const NEW_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);

/// Runs the tour and removes its temporary folder.
pub fn run() -> anyhow::Result<()> {
    let dir = TempDir::new()?;
    let result = tour(&dir.0);
    drop(dir);
    result
}

/// The steps of the tour.
fn tour(dir: &std::path::Path) -> anyhow::Result<()> {
    let origin = Name::from_str("example.com.")?;
    let www = Name::from_str("www.example.com.")?;

    step(1, "import the sample zone into a fresh store");
    let parsed = zonefile::parse_str(SAMPLE_ZONE, "examples/example.com.zone", None)?;
    let store_path = dir.join("cutover.db");
    let store = Store::open(&store_path)?;
    store.create_zone(&parsed.zone, "demo: imported the sample zone")?;
    println!(
        "   {} records, serial {}, stored in {}",
        parsed.zone.record_count(),
        parsed.zone.serial().unwrap_or(Serial(0)),
        store_path.display()
    );

    step(2, "serve it from cutover's nameserver on loopback");
    let catalog = Arc::new(ArcSwap::from_pointee(Catalog::empty()));
    let mut served = Default::default();
    serve::reload(&store, &catalog, &mut served);
    let server = spawn(
        ServerConfig {
            listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
            udp_workers: 1,
            ..ServerConfig::default()
        },
        Arc::clone(&catalog),
    )
    .context("cannot start the nameserver")?;
    let addr = *server
        .local_addrs()
        .first()
        .context("the nameserver has no address")?;
    println!("   listening on {addr} (UDP and TCP)");
    let watcher = Watcher::start(store_path.clone(), Arc::clone(&catalog));
    let before = ask(addr, &www, RecordType::A)?;
    println!("   dig @{} -p {} www.example.com A", addr.ip(), addr.port());
    print_answer(&before);

    step(
        3,
        "lower the TTL of www to 60 s ahead of the move (72 h ahead, in real life)",
    );
    let lowered = change(&store, &origin, &www, 60, None)?;
    let seen = wait_for_serial(addr, &origin, lowered)?;
    println!("   the running server answered serial {lowered} after {seen:?}");
    print_answer(&ask(addr, &www, RecordType::A)?);

    step(4, "switch www to the new server's address");
    let switched = change(&store, &origin, &www, 60, Some(NEW_ADDRESS))?;
    let seen = wait_for_serial(addr, &origin, switched)?;
    println!("   the running server answered serial {switched} after {seen:?}");
    let after = ask(addr, &www, RecordType::A)?;
    print_answer(&after);
    if !after
        .iter()
        .any(|(_, _, data)| data == &NEW_ADDRESS.to_string())
    {
        bail!("the server does not answer the new address for www");
    }

    step(5, "the journal: every version, as diffs");
    for version in store.versions(&origin)? {
        println!(
            "   serial {:>10}  +{} -{}  {}",
            version.serial, version.added, version.removed, version.comment
        );
    }

    watcher.stop();
    server.shutdown();
    println!(
        "\ndone: www.example.com moved to {NEW_ADDRESS}; every change is journaled and was \
         answered by the running server without a restart."
    );
    Ok(())
}

/// Prints a numbered step heading.
fn step(n: u32, what: &str) {
    println!("\n[{n}] {what}");
}

/// Sets www's A RRset (address and TTL) through the store, as `cutover record
/// set` does, prints the diff and returns the new serial.
fn change(
    store: &Store,
    origin: &Name,
    owner: &Name,
    ttl: u32,
    address: Option<Ipv4Addr>,
) -> anyhow::Result<Serial> {
    let owner = owner.clone();
    let diff = store.edit(origin, "demo: move www", move |zone: &mut Zone| {
        let mut rrset = match address {
            Some(addr) => Rrset::new(ttl, Rdata::a(addr)),
            None => zone.get(&owner, RecordType::A).cloned().unwrap_or_default(),
        };
        rrset.ttl = ttl;
        zone.set_rrset(&owner, RecordType::A, rrset)
            .map_err(Box::new)
    })?;
    print!("{}", indent(&diff_lines(&diff)));
    Ok(diff.to)
}

/// Indents every line by three spaces.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("   {l}\n")).collect()
}

/// Queries until the server answers `serial` for the SOA; returns how long
/// that took. Gives up after five seconds.
fn wait_for_serial(addr: SocketAddr, origin: &Name, serial: Serial) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let answer = ask(addr, origin, RecordType::SOA)?;
        if answer
            .iter()
            .any(|(_, _, data)| data.split_whitespace().nth(2) == Some(serial.to_string().as_str()))
        {
            return Ok(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("the server did not pick up serial {serial} within 5 s")
}

/// One answer record: owner, TTL, data in zone-file form.
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

/// Prints answer records like dig does.
fn print_answer(answer: &[AnswerLine]) {
    for (name, ttl, data) in answer {
        println!("   {name:<20} {ttl:>6} IN A {data}");
    }
}

/// A query ID that differs between runs.
fn rand_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id()) as u16
}

/// The reload watcher of `cutover serve`, on a thread of its own, over a
/// second connection to the store (as a separate process would see it).
struct Watcher {
    stop: Arc<AtomicBool>,
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
                        serve::reload(&store, &catalog, &mut served);
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
