//! Build script: puts `git describe` of the checkout into `cutover --version`
//! (as " (git v0.1-3-gabc1234)"), or nothing when not built from git.

use std::process::Command;

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = root.join(".git");
    // A new commit or checkout changes these; a build from a tarball has none.
    for watched in ["HEAD", "refs/heads", "refs/tags", "packed-refs"] {
        let path = git.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let described = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["describe", "--tags", "--always"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty());
    let suffix = described.map_or(String::new(), |d| format!(" (git {d})"));
    println!("cargo:rustc-env=CUTOVER_GIT_DESCRIBE={suffix}");
}
