//! Unbound's remote control for tests: the clause that opens it on loopback
//! without certificates, to append to [`crate::Unbound::start`]'s `extra`.
//!
//! `unbound-control -c WORKDIR/unbound.conf` then reads the same settings
//! and speaks plain TCP to `127.0.0.1@port`.

/// A `remote-control:` clause listening on 127.0.0.1:`port`, plain TCP.
pub fn clause(port: u16) -> String {
    format!(
        "remote-control:\n    control-enable: yes\n    control-interface: 127.0.0.1\n\
         control-port: {port}\n    control-use-cert: no\n"
    )
}
