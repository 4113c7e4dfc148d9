//! The config reference kept honest (tests only): `dist/cutover.example.toml`
//! must load with the real loader, must show every key the loader knows,
//! and every key and section it shows must be described in `docs/config.md`.
//!
//! ```text
//!  example ──Config::load──▶ Ok                                  (every key it has is real)
//!  example + `cutover_reference_probe` in table T ──Config::load──▶
//!      "unknown field …, expected one of `a`, `b`…"  ──▶ {a, b…} == keys of T in the example
//!  every key path and section of the example ──▶ named in docs/config.md
//! ```
//!
//! The loader's list of keys comes from serde's own refusal of an unknown
//! key, so a key added to `config.rs` (or a section's struct) without a line
//! in the example and the reference fails this test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::Config;

/// The made-up key added to each table to make the loader list the real ones.
const PROBE: &str = "cutover_reference_probe";

/// A step from a table to one of its tables: a key, and an index when the
/// key holds an array of tables.
type Step = (String, Option<usize>);

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The example file, parsed as plain TOML.
fn example() -> Table {
    let path = root().join("dist/cutover.example.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

/// The paths of every table in `table` (the first element of each array of tables).
fn table_paths(table: &Table, prefix: &[Step], out: &mut Vec<Vec<Step>>) {
    out.push(prefix.to_vec());
    for (key, value) in table {
        match value {
            Value::Table(inner) => {
                let path = [prefix, &[(key.clone(), None)]].concat();
                table_paths(inner, &path, out);
            }
            Value::Array(items) => {
                if let Some(Value::Table(first)) = items.first() {
                    let path = [prefix, &[(key.clone(), Some(0))]].concat();
                    table_paths(first, &path, out);
                }
            }
            _ => {}
        }
    }
}

/// The table at `path`.
fn table_at<'t>(table: &'t mut Table, path: &[Step]) -> &'t mut Table {
    path.iter().fold(table, |table, (key, index)| {
        match (table.get_mut(key), index) {
            (Some(Value::Table(inner)), None) => inner,
            (Some(Value::Array(items)), Some(i)) => match &mut items[*i] {
                Value::Table(inner) => inner,
                other => panic!("{key}[{i}] is not a table: {other:?}"),
            },
            (other, _) => panic!("{key} is not a table: {other:?}"),
        }
    })
}

/// A path as the reference writes it: `dns.rrl`, `zone.update_rule`.
fn dotted(path: &[Step]) -> String {
    path.iter()
        .map(|(key, _)| key.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// The keys the example shows for the table at `path`: for an array of
/// tables, those of every element (a `[[notify]]` of one kind cannot hold
/// another kind's keys, so the example shows one table per kind).
fn shown_keys(example: &Table, path: &[Step]) -> BTreeSet<String> {
    let mut example = example.clone();
    match path.split_last() {
        Some(((key, Some(_)), parent)) => match table_at(&mut example, parent).get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_table)
                .flat_map(|t| t.keys().cloned())
                .collect(),
            _ => BTreeSet::new(),
        },
        _ => table_at(&mut example, path).keys().cloned().collect(),
    }
}

/// Loads `table` as a config file with the real loader.
fn load(table: &Table) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cutover.toml");
    std::fs::write(&path, toml::to_string(table).unwrap()).unwrap();
    Config::load(&path).map_err(|e| e.to_string())
}

/// The keys serde lists after "expected" in its unknown-field error.
fn expected_keys(message: &str) -> BTreeSet<String> {
    let line = message
        .lines()
        .find(|l| l.contains(&format!("unknown field `{PROBE}`")))
        .unwrap_or_else(|| panic!("expected an unknown-field error, saw:\n{message}"));
    let Some((_, list)) = line.split_once("expected") else {
        return BTreeSet::new(); // "there are no fields"
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_example_loads_with_the_real_loader() {
    let config = load(&example()).unwrap_or_else(|e| panic!("dist/cutover.example.toml: {e}"));
    assert!(
        !config.zone.is_empty() && !config.key.is_empty() && config.dns.rrl.is_some(),
        "the example shows zones, keys and [dns.rrl]"
    );
}

#[test]
fn the_example_shows_every_key_the_loader_knows() {
    let example = example();
    let mut paths = Vec::new();
    table_paths(&example, &[], &mut paths);
    for path in &paths {
        let mut probed = example.clone();
        table_at(&mut probed, path).insert(PROBE.into(), Value::Boolean(true));
        let message = match load(&probed) {
            Ok(_) => panic!("[{}] accepted the unknown key {PROBE}", dotted(path)),
            Err(message) => message,
        };
        let known = expected_keys(&message);
        let shown = shown_keys(&example, path);
        let missing: Vec<&String> = known.difference(&shown).collect();
        assert!(
            missing.is_empty(),
            "[{}]: the loader knows {missing:?} but dist/cutover.example.toml does not show \
             them; add them there and to docs/config.md",
            dotted(path)
        );
    }
}

#[test]
fn the_reference_describes_every_key_of_the_example() {
    let reference_path = root().join("docs/config.md");
    let reference = std::fs::read_to_string(&reference_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", reference_path.display()));
    let example = example();
    let mut paths = Vec::new();
    table_paths(&example, &[], &mut paths);
    let mut missing = Vec::new();
    for path in &paths {
        let section = dotted(path);
        let array = path.last().is_some_and(|(_, index)| index.is_some());
        let heading = if array {
            format!("[[{section}]]")
        } else {
            format!("[{section}]")
        };
        if !section.is_empty() && !reference.contains(&heading) {
            missing.push(heading);
        }
        for (key, value) in table_at(&mut example.clone(), path).iter() {
            let is_table = matches!(value, Value::Table(_))
                || matches!(value, Value::Array(items) if matches!(items.first(), Some(Value::Table(_))));
            let full = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            if !is_table && !reference.contains(&format!("`{full}`")) {
                missing.push(format!("`{full}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/config.md does not describe {missing:?} (each key as `section.key`, each section as its [heading])"
    );
}
