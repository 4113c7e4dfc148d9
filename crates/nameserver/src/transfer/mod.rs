//! Zone transfers: the AXFR client behind `cutover zone import --axfr`, and
//! the AXFR (RFC 5936) and IXFR (RFC 1995) responses a primary sends.
//!
//! ```text
//!  out:  Zone ──axfr_messages──────────────────────▶ [SOA, records…, SOA] in messages ≤ cap
//!        Zone + journal ──ixfr_messages──▶ up to date:  [SOA]
//!                                     ├─▶ journal fits: [SOA, (old SOA, −…, new SOA, +…)…, SOA]
//!                                     └─▶ otherwise:    AXFR form inside the IXFR answer
//!        each message ──ResponseSigner::sign──▶ TSIG'd bytes (leave room: message_limit)
//!
//!  in:   axfr_query ──TCP──▶ server ──messages──▶ AxfrReceiver::receive (TSIG, caps, SOA
//!        first and last) … ──finish──▶ Zone          (fetch_axfr does the TCP part)
//!        soa_serial ──TCP──▶ the primary's serial;  ixfr_query(SOA held) ──TCP──▶
//!        IxfrReceiver::receive … ──finish──▶ UpToDate │ Incremental(steps) │ Full(zone)
//!                                                     (fetch_ixfr; the secondary's refresh)
//! ```
//!
//! The builders and the receivers are pure: no sockets, no clock. Only
//! [`client::fetch_axfr`], [`refresh::fetch_ixfr`] and
//! [`refresh::soa_serial`] do I/O.

pub mod axfr;
pub mod client;
pub mod ixfr;
pub mod message;
pub mod refresh;

pub use axfr::axfr_messages;
pub use client::{
    axfr_query, fetch_axfr, AxfrReceiver, Limits, Progress, Receiver, Transfer, TransferError,
};
pub use ixfr::{ixfr_messages, IxfrForm, IxfrResponse};
pub use message::{message_limit, BuildError, Question};
pub use refresh::{fetch_ixfr, ixfr_query, soa_serial, IxfrAnswer, IxfrReceiver, IxfrTransfer};
