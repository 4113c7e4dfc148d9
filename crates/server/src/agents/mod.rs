//! Probe agents: `cutover agent` processes at other locations that poll
//! serve's control plane for checks, and serve's side of them.
//!
//! ```text
//!  cutover agent --location fra1 (client) ──HTTPS, agent token──▶ serve's /api/v1/agents/poll|results
//!                                                                      │
//!  serve: board (agents seen, jobs queued per location, leases) ◀──────┘
//!         located (LocatedChecks: local probes + board.dispatch) ◀── the scheduler's migrations, /api/v1/checks/from,
//!                                                                   the propagation matrix
//! ```

pub mod board;
pub mod client;
pub mod located;
