//! `stop`, `restart`, `kill`, `rm`, `wait`, `pause`, `unpause`, `rename`, `container prune`:
//! each acts on every container named and reports each failure, as Docker does.

use anyhow::Result;
use berth_engine::lifecycle;
use berth_engine::Engine;
use clap::Args;

use crate::commands::Context;

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        alias = "time",
        allow_negative_numbers = true
    )]
    pub time: Option<i64>,
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

/// Runs `act` on each container, printing its key on success and each error on stderr.
pub(super) fn each(
    keys: &[String],
    mut act: impl FnMut(&str) -> Result<Option<String>>,
) -> Result<i32> {
    let mut failed = 0;
    for key in keys {
        match act(key) {
            Ok(Some(out)) => outln!("{out}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("berth: {}", crate::error_line(&e));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Ok(1);
    }
    Ok(0)
}

pub fn stop(ctx: &Context, args: StopArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    each(&args.containers, |key| {
        lifecycle::stop(&engine, key, args.time, args.signal.as_deref())?;
        Ok(Some(key.to_string()))
    })
}

pub fn restart(ctx: &Context, args: StopArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    each(&args.containers, |key| {
        lifecycle::restart(&engine, key, args.time, args.signal.as_deref())?;
        Ok(Some(key.to_string()))
    })
}

pub fn kill(ctx: &Context, args: KillArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    each(&args.containers, |key| {
        lifecycle::kill(&engine, key, &args.signal)?;
        Ok(Some(key.to_string()))
    })
}

pub fn rm(ctx: &Context, args: RmArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    each(&args.containers, |key| {
        lifecycle::remove(&engine, key, args.force, args.volumes)?;
        Ok(Some(key.to_string()))
    })
}

pub fn wait(ctx: &Context, args: NamesArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    each(&args.containers, |key| {
        Ok(Some(lifecycle::wait(&engine, key)?.to_string()))
    })
}

pub fn pause(ctx: &Context, args: NamesArgs, pause: bool) -> Result<i32> {
    let engine = ctx.engine()?;
    each(&args.containers, |key| {
        lifecycle::pause(&engine, key, pause)?;
        Ok(Some(key.to_string()))
    })
}

pub fn rename(ctx: &Context, args: RenameArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    berth_engine::names::rename(&engine, &args.container, &args.new_name)?;
    Ok(0)
}

pub fn prune(ctx: &Context, args: PruneArgs) -> Result<i32> {
    if !crate::commands::confirmed(args.force, "This will remove all stopped containers.")? {
        return Ok(0);
    }
    let filter = berth_engine::prune::Filter::parse(&args.filter)?;
    let pruned = pruned(&ctx.engine()?, &filter)?;
    if !pruned.removed.is_empty() {
        outln!("Deleted Containers:");
        pruned.removed.iter().for_each(|id| outln!("{id}"));
        outln!();
    }
    outln!(
        "Total reclaimed space: {}",
        crate::format::human_size(pruned.freed)
    );
    Ok(if pruned.failed.is_empty() { 0 } else { 1 })
}

/// The engine's container prune, what it skipped and what failed on stderr. Also `system
/// prune`'s.
pub fn pruned(
    engine: &Engine,
    filter: &berth_engine::prune::Filter,
) -> Result<berth_engine::prune::Pruned> {
    let pruned = berth_engine::prune::containers(engine, filter)?;
    for skipped in &pruned.skipped {
        eprintln!("berth: {skipped}");
    }
    for e in &pruned.failed {
        eprintln!("berth: {e}");
    }
    Ok(pruned)
}
