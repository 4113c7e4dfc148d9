//! The dashboard in a real browser: headless Chromium loads `/` while a
//! time-scaled migration runs (cutover serve's scheduler, Unbound as the
//! resolver), and the DOM must show the timeline and the propagation matrix
//! in the right states: before the switch (paused after the lowering: old
//! everywhere) and after it (new everywhere). Then clicks, through
//! chromedriver: Pause, Resume, Approve at the gate and Roll back, each
//! confirmed and reported as the API answered; no button for a read token;
//! and the chart drawn from the observations the API serves, with the
//! switch and the rollback marked. Screenshots are saved as test artifacts
//! in `target/test-artifacts/`.
//!
//! ```text
//!  chromium --headless --dump-dom http://H/#token=… ──▶ dashboard.js ──▶ /api/v1/migrations…
//!                                                                   └──▶ /propagation ──▶ cutover check
//!  cutover serve (scheduler) ◀── the migration ──▶ store ◀── Unbound (stub) caches www
//! ```

mod agent_support;
mod browser;
mod control;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use agent_support::{agents_section, online, unbound, wait_agents, Agent, FRESH, STALE};
use control::{ok, Site, ZONE};
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
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
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

/// Starts the migration file `text` through the API (as `move-web.toml`);
/// its id.
fn start_migration(site: &Site, text: &str) -> i64 {
    let body = json!({"file_name": "move-web.toml", "text": text}).to_string();
    let (status, created) = site.call("POST", "/api/v1/migrations", Some(&site.admin), Some(&body));
    assert_eq!(
        status, 200,
        "expected the migration started, seen {created}"
    );
    created["id"].as_i64().expect("an id")
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
    let id = start_migration(&site, &text);

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

/// The `data-state` of every matrix cell of the rows of `kind` seen from
/// `location` (`unanswered`: the row saying a location gave no answer).
fn located_states(dom: &str, location: &str, kind: &str) -> Vec<String> {
    let kind = format!("data-kind=\"{kind}\"");
    let place = format!("data-location=\"{location}\"");
    let mut states = Vec::new();
    for row in dom
        .split("<tr ")
        .map(|row| row.split("</tr>").next().unwrap_or_default())
        .filter(|row| row.contains(&kind) && row.contains(&place))
    {
        let cells: Vec<String> = row
            .split("data-state=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next().map(str::to_owned))
            .collect();
        if cells.is_empty() {
            states.push("-".to_owned());
        }
        states.extend(cells);
    }
    states
}

/// The text of the first row of `location` of `kind`, tags removed.
fn located_text(dom: &str, location: &str, kind: &str) -> String {
    let kind = format!("data-kind=\"{kind}\"");
    let place = format!("data-location=\"{location}\"");
    let row = dom
        .split("<tr ")
        .map(|row| row.split("</tr>").next().unwrap_or_default())
        .find(|row| row.contains(&kind) && row.contains(&place))
        .unwrap_or_default();
    let mut text = String::new();
    let mut inside = false;
    for c in row.chars() {
        match c {
            '<' => inside = true,
            '>' => {
                inside = false;
                text.push(' ');
            }
            _ if !inside => text.push(c),
            _ => {}
        }
    }
    text
}

/// A migration verified from local, fra1 and nyc1 (agents, each with its
/// own Unbound: nyc1's holds what it fetched for an hour) and sfo1 (no
/// agent): once it switched (a quorum of 2), the dashboard's matrix is
/// grouped by location, each with the values it sees and the TTL left —
/// local and fra1 new, nyc1's resolver still old — and sfo1 shown as
/// having given no answer, never as agreeing. The API's rows say the same
/// with their `location`.
#[test]
fn the_dashboards_matrix_is_grouped_by_location_and_names_a_location_without_an_answer() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let site = Site::start(&agents_section("10s"));
    let token = site.token("agents", "agent");
    let local = unbound(&runtime, site.dns, FRESH);
    let fra1 = unbound(&runtime, site.dns, FRESH);
    let nyc1 = unbound(&runtime, site.dns, STALE);
    // nyc1's resolver keeps the old address for an hour from now.
    ask(nyc1.addr);
    let a = Agent::start(&site, &token, "fra1", "fra1-a", Some(fra1.addr));
    let b = Agent::start(&site, &token, "nyc1", "nyc1-a", Some(nyc1.addr));
    wait_agents(
        &site,
        Duration::from_secs(30),
        "fra1-a and nyc1-a online",
        |l| online(l, &["fra1-a", "nyc1-a"]),
        &[&a, &b],
    );
    let text = format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n[[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 1\n[schedule]\nswitch_at = \"earliest\"\nmargin = 2\nobserve = \"300s\"\n\
         [verify]\nauthorities = [\"{}\"]\nresolvers = [\"{}\"]\ntries = 5\ninterval = 1\n\
         locations = [\"local\", \"fra1\", \"nyc1\", \"sfo1\"]\nquorum = 2\n",
        site.dns, local.addr
    );
    let id = start_migration(&site, &text);
    let deadline = Instant::now() + Duration::from_secs(60);
    while summary(&site, id)["state"] != "observing" {
        let now = summary(&site, id);
        assert!(
            Instant::now() < deadline
                && !["failed", "rolled_back", "aborted", "paused"]
                    .contains(&now["state"].as_str().unwrap_or_default()),
            "expected observing within 60 s (local and fra1 agree: a quorum of 2), seen {now}; agents' logs:\n{}\n{}\nserve's log:\n{}",
            a.log(),
            b.log(),
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The API first: a row per location and server, each with its location.
    let (status, matrix) = site.call(
        "GET",
        &format!("/api/v1/migrations/{id}/propagation"),
        Some(&site.admin),
        None,
    );
    assert_eq!(status, 200, "expected the matrix, seen {matrix}");
    control::assert_schema("Propagation", &matrix);
    let rows: Vec<(String, String, String)> = matrix["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            (
                row["location"].as_str().unwrap_or("?").to_owned(),
                row["kind"].as_str().unwrap_or("?").to_owned(),
                row["cells"][0]["state"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("local", "authoritative", "new"),
        ("local", "resolver", "new"),
        ("fra1", "authoritative", "new"),
        ("fra1", "resolver", "new"),
        ("nyc1", "authoritative", "new"),
        ("nyc1", "resolver", "old"),
    ]
    .iter()
    .map(|(l, k, s)| ((*l).to_owned(), (*k).to_owned(), (*s).to_owned()))
    .collect();
    assert_eq!(
        rows, expected,
        "expected each location's rows, nyc1's resolver on the old address: {matrix:#}"
    );
    let nyc1_left = matrix["rows"][5]["cells"][0]["ttl"].as_u64().unwrap_or(0);
    assert!(
        nyc1_left > 3000,
        "expected nyc1's cache to hold the old address for most of an hour: {matrix:#}"
    );
    let locations: Vec<(&str, usize)> = matrix["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| {
            (
                l["location"].as_str().unwrap_or("?"),
                l["problems"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(
        locations,
        [("local", 0), ("fra1", 0), ("nyc1", 0), ("sfo1", 1)],
        "expected the four locations, sfo1 with why it gave no answer: {matrix:#}"
    );
    assert!(
        matrix["locations"][3]["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("no agent online")),
        "expected sfo1's problem to say no agent is online there: {matrix:#}"
    );

    // The dashboard: a heading per location, the values and TTLs under it.
    let dom = dom_when(&site, "the matrix by location", |dom| {
        located_states(dom, "nyc1", "resolver") == ["old"]
            && located_states(dom, "sfo1", "unanswered") == ["-"]
    });
    for location in ["local", "fra1", "nyc1", "sfo1"] {
        assert!(
            dom.contains(&format!("data-location-head=\"{location}\"")),
            "expected a heading for {location}"
        );
    }
    for (location, kind, want) in [
        ("local", "authoritative", "new"),
        ("local", "resolver", "new"),
        ("fra1", "authoritative", "new"),
        ("fra1", "resolver", "new"),
        ("nyc1", "authoritative", "new"),
        ("nyc1", "resolver", "old"),
    ] {
        assert_eq!(
            located_states(&dom, location, kind),
            [want],
            "expected {location}'s {kind} {want} in the dashboard"
        );
    }
    let stale = located_text(&dom, "nyc1", "resolver");
    assert!(
        stale.contains("127.0.0.2") && stale.contains("TTL left"),
        "expected nyc1's resolver to show the old address and the TTL it has left: {stale}"
    );
    let fresh = located_text(&dom, "fra1", "resolver");
    assert!(
        fresh.contains("127.0.0.3"),
        "expected fra1's resolver to show the new address: {fresh}"
    );
    let silent = located_text(&dom, "sfo1", "unanswered");
    assert!(
        silent.contains("no answer from sfo1"),
        "expected sfo1 shown as having given no answer: {silent}"
    );
    assert!(
        located_text(&dom, "sfo1", "problem").contains("no agent online"),
        "expected sfo1's problem shown under it"
    );
    assert_eq!(
        located_states(&dom, "sfo1", "resolver"),
        Vec::<String>::new(),
        "expected no cell for sfo1: nothing was seen from there"
    );
    let said = dom
        .split("id=\"matrix-summary\"")
        .nth(1)
        .and_then(|s| s.split("</div>").next())
        .unwrap_or_default();
    assert!(
        said.contains("Not everywhere yet.") && said.contains("from sfo1"),
        "expected the summary to say not everywhere, naming sfo1: {said}"
    );
    assert!(
        !said.contains("Every server and cache gives the new values"),
        "expected no agreement claimed: {said}"
    );
    chromium(
        &site,
        &format!(
            "--screenshot={}",
            artifacts().join("dashboard-locations.png").display()
        ),
    );
}

/// A migration held at its approval gate shows since when and, for an
/// admin token, an Approve button; once approved (here through the API:
/// this test reads the DOM, it does not click), who approved and when.
#[test]
fn the_dashboard_shows_the_approval_gate_and_who_approved() {
    let site = Site::start("");
    // A second zone, so the card names both.
    let shop = site.dir.path().join("shop.test.zone");
    std::fs::write(&shop, ZONE.replace("example.test.", "shop.test.")).unwrap();
    ok(
        "zone import shop.test.",
        site.run(&[
            "zone",
            "import",
            shop.to_str().unwrap(),
            "--origin",
            "shop.test.",
        ]),
    );
    // Served before the plan asks the authority about it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = Command::new("kdig")
            .args([
                "+short",
                "+retry=0",
                "+time=2",
                "+norec",
                &format!("@{}", site.dns.ip()),
                "-p",
            ])
            .arg(site.dns.port().to_string())
            .args(["www.shop.test.", "A"])
            .output()
            .expect("kdig runs");
        if String::from_utf8_lossy(&answer.stdout).trim() == "127.0.0.2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected serve to answer for shop.test. within 20 s, kdig said {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = format!(
        "version = 1\nzones = [\"example.test.\", \"shop.test.\"]\nprovider = {{ kind = \"embedded\" }}\napprove = \"before_lower_ttls\"\n\
         [[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n[ttl]\nduring = 1\n[schedule]\nmargin = 1\nobserve = \"300s\"\n\
         [verify]\nauthorities = [\"{}\"]\nresolvers = []\ntries = 1\ninterval = 1\n",
        site.dns
    );
    let id = start_migration(&site, &text);
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
    assert!(
        waiting.contains("example.test. and 1 more zone")
            && waiting.contains("data-zones=\"2\"")
            && waiting.contains("Zones: example.test., shop.test."),
        "expected the card to name both zones, DOM:\n{waiting}"
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

/// The migration's events through the API.
fn events(site: &Site, id: i64) -> Vec<Value> {
    let (status, detail) = site.call(
        "GET",
        &format!("/api/v1/migrations/{id}"),
        Some(&site.reader),
        None,
    );
    assert_eq!(status, 200, "expected the migration, seen {detail}");
    detail["events"].as_array().cloned().unwrap_or_default()
}

/// Waits until the migration's state is `want` through the API (failing
/// early when it stopped otherwise).
fn wait_state(site: &Site, id: i64, want: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let now = summary(site, id);
        if now["state"] == want {
            return;
        }
        let stopped =
            ["failed", "aborted", "done"].contains(&now["state"].as_str().unwrap_or_default());
        assert!(
            Instant::now() < deadline && !stopped,
            "expected {want} within {limit:?}, seen {now}; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Clicks `action` on the card of migration `id` and checks that the
/// confirmation it opens asks `asks` of this migration (the dialog stays
/// open: the page waits on it). Returns how many answers the page had
/// shown before (see [`confirm_and_read`]).
fn click_for_confirmation(browser: &browser::Browser, id: i64, action: &str, asks: &str) -> u64 {
    let button = format!("[data-migration=\"{id}\"] button[data-action=\"{action}\"]");
    browser.wait_for(
        &format!("the {action} button"),
        Duration::from_secs(30),
        &format!(
            "return !!document.querySelector('{}');",
            button.replace('\'', "\\'")
        ),
        |v| v == &Value::Bool(true),
    );
    let before = answers_shown(browser);
    browser.click(&button);
    let dialog = browser.dialog_text();
    assert!(
        dialog.starts_with(&format!("{asks} migration #{id} ")),
        "expected the confirmation to ask {asks:?} of migration #{id}, seen {dialog:?}"
    );
    before
}

/// The answers to controls the page has shown so far.
fn answers_shown(browser: &browser::Browser) -> u64 {
    browser
        .eval("return [...document.querySelectorAll('p.result')].reduce((n, p) => Math.max(n, +p.dataset.seq), 0);", json!([]))
        .as_u64()
        .unwrap_or(0)
}

/// Accepts the open confirmation and returns what the card of migration
/// `id` then reports, once it shows an answer past the `before`th:
/// `{action, ok, state, seq, text}`.
fn confirm_and_read(browser: &browser::Browser, id: i64, action: &str, before: u64) -> Value {
    browser.accept_dialog();
    browser.wait_for(
        &format!("the answer to {action} on the card"),
        Duration::from_secs(20),
        &format!(
            "const p = document.querySelector('[data-migration=\"{id}\"] p.result');
             return p && {{action: p.dataset.result, ok: p.dataset.ok, state: p.dataset.state || null, seq: +p.dataset.seq, text: p.textContent}};"
        ),
        |v| v["action"] == action && v["seq"].as_u64().is_some_and(|seq| seq > before),
    )
}

/// Clicks `action` on the card of migration `id`, checks the confirmation
/// asks about this migration, accepts it, and returns what the card then
/// reports.
fn click_and_confirm(browser: &browser::Browser, id: i64, action: &str, asks: &str) -> Value {
    let before = click_for_confirmation(browser, id, action, asks);
    confirm_and_read(browser, id, action, before)
}

/// What the chart of migration `id` draws: its scale, every point and every marker.
const CHART: &str = "const svg = document.querySelector('svg[data-chart=\"ID\"]');
    if (!svg) return null;
    const card = svg.closest('details.card');
    return {
      open: card.open,
      scale: {t0: +svg.dataset.t0, t1: +svg.dataset.t1, yMax: +svg.dataset.yMax, left: +svg.dataset.left,
              top: +svg.dataset.top, width: +svg.dataset.plotWidth, height: +svg.dataset.plotHeight},
      series: [...svg.querySelectorAll('g[data-series]')].map((g) => g.dataset.series),
      points: [...svg.querySelectorAll('circle')].map((c) => ({series: c.dataset.series, at: c.dataset.at,
              value: +c.dataset.value, cx: +c.getAttribute('cx'), cy: +c.getAttribute('cy')})),
      markers: [...svg.querySelectorAll('g[data-marker]')].map((g) => ({kind: g.dataset.marker, at: g.dataset.at,
              x: +g.querySelector('line').getAttribute('x1')})),
    };";

/// Milliseconds since the epoch of an RFC 3339 time.
fn millis(text: &str) -> f64 {
    let at: jiff::Timestamp = text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"));
    at.as_millisecond() as f64
}

#[test]
fn clicks_steer_a_migration_and_the_chart_draws_what_was_observed() {
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
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\napprove = \"before_switch\"\n\
         [[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 1\n[schedule]\nswitch_at = \"earliest\"\nmargin = 2\nobserve = \"300s\"\n\
         [verify]\nauthorities = [\"{}\"]\nresolvers = [\"{}\"]\ntries = 5\ninterval = 1\n",
        site.dns, unbound.addr
    );
    let id = start_migration(&site, &text);

    let browser = browser::Browser::start(site.dir.path());
    let admin_url = format!("{}#token={}", site.url("/"), site.admin);
    browser.open(&admin_url);

    // Pause, confirmed: the card says what the API answered, and the API agrees.
    let paused = click_and_confirm(&browser, id, "pause", "Pause");
    assert_eq!(
        (&paused["ok"], &paused["state"]),
        (&json!("true"), &json!("paused")),
        "expected the card to report the API's answer: paused, seen {paused}"
    );
    assert_eq!(
        summary(&site, id)["state"],
        "paused",
        "expected the API to report it paused"
    );
    // A refusal is shown as the API said it: Resume clicked, and resumed
    // through the API while the confirmation is open.
    let before = click_for_confirmation(&browser, id, "resume", "Resume");
    let (status, elsewhere) = site.call(
        "POST",
        &format!("/api/v1/migrations/{id}/resume"),
        Some(&site.admin),
        None,
    );
    assert_eq!(
        status, 200,
        "expected the resume through the API, seen {elsewhere}"
    );
    let refused = confirm_and_read(&browser, id, "resume", before);
    let text = refused["text"].as_str().unwrap_or_default();
    assert!(
        refused["ok"] == "false"
            && text.starts_with(&format!("Resume refused (422): migration {id} is "))
            && text.ends_with(": cannot resume"),
        "expected the card to show the API's refusal and nothing done, seen {refused}"
    );
    let paused = click_and_confirm(&browser, id, "pause", "Pause");
    assert_eq!(
        paused["state"], "paused",
        "expected paused again, seen {paused}"
    );
    let resumed = click_and_confirm(&browser, id, "resume", "Resume");
    assert_eq!(
        resumed["ok"], "true",
        "expected the resume taken, seen {resumed}"
    );
    assert_ne!(
        summary(&site, id)["state"],
        "paused",
        "expected the API to report it going on"
    );

    // At the gate before the switch: Approve, recorded with the token's name.
    wait_state(&site, id, "awaiting_approval", Duration::from_secs(30));
    let approved = click_and_confirm(&browser, id, "approve", "Approve");
    assert_eq!(
        approved["ok"], "true",
        "expected the approval taken, seen {approved}"
    );
    assert!(
        events(&site, id)
            .iter()
            .any(|e| e["kind"] == "approval" && e["by"] == "ops"),
        "expected an approval by ops among the events, seen {:?}",
        events(&site, id)
    );
    wait_state(&site, id, "observing", Duration::from_secs(40));

    // While it runs: the matrix first on the page, each step's evidence under it.
    let top = browser.wait_for(
        "the matrix at the top and the verification's evidence",
        Duration::from_secs(20),
        &format!(
            "const first = document.querySelector('main > section:not([hidden])');
             const lines = [...document.querySelectorAll('[data-migration=\"{id}\"] [data-evidence=\"verify_switch\"] li')].map((li) => li.textContent);
             return {{first: first && first.id, lines}};"
        ),
        |v| v["lines"].as_array().is_some_and(|l| !l.is_empty()),
    );
    assert_eq!(
        top["first"], "matrix-section",
        "expected the propagation matrix first while a migration runs, seen {top}"
    );
    assert!(
        top["lines"].as_array().is_some_and(|lines| lines
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("127.0.0.3")))),
        "expected the verification's evidence to name the new address, seen {top}"
    );

    // A read token: the same page, no button.
    browser.open("about:blank");
    browser.open(&format!("{}#token={}", site.url("/"), site.reader));
    let read = browser.wait_for(
        "the page as the read token sees it",
        Duration::from_secs(20),
        &format!(
            "return {{who: document.getElementById('who').textContent,
                      card: !!document.querySelector('[data-migration=\"{id}\"] .timeline'),
                      buttons: [...document.querySelectorAll('#migrations button')].map((b) => b.textContent)}};"
        ),
        |v| v["who"] == "viewer (read)" && v["card"] == true,
    );
    assert_eq!(
        read["buttons"],
        json!([]),
        "expected no button for a read token, seen {read}"
    );
    browser.open("about:blank");
    browser.open(&admin_url);

    // Roll back, confirmed: rolling back, then rolled back.
    let rolled = click_and_confirm(&browser, id, "rollback", "Roll back");
    assert_eq!(
        (&rolled["ok"], &rolled["state"]),
        (&json!("true"), &json!("rolling_back")),
        "expected the card to report the API's answer: rolling back, seen {rolled}"
    );
    wait_state(&site, id, "rolled_back", Duration::from_secs(30));

    // The chart, from what the API serves (rolled back: the watch has stopped,
    // the observations no longer change).
    let (status, observed) = site.call(
        "GET",
        &format!("/api/v1/migrations/{id}/observations"),
        Some(&site.reader),
        None,
    );
    assert_eq!(status, 200, "expected the observations, seen {observed}");
    let rows = observed["observations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let count = |side: &str, field: &str| -> Vec<u64> {
        rows.iter()
            .map(|r| r[side][field].as_u64().unwrap_or(0))
            .collect()
    };
    assert!(
        count("authorities", "old").contains(&1) && count("authorities", "new").contains(&1),
        "expected the authority seen on the old values and on the new, seen {observed}"
    );
    assert!(
        count("resolvers", "new").contains(&1),
        "expected the resolver seen on the new values, seen {observed}"
    );
    // The points the stored observations make: where each run began and ended.
    let expected = |rows: &[Value]| -> Vec<(String, String, u64)> {
        let mut points = Vec::new();
        for row in rows {
            for (series, side, field) in [
                ("authorities-old", "authorities", "old"),
                ("authorities-new", "authorities", "new"),
                ("resolvers-old", "resolvers", "old"),
                ("resolvers-new", "resolvers", "new"),
            ] {
                let value = row[side][field].as_u64().unwrap_or(0);
                for at in [&row["at"], &row["last_at"]] {
                    let point = (
                        series.to_owned(),
                        at.as_str().unwrap_or_default().to_owned(),
                        value,
                    );
                    if !points.contains(&point) {
                        points.push(point);
                    }
                }
            }
        }
        points.sort();
        points
    };
    let drawn = |chart: &Value| -> Vec<(String, String, u64)> {
        let mut points: Vec<(String, String, u64)> = chart["points"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["series"].as_str().unwrap_or_default().to_owned(),
                    p["at"].as_str().unwrap_or_default().to_owned(),
                    p["value"].as_u64().unwrap_or(u64::MAX),
                )
            })
            .collect();
        points.sort();
        points
    };
    // The page redraws every 2 s: poll until it draws what the API serves now.
    let deadline = Instant::now() + Duration::from_secs(20);
    let chart = loop {
        let chart = browser.eval(&CHART.replace("ID", &id.to_string()), json!([]));
        let (_, now) = site.call(
            "GET",
            &format!("/api/v1/migrations/{id}/observations"),
            Some(&site.reader),
            None,
        );
        let rows = now["observations"].as_array().cloned().unwrap_or_default();
        let marked = chart["markers"].as_array().is_some_and(|m| m.len() == 2);
        if drawn(&chart) == expected(&rows) && marked {
            break chart;
        }
        assert!(
            Instant::now() < deadline,
            "expected the chart to draw every stored observation and 2 markers within 20 s;\n\
             API points: {:?}\ndrawn points: {:?}\nchart: {chart}",
            expected(&rows),
            drawn(&chart)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        chart["series"],
        json!([
            "authorities-old",
            "authorities-new",
            "resolvers-old",
            "resolvers-new"
        ]),
        "expected the four series, seen {chart}"
    );
    // Every point where the scale puts its time and count.
    let scale = &chart["scale"];
    let f = |key: &str| scale[key].as_f64().unwrap_or(f64::NAN);
    for point in chart["points"].as_array().into_iter().flatten() {
        let x = f("left")
            + (millis(point["at"].as_str().unwrap_or_default()) - f("t0")) / (f("t1") - f("t0"))
                * f("width");
        let y = f("top")
            + (1.0 - point["value"].as_f64().unwrap_or(f64::NAN) / f("yMax")) * f("height");
        assert!(
            (point["cx"].as_f64().unwrap_or(f64::NAN) - x).abs() < 0.02
                && (point["cy"].as_f64().unwrap_or(f64::NAN) - y).abs() < 0.02,
            "expected {point} at ({x:.2}, {y:.2}) on the scale {scale}"
        );
    }
    // The switch and the rollback where the events put them.
    let history = events(&site, id);
    for (kind, steps) in [
        ("switch", &["switch"][..]),
        ("rollback", &["revert", "restore_original"][..]),
    ] {
        let at = history
            .iter()
            .find(|e| {
                e["kind"] == "step"
                    && steps.contains(&e["step"].as_str().unwrap_or_default())
                    && e["outcome"] == "done"
            })
            .and_then(|e| e["at"].as_str())
            .unwrap_or_else(|| panic!("expected a {kind} in the events, seen {history:?}"));
        let marker = chart["markers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["kind"] == kind)
            .unwrap_or_else(|| panic!("expected a {kind} marker, seen {chart}"));
        let x = f("left") + (millis(at) - f("t0")) / (f("t1") - f("t0")) * f("width");
        assert!(
            marker["at"] == at && (marker["x"].as_f64().unwrap_or(f64::NAN) - x).abs() < 0.02,
            "expected the {kind} marker at {at} (x {x:.2}), seen {marker}"
        );
    }
    // Finished: folded until a person opens it.
    assert_eq!(
        chart["open"], false,
        "expected the rolled-back migration folded, seen {chart}"
    );
    browser.click(&format!("[data-migration=\"{id}\"] > summary"));
    browser.wait_for(
        "the card opened by a click",
        Duration::from_secs(10),
        &format!("return document.querySelector('[data-migration=\"{id}\"]').open;"),
        |v| v == &Value::Bool(true),
    );
    browser.eval(
        &format!("document.querySelector('svg[data-chart=\"{id}\"]').scrollIntoView({{block: 'center'}});"),
        json!([]),
    );
    let shot = artifacts().join("dashboard-chart.png");
    let size = browser.screenshot(&shot);
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && size > 20_000,
        "expected a PNG screenshot, seen {size} bytes"
    );
}
