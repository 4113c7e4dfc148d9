//! What the commands share, a leaf every command may import: the version,
//! the `--yes` refusal, reading a zone name, printing a diff, a time and
//! the durations of the command line, and whether to colour.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use cutover_zone::duration::DurationError;
use cutover_zone::{Name, ZoneDiff};

/// `cutover --version`: the crate version and, when built from a git
/// checkout, `git describe` of it (set by build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), env!("CUTOVER_GIT_DESCRIBE"));

/// A change that needs `--yes` and did not get it (exit status 4).
#[derive(Debug)]
pub struct Unconfirmed(pub String);

impl fmt::Display for Unconfirmed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (add --yes to do it)", self.0)
    }
}

impl std::error::Error for Unconfirmed {}

/// A zone's apex from the command line (always absolute).
pub fn zone_name(text: &str) -> anyhow::Result<Name> {
    let mut name =
        Name::from_str(text).map_err(|e| anyhow::anyhow!("invalid zone name {text:?}: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// A diff as `-`/`+` lines, removed records first, each in zone-file form.
pub fn diff_lines(diff: &ZoneDiff) -> String {
    let mut out = String::new();
    for record in &diff.removed {
        out.push_str("- ");
        out.push_str(&cutover_zone::zonefile::record_to_text(record));
        out.push('\n');
    }
    for record in &diff.added {
        out.push_str("+ ");
        out.push_str(&cutover_zone::zonefile::record_to_text(record));
        out.push('\n');
    }
    out
}

/// `--timeout`: how long one step may take, from 1ms to [`MAX_WAIT`]
/// (`500ms`, `2s`, `1.5`, `1m`): the API's grammar, shared with
/// `cutover verify`'s arguments.
pub use cutover_api::verify::{timeout, MAX_WAIT};

/// `--interval`: the time between two rounds, from 100ms (no busy loop)
/// to [`MAX_WAIT`].
pub fn interval(text: &str) -> Result<Duration, DurationError> {
    cutover_zone::duration::duration(text, Duration::from_millis(100)..=MAX_WAIT)
}

/// A time as RFC 3339 in UTC, to the second.
pub fn timestamp(time: SystemTime) -> String {
    match jiff::Timestamp::try_from(time) {
        Ok(t) => t
            .round(jiff::Unit::Second)
            .unwrap_or(t)
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        Err(_) => format!("{time:?}"),
    }
}

/// Colour on `stream`: only on a terminal, and never with `NO_COLOR` set
/// to anything but the empty string (<https://no-color.org>).
pub fn colour_on(stream: &impl std::io::IsTerminal) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    stream.is_terminal() && !no_color
}
