//! The client side: signing a request and verifying the response to it,
//! a single message or every message of a TCP stream such as an AXFR
//! (RFC 8945 §5.3.1), for `zone import --axfr`, NOTIFY and the tests.
//!
//! ```text
//!  sign_request(query) ──▶ ResponseVerifier
//!      verify(msg 1)  signed: MAC(request MAC ‖ msg ‖ variables)      ──▶ Verified
//!      verify(msg 2)  unsigned: fed into the running MAC (≤ 99 in a row) ──▶ Pending
//!      verify(msg 3)  signed: MAC(prior MAC ‖ msg 2 ‖ msg 3 ‖ timers)    ──▶ Verified
//!      finish()       the last message must have been signed
//! ```
//!
//! The running MAC takes unsigned messages as they come, so memory stays
//! bounded whatever the stream's length. After any error the verifier
//! refuses everything.

use std::sync::Arc;

use super::algorithm::MacState;
use super::key::Key;
use super::record::{self, Malformed, TsigFields};
use super::server::{fields_of, wire_text, BADTIME};
use super::sign::{sign, Prefix, SignError, Variables, FUDGE};

/// How many unsigned messages in a row a stream may carry (RFC 8945 §5.3.1).
pub const UNSIGNED_MAX: usize = 99;

/// Verifies the response (or responses) to one signed request.
pub struct ResponseVerifier {
    /// The request's key.
    key: Arc<Key>,
    /// The request MAC, then the MAC of the last signed message.
    prior_mac: Vec<u8>,
    /// The running MAC since the last signed message (prior MAC and unsigned
    /// messages fed); `None` before the first message.
    running: Option<MacState>,
    /// Unsigned messages since the last signed one.
    unsigned: usize,
    /// Whether an error has been returned.
    failed: bool,
}

/// What one response message was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseStatus {
    /// Signed and verified: it and every message before it are authentic.
    Verified,
    /// Unsigned: authentic only once a later signed message verifies.
    Pending,
}

/// Why a response is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The message or its TSIG cannot be read.
    #[error("malformed response: {0}")]
    Malformed(#[from] Malformed),
    /// The first (or only) message has no TSIG.
    #[error("the response is not signed")]
    Unsigned,
    /// More than 99 unsigned messages in a row.
    #[error("more than {UNSIGNED_MAX} unsigned messages in a row")]
    TooManyUnsigned,
    /// The stream ended on an unsigned message.
    #[error("the last message of the response is not signed")]
    UnsignedEnd,
    /// Signed with another key or algorithm than the request.
    #[error("response signed with key {key} and algorithm {algorithm}, not the request's")]
    WrongKey {
        /// The key name found.
        key: String,
        /// The algorithm found.
        algorithm: String,
    },
    /// The server refused the request with an unsigned TSIG error (BADKEY,
    /// BADSIG…); unauthenticated, so only informative.
    #[error("the server refused the request's signature: TSIG error {0} (unsigned)")]
    Refused(u16),
    /// The server answered BADTIME, signed: our clocks differ.
    #[error("the server's clock ({server_time}) is too far from ours (BADTIME)")]
    ServerBadTime {
        /// The server's time from Other Data (0 if absent).
        server_time: u64,
    },
    /// A signed TSIG error other than BADTIME.
    #[error("the server answered TSIG error {0}")]
    ServerError(u16),
    /// The MAC does not verify.
    #[error("the response's signature does not verify")]
    BadSig,
    /// The response was signed outside the fudge of our clock.
    #[error("the response was signed at {signed}, more than {fudge} s from our {now}")]
    BadTime {
        /// The response's Time Signed.
        signed: u64,
        /// Its fudge.
        fudge: u16,
        /// Our clock.
        now: u64,
    },
    /// An earlier message failed; the stream is not to be trusted.
    #[error("an earlier message of the response failed verification")]
    Failed,
}

/// Signs the request `message` with `key` at `now` and returns the verifier
/// for its response.
pub fn sign_request(
    message: &mut Vec<u8>,
    key: Arc<Key>,
    now: u64,
) -> Result<ResponseVerifier, SignError> {
    let key_name = key.wire_name();
    let fields = TsigFields {
        key_name: &key_name,
        algorithm: key.algorithm.wire_name(),
        time_signed: now,
        fudge: FUDGE,
        original_id: 0,
        error: 0,
        other: &[],
    };
    let mac = sign(message, &key, Prefix::None, Variables::All, fields)?;
    Ok(ResponseVerifier {
        key,
        prior_mac: mac,
        running: None,
        unsigned: 0,
        failed: false,
    })
}

impl ResponseVerifier {
    /// Verifies the next response message at `now`.
    pub fn verify(&mut self, message: &[u8], now: u64) -> Result<ResponseStatus, ResponseError> {
        if self.failed {
            return Err(ResponseError::Failed);
        }
        let result = self.check(message, now);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Checks the stream ended on a signed message.
    pub fn finish(&self) -> Result<(), ResponseError> {
        if self.failed {
            Err(ResponseError::Failed)
        } else if self.running.is_none() {
            Err(ResponseError::Unsigned)
        } else if self.unsigned > 0 {
            Err(ResponseError::UnsignedEnd)
        } else {
            Ok(())
        }
    }

    /// The checks of [`ResponseVerifier::verify`], without the failure latch.
    fn check(&mut self, message: &[u8], now: u64) -> Result<ResponseStatus, ResponseError> {
        let tsig = record::find(message)?;
        let Some(running) = self.running.as_mut() else {
            // The first message: it must be signed, over the request MAC.
            let tsig = tsig.ok_or(ResponseError::Unsigned)?;
            let mut state = self.start_state();
            return self.check_signed(&mut state, message, &tsig, Variables::All, now);
        };
        let Some(tsig) = tsig else {
            self.unsigned += 1;
            if self.unsigned > UNSIGNED_MAX {
                return Err(ResponseError::TooManyUnsigned);
            }
            running.update(message);
            return Ok(ResponseStatus::Pending);
        };
        let mut state = running.clone();
        self.check_signed(&mut state, message, &tsig, Variables::Timers, now)
    }

    /// A MAC state primed with the prior (or request) MAC.
    fn start_state(&self) -> MacState {
        let mut state = self.key.algorithm.mac(&self.key.secret);
        record::digest_prior_mac(&mut state, &self.prior_mac);
        state
    }

    /// Verifies a signed message whose digest so far is in `state`, and on
    /// success starts the running MAC for the next one.
    fn check_signed(
        &mut self,
        state: &mut MacState,
        message: &[u8],
        tsig: &record::TsigRecord<'_>,
        variables: Variables,
        now: u64,
    ) -> Result<ResponseStatus, ResponseError> {
        if tsig.key_name != self.key.wire_name() || tsig.algorithm != self.key.algorithm.wire_name()
        {
            return Err(ResponseError::WrongKey {
                key: wire_text(&tsig.key_name),
                algorithm: wire_text(&tsig.algorithm),
            });
        }
        if tsig.mac.is_empty() && tsig.error != 0 {
            return Err(ResponseError::Refused(tsig.error));
        }
        let algorithm = self.key.algorithm;
        let (len, max, min) = (
            tsig.mac.len(),
            algorithm.output_len(),
            algorithm.min_mac_len(),
        );
        if len > max {
            return Err(Malformed::MacTooLong { len, max }.into());
        }
        if len < min {
            return Err(Malformed::MacTooShort { len, min }.into());
        }
        record::digest_message(state, message, tsig);
        match variables {
            Variables::All => record::digest_variables(state, &fields_of(tsig)),
            Variables::Timers => record::digest_timers(state, tsig.time_signed, tsig.fudge),
        }
        if !state.clone().verify(tsig.mac) {
            return Err(ResponseError::BadSig);
        }
        if tsig.error == BADTIME {
            let server_time = match tsig.other {
                [a, b, c, d, e, f] => u64::from_be_bytes([0, 0, *a, *b, *c, *d, *e, *f]),
                _ => 0,
            };
            return Err(ResponseError::ServerBadTime { server_time });
        }
        if tsig.error != 0 {
            return Err(ResponseError::ServerError(tsig.error));
        }
        if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
            return Err(ResponseError::BadTime {
                signed: tsig.time_signed,
                fudge: tsig.fudge,
                now,
            });
        }
        self.prior_mac = tsig.mac.to_vec();
        self.running = Some(self.start_state());
        self.unsigned = 0;
        Ok(ResponseStatus::Verified)
    }
}

impl std::fmt::Debug for ResponseVerifier {
    /// Names the key and the progress, never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseVerifier")
            .field("key", &self.key.name.to_ascii())
            .field("started", &self.running.is_some())
            .field("unsigned", &self.unsigned)
            .field("failed", &self.failed)
            .finish()
    }
}
