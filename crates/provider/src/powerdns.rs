//! The PowerDNS provider: PowerDNS Authoritative's HTTP API
//! (`/api/v1/servers/{server}/zones/{zone}`, key in `X-API-Key`).
//!
//! ```text
//!  read  ──GET zone──▶ rrsets (content in zone-file form) ──▶ Zone
//!  apply ──GET zone──▶ condition::pending ──▶ nothing left: done (a redo)
//!        │                               └──▶ conflict: stop, nothing written
//!        └─▶ PATCH rrsets (REPLACE / DELETE), one request ──▶ 204 ──GET──▶ serial
//! ```
//!
//! The API has no prerequisites, so this is read, compare, write: a write
//! by someone else in the moment between our GET and our PATCH (a few
//! milliseconds on a local server) is overwritten. PowerDNS applies one
//! PATCH in one backend transaction, so the change set itself lands whole
//! or not at all, and the serial rises by the zone's SOA-EDIT-API rule.

use std::str::FromStr;
use std::time::Duration;

use cutover_zone::zonefile::{rdata_from_text, rdata_to_text};
use cutover_zone::{Name, Record, RecordType, Serial, Zone};
use serde::{Deserialize, Serialize};

use crate::condition;
use crate::{Applied, Change, Provider, ProviderError};

/// Where the API is, as a config file gives it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerDnsConfig {
    /// The API's base URL, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    /// The API key.
    pub api_key: String,
    /// The server id in the URL (default `localhost`).
    #[serde(default)]
    pub server: Option<String>,
    /// How long one request may take, in milliseconds (default 10000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A zone held by a PowerDNS Authoritative server, changed through its API.
pub struct PowerDnsProvider {
    /// The base URL, without a trailing slash.
    url: String,
    /// The API key.
    api_key: String,
    /// The server id in the URL.
    server: String,
    /// The HTTP client (statuses are read, not turned into errors).
    agent: ureq::Agent,
}

/// A zone as the API returns it (the parts we read).
#[derive(Deserialize)]
struct ZoneBody {
    /// The SOA serial.
    #[serde(default)]
    serial: Option<u32>,
    /// Every RRset.
    #[serde(default)]
    rrsets: Vec<RrsetBody>,
}

/// One zone of the API's list of zones (the part read).
#[derive(Deserialize)]
struct ZoneListed {
    /// The zone's name, absolute.
    name: String,
}

/// One RRset as the API returns it.
#[derive(Deserialize)]
struct RrsetBody {
    /// Owner, absolute.
    name: String,
    /// Type mnemonic.
    #[serde(rename = "type")]
    rtype: String,
    /// TTL.
    ttl: u32,
    /// The records.
    #[serde(default)]
    records: Vec<RecordBody>,
}

/// One record's content, both ways.
#[derive(Deserialize, Serialize)]
struct RecordBody {
    /// The data in zone-file form.
    content: String,
    /// Disabled records are not served; we neither read nor write them.
    #[serde(default)]
    disabled: bool,
}

/// The PATCH body.
#[derive(Serialize)]
struct PatchBody {
    /// The RRsets to replace or delete.
    rrsets: Vec<RrsetChange>,
}

/// One RRset change of a PATCH.
#[derive(Serialize)]
struct RrsetChange {
    /// Owner, absolute.
    name: String,
    /// Type mnemonic.
    #[serde(rename = "type")]
    rtype: String,
    /// `REPLACE` or `DELETE`.
    changetype: &'static str,
    /// TTL (REPLACE only).
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    /// The new records (REPLACE only).
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<Vec<RecordBody>>,
}

impl PowerDnsProvider {
    /// A provider for the API at `url` with `api_key`.
    pub fn new(config: &PowerDnsConfig) -> PowerDnsProvider {
        let timeout = Duration::from_millis(config.timeout_ms.unwrap_or(10_000));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        PowerDnsProvider {
            url: config.url.trim_end_matches('/').to_string(),
            api_key: config.api_key.clone(),
            server: config.server.clone().unwrap_or_else(|| "localhost".into()),
            agent,
        }
    }

    /// The URL of a zone.
    fn zone_url(&self, zone: &Name) -> String {
        let mut id = zone.to_lowercase().to_string();
        if !id.ends_with('.') {
            id.push('.');
        }
        format!("{}/api/v1/servers/{}/zones/{id}", self.url, self.server)
    }

    /// GETs the zone.
    fn get(&self, zone: &Name) -> Result<ZoneBody, ProviderError> {
        self.get_json(&self.zone_url(zone), zone, "zone")
    }

    /// GETs the list of every zone of the server.
    fn list(&self) -> Result<Vec<Name>, ProviderError> {
        let url = format!("{}/api/v1/servers/{}/zones", self.url, self.server);
        let listed: Vec<ZoneListed> = self.get_json(&url, &Name::root(), "list of zones")?;
        listed
            .iter()
            .map(|z| {
                Name::from_ascii(&z.name).map_err(|e| {
                    ProviderError::Refused(format!("GET {url}: a zone named {:?}: {e}", z.name))
                })
            })
            .collect()
    }

    /// GETs `url` and reads its JSON body (`what`, for errors); a status
    /// other than 200 is an error about `zone`.
    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        zone: &Name,
        what: &str,
    ) -> Result<T, ProviderError> {
        let mut response = self
            .agent
            .get(url)
            .header("X-API-Key", &self.api_key)
            .header("Accept", "application/json")
            .call()
            .map_err(|e| ProviderError::Unreachable(format!("GET {url}: {e}")))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            return Err(status_error(zone, "GET", url, status, &body));
        }
        response
            .body_mut()
            .read_json::<T>()
            .map_err(|e| ProviderError::Unreachable(format!("GET {url}: unreadable {what}: {e}")))
    }

    /// PATCHes RRsets of the zone.
    fn patch(&self, zone: &Name, body: &PatchBody) -> Result<(), ProviderError> {
        let url = self.zone_url(zone);
        let mut response = self
            .agent
            .patch(&url)
            .header("X-API-Key", &self.api_key)
            .send_json(body)
            .map_err(|e| ProviderError::Unreachable(format!("PATCH {url}: {e}")))?;
        let status = response.status().as_u16();
        if status == 204 || status == 200 {
            return Ok(());
        }
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Err(status_error(zone, "PATCH", &url, status, &text))
    }
}

/// The provider error for an HTTP status other than success.
fn status_error(zone: &Name, method: &str, url: &str, status: u16, body: &str) -> ProviderError {
    match status {
        404 => ProviderError::UnknownZone(zone.clone()),
        422 if method == "GET" => ProviderError::UnknownZone(zone.clone()),
        401 | 403 => ProviderError::Refused(format!(
            "{method} {url}: the API key was refused ({status})"
        )),
        400..=499 => ProviderError::Refused(format!("{method} {url}: {status} {}", body.trim())),
        _ => ProviderError::Unreachable(format!("{method} {url}: {status} {}", body.trim())),
    }
}

/// The zone of an API answer.
fn zone_of(origin: &Name, body: &ZoneBody) -> Result<Zone, ProviderError> {
    let mut zone = Zone::new(origin.clone());
    for rrset in &body.rrsets {
        let bad = |why: String| {
            ProviderError::Refused(format!(
                "PowerDNS sent {} {}: {why}",
                rrset.name, rrset.rtype
            ))
        };
        let name = Name::from_ascii(&rrset.name).map_err(|e| bad(e.to_string()))?;
        let rtype = RecordType::from_str(&rrset.rtype).map_err(|e| bad(e.to_string()))?;
        for record in rrset.records.iter().filter(|r| !r.disabled) {
            let rdata = rdata_from_text(rtype, &record.content, origin).map_err(bad)?;
            zone.add(Record {
                name: name.clone(),
                ttl: rrset.ttl,
                rdata,
            })
            .map_err(|e| bad(e.to_string()))?;
        }
    }
    Ok(zone)
}

/// The PATCH entry that makes a change's RRset what it `set`s.
fn rrset_change(change: &Change) -> RrsetChange {
    let rtype = change.rtype.to_string();
    match condition::present(change.set.as_ref()) {
        None => RrsetChange {
            name: change.name.to_string(),
            rtype,
            changetype: "DELETE",
            ttl: None,
            records: None,
        },
        Some(set) => RrsetChange {
            name: change.name.to_string(),
            rtype,
            changetype: "REPLACE",
            ttl: Some(set.ttl),
            records: Some(
                set.rdatas()
                    .iter()
                    .map(|rdata| RecordBody {
                        content: rdata_to_text(rdata),
                        disabled: false,
                    })
                    .collect(),
            ),
        },
    }
}

impl Provider for PowerDnsProvider {
    fn describe(&self) -> String {
        format!("PowerDNS API at {} (server {})", self.url, self.server)
    }

    fn read(&self, zone: &Name) -> Result<Zone, ProviderError> {
        zone_of(zone, &self.get(zone)?)
    }

    fn zones(&self) -> Result<Vec<Name>, ProviderError> {
        self.list()
    }

    fn apply(&self, zone: &Name, changes: &[Change]) -> Result<Applied, ProviderError> {
        condition::well_formed(zone, changes)?;
        let now = zone_of(zone, &self.get(zone)?)?;
        let found: Vec<_> = changes
            .iter()
            .map(|c| now.get(&c.name, c.rtype).cloned())
            .collect();
        let pending = condition::pending(changes, &found)?;
        if pending.is_empty() {
            return Ok(Applied {
                serial: now.serial(),
            });
        }
        let body = PatchBody {
            rrsets: pending.into_iter().map(rrset_change).collect(),
        };
        self.patch(zone, &body)?;
        let after = self.get(zone)?;
        Ok(Applied {
            serial: after.serial.map(Serial),
        })
    }
}
