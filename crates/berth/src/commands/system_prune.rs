//! `berth system prune`: stopped containers, unused user networks, dangling images (all unused
//! ones with `-a`), with `--volumes` unused anonymous volumes, each by the code of its own
//! prune command, and the build cache, after Docker's confirmation prompt.

use anyhow::Result;
use berth_engine::filters::Filters;
use clap::Args;

use super::Context;
use crate::container::manage::pruned;
use crate::format::human_size;

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn run(ctx: &Context, args: SystemPruneArgs) -> Result<i32> {
    if !super::confirmed(args.force, &warning(&args))? {
        return Ok(0);
    }
    // Checked before anything goes: each kind takes the same until and label filters.
    let container_filter = berth_engine::prune::Filter::parse(&args.filter)?;
    let network_filters = Filters::parse(&args.filter, berth_engine::network::PRUNE_FILTERS)?;
    let image_filters = super::prune::filters(args.all, &args.filter)?;
    let engine = ctx.engine()?;
    let mut freed = 0;

    let containers = pruned(&engine, &container_filter)?;
    freed += containers.freed;
    section("Deleted Containers:", &containers.removed);

    let networks = berth_engine::network::prune(&engine, &network_filters)?;
    section("Deleted Networks:", &networks);

    if args.volumes {
        let (volumes, bytes) = berth_engine::volumes::prune(&engine, false, &Filters::default())?;
        freed += bytes;
        section("Deleted Volumes:", &volumes);
    }

    // Asked only now: the containers just removed no longer hold their images.
    let usage = ctx.image_usage()?;
    let (images, bytes) = berth_engine::images::prune(&engine, &image_filters, &usage)?;
    freed += bytes;
    section("Deleted Images:", &super::prune::lines(&images));

    let cache = berth_engine::build_cache::prune(&engine.root)?;
    freed += cache.bytes;
    section("Deleted build cache objects:", &cache.ids);

    outln!("Total reclaimed space: {}", human_size(freed));
    Ok(if containers.failed.is_empty() { 0 } else { 1 })
}

/// Docker's list of what will go, which depends on the flags.
fn warning(args: &SystemPruneArgs) -> String {
    let mut items = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if args.volumes {
        items.push("all anonymous volumes not used by at least one container");
    }
    items.push(if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    // berth cannot tell a cache record in use: both forms empty the whole cache.
    items.push(if args.all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let list: String = items.iter().map(|i| format!("  - {i}\n")).collect();
    format!("This will remove:\n{list}")
}

/// A "Deleted ...:" block and its blank line, only when something was deleted.
fn section(title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    outln!("{title}");
    lines.iter().for_each(|l| outln!("{l}"));
    outln!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_follows_the_flags() {
        let plain = warning(&SystemPruneArgs {
            all: false,
            force: false,
            volumes: false,
            filter: Vec::new(),
        });
        assert!(plain.starts_with("This will remove:\n  - all stopped containers\n"));
        assert!(plain.ends_with("  - all dangling images\n  - unused build cache\n"));
        assert!(!plain.contains("volumes"));
        let all = warning(&SystemPruneArgs {
            all: true,
            force: false,
            volumes: true,
            filter: Vec::new(),
        });
        assert!(all.contains("  - all anonymous volumes not used by at least one container\n"));
        assert!(all.contains("  - all images without at least one container associated"));
        assert!(all.ends_with("  - all build cache\n"));
    }
}
