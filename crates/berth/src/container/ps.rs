//! `ps`: containers as Docker lists them (table, `-q`, `--format`, filters), with the truth
//! about each monitor checked first.

use anyhow::Result;
use berth_engine::records::Record;
use berth_engine::{ps, Engine};
use clap::Args;
use serde_json::{json, Value};

use crate::commands::Context;
use crate::format;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last")]
    pub last: Option<usize>,
    /// Show the latest created container
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Filter output (status=, name=, id=, label=, ancestor=, exited=, network=, volume=,
    /// before=, since=)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Pretty-print containers using a Go template, or "json"
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

const TITLES: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("Size", "SIZE"),
];

pub fn run(ctx: &Context, args: PsArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let options = ps::Options {
        all: args.all,
        limit: if args.latest { Some(1) } else { args.last },
        filters: args.filter.clone(),
    };
    let records = crate::commands::listed(ps::list(&engine, &options)?);
    if args.quiet {
        for r in &records {
            outln!("{}", if args.no_trunc { &r.id } else { &r.id[..12] });
        }
        return Ok(0);
    }
    // As the docker CLI, a template that shows the size asks for it.
    let size = args.size || args.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let items: Vec<Value> = records
        .iter()
        .map(|r| item(&engine, r, args.no_trunc, size))
        .collect();
    let default = if args.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    let source = args.format.as_deref().unwrap_or(default);
    if source == "json" {
        for i in &items {
            outln!("{i}");
        }
        return Ok(0);
    }
    let template = crate::template::parse(source)?;
    format::print_raw(&format::render_list(&template, TITLES, &items)?);
    Ok(0)
}

/// The COMMAND column: quoted, cut to 20 characters with an ellipsis unless `no_trunc`.
pub fn command_text(command: &str, no_trunc: bool) -> String {
    if no_trunc || command.chars().count() <= 20 {
        format!("\"{command}\"")
    } else {
        format!("\"{}…\"", command.chars().take(19).collect::<String>())
    }
}

fn item(engine: &Engine, r: &Record, no_trunc: bool, size: bool) -> Value {
    let command = command_text(&ps::command(engine, r), no_trunc);
    let created = humantime::parse_rfc3339_weak(&r.created).ok();
    let ports = crate::container::port::ports_text(r);
    let labels: Vec<String> = r
        .request
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    json!({
        "ID": if no_trunc { r.id.clone() } else { r.id[..12].to_string() },
        "Image": r.image,
        "Command": command,
        "CreatedAt": created.map(format::go_time).unwrap_or_default(),
        "RunningFor": format::ago(created),
        "Status": ps::status_text(r),
        "State": r.state.status.as_str(),
        "Ports": ports,
        "Names": r.name,
        "Labels": labels.join(","),
        "Mounts": r.request.mounts.iter().map(|m| m.target.clone()).collect::<Vec<_>>().join(","),
        "Networks": r.request.network,
        "Size": if size { size_text(engine, r) } else { String::new() },
    })
}

/// Docker's SIZE: the container's writable layer, and with the image's (`0B (virtual 4.26MB)`).
fn size_text(engine: &Engine, r: &Record) -> String {
    let (rw, virtual_size) = berth_engine::inspect::sizes(engine, r);
    format!(
        "{} (virtual {})",
        format::human_size(rw),
        format::human_size(virtual_size)
    )
}
