//! Times the answer function alone: nanoseconds per `answer()` call over a
//! million queries against a synthetic 100,000-record zone, no sockets.
//!
//! ```text
//!  answer_timing [CALLS]
//!    synthetic zone (A, AAAA, MX, CNAME, TXT like bench/gen-zone.py) ──▶ ZoneSnapshot::build
//!    queries: 90% names in the zone, 10% NXDOMAIN ──▶ answer() × CALLS ──▶ ns per call
//! ```
//!
//! Run it in release mode (`cargo run --release -p cutover-nameserver
//! --example answer_timing`); the best of three rounds is printed.

use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use cutover_nameserver::{answer, Catalog, Transport, ZoneSnapshot};
use cutover_zone::rdata::{push_name, Soa};
use cutover_zone::{Name, Rdata, Record, RecordType, Zone};

/// Records in the synthetic zone.
const HOSTS: u32 = 100_000;

/// Builds the zone, the queries, and times the calls.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let calls: usize = std::env::args()
        .nth(1)
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let zone = synthetic_zone()?;
    let started = Instant::now();
    let snapshot = ZoneSnapshot::build(&zone);
    eprintln!("snapshot of {HOSTS} hosts built in {:?}", started.elapsed());
    drop(zone);
    let catalog = Catalog::new(vec![Arc::new(snapshot)]);
    let queries: Vec<Vec<u8>> = (0..4096u32)
        .map(|i| {
            let host = i.wrapping_mul(2_654_435_761) % HOSTS;
            match i % 10 {
                0 => query(&format!("nx{host}.bench.test."), 1),
                _ => query(&format!("host{host:07}.bench.test."), 1),
            }
        })
        .collect();
    let mut response = Vec::with_capacity(65535);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        for i in 0..calls {
            let sent = answer(
                &catalog,
                &queries[i % queries.len()],
                Transport::Udp,
                &mut response,
            );
            black_box(sent);
        }
        best = best.min(started.elapsed().as_nanos() as f64 / calls as f64);
    }
    println!("{best:.1} ns per answer() call (best of 3 rounds of {calls})");
    Ok(())
}

/// A zone shaped like the benchmark's: one record per host, mixed types.
fn synthetic_zone() -> Result<Zone, Box<dyn std::error::Error>> {
    let origin = Name::from_str("bench.test.")?;
    let mut zone = Zone::new(origin.clone());
    let soa = Soa {
        mname: Name::from_str("ns1.bench.test.")?,
        rname: Name::from_str("hostmaster.bench.test.")?,
        serial: 1,
        refresh: 7200,
        retry: 3600,
        expire: 1_209_600,
        minimum: 300,
    };
    zone.add(Record {
        name: origin.clone(),
        ttl: 3600,
        rdata: Rdata::soa(&soa),
    })?;
    for i in 0..HOSTS {
        let name = Name::from_str(&format!("host{i:07}.bench.test."))?;
        let target = Name::from_str(&format!("host{:07}.bench.test.", i & !3))?;
        let rdata = match i % 8 {
            1 => {
                let mut wire = 10u16.to_be_bytes().to_vec();
                push_name(&mut wire, &target);
                Rdata::from_wire(RecordType::MX, &wire)?
            }
            3 if i & 3 != 0 => Rdata::name_only(RecordType::CNAME, &target),
            5 => Rdata::aaaa(std::net::Ipv6Addr::new(
                0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16,
            )),
            7 => Rdata::from_wire(RecordType::TXT, b"\x0ev=bench1 12345")?,
            _ => Rdata::a(std::net::Ipv4Addr::from(0x0a00_0000 | i)),
        };
        zone.add(Record {
            name,
            ttl: 3600,
            rdata,
        })?;
    }
    Ok(zone)
}

/// A query message for `name` and `qtype`, with EDNS (1232 bytes).
fn query(name: &str, qtype: u16) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    q
}
