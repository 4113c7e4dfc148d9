//! The `cutover agent` process: it connects out only, polls the control
//! plane of a serve for jobs of its location, runs each with the probes
//! (asking its own resolvers), and posts the outcome.
//!
//! ```text
//!  loop: POST /api/v1/agents/poll {name, location} ──▶ {job: none} ──▶ poll again
//!                                                 └─▶ {job} ──AgentTask::run(ProbeChecks)──▶ POST /api/v1/agents/results
//!        unreachable, 5xx ──▶ wait (250 ms doubling to 10 s, jittered ±50 %) ──▶ poll again
//!        401 / 403 ──▶ stop with the error (a token problem does not heal by waiting)
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use cutover_migrate::agent::{AgentHello, AgentPolled, AgentReport};
use cutover_migrate::checks::ProbeChecks;

/// The first wait after a failure.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between tries.
const BACKOFF_CAP: Duration = Duration::from_secs(10);

/// How an agent is run.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The control plane, `https://control:8053` (or `http://` on loopback).
    pub server: String,
    /// Its agent token.
    pub token: String,
    /// Where it looks from.
    pub location: String,
    /// Its name.
    pub name: String,
    /// A CA certificate (PEM) for a control plane with a private CA.
    pub ca_file: Option<PathBuf>,
    /// The resolvers of this location (empty: the job's).
    pub resolvers: Vec<SocketAddr>,
    /// Each probe step gives up after this long.
    pub probe_timeout: Duration,
}

/// Why a call did not come back with an answer.
enum CallError {
    /// Worth trying again later (unreachable, 5xx, 429).
    Transient(String),
    /// Not (a bad token, a refused body).
    Fatal(String),
}

/// The HTTP side of an agent.
struct Link {
    /// The base URL.
    base: String,
    /// `Bearer TOKEN`.
    auth: String,
    /// The client.
    agent: ureq::Agent,
    /// The token, hidden from errors.
    token: String,
}

impl Link {
    /// POSTs `body` to `path` under the API prefix; the answer's JSON.
    fn post<T: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R, CallError> {
        let url = format!("{}{}{path}", self.base, cutover_api::PREFIX);
        let body = serde_json::to_string(body).map_err(|e| CallError::Fatal(e.to_string()))?;
        let mut response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Authorization", &self.auth)
            .header(
                "User-Agent",
                concat!("cutover-agent/", env!("CARGO_PKG_VERSION")),
            )
            .send(body)
            .map_err(|e| {
                CallError::Transient(format!(
                    "{url} unreachable: {}",
                    e.to_string().replace(&self.token, "<token>")
                ))
            })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| {
                CallError::Transient(format!("{url}: HTTP {status}, answer unread: {e}"))
            })?;
        if !(200..300).contains(&status) {
            let said = serde_json::from_str::<cutover_api::ErrorBody>(&text)
                .map(|body| body.error.message)
                .unwrap_or_else(|_| text.chars().take(200).collect());
            let error = format!("{url}: HTTP {status}: {said}");
            return Err(if status >= 500 || status == 429 || status == 408 {
                CallError::Transient(error)
            } else {
                CallError::Fatal(error)
            });
        }
        serde_json::from_str(&text)
            .map_err(|e| CallError::Fatal(format!("{url}: an answer not understood: {e}")))
    }
}

/// The wait after `failures` failures in a row: doubling from 250 ms,
/// capped at 10 s, then jittered by up to ±50 % so that agents cut off
/// together do not come back together.
pub fn backoff(failures: u32) -> Duration {
    let base = BACKOFF_FIRST
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let mut byte = [0u8; 2];
    let roll = match getrandom::fill(&mut byte) {
        Ok(()) => u16::from_le_bytes(byte),
        Err(_) => u16::MAX / 2,
    };
    // A factor from 0.5 to 1.5.
    let factor = 0.5 + f64::from(roll) / f64::from(u16::MAX);
    base.mul_f64(factor)
}

/// Runs the agent until a fatal error (a bad token, a refused name).
pub fn run(options: &AgentOptions) -> anyhow::Result<()> {
    if !cutover_migrate::file::valid_location(&options.location) {
        bail!(
            "--location {:?}: expected 1 to 64 letters, digits, '-', '_' or '.' (and not \"all\")",
            options.location
        );
    }
    if options.location == cutover_migrate::file::LOCAL {
        bail!("--location local: \"local\" is the serve's own location; name the agent's place (fra1, nyc1…)");
    }
    let base = options.server.trim_end_matches('/').to_owned();
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        bail!("--server {base}: expected an http:// or https:// URL");
    }
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .timeout_connect(Some(Duration::from_secs(5)))
        .max_redirects(0);
    if let Some(ca_file) = &options.ca_file {
        if !base.starts_with("https://") {
            bail!("--ca-file is for an https:// server");
        }
        config = config.tls_config(
            cutover_migrate::notify::https_roots(ca_file, "--ca-file").map_err(|e| anyhow!(e))?,
        );
    }
    let link = Link {
        base,
        auth: format!("Bearer {}", options.token),
        agent: config.build().into(),
        token: options.token.clone(),
    };
    let checks = ProbeChecks::new().with_timeout(options.probe_timeout);
    let hello = AgentHello {
        name: options.name.clone(),
        location: options.location.clone(),
    };
    tracing::info!(
        "agent {} at {}: polling {} for jobs",
        options.name,
        options.location,
        link.base
    );
    let mut failures = 0u32;
    loop {
        let polled: AgentPolled = match link.post("/agents/poll", &hello) {
            Ok(polled) => {
                if failures > 0 {
                    tracing::info!(
                        "agent: {} reached again after {failures} failed tries",
                        link.base
                    );
                }
                failures = 0;
                polled
            }
            Err(CallError::Fatal(error)) => bail!("{error}"),
            Err(CallError::Transient(error)) => {
                failures += 1;
                let wait = backoff(failures);
                tracing::warn!("agent: {error}; trying again in {} ms", wait.as_millis());
                std::thread::sleep(wait);
                continue;
            }
        };
        let Some(job) = polled.job else { continue };
        tracing::info!("agent: job {} ({})", job.id, kind(&job.task));
        let outcome = job.task.run(&checks, &options.resolvers);
        let report = AgentReport {
            name: options.name.clone(),
            location: options.location.clone(),
            job: job.id,
            outcome,
        };
        // The result is worth posting until its lease has passed.
        let until = std::time::Instant::now() + Duration::from_secs(polled.lease_seconds.max(1));
        let mut tries = 0u32;
        loop {
            match link.post::<_, cutover_api::AgentAccepted>("/agents/results", &report) {
                Ok(accepted) => {
                    if !accepted.accepted {
                        tracing::warn!(
                            "agent: result of job {} not taken: {}",
                            job.id,
                            accepted.reason.unwrap_or_default()
                        );
                    }
                    break;
                }
                Err(CallError::Fatal(error)) => bail!("{error}"),
                Err(CallError::Transient(error)) => {
                    tries += 1;
                    let wait = backoff(tries);
                    if std::time::Instant::now() + wait > until {
                        tracing::warn!(
                            "agent: result of job {} not posted ({error}); its lease passes",
                            job.id
                        );
                        break;
                    }
                    tracing::warn!("agent: {error}; posting again in {} ms", wait.as_millis());
                    std::thread::sleep(wait);
                }
            }
        }
    }
}

/// A job's kind, in a word.
fn kind(task: &cutover_migrate::agent::AgentTask) -> &'static str {
    match task {
        cutover_migrate::agent::AgentTask::Survey { .. } => "survey",
        cutover_migrate::agent::AgentTask::Service { .. } => "service check",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_is_capped_and_jittered_within_half() {
        for failures in 1..40 {
            let base = BACKOFF_FIRST
                .saturating_mul(1u32 << (failures - 1).min(16))
                .min(BACKOFF_CAP);
            let wait = backoff(failures);
            assert!(
                wait >= base / 2 && wait <= base.mul_f64(1.5),
                "expected {base:?} ±50 % after {failures} failures, saw {wait:?}"
            );
            assert!(
                wait <= BACKOFF_CAP.mul_f64(1.5),
                "expected the cap kept, saw {wait:?}"
            );
        }
    }
}
