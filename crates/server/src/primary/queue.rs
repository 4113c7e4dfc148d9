//! The UPDATEs waiting for the writer, and who commits them: the group
//! commit's queue, with a leader and followers, no thread of its own.
//!
//! ```text
//!  submit(members) ─▶ queued (FIFO), each with its Reply slot
//!     loop: all mine answered? ─▶ return the answers, in order
//!           nobody leading?     ─▶ lead: commit(&Taker) — the committer takes what is
//!                                  queued (take: ≤ MAX_MEMBERS, ≤ MAX_BYTES, at least one),
//!                                  commits it in one transaction, answers every member
//!                                  ─▶ lead over: wake every follower
//!           else                ─▶ wait until a lead is over
//! ```
//!
//! Whoever finds the queue waiting and nobody leading commits the next
//! batch; while it does, the others queue up, and the next leader takes
//! them all at once: the "natural" group commit, no delay added to wait
//! for more. A batch of one is the update alone, on the thread that
//! received it. An answer is left in its [`Reply`] only after the commit
//! that holds the change is durable; a `Reply` dropped unanswered (a
//! panic in the leader) answers its fallback, SERVFAIL, so no submitter
//! waits forever.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

/// The most members one batch takes.
pub const MAX_MEMBERS: usize = 64;

/// The most request bytes one batch takes (a member larger than this alone
/// still goes, alone).
pub const MAX_BYTES: usize = 256 * 1024;

/// One member's answer, left for whoever submitted it.
type Slot = Arc<OnceLock<Vec<u8>>>;

/// Where a member's answer goes: answered once; when dropped unanswered,
/// it answers its fallback (SERVFAIL).
#[derive(Debug)]
pub struct Reply {
    /// Read by the submitter.
    slot: Slot,
    /// What is answered if nothing else is.
    fallback: Vec<u8>,
}

impl Reply {
    /// Leaves `answer` for the submitter (ignored when already answered).
    pub fn send(self, answer: Vec<u8>) {
        let _ = self.slot.set(answer);
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        let _ = self.slot.set(std::mem::take(&mut self.fallback));
    }
}

/// A member in the queue.
#[derive(Debug)]
pub struct Entry<M> {
    /// What is to be committed.
    pub member: M,
    /// Its size, for the batch's byte budget.
    pub bytes: usize,
    /// Where its answer goes.
    pub reply: Reply,
}

/// The bounds of one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Members at most.
    pub members: usize,
    /// Bytes at most, unless the first member alone is larger.
    pub bytes: usize,
}

/// The bounds `cutover serve` uses.
pub const LIMITS: Limits = Limits {
    members: MAX_MEMBERS,
    bytes: MAX_BYTES,
};

/// The next batch off the front of `waiting`, in order: at least one member
/// when any waits, then as many as fit `limits`; the first that does not
/// fit stays first in line.
pub fn take<M>(waiting: &mut VecDeque<Entry<M>>, limits: Limits) -> Vec<Entry<M>> {
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while let Some(next) = waiting.front() {
        let fits = batch.len() < limits.members.max(1)
            && (batch.is_empty() || bytes.saturating_add(next.bytes) <= limits.bytes);
        if !fits {
            break;
        }
        bytes = bytes.saturating_add(next.bytes);
        batch.extend(waiting.pop_front());
    }
    batch
}

/// The queue's state, under its lock.
#[derive(Debug)]
struct State<M> {
    /// Members not taken yet, oldest first.
    waiting: VecDeque<Entry<M>>,
    /// Whether someone is committing a batch.
    leading: bool,
}

/// The queue of members waiting for the writer.
#[derive(Debug)]
pub struct Queue<M> {
    /// The members and the leader's flag.
    state: Mutex<State<M>>,
    /// Signalled when a lead is over.
    lead_over: Condvar,
    /// The bounds of a batch.
    limits: Limits,
}

/// The leader's handle on the queue: takes the next batch.
pub struct Taker<'a, M> {
    /// The queue.
    queue: &'a Queue<M>,
}

impl<M> Taker<'_, M> {
    /// The next batch: what is queued now, within the queue's limits.
    pub fn take(&self) -> Vec<Entry<M>> {
        take(&mut self.queue.lock().waiting, self.queue.limits)
    }
}

/// Ends a lead when dropped (even by a panic): the flag cleared, the
/// followers woken, one of which leads next if members still wait.
struct Lead<'a, M> {
    /// The queue.
    queue: &'a Queue<M>,
}

impl<M> Drop for Lead<'_, M> {
    fn drop(&mut self) {
        self.queue.lock().leading = false;
        self.queue.lead_over.notify_all();
    }
}

impl<M> Queue<M> {
    /// An empty queue whose batches keep within `limits`.
    pub fn new(limits: Limits) -> Queue<M> {
        Queue {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                leading: false,
            }),
            lead_over: Condvar::new(),
            limits,
        }
    }

    /// The state (a panic elsewhere leaves it consistent: every change
    /// under the lock is one push, pop or flag).
    fn lock(&self) -> MutexGuard<'_, State<M>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `members` (each with its size and the answer given if it is
    /// dropped unanswered), then waits until every one is answered, leading
    /// — calling `commit`, which takes a batch with the [`Taker`] and
    /// answers each of its members — whenever nobody else does. The
    /// answers, in the order given.
    pub fn submit(
        &self,
        members: Vec<(M, usize, Vec<u8>)>,
        mut commit: impl FnMut(&Taker<'_, M>),
    ) -> Vec<Vec<u8>> {
        let slots: Vec<Slot> = members.iter().map(|_| Slot::default()).collect();
        let mut state = self.lock();
        for ((member, bytes, fallback), slot) in members.into_iter().zip(&slots) {
            state.waiting.push_back(Entry {
                member,
                bytes,
                reply: Reply {
                    slot: Arc::clone(slot),
                    fallback,
                },
            });
        }
        loop {
            if slots.iter().all(|slot| slot.get().is_some()) {
                break;
            }
            if !state.leading {
                state.leading = true;
                drop(state);
                {
                    let _lead = Lead { queue: self };
                    commit(&Taker { queue: self });
                }
                state = self.lock();
                continue;
            }
            state = self
                .lead_over
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(state);
        slots
            .iter()
            .map(|slot| slot.get().cloned().unwrap_or_default())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue entry of `bytes` bytes named `member`.
    fn entry(member: u32, bytes: usize) -> (Entry<u32>, Slot) {
        let slot = Slot::default();
        let reply = Reply {
            slot: Arc::clone(&slot),
            fallback: b"SERVFAIL".to_vec(),
        };
        (
            Entry {
                member,
                bytes,
                reply,
            },
            slot,
        )
    }

    /// A queue of entries of these sizes, named 0, 1, …
    fn waiting(sizes: &[usize]) -> VecDeque<Entry<u32>> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, bytes)| entry(i as u32, *bytes).0)
            .collect()
    }

    /// The members of a batch.
    fn names(batch: &[Entry<u32>]) -> Vec<u32> {
        batch.iter().map(|e| e.member).collect()
    }

    #[test]
    fn a_batch_takes_what_waits_in_order_up_to_the_member_limit() {
        let mut queue = waiting(&[10; 5]);
        let limits = Limits {
            members: 3,
            bytes: 1000,
        };
        assert_eq!(names(&take(&mut queue, limits)), [0, 1, 2]);
        assert_eq!(names(&take(&mut queue, limits)), [3, 4]);
        assert!(take(&mut queue, limits).is_empty(), "nothing left");
    }

    #[test]
    fn a_batch_stops_before_the_member_that_would_pass_the_byte_budget() {
        let limits = Limits {
            members: 64,
            bytes: 100,
        };
        let mut queue = waiting(&[40, 50, 20, 5]);
        assert_eq!(
            names(&take(&mut queue, limits)),
            [0, 1],
            "40 + 50 fit, + 20 would not"
        );
        assert_eq!(
            names(&take(&mut queue, limits)),
            [2, 3],
            "the one left out goes first next"
        );
        let mut large = waiting(&[500, 10]);
        assert_eq!(
            names(&take(&mut large, limits)),
            [0],
            "a member over the budget goes alone"
        );
        assert_eq!(names(&take(&mut large, limits)), [1]);
    }

    #[test]
    fn a_reply_dropped_unanswered_answers_its_fallback() {
        let (answered, answered_slot) = entry(1, 1);
        answered.reply.send(b"NOERROR".to_vec());
        assert_eq!(answered_slot.get().unwrap(), b"NOERROR");
        let (dropped, dropped_slot) = entry(2, 1);
        drop(dropped);
        assert_eq!(
            dropped_slot.get().unwrap(),
            b"SERVFAIL",
            "a leader that died answers SERVFAIL"
        );
    }

    #[test]
    fn members_submitted_while_a_batch_commits_go_together_in_the_next() {
        let queue: Arc<Queue<u32>> = Arc::new(Queue::new(LIMITS));
        let batches: Arc<Mutex<Vec<Vec<u32>>>> = Arc::default();
        let (entered, enter) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Mutex::new(released);
        // The first submitter leads and holds its batch until released.
        let first = {
            let (queue, batches) = (Arc::clone(&queue), Arc::clone(&batches));
            std::thread::spawn(move || {
                queue.submit(vec![(0, 1, b"F".to_vec())], |taker| {
                    let batch = taker.take();
                    if names(&batch) == [0] {
                        entered.send(()).unwrap();
                        released.lock().unwrap().recv().unwrap();
                    }
                    batches.lock().unwrap().push(names(&batch));
                    for e in batch {
                        e.reply.send(format!("ok {}", e.member).into_bytes());
                    }
                })
            })
        };
        enter.recv().unwrap();
        let others: Vec<_> = (1..=8)
            .map(|member| {
                let (queue, batches) = (Arc::clone(&queue), Arc::clone(&batches));
                std::thread::spawn(move || {
                    queue.submit(vec![(member, 1, b"F".to_vec())], |taker| {
                        let batch = taker.take();
                        batches.lock().unwrap().push(names(&batch));
                        for e in batch {
                            e.reply.send(format!("ok {}", e.member).into_bytes());
                        }
                    })
                })
            })
            .collect();
        // Every other member queued behind the held batch.
        while queue.lock().waiting.len() < 8 {
            std::thread::yield_now();
        }
        release.send(()).unwrap();
        assert_eq!(first.join().unwrap(), [b"ok 0".to_vec()]);
        for (i, other) in others.into_iter().enumerate() {
            assert_eq!(
                other.join().unwrap(),
                [format!("ok {}", i + 1).into_bytes()],
                "each member its own answer"
            );
        }
        let batches = batches.lock().unwrap();
        assert_eq!(batches.len(), 2, "two batches: {batches:?}");
        let mut second = batches[1].clone();
        second.sort();
        assert_eq!(second, (1..=8).collect::<Vec<_>>(), "the eight together");
    }

    #[test]
    fn a_leader_that_panics_leaves_servfail_and_the_queue_led_again() {
        let queue: Queue<u32> = Queue::new(LIMITS);
        let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            queue.submit(vec![(0, 1, b"SERVFAIL".to_vec())], |taker| {
                let _batch = taker.take();
                panic!("the leader dies");
            })
        }));
        assert!(died.is_err(), "the panic goes to the leader's caller");
        let answers = queue.submit(vec![(1, 1, b"SERVFAIL".to_vec())], |taker| {
            for e in taker.take() {
                e.reply.send(b"ok".to_vec());
            }
        });
        assert_eq!(answers, [b"ok".to_vec()], "the next submitter leads");
    }

    #[test]
    fn several_members_submitted_at_once_are_answered_in_order() {
        let queue: Queue<u32> = Queue::new(Limits {
            members: 2,
            bytes: 100,
        });
        let mut commits = 0;
        let answers = queue.submit((0..5).map(|m| (m, 1, b"F".to_vec())).collect(), |taker| {
            commits += 1;
            for e in taker.take() {
                e.reply.send(vec![e.member as u8]);
            }
        });
        assert_eq!(answers, (0..5u8).map(|m| vec![m]).collect::<Vec<_>>());
        assert_eq!(commits, 3, "two, two and one");
    }
}
