//! Fuzzes the migration file parser and the redaction of its secrets: any
//! UTF-8 text must parse or give an error at a line and column of the
//! text, never panic; and wherever a file that parses writes a secret
//! inline, its redacted text holds `"(redacted)"` instead.
#![no_main]

use cutover_migrate::file::{redact, MigrationFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let redacted = redact(text);
    match MigrationFile::parse(text, "/nonexistent/fuzz.toml") {
        Ok(file) => {
            assert!(
                redacted.matches("\"(redacted)\"").count() >= file.spots.inline_secrets.len(),
                "every inline secret is redacted"
            );
            let lines: Vec<&str> = redacted.split('\n').collect();
            // Redacting a value shifts what follows it on its line: the
            // first secret of each line is where the parser saw it.
            let mut firsts = file.spots.inline_secrets.clone();
            firsts.sort_by_key(|(_, spot)| (spot.line, spot.column));
            firsts.dedup_by_key(|(_, spot)| spot.line);
            for (key, spot) in &firsts {
                let line = lines
                    .get(spot.line - 1)
                    .unwrap_or_else(|| panic!("{key} at line {} of the redacted text", spot.line));
                let at: String = line.chars().skip(spot.column - 1).collect();
                assert!(
                    at.starts_with("\"(redacted)\""),
                    "{key} at {}:{} is not redacted: {line:?}",
                    spot.line,
                    spot.column
                );
            }
        }
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(e.line <= lines.max(1), "error past the end: {e}");
        }
    }
});
