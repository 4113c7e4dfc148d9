//! Route 53's records read through its API, TTLs included:
//! `ListResourceRecordSets` signed with AWS Signature Version 4.
//!
//! ```text
//!  zone ──zone_id given? ──no──▶ GET /2013-04-01/hostedzonesbyname?dnsname=ZONE (exact name or UnknownZone)
//!  every zone  ──▶ GET /2013-04-01/hostedzone, page after page (Marker/NextMarker), for zones = "*"
//!  one RRset   ──▶ GET …/hostedzone/ID/rrset?name=N&type=T&maxitems=1 (the first at or after N T)
//!  whole zone  ──▶ GET …/hostedzone/ID/rrset, page after page (NextRecordName/Type/Identifier)
//! ```
//!
//! dns-update's own `list_rrset` returns the values without their TTL,
//! which a migration cannot plan with (the old TTL is how long caches keep
//! the old address), so reads take this path; writes stay dns-update's.
//! Records with a routing policy (`SetIdentifier`: weighted, latency,
//! geolocation…) and alias records (no values, an `AliasTarget`) are
//! refused by name: cutover cannot express them.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use cutover_zone::zonefile::rdata_from_text;
use cutover_zone::{Name, Record, RecordType, Rrset, Zone};
use dns_update::crypto::{hmac_sha256, sha256_digest};
use serde::Deserialize;

use crate::ProviderError;

/// The API version in every path.
const VERSION: &str = "2013-04-01";

/// Route 53's credentials and where its API is.
#[derive(Clone)]
pub struct Route53Access {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key (never shown).
    pub secret_access_key: String,
    /// A session token of temporary credentials.
    pub session_token: Option<String>,
    /// The signing region (Route 53 is global: `us-east-1`).
    pub region: String,
    /// The hosted zone's id (`Z…`), when given.
    pub zone_id: Option<String>,
    /// The API's base URL (`https://route53.amazonaws.com`, or a local one).
    pub endpoint: String,
}

impl std::fmt::Debug for Route53Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route53Access")
            .field("region", &self.region)
            .field("zone_id", &self.zone_id)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// A reader of one account's hosted zones.
pub struct Route53Reader {
    /// Credentials and endpoint.
    access: Route53Access,
    /// The HTTP client.
    agent: ureq::Agent,
    /// Hosted zone ids found by name: (zone, id).
    ids: Mutex<Vec<(Name, String)>>,
}

/// `ListHostedZonesByName`'s and `ListHostedZones`'s answer (the parts read).
#[derive(Deserialize)]
struct HostedZonesAnswer {
    /// The zones, from the name asked on.
    #[serde(rename = "HostedZones")]
    zones: HostedZones,
    /// Whether more pages follow (`ListHostedZones`).
    #[serde(rename = "IsTruncated", default)]
    truncated: bool,
    /// Where the next page starts (`ListHostedZones`).
    #[serde(rename = "NextMarker")]
    next_marker: Option<String>,
}

/// The list of zones.
#[derive(Deserialize)]
struct HostedZones {
    /// Each zone.
    #[serde(rename = "HostedZone", default)]
    zone: Vec<HostedZone>,
}

/// One hosted zone.
#[derive(Deserialize)]
struct HostedZone {
    /// `/hostedzone/Z…`.
    #[serde(rename = "Id")]
    id: String,
    /// The zone's name, absolute.
    #[serde(rename = "Name")]
    name: String,
}

/// `ListResourceRecordSets`'s answer.
#[derive(Deserialize)]
struct RrsetsAnswer {
    /// This page's RRsets.
    #[serde(rename = "ResourceRecordSets")]
    sets: RrsetList,
    /// Whether more pages follow.
    #[serde(rename = "IsTruncated")]
    truncated: bool,
    /// Where the next page starts.
    #[serde(rename = "NextRecordName")]
    next_name: Option<String>,
    /// Where the next page starts.
    #[serde(rename = "NextRecordType")]
    next_type: Option<String>,
    /// Where the next page starts.
    #[serde(rename = "NextRecordIdentifier")]
    next_identifier: Option<String>,
}

/// The RRsets of a page.
#[derive(Deserialize)]
struct RrsetList {
    /// Each RRset.
    #[serde(rename = "ResourceRecordSet", default)]
    set: Vec<ApiRrset>,
}

/// One RRset as Route 53 writes it.
#[derive(Deserialize)]
struct ApiRrset {
    /// Owner, absolute, with Route 53's octal escapes (`\052` for `*`).
    #[serde(rename = "Name")]
    name: String,
    /// Type mnemonic.
    #[serde(rename = "Type")]
    rtype: String,
    /// TTL (absent on alias records).
    #[serde(rename = "TTL")]
    ttl: Option<u32>,
    /// Present on records with a routing policy.
    #[serde(rename = "SetIdentifier")]
    set_identifier: Option<String>,
    /// Present on alias records.
    #[serde(rename = "AliasTarget")]
    alias: Option<serde::de::IgnoredAny>,
    /// The values, in zone-file form.
    #[serde(rename = "ResourceRecords")]
    records: Option<ApiRecords>,
}

/// The values of an RRset.
#[derive(Deserialize)]
struct ApiRecords {
    /// Each value.
    #[serde(rename = "ResourceRecord", default)]
    record: Vec<ApiRecord>,
}

/// One value.
#[derive(Deserialize)]
struct ApiRecord {
    /// In zone-file form (`192.0.2.1`, `10 mail.example.com.`, `"text"`).
    #[serde(rename = "Value")]
    value: String,
}

/// Route 53's error body (the parts read): `<ErrorResponse><Error>` as
/// AWS writes it, or `<ErrorResponse><Errors><Error>` as moto does.
#[derive(Deserialize)]
struct ErrorAnswer {
    /// The error (AWS).
    #[serde(rename = "Error")]
    error: Option<ErrorBody>,
    /// The errors (moto).
    #[serde(rename = "Errors")]
    errors: Option<ErrorList>,
}

/// A list of errors.
#[derive(Deserialize)]
struct ErrorList {
    /// The first one.
    #[serde(rename = "Error")]
    error: ErrorBody,
}

/// Code and message.
#[derive(Deserialize)]
struct ErrorBody {
    /// `NoSuchHostedZone`, `InvalidClientTokenId`, …
    #[serde(rename = "Code")]
    code: String,
    /// What AWS says.
    #[serde(rename = "Message", default)]
    message: String,
}

impl Route53Reader {
    /// A reader with `access`, each request bounded by `timeout`.
    pub fn new(access: Route53Access, timeout: Duration) -> Route53Reader {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Route53Reader {
            access,
            agent,
            ids: Mutex::new(Vec::new()),
        }
    }

    /// The credentials and endpoint it reads with.
    pub fn access(&self) -> &Route53Access {
        &self.access
    }

    /// The hosted zone id of `zone`: as configured, or found by name.
    pub fn zone_id(&self, zone: &Name) -> Result<String, ProviderError> {
        if let Some(id) = &self.access.zone_id {
            return Ok(id.trim_start_matches("/hostedzone/").to_string());
        }
        if let Some((_, id)) = self
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(name, _)| name == zone)
        {
            return Ok(id.clone());
        }
        let text = self.get(
            zone,
            &format!("/{VERSION}/hostedzonesbyname"),
            &[("dnsname", absolute(zone)), ("maxitems", "1".into())],
        )?;
        let answer: HostedZonesAnswer = quick_xml::de::from_str(&text).map_err(|e| {
            ProviderError::Unreachable(format!(
                "Route 53's list of hosted zones is unreadable: {e}"
            ))
        })?;
        let found = answer
            .zones
            .zone
            .into_iter()
            .find(|z| Name::from_str(&z.name).is_ok_and(|n| &n == zone))
            .ok_or_else(|| ProviderError::UnknownZone(zone.clone()))?;
        let id = found.id.trim_start_matches("/hostedzone/").to_string();
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((zone.clone(), id.clone()));
        Ok(id)
    }

    /// Every hosted zone of the account, page after page, by name (each
    /// once: a private and a public zone of one name are one name here;
    /// the writes find the zone by name, as for a zone named in the file).
    pub fn hosted_zones(&self) -> Result<Vec<Name>, ProviderError> {
        let mut names: Vec<Name> = Vec::new();
        let mut found: Vec<(Name, String)> = Vec::new();
        let mut query: Vec<(&str, String)> = Vec::new();
        loop {
            let text = self.get(&Name::root(), &format!("/{VERSION}/hostedzone"), &query)?;
            let answer: HostedZonesAnswer = quick_xml::de::from_str(&text).map_err(|e| {
                ProviderError::Unreachable(format!(
                    "Route 53's list of hosted zones is unreadable: {e}"
                ))
            })?;
            for zone in answer.zones.zone {
                let name = Name::from_str(&zone.name).map_err(|e| {
                    ProviderError::Refused(format!(
                        "Route 53 lists a hosted zone named {:?}: {e}",
                        zone.name
                    ))
                })?;
                if !names.contains(&name) {
                    names.push(name.clone());
                    found.push((name, zone.id.trim_start_matches("/hostedzone/").to_string()));
                }
            }
            match (answer.truncated, answer.next_marker) {
                (true, Some(marker)) => query = vec![("marker", marker)],
                _ => break,
            }
        }
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        for (name, id) in found {
            if !ids.iter().any(|(known, _)| *known == name) {
                ids.push((name, id));
            }
        }
        Ok(names)
    }

    /// The RRset at `name` of `rtype`, or `None`.
    pub fn read_rrset(
        &self,
        zone: &Name,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Option<Rrset>, ProviderError> {
        let id = self.zone_id(zone)?;
        let text = self.get(
            zone,
            &format!("/{VERSION}/hostedzone/{id}/rrset"),
            &[
                ("name", absolute(name)),
                ("type", rtype.to_string()),
                ("maxitems", "1".into()),
            ],
        )?;
        let answer = page(&text)?;
        let Some(first) = answer.sets.set.first() else {
            return Ok(None);
        };
        let (owner, found_type) = key_of(first)?;
        if &owner != name || found_type != rtype {
            return Ok(None);
        }
        rrset_of(first).map(Some)
    }

    /// Every RRset of the zone, page after page.
    pub fn read_zone(&self, zone: &Name) -> Result<Zone, ProviderError> {
        let id = self.zone_id(zone)?;
        let mut out = Zone::new(zone.clone());
        let mut next: Vec<(&str, String)> = Vec::new();
        loop {
            let text = self.get(zone, &format!("/{VERSION}/hostedzone/{id}/rrset"), &next)?;
            let answer = page(&text)?;
            for set in &answer.sets.set {
                let (owner, _) = key_of(set)?;
                let rrset = rrset_of(set)?;
                for rdata in rrset.rdatas() {
                    out.add(Record {
                        name: owner.clone(),
                        ttl: rrset.ttl,
                        rdata: rdata.clone(),
                    })
                    .map_err(|e| {
                        ProviderError::Refused(format!(
                            "Route 53 sent {} {}: {e}",
                            set.name, set.rtype
                        ))
                    })?;
                }
            }
            if !answer.truncated {
                return Ok(out);
            }
            next.clear();
            if let Some(n) = answer.next_name {
                next.push(("name", n));
            }
            if let Some(t) = answer.next_type {
                next.push(("type", t));
            }
            if let Some(i) = answer.next_identifier {
                next.push(("identifier", i));
            }
            if next.is_empty() {
                return Ok(out);
            }
        }
    }

    /// A signed GET of `path` with `query`; the body of a 200 answer.
    fn get(
        &self,
        zone: &Name,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<String, ProviderError> {
        let base = self.access.endpoint.trim_end_matches('/');
        let host = base
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(base)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let mut pairs: Vec<(String, String)> =
            query.iter().map(|(k, v)| (encode(k), encode(v))).collect();
        pairs.sort();
        let canonical_query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let now = jiff::Timestamp::now();
        let amz_date = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let day = now.strftime("%Y%m%d").to_string();
        let mut headers = vec![("host", host.clone()), ("x-amz-date", amz_date.clone())];
        if let Some(token) = &self.access.session_token {
            headers.push(("x-amz-security-token", token.clone()));
        }
        let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
        let signed = signed.join(";");
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let canonical_request = format!(
            "GET\n{path}\n{canonical_query}\n{canonical_headers}\n{signed}\n{}",
            hex(&sha256_digest(b""))
        );
        let scope = format!("{day}/{}/route53/aws4_request", self.access.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&sha256_digest(canonical_request.as_bytes()))
        );
        let mut key = hmac_sha256(
            format!("AWS4{}", self.access.secret_access_key).as_bytes(),
            day.as_bytes(),
        );
        for part in [self.access.region.as_str(), "route53", "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        let signature = hex(&hmac_sha256(&key, to_sign.as_bytes()));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            self.access.access_key_id
        );
        let url = if canonical_query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{canonical_query}")
        };
        let mut request = self
            .agent
            .get(&url)
            .header("x-amz-date", &amz_date)
            .header("Authorization", &authorization);
        if let Some(token) = &self.access.session_token {
            request = request.header("x-amz-security-token", token);
        }
        let shown = format!("{base}{path}");
        let mut response = request
            .call()
            .map_err(|e| ProviderError::Unreachable(format!("GET {shown}: {e}")))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| ProviderError::Unreachable(format!("GET {shown}: {e}")))?;
        if status == 200 {
            return Ok(body);
        }
        let (code, message) = match quick_xml::de::from_str::<ErrorAnswer>(&body) {
            Ok(ErrorAnswer { error: Some(e), .. })
            | Ok(ErrorAnswer {
                errors: Some(ErrorList { error: e }),
                ..
            }) => (e.code, e.message),
            _ => (String::new(), String::new()),
        };
        let said = match (code.is_empty(), message.is_empty()) {
            (true, _) => format!("HTTP {status}"),
            (false, true) => format!("HTTP {status} {code}"),
            (false, false) => format!("HTTP {status} {code}: {message}"),
        };
        Err(match (status, code.as_str()) {
            (404, _) | (_, "NoSuchHostedZone") => ProviderError::UnknownZone(zone.clone()),
            (401 | 403, _) => ProviderError::Refused(format!(
                "GET {shown}: Route 53 refused the credentials ({said})"
            )),
            (400..=499, _) => ProviderError::Refused(format!("GET {shown}: {said}")),
            _ => ProviderError::Unreachable(format!("GET {shown}: {said}")),
        })
    }
}

/// A page of RRsets.
fn page(text: &str) -> Result<RrsetsAnswer, ProviderError> {
    quick_xml::de::from_str(text).map_err(|e| {
        ProviderError::Unreachable(format!("Route 53's list of RRsets is unreadable: {e}"))
    })
}

/// The owner and type of an API RRset.
fn key_of(set: &ApiRrset) -> Result<(Name, RecordType), ProviderError> {
    let bad = |why: String| {
        ProviderError::Refused(format!("Route 53 sent {} {}: {why}", set.name, set.rtype))
    };
    let name = Name::from_str(&set.name.replace("\\052", "*")).map_err(|e| bad(e.to_string()))?;
    let rtype = RecordType::from_str(&set.rtype).map_err(|e| bad(e.to_string()))?;
    Ok((name, rtype))
}

/// Our RRset for an API RRset; routing-policy and alias records refused.
fn rrset_of(set: &ApiRrset) -> Result<Rrset, ProviderError> {
    let (_, rtype) = key_of(set)?;
    let what = format!("{} {}", set.name, set.rtype);
    if set.set_identifier.is_some() {
        return Err(ProviderError::Unsupported(format!(
            "{what} has a routing policy (SetIdentifier) in Route 53, which cutover cannot express"
        )));
    }
    if set.alias.is_some() {
        return Err(ProviderError::Unsupported(format!(
            "{what} is a Route 53 alias record, which cutover cannot express"
        )));
    }
    let ttl = set
        .ttl
        .ok_or_else(|| ProviderError::Refused(format!("Route 53 sent {what} without a TTL")))?;
    let mut out: Option<Rrset> = None;
    for record in set.records.iter().flat_map(|r| &r.record) {
        let rdata = rdata_from_text(rtype, &record.value, &Name::root()).map_err(|e| {
            ProviderError::Refused(format!("Route 53 sent {what} {:?}: {e}", record.value))
        })?;
        match &mut out {
            None => out = Some(Rrset::new(ttl, rdata)),
            Some(rrset) => {
                rrset.insert(rdata);
            }
        }
    }
    out.ok_or_else(|| ProviderError::Refused(format!("Route 53 sent {what} without values")))
}

/// `name` in absolute form, with its final dot.
fn absolute(name: &Name) -> String {
    let text = name.to_string();
    if text.ends_with('.') {
        text
    } else {
        format!("{text}.")
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (SigV4's rule).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded_as_sigv4_wants() {
        assert_eq!(encode("www.example.test."), "www.example.test.");
        assert_eq!(encode("a b*/"), "a%20b%2A%2F");
    }

    #[test]
    fn an_rrset_page_reads_with_ttls_and_octal_escapes() {
        let text = r#"<?xml version="1.0"?>
<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
<ResourceRecordSets><ResourceRecordSet><Name>\052.example.test.</Name><Type>MX</Type><TTL>300</TTL>
<ResourceRecords><ResourceRecord><Value>10 mail.example.test.</Value></ResourceRecord></ResourceRecords>
</ResourceRecordSet></ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems>
</ListResourceRecordSetsResponse>"#;
        let answer = page(text).unwrap();
        let set = &answer.sets.set[0];
        let (name, rtype) = key_of(set).unwrap();
        assert_eq!(
            (name.to_string().as_str(), rtype),
            ("*.example.test.", RecordType::MX)
        );
        let rrset = rrset_of(set).unwrap();
        assert_eq!(rrset.ttl, 300, "the TTL is read");
        assert_eq!(rrset.len(), 1);
    }
}
