//! The group commit of UPDATEs: one batch taken from the queue, worked out
//! member by member inside ONE write transaction, committed with one
//! fsync, published once per zone, then every member answered.
//!
//! ```text
//!  writer lock ─▶ served lock ─▶ Store::batch (BEGIN IMMEDIATE)
//!     take the batch (what is queued now, bounded: queue::LIMITS)
//!     for each member, in order:  Batch::update_zone (a savepoint of its own)
//!        on the version the members before it left ─▶ update::apply
//!        refused / prerequisite failed / unchanged ─▶ its own RCODE, nothing written
//!        changed ─▶ its own version in the journal (serial raised), applied to
//!                   the cached zone in place, so the next member starts from it
//!  COMMIT (one fsync) ── fails ─▶ every member SERVFAIL, cached zones dropped, nothing published
//!     │ ok
//!     ▼
//!  per zone changed: the served snapshot patched with every member's diff, published once
//!  ─▶ every member answered (NOERROR only now) ─▶ NOTIFY out once per zone
//! ```

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use cutover_nameserver::update::{self, Outcome, UpdateRcode};
use cutover_store::{Batch, Held, StoreError, Updated};
use cutover_zone::{edit, Name, Serial, ZoneDiff};

use super::pending::Pending;
use super::queue::{Entry, Taker};
use super::{StorePrimary, Written};

/// What one member came to inside the transaction.
#[derive(Debug)]
enum Verdict {
    /// Nothing written: answered with this RCODE once the batch commits.
    Answer(UpdateRcode),
    /// Written in the transaction as its own version; NOERROR once committed.
    Changed {
        /// The member's diff.
        diff: ZoneDiff,
        /// Whether it was worked out on a version read inside the
        /// transaction (another writer had moved the zone).
        reread: bool,
    },
}

impl StorePrimary {
    /// Leads one batch: takes what is queued, works each member out in
    /// turn in one write transaction, commits it, publishes, answers.
    pub(super) fn commit_batch(&self, taker: &Taker<'_, Pending>) {
        let mut written = self.writer();
        let started = Instant::now();
        // The served lock is held from before the commit to the publication,
        // so the reload watcher never rebuilds the versions we are about to publish.
        let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        let mut taken: Option<Vec<Entry<Pending>>> = None;
        let committed = self.store.batch(|batch| {
            let entries = taker.take();
            let verdicts: Vec<Verdict> = entries
                .iter()
                .map(|entry| self.work_out(batch, &mut written, &entry.member))
                .collect();
            taken = Some(entries);
            verdicts
        });
        let verdicts = match committed {
            Ok(verdicts) => verdicts,
            Err(error) => {
                // The transaction did not begin or did not commit: nothing
                // of the batch is stored, and the cached zones may hold
                // changes that are not. A batch not taken yet (BEGIN failed)
                // is taken now, so the queue moves on.
                let entries = taken.unwrap_or_else(|| taker.take());
                for entry in &entries {
                    written.zones.remove(&entry.member.parsed.zone);
                }
                tracing::error!(
                    members = entries.len(),
                    "UPDATE batch not stored, every member answered SERVFAIL: {error}"
                );
                for entry in entries {
                    let answer = update::response(&entry.member.request, UpdateRcode::ServFail);
                    entry.reply.send(answer);
                }
                return;
            }
        };
        let entries = taken.unwrap_or_default();
        let stored = started.elapsed();
        let changed = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Changed { .. }))
            .count();
        cutover_nameserver::metrics::update_batch(changed as u64);
        let zones = changed_zones(&entries, &verdicts);
        for (origin, diff) in &zones {
            self.publish_batch(&mut written, origin, diff, &mut served);
        }
        drop(served);
        let published = started.elapsed();
        drop(written);
        let members = entries.len();
        for (entry, verdict) in entries.into_iter().zip(verdicts) {
            let pending = &entry.member;
            let rcode = match verdict {
                Verdict::Answer(rcode) => rcode,
                Verdict::Changed { diff, reread } => {
                    let over = if reread {
                        " (worked out on a version read inside the write transaction)"
                    } else {
                        ""
                    };
                    tracing::info!(zone = %pending.parsed.zone, client = %pending.client,
                        stored = ?stored, published = ?published, batch = members,
                        "UPDATE by {}: serial {} → {}, {} removed, {} added{over}",
                        pending.who, diff.from, diff.to, diff.removed.len(), diff.added.len());
                    UpdateRcode::NoError
                }
            };
            entry.reply.send(update::response(&pending.request, rcode));
        }
        for (origin, _) in zones {
            self.notifier.changed(&origin);
        }
    }

    /// Works one member out inside the batch's transaction, on the version
    /// the members before it left (the cached zone, when it still is that
    /// version), and leaves the version it made in the cache.
    fn work_out(&self, batch: &mut Batch<'_>, written: &mut Written, pending: &Pending) -> Verdict {
        let origin = &pending.parsed.zone;
        let comment = format!("update by {}", pending.who);
        // Taken out of the cache, so the version written over is changed
        // in place below, not copied (O(zone)).
        let held = written.zones.remove(origin);
        let updated = batch.update_zone(origin, held.as_ref(), &comment, |zone| {
            update::apply(
                zone,
                &pending.parsed,
                pending.key.as_ref(),
                pending.client.ip(),
                &self.policy,
                pending.now,
            )
            .map(|outcome| match outcome {
                Outcome::Unchanged => None,
                Outcome::Changed { diff } => Some(diff),
            })
            .map_err(Box::new)
        });
        let Updated { base, outcome } = match updated {
            Ok(updated) => updated,
            Err(StoreError::ZoneNotFound(_)) => return Verdict::Answer(UpdateRcode::NotAuth),
            Err(error) => {
                // Rolled back to its savepoint; the next member on this zone
                // reads it inside the transaction.
                tracing::error!(zone = %origin, client = %pending.client,
                    "UPDATE by {} not stored: {error}", pending.who);
                return Verdict::Answer(UpdateRcode::ServFail);
            }
        };
        let reread = held
            .as_ref()
            .is_none_or(|held| !Arc::ptr_eq(&held.zone, &base.zone));
        drop(held);
        let (diff, generation) = match outcome {
            Ok(Some(written_diff)) => written_diff,
            Ok(None) => {
                written.zones.insert(origin.clone(), base);
                return Verdict::Answer(UpdateRcode::NoError);
            }
            Err(error) => {
                written.zones.insert(origin.clone(), base);
                tracing::info!(client = %pending.client, zone = %origin,
                    "UPDATE by {} refused: {error}", pending.who);
                return Verdict::Answer(error.rcode());
            }
        };
        // The version written over becomes the new one in place (copied only
        // if a transfer still holds it); the transaction took the same diff.
        let mut next = base.zone;
        match edit::apply_in_place(Arc::make_mut(&mut next), &diff) {
            Ok(()) => {
                written.zones.insert(
                    origin.clone(),
                    Held {
                        generation,
                        zone: next,
                    },
                );
            }
            Err(error) => tracing::error!(zone = %origin,
                "UPDATE stored, but not applied to the cached zone (read again from the store): {error}"),
        }
        Verdict::Changed { diff, reread }
    }

    /// Publishes the version a committed batch left of `origin` (`diff`:
    /// every change the batch made to it), from the cache, or read again
    /// when the cache lost it.
    fn publish_batch(
        &self,
        written: &mut Written,
        origin: &Name,
        diff: &ZoneDiff,
        served: &mut std::collections::BTreeMap<Name, Serial>,
    ) {
        let zone = match written.zones.get(origin) {
            Some(held) => Arc::clone(&held.zone),
            None => match self.store.held_zone(origin) {
                Ok(Some(held)) => {
                    let zone = Arc::clone(&held.zone);
                    written.zones.insert(origin.clone(), held);
                    zone
                }
                Ok(None) => return,
                Err(error) => {
                    // Stored and acknowledged; the reload watcher publishes it.
                    tracing::error!(zone = %origin,
                        "UPDATE stored, but the zone cannot be read to publish it (the watcher will): {error}");
                    return;
                }
            },
        };
        self.publish(origin, &zone, diff, served);
    }
}

/// The zones a batch changed, in the order first changed, each with one
/// diff holding every member's change to it in order: from the serial the
/// first started at to the one the last made (what the served snapshot is
/// patched with: the RRsets it touched, read from the zone they left).
fn changed_zones(entries: &[Entry<Pending>], verdicts: &[Verdict]) -> Vec<(Name, ZoneDiff)> {
    let mut zones: Vec<(Name, ZoneDiff)> = Vec::new();
    for (entry, verdict) in entries.iter().zip(verdicts) {
        let Verdict::Changed { diff, .. } = verdict else {
            continue;
        };
        let origin = &entry.member.parsed.zone;
        match zones.iter_mut().find(|(zone, _)| zone == origin) {
            Some((_, merged)) => merge(merged, diff),
            None => zones.push((origin.clone(), diff.clone())),
        }
    }
    zones
}

/// `next` (which starts where `merged` ends) folded into `merged`.
fn merge(merged: &mut ZoneDiff, next: &ZoneDiff) {
    merged.to = next.to;
    merged.removed.extend(next.removed.iter().cloned());
    merged.added.extend(next.added.iter().cloned());
}
