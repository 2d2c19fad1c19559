//! `port`: the published ports of a container, from its network attachment.

use anyhow::Result;
use berth_engine::records::Record;
use clap::Args;

use crate::commands::Context;

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

/// Docker's PORTS column: `0.0.0.0:8080->80/tcp, ...`.
pub fn ports_text(record: &Record) -> String {
    berth_engine::inspect::ports(record)
        .iter()
        .map(|(c, h)| format!("{h}->{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(ctx: &Context, args: PortArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let record = engine.containers.find(&args.container)?;
    let want = args.port.map(|p| {
        if p.contains('/') {
            p
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (c, h) in berth_engine::inspect::ports(&record) {
        match &want {
            Some(w) if *w == c => {
                outln!("{h}");
                found = true;
            }
            Some(_) => {}
            None => {
                outln!("{c} -> {h}");
                found = true;
            }
        }
    }
    if let (Some(w), false) = (&want, found) {
        anyhow::bail!("no public port '{w}' published for {}", args.container);
    }
    Ok(0)
}
