//! Lengths of time as operators and files write them: the one reader for
//! every place cutover takes a TTL or a duration from text — zone files
//! (`$TTL`, record TTLs, SOA timers), the migration file, the config file,
//! the command line (`--ttl`, `--timeout`, `--interval`) and the control
//! API (`"timeout": "2s"`) — and the one printer for showing one.
//!
//! ```text
//!          ┌─ "90", "1.5"           a bare number: seconds
//!  text ───┼─ "1h30m", "1W2D3H"     BIND's units s m h d w, any case (zone files, TTLs)
//!          └─ "2 days", "500ms"     jiff's friendly format (TTLs, durations)
//!                   │
//!                   ▼
//!          jiff::SignedDuration ──the reader's range──▶ u32 seconds │ std Duration
//!
//!  Duration ──words──▶ "1h 30m", "1d 2h", "500ms" (jiff's compact friendly form)
//! ```
//!
//! | reader | where | accepts | range |
//! |---|---|---|---|
//! | [`zone_ttl`], [`zone_seconds`] | zone files | seconds, BIND units | a TTL: 0 to [`MAX_TTL`]; SOA timers: 32 bits |
//! | [`ttl`] | `--ttl`, the migration file's `[ttl]` | seconds, BIND units, friendly | whole seconds, 0 to [`MAX_TTL`] |
//! | [`duration`] | config, `--timeout`, `--interval`, the API, the migration file's waits | seconds (`1.5` too), friendly | the caller's `min..=max` |
//!
//! The choices, made once here:
//!
//! - **Why in cutover-zone.** It is the lowest crate every reading site
//!   depends on (the zone parser, cutover-migrate, the binary), and the
//!   TTL is the zone model's own unit. A crate of its own would hold these
//!   few hundred lines and one dependency, jiff, which the crates above
//!   already use for time.
//! - **Zone files read what named and knotd read, no more**: seconds and
//!   BIND's units in any case (`1h30m`, `1W2D`, `1h30`, the trailing number
//!   being seconds). A zone file is exchanged with those servers; a form
//!   only cutover reads (`1hour`) would pass `zone import` and fail there.
//! - **A bare number is seconds** everywhere (`90`, and `1.5` where a part
//!   of a second makes sense).
//! - **Durations take lower-case units only** (jiff's rule): in a duration
//!   `1M` is as likely to mean a month as a minute. TTLs keep BIND's
//!   any-case units, because in DNS `M` has only ever meant minutes.
//! - **Months and years are refused**: they have no fixed length. A day is
//!   24 hours and a week 7 days, as in every DNS server.
//! - **Negative durations are refused**; a TTL is whole seconds.
//!
//! Every error names what was given and what is expected, with examples;
//! the caller adds where (file:line:column, the config key, the option).

use std::borrow::Cow;
use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use jiff::fmt::friendly::{SpanParser, SpanPrinter};
use jiff::{SignedDuration, Span, SpanRelativeTo, SpanRound, Unit};

/// The largest TTL (RFC 2181 §8: 31 bits, the top bit clear).
pub const MAX_TTL: u32 = 0x7fff_ffff;

/// jiff's parser of the friendly format (lower-case units, words allowed).
static FRIENDLY: SpanParser = SpanParser::new();

/// jiff's printer of the friendly format: compact units, a space between.
static PRINTER: SpanPrinter = SpanPrinter::new();

/// Why a text is not a TTL or duration the reader takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    /// What was being read: "TTL", "duration", "refresh"…
    what: String,
    /// The text given (shortened when long).
    given: String,
    /// What is wrong with it.
    problem: Problem,
}

/// What is wrong with a text.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Problem {
    /// Not in any form the reader takes.
    Unreadable(Forms),
    /// A duration with upper-case units (`1H`).
    UpperCase,
    /// A negative duration (`-5s`, `5s ago`).
    Negative,
    /// Months or years, which have no fixed length.
    Calendar,
    /// A TTL with a part of a second.
    Fraction,
    /// A TTL above [`MAX_TTL`].
    TtlRange,
    /// A 32-bit zone-file number above its maximum.
    Larger(u32),
    /// A duration outside the caller's range.
    Range {
        /// The least accepted.
        min: Duration,
        /// The most accepted.
        max: Duration,
    },
}

/// The forms a reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Forms {
    /// Seconds and BIND units (zone files).
    Zone,
    /// Seconds, BIND units and the friendly format (TTLs typed by people).
    Ttl,
    /// Seconds (decimal too) and the friendly format.
    Duration,
}

/// What a text says before any range is applied.
enum Reading {
    /// A length of time, not negative.
    Time(SignedDuration),
    /// A well-formed length too large for any range.
    TooLarge,
}

/// Reads a TTL from a zone file: seconds or BIND's units, any case
/// (`3600`, `1h30m`, `1W2D`), 0 to [`MAX_TTL`].
pub fn zone_ttl(text: &str) -> Result<u32, DurationError> {
    whole_ttl(text, Forms::Zone)
}

/// Reads a 32-bit number of seconds from a zone file (an SOA timer:
/// `refresh`, `retry`…), in the forms of [`zone_ttl`].
pub fn zone_seconds(text: &str, what: &str) -> Result<u32, DurationError> {
    let error = |problem| DurationError::new(what, text, problem);
    match read(text, Forms::Zone).map_err(error)? {
        Reading::Time(time) => {
            u32::try_from(time.as_secs()).map_err(|_| error(Problem::Larger(u32::MAX)))
        }
        Reading::TooLarge => Err(error(Problem::Larger(u32::MAX))),
    }
}

/// Reads a TTL an operator typed: seconds, BIND's units or the friendly
/// format (`3600`, `1h`, `1h30m`, `1W2D`, `2 days`), whole seconds from 0 to
/// [`MAX_TTL`].
pub fn ttl(text: &str) -> Result<u32, DurationError> {
    whole_ttl(text, Forms::Ttl)
}

/// Reads a duration: seconds (`90`, `1.5`) or the friendly format (`90s`,
/// `500ms`, `5m`, `1h30m`, `2 days`, `1w`), within `range`.
pub fn duration(text: &str, range: RangeInclusive<Duration>) -> Result<Duration, DurationError> {
    let (min, max) = range.into_inner();
    let error = |problem| DurationError::new("duration", text, problem);
    let outside = || error(Problem::Range { min, max });
    match read(text, Forms::Duration).map_err(error)? {
        Reading::Time(time) => {
            let time = Duration::try_from(time).map_err(|_| outside())?;
            match (min..=max).contains(&time) {
                true => Ok(time),
                false => Err(outside()),
            }
        }
        Reading::TooLarge => Err(outside()),
    }
}

/// A duration in the one form cutover prints: jiff's compact friendly
/// form up to days (`0s`, `500ms`, `90s` as `1m 30s`, `1h 30m`, `3d 4h`),
/// which [`duration`] and [`ttl`] read back.
pub fn words(duration: Duration) -> String {
    let Ok(signed) = SignedDuration::try_from(duration) else {
        return format!("{}s", duration.as_secs());
    };
    let balanced = Span::try_from(signed)
        .and_then(|span| span.round(SpanRound::new().largest(Unit::Day).days_are_24_hours()));
    match balanced {
        Ok(span) => PRINTER.span_to_string(&span),
        Err(_) => PRINTER.duration_to_string(&signed),
    }
}

/// A TTL in `forms`: whole seconds, 0 to [`MAX_TTL`].
fn whole_ttl(text: &str, forms: Forms) -> Result<u32, DurationError> {
    let error = |problem| DurationError::new("TTL", text, problem);
    match read(text, forms).map_err(error)? {
        Reading::Time(time) if time.subsec_nanos() != 0 => Err(error(Problem::Fraction)),
        Reading::Time(time) => u32::try_from(time.as_secs())
            .ok()
            .filter(|seconds| *seconds <= MAX_TTL)
            .ok_or_else(|| error(Problem::TtlRange)),
        Reading::TooLarge => Err(error(Problem::TtlRange)),
    }
}

/// Reads `text` in one of `forms`, before any range.
fn read(text: &str, forms: Forms) -> Result<Reading, Problem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Problem::Unreadable(forms));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(match text.parse::<i64>() {
            Ok(seconds) => Reading::Time(SignedDuration::from_secs(seconds)),
            Err(_) => Reading::TooLarge,
        });
    }
    if forms != Forms::Duration {
        if let Some(reading) = bind(text) {
            return Ok(reading);
        }
    }
    if forms == Forms::Zone {
        return Err(Problem::Unreadable(forms));
    }
    let friendly = match decimal(text) {
        true => Cow::Owned(format!("{text}s")),
        false => Cow::Borrowed(text),
    };
    match FRIENDLY.parse_span(friendly.as_ref()) {
        Ok(span) => from_span(span),
        // jiff flags some numbers too large as range errors, not all:
        // the same text with every number made 1 tells the two apart.
        Err(_) if FRIENDLY.parse_span(ones(&friendly)).is_ok() => Ok(Reading::TooLarge),
        Err(_)
            if forms == Forms::Duration
                && text.bytes().any(|b| b.is_ascii_uppercase())
                && FRIENDLY.parse_span(text.to_ascii_lowercase()).is_ok() =>
        {
            Err(Problem::UpperCase)
        }
        Err(_) => Err(Problem::Unreadable(forms)),
    }
}

/// `text` with each whole number replaced by `1` (a fraction's digits
/// are kept: too many of them is a form jiff refuses, not a size).
fn ones(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous = ' ';
    let mut fraction = false;
    for c in text.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !previous.is_ascii_digit() {
            fraction = matches!(previous, '.' | ',');
            out.push(if fraction { c } else { '1' });
        } else if fraction {
            out.push(c);
        }
        previous = c;
    }
    out
}

/// True for a bare decimal number of seconds such as `1.5`.
fn decimal(text: &str) -> bool {
    match text.split_once('.') {
        Some((whole, part)) => {
            !whole.is_empty()
                && !part.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && part.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// BIND's form: numbers each followed by a unit (`s`, `m`, `h`, `d`, `w`,
/// any case), the last one's unit optional (seconds): `1h30m`, `1W2D3H`,
/// `1h30`. None when `text` is not in this form.
fn bind(text: &str) -> Option<Reading> {
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    let mut overflow = false;
    for b in text.bytes() {
        if b.is_ascii_digit() {
            let next = number
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')));
            overflow |= next.is_none();
            number = Some(next.unwrap_or(0));
            continue;
        }
        let unit: u64 = match b.to_ascii_lowercase() {
            b's' => 1,
            b'm' => 60,
            b'h' => 3600,
            b'd' => 86_400,
            b'w' => 604_800,
            _ => return None,
        };
        let n = number.take()?;
        let sum = n.checked_mul(unit).and_then(|v| total.checked_add(v));
        overflow |= sum.is_none();
        total = sum.unwrap_or(0);
    }
    let sum = total.checked_add(number.unwrap_or(0));
    match (overflow, sum.and_then(|s| i64::try_from(s).ok())) {
        (false, Some(seconds)) => Some(Reading::Time(SignedDuration::from_secs(seconds))),
        _ => Some(Reading::TooLarge),
    }
}

/// A friendly span as a length of time: no sign, no months or years.
fn from_span(span: Span) -> Result<Reading, Problem> {
    if span.is_negative() {
        return Err(Problem::Negative);
    }
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(Problem::Calendar);
    }
    Ok(
        match span.to_duration(SpanRelativeTo::days_are_24_hours()) {
            Ok(time) => Reading::Time(time),
            Err(_) => Reading::TooLarge,
        },
    )
}

impl DurationError {
    /// An error about `given` read as `what`.
    fn new(what: &str, given: &str, problem: Problem) -> DurationError {
        let given = given.trim();
        let given = match given.chars().count() {
            0..=60 => given.to_owned(),
            _ => format!("{}...", given.chars().take(57).collect::<String>()),
        };
        DurationError {
            what: what.to_owned(),
            given,
            problem,
        }
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let DurationError {
            what,
            given,
            problem,
        } = self;
        match problem {
            Problem::Unreadable(Forms::Zone) => write!(
                f,
                "invalid {what} {given:?}: expected seconds or numbers with units \
                 s, m, h, d, w (any case), e.g. 3600, 1h30m, 1W2D"
            ),
            Problem::Unreadable(Forms::Ttl) => write!(
                f,
                "invalid {what} {given:?}: expected seconds or a number with units, \
                 e.g. 3600, 1h, 1h30m, 2 days, 1w, or BIND's 1W2D3H"
            ),
            Problem::Unreadable(Forms::Duration) => write!(
                f,
                "invalid {what} {given:?}: expected seconds or a number with a unit, \
                 e.g. 90, 90s, 500ms, 5m, 1h30m, 2 days, 1w"
            ),
            Problem::UpperCase => write!(
                f,
                "invalid {what} {given:?}: units are written in lower case, e.g. 1h, 5m, 2d \
                 (an upper-case M could be minutes or months)"
            ),
            Problem::Negative => write!(f, "invalid {what} {given:?}: it cannot be negative"),
            Problem::Calendar => write!(
                f,
                "invalid {what} {given:?}: months and years have no fixed length; \
                 give days or weeks, e.g. 30d, 52w"
            ),
            Problem::Fraction => write!(
                f,
                "invalid {what} {given:?}: a TTL is whole seconds, e.g. 1s, 90, 1h"
            ),
            Problem::TtlRange => write!(
                f,
                "{what} {given:?} is out of range: a TTL is 0 to {MAX_TTL} seconds \
                 (RFC 2181 §8)"
            ),
            Problem::Larger(max) => write!(f, "{what} {given:?} is larger than {max}"),
            Problem::Range { min, max } => write!(
                f,
                "{what} {given:?} is out of range: expected {} to {}",
                words(*min),
                words(*max)
            ),
        }
    }
}

impl std::error::Error for DurationError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any duration a `SignedDuration` holds.
    const ANY: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(i64::MAX as u64);

    #[test]
    fn what_operators_type_is_read_everywhere() {
        for (text, seconds) in [
            ("90", 90),
            ("90s", 90),
            ("5m", 300),
            ("1h", 3600),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            ("2 days", 172_800),
            ("1w", 604_800),
            ("1 hour, 30 minutes", 5400),
            (" 10s ", 10),
        ] {
            let expected = Duration::from_secs(seconds);
            assert_eq!(duration(text, ANY), Ok(expected), "duration {text:?}");
            assert_eq!(ttl(text), Ok(seconds as u32), "ttl {text:?}");
        }
        assert_eq!(duration("500ms", ANY), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1.5", ANY), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1.5s", ANY), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn bind_forms_are_read_in_zone_files_and_ttls() {
        for (text, seconds) in [
            ("1W2D3H", 788_400),
            ("1w2d3h", 788_400),
            ("1h30m", 5400),
            ("1H30M", 5400),
            ("1d2h3m4s", 93_784),
            ("1h30", 3630),
            ("0300", 300),
            ("0", 0),
        ] {
            assert_eq!(zone_ttl(text), Ok(seconds), "zone {text:?}");
            assert_eq!(ttl(text), Ok(seconds), "ttl {text:?}");
        }
        assert_eq!(zone_seconds("4294967295", "expire"), Ok(u32::MAX));
        assert_eq!(
            zone_seconds("4294967296", "expire")
                .unwrap_err()
                .to_string(),
            "expire \"4294967296\" is larger than 4294967295"
        );
    }

    #[test]
    fn zone_files_take_only_what_named_and_knotd_take() {
        for text in ["1hour", "1.5h", "500ms", "2 days", "h", "1x", "", "-1"] {
            let error = zone_ttl(text).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("invalid TTL {text:?}: expected seconds")),
                "{text:?}: {error}"
            );
        }
    }

    #[test]
    fn ttls_are_whole_seconds_up_to_two_to_the_thirty_one() {
        assert_eq!(ttl("2147483647"), Ok(MAX_TTL));
        assert_eq!(zone_ttl("2147483647"), Ok(MAX_TTL));
        for text in [
            "2147483648",
            "99999999999999999999999",
            "3551w",
            "1000000 weeks",
        ] {
            assert_eq!(
                ttl(text).unwrap_err().to_string(),
                format!(
                    "TTL {text:?} is out of range: a TTL is 0 to 2147483647 seconds (RFC 2181 §8)"
                )
            );
        }
        assert!(zone_ttl("9999999999999999999999w")
            .unwrap_err()
            .to_string()
            .contains("is out of range"));
        assert_eq!(
            ttl("1.5s").unwrap_err().to_string(),
            "invalid TTL \"1.5s\": a TTL is whole seconds, e.g. 1s, 90, 1h"
        );
        assert_eq!(ttl("1.5h"), Ok(5400), "a whole number of seconds");
    }

    #[test]
    fn nonsense_is_refused_with_what_was_given_and_examples() {
        assert_eq!(
            duration("soon", ANY).unwrap_err().to_string(),
            "invalid duration \"soon\": expected seconds or a number with a unit, \
             e.g. 90, 90s, 500ms, 5m, 1h30m, 2 days, 1w"
        );
        assert_eq!(
            ttl("1x").unwrap_err().to_string(),
            "invalid TTL \"1x\": expected seconds or a number with units, \
             e.g. 3600, 1h, 1h30m, 2 days, 1w, or BIND's 1W2D3H"
        );
        assert!(duration("1H", ANY)
            .unwrap_err()
            .to_string()
            .contains("lower case"));
        assert!(duration("1W2D", ANY).is_err(), "BIND's forms are for TTLs");
        assert!(
            duration("1h30", ANY).is_err(),
            "a number after a unit needs one"
        );
        assert!(duration("-5s", ANY)
            .unwrap_err()
            .to_string()
            .contains("cannot be negative"));
        assert!(duration("5s ago", ANY).is_err());
        assert!(duration("1mo", ANY)
            .unwrap_err()
            .to_string()
            .contains("months and years have no fixed length"));
        assert!(ttl("1y").is_err());
        assert!(duration("", ANY).is_err());
        let long = "x".repeat(1000);
        assert!(duration(&long, ANY).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn durations_keep_to_the_callers_range() {
        let range = Duration::from_millis(100)..=Duration::from_secs(3600);
        assert_eq!(duration("1h", range.clone()), Ok(Duration::from_secs(3600)));
        assert_eq!(
            duration("100ms", range.clone()),
            Ok(Duration::from_millis(100))
        );
        assert!(
            duration("1.0000000001s", range.clone())
                .unwrap_err()
                .to_string()
                .starts_with("invalid duration"),
            "ten digits of a second are a form jiff refuses, not a size"
        );
        for text in [
            "2h",
            "99ms",
            "0",
            "99999999999999999999",
            "9999999999999h",
            "99999999999999999999.5",
        ] {
            assert_eq!(
                duration(text, range.clone()).unwrap_err().to_string(),
                format!("duration {text:?} is out of range: expected 100ms to 1h")
            );
        }
    }

    #[test]
    fn words_are_compact_and_up_to_days() {
        for (time, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(90), "1m 30s"),
            (Duration::from_secs(5400), "1h 30m"),
            (Duration::from_secs(93_784), "1d 2h 3m 4s"),
            (Duration::from_secs(30 * 86_400), "30d"),
            (Duration::from_millis(1500), "1s 500ms"),
        ] {
            assert_eq!(words(time), text);
        }
    }

    /// A small deterministic generator (xorshift64*), so the property is
    /// checked over the same many values every run.
    fn values(count: usize) -> impl Iterator<Item = u64> {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..count).map(move |_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        })
    }

    #[test]
    fn printing_then_reading_gives_the_same_duration_back() {
        let edges = [
            0,
            1,
            59,
            60,
            3599,
            3600,
            86_399,
            86_400,
            604_800,
            u64::from(MAX_TTL),
        ];
        let seconds = edges
            .into_iter()
            .chain(values(20_000).map(|v| v % (u64::from(MAX_TTL) + 1)));
        for s in seconds {
            let time = Duration::from_secs(s);
            let text = words(time);
            assert_eq!(duration(&text, ANY), Ok(time), "{s} s printed {text:?}");
            assert_eq!(ttl(&text), Ok(s as u32), "{s} s printed {text:?}");
            assert_eq!(ttl(&s.to_string()), Ok(s as u32));
        }
        // With parts of a second, over the range of a year.
        for v in values(20_000) {
            let time = Duration::new(v % (366 * 86_400), (v >> 32) as u32 % 1_000_000_000);
            let text = words(time);
            assert_eq!(duration(&text, ANY), Ok(time), "{time:?} printed {text:?}");
        }
        // BIND's form, written the way a zone file might.
        for v in values(5_000) {
            let [w, d, h, m, s] = [
                v % 100,
                (v >> 8) % 7,
                (v >> 16) % 24,
                (v >> 24) % 60,
                (v >> 32) % 60,
            ];
            let text = format!("{w}W{d}d{h}H{m}m{s}S");
            let expected = w * 604_800 + d * 86_400 + h * 3600 + m * 60 + s;
            assert_eq!(zone_ttl(&text), Ok(expected as u32), "{text}");
        }
    }
}
