//! `cutover record …`: change single RRsets. Every change is an RFC 2136
//! UPDATE built here and applied by the same path as a network UPDATE, so
//! there is one way a zone changes.
//!
//! ```text
//!  record add|set|delete ──▶ Update { changes } ──update::apply (local operator:
//!      the whole zone)──▶ ZoneDiff ──Store::update_zone (worked out and written in one
//!      fsynced write transaction, on the version written over)──▶ serial bumped
//!                                     └─ --dry-run: printed, not applied
//! ```
//!
//! A running `cutover serve` sees the change through the store's generation
//! and publishes it (and sends its NOTIFYs).

use anyhow::anyhow;
use clap::{Args, Subcommand};
use cutover_nameserver::update::operator::{self, Action, Edit};
use cutover_nameserver::update::Outcome;
use cutover_store::{Store, StoreError};
use cutover_zone::{zonefile, Name, Rdata, RecordType, Zone, ZoneDiff};

use super::common::{diff_lines, zone_name};

/// The `record` verbs.
#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Add one record (to the RRset of its name and type).
    Add(Change),
    /// Replace the whole RRset of a name and type with one record.
    Set(Change),
    /// Delete the RRset of a name and type, or only the record with DATA.
    Delete(Removal),
}

/// Arguments of `record add` and `record set`.
#[derive(Debug, Args)]
pub struct Change {
    /// The zone.
    pub(crate) zone: String,
    /// The owner, relative to the zone or absolute ("@" is the apex).
    pub(crate) name: String,
    /// The record type (A, AAAA, MX, TXT…).
    pub(crate) rtype: String,
    /// The record data, in zone-file form.
    #[arg(required = true, num_args = 1..)]
    pub(crate) data: Vec<String>,
    /// TTL: seconds or with units, e.g. 3600, 1h, 1h30m, 1d, 1W2D (default:
    /// the RRset's current TTL, else 3600).
    #[arg(long, value_name = "TTL", value_parser = cutover_zone::duration::ttl)]
    pub(crate) ttl: Option<u32>,
    /// Print the diff and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Swap a CNAME for this data, or data for this CNAME, in one change
    /// (a name with a CNAME holds no other data).
    #[arg(long)]
    pub(crate) replace: bool,
}

/// Arguments of `record delete`.
#[derive(Debug, Args)]
pub struct Removal {
    /// The zone.
    pub(crate) zone: String,
    /// The owner, relative to the zone or absolute.
    pub(crate) name: String,
    /// The record type.
    pub(crate) rtype: String,
    /// Only the record with this data (default: the whole RRset).
    #[arg(num_args = 0..)]
    pub(crate) data: Vec<String>,
    /// Print the diff and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// Runs one `record` verb against the store; `config` (serve's, when one
/// is found) says which zones are secondaries, whose records come from
/// their primary only.
pub fn run(
    command: &RecordCommand,
    store: &Store,
    config: Option<&cutover_server::config::Config>,
) -> anyhow::Result<()> {
    let (origin, edit, comment, dry_run) = match command {
        RecordCommand::Add(change) | RecordCommand::Set(change) => {
            let (origin, name, rtype, rdata) = parse_change(change)?;
            let (action, verb) = match command {
                RecordCommand::Add(_) => (Action::Add, "add"),
                _ => (Action::Set, "set"),
            };
            let edit = Edit {
                action,
                name,
                rtype,
                rdata: Some(rdata),
                ttl: change.ttl,
                replace: change.replace,
            };
            let comment = format!("record {verb} {}", describe(change));
            (origin, edit, comment, change.dry_run)
        }
        RecordCommand::Delete(removal) => {
            let origin = zone_name(&removal.zone)?;
            let name = operator::owner_name(&removal.name, &origin)?;
            let rtype = operator::record_type(&removal.rtype)?;
            let rdata = match removal.data.is_empty() {
                true => None,
                false => Some(record_data(rtype, &removal.data, &origin)?),
            };
            let comment = format!(
                "record delete {} {} {}",
                removal.name,
                removal.rtype,
                removal.data.join(" ")
            );
            let edit = Edit {
                action: Action::Delete,
                name,
                rtype,
                rdata,
                ttl: None,
                replace: false,
            };
            (origin, edit, comment.trim_end().to_owned(), removal.dry_run)
        }
    };
    if let Some(zone) =
        config.and_then(|c| c.zone.iter().find(|z| z.name == origin && z.is_secondary()))
    {
        let primaries: Vec<String> = zone.primary.iter().map(ToString::to_string).collect();
        return Err(anyhow!(
            "zone {origin} is a secondary zone here (config {}: primary = {}): its records come \
             from its primary by zone transfer, and a change made here would be replaced by the \
             next one; change it on the primary",
            config.map_or_else(String::new, |c| c.source.display().to_string()),
            primaries.join(", ")
        ));
    }
    commit(store, &origin, &comment, dry_run, &edit)
}

/// Applies the edit to the current zone through `update::operator` (the
/// RFC 2136 path, strict: a change its rules would drop is an error) and
/// writes it (or, dry, previews it), and prints the serial change and the
/// diff. The write works the change out inside the store's write
/// transaction (`Store::update_zone`), so a concurrent writer (`cutover
/// serve` taking UPDATEs) never makes it fail.
fn commit(
    store: &Store,
    origin: &Name,
    comment: &str,
    dry_run: bool,
    edit: &Edit,
) -> anyhow::Result<()> {
    let now = u32::try_from(cutover_server::primary::wall_clock()).unwrap_or(u32::MAX);
    let work_out = |zone: &Zone| -> anyhow::Result<Option<ZoneDiff>> {
        let outcome = operator::apply(zone, std::slice::from_ref(edit), now)
            .map_err(|e| anyhow!("{origin}: {e}"))?;
        Ok(match outcome {
            Outcome::Unchanged => None,
            Outcome::Changed { diff, .. } => Some(diff),
        })
    };
    let (diff, serial) = if dry_run {
        let zone = store
            .zone(origin)?
            .ok_or_else(|| StoreError::ZoneNotFound(origin.clone()))?;
        (work_out(&zone)?, zone.serial())
    } else {
        let updated = store.update_zone(origin, None, comment, work_out)?;
        let serial = updated.base.zone.serial();
        (updated.outcome?.map(|(diff, _)| diff), serial)
    };
    let Some(diff) = diff else {
        let serial = serial.unwrap_or(cutover_zone::Serial(0));
        println!(
            "{origin}: {} {} already holds exactly this; nothing written, serial stays {serial}",
            edit.name, edit.rtype
        );
        return Ok(());
    };
    if dry_run {
        println!("{origin}: serial would go {} → {}", diff.from, diff.to);
    } else {
        println!("{origin}: serial {} → {}", diff.from, diff.to);
    }
    print!("{}", diff_lines(&diff));
    if dry_run {
        println!("dry run: nothing changed");
    }
    Ok(())
}

/// Reads the zone, owner, type and data of an add or set.
fn parse_change(change: &Change) -> anyhow::Result<(Name, Name, RecordType, Rdata)> {
    let origin = zone_name(&change.zone)?;
    let name = operator::owner_name(&change.name, &origin)?;
    let rtype = operator::record_type(&change.rtype)?;
    let rdata = record_data(rtype, &change.data, &origin)?;
    Ok((origin, name, rtype, rdata))
}

/// The command's records in words, for the journal comment.
fn describe(change: &Change) -> String {
    format!("{} {} {}", change.name, change.rtype, change.data.join(" "))
}

/// Record data from its zone-file words.
fn record_data(rtype: RecordType, words: &[String], origin: &Name) -> anyhow::Result<Rdata> {
    let text = words.join(" ");
    zonefile::rdata_from_text(rtype, &text, origin)
        .map_err(|e| anyhow!("invalid {rtype} data {text:?}: {e}"))
}
