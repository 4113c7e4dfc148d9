//! cutover's authoritative nameserver.
//!
//! ```text
//!  Zone ──build──▶ ZoneSnapshot ─┐
//!                                ├─▶ Catalog ──(ArcSwap, no lock)──▶ answer(&Catalog, query) ──▶ response
//!  Zone ──build──▶ ZoneSnapshot ─┘                                        ▲
//!                                               server: UDP workers / TCP ┘
//!                                                 │ primary::routed (UPDATE, NOTIFY, AXFR/IXFR, TSIG)
//!                                                 ▼
//!                                   Primary::handle (tsig, update, transfer) ──▶ responses
//! ```

pub mod answer;
pub mod catalog;
pub mod metrics;
pub mod primary;
pub mod rrl;
pub mod server;
pub mod snapshot;
pub mod transfer;
pub mod tsig;
pub mod update;
pub mod wire;

pub use answer::{answer, Transport};
pub use catalog::Catalog;
pub use primary::Primary;
pub use snapshot::ZoneSnapshot;
