//! Every word true: what `cutover` prints is what happened. Regression
//! tests for the truthfulness issue's items on edits and imports, each
//! named after what it pins.

mod control;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use control::{assert_error, Site};

/// A zone with a CNAME beside names that hold data.
const ZONE: &str = "$ORIGIN corp.test.
$TTL 3600
@    IN SOA ns1 hostmaster 2024010101 3600 600 86400 300
@    IN NS  ns1
ns1  IN A   192.0.2.1
www  IN CNAME web
web  IN A   192.0.2.10
api  IN A   192.0.2.20
api  IN MX  10 mail
mail IN A   192.0.2.25
";

/// A scratch directory with a store holding [`ZONE`].
struct Scratch {
    /// Removed on drop.
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A store with [`ZONE`] imported.
    fn new() -> Scratch {
        let scratch = Scratch {
            dir: tempfile::tempdir().unwrap(),
        };
        let file = scratch.write("corp.test.zone", ZONE);
        scratch.ok(&["zone", "import", file.to_str().unwrap()]);
        scratch
    }

    /// Writes a file into the directory and returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `cutover --store DIR/cutover.db ARGS…`.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .current_dir(self.dir.path())
            .arg("--store")
            .arg(self.dir.path().join("cutover.db"))
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("CUTOVER_SERVER")
            .output()
            .expect("the cutover binary runs")
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cutover {args:?}: expected exit 0, saw {}\nstdout: {}\nstderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs and expects exit `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "cutover {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }

    /// The zone in canonical form.
    fn export(&self) -> String {
        self.ok(&["zone", "export", "corp.test."])
    }

    /// The store file.
    fn store(&self) -> &Path {
        self.dir.path()
    }
}

/// Lossy UTF-8.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Panics unless `haystack` holds every one of `needles`.
fn assert_says(what: &str, haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "{what}: expected {needle:?} in:\n{haystack}"
        );
    }
}

#[test]
fn record_set_beside_a_cname_is_refused_with_the_way_out() {
    let scratch = Scratch::new();
    let before = scratch.export();
    for verb in ["set", "add"] {
        let stderr = scratch.fails(&["record", verb, "corp.test", "www", "A", "192.0.2.9"], 1);
        assert_says(
            &format!("record {verb} www A beside a CNAME"),
            &stderr,
            &[
                "www.corp.test. holds a CNAME",
                "--replace",
                "delete the CNAME",
            ],
        );
    }
    let stderr = scratch.fails(&["record", "set", "corp.test", "api", "CNAME", "web"], 1);
    assert_says(
        "record set api CNAME beside A and MX",
        &stderr,
        &["api.corp.test. holds other data (A, MX)", "--replace"],
    );
    assert_eq!(scratch.export(), before, "a refused edit changed the zone");

    // --replace swaps in one change, and says what it removed.
    let out = scratch.ok(&[
        "record",
        "set",
        "corp.test",
        "www",
        "A",
        "192.0.2.9",
        "--replace",
    ]);
    assert_says(
        "record set --replace",
        &out,
        &[
            "- www.corp.test. 3600 IN CNAME web.corp.test.",
            "+ www.corp.test. 3600 IN A 192.0.2.9",
        ],
    );
    let out = scratch.ok(&[
        "record",
        "set",
        "corp.test",
        "api",
        "CNAME",
        "web",
        "--replace",
    ]);
    assert_says(
        "record set CNAME --replace",
        &out,
        &[
            "- api.corp.test. 3600 IN A 192.0.2.20",
            "- api.corp.test. 3600 IN MX 10 mail.corp.test.",
            "+ api.corp.test. 3600 IN CNAME web.corp.test.",
        ],
    );
}

#[test]
fn changes_the_update_rules_drop_are_errors_for_a_person() {
    let scratch = Scratch::new();
    let before = scratch.export();
    let cases: &[(&[&str], &str)] = &[
        (
            &["record", "delete", "corp.test", "@", "SOA"],
            "never deleted as a whole",
        ),
        (
            &["record", "delete", "corp.test", "@", "NS"],
            "never deleted as a whole",
        ),
        (
            &["record", "delete", "corp.test", "@", "NS", "ns1"],
            "without an NS record",
        ),
        (
            &[
                "record",
                "add",
                "corp.test",
                "@",
                "SOA",
                "ns1 hostmaster 5 3600 600 86400 300",
            ],
            "newer than 2024010101",
        ),
        (
            &[
                "record",
                "add",
                "corp.test",
                "web",
                "SOA",
                "ns1 hostmaster 2099010101 3600 600 86400 300",
            ],
            "only at the apex corp.test.",
        ),
    ];
    for (args, words) in cases {
        let stderr = scratch.fails(args, 1);
        assert_says(&format!("{args:?}"), &stderr, &["not changed", words]);
    }
    assert_eq!(scratch.export(), before, "a refused edit changed the zone");
    // An add of what is there already is no change, and says so (exit 0).
    let out = scratch.ok(&["record", "add", "corp.test", "web", "A", "192.0.2.10"]);
    assert_says(
        "add of an existing record",
        &out,
        &[
            "already holds exactly this",
            "nothing written",
            "serial stays 2024010101",
        ],
    );
}

#[test]
fn the_api_refuses_a_dropped_change_with_422_and_the_same_words() {
    let site = Site::start("");
    let admin = Some(site.admin.as_str());
    let add = |body: &str| {
        site.call(
            "POST",
            "/api/v1/zones/example.test./records",
            admin,
            Some(body),
        )
    };
    let created = add(r#"{"action":"add","name":"alias","type":"CNAME","data":"www"}"#);
    assert_eq!(
        created.0, 200,
        "adding a CNAME at a new name: {}",
        created.1
    );
    let refused = add(r#"{"action":"set","name":"alias","type":"A","data":"192.0.2.9"}"#);
    assert_error(&refused, 422, "rejected", "set A beside a CNAME");
    let message = refused.1["error"]["message"].as_str().unwrap_or_default();
    assert_says(
        "the API's refusal",
        message,
        &["alias.example.test. holds a CNAME", "\"replace\": true"],
    );
    let swapped =
        add(r#"{"action":"set","name":"alias","type":"A","data":"192.0.2.9","replace":true}"#);
    assert_eq!(swapped.0, 200, "set with replace: {}", swapped.1);
    assert_eq!(swapped.1["applied"], true, "{}", swapped.1);
    let same = add(r#"{"action":"add","name":"alias","type":"A","data":"192.0.2.9"}"#);
    assert_eq!(same.0, 200, "{}", same.1);
    assert_eq!(same.1["applied"], false, "{}", same.1);
    assert_says(
        "an add of what is there",
        same.1["note"].as_str().unwrap_or_default(),
        &["already holds exactly this"],
    );
}

#[test]
fn an_import_dry_run_shows_the_serial_the_import_takes() {
    let scratch = Scratch::new();
    // The same zone with one change and a serial lower than the stored one.
    let lower = ZONE
        .replace("2024010101", "1")
        .replace("192.0.2.20", "198.51.100.20");
    let file = scratch.write("lower.zone", &lower);
    let file = file.to_str().unwrap();
    let dry = scratch.ok(&["zone", "import", file, "--replace", "--dry-run"]);
    let plus = dry
        .lines()
        .find(|line| line.starts_with("+++ "))
        .unwrap_or_else(|| panic!("expected a +++ line in:\n{dry}"));
    let shown: u32 = plus
        .rsplit(' ')
        .next()
        .and_then(|serial| serial.parse().ok())
        .unwrap_or_else(|| panic!("expected a serial at the end of {plus:?}"));
    assert_ne!(shown, 1, "the dry run showed the file's serial:\n{dry}");
    assert_says(
        "the dry run",
        &dry,
        &[
            "does not rise over the stored 2024010101",
            "RFC 1982",
            "dry run: nothing changed",
        ],
    );
    let real = scratch.ok(&["zone", "import", file, "--replace", "--yes"]);
    let taken: u32 = real
        .lines()
        .next()
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|serial| serial.parse().ok())
        .unwrap_or_else(|| panic!("expected `serial A → B` first in:\n{real}"));
    // The serial is the Unix time of each run: the real one is the dry
    // run's or a few seconds later, never the file's.
    assert!(
        taken >= shown && taken - shown < 60,
        "the dry run showed serial {shown}, the import took {taken}"
    );
    let _ = scratch.store();
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let scratch = Scratch::new();
    // Enough records that the export overflows a pipe's buffer.
    let mut big = String::from(ZONE);
    for i in 0..5000 {
        big.push_str(&format!("host{i} IN A 198.51.100.{}\n", i % 250));
    }
    let file = scratch.write("big.zone", &big);
    scratch.ok(&[
        "zone",
        "import",
        file.to_str().unwrap(),
        "--replace",
        "--yes",
    ]);
    for args in [
        &["zone", "export", "corp.test."][..],
        &["zone", "diff", "corp.test.", "2024010101", "2024010102"][..],
        // The issue's own case (`zone show … | head`): a short answer, which
        // may be written whole before the pipe closes; either end is quiet.
        &["zone", "show", "corp.test."][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .current_dir(scratch.store())
            .arg("--store")
            .arg(scratch.store().join("cutover.db"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -1`: one line read, then the pipe closed.
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{args:?}: expected a first line");
        let output = child.wait_with_output().unwrap();
        let stderr = text(&output.stderr);
        assert!(
            output.status.signal() == Some(libc_sigpipe()) || output.status.success(),
            "{args:?}: expected an end by SIGPIPE (as `head` leaves every Unix tool), saw {:?}; stderr:\n{stderr}",
            output.status
        );
        assert!(
            stderr.is_empty(),
            "{args:?}: expected nothing on stderr after the pipe closed, saw:\n{stderr}"
        );
    }
}

/// SIGPIPE's number on Linux.
fn libc_sigpipe() -> i32 {
    13
}

/// A table is the same plain columns on a terminal and in a pipe; only on
/// a terminal, and not with NO_COLOR, is its header bold.
#[test]
fn tables_are_plain_in_a_pipe_and_bold_only_on_a_terminal() {
    let scratch = Scratch::new();
    let piped = text(&scratch.run(&["zone", "list"]).stdout);
    assert!(
        piped.starts_with("ZONE ") && piped.contains("\ncorp.test. ") && !piped.contains('\u{1b}'),
        "expected plain columns in a pipe, saw:\n{piped:?}"
    );
    let on_terminal = |no_color: bool| -> String {
        let mut command = Command::new("script");
        command
            .current_dir(scratch.store())
            .arg("-qec")
            .arg(format!(
                "{} --store cutover.db zone list",
                env!("CARGO_BIN_EXE_cutover")
            ))
            .arg("/dev/null")
            .env_remove("CUTOVER_SERVER");
        if no_color {
            command.env("NO_COLOR", "1");
        } else {
            command.env_remove("NO_COLOR");
        }
        text(&command.output().expect("script(1) runs").stdout).replace("\r\n", "\n")
    };
    let bold =
        piped
            .replacen("ZONE", "\u{1b}[1mZONE", 1)
            .replacen("UPDATED\n", "UPDATED\u{1b}[0m\n", 1);
    assert_eq!(
        on_terminal(false),
        bold,
        "expected the header bold on a terminal"
    );
    assert_eq!(
        on_terminal(true),
        piped,
        "expected no colour with NO_COLOR=1"
    );
}

#[test]
fn logs_are_plain_text_off_a_terminal_and_with_no_color() {
    // Off a terminal (serve's log goes to a file in the control tests).
    let site = Site::start("");
    let (status, _) = site.call("GET", "/api/v1/zones", Some(&site.admin), None);
    assert_eq!(status, 200);
    let log = site.log();
    assert!(log.contains("INFO"), "expected serve to log, saw:\n{log}");
    assert!(
        !log.contains('\u{1b}'),
        "expected no ANSI escape in a log file, saw:\n{log:?}"
    );
    // On a terminal (`script` gives serve a pseudo-terminal for 2 s):
    // colour, unless NO_COLOR is set.
    let scratch = Scratch::new();
    let config = scratch.write(
        "cutover.toml",
        "store = \"cutover.db\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n",
    );
    let on_terminal = |no_color: bool| -> String {
        let mut command = Command::new("script");
        command
            .current_dir(scratch.store())
            .arg("-qec")
            .arg(format!(
                "RUST_LOG=info timeout 2 {} --config {} serve",
                env!("CARGO_BIN_EXE_cutover"),
                config.display()
            ))
            .arg("/dev/null");
        if no_color {
            command.env("NO_COLOR", "1");
        } else {
            command.env_remove("NO_COLOR");
        }
        text(&command.output().expect("script(1) runs").stdout)
    };
    let coloured = on_terminal(false);
    assert!(
        coloured.contains("listening on") && coloured.contains('\u{1b}'),
        "expected colour on a terminal, saw:\n{coloured:?}"
    );
    let plain = on_terminal(true);
    assert!(
        plain.contains("listening on") && !plain.contains('\u{1b}'),
        "expected no colour with NO_COLOR=1, saw:\n{plain:?}"
    );
}

#[test]
fn cutover_server_in_the_environment_does_not_break_local_commands() {
    let site = Site::start("");
    let url = format!("http://{}", site.http);
    let with_env = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(args)
            .env("CUTOVER_SERVER", &url)
            .env("CUTOVER_TOKEN", &site.admin)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    // `check` asks from this machine: the exported server is not its business.
    let dns = site.dns.to_string();
    let check = with_env(&[
        "check",
        "example.test.",
        "www",
        "--authority",
        &dns,
        "--resolver",
        &dns,
        "--type",
        "A",
    ]);
    let stderr = text(&check.stderr);
    assert!(
        !stderr.contains("--server") && !stderr.contains("CUTOVER_SERVER"),
        "check with CUTOVER_SERVER exported: expected it to run here, saw:\n{stderr}"
    );
    assert_says("check's table", &text(&check.stdout), &["127.0.0.2"]);
    let key = with_env(&["key", "generate", "ops.example.test."]);
    assert!(key.status.success(), "key generate: {}", text(&key.stderr));
    // A store command the API does not carry names the variable instead of
    // acting on a local store the operator did not mean.
    let pause = with_env(&["migrate", "pause", "1"]);
    assert_eq!(pause.status.code(), Some(1));
    assert_says(
        "migrate pause through CUTOVER_SERVER",
        &text(&pause.stderr),
        &["CUTOVER_SERVER is set to", "unset CUTOVER_SERVER"],
    );
    // What the API carries prints as it does here.
    let store = site.store.display().to_string();
    for args in [
        &["zone", "list"][..],
        &["zone", "export", "example.test."][..],
    ] {
        let remote = with_env(args);
        let mut local_args = vec!["--store", store.as_str()];
        local_args.extend_from_slice(args);
        let local = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(&local_args)
            .env_remove("CUTOVER_SERVER")
            .output()
            .unwrap();
        assert!(
            remote.status.success(),
            "{args:?} remote: {}",
            text(&remote.stderr)
        );
        assert_eq!(
            text(&remote.stdout),
            text(&local.stdout),
            "{args:?}: expected the same output through the API as here"
        );
    }
}

/// `migrate list`, `migrate show` and `mail queue` print through
/// `--server` what they print here, word for word and column for column
/// (one function lays each out from the same data).
#[test]
fn migrations_and_the_mail_queue_print_the_same_through_the_api() {
    // The destination is down: a port the test holds without listening.
    let (_down, down) = control::refusing_tcp(control::LOOPBACK);
    let spool = tempfile::tempdir().unwrap();
    let mut smtp = 0;
    let site = Site::start_picking(|ports| {
        smtp = ports.pick(&[control::LOOPBACK]);
        format!(
            "[mail]\nlisten = [\"127.0.0.1:{smtp}\"]\nhostname = \"mx.relay.test\"\nspool = {:?}\n\
             first_retry = \"5m\"\nmax_retry = \"10m\"\nconnect_timeout = \"1s\"\n\
             [[mail.domain]]\nname = \"ourdom.test\"\ndestination = \"{down}\"\nrecipients = [\"@ourdom.test\"]\n",
            spool.path().join("spool")
        )
    });
    let admin = Some(site.admin.as_str());
    // A migration whose switch is days away, paused at once: nothing about
    // it changes between the two printings.
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(72);
    let file = format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n[[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 1\n[schedule]\nswitch_at = \"{}\"\nmargin = 1\nobserve = \"60s\"\n[verify]\nauthorities = [\"{}\"]\nresolvers = []\ntries = 1\ninterval = 1\n",
        later.strftime("%Y-%m-%dT%H:%M:%SZ"),
        site.dns
    );
    let body = serde_json::json!({"file_name": "move-web.toml", "text": file}).to_string();
    let (status, created) = site.call("POST", "/api/v1/migrations", admin, Some(&body));
    assert_eq!(status, 200, "expected the migration started, saw {created}");
    let id = created["id"].as_i64().expect("an id").to_string();
    let (status, paused) = site.call(
        "POST",
        &format!("/api/v1/migrations/{id}/pause"),
        admin,
        Some("{}"),
    );
    assert_eq!(status, 200, "expected it paused, saw {paused}");
    // A message its destination refuses: deferred, next try in 5 minutes.
    control::send_mail(
        std::net::SocketAddr::from(([127, 0, 0, 1], smtp)),
        "alice@ourdom.test",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, queue) = site.call("GET", "/api/v1/mail/queue", admin, None);
        if queue["messages"][0]["recipients"][0]["state"] == "deferred" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected the message deferred within 10 s, saw {queue}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let url = format!("http://{}", site.http);
    let config = site.config.display().to_string();
    for args in [
        &["migrate", "list"][..],
        &["migrate", "show", &id][..],
        &["migrate", "show", &id, "--json"][..],
        &["mail", "queue"][..],
        &["mail", "queue", "--json"][..],
    ] {
        let run = |prefix: &[&str]| {
            let mut all = prefix.to_vec();
            all.extend_from_slice(args);
            let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
                .args(&all)
                .env_remove("CUTOVER_SERVER")
                .env("RUST_LOG", "warn")
                .output()
                .unwrap();
            assert!(out.status.success(), "{all:?}: {}", text(&out.stderr));
            text(&out.stdout)
        };
        // The queue's ages count seconds: a second may turn between the two.
        let (mut remote, mut local) = (String::new(), String::new());
        for _ in 0..3 {
            remote = run(&["--server", &url, "--token", &site.reader]);
            local = run(&["--config", &config]);
            if remote == local {
                break;
            }
        }
        assert_eq!(
            remote, local,
            "{args:?}: expected the same output through the API as here"
        );
        assert!(
            !remote.is_empty() && !remote.contains("no migrations") && !remote.contains("is empty"),
            "{args:?}: expected something to compare, saw:\n{remote}"
        );
    }
}

#[test]
fn read_only_commands_never_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["zone", "list"][..],
        &["zone", "show", "example.com"][..],
        &["zone", "export", "example.com"][..],
        &["record", "set", "example.com", "www", "A", "192.0.2.1"][..],
        &["migrate", "list"][..],
        &["migrate", "status"][..],
        &["token", "list"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .current_dir(dir.path())
            .args(args)
            .env_remove("CUTOVER_SERVER")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: expected exit 1");
        assert_says(
            &format!("{args:?} without a store"),
            &text(&out.stderr),
            &["no store at ./cutover.db", "no config at ./cutover.toml"],
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

#[test]
fn help_and_man_page_say_what_the_binary_does() {
    let help = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("--help")
        .output()
        .unwrap();
    let help = text(&help.stdout);
    assert_says(
        "cutover --help",
        &help,
        &[
            "completions",
            "manpage",
            "demo",
            "A whole migration on loopback",
        ],
    );
    assert!(
        !help.contains("a zone imported, served, changed and answered"),
        "--help still describes the old demo:\n{help}"
    );
    let man = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("manpage")
        .output()
        .unwrap();
    let man = text(&man.stdout);
    assert_says(
        "cutover manpage",
        &man,
        &[".SH \"EXIT STATUS\"", ".SH EXAMPLES", "needs \\-\\-yes"],
    );
    let dashboard = include_str!("../../server/src/http/assets/index.html");
    assert!(
        !dashboard.contains("--at "),
        "the dashboard offers --at; the flag is --address"
    );
}
