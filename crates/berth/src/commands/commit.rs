//! `berth commit`: a container's changes as a new image, with Docker's flags.

use anyhow::Result;
use berth_engine::commit::CommitOptions;
use clap::{ArgAction, Args};

use super::Context;

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value = "true", num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub pause: bool,
    /// The container (name or ID)
    pub container: String,
    /// Name for the image: REPOSITORY[:TAG]
    pub reference: Option<String>,
}

pub fn run(ctx: &Context, args: CommitArgs) -> Result<()> {
    let (changes, name) =
        super::import::changes_and_name(&args.changes, args.reference.as_deref())?;
    let options = CommitOptions {
        author: args.author,
        message: args.message,
        changes,
        pause: args.pause,
        name,
    };
    let id = berth_engine::commit::commit(&ctx.engine()?, &args.container, &options)?;
    outln!("{id}");
    Ok(())
}
