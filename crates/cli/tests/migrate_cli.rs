//! `cutover migrate …` as a black box: plan changes nothing, start stores,
//! list/status/show read, pause/resume/abort steer, `run` carries a
//! migration out in the foreground, `rollback` puts the old values back,
//! and the exit statuses are those of the binary's table.

mod migration;

use std::net::IpAddr;
use std::time::Duration;

use migration::*;

/// A migration file for the site, with `schedule` as its `[schedule]` body.
fn file_for(site: &Site, web_port: u16, schedule: &str) -> String {
    let text = migration_text(site.addr, site.addr, web_port);
    let (head, _) = text
        .split_once("[schedule]")
        .expect("the shared file has a [schedule] section");
    let (_, verify) = text
        .split_once("[verify]")
        .expect("the shared file has a [verify] section");
    site.migration_file(&format!("{head}[schedule]\n{schedule}\n[verify]{verify}"))
}

/// The zone's serial as `zone show` prints it.
fn serial(site: &Site) -> String {
    let store = arg(&site.store);
    let out = ok(
        "zone show",
        cutover(&["--store", &store, "zone", "show", "example.test."], &[]),
    );
    out.lines()
        .find_map(|l| l.strip_prefix("serial:"))
        .map(|s| s.trim().to_string())
        .expect("zone show prints the serial")
}

/// Panics when `output` holds Rust's own words for its types (`Some(…)`,
/// `{"Ok": …}`, a `Debug` variant name) instead of the engine's words.
fn no_rust_words(what: &str, output: &str) {
    for raw in [
        "Some(",
        "None",
        "\"Ok\"",
        "\"Err\"",
        "{\"Ok",
        "Original",
        "Lowered",
        "Switched",
        "Restored",
        "LowerTtls",
        "FlushCaches",
    ] {
        assert!(
            !output.contains(raw),
            "{what}: expected no {raw:?} (a Rust word) in:\n{output}"
        );
    }
}

/// `plan` prints absolute times, explained waits and the changes, and
/// changes nothing; `--json` is the same plan as data; a bad file exits 2
/// naming line and column.
#[test]
fn plan_explains_every_wait_and_changes_nothing() {
    let site = Site::new(30);
    let _serve = site.serve(&[]);
    let file = file_for(&site, 8080, "observe = \"1h\"\nmargin = \"5s\"");
    let before = serial(&site);
    let text = ok("migrate plan", site.run(&["migrate", "plan", &file], &[]));
    for expected in [
        "www.example.test. A: 127.0.0.2 (TTL 30) → 127.0.0.3 (TTL 2 during, 30 after)",
        "wait 35s until",
        "why: the longest TTL a cache may hold: www.example.test. A has TTL 30s",
        "put the new values in place, TTL 2s",
        "observe for 1h",
        "Nothing was changed.",
    ] {
        assert!(
            text.contains(expected),
            "expected {expected:?} in the plan:\n{text}"
        );
    }
    let timestamps = text
        .lines()
        .filter(|l| l.contains("T") && l.contains("Z"))
        .count();
    assert!(
        timestamps >= 9,
        "expected an absolute time on each of the 9 steps:\n{text}"
    );
    assert_eq!(serial(&site), before, "plan must not change the zone");
    let list = ok(
        "migrate list",
        site.run(&["migrate", "list", "--json"], &[]),
    );
    assert_eq!(
        list.trim(),
        "[]",
        "plan must not store a migration, saw {list}"
    );

    let json = ok(
        "migrate plan --json",
        site.run(&["migrate", "plan", &file, "--json"], &[]),
    );
    let plan: serde_json::Value = serde_json::from_str(&json).expect("plan --json is JSON");
    let kinds: Vec<&str> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "lower_ttls",
            "wait_for_caches",
            "verify_new",
            "note_serials",
            "switch",
            "flush_caches",
            "verify_switch",
            "observe",
            "restore_ttls"
        ],
        "expected the whole procedure in order"
    );

    let bad = site.migration_file("version = 1\nzone = \"example.test.\"\nprovider = { kind = \"embedded\" }\n[[move]]\nfrom = \"not an address\"\nto = \"127.0.0.3\"\n");
    let out = site.run(&["migrate", "plan", &bad], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad file exits 2; stderr: {stderr}"
    );
    assert!(
        stderr.contains("move-web.toml:5:"),
        "expected the file and line 5 in the error, saw {stderr}"
    );
}

/// `start` stores a migration; list, status and show report it; pause,
/// resume and abort steer it; abort and rollback need --yes (exit 4).
#[test]
fn start_list_show_pause_resume_and_abort() {
    let site = Site::new(30);
    let _serve = site.serve(&[]);
    // A switch three days ahead: nothing is due for days.
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(72);
    let file = file_for(
        &site,
        8080,
        &format!(
            "switch_at = \"{}\"\nobserve = \"24h\"",
            later.strftime("%Y-%m-%dT%H:%M:%SZ")
        ),
    );
    let id = start(&site, &file);
    let list = ok("migrate list", site.run(&["migrate", "list"], &[]));
    assert!(
        list.contains("example.test.") && list.contains("planned") && list.contains("lower ttls"),
        "expected the migration listed as planned with its next step, saw:\n{list}"
    );
    let shown = ok(
        "migrate show",
        site.run(&["migrate", "show", &id.to_string()], &[]),
    );
    assert!(
        shown.contains("[NEXT]")
            && shown.contains("(in 2d")
            && shown.contains("audit log (0 record changes)"),
        "expected the next step in about 2-3 days and an empty audit log, saw:\n{shown}"
    );
    let paused = ok(
        "pause",
        site.run(&["migrate", "pause", &id.to_string()], &[]),
    );
    assert!(paused.contains("paused"), "expected paused, saw {paused}");
    assert_eq!(status(&site, id)["state"], "paused");
    let active = ok("status", site.run(&["migrate", "status", "--json"], &[]));
    assert!(
        active.contains("\"paused\""),
        "status lists the paused migration: {active}"
    );
    ok(
        "resume",
        site.run(&["migrate", "resume", &id.to_string()], &[]),
    );
    assert_ne!(status(&site, id)["state"], "paused", "resume goes on");

    let refused = site.run(&["migrate", "abort", &id.to_string()], &[]);
    assert_eq!(
        refused.status.code(),
        Some(4),
        "abort without --yes exits 4; stderr: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let refused = site.run(&["migrate", "rollback", &id.to_string()], &[]);
    assert_eq!(
        refused.status.code(),
        Some(4),
        "rollback without --yes exits 4"
    );
    ok(
        "abort",
        site.run(&["migrate", "abort", &id.to_string(), "--yes"], &[]),
    );
    assert_eq!(status(&site, id)["state"], "aborted");
    let missing = site.run(&["migrate", "show", "999"], &[]);
    assert_eq!(missing.status.code(), Some(1), "an unknown id exits 1");
}

/// A migration's lock file (`STORE.migration-ID.lock`, the lease of its
/// runner) is removed once the migration is final: by `abort` when no
/// runner holds it, and when `cutover serve` starts for those left behind
/// (by a crash, or by an abort while a runner held it); the files of
/// migrations still going are kept.
#[test]
fn the_lock_files_of_finished_migrations_are_removed() {
    let site = Site::new(30);
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(72);
    let schedule = format!(
        "switch_at = \"{}\"\nobserve = \"24h\"",
        later.strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    let lock = |id: i64| {
        site.dir
            .path()
            .join(format!("cutover.db.migration-{id}.lock"))
    };
    let leave = |id: i64| std::fs::write(lock(id), "").unwrap();
    // Serve is down: nothing runs these migrations meanwhile.
    let aborted = start_before_serve(&site, &file_for(&site, 8080, &schedule));
    leave(aborted);
    ok(
        "abort",
        site.run(&["migrate", "abort", &aborted.to_string(), "--yes"], &[]),
    );
    assert!(!lock(aborted).exists(), "abort leaves its lock file");
    let going = start_before_serve(&site, &file_for(&site, 8080, &schedule));
    let done_elsewhere = start_before_serve(&site, &file_for(&site, 8080, &schedule));
    // Aborted while a runner held its lease: the file stays for now.
    let runner = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock(done_elsewhere))
        .unwrap();
    runner.try_lock().unwrap();
    ok(
        "abort",
        site.run(
            &["migrate", "abort", &done_elsewhere.to_string(), "--yes"],
            &[],
        ),
    );
    assert!(
        lock(done_elsewhere).exists(),
        "expected the file kept while a runner holds its lease"
    );
    drop(runner);
    leave(going);
    leave(aborted);
    leave(999);
    let _serve = site.serve(&[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while [aborted, done_elsewhere, 999]
        .iter()
        .any(|&id| lock(id).exists())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not remove the lock files of finished migrations within 10 s; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        lock(going).exists(),
        "the lock file of a migration going on"
    );
    assert!(
        site.log()
            .contains("removed 3 lock file(s) of finished migrations"),
        "serve says what it tidied; log:\n{}",
        site.log()
    );
}

/// `run ID` carries a migration out in the foreground, printing each step
/// with its evidence and exiting 0 when done.
#[test]
fn run_carries_a_migration_out_in_the_foreground() {
    let site = Site::new(2);
    // A nameserver for the checks; its own scheduler leaves the migration
    // to `run`, which holds the migration's lease.
    let _serve = site.serve(&[]);
    let listener = hold_tcp_on(NEW.octets());
    let port = listener.local_addr().expect("a bound listener").port();
    let _new = HttpServer::start(listener, "new");
    let file = file_for(&site, port, "observe = \"1s\"\nmargin = \"1s\"");
    let id = start(&site, &file);
    let out = site.run(&["migrate", "run", &id.to_string()], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "run exits 0 when done; stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        // The TTL is already the low TTL: nothing to lower, and it says so.
        "lower ttls       skipped",
        "nothing to change: the records already hold these values",
        "… wait for caches at",
        "www.example.test. A: 2 127.0.0.2 → 2 127.0.0.3",
        "status 200",
        "flush caches     skipped",
        "no local caches are listed to flush",
        "restore ttls     skipped",
        &format!("migration {id}: done"),
    ] {
        assert!(
            stdout.contains(expected),
            "expected {expected:?} in run's output:\n{stdout}"
        );
    }
    no_rust_words("migrate run", &stdout);
    // In a pipe, the countdown is one plain line per wait: never a carriage
    // return or an escape code redrawing a line.
    assert!(
        !stdout.contains('\r') && !stdout.contains('\u{1b}'),
        "run in a pipe wrote a terminal control:\n{stdout:?}"
    );
    // Done: its lock file is gone with it.
    let lock = site
        .dir
        .path()
        .join(format!("cutover.db.migration-{id}.lock"));
    assert!(
        !lock.exists(),
        "the lock file of a finished migration is left: {}",
        lock.display()
    );
    let www = address(site.addr, "www.example.test.", false).expect("www answers");
    assert_eq!(
        www,
        (IpAddr::V4(NEW), 2),
        "expected www on the new address, original TTL"
    );
}

/// On a terminal, `run` counts down to each step in place (a bar redrawn
/// with a carriage return and cleared when the step runs), and the steps
/// print as in a pipe.
#[test]
fn run_on_a_terminal_counts_down_in_place() {
    let site = Site::new(2);
    let _serve = site.serve(&[]);
    let listener = hold_tcp_on(NEW.octets());
    let port = listener.local_addr().expect("a bound listener").port();
    let _new = HttpServer::start(listener, "new");
    let file = file_for(&site, port, "observe = \"1s\"\nmargin = \"1s\"");
    let id = start(&site, &file);
    let out = std::process::Command::new("script")
        .arg("-qec")
        .arg(format!(
            "{} --config {} migrate run {id}",
            env!("CARGO_BIN_EXE_cutover"),
            site.config.display()
        ))
        .arg("/dev/null")
        .env("RUST_LOG", "warn")
        .output()
        .expect("script(1) runs");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "run on a terminal:\n{tty:?}");
    assert!(
        tty.contains("   … wait for caches at")
            && tty.contains("s) [")
            && tty.contains("\r\u{1b}[2K")
            && tty.contains(&format!("migration {id}: done")),
        "expected a countdown redrawn in place, then the steps:\n{tty:?}"
    );
    let cleared = tty
        .split("\r\u{1b}[2K")
        .last()
        .expect("a cleared countdown");
    assert!(
        !cleared.contains("s) [") && cleared.contains(&format!("migration {id}: done")),
        "expected the last countdown cleared before the last steps:\n{cleared:?}"
    );
}

/// Regression (issue "every word true", 3 and 4): `start` without a
/// running `serve` said serve carries the migration out, and `status`
/// showed its first step "3 s ago", then "5 min ago", forever. Now start
/// says that nothing will run it, status and show say the step is overdue
/// because nothing runs it, and once `serve` runs, they say nothing of it.
#[test]
fn a_migration_nothing_runs_says_so() {
    let site = Site::new(30);
    let file = file_for(&site, 8080, "observe = \"1h\"\nmargin = \"5s\"");
    // Nothing answers for the zone yet: plan and start refuse that without --force.
    let planned = ok(
        "migrate plan",
        site.run(&["migrate", "plan", &file, "--force"], &[]),
    );
    assert!(
        planned.contains("! nothing is running migrations on this store: once started"),
        "expected plan to warn that nothing would run it, saw:\n{planned}"
    );
    let output = site.run(&["migrate", "plan", &file, "--force", "--json"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success()
            && serde_json::from_slice::<serde_json::Value>(&output.stdout).is_ok()
            && stderr.contains("warning: nothing is running migrations on this store"),
        "expected the plan as JSON and the warning beside it on stderr, saw {:?}: {stderr}",
        output.status
    );
    let started = ok(
        "migrate start",
        site.run(&["migrate", "start", &file, "--force"], &[]),
    );
    assert!(
        started.contains("nothing is running migrations on this store")
            && started.contains("cutover migrate run")
            && !started.contains("`cutover serve` carries it out"),
        "expected start to say that nothing will run it, saw:\n{started}"
    );
    let id: i64 = started
        .lines()
        .find_map(|l| l.strip_prefix("started migration "))
        .and_then(|n| n.trim().parse().ok())
        .expect("start names the migration");
    let text = ok("migrate status", site.run(&["migrate", "status"], &[]));
    assert!(
        text.contains("(overdue)")
            && text.contains("overdue: nothing is running this migration")
            && !text.contains(" ago)"),
        "expected the first step overdue because nothing runs it, saw:\n{text}"
    );
    let summary = status(&site, id);
    assert_eq!(summary["carried_by"], "nobody", "{summary}");
    assert!(
        summary["attention"]
            .as_str()
            .is_some_and(|a| a.starts_with("overdue: nothing is running this migration")),
        "expected the JSON to say so too, saw {summary}"
    );
    let shown = ok(
        "migrate show",
        site.run(&["migrate", "show", &id.to_string()], &[]),
    );
    assert!(
        shown.contains("! overdue: nothing is running this migration")
            && shown.contains("[NEXT]")
            && shown.contains("(overdue)"),
        "expected show to say the step is overdue and why, saw:\n{shown}"
    );
    no_rust_words("migrate show", &shown);
    // `migrate show ID | head -3` (the case): three lines read, the
    // pipe closed, the command ends quietly.
    {
        use std::io::{BufRead, BufReader};
        use std::os::unix::process::ExitStatusExt;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(["--config", &site.config.display().to_string()])
            .args(["migrate", "show", &id.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run cutover");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        for _ in 0..3 {
            assert!(
                lines.next().is_some_and(|l| l.is_ok()),
                "expected three lines"
            );
        }
        drop(lines);
        let output = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            (output.status.success() || output.status.signal() == Some(13)) && stderr.is_empty(),
            "expected `migrate show | head -3` to end quietly, saw {:?}: {stderr}",
            output.status
        );
    }

    // With serve running on the store, it carries the migration out.
    let _serve = site.serve(&[]);
    let summary = wait_state(&site, id, &["waiting"], Duration::from_secs(20));
    assert_eq!(summary["carried_by"], "serve", "{summary}");
    assert_eq!(summary["attention"], serde_json::Value::Null, "{summary}");
    let text = ok("migrate status", site.run(&["migrate", "status"], &[]));
    assert!(
        !text.contains("overdue") && text.contains("(in "),
        "expected the next step counted down, nothing overdue, saw:\n{text}"
    );
    let planned = ok(
        "migrate plan",
        site.run(&["migrate", "plan", &file, "--force"], &[]),
    );
    assert!(
        !planned.contains("nothing is running migrations"),
        "expected no warning with serve running, saw:\n{planned}"
    );
}

/// `migrate start --json` says who carries the migration out, as the text does.
#[test]
fn start_as_json_says_who_carries_it_out() {
    let site = Site::new(30);
    let file = file_for(&site, 8080, "observe = \"1h\"\nmargin = \"5s\"");
    let started = ok(
        "migrate start --json",
        site.run(&["migrate", "start", &file, "--force", "--json"], &[]),
    );
    let started: serde_json::Value = serde_json::from_str(&started).expect("start's JSON");
    assert_eq!(started["carried_by"], "nobody", "{started}");
    assert!(
        started["attention"]
            .as_str()
            .is_some_and(|a| a.contains("nothing is running this migration")),
        "expected the JSON to say that nothing runs it, saw {started}"
    );
    assert!(
        started["id"].is_i64() && started["plan"]["steps"].is_array(),
        "{started}"
    );
}

/// Regression (issue "every word true", 6): after an automatic rollback,
/// `resume` then `rollback --yes` rewrote the migration as "rolled back by
/// the operator" with the switch shown as skipped. The events keep the
/// automatic rollback, the resume and the manual rollback, each with its
/// cause, and the timeline shows that the switch was done.
#[test]
fn an_automatic_rollback_stays_in_the_history() {
    let site = Site::new(2);
    let _serve = site.serve(&[]);
    let listener = hold_tcp_on(NEW.octets());
    let port = listener.local_addr().expect("a bound listener").port();
    let _new = HttpServer::start(listener, "new");
    // Verified through a resolver that never answers (a socket held and
    // never read): the switch cannot be verified, and one try rolls it back.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    let resolver = silent.local_addr().expect("its address");
    let text = migration_text(site.addr, resolver, port).replace("tries = 3", "tries = 1");
    let file = site.migration_file(&text.replace("observe = \"3s\"", "observe = \"1h\""));
    // The silent resolver is a hazard the plan refuses without --force.
    let id = start_before_serve(&site, &file);
    let out = site.run(&["migrate", "run", &id.to_string()], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "run exits 1 when the migration rolls back; stdout:\n{stdout}"
    );
    assert!(
        stdout.contains("verify switch    failed") && stdout.contains("revert           done"),
        "expected the failed verification and the revert in run's output:\n{stdout}"
    );
    no_rust_words("migrate run", &stdout);
    ok(
        "resume",
        site.run(&["migrate", "resume", &id.to_string()], &[]),
    );
    ok(
        "rollback",
        site.run(
            &[
                "migrate",
                "rollback",
                &id.to_string(),
                "--yes",
                "--reason",
                "the new site is not ready",
            ],
            &[],
        ),
    );
    let summary = wait_state(&site, id, &["rolled_back"], Duration::from_secs(20));
    assert_eq!(summary["phase"], "original", "{summary}");
    let shown = ok(
        "migrate show",
        site.run(&["migrate", "show", &id.to_string()], &[]),
    );
    no_rust_words("migrate show", &shown);
    let switch = shown
        .lines()
        .find(|l| l.contains("put the new values in place"))
        .expect("the switch in the timeline");
    assert!(
        switch.trim_start().starts_with("[done]"),
        "expected the switch shown as done (it was, then reverted), saw {switch:?} in:\n{shown}"
    );
    // One space between words: the columns are as wide as their widest cell.
    let events = shown
        .split("events (as they happened):")
        .nth(1)
        .expect("an events section")
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    let order = [
        "automatic rolling back automatically: verification after the switch failed 1 time",
        "automatic revert: done",
        "operator resumed by the operator (rolled back → verifying new)",
        "operator rollback requested by the operator: the new site is not ready",
        "automatic restore original: ",
    ];
    let mut from = 0;
    for line in order {
        let at = events[from..].find(line).unwrap_or_else(|| {
            panic!("expected {line:?} after the events before it in:\n{events}")
        });
        from += at + line.len();
    }
    let detail = show(&site, id);
    let causes: Vec<&str> = detail["migration"]["events"]
        .as_array()
        .expect("events in show --json")
        .iter()
        .filter(|e| e["kind"] == "state")
        .filter_map(|e| e["cause"].as_str())
        .collect();
    assert!(
        causes.contains(&"automatic") && causes.contains(&"operator"),
        "expected changes of state by both causes, saw {causes:?}"
    );
}

/// A manual rollback after the switch puts the old values back and then
/// the original TTLs, audited.
#[test]
fn rollback_after_the_switch_puts_the_old_values_back() {
    let site = Site::new(3);
    let _serve = site.serve(&[]);
    let listener = hold_tcp_on(NEW.octets());
    let port = listener.local_addr().expect("a bound listener").port();
    let _new = HttpServer::start(listener, "new");
    let file = file_for(&site, port, "observe = \"1h\"\nmargin = \"1s\"");
    let id = start(&site, &file);
    wait_state(&site, id, &["observing"], Duration::from_secs(40));
    assert_eq!(
        address(site.addr, "www.example.test.", false).map(|(a, _)| a),
        Ok(IpAddr::V4(NEW)),
        "switched before the rollback"
    );
    let out = ok(
        "rollback",
        site.run(&["migrate", "rollback", &id.to_string(), "--yes"], &[]),
    );
    let summary = wait_state(&site, id, &["rolled_back"], Duration::from_secs(20));
    assert_eq!(
        summary["phase"], "original",
        "expected the original values and TTLs back, saw {summary}; output:\n{out}"
    );
    // The server reloads the store within 250 ms.
    let mut www = address(site.addr, "www.example.test.", false);
    for _ in 0..40 {
        if www == Ok((IpAddr::V4(OLD), 3)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        www = address(site.addr, "www.example.test.", false);
    }
    assert_eq!(
        www,
        Ok((IpAddr::V4(OLD), 3)),
        "expected www back on the old address at its original TTL"
    );
    let detail = show(&site, id);
    let steps: Vec<&str> = detail["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .map(|a| a["step"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        steps.len(),
        4,
        "lower, switch, revert, restore: expected 4 audited changes, saw {steps:?}"
    );
    assert_eq!(
        &steps[..2],
        ["lower_ttls", "switch"],
        "the first two changes, saw {steps:?}"
    );
}

/// The file of the refusal tests: www moves from the old to the new
/// address at TTL 2, an http check of www, and `verify` as given. Lines:
/// 1-3 version, zone, provider; 4-6 the move; 7-8 `[ttl]`; 9-10 the check;
/// 11- `verify`.
fn refusal_text(check: &str, ttl: &str, verify: &str) -> String {
    format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n\
         [[move]]\nfrom = \"{OLD}\"\nto = \"{NEW}\"\n\
         [ttl]\n{ttl}\n\
         [[check]]\n{check}\n\
         {verify}"
    )
}

/// `migrate plan FILE` and `migrate start FILE` both exit 2 with `expected`
/// (which begins with FILE:LINE:COLUMN) on stderr, and store nothing.
fn refused_by_plan_and_start(site: &Site, text: &str, expected: &str) {
    let file = site.migration_file(text);
    for verb in ["plan", "start"] {
        let out = site.run(&["migrate", verb, &file], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let wanted = format!("error: {file}:{expected}");
        assert_eq!(
            out.status.code(),
            Some(2),
            "`migrate {verb}` of a file that cannot work exits 2; stderr:\n{stderr}\nfile:\n{text}"
        );
        assert!(
            stderr.contains(&wanted),
            "`migrate {verb}`: expected\n{wanted}\nsaw\n{stderr}\nfile:\n{text}"
        );
    }
    let list = ok(
        "migrate list",
        site.run(&["migrate", "list", "--json"], &[]),
    );
    assert_eq!(list.trim(), "[]", "a refused start stores nothing: {list}");
}

/// The truthfulness issue's checks that can never pass, and a provider
/// that is not compiled in, refused by plan and start before anything
/// changes, each at its file:line:column (no server needs to run: the
/// refusal comes before any probe).
#[test]
fn checks_that_can_never_pass_are_refused_at_their_place() {
    let site = Site::new(30);
    let www = "http = \"http://www.example.test:8080/healthz\"";
    let verify = "[verify]\nauthorities = [\"127.0.0.1:5399\"]\nresolvers = [\"127.0.0.1:5399\"]\n";
    let cases: Vec<(String, &str)> = vec![
        (
            refusal_text(www, "during = 2", "[verify]\nauthorities = [\"127.0.0.1:5399\"]\nresolvers = []\n"),
            "10:8: www.example.test is looked up through verify.resolvers after the switch, and `resolvers = []` (line 13) lists none: the check could never run; list a resolver",
        ),
        (
            refusal_text(www, "during = 2", "[verify]\nresolvers = []\n"),
            "12:13: verify.resolvers is empty and no authorities are listed",
        ),
        (
            refusal_text("tcp = \"other.example.test:80\"", "during = 2", verify),
            "10:7: other.example.test does not move: its A record stays 192.0.2.99, so after the switch this check would reach the old server, not the new one",
        ),
        (
            refusal_text("http = \"http://www.example.org/\"", "during = 2", verify),
            "10:8: www.example.org is not in the zone example.test.",
        ),
        (
            refusal_text("tcp = \"www.example.test:80\"\naddress = \"::1\"", "during = 2", verify),
            "11:11: address ::1 is not one www.example.test has after the switch (127.0.0.3) (www.example.test has no AAAA record after the switch)",
        ),
        (
            refusal_text("http = \"https://127.0.0.3/\"", "during = 2", verify),
            "10:8: this https check names the address 127.0.0.3: TLS checks the certificate against a name",
        ),
        (
            refusal_text("smtp = \"example.test:25\"", "during = 2", verify),
            "10:8: example.test has no A or AAAA record after the switch",
        ),
        (
            refusal_text("tcp = \"127.0.0.2:80\"", "during = 2", verify),
            "10:7: this check names the address 127.0.0.2, which no move gives",
        ),
        (
            refusal_text(www, "during = 60", verify),
            "8:10: www.example.test. A has TTL 30s, below ttl.during (60s): the move would raise it",
        ),
        (
            refusal_text(www, "during = 2", verify).replace("{ kind = \"embedded\" }", "{ kind = \"cloud\", service = \"cloudflare\", token_file = \"/etc/cutover/cf.token\" }"),
            "3:12: provider.nameservers: expected the zone's authoritative servers to read from, e.g. [\"ns1.host.example:53\"] (Cloudflare is read by DNS)",
        ),
        // The migration file's own ranges (the security issue's item 13).
        (
            refusal_text(www, "during = 2", verify) + "[[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.4\"\n",
            "15:8: 127.0.0.2 is already moved by the [[move]] at line 4 (to 127.0.0.3)",
        ),
        (
            refusal_text(www, "during = 999999", verify),
            "8:10: ttl.during: 11d 13h 46m 39s is out of range: expected 1s to 1d",
        ),
        (
            refusal_text(www, "during = 2", verify) + "[flush]\ncaches = [\"netscape\"]\n",
            "15:11: \"netscape\" is not a cache cutover can flush",
        ),
        (
            refusal_text(www, "during = 2", verify) + "[mail]\ndomain = \"example.test\"\nfrom = \"127.0.0.2:25\"\nto = \"127.0.0.3:25\"\nhold = true\n",
            "18:1: unknown field `hold`",
        ),
    ];
    for (text, expected) in &cases {
        refused_by_plan_and_start(&site, text, expected);
    }
}

/// What the servers say now, another migration of the same records, and a
/// `[mail]` or `[flush]` this site cannot carry out: refused by plan and
/// start at their place unless `--force`, which makes each a warning.
#[test]
fn hazards_are_refused_unless_forced() {
    let site = Site::new(30);
    let _serve = site.serve(&[]);
    let authority = site.addr.to_string();
    let verify =
        format!("[verify]\nauthorities = [\"{authority}\"]\nresolvers = [\"{authority}\"]\n");
    let www = "http = \"http://www.example.test:8080/healthz\"";
    let config = site.config.display().to_string();

    // A resolver that never answers (a socket held open, read by nobody).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("a silent socket");
    let silent = silent.local_addr().expect("its address");
    refused_by_plan_and_start(
        &site,
        &refusal_text(www, "during = 2", &format!("[verify]\nauthorities = [\"{authority}\"]\nresolvers = [\"{silent}\"]\n")),
        &format!("13:13: resolver {silent} does not answer now (timeout): verification asks it for the new values after the switch, and would fail (refused; `--force` goes on"),
    );

    // An authority serving a newer serial than the provider holds.
    let ahead = Site::new(30);
    ok(
        "record add",
        cutover(
            &[
                "--store",
                &arg(&ahead.store),
                "record",
                "add",
                "example.test.",
                "extra",
                "A",
                "192.0.2.7",
            ],
            &[],
        ),
    );
    let _ahead_serve = ahead.serve(&[]);
    refused_by_plan_and_start(
        &site,
        &refusal_text(www, "during = 2", &format!("[verify]\nauthorities = [\"{authority}\", \"{}\"]\nresolvers = [\"{authority}\"]\n", ahead.addr)),
        &format!("12:15: authority example.test. ({}) serves serial 2026112602, newer than the provider's 2026112601: the switch would lower the serial there", ahead.addr),
    );

    // The site's relay and caches.
    refused_by_plan_and_start(
        &site,
        &(refusal_text(www, "during = 2", &verify) + "[mail]\ndomain = \"example.test\"\nfrom = \"127.0.0.2:25\"\nto = \"127.0.0.3:25\"\n"),
        &format!("15:10: [mail] asks the relay to hold, retarget and release example.test's mail, but the config {config} has no [mail] relay: the mail steps would do nothing"),
    );
    refused_by_plan_and_start(
        &site,
        &(refusal_text(www, "during = 2", &verify) + "[flush]\ncaches = [\"nscd\"]\n"),
        &format!("15:11: no nscd cache runs on this machine, and the config {config} lists none in [flush]: the flush step would flush nothing"),
    );

    // A relay that delivers the domain elsewhere than the file's mail.from:
    // a rollback would not send the mail back where it went.
    let plain = std::fs::read_to_string(&site.config).expect("the config");
    let spool = site.dir.path().join("spool");
    std::fs::write(
        &site.config,
        format!(
            "{plain}[mail]\nlisten = [\"127.0.0.1:2\"]\nhostname = \"mx.relay.test\"\nspool = {spool:?}\n\
             [[mail.domain]]\nname = \"example.test\"\ndestination = \"127.0.0.2:2525\"\nrecipients = [\"@example.test\"]\n"
        ),
    )
    .unwrap();
    refused_by_plan_and_start(
        &site,
        &(refusal_text(www, "during = 2", &verify)
            + "[mail]\ndomain = \"example.test\"\nfrom = \"127.0.0.2:25\"\nto = \"127.0.0.3:25\"\n"),
        &format!("16:8: mail.from \"127.0.0.2:25\" is not where the relay delivers example.test's mail (\"127.0.0.2:2525\" in the config {config}): a rollback would send the mail to \"127.0.0.2:25\""),
    );
    std::fs::write(&site.config, plain).unwrap();

    // Another active migration of www A: the first is started (its switch
    // days ahead), the second refused, then forced.
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(72);
    let text = refusal_text(www, "during = 2", &verify)
        + &format!(
            "[schedule]\nswitch_at = \"{}\"\n",
            later.strftime("%Y-%m-%dT%H:%M:%SZ")
        );
    let file = site.migration_file(&text);
    let first = start(&site, &file);
    let out = site.run(&["migrate", "plan", &file], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {file}:5:8: www.example.test. A is also moved by migration {first} ("
        )),
        "expected the clash at the move's `from`, saw {stderr}"
    );
    let forced = ok(
        "migrate plan --force",
        site.run(&["migrate", "plan", &file, "--force"], &[]),
    );
    assert!(
        forced.contains(&format!(
            "forced: {file}:5:8: www.example.test. A is also moved by migration {first} ("
        )),
        "expected the clash as a warning of the forced plan:\n{forced}"
    );
    assert!(
        forced.contains(&format!("`cutover migrate start {file} --force` starts it")),
        "the forced plan says how to start it as planned:\n{forced}"
    );
}
