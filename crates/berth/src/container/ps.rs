//! `ps`: containers as Docker lists them (table, `-q`, `--format`, filters), with the truth
//! about each monitor checked first.

use std::time::SystemTime;

use anyhow::{bail, Result};
use berth_engine::records::{Record, Status};
use berth_engine::{lifecycle, Engine};
use clap::Args;
use serde_json::{json, Value};

use crate::commands::Context;
use crate::format::{self, human_duration};

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
    /// Filter output (status=, name=, label=, ancestor=, id=)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Pretty-print containers using a Go template, or "json"
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
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
];

pub fn run(ctx: &Context, args: PsArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let filters = args
        .filter
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--filter {f:?}: use key=value"))
        })
        .collect::<Result<Vec<_>>>()?;
    for (k, _) in &filters {
        if !["status", "name", "label", "ancestor", "id"].contains(&k.as_str()) {
            bail!("--filter {k}: berth filters on status, name, label, ancestor and id");
        }
    }
    let mut records = crate::commands::listed(lifecycle::list(&engine)?);
    records.reverse();
    let limit = if args.latest { Some(1) } else { args.last };
    let show_all = args.all || limit.is_some() || filters.iter().any(|(k, _)| k == "status");
    let mut rows: Vec<&Record> = records
        .iter()
        .filter(|r| show_all || r.state.status.is_live())
        .filter(|r| filters.iter().all(|(k, v)| matches(r, k, v)))
        .collect();
    if let Some(n) = limit {
        rows.truncate(n);
    }
    if args.quiet {
        for r in rows {
            outln!("{}", if args.no_trunc { &r.id } else { &r.id[..12] });
        }
        return Ok(0);
    }
    let items: Vec<Value> = rows
        .iter()
        .map(|r| item(&engine, r, args.no_trunc))
        .collect();
    let source = args.format.as_deref().unwrap_or(
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    );
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

fn matches(r: &Record, key: &str, value: &str) -> bool {
    match key {
        "status" => r.state.status.as_str() == value,
        "name" => r.name.contains(value.trim_start_matches('/')),
        "id" => r.id.starts_with(value),
        "ancestor" => r.image == value || r.image_id.contains(value),
        "label" => match value.split_once('=') {
            Some((k, v)) => r.request.labels.get(k).is_some_and(|x| x == v),
            None => r.request.labels.contains_key(value),
        },
        _ => false,
    }
}

/// Docker's STATUS column.
pub fn status_text(r: &Record) -> String {
    let st = &r.state;
    let since = |t: &str| {
        humantime::parse_rfc3339_weak(t)
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(human_duration)
            .unwrap_or_else(|| "Less than a second".into())
    };
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", since(&st.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&st.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            since(&st.finished_at)
        ),
        Status::Exited => format!("Exited ({}) {} ago", st.exit_code, since(&st.finished_at)),
        Status::Dead => "Dead".into(),
    }
}

fn item(engine: &Engine, r: &Record, no_trunc: bool) -> Value {
    let command = berth_engine::inspect::command(engine, r).join(" ");
    let command = if no_trunc || command.chars().count() <= 20 {
        format!("\"{command}\"")
    } else {
        format!("\"{}…\"", command.chars().take(19).collect::<String>())
    };
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
        "Status": status_text(r),
        "State": r.state.status.as_str(),
        "Ports": ports,
        "Names": r.name,
        "Labels": labels.join(","),
        "Mounts": r.request.mounts.iter().map(|m| m.target.clone()).collect::<Vec<_>>().join(","),
        "Networks": r.request.network,
    })
}
