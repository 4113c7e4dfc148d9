//! The house rules of the crate graph, held by a test (CONTRIBUTING.md
//! says them in words): every crate sits on a floor and imports only
//! crates on lower floors; the binary holds the command tree and no daemon
//! code; neither the daemon crate nor the binary has an import circle
//! between its modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Each crate's floor: a crate may depend only on crates of a lower floor.
const FLOORS: &[(&str, u8)] = &[
    ("zone", 0),
    ("flush", 0),
    ("peers", 0),
    ("api", 1),
    ("store", 1),
    ("nameserver", 1),
    ("probe", 1),
    ("mail", 2),
    ("provider", 2),
    ("migrate", 3),
    ("server", 4),
    ("cli", 5),
];

/// The `cutover-*` crates a manifest's `[dependencies]` names (not the
/// dev-dependencies: tests may use anything).
fn cutover_dependencies(manifest: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside {
            if let Some(name) = line.strip_prefix("cutover-") {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_crate_imports_only_crates_on_lower_floors() {
    let floors: BTreeMap<&str, u8> = FLOORS.iter().copied().collect();
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let floor = *floors
            .get(name.as_str())
            .unwrap_or_else(|| panic!("crates/{name} has no floor in FLOORS: give it one"));
        seen.insert(name.clone());
        for dependency in cutover_dependencies(&manifest) {
            let below = floors.get(dependency.as_str()).copied().unwrap_or(u8::MAX);
            assert!(
                below < floor,
                "cutover-{name} (floor {floor}) depends on cutover-{dependency} (floor {below}): \
                 a crate imports only crates on lower floors"
            );
        }
    }
    assert!(
        seen.contains("server") && seen.contains("cli"),
        "expected crates/server and crates/cli, saw {seen:?}"
    );
}

#[test]
fn the_binary_holds_no_daemon_code() {
    let manifest = std::fs::read_to_string(root().join("crates/cli/Cargo.toml")).unwrap();
    let dependencies: String = manifest
        .split("[dev-dependencies]")
        .next()
        .unwrap_or_default()
        .to_owned();
    for daemon in [
        "axum",
        "hyper",
        "hyper-util",
        "tokio-rustls",
        "rusqlite",
        "arc-swap",
    ] {
        assert!(
            !dependencies
                .lines()
                .any(|line| line.trim_start().starts_with(&format!("{daemon}."))),
            "crates/cli depends on {daemon}: the control plane and the store's tables live in \
             crates/server"
        );
    }
    let source = root().join("crates/cli/src");
    for gone in [
        "http",
        "primary",
        "scheduler",
        "config.rs",
        "mail.rs",
        "scheduler.rs",
    ] {
        assert!(
            !source.join(gone).exists(),
            "crates/cli/src/{gone} is daemon code: it belongs in crates/server"
        );
    }
    for file in rust_files(&source) {
        let text = code_of(&file);
        // The parts of the daemon, assembled by hand: a command starts the
        // daemon through `Server::start` (or `start_with`) and nothing else.
        for daemon in [
            "StorePrimary",
            "Relay::open",
            "Scheduler::start",
            "axum::",
            "MailService",
            "HttpServer",
            "Notifier",
            "reload::reload",
            "cutover_nameserver::server",
            "ArcSwap",
            "Catalog",
        ] {
            assert!(
                !text.contains(daemon),
                "{} uses {daemon}: what runs inside serve belongs in crates/server, started \
                 through Server::start",
                file.display()
            );
        }
        for path in server_paths(&text) {
            assert!(
                BINARY_MAY_USE
                    .iter()
                    .any(|allowed| path == *allowed || path.starts_with(&format!("{allowed}::"))),
                "{} uses cutover_server::{path}: the binary reaches into the daemon's crate only \
                 through {BINARY_MAY_USE:?}",
                file.display()
            );
        }
    }
}

/// What of `cutover-server` the binary may name: the entry point, the
/// config it reads, the token book of `cutover token`, the wall clock of
/// `record`'s TSIG, and the scheduler's one-migration runner (`Wiring`,
/// its lease and presence), which `cutover migrate run` and `rollback`
/// (and the demo, which runs its migration as `migrate run` does) drive in
/// the foreground: a command's work, not the daemon's.
const BINARY_MAY_USE: &[&str] = &[
    "Server",
    "Options",
    "RunningServer",
    "config",
    "http::tokens",
    "primary::wall_clock",
    "scheduler::Site",
    "scheduler::Wiring",
    "scheduler::lease",
    "scheduler::presence",
    "scheduler::provider",
];

/// Every path named after `cutover_server::` in `text`, a `{…}` group
/// split into its members (`cutover_server::{config, Server}` gives
/// `config` and `Server`; a nested group keeps its prefix, as
/// `scheduler::{lease, Wiring}`).
fn server_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("cutover_server::") {
        let rest = &text[i + "cutover_server::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += i32::from(c == '{') - i32::from(c == '}');
                    depth < 0
                })
                .map_or(group.len(), |(at, _)| at);
            let mut member = String::new();
            let mut depth = 0;
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.extend(members(member.trim()));
                        member.clear();
                        continue;
                    }
                    _ => {}
                }
                member.push(c);
            }
        } else {
            out.extend(members(rest));
        }
    }
    out
}

/// The path at the start of `text` (`scheduler::lease::Lease` from
/// `scheduler::lease::Lease;`); a group in it expands to each member under
/// the prefix (`scheduler::{lease, Wiring}`).
fn members(text: &str) -> Vec<String> {
    let path: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let path = path.trim_end_matches(':').to_owned();
    let after = text[path.len()..].trim_start_matches(':');
    match after.strip_prefix('{') {
        Some(group) => group
            .split([',', '}'])
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| match m {
                "self" => path.clone(),
                m => format!("{path}::{m}"),
            })
            .collect(),
        None if path.is_empty() => Vec::new(),
        None => vec![path],
    }
}

/// The code of a file: its lines without `//` comments (a doc comment may
/// name anything).
fn code_of(file: &Path) -> String {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_import_circles_between_modules() {
    for (crate_dir, module_root) in [("crates/server/src", ""), ("crates/cli/src", "commands")] {
        let source = root().join(crate_dir);
        let graph = module_graph(&source, module_root);
        if module_root.is_empty() {
            // `targets` (pure rules) is the floor under `config`.
            for (floor, may) in [("targets", &[][..]), ("config", &["targets"][..])] {
                let imports = graph.get(floor).cloned().unwrap_or_default();
                assert!(
                    imports.iter().all(|i| may.contains(&i.as_str())),
                    "{crate_dir}/{floor} imports {imports:?}: it is read by the other modules, \
                     never the reverse"
                );
            }
            assert!(
                graph.len() >= 6,
                "expected the server's modules in the graph, saw {graph:?}"
            );
        }
        if let Some(circle) = find_circle(&graph) {
            panic!(
                "{crate_dir}: modules import each other in a circle: {}",
                circle.join(" → ")
            );
        }
    }
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The modules one level below `module_root` (the crate's top-level
/// modules for "", `commands::X` for "commands") and which of them each
/// imports (`crate::X…`, or `super::X` from inside `module_root`). A
/// module's own submodules are part of it.
fn module_graph(source: &Path, module_root: &str) -> BTreeMap<String, BTreeSet<String>> {
    let base = match module_root {
        "" => source.to_path_buf(),
        dir => source.join(dir),
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&base) {
        let relative = file.strip_prefix(&base).unwrap();
        let first = relative.components().next().unwrap();
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" || module == "main" || module == "mod" {
            continue;
        }
        // Code only: a doc comment may name any module.
        let text: String = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let in_root_file = relative.components().count() == 1;
        let mut imports = BTreeSet::new();
        let prefix = match module_root {
            "" => "crate::".to_owned(),
            dir => format!("crate::{dir}::"),
        };
        for (i, _) in text.match_indices(&prefix) {
            let rest = &text[i + prefix.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            imports.insert(name);
        }
        // `super::X` names a sibling only from a file right under the root.
        if in_root_file && !module_root.is_empty() {
            for (i, _) in text.match_indices("super::") {
                let rest = &text[i + "super::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                imports.insert(name);
            }
        }
        let entry = graph.entry(module.clone()).or_default();
        for name in imports {
            let is_module = base.join(format!("{name}.rs")).exists() || base.join(&name).is_dir();
            if name != module && is_module {
                entry.insert(name);
            }
        }
    }
    graph
}

/// A circle in the graph, as the modules along it, or `None`.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    /// Depth-first search keeping the path; returns the circle found.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut circle = path[start..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(circle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(circle);
        }
    }
    None
}

#[test]
fn a_circle_is_found_where_there_is_one() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("config", vec![]),
        ("http", vec!["config", "scheduler"]),
        ("scheduler", vec!["config", "http"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    let circle = find_circle(&graph).expect("http ↔ scheduler is a circle");
    assert!(circle.contains(&"http".to_owned()) && circle.contains(&"scheduler".to_owned()));
    let mut acyclic = graph.clone();
    acyclic.get_mut("scheduler").unwrap().remove("http");
    assert_eq!(find_circle(&acyclic), None);
}
