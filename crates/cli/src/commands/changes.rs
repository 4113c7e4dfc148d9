//! The change file of `cutover record apply`: one change a line, in the
//! words of `record add|set|delete`, read whole and checked before anything
//! is sent or written.
//!
//! ```text
//!  # a comment; blank lines are skipped
//!  add    NAME [TTL] TYPE DATA…    the record joins its RRset
//!  set    NAME [TTL] TYPE DATA…    the RRset becomes the records of every
//!                                  set line of that name and type
//!  delete NAME TYPE DATA…          that record leaves its RRset
//!  delete NAME TYPE                the RRset is deleted
//!  delete NAME                     every RRset of the name is deleted
//! ```
//!
//! NAME as in `record add` ("@" the apex, "x." absolute, else relative to
//! the zone); TTL in seconds or with units (`300`, `1h`); DATA the rest of
//! the line, in zone-file form. A line that does not read is refused as
//! `FILE:LINE:COLUMN: what was expected`. The entries come out in file
//! order, a set's records gathered at its first line, in the RRset terms
//! of the API's `PATCH …/rrsets` (replace, delete, extend, prune), so the
//! file means the same here and through `--server`.

use std::collections::BTreeMap;

use anyhow::anyhow;
use cutover_nameserver::update::operator::{self, Action, Edit, RrsetAction};
use cutover_zone::{Name, RecordType};

/// One RRset change of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The line it starts at (1-based).
    pub line: usize,
    /// What it does.
    pub action: RrsetAction,
    /// The owner as written.
    pub owner: String,
    /// The type as written ("ANY" for a delete of a whole name).
    pub rtype: String,
    /// The TTL given, if any.
    pub ttl: Option<u32>,
    /// The records' data in zone-file form.
    pub datas: Vec<String>,
}

impl Entry {
    /// The edits of this entry (the operator's, as the API makes them).
    pub fn edits(&self, origin: &Name) -> anyhow::Result<Vec<Edit>> {
        let datas: Vec<&str> = self.datas.iter().map(String::as_str).collect();
        operator::rrset_edits(
            self.action,
            &self.owner,
            &self.rtype,
            self.ttl,
            &datas,
            origin,
        )
        .map_err(|e| anyhow!("{e}"))
    }
}

/// A word of a line and the column it starts at (1-based, in characters).
struct Word<'a> {
    /// The text.
    text: &'a str,
    /// Its column.
    column: usize,
    /// Its byte offset in the line.
    offset: usize,
}

/// The words of a line.
fn words(line: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (offset, c) in line
        .char_indices()
        .chain(std::iter::once((line.len(), ' ')))
    {
        match (c.is_whitespace(), start) {
            (true, Some(from)) => {
                out.push(Word {
                    text: &line[from..offset],
                    column: line[..from].chars().count() + 1,
                    offset: from,
                });
                start = None;
            }
            (false, None) => start = Some(offset),
            _ => {}
        }
    }
    out
}

/// One line read: its verb, owner, type, TTL and data (resolved, for the
/// grouping of set lines, and as written, for the entry).
struct Line {
    /// 1-based.
    number: usize,
    /// add, set or delete.
    verb: Action,
    /// The owner as written.
    owner: String,
    /// The owner resolved.
    name: Name,
    /// The type as written, and resolved (ANY for a whole name).
    rtype: (String, RecordType),
    /// The TTL given.
    ttl: Option<u32>,
    /// The data, if any.
    data: Option<String>,
}

/// Reads the change file `text` (named `file` in errors) for the zone
/// `origin`: every line checked, the entries in file order.
pub fn read(file: &str, text: &str, origin: &Name) -> anyhow::Result<Vec<Entry>> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        lines.push(
            read_line(raw, number, origin)
                .map_err(|(column, what)| anyhow!("{file}:{number}:{column}: {what}"))?,
        );
    }
    if lines.is_empty() {
        return Err(anyhow!(
            "{file}: no changes (expected lines such as `set www 300 A 192.0.2.1`)"
        ));
    }
    group(file, lines)
}

/// One line, or the column and what was expected there.
fn read_line(raw: &str, number: usize, origin: &Name) -> Result<Line, (usize, String)> {
    let words = words(raw);
    let end = raw.chars().count() + 1;
    let verb = match words[0].text {
        "add" => Action::Add,
        "set" => Action::Set,
        "delete" => Action::Delete,
        other => {
            return Err((
                words[0].column,
                format!("expected add, set or delete, found {other:?}"),
            ))
        }
    };
    let Some(owner) = words.get(1) else {
        return Err((end, "expected a name after the verb".into()));
    };
    let name = operator::owner_name(owner.text, origin)
        .map_err(|e| (owner.column, format!("expected a name in the zone: {e}")))?;
    let mut next = 2;
    let mut ttl = None;
    if verb != Action::Delete {
        if let Some(word) = words.get(next) {
            if word.text.starts_with(|c: char| c.is_ascii_digit()) {
                ttl = Some(
                    cutover_zone::duration::ttl(word.text)
                        .map_err(|e| (word.column, format!("expected a TTL: {e}")))?,
                );
                next += 1;
            }
        }
    }
    let rtype = match words.get(next) {
        Some(word) => {
            let rtype = operator::record_type(word.text)
                .map_err(|e| (word.column, format!("expected a record type: {e}")))?;
            (word.text.to_owned(), rtype)
        }
        None if verb == Action::Delete => ("ANY".to_owned(), RecordType::ANY),
        None => return Err((end, "expected a TTL or a record type".into())),
    };
    let data = words
        .get(next + 1)
        .map(|word| (word.column, raw[word.offset..].trim_end().to_owned()));
    match (&data, verb) {
        (None, Action::Add | Action::Set) => {
            return Err((end, format!("expected the {} data", rtype.1)))
        }
        (_, Action::Add | Action::Set) if rtype.1 == RecordType::ANY => {
            return Err((
                words[next].column,
                "expected a record type (ANY only deletes every RRset of a name)".into(),
            ))
        }
        (Some((column, _)), _) if rtype.1 == RecordType::ANY => {
            return Err((
                *column,
                "expected the end of the line (a delete of a whole name takes no data)".into(),
            ))
        }
        (Some((column, text)), _) => {
            Edit::parse(verb, owner.text, &rtype.0, text, origin)
                .map_err(|e| (*column, format!("expected {} data: {e}", rtype.1)))?;
        }
        (None, Action::Delete) => {}
    }
    Ok(Line {
        number,
        verb,
        owner: owner.text.to_owned(),
        name,
        rtype,
        ttl,
        data: data.map(|(_, text)| text),
    })
}

/// The entries: set lines of one name and type gathered into one replace
/// at the first of them; an add or delete of an RRset some set line gives
/// whole is refused (the file would say two things of it).
fn group(file: &str, lines: Vec<Line>) -> anyhow::Result<Vec<Entry>> {
    let key = |line: &Line| (line.name.to_lowercase(), u16::from(line.rtype.1));
    let mut set_at: BTreeMap<(Name, u16), usize> = BTreeMap::new();
    for line in lines.iter().filter(|l| l.verb == Action::Set) {
        set_at.entry(key(line)).or_insert(line.number);
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut set_entry: BTreeMap<(Name, u16), usize> = BTreeMap::new();
    for line in lines {
        let whole_name = line.rtype.1 == RecordType::ANY;
        let clash = set_at.iter().find(|((name, code), _)| {
            *name == line.name.to_lowercase() && (whole_name || *code == u16::from(line.rtype.1))
        });
        if let (Some((_, set_line)), Action::Add | Action::Delete) = (clash, line.verb) {
            return Err(anyhow!(
                "{file}:{}:1: {} {} is set whole at line {set_line}; expected no other change \
                 of it in the same file (give all its records as set lines)",
                line.number,
                line.owner,
                line.rtype.0
            ));
        }
        let (action, datas) = match line.verb {
            Action::Add => (RrsetAction::Extend, line.data.into_iter().collect()),
            Action::Delete if line.data.is_some() => {
                (RrsetAction::Prune, line.data.into_iter().collect())
            }
            Action::Delete => (RrsetAction::Delete, Vec::new()),
            Action::Set => {
                let k = key(&line);
                if let Some(&at) = set_entry.get(&k) {
                    let entry = &mut entries[at];
                    if entry.ttl != line.ttl {
                        return Err(anyhow!(
                            "{file}:{}:1: expected the TTL of line {} ({}) for the same RRset: \
                             one RRset has one TTL",
                            line.number,
                            entry.line,
                            entry.ttl.map_or("none given".to_owned(), |t| t.to_string())
                        ));
                    }
                    entry.datas.extend(line.data);
                    continue;
                }
                set_entry.insert(k, entries.len());
                (RrsetAction::Replace, line.data.into_iter().collect())
            }
        };
        entries.push(Entry {
            line: line.number,
            action,
            owner: line.owner,
            rtype: line.rtype.0,
            ttl: line.ttl,
            datas,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// The zone of the examples.
    fn origin() -> Name {
        Name::from_str("example.com.").unwrap()
    }

    #[test]
    fn set_lines_of_one_rrset_become_one_replace_in_file_order() {
        let text = "# moving www\n\nset www 300 A 192.0.2.1\nadd mail MX 10 mx1\n\
                    set www 300 A 192.0.2.2\ndelete old\ndelete txt TXT \"a b\"\n";
        let entries = read("changes.txt", text, &origin()).unwrap();
        let actions: Vec<(usize, RrsetAction, Vec<String>)> = entries
            .iter()
            .map(|e| (e.line, e.action, e.datas.clone()))
            .collect();
        assert_eq!(
            actions,
            vec![
                (
                    3,
                    RrsetAction::Replace,
                    vec!["192.0.2.1".into(), "192.0.2.2".into()]
                ),
                (4, RrsetAction::Extend, vec!["10 mx1".into()]),
                (6, RrsetAction::Delete, vec![]),
                (7, RrsetAction::Prune, vec!["\"a b\"".into()]),
            ]
        );
        assert_eq!(entries[0].ttl, Some(300));
        assert_eq!(entries[2].rtype, "ANY");
    }

    #[test]
    fn a_bad_line_names_its_place_and_what_was_expected() {
        let cases = [
            (
                "add www 300 A 192.0.2.1\nput www A 1.2.3.4\n",
                "f:2:1: expected add, set or delete",
            ),
            ("set www 300 A 192.0.2.999\n", "f:1:15: expected A data"),
            ("set www 300 BOGUS x\n", "f:1:13: expected a record type"),
            (
                "  add www.example.org. A 1.2.3.4\n",
                "f:1:7: expected a name in the zone",
            ),
            ("set www 300\n", "f:1:12: expected a TTL or a record type"),
            ("set www 3x A 1.2.3.4\n", "f:1:9: expected a TTL"),
            ("set www 300 A\n", "f:1:14: expected the A data"),
            (
                "add www ANY 1.2.3.4\n",
                "f:1:9: expected a record type (ANY only",
            ),
            (
                "delete www ANY 1.2.3.4\n",
                "f:1:16: expected the end of the line",
            ),
            (
                "set www A 1.1.1.1\nadd www A 2.2.2.2\n",
                "f:2:1: www A is set whole at line 1",
            ),
            (
                "set www 60 A 1.1.1.1\nset www 61 A 2.2.2.2\n",
                "f:2:1: expected the TTL of line 1",
            ),
            ("# nothing\n\n", "f: no changes"),
        ];
        for (text, expected) in cases {
            let error = read("f", text, &origin()).unwrap_err().to_string();
            assert!(
                error.starts_with(expected),
                "{text:?}: expected {expected:?}, saw {error:?}"
            );
        }
    }
}
