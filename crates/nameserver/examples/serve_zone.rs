//! Serves one zone file on UDP and TCP until the process is killed:
//! the benchmark's stand-in for `cutover serve` while the zone-file parser
//! and the CLI land.
//!
//! ```text
//!  serve_zone ZONEFILE ORIGIN ADDR [UDP_WORKERS]
//!    zone file ──hickory text parser──▶ Zone ──▶ ZoneSnapshot ──▶ Catalog ──▶ server::spawn
//! ```
//!
//! The zone file is read with hickory's text parser for now;
//! `cutover_zone::zonefile::parse_file` replaces it once that exists.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use cutover_nameserver::server::{spawn, ServerConfig};
use cutover_nameserver::{Catalog, ZoneSnapshot};
use cutover_zone::{Name, Rdata, Record, Zone};
use hickory_proto::serialize::txt::Parser;

/// Reads the zone and serves it until killed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: serve_zone ZONEFILE ORIGIN ADDR [UDP_WORKERS]".into());
    }
    let origin = Name::from_ascii(&args[2])?;
    let listen: SocketAddr = args[3].parse()?;
    let udp_workers = args.get(4).map(|w| w.parse()).transpose()?.unwrap_or(1);

    let text = std::fs::read_to_string(&args[1])?;
    let (_, rrsets) = Parser::new(text, None, Some(origin.clone())).parse()?;
    let mut zone = Zone::new(origin);
    for rrset in rrsets.values() {
        for record in rrset.records_without_rrsigs() {
            let rdata = Rdata::from_hickory(&record.data)?;
            zone.add(Record {
                name: record.name.clone(),
                ttl: record.ttl,
                rdata,
            })?;
        }
    }
    drop(rrsets);
    let records = zone.record_count();
    let snapshot = ZoneSnapshot::build(&zone);
    drop(zone);
    let catalog = Arc::new(ArcSwap::from_pointee(Catalog::new(vec![Arc::new(
        snapshot,
    )])));
    let config = ServerConfig {
        listen: vec![listen],
        udp_workers,
        ..ServerConfig::default()
    };
    let server = spawn(config, catalog)?;
    eprintln!(
        "serve_zone: {records} records on {:?}",
        server.local_addrs()
    );
    // Serve until killed (the bench sends SIGTERM); the kernel releases the
    // sockets, so there is nothing to shut down gracefully.
    let _server = server;
    loop {
        std::thread::park();
    }
}
