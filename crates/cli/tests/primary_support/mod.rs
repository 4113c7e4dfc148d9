//! What the primary's black-box tests share: a store with a zone in it,
//! `cutover serve` started on it as a child with its log in a file, and
//! the command-line clients (kdig, knsupdate, nsupdate) run against it.

#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use cutover_peers::secondary::{soa_serial, Secondary, TsigKey};
pub use cutover_peers::{
    start_on_free_ports, wait_bound, Guard, Ports, Socket, StartError, LOOPBACK,
};

/// The zone the tests serve.
pub const ORIGIN: &str = "example.com.";

/// The key allowed to UPDATE the whole zone.
pub const OPS_KEY: &str = "ops.";
/// The key allowed to transfer the zone and signing NOTIFYs.
pub const XFR_KEY: &str = "xfr.";
/// The ops key's secret (32 bytes, base64).
pub const OPS_SECRET: &str = "q1SXa5nV3l9Mz7K0EYXlPjxfDt6vNfV9v0k1b7GHHgY=";
/// The transfer key's secret.
pub const XFR_SECRET: &str = "c29tZXRoaW5nIGVsc2UgZW50aXJlbHkgZGlmZmVyZW50";

/// The zone's text at serial 1: SOA, NS, `hosts` A records.
pub fn zone_text(hosts: usize) -> String {
    let mut text = String::from(
        "$ORIGIN example.com.\n$TTL 3600\n\
         @ SOA ns1 hostmaster 1 3600 600 86400 300\n\
         @ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\n",
    );
    for i in 0..hosts {
        text.push_str(&format!(
            "h{i} A 198.51.{}.{}\n",
            (i / 250) % 256,
            i % 250 + 1
        ));
    }
    text
}

/// A scratch directory holding a store with the zone imported.
pub struct Scratch {
    /// Removed on drop.
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// A store with the zone of `hosts` extra records imported.
    pub fn with_zone(hosts: usize) -> Scratch {
        let scratch = Scratch {
            dir: tempfile::tempdir().unwrap(),
        };
        let file = scratch.path("example.com.zone");
        std::fs::write(&file, zone_text(hosts)).unwrap();
        scratch.ok(&["zone", "import", file.to_str().unwrap()]);
        scratch
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `cutover --store DIR/cutover.db ARGS…`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .current_dir(self.dir.path())
            .arg("--store")
            .arg(self.path("cutover.db"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the cutover binary runs")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cutover {args:?} failed with {}:\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// The zone's serial in the store (`zone list`).
    pub fn serial(&self) -> u32 {
        let list = self.ok(&["zone", "list"]);
        let line = list
            .lines()
            .find(|l| l.starts_with(ORIGIN))
            .unwrap_or_else(|| panic!("no zone in:\n{list}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Writes the config: listen on `port`, the two keys, the zone with
    /// `zone_extra` lines appended to its `[[zone]]`, `dns_extra` to `[dns]`.
    pub fn config(&self, port: u16, dns_extra: &str, zone_extra: &str) -> PathBuf {
        let path = self.path("cutover.toml");
        let text = format!(
            "store = {:?}\n[dns]\nlisten = [\"127.0.0.1:{port}\"]\nudp_workers = 1\n{dns_extra}\n\
             [[key]]\nname = \"{OPS_KEY}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{OPS_SECRET}\"\n\
             [[key]]\nname = \"{XFR_KEY}\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{XFR_SECRET}\"\n\
             [[zone]]\nname = \"{ORIGIN}\"\n{zone_extra}\n",
            self.path("cutover.db").to_str().unwrap()
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Starts migration 1 on this store: `www` moved to 192.0.2.20, verified
/// on `authorities` (no resolver), then waits up to 90 s for it to end
/// (`log` for the failure message); its final state and `migrate show
/// --json`.
pub fn migrate_www_verified_on(
    scratch: &Scratch,
    authorities: &[SocketAddr],
    log: impl Fn() -> String,
) -> (String, serde_json::Value) {
    let listed: Vec<String> = authorities.iter().map(|a| format!("\"{a}\"")).collect();
    let migration = scratch.path("move.toml");
    std::fs::write(
        &migration,
        format!(
            "version = 1\nzone = \"{ORIGIN}\"\nprovider = {{ kind = \"embedded\" }}\n\
             [[move]]\nname = \"www\"\ntype = \"A\"\nvalues = [\"192.0.2.20\"]\n\
             [ttl]\nduring = 1\n[schedule]\nobserve = \"1s\"\nmargin = \"1s\"\n\
             [verify]\nauthorities = [{}]\nresolvers = []\ntries = 20\ninterval = \"1s\"\n",
            listed.join(", ")
        ),
    )
    .unwrap();
    scratch.ok(&["migrate", "start", migration.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let state = loop {
        let status: serde_json::Value =
            serde_json::from_str(&scratch.ok(&["migrate", "status", "1", "--json"]))
                .expect("migrate status --json");
        let state = status[0]["state"].as_str().unwrap_or("?").to_string();
        if ["done", "failed", "rolled_back", "paused"].contains(&state.as_str()) {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "expected the migration finished within 90 s, it is {state}; primary's log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let detail = serde_json::from_str(&scratch.ok(&["migrate", "show", "1", "--json"]))
        .expect("migrate show --json");
    (state, detail)
}

/// A running `cutover serve`, killed (SIGKILL) on drop.
pub struct Serve {
    /// The process.
    pub child: Child,
    /// Where it answers.
    pub addr: SocketAddr,
    /// Its config.
    pub config: PathBuf,
    /// Its log file.
    pub log_path: PathBuf,
}

/// How long a started `cutover serve` may take to answer (a deadline for a
/// loaded machine, not a measurement).
pub const SERVE_LIMIT: Duration = Duration::from_secs(60);

impl Serve {
    /// Starts `cutover serve` on a free port of 127.0.0.1: `config(port)`
    /// writes the config listening there and returns its path. Started
    /// again on another port when the one picked was taken.
    pub fn start_free(log: &Path, config: impl FnMut(u16) -> PathBuf) -> Serve {
        Serve::start_free_with(&[], log, config)
    }

    /// As [`Serve::start_free`], run behind `prefix` (e.g. `prlimit …`,
    /// which runs the binary in its own process).
    pub fn start_free_with(
        prefix: &[&str],
        log: &Path,
        mut config: impl FnMut(u16) -> PathBuf,
    ) -> Serve {
        start_on_free_ports("cutover serve", |ports: &mut Ports| {
            let port = ports.pick(&[LOOPBACK]);
            Serve::try_start_with(prefix, &config(port), port, log, ORIGIN)
        })
    }

    /// As [`Serve::start_free`], waiting until it answers `zone`'s SOA.
    pub fn start_free_answering(
        log: &Path,
        zone: &str,
        mut config: impl FnMut(u16) -> PathBuf,
    ) -> Serve {
        start_on_free_ports("cutover serve", |ports: &mut Ports| {
            let port = ports.pick(&[LOOPBACK]);
            Serve::try_start_with(&[], &config(port), port, log, zone)
        })
    }

    /// Starts `cutover serve --config CONFIG` listening on `port` (log at
    /// info into `log`) and waits until it answers the zone's SOA: a
    /// restart on the port it had (a port from the range no socket bound to
    /// port 0 lands in, so still free; the test fails if it was taken).
    pub fn start(config: &Path, port: u16, log: &Path) -> Serve {
        Serve::try_start(config, port, log)
            .unwrap_or_else(|e| panic!("cutover serve did not start again on {port}: {e}"))
    }

    /// [`Serve::start`]'s and [`Serve::start_free`]'s one start: `InUse`
    /// when `port` was taken.
    pub fn try_start(config: &Path, port: u16, log: &Path) -> Result<Serve, StartError> {
        Serve::try_start_with(&[], config, port, log, ORIGIN)
    }

    /// One start behind `prefix`, waiting until it answers `zone`'s SOA:
    /// `InUse` when `port` was taken.
    fn try_start_with(
        prefix: &[&str],
        config: &Path,
        port: u16,
        log: &Path,
        zone: &str,
    ) -> Result<Serve, StartError> {
        let file = std::fs::File::create(log).unwrap();
        let binary = env!("CARGO_BIN_EXE_cutover");
        let mut argv: Vec<&str> = prefix.to_vec();
        argv.extend([binary, "serve", "--config", config.to_str().unwrap()]);
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", argv[0]));
        let mut serve = Serve {
            child,
            addr: SocketAddr::from((LOOPBACK, port)),
            config: config.to_owned(),
            log_path: log.to_owned(),
        };
        wait_bound(
            "cutover serve",
            &mut serve.child,
            &Socket::dns(serve.addr),
            log,
        )?;
        let deadline = Instant::now() + SERVE_LIMIT;
        while soa_serial(serve.addr, zone).is_none() {
            if let Some(status) = serve.child.try_wait().unwrap() {
                return Err(StartError::Failed(format!(
                    "cutover serve exited with {status}; log:\n{}",
                    serve.log()
                )));
            }
            if Instant::now() > deadline {
                return Err(StartError::Failed(format!(
                    "cutover serve did not answer {zone} SOA within {SERVE_LIMIT:?}; log:\n{}",
                    serve.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(serve)
    }

    /// Starts `cutover serve` again on the config and port this one had
    /// (after it was killed), its log in `log`.
    pub fn restart(&self, log: &Path) -> Serve {
        Serve::start(&self.config, self.addr.port(), log)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `program ARGS` with `stdin`; returns its output (panics naming the
/// package when it is not installed).
pub fn run_tool(program: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// Sends one UPDATE with `client` ("knsupdate" or "nsupdate") signed by
/// `key:secret`, made of the `update …` lines given; returns its output.
pub fn send_update(
    client: &str,
    server: SocketAddr,
    key: &str,
    secret: &str,
    lines: &[&str],
) -> Output {
    let mut script = format!("server {} {}\nzone {ORIGIN}\n", server.ip(), server.port());
    for line in lines {
        script.push_str(line);
        script.push('\n');
    }
    script.push_str("send\n");
    let y = format!("hmac-sha256:{key}:{secret}");
    run_tool(client, &["-y", &y], &script)
}

/// Signs `message` with the ops key (TSIG, hmac-sha256) at the clock's
/// time now.
pub fn sign_with_ops_key(message: &mut Vec<u8>) {
    let key = std::sync::Arc::new(
        cutover_nameserver::tsig::Key::from_text(OPS_KEY, "hmac-sha256", OPS_SECRET).unwrap(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    cutover_nameserver::tsig::sign_request(message, key, now).unwrap();
}

/// Sends one DNS message over TCP and reads the answer (waiting up to a
/// minute: the writer may be busy); `None` when the connection fails or
/// closes first (a server killed meanwhile) or the answer is shorter than
/// a header. Panics on an answer to another ID.
pub fn exchange_tcp(server: SocketAddr, message: &[u8]) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut answer).ok()?;
    if answer.len() < 12 {
        return None;
    }
    assert_eq!(answer[..2], message[..2], "expected the answer to our ID");
    Some(answer)
}

/// `kdig @server ARGS… +noall +answer` (output text).
pub fn kdig(server: SocketAddr, args: &[&str]) -> String {
    let port = server.port().to_string();
    let ip = format!("@{}", server.ip());
    let mut all = vec![ip.as_str(), "-p", port.as_str(), "+time=5", "+retry=1"];
    all.extend_from_slice(args);
    let out = Command::new("kdig")
        .args(&all)
        .output()
        .expect("kdig must be installed (knot-dnsutils)");
    text(&out.stdout) + &text(&out.stderr)
}

/// The zone a `kdig AXFR` from `server` (signed with the transfer key
/// when `signed`) returns, parsed; panics with the output when it does not
/// parse.
pub fn axfr_zone(server: SocketAddr, signed: bool) -> cutover_zone::Zone {
    let y = format!("hmac-sha256:{XFR_KEY}:{XFR_SECRET}");
    let mut args = vec![ORIGIN, "AXFR", "+noall", "+answer"];
    if signed {
        args.extend(["-y", y.as_str()]);
    }
    parse_zone(&kdig(server, &args))
}

/// Zone text (kdig answer lines or `zone export`) parsed as example.com.
pub fn parse_zone(text: &str) -> cutover_zone::Zone {
    let origin: cutover_zone::Name = ORIGIN.parse().unwrap();
    let lines: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with(';') && !l.trim().is_empty())
        .filter(|l| !l.split_whitespace().any(|w| w == "TSIG"))
        .map(|l| format!("{l}\n"))
        .collect();
    cutover_zone::zonefile::parse_str(&lines, "output", Some(&origin))
        .unwrap_or_else(|e| panic!("does not parse as a zone ({e}):\n{text}"))
        .zone
}
