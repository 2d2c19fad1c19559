//! `berth search`: repositories on a registry whose name holds a term (the engine's search:
//! Docker Hub's index, or another registry's catalog), as Docker's table.

use anyhow::Result;
use berth_engine::filters::Filters;
use berth_engine::images;
use clap::Args;

use super::Context;
use crate::format::print_table;

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// [REGISTRY/]TERM
    pub term: String,
    /// Max number of search results
    #[arg(long)]
    pub limit: Option<usize>,
    /// Filter output based on conditions provided (stars=, is-official=)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
}

pub fn run(ctx: &Context, args: SearchArgs) -> Result<()> {
    let filters = Filters::parse(&args.filter, images::SEARCH_FILTERS)?;
    let found = images::search(&args.term, args.limit, &filters, &ctx.registry_options())?;
    let rows: Vec<Vec<String>> = found
        .into_iter()
        .map(|f| {
            let description = if args.no_trunc || f.description.chars().count() <= 45 {
                f.description
            } else {
                format!("{}…", f.description.chars().take(44).collect::<String>())
            };
            let official = if f.is_official { "[OK]" } else { "" };
            vec![
                f.name,
                description,
                f.star_count.to_string(),
                official.into(),
            ]
        })
        .collect();
    print_table(&["NAME", "DESCRIPTION", "STARS", "OFFICIAL"], &rows);
    Ok(())
}
