//! The network server seen from outside: real UDP and TCP sockets on
//! 127.0.0.1, asserting what the server itself guarantees (ID and question
//! echoed, QR set, framing, timeouts, connection cap, catalog swaps, prompt
//! shutdown), whatever the answer engine says.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use cutover_nameserver::server::{spawn, ServerConfig, ServerHandle};
use cutover_nameserver::{Catalog, ZoneSnapshot};
use cutover_zone::rdata::Soa;
use cutover_zone::{Name, Rdata, Record, RecordType, Zone};

/// The zone the tests serve.
const ORIGIN: &str = "example.test.";

/// How long a test waits for any single reply.
const REPLY_WAIT: Duration = Duration::from_secs(3);

/// A server on 127.0.0.1, port picked by the kernel, stopped when dropped.
fn start(
    config: ServerConfig,
    catalog: Catalog,
) -> (ServerHandle, SocketAddr, Arc<ArcSwap<Catalog>>) {
    let catalog = Arc::new(ArcSwap::from_pointee(catalog));
    let config = ServerConfig {
        listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
        ..config
    };
    let handle = spawn(config, catalog.clone()).expect("server must bind 127.0.0.1:0");
    let addr = handle.local_addrs()[0];
    assert_ne!(addr.port(), 0, "local_addrs must report the port picked");
    (handle, addr, catalog)
}

/// One UDP worker, defaults otherwise.
fn small_config() -> ServerConfig {
    ServerConfig {
        udp_workers: 1,
        ..ServerConfig::default()
    }
}

/// A catalog holding example.test. with an A record at www.
fn example_catalog() -> Catalog {
    let origin = Name::from_ascii(ORIGIN).unwrap();
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

/// A query for `name` type A, class IN, with this ID (RD clear, no EDNS).
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut wire = Vec::with_capacity(64);
    wire.extend_from_slice(&id.to_be_bytes());
    wire.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.extend_from_slice(&[0, 0, 1, 0, 1]);
    wire
}

/// Checks what the server guarantees of any response to `sent`: same ID, QR
/// set, same opcode, the question echoed byte for byte.
fn assert_response_to(sent: &[u8], received: &[u8]) {
    assert!(
        received.len() >= sent.len(),
        "response of {} bytes to a {}-byte query: {received:?}",
        received.len(),
        sent.len()
    );
    assert_eq!(
        received[..2],
        sent[..2],
        "response ID must echo the query ID"
    );
    assert_eq!(
        received[2] & 0x80,
        0x80,
        "QR must be set, flags byte was {:#04x}",
        received[2]
    );
    assert_eq!(received[2] & 0x78, sent[2] & 0x78, "opcode must be echoed");
    assert_eq!(received[4..6], [0, 1], "QDCOUNT must be 1");
    assert_eq!(
        received[12..sent.len()],
        sent[12..],
        "the question must be echoed"
    );
}

/// The RCODE of a response.
fn rcode(response: &[u8]) -> u8 {
    response[3] & 0x0f
}

/// A UDP client socket with a receive timeout.
fn udp_client() -> UdpSocket {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket.set_read_timeout(Some(REPLY_WAIT)).unwrap();
    socket
}

/// Sends one UDP query and returns the reply.
fn udp_exchange(socket: &UdpSocket, server: SocketAddr, message: &[u8]) -> Vec<u8> {
    socket.send_to(message, server).unwrap();
    let mut buf = [0u8; 65535];
    let (n, from) = socket.recv_from(&mut buf).unwrap_or_else(|e| {
        panic!("expected a UDP reply from {server} within {REPLY_WAIT:?}, got {e}")
    });
    assert_eq!(from, server, "reply from the wrong address");
    buf[..n].to_vec()
}

/// A TCP connection with read/write timeouts.
fn tcp_client(server: SocketAddr) -> TcpStream {
    let stream =
        TcpStream::connect(server).unwrap_or_else(|e| panic!("TCP connect to {server}: {e}"));
    stream.set_read_timeout(Some(REPLY_WAIT)).unwrap();
    stream.set_write_timeout(Some(REPLY_WAIT)).unwrap();
    stream
}

/// `message` with its two-byte length prefix.
fn framed(message: &[u8]) -> Vec<u8> {
    let mut frame = (message.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(message);
    frame
}

/// Reads one length-prefixed message.
fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut prefix = [0u8; 2];
    stream
        .read_exact(&mut prefix)
        .unwrap_or_else(|e| panic!("expected a TCP response within {REPLY_WAIT:?}, got {e}"));
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream
        .read_exact(&mut message)
        .expect("a whole TCP response after its length");
    message
}

/// Waits for the server to close `stream`; returns how long that took.
fn time_until_closed(stream: &mut TcpStream, limit: Duration) -> Duration {
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        Ok(0) => started.elapsed(),
        Ok(n) => panic!("expected the connection to close, got {n} bytes"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => started.elapsed(),
        Err(e) => panic!("expected the server to close the connection within {limit:?}, got {e}"),
    }
}

#[test]
fn udp_query_is_answered_with_its_id_and_question() {
    let (_server, addr, _) = start(small_config(), example_catalog());
    let client = udp_client();
    for (id, name) in [
        (0x1234, "www.example.test."),
        (0xbeef, "nothing.example.test."),
        (7, "elsewhere.invalid."),
    ] {
        let sent = query(id, name);
        let received = udp_exchange(&client, addr, &sent);
        assert_response_to(&sent, &received);
    }
}

#[test]
fn tcp_query_is_answered_on_the_same_port_as_udp() {
    let (_server, addr, _) = start(small_config(), example_catalog());
    let mut stream = tcp_client(addr);
    let sent = query(0x4242, "www.example.test.");
    stream.write_all(&framed(&sent)).unwrap();
    let received = read_frame(&mut stream);
    assert_response_to(&sent, &received);
}

#[test]
fn pipelined_tcp_queries_are_all_answered() {
    let (_server, addr, _) = start(small_config(), example_catalog());
    let mut stream = tcp_client(addr);
    let queries: Vec<Vec<u8>> = (0..200u16)
        .map(|id| query(id, "www.example.test."))
        .collect();
    let all: Vec<u8> = queries.iter().flat_map(|q| framed(q)).collect();
    stream.write_all(&all).unwrap();
    let mut seen = vec![false; queries.len()];
    for _ in 0..queries.len() {
        let received = read_frame(&mut stream);
        let id = usize::from(u16::from_be_bytes([received[0], received[1]]));
        assert!(
            id < queries.len() && !seen[id],
            "unexpected or repeated response ID {id}"
        );
        assert_response_to(&queries[id], &received);
        seen[id] = true;
    }
    assert!(
        seen.iter().all(|&s| s),
        "every pipelined query must be answered"
    );
}

#[test]
fn idle_tcp_connection_is_closed_after_the_timeout() {
    let config = ServerConfig {
        tcp_idle_timeout: Duration::from_millis(300),
        ..small_config()
    };
    let (_server, addr, _) = start(config, example_catalog());

    let mut silent = tcp_client(addr);
    let waited = time_until_closed(&mut silent, Duration::from_secs(3));
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}, before the 300 ms idle timeout"
    );

    // A query resets the clock; half a frame does not.
    let mut stream = tcp_client(addr);
    let sent = query(1, "www.example.test.");
    stream.write_all(&framed(&sent)).unwrap();
    assert_response_to(&sent, &read_frame(&mut stream));
    stream.write_all(&framed(&sent)[..5]).unwrap();
    let waited = time_until_closed(&mut stream, Duration::from_secs(3));
    assert!(
        waited >= Duration::from_millis(250),
        "half a frame: closed after {waited:?}, expected the idle timeout"
    );
}

#[test]
fn broken_frames_do_not_disturb_other_connections() {
    let (_server, addr, _) = start(small_config(), example_catalog());
    let mut healthy = tcp_client(addr);

    // A frame announcing 300 bytes, 10 sent, then the client goes away.
    let mut truncated = tcp_client(addr);
    truncated
        .write_all(&[1, 44, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .unwrap();
    drop(truncated);

    // A zero-length frame: the server closes that connection.
    let mut empty = tcp_client(addr);
    empty.write_all(&[0, 0]).unwrap();
    time_until_closed(&mut empty, Duration::from_secs(2));

    // A frame of 5 garbage bytes: also closed, nothing else affected.
    let mut short = tcp_client(addr);
    short.write_all(&[0, 5, 1, 2, 3, 4, 5]).unwrap();
    time_until_closed(&mut short, Duration::from_secs(2));

    // Garbage over UDP: empty, 1 byte, a header with QR set, random bytes.
    let client = udp_client();
    for garbage in [
        &[][..],
        &[0],
        &[0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        &[0xff; 300],
    ] {
        client.send_to(garbage, addr).unwrap();
    }

    let sent = query(99, "www.example.test.");
    healthy.write_all(&framed(&sent)).unwrap();
    assert_response_to(&sent, &read_frame(&mut healthy));
    let sent = query(100, "www.example.test.");
    let mut reply = udp_exchange(&client, addr, &sent);
    // A reply to one of the garbage datagrams may arrive first; skip those.
    while reply[..2] != sent[..2] {
        let mut buf = [0u8; 65535];
        let n = client
            .recv(&mut buf)
            .expect("the reply to the valid UDP query");
        reply = buf[..n].to_vec();
    }
    assert_response_to(&sent, &reply);
}

#[test]
fn a_client_that_does_not_read_does_not_block_others() {
    let config = ServerConfig {
        tcp_idle_timeout: Duration::from_secs(5),
        ..small_config()
    };
    let (_server, addr, _) = start(config, example_catalog());
    let mut hog = tcp_client(addr);
    hog.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let burst: Vec<u8> = (0..20_000u16)
        .flat_map(|id| framed(&query(id, "www.example.test.")))
        .collect();
    // Fills both directions' buffers; the write may stall, which is the point.
    let _ = hog.write_all(&burst);

    let started = Instant::now();
    let mut other = tcp_client(addr);
    let sent = query(7, "www.example.test.");
    other.write_all(&framed(&sent)).unwrap();
    assert_response_to(&sent, &read_frame(&mut other));
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(1),
        "second client answered after {waited:?} while the first did not read"
    );
}

#[test]
fn connections_over_the_cap_are_closed_at_once() {
    let config = ServerConfig {
        tcp_max_connections: 2,
        ..small_config()
    };
    let (_server, addr, _) = start(config, example_catalog());
    let mut first = tcp_client(addr);
    let mut second = tcp_client(addr);
    // Make sure both are accepted before the third arrives.
    for (id, stream) in [(1u16, &mut first), (2, &mut second)] {
        let sent = query(id, "www.example.test.");
        stream.write_all(&framed(&sent)).unwrap();
        assert_response_to(&sent, &read_frame(stream));
    }
    let mut third = tcp_client(addr);
    let waited = time_until_closed(&mut third, Duration::from_secs(2));
    assert!(
        waited < Duration::from_secs(1),
        "third connection closed after {waited:?}"
    );

    drop(first);
    // The freed slot is usable again (the server notices the close promptly).
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut again = tcp_client(addr);
        let sent = query(3, "www.example.test.");
        let answered = again.write_all(&framed(&sent)).is_ok() && {
            let mut prefix = [0u8; 2];
            again.read_exact(&mut prefix).is_ok()
        };
        if answered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a slot freed by a closed connection was not reused within 2 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_swapped_catalog_is_seen_by_the_next_query() {
    let (_server, addr, catalog) = start(small_config(), Catalog::empty());
    let client = udp_client();
    let sent = query(1, "www.example.test.");
    let before = udp_exchange(&client, addr, &sent);
    assert_response_to(&sent, &before);
    assert_eq!(
        rcode(&before),
        5,
        "with no zones the answer must be REFUSED"
    );

    catalog.store(Arc::new(example_catalog()));
    let sent = query(2, "www.example.test.");
    let after = udp_exchange(&client, addr, &sent);
    assert_response_to(&sent, &after);
    assert_eq!(
        rcode(&after),
        0,
        "after the swap www.example.test. A must be NOERROR"
    );
    assert_eq!(
        after[2] & 0x04,
        0x04,
        "after the swap the answer must be authoritative (AA)"
    );

    let mut stream = tcp_client(addr);
    catalog.store(Arc::new(Catalog::empty()));
    let sent = query(3, "www.example.test.");
    stream.write_all(&framed(&sent)).unwrap();
    let over_tcp = read_frame(&mut stream);
    assert_eq!(
        rcode(&over_tcp),
        5,
        "TCP must see the swap back to no zones (REFUSED)"
    );
}

#[test]
fn shutdown_returns_promptly_and_closes_everything() {
    let (server, addr, _) = start(small_config(), example_catalog());
    let mut idle = tcp_client(addr);
    let sent = query(1, "www.example.test.");
    idle.write_all(&framed(&sent)).unwrap();
    assert_response_to(&sent, &read_frame(&mut idle));

    let started = Instant::now();
    server.shutdown();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "shutdown took {took:?}, expected well under the 10 s idle timeout"
    );

    time_until_closed(&mut idle, Duration::from_secs(1));
    assert!(
        TcpStream::connect(addr).is_err(),
        "the TCP listener must be closed after shutdown"
    );
    let client = udp_client();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    client
        .send_to(&query(2, "www.example.test."), addr)
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(
        client.recv(&mut buf).is_err(),
        "no UDP answer may come after shutdown"
    );
}

#[test]
fn two_udp_workers_share_one_port_and_answer_every_query() {
    let config = ServerConfig {
        udp_workers: 2,
        ..ServerConfig::default()
    };
    let (_server, addr, _) = start(config, example_catalog());
    // Many client ports, so the kernel's REUSEPORT hash spreads them over both sockets.
    let clients: Vec<UdpSocket> = (0..64).map(|_| udp_client()).collect();
    let mut answered = 0;
    for round in 0..20u16 {
        for (index, client) in clients.iter().enumerate() {
            let id = round * 64 + index as u16;
            client
                .send_to(&query(id, "www.example.test."), addr)
                .unwrap();
        }
        for (index, client) in clients.iter().enumerate() {
            let id = round * 64 + index as u16;
            let mut buf = [0u8; 1500];
            let n = client
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("query {id} from client {index} unanswered: {e}"));
            assert_eq!(
                buf[..2],
                id.to_be_bytes(),
                "client {index} got another query's response"
            );
            assert!(n >= 12 && buf[2] & 0x80 != 0);
            answered += 1;
        }
    }
    assert_eq!(answered, 64 * 20);
}

#[test]
fn port_zero_on_two_addresses_binds_each() {
    let catalog = Arc::new(ArcSwap::from_pointee(example_catalog()));
    let config = ServerConfig {
        listen: vec![
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 0)),
        ],
        udp_workers: 1,
        ..ServerConfig::default()
    };
    let server = spawn(config, catalog).expect("bind 127.0.0.1:0 and 127.0.0.2:0");
    let addrs = server.local_addrs();
    assert_eq!(
        addrs.len(),
        2,
        "one bound address per configured address: {addrs:?}"
    );
    for addr in addrs {
        let client = UdpSocket::bind((addr.ip(), 0)).unwrap();
        client.set_read_timeout(Some(REPLY_WAIT)).unwrap();
        let sent = query(5, "www.example.test.");
        assert_response_to(&sent, &udp_exchange(&client, addr, &sent));
        let mut stream = tcp_client(addr);
        stream.write_all(&framed(&sent)).unwrap();
        assert_response_to(&sent, &read_frame(&mut stream));
    }
    server.shutdown();
}
