//! Which caches there are: the processes running on this machine, matched by
//! name, and the instances the config names.
//!
//! [`instances`] is pure: it takes the process table and a function that
//! reads pid files, so tests feed it made-up machines. [`processes`] reads
//! the real table from `/proc`.

use std::path::{Path, PathBuf};

use crate::settings::{BindControl, Settings, UnboundControl};
use crate::Kind;

/// A process on this machine, as `/proc` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    /// Its id.
    pub pid: u32,
    /// Its short name (`/proc/PID/comm`, at most 15 bytes).
    pub name: String,
    /// Its command line.
    pub args: Vec<String>,
}

/// Where a cache instance is and how it is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// None of its processes runs here.
    Absent,
    /// A process on this machine, reached by the cache's usual tool.
    Process {
        /// Its pid.
        pid: u32,
        /// The config file it was started with (`unbound -c`), which its
        /// control tool must read too.
        config: Option<PathBuf>,
    },
    /// A dnsmasq named by a pid file in the config.
    PidFile {
        /// The pid file.
        path: PathBuf,
        /// The live dnsmasq it names, if any.
        pid: Option<u32>,
    },
    /// An Unbound remote-control channel from the config.
    UnboundControl(UnboundControl),
    /// A BIND control channel from the config.
    BindControl(BindControl),
}

/// Whether an instance can be flushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Its process runs here.
    Running,
    /// A control channel from the config: only trying tells whether it answers.
    Configured,
    /// Nothing to flush, and why that is known.
    NotRunning(String),
}

/// One cache instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// What kind of cache.
    pub kind: Kind,
    /// Where it is.
    pub place: Place,
    /// Whether it can be flushed.
    pub state: State,
}

impl Instance {
    /// Which instance, in words: "pid 812", "control 10.0.0.53:8953".
    pub fn describe(&self) -> String {
        match &self.place {
            Place::Absent => "this machine".to_string(),
            Place::Process { pid, config: None } => format!("pid {pid}"),
            Place::Process {
                pid,
                config: Some(config),
            } => format!("pid {pid}, config {}", config.display()),
            Place::PidFile {
                path,
                pid: Some(pid),
            } => {
                format!("pid {pid} (pid file {})", path.display())
            }
            Place::PidFile { path, pid: None } => format!("pid file {}", path.display()),
            Place::UnboundControl(unbound) => format!("control {}", unbound.control),
            Place::BindControl(bind) => format!("control {}", bind.control),
        }
    }
}

/// The kind of cache a process is, if any.
pub fn kind_of(process: &Process) -> Option<Kind> {
    match process.name.as_str() {
        // comm is cut at 15 bytes.
        "systemd-resolve" | "systemd-resolved" => Some(Kind::SystemdResolved),
        "nscd" => Some(Kind::Nscd),
        "dnsmasq" => Some(Kind::Dnsmasq),
        "unbound" => Some(Kind::Unbound),
        "named" => Some(Kind::Bind),
        _ => None,
    }
}

/// Every cache instance: the local ones (when `settings.local`), one
/// "not running" entry for each local kind without a process, then the
/// configured ones; only the kinds in `only` (all when empty).
pub fn instances(
    processes: &[Process],
    settings: &Settings,
    read_pid_file: &dyn Fn(&Path) -> Result<String, String>,
    only: &[Kind],
) -> Vec<Instance> {
    let wanted = |kind: Kind| only.is_empty() || only.contains(&kind);
    let mut found = Vec::new();
    let mut claimed_pids = Vec::new();
    if wanted(Kind::Dnsmasq) {
        for entry in &settings.dnsmasq {
            let instance = dnsmasq_by_pid_file(processes, &entry.pid_file, read_pid_file);
            if let Place::PidFile { pid: Some(pid), .. } = instance.place {
                claimed_pids.push(pid);
            }
            found.push(instance);
        }
    }
    if wanted(Kind::Unbound) {
        for unbound in &settings.unbound {
            found.push(Instance {
                kind: Kind::Unbound,
                place: Place::UnboundControl(unbound.clone()),
                state: State::Configured,
            });
        }
    }
    if wanted(Kind::Bind) {
        for bind in &settings.bind {
            found.push(Instance {
                kind: Kind::Bind,
                place: Place::BindControl(bind.clone()),
                state: State::Configured,
            });
        }
    }
    let mut local = Vec::new();
    if settings.local {
        for kind in Kind::ALL.into_iter().filter(|k| wanted(*k)) {
            let mut running: Vec<&Process> = processes
                .iter()
                .filter(|p| kind_of(p) == Some(kind) && !claimed_pids.contains(&p.pid))
                .collect();
            running.sort_by_key(|p| p.pid);
            if matches!(kind, Kind::SystemdResolved | Kind::Nscd) {
                // One system service: its tool talks to it, whatever its pid.
                running.truncate(1);
            }
            if running.is_empty() {
                local.push(Instance {
                    kind,
                    place: Place::Absent,
                    state: State::NotRunning(format!("no {} process", process_name(kind))),
                });
            }
            for process in running {
                let config = match kind {
                    Kind::Unbound => option_value(&process.args, "-c").map(PathBuf::from),
                    _ => None,
                };
                local.push(Instance {
                    kind,
                    place: Place::Process {
                        pid: process.pid,
                        config,
                    },
                    state: State::Running,
                });
            }
        }
    }
    local.extend(found);
    local.sort_by_key(|i| i.kind);
    local
}

/// The processes of this machine, from `/proc` (those that vanish while
/// being read are left out).
pub fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut table = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        let args = std::fs::read(entry.path().join("cmdline"))
            .map(|raw| {
                raw.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        table.push(Process {
            pid,
            name: name.trim_end().to_string(),
            args,
        });
    }
    table
}

/// The process name a kind runs as, for messages.
fn process_name(kind: Kind) -> &'static str {
    match kind {
        Kind::SystemdResolved => "systemd-resolved",
        Kind::Nscd => "nscd",
        Kind::Dnsmasq => "dnsmasq",
        Kind::Unbound => "unbound",
        Kind::Bind => "named",
    }
}

/// The dnsmasq a pid file names, or why there is none.
fn dnsmasq_by_pid_file(
    processes: &[Process],
    path: &Path,
    read_pid_file: &dyn Fn(&Path) -> Result<String, String>,
) -> Instance {
    let not_running = |why: String| Instance {
        kind: Kind::Dnsmasq,
        place: Place::PidFile {
            path: path.to_path_buf(),
            pid: None,
        },
        state: State::NotRunning(why),
    };
    let text = match read_pid_file(path) {
        Ok(text) => text,
        Err(why) => return not_running(format!("pid file {}: {why}", path.display())),
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return not_running(format!(
            "pid file {} holds {:?}, not a pid",
            path.display(),
            text.trim()
        ));
    };
    match processes.iter().find(|p| p.pid == pid) {
        Some(p) if kind_of(p) == Some(Kind::Dnsmasq) => Instance {
            kind: Kind::Dnsmasq,
            place: Place::PidFile {
                path: path.to_path_buf(),
                pid: Some(pid),
            },
            state: State::Running,
        },
        Some(p) => not_running(format!(
            "pid {pid} from {} is {:?}, not dnsmasq",
            path.display(),
            p.name
        )),
        None => not_running(format!("pid {pid} from {} is not running", path.display())),
    }
}

/// The value of a getopt-style option: `-c FILE` or `-cFILE`.
fn option_value(args: &[String], option: &str) -> Option<String> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        if arg == option {
            return iter.next().cloned();
        }
        if let Some(rest) = arg.strip_prefix(option) {
            if !rest.is_empty() {
                return Some(rest.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Control, DnsmasqPidFile};

    /// A process from its pid, name and command line.
    fn process(pid: u32, name: &str, line: &str) -> Process {
        Process {
            pid,
            name: name.to_string(),
            args: line.split(' ').map(String::from).collect(),
        }
    }

    /// A machine with resolved, two dnsmasq, an Unbound with its own config, and unrelated processes.
    fn machine() -> Vec<Process> {
        vec![
            process(1, "systemd", "/sbin/init"),
            process(412, "systemd-resolve", "/lib/systemd/systemd-resolved"),
            process(900, "dnsmasq", "dnsmasq -k --pid-file=/run/a.pid"),
            process(901, "dnsmasq", "dnsmasq -k --pid-file=/run/b.pid"),
            process(
                1200,
                "unbound",
                "/usr/sbin/unbound -d -c /etc/unbound/lab.conf",
            ),
            process(1300, "unbound-control", "unbound-control flush x"),
            process(1400, "bash", "bash -c named"),
        ]
    }

    /// No pid files exist.
    fn no_files(path: &Path) -> Result<String, String> {
        Err(format!("{} not found", path.display()))
    }

    #[test]
    fn local_caches_are_found_by_process_name() {
        let found = instances(&machine(), &Settings::default(), &no_files, &[]);
        let summary: Vec<(Kind, String, bool)> = found
            .iter()
            .map(|i| (i.kind, i.describe(), i.state == State::Running))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Kind::SystemdResolved, "pid 412".to_string(), true),
                (Kind::Nscd, "this machine".to_string(), false),
                (Kind::Dnsmasq, "pid 900".to_string(), true),
                (Kind::Dnsmasq, "pid 901".to_string(), true),
                (
                    Kind::Unbound,
                    "pid 1200, config /etc/unbound/lab.conf".to_string(),
                    true
                ),
                (Kind::Bind, "this machine".to_string(), false),
            ],
            "expected resolved, both dnsmasq and the Unbound with its config; nscd and named absent"
        );
    }

    #[test]
    fn configured_instances_come_with_local_detection_off() {
        let settings = Settings {
            local: false,
            unbound: vec![UnboundControl {
                control: Control::try_from("10.0.0.53:8953".to_string()).unwrap(),
                server_cert: None,
                control_key: None,
                control_cert: None,
            }],
            bind: vec![],
            dnsmasq: vec![
                DnsmasqPidFile {
                    pid_file: "/run/b.pid".into(),
                },
                DnsmasqPidFile {
                    pid_file: "/run/gone.pid".into(),
                },
                DnsmasqPidFile {
                    pid_file: "/run/init.pid".into(),
                },
            ],
        };
        let read = |path: &Path| match path.to_str() {
            Some("/run/b.pid") => Ok("901\n".to_string()),
            Some("/run/init.pid") => Ok("1\n".to_string()),
            _ => Err("No such file or directory".to_string()),
        };
        let found = instances(&machine(), &settings, &read, &[]);
        let states: Vec<(String, State)> = found
            .iter()
            .map(|i| (i.describe(), i.state.clone()))
            .collect();
        assert_eq!(
            states,
            vec![
                ("pid 901 (pid file /run/b.pid)".to_string(), State::Running),
                (
                    "pid file /run/gone.pid".to_string(),
                    State::NotRunning("pid file /run/gone.pid: No such file or directory".into())
                ),
                (
                    "pid file /run/init.pid".to_string(),
                    State::NotRunning(
                        "pid 1 from /run/init.pid is \"systemd\", not dnsmasq".into()
                    )
                ),
                ("control 10.0.0.53:8953".to_string(), State::Configured),
            ]
        );
    }

    #[test]
    fn a_pid_file_claims_its_process_and_only_filters() {
        let settings = Settings {
            dnsmasq: vec![DnsmasqPidFile {
                pid_file: "/run/a.pid".into(),
            }],
            ..Settings::default()
        };
        let read = |_: &Path| Ok("900".to_string());
        let found = instances(&machine(), &settings, &read, &[Kind::Dnsmasq]);
        let described: Vec<String> = found.iter().map(Instance::describe).collect();
        assert_eq!(
            described,
            vec!["pid 901", "pid 900 (pid file /run/a.pid)"],
            "expected pid 900 once (through its pid file) and only dnsmasq"
        );
    }

    #[test]
    fn options_read_both_getopt_forms() {
        let args: Vec<String> = ["unbound", "-cfoo.conf"].map(String::from).to_vec();
        assert_eq!(option_value(&args, "-c"), Some("foo.conf".to_string()));
        let args: Vec<String> = ["unbound", "-d"].map(String::from).to_vec();
        assert_eq!(option_value(&args, "-c"), None);
    }
}
