//! How the config reads a duration: text in the one format of
//! `cutover_zone::duration`, or a number of seconds, bounded. A leaf: every
//! section (`[dns]` in `config`, `[mail]`, `[http]`) reads it, and it
//! imports none of them.

use std::fmt;
use std::time::Duration;

use serde::{de, Deserializer};

/// The longest any duration in the config may be (366 days), where its key
/// gives no shorter maximum: past it a value is a typing mistake, and every
/// deadline computed from it fits the clock.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// Deserializes a duration of the config: text read by
/// `cutover_zone::duration` ("250ms", "10s", "1h30m", "2 days", "90") or a
/// whole number of seconds, at most [`MAX_DURATION`]. The key shows in the
/// TOML error's excerpt, with the file, line and column.
pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = deserializer.deserialize_any(DurationText)?;
    cutover_zone::duration::duration(&text, Duration::ZERO..=MAX_DURATION)
        .map_err(de::Error::custom)
}

/// Reads a duration's value as text: a string as written, a number as
/// its seconds.
pub struct DurationText;

impl de::Visitor<'_> for DurationText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"10s\", \"5m\" or \"1h30m\", or a number of seconds")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }

    fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<String, E> {
        Ok(seconds.to_string())
    }

    fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<String, E> {
        Ok(seconds.to_string())
    }
}
