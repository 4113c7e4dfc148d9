//! Fuzzes RDATA wire decoding: any bytes of any type must either be refused
//! or decode, and the typed views must never panic.
#![no_main]

use cutover_zone::{Rdata, RecordType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let rtype = RecordType::from(u16::from_be_bytes([data[0], data[1]]));
    if let Ok(rdata) = Rdata::from_wire(rtype, &data[2..]) {
        let _ = rdata.as_soa();
        let _ = rdata.target();
        assert_eq!(rdata.wire(), &data[2..]);
    }
});
