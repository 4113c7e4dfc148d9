//! The handlers' blocking work (SQLite, child processes, the mail control
//! socket), run off the async threads, on at most [`BLOCKING_THREADS`].

use super::error::ApiError;

/// The most threads the control plane's blocking work (SQLite, the mail
/// control socket) runs on.
pub const BLOCKING_THREADS: usize = 16;

/// Runs blocking work (SQLite, child processes, the mail control socket)
/// off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
}
