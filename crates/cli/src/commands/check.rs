//! `cutover check ZONE [NAME…]`: what every authoritative server and every
//! recursive cache answers for a zone, whether they agree, and when every
//! cache will have let go of what it holds.
//!
//! ```text
//!  arguments ──Plan::from_args──▶ Plan (zone, questions, expectations, resolvers, servers)
//!     ──observe (I/O)──▶ authority::survey | authority::examine   (RD=0, every address)
//!                        caches::observe                          (RD=1, every resolver)
//!     ──Report::build (pure)──▶ one row per server address and per resolver,
//!                               flags, release times, the verdict
//!     ──▶ aligned table or JSON;  --watch repeats until the verdict is "agrees"
//! ```
//!
//! The judging is the probe crate's ([`authority::judge`], [`caches::judge`]);
//! this module only adds the `--expect` values and the presentation.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context};
use clap::{ArgAction, Args};
use cutover_migrate::agent::{CheckFromRequest, CheckFromResult, Question as FromQuestion};
use cutover_migrate::file::{Locations, Verify};
use cutover_probe::authority::{
    self, AnswerKey, AuthorityFlag, AuthoritySurvey, AuthorityTarget, Delegation, ServerId,
};
use cutover_probe::caches::{self, CacheFlag, CacheObservation, CacheView, Resolver, SystemClock};
use cutover_probe::dns::{rdata_text, Client, Outcome, QueryOptions, Question};
use cutover_zone::{zonefile, Name, Rdata, RecordType};
use serde::Serialize;

use super::common::{timestamp, zone_name};
use super::countdown::{Countdown, Display, Stream};
use super::table::{Table, Tone};

/// How many earlier cache observations `--watch` keeps to spot stale caches.
const HISTORY_LIMIT: usize = 4096;

/// The arguments of `cutover check`.
#[derive(Debug, Args)]
#[command(after_help = "\
Names are relative to the zone unless they end in \".\"; \"@\" is the apex. \
Without names, the zone's SOA is checked. \
Each authoritative address is asked directly (no recursion); each resolver \
is asked with recursion, and its TTL left says when it will let go of what \
it holds.\n\n\
Exit status: 0 when every server and every resolver agrees (same serial, \
same data, no failure, no stale cache) and matches every --expect; \
1 otherwise; 2 on a bad command line. A resolver that raises TTLs (a TTL \
floor) is flagged but does not by itself fail the check.")]
pub struct CheckArgs {
    /// The zone, e.g. example.com.
    pub zone: String,
    /// The names to check (relative to the zone unless they end in ".").
    pub names: Vec<String>,
    /// A record type to ask for each name (repeatable; default A and AAAA).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// A recursive resolver to ask (repeatable): NAME=IP[:PORT] or IP[:PORT],
    /// `system` (the nameservers of /etc/resolv.conf, the default) or
    /// `public` (Google, Cloudflare, Quad9 and OpenDNS, two addresses each:
    /// for a host that reaches the Internet).
    #[arg(long = "resolver", value_name = "NAME=IP[:PORT]")]
    pub resolvers: Vec<String>,
    /// An authoritative address to ask (repeatable); default: every address
    /// of the zone's NS, found through the first resolver.
    #[arg(long = "authority", value_name = "IP[:PORT]")]
    pub servers: Vec<String>,
    /// The port of the authoritative servers.
    #[arg(long, default_value_t = 53)]
    pub port: u16,
    /// How long to wait for each reply (500ms, 2s…; 1ms to 1 day).
    #[arg(long, default_value = "2s", value_parser = super::common::timeout)]
    pub timeout: Duration,
    /// How many times to ask again after a timeout.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// An expected value (repeatable; values of one NAME and TYPE form the
    /// expected RRset), e.g. --expect www A 192.0.2.10.
    #[arg(long, num_args = 3, value_names = ["NAME", "TYPE", "VALUE"], action = ArgAction::Append)]
    pub expect: Vec<String>,
    /// Print the observations as JSON (one document per round with --watch).
    #[arg(long)]
    pub json: bool,
    /// Check again every --interval until everything agrees, then exit 0.
    #[arg(long)]
    pub watch: bool,
    /// The time between two rounds of --watch (300ms, 2s, 1m…; 100ms to 1 day).
    #[arg(long, default_value = "2s", value_parser = super::common::interval)]
    pub interval: Duration,
    /// Ask from the locations of a serve's agents, through its API
    /// (`--server URL` with an admin token): `all` (the serve itself and
    /// every agent's location) or LOC[,LOC] (`local` is the serve). Each
    /// agent asks its own resolvers; `--resolver` (IP[:PORT]) is the
    /// serve's. Prints location × server with the value each sees and the
    /// TTL left.
    #[arg(long, value_name = "all|LOC[,LOC]")]
    pub from: Option<String>,
}

/// The types `--type` asks for (A and AAAA when none is given).
fn asked_types(args: &CheckArgs) -> anyhow::Result<Vec<RecordType>> {
    if args.types.is_empty() {
        return Ok(vec![RecordType::A, RecordType::AAAA]);
    }
    args.types.iter().map(|t| record_type(t)).collect()
}

/// The request of `check --from` through the API: the zone, its RRsets,
/// the authorities and the serve's resolvers, and the locations.
pub fn from_request(args: &CheckArgs, from: &str) -> anyhow::Result<CheckFromRequest> {
    let zone = zone_name(&args.zone)?;
    let types = asked_types(args)?;
    let mut rrsets = Vec::new();
    for name in &args.names {
        let name = owner_name(name, &zone)?;
        for rtype in &types {
            rrsets.push(FromQuestion {
                name: name.to_string(),
                rtype: rtype.to_string(),
            });
        }
    }
    let locations = if from == "all" {
        Locations::All
    } else {
        let mut listed: Vec<String> = Vec::new();
        for location in from.split(',').map(str::trim) {
            if !cutover_migrate::file::valid_location(location) {
                bail!("--from {from:?}: {location:?} is not a location name (`all`, or LOC[,LOC])");
            }
            if !listed.iter().any(|l| l == location) {
                listed.push(location.to_owned());
            }
        }
        Locations::Listed(listed)
    };
    let authorities = args
        .servers
        .iter()
        .map(|text| socket_address(text, args.port))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let resolvers = args
        .resolvers
        .iter()
        .map(|text| socket_address(text, 53))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| anyhow!("--resolver with --from: {e} (the serve's resolvers, IP[:PORT])"))?;
    if authorities.is_empty() && resolvers.is_empty() {
        bail!("--from: give --authority (the zone's servers) or --resolver (the serve's), or both");
    }
    Ok(CheckFromRequest {
        zone: zone.to_string(),
        rrsets,
        verify: Verify {
            authorities,
            resolvers,
            locations,
            ..Verify::default()
        },
    })
}

/// Prints what each location saw: a row per location, server and RRset
/// with the value and the TTL (for a resolver: what it has left), then
/// what could not be asked; `--json`: the API's answer.
pub fn print_from(result: &CheckFromResult, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(result)?);
        if !result.locations.iter().all(|l| clean(&l.survey)) {
            bail!("not every location answered without a problem");
        }
        return Ok(());
    }
    let mut table = Table::new(["LOCATION", "ROLE", "SERVER", "RRSET", "VALUE", "TTL"]).right(&[5]);
    let mut problems = Vec::new();
    for located in &result.locations {
        for (role, views) in [
            ("authority", &located.survey.authorities),
            ("resolver", &located.survey.resolvers),
        ] {
            for view in views.iter() {
                let server = match view.serial {
                    Some(serial) => format!("{} (serial {serial})", view.server),
                    None => view.server.clone(),
                };
                if view.answers.is_empty() {
                    table.row([located.location.as_str(), role, &server, "-", "-", "-"]);
                }
                for answer in &view.answers {
                    let value = match &answer.error {
                        Some(error) => error.clone(),
                        None if answer.values.is_empty() => "(none)".to_owned(),
                        None => answer.values.join(" "),
                    };
                    let tone = if answer.error.is_some() {
                        Tone::Alarm
                    } else {
                        Tone::Plain
                    };
                    table.toned(
                        tone,
                        [
                            located.location.clone(),
                            role.to_owned(),
                            server.clone(),
                            format!("{} {}", answer.name, answer.rtype),
                            value,
                            answer.ttl.map_or("-".to_owned(), |t| t.to_string()),
                        ],
                    );
                }
            }
        }
        for problem in &located.survey.problems {
            problems.push(format!("{}: {problem}", located.location));
        }
    }
    table.print();
    for problem in &problems {
        println!("problem: {problem}");
    }
    let clean = result.locations.iter().filter(|l| clean(&l.survey)).count();
    let total = result.locations.len();
    println!(
        "{clean} of {total} location{} answered without a problem",
        if total == 1 { "" } else { "s" }
    );
    if clean < total {
        bail!("not every location answered without a problem (see above)");
    }
    Ok(())
}

/// True when a location's survey has no problem and no answer in error (a
/// timeout or SERVFAIL is not an answer without a problem).
fn clean(survey: &cutover_migrate::observe::Survey) -> bool {
    survey.problems.is_empty()
        && survey
            .authorities
            .iter()
            .chain(&survey.resolvers)
            .all(|view| view.answers.iter().all(|a| a.error.is_none()))
}

/// One expected RRset.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Expectation {
    /// What is asked.
    question: Question,
    /// The expected RDATA, sorted and without duplicates.
    rdatas: Vec<Rdata>,
}

/// The command line, parsed: what to ask, of whom.
#[derive(Clone, Debug)]
struct Plan {
    /// The zone apex.
    zone: Name,
    /// The RRsets of interest.
    questions: Vec<Question>,
    /// The `--expect` values, one per question.
    expectations: Vec<Expectation>,
    /// The resolvers (the first one also finds the servers).
    resolvers: Vec<Resolver>,
    /// The servers given with `--authority`, or None to find them.
    servers: Option<Vec<ServerId>>,
    /// The port of the authoritative servers.
    port: u16,
}

/// What one round of queries saw.
#[derive(Clone, Debug)]
struct Round {
    /// The authoritative view.
    survey: AuthoritySurvey,
    /// One observation per resolver and question.
    caches: Vec<CacheObservation>,
    /// Messages sent by the whole round.
    messages_sent: u64,
}

/// What one authoritative address said about one question.
#[derive(Clone, Debug, Serialize)]
struct ServerRow {
    /// The NS name the address was found under ("(given)" for --authority).
    ns: String,
    /// The address and port asked.
    address: String,
    /// The zone's serial at this address.
    serial: Option<u32>,
    /// The question, "NAME TYPE".
    question: String,
    /// The answer in words (records, NODATA, NXDOMAIN, the failure).
    answer: String,
    /// The RDATA of the asked type, in zone-file form.
    records: Vec<String>,
    /// The TTL the server gives.
    ttl: Option<u32>,
    /// What needs a look; empty when all is well.
    flags: Vec<String>,
}

/// What one resolver said about one question.
#[derive(Clone, Debug, Serialize)]
struct ResolverRow {
    /// The resolver's label.
    resolver: String,
    /// Its address and port.
    address: String,
    /// The question, "NAME TYPE".
    question: String,
    /// The serial, when the question is an SOA.
    serial: Option<u32>,
    /// The answer in words.
    answer: String,
    /// The RDATA of the asked type, in zone-file form.
    records: Vec<String>,
    /// The TTL left in the cache.
    ttl_left: Option<u32>,
    /// When this cache will have let go of what it holds (RFC 3339).
    released_at: Option<String>,
    /// Seconds from the check to `released_at`.
    released_in_seconds: Option<u64>,
    /// True when it gives what the newest servers give (and any --expect).
    agrees: bool,
    /// What needs a look; empty when all is well.
    flags: Vec<String>,
}

/// Everything one round saw and its verdict: the table and the JSON.
#[derive(Clone, Debug, Serialize)]
struct Report {
    /// The zone.
    zone: String,
    /// When the round finished (RFC 3339).
    checked_at: String,
    /// The newest serial any server gave.
    newest_serial: Option<u32>,
    /// One row per authoritative address and question.
    servers: Vec<ServerRow>,
    /// One row per resolver and question.
    resolvers: Vec<ResolverRow>,
    /// Sentences about the zone as a whole (lagging serials,
    /// disagreements, delegation, failures), and notes about the discovery.
    flags: Vec<String>,
    /// How the servers were found, when that did not go to plan.
    notes: Vec<String>,
    /// When every cache will have let go of what it holds now.
    all_released_at: Option<String>,
    /// Seconds from the check to `all_released_at`.
    all_released_in_seconds: Option<u64>,
    /// When every cache holding other data than the servers will have let go of it.
    old_data_released_at: Option<String>,
    /// Seconds from the check to `old_data_released_at`.
    old_data_released_in_seconds: Option<u64>,
    /// True when everything agrees and matches every --expect.
    agrees: bool,
    /// DNS messages sent by the round.
    messages_sent: u64,
}

impl Plan {
    /// Reads the command line; the resolvers default to /etc/resolv.conf.
    fn from_args(args: &CheckArgs) -> anyhow::Result<Plan> {
        let zone = zone_name(&args.zone)?;
        let types = asked_types(args)?;
        let mut questions = Vec::new();
        for name in &args.names {
            let name = owner_name(name, &zone)?;
            for rtype in &types {
                push_new(&mut questions, Question::new(name.clone(), *rtype));
            }
        }
        let expectations = expectations(&args.expect, &zone)?;
        for expectation in &expectations {
            push_new(&mut questions, expectation.question.clone());
        }
        if questions.is_empty() {
            questions.push(Question::new(zone.clone(), RecordType::SOA));
        }
        let resolvers = if args.resolvers.is_empty() {
            caches::system_resolvers()?
        } else {
            caches::listed_resolvers(&args.resolvers)?
        };
        let servers = if args.servers.is_empty() {
            None
        } else {
            let given = args
                .servers
                .iter()
                .map(|text| {
                    Ok(ServerId {
                        ns: Name::root(),
                        address: socket_address(text, args.port)?,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Some(given)
        };
        if servers.is_none() && resolvers.is_empty() {
            bail!(
                "no resolver to find the servers of {zone} with: give --resolver or --authority \
                 (/etc/resolv.conf lists none)"
            );
        }
        Ok(Plan {
            zone,
            questions,
            expectations,
            resolvers,
            servers,
            port: args.port,
        })
    }

    /// The expected RDATA for a question, if any was given.
    fn expected(&self, question: &Question) -> Option<&[Rdata]> {
        self.expectations
            .iter()
            .find(|e| e.question == *question)
            .map(|e| e.rdatas.as_slice())
    }
}

impl Report {
    /// Judges a round against the plan's expectations, with `history` (the
    /// earlier rounds' cache observations) to spot stale caches. Pure.
    fn build(plan: &Plan, round: &Round, history: &[CacheObservation], now: SystemTime) -> Report {
        let survey = &round.survey;
        let newest = survey.newest_serial();
        let mut servers = Vec::new();
        let mut agrees = survey.agrees() && !survey.servers.is_empty();
        for observation in &survey.servers {
            let id = &observation.server;
            let serial = observation.serial();
            let mut common = Vec::new();
            for flag in &survey.flags {
                match flag {
                    AuthorityFlag::SerialLags {
                        server,
                        serial,
                        newest,
                    } if server == id => {
                        common.push(format!("lagging: serial {serial} behind {newest}"))
                    }
                    AuthorityFlag::NotAuthoritative { server } if server == id => {
                        common.push("not authoritative (AA=0)".into())
                    }
                    AuthorityFlag::Failure {
                        server,
                        question,
                        outcome,
                    } if server == id && question.rtype == RecordType::SOA => {
                        common.push(format!("SOA failed: {outcome}"))
                    }
                    _ => {}
                }
            }
            for (question, outcome) in &observation.answers {
                let mut flags = common.clone();
                if outcome.is_failure() {
                    flags.push(format!("failed: {outcome}"));
                } else if let Some(reference) = survey.reference(question) {
                    let key = AnswerKey::of(outcome, question.rtype);
                    if key != AnswerKey::of(reference, question.rtype) {
                        flags.push("differs from the newest servers".into());
                    }
                }
                if let Some(expected) = plan.expected(question) {
                    if !matches_expectation(outcome, question.rtype, expected) {
                        flags.push(format!("expected {}", rdatas_text(expected)));
                        agrees = false;
                    }
                }
                servers.push(ServerRow {
                    ns: if id.ns.is_root() {
                        "(given)".into()
                    } else {
                        id.ns.to_string()
                    },
                    address: id.address.to_string(),
                    serial: serial.map(|s| s.0),
                    question: question.to_string(),
                    answer: answer_text(outcome, question.rtype),
                    records: records(outcome, question.rtype),
                    ttl: outcome.cache_ttl(question.rtype),
                    flags,
                });
            }
        }
        let cache_report = caches::judge(&round.caches, |q| survey.reference(q), history);
        let resolvers: Vec<ResolverRow> = cache_report
            .views
            .iter()
            .map(|view| {
                let row = resolver_row(plan, view, now);
                if !row.agrees {
                    agrees = false;
                }
                row
            })
            .collect();
        let mut notes = Vec::new();
        if plan.servers.is_none() {
            if let Err(outcome) = &survey.apex_servers {
                notes.push(format!(
                    "the NS set of {} could not be read through {}: {outcome}",
                    plan.zone, plan.resolvers[0].address
                ));
            }
            if let Delegation::Unreachable(why) = &survey.delegation {
                notes.push(format!("the parent's delegation was not checked: {why}"));
            }
        }
        if survey.servers.is_empty() {
            notes.push(format!(
                "no authoritative address of {} was found",
                plan.zone
            ));
        }
        let seconds = |t: Option<SystemTime>| {
            t.map(|t| t.duration_since(now).map(|d| d.as_secs()).unwrap_or(0))
        };
        Report {
            zone: plan.zone.to_string(),
            checked_at: timestamp(now),
            newest_serial: newest.map(|s| s.0),
            servers,
            resolvers,
            flags: survey.flags.iter().map(|f| f.to_string()).collect(),
            notes,
            all_released_at: cache_report.all_released_at.map(timestamp),
            all_released_in_seconds: seconds(cache_report.all_released_at),
            old_data_released_at: cache_report.old_data_released_at.map(timestamp),
            old_data_released_in_seconds: seconds(cache_report.old_data_released_at),
            agrees,
            messages_sent: round.messages_sent,
        }
    }

    /// The report as an aligned table, the zone-wide flags and the verdict;
    /// with `colour`, the header bold and the rows with a flag red.
    fn table(&self, colour: bool) -> String {
        let mut table = Table::new([
            "SERVER/RESOLVER",
            "ADDRESS",
            "QUESTION",
            "SERIAL",
            "ANSWER",
            "TTL",
            "LETS GO",
            "FLAGS",
        ]);
        let dash = || "-".to_string();
        let optional = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(dash);
        let tone = |flags: &[String]| match flags.is_empty() {
            true => Tone::Plain,
            false => Tone::Alarm,
        };
        for row in &self.servers {
            table.toned(
                tone(&row.flags),
                [
                    format!("server {}", row.ns),
                    row.address.clone(),
                    row.question.clone(),
                    optional(row.serial),
                    row.answer.clone(),
                    optional(row.ttl),
                    dash(),
                    flags_text(&row.flags),
                ],
            );
        }
        for row in &self.resolvers {
            let lets_go = match (&row.released_at, row.released_in_seconds) {
                (Some(at), Some(seconds)) => format!("{} (in {seconds} s)", clock_part(at)),
                _ => dash(),
            };
            table.toned(
                tone(&row.flags),
                [
                    format!("resolver {}", row.resolver),
                    row.address.clone(),
                    row.question.clone(),
                    optional(row.serial),
                    row.answer.clone(),
                    optional(row.ttl_left),
                    lets_go,
                    flags_text(&row.flags),
                ],
            );
        }
        let mut out = format!("{} checked at {}\n", self.zone, self.checked_at);
        out.push_str(&table.render(colour));
        for flag in &self.flags {
            out.push_str(&format!("flag: {flag}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        if let (Some(at), Some(seconds)) = (&self.all_released_at, self.all_released_in_seconds) {
            out.push_str(&format!(
                "every cache will have let go of what it holds now by {at} (in {seconds} s)\n"
            ));
        }
        if let (Some(at), Some(seconds)) = (
            &self.old_data_released_at,
            self.old_data_released_in_seconds,
        ) {
            out.push_str(&format!(
                "caches holding other data than the servers let go of it by {at} (in {seconds} s)\n"
            ));
        }
        out.push_str(if self.agrees {
            "verdict: everything agrees\n"
        } else {
            "verdict: NOT everything agrees\n"
        });
        out
    }
}

/// Runs `cutover check`.
pub fn run(args: &CheckArgs) -> anyhow::Result<()> {
    if args.from.is_some() {
        bail!("--from asks the agents of a running serve: give --server URL (before `check`) and an admin --token");
    }
    let plan = Plan::from_args(args)?;
    let client = Client::new(QueryOptions {
        timeout: args.timeout,
        attempts: args.retries.saturating_add(1),
        ..QueryOptions::default()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let terminal = std::io::stdout().is_terminal();
    let colour = crate::commands::common::colour_on(&std::io::stdout());
    let mut history: Vec<CacheObservation> = Vec::new();
    loop {
        let round = runtime.block_on(observe(&plan, &client));
        let report = Report::build(&plan, &round, &history, SystemTime::now());
        history.extend(round.caches);
        if history.len() > HISTORY_LIMIT {
            history.drain(..history.len() - HISTORY_LIMIT);
        }
        let mut out = std::io::stdout().lock();
        if args.watch && terminal && !args.json {
            // Clear the screen (only a terminal): the table replaces the
            // previous one. In a pipe each round follows the last.
            write!(out, "\x1b[H\x1b[2J")?;
        }
        if args.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            write!(out, "{}", report.table(colour))?;
        }
        out.flush()?;
        drop(out);
        if report.agrees {
            return Ok(());
        }
        if !args.watch {
            bail!("{}: not everything agrees (see the flags above)", plan.zone);
        }
        countdown(
            args.interval,
            &report,
            // stderr: with --json too, the wait is said beside the documents.
            Display::choose(std::io::stderr().is_terminal() && !args.json, false),
        );
    }
}

/// Waits `interval` before the next round of `--watch`, showing the
/// countdown to the moment the old data is gone from every cache: on a
/// terminal redrawn in place, elsewhere one line.
fn countdown(interval: Duration, report: &Report, display: Display) {
    let release = report
        .old_data_released_in_seconds
        .or(report.all_released_in_seconds);
    if display != Display::Live {
        if let (Some(seconds), Display::Plain) = (release, display) {
            eprintln!("waiting: caches let go in {seconds} s; checking again");
        }
        std::thread::sleep(interval);
        return;
    }
    let started = std::time::Instant::now();
    let countdown = Countdown::start(Stream::Stderr, interval, 0);
    while started.elapsed() < interval {
        let elapsed = started.elapsed();
        let left = interval.saturating_sub(elapsed);
        let next = left.as_secs_f64().ceil() as u64;
        let words = match release.map(|s| s.saturating_sub(elapsed.as_secs())) {
            Some(gone) => format!("caches let go in {gone} s · next check in {next} s"),
            None => format!("next check in {next} s"),
        };
        countdown.show(left, words);
        std::thread::sleep(left.min(Duration::from_millis(250)));
    }
}

/// One round of queries: the servers (found or given) and the resolvers,
/// the resolvers asked while the servers are.
async fn observe(plan: &Plan, client: &Client) -> Round {
    let sent_before = client.messages_sent();
    let authority = async {
        match &plan.servers {
            None => {
                let target = AuthorityTarget {
                    zone: plan.zone.clone(),
                    questions: plan.questions.clone(),
                    resolver: plan.resolvers[0].address,
                    port: plan.port,
                };
                authority::survey(client, &target).await
            }
            Some(servers) => {
                let observations =
                    authority::examine(client, &plan.zone, servers, &plan.questions).await;
                AuthoritySurvey {
                    zone: plan.zone.clone(),
                    apex_servers: Ok(Vec::new()),
                    delegation: Delegation::Unreachable("the servers were given".into()),
                    flags: authority::judge(&observations),
                    servers: observations,
                    messages_sent: 0,
                }
            }
        }
    };
    let clock = Arc::new(SystemClock);
    let (survey, caches) = tokio::join!(
        authority,
        caches::observe(client, &plan.resolvers, &plan.questions, clock)
    );
    Round {
        survey,
        caches,
        messages_sent: client.messages_sent() - sent_before,
    }
}

/// The row of one resolver's view, with the `--expect` check. Pure.
fn resolver_row(plan: &Plan, view: &CacheView, now: SystemTime) -> ResolverRow {
    let observation = &view.observation;
    let rtype = observation.question.rtype;
    let mut flags: Vec<String> = view.flags.iter().map(cache_flag_text).collect();
    let mut agrees = view.agrees
        && !view
            .flags
            .iter()
            .any(|f| matches!(f, CacheFlag::Stale { .. } | CacheFlag::Failure(_)));
    if let Some(expected) = plan.expected(&observation.question) {
        if !matches_expectation(&observation.outcome, rtype, expected) {
            flags.push(format!("expected {}", rdatas_text(expected)));
            agrees = false;
        }
    }
    let serial = observation
        .outcome
        .answer()
        .and_then(|a| a.of_type(RecordType::SOA).next())
        .and_then(|r| r.rdata.as_soa())
        .filter(|_| rtype == RecordType::SOA)
        .map(|soa| soa.serial);
    ResolverRow {
        resolver: observation.resolver.label.clone(),
        address: observation.resolver.address.to_string(),
        question: observation.question.to_string(),
        serial,
        answer: answer_text(&observation.outcome, rtype),
        records: records(&observation.outcome, rtype),
        ttl_left: view.remaining_ttl,
        released_at: view.released_at.map(timestamp),
        released_in_seconds: view
            .released_at
            .map(|t| t.duration_since(now).map(|d| d.as_secs()).unwrap_or(0)),
        agrees,
        flags,
    }
}

/// A cache flag in a few words, for the FLAGS column.
fn cache_flag_text(flag: &CacheFlag) -> String {
    match flag {
        CacheFlag::TtlAboveAuthority {
            seen,
            authoritative,
        } => format!("TTL floor: {seen} above the servers' {authoritative}"),
        CacheFlag::Stale { expired_at } => format!("stale: expired at {}", timestamp(*expired_at)),
        CacheFlag::Differs => "differs from the newest servers".into(),
        CacheFlag::Failure(outcome) => format!("failed: {outcome}"),
    }
}

/// True when the outcome holds exactly the expected RDATA.
fn matches_expectation(outcome: &Outcome, rtype: RecordType, expected: &[Rdata]) -> bool {
    outcome
        .answer()
        .is_some_and(|answer| answer.rdatas(rtype) == expected)
}

/// The RDATA of the asked type in zone-file form.
fn records(outcome: &Outcome, rtype: RecordType) -> Vec<String> {
    outcome
        .answer()
        .map(|a| a.rdatas(rtype).iter().map(rdata_text).collect())
        .unwrap_or_default()
}

/// An outcome in a few words: its records of the asked type (or the whole
/// chain when there are none), NODATA, NXDOMAIN, or the failure.
fn answer_text(outcome: &Outcome, rtype: RecordType) -> String {
    match outcome {
        Outcome::Answer(answer) => {
            let of_type = records(outcome, rtype);
            if of_type.is_empty() {
                let all: Vec<String> = answer
                    .records
                    .iter()
                    .map(|r| format!("{} {}", r.rdata.rtype(), rdata_text(&r.rdata)))
                    .collect();
                all.join(", ")
            } else {
                of_type.join(", ")
            }
        }
        other => other.to_string(),
    }
}

/// Some RDATA in zone-file form, joined.
fn rdatas_text(rdatas: &[Rdata]) -> String {
    let texts: Vec<String> = rdatas.iter().map(rdata_text).collect();
    texts.join(", ")
}

/// The flags of a row, or "ok".
fn flags_text(flags: &[String]) -> String {
    if flags.is_empty() {
        "ok".into()
    } else {
        flags.join("; ")
    }
}

/// The time of day of an RFC 3339 timestamp ("12:00:05Z").
fn clock_part(timestamp: &str) -> &str {
    timestamp
        .split_once('T')
        .map(|(_, time)| time)
        .unwrap_or(timestamp)
}

/// Appends a question unless it is already there.
fn push_new(questions: &mut Vec<Question>, question: Question) {
    if !questions.contains(&question) {
        questions.push(question);
    }
}

/// The `--expect NAME TYPE VALUE` triples, grouped into one RRset per name
/// and type.
fn expectations(values: &[String], zone: &Name) -> anyhow::Result<Vec<Expectation>> {
    let mut grouped: Vec<(Question, BTreeSet<Rdata>)> = Vec::new();
    for triple in values.chunks(3) {
        let [name, rtype, value] = triple else {
            bail!("--expect takes three values: NAME TYPE VALUE, saw {triple:?}");
        };
        let name = owner_name(name, zone)?;
        let rtype = record_type(rtype)?;
        let rdata = zonefile::rdata_from_text(rtype, value, zone)
            .map_err(|e| anyhow!("--expect {name} {rtype} {value:?}: {e}"))?;
        let question = Question::new(name, rtype);
        match grouped.iter_mut().find(|(q, _)| *q == question) {
            Some((_, set)) => {
                set.insert(rdata);
            }
            None => grouped.push((question, BTreeSet::from([rdata]))),
        }
    }
    Ok(grouped
        .into_iter()
        .map(|(question, set)| Expectation {
            question,
            rdatas: set.into_iter().collect(),
        })
        .collect())
}

/// A name from the command line: "@" is the apex, a name ending in "." is
/// absolute, any other is relative to the zone.
fn owner_name(text: &str, zone: &Name) -> anyhow::Result<Name> {
    if text == "@" {
        return Ok(zone.clone());
    }
    let name = Name::from_str(text).map_err(|e| anyhow!("invalid name {text:?}: {e}"))?;
    if name.is_fqdn() {
        return Ok(name);
    }
    name.append_domain(zone)
        .map_err(|e| anyhow!("invalid name {text:?} in {zone}: {e}"))
}

/// A record type by mnemonic (or TYPEnnn).
fn record_type(text: &str) -> anyhow::Result<RecordType> {
    let upper = text.to_ascii_uppercase();
    if let Some(code) = upper
        .strip_prefix("TYPE")
        .and_then(|n| n.parse::<u16>().ok())
    {
        return Ok(RecordType::from(code));
    }
    match RecordType::from_str(&upper) {
        Ok(RecordType::Unknown(_)) | Err(_) => Err(anyhow!("unknown record type {text:?}")),
        Ok(rtype) => Ok(rtype),
    }
}

/// An address from the command line: IP (with `default_port`), IP:PORT or
/// [IPv6]:PORT.
fn socket_address(text: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    text.parse::<SocketAddr>()
        .map_err(|_| anyhow!("server address {text:?} is not IP, IP:PORT or [IPv6]:PORT"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_probe::authority::ServerObservation;
    use cutover_probe::dns::Answer;
    use cutover_zone::rdata::Soa;
    use cutover_zone::Record;

    /// A name from text.
    fn name(text: &str) -> Name {
        Name::from_str(text).unwrap()
    }

    /// An answer with one A record 192.0.2.`octet`.
    fn a(octet: u8, ttl: u32, authoritative: bool) -> Outcome {
        Outcome::Answer(Answer {
            records: vec![Record {
                name: name("www.example.test."),
                ttl,
                rdata: Rdata::a([192, 0, 2, octet].into()),
            }],
            authoritative,
        })
    }

    /// An SOA answer with `serial`.
    fn soa(serial: u32) -> Outcome {
        let origin = name("example.test.");
        Outcome::Answer(Answer {
            records: vec![Record {
                name: origin.clone(),
                ttl: 60,
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

    /// A plan for www A with the given expectation.
    fn plan(expect: &[&str]) -> Plan {
        let zone = name("example.test.");
        let expect: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
        Plan {
            questions: vec![Question::new(name("www.example.test."), RecordType::A)],
            expectations: expectations(&expect, &zone).unwrap(),
            zone,
            resolvers: vec![Resolver {
                label: "office".into(),
                address: "127.0.0.1:53".parse().unwrap(),
            }],
            servers: None,
            port: 53,
        }
    }

    /// A round where ns1 (serial 2) and ns2 (serial `ns2_serial`) answer,
    /// and the office cache holds 192.0.2.`cached`.
    fn round(ns2_serial: u32, ns2_www: u8, cached: u8, at: SystemTime) -> Round {
        let www = Question::new(name("www.example.test."), RecordType::A);
        let server = |ns: &str, last: u8, serial: u32, octet: u8| ServerObservation {
            server: ServerId {
                ns: name(ns),
                address: SocketAddr::from(([127, 0, 0, last], 53)),
            },
            soa: soa(serial),
            answers: vec![(www.clone(), a(octet, 60, true))],
        };
        let servers = vec![
            server("ns1.example.test.", 1, 2, 1),
            server("ns2.example.test.", 2, ns2_serial, ns2_www),
        ];
        Round {
            survey: AuthoritySurvey {
                zone: name("example.test."),
                apex_servers: Ok(vec![]),
                delegation: Delegation::Unreachable("test".into()),
                flags: authority::judge(&servers),
                servers,
                messages_sent: 0,
            },
            caches: vec![CacheObservation {
                resolver: Resolver {
                    label: "office".into(),
                    address: "127.0.0.1:53".parse().unwrap(),
                },
                question: www,
                observed_at: at,
                outcome: a(cached, 42, false),
            }],
            messages_sent: 6,
        }
    }

    #[test]
    fn a_lagging_server_and_an_old_cache_fail_the_check_with_the_release_time() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let report = Report::build(&plan(&[]), &round(1, 100, 100, now), &[], now);
        assert!(!report.agrees, "a lagging server must fail the check");
        let ns2 = &report.servers[1];
        assert!(
            ns2.flags.iter().any(|f| f == "lagging: serial 1 behind 2"),
            "expected ns2 flagged as lagging, saw {:?}",
            ns2.flags
        );
        assert_eq!(report.servers[0].flags, Vec::<String>::new());
        let office = &report.resolvers[0];
        assert_eq!(
            (office.ttl_left, office.released_in_seconds, office.agrees),
            (Some(42), Some(42), false)
        );
        assert_eq!(
            report.old_data_released_at.as_deref(),
            Some("2023-11-14T22:14:02Z")
        );
        let table = report.table(false);
        let line = table
            .lines()
            .find(|l| l.contains("127.0.0.2:53"))
            .expect("a line for ns2");
        assert!(line.contains("lagging"), "ns2's line: {line}");
        assert!(
            table.ends_with("verdict: NOT everything agrees\n"),
            "{table}"
        );
    }

    #[test]
    fn everything_agreeing_passes_unless_an_expectation_differs() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let agreeing = round(2, 1, 1, now);
        let report = Report::build(&plan(&["www", "A", "192.0.2.1"]), &agreeing, &[], now);
        assert!(report.agrees, "all agree and match: {report:#?}");
        let report = Report::build(&plan(&["www", "A", "192.0.2.9"]), &agreeing, &[], now);
        assert!(!report.agrees, "192.0.2.9 was expected");
        assert!(report.resolvers[0]
            .flags
            .contains(&"expected 192.0.2.9".to_string()));
    }

    #[test]
    fn expectations_group_by_name_and_type() {
        let zone = name("example.test.");
        let values: Vec<String> = [
            "www",
            "A",
            "192.0.2.2",
            "www",
            "a",
            "192.0.2.1",
            "@",
            "MX",
            "10 mx",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let grouped = expectations(&values, &zone).unwrap();
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].rdatas.len(), 2, "two A values form one RRset");
        assert_eq!(grouped[1].question.name, zone, "@ is the apex");
        assert!(expectations(&["www".into(), "A".into(), "nope".into()], &zone).is_err());
    }
}
