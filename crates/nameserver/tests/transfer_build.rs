//! The AXFR and IXFR response builders and the AXFR receiver, without a
//! network: what the builders pack is parsed back with hickory (SOA first
//! and last, every record once, every message under the cap), signed and
//! verified message by message, and read back by the receiver into the same
//! zone; IXFR is checked against a store's journal of three versions; the
//! receiver refuses the malformed transfers a hostile server could send.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use cutover_nameserver::transfer::{
    axfr_messages, axfr_query, ixfr_messages, message_limit, AxfrReceiver, BuildError, IxfrForm,
    Limits, Progress, Question, TransferError,
};
use cutover_nameserver::tsig::{
    sign_request, verify_request, Key, KeyRing, ResponseStatus, Verified,
};
use cutover_store::Store;
use cutover_zone::{zonefile, Name, Rdata, Record, RecordType, Serial, Zone, ZoneDiff};
use hickory_proto::op::Message;
use hickory_proto::rr::Record as HickoryRecord;

/// A fixed clock for signing (seconds).
const NOW: u64 = 1_700_000_000;

/// A name from text.
fn n(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

/// `example.test.` at `serial` with `hosts` A records, a few other types and
/// long owner names, as a zone file.
fn zone_text(serial: u32, hosts: usize) -> String {
    let mut text = format!(
        "$ORIGIN example.test.\n$TTL 3600\n\
         @ SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ NS ns1\n@ NS ns2.elsewhere.example.\n@ MX 10 mail\n\
         ns1 A 192.0.2.1\nmail A 192.0.2.25\nmail AAAA 2001:db8::25\n\
         @ TXT \"v=spf1 mx -all\"\n_sip._tcp SRV 10 5 5060 sip\nsip A 192.0.2.60\n\
         www CNAME @\nsub NS ns.sub\nns.sub A 192.0.2.53\n\
         a.very.long.owner.name.with.many.labels.to.compress A 192.0.2.99\n"
    );
    for i in 0..hosts {
        text.push_str(&format!(
            "host{i} 600 A 198.51.{}.{}\n",
            (i / 250) % 256,
            i % 250 + 1
        ));
    }
    text
}

/// A zone parsed from [`zone_text`].
fn zone(serial: u32, hosts: usize) -> Zone {
    zonefile::parse_str(&zone_text(serial, hosts), "test.zone", None)
        .expect("the test zone parses")
        .zone
}

/// The AXFR question for the test zone.
fn axfr_question() -> Question {
    Question {
        name: n("example.test."),
        qtype: RecordType::AXFR,
    }
}

/// The test TSIG key.
fn key() -> Arc<Key> {
    Arc::new(
        Key::from_text(
            "xfr.example.",
            "hmac-sha256",
            "q1SXa5nV3l9Mz7K0EYXlPjxfDt6vNfV9v0k1b7GHHgY=",
        )
        .unwrap(),
    )
}

/// Our record from a hickory one.
fn ours(record: &HickoryRecord) -> Record {
    Record {
        name: record.name.clone(),
        ttl: record.ttl,
        rdata: Rdata::from_hickory(&record.data).expect("hickory rdata converts"),
    }
}

/// Parses every message with hickory, checking ID and sections, and returns
/// the answer records in order.
fn answers(messages: &[Vec<u8>], id: u16, question: &Question) -> Vec<Record> {
    let mut records = Vec::new();
    for (i, bytes) in messages.iter().enumerate() {
        let message = Message::from_vec(bytes)
            .unwrap_or_else(|e| panic!("message {i} does not parse with hickory: {e}"));
        assert_eq!(message.metadata.id, id, "message {i}: ID");
        let queries = &message.queries;
        if i == 0 {
            assert_eq!(queries.len(), 1, "the first message carries the question");
            assert_eq!(queries[0].name(), &question.name);
            assert_eq!(queries[0].query_type(), question.qtype);
        } else {
            assert!(queries.is_empty(), "message {i} repeats the question");
        }
        records.extend(message.answers.iter().map(ours));
    }
    records
}

/// Counts of each record (owner lowercased by `Name`'s ordering, type, data, TTL).
fn multiset(records: impl IntoIterator<Item = Record>) -> BTreeMap<(Name, Rdata, u32), usize> {
    let mut counts = BTreeMap::new();
    for r in records {
        *counts.entry((r.name, r.rdata, r.ttl)).or_insert(0) += 1;
    }
    counts
}

/// The SOA serial of a record that must be an SOA.
fn soa_serial(record: &Record) -> u32 {
    record
        .rdata
        .as_soa()
        .unwrap_or_else(|| panic!("expected an SOA, found {record:?}"))
        .serial
}

#[test]
fn axfr_has_soa_first_and_last_every_record_once_and_messages_under_the_cap() {
    let zone = zone(2024010101, 3000);
    let question = axfr_question();
    for cap in [512usize, 4096, 16384, 65535] {
        let messages = axfr_messages(&zone, 0x1234, &question, cap).unwrap();
        for (i, m) in messages.iter().enumerate() {
            assert!(
                m.len() <= cap,
                "cap {cap}: message {i} is {} bytes, more than the cap",
                m.len()
            );
        }
        if cap < 65535 {
            assert!(
                messages.len() > 1,
                "cap {cap}: expected several messages for 3000 records, got {}",
                messages.len()
            );
        }
        let records = answers(&messages, 0x1234, &question);
        let first = records.first().expect("some records");
        let last = records.last().expect("some records");
        assert_eq!(
            first.rdata.rtype(),
            RecordType::SOA,
            "cap {cap}: first record"
        );
        assert_eq!(last, first, "cap {cap}: the last record is the opening SOA");
        assert_eq!(
            records.len(),
            zone.record_count() + 1,
            "cap {cap}: every record once plus the closing SOA"
        );
        let middle = &records[1..records.len() - 1];
        assert!(
            middle.iter().all(|r| r.rdata.rtype() != RecordType::SOA),
            "cap {cap}: an SOA in the middle"
        );
        assert_eq!(
            multiset(records[..records.len() - 1].iter().cloned()),
            multiset(zone.records()),
            "cap {cap}: the records sent are not the zone's"
        );
    }
}

#[test]
fn owner_names_are_compressed() {
    let zone = zone(1, 3000);
    let messages = axfr_messages(&zone, 1, &axfr_question(), 65535).unwrap();
    let total: usize = messages.iter().map(Vec::len).sum();
    // Uncompressed, each hostN A record costs its full owner (~20 bytes)
    // plus 14; compressed, the zone suffix is a 2-byte pointer.
    let uncompressed: usize = zone
        .records()
        .map(|r| r.name.len() + 1 + 10 + r.rdata.wire().len())
        .sum();
    assert!(
        total < uncompressed * 3 / 4,
        "expected compression to save a quarter: {total} bytes sent, {uncompressed} uncompressed"
    );
}

#[test]
fn signed_axfr_verifies_message_by_message_and_reads_back_into_the_same_zone() {
    let zone = zone(7, 3000);
    let key = key();
    let mut query = axfr_query(&n("example.test."), 0x4242);
    let verifier = sign_request(&mut query, key.clone(), NOW).unwrap();
    let ring = KeyRing::from_keys([(*key).clone()]).unwrap();
    let Ok(Verified::Signed(mut signer)) = verify_request(&query, &ring, NOW) else {
        panic!("our signed AXFR query does not verify with our own key");
    };
    let cap = message_limit(Some(&key));
    assert!(cap < 65535, "the limit leaves room for the TSIG: {cap}");
    let mut messages = axfr_messages(&zone, 0x4242, &axfr_question(), cap).unwrap();
    assert!(messages.len() > 1, "3000 records fit one message?");
    for m in &mut messages {
        signer.sign(m, NOW).unwrap();
        assert!(m.len() <= 65535, "a signed message of {} bytes", m.len());
    }
    let mut receiver = AxfrReceiver::new(
        n("example.test."),
        0x4242,
        Some(verifier),
        Limits::default(),
    );
    let last = messages.len() - 1;
    for (i, m) in messages.iter().enumerate() {
        let progress = receiver.receive(m, NOW + 1).unwrap();
        let expected = if i == last {
            Progress::Done
        } else {
            Progress::More
        };
        assert_eq!(progress, expected, "message {i} of {}", messages.len());
    }
    let received = receiver.finish().unwrap();
    assert_eq!(
        received, zone,
        "the zone read back differs from the zone sent"
    );
}

#[test]
fn a_tampered_message_refuses_the_whole_signed_transfer() {
    let zone = zone(7, 2000);
    let key = key();
    let mut query = axfr_query(&n("example.test."), 9);
    let verifier = sign_request(&mut query, key.clone(), NOW).unwrap();
    let ring = KeyRing::from_keys([(*key).clone()]).unwrap();
    let Ok(Verified::Signed(mut signer)) = verify_request(&query, &ring, NOW) else {
        panic!("our signed query does not verify");
    };
    let mut messages = axfr_messages(&zone, 9, &axfr_question(), 8192).unwrap();
    assert!(messages.len() > 2, "expected several messages");
    for m in &mut messages {
        signer.sign(m, NOW).unwrap();
    }
    // Flip one address byte in the second message, well inside its answers.
    let at = messages[1].len() / 2;
    messages[1][at] ^= 0x01;
    let mut receiver = AxfrReceiver::new(n("example.test."), 9, Some(verifier), Limits::default());
    assert_eq!(receiver.receive(&messages[0], NOW).unwrap(), Progress::More);
    let err = receiver.receive(&messages[1], NOW).unwrap_err();
    assert!(
        matches!(err, TransferError::Tsig { message: 2, .. }),
        "expected a TSIG failure on message 2, got {err}"
    );
    assert!(
        receiver.receive(&messages[2], NOW).is_err(),
        "a message after a failure was accepted"
    );
    assert!(
        receiver.finish().is_err(),
        "finish after a failure gave a zone"
    );
}

#[test]
fn an_unsigned_answer_to_a_signed_query_is_refused() {
    let zone = zone(7, 10);
    let mut query = axfr_query(&n("example.test."), 5);
    let verifier = sign_request(&mut query, key(), NOW).unwrap();
    let messages = axfr_messages(&zone, 5, &axfr_question(), 65535).unwrap();
    let mut receiver = AxfrReceiver::new(n("example.test."), 5, Some(verifier), Limits::default());
    let err = receiver.receive(&messages[0], NOW).unwrap_err();
    assert!(
        err.to_string().contains("not signed"),
        "expected 'not signed', got {err}"
    );
}

#[test]
fn a_record_that_fits_no_message_is_an_error_naming_it() {
    let mut zone = zone(1, 0);
    let long = "x".repeat(200);
    let txt = format!("\"{long}\" \"{long}\" \"{long}\"");
    zone.add(Record {
        name: n("big.example.test."),
        ttl: 60,
        rdata: zonefile::rdata_from_text(RecordType::TXT, &txt, &n("example.test.")).unwrap(),
    })
    .unwrap();
    let err = axfr_messages(&zone, 1, &axfr_question(), 512).unwrap_err();
    assert!(
        matches!(&err, BuildError::RecordTooLarge { name, .. } if *name == n("big.example.test.")),
        "expected RecordTooLarge for big.example.test., got {err}"
    );
    assert!(axfr_messages(&zone, 1, &axfr_question(), 4096).is_ok());
}

/// A store with `example.test.` at serials 1, 2 and 3: version 2 changes
/// an address, drops a host and adds one; version 3 changes a TTL.
fn three_versions(dir: &std::path::Path) -> (Store, [Zone; 3]) {
    let store = Store::open(&dir.join("store.db")).unwrap();
    let v1 = zone(1, 50);
    let mut v2 = v1.clone();
    v2.set_serial(Serial(2));
    assert!(v2.remove(&n("host3.example.test."), &Rdata::a([198, 51, 0, 4].into())));
    assert!(v2.remove(&n("mail.example.test."), &Rdata::a([192, 0, 2, 25].into())));
    for (name, addr) in [("mail", [192, 0, 2, 26]), ("new", [203, 0, 113, 1])] {
        v2.add(Record {
            name: n(&format!("{name}.example.test.")),
            ttl: 3600,
            rdata: Rdata::a(addr.into()),
        })
        .unwrap();
    }
    let mut v3 = v2.clone();
    v3.set_serial(Serial(3));
    let mut set = v3
        .get(&n("www.example.test."), RecordType::CNAME)
        .unwrap()
        .clone();
    set.ttl = 60;
    v3.set_rrset(&n("www.example.test."), RecordType::CNAME, set)
        .unwrap();
    store.create_zone(&v1, "v1").unwrap();
    store.replace_zone(&v2, "v2").unwrap();
    store.replace_zone(&v3, "v3").unwrap();
    assert_eq!(store.zone(&n("example.test.")).unwrap().as_ref(), Some(&v3));
    (store, [v1, v2, v3])
}

/// The IXFR question for the test zone.
fn ixfr_question() -> Question {
    Question {
        name: n("example.test."),
        qtype: RecordType::IXFR,
    }
}

/// Splits an incremental IXFR answer into difference sequences (RFC 1995
/// §4), checking the SOAs sit where they must.
fn sequences(records: &[Record], current: u32) -> Vec<ZoneDiff> {
    assert!(records.len() >= 2, "an IXFR of {} records", records.len());
    assert_eq!(soa_serial(&records[0]), current, "the opening SOA");
    assert_eq!(
        soa_serial(records.last().unwrap()),
        current,
        "the closing SOA"
    );
    let body = &records[1..records.len() - 1];
    let mut diffs = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let old = &body[at];
        let from = soa_serial(old);
        let mut removed = vec![old.clone()];
        at += 1;
        while body[at].rdata.rtype() != RecordType::SOA {
            removed.push(body[at].clone());
            at += 1;
        }
        let new = &body[at];
        let to = soa_serial(new);
        let mut added = vec![new.clone()];
        at += 1;
        while at < body.len() && body[at].rdata.rtype() != RecordType::SOA {
            added.push(body[at].clone());
            at += 1;
        }
        diffs.push(ZoneDiff {
            from: Serial(from),
            to: Serial(to),
            removed,
            added,
        });
    }
    diffs
}

#[test]
fn ixfr_from_a_three_version_journal_gives_the_stores_differences() {
    let dir = tempfile::tempdir().unwrap();
    let (store, [v1, v2, v3]) = three_versions(dir.path());
    let origin = n("example.test.");
    let journal = store.journal(&origin, Serial(1)).unwrap();
    assert_eq!(journal.len(), 2, "the journal from serial 1 has two steps");
    let response = ixfr_messages(&v3, &journal, Serial(1), 77, &ixfr_question(), 65535).unwrap();
    assert_eq!(response.form, IxfrForm::Incremental);
    let records = answers(&response.messages, 77, &ixfr_question());
    let diffs = sequences(&records, 3);
    assert_eq!(diffs.len(), 2, "two difference sequences: 1→2 and 2→3");
    for (diff, (from, to)) in diffs.iter().zip([(1, 2), (2, 3)]) {
        assert_eq!((diff.from, diff.to), (Serial(from), Serial(to)));
        let expected = store.diff(&origin, Serial(from), Serial(to)).unwrap();
        assert_eq!(
            multiset(diff.removed.clone()),
            multiset(expected.removed.clone()),
            "{from}→{to}: removed records differ from Store::diff"
        );
        assert_eq!(
            multiset(diff.added.clone()),
            multiset(expected.added.clone()),
            "{from}→{to}: added records differ from Store::diff"
        );
    }
    let mut replayed = v1.clone();
    for diff in &diffs {
        diff.apply_to(&mut replayed).unwrap();
    }
    assert_eq!(replayed, v3, "v1 plus the IXFR sequences is not v3");

    let from_two = store.journal(&origin, Serial(2)).unwrap();
    let response = ixfr_messages(&v3, &from_two, Serial(2), 78, &ixfr_question(), 65535).unwrap();
    assert_eq!(response.form, IxfrForm::Incremental);
    let diffs = sequences(&answers(&response.messages, 78, &ixfr_question()), 3);
    let mut replayed = v2.clone();
    assert_eq!(diffs.len(), 1, "one difference sequence from serial 2");
    diffs[0].apply_to(&mut replayed).unwrap();
    assert_eq!(replayed, v3);
}

#[test]
fn ixfr_from_the_current_or_a_newer_serial_is_the_single_soa() {
    let dir = tempfile::tempdir().unwrap();
    let (store, [_, _, v3]) = three_versions(dir.path());
    let journal = store.journal(&n("example.test."), Serial(3)).unwrap();
    assert!(journal.is_empty());
    for client in [3, 4, 1000] {
        let response =
            ixfr_messages(&v3, &journal, Serial(client), 5, &ixfr_question(), 65535).unwrap();
        assert_eq!(response.form, IxfrForm::UpToDate, "client at {client}");
        let records = answers(&response.messages, 5, &ixfr_question());
        assert_eq!(records.len(), 1, "client at {client}: {records:?}");
        assert_eq!(soa_serial(&records[0]), 3);
    }
}

#[test]
fn ixfr_falls_back_to_axfr_form_when_the_journal_cannot_serve_the_serial() {
    let dir = tempfile::tempdir().unwrap();
    let (store, [_, _, v3]) = three_versions(dir.path());
    let origin = n("example.test.");
    assert!(
        store.journal(&origin, Serial(0)).is_err(),
        "the store has no version 0, so its journal cannot serve it"
    );
    let full_records = |response: &cutover_nameserver::transfer::IxfrResponse| {
        let records = answers(&response.messages, 6, &ixfr_question());
        assert_eq!(soa_serial(&records[0]), 3);
        assert_eq!(records.last(), records.first(), "AXFR form ends on the SOA");
        assert_eq!(
            multiset(records[..records.len() - 1].iter().cloned()),
            multiset(v3.records()),
            "the AXFR form does not carry the current zone"
        );
    };
    let response = ixfr_messages(&v3, &[], Serial(0), 6, &ixfr_question(), 65535).unwrap();
    assert_eq!(response.form, IxfrForm::Full);
    full_records(&response);
    // A journal with a gap (the 1→2 step missing) is not used either.
    let journal = store.journal(&origin, Serial(1)).unwrap();
    let response =
        ixfr_messages(&v3, &journal[1..], Serial(1), 6, &ixfr_question(), 65535).unwrap();
    assert_eq!(
        response.form,
        IxfrForm::Full,
        "a journal with a gap was used"
    );
    full_records(&response);
}

/// Messages of an AXFR of `zone` under ID 3, unsigned, cap 4096.
fn plain_axfr(zone: &Zone) -> Vec<Vec<u8>> {
    axfr_messages(zone, 3, &axfr_question(), 4096).unwrap()
}

/// Receives `messages` unsigned under ID 3 and returns the first error.
fn refusal(messages: &[Vec<u8>], limits: Limits) -> TransferError {
    let mut receiver = AxfrReceiver::new(n("example.test."), 3, None, limits);
    for m in messages {
        if let Err(e) = receiver.receive(m, NOW) {
            return e;
        }
    }
    match receiver.finish() {
        Err(e) => e,
        Ok(_) => panic!("the transfer was accepted"),
    }
}

#[test]
fn the_receiver_refuses_hostile_transfers() {
    let zone = zone(1, 600);
    let messages = plain_axfr(&zone);
    assert!(messages.len() > 2);

    let err = refusal(&messages[..messages.len() - 1], Limits::default());
    assert!(
        matches!(err, TransferError::Incomplete { .. }),
        "no final SOA: got {err}"
    );

    let mut extra = messages.clone();
    extra.push(messages[1].clone());
    let err = refusal(&extra, Limits::default());
    assert!(
        matches!(err, TransferError::AfterEnd { .. }),
        "after the end: got {err}"
    );

    let err = refusal(&messages[1..], Limits::default());
    assert!(
        matches!(err, TransferError::NoLeadingSoa { .. }),
        "no leading SOA: got {err}"
    );

    let mut wrong_id = messages.clone();
    wrong_id[1][1] ^= 0xff;
    let err = refusal(&wrong_id, Limits::default());
    assert!(
        err.to_string().contains("does not match the query"),
        "wrong ID: got {err}"
    );

    let evil = Record {
        name: n("evil.test."),
        ttl: 60,
        rdata: Rdata::a([192, 0, 2, 66].into()),
    };
    let soa = zone
        .records()
        .find(|r| r.rdata.rtype() == RecordType::SOA)
        .unwrap();
    let spliced = raw_message(3, &[soa.clone(), evil, soa]);
    let err = refusal(&[spliced], Limits::default());
    assert!(
        err.to_string().contains("evil.test.") && err.to_string().contains("outside the zone"),
        "out of zone: got {err}"
    );

    let err = refusal(
        &messages,
        Limits {
            max_records: 100,
            ..Limits::default()
        },
    );
    assert!(
        matches!(err, TransferError::TooManyRecords { limit: 100 }),
        "got {err}"
    );
    let err = refusal(
        &messages,
        Limits {
            max_bytes: 5000,
            ..Limits::default()
        },
    );
    assert!(
        matches!(err, TransferError::TooManyBytes { limit: 5000 }),
        "got {err}"
    );

    let mut refused = messages[0].clone();
    refused[3] |= 5;
    let err = refusal(&[refused], Limits::default());
    assert!(err.to_string().contains("REFUSED"), "REFUSED: got {err}");
}

/// One uncompressed answer message with ID `id` carrying `records`.
fn raw_message(id: u16, records: &[Record]) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x84, 0, 0, 0]);
    m.extend_from_slice(&(records.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    for r in records {
        cutover_zone::rdata::push_name(&mut m, &r.name);
        m.extend_from_slice(&u16::from(r.rdata.rtype()).to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&r.ttl.to_be_bytes());
        m.extend_from_slice(&(r.rdata.wire().len() as u16).to_be_bytes());
        m.extend_from_slice(r.rdata.wire());
    }
    m
}

#[test]
fn signed_status_of_every_message_is_verified() {
    // Every message we sign reports Verified to the client (none Pending).
    let zone = zone(1, 1500);
    let key = key();
    let mut query = axfr_query(&n("example.test."), 11);
    let mut verifier = sign_request(&mut query, key.clone(), NOW).unwrap();
    let ring = KeyRing::from_keys([(*key).clone()]).unwrap();
    let Ok(Verified::Signed(mut signer)) = verify_request(&query, &ring, NOW) else {
        panic!("our signed query does not verify");
    };
    let messages = axfr_messages(&zone, 11, &axfr_question(), 8192).unwrap();
    assert!(messages.len() > 2);
    for (i, mut m) in messages.into_iter().enumerate() {
        signer.sign(&mut m, NOW).unwrap();
        assert_eq!(
            verifier.verify(&m, NOW).unwrap(),
            ResponseStatus::Verified,
            "message {i}"
        );
    }
    verifier.finish().unwrap();
}
