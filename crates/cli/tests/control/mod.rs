//! What the control-plane tests share: a store with a zone, `cutover serve`
//! with `[http]` on a free port (started again on other ports if one was
//! taken), tokens made with `cutover token create`, and a small HTTP client
//! that returns the status and the JSON.
//!
//! ```text
//!  test ──cutover zone import / token create──▶ store
//!       ──spawn──▶ cutover serve ([dns] 127.0.0.1:P, [http] 127.0.0.1:H)
//!       ──HTTP (ureq)──▶ /api/v1/…, /metrics, /
//! ```

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// Not every test file uses each of these.
#[allow(unused_imports)]
pub use cutover_peers::{
    log_length, refusing_tcp, start_on_free_ports, wait_bound, wait_bound_from, Guard, Ports,
    Socket, StartError, LOOPBACK,
};
use serde_json::Value;

/// The test zone.
pub const ZONE: &str = "$ORIGIN example.test.\n$TTL 3600\n\
    @ IN SOA ns1 hostmaster 2026112601 3600 600 1209600 5\n\
    @ IN NS ns1\n\
    ns1 IN A 127.0.0.1\n\
    www 2 IN A 127.0.0.2\n\
    other 300 IN A 192.0.2.99\n";

/// Runs the binary; returns its output.
pub fn cutover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the cutover binary runs")
}

/// Panics unless the run exited 0; returns stdout.
pub fn ok(what: &str, output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what}: expected exit 0, saw {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A running `cutover serve` with the control plane on.
pub struct Site {
    /// The scratch directory.
    pub dir: tempfile::TempDir,
    /// The store file.
    pub store: PathBuf,
    /// The config file.
    pub config: PathBuf,
    /// The nameserver's address.
    pub dns: SocketAddr,
    /// The control plane's address.
    pub http: SocketAddr,
    /// An admin token.
    pub admin: String,
    /// A read-only token.
    pub reader: String,
    /// A probe token (read, and check/verify/plan to the site's targets).
    pub prober: String,
    /// The binary `serve` runs from.
    pub binary: PathBuf,
    /// The serve process (killed on drop).
    pub serve: Option<Guard>,
}

impl Site {
    /// Imports [`ZONE`], makes an admin and a read token, writes a config
    /// with `extra` appended, and starts `cutover serve`.
    pub fn start(extra: &str) -> Site {
        Site::start_with(extra, "")
    }

    /// As [`Site::start`], with `dns` appended to the `[dns]` section.
    pub fn start_with_dns(dns: &str) -> Site {
        Site::start_with("", dns)
    }

    /// As [`Site::start`], with `cutover serve` run from `binary` (a copy
    /// of the binary the test may replace or delete).
    pub fn start_from(binary: &std::path::Path, extra: &str) -> Site {
        Site::start_binary(binary, extra, "")
    }

    /// As [`Site::start`], with `dns_extra` in `[dns]` and `extra` at the end.
    fn start_with(extra: &str, dns_extra: &str) -> Site {
        Site::start_binary(
            std::path::Path::new(env!("CARGO_BIN_EXE_cutover")),
            extra,
            dns_extra,
        )
    }

    /// As [`Site::start`], with the config's end written by `extra` on the
    /// ports of this try (e.g. `[mail] listen` on `ports.pick(…)`; every
    /// port is picked again when serve found one taken).
    pub fn start_picking(extra: impl FnMut(&mut Ports) -> String) -> Site {
        Site::start_on(
            std::path::Path::new(env!("CARGO_BIN_EXE_cutover")),
            "",
            extra,
        )
    }

    /// As [`Site::start_with`], `serve` run from `binary`.
    fn start_binary(binary: &std::path::Path, extra: &str, dns_extra: &str) -> Site {
        Site::start_on(binary, dns_extra, |_| extra.to_owned())
    }

    /// The one start: a store, tokens, then serve from `binary` on free
    /// ports with `dns_extra` in `[dns]` and `extra(ports)` at the end.
    fn start_on(
        binary: &std::path::Path,
        dns_extra: &str,
        mut extra: impl FnMut(&mut Ports) -> String,
    ) -> Site {
        let dir = tempfile::tempdir().expect("a tempdir");
        let store = dir.path().join("cutover.db");
        let zone = dir.path().join("example.test.zone");
        std::fs::write(&zone, ZONE).unwrap();
        let store_arg = store.display().to_string();
        ok(
            "zone import",
            cutover(&[
                "--store",
                &store_arg,
                "zone",
                "import",
                zone.to_str().unwrap(),
                "--origin",
                "example.test.",
            ]),
        );
        let admin = ok(
            "token create",
            cutover(&[
                "--store", &store_arg, "token", "create", "ops", "--scope", "admin",
            ]),
        )
        .trim()
        .to_owned();
        let reader = ok(
            "token create",
            cutover(&[
                "--store", &store_arg, "token", "create", "viewer", "--scope", "read",
            ]),
        )
        .trim()
        .to_owned();
        let prober = ok(
            "token create",
            cutover(&[
                "--store", &store_arg, "token", "create", "prober", "--scope", "probe",
            ]),
        )
        .trim()
        .to_owned();
        let config = dir.path().join("cutover.toml");
        let (dns, http, serve) = start_on_free_ports("cutover serve", |ports: &mut Ports| {
            let dns = ports.on(LOOPBACK);
            let http = ports.on(LOOPBACK);
            let extra = extra(ports);
            std::fs::write(
                &config,
                format!("store = {store_arg:?}\n[dns]\nlisten = [\"{dns}\"]\nudp_workers = 1\n{dns_extra}[http]\nlisten = \"{http}\"\n{extra}"),
            )
            .unwrap();
            let serve = spawn(binary, &config, dir.path(), dns, http)?;
            Ok((dns, http, serve))
        });
        Site {
            dir,
            store,
            config,
            dns,
            http,
            admin,
            reader,
            prober,
            binary: binary.to_path_buf(),
            serve: Some(serve),
        }
    }

    /// Starts `cutover serve` again on this site's config and ports (after
    /// the test stopped it); the ports are from the range no socket bound to
    /// port 0 lands in, so still free, and the test fails if one was taken.
    pub fn serve_again(&mut self) {
        self.serve = None;
        let serve = spawn(
            &self.binary,
            &self.config,
            self.dir.path(),
            self.dns,
            self.http,
        )
        .unwrap_or_else(|e| panic!("cutover serve did not start again: {e}"));
        self.serve = Some(serve);
    }

    /// The process id of `cutover serve`.
    pub fn serve_pid(&self) -> u32 {
        self.serve.as_ref().expect("serve runs").child.id()
    }

    /// Makes a token of `scope` named `name`; returns it.
    pub fn token(&self, name: &str, scope: &str) -> String {
        ok(
            "token create",
            cutover(&[
                "--store",
                self.store.to_str().unwrap(),
                "token",
                "create",
                name,
                "--scope",
                scope,
            ]),
        )
        .trim()
        .to_owned()
    }

    /// What `cutover serve` logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// The base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// A request; returns the status and the body parsed as JSON (Null when
    /// it is not JSON), once the body is checked against the schema the
    /// OpenAPI document gives that route and status.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let (status, _, text) = raw(&self.url(path), method, token, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; log:\n{}", self.log()));
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        check_answer(method, path, status, &value);
        (status, value)
    }

    /// A request with a content type back; returns status, content type and text.
    pub fn text(&self, path: &str) -> (u16, String, String) {
        raw(&self.url(path), "GET", None, None).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `cutover --config CONFIG ARGS…`.
    pub fn run(&self, args: &[&str]) -> Output {
        let config = self.config.display().to_string();
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        cutover(&all)
    }
}

/// How long a started `cutover serve` may take to answer (a deadline for a
/// loaded machine, not a measurement).
pub const SERVE_LIMIT: Duration = Duration::from_secs(60);

/// Starts `cutover serve` from `binary` on `config` (its log appended to
/// `dir/serve.log`) and waits until it holds `dns` and `http` and the
/// control plane answers; `InUse` when a port was taken.
fn spawn(
    binary: &std::path::Path,
    config: &std::path::Path,
    dir: &std::path::Path,
    dns: SocketAddr,
    http: SocketAddr,
) -> Result<Guard, StartError> {
    let log = dir.join("serve.log");
    let from = log_length(&log);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let child = Command::new(binary)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("cutover serve runs");
    let mut guard = Guard {
        child,
        what: "cutover serve",
    };
    let [udp, tcp] = Socket::dns(dns);
    wait_bound_from(
        "cutover serve",
        &mut guard.child,
        &[udp, tcp, Socket::Tcp(http)],
        &log,
        from,
    )?;
    let url = format!("http://{http}/api/v1/openapi.json");
    let deadline = Instant::now() + SERVE_LIMIT;
    loop {
        if let Ok((200, _, text)) = raw(&url, "GET", None, None) {
            let served: Value = serde_json::from_str(&text).expect("the document is JSON");
            DOCUMENT.get_or_init(|| served);
            return Ok(guard);
        }
        if Instant::now() > deadline {
            return Err(StartError::Failed(format!(
                "the control plane did not answer within {SERVE_LIMIT:?}; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP request: status, content type, body text.
pub fn raw(
    url: &str,
    method: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let auth = token.map(|t| format!("Bearer {t}"));
    let response = match method {
        "GET" => {
            let mut request = agent.get(url);
            if let Some(auth) = &auth {
                request = request.header("Authorization", auth);
            }
            request.call()
        }
        "POST" => {
            let mut request = agent.post(url).content_type("application/json");
            if let Some(auth) = &auth {
                request = request.header("Authorization", auth);
            }
            request.send(body.unwrap_or(""))
        }
        "PATCH" => {
            let mut request = agent.patch(url).content_type("application/json");
            if let Some(auth) = &auth {
                request = request.header("Authorization", auth);
            }
            request.send(body.unwrap_or(""))
        }
        "DELETE" => {
            let mut request = agent.delete(url);
            if let Some(auth) = &auth {
                request = request.header("Authorization", auth);
            }
            request.call()
        }
        other => return Err(format!("no method {other} in the tests")),
    };
    let mut response = response.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, kind, text))
}

/// Asserts an error answer: the status and the code, and a message.
pub fn assert_error(seen: &(u16, Value), status: u16, code: &str, what: &str) {
    assert_eq!(
        seen.0, status,
        "{what}: expected status {status}, seen {} with {}",
        seen.0, seen.1
    );
    assert_eq!(
        seen.1["error"]["code"], code,
        "{what}: expected code {code}, seen {}",
        seen.1
    );
    assert!(
        seen.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: expected a message, seen {}",
        seen.1
    );
}

/// The OpenAPI document `cutover serve` serves (the same binary serves the
/// same document), fetched when the first site starts.
static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();

/// The served OpenAPI document.
pub fn document() -> &'static Value {
    DOCUMENT
        .get()
        .expect("the OpenAPI document is fetched when a Site starts")
}

/// Runs the Python `openapi-spec-validator` (`.ci/run` installs it) on a
/// document; `Err` with what it said. A validator that cannot run fails the
/// test that asked.
pub fn validate_openapi(document: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("a tempdir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).expect("the document is written");
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs (the OpenAPI validator is a Python module)");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Adds `additionalProperties: false` to every object schema that lists
/// properties and says nothing of others, so that a key an answer has and
/// its schema does not declare fails.
fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for value in map.values_mut() {
                close_objects(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// Validates `value` against `schema` (a schema of the document, its
/// references resolved in the document's components), every object closed.
fn validate_against(schema: &Value, value: &Value, what: &str) {
    let mut components = document()["components"].clone();
    close_objects(&mut components);
    let mut schema = schema.clone();
    close_objects(&mut schema);
    let mut root = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": components,
    });
    if let (Value::Object(root), Value::Object(schema)) = (&mut root, schema) {
        root.extend(schema);
    }
    let validator = jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("{what}: expected the schema to compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} (at {})", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: expected the answer to match its schema in the OpenAPI document, seen {errors:#?} in {value}"
    );
}

/// Asserts that `value` matches the schema `name` of the served document
/// in full: every key declared, every required key present, every type and
/// enumeration respected, nested objects included.
pub fn assert_schema(name: &str, value: &Value) {
    assert!(
        document()["components"]["schemas"].get(name).is_some(),
        "expected a schema {name} in the document"
    );
    let schema = serde_json::json!({"$ref": format!("#/components/schemas/{name}")});
    validate_against(&schema, value, name);
}

/// The operation of the document that serves `method path` (the template
/// with the most fixed segments when several match), with its template.
fn operation_of(method: &str, path: &str) -> Option<(String, &'static Value)> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object()?;
    paths
        .iter()
        .filter_map(|(template, methods)| {
            let parts: Vec<&str> = template.split('/').collect();
            let fits = parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(part, segment)| {
                    part == segment || (part.starts_with('{') && !segment.is_empty())
                });
            let operation = methods.get(method.to_ascii_lowercase())?;
            let fixed = parts.iter().filter(|p| !p.starts_with('{')).count();
            fits.then_some((fixed, template.clone(), operation))
        })
        .max_by_key(|(fixed, _, _)| *fixed)
        .map(|(_, template, operation)| (template, operation))
}

/// Checks an answer of the API against what the document says `method path`
/// answers with `status`: the success type, the error body, or for a route
/// the document does not list (404, 405), the error body.
fn check_answer(method: &str, path: &str, status: u16, body: &Value) {
    let what = format!("{method} {path} ({status})");
    let Some((template, operation)) = operation_of(method, path) else {
        assert!(
            status >= 400,
            "{what}: expected an error for a route the document does not list"
        );
        let error = serde_json::json!({"$ref": "#/components/schemas/ErrorBody"});
        return validate_against(&error, body, &what);
    };
    let responses = &operation["responses"];
    let mut response = responses
        .get(status.to_string())
        .unwrap_or(&responses["default"]);
    if let Some(reference) = response["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/responses/");
        response = &document()["components"]["responses"][name];
    }
    let Some(schema) = response["content"]
        .get("application/json")
        .map(|c| &c["schema"])
    else {
        return;
    };
    assert!(
        !body.is_null(),
        "{what}: expected JSON as {template} documents, seen none"
    );
    validate_against(schema, body, &what);
}

/// Sends one message over SMTP; panics on any reply but the expected.
pub fn send_mail(addr: std::net::SocketAddr, to: &str) {
    let mut stream = TcpStream::connect(addr).expect("the relay accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut reply = || {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a reply line");
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                return all;
            }
        }
    };
    assert!(reply().starts_with("220"), "expected the banner");
    for (command, code) in [
        ("EHLO client.test\r\n", "250"),
        ("MAIL FROM:<sender@client.test>\r\n", "250"),
        (&format!("RCPT TO:<{to}>\r\n") as &str, "250"),
        ("DATA\r\n", "354"),
        ("Subject: move\r\n\r\nhello\r\n.\r\n", "250"),
        ("QUIT\r\n", "221"),
    ] {
        stream.write_all(command.as_bytes()).unwrap();
        let seen = reply();
        assert!(
            seen.starts_with(code),
            "after {command:?}: expected {code}, seen {seen:?}"
        );
    }
}
