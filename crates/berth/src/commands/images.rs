//! `berth images`: list images with Docker's columns, or as `--format` says.

use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use berth_engine::filters::Filters;
use berth_engine::images::{self, Summary, Usage};
use berth_image::digest::short;
use clap::Args;
use serde_json::json;

use super::Context;
use crate::format::{ago, go_time, human_size, print_raw, render_list};
use crate::template;

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only images of this repository (REPOSITORY[:TAG])
    pub repository: Option<String>,
    /// Show all images (berth has no intermediate images; accepted for compatibility)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided (dangling, reference, label, before, since,
    /// until)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: "table", "json", or a Go template ("table {{.Repository}}\t{{.ID}}")
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// Column titles of `--format table ...`, as Docker names them.
const TITLES: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

/// One line of the listing: an image under one repository:tag, as `--format` sees it.
struct Row {
    id: String,
    fields: serde_json::Value,
}

/// `images` with the engine's answer to "which containers use this image" (the CONTAINERS
/// field of `--format`).
pub fn run_with(ctx: &Context, args: ImagesArgs, usage: &Usage) -> Result<()> {
    let mut pairs = args.filter.clone();
    pairs.extend(args.repository.iter().map(|r| format!("reference={r}")));
    let filters = Filters::parse(&pairs, images::LIST_FILTERS)?;
    let template = template::parse(&template_source(&args))
        .with_context(|| format!("--format {:?}", args.format))?;
    let summaries = images::list(&ctx.engine()?, &filters)?;
    let rows: Vec<Row> = summaries
        .iter()
        .flat_map(|s| rows_of(s, &args, usage))
        .collect();
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        rows.iter()
            .filter(|r| seen.insert(r.id.clone()))
            .for_each(|r| outln!("{}", r.id));
        return Ok(());
    }
    let items: Vec<serde_json::Value> = rows.into_iter().map(|r| r.fields).collect();
    let text = render_list(&template, TITLES, &items)
        .with_context(|| format!("--format {:?}", args.format))?;
    print_raw(&text);
    Ok(())
}

/// Docker's shorthands: `table` (the default columns) and `json` (one object a line).
fn template_source(args: &ImagesArgs) -> String {
    match args.format.as_str() {
        "" | "table" if args.digests => {
            r"table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                .into()
        }
        "" | "table" => {
            r"table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
        }
        "json" => "{{json .}}".into(),
        other => other.into(),
    }
}

/// `name:tag` (or `name@digest`) split as Docker's listing shows it.
pub(crate) fn split_name(name: &str, separator: char) -> (String, String) {
    let after_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[after_slash..].rfind(separator) {
        Some(i) => (
            name[..after_slash + i].to_string(),
            name[after_slash + i + 1..].to_string(),
        ),
        None => (name.to_string(), "<none>".to_string()),
    }
}

fn rows_of(image: &Summary, args: &ImagesArgs, usage: &Usage) -> Vec<Row> {
    let id = match image.id.parse::<oci_spec::image::Digest>() {
        Ok(digest) if !args.no_trunc => short(&digest).to_string(),
        _ => image.id.clone(),
    };
    let size = human_size(image.size);
    let containers = usage.by_image.get(&image.id).map_or(0, |u| u.containers);
    // 0: the config does not say.
    let created = u64::try_from(image.created)
        .ok()
        .filter(|s| *s > 0)
        .map(|s| UNIX_EPOCH + Duration::from_secs(s));
    let digests: Vec<(String, String)> = image
        .repo_digests
        .iter()
        .map(|d| {
            let (name, digest) = d.split_once('@').unwrap_or((d, "<none>"));
            (name.to_string(), digest.to_string())
        })
        .collect();
    let digest_for = |name: &str| {
        digests
            .iter()
            .find(|(n, _)| n == name)
            .map_or("<none>".to_string(), |(_, d)| d.clone())
    };
    let mut names: Vec<(String, String)> =
        image.repo_tags.iter().map(|r| split_name(r, ':')).collect();
    if names.is_empty() {
        let repo = digests
            .first()
            .map_or("<none>".to_string(), |(n, _)| n.clone());
        names.push((repo, "<none>".into()));
    }
    names
        .into_iter()
        .map(|(repository, tag)| {
            let digest = digest_for(&repository);
            let fields = json!({"Containers": containers.to_string(),
                "CreatedAt": created.map_or("N/A".into(), go_time),
                "CreatedSince": ago(created), "Digest": digest, "ID": id,
                "Repository": repository, "SharedSize": "N/A", "Size": size, "Tag": tag,
                "UniqueSize": "N/A", "VirtualSize": size});
            Row {
                id: id.clone(),
                fields,
            }
        })
        .collect()
}
