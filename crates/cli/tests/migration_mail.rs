//! A migration file's `[mail]` section carried out by `cutover serve`: the
//! relay's destination for the domain is the old mail server (down), mail
//! sent during the migration is accepted and queued, held at the switch,
//! retargeted to the new server and released once the switch is verified;
//! every message then arrives exactly once at the new server.
//!
//! ```text
//!  client ──SMTP──▶ cutover serve ([mail] relay) ──▶ 127.0.0.2:P (old, nothing listens)
//!                        │  scheduler: migration mail.example.test A old → new
//!                        │    switch: hold, records switched, retarget to 127.0.0.3:P
//!                        │    verify_switch ok: release
//!                        └─────────────────────────▶ 127.0.0.3:P (new, smtp-sink)
//! ```

mod mail_support;
#[allow(unused_imports)]
mod migration;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mail_support::{reply, wait_listening};
use migration::{
    arg, cutover, ok, show, start, status, wait_bound, wait_state, Guard, Reservation, Site,
    Socket, LOOPBACK, NEW, OLD,
};

/// The zone: the mail host on the old address, TTL 5 (so the switch comes
/// about 6 s after the start: time to send mail before it).
fn zone_text() -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 3600\n\
         @ IN SOA ns1 hostmaster 2026112601 3600 600 1209600 5\n\
         @ IN NS ns1\n\
         @ 5 IN MX 10 mail\n\
         ns1 IN A 127.0.0.1\n\
         mail 5 IN A {OLD}\n"
    )
}

/// A site whose config also runs the relay for example.test, delivering to
/// `OLD:mail_port`; returns it with the relay's SMTP port (held, like the
/// nameserver's, until serve starts).
fn site(mail_port: u16) -> (Site, u16) {
    let dir = tempfile::tempdir().expect("a tempdir");
    let store = dir.path().join("cutover.db");
    let file = dir.path().join("example.test.zone");
    std::fs::write(&file, zone_text()).unwrap();
    let (store_arg, file_arg) = (arg(&store), arg(&file));
    ok(
        "zone import",
        cutover(
            &[
                "--store",
                &store_arg,
                "zone",
                "import",
                &file_arg,
                "--origin",
                "example.test.",
            ],
            &[],
        ),
    );
    let relay = Reservation::new(&[LOOPBACK]);
    let smtp = relay.port;
    let spool = dir.path().join("spool");
    let mut site = Site::from_store(dir, store, |addr| {
        format!(
            "store = {store_arg:?}\n[dns]\nlisten = [\"{addr}\"]\nudp_workers = 1\n\
             [mail]\nlisten = [\"127.0.0.1:{smtp}\"]\nhostname = \"mx.relay.test\"\n\
             spool = {spool:?}\nfirst_retry = \"200ms\"\nmax_retry = \"500ms\"\n\
             connect_timeout = \"2s\"\n\
             [[mail.domain]]\nname = \"example.test\"\n\
             destination = \"{OLD}:{mail_port}\"\nrecipients = [\"@example.test\"]\n"
        )
    });
    site.hold_until_serve(relay);
    (site, smtp)
}

/// The migration: mail.example.test from old to new, TTL 2 during, no
/// service checks, verified at cutover itself, the mail moving along.
fn migration_text(authority: SocketAddr, mail_port: u16) -> String {
    format!(
        "version = 1\nzone = \"example.test.\"\nprovider = {{ kind = \"embedded\" }}\n\
         [[move]]\nfrom = \"{OLD}\"\nto = \"{NEW}\"\n\
         [ttl]\nduring = 2\n\
         [schedule]\nobserve = \"2s\"\nmargin = \"1s\"\n\
         [verify]\nauthorities = [\"{authority}\"]\nresolvers = [\"{authority}\"]\n\
         tries = 3\ninterval = \"1s\"\n\
         [mail]\ndomain = \"example.test\"\nfrom = \"{OLD}:{mail_port}\"\nto = \"{NEW}:{mail_port}\"\n"
    )
}

/// Postfix's smtp-sink on `address` (a port the test held until now),
/// dumping each message to a file.
fn sink(directory: &Path, address: SocketAddr) -> (Guard, PathBuf) {
    let dumps = directory.join("sink");
    std::fs::create_dir_all(&dumps).unwrap();
    let mut permissions = std::fs::metadata(&dumps).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o777);
    std::fs::set_permissions(&dumps, permissions).unwrap();
    let dump = dumps.join("dump");
    let log = dumps.join("smtp-sink.log");
    let child = Command::new("/usr/sbin/smtp-sink")
        .args(["-u", "nobody", "-h", "new.test", "-D"])
        .arg(&dump)
        .arg(address.to_string())
        .arg("64")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("smtp-sink runs (package postfix)");
    let mut guard = Guard {
        child,
        what: "smtp-sink",
    };
    if let Err(e) = wait_bound("smtp-sink", &mut guard.child, &[Socket::Tcp(address)], &log) {
        panic!("smtp-sink did not start on {address} (the port the migration names): {e}");
    }
    (guard, dump)
}

/// The subjects in a sink dump, in arrival order.
fn arrivals(dump: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dump).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.strip_prefix("Subject: "))
        .map(str::to_string)
        .collect()
}

/// Sends one message to `to` through the relay at `port`; asserts every reply.
fn send(port: u16, to: &str, subject: &str) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let greeting = reply(&mut reader);
    assert!(greeting.starts_with("220"), "expected 220, saw {greeting}");
    for (line, code) in [
        ("EHLO client.test".to_string(), "250"),
        ("MAIL FROM:<s@ext.test>".to_string(), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_string(), "354"),
        (format!("Subject: {subject}\r\n\r\nbody\r\n."), "250"),
        ("QUIT".to_string(), "221"),
    ] {
        writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        let got = reply(&mut reader);
        assert!(
            got.starts_with(code),
            "{line:?}: expected {code}, saw {got}"
        );
    }
}

/// The relay's queue (`cutover mail queue --json`).
fn queue(site: &Site) -> Vec<serde_json::Value> {
    let text = ok("mail queue", site.run(&["mail", "queue", "--json"], &[]));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON {text:?}: {e}"))
}

/// True when the migration's step of `kind` is done.
fn done(site: &Site, id: i64, kind: &str) -> bool {
    show(site, id)["migration"]["steps"]
        .as_array()
        .expect("show --json has migration.steps")
        .iter()
        .any(|step| step["kind"] == kind && step["outcome"] == "done")
}

/// The step kinds of the migration's audit log.
fn audited(site: &Site, id: i64) -> Vec<String> {
    show(site, id)["audit"]
        .as_array()
        .expect("show --json has an audit array")
        .iter()
        .map(|entry| entry.to_string())
        .collect()
}

/// Mail sent during a migration with `[mail]` is held through the switch,
/// retargeted to the new server and released once verified: it arrives
/// there exactly once, and the migration's record says so.
#[test]
fn a_migration_moves_the_mail_with_the_records() {
    // One port on both mail servers' addresses, held: the old one stays
    // down (held, refusing) throughout, the new one is let go for smtp-sink.
    let mail = Reservation::new(&[OLD.octets(), NEW.octets()]);
    let mail_port = mail.port;
    let (site, smtp) = site(mail_port);
    let _serve = site.serve(&[]);
    wait_listening(smtp, "the mail relay of cutover serve");
    mail.release_on(NEW.octets());
    let (_sink, dump) = sink(site.dir.path(), mail.on(NEW.octets()));
    let file = site.migration_file(&migration_text(site.addr, mail_port));
    // The plan says what the relay will be told, in words (issue "every
    // word true", 9: the mail steps were only in --json).
    let plan = ok("migrate plan", site.run(&["migrate", "plan", &file], &[]));
    for said in [
        &format!("mail: hold example.test's mail in the relay's queue just before, and send it to {NEW}:{mail_port}"),
        &format!("mail: once verified, release example.test's held mail to {NEW}:{mail_port}"),
    ] {
        assert!(
            plan.contains(said.as_str()),
            "expected {said:?} in the plan:\n{plan}"
        );
    }
    let id = start(&site, &file);

    let mut sent = Vec::new();
    for number in 0..10 {
        let to = if number % 2 == 0 {
            "alice@example.test"
        } else {
            "bob@example.test"
        };
        let subject = format!("during-{number:02}");
        send(smtp, to, &subject);
        sent.push(subject);
    }
    let queued = queue(&site);
    assert_eq!(
        queued.len(),
        10,
        "expected the 10 messages queued, saw {queued:#?}"
    );
    // The switch comes after the TTL (5 s) and the margin (1 s): before it,
    // the old server is the destination and it is down.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let queued = queue(&site);
        let refused = queued.iter().all(|message| {
            let recipient = &message["recipients"][0];
            recipient["state"] == "deferred"
                && recipient["last_error"]
                    .as_str()
                    .is_some_and(|error| error.contains("connect"))
        });
        if refused {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected every message deferred by the old server's refusal, saw {queued:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = audited(&site, id);
    assert!(
        !before.iter().any(|entry| entry.contains("switch")),
        "the messages must be sent before the switch; audit already: {before:?}\nserve log:\n{}",
        site.log()
    );
    assert!(
        arrivals(&dump).is_empty(),
        "nothing may reach the new server before the switch, saw {:?}",
        arrivals(&dump)
    );

    // Between the switch and its verification (the low TTL, 2 s) the
    // domain is held: queued, retargeted to the new server, not delivered.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if done(&site, id, "switch") {
            let seen = arrivals(&dump);
            let held = queue(&site);
            if done(&site, id, "verify_switch") {
                panic!(
                    "the window between switch and verify_switch was missed; serve log:\n{}",
                    site.log()
                );
            }
            assert!(
                seen.is_empty(),
                "held mail must not reach the new server before the release, saw {seen:?}"
            );
            assert!(
                held.len() == 10 && held.iter().all(|message| message["held"] == true),
                "expected the 10 messages held after the switch, saw {held:#?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the switch did not come within 20 s; serve log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let summary = wait_state(
        &site,
        id,
        &["done", "failed", "rolled_back"],
        Duration::from_secs(40),
    );
    assert_eq!(
        summary["state"],
        "done",
        "expected the migration done, saw {summary}\nserve log:\n{}",
        site.log()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !queue(&site).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the queue did not empty after the migration: {:#?}\nserve log:\n{}",
            queue(&site),
            site.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut arrived = arrivals(&dump);
    arrived.sort();
    assert_eq!(
        arrived, sent,
        "expected every message exactly once at the new server"
    );

    let detail = show(&site, id).to_string();
    for word in ["\"hold\"", "\"retarget\"", "\"release\""] {
        assert!(
            detail.contains(word),
            "expected {word} in the migration's record, saw {detail}"
        );
    }
    // The counts in the evidence are what happened: the 10 queued messages
    // held at the switch, none due at the retarget (held), 10 released.
    for words in [
        "example.test held: 10 queued message(s) held".to_string(),
        format!("now goes to {NEW}:{mail_port}: 0 message(s) due now, 10 held until the release"),
        "example.test released: 10 message(s) released".to_string(),
    ] {
        assert!(
            detail.contains(&words),
            "expected {words:?} in the migration's record, saw {detail}"
        );
    }
    let last = status(&site, id);
    assert_eq!(last["state"], "done", "status agrees: {last}");
    // `show` says in text what the relay was told and what it answered.
    let shown = ok(
        "migrate show",
        site.run(&["migrate", "show", &id.to_string()], &[]),
    );
    for said in [
        "mail hold example.test: ".to_string(),
        format!("mail retarget example.test to {NEW}:{mail_port}: "),
        "mail release example.test: ".to_string(),
        "mail: hold example.test's mail".to_string(),
    ] {
        assert!(
            shown.contains(&said),
            "expected {said:?} in migrate show:\n{shown}"
        );
    }
    assert!(
        !shown.contains("FAILED") && !shown.contains("\"Ok\""),
        "expected every mail action to have worked, in words:\n{shown}"
    );
}
