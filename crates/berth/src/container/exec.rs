//! `exec`: a new process in a running container, run by this CLI through berth-runtime (no
//! daemon hop): its stdio is ours, or a pty we relay with `-t`.

use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;

use anyhow::{bail, Context as _, Result};
use berth_engine::lifecycle;
use berth_engine::records::Status;
use berth_runtime::exec::ExecOptions;
use clap::Args;
use oci_spec::runtime::{Process, Spec, User};

use super::relay::{self, RawMode};
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
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(ctx: &Context, args: ExecArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let record = lifecycle::refresh(&engine, engine.containers.find(&args.container)?)?;
    match record.state.status {
        Status::Running => {}
        Status::Paused => bail!(
            "container {} is paused: unpause it before exec",
            args.container
        ),
        _ => bail!("container {} is not running", args.container),
    }
    let dir = engine.containers.dir(&record.id);
    let spec: Spec = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)
        .context("read the container's config.json")?;
    let mut process: Process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    let mut env = process.env().clone().unwrap_or_default();
    if args.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    for e in &args.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    process.set_env(Some(env));
    if let Some(w) = &args.workdir {
        process.set_cwd(w.into());
    }
    if let Some(u) = &args.user {
        let resolved =
            berth_engine::spec::resolve_user(&berth_engine::bundle::rootfs(&dir), u, &[])?;
        let mut user = User::default();
        user.set_uid(resolved.uid);
        user.set_gid(resolved.gid);
        user.set_additional_gids(Some(resolved.gids));
        process.set_user(user);
    }
    if !args.interactive && !args.detach {
        // Docker gives a non-interactive exec no stdin.
        let null = std::fs::File::open("/dev/null")?;
        berth_sys::fd::dup_onto(null.as_fd(), 0)?;
    }
    let mut opts = ExecOptions {
        process,
        console_socket: None,
        pid_file: None,
        detach: args.detach,
        preserve_fds: 0,
        ignore_paused: false,
        sub_cgroup: None,
    };
    if args.detach {
        let null = std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        for fd in 0..3 {
            berth_sys::fd::dup_onto(null.as_fd(), fd)?;
        }
    }
    if !args.tty {
        let code = berth_runtime::exec::exec(&engine.runtime, &record.id, &opts)
            .map_err(lifecycle::command_error)?;
        return Ok(code);
    }
    tty_exec(&engine, &record.id, &mut opts, args.detach)
}

/// `-t`: the runtime hands us the pty master over a console socket; we relay until the
/// process exits and return its code.
fn tty_exec(
    engine: &berth_engine::Engine,
    id: &str,
    opts: &mut ExecOptions,
    detach: bool,
) -> Result<i32> {
    let tmp = tempfile::Builder::new().prefix("berth-exec").tempdir()?;
    let sock = tmp.path().join("c.sock");
    let listener = UnixListener::bind(&sock)?;
    let pid_file = tmp.path().join("pid");
    opts.console_socket = Some(sock);
    opts.pid_file = Some(pid_file.clone());
    opts.detach = true;
    berth_runtime::exec::exec(&engine.runtime, id, opts).map_err(lifecycle::command_error)?;
    let (conn, _) = listener.accept()?;
    let master = berth_sys::fd::recv_fd(conn.as_fd())?;
    if detach {
        return Ok(0);
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    let pidfd = berth_sys::process::pidfd_open(pid)?;
    {
        let _raw = RawMode::enable();
        relay::pty(master.as_fd(), pidfd.as_fd())?;
    }
    Ok(berth_runtime::container::wait_exit(pid)?)
}
