//! Fuzzes TSIG verification: any bytes as a request, then as a response to a
//! signed request and as the next message of a stream. Nothing may panic or
//! hang; a refusal must be answerable (its answer signs or fails cleanly),
//! and a verified request's signer must sign a response.

#![no_main]

use std::sync::{Arc, OnceLock};

use cutover_nameserver::tsig::{sign_request, verify_request, Key, KeyRing, Verified};

/// The clock of the run.
const NOW: u64 = 1_700_000_000;

/// The key the fuzzed messages are checked against.
fn key() -> &'static Arc<Key> {
    static KEY: OnceLock<Arc<Key>> = OnceLock::new();
    KEY.get_or_init(|| {
        Arc::new(Key::from_text("k.example.", "hmac-sha256", "c2VjcmV0c2VjcmV0").unwrap())
    })
}

/// A ring holding [`key`].
fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| KeyRing::from_keys([(**key()).clone()]).unwrap())
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match verify_request(data, ring(), NOW) {
        Ok(Verified::Signed(mut signer)) => {
            let mut response = data.to_vec();
            // A signer may refuse (too long, ARCOUNT full) but never panic.
            let _ = signer.sign(&mut response, NOW);
        }
        Ok(Verified::Unsigned) => {}
        Err(rejection) => {
            let mut response = data.to_vec();
            let _ = rejection.answer(&mut response, NOW);
        }
    }
    // As a response (and a second stream message) to a query we signed.
    let mut query = vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut verifier = sign_request(&mut query, Arc::clone(key()), NOW).unwrap();
    let _ = verifier.verify(data, NOW);
    let _ = verifier.verify(data, NOW);
    let _ = verifier.finish();
});
