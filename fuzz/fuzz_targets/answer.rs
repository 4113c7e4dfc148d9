//! Fuzzes the answer function: any bytes, both transports. It must not panic
//! or hang, and every response must be a well-formed DNS message that echoes
//! the query's ID, has QR set, and fits the transport's size limit.

#![no_main]

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use cutover_nameserver::{answer, Catalog, Transport, ZoneSnapshot};
use cutover_zone::rdata::{push_name, Soa, DNAME};
use cutover_zone::{Name, Rdata, Record, RecordType, Zone};

/// A small catalog with every kind of node the answer path handles.
fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let n = |s: &str| Name::from_str(s).unwrap();
        let mut zone = Zone::new(n("example.test."));
        let soa = Soa {
            mname: n("ns1.example.test."),
            rname: n("hostmaster.example.test."),
            serial: 1,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 300,
        };
        let mut add = |name: &str, ttl: u32, rdata: Rdata| {
            zone.add(Record {
                name: n(name),
                ttl,
                rdata,
            })
            .unwrap();
        };
        let name_rdata = |t: RecordType, target: &str| Rdata::name_only(t, &n(target));
        add("example.test.", 3600, Rdata::soa(&soa));
        add(
            "example.test.",
            3600,
            name_rdata(RecordType::NS, "ns1.example.test."),
        );
        add("ns1.example.test.", 3600, Rdata::a([192, 0, 2, 1].into()));
        add("www.example.test.", 300, Rdata::a([192, 0, 2, 2].into()));
        add(
            "www.example.test.",
            300,
            Rdata::aaaa("2001:db8::2".parse().unwrap()),
        );
        add(
            "alias.example.test.",
            300,
            name_rdata(RecordType::CNAME, "www.example.test."),
        );
        add(
            "loop.example.test.",
            300,
            name_rdata(RecordType::CNAME, "loop.example.test."),
        );
        add(
            "*.wild.example.test.",
            300,
            name_rdata(RecordType::CNAME, "alias.example.test."),
        );
        add(
            "deleg.example.test.",
            300,
            name_rdata(RecordType::NS, "ns.deleg.example.test."),
        );
        add(
            "ns.deleg.example.test.",
            300,
            Rdata::a([192, 0, 2, 3].into()),
        );
        let mut mx = vec![0, 10];
        push_name(&mut mx, &n("www.example.test."));
        add(
            "example.test.",
            300,
            Rdata::from_wire(RecordType::MX, &mx).unwrap(),
        );
        let mut dname = Vec::new();
        push_name(&mut dname, &n("example.test."));
        add(
            "dn.example.test.",
            300,
            Rdata::from_wire(RecordType::from(DNAME), &dname).unwrap(),
        );
        for i in 0..60u8 {
            add("big.example.test.", 300, Rdata::a([198, 51, 100, i].into()));
        }
        Catalog::new(vec![Arc::new(ZoneSnapshot::build(&zone))])
    })
}

/// Reads a (possibly compressed) name at `at`; pointers must point backwards.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    let mut end = None;
    let mut hops = 0;
    let mut total = 0;
    loop {
        let len = *msg.get(at)? as usize;
        if len & 0xc0 == 0xc0 {
            let target = ((len & 0x3f) << 8) | *msg.get(at + 1)? as usize;
            end.get_or_insert(at + 2);
            if target >= at || hops > 127 {
                return None;
            }
            hops += 1;
            at = target;
            continue;
        }
        assert!(len < 64, "response has a label of {len} bytes");
        total += len + 1;
        assert!(total <= 255, "response has a name over 255 bytes");
        if len == 0 {
            return Some(end.unwrap_or(at + 1));
        }
        at += 1 + len;
    }
}

/// Checks that `response` is a well-formed answer to `query`.
fn check(query: &[u8], response: &[u8], transport: Transport) {
    assert!(response.len() >= 12, "response shorter than a header");
    assert_eq!(
        &response[..2],
        &query[..2],
        "response ID differs from the query's"
    );
    assert!(response[2] & 0x80 != 0, "QR not set");
    let limit = if transport == Transport::Udp {
        1232
    } else {
        65535
    };
    assert!(
        response.len() <= limit,
        "{} bytes over {transport:?}",
        response.len()
    );
    let count = |i: usize| u16::from_be_bytes([response[i], response[i + 1]]) as usize;
    let mut at = 12;
    for _ in 0..count(4) {
        at = skip_name(response, at).expect("question name does not parse") + 4;
    }
    for _ in 0..count(6) + count(8) + count(10) {
        at = skip_name(response, at).expect("owner name does not parse");
        let fixed = response.get(at..at + 10).expect("record header cut short");
        let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        at += 10 + rdlen;
        assert!(at <= response.len(), "RDATA runs past the end");
    }
    assert_eq!(at, response.len(), "bytes after the last record");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut response = Vec::with_capacity(65535);
    for transport in [Transport::Udp, Transport::Tcp] {
        if answer(catalog(), data, transport, &mut response) {
            check(data, &response, transport);
        }
    }
});
