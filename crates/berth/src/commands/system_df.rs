//! `berth system df`: disk used by images (containers, volumes and build cache come later).

use std::collections::HashSet;

use anyhow::Result;
use clap::Args;

use super::Context;
use crate::format::{human_size, print_table};

#[derive(Args, Debug)]
pub struct DfArgs {}

pub fn run(ctx: &Context, _args: DfArgs) -> Result<()> {
    let store = ctx.store()?;
    let images = store.images()?;
    let mut seen = HashSet::new();
    let mut size = 0;
    for image in &images {
        for diff_id in image.diff_ids()? {
            if seen.insert(diff_id.clone()) {
                size += store.layer_size(&diff_id);
            }
        }
    }
    // TODO(berth-engine): ACTIVE counts images that containers use; none exist yet.
    let reclaimable = if size == 0 {
        "0B".to_string()
    } else {
        format!("{} (100%)", human_size(size))
    };
    let rows = vec![
        vec![
            "Images".into(),
            images.len().to_string(),
            "0".into(),
            human_size(size),
            reclaimable,
        ],
        vec![
            "Containers".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
        vec![
            "Local Volumes".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
        vec![
            "Build Cache".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
    ];
    print_table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows);
    Ok(())
}
