//! The mail controls' counts are what happened (the truthfulness review:
//! `hold --domain D` printed "0 message(s) held" while all of D's mail
//! became held; `release` after a retarget printed "0 released" while all
//! was sent; `retarget` said "199 due now" while none was sent). Three
//! domains, each moved a different way, with a real queue:
//!
//! ```text
//!  ourdom.test (6)  CLI on a running serve:  hold → retarget (holds kept) → release
//!  other.test  (4)  the API on the same serve: hold → retarget → release
//!  third.test  (3)  the CLI at rest (no relay): hold → retarget --release → serve again
//! ```
//!
//! Every printed or returned count is compared with the queue and with
//! what smtp-sink received.

mod control;
mod mail_support;

use std::process::Output;
use std::time::Duration;

use control::{ok, Site};
use mail_support::{arrivals, refusing_tcp, send, sink, wait_listening, wait_until, LOOPBACK};
use serde_json::{json, Value};

/// The `[mail]` section: three domains whose destination is down.
fn mail_section(site_dir: &std::path::Path, smtp: u16, dead: u16) -> String {
    let mut text = format!(
        "[mail]\nlisten = [\"127.0.0.1:{smtp}\"]\nhostname = \"mx.relay.test\"\n\
         spool = {spool:?}\nfirst_retry = \"200ms\"\nmax_retry = \"400ms\"\n\
         connect_timeout = \"1s\"\n",
        spool = site_dir.join("spool"),
    );
    for domain in ["ourdom.test", "other.test", "third.test"] {
        text.push_str(&format!(
            "[[mail.domain]]\nname = \"{domain}\"\ndestination = \"127.0.0.1:{dead}\"\n\
             recipients = [\"@{domain}\"]\n"
        ));
    }
    text
}

/// `cutover --config C mail ARGS…`, asserting success; returns stdout.
fn mail(site: &Site, args: &[&str]) -> String {
    let mut all = vec!["mail"];
    all.extend_from_slice(args);
    let output: Output = site.run(&all);
    ok(&format!("cutover mail {args:?}"), output)
}

/// The queue as `cutover mail queue --json` prints it.
fn queue(site: &Site) -> Vec<Value> {
    serde_json::from_str(&mail(site, &["queue", "--json"])).unwrap()
}

/// The queued messages with a recipient in `domain`.
fn of(queue: &[Value], domain: &str) -> Vec<Value> {
    queue
        .iter()
        .filter(|message| {
            message["recipients"]
                .as_array()
                .unwrap()
                .iter()
                .any(|recipient| {
                    recipient["address"]
                        .as_str()
                        .unwrap()
                        .ends_with(&format!("@{domain}"))
                })
        })
        .cloned()
        .collect()
}

/// The first line of `text` that starts with a number followed by `what`,
/// as that number (None when there is no such line).
fn count(text: &str, what: &str) -> Option<usize> {
    text.lines().find_map(|line| {
        let (number, rest) = line.split_once(' ')?;
        rest.starts_with(what).then(|| number.parse().ok())?
    })
}

/// The arrivals at the sink for `domain`.
fn arrived(dump: &std::path::Path, domain: &str) -> usize {
    arrivals(dump)
        .iter()
        .filter(|(to, _)| to.ends_with(&format!("@{domain}")))
        .count()
}

#[test]
fn every_count_printed_or_returned_is_what_happened() {
    // The destination is down: a port the test holds without listening.
    let (_dead, dead) = refusing_tcp(LOOPBACK);
    let scratch = tempfile::tempdir().unwrap();
    let mut smtp = 0;
    let mut site = Site::start_picking(|ports| {
        smtp = ports.pick(&[LOOPBACK]);
        mail_section(scratch.path(), smtp, dead.port())
    });
    wait_listening(smtp, "the relay of cutover serve");
    let (_sink, dump, sink_port) = sink(scratch.path());
    let new = format!("127.0.0.1:{sink_port}");
    for (domain, messages) in [("ourdom.test", 6), ("other.test", 4), ("third.test", 3)] {
        for number in 0..messages {
            send(
                smtp,
                &format!("user{number}@{domain}"),
                &format!("{domain} {number}"),
            );
        }
    }
    wait_until("13 messages deferred by the dead destination", || {
        let queue = queue(&site);
        queue.len() == 13
            && queue
                .iter()
                .all(|message| message["recipients"][0]["attempts"].as_u64() >= Some(1))
    });

    // ourdom.test through the CLI, relay running.
    let held = mail(&site, &["hold", "--domain", "ourdom.test"]);
    assert_eq!(count(&held, "message(s) held"), Some(6), "{held}");
    let now = queue(&site);
    assert_eq!(
        of(&now, "ourdom.test")
            .iter()
            .filter(|message| message["held"] == true)
            .count(),
        6,
        "the queue agrees"
    );
    assert_eq!(
        now.iter().filter(|message| message["held"] == true).count(),
        6,
        "nothing else held"
    );
    let again = mail(&site, &["hold", "--domain", "ourdom.test"]);
    assert_eq!(
        count(&again, "message(s) held"),
        Some(0),
        "held already: {again}"
    );
    let retarget = mail(&site, &["retarget", "ourdom.test", &new]);
    assert_eq!(
        count(&retarget, "message(s) due now"),
        Some(0),
        "{retarget}"
    );
    assert_eq!(
        count(&retarget, "message(s) held: they stay held"),
        Some(6),
        "{retarget}"
    );
    assert!(
        retarget.contains("cutover mail release --domain ourdom.test"),
        "{retarget}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(arrived(&dump, "ourdom.test"), 0, "0 due: nothing sent");
    let released = mail(&site, &["release", "--domain", "ourdom.test"]);
    assert_eq!(
        count(&released, "message(s) released"),
        Some(6),
        "{released}"
    );
    wait_until("the 6 released messages at the sink", || {
        arrived(&dump, "ourdom.test") == 6
    });

    // other.test through the API, same relay.
    let admin = Some(site.admin.as_str());
    let (status, held) = site.call(
        "POST",
        "/api/v1/mail/hold",
        admin,
        Some(r#"{"domain":"other.test"}"#),
    );
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["changed"].as_array().unwrap().len(), 4, "{held}");
    let (status, retargeted) = site.call(
        "POST",
        "/api/v1/mail/retarget",
        admin,
        Some(&json!({"domain": "other.test", "destination": new}).to_string()),
    );
    assert_eq!(status, 200, "{retargeted}");
    assert_eq!(retargeted["changed"], json!([]), "none due: {retargeted}");
    assert_eq!(
        retargeted["held"].as_array().unwrap().len(),
        4,
        "{retargeted}"
    );
    assert_eq!(retargeted["released"], json!([]), "{retargeted}");
    let (status, contradiction) = site.call(
        "POST",
        "/api/v1/mail/retarget",
        admin,
        Some(
            &json!({"domain": "other.test", "destination": new, "release": true, "keep_held": true})
                .to_string(),
        ),
    );
    assert_eq!(status, 400, "release and keep_held both: {contradiction}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(arrived(&dump, "other.test"), 0, "held: nothing sent");
    let (status, released) = site.call(
        "POST",
        "/api/v1/mail/release",
        admin,
        Some(r#"{"domain":"other.test"}"#),
    );
    assert_eq!(status, 200, "{released}");
    assert_eq!(
        released["changed"].as_array().unwrap().len(),
        4,
        "{released}"
    );
    wait_until("the 4 released messages at the sink", || {
        arrived(&dump, "other.test") == 4
    });
    let (status, flushed) = site.call(
        "POST",
        "/api/v1/mail/flush",
        admin,
        Some(r#"{"domain":"third.test"}"#),
    );
    assert_eq!(status, 200, "{flushed}");
    assert_eq!(
        flushed["changed"].as_array().unwrap().len(),
        3,
        "third.test's 3 deferred messages due now: {flushed}"
    );

    // third.test through the CLI at rest: no relay runs.
    site.serve = None;
    let held = mail(&site, &["hold", "--domain", "third.test"]);
    assert_eq!(count(&held, "message(s) held"), Some(3), "{held}");
    let retarget = mail(&site, &["retarget", "third.test", &new, "--release"]);
    assert_eq!(
        count(&retarget, "message(s) released"),
        Some(3),
        "{retarget}"
    );
    assert_eq!(
        count(&retarget, "message(s) due now"),
        Some(3),
        "{retarget}"
    );
    assert!(
        !retarget.contains("they stay held"),
        "--release leaves nothing held: {retarget}"
    );
    assert!(
        retarget.contains("no relay is running")
            && retarget.contains("nothing is sent until it starts"),
        "at rest it says so: {retarget}"
    );
    let at_rest = queue(&site);
    assert_eq!(at_rest.len(), 3, "{at_rest:#?}");
    assert!(
        at_rest.iter().all(|message| message["held"] == false
            && message["recipients"][0]["destination"] == new.as_str()),
        "released and retargeted at rest: {at_rest:#?}"
    );
    site.serve_again();
    wait_listening(smtp, "the relay of cutover serve, again");
    wait_until("the 3 messages released at rest at the sink", || {
        arrived(&dump, "third.test") == 3
    });
    wait_until("an empty queue", || queue(&site).is_empty());
    assert_eq!(arrivals(&dump).len(), 13, "each message exactly once");
}
