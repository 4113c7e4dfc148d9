//! The inbound session as a state machine: every relay, smuggling,
//! injection and limit case, without a socket.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cutover_mail::{Event, Message, Policy, Reply, Session};

/// A fixed time: 2026-01-02 03:04:05 UTC.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_323_045)
}

/// The policy of these tests: ourdom.test with alice and bob.
fn policy() -> Policy {
    let mut policy = Policy::new("mx.relay.test").relay("ourdom.test", ["alice", "bob"]);
    policy.tls_available = true;
    policy
}

/// A session from 192.0.2.1 under `policy`.
fn session_with(policy: Policy) -> Session {
    Session::new(
        Arc::new(policy),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        false,
    )
}

/// The replies among `events`.
fn replies(events: &[Event]) -> Vec<Reply> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Reply(reply) => Some(reply.clone()),
            _ => None,
        })
        .collect()
}

/// The reply codes among `events`.
fn codes(events: &[Event]) -> Vec<u16> {
    replies(events).iter().map(|reply| reply.code).collect()
}

/// The messages committed among `events`: each Open's envelope with the
/// Data that followed it, up to its Commit (a Discard drops it).
fn messages(events: &[Event]) -> Vec<Message> {
    let mut committed = Vec::new();
    let mut open: Option<Message> = None;
    for event in events {
        match event {
            Event::Open(envelope) => {
                open = Some(Message {
                    envelope: (**envelope).clone(),
                    content: Vec::new(),
                })
            }
            Event::Data(bytes) => {
                let message = open.as_mut().expect("data outside a message");
                message.content.extend_from_slice(bytes);
            }
            Event::Commit => committed.push(open.take().expect("commit without a message")),
            Event::Discard => open = None,
            _ => {}
        }
    }
    committed
}

/// `events` with every Open answered as the server does when the spool
/// file opens (the answer's events follow the Open).
fn opened(session: &mut Session, events: Vec<Event>) -> Vec<Event> {
    let mut all = Vec::new();
    for event in events {
        let open = matches!(event, Event::Open(_));
        all.push(event);
        if open {
            let answer = session.opened(Ok(()), now());
            all.extend(opened(session, answer));
        }
    }
    all
}

/// Feeds `input` and returns the events (spool files opening fine).
fn feed(session: &mut Session, input: &str) -> Vec<Event> {
    let events = session.feed(input.as_bytes());
    opened(session, events)
}

/// A session past EHLO and MAIL FROM.
fn in_transaction() -> Session {
    let mut session = session_with(policy());
    let events = feed(
        &mut session,
        "EHLO client.test\r\nMAIL FROM:<sender@ext.test>\r\n",
    );
    assert_eq!(codes(&events), [250, 250], "setup: {events:?}");
    session
}

/// A whole pipelined transaction: one message handed out, no 250 for it
/// before stored(), then the pipelined QUIT is answered.
#[test]
fn pipelined_transaction_waits_for_the_spool() {
    let mut session = session_with(policy());
    assert_eq!(
        session.greeting().to_string(),
        "220 mx.relay.test ESMTP cutover\r\n"
    );
    let events = feed(
        &mut session,
        "EHLO client.test\r\nMAIL FROM:<s@ext.test> BODY=8BITMIME\r\n\
         RCPT TO:<alice@ourdom.test> NOTIFY=FAILURE ORCPT=rfc822;alice@ourdom.test\r\n\
         RCPT TO:<Bob@OURDOM.test>\r\nDATA\r\nSubject: hi\r\n\r\n..body\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(codes(&events), [250, 250, 250, 250, 354], "{events:?}");
    let ehlo = replies(&events)[0].to_string();
    for capability in [
        "PIPELINING",
        "SIZE ",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "STARTTLS",
    ] {
        assert!(ehlo.contains(capability), "EHLO lacks {capability}: {ehlo}");
    }
    let message = messages(&events).pop().expect("a message event");
    assert_eq!(
        events.last(),
        Some(&Event::Commit),
        "nothing after the message before stored()"
    );
    let envelope = &message.envelope;
    assert_eq!(envelope.sender, "s@ext.test");
    assert!(envelope.eight_bit);
    let addresses: Vec<_> = envelope
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(addresses, ["alice@ourdom.test", "Bob@ourdom.test"]);
    assert!(envelope.recipients[0].notify.failure && !envelope.recipients[0].notify.delay);
    assert_eq!(
        envelope.recipients[0].original.as_deref(),
        Some("alice@ourdom.test"),
        "ORCPT is kept as its rfc822 address"
    );
    let content = String::from_utf8(message.content).unwrap();
    assert_eq!(
        content,
        "Received: from client.test ([192.0.2.1])\r\n\tby mx.relay.test (cutover) with ESMTP;\r\n\
         \tFri, 02 Jan 2026 03:04:05 +0000\r\nSubject: hi\r\n\r\n.body\r\n"
    );
    let events = session.stored(Ok("Q1".into()));
    assert_eq!(codes(&events), [250, 221]);
    assert!(replies(&events)[0]
        .to_string()
        .starts_with("250 2.0.0 Ok: queued as Q1"));
    assert_eq!(events.last(), Some(&Event::Close));
}

/// A storage failure gives 451, never 250, and the session goes on.
#[test]
fn storage_failure_is_451() {
    let mut session = in_transaction();
    let events = feed(
        &mut session,
        "RCPT TO:<alice@ourdom.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert_eq!(messages(&events).len(), 1);
    let events = session.stored(Err("disk full".into()));
    assert_eq!(codes(&events), [451]);
    assert!(
        !replies(&events)[0].to_string().contains("disk full"),
        "internal error leaked"
    );
    assert_eq!(codes(&feed(&mut session, "MAIL FROM:<>\r\n")), [250]);
}

/// Every open-relay trick (%-hack, bang path, source route, quoted @), and a foreign domain, get 5xx at RCPT.
#[test]
fn open_relay_tricks_get_5xx_at_rcpt() {
    for path in [
        "u@ext.test",
        "alice%ext.test@ourdom.test",
        "@ourdom.test:alice@ext.test",
        "@ourdom.test:alice@ourdom.test",
        "ext.test!alice@ourdom.test",
        "\"alice@ext.test\"@ourdom.test",
        "alice@ext.test@ourdom.test",
        "alice@[127.0.0.1]",
        "alice@ourdom.test.",
        "alice@sub.ourdom.test",
        "postmaster",
    ] {
        let mut session = in_transaction();
        let events = feed(&mut session, &format!("RCPT TO:<{path}>\r\n"));
        let code = codes(&events);
        assert!(
            code.len() == 1 && (500..600).contains(&code[0]),
            "RCPT TO:<{path}>: expected one 5xx, saw {events:?}"
        );
        let events = feed(&mut session, "DATA\r\n");
        assert_eq!(
            codes(&events),
            [554],
            "{path}: DATA without recipients must fail"
        );
    }
}

/// No backscatter: an unknown user of a relayed domain gets 550 5.1.1 at RCPT.
#[test]
fn unknown_recipient_gets_550() {
    let mut session = in_transaction();
    let events = feed(&mut session, "RCPT TO:<mallory@ourdom.test>\r\n");
    assert_eq!(
        replies(&events),
        [Reply::new(
            550,
            "5.1.1",
            "Recipient address rejected: unknown user"
        )]
    );
}

/// Bare LF / bare CR around the end-of-data dot: the message is refused and
/// the smuggled transaction is never read as commands.
#[test]
fn smuggling_is_refused_and_never_executed() {
    for fake_end in ["\n.\r\n", "\n.\n", "\r.\r\n", "\r\n.\n", "\r.\r"] {
        let mut session = in_transaction();
        let input = format!(
            "RCPT TO:<alice@ourdom.test>\r\nDATA\r\nSubject: a\r\n\r\nhello{fake_end}\
             MAIL FROM:<evil@ext.test>\r\nRCPT TO:<bob@ourdom.test>\r\nDATA\r\nsmuggled\r\n.\r\nNOOP\r\n"
        );
        let events = feed(&mut session, &input);
        assert_eq!(
            codes(&events),
            [250, 354, 554, 250],
            "{fake_end:?}: {events:?}"
        );
        assert!(
            messages(&events).is_empty(),
            "{fake_end:?}: a message was accepted"
        );
    }
}

/// STARTTLS injection (CVE-2011-0411): commands pipelined after STARTTLS are
/// dropped, and after the handshake the session starts over.
#[test]
fn starttls_drops_pipelined_commands() {
    let mut session = session_with(policy());
    let events = feed(
        &mut session,
        "EHLO client.test\r\nSTARTTLS\r\nMAIL FROM:<evil@ext.test>\r\nRCPT TO:<alice@ourdom.test>\r\n",
    );
    assert_eq!(codes(&events), [250, 220], "{events:?}");
    assert_eq!(events.last(), Some(&Event::StartTls));
    assert!(
        feed(&mut session, "NOOP\r\n").is_empty(),
        "input read before the handshake"
    );
    session.tls_started();
    let events = feed(&mut session, "MAIL FROM:<a@ext.test>\r\n");
    assert_eq!(
        codes(&events),
        [503],
        "EHLO must be sent again after TLS: {events:?}"
    );
    let events = feed(&mut session, "EHLO client.test\r\n");
    assert!(
        !replies(&events)[0].to_string().contains("STARTTLS"),
        "STARTTLS offered twice"
    );
    let events = feed(&mut session, "STARTTLS\r\n");
    assert_eq!(codes(&events), [503]);
}

/// CR, LF or NUL in a command or, xtext-encoded, in ENVID/ORCPT are refused.
#[test]
fn control_characters_in_parameters_are_refused() {
    let mut session = in_transaction();
    for line in [
        "RCPT TO:<alice@ourdom.test> ORCPT=rfc822;alice+0D+0ABcc:x@ourdom.test\r\n",
        "RCPT TO:<alice@ourdom.test> ORCPT=rfc822;a+00@ourdom.test\r\n",
        "RCPT TO:<alice@ourdom.test>\rX\r\n",
        "RCPT TO:<alice@ourdom.test>\0\r\n",
        "RCPT TO:<alice@ourdom.test>\n",
    ] {
        let code = codes(&feed(&mut session, line));
        assert!(
            code.len() == 1 && code[0] >= 500,
            "{line:?}: expected 5xx, saw {code:?}"
        );
    }
    let mut session = session_with(policy());
    feed(&mut session, "EHLO client.test\r\n");
    let code = codes(&feed(
        &mut session,
        "MAIL FROM:<a@ext.test> ENVID=x+0D+0Ay\r\n",
    ));
    assert_eq!(code, [501]);
}

/// Size, recipient and line limits.
#[test]
fn limits_are_enforced() {
    let mut small = policy();
    small.max_message_size = 100;
    small.max_recipients = 1;
    let mut session = session_with(small);
    feed(&mut session, "EHLO client.test\r\n");
    assert_eq!(
        codes(&feed(&mut session, "MAIL FROM:<a@ext.test> SIZE=101\r\n")),
        [552]
    );
    assert_eq!(
        codes(&feed(&mut session, "MAIL FROM:<a@ext.test> SIZE=100\r\n")),
        [250]
    );
    let events = feed(
        &mut session,
        "RCPT TO:<alice@ourdom.test>\r\nRCPT TO:<bob@ourdom.test>\r\nDATA\r\n",
    );
    assert_eq!(codes(&events), [250, 452, 354]);
    let big = format!("{}\r\n.\r\n", "x".repeat(200));
    let events = feed(&mut session, &big);
    assert_eq!(codes(&events), [552], "oversized data: {events:?}");
    let long = format!("NOOP {}\r\n", "x".repeat(3000));
    assert_eq!(codes(&feed(&mut session, &long)), [500]);
    assert_eq!(
        codes(&feed(&mut session, "NOOP\r\n")),
        [250],
        "session recovers after a long line"
    );
}

/// A message with more Received headers than the hop limit is a loop: 554.
#[test]
fn mail_loop_is_554() {
    let mut session = in_transaction();
    let headers = "Received: from a by b; date\r\n".repeat(31);
    let events = feed(
        &mut session,
        &format!("RCPT TO:<alice@ourdom.test>\r\nDATA\r\n{headers}\r\nbody\r\n.\r\n"),
    );
    assert_eq!(codes(&events), [250, 354, 554]);
    assert!(replies(&events)[2].to_string().contains("5.4.6"));
    let mut session = in_transaction();
    let headers = "Received: from a by b; date\r\n".repeat(30);
    let events = feed(
        &mut session,
        &format!("RCPT TO:<alice@ourdom.test>\r\nDATA\r\n{headers}\r\nbody\r\n.\r\n"),
    );
    assert_eq!(messages(&events).len(), 1, "30 hops are within the limit");
}

/// Commands out of order get 503; too many errors close the session with 421.
#[test]
fn order_and_error_limit() {
    let mut session = session_with(policy());
    assert_eq!(
        codes(&feed(&mut session, "MAIL FROM:<a@ext.test>\r\n")),
        [503]
    );
    assert_eq!(
        codes(&feed(&mut session, "RCPT TO:<alice@ourdom.test>\r\n")),
        [503]
    );
    assert_eq!(codes(&feed(&mut session, "DATA\r\n")), [503]);
    let events = feed(&mut session, &"BOGUS\r\n".repeat(20));
    assert_eq!(codes(&events).last(), Some(&421));
    assert_eq!(events.last(), Some(&Event::Close));
    assert!(session.is_closed());
    assert!(feed(&mut session, "NOOP\r\n").is_empty());
}

/// Non-ASCII addresses need SMTPUTF8, and SMTPUTF8 marks the Received header.
#[test]
fn smtputf8() {
    let mut session = session_with(Policy::new("mx.relay.test").relay("ourdom.test", ["josé"]));
    feed(&mut session, "EHLO client.test\r\n");
    assert_eq!(
        codes(&feed(&mut session, "MAIL FROM:<jö@ext.test>\r\n")),
        [553]
    );
    let events = feed(
        &mut session,
        "MAIL FROM:<jö@ext.test> SMTPUTF8\r\nRCPT TO:<josé@ourdom.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    let message = messages(&events).pop().expect("a message");
    assert!(message.envelope.smtputf8);
    assert!(String::from_utf8(message.content)
        .unwrap()
        .contains("with UTF8SMTP;"));
}

/// Input split at every byte gives the same result as one piece.
#[test]
fn byte_by_byte_feeding() {
    let mut session = session_with(policy());
    let input =
        "EHLO c.test\r\nMAIL FROM:<a@ext.test>\r\nRCPT TO:<bob@ourdom.test>\r\nDATA\r\nhi\r\n.\r\n";
    let mut events = Vec::new();
    for byte in input.as_bytes() {
        let fed = session.feed(std::slice::from_ref(byte));
        events.extend(opened(&mut session, fed));
    }
    assert_eq!(codes(&events), [250, 250, 250, 354]);
    assert_eq!(messages(&events).len(), 1);
}

/// A recipient of a verified domain that is not listed is handed out for
/// verification; the pipelined rest waits; each verdict gives its reply
/// (250, 550, 450) and only accepted recipients reach the message.
#[test]
fn verified_domain_asks_before_answering_rcpt() {
    use cutover_mail::{Event as E, Verdict};
    let policy = Policy::new("mx.relay.test")
        .relay("ourdom.test", ["alice"])
        .verified("ourdom.test");
    let mut session = session_with(policy);
    feed(
        &mut session,
        "EHLO client.test\r\nMAIL FROM:<s@ext.test>\r\n",
    );
    let events = feed(
        &mut session,
        "RCPT TO:<alice@ourdom.test>\r\nRCPT TO:<carol@ourdom.test>\r\n\
         RCPT TO:<mallory@ourdom.test>\r\nRCPT TO:<dave@ourdom.test>\r\nDATA\r\n",
    );
    assert_eq!(codes(&events), [250], "alice is listed: 250 without asking");
    assert_eq!(
        events.last(),
        Some(&E::Verify("carol@ourdom.test".into())),
        "carol is asked about; nothing after her is processed yet: {events:?}"
    );
    let events = session.verified(Verdict::Accepted);
    assert_eq!(codes(&events), [250]);
    assert_eq!(
        events.last(),
        Some(&E::Verify("mallory@ourdom.test".into()))
    );
    let events = session.verified(Verdict::Rejected);
    assert_eq!(codes(&events), [550]);
    assert_eq!(events.last(), Some(&E::Verify("dave@ourdom.test".into())));
    let answer = session.verified(Verdict::Unknown);
    let mut events = opened(&mut session, answer);
    assert_eq!(
        codes(&events),
        [450, 354],
        "dave: try later; then DATA goes on"
    );
    events.extend(feed(&mut session, "Subject: x\r\n\r\nx\r\n.\r\n"));
    let message = messages(&events).pop().expect("the message is handed out");
    let to: Vec<&str> = message
        .envelope
        .recipients
        .iter()
        .map(|recipient| recipient.address.as_str())
        .collect();
    assert_eq!(
        to,
        ["alice@ourdom.test", "carol@ourdom.test"],
        "accepted only"
    );
}

/// A message is handed out as it arrives (RFC 5321 DATA streamed, never
/// whole in memory): each Data event is at most what was fed since the
/// last, and the pieces make the exact unstuffed content.
#[test]
fn message_data_is_streamed_as_it_arrives() {
    let mut session = in_transaction();
    let events = feed(&mut session, "RCPT TO:<alice@ourdom.test>\r\nDATA\r\n");
    assert_eq!(codes(&events), [250, 354]);
    let mut body = String::from("Subject: big\r\n\r\n");
    for number in 0..20_000 {
        body.push_str(&format!(".line {number:05} of a big message\r\n"));
    }
    let mut largest = 0;
    let mut all = events;
    for piece in body.as_bytes().chunks(4096) {
        let events = session.feed(piece);
        for event in &events {
            if let Event::Data(bytes) = event {
                largest = largest.max(bytes.len());
            }
        }
        all.extend(events);
    }
    all.extend(feed(&mut session, ".\r\n"));
    assert!(largest <= 4096, "a data event of {largest} octets");
    assert_eq!(all.last(), Some(&Event::Commit));
    let message = messages(&all).pop().expect("a message");
    let content = String::from_utf8(message.content).unwrap();
    let (received, rest) = content.split_at(content.find("Subject").unwrap());
    assert!(
        received.starts_with("Received: from client.test"),
        "{received}"
    );
    assert_eq!(
        rest,
        body.replace("\r\n.line", "\r\nline"),
        "unstuffed, whole"
    );
}

/// The spool cannot open a file: 452 4.3.1 when it is short of space,
/// 451 4.3.0 otherwise; no 354, the transaction is over, the session goes on.
#[test]
fn spool_refusing_a_file_is_452_or_451_at_data() {
    use cutover_mail::SpoolRefusal;
    for (refusal, expected) in [
        (SpoolRefusal::Full, "452 4.3.1"),
        (SpoolRefusal::Failed, "451 4.3.0"),
    ] {
        let mut session = in_transaction();
        let events = session.feed(b"RCPT TO:<alice@ourdom.test>\r\nDATA\r\n");
        assert_eq!(codes(&events), [250]);
        assert!(matches!(events.last(), Some(Event::Open(_))), "{events:?}");
        let events = session.opened(Err(refusal), now());
        assert_eq!(replies(&events).len(), 1, "{events:?}");
        assert!(
            replies(&events)[0].to_string().starts_with(expected),
            "{refusal:?}: {events:?}"
        );
        assert_eq!(
            codes(&feed(&mut session, "DATA\r\n")),
            [503],
            "no transaction left"
        );
        assert_eq!(
            codes(&feed(&mut session, "MAIL FROM:<a@ext.test>\r\n")),
            [250]
        );
    }
}

/// RFC 5321 §4.5.1: `RCPT TO:<postmaster>` goes to the configured
/// postmaster mailbox (550 when there is none), `postmaster@` a relayed
/// domain is accepted even when not listed, and a plain quoted local part
/// is the unquoted mailbox; none of it opens a relay.
#[test]
fn postmaster_and_plain_quoted_local_parts_are_accepted() {
    let mut with_postmaster = policy();
    with_postmaster.postmaster = Some(cutover_mail::address::Mailbox {
        local: "postmaster".into(),
        domain: "ourdom.test".into(),
    });
    let mut session = session_with(with_postmaster);
    feed(
        &mut session,
        "EHLO client.test\r\nMAIL FROM:<s@ext.test>\r\n",
    );
    let events = feed(
        &mut session,
        "RCPT TO:<PostMaster>\r\nRCPT TO:<postmaster@OurDom.test>\r\n\
         RCPT TO:<\"alice\"@ourdom.test>\r\nRCPT TO:<postmaster@ext.test>\r\n\
         RCPT TO:<\"postmaster\"@ext.test>\r\nRCPT TO:<\"bob@ext.test\"@ourdom.test>\r\n\
         DATA\r\nx\r\n.\r\n",
    );
    assert_eq!(
        codes(&events),
        [250, 250, 250, 550, 550, 550, 354],
        "{events:?}"
    );
    let message = messages(&events).pop().expect("a message");
    let to: Vec<&str> = message
        .envelope
        .recipients
        .iter()
        .map(|recipient| recipient.address.as_str())
        .collect();
    assert_eq!(
        to,
        [
            "postmaster@ourdom.test",
            "postmaster@ourdom.test",
            "alice@ourdom.test"
        ]
    );
    let mut session = in_transaction();
    let events = feed(&mut session, "RCPT TO:<postmaster>\r\n");
    assert_eq!(
        codes(&events),
        [550],
        "no postmaster configured: {events:?}"
    );
}

/// Under stress the session limits shrink as Postfix's: one junk command
/// (NOOP, RSET, VRFY, HELP) is free, and the second error ends the session.
/// Without stress a hundred are free.
#[test]
fn stress_shrinks_junk_and_error_limits() {
    let mut session = session_with(policy());
    feed(&mut session, "EHLO client.test\r\n");
    let events = feed(&mut session, &"NOOP\r\n".repeat(100));
    assert_eq!(
        codes(&events),
        [250; 100],
        "a hundred junk commands are free"
    );
    let events = feed(&mut session, &"RSET\r\n".repeat(12));
    assert_eq!(codes(&events).last(), Some(&421), "then each is an error");
    let mut session = session_with(policy());
    session.set_stressed(true);
    feed(&mut session, "EHLO client.test\r\n");
    assert_eq!(codes(&feed(&mut session, "NOOP\r\n")), [250]);
    assert_eq!(
        codes(&feed(&mut session, "NOOP\r\n")),
        [250],
        "an error, not yet fatal"
    );
    let events = feed(&mut session, "NOOP\r\n");
    assert_eq!(codes(&events), [250, 421], "{events:?}");
    assert!(session.is_closed());
    assert!(session.gave_up(), "closed for its errors");
    let mut quitting = session_with(policy());
    feed(&mut quitting, "EHLO client.test\r\nQUIT\r\n");
    assert!(
        quitting.is_closed() && !quitting.gave_up(),
        "QUIT is not giving up"
    );
    let mut session = session_with(policy());
    session.set_stressed(true);
    let events = feed(
        &mut session,
        "EHLO client.test\r\nMAIL FROM:<s@ext.test>\r\nRCPT TO:<x@ourdom.test>\r\nRCPT TO:<y@ourdom.test>\r\n",
    );
    assert_eq!(codes(&events), [250, 250, 550, 550, 421], "{events:?}");
}
