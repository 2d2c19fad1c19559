//! One module per command: an argument struct and a `run` that acts on it.

pub mod history;
pub mod images;
pub mod import;
pub mod inspect;
pub mod load;
pub mod login;
pub mod logout;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod save;
pub mod system_df;
pub mod tag;

use anyhow::{Context as _, Result};
use berth_image::registry::RegistryOptions;
use berth_image::Store;

use crate::cli::{Cli, Command, GlobalArgs, ImageCommand, SystemCommand};

/// What every command may need: the store and how to reach registries.
pub struct Context {
    global: GlobalArgs,
}

impl Context {
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.global.root).with_context(|| {
            format!(
                "open the image store under {} (set --root or BERTH_ROOT)",
                self.global.root.display()
            )
        })
    }

    pub fn registry_options(&self) -> RegistryOptions {
        RegistryOptions {
            insecure_registries: self.global.insecure_registries.clone(),
            credentials: None,
        }
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let ctx = Context { global: cli.global };
    match cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::run(&ctx, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::run(&ctx, a),
        Command::Login(a) => login::run(&ctx, a),
        Command::Logout(a) => logout::run(&ctx, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::run(&ctx, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run(&ctx, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::run(&ctx, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::run(&ctx, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(&ctx, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(&ctx, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(&ctx, a),
        Command::Inspect(a) | Command::Image(ImageCommand::Inspect(a)) => inspect::run(&ctx, a),
        Command::Image(ImageCommand::Prune(a)) => prune::run(&ctx, a),
        Command::System(SystemCommand::Df(a)) => system_df::run(&ctx, a),
    }
}
