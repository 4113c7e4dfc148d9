//! The OpenAPI 3.1 document, generated from the route table: every route
//! once, with its scope as a security requirement, its request body and
//! its answers (the success type and the error body).

use serde_json::{json, Map, Value};

use crate::routes::{is_bounded, Scope, ROUTES};
use crate::types::{ErrorCode, TYPE_NAMES};

/// The document served at `/api/v1/openapi.json`.
pub fn document(version: &str) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let mut operation = Map::new();
        operation.insert("operationId".into(), json!(format!("{:?}", route.id)));
        operation.insert("summary".into(), json!(route.summary));
        operation.insert("x-scope".into(), json!(route.scope.as_str()));
        let parameters: Vec<Value> = path_parameters(route.path)
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(request) = route.request {
            operation.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": schema_ref(request)}}}),
            );
        }
        let success = if route.response.contains('/') {
            json!({"description": "OK", "content": {route.response: {}}})
        } else {
            json!({"description": "OK", "content": {"application/json": {"schema": schema_ref(route.response)}}})
        };
        let mut responses = Map::new();
        responses.insert("200".into(), success);
        if is_bounded(route.id) {
            responses.insert(
                "429".into(),
                json!({"description": "Over the work bounds (per token and in total): `too_many_requests`; try again after Retry-After seconds.",
                    "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
                    "content": {"application/json": {"schema": schema_ref("ErrorBody")}}}),
            );
        }
        responses.insert("default".into(), json!({"description": "An error.", "content": {"application/json": {"schema": schema_ref("ErrorBody")}}}));
        operation.insert("responses".into(), Value::Object(responses));
        operation.insert(
            "security".into(),
            match route.scope {
                Scope::Public => json!([]),
                _ => json!([{"bearer": []}]),
            },
        );
        if let Value::Object(methods) = entry {
            methods.insert(
                route.method.openapi_key().to_owned(),
                Value::Object(operation),
            );
        }
    }
    let mut schemas = Map::new();
    for name in TYPE_NAMES {
        let mut schema = crate::schema::of(name).unwrap_or_else(|| json!({"type": "object"}));
        schema["description"] = json!(format!("cutover_api::types::{name}"));
        schemas.insert((*name).to_owned(), schema);
    }
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    schemas.insert(
        "ErrorBody".into(),
        json!({
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "enum": codes},
                "message": {"type": "string"}
            }}}
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "cutover control API", "version": version, "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "A token from `cutover token create NAME --scope read|probe|admin`; scopes nest (admin ⊇ probe ⊇ read), and `x-scope` names what each operation needs."}}
        }
    })
}

/// What the document says of the whole API.
const DESCRIPTION: &str = "Scopes nest: admin ⊇ probe ⊇ read. A read token reads; a probe token \
may also make the server connect out (check, verify, plan), to the names and addresses the stored \
zones and migrations name and to `[http] probe_allow`; an admin token may change everything and probe \
anything. Every error, whatever refused the request, is `{\"error\": {\"code\", \"message\"}}`; \
a 429 comes with Retry-After.";

/// A reference to a schema of the components.
fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The `{name}` segments of a path.
pub fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// Every (METHOD, path) the document lists, for the tests that hold it
/// against the router.
pub fn operations(document: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        for (path, methods) in paths {
            if let Some(methods) = methods.as_object() {
                for method in methods.keys() {
                    out.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_and_nothing_else() {
        let document = document("test");
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
    }

    #[test]
    fn every_referenced_schema_exists() {
        let document = document("test");
        let text = document.to_string();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                document["components"]["schemas"].get(&name).is_some(),
                "expected a schema {name}, seen none"
            );
        }
    }

    #[test]
    fn bounded_routes_document_the_429_and_its_retry_after() {
        let document = document("test");
        let verify = &document["paths"]["/api/v1/checks/verify"]["post"];
        assert_eq!(verify["x-scope"], "probe", "expected verify to need probe");
        assert!(
            verify["responses"]["429"]["headers"]["Retry-After"].is_object(),
            "expected a 429 with Retry-After on verify, seen {}",
            verify["responses"]
        );
        let zones = &document["paths"]["/api/v1/zones"]["get"];
        assert!(
            zones["responses"].get("429").is_none(),
            "expected no 429 on the zone list, seen {}",
            zones["responses"]
        );
        let codes = &document["components"]["schemas"]["ErrorBody"]["properties"]["error"]
            ["properties"]["code"]["enum"];
        for code in [
            "too_many_requests",
            "too_large",
            "method_not_allowed",
            "unsupported_media_type",
        ] {
            assert!(
                codes
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c == code)),
                "expected {code} among the error codes, seen {codes}"
            );
        }
    }

    #[test]
    fn path_parameters_are_declared() {
        let document = document("test");
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
}
