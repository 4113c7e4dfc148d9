//! NOTIFY out (RFC 1996): on every change of a zone, each of its configured
//! secondaries gets a NOTIFY (signed with the zone's `notify_key` when set),
//! retried on [`RETRY_DELAYS`] until acknowledged.
//!
//! ```text
//!  Notifier::changed(zone) ──channel──▶ notifier thread:
//!     for each secondary: pending (fresh ID, try 0, due now)   (a newer change replaces an older one)
//!     loop: due? ─▶ send (sign) ─▶ due += RETRY_DELAYS[try] ─ tries left? ─ no ─▶ give up (warn)
//!           reply from the secondary, our ID, verified ─▶ acknowledged (done) │ refused (warn, done)
//! ```

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover_nameserver::primary::notify::{self, Reply, RETRY_DELAYS};
use cutover_nameserver::tsig::{sign_request, Key, KeyRing, ResponseVerifier};
use cutover_zone::Name;

use super::clock::wall_clock;
use crate::config::Config;

/// How often the thread looks at its socket and its schedule.
const TICK: Duration = Duration::from_millis(50);

/// Where to send a zone's NOTIFYs.
#[derive(Clone, Debug)]
struct Targets {
    /// The secondaries.
    secondaries: Vec<SocketAddr>,
    /// The key to sign with.
    key: Option<Arc<Key>>,
}

/// The sending side: cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct Notifier {
    /// Zones that changed, to the thread; `None` when no zone has secondaries.
    sender: Option<Sender<Name>>,
}

/// One NOTIFY waiting for its acknowledgement.
struct Pending {
    /// The message ID.
    id: u16,
    /// Tries so far.
    tries: usize,
    /// When to (re)send.
    due: Instant,
    /// Verifies a signed reply.
    verifier: Option<ResponseVerifier>,
}

impl Notifier {
    /// Starts the notifier thread for the zones of `config` that list
    /// secondaries; with none, a notifier that does nothing.
    pub fn start(config: &Config, keys: &KeyRing) -> anyhow::Result<Notifier> {
        let mut targets = BTreeMap::new();
        for zone in config.zone.iter().filter(|z| !z.notify.is_empty()) {
            let key = match &zone.notify_key {
                Some(name) => Some(Arc::clone(keys.get(name).ok_or_else(|| {
                    anyhow::anyhow!("zone {}: notify_key {name} is not a [[key]]", zone.name)
                })?)),
                None => None,
            };
            let entry = Targets {
                secondaries: zone.notify.clone(),
                key,
            };
            targets.insert(zone.name.clone(), entry);
        }
        if targets.is_empty() {
            return Ok(Notifier { sender: None });
        }
        let v4 = UdpSocket::bind("0.0.0.0:0")?;
        let v6 = UdpSocket::bind("[::]:0").ok();
        for socket in std::iter::once(&v4).chain(v6.as_ref()) {
            socket.set_nonblocking(true)?;
        }
        let (sender, changes) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("cutover-notify".into())
            .spawn(move || run(changes, targets, v4, v6))?;
        Ok(Notifier {
            sender: Some(sender),
        })
    }

    /// Tells the secondaries of `zone` that it changed.
    pub fn changed(&self, zone: &Name) {
        if let Some(sender) = &self.sender {
            // Err only when the thread is gone, i.e. the process is ending.
            let _ = sender.send(zone.clone());
        }
    }
}

/// The notifier thread: until every sender is gone.
fn run(
    changes: Receiver<Name>,
    targets: BTreeMap<Name, Targets>,
    v4: UdpSocket,
    v6: Option<UdpSocket>,
) {
    let mut pending: BTreeMap<(Name, SocketAddr), Pending> = BTreeMap::new();
    let mut buf = vec![0u8; 65535];
    loop {
        match changes.recv_timeout(TICK) {
            Ok(zone) => {
                let Some(target) = targets.get(&zone) else {
                    continue;
                };
                for &secondary in &target.secondaries {
                    let entry = Pending {
                        id: random_id(),
                        tries: 0,
                        due: Instant::now(),
                        verifier: None,
                    };
                    pending.insert((zone.clone(), secondary), entry);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Replies.
        for socket in std::iter::once(&v4).chain(v6.as_ref()) {
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                let answer = &buf[..len];
                let Some(((zone, _), entry)) = pending
                    .iter_mut()
                    .find(|((_, to), entry)| *to == from && entry.id == id_of(answer))
                else {
                    continue;
                };
                let wire = zone_wire(zone);
                let reply = notify::reply(answer, entry.id, &wire);
                if reply == Reply::Unrelated {
                    continue;
                }
                if let Some(verifier) = entry.verifier.as_mut() {
                    if let Err(error) = verifier.verify(answer, wall_clock()) {
                        tracing::warn!(zone = %zone, %from, "NOTIFY reply does not verify: {error}");
                        continue;
                    }
                }
                let key = (zone.clone(), from);
                match reply {
                    Reply::Acknowledged => {
                        tracing::info!(zone = %zone, secondary = %from, "NOTIFY acknowledged")
                    }
                    Reply::Refused(code) => {
                        tracing::warn!(zone = %zone, secondary = %from, rcode = code, "NOTIFY refused")
                    }
                    Reply::Unrelated => {}
                }
                pending.remove(&key);
            }
        }
        // Sends and retries.
        let now = Instant::now();
        let mut done = Vec::new();
        for ((zone, to), entry) in pending.iter_mut().filter(|(_, e)| e.due <= now) {
            if entry.tries == RETRY_DELAYS.len() {
                tracing::warn!(zone = %zone, secondary = %to, tries = entry.tries, "NOTIFY not acknowledged; gave up");
                done.push((zone.clone(), *to));
                continue;
            }
            let key = targets.get(zone).and_then(|t| t.key.clone());
            let mut message = notify::message(&zone_wire(zone), entry.id, None);
            if let Some(key) = key {
                match sign_request(&mut message, key, wall_clock()) {
                    Ok(verifier) => entry.verifier = Some(verifier),
                    Err(error) => {
                        tracing::error!(zone = %zone, "cannot sign NOTIFY: {error}");
                        done.push((zone.clone(), *to));
                        continue;
                    }
                }
            }
            let socket = match to {
                SocketAddr::V4(_) => Some(&v4),
                SocketAddr::V6(_) => v6.as_ref(),
            };
            match socket.map(|s| s.send_to(&message, to)) {
                Some(Ok(_)) => tracing::debug!(zone = %zone, secondary = %to, "NOTIFY sent"),
                Some(Err(error)) => {
                    tracing::debug!(zone = %zone, secondary = %to, "NOTIFY not sent: {error}")
                }
                None => tracing::warn!(zone = %zone, secondary = %to, "no IPv6 socket for NOTIFY"),
            }
            entry.due = now + RETRY_DELAYS[entry.tries];
            entry.tries += 1;
        }
        for key in done {
            pending.remove(&key);
        }
    }
}

/// The ID of a message (0 when it is shorter than two bytes).
fn id_of(message: &[u8]) -> u16 {
    match message {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// A zone's lowercase wire name.
fn zone_wire(zone: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(zone.len() + 2);
    for label in zone.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// A random message ID.
fn random_id() -> u16 {
    let mut bytes = [0u8; 2];
    // A predictable ID only weakens spoofing resistance; never fatal.
    let _ = getrandom::fill(&mut bytes);
    u16::from_be_bytes(bytes)
}
