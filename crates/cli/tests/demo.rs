//! `cutover demo` runs a whole migration end to end on loopback.

use std::process::Command;
use std::time::{Duration, Instant};

/// The demo moves the sample zone's service from the old server to the new
/// one through every step of a migration, shows the evidence of each, ends
/// with no failed request and www on the new server, and exits 0 within
/// about a minute.
#[test]
fn demo_migrates_from_the_old_server_to_the_new_without_a_failed_request() {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("demo")
        .output()
        .expect("run cutover demo");
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    for expected in [
        // The plan, with its waits explained and its warnings.
        "wait 11s until",
        "! shop.example.com. CNAME leads to www.example.com., which moves",
        // Each step with its evidence.
        "lower ttls       done",
        "www.example.com. A: 10 127.0.0.2 → 2 127.0.0.2",
        "ok   http://www.example.com:",
        "at 127.0.0.3: status 200",
        "serials noted: example.com.",
        "www.example.com. A: 2 127.0.0.2 → 2 127.0.0.3",
        "answered: serial 2026112603",
        "flush caches     skipped",
        "restore ttls     done",
        "www.example.com. A: 2 127.0.0.3 → 10 127.0.0.3",
        // The final report.
        "migration 1: done (records restored)",
        "0 failed",
        "now: www resolves to 127.0.0.3 and \"served by the new server\"",
    ] {
        assert!(
            stdout.contains(expected),
            "expected {expected:?} in the demo's output:\n{stdout}"
        );
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("a client now: www is 127.0.0.3 (")
                && l.ends_with("→ served by the new server")),
        "expected a client on the new address served by the new server after the switch:\n{stdout}"
    );
    let audit = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('#') && l.contains("[applied at"))
        .count();
    assert_eq!(
        audit, 12,
        "expected 12 applied changes in the audit log (4 RRsets lowered, switched, restored), saw {audit}:\n{stdout}"
    );
    assert!(
        took < Duration::from_secs(90),
        "expected the demo to finish in about a minute, it took {took:?}"
    );
}
