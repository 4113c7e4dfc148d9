//! The session limits with raw sockets: command and data timeouts, the cap
//! on connections per client, the cap on recipients per transaction.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Client, InProcess};
use cutover_mail::{Policy, RelayConfig};

/// A relay with 1 s timeouts, 2 connections per client, 3 recipients.
fn strict(spool: &std::path::Path) -> InProcess {
    let mut policy = Policy::new("mx.relay.test").relay("ourdom.test", ["a", "b", "c", "d"]);
    policy.max_recipients = 3;
    let mut config = RelayConfig::new(spool, policy);
    config.command_timeout = Duration::from_secs(1);
    config.data_timeout = Duration::from_secs(1);
    config.max_connections_per_client = 2;
    InProcess::start(config)
}

/// A client of the relay on `port`, past EHLO and an accepted MAIL FROM.
fn past_mail_from(port: u16) -> Client {
    let (mut client, _) = Client::connect(port).unwrap();
    client.command("EHLO client.test").unwrap();
    assert!(client
        .command("MAIL FROM:<s@ext.test>")
        .unwrap()
        .starts_with("250"));
    client
}

/// Reads until EOF, returning everything the server wrote.
fn until_closed(client: Client) -> String {
    client.drain()
}

/// A silent client gets 421 after the command timeout, then EOF.
#[test]
fn command_timeout_closes_with_421() {
    let directory = tempfile::tempdir().unwrap();
    let relay = strict(&directory.path().join("spool"));
    let (mut client, greeting) = Client::connect(relay.port).unwrap();
    assert!(greeting.starts_with("220"), "greeting: {greeting}");
    client.command("EHLO client.test").unwrap();
    let rest = until_closed(client);
    assert!(
        rest.starts_with("421 4.4.2") && rest.contains("Timeout"),
        "expected a 421 timeout then EOF, saw {rest:?}"
    );
}

/// A client stalling inside DATA gets 421 after the data timeout; nothing
/// is queued.
#[test]
fn data_timeout_closes_with_421_and_stores_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let relay = strict(&directory.path().join("spool"));
    let mut client = past_mail_from(relay.port);
    assert!(client
        .command("RCPT TO:<a@ourdom.test>")
        .unwrap()
        .starts_with("250"));
    assert!(client.command("DATA").unwrap().starts_with("354"));
    client.send(b"Subject: half\r\n\r\nhalf a mess").unwrap();
    let rest = until_closed(client);
    assert!(
        rest.starts_with("421 4.4.2"),
        "expected 421 after the data timeout, saw {rest:?}"
    );
    assert!(relay.relay.list().is_empty(), "a half message was queued");
}

/// The third connection from one address gets 421 and is closed; once one
/// of the two ends, a new one is served.
#[test]
fn connections_per_client_are_capped() {
    let directory = tempfile::tempdir().unwrap();
    let relay = strict(&directory.path().join("spool"));
    let (first, greeting) = Client::connect(relay.port).unwrap();
    assert!(greeting.starts_with("220"), "first: {greeting}");
    let (_second, greeting) = Client::connect(relay.port).unwrap();
    assert!(greeting.starts_with("220"), "second: {greeting}");
    let (third, greeting) = Client::connect(relay.port).unwrap();
    assert!(
        greeting.starts_with("421 4.7.0"),
        "third connection: expected 421, saw {greeting}"
    );
    let mut stream = third.into_stream();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "the refused connection must be closed: {rest:?}"
    );
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_client, greeting) = Client::connect(relay.port).unwrap();
        if greeting.starts_with("220") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a slot never freed after a connection ended: {greeting}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// RCPT beyond max_recipients gets 452 (try the rest later); the message
/// still goes to the first three.
#[test]
fn recipients_are_capped_with_452() {
    let directory = tempfile::tempdir().unwrap();
    let relay = strict(&directory.path().join("spool"));
    let mut client = past_mail_from(relay.port);
    for to in ["a", "b", "c"] {
        let reply = client
            .command(&format!("RCPT TO:<{to}@ourdom.test>"))
            .unwrap();
        assert!(reply.starts_with("250"), "{to}: expected 250, saw {reply}");
    }
    let reply = client.command("RCPT TO:<d@ourdom.test>").unwrap();
    assert!(
        reply.starts_with("452 4.5.3"),
        "fourth: expected 452, saw {reply}"
    );
    assert!(client.command("DATA").unwrap().starts_with("354"));
    client.send(b"Subject: three\r\n\r\nx\r\n.\r\n").unwrap();
    let reply = client.reply().unwrap();
    assert!(reply.starts_with("250 "), "expected 250, saw {reply}");
    let entries = relay.relay.list();
    assert_eq!(entries.len(), 1, "one message queued");
    assert_eq!(
        entries[0].recipients.len(),
        3,
        "for exactly three recipients"
    );
}
