//! Bearer-token authentication of the guarded routes.
//!
//! ```text
//!  no Authorization header ──▶ 401 unauthenticated
//!  unknown or revoked token ──▶ 401 bad_token
//!  a token whose scope is below the route's ──▶ 403 forbidden
//!  otherwise ──▶ the handler, with the Caller in the request's extensions
//!  bounded routes ──Budget::take──▶ over the bound: 429 + Retry-After;
//!                  else the permit is held until the answer is sent
//! ```

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cutover_api::{ErrorCode, Scope, WhoAmI};

use super::blocking::blocking;
use super::budget::Work;
use super::caller::Caller;
use super::connections::Held;
use super::control::Control;
use super::error::ApiError;

/// The token in an `Authorization: Bearer …` header.
fn bearer(request: &Request) -> Option<String> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (kind, token) = value.trim().split_once(' ')?;
    kind.eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|token| !token.is_empty())
}

/// Lets the request through when its token allows `scope`.
pub async fn require(
    State((control, scope)): State<(Control, Scope)>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(&request) else {
        return ApiError::new(
            ErrorCode::Unauthenticated,
            "this route needs an `Authorization: Bearer TOKEN` header (make one with `cutover token create`)",
        )
        .into_response();
    };
    let tokens = control.tokens.clone();
    let found = blocking(move || {
        tokens
            .lookup(&token)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await;
    let (name, granted) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return ApiError::new(ErrorCode::BadToken, "the token is unknown or revoked")
                .into_response()
        }
        Err(error) => return error.into_response(),
    };
    if !granted.allows(scope) {
        return ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "the token {name:?} is {}; this route needs {}",
                granted.as_str(),
                scope.as_str()
            ),
        )
        .into_response();
    }
    request.extensions_mut().insert(Caller {
        name,
        scope: granted,
    });
    next.run(request).await
}

/// Takes a unit of `work` from the budget for the caller (set by
/// [`require`], which runs first) and holds it until the answer has been
/// sent to its end (an event stream: until it closes).
pub async fn bounded(
    State((control, work)): State<(Control, Work)>,
    request: Request,
    next: Next,
) -> Response {
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return ApiError::internal("a bounded route without a token check").into_response();
    };
    let permit = match control.budget.take(&caller, work) {
        Ok(permit) => permit,
        Err(error) => return error.into_response(),
    };
    next.run(request)
        .await
        .map(|body| axum::body::Body::new(Held::new(body, permit)))
}

/// `GET /api/v1/whoami`.
pub async fn whoami(Extension(caller): Extension<Caller>) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: caller.name,
        scope: caller.scope.as_str().to_owned(),
    })
}
