//! dnsmasq as a test cache: a caching forwarder on a loopback port that
//! sends every query to one upstream server and writes a pid file, so a
//! test can find it the way an operator's config does.
//!
//! ```text
//!  test ──query──▶ dnsmasq 127.0.0.1:P (cache) ──▶ upstream (e.g. knotd)
//!                      ▲
//!                      └── SIGHUP (pid file): cache cleared
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::{
    pick_range, start_on_free_ports_async, wait_bound_async, Ports, Socket, StartError, LOOPBACK,
};
use crate::{answering, running_as_root, Guard};

/// A dnsmasq in the foreground (`-k`), killed on drop.
pub struct Dnsmasq {
    /// The process.
    pub guard: Guard,
    /// Where it answers.
    pub addr: SocketAddr,
    /// The pid file it wrote.
    pub pid_file: PathBuf,
    /// Its log (queries included).
    pub log: PathBuf,
    /// Its tempdir.
    pub dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq on a free port of 127.0.0.1 forwarding everything to
    /// `upstream` (no /etc/resolv.conf, no /etc/hosts, no config file) and
    /// waits until it answers `probe` SOA and its pid file names it.
    pub async fn start(upstream: SocketAddr, probe: &str) -> Dnsmasq {
        start_on_free_ports_async("dnsmasq", async |ports: &mut Ports| {
            Dnsmasq::try_start(ports, upstream, probe).await
        })
        .await
    }

    /// One start on a port from `ports`: see [`Dnsmasq::start`].
    async fn try_start(
        ports: &mut Ports,
        upstream: SocketAddr,
        probe: &str,
    ) -> Result<Dnsmasq, StartError> {
        let dir = tempfile::tempdir().expect("create a tempdir");
        let port = ports.pick(&[LOOPBACK]);
        // Its queries upstream go out from ports above the range tests pick from.
        let (_, picked_high) = pick_range();
        let pid_file = dir.path().join("dnsmasq.pid");
        let log = dir.path().join("dnsmasq.log");
        let mut command = Command::new("/usr/sbin/dnsmasq");
        command
            .arg("--keep-in-foreground")
            .arg("--conf-file=/dev/null")
            .arg("--listen-address=127.0.0.1")
            .arg("--bind-interfaces")
            .arg(format!("--port={port}"))
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg(format!("--server={}#{}", upstream.ip(), upstream.port()))
            .arg("--cache-size=1000")
            .arg(format!("--min-port={}", picked_high.saturating_add(1)))
            .arg(format!("--pid-file={}", pid_file.display()))
            .arg("--log-queries")
            .arg("--log-facility=-");
        if running_as_root() {
            // Stay root so the pid file and signals work as for the test.
            command.arg("--user=root");
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run dnsmasq (package dnsmasq-base must be installed): {e}")
            });
        let pid = child.id();
        let mut dnsmasq = Dnsmasq {
            guard: Guard {
                child,
                what: "dnsmasq",
            },
            addr: SocketAddr::from((LOOPBACK, port)),
            pid_file,
            log,
            dir,
        };
        wait_bound_async(
            "dnsmasq",
            &mut dnsmasq.guard.child,
            &Socket::dns(dnsmasq.addr),
            &dnsmasq.log,
        )
        .await?;
        answering(dnsmasq.addr, probe, true, &dnsmasq.log).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let written = std::fs::read_to_string(&dnsmasq.pid_file).unwrap_or_default();
            if written.trim() == pid.to_string() {
                break;
            }
            if Instant::now() > deadline {
                return Err(StartError::Failed(format!(
                    "dnsmasq pid {pid} did not write its pid file {} within 30 s (it holds {written:?})",
                    dnsmasq.pid_file.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(dnsmasq)
    }
}
