//! Recipients verified against the destination (no backscatter, also while
//! it is down) and per-domain TLS required for delivery, the relay running
//! in-process against a scripted MX, smtp-sink and a second relay with TLS.

mod common;

use std::time::Duration;

use common::{Client, InProcess, Mailboxes, Sink};
use cutover_mail::server::tls_from_der;
use cutover_mail::{DeliveryState, Destination, Policy, RelayConfig, Schedule};

/// 127.0.0.1:port.
fn destination(port: u16) -> Destination {
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// The reply to RCPT TO:<to> in a fresh transaction.
fn rcpt(port: u16, to: &str) -> String {
    let (mut client, _) = Client::connect(port).unwrap();
    client.command("EHLO client.test").unwrap();
    let mail = client.command("MAIL FROM:<s@ext.test>").unwrap();
    assert!(mail.starts_with("250"), "MAIL refused: {mail}");
    let reply = client.command(&format!("RCPT TO:<{to}>")).unwrap();
    let _ = client.command("QUIT");
    reply
}

/// A relay for ourdom.test, verified against the destination at `port`.
fn verifying(spool: &std::path::Path, port: u16) -> InProcess {
    let mut config = RelayConfig::new(spool, Policy::new("mx.relay.test").verified("ourdom.test"));
    config
        .routes
        .insert("ourdom.test".into(), destination(port));
    config.verify_pause = Duration::from_secs(1);
    InProcess::start(config)
}

/// While the destination is up its answer decides (250 / 550); once it is
/// down, recipients it accepted still get 250, those it refused 550, and
/// those never asked 450; the memory survives a restart of the relay.
#[test]
fn recipients_verified_while_up_remembered_while_down() {
    let directory = tempfile::tempdir().unwrap();
    let spool = directory.path().join("spool");
    let mx = Mailboxes::start(&["alice@ourdom.test", "carol@ourdom.test"]);
    let port = mx.port;
    let relay = verifying(&spool, port);
    let reply = rcpt(relay.port, "alice@ourdom.test");
    assert!(
        reply.starts_with("250"),
        "alice exists at the MX, saw {reply}"
    );
    let reply = rcpt(relay.port, "mallory@ourdom.test");
    assert!(
        reply.starts_with("550 5.1.1"),
        "mallory refused by the MX, saw {reply}"
    );
    let asked = mx.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        ["alice@ourdom.test", "mallory@ourdom.test"],
        "the MX was asked exactly these"
    );
    drop(mx);
    for (to, expected) in [
        ("alice@ourdom.test", "250"),
        ("mallory@ourdom.test", "550 5.1.1"),
        ("carol@ourdom.test", "450 4.1.1"),
        ("outsider@ext.test", "550 5.7.1"),
    ] {
        let reply = rcpt(relay.port, to);
        assert!(
            reply.starts_with(expected),
            "MX down: {to} expected {expected}, saw {reply}"
        );
    }
    drop(relay);
    let relay = verifying(&spool, port);
    let reply = rcpt(relay.port, "alice@ourdom.test");
    assert!(
        reply.starts_with("250"),
        "after restart, alice remembered: {reply}"
    );
    let reply = rcpt(relay.port, "mallory@ourdom.test");
    assert!(
        reply.starts_with("550"),
        "after restart, mallory remembered: {reply}"
    );
    // Back up, carol is asked and accepted.
    let mx = Mailboxes::again(port, &["alice@ourdom.test", "carol@ourdom.test"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let reply = rcpt(relay.port, "carol@ourdom.test");
        if reply.starts_with("250") {
            break;
        }
        assert!(
            reply.starts_with("450") && std::time::Instant::now() < deadline,
            "carol: expected 450 until the MX is asked again, then 250; saw {reply}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(mx
        .asked
        .lock()
        .unwrap()
        .contains(&"carol@ourdom.test".to_string()));
}

/// TLS required for a domain: a destination without STARTTLS gets nothing
/// (deferred, the last error says why); retargeted to a relay offering
/// STARTTLS, the message goes over TLS (the next hop says ESMTPS).
#[test]
fn tls_required_refuses_clear_text_delivery() {
    let directory = tempfile::tempdir().unwrap();
    let sink = Sink::start(directory.path(), &[]);
    let fast = Schedule {
        first_retry: Duration::from_millis(200),
        max_retry: Duration::from_millis(800),
        ..Schedule::default()
    };
    let mut config = RelayConfig::new(
        directory.path().join("a"),
        Policy::new("mx-a.relay.test").relay("ourdom.test", ["alice"]),
    );
    config.schedule = fast;
    let mut required = destination(sink.port);
    required.require_tls = true;
    config.routes.insert("ourdom.test".into(), required);
    let a = InProcess::start(config);
    let (mut client, _) = Client::connect(a.port).unwrap();
    client.command("EHLO client.test").unwrap();
    let reply = client
        .message(
            "s@ext.test",
            "alice@ourdom.test",
            "Subject: secret\r\n\r\nsecret",
        )
        .unwrap();
    assert!(reply.starts_with("250 "), "expected 250, saw {reply}");
    a.wait_queue("a refused attempt", |entries| {
        entries.len() == 1
            && entries[0].recipients[0].1 == DeliveryState::Deferred
            && entries[0].recipients[0]
                .3
                .as_deref()
                .is_some_and(|error| error.contains("STARTTLS") && error.contains("required"))
    });
    assert!(
        sink.messages().is_empty(),
        "nothing may reach a destination without STARTTLS, sink has {:?}",
        sink.messages()
    );
    // A second relay that offers STARTTLS, relaying on to the sink.
    let certified = rcgen::generate_simple_self_signed(vec!["mx-b.relay.test".into()]).unwrap();
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
    let mut config = RelayConfig::new(
        directory.path().join("b"),
        Policy::new("mx-b.relay.test").relay("ourdom.test", ["alice"]),
    );
    config.tls = Some(tls_from_der(vec![certified.cert.der().clone()], key).unwrap());
    config
        .routes
        .insert("ourdom.test".into(), destination(sink.port));
    let b = InProcess::start(config);
    a.runtime
        .block_on(a.relay.retarget("ourdom.test", destination(b.port)))
        .unwrap();
    let messages = sink.wait_for(Duration::from_secs(20), "the message via B", |m| {
        m.len() == 1
    });
    assert!(
        messages[0].contains("by mx-b.relay.test (cutover) with ESMTPS"),
        "B must have received it over TLS:\n{}",
        messages[0]
    );
    a.wait_queue("A's queue empty", |entries| entries.is_empty());
}

/// One client making up recipients of a verified domain (the review: 198,000
/// remembered in 20 s, all in RAM and in an 11.9 MB file): the memory stays
/// within its cap, the file within twice its live entries, a recipient the
/// destination accepted before the flood is still remembered when it goes
/// down, and a refusal is forgotten after the negative TTL (450, not 550).
#[test]
fn made_up_recipients_are_not_remembered_without_bound() {
    let directory = tempfile::tempdir().unwrap();
    let spool = directory.path().join("spool");
    let mx = Mailboxes::start(&["alice@ourdom.test"]);
    let mut config = RelayConfig::new(&spool, Policy::new("mx.relay.test").verified("ourdom.test"));
    config
        .routes
        .insert("ourdom.test".into(), destination(mx.port));
    config.verify_cache_size = 1000;
    config.verify_negative_ttl = Duration::from_secs(2);
    let relay = InProcess::start(config);
    assert!(rcpt(relay.port, "alice@ourdom.test").starts_with("250"));
    let mut refused = 0;
    let mut number = 0;
    while number < 1500 {
        let (mut client, _) = Client::connect(relay.port).unwrap();
        client.command("EHLO flood.test").unwrap();
        client.command("MAIL FROM:<s@ext.test>").unwrap();
        // The session ends at its tenth error; the flood reconnects.
        for _ in 0..9 {
            let reply = client
                .command(&format!("RCPT TO:<made-up-{number}@ourdom.test>"))
                .unwrap();
            number += 1;
            refused += usize::from(reply.starts_with("550"));
        }
        let _ = client.command("QUIT");
    }
    let remembered = relay.relay.recipients_remembered();
    let file = std::fs::metadata(spool.join("recipients")).unwrap().len();
    eprintln!(
        "{number} made-up recipients ({refused} refused by the MX): {remembered} remembered, \
         file {file} octets"
    );
    assert!(refused >= 1450, "the MX refused {refused} of {number}");
    assert!(
        remembered <= 1 + 100,
        "{remembered} remembered (cap: 1000 accepted, 100 refused)"
    );
    // At most twice the live entries plus 64 lines of ~40 octets.
    assert!(file < (2 * 101 + 65) * 40, "the file grew to {file} octets");
    drop(mx);
    let reply = rcpt(relay.port, "alice@ourdom.test");
    assert!(
        reply.starts_with("250"),
        "alice, accepted before the flood, must still be remembered: {reply}"
    );
    let last = format!("made-up-{}@ourdom.test", number - 1);
    let reply = rcpt(relay.port, &last);
    assert!(
        reply.starts_with("550"),
        "a refusal within its TTL answers 550: {reply}"
    );
    std::thread::sleep(Duration::from_millis(2100));
    let reply = rcpt(relay.port, &last);
    assert!(
        reply.starts_with("450"),
        "a refusal past its TTL is forgotten: 450, saw {reply}"
    );
}

/// RFC 5321 §4.5.1 on the wire: `RCPT TO:<postmaster>` reaches the
/// destination as the configured postmaster mailbox, `postmaster@` the
/// domain is accepted though not listed, `"alice"@` is alice; the open-relay
/// forms with quotes or a foreign postmaster stay refused.
#[test]
fn postmaster_mail_reaches_the_destination() {
    let directory = tempfile::tempdir().unwrap();
    let sink = Sink::start(directory.path(), &[]);
    let mut policy = Policy::new("mx.relay.test").relay("ourdom.test", ["alice"]);
    policy.postmaster = Some(cutover_mail::address::Mailbox {
        local: "postmaster".into(),
        domain: "ourdom.test".into(),
    });
    let mut config = RelayConfig::new(directory.path().join("spool"), policy);
    config
        .routes
        .insert("ourdom.test".into(), destination(sink.port));
    let relay = InProcess::start(config);
    for (to, expected) in [
        ("postmaster@ext.test", "550 5.7.1"),
        ("\"postmaster@ext.test\"@ourdom.test", "550 5.7.1"),
        ("\"alice\"@ext.test", "550 5.7.1"),
        ("bob@ourdom.test", "550 5.1.1"),
    ] {
        let reply = rcpt(relay.port, to);
        assert!(
            reply.starts_with(expected),
            "{to}: expected {expected}, saw {reply}"
        );
    }
    for (to, subject) in [
        ("postmaster", "to the bare postmaster"),
        ("PostMaster@OurDom.test", "to postmaster at the domain"),
        ("\"alice\"@ourdom.test", "to quoted alice"),
    ] {
        let (mut client, _) = Client::connect(relay.port).unwrap();
        client.command("EHLO client.test").unwrap();
        let reply = client
            .message("s@ext.test", to, &format!("Subject: {subject}\r\n\r\nx"))
            .unwrap();
        assert!(reply.starts_with("250 "), "{to}: {reply}");
    }
    let messages = sink.wait_for(Duration::from_secs(20), "three messages", |m| m.len() == 3);
    let mut seen: Vec<(String, String)> = messages
        .iter()
        .map(|message| {
            let field = |name: &str| {
                message
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .unwrap_or_default()
                    .to_string()
            };
            let to = field("X-Rcpt-Args: ");
            (
                to.split(' ').next().unwrap_or_default().to_string(),
                field("Subject: "),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "<PostMaster@ourdom.test>".to_string(),
                "to postmaster at the domain".to_string()
            ),
            (
                "<alice@ourdom.test>".to_string(),
                "to quoted alice".to_string()
            ),
            (
                "<postmaster@ourdom.test>".to_string(),
                "to the bare postmaster".to_string()
            ),
        ]
    );
}
