//! The migration's mail controls over two relays, in-process: this
//! serve's `[mail]` spool (at rest) and a second serve's relay, running
//! with `[http]`, reached through its control plane as a `[[relay]]`.
//!
//! ```text
//!  FleetMail ──▶ MigrationMail (mx1's spool, at rest)
//!            └──HTTP, Bearer──▶ Server::start (mx2: [mail] + [http] on :0) ──▶ mx2's spool
//!  every action twice: the same controls (idempotent); a token refused: 401 named, never shown
//! ```

use std::path::Path;

use cutover_server::config::Config;
use cutover_server::http::tokens::{TokenBook, TokenScope};
use cutover_server::mail_fleet::migration_mail;
use cutover_server::{Options, Server};

/// The `[mail]` section of a relay called `hostname` with its spool in `spool`.
fn mail(hostname: &str, spool: &Path) -> String {
    format!(
        "[mail]\nlisten = [\"127.0.0.1:0\"]\nhostname = \"{hostname}\"\nspool = {spool:?}\n\
         [[mail.domain]]\nname = \"example.test\"\ndestination = \"192.0.2.1:25\"\n\
         recipients = [\"@example.test\"]\n"
    )
}

#[test]
fn every_relay_is_told_each_action_twice_is_harmless_and_a_refusal_names_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    // mx2: a running serve with its relay and control plane.
    let store2 = dir.path().join("mx2.db");
    let spool2 = dir.path().join("spool2");
    let book = TokenBook::open(&store2).unwrap();
    let admin = book.create("mx1", TokenScope::Admin).unwrap();
    let reader = book.create("viewer", TokenScope::Read).unwrap();
    drop(book);
    let text = format!(
        "store = {store2:?}\n[dns]\nlisten = [\"127.0.0.1:0\"]\nudp_workers = 1\n\
         [http]\nlisten = \"127.0.0.1:0\"\n{}",
        mail("mx2.test", &spool2)
    );
    let config2 = Config::parse(&text, "mx2.toml").unwrap();
    let options = Options {
        scheduler: false,
        ..Options::default()
    };
    let mx2 = Server::start_with(&config2, None, &options).expect("mx2 starts");
    let api = format!("http://{}", mx2.http_addr().expect("mx2's [http]"));

    // mx1: its own spool (no relay running: the controls work at rest).
    let spool1 = dir.path().join("spool1");
    std::fs::create_dir_all(&spool1).unwrap();
    let text = format!(
        "{}[[relay]]\nname = \"mx2\"\nurl = \"{api}/\"\ntoken = \"{admin}\"\n",
        mail("mx1.test", &spool1)
    );
    let config1 = Config::parse(&text, "mx1.toml").unwrap();
    let fleet = migration_mail(config1.mail.as_ref(), &config1.relay).expect("relays");

    for _ in 0..2 {
        let said = fleet.hold("example.test").unwrap();
        for part in [
            "all 2 relay(s) acknowledged: mx1.test (local): example.test held: 0 queued message(s) held".to_string(),
            format!("mx2 ({api}): example.test held: 0 queued message(s) held"),
        ] {
            assert!(said.contains(&part), "expected {part:?} in {said}");
        }
        let said = fleet.retarget("example.test", "192.0.2.7:2525").unwrap();
        assert!(
            said.contains(&format!(
                "mx2 ({api}): example.test now goes to 192.0.2.7:2525: 0 message(s) due now"
            )),
            "{said}"
        );
        for spool in [&spool1, &spool2] {
            let controls = std::fs::read_to_string(spool.join("controls")).unwrap();
            assert_eq!(
                controls, "route example.test 192.0.2.7:2525\nhold example.test\n",
                "the same controls on {spool:?} however often asked"
            );
        }
    }
    for _ in 0..2 {
        let said = fleet.release("example.test").unwrap();
        assert!(
            said.contains(&format!(
                "mx2 ({api}): example.test released: 0 message(s) released"
            )),
            "{said}"
        );
        for spool in [&spool1, &spool2] {
            let controls = std::fs::read_to_string(spool.join("controls")).unwrap();
            assert_eq!(controls, "route example.test 192.0.2.7:2525\n", "{spool:?}");
        }
    }

    // A token mx2 does not know, and one without the admin scope: the
    // action fails naming the relay and mx2's answer; the local relay did
    // its part and says so; no token appears anywhere.
    for (token, status) in [
        ("not-a-token-of-mx2", "HTTP 401"),
        (reader.as_str(), "HTTP 403"),
    ] {
        let text = format!(
            "{}[[relay]]\nname = \"mx2\"\nurl = \"{api}\"\ntoken = \"{token}\"\n",
            mail("mx1.test", &spool1)
        );
        let config = Config::parse(&text, "mx1.toml").unwrap();
        let fleet = migration_mail(config.mail.as_ref(), &config.relay).expect("relays");
        let error = fleet.hold("example.test").unwrap_err();
        assert!(
            error.starts_with(&format!(
                "1 of 2 relay(s) did not acknowledge: mx2 ({api}) FAILED: {status}"
            )) && error.contains("acknowledged: mx1.test (local): example.test held"),
            "{error}"
        );
        assert!(!error.contains(token), "the token in the error: {error}");
    }
    mx2.shutdown();
}

/// A relay whose control plane is HTTPS with a private CA's certificate:
/// reached with `ca_file`; without it (the web's roots) the action fails
/// naming the relay and the certificate.
#[test]
fn an_https_relay_is_checked_against_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = cutover_peers::TestCa::new();
    let (cert, key) = ca.leaf_files(&["127.0.0.1"], dir.path());
    let store2 = dir.path().join("mx2.db");
    let spool2 = dir.path().join("spool2");
    let admin = TokenBook::open(&store2)
        .unwrap()
        .create("mx1", TokenScope::Admin)
        .unwrap();
    let text = format!(
        "store = {store2:?}\n[dns]\nlisten = [\"127.0.0.1:0\"]\nudp_workers = 1\n\
         [http]\nlisten = \"127.0.0.1:0\"\ntls_cert = {cert:?}\ntls_key = {key:?}\n{}",
        mail("mx2.test", &spool2)
    );
    let config2 = Config::parse(&text, "mx2.toml").unwrap();
    let options = Options {
        scheduler: false,
        ..Options::default()
    };
    let mx2 = Server::start_with(&config2, None, &options).expect("mx2 starts");
    let api = format!("https://{}", mx2.http_addr().expect("mx2's [http]"));
    let spool1 = dir.path().join("spool1");
    std::fs::create_dir_all(&spool1).unwrap();
    let fleet = |ca_file: &str| {
        let text = format!(
            "{}[[relay]]\nname = \"mx2\"\nurl = \"{api}\"\n{ca_file}token = \"{admin}\"\n",
            mail("mx1.test", &spool1)
        );
        let config = Config::parse(&text, "mx1.toml").unwrap();
        migration_mail(config.mail.as_ref(), &config.relay).expect("relays")
    };
    let trusting = fleet(&format!("ca_file = {:?}\n", ca.file));
    let said = trusting.hold("example.test").unwrap();
    assert!(
        said.contains(&format!(
            "mx2 ({api}): example.test held: 0 queued message(s) held"
        )),
        "{said}"
    );
    let error = fleet("").hold("example.test").unwrap_err();
    assert!(
        error.contains(&format!("mx2 ({api}) FAILED: unreachable"))
            && error.to_lowercase().contains("certificate"),
        "{error}"
    );
    mx2.shutdown();
}
