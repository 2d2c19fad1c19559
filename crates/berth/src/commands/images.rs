//! `berth images`: list images with Docker's columns, or as `--format` says.

use anyhow::{Context as _, Result};
use berth_image::digest::short;
use berth_image::store::ImageUsage;
use berth_image::{Image, Reference, Store};
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
    repository: String,
    tag: String,
    id: String,
    fields: serde_json::Value,
}

/// `images` with the engine's answer to "which containers use this image" (the CONTAINERS
/// field of `--format`).
pub fn run_with(ctx: &Context, args: ImagesArgs, usage: ImageUsage) -> Result<()> {
    let filter = args
        .repository
        .as_deref()
        .map(Reference::parse_named)
        .transpose()?;
    let template = template::parse(&template_source(&args))
        .with_context(|| format!("--format {:?}", args.format))?;
    let store = ctx.store()?;
    let mut images = store.images()?;
    images.sort_by_key(|i| std::cmp::Reverse(i.created()));
    let rows: Vec<Row> = images
        .iter()
        .flat_map(|i| rows_of(&store, i, &args, usage))
        .filter(|r| matches(r, filter.as_ref()))
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

fn rows_of(store: &Store, image: &Image, args: &ImagesArgs, usage: ImageUsage) -> Vec<Row> {
    let id = if args.no_trunc {
        image.id().to_string()
    } else {
        short(image.id()).to_string()
    };
    let size = human_size(image.size(store));
    let containers = usage(image.id()).containers;
    let digest_for = |name: &str| {
        image
            .repo_digests
            .iter()
            .find(|d| d.familiar_name() == name)
            .and_then(|d| d.digest())
            .map_or("<none>".into(), |d| d.to_string())
    };
    let mut names: Vec<(String, String)> = image
        .repo_tags
        .iter()
        .map(|r| (r.familiar_name(), r.tag().unwrap_or("<none>").to_string()))
        .collect();
    if names.is_empty() {
        let repo = image
            .repo_digests
            .first()
            .map_or("<none>".to_string(), |d| d.familiar_name());
        names.push((repo, "<none>".into()));
    }
    names
        .into_iter()
        .map(|(repository, tag)| {
            let digest = digest_for(&repository);
            let fields = json!({"Containers": containers.to_string(),
                "CreatedAt": image.created().map_or("N/A".into(), go_time),
                "CreatedSince": ago(image.created()), "Digest": digest, "ID": id,
                "Repository": repository, "SharedSize": "N/A", "Size": size, "Tag": tag,
                "UniqueSize": "N/A", "VirtualSize": size});
            Row {
                repository,
                tag,
                id: id.clone(),
                fields,
            }
        })
        .collect()
}

fn matches(row: &Row, filter: Option<&Reference>) -> bool {
    let Some(f) = filter else { return true };
    row.repository == f.familiar_name() && f.tag().is_none_or(|t| t == row.tag)
}
