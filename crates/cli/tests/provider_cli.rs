//! `cutover provider list|test` and a Route 53 migration planned through
//! the binary, against moto's Route 53 on loopback; the credentials never
//! appear in any output nor in the store.

use std::path::Path;
use std::process::{Command, Output};

use cutover_peers::moto::Moto;
use cutover_peers::{refusing_tcp, LOOPBACK};

/// The access key id, given by environment variable.
const KEY_ID: &str = "AKID-SECRET-77aa0c3e";
/// The secret access key, given by file.
const SECRET: &str = "route53-SECRET-5b1f0c9d";
/// A secret access key written inline.
const INLINE: &str = "route53-INLINE-SECRET-e41d";
/// The variable holding the access key id.
const KEY_ID_VAR: &str = "CUTOVER_TEST_ROUTE53_KEY_ID";

/// moto with example.test.: SOA, NS, www, mail and the apex MX.
fn moto_with_zone() -> (Moto, String) {
    let mut moto = Moto::start();
    let id = moto.create_zone("example.test.");
    for (name, rtype, value) in [
        (
            "example.test.",
            "SOA",
            "ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300",
        ),
        ("example.test.", "NS", "ns1.example.test."),
        ("example.test.", "MX", "10 mail.example.test."),
        ("ns1.example.test.", "A", "192.0.2.53"),
        ("www.example.test.", "A", "192.0.2.10"),
        ("mail.example.test.", "A", "192.0.2.25"),
    ] {
        moto.upsert(&id, name, rtype, 3600, &[value]);
    }
    (moto, id)
}

/// A migration file moving www to 198.51.100.20 through Route 53 at
/// `endpoint`, with `credentials` in its provider table.
fn file(endpoint: &str, credentials: &str) -> String {
    format!(
        "version = 1\nzone = \"example.test.\"\n\
         provider = {{ kind = \"cloud\", service = \"route53\", {credentials}, url = \"{endpoint}\" }}\n\
         [[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n"
    )
}

/// The credentials by environment variable and by file.
fn by_env_and_file() -> String {
    format!("access_key_id_env = \"{KEY_ID_VAR}\", secret_access_key_file = \"aws.secret\"")
}

/// Runs the binary in `dir` with the access key id in the environment.
fn cutover(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(dir)
        .env(KEY_ID_VAR, KEY_ID)
        .env_remove("CUTOVER_SERVER")
        .args(args)
        .output()
        .expect("cutover runs")
}

/// Stdout and stderr, for messages and greps.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts `out` holds no credential.
fn no_secret(what: &str, out: &str) {
    for secret in [KEY_ID, SECRET, INLINE] {
        assert!(!out.contains(secret), "{what} shows a credential: {out}");
    }
}

#[test]
fn provider_list_names_every_kind_and_the_keys_of_each_cloud_host() {
    let dir = tempfile::tempdir().unwrap();
    let out = cutover(dir.path(), &["provider", "list"]);
    let shown = text(&out);
    assert!(out.status.success(), "provider list: {shown}");
    for word in [
        "embedded",
        "rfc2136",
        "powerdns",
        "cloud",
        "route53",
        "access_key_id (credential)",
        "cloudflare",
        "token (credential)",
        "nameservers",
        "google",
        "service_account_json (credential)",
        "pdns",
    ] {
        assert!(shown.contains(word), "provider list names {word}: {shown}");
    }
    let out = cutover(dir.path(), &["provider", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let route53 = json["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "route53")
        .expect("route53 is listed");
    assert_eq!(route53["reads"], "api", "Route 53 is read through its API");
    let keys: Vec<&str> = route53["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"secret_access_key") && keys.contains(&"zone_id"),
        "the keys of route53: {keys:?}"
    );
    assert_eq!(
        json["kinds"].as_array().map(Vec::len),
        Some(4),
        "four kinds: {json}"
    );
}

#[test]
fn provider_test_reads_the_zone_through_route53_and_a_migration_is_planned() {
    let (moto, _) = moto_with_zone();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aws.secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        file(&moto.endpoint, &by_env_and_file()),
    )
    .unwrap();
    let mut shown = String::new();

    let out = cutover(dir.path(), &["provider", "test", "m.toml"]);
    let said = text(&out);
    assert!(out.status.success(), "provider test: {said}");
    assert!(
        said.contains("read 6 records of example.test. (the whole zone); nothing was changed"),
        "the count and that nothing changed: {said}"
    );
    let www = said
        .lines()
        .find(|l| l.starts_with("www.example.test."))
        .unwrap_or_else(|| panic!("www is listed: {said}"));
    let columns: Vec<&str> = www.split_whitespace().collect();
    assert_eq!(
        columns,
        ["www.example.test.", "A", "3600", "192.0.2.10"],
        "name, type, TTL and value of www: {said}"
    );
    shown.push_str(&said);

    let out = cutover(dir.path(), &["provider", "test", "m.toml", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON ({e}): {}", text(&out)));
    assert_eq!(json["listed"], true, "{json}");
    assert!(
        json["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "mail.example.test."
                && r["type"] == "A"
                && r["ttl"] == 3600
                && r["value"] == "192.0.2.25"),
        "mail A in the JSON: {json}"
    );
    shown.push_str(&text(&out));

    // The plan reads the zone through Route 53 (moto serves no DNS, so the
    // servers' hazards are passed over with --force).
    for args in [
        &["--store", "s.db", "migrate", "plan", "--force", "m.toml"][..],
        &[
            "--store", "s.db", "migrate", "plan", "--force", "--json", "m.toml",
        ][..],
        &["--store", "s.db", "migrate", "start", "--force", "m.toml"][..],
        &["--store", "s.db", "migrate", "list"][..],
        &["--store", "s.db", "migrate", "show", "1"][..],
        &["--store", "s.db", "migrate", "show", "--json", "1"][..],
    ] {
        let out = cutover(dir.path(), args);
        let said = text(&out);
        assert!(out.status.success(), "{args:?}: {said}");
        shown.push_str(&said);
    }
    assert!(
        shown.contains("www.example.test. A: 192.0.2.10 (TTL 3600) → 198.51.100.20"),
        "the plan moves www as read through Route 53: {shown}"
    );
    assert!(
        shown.contains("Amazon Route 53 (cloud: route53)"),
        "the plan names the provider: {shown}"
    );
    no_secret("provider test, migrate plan|start|list|show", &shown);
    for name in ["s.db", "s.db-wal", "s.db-shm"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
            let stored = String::from_utf8_lossy(&bytes);
            no_secret(name, &stored);
            assert!(
                name != "s.db" || stored.contains(KEY_ID_VAR),
                "the store keeps the variable's name, not its value"
            );
        }
    }

    // Inline, the secret is stored with the migration (documented) but
    // shown nowhere.
    std::fs::write(
        dir.path().join("inline.toml"),
        file(
            &moto.endpoint,
            &format!("access_key_id_env = \"{KEY_ID_VAR}\", secret_access_key = \"{INLINE}\""),
        ),
    )
    .unwrap();
    let mut shown = String::new();
    for args in [
        &["provider", "test", "inline.toml"][..],
        &[
            "--store",
            "i.db",
            "migrate",
            "plan",
            "--force",
            "inline.toml",
        ][..],
        &[
            "--store",
            "i.db",
            "migrate",
            "start",
            "--force",
            "inline.toml",
        ][..],
        &["--store", "i.db", "migrate", "show", "1"][..],
        &["--store", "i.db", "migrate", "show", "--json", "1"][..],
    ] {
        let out = cutover(dir.path(), args);
        let said = text(&out);
        assert!(out.status.success(), "{args:?}: {said}");
        shown.push_str(&said);
    }
    no_secret("inline: provider test, migrate plan|start|show", &shown);
}

#[test]
fn provider_test_fails_with_the_reason_when_route53_cannot_be_reached_or_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aws.secret"), format!("{SECRET}\n")).unwrap();
    // Nothing listens: connections are refused.
    let (_held, addr) = refusing_tcp(LOOPBACK);
    std::fs::write(
        dir.path().join("m.toml"),
        file(&format!("http://{addr}"), &by_env_and_file()),
    )
    .unwrap();
    let out = cutover(dir.path(), &["provider", "test", "m.toml"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "exit 1: {said}");
    assert!(
        said.contains("cannot read example.test.") && said.contains("unreachable"),
        "says it could not reach the API: {said}"
    );
    no_secret("provider test, unreachable", &said);

    // moto checking credentials refuses an access key it does not know.
    let moto = Moto::start_checking_credentials();
    std::fs::write(
        dir.path().join("m.toml"),
        file(&moto.endpoint, &by_env_and_file()),
    )
    .unwrap();
    let out = cutover(dir.path(), &["provider", "test", "m.toml"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "exit 1: {said}");
    assert!(
        said.contains("Route 53 refused the credentials") && said.contains("InvalidClientTokenId"),
        "says the credentials were refused: {said}"
    );
    no_secret("provider test, refused", &said);

    // A variable unset: refused at its name, before anything is asked.
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(dir.path())
        .env_remove(KEY_ID_VAR)
        .args(["provider", "test", "m.toml"])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("m.toml:3:")
            && said.contains("provider.access_key_id_env")
            && said.contains(KEY_ID_VAR),
        "names the variable at its place: {said}"
    );
}

#[test]
fn a_google_service_account_key_file_is_read_whole_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let private = "-----BEGIN PRIVATE KEY-----\\nGOOGLE-SECRET-0c1d\\n-----END PRIVATE KEY-----\\n";
    // As Google gives it: pretty-printed JSON over many lines.
    std::fs::write(
        dir.path().join("key.json"),
        format!(
            "{{\n  \"type\": \"service_account\",\n  \"client_email\": \"mover@p.iam.gserviceaccount.com\",\n  \"private_key\": \"{private}\"\n}}\n"
        ),
    )
    .unwrap();
    let (_held, addr) = refusing_tcp(LOOPBACK);
    std::fs::write(
        dir.path().join("m.toml"),
        format!(
            "version = 1\nzone = \"example.test.\"\n\
             provider = {{ kind = \"cloud\", service = \"google\", service_account_json_file = \"key.json\", project_id = \"p\", nameservers = [\"{addr}\"] }}\n\
             [[move]]\nname = \"www\"\ntype = \"A\"\nvalues = [\"198.51.100.20\"]\n"
        ),
    )
    .unwrap();
    let out = cutover(dir.path(), &["provider", "test", "m.toml"]);
    let said = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit 1 (its servers refuse): {said}"
    );
    assert!(
        said.contains("cannot read example.test. through Google Cloud DNS"),
        "the key was taken and the read failed at the servers: {said}"
    );
    assert!(
        !said.contains("not JSON") && !said.contains("GOOGLE-SECRET"),
        "the key file read whole, and never shown: {said}"
    );
}

#[test]
fn zones_star_takes_every_hosted_zone_route53_lists() {
    let mut moto = Moto::start();
    let soa = "ns1.r53.test. hostmaster.r53.test. 1 3600 600 86400 300";
    let zones = [
        ("a.r53.test.", Some("www.a.r53.test.")),
        ("b.r53.test.", Some("b.r53.test.")),
        ("c.r53.test.", None),
    ];
    for (zone, holder) in zones {
        let id = moto.create_zone(zone);
        moto.upsert(&id, zone, "SOA", 3600, &[soa]);
        moto.upsert(&id, zone, "NS", 3600, &["ns1.r53.test."]);
        if let Some(name) = holder {
            moto.upsert(&id, name, "A", 600, &["192.0.2.10"]);
        }
        moto.upsert(&id, &format!("other.{zone}"), "A", 600, &["192.0.2.99"]);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aws.secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        format!(
            "version = 1\nzones = \"*\"\n\
             provider = {{ kind = \"cloud\", service = \"route53\", {}, url = \"{}\" }}\n\
             [[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n",
            by_env_and_file(),
            moto.endpoint
        ),
    )
    .unwrap();

    let out = cutover(dir.path(), &["provider", "test", "m.toml"]);
    let said = text(&out);
    assert!(out.status.success(), "provider test: {said}");
    assert!(
        said.contains("lists 3 zones for zones = \"*\": a.r53.test., b.r53.test., c.r53.test."),
        "the hosted zones listed: {said}"
    );
    for (zone, records) in [("a.r53.test.", 4), ("b.r53.test.", 4), ("c.r53.test.", 3)] {
        assert!(
            said.contains(&format!(
                "read {records} records of {zone} (the whole zone)"
            )),
            "{zone} read whole: {said}"
        );
    }
    let mut shown = said;

    let out = cutover(
        dir.path(),
        &["--store", "s.db", "migrate", "plan", "--force", "m.toml"],
    );
    let said = text(&out);
    assert!(out.status.success(), "migrate plan: {said}");
    for moved in [
        "www.a.r53.test. A: 192.0.2.10 (TTL 600) → 198.51.100.20",
        "b.r53.test. A: 192.0.2.10 (TTL 600) → 198.51.100.20",
    ] {
        assert!(said.contains(moved), "{moved}: {said}");
    }
    assert!(
        said.contains("c.r53.test.: no record in it holds a moving address")
            && !said.contains("other.c.r53.test. A: "),
        "c.r53.test. is named, nothing in it moves: {said}"
    );
    shown.push_str(&said);
    no_secret("zones = \"*\": provider test, migrate plan", &shown);
}
