//! The IMAP and POP3 probes against small servers written here: the banner,
//! the capabilities, the STARTTLS/STLS upgrade with a certificate from a test
//! CA, and a server that offers no STARTTLS.

mod peers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cutover_probe::service::mailbox::{self, MailboxRequest, Protocol};
use cutover_probe::service::tls::{root_store, TlsRoots, Verdict};
use peers::{server_config, Task, TestCa};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// How a test server speaks: its banner, its capability reply, and whether
/// it upgrades to TLS.
struct Script {
    /// IMAP or POP3.
    protocol: Protocol,
    /// Whether STARTTLS/STLS is offered and performed.
    tls: bool,
}

/// A one-connection IMAP or POP3 server following `script`, held bound on
/// 127.0.0.2 (port chosen by the system and kept); its address.
async fn mailbox_server(script: Script, config: Arc<rustls::ServerConfig>) -> (SocketAddr, Task) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.2", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let task = Task(tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let mut plain = BufReader::new(tcp);
        let (banner, capabilities, upgrade): (&[u8], Vec<u8>, &[u8]) = match script.protocol {
            Protocol::Imap => (
                b"* OK [CAPABILITY IMAP4rev1] imap.example.test ready\r\n",
                format!(
                    "* CAPABILITY IMAP4rev1 {}LOGINDISABLED\r\na1 OK done\r\n",
                    if script.tls { "STARTTLS " } else { "" }
                )
                .into_bytes(),
                b"a2 OK Begin TLS negotiation now\r\n",
            ),
            Protocol::Pop3 => (
                b"+OK pop.example.test POP3 ready\r\n",
                format!(
                    "+OK capability list follows\r\nUSER\r\n{}UIDL\r\n.\r\n",
                    if script.tls { "STLS\r\n" } else { "" }
                )
                .into_bytes(),
                b"+OK begin TLS\r\n",
            ),
        };
        let _ = plain.get_mut().write_all(banner).await;
        let mut line = String::new();
        loop {
            line.clear();
            if plain.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let command = line.trim_end().to_ascii_uppercase();
            if command == "A1 CAPABILITY" || command == "CAPA" {
                let _ = plain.get_mut().write_all(&capabilities).await;
            } else if script.tls && (command == "A2 STARTTLS" || command == "STLS") {
                let _ = plain.get_mut().write_all(upgrade).await;
                break;
            } else {
                // LOGOUT / QUIT or anything else: say goodbye and close.
                let _ = plain.get_mut().write_all(b"* BYE\r\n").await;
                return;
            }
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let Ok(mut tls) = acceptor.accept(plain.into_inner()).await else {
            return;
        };
        let mut buf = [0u8; 512];
        let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await;
        let _ = tls.write_all(b"* BYE logging out\r\n").await;
    }));
    (addr, task)
}

/// Runs one probe against a fresh server following `script`.
async fn probe(script: Script, starttls: bool) -> mailbox::MailboxObservation {
    let ca = TestCa::new();
    let protocol = script.protocol;
    let name = match protocol {
        Protocol::Imap => "imap.example.test",
        Protocol::Pop3 => "pop.example.test",
    };
    let (address, _server) = mailbox_server(script, server_config(&ca.leaf(&[name], 45))).await;
    let roots = root_store(&TlsRoots::CaFile(ca.file.clone())).unwrap();
    let request = MailboxRequest {
        protocol,
        address,
        server_name: name.into(),
        starttls,
        timeout: Duration::from_secs(3),
    };
    mailbox::probe(&request, &roots, SystemTime::now())
        .await
        .unwrap_or_else(|e| panic!("the {protocol:?} probe failed: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_banner_capabilities_and_starttls_with_a_valid_certificate() {
    let seen = probe(
        Script {
            protocol: Protocol::Imap,
            tls: true,
        },
        true,
    )
    .await;
    assert!(seen.banner.starts_with("* OK"), "banner: {:?}", seen.banner);
    assert!(
        seen.capabilities.contains(&"STARTTLS".to_string()),
        "capabilities: {:?}",
        seen.capabilities
    );
    let tls = seen.tls.expect("STARTTLS was offered and tried");
    assert_eq!(tls.verdict, Verdict::Valid);
    assert_eq!(tls.leaf().unwrap().days_to_expiry, 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_banner_capabilities_and_stls_with_a_valid_certificate() {
    let seen = probe(
        Script {
            protocol: Protocol::Pop3,
            tls: true,
        },
        true,
    )
    .await;
    assert!(seen.banner.starts_with("+OK"), "banner: {:?}", seen.banner);
    assert_eq!(seen.capabilities, vec!["USER", "STLS", "UIDL"]);
    let tls = seen.tls.expect("STLS was offered and tried");
    assert_eq!(tls.verdict, Verdict::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_starttls_is_seen_as_plain_text_only() {
    let seen = probe(
        Script {
            protocol: Protocol::Imap,
            tls: false,
        },
        true,
    )
    .await;
    assert!(!seen.capabilities.contains(&"STARTTLS".to_string()));
    assert!(
        seen.tls.is_none(),
        "no STARTTLS offered, so no TLS observed"
    );
}
