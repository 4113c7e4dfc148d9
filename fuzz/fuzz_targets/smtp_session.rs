//! Fuzzes the inbound SMTP session: any bytes, fed in chunks whose sizes
//! come from the input, with the spool answering Ok or Err and STARTTLS
//! "completing", and recipient verification answering Accepted, Rejected or
//! Unknown. It must not panic or hang, every reply must be well-formed wire
//! text, and every message handed to the spool must be for a known (or
//! verified) recipient of a relayed domain and hold no bare CR or LF.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use cutover_mail::{Admission, Event, Policy, Session, Verdict};
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

/// Checks the events and answers the ones that need an answer.
fn check(session: &mut Session, events: Vec<Event>, shape: u8, now: SystemTime) {
    let store_ok = shape & 0x80 == 0;
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
                Event::Message(message) => {
                    for recipient in &message.envelope.recipients {
                        let (local, domain) =
                            recipient.address.rsplit_once('@').expect("recipient has @");
                        assert!(
                            policy().admission(local, domain) != Admission::Unknown,
                            "relayed to {}",
                            recipient.address
                        );
                    }
                    assert!(!message.envelope.recipients.is_empty());
                    assert!(!has_bare_line_end(&message.content), "bare CR/LF spooled");
                    let outcome = if store_ok {
                        Ok("Q".to_string())
                    } else {
                        Err("disk".to_string())
                    };
                    next.extend(session.stored(outcome, now));
                }
                Event::Verify(address) => {
                    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
                    assert_eq!(domain, "asked.test", "verification outside a verified domain");
                    let verdict = match (shape >> 5) % 3 {
                        0 => Verdict::Accepted,
                        1 => Verdict::Rejected,
                        _ => Verdict::Unknown,
                    };
                    next.extend(session.verified(verdict, now));
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
    let chunk = usize::from(shape % 64) + 1;
    for piece in rest.chunks(chunk) {
        let events = session.feed(piece, now);
        check(&mut session, events, shape, now);
    }
});
