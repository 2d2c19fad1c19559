//! `ns`: the seed's lesson as a command. For each container, one row per namespace kind: the
//! container's inode, the host's (berth's own namespaces, see berth_engine::ns), and whether it
//! is private, the host's or shared with another container. `--all` lists every namespace
//! berth's containers use, as `lsns` does, grouped by container.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use berth_engine::ns::{self, Inodes, Sharing};
use berth_engine::records::Record;
use berth_engine::{lifecycle, Engine};
use clap::Args;
use serde_json::{json, Value};

use crate::commands::Context;
use crate::container::top;

#[derive(Args, Debug)]
pub struct NsArgs {
    /// Every namespace in use by berth's running containers, like lsns
    #[arg(short, long, conflicts_with = "containers")]
    pub all: bool,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    #[arg(required_unless_present = "all")]
    pub containers: Vec<String>,
}

pub fn run(ctx: &Context, args: NsArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    if args.all {
        return all(&engine, args.json);
    }
    let mut reports = Vec::new();
    for key in &args.containers {
        let record = lifecycle::refresh(&engine, engine.containers.find(key)?)?;
        if ns::live_pid(&record).is_none() {
            bail!("container {key} is not running: it has no namespaces to show");
        }
        let rows = ns::report(&engine, &record)?;
        reports.push((record, rows));
    }
    if args.json {
        let out: Vec<Value> = reports
            .iter()
            .map(|(r, rows)| report_json(r, rows))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    for (i, (record, rows)) in reports.iter().enumerate() {
        if reports.len() > 1 {
            outln!("{}{}", if i > 0 { "\n" } else { "" }, title(record));
        }
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.kind.to_string(),
                    inode(r.container),
                    inode(r.host),
                    r.sharing.to_string(),
                ]
            })
            .collect();
        crate::format::print_table(&["KIND", "CONTAINER", "HOST", "SHARING"], &table);
    }
    Ok(0)
}

fn title(r: &Record) -> String {
    format!(
        "{} ({}, pid {})",
        r.name,
        berth_engine::error::short(&r.id),
        r.state.pid
    )
}

fn inode(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
}

fn report_json(r: &Record, rows: &[ns::Row]) -> Value {
    let kinds: Vec<Value> = rows
        .iter()
        .map(|row| {
            let (verdict, with) = match &row.sharing {
                Sharing::Shared(names) => ("shared", names.clone()),
                other => (
                    match other {
                        Sharing::Private => "private",
                        Sharing::Host => "host",
                        _ => "unknown",
                    },
                    Vec::new(),
                ),
            };
            json!({
                "Kind": row.kind,
                "Container": row.container,
                "Host": row.host,
                "Sharing": verdict,
                "SharedWith": with,
            })
        })
        .collect();
    json!({"Id": r.id, "Name": r.name, "Pid": r.state.pid, "Namespaces": kinds})
}

/// `--all`: per running container, each namespace its processes are in, with lsns' NPROCS and
/// PID counted over the whole system, and the verdict against the host and the others.
fn all(engine: &Engine, as_json: bool) -> Result<i32> {
    let mut running = Vec::new();
    for r in crate::commands::listed(lifecycle::list(engine)?) {
        if let Some(pid) = ns::live_pid(&r) {
            running.push((r, ns::inodes(Some(pid))));
        }
    }
    let usage = ns::system_usage();
    let host = ns::inodes(None);
    let mut json_out = Vec::new();
    for (i, (record, _)) in running.iter().enumerate() {
        let others: Vec<(String, Inodes)> = running
            .iter()
            .filter(|(o, _)| o.id != record.id)
            .map(|(o, n)| (o.name.clone(), n.clone()))
            .collect();
        let pids = berth_runtime::container::pids(&engine.runtime, &record.id).unwrap_or_default();
        let mut seen: BTreeMap<(&str, u64), Sharing> = BTreeMap::new();
        for pid in std::iter::once(record.state.pid).chain(pids) {
            let mine = ns::inodes(Some(pid));
            for kind in ns::LSNS_KINDS {
                if let Some(ino) = mine.get(kind) {
                    seen.entry((kind, *ino))
                        .or_insert_with(|| ns::verdict(kind, &mine, &host, &others));
                }
            }
        }
        let rows: Vec<Vec<String>> = seen
            .iter()
            .map(|((kind, ino), sharing)| {
                let u = usage.get(&(*kind, *ino)).copied().unwrap_or_default();
                let cmd = top::read_proc(u.pid)
                    .map(|p| p.command())
                    .unwrap_or_default();
                vec![
                    ino.to_string(),
                    kind.to_string(),
                    u.nprocs.to_string(),
                    u.pid.to_string(),
                    sharing.to_string(),
                    cmd,
                ]
            })
            .collect();
        if as_json {
            json_out.push(json!({"Id": record.id, "Name": record.name, "Namespaces": rows.iter().map(|r| json!({
                "NS": r[0].parse::<u64>().unwrap_or(0), "Type": r[1], "NProcs": r[2].parse::<u32>().unwrap_or(0),
                "Pid": r[3].parse::<i32>().unwrap_or(0), "Sharing": r[4], "Command": r[5],
            })).collect::<Vec<_>>()}));
            continue;
        }
        outln!("{}{}", if i > 0 { "\n" } else { "" }, title(record));
        crate::format::print_table(
            &["NS", "TYPE", "NPROCS", "PID", "SHARING", "COMMAND"],
            &rows,
        );
    }
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&json_out)?);
    }
    Ok(0)
}
