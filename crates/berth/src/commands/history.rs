//! `berth history`: the build steps recorded in an image's config.

use std::time::{Duration, UNIX_EPOCH};

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
    let steps = berth_engine::images::history(&ctx.engine()?, &args.image)?;
    let rows: Vec<Vec<String>> = steps
        .into_iter()
        .map(|step| {
            let id = match step.id.parse::<oci_spec::image::Digest>() {
                Ok(digest) => short(&digest).to_string(),
                Err(_) => step.id,
            };
            let created_by = if args.no_trunc || step.created_by.chars().count() <= 45 {
                step.created_by
            } else {
                format!("{}…", step.created_by.chars().take(44).collect::<String>())
            };
            let created = u64::try_from(step.created)
                .ok()
                .filter(|s| *s > 0)
                .map(|s| UNIX_EPOCH + Duration::from_secs(s));
            let (created, size) = if args.human {
                (ago(created), human_size(step.size))
            } else {
                let rfc3339 = created.map(|t| humantime::format_rfc3339_seconds(t).to_string());
                (rfc3339.unwrap_or_default(), step.size.to_string())
            };
            vec![id, created, created_by, size, step.comment]
        })
        .collect();
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
