//! The migration file: what moves, where its records live, how to check the
//! new servers, and when.
//!
//! ```text
//!  TOML text ──toml──▶ raw tables (spans kept) ──validate──▶ MigrationFile
//!      │                                                  (typed: names, addresses, RDATA, seconds)
//!      └── any error: FILE:LINE:COLUMN: what was expected
//! ```
//!
//! The file is versioned (`version = 1`). The version is read first, on its
//! own, and then the whole file is read as that version's tables with
//! `deny_unknown_fields`; reading it in two passes (rather than through a
//! `#[serde(tag = "version")]` enum, which buffers the document) keeps the
//! exact position of every error.
//!
//! The typed file keeps the place of what it was read from ([`Spots`]), so
//! that what only the zone or the servers can refuse later (a check that
//! could never pass, a TTL that would rise) is still reported at its line
//! and column. Secrets (`api_key`, `token`, a `[[key]]`'s `secret`, a
//! `[[notify]]`'s `secret` and `url`) are
//! never shown: [`redact`] blanks them out of the text wherever it goes.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

mod raw;
mod secrets;
mod validate;

pub use raw::RawNotify;
pub use secrets::{redact, SECRET_KEYS};

use cutover_zone::{Name, Rdata, RecordType};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::plan::StepKind;
use crate::provider::{KeySpec, ProviderSpec};

/// The migration file format versions this build reads.
pub const VERSIONS: &[u32] = &[1];

/// A migration file, checked and typed.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationFile {
    /// The file's name, as the caller gave it (for messages).
    pub name: String,
    /// Where each part was written, for what is refused later.
    pub spots: Spots,
    /// The zone whose records move (absolute): the first of [`zones`](Self::zones),
    /// the only one in a file that names one.
    pub zone: Name,
    /// Where the first zone's records live: the first of
    /// [`providers`](Self::providers).
    pub provider: ProviderSpec,
    /// Every zone whose records move, in the file's order (`zone = …`,
    /// then `zones = […]`, then each `[[zone]]`), each with its provider.
    /// Empty only while `zones = "*"` waits for the provider's list
    /// ([`MigrationFile::with_zones`]).
    pub zones: Vec<ZoneTarget>,
    /// The providers, each once, in the order the zones first name them.
    pub providers: Vec<ProviderSpec>,
    /// `zones = "*"` (every zone the provider holds), where it was written.
    pub every_zone: Option<Spot>,
    /// TSIG keys given inline (`[[key]]`), for an `rfc2136` provider.
    pub keys: Vec<KeySpec>,
    /// What moves.
    pub moves: Vec<Move>,
    /// TTLs during and after the move.
    pub ttl: TtlPolicy,
    /// Service checks, run pinned to the new address before the switch and
    /// through the names after it.
    pub checks: Vec<Check>,
    /// When to switch and how long to observe.
    pub schedule: Schedule,
    /// How the switch is verified.
    pub verify: Verify,
    /// Local caches emptied right after the switch.
    pub flush: Flush,
    /// The mail relay's part in the move, if any.
    pub mail: Option<MailMove>,
    /// The step that waits for an operator's approval before it runs
    /// (`approve = "before_switch"`), if any.
    pub approve: Option<StepKind>,
    /// Who is told what happens (`[[notify]]`), in the file's order.
    pub notify: Vec<crate::notify::Target>,
}

/// One zone of a migration and where its records live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneTarget {
    /// The zone (absolute).
    pub name: Name,
    /// Its provider: an index into [`MigrationFile::providers`].
    pub provider: usize,
    /// Where the zone was named.
    pub spot: Spot,
    /// The authoritative addresses asked about this zone (a `[[zone]]`'s
    /// `authorities`; empty: `[verify] authorities`).
    pub authorities: Vec<SocketAddr>,
}

/// One thing that moves.
#[derive(Clone, Debug, PartialEq)]
pub enum Move {
    /// Every A or AAAA record holding `from` moves to `to`.
    Address {
        /// The old address.
        from: IpAddr,
        /// The new address (same family).
        to: IpAddr,
        /// Also rewrite SPF `ip4:`/`ip6:` terms naming `from` (TXT and SPF
        /// records). When false they are only reported as a warning.
        spf: bool,
    },
    /// One RRset gets new values.
    Explicit {
        /// Owner name (absolute).
        name: Name,
        /// Record type.
        rtype: RecordType,
        /// The new data, in presentation form as written.
        values: Vec<String>,
        /// The new data, parsed.
        rdatas: Vec<Rdata>,
    },
}

/// TTLs during and after the move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtlPolicy {
    /// The TTL of every moving RRset from the lowering to the restore (s).
    pub during: u32,
    /// The TTL after the move.
    pub after: AfterTtl,
}

/// The TTL a moved RRset gets at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterTtl {
    /// Each RRset's TTL before the move.
    Original,
    /// This TTL (s) for all of them.
    Fixed(u32),
}

/// One service check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = ServiceCheck)]
pub struct Check {
    /// What is checked.
    pub kind: CheckKind,
    /// The address to pin to before the switch (default: every new address
    /// of the moves).
    #[schema(value_type = Option<String>)]
    pub address: Option<IpAddr>,
}

/// The protocol of a service check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// An HTTP(S) request that must return `expect_status`.
    Http {
        /// The URL (`http://` or `https://`).
        url: String,
        /// The status the service must answer.
        expect_status: u16,
        /// A substring the body must contain.
        body_contains: Option<String>,
    },
    /// An SMTP server that must greet and answer EHLO positively.
    Smtp {
        /// Host name and port.
        host: String,
        /// The port.
        port: u16,
    },
    /// A TCP port that must accept a connection.
    Tcp {
        /// Host name and port.
        host: String,
        /// The port.
        port: u16,
    },
}

/// When to switch and how long to observe afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// When the switch happens.
    pub switch_at: SwitchAt,
    /// How long to watch the new servers before restoring TTLs (s).
    pub observe: u64,
    /// Added to every cache wait (s).
    pub margin: u64,
}

/// When the switch happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchAt {
    /// As soon as every cache must have dropped the old TTL.
    Earliest,
    /// At this time, or at the earliest safe time if that is later.
    At(Timestamp),
}

/// How the switch is verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Verify {
    /// Authoritative addresses to ask (empty: the zone's NS addresses).
    #[schema(value_type = Vec<String>)]
    pub authorities: Vec<SocketAddr>,
    /// Resolvers that must answer the new values.
    #[schema(value_type = Vec<String>)]
    pub resolvers: Vec<SocketAddr>,
    /// How many failed verifications before the automatic rollback.
    pub tries: u32,
    /// Time between tries (s).
    pub interval: u64,
    /// Where the checks run: `local` (the process that runs the
    /// migration) and the locations of `cutover agent`s (`["local"]` in
    /// plans stored before locations existed).
    #[serde(default)]
    pub locations: Locations,
    /// How many locations must see the switch (`None`: every one).
    #[serde(default)]
    pub quorum: Option<u32>,
}

/// True for a location name: 1 to 64 letters, digits, '-', '_' or '.', and
/// not `all` (which means every location).
pub fn valid_location(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "all"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The location of the process that runs the migration.
pub const LOCAL: &str = "local";

/// Where a migration's checks run (`[verify] locations`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Locations {
    /// These locations, in the file's order.
    Listed(Vec<String>),
    /// `"all"`: `local` and every location an agent has registered from.
    All,
}

impl Default for Locations {
    fn default() -> Locations {
        Locations::Listed(vec![LOCAL.to_string()])
    }
}

impl Default for Verify {
    /// What a file without `[verify]` gets: the zone's NS addresses, the
    /// resolver at 127.0.0.1:53, from here only.
    fn default() -> Verify {
        Verify {
            authorities: Vec::new(),
            resolvers: vec![SocketAddr::from(([127, 0, 0, 1], 53))],
            tries: DEFAULT_TRIES,
            interval: DEFAULT_INTERVAL,
            locations: Locations::default(),
            quorum: None,
        }
    }
}

impl Verify {
    /// True when the checks run from the local process only (the default).
    pub fn local_only(&self) -> bool {
        matches!(&self.locations, Locations::Listed(l) if l.iter().all(|l| l == LOCAL))
    }

    /// The locations other than `local` the file names (`"all"` when all).
    pub fn remote_locations(&self) -> Vec<String> {
        match &self.locations {
            Locations::Listed(l) => l.iter().filter(|l| *l != LOCAL).cloned().collect(),
            Locations::All => vec!["all".to_string()],
        }
    }

    /// Where the checks run and how many must agree, in words (`None`: from
    /// here only, the default).
    pub fn from_where(&self) -> Option<String> {
        if self.local_only() {
            return None;
        }
        let places = match &self.locations {
            Locations::Listed(l) => l.join(", "),
            Locations::All => "every location with an agent, and local".to_string(),
        };
        let quorum = match self.quorum {
            None => "all must agree".to_string(),
            Some(n) => format!("at least {n} must agree"),
        };
        Some(format!("from {places} ({quorum})"))
    }
}

/// Local caches emptied right after the switch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flush {
    /// Names of the caches, as the [`Flusher`](crate::effects::Flusher) knows them.
    pub caches: Vec<String>,
}

/// The mail relay's part: hold a domain's mail before the switch, point it
/// at the new server at the switch, release it once verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MailMove {
    /// The mail domain.
    pub domain: String,
    /// The destination before the move (`host:port`), used on rollback.
    pub from: String,
    /// The destination after the move (`host:port`).
    pub to: String,
}

/// A place in the migration file: 1-based line and column (0 and 0 for a
/// part the file does not write, left at its default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Spot {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Where each part of a migration file was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spots {
    /// The `zone` value.
    pub zone: Spot,
    /// The `provider` table.
    pub provider: Spot,
    /// Each provider's table, in the order of [`MigrationFile::providers`].
    pub providers: Vec<Spot>,
    /// Each `[[move]]`, in the file's order.
    pub moves: Vec<MoveSpots>,
    /// The `[ttl]` `during` value, when written.
    pub ttl_during: Option<Spot>,
    /// The `[ttl]` `after` value, when written.
    pub ttl_after: Option<Spot>,
    /// Each `[[check]]`, in the file's order.
    pub checks: Vec<CheckSpots>,
    /// The `switch_at` value, when written.
    pub switch_at: Option<Spot>,
    /// The `[verify]` table, when written.
    pub verify: Option<Spot>,
    /// The `authorities` list, when written.
    pub authorities: Option<Spot>,
    /// The `resolvers` list, when written.
    pub resolvers: Option<Spot>,
    /// Each cache named in `[flush]`.
    pub caches: Vec<Spot>,
    /// The `[mail]` table's `domain` value.
    pub mail: Option<Spot>,
    /// The `[mail]` table's `from` value.
    pub mail_from: Option<Spot>,
    /// The `approve` value, when written.
    pub approve: Option<Spot>,
    /// Secrets written in the file: the key (`provider.api_key`) and the
    /// place of its value.
    pub inline_secrets: Vec<(String, Spot)>,
    /// Local files the file names (`provider.key_file`, …): the key and
    /// the place of its value.
    pub local_files: Vec<(String, Spot)>,
    /// Environment variables the file names for its secrets
    /// (`provider.api_key_env`, …): the key, the variable's name, and the
    /// place of the name.
    pub env_secrets: Vec<(String, String, Spot)>,
}

/// Where one `[[move]]` was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MoveSpots {
    /// The `[[move]]` header.
    pub at: Spot,
    /// `from` (address moves) or `name` (explicit moves).
    pub subject: Spot,
}

/// Where one `[[check]]` was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckSpots {
    /// The `[[check]]` header.
    pub at: Spot,
    /// The `http`, `smtp` or `tcp` value.
    pub target: Spot,
    /// The `address` value, when written.
    pub address: Option<Spot>,
}

/// Why a migration file was refused: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct FileError {
    /// The file, as named by the caller.
    pub file: String,
    /// 1-based line (0 when the file could not be read).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Default TTL during the move (s).
pub const DEFAULT_DURING_TTL: u32 = 60;
/// Default observation time after the switch (s).
pub const DEFAULT_OBSERVE: u64 = 24 * 3600;
/// Default margin added to cache waits (s).
pub const DEFAULT_MARGIN: u64 = 60;
/// Default number of verification tries.
pub const DEFAULT_TRIES: u32 = 3;
/// Default time between verification tries (s).
pub const DEFAULT_INTERVAL: u64 = 10;
/// The largest TTL (RFC 2181 §8: 31 bits).
pub const MAX_TTL: u32 = cutover_zone::duration::MAX_TTL;
/// The largest TTL during the move (s): more than a day is no lowering.
pub const MAX_DURING_TTL: u32 = 86_400;
/// The longest observation (s): 30 days.
pub const MAX_OBSERVE: u64 = 30 * 86_400;
/// The largest margin added to cache waits (s): a day.
pub const MAX_MARGIN: u64 = 86_400;
/// The most verification tries.
pub const MAX_TRIES: u32 = 100;
/// The longest time between verification tries (s): an hour.
pub const MAX_INTERVAL: u64 = 3600;
/// How far ahead `switch_at` may be (s): a year.
pub const MAX_SWITCH_AHEAD: u64 = 366 * 86_400;

impl MigrationFile {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> Result<MigrationFile, FileError> {
        let text = std::fs::read_to_string(path).map_err(|e| FileError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read the file: {e}"),
        })?;
        MigrationFile::parse(&text, &path.display().to_string())
    }

    /// Parses and checks migration file text; `file` names it in errors.
    /// A relative path in it (`key_file`, `api_key_file`, `token_file`) is
    /// taken from the folder of `file`, as when the file is read.
    pub fn parse(text: &str, file: &str) -> Result<MigrationFile, FileError> {
        let mut parsed = validate::parse(text, file)?;
        if let Some(dir) = Path::new(file).parent() {
            if !dir.as_os_str().is_empty() {
                parsed.provider.resolve_paths(dir);
                for p in &mut parsed.providers {
                    p.resolve_paths(dir);
                }
                for target in &mut parsed.notify {
                    target.resolve_paths(dir);
                }
            }
        }
        Ok(parsed)
    }

    /// True when the file names more than one zone (or every zone of its
    /// provider).
    pub fn many_zones(&self) -> bool {
        self.zones.len() > 1 || self.every_zone.is_some()
    }

    /// The listed zone a name is in: the longest that holds it.
    pub fn zone_of(&self, name: &Name) -> Option<&ZoneTarget> {
        self.zones
            .iter()
            .filter(|z| z.name.zone_of(name))
            .max_by_key(|z| z.name.num_labels())
    }

    /// The zones of `zones = "*"`, as the provider lists them: each
    /// becomes a zone of the migration through the file's provider. A
    /// provider that holds none is refused at the place of `zones`.
    pub fn with_zones(&mut self, listed: Vec<Name>) -> Result<(), FileError> {
        let Some(spot) = self.every_zone else {
            return Ok(());
        };
        let mut listed: Vec<Name> = listed.into_iter().filter(|n| !n.is_root()).collect();
        listed.sort();
        listed.dedup();
        let Some(first) = listed.first() else {
            return Err(self.error_at(
                spot,
                format!(
                    "zones = \"*\": {} holds no zone: nothing to move",
                    self.provider.describe()
                ),
            ));
        };
        self.zone = first.clone();
        self.zones = listed
            .into_iter()
            .map(|name| ZoneTarget {
                name,
                provider: 0,
                spot,
                authorities: Vec::new(),
            })
            .collect();
        Ok(())
    }

    /// An error at `spot` of this file.
    pub fn error_at(&self, spot: Spot, message: impl Into<String>) -> FileError {
        FileError {
            file: self.name.clone(),
            line: spot.line,
            column: spot.column,
            message: message.into(),
        }
    }

    /// Each environment variable the file names for a secret that is unset
    /// or empty in this process, refused at the place of its name (the
    /// message names the variable, never a value).
    pub fn env_refusals(&self) -> Vec<FileError> {
        self.spots
            .env_secrets
            .iter()
            .filter_map(|(key, name, spot)| {
                crate::provider::env_secret(name, "the secret")
                    .err()
                    .map(|why| self.error_at(*spot, format!("{key}: {why}")))
            })
            .collect()
    }

    /// Each environment variable the file names for a secret, refused at
    /// the place of its name: a file sent through the API would read the
    /// server's environment, not its caller's.
    pub fn env_names_through_the_api(&self) -> Vec<FileError> {
        self.spots
            .env_secrets
            .iter()
            .map(|(key, _, spot)| {
                self.error_at(
                    *spot,
                    format!(
                        "{key}: a migration file sent through the API cannot name an environment \
                         variable (it would be read from the server's environment, not yours); \
                         give the secret inline (stored with the migration, never shown) or by \
                         file under [http] migration_dir"
                    ),
                )
            })
            .collect()
    }

    /// Every new address named by the moves (the `to` of address moves, the
    /// A/AAAA values of explicit ones): where checks are pinned by default.
    pub fn new_addresses(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for m in &self.moves {
            match m {
                Move::Address { to, .. } => out.push(*to),
                Move::Explicit { rdatas, .. } => {
                    for r in rdatas {
                        if let Some(ip) = address_of(r) {
                            out.push(ip);
                        }
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The address held by an A or AAAA record.
pub fn address_of(rdata: &Rdata) -> Option<IpAddr> {
    let wire = rdata.wire();
    match rdata.rtype() {
        RecordType::A => <[u8; 4]>::try_from(wire).ok().map(IpAddr::from),
        RecordType::AAAA => <[u8; 16]>::try_from(wire).ok().map(IpAddr::from),
        _ => None,
    }
}
