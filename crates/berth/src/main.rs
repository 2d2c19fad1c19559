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
mod container;
mod format;
mod progress;
mod template;

use std::process::ExitCode;

/// Docker's exit status when `run` or `create` fails in the engine (not in the container).
const EXIT_ENGINE_ERROR: u8 = 125;

/// Docker's exit status for every other command's error (`No such container`, a conflict...).
const EXIT_ERROR: u8 = 1;

fn main() -> ExitCode {
    if let Some(code) = monitor() {
        return ExitCode::from(code);
    }
    let cli = match cli::Cli::parse_args() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        // A bare `berth` or `berth volume`: the help, on stdout, as Docker prints it.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            outln!("{}", e.render().to_string().trim_end());
            return ExitCode::SUCCESS;
        }
        // About the command line as typed, so under the name it was typed with (`docker`).
        Err(e) => {
            let (line, code) = cli::usage_error(&e);
            eprintln!("{}: {line}", cli::program_name());
            return ExitCode::from(code);
        }
    };
    // As the docker CLI: run and create say 125 when the engine fails, to tell it from the
    // container's own status; every other command says 1.
    let failed = if cli.command.creates_a_container() {
        EXIT_ENGINE_ERROR
    } else {
        EXIT_ERROR
    };
    // A user's berth works in its rootless namespaces, joined while this process has one
    // thread (parsing started none); root's goes on as it is.
    match berth_engine::rootless::enter() {
        Ok(warnings) => warnings
            .iter()
            .for_each(|w| eprintln!("berth: warning: {w}")),
        Err(e) => {
            eprintln!("berth: {e}");
            return ExitCode::from(failed);
        }
    }
    protect_build(&cli.command);
    match commands::run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(255)),
        Err(e) => {
            eprintln!("berth: {}", error_line(&e));
            let code = if e.downcast_ref::<cli::FlagError>().is_some() {
                EXIT_ENGINE_ERROR
            } else if e.downcast_ref::<cli::OsTypeError>().is_some() {
                EXIT_ERROR
            } else {
                e.downcast_ref::<berth_engine::Error>()
                    .and_then(berth_engine::Error::command_code)
                    .unwrap_or(failed)
            };
            ExitCode::from(code)
        }
    }
}

/// `berth --root R __monitor ID`: the per-container monitor, dispatched before any argument
/// parsing or thread. It forks the container's init, so it runs from a sealed copy of the
/// binary (CVE-2019-5736), as berth-runc does.
fn monitor() -> Option<u8> {
    let args: Vec<String> = std::env::args().collect();
    let (root, id) = match args.as_slice() {
        [_, flag, root, cmd, id] if flag == "--root" && cmd == "__monitor" => (root, id),
        [_, flag, root, cmd] if flag == "--root" && cmd == "__netns" => {
            return Some(netns_op(root));
        }
        [_, flag, root, cmd, id, dir] if flag == "--root" && cmd == "__stopped-root" => {
            return Some(stopped_root(root, id, dir));
        }
        [_, cmd, net, flag, root] if cmd == "__dns" && flag == "--root" => {
            return Some(
                match berth_net::dns::serve(std::path::Path::new(root), net) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("berth dns {net}: {e}");
                        1
                    }
                },
            );
        }
        _ => return None,
    };
    if !berth_sys::seal::is_sealed() && !berth_sys::seal::is_protected() {
        let err = berth_sys::seal::reexec_protected();
        eprintln!("berth monitor: re-execute from a sealed copy of the binary: {err}");
        return Some(1);
    }
    // The on-disk binary (the CLI passes it): what the monitor spawns, e.g. a network's DNS
    // server, must not run from this monitor's sealed copy.
    let exe = std::env::var_os("BERTH_EXE").unwrap_or_else(|| "/proc/self/exe".into());
    let opened = berth_engine::config::Config::of_monitor().and_then(|config| {
        let mut engine =
            berth_engine::Engine::open(std::path::Path::new(root), std::path::Path::new(&exe))?;
        engine.config = config;
        Ok(engine)
    });
    let engine = match opened {
        Ok(e) => e,
        Err(e) => {
            eprintln!("berth monitor: {e}");
            return Some(1);
        }
    };
    Some(u8::try_from(berth_engine::monitor::main(&engine, id)).unwrap_or(1))
}

/// `berth --root R __netns`: a user networks' change for a threaded front end (the API
/// service), run from this fresh single-threaded process (berth_engine::rootless::netops).
fn netns_op(root: &str) -> u8 {
    match helper_engine(root) {
        Ok(engine) => u8::try_from(berth_engine::rootless::netops::serve(&engine)).unwrap_or(1),
        Err(e) => {
            eprintln!("berth __netns: {e}");
            1
        }
    }
}

/// `berth --root R __stopped-root ID DIR`: a stopped container's root and volumes mounted for
/// a copy in a mount namespace of this process's own (berth_engine::rootfs::IsolatedRoot).
fn stopped_root(root: &str, id: &str, dir: &str) -> u8 {
    let served = helper_engine(root)
        .and_then(|engine| berth_engine::rootfs::serve(&engine, id, std::path::Path::new(dir)));
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth: {e}");
            1
        }
    }
}

/// The engine of a helper the engine spawned on data root `root` (`__netns`, `__stopped-root`),
/// with the configuration files its front end named.
fn helper_engine(root: &str) -> Result<berth_engine::Engine, berth_engine::Error> {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let config = berth_engine::config::Config::of_monitor()?;
    let mut engine = berth_engine::Engine::open(std::path::Path::new(root), &exe)?;
    engine.config = config;
    Ok(engine)
}

/// One line for an error: its chain joined. berth-image's, berth-engine's and berth-build's
/// errors already carry their causes in their own line: the binary's context is printed above
/// them, once.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        parts.push(cause.to_string());
        if cause.downcast_ref::<berth_image::Error>().is_some()
            || cause.downcast_ref::<berth_engine::Error>().is_some()
            || cause.downcast_ref::<berth_build::Error>().is_some()
        {
            break;
        }
    }
    parts.join(": ")
}

/// `build` creates its RUN steps' containers itself, through the runtime, as a monitor does:
/// their processes could open `/proc/<pid>/exe` of ours, so it runs from the read-only view of
/// the binary (or a sealed copy). Decided on the parsed command line (parsing starts no
/// thread), so global flags with values cannot hide the command.
fn protect_build(command: &cli::Command) {
    use cli::{Command, ImageCommand};
    let builds = matches!(
        command,
        Command::Build(_) | Command::Image(ImageCommand::Build(_))
    );
    if !builds || berth_sys::seal::is_sealed() || berth_sys::seal::is_protected() {
        return;
    }
    let err = berth_sys::seal::reexec_protected();
    eprintln!("berth: re-execute from a protected copy of the binary: {err}");
    std::process::exit(125);
}
