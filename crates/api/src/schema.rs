//! JSON Schemas of the API's types, for the OpenAPI document. Written by
//! hand beside the types; a test serializes a sample of each type and
//! holds it against its schema (every key declared, every required key
//! present), so a field added to a type without its schema fails.

use serde_json::{json, Value};

/// A string.
fn s() -> Value {
    json!({"type": "string"})
}

/// An integer.
fn i() -> Value {
    json!({"type": "integer"})
}

/// A boolean.
fn b() -> Value {
    json!({"type": "boolean"})
}

/// Any JSON object (the engine's own documents).
fn any() -> Value {
    json!({"type": "object"})
}

/// An array of `items`.
fn arr(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// A reference to another schema.
fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `inner` or null.
fn null(inner: Value) -> Value {
    json!({"anyOf": [inner, {"type": "null"}]})
}

/// How a step attempt ended (the engine's `StepOutcome`).
fn step_outcome() -> Value {
    json!({"type": "string", "enum": ["done", "skipped", "waiting", "retrying", "failed"]})
}

/// One planned step and where it stands (the engine's `TimelineEntry`,
/// its `status` tagged by `status`).
fn timeline_entry() -> Value {
    let status = object(&[
        (
            "status",
            json!({"type": "string", "enum": ["done", "skipped", "next", "pending", "failed", "not_run"]}),
            true,
        ),
        ("at", null(s()), false),
        ("due", null(s()), false),
        ("reason", null(s()), false),
        (
            "last",
            null(object(&[
                ("outcome", step_outcome(), true),
                ("at", s(), true),
                ("attempt", i(), true),
                ("reason", null(s()), true),
            ])),
            false,
        ),
    ]);
    object(&[
        ("kind", s(), true),
        ("what", s(), true),
        ("why", s(), true),
        ("mail", null(s()), true),
        ("status", status, true),
    ])
}

/// A recorded step attempt (the engine's `StepRecord`).
fn step_record() -> Value {
    object(&[
        ("id", i(), true),
        ("kind", s(), true),
        ("position", null(i()), true),
        ("attempt", i(), true),
        ("started_at", s(), true),
        ("done_at", null(s()), true),
        ("outcome", null(step_outcome()), true),
        ("reason", null(s()), true),
        ("evidence", any(), true),
    ])
}

/// One thing that happened to a migration (the engine's `Event`).
fn migration_event() -> Value {
    object(&[
        ("id", i(), true),
        ("at", s(), true),
        (
            "cause",
            json!({"type": "string", "enum": ["automatic", "operator", "conflict"]}),
            true,
        ),
        (
            "kind",
            json!({"type": "string", "enum": ["started", "step", "state"]}),
            true,
        ),
        ("step_id", null(i()), true),
        ("step", null(s()), true),
        ("outcome", null(step_outcome()), true),
        ("from", null(s()), true),
        ("to", null(s()), true),
        ("reason", null(s()), true),
        ("text", s(), true),
    ])
}

/// An object with these properties; `true` marks a required one.
fn object(properties: &[(&str, Value, bool)]) -> Value {
    let required: Vec<&str> = properties.iter().filter(|p| p.2).map(|p| p.0).collect();
    let map: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(name, schema, _)| ((*name).to_owned(), schema.clone()))
        .collect();
    json!({"type": "object", "properties": map, "required": required})
}

/// The schema of the type named `name` (see [`crate::types::TYPE_NAMES`]).
pub fn of(name: &str) -> Option<Value> {
    let schema = match name {
        "WhoAmI" => object(&[
            ("name", s(), true),
            (
                "scope",
                json!({"type": "string", "enum": ["read", "probe", "admin"]}),
                true,
            ),
        ]),
        "ZoneSummary" => object(&[
            ("origin", s(), true),
            ("serial", i(), true),
            ("records", i(), true),
            ("updated_at", s(), true),
        ]),
        "ZoneList" => object(&[("zones", arr(r("ZoneSummary")), true)]),
        "RecordView" => object(&[
            ("name", s(), true),
            ("ttl", i(), true),
            ("type", s(), true),
            ("data", s(), true),
        ]),
        "ZoneView" => object(&[
            ("origin", s(), true),
            ("serial", i(), true),
            ("records", arr(r("RecordView")), true),
        ]),
        "ZoneExport" => object(&[
            ("origin", s(), true),
            ("serial", i(), true),
            ("text", s(), true),
        ]),
        "VersionView" => object(&[
            ("serial", i(), true),
            ("from", null(i()), true),
            ("at", s(), true),
            ("comment", s(), true),
            ("added", i(), true),
            ("removed", i(), true),
        ]),
        "VersionList" => object(&[
            ("origin", s(), true),
            ("versions", arr(r("VersionView")), true),
        ]),
        "DiffView" => object(&[
            ("origin", s(), true),
            ("from", i(), true),
            ("to", i(), true),
            ("removed", arr(r("RecordView")), true),
            ("added", arr(r("RecordView")), true),
        ]),
        "RecordChange" => object(&[
            (
                "action",
                json!({"type": "string", "enum": ["add", "set", "delete"]}),
                true,
            ),
            ("name", s(), true),
            ("type", s(), true),
            ("data", null(s()), false),
            ("ttl", null(i()), false),
            ("dry_run", b(), false),
            ("replace", b(), false),
        ]),
        "ChangeResult" => object(&[
            ("diff", r("DiffView"), true),
            ("applied", b(), true),
            ("note", s(), false),
        ]),
        "CheckRequest" => object(&[
            ("zone", s(), true),
            ("names", arr(s()), false),
            ("types", arr(s()), false),
            ("resolvers", arr(s()), false),
            ("servers", arr(s()), false),
            ("port", null(i()), false),
            ("timeout", null(s()), false),
            ("expect", arr(arr(s())), false),
        ]),
        "VerifyRequest" => object(&[("kind", s(), true), ("args", arr(s()), false)]),
        "CheckResult" => object(&[("ok", b(), true), ("report", any(), true)]),
        "MailRecipient" => object(&[
            ("address", s(), true),
            ("state", s(), true),
            ("attempts", i(), true),
            ("next_attempt", i(), true),
            ("last_error", null(s()), true),
            ("destination", null(s()), true),
        ]),
        "MailMessage" => object(&[
            ("id", s(), true),
            ("sender", s(), true),
            ("received", i(), true),
            ("age_seconds", i(), true),
            ("size", i(), true),
            ("held", b(), true),
            ("recipients", arr(r("MailRecipient")), true),
            ("headers", s(), false),
        ]),
        "MailQueue" => object(&[("messages", arr(r("MailMessage")), true)]),
        "MailAction" => object(&[
            ("all", b(), false),
            ("domain", null(s()), false),
            ("message", null(s()), false),
        ]),
        "MailRetarget" => object(&[
            ("domain", s(), true),
            ("destination", s(), true),
            ("release", b(), false),
            ("keep_held", b(), false),
        ]),
        "MailActionResult" => object(&[
            ("changed", arr(s()), true),
            ("released", arr(s()), false),
            ("held", arr(s()), false),
        ]),
        "MigrationFileBody" => object(&[
            ("file_name", s(), true),
            ("text", s(), true),
            ("force", b(), false),
        ]),
        "MigrationAction" => object(&[("reason", null(s()), false)]),
        "MigrationList" => object(&[("migrations", arr(r("MigrationSummary")), true)]),
        "MigrationCreated" => object(&[("id", i(), true), ("plan", r("MigrationPlan"), true)]),
        "MigrationPlan" => object(&[
            ("zone", s(), true),
            ("changes", arr(any()), true),
            ("steps", arr(any()), true),
            ("warnings", arr(any()), true),
        ]),
        "MigrationSummary" => object(&[
            ("id", i(), true),
            ("zone", s(), true),
            ("file_name", s(), true),
            ("state", s(), true),
            ("phase", s(), true),
            ("reason", null(s()), true),
            ("next_step", null(s()), true),
            ("next_due", null(s()), true),
            ("created_at", s(), true),
            ("updated_at", s(), true),
            (
                "carried_by",
                json!({"type": "string", "enum": ["serve", "run", "nobody"]}),
                true,
            ),
            ("attention", null(s()), true),
        ]),
        "MigrationDetail" => object(&[
            ("summary", r("MigrationSummary"), true),
            ("plan", r("MigrationPlan"), true),
            ("file_text", s(), true),
            ("timeline", arr(timeline_entry()), true),
            ("steps", arr(step_record()), true),
            ("events", arr(migration_event()), true),
        ]),
        "MigrationAudit" => object(&[("migration", i(), true), ("entries", arr(any()), true)]),
        "MatrixCell" => object(&[
            ("question", s(), true),
            (
                "state",
                json!({"type": "string", "enum": ["new", "old", "other", "error", "none"]}),
                true,
            ),
            ("records", arr(s()), true),
            ("ttl", null(i()), true),
        ]),
        "MatrixRow" => object(&[
            ("kind", s(), true),
            ("label", s(), true),
            ("cells", arr(r("MatrixCell")), true),
        ]),
        "Propagation" => object(&[
            ("migration", i(), true),
            ("zone", s(), true),
            ("checked_at", s(), true),
            ("questions", arr(s()), true),
            ("rows", arr(r("MatrixRow")), true),
            ("all_released_in_seconds", null(i()), true),
        ]),
        _ => return None,
    };
    Some(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::*;

    /// Holds a serialized sample against the schema of `name`.
    fn conforms(name: &str, sample: impl serde::Serialize) {
        let schema = of(name).unwrap_or_else(|| panic!("expected a schema for {name}"));
        let value = serde_json::to_value(sample).expect("serializes");
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("expected {name} to be an object"));
        let properties = schema["properties"].as_object().expect("properties");
        for key in object.keys() {
            assert!(
                properties.contains_key(key),
                "{name}: expected {key:?} in the schema, seen it only in the type"
            );
        }
        for required in schema["required"].as_array().expect("required") {
            let key = required.as_str().expect("a name");
            assert!(
                object.contains_key(key),
                "{name}: expected required {key:?} in the serialized type"
            );
        }
    }

    #[test]
    fn every_type_matches_its_schema() {
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
            destination: None,
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
            records: vec![],
            ttl: None,
        };
        let row = MatrixRow {
            kind: "resolver".into(),
            label: "r".into(),
            cells: vec![cell.clone()],
        };
        conforms(
            "WhoAmI",
            WhoAmI {
                name: "ops".into(),
                scope: "admin".into(),
            },
        );
        conforms(
            "ZoneSummary",
            ZoneSummary {
                origin: "e.".into(),
                serial: 1,
                records: 2,
                updated_at: "t".into(),
            },
        );
        conforms("ZoneList", ZoneList { zones: vec![] });
        conforms("RecordView", record.clone());
        conforms(
            "ZoneView",
            ZoneView {
                origin: "e.".into(),
                serial: 1,
                records: vec![record],
            },
        );
        conforms(
            "VersionView",
            VersionView {
                serial: 2,
                from: Some(1),
                at: "t".into(),
                comment: "c".into(),
                added: 1,
                removed: 1,
            },
        );
        conforms(
            "VersionList",
            VersionList {
                origin: "e.".into(),
                versions: vec![],
            },
        );
        conforms("DiffView", diff.clone());
        conforms(
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
            "ChangeResult",
            ChangeResult {
                diff,
                applied: false,
                note: Some("dry run: nothing changed".into()),
            },
        );
        conforms(
            "CheckRequest",
            CheckRequest {
                zone: "e.".into(),
                expect: vec![["a".into(), "A".into(), "1".into()]],
                ..CheckRequest::default()
            },
        );
        conforms(
            "VerifyRequest",
            VerifyRequest {
                kind: "tcp".into(),
                args: vec![],
            },
        );
        conforms(
            "CheckResult",
            CheckResult {
                ok: true,
                report: serde_json::json!({}),
            },
        );
        conforms("MailRecipient", recipient);
        conforms("MailMessage", message.clone());
        conforms(
            "MailQueue",
            MailQueue {
                messages: vec![message],
            },
        );
        conforms(
            "MailAction",
            MailAction {
                all: true,
                ..MailAction::default()
            },
        );
        conforms(
            "MailRetarget",
            MailRetarget {
                domain: "d".into(),
                destination: "h:25".into(),
                release: Some(true),
                keep_held: None,
            },
        );
        conforms(
            "MailActionResult",
            MailActionResult {
                changed: vec!["1".into()],
                released: vec![],
                held: vec!["2".into()],
            },
        );
        conforms(
            "MigrationFileBody",
            MigrationFileBody {
                file_name: "m.toml".into(),
                text: "".into(),
                force: false,
            },
        );
        conforms(
            "MigrationAction",
            MigrationAction {
                reason: Some("r".into()),
            },
        );
        conforms("MigrationList", MigrationList { migrations: vec![] });
        conforms("MatrixCell", cell);
        conforms("MatrixRow", row.clone());
        conforms(
            "Propagation",
            Propagation {
                migration: 1,
                zone: "e.".into(),
                checked_at: "t".into(),
                questions: vec![],
                rows: vec![row],
                all_released_in_seconds: Some(3),
            },
        );
    }

    #[test]
    fn every_named_type_has_a_schema() {
        for name in TYPE_NAMES.iter().filter(|name| **name != "ErrorBody") {
            assert!(of(name).is_some(), "expected a schema for {name}");
        }
    }
}
