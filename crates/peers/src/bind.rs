//! BIND 9's `named` as a primary that takes RFC 2136 updates and serves
//! transfers signed with one TSIG key, for the provider battery.
//!
//! ```text
//!  tempdir/ named.conf, ZONE.zone (writable: named keeps its .jnl beside it)
//!  named -g -c named.conf -n 1   (foreground, logs to named.log, killed on drop)
//!  nsupdate -y KEY  ──▶ an edit by "someone else"
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::daemon::{Authority, Daemon};
use crate::ports::{start_on_free_ports_async, Ports, StartError};
use crate::Guard;

/// A named serving zones from files in its tempdir.
pub struct Bind {
    /// The process.
    pub guard: Guard,
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    /// Its config path.
    pub conf: PathBuf,
    /// The TSIG key allowed to update and transfer: (name, base64 secret).
    pub key: (String, String),
    /// Its tempdir.
    pub dir: tempfile::TempDir,
}

impl Bind {
    /// Starts named on a free port of `ip` serving `(origin, zone text)`,
    /// updatable and transferable with the hmac-sha256 key `key` (name,
    /// base64 secret), and waits until the first zone answers.
    pub async fn start(ip: [u8; 4], zones: &[(&str, &str)], key: (&str, &str)) -> Bind {
        start_on_free_ports_async("named", async |ports: &mut Ports| {
            Bind::try_start(ports.on(ip), zones, key).await
        })
        .await
    }

    /// As [`Bind::start`], on `addr` (a port from [`Ports`]).
    pub async fn try_start(
        addr: SocketAddr,
        zones: &[(&str, &str)],
        key: (&str, &str),
    ) -> Result<Bind, StartError> {
        Bind::try_start_notifying(addr, zones, key, None).await
    }

    /// As [`Bind::try_start`], sending NOTIFYs signed with the key to
    /// `notify` (a secondary under test) on every change.
    pub async fn try_start_notifying(
        addr: SocketAddr,
        zones: &[(&str, &str)],
        key: (&str, &str),
        notify: Option<SocketAddr>,
    ) -> Result<Bind, StartError> {
        let notify_clause = match notify {
            Some(secondary) => format!(
                " notify explicit; also-notify {{ {} port {} key \"{}\"; }};",
                secondary.ip(),
                secondary.port(),
                key.0
            ),
            None => String::new(),
        };
        let dir = tempfile::tempdir().expect("create a tempdir");
        let run = dir.path().display().to_string();
        let listen = if addr.is_ipv4() {
            format!(
                "listen-on port {} {{ {}; }};\n    listen-on-v6 {{ none; }};",
                addr.port(),
                addr.ip()
            )
        } else {
            format!(
                "listen-on {{ none; }};\n    listen-on-v6 port {} {{ {}; }};",
                addr.port(),
                addr.ip()
            )
        };
        let conf = format!(
            "options {{\n    directory \"{run}\";\n    pid-file \"{run}/named.pid\";\n    \
             session-keyfile \"{run}/session.key\";\n    managed-keys-directory \"{run}\";\n    \
             {listen}\n    reuseport no;\n    recursion no;\n    dnssec-validation no;\n    notify no;\n}};\n\
             controls {{ }};\n\
             key \"{name}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n",
            name = key.0,
            secret = key.1,
        );
        let authority = Authority {
            daemon: Daemon::Named,
            dir: dir.path(),
            addr,
            what: "named",
        };
        let launched = authority
            .serve(conf, zones, |origin, file| {
                format!(
                    "zone \"{origin}\" {{ type primary; file \"{}\"; \
                     allow-update {{ key \"{name}\"; }}; allow-transfer {{ key \"{name}\"; }};{notify_clause} }};\n",
                    file.display(),
                    name = key.0,
                )
            })
            .await?;
        Ok(Bind {
            guard: launched.guard,
            addr,
            conf: launched.conf,
            key: (key.0.to_string(), key.1.to_string()),
            dir,
        })
    }

    /// Runs `nsupdate` with the key against this server: `commands` are the
    /// lines after `server` (e.g. `zone …`, `update delete …`, `update add …`);
    /// `send` is appended. Panics with nsupdate's output when it fails.
    pub fn nsupdate(&self, commands: &str) {
        signed_update("nsupdate", self.addr, &self.key, commands);
    }
}

/// Runs `tool` (nsupdate or knsupdate) with the HMAC-SHA256 `key` (name,
/// secret) against `addr`: `commands` are the lines after `server`; `send`
/// is appended. Panics with the tool's output when it fails.
pub(crate) fn signed_update(tool: &str, addr: SocketAddr, key: &(String, String), commands: &str) {
    let script = format!("server {} {}\n{commands}\nsend\n", addr.ip(), addr.port());
    run_with_input(
        Command::new(tool)
            .arg("-y")
            .arg(format!("hmac-sha256:{}:{}", key.0, key.1)),
        tool,
        &script,
    );
}

/// Runs `command` with `input` on stdin; panics with its output on failure.
pub(crate) fn run_with_input(command: &mut Command, what: &str, input: &str) {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin was piped")
        .write_all(input.as_bytes())
        .expect("write the script");
    let out = child.wait_with_output().expect("wait for the tool");
    assert!(
        out.status.success(),
        "{what} failed on\n{input}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
