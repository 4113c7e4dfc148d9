//! What the mail tests of the `cutover` binary share: a guard for the
//! processes they start, the wait for a listener, reading one SMTP reply,
//! sending one message, and Postfix's smtp-sink as a destination (on a
//! checked port, started again on another if its port was taken).

#![allow(dead_code)]

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed and reaped on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    /// SIGKILL and reap.
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[allow(unused_imports)]
pub use cutover_peers::{
    log_length, refusing_tcp, start_on_free_ports, wait_bound, wait_bound_from, Ports, Socket,
    StartError, LOOPBACK,
};

/// Waits until `port` accepts, 60 s at most (a deadline for a loaded
/// machine, not a measurement).
pub fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One SMTP reply (all its lines).
pub fn reply(reader: &mut impl BufRead) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return all;
        }
    }
}

/// Sends one message to `to` with `subject` through the relay on `port`;
/// asserts every reply, the 250 for the message included.
pub fn send(port: u16, to: &str, subject: &str) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = std::io::BufReader::new(stream);
    assert!(reply(&mut reader).starts_with("220"));
    for (line, code) in [
        ("EHLO client.test".to_string(), "250"),
        ("MAIL FROM:<s@ext.test>".to_string(), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_string(), "354"),
        (format!("Subject: {subject}\r\n\r\nbody\r\n."), "250"),
        ("QUIT".to_string(), "221"),
    ] {
        writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        let got = reply(&mut reader);
        assert!(
            got.starts_with(code),
            "{line:?}: expected {code}, saw {got}"
        );
    }
}

/// Postfix's smtp-sink on a free port of 127.0.0.1, dumping each message
/// to the returned file; its port.
pub fn sink(directory: &Path) -> (Guard, PathBuf, u16) {
    start_on_free_ports("smtp-sink", |ports: &mut Ports| {
        let port = ports.pick(&[LOOPBACK]);
        try_sink(directory, port).map(|(guard, dump)| (guard, dump, port))
    })
}

/// One start of smtp-sink on `port`: `InUse` when it was taken.
fn try_sink(directory: &Path, port: u16) -> Result<(Guard, PathBuf), StartError> {
    let dumps = directory.join(format!("sink-{port}"));
    std::fs::create_dir_all(&dumps).unwrap();
    let mut permissions = std::fs::metadata(&dumps).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o777);
    std::fs::set_permissions(&dumps, permissions).unwrap();
    let dump = dumps.join("dump");
    let program = ["/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .expect("smtp-sink is not installed: apt-get install -y postfix");
    let log = dumps.join("smtp-sink.log");
    let child = Command::new(program)
        .args(["-u", "nobody", "-h", "sink.test", "-D"])
        .arg(&dump)
        .arg(format!("127.0.0.1:{port}"))
        .arg("64")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start smtp-sink");
    let mut guard = Guard(child);
    let address = SocketAddr::from((LOOPBACK, port));
    wait_bound("smtp-sink", &mut guard.0, &[Socket::Tcp(address)], &log)?;
    Ok((guard, dump))
}

/// The (recipient, subject) pairs in a sink dump, in arrival order.
pub fn arrivals(dump: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dump).unwrap_or_default();
    text.split("X-Client-Addr: ")
        .filter(|part| !part.trim().is_empty())
        .filter_map(|part| {
            let to = part
                .lines()
                .find_map(|line| line.strip_prefix("X-Rcpt-Args: <"))
                .or_else(|| {
                    part.lines()
                        .find_map(|line| line.strip_prefix("X-Rcpt-To: <"))
                })?;
            let subject = part
                .lines()
                .find_map(|line| line.strip_prefix("Subject: "))?;
            Some((
                to.split('>').next().unwrap_or("").to_string(),
                subject.to_string(),
            ))
        })
        .collect()
}

/// Waits until `done` holds (20 s at most), panicking with `what`.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
