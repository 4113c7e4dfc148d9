//! What the servers say, in the plain form the planner and the runner read:
//! per authoritative address and per resolver, the TTL and values of each
//! RRset of interest, and the SOA serials.
//!
//! ```text
//!  Checks::survey (real: cutover-probe) ──▶ Survey ──Observations::from_survey──▶ plan::plan
//!                                             └──▶ step evidence (JSON)
//! ```

use std::net::IpAddr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One RRset as one server answered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Answered {
    /// Owner name (absolute, presentation form).
    pub name: String,
    /// Record type ("A").
    pub rtype: String,
    /// The TTL in the answer (for a resolver: what it has left).
    pub ttl: Option<u32>,
    /// The values, in presentation form, sorted.
    pub values: Vec<String>,
    /// What went wrong instead of an answer ("NXDOMAIN", "timeout", …).
    pub error: Option<String>,
}

/// What one authoritative address or resolver said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServerView {
    /// The server ("ns1.example.com. 192.0.2.53:53", or the resolver's address).
    pub server: String,
    /// The SOA serial it serves (authorities only).
    pub serial: Option<u32>,
    /// Each RRset asked.
    pub answers: Vec<Answered>,
}

/// What every authority and resolver said at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Survey {
    /// The authoritative addresses.
    pub authorities: Vec<ServerView>,
    /// The resolvers (RD=1): TTLs are what they have left.
    pub resolvers: Vec<ServerView>,
    /// What could not be asked at all (no NS addresses found, …).
    pub problems: Vec<String>,
}

/// What the planner knows of the world besides the zone as the provider holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observations {
    /// When it was seen.
    pub at: Option<Timestamp>,
    /// The survey.
    pub survey: Survey,
    /// A TTL floor the provider is known to impose (s), if any.
    pub ttl_floor: Option<u32>,
}

/// The result of one service check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = ServiceResult)]
pub struct CheckResult {
    /// The check, in words ("https://www.example.com/healthz at 198.51.100.20").
    pub what: String,
    /// The address it was pinned to (`None`: resolved through the names).
    #[schema(value_type = Option<String>)]
    pub pinned: Option<IpAddr>,
    /// True when the service answered as expected.
    pub ok: bool,
    /// What it saw ("status 200 in 12 ms", "connection refused").
    pub detail: String,
}

impl Survey {
    /// The highest TTL any authority serves for an RRset.
    pub fn served_ttl(&self, name: &str, rtype: &str) -> Option<(u32, &str)> {
        max_ttl(&self.authorities, name, rtype)
    }

    /// The most TTL any resolver has left for an RRset.
    pub fn resolver_ttl(&self, name: &str, rtype: &str) -> Option<(u32, &str)> {
        max_ttl(&self.resolvers, name, rtype)
    }
}

/// The highest TTL among the servers' answers for an RRset, with the server.
fn max_ttl<'a>(servers: &'a [ServerView], name: &str, rtype: &str) -> Option<(u32, &'a str)> {
    servers
        .iter()
        .filter_map(|s| {
            s.answers
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name) && a.rtype == rtype)
                .and_then(|a| a.ttl)
                .map(|t| (t, s.server.as_str()))
        })
        .max_by_key(|(t, _)| *t)
}

impl Survey {
    /// One survey from one per zone: with several zones, each server is
    /// named with the zone it was asked about ("127.0.0.1:53 for b.example.")
    /// so that serials and answers of different zones stay apart; one zone's
    /// survey is kept as it is.
    pub fn merged(per_zone: Vec<(String, Survey)>) -> Survey {
        let label = per_zone.len() > 1;
        let mut out = Survey::default();
        for (zone, survey) in per_zone {
            let survey = if label {
                survey.labelled(&zone)
            } else {
                survey
            };
            out.authorities.extend(survey.authorities);
            out.resolvers.extend(survey.resolvers);
            out.problems.extend(survey.problems);
        }
        out
    }

    /// The survey of one zone of several, each server named with the zone
    /// ("127.0.0.1:53 for b.example.", unless its name holds it already),
    /// each problem too.
    pub fn labelled(mut self, zone: &str) -> Survey {
        for view in self.authorities.iter_mut().chain(self.resolvers.iter_mut()) {
            // A server already named after the zone keeps its name.
            if !view.server.contains(zone) {
                view.server = format!("{} for {zone}", view.server);
            }
        }
        for p in &mut self.problems {
            *p = format!("{zone}: {p}");
        }
        self
    }
}

impl Survey {
    /// The survey as seen from `location`: each server named with it
    /// ("127.0.0.1:53 from fra1"), each problem prefixed by it.
    pub fn located(mut self, location: &str) -> Survey {
        for view in self.authorities.iter_mut().chain(self.resolvers.iter_mut()) {
            view.server = format!("{} from {location}", view.server);
        }
        for p in &mut self.problems {
            *p = format!("{location}: {p}");
        }
        self
    }
}

impl Observations {
    /// Observations from a survey made at `at`.
    pub fn from_survey(survey: Survey, at: Timestamp) -> Observations {
        Observations {
            at: Some(at),
            survey,
            ttl_floor: None,
        }
    }
}
