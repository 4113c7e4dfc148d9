//! The checks of a migration run by serve: `local` here through the
//! probes, every other location through its agents ([`Board::dispatch`]),
//! the locations asked at once.
//!
//! ```text
//!  runner ──surveys_from([local, fra1, nyc1])──▶ local: ProbeChecks::survey
//!                                          ├──▶ fra1: Board::dispatch ──▶ an agent of fra1 ──▶ its Survey
//!                                          └──▶ nyc1: no agent online ──▶ a Survey whose problem says so
//! ```
//!
//! A location that cannot be asked gets a problem in words, never an empty
//! survey: the runner counts it as not agreeing.

use std::net::IpAddr;
use std::sync::Arc;

use cutover_migrate::agent::{AgentOutcome, AgentTask, Question};
use cutover_migrate::checks::ProbeChecks;
use cutover_migrate::effects::NO_AGENTS_HERE;
use cutover_migrate::file::{Check, Locations, Verify, LOCAL};
use cutover_migrate::{CheckResult, Checks, Survey};
use cutover_zone::{Name, RecordType};

use super::board::Board;

/// The location standing for "every agent's" when no agent is known yet.
const ALL_UNKNOWN: &str = "all";

/// Checks from `local` and from the agents' locations.
#[derive(Clone, Debug)]
pub struct LocatedChecks {
    /// The local probes.
    local: ProbeChecks,
    /// serve's agents (`None` outside serve: only `local` can be asked).
    board: Option<Arc<Board>>,
}

impl LocatedChecks {
    /// Local probes, and `board`'s agents for the other locations.
    pub fn new(local: ProbeChecks, board: Option<Arc<Board>>) -> LocatedChecks {
        LocatedChecks { local, board }
    }

    /// Runs `task` at `location`: the outcome, or why there is none.
    fn at(&self, location: &str, task: AgentTask) -> Result<AgentOutcome, String> {
        if location == ALL_UNKNOWN {
            return Err("no agent has polled since serve started, so \"all\" names no location but local yet: not verified from anywhere else".to_string());
        }
        match &self.board {
            Some(board) => board.dispatch(location, task),
            None => Err(NO_AGENTS_HERE.to_string()),
        }
    }
}

impl Checks for LocatedChecks {
    fn survey(&self, zone: &Name, rrsets: &[(Name, RecordType)], verify: &Verify) -> Survey {
        self.local.survey(zone, rrsets, verify)
    }

    fn service(&self, check: &Check, pin: Option<IpAddr>, verify: &Verify) -> CheckResult {
        self.local.service(check, pin, verify)
    }

    /// `"all"`: `local` and every location an agent polled from since
    /// serve started, online or not (an offline one is a problem); with
    /// none known yet (serve just started), `all` itself stands for them,
    /// a problem: never verified from local alone while "all" was asked.
    fn locations(&self, verify: &Verify) -> Vec<String> {
        match &verify.locations {
            Locations::Listed(listed) => listed.clone(),
            Locations::All => {
                let mut out = vec![LOCAL.to_string()];
                if let Some(board) = &self.board {
                    out.extend(board.locations().into_iter().filter(|l| l != LOCAL));
                }
                if out.len() == 1 {
                    out.push(ALL_UNKNOWN.to_string());
                }
                out
            }
        }
    }

    fn surveys_from(
        &self,
        locations: &[String],
        zone: &Name,
        rrsets: &[(Name, RecordType)],
        verify: &Verify,
    ) -> Vec<(String, Survey)> {
        let task = AgentTask::Survey {
            zone: zone.to_string(),
            rrsets: rrsets
                .iter()
                .map(|(name, rtype)| Question {
                    name: name.to_string(),
                    rtype: rtype.to_string(),
                })
                .collect(),
            verify: verify.clone(),
        };
        std::thread::scope(|scope| {
            let asked: Vec<_> = locations
                .iter()
                .map(|location| {
                    let task = task.clone();
                    scope.spawn(move || {
                        if location == LOCAL {
                            return self.local.survey(zone, rrsets, verify);
                        }
                        match self.at(location, task) {
                            Ok(AgentOutcome::Survey(survey)) => survey,
                            Ok(AgentOutcome::Service(_)) => Survey {
                                problems: vec![
                                    "its agent answered a survey with a service check's result"
                                        .to_string(),
                                ],
                                ..Survey::default()
                            },
                            Err(why) => Survey {
                                problems: vec![why],
                                ..Survey::default()
                            },
                        }
                    })
                })
                .collect();
            locations
                .iter()
                .zip(asked)
                .map(|(location, handle)| {
                    let survey = handle.join().unwrap_or_else(|_| Survey {
                        problems: vec!["its survey panicked".to_string()],
                        ..Survey::default()
                    });
                    (location.clone(), survey)
                })
                .collect()
        })
    }

    fn services_from(
        &self,
        locations: &[String],
        check: &Check,
        pin: Option<IpAddr>,
        verify: &Verify,
    ) -> Vec<(String, CheckResult)> {
        let what = cutover_migrate::checks::describe_at(check, pin);
        let failed = |detail: String| CheckResult {
            what: what.clone(),
            pinned: pin,
            ok: false,
            detail,
        };
        std::thread::scope(|scope| {
            let asked: Vec<_> = locations
                .iter()
                .map(|location| {
                    let failed = &failed;
                    scope.spawn(move || {
                        if location == LOCAL {
                            return self.local.service(check, pin, verify);
                        }
                        let task = AgentTask::Service {
                            check: check.clone(),
                            pin,
                            verify: verify.clone(),
                        };
                        match self.at(location, task) {
                            Ok(AgentOutcome::Service(result)) => result,
                            Ok(AgentOutcome::Survey(_)) => failed(
                                "its agent answered a service check with a survey".to_string(),
                            ),
                            Err(why) => failed(why),
                        }
                    })
                })
                .collect();
            locations
                .iter()
                .zip(asked)
                .map(|(location, handle)| {
                    let result = handle
                        .join()
                        .unwrap_or_else(|_| failed("its check panicked".to_string()));
                    (location.clone(), result)
                })
                .collect()
        })
    }
}
