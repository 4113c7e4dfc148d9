//! The work a `cutover agent` does for the control plane, typed: a job is a
//! survey or a service check with the migration's `[verify]`, an outcome is
//! the [`Survey`] or [`CheckResult`] the probes gave, the same types the
//! runner judges locally.
//!
//! ```text
//!  serve: LocatedChecks ──AgentTask──▶ queue (per location) ──POST /api/v1/agents/poll──▶ agent
//!  agent: AgentTask::run(ProbeChecks, its own resolvers) ──AgentOutcome──POST /api/v1/agents/results──▶ serve
//! ```

use std::net::{IpAddr, SocketAddr};

use cutover_zone::{Name, RecordType};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::effects::Checks;
use crate::file::{Check, Verify};
use crate::observe::{CheckResult, Survey};

/// Who polls: the agent's name and location (`POST /api/v1/agents/poll`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentHello {
    /// The agent's name (`--name`, default the host's name).
    pub name: String,
    /// Where it looks from (`--location`).
    pub location: String,
}

/// One RRset to ask about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Question {
    /// The owner name (absolute).
    pub name: String,
    /// The type ("A").
    pub rtype: String,
}

/// What an agent is asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentTask {
    /// Ask the zone's authorities and the agent's resolvers (a survey).
    Survey {
        /// The zone.
        zone: String,
        /// The RRsets of interest.
        rrsets: Vec<Question>,
        /// The migration's `[verify]` (its resolvers replaced by the agent's own).
        verify: Verify,
    },
    /// Run one service check.
    Service {
        /// The check.
        check: Check,
        /// The address to pin to (`None`: through the names).
        #[schema(value_type = Option<String>)]
        pin: Option<IpAddr>,
        /// The migration's `[verify]` (its resolvers replaced by the agent's own).
        verify: Verify,
    },
}

/// A job leased to an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentJob {
    /// The job's id, to name in the result.
    pub id: u64,
    /// What to do.
    pub task: AgentTask,
}

/// The answer to a poll: a job, or none within the wait.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentPolled {
    /// The job leased to this agent (`None`: poll again).
    pub job: Option<AgentJob>,
    /// How long the agent has to post its result before the job is
    /// leased again (s).
    pub lease_seconds: u64,
}

/// What a job came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentOutcome {
    /// A survey's answers.
    Survey(Survey),
    /// A service check's result.
    Service(CheckResult),
}

/// A job's result (`POST /api/v1/agents/results`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentReport {
    /// The agent's name.
    pub name: String,
    /// Its location.
    pub location: String,
    /// The job's id.
    pub job: u64,
    /// What it came to.
    pub outcome: AgentOutcome,
}

/// `POST /api/v1/checks/from`: a zone's RRsets asked from locations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckFromRequest {
    /// The zone.
    pub zone: String,
    /// The RRsets to ask about (none: the SOA serials only).
    pub rrsets: Vec<Question>,
    /// Whom to ask and from where (`locations`); an agent asks its own
    /// resolvers when it has any.
    pub verify: Verify,
}

/// What each location saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckFromResult {
    /// One survey per location, in the order asked.
    pub locations: Vec<LocatedSurvey>,
}

/// One location's survey.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LocatedSurvey {
    /// The location.
    pub location: String,
    /// What its authorities and resolvers said, or why nothing (`problems`).
    pub survey: Survey,
}

impl AgentTask {
    /// Runs the task with `checks`, asking `resolvers` instead of the
    /// job's when any are given (an agent asks its own location's).
    pub fn run(&self, checks: &dyn Checks, resolvers: &[SocketAddr]) -> AgentOutcome {
        let own = |verify: &Verify| {
            let mut verify = verify.clone();
            if !resolvers.is_empty() {
                verify.resolvers = resolvers.to_vec();
            }
            verify
        };
        match self {
            AgentTask::Survey {
                zone,
                rrsets,
                verify,
            } => {
                let verify = own(verify);
                let Ok(origin) = Name::from_ascii(zone) else {
                    return AgentOutcome::Survey(Survey {
                        problems: vec![format!("the job names no zone: {zone:?}")],
                        ..Survey::default()
                    });
                };
                let questions: Vec<(Name, RecordType)> = rrsets
                    .iter()
                    .filter_map(|q| Some((Name::from_ascii(&q.name).ok()?, q.rtype.parse().ok()?)))
                    .collect();
                AgentOutcome::Survey(checks.survey(&origin, &questions, &verify))
            }
            AgentTask::Service { check, pin, verify } => {
                AgentOutcome::Service(checks.service(check, *pin, &own(verify)))
            }
        }
    }
}
