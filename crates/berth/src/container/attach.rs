//! `attach`: our terminal on a running container's stdio, through an engine session (the
//! relay `run` uses); Ctrl-P Ctrl-Q detaches, leaving it running.

use anyhow::Result;
use berth_engine::attach;
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
    // Our terminal's size whatever the container's mode: the monitor applies it to a pty only.
    let options = relay::attached(!args.no_stdin, true);
    let (record, mut session) = attach::attach(&engine, &args.container, &options)?;
    // What the engine granted: stdin only to a container created with -i.
    let stdin = options.stdin && record.request.interactive;
    let tty = record.request.tty;
    let _raw = (tty && stdin).then(RawMode::enable);
    Ok(relay::exit_code(
        &engine,
        &record.id,
        &mut session,
        stdin,
        tty,
    )?)
}
