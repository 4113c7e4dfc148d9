//! The relay of `cutover serve` attacked with raw sockets, as the security
//! review did, and what a real client still gets meanwhile:
//!
//! ```text
//!  60 sessions from 6 addresses (within the per-client cap) ──DATA, 6 MiB each, slowly──┐
//!  hundreds of idle sessions from 40-50 addresses (127.1.x.y), reconnecting ─────────────┤
//!                                                        cutover serve [mail] ◀──────────┘
//!  a real client from 127.0.0.1 ──EHLO … DATA … 250──▶  (RSS, fds, log lines measured)
//!  DNS-over-TCP questions and an admin API request ─────▶  (answered while the relay is full)
//! ```
//!
//! The figures are asserted with margins a debug build on a shared machine
//! keeps: memory within 64 MiB of where it started while 360 MiB of message
//! data is in flight (it used to be all in memory), file descriptors within
//! the configured cap, one log line per 10 s for refused or failed accepts.

mod mail_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_support::{refusing_tcp, start_on_free_ports, wait_bound, Guard, Ports, Socket, LOOPBACK};

/// `cutover serve` with a relay for ourdom.test (alice) whose destination
/// never answers (mail stays queued), `extra` added to `[mail]`.
struct Relay {
    /// The scratch directory.
    directory: tempfile::TempDir,
    /// The relay's SMTP port on 127.0.0.1.
    port: u16,
    /// The process.
    serve: Guard,
    /// The destination's port, held without listening (it never answers).
    _dead: socket2::Socket,
    /// The nameserver's address (UDP and TCP).
    dns: SocketAddr,
    /// The control plane's address, when `[http]` was configured.
    http: Option<SocketAddr>,
}

/// What a relay's `serve` runs beside `[mail]`: more `[dns]` keys, and the
/// control plane's `[http]` keys when it has one.
#[derive(Default)]
struct Beside<'a> {
    /// Appended to `[dns]`.
    dns: &'a str,
    /// `[http]` with these keys (and a `listen` picked here), or none.
    http: Option<&'a str>,
}

impl Relay {
    /// Starts it on free ports (again on others if one was taken); `files`
    /// limits the process's file descriptors (soft and hard).
    fn start(extra: &str, files: Option<u64>) -> Relay {
        Relay::start_beside(extra, files, &Beside::default())
    }

    /// As [`Relay::start`], with `beside` run in the same `serve`.
    fn start_beside(extra: &str, files: Option<u64>, beside: &Beside<'_>) -> Relay {
        let directory = tempfile::tempdir().unwrap();
        let (dead_socket, dead) = refusing_tcp(LOOPBACK);
        let (port, dns, http, serve) = start_on_free_ports("cutover serve", |ports: &mut Ports| {
            let port = ports.pick(&[LOOPBACK]);
            let dns = ports.on(LOOPBACK);
            let http = beside.http.map(|keys| (ports.on(LOOPBACK), keys));
            Relay::try_serve(
                directory.path(),
                extra,
                files,
                port,
                dns,
                dead,
                beside.dns,
                http,
            )
            .map(|serve| (port, dns, http.map(|(at, _)| at), serve))
        });
        Relay {
            directory,
            port,
            serve,
            _dead: dead_socket,
            dns,
            http,
        }
    }

    /// One start of `cutover serve` with the relay on `port`, the
    /// nameserver on `dns` (`dns_extra` in `[dns]`), the destination at
    /// `dead`, and the control plane with its keys when `http` is given:
    /// `InUse` when a port was taken.
    #[allow(clippy::too_many_arguments)]
    fn try_serve(
        directory: &std::path::Path,
        extra: &str,
        files: Option<u64>,
        port: u16,
        dns: SocketAddr,
        dead: SocketAddr,
        dns_extra: &str,
        http: Option<(SocketAddr, &str)>,
    ) -> Result<Guard, mail_support::StartError> {
        let config = directory.join("cutover.toml");
        let http_section = http.map_or(String::new(), |(at, keys)| {
            format!("[http]\nlisten = \"{at}\"\n{keys}\n")
        });
        std::fs::write(
            &config,
            format!(
                "store = {store:?}\n[dns]\nlisten = [\"{dns}\"]\nudp_workers = 1\n{dns_extra}\
                 {http_section}\
                 [mail]\nlisten = [\"127.0.0.1:{port}\"]\nhostname = \"mx.relay.test\"\n\
                 spool = {spool:?}\nconnect_timeout = \"1s\"\n{extra}\n\
                 [[mail.domain]]\nname = \"ourdom.test\"\n\
                 destination = \"{dead}\"\nrecipients = [\"alice\"]\n",
                store = directory.join("cutover.db"),
                spool = directory.join("spool"),
            ),
        )
        .unwrap();
        let log_path = directory.join("serve.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_cutover"));
        command
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(files) = files {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: files,
                        rlim_max: files,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut serve = Guard(command.spawn().expect("start cutover serve"));
        let [udp, tcp] = Socket::dns(dns);
        let smtp = Socket::Tcp(SocketAddr::from((LOOPBACK, port)));
        let mut sockets = vec![udp, tcp, smtp];
        sockets.extend(http.map(|(at, _)| Socket::Tcp(at)));
        wait_bound("cutover serve", &mut serve.0, &sockets, &log_path)?;
        Ok(serve)
    }

    /// The relay process's id.
    fn pid(&self) -> u32 {
        self.serve.0.id()
    }

    /// A line of /proc/PID/status, in kB (VmRSS, VmHWM).
    fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{field}:")))
            .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// Open file descriptors of the relay process.
    fn descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }

    /// What `cutover serve` logged.
    fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("serve.log")).unwrap_or_default()
    }

    /// The spool directory.
    fn spool(&self) -> PathBuf {
        self.directory.path().join("spool")
    }
}

/// A TCP connection to `port` on 127.0.0.1 from `source`.
fn connect_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)).into(),
        Duration::from_secs(2),
    )?;
    Ok(socket.into())
}

/// One SMTP reply, or the error (timeout, closed).
fn reply(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return Ok(all);
        }
    }
}

/// What a real client got, try after try.
#[derive(Debug, Default, Clone)]
struct Outcomes {
    /// Connections tried.
    tried: usize,
    /// Greeted with 220 (a session).
    greeted: usize,
    /// Told 421 at once (busy).
    busy: usize,
    /// Messages that got 250 after DATA.
    delivered: usize,
    /// Connect or read failures and timeouts, and refusals after the greeting.
    failed: usize,
    /// The last such failure (a reply or an error).
    last_failure: Option<String>,
}

/// A real client's try from 127.0.0.1: one message, 5 s per reply at most.
fn real_client_try(port: u16, outcomes: &mut Outcomes, subject: &str) {
    outcomes.tried += 1;
    let Ok(stream) = connect_from(Ipv4Addr::LOCALHOST, port) else {
        outcomes.failed += 1;
        return;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    match reply(&mut reader) {
        Ok(greeting) if greeting.starts_with("220") => outcomes.greeted += 1,
        Ok(greeting) if greeting.starts_with("421") => {
            outcomes.busy += 1;
            return;
        }
        _ => {
            outcomes.failed += 1;
            return;
        }
    }
    for (line, code) in [
        ("EHLO real.client.test".to_string(), "250"),
        ("MAIL FROM:<someone@ext.test>".to_string(), "250"),
        ("RCPT TO:<alice@ourdom.test>".to_string(), "250"),
        ("DATA".to_string(), "354"),
        (format!("Subject: {subject}\r\n\r\nhello\r\n."), "250"),
    ] {
        let answered = writer
            .write_all(format!("{line}\r\n").as_bytes())
            .and_then(|()| reply(&mut reader));
        match answered {
            Ok(got) if got.starts_with(code) => {}
            other => {
                outcomes.failed += 1;
                outcomes.last_failure = Some(format!("{line:.20}: {other:?}"));
                return;
            }
        }
    }
    outcomes.delivered += 1;
    let _ = writer.write_all(b"QUIT\r\n");
}

/// The files of the spool directory whose names end with `suffix`.
fn spool_files(spool: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(spool)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}

/// The files of messages being received (`incoming-….tmp`). Not the
/// `ID.status.tmp` a delivery attempt writes and renames a moment later: the
/// queue runner rewrites a queued message's record after each attempt, so
/// such a file may exist for an instant at any time.
fn incoming_files(spool: &Path) -> Vec<PathBuf> {
    spool_files(spool, ".tmp")
        .into_iter()
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("incoming-"))
        })
        .collect()
}

/// Sessions sending large messages slowly (the review: 6 addresses within
/// the per-client cap took RSS from 12 MB to 2.0 GB) leave memory where it
/// was: message data goes to the spool file as it arrives. A real client is
/// served meanwhile; cut-off messages leave no file behind; and a large
/// message, streamed, is stored byte for byte.
#[test]
fn slow_large_messages_from_many_sessions_keep_memory_bounded() {
    let relay = Relay::start("", None);
    let before = relay.memory("VmRSS");
    // 96 chunks of 64 lines of 1000 octets (the longest line allowed).
    let chunk = [[b'x'; 998].as_slice(), b"\r\n"].concat().repeat(64);
    let per_session: usize = 96 * chunk.len();
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    for address in 2..8u8 {
        for _ in 0..10 {
            let (started, finished, release) = (started.clone(), finished.clone(), release.clone());
            let chunk = chunk.clone();
            let port = relay.port;
            attackers.push(std::thread::spawn(move || {
                let stream = connect_from(Ipv4Addr::new(127, 0, 0, address), port).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                assert!(reply(&mut reader).unwrap().starts_with("220"));
                for (line, code) in [
                    ("EHLO attacker.test", "250"),
                    ("MAIL FROM:<a@ext.test>", "250"),
                    ("RCPT TO:<alice@ourdom.test>", "250"),
                    ("DATA", "354"),
                ] {
                    writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
                    let got = reply(&mut reader).unwrap();
                    assert!(got.starts_with(code), "{line}: {got}");
                }
                started.fetch_add(1, Ordering::SeqCst);
                let mut sent = 0;
                while sent < per_session {
                    writer.write_all(&chunk).unwrap();
                    sent += chunk.len();
                    std::thread::sleep(Duration::from_millis(2));
                }
                finished.fetch_add(1, Ordering::SeqCst);
                // Holds the session open, mid-DATA, until told to go.
                while !release.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                drop(writer);
            }));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while started.load(Ordering::SeqCst) < 60 {
        assert!(
            Instant::now() < deadline,
            "only {} of 60 sessions reached DATA; log:\n{}",
            started.load(Ordering::SeqCst),
            relay.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut real = Outcomes::default();
    real_client_try(relay.port, &mut real, "during the attack");
    let deadline = Instant::now() + Duration::from_secs(180);
    while finished.load(Ordering::SeqCst) < 60 {
        assert!(
            Instant::now() < deadline,
            "the 60 sessions did not send their data in 180 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Measured once the relay has read it all (it is then in the files of
    // the 60 messages being received), not just once it was sent.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let written: u64 = incoming_files(&relay.spool())
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|metadata| metadata.len())
            .sum();
        // Up to 16 KiB of each is in memory until the next write.
        if written >= 60 * (per_session as u64 - (16 << 10)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the relay wrote only {written} octets of the 60 messages in 180 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let peak = relay.memory("VmHWM");
    let in_flight = (60 * per_session) >> 10;
    eprintln!(
        "60 sessions, {} MiB of DATA in flight: RSS {before} kB before, peak {peak} kB; \
         the real client: {real:?}",
        in_flight >> 10
    );
    assert_eq!(
        (real.greeted, real.delivered),
        (1, 1),
        "a real client must be served during the attack: {real:?}"
    );
    assert!(
        peak < before + (64 << 10),
        "peak RSS {peak} kB grew more than 64 MiB over {before} kB with {} MiB in flight",
        in_flight >> 10
    );
    // Cut off: every half-received message's file goes.
    release.store(true, Ordering::SeqCst);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !incoming_files(&relay.spool()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "files of cut-off messages left: {:?}",
            incoming_files(&relay.spool())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        spool_files(&relay.spool(), ".msg").len(),
        1,
        "only the real client's message is queued"
    );
    // A large message, streamed, is stored exactly (dot-stuffing undone
    // across every chunk boundary).
    let stream = connect_from(Ipv4Addr::LOCALHOST, relay.port).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    assert!(reply(&mut reader).unwrap().starts_with("220"));
    for line in [
        "EHLO c.test",
        "MAIL FROM:<s@ext.test>",
        "RCPT TO:<alice@ourdom.test>",
        "DATA",
    ] {
        writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        reply(&mut reader).unwrap();
    }
    let mut body = b"Subject: large\r\n\r\n".to_vec();
    for number in 0..200_000u32 {
        body.extend_from_slice(format!(".{number:08} dot-stuffed line\r\n").as_bytes());
    }
    let mut wire = b"Subject: large\r\n\r\n".to_vec();
    for number in 0..200_000u32 {
        wire.extend_from_slice(format!("..{number:08} dot-stuffed line\r\n").as_bytes());
    }
    for piece in wire.chunks(65_521) {
        writer.write_all(piece).unwrap();
    }
    writer.write_all(b".\r\n").unwrap();
    let stored = reply(&mut reader).unwrap();
    assert!(stored.starts_with("250"), "{stored}");
    let id = stored.trim().rsplit(' ').next().unwrap().to_string();
    let file = std::fs::read(relay.spool().join(format!("{id}.msg"))).unwrap();
    let content_start = file.windows(2).position(|pair| pair == b"\n\n").unwrap() + 2;
    let content = &file[content_start..];
    let body_start = content
        .windows(9)
        .position(|window| window == b"Subject: ")
        .unwrap();
    assert!(content.starts_with(b"Received: from c.test"));
    assert!(
        content[body_start..] == body[..],
        "the stored body differs ({} octets stored, {} sent unstuffed)",
        content.len() - body_start,
        body.len()
    );
    assert_eq!(
        incoming_files(&relay.spool()),
        Vec::<PathBuf>::new(),
        "the stored message's incoming file is renamed, not left"
    );
}

/// Attackers holding connections from many addresses, reconnecting as soon
/// as one closes, a third of them sending NOOP to look busy.
struct Siege {
    /// Tells the threads to stop.
    stop: Arc<AtomicBool>,
    /// The threads.
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Connections made.
    pub opened: Arc<AtomicUsize>,
    /// What the relay said to them, counted: greetings (220), busy (421
    /// too many connections), timed out (421 4.4.2), too many errors (421),
    /// refused for an idle or erring session under stress (421).
    pub said: Arc<[AtomicUsize; 5]>,
}

/// The relay's words an attacker counts, in the order of [`Siege::said`].
const SAID: [&str; 5] = [
    "220 ",
    "Too many connections",
    "4.4.2",
    "Too many errors",
    "while we are busy",
];

impl Siege {
    /// `addresses` attackers (127.1.x.y), `each` connections from each.
    fn start(port: u16, addresses: usize, each: usize) -> Siege {
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicUsize::new(0));
        let said: Arc<[AtomicUsize; 5]> = Arc::new(Default::default());
        let threads = (0..addresses)
            .map(|number| {
                let (stop, opened, said) = (stop.clone(), opened.clone(), said.clone());
                let source = Ipv4Addr::new(127, 1, (number / 250) as u8, (number % 250 + 1) as u8);
                let noisy = number % 3 == 0;
                std::thread::spawn(move || {
                    let mut held: Vec<Option<TcpStream>> = (0..each).map(|_| None).collect();
                    let mut last_noop = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        let noop = noisy && last_noop.elapsed() > Duration::from_millis(300);
                        if noop {
                            last_noop = Instant::now();
                        }
                        for slot in held.iter_mut() {
                            if let Some(stream) = slot {
                                let mut bytes = [0u8; 512];
                                let closed = match stream.read(&mut bytes) {
                                    Ok(0) => true,
                                    Ok(read) => {
                                        let text = String::from_utf8_lossy(&bytes[..read]);
                                        for (count, words) in said.iter().zip(SAID) {
                                            if text.contains(words) {
                                                count.fetch_add(1, Ordering::Relaxed);
                                            }
                                        }
                                        false
                                    }
                                    Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
                                };
                                let written = !noop || stream.write_all(b"NOOP\r\n").is_ok();
                                if closed || !written {
                                    *slot = None;
                                }
                            }
                            if slot.is_none() {
                                if let Ok(stream) = connect_from(source, port) {
                                    stream.set_nonblocking(true).unwrap();
                                    opened.fetch_add(1, Ordering::Relaxed);
                                    *slot = Some(stream);
                                }
                            }
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
            })
            .collect();
        Siege {
            stop,
            threads,
            opened,
            said,
        }
    }
}

impl Drop for Siege {
    /// Stops the attackers and closes their connections.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Runs a real client every 100 ms for `period`, sampling the relay's file
/// descriptors; returns what the client got and the most descriptors seen.
fn real_client_during(relay: &Relay, period: Duration) -> (Outcomes, usize) {
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (outcomes, stop) = (outcomes.clone(), stop.clone());
        let port = relay.port;
        std::thread::spawn(move || {
            let mut number = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut mine = outcomes.lock().unwrap().clone();
                real_client_try(port, &mut mine, &format!("real {number}"));
                *outcomes.lock().unwrap() = mine;
                number += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut most = 0;
    let end = Instant::now() + period;
    while Instant::now() < end {
        most = most.max(relay.descriptors());
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    let outcomes = outcomes.lock().unwrap().clone();
    (outcomes, most)
}

/// Idle sessions from 50 addresses (10 each, reconnecting at once) against
/// a cap of 200 sessions: the rest get 421 at once, the relay's file
/// descriptors stay within the cap, under stress idle and NOOP-ing sessions
/// are closed after the stress timeout (1 s here) and their addresses then
/// refused while the stress lasts, so a real client gets sessions and
/// delivers; the refusals are logged once per 10 s, not each.
#[test]
fn idle_sessions_from_many_addresses_stay_within_the_cap() {
    let relay = Relay::start("max_connections = 200\nstress_timeout = \"1s\"\n", None);
    let baseline = relay.descriptors();
    let siege = Siege::start(relay.port, 50, 10);
    let deadline = Instant::now() + Duration::from_secs(20);
    while siege.opened.load(Ordering::Relaxed) < 500 {
        assert!(Instant::now() < deadline, "the siege did not get going");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (real, most) = real_client_during(&relay, Duration::from_secs(8));
    let opened = siege.opened.load(Ordering::Relaxed);
    let said: Vec<usize> = siege
        .said
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .collect();
    drop(siege);
    let log = relay.log();
    let refusals = log.matches("refused with 421").count();
    eprintln!(
        "{opened} attacker connections in 8 s: {} greeted, {} told busy, {} timed out, \
         {} closed for errors, {} refused as idlers; the real client: {real:?}; relay fds: \
         {baseline} before, at most {most}; {refusals} refusal log line(s)",
        said[0], said[1], said[2], said[3], said[4]
    );
    assert!(
        most <= baseline + 200 + 16,
        "the relay held {most} descriptors (baseline {baseline}, cap 200)"
    );
    assert!(
        real.delivered >= 1,
        "a real client must get through the siege: {real:?}\nlog:\n{log}"
    );
    assert!(
        said[2] >= 100,
        "idle sessions must be closed after the stress timeout: {said:?}"
    );
    assert!(
        said[3] > 0,
        "NOOP-ing sessions must be closed for junk under stress: {said:?}"
    );
    assert!(
        said[4] > 0,
        "a client whose sessions idled is refused while the stress lasts: {said:?}"
    );
    assert!(
        (1..=3).contains(&refusals),
        "refusals logged {refusals} times in ~10 s (once per 10 s expected):\n{log}"
    );
}

/// One DNS question over a new TCP connection from 127.0.0.1 (the answer's
/// RCODE, whatever it is, or why there was none), 10 s per step at most.
fn tcp_question(server: SocketAddr, id: u16) -> Result<u8, String> {
    let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(10))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut question = id.to_be_bytes().to_vec();
    question.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    question.extend_from_slice(b"\x03www\x07example\x04test\x00\x00\x01\x00\x01");
    let mut framed = (question.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&question);
    stream
        .write_all(&framed)
        .map_err(|e| format!("write: {e}"))?;
    let mut length = [0u8; 2];
    stream
        .read_exact(&mut length)
        .map_err(|e| format!("read: {e}"))?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream
        .read_exact(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    if answer.len() < 12 || answer[..2] != id.to_be_bytes() {
        return Err(format!("not an answer to {id}: {answer:?}"));
    }
    Ok(answer[3] & 0x0f)
}

/// One `GET path` with `token` over a new connection: the status line, or why none.
fn http_get(server: SocketAddr, path: &str, token: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(10))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut status = String::new();
    BufReader::new(stream)
        .read_line(&mut status)
        .map_err(|e| format!("read: {e}"))?;
    Ok(status.trim().to_string())
}

/// Issue 16 item 7, across services: idle SMTP sessions from 100 addresses
/// (1,000 connections, more than the process may open) fill the relay's
/// budget (200 sessions; the rest get 421) in a `serve` whose open-file
/// limit is low (640, hard), and meanwhile DNS-over-TCP
/// questions and an admin API request are answered, and no listener runs
/// out of descriptors: each has its own budget inside the limit (the relay's
/// idle sessions used to take every descriptor of the process).
#[test]
fn the_relays_idle_sessions_leave_dns_and_the_api_their_descriptors() {
    // 200 + 64 + 32 connections and the 256 kept for the rest fit in 640.
    let relay = Relay::start_beside(
        "max_connections = 200\nstress_timeout = \"5m\"\n",
        Some(640),
        &Beside {
            dns: "tcp_max_connections = 64\n",
            http: Some("max_connections = 32\n"),
        },
    );
    let http = relay.http.expect("the control plane");
    let store = relay.directory.path().join("cutover.db");
    let created = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["--store", store.to_str().unwrap()])
        .args(["token", "create", "ops", "--scope", "admin"])
        .output()
        .expect("cutover token create runs");
    assert!(created.status.success(), "token create: {created:?}");
    let admin = String::from_utf8_lossy(&created.stdout).trim().to_owned();

    let siege = Siege::start(relay.port, 100, 10);
    // The relay's budget is full once attackers are told it is.
    let deadline = Instant::now() + Duration::from_secs(60);
    while siege.said[1].load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "the relay's budget was not filled within 60 s: {} connections; log:\n{}",
            siege.opened.load(Ordering::Relaxed),
            relay.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let busy_before = siege.said[1].load(Ordering::Relaxed);

    let mut unanswered = Vec::new();
    for id in 0..20u16 {
        if let Err(why) = tcp_question(relay.dns, id) {
            unanswered.push(format!("question {id}: {why}"));
        }
    }
    let api = http_get(http, "/api/v1/zones", &admin);
    let most = relay.descriptors();
    // Sessions still refused after the questions: the budget stayed full.
    let deadline = Instant::now() + Duration::from_secs(30);
    while siege.said[1].load(Ordering::Relaxed) == busy_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let busy_after = siege.said[1].load(Ordering::Relaxed);
    let greeted = siege.said[0].load(Ordering::Relaxed);
    drop(siege);
    let log = relay.log();
    eprintln!(
        "{greeted} attacker sessions greeted, {busy_after} told busy; 20 TCP questions, \
         {} unanswered; the API: {api:?}; serve held {most} descriptors of 640",
        unanswered.len()
    );
    assert!(
        unanswered.is_empty(),
        "DNS over TCP must answer while the relay's budget is full: {unanswered:?}\nlog:\n{log}"
    );
    assert!(
        api.as_ref()
            .is_ok_and(|status| status.starts_with("HTTP/1.1 200")),
        "the admin API must answer while the relay's budget is full: {api:?}\nlog:\n{log}"
    );
    assert!(
        busy_after > busy_before,
        "the relay's budget stayed full through the questions (busy {busy_before} then {busy_after})"
    );
    for failure in [
        "Too many open files",
        "accepting a connection failed",
        "TCP accept failed",
    ] {
        assert!(
            !log.contains(failure),
            "no listener may run out of descriptors ({failure:?}):\n{log}"
        );
    }
}

/// The process out of file descriptors (a limit of 256 below the relay's
/// cap of 1000): accept fails, which is logged once per 10 s with a count,
/// not a hundred times a second; the relay goes under stress, closes its
/// idle sessions after the stress timeout, and a real client is served.
#[test]
fn descriptors_exhausted_is_logged_once_per_interval_and_recovers() {
    let relay = Relay::start("stress_timeout = \"1s\"\n", Some(256));
    // `serve` starts the relay before the rest of it: let it finish starting
    // (the siege is on a running server, as in the review).
    std::thread::sleep(Duration::from_secs(1));
    let siege = Siege::start(relay.port, 40, 10);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !relay.log().contains("accepting a connection failed") {
        assert!(
            Instant::now() < deadline,
            "the relay never ran out of descriptors; log:\n{}",
            relay.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (real, most) = real_client_during(&relay, Duration::from_secs(8));
    drop(siege);
    let log = relay.log();
    let failures = log.matches("accepting a connection failed").count();
    eprintln!(
        "at most {most} fds of 256; the real client: {real:?}; {failures} accept-failure log line(s)"
    );
    assert!(
        (1..=3).contains(&failures),
        "accept failures logged {failures} times in ~10 s (once per 10 s expected):\n{log}"
    );
    assert!(
        real.delivered >= 1,
        "a real client must be served once idle sessions are closed: {real:?}\nlog:\n{log}"
    );
}

/// Large messages queued while the destination is down (retried every
/// 400 ms meanwhile) are delivered, once it is back, without being read
/// into memory: 20 messages of 8 MiB (160 MiB) each go out 64 KiB at a time.
/// (They used to be read whole for every attempt: RSS +130 MB.)
#[test]
fn a_queue_of_large_messages_is_delivered_with_bounded_memory() {
    let relay = Relay::start("first_retry = \"200ms\"\nmax_retry = \"400ms\"\n", None);
    let before = relay.memory("VmRSS");
    let line = [[b'y'; 998].as_slice(), b"\r\n"].concat();
    let body = line.repeat(8 << 10);
    for number in 0..20 {
        let stream = connect_from(Ipv4Addr::LOCALHOST, relay.port).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        assert!(reply(&mut reader).unwrap().starts_with("220"));
        for line in [
            "EHLO c.test",
            "MAIL FROM:<s@ext.test>",
            "RCPT TO:<alice@ourdom.test>",
            "DATA",
        ] {
            writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
            reply(&mut reader).unwrap();
        }
        writer
            .write_all(format!("Subject: large {number}\r\n\r\n").as_bytes())
            .unwrap();
        writer.write_all(&body).unwrap();
        writer.write_all(b".\r\n").unwrap();
        let stored = reply(&mut reader).unwrap();
        assert!(stored.starts_with("250"), "message {number}: {stored}");
    }
    let received = relay.memory("VmHWM");
    // The destination comes back: a sink that counts (no dump on disk).
    let counted = relay.directory.path().join("sink.log");
    let errors = relay.directory.path().join("sink.errors");
    let (_sink, sink_port) = start_on_free_ports("smtp-sink", |ports: &mut Ports| {
        let sink_port = ports.pick(&[LOOPBACK]);
        let mut sink = Guard(
            Command::new("smtp-sink")
                .args(["-c", "-u", "nobody"])
                .arg(format!("127.0.0.1:{sink_port}"))
                .arg("64")
                .stdout(std::fs::File::create(&counted).unwrap())
                .stderr(std::fs::File::create(&errors).unwrap())
                .spawn()
                .expect("smtp-sink runs (package postfix)"),
        );
        let address = SocketAddr::from((LOOPBACK, sink_port));
        wait_bound("smtp-sink", &mut sink.0, &[Socket::Tcp(address)], &errors)?;
        Ok((sink, sink_port))
    });
    let config = relay.directory.path().join("cutover.toml");
    let retarget = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["--config", config.to_str().unwrap(), "mail", "retarget"])
        .args(["ourdom.test", &format!("127.0.0.1:{sink_port}")])
        .output()
        .unwrap();
    assert!(
        retarget.status.success(),
        "{}",
        String::from_utf8_lossy(&retarget.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !spool_files(&relay.spool(), ".msg").is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} messages still queued after 120 s",
            spool_files(&relay.spool(), ".msg").len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let peak = relay.memory("VmHWM");
    let sunk = std::fs::read_to_string(&counted).unwrap_or_default();
    eprintln!(
        "20 messages of 8 MiB queued and delivered: RSS {before} kB before, peak {received} kB \
         once received, {peak} kB once delivered; smtp-sink counted {:?}",
        sunk.split_whitespace().last()
    );
    assert!(
        peak < before + (64 << 10),
        "peak RSS {peak} kB grew more than 64 MiB over {before} kB delivering 160 MiB"
    );
    assert_eq!(
        sunk.split_whitespace().last(),
        Some("mesg=20"),
        "smtp-sink counts every message"
    );
}
