//! `top`: the engine's listing of a container's processes (host PIDs; `--tree` under its
//! monitor; the host's `ps` with options given), as a table.

use anyhow::Result;
use berth_engine::top;
use clap::Args;

use crate::commands::Context;

#[derive(Args, Debug)]
pub struct TopArgs {
    /// Draw the processes as a tree under the container's monitor (host PIDs)
    #[arg(long)]
    pub tree: bool,
    pub container: String,
    /// Options for ps (default: -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_options: Vec<String>,
}

pub fn run(ctx: &Context, args: TopArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let listing = if args.tree {
        top::tree(&engine, &args.container)?
    } else {
        top::top(&engine, &args.container, &args.ps_options)?
    };
    let titles: Vec<&str> = listing.titles.iter().map(String::as_str).collect();
    crate::format::print_table(&titles, &listing.processes);
    Ok(0)
}
