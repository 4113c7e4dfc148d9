//! The RFC 2136 provider: any standard primary (Knot, BIND, PowerDNS with
//! its DNS UPDATE, Windows DNS…) through signed UPDATE messages.
//!
//! ```text
//!  read  ──AXFR + TSIG (cutover_nameserver::transfer::fetch_axfr)──▶ Zone
//!  apply ──query each changed RRset──▶ condition::pending ──▶ nothing left: done (a redo)
//!        │                                              └──▶ conflict: stop
//!        └─▶ UPDATE: prerequisites = every `expect`, updates = every `set`
//!              ──TSIG sign──▶ UDP (TCP when long or truncated) ──▶ verify the signed answer
//!              NOERROR ──▶ Applied (serial read back)
//!              NXRRSET / YXRRSET ──▶ the RRsets read again ──▶ Conflict naming the record
//! ```
//!
//! The prerequisites make the server itself refuse the whole UPDATE when
//! any RRset no longer holds what the plan saw, so nothing someone else
//! wrote is overwritten even if they write between our read and our
//! UPDATE. RFC 2136 prerequisites compare data, not TTLs: the read before
//! the UPDATE catches a TTL changed by someone else, but only up to that
//! read.
//!
//! Reads of single RRsets are DNS queries to the primary (RD=0), so a name
//! that only a wildcard covers reads as the wildcard's data; changes to
//! such names should expect what the wildcard gives. An accepted UPDATE is
//! read back, because servers answer NOERROR while silently ignoring some
//! records (a CNAME beside other data, RFC 2136 §3.4.2.2): that is refused
//! by name rather than reported as done.

mod message;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cutover_nameserver::transfer::{fetch_axfr, Limits, TransferError};
use cutover_nameserver::tsig::{sign_request, Key, KeyConfig, ResponseError};
use cutover_zone::{Name, RecordType, Rrset, Zone};

use crate::condition::{self, same};
use crate::query::{self, exchange};
use crate::{Applied, Change, Provider, ProviderError};

pub use message::update_message;

/// RCODE NOERROR.
const NOERROR: u8 = 0;
/// RCODE FORMERR.
const FORMERR: u8 = 1;
/// RCODE NOTIMP.
const NOTIMP: u8 = 4;
/// RCODE REFUSED.
const REFUSED: u8 = 5;
/// RCODE YXDOMAIN (a name that should not exist does).
const YXDOMAIN: u8 = 6;
/// RCODE YXRRSET (an RRset that should not exist does).
const YXRRSET: u8 = 7;
/// RCODE NXRRSET (an RRset that should exist does not, or holds other data).
const NXRRSET: u8 = 8;
/// RCODE NOTAUTH (not authoritative for the zone, or the signature refused).
const NOTAUTH: u8 = 9;
/// RCODE NOTZONE (a record outside the zone).
const NOTZONE: u8 = 10;

/// Where the server is and how to sign, as a config file gives it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Config {
    /// The primary's address and port, e.g. `192.0.2.53:53`.
    pub server: SocketAddr,
    /// The TSIG key the server accepts updates and transfers with.
    pub key: KeyConfig,
    /// How long to wait for each answer, in milliseconds (default 3000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A zone on a server that takes RFC 2136 UPDATE and AXFR with TSIG.
pub struct Rfc2136Provider {
    /// The primary.
    server: SocketAddr,
    /// The key every message is signed with.
    key: Arc<Key>,
    /// How long to wait for each answer.
    timeout: Duration,
}

impl Rfc2136Provider {
    /// A provider for `server`, signing with `key`.
    pub fn new(server: SocketAddr, key: Key, timeout: Duration) -> Rfc2136Provider {
        Rfc2136Provider {
            server,
            key: Arc::new(key),
            timeout,
        }
    }

    /// A provider from its config; a bad key is refused.
    pub fn from_config(config: &Rfc2136Config) -> Result<Rfc2136Provider, ProviderError> {
        let key = Key::from_config(&config.key)
            .map_err(|e| ProviderError::Refused(format!("key {}: {e}", config.key.name)))?;
        let timeout = Duration::from_millis(config.timeout_ms.unwrap_or(3000));
        Ok(Rfc2136Provider::new(config.server, key, timeout))
    }

    /// Sends one signed UPDATE and returns the RCODE of its verified answer.
    fn send_update(&self, zone: &Name, changes: &[&Change]) -> Result<u8, ProviderError> {
        let id = fastrand::u16(..);
        let mut message = update_message(zone, changes, id);
        let mut verifier = sign_request(&mut message, self.key.clone(), unix_now())
            .map_err(|e| ProviderError::Refused(format!("cannot sign the UPDATE: {e}")))?;
        let reply = exchange(self.server, &message, self.timeout)?;
        if reply.len() < 12 || reply[..2] != id.to_be_bytes() || reply[2] & 0x80 == 0 {
            return Err(ProviderError::Unreachable(format!(
                "{}: the answer to the UPDATE is not a response to it",
                self.server
            )));
        }
        if let Err(e) = verifier.verify(&reply, unix_now()) {
            return Err(self.tsig_error(e));
        }
        Ok(reply[3] & 0x0f)
    }

    /// The provider error for an answer whose signature is refused.
    fn tsig_error(&self, e: ResponseError) -> ProviderError {
        let why = match &e {
            ResponseError::Refused(16) => "BADSIG: the server has another secret for it".into(),
            ResponseError::Refused(17) => "BADKEY: the server does not know it".into(),
            ResponseError::Refused(18) | ResponseError::ServerBadTime { .. } => {
                "BADTIME: the clocks differ by more than the fudge".into()
            }
            other => other.to_string(),
        };
        ProviderError::Refused(format!(
            "{} refused the TSIG key {}: {why}",
            self.server, self.key.name
        ))
    }

    /// Reads back what an accepted UPDATE wrote: a server may answer
    /// NOERROR and still ignore a record (RFC 2136 §3.4.2.2: a CNAME beside
    /// other data, or other data beside a CNAME), which is refused here by name.
    fn check_landed(&self, pending: &[&Change]) -> Result<(), ProviderError> {
        for change in pending {
            let now = query::read_rrset(self.server, &change.name, change.rtype, self.timeout)?;
            if !same(now.as_ref(), change.set.as_ref()) {
                return Err(ProviderError::Refused(format!(
                    "{} answered NOERROR but {} {} reads back as {}, not {}: the server ignored \
                     part of the UPDATE (RFC 2136 §3.4.2.2, e.g. a CNAME beside other data); \
                     the rest of the change set was applied",
                    self.server,
                    change.name,
                    change.rtype,
                    condition::rrset_text(&change.name, now.as_ref()),
                    condition::rrset_text(&change.name, change.set.as_ref()),
                )));
            }
        }
        Ok(())
    }

    /// The current RRsets of the changes, read from the server.
    fn current(
        &self,
        zone: &Name,
        changes: &[Change],
    ) -> Result<Vec<Option<Rrset>>, ProviderError> {
        changes
            .iter()
            .map(|c| query::read_zone_rrset(self.server, zone, &c.name, c.rtype, self.timeout))
            .collect()
    }
}

impl Provider for Rfc2136Provider {
    fn describe(&self) -> String {
        format!("RFC 2136 at {} with key {}", self.server, self.key.name)
    }

    fn read(&self, zone: &Name) -> Result<Zone, ProviderError> {
        let limits = Limits {
            max_records: 2_000_000,
            max_bytes: 1 << 30,
            idle: self.timeout,
            total: self.timeout * 20,
        };
        match fetch_axfr(self.server, zone, Some(self.key.clone()), limits) {
            Ok(transfer) => Ok(transfer.zone),
            // An unsigned NOTAUTH without a TSIG error: the server does not serve the zone.
            Err(TransferError::Refused { rcode, .. })
                if rcode == "NOTAUTH"
                    || rcode == "NOTAUTH (answered without a TSIG)"
                    || rcode.starts_with("NXDOMAIN") =>
            {
                Err(ProviderError::UnknownZone(zone.clone()))
            }
            Err(e @ (TransferError::Io { .. } | TransferError::Timeout { .. })) => {
                Err(ProviderError::Unreachable(e.to_string()))
            }
            Err(e) => Err(ProviderError::Refused(e.to_string())),
        }
    }

    fn read_rrsets(
        &self,
        zone: &Name,
        keys: &[(Name, RecordType)],
    ) -> Result<Vec<Option<Rrset>>, ProviderError> {
        keys.iter()
            .map(|(name, rtype)| {
                query::read_zone_rrset(self.server, zone, name, *rtype, self.timeout)
            })
            .collect()
    }

    fn apply(&self, zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError> {
        condition::well_formed(zone, changes)?;
        let found = self.current(zone, changes)?;
        let pending = condition::pending(changes, &found)?;
        if pending.is_empty() {
            return Ok(Applied {
                serial: query::serial(self.server, zone, self.timeout),
            });
        }
        self.update_pending(zone, changes, &pending)
    }
}

impl Rfc2136Provider {
    /// Sends the UPDATE for `changes` without reading first: the server's
    /// prerequisites alone keep what someone else wrote (what [`Provider::apply`]
    /// relies on when a write lands between its read and its UPDATE).
    pub fn update(&self, zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError> {
        condition::well_formed(zone, changes)?;
        let all: Vec<&Change> = changes.iter().collect();
        self.update_pending(zone, changes, &all)
    }

    /// Sends the UPDATE for `pending` (a part of `changes`) and reads its answer.
    fn update_pending(
        &self,
        zone: &Name,
        changes: &[Change],
        pending: &[&Change],
    ) -> Result<Applied, ProviderError> {
        match self.send_update(zone, pending)? {
            NOERROR => {
                self.check_landed(pending)?;
                Ok(Applied {
                    serial: query::serial(self.server, zone, self.timeout),
                })
            }
            NXRRSET | YXRRSET | YXDOMAIN => {
                // Someone wrote between our read and the UPDATE: say who lost what.
                let now = self.current(zone, changes)?;
                let pending = condition::pending(changes, &now)?;
                let Some(first) = pending.first() else {
                    // Every RRset now holds what we wanted: someone did our work.
                    return Ok(Applied {
                        serial: query::serial(self.server, zone, self.timeout),
                    });
                };
                let at = changes.iter().position(|c| c == *first).unwrap_or(0);
                let seen = now[at].as_ref();
                if same(seen, first.expect.as_ref()) {
                    // The data we see matches, but the server's did not a moment ago.
                    return Err(ProviderError::Conflict {
                        name: first.name.clone(),
                        rtype: first.rtype,
                        expected: condition::rrset_text(&first.name, first.expect.as_ref()),
                        found: "changed while the UPDATE was in flight".into(),
                    });
                }
                Err(condition::conflict(first, seen))
            }
            NOTAUTH => Err(ProviderError::UnknownZone(zone.clone())),
            NOTZONE => Err(ProviderError::Refused(format!(
                "{}: a record of the change set is outside {zone} (NOTZONE)",
                self.server
            ))),
            REFUSED => Err(ProviderError::Refused(format!(
                "{} refused the UPDATE of {zone} (REFUSED: is key {} allowed to update it?)",
                self.server, self.key.name
            ))),
            rcode @ (FORMERR | NOTIMP) => Err(ProviderError::Refused(format!(
                "{} answered the UPDATE of {zone} with {}",
                self.server,
                if rcode == FORMERR {
                    "FORMERR"
                } else {
                    "NOTIMP"
                }
            ))),
            rcode => Err(ProviderError::Unreachable(format!(
                "{} answered the UPDATE of {zone} with RCODE {rcode}",
                self.server
            ))),
        }
    }
}

/// The wall clock in seconds, for TSIG.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
