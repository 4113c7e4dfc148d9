//! `cutover record …`: change RRsets. Every change is an RFC 2136 UPDATE
//! built here and applied by the same path as a network UPDATE, so there is
//! one way a zone changes.
//!
//! ```text
//!  record add|set|delete ──▶ [Edit] ──update::operator (strict)──▶ ZoneDiff
//!  record apply FILE|- ──changes::read (FILE:LINE:COLUMN)──▶ [Edit] ─┘
//!      worked out inside one fsynced write transaction on an excerpt of the
//!      version written over (Store::update_rrsets: the apex, the touched
//!      names and what their checks read; never the whole zone) ──▶ serial bumped
//!      └─ --dry-run: the same excerpt, the same checks, printed, not written
//! ```
//!
//! A running `cutover serve` sees the change through the store's generation
//! (woken by inotify) and publishes it (and sends its NOTIFYs); when one
//! runs on this store and the config says where it listens, the command
//! returns once it serves the new serial (`wait_served`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use cutover_nameserver::update::operator::{self, Action, BatchError, Edit};
use cutover_nameserver::update::Outcome;
use cutover_store::Store;
use cutover_zone::{zonefile, Name, Rdata, RecordType, Serial, Zone, ZoneDiff};

use super::changes::{self, Entry};
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
    /// Apply a file of changes (one a line: `add|set NAME [TTL] TYPE DATA`,
    /// `delete NAME [TYPE [DATA]]`, `#` comments) in one version: all or
    /// nothing, one serial.
    Apply(Batch),
}

/// Arguments of `record apply`.
#[derive(Debug, Args)]
pub struct Batch {
    /// The zone.
    pub(crate) zone: String,
    /// The change file, or `-` for standard input.
    pub(crate) file: String,
    /// Print the diff and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

impl Batch {
    /// The change file read whole, with the name its errors give it.
    pub(crate) fn read(&self, origin: &Name) -> anyhow::Result<(String, Vec<Entry>)> {
        let (label, text) = match self.file.as_str() {
            "-" => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .map_err(|e| anyhow!("cannot read the changes from standard input: {e}"))?;
                ("<stdin>".to_owned(), text)
            }
            path => (
                path.to_owned(),
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow!("cannot read the change file {path}: {e}"))?,
            ),
        };
        let entries = changes::read(&label, &text, origin)?;
        Ok((label, entries))
    }
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
        RecordCommand::Apply(batch) => return apply(batch, store, config),
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
    refuse_secondary(config, &origin)?;
    let unchanged = format!("{} {} already holds exactly this", edit.name, edit.rtype);
    let blame = |_: usize| String::new();
    commit(
        store,
        config,
        &origin,
        &comment,
        dry_run,
        &[edit],
        blame,
        &unchanged,
    )
}

/// `record apply`: the change file read whole (a bad line refused with
/// its place, nothing written), its edits applied in one version.
fn apply(
    batch: &Batch,
    store: &Store,
    config: Option<&cutover_server::config::Config>,
) -> anyhow::Result<()> {
    let origin = zone_name(&batch.zone)?;
    refuse_secondary(config, &origin)?;
    let (label, entries) = batch.read(&origin)?;
    let mut edits = Vec::new();
    let mut line_of = Vec::new();
    for entry in &entries {
        let found = entry
            .edits(&origin)
            .map_err(|e| anyhow!("{label}:{}: {e}", entry.line))?;
        line_of.extend(std::iter::repeat_n(entry.line, found.len()));
        edits.extend(found);
    }
    let comment = format!("record apply {label} ({} RRset changes)", entries.len());
    let blame = |edit: usize| format!("{label}:{}", line_of[edit]);
    let unchanged = format!("the zone already holds exactly what {label} says");
    commit(
        store,
        config,
        &origin,
        &comment,
        batch.dry_run,
        &edits,
        blame,
        &unchanged,
    )
}

/// The refusal of a change to a secondary zone, whose records come from
/// its primary.
fn refuse_secondary(
    config: Option<&cutover_server::config::Config>,
    origin: &Name,
) -> anyhow::Result<()> {
    let Some(zone) = config.and_then(|c| {
        c.zone
            .iter()
            .find(|z| z.name == *origin && z.is_secondary())
    }) else {
        return Ok(());
    };
    let primaries: Vec<String> = zone.primary.iter().map(ToString::to_string).collect();
    Err(anyhow!(
        "zone {origin} is a secondary zone here (config {}: primary = {}): its records come \
         from its primary by zone transfer, and a change made here would be replaced by the \
         next one; change it on the primary",
        config.map_or_else(String::new, |c| c.source.display().to_string()),
        primaries.join(", ")
    ))
}

/// Applies the edits to the current zone through `update::operator` (the
/// RFC 2136 path, strict: a change its rules would drop is an error, placed
/// by `blame`, the edit's index → its place, empty for none) in one version, and writes it (or, dry, previews it on the
/// same excerpt with the same checks), and prints the serial change and the
/// diff. The change is worked out inside the store's write transaction on
/// an excerpt of the version written over (`Store::update_rrsets`), so a
/// concurrent writer (`cutover serve` taking UPDATEs) never makes it fail
/// and the zone is never read whole.
#[allow(clippy::too_many_arguments)]
fn commit(
    store: &Store,
    config: Option<&cutover_server::config::Config>,
    origin: &Name,
    comment: &str,
    dry_run: bool,
    edits: &[Edit],
    blame: impl Fn(usize) -> String,
    unchanged: &str,
) -> anyhow::Result<()> {
    let now = u32::try_from(cutover_server::primary::wall_clock()).unwrap_or(u32::MAX);
    let work_out = |zone: &Zone| -> anyhow::Result<Option<ZoneDiff>> {
        let outcome =
            operator::apply_batch(zone, edits, now).map_err(|BatchError { index, error }| {
                match index.map(&blame).filter(|place| !place.is_empty()) {
                    Some(place) => anyhow!("{place}: {origin}: {error}"),
                    None => anyhow!("{origin}: {error}"),
                }
            })?;
        Ok(match outcome {
            Outcome::Unchanged => None,
            Outcome::Changed { diff, .. } => Some(diff),
        })
    };
    let names: Vec<Name> = edits.iter().map(|edit| edit.name.clone()).collect();
    let edited = match dry_run {
        true => store.preview_rrsets(origin, &names, work_out)?,
        false => store.update_rrsets(origin, &names, comment, work_out)?,
    };
    let Some(diff) = edited.outcome? else {
        println!(
            "{origin}: {unchanged}; nothing written, serial stays {}",
            edited.serial
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
    } else {
        wait_served(store, config, origin, diff.to);
    }
    Ok(())
}

/// How long a local edit waits for a running `cutover serve` to serve it.
const SERVED_WITHIN: Duration = Duration::from_secs(10);

/// When a `cutover serve` runs on this store (its scheduler holds the
/// store's lock) and the config says where it listens: waits until it
/// serves `serial` (asked over TCP, as a secondary asks), and says so — or,
/// after [`SERVED_WITHIN`], that the change is written but not served yet.
/// The write stands either way.
fn wait_served(
    store: &Store,
    config: Option<&cutover_server::config::Config>,
    origin: &Name,
    serial: Serial,
) {
    let Some(config) = config else {
        return;
    };
    if !cutover_server::scheduler::presence::scheduler_runs(store.path()) {
        return;
    }
    // A port the system picks (`:0`) cannot be asked from here.
    let Some(listen) = config.dns.listen.iter().find(|a| a.port() != 0) else {
        return;
    };
    // A wildcard listener answers on loopback.
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let server = SocketAddr::new(ip, listen.port());
    let limits = cutover_nameserver::transfer::Limits::default();
    let deadline = Instant::now() + SERVED_WITHIN;
    // Asked again after 1, 2, 4 … ms, then every 20 ms: serve publishes a
    // small zone within a millisecond or two of the commit.
    let mut pause = Duration::from_millis(1);
    loop {
        let seen = cutover_nameserver::transfer::soa_serial(server, origin, None, limits);
        if let Ok(seen) = seen {
            if seen == serial || seen.is_newer_than(serial) {
                println!("{origin}: served by cutover serve on {server} (serial {seen})");
                return;
            }
        }
        if Instant::now() >= deadline {
            let said = match seen {
                Ok(seen) => format!("it still serves serial {seen}"),
                Err(error) => format!("it did not answer: {error}"),
            };
            eprintln!(
                "{origin}: written (serial {serial}), but cutover serve on {server} does not serve it after {} s ({said}): it publishes only what passes its checks; see its log",
                SERVED_WITHIN.as_secs()
            );
            return;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
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
