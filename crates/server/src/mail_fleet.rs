//! The migration's mail steps on every relay of the domain: this serve's
//! own `[mail]` relay (when it has one) and each `[[relay]]` through that
//! serve's control plane (`POST /api/v1/mail/hold|retarget|release`, its
//! admin token). A step is acknowledged only when every relay did it.
//!
//! ```text
//!  runner ──hold/retarget/release──▶ FleetMail ──▶ MigrationMail (local spool: control.sock │ at rest)
//!                                              ├──HTTP(S) + Bearer──▶ mx2's /api/v1/mail/… ──▶ mx2's spool
//!                                              └──HTTP(S) + Bearer──▶ mx3's …
//!  every relay asked, each time (none skipped because another failed);
//!  Ok: "mx1 (local): …; mx2 (https://…): …"   Err: the relays that failed and why, then what the others did
//! ```
//!
//! Each action is idempotent on a relay (holding a held domain holds
//! nothing more, a retarget to the same destination is the same route,
//! releasing a released domain releases nothing), so the runner may ask
//! again after a failure: the relays that already acknowledged answer the
//! same, and the one that failed gets its turn.

use std::time::Duration;

use cutover_api::{MailAction, MailActionResult, MailRetarget};

use crate::config::mail::MailConfig;
use crate::config::relay::RelayPeer;
use crate::relay::MigrationMail;

/// The longest one request to another relay may take, connection included.
const PEER_TIMEOUT: Duration = Duration::from_secs(15);

/// The relays of the migrated domain: this serve's, and the others.
pub struct FleetMail {
    /// This serve's `[mail]` relay, named by its hostname.
    local: Option<(String, MigrationMail)>,
    /// The `[[relay]]` tables.
    peers: Vec<RelayPeer>,
}

/// The mail controls a migration run by this serve gets: the local relay
/// alone when there are no `[[relay]]` tables (its evidence as before),
/// every relay otherwise; `None` when there is no relay at all.
pub fn migration_mail(
    mail: Option<&MailConfig>,
    peers: &[RelayPeer],
) -> Option<Box<dyn cutover_migrate::MailControl>> {
    match (mail, peers.is_empty()) {
        (None, true) => None,
        (Some(mail), true) => Some(Box::new(MigrationMail::new(mail))),
        (mail, false) => Some(Box::new(FleetMail {
            local: mail.map(|mail| (mail.hostname.clone(), MigrationMail::new(mail))),
            peers: peers.to_vec(),
        })),
    }
}

/// What one relay's request came to, in words.
type Answer = Result<String, String>;

impl FleetMail {
    /// Runs `local` on this serve's relay and `peer` on each other relay;
    /// joins their answers, naming each relay.
    fn each(
        &self,
        local: impl Fn(&MigrationMail) -> Answer,
        peer: impl Fn(&RelayPeer) -> Answer,
    ) -> Answer {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let answers = self
            .local
            .iter()
            .map(|(name, mail)| (format!("{name} (local)"), local(mail)))
            .chain(
                self.peers
                    .iter()
                    .map(|p| (format!("{} ({})", p.name.get_ref(), p.base()), peer(p))),
            );
        for (label, answer) in answers {
            match answer {
                Ok(said) => done.push(format!("{label}: {said}")),
                Err(why) => failed.push(format!("{label} FAILED: {why}")),
            }
        }
        let total = done.len() + failed.len();
        if failed.is_empty() {
            return Ok(format!(
                "all {total} relay(s) acknowledged: {}",
                done.join("; ")
            ));
        }
        let mut said = format!(
            "{} of {total} relay(s) did not acknowledge: {}",
            failed.len(),
            failed.join("; ")
        );
        if !done.is_empty() {
            said.push_str(&format!("; acknowledged: {}", done.join("; ")));
        }
        Err(said)
    }
}

impl cutover_migrate::MailControl for FleetMail {
    fn hold(&self, domain: &str) -> Result<String, String> {
        self.each(
            |mail| mail.hold(domain),
            |peer| {
                let answer = post_domain(peer, "hold", domain)?;
                Ok(format!(
                    "{domain} held: {} queued message(s) held, and its mail arriving from now on",
                    answer.changed.len()
                ))
            },
        )
    }

    fn retarget(&self, domain: &str, destination: &str) -> Result<String, String> {
        self.each(
            |mail| mail.retarget(domain, destination),
            |peer| {
                let body = serde_json::to_string(&MailRetarget {
                    domain: domain.to_string(),
                    destination: destination.to_string(),
                    release: Some(false),
                    keep_held: None,
                })
                .map_err(|e| e.to_string())?;
                let answer = post(peer, "retarget", &body)?;
                Ok(format!(
                    "{domain} now goes to {destination}: {} message(s) due now, {} held until the release",
                    answer.changed.len(),
                    answer.held.len()
                ))
            },
        )
    }

    fn release(&self, domain: &str) -> Result<String, String> {
        self.each(
            |mail| mail.release(domain),
            |peer| {
                let answer = post_domain(peer, "release", domain)?;
                Ok(format!(
                    "{domain} released: {} message(s) released, due now",
                    answer.changed.len()
                ))
            },
        )
    }
}

/// `POST {url}/api/v1/mail/{action}` with the relay's admin token; its
/// `action` (`hold`, `release`) for the whole of `domain` on `peer`.
fn post_domain(peer: &RelayPeer, action: &str, domain: &str) -> Result<MailActionResult, String> {
    let body = serde_json::to_string(&MailAction {
        all: false,
        domain: Some(domain.to_string()),
        message: None,
    })
    .map_err(|e| e.to_string())?;
    post(peer, action, &body)
}

/// answer, or why not (the peer's own error message; never the token).
fn post(peer: &RelayPeer, action: &str, body: &str) -> Result<MailActionResult, String> {
    let token = peer.token()?;
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(PEER_TIMEOUT))
        .max_redirects(0);
    if let Some(ca_file) = &peer.ca_file {
        config = config.tls_config(cutover_migrate::notify::https_roots(
            ca_file.get_ref(),
            "relay.ca_file",
        )?);
    }
    let agent: ureq::Agent = config.build().into();
    let url = format!("{}/api/v1/mail/{action}", peer.base());
    let mut response = agent
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Authorization", &format!("Bearer {token}"))
        .header("User-Agent", concat!("cutover/", env!("CARGO_PKG_VERSION")))
        .send(body)
        .map_err(|e| format!("unreachable: {}", e.to_string().replace(&token, "<token>")))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(4 << 20)
        .read_to_string()
        .map_err(|e| format!("HTTP {status}, and its answer could not be read: {e}"))?;
    if !(200..300).contains(&status) {
        let said = serde_json::from_str::<cutover_api::ErrorBody>(&text)
            .map(|body| body.error.message)
            .unwrap_or_else(|_| text.chars().take(200).collect());
        return Err(format!("HTTP {status}: {said}"));
    }
    serde_json::from_str(&text)
        .map_err(|e| format!("HTTP {status} with an answer not understood: {e}"))
}
