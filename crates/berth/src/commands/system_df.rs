//! `berth system df`: disk used by images, containers and volumes, as the engine measures it
//! and with the docker CLI's lines.

use anyhow::Result;
use berth_engine::df::Line;
use clap::Args;

use super::Context;
use crate::format::{human_size_with, print_table};

#[derive(Args, Debug)]
pub struct DfArgs {}

pub fn run(ctx: &Context, _args: DfArgs) -> Result<()> {
    let usage = berth_engine::df::disk_usage(&ctx.engine()?)?;
    for skipped in &usage.skipped {
        eprintln!("berth: {skipped}");
    }
    let rows: Vec<Vec<String>> = usage.lines().iter().map(row).collect();
    print_table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows);
    Ok(())
}

/// One line, sizes as the docker CLI prints them here (four digits), RECLAIMABLE with its
/// percentage of the size when there is a size (the build cache's without, as the docker CLI
/// prints it).
fn row(line: &Line) -> Vec<String> {
    let human_size = |bytes| human_size_with(bytes, 4);
    let percent = (line.reclaimable * 100).checked_div(line.size);
    let reclaimable = match percent.filter(|_| line.kind != "Build Cache") {
        Some(percent) => format!("{} ({percent}%)", human_size(line.reclaimable)),
        None => human_size(line.reclaimable),
    };
    vec![
        line.kind.into(),
        line.total.to_string(),
        line.active.to_string(),
        human_size(line.size),
        reclaimable,
    ]
}
