//! Signing: appending a TSIG record to a finished message, with its MAC over
//! the digest components RFC 8945 gives for the case at hand.
//!
//! ```text
//!  request:              MAC(message ‖ variables)
//!  response / first:     MAC(request MAC ‖ message ‖ variables)
//!  continuation (§5.3.1): MAC(prior MAC ‖ message ‖ timers)
//!  BADKEY / BADSIG:      no MAC (MAC Size 0), append_unsigned
//! ```

use super::key::Key;
use super::record::{self, TsigFields, TIME_MAX};

/// The fudge cutover writes into the TSIGs it signs (seconds), as BIND and Knot do.
pub const FUDGE: u16 = 300;
/// The largest DNS message (TCP length prefix).
const MESSAGE_MAX: usize = 65535;

/// Why a message could not be signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The message is shorter than a DNS header.
    #[error("message of {0} bytes is shorter than a DNS header")]
    Header(usize),
    /// ARCOUNT is already 65535.
    #[error("the additional section is full (ARCOUNT 65535)")]
    AdditionalFull,
    /// The signed message would exceed 65535 bytes.
    #[error("signed message of {0} bytes exceeds 65535")]
    TooLong(usize),
    /// The clock does not fit in 48 bits.
    #[error("time {0} does not fit the 48-bit Time Signed field")]
    Clock(u64),
}

/// What precedes the message in the digest.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Prefix<'a> {
    /// Nothing: a request.
    None,
    /// The request MAC (a response) or the prior MAC (a continuation).
    Mac(&'a [u8]),
}

/// What follows the message in the digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Variables {
    /// All TSIG variables (requests, responses, first message of a stream).
    All,
    /// Time Signed and Fudge only (later messages of a stream).
    Timers,
}

/// Appends a signed TSIG to `message` and returns the MAC written.
/// `fields.original_id` is taken from the message's ID.
pub(crate) fn sign(
    message: &mut Vec<u8>,
    key: &Key,
    prefix: Prefix<'_>,
    variables: Variables,
    fields: TsigFields<'_>,
) -> Result<Vec<u8>, SignError> {
    let fields = checked_fields(message, fields)?;
    let mut state = key.algorithm.mac(&key.secret);
    if let Prefix::Mac(prior) = prefix {
        record::digest_prior_mac(&mut state, prior);
    }
    state.update(message);
    match variables {
        Variables::All => record::digest_variables(&mut state, &fields),
        Variables::Timers => record::digest_timers(&mut state, fields.time_signed, fields.fudge),
    }
    let mac = state.finish();
    append(message, &fields, &mac)?;
    Ok(mac)
}

/// Appends an unsigned TSIG (MAC Size 0) to `message`, as BADKEY and BADSIG
/// answers carry.
pub(crate) fn append_unsigned(
    message: &mut Vec<u8>,
    fields: TsigFields<'_>,
) -> Result<(), SignError> {
    let fields = checked_fields(message, fields)?;
    append(message, &fields, &[])
}

/// Checks `message` can take a TSIG and returns `fields` with the Original
/// ID set to the message's ID.
fn checked_fields<'a>(message: &[u8], fields: TsigFields<'a>) -> Result<TsigFields<'a>, SignError> {
    if message.len() < 12 {
        return Err(SignError::Header(message.len()));
    }
    if u16::from_be_bytes([message[10], message[11]]) == u16::MAX {
        return Err(SignError::AdditionalFull);
    }
    if fields.time_signed > TIME_MAX {
        return Err(SignError::Clock(fields.time_signed));
    }
    Ok(TsigFields {
        original_id: u16::from_be_bytes([message[0], message[1]]),
        ..fields
    })
}

/// Appends the TSIG record unless the message would outgrow 65535 bytes.
fn append(message: &mut Vec<u8>, fields: &TsigFields<'_>, mac: &[u8]) -> Result<(), SignError> {
    let total = message.len() + record::record_len(fields, mac.len());
    if total > MESSAGE_MAX {
        return Err(SignError::TooLong(total));
    }
    record::append(message, fields, mac);
    Ok(())
}

/// The bytes a TSIG signed with `key` adds to a message (no Other Data),
/// for callers that size responses before signing them.
pub fn signature_len(key: &Key) -> usize {
    let name = key.wire_name();
    let fields = TsigFields {
        key_name: &name,
        algorithm: key.algorithm.wire_name(),
        time_signed: 0,
        fudge: FUDGE,
        original_id: 0,
        error: 0,
        other: &[],
    };
    record::record_len(&fields, key.algorithm.output_len())
}
