//! What the rest of serve asks of the secondary side, without depending on
//! its thread: which zones are secondaries here, where their primaries
//! are, and a NOTIFY for one of them (checked: from a primary's address,
//! signed with the zone's `primary_key` when it has one).
//!
//! ```text
//!  Config [[zone]] primary, primary_key ──Secondaries::of──▶ Secondaries (cheap to clone)
//!  primary::notify_in ──Secondaries::notified(zone, client, key)──▶ Accepted ──channel──▶ refresh thread
//!                                                               └─▶ NotFromPrimary │ WrongKey (REFUSED)
//!  primary::update ──Secondaries::upstream(zone)?──▶ REFUSED (the zone is read-only here)
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use cutover_nameserver::tsig::{Key, KeyRing};
use cutover_zone::Name;

use crate::config::Config;

/// Where one secondary zone comes from.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// Its primaries, tried in order.
    pub primaries: Vec<SocketAddr>,
    /// The key transfers are signed with and NOTIFYs must carry.
    pub key: Option<Arc<Key>>,
    /// The shortest refresh and retry interval.
    pub refresh_min: Duration,
}

/// The secondary zones and the way to the refresh thread.
#[derive(Clone, Debug, Default)]
pub struct Secondaries {
    /// The zones, by origin.
    zones: Arc<BTreeMap<Name, Upstream>>,
    /// NOTIFYs accepted, to the refresh thread; `None` when it is not running.
    sender: Option<Sender<Name>>,
}

/// What became of a NOTIFY for a secondary zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyVerdict {
    /// From a primary, signed as required: a refresh is due now.
    Accepted,
    /// From an address that is none of the zone's primaries.
    NotFromPrimary,
    /// Not signed with the zone's `primary_key`.
    WrongKey,
}

impl Secondaries {
    /// The secondary zones of `config` (those with a `primary`), their keys
    /// from `keys`, and the receiving end of their NOTIFYs (`None` when
    /// there are none).
    pub fn of(
        config: &Config,
        keys: &KeyRing,
    ) -> anyhow::Result<(Secondaries, Option<Receiver<Name>>)> {
        let mut zones = BTreeMap::new();
        for zone in config.zone.iter().filter(|z| z.is_secondary()) {
            let key = match zone.primary_key_name() {
                Some(name) => Some(Arc::clone(keys.get(&name).ok_or_else(|| {
                    anyhow::anyhow!("zone {}: primary_key {name} is not a [[key]]", zone.name)
                })?)),
                None => None,
            };
            let upstream = Upstream {
                primaries: zone.primary.clone(),
                key,
                refresh_min: zone.refresh_min,
            };
            zones.insert(zone.name.clone(), upstream);
        }
        if zones.is_empty() {
            return Ok((Secondaries::default(), None));
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        let secondaries = Secondaries {
            zones: Arc::new(zones),
            sender: Some(sender),
        };
        Ok((secondaries, Some(receiver)))
    }

    /// The secondary zones.
    pub fn zones(&self) -> &BTreeMap<Name, Upstream> {
        &self.zones
    }

    /// Where `origin` comes from, when it is a secondary zone here.
    pub fn upstream(&self, origin: &Name) -> Option<&Upstream> {
        self.zones.get(origin)
    }

    /// A NOTIFY for `origin` from `client`, signed with `key` (verified):
    /// `None` when `origin` is not a secondary zone here; when it is
    /// accepted, the refresh thread is told.
    pub fn notified(
        &self,
        origin: &Name,
        client: SocketAddr,
        key: Option<&Name>,
    ) -> Option<NotifyVerdict> {
        let upstream = self.zones.get(origin)?;
        if !upstream.primaries.iter().any(|p| p.ip() == client.ip()) {
            return Some(NotifyVerdict::NotFromPrimary);
        }
        if let Some(wanted) = &upstream.key {
            if key != Some(&wanted.name) {
                return Some(NotifyVerdict::WrongKey);
            }
        }
        if let Some(sender) = &self.sender {
            // Err only when the thread is gone, i.e. serve is stopping.
            let _ = sender.send(origin.clone());
        }
        Some(NotifyVerdict::Accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_is_taken_only_from_a_primary_signed_with_its_key() {
        let text = "[[key]]\nname = \"xfr.\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n\
                    [[key]]\nname = \"other.\"\nsecret = \"c2VjcmV0c2VjcmV0c2VjcmV0\"\n\
                    [[zone]]\nname = \"a.\"\nprimary = [\"192.0.2.1:53\", \"192.0.2.2:5300\"]\nprimary_key = \"xfr.\"\n\
                    [[zone]]\nname = \"b.\"\n";
        let config = Config::parse(text, "test").unwrap();
        let keys = crate::primary::key_ring(&config).unwrap();
        let (secondaries, notifies) = Secondaries::of(&config, &keys).unwrap();
        let notifies = notifies.expect("a secondary zone: a channel");
        let (a, b): (Name, Name) = ("a.".parse().unwrap(), "b.".parse().unwrap());
        let (xfr, other): (Name, Name) = ("xfr.".parse().unwrap(), "other.".parse().unwrap());
        let from = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 40000);
        assert!(secondaries.upstream(&a).is_some() && secondaries.upstream(&b).is_none());
        assert_eq!(
            secondaries.notified(&b, from("192.0.2.1"), Some(&xfr)),
            None,
            "not a secondary zone"
        );
        assert_eq!(
            secondaries.notified(&a, from("192.0.2.9"), Some(&xfr)),
            Some(NotifyVerdict::NotFromPrimary)
        );
        assert_eq!(
            secondaries.notified(&a, from("192.0.2.1"), None),
            Some(NotifyVerdict::WrongKey),
            "unsigned"
        );
        assert_eq!(
            secondaries.notified(&a, from("192.0.2.1"), Some(&other)),
            Some(NotifyVerdict::WrongKey)
        );
        assert!(
            notifies.try_recv().is_err(),
            "nothing refused reached the thread"
        );
        assert_eq!(
            secondaries.notified(&a, from("192.0.2.2"), Some(&xfr)),
            Some(NotifyVerdict::Accepted),
            "the second primary, any source port"
        );
        assert_eq!(notifies.try_recv().unwrap(), a);
        let (none, channel) = Secondaries::of(&Config::parse("", "test").unwrap(), &keys).unwrap();
        assert!(none.zones().is_empty() && channel.is_none());
    }
}
