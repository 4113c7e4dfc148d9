//! Request bodies, read before a handler sees them: JSON only, within a
//! size and within `[http] body_timeout`; and every error answer of the
//! control plane as the documented JSON, whatever layer gave it.
//!
//! ```text
//!  (after the token check) body ──Content-Type not JSON──▶ 415
//!                               ──over MAX_BODY (declared or read)──▶ 413
//!                               ──not all there within body_timeout──▶ 408
//!                               ──▶ handler, the body in memory
//!  any answer ≥ 400 that is not JSON (axum's extractors, the router's 405)
//!      ──▶ { "error": { "code", "message" } } with the same status and headers
//! ```

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cutover_api::{ErrorBody, ErrorCode};
use futures_util::StreamExt;

use super::error::ApiError;

/// The largest request body the API takes (1 MiB: a migration file, a
/// record change).
pub const MAX_BODY: usize = 1 << 20;

/// The most of a non-JSON error body kept as the message.
const MESSAGE_MOST: usize = 512;

/// True when the headers say JSON (`application/json`, any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/json"))
}

/// An error that also ends the connection (its body is not read to the end).
fn closing(error: ApiError) -> Response {
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The 413.
fn too_large() -> Response {
    closing(ApiError::new(
        ErrorCode::TooLarge,
        format!("the request body is larger than the API takes ({MAX_BODY} bytes)"),
    ))
}

/// Reads the body (JSON, at most [`MAX_BODY`], within `timeout`) and hands
/// the request on with the body in memory.
pub async fn read(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared: Option<usize> = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok());
    let has_body =
        declared.is_some_and(|length| length > 0) || parts.headers.contains_key(TRANSFER_ENCODING);
    let unsupported = || {
        closing(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the request body must be JSON, sent with `Content-Type: application/json`",
        ))
    };
    if has_body && !is_json(&parts.headers) {
        return unsupported();
    }
    if declared.is_some_and(|length| length > MAX_BODY) {
        return too_large();
    }
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let reading = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                closing(ApiError::bad_request(format!(
                    "the request body could not be read: {e}"
                )))
            })?;
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, reading).await {
        Ok(Ok(())) => {}
        Ok(Err(response)) => return response,
        Err(_) => {
            return closing(ApiError::new(
                ErrorCode::RequestTimeout,
                format!("the request body did not arrive within [http] body_timeout ({timeout:?})"),
            ))
        }
    }
    if !bytes.is_empty() && !is_json(&parts.headers) {
        return unsupported();
    }
    next.run(Request::from_parts(parts, Body::from(Bytes::from(bytes))))
        .await
}

/// A handler that panics (a bug) answers the documented JSON error, 500,
/// instead of dropping the connection; the panic is logged and the server
/// goes on.
pub async fn catch_panics(request: Request, next: Next) -> Response {
    use futures_util::FutureExt;
    let route = format!("{} {}", request.method(), request.uri().path());
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            tracing::error!("{route}: the handler panicked ({what}); answered 500");
            ApiError::internal(format!(
                "{route} failed inside the server (a bug, logged); nothing else is affected"
            ))
            .into_response()
        }
    }
}

/// Turns any error answer that is not JSON into the documented JSON error,
/// keeping its status and headers (Allow, Retry-After).
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if status.as_u16() < 400 || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let allowed = parts
        .headers
        .get(axum::http::header::ALLOW)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let message = if status.as_u16() == 405 {
        format!("{method} is not allowed on {path} (allowed: {allowed})")
    } else if !text.is_empty() {
        text.chars().take(MESSAGE_MOST).collect()
    } else {
        format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("error")
        )
    };
    let code = ErrorCode::for_status(status.as_u16());
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let json = Json(ErrorBody::new(code, message)).into_response();
    let (_, body) = json.into_parts();
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn json_is_json_with_or_without_parameters() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers), "expected no content type not JSON");
        for (value, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_the_json_error() {
        async fn broken() -> &'static str {
            panic!("the bug under test")
        }
        let router = axum::Router::new()
            .route("/broken", get(broken))
            .layer(axum::middleware::from_fn(catch_panics));
        let response = router
            .oneshot(
                axum::http::Request::get("/broken")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        assert!(is_json(response.headers()), "expected the JSON error");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let error: cutover_api::ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(error.error.code, ErrorCode::Internal.as_str());
        assert!(error.error.message.contains("GET /broken"), "{error:?}");
    }
}
