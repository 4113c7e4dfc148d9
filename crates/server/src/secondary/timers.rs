//! A secondary zone's clock (RFC 1034 §4.3.5, RFC 1996): check the
//! primary every SOA refresh, every SOA retry after a failure, at once on
//! a NOTIFY; stop answering the zone once SOA expire has passed without a
//! successful check, until one succeeds. Pure: the time is passed in.
//!
//! ```text
//!  start ──▶ check now; expires at last success + expire (a zone is held; the last
//!            success is stored, so a restart does not extend it) │ never (none held yet)
//!  success ──▶ next = now + max(refresh, min); expires at now + expire; expired → served again
//!  failure ──▶ next = now + max(retry, min)
//!  NOTIFY ──▶ next = now
//!  now ≥ expires at ──▶ expired (once)
//! ```

use std::time::{Duration, Instant};

use cutover_zone::{RecordType, Zone};

/// How long a secondary waits between checks while it holds no zone.
pub const WITHOUT_ZONE_RETRY: Duration = Duration::from_secs(5);

/// The SOA's timers of the version held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoaTimers {
    /// Between checks.
    pub refresh: Duration,
    /// Between checks after a failure.
    pub retry: Duration,
    /// How long the zone is answered without a successful check.
    pub expire: Duration,
}

impl SoaTimers {
    /// The timers of `zone`'s SOA; `None` when it has none.
    pub fn of(zone: &Zone) -> Option<SoaTimers> {
        let set = zone.get(zone.origin(), RecordType::SOA)?;
        let soa = set.rdatas().first()?.as_soa()?;
        let seconds = |s: u32| Duration::from_secs(u64::from(s));
        Some(SoaTimers {
            refresh: seconds(soa.refresh),
            retry: seconds(soa.retry),
            expire: seconds(soa.expire),
        })
    }
}

/// One zone's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// When the primary is asked next.
    pub next_check: Instant,
    /// When the zone expires without a successful check; `None` while no
    /// zone is held.
    pub expires_at: Option<Instant>,
    /// Whether it expired (and is answered SERVFAIL).
    pub expired: bool,
    /// The shortest refresh and retry.
    min: Duration,
}

impl Timers {
    /// The schedule at start: a check now; when a version is held (`soa`),
    /// the expire timer runs from the last successful check, `since` ago
    /// (from now when none is known): a restart does not extend it.
    pub fn start(
        now: Instant,
        soa: Option<SoaTimers>,
        min: Duration,
        since: Option<Duration>,
    ) -> Timers {
        let since = since.unwrap_or_default();
        Timers {
            next_check: now,
            expires_at: soa.map(|soa| now + soa.expire.saturating_sub(since)),
            expired: false,
            min,
        }
    }

    /// A NOTIFY came: check now.
    pub fn notified(&mut self, now: Instant) {
        self.next_check = now;
    }

    /// A check succeeded (up to date, or a new version stored with `soa`):
    /// returns whether the zone had expired (and is to be served again).
    pub fn succeeded(&mut self, now: Instant, soa: SoaTimers) -> bool {
        self.next_check = now + soa.refresh.max(self.min);
        self.expires_at = Some(now + soa.expire);
        std::mem::replace(&mut self.expired, false)
    }

    /// A check failed; `soa` is the held version's, if any.
    pub fn failed(&mut self, now: Instant, soa: Option<SoaTimers>) {
        let retry = soa.map_or(WITHOUT_ZONE_RETRY.max(self.min), |soa| soa.retry);
        self.next_check = now + retry.max(self.min);
    }

    /// True once, when the zone has just expired.
    pub fn expire_due(&mut self, now: Instant) -> bool {
        let due = !self.expired && self.expires_at.is_some_and(|at| now >= at);
        if due {
            self.expired = true;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOA: SoaTimers = SoaTimers {
        refresh: Duration::from_secs(60),
        retry: Duration::from_secs(10),
        expire: Duration::from_secs(100),
    };

    #[test]
    fn refresh_retry_and_expire_follow_the_soa() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut timers = Timers::start(t0, Some(SOA), s(1), None);
        assert_eq!(timers.next_check, t0, "a check at once");
        assert!(!timers.succeeded(t0, SOA));
        assert_eq!(timers.next_check, t0 + s(60), "refresh");
        timers.failed(t0 + s(60), Some(SOA));
        assert_eq!(timers.next_check, t0 + s(70), "retry");
        timers.notified(t0 + s(65));
        assert_eq!(timers.next_check, t0 + s(65), "NOTIFY: now");
        assert!(!timers.expire_due(t0 + s(99)));
        assert!(
            timers.expire_due(t0 + s(100)),
            "expire after the last success"
        );
        assert!(!timers.expire_due(t0 + s(101)), "once");
        assert!(timers.succeeded(t0 + s(120), SOA), "served again");
        assert_eq!(timers.expires_at, Some(t0 + s(220)));
    }

    #[test]
    fn a_restart_counts_the_expire_from_the_last_success() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut timers = Timers::start(t0, Some(SOA), s(1), Some(s(70)));
        assert_eq!(
            timers.expires_at,
            Some(t0 + s(30)),
            "100 s expire, 70 s gone"
        );
        assert!(!timers.expire_due(t0 + s(29)));
        assert!(timers.expire_due(t0 + s(30)));
        let mut late = Timers::start(t0, Some(SOA), s(1), Some(s(500)));
        assert!(
            late.expire_due(t0),
            "past the expire already: expired at once"
        );
    }

    #[test]
    fn the_minimum_bounds_refresh_and_retry_and_no_zone_never_expires() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let tiny = SoaTimers {
            refresh: s(0),
            retry: s(0),
            expire: s(3),
        };
        let mut timers = Timers::start(t0, None, s(2), None);
        assert!(
            !timers.expire_due(t0 + s(1000)),
            "nothing held: nothing expires"
        );
        timers.failed(t0, None);
        assert_eq!(timers.next_check, t0 + WITHOUT_ZONE_RETRY);
        timers.succeeded(t0, tiny);
        assert_eq!(timers.next_check, t0 + s(2));
        timers.failed(t0, Some(tiny));
        assert_eq!(timers.next_check, t0 + s(2));
    }
}
