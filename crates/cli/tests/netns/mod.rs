//! Locations as network namespaces on this machine, as issue 14 shows its
//! checks from elsewhere: each namespace joined to the host by a veth pair
//! and a /24 of its own, with a default route to the host, so every
//! namespace reaches the host's shared addresses (the hub: serve, the old
//! and the new web server) and the host reaches every namespace.
//!
//! ```text
//!  host: lo 10.A.B.1 (serve), .2 (old web), .3 (new web)   ── the hub, labelled lo:cvTAGkK
//!     │ veth cvTAGnJ (10.A.C.1/24) ── (10.A.C.2/24) netns cutover-PID-J: its Unbound on .2:53,
//!     │                                             `cutover agent` or `cutover serve`,
//!     │                                             default via 10.A.C.1, nft rules of its own
//!     │ veth …                      ── another namespace
//! ```
//!
//! Names come from the pid and a counter of the process, so tests running
//! at once (in one binary or several) never share one; what a killed run
//! left under the same names is removed first, and a /24 any address of the
//! host already uses is skipped. Everything is removed on drop, also when
//! the test panics. Needs root, iproute2 and nftables (`.ci/run` installs
//! them).

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use cutover_peers::Guard;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

/// How long a process started in a namespace may take to answer (a
/// deadline for a loaded machine, not a measurement).
pub const START_LIMIT: Duration = Duration::from_secs(30);

/// The /24s this process handed out so far (at most 64 per process).
static NEXT: AtomicU16 = AtomicU16::new(0);

/// Runs `ip ARGS…`; panics with its error when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip runs (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ip ARGS…` for what may not be there (a leftover): errors ignored.
fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The host's IPv4 addresses and routes, as `ip` prints them.
fn host_addresses() -> String {
    let mut text = String::new();
    for args in [
        &["-o", "-4", "addr"][..],
        &["-4", "route", "show", "table", "all"],
    ] {
        if let Ok(out) = Command::new("ip").args(args).output() {
            text += &String::from_utf8_lossy(&out.stdout);
        }
    }
    text
}

/// A /24 of 10/8 for this process, `10.A.B`: from the pid and the
/// process's counter, skipping one any address or route of the host uses
/// (another run's, or the machine's own). Returns it and the counter's value.
fn subnet() -> ([u8; 3], u16) {
    let pid = std::process::id();
    let used = host_addresses();
    loop {
        let j = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(j < 64, "more than 64 namespaces' /24s in one test process");
        let index = (pid % 1000) as u16 * 64 + j;
        let net = [10, (index >> 8) as u8, (index & 0xff) as u8];
        if !used.contains(&format!("10.{}.{}.", net[1], net[2])) {
            return (net, j);
        }
    }
}

/// A short tag of the pid for link names (at most 15 bytes).
fn tag() -> u32 {
    std::process::id() % 100_000
}

/// Namespaces, each a location, and the hub of addresses on the host they
/// all reach.
pub struct Network {
    /// The hub's /24 (its addresses are /32s on lo).
    hub: [u8; 3],
    /// The label of the hub's addresses on lo.
    label: String,
    /// The namespaces, in the order named.
    pub locations: Vec<Location>,
}

impl Network {
    /// The hub and one namespace per name of `locations` (fra1, nyc1…).
    pub fn new(locations: &[&str]) -> Network {
        let (hub, k) = subnet();
        let label = format!("lo:cv{}k{k}", tag());
        // Left over by a killed run under the same name: removed first.
        ip_quiet(&["addr", "flush", "dev", "lo", "label", &label]);
        let mut network = Network {
            hub,
            label,
            locations: Vec::new(),
        };
        for last in 1..=3 {
            ip(&[
                "addr",
                "add",
                &format!("{}/32", Ipv4Addr::from(network.hub(last))),
                "dev",
                "lo",
                "label",
                &network.label,
            ]);
        }
        for name in locations {
            network.locations.push(Location::new(name));
        }
        network
    }

    /// The hub's address `10.A.B.last`: 1 for serve, 2 and 3 for the old and
    /// new web servers.
    pub fn hub(&self, last: u8) -> [u8; 4] {
        [self.hub[0], self.hub[1], self.hub[2], last]
    }

    /// The location named `name`.
    pub fn location(&self, name: &str) -> &Location {
        self.locations
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no location {name} in the network"))
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // The namespaces first (their own drops), then the hub.
        self.locations.clear();
        ip_quiet(&["addr", "flush", "dev", "lo", "label", &self.label]);
    }
}

/// One location: a network namespace joined to the host by a veth pair.
pub struct Location {
    /// The location's name (what `cutover agent --location` says).
    pub name: String,
    /// The namespace's name (`ip netns`).
    pub netns: String,
    /// The host's end of the pair.
    host_link: String,
    /// Its /24.
    net: [u8; 3],
}

impl Location {
    /// Makes the namespace, the pair (host .1, namespace .2), brings them up
    /// and routes the namespace's traffic to the host.
    fn new(name: &str) -> Location {
        let (net, j) = subnet();
        let location = Location {
            name: name.to_owned(),
            netns: format!("cutover-{}-{j}", std::process::id()),
            host_link: format!("cv{}n{j}", tag()),
            net,
        };
        let inner = format!("cv{}i{j}", tag());
        for link in [&location.host_link, &inner] {
            ip_quiet(&["link", "del", link]);
        }
        ip_quiet(&["netns", "del", &location.netns]);
        ip(&["netns", "add", &location.netns]);
        ip(&[
            "link",
            "add",
            &location.host_link,
            "type",
            "veth",
            "peer",
            "name",
            &inner,
        ]);
        ip(&["link", "set", &inner, "netns", &location.netns]);
        let host = Ipv4Addr::from(location.host());
        ip(&[
            "addr",
            "add",
            &format!("{host}/24"),
            "dev",
            &location.host_link,
        ]);
        ip(&["link", "set", &location.host_link, "up"]);
        let inside = Ipv4Addr::from(location.inside());
        location.exec(&["ip", "addr", "add", &format!("{inside}/24"), "dev", &inner]);
        location.exec(&["ip", "link", "set", &inner, "up"]);
        location.exec(&["ip", "link", "set", "lo", "up"]);
        location.exec(&["ip", "route", "add", "default", "via", &host.to_string()]);
        location
    }

    /// The host's end, `10.A.C.1`.
    pub fn host(&self) -> [u8; 4] {
        [self.net[0], self.net[1], self.net[2], 1]
    }

    /// The namespace's own address, `10.A.C.2`.
    pub fn inside(&self) -> [u8; 4] {
        [self.net[0], self.net[1], self.net[2], 2]
    }

    /// `ip netns exec NETNS program`: a command run inside (the program
    /// itself is the child: `ip` executes it).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns, program]);
        command
    }

    /// Runs ARGS inside the namespace; panics when it fails.
    pub fn exec(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.netns];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Moves the calling thread into the namespace (sockets it opens from
    /// then on are the namespace's); for a thread of its own.
    pub fn enter(netns: &str) {
        let file = std::fs::File::open(format!("/run/netns/{netns}"))
            .unwrap_or_else(|e| panic!("open /run/netns/{netns}: {e}"));
        // SAFETY: setns on an open namespace file; it changes this thread's
        // network namespace only.
        let done = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            done,
            0,
            "setns into {netns}: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Drops every packet the namespace sends to `to` (nftables, in the
    /// namespace): from here the address is gone, elsewhere nothing changed.
    pub fn drop_traffic_to(&self, to: [u8; 4]) {
        let to = Ipv4Addr::from(to).to_string();
        self.exec(&["nft", "add", "table", "inet", "cutover"]);
        self.exec(&[
            "nft",
            "add",
            "chain",
            "inet",
            "cutover",
            "out",
            "{ type filter hook output priority 0 ; }",
        ]);
        self.exec(&[
            "nft", "add", "rule", "inet", "cutover", "out", "ip", "daddr", &to, "drop",
        ]);
    }

    /// The namespace's nftables rules (`nft list ruleset`).
    pub fn rules(&self) -> String {
        let out = self
            .command("nft")
            .args(["list", "ruleset"])
            .output()
            .expect("nft runs (nftables)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts Unbound in the namespace on `.2:53`, stubbing example.test to
    /// `authority` (an address of the host), with `extra` in its server
    /// clause, and waits until it answers example.test SOA.
    pub fn unbound(&self, authority: SocketAddr, extra: &str) -> Resolver {
        let dir = tempfile::tempdir().expect("a tempdir");
        let work = dir.path().display().to_string();
        let inside = Ipv4Addr::from(self.inside());
        let conf = format!(
            "server:\n    interface: {inside}@53\n    port: 53\n    do-daemonize: no\n\
             chroot: \"\"\n    username: \"\"\n    directory: \"{work}\"\n\
             pidfile: \"{work}/unbound.pid\"\n    use-syslog: no\n    logfile: \"\"\n\
             do-not-query-localhost: no\n    access-control: 0.0.0.0/0 allow\n\
             module-config: \"iterator\"\n    local-zone: \"test.\" nodefault\n\
             domain-insecure: \"example.test\"\n\
             do-ip6: no\n    num-threads: 1\n    so-reuseport: no\n{extra}\
             stub-zone:\n    name: \"example.test\"\n    stub-addr: {}@{}\n",
            authority.ip(),
            authority.port()
        );
        let conf_path = dir.path().join("unbound.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = dir.path().join("unbound.log");
        let child = self
            .command("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("unbound runs in the namespace (package unbound)");
        let mut resolver = Resolver {
            guard: Guard {
                child,
                what: "unbound (netns)",
            },
            addr: SocketAddr::from((self.inside(), 53)),
            log,
            dir,
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let last = match soa(resolver.addr, "example.test.", true) {
                Ok(_) => break,
                Err(e) => e,
            };
            if let Ok(Some(status)) = resolver.guard.child.try_wait() {
                panic!(
                    "unbound in {} exited ({status}); log:\n{}",
                    self.name,
                    resolver.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "expected {}'s unbound to answer example.test SOA within {START_LIMIT:?}, last: {last}; log:\n{}",
                self.name,
                resolver.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        resolver
    }

    /// Starts `cutover agent --location NAME --name NAME-a --resolver
    /// RESOLVER` in the namespace, working for the serve at `server`, its
    /// log in `dir`.
    pub fn agent(&self, server: &str, token: &str, resolver: SocketAddr, dir: &Path) -> Agent {
        let name = format!("{}-a", self.name);
        let log = dir.join(format!("agent-{name}.log"));
        let child = self
            .command(env!("CARGO_BIN_EXE_cutover"))
            .args(["agent", "--server", server, "--location", &self.name])
            .args(["--name", &name, "--resolver", &resolver.to_string()])
            .args(["--probe-timeout", "1s"])
            .env("CUTOVER_AGENT_TOKEN", token)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cutover agent runs in the namespace");
        Agent {
            guard: Guard {
                child,
                what: "cutover agent (netns)",
            },
            name,
            log,
        }
    }
}

impl Drop for Location {
    fn drop(&mut self) {
        ip_quiet(&["netns", "del", &self.netns]);
        ip_quiet(&["link", "del", &self.host_link]);
    }
}

/// A location's Unbound, in its namespace; killed on drop.
pub struct Resolver {
    /// The process.
    pub guard: Guard,
    /// Where it answers: the namespace's address, port 53 (reachable from
    /// the host too).
    pub addr: SocketAddr,
    /// Its log.
    log: PathBuf,
    /// Its config and working folder.
    dir: tempfile::TempDir,
}

impl Resolver {
    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A `cutover agent` in a namespace; killed on drop.
pub struct Agent {
    /// The process.
    pub guard: Guard,
    /// Its name (`LOCATION-a`).
    pub name: String,
    /// Its log.
    log: PathBuf,
}

impl Agent {
    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// One SOA query over UDP from whatever address routes to `server`: the
/// serial, or why not (RD set when `recursion`).
pub fn soa(server: SocketAddr, name: &str, recursion: bool) -> Result<u32, String> {
    let mut query = Message::new(0x7e57, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = recursion;
    query.add_query(Query::query(
        Name::from_str(name).map_err(|e| e.to_string())?,
        RecordType::SOA,
    ));
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    socket.send_to(&bytes, server).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    let len = socket
        .recv(&mut buf)
        .map_err(|e| format!("no answer from {server}: {e}"))?;
    let response = Message::from_vec(&buf[..len]).map_err(|e| e.to_string())?;
    if response.metadata.response_code != ResponseCode::NoError {
        return Err(format!("{:?}", response.metadata.response_code));
    }
    response
        .answers
        .iter()
        .find_map(|r| match &r.data {
            hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| format!("{server} gave no SOA for {name}"))
}
