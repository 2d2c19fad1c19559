//! `attach`: our terminal on a running container's stdio, through its monitor's socket
//! (a Hello frame, then the relay `run` uses); Ctrl-P Ctrl-Q detaches, leaving it running.

use anyhow::{bail, Context as _, Result};
use berth_engine::lifecycle;
use berth_engine::monitor::proto::{self, Kind};
use berth_engine::records::Status;
use clap::Args;

use super::relay::{self, RawMode};
use crate::commands::Context;

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    pub container: String,
}

pub fn run(ctx: &Context, args: AttachArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let record = lifecycle::refresh(&engine, engine.containers.find(&args.container)?)?;
    match record.state.status {
        Status::Running => {}
        Status::Paused => bail!(
            "container {} is paused: unpause it before attaching",
            args.container
        ),
        _ => bail!(
            "cannot attach to container {}: it is not running (start it first)",
            args.container
        ),
    }
    // As Docker: stdin only if the container was started with -i to keep it open.
    let stdin = !args.no_stdin && record.request.interactive;
    let tty = record.request.tty;
    let mut session = lifecycle::connect(&engine, &record)?;
    proto::write_json(
        &mut session.stream,
        Kind::Hello,
        &relay::attached_hello(stdin, tty),
    )
    .with_context(|| format!("talk to the monitor of {}", args.container))?;
    let _raw = (tty && stdin).then(RawMode::enable);
    Ok(relay::exit_code(
        &engine,
        &record.id,
        &mut session.stream,
        stdin,
        tty,
    )?)
}
