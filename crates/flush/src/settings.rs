//! The `[flush]` section of the config: whether to look for caches on this
//! machine, and the caches reached another way (control channels of Unbound
//! and BIND, dnsmasq by pid file).
//!
//! ```toml
//! [flush]
//! local = true
//! [[flush.unbound]]
//! control = "10.0.0.53:8953"
//! server_cert = "/etc/unbound/unbound_server.pem"
//! control_key = "/etc/unbound/unbound_control.key"
//! control_cert = "/etc/unbound/unbound_control.pem"
//! [[flush.bind]]
//! control = "10.0.0.54:953"
//! key = "/etc/bind/rndc.key"
//! [[flush.dnsmasq]]
//! pid_file = "/run/dnsmasq/dnsmasq.pid"
//! ```

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::FlushError;

/// The `[flush]` section.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Look for caches running on this machine (by their processes).
    #[serde(default = "default_local")]
    pub local: bool,
    /// Unbound control channels (`unbound-control -s`).
    #[serde(default)]
    pub unbound: Vec<UnboundControl>,
    /// BIND control channels (`rndc -s`).
    #[serde(default)]
    pub bind: Vec<BindControl>,
    /// dnsmasq instances by pid file (SIGHUP empties the cache).
    #[serde(default)]
    pub dnsmasq: Vec<DnsmasqPidFile>,
}

/// One `[[flush.unbound]]`: a remote-control channel of an Unbound.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UnboundControl {
    /// Where its remote-control listens (`control-interface`, `control-port`).
    pub control: Control,
    /// The server's certificate (`server-cert-file`); none for plain TCP.
    #[serde(default)]
    pub server_cert: Option<PathBuf>,
    /// The client key (`control-key-file`).
    #[serde(default)]
    pub control_key: Option<PathBuf>,
    /// The client certificate (`control-cert-file`).
    #[serde(default)]
    pub control_cert: Option<PathBuf>,
}

/// One `[[flush.bind]]`: a control channel of a BIND named.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BindControl {
    /// Where its control channel listens (`controls { inet … port … }`).
    pub control: Control,
    /// The rndc key file (`rndc -k`); rndc's own default when absent.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// One `[[flush.dnsmasq]]`: a dnsmasq found through its pid file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DnsmasqPidFile {
    /// The file dnsmasq wrote its pid to (`--pid-file`).
    pub pid_file: PathBuf,
}

/// A control channel address: `host:port` (`[v6]:port` for IPv6).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(try_from = "String", into = "String")]
pub struct Control {
    /// Host name or address, without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            local: true,
            unbound: vec![],
            bind: vec![],
            dnsmasq: vec![],
        }
    }
}

impl Settings {
    /// Checks what serde cannot: certificate files come all together or not at all.
    pub fn validate(&self) -> Result<(), FlushError> {
        for unbound in &self.unbound {
            let given = [
                &unbound.server_cert,
                &unbound.control_key,
                &unbound.control_cert,
            ]
            .iter()
            .filter(|p| p.is_some())
            .count();
            if given != 0 && given != 3 {
                return Err(FlushError::PartialCertificates(unbound.control.to_string()));
            }
        }
        Ok(())
    }
}

impl UnboundControl {
    /// Whether the channel is TLS with certificates (else plain TCP).
    pub fn uses_certificates(&self) -> bool {
        self.server_cert.is_some()
    }
}

impl TryFrom<String> for Control {
    type Error = FlushError;

    fn try_from(text: String) -> Result<Control, FlushError> {
        let bad = || FlushError::BadControl(text.clone());
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
            None if host.contains(':') => return Err(bad()),
            None => host,
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        let plausible = !host.is_empty()
            && !host.starts_with('-')
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
        if !plausible || port == 0 {
            return Err(bad());
        }
        Ok(Control {
            host: host.to_string(),
            port,
        })
    }
}

impl From<Control> for String {
    fn from(control: Control) -> String {
        control.to_string()
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Local detection is on unless switched off.
fn default_local() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_parse_host_and_port() {
        let v4 = Control::try_from("10.0.0.53:8953".to_string()).unwrap();
        assert_eq!((v4.host.as_str(), v4.port), ("10.0.0.53", 8953));
        let v6 = Control::try_from("[::1]:953".to_string()).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 953));
        assert_eq!(v6.to_string(), "[::1]:953");
        for bad in ["10.0.0.53", "::1:953", "host:0", ":53", "-s:53", "a b:53"] {
            assert!(
                Control::try_from(bad.to_string()).is_err(),
                "expected {bad:?} to be refused"
            );
        }
    }

    #[test]
    fn certificates_come_all_or_none() {
        let mut settings = Settings {
            unbound: vec![UnboundControl {
                control: Control::try_from("127.0.0.1:8953".to_string()).unwrap(),
                server_cert: Some("s.pem".into()),
                control_key: None,
                control_cert: None,
            }],
            ..Settings::default()
        };
        assert!(matches!(
            settings.validate(),
            Err(FlushError::PartialCertificates(_))
        ));
        settings.unbound[0].server_cert = None;
        assert_eq!(settings.validate(), Ok(()));
    }
}
