//! `ns`: the seed's lesson as a command. For each container, one row per namespace kind: the
//! container's inode, the host's (berth's own namespaces, see berth_engine::ns), and whether it
//! is private, the host's or shared with another container. `--all` lists every namespace
//! berth's containers use, as `lsns` does, grouped by container.

use anyhow::Result;
use berth_engine::ns::{self, Sharing};
use berth_engine::records::Record;
use berth_engine::Engine;
use clap::Args;
use serde_json::{json, Value};

use crate::commands::Context;

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
    let reports = args
        .containers
        .iter()
        .map(|key| ns::container(&engine, key))
        .collect::<Result<Vec<_>, _>>()?;
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
        if let Some((uids, gids)) = ns::id_maps(record) {
            outln!("user namespace: uid map {uids}; gid map {gids}");
        }
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
    let maps = ns::id_maps(r).map(|(uids, gids)| json!({"UidMap": uids, "GidMap": gids}));
    json!({"Id": r.id, "Name": r.name, "Pid": r.state.pid, "Namespaces": kinds, "UserNamespace": maps})
}

/// `--all`: per running container, each namespace its processes are in, with lsns' NPROCS and
/// PID counted over the whole system, and the verdict against the host and the others.
fn all(engine: &Engine, as_json: bool) -> Result<i32> {
    let all = ns::all(engine)?;
    if as_json {
        let out: Vec<Value> = all
            .iter()
            .map(|(record, rows)| {
                let rows: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        json!({"NS": r.inode, "Type": r.kind, "NProcs": r.usage.nprocs,
                            "Pid": r.usage.pid, "Sharing": r.sharing.to_string(), "Command": r.command})
                    })
                    .collect();
                json!({"Id": record.id, "Name": record.name, "Namespaces": rows})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    for (i, (record, rows)) in all.iter().enumerate() {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.inode.to_string(),
                    r.kind.to_string(),
                    r.usage.nprocs.to_string(),
                    r.usage.pid.to_string(),
                    r.sharing.to_string(),
                    r.command.clone(),
                ]
            })
            .collect();
        outln!("{}{}", if i > 0 { "\n" } else { "" }, title(record));
        crate::format::print_table(
            &["NS", "TYPE", "NPROCS", "PID", "SHARING", "COMMAND"],
            &table,
        );
    }
    Ok(0)
}
