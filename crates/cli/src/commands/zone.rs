//! `cutover zone …`: bring zones into the store (from a zone file, or by
//! AXFR from the zone's current server), look at them and their history,
//! and take them out again.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Subcommand;
use cutover_nameserver::transfer::{fetch_axfr, Limits};
use cutover_nameserver::tsig::Key;
use cutover_store::Store;
use cutover_zone::{zonefile, Name, Serial, Zone, ZoneDiff};

use super::common::{diff_lines, zone_name, Unconfirmed};
use super::table::Table;

/// The `zone` verbs.
#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Import a zone file (RFC 1035 master format), or with --axfr a zone
    /// transferred from its current server, into the store.
    Import {
        /// The zone file; with --axfr, the zone's name.
        #[arg(value_name = "FILE|ZONE")]
        source: String,
        /// Transfer the zone by AXFR from this server (address or host name,
        /// port 53 unless given) instead of reading a file.
        #[arg(long, value_name = "SERVER[:PORT]")]
        axfr: Option<String>,
        /// Sign the transfer with the TSIG key in this file (BIND or Knot format).
        #[arg(
            long,
            value_name = "FILE",
            requires = "axfr",
            conflicts_with = "key_name"
        )]
        key: Option<PathBuf>,
        /// Sign the transfer with this key from the config's [[key]] list.
        #[arg(long, value_name = "NAME", requires = "axfr")]
        key_name: Option<String>,
        /// Refuse a transfer of more records than this.
        #[arg(long, value_name = "N", default_value_t = Limits::default().max_records, requires = "axfr")]
        max_records: usize,
        /// Refuse a transfer of more bytes than this.
        #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_bytes, requires = "axfr")]
        max_bytes: usize,
        /// The origin, when the file has no $ORIGIN.
        #[arg(long, conflicts_with = "axfr")]
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
    /// Show what changed between two versions of a zone (default: the
    /// last change; `zone show` lists the versions).
    Diff {
        /// The zone.
        zone: String,
        /// The older serial (default: the one the newer version was made from).
        from: Option<u32>,
        /// The newer serial (default: the current one).
        to: Option<u32>,
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

/// Runs one `zone` verb against the store, reading `[[key]]` entries from
/// `config` (else from the default config places) for `--key-name`.
pub fn run_with_config(
    command: &ZoneCommand,
    store: &Store,
    config: Option<&Path>,
) -> anyhow::Result<()> {
    match command {
        ZoneCommand::Import {
            source,
            axfr: Some(server),
            key,
            key_name,
            max_records,
            max_bytes,
            replace,
            yes,
            dry_run,
            ..
        } => {
            let key = match (key, key_name) {
                (Some(path), _) => Some(key_from_file(path)?),
                (None, Some(name)) => Some(key_from_config(config, name)?),
                (None, None) => None,
            };
            let limits = Limits {
                max_records: *max_records,
                max_bytes: *max_bytes,
                ..Limits::default()
            };
            let choice = Choice {
                replace: *replace,
                yes: *yes,
                dry_run: *dry_run,
            };
            import_axfr(store, server, source, key, limits, choice)
        }
        ZoneCommand::Import {
            source,
            origin,
            replace,
            yes,
            dry_run,
            ..
        } => {
            let choice = Choice {
                replace: *replace,
                yes: *yes,
                dry_run: *dry_run,
            };
            import(store, Path::new(source), origin.as_deref(), choice)
        }
        ZoneCommand::Export {
            zone,
            serial,
            output,
        } => export(store, zone, *serial, output.as_ref()),
        ZoneCommand::List => list(store),
        ZoneCommand::Show { zone } => show(store, zone),
        ZoneCommand::Diff { zone, from, to } => {
            let origin = zone_name(zone)?;
            let versions = store.versions(&origin)?;
            let last = versions
                .last()
                .ok_or_else(|| anyhow::anyhow!("zone {origin} is not in the store"))?;
            let to = to.map(Serial).unwrap_or(last.serial);
            let from = match from {
                Some(from) => Serial(*from),
                None => versions
                    .iter()
                    .rev()
                    .find(|version| version.serial == to)
                    .and_then(|version| version.from)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "{origin}: version {to} was not made from an earlier one (it created the zone); give FROM"
                        )
                    })?,
            };
            let diff = store.diff(&origin, from, to)?;
            print!("{}", header(&origin.to_string(), &diff));
            print!("{}", diff_lines(&diff));
            Ok(())
        }
        ZoneCommand::Delete { zone, yes } => delete(store, zone, *yes),
    }
}

/// What the user said about an import that meets an existing zone.
#[derive(Clone, Copy, Debug)]
struct Choice {
    /// `--replace`.
    replace: bool,
    /// `--yes`.
    yes: bool,
    /// `--dry-run`.
    dry_run: bool,
}

/// `zone import FILE`.
fn import(store: &Store, file: &Path, origin: Option<&str>, choice: Choice) -> anyhow::Result<()> {
    let origin = origin.map(zone_name).transpose()?;
    let parsed = zonefile::parse_file(file, origin.as_ref())?;
    for warning in &parsed.warnings {
        eprintln!("warning: {warning}");
    }
    let comment = format!("import {}", file.display());
    store_import(store, &parsed.zone, &comment, choice)
}

/// `zone import --axfr SERVER ZONE`: the whole transfer, verified, or nothing.
fn import_axfr(
    store: &Store,
    server: &str,
    zone: &str,
    key: Option<Key>,
    limits: Limits,
    choice: Choice,
) -> anyhow::Result<()> {
    let origin = zone_name(zone)?;
    let address = server_address(server)?;
    let signed = key.as_ref().map(|k| k.name.to_string());
    let transfer = fetch_axfr(address, &origin, key.map(Arc::new), limits)
        .with_context(|| format!("AXFR of {origin} from {address} refused; nothing stored"))?;
    eprintln!(
        "{origin}: transferred {} records from {address} in {} messages ({} bytes){}",
        transfer.zone.record_count(),
        transfer.messages,
        transfer.bytes,
        match &signed {
            Some(name) => format!(", every message verified with TSIG key {name}"),
            None => String::new(),
        }
    );
    let comment = format!("import axfr {address}");
    store_import(store, &transfer.zone, &comment, choice)
}

/// Stores an imported zone: created when new; when it exists, replaced
/// only with `--replace --yes`, or previewed with `--dry-run`.
fn store_import(store: &Store, zone: &Zone, comment: &str, choice: Choice) -> anyhow::Result<()> {
    let name = zone.origin().clone();
    let Some(current) = store.zone(&name)? else {
        if choice.dry_run {
            println!(
                "{name}: would import {} records (dry run, nothing changed)",
                zone.record_count()
            );
            return Ok(());
        }
        store.create_zone(zone, comment)?;
        println!(
            "{name}: imported {} records, serial {}",
            zone.record_count(),
            zone.serial().unwrap_or(Serial(0))
        );
        return Ok(());
    };
    if !choice.replace {
        bail!("zone {name} is already in the store (use --replace to re-import it)");
    }
    let preview = store.preview_replace(zone)?;
    if preview.is_empty() {
        println!(
            "{name}: the store already holds exactly this; nothing written, serial stays {}",
            preview.to
        );
        return Ok(());
    }
    if choice.dry_run || !choice.yes {
        print!("{}", header(&name.to_string(), &preview));
        print!("{}", diff_lines(&preview));
        if let Some(note) = serial_note(current.serial(), zone.serial(), preview.to) {
            println!("{note}");
        }
        if choice.dry_run {
            println!("dry run: nothing changed");
            return Ok(());
        }
        return Err(Unconfirmed(format!(
            "replacing {name} changes {} records",
            preview.removed.len() + preview.added.len()
        ))
        .into());
    }
    let diff = store.replace_zone(zone, comment)?;
    if diff.is_empty() {
        println!(
            "{name}: the store already holds exactly this; nothing written, serial stays {}",
            diff.to
        );
    } else {
        println!("{name}: serial {} → {}", diff.from, diff.to);
        print!("{}", diff_lines(&diff));
        if let Some(note) = serial_note(current.serial(), zone.serial(), diff.to) {
            println!("{note}");
        }
    }
    Ok(())
}

/// Why a replacement does not take the file's serial, when it does not.
fn serial_note(stored: Option<Serial>, file: Option<Serial>, taken: Serial) -> Option<String> {
    let (stored, file) = (stored?, file?);
    if file == taken {
        return None;
    }
    let unix = u32::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0);
    let how = if taken.0.abs_diff(unix) < 86_400 {
        "the Unix time of the import (the real run takes its own moment's; +1 over the stored serial if that is not newer)"
    } else {
        "the stored serial + 1"
    };
    Some(format!(
        "note: the file's serial {file} does not rise over the stored {stored} (RFC 1982 serial arithmetic), so the zone takes serial {taken}: {how}"
    ))
}

/// A transfer server from `ADDRESS`, `ADDRESS:PORT`, `[V6]:PORT`, `HOST`
/// or `HOST:PORT` (port 53 when none is given).
fn server_address(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    if let Ok(ip) = text.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| anyhow::anyhow!("invalid port {port:?} in server {text:?}"))?,
        ),
        None => (text, 53),
    };
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve the server {host:?}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("the server {host:?} has no address"))
}

/// The one key in a BIND (`key "name" { … };`) or Knot (`key: - id: …`) file.
fn key_from_file(path: &Path) -> anyhow::Result<Key> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    let looks_like_bind = text.contains('{');
    let keys = if looks_like_bind {
        Key::parse_bind(&text)
    } else {
        Key::parse_knot(&text)
    }
    .with_context(|| format!("key file {}", path.display()))?;
    match <[Key; 1]>::try_from(keys) {
        Ok([key]) => Ok(key),
        Err(keys) if keys.is_empty() => bail!("key file {} holds no key", path.display()),
        Err(keys) => bail!(
            "key file {} holds {} keys ({}); give a file with one",
            path.display(),
            keys.len(),
            keys.iter()
                .map(|k| k.name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The key called `name` in the config's `[[key]]` list.
fn key_from_config(config: Option<&Path>, name: &str) -> anyhow::Result<Key> {
    let config = cutover_server::config::Config::find(config)?.ok_or_else(|| {
        anyhow::anyhow!(
            "--key-name {name}: no config file found ({})",
            cutover_server::config::DEFAULT_PATHS.join(", ")
        )
    })?;
    let wanted = zone_name(name)?;
    let config_key = config
        .key
        .iter()
        .find(|k| zone_name(&k.name).is_ok_and(|n: Name| n == wanted))
        .ok_or_else(|| anyhow::anyhow!("the config has no [[key]] named {name}"))?;
    Key::from_config(config_key).with_context(|| format!("config key {name}"))
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
    write_export(&zonefile::write(&zone), output)
}

/// `zone list`.
fn list(store: &Store) -> anyhow::Result<()> {
    let zones = store.zones()?;
    print_list(zones.iter().map(|info| ListedZone {
        origin: info.origin.to_string(),
        serial: info.serial.0,
        records: info.records,
        updated_at: info.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }));
    Ok(())
}

/// One line of `zone list`, from the store or from the API.
pub struct ListedZone {
    /// The apex.
    pub origin: String,
    /// The current serial.
    pub serial: u32,
    /// How many records.
    pub records: u64,
    /// When it last changed (RFC 3339, to the second).
    pub updated_at: String,
}

/// Prints `zone list`'s table: the same layout here and through `--server`.
pub fn print_list(zones: impl Iterator<Item = ListedZone>) {
    let mut zones = zones.peekable();
    if zones.peek().is_none() {
        println!("no zones in the store");
        return;
    }
    let mut table = Table::new(["ZONE", "SERIAL", "RECORDS", "UPDATED"]).right(&[1, 2]);
    for zone in zones {
        table.row([
            zone.origin,
            zone.serial.to_string(),
            zone.records.to_string(),
            zone.updated_at,
        ]);
    }
    table.print();
}

/// Writes a zone file to `output`, or to standard output.
pub fn write_export(text: &str, output: Option<&PathBuf>) -> anyhow::Result<()> {
    match output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
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
    let mut table = Table::new(["AT", "SERIALS", "ADDED", "REMOVED", "WHAT"])
        .indent(2)
        .right(&[2, 3]);
    for version in store.versions(&origin)? {
        let change = match version.from {
            Some(from) => format!("{from} → {}", version.serial),
            None => format!("created at {}", version.serial),
        };
        table.row([
            version.at.to_string(),
            change,
            format!("+{}", version.added),
            format!("-{}", version.removed),
            version.comment,
        ]);
    }
    table.print();
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
