//! Under attack it keeps its secrets: a migration file's inline secrets
//! (a TSIG `[[key]]` secret, a PowerDNS `api_key`) and the config's
//! `[[key]]` secrets appear in no answer of any API route, no event of the
//! SSE streams, no metric, no line of serve's log and nothing `cutover
//! migrate list|status|show` prints (nor a secret given by environment
//! variable, in what `migrate plan` prints or refuses) — while the migration itself, carried
//! out by serve's scheduler from the stored file, uses the secret.
//!
//! ```text
//!  migrate plan with [[key]] secret_env (set, unset, empty) and through the API (403)
//!  POST /api/v1/migrations (rfc2136 provider → this serve, inline [[key]])
//!       └─▶ serve's scheduler: UPDATEs signed with the key (the stored file keeps it)
//!  every route of cutover_api::ROUTES, both SSE streams, /metrics, serve.log,
//!  migrate list|status|show [--json], --server … migrate show ──grep──▶ no secret
//! ```

mod control;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use control::*;
use serde_json::json;

/// The TSIG secret of the migration's key ("ops."), in the config and in
/// the migration file.
const TSIG: &str = "bWlncmF0aW9uLXRzaWctc2VjcmV0LTAxMjM0NTY3ODk=";
/// A secret of the config alone (the transfer key "xfr.").
const CONFIG_ONLY: &str = "Y29uZmlnLW9ubHktdHJhbnNmZXItc2VjcmV0LTQyNDI=";
/// A PowerDNS API key written inline in a migration file.
const PDNS: &str = "pdns-api-key-SECRET-7f3a";

/// Every secret, as written.
const SECRETS: [&str; 3] = [TSIG, CONFIG_ONLY, PDNS];

/// Panics if any secret is in `text`, naming where it was seen.
fn clean(place: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "the secret {secret} appears in {place}:\n{text}"
        );
    }
}

/// What an SSE route sends within `limit`.
fn stream(site: &Site, path: &str, token: &str, limit: Duration) -> String {
    let mut socket = TcpStream::connect(site.http).expect("the control plane");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(socket, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 8192];
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match socket.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(_) => continue,
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn no_secret_of_the_config_or_a_migration_file_is_ever_shown() {
    let site = Site::start(&format!(
        "[[key]]\nname = \"ops.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{TSIG}\"\n\
         [[key]]\nname = \"xfr.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{CONFIG_ONLY}\"\n\
         [[zone]]\nname = \"example.test.\"\nupdate_keys = [\"ops.\"]\ntransfer_keys = [\"ops.\", \"xfr.\"]\n"
    ));
    let admin = site.admin.as_str();
    let dns = site.dns;
    let file = format!(
        "version = 1\nzone = \"example.test.\"\n\
         provider = {{ kind = \"rfc2136\", server = \"{dns}\", key = \"ops.\" }}\n\
         [[key]]\nname = \"ops.\"\nalgorithm = \"hmac-sha256\"\nsecret = \"{TSIG}\"\n\
         [[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n\
         [ttl]\nduring = 1\n[schedule]\nmargin = 1\nobserve = \"60s\"\n\
         [verify]\nauthorities = [\"{dns}\"]\nresolvers = []\ntries = 1\ninterval = 1\n"
    );
    let body = json!({"file_name": "move-web.toml", "text": file}).to_string();
    let mut answers: Vec<(String, String)> = Vec::new();

    // A store every user may read would expose the inline secret: refused.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    mode(site.dir.path(), 0o755);
    mode(&site.store, 0o644);
    let (status, refused) = site.call("POST", "/api/v1/migrations", Some(admin), Some(&body));
    assert_eq!(status, 400, "an exposed store is refused: {refused}");
    let message = refused.to_string();
    assert!(
        message.contains("move-web.toml:7:10: key.secret would be stored with the migration in")
            && message.contains("which every user of this machine can read (mode 644"),
        "expected the refusal at the secret, saw {message}"
    );
    answers.push(("POST /api/v1/migrations (exposed store)".into(), message));
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", site.store.display()));
        if path.exists() {
            mode(&path, 0o600);
        }
    }

    // The same key by environment variable: only its name is written; the
    // plan reads the zone with it (a transfer signed by the key), refuses
    // the variable unset or empty at its name, and through the API refuses
    // any variable (serve's environment is not the caller's).
    let env_file = file.replace(
        &format!("secret = \"{TSIG}\""),
        "secret_env = \"CUTOVER_OPS_SECRET\"",
    );
    let env_path = site.dir.path().join("env.toml");
    std::fs::write(&env_path, &env_file).unwrap();
    let config = site.config.display().to_string();
    let plan_with = |value: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
        command
            .args(["--config", &config, "migrate", "plan"])
            .arg(&env_path)
            .arg("--json")
            .env("RUST_LOG", "info")
            .env_remove("CUTOVER_OPS_SECRET");
        if let Some(value) = value {
            command.env("CUTOVER_OPS_SECRET", value);
        }
        command.output().expect("the cutover binary runs")
    };
    let planned = plan_with(Some(TSIG));
    let stdout = String::from_utf8_lossy(&planned.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&planned.stderr).into_owned();
    assert!(
        planned.status.success() && !stdout.contains("inline_secret"),
        "the plan reads the zone with the key from the environment and warns of no inline secret: {stdout}\n{stderr}"
    );
    answers.push(("`migrate plan` (secret_env)".into(), stdout));
    answers.push(("`migrate plan` (secret_env, stderr)".into(), stderr));
    for (value, why) in [(None, "is not set"), (Some(""), "is empty")] {
        let refused = plan_with(value);
        let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
        assert!(
            refused.status.code() == Some(2)
                && stderr.contains(&format!(
                    "env.toml:7:14: key.secret_env: the environment variable CUTOVER_OPS_SECRET {why}"
                )),
            "expected the variable refused at its name, saw {:?}: {stderr}",
            refused.status.code()
        );
        answers.push((format!("`migrate plan` (secret_env {why})"), stderr));
    }
    let env_body = json!({"file_name": "env.toml", "text": env_file}).to_string();
    for path in ["/api/v1/migrations/plan", "/api/v1/migrations"] {
        let seen = site.call("POST", path, Some(admin), Some(&env_body));
        assert_error(&seen, 403, "forbidden", "a variable of serve's environment");
        assert!(
            seen.1.to_string().contains("env.toml:7:14: key.secret_env")
                && seen.1.to_string().contains("server's environment"),
            "expected the variable refused at its name, saw {}",
            seen.1
        );
        answers.push((format!("POST {path} (secret_env)"), seen.1.to_string()));
    }

    // Plan and start through the API: the plan warns of the inline secret.
    let (status, plan) = site.call("POST", "/api/v1/migrations/plan", Some(admin), Some(&body));
    assert_eq!(status, 200, "the plan: {plan}; log:\n{}", site.log());
    let warned = plan["warnings"].to_string();
    assert!(
        warned.contains("inline_secret") && warned.contains("key.secret"),
        "expected the inline secret warned about, saw {warned}"
    );
    answers.push(("POST /api/v1/migrations/plan".into(), plan.to_string()));
    let (status, created) = site.call("POST", "/api/v1/migrations", Some(admin), Some(&body));
    assert_eq!(status, 200, "started: {created}; log:\n{}", site.log());
    answers.push(("POST /api/v1/migrations".into(), created.to_string()));
    let id = created["id"].as_i64().expect("an id");

    // A PowerDNS key inline, planned where no PowerDNS answers: the error
    // answered says why without the key.
    let pdns = json!({"file_name": "pdns.toml", "text": format!(
        "version = 1\nzone = \"example.test.\"\n\
         provider = {{ kind = \"powerdns\", url = \"http://127.0.0.1:9\", api_key = \"{PDNS}\" }}\n\
         [[move]]\nfrom = \"127.0.0.2\"\nto = \"127.0.0.3\"\n"
    )})
    .to_string();
    let (status, refused) = site.call("POST", "/api/v1/migrations/plan", Some(admin), Some(&pdns));
    assert_ne!(status, 200, "no PowerDNS answers: {refused}");
    answers.push((
        "POST /api/v1/migrations/plan (powerdns)".into(),
        refused.to_string(),
    ));

    // The scheduler carries the migration out with the stored file's key:
    // the switch is applied by an UPDATE signed with it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, audit) = site.call(
            "GET",
            &format!("/api/v1/migrations/{id}/audit"),
            Some(admin),
            None,
        );
        let switched = audit["entries"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["step"] == "switch" && e["status"] == "applied")
        });
        if switched {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected the switch applied by the rfc2136 provider within 30 s, saw {audit}; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Every route of the table, as the admin sees it (GETs first; the
    // steering POSTs last, as they change the migration).
    let mut routes: Vec<&cutover_api::Route> = cutover_api::ROUTES.iter().collect();
    routes.sort_by_key(|r| r.method != cutover_api::Method::Get);
    for route in routes {
        let path = route
            .path
            .replace("{zone}", "example.test.")
            .replace("{id}", &id.to_string());
        let method = route.method.as_str();
        if path.ends_with("/events") {
            let text = stream(&site, &path, admin, Duration::from_millis(1500));
            assert!(text.contains("200 OK"), "{path}: {text}");
            if path.contains("/migrations/") {
                assert!(
                    text.contains("event: migration"),
                    "the migration's events were read: {text}"
                );
            }
            answers.push((format!("GET {path}"), text));
            continue;
        }
        let (status, _, text) = raw(&site.url(&path), method, Some(admin), Some("{}"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        answers.push((format!("{method} {path} ({status})"), text));
    }
    let shown = answers
        .iter()
        .find(|(what, _)| what.starts_with(&format!("GET /api/v1/migrations/{id} (200")))
        .map(|(_, text)| text.clone())
        .expect("the migration was shown");
    assert!(
        shown.contains("(redacted)") && shown.contains("key = \\\"ops.\\\""),
        "the file is shown, its secret redacted: {shown}"
    );
    for (what, text) in &answers {
        clean(what, text);
    }

    // The command line, local and through the API.
    let server = format!("http://{}", site.http);
    for args in [
        vec!["migrate", "list"],
        vec!["migrate", "list", "--json"],
        vec!["migrate", "status", &id.to_string()],
        vec!["migrate", "status", &id.to_string(), "--json"],
        vec!["migrate", "show", &id.to_string()],
        vec!["migrate", "show", &id.to_string(), "--json"],
    ] {
        let out = cutover(&[&["--config", &config][..], &args].concat());
        clean(
            &format!("`cutover {}`", args.join(" ")),
            &String::from_utf8_lossy(&out.stdout),
        );
        clean(
            &format!("`cutover {}` (stderr)", args.join(" ")),
            &String::from_utf8_lossy(&out.stderr),
        );
        let remote = cutover(&[&["--server", &server, "--token", admin][..], &args].concat());
        clean(
            &format!("`cutover --server {}`", args.join(" ")),
            &String::from_utf8_lossy(&remote.stdout),
        );
    }
    let shown = ok(
        "migrate show --json",
        cutover(&[
            "--config",
            &config,
            "migrate",
            "show",
            &id.to_string(),
            "--json",
        ]),
    );
    assert!(shown.contains("(redacted)"), "{shown}");
    let remote = ok(
        "--server … migrate show --json",
        cutover(&[
            "--server",
            &server,
            "--token",
            admin,
            "migrate",
            "show",
            &id.to_string(),
            "--json",
        ]),
    );
    assert!(remote.contains("(redacted)"), "{remote}");

    // What serve logged, all along (at info).
    clean("serve's log", &site.log());
}
