//! The dashboard in a real browser: headless Chromium loads `/` while a
//! time-scaled migration runs (cutover serve's scheduler, Unbound as the
//! resolver), and the DOM must show the timeline and the propagation matrix
//! in the right states: before the switch (paused after the lowering: old
//! everywhere) and after it (new everywhere). Screenshots are saved as
//! test artifacts in `target/test-artifacts/`.
//!
//! ```text
//!  chromium --headless --dump-dom http://H/#token=… ──▶ dashboard.js ──▶ /api/v1/migrations…
//!                                                                   └──▶ /propagation ──▶ cutover check
//!  cutover serve (scheduler) ◀── the migration ──▶ store ◀── Unbound (stub) caches www
//! ```

mod control;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use control::Site;
use cutover_peers::Unbound;
use serde_json::{json, Value};

/// Where the screenshots go.
fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("the artifacts directory");
    dir
}

/// Runs headless Chromium on the dashboard with `mode` (`--dump-dom` or
/// `--screenshot=FILE`); returns stdout.
fn chromium(site: &Site, mode: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("{}#token={}", site.url("/"), site.admin);
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1400,1800",
            "--virtual-time-budget=6000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(mode)
        .arg(&url)
        .output()
        .expect("chromium runs (package chromium)");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The DOM once it shows what `ready` looks for (Chromium is run again
/// until it does, for at most 60 s); panics with the last DOM otherwise.
fn dom_when(site: &Site, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dom = chromium(site, "--dump-dom");
        if ready(&dom) {
            return dom;
        }
        assert!(
            Instant::now() < deadline,
            "expected the dashboard to show {what} within 60 s; DOM:\n{dom}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The `data-state` of every matrix cell of the rows of `kind`.
fn cell_states(dom: &str, kind: &str) -> Vec<String> {
    let marker = format!("data-kind=\"{kind}\"");
    let mut states = Vec::new();
    for row in dom.split("<tr ").filter(|row| row.contains(&marker)) {
        let row = row.split("</tr>").next().unwrap_or_default();
        for piece in row.split("class=\"cell ").skip(1) {
            if let Some(state) = piece
                .split("data-state=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
            {
                states.push(state.to_owned());
            }
        }
    }
    states
}

/// The status of the timeline step `kind` of migration `id`.
fn step_state(dom: &str, kind: &str) -> Option<String> {
    let piece = dom.split(&format!("data-step=\"{kind}\"")).nth(1)?;
    piece
        .split("data-state=\"")
        .nth(1)?
        .split('"')
        .next()
        .map(str::to_owned)
}

/// The migration's summary through the API.
fn summary(site: &Site, id: i64) -> Value {
    let (status, detail) = site.call(
        "GET",
        &format!("/api/v1/migrations/{id}"),
        Some(&site.reader),
        None,
    );
    assert_eq!(status, 200, "expected the migration, seen {detail}");
    detail["summary"].clone()
}

/// Asks Unbound for www so it caches what the server gives now.
fn ask(resolver: SocketAddr) {
    let output = Command::new("kdig")
        .args([
            "+short",
            "+retry=0",
            "+time=2",
            &format!("@{}", resolver.ip()),
            "-p",
            &resolver.port().to_string(),
            "www.example.test.",
            "A",
        ])
        .output()
        .expect("kdig runs");
    assert!(output.status.success(), "kdig failed");
}

#[test]
fn the_dashboard_shows_the_timeline_and_the_propagation_matrix() {
    let site = Site::start("");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let unbound = runtime.block_on(Unbound::start(
        &[("example.test", site.dns)],
        "    prefetch: no\n    serve-expired: no\n",
        "example.test.",
    ));
    ask(unbound.addr);
    let text = format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n[[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 1\n[schedule]\nswitch_at = \"earliest\"\nmargin = 2\nobserve = \"300s\"\n\
         [verify]\nauthorities = [\"{}\"]\nresolvers = [\"{}\"]\ntries = 5\ninterval = 1\n",
        site.dns, unbound.addr
    );
    let body = json!({"file_name": "move-web.toml", "text": text}).to_string();
    let (status, created) = site.call("POST", "/api/v1/migrations", Some(&site.admin), Some(&body));
    assert_eq!(
        status, 200,
        "expected the migration started, seen {created}"
    );
    let id = created["id"].as_i64().expect("an id");

    // Before the switch: paused right after the lowering.
    let deadline = Instant::now() + Duration::from_secs(20);
    while summary(&site, id)["phase"] == "original" {
        assert!(
            Instant::now() < deadline,
            "expected the TTL lowered within 20 s, seen {}",
            summary(&site, id)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, paused) = site.call(
        "POST",
        &format!("/api/v1/migrations/{id}/pause"),
        Some(&site.admin),
        Some(r#"{"reason":"dashboard test"}"#),
    );
    assert_eq!(
        (status, paused["state"].as_str()),
        (200, Some("paused")),
        "expected paused, seen {paused}"
    );
    assert_eq!(
        paused["phase"], "lowered",
        "expected paused before the switch, seen {paused}"
    );
    ask(unbound.addr);
    let before = dom_when(&site, "the paused migration and its matrix", |dom| {
        dom.contains(&format!("data-migration=\"{id}\""))
            && !cell_states(dom, "resolver").is_empty()
    });
    assert_eq!(
        step_state(&before, "lower_ttls").as_deref(),
        Some("done"),
        "expected the lowering done in the timeline"
    );
    assert_ne!(
        step_state(&before, "switch").as_deref(),
        Some("done"),
        "expected the switch not done yet"
    );
    assert!(
        before.contains("data-state=\"paused\""),
        "expected the card to say paused"
    );
    assert_eq!(
        cell_states(&before, "authoritative"),
        ["old"],
        "expected the server on the old address before the switch"
    );
    assert_eq!(
        cell_states(&before, "resolver"),
        ["old"],
        "expected the resolver on the old address before the switch"
    );
    chromium(
        &site,
        &format!(
            "--screenshot={}",
            artifacts().join("dashboard-before-switch.png").display()
        ),
    );

    // After the switch: new everywhere, observing, a countdown to the next step.
    let (status, resumed) = site.call(
        "POST",
        &format!("/api/v1/migrations/{id}/resume"),
        Some(&site.admin),
        None,
    );
    assert_eq!(status, 200, "expected resumed, seen {resumed}");
    let deadline = Instant::now() + Duration::from_secs(40);
    while summary(&site, id)["state"] != "observing" {
        let now = summary(&site, id);
        assert!(
            Instant::now() < deadline
                && !["failed", "rolled_back", "aborted"]
                    .contains(&now["state"].as_str().unwrap_or_default()),
            "expected observing within 40 s, seen {now}; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ask(unbound.addr);
    let after = dom_when(&site, "new everywhere", |dom| {
        cell_states(dom, "authoritative") == ["new"] && cell_states(dom, "resolver") == ["new"]
    });
    assert_eq!(
        step_state(&after, "switch").as_deref(),
        Some("done"),
        "expected the switch done in the timeline"
    );
    assert_eq!(
        step_state(&after, "verify_switch").as_deref(),
        Some("done"),
        "expected the verification done in the timeline"
    );
    assert!(
        after.contains("class=\"countdown\""),
        "expected a countdown to the next step"
    );
    assert!(
        after.contains("data-state=\"observing\""),
        "expected the card to say observing"
    );
    assert!(
        after.contains("127.0.0.3"),
        "expected the new address in the matrix"
    );
    // The timeline says what each step came to: the flush had nothing to
    // do (no caches are listed), which is not a flush, nor a failure.
    assert_eq!(
        step_state(&after, "flush_caches").as_deref(),
        Some("skipped"),
        "expected the flush shown as skipped"
    );
    assert!(
        after.contains("no local caches are listed to flush"),
        "expected the reason the flush was skipped"
    );
    // What happened, as it happened, with its cause.
    for event in [
        "started by the operator from move-web.toml",
        "paused by the operator: dashboard test",
        "switch: done",
    ] {
        assert!(
            after.contains(event),
            "expected the event {event:?} in the dashboard"
        );
    }
    assert!(
        after.contains("data-cause=\"operator\"") && after.contains("data-cause=\"automatic\""),
        "expected the events' causes"
    );
    // Labels from bounded sets only: no migration id, no zone.
    let (_, _, metrics) = site.text("/metrics");
    for line in [
        "cutover_migration_steps_total{step=\"switch\",outcome=\"done\"} 1",
        "cutover_migration_steps_total{step=\"flush_caches\",outcome=\"skipped\"} 1",
        "cutover_migrations{state=\"observing\"} 1",
        "cutover_migrations{state=\"done\"} 0",
        "cutover_migrations_overdue 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "expected {line:?} in /metrics, seen:\n{metrics}"
        );
    }
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "cutover_migration_steps_total{step=\"verify_switch\",outcome=\"done\"} "
        )),
        "expected the verification's probe result in /metrics, seen:\n{metrics}"
    );
    assert!(
        !metrics
            .lines()
            .filter(|l| l.starts_with("cutover_migration"))
            .any(|l| l.contains("id=") || l.contains("zone=") || l.contains("outcome=\"ok\"")),
        "expected no per-migration label in /metrics, seen:\n{metrics}"
    );
    let shot = artifacts().join("dashboard.png");
    chromium(&site, &format!("--screenshot={}", shot.display()));
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "expected a PNG screenshot, seen {} bytes",
        png.len()
    );
}

/// A migration held at its approval gate shows since when and, for an
/// admin token, an Approve button; once approved (here through the API:
/// this test reads the DOM, it does not click), who approved and when.
#[test]
fn the_dashboard_shows_the_approval_gate_and_who_approved() {
    let site = Site::start("");
    let text = format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\napprove = \"before_lower_ttls\"\n\
         [[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n[ttl]\nduring = 1\n[schedule]\nmargin = 1\nobserve = \"300s\"\n\
         [verify]\nauthorities = [\"{}\"]\nresolvers = []\ntries = 1\ninterval = 1\n",
        site.dns
    );
    let body = json!({"file_name": "move-web.toml", "text": text}).to_string();
    let (status, created) = site.call("POST", "/api/v1/migrations", Some(&site.admin), Some(&body));
    assert_eq!(
        status, 200,
        "expected the migration started, seen {created}"
    );
    let id = created["id"].as_i64().expect("an id");
    let deadline = Instant::now() + Duration::from_secs(20);
    while summary(&site, id)["state"] != "awaiting_approval" {
        assert!(
            Instant::now() < deadline,
            "expected the migration at its gate within 20 s, seen {}",
            summary(&site, id)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let waiting = dom_when(&site, "the approval gate", |dom| {
        dom.contains(&format!("data-migration=\"{id}\"")) && dom.contains("data-awaiting-since")
    });
    assert!(
        waiting.contains("data-action=\"approve\"") && waiting.contains("Awaiting approval since"),
        "expected the Approve button and since when, DOM:\n{waiting}"
    );
    assert_eq!(
        step_state(&waiting, "approval").as_deref(),
        Some("next"),
        "expected the gate next in the timeline"
    );
    let (status, approved) = site.call(
        "POST",
        &format!("/api/v1/migrations/{id}/approve"),
        Some(&site.admin),
        None,
    );
    assert_eq!(status, 200, "expected the approval, seen {approved}");
    let after = dom_when(&site, "who approved", |dom| {
        dom.contains("approved by ops at ")
    });
    assert!(
        !after.contains("data-action=\"approve\""),
        "expected no Approve button once approved, DOM:\n{after}"
    );
}
