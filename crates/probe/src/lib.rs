//! Probes: what every authoritative server and cache says about a zone, and
//! whether the services at a new address are ready.
//!
//! ```text
//!              ┌──────────── dns::Client (UDP/TCP, concurrent, bounded) ───────────┐
//!  zone ──▶ authority::survey ──▶ AuthoritySurvey ──reference()──▶ caches::judge ──▶ CacheReport
//!                                   (serials, RRsets, flags)         ▲
//!                                      caches::observe (resolvers) ──┘
//!
//!  URL + address ──▶ service::http::fetch ──▶ HttpObservation ──compare──▶ differences
//!  address       ──▶ service::smtp / mailbox / tcp ──▶ observations
//!  domain + IP   ──▶ mail::readiness ──▶ findings (one sentence each, with what to change)
//! ```
//!
//! Every probe returns typed observations; judging them (lagging serials,
//! TTL clamps, stale caches, certificate verdicts, mail findings) is done by
//! pure functions that take the time as an argument, so the migration engine
//! can use the same judgements as its gates.

// Outcomes carry the records and names they are about (hickory names are
// large); they are built once per query and judged on cold paths, so their
// size does not matter more than their readability.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

pub mod authority;
pub mod caches;
pub mod dns;
pub mod mail;
pub mod service;

pub use dns::{Client, Outcome, Query, QueryOptions, Question, Recursion};
