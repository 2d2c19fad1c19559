//! berth: the Docker-like command line. Parses, validates, then hands each command to its
//! module under `commands/`; berth's own errors exit 125, as Docker's do.
#![forbid(unsafe_code)]

/// `println!` that stops quietly when the reader has gone (`berth images | head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod cli;
mod commands;
mod format;
mod progress;
mod template;

use std::process::ExitCode;

use clap::Parser;

/// Docker's exit status for an error of the engine itself (not of a container).
const EXIT_ENGINE_ERROR: u8 = 125;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_ENGINE_ERROR);
        }
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // berth-image errors already carry their whole chain in one line; print the
            // binary's own context above them once.
            let mut parts = Vec::new();
            for cause in e.chain() {
                parts.push(cause.to_string());
                if cause.downcast_ref::<berth_image::Error>().is_some() {
                    break;
                }
            }
            eprintln!("berth: {}", parts.join(": "));
            ExitCode::from(EXIT_ENGINE_ERROR)
        }
    }
}
