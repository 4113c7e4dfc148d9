//! Read-back: what the zone's authoritative servers serve after a change,
//! asked by DNS, and the TTLs a provider raised above what was asked (a TTL
//! floor: some hosts silently keep every TTL at or above 60 or 300 s).
//!
//! ```text
//!  applied changes ──expected(…)──▶ [Expected { name, type, ttl }]
//!  servers × expected ──observe (DNS, RD=0)──▶ [Served] ──judge (pure)──▶ Readback { floors, unanswered }
//! ```
//!
//! The planner uses the floors: every wait computed from a TTL uses the
//! TTL actually served, never the one asked for.

use std::net::SocketAddr;
use std::time::Duration;

use cutover_zone::{Name, RecordType};

use crate::{condition, query, Change, ProviderError};

/// An RRset the change set asked for, with the TTL it asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Owner name.
    pub name: Name,
    /// Record type.
    pub rtype: RecordType,
    /// The TTL asked for.
    pub ttl: u32,
}

/// What one server served for one expected RRset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The server asked.
    pub server: SocketAddr,
    /// Owner name.
    pub name: Name,
    /// Record type.
    pub rtype: RecordType,
    /// The TTL served (`Ok(None)`: no such data; `Err`: no usable answer).
    pub ttl: Result<Option<u32>, String>,
}

/// An RRset served with a TTL higher than asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TtlFloor {
    /// The server that serves it.
    pub server: SocketAddr,
    /// Owner name.
    pub name: Name,
    /// Record type.
    pub rtype: RecordType,
    /// The TTL asked for.
    pub requested: u32,
    /// The TTL served.
    pub served: u32,
}

/// What the read-back found.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Readback {
    /// RRsets served with a higher TTL than asked for.
    pub floors: Vec<TtlFloor>,
    /// RRsets a server did not serve (yet), or did not answer for, with why.
    pub unanswered: Vec<(SocketAddr, Name, RecordType, String)>,
}

impl Readback {
    /// The highest TTL served for `name rtype` (for waits), if any floor raised it.
    pub fn served_ttl(&self, name: &Name, rtype: RecordType) -> Option<u32> {
        self.floors
            .iter()
            .filter(|f| f.name == *name && f.rtype == rtype)
            .map(|f| f.served)
            .max()
    }
}

/// The RRsets a change set asks for (deletions have no TTL to check).
pub fn expected(changes: &[Change]) -> Vec<Expected> {
    changes
        .iter()
        .filter_map(|c| {
            condition::present(c.set.as_ref()).map(|set| Expected {
                name: c.name.clone(),
                rtype: c.rtype,
                ttl: set.ttl,
            })
        })
        .collect()
}

/// Asks every server for every expected RRset (blocking, one query at a time).
pub fn observe(servers: &[SocketAddr], expected: &[Expected], timeout: Duration) -> Vec<Served> {
    let mut served = Vec::with_capacity(servers.len() * expected.len());
    for server in servers {
        for e in expected {
            let ttl = match query::read_rrset(*server, &e.name, e.rtype, timeout) {
                Ok(rrset) => Ok(rrset.map(|r| r.ttl)),
                Err(ProviderError::Unreachable(why) | ProviderError::Refused(why)) => Err(why),
                Err(other) => Err(other.to_string()),
            };
            served.push(Served {
                server: *server,
                name: e.name.clone(),
                rtype: e.rtype,
                ttl,
            });
        }
    }
    served
}

/// Compares what was served with what was asked for (pure).
pub fn judge(expected: &[Expected], served: &[Served]) -> Readback {
    let mut out = Readback::default();
    for s in served {
        let Some(e) = expected
            .iter()
            .find(|e| e.name == s.name && e.rtype == s.rtype)
        else {
            continue;
        };
        match &s.ttl {
            Ok(Some(ttl)) if *ttl > e.ttl => out.floors.push(TtlFloor {
                server: s.server,
                name: s.name.clone(),
                rtype: s.rtype,
                requested: e.ttl,
                served: *ttl,
            }),
            Ok(Some(_)) => {}
            Ok(None) => {
                out.unanswered
                    .push((s.server, s.name.clone(), s.rtype, "not served (yet)".into()))
            }
            Err(why) => out
                .unanswered
                .push((s.server, s.name.clone(), s.rtype, why.clone())),
        }
    }
    out
}

/// [`observe`] then [`judge`]: the read-back of a change set at `servers`.
pub fn check(servers: &[SocketAddr], changes: &[Change], timeout: Duration) -> Readback {
    let expected = expected(changes);
    judge(&expected, &observe(servers, &expected, timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn a_raised_ttl_is_a_floor_and_a_lower_one_is_not() {
        let www = Name::from_str("www.example.test.").unwrap();
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let expected = [Expected {
            name: www.clone(),
            rtype: RecordType::A,
            ttl: 60,
        }];
        let served = |ttl| Served {
            server,
            name: www.clone(),
            rtype: RecordType::A,
            ttl,
        };
        let seen = judge(&expected, &[served(Ok(Some(300))), served(Ok(Some(60)))]);
        assert_eq!(seen.floors.len(), 1, "one floor expected, saw {seen:?}");
        assert_eq!((seen.floors[0].requested, seen.floors[0].served), (60, 300));
        assert_eq!(seen.served_ttl(&www, RecordType::A), Some(300));
        let seen = judge(
            &expected,
            &[served(Ok(None)), served(Err("timeout".into()))],
        );
        assert!(seen.floors.is_empty(), "no floor expected, saw {seen:?}");
        assert_eq!(
            seen.unanswered.len(),
            2,
            "two unanswered expected, saw {seen:?}"
        );
    }
}
