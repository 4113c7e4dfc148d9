//! Mail readiness for a move of mail to a new IP: the MX set, whether SPF
//! authorizes the new IP, whether its PTR is forward-confirmed, and whether
//! the MTA-STS policy lists the MX hosts — each finding one sentence that
//! says what to change.
//!
//! ```text
//!  domain ──MX──▶ hosts ──A/AAAA──▶ addresses ─────────────┐
//!  domain ──TXT v=spf1──▶ evaluate(new IP) (≤ 10 lookups) ──┤
//!  new IP ──PTR──▶ names ──A/AAAA──▶ back to the new IP? ───┼──▶ findings (one sentence each)
//!  _mta-sts TXT ──▶ https://mta-sts.domain/.well-known/… ──┘
//! ```
//!
//! Parsing SPF terms and MTA-STS policies, matching CIDRs and MX patterns,
//! and writing findings are pure; lookups go through [`Dns`].

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cutover_zone::{Name, RecordType};
use hickory_proto::rr::RData;
use rustls::RootCertStore;

use crate::dns::{Client, Outcome, Query, Question, Recursion};
use crate::service::http::{self, HttpRequest, Url};

/// The most DNS lookups an SPF evaluation may cause (RFC 7208 §4.6.4).
pub const SPF_LOOKUP_LIMIT: u32 = 10;

/// Lookups through one recursive resolver.
#[derive(Clone, Debug)]
pub struct Dns {
    /// The client.
    pub client: Client,
    /// The resolver asked (RD=1).
    pub resolver: SocketAddr,
}

/// What to check.
#[derive(Clone, Debug)]
pub struct MailTarget {
    /// The mail domain.
    pub domain: Name,
    /// The address mail will come from and go to after the move.
    pub new_ip: IpAddr,
    /// The port of the MTA-STS policy server (443 in real life).
    pub mta_sts_port: u16,
    /// The timeout of the policy fetch.
    pub timeout: Duration,
}

/// The result of an SPF evaluation (RFC 7208 §2.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpfResult {
    /// Authorized, by the mechanism named.
    Pass(String),
    /// Not authorized (`-`), by the mechanism named.
    Fail(String),
    /// Probably not authorized (`~`).
    SoftFail(String),
    /// No statement (`?` or no match).
    Neutral(String),
    /// No SPF record.
    None,
    /// The record is broken; the reason says how.
    PermError(String),
    /// A lookup failed; try again later.
    TempError(String),
}

/// An MTA-STS policy (RFC 8461 §3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MtaStsPolicy {
    /// enforce, testing or none.
    pub mode: String,
    /// The MX patterns (`mx.example.com`, `*.example.com`).
    pub mx: Vec<String>,
    /// max_age in seconds.
    pub max_age: Option<u64>,
}

/// What MTA-STS looks like for the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MtaSts {
    /// No `_mta-sts` TXT record.
    Absent,
    /// The TXT record is there but the policy could not be fetched or parsed.
    Unavailable(String),
    /// The policy.
    Policy(MtaStsPolicy),
}

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Ready.
    Ok,
    /// Works, but worth a change.
    Warning,
    /// Mail will be refused or misdelivered after the move until this changes.
    Problem,
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// The MX set.
    Mx,
    /// SPF.
    Spf,
    /// The PTR of the new IP.
    Ptr,
    /// MTA-STS.
    MtaSts,
}

/// One finding: one sentence with what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What it is about.
    pub topic: Topic,
    /// How serious.
    pub severity: Severity,
    /// The sentence.
    pub sentence: String,
}

/// Everything the readiness check saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailReadiness {
    /// MX hosts by preference, with their addresses.
    pub mx: Vec<(u16, Name, Vec<IpAddr>)>,
    /// SPF for the new IP, and the lookups it took.
    pub spf: (SpfResult, u32),
    /// PTR names of the new IP, each with whether it resolves back.
    pub ptr: Vec<(Name, bool)>,
    /// MTA-STS.
    pub mta_sts: MtaSts,
    /// The findings, one per topic at least.
    pub findings: Vec<Finding>,
}

impl fmt::Display for SpfResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpfResult::Pass(m) => write!(f, "pass ({m})"),
            SpfResult::Fail(m) => write!(f, "fail ({m})"),
            SpfResult::SoftFail(m) => write!(f, "softfail ({m})"),
            SpfResult::Neutral(m) => write!(f, "neutral ({m})"),
            SpfResult::None => write!(f, "none"),
            SpfResult::PermError(why) => write!(f, "permerror: {why}"),
            SpfResult::TempError(why) => write!(f, "temperror: {why}"),
        }
    }
}

impl Dns {
    /// Asks the resolver; NXDOMAIN and NODATA are an empty answer.
    async fn ask(&self, name: &Name, rtype: RecordType) -> Result<Vec<RData>, String> {
        let exchange = self
            .client
            .exchange(Query {
                server: self.resolver,
                question: Question::new(name.clone(), rtype),
                recursion: Recursion::On,
            })
            .await;
        match exchange.outcome {
            Outcome::Answer(answer) => Ok(answer
                .of_type(rtype)
                .filter_map(|r| r.rdata.to_hickory().ok())
                .collect()),
            Outcome::NoData { .. } | Outcome::NxDomain { .. } => Ok(Vec::new()),
            other => Err(format!("{name} {rtype}: {other}")),
        }
    }

    /// The TXT strings at `name` (each record's strings joined).
    pub async fn txt(&self, name: &Name) -> Result<Vec<String>, String> {
        Ok(self
            .ask(name, RecordType::TXT)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect())
    }

    /// The A and AAAA addresses of `name`.
    pub async fn addresses(&self, name: &Name) -> Result<Vec<IpAddr>, String> {
        let (a, aaaa) = tokio::join!(
            self.ask(name, RecordType::A),
            self.ask(name, RecordType::AAAA)
        );
        Ok(a?
            .into_iter()
            .chain(aaaa?)
            .filter_map(|r| match r {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect())
    }

    /// The MX records of `name`, by preference.
    pub async fn mx(&self, name: &Name) -> Result<Vec<(u16, Name)>, String> {
        let mut mx: Vec<(u16, Name)> = self
            .ask(name, RecordType::MX)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::MX(mx) => Some((mx.preference, mx.exchange)),
                _ => None,
            })
            .collect();
        mx.sort();
        Ok(mx)
    }

    /// The PTR names of `ip`.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<Name>, String> {
        Ok(self
            .ask(&Name::from(ip), RecordType::PTR)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::PTR(ptr) => Some(ptr.0),
                _ => None,
            })
            .collect())
    }
}

/// One SPF term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpfTerm {
    /// A mechanism with its qualifier (`+`, `-`, `~`, `?`).
    Mechanism {
        /// The qualifier.
        qualifier: char,
        /// The mechanism name, lowercase (all, include, a, mx, ip4, ip6, exists, ptr).
        name: String,
        /// The text after ':' (domain or network).
        value: Option<String>,
        /// The IPv4 and IPv6 prefix lengths after '/'.
        cidr: (Option<u8>, Option<u8>),
    },
    /// `redirect=domain`.
    Redirect(String),
    /// Any other modifier (exp=…), ignored.
    Modifier(String),
}

/// Parses the terms of an SPF record (after `v=spf1`). Pure.
pub fn parse_spf(record: &str) -> Result<Vec<SpfTerm>, String> {
    let mut words = record.split_whitespace();
    if !words
        .next()
        .is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"))
    {
        return Err(format!("{record:?} does not start with v=spf1"));
    }
    let mut terms = Vec::new();
    for word in words {
        if word.contains('%') {
            return Err(format!(
                "term {word:?} uses macros, which this check does not expand"
            ));
        }
        let name_end = word.find([':', '/', '=']).unwrap_or(word.len());
        if word[name_end..].starts_with('=') {
            let (key, value) = word.split_at(name_end);
            if key.eq_ignore_ascii_case("redirect") {
                terms.push(SpfTerm::Redirect(value[1..].to_string()));
            } else {
                terms.push(SpfTerm::Modifier(word.to_string()));
            }
            continue;
        }
        let (qualifier, rest) = match word.chars().next() {
            Some(q @ ('+' | '-' | '~' | '?')) => (q, &word[1..]),
            _ => ('+', word),
        };
        let name_end = rest.find([':', '/']).unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        let mut tail = &rest[name_end..];
        let mut value = None;
        if let Some(after) = tail.strip_prefix(':') {
            // '/' starts the prefix length (ip6 values contain ':' themselves).
            let end = after.find('/').unwrap_or(after.len());
            value = Some(after[..end].to_string());
            tail = &after[end..];
        }
        let mut cidr = (None, None);
        let mut lengths = tail.split('/').skip(1);
        let parse_len = |s: &str| {
            s.parse::<u8>()
                .map_err(|_| format!("bad prefix length in {word:?}"))
        };
        if let Some(first) = lengths.next() {
            if !first.is_empty() {
                if name == "ip6" {
                    cidr.1 = Some(parse_len(first)?);
                } else {
                    cidr.0 = Some(parse_len(first)?);
                }
            }
            if let Some(second) = lengths.next() {
                cidr.1 = Some(parse_len(second)?);
            }
        }
        if !["all", "include", "a", "mx", "ip4", "ip6", "exists", "ptr"].contains(&name.as_str()) {
            return Err(format!("unknown mechanism {word:?}"));
        }
        if ["include", "exists", "ip4", "ip6"].contains(&name.as_str()) && value.is_none() {
            return Err(format!("{word:?} needs a value"));
        }
        terms.push(SpfTerm::Mechanism {
            qualifier,
            name,
            value,
            cidr,
        });
    }
    Ok(terms)
}

/// True when `ip` is in `network`/`len` (families must match). Pure.
pub fn in_network(ip: IpAddr, network: IpAddr, len: Option<u8>) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let len = u32::from(len.unwrap_or(32).min(32));
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let len = u32::from(len.unwrap_or(128).min(128));
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The SPF result for a qualifier.
fn qualified(qualifier: char, mechanism: String) -> SpfResult {
    match qualifier {
        '-' => SpfResult::Fail(mechanism),
        '~' => SpfResult::SoftFail(mechanism),
        '?' => SpfResult::Neutral(mechanism),
        _ => SpfResult::Pass(mechanism),
    }
}

/// A boxed future, for the recursion of include and redirect.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Evaluates the SPF record of `domain` for `ip` (RFC 7208 `check_host`,
/// without macros), counting DNS-querying terms in `lookups`.
pub fn check_host<'a>(
    dns: &'a Dns,
    ip: IpAddr,
    domain: Name,
    lookups: &'a mut u32,
) -> Boxed<'a, SpfResult> {
    Box::pin(async move {
        let records = match dns.txt(&domain).await {
            Ok(txt) => txt,
            Err(why) => return SpfResult::TempError(why),
        };
        let spf: Vec<&String> = records
            .iter()
            .filter(|t| {
                let lower = t.to_ascii_lowercase();
                lower == "v=spf1" || lower.starts_with("v=spf1 ")
            })
            .collect();
        let record = match spf.as_slice() {
            [] => return SpfResult::None,
            [one] => *one,
            _ => return SpfResult::PermError(format!("{domain} has {} SPF records", spf.len())),
        };
        let terms = match parse_spf(record) {
            Ok(terms) => terms,
            Err(why) => return SpfResult::PermError(why),
        };
        let target = |value: &Option<String>| -> Result<Name, SpfResult> {
            match value {
                None => Ok(domain.clone()),
                Some(text) => Name::from_str(text)
                    .map(|n| {
                        let mut n = n;
                        n.set_fqdn(true);
                        n
                    })
                    .map_err(|e| SpfResult::PermError(format!("{text:?} is not a domain: {e}"))),
            }
        };
        let mut redirect = None;
        for term in &terms {
            let (qualifier, name, value, cidr) = match term {
                SpfTerm::Redirect(to) => {
                    redirect = Some(to.clone());
                    continue;
                }
                SpfTerm::Modifier(_) => continue,
                SpfTerm::Mechanism {
                    qualifier,
                    name,
                    value,
                    cidr,
                } => (*qualifier, name.as_str(), value, *cidr),
            };
            let label = match value {
                Some(v) => format!("{name}:{v} in {domain}"),
                None => format!("{name} in {domain}"),
            };
            if matches!(name, "include" | "a" | "mx" | "exists" | "ptr") {
                *lookups += 1;
                if *lookups > SPF_LOOKUP_LIMIT {
                    return SpfResult::PermError(format!(
                        "more than {SPF_LOOKUP_LIMIT} DNS lookups (at {label})"
                    ));
                }
            }
            let len = if ip.is_ipv4() { cidr.0 } else { cidr.1 };
            let matched = match name {
                "all" => true,
                "ip4" | "ip6" => match value.as_deref().map(IpAddr::from_str) {
                    Some(Ok(network)) => {
                        in_network(ip, network, if network.is_ipv4() { cidr.0 } else { cidr.1 })
                    }
                    _ => return SpfResult::PermError(format!("{label}: not an address")),
                },
                "a" => {
                    let host = match target(value) {
                        Ok(h) => h,
                        Err(e) => return e,
                    };
                    match dns.addresses(&host).await {
                        Ok(addresses) => addresses.iter().any(|a| in_network(ip, *a, len)),
                        Err(why) => return SpfResult::TempError(why),
                    }
                }
                "mx" => {
                    let host = match target(value) {
                        Ok(h) => h,
                        Err(e) => return e,
                    };
                    let exchanges = match dns.mx(&host).await {
                        Ok(mx) => mx,
                        Err(why) => return SpfResult::TempError(why),
                    };
                    if exchanges.len() > 10 {
                        return SpfResult::PermError(format!("{label}: more than 10 MX hosts"));
                    }
                    let mut any = false;
                    for (_, exchange) in exchanges {
                        match dns.addresses(&exchange).await {
                            Ok(addresses) if addresses.iter().any(|a| in_network(ip, *a, len)) => {
                                any = true;
                                break;
                            }
                            Ok(_) => {}
                            Err(why) => return SpfResult::TempError(why),
                        }
                    }
                    any
                }
                "exists" => {
                    let host = match target(value) {
                        Ok(h) => h,
                        Err(e) => return e,
                    };
                    match dns.addresses(&host).await {
                        Ok(addresses) => addresses.iter().any(|a| a.is_ipv4()),
                        Err(why) => return SpfResult::TempError(why),
                    }
                }
                "include" => {
                    let host = match target(value) {
                        Ok(h) => h,
                        Err(e) => return e,
                    };
                    match check_host(dns, ip, host, lookups).await {
                        SpfResult::Pass(_) => true,
                        SpfResult::Fail(_) | SpfResult::SoftFail(_) | SpfResult::Neutral(_) => {
                            false
                        }
                        SpfResult::None => {
                            return SpfResult::PermError(format!(
                                "{label}: the included domain has no SPF record"
                            ))
                        }
                        error => return error,
                    }
                }
                // ptr is deprecated (RFC 7208 §5.5) and never matched here.
                _ => false,
            };
            if matched {
                return qualified(qualifier, label);
            }
        }
        if let Some(to) = redirect {
            *lookups += 1;
            if *lookups > SPF_LOOKUP_LIMIT {
                return SpfResult::PermError(format!(
                    "more than {SPF_LOOKUP_LIMIT} DNS lookups (at redirect={to})"
                ));
            }
            let host = match target(&Some(to.clone())) {
                Ok(h) => h,
                Err(e) => return e,
            };
            return match check_host(dns, ip, host, lookups).await {
                SpfResult::None => SpfResult::PermError(format!("redirect={to} has no SPF record")),
                result => result,
            };
        }
        SpfResult::Neutral(format!("no mechanism of {domain} matched"))
    })
}

/// Parses an MTA-STS policy file (RFC 8461 §3.2). Pure.
pub fn parse_mta_sts(text: &str) -> Result<MtaStsPolicy, String> {
    let mut version = None;
    let mut mode = None;
    let mut mx = Vec::new();
    let mut max_age = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "version" => version = Some(value),
            "mode" => mode = Some(value),
            "mx" => mx.push(value.to_ascii_lowercase()),
            "max_age" => max_age = value.parse().ok(),
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("the policy has no \"version: STSv1\" line".into());
    }
    let mode = mode.ok_or("the policy has no mode line")?;
    Ok(MtaStsPolicy { mode, mx, max_age })
}

/// True when `host` matches an MTA-STS mx pattern (`*.` covers one label). Pure.
pub fn mx_pattern_matches(pattern: &str, host: &Name) -> bool {
    let host = host.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(_, rest)| rest == suffix),
        None => host == pattern,
    }
}

/// Fetches and parses the MTA-STS policy, when the domain announces one.
async fn mta_sts(
    dns: &Dns,
    target: &MailTarget,
    roots: &Arc<RootCertStore>,
    now: SystemTime,
) -> MtaSts {
    let Ok(announce) = Name::from_str("_mta-sts").and_then(|l| l.append_domain(&target.domain))
    else {
        return MtaSts::Unavailable("the domain is too long for _mta-sts".into());
    };
    let txt = match dns.txt(&announce).await {
        Ok(txt) => txt,
        Err(why) => return MtaSts::Unavailable(why),
    };
    if !txt.iter().any(|t| t.starts_with("v=STSv1")) {
        return MtaSts::Absent;
    }
    let host = format!("mta-sts.{}", target.domain.to_ascii().trim_end_matches('.'));
    let Ok(host_name) = Name::from_str(&format!("{host}.")) else {
        return MtaSts::Unavailable(format!("{host} is not a name"));
    };
    let address = match dns.addresses(&host_name).await {
        Ok(addresses) if !addresses.is_empty() => addresses[0],
        Ok(_) => return MtaSts::Unavailable(format!("{host} has no address")),
        Err(why) => return MtaSts::Unavailable(why),
    };
    let url = match Url::parse(&format!(
        "https://{host}:{}/.well-known/mta-sts.txt",
        target.mta_sts_port
    )) {
        Ok(url) => url,
        Err(e) => return MtaSts::Unavailable(e.to_string()),
    };
    let request = HttpRequest {
        url,
        address,
        body_contains: None,
        timeout: target.timeout,
    };
    let (fetched, body) = match http::fetch_with_body(&request, roots, now).await {
        Ok(fetched) => fetched,
        Err(e) => return MtaSts::Unavailable(e.to_string()),
    };
    if !http::certificate_ok(&fetched) || fetched.status != 200 {
        return MtaSts::Unavailable(format!(
            "https://{host}/.well-known/mta-sts.txt gave status {} with a {} certificate",
            fetched.status,
            fetched
                .tls
                .as_ref()
                .map(|t| t.verdict.to_string())
                .unwrap_or_default()
        ));
    }
    match parse_mta_sts(&String::from_utf8_lossy(&body)) {
        Ok(policy) => MtaSts::Policy(policy),
        Err(why) => MtaSts::Unavailable(why),
    }
}

/// Checks mail readiness for the move of `target.domain` to `target.new_ip`.
pub async fn readiness(
    dns: &Dns,
    target: &MailTarget,
    roots: &Arc<RootCertStore>,
    now: SystemTime,
) -> MailReadiness {
    let mut mx = Vec::new();
    let mx_error = match dns.mx(&target.domain).await {
        Ok(hosts) => {
            for (preference, host) in hosts {
                let addresses = dns.addresses(&host).await.unwrap_or_default();
                mx.push((preference, host, addresses));
            }
            None
        }
        Err(why) => Some(why),
    };
    let mut lookups = 0;
    let spf = check_host(dns, target.new_ip, target.domain.clone(), &mut lookups).await;
    let mut ptr = Vec::new();
    let ptr_error = match dns.ptr(target.new_ip).await {
        Ok(names) => {
            for name in names {
                let confirmed = dns
                    .addresses(&name)
                    .await
                    .map(|a| a.contains(&target.new_ip))
                    .unwrap_or(false);
                ptr.push((name, confirmed));
            }
            None
        }
        Err(why) => Some(why),
    };
    let mta_sts = mta_sts(dns, target, roots, now).await;
    let findings = findings(
        target,
        &mx,
        mx_error.as_deref(),
        &spf,
        lookups,
        &ptr,
        ptr_error.as_deref(),
        &mta_sts,
    );
    MailReadiness {
        mx,
        spf: (spf, lookups),
        ptr,
        mta_sts,
        findings,
    }
}

/// The findings, one sentence each with what to change. Pure.
#[allow(clippy::too_many_arguments)]
pub fn findings(
    target: &MailTarget,
    mx: &[(u16, Name, Vec<IpAddr>)],
    mx_error: Option<&str>,
    spf: &SpfResult,
    lookups: u32,
    ptr: &[(Name, bool)],
    ptr_error: Option<&str>,
    mta_sts: &MtaSts,
) -> Vec<Finding> {
    let domain = target.domain.to_ascii();
    let domain = domain.trim_end_matches('.');
    let ip = target.new_ip;
    let mut out = Vec::new();
    let mut say = |topic, severity, sentence: String| {
        out.push(Finding {
            topic,
            severity,
            sentence,
        })
    };
    match (mx_error, mx.is_empty()) {
        (Some(why), _) => say(Topic::Mx, Severity::Problem, format!("The MX records of {domain} could not be read ({why}): check the zone's nameservers before the move.")),
        (None, true) => say(Topic::Mx, Severity::Problem, format!("{domain} has no MX record: add one naming the host that will receive mail at {ip}.")),
        (None, false) => {
            let serving: Vec<String> = mx.iter().filter(|(_, _, a)| a.contains(&ip)).map(|(_, h, _)| h.to_string()).collect();
            if serving.is_empty() {
                let hosts: Vec<String> = mx.iter().map(|(p, h, _)| format!("{h} ({p})")).collect();
                say(Topic::Mx, Severity::Warning, format!("No MX host of {domain} resolves to {ip} yet ({}): point the MX host's A/AAAA record at {ip} when mail moves.", hosts.join(", ")));
            } else {
                say(Topic::Mx, Severity::Ok, format!("MX host {} of {domain} already resolves to {ip}.", serving.join(", ")));
            }
            for (_, host, addresses) in mx {
                if addresses.is_empty() {
                    say(Topic::Mx, Severity::Problem, format!("MX host {host} has no A or AAAA record: add one, or remove the MX record."));
                }
            }
        }
    }
    match spf {
        SpfResult::Pass(how) => say(Topic::Spf, Severity::Ok, format!("The SPF record of {domain} authorizes {ip} ({how}, {lookups} of {SPF_LOOKUP_LIMIT} lookups).")),
        SpfResult::Fail(how) | SpfResult::SoftFail(how) | SpfResult::Neutral(how) => say(Topic::Spf, Severity::Problem, format!("The SPF record of {domain} does not authorize {ip} (result {spf}, at {how}): add \"ip{}:{ip}\" to it before mail is sent from the new server.", if ip.is_ipv4() { 4 } else { 6 })),
        SpfResult::None => say(Topic::Spf, Severity::Warning, format!("{domain} has no SPF record: publish one such as \"v=spf1 mx ip{}:{ip} -all\".", if ip.is_ipv4() { 4 } else { 6 })),
        SpfResult::PermError(why) => say(Topic::Spf, Severity::Problem, format!("The SPF record of {domain} is broken ({why}): fix it so receivers can evaluate it, e.g. by flattening includes below {SPF_LOOKUP_LIMIT} lookups.")),
        SpfResult::TempError(why) => say(Topic::Spf, Severity::Warning, format!("The SPF record of {domain} could not be evaluated now ({why}): check again once its DNS answers.")),
    }
    match (ptr_error, ptr) {
        (Some(why), _) => say(Topic::Ptr, Severity::Warning, format!("The PTR record of {ip} could not be read ({why}): check it with the owner of the address.")),
        (None, []) => say(Topic::Ptr, Severity::Problem, format!("{ip} has no PTR record: ask the owner of the address (the hosting provider) to set it to the mail host's name.")),
        (None, names) => {
            if let Some((name, _)) = names.iter().find(|(_, ok)| *ok) {
                say(Topic::Ptr, Severity::Ok, format!("The PTR of {ip} is {name}, which resolves back to {ip}."));
            } else {
                let listed: Vec<String> = names.iter().map(|(n, _)| n.to_string()).collect();
                say(Topic::Ptr, Severity::Problem, format!("The PTR of {ip} names {}, which does not resolve back to {ip}: add an A/AAAA record for that name pointing at {ip}, or change the PTR.", listed.join(", ")));
            }
        }
    }
    match mta_sts {
        MtaSts::Absent => say(Topic::MtaSts, Severity::Ok, format!("{domain} publishes no MTA-STS policy, so there is none to update.")),
        MtaSts::Unavailable(why) => say(Topic::MtaSts, Severity::Problem, format!("{domain} announces MTA-STS but its policy cannot be used ({why}): serve a valid policy at https://mta-sts.{domain}/.well-known/mta-sts.txt or remove the _mta-sts TXT record.")),
        MtaSts::Policy(policy) => {
            let missing: Vec<String> = mx
                .iter()
                .filter(|(_, host, _)| !policy.mx.iter().any(|p| mx_pattern_matches(p, host)))
                .map(|(_, host, _)| host.to_ascii().trim_end_matches('.').to_string())
                .collect();
            if missing.is_empty() {
                say(Topic::MtaSts, Severity::Ok, format!("The MTA-STS policy of {domain} (mode {}) lists every MX host.", policy.mode));
            } else {
                let severity = if policy.mode == "enforce" { Severity::Problem } else { Severity::Warning };
                say(Topic::MtaSts, severity, format!("The MTA-STS policy of {domain} (mode {}) does not list {}: add \"mx: {}\" to the policy and change the id in the _mta-sts.{domain} TXT record.", policy.mode, missing.join(", "), missing[0]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spf_terms_parse_with_qualifiers_values_and_prefixes() {
        let terms = parse_spf("v=spf1 ip4:192.0.2.0/24 -ip6:2001:db8::/32 ~a:mail.example.test/28 mx include:_spf.other.test redirect=x.test exp=e.test ?all").unwrap();
        assert_eq!(
            terms[0],
            SpfTerm::Mechanism {
                qualifier: '+',
                name: "ip4".into(),
                value: Some("192.0.2.0".into()),
                cidr: (Some(24), None)
            }
        );
        assert_eq!(
            terms[1],
            SpfTerm::Mechanism {
                qualifier: '-',
                name: "ip6".into(),
                value: Some("2001:db8::".into()),
                cidr: (None, Some(32))
            }
        );
        assert_eq!(
            terms[2],
            SpfTerm::Mechanism {
                qualifier: '~',
                name: "a".into(),
                value: Some("mail.example.test".into()),
                cidr: (Some(28), None)
            }
        );
        assert_eq!(terms[5], SpfTerm::Redirect("x.test".into()));
        assert!(matches!(&terms[6], SpfTerm::Modifier(_)));
        assert!(parse_spf("v=spf2 all").is_err());
        assert!(
            parse_spf("v=spf1 include:%{d}.x").is_err(),
            "macros are refused, not misread"
        );
        assert!(parse_spf("v=spf1 bogus").is_err());
    }

    #[test]
    fn networks_and_mx_patterns_match() {
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(in_network(ip, "192.0.2.0".parse().unwrap(), Some(28)));
        assert!(!in_network(ip, "192.0.2.16".parse().unwrap(), Some(28)));
        assert!(
            !in_network(ip, "2001:db8::".parse().unwrap(), Some(0)),
            "families never match"
        );
        let host = Name::from_str("mx1.example.test.").unwrap();
        assert!(mx_pattern_matches("*.example.test", &host));
        assert!(mx_pattern_matches("MX1.example.test", &host));
        assert!(
            !mx_pattern_matches("*.test", &host),
            "a wildcard covers one label"
        );
    }

    #[test]
    fn policies_parse_and_need_a_version() {
        let policy = parse_mta_sts("version: STSv1\nmode: enforce\nmx: mail.example.test\nmx: *.backup.test\nmax_age: 86400\n").unwrap();
        assert_eq!(policy.mx, vec!["mail.example.test", "*.backup.test"]);
        assert_eq!(
            (policy.mode.as_str(), policy.max_age),
            ("enforce", Some(86400))
        );
        assert!(parse_mta_sts("mode: enforce\n").is_err());
    }
}
