//! berth-runc: runc's command line over berth-runtime. Parse, then act; errors are logged once,
//! here, as one line.
#![forbid(unsafe_code)]
// Started without std's runtime set-up, which costs some twenty syscalls a command
// (berth_sys::start says what is kept of it).
// The unit tests keep std's start-up: their harness is the test binary's main.
#![cfg_attr(not(test), no_main)]
#[cfg(not(test))]
berth_sys::c_main!(main);

/// `println!` for a command's output: a reader that went away (`berth-runc list | head -1`)
/// ends the command quietly, with the status a shell gives a process SIGPIPE killed, where
/// println! would panic (SIGPIPE is ignored, as in every Rust program: writes to the init's
/// sockets and the hooks' pipes must fail, not kill the runtime).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            std::process::exit(if e.kind() == std::io::ErrorKind::BrokenPipe { 141 } else { 1 });
        }
    }};
}

mod cli;
mod commands;
mod criu;
mod exec;
mod spec;
mod tty;
mod update;

use clap::error::ErrorKind;
use std::io::Write;

/// What `--version` prints, shaped like runc's: `<name> version <v>`, then `key: value` lines
/// (go-runc and podman read `spec: `). The name is berth-runc's own, as crun's is crun's: dockerd
/// (parseRuntimeVersion) takes any `<name> version <v>`, podman shows the text as it is, and
/// go-runc's Version() answers empty fields, not an error, when the first line is not
/// `runc version ...`; a `runc version 0.1.0` would only mislead a caller comparing runc's
/// version numbers.
pub const VERSION_TEXT: &str = concat!("berth-runc version ", version_lines!());

/// The version and the spec's: the lines `--help` shows under VERSION, as runc's does.
#[macro_export]
macro_rules! version_lines {
    () => {
        concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0")
    };
}

#[cfg_attr(test, allow(dead_code))]
fn main() {
    if exec_reads_a_stream() && !berth_sys::seal::is_protected() && !berth_sys::seal::is_sealed() {
        // The re-execution berth_runtime::protect may ask for comes after the process file is
        // read: one that cannot be read twice (a pipe, /dev/stdin) is protected first.
        let err = berth_sys::seal::reexec_protected();
        eprintln!("berth-runc: re-execute from a protected copy of the binary: {err}");
        std::process::exit(1);
    }
    let cli = match cli::Cli::parse_args() {
        Ok(cli) => cli,
        Err(e) => usage_error(&e),
    };
    let format = match cli.global.log_format {
        cli::LogFormat::Text => berth_runtime::log::Format::Text,
        cli::LogFormat::Json => berth_runtime::log::Format::Json,
    };
    berth_runtime::log::init(cli.global.log.clone(), format, cli.global.debug);
    match commands::dispatch(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) if needs_protected_binary(&e) => {
            // A process that enters the container can run neither from this binary nor
            // through the exec trampoline here (berth_runtime::protect), and nothing was
            // created yet: start again from a read-only view (or a sealed copy) of the binary.
            berth_runtime::log::debug(&format!("{e:#}"));
            let err = berth_sys::seal::reexec_protected();
            let msg = format!("re-execute from a protected copy of the binary: {err}");
            berth_runtime::log::error(&msg);
            eprintln!("berth-runc: {msg}");
            std::process::exit(1);
        }
        Err(e) => {
            let exec = matches!(cli.command, cli::Command::Exec(_));
            // runc's words for it, which its callers' logs carry.
            let msg = if exec {
                format!("exec failed: {e:#}")
            } else {
                format!("{e:#}")
            };
            berth_runtime::log::error(&msg);
            eprintln!("berth-runc: {msg}");
            std::process::exit(if exec { exec::FAILED } else { exit_code(&e) });
        }
    }
}

/// Help (also for no command at all, as runc) and the version go to stdout with exit 0; a
/// usage error is one line on stderr and exit 1, as runc exits.
fn usage_error(e: &clap::Error) -> ! {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // A closed stdout (`| head -1`) is not an error worth a panic.
            let _ = write!(std::io::stdout(), "{}", e.render());
            std::process::exit(0);
        }
        ErrorKind::MissingSubcommand => {
            // Global flags and no command (`--root R`): runc prints its help too.
            let help = cli::Cli::command().render_help();
            let _ = write!(std::io::stdout(), "{help}");
            std::process::exit(0);
        }
        ErrorKind::DisplayVersion => {
            let _ = writeln!(std::io::stdout(), "{VERSION_TEXT}");
            std::process::exit(0);
        }
        _ => {
            eprintln!("berth-runc: {} (see berth-runc --help)", one_line(e));
            std::process::exit(1);
        }
    }
}

/// clap's message without its usage block, its lines joined: "the following required
/// arguments were not provided: <ID>".
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// 127 when the container's program is missing and 126 when it cannot be executed, as shells
/// and Docker say; 1 for every other error, as runc does.
fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<berth_runtime::Error>() {
        Some(berth_runtime::Error::Exec { kind, .. }) => kind.exit_code(),
        _ => 1,
    }
}

/// The runtime asks to be re-executed from a protected binary (CVE-2019-5736; see
/// `berth_runtime::protect`).
fn needs_protected_binary(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<berth_runtime::Error>(),
        Some(berth_runtime::Error::NeedsProtectedBinary(_))
    )
}

/// True for `exec --process P` (or `-p P`) where P is not a regular file. Global flags that
/// take a value are skipped to find the command word.
fn exec_reads_a_stream() -> bool {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" | "--log" | "--log-format" | "--criu" => {
                args.next();
            }
            s if s.starts_with('-') => {}
            "exec" => break,
            _ => return false,
        }
    }
    while let Some(a) = args.next() {
        let path = match a.as_str() {
            "--process" | "-p" => args.next(),
            s => s.strip_prefix("--process=").map(str::to_string),
        };
        if let Some(path) = path {
            return !std::fs::metadata(path).is_ok_and(|m| m.is_file());
        }
    }
    false
}
