//! The daemon through its one entry point, in-process: `Server::start`
//! with a config and a store, as the binary's `serve` calls it.
//!
//! ```text
//!  store (a zone imported) + config (DNS on 127.0.0.1:0)
//!     ──▶ Server::start ──▶ answers the zone on dns_addrs()
//!     ──▶ a change written to the store ──▶ answered after the reload
//!     ──▶ a change by another writer, the poll an hour away ──▶ answered (inotify wake-up)
//!     ──▶ shutdown ──▶ every port let go
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use cutover_server::config::Config;
use cutover_server::{Options, Server};
use cutover_store::Store;
use cutover_zone::{zonefile, Name};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{RData, RecordType};

/// The zone served: www at 192.0.2.1.
const ZONE: &str = "$ORIGIN example.test.\n$TTL 60\n\
@ SOA ns.example.test. hostmaster.example.test. 1 60 60 600 60\n\
@ NS ns\nns A 127.0.0.1\nwww A 192.0.2.1\n";

/// The same zone at serial 2 with www at 192.0.2.2.
const CHANGED: &str = "$ORIGIN example.test.\n$TTL 60\n\
@ SOA ns.example.test. hostmaster.example.test. 2 60 60 600 60\n\
@ NS ns\nns A 127.0.0.1\nwww A 192.0.2.2\n";

/// `text` as example.test., read from a file in `dir` as an import reads it.
fn zone(dir: &Path, text: &str) -> cutover_zone::Zone {
    let origin = Name::from_ascii("example.test.").unwrap();
    let file = dir.join("example.test.zone");
    std::fs::write(&file, text).unwrap();
    zonefile::parse_file(&file, Some(&origin))
        .expect("the test zone parses")
        .zone
}

/// The A records of `name` as `server` answers them over UDP.
fn addresses(server: SocketAddr, name: &str) -> Vec<String> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut query = Message::new(query_id(), MessageType::Query, OpCode::Query);
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    socket.send_to(&query.to_vec().unwrap(), server).unwrap();
    let mut buffer = [0u8; 4096];
    let (length, _) = socket
        .recv_from(&mut buffer)
        .unwrap_or_else(|e| panic!("no answer from {server} for {name}: {e}"));
    let answer = Message::from_vec(&buffer[..length]).unwrap();
    answer
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// Waits until `server` answers www with `address` (`within` at most).
fn wait_answered(server: SocketAddr, address: &str, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let seen = addresses(server, "www.example.test.");
        if seen == [address] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {what} (www {address}) answered within {within:?}, still {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A query id that differs between queries.
fn query_id() -> u16 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u16)
        .unwrap_or(1)
}

/// A config serving `store` on a port the nameserver picks itself (`:0`:
/// bound and held by the server, no race).
fn config(dir: &Path, store: &Path) -> Config {
    let path = dir.join("cutover.toml");
    std::fs::write(
        &path,
        format!(
            "store = {:?}\n[dns]\nlisten = [\"127.0.0.1:0\"]\nudp_workers = 1\n",
            store.display().to_string()
        ),
    )
    .unwrap();
    Config::load(&path).expect("the test config loads")
}

/// A store in a tempdir with the zone imported, and a config serving it.
fn imported() -> (tempfile::TempDir, std::path::PathBuf, Store, Config) {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("cutover.db");
    let store = Store::open(&store_path).unwrap();
    store
        .create_zone(&zone(dir.path(), ZONE), "test import")
        .unwrap();
    let config = config(dir.path(), &store_path);
    (dir, store_path, store, config)
}

#[test]
fn a_server_started_in_process_answers_follows_the_store_and_lets_its_port_go() {
    let (dir, store_path, store, config) = imported();

    let running = Server::start(&config, None).expect("Server::start on a fresh store");
    let addrs = running.dns_addrs();
    assert_eq!(addrs.len(), 1, "one listener configured, saw {addrs:?}");
    let server = addrs[0];
    assert_ne!(server.port(), 0, "the bound port is reported");
    assert_eq!(running.store(), store_path.as_path());
    assert_eq!(
        addresses(server, "www.example.test."),
        ["192.0.2.1"],
        "the imported zone is answered"
    );

    store
        .replace_zone(&zone(dir.path(), CHANGED), "test change")
        .expect("the change is stored");
    wait_answered(
        server,
        "192.0.2.2",
        Duration::from_secs(30),
        "the stored change",
    );

    running.shutdown();
    UdpSocket::bind(server).unwrap_or_else(|e| {
        panic!("after shutdown {server} is free for UDP again, but binding it failed: {e}")
    });
    std::net::TcpListener::bind(server).unwrap_or_else(|e| {
        panic!("after shutdown {server} is free for TCP again, but binding it failed: {e}")
    });
}

#[test]
fn a_change_by_another_writer_is_answered_without_waiting_for_the_poll() {
    let (dir, store_path, _store, config) = imported();
    // A poll once an hour: only the wake-up on the store's files can make
    // the change seen within the test's 10 s.
    let options = Options {
        watch_interval: Duration::from_secs(3600),
        scheduler: false,
    };
    let running = Server::start_with(&config, None, &options).expect("Server::start_with");
    let server = running.dns_addrs()[0];
    assert_eq!(addresses(server, "www.example.test."), ["192.0.2.1"]);

    // Another handle on the file, as another process (`cutover record`) writes.
    let other = Store::open(&store_path).unwrap();
    other
        .replace_zone(&zone(dir.path(), CHANGED), "another writer")
        .expect("the change is stored");
    wait_answered(
        server,
        "192.0.2.2",
        Duration::from_secs(10),
        "the change, with a poll of an hour (the store's wake-up)",
    );
    // The watcher stops within a slice, not an interval.
    let stopping = Instant::now();
    running.shutdown();
    assert!(
        stopping.elapsed() < Duration::from_secs(60),
        "shutdown waited {:?}: the watcher slept through its stop",
        stopping.elapsed()
    );
}

#[test]
fn a_store_that_cannot_be_opened_is_an_error_before_anything_is_served() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the store file should be.
    let store_path = dir.path().join("cutover.db");
    std::fs::create_dir(&store_path).unwrap();
    let config = config(dir.path(), &store_path);
    let error = match Server::start(&config, None) {
        Ok(_) => panic!("Server::start on a directory as store must fail"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("cannot open the store") && error.contains("cutover.db"),
        "expected the error to name the store, saw: {error}"
    );
}
