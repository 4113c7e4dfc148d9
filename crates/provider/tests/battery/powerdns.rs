//! PowerDNS as the server behind a provider (its HTTP API, or a cloud
//! crate's PowerDNS backend): started with the battery zone, and edited by
//! "someone else" through pdnsutil on the same database.

use std::net::{Ipv4Addr, SocketAddr};

use cutover_peers::powerdns::PowerDns;
use cutover_peers::LOOPBACK;

/// A pdns_server serving the battery zone by DNS on the address returned.
pub fn start() -> (SocketAddr, PowerDns) {
    start_with("")
}

/// [`start`] with `extra` lines in pdns.conf (`disable-axfr=yes\n`: a host
/// that transfers its zones to no one).
pub fn start_with(extra: &str) -> (SocketAddr, PowerDns) {
    let pdns = super::runtime().block_on(PowerDns::start_with(
        LOOPBACK,
        &[(super::ORIGIN, super::ZONE_TEXT)],
        extra,
    ));
    (pdns.addr, pdns)
}

/// Someone else's edit: `label` A becomes one record of `address` with `ttl`.
pub fn replace_a(pdns: &PowerDns, label: &str, ttl: u32, address: Ipv4Addr) {
    pdns.pdnsutil(&[
        "replace-rrset",
        super::ORIGIN,
        label,
        "A",
        &ttl.to_string(),
        &address.to_string(),
    ]);
}
