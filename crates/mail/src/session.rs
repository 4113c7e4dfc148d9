//! The inbound SMTP session: a pure state machine fed bytes, producing
//! replies and events. It holds no socket and reads no clock; the server
//! passes the time in and carries the events out.
//!
//! ```text
//!  greeting ─► Fresh ─EHLO/HELO─► Ready ─MAIL─► Mail ─RCPT─► Mail ─DATA─► Data
//!                ▲                  ▲ ▲                                    │
//!                └──── TLS up ──────┘ └──── stored(Ok → 250 | Err → 451) ◄─┘
//!   STARTTLS: reply 220, drop every byte pipelined after it, Event::StartTls,
//!             wait for tls_started(); the session then starts over (RFC 3207).
//!   DATA:     Event::Open (the envelope), wait for opened(): the server
//!             creates the spool file first, so 354 is only sent once there
//!             is a place to stream to (else 451, or 452 when disk is short).
//!   data:     Event::Data with the content as it arrives (never the whole
//!             message in memory), our Received header first.
//!   DATA end: Event::Commit, wait for stored(): the 250 is only sent once
//!             the server says the message is on disk. A refused message
//!             (smuggling, size, hops) is Event::Discard and its 5xx.
//!   RCPT in a verified domain (not listed): Event::Verify, wait for
//!             verified(): 250, 550 or 450 as the destination (or the memory
//!             of it) says; pipelined input waits meanwhile.
//! ```
//!
//! Refused at RCPT with 5xx: every open-relay trick (see [`crate::address`]),
//! other domains, unknown recipients (no backscatter). `RCPT TO:<postmaster>`
//! (RFC 5321 §4.5.1) is the policy's postmaster, a fixed mailbox of a
//! relayed domain, and `postmaster@` every relayed domain is accepted.
//! Under stress (the server says so) the limits shrink as in Postfix's
//! stress mode: one junk command (NOOP, RSET, VRFY, HELP) and the second
//! error end the session. Refused with 500/501:
//! command lines with bare CR, bare LF or NUL; parameters whose decoded value
//! holds a control character (ORCPT, ENVID). Refused at the end of data:
//! bare CR/LF (SMTP smuggling), too large, lines too long, too many hops.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use smtp_proto::Request;

use crate::address::{has_control, is_postmaster, parse_forward_path, raw_path, PathRefusal};
use crate::data::DataReader;
use crate::envelope::{DsnReturn, Envelope, Notify, Recipient};
use crate::policy::{Admission, Policy};
use crate::reply::Reply;

mod refusal;

use refusal::{flaw_refusal, parse_refusal, path_refusal};

/// What the session asks of the server, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Write this reply to the client.
    Reply(Reply),
    /// Replies so far written, start the TLS handshake now, then call
    /// [`Session::tls_started`]. Every byte the server read but did not
    /// feed yet must be discarded too.
    StartTls,
    /// Open a spool file for a message with this envelope, then call
    /// [`Session::opened`].
    Open(Box<Envelope>),
    /// Append this content (unstuffed, CRLF line ends) to the open message.
    Data(Vec<u8>),
    /// The message is complete: make it durable, then call [`Session::stored`].
    Commit,
    /// The message is refused: drop what was written of it.
    Discard,
    /// Ask the destination whether this recipient (`local@domain`) exists,
    /// then call [`Session::verified`].
    Verify(String),
    /// Write the replies so far, then close the connection.
    Close,
}

/// A complete message in memory, for the spool's [`crate::Spool::store`]
/// (delivery status notifications; received mail is streamed instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its envelope.
    pub envelope: Envelope,
    /// Its content, CRLF line ends, our Received header first.
    pub content: Vec<u8>,
}

/// Where the session stands.
#[derive(Debug)]
enum Phase {
    /// Greeted, no EHLO/HELO yet (or again, after STARTTLS).
    Fresh,
    /// EHLO/HELO done, no transaction.
    Ready,
    /// MAIL accepted; recipients being collected.
    Mail,
    /// DATA accepted; waiting for [`Session::opened`].
    Opening,
    /// Reading message data.
    Data(DataReader),
    /// The message was handed out; waiting for [`Session::stored`].
    Storing,
    /// A recipient is being verified; waiting for [`Session::verified`].
    Verifying(Recipient),
    /// STARTTLS accepted; waiting for [`Session::tls_started`].
    StartingTls,
    /// The session is over; nothing more is read.
    Closed,
}

/// What the relay learned of a recipient it verified with the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The destination takes it (now, or the last time it was asked): 250.
    Accepted,
    /// The destination refuses it (now, or the last time it was asked): 550.
    Rejected,
    /// The destination cannot be asked and never was: 450, try later.
    Unknown,
}

/// Why the spool could not open a file for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolRefusal {
    /// Too little free space for a message of the largest size: 452 4.3.1.
    Full,
    /// Any other storage failure: 451 4.3.0.
    Failed,
}

/// The transaction being built between MAIL and the end of DATA.
#[derive(Debug, Default)]
struct Transaction {
    /// The reverse path.
    sender: String,
    /// RFC 3461 ENVID.
    envelope_id: Option<String>,
    /// RFC 3461 RET.
    dsn_return: Option<DsnReturn>,
    /// BODY=8BITMIME.
    eight_bit: bool,
    /// SMTPUTF8.
    smtputf8: bool,
    /// Accepted recipients.
    recipients: Vec<Recipient>,
}

/// One inbound SMTP session.
#[derive(Debug)]
pub struct Session {
    /// The acceptance policy.
    policy: Arc<Policy>,
    /// The client's address.
    client: IpAddr,
    /// The EHLO/HELO name and whether it was EHLO.
    helo: Option<(String, bool)>,
    /// Whether the connection is under TLS.
    tls: bool,
    /// Where the session stands.
    phase: Phase,
    /// The transaction in progress.
    transaction: Transaction,
    /// Bytes received and not yet processed.
    input: Vec<u8>,
    /// Whether the rest of an overlong command line is being dropped.
    discarding: bool,
    /// Protocol errors so far.
    errors: usize,
    /// Junk commands (NOOP, RSET, VRFY, HELP) since the last message.
    junk: usize,
    /// Whether the server is under stress (smaller limits).
    stressed: bool,
    /// Whether the session was closed for too many errors.
    gave_up: bool,
}

impl Session {
    /// A new session with `client`; `tls` when the connection is TLS already.
    pub fn new(policy: Arc<Policy>, client: IpAddr, tls: bool) -> Self {
        Session {
            policy,
            client,
            helo: None,
            tls,
            phase: Phase::Fresh,
            transaction: Transaction::default(),
            input: Vec::new(),
            discarding: false,
            errors: 0,
            junk: 0,
            stressed: false,
            gave_up: false,
        }
    }

    /// The 220 greeting to send first.
    pub fn greeting(&self) -> Reply {
        Reply::plain(220, vec![format!("{} ESMTP cutover", self.policy.hostname)])
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the session was closed for too many errors (junk commands
    /// past their limit count as errors).
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// Whether the session is reading message data (for the data timeout).
    pub fn in_data(&self) -> bool {
        matches!(self.phase, Phase::Data(_))
    }

    /// Whether the server is under stress: one junk command and the second
    /// error end the session (Postfix's stress-mode limits).
    pub fn set_stressed(&mut self, stressed: bool) {
        self.stressed = stressed;
    }

    /// Feeds bytes from the client.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        if matches!(self.phase, Phase::Closed | Phase::StartingTls) {
            return Vec::new();
        }
        self.input.extend_from_slice(bytes);
        if matches!(
            self.phase,
            Phase::Storing | Phase::Verifying(_) | Phase::Opening
        ) {
            return Vec::new();
        }
        self.run()
    }

    /// The spool's answer to [`Event::Open`]: Ok sends 354 and our Received
    /// header as the first data; a refusal sends 451 or 452 and ends the
    /// transaction. `now` is the message's arrival time.
    pub fn opened(&mut self, outcome: Result<(), SpoolRefusal>, now: SystemTime) -> Vec<Event> {
        if !matches!(self.phase, Phase::Opening) {
            return Vec::new();
        }
        let mut events = Vec::new();
        match outcome {
            Ok(()) => {
                self.phase = Phase::Data(DataReader::new(
                    self.policy.max_message_size,
                    self.policy.max_data_line,
                ));
                let (helo, _) = self.helo.clone().unwrap_or_default();
                let received = self.received_header(&helo, self.transaction.smtputf8, now);
                events.push(Event::Reply(Reply::new(
                    354,
                    "",
                    "End data with <CR><LF>.<CR><LF>",
                )));
                events.push(Event::Data(received.into_bytes()));
            }
            Err(refusal) => {
                self.transaction = Transaction::default();
                self.phase = Phase::Ready;
                events.push(Event::Reply(match refusal {
                    SpoolRefusal::Full => Reply::new(452, "4.3.1", "Insufficient system storage"),
                    SpoolRefusal::Failed => {
                        Reply::new(451, "4.3.0", "Temporary storage failure, try again later")
                    }
                }));
            }
        }
        events.extend(self.run());
        events
    }

    /// The spool's answer for the message committed: `Ok(queue id)` sends
    /// 250, `Err` sends 451. Processing of pipelined input resumes.
    pub fn stored(&mut self, outcome: Result<String, String>) -> Vec<Event> {
        if !matches!(self.phase, Phase::Storing) {
            return Vec::new();
        }
        let reply = match outcome {
            Ok(id) => {
                self.junk = 0;
                Reply::new(250, "2.0.0", format!("Ok: queued as {id}"))
            }
            Err(_) => Reply::new(451, "4.3.0", "Temporary storage failure, try again later"),
        };
        self.transaction = Transaction::default();
        self.phase = Phase::Ready;
        let mut events = vec![Event::Reply(reply)];
        events.extend(self.run());
        events
    }

    /// The answer to [`Event::Verify`]: 250, 550 or 450 for the recipient,
    /// then processing of pipelined input resumes.
    pub fn verified(&mut self, verdict: Verdict) -> Vec<Event> {
        let Phase::Verifying(recipient) = std::mem::replace(&mut self.phase, Phase::Mail) else {
            return Vec::new();
        };
        let reply = match verdict {
            Verdict::Accepted => {
                self.transaction.recipients.push(recipient);
                Event::Reply(Reply::new(250, "2.1.5", "Ok"))
            }
            Verdict::Rejected => self.error(Reply::new(
                550,
                "5.1.1",
                "Recipient address rejected: unknown user",
            )),
            Verdict::Unknown => Event::Reply(Reply::new(
                450,
                "4.1.1",
                "Recipient cannot be verified now, try again later",
            )),
        };
        let mut events = vec![reply];
        events.extend(self.run());
        events
    }

    /// The TLS handshake succeeded: the session starts over under TLS.
    pub fn tls_started(&mut self) {
        if matches!(self.phase, Phase::StartingTls) {
            self.tls = true;
            self.helo = None;
            self.transaction = Transaction::default();
            self.input.clear();
            self.phase = Phase::Fresh;
        }
    }

    /// A timeout or shutdown: the 421 to send before closing.
    pub fn abort(&mut self, reason: &str) -> Reply {
        self.phase = Phase::Closed;
        Reply::new(421, "4.4.2", format!("{} {reason}", self.policy.hostname))
    }

    /// Processes buffered input until it runs out or the session must wait.
    fn run(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let mut position = 0;
        loop {
            match &mut self.phase {
                Phase::Closed
                | Phase::Storing
                | Phase::StartingTls
                | Phase::Verifying(_)
                | Phase::Opening => break,
                Phase::Data(reader) => {
                    let (used, ended) = reader.ingest(&self.input[position..]);
                    position += used;
                    let content = reader.take();
                    if !content.is_empty() {
                        events.push(Event::Data(content));
                    }
                    if !ended {
                        break;
                    }
                    events.extend(self.end_of_data());
                }
                _ => {
                    let rest = &self.input[position..];
                    let Some(end) = rest.iter().position(|&byte| byte == b'\n') else {
                        if rest.len() > self.policy.max_command_line {
                            position = self.input.len();
                            self.discarding = true;
                            events.push(self.error(Reply::new(500, "5.5.6", "Line too long")));
                        }
                        break;
                    };
                    let line = rest[..=end].to_vec();
                    position += end + 1;
                    if std::mem::take(&mut self.discarding) {
                        continue;
                    }
                    if line.len() > self.policy.max_command_line {
                        events.push(self.error(Reply::new(500, "5.5.6", "Line too long")));
                        continue;
                    }
                    let event = self.command(&line);
                    let starting_tls = matches!(self.phase, Phase::StartingTls);
                    events.push(event);
                    if starting_tls {
                        // RFC 3207 §4.2 / CVE-2011-0411: nothing pipelined
                        // after STARTTLS may survive into the TLS session.
                        position = self.input.len();
                        events.push(Event::StartTls);
                    }
                }
            }
            if self.errors >= self.error_limit() && !self.is_closed() {
                self.phase = Phase::Closed;
                self.gave_up = true;
                events.push(Event::Reply(Reply::new(
                    421,
                    "4.7.0",
                    "Too many errors, closing connection",
                )));
            }
            if self.is_closed() {
                break;
            }
        }
        self.input.drain(..position.min(self.input.len()));
        if self.is_closed() {
            self.input.clear();
            events.push(Event::Close);
        }
        events
    }

    /// Counts a protocol error and returns its reply as an event.
    fn error(&mut self, reply: Reply) -> Event {
        self.errors += 1;
        Event::Reply(reply)
    }

    /// The errors that end the session: the policy's, two under stress.
    fn error_limit(&self) -> usize {
        if self.stressed {
            self.policy.max_errors.min(2)
        } else {
            self.policy.max_errors
        }
    }

    /// Counts a junk command; past the limit (the policy's, one under
    /// stress) each counts as an error too. Returns its reply as an event.
    fn junk(&mut self, reply: Reply) -> Event {
        self.junk += 1;
        let limit = if self.stressed {
            self.policy.max_junk.min(1)
        } else {
            self.policy.max_junk
        };
        if self.junk > limit {
            return self.error(reply);
        }
        Event::Reply(reply)
    }

    /// Handles one command line (CRLF included).
    fn command(&mut self, line: &[u8]) -> Event {
        let body = &line[..line.len() - 1];
        let Some(body) = body.strip_suffix(b"\r") else {
            return self.error(Reply::new(
                500,
                "5.5.2",
                "Bare LF in command, CRLF required",
            ));
        };
        if body.iter().any(|&byte| byte == b'\r' || byte == 0) {
            return self.error(Reply::new(500, "5.5.2", "Bare CR or NUL in command"));
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return self.error(Reply::new(500, "5.5.2", "Command is not UTF-8"));
        };
        match Request::parse(&mut line.iter()) {
            Ok(request) => self.request(request, text),
            Err(error) => {
                let reply = parse_refusal(&error);
                self.error(reply)
            }
        }
    }

    /// Handles one parsed request; `text` is its line without CRLF.
    fn request(&mut self, request: Request<std::borrow::Cow<'_, str>>, text: &str) -> Event {
        match request {
            Request::Ehlo { host } => self.hello(&host, true),
            Request::Helo { host } => self.hello(&host, false),
            Request::Lhlo { .. } => self.error(Reply::new(500, "5.5.1", "LHLO is for LMTP")),
            Request::StartTls => self.start_tls(text),
            Request::Mail { from } => self.mail(from, text),
            Request::Rcpt { to } => self.recipient(to, text),
            Request::Data => self.data(),
            Request::Rset => {
                if !matches!(self.phase, Phase::Fresh) {
                    self.phase = Phase::Ready;
                }
                self.transaction = Transaction::default();
                self.junk(Reply::new(250, "2.0.0", "Ok"))
            }
            Request::Noop { .. } => self.junk(Reply::new(250, "2.0.0", "Ok")),
            Request::Quit => {
                self.phase = Phase::Closed;
                Event::Reply(Reply::new(221, "2.0.0", "Bye"))
            }
            Request::Vrfy { .. } => self.junk(Reply::new(
                252,
                "2.5.2",
                "Cannot VRFY, send some mail and we will see",
            )),
            Request::Help { .. } => self.junk(Reply::new(
                214,
                "2.0.0",
                "See RFC 5321; this is a backup MX relaying for its domains",
            )),
            Request::Bdat { .. } => {
                // Not advertised: the chunk that follows would be read as
                // commands, so the session ends instead.
                self.phase = Phase::Closed;
                Event::Reply(Reply::new(503, "5.5.1", "CHUNKING not offered, closing"))
            }
            Request::Expn { .. }
            | Request::Auth { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                self.error(Reply::new(502, "5.5.1", "Command not implemented"))
            }
        }
    }

    /// EHLO or HELO: records the name and resets any transaction.
    fn hello(&mut self, host: &str, extended: bool) -> Event {
        let valid = !host.is_empty()
            && host.len() <= 255
            && host
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || "-.[]:_".contains(character));
        if !valid {
            return self.error(Reply::new(501, "5.5.4", "Invalid EHLO/HELO name"));
        }
        self.helo = Some((host.to_string(), extended));
        self.transaction = Transaction::default();
        self.phase = Phase::Ready;
        let first = format!("{} greets {host}", self.policy.hostname);
        if !extended {
            return Event::Reply(Reply::plain(250, vec![first]));
        }
        let mut lines = vec![
            first,
            "PIPELINING".to_string(),
            format!("SIZE {}", self.policy.max_message_size),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "DSN".to_string(),
        ];
        if self.policy.tls_available && !self.tls {
            lines.push("STARTTLS".to_string());
        }
        Event::Reply(Reply::plain(250, lines))
    }

    /// STARTTLS: accepted once, before a transaction, without arguments.
    fn start_tls(&mut self, text: &str) -> Event {
        if !self.policy.tls_available {
            return self.error(Reply::new(502, "5.5.1", "STARTTLS not offered"));
        }
        if self.tls {
            return self.error(Reply::new(503, "5.5.1", "TLS already active"));
        }
        if text.trim_end().len() != "STARTTLS".len() {
            return self.error(Reply::new(501, "5.5.4", "STARTTLS takes no arguments"));
        }
        if matches!(self.phase, Phase::Mail) {
            return self.error(Reply::new(503, "5.5.1", "STARTTLS inside a transaction"));
        }
        self.phase = Phase::StartingTls;
        Event::Reply(Reply::new(220, "2.0.0", "Ready to start TLS"))
    }

    /// MAIL FROM: checks order, parameters and size, opens a transaction.
    fn mail(&mut self, from: smtp_proto::MailFrom<std::borrow::Cow<'_, str>>, text: &str) -> Event {
        match self.phase {
            Phase::Fresh => return self.error(Reply::new(503, "5.5.1", "Send EHLO/HELO first")),
            Phase::Mail => return self.error(Reply::new(503, "5.5.1", "Nested MAIL command")),
            _ => {}
        }
        let unsupported = smtp_proto::MAIL_BODY_BINARYMIME
            | smtp_proto::MAIL_REQUIRETLS
            | smtp_proto::MAIL_CONPERM
            | smtp_proto::MAIL_BY_NOTIFY
            | smtp_proto::MAIL_BY_RETURN
            | smtp_proto::MAIL_BY_TRACE;
        if from.flags & unsupported != 0
            || from.trans_id.is_some()
            || from.mtrk.is_some()
            || from.auth.is_some()
            || from.solicit.is_some()
            || from.hold_for != 0
            || from.hold_until != 0
            || from.mt_priority != 0
        {
            return self.error(Reply::new(555, "5.5.4", "Unsupported MAIL parameter"));
        }
        let smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
        let raw = raw_path(text).unwrap_or_default();
        if has_control(&from.address) || has_control(raw) {
            return self.error(Reply::new(501, "5.1.7", "Control character in sender"));
        }
        if !smtputf8 && !from.address.is_ascii() {
            return self.error(Reply::new(553, "5.6.7", "Non-ASCII sender needs SMTPUTF8"));
        }
        if let Some(id) = &from.env_id {
            if has_control(id) || !id.is_ascii() || id.len() > 100 {
                return self.error(Reply::new(501, "5.5.4", "Invalid ENVID parameter"));
            }
        }
        if from.size > self.policy.max_message_size {
            return Event::Reply(Reply::new(552, "5.3.4", "Message size exceeds fixed limit"));
        }
        self.transaction = Transaction {
            sender: from.address.into_owned(),
            envelope_id: from.env_id.map(|id| id.into_owned()),
            dsn_return: if from.flags & smtp_proto::MAIL_RET_FULL != 0 {
                Some(DsnReturn::Full)
            } else if from.flags & smtp_proto::MAIL_RET_HDRS != 0 {
                Some(DsnReturn::Headers)
            } else {
                None
            },
            eight_bit: from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0,
            smtputf8,
            recipients: Vec::new(),
        };
        self.phase = Phase::Mail;
        Event::Reply(Reply::new(250, "2.1.0", "Ok"))
    }

    /// RCPT TO: the relay and backscatter checks.
    fn recipient(
        &mut self,
        to: smtp_proto::RcptTo<std::borrow::Cow<'_, str>>,
        text: &str,
    ) -> Event {
        if !matches!(self.phase, Phase::Mail) {
            return self.error(Reply::new(503, "5.5.1", "Need MAIL before RCPT"));
        }
        if to.flags
            & (smtp_proto::RCPT_CONNEG
                | smtp_proto::RCPT_RRVS_REJECT
                | smtp_proto::RCPT_RRVS_CONTINUE)
            != 0
            || to.rrvs != 0
        {
            return self.error(Reply::new(555, "5.5.4", "Unsupported RCPT parameter"));
        }
        if let Some(original) = &to.orcpt {
            if has_control(original) || original.len() > 500 {
                return self.error(Reply::new(501, "5.5.4", "Invalid ORCPT parameter"));
            }
        }
        if self.transaction.recipients.len() >= self.policy.max_recipients {
            return Event::Reply(Reply::new(452, "4.5.3", "Too many recipients"));
        }
        let Some(raw) = raw_path(text) else {
            return self.error(Reply::new(501, "5.5.4", "Syntax: RCPT TO:<address>"));
        };
        if has_control(raw) {
            return self.error(Reply::new(501, "5.1.3", "Control character in recipient"));
        }
        let parsed = if is_postmaster(raw) {
            // RFC 5321 §4.5.1: the relay's own postmaster, a fixed mailbox.
            self.policy
                .postmaster
                .clone()
                .ok_or(PathRefusal::Empty(raw.to_string()))
        } else {
            parse_forward_path(raw, self.transaction.smtputf8)
        };
        let mailbox = match parsed {
            Ok(mailbox) => mailbox,
            Err(refusal) => return self.error(path_refusal(&refusal)),
        };
        if !self.policy.relays(&mailbox.domain) {
            return self.error(Reply::new(550, "5.7.1", "Relay access denied"));
        }
        let admission = self.policy.admission(&mailbox.local, &mailbox.domain);
        if admission == Admission::Unknown {
            return self.error(Reply::new(
                550,
                "5.1.1",
                "Recipient address rejected: unknown user",
            ));
        }
        let flags = to.flags;
        let recipient = Recipient {
            address: format!("{}@{}", mailbox.local, mailbox.domain),
            domain: mailbox.domain,
            original: to.orcpt.map(|original| original.into_owned()),
            notify: Notify {
                success: flags & smtp_proto::RCPT_NOTIFY_SUCCESS != 0,
                failure: flags & smtp_proto::RCPT_NOTIFY_FAILURE != 0,
                delay: flags & smtp_proto::RCPT_NOTIFY_DELAY != 0,
                never: flags & smtp_proto::RCPT_NOTIFY_NEVER != 0,
            },
        };
        if admission == Admission::Verify {
            let address = recipient.address.clone();
            self.phase = Phase::Verifying(recipient);
            return Event::Verify(address);
        }
        self.transaction.recipients.push(recipient);
        Event::Reply(Reply::new(250, "2.1.5", "Ok"))
    }

    /// DATA: needs at least one accepted recipient.
    fn data(&mut self) -> Event {
        if !matches!(self.phase, Phase::Mail) {
            return self.error(Reply::new(503, "5.5.1", "Need MAIL before DATA"));
        }
        if self.transaction.recipients.is_empty() {
            return self.error(Reply::new(554, "5.5.1", "No valid recipients"));
        }
        self.phase = Phase::Opening;
        let (helo, _) = self.helo.clone().unwrap_or_default();
        let transaction = &self.transaction;
        Event::Open(Box::new(Envelope {
            sender: transaction.sender.clone(),
            recipients: transaction.recipients.clone(),
            envelope_id: transaction.envelope_id.clone(),
            dsn_return: transaction.dsn_return,
            eight_bit: transaction.eight_bit,
            smtputf8: transaction.smtputf8,
            helo,
            client: self.client,
            // The server dates it when the file is open.
            received: SystemTime::UNIX_EPOCH,
        }))
    }

    /// The end-of-data line was read: refuse the message (its file is
    /// dropped) or commit it.
    fn end_of_data(&mut self) -> Vec<Event> {
        let Phase::Data(reader) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            unreachable!("end_of_data is only called in the Data phase");
        };
        let hops = reader.hops();
        let refusal = match reader.finish() {
            Err(flaw) => Some(flaw_refusal(flaw)),
            Ok(()) if hops > self.policy.max_hops => Some(Reply::new(
                554,
                "5.4.6",
                "Too many hops, mail loop suspected",
            )),
            Ok(()) => None,
        };
        if let Some(reply) = refusal {
            self.transaction = Transaction::default();
            return vec![Event::Discard, Event::Reply(reply)];
        }
        self.phase = Phase::Storing;
        vec![Event::Commit]
    }

    /// Our Received header (RFC 5321 §4.4), with the protocol of RFC 3848/6531.
    fn received_header(&self, helo: &str, smtputf8: bool, now: SystemTime) -> String {
        let extended = self.helo.as_ref().is_some_and(|(_, extended)| *extended);
        let protocol = match (smtputf8, extended, self.tls) {
            (true, _, true) => "UTF8SMTPS",
            (true, _, false) => "UTF8SMTP",
            (false, true, true) => "ESMTPS",
            (false, true, false) => "ESMTP",
            (false, false, true) => "SMTPS",
            (false, false, false) => "SMTP",
        };
        format!(
            "Received: from {helo} ([{}])\r\n\tby {} (cutover) with {protocol};\r\n\t{}\r\n",
            self.client,
            self.policy.hostname,
            rfc5322_date(now)
        )
    }
}

/// `now` as an RFC 5322 date in UTC.
pub fn rfc5322_date(now: SystemTime) -> String {
    match jiff::Timestamp::try_from(now) {
        Ok(timestamp) => timestamp
            .strftime("%a, %d %b %Y %H:%M:%S +0000")
            .to_string(),
        Err(_) => "Thu, 01 Jan 1970 00:00:00 +0000".to_string(),
    }
}
