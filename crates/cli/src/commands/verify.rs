//! `cutover verify`: a service checked at an address of the user's choosing,
//! before DNS points there (the hosts-file trick, built in).
//!
//! ```text
//!  arguments ──▶ probe (crates/probe: http, smtp, tcp, imap/pop3, mail readiness)   [I/O]
//!            ──▶ observation ──judge (pure)──▶ findings, one sentence each
//!            ──▶ the observation and the findings, as text or JSON
//! ```
//!
//! Exit status: 0 when every finding is healthy, 1 otherwise (the probe
//! could not finish, a bad certificate, an unexpected status, a refused
//! recipient, a mail-readiness problem…).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context};
pub use cutover_api::verify::{Service, VerifyArgs};
use cutover_probe::caches;
use cutover_probe::dns::{Client, QueryOptions};
use cutover_probe::mail::{self, Dns, MailReadiness, MailTarget, MtaSts, Severity};
use cutover_probe::service::http::{self, HttpObservation, HttpRequest, Url};
use cutover_probe::service::mailbox::{self, MailboxObservation, MailboxRequest, Protocol};
use cutover_probe::service::smtp::{self, Reply, SmtpObservation, SmtpRequest};
use cutover_probe::service::tcp;
use cutover_probe::service::tls::{self, CertificateView, TlsObservation, TlsRoots, Verdict};
use cutover_zone::Name;
use serde::Serialize;
use serde_json::{json, Value};

use super::common::timestamp;
use super::table::{Table, Tone};

/// A certificate expiring sooner than this many days is worth a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// One finding: a sentence, and whether it is healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct Finding {
    /// False when this stops the service from being ready.
    healthy: bool,
    /// What was found, and what to change when it is not healthy.
    sentence: String,
}

/// What one verify run came to: the observation and its findings.
#[derive(Clone, Debug, Serialize)]
struct Verification {
    /// The service checked ("http", "smtp"…).
    service: &'static str,
    /// What was checked, in words.
    target: String,
    /// True when every finding is healthy.
    healthy: bool,
    /// The findings, one sentence each.
    findings: Vec<Finding>,
    /// What the probe saw (null when it could not finish).
    observation: Value,
    /// The observation in readable lines (not in the JSON).
    #[serde(skip)]
    lines: Vec<String>,
}

impl Finding {
    /// A healthy finding.
    fn ok(sentence: impl Into<String>) -> Finding {
        Finding {
            healthy: true,
            sentence: sentence.into(),
        }
    }

    /// A finding that stops the service from being ready.
    fn problem(sentence: impl Into<String>) -> Finding {
        Finding {
            healthy: false,
            sentence: sentence.into(),
        }
    }
}

impl Verification {
    /// A verification from its parts; healthy when every finding is.
    fn new(
        service: &'static str,
        target: String,
        findings: Vec<Finding>,
        observation: Value,
        lines: Vec<String>,
    ) -> Verification {
        Verification {
            service,
            target,
            healthy: !findings.is_empty() && findings.iter().all(|f| f.healthy),
            findings,
            observation,
            lines,
        }
    }

    /// A probe that could not finish.
    fn failed(service: &'static str, target: String, why: String) -> Verification {
        Verification::new(
            service,
            target,
            vec![Finding::problem(why)],
            Value::Null,
            Vec::new(),
        )
    }

    /// The readable form: the target, the observation, the findings (a
    /// problem in red with `colour`).
    fn text(&self, colour: bool) -> String {
        let mut out = format!("{} {}\n", self.service, self.target);
        for line in &self.lines {
            out.push_str(&format!("  {line}\n"));
        }
        out.push_str("findings:\n");
        let mut findings = Table::bare().indent(2);
        for finding in &self.findings {
            match finding.healthy {
                true => findings.row(["ok", finding.sentence.as_str()]),
                false => findings.toned(Tone::Alarm, ["PROBLEM", finding.sentence.as_str()]),
            }
        }
        out.push_str(&findings.render(colour));
        out.push_str(if self.healthy {
            "verdict: healthy\n"
        } else {
            "verdict: NOT healthy\n"
        });
        out
    }
}

/// Runs `cutover verify`.
pub fn run(args: &VerifyArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let verification = runtime.block_on(verify(args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&verification)?);
    } else {
        print!(
            "{}",
            verification.text(crate::commands::common::colour_on(&std::io::stdout()))
        );
    }
    if verification.healthy {
        Ok(())
    } else {
        bail!(
            "{} {} is not healthy (see the findings above)",
            verification.service,
            verification.target
        )
    }
}

/// Runs the probe the arguments ask for.
async fn verify(args: &VerifyArgs) -> anyhow::Result<Verification> {
    let roots = tls::root_store(&match &args.ca_file {
        Some(path) => TlsRoots::CaFile(path.clone()),
        None => TlsRoots::WebPki,
    })?;
    let now = SystemTime::now();
    let timeout = args.timeout;
    Ok(match &args.service {
        Service::Http {
            url,
            address,
            old_address,
            expect_status,
            body_contains,
        } => {
            let url = Url::parse(url)?;
            let request = |address: IpAddr| HttpRequest {
                url: url.clone(),
                address,
                body_contains: body_contains.clone(),
                timeout,
            };
            let new = http::fetch(&request(*address), &roots, now).await;
            let old = match old_address {
                Some(old) => Some((*old, http::fetch(&request(*old), &roots, now).await)),
                None => None,
            };
            let target = format!("{} at {}", url_text(&url), address);
            match new {
                Ok(new) => http_verification(target, &url, &new, *expect_status, old),
                Err(e) => Verification::failed("http", target, e.to_string()),
            }
        }
        Service::Smtp {
            address,
            server_name,
            starttls,
            rcpt,
            helo,
        } => {
            let (address, host) = resolve(address).await?;
            let request = SmtpRequest {
                address,
                server_name: server_name.clone().unwrap_or(host),
                helo: helo.clone(),
                starttls: *starttls,
                rcpt: rcpt.clone(),
                timeout,
            };
            let target = address.to_string();
            match smtp::probe(&request, &roots, now).await {
                Ok(seen) => smtp_verification(target, &request, &seen),
                Err(e) => Verification::failed("smtp", target, e.to_string()),
            }
        }
        Service::Tcp { address } => {
            let (address, _) = resolve(address).await?;
            let seen = tcp::connect(address, timeout).await;
            match seen.result {
                Ok(elapsed) => Verification::new(
                    "tcp",
                    address.to_string(),
                    vec![Finding::ok(format!(
                        "{address} accepts TCP connections ({} ms to connect)",
                        elapsed.as_millis()
                    ))],
                    json!({ "address": address.to_string(), "connect_ms": elapsed.as_millis() as u64 }),
                    vec![format!("connected in {} ms", elapsed.as_millis())],
                ),
                Err(e) => Verification::failed(
                    "tcp",
                    address.to_string(),
                    format!("{e}: start the service or open the port"),
                ),
            }
        }
        Service::Imap(mailbox) | Service::Pop3(mailbox) => {
            let (protocol, service) = match &args.service {
                Service::Imap(_) => (Protocol::Imap, "imap"),
                _ => (Protocol::Pop3, "pop3"),
            };
            let (address, host) = resolve(&mailbox.address).await?;
            let request = MailboxRequest {
                protocol,
                address,
                server_name: mailbox.server_name.clone().unwrap_or(host),
                starttls: mailbox.starttls,
                timeout,
            };
            let target = address.to_string();
            match mailbox::probe(&request, &roots, now).await {
                Ok(seen) => mailbox_verification(service, target, &request, &seen),
                Err(e) => Verification::failed(service, target, e.to_string()),
            }
        }
        Service::Mail {
            domain,
            new_ip,
            resolver,
            mta_sts_port,
        } => {
            let domain = super::common::zone_name(domain)?;
            let resolver = match resolver {
                Some(text) => caches::Resolver::parse(text)?.address,
                None => caches::system_resolvers()?
                    .first()
                    .map(|r| r.address)
                    .ok_or_else(|| {
                        anyhow!("/etc/resolv.conf lists no nameserver: give --resolver IP[:PORT]")
                    })?,
            };
            let dns = Dns {
                client: Client::new(QueryOptions {
                    timeout,
                    ..QueryOptions::default()
                }),
                resolver,
            };
            let target = MailTarget {
                domain: domain.clone(),
                new_ip: *new_ip,
                mta_sts_port: *mta_sts_port,
                timeout,
            };
            let readiness = mail::readiness(&dns, &target, &roots, now).await;
            mail_verification(&domain, *new_ip, &readiness)
        }
    })
}

/// The address of `HOST:PORT` or `IP:PORT`, and the name a certificate
/// there must be valid for (HOST, or the IP as text).
async fn resolve(text: &str) -> anyhow::Result<(SocketAddr, String)> {
    if let Ok(address) = SocketAddr::from_str(text) {
        return Ok((address, address.ip().to_string()));
    }
    let (host, _) = text
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("{text:?} is not HOST:PORT or IP:PORT"))?;
    let address = tokio::net::lookup_host(text)
        .await
        .with_context(|| format!("cannot resolve {text:?}"))?
        .next()
        .ok_or_else(|| anyhow!("{host} has no address"))?;
    Ok((address, host.to_string()))
}

/// The URL as typed back.
fn url_text(url: &Url) -> String {
    let scheme = if url.tls { "https" } else { "http" };
    format!("{scheme}://{}{}", url.host_header(), url.path)
}

/// Judges an HTTP observation (and the old address's, when asked). Pure.
fn http_verification(
    target: String,
    url: &Url,
    new: &HttpObservation,
    expect_status: Option<u16>,
    old: Option<(
        IpAddr,
        Result<HttpObservation, cutover_probe::service::ServiceError>,
    )>,
) -> Verification {
    let mut findings = Vec::new();
    match expect_status {
        Some(expected) if new.status == expected => {
            findings.push(Finding::ok(format!("status {}, as expected", new.status)))
        }
        Some(expected) => findings.push(Finding::problem(format!(
            "status {} where {expected} was expected: fix the site at {} or change --expect-status",
            new.status, new.address
        ))),
        None if new.status < 400 => findings.push(Finding::ok(format!("status {}", new.status))),
        None => findings.push(Finding::problem(format!(
            "status {}: the server at {} does not serve {} yet",
            new.status,
            new.address,
            url_text(url)
        ))),
    }
    if let Some(location) = &new.redirect {
        findings.push(Finding::ok(format!(
            "redirects to {location} (not followed)"
        )));
    }
    match new.body_contains {
        Some(true) => findings.push(Finding::ok("the body contains the expected text")),
        Some(false) => findings.push(Finding::problem(
            "the body does not contain the expected text: check the content served at the new address",
        )),
        None => {}
    }
    if let Some(seen) = &new.tls {
        findings.push(certificate_finding(seen));
    }
    let mut lines = vec![
        format!("status       {}", new.status),
        format!("time         {} ms", new.elapsed.as_millis()),
        format!(
            "body         {} bytes, sha256 {}",
            new.body_len, new.body_sha256
        ),
    ];
    if let Some(location) = &new.redirect {
        lines.push(format!("redirect     {location}"));
    }
    for name in http::HEADERS_THAT_MATTER {
        if let Some(value) = new.header(name) {
            lines.push(format!("header       {name}: {value}"));
        }
    }
    if let Some(seen) = &new.tls {
        lines.extend(tls_lines(seen));
    }
    let mut observation = http_json(new);
    if let Some((old_address, old)) = old {
        match old {
            Ok(old) => {
                let differences = http::compare(&old, new);
                if differences.is_empty() {
                    lines.push(format!("old address {old_address} answers alike"));
                    findings.push(Finding::ok(format!(
                        "the old address {old_address} and the new one answer alike"
                    )));
                } else {
                    lines.push(format!("differences from the old address {old_address}:"));
                    for d in &differences {
                        lines.push(format!("  {}: {} → {}", d.what, d.old, d.new));
                    }
                    let what: Vec<&str> = differences.iter().map(|d| d.what.as_str()).collect();
                    findings.push(Finding::ok(format!(
                        "the old address {old_address} and the new one differ in {}: make sure that is intended",
                        what.join(", ")
                    )));
                }
                observation["old"] = http_json(&old);
                observation["differences"] = differences
                    .iter()
                    .map(|d| json!({ "what": d.what, "old": d.old, "new": d.new }))
                    .collect();
            }
            Err(e) => {
                lines.push(format!("old address {old_address}: {e}"));
                findings.push(Finding::ok(format!(
                    "the old address {old_address} could not be compared: {e}"
                )));
                observation["old_error"] = json!(e.to_string());
            }
        }
    }
    Verification::new("http", target, findings, observation, lines)
}

/// Judges an SMTP observation. Pure.
fn smtp_verification(
    target: String,
    request: &SmtpRequest,
    seen: &SmtpObservation,
) -> Verification {
    let mut findings = vec![Finding::ok(format!(
        "the server greets with {}",
        reply_text(&seen.banner)
    ))];
    if request.starttls {
        match &seen.tls {
            Some(tls) => findings.push(certificate_finding(tls)),
            None => findings.push(Finding::problem(
                "STARTTLS is not offered: enable TLS on the new server, or drop --starttls",
            )),
        }
    }
    if let (Some(recipient), Some((mail, rcpt))) = (&request.rcpt, &seen.rcpt) {
        if !mail.is_positive() {
            findings.push(Finding::problem(format!(
                "MAIL FROM:<> was refused with {}: the server must accept bounces",
                reply_text(mail)
            )));
        } else if rcpt.is_positive() {
            findings.push(Finding::ok(format!(
                "RCPT TO:<{recipient}> would be accepted ({})",
                reply_text(rcpt)
            )));
        } else {
            findings.push(Finding::problem(format!(
                "RCPT TO:<{recipient}> was refused with {}: add the recipient or its domain on the new server",
                reply_text(rcpt)
            )));
        }
    }
    let mut lines = vec![
        format!("banner       {}", reply_text(&seen.banner)),
        format!("extensions   {}", seen.extensions.join(" ")),
        format!("time         {} ms", seen.elapsed.as_millis()),
    ];
    if let Some(tls) = &seen.tls {
        lines.extend(tls_lines(tls));
        lines.push(format!(
            "after TLS    {}",
            seen.extensions_after_tls.join(" ")
        ));
    }
    if let Some((mail, rcpt)) = &seen.rcpt {
        lines.push(format!("MAIL FROM    {}", reply_text(mail)));
        lines.push(format!("RCPT TO      {}", reply_text(rcpt)));
    }
    let observation = json!({
        "address": request.address.to_string(),
        "banner": reply_json(&seen.banner),
        "ehlo": reply_json(&seen.ehlo),
        "extensions": seen.extensions,
        "tls": seen.tls.as_ref().map(tls_json),
        "extensions_after_tls": seen.extensions_after_tls,
        "mail_from": seen.rcpt.as_ref().map(|(mail, _)| reply_json(mail)),
        "rcpt": seen.rcpt.as_ref().map(|(_, rcpt)| reply_json(rcpt)),
        "elapsed_ms": seen.elapsed.as_millis() as u64,
    });
    Verification::new("smtp", target, findings, observation, lines)
}

/// Judges an IMAP or POP3 observation. Pure.
fn mailbox_verification(
    service: &'static str,
    target: String,
    request: &MailboxRequest,
    seen: &MailboxObservation,
) -> Verification {
    let mut findings = vec![Finding::ok(format!(
        "the server greets with {:?}",
        seen.banner
    ))];
    if request.starttls {
        match &seen.tls {
            Some(tls) => findings.push(certificate_finding(tls)),
            None => findings.push(Finding::problem(
                "STARTTLS is not offered: enable TLS on the new server, or drop --starttls",
            )),
        }
    }
    let mut lines = vec![
        format!("banner       {}", seen.banner),
        format!("capabilities {}", seen.capabilities.join(" ")),
        format!("time         {} ms", seen.elapsed.as_millis()),
    ];
    if let Some(tls) = &seen.tls {
        lines.extend(tls_lines(tls));
    }
    let observation = json!({
        "address": request.address.to_string(),
        "banner": seen.banner,
        "capabilities": seen.capabilities,
        "tls": seen.tls.as_ref().map(tls_json),
        "elapsed_ms": seen.elapsed.as_millis() as u64,
    });
    Verification::new(service, target, findings, observation, lines)
}

/// Turns the mail-readiness findings into the command's (a Problem is unhealthy). Pure.
fn mail_verification(domain: &Name, new_ip: IpAddr, readiness: &MailReadiness) -> Verification {
    let findings = readiness
        .findings
        .iter()
        .map(|f| Finding {
            healthy: f.severity != Severity::Problem,
            sentence: match f.severity {
                Severity::Warning => format!("(warning) {}", f.sentence),
                _ => f.sentence.clone(),
            },
        })
        .collect();
    let mut lines = Vec::new();
    for (preference, host, addresses) in &readiness.mx {
        let addresses: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
        lines.push(format!(
            "MX           {preference} {host} ({})",
            addresses.join(", ")
        ));
    }
    let (spf, lookups) = &readiness.spf;
    lines.push(format!(
        "SPF          {spf} for {new_ip}, {lookups} lookups"
    ));
    for (name, confirmed) in &readiness.ptr {
        let back = if *confirmed {
            "resolves back"
        } else {
            "does not resolve back"
        };
        lines.push(format!("PTR          {name} ({back})"));
    }
    let mta_sts = match &readiness.mta_sts {
        MtaSts::Absent => json!({ "state": "absent" }),
        MtaSts::Unavailable(why) => json!({ "state": "unavailable", "reason": why }),
        MtaSts::Policy(policy) => json!({
            "state": "policy",
            "mode": policy.mode,
            "mx": policy.mx,
            "max_age": policy.max_age,
        }),
    };
    lines.push(match &readiness.mta_sts {
        MtaSts::Absent => "MTA-STS      none".to_string(),
        MtaSts::Unavailable(why) => format!("MTA-STS      unavailable: {why}"),
        MtaSts::Policy(policy) => format!(
            "MTA-STS      mode {}, mx {}",
            policy.mode,
            policy.mx.join(" ")
        ),
    });
    let observation = json!({
        "domain": domain.to_string(),
        "new_ip": new_ip.to_string(),
        "mx": readiness.mx.iter().map(|(preference, host, addresses)| json!({
            "preference": preference,
            "host": host.to_string(),
            "addresses": addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "spf": { "result": spf.to_string(), "lookups": lookups },
        "ptr": readiness.ptr.iter().map(|(name, confirmed)| json!({
            "name": name.to_string(),
            "resolves_back": confirmed,
        })).collect::<Vec<_>>(),
        "mta_sts": mta_sts,
    });
    Verification::new(
        "mail",
        format!("{domain} moving to {new_ip}"),
        findings,
        observation,
        lines,
    )
}

/// The certificate verdict in one sentence, with the issuer and the days left.
fn certificate_finding(seen: &TlsObservation) -> Finding {
    let leaf = seen.leaf();
    let issuer = leaf
        .map(|c| c.issuer.as_str())
        .unwrap_or("(no certificate)");
    match (&seen.verdict, leaf) {
        (Verdict::Valid, Some(leaf)) if leaf.days_to_expiry < EXPIRY_WARNING_DAYS => {
            Finding::ok(format!(
                "(warning) the certificate for {} issued by {issuer} is valid but expires in {} days: renew it before the move",
                seen.server_name, leaf.days_to_expiry
            ))
        }
        (Verdict::Valid, _) => Finding::ok(format!(
            "the certificate for {} is valid, issued by {issuer}, expires in {} days",
            seen.server_name,
            leaf.map(|c| c.days_to_expiry).unwrap_or_default()
        )),
        (Verdict::Invalid(reason), _) => Finding::problem(format!(
            "the certificate for {} (issued by {issuer}) is not valid: {reason}; install one valid for {} from a trusted CA",
            seen.server_name, seen.server_name
        )),
    }
}

/// The TLS handshake in readable lines.
fn tls_lines(seen: &TlsObservation) -> Vec<String> {
    let mut lines = vec![format!(
        "tls          {} as {}, certificate {}",
        seen.version, seen.server_name, seen.verdict
    )];
    for (i, cert) in seen.chain.iter().enumerate() {
        let role = if i == 0 {
            "certificate "
        } else {
            "chain       "
        };
        lines.push(format!(
            "{role} {} issued by {}, expires {} (in {} days), names {}",
            cert.subject,
            cert.issuer,
            timestamp(cert.not_after),
            cert.days_to_expiry,
            cert.dns_names.join(" ")
        ));
    }
    lines
}

/// An SMTP reply as "250 text".
fn reply_text(reply: &Reply) -> String {
    format!("{} {}", reply.code, reply.lines.join(" / "))
}

/// An SMTP reply as JSON.
fn reply_json(reply: &Reply) -> Value {
    json!({ "code": reply.code, "lines": reply.lines })
}

/// A certificate as JSON.
fn certificate_json(cert: &CertificateView) -> Value {
    json!({
        "subject": cert.subject,
        "issuer": cert.issuer,
        "dns_names": cert.dns_names,
        "not_after": timestamp(cert.not_after),
        "days_to_expiry": cert.days_to_expiry,
        "sha256": cert.sha256,
    })
}

/// A TLS handshake as JSON.
fn tls_json(seen: &TlsObservation) -> Value {
    let (valid, reason) = match &seen.verdict {
        Verdict::Valid => (true, None),
        Verdict::Invalid(reason) => (false, Some(reason.clone())),
    };
    json!({
        "server_name": seen.server_name,
        "version": seen.version,
        "valid": valid,
        "invalid_reason": reason,
        "chain": seen.chain.iter().map(certificate_json).collect::<Vec<_>>(),
    })
}

/// An HTTP observation as JSON.
fn http_json(seen: &HttpObservation) -> Value {
    json!({
        "address": seen.address.to_string(),
        "status": seen.status,
        "headers": seen.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
        "body_len": seen.body_len,
        "body_sha256": seen.body_sha256,
        "body_contains": seen.body_contains,
        "redirect": seen.redirect,
        "elapsed_ms": seen.elapsed.as_millis() as u64,
        "tls": seen.tls.as_ref().map(tls_json),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An HTTPS observation with `status` and a certificate `verdict`.
    fn observation(status: u16, verdict: Verdict, days: i64) -> HttpObservation {
        HttpObservation {
            address: "127.0.0.2:443".parse().unwrap(),
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body_len: 2,
            body_sha256: "ab".into(),
            body_contains: None,
            redirect: None,
            elapsed: Duration::from_millis(3),
            tls: Some(TlsObservation {
                server_name: "www.example.test".into(),
                version: "TLSv1_3".into(),
                verdict,
                chain: vec![CertificateView {
                    subject: "CN=www.example.test".into(),
                    issuer: "CN=test CA".into(),
                    dns_names: vec!["www.example.test".into()],
                    not_after: SystemTime::UNIX_EPOCH,
                    days_to_expiry: days,
                    sha256: "cd".into(),
                }],
            }),
        }
    }

    #[test]
    fn a_valid_answer_is_healthy_and_a_bad_certificate_or_status_is_not() {
        let url = Url::parse("https://www.example.test/").unwrap();
        let good = http_verification(
            "t".into(),
            &url,
            &observation(200, Verdict::Valid, 30),
            None,
            None,
        );
        assert!(good.healthy, "{:#?}", good.findings);
        assert!(
            good.text(false).contains("issued by CN=test CA"),
            "{}",
            good.text(false)
        );
        let expired = Verdict::Invalid("certificate expired".into());
        let bad = http_verification("t".into(), &url, &observation(200, expired, -3), None, None);
        assert!(!bad.healthy, "an expired certificate is a problem");
        let wrong = http_verification(
            "t".into(),
            &url,
            &observation(301, Verdict::Valid, 30),
            Some(200),
            None,
        );
        assert!(!wrong.healthy, "301 where 200 was expected");
        assert!(
            wrong.findings[0]
                .sentence
                .contains("where 200 was expected"),
            "{:?}",
            wrong.findings
        );
    }

    #[test]
    fn a_certificate_about_to_expire_is_a_warning_only() {
        let finding =
            certificate_finding(observation(200, Verdict::Valid, 3).tls.as_ref().unwrap());
        assert!(
            finding.healthy && finding.sentence.contains("expires in 3 days: renew"),
            "{finding:?}"
        );
    }
}
