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
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), hide_default_value = true)]
    pub sig_proxy: bool,
    pub container: String,
}

pub fn run(ctx: &Context, args: AttachArgs) -> Result<i32> {
    let keys = relay::detach_keys(args.detach_keys.as_deref())?;
    let engine = ctx.engine()?;
    // Our terminal's size whatever the container's mode: the monitor applies it to a pty only.
    let options = relay::attached(!args.no_stdin, true);
    let (record, mut session) = attach::attach(&engine, &args.container, &options)?;
    // What the engine granted: stdin only to a container created with -i.
    let stdin = options.stdin && record.request.interactive;
    let tty = record.request.tty;
    let raw = (tty && stdin).then(RawMode::enable);
    let proxy = args.sig_proxy;
    let ended = relay::exit_code(&engine, &record.id, &mut session, stdin, tty, proxy, keys)?;
    drop(raw);
    Ok(ended.unwrap_or_else(relay::escaped))
}
