//! `cutover check` and `cutover verify` through the API: this binary runs
//! the command as a child process with `--json` and the API returns its
//! document and verdict, so the observations are exactly the CLI's.
//!
//! ```text
//!  CheckRequest ──validate (no value may start with '-')──▶ argv
//!  VerifyRequest ──read by clap as the child will (no --ca-file)──▶ argv
//!     ──timeout above [http] probe_timeout──▶ 400
//!     ──a probe token: every target the argv names held against the site's targets──▶ 403 + reason
//!     ──▶ /proc/self/exe check|verify --json … (stopped at probe_timeout: 504)
//!     exit 0 ─▶ ok: true │ exit 1 ─▶ ok: false │ exit 2 ─▶ 400 with the command's message
//! ```

use std::ffi::OsString;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use cutover_api::{CheckRequest, CheckResult, VerifyRequest};

use super::caller::Caller;
use super::control::Control;
use super::error::{parse_body, ApiError, ApiResult};
use super::probes;
use super::tokens::TokenScope;

/// The services `verify` knows.
const VERIFY_KINDS: &[&str] = &["http", "smtp", "tcp", "imap", "pop3", "mail"];

/// `check`'s timeout per reply when the request gives none.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Refuses a value that the command line would read as an option.
fn plain<'a>(what: &str, value: &'a str) -> Result<&'a str, ApiError> {
    if value.is_empty() || value.starts_with('-') || value.contains('\0') {
        return Err(ApiError::bad_request(format!("invalid {what} {value:?}")));
    }
    Ok(value)
}

/// The command line of a check request.
fn check_args(request: &CheckRequest) -> Result<Vec<String>, ApiError> {
    let mut args = vec!["check".to_owned(), "--json".to_owned()];
    for rtype in &request.types {
        args.push(format!("--type={}", plain("type", rtype)?));
    }
    for resolver in &request.resolvers {
        args.push(format!("--resolver={}", plain("resolver", resolver)?));
    }
    for server in &request.servers {
        args.push(format!("--authority={}", plain("server", server)?));
    }
    if let Some(port) = request.port {
        args.push(format!("--port={port}"));
    }
    if let Some(timeout) = &request.timeout {
        args.push(format!("--timeout={}", plain("timeout", timeout)?));
    }
    for [name, rtype, value] in &request.expect {
        args.push("--expect".to_owned());
        args.push(plain("expected name", name)?.to_owned());
        args.push(plain("expected type", rtype)?.to_owned());
        args.push(plain("expected value", value)?.to_owned());
    }
    args.push("--".to_owned());
    args.push(plain("zone", &request.zone)?.to_owned());
    for name in &request.names {
        args.push(plain("name", name)?.to_owned());
    }
    Ok(args)
}

/// Runs this binary with `args` and reads its JSON verdict.
async fn run(args: Vec<String>, deadline: Duration) -> Result<CheckResult, ApiError> {
    let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
    let output = probes::run_child(&argv, None, deadline).await?;
    let code = output.status.code();
    if code == Some(2) || (code != Some(0) && output.stdout.is_empty()) {
        let message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(ApiError::bad_request(message));
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| ApiError::internal(format!("cutover {} gave no JSON: {e}", args[0])))?;
    Ok(CheckResult {
        ok: code == Some(0),
        report,
    })
}

/// Checks a check request against the bounds and, for a token below admin,
/// against the targets it may reach; then runs `cutover check --json`.
pub async fn run_check(
    control: &Control,
    caller: &Caller,
    request: &CheckRequest,
) -> Result<CheckResult, ApiError> {
    let args = check_args(request)?;
    let timeout = match &request.timeout {
        Some(text) => cutover_api::verify::timeout(text)
            .map_err(|e| ApiError::bad_request(format!("timeout: {e}")))?,
        None => CHECK_TIMEOUT,
    };
    control.probes.check_timeout(timeout)?;
    if caller.scope != TokenScope::Admin {
        let targets = control.probes.targets(&control.store).await?;
        probes::check_request(&targets, request)?;
    }
    run(args, control.probes.timeout).await
}

/// `POST /api/v1/checks/check`.
pub async fn check(
    State(control): State<Control>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<CheckResult> {
    let request: CheckRequest = parse_body(&body)?;
    Ok(Json(run_check(&control, &caller, &request).await?))
}

/// `POST /api/v1/checks/verify`.
pub async fn verify(
    State(control): State<Control>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<CheckResult> {
    let request: VerifyRequest = parse_body(&body)?;
    if !VERIFY_KINDS.contains(&request.kind.as_str()) {
        return Err(ApiError::bad_request(format!(
            "unknown service {:?} (one of {})",
            request.kind,
            VERIFY_KINDS.join(", ")
        )));
    }
    let mut args = vec![
        "verify".to_owned(),
        "--json".to_owned(),
        request.kind.clone(),
    ];
    for arg in &request.args {
        if arg.contains('\0') {
            return Err(ApiError::bad_request("an argument holds a NUL byte"));
        }
        // Options that name files on the server are not the API caller's to choose.
        if ["--ca-file", "--config", "--store"]
            .iter()
            .any(|option| arg.starts_with(option))
        {
            return Err(ApiError::bad_request(format!(
                "{arg:?} is not allowed through the API (it names a file on the server)"
            )));
        }
        args.push(arg.clone());
    }
    let parsed = probes::verify_args(&args[1..])?;
    control.probes.check_timeout(parsed.timeout)?;
    if caller.scope != TokenScope::Admin {
        let targets = control.probes.targets(&control.store).await?;
        probes::verify_request(&targets, &parsed)?;
    }
    Ok(Json(run(args, control.probes.timeout).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_like_values_are_refused() {
        let request = CheckRequest {
            zone: "example.com.".into(),
            names: vec!["--watch".into()],
            ..CheckRequest::default()
        };
        assert!(
            check_args(&request).is_err(),
            "expected --watch as a name refused"
        );
        let request = CheckRequest {
            zone: "example.com.".into(),
            names: vec!["www".into()],
            types: vec!["A".into()],
            ..CheckRequest::default()
        };
        let args = check_args(&request).expect("valid request");
        assert_eq!(
            args,
            ["check", "--json", "--type=A", "--", "example.com.", "www"],
            "expected the command line"
        );
    }
}
