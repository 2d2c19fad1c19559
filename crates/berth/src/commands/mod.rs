//! One module per command: an argument struct and a `run` that acts on it.

pub mod build;
pub mod commit;
pub mod completion;
pub mod diff;
pub mod events;
pub mod history;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod load;
pub mod login;
pub mod logout;
pub mod network;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod save;
pub mod search;
pub mod service;
pub mod system_df;
pub mod system_prune;
pub mod tag;
pub mod version;

use anyhow::{Context as _, Result};
use berth_image::registry::RegistryOptions;
use berth_image::Store;

use crate::cli::{Cli, Command, ContainerCommand, GlobalArgs, ImageCommand, SystemCommand};
use crate::container::{
    attach, cp, exec, inspect as container_inspect, logs, manage, ns, port, ps, run as run_cmd,
    stats, top, volume,
};

/// What every command may need: the store and how to reach registries.
pub struct Context {
    global: GlobalArgs,
    /// The configuration files' settings, under the command line's.
    pub config: berth_engine::config::Config,
    root: std::path::PathBuf,
}

impl Context {
    /// The command line's settings over the configuration files'.
    pub fn new(global: GlobalArgs) -> Result<Context> {
        let config = berth_engine::config::Config::load()?;
        let root = global
            .root
            .clone()
            .or_else(|| config.data_root.clone())
            .unwrap_or_else(berth_engine::config::default_data_root);
        Ok(Context {
            global,
            config,
            root,
        })
    }

    /// The data root in force.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    pub fn store(&self) -> Result<Store> {
        Store::open(&self.root).with_context(|| {
            format!(
                "open the image store under {} (set --root or BERTH_ROOT)",
                self.root.display()
            )
        })
    }

    /// The engine over the same data root; monitors are this binary run again.
    pub fn engine(&self) -> Result<berth_engine::Engine> {
        // Monitors run from a read-only view of this binary (CVE-2019-5736, see berth-sys'
        // seal.rs); the plain path only if the binary changed under us.
        let exe = match berth_sys::seal::protected_exe() {
            Ok(path) => path,
            Err(_) => std::env::current_exe().context("find the berth binary (/proc/self/exe)")?,
        };
        let mut engine = berth_engine::Engine::open(&self.root, &exe)?;
        engine.config = self.config.clone();
        Ok(engine)
    }

    /// Which images the containers use (for rmi, prune, images and system df), each
    /// container whose record could not be read named on stderr.
    pub fn image_usage(&self) -> Result<berth_engine::images::Usage> {
        let usage = berth_engine::images::usage(&self.engine()?)?;
        for skipped in &usage.skipped {
            eprintln!("berth: {skipped}");
        }
        Ok(usage)
    }

    pub fn registry_options(&self) -> RegistryOptions {
        RegistryOptions {
            insecure_registries: [
                &self.global.insecure_registries[..],
                &self.config.insecure_registries,
            ]
            .concat(),
            credentials: None,
            mirrors: self.config.mirror_hosts(),
        }
    }
}

/// The containers listed, each one whose record could not be read named on stderr.
pub fn listed(listing: berth_engine::records::Listing) -> Vec<berth_engine::records::Record> {
    for skipped in &listing.skipped {
        eprintln!("berth: {skipped}");
    }
    listing.records
}

/// Docker's confirmation before a prune: "WARNING! <what>" and the question on stdout, then one
/// line of stdin; only "y" (any case) goes on, anything else, end of input included, is a no.
/// `force` (-f) skips it.
pub fn confirmed(force: bool, what: &str) -> Result<bool> {
    use std::io::{BufRead as _, Write as _};
    if force {
        return Ok(true);
    }
    let mut stdout = std::io::stdout();
    let _ = write!(
        stdout,
        "WARNING! {what}\nAre you sure you want to continue? [y/N] "
    );
    let _ = stdout.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("read the answer from stdin")?;
    Ok(answer.trim().eq_ignore_ascii_case("y"))
}

/// Runs a command; `Ok` holds the exit status (a container's, for run/start/exec/wait).
pub fn run(cli: Cli) -> Result<i32> {
    let ctx = Context::new(cli.global)?;
    let done = match cli.command {
        Command::Container(c) => return container(&ctx, c),
        Command::Network(c) => return network::run(c, &ctx),
        Command::Run(a) => return run_cmd::run(&ctx, a),
        Command::Create(a) => return run_cmd::create(&ctx, a),
        Command::Start(a) => return run_cmd::start(&ctx, a),
        Command::Stop(a) => return manage::stop(&ctx, a),
        Command::Restart(a) => return manage::restart(&ctx, a),
        Command::Kill(a) => return manage::kill(&ctx, a),
        Command::Rm(a) => return manage::rm(&ctx, a),
        Command::Ps(a) => return ps::run(&ctx, a),
        Command::Logs(a) => return logs::run(&ctx, a),
        Command::Exec(a) => return exec::run(&ctx, a),
        Command::Wait(a) => return manage::wait(&ctx, a),
        Command::Pause(a) => return manage::pause(&ctx, a, true),
        Command::Unpause(a) => return manage::pause(&ctx, a, false),
        Command::Rename(a) => return manage::rename(&ctx, a),
        Command::Export(a) => return crate::container::export::run(&ctx, a),
        Command::Port(a) => return port::run(&ctx, a),
        Command::Ns(a) => return ns::run(&ctx, a),
        Command::Update(a) => return crate::container::update::run(&ctx, a),
        Command::Top(a) => return top::run(&ctx, a),
        Command::Stats(a) => return stats::run(&ctx, a),
        Command::Cp(a) => return cp::run(&ctx, a),
        Command::Attach(a) => return attach::run(&ctx, a),
        Command::Volume(c) => return volume::run(&ctx, c),
        Command::Inspect(a) => return container_inspect::run_any(&ctx, a),
        Command::Build(a) => return build::run(&ctx, a),
        Command::Image(ImageCommand::Build(a)) => return build::run(&ctx, *a),
        Command::Builder(c) => build::builder(&ctx, c),
        Command::Commit(a) => commit::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::run(&ctx, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::run(&ctx, a),
        Command::Login(a) => login::run(&ctx, a),
        Command::Logout(a) => logout::run(&ctx, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => {
            let usage = ctx.image_usage()?;
            images::run_with(&ctx, a, &usage)
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run(&ctx, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => {
            let usage = ctx.image_usage()?;
            rmi::run(&ctx, a, &usage)
        }
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::run(&ctx, a),
        Command::Search(a) => search::run(&ctx, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(&ctx, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => return load::run(&ctx, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(&ctx, a),
        Command::Image(ImageCommand::Inspect(a)) => return inspect::run(&ctx, a),
        Command::Image(ImageCommand::Prune(a)) => {
            let usage = ctx.image_usage()?;
            prune::run(&ctx, a, &usage)
        }
        Command::System(SystemCommand::Df(a)) => system_df::run(&ctx, a),
        Command::Version(a) => return version::run(a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => info::run(&ctx, a),
        Command::System(SystemCommand::Prune(a)) => return system_prune::run(&ctx, a),
        Command::System(SystemCommand::Service(a)) => service::run(&ctx, a),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => events::run(&ctx, a),
        Command::Completion(a) => completion::completion(a),
        Command::Man(a) => completion::man(a),
    };
    done.map(|()| 0)
}

fn container(ctx: &Context, c: ContainerCommand) -> Result<i32> {
    match c {
        ContainerCommand::Commit(a) => commit::run(ctx, a).map(|()| 0),
        ContainerCommand::Diff(a) => diff::run(ctx, a).map(|()| 0),
        ContainerCommand::Run(a) => run_cmd::run(ctx, a),
        ContainerCommand::Create(a) => run_cmd::create(ctx, a),
        ContainerCommand::Start(a) => run_cmd::start(ctx, a),
        ContainerCommand::Stop(a) => manage::stop(ctx, a),
        ContainerCommand::Restart(a) => manage::restart(ctx, a),
        ContainerCommand::Kill(a) => manage::kill(ctx, a),
        ContainerCommand::Rm(a) => manage::rm(ctx, a),
        ContainerCommand::Ls(a) => ps::run(ctx, a),
        ContainerCommand::Logs(a) => logs::run(ctx, a),
        ContainerCommand::Exec(a) => exec::run(ctx, a),
        ContainerCommand::Wait(a) => manage::wait(ctx, a),
        ContainerCommand::Pause(a) => manage::pause(ctx, a, true),
        ContainerCommand::Unpause(a) => manage::pause(ctx, a, false),
        ContainerCommand::Rename(a) => manage::rename(ctx, a),
        ContainerCommand::Port(a) => port::run(ctx, a),
        ContainerCommand::Update(a) => crate::container::update::run(ctx, a),
        ContainerCommand::Inspect(a) => {
            container_inspect::run(ctx, a, &[container_inspect::Kind::Container])
        }
        ContainerCommand::Prune(a) => manage::prune(ctx, a),
        ContainerCommand::Top(a) => top::run(ctx, a),
        ContainerCommand::Stats(a) => stats::run(ctx, a),
        ContainerCommand::Cp(a) => cp::run(ctx, a),
        ContainerCommand::Attach(a) => attach::run(ctx, a),
    }
}
