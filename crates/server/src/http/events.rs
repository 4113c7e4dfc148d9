//! `GET /api/v1/events`: server-sent events when something changes.
//!
//! ```text
//!  every 500 ms: Store::generation() changed? ──▶ event: zones  data: ZoneList
//!                mail queue listing changed?  ──▶ event: mail   data: MailQueue
//!  first poll: both, so a client starts from the current state
//! ```

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use cutover_api::{MailQueue, ZoneList, ZoneSummary};
use futures_util::stream::{self, Stream};

use super::control::Control;

/// How often the state is looked at.
const POLL: Duration = Duration::from_millis(500);

/// What the stream has sent so far.
struct Seen {
    /// The store generation last sent.
    generation: Option<u64>,
    /// The mail queue last sent, as JSON.
    mail: Option<String>,
    /// Events waiting to go out.
    pending: Vec<Event>,
    /// The first poll goes at once.
    first: bool,
}

/// Looks at the store and the queue; returns the events for what changed.
fn poll(control: &Control, seen: &mut Seen) -> Vec<Event> {
    let mut events = Vec::new();
    if let Ok(generation) = control.store.generation() {
        if seen.generation != Some(generation) {
            seen.generation = Some(generation);
            if let Ok(zones) = control.store.zones() {
                let list = ZoneList {
                    zones: zones
                        .into_iter()
                        .map(|info| ZoneSummary {
                            origin: info.origin.to_string(),
                            serial: info.serial.0,
                            records: info.records,
                            updated_at: info.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                        })
                        .collect(),
                };
                if let Ok(event) = Event::default().event("zones").json_data(&list) {
                    events.push(event);
                }
            }
        }
    }
    if let Some(spool) = &control.mail_spool {
        if let Ok(messages) = cutover_mail::MailControl::new(spool.clone()).queue() {
            let queue = MailQueue { messages };
            let text = serde_json::to_string(&queue).unwrap_or_default();
            if seen.mail.as_deref() != Some(text.as_str()) {
                events.push(Event::default().event("mail").data(text.clone()));
                seen.mail = Some(text);
            }
        }
    }
    events
}

/// `GET /api/v1/events`.
pub async fn stream(
    State(control): State<Control>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let seen = Seen {
        generation: None,
        mail: None,
        pending: Vec::new(),
        first: true,
    };
    let events = stream::unfold((control, seen), |(control, mut seen)| async move {
        loop {
            if let Some(event) = seen.pending.pop() {
                return Some((Ok(event), (control, seen)));
            }
            if !seen.first {
                tokio::time::sleep(POLL).await;
            }
            seen.first = false;
            let looker = control.clone();
            let mut moved = std::mem::replace(
                &mut seen,
                Seen {
                    generation: None,
                    mail: None,
                    pending: Vec::new(),
                    first: false,
                },
            );
            let polled = tokio::task::spawn_blocking(move || {
                let mut events = poll(&looker, &mut moved);
                events.reverse();
                moved.pending = events;
                moved
            })
            .await;
            match polled {
                Ok(back) => seen = back,
                Err(_) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
