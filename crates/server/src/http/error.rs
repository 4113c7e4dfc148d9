//! The control plane's error answer (`{"error":{"code","message"}}` with
//! its status), and the request input that fails as one: a JSON body, a
//! zone name.

use std::str::FromStr;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cutover_api::{ErrorBody, ErrorCode};
use cutover_store::StoreError;
use cutover_zone::Name;

/// An error answer: a code (which decides the status) and a sentence.
#[derive(Debug)]
pub struct ApiError {
    /// What kind of failure.
    pub(super) code: ErrorCode,
    /// For people.
    pub(super) message: String,
    /// Seconds to wait before trying again (`Retry-After`), for a 429.
    pub(super) retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the client when to try again.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// A 400 for input that does not parse or make sense.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    /// A 500 for a failure on our side.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let code = match &error {
            StoreError::ZoneNotFound(_) | StoreError::VersionNotFound { .. } => ErrorCode::NotFound,
            StoreError::Invalid { .. }
            | StoreError::Edit { .. }
            | StoreError::Diff { .. }
            | StoreError::SerialMismatch { .. }
            | StoreError::SerialNotNewer { .. }
            | StoreError::ZoneExists(_) => ErrorCode::Rejected,
            _ => ErrorCode::Internal,
        };
        ApiError::new(code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(ErrorBody::new(self.code, self.message))).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A handler's outcome.
pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// A JSON body parsed by serde, with a JSON error when it does not parse.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))
}

/// A zone apex from a path segment (always absolute).
pub fn zone_name(text: &str) -> Result<Name, ApiError> {
    let mut name = Name::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid zone name {text:?}: {e}")))?;
    name.set_fqdn(true);
    Ok(name)
}
