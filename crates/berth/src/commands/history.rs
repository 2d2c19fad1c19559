//! `berth history`: the build steps recorded in an image's config.

use anyhow::Result;
use berth_image::digest::short;
use clap::Args;

use super::Context;
use crate::format::{ago, human_size, print_table};

#[derive(Args, Debug)]
pub struct HistoryArgs {
    pub image: String,
    /// Print sizes and dates in machine format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(ctx: &Context, args: HistoryArgs) -> Result<()> {
    let store = ctx.store()?;
    let image = store.resolve(&args.image)?;
    let diff_ids = image.diff_ids()?;
    let history = image.config.history().clone().unwrap_or_default();
    let mut layer = diff_ids.len();
    let mut rows = Vec::new();
    for (i, h) in history.iter().enumerate().rev() {
        let empty = h.empty_layer().unwrap_or(false);
        let size = if empty || layer == 0 {
            0
        } else {
            layer -= 1;
            store.layer_size(&diff_ids[layer])
        };
        let id = if i + 1 == history.len() {
            short(image.id()).to_string()
        } else {
            "<missing>".into()
        };
        let created_by = h.created_by().clone().unwrap_or_default();
        let created_by = if args.no_trunc || created_by.chars().count() <= 45 {
            created_by
        } else {
            format!("{}…", created_by.chars().take(44).collect::<String>())
        };
        let created = h
            .created()
            .as_deref()
            .and_then(|c| humantime::parse_rfc3339_weak(c.trim_end_matches('Z')).ok());
        let (created, size) = if args.human {
            (ago(created), human_size(size))
        } else {
            (h.created().clone().unwrap_or_default(), size.to_string())
        };
        rows.push(vec![
            id,
            created,
            created_by,
            size,
            h.comment().clone().unwrap_or_default(),
        ]);
    }
    if args.quiet {
        rows.iter().for_each(|r| outln!("{}", r[0]));
    } else {
        print_table(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &rows,
        );
    }
    Ok(())
}
