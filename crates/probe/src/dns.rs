//! A small DNS client for probes: one question to one address, with typed
//! outcomes, and many such questions at once.
//!
//! ```text
//!  Query ──build_query──▶ bytes ──UDP (timeout, retries)──▶ reply ──TC?──▶ TCP ──▶ reply
//!                                                             │
//!                                          check_reply + classify (pure)
//!                                                             ▼
//!                                                          Outcome
//! ```
//!
//! Authoritative servers are asked with RD=0 ([`Recursion::Off`]) and
//! resolvers with RD=1 ([`Recursion::On`]). Every query carries EDNS with the
//! configured payload size. [`Client::exchange_all`] runs a whole check's
//! queries concurrently, bounded by [`QueryOptions::concurrency`], and the
//! client counts the messages it sends so benchmarks can report them.
//! Building the query and classifying the reply are pure functions.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_zone::{Name, Rdata, Record, RecordType};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HickoryQuery, ResponseCode};
use hickory_proto::rr::RData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;

/// One question: a name and a record type (class IN).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Question {
    /// The name asked about.
    pub name: Name,
    /// The record type asked for.
    pub rtype: RecordType,
}

/// Whether the query asks the server to recurse (the RD bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recursion {
    /// RD=0: for authoritative servers, which must answer from their own data.
    Off,
    /// RD=1: for recursive resolvers.
    On,
}

/// One query to send: a question to one server address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    /// The server's address and port.
    pub server: SocketAddr,
    /// What is asked.
    pub question: Question,
    /// RD=0 or RD=1.
    pub recursion: Recursion,
}

/// How queries are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryOptions {
    /// How long to wait for each UDP attempt, and for the whole TCP exchange.
    pub timeout: Duration,
    /// UDP attempts per query (at least one).
    pub attempts: u32,
    /// The EDNS UDP payload size to advertise; `None` sends no OPT record.
    pub edns_payload: Option<u16>,
    /// How many queries may be in flight at once.
    pub concurrency: usize,
}

/// The records of a positive answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The answer section (CNAMEs included), with the TTLs as received.
    pub records: Vec<Record>,
    /// The AA bit of the reply.
    pub authoritative: bool,
}

/// What one query came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// NOERROR with records in the answer section.
    Answer(Answer),
    /// NOERROR, no records of the type; the SOA of the authority section if any.
    NoData {
        /// The SOA that came with the reply (its TTL is the negative TTL).
        soa: Option<Record>,
        /// The AA bit of the reply.
        authoritative: bool,
    },
    /// NXDOMAIN; the SOA of the authority section if any.
    NxDomain {
        /// The SOA that came with the reply (its TTL is the negative TTL).
        soa: Option<Record>,
        /// The AA bit of the reply.
        authoritative: bool,
    },
    /// NOERROR, not authoritative, NS records in the authority section: the
    /// server delegates the name to the zone `zone`.
    Referral {
        /// The delegated zone.
        zone: Name,
        /// The NS names of the delegation.
        servers: Vec<Name>,
        /// Addresses that came in the additional section.
        glue: Vec<Record>,
    },
    /// RCODE SERVFAIL.
    ServFail,
    /// RCODE REFUSED.
    Refused,
    /// Any other RCODE.
    OtherRcode(u16),
    /// No reply within the timeout, after every attempt.
    Timeout,
    /// A reply that could not be decoded or did not match the question.
    Malformed(String),
    /// The network refused: no route, connection refused and the like.
    Network(String),
}

/// How a reply came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Over UDP.
    Udp,
    /// Over TCP (after a truncated UDP reply).
    Tcp,
}

/// One query and what it came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// What was asked, of whom.
    pub query: Query,
    /// What came back.
    pub outcome: Outcome,
    /// The transport of the last attempt.
    pub transport: Transport,
    /// Messages sent for this query (UDP attempts plus a TCP query).
    pub messages_sent: u32,
    /// From the first send to the outcome.
    pub elapsed: Duration,
}

/// A reply that does not belong to the query it came for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The bytes do not decode as a DNS message.
    #[error("reply does not decode: {0}")]
    Decode(String),
    /// The reply's ID is not the query's (a late or forged packet).
    #[error("reply ID {seen} is not the query ID {expected}")]
    Id {
        /// The query's ID.
        expected: u16,
        /// The reply's ID.
        seen: u16,
    },
    /// The reply is a query, not a response.
    #[error("message with ID {0} is not a response")]
    NotResponse(u16),
    /// The reply's question is not the one asked.
    #[error("reply question {seen} does not match the query {expected}")]
    Question {
        /// The question asked, as text.
        expected: String,
        /// The question in the reply, as text.
        seen: String,
    },
}

/// Sends queries; cheap to clone, clones share the limit and the counter.
#[derive(Clone, Debug)]
pub struct Client {
    /// How queries are sent.
    options: QueryOptions,
    /// Bounds the queries in flight.
    limit: Arc<Semaphore>,
    /// Messages sent so far by this client and its clones.
    sent: Arc<AtomicU64>,
}

impl Question {
    /// A question for `name` and `rtype`.
    pub fn new(name: Name, rtype: RecordType) -> Question {
        Question { name, rtype }
    }
}

impl Default for QueryOptions {
    fn default() -> QueryOptions {
        QueryOptions {
            timeout: Duration::from_secs(2),
            attempts: 3,
            edns_payload: Some(1232),
            concurrency: 256,
        }
    }
}

impl Answer {
    /// The records of `rtype` in the answer (the end of a CNAME chain).
    pub fn of_type(&self, rtype: RecordType) -> impl Iterator<Item = &Record> {
        self.records
            .iter()
            .filter(move |r| r.rdata.rtype() == rtype)
    }

    /// The smallest TTL of the records of `rtype`, or of all records when
    /// there are none of that type.
    pub fn min_ttl(&self, rtype: RecordType) -> Option<u32> {
        self.of_type(rtype)
            .map(|r| r.ttl)
            .min()
            .or_else(|| self.records.iter().map(|r| r.ttl).min())
    }

    /// The RDATA of `rtype`, sorted: what two servers must agree on.
    pub fn rdatas(&self, rtype: RecordType) -> Vec<Rdata> {
        let mut rdatas: Vec<Rdata> = self.of_type(rtype).map(|r| r.rdata.clone()).collect();
        rdatas.sort();
        rdatas.dedup();
        rdatas
    }
}

impl Outcome {
    /// True for the outcomes that say the server could not or would not
    /// answer (SERVFAIL, REFUSED, other RCODEs, timeout, malformed, network).
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            Outcome::Answer(_)
                | Outcome::NoData { .. }
                | Outcome::NxDomain { .. }
                | Outcome::Referral { .. }
        )
    }

    /// The answer, when there is one.
    pub fn answer(&self) -> Option<&Answer> {
        match self {
            Outcome::Answer(answer) => Some(answer),
            _ => None,
        }
    }

    /// The TTL that bounds how long a cache keeps this outcome: the smallest
    /// TTL of the `rtype` records for an answer, the SOA's TTL capped by its
    /// MINIMUM for a negative answer (RFC 2308 §5).
    pub fn cache_ttl(&self, rtype: RecordType) -> Option<u32> {
        match self {
            Outcome::Answer(answer) => answer.min_ttl(rtype),
            Outcome::NoData { soa: Some(soa), .. } | Outcome::NxDomain { soa: Some(soa), .. } => {
                let minimum = soa.rdata.as_soa().map(|s| s.minimum).unwrap_or(soa.ttl);
                Some(soa.ttl.min(minimum))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answer(answer) => {
                let parts: Vec<String> = answer
                    .records
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} {} {}",
                            r.name,
                            r.ttl,
                            r.rdata.rtype(),
                            rdata_text(&r.rdata)
                        )
                    })
                    .collect();
                write!(f, "{}", parts.join("; "))
            }
            Outcome::NoData { .. } => write!(f, "NODATA"),
            Outcome::NxDomain { .. } => write!(f, "NXDOMAIN"),
            Outcome::Referral { zone, servers, .. } => {
                let names: Vec<String> = servers.iter().map(|n| n.to_string()).collect();
                write!(f, "referral to {zone} ({})", names.join(", "))
            }
            Outcome::ServFail => write!(f, "SERVFAIL"),
            Outcome::Refused => write!(f, "REFUSED"),
            Outcome::OtherRcode(code) => write!(f, "RCODE {code}"),
            Outcome::Timeout => write!(f, "timeout"),
            Outcome::Malformed(why) => write!(f, "malformed reply: {why}"),
            Outcome::Network(why) => write!(f, "network error: {why}"),
        }
    }
}

impl Client {
    /// A client sending queries as `options` says.
    pub fn new(options: QueryOptions) -> Client {
        let permits = options.concurrency.max(1);
        Client {
            options,
            limit: Arc::new(Semaphore::new(permits)),
            sent: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The options queries are sent with.
    pub fn options(&self) -> &QueryOptions {
        &self.options
    }

    /// Messages sent so far by this client and its clones.
    pub fn messages_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Sends one query and waits for its outcome (UDP with retries, then
    /// TCP when the UDP reply is truncated).
    pub async fn exchange(&self, query: Query) -> Exchange {
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self.limit.acquire().await.expect("probe semaphore closed");
        let started = Instant::now();
        let (id, bytes) = build_query(&query.question, query.recursion, self.options.edns_payload);
        let mut messages_sent = 0;
        let udp = self.udp(&query, id, &bytes, &mut messages_sent).await;
        let (outcome, transport) = match udp {
            UdpResult::Reply(message) => (classify(&query.question, &message), Transport::Udp),
            UdpResult::Failed(outcome) => (outcome, Transport::Udp),
            UdpResult::Truncated => {
                messages_sent += 1;
                self.sent.fetch_add(1, Ordering::Relaxed);
                let outcome =
                    match tokio::time::timeout(self.options.timeout, tcp(&query, id, &bytes)).await
                    {
                        Ok(Ok(message)) => classify(&query.question, &message),
                        Ok(Err(outcome)) => outcome,
                        Err(_) => Outcome::Timeout,
                    };
                (outcome, Transport::Tcp)
            }
        };
        Exchange {
            query,
            outcome,
            transport,
            messages_sent,
            elapsed: started.elapsed(),
        }
    }

    /// Sends every query concurrently (bounded by the options' concurrency)
    /// and returns the exchanges in the order of `queries`.
    pub async fn exchange_all(&self, queries: Vec<Query>) -> Vec<Exchange> {
        let mut tasks = tokio::task::JoinSet::new();
        let count = queries.len();
        for (index, query) in queries.into_iter().enumerate() {
            let client = self.clone();
            tasks.spawn(async move { (index, client.exchange(query).await) });
        }
        let mut done: Vec<Option<Exchange>> = vec![None; count];
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, exchange)) => done[index] = Some(exchange),
                // A query task only panics on a bug in this module; surface it.
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        done.into_iter()
            .map(|e| e.expect("every query task reports"))
            .collect()
    }

    /// The UDP part: sends up to `attempts` times and waits for a matching reply.
    async fn udp(&self, query: &Query, id: u16, bytes: &[u8], sent: &mut u32) -> UdpResult {
        let local: SocketAddr = if query.server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = match UdpSocket::bind(local).await {
            Ok(socket) => socket,
            Err(e) => return UdpResult::Failed(Outcome::Network(e.to_string())),
        };
        if let Err(e) = socket.connect(query.server).await {
            return UdpResult::Failed(Outcome::Network(e.to_string()));
        }
        let mut buf = vec![0u8; 65535];
        let mut last_error = Outcome::Timeout;
        for _attempt in 0..self.options.attempts.max(1) {
            *sent += 1;
            self.sent.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = socket.send(bytes).await {
                last_error = Outcome::Network(e.to_string());
                continue;
            }
            let deadline = tokio::time::Instant::now() + self.options.timeout;
            loop {
                let received = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await;
                match received {
                    Err(_) => {
                        last_error = Outcome::Timeout;
                        break;
                    }
                    Ok(Err(e)) => {
                        // ICMP port unreachable shows up here: retrying may
                        // reach a server that is just starting.
                        last_error = Outcome::Network(e.to_string());
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                    Ok(Ok(len)) => match check_reply(id, &query.question, &buf[..len]) {
                        Ok(message) if message.metadata.truncation => return UdpResult::Truncated,
                        Ok(message) => return UdpResult::Reply(Box::new(message)),
                        // A late reply to an earlier query on a reused port, or
                        // a forgery: keep waiting for ours.
                        Err(ReplyError::Id { .. }) => continue,
                        Err(e) => return UdpResult::Failed(Outcome::Malformed(e.to_string())),
                    },
                }
            }
        }
        UdpResult::Failed(last_error)
    }
}

/// What the UDP part came to.
enum UdpResult {
    /// A matching, untruncated reply.
    Reply(Box<Message>),
    /// A matching reply with TC=1: ask again over TCP.
    Truncated,
    /// No usable reply.
    Failed(Outcome),
}

/// The TCP part: one length-prefixed query, one length-prefixed reply.
async fn tcp(query: &Query, id: u16, bytes: &[u8]) -> Result<Message, Outcome> {
    let network = |e: std::io::Error| Outcome::Network(e.to_string());
    let mut stream = TcpStream::connect(query.server).await.map_err(network)?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    // Queries are a few hundred bytes at most, far below 65535.
    framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.map_err(network)?;
    loop {
        let len = stream.read_u16().await.map_err(network)? as usize;
        let mut reply = vec![0u8; len];
        stream.read_exact(&mut reply).await.map_err(network)?;
        match check_reply(id, &query.question, &reply) {
            Ok(message) => return Ok(message),
            Err(ReplyError::Id { .. }) => continue,
            Err(e) => return Err(Outcome::Malformed(e.to_string())),
        }
    }
}

/// The name made absolute (names typed without a final dot are meant so).
fn absolute(name: &Name) -> Name {
    let mut name = name.clone();
    name.set_fqdn(true);
    name
}

/// RDATA in presentation format (hex when hickory cannot decode it).
pub fn rdata_text(rdata: &Rdata) -> String {
    match rdata.to_hickory() {
        Ok(value) => value.to_string(),
        Err(_) => format!("{rdata:?}"),
    }
}

/// The wire bytes of a query for `question`, with a random ID (returned).
pub fn build_query(question: &Question, recursion: Recursion, edns: Option<u16>) -> (u16, Vec<u8>) {
    let mut message = Message::query();
    message.metadata.recursion_desired = recursion == Recursion::On;
    message.add_query(HickoryQuery::query(
        absolute(&question.name),
        question.rtype,
    ));
    if let Some(payload) = edns {
        let mut opt = Edns::new();
        opt.set_max_payload(payload.max(512));
        message.set_edns(opt);
    }
    let id = message.metadata.id;
    // A query built from a valid Name and type always encodes.
    let bytes = message.to_vec().expect("a query message encodes");
    (id, bytes)
}

/// Decodes a reply and checks it belongs to the query with `id` and `question`.
pub fn check_reply(id: u16, question: &Question, bytes: &[u8]) -> Result<Message, ReplyError> {
    let message = Message::from_vec(bytes).map_err(|e| ReplyError::Decode(e.to_string()))?;
    if message.metadata.id != id {
        return Err(ReplyError::Id {
            expected: id,
            seen: message.metadata.id,
        });
    }
    if message.metadata.message_type != MessageType::Response
        || message.metadata.op_code != OpCode::Query
    {
        return Err(ReplyError::NotResponse(message.metadata.id));
    }
    let matches = match message.queries.as_slice() {
        [q] => absolute(q.name()) == absolute(&question.name) && q.query_type() == question.rtype,
        // A reply may omit the question only with an error RCODE (FORMERR
        // and friends); classify it by RCODE then.
        [] => message.metadata.response_code != ResponseCode::NoError,
        _ => false,
    };
    if !matches {
        let seen: Vec<String> = message
            .queries
            .iter()
            .map(|q| format!("{} {}", q.name(), q.query_type()))
            .collect();
        return Err(ReplyError::Question {
            expected: question.to_string(),
            seen: seen.join(", "),
        });
    }
    Ok(message)
}

/// What a checked reply says about `question`.
pub fn classify(question: &Question, message: &Message) -> Outcome {
    let authoritative = message.metadata.authoritative;
    match message.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            return match soa_of(message) {
                Ok(soa) => Outcome::NxDomain { soa, authoritative },
                Err(why) => Outcome::Malformed(why),
            }
        }
        ResponseCode::ServFail => return Outcome::ServFail,
        ResponseCode::Refused => return Outcome::Refused,
        other => return Outcome::OtherRcode(u16::from(other)),
    }
    let mut records = Vec::new();
    for record in &message.answers {
        if matches!(record.data, RData::OPT(_)) || record.record_type() == RecordType::RRSIG {
            continue;
        }
        match convert(record) {
            Ok(converted) => records.push(converted),
            Err(why) => return Outcome::Malformed(why),
        }
    }
    if !records.is_empty() {
        return Outcome::Answer(Answer {
            records,
            authoritative,
        });
    }
    let soa = match soa_of(message) {
        Ok(soa) => soa,
        Err(why) => return Outcome::Malformed(why),
    };
    let ns: Vec<&hickory_proto::rr::Record> = message
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::NS)
        .collect();
    if soa.is_none() && !authoritative && !ns.is_empty() {
        let zone = ns[0].name.clone();
        if !zone.zone_of(&question.name) {
            return Outcome::Malformed(format!(
                "referral to {zone}, which does not contain {}",
                question.name
            ));
        }
        let servers = ns
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(target) => Some(target.0.clone()),
                _ => None,
            })
            .collect();
        let glue = message
            .additionals
            .iter()
            .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
            .filter_map(|r| convert(r).ok())
            .collect();
        return Outcome::Referral {
            zone,
            servers,
            glue,
        };
    }
    Outcome::NoData { soa, authoritative }
}

/// The SOA of the authority section, converted; an error names what failed.
fn soa_of(message: &Message) -> Result<Option<Record>, String> {
    message
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
        .map(convert)
        .transpose()
}

/// A hickory record as a cutover record (uncompressed RDATA).
fn convert(record: &hickory_proto::rr::Record) -> Result<Record, String> {
    let rdata = Rdata::from_hickory(&record.data)
        .map_err(|e| format!("{} {}: {e}", record.name, record.record_type()))?;
    Ok(Record {
        name: record.name.clone(),
        ttl: record.ttl,
        rdata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, NS, SOA};
    use std::str::FromStr;

    /// A question for `name`/`rtype`.
    fn q(name: &str, rtype: RecordType) -> Question {
        Question::new(Name::from_str(name).unwrap(), rtype)
    }

    /// A response to `question` with the given RCODE and AA bit.
    fn response(question: &Question, rcode: ResponseCode, aa: bool) -> Message {
        let mut m = Message::response(7, OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.authoritative = aa;
        m.add_query(HickoryQuery::query(question.name.clone(), question.rtype));
        m
    }

    /// An SOA record for example.test.
    fn soa() -> hickory_proto::rr::Record {
        let origin = Name::from_str("example.test.").unwrap();
        hickory_proto::rr::Record::from_rdata(
            origin.clone(),
            300,
            RData::SOA(SOA::new(origin.clone(), origin, 5, 1, 1, 1, 60)),
        )
    }

    #[test]
    fn a_query_sets_rd_only_for_resolvers_and_carries_edns() {
        let question = q("www.example.test.", RecordType::A);
        let (id, bytes) = build_query(&question, Recursion::Off, Some(1232));
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.id, id);
        assert!(
            !m.metadata.recursion_desired,
            "RD must be 0 for Recursion::Off"
        );
        assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(1232));
        let (_, bytes) = build_query(&question, Recursion::On, None);
        let m = Message::from_vec(&bytes).unwrap();
        assert!(
            m.metadata.recursion_desired,
            "RD must be 1 for Recursion::On"
        );
        assert!(m.edns.is_none(), "no OPT record was asked for");
    }

    #[test]
    fn replies_with_another_id_or_question_are_rejected() {
        let question = q("www.example.test.", RecordType::A);
        let reply = response(&question, ResponseCode::NoError, true)
            .to_vec()
            .unwrap();
        assert_eq!(
            check_reply(8, &question, &reply).unwrap_err(),
            ReplyError::Id {
                expected: 8,
                seen: 7
            }
        );
        let relative = q("www.example.test", RecordType::A);
        assert!(
            check_reply(7, &relative, &reply).is_ok(),
            "a name typed without the dot matches"
        );
        let other = q("mail.example.test.", RecordType::A);
        assert!(matches!(
            check_reply(7, &other, &reply),
            Err(ReplyError::Question { .. })
        ));
        assert!(matches!(
            check_reply(7, &question, &reply[..5]),
            Err(ReplyError::Decode(_))
        ));
        assert!(check_reply(7, &question, &reply).is_ok());
    }

    #[test]
    fn classification_covers_every_rcode_and_shape() {
        let question = q("www.example.test.", RecordType::A);
        let mut m = response(&question, ResponseCode::NoError, true);
        m.add_answer(hickory_proto::rr::Record::from_rdata(
            question.name.clone(),
            42,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        match classify(&question, &m) {
            Outcome::Answer(answer) => {
                assert_eq!(answer.min_ttl(RecordType::A), Some(42));
                assert_eq!(answer.rdatas(RecordType::A).len(), 1);
                assert!(answer.authoritative);
            }
            other => panic!("expected an answer, saw {other}"),
        }
        let mut m = response(&question, ResponseCode::NXDomain, true);
        m.add_authority(soa());
        let outcome = classify(&question, &m);
        assert!(matches!(outcome, Outcome::NxDomain { soa: Some(_), .. }));
        assert_eq!(
            outcome.cache_ttl(RecordType::A),
            Some(60),
            "min(SOA TTL 300, MINIMUM 60)"
        );
        let mut m = response(&question, ResponseCode::NoError, true);
        m.add_authority(soa());
        assert!(matches!(classify(&question, &m), Outcome::NoData { .. }));
        let mut m = response(&question, ResponseCode::NoError, false);
        m.add_authority(hickory_proto::rr::Record::from_rdata(
            Name::from_str("example.test.").unwrap(),
            3600,
            RData::NS(NS(Name::from_str("ns1.example.test.").unwrap())),
        ));
        match classify(&question, &m) {
            Outcome::Referral { zone, servers, .. } => {
                assert_eq!(zone, Name::from_str("example.test.").unwrap());
                assert_eq!(servers.len(), 1);
            }
            other => panic!("expected a referral, saw {other}"),
        }
        for (rcode, expected) in [
            (ResponseCode::ServFail, Outcome::ServFail),
            (ResponseCode::Refused, Outcome::Refused),
            (ResponseCode::FormErr, Outcome::OtherRcode(1)),
        ] {
            let m = response(&question, rcode, false);
            assert_eq!(classify(&question, &m), expected);
            assert!(expected.is_failure());
        }
    }
}
