//! Crash anywhere: `cutover serve` (whose scheduler runs the migration) is
//! made to die at every step and at every record write, then restarted;
//! the migration must finish with the zone exactly as intended, every
//! change applied once (one journal version per writing step) and audited
//! once.
//!
//! ```text
//!  for each point P in intent:1..3, write:1..3, step:1..9, one kill -9 while waiting,
//!  and SIGKILL (by strace) at each fsync 1..N:
//!    fresh store ── migrate start ── serve (CUTOVER_CRASH_AT=P) ──abort()──▶ dead
//!                                 ── serve (no hook) ──▶ … ──▶ done
//!    assert: zone export == intended; journal has 1 + 3 versions; audit has 3 applied rows
//! ```
//!
//! `CUTOVER_CRASH_AT` is a test hook of the binary (see
//! crates/server/src/scheduler/crash.rs): `std::process::abort()` right there,
//! which ends the process as `kill -9` does (no unwinding, no flushing).
//! `intent:N` dies after the runner recorded its Nth write's intent, before
//! the provider was called; `write:N` right after the provider applied it,
//! before the runner recorded that; `step:N` after the tick in which the
//! Nth step was recorded done. The points run in parallel, each with its
//! own store and port.
//!
//! The second test needs no hook: strace delivers SIGKILL (a literal
//! `kill -9`) to `cutover serve` as it enters its Nth fsync, for every N an
//! uninterrupted run reaches — every durable write of the migration, the
//! runner's records and the store's record changes alike.

mod migration;

use std::net::SocketAddr;
use std::time::Duration;

use migration::*;

/// The original TTL of www (scaled down).
const ORIGINAL_TTL: u32 = 3;

/// The migration file: www to the new address, TTL 1 during the move,
/// short observation, verified at cutover's own address.
fn file_text(authority: SocketAddr, web_port: u16) -> String {
    format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n\
         [[move]]\nfrom = \"{OLD}\"\nto = \"{NEW}\"\n\
         [ttl]\nduring = 1\n\
         [[check]]\nhttp = \"http://www.example.test:{web_port}/healthz\"\nexpect_status = 200\n\
         [schedule]\nobserve = \"1s\"\nmargin = \"1s\"\n\
         [verify]\nauthorities = [\"{authority}\"]\nresolvers = [\"{authority}\"]\ntries = 5\ninterval = \"1s\"\n"
    )
}

/// The zone as intended at the end, without its SOA line (the serial is
/// whatever the changes made it).
fn intended() -> String {
    format!(
        "$ORIGIN example.test.\n\
         example.test. 3600 IN NS ns1.example.test.\n\
         ns1.example.test. 3600 IN A 127.0.0.1\n\
         other.example.test. 300 IN A 192.0.2.99\n\
         www.example.test. {ORIGINAL_TTL} IN A {NEW}\n"
    )
}

/// How a run is interrupted.
#[derive(Clone, Debug)]
enum Interruption {
    /// `CUTOVER_CRASH_AT` with this value.
    Hook(String),
    /// `kill -9` of serve while the migration waits for the caches.
    KillWhileWaiting,
}

/// Runs one migration, interrupted once, and checks the result; returns a
/// description of any failure.
fn one_run(interruption: &Interruption, web_port: u16) -> Result<(), String> {
    let site = Site::new(ORIGINAL_TTL);
    // Started with serve down: nothing runs until the interrupted serve starts.
    let file = site.migration_file(&file_text(site.addr, web_port));
    let id = start_before_serve(&site, &file);
    let first_dead = match interruption {
        Interruption::Hook(point) => {
            // Bound or not, it must end at the crash point (a port still in
            // use after every start is reported below with the log).
            let (mut serve, _bound) = site.start_serve(&[("CUTOVER_CRASH_AT", point.as_str())]);
            let status = wait_exit(
                &mut serve.child,
                Duration::from_secs(40),
                "the crashing serve",
            );
            if status.code().is_some() {
                return Err(format!(
                    "{point}: expected serve to abort at the crash point, it exited {status:?}; log:\n{}",
                    site.log()
                ));
            }
            format!("{point}: {}", crash_line(&site.log()))
        }
        Interruption::KillWhileWaiting => {
            let mut serve = site.serve(&[]);
            wait_state(&site, id, &["waiting"], Duration::from_secs(20));
            serve.child.kill().map_err(|e| e.to_string())?;
            let _ = serve.child.wait();
            "kill -9 while waiting".to_string()
        }
    };
    let _serve = site.serve(&[]);
    finishes_as_intended(&site, id, &first_dead)
}

/// After the restart: the migration ends done, the zone as intended, each
/// change in the journal once and in the audit log once.
fn finishes_as_intended(site: &Site, id: i64, first_dead: &str) -> Result<(), String> {
    let summary = wait_state(
        site,
        id,
        &["done", "failed", "rolled_back", "paused", "aborted"],
        Duration::from_secs(60),
    );
    if summary["state"] != "done" {
        return Err(format!(
            "{first_dead}: expected done after the restart, saw {summary}; log:\n{}",
            site.log()
        ));
    }
    let store = arg(&site.store);
    let export = ok(
        "zone export",
        cutover(&["--store", &store, "zone", "export", "example.test."], &[]),
    );
    let zone: String = export
        .lines()
        .filter(|l| !l.contains(" SOA "))
        .map(|l| format!("{l}\n"))
        .collect();
    if zone != intended() {
        return Err(format!(
            "{first_dead}: expected the zone\n{}saw\n{zone}",
            intended()
        ));
    }
    let history = ok(
        "zone show",
        cutover(&["--store", &store, "zone", "show", "example.test."], &[]),
    );
    let changes = history.lines().filter(|l| l.contains(" → ")).count();
    if changes != 3 {
        return Err(format!(
            "{first_dead}: expected 3 versions after the import (lower, switch, restore: each change applied once), saw {changes}:\n{history}"
        ));
    }
    let detail = show(site, id);
    let audit = detail["audit"].as_array().cloned().unwrap_or_default();
    let rows: Vec<(String, String)> = audit
        .iter()
        .map(|a| {
            (
                a["step"].as_str().unwrap_or("").to_string(),
                a["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = ["lower_ttls", "switch", "restore_ttls"]
        .iter()
        .map(|s| (s.to_string(), "applied".to_string()))
        .collect();
    if rows != expected {
        return Err(format!(
            "{first_dead}: expected the audit log {expected:?} (each change once), saw {rows:?}"
        ));
    }
    println!("{first_dead} → restarted → done; zone as intended, 3 changes, 3 audit rows");
    Ok(())
}

/// The hook's own line in serve's log ("aborting …").
fn crash_line(log: &str) -> String {
    log.lines()
        .find(|l| l.contains("CUTOVER_CRASH_AT: aborting"))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "(no hook line)".into())
}

/// Every crash point, in parallel: each run finishes the migration exactly
/// as intended after a restart.
#[test]
fn a_migration_killed_at_any_step_or_write_finishes_exactly_once_after_a_restart() {
    let listener = hold_tcp_on(NEW.octets());
    let port = listener.local_addr().expect("a bound listener").port();
    let _new = HttpServer::start(listener, "new");
    let mut points: Vec<Interruption> = Vec::new();
    for n in 1..=3 {
        points.push(Interruption::Hook(format!("intent:{n}")));
        points.push(Interruption::Hook(format!("write:{n}")));
    }
    for n in 1..=9 {
        points.push(Interruption::Hook(format!("step:{n}")));
    }
    points.push(Interruption::KillWhileWaiting);
    let runs: Vec<_> = points
        .into_iter()
        .map(|point| std::thread::spawn(move || one_run(&point, port)))
        .collect();
    let failures: Vec<String> = runs
        .into_iter()
        .filter_map(|run| match run.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some("a run panicked".into()),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "expected every interrupted migration to finish exactly as intended; {} did not:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// `cutover serve` under strace, which delivers SIGKILL to it at the entry
/// of its Nth fsync (per thread), or runs it untouched (`None`) while
/// writing every fsync to `trace`.
fn serve_under_strace(site: &Site, kill_at: Option<u32>, trace: &std::path::Path) -> Guard {
    site.let_ports_go();
    let log = std::fs::File::create(site.dir.path().join("serve.log")).unwrap();
    let mut command = std::process::Command::new("strace");
    command
        .args(["-f", "-qq", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(trace);
    if let Some(n) = kill_at {
        command.args([
            "-e",
            &format!("inject=fsync,fdatasync:signal=SIGKILL:when={n}"),
        ]);
    }
    let child = command
        .arg(env!("CARGO_BIN_EXE_cutover"))
        .arg("--config")
        .arg(&site.config)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("strace runs (package strace must be installed)");
    Guard {
        child,
        what: "strace cutover serve",
    }
}

/// The process strace runs (its only child), if it still lives.
fn tracee(strace: &Guard) -> Option<i32> {
    let pid = strace.child.id();
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Ends a traced serve: kill -9 of the tracee by its pid, then strace.
fn stop_traced(mut strace: Guard) {
    if let Some(pid) = tracee(&strace) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    let _ = wait_exit(&mut strace.child, Duration::from_secs(10), "strace");
}

/// The most fsyncs any one thread of an uninterrupted run made.
fn fsyncs_per_thread(trace: &std::path::Path) -> u32 {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| l.contains("fsync(")) {
        let tid = line.split_whitespace().next().unwrap_or("").to_string();
        *counts.entry(tid).or_insert(0u32) += 1;
    }
    counts.values().copied().max().unwrap_or(0)
}

/// A literal kill -9 at every durable write: strace sends SIGKILL to
/// `cutover serve` on entering its Nth fsync, for every N an
/// uninterrupted run reaches; each restarted run finishes exactly as
/// intended.
#[test]
fn a_migration_killed_at_every_fsync_finishes_exactly_once_after_a_restart() {
    let listener = hold_tcp_on(NEW.octets());
    let port = listener.local_addr().expect("a bound listener").port();
    let _new = HttpServer::start(listener, "new");
    // An uninterrupted run, to count the fsyncs.
    let reference = Site::new(ORIGINAL_TTL);
    let id = start_before_serve(
        &reference,
        &reference.migration_file(&file_text(reference.addr, port)),
    );
    let trace = reference.dir.path().join("fsync.trace");
    let strace = serve_under_strace(&reference, None, &trace);
    wait_state(&reference, id, &["done"], Duration::from_secs(60));
    stop_traced(strace);
    let total = fsyncs_per_thread(&trace);
    assert!(
        total >= 6,
        "expected at least 6 fsyncs in a migration (3 changes, their steps), saw {total}"
    );

    let runs: Vec<_> = (1..=total)
        .map(|n| {
            std::thread::spawn(move || -> Result<bool, String> {
                let site = Site::new(ORIGINAL_TTL);
                let id =
                    start_before_serve(&site, &site.migration_file(&file_text(site.addr, port)));
                let trace = site.dir.path().join("fsync.trace");
                let mut strace = serve_under_strace(&site, Some(n), &trace);
                let deadline = std::time::Instant::now() + Duration::from_secs(40);
                let killed = loop {
                    if let Some(status) = strace.child.try_wait().map_err(|e| e.to_string())? {
                        use std::os::unix::process::ExitStatusExt;
                        break status.signal() == Some(9) || status.code() == Some(137);
                    }
                    if std::time::Instant::now() > deadline || status(&site, id)["state"] == "done"
                    {
                        stop_traced(strace);
                        break false;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                };
                let _serve = site.serve(&[]);
                finishes_as_intended(&site, id, &format!("SIGKILL at fsync {n}"))?;
                Ok(killed)
            })
        })
        .collect();
    let mut killed = 0;
    let mut failures = Vec::new();
    for run in runs {
        match run.join() {
            Ok(Ok(true)) => killed += 1,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("a run panicked".into()),
        }
    }
    println!("SIGKILL at each of {total} fsyncs: {killed} runs killed there, all finished exactly as intended after a restart");
    assert!(
        failures.is_empty(),
        "expected every killed migration to finish exactly as intended; {} did not:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(
        killed * 10 >= total * 8,
        "expected most points to be reached and killed, {killed} of {total} were"
    );
}
