//! The spool: durable store, status round trips, restart, failures.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use cutover_mail::{
    DeliveryState, DsnReturn, Envelope, Message, Notify, Recipient, Spool, SpoolError,
};

/// A fixed time.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(1_767_323_045_123_456_789)
}

/// A message with two recipients and every envelope field set.
fn message() -> Message {
    Message {
        envelope: Envelope {
            sender: "sé nder@ext.test".into(),
            recipients: vec![
                Recipient {
                    address: "alice@ourdom.test".into(),
                    domain: "ourdom.test".into(),
                    original: Some("Alice%40x@ourdom.test".into()),
                    notify: Notify {
                        success: true,
                        failure: true,
                        delay: false,
                        never: false,
                    },
                },
                Recipient {
                    address: "bob@ourdom.test".into(),
                    domain: "ourdom.test".into(),
                    original: None,
                    notify: Notify::default(),
                },
            ],
            envelope_id: Some("env-1".into()),
            dsn_return: Some(DsnReturn::Headers),
            eight_bit: true,
            smtputf8: true,
            helo: "client.test".into(),
            client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            received: now(),
        },
        content: b"Subject: x\r\n\r\nbody\n\n with blank lines\r\n".to_vec(),
    }
}

/// What is stored loads back identically after a "restart" (a new Spool).
#[test]
fn store_then_load_after_restart() {
    let directory = tempfile::tempdir().unwrap();
    let spool = Spool::open(directory.path()).unwrap();
    let first = spool.store(&message(), now()).unwrap();
    let second = spool.store(&message(), now()).unwrap();
    assert!(
        first.id < second.id,
        "ids must sort in arrival order: {} !< {}",
        first.id,
        second.id
    );
    drop(spool);
    let spool = Spool::open(directory.path()).unwrap();
    let loaded = spool.load().unwrap();
    assert_eq!(
        loaded,
        vec![first.clone(), second],
        "loaded spool differs from what was stored"
    );
    assert_eq!(spool.content(&first.id).unwrap(), message().content);
}

/// Status updates survive a restart; finished messages can be removed.
#[test]
fn statuses_round_trip_and_remove() {
    let directory = tempfile::tempdir().unwrap();
    let spool = Spool::open(directory.path()).unwrap();
    let mut spooled = spool.store(&message(), now()).unwrap();
    spooled.held = true;
    spooled.statuses[0].state = DeliveryState::Delivered;
    spooled.statuses[0].attempts = 1;
    spooled.statuses[1].state = DeliveryState::Deferred;
    spooled.statuses[1].attempts = 3;
    spooled.statuses[1].last_error = Some("451 4.3.0 try - later\r\n".into());
    spooled.statuses[1].next_attempt = now() + Duration::from_secs(600);
    spool.update(&spooled).unwrap();
    let loaded = Spool::open(directory.path()).unwrap().load().unwrap();
    assert_eq!(loaded, vec![spooled.clone()]);
    spool.remove(&spooled.id).unwrap();
    assert!(
        spool.load().unwrap().is_empty(),
        "removed message still loads"
    );
    assert!(matches!(
        spool.content(&spooled.id),
        Err(SpoolError::Missing(_))
    ));
}

/// Leftover .tmp files of a crash are removed and never load as messages.
#[test]
fn crash_leftovers_are_removed() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(directory.path().join("00AA.msg.tmp"), b"half a message").unwrap();
    let spool = Spool::open(directory.path()).unwrap();
    assert!(
        !directory.path().join("00AA.msg.tmp").exists(),
        "tmp file survived open"
    );
    assert!(spool.load().unwrap().is_empty());
}

/// A storage failure is an error (the session then answers 451), never Ok.
#[test]
fn storage_failure_is_an_error() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("spool");
    let spool = Spool::open(&path).unwrap();
    std::fs::remove_dir(&path).unwrap();
    match spool.store(&message(), now()) {
        Err(SpoolError::Io { .. }) => {}
        other => panic!("expected an Io error from a vanished spool, saw {other:?}"),
    }
}

/// A corrupt envelope names the file and line.
#[test]
fn corrupt_envelope_names_file_and_line() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(
        directory.path().join("0001.msg"),
        b"cutover-spool 1\nbogus x\n\nbody",
    )
    .unwrap();
    let error = Spool::open(directory.path()).unwrap().load().unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("0001.msg line 2") && text.contains("bogus"),
        "{text}"
    );
}

/// The spool files in `directory`, sorted.
fn files(directory: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A message streamed in pieces (as the relay receives one) loads back
/// whole after its commit; before the commit nothing is queued.
#[test]
fn streamed_message_commits_whole() {
    let directory = tempfile::tempdir().unwrap();
    let spool = Spool::open(directory.path()).unwrap();
    let mut incoming = spool.open_incoming(message().envelope).unwrap();
    let content: Vec<u8> = (0..100_000u32)
        .flat_map(|number| format!("line {number}\r\n").into_bytes())
        .collect();
    for piece in content.chunks(7919) {
        incoming.append(piece).unwrap();
        assert!(spool.load().unwrap().is_empty(), "queued before the commit");
    }
    assert_eq!(incoming.size(), content.len() as u64);
    let spooled = spool.commit(incoming, now()).unwrap();
    assert_eq!(spooled.size, content.len() as u64);
    let loaded = Spool::open(directory.path()).unwrap().load().unwrap();
    assert_eq!(loaded, vec![spooled.clone()]);
    assert_eq!(spool.content(&spooled.id).unwrap(), content);
    assert_eq!(files(directory.path()), [format!("{}.msg", spooled.id)]);
}

/// A message not committed (refused, cut off, failed) leaves nothing: its
/// file goes when it is dropped, or, after a crash, when the spool opens.
#[test]
fn uncommitted_message_leaves_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let spool = Spool::open(directory.path()).unwrap();
    let mut incoming = spool.open_incoming(message().envelope).unwrap();
    incoming.append(b"Subject: half\r\n").unwrap();
    assert_eq!(
        files(directory.path()).len(),
        1,
        "the file exists while it arrives"
    );
    drop(incoming);
    assert!(
        files(directory.path()).is_empty(),
        "{:?}",
        files(directory.path())
    );
    let mut crashed = spool.open_incoming(message().envelope).unwrap();
    crashed.append(b"Subject: half\r\n").unwrap();
    std::mem::forget(crashed);
    let spool = Spool::open(directory.path()).unwrap();
    assert!(
        files(directory.path()).is_empty(),
        "{:?}",
        files(directory.path())
    );
    assert!(spool.load().unwrap().is_empty());
}

/// A commit that cannot rename (the spool directory vanished) is an error,
/// and nothing of the message is left.
#[test]
fn failed_commit_is_an_error() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("spool");
    let spool = Spool::open(&path).unwrap();
    let mut incoming = spool.open_incoming(message().envelope).unwrap();
    incoming.append(b"x\r\n").unwrap();
    std::fs::rename(&path, directory.path().join("moved")).unwrap();
    std::fs::create_dir(&path).unwrap();
    assert!(spool.commit(incoming, now()).is_err(), "expected an error");
    assert!(files(&path).is_empty(), "{:?}", files(&path));
    assert!(Spool::open(&path).unwrap().load().unwrap().is_empty());
}
