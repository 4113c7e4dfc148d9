//! The one way the DNS launchers start knotd or named: the config written
//! into the launcher's tempdir, the daemon run in the foreground with its
//! stderr in a log file beside it, a guard that kills it on drop.
//!
//! ```text
//!  launcher ─conf text─▶ Daemon::launch(dir) ─▶ dir/knot.conf | named.conf
//!                                               dir/knotd.log | named.log ◀─ stderr
//!                                               Launched { guard, conf, log }
//!  launcher ─▶ wait_bound(child, udp+tcp addr, &log)   (InUse: the launcher's caller starts again on another port)
//!           ─▶ answering(addr, zone, …, &log)          (the log shown on a timeout)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::ports::{wait_bound_async, Socket, StartError};
use crate::{answering, Guard};

/// A daemon run in the foreground from a config file.
#[derive(Clone, Copy)]
pub(crate) enum Daemon {
    /// Knot DNS: `knotd -c CONF`.
    Knotd,
    /// BIND 9: `named -g -n 1 -c CONF`.
    Named,
}

/// A daemon started: its process and where its files are.
pub(crate) struct Launched {
    /// The process, killed on drop.
    pub guard: Guard,
    /// The config file.
    pub conf: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
}

impl Daemon {
    /// The program run.
    fn program(self) -> &'static str {
        match self {
            Daemon::Knotd => "knotd",
            Daemon::Named => "named",
        }
    }

    /// The Debian package that has the program.
    fn package(self) -> &'static str {
        match self {
            Daemon::Knotd => "knot",
            Daemon::Named => "bind9",
        }
    }

    /// The config file's name.
    fn conf_name(self) -> &'static str {
        match self {
            Daemon::Knotd => "knot.conf",
            Daemon::Named => "named.conf",
        }
    }

    /// The log file's name.
    fn log_name(self) -> &'static str {
        match self {
            Daemon::Knotd => "knotd.log",
            Daemon::Named => "named.log",
        }
    }

    /// Writes `conf` into `dir` and starts the daemon on it, in the
    /// foreground; `what` names it in the guard's messages.
    pub(crate) fn launch(self, dir: &Path, conf: &str, what: &'static str) -> Launched {
        let conf_path = dir.join(self.conf_name());
        std::fs::write(&conf_path, conf)
            .unwrap_or_else(|e| panic!("write {}: {e}", self.conf_name()));
        let log_path = dir.join(self.log_name());
        let log = std::fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", self.log_name()));
        let mut command = Command::new(self.program());
        if let Daemon::Named = self {
            command.args(["-g", "-n", "1"]);
        }
        let child = command
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (package {} must be installed): {e}",
                    self.program(),
                    self.package()
                )
            });
        Launched {
            guard: Guard { child, what },
            conf: conf_path,
            log: log_path,
        }
    }
}

/// An authoritative daemon about to serve zones from files in its tempdir.
pub(crate) struct Authority<'a> {
    /// knotd or named.
    pub daemon: Daemon,
    /// The tempdir its files go in.
    pub dir: &'a Path,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its name in the guard's messages.
    pub what: &'static str,
}

impl Authority<'_> {
    /// Writes each `(origin, zone text)` into the tempdir, appends the
    /// daemon's clause for it (`clause(origin, file)`) to `conf`, starts the
    /// daemon and waits until it holds its address (UDP and TCP) and the
    /// first zone answers.
    pub(crate) async fn serve(
        self,
        mut conf: String,
        zones: &[(&str, &str)],
        clause: impl Fn(&str, &Path) -> String,
    ) -> Result<Launched, StartError> {
        for (origin, text) in zones {
            let file = write_zone(self.dir, origin, text);
            conf += &clause(origin, &file);
        }
        let mut launched = self.daemon.launch(self.dir, &conf, self.what);
        wait_bound_async(
            self.what,
            &mut launched.guard.child,
            &Socket::dns(self.addr),
            &launched.log,
        )
        .await?;
        answering(self.addr, zones[0].0, false, &launched.log).await?;
        Ok(launched)
    }
}

/// Writes a zone's text into `dir` as `ORIGINzone`; its path.
pub(crate) fn write_zone(dir: &Path, origin: &str, text: &str) -> PathBuf {
    let file = dir.join(format!("{origin}zone"));
    std::fs::write(&file, text).expect("write a zone file");
    file
}
