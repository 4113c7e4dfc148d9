//! BIND 9's `named` as a caching resolver with an rndc control channel, for
//! the cache-flush tests: one zone forwarded to an upstream server, the
//! control channel on a loopback port with a key file of its own.
//!
//! ```text
//!  test ──query (RD)──▶ named 127.0.0.1:P (cache) ──forward only──▶ upstream (e.g. knotd)
//!  rndc -s 127.0.0.1 -p C -k WORKDIR/rndc.key flushname NAME ──▶ named's control channel
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::daemon::Daemon;
use crate::ports::{
    start_on_free_ports_async, wait_bound_async, Ports, Socket, StartError, LOOPBACK,
};
use crate::{answering, Guard};

/// A named resolving through one forward zone, killed on drop.
pub struct BindResolver {
    /// The process.
    pub guard: Guard,
    /// Where it answers.
    pub addr: SocketAddr,
    /// Its rndc control channel.
    pub control: SocketAddr,
    /// The rndc key file (`rndc -k`).
    pub key_file: PathBuf,
    /// Its tempdir.
    pub dir: tempfile::TempDir,
}

impl BindResolver {
    /// Starts named on free ports of 127.0.0.1 forwarding `zone` to
    /// `upstream` (only), with its control channel open to 127.0.0.1, and
    /// waits until it answers `zone` SOA.
    pub async fn start(zone: &str, upstream: SocketAddr) -> BindResolver {
        start_on_free_ports_async("named (resolver)", async |ports: &mut Ports| {
            BindResolver::try_start(ports, zone, upstream).await
        })
        .await
    }

    /// One start on ports from `ports`: see [`BindResolver::start`].
    async fn try_start(
        ports: &mut Ports,
        zone: &str,
        upstream: SocketAddr,
    ) -> Result<BindResolver, StartError> {
        let dir = tempfile::tempdir().expect("create a tempdir");
        let run = dir.path().display().to_string();
        let port = ports.pick(&[LOOPBACK]);
        let control = ports.pick(&[LOOPBACK]);
        // A fixed test secret: the channel listens on loopback only.
        let key = "key \"cutover-test-rndc\" {\n    algorithm hmac-sha256;\n    \
                   secret \"Y3V0b3ZlciB0ZXN0IHJuZGMga2V5LCBsb29wYmFjayE=\";\n};\n";
        let key_file = dir.path().join("rndc.key");
        std::fs::write(&key_file, key).expect("write rndc.key");
        let conf = format!(
            "options {{\n    directory \"{run}\";\n    pid-file \"{run}/named.pid\";\n    \
             session-keyfile \"{run}/session.key\";\n    managed-keys-directory \"{run}\";\n    \
             listen-on port {port} {{ 127.0.0.1; }};\n    listen-on-v6 {{ none; }};\n    \
             reuseport no;\n    recursion yes;\n    allow-recursion {{ 127.0.0.0/8; }};\n    \
             dnssec-validation no;\n    notify no;\n}};\n\
             include \"{key}\";\n\
             controls {{ inet 127.0.0.1 port {control} allow {{ 127.0.0.1; }} keys {{ \"cutover-test-rndc\"; }}; }};\n\
             zone \"{zone}\" {{ type forward; forward only; forwarders {{ {} port {}; }}; }};\n",
            upstream.ip(),
            upstream.port(),
            key = key_file.display(),
        );
        let launched = Daemon::Named.launch(dir.path(), &conf, "named (resolver)");
        let mut resolver = BindResolver {
            guard: launched.guard,
            addr: SocketAddr::from((LOOPBACK, port)),
            control: SocketAddr::from((LOOPBACK, control)),
            key_file,
            dir,
        };
        let mut sockets = Socket::dns(resolver.addr).to_vec();
        sockets.push(Socket::Tcp(resolver.control));
        wait_bound_async(
            "named (resolver)",
            &mut resolver.guard.child,
            &sockets,
            &launched.log,
        )
        .await?;
        answering(resolver.addr, zone, true, &launched.log).await?;
        Ok(resolver)
    }
}
