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

/// Arguments of `cutover completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for `args.shell` of the command tree
/// `command` (`Cli::command()`) to standard output.
pub fn completions(args: &CompletionsArgs, mut command: clap::Command) -> anyhow::Result<()> {
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
/// the pages of every command into `args.dir`, for the command tree
/// `command` (`Cli::command()`).
pub fn manpage(args: &ManpageArgs, command: clap::Command) -> anyhow::Result<()> {
    // NAME reads "cutover - move services…", not the package description's "cutover: …".
    let command = command.about("move services between servers through DNS without downtime");
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        clap_mangen::generate_to(command, dir)
            .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let man = clap_mangen::Man::new(command);
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    out.write_all(exit_status_section().as_bytes())?;
    out.write_all(examples_section().as_bytes())?;
    man.render_version_section(&mut out)?;
    out.flush()?;
    Ok(())
}

/// What each exit status means (the table of `main`).
pub const EXIT_STATUS: &[(u8, &str)] = &[
    (0, "Done; for check and verify, everything agrees and every check passed."),
    (1, "The operation failed (store error, unknown zone, a change refused), or check and verify found something that disagrees or fails."),
    (2, "A bad command line, config file or migration file."),
    (3, "A zone file that does not parse."),
    (4, "A destructive change that needs --yes."),
];

/// Commands a newcomer starts with (the README's tour).
pub const EXAMPLES: &[(&str, &str)] = &[
    ("Import a zone file into the store and list the zones", "cutover zone import example.com.zone\ncutover zone list"),
    ("See what a change would do, then make it (the serial rises)", "cutover record set example.com blog A 192.0.2.40 --ttl 60 --dry-run\ncutover record set example.com blog A 192.0.2.40 --ttl 1h"),
    ("Serve every zone in the store", "cutover serve --config cutover.toml"),
    ("What every nameserver and resolver answers, until they all agree", "cutover check example.com www --expect www A 198.51.100.20 --watch"),
    ("Plan a migration, then start it", "cutover migrate plan move-web.toml\ncutover migrate start move-web.toml"),
    ("A whole migration on loopback", "cutover demo"),
];

/// Text for roff: backslashes doubled, hyphens literal, no line starting
/// with a control character.
fn roff_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('-', "\\-")
        .lines()
        .map(|line| match line.starts_with(['.', '\'']) {
            true => format!("\\&{line}"),
            false => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The EXIT STATUS section in roff.
fn exit_status_section() -> String {
    let mut out = String::from(".SH \"EXIT STATUS\"\n");
    for (status, meaning) in EXIT_STATUS {
        out.push_str(&format!(".TP\n{status}\n{}\n", roff_text(meaning)));
    }
    out
}

/// The EXAMPLES section in roff.
fn examples_section() -> String {
    let mut out = String::from(".SH EXAMPLES\n");
    for (what, commands) in EXAMPLES {
        out.push_str(&format!(
            ".PP\n{}:\n.PP\n.nf\n.RS 4\n{}\n.RE\n.fi\n",
            roff_text(what),
            roff_text(commands)
        ));
    }
    out
}
