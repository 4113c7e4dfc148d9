//! Response rate limiting seen from outside, in the style of BIND's `rrl`
//! system test: the server on 127.0.0.1 with RRL on, bursts of queries from
//! real UDP and TCP sockets, and the answers, slips (TC=1) and drops counted
//! against what the configured rate allows.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use cutover_nameserver::rrl::{RrlConfig, RrlCounters};
use cutover_nameserver::server::{spawn, ServerConfig, ServerHandle};
use cutover_nameserver::{Catalog, ZoneSnapshot};
use cutover_zone::rdata::Soa;
use cutover_zone::{Name, Rdata, Record, RecordType, Zone};

/// Responses per second the tests configure.
const RATE: u32 = 10;

/// Queries per burst.
const BURST: usize = 60;

/// How long the client waits for more replies after the last one.
const QUIET: Duration = Duration::from_millis(400);

/// What came back for a burst.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    /// Full responses (TC=0).
    answered: usize,
    /// Truncated, empty responses (TC=1, no answer).
    slipped: usize,
    /// Queries with no reply.
    dropped: usize,
    /// How long sending the burst took.
    elapsed: Duration,
}

/// example.test. with A records at www and mail.
fn catalog() -> Catalog {
    let origin = Name::from_ascii("example.test.").unwrap();
    let mut zone = Zone::new(origin.clone());
    let ns = Name::from_ascii("ns.example.test.").unwrap();
    let soa = Soa {
        mname: ns.clone(),
        rname: Name::from_ascii("hostmaster.example.test.").unwrap(),
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 300,
    };
    let records = [
        (origin.clone(), Rdata::soa(&soa)),
        (origin.clone(), Rdata::name_only(RecordType::NS, &ns)),
        (ns, Rdata::a(Ipv4Addr::new(192, 0, 2, 53))),
        (
            Name::from_ascii("www.example.test.").unwrap(),
            Rdata::a(Ipv4Addr::new(192, 0, 2, 1)),
        ),
        (
            Name::from_ascii("mail.example.test.").unwrap(),
            Rdata::a(Ipv4Addr::new(192, 0, 2, 2)),
        ),
    ];
    for (name, rdata) in records {
        zone.add(Record {
            name,
            ttl: 3600,
            rdata,
        })
        .unwrap();
    }
    Catalog::new(vec![Arc::new(ZoneSnapshot::build(&zone))])
}

/// The server on 127.0.0.1 (port picked by the kernel) with `rrl`; stopped
/// when the handle drops.
fn start(rrl: RrlConfig) -> (ServerHandle, SocketAddr) {
    let config = ServerConfig {
        listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
        udp_workers: 2,
        rrl: Some(rrl),
        ..ServerConfig::default()
    };
    let handle = spawn(config, Arc::new(ArcSwap::from_pointee(catalog())))
        .expect("server must bind 127.0.0.1:0");
    let addr = handle.local_addrs()[0];
    (handle, addr)
}

/// RRL at [`RATE`], slip 2, every client address its own prefix.
fn config() -> RrlConfig {
    RrlConfig {
        responses_per_second: RATE,
        slip: 2,
        ipv4_prefix: 32,
        ..RrlConfig::default()
    }
}

/// A query with `id` for `name` (dotted, no trailing dot), type A.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut msg = id.to_be_bytes().to_vec();
    msg.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.extend_from_slice(&[0, 0, 1, 0, 1]);
    msg
}

/// A UDP socket on `source`, port picked by the kernel.
fn client(source: Ipv4Addr) -> UdpSocket {
    let socket = UdpSocket::bind((source, 0)).expect("bind a loopback client socket");
    socket.set_read_timeout(Some(QUIET)).unwrap();
    socket
}

/// Sends one query per name in `names` from `socket` as fast as it can,
/// then counts the replies until none has come for [`QUIET`].
fn burst(socket: &UdpSocket, server: SocketAddr, names: &[String]) -> Tally {
    let start = Instant::now();
    for (id, name) in names.iter().enumerate() {
        socket.send_to(&query(id as u16, name), server).unwrap();
    }
    let elapsed = start.elapsed();
    let mut seen = vec![false; names.len()];
    let mut tally = Tally {
        elapsed,
        ..Tally::default()
    };
    let mut buf = [0u8; 4096];
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        let reply = &buf[..n];
        assert!(n >= 12, "a reply shorter than a header: {reply:?}");
        let id = usize::from(u16::from_be_bytes([reply[0], reply[1]]));
        assert!(id < names.len() && !seen[id], "unexpected reply ID {id}");
        seen[id] = true;
        let question = &query(id as u16, &names[id])[12..];
        assert_eq!(
            reply.get(12..12 + question.len()),
            Some(question),
            "reply {id} must echo its question"
        );
        let ancount = u16::from_be_bytes([reply[6], reply[7]]);
        if reply[2] & 0x02 != 0 {
            assert_eq!(ancount, 0, "a slipped reply carries no answer");
            assert_eq!(
                n,
                12 + question.len(),
                "a slipped reply is header + question"
            );
            tally.slipped += 1;
        } else {
            tally.answered += 1;
        }
    }
    tally.dropped = names.len() - tally.answered - tally.slipped;
    tally
}

/// `n` copies of `name`.
fn same(name: &str, n: usize) -> Vec<String> {
    vec![name.to_string(); n]
}

/// Checks a limited burst against the rate: the first second's worth
/// answered (plus what the rate refilled while the burst was being sent),
/// then of the limited ones every second slipped and the rest dropped.
fn assert_limited(what: &str, tally: &Tally, sent: usize) {
    let refill = (f64::from(RATE) * tally.elapsed.as_secs_f64()).ceil() as usize;
    let most = RATE as usize + refill;
    assert!(
        (RATE as usize..=most).contains(&tally.answered),
        "{what}: expected {RATE} to {most} answered of {sent} (burst took {:?}); saw {tally:?}",
        tally.elapsed
    );
    let limited = sent - tally.answered;
    // Refilled answers can fall between limited ones; slips count only the
    // limited, so exactly every second one slips.
    assert_eq!(
        (tally.slipped, tally.dropped),
        (limited / 2, limited - limited / 2),
        "{what}: expected {limited} limited split into {} slipped and {} dropped; saw {tally:?}",
        limited / 2,
        limited - limited / 2
    );
}

#[test]
fn a_burst_of_identical_queries_is_answered_slipped_and_dropped() {
    let (server, addr) = start(config());
    let socket = client(Ipv4Addr::LOCALHOST);
    let tally = burst(&socket, addr, &same("www.example.test", BURST));
    assert_limited("www A from 127.0.0.1", &tally, BURST);
    let counters = server.rrl_counters().expect("RRL is on");
    assert_eq!(
        counters,
        RrlCounters {
            answered: tally.answered as u64,
            slipped: tally.slipped as u64,
            dropped: tally.dropped as u64,
        },
        "the server's counters must match what the client saw"
    );
}

#[test]
fn different_names_do_not_limit_each_other() {
    let (_server, addr) = start(config());
    let socket = client(Ipv4Addr::LOCALHOST);
    let www = burst(&socket, addr, &same("www.example.test", BURST));
    assert_limited("www A", &www, BURST);
    let mail = burst(&socket, addr, &same("mail.example.test", RATE as usize));
    assert_eq!(
        (mail.answered, mail.slipped, mail.dropped),
        (RATE as usize, 0, 0),
        "mail A right after www A was limited must get its own {RATE}/s; saw {mail:?}"
    );
}

#[test]
fn nxdomain_for_many_names_is_limited_as_one() {
    let (_server, addr) = start(config());
    let socket = client(Ipv4Addr::LOCALHOST);
    let names: Vec<String> = (0..BURST).map(|i| format!("n{i}.example.test")).collect();
    let tally = burst(&socket, addr, &names);
    assert_limited("NXDOMAIN for 60 different names", &tally, BURST);
}

#[test]
fn an_exempt_source_is_never_limited() {
    let exempt = Ipv4Addr::new(127, 0, 0, 2);
    let (server, addr) = start(RrlConfig {
        exempt: vec!["127.0.0.2/32".parse().unwrap()],
        ..config()
    });
    let tally = burst(&client(exempt), addr, &same("www.example.test", BURST));
    assert_eq!(
        (tally.answered, tally.slipped, tally.dropped),
        (BURST, 0, 0),
        "{exempt} is exempt: every query answered; saw {tally:?}"
    );
    // Another source on the same server is limited as usual.
    let other = burst(
        &client(Ipv4Addr::LOCALHOST),
        addr,
        &same("www.example.test", BURST),
    );
    assert_limited("127.0.0.1, not exempt", &other, BURST);
    let counters = server.rrl_counters().expect("RRL is on");
    assert_eq!(counters.answered, (BURST + other.answered) as u64);
}

#[test]
fn tcp_is_never_limited() {
    let (server, addr) = start(config());
    // Use up the UDP budget of 127.0.0.1 first.
    let udp = burst(
        &client(Ipv4Addr::LOCALHOST),
        addr,
        &same("www.example.test", BURST),
    );
    assert_limited("UDP before TCP", &udp, BURST);
    let before = server.rrl_counters().expect("RRL is on");
    let mut stream = TcpStream::connect(addr).expect("connect over TCP");
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut pipelined = Vec::new();
    for id in 0..BURST {
        let message = query(id as u16, "www.example.test");
        pipelined.extend_from_slice(&(message.len() as u16).to_be_bytes());
        pipelined.extend_from_slice(&message);
    }
    stream.write_all(&pipelined).unwrap();
    let mut full = 0;
    for _ in 0..BURST {
        let mut length = [0u8; 2];
        stream
            .read_exact(&mut length)
            .expect("every TCP query gets a reply");
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut reply).unwrap();
        let ancount = u16::from_be_bytes([reply[6], reply[7]]);
        if reply[2] & 0x02 == 0 && ancount == 1 {
            full += 1;
        }
    }
    assert_eq!(
        full, BURST,
        "over TCP all {BURST} queries get the full answer"
    );
    assert_eq!(
        server.rrl_counters(),
        Some(before),
        "TCP responses never reach the limiter"
    );
}

#[test]
fn without_rrl_nothing_is_limited_or_counted() {
    let config = ServerConfig {
        listen: vec![SocketAddr::from((IpAddr::from(Ipv4Addr::LOCALHOST), 0))],
        udp_workers: 1,
        ..ServerConfig::default()
    };
    let server = spawn(config, Arc::new(ArcSwap::from_pointee(catalog()))).unwrap();
    let addr = server.local_addrs()[0];
    let tally = burst(
        &client(Ipv4Addr::LOCALHOST),
        addr,
        &same("www.example.test", BURST),
    );
    assert_eq!((tally.answered, tally.slipped), (BURST, 0), "{tally:?}");
    assert_eq!(server.rrl_counters(), None);
}
