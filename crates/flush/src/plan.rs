//! The commands that flush one cache instance, worked out without running
//! anything (pure), so `--dry-run` shows exactly what a real run does.
//!
//! | cache            | a name                         | subtree              | everything            |
//! |------------------|--------------------------------|----------------------|-----------------------|
//! | systemd-resolved | `resolvectl flush-caches`      | same                 | same                  |
//! | nscd             | `nscd -i hosts`                | same                 | same                  |
//! | dnsmasq          | `kill -HUP PID` (clears all)   | same                 | same                  |
//! | Unbound          | `unbound-control flush NAME`   | `flush_zone NAME`    | `flush_zone .`        |
//! | BIND             | `rndc flushname NAME`          | `flushtree NAME`     | `rndc flush`          |
//!
//! A local Unbound started with `-c FILE` is reached with `unbound-control -c
//! FILE`, which reads its control settings from the same file. A configured
//! Unbound control channel gets a small generated config (certificates or
//! `control-use-cert: no`) and `-s host@port`; a BIND one `rndc -s -p [-k]`.

use std::fmt;

use crate::detect::{Instance, Place};
use crate::settings::UnboundControl;
use crate::{Kind, Scope};

/// One argument of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Literal text.
    Text(String),
    /// A file written just before the command runs; the argument is its path.
    File {
        /// Its file name (inside a fresh temporary directory).
        name: &'static str,
        /// Its contents.
        contents: String,
    },
}

/// A command to run: a program and its arguments (never through a shell).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The program, looked up in PATH.
    pub program: &'static str,
    /// Its arguments.
    pub args: Vec<Arg>,
}

/// The commands that flush `instance` under `scope`, in order; none when
/// there is nothing to flush.
pub fn invocations(instance: &Instance, scope: &Scope) -> Vec<Invocation> {
    let run = |program, args: Vec<Arg>| Invocation { program, args };
    match (instance.kind, &instance.place) {
        (_, Place::Absent) | (_, Place::PidFile { pid: None, .. }) => vec![],
        (Kind::SystemdResolved, _) => vec![run("resolvectl", texts(&["flush-caches"]))],
        (Kind::Nscd, _) => vec![run("nscd", texts(&["-i", "hosts"]))],
        (Kind::Dnsmasq, Place::Process { pid, .. })
        | (Kind::Dnsmasq, Place::PidFile { pid: Some(pid), .. }) => {
            vec![run("kill", texts(&["-HUP", &pid.to_string()]))]
        }
        (Kind::Unbound, place) => {
            let base = match place {
                Place::Process {
                    config: Some(config),
                    ..
                } => vec![
                    Arg::Text("-c".into()),
                    Arg::Text(config.display().to_string()),
                ],
                Place::UnboundControl(unbound) => vec![
                    Arg::Text("-c".into()),
                    Arg::File {
                        name: "unbound-control.conf",
                        contents: unbound_control_conf(unbound),
                    },
                    Arg::Text("-s".into()),
                    Arg::Text(format!("{}@{}", unbound.control.host, unbound.control.port)),
                ],
                _ => vec![],
            };
            commands(scope, ["flush", "flush_zone"], &["flush_zone", "."])
                .into_iter()
                .map(|words| {
                    run(
                        "unbound-control",
                        [base.clone(), texts_owned(words)].concat(),
                    )
                })
                .collect()
        }
        (Kind::Bind, place) => {
            let base = match place {
                Place::BindControl(bind) => {
                    let mut args = texts(&[
                        "-s",
                        &bind.control.host,
                        "-p",
                        &bind.control.port.to_string(),
                    ]);
                    if let Some(key) = &bind.key {
                        args.extend(texts(&["-k", &key.display().to_string()]));
                    }
                    args
                }
                _ => vec![],
            };
            commands(scope, ["flushname", "flushtree"], &["flush"])
                .into_iter()
                .map(|words| run("rndc", [base.clone(), texts_owned(words)].concat()))
                .collect()
        }
        // A dnsmasq reached any other way cannot happen; nothing to run.
        (Kind::Dnsmasq, _) => vec![],
    }
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program)?;
        for arg in &self.args {
            match arg {
                Arg::Text(text) if text.is_empty() || text.contains([' ', '\'', '"', '$']) => {
                    write!(f, " '{}'", text.replace('\'', "'\\''"))?
                }
                Arg::Text(text) => write!(f, " {text}")?,
                Arg::File { name, .. } => write!(f, " $TMPDIR/{name}")?,
            }
        }
        Ok(())
    }
}

/// The command words per name (`[single, tree]`) or for everything.
fn commands(scope: &Scope, per_name: [&str; 2], everything: &[&str]) -> Vec<Vec<String>> {
    match scope {
        Scope::Everything => vec![everything.iter().map(|w| w.to_string()).collect()],
        Scope::Names { names, tree } => names
            .iter()
            .map(|name| vec![per_name[usize::from(*tree)].to_string(), name.clone()])
            .collect(),
    }
}

/// The config `unbound-control -c` reads for a control channel of the config.
fn unbound_control_conf(unbound: &UnboundControl) -> String {
    let mut conf = String::from("remote-control:\n    control-enable: yes\n");
    match (
        &unbound.server_cert,
        &unbound.control_key,
        &unbound.control_cert,
    ) {
        (Some(server), Some(key), Some(cert)) => {
            conf += "    control-use-cert: yes\n";
            conf += &format!("    server-cert-file: \"{}\"\n", server.display());
            conf += &format!("    control-key-file: \"{}\"\n", key.display());
            conf += &format!("    control-cert-file: \"{}\"\n", cert.display());
        }
        _ => conf += "    control-use-cert: no\n",
    }
    conf
}

/// Literal arguments.
fn texts(words: &[&str]) -> Vec<Arg> {
    words.iter().map(|w| Arg::Text(w.to_string())).collect()
}

/// Literal arguments from owned words.
fn texts_owned(words: Vec<String>) -> Vec<Arg> {
    words.into_iter().map(Arg::Text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::State;
    use crate::settings::{BindControl, Control};

    /// A running instance of `kind` at `place`.
    fn instance(kind: Kind, place: Place) -> Instance {
        Instance {
            kind,
            place,
            state: State::Running,
        }
    }

    /// The commands as a shell shows them.
    fn shown(instance: &Instance, scope: &Scope) -> Vec<String> {
        invocations(instance, scope)
            .iter()
            .map(|i| i.to_string())
            .collect()
    }

    /// Two names, single or as subtrees.
    fn names(tree: bool) -> Scope {
        Scope::from_names(&["www.example.com".into(), "example.com".into()], tree).unwrap()
    }

    #[test]
    fn unbound_flushes_names_subtrees_or_all() {
        let local = instance(
            Kind::Unbound,
            Place::Process {
                pid: 7,
                config: Some("/etc/unbound/lab.conf".into()),
            },
        );
        assert_eq!(
            shown(&local, &names(false)),
            vec![
                "unbound-control -c /etc/unbound/lab.conf flush www.example.com.",
                "unbound-control -c /etc/unbound/lab.conf flush example.com."
            ]
        );
        assert_eq!(
            shown(&local, &names(true))[1],
            "unbound-control -c /etc/unbound/lab.conf flush_zone example.com."
        );
        let bare = instance(
            Kind::Unbound,
            Place::Process {
                pid: 7,
                config: None,
            },
        );
        assert_eq!(
            shown(&bare, &Scope::Everything),
            vec!["unbound-control flush_zone ."]
        );
    }

    #[test]
    fn a_configured_unbound_gets_a_generated_control_config() {
        let mut unbound = UnboundControl {
            control: Control::try_from("[::1]:8953".to_string()).unwrap(),
            server_cert: None,
            control_key: None,
            control_cert: None,
        };
        let remote = instance(Kind::Unbound, Place::UnboundControl(unbound.clone()));
        let steps = invocations(&remote, &Scope::Everything);
        assert_eq!(
            steps[0].to_string(),
            "unbound-control -c $TMPDIR/unbound-control.conf -s ::1@8953 flush_zone ."
        );
        let Arg::File { contents, .. } = &steps[0].args[1] else {
            panic!(
                "expected the generated config as the second argument, saw {:?}",
                steps[0].args
            );
        };
        assert!(contents.contains("control-use-cert: no"), "{contents}");
        unbound.server_cert = Some("/c/server.pem".into());
        unbound.control_key = Some("/c/control.key".into());
        unbound.control_cert = Some("/c/control.pem".into());
        let conf = unbound_control_conf(&unbound);
        assert!(
            conf.contains("control-use-cert: yes")
                && conf.contains("control-key-file: \"/c/control.key\""),
            "expected TLS with the three files, saw:\n{conf}"
        );
    }

    #[test]
    fn bind_uses_rndc_with_its_control_channel() {
        let remote = instance(
            Kind::Bind,
            Place::BindControl(BindControl {
                control: Control::try_from("10.0.0.54:953".to_string()).unwrap(),
                key: Some("/etc/bind/rndc.key".into()),
            }),
        );
        assert_eq!(
            shown(&remote, &names(true)),
            vec![
                "rndc -s 10.0.0.54 -p 953 -k /etc/bind/rndc.key flushtree www.example.com.",
                "rndc -s 10.0.0.54 -p 953 -k /etc/bind/rndc.key flushtree example.com."
            ]
        );
        let local = instance(
            Kind::Bind,
            Place::Process {
                pid: 3,
                config: None,
            },
        );
        assert_eq!(shown(&local, &Scope::Everything), vec!["rndc flush"]);
        assert_eq!(
            shown(&local, &names(false))[0],
            "rndc flushname www.example.com."
        );
    }

    #[test]
    fn whole_cache_kinds_ignore_names() {
        let dnsmasq = instance(
            Kind::Dnsmasq,
            Place::PidFile {
                path: "/run/d.pid".into(),
                pid: Some(4321),
            },
        );
        assert_eq!(shown(&dnsmasq, &names(false)), vec!["kill -HUP 4321"]);
        let resolved = instance(
            Kind::SystemdResolved,
            Place::Process {
                pid: 9,
                config: None,
            },
        );
        assert_eq!(
            shown(&resolved, &names(false)),
            vec!["resolvectl flush-caches"]
        );
        let nscd = instance(
            Kind::Nscd,
            Place::Process {
                pid: 9,
                config: None,
            },
        );
        assert_eq!(shown(&nscd, &Scope::Everything), vec!["nscd -i hosts"]);
        let absent = instance(Kind::Nscd, Place::Absent);
        assert!(
            invocations(&absent, &Scope::Everything).is_empty(),
            "nothing runs for an absent cache"
        );
    }
}
