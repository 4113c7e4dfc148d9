//! Running a flush: detect, plan, execute each instance's commands (or only
//! show them), and gather the report.
//!
//! [`flush_with`] takes the process table, the pid-file reader and the
//! executor as arguments, so its bookkeeping is tested without touching the
//! machine; [`flush`] passes the real ones.

use std::io::{Read, Seek};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::detect::{self, Process, State};
use crate::plan::{self, Arg, Invocation};
use crate::settings::Settings;
use crate::{advice, Entry, Kind, Outcome, Report, Scope};

/// How long one command may take before it is killed and counted as failed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Flushes every cache found on this machine or named in `settings` (only
/// the kinds in `only`, all when empty); with `dry_run` only shows the commands.
pub fn flush(settings: &Settings, scope: &Scope, only: &[Kind], dry_run: bool) -> Report {
    flush_with(
        &detect::processes(),
        settings,
        scope,
        only,
        dry_run,
        &|path| std::fs::read_to_string(path).map_err(|e| e.to_string()),
        &execute,
    )
}

/// [`flush`] with the machine passed in: its processes, how pid files are
/// read, and how a command is executed (`Err` carries why it failed).
pub fn flush_with(
    processes: &[Process],
    settings: &Settings,
    scope: &Scope,
    only: &[Kind],
    dry_run: bool,
    read_pid_file: &dyn Fn(&Path) -> Result<String, String>,
    execute: &dyn Fn(&Invocation) -> Result<(), String>,
) -> Report {
    let mut caches = Vec::new();
    for instance in detect::instances(processes, settings, read_pid_file, only) {
        let steps = plan::invocations(&instance, scope);
        let outcome = match &instance.state {
            State::NotRunning(why) => Outcome::NotRunning { why: why.clone() },
            _ if dry_run => Outcome::WouldRun,
            _ => steps
                .iter()
                .find_map(|step| execute(step).err().map(|why| format!("{step}: {why}")))
                .map_or(Outcome::Flushed, |why| Outcome::Failed { why }),
        };
        caches.push(Entry {
            cache: instance.kind,
            instance: instance.describe(),
            scope: scope.describe(instance.kind),
            outcome,
            commands: steps.iter().map(|s| s.to_string()).collect(),
        });
    }
    Report {
        caches,
        advice: advice::everywhere(),
    }
}

/// Runs one command with its generated files, without a shell, within
/// [`COMMAND_TIMEOUT`]; `Err` says why it failed in the tool's own words.
pub fn execute(invocation: &Invocation) -> Result<(), String> {
    let files =
        tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let mut command = Command::new(invocation.program);
    for arg in &invocation.args {
        match arg {
            Arg::Text(text) => {
                command.arg(text);
            }
            Arg::File { name, contents } => {
                let path = files.path().join(name);
                std::fs::write(&path, contents)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                command.arg(path);
            }
        }
    }
    let mut output =
        tempfile::tempfile().map_err(|e| format!("cannot make a temporary file: {e}"))?;
    let errors = output
        .try_clone()
        .map_err(|e| format!("cannot share a temporary file: {e}"))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(errors.try_clone().map_err(|e| e.to_string())?)
        .stderr(errors)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{} is not installed", invocation.program),
            _ => format!("cannot run {}: {e}", invocation.program),
        })?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", COMMAND_TIMEOUT.as_secs()));
            }
            Err(e) => return Err(format!("cannot wait for {}: {e}", invocation.program)),
        }
    };
    let mut said = String::new();
    let _ = output.rewind();
    let _ = output.read_to_string(&mut said);
    let said = said.trim();
    // unbound-control says "error …" for some failures.
    if status.success() && !said.starts_with("error") {
        return Ok(());
    }
    let said = said.lines().take(3).collect::<Vec<_>>().join("; ");
    match (status.code(), said.is_empty()) {
        (Some(code), true) => Err(format!("exit status {code}")),
        (Some(code), false) => Err(format!("{said} (exit status {code})")),
        (None, _) => Err(format!("killed by a signal {said}").trim_end().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::settings::DnsmasqPidFile;

    /// A machine with an Unbound and a dnsmasq.
    fn machine() -> Vec<Process> {
        vec![
            Process {
                pid: 10,
                name: "unbound".into(),
                args: vec!["unbound".into()],
            },
            Process {
                pid: 20,
                name: "dnsmasq".into(),
                args: vec!["dnsmasq".into()],
            },
        ]
    }

    #[test]
    fn each_instance_reports_its_outcome() {
        let settings = Settings {
            dnsmasq: vec![DnsmasqPidFile {
                pid_file: "/run/missing.pid".into(),
            }],
            ..Settings::default()
        };
        let ran = RefCell::new(Vec::new());
        let execute = |step: &Invocation| {
            ran.borrow_mut().push(step.to_string());
            if step.program == "unbound-control" {
                Err("error: connection refused".to_string())
            } else {
                Ok(())
            }
        };
        let scope = Scope::from_names(&["www.example.com".into()], false).unwrap();
        let report = flush_with(
            &machine(),
            &settings,
            &scope,
            &[Kind::Dnsmasq, Kind::Unbound],
            false,
            &|_| Err("No such file or directory".into()),
            &execute,
        );
        let outcomes: Vec<(String, Outcome)> = report
            .caches
            .iter()
            .map(|e| (format!("{} {}", e.cache, e.instance), e.outcome.clone()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("dnsmasq pid 20".to_string(), Outcome::Flushed),
                (
                    "dnsmasq pid file /run/missing.pid".to_string(),
                    Outcome::NotRunning {
                        why: "pid file /run/missing.pid: No such file or directory".into()
                    }
                ),
                (
                    "unbound pid 10".to_string(),
                    Outcome::Failed {
                        why: "unbound-control flush www.example.com.: error: connection refused"
                            .into()
                    }
                ),
            ]
        );
        assert_eq!(
            ran.into_inner(),
            vec!["kill -HUP 20", "unbound-control flush www.example.com."],
            "expected exactly the two commands of the running instances"
        );
        assert!(!report.succeeded(), "a failed Unbound makes the flush fail");
    }

    #[test]
    fn a_dry_run_runs_nothing() {
        let report = flush_with(
            &machine(),
            &Settings::default(),
            &Scope::Everything,
            &[],
            true,
            &|_| unreachable!("no pid files configured"),
            &|step| panic!("a dry run must not run {step}"),
        );
        let unbound = report
            .caches
            .iter()
            .find(|e| e.cache == Kind::Unbound)
            .expect("the Unbound is reported");
        assert_eq!(unbound.outcome, Outcome::WouldRun);
        assert_eq!(unbound.commands, vec!["unbound-control flush_zone ."]);
        assert!(report.succeeded());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["caches"][0]["cache"], "systemd-resolved");
        assert_eq!(json["caches"][0]["outcome"], "not_running");
        assert_eq!(json["advice"][1]["platform"], "macOS");
    }

    #[test]
    fn execute_reports_the_tool_s_words() {
        let missing = Invocation {
            program: "cutover-no-such-tool",
            args: vec![],
        };
        assert_eq!(
            execute(&missing),
            Err("cutover-no-such-tool is not installed".to_string())
        );
        let failing = Invocation {
            program: "sh",
            args: vec![
                Arg::Text("-c".into()),
                Arg::Text("echo 'permission denied' >&2; exit 3".into()),
            ],
        };
        assert_eq!(
            execute(&failing),
            Err("permission denied (exit status 3)".to_string())
        );
        let with_file = Invocation {
            program: "grep",
            args: vec![
                Arg::Text("-q".into()),
                Arg::Text("control-use-cert".into()),
                Arg::File {
                    name: "c.conf",
                    contents: "control-use-cert: no\n".into(),
                },
            ],
        };
        assert_eq!(
            execute(&with_file),
            Ok(()),
            "the generated file is written before the run"
        );
    }
}
