//! The relay binary as a black box, with swaks and raw sockets: the
//! open-relay list, backscatter, smuggling, STARTTLS injection, delivery.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{refusing_tcp, start_relay, tool, Client, Process, Sink};

/// A relay for ourdom.test (alice, bob) routed to `destination`, with TLS.
fn relay(directory: &std::path::Path, destination: u16) -> (Process, u16) {
    let certified = rcgen::generate_simple_self_signed(vec!["mx.relay.test".to_string()]).unwrap();
    let certificate = directory.join("cert.pem");
    let key = directory.join("key.pem");
    std::fs::write(&certificate, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let arguments: Vec<String> = [
        "--spool",
        directory.join("spool").to_str().unwrap(),
        "--hostname",
        "mx.relay.test",
        "--domain",
        "ourdom.test=alice,bob",
        "--route",
        &format!("ourdom.test=127.0.0.1:{destination}"),
        "--retry-ms",
        "200",
        "--tls-cert",
        certificate.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]
    .iter()
    .map(|word| word.to_string())
    .collect();
    start_relay(&directory.join("spool"), &arguments)
}

/// Runs swaks against `port` with `arguments`; returns its transcript.
fn swaks(port: u16, arguments: &[&str]) -> String {
    let output = Command::new(tool("swaks"))
        .args([
            "--server",
            &format!("127.0.0.1:{port}"),
            "--helo",
            "client.test",
        ])
        .args(arguments)
        .output()
        .expect("run swaks");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// Every open-relay trick (%-hack, bang path, source route, quoted @) gets 5xx at RCPT (swaks
/// --quit-after RCPT), and so does an unknown user while the primary is down.
#[test]
fn open_relay_list_and_backscatter_get_5xx() {
    let directory = tempfile::tempdir().unwrap();
    let (_down, down) = refusing_tcp([127, 0, 0, 1]);
    let (_relay, port) = relay(directory.path(), down.port());
    for to in [
        "u@ext.test",
        "u%ext.test@ourdom.test",
        "@ourdom.test:u@ext.test",
        "ext.test!u@ourdom.test",
        "\"u@ext.test\"@ourdom.test",
        "u@ext.test@ourdom.test",
        "u@[127.0.0.1]",
        "mallory@ourdom.test",
    ] {
        let transcript = swaks(
            port,
            &["--from", "s@ext.test", "--to", to, "--quit-after", "RCPT"],
        );
        let rcpt_reply = transcript
            .lines()
            .skip_while(|line| !line.contains("RCPT TO:"))
            .nth(1)
            .unwrap_or("");
        assert!(
            rcpt_reply.starts_with("<** 5"),
            "RCPT TO:<{to}>: expected a 5xx reply, saw {rcpt_reply:?}\n{transcript}"
        );
    }
    let transcript = swaks(
        port,
        &[
            "--from",
            "s@ext.test",
            "--to",
            "alice@ourdom.test",
            "--quit-after",
            "RCPT",
        ],
    );
    assert!(
        transcript.contains("<-  250 2.1.5"),
        "a known recipient must be accepted:\n{transcript}"
    );
}

/// swaks --no-data-fixup with a bare LF before the dot: 554, and nothing
/// (neither the message nor the smuggled one) reaches the destination,
/// while a clean message sent afterwards does.
#[test]
fn smuggling_refused_and_clean_mail_delivered() {
    let directory = tempfile::tempdir().unwrap();
    let sink = Sink::start(directory.path(), &[]);
    let (_relay, port) = relay(directory.path(), sink.port);
    for fake_end in ["\n.\r\n", "\r.\r\n", "\n.\n"] {
        let data = directory.path().join("smuggle.eml");
        std::fs::write(
            &data,
            format!(
                "Subject: outer\r\n\r\nhello{fake_end}MAIL FROM:<evil@ext.test>\r\n\
                 RCPT TO:<bob@ourdom.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"
            ),
        )
        .unwrap();
        let transcript = swaks(
            port,
            &[
                "--from",
                "s@ext.test",
                "--to",
                "alice@ourdom.test",
                "--no-data-fixup",
                "--data",
                data.to_str().unwrap(),
            ],
        );
        assert!(
            transcript.contains("<** 554 5.5.2"),
            "{fake_end:?}: expected 554 5.5.2 for the smuggling attempt:\n{transcript}"
        );
    }
    let transcript = swaks(
        port,
        &[
            "--from",
            "s@ext.test",
            "--to",
            "bob@ourdom.test",
            "--header",
            "Subject: clean",
        ],
    );
    assert!(
        transcript.contains("<-  250 2.0.0 Ok: queued as"),
        "{transcript}"
    );
    let messages = sink.wait_for(Duration::from_secs(10), "the clean message", |messages| {
        messages
            .iter()
            .any(|message| message.contains("Subject: clean"))
    });
    assert_eq!(
        messages.len(),
        1,
        "only the clean message may arrive:\n{}",
        messages.join("\n----\n")
    );
    assert!(!messages[0].contains("smuggled") && !messages[0].contains("outer"));
    assert!(
        messages[0].contains("by mx.relay.test (cutover) with ESMTP;"),
        "our Received header is missing:\n{}",
        messages[0]
    );
}

/// STARTTLS injection over a raw socket: a MAIL pipelined after STARTTLS is
/// discarded, so RCPT inside TLS (after a new EHLO) gets 503.
#[test]
fn starttls_injection_is_discarded() {
    let directory = tempfile::tempdir().unwrap();
    let (_down, down) = refusing_tcp([127, 0, 0, 1]);
    let (_relay, port) = relay(directory.path(), down.port());
    let (mut client, greeting) = Client::connect(port).unwrap();
    assert!(greeting.starts_with("220 mx.relay.test"), "{greeting}");
    let ehlo = client.command("EHLO client.test").unwrap();
    assert!(
        ehlo.contains("250 STARTTLS"),
        "STARTTLS not offered:\n{ehlo}"
    );
    client
        .send(b"STARTTLS\r\nMAIL FROM:<evil@ext.test>\r\n")
        .unwrap();
    let reply = client.reply().unwrap();
    assert!(reply.starts_with("220 2.0.0"), "{reply}");
    let stream = client.into_stream();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let transcript = runtime.block_on(async move {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        stream.set_nonblocking(true).unwrap();
        let stream = tokio::net::TcpStream::from_std(stream).unwrap();
        let connector =
            tokio_rustls::TlsConnector::from(cutover_mail::courier::opportunistic_tls());
        let name = rustls::pki_types::ServerName::try_from("mx.relay.test").unwrap();
        let tls = connector
            .connect(name, stream)
            .await
            .expect("TLS handshake");
        let mut tls = BufReader::new(tls);
        let mut transcript = String::new();
        for command in [
            "RCPT TO:<alice@ourdom.test>\r\n",
            "EHLO client.test\r\n",
            "QUIT\r\n",
        ] {
            tls.get_mut().write_all(command.as_bytes()).await.unwrap();
            loop {
                let mut line = String::new();
                if tls.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                transcript.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    break;
                }
            }
        }
        transcript
    });
    let first = transcript.lines().next().unwrap_or("");
    assert!(
        first.starts_with("503"),
        "the injected MAIL survived the handshake:\n{transcript}"
    );
    assert!(
        !transcript.contains("STARTTLS"),
        "STARTTLS offered inside TLS:\n{transcript}"
    );
}
