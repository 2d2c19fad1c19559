//! berth-runc: runc's command line over berth-runtime. Parse, then act; errors are logged once,
//! here, as one line.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod spec;

use clap::Parser;

pub const VERSION_TEXT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nspec: ",
    "1.2.0",
    "\nberth: the daemonless container engine that makes namespaces visible"
);

fn main() {
    // Before anything else and before any thread exists: the commands that put a process into
    // a container run from a read-only view (or a sealed copy) of this binary (CVE-2019-5736).
    if needs_sealed_binary() && !berth_sys::seal::is_sealed() && !berth_sys::seal::is_protected() {
        let err = berth_sys::seal::reexec_protected();
        eprintln!("berth-runc: re-execute from a sealed copy of the binary: {err}");
        std::process::exit(1);
    }
    let cli = cli::Cli::parse();
    let format = match cli.log_format {
        cli::LogFormat::Text => berth_runtime::log::Format::Text,
        cli::LogFormat::Json => berth_runtime::log::Format::Json,
    };
    berth_runtime::log::init(cli.log.clone(), format, cli.debug);
    match commands::dispatch(&cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}");
            berth_runtime::log::error(&msg);
            eprintln!("berth-runc: {msg}");
            std::process::exit(exit_code(&e));
        }
    }
}

/// 127 when the container's program is missing and 126 when it cannot be executed, as shells
/// and Docker say; 1 for every other error, as runc does.
fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<berth_runtime::Error>() {
        Some(berth_runtime::Error::Exec { kind, .. }) => kind.exit_code(),
        _ => 1,
    }
}

/// True for create, run and exec: the commands whose child enters a container. Global flags
/// that take a value are skipped to find the command word.
fn needs_sealed_binary() -> bool {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--root" | "--log" | "--log-format" | "--criu" => {
                args.next();
            }
            s if s.starts_with('-') => {}
            cmd => return matches!(cmd, "create" | "run" | "exec"),
        }
    }
    false
}
