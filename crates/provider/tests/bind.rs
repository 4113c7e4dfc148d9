//! The battery against BIND named through RFC 2136 UPDATE and AXFR with TSIG;
//! "someone else" is nsupdate with the same key.

mod battery;

use cutover_peers::bind::Bind;
use cutover_peers::LOOPBACK;

/// Every battery case, the server's own prerequisites, an ignored CNAME and an unknown key, against BIND.
#[test]
fn bind_via_rfc2136_passes_the_battery() {
    let bind = battery::runtime().block_on(Bind::start(
        LOOPBACK,
        &[(battery::ORIGIN, battery::ZONE_TEXT)],
        battery::KEY,
    ));
    battery::rfc2136::run_against(bind.addr, &|script| bind.nsupdate(script));
}
