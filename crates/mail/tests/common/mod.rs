//! Shared fixtures of the black-box tests: ports, child-process guards,
//! Postfix's smtp-sink as the destination, the relay binary, a raw client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// Not every test file uses each of these.
#[allow(unused_imports)]
pub use cutover_peers::{
    log_length, refusing_tcp, start_on_free_ports, wait_bound_from, Ports, Socket, StartError,
};

/// A child process killed (SIGKILL) and reaped when the guard drops.
pub struct Process {
    /// The child.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
    /// Its stderr, when it was started with one of its own (printed if the
    /// test fails while it runs).
    pub log: Option<PathBuf>,
}

impl Process {
    /// A guard for `child` whose stderr goes to the test's.
    pub fn new(child: Child, name: impl Into<String>) -> Process {
        Process {
            child,
            name: name.into(),
            log: None,
        }
    }

    /// Kills the process now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    /// Kills and reaps the child; shows its log when the test is failing.
    fn drop(&mut self) {
        self.kill();
        if let (true, Some(log)) = (std::thread::panicking(), &self.log) {
            eprintln!(
                "{} log:\n{}",
                self.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

/// A `--listen` process (the relay, maybe under strace) on 127.0.0.1:`port`:
/// `command` is run with its stderr in `log`; `Ok` once it (or the process
/// it runs) listens there, `InUse` when the port was taken.
pub fn start_listening(
    name: &str,
    port: u16,
    mut command: Command,
    log: &Path,
) -> Result<Process, StartError> {
    let from = log_length(log);
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the log");
    let child = command
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let mut process = Process {
        child,
        name: format!("{name} :{port}"),
        log: Some(log.to_path_buf()),
    };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    wait_bound_from(name, &mut process.child, &[Socket::Tcp(address)], log, from)?;
    Ok(process)
}

/// Waits until something accepts on `port`, panicking after 30 s.
pub fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} never listened on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The path of a required tool, panicking loudly when it is not installed.
pub fn tool(name: &str) -> PathBuf {
    for directory in [
        "/usr/sbin",
        "/usr/bin",
        "/usr/lib/postfix/sbin",
        "/sbin",
        "/bin",
    ] {
        let path = Path::new(directory).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "{name} is not installed: apt-get install -y postfix swaks (tests need it, no skipping)"
    );
}

/// A running smtp-sink appending every transaction to `dump`.
pub struct Sink {
    /// The process.
    pub process: Process,
    /// Its port.
    pub port: u16,
    /// The dump file.
    pub dump: PathBuf,
}

impl Sink {
    /// Starts smtp-sink on a free loopback port with extra fault flags
    /// (`-r RCPT` defers RCPT, `-f DATA` rejects DATA, `-q DATA` disconnects),
    /// again on another port if the one picked was taken.
    pub fn start(directory: &Path, faults: &[&str]) -> Sink {
        start_on_free_ports("smtp-sink", |ports: &mut Ports| {
            Sink::try_start_on(directory, faults, ports.pick(&[[127, 0, 0, 1]]))
        })
    }

    /// Starts smtp-sink on `port`; `InUse` when the port was taken.
    fn try_start_on(directory: &Path, faults: &[&str], port: u16) -> Result<Sink, StartError> {
        let dump_directory = directory.join(format!("sink-{port}"));
        std::fs::create_dir_all(&dump_directory).unwrap();
        let mut permissions = std::fs::metadata(&dump_directory).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o777);
        std::fs::set_permissions(&dump_directory, permissions).unwrap();
        let dump = dump_directory.join("dump");
        let mut command = Command::new(tool("smtp-sink"));
        command
            .args(["-u", "nobody", "-h", "sink.test", "-D"])
            .arg(&dump)
            .args(faults)
            .arg(format!("127.0.0.1:{port}"))
            .arg("64")
            .stdout(Stdio::null());
        let log = dump_directory.join("smtp-sink.log");
        let process = start_listening("smtp-sink", port, command, &log)?;
        Ok(Sink {
            process,
            port,
            dump,
        })
    }

    /// The transactions received so far, in arrival order.
    pub fn messages(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.dump).unwrap_or_default();
        text.split("X-Client-Addr: ")
            .filter(|part| !part.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Waits until `done(messages)` holds, panicking with `what` after `limit`.
    pub fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + limit;
        loop {
            let messages = self.messages();
            if done(&messages) {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; sink has {} message(s):\n{}",
                messages.len(),
                messages.join("\n----\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The relay binary built by cargo for this test run.
pub fn relay_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cutover-mail-relay"))
}

/// Starts the relay binary with `arguments` on a free port (again on
/// another if the one picked was taken) and waits until it listens; the
/// process and its port. Its stderr goes to a log beside `spool`.
pub fn start_relay(spool: &Path, arguments: &[String]) -> (Process, u16) {
    start_on_free_ports("cutover-mail-relay", |ports: &mut Ports| {
        let port = ports.pick(&[[127, 0, 0, 1]]);
        try_relay(spool, port, arguments).map(|process| (process, port))
    })
}

/// Starts the relay binary again on `port` (after it was killed there); the
/// test fails if another process took the port meanwhile.
pub fn restart_relay(spool: &Path, port: u16, arguments: &[String]) -> Process {
    try_relay(spool, port, arguments)
        .unwrap_or_else(|e| panic!("cutover-mail-relay did not start again on {port}: {e}"))
}

/// One start of the relay on `port`, its stderr appended to a log beside `spool`.
fn try_relay(spool: &Path, port: u16, arguments: &[String]) -> Result<Process, StartError> {
    let mut command = Command::new(relay_binary());
    command
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(arguments)
        .stdout(Stdio::null());
    let log = spool.with_extension("relay.log");
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).expect("create the relay log's folder");
    }
    start_listening("cutover-mail-relay", port, command, &log)
}

/// A blocking raw SMTP client for exact conversations.
pub struct Client {
    /// The reader side.
    reader: BufReader<TcpStream>,
    /// The writer side.
    writer: TcpStream,
}

impl Client {
    /// Connects and reads the greeting (returned).
    pub fn connect(port: u16) -> std::io::Result<(Client, String)> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = client.reply()?;
        Ok((client, greeting))
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Reads one whole (multi-line) reply.
    pub fn reply(&mut self) -> std::io::Result<String> {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("closed after {reply:?}"),
                ));
            }
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(reply);
            }
        }
    }

    /// Sends a command line and returns the reply.
    pub fn command(&mut self, line: &str) -> std::io::Result<String> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// Sends one whole message; returns the final reply to the data.
    pub fn message(&mut self, from: &str, to: &str, body: &str) -> std::io::Result<String> {
        for (line, expected) in [
            (format!("MAIL FROM:<{from}>"), "250"),
            (format!("RCPT TO:<{to}>"), "250"),
            ("DATA".to_string(), "354"),
        ] {
            let reply = self.command(&line)?;
            if !reply.starts_with(expected) {
                return Ok(reply);
            }
        }
        self.send(body.as_bytes())?;
        self.send(b"\r\n.\r\n")?;
        self.reply()
    }

    /// Everything left until the server closes (for STARTTLS tests).
    pub fn into_stream(self) -> TcpStream {
        let buffered = self.reader.buffer().len();
        assert_eq!(buffered, 0, "unexpected buffered bytes from the server");
        self.writer
    }

    /// Reads until EOF.
    pub fn drain(mut self) -> String {
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest);
        rest
    }
}

/// A relay running in this process on its own tokio runtime.
pub struct InProcess {
    /// The relay handle.
    pub relay: cutover_mail::Relay<cutover_mail::SmtpCourier>,
    /// The port it listens on.
    pub port: u16,
    /// The runtime; dropping it stops the relay.
    pub runtime: tokio::runtime::Runtime,
}

impl InProcess {
    /// Starts a relay with `config` (controls served too) on a port it
    /// binds and holds.
    pub fn start(config: cutover_mail::RelayConfig) -> InProcess {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the relay's listener");
        let address = listener.local_addr().expect("a bound listener");
        let port = address.port();
        let mut courier =
            cutover_mail::SmtpCourier::new(config.policy.hostname.clone(), vec![address]);
        courier.connect_timeout = Duration::from_secs(2);
        courier.reply_timeout = Duration::from_secs(5);
        let relay = cutover_mail::Relay::open(config, courier).expect("open relay");
        let serving = relay.clone();
        runtime.spawn(async move { serving.serve(listener).await });
        let delivering = relay.clone();
        runtime.spawn(async move { delivering.deliver().await });
        let controlling = relay.clone();
        runtime.spawn(async move { controlling.serve_control().await });
        wait_listening(port, "relay");
        InProcess {
            relay,
            port,
            runtime,
        }
    }

    /// Waits until `done` holds for the queue listing (15 s at most).
    pub fn wait_queue(&self, what: &str, done: impl Fn(&[cutover_mail::queue::Entry]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let entries = self.relay.list();
            if done(&entries) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; queue: {entries:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A scripted destination: an SMTP server on a thread that knows some
/// mailboxes (250 at RCPT) and refuses the rest (550); it stops listening
/// (connections refused) when dropped.
pub struct Mailboxes {
    /// Its port.
    pub port: u16,
    /// Tells the thread to stop.
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The thread.
    thread: Option<std::thread::JoinHandle<()>>,
    /// Recipients asked about, in order.
    pub asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Mailboxes {
    /// Listens on a port of its own knowing these addresses.
    pub fn start(known: &[&str]) -> Mailboxes {
        Mailboxes::on(cutover_peers::hold_tcp_on([127, 0, 0, 1]), known)
    }

    /// Listens again on `port`, where an earlier one listened before it was
    /// dropped (the MX back up); the port comes from the range no socket
    /// bound to port 0 lands in, so it is still free.
    pub fn again(port: u16, known: &[&str]) -> Mailboxes {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("bind the test MX again on {port}: {e}"));
        Mailboxes::on(listener, known)
    }

    /// Listens on `listener` (bound and held by the test) knowing these addresses.
    pub fn on(listener: TcpListener, known: &[&str]) -> Mailboxes {
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let known: Vec<String> = known.iter().map(|k| k.to_lowercase()).collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let thread = {
            let stop = stop.clone();
            let asked = asked.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            let _ = Mailboxes::converse(stream, &known, &asked);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            })
        };
        Mailboxes {
            port,
            stop,
            thread: Some(thread),
            asked,
        }
    }

    /// One SMTP conversation (no DATA).
    fn converse(
        stream: TcpStream,
        known: &[String],
        asked: &std::sync::Mutex<Vec<String>>,
    ) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        writer.write_all(b"220 mx.dest.test ESMTP\r\n")?;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250 mx.dest.test\r\n"
            } else if upper.starts_with("RCPT TO:<") {
                let address = line[9..].split('>').next().unwrap_or("").to_lowercase();
                asked.lock().unwrap().push(address.clone());
                if known.contains(&address) {
                    b"250 2.1.5 Ok\r\n"
                } else {
                    b"550 5.1.1 No such user\r\n"
                }
            } else if upper.starts_with("QUIT") {
                writer.write_all(b"221 Bye\r\n")?;
                return Ok(());
            } else if upper.starts_with("DATA") {
                b"554 5.5.1 Not here\r\n"
            } else {
                b"250 Ok\r\n"
            };
            writer.write_all(reply)?;
        }
    }
}

impl Drop for Mailboxes {
    /// Stops listening.
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
