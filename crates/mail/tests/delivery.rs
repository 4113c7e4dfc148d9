//! Delivery against Postfix's smtp-sink, the relay running in-process: the
//! move (queued while the destination is down, held, retargeted, released,
//! each message once and in order), downstream faults (retry, DSN), the
//! queue lifetime, the loop guard and restart.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{refusing_tcp, Client, Sink};
use cutover_mail::{
    DeliveryState, Destination, Policy, Relay, RelayConfig, Schedule, Selector, SmtpCourier,
};

/// A relay running on its own tokio runtime.
struct Running {
    /// The relay handle.
    relay: Relay<SmtpCourier>,
    /// The port it listens on.
    port: u16,
    /// The runtime; dropping it stops the relay.
    runtime: tokio::runtime::Runtime,
}

impl Running {
    /// Starts a relay for ourdom.test (alice, bob) with these routes.
    fn start(spool: &std::path::Path, routes: &[(&str, u16)], schedule: Schedule) -> Running {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Bound here and held: the relay serves on this very listener.
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the relay's listener");
        let address = listener.local_addr().expect("a bound listener");
        let port = address.port();
        let mut config = RelayConfig::new(
            spool,
            Policy::new("mx.relay.test").relay("ourdom.test", ["alice", "bob"]),
        );
        config.schedule = schedule;
        config.routes = routes
            .iter()
            .map(|(domain, port)| (domain.to_string(), destination(*port)))
            .collect::<BTreeMap<_, _>>();
        let mut courier = SmtpCourier::new("mx.relay.test", vec![address]);
        courier.connect_timeout = Duration::from_secs(2);
        courier.reply_timeout = Duration::from_secs(5);
        let relay = Relay::open(config, courier).expect("open relay");
        let serving = relay.clone();
        runtime.spawn(async move { serving.serve(listener).await });
        let delivering = relay.clone();
        runtime.spawn(async move { delivering.deliver().await });
        Running {
            relay,
            port,
            runtime,
        }
    }

    /// Sends one message from s@ext.test to `to`; asserts the 250.
    fn send(&self, to: &str, subject: &str) {
        let (mut client, _) = Client::connect(self.port).unwrap();
        client.command("EHLO client.test").unwrap();
        let reply = client
            .message(
                "s@ext.test",
                to,
                &format!("Subject: {subject}\r\n\r\nbody of {subject}"),
            )
            .unwrap();
        assert!(
            reply.starts_with("250 "),
            "{subject}: expected 250, saw {reply}"
        );
        client.command("QUIT").unwrap();
    }

    /// Waits until `done` holds for the queue listing.
    fn wait_queue(&self, what: &str, done: impl Fn(&[cutover_mail::queue::Entry]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let entries = self.relay.list();
            if done(&entries) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; queue: {entries:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// 127.0.0.1:port.
fn destination(port: u16) -> Destination {
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// Fast retries for tests.
fn fast() -> Schedule {
    Schedule {
        first_retry: Duration::from_millis(200),
        max_retry: Duration::from_millis(800),
        ..Schedule::default()
    }
}

/// The move: destination down, mail queued and retried; hold; retarget to
/// a listening sink: nothing while held; release: each message exactly
/// once, in order of arrival.
#[test]
fn the_move_delivers_each_message_once_in_order() {
    let directory = tempfile::tempdir().unwrap();
    let (_down, down) = refusing_tcp([127, 0, 0, 1]);
    let relay = Running::start(
        &directory.path().join("spool"),
        &[("ourdom.test", down.port())],
        fast(),
    );
    for number in 1..=5 {
        relay.send("alice@ourdom.test", &format!("m{number}"));
    }
    relay.wait_queue("every message deferred at least twice", |entries| {
        entries.len() == 5
            && entries.iter().all(|entry| {
                let (_, state, attempts, error) = &entry.recipients[0];
                *state == DeliveryState::Deferred
                    && *attempts >= 2
                    && error.as_deref().is_some_and(|e| e.contains("connect"))
            })
    });
    relay
        .runtime
        .block_on(relay.relay.hold(Selector::Domain("ourdom.test".into())))
        .unwrap();
    let sink = Sink::start(directory.path(), &[]);
    relay
        .runtime
        .block_on(relay.relay.retarget("ourdom.test", destination(sink.port)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        sink.messages().is_empty(),
        "held mail was delivered: {:?}",
        sink.messages()
    );
    assert!(
        relay.relay.list().iter().all(|entry| entry.held),
        "listing must show the hold"
    );
    relay
        .runtime
        .block_on(relay.relay.release(Selector::Domain("ourdom.test".into())))
        .unwrap();
    sink.wait_for(Duration::from_secs(10), "5 messages", |messages| {
        messages.len() >= 5
    });
    relay.wait_queue("an empty queue", |entries| entries.is_empty());
    std::thread::sleep(Duration::from_millis(600));
    let messages = sink.messages();
    let subjects: Vec<&str> = messages
        .iter()
        .map(|message| {
            message
                .lines()
                .find_map(|line| line.strip_prefix("Subject: "))
                .unwrap_or("?")
        })
        .collect();
    assert_eq!(
        subjects,
        ["m1", "m2", "m3", "m4", "m5"],
        "expected each once, in arrival order"
    );
    let metrics = relay.relay.metrics();
    assert_eq!(
        (metrics.accepted, metrics.delivered, metrics.queued),
        (5, 5, 0),
        "{metrics:?}"
    );
    assert!(metrics.deferred >= 10, "{metrics:?}");
}

/// smtp-sink deferring RCPT (4xx) and dropping the connection at DATA:
/// the message stays queued and is retried; once the destination behaves it
/// arrives once.
#[test]
fn downstream_deferrals_are_retried() {
    for fault in [["-r", "RCPT"], ["-q", "DATA"]] {
        let directory = tempfile::tempdir().unwrap();
        let faulty = Sink::start(directory.path(), &fault);
        let relay = Running::start(
            &directory.path().join("spool"),
            &[("ourdom.test", faulty.port)],
            fast(),
        );
        relay.send("bob@ourdom.test", "retry me");
        relay.wait_queue("three attempts", |entries| {
            entries.len() == 1
                && entries[0].recipients[0].2 >= 3
                && entries[0].recipients[0].1 == DeliveryState::Deferred
        });
        assert!(
            faulty.messages().is_empty(),
            "{fault:?}: the faulty sink recorded a message"
        );
        let good = Sink::start(directory.path(), &[]);
        relay
            .runtime
            .block_on(relay.relay.retarget("ourdom.test", destination(good.port)))
            .unwrap();
        good.wait_for(Duration::from_secs(10), "the retried message", |messages| {
            !messages.is_empty()
        });
        relay.wait_queue("an empty queue", |entries| entries.is_empty());
        assert_eq!(
            good.messages().len(),
            1,
            "{fault:?}: expected exactly one delivery"
        );
    }
}

/// smtp-sink rejecting DATA with 5xx: the recipient fails and the sender
/// gets an RFC 3464 DSN from <> (delivered through the `*` route).
#[test]
fn rejection_at_data_gives_a_dsn() {
    let directory = tempfile::tempdir().unwrap();
    let rejecting = Sink::start(directory.path(), &["-f", "DATA"]);
    let senders = Sink::start(directory.path(), &[]);
    let relay = Running::start(
        &directory.path().join("spool"),
        &[("ourdom.test", rejecting.port), ("*", senders.port)],
        fast(),
    );
    relay.send("alice@ourdom.test", "doomed");
    let reports = senders.wait_for(Duration::from_secs(10), "a DSN", |messages| {
        !messages.is_empty()
    });
    let report = &reports[0];
    for expected in [
        "X-Mail-Args: <>",
        "X-Rcpt-Args: <s@ext.test>",
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Reporting-MTA: dns; mx.relay.test",
        "Final-Recipient: rfc822;alice@ourdom.test",
        "Action: failed",
        "Status: 5.",
        "Subject: doomed",
    ] {
        assert!(
            report.contains(expected),
            "DSN lacks {expected:?}:\n{report}"
        );
    }
    relay.wait_queue("an empty queue", |entries| entries.is_empty());
    assert!(rejecting.messages().is_empty());
    assert_eq!(relay.relay.metrics().bounced, 1);
}

/// Past the queue lifetime, a still-undeliverable recipient fails with a DSN.
#[test]
fn queue_lifetime_expiry_gives_a_dsn() {
    let directory = tempfile::tempdir().unwrap();
    let senders = Sink::start(directory.path(), &[]);
    let schedule = Schedule {
        lifetime: Duration::from_secs(2),
        ..fast()
    };
    let (_down, down) = refusing_tcp([127, 0, 0, 1]);
    let relay = Running::start(
        &directory.path().join("spool"),
        &[("ourdom.test", down.port()), ("*", senders.port)],
        schedule,
    );
    relay.send("alice@ourdom.test", "too late");
    let reports = senders.wait_for(Duration::from_secs(15), "an expiry DSN", |messages| {
        !messages.is_empty()
    });
    assert!(
        reports[0].contains("queue lifetime expired"),
        "{}",
        reports[0]
    );
    assert!(reports[0].contains("Action: failed"), "{}", reports[0]);
    relay.wait_queue("an empty queue", |entries| entries.is_empty());
}

/// The loop guard: a route pointing at the relay itself never delivers
/// there; the mail stays deferred with a loop error.
#[test]
fn loop_guard_never_delivers_to_itself() {
    let directory = tempfile::tempdir().unwrap();
    let relay = Running::start(&directory.path().join("spool"), &[], fast());
    relay
        .runtime
        .block_on(relay.relay.retarget("ourdom.test", destination(relay.port)))
        .unwrap();
    relay.send("alice@ourdom.test", "loop");
    relay.wait_queue("a loop error", |entries| {
        entries.len() == 1
            && entries[0].recipients[0].2 >= 2
            && entries[0].recipients[0]
                .3
                .as_deref()
                .is_some_and(|error| error.contains("loops back to myself"))
    });
    assert_eq!(
        relay.relay.metrics().accepted,
        1,
        "the relay accepted its own mail"
    );
}

/// A restart picks the queue up where it was, retarget included.
#[test]
fn restart_resumes_the_queue() {
    let directory = tempfile::tempdir().unwrap();
    let spool = directory.path().join("spool");
    let sink = Sink::start(directory.path(), &[]);
    let (_down, down) = refusing_tcp([127, 0, 0, 1]);
    {
        let relay = Running::start(&spool, &[("ourdom.test", down.port())], fast());
        relay
            .runtime
            .block_on(relay.relay.hold(Selector::All))
            .unwrap();
        relay.send("alice@ourdom.test", "r1");
        relay.send("bob@ourdom.test", "r2");
        relay
            .runtime
            .block_on(relay.relay.hold(Selector::Domain("ourdom.test".into())))
            .unwrap();
        relay
            .runtime
            .block_on(relay.relay.retarget("ourdom.test", destination(sink.port)))
            .unwrap();
    }
    let relay = Running::start(&spool, &[("ourdom.test", down.port())], fast());
    assert_eq!(
        relay.relay.list().len(),
        2,
        "the queue did not survive the restart"
    );
    relay
        .runtime
        .block_on(relay.relay.release(Selector::Domain("ourdom.test".into())))
        .unwrap();
    sink.wait_for(
        Duration::from_secs(10),
        "2 messages after restart",
        |messages| messages.len() == 2,
    );
    relay.wait_queue("an empty queue", |entries| entries.is_empty());
}
