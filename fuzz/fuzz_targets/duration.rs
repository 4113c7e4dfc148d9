//! Fuzzes the one reader of TTLs and durations (`cutover_zone::duration`):
//! any UTF-8 text is read or refused, never a panic; an error names the
//! text given; whatever is read prints (`words`) and reads back the same.
#![no_main]

use std::time::Duration;

use cutover_zone::duration::{duration, ttl, words, zone_seconds, zone_ttl, MAX_TTL};
use libfuzzer_sys::fuzz_target;

/// Any duration a reader may be asked for.
const ANY: std::ops::RangeInclusive<Duration> =
    Duration::ZERO..=Duration::from_secs(i64::MAX as u64);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let zone = zone_ttl(text);
    let typed = ttl(text);
    if let Ok(seconds) = zone {
        assert!(seconds <= MAX_TTL, "{text:?} read as {seconds}");
        assert_eq!(
            typed,
            Ok(seconds),
            "a zone-file TTL is a TTL everywhere: {text:?}"
        );
    }
    if let Ok(seconds) = typed {
        let back = ttl(&words(Duration::from_secs(u64::from(seconds))));
        assert_eq!(back, Ok(seconds), "{text:?} printed and read back");
    }
    let _ = zone_seconds(text, "refresh");
    match duration(text, ANY) {
        Ok(time) => assert_eq!(
            duration(&words(time), ANY),
            Ok(time),
            "{text:?} printed and read back"
        ),
        Err(error) => {
            let shown = error.to_string();
            assert!(shown.len() < 400, "a short error: {shown}");
        }
    }
});
