//! `cutover provider list`: the kinds of provider a migration file can
//! name, and the cloud hosts with the keys each takes.
//! `cutover provider test FILE`: builds the file's providers and reads
//! through them what the migration would read, zone by zone (for
//! `zones = "*"`, every zone the provider lists), changing nothing.
//!
//! ```text
//!  FILE ──MigrationFile──▶ build (secrets read here, shown nowhere) ──▶ a Provider per spec
//!       ──zones = "*": Provider::zones ──▶ the file's zones
//!  each zone:
//!       ──read(zone): the whole zone ─────────────────┐
//!         └ Unsupported (read RRset by RRset): the apex and the explicit moves' RRsets (partial::keys)
//!                                                     └──▶ NAME TYPE TTL VALUE (or --json)
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use cutover_migrate::file::ZoneTarget;
use cutover_migrate::provider::{build, BuildContext, ProviderSpec, KIND_WORDS};
use cutover_migrate::MigrationFile;
use cutover_provider::cloud::services::{Reads, SERVICES};
use cutover_provider::{Provider, ProviderError};
use cutover_zone::zonefile::rdata_to_text;
use cutover_zone::{Name, RecordType, Rrset};
use serde::Serialize;

use super::table::Table;

/// The `provider` verbs.
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// The provider kinds and cloud hosts a migration file can name, with the keys each takes.
    List(ListArgs),
    /// Read the records a migration file's provider holds for its zone, changing nothing.
    Test(TestArgs),
}

/// `provider list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `provider test FILE`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The migration file whose provider is tried.
    pub file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One key of a cloud service, as listed.
#[derive(Serialize)]
struct KeyView {
    /// The key.
    key: &'static str,
    /// What it holds.
    what: &'static str,
    /// A credential (also `KEY_file` / `KEY_env`).
    secret: bool,
    /// Whether it must be given.
    required: bool,
}

/// One cloud service, as listed.
#[derive(Serialize)]
struct ServiceView {
    /// `service = "…"`.
    service: &'static str,
    /// The host's name.
    title: &'static str,
    /// `api` or `dns`.
    reads: &'static str,
    /// Its keys.
    keys: Vec<KeyView>,
}

/// One record found by `provider test`.
#[derive(Serialize)]
struct RecordView {
    /// Owner, absolute.
    name: String,
    /// Type mnemonic.
    #[serde(rename = "type")]
    rtype: String,
    /// TTL in seconds.
    ttl: u32,
    /// The data in zone-file form.
    value: String,
}

/// What `provider test` found.
#[derive(Serialize)]
struct TestView {
    /// The provider, described.
    provider: String,
    /// The zone.
    zone: String,
    /// True when the whole zone was listed; false when only `asked` was read.
    listed: bool,
    /// The RRsets asked for when the zone cannot be listed ("NAME TYPE").
    asked: Vec<String>,
    /// The records found.
    records: Vec<RecordView>,
}

/// Runs a `provider` verb; `store` is where an embedded provider's zone is.
pub fn run(command: &ProviderCommand, store: &Path) -> anyhow::Result<()> {
    match command {
        ProviderCommand::List(args) => list(args.json),
        ProviderCommand::Test(args) => test(args, store),
    }
}

/// `provider list`.
fn list(json: bool) -> anyhow::Result<()> {
    let services: Vec<ServiceView> = SERVICES
        .iter()
        .map(|s| ServiceView {
            service: s.name,
            title: s.title,
            reads: match s.reads {
                Reads::Api => "api",
                Reads::Dns => "dns",
            },
            keys: s
                .settings
                .iter()
                .map(|k| KeyView {
                    key: k.key,
                    what: k.what,
                    secret: k.secret,
                    required: k.required,
                })
                .collect(),
        })
        .collect();
    if json {
        let kinds: Vec<_> = KIND_WORDS
            .iter()
            .map(|(kind, words)| serde_json::json!({ "kind": kind, "takes": words }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "kinds": kinds, "services": services })
            )?
        );
        return Ok(());
    }
    let mut kinds = Table::new(["KIND", "WHAT"]);
    for (kind, words) in KIND_WORDS {
        kinds.row([*kind, *words]);
    }
    kinds.print();
    println!();
    println!("Cloud hosts (kind = \"cloud\", service = …), read through their API or by DNS from `nameservers`; a credential is given as KEY_file = PATH, KEY_env = NAME or KEY = \"…\" (stored with the migration, never shown):");
    let mut table = Table::new(["SERVICE", "HOST", "READS", "NEEDS", "OPTIONAL"]);
    for s in &services {
        let keys = |required: bool| {
            let named: Vec<String> = s
                .keys
                .iter()
                .filter(|k| k.required == required)
                .map(|k| match k.secret {
                    true => format!("{} (credential)", k.key),
                    false => k.key.to_string(),
                })
                .collect();
            match named.is_empty() {
                true => "-".to_string(),
                false => named.join(", "),
            }
        };
        table.row([
            s.service.to_string(),
            s.title.to_string(),
            s.reads.to_string(),
            keys(true),
            keys(false),
        ]);
    }
    table.print();
    Ok(())
}

/// `provider test FILE`: every zone of the file (those its provider lists
/// for `zones = "*"`), each read through its own provider.
fn test(args: &TestArgs, store: &Path) -> anyhow::Result<()> {
    let mut file = MigrationFile::read(&args.file)?;
    let unset = file.env_refusals();
    if let Some(first) = unset.into_iter().next() {
        return Err(first.into());
    }
    let specs = cutover_migrate::routed::specs(&file).to_vec();
    if specs.contains(&ProviderSpec::Embedded) && !store.exists() {
        anyhow::bail!(
            "the embedded provider reads the store {}, which does not exist (give --store)",
            store.display()
        );
    }
    let context = BuildContext {
        store: Some(store.to_path_buf()),
    };
    let providers = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let spot = file
                .spots
                .providers
                .get(i)
                .copied()
                .unwrap_or(file.spots.provider);
            build(spec, &file.keys, &context).map_err(|e| file.error_at(spot, format!("{e:#}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut listed_zones = None;
    if let Some(spot) = file.every_zone {
        let provider = &providers[0];
        let listed = provider.zones().map_err(|e| {
            file.error_at(
                spot,
                format!(
                    "zones = \"*\": cannot list the zones of {}: {e}",
                    provider.describe()
                ),
            )
        })?;
        file.with_zones(listed)?;
        listed_zones = Some(provider.describe());
    }
    let views = file
        .zones
        .iter()
        .map(|target| read_zone(&file, target, &*providers[target.provider]))
        .collect::<anyhow::Result<Vec<TestView>>>()?;
    if args.json {
        // One zone: its view; several: a list of them.
        let json = match views.as_slice() {
            [one] => serde_json::to_string_pretty(one)?,
            _ => serde_json::to_string_pretty(&views)?,
        };
        println!("{json}");
        return Ok(());
    }
    if let Some(provider) = listed_zones {
        let names: Vec<&str> = views.iter().map(|v| v.zone.as_str()).collect();
        println!(
            "{provider} lists {} zone{} for zones = \"*\": {}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
    }
    for (i, view) in views.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print_view(view);
    }
    Ok(())
}

/// Reads one zone of `file` through `provider`: the whole zone, or what a
/// plan reads of it when the provider cannot list it.
fn read_zone(
    file: &MigrationFile,
    target: &ZoneTarget,
    provider: &dyn Provider,
) -> anyhow::Result<TestView> {
    let describe = provider.describe();
    let zone = &target.name;
    let (listed, asked, read) = match provider.read(zone) {
        Ok(z) => (true, Vec::new(), z),
        Err(ProviderError::Unsupported(_)) => {
            // What a plan reads of this zone: the file as it sees this zone.
            let view = cutover_migrate::plan::zone_view(file, target);
            let part = cutover_migrate::partial::read(provider, &view)
                .with_context(|| format!("cannot read {zone} through {describe}"))?;
            (false, part.asked, part.zone)
        }
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("cannot read {zone} through {describe}"))
            )
        }
    };
    let records: Vec<RecordView> = read
        .nodes()
        .flat_map(|(name, node)| {
            node.rrsets()
                .flat_map(move |(rtype, rrset)| views(name, rtype, rrset))
        })
        .collect();
    Ok(TestView {
        provider: describe,
        zone: zone.to_string(),
        listed,
        asked,
        records,
    })
}

/// One zone's part of `provider test`'s text.
fn print_view(view: &TestView) {
    match view.listed {
        true => println!(
            "{}: read {} records of {} (the whole zone); nothing was changed.",
            view.provider,
            view.records.len(),
            view.zone
        ),
        false => println!(
            "{}: cannot list {}; asked for the {} RRsets a migration reads of it ({}): {} records found; nothing was changed.",
            view.provider,
            view.zone,
            view.asked.len(),
            view.asked.join(", "),
            view.records.len()
        ),
    }
    let mut table = Table::new(["NAME", "TYPE", "TTL", "VALUE"]).right(&[2]);
    for r in &view.records {
        table.row([
            r.name.clone(),
            r.rtype.clone(),
            r.ttl.to_string(),
            r.value.clone(),
        ]);
    }
    table.print();
}

/// The records of one RRset, as printed.
fn views(name: &Name, rtype: RecordType, rrset: &Rrset) -> Vec<RecordView> {
    rrset
        .rdatas()
        .iter()
        .map(|rdata| RecordView {
            name: name.to_string(),
            rtype: rtype.to_string(),
            ttl: rrset.ttl,
            value: rdata_to_text(rdata),
        })
        .collect()
}
