//! The primary's wall clock (TSIG times): a leaf the primary and its
//! notifier both read.

/// The wall clock in seconds since the epoch.
pub fn wall_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
