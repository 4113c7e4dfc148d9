//! The work bounds of the control plane: how many probes run at once, per
//! token and in total, and how many event streams a token holds open. Over
//! a bound the answer is 429 `too_many_requests` with a `Retry-After`, at
//! once: nothing waits in a queue.
//!
//! ```text
//!  request ──auth──▶ Caller ──Budget::probe(caller)──▶ Permit (held until the answer is sent) ──▶ handler
//!                                      └─ over the token's or the total bound ──▶ 429 + Retry-After
//!  admin tokens: their own per-token bound, outside the total, so a flood of
//!  probe tokens never keeps an admin from probing
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use cutover_api::ErrorCode;

use super::caller::Caller;
use super::error::ApiError;
use super::tokens::TokenScope;

/// Event streams one token may hold open at once.
pub const MAX_STREAMS_PER_TOKEN: usize = 16;

/// The seconds a 429 tells the client to wait.
const RETRY_AFTER: u64 = 1;

/// What is being bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    /// A probe: a check, verify, plan or start (a child process, outbound traffic).
    Probe,
    /// An open event stream.
    Stream,
}

/// The counts in use.
#[derive(Debug, Default)]
struct InUse {
    /// Probes running, admin tokens' excepted.
    probes: usize,
    /// Per (token, kind of work).
    by_token: HashMap<(String, Work), usize>,
    /// Requests refused with 429 since the start.
    refused: u64,
}

/// The bounds and what is in use; shared by every request.
#[derive(Clone, Debug)]
pub struct Budget {
    /// `[http] max_probes`.
    max_probes: usize,
    /// `[http] max_probes_per_token`.
    max_probes_per_token: usize,
    /// The counts.
    in_use: Arc<Mutex<InUse>>,
}

/// A unit of work taken from the budget; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    /// The budget it came from.
    budget: Budget,
    /// The token and the kind of work.
    key: (String, Work),
    /// True when it counts against the total.
    counted: bool,
}

impl Budget {
    /// A budget with these bounds.
    pub fn new(max_probes: usize, max_probes_per_token: usize) -> Budget {
        Budget {
            max_probes,
            max_probes_per_token,
            in_use: Arc::default(),
        }
    }

    /// The counts, even if a thread panicked holding them.
    fn lock(&self) -> std::sync::MutexGuard<'_, InUse> {
        self.in_use.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one unit of `work` for `caller`, or refuses with 429.
    pub fn take(&self, caller: &Caller, work: Work) -> Result<Permit, ApiError> {
        let key = (caller.name.clone(), work);
        let (per_token, counted) = match work {
            Work::Probe => (self.max_probes_per_token, caller.scope != TokenScope::Admin),
            Work::Stream => (MAX_STREAMS_PER_TOKEN, false),
        };
        let mut in_use = self.lock();
        let mine = in_use.by_token.get(&key).copied().unwrap_or(0);
        if mine >= per_token {
            let what = match work {
                Work::Probe => format!(
                    "the token {:?} has {mine} probes running, its most ([http] max_probes_per_token)",
                    caller.name
                ),
                Work::Stream => format!(
                    "the token {:?} has {mine} event streams open, its most",
                    caller.name
                ),
            };
            in_use.refused += 1;
            return Err(too_many(what));
        }
        if counted && in_use.probes >= self.max_probes {
            in_use.refused += 1;
            return Err(too_many(format!(
                "{} probes are running, the most at once ([http] max_probes)",
                in_use.probes
            )));
        }
        if counted {
            in_use.probes += 1;
        }
        *in_use.by_token.entry(key.clone()).or_insert(0) += 1;
        Ok(Permit {
            budget: self.clone(),
            key,
            counted,
        })
    }

    /// Probes running now that count against the total, and the requests
    /// refused with 429 since the start.
    pub fn counts(&self) -> (usize, u64) {
        let in_use = self.lock();
        (in_use.probes, in_use.refused)
    }
}

/// A 429 with the reason and the wait.
fn too_many(reason: String) -> ApiError {
    ApiError::new(
        ErrorCode::TooManyRequests,
        format!("{reason}; try again in {RETRY_AFTER} s"),
    )
    .retry_after(RETRY_AFTER)
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut in_use = self.budget.lock();
        if self.counted {
            in_use.probes = in_use.probes.saturating_sub(1);
        }
        if let Some(count) = in_use.by_token.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                in_use.by_token.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller.
    fn caller(name: &str, scope: TokenScope) -> Caller {
        Caller {
            name: name.into(),
            scope,
        }
    }

    #[test]
    fn each_token_and_the_total_are_bounded_and_admins_keep_their_own() {
        let budget = Budget::new(3, 2);
        let (a, b, ops) = (
            caller("a", TokenScope::Probe),
            caller("b", TokenScope::Probe),
            caller("ops", TokenScope::Admin),
        );
        let first = budget.take(&a, Work::Probe).expect("a's first");
        let _second = budget.take(&a, Work::Probe).expect("a's second");
        let refused = budget.take(&a, Work::Probe).expect_err("a's third");
        assert_eq!(
            (refused.code, refused.retry_after),
            (ErrorCode::TooManyRequests, Some(1)),
            "expected 429 with Retry-After for a's third"
        );
        let _b1 = budget.take(&b, Work::Probe).expect("b's first");
        let total = budget.take(&b, Work::Probe).expect_err("over the total");
        assert!(
            total.message.contains("max_probes"),
            "expected the total named, seen {}",
            total.message
        );
        let _admin = budget
            .take(&ops, Work::Probe)
            .expect("an admin past the total");
        assert_eq!(
            budget.counts(),
            (3, 2),
            "expected the admin's probe outside the total, and two refusals"
        );
        drop(first);
        budget
            .take(&b, Work::Probe)
            .expect("b once a's first ended");
        let streams: Vec<Permit> = (0..MAX_STREAMS_PER_TOKEN)
            .map(|_| budget.take(&a, Work::Stream).expect("a stream"))
            .collect();
        assert!(
            budget.take(&a, Work::Stream).is_err(),
            "expected a stream past the token's most refused"
        );
        drop(streams);
        budget
            .take(&a, Work::Stream)
            .expect("a stream once the others closed");
    }
}
