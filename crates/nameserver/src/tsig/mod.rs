//! TSIG (RFC 8945): transaction signatures with shared keys, for UPDATE,
//! zone transfers, NOTIFY and `zone import --axfr`. A pure module: bytes and
//! the clock (seconds) in, verdicts and signed bytes out.
//!
//! ```text
//!  server:  request ──verify_request(&KeyRing, now)──▶ Verified::Unsigned
//!                                                   ├─▶ Verified::Signed(ResponseSigner) ──sign(msg, now)…──▶ responses
//!                                                   └─▶ Rejection ──answer(response, now)──▶ FORMERR / NOTAUTH + TSIG
//!  client:  query ──sign_request(key, now)──▶ ResponseVerifier ──verify(msg, now)… finish()
//! ```
//!
//! The order of the checks is the security of this code; see [`server`].
//! Nothing here reads the clock, allocates without bound or panics on input.

pub mod algorithm;
pub mod client;
pub mod key;
pub mod record;
pub mod server;
pub mod sign;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use client::{sign_request, ResponseError, ResponseStatus, ResponseVerifier};
pub use key::{Key, KeyConfig, KeyError, KeyRing};
pub use record::Malformed;
pub use server::{
    verify_request, Rejection, ResponseSigner, Verified, BADKEY, BADSIG, BADTIME, FORMERR, NOTAUTH,
};
pub use sign::{signature_len, SignError, FUDGE};

#[cfg(test)]
mod tests;
