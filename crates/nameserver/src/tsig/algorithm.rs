//! TSIG algorithms: their names (text and wire), their MAC lengths and the
//! truncation limits of RFC 8945 §5.2.2.1, and an incremental HMAC over any
//! of them.

use std::fmt;
use std::str::FromStr;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};

/// An HMAC algorithm a TSIG key is configured with.
///
/// HMAC-SHA1 and HMAC-MD5 are accepted only for a key configured with them:
/// a request's algorithm must always equal its key's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-MD5 (`hmac-md5.sig-alg.reg.int`), legacy.
    HmacMd5,
    /// HMAC-SHA1, legacy.
    HmacSha1,
    /// HMAC-SHA256, the default.
    HmacSha256,
    /// HMAC-SHA384.
    HmacSha384,
    /// HMAC-SHA512.
    HmacSha512,
}

/// An algorithm name that is not one of [`Algorithm`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown TSIG algorithm {0:?} (expected hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1 or hmac-md5)")]
pub struct UnknownAlgorithm(pub String);

/// The longest MAC any algorithm produces (HMAC-SHA512).
pub const MAC_MAX: usize = 64;

/// A fresh HMAC state of type `$hmac` under `$secret`.
macro_rules! hmac_state {
    ($hmac:ty, $secret:expr) => {
        match <$hmac as KeyInit>::new_from_slice($secret) {
            Ok(state) => state,
            // HMAC accepts keys of every length (longer ones are hashed):
            // `new_from_slice` only fails for MACs with fixed key sizes.
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        }
    };
}

impl Algorithm {
    /// Every algorithm, strongest first.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::HmacSha512,
        Algorithm::HmacSha384,
        Algorithm::HmacSha256,
        Algorithm::HmacSha1,
        Algorithm::HmacMd5,
    ];

    /// The name BIND and Knot use in key files and `-y` options.
    pub fn text(self) -> &'static str {
        match self {
            Algorithm::HmacMd5 => "hmac-md5",
            Algorithm::HmacSha1 => "hmac-sha1",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm name in the TSIG RDATA, as lowercase uncompressed wire bytes.
    pub fn wire_name(self) -> &'static [u8] {
        match self {
            Algorithm::HmacMd5 => b"\x08hmac-md5\x07sig-alg\x03reg\x03int\x00",
            Algorithm::HmacSha1 => b"\x09hmac-sha1\x00",
            Algorithm::HmacSha256 => b"\x0bhmac-sha256\x00",
            Algorithm::HmacSha384 => b"\x0bhmac-sha384\x00",
            Algorithm::HmacSha512 => b"\x0bhmac-sha512\x00",
        }
    }

    /// The algorithm whose wire name is `wire` (lowercased by the caller).
    pub fn from_wire_name(wire: &[u8]) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.wire_name() == wire)
    }

    /// Length in bytes of the untruncated MAC.
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::HmacMd5 => 16,
            Algorithm::HmacSha1 => 20,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }

    /// The shortest MAC accepted: the larger of 10 bytes and half the output
    /// (RFC 8945 §5.2.2.1).
    pub fn min_mac_len(self) -> usize {
        (self.output_len() / 2).max(10)
    }

    /// Whether this is one of the legacy algorithms (MD5, SHA1).
    pub fn is_legacy(self) -> bool {
        matches!(self, Algorithm::HmacMd5 | Algorithm::HmacSha1)
    }

    /// Starts an HMAC under `secret`.
    pub(crate) fn mac(self, secret: &[u8]) -> MacState {
        match self {
            Algorithm::HmacMd5 => MacState::Md5(hmac_state!(Hmac<md5::Md5>, secret)),
            Algorithm::HmacSha1 => MacState::Sha1(hmac_state!(Hmac<sha1::Sha1>, secret)),
            Algorithm::HmacSha256 => MacState::Sha256(hmac_state!(Hmac<sha2::Sha256>, secret)),
            Algorithm::HmacSha384 => MacState::Sha384(hmac_state!(Hmac<sha2::Sha384>, secret)),
            Algorithm::HmacSha512 => MacState::Sha512(hmac_state!(Hmac<sha2::Sha512>, secret)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Reads `hmac-sha256` and friends, case-insensitively, with or without
    /// a trailing dot; `hmac-md5.sig-alg.reg.int` is also read.
    fn from_str(text: &str) -> Result<Algorithm, UnknownAlgorithm> {
        let lower = text.trim_end_matches('.').to_ascii_lowercase();
        let lower = match lower.as_str() {
            "hmac-md5.sig-alg.reg.int" => "hmac-md5",
            other => other,
        };
        Algorithm::ALL
            .into_iter()
            .find(|a| a.text() == lower)
            .ok_or_else(|| UnknownAlgorithm(text.to_string()))
    }
}

/// An HMAC in progress.
#[derive(Clone)]
pub(crate) enum MacState {
    /// HMAC-MD5.
    Md5(Hmac<md5::Md5>),
    /// HMAC-SHA1.
    Sha1(Hmac<sha1::Sha1>),
    /// HMAC-SHA256.
    Sha256(Hmac<sha2::Sha256>),
    /// HMAC-SHA384.
    Sha384(Hmac<sha2::Sha384>),
    /// HMAC-SHA512.
    Sha512(Hmac<sha2::Sha512>),
}

impl MacState {
    /// Feeds `bytes` into the MAC.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            MacState::Md5(m) => m.update(bytes),
            MacState::Sha1(m) => m.update(bytes),
            MacState::Sha256(m) => m.update(bytes),
            MacState::Sha384(m) => m.update(bytes),
            MacState::Sha512(m) => m.update(bytes),
        }
    }

    /// The full MAC.
    pub(crate) fn finish(self) -> Vec<u8> {
        match self {
            MacState::Md5(m) => m.finalize().into_bytes().to_vec(),
            MacState::Sha1(m) => m.finalize().into_bytes().to_vec(),
            MacState::Sha256(m) => m.finalize().into_bytes().to_vec(),
            MacState::Sha384(m) => m.finalize().into_bytes().to_vec(),
            MacState::Sha512(m) => m.finalize().into_bytes().to_vec(),
        }
    }

    /// Whether `mac` equals the leading bytes of the computed MAC, compared in
    /// constant time. An empty `mac` or one longer than the output never
    /// matches (callers check the lengths first, this is a second guard).
    pub(crate) fn verify(self, mac: &[u8]) -> bool {
        match self {
            MacState::Md5(m) => m.verify_truncated_left(mac).is_ok(),
            MacState::Sha1(m) => m.verify_truncated_left(mac).is_ok(),
            MacState::Sha256(m) => m.verify_truncated_left(mac).is_ok(),
            MacState::Sha384(m) => m.verify_truncated_left(mac).is_ok(),
            MacState::Sha512(m) => m.verify_truncated_left(mac).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 for HMAC-SHA256 ("Jefe").
    #[test]
    fn hmac_sha256_matches_rfc4231_case_2() {
        let mut mac = Algorithm::HmacSha256.mac(b"Jefe");
        mac.update(b"what do ya want ");
        mac.update(b"for nothing?");
        let out = mac.finish();
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// Truncated comparison accepts a prefix and refuses a changed byte.
    #[test]
    fn verify_compares_the_truncated_prefix() {
        let full = Algorithm::HmacSha512.mac(b"k").finish();
        assert!(Algorithm::HmacSha512.mac(b"k").verify(&full[..32]));
        let mut bad = full[..32].to_vec();
        bad[31] ^= 1;
        assert!(!Algorithm::HmacSha512.mac(b"k").verify(&bad));
        assert!(!Algorithm::HmacSha512.mac(b"k").verify(&[]));
    }

    /// Names round-trip and the truncation floor follows §5.2.2.1.
    #[test]
    fn names_and_limits() {
        for a in Algorithm::ALL {
            assert_eq!(a.text().parse::<Algorithm>(), Ok(a));
            assert_eq!(Algorithm::from_wire_name(a.wire_name()), Some(a));
            assert_eq!(a.mac(b"x").finish().len(), a.output_len());
        }
        assert_eq!("HMAC-MD5.SIG-ALG.REG.INT.".parse(), Ok(Algorithm::HmacMd5));
        assert_eq!(Algorithm::HmacMd5.min_mac_len(), 10);
        assert_eq!(Algorithm::HmacSha1.min_mac_len(), 10);
        assert_eq!(Algorithm::HmacSha256.min_mac_len(), 16);
        assert_eq!(Algorithm::HmacSha512.min_mac_len(), 32);
        assert!("hmac-sha224".parse::<Algorithm>().is_err());
    }
}
