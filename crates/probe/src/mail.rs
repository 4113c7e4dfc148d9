//! Mail readiness for a move of mail to a new IP: the MX set, whether SPF
//! authorizes the new IP, whether its PTR is forward-confirmed, and whether
//! the MTA-STS policy lists the MX hosts — each finding one sentence that
//! says what to change.
//!
//! ```text
//!  domain ──MX──▶ hosts ──A/AAAA──▶ addresses ──────────────────────────────┐
//!  domain ──TXT v=spf1──▶ SpfRecord::parse (mail-auth) ──▶ check_host(new IP) ┤ (≤ 10 lookups,
//!                             macros expanded by mail-auth, ptr, exp=)       │  all through Dns)
//!  new IP ──PTR──▶ names ──A/AAAA──▶ back to the new IP? ────────────────────┼──▶ findings
//!  _mta-sts TXT ──MtaStsRecord::parse──▶ https://mta-sts.domain/.well-known/… ┘   (one sentence each)
//! ```
//!
//! SPF records and macro-strings are parsed and expanded by `mail-auth`, the
//! `_mta-sts` TXT record parsed by it too; the walk over the directives
//! (`Evaluation`) and the MTA-STS policy file parser are ours, each for the
//! reason given where it is. Matching CIDRs and MX patterns and writing
//! findings are pure; every lookup goes through [`Dns`].

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cutover_zone::{Name, RecordType};
use hickory_proto::rr::RData;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::mta_sts::MtaSts as MtaStsRecord;
use mail_auth::spf::{Macro, Mechanism, Qualifier, Spf as SpfRecord, Variables};
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
    /// What receivers tell senders when SPF fails the new IP (`exp=`), if the record says.
    pub spf_explanation: Option<String>,
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

    /// The addresses of `name` in the family of `like` (A for IPv4, AAAA for IPv6).
    async fn addresses_like(&self, name: &Name, like: IpAddr) -> Result<Vec<IpAddr>, String> {
        let rtype = if like.is_ipv4() {
            RecordType::A
        } else {
            RecordType::AAAA
        };
        Ok(self
            .ask(name, rtype)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
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

/// What an SPF evaluation came to: the result, the DNS-querying terms it
/// took, and the explanation (`exp=`) a receiver gives with a `fail`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpfCheck {
    /// The result, with the mechanism that decided it.
    pub result: SpfResult,
    /// The terms that caused DNS lookups (include, a, mx, ptr, exists, redirect).
    pub lookups: u32,
    /// The expanded `exp=` text of the record that failed the address, if any.
    pub explanation: Option<String>,
}

/// A boxed future, for the recursion of include and redirect.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Evaluates the SPF record of `domain` for `ip` (RFC 7208 `check_host`,
/// macros, `ptr` and `exp=` included), as a receiver would for mail from
/// `postmaster@domain` (the HELO name `%{h}` is taken to be the domain too).
pub async fn check_host(dns: &Dns, ip: IpAddr, domain: &Name) -> SpfCheck {
    let bare = bare(domain);
    let mut evaluation = Evaluation {
        dns,
        ip,
        sender: format!("postmaster@{bare}"),
        helo: bare,
        lookups: 0,
        validated: None,
    };
    let (result, explanation) = evaluation.record(domain.clone()).await;
    SpfCheck {
        result,
        lookups: evaluation.lookups,
        explanation,
    }
}

/// One `check_host` run: the identity checked, the lookups counted so far,
/// and the validated names of the address once asked for (`ptr`, `%{p}`).
///
/// mail-auth parses the records (every mechanism and modifier, macro-strings,
/// CIDR lengths) and expands macros (RFC 7208 §7); this walk over the parsed
/// directives is ours for two measured reasons. mail-auth's own evaluation
/// (`MessageAuthenticator::check_host`) answers with the bare result, while
/// the readiness findings name the mechanism that decided, the lookups used
/// against the limit of 10 and why a record is broken; and it resolves
/// through hickory-resolver, a second DNS client, where every lookup of the
/// probe goes through `dns::Client` to the resolver the user gave, with its
/// timeouts and TCP fallback.
struct Evaluation<'a> {
    /// The lookups.
    dns: &'a Dns,
    /// The address checked (`%{i}`).
    ip: IpAddr,
    /// The sender (`%{s}`, `%{l}`, `%{o}`).
    sender: String,
    /// The HELO name (`%{h}`).
    helo: String,
    /// The DNS-querying terms so far.
    lookups: u32,
    /// The PTR names of `ip` that resolve back to it, once looked up.
    validated: Option<Vec<String>>,
}

impl Evaluation<'_> {
    /// check_host for one domain: its record, each directive in order, then
    /// `redirect=`. A `fail` carries the record's `exp=` text when it has one.
    fn record(&mut self, domain: Name) -> Boxed<'_, (SpfResult, Option<String>)> {
        Box::pin(async move {
            let records = match self.dns.txt(&domain).await {
                Ok(txt) => txt,
                Err(why) => return (SpfResult::TempError(why), None),
            };
            let spf: Vec<&String> = records.iter().filter(|t| is_spf(t)).collect();
            let text = match spf.as_slice() {
                [] => return (SpfResult::None, None),
                [one] => *one,
                more => {
                    let why = format!("{domain} has {} SPF records", more.len());
                    return (SpfResult::PermError(why), None);
                }
            };
            let Ok(record) = SpfRecord::parse(text.as_bytes()) else {
                let why =
                    format!("the record {text:?} of {domain} does not follow RFC 7208's syntax");
                return (SpfResult::PermError(why), None);
            };
            let bare = bare(&domain);
            for directive in record.directives.iter() {
                if directive.mechanism.needs_ptr() {
                    self.look_up_validated().await;
                }
                let label = format!("{} in {domain}", self.describe(&directive.mechanism, &bare));
                match self.matches(&directive.mechanism, &bare, &label).await {
                    Ok(false) => {}
                    Ok(true) => {
                        let result = qualified(&directive.qualifier, label);
                        let explanation = match (&result, &record.exp) {
                            (SpfResult::Fail(_), Some(exp)) => self.explain(exp, &bare).await,
                            _ => None,
                        };
                        return (result, explanation);
                    }
                    Err(result) => return (result, None),
                }
            }
            if let Some(to) = &record.redirect {
                if to.needs_ptr() {
                    self.look_up_validated().await;
                }
                let label = format!("redirect={} in {domain}", self.expand(to, &bare));
                if let Err(result) = self.count(&label) {
                    return (result, None);
                }
                let host = match query_name(&self.expand(to, &bare)) {
                    Ok(host) => host,
                    Err(why) => return (SpfResult::PermError(format!("{label}: {why}")), None),
                };
                return match self.record(host).await {
                    (SpfResult::None, _) => (
                        SpfResult::PermError(format!("{label}: that domain has no SPF record")),
                        None,
                    ),
                    outcome => outcome,
                };
            }
            (
                SpfResult::Neutral(format!("no mechanism of {domain} matched")),
                None,
            )
        })
    }

    /// Whether `mechanism` matches the address; an error result ends the
    /// evaluation (lookup limit, broken target, DNS failure).
    async fn matches(
        &mut self,
        mechanism: &Mechanism,
        bare: &str,
        label: &str,
    ) -> Result<bool, SpfResult> {
        let target = |this: &Self, m: &Macro| {
            query_name(&this.expand(m, bare))
                .map_err(|why| SpfResult::PermError(format!("{label}: {why}")))
        };
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4 { addr, mask } => Ok(within(self.ip, IpAddr::V4(*addr), *mask, 0)),
            Mechanism::Ip6 { addr, mask } => Ok(within(self.ip, IpAddr::V6(*addr), 0, *mask)),
            Mechanism::A {
                macro_string,
                ip4_mask,
                ip6_mask,
            } => {
                self.count(label)?;
                let host = target(self, macro_string)?;
                let addresses = self
                    .dns
                    .addresses_like(&host, self.ip)
                    .await
                    .map_err(SpfResult::TempError)?;
                Ok(addresses
                    .iter()
                    .any(|a| within(self.ip, *a, *ip4_mask, *ip6_mask)))
            }
            Mechanism::Mx {
                macro_string,
                ip4_mask,
                ip6_mask,
            } => {
                self.count(label)?;
                let host = target(self, macro_string)?;
                let exchanges = self.dns.mx(&host).await.map_err(SpfResult::TempError)?;
                if exchanges.len() > 10 {
                    return Err(SpfResult::PermError(format!(
                        "{label}: more than 10 MX hosts"
                    )));
                }
                for (_, exchange) in exchanges {
                    let addresses = self
                        .dns
                        .addresses_like(&exchange, self.ip)
                        .await
                        .map_err(SpfResult::TempError)?;
                    if addresses
                        .iter()
                        .any(|a| within(self.ip, *a, *ip4_mask, *ip6_mask))
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr { macro_string } => {
                self.count(label)?;
                let target = self.expand(macro_string, bare).to_ascii_lowercase();
                let names = self.look_up_validated().await;
                Ok(names.iter().any(|name| is_within(name, &target)))
            }
            Mechanism::Exists { macro_string } => {
                self.count(label)?;
                let host = target(self, macro_string)?;
                // An A query whatever the address family (RFC 7208 §5.7).
                let found = self
                    .dns
                    .ask(&host, RecordType::A)
                    .await
                    .map_err(SpfResult::TempError)?;
                Ok(!found.is_empty())
            }
            Mechanism::Include { macro_string } => {
                self.count(label)?;
                let host = target(self, macro_string)?;
                match self.record(host).await.0 {
                    SpfResult::Pass(_) => Ok(true),
                    SpfResult::Fail(_) | SpfResult::SoftFail(_) | SpfResult::Neutral(_) => {
                        Ok(false)
                    }
                    SpfResult::None => Err(SpfResult::PermError(format!(
                        "{label}: the included domain has no SPF record"
                    ))),
                    error => Err(error),
                }
            }
        }
    }

    /// Counts one DNS-querying term; past the limit, the permerror that ends it.
    fn count(&mut self, label: &str) -> Result<(), SpfResult> {
        self.lookups += 1;
        if self.lookups > SPF_LOOKUP_LIMIT {
            return Err(SpfResult::PermError(format!(
                "more than {SPF_LOOKUP_LIMIT} DNS lookups (at {label})"
            )));
        }
        Ok(())
    }

    /// The PTR names of the address that resolve back to it (RFC 7208 §5.5:
    /// at most 10 names; a failed PTR lookup is no name, a failed address
    /// lookup skips that name), looked up once per evaluation.
    async fn look_up_validated(&mut self) -> &[String] {
        if self.validated.is_none() {
            let mut validated = Vec::new();
            for name in self
                .dns
                .ptr(self.ip)
                .await
                .unwrap_or_default()
                .iter()
                .take(10)
            {
                if let Ok(addresses) = self.dns.addresses_like(name, self.ip).await {
                    if addresses.contains(&self.ip) {
                        validated.push(bare(name).to_ascii_lowercase());
                    }
                }
            }
            self.validated = Some(validated);
        }
        self.validated.as_deref().unwrap_or_default()
    }

    /// The macro variables for an evaluation of `domain` (`%{r}` is
    /// "unknown": no receiving host is named by a readiness check).
    fn variables<'v>(&'v self, domain: &'v str) -> Variables<'v> {
        let mut variables = Variables::new();
        variables.set_ip(&self.ip);
        variables.set_sender(self.sender.as_bytes());
        variables.set_domain(domain.as_bytes());
        variables.set_helo_domain(self.helo.as_bytes());
        variables.set_host_domain(&b"unknown"[..]);
        // RFC 7208 §7.3: the name that is `domain` or under it, else any, else "unknown".
        let validated = self.validated.as_deref().unwrap_or_default();
        let p = validated
            .iter()
            .find(|n| is_within(n, &domain.to_ascii_lowercase()))
            .or(validated.first())
            .map(String::as_str)
            .unwrap_or("unknown");
        variables.set_validated_domain(p.as_bytes());
        variables
    }

    /// A domain-spec expanded for `domain` (no trailing dot).
    fn expand(&self, macro_string: &Macro, domain: &str) -> String {
        let variables = self.variables(domain);
        macro_string
            .eval(&variables, domain, true)
            .trim_end_matches('.')
            .to_string()
    }

    /// A mechanism as written, its domain-spec expanded.
    fn describe(&self, mechanism: &Mechanism, domain: &str) -> String {
        let spec = |m: &Macro| match m {
            Macro::None => String::new(),
            m => format!(":{}", self.expand(m, domain)),
        };
        match mechanism {
            Mechanism::All => "all".into(),
            Mechanism::Include { macro_string } => format!("include{}", spec(macro_string)),
            Mechanism::Exists { macro_string } => format!("exists{}", spec(macro_string)),
            Mechanism::Ptr { macro_string } => format!("ptr{}", spec(macro_string)),
            Mechanism::A {
                macro_string,
                ip4_mask,
                ip6_mask,
            } => format!("a{}{}", spec(macro_string), cidr(*ip4_mask, *ip6_mask)),
            Mechanism::Mx {
                macro_string,
                ip4_mask,
                ip6_mask,
            } => format!("mx{}{}", spec(macro_string), cidr(*ip4_mask, *ip6_mask)),
            Mechanism::Ip4 { addr, mask } if *mask == u32::MAX => format!("ip4:{addr}"),
            Mechanism::Ip4 { addr, mask } => format!("ip4:{addr}/{}", mask.count_ones()),
            Mechanism::Ip6 { addr, mask } if *mask == u128::MAX => format!("ip6:{addr}"),
            Mechanism::Ip6 { addr, mask } => format!("ip6:{addr}/{}", mask.count_ones()),
        }
    }

    /// The explanation of a `fail` (RFC 7208 §6.2): the one TXT record at the
    /// expanded `exp=` name, itself a macro-string; any trouble means none.
    async fn explain(&mut self, exp: &Macro, domain: &str) -> Option<String> {
        if exp.needs_ptr() {
            self.look_up_validated().await;
        }
        let host = query_name(&self.expand(exp, domain)).ok()?;
        let texts = self.dns.txt(&host).await.ok()?;
        let [text] = texts.as_slice() else {
            return None;
        };
        let explanation = <Macro as TxtRecordParser>::parse(text.as_bytes()).ok()?;
        if explanation.needs_ptr() {
            self.look_up_validated().await;
        }
        let variables = self.variables(domain);
        Some(explanation.eval(&variables, "", false).into_owned())
    }
}

/// True for a TXT string that is an SPF record (`v=spf1` alone or followed by a space). Pure.
fn is_spf(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower == "v=spf1" || lower.starts_with("v=spf1 ")
}

/// A name as SPF macros see it: lowercase as given, no trailing dot. Pure.
fn bare(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_string()
}

/// True when `name` is `domain` or a name under it (both bare). Pure.
fn is_within(name: &str, domain: &str) -> bool {
    name.eq_ignore_ascii_case(domain)
        || (name.len() > domain.len()
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.'
            && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain))
}

/// The name to query for an expanded domain-spec: longer than 253
/// characters, labels are dropped from the left (RFC 7208 §4.8). Pure.
pub fn query_name(expanded: &str) -> Result<Name, String> {
    let mut text = expanded.trim_end_matches('.');
    while text.len() > 253 {
        match text.split_once('.') {
            Some((_, rest)) => text = rest,
            None => break,
        }
    }
    if text.is_empty() {
        return Err(format!("{expanded:?} expands to no domain name"));
    }
    Name::from_str(&format!("{text}."))
        .map_err(|e| format!("{expanded:?} is not a domain name: {e}"))
}

/// True when `ip` is inside `network` under the mask of its family
/// (families must match). Pure.
pub fn within(ip: IpAddr, network: IpAddr, v4_mask: u32, v6_mask: u128) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => u32::from(ip) & v4_mask == u32::from(net) & v4_mask,
        (IpAddr::V6(ip), IpAddr::V6(net)) => u128::from(ip) & v6_mask == u128::from(net) & v6_mask,
        _ => false,
    }
}

/// The `/len` and `//len` suffixes of a dual CIDR length (none when full). Pure.
fn cidr(v4_mask: u32, v6_mask: u128) -> String {
    let mut text = String::new();
    if v4_mask != u32::MAX {
        text.push_str(&format!("/{}", v4_mask.count_ones()));
    }
    if v6_mask != u128::MAX {
        text.push_str(&format!("//{}", v6_mask.count_ones()));
    }
    text
}

/// The SPF result of a matching directive's qualifier. Pure.
fn qualified(qualifier: &Qualifier, mechanism: String) -> SpfResult {
    match qualifier {
        Qualifier::Fail => SpfResult::Fail(mechanism),
        Qualifier::SoftFail => SpfResult::SoftFail(mechanism),
        Qualifier::Neutral => SpfResult::Neutral(mechanism),
        Qualifier::Pass => SpfResult::Pass(mechanism),
    }
}

/// Parses an MTA-STS policy file (RFC 8461 §3.2). Pure.
///
/// Kept by hand: mail-auth parses the `_mta-sts` TXT record but not the
/// policy file, and the crates that do (mailrs-mta-sts, kumomta's mta-sts)
/// are young single-author crates or parts of a mail server, for some thirty
/// lines of `key: value` parsing that the tests below pin down.
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
    // RFC 8461 §3.1: other TXT records are discarded; senders use a policy
    // only when exactly one announcement remains and it parses.
    let announced: Vec<&String> = txt.iter().filter(|t| t.starts_with("v=STSv1")).collect();
    match announced.as_slice() {
        [] => return MtaSts::Absent,
        [one] => {
            if MtaStsRecord::parse(one.as_bytes()).is_err() {
                return MtaSts::Unavailable(format!(
                    "the TXT record {one:?} at {announce} does not parse: it needs \"v=STSv1; id=…\", so senders ignore the policy"
                ));
            }
        }
        more => {
            return MtaSts::Unavailable(format!(
                "{announce} has {} v=STSv1 TXT records where senders accept exactly one",
                more.len()
            ))
        }
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
    let spf = check_host(dns, target.new_ip, &target.domain).await;
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
        &ptr,
        ptr_error.as_deref(),
        &mta_sts,
    );
    MailReadiness {
        mx,
        spf: (spf.result, spf.lookups),
        spf_explanation: spf.explanation,
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
    spf: &SpfCheck,
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
    let lookups = spf.lookups;
    let explained = match &spf.explanation {
        Some(text) => {
            format!(" Until then receivers refuse its mail with the domain's explanation {text:?}.")
        }
        None => String::new(),
    };
    match &spf.result {
        SpfResult::Pass(how) => say(Topic::Spf, Severity::Ok, format!("The SPF record of {domain} authorizes {ip} ({how}, {lookups} of {SPF_LOOKUP_LIMIT} lookups).")),
        SpfResult::Fail(how) | SpfResult::SoftFail(how) | SpfResult::Neutral(how) => say(Topic::Spf, Severity::Problem, format!("The SPF record of {domain} does not authorize {ip} (result {}, at {how}): add \"ip{}:{ip}\" to it before mail is sent from the new server.{explained}", spf.result, if ip.is_ipv4() { 4 } else { 6 })),
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
    fn spf_records_parse_with_macros_and_read_back_expanded() {
        let record = SpfRecord::parse(b"v=spf1 ip4:192.0.2.0/24 -ip6:2001:db8::/32 ~a:mail.example.test/28 mx include:_spf.%{d} exists:%{ir}.%{l}._spf.%{d} ptr redirect=x.test exp=e.%{d} ?all").unwrap();
        let dns = Dns {
            client: Client::new(crate::dns::QueryOptions::default()),
            resolver: "127.0.0.1:53".parse().unwrap(),
        };
        let evaluation = Evaluation {
            dns: &dns,
            ip: "192.0.2.10".parse().unwrap(),
            sender: "postmaster@example.test".into(),
            helo: "example.test".into(),
            lookups: 0,
            validated: None,
        };
        let written: Vec<String> = record
            .directives
            .iter()
            .map(|d| evaluation.describe(&d.mechanism, "example.test"))
            .collect();
        assert_eq!(
            written,
            [
                "ip4:192.0.2.0/24",
                "ip6:2001:db8::/32",
                "a:mail.example.test/28",
                "mx",
                "include:_spf.example.test",
                "exists:10.2.0.192.postmaster._spf.example.test",
                "ptr",
                "all"
            ]
        );
        assert_eq!(record.directives[1].qualifier, Qualifier::Fail);
        assert_eq!(
            evaluation.expand(record.redirect.as_ref().unwrap(), "example.test"),
            "x.test"
        );
        assert_eq!(
            evaluation.expand(record.exp.as_ref().unwrap(), "example.test"),
            "e.example.test"
        );
        assert!(SpfRecord::parse(b"v=spf2 all").is_err());
        assert!(SpfRecord::parse(b"v=spf1 bogus").is_err());
        assert!(
            SpfRecord::parse(b"v=spf1 include:%{q}.x").is_err(),
            "an unknown macro letter is an error"
        );
        assert!(is_spf("V=SPF1 -all") && is_spf("v=spf1") && !is_spf("v=spf10 -all"));
    }

    #[test]
    fn networks_names_and_mx_patterns_match() {
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        let mask28 = u32::MAX << 4;
        assert!(within(ip, "192.0.2.0".parse().unwrap(), mask28, 0));
        assert!(!within(ip, "192.0.2.16".parse().unwrap(), mask28, 0));
        assert!(
            !within(ip, "2001:db8::".parse().unwrap(), 0, 0),
            "families never match"
        );
        assert_eq!(cidr(mask28, u128::MAX << 64), "/28//64");
        assert_eq!(cidr(u32::MAX, u128::MAX), "");
        assert!(is_within("mx.example.test", "example.test"));
        assert!(is_within("Example.Test", "example.test"));
        assert!(!is_within("badexample.test", "example.test"));
        let long = format!("{}.example.test", vec!["a".repeat(60); 5].join("."));
        let name = query_name(&long).unwrap();
        assert!(
            name.to_ascii().len() <= 254 && name.to_ascii().ends_with(".example.test."),
            "labels are dropped from the left: {name}"
        );
        assert!(query_name("").is_err());
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
