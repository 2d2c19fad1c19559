//! The command tree. Each command's arguments live beside its action in `commands/`;
//! container commands join as new variants and files when berth-engine lands.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::commands::{
    build, commit, completion, diff, events, history, images, import, info, inspect, load, login,
    logout, prune, pull, push, rmi, save, search, service, system_df, system_prune, tag, version,
};
use crate::container::{attach, cp, exec, logs, manage, ns, port, ps, run, stats, top, volume};

// clap prints its version as "<name> <version>": with this "version", `berth --version` says
// `berth version 0.1.0, build 1a2b3c4`, as `docker --version` says `Docker version 28.2.2,
// build e6534b4`; `-v` is Docker's short flag for it.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version = version::VERSION_LINE,
    disable_version_flag = true,
    about = "A daemonless, Docker-compatible container engine"
)]
pub struct Cli {
    /// Print version information and quit
    #[arg(short = 'v', long, action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// `berth run` and `berth exec` parsed alone, each by a parser of its own: building the whole
/// command tree (every command's arguments and help) costs more than the rest of the CLI's
/// work for a container start, and `run`'s hundred flags cost an exec as much again. Used only
/// when it parses; anything else goes through [`Cli`], which then reports errors as usual.
#[derive(Parser, Debug)]
#[command(name = "berth")]
pub struct FastRun {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: FastRunCommand,
}

#[derive(Subcommand, Debug)]
pub enum FastRunCommand {
    Run(Box<run::RunArgs>),
}

/// [`FastRun`]'s twin for `exec`.
#[derive(Parser, Debug)]
#[command(name = "berth")]
pub struct FastExec {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: FastExecCommand,
}

#[derive(Subcommand, Debug)]
pub enum FastExecCommand {
    Exec(exec::ExecArgs),
}

/// [`FastRun`]'s twin for the commands a container's life takes besides `run` and `exec`
/// (`start`, `stop`, `kill`, `rm`, `wait`): the whole tree costs `rm -f` 0.6 ms more than
/// these five small ones (1.4 against 0.8 ms for a missing container, hyperfine).
#[derive(Parser, Debug)]
#[command(name = "berth")]
pub struct FastLifecycle {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: FastLifecycleCommand,
}

#[derive(Subcommand, Debug)]
pub enum FastLifecycleCommand {
    Start(run::StartArgs),
    Stop(manage::StopArgs),
    Kill(manage::KillArgs),
    Rm(manage::RmArgs),
    Wait(manage::NamesArgs),
}

impl From<FastLifecycleCommand> for Command {
    fn from(command: FastLifecycleCommand) -> Command {
        match command {
            FastLifecycleCommand::Start(a) => Command::Start(a),
            FastLifecycleCommand::Stop(a) => Command::Stop(a),
            FastLifecycleCommand::Kill(a) => Command::Kill(a),
            FastLifecycleCommand::Rm(a) => Command::Rm(a),
            FastLifecycleCommand::Wait(a) => Command::Wait(a),
        }
    }
}

/// `T` from the command line, its switches taking Docker's boolean forms too. Only a command
/// line with a `-flag=value` pays for (and its help shows) the switches' optional values.
fn parse<T: Parser>() -> Result<T, clap::Error> {
    parse_from(std::env::args_os().collect())
}

/// [`parse`] of `args`.
fn parse_from<T: Parser>(args: Vec<std::ffi::OsString>) -> Result<T, clap::Error> {
    let valued = args.iter().any(|a| {
        let a = a.as_encoded_bytes();
        a.starts_with(b"-") && a.contains(&b'=')
    });
    if !valued {
        return T::try_parse_from(args);
    }
    let mut command = boolish(T::command());
    let mut matches = command.try_get_matches_from_mut(args)?;
    T::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
}

/// Every switch of `command` and its subcommands as Docker's (Go's pflag) take them: `--tty`
/// alone, or with a value, `--tty=false`, `-d=true` (Go's strconv.ParseBool words and clap's
/// yes/no). Without the value, true; without the switch, false, as before.
fn boolish(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            if !matches!(arg.get_action(), ArgAction::SetTrue) {
                return arg;
            }
            arg.action(ArgAction::Set)
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .default_value("false")
                .value_parser(clap::builder::BoolishValueParser::new())
                .hide_default_value(true)
                .hide_possible_values(true)
        })
        .mut_subcommands(boolish)
}

impl Command {
    /// `run` and `create`, under either name: their engine errors exit 125.
    pub fn creates_a_container(&self) -> bool {
        matches!(
            self,
            Command::Run(_)
                | Command::Create(_)
                | Command::Container(ContainerCommand::Run(_) | ContainerCommand::Create(_))
        )
    }
}

impl Cli {
    /// Parses the command line, `run`, `exec` and the lifecycle's commands by their fast path.
    pub fn parse_args() -> Result<Cli, clap::Error> {
        let fast = |global, command| {
            Cli {
                version: None,
                global,
                command,
            }
            .checked()
        };
        // Either word may be an argument of the other command (`exec c run`): a parser that
        // fails costs only its own small tree.
        if std::env::args_os().any(|a| a == "exec") {
            if let Ok(FastExec { global, command }) = parse::<FastExec>() {
                let FastExecCommand::Exec(args) = command;
                return fast(global, Command::Exec(args));
            }
        }
        if std::env::args_os().any(|a| a == "run") {
            if let Ok(FastRun { global, command }) = parse::<FastRun>() {
                let FastRunCommand::Run(args) = command;
                return fast(global, Command::Run(*args));
            }
        }
        const LIFECYCLE: [&str; 5] = ["start", "stop", "kill", "rm", "wait"];
        if std::env::args_os().any(|a| LIFECYCLE.iter().any(|w| a == *w)) {
            if let Ok(FastLifecycle { global, command }) = parse::<FastLifecycle>() {
                return fast(global, command.into());
            }
        }
        parse::<Cli>()?.checked()
    }

    /// What clap does not say: `run` and `create` take every argument after the image as the
    /// container's (so that `run IMG --help` reaches the image); an image that looks like a
    /// flag (clap lets `-1` pass for a value) is Docker's `unknown flag`.
    fn checked(self) -> Result<Cli, clap::Error> {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        let flags = match &self.command {
            Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => &a.flags,
            Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => &a.flags,
            _ => return Ok(self),
        };
        match flags.image_and_command.first() {
            Some(image) if image.starts_with('-') && image.len() > 1 => {
                let mut e = clap::Error::new(ErrorKind::UnknownArgument);
                e.insert(ContextKind::InvalidArg, ContextValue::String(image.clone()));
                Err(e)
            }
            _ => Ok(self),
        }
    }
}

/// A flag's value that parsed but makes no sense (`update -m lots`): Docker's flag errors exit
/// 125 whatever the command, where the command's own failures exit 1.
#[derive(Debug)]
pub struct FlagError(pub anyhow::Error);

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for FlagError {}

/// A flag the docker CLI refuses before it calls the daemon because the daemon's OS has no use
/// for it (`--cpu-count` is Windows'): its words, and its exit status 1 rather than run's 125.
#[derive(Debug)]
pub struct OsTypeError(pub &'static str);

impl std::fmt::Display for OsTypeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\"--{}\" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux",
            self.0
        )
    }
}

impl std::error::Error for OsTypeError {}

/// A usage error on one line, as Docker words it, and Docker's exit status for it: 125 for a
/// flag (`unknown flag: --bogus`, `invalid argument "x" for "-m, --memory" flag: ...`), 1 for
/// the arguments or the command (`'berth rm' requires at least 1 argument`). The line ends with
/// where to look: `see 'berth run --help'`.
pub fn usage_error(e: &clap::Error) -> (String, u8) {
    use clap::error::{ContextKind, ErrorKind};
    let args: Vec<String> = std::env::args().collect();
    let (path, cmd) = command_path(&args);
    let arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
    let (message, code) = match e.kind() {
        ErrorKind::UnknownArgument => unknown_argument(&arg, &path, &cmd),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let flag = flag_names(&cmd, &arg);
            match context(e, ContextKind::InvalidValue) {
                Some(v) if !v.is_empty() => {
                    let why = std::error::Error::source(e)
                        .map_or_else(|| "invalid value".into(), |s| s.to_string());
                    (
                        format!("invalid argument {v:?} for {flag:?} flag: {why}"),
                        125,
                    )
                }
                _ => (format!("flag needs an argument: {flag}"), 125),
            }
        }
        ErrorKind::MissingRequiredArgument if arg.starts_with('-') => (
            format!("required flag {:?} not set", flag_names(&cmd, &arg)),
            125,
        ),
        ErrorKind::MissingRequiredArgument => (argument_count(&path, &cmd), 1),
        ErrorKind::InvalidSubcommand => {
            let sub = context(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            (format!("unknown command: {path} {sub}"), 1)
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            (first.trim_start_matches("error: ").to_string(), 125)
        }
    };
    (format!("{message}; see '{path} --help'"), code)
}

/// A string (or the first of a list) of the error's context.
fn context(e: &clap::Error, kind: clap::error::ContextKind) -> Option<String> {
    use clap::error::ContextValue;
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        _ => None,
    }
}

/// The name the user typed for berth: `docker` through the shim scripts/install makes, so the
/// command lines the errors quote (`see 'docker run --help'`) are ones that work as typed, as
/// clap's usage lines already are.
pub fn program_name() -> String {
    let arg0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&arg0)
        .file_name()
        .and_then(|n| n.to_str());
    name.filter(|n| !n.is_empty())
        .unwrap_or("berth")
        .to_string()
}

/// The command the arguments name (`berth container run`), as far as they name one, and its
/// definition. Global flags and their values are skipped.
fn command_path(args: &[String]) -> (String, clap::Command) {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut path = vec![program_name()];
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        if a == "--root" || a == "--insecure-registry" {
            rest.next();
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        let Some(sub) = cmd.find_subcommand(a).cloned() else {
            break;
        };
        path.push(sub.get_name().to_string());
        cmd = sub;
    }
    (path.join(" "), cmd)
}

/// Docker's words for what clap calls an unexpected argument: a flag no one knows, or an
/// argument too many.
fn unknown_argument(arg: &str, path: &str, cmd: &clap::Command) -> (String, u8) {
    let flag = arg.split('=').next().unwrap_or(arg);
    if flag.starts_with("--") {
        return (format!("unknown flag: {flag}"), 125);
    }
    if let Some(c) = flag.strip_prefix('-').and_then(|f| f.chars().next()) {
        return (format!("unknown shorthand flag: '{c}' in {flag}"), 125);
    }
    (argument_count(path, cmd), 1)
}

/// How many arguments the command takes, in Docker's words (`'berth rm' requires at least 1
/// argument`, `'berth rename' requires 2 arguments`).
fn argument_count(path: &str, cmd: &clap::Command) -> String {
    let required = cmd
        .get_positionals()
        .filter(|a| a.is_required_set())
        .count();
    if cmd.get_positionals().next().is_none() {
        return format!("'{path}' accepts no arguments");
    }
    let many = cmd
        .get_positionals()
        .any(|a| matches!(a.get_action(), clap::ArgAction::Append));
    let n = required.max(1);
    let word = if n == 1 { "argument" } else { "arguments" };
    let how = if many { "at least " } else { "" };
    format!("'{path}' requires {how}{n} {word}")
}

/// `-m, --memory` for clap's `--memory <MEMORY>`, as Docker names a flag in its errors.
fn flag_names(cmd: &clap::Command, arg: &str) -> String {
    let token = arg.split([' ', '=', '[']).next().unwrap_or(arg);
    let long = token.strip_prefix("--");
    let short = token.strip_prefix('-').and_then(|s| s.chars().next());
    let found = cmd.get_arguments().find(|a| match long {
        Some(l) => a.get_long() == Some(l),
        None => short.is_some() && a.get_short() == short,
    });
    match found.map(|a| (a.get_short(), a.get_long())) {
        Some((Some(s), Some(l))) => format!("-{s}, --{l}"),
        Some((None, Some(l))) => format!("--{l}"),
        Some((Some(s), None)) => format!("-{s}"),
        _ => token.to_string(),
    }
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Root of berth's data (images, containers) [default: the configuration's data-root, or
    /// /var/lib/berth]
    #[arg(long, global = true, env = "BERTH_ROOT")]
    pub root: Option<PathBuf>,
    /// Registry (host[:port]) to reach over plain HTTP; repeatable
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and run a new container from an image
    Run(run::RunArgs),
    /// Create a new container
    Create(run::CreateArgs),
    /// Start one or more stopped containers
    Start(run::StartArgs),
    /// Stop one or more running containers
    Stop(manage::StopArgs),
    /// Restart one or more containers
    Restart(manage::StopArgs),
    /// Kill one or more running containers
    Kill(manage::KillArgs),
    /// Remove one or more containers
    Rm(manage::RmArgs),
    /// List containers
    #[command(alias = "ls")]
    Ps(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(manage::NamesArgs),
    /// Pause all processes within one or more containers
    Pause(manage::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(manage::NamesArgs),
    /// Rename a container
    Rename(manage::RenameArgs),
    /// Export a container's filesystem as a tar archive
    Export(crate::container::export::ExportArgs),
    /// List port mappings or a specific mapping for the container
    Port(port::PortArgs),
    /// Show a container's namespaces: its own, the host's, or another container's
    Ns(ns::NsArgs),
    /// Update configuration of one or more containers
    Update(crate::container::update::UpdateArgs),
    /// Display the running processes of a container (host PIDs; --tree under its monitor)
    Top(top::TopArgs),
    /// Display a live stream of container resource usage statistics
    Stats(stats::StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(attach::AttachArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(crate::commands::network::NetworkCommand),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(build::BuilderCommand),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(diff::DiffArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// Log in to a registry
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(logout::LogoutArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::TagArgs),
    /// Remove one or more images
    Rmi(rmi::RmiArgs),
    /// Show the history of an image
    History(history::HistoryArgs),
    /// Search a registry for images
    Search(search::SearchArgs),
    /// Save one or more images to a tar archive
    Save(save::SaveArgs),
    /// Load images from a tar archive
    Load(load::LoadArgs),
    /// Import the contents of a tarball to create a filesystem image
    Import(import::ImportArgs),
    /// Return low-level information on containers, images, networks or volumes
    Inspect(crate::container::inspect::AnyInspectArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage berth
    #[command(subcommand)]
    System(SystemCommand),
    /// Show the berth version information
    Version(version::VersionArgs),
    /// Display system-wide information
    Info(info::InfoArgs),
    /// Get real time events from the engine
    Events(events::EventsArgs),
    /// Generate the autocompletion script for the specified shell
    #[command(hide = true)]
    Completion(completion::CompletionArgs),
    /// Write the man pages of berth and its commands into a directory
    #[command(name = "__man", hide = true)]
    Man(completion::ManArgs),
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    Commit(commit::CommitArgs),
    Diff(diff::DiffArgs),
    Run(run::RunArgs),
    Create(run::CreateArgs),
    Start(run::StartArgs),
    Stop(manage::StopArgs),
    Restart(manage::StopArgs),
    Kill(manage::KillArgs),
    #[command(alias = "remove")]
    Rm(manage::RmArgs),
    #[command(alias = "list", alias = "ps")]
    Ls(ps::PsArgs),
    Logs(logs::LogsArgs),
    Exec(exec::ExecArgs),
    Wait(manage::NamesArgs),
    Pause(manage::NamesArgs),
    Unpause(manage::NamesArgs),
    Rename(manage::RenameArgs),
    Port(port::PortArgs),
    Update(crate::container::update::UpdateArgs),
    Inspect(inspect::InspectArgs),
    /// Remove all stopped containers
    Prune(manage::PruneArgs),
    Top(top::TopArgs),
    Stats(stats::StatsArgs),
    Cp(cp::CpArgs),
    Attach(attach::AttachArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    Build(Box<build::BuildArgs>),
    #[command(alias = "list")]
    Ls(images::ImagesArgs),
    Pull(pull::PullArgs),
    Push(push::PushArgs),
    Tag(tag::TagArgs),
    #[command(alias = "remove")]
    Rm(rmi::RmiArgs),
    History(history::HistoryArgs),
    Inspect(inspect::InspectArgs),
    Prune(prune::PruneArgs),
    Save(save::SaveArgs),
    Load(load::LoadArgs),
    Import(import::ImportArgs),
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk usage
    Df(system_df::DfArgs),
    /// Display system-wide information
    Info(info::InfoArgs),
    /// Remove unused data
    Prune(system_prune::SystemPruneArgs),
    /// Serve the Docker Engine API (for the docker CLI, compose, docker-py)
    Service(service::ServiceArgs),
    /// Get real time events from the engine
    Events(events::EventsArgs),
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_tree_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
        super::FastLifecycle::command().debug_assert();
    }

    /// The lifecycle's fast parser reads a command line as the whole tree does; one it cannot
    /// read (help, another command, a mistake) is left to the whole tree.
    #[test]
    fn the_lifecycle_parser_agrees_with_the_whole_tree() {
        use super::{parse_from, Cli, Command, FastLifecycle};
        let argv = |line: &str| line.split(' ').map(Into::into).collect::<Vec<_>>();
        let lines = [
            "berth rm -f a b",
            "berth --root /r rm -fv a",
            "berth rm --force --volumes=false a",
            "berth stop -t 3 a",
            "berth stop --time=-1 -s SIGINT a",
            "berth kill -s HUP a",
            "berth kill a",
            "berth start -ai --detach-keys ctrl-x a",
            "berth wait a b",
        ];
        for line in lines {
            let fast: FastLifecycle = parse_from(argv(line)).expect(line);
            let whole: Cli = parse_from(argv(line)).expect(line);
            let global = format!("{:?}", fast.global);
            let fast: Command = fast.command.into();
            assert_eq!(
                format!("{fast:?}"),
                format!("{:?}", whole.command),
                "{line}"
            );
            assert_eq!(global, format!("{:?}", whole.global), "{line}");
        }
        for line in [
            "berth rm --help",
            "berth rm",
            "berth network rm x",
            "berth rm --bogus a",
        ] {
            assert!(parse_from::<FastLifecycle>(argv(line)).is_err(), "{line}");
        }
    }
}
