//! `volume create/ls/inspect/rm/prune`: Docker's local-driver volumes, over
//! berth_engine::volumes.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use berth_engine::filters::Filters;
use berth_engine::volumes;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::commands::Context;

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused anonymous volumes (all unused with -a)
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name (only "local")
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume (key=value)
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options (type, device, o)
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a Go template, or "json"
    #[arg(long)]
    pub format: Option<String>,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long)]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Remove a volume stopped containers still refer to
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(ctx: &Context, cmd: VolumeCommand) -> Result<i32> {
    let engine = ctx.engine()?;
    match cmd {
        VolumeCommand::Create(a) => {
            if a.driver != "local" {
                bail!(
                    "volume driver {:?}: berth has only the local driver",
                    a.driver
                );
            }
            let labels = labels(&a.label)?;
            let v = volumes::create(&engine, a.name.as_deref(), labels, options(&a.opt)?)?;
            outln!("{}", v.name);
            Ok(0)
        }
        VolumeCommand::Ls(a) => ls(&engine, a),
        VolumeCommand::Inspect(a) => inspect(&engine, a),
        VolumeCommand::Rm(a) => {
            let mut failed = 0;
            for name in &a.volumes {
                match volumes::remove(&engine, name, a.force) {
                    Ok(()) => outln!("{name}"),
                    Err(e) => {
                        eprintln!("berth: {e}");
                        failed += 1;
                    }
                }
            }
            Ok(if failed > 0 { 1 } else { 0 })
        }
        VolumeCommand::Prune(a) => {
            let what = if a.all {
                "This will remove all local volumes not used by at least one container."
            } else {
                "This will remove anonymous local volumes not used by at least one container."
            };
            if !crate::commands::confirmed(a.force, what)? {
                return Ok(0);
            }
            let (removed, freed) = volumes::prune(&engine, a.all, &Filters::default())?;
            if !removed.is_empty() {
                outln!("Deleted Volumes:");
                for n in &removed {
                    outln!("{n}");
                }
                outln!();
            }
            outln!(
                "Total reclaimed space: {}",
                crate::format::human_size(freed)
            );
            Ok(0)
        }
    }
}

fn labels(args: &[String]) -> Result<BTreeMap<String, String>> {
    args.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            None if !l.is_empty() => Ok((l.clone(), String::new())),
            _ => bail!("--label {l:?}: use key=value"),
        })
        .collect()
}

/// `-o key=value`, as the docker CLI's map options read them (a bare key is an empty value).
fn options(args: &[String]) -> Result<BTreeMap<String, String>> {
    Ok(args
        .iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o.clone(), String::new()),
        })
        .collect())
}

const TITLES: &[(&str, &str)] = &[
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Scope", "SCOPE"),
    ("CreatedAt", "CREATED AT"),
];

fn ls(engine: &berth_engine::Engine, a: LsArgs) -> Result<i32> {
    let filters = Filters::parse(&a.filter, volumes::LIST_FILTERS)?;
    let all = volumes::list_filtered(engine, &filters)?;
    if a.quiet {
        for v in &all {
            outln!("{}", v.name);
        }
        return Ok(0);
    }
    let items: Vec<Value> = all
        .iter()
        .map(|v| {
            let labels: Vec<String> = v.labels.iter().map(|(k, l)| format!("{k}={l}")).collect();
            json!({
                "Driver": v.driver,
                "Name": v.name,
                "Mountpoint": v.mountpoint,
                "Labels": labels.join(","),
                "Scope": v.scope,
                "CreatedAt": v.created_at,
            })
        })
        .collect();
    let source = a
        .format
        .as_deref()
        .unwrap_or("table {{.Driver}}\t{{.Name}}");
    if source == "json" {
        for i in &items {
            outln!("{i}");
        }
        return Ok(0);
    }
    let template = crate::template::parse(source)?;
    crate::format::print_raw(&crate::format::render_list(&template, TITLES, &items)?);
    Ok(0)
}

fn inspect(engine: &berth_engine::Engine, a: InspectArgs) -> Result<i32> {
    let mut found = Vec::new();
    let mut failed = false;
    for name in &a.volumes {
        match volumes::inspect(engine, name) {
            Ok(v) => found.push(serde_json::to_value(&v)?),
            Err(e) => {
                eprintln!("berth: {e}");
                failed = true;
            }
        }
    }
    match &a.format {
        Some(f) => {
            let template = crate::template::parse(f)?;
            for v in &found {
                outln!("{}", template.render(v)?);
            }
        }
        None => outln!("{}", serde_json::to_string_pretty(&found)?),
    }
    Ok(if failed { 1 } else { 0 })
}
