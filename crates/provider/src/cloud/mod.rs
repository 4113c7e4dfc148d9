//! The cloud provider: DNS hosts with their own HTTP APIs (Route 53,
//! Cloudflare, deSEC, DigitalOcean, Hetzner, OVH, Azure, PowerDNS… some
//! fifty), written through the `dns-update` crate, which speaks them all
//! (over rustls). [`services`] lists the hosts a migration file can name
//! and the credentials each takes.
//!
//! ```text
//!  read        ──Route 53──▶ ListResourceRecordSets, every page (route53.rs)
//!              └─others────▶ AXFR, unsigned, from the zone's servers (first that allows it)
//!                            └─none──▶ Unsupported (the zone is read RRset by RRset)
//!  zones       ──Route 53──▶ ListHostedZones, every page (for zones = "*"); others: Unsupported
//!  read_rrsets ──Route 53──▶ ListResourceRecordSets at (name, type), TTL included
//!              └─others────▶ DNS, RD=0, to the zone's authoritative servers (first that answers)
//!  apply ──read_rrsets──▶ condition::pending ──▶ nothing left: done (a redo)
//!        │                                  └──▶ conflict: stop, nothing written
//!        └─▶ DnsUpdater::set_rrset, one RRset after another (empty: delete)
//! ```
//!
//! Which read each service uses (`services::Reads`):
//! - **Route 53: the API.** Signed `ListResourceRecordSets`, TTLs
//!   included, the whole zone listed. dns-update's own `list_rrset`
//!   returns values without TTLs, and a migration cannot plan without the
//!   old TTL (how long caches keep the old address), so reads do not take it.
//! - **Every other host: DNS**, from the servers the file names
//!   (`nameservers`), so a read sees what the host's servers serve, which
//!   on anycast networks can lag a write by seconds to a minute. The whole
//!   zone is listed by AXFR when a server allows this machine to transfer
//!   it (hosts that feed secondaries do); when none does, only named
//!   RRsets can be read, and a migration that must search the zone (a move
//!   by address) cannot be planned through it (`cutover_migrate::partial`).
//!
//! Weaker than the other providers, and said so:
//! - **Read, compare, write, with no prerequisite**: the condition is
//!   checked by a read just before the writes; an edit by someone else
//!   between that read and the write is overwritten (none of these APIs
//!   takes a condition on what an RRset holds).
//! - **Not atomic across RRsets**: the API takes one RRset per call, so a
//!   failure half-way leaves the first RRsets changed. Running the same
//!   change set again finishes it: changes already in place are skipped.
//! - Types: A, AAAA, CNAME, NS, MX, TXT and SRV (what the crate models);
//!   a TXT record's strings are joined into one.
//! - No serial: Route 53 keeps its SOA serial at 1, and a DNS-read host's
//!   serial is read from its servers after the write when they answer.
//!
//! The crate is async; this provider drives it on a runtime of its own, so
//! it must be called from a plain thread or `spawn_blocking`.

pub mod route53;
pub mod services;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cutover_nameserver::transfer::{fetch_axfr, Limits};
use cutover_zone::{Name, Rdata, RecordType, Rrset, Zone};
use dns_update::{DnsRecord, DnsRecordType, DnsUpdater, MXRecord, SRVRecord};
use hickory_proto::rr::RData;

use crate::{condition, query, Applied, Change, Provider, ProviderError};
use route53::{Route53Access, Route53Reader};
use services::Reads;

/// Where a cloud provider reads records from.
enum Reader {
    /// DNS queries to the zone's authoritative servers.
    Dns(Vec<SocketAddr>),
    /// Route 53's API.
    Route53(Route53Reader),
}

/// A zone at a cloud DNS host.
pub struct CloudProvider {
    /// The host's API client.
    updater: DnsUpdater,
    /// What the host is, for `describe`.
    label: String,
    /// Where reads go.
    reader: Reader,
    /// How long each DNS query may take.
    timeout: Duration,
    /// The runtime the async client runs on.
    runtime: tokio::runtime::Runtime,
    /// The credentials' values, cut out of every error before it leaves.
    secrets: Vec<String>,
}

/// What [`CloudProvider::connect`] takes: a service of
/// [`services::SERVICES`] and its keys as the migration file gives them.
pub struct CloudSettings {
    /// The service's name (`route53`, `cloudflare`, …).
    pub service: String,
    /// Its keys, secrets already read (never shown).
    pub values: BTreeMap<String, String>,
    /// The zone's authoritative servers, for hosts read by DNS.
    pub nameservers: Vec<SocketAddr>,
    /// How long one request may take.
    pub timeout: Duration,
}

impl CloudProvider {
    /// A provider over `updater` (built with one of `DnsUpdater::new_*`),
    /// named `label`, reading by DNS from `servers`.
    pub fn new(
        updater: DnsUpdater,
        label: impl Into<String>,
        servers: Vec<SocketAddr>,
        timeout: Duration,
    ) -> Result<CloudProvider, ProviderError> {
        if servers.is_empty() {
            return Err(ProviderError::Refused(
                "a cloud provider read by DNS needs the zone's authoritative servers (nameservers)"
                    .into(),
            ));
        }
        CloudProvider::with_reader(updater, label.into(), Reader::Dns(servers), timeout)
    }

    /// A Route 53 provider: reads through the API (TTLs included), writes
    /// through dns-update's Route 53 client, both at `access.endpoint` and
    /// both on the hosted zone the reader found (or `access.zone_id`).
    pub fn route53(
        access: Route53Access,
        timeout: Duration,
    ) -> Result<CloudProvider, ProviderError> {
        let updater = route53_updater(&access, access.zone_id.clone())?;
        let label = format!("Amazon Route 53 at {}", access.endpoint);
        let secrets = [
            Some(access.access_key_id.clone()),
            Some(access.secret_access_key.clone()),
            access.session_token.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let reader = Reader::Route53(Route53Reader::new(access, timeout));
        let mut provider = CloudProvider::with_reader(updater, label, reader, timeout)?;
        provider.secrets = secrets;
        Ok(provider)
    }

    /// The provider a migration file's `kind = "cloud"` table describes.
    pub fn connect(settings: CloudSettings) -> Result<CloudProvider, ProviderError> {
        let service = services::service(&settings.service).ok_or_else(|| {
            ProviderError::Unsupported(format!(
                "cloud service {:?}: expected one of {}",
                settings.service,
                services::names()
            ))
        })?;
        // Checks every required key and builds the client the same way for every service.
        let updater = services::updater(service, &settings.values, settings.timeout)?;
        let secrets: Vec<String> = service
            .settings
            .iter()
            .filter(|s| s.secret)
            .filter_map(|s| settings.values.get(s.key).cloned())
            .collect();
        let provider = match service.reads {
            Reads::Api => {
                let get = |k: &str| settings.values.get(k).cloned();
                let access = Route53Access {
                    access_key_id: get("access_key_id").unwrap_or_default(),
                    secret_access_key: get("secret_access_key").unwrap_or_default(),
                    session_token: get("session_token"),
                    region: get("region").unwrap_or_else(|| "us-east-1".into()),
                    zone_id: get("zone_id"),
                    endpoint: get("url").unwrap_or_else(|| "https://route53.amazonaws.com".into()),
                };
                CloudProvider::route53(access, settings.timeout)
            }
            Reads::Dns => CloudProvider::new(
                updater,
                service.title,
                settings.nameservers,
                settings.timeout,
            ),
        };
        provider.map(|mut p| {
            p.secrets = secrets;
            p
        })
    }

    /// `error` with every credential's value cut out: the hosts' answers
    /// and the HTTP client's errors are not trusted to leave them out.
    fn scrub(&self, error: ProviderError) -> ProviderError {
        let clean = |text: String| {
            self.secrets
                .iter()
                .filter(|s| s.len() >= 4)
                .fold(text, |text, secret| {
                    text.replace(secret.as_str(), "(redacted)")
                })
        };
        match error {
            ProviderError::Conflict {
                name,
                rtype,
                expected,
                found,
            } => ProviderError::Conflict {
                name,
                rtype,
                expected,
                found,
            },
            ProviderError::UnknownZone(zone) => ProviderError::UnknownZone(zone),
            ProviderError::Refused(why) => ProviderError::Refused(clean(why)),
            ProviderError::Unreachable(why) => ProviderError::Unreachable(clean(why)),
            ProviderError::Unsupported(why) => ProviderError::Unsupported(clean(why)),
        }
    }

    /// The provider with its runtime.
    fn with_reader(
        updater: DnsUpdater,
        label: String,
        reader: Reader,
        timeout: Duration,
    ) -> Result<CloudProvider, ProviderError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ProviderError::Unreachable(format!("cannot start a runtime: {e}")))?;
        Ok(CloudProvider {
            updater,
            label,
            reader,
            timeout,
            runtime,
            secrets: Vec::new(),
        })
    }

    /// One RRset, through the API or from the first server that answers.
    fn read_one(
        &self,
        zone: &Name,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Option<Rrset>, ProviderError> {
        let servers = match &self.reader {
            Reader::Route53(api) => return api.read_rrset(zone, name, rtype),
            Reader::Dns(servers) => servers,
        };
        let mut last = None;
        for server in servers {
            match query::read_zone_rrset(*server, zone, name, rtype, self.timeout) {
                Ok(rrset) => return Ok(rrset),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ProviderError::Unreachable("no server".into())))
    }

    /// The whole zone by AXFR from the first of `servers` that allows it
    /// (hosts that serve secondaries, or a host's own servers allowing
    /// this machine); else `Unsupported`, saying what each server said,
    /// and the zone is read RRset by RRset.
    fn transfer(&self, zone: &Name, servers: &[SocketAddr]) -> Result<Zone, ProviderError> {
        let limits = Limits {
            max_records: 2_000_000,
            max_bytes: 1 << 30,
            idle: self.timeout,
            total: self.timeout * 20,
        };
        let mut said = Vec::new();
        for server in servers {
            match fetch_axfr(*server, zone, None, limits) {
                Ok(transfer) => return Ok(transfer.zone),
                Err(e) => said.push(e.to_string()),
            }
        }
        Err(self.scrub(ProviderError::Unsupported(format!(
            "{} cannot list the zone {zone}: its API client gives no TTLs and no server \
             transferred the zone ({})",
            self.label,
            said.join("; ")
        ))))
    }

    /// Writes one change through the API.
    fn write(&self, zone: &Name, change: &Change) -> Result<(), ProviderError> {
        let rtype = record_type(change.rtype)?;
        let (ttl, records) = match condition::present(change.set.as_ref()) {
            None => (0, Vec::new()),
            Some(set) => (
                set.ttl,
                set.rdatas()
                    .iter()
                    .map(|r| record(change, r))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let name = change.name.to_string();
        let origin = zone.to_string();
        // Route 53: the hosted zone the reads came from, never another of the same name.
        let pinned;
        let updater = match &self.reader {
            Reader::Route53(api) => {
                pinned = route53_updater(api.access(), Some(api.zone_id(zone)?))?;
                &pinned
            }
            Reader::Dns(_) => &self.updater,
        };
        self.runtime
            .block_on(updater.set_rrset(name.as_str(), rtype, ttl, records, origin.as_str()))
            .map_err(|e| api_error(zone, change, e))
    }
}

/// dns-update's Route 53 client for `access`, on the hosted zone `zone_id`.
fn route53_updater(
    access: &Route53Access,
    zone_id: Option<String>,
) -> Result<DnsUpdater, ProviderError> {
    DnsUpdater::new_route53(dns_update::providers::route53::Route53Config {
        access_key_id: access.access_key_id.clone(),
        secret_access_key: access.secret_access_key.clone(),
        session_token: access.session_token.clone(),
        region: Some(access.region.clone()),
        hosted_zone_id: zone_id,
        private_zone_only: None,
        endpoint: Some(access.endpoint.trim_end_matches('/').to_string()),
    })
    .map_err(|e| {
        ProviderError::Refused(format!(
            "Route 53: the API client could not be built: {}",
            services::client_error(&e)
        ))
    })
}

/// The provider error for an API error on `change`.
fn api_error(zone: &Name, change: &Change, e: dns_update::Error) -> ProviderError {
    let what = format!("{} {}", change.name, change.rtype);
    match e {
        dns_update::Error::Unauthorized => {
            ProviderError::Refused(format!("{what}: the API credentials were refused"))
        }
        dns_update::Error::NotFound => ProviderError::UnknownZone(zone.clone()),
        dns_update::Error::BadRequest => ProviderError::Refused(format!("{what}: bad request")),
        dns_update::Error::Unsupported(why) => ProviderError::Unsupported(format!("{what}: {why}")),
        dns_update::Error::Client(why) => ProviderError::Unreachable(format!("{what}: {why}")),
        other => ProviderError::Refused(format!("{what}: {}", services::client_error(&other))),
    }
}

/// The crate's type for ours.
fn record_type(rtype: RecordType) -> Result<DnsRecordType, ProviderError> {
    Ok(match rtype {
        RecordType::A => DnsRecordType::A,
        RecordType::AAAA => DnsRecordType::AAAA,
        RecordType::CNAME => DnsRecordType::CNAME,
        RecordType::NS => DnsRecordType::NS,
        RecordType::MX => DnsRecordType::MX,
        RecordType::TXT => DnsRecordType::TXT,
        RecordType::SRV => DnsRecordType::SRV,
        other => {
            return Err(ProviderError::Unsupported(format!(
            "{other} records through a cloud host's API (A, AAAA, CNAME, NS, MX, TXT and SRV are)"
        )))
        }
    })
}

/// The crate's record for our data.
fn record(change: &Change, rdata: &Rdata) -> Result<DnsRecord, ProviderError> {
    let bad =
        |why: String| ProviderError::Refused(format!("{} {}: {why}", change.name, change.rtype));
    Ok(match rdata.to_hickory().map_err(|e| bad(e.to_string()))? {
        RData::A(a) => DnsRecord::A(a.0),
        RData::AAAA(aaaa) => DnsRecord::AAAA(aaaa.0),
        RData::CNAME(target) => DnsRecord::CNAME(target.0.to_string()),
        RData::NS(target) => DnsRecord::NS(target.0.to_string()),
        RData::MX(mx) => DnsRecord::MX(MXRecord {
            exchange: mx.exchange.to_string(),
            priority: mx.preference,
        }),
        RData::TXT(txt) => DnsRecord::TXT(
            txt.txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        ),
        RData::SRV(srv) => DnsRecord::SRV(SRVRecord {
            target: srv.target.to_string(),
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
        }),
        other => {
            return Err(bad(format!(
                "{} data is not supported",
                other.record_type()
            )))
        }
    })
}

impl Provider for CloudProvider {
    fn describe(&self) -> String {
        format!("{} (through dns-update)", self.label)
    }

    fn read(&self, zone: &Name) -> Result<Zone, ProviderError> {
        match &self.reader {
            Reader::Route53(api) => api.read_zone(zone).map_err(|e| self.scrub(e)),
            Reader::Dns(servers) => self.transfer(zone, servers),
        }
    }

    fn zones(&self) -> Result<Vec<Name>, ProviderError> {
        match &self.reader {
            Reader::Route53(api) => api.hosted_zones().map_err(|e| self.scrub(e)),
            Reader::Dns(_) => Err(ProviderError::Unsupported(format!(
                "{} cannot list the zones it holds: dns-update has no list of zones, and DNS has no way to ask",
                self.label
            ))),
        }
    }

    fn read_rrsets(
        &self,
        zone: &Name,
        keys: &[(Name, RecordType)],
    ) -> Result<Vec<Option<Rrset>>, ProviderError> {
        keys.iter()
            .map(|(name, rtype)| self.read_one(zone, name, *rtype))
            .collect::<Result<_, _>>()
            .map_err(|e| self.scrub(e))
    }

    fn apply(&self, zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError> {
        self.apply_unscrubbed(zone, changes)
            .map_err(|e| self.scrub(e))
    }
}

impl CloudProvider {
    /// [`Provider::apply`], its errors as they come.
    fn apply_unscrubbed(&self, zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError> {
        condition::well_formed(zone, changes)?;
        for change in changes {
            record_type(change.rtype)?;
        }
        let keys: Vec<_> = changes.iter().map(Change::key).collect();
        let found = self.read_rrsets(zone, &keys)?;
        for change in condition::pending(changes, &found)? {
            self.write(zone, change)?;
        }
        let serial = match &self.reader {
            Reader::Dns(servers) => servers
                .iter()
                .find_map(|server| query::serial(*server, zone, self.timeout)),
            Reader::Route53(_) => None,
        };
        Ok(Applied { serial })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_cut_out_of_every_error() {
        let access = Route53Access {
            access_key_id: "AKIDSCRUB".into(),
            secret_access_key: "scrub-me-secret".into(),
            session_token: None,
            region: "us-east-1".into(),
            zone_id: None,
            endpoint: "http://127.0.0.1:1".into(),
        };
        let provider = CloudProvider::route53(access, Duration::from_secs(1)).unwrap();
        let error = provider.scrub(ProviderError::Refused(
            "the host said: bad key AKIDSCRUB with scrub-me-secret".into(),
        ));
        let text = error.to_string();
        assert!(
            !text.contains("AKIDSCRUB") && !text.contains("scrub-me-secret"),
            "{text}"
        );
        assert!(text.contains("(redacted)"), "{text}");
    }
}
