//! The authoritative view of a zone: who serves it, at which addresses, and
//! what each address says about the SOA serial and the RRsets of interest.
//!
//! ```text
//!  resolver ──NS at the apex────────────────┐
//!  resolver ──SOA of the parent ─▶ parent NS ─▶ their addresses ─▶ NS (RD=0) ─┤ delegation
//!                                                                             ▼
//!                           NS names ─▶ A/AAAA of each ─▶ every address (RD=0):
//!                                                          SOA + each question
//!                                                                  │
//!                                                     judge (pure) ▼
//!                                      SerialLags · Disagreement · Failure · …
//! ```
//!
//! [`survey`] does the discovery and the queries (all queries of a stage run
//! at once); [`examine`] queries a given list of servers; [`judge`] turns the
//! observations into flags without any I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use cutover_zone::{Name, Rdata, RecordType, Serial};

use crate::dns::{Client, Exchange, Outcome, Query, Question, Recursion};

/// One authoritative address: the NS name it was found under, and the address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId {
    /// The NS name (or a label given by the caller).
    pub ns: Name,
    /// The address queried (the port is in [`AuthorityTarget::port`]).
    pub address: SocketAddr,
}

/// What to survey.
#[derive(Clone, Debug)]
pub struct AuthorityTarget {
    /// The zone apex.
    pub zone: Name,
    /// The RRsets of interest.
    pub questions: Vec<Question>,
    /// The recursive resolver used to find the servers and their addresses.
    pub resolver: SocketAddr,
    /// The port authoritative servers listen on (53 in real life).
    pub port: u16,
}

/// What the parent zone says about the delegation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delegation {
    /// The parent's servers answered with these NS names.
    Found {
        /// The parent zone.
        parent: Name,
        /// The NS names the parent delegates to.
        servers: Vec<Name>,
    },
    /// The parent could not be asked; the reason says where it stopped.
    Unreachable(String),
}

/// What one authoritative address said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerObservation {
    /// Which server.
    pub server: ServerId,
    /// The SOA query's outcome.
    pub soa: Outcome,
    /// Each question of interest and its outcome, in the target's order.
    pub answers: Vec<(Question, Outcome)>,
}

/// A comparable form of an outcome: what two servers must agree on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnswerKey {
    /// Records of the asked type, with their TTL (the smallest of the set).
    Records {
        /// The TTL.
        ttl: u32,
        /// The sorted RDATA.
        rdatas: Vec<Rdata>,
    },
    /// No records of that type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The server did not answer usefully (its outcome is flagged separately).
    Failed,
}

/// Something about the authoritative servers that needs a look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorityFlag {
    /// This server's serial is older than the newest seen.
    SerialLags {
        /// The server.
        server: ServerId,
        /// Its serial.
        serial: Serial,
        /// The newest serial seen on any server.
        newest: Serial,
    },
    /// Servers give different answers to one question.
    Disagreement {
        /// The question.
        question: Question,
        /// Each distinct answer and the servers that gave it.
        answers: Vec<(AnswerKey, Vec<ServerId>)>,
    },
    /// A server failed a query (SERVFAIL, REFUSED, timeout, malformed…).
    Failure {
        /// The server.
        server: ServerId,
        /// The question (the SOA for the serial query).
        question: Question,
        /// What happened.
        outcome: Outcome,
    },
    /// A server answered without the AA bit: it does not serve the zone.
    NotAuthoritative {
        /// The server.
        server: ServerId,
    },
    /// The NS set at the apex and the parent's delegation differ.
    DelegationMismatch {
        /// Names only the parent lists.
        only_at_parent: Vec<Name>,
        /// Names only the apex lists.
        only_at_apex: Vec<Name>,
    },
    /// An NS name has no A or AAAA record.
    NoAddress {
        /// The NS name.
        ns: Name,
    },
}

/// Everything the survey saw, and its flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthoritySurvey {
    /// The zone.
    pub zone: Name,
    /// The NS set at the apex, as the resolver gave it.
    pub apex_servers: Result<Vec<Name>, Outcome>,
    /// The parent's delegation.
    pub delegation: Delegation,
    /// One observation per authoritative address.
    pub servers: Vec<ServerObservation>,
    /// The flags, from [`judge`] plus the discovery's own.
    pub flags: Vec<AuthorityFlag>,
    /// Messages sent by the survey.
    pub messages_sent: u64,
}

impl ServerObservation {
    /// The serial of the SOA answer, when there is one.
    pub fn serial(&self) -> Option<Serial> {
        let answer = self.soa.answer()?;
        let soa = answer.of_type(RecordType::SOA).next()?;
        soa.rdata.as_soa().map(|s| Serial(s.serial))
    }
}

impl AnswerKey {
    /// The comparable form of `outcome` for a question of type `rtype`.
    pub fn of(outcome: &Outcome, rtype: RecordType) -> AnswerKey {
        match outcome {
            Outcome::Answer(answer) => {
                let rdatas = answer.rdatas(rtype);
                if rdatas.is_empty() {
                    // Only a CNAME chain: compare the whole answer.
                    let mut all: Vec<Rdata> =
                        answer.records.iter().map(|r| r.rdata.clone()).collect();
                    all.sort();
                    AnswerKey::Records {
                        ttl: answer.min_ttl(rtype).unwrap_or(0),
                        rdatas: all,
                    }
                } else {
                    AnswerKey::Records {
                        ttl: answer.min_ttl(rtype).unwrap_or(0),
                        rdatas,
                    }
                }
            }
            Outcome::NoData { .. } => AnswerKey::NoData,
            Outcome::NxDomain { .. } => AnswerKey::NxDomain,
            _ => AnswerKey::Failed,
        }
    }
}

impl AuthoritySurvey {
    /// The newest serial any server gave.
    pub fn newest_serial(&self) -> Option<Serial> {
        newest(self.servers.iter().filter_map(|s| s.serial()))
    }

    /// The servers that have the newest serial.
    pub fn up_to_date(&self) -> impl Iterator<Item = &ServerObservation> {
        let newest = self.newest_serial();
        self.servers
            .iter()
            .filter(move |s| newest.is_some() && s.serial() == newest)
    }

    /// The authoritative answer to `question`: what the first server with
    /// the newest serial says (the reference caches are judged against).
    pub fn reference(&self, question: &Question) -> Option<&Outcome> {
        self.up_to_date().find_map(|s| {
            s.answers
                .iter()
                .find(|(q, o)| q == question && !o.is_failure())
                .map(|(_, o)| o)
        })
    }

    /// True when nothing was flagged.
    pub fn agrees(&self) -> bool {
        self.flags.is_empty()
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.ns, self.address)
    }
}

impl fmt::Display for AuthorityFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthorityFlag::SerialLags {
                server,
                serial,
                newest,
            } => write!(f, "{server} serves serial {serial}, behind {newest}"),
            AuthorityFlag::Disagreement { question, answers } => {
                write!(f, "servers disagree on {question}: {} answers", answers.len())
            }
            AuthorityFlag::Failure {
                server,
                question,
                outcome,
            } => write!(f, "{server} failed {question}: {outcome}"),
            AuthorityFlag::NotAuthoritative { server } => {
                write!(f, "{server} answered without authority (AA=0)")
            }
            AuthorityFlag::DelegationMismatch {
                only_at_parent,
                only_at_apex,
            } => write!(
                f,
                "delegation differs: only at the parent {only_at_parent:?}, only at the apex {only_at_apex:?}"
            ),
            AuthorityFlag::NoAddress { ns } => write!(f, "{ns} has no A or AAAA record"),
        }
    }
}

/// The newest of some serials (RFC 1982 order; incomparable ones keep the first).
fn newest(serials: impl Iterator<Item = Serial>) -> Option<Serial> {
    serials.fold(None, |best, s| match best {
        None => Some(s),
        Some(b) if s.is_newer_than(b) => Some(s),
        keep => keep,
    })
}

/// Flags for what the servers said: lagging serials, disagreements,
/// failures, missing authority. Pure.
pub fn judge(servers: &[ServerObservation]) -> Vec<AuthorityFlag> {
    let mut flags = Vec::new();
    let newest_serial = newest(servers.iter().filter_map(|s| s.serial()));
    for server in servers {
        let soa_question = Question::new(Name::root(), RecordType::SOA);
        if server.soa.is_failure() {
            flags.push(AuthorityFlag::Failure {
                server: server.server.clone(),
                question: soa_question,
                outcome: server.soa.clone(),
            });
            continue;
        }
        if let Some(answer) = server.soa.answer() {
            if !answer.authoritative {
                flags.push(AuthorityFlag::NotAuthoritative {
                    server: server.server.clone(),
                });
            }
        }
        if let (Some(serial), Some(newest)) = (server.serial(), newest_serial) {
            if newest.is_newer_than(serial) {
                flags.push(AuthorityFlag::SerialLags {
                    server: server.server.clone(),
                    serial,
                    newest,
                });
            }
        }
        for (question, outcome) in &server.answers {
            if outcome.is_failure() {
                flags.push(AuthorityFlag::Failure {
                    server: server.server.clone(),
                    question: question.clone(),
                    outcome: outcome.clone(),
                });
            }
        }
    }
    let mut by_question: BTreeMap<&Question, BTreeMap<AnswerKey, Vec<ServerId>>> = BTreeMap::new();
    for server in servers {
        for (question, outcome) in &server.answers {
            let key = AnswerKey::of(outcome, question.rtype);
            if key == AnswerKey::Failed {
                continue;
            }
            by_question
                .entry(question)
                .or_default()
                .entry(key)
                .or_default()
                .push(server.server.clone());
        }
    }
    for (question, answers) in by_question {
        if answers.len() > 1 {
            flags.push(AuthorityFlag::Disagreement {
                question: question.clone(),
                answers: answers.into_iter().collect(),
            });
        }
    }
    flags
}

/// Asks every server for the zone's SOA and each question (RD=0), all at
/// once, and returns one observation per server in the order given.
pub async fn examine(
    client: &Client,
    zone: &Name,
    servers: &[ServerId],
    questions: &[Question],
) -> Vec<ServerObservation> {
    let mut queries = Vec::with_capacity(servers.len() * (questions.len() + 1));
    for server in servers {
        queries.push(Query {
            server: server.address,
            question: Question::new(zone.clone(), RecordType::SOA),
            recursion: Recursion::Off,
        });
        for question in questions {
            queries.push(Query {
                server: server.address,
                question: question.clone(),
                recursion: Recursion::Off,
            });
        }
    }
    let mut exchanges = client.exchange_all(queries).await.into_iter();
    servers
        .iter()
        .map(|server| {
            let soa = exchanges
                .next()
                .map(|e| e.outcome)
                .unwrap_or(Outcome::Timeout);
            let answers = questions
                .iter()
                .map(|q| {
                    let outcome = exchanges
                        .next()
                        .map(|e| e.outcome)
                        .unwrap_or(Outcome::Timeout);
                    (q.clone(), outcome)
                })
                .collect();
            ServerObservation {
                server: server.clone(),
                soa,
                answers,
            }
        })
        .collect()
}

/// Finds the zone's servers through the resolver and the parent, then asks
/// every address of every server for the SOA and each question.
pub async fn survey(client: &Client, target: &AuthorityTarget) -> AuthoritySurvey {
    let sent_before = client.messages_sent();
    let ask = |name: &Name, rtype| Query {
        server: target.resolver,
        question: Question::new(name.clone(), rtype),
        recursion: Recursion::On,
    };
    let (apex, delegation) = tokio::join!(
        client.exchange(ask(&target.zone, RecordType::NS)),
        delegation(client, target),
    );
    let apex_servers = ns_names(&apex.outcome);
    let mut flags = Vec::new();
    let mut names: BTreeSet<Name> = BTreeSet::new();
    if let Ok(apex) = &apex_servers {
        names.extend(apex.iter().cloned());
    }
    if let Delegation::Found { servers, .. } = &delegation {
        names.extend(servers.iter().cloned());
        if let Ok(apex) = &apex_servers {
            let apex: BTreeSet<&Name> = apex.iter().collect();
            let parent: BTreeSet<&Name> = servers.iter().collect();
            if apex != parent {
                flags.push(AuthorityFlag::DelegationMismatch {
                    only_at_parent: parent.difference(&apex).map(|n| (*n).clone()).collect(),
                    only_at_apex: apex.difference(&parent).map(|n| (*n).clone()).collect(),
                });
            }
        }
    }
    let names: Vec<Name> = names.into_iter().collect();
    let addresses = addresses_of(client, target.resolver, &names).await;
    let mut servers = Vec::new();
    for (name, found) in names.iter().zip(addresses) {
        if found.is_empty() {
            flags.push(AuthorityFlag::NoAddress { ns: name.clone() });
        }
        for ip in found {
            servers.push(ServerId {
                ns: name.clone(),
                address: SocketAddr::new(ip, target.port),
            });
        }
    }
    let observations = examine(client, &target.zone, &servers, &target.questions).await;
    flags.extend(judge(&observations));
    AuthoritySurvey {
        zone: target.zone.clone(),
        apex_servers,
        delegation,
        servers: observations,
        flags,
        messages_sent: client.messages_sent() - sent_before,
    }
}

/// The NS names of an NS answer (or the failure).
fn ns_names(outcome: &Outcome) -> Result<Vec<Name>, Outcome> {
    match outcome {
        Outcome::Answer(answer) => {
            let mut names: Vec<Name> = answer
                .of_type(RecordType::NS)
                .filter_map(|r| r.rdata.target())
                .collect();
            names.sort();
            names.dedup();
            Ok(names)
        }
        Outcome::Referral { servers, .. } => Ok(servers.clone()),
        other => Err(other.clone()),
    }
}

/// Every A and AAAA address of each name, through the resolver, all at once.
pub async fn addresses_of(
    client: &Client,
    resolver: SocketAddr,
    names: &[Name],
) -> Vec<Vec<IpAddr>> {
    let mut queries = Vec::with_capacity(names.len() * 2);
    for name in names {
        for rtype in [RecordType::A, RecordType::AAAA] {
            queries.push(Query {
                server: resolver,
                question: Question::new(name.clone(), rtype),
                recursion: Recursion::On,
            });
        }
    }
    let exchanges = client.exchange_all(queries).await;
    exchanges
        .chunks(2)
        .map(|pair| pair.iter().flat_map(addresses_in).collect())
        .collect()
}

/// The addresses in an A or AAAA exchange.
fn addresses_in(exchange: &Exchange) -> Vec<IpAddr> {
    let Some(answer) = exchange.outcome.answer() else {
        return Vec::new();
    };
    answer
        .records
        .iter()
        .filter_map(|r| match r.rdata.to_hickory() {
            Ok(hickory_proto::rr::RData::A(a)) => Some(IpAddr::V4(a.0)),
            Ok(hickory_proto::rr::RData::AAAA(a)) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// Asks the parent zone's servers (found through the resolver) for the NS
/// set of the zone; the first server that answers wins.
async fn delegation(client: &Client, target: &AuthorityTarget) -> Delegation {
    if target.zone.is_root() {
        return Delegation::Unreachable("the root zone has no parent".into());
    }
    let above = target.zone.base_name();
    let soa = client
        .exchange(Query {
            server: target.resolver,
            question: Question::new(above.clone(), RecordType::SOA),
            recursion: Recursion::On,
        })
        .await;
    let parent = match &soa.outcome {
        Outcome::Answer(answer) => answer
            .of_type(RecordType::SOA)
            .next()
            .map(|r| r.name.clone()),
        Outcome::NoData { soa: Some(soa), .. } | Outcome::NxDomain { soa: Some(soa), .. } => {
            Some(soa.name.clone())
        }
        _ => None,
    };
    let Some(parent) = parent else {
        return Delegation::Unreachable(format!(
            "no SOA found for the parent {above}: {}",
            soa.outcome
        ));
    };
    let ns = client
        .exchange(Query {
            server: target.resolver,
            question: Question::new(parent.clone(), RecordType::NS),
            recursion: Recursion::On,
        })
        .await;
    let parent_names = match ns_names(&ns.outcome) {
        Ok(names) if !names.is_empty() => names,
        Ok(_) => return Delegation::Unreachable(format!("the parent {parent} has no NS records")),
        Err(outcome) => {
            return Delegation::Unreachable(format!("NS of the parent {parent}: {outcome}"))
        }
    };
    let addresses: Vec<SocketAddr> = addresses_of(client, target.resolver, &parent_names)
        .await
        .into_iter()
        .flatten()
        .map(|ip| SocketAddr::new(ip, target.port))
        .collect();
    if addresses.is_empty() {
        return Delegation::Unreachable(format!(
            "the servers of the parent {parent} have no address"
        ));
    }
    let queries = addresses
        .iter()
        .map(|address| Query {
            server: *address,
            question: Question::new(target.zone.clone(), RecordType::NS),
            recursion: Recursion::Off,
        })
        .collect();
    let mut last = String::new();
    for exchange in client.exchange_all(queries).await {
        match ns_names(&exchange.outcome) {
            Ok(servers) if !servers.is_empty() => return Delegation::Found { parent, servers },
            Ok(_) => last = format!("{} gave an empty NS set", exchange.query.server),
            Err(outcome) => last = format!("{}: {outcome}", exchange.query.server),
        }
    }
    Delegation::Unreachable(format!(
        "no server of the parent {parent} answered ({last})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Answer;
    use cutover_zone::rdata::Soa;
    use cutover_zone::Record;
    use std::str::FromStr;

    /// A name from text.
    fn name(text: &str) -> Name {
        Name::from_str(text).unwrap()
    }

    /// An authoritative answer holding one SOA with `serial`.
    fn soa(serial: u32) -> Outcome {
        let origin = name("example.test.");
        Outcome::Answer(Answer {
            records: vec![Record {
                name: origin.clone(),
                ttl: 300,
                rdata: Rdata::soa(&Soa {
                    mname: origin.clone(),
                    rname: origin,
                    serial,
                    refresh: 1,
                    retry: 1,
                    expire: 1,
                    minimum: 60,
                }),
            }],
            authoritative: true,
        })
    }

    /// An authoritative answer with one A record.
    fn a(octet: u8, ttl: u32) -> Outcome {
        Outcome::Answer(Answer {
            records: vec![Record {
                name: name("www.example.test."),
                ttl,
                rdata: Rdata::a([192, 0, 2, octet].into()),
            }],
            authoritative: true,
        })
    }

    /// A server observation.
    fn server(ns: &str, last: u8, soa: Outcome, www: Outcome) -> ServerObservation {
        ServerObservation {
            server: ServerId {
                ns: name(ns),
                address: SocketAddr::from(([127, 0, 0, last], 53)),
            },
            soa,
            answers: vec![(Question::new(name("www.example.test."), RecordType::A), www)],
        }
    }

    #[test]
    fn a_lagging_serial_and_its_different_answer_are_flagged() {
        let servers = [
            server("ns1.example.test.", 1, soa(2), a(2, 60)),
            server("ns2.example.test.", 2, soa(1), a(1, 60)),
        ];
        let flags = judge(&servers);
        assert!(
            flags.iter().any(|f| matches!(f, AuthorityFlag::SerialLags { server, serial: Serial(1), newest: Serial(2) } if server.ns == name("ns2.example.test."))),
            "expected ns2 flagged as lagging at serial 1 behind 2, saw {flags:?}"
        );
        assert!(
            flags.iter().any(
                |f| matches!(f, AuthorityFlag::Disagreement { answers, .. } if answers.len() == 2)
            ),
            "expected a disagreement with two answers, saw {flags:?}"
        );
        assert_eq!(flags.len(), 2, "nothing else is wrong: {flags:?}");
    }

    #[test]
    fn servers_that_agree_raise_no_flag_and_failures_are_flagged_once() {
        let agreeing = [
            server("ns1.example.test.", 1, soa(7), a(1, 60)),
            server("ns2.example.test.", 2, soa(7), a(1, 60)),
        ];
        assert_eq!(judge(&agreeing), vec![]);
        let ttl_differs = [
            server("ns1.example.test.", 1, soa(7), a(1, 60)),
            server("ns2.example.test.", 2, soa(7), a(1, 300)),
        ];
        assert_eq!(
            judge(&ttl_differs).len(),
            1,
            "a TTL difference is a disagreement"
        );
        let failing = [
            server("ns1.example.test.", 1, soa(7), a(1, 60)),
            server("ns2.example.test.", 2, Outcome::Refused, Outcome::Refused),
        ];
        let flags = judge(&failing);
        assert!(
            matches!(
                flags.as_slice(),
                [AuthorityFlag::Failure {
                    outcome: Outcome::Refused,
                    ..
                }]
            ),
            "expected one REFUSED failure, saw {flags:?}"
        );
    }

    #[test]
    fn serial_order_follows_rfc_1982_across_the_wrap() {
        assert_eq!(
            newest([Serial(u32::MAX), Serial(3)].into_iter()),
            Some(Serial(3))
        );
    }
}
