//! The `[agents]` section of the config: how the control plane treats the
//! `cutover agent`s that poll it for checks to run from their locations.
//! Every duration has a default and a range.
//!
//! ```text
//!  agent ──poll (waits ≤ poll_wait)──▶ job leased for `lease` ──result──▶ taken
//!                                          └── no result in time ──▶ queued again
//!  silent longer than offline_after ──▶ offline: never counted as agreeing
//!  a migration's check waits ≤ answer_within for a location's answer
//! ```

use std::time::Duration;

use serde::Deserialize;

/// The `[agents]` section of the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfig {
    /// An agent that has not polled nor posted for this long is offline.
    #[serde(
        default = "default_offline_after",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub offline_after: Duration,
    /// The longest a poll waits for a job before it is answered "none"
    /// (less than `offline_after`: a waiting agent is seen at each poll).
    #[serde(
        default = "default_poll_wait",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub poll_wait: Duration,
    /// How long a job is an agent's to finish; then it is queued again for
    /// any agent of its location.
    #[serde(
        default = "default_lease",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub lease: Duration,
    /// The longest a check waits for a location's answer; then the location
    /// counts as not answering (a problem, never agreement).
    #[serde(
        default = "default_answer_within",
        deserialize_with = "crate::config::duration::duration"
    )]
    pub answer_within: Duration,
}

impl Default for AgentsConfig {
    fn default() -> AgentsConfig {
        AgentsConfig {
            offline_after: default_offline_after(),
            poll_wait: default_poll_wait(),
            lease: default_lease(),
            answer_within: default_answer_within(),
        }
    }
}

/// The shortest any of them may be.
pub const MIN: Duration = Duration::from_millis(100);
/// The longest any of them may be.
pub const MAX: Duration = Duration::from_secs(3600);

/// Thirty seconds of silence.
fn default_offline_after() -> Duration {
    Duration::from_secs(30)
}

/// Twenty seconds a poll.
fn default_poll_wait() -> Duration {
    Duration::from_secs(20)
}

/// Thirty seconds a job.
fn default_lease() -> Duration {
    Duration::from_secs(30)
}

/// A minute for a location's answer.
fn default_answer_within() -> Duration {
    Duration::from_secs(60)
}

impl AgentsConfig {
    /// Checks what serde cannot: each duration in range, a poll shorter
    /// than the silence that makes an agent offline.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("offline_after", self.offline_after),
            ("poll_wait", self.poll_wait),
            ("lease", self.lease),
            ("answer_within", self.answer_within),
        ] {
            if !(MIN..=MAX).contains(&value) {
                return Err(format!(
                    "{key} = {}: expected 100ms to 1h",
                    cutover_zone::duration::words(value)
                ));
            }
        }
        if self.poll_wait >= self.offline_after {
            return Err(format!(
                "poll_wait ({} ms) must be shorter than offline_after ({} ms): an agent waiting in a poll would be shown offline",
                self.poll_wait.as_millis(),
                self.offline_after.as_millis()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_as_long_as_the_offline_time_is_refused() {
        let config = AgentsConfig {
            poll_wait: Duration::from_secs(30),
            ..AgentsConfig::default()
        };
        let error = config.validate().expect_err("refused");
        assert!(
            error.contains("poll_wait (30000 ms) must be shorter than offline_after (30000 ms)"),
            "{error}"
        );
        assert!(AgentsConfig::default().validate().is_ok());
    }
}
