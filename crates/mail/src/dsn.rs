//! Delivery status notifications (RFC 3464): the failure report sent to the
//! sender when recipients fail for good, and the delay warning sent once
//! while they are still being retried. Pure: the caller spools the result.
//! A report returns the whole message only up to [`RETURNED`] octets (as
//! Postfix's `bounce_size_limit`); a larger one returns its headers.

use std::time::SystemTime;

use crate::envelope::{DsnReturn, Envelope, Notify, Recipient};
use crate::session::{rfc5322_date, Message};
use crate::spool::Spooled;

/// The largest message returned whole in a report, in octets.
pub const RETURNED: usize = 50_000;

/// Which kind of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Action: failed (5.x.x).
    Failed,
    /// Action: delayed (4.x.x), the message is still queued.
    Delayed,
}

/// Builds the report for `recipients` (indexes into the envelope) of
/// `spooled`, or None when nobody wants it: the null sender (never bounce a
/// bounce), NOTIFY=NEVER, or NOTIFY without this condition. `content` is
/// the message's content, or its first octets when `whole` is false (then
/// only its headers are returned).
pub fn report(
    spooled: &Spooled,
    content: &[u8],
    whole: bool,
    recipients: &[usize],
    kind: ReportKind,
    hostname: &str,
    now: SystemTime,
) -> Option<Message> {
    let envelope = &spooled.envelope;
    let (_, sender_domain) = envelope.sender.rsplit_once('@')?;
    let wanted: Vec<usize> = recipients
        .iter()
        .copied()
        .filter(|&index| {
            envelope
                .recipients
                .get(index)
                .is_some_and(|recipient| match kind {
                    ReportKind::Failed => recipient.notify.wants_failure(),
                    ReportKind::Delayed => recipient.notify.wants_delay(),
                })
        })
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let boundary = format!("{}/{}", spooled.id, hostname);
    let (subject, action, default_status, human) = match kind {
        ReportKind::Failed => (
            "Undelivered Mail Returned to Sender",
            "failed",
            "5.0.0",
            "Your message could not be delivered to the recipients below.",
        ),
        ReportKind::Delayed => (
            "Delayed Mail (still being retried)",
            "delayed",
            "4.0.0",
            "Your message has not been delivered yet; delivery is still being retried.",
        ),
    };
    let date = rfc5322_date(now);
    let mut text = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n\
         To: <{}>\r\nSubject: {subject}\r\nDate: {date}\r\n\
         Message-ID: <{}.{action}@{hostname}>\r\nAuto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"{boundary}\"\r\n\r\n\
         This is a MIME-encapsulated message.\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         This is the mail relay at {hostname}.\r\n{human}\r\n\r\n",
        one_line(&envelope.sender),
        spooled.id
    );
    for &index in &wanted {
        let error = spooled.statuses[index].last_error.as_deref().unwrap_or("");
        text.push_str(&format!(
            "<{}>: {}\r\n",
            one_line(&envelope.recipients[index].address),
            one_line(error)
        ));
    }
    text.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; {hostname}\r\n"
    ));
    if let Some(id) = &envelope.envelope_id {
        text.push_str(&format!("Original-Envelope-Id: {}\r\n", one_line(id)));
    }
    text.push_str(&format!(
        "Arrival-Date: {}\r\n",
        rfc5322_date(envelope.received)
    ));
    for &index in &wanted {
        let recipient = &envelope.recipients[index];
        let status = &spooled.statuses[index];
        let error = status.last_error.as_deref().unwrap_or("");
        text.push_str("\r\n");
        if let Some(original) = &recipient.original {
            text.push_str(&format!(
                "Original-Recipient: rfc822;{}\r\n",
                one_line(original)
            ));
        }
        text.push_str(&format!(
            "Final-Recipient: rfc822;{}\r\nAction: {action}\r\nStatus: {}\r\n",
            one_line(&recipient.address),
            enhanced_status(error).unwrap_or(default_status)
        ));
        if !error.is_empty() {
            text.push_str(&format!("Diagnostic-Code: smtp; {}\r\n", one_line(error)));
        }
        text.push_str(&format!("Last-Attempt-Date: {date}\r\n"));
    }
    let headers_only = envelope.dsn_return == Some(DsnReturn::Headers) || !whole;
    let original = if headers_only {
        let end = content
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map_or(content.len(), |position| position + 2);
        &content[..end]
    } else {
        content
    };
    let part_type = if headers_only {
        "text/rfc822-headers"
    } else {
        "message/rfc822"
    };
    text.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: {part_type}\r\n\r\n"
    ));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(original);
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Some(Message {
        envelope: Envelope {
            sender: String::new(),
            recipients: vec![Recipient {
                address: envelope.sender.clone(),
                domain: sender_domain.to_lowercase(),
                original: None,
                notify: Notify {
                    never: true,
                    ..Notify::default()
                },
            }],
            envelope_id: None,
            dsn_return: None,
            eight_bit: envelope.eight_bit,
            smtputf8: envelope.smtputf8,
            helo: hostname.to_string(),
            client: envelope.client,
            received: now,
        },
        content: bytes,
    })
}

/// `text` with every control character replaced by a space.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect()
}

/// The enhanced status code (`5.1.1`) in an SMTP error text, if any.
fn enhanced_status(error: &str) -> Option<&str> {
    error.split_whitespace().find(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..].iter().all(|part| {
                !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit())
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::{DeliveryState, RecipientStatus};

    /// A spooled message from s@ext.test to a@d.test (NOTIFY default).
    fn spooled() -> Spooled {
        Spooled {
            id: "ID1".into(),
            envelope: Envelope {
                sender: "s@ext.test".into(),
                recipients: vec![Recipient {
                    address: "a@d.test".into(),
                    domain: "d.test".into(),
                    original: None,
                    notify: Notify::default(),
                }],
                envelope_id: None,
                dsn_return: None,
                eight_bit: false,
                smtputf8: false,
                helo: "c.test".into(),
                client: "192.0.2.1".parse().unwrap(),
                received: SystemTime::UNIX_EPOCH,
            },
            statuses: vec![RecipientStatus {
                state: DeliveryState::Failed,
                attempts: 1,
                next_attempt: SystemTime::UNIX_EPOCH,
                last_error: Some("550 5.1.1 no such user".into()),
            }],
            held: false,
            warned: false,
            size: 0,
        }
    }

    /// A message within the limit is returned whole; one read only in part
    /// (larger than the limit) is returned as its headers.
    #[test]
    fn large_messages_are_returned_as_headers() {
        let content = b"Subject: x\r\n\r\nthe body\r\n";
        let report = report(
            &spooled(),
            content,
            true,
            &[0],
            ReportKind::Failed,
            "mx.test",
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        let text = String::from_utf8(report.content).unwrap();
        assert!(
            text.contains("message/rfc822") && text.contains("the body"),
            "{text}"
        );
        let report = report_of(content);
        assert!(
            report.contains("text/rfc822-headers")
                && report.contains("Subject: x")
                && !report.contains("the body"),
            "{report}"
        );
    }

    /// The report of a message read only in part.
    fn report_of(content: &[u8]) -> String {
        let report = report(
            &spooled(),
            content,
            false,
            &[0],
            ReportKind::Failed,
            "mx.test",
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        String::from_utf8(report.content).unwrap()
    }
}
