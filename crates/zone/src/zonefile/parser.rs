//! The parser of zone files: directives, then each record's owner, TTL,
//! class and type, then its data (handed to [`super::rdata_text`]).
//!
//! ```text
//!   text ──lexer──▶ entries ──▶ $ORIGIN / $TTL / $INCLUDE (recursing)
//!                          └──▶ records with positions ──▶ Zone ──check()──▶ Parsed
//! ```
//!
//! The parser collects records first and builds the zone at the end,
//! because the origin may only be known once the SOA is read.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use hickory_proto::rr::Name;

use super::lexer::{Entry, Lexer, Token};
use super::presentation::{parse_name, shorten};
use super::rdata_text::{parse_rdata, type_from_text, type_to_text};
use super::{Parsed, ZoneFileError};
use crate::duration::zone_ttl;
use crate::zone::{Record, Zone, ZoneError};

/// How deep `$INCLUDE` may nest.
const MAX_INCLUDE_DEPTH: usize = 10;

/// Where something is in which file.
#[derive(Clone, Debug)]
struct Position {
    /// The file, as named in messages.
    file: Rc<str>,
    /// 1-based line.
    line: usize,
    /// 1-based column.
    column: usize,
}

impl Position {
    /// An error at this position.
    fn error(&self, message: impl Into<String>) -> ZoneFileError {
        ZoneFileError {
            file: self.file.to_string(),
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

/// What one file being read knows (an included file gets its own).
struct FileState {
    /// The file, as named in messages.
    file: Rc<str>,
    /// The directory `$INCLUDE` paths are relative to.
    dir: PathBuf,
    /// The current `$ORIGIN`.
    origin: Option<Name>,
    /// The owner of the previous record, for lines that omit it.
    last_owner: Option<Name>,
}

impl FileState {
    /// The position of a token of this file.
    fn at(&self, token: &Token) -> Position {
        Position {
            file: self.file.clone(),
            line: token.line,
            column: token.column,
        }
    }
}

/// The parser's state across a file and its includes.
struct Parser {
    /// Records read so far, with where each was.
    records: Vec<Record>,
    /// Where each record of `records` was (kept apart: a million records
    /// are built into a zone without copying their positions along).
    positions: Vec<Position>,
    /// Warnings so far.
    warnings: Vec<ZoneFileError>,
    /// The zone's origin once known (argument, first `$ORIGIN`, SOA owner).
    zone_origin: Option<Name>,
    /// The `$TTL` in force.
    default_ttl: Option<u32>,
    /// The TTL of the previous record.
    last_ttl: Option<u32>,
    /// The minimum field of the SOA, once read.
    soa_minimum: Option<u32>,
    /// The files being read, outermost first, to refuse include loops.
    include_stack: Vec<PathBuf>,
}

/// What a class token says.
enum Class {
    /// IN (or CLASS1).
    Internet,
    /// Another class, by the name written.
    Other,
}

/// Recognises a class token.
fn class_of(text: &str) -> Option<Class> {
    let upper = text.to_ascii_uppercase();
    match upper.as_str() {
        "IN" | "CLASS1" => Some(Class::Internet),
        "CH" | "CS" | "HS" | "NONE" | "ANY" => Some(Class::Other),
        _ => {
            let digits = upper.strip_prefix("CLASS")?;
            (!digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then_some(Class::Other)
        }
    }
}

/// Parses a whole text (see [`super::parse_str`]).
pub fn parse(text: &str, file: &str, origin: Option<&Name>) -> Result<Parsed, ZoneFileError> {
    let mut parser = Parser::new(file, origin);
    let state = parser.file_state(file, origin);
    parser.read(text, state)?;
    parser.finish(file)
}

/// Parses a whole text the caller gives up: it is freed once read, before
/// the zone is built (36 MB of a million records' text is not kept
/// alongside their zone).
pub fn parse_owned(
    text: String,
    file: &str,
    origin: Option<&Name>,
) -> Result<Parsed, ZoneFileError> {
    let mut parser = Parser::new(file, origin);
    let state = parser.file_state(file, origin);
    parser.read(&text, state)?;
    drop(text);
    parser.finish(file)
}

impl Parser {
    /// A parser of `file`, with its path on the include stack.
    fn new(file: &str, origin: Option<&Name>) -> Parser {
        let mut parser = Parser {
            records: Vec::new(),
            positions: Vec::new(),
            warnings: Vec::new(),
            zone_origin: origin.cloned(),
            default_ttl: None,
            last_ttl: None,
            soa_minimum: None,
            include_stack: Vec::new(),
        };
        let path = Path::new(file);
        parser
            .include_stack
            .push(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
        parser
    }

    /// The state of the outermost file.
    fn file_state(&self, file: &str, origin: Option<&Name>) -> FileState {
        let path = Path::new(file);
        FileState {
            file: Rc::from(file),
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            origin: origin.cloned(),
            last_owner: None,
        }
    }

    /// Reads every entry of one file's text.
    fn read(&mut self, text: &str, mut state: FileState) -> Result<(), ZoneFileError> {
        let mut lexer = Lexer::new(text);
        loop {
            let entry = lexer.next_entry().map_err(|e| ZoneFileError {
                file: state.file.to_string(),
                line: e.line,
                column: e.column,
                message: e.message,
            })?;
            let Some(entry) = entry else { return Ok(()) };
            let first = &entry.tokens[0];
            if !entry.owner_omitted && !first.quoted && first.text.starts_with('$') {
                self.directive(&entry, &mut state)?;
            } else {
                self.record(&entry, &mut state)?;
            }
        }
    }

    /// Handles `$ORIGIN`, `$TTL` and `$INCLUDE`.
    fn directive(&mut self, entry: &Entry, state: &mut FileState) -> Result<(), ZoneFileError> {
        let tokens = &entry.tokens;
        let name = tokens[0].text.to_ascii_uppercase();
        let argument = |what: &str| {
            tokens
                .get(1)
                .ok_or_else(|| state.at(&tokens[0]).error(format!("{name} needs {what}")))
        };
        if !matches!(name.as_str(), "$ORIGIN" | "$TTL" | "$INCLUDE") {
            return Err(state.at(&tokens[0]).error(format!(
                "unknown directive \"{}\" (expected $ORIGIN, $TTL or $INCLUDE)",
                shorten(&tokens[0].text)
            )));
        }
        let max_args = if name == "$INCLUDE" { 3 } else { 2 };
        if let Some(extra) = tokens.get(max_args) {
            return Err(state.at(extra).error(format!(
                "unexpected \"{}\" after {name}",
                shorten(&extra.text)
            )));
        }
        match name.as_str() {
            "$ORIGIN" => {
                let token = argument("a domain name")?;
                let origin = parse_name(&token.text, state.origin.as_ref())
                    .map_err(|m| state.at(token).error(m))?;
                if self.zone_origin.is_none() {
                    self.zone_origin = Some(origin.clone());
                }
                state.origin = Some(origin);
            }
            "$TTL" => {
                let token = argument("a TTL")?;
                self.default_ttl =
                    Some(zone_ttl(&token.text).map_err(|e| state.at(token).error(e.to_string()))?);
            }
            "$INCLUDE" => {
                let token = argument("a file name")?;
                let origin = match tokens.get(2) {
                    Some(t) => Some(
                        parse_name(&t.text, state.origin.as_ref())
                            .map_err(|m| state.at(t).error(m))?,
                    ),
                    None => state.origin.clone(),
                };
                self.include(token, origin, state)?;
            }
            // Refused above: only the three directives get here.
            _ => {}
        }
        Ok(())
    }

    /// Reads an included file with its own origin and owner context.
    fn include(
        &mut self,
        token: &Token,
        origin: Option<Name>,
        state: &FileState,
    ) -> Result<(), ZoneFileError> {
        let at = state.at(token);
        let path = state.dir.join(&token.text);
        if self.include_stack.len() > MAX_INCLUDE_DEPTH {
            return Err(at.error(format!(
                "$INCLUDE nested more than {MAX_INCLUDE_DEPTH} files deep"
            )));
        }
        let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
        if self.include_stack.contains(&canonical) {
            return Err(at.error(format!(
                "$INCLUDE loop: {} is already being read",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| at.error(format!("cannot read $INCLUDE file {}: {e}", path.display())))?;
        self.include_stack.push(canonical);
        let inner = FileState {
            file: Rc::from(path.display().to_string()),
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            origin,
            last_owner: None,
        };
        self.read(&text, inner)?;
        self.include_stack.pop();
        Ok(())
    }

    /// Reads one record line.
    fn record(&mut self, entry: &Entry, state: &mut FileState) -> Result<(), ZoneFileError> {
        let tokens = &entry.tokens;
        let mut index = 0;
        let owner = if entry.owner_omitted {
            state.last_owner.clone().ok_or_else(|| {
                state
                    .at(&tokens[0])
                    .error("no owner name: the first record must name its owner")
            })?
        } else {
            index = 1;
            parse_name(&tokens[0].text, state.origin.as_ref())
                .map_err(|m| state.at(&tokens[0]).error(m))?
        };
        let position = state.at(&tokens[0]);
        let mut ttl: Option<u32> = None;
        let mut class_seen = false;
        while let Some(token) = tokens.get(index) {
            if ttl.is_none() && token.text.starts_with(|c: char| c.is_ascii_digit()) {
                ttl =
                    Some(zone_ttl(&token.text).map_err(|e| state.at(token).error(e.to_string()))?);
            } else if let (false, Some(class)) = (class_seen, class_of(&token.text)) {
                if let Class::Other = class {
                    return Err(state.at(token).error(format!(
                        "class {} is not supported (only IN)",
                        token.text.to_ascii_uppercase()
                    )));
                }
                class_seen = true;
            } else {
                break;
            }
            index += 1;
        }
        let expected = match (ttl.is_some(), class_seen) {
            (false, false) => "expected a TTL, a class or a record type",
            (false, true) => "expected a TTL or a record type",
            (true, false) => "expected a class or a record type",
            (true, true) => "expected a record type",
        };
        let Some(type_token) = tokens.get(index) else {
            let last = tokens.last().unwrap_or(&tokens[0]);
            return Err(state
                .at(last)
                .error(format!("{expected}, found the end of the record")));
        };
        let rtype = type_from_text(&type_token.text).ok_or_else(|| {
            state.at(type_token).error(format!(
                "{expected}, found \"{}\"",
                shorten(&type_token.text)
            ))
        })?;
        let data = &tokens[index + 1..];
        let rdata = parse_rdata(rtype, data, state.origin.as_ref()).map_err(|e| {
            let token = data.get(e.token).or(data.last()).unwrap_or(type_token);
            state.at(token).error(e.message)
        })?;
        let soa = rdata.as_soa();
        if let Some(soa) = &soa {
            if self.zone_origin.is_none() {
                self.zone_origin = Some(owner.clone());
            }
            if state.origin.is_none() {
                state.origin = Some(owner.clone());
            }
            self.soa_minimum.get_or_insert(soa.minimum);
        }
        let ttl = match (ttl, self.default_ttl, self.last_ttl, self.soa_minimum) {
            (Some(ttl), _, _, _) | (None, Some(ttl), _, _) | (None, None, Some(ttl), _) => ttl,
            (None, None, None, Some(minimum)) => {
                self.warnings.push(position.error(format!(
                    "no TTL, no $TTL and no previous record: using the SOA minimum {minimum} as BIND does"
                )));
                minimum
            }
            (None, None, None, None) => {
                return Err(
                    position.error("no TTL for this record: give one or set $TTL before it")
                );
            }
        };
        self.last_ttl = Some(ttl);
        state.last_owner = Some(owner.clone());
        self.records.push(Record {
            name: owner,
            ttl,
            rdata,
        });
        self.positions.push(position);
        Ok(())
    }

    /// Builds the zone from the records and runs its checks.
    fn finish(self, file: &str) -> Result<Parsed, ZoneFileError> {
        let file_start = Position {
            file: Rc::from(file),
            line: 1,
            column: 1,
        };
        let Some(origin) = self.zone_origin else {
            return Err(file_start
                .error("no origin: pass one, set $ORIGIN, or start with an absolute SOA record"));
        };
        let mut warnings = self.warnings;
        let (records, positions) = (self.records, self.positions);
        let built = match Zone::from_records(origin, records) {
            Ok(built) => built,
            Err((at, e)) => return Err(positions[at].error(e.to_string())),
        };
        for (&(at, kept), &(ttl, rtype)) in built.ttl_conflicts.iter().zip(&built.conflicting) {
            warnings.push(positions[at].error(format!(
                "TTL {ttl} differs from the TTL {kept} of the {} RRset it joins; keeping {kept}",
                type_to_text(rtype)
            )));
        }
        let zone = built.zone;
        if let Some(problem) = zone.check().into_iter().next() {
            let name = match &problem {
                ZoneError::OutOfZone { name, .. }
                | ZoneError::BadSoa { name, .. }
                | ZoneError::CnameAndOtherData { name, .. }
                | ZoneError::MultipleCnames { name }
                | ZoneError::MultipleDnames { name }
                | ZoneError::MissingGlue { name, .. } => name.clone(),
                ZoneError::NoSoa { origin } | ZoneError::NoApexNs { origin } => origin.clone(),
            };
            // The first record of the name, or else the earliest first
            // record of any name (the main file first).
            let at = zone
                .nodes()
                .position(|(n, _)| *n == name)
                .map(|node| &positions[built.first_records[node]])
                .or_else(|| {
                    built
                        .first_records
                        .iter()
                        .map(|&i| &positions[i])
                        .min_by_key(|p| (p.file.as_ref() != file, p.line, p.column))
                })
                .unwrap_or(&file_start);
            return Err(at.error(problem.to_string()));
        }
        Ok(Parsed { zone, warnings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RecordType;

    #[test]
    fn owner_ttl_and_class_rules() {
        let text = "$ORIGIN example.com.\n\
                    @ 3600 IN SOA ns hm 1 2 3 4 300\n\
                    \tNS ns\n\
                    ns IN 60 A 192.0.2.1\n\
                    \tAAAA 2001:db8::1\n";
        let parsed = parse(text, "x.zone", None).unwrap();
        let zone = parsed.zone;
        let ns: Name = "ns.example.com.".parse().unwrap();
        let apex: Name = "example.com.".parse().unwrap();
        assert_eq!(zone.get(&apex, RecordType::SOA).unwrap().ttl, 3600);
        assert_eq!(zone.get(&apex, RecordType::NS).unwrap().ttl, 3600);
        assert_eq!(zone.get(&ns, RecordType::A).unwrap().ttl, 60);
        assert_eq!(zone.get(&ns, RecordType::AAAA).unwrap().ttl, 60);
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn soa_minimum_is_the_last_resort_ttl() {
        let text = "example.com. SOA ns.example.com. hm.example.com. 1 2 3 4 300\n NS ns\nns A 192.0.2.1\n";
        let parsed = parse(text, "x.zone", None).unwrap();
        assert_eq!(parsed.zone.soa_ttl(), Some(300));
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(parsed.warnings[0].line, 1);
    }
}
