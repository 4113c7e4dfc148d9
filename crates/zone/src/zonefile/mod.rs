//! Zone files in RFC 1035 master format: parsing them into a [`Zone`] as
//! BIND and Knot read them, and writing a [`Zone`] back in canonical form.
//!
//! ```text
//!   text ──lexer──▶ entries ──parser──▶ records ──▶ Zone ──check()──▶ Parsed
//!                                 │                    │
//!                           rdata_text (+svcb)       writer ──▶ canonical text
//! ```
//!
//! What the parser accepts: `$ORIGIN`, `$TTL` (with units such as `1h30m`,
//! `1w`), `$INCLUDE file [origin]` (relative to the including file's
//! directory, at most 10 deep, loops refused), `@` and relative names,
//! escaped labels (`a\.b`, `\DDD`), parentheses across lines, `;`
//! comments, quoted strings, class `IN` (or `CLASS1`) or none, TTL and
//! class in either order, the RFC 3597 forms `TYPEnnn` and `\# LEN HEX`.
//!
//! Rules this module chooses (and tests):
//!
//! - **Origin.** The zone's origin is the `origin` argument; without one,
//!   the first `$ORIGIN`; without that, the owner of the first SOA record
//!   (written absolute), which then also completes later relative names.
//!   A relative name before any of these is an error.
//! - **Omitted TTL.** The `$TTL` in force; else the previous record's TTL;
//!   else the SOA minimum, as BIND does (with a warning); an SOA without
//!   any of these takes its own minimum. A record with none is an error.
//! - **Omitted owner** (line starts with blank space): the previous
//!   record's owner. `$INCLUDE` starts the included file with no previous
//!   owner and leaves the including file's origin and owner as they were.
//! - **TTL mismatch** inside an RRset: a warning; the first TTL is kept.
//! - **Long strings**: a character-string over 255 bytes is refused.
//! - **Semantic errors** (from [`Zone::check`] and [`Zone::add`]) are
//!   reported at the first record of the owner concerned.
//! - A file that cannot be read is reported at line 0, column 0.

mod lexer;
mod parser;
mod presentation;
mod rdata_text;
mod svcb;
mod writer;

use std::fmt;
use std::path::Path;

use hickory_proto::rr::{Name, RecordType};

use crate::rdata::Rdata;
use crate::zone::Zone;

pub use rdata_text::rdata_to_text;
pub use writer::{record_to_text, write};

/// A zone read from a file, with what was accepted but looked wrong.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The zone.
    pub zone: Zone,
    /// Problems that did not stop the parse (TTL mismatches, TTLs taken
    /// from the SOA minimum).
    pub warnings: Vec<ZoneFileError>,
}

/// An error (or warning) in a zone file, at the offending token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneFileError {
    /// The file, as named to the parser (or as an `$INCLUDE` named it).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What was expected or what is wrong.
    pub message: String,
}

impl fmt::Display for ZoneFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ZoneFileError {}

/// Reads and parses a zone file (see the module docs for the rules).
pub fn parse_file(path: &Path, origin: Option<&Name>) -> Result<Parsed, ZoneFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ZoneFileError {
        file: file.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read the zone file: {e}"),
    })?;
    parser::parse_owned(text, &file, origin)
}

/// Parses zone file text; `file` names it in messages and is where
/// `$INCLUDE` paths are resolved from.
pub fn parse_str(text: &str, file: &str, origin: Option<&Name>) -> Result<Parsed, ZoneFileError> {
    parser::parse(text, file, origin)
}

/// Parses the data part of a record of type `rtype` (relative names are
/// completed with `origin`).
pub fn rdata_from_text(rtype: RecordType, text: &str, origin: &Name) -> Result<Rdata, String> {
    let mut lexer = lexer::Lexer::new(text);
    let entry = lexer
        .next_entry()
        .map_err(|e| format!("column {}: {}", e.column, e.message))?;
    let tokens = entry.map(|e| e.tokens).unwrap_or_default();
    if let Ok(Some(extra)) = lexer.next_entry() {
        return Err(format!(
            "unexpected \"{}\" on line {}: record data is one line",
            presentation::shorten(&extra.tokens[0].text),
            extra.tokens[0].line
        ));
    }
    rdata_text::parse_rdata(rtype, &tokens, Some(origin)).map_err(|e| e.message)
}
