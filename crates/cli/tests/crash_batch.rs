//! Crash during a batch: `cutover zone import --replace` of a large zone and
//! `cutover record apply` of many changes are killed (`kill -9`, delivered
//! by strace) in the middle of writing the store, at points spread over
//! every write an uninterrupted run makes; the store must then hold the old
//! version or the new one, whole, never a mix, and the next run must finish.
//!
//! ```text
//!  uninterrupted run under strace ──▶ P page writes (pwrite64), F fsyncs
//!  for each point: pwrite64 K in {1, P/4, P/2, 3P/4, P}, fsync K in 1..=F:
//!    fresh store with version 1 ── command under strace (SIGKILL on entering that call) ──▶ killed
//!    assert: the command died of SIGKILL (it was interrupted, not finished)
//!    assert: zone export == version 1 or version 2 exactly; zone show lists 1 or 2 versions to match
//!    the same command again ──▶ version 2, whole
//! ```
//!
//! Why strace and not a timer: the kill lands at a chosen write of the
//! command itself, so every run tests the point it names, on any machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Records in the zone (besides SOA and NS): enough that the batch spans
/// many page writes.
const RECORDS: usize = 3_000;

/// The system calls that write the store: SQLite's page writes and its
/// syncs (strace counts each call separately, so a kill point names one).
const WRITES: [&str; 2] = ["pwrite64", "fsync"];

/// A store and files in a directory of their own.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: TempDir::new().expect("a temporary directory"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn store(&self) -> PathBuf {
        self.path("cutover.db")
    }

    /// `cutover --store … ARGS`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cutover"));
        command
            .current_dir(self.dir.path())
            .arg("--store")
            .arg(self.store())
            .args(args)
            .env("RUST_LOG", "warn");
        command
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self
            .command(args)
            .output()
            .expect("the cutover binary runs");
        assert!(
            out.status.success(),
            "cutover {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `cutover ARGS` under strace, which writes every page write and
    /// sync of the process to `trace` and, with `kill_at`, sends it SIGKILL
    /// on entering the Nth call of that name.
    fn under_strace(&self, args: &[&str], kill_at: Option<(&str, u32)>, trace: &Path) -> Output {
        let mut command = Command::new("strace");
        command
            .args([
                "-f",
                "-qq",
                "-e",
                &format!("trace={}", WRITES.join(",")),
                "-o",
            ])
            .arg(trace);
        if let Some((call, n)) = kill_at {
            command.args(["-e", &format!("inject={call}:signal=SIGKILL:when={n}")]);
        }
        let inner = self.command(args);
        command
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(self.dir.path())
            .env("RUST_LOG", "warn")
            .output()
            .expect("strace runs (package strace must be installed)")
    }
}

/// The zone file of a version: `www` gives each name its address, and the
/// names differ between versions, so a mix of the two is visible.
fn zone_text(version: u32) -> String {
    let mut text = format!(
        "$ORIGIN big.test.\n$TTL 300\n\
         @ IN SOA ns1 hostmaster {version} 3600 600 86400 300\n\
         @ IN NS ns1\nns1 IN A 192.0.2.53\n"
    );
    for i in 0..RECORDS {
        let (a, b) = (i / 250, i % 250);
        text.push_str(&format!("h{i}-v{version} IN A 10.{version}.{a}.{b}\n"));
    }
    text
}

/// The change file taking version 1 to version 2's records.
fn changes_text() -> String {
    let mut text = String::new();
    for i in 0..RECORDS {
        let (a, b) = (i / 250, i % 250);
        text.push_str(&format!("delete h{i}-v1.big.test. A\n"));
        text.push_str(&format!("add h{i}-v2.big.test. 300 A 10.2.{a}.{b}\n"));
    }
    text
}

/// The zone's records as exported, without the SOA (whose serial the
/// commands choose).
fn records(scratch: &Scratch) -> Vec<String> {
    let text = scratch.ok(&["zone", "export", "big.test."]);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('$') && !l.starts_with(';') && !l.trim().is_empty())
        .filter(|l| !l.split_whitespace().any(|w| w == "SOA"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    lines
}

/// How many versions `zone show` lists (the rows under its `versions:`
/// table header).
fn versions(scratch: &Scratch) -> usize {
    let text = scratch.ok(&["zone", "show", "big.test."]);
    let rows = text
        .lines()
        .skip_while(|l| !l.starts_with("versions:"))
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert!(
        text.contains("versions:") && text.contains("AT"),
        "zone show prints a versions table: {text}"
    );
    rows
}

/// The calls named `call` in a trace, of the thread that made the most
/// (strace's `when` counts per call and per thread).
fn calls_in(trace: &Path, call: &str) -> u32 {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    let mut counts = std::collections::BTreeMap::new();
    let opening = format!("{call}(");
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let tid = words.next().unwrap_or("").to_string();
        if words.next().is_some_and(|w| w.starts_with(&opening)) {
            *counts.entry(tid).or_insert(0u32) += 1;
        }
    }
    counts.values().copied().max().unwrap_or(0)
}

/// A store holding version 1, and the files of version 2 and the changes.
fn fresh() -> Scratch {
    let scratch = Scratch::new();
    std::fs::write(scratch.path("v1.zone"), zone_text(1)).unwrap();
    std::fs::write(scratch.path("v2.zone"), zone_text(2)).unwrap();
    std::fs::write(scratch.path("changes.txt"), changes_text()).unwrap();
    scratch.ok(&["zone", "import", "v1.zone"]);
    scratch
}

/// Kill points spread over `total` writes, first and last included.
fn kill_points(total: u32) -> Vec<u32> {
    let mut points: Vec<u32> = [1, total / 4, total / 2, 3 * total / 4, total]
        .into_iter()
        .filter(|&n| n >= 1)
        .collect();
    points.dedup();
    points
}

/// Runs `args` killed at spread write points; after each kill the store
/// holds version 1 or 2 whole, and running `args` again gives version 2.
fn killed_midway_leaves_old_or_new(args: &[&str]) {
    let reference = fresh();
    let old = records(&reference);
    let trace = reference.path("writes.trace");
    let out = reference.under_strace(args, None, &trace);
    assert!(
        out.status.success(),
        "the uninterrupted run of {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = records(&reference);
    assert_ne!(old, new, "the batch changed nothing");
    assert_eq!(versions(&reference), 2, "one batch, one new version");
    let (pages, syncs) = (calls_in(&trace, "pwrite64"), calls_in(&trace, "fsync"));
    assert!(
        pages >= 20 && syncs >= 1,
        "expected the batch of {RECORDS} records to take at least 20 page writes and a sync, \
         strace saw {pages} and {syncs}"
    );
    let points = kill_points(pages)
        .into_iter()
        .map(|k| ("pwrite64", k, pages))
        .chain((1..=syncs).map(|k| ("fsync", k, syncs)));
    let mut outcomes = Vec::new();
    for (call, at, total) in points {
        let scratch = fresh();
        let trace = scratch.path("writes.trace");
        let out = scratch.under_strace(args, Some((call, at)), &trace);
        let at = format!("{call} {at} of {total}");
        assert!(
            !out.status.success(),
            "{args:?} with SIGKILL at {at} finished anyway: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let now = records(&scratch);
        let (which, expected_versions) = if now == old {
            ("old", 1)
        } else if now == new {
            ("new", 2)
        } else {
            let mixed_old = now.iter().filter(|l| l.contains("-v1.")).count();
            let mixed_new = now.iter().filter(|l| l.contains("-v2.")).count();
            panic!(
                "killed at {at}: the store holds neither version \
                 ({mixed_old} old names, {mixed_new} new names, {} records)",
                now.len()
            );
        };
        assert_eq!(
            versions(&scratch),
            expected_versions,
            "killed at {at}: the {which} records, with a journal to match"
        );
        outcomes.push(format!("{at}:{which}"));
        // The interrupted command, run again, finishes the job.
        if which == "old" {
            scratch.ok(args);
        }
        assert_eq!(
            records(&scratch),
            new,
            "after the kill at {at} and a new run, the new version"
        );
    }
    eprintln!("{args:?}: kill points and what the store held: {outcomes:?}");
    assert!(
        outcomes.iter().any(|o| o.ends_with(":old")),
        "at least the first kill point lands before the commit: {outcomes:?}"
    );
}

#[test]
fn an_import_killed_midway_leaves_the_old_zone_or_the_new_one_never_a_mix() {
    killed_midway_leaves_old_or_new(&["zone", "import", "v2.zone", "--replace", "--yes"]);
}

#[test]
fn a_record_apply_killed_midway_leaves_the_old_zone_or_the_new_one_never_a_mix() {
    killed_midway_leaves_old_or_new(&["record", "apply", "big.test.", "changes.txt"]);
}
