//! One function per command, each a thin adapter from parsed arguments to berth-runtime.

use anyhow::{bail, Context, Result};
use berth_runtime::container;
use berth_runtime::process::parent::{self, CreateOptions};
use berth_runtime::state::{Root, Status};

use crate::cli::{Cli, Command, CreateArgs, Format};

/// Runs the command; the result is the process's exit code.
pub fn dispatch(cli: &Cli) -> Result<i32> {
    if cli.global.systemd_cgroup {
        bail!("--systemd-cgroup is not supported: berth-runc manages cgroups through cgroupfs; configure your engine's cgroup manager as cgroupfs");
    }
    if let Some(mode) = cli.global.rootless.as_deref() {
        // runc's values; without a delegated cgroup a rootless container has none either way
        // (berth-runtime's cgroup::open), with one it is used.
        if !matches!(mode, "true" | "false" | "auto") {
            bail!("invalid --rootless value {mode:?}: use true, false or auto");
        }
    }
    let root = Root::new(cli.global.state_root());
    let args: Vec<String> = std::env::args().skip(1).collect();
    berth_runtime::log::debug(&format!("berth-runc {}", args.join(" ")));
    match &cli.command {
        Command::Create(a) => {
            parent::create(&root, create_options(a))?;
            Ok(0)
        }
        Command::Start { id } => {
            container::start(&root, id)?;
            Ok(0)
        }
        Command::Run(a) => run(&root, a),
        Command::State { id } => {
            // Without a newline after the document, as runc writes it.
            print!("{}", container::state_json(&container::load(&root, id)?));
            Ok(0)
        }
        Command::Kill(a) => kill(&root, a),
        Command::Delete(a) => {
            container::delete(&root, &a.id, a.force)?;
            Ok(0)
        }
        Command::Exec(a) => crate::exec::exec(&root, a),
        Command::Ps(a) => ps(&root, &a.id, &a.ps_args, a.format),
        Command::List(a) => list(&root, a.format, a.quiet),
        Command::Pause { id } => Ok(container::pause(&root, id).map(|_| 0)?),
        Command::Resume { id } => Ok(container::resume(&root, id).map(|_| 0)?),
        Command::Spec(a) => crate::spec::write(
            &a.bundle,
            cli.global.rootless.as_deref().is_some_and(|v| v != "false"),
        )
        .map(|_| 0),
        Command::Features => {
            out!(
                "{}",
                serde_json::to_string_pretty(&crate::spec::features())?
            );
            Ok(0)
        }
        Command::Events(a) => events(&root, a),
        Command::Update(a) => crate::update::run(&root, a),
        Command::Checkpoint(a) => crate::criu::checkpoint(&root, &cli.global.criu, a),
        Command::Restore(a) => crate::criu::restore(&root, &cli.global.criu, a),
    }
}

fn create_options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        preserve_fds: a.preserve_fds,
        no_new_keyring: a.no_new_keyring,
        spec: None,
        start_at_once: false,
        hold_start: false,
    }
}

/// create + start + wait; the container is deleted when its process exits (unless --keep).
/// A process with a terminal and no --console-socket gets berth-runc's own relay (tty.rs).
fn run(root: &Root, a: &crate::cli::RunArgs) -> Result<i32> {
    let mut spec = None;
    let console = if a.detach {
        None
    } else {
        check_attached_console(a.create.console_socket.is_some())?;
        // What else is wrong with the config, create says.
        spec = parent::load_spec(&a.create.bundle).ok();
        let terminal = spec.as_ref().and_then(|s| s.process().as_ref()?.terminal()) == Some(true);
        terminal.then(crate::tty::Console::new).transpose()?
    };
    let mut opts = create_options(&a.create);
    // Read once: create takes it as it is.
    opts.spec = spec;
    opts.start_at_once = true;
    if let Some(console) = &console {
        opts.console_socket = Some(console.path());
    }
    // The init may end up our grandchild (user namespaces): adopt it when its parent exits.
    nix::sys::prctl::set_child_subreaper(true).context("become a child subreaper")?;
    // The record create returns serves start and delete: the state is not read back.
    let mut created = parent::create(root, opts)?;
    if let Err(e) = created.start() {
        let _ = container::delete(root, &a.create.id, true);
        return Err(e.into());
    }
    if a.detach {
        return Ok(0);
    }
    let terminal = console.map(crate::tty::Console::accept).transpose();
    let code = crate::tty::wait(terminal, created.pid);
    if !a.keep {
        let stopped = container::Container {
            record: created.record,
            status: Status::Stopped,
            cgroup: created.cgroup,
        };
        container::delete_loaded(root, stopped, true)?;
    }
    code
}

/// runc's refusal of a console socket for a process whose caller stays attached to it.
pub fn check_attached_console(console_socket: bool) -> Result<()> {
    if console_socket {
        bail!(
            "cannot use console socket if runc will not detach or allocate tty: drop \
             --console-socket, or detach (-d)"
        );
    }
    Ok(())
}

fn ps(root: &Root, id: &str, ps_args: &[String], format: Format) -> Result<i32> {
    let pids = container::pids(root, id)?;
    if format == Format::Json {
        out!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps output has no PID column")?;
    out!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out!("{line}");
        }
    }
    Ok(0)
}

fn list(root: &Root, format: Format, quiet: bool) -> Result<i32> {
    let all = container::list(root)?;
    let owners: Vec<String> = all.iter().map(|c| owner(root, &c.record.id)).collect();
    if quiet {
        all.iter().for_each(|c| out!("{}", c.record.id));
    } else if format == Format::Json {
        let docs: Vec<_> = all
            .iter()
            .zip(&owners)
            .map(|(c, owner)| {
                let mut doc = c.record.doc(c.status);
                doc.owner = owner;
                doc
            })
            .collect();
        out!("{}", serde_json::to_string(&docs)?);
    } else {
        let mut rows =
            vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
        for (c, owner) in all.iter().zip(&owners) {
            let doc = c.record.doc(c.status);
            rows.push([
                doc.id.to_string(),
                doc.pid.to_string(),
                doc.status.to_string(),
                doc.bundle.display().to_string(),
                doc.created.to_string(),
                owner.clone(),
            ]);
        }
        let text = table(&rows);
        out!("{}", text.strip_suffix('\n').unwrap_or(&text));
    }
    Ok(0)
}

/// Columns as runc's tabwriter sets them: each at least 12 wide, 3 spaces after the widest cell.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let width = |col: usize| {
        rows.iter()
            .map(|r| r[col].len() + 3)
            .max()
            .unwrap_or(0)
            .max(12)
    };
    let widths: Vec<usize> = (0..N).map(width).collect();
    let mut out = String::new();
    for row in rows {
        for (col, cell) in row.iter().enumerate() {
            if col + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[col]));
            }
        }
        out.push('\n');
    }
    out
}

/// The user owning the container's state directory, by name from /etc/passwd, else `#uid`,
/// as runc says it.
fn owner(root: &Root, id: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(root.dir(id)) else {
        return String::new();
    };
    let uid = meta.uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid)
        .map_or_else(|| format!("#{uid}"), |f| f[0].to_string())
}

/// `events --stats`: one stats event; without it, runc's stream: stats every `--interval`
/// and an `oom` event for each OOM kill, one JSON document a line, until killed.
fn events(root: &Root, a: &crate::cli::EventsArgs) -> Result<i32> {
    use berth_runtime::events::{self, Event};
    if a.stats {
        let s = container::stats(root, &a.id)?;
        out!("{}", serde_json::to_string(&Event::stats(&a.id, s))?);
        return Ok(0);
    }
    let Some(interval) = events::parse_duration(&a.interval) else {
        bail!(
            "invalid value {:?} for flag -interval: use a duration such as 5s or 100ms",
            a.interval
        );
    };
    let emit = |e: &Event| {
        out!("{}", serde_json::to_string(e).unwrap_or_default());
        true
    };
    let log = |e: &berth_runtime::Error| berth_runtime::log::error(&e.to_string());
    events::watch(root, &a.id, interval, emit, log)?;
    Ok(0)
}

/// runc's kill: signal 0 is a liveness check (kill(2) with no signal), which succeeds while the
/// container has a process, and is "container not running" once its init has exited (runc's
/// words, which callers match); `--all` with 0 succeeds whatever is left.
fn kill(root: &Root, a: &crate::cli::KillArgs) -> Result<i32> {
    match parse_signal(a.signal.as_deref().unwrap_or("SIGTERM"))? {
        Some(sig) => container::kill(root, &a.id, sig, a.all)?,
        None => {
            let c = container::load(root, &a.id)?;
            if !a.all && c.status == Status::Stopped {
                return Err(berth_runtime::Error::NotRunning(a.id.clone()).into());
            }
        }
    }
    Ok(0)
}

/// `KILL`, `SIGKILL`, `kill`, `9`, `RTMIN+3` or `37` (what containerd passes for a systemd
/// image's SIGRTMIN+3); `0` (no signal: a liveness check) is `None`.
fn parse_signal(s: &str) -> Result<Option<berth_sys::signal::SignalNumber>> {
    if s.parse::<i32>() == Ok(0) {
        return Ok(None);
    }
    berth_sys::signal::SignalNumber::parse(s)
        .map(Some)
        .with_context(|| {
            format!("unknown signal {s:?}: use a name such as TERM or KILL, or a number")
        })
}
