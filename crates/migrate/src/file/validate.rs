//! The migration file as written (TOML tables with their spans), and the
//! checks that type it: names, addresses, RDATA, durations, each error at
//! its line and column with what was expected.

use std::net::{IpAddr, SocketAddr};

use cutover_zone::zonefile::rdata_from_text;
use cutover_zone::{Name, RecordType};
use jiff::Timestamp;
use serde::Deserialize;
use toml::Spanned;

use super::{
    parse_duration, AfterTtl, Check, CheckKind, FileError, Flush, MailMove, MigrationFile, Move,
    Schedule, SwitchAt, TtlPolicy, Verify, DEFAULT_DURING_TTL, DEFAULT_INTERVAL, DEFAULT_MARGIN,
    DEFAULT_OBSERVE, DEFAULT_TRIES,
};
use crate::provider::{KeySpec, ProviderSpec};

/// Parses and checks migration file text; `file` names it in errors.
pub(super) fn parse(text: &str, file: &str) -> Result<MigrationFile, FileError> {
    let place = Place { text, file };
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

/// Only the version, read first.
#[derive(Deserialize)]
struct VersionOnly {
    /// The format version.
    version: Option<Spanned<toml::Value>>,
}

/// Version 1 as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawV1 {
    /// Always 1 here.
    #[allow(dead_code)]
    version: u32,
    /// The zone.
    zone: Spanned<String>,
    /// The provider.
    provider: Spanned<ProviderSpec>,
    /// Inline TSIG keys.
    #[serde(default)]
    key: Vec<KeySpec>,
    /// The moves.
    #[serde(default, rename = "move")]
    moves: Vec<Spanned<RawMove>>,
    /// `[ttl]`.
    #[serde(default)]
    ttl: Option<RawTtl>,
    /// `[[check]]`.
    #[serde(default)]
    check: Vec<Spanned<RawCheck>>,
    /// `[schedule]`.
    #[serde(default)]
    schedule: Option<RawSchedule>,
    /// `[verify]`.
    #[serde(default)]
    verify: Option<RawVerify>,
    /// `[flush]`.
    #[serde(default)]
    flush: Option<Flush>,
    /// `[mail]`.
    #[serde(default)]
    mail: Option<MailMove>,
}

/// A `[[move]]` as written: by address or explicit.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMove {
    /// Old address.
    from: Option<Spanned<String>>,
    /// New address.
    to: Option<Spanned<String>>,
    /// Rewrite SPF terms too.
    #[serde(default)]
    spf: bool,
    /// Owner (explicit form).
    name: Option<Spanned<String>>,
    /// Type (explicit form).
    #[serde(rename = "type")]
    rtype: Option<Spanned<String>>,
    /// New values (explicit form).
    values: Option<Vec<Spanned<String>>>,
}

/// `[ttl]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTtl {
    /// TTL during the move.
    during: Option<Spanned<toml::Value>>,
    /// TTL after the move: "original" or a number.
    after: Option<Spanned<toml::Value>>,
}

/// `[[check]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    /// URL.
    http: Option<Spanned<String>>,
    /// host:port.
    smtp: Option<Spanned<String>>,
    /// host:port.
    tcp: Option<Spanned<String>>,
    /// For http.
    expect_status: Option<u16>,
    /// For http.
    body_contains: Option<String>,
    /// Pin address.
    address: Option<Spanned<String>>,
}

/// `[schedule]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    /// "earliest" or RFC 3339.
    switch_at: Option<Spanned<String>>,
    /// Duration.
    observe: Option<Spanned<toml::Value>>,
    /// Duration.
    margin: Option<Spanned<toml::Value>>,
}

/// `[verify]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    /// Addresses.
    #[serde(default)]
    authorities: Vec<Spanned<String>>,
    /// Addresses.
    resolvers: Option<Vec<Spanned<String>>>,
    /// Count.
    tries: Option<Spanned<u32>>,
    /// Duration.
    interval: Option<Spanned<toml::Value>>,
}

/// The file's text and name, to turn byte offsets into line and column.
struct Place<'a> {
    /// The whole text.
    text: &'a str,
    /// The name for messages.
    file: &'a str,
}

impl Place<'_> {
    /// An error at a byte offset.
    fn at(&self, offset: usize, message: impl Into<String>) -> FileError {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        FileError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    /// A TOML error, at its span.
    fn toml(&self, error: &toml::de::Error) -> FileError {
        let offset = error.span().map(|s| s.start).unwrap_or(0);
        self.at(offset, error.message().trim_end().to_string())
    }

    /// Checks raw version-1 tables and types them.
    fn validate(&self, raw: RawV1) -> Result<MigrationFile, FileError> {
        let zone = self.name(&raw.zone, None)?;
        let provider_span = raw.provider.span();
        let provider = raw.provider.into_inner();
        provider
            .check(&raw.key)
            .map_err(|m| self.at(provider_span.start, m))?;
        let mut moves = Vec::new();
        for m in &raw.moves {
            moves.push(self.move_of(m, &zone)?);
        }
        if moves.is_empty() {
            return Err(self.at(
                self.text.len(),
                "expected at least one [[move]] (from/to addresses, or name/type/values)",
            ));
        }
        let ttl = self.ttl(raw.ttl)?;
        let mut checks = Vec::new();
        for c in &raw.check {
            checks.push(self.check(c)?);
        }
        let schedule = self.schedule(raw.schedule)?;
        let verify = self.verify(raw.verify)?;
        Ok(MigrationFile {
            zone,
            provider,
            keys: raw.key,
            moves,
            ttl,
            checks,
            schedule,
            verify,
            flush: raw.flush.unwrap_or_default(),
            mail: raw.mail,
        })
    }

    /// A domain name, relative ones completed with `origin` (or refused
    /// without one).
    fn name(&self, text: &Spanned<String>, origin: Option<&Name>) -> Result<Name, FileError> {
        let s = text.get_ref().trim();
        let parsed = if s == "@" {
            origin.cloned().ok_or(())
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
            self.at(
                text.span().start,
                format!("{s:?} is not a domain name: expected e.g. \"example.com.\""),
            )
        })
    }

    /// An IP address.
    fn ip(&self, text: &Spanned<String>) -> Result<IpAddr, FileError> {
        text.get_ref().trim().parse().map_err(|_| {
            self.at(
                text.span().start,
                format!(
                    "{:?} is not an IP address: expected e.g. \"192.0.2.10\" or \"2001:db8::10\"",
                    text.get_ref()
                ),
            )
        })
    }

    /// One `[[move]]`.
    fn move_of(&self, m: &Spanned<RawMove>, zone: &Name) -> Result<Move, FileError> {
        let start = m.span().start;
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
                let (f, t) = (self.ip(from)?, self.ip(to)?);
                if f.is_ipv4() != t.is_ipv4() {
                    return Err(self.at(
                        to.span().start,
                        format!("`to` must be the same address family as `from` ({f})"),
                    ));
                }
                if f == t {
                    return Err(self.at(to.span().start, "`to` is the same address as `from`"));
                }
                Ok(Move::Address {
                    from: f,
                    to: t,
                    spf: m.spf,
                })
            }
            (false, true) => {
                let (Some(name), Some(rtype), Some(values)) = (&m.name, &m.rtype, &m.values) else {
                    return Err(self.at(
                        start,
                        "an explicit move needs `name`, `type` and `values`",
                    ));
                };
                let owner = self.name(name, Some(zone))?;
                if !zone.zone_of(&owner) {
                    return Err(self.at(
                        name.span().start,
                        format!("{owner} is not in the zone {zone}"),
                    ));
                }
                let rt: RecordType = rtype
                    .get_ref()
                    .trim()
                    .to_ascii_uppercase()
                    .parse()
                    .map_err(|_| {
                        self.at(
                            rtype.span().start,
                            format!("{:?} is not a record type: expected e.g. \"A\", \"AAAA\", \"CNAME\", \"MX\"", rtype.get_ref()),
                        )
                    })?;
                if matches!(rt, RecordType::SOA | RecordType::Unknown(_)) {
                    return Err(self.at(
                        rtype.span().start,
                        format!("{rt} records cannot be moved by a migration"),
                    ));
                }
                if values.is_empty() {
                    return Err(self.at(
                        start,
                        "`values` is empty: expected at least one value (to delete an RRset, edit the zone instead)",
                    ));
                }
                let mut rdatas = Vec::new();
                for v in values {
                    let rdata = rdata_from_text(rt, v.get_ref(), zone).map_err(|e| {
                        self.at(
                            v.span().start,
                            format!("{:?} is not valid {rt} data: {e}", v.get_ref()),
                        )
                    })?;
                    rdatas.push(rdata);
                }
                Ok(Move::Explicit {
                    name: owner,
                    rtype: rt,
                    values: values.iter().map(|v| v.get_ref().clone()).collect(),
                    rdatas,
                })
            }
        }
    }

    /// A TTL in seconds (a number or a duration text).
    fn seconds(&self, value: &Spanned<toml::Value>, what: &str) -> Result<u64, FileError> {
        match value.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
            toml::Value::String(s) => {
                parse_duration(s).map_err(|m| self.at(value.span().start, format!("{what}: {m}")))
            }
            other => Err(self.at(
                value.span().start,
                format!("{what}: expected seconds or a duration such as \"10m\", found {other}"),
            )),
        }
    }

    /// A TTL that fits 31 bits (RFC 2181 §8).
    fn ttl_value(&self, value: &Spanned<toml::Value>, what: &str) -> Result<u32, FileError> {
        let s = self.seconds(value, what)?;
        u32::try_from(s)
            .ok()
            .filter(|t| *t <= 0x7fff_ffff)
            .ok_or_else(|| {
                self.at(
                    value.span().start,
                    format!("{what}: {s} is too large for a TTL"),
                )
            })
    }

    /// `[ttl]`.
    fn ttl(&self, raw: Option<RawTtl>) -> Result<TtlPolicy, FileError> {
        let Some(raw) = raw else {
            return Ok(TtlPolicy {
                during: DEFAULT_DURING_TTL,
                after: AfterTtl::Original,
            });
        };
        let during = match &raw.during {
            Some(v) => self.ttl_value(v, "ttl.during")?,
            None => DEFAULT_DURING_TTL,
        };
        let after = match &raw.after {
            None => AfterTtl::Original,
            Some(v) if v.get_ref().as_str() == Some("original") => AfterTtl::Original,
            Some(v) => AfterTtl::Fixed(self.ttl_value(v, "ttl.after (\"original\" or a TTL)")?),
        };
        Ok(TtlPolicy { during, after })
    }

    /// `host:port` of an SMTP or TCP check.
    fn host_port(&self, text: &Spanned<String>) -> Result<(String, u16), FileError> {
        let s = text.get_ref().trim();
        let bad = || {
            self.at(
                text.span().start,
                format!("{s:?}: expected \"host:port\" (e.g. \"mail.example.com:25\", \"[2001:db8::1]:25\")"),
            )
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok((host.to_string(), port))
    }

    /// One `[[check]]`.
    fn check(&self, c: &Spanned<RawCheck>) -> Result<Check, FileError> {
        let start = c.span().start;
        let c = c.get_ref();
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
        let kind = if let Some(url) = &c.http {
            cutover_probe::service::http::Url::parse(url.get_ref())
                .map_err(|e| self.at(url.span().start, format!("{:?}: {e}", url.get_ref())))?;
            CheckKind::Http {
                url: url.get_ref().clone(),
                expect_status: c.expect_status.unwrap_or(200),
                body_contains: c.body_contains.clone(),
            }
        } else {
            if c.expect_status.is_some() || c.body_contains.is_some() {
                return Err(self.at(
                    start,
                    "`expect_status` and `body_contains` apply only to an http check",
                ));
            }
            if let Some(t) = &c.smtp {
                let (host, port) = self.host_port(t)?;
                CheckKind::Smtp { host, port }
            } else if let Some(t) = &c.tcp {
                let (host, port) = self.host_port(t)?;
                CheckKind::Tcp { host, port }
            } else {
                unreachable!("exactly one kind was counted above")
            }
        };
        let address = c.address.as_ref().map(|a| self.ip(a)).transpose()?;
        Ok(Check { kind, address })
    }

    /// `[schedule]`.
    fn schedule(&self, raw: Option<RawSchedule>) -> Result<Schedule, FileError> {
        let mut schedule = Schedule {
            switch_at: SwitchAt::Earliest,
            observe: DEFAULT_OBSERVE,
            margin: DEFAULT_MARGIN,
        };
        let Some(raw) = raw else { return Ok(schedule) };
        if let Some(at) = &raw.switch_at {
            let s = at.get_ref().trim();
            schedule.switch_at = if s == "earliest" {
                SwitchAt::Earliest
            } else {
                SwitchAt::At(s.parse::<Timestamp>().map_err(|e| {
                    self.at(
                        at.span().start,
                        format!("{s:?}: expected \"earliest\" or an RFC 3339 time such as \"2026-03-01T02:00:00Z\" ({e})"),
                    )
                })?)
            };
        }
        if let Some(v) = &raw.observe {
            schedule.observe = self.seconds(v, "schedule.observe")?;
        }
        if let Some(v) = &raw.margin {
            schedule.margin = self.seconds(v, "schedule.margin")?;
        }
        Ok(schedule)
    }

    /// A socket address; a bare IP means port 53.
    fn dns_address(&self, text: &Spanned<String>) -> Result<SocketAddr, FileError> {
        let s = text.get_ref().trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, 53));
        }
        s.parse().map_err(|_| {
            self.at(
                text.span().start,
                format!("{s:?}: expected an address such as \"127.0.0.1:53\", \"192.0.2.53\" or \"[2001:db8::53]:53\""),
            )
        })
    }

    /// `[verify]`.
    fn verify(&self, raw: Option<RawVerify>) -> Result<Verify, FileError> {
        let mut verify = Verify {
            authorities: Vec::new(),
            resolvers: vec![SocketAddr::from(([127, 0, 0, 1], 53))],
            tries: DEFAULT_TRIES,
            interval: DEFAULT_INTERVAL,
        };
        let Some(raw) = raw else { return Ok(verify) };
        for a in &raw.authorities {
            verify.authorities.push(self.dns_address(a)?);
        }
        if let Some(resolvers) = &raw.resolvers {
            verify.resolvers.clear();
            for r in resolvers {
                verify.resolvers.push(self.dns_address(r)?);
            }
        }
        if let Some(t) = &raw.tries {
            if *t.get_ref() == 0 {
                return Err(self.at(t.span().start, "verify.tries: expected at least 1"));
            }
            verify.tries = *t.get_ref();
        }
        if let Some(v) = &raw.interval {
            verify.interval = self.seconds(v, "verify.interval")?;
        }
        Ok(verify)
    }
}
