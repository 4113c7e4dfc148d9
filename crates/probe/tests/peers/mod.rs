//! The shared test peers (crate `cutover-peers`), plus a DNS client with
//! short timeouts for local servers.

#![allow(dead_code)]

use std::time::Duration;

pub use cutover_peers::*;
use cutover_probe::dns::{Client, QueryOptions};

/// A client with short timeouts for local servers.
pub fn quick_client() -> Client {
    Client::new(QueryOptions {
        timeout: Duration::from_millis(500),
        attempts: 2,
        ..QueryOptions::default()
    })
}
