//! The view from recursive resolvers: what each cache answers, how long it
//! will keep that answer, and when every cache will have let go of it.
//!
//! ```text
//!  resolvers (resolv.conf or name → address) ──observe (RD=1, at once)──▶ CacheObservation
//!         clock.now() at each reply ─────────────────────────────────────┘  (answer, TTL left)
//!
//!  observations + authoritative reference + earlier observations ──judge (pure)──▶ CacheReport
//!     released_at = reply time + TTL left;  all_released_at = the latest of them
//!     flags: TtlAboveAuthority (floor/clamp) · Stale (past its TTL) · Failure
//! ```
//!
//! The clock is injected ([`Clock`]) so the times can be checked in tests and
//! the migration engine can drive them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cutover_zone::Rdata;

use crate::authority::AnswerKey;
use crate::dns::{Client, Outcome, Query, Question, Recursion};

/// The time source of the cache probes.
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// A recursive resolver to ask.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resolver {
    /// A label for reports ("office", "isp", or the address from resolv.conf).
    pub label: String,
    /// Address and port.
    pub address: SocketAddr,
}

/// Why the resolver list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResolverListError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `name=address` entry does not parse.
    #[error("resolver entry {0:?} is not NAME=ADDRESS or ADDRESS (ADDRESS is IP or IP:PORT, [IPv6]:PORT)")]
    Entry(String),
}

/// What one resolver said about one question, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheObservation {
    /// The resolver.
    pub resolver: Resolver,
    /// The question.
    pub question: Question,
    /// When the reply arrived (from the injected clock).
    pub observed_at: SystemTime,
    /// The outcome.
    pub outcome: Outcome,
}

/// Something about a cache that needs a look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheFlag {
    /// The cache's TTL is above the authoritative TTL: it raises TTLs (a
    /// floor or clamp), so changes take longer than the zone says.
    TtlAboveAuthority {
        /// The TTL the cache gave.
        seen: u32,
        /// The authoritative TTL.
        authoritative: u32,
    },
    /// The cache serves an answer that differs from the authority's, past
    /// the time an earlier observation said it would expire.
    Stale {
        /// When the earlier observation said this answer would expire.
        expired_at: SystemTime,
    },
    /// The cache does not give the authoritative answer (yet).
    Differs,
    /// The resolver failed (SERVFAIL, REFUSED, timeout…).
    Failure(Outcome),
}

/// The judgement of one observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheView {
    /// The observation judged.
    pub observation: CacheObservation,
    /// The TTL left in the cache (None for failures).
    pub remaining_ttl: Option<u32>,
    /// When this cache will have let go of what it holds now.
    pub released_at: Option<SystemTime>,
    /// True when the answer matches the authoritative reference.
    pub agrees: bool,
    /// What needs a look.
    pub flags: Vec<CacheFlag>,
}

/// The judgement of a round of observations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheReport {
    /// One view per observation, in order.
    pub views: Vec<CacheView>,
    /// When every cache will have let go of what it holds now.
    pub all_released_at: Option<SystemTime>,
    /// When every cache still holding something other than the reference
    /// will have let go of it (None when none does).
    pub old_data_released_at: Option<SystemTime>,
}

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl Resolver {
    /// Parses `NAME=ADDRESS` or `ADDRESS`, where ADDRESS is an IP (port 53)
    /// or `IP:PORT` / `[IPv6]:PORT`.
    pub fn parse(entry: &str) -> Result<Resolver, ResolverListError> {
        let (label, address) = match entry.split_once('=') {
            Some((label, address)) => (label.trim().to_string(), address.trim()),
            None => (entry.trim().to_string(), entry.trim()),
        };
        let address = if let Ok(ip) = address.parse::<IpAddr>() {
            SocketAddr::new(ip, 53)
        } else {
            address
                .parse::<SocketAddr>()
                .map_err(|_| ResolverListError::Entry(entry.to_string()))?
        };
        if label.is_empty() {
            return Err(ResolverListError::Entry(entry.to_string()));
        }
        Ok(Resolver { label, address })
    }
}

impl CacheObservation {
    /// The TTL the cache has left for this answer.
    pub fn remaining_ttl(&self) -> Option<u32> {
        self.outcome.cache_ttl(self.question.rtype)
    }

    /// When the cache will have let go of this answer: the reply time plus
    /// the TTL left (TTLs count whole seconds, so the real moment is up to
    /// one second later).
    pub fn released_at(&self) -> Option<SystemTime> {
        self.remaining_ttl()
            .map(|ttl| self.observed_at + Duration::from_secs(u64::from(ttl)))
    }

    /// The comparable form of the answer.
    pub fn key(&self) -> AnswerKey {
        AnswerKey::of(&self.outcome, self.question.rtype)
    }

    /// The RDATA of the asked type in the answer.
    pub fn rdatas(&self) -> Vec<Rdata> {
        self.outcome
            .answer()
            .map(|a| a.rdatas(self.question.rtype))
            .unwrap_or_default()
    }
}

impl fmt::Display for CacheFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheFlag::TtlAboveAuthority {
                seen,
                authoritative,
            } => write!(
                f,
                "TTL {seen} is above the authoritative {authoritative} (the cache raises TTLs)"
            ),
            CacheFlag::Stale { expired_at } => {
                let secs = expired_at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                write!(f, "serves old data past its TTL (expired at unix {secs})")
            }
            CacheFlag::Differs => write!(f, "differs from the authoritative answer"),
            CacheFlag::Failure(outcome) => write!(f, "failed: {outcome}"),
        }
    }
}

/// The nameservers of a resolv.conf text, labelled by their address.
pub fn parse_resolv_conf(text: &str) -> Vec<Resolver> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next()?.trim();
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            let word = words.next()?;
            // A scoped IPv6 address (fe80::1%eth0) cannot be used without
            // the interface index: skip what does not parse.
            let ip: IpAddr = word.parse().ok()?;
            Some(Resolver {
                label: word.to_string(),
                address: SocketAddr::new(ip, 53),
            })
        })
        .collect()
}

/// The well-known public resolvers `--resolver public` asks: two
/// addresses of each of Google Public DNS, Cloudflare, Quad9 and Cisco
/// OpenDNS, each labelled `operator-N`. Only for a host that reaches the
/// Internet; from one that does not, each is a timeout, said as such.
pub const PUBLIC_RESOLVERS: &[(&str, &str)] = &[
    ("google-1", "8.8.8.8"),
    ("google-2", "8.8.4.4"),
    ("cloudflare-1", "1.1.1.1"),
    ("cloudflare-2", "1.0.0.1"),
    ("quad9-1", "9.9.9.9"),
    ("quad9-2", "149.112.112.112"),
    ("opendns-1", "208.67.222.222"),
    ("opendns-2", "208.67.220.220"),
];

/// [`PUBLIC_RESOLVERS`], as resolvers on port 53.
pub fn public_resolvers() -> Vec<Resolver> {
    PUBLIC_RESOLVERS
        .iter()
        .map(|(label, ip)| Resolver {
            label: (*label).to_string(),
            address: SocketAddr::new(ip.parse().expect("a listed address"), 53),
        })
        .collect()
}

/// The resolvers of /etc/resolv.conf.
pub fn system_resolvers() -> Result<Vec<Resolver>, ResolverListError> {
    let path = "/etc/resolv.conf";
    let text = std::fs::read_to_string(path).map_err(|source| ResolverListError::Read {
        path: path.into(),
        source,
    })?;
    Ok(parse_resolv_conf(&text))
}

/// The resolvers a command line lists, in order, each address once:
/// `public` stands for [`public_resolvers`], `system` for
/// [`system_resolvers`], anything else is one [`Resolver::parse`] entry.
pub fn listed_resolvers(entries: &[String]) -> Result<Vec<Resolver>, ResolverListError> {
    let mut resolvers: Vec<Resolver> = Vec::new();
    for entry in entries {
        let more = match entry.as_str() {
            "public" => public_resolvers(),
            "system" => system_resolvers()?,
            _ => vec![Resolver::parse(entry)?],
        };
        for resolver in more {
            if !resolvers.iter().any(|r| r.address == resolver.address) {
                resolvers.push(resolver);
            }
        }
    }
    Ok(resolvers)
}

/// Asks every resolver every question (RD=1), all at once; each reply is
/// stamped with the clock's time when it arrived.
pub async fn observe(
    client: &Client,
    resolvers: &[Resolver],
    questions: &[Question],
    clock: Arc<dyn Clock>,
) -> Vec<CacheObservation> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut index = 0;
    for resolver in resolvers {
        for question in questions {
            let client = client.clone();
            let query = Query {
                server: resolver.address,
                question: question.clone(),
                recursion: Recursion::On,
            };
            let resolver = resolver.clone();
            let clock = Arc::clone(&clock);
            let position = index;
            index += 1;
            tasks.spawn(async move {
                let exchange = client.exchange(query).await;
                let observed_at = clock.now();
                (
                    position,
                    CacheObservation {
                        resolver,
                        question: exchange.query.question,
                        observed_at,
                        outcome: exchange.outcome,
                    },
                )
            });
        }
    }
    let mut done: Vec<Option<CacheObservation>> = vec![None; index];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((position, observation)) => done[position] = Some(observation),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    done.into_iter()
        .map(|o| o.expect("every observation task reports"))
        .collect()
}

/// Judges observations against the authoritative reference of each question
/// (`reference` returns None when the authority gave nothing usable), using
/// earlier observations of the same caches to spot stale data. Pure.
pub fn judge<'a>(
    observations: &[CacheObservation],
    reference: impl Fn(&Question) -> Option<&'a Outcome>,
    history: &[CacheObservation],
) -> CacheReport {
    let views: Vec<CacheView> = observations
        .iter()
        .map(|observation| view(observation, reference(&observation.question), history))
        .collect();
    let all_released_at = views.iter().filter_map(|v| v.released_at).max();
    let old_data_released_at = views
        .iter()
        .filter(|v| !v.agrees)
        .filter_map(|v| v.released_at)
        .max();
    CacheReport {
        views,
        all_released_at,
        old_data_released_at,
    }
}

/// The judgement of one observation.
fn view(
    observation: &CacheObservation,
    reference: Option<&Outcome>,
    history: &[CacheObservation],
) -> CacheView {
    let mut flags = Vec::new();
    let remaining_ttl = observation.remaining_ttl();
    if observation.outcome.is_failure() {
        flags.push(CacheFlag::Failure(observation.outcome.clone()));
    }
    let rtype = observation.question.rtype;
    let key = observation.key();
    let agrees = match reference {
        Some(reference) => {
            let expected = AnswerKey::of(reference, rtype);
            same_data(&key, &expected)
        }
        None => false,
    };
    // A floor only shows on the data the servers serve: a cache still
    // holding the old RRset counts down the old TTL, which says nothing
    // about how it treats the new one.
    if let (Some(reference), Some(seen), true) = (reference, remaining_ttl, agrees) {
        if let Some(authoritative) = reference.cache_ttl(rtype) {
            if seen > authoritative {
                flags.push(CacheFlag::TtlAboveAuthority {
                    seen,
                    authoritative,
                });
            }
        }
    }
    if reference.is_some() && !agrees && !observation.outcome.is_failure() {
        flags.push(CacheFlag::Differs);
        let expired = history
            .iter()
            .filter(|earlier| {
                earlier.resolver == observation.resolver
                    && earlier.question == observation.question
                    && earlier.observed_at < observation.observed_at
                    && same_data(&earlier.key(), &key)
            })
            .filter_map(|earlier| earlier.released_at())
            // A second of grace: TTLs are whole seconds.
            .filter(|expiry| *expiry + Duration::from_secs(1) < observation.observed_at)
            .max();
        if let Some(expired_at) = expired {
            flags.push(CacheFlag::Stale { expired_at });
        }
    }
    CacheView {
        observation: observation.clone(),
        remaining_ttl,
        released_at: observation.released_at(),
        agrees,
        flags,
    }
}

/// True when two answers hold the same data (TTLs aside).
fn same_data(a: &AnswerKey, b: &AnswerKey) -> bool {
    match (a, b) {
        (AnswerKey::Records { rdatas: x, .. }, AnswerKey::Records { rdatas: y, .. }) => x == y,
        (AnswerKey::Failed, _) | (_, AnswerKey::Failed) => false,
        (x, y) => x == y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Answer;
    use cutover_zone::{Name, Record, RecordType};
    use std::str::FromStr;

    /// The question used throughout.
    fn question() -> Question {
        Question::new(Name::from_str("www.example.test.").unwrap(), RecordType::A)
    }

    /// An answer with one A record 192.0.2.`octet` and `ttl`.
    fn a(octet: u8, ttl: u32) -> Outcome {
        Outcome::Answer(Answer {
            records: vec![Record {
                name: question().name,
                ttl,
                rdata: Rdata::a([192, 0, 2, octet].into()),
            }],
            authoritative: false,
        })
    }

    /// An observation by resolver `label` at unix second `at`.
    fn seen(label: &str, at: u64, outcome: Outcome) -> CacheObservation {
        CacheObservation {
            resolver: Resolver {
                label: label.into(),
                address: SocketAddr::from(([127, 0, 0, 1], 53)),
            },
            question: question(),
            observed_at: SystemTime::UNIX_EPOCH + Duration::from_secs(at),
            outcome,
        }
    }

    /// Unix second `s` as a time.
    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn release_times_are_reply_time_plus_ttl_left_and_the_latest_bounds_all() {
        let reference = a(2, 300);
        let observations = [seen("one", 1000, a(1, 120)), seen("two", 1010, a(2, 40))];
        let report = judge(&observations, |_| Some(&reference), &[]);
        assert_eq!(report.views[0].released_at, Some(t(1120)));
        assert_eq!(report.views[1].released_at, Some(t(1050)));
        assert_eq!(report.all_released_at, Some(t(1120)));
        assert_eq!(
            report.old_data_released_at,
            Some(t(1120)),
            "only `one` holds old data"
        );
        assert!(!report.views[0].agrees && report.views[1].agrees);
        assert_eq!(report.views[0].flags, vec![CacheFlag::Differs]);
        assert_eq!(report.views[1].flags, vec![]);
    }

    #[test]
    fn old_data_with_its_old_ttl_is_no_ttl_floor() {
        // The servers now serve 192.0.2.2 with TTL 5; the resolver still
        // holds 192.0.2.1 with 44 s left of its old TTL.
        let reference = a(2, 5);
        let report = judge(&[seen("isp", 1000, a(1, 44))], |_| Some(&reference), &[]);
        assert_eq!(report.views[0].flags, vec![CacheFlag::Differs]);
    }

    #[test]
    fn a_ttl_above_the_authority_is_a_clamp_and_old_data_past_expiry_is_stale() {
        let reference = a(2, 60);
        let clamp = judge(
            &[seen("floor", 1000, a(2, 3600))],
            |_| Some(&reference),
            &[],
        );
        assert_eq!(
            clamp.views[0].flags,
            vec![CacheFlag::TtlAboveAuthority {
                seen: 3600,
                authoritative: 60
            }]
        );
        let history = [seen("lazy", 1000, a(1, 30))];
        let stale = judge(
            &[seen("lazy", 1040, a(1, 30))],
            |_| Some(&reference),
            &history,
        );
        assert_eq!(
            stale.views[0].flags,
            vec![
                CacheFlag::Differs,
                CacheFlag::Stale {
                    expired_at: t(1030)
                }
            ]
        );
        let within = judge(
            &[seen("lazy", 1020, a(1, 10))],
            |_| Some(&reference),
            &history,
        );
        assert_eq!(
            within.views[0].flags,
            vec![CacheFlag::Differs],
            "not yet expired"
        );
    }

    #[test]
    fn resolver_lists_parse_from_resolv_conf_and_entries() {
        let text = "# comment\nsearch example\nnameserver 192.0.2.53\nnameserver 2001:db8::53 # v6\nnameserver fe80::1%eth0\n";
        let list = parse_resolv_conf(text);
        assert_eq!(list.len(), 2, "the scoped address is skipped: {list:?}");
        assert_eq!(list[1].address, "[2001:db8::53]:53".parse().unwrap());
        let entry = Resolver::parse("office=127.0.0.1:5353").unwrap();
        assert_eq!(
            (entry.label.as_str(), entry.address.port()),
            ("office", 5353)
        );
        assert_eq!(Resolver::parse("::1").unwrap().address.port(), 53);
        assert!(Resolver::parse("office=nowhere").is_err());
    }
}
