//! `berth image inspect`: Docker-compatible JSON for images, or each rendered by `--format`.

use anyhow::{bail, Context as _, Result};
use berth_image::inspect::docker_inspect;
use clap::Args;
use serde::Serialize;

use super::Context;
use crate::format::print_raw;
use crate::template;

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Format output: "json" (the default) or a Go template ("{{.Id}} {{json .Config}}")
    #[arg(short, long, default_value = "json")]
    pub format: String,
}

pub fn run(ctx: &Context, args: InspectArgs) -> Result<()> {
    // Parse first: a bad template fails before any work, naming its column.
    let template = match args.format.as_str() {
        "" | "json" => None,
        source => Some(template::parse(source).with_context(|| format!("--format {source:?}"))?),
    };
    let store = ctx.store()?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for input in &args.images {
        match store.resolve(input) {
            Ok(image) => found.push(docker_inspect(&store, &image)),
            Err(e) => missing.push(e.to_string()),
        }
    }
    // Docker prints what it found, then fails for what it did not.
    match template {
        None => print_raw(&(pretty_json(&found)? + "\n")),
        Some(template) => {
            for object in &found {
                let line = template
                    .render(object)
                    .with_context(|| format!("--format {:?}", args.format))?;
                print_raw(&(line + "\n"));
            }
        }
    }
    if !missing.is_empty() {
        bail!("{}", missing.join("; "));
    }
    Ok(())
}

/// JSON indented by four spaces, as Docker prints it.
fn pretty_json(value: &impl Serialize) -> Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, formatter,
    ))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
