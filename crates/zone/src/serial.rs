//! SOA serial numbers and their arithmetic (RFC 1982, SERIAL_BITS = 32).

use std::cmp::Ordering;
use std::fmt;

/// A zone's SOA serial. Comparison follows RFC 1982: serials wrap, and two
/// serials exactly 2^31 apart are not comparable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Serial(pub u32);

impl Serial {
    /// Adds `n` (at most 2^31 - 1, as RFC 1982 §3.1 allows) with wrap-around.
    pub fn plus(self, n: u32) -> Serial {
        debug_assert!(n <= 0x7fff_ffff, "RFC 1982 forbids adding 2^31 or more");
        Serial(self.0.wrapping_add(n & 0x7fff_ffff))
    }

    /// The serial to use for the next version of a zone.
    ///
    /// With `unixtime` the date-based form is used when it is newer (so
    /// serials stay meaningful to humans), otherwise the serial is incremented;
    /// the result is always greater than `self` in RFC 1982 terms.
    pub fn next(self, unixtime: Option<u32>) -> Serial {
        match unixtime {
            Some(t) if Serial(t).is_newer_than(self) && t.wrapping_sub(self.0) < 0x7fff_ffff => {
                Serial(t)
            }
            _ => self.plus(1),
        }
    }

    /// True when `self` is newer than `other` (RFC 1982 §3.2 `s1 > s2`).
    pub fn is_newer_than(self, other: Serial) -> bool {
        self.rfc1982_cmp(other) == Some(Ordering::Greater)
    }

    /// The RFC 1982 comparison; `None` when the two are 2^31 apart.
    pub fn rfc1982_cmp(self, other: Serial) -> Option<Ordering> {
        let (a, b) = (self.0, other.0);
        if a == b {
            return Some(Ordering::Equal);
        }
        let d = a.wrapping_sub(b);
        if d == 0x8000_0000 {
            None
        } else if d < 0x8000_0000 {
            Some(Ordering::Greater)
        } else {
            Some(Ordering::Less)
        }
    }
}

impl PartialOrd for Serial {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.rfc1982_cmp(*other)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around_per_rfc1982() {
        assert!(Serial(1).is_newer_than(Serial(u32::MAX)));
        assert!(Serial(0x7fff_ffff).is_newer_than(Serial(0)));
        assert!(!Serial(0x8000_0000).is_newer_than(Serial(0)));
        assert_eq!(Serial(0x8000_0000).partial_cmp(&Serial(0)), None);
        assert!(Serial(u32::MAX).plus(2) == Serial(1));
    }

    #[test]
    fn next_prefers_unixtime_when_newer() {
        assert_eq!(Serial(5).next(Some(1_700_000_000)), Serial(1_700_000_000));
        assert_eq!(
            Serial(1_700_000_000).next(Some(1_600_000_000)),
            Serial(1_700_000_001)
        );
        assert_eq!(Serial(2024010101).next(None), Serial(2024010102));
        assert_eq!(Serial(u32::MAX).next(None), Serial(0));
        assert!(Serial(0).is_newer_than(Serial(u32::MAX)));
    }
}
