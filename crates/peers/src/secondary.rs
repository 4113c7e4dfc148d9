//! Secondaries of a primary under test: knotd and BIND's named, each
//! pulling one zone over TSIG-signed transfers and taking signed NOTIFYs,
//! on loopback with its files under a tempdir; killed on drop.
//!
//! ```text
//!  primary ──NOTIFY (TSIG)──▶ secondary ──SOA? IXFR/AXFR (TSIG)──▶ primary
//!                              └─ log: "IXFR"/"AXFR" per transfer (Secondary::log)
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::daemon::{Daemon, Launched};
use crate::ports::{start_on_free_ports, wait_bound, Ports, Socket, StartError};
use crate::Guard;

/// A TSIG key as both servers' configs write it.
#[derive(Clone, Debug)]
pub struct TsigKey {
    /// The key name, absolute ("xfr.example.").
    pub name: String,
    /// The algorithm ("hmac-sha256").
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

/// Which server a secondary is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Knot DNS.
    Knot,
    /// BIND 9.
    Bind,
}

/// A running secondary.
pub struct Secondary {
    /// The process.
    pub guard: Guard,
    /// Which server it is.
    pub flavour: Flavour,
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    /// Its log (stderr).
    pub log_path: PathBuf,
    /// Its tempdir.
    pub dir: tempfile::TempDir,
}

impl Secondary {
    /// Starts knotd on a free port of `ip` as a secondary of `zone` from
    /// `primary`, transfers and NOTIFYs signed with `key`. Returns once it
    /// holds its port: the first transfer happens in the background
    /// ([`Secondary::wait_serial`]).
    pub fn knot(ip: [u8; 4], zone: &str, primary: SocketAddr, key: &TsigKey) -> Secondary {
        start_on_free_ports("knotd (secondary)", |ports: &mut Ports| {
            Secondary::try_knot(ports.on(ip), zone, primary, key)
        })
    }

    /// One start of [`Secondary::knot`] on `addr` (a port from
    /// [`crate::Ports`]): `InUse` when it was taken.
    pub fn try_knot(
        addr: SocketAddr,
        zone: &str,
        primary: SocketAddr,
        key: &TsigKey,
    ) -> Result<Secondary, StartError> {
        let dir = tempfile::tempdir().expect("create a tempdir");
        let conf = format!(
            "server:\n    listen: {ip}@{port}\n    rundir: {d}\n\
             control:\n    listen: {d}/knot.sock\n\
             database:\n    storage: {d}\n\
             log:\n  - target: stderr\n    any: info\n\
             key:\n  - id: {kn}\n    algorithm: {ka}\n    secret: {ks}\n\
             remote:\n  - id: primary\n    address: {pip}@{pport}\n    key: {kn}\n\
             acl:\n  - id: notify\n    address: {pip}\n    key: {kn}\n    action: notify\n\
             \x20 - id: transfer\n    address: 127.0.0.0/8\n    action: transfer\n\
             zone:\n  - domain: {zone}\n    storage: {d}\n    file: secondary.zone\n\
             \x20   master: primary\n    acl: [notify, transfer]\n    zonefile-sync: -1\n",
            ip = addr.ip(),
            port = addr.port(),
            d = dir.path().display(),
            kn = key.name,
            ka = key.algorithm,
            ks = key.secret,
            pip = primary.ip(),
            pport = primary.port(),
        );
        let launched = Daemon::Knotd.launch(dir.path(), &conf, "knotd");
        Secondary::bound(launched, Flavour::Knot, addr, dir)
    }

    /// Starts BIND's named on a free port of `ip` as a secondary of `zone`
    /// from `primary`, transfers and NOTIFYs signed with `key`; returns once
    /// it holds its port.
    pub fn bind(ip: [u8; 4], zone: &str, primary: SocketAddr, key: &TsigKey) -> Secondary {
        start_on_free_ports("named (secondary)", |ports: &mut Ports| {
            Secondary::try_bind(ports.on(ip), zone, primary, key)
        })
    }

    /// One start of [`Secondary::bind`] on `addr` (a port from
    /// [`crate::Ports`]): `InUse` when it was taken.
    pub fn try_bind(
        addr: SocketAddr,
        zone: &str,
        primary: SocketAddr,
        key: &TsigKey,
    ) -> Result<Secondary, StartError> {
        let dir = tempfile::tempdir().expect("create a tempdir");
        let conf = format!(
            "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n\
             \x20 listen-on port {port} {{ {ip}; }};\n  listen-on-v6 {{ none; }};\n  reuseport no;\n\
             \x20 recursion no;\n  notify no;\n  dnssec-validation no;\n\
             \x20 allow-query {{ any; }};\n  allow-transfer {{ 127.0.0.0/8; }};\n}};\n\
             controls {{ }};\n\
             key \"{kn}\" {{ algorithm {ka}; secret \"{ks}\"; }};\n\
             logging {{\n  channel out {{ stderr; severity info; print-category yes; }};\n\
             \x20 category default {{ out; }};\n  category xfer-in {{ out; }};\n\
             \x20 category notify {{ out; }};\n}};\n\
             zone \"{zone}\" {{\n  type secondary;\n\
             \x20 primaries port {pport} {{ {pip} key \"{kn}\"; }};\n\
             \x20 file \"{d}/secondary.db\";\n  allow-notify {{ key \"{kn}\"; }};\n}};\n",
            d = dir.path().display(),
            ip = addr.ip(),
            port = addr.port(),
            kn = key.name,
            ka = key.algorithm,
            ks = key.secret,
            pip = primary.ip(),
            pport = primary.port(),
        );
        let launched = Daemon::Named.launch(dir.path(), &conf, "named");
        Secondary::bound(launched, Flavour::Bind, addr, dir)
    }

    /// The secondary `launched`, once it holds `addr` (UDP and TCP).
    fn bound(
        launched: Launched,
        flavour: Flavour,
        addr: SocketAddr,
        dir: tempfile::TempDir,
    ) -> Result<Secondary, StartError> {
        let mut secondary = Secondary {
            guard: launched.guard,
            flavour,
            addr,
            log_path: launched.log,
            dir,
        };
        wait_bound(
            secondary.guard.what,
            &mut secondary.guard.child,
            &Socket::dns(addr),
            &secondary.log_path,
        )?;
        Ok(secondary)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The serial of `zone` this secondary answers with now (SOA over UDP),
    /// `None` when it does not answer with one.
    pub fn serial(&self, zone: &str) -> Option<u32> {
        soa_serial(self.addr, zone)
    }

    /// Waits up to `limit` for the secondary to serve `zone` at `serial` or
    /// newer; panics with its log when it does not.
    pub fn wait_serial(&self, zone: &str, serial: u32, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut seen = None;
        while Instant::now() < deadline {
            seen = self.serial(zone);
            if seen.is_some_and(|s| (s.wrapping_sub(serial) as i32) >= 0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{:?} secondary did not reach serial {serial} of {zone} within {limit:?} (serves {seen:?}); log:\n{}",
            self.flavour,
            self.log()
        );
    }
}

/// The SOA serial `server` answers for `zone` (one UDP query, 500 ms).
pub fn soa_serial(server: SocketAddr, zone: &str) -> Option<u32> {
    let socket = UdpSocket::bind(if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    })
    .ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let mut query = vec![0x50, 0xa1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in zone.trim_end_matches('.').split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 6, 0, 1]);
    socket.send_to(&query, server).ok()?;
    let mut buf = [0u8; 4096];
    let len = socket.recv(&mut buf).ok()?;
    let answer = &buf[..len];
    if len < 12 || answer[3] & 0x0f != 0 || u16::from_be_bytes([answer[6], answer[7]]) == 0 {
        return None;
    }
    // Question: our name, type, class; then the SOA: a pointer owner,
    // type, class, TTL, RDLENGTH, MNAME, RNAME, SERIAL.
    let mut at = query.len();
    at = skip_name(answer, at)? + 10;
    at = skip_name(answer, at)?;
    at = skip_name(answer, at)?;
    let serial = answer.get(at..at + 4)?;
    Some(u32::from_be_bytes(serial.try_into().ok()?))
}

/// The offset after the name at `at` (labels, maybe ending in a pointer).
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *message.get(at)?;
        if len == 0 {
            return Some(at + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(at + 2);
        }
        at += 1 + usize::from(len);
    }
}
