//! Knot reads what we write as the same bytes: `knotd` loads the canonical
//! text of the every-type zone, `kdig AXFR` fetches it back, and the
//! records Knot serves equal the zone we wrote.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cutover_peers::{start_on_free_ports, wait_bound, Ports, Socket, ANSWER_LIMIT, LOOPBACK};
use cutover_zone::zonefile::{parse_file, parse_str, write};

/// A knotd process killed when the test ends, however it ends.
struct Knotd(Child);

impl Drop for Knotd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs kdig against the local knotd.
fn kdig(port: u16, args: &[&str]) -> std::process::Output {
    Command::new("kdig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("kdig (knot-dnsutils) must be installed to run this test")
}

#[test]
fn knotd_serves_exactly_the_zone_we_wrote() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/every.zone");
    let zone = parse_file(&path, None).unwrap().zone;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("example.com.zone"), write(&zone)).unwrap();
    // knotd on a free port (started again on another if that one was taken).
    let (_knotd, port, log) = start_on_free_ports("knotd", |ports: &mut Ports| {
        let port = ports.pick(&[LOOPBACK]);
        let d = dir.path().display();
        let config = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
             database:\n    storage: \"{d}\"\n\
             log:\n  - target: stderr\n    any: info\n\
             acl:\n  - id: local\n    address: 127.0.0.1\n    action: transfer\n\
             zone:\n  - domain: example.com.\n    storage: \"{d}\"\n    file: \"example.com.zone\"\n    acl: local\n"
        );
        let config_path = dir.path().join("knot.conf");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join(format!("knotd-{port}.log"));
        let child = Command::new("knotd")
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("knotd (knot) must be installed to run this test");
        let mut knotd = Knotd(child);
        let addr = SocketAddr::from((LOOPBACK, port));
        wait_bound("knotd", &mut knotd.0, &Socket::dns(addr), &log)?;
        Ok((knotd, port, log))
    });
    let deadline = Instant::now() + ANSWER_LIMIT;
    let axfr = loop {
        let out = kdig(
            port,
            &["+tcp", "+nocomments", "+nostats", "AXFR", "example.com."],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains("SOA") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "expected knotd on port {port} to serve example.com. within {ANSWER_LIMIT:?}; kdig said:\n{text}\nknotd's log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let served = parse_str(&axfr, "kdig-axfr", Some(zone.origin()))
        .unwrap_or_else(|e| panic!("kdig's AXFR output should parse, got {e}\n{axfr}"))
        .zone;
    assert_eq!(
        write(&served),
        write(&zone),
        "records knotd serves (left) differ from the zone we wrote (right); kdig said:\n{axfr}"
    );
    assert_eq!(served, zone);
}
