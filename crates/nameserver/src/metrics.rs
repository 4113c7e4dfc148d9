//! The nameserver's counters, for `/metrics`: answers by RCODE and
//! transport, RRL slips and drops, UPDATEs, zone transfers and NOTIFYs by
//! RCODE; the primary's group commit (batches, UPDATEs committed in them,
//! UPDATEs waiting), counted by its writer alone in three plain atomics.
//!
//! ```text
//!  UDP worker thread ─┐  first count on a thread: its own Shard is leaked
//!  TCP runtime thread ─┼─▶ and registered (the only lock, once per thread)
//!  primary thread ─────┘  then: thread-local &Shard ─▶ fetch_add(Relaxed)
//!
//!  totals() ─▶ sums every registered shard (a scrape, not the answer path)
//! ```
//!
//! Counters are process-wide (a process serves one server) and only ever
//! rise. The answer path takes no lock and shares no cache line with other
//! workers: each thread adds to its own shard.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::answer::Transport;

/// RCODEs counted one by one (the header's 4 bits); the extended RCODE of
/// EDNS is not folded in.
pub const RCODES: usize = 16;

/// The kinds of routed request counted apart from queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routed {
    /// RFC 2136 UPDATE.
    Update,
    /// AXFR or IXFR.
    Transfer,
    /// NOTIFY.
    Notify,
}

/// One thread's counters.
#[derive(Debug)]
struct Shard {
    /// Answers by [transport][rcode] (UDP 0, TCP 1).
    answers: [[AtomicU64; RCODES]; 2],
    /// UDP answers sent truncated by RRL.
    rrl_slipped: AtomicU64,
    /// UDP answers dropped by RRL.
    rrl_dropped: AtomicU64,
    /// Routed requests by [kind][rcode of the first response].
    routed: [[AtomicU64; RCODES]; 3],
    /// Routed requests that got no response at all, by kind.
    routed_silent: [AtomicU64; 3],
}

/// A zeroed counter array.
const fn zeros<const N: usize>() -> [AtomicU64; N] {
    [const { AtomicU64::new(0) }; N]
}

impl Shard {
    /// A shard with every counter at zero.
    const fn new() -> Shard {
        Shard {
            answers: [zeros(), zeros()],
            rrl_slipped: AtomicU64::new(0),
            rrl_dropped: AtomicU64::new(0),
            routed: [zeros(), zeros(), zeros()],
            routed_silent: zeros(),
        }
    }
}

/// Every shard ever made; read by [`totals`].
static SHARDS: Mutex<Vec<&'static Shard>> = Mutex::new(Vec::new());

thread_local! {
    /// This thread's shard, made and registered on first use.
    static LOCAL: &'static Shard = {
        let shard: &'static Shard = Box::leak(Box::new(Shard::new()));
        SHARDS.lock().unwrap_or_else(PoisonError::into_inner).push(shard);
        shard
    };
}

/// Adds one to a counter of this thread's shard.
fn bump(pick: impl FnOnce(&Shard) -> &AtomicU64) {
    // `try_with` fails only while the thread is being torn down.
    let _ = LOCAL.try_with(|shard| pick(shard).fetch_add(1, Ordering::Relaxed));
}

/// The RCODE in a DNS message's header (0 when shorter than a header).
fn header_rcode(message: &[u8]) -> usize {
    message.get(3).map_or(0, |byte| usize::from(byte & 0x0f))
}

/// Counts one answer given by the answer path.
pub fn answered(transport: Transport, response: &[u8]) {
    let index = match transport {
        Transport::Udp => 0,
        Transport::Tcp => 1,
    };
    let rcode = header_rcode(response);
    bump(|shard| &shard.answers[index][rcode]);
}

/// Counts one UDP answer sent truncated by response rate limiting.
pub fn rrl_slipped() {
    bump(|shard| &shard.rrl_slipped);
}

/// Counts one UDP answer dropped by response rate limiting.
pub fn rrl_dropped() {
    bump(|shard| &shard.rrl_dropped);
}

/// What kind of routed request `request` is, by opcode and question type.
pub fn routed_kind(request: &[u8]) -> Routed {
    let opcode = request.get(2).map_or(0, |byte| (byte >> 3) & 0x0f);
    match opcode {
        5 => Routed::Update,
        4 => Routed::Notify,
        _ => Routed::Transfer,
    }
}

/// Counts one request the server routed to the primary, by the RCODE of
/// its first response (or as silent when there was none).
pub fn routed(request: &[u8], responses: &[Vec<u8>]) {
    let kind = routed_kind(request) as usize;
    match responses.first() {
        Some(first) => {
            let rcode = header_rcode(first);
            bump(|shard| &shard.routed[kind][rcode]);
        }
        None => bump(|shard| &shard.routed_silent[kind]),
    }
}

/// The sums over every thread, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Answers over UDP by RCODE.
    pub udp: [u64; RCODES],
    /// Answers over TCP by RCODE.
    pub tcp: [u64; RCODES],
    /// UDP answers sent truncated by RRL.
    pub rrl_slipped: u64,
    /// UDP answers dropped by RRL.
    pub rrl_dropped: u64,
    /// UPDATEs by RCODE.
    pub updates: [u64; RCODES],
    /// Zone transfers (AXFR/IXFR) by RCODE of the first message.
    pub transfers: [u64; RCODES],
    /// NOTIFYs by RCODE.
    pub notifies: [u64; RCODES],
    /// Routed requests without any response: update, transfer, notify.
    pub silent: [u64; 3],
    /// Write transactions that committed a batch of UPDATEs.
    pub update_batches: u64,
    /// UPDATEs that changed a zone, in those transactions.
    pub updates_committed: u64,
    /// UPDATEs queued for the writer, not answered yet (a gauge).
    pub updates_waiting: u64,
}

/// Write transactions that committed a batch of UPDATEs (group commit).
static UPDATE_BATCHES: AtomicU64 = AtomicU64::new(0);
/// UPDATEs that changed a zone, counted in the batch that committed them.
static UPDATES_COMMITTED: AtomicU64 = AtomicU64::new(0);
/// UPDATEs queued for the writer and not answered yet.
static UPDATES_WAITING: AtomicU64 = AtomicU64::new(0);

/// Counts one committed batch of UPDATEs, `changed` of which changed a
/// zone. The primary's writer only: not the answer path, and one atomic
/// add per batch, so no shard.
pub fn update_batch(changed: u64) {
    UPDATE_BATCHES.fetch_add(1, Ordering::Relaxed);
    UPDATES_COMMITTED.fetch_add(changed, Ordering::Relaxed);
}

/// Counts `count` UPDATEs queued for the writer.
pub fn updates_queued(count: u64) {
    UPDATES_WAITING.fetch_add(count, Ordering::Relaxed);
}

/// Counts `count` queued UPDATEs answered (taken off the waiting gauge).
pub fn updates_answered(count: u64) {
    // Never below zero, even if a caller miscounted.
    let _ = UPDATES_WAITING.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |waiting| {
        Some(waiting.saturating_sub(count))
    });
}

/// Sums every thread's counters.
pub fn totals() -> Totals {
    let shards = SHARDS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut totals = Totals::default();
    let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    for shard in shards.iter() {
        for rcode in 0..RCODES {
            totals.udp[rcode] += read(&shard.answers[0][rcode]);
            totals.tcp[rcode] += read(&shard.answers[1][rcode]);
            totals.updates[rcode] += read(&shard.routed[Routed::Update as usize][rcode]);
            totals.transfers[rcode] += read(&shard.routed[Routed::Transfer as usize][rcode]);
            totals.notifies[rcode] += read(&shard.routed[Routed::Notify as usize][rcode]);
        }
        totals.rrl_slipped += read(&shard.rrl_slipped);
        totals.rrl_dropped += read(&shard.rrl_dropped);
        for kind in 0..3 {
            totals.silent[kind] += read(&shard.routed_silent[kind]);
        }
    }
    totals.update_batches = UPDATE_BATCHES.load(Ordering::Relaxed);
    totals.updates_committed = UPDATES_COMMITTED.load(Ordering::Relaxed);
    totals.updates_waiting = UPDATES_WAITING.load(Ordering::Relaxed);
    totals
}

/// The mnemonic of an RCODE, as Prometheus labels show it.
pub fn rcode_name(rcode: usize) -> &'static str {
    const NAMES: [&str; RCODES] = [
        "NOERROR",
        "FORMERR",
        "SERVFAIL",
        "NXDOMAIN",
        "NOTIMP",
        "REFUSED",
        "YXDOMAIN",
        "YXRRSET",
        "NXRRSET",
        "NOTAUTH",
        "NOTZONE",
        "DSOTYPENI",
        "RCODE12",
        "RCODE13",
        "RCODE14",
        "RCODE15",
    ];
    NAMES.get(rcode).copied().unwrap_or("RCODE?")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header with this opcode and RCODE.
    fn header(opcode: u8, rcode: u8) -> Vec<u8> {
        vec![0, 1, 0x80 | (opcode << 3), rcode, 0, 0, 0, 0, 0, 0, 0, 0]
    }

    #[test]
    fn counts_from_several_threads_add_up() {
        let before = totals();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..100 {
                        answered(Transport::Udp, &header(0, 3));
                    }
                    answered(Transport::Tcp, &header(0, 5));
                    routed(&header(5, 0), &[header(5, 8)]);
                    routed(&header(0, 0), &[]);
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("a counting thread panicked");
        }
        let after = totals();
        assert_eq!(
            after.udp[3] - before.udp[3],
            400,
            "expected 400 NXDOMAIN over UDP"
        );
        assert_eq!(
            after.tcp[5] - before.tcp[5],
            4,
            "expected 4 REFUSED over TCP"
        );
        assert_eq!(
            after.updates[8] - before.updates[8],
            4,
            "expected 4 NXRRSET updates"
        );
        assert_eq!(
            after.silent[1] - before.silent[1],
            4,
            "expected 4 silent transfers"
        );
    }

    #[test]
    fn kinds_follow_the_opcode() {
        assert_eq!(routed_kind(&header(5, 0)), Routed::Update, "opcode 5");
        assert_eq!(routed_kind(&header(4, 0)), Routed::Notify, "opcode 4");
        assert_eq!(routed_kind(&header(0, 0)), Routed::Transfer, "opcode 0");
        assert_eq!(rcode_name(3), "NXDOMAIN", "rcode 3");
    }
}
