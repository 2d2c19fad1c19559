//! `inspect`: Docker's JSON (or `--format`) for containers, images, networks and volumes.
//! `berth inspect` without `--type` looks each name up as Docker does (a container, an image,
//! a network, then a volume); `container inspect` and `image inspect` look up their kind only.

use anyhow::{bail, Context as _, Result};
use berth_engine::lifecycle;
use clap::Args;
use serde_json::Value;

use crate::commands::Context;

/// What `container inspect` and `image inspect` take.
#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
    /// Format output: "json" (the default) or a Go template ("{{.Id}} {{json .Config}}")
    #[arg(short, long, default_value = "json")]
    pub format: String,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
}

/// What `berth inspect` takes.
#[derive(Args, Debug)]
pub struct AnyInspectArgs {
    #[command(flatten)]
    pub args: InspectArgs,
    /// Return JSON for specified type (container, image, network, volume)
    #[arg(long = "type", value_parser = ["container", "image", "network", "volume"])]
    pub kind: Option<String>,
}

/// The kinds of object a name may be, in Docker's lookup order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

const ALL: [Kind; 4] = [Kind::Container, Kind::Image, Kind::Network, Kind::Volume];

impl Kind {
    fn parse(s: &str) -> Kind {
        match s {
            "container" => Kind::Container,
            "image" => Kind::Image,
            "network" => Kind::Network,
            _ => Kind::Volume,
        }
    }
}

/// `berth inspect`: the kinds `--type` names, else all.
pub fn run_any(ctx: &Context, a: AnyInspectArgs) -> Result<i32> {
    match a.kind.as_deref().map(Kind::parse) {
        Some(kind) => run(ctx, a.args, &[kind]),
        None => run(ctx, a.args, &ALL),
    }
}

/// Prints what was found (the JSON list, or one template line each), then fails naming what
/// was not, as Docker does.
pub fn run(ctx: &Context, args: InspectArgs, kinds: &[Kind]) -> Result<i32> {
    let template = match args.format.as_str() {
        "" | "json" => None,
        source => {
            Some(crate::template::parse(source).with_context(|| format!("--format {source:?}"))?)
        }
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &args.names {
        match lookup(ctx, name, kinds, args.size)? {
            Some(v) => found.push(v),
            None => missing.push(name.as_str()),
        }
    }
    match &template {
        None => outln!("{}", crate::commands::inspect::pretty_json(&found)?),
        Some(t) => {
            for v in &found {
                let line = t
                    .render(v)
                    .with_context(|| format!("--format {:?}", args.format))?;
                outln!("{line}");
            }
        }
    }
    if missing.is_empty() {
        return Ok(0);
    }
    let what = match kinds {
        [Kind::Container] => "No such container",
        [Kind::Image] => "No such image",
        [Kind::Network] => "No such network",
        [Kind::Volume] => "No such volume",
        _ => "No such object",
    };
    bail!("{what}: {}", missing.join(", "))
}

/// The first object of `kinds` named `name`.
fn lookup(ctx: &Context, name: &str, kinds: &[Kind], size: bool) -> Result<Option<Value>> {
    for kind in kinds {
        let found = match kind {
            Kind::Container => {
                let engine = ctx.engine()?;
                match engine.containers.find(name) {
                    Ok(r) => {
                        let r = lifecycle::refresh(&engine, r)?;
                        let mut v = berth_engine::inspect::container(&engine, &r);
                        if size {
                            let (rw, root) = berth_engine::inspect::sizes(&engine, &r);
                            v["SizeRw"] = rw.into();
                            v["SizeRootFs"] = root.into();
                        }
                        Some(v)
                    }
                    Err(berth_engine::Error::NoSuchContainer(_)) => None,
                    Err(e) => return Err(e.into()),
                }
            }
            Kind::Image => {
                let store = ctx.store()?;
                match store.resolve(name) {
                    Ok(image) => Some(serde_json::to_value(berth_image::inspect::docker_inspect(
                        &store, &image,
                    ))?),
                    Err(berth_image::Error::NoSuchImage(_)) => None,
                    Err(e) => return Err(e.into()),
                }
            }
            Kind::Network => crate::commands::network::inspect_one(ctx, name)?,
            Kind::Volume => match berth_engine::volumes::inspect(&ctx.engine()?, name) {
                Ok(v) => Some(serde_json::to_value(&v)?),
                Err(berth_engine::Error::NoSuchVolume(_)) => None,
                Err(e) => return Err(e.into()),
            },
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}
