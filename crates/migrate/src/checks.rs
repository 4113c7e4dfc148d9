//! The real [`Checks`]: DNS verification and service checks through
//! cutover-probe, on a tokio runtime of their own (the runner is blocking).
//!
//! ```text
//!  survey ──verify.authorities given?──yes──▶ probe::authority::examine (those addresses)
//!         │                          no───▶ probe::authority::survey (NS through the resolver)
//!         └──▶ probe::caches::observe (verify.resolvers, RD=1: TTL left)
//!  service ──pinned──▶ probe::service::{http, smtp, tcp} at the new address
//!          ──names───▶ host resolved through the first resolver, then the same probes
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cutover_probe::authority::{self, AuthorityTarget, ServerId, ServerObservation};
use cutover_probe::caches::{self, Resolver};
use cutover_probe::service::tls::{root_store, TlsRoots};
use cutover_probe::service::{http, smtp, tcp};
use cutover_probe::{Client, Outcome, Query, QueryOptions, Question, Recursion};
use cutover_zone::zonefile::rdata_to_text as rdata_text;
use cutover_zone::{Name, RecordType, Zone};
use jiff::Timestamp;

use crate::effects::Checks;
use crate::file::{Check, CheckKind, MigrationFile, Move, Verify};
use crate::observe::{Answered, CheckResult, Observations, ServerView, Survey};

/// Checks through cutover-probe.
#[derive(Clone, Debug)]
pub struct ProbeChecks {
    /// The port authoritative servers found through NS records listen on.
    port: u16,
    /// Trust anchors of the HTTPS and SMTP probes.
    roots: TlsRoots,
    /// Timeout of each probe step.
    timeout: Duration,
}

impl Default for ProbeChecks {
    fn default() -> Self {
        ProbeChecks::new()
    }
}

impl ProbeChecks {
    /// Port 53, Mozilla's roots, 5 s timeouts.
    pub fn new() -> ProbeChecks {
        ProbeChecks {
            port: 53,
            roots: TlsRoots::WebPki,
            timeout: Duration::from_secs(5),
        }
    }

    /// Authorities found through NS records are asked on this port.
    pub fn with_port(mut self, port: u16) -> ProbeChecks {
        self.port = port;
        self
    }

    /// Certificates are checked against these roots.
    pub fn with_roots(mut self, roots: TlsRoots) -> ProbeChecks {
        self.roots = roots;
        self
    }

    /// Each probe step gives up after this long.
    pub fn with_timeout(mut self, timeout: Duration) -> ProbeChecks {
        self.timeout = timeout;
        self
    }

    /// A DNS client with this checker's timeout.
    fn client(&self) -> Client {
        Client::new(QueryOptions {
            timeout: self.timeout.min(Duration::from_secs(2)),
            attempts: 2,
            ..QueryOptions::default()
        })
    }

    /// Runs a future on a runtime of its own.
    fn block_on<F: std::future::Future>(&self, f: F) -> Option<F::Output> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(runtime.block_on(f))
    }
}

/// The system clock for the cache probes.
struct WallClock;

impl caches::Clock for WallClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// One answer in the plain form.
fn answered(question: &Question, outcome: &Outcome, ttl: Option<u32>) -> Answered {
    let (values, error) = match outcome {
        Outcome::Answer(a) => {
            let mut v: Vec<String> = a.rdatas(question.rtype).iter().map(rdata_text).collect();
            v.sort();
            (v, None)
        }
        other => (Vec::new(), Some(other.to_string())),
    };
    Answered {
        name: question.name.to_string(),
        rtype: question.rtype.to_string(),
        ttl,
        values,
        error,
    }
}

/// One authority's observation in the plain form.
fn server_view(o: &ServerObservation) -> ServerView {
    ServerView {
        server: o.server.to_string(),
        serial: o.serial().map(|s| s.0),
        answers: o
            .answers
            .iter()
            .map(|(q, outcome)| {
                let ttl = outcome.answer().and_then(|a| a.min_ttl(q.rtype));
                answered(q, outcome, ttl)
            })
            .collect(),
    }
}

impl Checks for ProbeChecks {
    fn survey(&self, zone: &Name, rrsets: &[(Name, RecordType)], verify: &Verify) -> Survey {
        let questions: Vec<Question> = rrsets
            .iter()
            .map(|(n, t)| Question::new(n.clone(), *t))
            .collect();
        let client = self.client();
        let resolvers: Vec<Resolver> = verify
            .resolvers
            .iter()
            .map(|a| Resolver {
                label: a.to_string(),
                address: *a,
            })
            .collect();
        let work = async {
            let mut problems = Vec::new();
            let servers: Vec<ServerObservation> = if verify.authorities.is_empty() {
                let Some(resolver) = verify.resolvers.first() else {
                    return Survey {
                        problems: vec!["no authorities and no resolver to find them through".into()],
                        ..Survey::default()
                    };
                };
                let found = authority::survey(
                    &client,
                    &AuthorityTarget {
                        zone: zone.clone(),
                        questions: questions.clone(),
                        resolver: *resolver,
                        port: self.port,
                    },
                )
                .await;
                problems.extend(found.flags.iter().map(|f| f.to_string()));
                found.servers
            } else {
                let ids: Vec<ServerId> = verify
                    .authorities
                    .iter()
                    .map(|a| ServerId {
                        ns: zone.clone(),
                        address: *a,
                    })
                    .collect();
                authority::examine(&client, zone, &ids, &questions).await
            };
            let cached =
                caches::observe(&client, &resolvers, &questions, Arc::new(WallClock)).await;
            Survey {
                authorities: servers.iter().map(server_view).collect(),
                resolvers: resolvers
                    .iter()
                    .map(|r| ServerView {
                        server: r.address.to_string(),
                        serial: None,
                        answers: cached
                            .iter()
                            .filter(|c| c.resolver == *r)
                            .map(|c| answered(&c.question, &c.outcome, c.remaining_ttl()))
                            .collect(),
                    })
                    .collect(),
                problems,
            }
        };
        self.block_on(work).unwrap_or_else(|| Survey {
            problems: vec!["could not start the probe runtime".into()],
            ..Survey::default()
        })
    }

    fn service(&self, check: &Check, pin: Option<IpAddr>, verify: &Verify) -> CheckResult {
        let what = describe(check);
        let fail = |detail: String| CheckResult {
            what: what.clone(),
            pinned: pin,
            ok: false,
            detail,
        };
        let roots = match root_store(&self.roots) {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        };
        let host = match &check.kind {
            CheckKind::Http { url, .. } => match http::Url::parse(url) {
                Ok(u) => u.host,
                Err(e) => return fail(e.to_string()),
            },
            CheckKind::Smtp { host, .. } | CheckKind::Tcp { host, .. } => host.clone(),
        };
        let timeout = self.timeout;
        let client = self.client();
        let work = async {
            let address = match pin {
                Some(a) => a,
                None => match resolve(&client, verify, &host).await {
                    Ok(a) => a,
                    Err(e) => return (None, false, e),
                },
            };
            let now = SystemTime::now();
            match &check.kind {
                CheckKind::Http {
                    url,
                    expect_status,
                    body_contains,
                } => {
                    let Ok(url) = http::Url::parse(url) else {
                        return (Some(address), false, "bad URL".into());
                    };
                    let request = http::HttpRequest {
                        url,
                        address,
                        body_contains: body_contains.clone(),
                        timeout,
                    };
                    match http::fetch(&request, &roots, now).await {
                        Ok(seen) => {
                            let mut ok = seen.status == *expect_status;
                            let mut detail = format!(
                                "status {} in {} ms",
                                seen.status,
                                seen.elapsed.as_millis()
                            );
                            if seen.status != *expect_status {
                                detail.push_str(&format!(" (expected {expect_status})"));
                            }
                            if seen.body_contains == Some(false) {
                                ok = false;
                                detail.push_str(", body lacks the expected text");
                            }
                            if !http::certificate_ok(&seen) {
                                ok = false;
                                detail.push_str(", certificate not valid for the name");
                            }
                            (Some(address), ok, detail)
                        }
                        Err(e) => (Some(address), false, e.to_string()),
                    }
                }
                CheckKind::Smtp { host, port } => {
                    let request = smtp::SmtpRequest {
                        address: SocketAddr::new(address, *port),
                        server_name: host.clone(),
                        helo: "cutover.invalid".into(),
                        starttls: false,
                        rcpt: None,
                        timeout,
                    };
                    match smtp::probe(&request, &roots, now).await {
                        Ok(seen) => {
                            let ok = seen.banner.is_positive() && seen.ehlo.is_positive();
                            (
                                Some(address),
                                ok,
                                format!(
                                    "banner {}, EHLO {} in {} ms",
                                    seen.banner.code,
                                    seen.ehlo.code,
                                    seen.elapsed.as_millis()
                                ),
                            )
                        }
                        Err(e) => (Some(address), false, e.to_string()),
                    }
                }
                CheckKind::Tcp { port, .. } => {
                    let seen = tcp::connect(SocketAddr::new(address, *port), timeout).await;
                    match seen.result {
                        Ok(d) => (
                            Some(address),
                            true,
                            format!("connected in {} ms", d.as_millis()),
                        ),
                        Err(e) => (Some(address), false, e.to_string()),
                    }
                }
            }
        };
        match self.block_on(work) {
            Some((at, ok, detail)) => CheckResult {
                what: match (pin, at) {
                    (None, Some(a)) => format!("{what} (resolved to {a})"),
                    (Some(p), _) => format!("{what} at {p}"),
                    _ => what.clone(),
                },
                pinned: pin,
                ok,
                detail,
            },
            None => fail("could not start the probe runtime".into()),
        }
    }
}

/// A check in words.
pub fn describe(check: &Check) -> String {
    match &check.kind {
        CheckKind::Http { url, .. } => url.clone(),
        CheckKind::Smtp { host, port } => format!("smtp {host}:{port}"),
        CheckKind::Tcp { host, port } => format!("tcp {host}:{port}"),
    }
}

/// A check in words with the address it is pinned to, if any
/// ("https://www.example.com/ at 192.0.2.10").
pub fn describe_at(check: &Check, pin: Option<IpAddr>) -> String {
    match pin {
        Some(p) => format!("{} at {p}", describe(check)),
        None => describe(check),
    }
}

/// A host's first address through the first resolver (A, then AAAA), or
/// the host itself when it is an address.
async fn resolve(client: &Client, verify: &Verify, host: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(ip);
    }
    let resolver = verify
        .resolvers
        .first()
        .ok_or_else(|| "no resolver to look the name up".to_string())?;
    let name = Name::from_ascii(format!("{}.", host.trim_end_matches('.')))
        .map_err(|e| format!("{host}: {e}"))?;
    let mut last = String::new();
    for rtype in [RecordType::A, RecordType::AAAA] {
        let exchange = client
            .exchange(Query {
                server: *resolver,
                question: Question::new(name.clone(), rtype),
                recursion: Recursion::On,
            })
            .await;
        match &exchange.outcome {
            Outcome::Answer(a) => {
                if let Some(ip) = a.rdatas(rtype).iter().find_map(crate::file::address_of) {
                    return Ok(ip);
                }
            }
            other => last = other.to_string(),
        }
    }
    Err(format!(
        "{host} does not resolve through {resolver}: {last}"
    ))
}

/// What the servers serve now for the RRsets a migration file touches:
/// the input of [`crate::plan::plan`].
pub fn observe(
    checks: &dyn Checks,
    file: &MigrationFile,
    zone: &Zone,
    now: Timestamp,
) -> Observations {
    observe_zones(checks, file, std::slice::from_ref(zone), now)
}

/// What the servers serve now for the RRsets a migration file touches in
/// each of its zones, asked zone by zone and merged ([`Survey::merged`]):
/// the input of [`crate::plan::plan_zones`].
pub fn observe_zones(
    checks: &dyn Checks,
    file: &MigrationFile,
    zones: &[Zone],
    now: Timestamp,
) -> Observations {
    let per_zone = zones
        .iter()
        .map(|zone| {
            let rrsets = asked(file, zone);
            let verify = match file.zone_of(zone.origin()) {
                Some(target) if !target.authorities.is_empty() => Verify {
                    authorities: target.authorities.clone(),
                    ..file.verify.clone()
                },
                _ => file.verify.clone(),
            };
            let survey = checks.survey(zone.origin(), &rrsets, &verify);
            (zone.origin().to_string(), survey)
        })
        .collect();
    Observations::from_survey(Survey::merged(per_zone), now)
}

/// The RRsets of `zone` a migration file touches.
fn asked(file: &MigrationFile, zone: &Zone) -> Vec<(Name, RecordType)> {
    let mut rrsets: Vec<(Name, RecordType)> = Vec::new();
    for m in &file.moves {
        match m {
            Move::Explicit { name, rtype, .. } => {
                if zone.origin().zone_of(name)
                    && file.zone_of(name).is_none_or(|z| z.name == *zone.origin())
                {
                    rrsets.push((name.clone(), *rtype))
                }
            }
            Move::Address { from, .. } => {
                for (owner, node) in zone.nodes() {
                    for (rtype, set) in node.rrsets() {
                        if set
                            .rdatas()
                            .iter()
                            .any(|r| crate::file::address_of(r) == Some(*from))
                        {
                            rrsets.push((owner.clone(), rtype));
                        }
                    }
                }
            }
        }
    }
    rrsets.sort();
    rrsets.dedup();
    rrsets
}
