//! UPDATE against real peers: what `nsupdate` and `knsupdate` actually send
//! for one script of prerequisites, adds and deletes is captured by a tiny
//! UDP listener on loopback (answering NOERROR with our own `response`),
//! parsed and applied with `cutover_nameserver::update`, and the resulting
//! zone is checked record by record; then the same script is run against a
//! knotd that allows updates from 127.0.0.1 and its zone (`kdig AXFR`) is
//! compared with ours.
//!
//! The peers must be installed (bind9-dnsutils, knot-dnsutils, knot): a
//! missing one fails the test, it is never skipped.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use cutover_nameserver::update::{apply, response, Outcome, Policy, Rule, Update, UpdateRcode};
use cutover_peers::{start_on_free_ports, wait_bound, Ports, Socket, ANSWER_LIMIT, LOOPBACK};
use cutover_zone::zonefile::{parse_str, record_to_text};
use cutover_zone::{Name, RecordType, Serial, Zone};

/// The zone every run starts from.
const ZONE: &str = "\
$ORIGIN example.com.
$TTL 300
@       3600 IN SOA ns1.example.com. hostmaster.example.com. 10 3600 600 86400 300
@       3600 IN NS  ns1.example.com.
ns1          IN A   192.0.2.1
www          IN A   192.0.2.10
www          IN A   192.0.2.11
alias        IN CNAME www.example.com.
old          IN A   192.0.2.20
old          IN TXT \"old\"
";

/// The updates, one `send` each; the last fails its prerequisite.
const UPDATES: [&str; 5] = [
    "prereq yxdomain www.example.com.\n\
     update add new.example.com. 300 A 192.0.2.50\n\
     update add new.example.com. 300 TXT \"hello\"\n",
    "prereq yxrrset www.example.com. A 192.0.2.10\n\
     prereq yxrrset www.example.com. A 192.0.2.11\n\
     update delete www.example.com. A 192.0.2.10\n\
     update add www.example.com. 300 A 192.0.2.12\n",
    "prereq nxdomain brand.example.com.\n\
     prereq nxrrset www.example.com. TXT\n\
     prereq yxrrset alias.example.com. CNAME\n\
     update delete old.example.com.\n\
     update add alias.example.com. 300 A 192.0.2.99\n\
     update add mail.example.com. 300 MX 10 mx.example.net.\n",
    "update delete new.example.com. TXT\n\
     update add example.com. 3600 NS ns2.example.net.\n\
     update delete example.com. SOA\n",
    "prereq nxdomain www.example.com.\n\
     update add fail.example.com. 300 A 192.0.2.66\n",
];

/// The RCODE our module must give each update of [`UPDATES`].
const EXPECTED: [UpdateRcode; 5] = [
    UpdateRcode::NoError,
    UpdateRcode::NoError,
    UpdateRcode::NoError,
    UpdateRcode::NoError,
    UpdateRcode::YxDomain,
];

/// Kills and reaps a peer process when the test ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A name from text.
fn n(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// The starting zone.
fn start_zone() -> Zone {
    parse_str(ZONE, "start.zone", None)
        .expect("the test zone parses")
        .zone
}

/// The whole script for a client against 127.0.0.1:`port`.
fn script(port: u16) -> String {
    let mut text = format!("server 127.0.0.1 {port}\nzone example.com.\n");
    for update in UPDATES {
        text += update;
        text += "send\n";
    }
    text
}

/// Runs a client (`nsupdate` or `knsupdate`) with the script on stdin.
fn run_client(program: &str, port: u16) -> Output {
    let mut child = Command::new(program)
        .args(["-t", "5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (it must be installed): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script(port).as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `program` against a loopback listener that records each datagram
/// and answers NOERROR; returns the datagrams.
fn capture(program: &str) -> Vec<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let listener = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 65535];
        while seen.len() < UPDATES.len() && Instant::now() < deadline {
            if let Ok((len, from)) = socket.recv_from(&mut buf) {
                let datagram = buf[..len].to_vec();
                socket
                    .send_to(&response(&datagram, UpdateRcode::NoError), from)
                    .unwrap();
                // A retransmission repeats the ID of the last one.
                let repeat = seen
                    .last()
                    .is_some_and(|last: &Vec<u8>| last[..2] == datagram[..2]);
                if !repeat {
                    seen.push(datagram);
                }
            }
        }
        seen
    });
    let out = run_client(program, port);
    let seen = listener.join().unwrap();
    assert!(
        out.status.success(),
        "{program} failed against the capturing listener: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        seen.len(),
        UPDATES.len(),
        "{program}: expected one datagram per send"
    );
    seen
}

/// Applies captured datagrams in turn, as an unsigned client on loopback
/// allowed the whole zone, checking each RCODE; returns the final zone.
fn apply_all(program: &str, datagrams: &[Vec<u8>]) -> Zone {
    let mut policy = Policy::deny_all();
    policy.unsigned.push((
        "127.0.0.1/32".parse().unwrap(),
        Rule::whole_zone(n("example.com.")),
    ));
    let client = IpAddr::from([127, 0, 0, 1]);
    let mut zone = start_zone();
    for (i, datagram) in datagrams.iter().enumerate() {
        let update = Update::parse(datagram)
            .unwrap_or_else(|e| panic!("{program} update {i} does not parse: {e}"));
        let rcode = match apply(&zone, &update, None, client, &policy, 0) {
            Ok(Outcome::Changed { diff }) => {
                let mut replayed = zone.clone();
                diff.apply_to(&mut replayed).unwrap();
                cutover_zone::edit::apply_in_place(&mut zone, &diff).unwrap();
                assert_eq!(
                    replayed, zone,
                    "{program} update {i}: the diff replays in place"
                );
                assert_eq!(
                    zone.check(),
                    vec![],
                    "{program} update {i}: the zone stays valid"
                );
                UpdateRcode::NoError
            }
            Ok(Outcome::Unchanged) => UpdateRcode::NoError,
            Err(e) => e.rcode(),
        };
        assert_eq!(rcode, EXPECTED[i], "{program} update {i}: {update:?}");
    }
    zone
}

/// The records of a zone as sorted text lines, for readable comparisons.
fn lines(zone: &Zone) -> Vec<String> {
    let mut v: Vec<String> = zone
        .records()
        .map(|r| record_to_text(&r).to_lowercase())
        .collect();
    v.sort();
    v
}

/// Checks the zone the script must produce.
fn check_result(program: &str, zone: &Zone) {
    let a = |name: &str| -> Vec<String> {
        zone.get(&n(name), RecordType::A)
            .map(|s| {
                s.rdatas()
                    .iter()
                    .map(|r| r.to_hickory().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let all = lines(zone);
    assert_eq!(
        zone.serial(),
        Some(Serial(14)),
        "{program}: 4 changes, {all:#?}"
    );
    assert_eq!(
        a("new.example.com."),
        vec!["192.0.2.50"],
        "{program}: {all:#?}"
    );
    assert!(zone.get(&n("new.example.com."), RecordType::TXT).is_none());
    assert_eq!(a("www.example.com."), vec!["192.0.2.11", "192.0.2.12"]);
    assert!(zone.node(&n("old.example.com.")).is_none(), "{all:#?}");
    assert!(
        zone.get(&n("alias.example.com."), RecordType::A).is_none(),
        "the A beside the CNAME is ignored: {all:#?}"
    );
    assert!(zone.get(&n("mail.example.com."), RecordType::MX).is_some());
    assert_eq!(
        zone.get(&n("example.com."), RecordType::NS).unwrap().len(),
        2,
        "{all:#?}"
    );
    assert!(zone.node(&n("fail.example.com.")).is_none());
}

#[test]
fn nsupdate_and_knsupdate_updates_apply_as_the_script_says() {
    let from_nsupdate = apply_all("nsupdate", &capture("nsupdate"));
    check_result("nsupdate", &from_nsupdate);
    let from_knsupdate = apply_all("knsupdate", &capture("knsupdate"));
    check_result("knsupdate", &from_knsupdate);
    assert_eq!(lines(&from_nsupdate), lines(&from_knsupdate));
}

/// Runs kdig with arguments; returns stdout.
fn kdig(port: u16, args: &[&str]) -> String {
    let out = Command::new("kdig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kdig (knot-dnsutils must be installed): {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn knotd_given_the_same_nsupdate_script_ends_with_the_same_zone() {
    // knotd on a free port (started again on another if that one was taken).
    let (_knotd, port, log_path, _dir) = start_on_free_ports("knotd", |ports: &mut Ports| {
        let dir = tempfile::tempdir().unwrap();
        let port = ports.pick(&[LOOPBACK]);
        let zone_file = dir.path().join("example.com.zone");
        std::fs::write(&zone_file, ZONE).unwrap();
        let conf = format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: {run}\n\
             database:\n    storage: {run}\n\
             log:\n  - target: stderr\n    any: info\n\
             acl:\n  - id: u\n    address: 127.0.0.1\n    action: update\n  - id: t\n    address: 127.0.0.1\n    action: transfer\n\
             zone:\n  - domain: example.com.\n    file: {file}\n    acl: [u, t]\n    zonefile-sync: -1\n",
            run = dir.path().display(),
            file = zone_file.display()
        );
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log_path = dir.path().join("knotd.log");
        let child = Command::new("knotd")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run knotd (package knot must be installed): {e}"));
        let mut knotd = Peer(child);
        let addr = SocketAddr::from((LOOPBACK, port));
        wait_bound("knotd", &mut knotd.0, &Socket::dns(addr), &log_path)?;
        Ok((knotd, port, log_path, dir))
    });
    let deadline = Instant::now() + ANSWER_LIMIT;
    while kdig(
        port,
        &["+short", "+timeout=1", "+retry=0", "example.com.", "SOA"],
    )
    .trim()
    .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "knotd did not answer within {ANSWER_LIMIT:?}: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = run_client("nsupdate", port);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("YXDOMAIN"),
        "knotd must refuse the last update with YXDOMAIN as we do; nsupdate said: {stderr}"
    );
    let axfr = kdig(port, &["+nocomments", "+nostats", "AXFR", "example.com."]);
    let knot = parse_str(&axfr, "knotd AXFR", Some(&n("example.com.")))
        .unwrap_or_else(|e| panic!("knotd's AXFR does not parse ({e}):\n{axfr}"))
        .zone;

    let ours = apply_all("nsupdate", &capture("nsupdate"));
    assert_eq!(
        lines(&ours),
        lines(&knot),
        "our zone (left) differs from knotd's (right); knotd log:\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
}
