//! The dashboard at `/`: one HTML page, a style sheet and a script, embedded
//! in the binary (`include_str!`), no framework, nothing fetched from
//! elsewhere. The page reads the JSON API with the token the operator types
//! (kept in `sessionStorage`) and polls it every two seconds: the
//! propagation matrix at the top while a migration runs; each migration
//! with its timeline, each step's evidence and its events (finished ones
//! folded); an admin token's Pause, Resume, Approve and Roll back buttons
//! where they apply, each confirmed, the API's answer shown as it came; and
//! the chart of old and new values over time, drawn as inline SVG from
//! `GET /api/v1/migrations/{id}/observations`, with the switch and the
//! rollback from the events; and the probe agents, online or offline.

use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

/// The page.
const PAGE: &str = include_str!("assets/index.html");
/// The script.
const SCRIPT: &str = include_str!("assets/dashboard.js");
/// The style sheet.
const STYLE: &str = include_str!("assets/dashboard.css");

/// Only this origin: no inline script, nothing from elsewhere.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// `GET /`.
pub async fn page() -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, POLICY),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /dashboard.js`.
pub async fn script() -> Response {
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

/// `GET /dashboard.css`.
pub async fn style() -> Response {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}
