//! The server side: verifying a received request and signing what is sent
//! back, in the order RFC 8945 §5.2 gives (the MAC checked before the time).
//!
//! ```text
//!  request bytes ──find TSIG── none ─────────────────────────────▶ Unsigned (policy decides)
//!        │ not last / twice / bad RDATA ────────────────────────▶ FORMERR, no TSIG
//!        ▼
//!   key known? ── no ──▶ BADKEY (unsigned)
//!   algorithm = key's? ── no ──▶ BADKEY (unsigned)
//!   MAC size ≤ output? ── no ──▶ FORMERR, never signed
//!   MAC size ≥ max(10, output/2)? ── no ──▶ FORMERR
//!   MAC verifies (constant time)? ── no ──▶ BADSIG (unsigned)
//!   |now − time| ≤ fudge? ── no ──▶ BADTIME (signed, our time in Other Data)
//!        ▼
//!   Signed(ResponseSigner) ──sign each response message──▶ TSIG'd bytes
//! ```
//!
//! The MAC is checked before the time (Knot CVE-2017-11104), and nothing an
//! attacker without the key can provoke is signed (BIND CVE-2017-3143).

use std::sync::Arc;

use super::key::{Key, KeyRing};
use super::record::{self, Malformed, TsigFields};
use super::sign::{append_unsigned, sign, Prefix, SignError, Variables, FUDGE};

/// RCODE FORMERR.
pub const FORMERR: u8 = 1;
/// RCODE NOTAUTH, which every TSIG error is answered with.
pub const NOTAUTH: u8 = 9;
/// TSIG error BADSIG.
pub const BADSIG: u16 = 16;
/// TSIG error BADKEY.
pub const BADKEY: u16 = 17;
/// TSIG error BADTIME.
pub const BADTIME: u16 = 18;

/// A request that verified, or that carried no TSIG.
#[derive(Debug)]
pub enum Verified {
    /// No TSIG record: whether that is allowed is the caller's policy.
    Unsigned,
    /// Signed with a known key and verified: sign the response with this.
    Signed(ResponseSigner),
}

/// Why a request was refused, with what the answer needs.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The message or its TSIG cannot be read, or the MAC size is out of
    /// bounds: FORMERR, no TSIG in the answer.
    #[error("malformed TSIG: {0}")]
    Malformed(#[from] Malformed),
    /// Unknown key, or an algorithm other than the key's: NOTAUTH/BADKEY, unsigned.
    #[error("TSIG key {} with algorithm {} is not known (BADKEY)", wire_text(.0.key_name.as_slice()), wire_text(.0.algorithm.as_slice()))]
    BadKey(Echo),
    /// The MAC does not verify: NOTAUTH/BADSIG, unsigned.
    #[error("TSIG signature of key {} does not verify (BADSIG)", wire_text(.0.key_name.as_slice()))]
    BadSig(Echo),
    /// The MAC verifies but the time is outside the fudge: NOTAUTH/BADTIME,
    /// signed, with our time.
    #[error("TSIG time {request_time} is more than {fudge} s from ours, {our_time} (BADTIME)")]
    BadTime {
        /// Signs the answer (the request MAC verified).
        signer: ResponseSigner,
        /// The request's Time Signed.
        request_time: u64,
        /// The request's fudge.
        fudge: u16,
        /// Our clock at verification.
        our_time: u64,
    },
}

/// The parts of a refused request's TSIG an unsigned answer echoes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Echo {
    /// The key name, lowercase wire form.
    key_name: Vec<u8>,
    /// The algorithm name, lowercase wire form.
    algorithm: Vec<u8>,
    /// The request's fudge.
    fudge: u16,
}

/// Signs the response messages to one verified request: the first with the
/// request MAC and all variables, every later one (a TCP stream such as
/// AXFR) with the prior MAC and the timers (RFC 8945 §5.3.1).
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseSigner {
    /// The request's key.
    key: Arc<Key>,
    /// The request MAC, then the MAC of the last message signed.
    prior_mac: Vec<u8>,
    /// Whether a message has been signed yet.
    started: bool,
}

/// Verifies the request `message` against `keys` at time `now` (seconds
/// since the epoch). See the module doc for the order of the checks.
pub fn verify_request(message: &[u8], keys: &KeyRing, now: u64) -> Result<Verified, Rejection> {
    let Some(tsig) = record::find(message)? else {
        return Ok(Verified::Unsigned);
    };
    let echo = || Echo {
        key_name: tsig.key_name.clone(),
        algorithm: tsig.algorithm.clone(),
        fudge: tsig.fudge,
    };
    let Some(key) = keys.get_wire(&tsig.key_name) else {
        return Err(Rejection::BadKey(echo()));
    };
    if key.algorithm.wire_name() != tsig.algorithm.as_slice() {
        return Err(Rejection::BadKey(echo()));
    }
    let (len, max, min) = (
        tsig.mac.len(),
        key.algorithm.output_len(),
        key.algorithm.min_mac_len(),
    );
    if len > max {
        return Err(Malformed::MacTooLong { len, max }.into());
    }
    if len < min {
        return Err(Malformed::MacTooShort { len, min }.into());
    }
    let mut state = key.algorithm.mac(&key.secret);
    record::digest_message(&mut state, message, &tsig);
    record::digest_variables(&mut state, &fields_of(&tsig));
    if !state.verify(tsig.mac) {
        return Err(Rejection::BadSig(echo()));
    }
    let signer = ResponseSigner {
        key: Arc::clone(key),
        prior_mac: tsig.mac.to_vec(),
        started: false,
    };
    if now.abs_diff(tsig.time_signed) > u64::from(tsig.fudge) {
        return Err(Rejection::BadTime {
            signer,
            request_time: tsig.time_signed,
            fudge: tsig.fudge,
            our_time: now,
        });
    }
    Ok(Verified::Signed(signer))
}

/// The signed fields of a received TSIG, for the digest.
pub(crate) fn fields_of<'a>(tsig: &'a record::TsigRecord<'_>) -> TsigFields<'a> {
    TsigFields {
        key_name: &tsig.key_name,
        algorithm: &tsig.algorithm,
        time_signed: tsig.time_signed,
        fudge: tsig.fudge,
        original_id: tsig.original_id,
        error: tsig.error,
        other: tsig.other,
    }
}

impl Rejection {
    /// The RCODE of the answer: FORMERR or NOTAUTH.
    pub fn rcode(&self) -> u8 {
        match self {
            Rejection::Malformed(_) => FORMERR,
            _ => NOTAUTH,
        }
    }

    /// The TSIG error of the answer, if it carries a TSIG.
    pub fn tsig_error(&self) -> Option<u16> {
        match self {
            Rejection::Malformed(_) => None,
            Rejection::BadKey(_) => Some(BADKEY),
            Rejection::BadSig(_) => Some(BADSIG),
            Rejection::BadTime { .. } => Some(BADTIME),
        }
    }

    /// Turns `response` (the answer the caller built: the request's ID and
    /// question, no TSIG) into the error answer: sets its RCODE and appends
    /// the TSIG the RFC asks for — none for FORMERR, an unsigned one (MAC
    /// Size 0) for BADKEY and BADSIG, a signed one with our time in Other
    /// Data for BADTIME.
    pub fn answer(&self, response: &mut Vec<u8>, now: u64) -> Result<(), SignError> {
        if response.len() < 12 {
            return Err(SignError::Header(response.len()));
        }
        response[3] = (response[3] & 0xf0) | self.rcode();
        match self {
            Rejection::Malformed(_) => Ok(()),
            Rejection::BadKey(echo) | Rejection::BadSig(echo) => {
                let fields = TsigFields {
                    key_name: &echo.key_name,
                    algorithm: &echo.algorithm,
                    time_signed: now,
                    fudge: echo.fudge,
                    original_id: 0,
                    error: self.tsig_error().unwrap_or(BADSIG),
                    other: &[],
                };
                append_unsigned(response, fields)
            }
            Rejection::BadTime {
                signer,
                request_time,
                ..
            } => {
                if now > record::TIME_MAX {
                    return Err(SignError::Clock(now));
                }
                let ours = now.to_be_bytes();
                let key_name = signer.key.wire_name();
                let fields = TsigFields {
                    key_name: &key_name,
                    algorithm: signer.key.algorithm.wire_name(),
                    time_signed: *request_time,
                    fudge: FUDGE,
                    original_id: 0,
                    error: BADTIME,
                    other: &ours[2..],
                };
                let prefix = Prefix::Mac(&signer.prior_mac);
                sign(response, &signer.key, prefix, Variables::All, fields).map(drop)
            }
        }
    }
}

impl ResponseSigner {
    /// The key the request was signed with (for ACL checks).
    pub fn key(&self) -> &Arc<Key> {
        &self.key
    }

    /// The request MAC, as received (possibly truncated).
    pub fn request_mac(&self) -> Option<&[u8]> {
        (!self.started).then_some(self.prior_mac.as_slice())
    }

    /// Signs the next response message at `now`: the first with the request
    /// MAC and all variables, later ones as TCP continuations (prior MAC and
    /// timers). Call it for every message of a stream, in order.
    pub fn sign(&mut self, message: &mut Vec<u8>, now: u64) -> Result<(), SignError> {
        let key_name = self.key.wire_name();
        let fields = TsigFields {
            key_name: &key_name,
            algorithm: self.key.algorithm.wire_name(),
            time_signed: now,
            fudge: FUDGE,
            original_id: 0,
            error: 0,
            other: &[],
        };
        let variables = if self.started {
            Variables::Timers
        } else {
            Variables::All
        };
        let prefix = Prefix::Mac(&self.prior_mac);
        let mac = sign(message, &self.key, prefix, variables, fields)?;
        self.prior_mac = mac;
        self.started = true;
        Ok(())
    }
}

impl std::fmt::Debug for ResponseSigner {
    /// Names the key, never the secret or MACs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseSigner")
            .field("key", &self.key.name.to_ascii())
            .field("started", &self.started)
            .finish()
    }
}

/// A lowercase wire name as dotted text, for error messages.
pub(crate) fn wire_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            break;
        }
        let label = wire.get(at + 1..at + 1 + len as usize).unwrap_or(&[]);
        out.extend(
            label
                .iter()
                .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' }),
        );
        out.push('.');
        at += 1 + len as usize;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}
