//! The cloud provider: DNS hosts with their own HTTP APIs (Cloudflare,
//! Route 53, deSEC, DigitalOcean, Hetzner, OVH, PowerDNS… some fifty),
//! through the `dns-update` crate, which speaks them all.
//!
//! ```text
//!  read        ──▶ Unsupported (the crate lists no whole zone)
//!  read_rrsets ──DNS, RD=0──▶ the zone's authoritative servers (first that answers)
//!  apply ──read_rrsets──▶ condition::pending ──▶ nothing left: done (a redo)
//!        │                                  └──▶ conflict: stop, nothing written
//!        └─▶ DnsUpdater::set_rrset, one RRset after another (empty: delete)
//! ```
//!
//! Weaker than the other providers, and said so:
//! - **Read, compare, write, with no prerequisite**: an edit by someone
//!   else between the read and the write is overwritten.
//! - **Not atomic across RRsets**: the API takes one RRset per call, so a
//!   failure half-way leaves the first RRsets changed. Running the same
//!   change set again finishes it: changes already in place are skipped.
//! - **Reads are by DNS**, so they see what the host's servers serve,
//!   which on anycast networks can lag a write by seconds to a minute.
//! - Types: A, AAAA, CNAME, NS, MX, TXT and SRV (what the crate models);
//!   a TXT record's strings are joined into one.
//!
//! The crate is async; this provider drives it on a runtime of its own, so
//! it must be called from a plain thread or `spawn_blocking`.

use std::net::SocketAddr;
use std::time::Duration;

use cutover_zone::{Name, Rdata, RecordType, Rrset, Zone};
use dns_update::{DnsRecord, DnsRecordType, DnsUpdater, MXRecord, SRVRecord};
use hickory_proto::rr::RData;

use crate::{condition, query, Applied, Change, Provider, ProviderError};

/// A zone at a cloud DNS host.
pub struct CloudProvider {
    /// The host's API client.
    updater: DnsUpdater,
    /// What the host is, for `describe`.
    label: String,
    /// The zone's authoritative servers, asked by DNS for reads.
    servers: Vec<SocketAddr>,
    /// How long each DNS query may take.
    timeout: Duration,
    /// The runtime the async client runs on.
    runtime: tokio::runtime::Runtime,
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
                "a cloud provider needs the zone's authoritative servers to read from".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ProviderError::Unreachable(format!("cannot start a runtime: {e}")))?;
        Ok(CloudProvider {
            updater,
            label: label.into(),
            servers,
            timeout,
            runtime,
        })
    }

    /// One RRset, from the first server that answers.
    fn read_one(
        &self,
        zone: &Name,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Option<Rrset>, ProviderError> {
        let mut last = None;
        for server in &self.servers {
            match query::read_zone_rrset(*server, zone, name, rtype, self.timeout) {
                Ok(rrset) => return Ok(rrset),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ProviderError::Unreachable("no server".into())))
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
        self.runtime
            .block_on(
                self.updater
                    .set_rrset(name.as_str(), rtype, ttl, records, origin.as_str()),
            )
            .map_err(|e| api_error(zone, change, e))
    }
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
        other => ProviderError::Refused(format!("{what}: {other:?}")),
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
        Err(ProviderError::Unsupported(format!(
            "{} cannot list the zone {zone}; its RRsets are read one by one over DNS",
            self.label
        )))
    }

    fn read_rrsets(
        &self,
        zone: &Name,
        keys: &[(Name, RecordType)],
    ) -> Result<Vec<Option<Rrset>>, ProviderError> {
        keys.iter()
            .map(|(name, rtype)| self.read_one(zone, name, *rtype))
            .collect()
    }

    fn apply(&self, zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError> {
        condition::well_formed(zone, changes)?;
        for change in changes {
            record_type(change.rtype)?;
        }
        let keys: Vec<_> = changes.iter().map(Change::key).collect();
        let found = self.read_rrsets(zone, &keys)?;
        for change in condition::pending(changes, &found)? {
            self.write(zone, change)?;
        }
        let serial = self
            .servers
            .iter()
            .find_map(|server| query::serial(*server, zone, self.timeout));
        Ok(Applied { serial })
    }
}
