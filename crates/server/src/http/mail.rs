//! The mail queue through the API: every operation is a [`MailControl`]
//! request, the same ones `cutover mail …` and the migration engine make, so
//! a change is on disk (spool controls, message status) before the answer.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use cutover_api::{ErrorCode, MailAction, MailActionResult, MailMessage, MailQueue, MailRetarget};
use cutover_mail::queue::Selector;
use cutover_mail::{ControlError, MailControl};

use super::blocking::blocking;
use super::control::Control;
use super::error::{parse_body, ApiError, ApiResult};

/// The controls of the configured relay, or 503 when mail is not configured.
fn control_of(control: &Control) -> Result<MailControl, ApiError> {
    match &control.mail_spool {
        Some(spool) => {
            let mut mail = MailControl::new(spool.clone());
            mail.timeout = std::time::Duration::from_secs(10);
            Ok(mail)
        }
        None => Err(ApiError::new(
            ErrorCode::Unavailable,
            "mail is not configured in this cutover serve (no [mail] section)",
        )),
    }
}

/// A control error as an API error.
fn control_error(error: ControlError) -> ApiError {
    let code = match &error {
        ControlError::Refused(_) => ErrorCode::Rejected,
        ControlError::NoSpool(_) | ControlError::Unreachable(_) => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, error.to_string())
}

/// The selector of a [`MailAction`]: exactly one of all, domain, message.
fn selector(action: &MailAction) -> Result<Selector, ApiError> {
    match (action.all, &action.domain, &action.message) {
        (true, None, None) => Ok(Selector::All),
        (false, Some(domain), None) if valid_domain(domain) => Ok(Selector::Domain(domain.clone())),
        (false, Some(domain), None) => {
            Err(ApiError::bad_request(format!("invalid domain {domain:?}")))
        }
        (false, None, Some(id)) if !id.is_empty() => Ok(Selector::Message(id.clone())),
        _ => Err(ApiError::bad_request(
            "give exactly one of \"all\": true, \"domain\" or \"message\"",
        )),
    }
}

/// A plausible mail domain (letters, digits, '-', '.'; no empty label).
fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `GET /api/v1/mail/queue`.
pub async fn queue(State(control): State<Control>) -> ApiResult<MailQueue> {
    let mail = control_of(&control)?;
    let messages = blocking(move || mail.queue().map_err(control_error)).await?;
    Ok(Json(MailQueue {
        messages: messages.into_iter().collect(),
    }))
}

/// `GET /api/v1/mail/queue/{id}`.
pub async fn show(
    State(control): State<Control>,
    Path(id): Path<String>,
) -> ApiResult<MailMessage> {
    let mail = control_of(&control)?;
    let message = blocking(move || {
        mail.show(&id).map_err(|error| match error {
            ControlError::Refused(reason) => ApiError::new(ErrorCode::NotFound, reason),
            other => control_error(other),
        })
    })
    .await?;
    Ok(Json(message))
}

/// Which selector operation an action route runs.
#[derive(Clone, Copy)]
enum Operation {
    /// Hold.
    Hold,
    /// Release.
    Release,
    /// Flush.
    Flush,
}

/// Runs a selector operation from a JSON body.
async fn act(control: Control, body: Bytes, operation: Operation) -> ApiResult<MailActionResult> {
    let action: MailAction = parse_body(&body)?;
    let target = selector(&action)?;
    let mail = control_of(&control)?;
    let changed = blocking(move || {
        match operation {
            Operation::Hold => mail.hold(target),
            Operation::Release => mail.release(target),
            Operation::Flush => mail.flush(target),
        }
        .map_err(control_error)
    })
    .await?;
    Ok(Json(MailActionResult {
        changed,
        released: Vec::new(),
        held: Vec::new(),
    }))
}

/// `POST /api/v1/mail/hold`.
pub async fn hold(State(control): State<Control>, body: Bytes) -> ApiResult<MailActionResult> {
    act(control, body, Operation::Hold).await
}

/// `POST /api/v1/mail/release`.
pub async fn release(State(control): State<Control>, body: Bytes) -> ApiResult<MailActionResult> {
    act(control, body, Operation::Release).await
}

/// `POST /api/v1/mail/flush`.
pub async fn flush(State(control): State<Control>, body: Bytes) -> ApiResult<MailActionResult> {
    act(control, body, Operation::Flush).await
}

/// `POST /api/v1/mail/retarget`.
pub async fn retarget(State(control): State<Control>, body: Bytes) -> ApiResult<MailActionResult> {
    let request: MailRetarget = parse_body(&body)?;
    if !valid_domain(&request.domain) {
        return Err(ApiError::bad_request(format!(
            "invalid domain {:?}",
            request.domain
        )));
    }
    if request.destination.trim().is_empty() || request.destination.contains(char::is_whitespace) {
        return Err(ApiError::bad_request(format!(
            "invalid destination {:?} (host, host:port or [v6]:port)",
            request.destination
        )));
    }
    // Held mail stays held unless asked: `release: true` (or the older
    // `keep_held: false`); the two saying opposite things is an error.
    let release = match (request.release, request.keep_held) {
        (Some(release), Some(keep_held)) if release == keep_held => {
            return Err(ApiError::bad_request(
                "\"release\" and \"keep_held\" contradict each other: give one",
            ))
        }
        (Some(release), _) => release,
        (None, Some(keep_held)) => !keep_held,
        (None, None) => false,
    };
    let mail = control_of(&control)?;
    let retargeted = blocking(move || {
        mail.retarget(&request.domain, &request.destination, release)
            .map_err(|error| match error {
                ControlError::Refused(reason) => ApiError::bad_request(reason),
                other => control_error(other),
            })
    })
    .await?;
    Ok(Json(MailActionResult {
        changed: retargeted.due,
        released: retargeted.released,
        held: retargeted.held,
    }))
}
