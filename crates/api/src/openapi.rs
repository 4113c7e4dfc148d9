//! The OpenAPI 3.1 document, generated: the operations from the route table
//! (every route once, its scope as a security requirement and as
//! `x-scope`, its request body, its answer and the errors it can give), the
//! schemas from the types themselves (`#[derive(ToSchema)]`).
//!
//! ```text
//!  ROUTES ──▶ paths: operation per route (scope, body, 200, errors by status)
//!  types::schemas() (derived) ─┐
//!  served (the server's: the   ├─▶ components.schemas
//!    engine's documents) ──────┘
//!  ErrorCode::ALL ──▶ components.responses: one per error status, body ErrorBody
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr,
    Required, ResponseBuilder, ResponsesBuilder,
};

use crate::routes::{is_bounded, Method, Route, RouteId, Scope, ROUTES};
use crate::types::{schemas, ErrorCode};

/// The document served at `/api/v1/openapi.json`. `served` are the schemas
/// of the bodies another crate owns ([`crate::types::SERVED_ELSEWHERE`]:
/// the migration engine's documents, which the server supplies).
pub fn document(version: &str, served: Vec<(String, RefOr<Schema>)>) -> OpenApi {
    let mut paths = Paths::new();
    for route in ROUTES {
        paths.add_path_operation(
            route.path,
            vec![http_method(route.method)],
            operation(route),
        );
    }
    let mut components = ComponentsBuilder::new()
        .schemas_from_iter(schemas())
        .schemas_from_iter(served)
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `cutover token create NAME --scope read|probe|admin`; scopes nest \
                         (admin ⊇ probe ⊇ read), and `x-scope` names what each operation needs.",
                    ))
                    .build(),
            ),
        );
    for (status, codes) in by_status(ErrorCode::ALL) {
        components = components.response(response_name(status), error_response(status, &codes));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("cutover control API")
                .version(version)
                .description(Some(DESCRIPTION))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

/// What the document says of the whole API.
const DESCRIPTION: &str = "Scopes nest: admin ⊇ probe ⊇ read. A read token reads; a probe token \
may also make the server connect out (check, verify, plan), to the names and addresses the stored \
zones and migrations name and to `[http] probe_allow`; an admin token may change everything and probe \
anything. Every error, whatever refused the request, is `{\"error\": {\"code\", \"message\"}}`; \
a 429 comes with Retry-After.";

/// The OpenAPI method of a table method.
fn http_method(method: Method) -> HttpMethod {
    match method {
        Method::Get => HttpMethod::Get,
        Method::Post => HttpMethod::Post,
        Method::Delete => HttpMethod::Delete,
        Method::Patch => HttpMethod::Patch,
    }
}

/// One route as an operation.
fn operation(route: &Route) -> utoipa::openapi::path::Operation {
    let success = if route.response.contains('/') {
        // A media type: text, or JSON that is no type of ours (this document).
        let kind = if route.response == "application/json" {
            Type::Object
        } else {
            Type::String
        };
        ResponseBuilder::new().description("OK").content(
            route.response,
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(kind)))
                .build(),
        )
    } else {
        ResponseBuilder::new()
            .description("OK")
            .content("application/json", json_of(route.response))
    };
    let mut responses = ResponsesBuilder::new().response("200", success);
    for (status, _) in by_status(error_codes(route)) {
        responses = responses.response(
            status.to_string(),
            Ref::new(format!("#/components/responses/{}", response_name(status))),
        );
    }
    let responses = responses.response(
        "default",
        ResponseBuilder::new()
            .description(
                "Any other error (405 `method_not_allowed` for a method the path does not serve, \
                 500 `internal`), with the same body.",
            )
            .content("application/json", json_of("ErrorBody")),
    );
    let security = match route.scope {
        Scope::Public => vec![],
        _ => vec![SecurityRequirement::new("bearer", Vec::<String>::new())],
    };
    let mut operation = OperationBuilder::new()
        .operation_id(Some(format!("{:?}", route.id)))
        .summary(Some(route.summary))
        .description(Some(scope_sentence(route.scope)))
        .responses(responses.build())
        .securities(Some(security))
        .extensions(Some(
            ExtensionsBuilder::new()
                .add("x-scope", route.scope.as_str())
                .build(),
        ));
    for name in path_parameters(route.path) {
        operation = operation.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    if let Some(request) = route.request {
        operation = operation.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", json_of(request))
                .build(),
        ));
    }
    operation.build()
}

/// Who may call an operation, in a sentence.
fn scope_sentence(scope: Scope) -> &'static str {
    match scope {
        Scope::Public => "No token needed.",
        Scope::Read => "Needs a read, probe or admin token.",
        Scope::Probe => "Needs a probe or admin token (a probe token only to the site's targets).",
        Scope::Admin => "Needs an admin token.",
        Scope::Agent => "Needs an agent token (no other token may, an admin's neither).",
    }
}

/// JSON content of the schema named `name`.
fn json_of(name: &str) -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(name)))
        .build()
}

/// The error codes a route can answer with, besides `internal` and 405
/// (the `default` answer): what its scope, body, path and work allow.
pub fn error_codes(route: &Route) -> BTreeSet<ErrorCode> {
    let mut codes = BTreeSet::new();
    if route.scope != Scope::Public {
        codes.extend([
            ErrorCode::Unauthenticated,
            ErrorCode::BadToken,
            ErrorCode::Forbidden,
        ]);
    }
    if route.request.is_some() {
        codes.extend([
            ErrorCode::BadRequest,
            ErrorCode::RequestTimeout,
            ErrorCode::TooLarge,
            ErrorCode::UnsupportedMediaType,
        ]);
    }
    if path_parameters(route.path).next().is_some() {
        codes.extend([ErrorCode::BadRequest, ErrorCode::NotFound]);
    }
    if is_bounded(route.id) {
        codes.insert(ErrorCode::TooManyRequests);
    }
    use RouteId as R;
    match route.id {
        R::RecordChange
        | R::RrsetPatch
        | R::MailHold
        | R::MailRelease
        | R::MailRetarget
        | R::MailFlush
        | R::MigrationPause
        | R::MigrationResume
        | R::MigrationAbort
        | R::MigrationRollback
        | R::MigrationApprove => {
            codes.insert(ErrorCode::Rejected);
        }
        _ => {}
    }
    if matches!(
        route.id,
        R::MailQueue | R::MailShow | R::MailHold | R::MailRelease | R::MailRetarget | R::MailFlush
    ) {
        codes.insert(ErrorCode::Unavailable);
    }
    if matches!(
        route.id,
        R::CheckRun
            | R::VerifyRun
            | R::MigrationPlan
            | R::MigrationCreate
            | R::MigrationPropagation
    ) {
        codes.insert(ErrorCode::TimedOut);
    }
    codes.remove(&ErrorCode::Internal);
    codes
}

/// Codes grouped by their HTTP status.
fn by_status(codes: impl IntoIterator<Item = ErrorCode>) -> BTreeMap<u16, Vec<ErrorCode>> {
    let mut out: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in codes {
        out.entry(code.status()).or_default().push(code);
    }
    out
}

/// The name of the shared error answer of a status.
fn response_name(status: u16) -> String {
    format!("Error{status}")
}

/// The error answer of a status: its codes, the error body, and for a 429
/// the `Retry-After` header.
fn error_response(status: u16, codes: &[ErrorCode]) -> utoipa::openapi::Response {
    let words: Vec<String> = codes
        .iter()
        .map(|code| format!("`{}`", code.as_str()))
        .collect();
    let mut response = ResponseBuilder::new()
        .description(format!("{status}: {}.", words.join(" or ")))
        .content("application/json", json_of("ErrorBody"));
    if status == 429 {
        response = response.description(format!(
            "{status}: `too_many_requests`: over the work bounds (per token and in total); \
             try again after Retry-After seconds."
        ));
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("Seconds to wait."))
                .build(),
        );
    }
    response.build()
}

/// The `{name}` segments of a path.
pub fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// Every (METHOD, path) a document lists, for the tests that hold it
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
mod tests;
