//! What a package installs beside the binary, generated from the command
//! tree itself so it can never disagree with it: shell completions
//! (`cutover completions SHELL`) and the man page (`cutover manpage`).
//!
//! ```text
//!  Cli (clap derive) ──CommandFactory──▶ clap::Command ──┬─ clap_complete ─▶ bash|zsh|fish|elvish|powershell
//!                                                         └─ clap_mangen ──▶ cutover.1 (roff), or one page per command
//! ```

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;

use super::Cli;

/// Arguments of `cutover completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for `args.shell` to standard output.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "cutover", &mut out);
    out.flush()?;
    Ok(())
}

/// Arguments of `cutover manpage`.
#[derive(Debug, clap::Args)]
pub struct ManpageArgs {
    /// Write every page (cutover.1, cutover-zone.1, cutover-zone-import.1…)
    /// into this directory instead of printing cutover.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the man page, section 1, in roff to standard output, or writes
/// the pages of every command into `args.dir`.
pub fn manpage(args: &ManpageArgs) -> anyhow::Result<()> {
    // NAME reads "cutover - move services…", not the package description's "cutover: …".
    let command =
        Cli::command().about("move services between servers through DNS without downtime");
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        clap_mangen::generate_to(command, dir)
            .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(command).render(&mut out)?;
    out.flush()?;
    Ok(())
}
