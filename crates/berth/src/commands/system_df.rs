//! `berth system df [-v]`: disk used by images, containers and volumes, as the engine measures
//! it, with the docker CLI's lines, and with `-v` its four tables (the docker CLI's
//! `verboseWriteTable` over the same answer).

use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use berth_engine::df::{ContainerUsage, DiskUsage, Line, VolumeUsage};
use berth_engine::images::Summary;
use clap::Args;
use serde_json::{json, Value};

use super::Context;
use crate::format::{ago, human_size, human_size_with, print_raw, print_table, render_list};

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output: "table", "json", or a Go template ("{{.Type}}\t{{.Size}}")
    #[arg(long)]
    pub format: Option<String>,
}

pub fn run(ctx: &Context, args: DfArgs) -> Result<()> {
    let usage = berth_engine::df::disk_usage(&ctx.engine()?)?;
    for skipped in &usage.skipped {
        eprintln!("berth: {skipped}");
    }
    if args.verbose {
        if args.format.is_some() {
            anyhow::bail!(
                "--format: berth's system df -v prints its tables only; drop one of the two"
            );
        }
        return verbose(&usage);
    }
    let rows: Vec<Vec<String>> = usage.lines().iter().map(row).collect();
    let source = match args.format.as_deref() {
        None | Some("" | "table") => {
            print_table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows);
            return Ok(());
        }
        Some("json") => "{{json .}}",
        Some(other) => other,
    };
    // The docker CLI's diskUsage fields, every one a string as it renders them.
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({"Type": r[0], "TotalCount": r[1], "Active": r[2], "Size": r[3], "Reclaimable": r[4]})
        })
        .collect();
    let context = || format!("--format {source:?}");
    let template = crate::template::parse(source).with_context(context)?;
    let titles = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    print_raw(&render_list(&template, &titles, &items).with_context(context)?);
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

/// The docker CLI's column titles of the four tables.
const TITLES: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ImageID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("Names", "NAMES"),
    ("Name", "VOLUME NAME"),
    ("Links", "LINKS"),
    ("CacheID", "CACHE ID"),
    ("CacheType", "CACHE TYPE"),
    ("LastUsedSince", "LAST USED"),
    ("UsageCount", "USAGE"),
    ("Shared", "SHARED"),
];

const IMAGES: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ImageID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const CONTAINERS: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const VOLUMES: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const BUILD_CACHE: &str = "table {{.CacheID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";

fn verbose(usage: &DiskUsage) -> Result<()> {
    let table = |source: &str, items: &[Value]| -> Result<String> {
        Ok(render_list(
            &crate::template::parse(source)?,
            TITLES,
            items,
        )?)
    };
    let images: Vec<Value> = usage.images.iter().map(image).collect();
    let containers: Vec<Value> = usage.containers.iter().map(container).collect();
    let volumes: Vec<Value> = usage.volumes.iter().map(volume).collect();
    let mut text = String::from("Images space usage:\n\n");
    text.push_str(&table(IMAGES, &images)?);
    text.push_str("\nContainers space usage:\n\n");
    text.push_str(&table(CONTAINERS, &containers)?);
    text.push_str("\nLocal Volumes space usage:\n\n");
    text.push_str(&table(VOLUMES, &volumes)?);
    // berth's builds keep no BuildKit cache records: the table has its titles only.
    text.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        human_size_with(0, 4)
    ));
    text.push_str(&table(BUILD_CACHE, &[])?);
    print_raw(&text);
    Ok(())
}

/// An image as the docker CLI's image context shows it: its first name only, sizes of three
/// digits, the shared and unique parts of four.
fn image(i: &Summary) -> Value {
    let dangling = i.repo_tags.is_empty() && i.repo_digests.is_empty();
    let (repository, tag) = match i.repo_tags.first() {
        Some(name) if !dangling => super::images::split_name(name, ':'),
        _ => ("<none>".into(), "<none>".into()),
    };
    let id = i.id.strip_prefix("sha256:").unwrap_or(&i.id);
    let created = u64::try_from(i.created)
        .ok()
        .filter(|s| *s > 0)
        .map(|s| UNIX_EPOCH + Duration::from_secs(s));
    let counted = |n: i64, text: String| if n < 0 { "N/A".into() } else { text };
    let shared = u64::try_from(i.shared_size).unwrap_or(0);
    json!({
        "Repository": repository,
        "Tag": tag,
        "ImageID": id.chars().take(12).collect::<String>(),
        "CreatedSince": ago(created),
        "Size": human_size(i.size),
        "SharedSize": counted(i.shared_size, human_size_with(shared, 4)),
        "UniqueSize": counted(i.shared_size, human_size_with(i.size.saturating_sub(shared), 4)),
        "Containers": counted(i.containers, i.containers.to_string()),
    })
}

/// A container as `ps` shows it, with its writable layer's size (never the virtual one) and
/// how many of its mounts are local volumes.
fn container(c: &ContainerUsage) -> Value {
    let created = u64::try_from(c.created)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s));
    let local = c.mounts.iter().filter(|m| m["Driver"] == "local").count();
    let names: Vec<&str> = c.names.iter().map(|n| n.trim_start_matches('/')).collect();
    json!({
        "ID": c.id.chars().take(12).collect::<String>(),
        "Image": c.image,
        "Command": crate::container::ps::command_text(&c.command, false),
        "LocalVolumes": local.to_string(),
        "Size": human_size(c.size_rw),
        "RunningFor": ago(created),
        "Status": c.status,
        "Names": names.join(","),
    })
}

fn volume(v: &VolumeUsage) -> Value {
    json!({
        "Name": v.volume.name,
        "Links": v.usage_data.ref_count.to_string(),
        "Size": human_size_with(v.usage_data.size, 4),
    })
}
