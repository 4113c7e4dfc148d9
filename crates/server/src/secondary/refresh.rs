//! One refresh of one secondary zone: ask its primaries in order until
//! one answers, take what changed, check it, store it.
//!
//! ```text
//!  nothing stored ──AXFR──▶ Zone ──────────────────────────────┐
//!  stored at serial s ──SOA query──▶ primary at p               │
//!     p not newer than s ──▶ UpToDate                           │
//!     p newer ──IXFR from s──▶ Incremental(steps) ── applied to a copy of s ──┤
//!                          └─▶ Full(zone) (AXFR form) ──────────┤
//!                          └─▶ refused (e.g. NOTIMP) ──AXFR──▶ Zone ──┤
//!            ZoneSnapshot::check (what serving needs) ──▶ Store::store_transferred (one transaction)
//! ```
//!
//! Anything that fails (a socket, a TSIG, a cut transfer, a check, the
//! store) stores nothing: the version served stays, and the error says why.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use cutover_nameserver::transfer::{
    fetch_axfr, fetch_ixfr, soa_serial, IxfrAnswer, Limits, TransferError,
};
use cutover_nameserver::ZoneSnapshot;
use cutover_store::{Store, Transferred};
use cutover_zone::{edit, Name, Record, RecordType, Serial, Zone};

use super::handle::Upstream;

/// What a successful refresh did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refreshed {
    /// The primary's serial is not newer than the one stored.
    UpToDate {
        /// The serial stored.
        ours: Serial,
        /// The primary's.
        theirs: Serial,
    },
    /// A new version was stored.
    Stored {
        /// The serial before (none when the zone was not stored).
        from: Option<Serial>,
        /// The serial stored.
        to: Serial,
        /// How: "AXFR", "IXFR (incremental, N steps)", "IXFR (full)"…
        how: String,
        /// The primary it came from.
        primary: SocketAddr,
    },
}

/// The bounds on one transfer from a primary.
fn limits() -> Limits {
    Limits {
        idle: std::time::Duration::from_secs(10),
        ..Limits::default()
    }
}

/// Refreshes `origin`, stored at `current` (none yet: `None`), from the
/// first of its primaries that answers; the error holds every primary's
/// reason.
pub fn refresh(
    store: &Store,
    origin: &Name,
    current: Option<&Arc<Zone>>,
    upstream: &Upstream,
) -> anyhow::Result<Refreshed> {
    let mut reasons = Vec::new();
    for &primary in &upstream.primaries {
        match refresh_from(store, origin, current, upstream, primary) {
            Ok(done) => return Ok(done),
            Err(error) => reasons.push(format!("from {primary}: {error:#}")),
        }
    }
    anyhow::bail!("{}", reasons.join("; "))
}

/// One refresh from one primary.
fn refresh_from(
    store: &Store,
    origin: &Name,
    current: Option<&Arc<Zone>>,
    upstream: &Upstream,
    primary: SocketAddr,
) -> anyhow::Result<Refreshed> {
    let key = upstream.key.clone();
    let Some(current) = current else {
        let transfer = fetch_axfr(primary, origin, key, limits()).map_err(said("AXFR"))?;
        return keep(store, origin, None, Whole(transfer.zone), "AXFR", primary);
    };
    let ours = current.serial().unwrap_or(Serial(0));
    let theirs = soa_serial(primary, origin, key.clone(), limits()).map_err(said("SOA query"))?;
    if !theirs.is_newer_than(ours) {
        return Ok(Refreshed::UpToDate { ours, theirs });
    }
    let soa = soa_record(current).context("the stored zone has no SOA")?;
    let answer = match fetch_ixfr(primary, origin, &soa, key.clone(), limits()) {
        Ok(transfer) => transfer.answer,
        Err(TransferError::Refused { rcode, .. }) => {
            tracing::info!(zone = %origin, %primary, "IXFR refused ({rcode}): AXFR instead");
            let transfer = fetch_axfr(primary, origin, key, limits()).map_err(said("AXFR"))?;
            return keep(
                store,
                origin,
                Some(current),
                Whole(transfer.zone),
                "AXFR (IXFR refused)",
                primary,
            );
        }
        Err(error) => return Err(said("IXFR")(error)),
    };
    match answer {
        IxfrAnswer::UpToDate { serial } => Ok(Refreshed::UpToDate {
            ours,
            theirs: serial,
        }),
        IxfrAnswer::Full(zone) => keep(
            store,
            origin,
            Some(current),
            Whole(zone),
            "IXFR (full zone)",
            primary,
        ),
        IxfrAnswer::Incremental { steps, .. } => {
            let how = format!("IXFR (incremental, {} steps)", steps.len());
            keep(store, origin, Some(current), Steps(steps), &how, primary)
        }
    }
}

/// A transfer's error as one line under `what` (its Display already
/// holds what the socket said: no chain of sources repeated).
fn said(what: &'static str) -> impl Fn(TransferError) -> anyhow::Error {
    move |error| anyhow::anyhow!("{what}: {error}")
}

/// What was received, in the form it is stored in.
enum Received {
    /// A whole zone.
    Whole(Zone),
    /// IXFR steps from the stored version.
    Steps(Vec<cutover_zone::ZoneDiff>),
}
use Received::{Steps, Whole};

/// Checks what was received as it would be served, and stores it in one
/// transaction.
fn keep(
    store: &Store,
    origin: &Name,
    current: Option<&Arc<Zone>>,
    received: Received,
    how: &str,
    primary: SocketAddr,
) -> anyhow::Result<Refreshed> {
    let next = match &received {
        Whole(zone) => std::borrow::Cow::Borrowed(zone),
        Steps(steps) => {
            let mut next = current
                .map(|zone| Zone::clone(zone))
                .context("IXFR steps without a stored zone")?;
            for step in steps {
                edit::apply_in_place(&mut next, step).with_context(|| {
                    format!(
                        "the IXFR step {} → {} does not apply to the stored version",
                        step.from, step.to
                    )
                })?;
            }
            std::borrow::Cow::Owned(next)
        }
    };
    ZoneSnapshot::build(&next)
        .check()
        .context("the transferred zone fails the checks a served zone must pass")?;
    let from = current.and_then(|zone| zone.serial());
    let to = next.serial().unwrap_or(Serial(0));
    let comment = match from {
        Some(from) => format!("{how} from {primary}: serial {from} → {to}"),
        None => format!("{how} from {primary}: serial {to}"),
    };
    let transferred = match &received {
        Whole(zone) => Transferred::Whole(zone),
        Steps(steps) => Transferred::Steps(steps),
    };
    store
        .store_transferred(origin, transferred, &comment)
        .context("not stored")?;
    Ok(Refreshed::Stored {
        from,
        to,
        how: how.to_string(),
        primary,
    })
}

/// The apex SOA of `zone` as a record.
pub(super) fn soa_record(zone: &Zone) -> Option<Record> {
    let set = zone.get(zone.origin(), RecordType::SOA)?;
    Some(Record {
        name: zone.origin().clone(),
        ttl: set.ttl,
        rdata: set.rdatas().first()?.clone(),
    })
}
