//! `cutover zone …`: bring zones into the store, look at them and their
//! history, and take them out again.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use cutover_store::Store;
use cutover_zone::{zonefile, Serial, ZoneDiff};

use super::{diff_lines, zone_name, Unconfirmed};

/// The `zone` verbs.
#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Import a zone file (RFC 1035 master format) into the store.
    Import {
        /// The zone file.
        file: PathBuf,
        /// The origin, when the file has no $ORIGIN.
        #[arg(long)]
        origin: Option<String>,
        /// Replace a zone already in the store (shows the diff; needs --yes).
        #[arg(long)]
        replace: bool,
        /// Confirm the replacement.
        #[arg(long)]
        yes: bool,
        /// Show what a replacement would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a zone in zone-file form.
    Export {
        /// The zone.
        zone: String,
        /// A past version instead of the current one.
        #[arg(long)]
        serial: Option<u32>,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List the zones in the store.
    List,
    /// Show a zone's SOA and its version history.
    Show {
        /// The zone.
        zone: String,
    },
    /// Show what changed between two versions of a zone.
    Diff {
        /// The zone.
        zone: String,
        /// The older serial.
        from: u32,
        /// The newer serial.
        to: u32,
    },
    /// Delete a zone and its history from the store.
    Delete {
        /// The zone.
        zone: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs one `zone` verb against the store.
pub fn run(command: &ZoneCommand, store: &Store) -> anyhow::Result<()> {
    match command {
        ZoneCommand::Import {
            file,
            origin,
            replace,
            yes,
            dry_run,
        } => import(store, file, origin.as_deref(), *replace, *yes, *dry_run),
        ZoneCommand::Export {
            zone,
            serial,
            output,
        } => export(store, zone, *serial, output.as_ref()),
        ZoneCommand::List => list(store),
        ZoneCommand::Show { zone } => show(store, zone),
        ZoneCommand::Diff { zone, from, to } => {
            let origin = zone_name(zone)?;
            let diff = store.diff(&origin, Serial(*from), Serial(*to))?;
            print!("{}", header(&origin.to_string(), &diff));
            print!("{}", diff_lines(&diff));
            Ok(())
        }
        ZoneCommand::Delete { zone, yes } => delete(store, zone, *yes),
    }
}

/// `zone import`.
fn import(
    store: &Store,
    file: &Path,
    origin: Option<&str>,
    replace: bool,
    yes: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    let origin = origin.map(zone_name).transpose()?;
    let parsed = zonefile::parse_file(file, origin.as_ref())?;
    for warning in &parsed.warnings {
        eprintln!("warning: {warning}");
    }
    let zone = parsed.zone;
    let name = zone.origin().clone();
    let comment = format!("import {}", file.display());
    let Some(current) = store.zone(&name)? else {
        if dry_run {
            println!(
                "{name}: would import {} records (dry run, nothing changed)",
                zone.record_count()
            );
            return Ok(());
        }
        store.create_zone(&zone, &comment)?;
        println!(
            "{name}: imported {} records, serial {}",
            zone.record_count(),
            zone.serial().unwrap_or(Serial(0))
        );
        return Ok(());
    };
    if !replace {
        bail!("zone {name} is already in the store (use --replace to re-import it)");
    }
    let preview = ZoneDiff::between(&current, &zone);
    if dry_run || !yes {
        print!("{}", header(&name.to_string(), &preview));
        print!("{}", diff_lines(&preview));
        if dry_run {
            println!("dry run: nothing changed");
            return Ok(());
        }
        return Err(Unconfirmed(format!(
            "replacing {name} changes {} records",
            preview.removed.len() + preview.added.len()
        ))
        .into());
    }
    let diff = store.replace_zone(&zone, &comment)?;
    if diff.is_empty() {
        println!("{name}: unchanged at serial {}", diff.to);
    } else {
        println!("{name}: serial {} → {}", diff.from, diff.to);
        print!("{}", diff_lines(&diff));
    }
    Ok(())
}

/// `zone export`.
fn export(
    store: &Store,
    zone: &str,
    serial: Option<u32>,
    output: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let origin = zone_name(zone)?;
    let zone = match serial {
        Some(serial) => store.zone_at(&origin, Serial(serial))?,
        None => store
            .zone(&origin)?
            .ok_or_else(|| anyhow::anyhow!("zone {origin} is not in the store"))?,
    };
    let text = zonefile::write(&zone);
    match output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// `zone list`.
fn list(store: &Store) -> anyhow::Result<()> {
    let zones = store.zones()?;
    println!("{:<40} {:>10} {:>9}  UPDATED", "ZONE", "SERIAL", "RECORDS");
    for info in zones {
        println!(
            "{:<40} {:>10} {:>9}  {}",
            info.origin.to_string(),
            info.serial.to_string(),
            info.records,
            info.updated_at
        );
    }
    Ok(())
}

/// `zone show`.
fn show(store: &Store, zone: &str) -> anyhow::Result<()> {
    let origin = zone_name(zone)?;
    let zone = store
        .zone(&origin)?
        .ok_or_else(|| anyhow::anyhow!("zone {origin} is not in the store"))?;
    println!("zone:    {origin}");
    if let Some(soa) = zone.soa() {
        println!("serial:  {}", soa.serial);
        println!("primary: {}", soa.mname);
        println!("contact: {}", soa.rname);
        println!(
            "timers:  refresh {} retry {} expire {} minimum {}",
            soa.refresh, soa.retry, soa.expire, soa.minimum
        );
    }
    println!("records: {}", zone.record_count());
    println!("versions:");
    for version in store.versions(&origin)? {
        let change = match version.from {
            Some(from) => format!("{from} → {}", version.serial),
            None => format!("created at {}", version.serial),
        };
        println!(
            "  {}  {change}  +{} -{}  {}",
            version.at, version.added, version.removed, version.comment
        );
    }
    Ok(())
}

/// `zone delete`.
fn delete(store: &Store, zone: &str, yes: bool) -> anyhow::Result<()> {
    let origin = zone_name(zone)?;
    let info = store
        .zones()?
        .into_iter()
        .find(|info| info.origin == origin)
        .ok_or_else(|| anyhow::anyhow!("zone {origin} is not in the store"))?;
    if !yes {
        return Err(Unconfirmed(format!(
            "this would delete zone {origin} (serial {}, {} records) and its whole history",
            info.serial, info.records
        ))
        .into());
    }
    store.delete_zone(&origin)?;
    println!("{origin}: deleted ({} records)", info.records);
    Ok(())
}

/// The first lines of a printed diff.
fn header(origin: &str, diff: &ZoneDiff) -> String {
    format!(
        "--- {origin} serial {}\n+++ {origin} serial {}\n",
        diff.from, diff.to
    )
}
