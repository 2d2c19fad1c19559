//! `exec`: a new process in a running container, started by the container's monitor (the
//! engine's exec); its streams relayed to our terminal, its exit code ours.

use anyhow::{bail, Result};
use berth_engine::exec::{self, ExecConfig};
use clap::Args;

use super::relay::{self, Ended, RawMode};
use crate::commands::Context;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(ctx: &Context, args: ExecArgs) -> Result<i32> {
    let keys = relay::detach_keys(args.detach_keys.as_deref())?;
    let engine = ctx.engine()?;
    let config = ExecConfig {
        cmd: args.command,
        // The files' then the flags', a bare KEY taking our value (as run's, and Docker's).
        env: super::flag_values::env(&args.env, &args.env_file)?,
        workdir: args.workdir,
        user: args.user,
        tty: args.tty,
        attach_stdin: args.interactive,
        attach_stdout: !args.detach,
        attach_stderr: !args.detach,
        detach_keys: args.detach_keys.unwrap_or_default(),
        privileged: args.privileged,
    };
    let record = exec::create(&engine, &args.container, config)?;
    let size = if args.tty {
        relay::terminal_size()
    } else {
        None
    };
    let exec_id = record.id.clone();
    let mut session = exec::start_created(&engine, record, args.detach, size)?;
    if args.detach {
        return Ok(0);
    }
    let raw = (args.tty && args.interactive).then(RawMode::enable);
    // No signal proxy: as with Docker, a signal to `exec` is not the process's.
    let ended = relay::relay(&mut session, args.interactive, args.tty, false, keys)?;
    drop(raw);
    match ended {
        Ended::Exit(code) => Ok(code),
        Ended::Detached => Ok(relay::escaped()),
        Ended::Closed => bail!(
            "exec {}: the container's monitor went away before the process ended",
            berth_engine::error::short(&exec_id)
        ),
    }
}
