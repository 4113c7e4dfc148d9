//! knotd as a primary that takes RFC 2136 updates and serves transfers
//! signed with one TSIG key (the plain `Knot` launcher serves files only).
//!
//! ```text
//!  tempdir/ knot.conf (key, acl: update + transfer), ZONE.zone, journal
//!  knotd -c knot.conf   (foreground, logs to knotd.log, killed on drop)
//!  knsupdate -y KEY ──▶ an edit by "someone else"
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::bind::signed_update;
use crate::daemon::{Authority, Daemon};
use crate::ports::{start_on_free_ports_async, Ports, StartError};
use crate::Guard;

/// A knotd whose zones can be updated and transferred with a TSIG key.
pub struct KnotPrimary {
    /// The process.
    pub guard: Guard,
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    /// Its config path.
    pub conf: PathBuf,
    /// The TSIG key (name, base64 secret).
    pub key: (String, String),
    /// Its tempdir.
    pub dir: tempfile::TempDir,
}

impl KnotPrimary {
    /// Starts knotd on a free port of `ip` serving `(origin, zone text)`,
    /// updatable and transferable with the hmac-sha256 key `key` (name,
    /// base64 secret), and waits until the first zone answers.
    pub async fn start(ip: [u8; 4], zones: &[(&str, &str)], key: (&str, &str)) -> KnotPrimary {
        start_on_free_ports_async("knotd", async |ports: &mut Ports| {
            KnotPrimary::try_start(ports.on(ip), zones, key).await
        })
        .await
    }

    /// As [`KnotPrimary::start`], on `addr` (a port from [`Ports`]).
    pub async fn try_start(
        addr: SocketAddr,
        zones: &[(&str, &str)],
        key: (&str, &str),
    ) -> Result<KnotPrimary, StartError> {
        KnotPrimary::try_start_notifying(addr, zones, key, None).await
    }

    /// As [`KnotPrimary::try_start`], sending NOTIFYs signed with the key
    /// to `notify` (a secondary under test) on every change.
    pub async fn try_start_notifying(
        addr: SocketAddr,
        zones: &[(&str, &str)],
        key: (&str, &str),
        notify: Option<SocketAddr>,
    ) -> Result<KnotPrimary, StartError> {
        let (remote, notify_line) = match notify {
            Some(secondary) => (
                format!(
                    "remote:\n  - id: secondary\n    address: {}@{}\n    key: {}\n",
                    secondary.ip(),
                    secondary.port(),
                    key.0
                ),
                "    notify: secondary\n",
            ),
            None => (String::new(), ""),
        };
        let dir = tempfile::tempdir().expect("create a tempdir");
        let conf = format!(
            "server:\n    listen: {}@{}\n    rundir: {run}\n\
             control:\n    listen: {run}/knot.sock\n\
             database:\n    storage: {run}\n\
             log:\n  - target: stderr\n    any: info\n\
             key:\n  - id: {name}\n    algorithm: hmac-sha256\n    secret: {secret}\n\
             {remote}\
             acl:\n  - id: ops\n    key: {name}\n    action: [update, transfer]\n\
             zone:\n",
            addr.ip(),
            addr.port(),
            run = dir.path().display(),
            name = key.0,
            secret = key.1,
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
                    "  - domain: {origin}\n    file: {}\n    acl: ops\n    semantic-checks: off\n    \
                     zonefile-sync: -1\n    journal-content: changes\n{notify_line}",
                    file.display()
                )
            })
            .await?;
        Ok(KnotPrimary {
            guard: launched.guard,
            addr,
            conf: launched.conf,
            key: (key.0.to_string(), key.1.to_string()),
            dir,
        })
    }

    /// Runs `knsupdate` with the key against this server: `commands` are
    /// the lines after `server` (`zone …`, `update delete …`, `update add …`);
    /// `send` is appended. Panics with knsupdate's output when it fails.
    pub fn knsupdate(&self, commands: &str) {
        signed_update("knsupdate", self.addr, &self.key, commands);
    }

    /// Replaces a zone's file and has knotd load it (`knotc zone-reload`):
    /// a change not made by UPDATE, checked by knotd's own rules only.
    pub fn replace_zone(&self, origin: &str, text: &str) {
        crate::daemon::write_zone(self.dir.path(), origin, text);
        crate::knotc_zone_reload(&self.conf, origin);
    }
}
