//! Every command of the README and of `examples/`, run as written, so the
//! documentation cannot drift from the binary again (the truthfulness
//! issue, item 15: the tour's `zone diff` could not work on the bundled
//! zone, and nothing noticed).
//!
//! ```text
//!  README.md ```sh blocks + examples/*.toml "#   cutover …" lines
//!     ──▶ each `cutover …` (and `curl …`) line, in order, in a fresh directory holding examples/
//!         ID → the migration (or message) id, $TOKEN → the admin token made by the tour,
//!         the example config's ports → free ones (the only edit: fixed ports would collide)
//!     ──▶ its expectation: exit 0; or, for what asks the outside world (check, verify, flush,
//!         a plan the servers' silence refuses), anything but a command-line error
//! ```
//!
//! A README command this test does not know fails it: say what it should do
//! in `expectation`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cutover_peers::{start_on_free_ports, wait_bound, Ports, Socket, LOOPBACK};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What a documented command must do here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Exit 0.
    Ok,
    /// It asks the outside world (DNS, a server at a documentation address,
    /// the machine's caches) or is refused for what the servers say now:
    /// any end but a command-line error; still running at the deadline is
    /// fine (it parsed and started: 10 s).
    World,
    /// `cutover serve`: it starts and answers; then it is stopped.
    Serve,
}

/// The expectation of a documented command line (without `cutover `).
fn expectation(words: &[String]) -> Expect {
    let joined = words.join(" ");
    let starts = |prefix: &str| joined.starts_with(prefix);
    if starts("serve") {
        Expect::Serve
    } else if starts("check ")
        || starts("verify ")
        || starts("flush")
        || starts("migrate plan ")
        || starts("migrate start ")
        || starts("migrate run ")
        || starts("mail delete ")
        || starts("provider test ")
    {
        Expect::World
    } else if starts("zone ")
        || starts("record ")
        || starts("key ")
        || starts("token ")
        || starts("migrate ")
        || starts("mail ")
        || starts("provider list")
        || starts("--server ")
        || starts("demo")
        || starts("completions ")
        || starts("manpage")
    {
        Expect::Ok
    } else {
        panic!(
            "the README documents `cutover {joined}`, which this test does not know: \
             say what it should do in `expectation`"
        )
    }
}

/// The documented command lines, in order: every line of a ```sh block of
/// the README that runs `cutover` or `curl`, and the `#   cutover …` lines
/// of the examples, each without its trailing comment.
fn documented() -> Vec<String> {
    let mut lines = Vec::new();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if in_sh {
            let command = strip_comment(line);
            if command.starts_with("cutover ") || command.starts_with("curl ") {
                lines.push(command);
            }
        }
    }
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    examples.sort();
    for file in examples {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            if let Some(rest) = line.strip_prefix('#') {
                let command = strip_comment(rest);
                if command.starts_with("cutover ") {
                    lines.push(command);
                }
            }
        }
    }
    lines
}

/// A line without its trailing `# comment` (a `#` after two spaces), trimmed.
fn strip_comment(line: &str) -> String {
    let cut = line.find("  #").unwrap_or(line.len());
    line[..cut].trim().to_owned()
}

/// The tour's directory: the examples, the config's ports made free.
struct Tour {
    /// Removed on drop.
    dir: tempfile::TempDir,
    /// The nameserver, API and relay addresses of the config.
    dns: SocketAddr,
    /// The control plane's address.
    http: SocketAddr,
    /// The migration id (`ID` of the migrate lines).
    id: Option<String>,
    /// The admin token (`$TOKEN`).
    token: Option<String>,
    /// A `cutover serve` kept running for the `--server` and `curl` lines.
    serve: Option<Child>,
}

impl Tour {
    /// A fresh directory holding `examples/`.
    fn new() -> Tour {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(root().join("examples")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
        let mut tour = Tour {
            dir,
            dns: "127.0.0.1:5353".parse().unwrap(),
            http: "127.0.0.1:8053".parse().unwrap(),
            id: None,
            token: None,
            serve: None,
        };
        tour.new_ports(&mut Ports::new());
        tour
    }

    /// Gives the config new free ports (the example's fixed ones would
    /// collide with other tests and other processes).
    fn new_ports(&mut self, ports: &mut Ports) -> [Socket; 4] {
        let path = self.dir.path().join("cutover.toml");
        let original = std::fs::read_to_string(root().join("examples/cutover.toml")).unwrap();
        for fixed in ["127.0.0.1:5353", "127.0.0.1:8053", "127.0.0.1:2525"] {
            assert!(
                original.contains(fixed),
                "examples/cutover.toml no longer listens on {fixed}: update this test"
            );
        }
        self.dns = ports.on(LOOPBACK);
        self.http = ports.on(LOOPBACK);
        let smtp = ports.on(LOOPBACK);
        let text = original
            .replace("127.0.0.1:5353", &self.dns.to_string())
            .replace("127.0.0.1:8053", &self.http.to_string())
            .replace("127.0.0.1:2525", &smtp.to_string());
        std::fs::write(path, text).unwrap();
        let [udp, tcp] = Socket::dns(self.dns);
        [udp, tcp, Socket::Tcp(self.http), Socket::Tcp(smtp)]
    }

    /// The words of a documented line with its placeholders filled in.
    fn words(&self, line: &str) -> Vec<String> {
        line.split_whitespace()
            .map(|word| match word {
                "ID" => self.id.clone().unwrap_or_else(|| "1".into()),
                "$TOKEN" => self.token.clone().unwrap_or_default(),
                other => other.replace("127.0.0.1:8053", &self.http.to_string()),
            })
            .collect()
    }

    /// `cutover ARGS` in the tour's directory, stopped at `deadline`
    /// (`None` when it was still running then).
    fn run(&self, args: &[String], deadline: Duration) -> Option<Output> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .current_dir(self.dir.path())
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("CUTOVER_SERVER")
            .env_remove("CUTOVER_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the cutover binary runs");
        let started = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                return Some(child.wait_with_output().unwrap());
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `cutover ARGS` (a serve) on new ports and waits until it
    /// holds its nameserver's, control plane's and relay's sockets; a start
    /// that lost a port to another process is tried again on others.
    fn start_serve(&mut self, args: &[String]) -> Child {
        start_on_free_ports("cutover serve", |ports: &mut Ports| {
            let sockets = self.new_ports(ports);
            let log = self.dir.path().join("serve.log");
            let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
                .current_dir(self.dir.path())
                .args(args)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("cutover serve runs");
            match wait_bound("cutover serve", &mut child, &sockets, &log) {
                Ok(()) => Ok(child),
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(error)
                }
            }
        })
    }
}

impl Drop for Tour {
    fn drop(&mut self) {
        if let Some(mut serve) = self.serve.take() {
            let _ = serve.kill();
            let _ = serve.wait();
        }
    }
}

/// Lossy UTF-8.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// True for clap's command-line errors (a flag or command the binary does
/// not have), as opposed to the command's own refusals.
fn usage_error(output: &Output) -> bool {
    output.status.code() == Some(2) && text(&output.stderr).contains("Usage:")
}

#[test]
fn every_documented_command_runs_as_written() {
    let lines = documented();
    assert!(
        lines.len() > 40,
        "expected the README's and the examples' commands, found {}: {lines:?}",
        lines.len()
    );
    let mut tour = Tour::new();
    let mut ran = 0;
    for line in &lines {
        assert!(
            !line.contains('|') && !line.contains('[') || line.starts_with("curl "),
            "`{line}` is not a command as written (alternatives or optional parts): \
             write one command per line"
        );
        if let Some(curl) = line.strip_prefix("curl ") {
            ensure_serving(&mut tour);
            let command = format!("curl -sS {curl}")
                .replace("$TOKEN", tour.token.as_deref().unwrap_or(""))
                .replace("127.0.0.1:8053", &tour.http.to_string());
            let output = Command::new("sh").arg("-c").arg(&command).output().unwrap();
            assert!(
                output.status.success() && text(&output.stdout).contains("\"zones\""),
                "`{line}` as `{command}`: expected the zones, saw {:?}\n{}\n{}",
                output.status,
                text(&output.stdout),
                text(&output.stderr)
            );
            ran += 1;
            continue;
        }
        let words = tour.words(line.strip_prefix("cutover ").unwrap());
        let expect = expectation(&words);
        if words.first().map(String::as_str) == Some("--server") {
            ensure_serving(&mut tour);
        }
        match expect {
            Expect::Serve => {
                // One serve at a time: the kept one holds the store's relay
                // spool (started again by the next line that needs it).
                if let Some(mut kept) = tour.serve.take() {
                    let _ = kept.kill();
                    let _ = kept.wait();
                }
                let mut serve = tour.start_serve(&words);
                let _ = serve.kill();
                let _ = serve.wait();
            }
            Expect::Ok | Expect::World => {
                let deadline = match expect {
                    Expect::Ok => Duration::from_secs(60),
                    _ => Duration::from_secs(10),
                };
                let output = tour.run(&words, deadline);
                match (expect, &output) {
                    (Expect::Ok, None) => panic!("`{line}` did not end within 60 s"),
                    (Expect::Ok, Some(output)) => assert!(
                        output.status.success(),
                        "`{line}` (run as {words:?}): expected exit 0, saw {:?}\nstdout:\n{}\nstderr:\n{}",
                        output.status,
                        text(&output.stdout),
                        text(&output.stderr)
                    ),
                    (_, Some(output)) => assert!(
                        !usage_error(output),
                        "`{line}`: the binary does not take it as written:\n{}",
                        text(&output.stderr)
                    ),
                    (_, None) => {}
                }
                if let Some(output) = &output {
                    remember(&mut tour, &words, output);
                }
            }
        }
        ran += 1;
    }
    assert_eq!(ran, lines.len(), "every documented line ran");
}

/// Keeps what later lines refer to: the admin token, the migration id (a
/// `migrate start` the servers' silence refused is started again with
/// `--force`, so the lines after it have a migration to act on).
fn remember(tour: &mut Tour, words: &[String], output: &Output) {
    let joined = words.join(" ");
    if joined.starts_with("token create") && joined.contains("--scope admin") {
        tour.token = Some(text(&output.stdout).trim().to_owned());
    }
    if joined.starts_with("migrate start") && tour.id.is_none() {
        let started = if output.status.success() {
            text(&output.stdout)
        } else {
            let mut forced = words.to_vec();
            forced.push("--force".into());
            let again = tour
                .run(&forced, Duration::from_secs(60))
                .expect("migrate start --force ends");
            assert!(
                again.status.success(),
                "migrate start --force: {}",
                text(&again.stderr)
            );
            text(&again.stdout)
        };
        tour.id = started
            .lines()
            .find_map(|l| l.strip_prefix("started migration "))
            .map(|id| id.trim().to_owned());
        assert!(
            tour.id.is_some(),
            "migrate start names the migration:\n{started}"
        );
    }
}

/// Starts the example's `cutover serve` in the background for the lines
/// that go through the API (once).
fn ensure_serving(tour: &mut Tour) {
    if tour.serve.is_none() {
        let args: Vec<String> = ["serve", "--config", "cutover.toml"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        tour.serve = Some(tour.start_serve(&args));
    }
}

/// The README's tour starts from the examples alone.
#[test]
fn the_examples_the_tour_needs_exist() {
    for file in ["example.com.zone", "cutover.toml", "move-web.toml"] {
        assert!(
            root().join("examples").join(file).exists(),
            "examples/{file} is named by the README's tour"
        );
    }
}

/// Every text file of the repository a newcomer reads (docs, sources,
/// scripts, configs), skipping build output.
fn repository_texts(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "corpus" | "artifacts") {
                repository_texts(&path, out);
            }
        } else if [
            ".md", ".rs", ".toml", ".sh", ".py", ".html", ".js", ".service",
        ]
        .iter()
        .any(|ext| name.ends_with(ext))
            || name == "run"
        {
            out.push(path);
        }
    }
}

/// The `….md` names a text mentions (a path of letters, digits, `_./-`).
fn documents_named(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(".md") {
        let end = from + at + 3;
        let next_is_word = bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        let mut start = from + at;
        while start > 0 && {
            let b = bytes[start - 1];
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
        } {
            start -= 1;
        }
        if !next_is_word && start < from + at {
            found.push(text[start..end].to_owned());
        }
        from = end;
    }
    found
}

/// A document the repository names is in the repository: a plan the code
/// outgrew (PRODUCT.md) or notes kept beside the checkout (RELIABILITY.md)
/// once were cited by files a newcomer reads, and a clean clone has neither.
#[test]
fn every_document_the_repository_names_is_in_it() {
    let root = root().canonicalize().unwrap();
    let mut files = Vec::new();
    repository_texts(&root, &mut files);
    assert!(
        files.len() > 100,
        "expected the repository's files, found {}",
        files.len()
    );
    let mut missing = Vec::new();
    let mut named = 0;
    // This file names missing documents on purpose, as examples.
    for file in files
        .iter()
        .filter(|f| !f.ends_with("crates/cli/tests/readme.rs"))
    {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for document in documents_named(&text) {
            named += 1;
            let here = file.parent().unwrap().join(&document);
            if !root.join(&document).is_file() && !here.is_file() {
                missing.push(format!(
                    "{}: {document}",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        named >= 10,
        "expected the docs to name each other, found {named}"
    );
    assert!(
        missing.is_empty(),
        "documents named but not in the repository:\n{}",
        missing.join("\n")
    );
}

#[test]
fn a_named_document_is_found_where_it_is_named() {
    assert_eq!(
        documents_named("see PRODUCT.md, ../shared/PEERS.md and docs/config.md; not x.mdx"),
        ["PRODUCT.md", "../shared/PEERS.md", "docs/config.md"]
    );
}
