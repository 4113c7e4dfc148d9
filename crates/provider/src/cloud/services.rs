//! The cloud hosts a migration file can name, with the credentials and
//! settings each takes, and the one function that turns them into
//! dns-update's client. Pure data plus a constructor: `cutover provider
//! list` prints [`SERVICES`], the migration file is checked against it.

use std::collections::BTreeMap;
use std::time::Duration;

use dns_update::providers::azuredns::{AzureDnsConfig, AzureEnvironment};
use dns_update::providers::google_cloud_dns::GoogleCloudDnsConfig;
use dns_update::providers::ovh::OvhEndpoint;
use dns_update::providers::route53::Route53Config;
use dns_update::DnsUpdater;

use crate::ProviderError;

/// How a service's records are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Through the host's API, TTLs included (Route 53's ListResourceRecordSets).
    Api,
    /// By DNS from the zone's authoritative servers (`nameservers`): the
    /// API client lists values without TTLs.
    Dns,
}

/// One key of a service's provider table.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The key (`token`, `region`, …).
    pub key: &'static str,
    /// What it holds, for errors and `cutover provider list`.
    pub what: &'static str,
    /// A credential: also taken as `KEY_file` / `KEY_env`, blanked when
    /// shown, never printed.
    pub secret: bool,
    /// Whether the service needs it.
    pub required: bool,
}

/// A cloud DNS host.
#[derive(Clone, Copy, Debug)]
pub struct Service {
    /// The name a migration file gives (`service = "route53"`).
    pub name: &'static str,
    /// The host's own name.
    pub title: &'static str,
    /// Its keys (credentials first).
    pub settings: &'static [Setting],
    /// How its records are read.
    pub reads: Reads,
}

/// A credential every token-only host takes.
const TOKEN: Setting = Setting {
    key: "token",
    what: "the API token",
    secret: true,
    required: true,
};

/// The zone's authoritative servers, for hosts read by DNS.
pub const NAMESERVERS: Setting = Setting {
    key: "nameservers",
    what: "the zone's authoritative servers to read from, e.g. [\"ns1.host.example:53\"]",
    secret: false,
    required: true,
};

/// A token-only host read by DNS.
const fn token_host(name: &'static str, title: &'static str) -> Service {
    Service {
        name,
        title,
        settings: &[TOKEN, NAMESERVERS],
        reads: Reads::Dns,
    }
}

/// Every host a migration file can name.
pub const SERVICES: &[Service] = &[
    Service {
        name: "route53",
        title: "Amazon Route 53",
        settings: &[
            Setting {
                key: "access_key_id",
                what: "the IAM access key id",
                secret: true,
                required: true,
            },
            Setting {
                key: "secret_access_key",
                what: "the IAM secret access key",
                secret: true,
                required: true,
            },
            Setting {
                key: "session_token",
                what: "the session token of temporary credentials",
                secret: true,
                required: false,
            },
            Setting {
                key: "region",
                what: "the signing region (default us-east-1)",
                secret: false,
                required: false,
            },
            Setting {
                key: "zone_id",
                what: "the hosted zone id, e.g. \"Z0123456789ABCDEF\" (default: found by the zone's name)",
                secret: false,
                required: false,
            },
            Setting {
                key: "url",
                what: "another API endpoint (default https://route53.amazonaws.com)",
                secret: false,
                required: false,
            },
        ],
        reads: Reads::Api,
    },
    token_host("cloudflare", "Cloudflare"),
    token_host("digitalocean", "DigitalOcean"),
    token_host("desec", "deSEC"),
    token_host("hetzner", "Hetzner DNS"),
    token_host("gandi", "Gandi LiveDNS (v5)"),
    token_host("linode", "Linode (Akamai)"),
    token_host("vultr", "Vultr"),
    token_host("bunny", "Bunny DNS"),
    Service {
        name: "ovh",
        title: "OVHcloud",
        settings: &[
            Setting {
                key: "application_key",
                what: "the application key",
                secret: true,
                required: true,
            },
            Setting {
                key: "application_secret",
                what: "the application secret",
                secret: true,
                required: true,
            },
            Setting {
                key: "consumer_key",
                what: "the consumer key",
                secret: true,
                required: true,
            },
            Setting {
                key: "endpoint",
                what: "the API: ovh-eu, ovh-us, ovh-ca, kimsufi-eu, kimsufi-ca, soyoustart-eu or soyoustart-ca",
                secret: false,
                required: true,
            },
            NAMESERVERS,
        ],
        reads: Reads::Dns,
    },
    Service {
        name: "google",
        title: "Google Cloud DNS",
        settings: &[
            Setting {
                key: "service_account_json",
                what: "the service account's JSON key (usually service_account_json_file = \"/path/key.json\")",
                secret: true,
                required: true,
            },
            Setting {
                key: "project_id",
                what: "the Google Cloud project id",
                secret: false,
                required: true,
            },
            Setting {
                key: "managed_zone",
                what: "the managed zone's name (default: found by the zone's name)",
                secret: false,
                required: false,
            },
            NAMESERVERS,
        ],
        reads: Reads::Dns,
    },
    // dns-update's PowerDNS client, as the other hosts are driven (reads
    // by DNS, writes RRset by RRset); `kind = "powerdns"` is cutover's own
    // client, which reads TTLs through the API and applies with conditions.
    Service {
        name: "pdns",
        title: "PowerDNS Authoritative",
        settings: &[
            Setting {
                key: "api_key",
                what: "the API key (X-API-Key)",
                secret: true,
                required: true,
            },
            Setting {
                key: "url",
                what: "the API's base URL, e.g. \"http://127.0.0.1:8081\"",
                secret: false,
                required: true,
            },
            Setting {
                key: "server_id",
                what: "the server id in the API's paths (default localhost)",
                secret: false,
                required: false,
            },
            NAMESERVERS,
        ],
        reads: Reads::Dns,
    },
    Service {
        name: "azure",
        title: "Azure DNS",
        settings: &[
            Setting {
                key: "client_secret",
                what: "the service principal's client secret",
                secret: true,
                required: true,
            },
            Setting {
                key: "tenant_id",
                what: "the directory (tenant) id",
                secret: false,
                required: true,
            },
            Setting {
                key: "client_id",
                what: "the service principal's application (client) id",
                secret: false,
                required: true,
            },
            Setting {
                key: "subscription_id",
                what: "the subscription id",
                secret: false,
                required: true,
            },
            Setting {
                key: "resource_group",
                what: "the resource group holding the zone",
                secret: false,
                required: true,
            },
            NAMESERVERS,
        ],
        reads: Reads::Dns,
    },
];

/// The service named `name`.
pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

/// The names of every service, quoted, for errors.
pub fn names() -> String {
    SERVICES
        .iter()
        .map(|s| format!("\"{}\"", s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every key any service takes (for the migration file's closed table).
pub fn all_keys() -> Vec<&'static Setting> {
    let mut out: Vec<&'static Setting> = Vec::new();
    for setting in SERVICES.iter().flat_map(|s| s.settings) {
        if !out.iter().any(|s| s.key == setting.key) {
            out.push(setting);
        }
    }
    out
}

/// dns-update's client for `service` with `values` (every required key
/// present, secrets already read). Errors name keys, never values.
pub fn updater(
    service: &Service,
    values: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<DnsUpdater, ProviderError> {
    for setting in service.settings {
        if setting.required && setting.key != "nameservers" && !values.contains_key(setting.key) {
            return Err(ProviderError::Refused(format!(
                "{} needs provider.{}: {}",
                service.title, setting.key, setting.what
            )));
        }
    }
    let get = |key: &str| values.get(key).cloned().unwrap_or_default();
    let opt = |key: &str| values.get(key).cloned();
    let failed = |e: dns_update::Error| {
        ProviderError::Refused(format!(
            "{}: the API client could not be built: {}",
            service.title,
            client_error(&e)
        ))
    };
    let timeout = Some(timeout);
    match service.name {
        "route53" => DnsUpdater::new_route53(Route53Config {
            access_key_id: get("access_key_id"),
            secret_access_key: get("secret_access_key"),
            session_token: opt("session_token"),
            region: opt("region"),
            hosted_zone_id: opt("zone_id"),
            private_zone_only: None,
            endpoint: opt("url").map(|u| u.trim_end_matches('/').to_string()),
        }),
        "cloudflare" => DnsUpdater::new_cloudflare(get("token"), timeout),
        "digitalocean" => DnsUpdater::new_digitalocean(get("token"), timeout),
        "desec" => DnsUpdater::new_desec(get("token"), timeout),
        "hetzner" => DnsUpdater::new_hetzner(get("token"), timeout),
        "gandi" => DnsUpdater::new_gandiv5(get("token"), timeout),
        "linode" => DnsUpdater::new_linode(get("token"), timeout),
        "vultr" => DnsUpdater::new_vultr(get("token"), timeout),
        "bunny" => DnsUpdater::new_bunny(get("token"), timeout),
        "ovh" => {
            let endpoint: OvhEndpoint = get("endpoint").parse().map_err(|_| {
                ProviderError::Refused(format!(
                    "provider.endpoint {:?}: expected {}",
                    get("endpoint"),
                    service.settings[3].what
                ))
            })?;
            DnsUpdater::new_ovh(
                get("application_key"),
                get("application_secret"),
                get("consumer_key"),
                endpoint,
                timeout,
            )
        }
        "google" => {
            google_key_checked(&get("service_account_json"))?;
            DnsUpdater::new_google_cloud_dns(GoogleCloudDnsConfig {
                service_account_json: get("service_account_json"),
                project_id: get("project_id"),
                managed_zone: opt("managed_zone"),
                private_zone: false,
                impersonate_service_account: None,
                request_timeout: timeout,
            })
        }
        "pdns" => DnsUpdater::new_pdns(
            get("api_key"),
            Some(get("url")),
            Some(opt("server_id").unwrap_or_else(|| "localhost".into())),
            timeout,
        ),
        "azure" => DnsUpdater::new_azuredns(AzureDnsConfig {
            tenant_id: get("tenant_id"),
            client_id: get("client_id"),
            client_secret: get("client_secret"),
            subscription_id: get("subscription_id"),
            resource_group: get("resource_group"),
            environment: AzureEnvironment::Public,
            request_timeout: timeout,
        }),
        other => {
            return Err(ProviderError::Unsupported(format!(
                "cloud service {other:?}: expected one of {}",
                names()
            )))
        }
    }
    .map_err(failed)
}

/// A Google service account key is JSON with `client_email` and
/// `private_key`: checked when the client is built, so a wrong file is
/// refused at planning rather than at the switch. The error never quotes it.
fn google_key_checked(json: &str) -> Result<(), ProviderError> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        ProviderError::Refused(format!(
            "provider.service_account_json is not JSON (line {}, column {}): expected the service account's key file as Google gives it",
            e.line(),
            e.column()
        ))
    })?;
    for field in ["client_email", "private_key"] {
        if !value.get(field).is_some_and(|v| v.is_string()) {
            return Err(ProviderError::Refused(format!(
                "provider.service_account_json has no \"{field}\": expected the service account's key file as Google gives it"
            )));
        }
    }
    Ok(())
}

/// dns-update's error in words that hold no request data.
pub(crate) fn client_error(e: &dns_update::Error) -> String {
    match e {
        dns_update::Error::Unauthorized => "the credentials were refused".into(),
        dns_update::Error::NotFound => "not found".into(),
        dns_update::Error::BadRequest => "bad request".into(),
        dns_update::Error::InvalidRegion => "invalid region".into(),
        dns_update::Error::Unsupported(why)
        | dns_update::Error::Client(why)
        | dns_update::Error::Protocol(why)
        | dns_update::Error::Parse(why)
        | dns_update::Error::Response(why)
        | dns_update::Error::Api(why)
        | dns_update::Error::Serialize(why) => why.clone(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_builds_a_client_from_its_keys() {
        for service in SERVICES {
            let values: BTreeMap<String, String> = service
                .settings
                .iter()
                .filter(|s| s.key != "nameservers")
                .map(|s| {
                    let value = match s.key {
                        "endpoint" => "ovh-eu",
                        "region" => "us-east-1",
                        "url" => "http://127.0.0.1:1",
                        "service_account_json" => {
                            r#"{"client_email":"a@b.iam.gserviceaccount.com","private_key":"k"}"#
                        }
                        _ => "x",
                    };
                    (s.key.to_string(), value.to_string())
                })
                .collect();
            updater(service, &values, Duration::from_secs(1))
                .unwrap_or_else(|e| panic!("{}: {e}", service.name));
        }
    }

    #[test]
    fn a_missing_credential_is_named() {
        let err = updater(
            service("route53").unwrap(),
            &BTreeMap::new(),
            Duration::from_secs(1),
        )
        .err()
        .expect("refused");
        assert!(err.to_string().contains("provider.access_key_id"), "{err}");
    }

    #[test]
    fn a_google_key_that_is_not_one_is_refused_without_quoting_it() {
        let mut values = BTreeMap::from([
            (
                "service_account_json".to_string(),
                "secret-not-json".to_string(),
            ),
            ("project_id".to_string(), "p".to_string()),
        ]);
        let google = service("google").unwrap();
        let err = updater(google, &values, Duration::from_secs(1))
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("is not JSON"), "{err}");
        assert!(!err.contains("secret-not-json"), "{err}");
        values.insert(
            "service_account_json".into(),
            r#"{"client_email":"x"}"#.into(),
        );
        let err = updater(google, &values, Duration::from_secs(1))
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("no \"private_key\""), "{err}");
    }
}
