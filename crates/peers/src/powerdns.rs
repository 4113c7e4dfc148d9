//! PowerDNS Authoritative with its HTTP API on a SQLite backend, for the
//! provider battery: the DNS host driven by REST instead of RFC 2136.
//!
//! ```text
//!  tempdir/ pdns.conf, pdns.sqlite3 (schema loaded with sqlite3), ZONE.zone
//!  pdnsutil load-zone ZONE FILE; set-meta ZONE SOA-EDIT-API DEFAULT
//!  pdns_server --config-dir=tempdir (foreground, caches off, killed on drop)
//!      DNS on addr, API on http://127.0.0.1:API_PORT with X-API-Key
//!  pdnsutil replace-rrset … ──▶ an edit by "someone else"
//! ```

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::write_zone;
use crate::ports::{
    start_on_free_ports_async, wait_bound_async, Ports, Socket, StartError, LOOPBACK,
};
use crate::{answering, Guard};

/// Where Debian's pdns-backend-sqlite3 keeps the schema.
const SCHEMAS: [&str; 2] = [
    "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
    "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
];

/// A pdns_server with the API on.
pub struct PowerDns {
    /// The process.
    pub guard: Guard,
    /// Where it answers DNS (UDP and TCP).
    pub addr: SocketAddr,
    /// The API's base URL, e.g. `http://127.0.0.1:8081`.
    pub api_url: String,
    /// The API key.
    pub api_key: String,
    /// Its tempdir (config and database).
    pub dir: tempfile::TempDir,
}

impl PowerDns {
    /// Creates the database, loads `(origin, zone text)` with pdnsutil,
    /// starts pdns_server answering on a free port of `ip` (IPv4 loopback)
    /// with the API on another, and waits until both answer.
    pub async fn start(ip: [u8; 4], zones: &[(&str, &str)]) -> PowerDns {
        PowerDns::start_with(ip, zones, "").await
    }

    /// [`PowerDns::start`] with `extra` lines added to pdns.conf (e.g.
    /// `disable-axfr=yes\n`: a host that transfers its zones to no one).
    pub async fn start_with(ip: [u8; 4], zones: &[(&str, &str)], extra: &str) -> PowerDns {
        start_on_free_ports_async("pdns_server", async |ports: &mut Ports| {
            PowerDns::try_start(ports.on(ip), ports.pick(&[LOOPBACK]), zones, extra).await
        })
        .await
    }

    /// One start answering on `addr` with the API on 127.0.0.1:`api_port`
    /// (ports from [`Ports`]): see [`PowerDns::start`].
    async fn try_start(
        addr: SocketAddr,
        api_port: u16,
        zones: &[(&str, &str)],
        extra: &str,
    ) -> Result<PowerDns, StartError> {
        let dir = tempfile::tempdir().expect("create a tempdir");
        let db = dir.path().join("pdns.sqlite3");
        let schema = SCHEMAS
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!("no PowerDNS SQLite schema (package pdns-backend-sqlite3 must be installed)")
            });
        let out = Command::new("sqlite3")
            .arg(&db)
            .arg(format!(".read {schema}"))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run sqlite3 (package sqlite3 must be installed): {e}")
            });
        assert!(
            out.status.success(),
            "sqlite3 could not load {schema}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let api_key = "cutover-test-key".to_string();
        let conf = format!(
            "launch=gsqlite3\ngsqlite3-database={db}\n\
             local-address={ip}\nlocal-port={port}\n\
             api=yes\napi-key={api_key}\n\
             webserver=yes\nwebserver-address=127.0.0.1\nwebserver-port={api_port}\n\
             webserver-allow-from=127.0.0.0/8\n\
             socket-dir={run}\ndaemon=no\nguardian=no\nwrite-pid=no\ndisable-syslog=yes\n\
             cache-ttl=0\nquery-cache-ttl=0\nnegquery-cache-ttl=0\nzone-cache-refresh-interval=0\n\
             reuseport=no\nloglevel=5\n{extra}",
            db = db.display(),
            ip = addr.ip(),
            port = addr.port(),
            run = dir.path().display(),
        );
        std::fs::write(dir.path().join("pdns.conf"), conf).expect("write pdns.conf");
        for (origin, text) in zones {
            let file = write_zone(dir.path(), origin, text);
            pdnsutil_in(
                dir.path(),
                &["load-zone", origin, &file.display().to_string()],
            );
            pdnsutil_in(dir.path(), &["set-meta", origin, "SOA-EDIT-API", "DEFAULT"]);
        }
        let log_path = dir.path().join("pdns.log");
        let log = std::fs::File::create(&log_path).expect("create pdns.log");
        let child = Command::new("pdns_server")
            .arg(format!("--config-dir={}", dir.path().display()))
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run pdns_server (package pdns-server must be installed): {e}")
            });
        let mut pdns = PowerDns {
            guard: Guard {
                child,
                what: "pdns_server",
            },
            addr,
            api_url: format!("http://127.0.0.1:{api_port}"),
            api_key,
            dir,
        };
        let api = SocketAddr::from((LOOPBACK, api_port));
        let [udp, tcp] = Socket::dns(addr);
        wait_bound_async(
            "pdns_server",
            &mut pdns.guard.child,
            &[udp, tcp, Socket::Tcp(api)],
            &log_path,
        )
        .await?;
        answering(addr, zones[0].0, false, &log_path).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(api).is_err() {
            if Instant::now() > deadline {
                return Err(StartError::Failed(format!(
                    "the PowerDNS API on {api} did not open within 30 s; log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(pdns)
    }

    /// Runs `pdnsutil` on this server's database; returns its stdout, panics
    /// with its output when it fails.
    pub fn pdnsutil(&self, args: &[&str]) -> String {
        pdnsutil_in(self.dir.path(), args)
    }
}

/// Runs `pdnsutil` with the config in `dir`; returns its stdout, panics with
/// its output when it fails.
fn pdnsutil_in(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("pdnsutil")
        .arg(format!("--config-dir={}", dir.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run pdnsutil (package pdns-server): {e}"));
    assert!(
        out.status.success(),
        "pdnsutil {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
