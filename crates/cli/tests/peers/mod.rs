//! The shared test peers (crate `cutover-peers`), plus what only the
//! black-box tests of the binary need: running `cutover`, and cutover's own
//! nameserver (`cutover serve`) as a peer.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};

pub use cutover_peers::*;

/// What one run of the binary printed and its exit status.
pub struct Run {
    /// The exit status code (None when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `cutover ARGS…` off the async workers (the peers may be tasks on them).
pub async fn cutover(args: &[String]) -> Run {
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the cutover binary runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("the binary's runner thread does not panic")
}

/// Words to owned strings, for [`cutover`].
pub fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// cutover's own nameserver (`cutover serve`) serving zones imported into a
/// store of its own, on one address.
pub struct CutoverNs {
    /// The process.
    pub guard: Guard,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its files.
    _dir: tempfile::TempDir,
}

impl CutoverNs {
    /// Imports each `(origin, zone text)` and serves them on a free port of `ip`.
    pub async fn start(ip: [u8; 4], zones: &[(&str, &str)]) -> CutoverNs {
        start_on_free_ports_async("cutover serve", async |ports: &mut Ports| {
            CutoverNs::try_start(ports.on(ip), zones).await
        })
        .await
    }

    /// Imports each `(origin, zone text)` and serves them on `addr` (a port
    /// from [`Ports`]): `InUse` when the port was taken meanwhile.
    pub async fn try_start(
        addr: SocketAddr,
        zones: &[(&str, &str)],
    ) -> Result<CutoverNs, StartError> {
        let dir = tempfile::tempdir().expect("a tempdir for cutover serve");
        let store = dir.path().join("cutover.db");
        for (i, (origin, text)) in zones.iter().enumerate() {
            let file = dir.path().join(format!("zone{i}.zone"));
            std::fs::write(&file, text).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
                .arg("--store")
                .arg(&store)
                .args(["zone", "import"])
                .arg(&file)
                .args(["--origin", origin])
                .env("RUST_LOG", "warn")
                .output()
                .expect("cutover zone import runs");
            assert!(
                out.status.success(),
                "cutover zone import {origin} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let config = dir.path().join("cutover.toml");
        std::fs::write(
            &config,
            format!(
                "store = {:?}\n[dns]\nlisten = [\"{addr}\"]\nudp_workers = 1\n",
                store.display().to_string()
            ),
        )
        .unwrap();
        let log = dir.path().join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cutover serve runs");
        let mut guard = Guard {
            child,
            what: "cutover serve",
        };
        wait_bound_async("cutover serve", &mut guard.child, &Socket::dns(addr), &log).await?;
        wait_answering(addr, zones[0].0, false, &log).await;
        Ok(CutoverNs {
            guard,
            addr,
            _dir: dir,
        })
    }
}
