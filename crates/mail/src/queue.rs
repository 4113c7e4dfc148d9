//! The queue: which spooled recipients are due where, what an attempt's
//! outcome does to them, and the operator's controls. Pure: no clock (time
//! passed in), no randomness (jitter passed in), no I/O (the caller writes
//! the ids it is told changed back to the spool).
//!
//! ```text
//!   Scheduled ──attempt──► Delivered
//!       │    ╲──────────► Failed ──► failure DSN (unless NOTIFY=NEVER / <>)
//!       ▼
//!   Deferred ──backoff: first_retry·2^(n-1), ≤ max_retry, ±25% jitter──► attempt
//!       └── older than delay_warning: one delay DSN; older than lifetime: Failed
//!   hold / release: per message or per domain (held mail is never due)
//!   retarget DOMAIN DEST: the domain's route changes, its waiting mail that
//!       is not held is due now; held mail stays held unless asked to release
//!   flush: waiting mail that is not held due now;  delete: gone without a DSN
//! ```
//!
//! Every control says what it did, message by message ([`Effect`],
//! [`RetargetEffect`]): the messages it held, released or made due, counted
//! from the recipients still waiting before and after it, so that a count
//! printed is what happened.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use thiserror::Error;

use crate::spool::{DeliveryState, Spooled};

/// Where a domain's mail goes: host name or address, and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Destination {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// STARTTLS required: never deliver in clear text there (per domain in
    /// the config; kept across a retarget).
    pub require_tls: bool,
}

/// A destination that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid destination {0:?}: expected HOST, HOST:PORT or [IPV6]:PORT")]
pub struct DestinationError(pub String);

impl FromStr for Destination {
    type Err = DestinationError;

    /// Parses `host`, `host:port`, `[v6]:port` or a bare IPv6 address (port 25).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || DestinationError(text.to_string());
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(invalid)?;
            match after.strip_prefix(':') {
                Some(port) => (host, port.parse().map_err(|_| invalid())?),
                None if after.is_empty() => (host, 25),
                None => return Err(invalid()),
            }
        } else if text.matches(':').count() == 1 {
            let (host, port) = text.split_once(':').ok_or_else(invalid)?;
            (host, port.parse().map_err(|_| invalid())?)
        } else {
            (text, 25)
        };
        let valid = !host.is_empty()
            && port != 0
            && host
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || "-.:_".contains(character));
        if !valid {
            return Err(invalid());
        }
        Ok(Destination {
            host: host.to_string(),
            port,
            require_tls: false,
        })
    }
}

impl fmt::Display for Destination {
    /// `host:port`, IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Retry and expiry timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The wait after the first failed attempt.
    pub first_retry: Duration,
    /// The longest wait between attempts.
    pub max_retry: Duration,
    /// How long a message is kept before its recipients fail (5 days).
    pub lifetime: Duration,
    /// Age after which one delay warning is sent.
    pub delay_warning: Duration,
}

impl Default for Schedule {
    /// 1 minute doubling up to 1 hour; warn after 4 hours; give up after 5 days.
    fn default() -> Self {
        Schedule {
            first_retry: Duration::from_secs(60),
            max_retry: Duration::from_secs(3600),
            lifetime: Duration::from_secs(5 * 24 * 3600),
            delay_warning: Duration::from_secs(4 * 3600),
        }
    }
}

impl Schedule {
    /// The wait after `attempts` failed attempts, `jitter` in [0, 1) giving ±25%.
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let wait = self
            .first_retry
            .saturating_mul(1u32 << doublings)
            .min(self.max_retry);
        wait.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// What an operator command applies to (JSON: `"all"`, `{"domain": D}`,
/// `{"message": ID}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// Every message.
    All,
    /// Every message with a recipient in this domain (and the domain itself, for hold).
    Domain(String),
    /// One message by queue id.
    Message(String),
}

/// The result of one delivery attempt for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The destination accepted it (2xx after DATA).
    Delivered,
    /// Try again later (4xx, connection trouble, loop guard).
    Temporary(String),
    /// Never (5xx).
    Permanent(String),
}

/// Recipients of one message due for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The queue id.
    pub id: String,
    /// Indexes into the envelope's recipients.
    pub recipients: Vec<usize>,
}

/// Everything due for one destination, to go over one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Where.
    pub destination: Destination,
    /// What, in arrival order.
    pub items: Vec<Item>,
}

/// Reports to send after an outcome or a sweep: (queue id, recipients).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reports {
    /// Recipients that failed for good, per message: failure DSNs.
    pub failed: Vec<(String, Vec<usize>)>,
    /// Recipients late enough for a delay warning, per message.
    pub delayed: Vec<(String, Vec<usize>)>,
}

/// What a control did: the messages it held, released or made due (what
/// it reports), and those whose own status changed (what the caller writes
/// back to the spool).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effect {
    /// Messages the control acted on, in arrival order.
    pub ids: Vec<String>,
    /// Messages whose status (held flag, next attempt) changed.
    pub changed: Vec<String>,
}

/// What a retarget did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetargetEffect {
    /// Messages of the domain due now at the new destination (not held).
    pub due: Vec<String>,
    /// Messages of the domain it released (when asked to).
    pub released: Vec<String>,
    /// Messages of the domain still held (released later, explicitly).
    pub held: Vec<String>,
    /// Messages whose status changed (to write back).
    pub changed: Vec<String>,
}

/// One line of `cutover mail queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The queue id.
    pub id: String,
    /// The sender.
    pub sender: String,
    /// Age in the queue.
    pub age: Duration,
    /// Size in octets.
    pub size: u64,
    /// Held (itself or by domain).
    pub held: bool,
    /// Per recipient: address, state, attempts, last error.
    pub recipients: Vec<(String, DeliveryState, u32, Option<String>)>,
}

/// The in-memory queue over the spooled messages.
#[derive(Debug, Clone)]
pub struct Queue {
    /// Spooled messages by id (arrival order).
    messages: BTreeMap<String, Spooled>,
    /// The destination of each domain; `*` is the fallback (for DSNs).
    routes: BTreeMap<String, Destination>,
    /// Destinations set by `retarget`, over `routes` (persisted controls).
    overrides: BTreeMap<String, Destination>,
    /// Domains on hold.
    held_domains: BTreeSet<String>,
    /// Retry and expiry timings.
    schedule: Schedule,
}

impl Queue {
    /// An empty queue with the configured routes.
    pub fn new(schedule: Schedule, routes: BTreeMap<String, Destination>) -> Self {
        Queue {
            messages: BTreeMap::new(),
            routes: routes
                .into_iter()
                .map(|(domain, destination)| (domain.to_ascii_lowercase(), destination))
                .collect(),
            overrides: BTreeMap::new(),
            held_domains: BTreeSet::new(),
            schedule,
        }
    }

    /// Adds a spooled message (just accepted, or loaded at start).
    pub fn insert(&mut self, spooled: Spooled) {
        self.messages.insert(spooled.id.clone(), spooled);
    }

    /// A message by id.
    pub fn message(&self, id: &str) -> Option<&Spooled> {
        self.messages.get(id)
    }

    /// The queued ids, in arrival order.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.messages.keys()
    }

    /// Removes a finished or deleted message from memory.
    pub fn forget(&mut self, id: &str) -> Option<Spooled> {
        self.messages.remove(id)
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The destination of `domain` (a retarget first, then the config),
    /// falling back to `*`.
    pub fn route(&self, domain: &str) -> Option<&Destination> {
        let domain = domain.to_ascii_lowercase();
        self.overrides
            .get(&domain)
            .or_else(|| self.routes.get(&domain))
            .or_else(|| self.overrides.get("*"))
            .or_else(|| self.routes.get("*"))
    }

    /// Whether `domain` is on hold.
    pub fn is_held(&self, domain: &str) -> bool {
        self.held_domains.contains(&domain.to_ascii_lowercase())
    }

    /// The domains on hold.
    pub fn held_domains(&self) -> impl Iterator<Item = &str> {
        self.held_domains.iter().map(String::as_str)
    }

    /// The operator's controls, to persist: `route D H:P [tls]` for each
    /// retarget and `hold D` for each held domain. Configured routes are not
    /// written, so a changed config takes effect unless a retarget overrides it.
    pub fn controls(&self) -> String {
        let mut text = String::new();
        for (domain, destination) in &self.overrides {
            let tls = if destination.require_tls { " tls" } else { "" };
            text.push_str(&format!("route {domain} {destination}{tls}\n"));
        }
        for domain in &self.held_domains {
            text.push_str(&format!("hold {domain}\n"));
        }
        text
    }

    /// Applies persisted controls over the configured ones.
    pub fn apply_controls(&mut self, text: &str) -> Result<(), DestinationError> {
        for line in text.lines() {
            match line.split(' ').collect::<Vec<_>>().as_slice() {
                ["route", domain, destination] => {
                    self.overrides
                        .insert(domain.to_string(), destination.parse()?);
                }
                ["route", domain, destination, "tls"] => {
                    let mut destination: Destination = destination.parse()?;
                    destination.require_tls = true;
                    self.overrides.insert(domain.to_string(), destination);
                }
                ["hold", domain] => {
                    self.held_domains.insert(domain.to_string());
                }
                _ => return Err(DestinationError(line.to_string())),
            }
        }
        Ok(())
    }

    /// What is due at `now`, grouped by destination, in arrival order.
    pub fn due(&self, now: SystemTime) -> Vec<Batch> {
        let mut batches: BTreeMap<Destination, Vec<Item>> = BTreeMap::new();
        for spooled in self.messages.values().filter(|spooled| !spooled.held) {
            let mut per_destination: BTreeMap<&Destination, Vec<usize>> = BTreeMap::new();
            for (index, status) in spooled.statuses.iter().enumerate() {
                let recipient = &spooled.envelope.recipients[index];
                let waiting = matches!(
                    status.state,
                    DeliveryState::Scheduled | DeliveryState::Deferred
                );
                if !waiting
                    || status.next_attempt > now
                    || self.held_domains.contains(&recipient.domain)
                {
                    continue;
                }
                if let Some(destination) = self.route(&recipient.domain) {
                    per_destination.entry(destination).or_default().push(index);
                }
            }
            for (destination, recipients) in per_destination {
                batches.entry(destination.clone()).or_default().push(Item {
                    id: spooled.id.clone(),
                    recipients,
                });
            }
        }
        batches
            .into_iter()
            .map(|(destination, items)| Batch { destination, items })
            .collect()
    }

    /// The earliest time something not held becomes due, if anything waits.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.messages
            .values()
            .filter(|spooled| !spooled.held)
            .flat_map(|spooled| {
                spooled
                    .statuses
                    .iter()
                    .zip(&spooled.envelope.recipients)
                    .filter(|(status, recipient)| {
                        matches!(
                            status.state,
                            DeliveryState::Scheduled | DeliveryState::Deferred
                        ) && !self.held_domains.contains(&recipient.domain)
                            && self.route(&recipient.domain).is_some()
                    })
                    .map(|(status, _)| status.next_attempt)
            })
            .min()
    }

    /// Records the outcomes of an attempt on message `id`; `jitter` in [0, 1).
    pub fn record(
        &mut self,
        id: &str,
        outcomes: &[(usize, Outcome)],
        now: SystemTime,
        jitter: f64,
    ) -> Reports {
        let mut reports = Reports::default();
        let schedule = self.schedule;
        let Some(spooled) = self.messages.get_mut(id) else {
            return reports;
        };
        let expired = age(spooled, now) >= schedule.lifetime;
        let mut failed = Vec::new();
        for (index, outcome) in outcomes {
            let Some(status) = spooled.statuses.get_mut(*index) else {
                continue;
            };
            status.attempts += 1;
            match outcome {
                Outcome::Delivered => {
                    status.state = DeliveryState::Delivered;
                    status.last_error = None;
                }
                Outcome::Permanent(error) => {
                    status.state = DeliveryState::Failed;
                    status.last_error = Some(error.clone());
                    failed.push(*index);
                }
                Outcome::Temporary(error) if expired => {
                    status.state = DeliveryState::Failed;
                    status.last_error =
                        Some(format!("queue lifetime expired; last error: {error}"));
                    failed.push(*index);
                }
                Outcome::Temporary(error) => {
                    status.state = DeliveryState::Deferred;
                    status.last_error = Some(error.clone());
                    status.next_attempt = now + schedule.backoff(status.attempts, jitter);
                }
            }
        }
        if !failed.is_empty() {
            reports.failed.push((id.to_string(), failed));
        }
        reports
    }

    /// Expires recipients past the lifetime and picks delay warnings due;
    /// returns the reports and the ids whose status changed.
    pub fn sweep(&mut self, now: SystemTime) -> (Reports, Vec<String>) {
        let mut reports = Reports::default();
        let mut changed = Vec::new();
        let schedule = self.schedule;
        for spooled in self.messages.values_mut() {
            let age = age(spooled, now);
            let waiting: Vec<usize> = spooled
                .statuses
                .iter()
                .enumerate()
                .filter(|(_, status)| {
                    matches!(
                        status.state,
                        DeliveryState::Scheduled | DeliveryState::Deferred
                    )
                })
                .map(|(index, _)| index)
                .collect();
            if waiting.is_empty() {
                continue;
            }
            if age >= schedule.lifetime {
                for &index in &waiting {
                    let status = &mut spooled.statuses[index];
                    status.state = DeliveryState::Failed;
                    let last = status
                        .last_error
                        .take()
                        .unwrap_or_else(|| "never attempted".into());
                    status.last_error = Some(format!("queue lifetime expired; last error: {last}"));
                }
                reports.failed.push((spooled.id.clone(), waiting));
                changed.push(spooled.id.clone());
            } else if age >= schedule.delay_warning && !spooled.warned {
                let deferred: Vec<usize> = waiting
                    .into_iter()
                    .filter(|&index| spooled.statuses[index].attempts > 0)
                    .collect();
                if !deferred.is_empty() {
                    spooled.warned = true;
                    reports.delayed.push((spooled.id.clone(), deferred));
                    changed.push(spooled.id.clone());
                }
            }
        }
        (reports, changed)
    }

    /// Holds the selected mail (a domain: also its mail yet to come);
    /// reports the messages with a waiting recipient it held.
    pub fn hold(&mut self, selector: &Selector) -> Effect {
        let before = self.held_waiting();
        let changed = match selector {
            Selector::Domain(domain) => {
                self.held_domains.insert(domain.to_ascii_lowercase());
                Vec::new()
            }
            _ => self.set_held(selector, true),
        };
        let ids = self
            .held_waiting()
            .into_iter()
            .filter(|(id, after)| {
                (0..after.len())
                    .any(|index| before[id][index] == Some(false) && after[index] == Some(true))
            })
            .map(|(id, _)| id)
            .collect();
        Effect { ids, changed }
    }

    /// Releases the selected mail (and the domain hold); what it releases
    /// is due at once. Reports the messages with a waiting recipient it
    /// released.
    pub fn release(&mut self, selector: &Selector, now: SystemTime) -> Effect {
        let before = self.held_waiting();
        match selector {
            Selector::Domain(domain) => {
                self.held_domains.remove(&domain.to_ascii_lowercase());
            }
            Selector::All => self.held_domains.clear(),
            Selector::Message(_) => {}
        }
        let mut changed = self.set_held(selector, false);
        let mut ids = Vec::new();
        for (id, after) in self.held_waiting() {
            let released: Vec<usize> = (0..after.len())
                .filter(|&index| before[&id][index] == Some(true) && after[index] == Some(false))
                .collect();
            if released.is_empty() {
                continue;
            }
            if let Some(spooled) = self.messages.get_mut(&id) {
                for index in released {
                    let status = &mut spooled.statuses[index];
                    status.next_attempt = status.next_attempt.min(now);
                }
            }
            if !changed.contains(&id) {
                changed.push(id.clone());
            }
            ids.push(id);
        }
        Effect { ids, changed }
    }

    /// Makes the selected waiting mail that is not held due at `now`;
    /// reports every selected message due now.
    pub fn flush(&mut self, selector: &Selector, now: SystemTime) -> Effect {
        let mut effect = Effect::default();
        let held_domains = &self.held_domains;
        for spooled in self.messages.values_mut() {
            let mut due = false;
            let mut touched = false;
            for (index, status) in spooled.statuses.iter_mut().enumerate() {
                let recipient = &spooled.envelope.recipients[index];
                let deliverable = selects(selector, &spooled.id, &recipient.domain)
                    && waiting(status.state)
                    && !spooled.held
                    && !held_domains.contains(&recipient.domain);
                if !deliverable {
                    continue;
                }
                due = true;
                if status.next_attempt > now {
                    status.next_attempt = now;
                    touched = true;
                }
            }
            if due {
                effect.ids.push(spooled.id.clone());
            }
            if touched {
                effect.changed.push(spooled.id.clone());
            }
        }
        effect
    }

    /// Sends `domain`'s mail to `destination` from now on, and its waiting
    /// mail that is not held at once. Held mail stays held unless
    /// `release` (then the domain hold is lifted and its messages released).
    pub fn retarget(
        &mut self,
        domain: &str,
        destination: Destination,
        now: SystemTime,
        release: bool,
    ) -> RetargetEffect {
        let domain = domain.to_ascii_lowercase();
        let mut destination = destination;
        destination.require_tls |= self
            .route(&domain)
            .is_some_and(|current| current.require_tls);
        self.overrides.insert(domain.clone(), destination);
        let selector = Selector::Domain(domain);
        let released = if release {
            self.release(&selector, now)
        } else {
            Effect::default()
        };
        let flushed = self.flush(&selector, now);
        let mut changed = released.changed;
        for id in flushed.changed {
            if !changed.contains(&id) {
                changed.push(id);
            }
        }
        let held = self
            .held_waiting()
            .into_iter()
            .filter(|(id, recipients)| {
                let envelope = &self.messages[id].envelope;
                recipients
                    .iter()
                    .zip(&envelope.recipients)
                    .any(|(held, recipient)| {
                        *held == Some(true) && selects(&selector, id, &recipient.domain)
                    })
            })
            .map(|(id, _)| id)
            .collect();
        RetargetEffect {
            due: flushed.ids,
            released: released.ids,
            held,
            changed,
        }
    }

    /// Per message, per recipient: None when the recipient no longer
    /// waits (delivered or failed), else whether it is held.
    fn held_waiting(&self) -> BTreeMap<String, Vec<Option<bool>>> {
        self.messages
            .values()
            .map(|spooled| {
                let recipients = spooled
                    .statuses
                    .iter()
                    .zip(&spooled.envelope.recipients)
                    .map(|(status, recipient)| {
                        waiting(status.state)
                            .then(|| spooled.held || self.held_domains.contains(&recipient.domain))
                    })
                    .collect();
                (spooled.id.clone(), recipients)
            })
            .collect()
    }

    /// Deletes the selected messages (no DSN); returns their ids.
    pub fn delete(&mut self, selector: &Selector) -> Vec<String> {
        let ids: Vec<String> = self
            .messages
            .values()
            .filter(|spooled| {
                spooled
                    .envelope
                    .recipients
                    .iter()
                    .any(|recipient| selects(selector, &spooled.id, &recipient.domain))
            })
            .map(|spooled| spooled.id.clone())
            .collect();
        for id in &ids {
            self.messages.remove(id);
        }
        ids
    }

    /// The queue listing at `now`, in arrival order.
    pub fn list(&self, now: SystemTime) -> Vec<Entry> {
        self.messages
            .values()
            .map(|spooled| Entry {
                id: spooled.id.clone(),
                sender: spooled.envelope.sender.clone(),
                age: age(spooled, now),
                size: spooled.size,
                held: spooled.held
                    || spooled
                        .envelope
                        .recipients
                        .iter()
                        .any(|recipient| self.held_domains.contains(&recipient.domain)),
                recipients: spooled
                    .envelope
                    .recipients
                    .iter()
                    .zip(&spooled.statuses)
                    .map(|(recipient, status)| {
                        (
                            recipient.address.clone(),
                            status.state,
                            status.attempts,
                            status.last_error.clone(),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    /// Sets the held flag of the selected messages; returns changed ids.
    fn set_held(&mut self, selector: &Selector, held: bool) -> Vec<String> {
        let mut changed = Vec::new();
        for spooled in self.messages.values_mut() {
            let selected = spooled
                .envelope
                .recipients
                .iter()
                .any(|recipient| selects(selector, &spooled.id, &recipient.domain));
            if selected && spooled.held != held {
                spooled.held = held;
                changed.push(spooled.id.clone());
            }
        }
        changed
    }
}

/// Whether a recipient in `state` still waits for delivery.
fn waiting(state: DeliveryState) -> bool {
    matches!(state, DeliveryState::Scheduled | DeliveryState::Deferred)
}

/// Whether `selector` selects message `id` for a recipient in `domain`.
fn selects(selector: &Selector, id: &str, domain: &str) -> bool {
    match selector {
        Selector::All => true,
        Selector::Domain(selected) => selected.eq_ignore_ascii_case(domain),
        Selector::Message(selected) => selected == id,
    }
}

/// How long `spooled` has been queued at `now`.
fn age(spooled: &Spooled, now: SystemTime) -> Duration {
    now.duration_since(spooled.envelope.received)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Envelope, Notify, Recipient};
    use crate::spool::RecipientStatus;

    /// A fixed instant.
    fn t(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    /// A message `id` to these addresses, each deferred until t(600).
    fn message(id: &str, to: &[&str]) -> Spooled {
        Spooled {
            id: id.into(),
            envelope: Envelope {
                sender: "s@ext.test".into(),
                recipients: to
                    .iter()
                    .map(|address| Recipient {
                        address: address.to_string(),
                        domain: address.rsplit('@').next().unwrap().into(),
                        original: None,
                        notify: Notify::default(),
                    })
                    .collect(),
                envelope_id: None,
                dsn_return: None,
                eight_bit: false,
                smtputf8: false,
                helo: "c.test".into(),
                client: "192.0.2.1".parse().unwrap(),
                received: t(0),
            },
            statuses: to
                .iter()
                .map(|_| RecipientStatus {
                    state: DeliveryState::Deferred,
                    attempts: 1,
                    next_attempt: t(600),
                    last_error: Some("connect: refused".into()),
                })
                .collect(),
            held: false,
            warned: false,
            size: 10,
        }
    }

    /// Three messages for a.test (one also for b.test), one for b.test, one
    /// for a.test already delivered.
    fn queue() -> Queue {
        let routes = [
            ("a.test".to_string(), "10.0.0.1:25".parse().unwrap()),
            ("b.test".to_string(), "10.0.0.2:25".parse().unwrap()),
        ]
        .into();
        let mut queue = Queue::new(Schedule::default(), routes);
        queue.insert(message("1", &["x@a.test"]));
        queue.insert(message("2", &["y@a.test", "z@b.test"]));
        queue.insert(message("3", &["z@b.test"]));
        queue.insert(message("4", &["x@a.test"]));
        let mut done = message("5", &["x@a.test"]);
        done.statuses[0].state = DeliveryState::Delivered;
        queue.insert(done);
        queue
    }

    /// The ids due at `now` for `domain`.
    fn due(queue: &Queue, now: SystemTime) -> Vec<String> {
        let mut ids: Vec<String> = queue
            .due(now)
            .into_iter()
            .flat_map(|batch| batch.items.into_iter().map(|item| item.id))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Hold, retarget, release by domain: each reports what it did to the
    /// messages still waiting, never 0 for 3 nor 3 for 0 — the review saw
    /// "0 message(s) held" for a held domain and "199 due now" for held mail.
    #[test]
    fn hold_retarget_release_report_what_they_did() {
        let mut queue = queue();
        let domain = Selector::Domain("A.test".into());
        let held = queue.hold(&domain);
        assert_eq!(held.ids, ["1", "2", "4"], "waiting mail of a.test held");
        assert!(held.changed.is_empty(), "a domain hold is in the controls");
        assert_eq!(due(&queue, t(700)), ["2", "3"], "b.test still goes");
        assert!(queue.hold(&domain).ids.is_empty(), "held already");
        let retargeted = queue.retarget("a.test", "10.0.0.9:25".parse().unwrap(), t(10), false);
        assert!(retargeted.due.is_empty(), "{retargeted:?}");
        assert!(retargeted.released.is_empty());
        assert_eq!(retargeted.held, ["1", "2", "4"]);
        assert_eq!(
            due(&queue, t(10)),
            Vec::<String>::new(),
            "nothing of a.test is due"
        );
        let released = queue.release(&domain, t(20));
        assert_eq!(released.ids, ["1", "2", "4"], "released");
        assert_eq!(due(&queue, t(20)), ["1", "2", "4"], "and due at once");
        assert!(
            queue.release(&domain, t(21)).ids.is_empty(),
            "nothing held any more"
        );
        let flushed = queue.flush(&Selector::Domain("b.test".into()), t(30));
        assert_eq!(flushed.ids, ["2", "3"]);
        assert_eq!(flushed.changed, ["2", "3"]);
    }

    /// A retarget told to release releases and makes due in one step (a
    /// message held by itself too: the domain's mail is released); holds
    /// and releases of single messages report those messages.
    #[test]
    fn retarget_told_to_release_releases() {
        let mut queue = queue();
        queue.hold(&Selector::Domain("a.test".into()));
        queue.hold(&Selector::Message("4".into()));
        let retargeted = queue.retarget("a.test", "10.0.0.9:25".parse().unwrap(), t(10), true);
        assert_eq!(retargeted.released, ["1", "2", "4"]);
        assert_eq!(retargeted.due, ["1", "2", "4"]);
        assert!(retargeted.held.is_empty());
        assert_eq!(due(&queue, t(10)), ["1", "2", "4"]);
        assert_eq!(
            queue.route("a.test").map(|route| route.to_string()),
            Some("10.0.0.9:25".into())
        );
        let held = queue.hold(&Selector::All);
        assert_eq!(held.ids, ["1", "2", "3", "4"], "5 does not wait");
        let released = queue.release(&Selector::Message("4".into()), t(11));
        assert_eq!(released.ids, ["4"]);
        assert_eq!(due(&queue, t(11)), ["4"]);
    }
}
