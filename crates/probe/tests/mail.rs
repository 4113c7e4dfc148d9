//! Mail readiness against a knotd that serves the mail domain (MX, an SPF
//! record with an include, an MTA-STS announcement), the included domain,
//! and a PTR zone; the MTA-STS policy is served over HTTPS on 127.0.0.2 with
//! a certificate from a test CA. knotd answers the lookups directly (it is
//! authoritative for every name asked), standing in for the resolver.

mod peers;

use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use cutover_probe::mail::{self, Dns, MailTarget, MtaSts, Severity, SpfResult, Topic};
use cutover_probe::service::tls::{root_store, TlsRoots};
use cutover_zone::Name;
use peers::{hold_tcp_on, https_server, quick_client, Knot, TestCa, LOOPBACK};

/// The mail domain.
const DOMAIN: &str = "$TTL 60\n@ SOA ns.example.test. h.example.test. 1 60 60 600 60\n@ NS ns\n\
ns A 127.0.0.1\n@ MX 10 mx\n@ MX 20 backup\nmx A 192.0.2.10\nbackup A 198.51.100.7\n\
@ TXT \"v=spf1 include:_spf.other.test -all\"\n_mta-sts TXT \"v=STSv1; id=20240101\"\n\
mta-sts A 127.0.0.2\n";

/// The domain the SPF record includes.
const OTHER: &str =
    "$TTL 60\n@ SOA ns.other.test. h.other.test. 1 60 60 600 60\n@ NS ns.example.test.\n\
_spf TXT \"v=spf1 ip4:192.0.2.0/28 a:relay.other.test ~all\"\nrelay A 203.0.113.5\n";

/// The reverse zone of 192.0.2.0/24: .10 is forward-confirmed, .11 is not.
const REVERSE: &str =
    "$TTL 60\n@ SOA ns.example.test. h.example.test. 1 60 60 600 60\n@ NS ns.example.test.\n\
10 PTR mx.example.test.\n11 PTR mx.example.test.\n";

/// The MTA-STS policy: lists mx but not backup.
const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_finds_spf_through_include_a_confirmed_ptr_and_an_mx_missing_from_mta_sts() {
    let knot = Knot::start(
        LOOPBACK,
        &[
            ("example.test.", DOMAIN),
            ("other.test.", OTHER),
            ("2.0.192.in-addr.arpa.", REVERSE),
        ],
    )
    .await;
    let ca = TestCa::new();
    let https = hold_tcp_on([127, 0, 0, 2]);
    let https_port = https.local_addr().unwrap().port();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{POLICY}",
        POLICY.len()
    );
    let _policy = https_server(
        https,
        &ca.leaf(&["mta-sts.example.test"], 60),
        response.into_bytes(),
    )
    .await;
    let roots = root_store(&TlsRoots::CaFile(ca.file.clone())).unwrap();
    let dns = Dns {
        client: quick_client(),
        resolver: knot.addr,
    };
    let target = |ip: &str| MailTarget {
        domain: Name::from_str("example.test.").unwrap(),
        new_ip: IpAddr::from_str(ip).unwrap(),
        mta_sts_port: https_port,
        timeout: Duration::from_secs(3),
    };

    let ready = mail::readiness(&dns, &target("192.0.2.10"), &roots, SystemTime::now()).await;
    assert_eq!(ready.mx.len(), 2, "two MX hosts: {:?}", ready.mx);
    assert!(
        matches!(&ready.spf.0, SpfResult::Pass(how) if how == "include:_spf.other.test in example.test."),
        "expected a pass through the include, saw {}",
        ready.spf.0
    );
    assert_eq!(ready.spf.1, 1, "one lookup: the include");
    assert_eq!(
        ready.ptr,
        vec![(Name::from_str("mx.example.test.").unwrap(), true)]
    );
    let MtaSts::Policy(policy) = &ready.mta_sts else {
        panic!("expected the policy fetched, saw {:?}", ready.mta_sts);
    };
    assert_eq!(policy.mx, vec!["mx.example.test"]);
    let finding = |topic: Topic| {
        ready
            .findings
            .iter()
            .find(|f| f.topic == topic)
            .unwrap_or_else(|| panic!("no {topic:?} finding in {:#?}", ready.findings))
    };
    assert_eq!(finding(Topic::Mx).severity, Severity::Ok);
    assert_eq!(finding(Topic::Spf).severity, Severity::Ok);
    assert_eq!(finding(Topic::Ptr).severity, Severity::Ok);
    let sts = finding(Topic::MtaSts);
    assert_eq!(sts.severity, Severity::Problem, "{}", sts.sentence);
    assert!(
        sts.sentence.contains("does not list backup.example.test")
            && sts.sentence.contains("add \"mx: backup.example.test\""),
        "the sentence names the missing host and the fix: {}",
        sts.sentence
    );

    // An IP the SPF record does not cover and whose PTR does not point back.
    let not_ready = mail::readiness(&dns, &target("192.0.2.11"), &roots, SystemTime::now()).await;
    let spf = outside_spf_finding(&not_ready);
    assert_eq!(spf, Severity::Ok);
    assert!(
        matches!(&not_ready.spf.0, SpfResult::Pass(_)),
        "192.0.2.11 is inside 192.0.2.0/28: {}",
        not_ready.spf.0
    );
    assert_eq!(
        not_ready.ptr,
        vec![(Name::from_str("mx.example.test.").unwrap(), false)]
    );
    let ptr = not_ready
        .findings
        .iter()
        .find(|f| f.topic == Topic::Ptr)
        .unwrap();
    assert_eq!(ptr.severity, Severity::Problem);
    assert!(
        ptr.sentence.contains("does not resolve back"),
        "{}",
        ptr.sentence
    );
    let outside = mail::readiness(&dns, &target("192.0.2.99"), &roots, SystemTime::now()).await;
    assert!(
        matches!(&outside.spf.0, SpfResult::Fail(how) if how == "all in example.test."),
        "~all of the include is no match (RFC 7208 §5.2), so -all of the domain decides: saw {}",
        outside.spf.0
    );
    let spf = outside
        .findings
        .iter()
        .find(|f| f.topic == Topic::Spf)
        .unwrap();
    assert_eq!(spf.severity, Severity::Problem);
    assert!(
        spf.sentence.contains("add \"ip4:192.0.2.99\""),
        "{}",
        spf.sentence
    );
}

/// The severity of the SPF finding.
fn outside_spf_finding(ready: &mail::MailReadiness) -> Severity {
    ready
        .findings
        .iter()
        .find(|f| f.topic == Topic::Spf)
        .unwrap()
        .severity
}

/// Domains whose SPF records use what the hand-written parser refused or
/// skipped: macros (`macro`), the `ptr` mechanism (`ptr`), `exp=` (`exp`) and
/// the `%{p}` macro (`pmacro`). `exp` also announces MTA-STS with a TXT
/// record that has no id, which senders ignore.
const SPF: &str =
    "$TTL 60\n@ SOA ns.example.test. h.example.test. 1 60 60 600 60\n@ NS ns.example.test.\n\
macro TXT \"v=spf1 exists:%{ir}.%{l}._allow.%{d} -all\"\n\
10.2.0.192.postmaster._allow.macro A 127.0.0.2\n\
ptr TXT \"v=spf1 ptr -all\"\n\
mail.ptr A 192.0.2.20\n\
exp TXT \"v=spf1 ip4:192.0.2.0/28 -all exp=why.%{d}\"\n\
why.exp TXT \"%{i} is not a mail server of %{d}\"\n\
_mta-sts.exp TXT \"v=STSv1;\"\n\
pmacro TXT \"v=spf1 exists:%{p}._ok.%{d} -all\"\n\
mail.ptr.spf.test._ok.pmacro A 127.0.0.2\n";

/// The reverse zone for the `ptr` cases: .20 names a host under ptr.spf.test
/// that resolves back to it; .21 names the same host, which does not.
const SPF_REVERSE: &str =
    "$TTL 60\n@ SOA ns.example.test. h.example.test. 1 60 60 600 60\n@ NS ns.example.test.\n\
20 PTR mail.ptr.spf.test.\n21 PTR mail.ptr.spf.test.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_macros_ptr_and_exp_are_evaluated_against_knotd() {
    let knot = Knot::start(
        LOOPBACK,
        &[("spf.test.", SPF), ("2.0.192.in-addr.arpa.", SPF_REVERSE)],
    )
    .await;
    let dns = Dns {
        client: quick_client(),
        resolver: knot.addr,
    };
    let check = |ip: &str, domain: &str| {
        let ip = IpAddr::from_str(ip).unwrap();
        let domain = Name::from_str(domain).unwrap();
        let dns = dns.clone();
        async move { mail::check_host(&dns, ip, &domain).await }
    };

    // %{ir}: the address reversed, %{l}: "postmaster", %{d}: the domain.
    let seen = check("192.0.2.10", "macro.spf.test.").await;
    assert_eq!(
        seen.result,
        SpfResult::Pass(
            "exists:10.2.0.192.postmaster._allow.macro.spf.test in macro.spf.test.".into()
        ),
        "the macros expand to the name knotd has"
    );
    assert_eq!(seen.lookups, 1);
    let seen = check("192.0.2.11", "macro.spf.test.").await;
    assert_eq!(
        seen.result,
        SpfResult::Fail("all in macro.spf.test.".into())
    );

    // ptr: the PTR name is under the domain and resolves back to the address.
    let seen = check("192.0.2.20", "ptr.spf.test.").await;
    assert_eq!(seen.result, SpfResult::Pass("ptr in ptr.spf.test.".into()));
    assert_eq!(seen.lookups, 1);
    let seen = check("192.0.2.21", "ptr.spf.test.").await;
    assert_eq!(
        seen.result,
        SpfResult::Fail("all in ptr.spf.test.".into()),
        "a PTR name that does not resolve back is not validated"
    );

    // %{p}: the validated name of the address.
    let seen = check("192.0.2.20", "pmacro.spf.test.").await;
    assert_eq!(
        seen.result,
        SpfResult::Pass("exists:mail.ptr.spf.test._ok.pmacro.spf.test in pmacro.spf.test.".into())
    );

    // exp=: a fail carries the domain's explanation, its macros expanded.
    let seen = check("192.0.2.99", "exp.spf.test.").await;
    assert_eq!(seen.result, SpfResult::Fail("all in exp.spf.test.".into()));
    assert_eq!(
        seen.explanation.as_deref(),
        Some("192.0.2.99 is not a mail server of exp.spf.test")
    );
    let seen = check("192.0.2.5", "exp.spf.test.").await;
    assert_eq!(
        (seen.result, seen.explanation),
        (
            SpfResult::Pass("ip4:192.0.2.0/28 in exp.spf.test.".into()),
            None
        ),
        "only a fail is explained"
    );

    // The readiness finding passes the explanation on; the MTA-STS record
    // without an id is reported as unusable, not taken for an announcement.
    let roots = root_store(&TlsRoots::WebPki).unwrap();
    let target = MailTarget {
        domain: Name::from_str("exp.spf.test.").unwrap(),
        new_ip: IpAddr::from_str("192.0.2.99").unwrap(),
        mta_sts_port: 443,
        timeout: Duration::from_secs(3),
    };
    let ready = mail::readiness(&dns, &target, &roots, SystemTime::now()).await;
    assert_eq!(
        ready.spf_explanation.as_deref(),
        Some("192.0.2.99 is not a mail server of exp.spf.test")
    );
    let spf = ready
        .findings
        .iter()
        .find(|f| f.topic == Topic::Spf)
        .unwrap();
    assert_eq!(spf.severity, Severity::Problem);
    assert!(
        spf.sentence
            .contains("explanation \"192.0.2.99 is not a mail server of exp.spf.test\""),
        "{}",
        spf.sentence
    );
    assert!(
        matches!(&ready.mta_sts, MtaSts::Unavailable(why) if why.contains("does not parse")),
        "{:?}",
        ready.mta_sts
    );
}
