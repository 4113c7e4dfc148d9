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
//! ```

pub mod address;
pub mod courier;
pub mod data;
pub mod dsn;
pub mod envelope;
pub mod policy;
pub mod queue;
pub mod reply;
pub mod server;
pub mod session;
pub mod spool;

pub use courier::{Courier, Parcel, SmtpCourier, TlsPolicy};
pub use envelope::{DsnReturn, Envelope, Notify, Recipient};
pub use policy::{Policy, RelayDomain};
pub use queue::{Batch, Destination, Item, Outcome, Queue, Schedule, Selector};
pub use reply::Reply;
pub use server::{Metrics, Relay, RelayConfig, RelayError};
pub use session::{Event, Message, Session};
pub use spool::{DeliveryState, RecipientStatus, Spool, SpoolError, Spooled};
