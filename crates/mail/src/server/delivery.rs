//! The delivery side of the relay: each round sweeps the queue (expiry,
//! delay warnings), hands the due batches to the courier (one task per
//! destination), records the outcomes and writes them back to the spool.
//!
//! ```text
//!  sweep ─► DSNs spooled ─► due batches ─► spool files found (one blocking
//!        trip per batch) ─► Courier::deliver (per destination; each file read
//!        and sent 64 KiB at a time) ─► Queue::record ─► failure DSNs
//!        ─► persist: statuses rewritten, finished messages removed (one dir fsync)
//! ```

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::task::JoinSet;

use super::{blocking, lock, Shared};
use crate::courier::{Content, Courier, Parcel};
use crate::dsn::{self, ReportKind};
use crate::queue::{Item, Outcome, Reports};
use crate::spool::{SpoolError, Spooled};

/// Writes the statuses of `ids` to the spool, removing finished messages.
pub(super) async fn persist<C>(
    shared: &Arc<Shared<C>>,
    ids: Vec<String>,
) -> Result<(), SpoolError> {
    let mut writes = Vec::new();
    {
        let queue = lock(&shared.queue);
        for id in ids {
            match queue.message(&id) {
                Some(spooled) if spooled.is_finished() => writes.push((id, None)),
                Some(spooled) => writes.push((id, Some(spooled.clone()))),
                None => {}
            }
        }
    }
    let spool = shared.spool.clone();
    // Finished messages leave the queue only once their files are gone, so
    // that the listing never hides a message still on disk.
    let removed = blocking(move || {
        let mut removed = Vec::new();
        for (id, spooled) in writes {
            match spooled {
                Some(spooled) => spool.update(&spooled)?,
                None => removed.push(id),
            }
        }
        // One directory fsync for all the finished messages of a round.
        spool.remove_all(&removed)?;
        Ok(removed)
    })
    .await?;
    let mut queue = lock(&shared.queue);
    for id in removed {
        queue.forget(&id);
    }
    Ok(())
}

/// Spools the DSNs for `reports`; returns how many recipients they cover.
async fn send_reports<C>(shared: &Arc<Shared<C>>, reports: Reports) -> Result<(), SpoolError> {
    let now = SystemTime::now();
    let mut wanted = Vec::new();
    {
        let queue = lock(&shared.queue);
        for (kind, list) in [
            (ReportKind::Failed, reports.failed),
            (ReportKind::Delayed, reports.delayed),
        ] {
            for (id, recipients) in list {
                if let Some(spooled) = queue.message(&id) {
                    wanted.push((kind, spooled.clone(), recipients));
                }
            }
        }
    }
    for (kind, spooled, recipients) in wanted {
        if kind == ReportKind::Failed {
            shared
                .bounced
                .fetch_add(recipients.len() as u64, Ordering::Relaxed);
        }
        let spool = shared.spool.clone();
        let hostname = shared.policy.hostname.clone();
        let stored = blocking(move || {
            // Never more of the message than a report returns.
            let content = spool.head(&spooled.id, dsn::RETURNED + 1)?;
            let whole = content.len() <= dsn::RETURNED;
            match dsn::report(&spooled, &content, whole, &recipients, kind, &hostname, now) {
                Some(report) => spool.store(&report, now).map(Some),
                None => Ok(None),
            }
        })
        .await?;
        if let Some(report) = stored {
            lock(&shared.queue).insert(report);
        }
    }
    Ok(())
}

/// Finds the spool files of a batch's messages in one trip to the blocking
/// pool; returns the items found and their parcels, in order. Contents are
/// not read here: the courier reads each file as it sends it.
async fn parcels_of<C>(
    shared: &Arc<Shared<C>>,
    wanted: Vec<(Item, Spooled)>,
) -> (Vec<Item>, Vec<Parcel>) {
    let spool = shared.spool.clone();
    let found = blocking(move || {
        Ok(wanted
            .into_iter()
            .map(|(item, spooled)| {
                let file = spool.content_file(&item.id);
                (item, spooled, file)
            })
            .collect::<Vec<_>>())
    })
    .await
    .unwrap_or_default();
    let mut items = Vec::new();
    let mut parcels = Vec::new();
    for (item, spooled, file) in found {
        let (path, start) = match file {
            Ok(file) => file,
            Err(error) => {
                tracing::error!(%error, id = %item.id, "reading spooled content");
                continue;
            }
        };
        let mut envelope = spooled.envelope.clone();
        envelope.recipients = item
            .recipients
            .iter()
            .map(|&index| spooled.envelope.recipients[index].clone())
            .collect();
        parcels.push(Parcel {
            envelope,
            content: Content::File { path, start },
        });
        items.push(item);
    }
    (items, parcels)
}

/// One round: sweep, deliver everything due, record. Returns whether any
/// delivery was attempted.
pub(super) async fn delivery_round<C: Courier>(shared: &Arc<Shared<C>>) -> bool {
    let now = SystemTime::now();
    let (reports, changed) = lock(&shared.queue).sweep(now);
    if let Err(error) = send_reports(shared, reports).await {
        tracing::error!(%error, "spooling delay/expiry reports");
    }
    if let Err(error) = persist(shared, changed).await {
        tracing::error!(%error, "persisting swept statuses");
    }
    let batches = lock(&shared.queue).due(now);
    if batches.is_empty() {
        return false;
    }
    let mut tasks = JoinSet::new();
    for batch in batches {
        let wanted: Vec<_> = {
            let queue = lock(&shared.queue);
            batch
                .items
                .into_iter()
                .filter_map(|item| queue.message(&item.id).cloned().map(|s| (item, s)))
                .collect()
        };
        let (items, parcels) = parcels_of(shared, wanted).await;
        let shared = shared.clone();
        let destination = batch.destination;
        tasks.spawn(async move {
            let outcomes = shared.courier.deliver(&destination, &parcels).await;
            (items, outcomes)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let Ok((items, outcomes)) = joined else {
            continue;
        };
        let now = SystemTime::now();
        let mut reports = Reports::default();
        let mut changed = Vec::new();
        for (item, outcomes) in items.into_iter().zip(outcomes) {
            for outcome in &outcomes {
                let counter = match outcome {
                    Outcome::Delivered => &shared.delivered,
                    Outcome::Temporary(_) => &shared.deferred,
                    Outcome::Permanent(_) => continue,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            let pairs: Vec<(usize, Outcome)> =
                item.recipients.iter().copied().zip(outcomes).collect();
            let recorded = lock(&shared.queue).record(&item.id, &pairs, now, fastrand::f64());
            reports.failed.extend(recorded.failed);
            changed.push(item.id);
        }
        if let Err(error) = send_reports(shared, reports).await {
            tracing::error!(%error, "spooling failure reports");
        }
        if let Err(error) = persist(shared, changed).await {
            tracing::error!(%error, "persisting delivery outcomes");
        }
    }
    true
}
