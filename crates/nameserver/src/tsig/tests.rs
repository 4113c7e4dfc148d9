//! The TSIG check order, branch by branch, and the sign/verify round trips
//! (single messages, streams, error answers).

use std::sync::Arc;

use super::record::{self, TsigFields};
use super::*;

/// The clock of every test (seconds since the epoch).
const NOW: u64 = 1_700_000_000;

/// A key named `name` with `secret`.
fn key(name: &str, algorithm: Algorithm, secret: &[u8]) -> Arc<Key> {
    let mut name = hickory_proto::rr::Name::from_ascii(name).unwrap();
    name.set_fqdn(true);
    Arc::new(Key {
        name,
        algorithm,
        secret: secret.to_vec(),
    })
}

/// The key the server knows.
fn server_key() -> Arc<Key> {
    key(
        "xfr.example.",
        Algorithm::HmacSha256,
        b"0123456789abcdef0123456789abcdef",
    )
}

/// A ring with the server's key.
fn ring() -> KeyRing {
    KeyRing::from_keys([(*server_key()).clone()]).unwrap()
}

/// A query `example. SOA`, ID 0x1234, no additional records.
fn query() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(b"\x07example\x00\x00\x06\x00\x01");
    m
}

/// A response to [`query`] with one answer record whose RDATA is `marker`.
fn response(marker: u8) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0];
    m.extend_from_slice(b"\x07example\x00\x00\x06\x00\x01");
    m.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 1, marker]);
    m
}

/// [`query`] signed with `key` at `time`.
fn signed_query(key: &Arc<Key>, time: u64) -> (Vec<u8>, ResponseVerifier) {
    let mut m = query();
    let verifier = sign_request(&mut m, Arc::clone(key), time).unwrap();
    (m, verifier)
}

/// Rewrites the TSIG of a signed `message`: `edit` may change its fields
/// and MAC. The result is a message with the edited TSIG, still last.
fn rewrite_tsig(
    message: &[u8],
    edit: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>, &mut Vec<u8>, &mut u64),
) -> Vec<u8> {
    let tsig = record::find(message).unwrap().unwrap();
    let (mut key_name, mut algorithm, mut mac, mut time) = (
        tsig.key_name.clone(),
        tsig.algorithm.clone(),
        tsig.mac.to_vec(),
        tsig.time_signed,
    );
    edit(&mut key_name, &mut algorithm, &mut mac, &mut time);
    let mut out = message[..tsig.start].to_vec();
    let arcount = u16::from_be_bytes([out[10], out[11]]) - 1;
    out[10..12].copy_from_slice(&arcount.to_be_bytes());
    let fields = TsigFields {
        key_name: &key_name,
        algorithm: &algorithm,
        time_signed: time,
        fudge: tsig.fudge,
        original_id: tsig.original_id,
        error: tsig.error,
        other: tsig.other,
    };
    record::append(&mut out, &fields, &mac);
    out
}

/// The request's verdict, or the rejection.
fn verdict(message: &[u8], now: u64) -> Result<Verified, Rejection> {
    verify_request(message, &ring(), now)
}

#[test]
fn valid_request_verifies_and_response_round_trips() {
    let (request, mut client) = signed_query(&server_key(), NOW);
    let Ok(Verified::Signed(mut signer)) = verdict(&request, NOW + 10) else {
        panic!(
            "expected a valid signature, got {:?}",
            verdict(&request, NOW)
        );
    };
    assert_eq!(signer.key().name.to_ascii(), "xfr.example.");
    let mut answer = response(1);
    signer.sign(&mut answer, NOW + 10).unwrap();
    assert_eq!(
        client.verify(&answer, NOW + 11),
        Ok(ResponseStatus::Verified)
    );
    assert_eq!(client.finish(), Ok(()));
}

#[test]
fn unsigned_request_is_unsigned() {
    assert!(matches!(verdict(&query(), NOW), Ok(Verified::Unsigned)));
}

#[test]
fn unknown_key_is_badkey_and_answered_unsigned() {
    let stranger = key("other.example.", Algorithm::HmacSha256, b"0123456789abcdef");
    let (request, mut client) = signed_query(&stranger, NOW);
    let rejection = verdict(&request, NOW).unwrap_err();
    assert!(matches!(rejection, Rejection::BadKey(_)), "{rejection:?}");
    assert_eq!(
        (rejection.rcode(), rejection.tsig_error()),
        (NOTAUTH, Some(BADKEY))
    );
    let mut answer = response(0);
    rejection.answer(&mut answer, NOW).unwrap();
    assert_eq!(answer[3] & 0x0f, NOTAUTH);
    let tsig = record::find(&answer).unwrap().unwrap();
    assert_eq!((tsig.mac.len(), tsig.error), (0, BADKEY), "unsigned BADKEY");
    assert_eq!(tsig.key_name, b"\x05other\x07example\x00");
    assert_eq!(
        client.verify(&answer, NOW),
        Err(ResponseError::Refused(BADKEY))
    );
}

#[test]
fn algorithm_other_than_the_keys_is_badkey() {
    let same_name = key(
        "XFR.example.",
        Algorithm::HmacSha512,
        b"0123456789abcdef0123456789abcdef",
    );
    let (request, _) = signed_query(&same_name, NOW);
    let rejection = verdict(&request, NOW).unwrap_err();
    assert!(matches!(rejection, Rejection::BadKey(_)), "{rejection:?}");
}

#[test]
fn unknown_algorithm_is_badkey() {
    let (request, _) = signed_query(&server_key(), NOW);
    let request = rewrite_tsig(&request, |_, algorithm, _, _| {
        *algorithm = b"\x0bhmac-sha224\x00".to_vec();
    });
    let rejection = verdict(&request, NOW).unwrap_err();
    assert!(matches!(rejection, Rejection::BadKey(_)), "{rejection:?}");
    assert!(rejection.to_string().contains("hmac-sha224"), "{rejection}");
}

#[test]
fn wrong_secret_is_badsig_and_answered_unsigned() {
    let forged = key("xfr.example.", Algorithm::HmacSha256, b"not the secret");
    let (request, _) = signed_query(&forged, NOW);
    let rejection = verdict(&request, NOW).unwrap_err();
    assert!(matches!(rejection, Rejection::BadSig(_)), "{rejection:?}");
    let mut answer = response(0);
    rejection.answer(&mut answer, NOW).unwrap();
    let tsig = record::find(&answer).unwrap().unwrap();
    assert_eq!((tsig.mac.len(), tsig.error), (0, BADSIG), "unsigned BADSIG");
}

#[test]
fn bad_mac_is_reported_before_bad_time() {
    // Knot CVE-2017-11104: a forged request with a skewed clock must not
    // learn BADTIME (and get a signed answer).
    let forged = key("xfr.example.", Algorithm::HmacSha256, b"not the secret");
    let (request, _) = signed_query(&forged, NOW - 1000);
    let rejection = verdict(&request, NOW).unwrap_err();
    assert!(matches!(rejection, Rejection::BadSig(_)), "{rejection:?}");
}

#[test]
fn skewed_clock_is_badtime_signed_with_our_time() {
    let (request, mut client) = signed_query(&server_key(), NOW - 301);
    assert!(matches!(
        verdict(&request, NOW - 1),
        Ok(Verified::Signed(_))
    ));
    let rejection = verdict(&request, NOW).unwrap_err();
    let Rejection::BadTime {
        request_time,
        our_time,
        ..
    } = &rejection
    else {
        panic!("expected BADTIME, got {rejection:?}");
    };
    assert_eq!((*request_time, *our_time), (NOW - 301, NOW));
    let mut answer = response(0);
    rejection.answer(&mut answer, NOW).unwrap();
    assert_eq!(answer[3] & 0x0f, NOTAUTH);
    let tsig = record::find(&answer).unwrap().unwrap();
    assert_eq!(tsig.error, BADTIME);
    assert_eq!(tsig.time_signed, NOW - 301, "Time Signed is the client's");
    assert_eq!(
        tsig.other,
        &NOW.to_be_bytes()[2..],
        "Other Data is our time"
    );
    // The client verifies the signature and learns the server's time.
    assert_eq!(
        client.verify(&answer, NOW - 301),
        Err(ResponseError::ServerBadTime { server_time: NOW })
    );
}

#[test]
fn truncated_mac_within_the_rules_verifies() {
    let (request, _) = signed_query(&server_key(), NOW);
    let request = rewrite_tsig(&request, |_, _, mac, _| mac.truncate(16));
    assert!(matches!(verdict(&request, NOW), Ok(Verified::Signed(_))));
}

#[test]
fn mac_shorter_than_allowed_is_formerr() {
    let (request, _) = signed_query(&server_key(), NOW);
    let request = rewrite_tsig(&request, |_, _, mac, _| mac.truncate(15));
    let rejection = verdict(&request, NOW).unwrap_err();
    assert_eq!(
        rejection,
        Rejection::Malformed(Malformed::MacTooShort { len: 15, min: 16 })
    );
    let empty = rewrite_tsig(&request, |_, _, mac, _| mac.clear());
    assert!(matches!(
        verdict(&empty, NOW),
        Err(Rejection::Malformed(Malformed::MacTooShort { len: 0, .. }))
    ));
}

#[test]
fn oversized_mac_is_formerr_and_never_signed() {
    let (request, _) = signed_query(&server_key(), NOW);
    let request = rewrite_tsig(&request, |_, _, mac, _| mac.push(0));
    let rejection = verdict(&request, NOW).unwrap_err();
    assert_eq!(
        rejection,
        Rejection::Malformed(Malformed::MacTooLong { len: 33, max: 32 })
    );
    assert_eq!((rejection.rcode(), rejection.tsig_error()), (FORMERR, None));
    let mut answer = response(0);
    let before = answer.len();
    rejection.answer(&mut answer, NOW).unwrap();
    assert_eq!(answer.len(), before, "a FORMERR answer carries no TSIG");
    assert_eq!(answer[3] & 0x0f, FORMERR);
}

#[test]
fn tsig_not_last_is_formerr() {
    let (mut request, _) = signed_query(&server_key(), NOW);
    // An OPT record after the TSIG.
    request.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
    request[11] += 1;
    assert!(matches!(
        verdict(&request, NOW),
        Err(Rejection::Malformed(Malformed::NotLast(_)))
    ));
}

#[test]
fn two_tsigs_are_formerr() {
    let (mut request, _) = signed_query(&server_key(), NOW);
    sign_request(&mut request, server_key(), NOW).unwrap();
    assert!(matches!(
        verdict(&request, NOW),
        Err(Rejection::Malformed(Malformed::Twice(_)))
    ));
}

#[test]
fn tsig_in_the_answer_section_is_formerr() {
    let (mut request, _) = signed_query(&server_key(), NOW);
    // Move the record's count from ARCOUNT to ANCOUNT.
    request[7] = 1;
    request[11] = 0;
    assert!(matches!(
        verdict(&request, NOW),
        Err(Rejection::Malformed(Malformed::Section(_)))
    ));
}

#[test]
fn key_is_checked_before_the_mac_size() {
    let stranger = key("other.example.", Algorithm::HmacSha256, b"0123456789abcdef");
    let (request, _) = signed_query(&stranger, NOW);
    let request = rewrite_tsig(&request, |_, _, mac, _| mac.extend([0; 40]));
    assert!(matches!(verdict(&request, NOW), Err(Rejection::BadKey(_))));
}

#[test]
fn changed_id_verifies_through_original_id() {
    let (mut request, _) = signed_query(&server_key(), NOW);
    request[0] ^= 0xff;
    assert!(matches!(verdict(&request, NOW), Ok(Verified::Signed(_))));
    // …but a changed question does not.
    request[13] ^= 0x20;
    request[14] ^= 0x01;
    assert!(matches!(verdict(&request, NOW), Err(Rejection::BadSig(_))));
}

#[test]
fn key_name_in_any_case_and_compressed_verifies() {
    let (request, _) = signed_query(&server_key(), NOW);
    let tsig = record::find(&request).unwrap().unwrap();
    // Re-write the owner as "XFR" + pointer to "example." in the question.
    let mut rebuilt = request[..tsig.start].to_vec();
    rebuilt.extend_from_slice(b"\x03XFR\xc0\x0c");
    rebuilt.extend_from_slice(&request[tsig.start + tsig.key_name.len()..]);
    assert!(matches!(verdict(&rebuilt, NOW), Ok(Verified::Signed(_))));
}

#[test]
fn stream_of_signed_messages_verifies() {
    let (request, mut client) = signed_query(&server_key(), NOW);
    let Ok(Verified::Signed(mut signer)) = verdict(&request, NOW) else {
        panic!("request did not verify");
    };
    for i in 0..5u8 {
        let mut message = response(i);
        signer.sign(&mut message, NOW + u64::from(i)).unwrap();
        assert_eq!(
            client.verify(&message, NOW + u64::from(i)),
            Ok(ResponseStatus::Verified),
            "message {i}"
        );
    }
    assert_eq!(client.finish(), Ok(()));
}

#[test]
fn unsigned_messages_in_a_stream_are_pending_until_signed() {
    let (request, mut client) = signed_query(&server_key(), NOW);
    let Ok(Verified::Signed(mut signer)) = verdict(&request, NOW) else {
        panic!("request did not verify");
    };
    let mut first = response(0);
    signer.sign(&mut first, NOW).unwrap();
    assert_eq!(client.verify(&first, NOW), Ok(ResponseStatus::Verified));
    // Two unsigned messages, then one signed over them (RFC 8945 §5.3.1):
    // build the signature by hand, as the signer signs every message.
    let (two, three) = (response(2), response(3));
    assert_eq!(client.verify(&two, NOW), Ok(ResponseStatus::Pending));
    assert_eq!(client.verify(&three, NOW), Ok(ResponseStatus::Pending));
    assert_eq!(client.finish(), Err(ResponseError::UnsignedEnd));
    let mut four = response(4);
    let first_mac = record::find(&first).unwrap().unwrap().mac.to_vec();
    let mut state = server_key().algorithm.mac(&server_key().secret);
    record::digest_prior_mac(&mut state, &first_mac);
    state.update(&two);
    state.update(&three);
    state.update(&four);
    record::digest_timers(&mut state, NOW, FUDGE);
    let mac = state.finish();
    let name = server_key().wire_name();
    let fields = TsigFields {
        key_name: &name,
        algorithm: Algorithm::HmacSha256.wire_name(),
        time_signed: NOW,
        fudge: FUDGE,
        original_id: 0x1234,
        error: 0,
        other: &[],
    };
    record::append(&mut four, &fields, &mac);
    assert_eq!(client.verify(&four, NOW), Ok(ResponseStatus::Verified));
    assert_eq!(client.finish(), Ok(()));
}

#[test]
fn tampered_or_reordered_stream_message_fails_and_latches() {
    let (request, mut client) = signed_query(&server_key(), NOW);
    let Ok(Verified::Signed(mut signer)) = verdict(&request, NOW) else {
        panic!("request did not verify");
    };
    let messages: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let mut m = response(i);
            signer.sign(&mut m, NOW).unwrap();
            m
        })
        .collect();
    assert_eq!(
        client.verify(&messages[0], NOW),
        Ok(ResponseStatus::Verified)
    );
    // Message 2 before message 1: its prior MAC is not the one we hold.
    assert_eq!(client.verify(&messages[2], NOW), Err(ResponseError::BadSig));
    assert_eq!(client.verify(&messages[1], NOW), Err(ResponseError::Failed));
    // A changed record byte in a fresh exchange.
    let (request, mut client) = signed_query(&server_key(), NOW);
    let Ok(Verified::Signed(mut signer)) = verdict(&request, NOW) else {
        panic!("request did not verify");
    };
    let mut m = response(9);
    signer.sign(&mut m, NOW).unwrap();
    // The last byte of the answer's RDATA (the TSIG starts after it).
    let tsig_start = record::find(&m).unwrap().unwrap().start;
    m[tsig_start - 1] ^= 1;
    assert_eq!(client.verify(&m, NOW), Err(ResponseError::BadSig));
}

#[test]
fn too_many_unsigned_messages_fail() {
    let (request, mut client) = signed_query(&server_key(), NOW);
    let Ok(Verified::Signed(mut signer)) = verdict(&request, NOW) else {
        panic!("request did not verify");
    };
    let mut first = response(0);
    signer.sign(&mut first, NOW).unwrap();
    client.verify(&first, NOW).unwrap();
    for i in 0..client::UNSIGNED_MAX {
        assert_eq!(
            client.verify(&response(1), NOW),
            Ok(ResponseStatus::Pending),
            "{i}"
        );
    }
    assert_eq!(
        client.verify(&response(1), NOW),
        Err(ResponseError::TooManyUnsigned)
    );
}

#[test]
fn unsigned_or_foreign_response_is_refused() {
    let (_, mut client) = signed_query(&server_key(), NOW);
    assert_eq!(
        client.verify(&response(0), NOW),
        Err(ResponseError::Unsigned)
    );
    let (request, mut client) = signed_query(&server_key(), NOW);
    let other = KeyRing::from_keys([Key {
        name: server_key().name.clone(),
        algorithm: Algorithm::HmacSha256,
        secret: b"another secret".to_vec(),
    }])
    .unwrap();
    // A server with another secret for the same name answers BADSIG.
    let rejection = verify_request(&request, &other, NOW).unwrap_err();
    let mut answer = response(0);
    rejection.answer(&mut answer, NOW).unwrap();
    assert_eq!(
        client.verify(&answer, NOW),
        Err(ResponseError::Refused(BADSIG))
    );
}

#[test]
fn response_outside_our_fudge_is_badtime() {
    let (request, mut client) = signed_query(&server_key(), NOW);
    let Ok(Verified::Signed(mut signer)) = verdict(&request, NOW) else {
        panic!("request did not verify");
    };
    let mut answer = response(0);
    signer.sign(&mut answer, NOW + 1000).unwrap();
    assert!(matches!(
        client.verify(&answer, NOW),
        Err(ResponseError::BadTime { signed, .. }) if signed == NOW + 1000
    ));
}

#[test]
fn signing_checks_its_bounds() {
    let mut short = vec![0u8; 5];
    assert_eq!(
        sign_request(&mut short, server_key(), NOW).unwrap_err(),
        SignError::Header(5)
    );
    let mut full = query();
    full[10] = 0xff;
    full[11] = 0xff;
    assert_eq!(
        sign_request(&mut full, server_key(), NOW).unwrap_err(),
        SignError::AdditionalFull
    );
    let mut m = query();
    assert_eq!(
        sign_request(&mut m, server_key(), 1 << 48).unwrap_err(),
        SignError::Clock(1 << 48)
    );
    let mut big = query();
    big.resize(65_500, 0);
    assert!(matches!(
        sign_request(&mut big, server_key(), NOW),
        Err(SignError::TooLong(_))
    ));
    let mut m = query();
    let before = m.len();
    sign_request(&mut m, server_key(), NOW).unwrap();
    assert_eq!(m.len() - before, signature_len(&server_key()));
}

#[test]
fn every_algorithm_round_trips() {
    for algorithm in Algorithm::ALL {
        let k = key("k.example.", algorithm, b"secret");
        let ring = KeyRing::from_keys([(*k).clone()]).unwrap();
        let (request, mut client) = signed_query(&k, NOW);
        let Ok(Verified::Signed(mut signer)) = verify_request(&request, &ring, NOW) else {
            panic!("{algorithm} request did not verify");
        };
        let mut answer = response(0);
        signer.sign(&mut answer, NOW).unwrap();
        assert_eq!(
            client.verify(&answer, NOW),
            Ok(ResponseStatus::Verified),
            "{algorithm}"
        );
    }
}

#[test]
fn mutated_messages_never_panic() {
    // A small deterministic fuzz: flip, cut and extend a signed request.
    let (request, _) = signed_query(&server_key(), NOW);
    let ring = ring();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut outcomes = [0usize; 2];
    for _ in 0..20_000 {
        let mut m = request.clone();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % m.len();
            m[at] = next() as u8;
        }
        if next() % 4 == 0 {
            m.truncate((next() as usize) % (m.len() + 1));
        }
        let ok = verify_request(&m, &ring, NOW).is_ok();
        outcomes[usize::from(ok)] += 1;
    }
    assert!(
        outcomes[0] > 15_000,
        "most mutations must be refused: {outcomes:?}"
    );
}
