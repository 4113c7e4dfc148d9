//! Nothing lost after 250: smtp-source load, kill -9 of the relay mid-run,
//! and injected fsync/rename failures (strace) that must give 451, never 250.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, relay_binary, start_relay, tool, wait_listening, Client, Process, Sink};

/// The relay arguments for ourdom.test routed to `sink`.
fn arguments(spool: &std::path::Path, sink: u16) -> Vec<String> {
    [
        "--spool",
        spool.to_str().unwrap(),
        "--hostname",
        "mx.relay.test",
        "--domain",
        "ourdom.test=alice,bob",
        "--route",
        &format!("ourdom.test=127.0.0.1:{sink}"),
        "--retry-ms",
        "200",
    ]
    .iter()
    .map(|word| word.to_string())
    .collect()
}

/// The Subject lines the sink received.
fn subjects(sink: &Sink) -> Vec<String> {
    sink.messages()
        .iter()
        .filter_map(|message| {
            message
                .lines()
                .find_map(|line| line.strip_prefix("Subject: "))
                .map(str::to_string)
        })
        .collect()
}

/// smtp-source sends 200 messages over 4 sessions; every one arrives.
#[test]
fn smtp_source_load_arrives_in_full() {
    let directory = tempfile::tempdir().unwrap();
    let sink = Sink::start(directory.path(), &[]);
    let port = free_port();
    let _relay = start_relay(port, &arguments(&directory.path().join("spool"), sink.port));
    let status = Command::new(tool("smtp-source"))
        .args([
            "-s",
            "4",
            "-m",
            "200",
            "-f",
            "s@ext.test",
            "-t",
            "alice@ourdom.test",
            "-M",
            "client.test",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .status()
        .expect("run smtp-source");
    assert!(status.success(), "smtp-source failed: {status}");
    sink.wait_for(Duration::from_secs(30), "200 messages", |messages| {
        messages.len() >= 200
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sink.messages().len(),
        200,
        "expected exactly the 200 messages sent"
    );
}

/// A sender records every message that got 250 while the relay is killed
/// with SIGKILL four times mid-run and restarted; afterwards each recorded message
/// has arrived at least once.
#[test]
fn kill_9_mid_run_loses_nothing_acknowledged() {
    let directory = tempfile::tempdir().unwrap();
    let spool = directory.path().join("spool");
    let sink = Sink::start(directory.path(), &[]);
    let port = free_port();
    let relay = Arc::new(Mutex::new(start_relay(port, &arguments(&spool, sink.port))));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut attempted = 0;
            // At least 300 messages, and on until every kill has happened.
            for number in 0.. {
                if number >= 300 && stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                attempted += 1;
                let Ok((mut client, _)) = Client::connect(port) else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let subject = format!("crash-{number}");
                let result = client.command("EHLO client.test").and_then(|_| {
                    client.message(
                        "s@ext.test",
                        "alice@ourdom.test",
                        &format!("Subject: {subject}\r\n\r\nx"),
                    )
                });
                if let Ok(reply) = result {
                    if reply.starts_with("250 ") {
                        acknowledged.lock().unwrap().push(subject);
                    }
                }
                let _ = client.command("QUIT");
            }
            attempted
        })
    };
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(150 + 100 * round));
        let mut guard = relay.lock().unwrap();
        guard.kill();
        *guard = start_relay(port, &arguments(&spool, sink.port));
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let attempted = sender.join().unwrap();
    eprintln!("sending done after {:?}", started.elapsed());
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 100,
        "too few messages acknowledged ({}) to mean anything",
        acknowledged.len()
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let received = subjects(&sink);
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|subject| !received.contains(subject))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged messages never arrived (of {attempted} attempted): {:?}",
            missing.len(),
            acknowledged.len(),
            &missing[..missing.len().min(20)]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{} of {attempted} messages acknowledged, all arrived after {:?}",
        acknowledged.len(),
        started.elapsed()
    );
    drop(relay);
}

/// Under strace fault injection, a failing fsync or rename of the spool
/// gives the client 451 — never 250 — and the session goes on.
#[test]
fn injected_storage_faults_give_451() {
    // Only the spool calls fsync and rename; a write injection would also
    // break the client's socket, so it is left to the spool unit test.
    for injection in ["inject=fsync:error=EIO", "inject=rename:error=EIO"] {
        let directory = tempfile::tempdir().unwrap();
        let spool = directory.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let port = free_port();
        let syscall = injection.split(['=', ':']).nth(1).unwrap();
        let child = Command::new(tool("strace"))
            .process_group(0)
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                &format!("trace={syscall}"),
                "-e",
                injection,
            ])
            .arg(relay_binary())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(arguments(&spool, free_port()))
            .spawn()
            .expect("run strace");
        // Killing strace alone would leave the traced relay running.
        let _relay = ProcessGroup(Process {
            child,
            name: "relay under strace".into(),
        });
        wait_listening(port, "relay under strace");
        let (mut client, _) = Client::connect(port).unwrap();
        client.command("EHLO client.test").unwrap();
        let reply = client
            .message(
                "s@ext.test",
                "alice@ourdom.test",
                "Subject: doomed\r\n\r\nx",
            )
            .unwrap();
        assert!(
            reply.starts_with("451 4.3.0"),
            "{injection}: expected 451, saw {reply}"
        );
        let reply = client.command("NOOP").unwrap();
        assert!(
            reply.starts_with("250"),
            "{injection}: session did not go on: {reply}"
        );
    }
}

/// A process leading its own group; the whole group is killed on drop.
struct ProcessGroup(Process);

impl Drop for ProcessGroup {
    /// SIGKILL to the group (strace and the relay it traces), then reap.
    fn drop(&mut self) {
        let group = format!("-{}", self.0.child.id());
        let _ = Command::new("kill").args(["-9", "--", &group]).status();
        self.0.kill();
    }
}
