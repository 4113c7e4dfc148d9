//! Who may hold a TCP connection: the listener's own budget of connections,
//! each client's share of it, and which idle connection gives way when the
//! budget is spent (RFC 7766 §6.2.3: a server may close idle connections
//! under resource pressure).
//!
//! ```text
//!  accept(peer) ──admit(peer)──▶ Admitted(Ticket)   slot taken, peer's count + 1
//!                            ├─▶ ClientFull         peer holds its share: closed at once
//!                            └─▶ Full ──evict_oldest_idle()──▶ a waiting connection is told
//!                                 to close; the accept waits (briefly) for its slot
//!
//!  connection task: ticket.idle_since(t) before waiting for a query,
//!                   ticket.busy() once one arrives, ticket.evicted() in its select
//!  sweeper (every SWEEP_INTERVAL): in use ≥ 3/4 of the budget ──▶ every connection
//!                   idle longer than the pressure timeout is told to close
//! ```
//!
//! A client is an IPv4 address or an IPv6 /64 (what one host holds). The
//! ledger of free slots and per-client counts is behind a mutex taken on
//! accept and close only; the answer path never sees it. Picking the
//! connection to evict looks at a bounded sample of slots, so a full table
//! under a connection flood costs O(1) per accept.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Slots looked at when choosing a connection to evict.
const EVICTION_SAMPLE: usize = 64;

/// Marks a slot whose connection is not waiting for a query.
const BUSY: u64 = 0;

/// The budget of one TCP server.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    /// Connections at once, over all listeners.
    pub(super) max_connections: usize,
    /// Connections at once from one client.
    pub(super) max_per_client: usize,
}

/// The connection table of one TCP server.
pub(super) struct Admission {
    /// One per connection the budget allows.
    slots: Box<[Slot]>,
    /// Free slots and connections per client.
    ledger: Mutex<Ledger>,
    /// Connections one client may hold.
    max_per_client: u32,
    /// Connections open now.
    in_use: AtomicUsize,
    /// Where the next eviction sample starts.
    cursor: AtomicUsize,
    /// Time zero of the idle stamps.
    epoch: Instant,
    /// Woken when a slot is given back.
    freed: Notify,
}

/// One connection's place in the table.
struct Slot {
    /// Milliseconds since the epoch plus one at which the connection last
    /// completed a query (or was accepted), while it waits for the next;
    /// [`BUSY`] otherwise.
    idle_since: AtomicU64,
    /// Set when the connection must close; cleared when the slot is reused.
    evict: AtomicBool,
    /// Wakes the connection's task when `evict` is set.
    wake: Notify,
}

/// What the mutex guards.
struct Ledger {
    /// Slot ids not in use.
    free: Vec<u32>,
    /// Open connections by client.
    clients: HashMap<Client, u32>,
}

/// A client as the per-client limit counts it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(super) enum Client {
    /// An IPv4 address (IPv4-mapped IPv6 addresses included).
    V4([u8; 4]),
    /// The /64 of an IPv6 address.
    V6([u8; 8]),
}

/// The outcome of [`Admission::admit`].
pub(super) enum Verdict {
    /// A slot for the connection; given back when the ticket drops.
    Admitted(Ticket),
    /// The client already holds its share.
    ClientFull,
    /// Every slot is taken.
    Full,
}

/// A connection's hold on its slot.
pub(super) struct Ticket {
    /// The table.
    admission: Arc<Admission>,
    /// The slot.
    slot: u32,
    /// Whose connection it is.
    client: Client,
}

impl Client {
    /// The client `address` counts as.
    pub(super) fn of(address: IpAddr) -> Client {
        match address {
            IpAddr::V4(v4) => Client::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4.octets()),
                None => {
                    let octets = v6.octets();
                    let mut net = [0u8; 8];
                    net.copy_from_slice(&octets[..8]);
                    Client::V6(net)
                }
            },
        }
    }
}

impl Admission {
    /// An empty table for `budget` (at least one connection, one per client).
    pub(super) fn new(budget: Budget) -> Arc<Admission> {
        let max = budget.max_connections.max(1);
        let slots = (0..max)
            .map(|_| Slot {
                idle_since: AtomicU64::new(BUSY),
                evict: AtomicBool::new(false),
                wake: Notify::new(),
            })
            .collect();
        Arc::new(Admission {
            slots,
            ledger: Mutex::new(Ledger {
                // Popped from the end: slot 0 is handed out first.
                free: (0..max as u32).rev().collect(),
                clients: HashMap::new(),
            }),
            max_per_client: u32::try_from(budget.max_per_client.clamp(1, max)).unwrap_or(u32::MAX),
            in_use: AtomicUsize::new(0),
            cursor: AtomicUsize::new(0),
            epoch: Instant::now(),
            freed: Notify::new(),
        })
    }

    /// The budget: connections at once.
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Connections open now.
    pub(super) fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// True when so many connections are open that idle ones are closed
    /// early: three quarters of the budget.
    pub(super) fn under_pressure(&self) -> bool {
        self.in_use() * 4 >= self.capacity() * 3
    }

    /// Takes a slot for a connection from `address`, if its client has room
    /// and a slot is free.
    pub(super) fn admit(self: &Arc<Self>, address: IpAddr) -> Verdict {
        let client = Client::of(address);
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        if ledger.clients.get(&client).copied().unwrap_or(0) >= self.max_per_client {
            return Verdict::ClientFull;
        }
        let Some(slot) = ledger.free.pop() else {
            return Verdict::Full;
        };
        *ledger.clients.entry(client).or_insert(0) += 1;
        drop(ledger);
        let entry = &self.slots[slot as usize];
        entry.evict.store(false, Ordering::Release);
        entry
            .idle_since
            .store(self.stamp(Instant::now()), Ordering::Relaxed);
        self.in_use.fetch_add(1, Ordering::Relaxed);
        Verdict::Admitted(Ticket {
            admission: Arc::clone(self),
            slot,
            client,
        })
    }

    /// A future that completes once a slot is given back (create it before
    /// looking, so a slot freed in between is not missed).
    pub(super) fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// Tells the connection idle the longest, of a sample of the table, to
    /// close; false when none of those sampled is waiting for a query.
    pub(super) fn evict_oldest_idle(&self) -> bool {
        let count = self.slots.len();
        let sample = count.min(EVICTION_SAMPLE);
        let start = self.cursor.fetch_add(sample, Ordering::Relaxed) % count;
        let mut oldest: Option<(u64, usize)> = None;
        for step in 0..sample {
            let at = (start + step) % count;
            let since = self.slots[at].idle_since.load(Ordering::Relaxed);
            if since != BUSY
                && !self.slots[at].evict.load(Ordering::Relaxed)
                && oldest.is_none_or(|(best, _)| since < best)
            {
                oldest = Some((since, at));
            }
        }
        match oldest {
            Some((_, at)) => {
                self.evict(at);
                true
            }
            None => false,
        }
    }

    /// Tells every connection waiting for a query for `limit` or longer to
    /// close; returns how many were told.
    pub(super) fn sweep(&self, now: Instant, limit: Duration) -> usize {
        let cutoff = self.stamp(now).saturating_sub(millis(limit));
        let mut told = 0;
        for (at, slot) in self.slots.iter().enumerate() {
            let since = slot.idle_since.load(Ordering::Relaxed);
            if since != BUSY && since <= cutoff && !slot.evict.load(Ordering::Relaxed) {
                self.evict(at);
                told += 1;
            }
        }
        told
    }

    /// Sets the eviction flag of a slot and wakes its connection.
    fn evict(&self, at: usize) {
        let slot = &self.slots[at];
        slot.evict.store(true, Ordering::Release);
        slot.wake.notify_waiters();
    }

    /// An idle stamp for `at`: milliseconds since the epoch plus one (never
    /// [`BUSY`]).
    fn stamp(&self, at: Instant) -> u64 {
        millis(at.saturating_duration_since(self.epoch)).saturating_add(1)
    }

    /// Gives a slot back.
    fn release(&self, slot: u32, client: Client) {
        let entry = &self.slots[slot as usize];
        entry.idle_since.store(BUSY, Ordering::Relaxed);
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = ledger.clients.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                ledger.clients.remove(&client);
            }
        }
        ledger.free.push(slot);
        drop(ledger);
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        self.freed.notify_one();
    }
}

impl Ticket {
    /// The connection waits for a query; the last one completed at `since`.
    pub(super) fn idle_since(&self, since: Instant) {
        let stamp = self.admission.stamp(since);
        self.slot().idle_since.store(stamp, Ordering::Relaxed);
    }

    /// The connection is working on a query (it is not evicted meanwhile).
    pub(super) fn busy(&self) {
        self.slot().idle_since.store(BUSY, Ordering::Relaxed);
    }

    /// Completes when the connection has been told to close.
    pub(super) async fn evicted(&self) {
        let slot = self.slot();
        loop {
            let woken = slot.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if slot.evict.load(Ordering::Acquire) {
                return;
            }
            woken.await;
        }
    }

    /// The ticket's slot.
    fn slot(&self) -> &Slot {
        &self.admission.slots[self.slot as usize]
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(self.slot, self.client);
    }
}

/// Whole milliseconds of a duration, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The ticket of an admitted connection; panics otherwise.
    fn admitted(verdict: Verdict) -> Ticket {
        match verdict {
            Verdict::Admitted(ticket) => ticket,
            Verdict::ClientFull => panic!("refused: client full"),
            Verdict::Full => panic!("refused: table full"),
        }
    }

    /// An IPv4 address 10.0.0.n.
    fn v4(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[tokio::test]
    async fn a_client_gets_its_share_and_no_more() {
        let table = Admission::new(Budget {
            max_connections: 8,
            max_per_client: 2,
        });
        let first = admitted(table.admit(v4(1)));
        let _second = admitted(table.admit(v4(1)));
        assert!(matches!(table.admit(v4(1)), Verdict::ClientFull));
        let _other = admitted(table.admit(v4(2)));
        drop(first);
        let _again = admitted(table.admit(v4(1)));
        assert_eq!(table.in_use(), 3);
    }

    #[tokio::test]
    async fn an_ipv6_client_is_its_slash_64() {
        let table = Admission::new(Budget {
            max_connections: 8,
            max_per_client: 1,
        });
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        let _a = admitted(table.admit(IpAddr::V6(a)));
        assert!(matches!(table.admit(IpAddr::V6(b)), Verdict::ClientFull));
        let _c = admitted(table.admit(IpAddr::V6(c)));
        let mapped: Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
        let _v4 = admitted(table.admit(v4(1)));
        assert!(
            matches!(table.admit(IpAddr::V6(mapped)), Verdict::ClientFull),
            "an IPv4-mapped address is the IPv4 client"
        );
    }

    #[tokio::test]
    async fn a_full_table_evicts_the_connection_idle_longest() {
        let table = Admission::new(Budget {
            max_connections: 3,
            max_per_client: 3,
        });
        let now = Instant::now();
        let tickets: Vec<Ticket> = (1..=3).map(|n| admitted(table.admit(v4(n)))).collect();
        tickets[0].idle_since(now + Duration::from_millis(20));
        tickets[1].idle_since(now + Duration::from_millis(10));
        tickets[2].busy();
        assert!(matches!(table.admit(v4(9)), Verdict::Full));
        assert!(table.evict_oldest_idle());
        tokio::time::timeout(Duration::from_secs(1), tickets[1].evicted())
            .await
            .expect("the connection idle longest is told to close");
        assert!(!table.slots[tickets[0].slot as usize]
            .evict
            .load(Ordering::Relaxed));
        assert!(!table.slots[tickets[2].slot as usize]
            .evict
            .load(Ordering::Relaxed));
        tickets[0].busy();
        assert!(
            !table.evict_oldest_idle(),
            "busy and already evicted connections are not picked"
        );
    }

    #[tokio::test]
    async fn the_sweep_closes_only_what_waited_long_enough() {
        let table = Admission::new(Budget {
            max_connections: 4,
            max_per_client: 4,
        });
        let start = Instant::now();
        let old = admitted(table.admit(v4(1)));
        let fresh = admitted(table.admit(v4(2)));
        let working = admitted(table.admit(v4(3)));
        old.idle_since(start);
        fresh.idle_since(start + Duration::from_millis(900));
        working.busy();
        assert!(table.under_pressure(), "3 of 4 in use");
        let told = table.sweep(start + Duration::from_secs(1), Duration::from_millis(500));
        assert_eq!(told, 1, "only the connection idle for 1 s");
        tokio::time::timeout(Duration::from_secs(1), old.evicted())
            .await
            .expect("told to close");
        drop(old);
        assert!(!table.under_pressure(), "2 of 4 in use");
        let reused = admitted(table.admit(v4(4)));
        let reused_slot = &table.slots[reused.slot as usize];
        assert!(
            !reused_slot.evict.load(Ordering::Relaxed),
            "a reused slot starts without the eviction of its last holder"
        );
    }
}
