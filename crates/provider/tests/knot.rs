//! The battery against knotd through RFC 2136 UPDATE and AXFR with TSIG;
//! "someone else" is knsupdate with the same key.

mod battery;

use std::net::SocketAddr;

use cutover_peers::free_port;
use cutover_peers::knot_primary::KnotPrimary;

/// Every battery case, the server's own prerequisites, an ignored CNAME and an unknown key, against knotd.
#[test]
fn knot_via_rfc2136_passes_the_battery() {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port(&[[127, 0, 0, 1]])));
    let knot = battery::runtime().block_on(KnotPrimary::start(
        addr,
        &[(battery::ORIGIN, battery::ZONE_TEXT)],
        battery::KEY,
    ));
    battery::rfc2136::run_against(addr, &|script| knot.knsupdate(script));
}
