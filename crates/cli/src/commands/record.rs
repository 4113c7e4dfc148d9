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

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use cutover_nameserver::update::{self, Change as UpdateChange, Outcome, Policy, Rule, Update};
use cutover_store::{Store, StoreError};
use cutover_zone::{zonefile, Name, Rdata, Record, RecordType, Zone, ZoneDiff};

use super::{diff_lines, zone_name};

/// TTL of a new RRset when `--ttl` is not given.
const DEFAULT_TTL: u32 = 3600;

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
    /// TTL (default: the RRset's current TTL, else 3600).
    #[arg(long)]
    pub(crate) ttl: Option<u32>,
    /// Print the diff and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
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

/// Runs one `record` verb against the store.
pub fn run(command: &RecordCommand, store: &Store) -> anyhow::Result<()> {
    match command {
        RecordCommand::Add(change) => {
            let (origin, name, rtype, rdata) = parse_change(change)?;
            let ttl = change.ttl;
            let changes = move |zone: &Zone| -> anyhow::Result<Vec<UpdateChange>> {
                let ttl = ttl
                    .or(zone.get(&name, rtype).map(|s| s.ttl))
                    .unwrap_or(DEFAULT_TTL);
                Ok(vec![UpdateChange::Add(Record {
                    name: name.clone(),
                    ttl,
                    rdata: rdata.clone(),
                })])
            };
            let comment = format!("record add {}", describe(change));
            commit(store, &origin, &comment, change.dry_run, changes)
        }
        RecordCommand::Set(change) => {
            let (origin, name, rtype, rdata) = parse_change(change)?;
            let ttl = change.ttl;
            let changes = move |zone: &Zone| -> anyhow::Result<Vec<UpdateChange>> {
                let ttl = ttl
                    .or(zone.get(&name, rtype).map(|s| s.ttl))
                    .unwrap_or(DEFAULT_TTL);
                Ok(vec![
                    UpdateChange::DeleteRrset {
                        name: name.clone(),
                        rtype,
                    },
                    UpdateChange::Add(Record {
                        name: name.clone(),
                        ttl,
                        rdata: rdata.clone(),
                    }),
                ])
            };
            let comment = format!("record set {}", describe(change));
            commit(store, &origin, &comment, change.dry_run, changes)
        }
        RecordCommand::Delete(removal) => {
            let origin = zone_name(&removal.zone)?;
            let name = owner_name(&removal.name, &origin)?;
            let rtype = record_type(&removal.rtype)?;
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
            let changes = move |zone: &Zone| -> anyhow::Result<Vec<UpdateChange>> {
                let existing = zone.get(&name, rtype);
                match &rdata {
                    Some(rdata) => {
                        if !existing.is_some_and(|set| set.contains(rdata)) {
                            return Err(anyhow!(
                                "{name} has no {rtype} record with data {}",
                                zonefile::record_to_text(&Record {
                                    name: name.clone(),
                                    ttl: 0,
                                    rdata: rdata.clone()
                                })
                            ));
                        }
                        Ok(vec![UpdateChange::DeleteRecord {
                            name: name.clone(),
                            rdata: rdata.clone(),
                        }])
                    }
                    None => {
                        if existing.is_none() {
                            return Err(anyhow!("{name} has no {rtype} records"));
                        }
                        Ok(vec![UpdateChange::DeleteRrset {
                            name: name.clone(),
                            rtype,
                        }])
                    }
                }
            };
            commit(store, &origin, comment.trim_end(), removal.dry_run, changes)
        }
    }
}

/// The address the local operator's updates are attributed to.
const OPERATOR: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The local operator's policy: the whole zone, no caps.
fn operator_policy(origin: &Name) -> Policy {
    Policy {
        keys: Vec::new(),
        unsigned: vec![(
            update::Prefix::from_str("127.0.0.1/32").expect("a valid prefix"),
            Rule::whole_zone(origin.clone()),
        )],
        max_records: usize::MAX,
        max_rrset: usize::MAX,
    }
}

/// Builds the UPDATE from the current zone, applies it through
/// `update::apply` and writes it (or, dry, previews it), and prints the
/// serial change and the diff. The write works the change out inside the
/// store's write transaction (`Store::update_zone`), so a concurrent writer
/// (`cutover serve` taking UPDATEs) never makes it fail.
fn commit(
    store: &Store,
    origin: &Name,
    comment: &str,
    dry_run: bool,
    changes: impl Fn(&Zone) -> anyhow::Result<Vec<UpdateChange>>,
) -> anyhow::Result<()> {
    let policy = operator_policy(origin);
    let now = u32::try_from(crate::primary::wall_clock()).unwrap_or(u32::MAX);
    let work_out = |zone: &Zone| -> anyhow::Result<Option<ZoneDiff>> {
        let request = Update {
            id: 0,
            zone: origin.clone(),
            prerequisites: Vec::new(),
            changes: changes(zone)?,
        };
        let outcome = update::apply(zone, &request, None, OPERATOR, &policy, now)
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
        println!("{origin}: nothing to change, serial stays {serial}");
        return Ok(());
    };
    println!("{origin}: serial {} → {}", diff.from, diff.to);
    print!("{}", diff_lines(&diff));
    if dry_run {
        println!("dry run: nothing changed");
    }
    Ok(())
}

/// Reads the zone, owner, type and data of an add or set.
fn parse_change(change: &Change) -> anyhow::Result<(Name, Name, RecordType, Rdata)> {
    let origin = zone_name(&change.zone)?;
    let name = owner_name(&change.name, &origin)?;
    let rtype = record_type(&change.rtype)?;
    let rdata = record_data(rtype, &change.data, &origin)?;
    Ok((origin, name, rtype, rdata))
}

/// The command's records in words, for the journal comment.
fn describe(change: &Change) -> String {
    format!("{} {} {}", change.name, change.rtype, change.data.join(" "))
}

/// An owner name: "@" is the apex, a name ending in "." is absolute, any
/// other is relative to the zone.
fn owner_name(text: &str, origin: &Name) -> anyhow::Result<Name> {
    if text == "@" {
        return Ok(origin.clone());
    }
    let name = Name::from_str(text).map_err(|e| anyhow!("invalid name {text:?}: {e}"))?;
    let name = if name.is_fqdn() {
        name
    } else {
        name.append_domain(origin)
            .map_err(|e| anyhow!("invalid name {text:?} in {origin}: {e}"))?
    };
    if !origin.zone_of(&name) {
        return Err(anyhow!("{name} is outside the zone {origin}"));
    }
    Ok(name)
}

/// A record type by mnemonic (or TYPEnnn).
fn record_type(text: &str) -> anyhow::Result<RecordType> {
    let upper = text.to_ascii_uppercase();
    if let Some(code) = upper
        .strip_prefix("TYPE")
        .and_then(|n| n.parse::<u16>().ok())
    {
        return Ok(RecordType::from(code));
    }
    if upper == "DNAME" {
        return Ok(RecordType::from(cutover_zone::rdata::DNAME));
    }
    match RecordType::from_str(&upper) {
        Ok(RecordType::Unknown(_)) | Err(_) => Err(anyhow!("unknown record type {text:?}")),
        Ok(rtype) => Ok(rtype),
    }
}

/// Record data from its zone-file words.
fn record_data(rtype: RecordType, words: &[String], origin: &Name) -> anyhow::Result<Rdata> {
    let text = words.join(" ");
    zonefile::rdata_from_text(rtype, &text, origin)
        .map_err(|e| anyhow!("invalid {rtype} data {text:?}: {e}"))
}
