//! Fuzzes zone-file parsing: any UTF-8 text must parse or give an error,
//! never panic or hang; whatever parses must write and re-parse to the
//! same zone.
#![no_main]

use cutover_zone::zonefile::{parse_str, write};
use cutover_zone::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A file name in a directory that does not exist, so `$INCLUDE` in the
    // input cannot read real files.
    let origin = Name::from_ascii("example.com.").ok();
    if let Ok(parsed) = parse_str(text, "/nonexistent/fuzz.zone", origin.as_ref()) {
        let written = write(&parsed.zone);
        let again = parse_str(&written, "/nonexistent/written.zone", origin.as_ref())
            .expect("written zone text must parse again");
        assert_eq!(
            again.zone, parsed.zone,
            "written zone must re-import identically"
        );
    }
});
