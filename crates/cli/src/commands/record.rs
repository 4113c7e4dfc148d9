//! `cutover record …`: change single RRsets. Every change goes through
//! [`Store::edit`], so it is checked, bumps the serial and is journalled.

use std::str::FromStr;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use cutover_store::Store;
use cutover_zone::{zonefile, Name, Rdata, Record, RecordType, Rrset, Zone, ZoneDiff};

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
    zone: String,
    /// The owner, relative to the zone or absolute ("@" is the apex).
    name: String,
    /// The record type (A, AAAA, MX, TXT…).
    rtype: String,
    /// The record data, in zone-file form.
    #[arg(required = true, num_args = 1..)]
    data: Vec<String>,
    /// TTL (default: the RRset's current TTL, else 3600).
    #[arg(long)]
    ttl: Option<u32>,
    /// Print the diff and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Arguments of `record delete`.
#[derive(Debug, Args)]
pub struct Removal {
    /// The zone.
    zone: String,
    /// The owner, relative to the zone or absolute.
    name: String,
    /// The record type.
    rtype: String,
    /// Only the record with this data (default: the whole RRset).
    #[arg(num_args = 0..)]
    data: Vec<String>,
    /// Print the diff and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Runs one `record` verb against the store.
pub fn run(command: &RecordCommand, store: &Store) -> anyhow::Result<()> {
    match command {
        RecordCommand::Add(change) => {
            let (origin, name, rtype, rdata) = parse_change(change)?;
            let ttl = change.ttl;
            let edit = move |zone: &mut Zone| -> anyhow::Result<()> {
                let existing = zone.get(&name, rtype).cloned();
                let mut rrset = existing.clone().unwrap_or_default();
                rrset.ttl = ttl.or(existing.map(|s| s.ttl)).unwrap_or(DEFAULT_TTL);
                rrset.insert(rdata.clone());
                zone.set_rrset(&name, rtype, rrset)?;
                Ok(())
            };
            commit(
                store,
                &origin,
                &format!("record add {}", describe(change)),
                change.dry_run,
                edit,
            )
        }
        RecordCommand::Set(change) => {
            let (origin, name, rtype, rdata) = parse_change(change)?;
            let ttl = change.ttl;
            let edit = move |zone: &mut Zone| -> anyhow::Result<()> {
                let ttl = ttl
                    .or(zone.get(&name, rtype).map(|s| s.ttl))
                    .unwrap_or(DEFAULT_TTL);
                zone.set_rrset(&name, rtype, Rrset::new(ttl, rdata.clone()))?;
                Ok(())
            };
            commit(
                store,
                &origin,
                &format!("record set {}", describe(change)),
                change.dry_run,
                edit,
            )
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
            let edit = move |zone: &mut Zone| -> anyhow::Result<()> {
                match &rdata {
                    Some(rdata) => {
                        if !zone.remove(&name, rdata) {
                            return Err(anyhow!(
                                "{name} has no {rtype} record with data {}",
                                zonefile::record_to_text(&Record {
                                    name: name.clone(),
                                    ttl: 0,
                                    rdata: rdata.clone()
                                })
                            ));
                        }
                    }
                    None => {
                        if zone.get(&name, rtype).is_none() {
                            return Err(anyhow!("{name} has no {rtype} records"));
                        }
                        zone.set_rrset(&name, rtype, Rrset::default())?;
                    }
                }
                Ok(())
            };
            commit(store, &origin, comment.trim_end(), removal.dry_run, edit)
        }
    }
}

/// Applies (or, dry, previews) an edit and prints the serial change and diff.
fn commit(
    store: &Store,
    origin: &Name,
    comment: &str,
    dry_run: bool,
    edit: impl FnOnce(&mut Zone) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let edit = |zone: &mut Zone| edit(zone).map_err(|e| format!("{e:#}"));
    let diff: ZoneDiff = if dry_run {
        store.preview_edit(origin, edit)?
    } else {
        store.edit(origin, comment, edit)?
    };
    if diff.is_empty() {
        println!("{origin}: nothing to change, serial stays {}", diff.to);
        return Ok(());
    }
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
