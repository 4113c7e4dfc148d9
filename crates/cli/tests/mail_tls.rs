//! STARTTLS of the relay inside `cutover serve`: the certificate of
//! `[mail.tls]` is offered, and replacing its files is picked up without a
//! restart (new connections get the new certificate).

mod mail_support;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_support::{reply, start_on_free_ports, wait_bound, Guard, Ports, Socket, LOOPBACK};

/// Writes a self-signed certificate for `name` and its key as PEM files.
fn certificate(directory: &std::path::Path, name: &str) -> Vec<u8> {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
    // Written aside and renamed, as a certificate renewal would.
    let cert = directory.join("mail.crt.new");
    let key = directory.join("mail.key.new");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    std::fs::rename(&key, directory.join("mail.key")).unwrap();
    std::fs::rename(&cert, directory.join("mail.crt")).unwrap();
    certified.cert.der().to_vec()
}

/// Connects, says EHLO, STARTTLS, and returns the certificate presented and
/// the EHLO reply under TLS.
fn presented(port: u16) -> (Vec<u8>, String) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    assert!(reply(&mut reader).starts_with("220"));
    writer.write_all(b"EHLO client.test\r\n").unwrap();
    let ehlo = reply(&mut reader);
    assert!(
        ehlo.contains("STARTTLS"),
        "STARTTLS must be offered: {ehlo}"
    );
    writer.write_all(b"STARTTLS\r\n").unwrap();
    let ready = reply(&mut reader);
    assert!(ready.starts_with("220"), "STARTTLS: {ready}");
    let config = cutover_mail::courier::opportunistic_tls();
    let name = rustls::pki_types::ServerName::try_from("mx.relay.test").unwrap();
    let connection = rustls::ClientConnection::new(Arc::clone(&config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, writer);
    tls.write_all(b"EHLO client.test\r\n").unwrap();
    let mut buffer = [0u8; 1024];
    let read = tls.read(&mut buffer).unwrap();
    let secured = String::from_utf8_lossy(&buffer[..read]).into_owned();
    let certificate = tls
        .conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| der.to_vec())
        .expect("a certificate was presented");
    (certificate, secured)
}

/// The first certificate is offered; a renewed one is picked up by new
/// connections while the relay runs.
#[test]
fn starttls_certificate_is_served_and_reloaded() {
    let directory = tempfile::tempdir().unwrap();
    let first = certificate(directory.path(), "mx.relay.test");
    let config = directory.path().join("cutover.toml");
    let log = directory.path().join("serve.log");
    let (smtp, _serve) = start_on_free_ports("cutover serve", |ports: &mut Ports| {
        let smtp = ports.pick(&[LOOPBACK]);
        let dns = ports.on(LOOPBACK);
        std::fs::write(
            &config,
            format!(
                "store = {store:?}\n[dns]\nlisten = [\"{dns}\"]\nudp_workers = 1\n\
                 [mail]\nlisten = [\"127.0.0.1:{smtp}\"]\nhostname = \"mx.relay.test\"\n\
                 spool = {spool:?}\n[mail.tls]\ncert = {cert:?}\nkey = {key:?}\n\
                 [[mail.domain]]\nname = \"ourdom.test\"\ndestination = \"127.0.0.1:9\"\n\
                 recipients = [\"alice\"]\n",
                store = directory.path().join("cutover.db"),
                spool = directory.path().join("spool"),
                cert = directory.path().join("mail.crt"),
                key = directory.path().join("mail.key"),
            ),
        )
        .unwrap();
        let mut serve = Guard(
            Command::new(env!("CARGO_BIN_EXE_cutover"))
                .args(["--config", config.to_str().unwrap(), "serve"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("start cutover serve"),
        );
        let [udp, tcp] = Socket::dns(dns);
        let relay = Socket::Tcp(std::net::SocketAddr::from((LOOPBACK, smtp)));
        wait_bound("cutover serve", &mut serve.0, &[udp, tcp, relay], &log)?;
        Ok((smtp, serve))
    });
    let (seen, secured) = presented(smtp);
    assert!(
        seen == first,
        "the configured certificate must be presented"
    );
    assert!(
        secured.starts_with("250") && !secured.contains("STARTTLS"),
        "after TLS, EHLO must not offer STARTTLS again: {secured}"
    );
    // mtimes have a coarse grain on some file systems: make the change visible.
    std::thread::sleep(Duration::from_millis(1100));
    let second = certificate(directory.path(), "mx.relay.test");
    assert!(second != first, "test setup: two different certificates");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (seen, _) = presented(smtp);
        if seen == second {
            break;
        }
        assert!(
            seen == first && Instant::now() < deadline,
            "expected the first certificate until the reload, then the second"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
