//! The checks that type a migration file: names, addresses, RDATA,
//! durations and their ranges, each error at its line and column with what
//! was expected. What only the zone can tell (does the check's name move?)
//! is checked by the planner, at the places kept in [`Spots`].

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use cutover_nameserver::tsig::Key;
use cutover_zone::duration;
use cutover_zone::zonefile::rdata_from_text;
use cutover_zone::{Name, RecordType};
use jiff::Timestamp;
use toml::Spanned;

use super::raw::{
    OneOrTables, RawCheck, RawFlush, RawKey, RawMail, RawMove, RawNotify, RawProvider, RawSchedule,
    RawTtl, RawV1, RawVerify, RawZone, VersionOnly,
};
use super::{valid_location, Locations};
use super::{
    AfterTtl, Check, CheckKind, CheckSpots, FileError, Flush, MailMove, MigrationFile, Move,
    MoveSpots, Schedule, Spot, Spots, SwitchAt, TtlPolicy, Verify, ZoneTarget, DEFAULT_DURING_TTL,
    DEFAULT_INTERVAL, DEFAULT_MARGIN, DEFAULT_OBSERVE, DEFAULT_TRIES, MAX_DURING_TTL, MAX_INTERVAL,
    MAX_MARGIN, MAX_OBSERVE, MAX_TRIES, MAX_TTL,
};
use crate::notify::{Noted, Target};
use crate::plan::StepKind;
use crate::provider::{KeySpec, ProviderSpec, Secret, KINDS};
use cutover_provider::cloud::services;

/// What a number of seconds in the file is, which decides the text it
/// takes: a TTL also in BIND's forms (`1W2D`), a wait in the friendly ones.
#[derive(Clone, Copy, Debug)]
enum Seconds {
    /// A TTL (`[ttl] during`, `after`).
    Ttl,
    /// A wait (`[schedule] observe`, `margin`, `[verify] interval`).
    Wait,
}

/// Parses and checks migration file text; `file` names it in errors.
pub(super) fn parse(text: &str, file: &str) -> Result<MigrationFile, FileError> {
    let place = Place {
        text,
        file,
        spots: Spots::default(),
    };
    let version: VersionOnly = toml::from_str(text).map_err(|e| place.toml(&e))?;
    let Some(version) = version.version else {
        return Err(place.at(0, "expected `version = 1` at the top of the file"));
    };
    match version.get_ref().as_integer() {
        Some(1) => {}
        _ => {
            return Err(place.at(
                version.span().start,
                format!(
                    "unsupported version {}: this cutover reads version 1",
                    version.get_ref()
                ),
            ))
        }
    }
    let raw: RawV1 = toml::from_str(text).map_err(|e| place.toml(&e))?;
    place.validate(raw)
}

/// The file's text and name, to turn byte offsets into line and column,
/// and the places found so far.
struct Place<'a> {
    /// The whole text.
    text: &'a str,
    /// The name for messages.
    file: &'a str,
    /// Where each part was written.
    spots: Spots,
}

/// The record types a migration cannot set: the SOA (the provider's), meta
/// types, and what a DNSSEC signer computes.
const UNMOVABLE: &[RecordType] = &[
    RecordType::SOA,
    RecordType::ANY,
    RecordType::AXFR,
    RecordType::IXFR,
    RecordType::OPT,
    RecordType::TSIG,
    RecordType::SIG,
    RecordType::RRSIG,
    RecordType::NSEC,
    RecordType::NSEC3,
    RecordType::NSEC3PARAM,
    RecordType::ZERO,
    RecordType::NULL,
];

/// The cache names of `[flush]` besides the kinds of cutover-flush.
const ALL_CACHES: &str = "all";

impl Place<'_> {
    /// The line and column of a byte offset.
    fn spot(&self, offset: usize) -> Spot {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        Spot { line, column }
    }

    /// The place of a spanned value.
    fn of<T>(&self, value: &Spanned<T>) -> Spot {
        self.spot(value.span().start)
    }

    /// An error at a byte offset.
    fn at(&self, offset: usize, message: impl Into<String>) -> FileError {
        let spot = self.spot(offset);
        FileError {
            file: self.file.to_string(),
            line: spot.line,
            column: spot.column,
            message: message.into(),
        }
    }

    /// An error at a spanned value.
    fn on<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> FileError {
        self.at(value.span().start, message)
    }

    /// A TOML error, at its span.
    fn toml(&self, error: &toml::de::Error) -> FileError {
        let offset = error.span().map(|s| s.start).unwrap_or(0);
        self.at(offset, error.message().trim_end().to_string())
    }

    /// Checks raw version-1 tables and types them.
    fn validate(mut self, raw: RawV1) -> Result<MigrationFile, FileError> {
        let keys = self.keys(&raw.key)?;
        let (zones, providers, every_zone) = self.zones(&raw)?;
        self.keys_used(&providers, &raw.key)?;
        let zone = zones
            .first()
            .map_or_else(Name::root, |z: &ZoneTarget| z.name.clone());
        self.spots.zone = zones
            .first()
            .map(|z| z.spot)
            .or(every_zone)
            .unwrap_or_default();
        self.spots.provider = self.spots.providers.first().copied().unwrap_or_default();
        let provider = providers
            .first()
            .cloned()
            .expect("a file that names a zone names its provider");
        let mut moves = Vec::new();
        for m in &raw.moves {
            let (typed, spots) = self.move_of(m, &zones, every_zone)?;
            self.moves_agree(&moves, &typed, m)?;
            moves.push(typed);
            self.spots.moves.push(spots);
        }
        if moves.is_empty() {
            return Err(self.at(
                self.text.len(),
                "expected at least one [[move]] (from/to addresses, or name/type/values)",
            ));
        }
        let ttl = self.ttl(raw.ttl)?;
        let mut checks: Vec<Check> = Vec::new();
        for c in &raw.check {
            let (check, spots) = self.check(c)?;
            if checks.contains(&check) {
                return Err(self.on(c, "this [[check]] repeats an earlier one"));
            }
            checks.push(check);
            self.spots.checks.push(spots);
        }
        let schedule = self.schedule(raw.schedule)?;
        let verify = self.verify(raw.verify.as_ref())?;
        let flush = self.flush(raw.flush)?;
        let mail = raw.mail.as_ref().map(|m| self.mail(m)).transpose()?;
        let approve = raw.approve.as_ref().map(|a| self.approve(a)).transpose()?;
        let notify = raw
            .notify
            .iter()
            .map(|n| self.notify(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MigrationFile {
            name: self.file.to_string(),
            spots: self.spots,
            zone,
            provider,
            zones,
            providers,
            every_zone,
            keys,
            moves,
            ttl,
            checks,
            schedule,
            verify,
            flush,
            mail,
            approve,
            notify,
        })
    }

    /// The zones and their providers: `zone = NAME`, `zones = [NAMES]` or
    /// `zones = "*"` through the file's `provider`, and `[[zone]]` tables
    /// with a provider of their own or the file's. Each zone once; each
    /// provider once (zones naming the same settings share it); a file
    /// `provider` that no zone uses is refused.
    #[allow(clippy::type_complexity)]
    fn zones(
        &mut self,
        raw: &RawV1,
    ) -> Result<(Vec<ZoneTarget>, Vec<ProviderSpec>, Option<Spot>), FileError> {
        // (name as written, its provider table: None for the file's)
        #[allow(clippy::type_complexity)]
        let mut named: Vec<(
            Spanned<String>,
            Option<&Spanned<RawProvider>>,
            Option<&Spanned<Vec<Spanned<String>>>>,
        )> = Vec::new();
        let mut every_zone = None;
        let mut one_zone: Option<&Spanned<OneOrTables<RawZone>>> = None;
        if let Some(zone) = &raw.zone {
            match zone.get_ref() {
                OneOrTables::One(name) => {
                    one_zone = Some(zone);
                    named.push((Spanned::new(zone.span(), name.clone()), None, None));
                }
                OneOrTables::Tables(tables) => {
                    if tables.is_empty() {
                        return Err(self.on(
                            zone,
                            "`zone` is empty: expected [[zone]] tables, each with `name`",
                        ));
                    }
                }
            }
        }
        if let Some(list) = &raw.zones {
            if let Some(one) = one_zone {
                return Err(self.on(
                    list,
                    format!(
                        "`zones` and `zone` (line {}) both name zones: write every zone in `zones = [...]`, or one in `zone`",
                        self.of(one).line
                    ),
                ));
            }
            match list.get_ref() {
                toml::Value::String(s) if s.trim() == "*" => {
                    every_zone = Some(self.of(list));
                }
                toml::Value::Array(items) => {
                    if items.is_empty() {
                        return Err(self.on(list, "`zones` is empty: expected the zones' names, e.g. [\"a.example.\", \"b.example.\"], or \"*\" for every zone of the provider"));
                    }
                    // The array's items carry no places of their own: find
                    // each one's in the text, in order.
                    let mut from = list.span().start;
                    for item in items {
                        let toml::Value::String(name) = item else {
                            return Err(self.on(list, format!("`zones`: {item} is not a zone's name: expected strings, e.g. \"a.example.\"")));
                        };
                        let at = self.text[from..list.span().end]
                            .find(&format!("{name:?}"))
                            .or_else(|| self.text[from..list.span().end].find(name.as_str()))
                            .map_or(from, |i| from + i);
                        from = (at + name.len()).min(list.span().end);
                        named.push((
                            Spanned::new(at..at + name.len() + 2, name.clone()),
                            None,
                            None,
                        ));
                    }
                }
                other => {
                    return Err(self.on(
                        list,
                        format!("`zones` = {other}: expected a list of zones, e.g. [\"a.example.\", \"b.example.\"], or \"*\" for every zone of the provider"),
                    ))
                }
            }
        }
        if let Some(zone) = &raw.zone {
            if let OneOrTables::Tables(tables) = zone.get_ref() {
                if let Some(list) = raw.zones.as_ref().filter(|_| every_zone.is_some()) {
                    return Err(self.on(
                        &tables[0],
                        format!("zones = \"*\" (line {}) already takes every zone of the provider: drop the [[zone]] tables, or list the zones", self.of(list).line),
                    ));
                }
                for t in tables {
                    named.push((
                        t.get_ref().name.clone(),
                        t.get_ref().provider.as_ref(),
                        t.get_ref().authorities.as_ref(),
                    ));
                }
            }
        }
        if named.is_empty() && every_zone.is_none() {
            return Err(self.at(
                0,
                "expected the zone: `zone = \"example.com.\"`, `zones = [\"a.example.\", \"b.example.\"]` (or \"*\") with a `provider`, or [[zone]] tables",
            ));
        }
        // The file's provider, checked once, when given.
        let file_provider = match &raw.provider {
            Some(p) => Some((self.provider(p, &raw.key)?, self.of(p))),
            None => None,
        };
        let mut providers: Vec<ProviderSpec> = Vec::new();
        let mut spots: Vec<Spot> = Vec::new();
        let mut index_of = |spec: ProviderSpec, spot: Spot| {
            if let Some(i) = providers.iter().position(|p| *p == spec) {
                return i;
            }
            providers.push(spec);
            spots.push(spot);
            providers.len() - 1
        };
        let mut zones: Vec<ZoneTarget> = Vec::new();
        let mut file_provider_used = every_zone.is_some();
        if every_zone.is_some() {
            let Some((spec, spot)) = &file_provider else {
                return Err(self.at(0, "zones = \"*\" takes every zone of the file's `provider`: expected `provider = { kind = … }`"));
            };
            let list = raw.zones.as_ref().expect("every_zone comes from `zones`");
            // Who can say which zones it holds: the store, PowerDNS's API
            // and Route 53's (ListHostedZones). The others cannot.
            let cannot = match spec {
                ProviderSpec::Embedded | ProviderSpec::Powerdns { .. } => None,
                ProviderSpec::Rfc2136 { .. } => Some(
                    "the rfc2136 provider cannot list the zones it holds: RFC 2136 has no way to ask a server which zones it serves".to_string(),
                ),
                ProviderSpec::Cloud { service, settings, .. } if service == "route53" => settings
                    .iter()
                    .any(|(key, _)| key == "zone_id")
                    .then(|| "`zone_id` names one hosted zone, and \"*\" asks Route 53 for every zone of the account: drop zone_id".to_string()),
                ProviderSpec::Cloud { service, .. } => Some(format!(
                    "the cloud service {service:?} cannot list the zones it holds (dns-update has no list of zones; only route53 and kind = \"powerdns\" are asked for theirs)"
                )),
            };
            if let Some(why) = cannot {
                return Err(self.on(
                    list,
                    format!("zones = \"*\": {why}: name the zones, e.g. zones = [\"a.example.\", \"b.example.\"]"),
                ));
            }
            index_of(spec.clone(), *spot);
        }
        for (text, own, authorities) in &named {
            let name = self.name(text, None)?;
            if name.is_root() {
                return Err(self.on(
                    text,
                    "the root zone cannot be migrated: expected a zone such as \"example.com.\"",
                ));
            }
            if let Some(earlier) = zones.iter().find(|z| z.name == name) {
                return Err(self.on(
                    text,
                    format!(
                        "the zone {name} is already named at line {}: name each zone once",
                        earlier.spot.line
                    ),
                ));
            }
            let provider = match own {
                Some(table) => {
                    let spec = self.provider(table, &raw.key)?;
                    index_of(spec, self.of(table))
                }
                None => {
                    let Some((spec, spot)) = &file_provider else {
                        let message = match raw.zone.as_ref().map(|z| z.get_ref()) {
                            Some(OneOrTables::Tables(_)) => format!(
                                "[[zone]] {name}: expected `provider = {{ kind = … }}` in this table, or a `provider` for the whole file"
                            ),
                            _ => "expected `provider = { kind = \"embedded\" }` (or rfc2136, powerdns): where the zone's records live".to_string(),
                        };
                        return Err(self.on(text, message));
                    };
                    file_provider_used = true;
                    index_of(spec.clone(), *spot)
                }
            };
            let authorities = match authorities {
                Some(list) if list.get_ref().is_empty() => {
                    return Err(self.on(
                        list,
                        format!("[[zone]] {name}: `authorities` is empty: list the addresses that serve it, or leave it out to ask [verify] authorities"),
                    ))
                }
                Some(list) => self.dns_addresses(list)?,
                None => Vec::new(),
            };
            zones.push(ZoneTarget {
                name,
                provider,
                spot: self.of(text),
                authorities,
            });
        }
        if let (Some(raw_provider), false) = (&raw.provider, file_provider_used) {
            return Err(self.on(
                raw_provider,
                "this `provider` is used by no zone: every [[zone]] names its own; drop it, or leave `provider` out of a [[zone]] to use it",
            ));
        }
        self.spots.providers = spots;
        Ok((zones, providers, every_zone))
    }

    /// Every `[[key]]` is the key of an rfc2136 provider of the file.
    fn keys_used(
        &self,
        providers: &[ProviderSpec],
        keys: &[Spanned<RawKey>],
    ) -> Result<(), FileError> {
        let used: Vec<&String> = providers
            .iter()
            .filter_map(|p| match p {
                ProviderSpec::Rfc2136 { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        for k in keys {
            let name = key_name(k.get_ref().name.get_ref());
            if used.iter().any(|u| key_name(u) == name) {
                continue;
            }
            let message = match (providers, used.as_slice()) {
                (_, [one]) if providers.len() == 1 => format!(
                    "[[key]] {:?} is not the provider's key {:?}: only that key is used",
                    k.get_ref().name.get_ref(),
                    one
                ),
                ([ProviderSpec::Embedded], _) => {
                    "a [[key]] is used only by an rfc2136 provider; the embedded one takes none"
                        .to_string()
                }
                ([ProviderSpec::Powerdns { .. }], _) => {
                    "a [[key]] is used only by an rfc2136 provider; a powerdns one takes api_key_file"
                        .to_string()
                }
                _ => format!(
                    "[[key]] {:?} is the key of no rfc2136 provider of this file: only their keys are used",
                    k.get_ref().name.get_ref()
                ),
            };
            let at = if used.is_empty() {
                self.of(k)
            } else {
                self.of(&k.get_ref().name)
            };
            return Err(FileError {
                file: self.file.to_string(),
                line: at.line,
                column: at.column,
                message,
            });
        }
        Ok(())
    }

    /// One `[[notify]]` table, its secrets, files and variables noted.
    fn notify(&mut self, raw: &Spanned<RawNotify>) -> Result<Target, FileError> {
        let mut noted: Vec<(Noted, String, usize)> = Vec::new();
        let target = Target::from_raw(raw, &mut |what, key, offset| {
            noted.push((what, key.to_string(), offset));
        })
        .map_err(|(offset, message)| self.at(offset, message))?;
        for (what, key, offset) in noted {
            let spot = self.spot(offset);
            match what {
                Noted::Inline => self.spots.inline_secrets.push((key, spot)),
                Noted::File => self.spots.local_files.push((key, spot)),
                Noted::Env(name_key) => {
                    self.spots
                        .env_secrets
                        .push((name_key.to_string(), key, spot))
                }
            }
        }
        Ok(target)
    }

    /// `approve = "before_STEP"`: the planned step an operator's approval
    /// gates, by its name.
    fn approve(&mut self, text: &Spanned<String>) -> Result<StepKind, FileError> {
        self.spots.approve = Some(self.of(text));
        let s = text.get_ref().trim();
        let named = s.strip_prefix("before_").and_then(|step| {
            StepKind::PLANNED
                .into_iter()
                .find(|kind| kind.as_str() == step)
        });
        named.ok_or_else(|| {
            let expected: Vec<String> = StepKind::PLANNED
                .iter()
                .map(|kind| format!("before_{}", kind.as_str()))
                .collect();
            let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
            self.on(
                text,
                format!(
                    "unknown approval gate {s:?}: expected \"before_\" and a step's name, one of {}",
                    quoted(&expected)
                ),
            )
        })
    }

    /// A domain name, relative ones completed with `origin` (or refused
    /// without one).
    fn name(&self, text: &Spanned<String>, origin: Option<&Name>) -> Result<Name, FileError> {
        let s = text.get_ref().trim();
        let parsed = if s == "@" {
            origin.cloned().ok_or(())
        } else if s.is_empty() {
            Err(())
        } else if s.ends_with('.') {
            Name::from_ascii(s).map_err(|_| ())
        } else {
            match origin {
                Some(origin) => Name::from_ascii(s)
                    .and_then(|n| n.append_domain(origin))
                    .map_err(|_| ()),
                None => Name::from_ascii(format!("{s}.")).map_err(|_| ()),
            }
        };
        parsed.map_err(|_| {
            self.on(
                text,
                format!("{s:?} is not a domain name: expected e.g. \"example.com.\""),
            )
        })
    }

    /// An IP address.
    fn ip(&self, text: &Spanned<String>) -> Result<IpAddr, FileError> {
        text.get_ref().trim().parse().map_err(|_| {
            self.on(
                text,
                format!(
                    "{:?} is not an IP address: expected e.g. \"192.0.2.10\" or \"2001:db8::10\"",
                    text.get_ref()
                ),
            )
        })
    }

    /// An IP address a server can have: not unspecified, multicast or broadcast.
    fn host_ip(&self, text: &Spanned<String>) -> Result<IpAddr, FileError> {
        let ip = self.ip(text)?;
        let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        if ip.is_unspecified() || ip.is_multicast() || broadcast {
            return Err(self.on(
                text,
                format!("{ip} cannot be a server's address: expected a unicast address"),
            ));
        }
        Ok(ip)
    }

    /// `provider = { … }`: the kind, and only the keys that kind takes.
    fn provider(
        &mut self,
        spanned: &Spanned<RawProvider>,
        keys: &[Spanned<RawKey>],
    ) -> Result<ProviderSpec, FileError> {
        let p = spanned.get_ref();
        let Some(kind) = &p.kind else {
            return Err(self.on(
                spanned,
                format!("provider: expected `kind`, one of {}", quoted(KINDS)),
            ));
        };
        let fields = p.fields();
        let takes: &[&str] = match kind.get_ref().as_str() {
            "embedded" => &[],
            "rfc2136" => &["server", "key", "key_file"],
            "powerdns" => &["url", "api_key", "api_key_file", "api_key_env", "server_id"],
            "cloud" => return self.cloud(spanned, keys),
            other => {
                return Err(self.on(
                    kind,
                    format!(
                        "unknown provider kind {other:?}: expected one of {}",
                        quoted(KINDS)
                    ),
                ))
            }
        };
        for (name, value) in fields {
            if let Some(value) = value {
                if !takes.contains(&name) {
                    return Err(self.on(
                        value,
                        format!(
                            "`{name}` does not apply to the {} provider{}",
                            kind.get_ref(),
                            if takes.is_empty() {
                                " (it takes no settings)".to_string()
                            } else {
                                format!(" (it takes {})", takes.join(", "))
                            }
                        ),
                    ));
                }
                if value.get_ref().trim().is_empty() {
                    return Err(self.on(value, format!("provider.{name} is empty")));
                }
            }
        }
        if let Some(list) = &p.nameservers {
            return Err(self.on(
                list,
                format!(
                    "`nameservers` does not apply to the {} provider (only to cloud hosts read by DNS)",
                    kind.get_ref()
                ),
            ));
        }
        for (name, value) in [
            ("provider.key_file", &p.key_file),
            ("provider.api_key_file", &p.api_key_file),
        ] {
            if let Some(value) = value {
                self.spots
                    .local_files
                    .push((name.to_string(), self.of(value)));
            }
        }
        for (name, value) in [("provider.api_key_env", &p.api_key_env)] {
            if let Some(value) = value {
                self.env_name(name, value)?;
            }
        }
        match kind.get_ref().as_str() {
            // Which [[key]] belongs to which provider is checked once all
            // providers are read (`keys_used`).
            "embedded" => Ok(ProviderSpec::Embedded),
            "rfc2136" => self.rfc2136(spanned, keys),
            _ => self.powerdns(spanned),
        }
    }

    /// The settings of a cloud provider: its service, and only the keys
    /// that service takes (a credential as `KEY`, `KEY_file` or `KEY_env`).
    fn cloud(
        &mut self,
        spanned: &Spanned<RawProvider>,
        keys: &[Spanned<RawKey>],
    ) -> Result<ProviderSpec, FileError> {
        let p = spanned.get_ref();
        if let Some(k) = keys.first() {
            return Err(self.on(
                k,
                "a [[key]] is used only by an rfc2136 provider; a cloud one takes its credentials in the provider table",
            ));
        }
        let Some(name) = &p.service else {
            return Err(self.on(
                spanned,
                format!(
                    "provider.service: expected the cloud host, one of {}",
                    services::names()
                ),
            ));
        };
        let Some(service) = services::service(name.get_ref().trim()) else {
            return Err(self.on(
                name,
                format!(
                    "unknown cloud service {:?}: expected one of {}",
                    name.get_ref(),
                    services::names()
                ),
            ));
        };
        let mut takes: Vec<String> = vec!["service".into()];
        for setting in service.settings {
            takes.push(setting.key.into());
            if setting.secret {
                takes.push(format!("{}_file", setting.key));
                takes.push(format!("{}_env", setting.key));
            }
        }
        for (key, value) in p.fields() {
            let Some(value) = value else { continue };
            if !takes.iter().any(|t| t == key) {
                return Err(self.on(
                    value,
                    format!(
                        "`{key}` does not apply to cloud service \"{}\" (it takes {})",
                        service.name,
                        takes.join(", ")
                    ),
                ));
            }
            if value.get_ref().trim().is_empty() {
                return Err(self.on(value, format!("provider.{key} is empty")));
            }
        }
        let reads_dns = service.settings.iter().any(|s| s.key == "nameservers");
        let mut nameservers = Vec::new();
        match (&p.nameservers, reads_dns) {
            (Some(list), false) => {
                return Err(self.on(
                    list,
                    format!(
                        "`nameservers` does not apply to cloud service \"{}\": it is read through its API",
                        service.name
                    ),
                ))
            }
            (Some(list), true) => {
                if list.get_ref().is_empty() {
                    return Err(self.on(
                        list,
                        "provider.nameservers is empty: expected the zone's authoritative servers, e.g. [\"ns1.host.example:53\"]",
                    ));
                }
                for server in list.get_ref() {
                    self.server_address(server).map_err(|mut e| {
                        e.message = e.message.replace("provider.server", "provider.nameservers");
                        e
                    })?;
                    nameservers.push(server.get_ref().trim().to_string());
                }
            }
            (None, _) => {}
        }
        let mut secrets = Vec::new();
        let mut settings = Vec::new();
        for setting in service.settings {
            if setting.key == "nameservers" {
                if setting.required && nameservers.is_empty() {
                    return Err(self.on(
                        spanned,
                        format!(
                            "provider.nameservers: expected {} ({} is read by DNS)",
                            setting.what, service.title
                        ),
                    ));
                }
                continue;
            }
            if !setting.secret {
                match p.field(setting.key) {
                    Some(value) => {
                        let text = value.get_ref().trim();
                        if setting.key == "url" {
                            self.cloud_url(value)?;
                        }
                        settings.push((
                            setting.key.to_string(),
                            text.trim_end_matches('/').to_string(),
                        ));
                    }
                    None if setting.required => {
                        return Err(self.on(
                            spanned,
                            format!(
                                "provider.{}: expected {} ({} needs it)",
                                setting.key, setting.what, service.title
                            ),
                        ))
                    }
                    None => {}
                }
                continue;
            }
            let key = setting.key;
            let file_key = format!("{key}_file");
            let env_key = format!("{key}_env");
            let inline = p.field(key);
            let file = p.field(&file_key);
            let env = p.field(&env_key);
            let secret = match (inline, file, env) {
                (Some(inline), None, None) => {
                    self.spots
                        .inline_secrets
                        .push((format!("provider.{key}"), self.of(inline)));
                    Secret::Inline(inline.get_ref().trim().to_string())
                }
                (None, Some(file), None) => {
                    self.spots
                        .local_files
                        .push((format!("provider.{file_key}"), self.of(file)));
                    Secret::File(PathBuf::from(file.get_ref().trim()))
                }
                (None, None, Some(name)) => {
                    self.env_name(&format!("provider.{env_key}"), name)?;
                    Secret::Env(name.get_ref().trim().to_string())
                }
                (None, None, None) if setting.required => {
                    return Err(self.on(
                        spanned,
                        format!(
                            "provider: expected `{file_key} = PATH` (a file holding {what}), `{env_key} = NAME` (an environment variable holding it) or `{key}` ({} needs it)",
                            service.title,
                            what = setting.what,
                        ),
                    ))
                }
                (None, None, None) => continue,
                (inline, file, env) => {
                    let second = [env, file, inline]
                        .into_iter()
                        .flatten()
                        .next()
                        .expect("two of three are given");
                    return Err(self.on(
                        second,
                        format!("give {} once: {file_key}, {env_key} or {key}, not two", setting.what),
                    ));
                }
            };
            secrets.push((key.to_string(), secret));
        }
        Ok(ProviderSpec::Cloud {
            service: service.name.to_string(),
            secrets,
            settings,
            nameservers,
        })
    }

    /// A cloud host's `url`: http(s), no credentials, query or fragment.
    fn cloud_url(&self, url: &Spanned<String>) -> Result<(), FileError> {
        let text = url.get_ref().trim();
        let Some(rest) = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
        else {
            return Err(self.on(
                url,
                format!("provider.url {text:?}: expected an http:// or https:// URL"),
            ));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if rest.contains(['?', '#']) || authority.contains('@') {
            return Err(self.on(
                url,
                "provider.url: expected the API's base URL, without credentials, a query or a fragment (they would be shown wherever the URL is)",
            ));
        }
        if authority.is_empty() {
            return Err(self.on(url, format!("provider.url {text:?} has no host")));
        }
        Ok(())
    }

    /// The settings of an rfc2136 provider.
    fn rfc2136(
        &mut self,
        spanned: &Spanned<RawProvider>,
        keys: &[Spanned<RawKey>],
    ) -> Result<ProviderSpec, FileError> {
        let p = spanned.get_ref();
        let Some(server) = &p.server else {
            return Err(self.on(
                spanned,
                "provider.server: expected the primary's address, e.g. \"192.0.2.53:53\"",
            ));
        };
        self.server_address(server)?;
        let Some(key) = &p.key else {
            return Err(self.on(
                spanned,
                "provider.key: expected the TSIG key's name, e.g. \"ops.\"",
            ));
        };
        self.name(key, None)?;
        let wanted = key_name(key.get_ref());
        let matching: Vec<&Spanned<RawKey>> = keys
            .iter()
            .filter(|k| key_name(k.get_ref().name.get_ref()) == wanted)
            .collect();
        match (&p.key_file, matching.first()) {
            (Some(file), Some(_)) => {
                return Err(self.on(
                    file,
                    format!(
                        "the key {:?} is given twice, by key_file and by a [[key]]: keep one",
                        key.get_ref()
                    ),
                ))
            }
            (None, None) => {
                return Err(self.on(
                    key,
                    format!(
                        "provider.key {:?}: expected `key_file = PATH` or a [[key]] named {:?} in this file",
                        key.get_ref(),
                        key.get_ref()
                    ),
                ))
            }
            _ => {}
        }
        Ok(ProviderSpec::Rfc2136 {
            server: server.get_ref().trim().to_string(),
            key: key.get_ref().trim().to_string(),
            key_file: p
                .key_file
                .as_ref()
                .map(|f| PathBuf::from(f.get_ref().trim())),
        })
    }

    /// The settings of a powerdns provider.
    fn powerdns(&mut self, spanned: &Spanned<RawProvider>) -> Result<ProviderSpec, FileError> {
        let p = spanned.get_ref();
        let Some(url) = &p.url else {
            return Err(self.on(
                spanned,
                "provider.url: expected the PowerDNS API's URL, e.g. \"http://127.0.0.1:8081\"",
            ));
        };
        let text = url.get_ref().trim();
        let Some(rest) = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
        else {
            return Err(self.on(
                url,
                format!("provider.url {text:?}: expected an http:// or https:// URL"),
            ));
        };
        if rest.contains(['?', '#']) {
            return Err(self.on(
                url,
                "provider.url: expected the API's base URL, without a query or fragment (a key in it would be shown wherever the URL is: give it by api_key_file)",
            ));
        }
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err(self.on(
                url,
                "provider.url holds credentials, which would be shown wherever the URL is: give the API key by api_key_file instead",
            ));
        }
        if authority.is_empty() {
            return Err(self.on(url, format!("provider.url {text:?} has no host")));
        }
        let api_key = match (&p.api_key, &p.api_key_file, &p.api_key_env) {
            (Some(inline), None, None) => {
                self.spots
                    .inline_secrets
                    .push(("provider.api_key".into(), self.of(inline)));
                Secret::Inline(inline.get_ref().trim().to_string())
            }
            (None, Some(file), None) => Secret::File(PathBuf::from(file.get_ref().trim())),
            (None, None, Some(name)) => Secret::Env(name.get_ref().trim().to_string()),
            (None, None, None) => {
                return Err(self.on(
                    spanned,
                    "provider: expected `api_key_file = PATH` (a file holding the PowerDNS API key), `api_key_env = NAME` (an environment variable holding it) or `api_key`",
                ))
            }
            (inline, file, env) => {
                let second = [env.as_ref(), file.as_ref(), inline.as_ref()]
                    .into_iter()
                    .flatten()
                    .next()
                    .expect("two of three are given");
                return Err(self.on(
                    second,
                    "give the API key once: api_key_file, api_key_env or api_key, not two",
                ));
            }
        };
        if let Some(id) = &p.server_id {
            let ok = id
                .get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok || id.get_ref().starts_with('.') {
                return Err(self.on(
                    id,
                    format!(
                        "provider.server_id {:?}: expected letters, digits, '-', '_' and '.' (e.g. \"localhost\")",
                        id.get_ref()
                    ),
                ));
            }
        }
        Ok(ProviderSpec::Powerdns {
            url: text.trim_end_matches('/').to_string(),
            api_key,
            server_id: p.server_id.as_ref().map(|s| s.get_ref().clone()),
        })
    }

    /// An rfc2136 primary's address: an IP, `IP:port` or `host:port`.
    fn server_address(&self, text: &Spanned<String>) -> Result<(), FileError> {
        let s = text.get_ref().trim();
        let bad = |why: &str| {
            self.on(
                text,
                format!(
                    "provider.server {s:?}: {why}: expected an address such as \"192.0.2.53:53\""
                ),
            )
        };
        if let Ok(ip) = s.parse::<IpAddr>() {
            return if ip.is_unspecified() || ip.is_multicast() {
                Err(bad("not a server's address"))
            } else {
                Ok(())
            };
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return if addr.port() == 0 {
                Err(bad("port 0"))
            } else {
                Ok(())
            };
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        };
        if let Some(port) = port {
            match port.parse::<u16>() {
                Ok(0) => return Err(bad("port 0")),
                Ok(_) => {}
                Err(_) => return Err(bad("the port is not a number")),
            }
        }
        if host.is_empty() || Name::from_ascii(host).is_err() {
            return Err(bad("not a host name"));
        }
        Ok(())
    }

    /// An environment variable's name for the secret `key`: letters,
    /// digits and `_`, not starting with a digit; noted with its place.
    fn env_name(&mut self, key: &str, name: &Spanned<String>) -> Result<(), FileError> {
        let text = name.get_ref().trim();
        let valid = text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(self.on(
                name,
                format!("{key} {text:?}: expected an environment variable's name (letters, digits and '_', e.g. \"PDNS_API_KEY\")"),
            ));
        }
        self.spots
            .env_secrets
            .push((key.to_string(), text.to_string(), self.of(name)));
        Ok(())
    }

    /// The inline `[[key]]`s: each a valid TSIG key, each name once.
    fn keys(&mut self, keys: &[Spanned<RawKey>]) -> Result<Vec<KeySpec>, FileError> {
        let mut out: Vec<KeySpec> = Vec::new();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for spanned in keys {
            let k = spanned.get_ref();
            let name = self.name(&k.name, None)?;
            if !names.insert(key_name(k.name.get_ref())) {
                return Err(self.on(&k.name, format!("a [[key]] named {name} is given twice")));
            }
            let secret = match (&k.secret, &k.secret_env) {
                (Some(secret), None) => {
                    Key::from_text(k.name.get_ref(), k.algorithm.get_ref(), secret.get_ref())
                        .map_err(|e| {
                            let at = if e.to_string().contains("algorithm") {
                                k.algorithm.span()
                            } else {
                                secret.span()
                            };
                            self.at(at.start, format!("[[key]] {name}: {e}"))
                        })?;
                    self.spots
                        .inline_secrets
                        .push(("key.secret".into(), self.of(secret)));
                    Secret::Inline(secret.get_ref().trim().to_string())
                }
                (None, Some(env)) => {
                    // The algorithm is checked now; the secret when it is read.
                    Key::from_text(k.name.get_ref(), k.algorithm.get_ref(), "AAAA").map_err(
                        |e| self.at(k.algorithm.span().start, format!("[[key]] {name}: {e}")),
                    )?;
                    self.env_name("key.secret_env", env)?;
                    Secret::Env(env.get_ref().trim().to_string())
                }
                (Some(_), Some(env)) => {
                    return Err(self.on(
                        env,
                        format!("[[key]] {name}: give the secret once: secret_env or secret, not both"),
                    ))
                }
                (None, None) => {
                    return Err(self.on(
                        spanned,
                        format!("[[key]] {name}: expected `secret_env = NAME` (an environment variable holding the base64 secret) or `secret`"),
                    ))
                }
            };
            out.push(KeySpec {
                name: k.name.get_ref().trim().to_string(),
                algorithm: k.algorithm.get_ref().trim().to_string(),
                secret,
            });
        }
        Ok(out)
    }

    /// One `[[move]]`.
    fn move_of(
        &self,
        m: &Spanned<RawMove>,
        zones: &[ZoneTarget],
        every_zone: Option<Spot>,
    ) -> Result<(Move, MoveSpots), FileError> {
        let start = m.span().start;
        let at = self.spot(start);
        let m = m.get_ref();
        let by_address = m.from.is_some() || m.to.is_some();
        let explicit = m.name.is_some() || m.rtype.is_some() || m.values.is_some();
        match (by_address, explicit) {
            (true, true) => Err(self.at(
                start,
                "a [[move]] is either by address (from, to) or explicit (name, type, values), not both",
            )),
            (false, false) => Err(self.at(
                start,
                "expected from/to addresses or name/type/values in this [[move]]",
            )),
            (true, false) => {
                let (Some(from), Some(to)) = (&m.from, &m.to) else {
                    return Err(self.at(start, "a move by address needs both `from` and `to`"));
                };
                let (f, t) = (self.ip(from)?, self.host_ip(to)?);
                if f.is_ipv4() != t.is_ipv4() {
                    return Err(self.on(
                        to,
                        format!("`to` must be the same address family as `from` ({f})"),
                    ));
                }
                if f == t {
                    return Err(self.on(to, "`to` is the same address as `from`"));
                }
                let spots = MoveSpots {
                    at,
                    subject: self.of(from),
                };
                Ok((
                    Move::Address {
                        from: f,
                        to: t,
                        spf: m.spf.as_ref().is_some_and(|s| *s.get_ref()),
                    },
                    spots,
                ))
            }
            (false, true) => {
                if let Some(spf) = &m.spf {
                    return Err(self.on(
                        spf,
                        "`spf` applies only to a move by address (from, to); an explicit move sets its RRset as written",
                    ));
                }
                let (Some(name), Some(rtype), Some(values)) = (&m.name, &m.rtype, &m.values) else {
                    return Err(self.at(
                        start,
                        "an explicit move needs `name`, `type` and `values`",
                    ));
                };
                if let Some(all) = every_zone {
                    return Err(self.on(
                        name,
                        format!("zones = \"*\" (line {}) takes moves by address only (from, to): which zone a name is in is known only once the provider lists its zones; name the zones to set a name's records", all.line),
                    ));
                }
                let owner = match zones {
                    [one] => self.name(name, Some(&one.name))?,
                    _ => {
                        let written = name.get_ref().trim();
                        if !written.ends_with('.') {
                            return Err(self.on(
                                name,
                                format!("{written:?}: with several zones, write the name absolute (ending in '.'), e.g. \"www.{}\"", zones[0].name),
                            ));
                        }
                        self.name(name, None)?
                    }
                };
                let Some(zone) = zones
                    .iter()
                    .filter(|z| z.name.zone_of(&owner))
                    .max_by_key(|z| z.name.num_labels())
                    .map(|z| &z.name)
                else {
                    return Err(self.on(
                        name,
                        match zones {
                            [one] => format!("{owner} is not in the zone {}", one.name),
                            _ => format!(
                                "{owner} is in none of the migration's zones ({})",
                                zones.iter().map(|z| z.name.to_string()).collect::<Vec<_>>().join(", ")
                            ),
                        },
                    ));
                };
                let rt: RecordType = rtype
                    .get_ref()
                    .trim()
                    .to_ascii_uppercase()
                    .parse()
                    .map_err(|_| {
                        self.on(
                            rtype,
                            format!("{:?} is not a record type: expected e.g. \"A\", \"AAAA\", \"CNAME\", \"MX\"", rtype.get_ref()),
                        )
                    })?;
                if UNMOVABLE.contains(&rt) || matches!(rt, RecordType::Unknown(_)) {
                    return Err(self.on(
                        rtype,
                        format!("{rt} records cannot be moved by a migration"),
                    ));
                }
                if rt == RecordType::CNAME && owner == *zone {
                    return Err(self.on(
                        name,
                        format!("{owner} is the zone's apex, which cannot hold a CNAME (it holds the SOA and NS)"),
                    ));
                }
                if values.get_ref().is_empty() {
                    return Err(self.on(
                        values,
                        "`values` is empty: expected at least one value (to delete an RRset, edit the zone instead)",
                    ));
                }
                if rt == RecordType::CNAME && values.get_ref().len() > 1 {
                    return Err(self.on(
                        &values.get_ref()[1],
                        "a CNAME has exactly one value: a name is an alias of one other name",
                    ));
                }
                let mut rdatas = Vec::new();
                for v in values.get_ref() {
                    let rdata = rdata_from_text(rt, v.get_ref(), zone).map_err(|e| {
                        self.on(v, format!("{:?} is not valid {rt} data: {e}", v.get_ref()))
                    })?;
                    if rdatas.contains(&rdata) {
                        return Err(self.on(v, format!("{:?} is given twice", v.get_ref())));
                    }
                    if let Some(ip) = super::address_of(&rdata) {
                        let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
                        if ip.is_unspecified() || ip.is_multicast() || broadcast {
                            return Err(self.on(
                                v,
                                format!("{ip} cannot be a server's address: expected a unicast address"),
                            ));
                        }
                    }
                    rdatas.push(rdata);
                }
                let spots = MoveSpots {
                    at,
                    subject: self.of(name),
                };
                Ok((
                    Move::Explicit {
                        name: owner,
                        rtype: rt,
                        values: values
                            .get_ref()
                            .iter()
                            .map(|v| v.get_ref().clone())
                            .collect(),
                        rdatas,
                    },
                    spots,
                ))
            }
        }
    }

    /// A move against the moves before it: one `from` moves once, an
    /// address is not both moved away and moved to (the moves are applied
    /// together, not in order), an RRset is set once.
    fn moves_agree(
        &self,
        earlier: &[Move],
        new: &Move,
        raw: &Spanned<RawMove>,
    ) -> Result<(), FileError> {
        let raw = raw.get_ref();
        for (i, m) in earlier.iter().enumerate() {
            let line = self.spots.moves[i].at.line;
            match (m, new) {
                (
                    Move::Address {
                        from: f1, to: t1, ..
                    },
                    Move::Address {
                        from: f2, to: t2, ..
                    },
                ) => {
                    if f1 == f2 {
                        return Err(self.on(
                            raw.from.as_ref().expect("an address move has from"),
                            format!("{f2} is already moved by the [[move]] at line {line} (to {t1}): give each address one move, with one `to`"),
                        ));
                    }
                    if f2 == t1 || f1 == t2 {
                        let (on, what) = if f2 == t1 {
                            (
                                raw.from.as_ref(),
                                format!("{f2} is the `to` of the [[move]] at line {line}"),
                            )
                        } else {
                            (
                                raw.to.as_ref(),
                                format!("{t2} is the `from` of the [[move]] at line {line}"),
                            )
                        };
                        return Err(self.on(
                            on.expect("an address move has from and to"),
                            format!("{what}: one migration cannot both move an address away and move to it (the moves happen at once, not one after the other)"),
                        ));
                    }
                }
                (
                    Move::Explicit {
                        name: n1,
                        rtype: r1,
                        ..
                    },
                    Move::Explicit {
                        name: n2,
                        rtype: r2,
                        ..
                    },
                ) if n1 == n2 && r1 == r2 => {
                    return Err(self.on(
                        raw.name.as_ref().expect("an explicit move has a name"),
                        format!("{n2} {r2} is already set by the [[move]] at line {line}: give all its values in one move"),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Seconds: a number, or a TTL or duration as text (read by
    /// `cutover_zone::duration`, as everywhere else in cutover).
    fn seconds(
        &self,
        value: &Spanned<toml::Value>,
        what: &str,
        kind: Seconds,
    ) -> Result<u64, FileError> {
        match value.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
            toml::Value::String(s) => {
                let error = |message: String| self.on(value, format!("{what}: {message}"));
                match kind {
                    Seconds::Ttl => duration::ttl(s)
                        .map(u64::from)
                        .map_err(|e| error(e.to_string())),
                    Seconds::Wait => {
                        let most = Duration::from_secs(u64::from(MAX_TTL));
                        let time = duration::duration(s, Duration::ZERO..=most)
                            .map_err(|e| error(e.to_string()))?;
                        match time.subsec_nanos() {
                            0 => Ok(time.as_secs()),
                            _ => Err(error(format!(
                                "{s:?} is not a whole number of seconds (e.g. 90s, 10m, 1h30m)"
                            ))),
                        }
                    }
                }
            }
            other => Err(self.on(
                value,
                format!("{what}: expected seconds or a duration such as \"10m\", found {other}"),
            )),
        }
    }

    /// Seconds within `range`, with what the range means.
    fn seconds_in(
        &self,
        value: &Spanned<toml::Value>,
        what: &str,
        kind: Seconds,
        range: Range<u64>,
        why: &str,
    ) -> Result<u64, FileError> {
        let s = self.seconds(value, what, kind)?;
        if !range.contains(&s) {
            return Err(self.on(
                value,
                format!(
                    "{what}: {} is out of range: expected {} to {} ({why})",
                    crate::plan::words(s),
                    crate::plan::words(range.start),
                    crate::plan::words(range.end - 1),
                ),
            ));
        }
        Ok(s)
    }

    /// `[ttl]`.
    fn ttl(&mut self, raw: Option<RawTtl>) -> Result<TtlPolicy, FileError> {
        let Some(raw) = raw else {
            return Ok(TtlPolicy {
                during: DEFAULT_DURING_TTL,
                after: AfterTtl::Original,
            });
        };
        let during = match &raw.during {
            Some(v) => {
                self.spots.ttl_during = Some(self.of(v));
                let t = self.seconds_in(
                    v,
                    "ttl.during",
                    Seconds::Ttl,
                    1..u64::from(MAX_DURING_TTL) + 1,
                    "the low TTL of the move: a TTL of 0 is not cached the same way by every resolver, and more than a day is no lowering",
                )?;
                t as u32
            }
            None => DEFAULT_DURING_TTL,
        };
        let after = match &raw.after {
            None => AfterTtl::Original,
            Some(v) if v.get_ref().as_str() == Some("original") => {
                self.spots.ttl_after = Some(self.of(v));
                AfterTtl::Original
            }
            Some(v) => {
                self.spots.ttl_after = Some(self.of(v));
                let t = self.seconds_in(
                    v,
                    "ttl.after (\"original\" or a TTL)",
                    Seconds::Ttl,
                    1..u64::from(MAX_TTL) + 1,
                    "a TTL fits 31 bits (RFC 2181 §8)",
                )? as u32;
                if t < during {
                    return Err(self.on(
                        v,
                        format!("ttl.after ({t}s) is below ttl.during ({during}s): the TTL during the move is the low one"),
                    ));
                }
                AfterTtl::Fixed(t)
            }
        };
        Ok(TtlPolicy { during, after })
    }

    /// A check's host: a name or an address.
    fn check_host(&self, text: &Spanned<String>, host: &str) -> Result<(), FileError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(self.on(text, format!("{ip} cannot be a server's address")));
            }
            return Ok(());
        }
        let name = host.trim_end_matches('.');
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            && Name::from_ascii(format!("{name}.")).is_ok();
        if !valid {
            return Err(self.on(text, format!("{host:?} is not a host name or an address")));
        }
        Ok(())
    }

    /// `host:port` of an SMTP or TCP check.
    fn host_port(&self, text: &Spanned<String>) -> Result<(String, u16), FileError> {
        let s = text.get_ref().trim();
        let bad = || {
            self.on(
                text,
                format!("{s:?}: expected \"host:port\" (e.g. \"mail.example.com:25\", \"[2001:db8::1]:25\")"),
            )
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(self.on(text, format!("{s:?}: port 0 cannot be checked")));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        self.check_host(text, host)?;
        Ok((host.to_ascii_lowercase(), port))
    }

    /// One `[[check]]`.
    fn check(&self, spanned: &Spanned<RawCheck>) -> Result<(Check, CheckSpots), FileError> {
        let start = spanned.span().start;
        let c = spanned.get_ref();
        let count = [c.http.is_some(), c.smtp.is_some(), c.tcp.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        if count != 1 {
            return Err(self.at(
                start,
                "expected exactly one of `http = URL`, `smtp = \"host:port\"`, `tcp = \"host:port\"` in this [[check]]",
            ));
        }
        let (kind, target) = if let Some(url) = &c.http {
            let parsed = cutover_probe::service::http::Url::parse(url.get_ref().trim())
                .map_err(|e| self.on(url, format!("{:?}: {e}", url.get_ref())))?;
            if parsed.port == 0 {
                return Err(self.on(
                    url,
                    format!("{:?}: port 0 cannot be checked", url.get_ref()),
                ));
            }
            self.check_host(url, &parsed.host)?;
            let expect_status = match &c.expect_status {
                Some(s) if (100..=599).contains(s.get_ref()) => *s.get_ref() as u16,
                Some(s) => {
                    return Err(self.on(
                        s,
                        format!(
                            "expect_status {}: expected an HTTP status from 100 to 599",
                            s.get_ref()
                        ),
                    ))
                }
                None => 200,
            };
            if let Some(b) = &c.body_contains {
                if b.get_ref().is_empty() {
                    return Err(self.on(b, "body_contains is empty: every body contains it"));
                }
            }
            (
                CheckKind::Http {
                    url: url.get_ref().trim().to_string(),
                    expect_status,
                    body_contains: c.body_contains.as_ref().map(|b| b.get_ref().clone()),
                },
                url,
            )
        } else {
            if let Some(extra) = c
                .expect_status
                .as_ref()
                .map(|s| s.span())
                .or(c.body_contains.as_ref().map(|b| b.span()))
            {
                return Err(self.at(
                    extra.start,
                    "`expect_status` and `body_contains` apply only to an http check",
                ));
            }
            if let Some(t) = &c.smtp {
                let (host, port) = self.host_port(t)?;
                (CheckKind::Smtp { host, port }, t)
            } else if let Some(t) = &c.tcp {
                let (host, port) = self.host_port(t)?;
                (CheckKind::Tcp { host, port }, t)
            } else {
                unreachable!("exactly one kind was counted above")
            }
        };
        let address = c.address.as_ref().map(|a| self.host_ip(a)).transpose()?;
        let spots = CheckSpots {
            at: self.spot(start),
            target: self.of(target),
            address: c.address.as_ref().map(|a| self.of(a)),
        };
        Ok((Check { kind, address }, spots))
    }

    /// `[schedule]`.
    fn schedule(&mut self, raw: Option<RawSchedule>) -> Result<Schedule, FileError> {
        let mut schedule = Schedule {
            switch_at: SwitchAt::Earliest,
            observe: DEFAULT_OBSERVE,
            margin: DEFAULT_MARGIN,
        };
        let Some(raw) = raw else { return Ok(schedule) };
        if let Some(at) = &raw.switch_at {
            self.spots.switch_at = Some(self.of(at));
            let s = at.get_ref().trim();
            schedule.switch_at = if s == "earliest" {
                SwitchAt::Earliest
            } else {
                SwitchAt::At(s.parse::<Timestamp>().map_err(|e| {
                    self.on(
                        at,
                        format!("{s:?}: expected \"earliest\" or an RFC 3339 time such as \"2026-03-01T02:00:00Z\" ({e})"),
                    )
                })?)
            };
        }
        if let Some(v) = &raw.observe {
            schedule.observe = self.seconds_in(
                v,
                "schedule.observe",
                Seconds::Wait,
                0..MAX_OBSERVE + 1,
                "the watch at the low TTL before restoring it",
            )?;
        }
        if let Some(v) = &raw.margin {
            schedule.margin = self.seconds_in(
                v,
                "schedule.margin",
                Seconds::Wait,
                0..MAX_MARGIN + 1,
                "added to every wait for caches",
            )?;
        }
        Ok(schedule)
    }

    /// A socket address; a bare IP means port 53.
    fn dns_address(&self, text: &Spanned<String>) -> Result<SocketAddr, FileError> {
        let s = text.get_ref().trim();
        let address = match s.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, 53),
            Err(_) => s.parse().map_err(|_| {
                self.on(
                    text,
                    format!("{s:?}: expected an address such as \"127.0.0.1:53\", \"192.0.2.53\" or \"[2001:db8::53]:53\""),
                )
            })?,
        };
        if address.port() == 0 || address.ip().is_unspecified() || address.ip().is_multicast() {
            return Err(self.on(
                text,
                format!("{s:?} cannot be asked: expected a server's unicast address and a port other than 0"),
            ));
        }
        Ok(address)
    }

    /// A list of DNS servers, each once.
    fn dns_addresses(
        &self,
        list: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<SocketAddr>, FileError> {
        let mut out = Vec::new();
        for a in list.get_ref() {
            let address = self.dns_address(a)?;
            if out.contains(&address) {
                return Err(self.on(a, format!("{address} is listed twice")));
            }
            out.push(address);
        }
        Ok(out)
    }

    /// `[verify]`.
    fn verify(&mut self, raw: Option<&Spanned<RawVerify>>) -> Result<Verify, FileError> {
        let mut verify = Verify {
            authorities: Vec::new(),
            resolvers: vec![SocketAddr::from(([127, 0, 0, 1], 53))],
            tries: DEFAULT_TRIES,
            interval: DEFAULT_INTERVAL,
            locations: Locations::default(),
            quorum: None,
        };
        let Some(spanned) = raw else {
            return Ok(verify);
        };
        self.spots.verify = Some(self.of(spanned));
        let raw = spanned.get_ref();
        if let Some(list) = &raw.authorities {
            self.spots.authorities = Some(self.of(list));
            verify.authorities = self.dns_addresses(list)?;
        }
        if let Some(list) = &raw.resolvers {
            self.spots.resolvers = Some(self.of(list));
            verify.resolvers = self.dns_addresses(list)?;
        }
        if verify.authorities.is_empty() && verify.resolvers.is_empty() {
            let at = raw
                .resolvers
                .as_ref()
                .map(|r| r.span())
                .unwrap_or_else(|| spanned.span());
            return Err(self.at(
                at.start,
                "verify.resolvers is empty and no authorities are listed: the zone's name servers are found through a resolver, so nothing could verify the switch (list `authorities`, or a resolver)",
            ));
        }
        if let Some(t) = &raw.tries {
            if !(1..=i64::from(MAX_TRIES)).contains(t.get_ref()) {
                return Err(self.on(
                    t,
                    format!("verify.tries {}: expected 1 to {MAX_TRIES}", t.get_ref()),
                ));
            }
            verify.tries = *t.get_ref() as u32;
        }
        if let Some(v) = &raw.interval {
            verify.interval = self.seconds_in(
                v,
                "verify.interval",
                Seconds::Wait,
                1..MAX_INTERVAL + 1,
                "the time between verification tries",
            )?;
        }
        if let Some(v) = &raw.locations {
            verify.locations = self.locations(v)?;
        }
        if let Some(v) = &raw.quorum {
            verify.quorum = self.quorum(v, &verify.locations)?;
        }
        Ok(verify)
    }

    /// `[verify] locations`: `"all"`, or a list of distinct names
    /// (`local` and the `--location` of agents).
    fn locations(&self, v: &Spanned<toml::Value>) -> Result<Locations, FileError> {
        let expected = "verify.locations: expected \"all\" or a list of location names such as [\"local\", \"fra1\"]";
        match v.get_ref() {
            toml::Value::String(s) if s == "all" => Ok(Locations::All),
            toml::Value::Array(items) if !items.is_empty() => {
                let mut names: Vec<String> = Vec::new();
                for item in items {
                    let Some(name) = item.as_str() else {
                        return Err(self.on(v, expected));
                    };
                    if !valid_location(name) {
                        return Err(self.on(
                            v,
                            format!("verify.locations: {name:?} is not a location name (1 to 64 letters, digits, '-', '_' or '.'; \"all\" alone, not in a list)"),
                        ));
                    }
                    if names.iter().any(|n| n == name) {
                        return Err(
                            self.on(v, format!("verify.locations: {name:?} is listed twice"))
                        );
                    }
                    names.push(name.to_string());
                }
                Ok(Locations::Listed(names))
            }
            _ => Err(self.on(v, expected)),
        }
    }

    /// `[verify] quorum`: `"all"` (`None`) or how many locations must agree,
    /// at least 1 and at most the number listed.
    fn quorum(
        &self,
        v: &Spanned<toml::Value>,
        locations: &Locations,
    ) -> Result<Option<u32>, FileError> {
        match v.get_ref() {
            toml::Value::String(s) if s == "all" => Ok(None),
            toml::Value::Integer(n) => {
                let most = match locations {
                    Locations::Listed(l) => l.len() as i64,
                    Locations::All => i64::from(u16::MAX),
                };
                if *n < 1 || *n > most {
                    let listed = match locations {
                        Locations::Listed(l) => format!(
                            "the {} location{} listed",
                            l.len(),
                            if l.len() == 1 { "" } else { "s" }
                        ),
                        Locations::All => "65535".to_string(),
                    };
                    return Err(self.on(
                        v,
                        format!("verify.quorum {n}: expected 1 to {listed}, or \"all\""),
                    ));
                }
                Ok(Some(*n as u32))
            }
            _ => Err(self.on(
                v,
                "verify.quorum: expected \"all\" or how many locations must agree (a number)",
            )),
        }
    }

    /// `[flush]`: caches cutover knows how to flush, each once.
    fn flush(&mut self, raw: Option<RawFlush>) -> Result<Flush, FileError> {
        let Some(raw) = raw else {
            return Ok(Flush::default());
        };
        let mut caches: Vec<String> = Vec::new();
        let mut kinds: Vec<String> = Vec::new();
        for c in &raw.caches {
            let name = c.get_ref().trim();
            let kind = if name.eq_ignore_ascii_case(ALL_CACHES) {
                ALL_CACHES.to_string()
            } else {
                match cutover_flush::Kind::from_str(name) {
                    Ok(kind) => format!("{kind:?}"),
                    Err(_) => {
                        return Err(self.on(
                            c,
                            format!("{name:?} is not a cache cutover can flush: expected \"unbound\", \"bind\", \"dnsmasq\", \"systemd-resolved\", \"nscd\" or \"all\""),
                        ))
                    }
                }
            };
            if kinds.iter().any(|k| k == ALL_CACHES) {
                return Err(self.on(c, format!("{name:?} is already flushed by \"all\"")));
            }
            if kind == ALL_CACHES && !kinds.is_empty() {
                return Err(self.on(c, "\"all\" flushes every cache: list it alone"));
            }
            if kinds.contains(&kind) {
                return Err(self.on(c, format!("{name:?} repeats a cache listed before")));
            }
            kinds.push(kind);
            caches.push(name.to_ascii_lowercase());
            self.spots.caches.push(self.of(c));
        }
        Ok(Flush { caches })
    }

    /// `[mail]`.
    fn mail(&mut self, spanned: &Spanned<RawMail>) -> Result<MailMove, FileError> {
        let m = spanned.get_ref();
        let domain = self.name(&m.domain, None)?;
        self.spots.mail = Some(self.of(&m.domain));
        self.spots.mail_from = Some(self.of(&m.from));
        let (from_host, from_port) = self.host_port(&m.from)?;
        let (to_host, to_port) = self.host_port(&m.to)?;
        if from_host == to_host && from_port == to_port {
            return Err(self.on(
                &m.to,
                "mail.to is mail.from: the mail would go where it goes now",
            ));
        }
        if domain.is_root() {
            return Err(self.on(
                &m.domain,
                "mail.domain: expected a mail domain such as \"example.com\"",
            ));
        }
        Ok(MailMove {
            domain: m.domain.get_ref().trim().trim_end_matches('.').to_string(),
            from: m.from.get_ref().trim().to_string(),
            to: m.to.get_ref().trim().to_string(),
        })
    }
}

/// A key's name as compared: no trailing dot, lower case.
fn key_name(text: &str) -> String {
    text.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Words in quotes, joined ("a", "b" or "c").
fn quoted(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}
