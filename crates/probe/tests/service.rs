//! The service probes against local servers: two HTTPS servers on
//! 127.0.0.2 and 127.0.0.3 (the same port) with certificates from a test CA,
//! one expired; a plain HTTP server written here that records the requests
//! and answers well, badly, endlessly or never; an HTTPS server that closes
//! without close_notify; Postfix's smtp-sink; and a STARTTLS-capable SMTP
//! server written here that refuses an unknown recipient and records any DATA.

mod peers;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cutover_probe::service::http::{self, HttpRequest, Url};
use cutover_probe::service::smtp::{self, SmtpRequest};
use cutover_probe::service::tcp;
use cutover_probe::service::tls::{root_store, TlsRoots, Verdict};
use cutover_probe::service::ServiceError;
use peers::{hold_tcp, https_server, refusing_tcp, server_config, smtp_sink, Task, TestCa};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_pinned_to_two_addresses_reports_certificates_redirects_and_differences() {
    let ca = TestCa::new();
    let [new_listener, old_listener]: [std::net::TcpListener; 2] =
        hold_tcp(&[[127, 0, 0, 2], [127, 0, 0, 3]])
            .try_into()
            .expect("two listeners");
    let new = new_listener.local_addr().unwrap();
    let old = old_listener.local_addr().unwrap();
    let port = new.port();
    let _new_server = https_server(
        new_listener,
        &ca.leaf(&["www.example.test"], 30),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nhello from new"
            .to_vec(),
    )
    .await;
    let _old_server = https_server(
        old_listener,
        &ca.leaf(&["www.example.test"], -3),
        b"HTTP/1.1 301 Moved\r\nLocation: https://www.example.test/moved\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nold\r\n0\r\n\r\n".to_vec(),
    )
    .await;
    let roots = root_store(&TlsRoots::CaFile(ca.file.clone())).unwrap();
    let url = Url::parse(&format!("https://www.example.test:{port}/")).unwrap();
    let ask = |address: SocketAddr| HttpRequest {
        url: url.clone(),
        address: address.ip(),
        body_contains: Some("hello".into()),
        timeout: Duration::from_secs(3),
    };
    let now = SystemTime::now();
    let seen_new = http::fetch(&ask(new), &roots, now).await.unwrap();
    let seen_old = http::fetch(&ask(old), &roots, now).await.unwrap();

    assert_eq!(seen_new.status, 200);
    assert_eq!(seen_new.body_contains, Some(true));
    assert_eq!(seen_new.redirect, None);
    let tls = seen_new.tls.as_ref().expect("https has a handshake");
    assert_eq!(
        tls.verdict,
        Verdict::Valid,
        "the new server's certificate is valid"
    );
    let leaf = tls.leaf().unwrap();
    assert!(
        leaf.issuer.contains("cutover test CA"),
        "issuer was {:?}",
        leaf.issuer
    );
    assert_eq!(
        leaf.days_to_expiry, 30,
        "expected 30 days to expiry, saw {}",
        leaf.days_to_expiry
    );
    assert_eq!(leaf.dns_names, vec!["www.example.test"]);

    assert_eq!(seen_old.status, 301);
    assert_eq!(
        seen_old.redirect.as_deref(),
        Some("https://www.example.test/moved")
    );
    assert_eq!(seen_old.body_contains, Some(false));
    let tls = seen_old.tls.as_ref().unwrap();
    match &tls.verdict {
        Verdict::Invalid(reason) => assert!(
            reason.to_lowercase().contains("expired"),
            "reason: {reason}"
        ),
        Verdict::Valid => panic!("the expired certificate was judged valid"),
    }
    assert_eq!(tls.leaf().unwrap().days_to_expiry, -3);

    let differences = http::compare(&seen_old, &seen_new);
    let what: Vec<&str> = differences.iter().map(|d| d.what.as_str()).collect();
    for expected in [
        "status",
        "header content-type",
        "header location",
        "body",
        "certificate verdict",
    ] {
        assert!(
            what.contains(&expected),
            "expected a {expected} difference, saw {what:?}"
        );
    }
    assert!(
        !what.contains(&"certificate issuer"),
        "same CA on both: {what:?}"
    );

    // A wrong name: the new server asked for another host.
    let wrong = HttpRequest {
        url: Url::parse(&format!("https://shop.example.test:{port}/")).unwrap(),
        ..ask(new)
    };
    let seen = http::fetch(&wrong, &roots, now).await.unwrap();
    assert!(
        matches!(&seen.tls.as_ref().unwrap().verdict, Verdict::Invalid(r) if r.contains("not valid for name")),
        "expected a name mismatch, saw {:?}",
        seen.tls.unwrap().verdict
    );

    // TCP connect: open on the server's port, refused on a closed one.
    assert!(tcp::connect(new, Duration::from_secs(1))
        .await
        .result
        .is_ok());
    let (_held, closed) = refusing_tcp([127, 0, 0, 2]);
    assert!(tcp::connect(closed, Duration::from_secs(1))
        .await
        .result
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_sink_answers_banner_ehlo_and_accepts_a_rcpt() {
    let sink = smtp_sink([127, 0, 0, 1]).await;
    let address = sink.addr;
    let roots = root_store(&TlsRoots::WebPki).unwrap();
    let request = SmtpRequest {
        address,
        server_name: "localhost".into(),
        helo: "probe.example.test".into(),
        starttls: true,
        rcpt: Some("someone@example.test".into()),
        timeout: Duration::from_secs(3),
    };
    let seen = smtp::probe(&request, &roots, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(seen.banner.code, 220);
    assert!(
        seen.extensions.contains(&"PIPELINING".to_string()),
        "EHLO keywords: {:?}",
        seen.extensions
    );
    assert!(
        seen.tls.is_none(),
        "smtp-sink offers no STARTTLS, so none was tried"
    );
    let (mail, rcpt) = seen.rcpt.expect("a RCPT test was asked for");
    assert_eq!((mail.code, rcpt.code), (250, 250));
}

/// A small SMTP server with STARTTLS: knows one recipient, records DATA;
/// held bound on 127.0.0.2 (port chosen by the system and kept). Its address.
async fn starttls_server(
    config: Arc<rustls::ServerConfig>,
    saw_data: Arc<AtomicBool>,
) -> (SocketAddr, Task) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.2", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let task = Task(tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let mut plain = BufReader::new(tcp);
        let _ = plain
            .get_mut()
            .write_all(b"220 mx.example.test ESMTP test\r\n")
            .await;
        let mut line = String::new();
        loop {
            line.clear();
            if plain.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let reply: &[u8] = match line.trim_end().to_ascii_uppercase().as_str() {
                l if l.starts_with("EHLO") => {
                    b"250-mx.example.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
                }
                "STARTTLS" => b"220 2.0.0 go ahead\r\n",
                _ => b"530 5.7.0 STARTTLS first\r\n",
            };
            let _ = plain.get_mut().write_all(reply).await;
            if reply.starts_with(b"220") {
                break;
            }
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let Ok(tls) = acceptor.accept(plain.into_inner()).await else {
            return;
        };
        let mut tls = BufReader::new(tls);
        loop {
            line.clear();
            if tls.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let upper = line.trim_end().to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-mx.example.test\r\n250 SIZE 1000000\r\n"
            } else if upper.starts_with("MAIL FROM:") || upper == "RSET" {
                b"250 2.0.0 ok\r\n"
            } else if upper == "RCPT TO:<KNOWN@EXAMPLE.TEST>" {
                b"250 2.1.5 ok\r\n"
            } else if upper.starts_with("RCPT TO:") {
                b"550 5.1.1 no such user\r\n"
            } else if upper == "DATA" {
                saw_data.store(true, Ordering::SeqCst);
                b"554 no\r\n"
            } else if upper == "QUIT" {
                let _ = tls.get_mut().write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"500 what\r\n"
            };
            let _ = tls.get_mut().write_all(reply).await;
        }
    }));
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_upgraded_the_certificate_checked_and_an_unknown_rcpt_refused_without_data() {
    let ca = TestCa::new();
    let saw_data = Arc::new(AtomicBool::new(false));
    let (address, _server) = starttls_server(
        server_config(&ca.leaf(&["mx.example.test"], 90)),
        saw_data.clone(),
    )
    .await;
    let roots = root_store(&TlsRoots::CaFile(ca.file.clone())).unwrap();
    let request = SmtpRequest {
        address,
        server_name: "mx.example.test".into(),
        helo: "probe.example.test".into(),
        starttls: true,
        rcpt: Some("nobody@example.test".into()),
        timeout: Duration::from_secs(3),
    };
    let seen = smtp::probe(&request, &roots, SystemTime::now())
        .await
        .unwrap();
    assert!(seen.extensions.contains(&"STARTTLS".to_string()));
    let tls = seen.tls.expect("STARTTLS was offered and tried");
    assert_eq!(tls.verdict, Verdict::Valid);
    assert_eq!(tls.leaf().unwrap().days_to_expiry, 90);
    assert_eq!(
        seen.extensions_after_tls,
        vec!["SIZE"],
        "the EHLO after TLS is the TLS one"
    );
    let (mail, rcpt) = seen.rcpt.unwrap();
    assert_eq!(
        (mail.code, rcpt.code),
        (250, 550),
        "the unknown recipient is refused"
    );
    assert!(
        !saw_data.load(Ordering::SeqCst),
        "the probe must never send DATA"
    );
}

/// The request heads a plain HTTP test server received.
type Heads = Arc<std::sync::Mutex<Vec<String>>>;

/// A plain HTTP server written here, held bound on 127.0.0.2 (port chosen by
/// the system and kept): it records each request head and answers by path
/// with well-formed, malformed, endless or no responses.
async fn http_server() -> (SocketAddr, Heads, Task) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.2", 0))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let heads: Heads = Arc::default();
    let seen = heads.clone();
    let task = Task(tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                seen.lock().unwrap().push(head);
                let canned: &[u8] = match path.split('?').next().unwrap_or_default() {
                    "/chunked" => b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
                    "/length" => b"HTTP/1.1 301 Moved\r\nLocation: https://www.example.test/moved\r\nContent-Length: 2\r\n\r\nhiEXTRA",
                    "/close" => b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close",
                    "/short" => b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
                    "/ssh" => b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
                    "/endless-body" => {
                        let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
                        let zeros = vec![0u8; 65536];
                        while tcp.write_all(&zeros).await.is_ok() {}
                        return;
                    }
                    "/endless-head" => {
                        let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\n").await;
                        while tcp.write_all(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaa\r\n").await.is_ok() {}
                        return;
                    }
                    _ => {
                        // "/silent": answers nothing and holds the connection.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                };
                let _ = tcp.write_all(canned).await;
                let _ = tcp.shutdown().await;
            });
        }
    }));
    (address, heads, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_pinned_to_an_address_sends_the_url_host_and_reads_chunks_lengths_and_closes() {
    let (address, heads, _server) = http_server().await;
    let roots = root_store(&TlsRoots::WebPki).unwrap();
    let ask = |path: &str| HttpRequest {
        url: Url::parse(&format!("http://WWW.Example.test:{}{path}", address.port())).unwrap(),
        address: address.ip(),
        body_contains: Some("de".into()),
        timeout: Duration::from_secs(2),
    };
    let now = SystemTime::now();

    let (seen, body) = http::fetch_with_body(&ask("/chunked?x=1"), &roots, now)
        .await
        .unwrap();
    assert_eq!((seen.status, body.as_slice()), (200, &b"abcde"[..]));
    assert_eq!(seen.body_len, 5);
    assert_eq!(seen.body_contains, Some(true));
    assert_eq!(seen.header("content-type"), Some("text/plain"));
    assert_eq!(
        seen.address, address,
        "the connection went to the pinned address"
    );
    assert!(seen.tls.is_none());
    let head = heads.lock().unwrap()[0].to_lowercase();
    assert!(
        head.starts_with("get /chunked?x=1 http/1.1\r\n"),
        "request line: {head:?}"
    );
    assert!(
        head.contains(&format!(
            "\r\nhost: www.example.test:{}\r\n",
            address.port()
        )),
        "the Host header is the URL's, not the address: {head:?}"
    );
    assert!(head.contains("\r\nconnection: close\r\n"), "{head:?}");

    let (seen, body) = http::fetch_with_body(&ask("/length"), &roots, now)
        .await
        .unwrap();
    assert_eq!(seen.status, 301);
    assert_eq!(body, b"hi", "Content-Length ends the body");
    assert_eq!(
        seen.redirect.as_deref(),
        Some("https://www.example.test/moved")
    );

    let (seen, body) = http::fetch_with_body(&ask("/close"), &roots, now)
        .await
        .unwrap();
    assert_eq!(
        (seen.status, body.as_slice()),
        (200, &b"until the close"[..])
    );

    for (path, expected) in [
        ("/short", "a body shorter than its Content-Length"),
        ("/ssh", "a response that is not HTTP"),
    ] {
        match http::fetch(&ask(path), &roots, now).await {
            Err(ServiceError::Protocol { .. }) => {}
            other => panic!("{expected} must be a protocol error, saw {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_http_server_cannot_make_the_probe_read_forever() {
    let (address, _heads, _server) = http_server().await;
    let roots = root_store(&TlsRoots::WebPki).unwrap();
    let ask = |path: &str, timeout: Duration| HttpRequest {
        url: Url::parse(&format!("http://www.example.test:{}{path}", address.port())).unwrap(),
        address: address.ip(),
        body_contains: None,
        timeout,
    };
    let now = SystemTime::now();
    match http::fetch(&ask("/endless-body", Duration::from_secs(30)), &roots, now).await {
        Err(ServiceError::Protocol { reason, .. }) => assert!(
            reason.contains(&format!("larger than {} bytes", http::MAX_BODY)),
            "{reason}"
        ),
        other => panic!("an endless body must stop at the limit, saw {other:?}"),
    }
    match http::fetch(&ask("/endless-head", Duration::from_secs(30)), &roots, now).await {
        Err(ServiceError::Protocol { reason, .. }) => {
            assert!(reason.contains("too large"), "{reason}")
        }
        other => panic!("an endless head must stop at the limit, saw {other:?}"),
    }
    match http::fetch(&ask("/silent", Duration::from_millis(500)), &roots, now).await {
        Err(ServiceError::Timeout { stage, .. }) => assert_eq!(stage, "HTTP response"),
        other => panic!("a server that never answers must time out, saw {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_body_ended_by_a_close_without_close_notify_is_read_whole() {
    let ca = TestCa::new();
    let listener = tokio::net::TcpListener::bind(("127.0.0.2", 0))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let config = server_config(&ca.leaf(&["www.example.test"], 30));
    let _server = Task(tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let Ok(mut tls) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await else {
            return;
        };
        let mut line = String::new();
        let mut reader = BufReader::new(&mut tls);
        while reader.read_line(&mut line).await.unwrap_or(0) > 2 {
            line.clear();
        }
        let _ = tls
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno close_notify follows",
            )
            .await;
        let _ = tls.flush().await;
        // Close the TCP connection under TLS: no close_notify is sent.
        let (tcp, _) = tls.into_inner();
        drop(tcp);
    }));
    let roots = root_store(&TlsRoots::CaFile(ca.file.clone())).unwrap();
    let request = HttpRequest {
        url: Url::parse(&format!("https://www.example.test:{}/", address.port())).unwrap(),
        address: address.ip(),
        body_contains: Some("close_notify".into()),
        timeout: Duration::from_secs(3),
    };
    let (seen, body) = http::fetch_with_body(&request, &roots, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(body, b"no close_notify follows");
    assert_eq!(seen.body_contains, Some(true));
    assert_eq!(seen.tls.unwrap().verdict, Verdict::Valid);
}
