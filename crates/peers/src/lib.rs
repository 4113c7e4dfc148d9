//! The real peers cutover's tests run against, on loopback: knotd as an
//! authoritative server, Unbound as a caching resolver, Postfix's smtp-sink,
//! HTTPS servers with certificates from a test CA, and moto's Route 53
//! (`moto`). Each runs in the foreground with its files under a tempdir and
//! is killed when its guard is dropped; a missing peer fails the test
//! loudly, it is never skipped.

pub mod bind;
pub mod bind_resolver;
mod daemon;
pub mod dnsmasq;
pub mod http;
pub mod knot_primary;
pub mod moto;
pub mod ports;
pub mod powerdns;
pub mod secondary;
pub mod submission;
pub mod unbound_control;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::daemon::{Authority, Daemon};
pub use crate::ports::{
    hold_tcp, hold_tcp_on, hold_udp_on, log_length, refusing_tcp, start_on_free_ports,
    start_on_free_ports_async, wait_bound, wait_bound_async, wait_bound_from, Ports, Reservation,
    Socket, StartError, LOOPBACK,
};

/// A child process killed (and reaped) on drop.
pub struct Guard {
    /// The process.
    pub child: Child,
    /// Its name, for messages.
    pub what: &'static str,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a started DNS peer may take to answer (a deadline for a loaded
/// machine, not a measurement).
pub const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// Waits until `server` answers `name SOA` with data (RD set when
/// `recursion`), or panics naming the log.
pub async fn wait_answering(server: SocketAddr, name: &str, recursion: bool, log: &Path) {
    if let Err(e) = answering(server, name, recursion, log).await {
        panic!("{e}");
    }
}

/// Waits until `server` answers `name SOA` with data (RD set when
/// `recursion`); `Failed` with the log after [`ANSWER_LIMIT`].
pub async fn answering(
    server: SocketAddr,
    name: &str,
    recursion: bool,
    log: &Path,
) -> Result<(), StartError> {
    let deadline = Instant::now() + ANSWER_LIMIT;
    loop {
        let last = match soa_query(server, name, recursion).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            return Err(StartError::Failed(format!(
                "{server} did not answer {name} SOA within {ANSWER_LIMIT:?} (last: {last}); log {}:\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One SOA query over UDP; Ok when the answer is NOERROR with records.
async fn soa_query(server: SocketAddr, name: &str, recursion: bool) -> Result<(), String> {
    let mut query = Message::new(0x5ea1, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = recursion;
    query.add_query(Query::query(
        Name::from_str(name).map_err(|e| e.to_string())?,
        RecordType::SOA,
    ));
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let bind = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    socket
        .send_to(&bytes, server)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    let len = tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buf))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let response = Message::from_vec(&buf[..len]).map_err(|e| e.to_string())?;
    if response.metadata.response_code == ResponseCode::NoError && !response.answers.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{:?} with {} answers",
            response.metadata.response_code,
            response.answers.len()
        ))
    }
}

/// A knotd serving some zones from files in its tempdir.
pub struct Knot {
    /// The process.
    pub guard: Guard,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its config path.
    pub conf: PathBuf,
    /// Its tempdir (zone files live here).
    pub dir: tempfile::TempDir,
}

impl Knot {
    /// Starts knotd on a free port of `ip` serving `(origin, zone text)`
    /// and waits until the first zone answers.
    pub async fn start(ip: [u8; 4], zones: &[(&str, &str)]) -> Knot {
        start_on_free_ports_async("knotd", async |ports: &mut Ports| {
            Knot::try_start(ports.on(ip), zones).await
        })
        .await
    }

    /// Starts knotd on `addr` (a port from [`Ports`]) serving `(origin,
    /// zone text)` and waits until it holds the port and the first zone
    /// answers.
    pub async fn try_start(addr: SocketAddr, zones: &[(&str, &str)]) -> Result<Knot, StartError> {
        let dir = tempfile::tempdir().expect("create a tempdir");
        let conf = format!(
            "server:\n    listen: {}@{}\n    rundir: {run}\n\
             control:\n    listen: {run}/knot.sock\n\
             database:\n    storage: {run}\n\
             log:\n  - target: stderr\n    any: info\n\
             zone:\n",
            addr.ip(),
            addr.port(),
            run = dir.path().display()
        );
        let authority = Authority {
            daemon: Daemon::Knotd,
            dir: dir.path(),
            addr,
            what: "knotd",
        };
        let launched = authority
            .serve(conf, zones, |origin, file| {
                format!(
                    "  - domain: {origin}\n    file: {}\n    semantic-checks: off\n    zonefile-sync: -1\n    journal-content: none\n",
                    file.display()
                )
            })
            .await?;
        Ok(Knot {
            guard: launched.guard,
            addr,
            conf: launched.conf,
            dir,
        })
    }

    /// Replaces a zone's file and reloads it with knotc.
    pub fn replace_zone(&self, origin: &str, text: &str) {
        std::fs::write(self.dir.path().join(format!("{origin}zone")), text).unwrap();
        knotc_zone_reload(&self.conf, origin);
    }
}

/// Has the knotd of `conf` load `origin`'s file again (`knotc zone-reload`);
/// panics with knotc's output when it fails.
pub(crate) fn knotc_zone_reload(conf: &std::path::Path, origin: &str) {
    let out = Command::new("knotc")
        .arg("-c")
        .arg(conf)
        .arg("zone-reload")
        .arg(origin)
        .output()
        .unwrap_or_else(|e| panic!("cannot run knotc (package knot must be installed): {e}"));
    assert!(
        out.status.success(),
        "knotc zone-reload {origin} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An Unbound caching resolver with stub zones.
pub struct Unbound {
    /// The process.
    pub guard: Guard,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its remote control (plain TCP), when started with one.
    pub control: Option<SocketAddr>,
    /// Its log (stderr).
    pub log: PathBuf,
    /// Its tempdir.
    pub dir: tempfile::TempDir,
}

impl Unbound {
    /// Starts unbound on a free port of 127.0.0.1 with `stubs` (zone,
    /// address) and extra server settings, and waits until it answers
    /// `probe` SOA.
    pub async fn start(stubs: &[(&str, SocketAddr)], extra: &str, probe: &str) -> Unbound {
        start_on_free_ports_async("unbound", async |ports: &mut Ports| {
            Unbound::try_start(ports, stubs, extra, Some(probe), false).await
        })
        .await
    }

    /// As [`Unbound::start`], with its remote control open on another free
    /// port ([`Unbound::control`], see [`unbound_control`]); without a
    /// `probe` it returns once it holds its ports (its stubs may not
    /// answer yet; [`Unbound::wait_answering`] waits for them later).
    pub async fn start_controlled(
        stubs: &[(&str, SocketAddr)],
        extra: &str,
        probe: Option<&str>,
    ) -> Unbound {
        start_on_free_ports_async("unbound", async |ports: &mut Ports| {
            Unbound::try_start(ports, stubs, extra, probe, true).await
        })
        .await
    }

    /// Waits until it answers `name` SOA (recursion desired), or panics with its log.
    pub async fn wait_answering(&self, name: &str) {
        wait_answering(self.addr, name, true, &self.log).await;
    }

    /// One start on ports from `ports`: see [`Unbound::start_controlled`].
    async fn try_start(
        ports: &mut Ports,
        stubs: &[(&str, SocketAddr)],
        extra: &str,
        probe: Option<&str>,
        controlled: bool,
    ) -> Result<Unbound, StartError> {
        let dir = tempfile::tempdir().expect("create a tempdir");
        let port = ports.pick(&[LOOPBACK]);
        let control = controlled.then(|| ports.on(LOOPBACK));
        let work = dir.path().display().to_string();
        let (avoid_low, avoid_high) = ports::pick_range();
        // No SO_REUSEPORT (a second process could share the port unseen),
        // and no outgoing query from a port the tests pick from.
        let mut conf = format!(
            "server:\n    interface: 127.0.0.1@{port}\n    port: {port}\n    do-daemonize: no\n\
             chroot: \"\"\n    username: \"\"\n    directory: \"{work}\"\n\
             pidfile: \"{work}/unbound.pid\"\n    use-syslog: no\n    logfile: \"\"\n\
             do-not-query-localhost: no\n    access-control: 127.0.0.0/8 allow\n\
             module-config: \"iterator\"\n    local-zone: \"test.\" nodefault\n\
             do-ip6: no\n    num-threads: 1\n    so-reuseport: no\n\
             outgoing-port-avoid: {avoid_low}-{avoid_high}\n"
        );
        for (zone, _) in stubs {
            conf += &format!("    domain-insecure: \"{zone}\"\n");
        }
        // Last in the server clause, so `extra` may also open clauses of its
        // own.
        conf += extra;
        if let Some(control) = control {
            conf += &unbound_control::clause(control.port());
        }
        for (zone, addr) in stubs {
            conf += &format!(
                "stub-zone:\n    name: \"{zone}\"\n    stub-addr: {}@{}\n",
                addr.ip(),
                addr.port()
            );
        }
        let conf_path = dir.path().join("unbound.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log_path = dir.path().join("unbound.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run unbound (package unbound must be installed): {e}")
            });
        let mut unbound = Unbound {
            guard: Guard {
                child,
                what: "unbound",
            },
            addr: SocketAddr::from((LOOPBACK, port)),
            control,
            log: log_path,
            dir,
        };
        let mut sockets = Socket::dns(unbound.addr).to_vec();
        sockets.extend(control.map(Socket::Tcp));
        wait_bound_async("unbound", &mut unbound.guard.child, &sockets, &unbound.log).await?;
        if let Some(probe) = probe {
            answering(unbound.addr, probe, true, &unbound.log).await?;
        }
        Ok(unbound)
    }
}

/// A test CA and certificates it signs, in PEM and DER.
pub struct TestCa {
    /// The CA's parameters and key, to sign with.
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA certificate in PEM.
    pub pem: String,
    /// Where the CA PEM was written.
    pub file: PathBuf,
    /// Holds `file`.
    _dir: tempfile::TempDir,
}

/// A server certificate and its key.
pub struct Leaf {
    /// The certificate, DER.
    pub cert: rustls::pki_types::CertificateDer<'static>,
    /// The private key, PKCS#8 DER.
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}

impl TestCa {
    /// A new CA named "cutover test CA", written to a PEM file.
    pub fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cutover test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, cert.pem()).unwrap();
        TestCa {
            issuer: rcgen::Issuer::new(params, key),
            pem: cert.pem(),
            file,
            _dir: dir,
        }
    }

    /// A certificate for `names`, valid until `days` from now (negative: expired).
    pub fn leaf(&self, names: &[&str], days: i64) -> Leaf {
        let (cert, key) = self.signed(names, days);
        Leaf {
            cert: cert.der().clone(),
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }

    /// A certificate for `names` (valid a year) and its key, written as
    /// PEM files `cert.pem` and `key.pem` in `dir`, for servers that read
    /// files; their paths.
    pub fn leaf_files(&self, names: &[&str], dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = self.signed(names, 365);
        let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }

    /// A certificate for `names` signed by this CA, and its key.
    fn signed(&self, names: &[&str], days: i64) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0].clone());
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let at = |secs: i64| rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(secs as u64);
        params.not_before = at(now - 400 * 86_400);
        params.not_after = at(now + days * 86_400 + 3600);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert, key)
    }
}

/// A rustls server config for a leaf.
pub fn server_config(leaf: &Leaf) -> std::sync::Arc<rustls::ServerConfig> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.cert.clone()], leaf.key.clone_key())
            .unwrap(),
    )
}

/// A task aborted on drop.
pub struct Task(pub tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An HTTPS server on `listener` (bound and held by the test, see
/// [`hold_tcp`]) answering every request with `response` (raw bytes).
pub async fn https_server(listener: std::net::TcpListener, leaf: &Leaf, response: Vec<u8>) -> Task {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    listener
        .set_nonblocking(true)
        .expect("a listener can be made non-blocking");
    let listener = tokio::net::TcpListener::from_std(listener)
        .expect("the test HTTPS server's listener joins the runtime");
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(leaf));
    Task(tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let response = response.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls.write_all(&response).await;
                let _ = tls.shutdown().await;
            });
        }
    }))
}

/// Postfix's smtp-sink accepting everything, killed on drop.
pub struct SmtpSink {
    /// The process.
    pub guard: Guard,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log (stderr).
    pub log: PathBuf,
    /// Holds the log.
    _dir: tempfile::TempDir,
}

/// Postfix's smtp-sink on a free port of `ip`, accepting everything; waits
/// until it listens.
pub async fn smtp_sink(ip: [u8; 4]) -> SmtpSink {
    start_on_free_ports_async("smtp-sink", async |ports: &mut Ports| {
        let dir = tempfile::tempdir().expect("create a tempdir");
        let addr = ports.on(ip);
        let log = dir.path().join("smtp-sink.log");
        let mut command = Command::new("/usr/sbin/smtp-sink");
        // smtp-sink refuses to run as root without a user to drop to.
        if running_as_root() {
            command.arg("-u").arg("nobody");
        }
        let child = command
            .arg(addr.to_string())
            .arg("10")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the smtp-sink log"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run smtp-sink (package postfix must be installed): {e}")
            });
        let mut sink = SmtpSink {
            guard: Guard {
                child,
                what: "smtp-sink",
            },
            addr,
            log,
            _dir: dir,
        };
        wait_bound_async(
            "smtp-sink",
            &mut sink.guard.child,
            &[Socket::Tcp(addr)],
            &sink.log,
        )
        .await?;
        Ok(sink)
    })
    .await
}

/// True when the test runs as root (uid 0), read from /proc.
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
