//! The `cutover` binary as a black box: zone and record commands against a
//! store in a temporary directory, config errors, and `serve` picking up a
//! change made by another process.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cutover_peers::{start_on_free_ports, wait_bound, Ports, Socket, LOOPBACK};

/// A zone file for the tests.
const ZONE: &str = "$ORIGIN example.com.
$TTL 3600
@    IN SOA ns1 hostmaster 1 3600 600 86400 300
@    IN NS  ns1
ns1  IN A   192.0.2.1
www  300 IN A 192.0.2.10
";

/// A scratch directory with a store in it.
struct Scratch {
    /// Removed on drop.
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A new empty directory.
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A path inside the directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file into the directory and returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `cutover --store DIR/cutover.db ARGS…` in the directory.
    fn run(&self, args: &[&str]) -> Output {
        let store = self.path("cutover.db");
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .current_dir(self.dir.path())
            .arg("--store")
            .arg(&store)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the cutover binary runs")
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cutover {args:?} failed with {}:\nstdout: {}\nstderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Imports the test zone.
    fn import(&self) {
        let file = self.write("example.com.zone", ZONE);
        self.ok(&["zone", "import", file.to_str().unwrap()]);
    }

    /// The current serial of example.com., from `zone list`.
    fn serial(&self) -> u32 {
        let list = self.ok(&["zone", "list"]);
        let line = list
            .lines()
            .find(|l| l.starts_with("example.com."))
            .unwrap_or_else(|| panic!("no zone in:\n{list}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

/// Bytes as text.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the exit code and that stderr contains every fragment.
fn assert_fails(out: &Output, code: i32, fragments: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}, got {}; stderr: {stderr}",
        out.status
    );
    for fragment in fragments {
        assert!(
            stderr.contains(fragment),
            "expected {fragment:?} in stderr, saw: {stderr}"
        );
    }
}

#[test]
fn import_then_export_round_trips() {
    let scratch = Scratch::new();
    scratch.import();
    let exported = scratch.ok(&["zone", "export", "example.com"]);
    for expected in [
        "192.0.2.10",
        "192.0.2.1",
        "hostmaster.example.com.",
        "ns1.example.com.",
    ] {
        assert!(
            exported.contains(expected),
            "export lacks {expected}:\n{exported}"
        );
    }
    // The export imports into a fresh store and exports identically.
    let other = Scratch::new();
    let file = other.write("again.zone", &exported);
    other.ok(&["zone", "import", file.to_str().unwrap()]);
    assert_eq!(other.ok(&["zone", "export", "example.com."]), exported);
    // Exporting to a file writes the same text.
    let out = scratch.path("out.zone");
    scratch.ok(&[
        "zone",
        "export",
        "example.com.",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(out).unwrap(), exported);
}

#[test]
fn an_existing_zone_needs_replace_and_yes() {
    let scratch = Scratch::new();
    scratch.import();
    let file = scratch.write("changed.zone", &ZONE.replace("192.0.2.10", "192.0.2.20"));
    let file = file.to_str().unwrap();
    assert_fails(
        &scratch.run(&["zone", "import", file]),
        1,
        &["already in the store", "--replace"],
    );
    let dry = scratch.ok(&["zone", "import", file, "--replace", "--dry-run"]);
    assert!(
        dry.contains("192.0.2.20") && dry.contains("dry run"),
        "dry run output: {dry}"
    );
    assert_eq!(scratch.serial(), 1, "dry run changed the serial");
    assert_fails(
        &scratch.run(&["zone", "import", file, "--replace"]),
        4,
        &["--yes"],
    );
    let done = scratch.ok(&["zone", "import", file, "--replace", "--yes"]);
    assert!(
        done.contains("+ ") && done.contains("192.0.2.20"),
        "replace output: {done}"
    );
    assert!(scratch.serial() > 1, "replace did not raise the serial");
}

#[test]
fn record_commands_bump_the_serial_and_show_in_export() {
    let scratch = Scratch::new();
    scratch.import();
    let out = scratch.ok(&[
        "record",
        "add",
        "example.com",
        "mail",
        "A",
        "192.0.2.25",
        "--ttl",
        "120",
    ]);
    let after_add = scratch.serial();
    assert!(after_add > 1, "add did not bump the serial");
    assert!(
        out.contains(&format!("serial 1 → {after_add}")),
        "add output: {out}"
    );
    scratch.ok(&[
        "record",
        "set",
        "example.com",
        "www.example.com.",
        "A",
        "198.51.100.7",
    ]);
    let after_set = scratch.serial();
    assert!(after_set > after_add, "set did not bump the serial");
    scratch.ok(&["record", "delete", "example.com", "mail", "A"]);
    assert!(
        scratch.serial() > after_set,
        "delete did not bump the serial"
    );
    let exported = scratch.ok(&["zone", "export", "example.com"]);
    assert!(
        exported.contains("198.51.100.7"),
        "set not in export:\n{exported}"
    );
    assert!(
        !exported.contains("192.0.2.10"),
        "set did not replace the RRset:\n{exported}"
    );
    assert!(
        !exported.contains("192.0.2.25"),
        "delete left the record:\n{exported}"
    );
    // Errors name the bad input.
    assert_fails(
        &scratch.run(&["record", "add", "example.com", "x", "A", "not-an-address"]),
        1,
        &["not-an-address"],
    );
    assert_fails(
        &scratch.run(&[
            "record",
            "add",
            "example.com",
            "x.example.org.",
            "A",
            "192.0.2.1",
        ]),
        1,
        &["x.example.org."],
    );
    assert_fails(
        &scratch.run(&["record", "delete", "example.com", "nothing", "TXT"]),
        1,
        &["nothing.example.com."],
    );
    assert_fails(
        &scratch.run(&["record", "add", "example.com", "x", "BOGUS", "1"]),
        1,
        &["BOGUS"],
    );
}

#[test]
fn dry_run_changes_nothing() {
    let scratch = Scratch::new();
    scratch.import();
    let before = scratch.ok(&["zone", "export", "example.com"]);
    let out = scratch.ok(&[
        "record",
        "set",
        "example.com",
        "www",
        "A",
        "203.0.113.5",
        "--dry-run",
    ]);
    assert!(
        out.contains("+ ") && out.contains("203.0.113.5") && out.contains("dry run"),
        "dry run output: {out}"
    );
    assert_eq!(scratch.serial(), 1);
    assert_eq!(scratch.ok(&["zone", "export", "example.com"]), before);
    let show = scratch.ok(&["zone", "show", "example.com"]);
    assert_eq!(
        show.matches("import").count(),
        1,
        "a version was journalled:\n{show}"
    );
}

/// `cutover --store … ARGS…` with `input` on its standard input.
fn run_with_input(scratch: &Scratch, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(scratch.dir.path())
        .arg("--store")
        .arg(scratch.path("cutover.db"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the cutover binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The number of versions `zone show` lists for example.com.
fn versions(scratch: &Scratch) -> usize {
    let show = scratch.ok(&["zone", "show", "example.com"]);
    show.lines()
        .filter(|l| l.contains("import") || l.contains("record "))
        .count()
}

#[test]
fn record_apply_takes_a_file_or_stdin_each_in_one_version() {
    let scratch = Scratch::new();
    scratch.import();
    let file = scratch.write(
        "changes.txt",
        "# www moves to two addresses\n\
         set www 120 A 198.51.100.1\n\
         \n\
         set www 120 A 198.51.100.2\n\
         add mail 300 MX 10 www\n\
         add txt TXT \"v=spf1 -all\"\n",
    );
    let out = scratch.ok(&["record", "apply", "example.com", file.to_str().unwrap()]);
    let serial = scratch.serial();
    assert!(
        out.contains(&format!("serial 1 → {serial}")),
        "expected one serial change, seen {out}"
    );
    assert_eq!(versions(&scratch), 2, "expected one version for the file");
    let exported = scratch.ok(&["zone", "export", "example.com"]);
    for expected in [
        "www.example.com. 120 IN A 198.51.100.1",
        "www.example.com. 120 IN A 198.51.100.2",
        "mail.example.com. 300 IN MX 10 www.example.com.",
        "txt.example.com. 3600 IN TXT \"v=spf1 -all\"",
    ] {
        assert!(
            exported.contains(expected),
            "expected {expected} in:\n{exported}"
        );
    }
    assert!(
        !exported.contains("192.0.2.10"),
        "set left the old www:\n{exported}"
    );

    let piped = run_with_input(
        &scratch,
        &["record", "apply", "example.com", "-"],
        "delete txt TXT \"v=spf1 -all\"\ndelete mail\n",
    );
    assert!(
        piped.status.success(),
        "stdin apply failed: {}",
        text(&piped.stderr)
    );
    assert!(scratch.serial() > serial, "expected the serial to rise");
    assert_eq!(versions(&scratch), 3, "expected one version for stdin");
    let exported = scratch.ok(&["zone", "export", "example.com"]);
    assert!(
        !exported.contains("txt.example.com.") && !exported.contains("mail.example.com."),
        "expected the deletes applied:\n{exported}"
    );

    // What the zone already holds is said plainly, and nothing is written.
    let same = run_with_input(
        &scratch,
        &["record", "apply", "example.com", "-"],
        "set www 120 A 198.51.100.2\nset www 120 A 198.51.100.1\n",
    );
    assert!(
        same.status.success() && text(&same.stdout).contains("nothing written"),
        "expected nothing written, seen {} {}",
        text(&same.stdout),
        text(&same.stderr)
    );
    assert_eq!(versions(&scratch), 3, "expected no version for no change");
}

#[test]
fn record_apply_refuses_a_bad_line_or_a_dropped_change_and_writes_nothing() {
    let scratch = Scratch::new();
    scratch.import();
    let before = scratch.ok(&["zone", "export", "example.com"]);
    let file = scratch.write(
        "changes.txt",
        "add one A 192.0.2.51\nadd two A 192.0.2.52\nadd three  A 192.0.2.300\n",
    );
    let path = file.to_str().unwrap();
    assert_fails(
        &scratch.run(&["record", "apply", "example.com", path]),
        1,
        &[&format!("{path}:3:14: expected A data"), "192.0.2.300"],
    );
    let file = scratch.write("changes.txt", "add one A 192.0.2.51\nadd www CNAME one\n");
    assert_fails(
        &scratch.run(&["record", "apply", "example.com", file.to_str().unwrap()]),
        1,
        &[&format!("{path}:2: example.com.: not changed"), "CNAME"],
    );
    assert_fails(
        &run_with_input(
            &scratch,
            &["record", "apply", "example.com", "-"],
            "set www A 192.0.2.1\nfrobnicate www\n",
        ),
        1,
        &["<stdin>:2:1: expected add, set or delete"],
    );
    assert_eq!(scratch.serial(), 1, "expected nothing written");
    assert_eq!(scratch.ok(&["zone", "export", "example.com"]), before);
    assert_eq!(versions(&scratch), 1, "expected no version journalled");
}

#[test]
fn record_apply_dry_run_shows_what_the_real_run_does() {
    let scratch = Scratch::new();
    // A serial above the clock's, so the next one is the serial + 1 at any
    // second (RFC 1982) and the dry run's serial is the real run's.
    let zone = ZONE.replace(" 1 3600 600", " 2100000000 3600 600");
    let file = scratch.write("example.com.zone", &zone);
    scratch.ok(&["zone", "import", file.to_str().unwrap()]);
    let changes = scratch.write(
        "changes.txt",
        "set www 60 A 203.0.113.1\nset www 60 A 203.0.113.2\nadd api AAAA 2001:db8::1\n",
    );
    let args = ["record", "apply", "example.com", changes.to_str().unwrap()];
    let before = scratch.ok(&["zone", "export", "example.com"]);
    let dry = scratch.ok(&[&args[..], &["--dry-run"]].concat());
    assert_eq!(scratch.ok(&["zone", "export", "example.com"]), before);
    assert_eq!(
        versions(&scratch),
        1,
        "expected the dry run to write nothing"
    );
    let done = scratch.ok(&args);
    assert!(
        dry.starts_with("example.com.: serial would go 2100000000 → 2100000001\n"),
        "dry run output: {dry}"
    );
    assert_eq!(
        dry.replace("serial would go", "serial")
            .replace("dry run: nothing changed\n", ""),
        done,
        "expected the real run to do exactly what the dry run showed"
    );
    assert_eq!(scratch.serial(), 2_100_000_001);
    let exported = scratch.ok(&["zone", "export", "example.com"]);
    for line in done.lines().filter_map(|l| l.strip_prefix("+ ")) {
        assert!(exported.contains(line), "expected {line} in:\n{exported}");
    }
}

#[test]
fn list_show_and_diff_describe_the_history() {
    let scratch = Scratch::new();
    scratch.import();
    scratch.ok(&["record", "add", "example.com", "mail", "A", "192.0.2.25"]);
    let serial = scratch.serial();
    let list = scratch.ok(&["zone", "list"]);
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with("example.com."))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row.get(1..3),
        Some(&[serial.to_string().as_str(), "5"][..]),
        "zone list row: {list}"
    );
    let show = scratch.ok(&["zone", "show", "example.com"]);
    assert!(
        show.contains(&format!("1 → {serial}")) && show.contains("record add"),
        "show: {show}"
    );
    let diff = scratch.ok(&["zone", "diff", "example.com", "1", &serial.to_string()]);
    let minus: Vec<_> = diff.lines().filter(|l| l.starts_with("- ")).collect();
    let plus: Vec<_> = diff.lines().filter(|l| l.starts_with("+ ")).collect();
    assert_eq!(
        (minus.len(), plus.len()),
        (1, 2),
        "one old SOA out, new SOA and mail in:\n{diff}"
    );
    assert!(
        plus.iter().any(|l| l.contains("192.0.2.25")),
        "diff: {diff}"
    );
    let old = scratch.ok(&["zone", "export", "example.com", "--serial", "1"]);
    assert!(
        !old.contains("192.0.2.25"),
        "version 1 has the later record:\n{old}"
    );
}

#[test]
fn delete_needs_yes() {
    let scratch = Scratch::new();
    scratch.import();
    assert_fails(
        &scratch.run(&["zone", "delete", "example.com"]),
        4,
        &["would delete zone example.com.", "--yes"],
    );
    assert_eq!(scratch.serial(), 1);
    scratch.ok(&["zone", "delete", "example.com", "--yes"]);
    assert!(!scratch.ok(&["zone", "list"]).contains("example.com."));
    assert_fails(
        &scratch.run(&["zone", "show", "example.com"]),
        1,
        &["example.com. is not in the store"],
    );
}

/// "Every word true" 13: `record set … --ttl 1h` failed with "invalid
/// digit found in string"; TTLs on the command line are read as in the
/// migration file (and zone files' BIND forms too).
#[test]
fn record_ttl_takes_units_and_refuses_nonsense_clearly() {
    let scratch = Scratch::new();
    scratch.import();
    for (ttl, seconds) in [
        ("1h", "3600"),
        ("1W2D", "777600"),
        ("90", "90"),
        ("2 days", "172800"),
    ] {
        scratch.ok(&[
            "record",
            "set",
            "example.com",
            "www",
            "A",
            "198.51.100.7",
            "--ttl",
            ttl,
        ]);
        let exported = scratch.ok(&["zone", "export", "example.com"]);
        let www = exported
            .lines()
            .find(|line| line.starts_with("www.example.com.") && line.contains(" A "))
            .unwrap_or_else(|| panic!("no www A in:\n{exported}"));
        assert_eq!(
            www.split_whitespace().nth(1),
            Some(seconds),
            "--ttl {ttl}: {www}"
        );
    }
    let serial = scratch.serial();
    for (ttl, message) in [
        (
            "soon",
            "invalid TTL \"soon\": expected seconds or a number with units, e.g. 3600, 1h, 1h30m, 2 days, 1w, or BIND's 1W2D3H",
        ),
        ("1.5s", "a TTL is whole seconds"),
        (
            "2147483648",
            "TTL \"2147483648\" is out of range: a TTL is 0 to 2147483647 seconds (RFC 2181 §8)",
        ),
        ("-5", "invalid TTL"),
    ] {
        let arg = format!("--ttl={ttl}");
        let out = scratch.run(&["record", "set", "example.com", "www", "A", "198.51.100.8", &arg]);
        assert_fails(&out, 2, &["--ttl", message]);
    }
    assert_eq!(scratch.serial(), serial, "a refused TTL changed the zone");
    // The other durations of the command line: one reader, with their range.
    let out = scratch.run(&["check", "example.com", "www", "--timeout", "soon"]);
    assert_fails(
        &out,
        2,
        &[
            "--timeout",
            "invalid duration \"soon\"",
            "e.g. 90, 90s, 500ms",
        ],
    );
    let out = scratch.run(&[
        "check",
        "example.com",
        "www",
        "--watch",
        "--interval",
        "10ms",
    ]);
    assert_fails(
        &out,
        2,
        &[
            "--interval",
            "duration \"10ms\" is out of range: expected 100ms to 1d",
        ],
    );
    let out = scratch.run(&["verify", "tcp", "127.0.0.1:1", "--timeout", "2 weeks"]);
    assert_fails(
        &out,
        2,
        &["duration \"2 weeks\" is out of range: expected 1ms to 1d"],
    );
}

#[test]
fn a_bad_config_names_the_file_and_line_and_exits_2() {
    let scratch = Scratch::new();
    let config = scratch.write(
        "cutover.toml",
        "store = \"x.db\"\n[dns]\nlisten = [\"127.0.0.1:5353\"]\nlisen = 1\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(scratch.dir.path())
        .args(["--config", config.to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert_fails(&out, 2, &["cutover.toml", "line 4", "lisen"]);
    let bad_duration = scratch.write("d.toml", "[dns]\ntcp_idle_timeout = \"ten\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(scratch.dir.path())
        .args(["--config", bad_duration.to_str().unwrap(), "zone", "list"])
        .output()
        .unwrap();
    assert_fails(
        &out,
        2,
        &[
            "d.toml",
            "line 2",
            "[dns] tcp_idle_timeout: invalid duration \"ten\"",
            "e.g. 90, 90s, 500ms",
        ],
    );
    let bad_mail = scratch.write(
        "m.toml",
        "[mail]\nhostname = \"mx.test\"\nqueue_lifetime = \"1 month\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(scratch.dir.path())
        .args(["--config", bad_mail.to_str().unwrap(), "zone", "list"])
        .output()
        .unwrap();
    assert_fails(
        &out,
        2,
        &[
            "m.toml",
            "line 3",
            "queue_lifetime",
            "months and years have no fixed length",
        ],
    );
    let missing = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(scratch.dir.path())
        .args(["--config", "nope.toml", "serve"])
        .output()
        .unwrap();
    assert_fails(&missing, 2, &["nope.toml"]);
}

#[test]
fn a_bad_zone_file_names_the_file_and_exits_3() {
    let scratch = Scratch::new();
    let file = scratch.write("broken.zone", &format!("{ZONE}bad  IN A 300.1.2.3\n"));
    let out = scratch.run(&["zone", "import", file.to_str().unwrap()]);
    assert_fails(&out, 3, &["broken.zone", "7"]);
    assert!(
        !scratch.ok(&["zone", "list"]).contains("example.com."),
        "a broken file was imported"
    );
}

/// A `cutover serve` child, killed when the test ends.
struct Server {
    /// The process.
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The A records of `name` as kdig sees them.
fn kdig_a(port: u16, name: &str) -> String {
    let out = Command::new("kdig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            name,
            "A",
            "+short",
            "+time=1",
            "+retry=0",
        ])
        .output()
        .expect("kdig must be installed (apt-get install knot-dnsutils)");
    text(&out.stdout)
}

/// Sends SIGTERM to a process.
fn terminate(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {pid} failed");
}

#[test]
fn serve_picks_up_a_record_set_from_another_process_and_exits_0_on_sigterm() {
    let scratch = Scratch::new();
    scratch.import();
    let store = scratch.path("cutover.db");
    let log_path = scratch.path("serve.log");
    // A port picked, serve started on it and seen holding it; again on
    // another port if it was taken meanwhile.
    let (mut server, port) = start_on_free_ports("cutover serve", |ports: &mut Ports| {
        let port = ports.pick(&[LOOPBACK]);
        let config = scratch.write(
            "cutover.toml",
            &format!(
                "store = {:?}\n[dns]\nlisten = [\"127.0.0.1:{port}\"]\nudp_workers = 1\ntcp_idle_timeout = \"2s\"\n[[zone]]\nname = \"example.com.\"\n",
                store.to_str().unwrap()
            ),
        );
        let child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .current_dir(scratch.dir.path())
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log_path).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Server { child };
        let addr = std::net::SocketAddr::from((LOOPBACK, port));
        wait_bound(
            "cutover serve",
            &mut server.child,
            &Socket::dns(addr),
            &log_path,
        )?;
        Ok((server, port))
    });
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert_eq!(
        kdig_a(port, "www.example.com.").trim(),
        "192.0.2.10",
        "served before the change"
    );

    scratch.ok(&["record", "set", "example.com", "www", "A", "198.51.100.42"]);
    let changed = Instant::now();
    let mut seen = String::new();
    while changed.elapsed() < Duration::from_secs(1) {
        seen = kdig_a(port, "www.example.com.");
        if seen.trim() == "198.51.100.42" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        seen.trim(),
        "198.51.100.42",
        "the change was not served within one second"
    );

    terminate(server.child.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit within 5 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = log();
    assert_eq!(
        status.code(),
        Some(0),
        "serve exited with {status}; log:\n{log}"
    );
    assert!(log.contains("reloaded"), "no reload logged:\n{log}");
}
