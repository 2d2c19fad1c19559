//! `inspect` of containers (Docker's JSON, or `--format`); `berth inspect` falls back to images
//! for names that are not containers, as Docker does.

use anyhow::{bail, Context as _, Result};
use berth_engine::lifecycle;

use crate::commands::inspect::InspectArgs;
use crate::commands::Context;

pub fn run(ctx: &Context, args: InspectArgs, images_too: bool) -> Result<i32> {
    let engine = ctx.engine()?;
    let template = match args.format.as_str() {
        "" | "json" => None,
        source => {
            Some(crate::template::parse(source).with_context(|| format!("--format {source:?}"))?)
        }
    };
    let mut found = Vec::new();
    let mut rest = Vec::new();
    for key in &args.images {
        match engine.containers.find(key) {
            Ok(r) => {
                let r = lifecycle::refresh(&engine, r)?;
                found.push(berth_engine::inspect::container(&engine, &r));
            }
            Err(berth_engine::Error::NoSuchContainer(_)) => rest.push(key.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    match &template {
        None if rest.is_empty() || !found.is_empty() => {
            outln!("{}", serde_json::to_string_pretty(&found)?)
        }
        None => {}
        Some(t) => {
            for v in &found {
                outln!("{}", t.render(v)?);
            }
        }
    }
    if rest.is_empty() {
        return Ok(0);
    }
    if images_too && found.is_empty() {
        crate::commands::inspect::run(
            ctx,
            InspectArgs {
                images: rest,
                format: args.format,
            },
        )?;
        return Ok(0);
    }
    bail!("No such container: {}", rest.join(", "))
}
