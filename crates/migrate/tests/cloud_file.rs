//! A migration file naming a cloud host: the service's keys and only
//! those, credentials by file, environment or inline (blanked by
//! `file::redact`), errors at FILE:LINE:COLUMN saying what was expected.

use cutover_migrate::file::redact;
use cutover_migrate::provider::{ProviderSpec, Secret};
use cutover_migrate::MigrationFile;

/// A file with `provider` as its provider table.
fn with_provider(provider: &str) -> String {
    format!(
        "version = 1\nzone = \"example.test.\"\n{provider}\n[[move]]\nfrom = \"192.0.2.10\"\nto = \"198.51.100.20\"\n"
    )
}

/// The error of parsing `text`, as printed.
fn refusal(text: &str) -> String {
    MigrationFile::parse(text, "m.toml")
        .err()
        .unwrap_or_else(|| panic!("expected a refusal of {text}"))
        .to_string()
}

#[test]
fn a_route53_provider_takes_its_credentials_by_environment_file_or_inline() {
    let file = MigrationFile::parse(
        &with_provider(
            "provider = { kind = \"cloud\", service = \"route53\", access_key_id_env = \"AWS_ACCESS_KEY_ID\", secret_access_key_file = \"aws.secret\", region = \"eu-west-1\", zone_id = \"Z123\", url = \"http://127.0.0.1:5000/\" }",
        ),
        "/etc/cutover/m.toml",
    )
    .expect("a route53 provider parses");
    assert_eq!(
        file.provider,
        ProviderSpec::Cloud {
            service: "route53".into(),
            secrets: vec![
                (
                    "access_key_id".into(),
                    Secret::Env("AWS_ACCESS_KEY_ID".into())
                ),
                (
                    "secret_access_key".into(),
                    Secret::File("/etc/cutover/aws.secret".into())
                ),
            ],
            settings: vec![
                ("region".into(), "eu-west-1".into()),
                ("zone_id".into(), "Z123".into()),
                ("url".into(), "http://127.0.0.1:5000".into()),
            ],
            nameservers: Vec::new(),
        },
        "credentials by name, the file relative to the migration file, the url without its slash"
    );
    assert_eq!(
        file.spots.env_secrets.len(),
        1,
        "the environment variable is recorded: {:?}",
        file.spots
    );
}

#[test]
fn inline_credentials_of_every_service_are_blanked_by_redact() {
    let text = with_provider(
        "provider = { kind = \"cloud\", service = \"route53\", access_key_id = \"AKID-SECRET-1\", secret_access_key = \"aws-SECRET-2\", session_token = \"aws-SECRET-3\" }",
    );
    let file = MigrationFile::parse(&text, "m.toml").expect("inline credentials parse");
    assert_eq!(
        file.spots.inline_secrets.len(),
        3,
        "each inline credential is recorded for the plan's warning: {:?}",
        file.spots.inline_secrets
    );
    let shown = redact(&text);
    for secret in ["AKID-SECRET-1", "aws-SECRET-2", "aws-SECRET-3"] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    assert!(shown.contains("route53"), "the rest is kept: {shown}");
    let ovh = with_provider(
        "[provider]\nkind = \"cloud\"\nservice = \"ovh\"\napplication_key = \"ovh-SECRET-1\"\napplication_secret = \"ovh-SECRET-2\"\nconsumer_key = \"ovh-SECRET-3\"\nendpoint = \"ovh-eu\"\nnameservers = [\"127.0.0.1:53\"]",
    );
    MigrationFile::parse(&ovh, "m.toml").expect("an ovh provider parses");
    let shown = redact(&ovh);
    assert!(!shown.contains("ovh-SECRET"), "{shown}");
}

#[test]
fn errors_name_the_key_at_its_place_and_what_was_expected() {
    // (the provider line, the text the error points at, the message)
    let cases = [
        (
            "provider = { kind = \"cloud\", service = \"nowhere\", token = \"x\" }",
            "\"nowhere\"",
            "unknown cloud service \"nowhere\": expected one of \"route53\", \"cloudflare\"",
        ),
        (
            "provider = { kind = \"cloud\", token = \"x\" }",
            "{",
            "provider.service: expected the cloud host, one of \"route53\"",
        ),
        (
            "provider = { kind = \"cloud\", service = \"route53\", access_key_id_env = \"A\" }",
            "{",
            "provider: expected `secret_access_key_file = PATH` (a file holding the IAM secret access key), `secret_access_key_env = NAME`",
        ),
        (
            "provider = { kind = \"cloud\", service = \"route53\", access_key_id_env = \"A\", secret_access_key_env = \"B\", token = \"x\" }",
            "\"x\"",
            "`token` does not apply to cloud service \"route53\" (it takes service, access_key_id,",
        ),
        (
            "provider = { kind = \"cloud\", service = \"route53\", access_key_id_env = \"A\", access_key_id = \"B\", secret_access_key_env = \"C\" }",
            "\"A\"",
            "give the IAM access key id once: access_key_id_file, access_key_id_env or access_key_id, not two",
        ),
        (
            "provider = { kind = \"cloud\", service = \"route53\", access_key_id_env = \"A\", secret_access_key_env = \"B\", nameservers = [\"127.0.0.1:53\"] }",
            "[",
            "`nameservers` does not apply to cloud service \"route53\": it is read through its API",
        ),
        (
            "provider = { kind = \"cloud\", service = \"hetzner\", token_env = \"T\", nameservers = [\"not a server\"] }",
            "\"not a server\"",
            "provider.nameservers \"not a server\"",
        ),
        (
            "provider = { kind = \"cloud\", service = \"hetzner\", token_env = \"T\" }",
            "{",
            "provider.nameservers: expected the zone's authoritative servers to read from",
        ),
        (
            "provider = { kind = \"cloud\", service = \"route53\", access_key_id_env = \"A\", secret_access_key_env = \"B\", url = \"ftp://x\" }",
            "\"ftp",
            "provider.url \"ftp://x\": expected an http:// or https:// URL",
        ),
        (
            "provider = { kind = \"powerdns\", url = \"http://x\", api_key_env = \"K\", nameservers = [\"127.0.0.1:53\"] }",
            "[",
            "`nameservers` does not apply to the powerdns provider",
        ),
    ];
    for (provider, at, message) in cases {
        let column = provider.find(at).expect("the marker is in the line") + 1;
        let expected = format!("m.toml:3:{column}: {message}");
        let seen = refusal(&with_provider(provider));
        assert!(
            seen.starts_with(&expected),
            "for {provider}\nexpected: {expected}\n    seen: {seen}"
        );
    }
}
