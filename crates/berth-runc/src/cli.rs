//! runc's command line as clap structs: names, short flags and defaults as runc has them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "berth-runc",
    version = crate::VERSION_TEXT,
    about = "berth-runc is berth's OCI runtime: it speaks runc's command line, so containerd,\n\
             podman and Docker can use it where they use runc.",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// print the version
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// root directory for storage of container state (this should be located in tmpfs)
    /// [default: /run/berth-runc, or $XDG_RUNTIME_DIR/berth-runc when rootless, as runc's]
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// set the log file to write runtime logs to (default is stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// set the log format ('text' (default), or 'json')
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// enable debug logging
    #[arg(long, global = true)]
    pub debug: bool,
    /// enable systemd cgroup support (not supported: berth-runc manages cgroupfs directly)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// path to the criu binary used for checkpoint and restore
    #[arg(long, global = true, default_value = "criu")]
    pub criu: String,
    /// ignore cgroup permission errors ('true', 'false', or 'auto'); with spec: generate a
    /// configuration for a rootless container
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
}

impl GlobalArgs {
    /// `--root`, else runc's default: `$XDG_RUNTIME_DIR/berth-runc` for a caller that is not
    /// root (when that variable is set), `/run/berth-runc` otherwise.
    pub fn state_root(&self) -> PathBuf {
        if let Some(root) = &self.root {
            return root.clone();
        }
        let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
        match xdg {
            Some(dir) if berth_sys::rootless::is_rootless() => {
                PathBuf::from(dir).join("berth-runc")
            }
            _ => PathBuf::from("/run/berth-runc"),
        }
    }
}

/// The commands every container's life goes through (what containerd and podman run for each
/// start), parsed alone: building the whole command tree, every command's arguments, costs
/// more heap and code pages than the rest of such a command needs. Used only when it parses;
/// anything else goes through [`Cli`], which then reports errors (and help) as usual.
#[derive(Debug, Parser)]
#[command(name = "berth-runc", disable_version_flag = true)]
struct HotCli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: HotCommand,
}

#[derive(Debug, Subcommand)]
enum HotCommand {
    Create(Box<CreateArgs>),
    Start { id: String },
    Run(Box<RunArgs>),
    State { id: String },
    Kill(KillArgs),
    Delete(DeleteArgs),
}

impl Cli {
    /// The command tree with runc's help layout (urfave/cli's NAME, USAGE, COMMANDS and
    /// OPTIONS sections), for the whole program and for each command.
    pub fn command() -> clap::Command {
        <Cli as clap::CommandFactory>::command()
            .help_template(HELP)
            .mut_subcommands(|c| {
                let help = COMMAND_HELP.replace("COMMAND", c.get_name());
                c.help_template(help)
            })
    }

    /// Parses the command line, the hot commands by their own parser.
    pub fn parse_args() -> Result<Cli, clap::Error> {
        if let Ok(HotCli { global, command }) = HotCli::try_parse() {
            let command = match command {
                HotCommand::Create(a) => Command::Create(a),
                HotCommand::Start { id } => Command::Start { id },
                HotCommand::Run(a) => Command::Run(a),
                HotCommand::State { id } => Command::State { id },
                HotCommand::Kill(a) => Command::Kill(a),
                HotCommand::Delete(a) => Command::Delete(a),
            };
            return Ok(Cli {
                global,
                version: None,
                command,
            });
        }
        <Cli as clap::FromArgMatches>::from_arg_matches(&Cli::command().try_get_matches()?)
    }
}

const HELP: &str = concat!(
    "\
NAME:
   {name} - Open Container Initiative runtime

{about}

USAGE:
   {name} [global options] command [command options] [arguments...]

VERSION:
   ",
    crate::version_lines!(),
    "

COMMANDS:
{subcommands}

GLOBAL OPTIONS:
{options}
"
);

const COMMAND_HELP: &str = "\
NAME:
   berth-runc COMMAND - {about}

USAGE:
   {usage}

OPTIONS:
{options}
";

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// create a container
    Create(Box<CreateArgs>),
    /// executes the user defined process in a created container
    Start { id: String },
    /// create and run a container
    Run(Box<RunArgs>),
    /// output the state of a container
    State { id: String },
    /// kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill(KillArgs),
    /// delete any resources held by the container often used with detached container
    Delete(DeleteArgs),
    /// execute new process inside the container
    Exec(Box<ExecArgs>),
    /// ps displays the processes running inside a container
    Ps(PsArgs),
    /// lists containers started by berth-runc with the given root
    List(ListArgs),
    /// pause suspends all processes inside the container
    Pause { id: String },
    /// resumes all processes that have been previously paused
    Resume { id: String },
    /// create a new specification file
    Spec(SpecArgs),
    /// show the enabled features
    Features,
    /// display container events such as OOM notifications, cpu, memory, and IO usage statistics
    Events(EventsArgs),
    /// update container resource constraints
    Update(Box<UpdateArgs>),
    /// checkpoint a running container
    Checkpoint(Box<CheckpointArgs>),
    /// restore a container from a previous checkpoint
    Restore(Box<RestoreArgs>),
}

/// runc's `update`: resources from a JSON file (`-` for stdin), or from flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub id: String,
    /// Path to the file containing the resources to update or '-' to read from the standard input
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Specifies per cgroup weight, range is from 10 to 1000
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPU realtime period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU(s) to use
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory node(s) to use
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (in bytes, or with a unit: 64m)
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// Memory reservation or soft_limit (in bytes)
    #[arg(long = "memory-reservation", allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    /// Total memory usage (memory + swap); set '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids allowed in the container
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// The string of Intel RDT/CAT L3 cache schema
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// The string of Intel RDT/MBA memory bandwidth schema
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub id: String,
    /// Path to the root of the bundle directory, defaults to the current directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state directory and cgroup after it exits
    #[arg(long)]
    pub keep: bool,
    /// Ignored: berth-runc always becomes a subreaper, to reap the init of a user namespace
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number; default SIGTERM
    pub signal: Option<String>,
    /// Send the signal to all processes in the container
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub id: String,
    /// Forcibly deletes the container if it is still running (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments (unless --process is given)
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Path to the process.json
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Current working directory in the container
    #[arg(long)]
    pub cwd: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// UID (format: <uid>[:<gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding set for the process
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    /// Detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Set the asm process label for the process commonly used with selinux
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Set the apparmor profile for the process
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
}

#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct PsArgs {
    pub id: String,
    /// Arguments for ps (default -ef)
    #[arg(allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
    /// Select one of: table or json
    #[arg(short = 'f', long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Select one of: table or json
    #[arg(short = 'f', long, value_enum, default_value = "table")]
    pub format: Format,
    /// Display only container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    pub id: String,
    /// Display the container's stats then exit
    #[arg(long)]
    pub stats: bool,
    /// Set the stats collection interval
    #[arg(long, default_value = "5s")]
    pub interval: String,
}

/// runc's `checkpoint`: CRIU dumps the container into an image directory.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    pub id: String,
    #[command(flatten)]
    pub criu: CriuArgs,
    /// path for previous criu image files in pre-dump
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// leave the process running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// criu writes \\0 to this FD once lazy-pages is ready
    #[arg(long = "status-fd", default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// dump container's memory information only, leave the container running after this
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
}

/// runc's `restore`: CRIU brings a checkpointed container back from its image directory.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    pub id: String,
    #[command(flatten)]
    pub criu: CriuArgs,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// path to the root of the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// detach from the container's process
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// disable the use of the subreaper used to reap reparented processes
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// use userfaultfd to lazily restore memory pages
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// Specify an LSM profile to be used during restore in the form of TYPE:NAME.
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// Specify an LSM mount context to be used during restore.
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
}

/// The options checkpoint and restore share, as runc names them.
#[derive(Debug, Args)]
pub struct CriuArgs {
    /// path for saving (checkpoint) or reading (restore) criu image files
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// path for saving work files and logs
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// allow open tcp connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// cgroups mode: 'soft' (default), 'full' and 'strict'
    #[arg(long = "manage-cgroups-mode")]
    pub manage_cgroups_mode: Option<String>,
    /// create a namespace, but don't restore its properties
    #[arg(long = "empty-ns")]
    pub empty_ns: Vec<String>,
    /// enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
}
