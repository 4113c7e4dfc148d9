//! Ports for the tests, without a race.
//!
//! A port found by binding port 0 and dropping the socket is free only
//! while nobody else binds it: another test's client socket, server or peer
//! can take it before the peer it was meant for starts, and the test fails
//! with "address already in use" (or, worse, talks to the wrong server).
//! Two rules replace that idiom everywhere in the tests:
//!
//! ```text
//!  the test itself serves (a listener in Rust) ── hold_tcp / hold_udp ──▶ bound sockets, passed in
//!
//!  another process must bind (knotd, named, unbound, pdns, dnsmasq,
//!  smtp-sink, cutover serve, the relay binary):
//!    start_on_free_ports(what, |ports| {
//!        let port = ports.pick(&[LOOPBACK]);     ◀── random, free right now,
//!        spawn(port) ─▶ wait_bound(child, sockets)   below the ephemeral range
//!    })    │ Ok: the process holds every socket ─▶ done
//!          │ InUse: it exited or logged "address in use", or never held them
//!          │        ─▶ start again on new ports (ATTEMPTS times, then a panic)
//!          └ Failed: anything else ─▶ a panic with the log
//! ```
//!
//! Ports are picked at random below the kernel's ephemeral range
//! (`net.ipv4.ip_local_port_range`), where no socket bound to port 0 and no
//! outgoing connection ever lands, so only another explicit pick can collide
//! with one — and within one test binary no port is handed out twice.
//! [`wait_bound`] reads `/proc` to check that the started process (or one it
//! started, e.g. under strace) really holds its sockets, so a start is never
//! taken for good because some other process answered on the port.

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 127.0.0.1.
pub const LOOPBACK: [u8; 4] = [127, 0, 0, 1];

/// How many times a start is tried on new ports before the test fails.
pub const ATTEMPTS: u32 = 6;

/// How long a started process may take to bind its sockets (a loaded
/// 2-core machine starts a peer in well under a second; this is a deadline,
/// not a measurement).
pub const BIND_LIMIT: Duration = Duration::from_secs(60);

/// Why a start did not give a running peer.
#[derive(Debug)]
pub enum StartError {
    /// A port was taken between the pick and the bind: start again on others.
    InUse(String),
    /// Anything else: the test fails with this.
    Failed(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::InUse(why) => write!(f, "address in use: {why}"),
            StartError::Failed(why) => f.write_str(why),
        }
    }
}

/// Hands out ports for one start attempt.
#[derive(Debug, Default)]
pub struct Ports {
    /// The ports handed out in this attempt, for messages.
    picked: Vec<u16>,
}

impl Ports {
    /// A new picker.
    pub fn new() -> Ports {
        Ports::default()
    }

    /// A port free for UDP and TCP on every one of `addresses` right now,
    /// never handed out before in this test binary.
    pub fn pick(&mut self, addresses: &[[u8; 4]]) -> u16 {
        let port = pick_port(addresses);
        self.picked.push(port);
        port
    }

    /// `ip:port` with a port picked for `ip` alone.
    pub fn on(&mut self, ip: [u8; 4]) -> SocketAddr {
        SocketAddr::from((ip, self.pick(&[ip])))
    }

    /// The ports handed out so far.
    pub fn picked(&self) -> &[u16] {
        &self.picked
    }
}

/// Runs `start` with fresh ports until it returns a peer, starting again
/// when a port turned out to be taken; panics naming `what` after
/// [`ATTEMPTS`] tries or on any other failure.
pub fn start_on_free_ports<T>(
    what: &str,
    mut start: impl FnMut(&mut Ports) -> Result<T, StartError>,
) -> T {
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let mut ports = Ports::new();
        match start(&mut ports) {
            Ok(peer) => return peer,
            Err(StartError::InUse(why)) => {
                last = format!("ports {:?}: {why}", ports.picked());
            }
            Err(StartError::Failed(why)) => panic!("{what} did not start: {why}"),
        }
    }
    panic!("{what} did not start: a port was taken on each of {ATTEMPTS} tries; the last: {last}")
}

/// [`start_on_free_ports`] for a start that awaits (the async launchers).
pub async fn start_on_free_ports_async<T>(
    what: &str,
    mut start: impl AsyncFnMut(&mut Ports) -> Result<T, StartError>,
) -> T {
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        let mut ports = Ports::new();
        match start(&mut ports).await {
            Ok(peer) => return peer,
            Err(StartError::InUse(why)) => {
                last = format!("ports {:?}: {why}", ports.picked());
            }
            Err(StartError::Failed(why)) => panic!("{what} did not start: {why}"),
        }
    }
    panic!("{what} did not start: a port was taken on each of {ATTEMPTS} tries; the last: {last}")
}

/// TCP listeners on one port, one on each of `addresses`, bound and held
/// (for servers the test runs itself, e.g. an old and a new web server on
/// the same port of two addresses). The port comes from the same range as
/// [`Ports::pick`], so a test that closes a listener and binds the port
/// again later (a server "down" for a while) finds it free.
pub fn hold_tcp(addresses: &[[u8; 4]]) -> Vec<TcpListener> {
    for _ in 0..64 {
        let port = pick_port(addresses);
        let held: Vec<TcpListener> = addresses
            .iter()
            .map_while(|address| TcpListener::bind((Ipv4Addr::from(*address), port)).ok())
            .collect();
        if held.len() == addresses.len() {
            return held;
        }
    }
    panic!("no port free for TCP on all of {addresses:?} in 64 tries")
}

/// One TCP listener on `ip`, bound and held.
pub fn hold_tcp_on(ip: [u8; 4]) -> TcpListener {
    hold_tcp(&[ip]).remove(0)
}

/// A UDP socket on `ip`, bound and held (port from the range of [`Ports::pick`]).
pub fn hold_udp_on(ip: [u8; 4]) -> UdpSocket {
    for _ in 0..64 {
        if let Ok(socket) = UdpSocket::bind((Ipv4Addr::from(ip), pick_port(&[ip]))) {
            return socket;
        }
    }
    panic!("no port free for UDP on {ip:?} in 64 tries")
}

/// A port held by the test (UDP and TCP, every address) from the moment it
/// is picked until the process meant to serve on it starts: for a port
/// that must be known long before (written into files the process reads
/// and into records other peers keep) and cannot change afterwards. Call
/// [`Reservation::release`] right before spawning the process. The TCP
/// sockets are bound but never listen: while held, the port refuses
/// connections as a server that is down does.
#[derive(Debug)]
pub struct Reservation {
    /// The port.
    pub port: u16,
    /// The sockets holding it, by address.
    held: Mutex<Vec<([u8; 4], UdpSocket, socket2::Socket)>>,
}

impl Reservation {
    /// A port free for UDP and TCP on every one of `addresses`, held.
    pub fn new(addresses: &[[u8; 4]]) -> Reservation {
        for _ in 0..64 {
            let port = pick_port(addresses);
            let held: Vec<([u8; 4], UdpSocket, socket2::Socket)> = addresses
                .iter()
                .map_while(|address| {
                    let udp = UdpSocket::bind((Ipv4Addr::from(*address), port)).ok()?;
                    let tcp = bound_tcp(SocketAddr::from((*address, port))).ok()?;
                    Some((*address, udp, tcp))
                })
                .collect();
            if held.len() == addresses.len() {
                return Reservation {
                    port,
                    held: Mutex::new(held),
                };
            }
        }
        panic!("no port free for UDP and TCP on all of {addresses:?} in 64 tries")
    }

    /// `ip:port`.
    pub fn on(&self, ip: [u8; 4]) -> SocketAddr {
        SocketAddr::from((ip, self.port))
    }

    /// Lets the port go on every address (the process about to start binds
    /// it); a second call does nothing.
    pub fn release(&self) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Lets the port go on `ip` alone; the other addresses stay held.
    pub fn release_on(&self, ip: [u8; 4]) {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(address, _, _)| *address != ip);
    }
}

/// A TCP socket bound to `addr` that does not listen (no SO_REUSEADDR, so
/// no other socket can bind the port meanwhile).
fn bound_tcp(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A TCP port of `ip` that refuses connections for as long as the socket
/// lives: bound (so nobody else can take the port), never listening.
pub fn refusing_tcp(ip: [u8; 4]) -> (socket2::Socket, SocketAddr) {
    for _ in 0..64 {
        let addr = SocketAddr::from((ip, pick_port(&[ip])));
        if let Ok(socket) = bound_tcp(addr) {
            return (socket, addr);
        }
    }
    panic!("no port free for TCP on {ip:?} in 64 tries")
}

/// Every port handed out by [`Ports::pick`] in this process.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// The range picks come from: below the ephemeral range when there is room.
pub fn pick_range() -> (u16, u16) {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut numbers = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((numbers.next()??, numbers.next()??))
        })
        .unwrap_or((32768, 60999));
    if ephemeral.0 >= 12_000 {
        (10_000, ephemeral.0 - 1)
    } else if ephemeral.1 <= 63_000 {
        (ephemeral.1 + 1, 65_535)
    } else {
        (1_024, 65_535)
    }
}

/// A random number (std's hasher keys are random per process).
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// See [`Ports::pick`].
fn pick_port(addresses: &[[u8; 4]]) -> u16 {
    let (low, high) = pick_range();
    let span = u64::from(high - low) + 1;
    for _ in 0..10_000 {
        let port = low + (random() % span) as u16;
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.contains(&port) {
            continue;
        }
        if free_now(addresses, port) {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("no port free for UDP and TCP on all of {addresses:?} in {low}..={high}")
}

/// True when `port` can be bound for UDP and TCP on every address now.
fn free_now(addresses: &[[u8; 4]], port: u16) -> bool {
    let mut held_udp = Vec::new();
    let mut held_tcp = Vec::new();
    for address in addresses {
        let ip = Ipv4Addr::from(*address);
        match (UdpSocket::bind((ip, port)), TcpListener::bind((ip, port))) {
            (Ok(udp), Ok(tcp)) => {
                held_udp.push(udp);
                held_tcp.push(tcp);
            }
            _ => return false,
        }
    }
    true
}

/// A socket a started process must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Socket {
    /// A UDP socket bound to this address.
    Udp(SocketAddr),
    /// A TCP socket listening on this address.
    Tcp(SocketAddr),
}

impl Socket {
    /// UDP and TCP on `addr`: what a DNS server holds.
    pub fn dns(addr: SocketAddr) -> [Socket; 2] {
        [Socket::Udp(addr), Socket::Tcp(addr)]
    }
}

impl std::fmt::Display for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Socket::Udp(addr) => write!(f, "udp {addr}"),
            Socket::Tcp(addr) => write!(f, "tcp {addr}"),
        }
    }
}

/// What the log of a process that could not bind says (knotd, named,
/// unbound, dnsmasq, pdns, smtp-sink, Rust's io::Error), lowercased.
const IN_USE: [&str; 3] = ["address already in use", "address in use", "os error 98"];

/// Waits until `child` (or a process it started) holds every one of
/// `sockets`. `InUse` when its log (`log`, written by this start alone)
/// says an address is in use or it exits saying so; `Failed` with the log
/// when it exits otherwise or has not bound within [`BIND_LIMIT`].
pub fn wait_bound(
    what: &str,
    child: &mut Child,
    sockets: &[Socket],
    log: &Path,
) -> Result<(), StartError> {
    wait_bound_from(what, child, sockets, log, 0)
}

/// [`wait_bound`] for a log that earlier runs wrote to as well: only what
/// follows its first `from` bytes (its length before this start, see
/// [`log_length`]) is this start's.
pub fn wait_bound_from(
    what: &str,
    child: &mut Child,
    sockets: &[Socket],
    log: &Path,
    from: u64,
) -> Result<(), StartError> {
    let deadline = Instant::now() + BIND_LIMIT;
    loop {
        if let Some(done) = bound_now(what, child, sockets, (log, from), deadline) {
            return done;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_bound`] on an async runtime (sleeps without blocking its thread).
pub async fn wait_bound_async(
    what: &str,
    child: &mut Child,
    sockets: &[Socket],
    log: &Path,
) -> Result<(), StartError> {
    let deadline = Instant::now() + BIND_LIMIT;
    loop {
        if let Some(done) = bound_now(what, child, sockets, (log, 0), deadline) {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long the file at `log` is now (0 when there is none): where the
/// next start's lines begin, for [`wait_bound_from`].
pub fn log_length(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// One look at a starting process: `None` while it is still starting.
/// `log` is the file and where this start's part of it begins.
fn bound_now(
    what: &str,
    child: &mut Child,
    sockets: &[Socket],
    (log, from): (&Path, u64),
    deadline: Instant,
) -> Option<Result<(), StartError>> {
    let text = || {
        let bytes = std::fs::read(log).unwrap_or_default();
        let start = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    };
    let in_use = |text: &str| {
        text.lines()
            .find(|line| {
                let line = line.to_lowercase();
                IN_USE.iter().any(|needle| line.contains(needle))
            })
            .map(|line| format!("{what}: {}", line.trim()))
    };
    if let Some(line) = in_use(&text()) {
        return Some(Err(StartError::InUse(line)));
    }
    match child.try_wait() {
        Ok(Some(status)) => {
            let text = text();
            return Some(Err(match in_use(&text) {
                Some(line) => StartError::InUse(line),
                None => StartError::Failed(format!(
                    "{what} exited ({status}) before it held {}; log {}:\n{text}",
                    list(sockets),
                    log.display()
                )),
            }));
        }
        Ok(None) => {}
        Err(e) => return Some(Err(StartError::Failed(format!("wait for {what}: {e}")))),
    }
    let missing: Vec<Socket> = missing_sockets(child.id(), sockets);
    if missing.is_empty() {
        return Some(Ok(()));
    }
    if Instant::now() > deadline {
        return Some(Err(StartError::Failed(format!(
            "{what} (pid {}) did not hold {} within {BIND_LIMIT:?}; log {}:\n{}",
            child.id(),
            list(&missing),
            log.display(),
            text()
        ))));
    }
    None
}

/// The sockets as words, for messages.
fn list(sockets: &[Socket]) -> String {
    sockets
        .iter()
        .map(Socket::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which of `sockets` no process of the tree under `pid` holds.
pub fn missing_sockets(pid: u32, sockets: &[Socket]) -> Vec<Socket> {
    let held = tree_sockets(pid);
    sockets
        .iter()
        .copied()
        .filter(|socket| {
            !table_inodes(*socket)
                .iter()
                .any(|inode| held.contains(inode))
        })
        .collect()
}

/// The inodes of the sockets the kernel lists for `socket`'s address (a
/// TCP one only when listening; wildcard addresses count).
fn table_inodes(socket: Socket) -> Vec<u64> {
    let (tables, addr, listening) = match socket {
        Socket::Udp(addr) => (["udp", "udp6"], addr, false),
        Socket::Tcp(addr) => (["tcp", "tcp6"], addr, true),
    };
    let mut inodes = Vec::new();
    for table in tables {
        let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if listening && *state != "0A" {
                continue;
            }
            let Some((ip, port)) = parse_local(local) else {
                continue;
            };
            let same_ip = ip == addr.ip() || ip.is_unspecified();
            if port == addr.port() && same_ip {
                if let Ok(inode) = inode.parse() {
                    inodes.push(inode);
                }
            }
        }
    }
    inodes
}

/// `0100007F:1F90` (an address as the kernel prints it: 32-bit words in
/// host order, the port in hex) as an address and a port.
fn parse_local(text: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for word in 0..ip.len() / 8 {
        let value = u32::from_str_radix(ip.get(word * 8..word * 8 + 8)?, 16).ok()?;
        bytes.extend_from_slice(&value.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some((ip, port))
}

/// The socket inodes open in `pid` and every process under it.
fn tree_sockets(pid: u32) -> HashSet<u64> {
    let mut sockets = HashSet::new();
    for pid in tree(pid) {
        let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|rest| rest.strip_suffix(']'))
                    .and_then(|n| n.parse().ok())
                {
                    sockets.insert(inode);
                }
            }
        }
    }
    sockets
}

/// `pid` and its descendants, from the parent ids in `/proc/*/stat`.
fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …; comm may hold spaces and parentheses.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse().ok());
            if let Some(parent) = parent {
                parents.push((child, parent));
            }
        }
    }
    let mut tree = vec![pid];
    let mut at = 0;
    while at < tree.len() {
        let parent = tree[at];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        at += 1;
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_the_kernel_prints_them() {
        assert_eq!(
            parse_local("0100007F:1F90"),
            Some((IpAddr::from([127, 0, 0, 1]), 8080))
        );
        assert_eq!(
            parse_local("00000000000000000000000001000000:0035"),
            Some((IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 53))
        );
        assert_eq!(
            parse_local("0000000000000000FFFF00000300007F:0019"),
            Some((IpAddr::from([127, 0, 0, 3]), 25))
        );
    }

    #[test]
    fn a_picked_port_is_never_handed_out_twice_and_lies_below_the_ephemeral_range() {
        let mut ports = Ports::new();
        let picked: Vec<u16> = (0..200).map(|_| ports.pick(&[LOOPBACK])).collect();
        let distinct: HashSet<u16> = picked.iter().copied().collect();
        assert_eq!(distinct.len(), picked.len(), "a port was handed out twice");
        let (low, high) = pick_range();
        assert!(
            picked.iter().all(|p| (low..=high).contains(p)),
            "expected every pick in {low}..={high}, saw {picked:?}"
        );
    }

    #[test]
    fn this_process_is_seen_holding_its_sockets_and_not_others() {
        let udp = hold_udp_on(LOOPBACK);
        let tcp = hold_tcp_on(LOOPBACK);
        let held = [
            Socket::Udp(udp.local_addr().unwrap()),
            Socket::Tcp(tcp.local_addr().unwrap()),
        ];
        assert_eq!(missing_sockets(std::process::id(), &held), vec![]);
        let free = SocketAddr::from((LOOPBACK, Ports::new().pick(&[LOOPBACK])));
        assert_eq!(
            missing_sockets(std::process::id(), &[Socket::Tcp(free)]),
            vec![Socket::Tcp(free)]
        );
    }

    #[test]
    fn a_refusing_port_refuses_and_cannot_be_taken() {
        let (_held, addr) = refusing_tcp(LOOPBACK);
        let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2));
        assert!(refused.is_err(), "expected a refusal from {addr}");
        assert!(
            TcpListener::bind(addr).is_err(),
            "expected {addr} to stay taken"
        );
    }

    #[test]
    fn a_reservation_holds_its_port_refusing_until_let_go() {
        let reservation = Reservation::new(&[LOOPBACK, [127, 0, 0, 2]]);
        let (one, two) = (reservation.on(LOOPBACK), reservation.on([127, 0, 0, 2]));
        assert!(TcpListener::bind(one).is_err() && UdpSocket::bind(one).is_err());
        assert!(
            std::net::TcpStream::connect_timeout(&one, Duration::from_secs(2)).is_err(),
            "a held port refuses connections"
        );
        reservation.release_on([127, 0, 0, 2]);
        assert!(TcpListener::bind(two).is_ok() && UdpSocket::bind(two).is_ok());
        assert!(TcpListener::bind(one).is_err(), "{one} still held");
        reservation.release();
        assert!(TcpListener::bind(one).is_ok() && UdpSocket::bind(one).is_ok());
    }

    #[test]
    fn a_start_that_finds_its_port_taken_is_tried_again_on_another() {
        let mut tries = 0;
        let port = start_on_free_ports("a flaky peer", |ports| {
            tries += 1;
            let port = ports.pick(&[LOOPBACK]);
            if tries < 3 {
                Err(StartError::InUse(format!("{port} taken")))
            } else {
                Ok(port)
            }
        });
        assert_eq!(tries, 3);
        assert!(port > 0);
    }

    #[test]
    #[should_panic(expected = "a port was taken on each of 6 tries")]
    fn a_start_that_always_finds_its_port_taken_fails_clearly() {
        start_on_free_ports("a hopeless peer", |_| -> Result<(), _> {
            Err(StartError::InUse("taken".into()))
        });
    }

    #[test]
    fn a_process_that_cannot_bind_is_told_from_one_that_fails() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let taken = hold_tcp_on(LOOPBACK);
        let addr = taken.local_addr().unwrap();
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import socket; s = socket.socket(); s.bind(('127.0.0.1', {})); s.listen()",
                    addr.port()
                ),
            ])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("python3 runs");
        let seen = wait_bound("python3", &mut child, &[Socket::Tcp(addr)], &log);
        assert!(
            matches!(seen, Err(StartError::InUse(_))),
            "expected InUse, saw {seen:?}"
        );
        let mut child = std::process::Command::new("false")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let seen = wait_bound("false", &mut child, &[Socket::Tcp(addr)], &log);
        assert!(
            matches!(seen, Err(StartError::Failed(_))),
            "expected Failed, saw {seen:?}"
        );
    }
}
