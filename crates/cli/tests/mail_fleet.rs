//! Two cutover relays of one domain (MX 10 and MX 20), each its own
//! `cutover serve` with its own spool: the migration runs on mx1, whose
//! `[[relay]]` names mx2's control plane; its mail steps hold, retarget and
//! release on both, and wait until both acknowledged.
//!
//! ```text
//!  client ──SMTP──▶ mx1 serve ([mail], scheduler, [[relay]] mx2) ──▶ 127.0.0.2:P (old, down)
//!  client ──SMTP──▶ mx2 serve ([mail], [http]) ───────────────────▶ 127.0.0.2:P (old, down)
//!                   mx1's migration: switch → hold + retarget on mx1 (local) and mx2 (HTTP)
//!                                    verify_switch → release on both ──▶ 127.0.0.1:S (smtp-sink)
//!  with a kill: mx2 SIGKILLed after its mail is queued, before the switch: the switch's
//!  mail actions and verify_switch fail naming mx2 and are retried; mx2 restarted on its
//!  spool; verify_switch retargets and releases on both: every message once at the sink.
//! ```

mod mail_support;
#[allow(unused_imports)]
mod migration;

use std::time::{Duration, Instant};

use mail_support::{arrivals, send, sink, wait_listening};
use migration::{
    arg, cutover, ok, show, start, status, wait_state, Reservation, Site, LOOPBACK, OLD,
};

/// The zone: MX 10 mx1 and MX 20 mx2 (both cutover relays), and the mail
/// host moving from the old address; TTL 5, so the switch comes about 6 s
/// after the start.
fn zone_text() -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 3600\n\
         @ IN SOA ns1 hostmaster 2026112601 3600 600 1209600 5\n\
         @ IN NS ns1\n\
         @ 5 IN MX 10 mx1\n\
         @ 5 IN MX 20 mx2\n\
         ns1 IN A 127.0.0.1\n\
         mx1 IN A 127.0.0.1\n\
         mx2 IN A 127.0.0.1\n\
         mail 5 IN A {OLD}\n"
    )
}

/// A store with the zone, in a fresh folder.
fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a tempdir");
    let store = dir.path().join("cutover.db");
    let file = dir.path().join("example.test.zone");
    std::fs::write(&file, zone_text()).unwrap();
    ok(
        "zone import",
        cutover(
            &[
                "--store",
                &arg(&store),
                "zone",
                "import",
                &arg(&file),
                "--origin",
                "example.test.",
            ],
            &[],
        ),
    );
    (dir, store)
}

/// The `[mail]` section of a relay named `hostname` on `smtp`, delivering
/// example.test to the old server.
fn mail_section(hostname: &str, smtp: u16, spool: &std::path::Path, old_port: u16) -> String {
    format!(
        "[mail]\nlisten = [\"127.0.0.1:{smtp}\"]\nhostname = \"{hostname}\"\n\
         spool = {spool:?}\nfirst_retry = \"200ms\"\nmax_retry = \"500ms\"\n\
         connect_timeout = \"2s\"\n\
         [[mail.domain]]\nname = \"example.test\"\n\
         destination = \"{OLD}:{old_port}\"\nrecipients = [\"@example.test\"]\n"
    )
}

/// The two relays: mx2 (a relay with `[http]` and an admin token), and
/// mx1 (a relay whose config names mx2 in `[[relay]]`, and which runs the
/// migration); with their SMTP ports and mx2's API address.
struct Fleet {
    /// mx1: the migration runs here.
    mx1: Site,
    /// mx1's SMTP port.
    smtp1: u16,
    /// mx2: only a relay, steered through its API.
    mx2: Site,
    /// mx2's SMTP port.
    smtp2: u16,
    /// mx2's control plane.
    api2: String,
}

/// Writes both configs; every port is held until its serve starts.
fn fleet(old_port: u16) -> Fleet {
    let (dir2, store2) = store();
    let token = ok(
        "token create",
        cutover(
            &[
                "--store",
                &arg(&store2),
                "token",
                "create",
                "mx1",
                "--scope",
                "admin",
            ],
            &[],
        ),
    )
    .trim()
    .to_owned();
    let smtp2 = Reservation::new(&[LOOPBACK]);
    let http2 = Reservation::new(&[LOOPBACK]);
    let (smtp2_port, http2_port) = (smtp2.port, http2.port);
    let spool2 = dir2.path().join("spool");
    let store2_arg = arg(&store2);
    let mut mx2 = Site::from_store(dir2, store2, |addr| {
        format!(
            "store = {store2_arg:?}\n[dns]\nlisten = [\"{addr}\"]\nudp_workers = 1\n\
             [http]\nlisten = \"127.0.0.1:{http2_port}\"\n{}",
            mail_section("mx2.example.test", smtp2_port, &spool2, old_port)
        )
    });
    mx2.hold_until_serve(smtp2);
    mx2.hold_until_serve(http2);
    let api2 = format!("http://127.0.0.1:{http2_port}");

    let (dir1, store1) = store();
    let token_file = dir1.path().join("mx2.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let smtp1 = Reservation::new(&[LOOPBACK]);
    let smtp1_port = smtp1.port;
    let spool1 = dir1.path().join("spool");
    let store1_arg = arg(&store1);
    let mut mx1 = Site::from_store(dir1, store1, |addr| {
        format!(
            "store = {store1_arg:?}\n[dns]\nlisten = [\"{addr}\"]\nudp_workers = 1\n{}\
             [[relay]]\nname = \"mx2\"\nurl = \"{api2}\"\ntoken_file = {token_file:?}\n",
            mail_section("mx1.example.test", smtp1_port, &spool1, old_port)
        )
    });
    mx1.hold_until_serve(smtp1);
    Fleet {
        mx1,
        smtp1: smtp1_port,
        mx2,
        smtp2: smtp2_port,
        api2,
    }
}

/// The migration: mail.example.test from old to new; the mail moving from
/// the old server to the sink.
fn migration_text(authority: std::net::SocketAddr, old_port: u16, sink_port: u16) -> String {
    format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n\
         [[move]]\nfrom = \"{OLD}\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 2\n\
         [schedule]\nobserve = \"2s\"\nmargin = \"1s\"\n\
         [verify]\nauthorities = [\"{authority}\"]\nresolvers = [\"{authority}\"]\n\
         tries = 3\ninterval = \"1s\"\n\
         [mail]\ndomain = \"example.test\"\nfrom = \"{OLD}:{old_port}\"\nto = \"127.0.0.1:{sink_port}\"\n"
    )
}

/// A relay's queue (`cutover mail queue --json` with its config).
fn queue(site: &Site) -> Vec<serde_json::Value> {
    let text = ok("mail queue", site.run(&["mail", "queue", "--json"], &[]));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON {text:?}: {e}"))
}

/// The migration's step rows of `kind`.
fn steps(site: &Site, id: i64, kind: &str) -> Vec<serde_json::Value> {
    show(site, id)["migration"]["steps"]
        .as_array()
        .expect("show --json has migration.steps")
        .iter()
        .filter(|step| step["kind"] == kind)
        .cloned()
        .collect()
}

/// Polls `done` every 50 ms for up to `limit`; panics with `what` and the logs.
fn wait(fleet: &Fleet, limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out ({limit:?}) waiting for {what}\nmx1 log:\n{}\nmx2 log:\n{}",
            fleet.mx1.log(),
            fleet.mx2.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mail queued on both relays during a migration; with `kill`, mx2 is
/// killed (SIGKILL) once its mail is queued and started again on its spool
/// once the migration's mail step has failed naming it. Every message
/// arrives exactly once at the new server.
fn two_relays(kill: bool) {
    // The old mail server's port, held (refusing) throughout.
    let old = Reservation::new(&[OLD.octets()]);
    let fleet = fleet(old.port);
    let mut mx2_serve = Some(fleet.mx2.serve(&[]));
    wait_listening(fleet.smtp2, "mx2's relay");
    let _mx1_serve = fleet.mx1.serve(&[]);
    wait_listening(fleet.smtp1, "mx1's relay");
    let (_sink, dump, sink_port) = sink(fleet.mx1.dir.path());
    let file = fleet
        .mx1
        .migration_file(&migration_text(fleet.mx1.addr, old.port, sink_port));
    let id = start(&fleet.mx1, &file);

    let mut sent = Vec::new();
    for number in 0..10 {
        let (port, relay) = if number % 2 == 0 {
            (fleet.smtp1, "mx1")
        } else {
            (fleet.smtp2, "mx2")
        };
        let subject = format!("{relay}-{number:02}");
        send(port, "alice@example.test", &subject);
        sent.push(subject);
    }
    let (queued1, queued2) = (queue(&fleet.mx1), queue(&fleet.mx2));
    assert!(
        queued1.len() == 5 && queued2.len() == 5,
        "expected 5 messages queued on each relay, saw mx1 {queued1:#?}\nmx2 {queued2:#?}"
    );
    assert!(
        steps(&fleet.mx1, id, "switch").is_empty(),
        "the mail must be queued before the switch; mx1 log:\n{}",
        fleet.mx1.log()
    );

    if kill {
        let mut serve = mx2_serve.take().expect("mx2 runs");
        // Child::kill is SIGKILL: no shutdown, the spool as the kill left it.
        serve.child.kill().expect("SIGKILL mx2");
        let died = serve.child.wait().expect("mx2 reaped");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&died),
            Some(9),
            "mx2 died of SIGKILL"
        );
        drop(serve);
        // The switch happens (the records move on time), but its mail
        // actions say mx2 did not acknowledge; verify_switch then retries,
        // naming mx2, and releases nothing anywhere.
        let mut retried = String::new();
        wait(
            &fleet,
            Duration::from_secs(40),
            "verify_switch retrying on mx2",
            || {
                let found = steps(&fleet.mx1, id, "verify_switch")
                    .into_iter()
                    .find(|step| {
                        step["outcome"] == "retrying"
                            && step["reason"].as_str().is_some_and(|r| r.contains("mx2"))
                    });
                if let Some(step) = found {
                    retried = step["reason"].as_str().unwrap_or_default().to_string();
                }
                !retried.is_empty()
            },
        );
        for said in [
            format!("mx2 ({}) FAILED: unreachable", fleet.api2),
            "mail: retarget example.test failed: 1 of 2 relay(s) did not acknowledge".to_string(),
        ] {
            assert!(
                retried.contains(&said),
                "expected {said:?} in verify_switch's reason: {retried}"
            );
        }
        let switch = steps(&fleet.mx1, id, "switch");
        let switch_mail = switch[0]["evidence"]["mail"].to_string();
        assert!(
            switch_mail.contains(&format!("mx2 ({}) FAILED", fleet.api2))
                && switch_mail.contains(
                    "mx1.example.test (local): example.test held: 5 queued message(s) held"
                ),
            "expected the switch's hold done on mx1 and failed on mx2, saw {switch_mail}"
        );
        let state = status(&fleet.mx1, id);
        assert!(
            state["state"] == "verifying"
                && state["reason"].as_str().is_some_and(|r| r.contains("mx2")),
            "the migration waits for mx2, saying so: {state}"
        );
        let held = queue(&fleet.mx1);
        assert!(
            held.len() == 5 && held.iter().all(|m| m["held"] == true),
            "mx1's mail stays held while mx2 has not acknowledged, saw {held:#?}"
        );
        assert!(
            arrivals(&dump).is_empty(),
            "nothing may be released while a relay has not acknowledged, saw {:?}",
            arrivals(&dump)
        );
        // Asked again every verify.interval (1 s), not in a loop.
        let before = steps(&fleet.mx1, id, "verify_switch").len();
        std::thread::sleep(Duration::from_secs(3));
        let retries = steps(&fleet.mx1, id, "verify_switch");
        assert!(
            retries.len() > before && retries.len() <= before + 4,
            "expected 1 to 4 more verify_switch attempts in 3 s (interval 1 s), saw {} then {}",
            before,
            retries.len()
        );
        // The newest attempt may still be running (no outcome yet); every
        // finished one is retrying.
        let (last, finished) = retries.split_last().expect("attempts");
        assert!(
            finished.iter().all(|s| s["outcome"] == "retrying")
                && (last["outcome"] == "retrying" || last["outcome"].is_null()),
            "every attempt while mx2 is down is retrying (the last may be running): {retries:#?}"
        );
        // mx2 again, on the same spool: its 5 messages are still there.
        let queued = queue(&fleet.mx2);
        assert_eq!(queued.len(), 5, "mx2's spool kept its mail: {queued:#?}");
        mx2_serve = Some(fleet.mx2.serve(&[]));
        wait_listening(fleet.smtp2, "mx2's relay, restarted");
    } else {
        // Between the switch and its verification both relays hold the
        // domain's mail: queued, not delivered.
        wait(&fleet, Duration::from_secs(30), "the switch", || {
            steps(&fleet.mx1, id, "switch")
                .iter()
                .any(|s| s["outcome"] == "done")
        });
        let released = steps(&fleet.mx1, id, "verify_switch")
            .iter()
            .any(|s| s["outcome"] == "done");
        assert!(
            !released,
            "the window between switch and verify_switch was missed"
        );
        for site in [&fleet.mx1, &fleet.mx2] {
            let held = queue(site);
            assert!(
                held.len() == 5 && held.iter().all(|m| m["held"] == true),
                "expected 5 held messages on each relay after the switch, saw {held:#?}"
            );
        }
        let switch_mail = steps(&fleet.mx1, id, "switch")[0]["evidence"]["mail"].to_string();
        for said in [
            "all 2 relay(s) acknowledged: mx1.example.test (local): example.test held: 5 queued message(s) held".to_string(),
            format!("mx2 ({}): example.test held: 5 queued message(s) held", fleet.api2),
            format!("mx2 ({}): example.test now goes to 127.0.0.1:{sink_port}: 0 message(s) due now, 5 held until the release", fleet.api2),
        ] {
            assert!(
                switch_mail.contains(&said),
                "expected {said:?} in the switch's mail evidence: {switch_mail}"
            );
        }
    }

    let summary = wait_state(
        &fleet.mx1,
        id,
        &["done", "failed", "rolled_back"],
        Duration::from_secs(60),
    );
    assert_eq!(
        summary["state"],
        "done",
        "expected the migration done, saw {summary}\nmx1 log:\n{}",
        fleet.mx1.log()
    );
    let verify = steps(&fleet.mx1, id, "verify_switch");
    let last = verify.last().expect("a verify_switch step");
    let mail = last["evidence"]["mail"].to_string();
    for said in [
        "mx1.example.test (local): example.test released: 5 message(s) released".to_string(),
        format!(
            "mx2 ({}): example.test released: {} message(s) released",
            fleet.api2,
            if kill { 0 } else { 5 }
        ),
    ] {
        assert!(
            mail.contains(&said),
            "expected {said:?} in the last verify_switch's mail evidence: {mail}"
        );
    }
    if kill {
        // mx2 never held (it was down at the switch): the retarget made
        // its 5 messages due at once.
        let said = format!(
            "mx2 ({}): example.test now goes to 127.0.0.1:{sink_port}: 5 message(s) due now",
            fleet.api2
        );
        assert!(mail.contains(&said), "expected {said:?} in {mail}");
    }
    wait(&fleet, Duration::from_secs(20), "both queues empty", || {
        queue(&fleet.mx1).is_empty() && queue(&fleet.mx2).is_empty()
    });
    let mut arrived: Vec<String> = arrivals(&dump).into_iter().map(|(_, s)| s).collect();
    arrived.sort();
    sent.sort();
    assert_eq!(
        arrived, sent,
        "expected every message exactly once at the new server"
    );
    drop(mx2_serve);
}

/// Both relays hold at the switch, are retargeted and released: all ten
/// messages (five queued on each) arrive once at the new server.
#[test]
fn both_relays_are_moved_and_every_message_arrives_once() {
    two_relays(false);
}

/// mx2 killed (SIGKILL) with its mail queued, before the switch: the
/// migration's mail step fails naming it and is retried, mx2 restarted on
/// its spool, the step then succeeds; every message arrives once.
#[test]
fn a_relay_killed_mid_move_is_waited_for_and_no_message_is_lost_or_doubled() {
    two_relays(true);
}
