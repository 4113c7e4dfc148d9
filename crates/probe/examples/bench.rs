//! Checks N names on some authoritative addresses and some resolver
//! addresses at once, and prints the wall time and the messages sent.
//!
//! Usage: `bench ZONE NAMES PORT --auth IP... --resolvers IP...`
//! (every server on PORT). Run by `bench/probe.sh`, which starts the servers.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_probe::authority::{self, ServerId};
use cutover_probe::caches::{self, Resolver, SystemClock};
use cutover_probe::dns::{Client, QueryOptions, Question};
use cutover_zone::{Name, RecordType};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench ZONE NAMES PORT --auth IP... --resolvers IP...";
    let zone = Name::from_str(args.first().expect(usage)).expect("ZONE is a domain name");
    let count: usize = args.get(1).and_then(|n| n.parse().ok()).expect(usage);
    let port: u16 = args.get(2).and_then(|n| n.parse().ok()).expect(usage);
    let split = args.iter().position(|a| a == "--resolvers").expect(usage);
    let ip = |a: &String| IpAddr::from_str(a).unwrap_or_else(|_| panic!("{a} is not an IP"));
    let auth: Vec<ServerId> = args[4..split]
        .iter()
        .map(|a| ServerId {
            ns: zone.clone(),
            address: SocketAddr::new(ip(a), port),
        })
        .collect();
    let resolvers: Vec<Resolver> = args[split + 1..]
        .iter()
        .map(|a| Resolver {
            label: a.clone(),
            address: SocketAddr::new(ip(a), port),
        })
        .collect();
    let questions: Vec<Question> = (0..count)
        .map(|i| {
            let name = Name::from_str(&format!("name{i}"))
                .unwrap()
                .append_domain(&zone)
                .unwrap();
            Question::new(name, RecordType::A)
        })
        .collect();
    let timeout = Duration::from_secs(2);
    let client = Client::new(QueryOptions {
        timeout,
        ..QueryOptions::default()
    });
    let started = Instant::now();
    let (servers, cached) = tokio::join!(
        authority::examine(&client, &zone, &auth, &questions),
        caches::observe(&client, &resolvers, &questions, Arc::new(SystemClock)),
    );
    let wall = started.elapsed();
    let flags_shown = authority::judge(&servers);
    for flag in flags_shown.iter().take(3) {
        println!("flag: {flag}");
    }
    let flags = authority::judge(&servers);
    let failed = cached.iter().filter(|o| o.outcome.is_failure()).count()
        + servers
            .iter()
            .flat_map(|s| &s.answers)
            .filter(|(_, o)| o.is_failure())
            .count();
    let queries = servers.len() * (questions.len() + 1) + cached.len();
    println!(
        "names={count} authoritative={} resolvers={} queries={queries} messages_sent={} failed={failed} authority_flags={} wall_ms={:.1} timeout_ms={}",
        auth.len(),
        resolvers.len(),
        client.messages_sent(),
        flags.len(),
        wall.as_secs_f64() * 1000.0,
        timeout.as_millis()
    );
}
