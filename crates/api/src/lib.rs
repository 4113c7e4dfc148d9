//! The control API of cutover, in one place: what goes over the wire and
//! where.
//!
//! ```text
//!   routes::ROUTES (method, path, scope, types) ──▶ the server's router (one handler per RouteId)
//!          │                                     └─▶ openapi::document() ──▶ GET /api/v1/openapi.json
//!          ▼                                              ▲ schemas derived from the types (utoipa)
//!   types (serde, ToSchema) ◀── shared ──▶ the CLI's remote client (`cutover --server URL …`)
//! ```
//!
//! Every error is [`ErrorBody`]: `{ "error": { "code": "...", "message": "..." } }`.

pub mod openapi;
pub mod routes;
pub mod types;
pub mod verify;

pub use routes::{Method, Route, RouteId, Scope, ROUTES};
pub use types::*;

/// The prefix of every JSON route.
pub const PREFIX: &str = "/api/v1";
