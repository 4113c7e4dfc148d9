//! Fuzzes the inbound SMTP session: any bytes, fed in chunks whose sizes
//! come from the input, with the spool opening and storing Ok or Err and
//! STARTTLS "completing", and recipient verification answering Accepted,
//! Rejected or Unknown. It must not panic or hang, every reply must be
//! well-formed wire text, and every message committed to the spool must be
//! for a known (or verified) recipient of a relayed domain and hold no bare
//! CR or LF.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use cutover_mail::{Admission, Event, Policy, Session, SpoolRefusal, Verdict};
use libfuzzer_sys::fuzz_target;

/// The policy: ourdom.test with alice and bob, small limits, TLS offered.
fn policy() -> Arc<Policy> {
    static POLICY: OnceLock<Arc<Policy>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let mut policy = Policy::new("mx.relay.test")
                .relay("ourdom.test", ["alice", "bob"])
                .verified("asked.test");
            policy.tls_available = true;
            policy.max_message_size = 4096;
            policy.max_recipients = 4;
            Arc::new(policy)
        })
        .clone()
}

/// Whether `bytes` holds a CR not followed by LF or a LF not preceded by CR.
fn has_bare_line_end(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(index, &byte)| {
        (byte == b'\r' && bytes.get(index + 1) != Some(&b'\n'))
            || (byte == b'\n' && (index == 0 || bytes[index - 1] != b'\r'))
    })
}

/// Checks the events and answers the ones that need an answer; `open` is
/// the content of the message being received, if any.
fn check(
    session: &mut Session,
    events: Vec<Event>,
    shape: u8,
    now: SystemTime,
    open: &mut Option<Vec<u8>>,
) {
    let store_ok = shape & 0x80 == 0;
    let open_ok = shape & 0x10 == 0;
    let mut pending = events;
    while !pending.is_empty() {
        let mut next = Vec::new();
        for event in pending {
            match event {
                Event::Reply(reply) => {
                    assert!((200..600).contains(&reply.code), "bad code {}", reply.code);
                    let wire = reply.to_wire();
                    assert!(
                        wire.ends_with(b"\r\n") && !has_bare_line_end(&wire),
                        "bad reply {wire:?}"
                    );
                }
                Event::Open(envelope) => {
                    for recipient in &envelope.recipients {
                        let (local, domain) =
                            recipient.address.rsplit_once('@').expect("recipient has @");
                        assert!(
                            policy().admission(local, domain) != Admission::Unknown,
                            "relayed to {}",
                            recipient.address
                        );
                    }
                    assert!(!envelope.recipients.is_empty());
                    assert!(open.is_none(), "a message opened inside another");
                    if open_ok {
                        *open = Some(Vec::new());
                        next.extend(session.opened(Ok(()), now));
                    } else {
                        next.extend(session.opened(Err(SpoolRefusal::Failed), now));
                    }
                }
                Event::Data(bytes) => open
                    .as_mut()
                    .expect("data without an open message")
                    .extend_from_slice(&bytes),
                Event::Discard => *open = None,
                Event::Commit => {
                    let content = open.take().expect("commit without an open message");
                    assert!(!has_bare_line_end(&content), "bare CR/LF spooled");
                    let outcome = if store_ok {
                        Ok("Q".to_string())
                    } else {
                        Err("disk".to_string())
                    };
                    next.extend(session.stored(outcome));
                }
                Event::Verify(address) => {
                    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
                    assert_eq!(
                        domain, "asked.test",
                        "verification outside a verified domain"
                    );
                    let verdict = match (shape >> 5) % 3 {
                        0 => Verdict::Accepted,
                        1 => Verdict::Rejected,
                        _ => Verdict::Unknown,
                    };
                    next.extend(session.verified(verdict));
                }
                Event::StartTls => session.tls_started(),
                Event::Close => {}
            }
        }
        pending = next;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_323_045);
    let mut session = Session::new(policy(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), false);
    let chunk = usize::from(shape % 16) + 1;
    let mut open = None;
    for piece in rest.chunks(chunk) {
        let events = session.feed(piece);
        check(&mut session, events, shape, now, &mut open);
    }
});
