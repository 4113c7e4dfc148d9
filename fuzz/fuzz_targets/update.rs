//! Fuzzes UPDATE processing: any bytes parsed as an UPDATE and, when they
//! parse, applied to a small zone (signed by a key allowed everything, and
//! unsigned from an address allowed nothing). Nothing may panic or hang; a
//! refusal has a non-zero RCODE; an accepted change produces a zone that
//! passes its checks, a serial newer than the old one and a diff that turns
//! the old zone into the new; the response echoes the ID with QR set.

#![no_main]

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::OnceLock;

use cutover_nameserver::update::{apply, response, Outcome, Policy, Rule, Update, UpdateRcode};
use cutover_zone::zonefile::parse_str;
use cutover_zone::{Name, Zone};

/// The zone the updates are applied to.
fn zone() -> &'static Zone {
    static ZONE: OnceLock<Zone> = OnceLock::new();
    ZONE.get_or_init(|| {
        let text = "$ORIGIN example.com.\n$TTL 300\n\
            @ IN SOA ns1 hostmaster 10 3600 600 86400 300\n\
            @ IN NS ns1\n@ IN NS ns2.example.net.\nns1 IN A 192.0.2.1\n\
            www IN A 192.0.2.10\nwww IN AAAA 2001:db8::1\nalias IN CNAME www\n\
            sub IN NS ns.sub\nns.sub IN A 192.0.2.53\n*.wild IN TXT \"w\"\n";
        parse_str(text, "fuzz.zone", None).unwrap().zone
    })
}

/// The key the fuzzed updates are signed by.
fn key() -> &'static Name {
    static KEY: OnceLock<Name> = OnceLock::new();
    KEY.get_or_init(|| Name::from_str("k.example.com.").unwrap())
}

/// The key may change the whole zone, with small caps.
fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let mut policy = Policy::deny_all();
        policy.max_records = 64;
        policy.max_rrset = 8;
        policy
            .keys
            .push((key().clone(), Rule::whole_zone(zone().origin().clone())));
        policy
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let client = IpAddr::from([127, 0, 0, 1]);
    let rcode = match Update::parse(data) {
        Err(e) => e.rcode(),
        Ok(update) => {
            let old = zone();
            let unsigned = apply(old, &update, None, client, policy(), 1_700_000_000);
            assert!(unsigned.is_err(), "unsigned updates are allowed nothing");
            match apply(old, &update, Some(key()), client, policy(), 1_700_000_000) {
                Ok(Outcome::Unchanged) => UpdateRcode::NoError,
                Ok(Outcome::Changed { diff }) => {
                    let mut new = old.clone();
                    diff.apply_to(&mut new).expect("the diff applies");
                    // The update checked only what it touched; the whole
                    // zone must still pass every check.
                    assert!(new.check().is_empty(), "an accepted zone passes its checks");
                    assert!(new.serial().unwrap().is_newer_than(old.serial().unwrap()));
                    let mut in_place = old.clone();
                    cutover_zone::edit::apply_in_place(&mut in_place, &diff)
                        .expect("the diff applies in place");
                    assert_eq!(in_place, new, "in place and by copy, the diff agrees");
                    UpdateRcode::NoError
                }
                Err(e) => {
                    assert_ne!(e.rcode(), UpdateRcode::NoError);
                    e.rcode()
                }
            }
        }
    };
    let out = response(data, rcode);
    if data.len() >= 12 {
        assert_eq!(&out[..2], &data[..2], "the ID is echoed");
        assert_eq!(out[2] & 0x80, 0x80, "QR is set");
        assert_eq!(out[3] & 0x0f, rcode.code());
    } else {
        assert!(out.is_empty());
    }
});
