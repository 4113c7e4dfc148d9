//! The envelope of a message: who sent it, to whom, and the ESMTP
//! parameters (DSN, body type, SMTPUTF8) that travel with it.

use std::net::IpAddr;
use std::time::SystemTime;

/// The envelope of one accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path, empty for the null sender `<>` (bounces).
    pub sender: String,
    /// The accepted recipients, in the order given.
    pub recipients: Vec<Recipient>,
    /// The DSN envelope identifier (RFC 3461 ENVID), decoded.
    pub envelope_id: Option<String>,
    /// What a DSN returns of the message (RFC 3461 RET).
    pub dsn_return: Option<DsnReturn>,
    /// Whether the body was declared 8BITMIME.
    pub eight_bit: bool,
    /// Whether SMTPUTF8 was requested (RFC 6531).
    pub smtputf8: bool,
    /// The client's EHLO/HELO name.
    pub helo: String,
    /// The client's address.
    pub client: IpAddr,
    /// When the message was accepted.
    pub received: SystemTime,
}

/// One recipient of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The forward path `local@domain`, as sent.
    pub address: String,
    /// The domain, lower case: the delivery destination is chosen by it.
    pub domain: String,
    /// The original recipient (RFC 3461 ORCPT, type rfc822), decoded.
    pub original: Option<String>,
    /// The DSN NOTIFY conditions.
    pub notify: Notify,
}

/// RFC 3461 RET: what a DSN carries of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnReturn {
    /// The whole message.
    Full,
    /// The headers only.
    Headers,
}

/// RFC 3461 NOTIFY conditions; none set means the default (failure, delay).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notify {
    /// NOTIFY=SUCCESS.
    pub success: bool,
    /// NOTIFY=FAILURE.
    pub failure: bool,
    /// NOTIFY=DELAY.
    pub delay: bool,
    /// NOTIFY=NEVER.
    pub never: bool,
}

impl Notify {
    /// Whether a failure DSN is wanted (explicitly, or by default).
    pub fn wants_failure(&self) -> bool {
        !self.never && (self.failure || !(self.success || self.delay))
    }

    /// Whether a delay warning is wanted (explicitly, or by default).
    pub fn wants_delay(&self) -> bool {
        !self.never && (self.delay || !(self.success || self.failure))
    }
}
