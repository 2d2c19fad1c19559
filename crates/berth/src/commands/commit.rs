//! `berth commit`: a container's changes as a new image, with Docker's flags.

use anyhow::Result;
use berth_image::archive::import::Change;
use berth_image::commit::{commit, Commit, Settings};
use berth_image::Reference;
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
    let changes = args
        .changes
        .iter()
        .map(|c| Change::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let name = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let engine = ctx.engine()?;
    let record = engine.containers.find(&args.container)?;
    let store = ctx.store()?;
    let image = store.resolve(&record.image_id)?;
    let (_, lowers) = berth_engine::bundle::image_of(&engine, &record)?;
    let req = &record.request;
    let settings = Settings {
        cmd: req.cmd.clone(),
        entrypoint: req.entrypoint.clone(),
        env: req.env.clone(),
        workdir: req.workdir.clone(),
        user: req.user.clone(),
        labels: req
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        healthcheck: req
            .healthcheck
            .as_ref()
            .and_then(|h| serde_json::to_value(h).ok()),
    };
    let upper = engine.containers.dir(&record.id).join("upper");
    std::fs::create_dir_all(&upper)?;
    // Docker pauses a running container so that its files hold still while they are read.
    let paused = args.pause && record.state.status == berth_engine::records::Status::Running;
    if paused {
        berth_engine::lifecycle::pause(&engine, &record.id, true)?;
    }
    let done = commit(
        &store,
        &Commit {
            image: &image,
            upper: &upper,
            lowers: &lowers,
            settings,
            changes: &changes,
            created_by: berth_engine::inspect::command(&engine, &record).join(" "),
            author: args.author,
            message: args.message,
            name: name.as_ref(),
        },
    );
    if paused {
        berth_engine::lifecycle::pause(&engine, &record.id, false)?;
    }
    outln!("{}", done?);
    Ok(())
}
