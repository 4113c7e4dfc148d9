//! What a package ships beside the binary, checked by the tools that will
//! read it: `cutover --version`, the shell completions (bash parses them),
//! the man page (groff renders it without a warning) and the systemd unit
//! (`systemd-analyze verify`, and `security` rates its exposure).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the built `cutover` with `args`.
fn cutover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .output()
        .expect("the cutover binary runs")
}

/// Runs `program args` with `input` on standard input.
fn piped(program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn version_names_the_release_and_the_commit() {
    let out = cutover(&["--version"]);
    assert!(out.status.success(), "--version failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = format!("cutover {}", env!("CARGO_PKG_VERSION"));
    assert!(
        text.starts_with(&expected),
        "expected {expected:?} first, saw {text:?}"
    );
    if root().join(".git").exists() {
        assert!(
            text.contains(" (git "),
            "built from a git checkout, so `git describe` is expected in {text:?}"
        );
    }
}

#[test]
fn completions_cover_the_command_tree_and_parse() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = cutover(&["completions", shell]);
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success() && script.contains("flush"),
            "completions {shell}: status {:?}, {} bytes, stderr {}",
            out.status,
            script.len(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bash = cutover(&["completions", "bash"]).stdout;
    for verb in ["zone", "record", "check", "verify", "flush", "serve"] {
        assert!(
            String::from_utf8_lossy(&bash).contains(verb),
            "bash completion lacks {verb}"
        );
    }
    let parsed = piped("bash", &["-n"], &bash);
    assert!(
        parsed.status.success(),
        "bash -n refuses the completion script: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let help = String::from_utf8(cutover(&["--help"]).stdout).unwrap();
    assert!(
        help.contains("flush") && help.contains("completions") && help.contains("manpage"),
        "--help lists flush and the packaging commands (a packager must find them):\n{help}"
    );
}

#[test]
fn the_man_page_renders_without_warnings() {
    let out = cutover(&["manpage"]);
    assert!(out.status.success(), "cutover manpage failed");
    let roff = out.stdout;
    assert!(
        String::from_utf8_lossy(&roff).contains(".TH cutover 1"),
        "expected a section-1 page"
    );
    // -k: UTF-8 input; -ww: every warning; -P-cbou: plain text, no overstriking.
    let rendered = piped("groff", &["-k", "-man", "-Tutf8", "-ww", "-P-cbou"], &roff);
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(
        rendered.status.success() && warnings.is_empty(),
        "groff warns: {warnings}"
    );
    let text = String::from_utf8_lossy(&rendered.stdout);
    for part in [
        "NAME",
        "SYNOPSIS",
        "cutover - move services",
        "flush",
        "--config",
    ] {
        assert!(
            text.contains(part),
            "the rendered page lacks {part:?}:\n{text}"
        );
    }
}

#[test]
fn every_page_the_main_page_refers_to_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = cutover(&["manpage", "--dir", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "manpage --dir: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let main = std::fs::read_to_string(dir.path().join("cutover.1")).expect("cutover.1 written");
    // Every "cutover-verb(1)" the pages mention has its own file.
    let mut referred = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let page = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for piece in page
            .split("(1)")
            .filter_map(|p| p.rsplit(|c: char| c.is_whitespace() || c == '"').next())
        {
            let piece = piece.replace("\\-", "-");
            if piece.starts_with("cutover-") {
                referred.push(piece);
            }
        }
    }
    assert!(
        referred.iter().any(|p| p == "cutover-flush"),
        "cutover.1 refers to cutover-flush(1); saw {referred:?} in:\n{main}"
    );
    for page in &referred {
        assert!(
            dir.path().join(format!("{page}.1")).exists(),
            "{page}(1) is referred to but not written"
        );
    }
    for listed in ["cutover-completions.1", "cutover-manpage.1"] {
        assert!(
            dir.path().join(listed).exists(),
            "{listed}: expected a page for a command --help lists"
        );
    }
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(root().join("dist/cutover.service")).unwrap();
    for line in [
        "ExecStart=/usr/bin/cutover serve --config /etc/cutover/cutover.toml",
        "DynamicUser=yes",
        "StateDirectory=cutover",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "dist/cutover.service lacks the line {line:?}"
        );
    }
    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cutover.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/cutover", env!("CARGO_BIN_EXE_cutover")),
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no", path])
        .output()
        .expect("systemd-analyze runs (package systemd)");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // Exposure is rated 0.0 (locked down) to 10.0; --threshold is in tenths.
    let security = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=yes",
            "--threshold=20",
            "--no-pager",
            path,
        ])
        .output()
        .expect("systemd-analyze runs");
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(
        security.status.success(),
        "expected an exposure of at most 2.0, saw: {}",
        report.lines().last().unwrap_or_default()
    );
}
