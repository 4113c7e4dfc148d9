//! The battery against knotd through RFC 2136 UPDATE and AXFR with TSIG;
//! "someone else" is knsupdate with the same key.

mod battery;

use cutover_peers::knot_primary::KnotPrimary;
use cutover_peers::LOOPBACK;

/// Every battery case, the server's own prerequisites, an ignored CNAME and an unknown key, against knotd.
#[test]
fn knot_via_rfc2136_passes_the_battery() {
    let knot = battery::runtime().block_on(KnotPrimary::start(
        LOOPBACK,
        &[(battery::ORIGIN, battery::ZONE_TEXT)],
        battery::KEY,
    ));
    battery::rfc2136::run_against(knot.addr, &|script| knot.knsupdate(script));
}
