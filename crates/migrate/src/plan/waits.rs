//! How long caches may hold the old data: the longest TTL the provider
//! holds, any authority serves, or any resolver still has left; and the
//! TTL floor a provider or server imposes.

use super::RrsetChange;
use crate::observe::Observations;

/// A TTL floor: the provider's declared floor, or an authority serving a
/// moving RRset with a higher TTL than the provider holds (it raised it).
pub(super) fn ttl_floor(
    changes: &[RrsetChange],
    observed: &Observations,
    during: u32,
) -> Option<(u32, String)> {
    let mut best: Option<(u32, String)> = observed
        .ttl_floor
        .filter(|f| *f > during)
        .map(|f| (f, "the provider's declared minimum TTL".to_string()));
    for c in changes {
        let Some(before) = &c.before else { continue };
        if let Some((served, server)) = observed.survey.served_ttl(&c.name, &c.rtype) {
            // The provider holds `before.ttl`; an authority serving more raised it.
            if served > before.ttl
                && served > during
                && best.as_ref().is_none_or(|(b, _)| served > *b)
            {
                best = Some((
                    served,
                    format!(
                        "{server} serves {} {} with TTL {served}s where the provider holds {}s",
                        c.name, c.rtype, before.ttl
                    ),
                ));
            }
        }
    }
    best
}

/// The longest time a cache may hold old data of any moving RRset, and why.
pub(super) fn longest_ttl(changes: &[RrsetChange], observed: &Observations) -> (u32, String) {
    let mut best = (0u32, String::from("no moving RRset had data before"));
    for c in changes {
        if let Some(b) = &c.before {
            if b.ttl > best.0 {
                best = (
                    b.ttl,
                    format!("{} {} has TTL {}s at the provider", c.name, c.rtype, b.ttl),
                );
            }
        }
        if let Some((t, server)) = observed.survey.served_ttl(&c.name, &c.rtype) {
            if t > best.0 {
                best = (
                    t,
                    format!("{server} serves {} {} with TTL {t}s", c.name, c.rtype),
                );
            }
        }
        if let Some((t, resolver)) = observed.survey.resolver_ttl(&c.name, &c.rtype) {
            if t > best.0 {
                best = (
                    t,
                    format!(
                        "resolver {resolver} still holds {} {} for {t}s",
                        c.name, c.rtype
                    ),
                );
            }
        }
    }
    (
        best.0,
        format!("the longest TTL a cache may hold: {}", best.1),
    )
}
