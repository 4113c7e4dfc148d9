//! The battery against BIND named through RFC 2136 UPDATE and AXFR with TSIG;
//! "someone else" is nsupdate with the same key.

mod battery;

use std::net::SocketAddr;

use cutover_peers::bind::Bind;
use cutover_peers::free_port;

/// Every battery case, the server's own prerequisites, an ignored CNAME and an unknown key, against BIND.
#[test]
fn bind_via_rfc2136_passes_the_battery() {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port(&[[127, 0, 0, 1]])));
    let bind = battery::runtime().block_on(Bind::start(
        addr,
        &[(battery::ORIGIN, battery::ZONE_TEXT)],
        battery::KEY,
    ));
    battery::rfc2136::run_against(addr, &|script| bind.nsupdate(script));
}
