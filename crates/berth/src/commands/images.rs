//! `berth images`: list images with Docker's columns.

use anyhow::Result;
use berth_image::digest::short;
use berth_image::{Image, Reference, Store};
use clap::Args;
use serde_json::json;

use super::Context;
use crate::format::{ago, human_size, print_table};

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
    /// Output format: "table" or "json"
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// One line of the listing: an image under one repository:tag.
struct Row {
    repository: String,
    tag: String,
    digest: String,
    id: String,
    created: String,
    size: String,
}

pub fn run(ctx: &Context, args: ImagesArgs) -> Result<()> {
    let filter = args
        .repository
        .as_deref()
        .map(Reference::parse_named)
        .transpose()?;
    if !matches!(args.format.as_str(), "table" | "json") {
        anyhow::bail!(
            "unsupported --format {:?}: use \"table\" or \"json\"",
            args.format
        );
    }
    let store = ctx.store()?;
    let mut images = store.images()?;
    images.sort_by_key(|i| std::cmp::Reverse(i.created()));
    let rows: Vec<Row> = images
        .iter()
        .flat_map(|i| rows_of(&store, i, &args))
        .filter(|r| matches(r, filter.as_ref()))
        .collect();
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        rows.iter()
            .filter(|r| seen.insert(r.id.clone()))
            .for_each(|r| outln!("{}", r.id));
    } else if args.format == "json" {
        for r in &rows {
            let line = json!({"Containers": "N/A", "CreatedSince": r.created, "Digest": r.digest, "ID": r.id,
                "Repository": r.repository, "SharedSize": "N/A", "Size": r.size, "Tag": r.tag,
                "UniqueSize": "N/A", "VirtualSize": r.size});
            outln!("{line}");
        }
    } else {
        let mut header = vec!["REPOSITORY", "TAG"];
        if args.digests {
            header.push("DIGEST");
        }
        header.extend(["IMAGE ID", "CREATED", "SIZE"]);
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut cells = vec![r.repository.clone(), r.tag.clone()];
                if args.digests {
                    cells.push(r.digest.clone());
                }
                cells.extend([r.id.clone(), r.created.clone(), r.size.clone()]);
                cells
            })
            .collect();
        print_table(&header, &table);
    }
    Ok(())
}

fn rows_of(store: &Store, image: &Image, args: &ImagesArgs) -> Vec<Row> {
    let id = if args.no_trunc {
        image.id().to_string()
    } else {
        short(image.id()).to_string()
    };
    let (created, size) = (ago(image.created()), human_size(image.size(store)));
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
        .map(|(repository, tag)| Row {
            digest: digest_for(&repository),
            repository,
            tag,
            id: id.clone(),
            created: created.clone(),
            size: size.clone(),
        })
        .collect()
}

fn matches(row: &Row, filter: Option<&Reference>) -> bool {
    let Some(f) = filter else { return true };
    row.repository == f.familiar_name() && f.tag().is_none_or(|t| t == row.tag)
}
