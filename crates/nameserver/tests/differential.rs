//! The differential test: Knot DNS and cutover serve the same zones; every
//! query of `tests/data/queries.txt` goes to both, and the answers must agree
//! on RCODE, flags, question (case included), OPT, and each section as a
//! multiset of records (names compared without case).
//!
//! ```text
//!  queries.txt ──build bytes──┬──▶ knotd (foreground, tempdir, 127.0.0.1:random) ──▶ Summary ─┐
//!                             └──▶ cutover's server::spawn on 127.0.0.1:0         ──▶ Summary ─┴─ equal?
//! ```
//!
//! cutover reads the zone files with its own parser
//! (`cutover_zone::zonefile::parse_file`); a second test checks that parser
//! against `ldns-read-zone` on the same files, so a parser bug is reported
//! as such rather than as an answering difference.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use cutover_nameserver::server::{self, ServerConfig};
use cutover_nameserver::{Catalog, Transport, ZoneSnapshot};
use cutover_peers::{
    start_on_free_ports, wait_bound, Ports, Socket, StartError, ANSWER_LIMIT, LOOPBACK,
};
use cutover_zone::{Name, Rdata, Record, RecordType, Zone};
use hickory_proto::op::Message;

/// The zones served, with their files.
const ZONES: [(&str, &str); 2] = [
    ("example.test.", "example.test.zone"),
    ("child.example.test.", "child.example.test.zone"),
];

/// The record types in the test zones (printed as RFC 3597 by ldns).
const TYPES: [&str; 14] = [
    "A", "NS", "CNAME", "SOA", "PTR", "HINFO", "MX", "TXT", "AAAA", "SRV", "DNAME", "DS", "CAA",
    "SPF",
];

/// The directory of test data.
fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// A knotd process, killed on drop.
struct Knot {
    /// The process.
    child: Child,
    /// Where it listens (UDP and TCP).
    addr: SocketAddr,
    /// Config, rundir, storage and log, kept while it runs.
    _dir: tempfile::TempDir,
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Knot {
    /// Starts knotd serving the test zones on a free port and waits until
    /// it answers (started again on another port if that one was taken).
    fn start() -> Knot {
        start_on_free_ports("knotd", |ports: &mut Ports| {
            let dir = tempfile::tempdir().expect("create a tempdir");
            let addr = ports.on(LOOPBACK);
            let mut conf = format!(
                "server:\n    listen: {}@{}\n    rundir: {run}\n\
                 database:\n    storage: {run}\n\
                 log:\n  - target: stderr\n    any: info\n\
                 zone:\n",
                addr.ip(),
                addr.port(),
                run = dir.path().display()
            );
            for (origin, file) in ZONES {
                conf += &format!(
                    "  - domain: {origin}\n    file: {}\n    semantic-checks: off\n",
                    data_dir().join(file).display()
                );
            }
            let conf_path = dir.path().join("knot.conf");
            std::fs::write(&conf_path, conf).unwrap();
            let log_path = dir.path().join("knotd.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let child = Command::new("knotd")
                .arg("-c")
                .arg(&conf_path)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run knotd (Knot DNS must be installed for this test): {e}")
                });
            let mut knot = Knot {
                child,
                addr,
                _dir: dir,
            };
            wait_bound("knotd", &mut knot.child, &Socket::dns(addr), &log_path)?;
            let probe = build_query(&Spec::parse("udp example.test SOA").unwrap());
            let deadline = Instant::now() + ANSWER_LIMIT;
            while exchange(addr, &probe, Transport::Udp, Duration::from_millis(200)).is_none() {
                if Instant::now() > deadline {
                    return Err(StartError::Failed(format!(
                        "knotd on {addr} did not answer within {ANSWER_LIMIT:?}; its log:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    )));
                }
            }
            Ok(knot)
        })
    }
}

/// Loads a zone file with cutover's zone-file parser.
fn load_zone(path: &Path, origin: &str) -> Zone {
    let origin = Name::from_str(origin).unwrap();
    cutover_zone::zonefile::parse_file(path, Some(&origin))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .zone
}

/// Loads a zone file through `ldns-read-zone`, every type in RFC 3597 form.
fn load_zone_with_ldns(path: &Path, origin: &str) -> Zone {
    let mut cmd = Command::new("ldns-read-zone");
    for t in TYPES {
        cmd.arg("-u").arg(t);
    }
    let output = cmd
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ldns-read-zone (ldnsutils must be installed): {e}"));
    assert!(
        output.status.success(),
        "ldns-read-zone {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut zone = Zone::new(Name::from_str(origin).unwrap());
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let rtype = fields[3]
            .strip_prefix("TYPE")
            .and_then(|n| n.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("type not in RFC 3597 form (add it to TYPES): {line}"));
        assert_eq!(fields[4], "\\#", "expected generic RDATA: {line}");
        let hex: String = fields[6..].concat();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let rdata = Rdata::from_wire(RecordType::from(rtype), &bytes)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let record = Record {
            name: Name::from_str(fields[0]).unwrap(),
            ttl: fields[1].parse().unwrap(),
            rdata,
        };
        zone.add(record).unwrap();
    }
    zone
}

/// One corpus line.
#[derive(Debug, Clone)]
struct Spec {
    /// The line as written.
    line: String,
    /// UDP or TCP.
    transport: Transport,
    /// The message, when given as raw bytes.
    raw: Option<Vec<u8>>,
    /// Question name.
    qname: String,
    /// Question type.
    qtype: u16,
    /// Question class.
    qclass: u16,
    /// EDNS payload size, when EDNS is used.
    edns: Option<u16>,
    /// The DO bit.
    dnssec_ok: bool,
    /// EDNS version.
    version: u8,
    /// EDNS options (code, data).
    options: Vec<(u16, Vec<u8>)>,
    /// Header flag bits to set (RD, AD, CD).
    flags: u16,
    /// The opcode.
    opcode: u8,
}

/// Decodes hex text.
fn unhex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() & 1 == 1 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

impl Spec {
    /// Parses a corpus line.
    fn parse(line: &str) -> Result<Spec, String> {
        let mut words = line.split_whitespace();
        let transport = match words.next() {
            Some("udp") => Transport::Udp,
            Some("tcp") => Transport::Tcp,
            other => return Err(format!("transport {other:?}")),
        };
        let mut spec = Spec {
            line: line.to_string(),
            transport,
            raw: None,
            qname: String::new(),
            qtype: 1,
            qclass: 1,
            edns: None,
            dnssec_ok: false,
            version: 0,
            options: Vec::new(),
            flags: 0,
            opcode: 0,
        };
        let name = words.next().ok_or("no name")?;
        if name == "raw" {
            spec.raw = Some(unhex(words.next().ok_or("no hex")?).ok_or("bad hex")?);
            return Ok(spec);
        }
        spec.qname = name.to_string();
        let qtype = words.next().ok_or("no type")?;
        spec.qtype = match qtype.strip_prefix("TYPE") {
            Some(n) => n.parse().map_err(|_| format!("type {qtype}"))?,
            None => match qtype {
                "SPF" => 99,
                "HINFO" => 13,
                "DNAME" => 39,
                "TKEY" => 249,
                "TSIG" => 250,
                "MAILB" => 253,
                "MAILA" => 254,
                "IXFR" => 251,
                "AXFR" => 252,
                "ANY" => 255,
                _ => u16::from(RecordType::from_str(qtype).map_err(|_| format!("type {qtype}"))?),
            },
        };
        for word in words {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            let number = || value.parse::<u32>().map_err(|_| format!("bad {word}"));
            match key {
                "class" => spec.qclass = number()? as u16,
                "edns" => spec.edns = Some(number()? as u16),
                "do" => spec.dnssec_ok = true,
                "ver" => spec.version = number()? as u8,
                "opt" => {
                    let (code, data) = value.split_once(':').ok_or("opt=CODE:HEX")?;
                    spec.options.push((
                        code.parse().map_err(|_| "opt code")?,
                        unhex(data).ok_or("opt hex")?,
                    ));
                }
                "rd" => spec.flags |= 0x0100,
                "ad" => spec.flags |= 0x0020,
                "cd" => spec.flags |= 0x0010,
                "opcode" => spec.opcode = number()? as u8,
                _ => return Err(format!("unknown word {word}")),
            }
        }
        let uses_edns = spec.dnssec_ok || spec.version > 0 || !spec.options.is_empty();
        if uses_edns && spec.edns.is_none() {
            spec.edns = Some(1232);
        }
        Ok(spec)
    }
}

/// The query bytes for a corpus line.
fn build_query(spec: &Spec) -> Vec<u8> {
    if let Some(raw) = &spec.raw {
        return raw.clone();
    }
    let arcount = u16::from(spec.edns.is_some());
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&0x5eedu16.to_be_bytes());
    q.extend_from_slice(&((u16::from(spec.opcode) << 11) | spec.flags).to_be_bytes());
    for count in [1, 0, 0, arcount] {
        q.extend_from_slice(&count.to_be_bytes());
    }
    for label in spec.qname.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&spec.qtype.to_be_bytes());
    q.extend_from_slice(&spec.qclass.to_be_bytes());
    if let Some(size) = spec.edns {
        let options: Vec<u8> = spec
            .options
            .iter()
            .flat_map(|(code, data)| {
                [
                    &code.to_be_bytes()[..],
                    &(data.len() as u16).to_be_bytes(),
                    data,
                ]
                .concat()
            })
            .collect();
        q.push(0);
        q.extend_from_slice(&41u16.to_be_bytes());
        q.extend_from_slice(&size.to_be_bytes());
        q.push(0);
        q.push(spec.version);
        q.extend_from_slice(&(if spec.dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
        q.extend_from_slice(&(options.len() as u16).to_be_bytes());
        q.extend_from_slice(&options);
    }
    q
}

/// Sends a query and waits for the response (none on timeout or close).
fn exchange(
    addr: SocketAddr,
    query: &[u8],
    transport: Transport,
    wait: Duration,
) -> Option<Vec<u8>> {
    match transport {
        Transport::Udp => {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_read_timeout(Some(wait)).unwrap();
            socket.send_to(query, addr).unwrap();
            let mut buf = vec![0u8; 65535];
            let (n, _) = socket.recv_from(&mut buf).ok()?;
            buf.truncate(n);
            Some(buf)
        }
        Transport::Tcp => {
            let mut conn = TcpStream::connect_timeout(&addr, wait).ok()?;
            conn.set_read_timeout(Some(wait)).unwrap();
            conn.write_all(&[&(query.len() as u16).to_be_bytes()[..], query].concat())
                .ok()?;
            let mut len = [0u8; 2];
            conn.read_exact(&mut len).ok()?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            conn.read_exact(&mut buf).ok()?;
            Some(buf)
        }
    }
}

/// What is compared of a response.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    /// ID, opcode, RCODE (4 bits) and flags in text.
    header: String,
    /// The question section exactly (case kept).
    question: String,
    /// The OPT record: payload size, extended RCODE, version, DO, options.
    opt: String,
    /// Answer records, lowercased text, sorted.
    answer: Vec<String>,
    /// Authority records, lowercased text, sorted.
    authority: Vec<String>,
    /// Additional records without OPT, lowercased text, sorted.
    additional: Vec<String>,
}

/// Reads a response into what the test compares.
fn summarise(response: &[u8]) -> Summary {
    let header = {
        let h = response.get(..4).unwrap_or(&[0, 0, 0, 0]);
        let bits = [
            (h[2], 0x04, "aa"),
            (h[2], 0x02, "tc"),
            (h[2], 0x01, "rd"),
            (h[3], 0x80, "ra"),
            (h[3], 0x20, "ad"),
            (h[3], 0x10, "cd"),
            (h[3], 0x40, "z"),
        ];
        let flags: Vec<&str> = bits
            .iter()
            .filter(|(b, m, _)| b & m != 0)
            .map(|(_, _, n)| *n)
            .collect();
        format!(
            "id {:04x} qr {} opcode {} rcode {} flags [{}]",
            u16::from_be_bytes([h[0], h[1]]),
            h[2] >> 7,
            (h[2] >> 3) & 15,
            h[3] & 15,
            flags.join(" ")
        )
    };
    let message = match Message::from_vec(response) {
        Ok(m) => m,
        Err(e) => {
            return Summary {
                header,
                question: format!(
                    "unparseable ({e}): {}",
                    response
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                ),
                opt: String::new(),
                answer: vec![],
                authority: vec![],
                additional: vec![],
            }
        }
    };
    let records = |rs: &[hickory_proto::rr::Record]| {
        let mut v: Vec<String> = rs
            .iter()
            .filter(|r| r.record_type() != RecordType::OPT)
            .map(|r| r.to_string().to_lowercase())
            .collect();
        v.sort();
        v
    };
    let opt = message.edns.as_ref().map_or("none".to_string(), |e| {
        format!(
            "size {} ext-rcode {} version {} do {} options {:?}",
            e.max_payload(),
            e.rcode_high(),
            e.version(),
            e.flags().dnssec_ok,
            e.options()
        )
    });
    Summary {
        header,
        question: message
            .queries
            .iter()
            .map(|q| q.to_string())
            .collect::<Vec<_>>()
            .join("; "),
        opt,
        answer: records(&message.answers),
        authority: records(&message.authorities),
        additional: records(&message.additionals),
    }
}

/// A response in dig-like text, for failure reports.
fn show(response: &Option<Vec<u8>>) -> String {
    match response {
        None => "  (no response)\n".to_string(),
        Some(bytes) => {
            let s = summarise(bytes);
            let mut out = format!(
                "  ;; {} ({} bytes)\n  ;; OPT: {}\n  ;; QUESTION: {}\n",
                s.header,
                bytes.len(),
                s.opt,
                s.question
            );
            for (name, section) in [
                ("ANSWER", &s.answer),
                ("AUTHORITY", &s.authority),
                ("ADDITIONAL", &s.additional),
            ] {
                out += &format!("  ;; {name}:\n");
                for r in section {
                    out += &format!("  {r}\n");
                }
            }
            out
        }
    }
}

#[test]
fn the_test_zones_parse_as_ldns_reads_them() {
    for (origin, file) in ZONES {
        let path = data_dir().join(file);
        let ours: Vec<Record> = load_zone(&path, origin).records().collect();
        let ldns: Vec<Record> = load_zone_with_ldns(&path, origin).records().collect();
        let missing: Vec<_> = ldns.iter().filter(|r| !ours.contains(r)).collect();
        let extra: Vec<_> = ours.iter().filter(|r| !ldns.contains(r)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{file}: cutover's parser differs from ldns-read-zone\n missing: {missing:#?}\n extra: {extra:#?}"
        );
    }
}

#[test]
fn cutover_answers_like_knot() {
    let knot = Knot::start();
    let snapshots = ZONES
        .iter()
        .map(|(origin, file)| {
            Arc::new(ZoneSnapshot::build(&load_zone(
                &data_dir().join(file),
                origin,
            )))
        })
        .collect();
    let config = ServerConfig {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        udp_workers: 1,
        ..ServerConfig::default()
    };
    let server = server::spawn(
        config,
        Arc::new(ArcSwap::from_pointee(Catalog::new(snapshots))),
    )
    .expect("start cutover's nameserver on 127.0.0.1");
    let cutover_addr = server.local_addrs()[0];
    let corpus =
        std::fs::read_to_string(data_dir().join("queries.txt")).expect("read the query corpus");
    let mut sent = 0;
    let mut failures = Vec::new();
    for line in corpus
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let spec = Spec::parse(line).unwrap_or_else(|e| panic!("corpus line {line:?}: {e}"));
        let query = build_query(&spec);
        sent += 1;
        let ours = exchange(
            cutover_addr,
            &query,
            spec.transport,
            Duration::from_millis(150),
        );
        let wait = if ours.is_some() { 3000 } else { 150 };
        let theirs = exchange(
            knot.addr,
            &query,
            spec.transport,
            Duration::from_millis(wait),
        );
        let same = match (&ours, &theirs) {
            (Some(a), Some(b)) => summarise(a) == summarise(b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            failures.push(format!(
                "query: {}\n knot:\n{} cutover:\n{}",
                spec.line,
                show(&theirs),
                show(&ours)
            ));
        }
    }
    server.shutdown();
    assert!(
        sent >= 300,
        "the corpus must hold at least 300 queries, it has {sent}"
    );
    assert!(
        failures.is_empty(),
        "{} of {sent} queries answered differently from Knot DNS:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
