//! The document against the route table, the OpenAPI validator, and every
//! type's serialized sample against the schema derived from it.

use super::*;
use crate::types::*;
use crate::SERVED_ELSEWHERE;

/// The document with a stand-in (any object) for each body the server
/// supplies; the served document is validated whole by the control-plane
/// tests.
fn standalone() -> Value {
    let served = SERVED_ELSEWHERE
        .iter()
        .map(|name| {
            let any: RefOr<Schema> = ObjectBuilder::new().schema_type(Type::Object).into();
            ((*name).to_owned(), any)
        })
        .collect();
    serde_json::to_value(document("test", served)).expect("the document serializes")
}

/// Runs the Python `openapi-spec-validator` (`.ci/run` installs it) on a
/// document. A validator that cannot run fails the test.
fn validate(document: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("a tempdir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).expect("the document is written");
    let output = std::process::Command::new("python3")
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

#[test]
fn the_document_is_valid_openapi() {
    let document = standalone();
    assert_eq!(document["openapi"], "3.1.0", "expected OpenAPI 3.1");
    if let Err(said) = validate(&document) {
        panic!("expected a valid document, the validator said:\n{said}");
    }
    // The validator refuses what is wrong (it is not a pass-through).
    let mut broken = document.clone();
    broken["paths"]["/api/v1/zones"]["get"]["responses"]["200"] = serde_json::json!({"content": 7});
    assert!(
        validate(&broken).is_err(),
        "expected the validator to refuse a broken response"
    );
}

#[test]
fn no_rust_type_path_appears_in_the_document() {
    let text = standalone().to_string();
    for needle in ["::", "cutover_api", "cutover_migrate", "crate::"] {
        assert!(
            !text.contains(needle),
            "expected no {needle:?} in the document, seen it near {:?}",
            text.find(needle)
                .map(|at| &text[at.saturating_sub(80)..(at + 40).min(text.len())])
        );
    }
}

#[test]
fn the_document_lists_every_route_and_nothing_else() {
    let document = standalone();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|route| (route.method.as_str().to_owned(), route.path.to_owned()))
        .collect();
    expected.sort();
    assert_eq!(
        operations(&document),
        expected,
        "expected the table's routes, seen the document's"
    );
    for route in ROUTES {
        let operation = &document["paths"][route.path][route.method.openapi_key()];
        assert_eq!(
            operation["x-scope"],
            route.scope.as_str(),
            "expected {} {} to show its scope",
            route.method.as_str(),
            route.path
        );
        let security = operation["security"].as_array().expect("security");
        assert_eq!(
            security.is_empty(),
            route.scope == Scope::Public,
            "expected a bearer requirement exactly on the routes with a token, seen {security:?} on {}",
            route.path
        );
    }
}

#[test]
fn every_referenced_schema_and_response_exists() {
    let document = standalone();
    let text = document.to_string();
    for (kind, prefix) in [
        ("schemas", "#/components/schemas/"),
        ("responses", "#/components/responses/"),
    ] {
        for piece in text.split(prefix).skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                document["components"][kind].get(&name).is_some(),
                "expected a {kind} entry {name}, seen none"
            );
        }
    }
    for route in ROUTES {
        for name in route.request.into_iter().chain([route.response]) {
            if !name.contains('/') {
                assert!(
                    document["components"]["schemas"].get(name).is_some(),
                    "expected a schema {name} for {}",
                    route.path
                );
            }
        }
    }
}

#[test]
fn every_error_status_is_documented_with_the_error_body() {
    let document = standalone();
    let responses = &document["components"]["responses"];
    for status in [
        400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 500, 503, 504,
    ] {
        let response = &responses[format!("Error{status}")];
        assert_eq!(
            response["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "expected the error body for {status}, seen {response}"
        );
    }
    assert!(
        responses["Error429"]["headers"]["Retry-After"].is_object(),
        "expected Retry-After on the 429, seen {}",
        responses["Error429"]
    );
    let codes = &document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
    let listed: Vec<&str> = codes
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let every: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, every, "expected every error code in the schema");
}

#[test]
fn each_operation_lists_the_errors_it_can_give() {
    let document = standalone();
    let statuses = |path: &str, method: &str| -> Vec<String> {
        let mut keys: Vec<String> = document["paths"][path][method]["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        statuses("/api/v1/checks/verify", "post"),
        ["200", "400", "401", "403", "408", "413", "415", "429", "504", "default"],
        "expected verify's errors: token, body, bounds, timeout"
    );
    assert_eq!(
        statuses("/api/v1/zones", "get"),
        ["200", "401", "403", "default"],
        "expected no 429 on the zone list"
    );
    assert_eq!(
        statuses("/api/v1/zones/{zone}/records", "post"),
        ["200", "400", "401", "403", "404", "408", "413", "415", "422", "default"],
        "expected the record change's errors"
    );
    assert_eq!(
        statuses("/metrics", "get"),
        ["200", "default"],
        "expected a public route without token errors"
    );
    let verify = &document["paths"]["/api/v1/checks/verify"]["post"];
    assert_eq!(
        verify["responses"]["429"]["$ref"], "#/components/responses/Error429",
        "expected the shared 429 on verify, seen {}",
        verify["responses"]
    );
}

#[test]
fn path_parameters_are_declared() {
    let document = standalone();
    let operation = &document["paths"]["/api/v1/zones/{zone}/diff"]["get"];
    assert_eq!(
        operation["parameters"][0]["name"], "zone",
        "expected the zone parameter"
    );
    assert_eq!(
        path_parameters("/a/{x}/b/{y}").collect::<Vec<_>>(),
        ["x", "y"],
        "expected both parameters"
    );
}

/// The schema of `name` from the document, as a JSON Schema of its own
/// (references resolved in the document) in which every object declares
/// every key it may have: a key the type writes that the schema does not
/// name fails, as does a required key the type leaves out.
fn strict_schema(document: &Value, name: &str) -> jsonschema::Validator {
    let mut schemas = document["components"]["schemas"].clone();
    close_objects(&mut schemas);
    let root = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": {"schemas": schemas},
    });
    jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("expected {name}'s schema to compile: {e}"))
}

/// Adds `additionalProperties: false` to every object schema that lists
/// properties and says nothing of others.
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

/// Holds a serialized sample against the derived schema of `name`.
fn conforms(document: &Value, name: &str, sample: impl serde::Serialize) {
    let value = serde_json::to_value(sample).expect("serializes");
    let validator = strict_schema(document, name);
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name}: expected {value} to match its schema, seen {errors:#?}"
    );
}

#[test]
fn every_type_matches_the_schema_derived_from_it() {
    let document = standalone();
    let record = RecordView {
        name: "www.example.com.".into(),
        ttl: 60,
        rtype: "A".into(),
        data: "192.0.2.1".into(),
    };
    let diff = DiffView {
        origin: "example.com.".into(),
        from: 1,
        to: 2,
        removed: vec![record.clone()],
        added: vec![],
    };
    let recipient = MailRecipient {
        address: "a@b".into(),
        state: "deferred".into(),
        attempts: 1,
        next_attempt: 0,
        last_error: None,
        destination: Some("mx.example.com:25".into()),
    };
    let message = MailMessage {
        id: "1".into(),
        sender: "".into(),
        received: 0,
        age_seconds: 0,
        size: 1,
        held: false,
        recipients: vec![recipient.clone()],
        headers: Some("Subject: x".into()),
    };
    let cell = MatrixCell {
        question: "www A".into(),
        state: "new".into(),
        records: vec!["192.0.2.1".into()],
        ttl: None,
    };
    let row = MatrixRow {
        location: "fra1".into(),
        kind: "resolver".into(),
        label: "r".into(),
        cells: vec![cell.clone()],
    };
    let d = &document;
    conforms(
        d,
        "ErrorBody",
        ErrorBody::new(ErrorCode::TooLarge, "too big"),
    );
    conforms(
        d,
        "WhoAmI",
        WhoAmI {
            name: "ops".into(),
            scope: "admin".into(),
        },
    );
    conforms(
        d,
        "ZoneList",
        ZoneList {
            zones: vec![ZoneSummary {
                origin: "e.".into(),
                serial: 1,
                records: 2,
                updated_at: "t".into(),
            }],
        },
    );
    conforms(
        d,
        "ZoneView",
        ZoneView {
            origin: "e.".into(),
            serial: 1,
            records: vec![record],
        },
    );
    conforms(
        d,
        "ZoneExport",
        ZoneExport {
            origin: "e.".into(),
            serial: 1,
            text: "@ SOA …".into(),
        },
    );
    conforms(
        d,
        "VersionList",
        VersionList {
            origin: "e.".into(),
            versions: vec![VersionView {
                serial: 2,
                from: Some(1),
                at: "t".into(),
                comment: "c".into(),
                added: 1,
                removed: 1,
            }],
        },
    );
    conforms(d, "DiffView", diff.clone());
    conforms(
        d,
        "RecordChange",
        RecordChange {
            action: ChangeAction::Add,
            name: "www".into(),
            rtype: "A".into(),
            data: Some("1.2.3.4".into()),
            ttl: Some(60),
            dry_run: true,
            replace: false,
        },
    );
    conforms(
        d,
        "ChangeResult",
        ChangeResult {
            diff,
            applied: false,
            note: Some("dry run: nothing changed".into()),
        },
    );
    conforms(
        d,
        "RrsetPatch",
        RrsetPatch {
            rrsets: vec![
                RrsetPatchEntry {
                    name: "www.e.".into(),
                    rtype: "A".into(),
                    ttl: Some(300),
                    changetype: Changetype::Replace,
                    records: vec![RrsetRecord {
                        content: "192.0.2.1".into(),
                        disabled: false,
                    }],
                },
                RrsetPatchEntry {
                    name: "old.e.".into(),
                    rtype: "ANY".into(),
                    ttl: None,
                    changetype: Changetype::Delete,
                    records: vec![],
                },
            ],
            dry_run: true,
        },
    );
    conforms(
        d,
        "CheckRequest",
        CheckRequest {
            zone: "e.".into(),
            port: Some(53),
            expect: vec![["a".into(), "A".into(), "1".into()]],
            ..CheckRequest::default()
        },
    );
    conforms(
        d,
        "VerifyRequest",
        VerifyRequest {
            kind: "tcp".into(),
            args: vec![],
        },
    );
    conforms(
        d,
        "CheckResult",
        CheckResult {
            ok: true,
            report: serde_json::json!({"anything": [1, "x"]}),
        },
    );
    conforms(
        d,
        "MailQueue",
        MailQueue {
            messages: vec![message.clone()],
        },
    );
    conforms(d, "MailMessage", message);
    conforms(
        d,
        "MailAction",
        MailAction {
            all: true,
            ..MailAction::default()
        },
    );
    conforms(
        d,
        "MailRetarget",
        MailRetarget {
            domain: "d".into(),
            destination: "h:25".into(),
            release: Some(true),
            keep_held: None,
        },
    );
    conforms(
        d,
        "MailActionResult",
        MailActionResult {
            changed: vec!["1".into()],
            released: vec!["1".into()],
            held: vec![],
        },
    );
    conforms(
        d,
        "MigrationFileBody",
        MigrationFileBody {
            file_name: "m.toml".into(),
            text: "".into(),
            force: true,
        },
    );
    conforms(
        d,
        "MigrationAction",
        MigrationAction {
            reason: Some("r".into()),
        },
    );
    conforms(
        d,
        "MigrationList",
        MigrationList {
            migrations: vec![serde_json::json!({})],
        },
    );
    conforms(
        d,
        "Propagation",
        Propagation {
            migration: 1,
            zone: "e.".into(),
            checked_at: Some("t".into()),
            age_seconds: Some(0),
            source: "check".into(),
            refreshed: true,
            questions: vec!["www A".into()],
            rows: vec![row],
            locations: vec![MatrixLocation {
                location: "nyc1".into(),
                problems: vec!["no agent online".into()],
            }],
            all_released_in_seconds: Some(3),
        },
    );
}

#[test]
fn a_schema_refuses_what_its_type_would_not_write() {
    let document = standalone();
    let validator = strict_schema(&document, "WhoAmI");
    assert!(
        !validator.is_valid(&serde_json::json!({"name": "ops", "scope": "root"})),
        "expected a scope outside read, probe, admin refused"
    );
    assert!(
        !validator.is_valid(&serde_json::json!({"name": "ops", "scope": "read", "extra": 1})),
        "expected an undeclared key refused"
    );
    assert!(
        !validator.is_valid(&serde_json::json!({"scope": "read"})),
        "expected a missing name refused"
    );
}
