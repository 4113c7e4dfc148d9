//! Response Rate Limiting (RRL) as BIND and Knot define it: identical
//! responses sent over UDP to one client prefix are limited to a rate, so the
//! server cannot be used to amplify a spoofed flood.
//!
//! ```text
//!  client address ──mask (/24, /56)──┐
//!  response bytes ──classify─────────┼─▶ key ──SipHash──▶ shard ─▶ bucket of WAYS entries
//!    answer:   (qname, qtype)        │                              (found, or the least
//!    NODATA:   (qname, qtype)        │                               recently used recycled)
//!    NXDOMAIN: (zone from the SOA)   │                                   │
//!    referral: (delegation point)    │            token bucket ◀─────────┘
//!    error:    (rcode, zone or root) ┘            balance ≥ 0 ─▶ Send
//!                                                 balance < 0 ─▶ every `slip`-th: Slip (TC=1), else Drop
//! ```
//!
//! Each entry is a token bucket counted in thousandths of a response: it
//! holds at most one second's worth of responses (`responses_per_second`),
//! refills at that rate, and goes down to minus `window` seconds' worth, so a
//! prefix that keeps flooding stays limited until it has been quiet for up to
//! `window`. Exempt prefixes are never limited, and TCP never reaches the
//! limiter (a TCP client has proven its address).
//!
//! The table is allocated once with a fixed number of entries; a query
//! allocates nothing. Time is passed in by the caller (a [`Duration`] since
//! any fixed epoch), so every decision is a pure function of the inputs.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Entries per bucket: a key lives in one bucket and may take any of its ways.
const WAYS: usize = 4;

/// The most shards (each its own lock) the table is split into.
const SHARDS_MAX: usize = 16;

/// Thousandths of a response: the unit of an entry's balance.
const UNIT: i64 = 1000;

/// The longest window accepted (BIND's limit).
pub const WINDOW_MAX: Duration = Duration::from_secs(3600);

/// The most entries the limiter's table may have: 16 Mi entries of 32
/// bytes, 512 MiB (Knot's default is 393,241).
pub const TABLE_SIZE_MAX: usize = 1 << 24;

/// The RCODE of NXDOMAIN.
const NXDOMAIN: u8 = 3;

/// The record type SOA.
const SOA: u16 = 6;

/// The record type NS.
const NS: u16 = 2;

/// How RRL is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrlConfig {
    /// Identical responses per second allowed to one client prefix (≥ 1).
    pub responses_per_second: u32,
    /// How far back a flood is remembered: a limited prefix stays limited
    /// until it has been quiet for up to this long (1 s to 1 h).
    pub window: Duration,
    /// Every `slip`-th limited response is sent truncated (TC=1, no records)
    /// so a real client retries over TCP; 0 never, 1 always.
    pub slip: u32,
    /// IPv4 clients are grouped by this many leading bits (0–32).
    pub ipv4_prefix: u8,
    /// IPv6 clients are grouped by this many leading bits (0–128).
    pub ipv6_prefix: u8,
    /// Clients never limited.
    pub exempt: Vec<Prefix>,
    /// Entries in the table (its memory is fixed at about 32 bytes each).
    pub table_size: usize,
}

/// An address prefix such as `192.0.2.0/24` or `2001:db8::/32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// The network address, host bits cleared.
    network: IpAddr,
    /// Leading bits that count.
    length: u8,
}

/// Why a prefix could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Not ADDRESS or ADDRESS/LENGTH.
    #[error("invalid prefix {0:?}: expected an address and a length, like \"192.0.2.0/24\"")]
    Syntax(String),
    /// The length is longer than the address.
    #[error("invalid prefix {text:?}: length {length} is more than {max} bits")]
    Length {
        /// The prefix as written.
        text: String,
        /// The length given.
        length: u8,
        /// The address's size in bits.
        max: u8,
    },
}

/// Why an [`RrlConfig`] cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RrlConfigError {
    /// A rate of 0 (to turn RRL off, configure none).
    #[error("responses_per_second must be at least 1 (leave RRL out to turn it off)")]
    ZeroRate,
    /// A window outside 1 s – 1 h.
    #[error("window {0:?} is outside 1s to 1h")]
    Window(Duration),
    /// An IPv4 prefix length over 32.
    #[error("ipv4_prefix {0} is more than 32 bits")]
    Ipv4Prefix(u8),
    /// An IPv6 prefix length over 128.
    #[error("ipv6_prefix {0} is more than 128 bits")]
    Ipv6Prefix(u8),
    /// A table of no entries.
    #[error("table_size must be at least 1")]
    EmptyTable,
    /// A table larger than [`TABLE_SIZE_MAX`].
    #[error("table_size {0} is more than {TABLE_SIZE_MAX} entries (512 MiB)")]
    TableTooLarge(usize),
}

/// What to do with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it as it is.
    Send,
    /// Send it truncated ([`slip`]).
    Slip,
    /// Send nothing.
    Drop,
}

/// How many UDP responses the limiter let through, slipped and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RrlCounters {
    /// Sent as answered (exempt clients included).
    pub answered: u64,
    /// Sent truncated.
    pub slipped: u64,
    /// Not sent.
    pub dropped: u64,
}

/// What kind of response a key stands for; part of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    /// NOERROR with records in the answer section: keyed by qname and qtype.
    Answer,
    /// NOERROR, no answer, SOA in authority: keyed by qname and qtype.
    Nodata,
    /// NXDOMAIN: keyed by the zone (the SOA owner), whatever the name.
    Nxdomain,
    /// NOERROR, no answer, NS in authority: keyed by the delegation point.
    Referral,
    /// Any other RCODE (FORMERR, SERVFAIL, REFUSED, NOTIMP…): keyed by the
    /// RCODE and the zone when the response names one, else by the RCODE.
    Error,
}

/// The limiter shared by the UDP workers: the table, split into shards each
/// behind its own lock, and the counters.
#[derive(Debug)]
pub struct Limiter {
    /// Responses per second.
    rate: i64,
    /// Window in milliseconds.
    window_ms: i64,
    /// The slip ratio.
    slip: u32,
    /// IPv4 grouping bits.
    ipv4_prefix: u8,
    /// IPv6 grouping bits.
    ipv6_prefix: u8,
    /// Never-limited prefixes.
    exempt: Vec<Prefix>,
    /// The table; a key's shard is picked by its fingerprint.
    shards: Box<[Mutex<Table>]>,
    /// Keyed SipHash, seeded at random so keys cannot be made to collide.
    hasher: std::collections::hash_map::RandomState,
    /// Responses sent as answered.
    answered: AtomicU64,
    /// Responses slipped.
    slipped: AtomicU64,
    /// Responses dropped.
    dropped: AtomicU64,
}

/// One shard: buckets of [`WAYS`] entries, allocated once.
#[derive(Debug)]
struct Table {
    /// `buckets * WAYS` entries.
    entries: Box<[Entry]>,
}

/// The state of one key.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    /// The key's fingerprint; 0 marks a free entry.
    fingerprint: u64,
    /// Tokens left, in thousandths of a response.
    balance: i64,
    /// When the balance was last brought up to date, in ms since the epoch.
    updated_ms: u64,
    /// Limited responses since the last slip.
    limited: u32,
}

/// The parts of a response that make its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Classified {
    /// The kind of response.
    class: ResponseClass,
    /// The RCODE (header bits only).
    rcode: u8,
    /// QTYPE for answers and NODATA, 0 otherwise.
    qtype: u16,
    /// Where the name the key uses starts in the message (`None`: the root).
    name_at: Option<usize>,
}

impl Default for RrlConfig {
    fn default() -> RrlConfig {
        RrlConfig {
            responses_per_second: 20,
            window: Duration::from_secs(15),
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: Vec::new(),
            table_size: 65536,
        }
    }
}

impl RrlConfig {
    /// Checks every value against its range.
    pub fn validate(&self) -> Result<(), RrlConfigError> {
        if self.responses_per_second == 0 {
            return Err(RrlConfigError::ZeroRate);
        }
        if self.window < Duration::from_secs(1) || self.window > WINDOW_MAX {
            return Err(RrlConfigError::Window(self.window));
        }
        if self.ipv4_prefix > 32 {
            return Err(RrlConfigError::Ipv4Prefix(self.ipv4_prefix));
        }
        if self.ipv6_prefix > 128 {
            return Err(RrlConfigError::Ipv6Prefix(self.ipv6_prefix));
        }
        if self.table_size == 0 {
            return Err(RrlConfigError::EmptyTable);
        }
        if self.table_size > TABLE_SIZE_MAX {
            return Err(RrlConfigError::TableTooLarge(self.table_size));
        }
        Ok(())
    }
}

impl Prefix {
    /// The prefix of `length` bits of `address` (host bits cleared);
    /// `None` when `length` is longer than the address.
    pub fn new(address: IpAddr, length: u8) -> Option<Prefix> {
        if length > max_length(address) {
            return None;
        }
        Some(Prefix {
            network: mask(address, length),
            length,
        })
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The number of leading bits that count.
    pub fn length(&self) -> u8 {
        self.length
    }

    /// True when `address` is in the prefix (never across address families).
    pub fn contains(&self, address: IpAddr) -> bool {
        address.is_ipv4() == self.network.is_ipv4() && mask(address, self.length) == self.network
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// Reads `ADDRESS/LENGTH`, or a bare address as a single host.
    fn from_str(text: &str) -> Result<Prefix, PrefixError> {
        let syntax = || PrefixError::Syntax(text.to_string());
        let (address, length) = match text.split_once('/') {
            Some((address, length)) => (address, Some(length)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| syntax())?;
        let max = max_length(address);
        let length = match length {
            Some(digits) => digits.parse::<u8>().map_err(|_| syntax())?,
            None => max,
        };
        Prefix::new(address, length).ok_or(PrefixError::Length {
            text: text.to_string(),
            length,
            max,
        })
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.length)
    }
}

impl Limiter {
    /// A limiter with its whole table allocated.
    pub fn new(config: &RrlConfig) -> Result<Limiter, RrlConfigError> {
        config.validate()?;
        let buckets = config.table_size.div_ceil(WAYS);
        // A power of two no larger than SHARDS_MAX that leaves each shard a bucket.
        let mut shards = 1;
        while shards * 2 <= SHARDS_MAX && shards * 2 <= buckets {
            shards *= 2;
        }
        let per_shard = buckets.div_ceil(shards);
        Ok(Limiter {
            rate: i64::from(config.responses_per_second),
            window_ms: i64::try_from(config.window.as_millis()).unwrap_or(i64::MAX),
            slip: config.slip,
            ipv4_prefix: config.ipv4_prefix,
            ipv6_prefix: config.ipv6_prefix,
            exempt: config.exempt.clone(),
            shards: (0..shards)
                .map(|_| Mutex::new(Table::new(per_shard)))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            answered: AtomicU64::new(0),
            slipped: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// Decides what happens to `response`, about to go to `client` over
    /// UDP at `now` (since any fixed epoch), and counts it.
    pub fn check(&self, client: IpAddr, response: &[u8], now: Duration) -> Verdict {
        let verdict = self.decide(client, response, now);
        let counter = match verdict {
            Verdict::Send => &self.answered,
            Verdict::Slip => &self.slipped,
            Verdict::Drop => &self.dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        verdict
    }

    /// The counters so far.
    pub fn counters(&self) -> RrlCounters {
        RrlCounters {
            answered: self.answered.load(Ordering::Relaxed),
            slipped: self.slipped.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    /// The total number of entries in the table (fixed at construction).
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.lock(0).entries.len()
    }

    /// [`check`](Limiter::check) without counting.
    fn decide(&self, client: IpAddr, response: &[u8], now: Duration) -> Verdict {
        if self.exempt.iter().any(|prefix| prefix.contains(client)) {
            return Verdict::Send;
        }
        let fingerprint = self.fingerprint(client, response);
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let shard = (fingerprint >> 48) as usize % self.shards.len();
        let mut table = self.lock(shard);
        let entry = table.entry(fingerprint, now_ms, self.rate * UNIT);
        self.charge(entry, now_ms)
    }

    /// The shard `index`, locked; a poisoned lock is taken over (an entry
    /// is a few integers, never left half-written in a way that matters).
    fn lock(&self, index: usize) -> std::sync::MutexGuard<'_, Table> {
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The key of a response to `client`, hashed; never 0.
    fn fingerprint(&self, client: IpAddr, response: &[u8]) -> u64 {
        let mut state = self.hasher.build_hasher();
        match client {
            IpAddr::V4(_) => mask(client, self.ipv4_prefix).hash(&mut state),
            IpAddr::V6(_) => mask(client, self.ipv6_prefix).hash(&mut state),
        }
        match classify(response) {
            Some(classified) => {
                classified.class.hash(&mut state);
                classified.rcode.hash(&mut state);
                classified.qtype.hash(&mut state);
                if let Some(at) = classified.name_at {
                    // Cannot fail: classify read this name already.
                    let _ = hash_name(response, at, &mut state);
                }
            }
            // Unreadable responses (FORMERR to garbage) share one key.
            None => ResponseClass::Error.hash(&mut state),
        }
        state.finish() | 1
    }

    /// Brings `entry`'s balance up to `now_ms`, takes one response from it
    /// and says whether that response may go.
    fn charge(&self, entry: &mut Entry, now_ms: u64) -> Verdict {
        let full = self.rate * UNIT;
        let floor = -self.window_ms.saturating_mul(self.rate);
        // Refilling from the floor to full never takes longer than this.
        let refill_max = u64::try_from(self.window_ms + 1000).unwrap_or(u64::MAX);
        let elapsed = now_ms.saturating_sub(entry.updated_ms).min(refill_max);
        entry.updated_ms = entry.updated_ms.max(now_ms);
        // elapsed ms × responses per second = thousandths of a response.
        entry.balance = (entry.balance + elapsed as i64 * self.rate).min(full);
        if entry.balance == full {
            // Back to a full bucket: the flood is over, slipping starts afresh.
            entry.limited = 0;
        }
        entry.balance = (entry.balance - UNIT).max(floor);
        if entry.balance >= 0 {
            return Verdict::Send;
        }
        if self.slip == 0 {
            return Verdict::Drop;
        }
        entry.limited += 1;
        if entry.limited >= self.slip {
            entry.limited = 0;
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

impl Table {
    /// A shard of `buckets` buckets, all entries free.
    fn new(buckets: usize) -> Table {
        Table {
            entries: vec![Entry::default(); buckets.max(1) * WAYS].into_boxed_slice(),
        }
    }

    /// The entry of `fingerprint`: found in its bucket, or the bucket's free
    /// or least recently updated entry, reset with a `full` balance.
    fn entry(&mut self, fingerprint: u64, now_ms: u64, full: i64) -> &mut Entry {
        let buckets = self.entries.len() / WAYS;
        let start = (fingerprint as usize % buckets) * WAYS;
        let bucket = &mut self.entries[start..start + WAYS];
        let way = match bucket.iter().position(|e| e.fingerprint == fingerprint) {
            Some(way) => way,
            None => {
                let oldest = (0..WAYS)
                    .min_by_key(|&w| (bucket[w].fingerprint != 0, bucket[w].updated_ms))
                    .unwrap_or(0);
                bucket[oldest] = Entry {
                    fingerprint,
                    balance: full,
                    updated_ms: now_ms,
                    limited: 0,
                };
                oldest
            }
        };
        &mut bucket[way]
    }
}

/// Rewrites `response` in place into a slipped one: header and question
/// only, TC=1, answer, authority and additional counts zero (RCODE and the
/// other flags kept). A response too short to have a header is left alone.
pub fn slip(response: &mut Vec<u8>) {
    if response.len() < 12 {
        return;
    }
    let end = question_end(response).unwrap_or(12);
    if end == 12 {
        response[4..6].fill(0);
    }
    response.truncate(end);
    response[2] |= 0x02;
    response[6..12].fill(0);
}

/// The number of leading bits of `address`'s family.
fn max_length(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `address` with all but its first `length` bits cleared.
fn mask(address: IpAddr, length: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX
                .checked_shl(32 - u32::from(length.min(32)))
                .unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX
                .checked_shl(128 - u32::from(length.min(128)))
                .unwrap_or(0);
            IpAddr::V6((bits & kept).into())
        }
    }
}

/// A big-endian u16 at `at`.
fn read_u16(msg: &[u8], at: usize) -> Option<u16> {
    let bytes = msg.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Where the question section ends, when the message has exactly one
/// question that can be read; `None` otherwise.
fn question_end(msg: &[u8]) -> Option<usize> {
    if read_u16(msg, 4)? != 1 {
        return None;
    }
    let end = name_end(msg, 12)? + 4;
    (end <= msg.len()).then_some(end)
}

/// Reads what the key of a response is made of; `None` when the response
/// cannot be read (it is then keyed as an unreadable error).
fn classify(msg: &[u8]) -> Option<Classified> {
    let rcode = msg.get(3)? & 0x0f;
    let ancount = read_u16(msg, 6)?;
    let nscount = read_u16(msg, 8)?;
    let question = question_end(msg);
    let qtype = match question {
        Some(end) => read_u16(msg, end - 4)?,
        None => 0,
    };
    let mut at = question.unwrap_or(12);
    for _ in 0..ancount {
        at = record_end(msg, at)?.0;
    }
    // The first SOA or NS owner in the authority section.
    let mut authority = None;
    for _ in 0..nscount {
        let (next, rtype) = record_end(msg, at)?;
        if authority.is_none() && (rtype == SOA || rtype == NS) {
            authority = Some((rtype, at));
        }
        at = next;
    }
    let (class, qtype, name_at) = match (rcode, ancount, authority) {
        (0, 1.., _) => (ResponseClass::Answer, qtype, question.map(|_| 12)),
        (0, 0, Some((NS, owner))) => (ResponseClass::Referral, 0, Some(owner)),
        (0, 0, _) => (ResponseClass::Nodata, qtype, question.map(|_| 12)),
        (NXDOMAIN, _, Some((SOA, owner))) => (ResponseClass::Nxdomain, 0, Some(owner)),
        (NXDOMAIN, _, _) => (ResponseClass::Nxdomain, 0, None),
        (_, _, Some((SOA, owner))) => (ResponseClass::Error, 0, Some(owner)),
        (_, _, _) => (ResponseClass::Error, 0, None),
    };
    Some(Classified {
        class,
        rcode,
        qtype,
        name_at,
    })
}

/// Skips the record at `at`; returns where the next starts and its type.
fn record_end(msg: &[u8], at: usize) -> Option<(usize, u16)> {
    let fixed = name_end(msg, at)?;
    let rtype = read_u16(msg, fixed)?;
    let rdlength = usize::from(read_u16(msg, fixed + 8)?);
    let end = fixed + 10 + rdlength;
    (end <= msg.len()).then_some((end, rtype))
}

/// Where the (possibly compressed) name at `at` ends in place.
fn name_end(msg: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    loop {
        let len = usize::from(*msg.get(i)?);
        match len & 0xc0 {
            0xc0 => return msg.get(i + 1).map(|_| i + 2),
            0 if len == 0 => return Some(i + 1),
            0 => i += 1 + len,
            _ => return None,
        }
        if i - at > 255 {
            return None;
        }
    }
}

/// Feeds the name at `at` (following compression pointers, lowercased) into
/// `state`; `None` when it cannot be read, loops, or exceeds 255 bytes.
fn hash_name(msg: &[u8], at: usize, state: &mut impl Hasher) -> Option<()> {
    let mut i = at;
    let mut length = 0usize;
    let mut jumps = 0;
    loop {
        let len = usize::from(*msg.get(i)?);
        match len & 0xc0 {
            0xc0 => {
                jumps += 1;
                // Each pointer must go backwards, and there are at most 127
                // labels to jump between, so this bounds the work.
                let target = (usize::from(len as u8 & 0x3f) << 8) | usize::from(*msg.get(i + 1)?);
                if target >= i || jumps > 128 {
                    return None;
                }
                i = target;
            }
            0 if len == 0 => {
                state.write_u8(0);
                return Some(());
            }
            0 => {
                length += 1 + len;
                if length > 255 {
                    return None;
                }
                state.write_u8(len as u8);
                for &byte in msg.get(i + 1..i + 1 + len)? {
                    state.write_u8(byte.to_ascii_lowercase());
                }
                i += 1 + len;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    use cutover_zone::rdata::Soa;
    use cutover_zone::{Name, Rdata, Record, RecordType, Zone};

    use crate::answer::{answer, Transport};
    use crate::catalog::Catalog;
    use crate::snapshot::ZoneSnapshot;

    /// The client most tests use.
    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

    /// example.test. with an A at www and mail, served by a catalog.
    fn catalog() -> Catalog {
        let origin = Name::from_ascii("example.test.").unwrap();
        let mut zone = Zone::new(origin.clone());
        let ns = Name::from_ascii("ns.example.test.").unwrap();
        let soa = Soa {
            mname: ns.clone(),
            rname: Name::from_ascii("hostmaster.example.test.").unwrap(),
            serial: 1,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 300,
        };
        let records = [
            (origin.clone(), Rdata::soa(&soa)),
            (origin.clone(), Rdata::name_only(RecordType::NS, &ns)),
            (ns, Rdata::a(Ipv4Addr::new(192, 0, 2, 53))),
            (
                Name::from_ascii("www.example.test.").unwrap(),
                Rdata::a(Ipv4Addr::new(192, 0, 2, 1)),
            ),
            (
                Name::from_ascii("mail.example.test.").unwrap(),
                Rdata::a(Ipv4Addr::new(192, 0, 2, 2)),
            ),
            (
                Name::from_ascii("sub.example.test.").unwrap(),
                Rdata::name_only(
                    RecordType::NS,
                    &Name::from_ascii("ns.elsewhere.test.").unwrap(),
                ),
            ),
        ];
        for (name, rdata) in records {
            zone.add(Record {
                name,
                ttl: 3600,
                rdata,
            })
            .unwrap();
        }
        Catalog::new(vec![Arc::new(ZoneSnapshot::build(&zone))])
    }

    /// A query for `name` (dotted, no trailing dot) of `qtype`.
    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut msg = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            msg.push(label.len() as u8);
            msg.extend_from_slice(label.as_bytes());
        }
        msg.push(0);
        msg.extend_from_slice(&qtype.to_be_bytes());
        msg.extend_from_slice(&1u16.to_be_bytes());
        msg
    }

    /// What the server answers to a query for `name` of `qtype`.
    fn response(name: &str, qtype: u16) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(answer(
            &catalog(),
            &query(name, qtype),
            Transport::Udp,
            &mut out
        ));
        out
    }

    /// A limiter with `rate`, `window` seconds and `slip`, defaults otherwise.
    fn limiter(rate: u32, window: u64, slip: u32) -> Limiter {
        Limiter::new(&RrlConfig {
            responses_per_second: rate,
            window: Duration::from_secs(window),
            slip,
            ..RrlConfig::default()
        })
        .unwrap()
    }

    /// The verdicts of `n` checks of `response` from `client` at `now`.
    fn burst(
        limiter: &Limiter,
        client: IpAddr,
        response: &[u8],
        n: usize,
        now: Duration,
    ) -> Vec<Verdict> {
        (0..n)
            .map(|_| limiter.check(client, response, now))
            .collect()
    }

    /// How many of `verdicts` are `which`.
    fn count(verdicts: &[Verdict], which: Verdict) -> usize {
        verdicts.iter().filter(|v| **v == which).count()
    }

    #[test]
    fn a_burst_gets_one_second_of_responses_then_is_limited() {
        let limiter = limiter(5, 15, 0);
        let www = response("www.example.test", 1);
        let verdicts = burst(&limiter, CLIENT, &www, 20, Duration::ZERO);
        assert_eq!(&verdicts[..5], &[Verdict::Send; 5], "first 5: {verdicts:?}");
        assert_eq!(&verdicts[5..], &[Verdict::Drop; 15], "rest: {verdicts:?}");
        assert_eq!(
            limiter.counters(),
            RrlCounters {
                answered: 5,
                slipped: 0,
                dropped: 15
            }
        );
    }

    #[test]
    fn the_rate_refills_over_time() {
        let limiter = limiter(10, 15, 0);
        let www = response("www.example.test", 1);
        let start = burst(&limiter, CLIENT, &www, 10, Duration::ZERO);
        assert_eq!(count(&start, Verdict::Send), 10);
        // Exactly at the rate: one response every 100 ms always goes.
        for step in 1..=50u64 {
            let now = Duration::from_millis(100 * step);
            assert_eq!(
                limiter.check(CLIENT, &www, now),
                Verdict::Send,
                "at {now:?}, one response per 100 ms is within 10/s"
            );
        }
        // Twice the rate: every response is charged, limited ones too (as
        // in BIND), so a client that keeps it up gets nothing more.
        let mut at = Duration::from_secs(5);
        for _ in 0..100 {
            at += Duration::from_millis(50);
            assert_eq!(
                limiter.check(CLIENT, &www, at),
                Verdict::Drop,
                "at {at:?}, 20/s against a rate of 10/s stays limited"
            );
        }
        // That cost 100 × half a response; at half the rate (one per
        // 200 ms) each query repays half a response, so the 50th goes.
        let first = (1..=60)
            .find(|_| {
                at += Duration::from_millis(200);
                limiter.check(CLIENT, &www, at) == Verdict::Send
            })
            .unwrap_or(0);
        assert_eq!(first, 50, "the first response after slowing down");
    }

    #[test]
    fn a_flood_stays_limited_for_the_window() {
        let www = response("www.example.test", 1);
        // Rate 10/s, window 5 s: a flood sinks the balance to -50 responses,
        // which takes 5 s to refill, plus 100 ms for one response's worth.
        let flooded = || {
            let limiter = limiter(10, 5, 0);
            let flood = burst(&limiter, CLIENT, &www, 1000, Duration::ZERO);
            assert_eq!(count(&flood, Verdict::Send), 10, "{flood:?}");
            limiter
        };
        for (ms, expected) in [
            (1000, Verdict::Drop),
            (4900, Verdict::Drop),
            (5099, Verdict::Drop),
            (5100, Verdict::Send),
            (60_000, Verdict::Send),
        ] {
            let now = Duration::from_millis(ms);
            assert_eq!(
                flooded().check(CLIENT, &www, now),
                expected,
                "{ms} ms after a flood, with a 5 s window at 10/s"
            );
        }
    }

    #[test]
    fn slip_zero_never_slips_one_always_two_every_other() {
        let www = response("www.example.test", 1);
        for (slip, slipped, dropped) in [(0, 0, 10), (1, 10, 0), (2, 5, 5), (3, 3, 7)] {
            let limiter = limiter(2, 15, slip);
            let verdicts = burst(&limiter, CLIENT, &www, 12, Duration::ZERO);
            let limited = &verdicts[2..];
            assert_eq!(
                (count(limited, Verdict::Slip), count(limited, Verdict::Drop)),
                (slipped, dropped),
                "slip {slip}: 10 limited responses must split into {slipped} slipped \
                 and {dropped} dropped; saw {verdicts:?}"
            );
        }
        // With slip 2 the order is drop, slip, drop, slip…
        let limiter = limiter(1, 15, 2);
        let verdicts = burst(&limiter, CLIENT, &www, 5, Duration::ZERO);
        assert_eq!(
            verdicts,
            [
                Verdict::Send,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip
            ]
        );
    }

    #[test]
    fn clients_are_grouped_by_prefix() {
        let limiter = limiter(3, 15, 0);
        let www = response("www.example.test", 1);
        let neighbour = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));
        let outside = IpAddr::V4(Ipv4Addr::new(192, 0, 3, 10));
        burst(&limiter, CLIENT, &www, 3, Duration::ZERO);
        assert_eq!(
            limiter.check(neighbour, &www, Duration::ZERO),
            Verdict::Drop,
            "192.0.2.200 shares the /24 of 192.0.2.10 and its budget"
        );
        assert_eq!(
            limiter.check(outside, &www, Duration::ZERO),
            Verdict::Send,
            "192.0.3.10 is another /24"
        );
        let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap());
        burst(&limiter, v6("2001:db8:0:100::1"), &www, 3, Duration::ZERO);
        assert_eq!(
            limiter.check(v6("2001:db8:0:1ff::2"), &www, Duration::ZERO),
            Verdict::Drop,
            "2001:db8:0:1ff::2 is in the /56 of 2001:db8:0:100::1"
        );
        assert_eq!(
            limiter.check(v6("2001:db8:0:200::1"), &www, Duration::ZERO),
            Verdict::Send,
            "2001:db8:0:200::1 is another /56"
        );
    }

    #[test]
    fn exempt_prefixes_are_never_limited() {
        let limiter = Limiter::new(&RrlConfig {
            responses_per_second: 1,
            exempt: vec![
                "192.0.2.0/28".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            ..RrlConfig::default()
        })
        .unwrap();
        let www = response("www.example.test", 1);
        let verdicts = burst(&limiter, CLIENT, &www, 100, Duration::ZERO);
        assert_eq!(count(&verdicts, Verdict::Send), 100, "{CLIENT} is exempt");
        let v6: IpAddr = "2001:db8::53".parse().unwrap();
        let verdicts = burst(&limiter, v6, &www, 100, Duration::ZERO);
        assert_eq!(count(&verdicts, Verdict::Send), 100, "{v6} is exempt");
        let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 16));
        let verdicts = burst(&limiter, other, &www, 3, Duration::ZERO);
        assert_eq!(
            count(&verdicts, Verdict::Send),
            1,
            "{other} is outside 192.0.2.0/28 and limited"
        );
        assert_eq!(limiter.counters().answered, 201);
    }

    #[test]
    fn different_answers_do_not_limit_each_other() {
        let limiter = limiter(2, 15, 0);
        let www = response("www.example.test", 1);
        let mail = response("mail.example.test", 1);
        let www_aaaa = response("www.example.test", 28);
        burst(&limiter, CLIENT, &www, 10, Duration::ZERO);
        for (what, other) in [("mail A", &mail), ("www AAAA", &www_aaaa)] {
            let verdicts = burst(&limiter, CLIENT, other, 2, Duration::ZERO);
            assert_eq!(
                verdicts,
                [Verdict::Send; 2],
                "{what} has its own budget after www A was limited"
            );
        }
    }

    #[test]
    fn nxdomain_is_keyed_by_the_zone() {
        let limiter = limiter(3, 15, 0);
        let names = ["a", "b", "c", "d", "e"].map(|l| response(&format!("{l}.example.test"), 1));
        for name in &names {
            assert_eq!(
                name[3] & 0x0f,
                NXDOMAIN,
                "a name not in the zone is NXDOMAIN"
            );
        }
        let verdicts: Vec<Verdict> = names
            .iter()
            .map(|name| limiter.check(CLIENT, name, Duration::ZERO))
            .collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Send,
                Verdict::Send,
                Verdict::Send,
                Verdict::Drop,
                Verdict::Drop
            ],
            "NXDOMAIN for different names in one zone share one budget"
        );
        assert_eq!(
            classify(&names[0]).map(|c| (c.class, c.name_at.is_some())),
            Some((ResponseClass::Nxdomain, true)),
            "the NXDOMAIN key uses the SOA owner"
        );
        // An existing name still has its own budget.
        let www = response("www.example.test", 1);
        assert_eq!(limiter.check(CLIENT, &www, Duration::ZERO), Verdict::Send);
    }

    #[test]
    fn responses_are_classified() {
        let kinds = [
            ("www.example.test", 1, ResponseClass::Answer),
            ("www.example.test", 16, ResponseClass::Nodata),
            ("nope.example.test", 1, ResponseClass::Nxdomain),
            ("www.elsewhere.test", 1, ResponseClass::Error),
            ("a.sub.example.test", 1, ResponseClass::Referral),
        ];
        for (name, qtype, class) in kinds {
            let seen = classify(&response(name, qtype)).map(|c| c.class);
            assert_eq!(seen, Some(class), "{name} type {qtype}");
        }
    }

    #[test]
    fn referrals_are_keyed_by_the_delegation() {
        let limiter = limiter(2, 15, 0);
        let verdicts: Vec<Verdict> = ["a", "b", "c"]
            .iter()
            .map(|l| response(&format!("{l}.sub.example.test"), 1))
            .map(|r| limiter.check(CLIENT, &r, Duration::ZERO))
            .collect();
        assert_eq!(
            verdicts,
            [Verdict::Send, Verdict::Send, Verdict::Drop],
            "referrals to sub.example.test for different names share one budget"
        );
    }

    #[test]
    fn the_table_is_bounded_and_recycles_the_least_recently_used() {
        // Four entries: one shard, one bucket of four ways.
        let limiter = Limiter::new(&RrlConfig {
            responses_per_second: 1,
            slip: 0,
            table_size: 4,
            ..RrlConfig::default()
        })
        .unwrap();
        assert_eq!(limiter.capacity(), 4);
        let www = response("www.example.test", 1);
        let hot = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        burst(&limiter, hot, &www, 2, Duration::ZERO);
        // Many other prefixes pass through while `hot` keeps being limited:
        // it is always the most recently used, so it is never recycled.
        for i in 0..1000u32 {
            let now = Duration::from_millis(u64::from(i));
            let other = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8)));
            assert_eq!(limiter.check(other, &www, now), Verdict::Send);
            assert_eq!(
                limiter.check(hot, &www, now),
                Verdict::Drop,
                "the flooding prefix stays limited at {now:?}"
            );
        }
        assert_eq!(limiter.capacity(), 4, "the table never grows");
        // Once it stops, four newer prefixes push it out and it starts afresh.
        for i in 0..4u32 {
            let other = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + (i << 8)));
            limiter.check(other, &www, Duration::from_millis(1000));
        }
        assert_eq!(
            limiter.check(hot, &www, Duration::from_millis(1000)),
            Verdict::Send,
            "a recycled entry starts with a full balance"
        );
    }

    #[test]
    fn a_clock_going_backwards_does_not_refill() {
        let limiter = limiter(2, 15, 0);
        let www = response("www.example.test", 1);
        burst(&limiter, CLIENT, &www, 3, Duration::from_secs(10));
        assert_eq!(
            limiter.check(CLIENT, &www, Duration::from_secs(5)),
            Verdict::Drop
        );
    }

    #[test]
    fn a_slipped_response_is_the_question_with_tc() {
        let mut www = response("www.example.test", 1);
        let question = query("www.example.test", 1)[12..].to_vec();
        slip(&mut www);
        assert_eq!(www.len(), 12 + question.len());
        assert_eq!(&www[12..], &question[..]);
        assert_ne!(www[2] & 0x02, 0, "TC must be set");
        assert_ne!(www[2] & 0x80, 0, "QR stays set");
        assert_eq!(read_u16(&www, 4), Some(1));
        assert_eq!(&www[6..12], &[0; 6], "no answer, authority or additional");
        let mut garbage = vec![0u8; 12];
        garbage[5] = 3;
        slip(&mut garbage);
        assert_eq!(garbage.len(), 12);
        assert_eq!(&garbage[4..12], &[0; 8]);
    }

    #[test]
    fn unreadable_and_looping_responses_do_not_panic() {
        let limiter = limiter(1, 15, 1);
        let mut looping = response("nope.example.test", 1);
        // Point the authority SOA owner at itself.
        let at = question_end(&looping).unwrap();
        looping.truncate(at);
        looping[8] = 0;
        looping[9] = 1;
        looping.extend_from_slice(&[0xc0, at as u8, 0, 6, 0, 1, 0, 0, 0, 0, 0, 0]);
        for msg in [&looping[..], &[][..], &[0u8; 5][..], &[0xffu8; 40][..]] {
            limiter.check(CLIENT, msg, Duration::ZERO);
            let mut copy = msg.to_vec();
            slip(&mut copy);
        }
        // The looping one has its own key; the three unreadable ones share
        // one, so with rate 1 and slip 1 two of them slip.
        assert_eq!(
            limiter.counters(),
            RrlCounters {
                answered: 2,
                slipped: 2,
                dropped: 0
            }
        );
    }

    #[test]
    fn prefixes_parse_and_name_bad_input() {
        let p: Prefix = "10.1.2.3/8".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert!(p.contains("10.200.0.1".parse().unwrap()));
        assert!(!p.contains("11.0.0.1".parse().unwrap()));
        assert!(!p.contains("::a01:203".parse().unwrap()));
        assert_eq!("::1".parse::<Prefix>().unwrap().length(), 128);
        let error = "10.0.0.0/33".parse::<Prefix>().unwrap_err();
        assert!(error.to_string().contains("10.0.0.0/33"), "{error}");
        let error = "ten/8".parse::<Prefix>().unwrap_err();
        assert!(error.to_string().contains("\"ten/8\""), "{error}");
        let bad = RrlConfig {
            ipv4_prefix: 40,
            ..RrlConfig::default()
        };
        assert_eq!(bad.validate(), Err(RrlConfigError::Ipv4Prefix(40)));
        let bad = RrlConfig {
            window: Duration::ZERO,
            ..RrlConfig::default()
        };
        assert!(Limiter::new(&bad).is_err());
    }
}
