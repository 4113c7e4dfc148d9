//! `cutover demo` runs the tour end to end on loopback.

use std::process::Command;

/// The demo imports, serves, changes and re-answers the sample zone, and
/// says where www moved; it exits 0.
#[test]
fn demo_moves_www_and_the_running_server_answers_the_new_address() {
    let output = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("demo")
        .output()
        .expect("run cutover demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    for expected in [
        "www.example.com.         60 IN A 198.51.100.20",
        "+ www.example.com. 60 IN A 198.51.100.20",
        "the running server answered serial 2026112603",
        "done: www.example.com moved to 198.51.100.20",
    ] {
        assert!(
            stdout.contains(expected),
            "expected {expected:?} in the demo's output:\n{stdout}"
        );
    }
}
