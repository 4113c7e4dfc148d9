//! The house rules of the crate graph, held by a test (CONTRIBUTING.md
//! says them in words): every crate sits on a floor and imports only
//! crates on lower floors; the binary holds the command tree and no daemon
//! code; neither the daemon crate nor the binary has an import circle
//! between its files (so none between its modules either), and the
//! daemon's `config` reads none of the other modules.

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
/// the foreground: a command's work, not the daemon's; and the agent's
/// loop (`agents::client`), which `cutover agent` runs on another host.
const BINARY_MAY_USE: &[&str] = &[
    "Server",
    "agents::client",
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
fn no_import_circles_between_files() {
    for crate_dir in ["crates/server/src", "crates/cli/src"] {
        let source = root().join(crate_dir);
        let graph = file_graph(&source);
        assert!(
            graph.len() >= 20,
            "expected the files of {crate_dir} in the graph, saw {graph:?}"
        );
        // The graph sees through `super::`: a child's `use super::{…}` of
        // its parent's items is an import of the parent's file.
        assert!(
            graph.values().flatten().any(|f| f.ends_with("/mod.rs")),
            "expected some file to import a mod.rs (the builder of its children)"
        );
        if crate_dir == "crates/server/src" {
            // `targets` (pure rules) is the floor under `config`, which the
            // other modules read and which reads none of them.
            for (floor, may) in [
                ("targets.rs", &["targets.rs"][..]),
                ("config/", &["config/", "targets.rs"][..]),
            ] {
                for (file, imports) in graph.iter().filter(|(f, _)| f.starts_with(floor)) {
                    let above: Vec<&String> = imports
                        .iter()
                        .filter(|i| !may.iter().any(|m| i.starts_with(m)))
                        .collect();
                    assert!(
                        above.is_empty(),
                        "{crate_dir}/{file} imports {above:?}: {floor} is read by the other \
                         modules, never the reverse"
                    );
                }
            }
        }
        if let Some(circle) = find_circle(&graph) {
            panic!(
                "{crate_dir}: files import each other in a circle: {} (move what they share \
                 into a leaf file both import)",
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

/// The module a file under `source` is: `lib.rs` and `main.rs` the crate
/// root, `a/mod.rs` and `a.rs` the module `a`, `a/b.rs` the module `a::b`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut path: Vec<String> = relative
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .collect();
    if path.last().is_some_and(|last| last == "mod")
        || (path.len() == 1 && (path[0] == "lib" || path[0] == "main"))
    {
        path.pop();
    }
    path
}

/// Which file imports which, between the `.rs` files under `source`
/// (named by their path below it, `http/mod.rs`): every path in the code
/// that begins with `crate::`, `super::`, `self::` or the name of a module
/// the file declares (`connections::serve`), in a `use` (groups expanded)
/// or inline, resolved to the file of the deepest module it names
/// (`crate::http::auth::Caller` is `http/auth.rs`; `super::ApiError` from
/// `http/zones.rs` is `http/mod.rs`). A `mod x;` declaration is not an
/// import. `#[cfg(test)] mod … { … }` blocks inside a file are left out: a
/// file's unit tests may reach anywhere in the crate, and no code outside
/// the block can reach back into them.
fn file_graph(source: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let name = |file: &Path| {
        let relative = file.strip_prefix(source).unwrap();
        relative.to_string_lossy().into_owned()
    };
    let files: BTreeMap<Vec<String>, String> = rust_files(source)
        .iter()
        .map(|file| (module_of(file.strip_prefix(source).unwrap()), name(file)))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &files {
        let tokens = tokens(&std::fs::read_to_string(source.join(file)).unwrap());
        let tokens = without_test_modules(&tokens);
        let imports = graph.entry(file.clone()).or_default();
        for path in paths(&tokens, module) {
            // The deepest module along the path that is a file.
            let target = (0..=path.len())
                .rev()
                .find_map(|n| files.get(&path[..n]))
                .expect("the crate root is a file");
            if target != file {
                imports.insert(target.clone());
            }
        }
    }
    graph
}

/// A token of Rust code, as far as paths go: an identifier, `::`, or one
/// other character. Comments and literals are gone.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    /// An identifier or keyword.
    Ident(String),
    /// `::`.
    PathSep,
    /// Any other character of code.
    Punct(char),
}

/// The tokens of `text`, without comments, strings and characters.
fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            chars.get(i + 1 + hashes) == Some(&'"')
        } {
            // A raw string: r"…", r#"…"#.
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            i += 2 + hashes;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < chars.len() && !chars[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
        } else if c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            // A path in a string is code too: serde's
            // `deserialize_with = "crate::config::duration"`.
            let text: String = chars[start..i.min(chars.len())].iter().collect();
            let segments: Vec<&str> = text.split("::").collect();
            if segments.len() > 1
                && ["crate", "super", "self"].contains(&segments[0])
                && segments
                    .iter()
                    .all(|s| !s.is_empty() && s.chars().all(ident))
            {
                for (n, segment) in segments.iter().enumerate() {
                    if n > 0 {
                        out.push(Token::PathSep);
                    }
                    out.push(Token::Ident((*segment).to_owned()));
                }
            }
            i += 1;
        } else if c == '\'' {
            // A character ('x', '\n', '\u{…}') or a lifetime ('a).
            match (next, chars.get(i + 2)) {
                (Some('\\'), _) => {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                }
                (Some(_), Some('\'')) => i += 3,
                _ => i += 1,
            }
        } else if ident(c) {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == ':' && next == Some(':') {
            out.push(Token::PathSep);
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    out
}

/// `tokens` without the `#[cfg(test)] mod NAME { … }` blocks.
fn without_test_modules(tokens: &[Token]) -> Vec<Token> {
    let cfg_test: Vec<Token> = ["#", "[", "cfg", "(", "test", ")", "]"]
        .iter()
        .map(|t| match t.chars().next().unwrap() {
            c if c.is_alphabetic() => Token::Ident((*t).to_owned()),
            c => Token::Punct(c),
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i..].starts_with(&cfg_test) {
            let mut j = i + cfg_test.len();
            if tokens.get(j) == Some(&Token::Ident("pub".into())) {
                j += 1;
            }
            let is_block = tokens.get(j) == Some(&Token::Ident("mod".into()))
                && tokens.get(j + 2) == Some(&Token::Punct('{'));
            if is_block {
                let mut depth = 0;
                i = j + 2;
                while i < tokens.len() {
                    match tokens[i] {
                        Token::Punct('{') => depth += 1,
                        Token::Punct('}') => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// Every module path the code of the file that is `module` names, made
/// absolute (from the crate root), with what follows the module (the item,
/// and whatever lies below it) kept: `super::{ApiError, blocking}` in
/// `http/zones.rs` gives `[http, ApiError]` and `[http, blocking]`.
/// Inline `mod NAME { … }` blocks are followed, so that `super::` inside
/// one names the file's own module.
fn paths(tokens: &[Token], module: &[String]) -> Vec<Vec<String>> {
    let ident = |i: usize| match tokens.get(i) {
        Some(Token::Ident(name)) => Some(name.as_str()),
        _ => None,
    };
    // The modules this file declares (`mod x;`): their names start paths.
    let children: BTreeSet<&str> = (0..tokens.len())
        .filter(|&i| ident(i) == Some("mod") && tokens.get(i + 2) == Some(&Token::Punct(';')))
        .filter_map(|i| ident(i + 1))
        .collect();
    let mut out = Vec::new();
    // The inline modules we are inside, with the brace depth each opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('{') => {
                depth += 1;
                if ident(i.wrapping_sub(2)) == Some("mod") {
                    inline.push((ident(i - 1).unwrap_or_default().to_owned(), depth));
                }
            }
            Token::Punct('}') => {
                if inline.last().is_some_and(|(_, at)| *at == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            Token::Ident(head) => {
                let starts_path = tokens.get(i + 1) == Some(&Token::PathSep)
                    && !matches!(
                        tokens.get(i.wrapping_sub(1)),
                        Some(Token::PathSep | Token::Punct('$' | '.'))
                    );
                let here: Vec<String> = module
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(name, _)| name.clone()))
                    .collect();
                let base = match head.as_str() {
                    "crate" => Some(Vec::new()),
                    "self" => Some(here.clone()),
                    "super" => Some(here[..here.len().saturating_sub(1)].to_vec()),
                    child if inline.is_empty() && children.contains(child) => {
                        Some(here.iter().cloned().chain([child.to_owned()]).collect())
                    }
                    _ => None,
                };
                if let (true, Some(mut base)) = (starts_path, base) {
                    // `super::super::x`.
                    let mut j = i + 2;
                    while ident(j) == Some("super") && tokens.get(j + 1) == Some(&Token::PathSep) {
                        base.pop();
                        j += 2;
                    }
                    let (expanded, end) = expand(tokens, j, &base);
                    out.extend(expanded);
                    i = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The paths written from `tokens[start]` on, below `prefix`: `a::b`,
/// `a::{b, c::d}`, `{self, e}`, `*`; returns them and where they end.
fn expand(tokens: &[Token], start: usize, prefix: &[String]) -> (Vec<Vec<String>>, usize) {
    let mut path = prefix.to_vec();
    let mut i = start;
    loop {
        match tokens.get(i) {
            Some(Token::Ident(name)) => {
                if name != "self" {
                    path.push(name.clone());
                }
                i += 1;
            }
            Some(Token::Punct('{')) => {
                let mut out = Vec::new();
                i += 1;
                loop {
                    match tokens.get(i) {
                        Some(Token::Punct('}')) | None => return (out, i + 1),
                        Some(Token::Punct(',')) => i += 1,
                        _ => {
                            let (inner, end) = expand(tokens, i, &path);
                            out.extend(inner);
                            // Skip an `as alias` up to the next `,` or `}`.
                            i = end;
                            while !matches!(tokens.get(i), Some(Token::Punct(',' | '}')) | None) {
                                i += 1;
                            }
                        }
                    }
                }
            }
            _ => return (vec![path], i),
        }
        if tokens.get(i) == Some(&Token::PathSep) {
            i += 1;
        } else {
            return (vec![path], i);
        }
    }
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

#[test]
fn a_circle_between_files_is_found() {
    let source = std::env::temp_dir().join(format!("cutover-architecture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&source);
    let write = |file: &str, text: &str| {
        let path = source.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod config;\npub mod http;\n");
    write(
        "config/mod.rs",
        "pub mod duration;\npub mod http;\npub struct Config { pub http: Option<http::HttpConfig> }\n",
    );
    write("config/duration.rs", "pub fn duration() {}\n");
    write(
        "config/http.rs",
        "#[serde(deserialize_with = \"crate::config::duration::duration\")]\npub struct HttpConfig;\n\
         #[cfg(test)]\nmod tests {\n    use crate::http::Control;\n}\n",
    );
    write(
        "http/mod.rs",
        "mod zones;\nmod error;\nuse crate::config::{Config, http::HttpConfig};\n\
         pub struct Control;\nfn router() { zones::list(); }\n",
    );
    write(
        "http/error.rs",
        "// use super::Control; (a comment)\npub struct ApiError;\n",
    );
    write(
        "http/zones.rs",
        "use super::{error::ApiError, Control};\npub fn list() { let _ = \"super::x\"; }\n",
    );
    let graph = file_graph(&source);
    let edges =
        |file: &str| -> Vec<&str> { graph[file].iter().map(String::as_str).collect::<Vec<_>>() };
    // `mod x;` is not an import; a path in serde's string is; a test
    // module, a comment and a plain string are left out.
    assert_eq!(edges("lib.rs"), Vec::<&str>::new());
    assert_eq!(edges("config/mod.rs"), ["config/http.rs"]);
    assert_eq!(edges("config/http.rs"), ["config/duration.rs"]);
    assert_eq!(
        edges("http/mod.rs"),
        ["config/http.rs", "config/mod.rs", "http/zones.rs"]
    );
    assert_eq!(edges("http/error.rs"), Vec::<&str>::new());
    // `super::Control` is the parent's file; `super::error::ApiError` the sibling's.
    assert_eq!(edges("http/zones.rs"), ["http/error.rs", "http/mod.rs"]);
    let circle = find_circle(&graph).expect("http/mod.rs ↔ http/zones.rs is a circle");
    assert!(
        circle.contains(&"http/mod.rs".to_owned()) && circle.contains(&"http/zones.rs".to_owned())
    );
    // Control moved into a leaf both import: no circle.
    write("http/control.rs", "pub struct Control;\n");
    write(
        "http/zones.rs",
        "use super::{control::Control, error::ApiError};\npub fn list() {}\n",
    );
    let graph = file_graph(&source);
    assert_eq!(find_circle(&graph), None, "{graph:?}");
    std::fs::remove_dir_all(&source).unwrap();
}
