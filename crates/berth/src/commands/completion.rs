//! `berth completion SHELL` (hidden, as `docker completion` is) and `berth __man DIR`: shell
//! completions and man pages generated from the command tree itself, so they never drift from
//! the flags. scripts/install puts them where the shells and man look.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Args, CommandFactory};

use crate::cli::{program_name, Cli};
use crate::commands::version::VERSION;

#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell to complete for: bash, zsh, fish, elvish or powershell
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// The directory to write the pages into (berth.1, berth-run.1, berth-container-run.1...)
    pub dir: PathBuf,
}

/// The completion script on stdout, for the name berth was called by (`docker completion bash`
/// completes `docker`).
pub fn completion(args: CompletionArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut without_hidden(Cli::command()),
        program_name(),
        &mut script,
    );
    use std::io::Write as _;
    match std::io::stdout().write_all(&script) {
        // The reader has gone (`berth completion bash | head`): quietly, as outln! does.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        done => done.context("write the completion script to stdout"),
    }
}

/// The command tree without its hidden commands (`completion`, `__man`), which clap_complete
/// would offer: clap cannot remove a subcommand, so the root is made again with the others.
fn without_hidden(cmd: clap::Command) -> clap::Command {
    let visible: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    clap::Command::new("berth")
        .version(VERSION)
        .disable_version_flag(true)
        .args(cmd.get_arguments().cloned())
        .subcommands(visible)
}

/// One page for berth and one for every command and subcommand but the hidden ones.
pub fn man(args: ManArgs) -> Result<()> {
    let mut cmd = Cli::command()
        .version(VERSION)
        .disable_help_subcommand(true);
    // Gives the subcommands their display names: berth-run, berth-container-run.
    cmd.build();
    write_pages(&cmd, &args.dir)
}

fn write_pages(cmd: &clap::Command, dir: &Path) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("berth {VERSION}"))
        .manual("berth");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .with_context(|| format!("render the man page {}", path.display()))?;
    std::fs::write(&path, page).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_completes_the_commands_but_not_the_hidden_ones() {
        use clap::ValueEnum as _;
        for shell in clap_complete::Shell::value_variants() {
            let mut script = Vec::new();
            clap_complete::generate(
                *shell,
                &mut without_hidden(Cli::command()),
                "berth",
                &mut script,
            );
            let script = String::from_utf8(script).unwrap();
            assert!(script.contains("system"), "{shell}: {script}");
            assert!(!script.contains("__man"), "{shell}");
        }
    }
}
