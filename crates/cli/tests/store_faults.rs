//! A store that is not as cutover left it: on a read-only filesystem (a
//! real read-only bind mount in a mount namespace of its own), and changed
//! by hand with SQL (an A record with 2-byte RDATA, a zone whose SOA was
//! deleted). Reading commands must work or say precisely why not, `serve`
//! must say what it needs, and a broken zone must never be served.

mod primary_support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use primary_support::*;
use rusqlite::{params, Connection};

/// Runs the cutover binary with `args` in a mount namespace of its own in
/// which `dir` is bind-mounted read-only (needs root, as the tests run).
fn in_read_only(dir: &Path, args: &[&str]) -> Output {
    let script =
        r#"mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@""#;
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(dir)
        .arg(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("unshare (util-linux) runs");
    let said = text(&out.stderr);
    assert!(
        !said.contains("mount:") && !said.contains("unshare:"),
        "the read-only mount could not be made: {said}"
    );
    out
}

/// Everything a command printed.
fn said(out: &Output) -> String {
    text(&out.stdout) + &text(&out.stderr)
}

/// Regression: on a read-only filesystem every command failed with
/// "unable to open database file" and no hint.
#[test]
fn a_store_on_a_read_only_filesystem_can_be_read_and_says_why_it_cannot_be_written() {
    let scratch = Scratch::with_zone(3);
    let dir = scratch.dir.path();
    let store = scratch.path("cutover.db");
    let store = store.to_str().unwrap();
    assert!(
        !scratch.path("cutover.db-wal").exists(),
        "the last connection closed cleanly, leaving no -wal"
    );

    let list = in_read_only(dir, &["--store", store, "zone", "list"]);
    assert!(list.status.success(), "zone list: {}", said(&list));
    assert!(text(&list.stdout).contains(ORIGIN), "{}", said(&list));
    let export = in_read_only(dir, &["--store", store, "zone", "export", ORIGIN]);
    assert!(export.status.success(), "zone export: {}", said(&export));
    assert!(
        text(&export.stdout).contains("h2.example.com."),
        "{}",
        said(&export)
    );

    let add = in_read_only(
        dir,
        &[
            "--store",
            store,
            "record",
            "add",
            ORIGIN,
            "new",
            "A",
            "192.0.2.99",
        ],
    );
    assert!(
        !add.status.success(),
        "a write on a read-only store succeeded"
    );
    let why = said(&add);
    assert!(
        why.contains("can only be read") && why.contains("mounted read-only"),
        "the refusal must say why: {why}"
    );

    // A port held (never listening) by the test: serve must refuse before
    // it binds anything.
    let (_held, held) = cutover_peers::refusing_tcp(LOOPBACK);
    let config = scratch.config(held.port(), "", "");
    let serve = in_read_only(dir, &["--config", config.to_str().unwrap(), "serve"]);
    assert!(
        !serve.status.success(),
        "serve started on a read-only store"
    );
    let why = said(&serve);
    for part in [
        "cutover serve needs to write the store",
        "cutover.db-wal",
        "mounted read-only",
    ] {
        assert!(
            why.contains(part),
            "{part:?} missing from serve's refusal: {why}"
        );
    }
}

/// A store whose `-wal` still holds changes (another process had it open)
/// copied without its `-shm` onto a read-only filesystem: SQLite cannot read
/// those changes there, and the error must say so rather than show the
/// store without them.
#[test]
fn changes_left_in_the_wal_of_a_read_only_store_are_named_not_ignored() {
    let scratch = Scratch::with_zone(3);
    let store = scratch.path("cutover.db");
    // A reader holding a snapshot keeps the CLI's commit from being
    // checkpointed and the -wal from being removed when the CLI exits.
    let holder = Connection::open(&store).unwrap();
    holder
        .execute_batch("BEGIN; SELECT value FROM generation;")
        .unwrap();
    scratch.ok(&["record", "add", ORIGIN, "late", "A", "192.0.2.77"]);
    let wal = scratch.path("cutover.db-wal");
    let pending = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(pending > 0, "the -wal holds the commit");
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(&store, copy.path().join("cutover.db")).unwrap();
    std::fs::copy(&wal, copy.path().join("cutover.db-wal")).unwrap();
    drop(holder);

    let copied = copy.path().join("cutover.db");
    let list = in_read_only(
        copy.path(),
        &[
            "--store",
            copied.to_str().unwrap(),
            "zone",
            "export",
            ORIGIN,
        ],
    );
    let output = said(&list);
    if list.status.success() {
        assert!(
            output.contains("late.example.com."),
            "the store was read without the changes in its -wal:\n{output}"
        );
    } else {
        assert!(
            output.contains("cutover.db-wal holds") && output.contains("bytes of changes"),
            "the error must name the -wal and its changes: {output}"
        );
    }
}

/// The wire form of a name given as labels.
fn wire(labels: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for label in labels {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// Imports a small zone `origin` (labels) into the scratch store.
fn import(scratch: &Scratch, origin: &str) {
    let file = scratch.path(&format!("{origin}zone"));
    std::fs::write(
        &file,
        format!(
            "$ORIGIN {origin}\n$TTL 3600\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n\
             @ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.10\n"
        ),
    )
    .unwrap();
    scratch.ok(&["zone", "import", file.to_str().unwrap(), "--origin", origin]);
}

/// Sets the serial of `zone` (labels) to `serial` by hand: the zone row,
/// the SOA's RDATA, and the generation, as someone with sqlite3 would.
fn bump_serial_by_hand(db: &Connection, zone: &[u8], serial: u32) {
    let id: i64 = db
        .query_row("SELECT id FROM zone WHERE origin = ?1", [zone], |r| {
            r.get(0)
        })
        .unwrap();
    let mut soa: Vec<u8> = db
        .query_row(
            "SELECT rdata FROM record WHERE zone_id = ?1 AND rtype = 6",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    let at = soa.len() - 20;
    soa[at..at + 4].copy_from_slice(&serial.to_be_bytes());
    db.execute(
        "UPDATE record SET rdata = ?2 WHERE zone_id = ?1 AND rtype = 6",
        params![id, soa],
    )
    .unwrap();
    db.execute(
        "UPDATE zone SET serial = ?2 WHERE id = ?1",
        params![id, serial],
    )
    .unwrap();
    db.execute("UPDATE generation SET value = value + 1", [])
        .unwrap();
}

/// Regression: store contents changed by hand were served: an A record
/// with 2-byte RDATA answered as a malformed packet, a zone whose SOA was
/// deleted served with serial 0.
#[test]
fn a_zone_changed_by_hand_into_something_broken_is_not_served() {
    let scratch = Scratch::with_zone(3);
    import(&scratch, "good.test.");
    import(&scratch, "nosoa.test.");
    let db = Connection::open(scratch.path("cutover.db")).unwrap();
    let example = wire(&["example", "com"]);
    let changed = db
        .execute(
            "UPDATE record SET rdata = x'c000' WHERE rtype = 1 AND owner = ?1 \
             AND zone_id = (SELECT id FROM zone WHERE origin = ?2)",
            params![wire(&["ns1", "example", "com"]), example],
        )
        .unwrap();
    assert_eq!(changed, 1, "one A record damaged");
    let deleted = db
        .execute(
            "DELETE FROM record WHERE rtype = 6 AND zone_id = (SELECT id FROM zone WHERE origin = ?1)",
            [wire(&["nosoa", "test"])],
        )
        .unwrap();
    assert_eq!(deleted, 1, "the SOA deleted");

    let serve = Serve::start_free_answering(&scratch.path("serve.log"), "good.test.", |port| {
        scratch.config(port, "", "")
    });
    assert_eq!(
        soa_serial(serve.addr, "good.test."),
        Some(1),
        "the sound zone is served"
    );
    assert_eq!(
        soa_serial(serve.addr, ORIGIN),
        None,
        "the zone with a broken A record is not served"
    );
    assert_eq!(
        soa_serial(serve.addr, "nosoa.test."),
        None,
        "the zone without SOA is not served"
    );
    let www = kdig(serve.addr, &["www.example.com.", "A"]);
    assert!(
        www.contains("REFUSED"),
        "a zone not served is REFUSED:\n{www}"
    );
    let log = serve.log();
    for part in [
        "NOT SERVED",
        "ns1.example.com. A: 2 bytes of RDATA do not decode as A",
        "no SOA record at the apex",
    ] {
        assert!(log.contains(part), "{part:?} missing from the log:\n{log}");
    }

    // While serving: good.test. changed by hand into a broken version with
    // a new serial. The last good version stays served.
    db.execute(
        "INSERT INTO record (zone_id, owner, rtype, ttl, rdata) VALUES \
         ((SELECT id FROM zone WHERE origin = ?1), ?2, 28, 60, x'20010db8')",
        params![wire(&["good", "test"]), wire(&["v6", "good", "test"])],
    )
    .unwrap();
    bump_serial_by_hand(&db, &wire(&["good", "test"]), 2);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !serve.log().contains("still serving serial 1") {
        assert!(
            Instant::now() < deadline,
            "no refusal logged:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        soa_serial(serve.addr, "good.test."),
        Some(1),
        "the last good version is served"
    );
    assert!(
        serve.log().contains("v6.good.test. AAAA: 4 bytes"),
        "{}",
        serve.log()
    );

    // Repaired by hand (the bad record removed, serial 3): served again.
    db.execute("DELETE FROM record WHERE rtype = 28", [])
        .unwrap();
    bump_serial_by_hand(&db, &wire(&["good", "test"]), 3);
    let deadline = Instant::now() + Duration::from_secs(5);
    while soa_serial(serve.addr, "good.test.") != Some(3) {
        assert!(
            Instant::now() < deadline,
            "the repaired version is not served:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
