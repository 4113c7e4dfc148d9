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
//!   DATA end: Event::Message, wait for stored(): the 250 is only sent once
//!             the server says the message is on disk.
//!   RCPT in a verified domain (not listed): Event::Verify, wait for
//!             verified(): 250, 550 or 450 as the destination (or the memory
//!             of it) says; pipelined input waits meanwhile.
//! ```
//!
//! Refused at RCPT with 5xx: every open-relay trick (see [`crate::address`]),
//! other domains, unknown recipients (no backscatter). Refused with 500/501:
//! command lines with bare CR, bare LF or NUL; parameters whose decoded value
//! holds a control character (ORCPT, ENVID). Refused at the end of data:
//! bare CR/LF (SMTP smuggling), too large, lines too long, too many hops.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use smtp_proto::Request;

use crate::address::{has_control, parse_forward_path, raw_path};
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
    /// Store this message durably, then call [`Session::stored`].
    Message(Box<Message>),
    /// Ask the destination whether this recipient (`local@domain`) exists,
    /// then call [`Session::verified`].
    Verify(String),
    /// Write the replies so far, then close the connection.
    Close,
}

/// A complete message handed to the spool.
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

    /// Whether the session is reading message data (for the data timeout).
    pub fn in_data(&self) -> bool {
        matches!(self.phase, Phase::Data(_))
    }

    /// Feeds bytes from the client; `now` dates a Received header.
    pub fn feed(&mut self, bytes: &[u8], now: SystemTime) -> Vec<Event> {
        if matches!(self.phase, Phase::Closed | Phase::StartingTls) {
            return Vec::new();
        }
        self.input.extend_from_slice(bytes);
        if matches!(self.phase, Phase::Storing | Phase::Verifying(_)) {
            return Vec::new();
        }
        self.run(now)
    }

    /// The spool's answer for the message handed out: `Ok(queue id)` sends
    /// 250, `Err` sends 451. Processing of pipelined input resumes.
    pub fn stored(&mut self, outcome: Result<String, String>, now: SystemTime) -> Vec<Event> {
        if !matches!(self.phase, Phase::Storing) {
            return Vec::new();
        }
        let reply = match outcome {
            Ok(id) => Reply::new(250, "2.0.0", format!("Ok: queued as {id}")),
            Err(_) => Reply::new(451, "4.3.0", "Temporary storage failure, try again later"),
        };
        self.transaction = Transaction::default();
        self.phase = Phase::Ready;
        let mut events = vec![Event::Reply(reply)];
        events.extend(self.run(now));
        events
    }

    /// The answer to [`Event::Verify`]: 250, 550 or 450 for the recipient,
    /// then processing of pipelined input resumes.
    pub fn verified(&mut self, verdict: Verdict, now: SystemTime) -> Vec<Event> {
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
        events.extend(self.run(now));
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
    fn run(&mut self, now: SystemTime) -> Vec<Event> {
        let mut events = Vec::new();
        let mut position = 0;
        loop {
            match &mut self.phase {
                Phase::Closed | Phase::Storing | Phase::StartingTls | Phase::Verifying(_) => break,
                Phase::Data(reader) => {
                    let (used, ended) = reader.ingest(&self.input[position..]);
                    position += used;
                    if !ended {
                        break;
                    }
                    events.push(self.end_of_data(now));
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
            if self.errors >= self.policy.max_errors && !self.is_closed() {
                self.phase = Phase::Closed;
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
                Event::Reply(Reply::new(250, "2.0.0", "Ok"))
            }
            Request::Noop { .. } => Event::Reply(Reply::new(250, "2.0.0", "Ok")),
            Request::Quit => {
                self.phase = Phase::Closed;
                Event::Reply(Reply::new(221, "2.0.0", "Bye"))
            }
            Request::Vrfy { .. } => Event::Reply(Reply::new(
                252,
                "2.5.2",
                "Cannot VRFY, send some mail and we will see",
            )),
            Request::Help { .. } => Event::Reply(Reply::new(
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
        let mailbox = match parse_forward_path(raw, self.transaction.smtputf8) {
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
        self.phase = Phase::Data(DataReader::new(
            self.policy.max_message_size,
            self.policy.max_data_line,
        ));
        Event::Reply(Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"))
    }

    /// The end-of-data line was read: refuse the message or hand it out.
    fn end_of_data(&mut self, now: SystemTime) -> Event {
        let Phase::Data(reader) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            unreachable!("end_of_data is only called in the Data phase");
        };
        let content = match reader.finish() {
            Ok(content) => content,
            Err(flaw) => {
                self.transaction = Transaction::default();
                return Event::Reply(flaw_refusal(flaw));
            }
        };
        if hop_count(&content) > self.policy.max_hops {
            self.transaction = Transaction::default();
            return Event::Reply(Reply::new(
                554,
                "5.4.6",
                "Too many hops, mail loop suspected",
            ));
        }
        let transaction = std::mem::take(&mut self.transaction);
        let (helo, _) = self.helo.clone().unwrap_or_default();
        let mut stored = self
            .received_header(&helo, transaction.smtputf8, now)
            .into_bytes();
        stored.extend_from_slice(&content);
        self.phase = Phase::Storing;
        Event::Message(Box::new(Message {
            envelope: Envelope {
                sender: transaction.sender,
                recipients: transaction.recipients,
                envelope_id: transaction.envelope_id,
                dsn_return: transaction.dsn_return,
                eight_bit: transaction.eight_bit,
                smtputf8: transaction.smtputf8,
                helo,
                client: self.client,
                received: now,
            },
            content: stored,
        }))
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

/// The number of Received header fields in the header section of `content`.
pub fn hop_count(content: &[u8]) -> usize {
    content
        .split(|&byte| byte == b'\n')
        .take_while(|line| !line.is_empty() && *line != b"\r")
        .filter(|line| line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:"))
        .count()
}
