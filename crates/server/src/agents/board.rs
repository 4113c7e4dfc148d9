//! The agents and their jobs, in serve's memory: who polled from where and
//! when, the jobs queued per location, leased, answered.
//!
//! ```text
//!  LocatedChecks::dispatch (a scheduler or API thread, blocking)
//!      no agent of the location online ──▶ "no agent online" (never agreement)
//!      job queued ──notify──▶ a poll of that location leases it (lease time) ──▶ agent
//!      waits (Condvar, ≤ answer_within): result posted ──▶ the outcome
//!                                        lease passed  ──▶ queued again (another agent, or the same back)
//!                                        nobody online, or the wait over ──▶ the location's problem, the job dropped
//!  poll (async): seen now ──▶ a queued job of its location, or none after poll_wait
//! ```
//!
//! Kept in memory on purpose: a job is one short check a migration step or
//! an API call waits for; after a restart of serve the step asks again.
//! An agent is listed from its first poll since serve started.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cutover_migrate::agent::{AgentJob, AgentOutcome, AgentTask};
use jiff::Timestamp;

use crate::config::agents::AgentsConfig;

/// What one agent is known by: its name and location.
type AgentKey = (String, String);

/// One agent as last seen.
#[derive(Clone, Debug)]
struct Agent {
    /// The name of the token it polls with.
    token: String,
    /// When it last polled or posted.
    seen: Instant,
    /// The same, on the wall clock (for the listing).
    seen_at: Timestamp,
    /// Results it posted that were taken.
    done: u64,
}

/// Where a job is.
#[derive(Clone, Debug)]
enum JobState {
    /// Waiting for an agent of its location.
    Queued,
    /// An agent has it until `until`.
    Leased {
        /// The agent.
        agent: AgentKey,
        /// When the lease passes.
        until: Instant,
    },
    /// Answered, waiting to be collected.
    Answered(AgentOutcome),
}

/// One job.
#[derive(Clone, Debug)]
struct Job {
    /// The location it must run from.
    location: String,
    /// What to do.
    task: AgentTask,
    /// Where it is.
    state: JobState,
    /// How many times it was leased.
    leases: u32,
}

/// Everything under the lock.
#[derive(Debug, Default)]
struct Inner {
    /// The agents, by name and location.
    agents: BTreeMap<AgentKey, Agent>,
    /// The jobs, by id (the lowest queued id of a location is leased first).
    jobs: BTreeMap<u64, Job>,
    /// The next job's id.
    next_id: u64,
    /// Jobs queued again after a lease passed (for /metrics).
    requeued: u64,
}

/// One agent as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentRow {
    /// Its name.
    pub name: String,
    /// Its location.
    pub location: String,
    /// Its token's name.
    pub token: String,
    /// Seen within `offline_after`.
    pub online: bool,
    /// When it was last seen.
    pub seen_at: Timestamp,
    /// How long ago.
    pub seen_ago: Duration,
    /// Results taken.
    pub done: u64,
    /// Jobs leased to it now.
    pub leased: u64,
}

/// The agents and their jobs; shared by the control plane (polls, results,
/// the listing) and the checks of the scheduler.
#[derive(Debug)]
pub struct Board {
    /// The state.
    inner: Mutex<Inner>,
    /// Woken when a job is answered (the dispatchers wait on it).
    answered: Condvar,
    /// Woken when a job is queued (the polls wait on it).
    queued: tokio::sync::Notify,
    /// The `[agents]` section.
    config: AgentsConfig,
}

impl Board {
    /// An empty board with the `[agents]` settings.
    pub fn new(config: AgentsConfig) -> Board {
        Board {
            inner: Mutex::new(Inner {
                next_id: 1,
                ..Inner::default()
            }),
            answered: Condvar::new(),
            queued: tokio::sync::Notify::new(),
            config,
        }
    }

    /// The `[agents]` settings.
    pub fn config(&self) -> &AgentsConfig {
        &self.config
    }

    /// The state.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when an agent seen at `seen` is online at `now`.
    fn online(&self, seen: Instant, now: Instant) -> bool {
        now.saturating_duration_since(seen) < self.config.offline_after
    }

    /// Queues again every job whose lease passed; true when any was.
    fn expire(&self, inner: &mut Inner, now: Instant) -> bool {
        let mut any = false;
        for job in inner.jobs.values_mut() {
            if let JobState::Leased { agent, until } = &job.state {
                if *until <= now {
                    tracing::warn!(
                        "agents: {} at {} did not answer its job within the lease; queued again",
                        agent.0,
                        agent.1
                    );
                    job.state = JobState::Queued;
                    any = true;
                    inner.requeued += 1;
                }
            }
        }
        any
    }

    /// The locations of every agent listed (online or not), sorted.
    pub fn locations(&self) -> Vec<String> {
        let inner = self.lock();
        let mut out: Vec<String> = inner.agents.keys().map(|(_, l)| l.clone()).collect();
        out.dedup();
        out.sort();
        out.dedup();
        out
    }

    /// Notes that an agent polled or posted now.
    fn seen(inner: &mut Inner, key: &AgentKey, token: &str) {
        let agent = inner.agents.entry(key.clone()).or_insert_with(|| Agent {
            token: token.to_owned(),
            seen: Instant::now(),
            seen_at: Timestamp::now(),
            done: 0,
        });
        agent.token = token.to_owned();
        agent.seen = Instant::now();
        agent.seen_at = Timestamp::now();
    }

    /// Leases the oldest queued job of `location` to the agent, if any.
    fn lease(&self, inner: &mut Inner, key: &AgentKey) -> Option<AgentJob> {
        let now = Instant::now();
        if self.expire(inner, now) {
            self.queued.notify_waiters();
        }
        let (id, job) = inner
            .jobs
            .iter_mut()
            .find(|(_, job)| job.location == key.1 && matches!(job.state, JobState::Queued))?;
        job.state = JobState::Leased {
            agent: key.clone(),
            until: now + self.config.lease,
        };
        job.leases += 1;
        Some(AgentJob {
            id: *id,
            task: job.task.clone(),
        })
    }

    /// An agent's poll: it is seen now, and gets a job of its location,
    /// or `None` once `poll_wait` passed with none.
    pub async fn poll(&self, name: &str, location: &str, token: &str) -> Option<AgentJob> {
        let key = (name.to_owned(), location.to_owned());
        let deadline = tokio::time::Instant::now() + self.config.poll_wait;
        {
            let mut inner = self.lock();
            Board::seen(&mut inner, &key, token);
        }
        loop {
            let notified = self.queued.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(job) = self.lease(&mut self.lock(), &key) {
                return Some(job);
            }
            // Leases pass without a notification: look again at least
            // every second.
            let wake = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
        }
    }

    /// An agent's result for job `id`: taken when the job is still leased
    /// to that agent, or queued again and not yet leased (a late answer is
    /// still a true one); otherwise why not.
    pub fn report(
        &self,
        name: &str,
        location: &str,
        token: &str,
        id: u64,
        outcome: AgentOutcome,
    ) -> Result<(), String> {
        let key = (name.to_owned(), location.to_owned());
        let mut inner = self.lock();
        Board::seen(&mut inner, &key, token);
        let Some(job) = inner.jobs.get_mut(&id) else {
            return Err(format!(
                "job {id} is no longer waited for (answered, or its wait is over)"
            ));
        };
        if job.location != location {
            return Err(format!(
                "job {id} runs from {}, not {location}",
                job.location
            ));
        }
        match &job.state {
            JobState::Leased { agent, .. } if *agent != key => {
                return Err(format!(
                    "job {id} is leased to {} now (the lease of {name} passed)",
                    agent.0
                ))
            }
            JobState::Answered(_) => return Err(format!("job {id} is answered already")),
            _ => {}
        }
        job.state = JobState::Answered(outcome);
        if let Some(agent) = inner.agents.get_mut(&key) {
            agent.done += 1;
        }
        self.answered.notify_all();
        Ok(())
    }

    /// Runs `task` at `location` through one of its agents and waits for
    /// the outcome, at most `answer_within`; or says why the location has
    /// none ("no agent online", "no answer within 60s").
    pub fn dispatch(&self, location: &str, task: AgentTask) -> Result<AgentOutcome, String> {
        let started = Instant::now();
        let deadline = started + self.config.answer_within;
        let mut inner = self.lock();
        if !self.any_online(&inner, location, started) {
            return Err(self.none_online(&inner, location));
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.jobs.insert(
            id,
            Job {
                location: location.to_owned(),
                task,
                state: JobState::Queued,
                leases: 0,
            },
        );
        self.queued.notify_waiters();
        loop {
            let now = Instant::now();
            if self.expire(&mut inner, now) {
                self.queued.notify_waiters();
            }
            let Some(job) = inner.jobs.get(&id) else {
                return Err("the job was lost".to_string());
            };
            if let JobState::Answered(outcome) = &job.state {
                let outcome = outcome.clone();
                inner.jobs.remove(&id);
                return Ok(outcome);
            }
            let waiting = matches!(job.state, JobState::Queued);
            if waiting && !self.any_online(&inner, location, now) {
                inner.jobs.remove(&id);
                return Err(self.none_online(&inner, location));
            }
            if now >= deadline {
                let leases = job.leases;
                inner.jobs.remove(&id);
                return Err(format!(
                    "no answer within {} ms (leased {leases} time{})",
                    self.config.answer_within.as_millis(),
                    if leases == 1 { "" } else { "s" }
                ));
            }
            let slice = (deadline - now).min(Duration::from_millis(250));
            inner = self
                .answered
                .wait_timeout(inner, slice)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// True when an agent of `location` is online at `now`.
    fn any_online(&self, inner: &Inner, location: &str, now: Instant) -> bool {
        inner
            .agents
            .iter()
            .any(|((_, l), a)| l == location && self.online(a.seen, now))
    }

    /// "no agent online", naming the offline ones and when they were seen.
    fn none_online(&self, inner: &Inner, location: &str) -> String {
        let now = Instant::now();
        let offline: Vec<String> = inner
            .agents
            .iter()
            .filter(|((_, l), _)| l == location)
            .map(|((n, _), a)| {
                format!(
                    "{n} offline, last seen {} s ago",
                    now.saturating_duration_since(a.seen).as_secs()
                )
            })
            .collect();
        if offline.is_empty() {
            "no agent online (none has polled from this location since serve started)".to_string()
        } else {
            format!("no agent online ({})", offline.join("; "))
        }
    }

    /// Every agent, by location then name.
    pub fn agents(&self) -> Vec<AgentRow> {
        let now = Instant::now();
        let inner = self.lock();
        let mut leased: HashMap<&AgentKey, u64> = HashMap::new();
        for job in inner.jobs.values() {
            if let JobState::Leased { agent, .. } = &job.state {
                *leased.entry(agent).or_default() += 1;
            }
        }
        let mut rows: Vec<AgentRow> = inner
            .agents
            .iter()
            .map(|(key, a)| AgentRow {
                name: key.0.clone(),
                location: key.1.clone(),
                token: a.token.clone(),
                online: self.online(a.seen, now),
                seen_at: a.seen_at,
                seen_ago: now.saturating_duration_since(a.seen),
                done: a.done,
                leased: leased.get(key).copied().unwrap_or(0),
            })
            .collect();
        rows.sort_by(|a, b| (&a.location, &a.name).cmp(&(&b.location, &b.name)));
        rows
    }

    /// Jobs queued again after a lease passed, since serve started.
    pub fn requeued(&self) -> u64 {
        self.lock().requeued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_migrate::file::Verify;
    use cutover_migrate::Survey;
    use std::sync::Arc;

    /// A board with short times: offline after 2 s, polls of 100 ms, leases of 300 ms.
    fn board() -> Arc<Board> {
        Arc::new(Board::new(AgentsConfig {
            offline_after: Duration::from_secs(2),
            poll_wait: Duration::from_millis(100),
            lease: Duration::from_millis(300),
            answer_within: Duration::from_secs(10),
        }))
    }

    /// A survey task.
    fn task() -> AgentTask {
        AgentTask::Survey {
            zone: "example.test.".into(),
            rrsets: Vec::new(),
            verify: Verify::default(),
        }
    }

    /// An outcome.
    fn outcome(problem: &str) -> AgentOutcome {
        AgentOutcome::Survey(Survey {
            problems: vec![problem.into()],
            ..Survey::default()
        })
    }

    #[test]
    fn a_location_no_agent_polled_from_is_no_agent_online() {
        let board = board();
        let said = board.dispatch("fra1", task()).expect_err("no agent");
        assert!(
            said.starts_with("no agent online (none has polled"),
            "{said}"
        );
    }

    #[test]
    fn a_lease_that_passes_gives_the_job_to_the_next_poll_and_refuses_the_first_agent() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let board = board();
        // Both agents are seen (a poll that finds nothing).
        assert!(runtime.block_on(board.poll("a", "fra1", "t")).is_none());
        assert!(runtime.block_on(board.poll("b", "fra1", "t")).is_none());
        let dispatcher = {
            let board = Arc::clone(&board);
            std::thread::spawn(move || board.dispatch("fra1", task()))
        };
        let first = runtime
            .block_on(async {
                loop {
                    if let Some(job) = board.poll("a", "fra1", "t").await {
                        return Some(job);
                    }
                }
            })
            .expect("a leased the job");
        assert_eq!(board.agents()[0].leased, 1, "{:?}", board.agents());
        // a goes silent; after the lease the job is b's.
        let second = runtime
            .block_on(async {
                loop {
                    if let Some(job) = board.poll("b", "fra1", "t").await {
                        return Some(job);
                    }
                }
            })
            .expect("b got the job once a's lease passed");
        assert_eq!(first.id, second.id, "the same job, leased again");
        assert_eq!(board.requeued(), 1);
        board
            .report("b", "fra1", "t", second.id, outcome("from b"))
            .expect("b's result taken");
        let got = dispatcher.join().unwrap().expect("an outcome");
        assert_eq!(got, outcome("from b"));
        let late = board
            .report("a", "fra1", "t", first.id, outcome("from a"))
            .expect_err("a's late result refused");
        assert!(late.contains("no longer waited for"), "{late}");
        let rows = board.agents();
        let done: Vec<(&str, u64)> = rows.iter().map(|r| (r.name.as_str(), r.done)).collect();
        assert_eq!(done, [("a", 0), ("b", 1)]);
    }

    #[test]
    fn an_agent_silent_past_offline_after_is_offline_and_its_location_has_none_online() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let board = Arc::new(Board::new(AgentsConfig {
            offline_after: Duration::from_millis(200),
            poll_wait: Duration::from_millis(100),
            lease: Duration::from_millis(300),
            answer_within: Duration::from_secs(10),
        }));
        assert!(runtime.block_on(board.poll("a", "fra1", "t")).is_none());
        assert!(board.agents()[0].online);
        let deadline = Instant::now() + Duration::from_secs(10);
        while board.agents()[0].online {
            assert!(
                Instant::now() < deadline,
                "expected a offline after 200 ms of silence"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let said = board.dispatch("fra1", task()).expect_err("nobody online");
        assert!(
            said.starts_with("no agent online (a offline, last seen"),
            "{said}"
        );
    }
}
