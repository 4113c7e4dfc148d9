//! The mail relay: a backup MX that accepts mail for the domains being
//! moved, holds it on disk while their mail server is away, and delivers it
//! to wherever the server is now.
//!
//! ```text
//!  client ─► server ─► Session (pure) ─► Spool (fsync, then 250)
//!                                           │
//!                          Queue (schedule, hold, retarget, DSN)
//!                                           │
//!                                  Courier (SMTP client) ─► destination
//!
//!  MailControl (CLI, HTTP API, migrations) ─► control.sock ─► Relay::control
//! ```

pub mod address;
pub mod control;
pub mod courier;
pub mod data;
pub mod dsn;
pub mod envelope;
pub mod policy;
pub mod queue;
pub mod recipients;
pub mod reply;
pub mod server;
pub mod session;
pub mod spool;

pub use control::{
    Answer, ControlError, MailControl, MetricsView, QueuedMessage, QueuedRecipient, Request,
    Retargeted,
};
pub use courier::{Content, Courier, Parcel, Probe, SmtpCourier, TlsPolicy};
pub use envelope::{DsnReturn, Envelope, Notify, Recipient};
pub use policy::{Admission, Policy, RelayDomain};
pub use queue::{Batch, Destination, Effect, Item, Outcome, Queue, Schedule, Selector};
pub use reply::Reply;
pub use server::{Metrics, Relay, RelayConfig, RelayError};
pub use session::{Event, Message, Session, SpoolRefusal, Verdict};
pub use spool::{DeliveryState, Incoming, RecipientStatus, Spool, SpoolError, Spooled};
