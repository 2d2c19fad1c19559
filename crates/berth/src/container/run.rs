//! `run`, `create`, `start`: a record from flags and an image (pulled per `--pull`), then a
//! monitor, attached to the terminal unless detached.

use std::io::IsTerminal;

use anyhow::{bail, Result};
use berth_engine::attach::AttachOptions;
use berth_engine::images;
use berth_engine::lifecycle::{self, ImageRef};
use berth_engine::request::RunRequest;
use berth_engine::Engine;
use clap::Args;

use super::flags::RunFlags;
use super::relay::{self, RawMode};
use crate::commands::Context;

/// `-h` is `--hostname` here, as in Docker: help is `--help` only.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), hide_default_value = true)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub flags: RunFlags,
}

/// `create`: `run`'s flags but those of a client that stays attached.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub flags: RunFlags,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(ctx: &Context, args: RunArgs) -> Result<i32> {
    let req = args.flags.request()?;
    let keys = relay::detach_keys(args.flags.detach_keys.as_deref())?;
    // Only a client that attaches needs a terminal: `run -dit` from a script is fine (Docker).
    if req.interactive && req.tty && !req.detach && !std::io::stdin().is_terminal() {
        bail!("the input device is not a TTY: drop -t, or run from a terminal");
    }
    let engine = ctx.engine()?;
    // The monitor starts now, beside the image's resolution and the record's creation (on
    // another core); should they fail, it leaves without a trace.
    let id = lifecycle::NewId::new()?;
    let monitor = lifecycle::spawn_monitor(&engine, &id)?;
    let record = create_record(ctx, &engine, req, args.flags.quiet, Some(id))?;
    let req = &record.request;
    if req.detach {
        let started =
            lifecycle::start_created(&engine, record, &AttachOptions::default(), monitor)?;
        print_warnings(&started);
        outln!("{}", started.record.id);
        return Ok(0);
    }
    let (stdin, tty) = (req.interactive, req.tty);
    let relayed = Relayed {
        stdin,
        tty,
        proxy: args.sig_proxy,
        keys,
    };
    attach_start(&engine, relayed, |attached| {
        lifecycle::start_created(&engine, record, attached, monitor)
    })
}

/// How a started container's session is relayed: our stdin to it, a terminal, our signals to
/// its process (`--sig-proxy`), the keys that detach.
struct Relayed {
    stdin: bool,
    tty: bool,
    proxy: bool,
    keys: relay::DetachKeys,
}

/// Starts the container by `start` (`run`'s new one, or `start -a`'s) with our terminal
/// attached; returns the container's exit code. A detach (`keys`) leaves it running and is a
/// success, as Docker's.
fn attach_start(
    engine: &Engine,
    relayed: Relayed,
    start: impl FnOnce(&AttachOptions) -> berth_engine::Result<lifecycle::Started>,
) -> Result<i32> {
    let Relayed {
        stdin,
        tty,
        proxy,
        keys,
    } = relayed;
    let _raw = (tty && stdin).then(RawMode::enable);
    let mut started = start(&relay::attached(stdin, tty))?;
    print_warnings(&started);
    let id = &started.record.id;
    let ended = relay::exit_code(engine, id, &mut started.session, stdin, tty, proxy, keys)?;
    Ok(ended.unwrap_or(0))
}

pub fn create(ctx: &Context, args: CreateArgs) -> Result<i32> {
    let req = args.flags.request()?;
    let engine = ctx.engine()?;
    let record = create_record(ctx, &engine, req, args.flags.quiet, None)?;
    for w in &record.warnings {
        eprintln!("WARNING: {w}");
    }
    outln!("{}", record.id);
    Ok(0)
}

pub fn start(ctx: &Context, args: StartArgs) -> Result<i32> {
    let keys = relay::detach_keys(args.detach_keys.as_deref())?;
    let engine = ctx.engine()?;
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let record = engine.containers.find(&args.containers[0])?;
        // Docker's `start -a` always passes our signals on (it has no --sig-proxy).
        let relayed = Relayed {
            stdin: args.interactive,
            tty: record.request.tty,
            proxy: true,
            keys,
        };
        return attach_start(&engine, relayed, |attached| {
            lifecycle::start(&engine, &record.id, attached)
        });
    }
    let mut failed = false;
    for key in &args.containers {
        let record = match engine.containers.find(key) {
            Ok(r) => lifecycle::refresh(&engine, r)?,
            Err(e) => {
                eprintln!("berth: {e}");
                failed = true;
                continue;
            }
        };
        if record.state.status.is_live() {
            outln!("{key}");
            continue;
        }
        match lifecycle::start(&engine, &record.id, &AttachOptions::default()) {
            Ok(_) => outln!("{key}"),
            Err(e) => {
                eprintln!("berth: {e}");
                failed = true;
            }
        }
    }
    if failed {
        bail!("error starting some containers");
    }
    Ok(0)
}

/// The image per `--pull`, then the record. What needs no image is checked first, so a bad
/// flag costs no download.
fn create_record(
    ctx: &Context,
    engine: &Engine,
    req: RunRequest,
    quiet: bool,
    id: Option<lifecycle::NewId>,
) -> Result<berth_engine::records::Record> {
    lifecycle::validate(engine, &req)?;
    // The docker CLI's own warning, before the engine's.
    if req.oom_kill_disable && req.memory.is_none() {
        eprintln!(
            "WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' limit may be dangerous."
        );
    }
    let image = images::resolve_or_pull(
        engine,
        &req.image,
        req.platform.as_deref(),
        &req.pull,
        &ctx.registry_options(),
        if quiet {
            &berth_image::progress::Silent as &dyn berth_image::progress::Progress
        } else {
            &crate::progress::Notices
        },
    )?;
    let image_ref = ImageRef::of(&image);
    Ok(match id {
        Some(id) => lifecycle::create_with(engine, req, &image_ref, id)?,
        None => lifecycle::create(engine, req, &image_ref)?,
    })
}

/// What the container's creation and its network attach warned about (limits a rootless host
/// ignores, a host firewall that drops forwarded traffic), on stderr as Docker prints its
/// warnings: berth never opens a port silently in vain. The creation's from the record, the
/// network's as the monitor told them when it started the container (a `--rm` container that
/// ended at once may be gone with its record already).
fn print_warnings(started: &lifecycle::Started) {
    for w in started.record.warnings.iter().chain(&started.warnings) {
        eprintln!("WARNING: {w}");
    }
}
