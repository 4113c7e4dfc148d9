//! `cutover verify` as a black box against local servers: two HTTPS servers
//! on 127.0.0.2 and 127.0.0.3 (the same port) with certificates from a test
//! CA, the one on .3 expired; Postfix's smtp-sink; a closed TCP port; and
//! for mail readiness a knotd serving the mail domain, the domain its SPF
//! includes and a PTR zone (it stands in for the resolver), with the
//! MTA-STS policy served over HTTPS on 127.0.0.2.

mod peers;

use peers::{
    args, cutover, hold_tcp, hold_tcp_on, https_server, refusing_tcp, smtp_sink, Knot, TestCa,
};

/// The mail domain: two MX hosts, SPF through an include, MTA-STS announced.
const DOMAIN: &str = "$TTL 60\n@ SOA ns.example.test. h.example.test. 1 60 60 600 60\n@ NS ns\n\
ns A 127.0.0.1\n@ MX 10 mx\n@ MX 20 backup\nmx A 192.0.2.10\nbackup A 198.51.100.7\n\
@ TXT \"v=spf1 include:_spf.other.test -all\"\n_mta-sts TXT \"v=STSv1; id=20240101\"\n\
mta-sts A 127.0.0.2\n";

/// The domain the SPF record includes.
const OTHER: &str =
    "$TTL 60\n@ SOA ns.other.test. h.other.test. 1 60 60 600 60\n@ NS ns.example.test.\n\
_spf TXT \"v=spf1 ip4:192.0.2.0/28 ~all\"\n";

/// The reverse zone of 192.0.2.0/24: .10 is mx, which resolves back.
const REVERSE: &str =
    "$TTL 60\n@ SOA ns.example.test. h.example.test. 1 60 60 600 60\n@ NS ns.example.test.\n\
10 PTR mx.example.test.\n";

/// The MTA-STS policy: lists both MX hosts.
const POLICY: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmx: backup.example.test\r\nmax_age: 86400\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_valid_certificate_passes_and_an_expired_one_fails() {
    let ca = TestCa::new();
    let mut listeners = hold_tcp(&[[127, 0, 0, 2], [127, 0, 0, 3]]);
    let port = listeners[0].local_addr().unwrap().port();
    let (old, new) = (listeners.pop().unwrap(), listeners.pop().unwrap());
    let response =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nhello from new"
            .to_vec();
    let _new = https_server(new, &ca.leaf(&["www.example.test"], 30), response.clone()).await;
    let _old = https_server(old, &ca.leaf(&["www.example.test"], -3), response).await;
    let url = format!("https://www.example.test:{port}/");
    let ca_file = ca.file.display().to_string();
    let verify = |address: &str, extra: &[&str]| {
        let mut words = args(&[
            "verify",
            "http",
            &url,
            "--address",
            address,
            "--ca-file",
            &ca_file,
        ]);
        words.extend(args(extra));
        words
    };

    let run = cutover(&verify(
        "127.0.0.2",
        &[
            "--expect-status",
            "200",
            "--body-contains",
            "hello",
            "--old-address",
            "127.0.0.3",
        ],
    ))
    .await;
    eprintln!("{}", run.stdout);
    assert_eq!(
        run.code,
        Some(0),
        "a valid certificate and status 200 must exit 0; stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout.contains("issued by CN=cutover test CA"),
        "the issuer is printed:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("certificate verdict"),
        "the expired old certificate shows as a difference from the old address:\n{}",
        run.stdout
    );

    let run = cutover(&verify("127.0.0.3", &["--json"])).await;
    assert_eq!(
        run.code,
        Some(1),
        "an expired certificate must exit 1; stdout:\n{}",
        run.stdout
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("--json must print JSON ({e}):\n{}", run.stdout));
    assert_eq!(report["healthy"], false);
    assert_eq!(report["observation"]["status"], 200);
    assert_eq!(report["observation"]["tls"]["valid"], false);
    let reason = report["observation"]["tls"]["invalid_reason"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        reason.contains("expired"),
        "expected an expiry reason, saw {reason:?}"
    );
    assert_eq!(
        report["observation"]["tls"]["chain"][0]["days_to_expiry"],
        -3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_sink_passes_with_a_recipient_and_a_closed_port_fails() {
    let sink = smtp_sink([127, 0, 0, 1]).await;
    let address = sink.addr;
    let run = cutover(&args(&[
        "verify",
        "smtp",
        &address.to_string(),
        "--rcpt",
        "someone@example.test",
    ]))
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "smtp-sink accepts the recipient; stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stdout
            .contains("RCPT TO:<someone@example.test> would be accepted (250"),
        "the RCPT finding:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("banner       220"),
        "the banner is printed:\n{}",
        run.stdout
    );

    // smtp-sink offers no STARTTLS: asking for it is a problem.
    let run = cutover(&args(&[
        "verify",
        "smtp",
        &address.to_string(),
        "--starttls",
    ]))
    .await;
    assert_eq!(run.code, Some(1), "no STARTTLS offered:\n{}", run.stdout);
    assert!(
        run.stdout.contains("STARTTLS is not offered"),
        "{}",
        run.stdout
    );

    let open = cutover(&args(&["verify", "tcp", &address.to_string()])).await;
    assert_eq!(
        open.code,
        Some(0),
        "smtp-sink's port is open:\n{}",
        open.stdout
    );
    // Bound, never listening: refuses connections for as long as it is held.
    let (_held, closed) = refusing_tcp([127, 0, 0, 1]);
    let run = cutover(&args(&[
        "verify",
        "tcp",
        &closed.to_string(),
        "--timeout",
        "1s",
    ]))
    .await;
    assert_eq!(
        run.code,
        Some(1),
        "a closed port must exit 1; stdout:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("PROBLEM") && run.stdout.contains(&closed.to_string()),
        "the problem names the address:\n{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_readiness_passes_for_a_covered_ip_and_names_the_spf_fix_otherwise() {
    let knot = Knot::start(
        [127, 0, 0, 1],
        &[
            ("example.test.", DOMAIN),
            ("other.test.", OTHER),
            ("2.0.192.in-addr.arpa.", REVERSE),
        ],
    )
    .await;
    let ca = TestCa::new();
    let policy_listener = hold_tcp_on([127, 0, 0, 2]);
    let https_port = policy_listener.local_addr().unwrap().port();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{POLICY}",
        POLICY.len()
    );
    let _policy = https_server(
        policy_listener,
        &ca.leaf(&["mta-sts.example.test"], 60),
        response.into_bytes(),
    )
    .await;
    let ca_file = ca.file.display().to_string();
    let resolver = knot.addr.to_string();
    let https_port = https_port.to_string();
    let mail = |ip: &str| {
        args(&[
            "verify",
            "mail",
            "example.test",
            "--new-ip",
            ip,
            "--resolver",
            &resolver,
            "--mta-sts-port",
            &https_port,
            "--ca-file",
            &ca_file,
            "--timeout",
            "2s",
        ])
    };

    let run = cutover(&mail("192.0.2.10")).await;
    assert_eq!(
        run.code,
        Some(0),
        "192.0.2.10 is in SPF, its PTR resolves back, MTA-STS lists both MX; stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    for expected in [
        "MX           10 mx.example.test.",
        "PTR          mx.example.test. (resolves back)",
        "MTA-STS      mode enforce",
    ] {
        assert!(
            run.stdout.contains(expected),
            "expected {expected:?} in:\n{}",
            run.stdout
        );
    }

    let run = cutover(&mail("192.0.2.99")).await;
    assert_eq!(
        run.code,
        Some(1),
        "192.0.2.99 is outside SPF:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("PROBLEM") && l.contains("add \"ip4:192.0.2.99\"")),
        "the SPF problem says what to add:\n{}",
        run.stdout
    );
}
