//! `checkpoint` and `restore` through CRIU, with runc's checks, options, image directory layout
//! (`descriptors.json` beside CRIU's images) and error words. runc drives `criu swrk` over its
//! RPC; berth runs `criu dump` / `criu restore` with the same options on the command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::container::{self, Container};
use crate::error::{Error, IoContext, Result};
use crate::state::{self, Record, Root, Status};

/// The oldest CRIU runc 1.1 works with (3.0.0, as runc encodes it: major*10000+minor*100+sub).
const MIN_VERSION: u32 = 30000;

/// What `checkpoint` and `restore` take, named as runc's flags.
#[derive(Debug, Clone, Default)]
pub struct CriuOptions {
    /// The criu binary (`--criu`, default "criu" from $PATH).
    pub criu: PathBuf,
    pub image_path: PathBuf,
    /// Where CRIU writes its log (`dump.log`, `restore.log`); the image path when not given.
    pub work_path: Option<PathBuf>,
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    /// soft (default), full or strict.
    pub manage_cgroups_mode: Option<String>,
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
    pub lazy_pages: bool,
    pub status_fd: i32,
    pub page_server: Option<String>,
    pub pre_dump: bool,
}

/// Dumps a running (or paused) container into `opts.image_path`; the container is destroyed
/// afterwards unless `leave_running` or `pre_dump`, as runc does.
pub fn checkpoint(root: &Root, id: &str, opts: &CriuOptions) -> Result<()> {
    let c = container::load(root, id)?;
    if matches!(c.status, Status::Created | Status::Stopped) {
        return Err(Error::Criu(format!(
            "Container cannot be checkpointed in {} state",
            c.status
        )));
    }
    check_version(&opts.criu)?;
    std::fs::create_dir_all(&opts.image_path).at("create the image directory", &opts.image_path)?;
    write_descriptors(&c, &opts.image_path)?;
    let kind = if opts.pre_dump { "PRE_DUMP" } else { "DUMP" };
    let mut cmd = criu(opts, if opts.pre_dump { "pre-dump" } else { "dump" });
    cmd.arg("--tree").arg(c.record.pid.to_string());
    cmd.arg("--root").arg(&c.record.rootfs);
    for (flag, on) in [
        ("--leave-running", opts.leave_running || opts.pre_dump),
        ("--tcp-established", opts.tcp_established),
        ("--ext-unix-sk", opts.ext_unix_sk),
        ("--shell-job", opts.shell_job),
        ("--file-locks", opts.file_locks),
        ("--auto-dedup", opts.auto_dedup),
        ("--lazy-pages", opts.lazy_pages),
    ] {
        if on {
            cmd.arg(flag);
        }
    }
    if let Some(parent) = &opts.parent_path {
        cmd.arg("--prev-images-dir").arg(parent).arg("--track-mem");
    }
    if let Some(server) = &opts.page_server {
        let (address, port) = server.rsplit_once(':').ok_or_else(|| {
            Error::Criu(format!(
                "Invalid page server address {server:?}: use ADDRESS:PORT"
            ))
        })?;
        cmd.args(["--page-server", "--address", address, "--port", port]);
    }
    if opts.status_fd >= 0 {
        cmd.arg("--status-fd").arg(opts.status_fd.to_string());
    }
    run(cmd, opts, kind, "dump.log")?;
    if !(opts.leave_running || opts.pre_dump) {
        container::delete_loaded(root, c, true)?;
    }
    Ok(())
}

/// Restores container `id` from `opts.image_path` with the bundle's config: its pid once CRIU
/// has made it (our child: `--restore-sibling`).
pub fn restore(root: &Root, id: &str, bundle: &Path, opts: &CriuOptions) -> Result<i32> {
    if root.load(id).is_ok() {
        return Err(Error::Exists(id.to_string()));
    }
    let spec = crate::process::parent::load_spec(bundle)?;
    let descriptors = opts.image_path.join(DESCRIPTORS);
    std::fs::read(&descriptors).at("open", &descriptors)?;
    check_version(&opts.criu)?;
    let rootfs = bundle.join(
        spec.root()
            .as_ref()
            .map_or(Path::new("rootfs"), |r| r.path()),
    );
    let cgroup_path = crate::cgroup::path_for(
        spec.linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_deref()),
        id,
    )?;
    let dir = root.create_dir(id)?;
    let pid_file = dir.join("restore.pid");
    let mut cmd = criu(opts, "restore");
    cmd.arg("--root").arg(&rootfs);
    cmd.args(["--restore-detached", "--restore-sibling", "--pidfile"]);
    cmd.arg(&pid_file);
    for (flag, on) in [
        ("--tcp-established", opts.tcp_established),
        ("--ext-unix-sk", opts.ext_unix_sk),
        ("--shell-job", opts.shell_job),
        ("--file-locks", opts.file_locks),
        ("--auto-dedup", opts.auto_dedup),
        ("--lazy-pages", opts.lazy_pages),
    ] {
        if on {
            cmd.arg(flag);
        }
    }
    let restored = run(cmd, opts, "RESTORE", "restore.log").and_then(|()| {
        let text = std::fs::read_to_string(&pid_file).at("read CRIU's pid file", &pid_file)?;
        text.trim()
            .parse::<i32>()
            .map_err(|e| Error::Criu(format!("CRIU's pid file {}: {e}", pid_file.display())))
    });
    let pid = match restored {
        Ok(pid) => pid,
        Err(e) => {
            let _ = root.remove_dir(id);
            return Err(e);
        }
    };
    let record = Record {
        id: id.to_string(),
        pid,
        pid_start: state::process_start_time(pid).unwrap_or(0),
        bundle: bundle.to_path_buf(),
        rootfs,
        created: state::now_rfc3339(),
        cgroup_path,
        annotations: spec.annotations().clone().unwrap_or_default(),
        spec,
    };
    root.save(&record)?;
    Ok(pid)
}

/// The file runc keeps beside CRIU's images: where the init's stdio pointed (pipes, a tty), so
/// that a restore can tell CRIU what to put there.
const DESCRIPTORS: &str = "descriptors.json";

fn write_descriptors(c: &Container, dir: &Path) -> Result<()> {
    let links: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{}/fd/{fd}", c.record.pid))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    let path = dir.join(DESCRIPTORS);
    let text = serde_json::to_vec(&links).unwrap_or_default();
    std::fs::write(&path, text).at("write", &path)
}

/// `criu <action>` with the options dump and restore share; its log in the work directory.
fn criu(opts: &CriuOptions, action: &str) -> Command {
    let mut cmd = Command::new(&opts.criu);
    cmd.arg(action);
    cmd.arg("--images-dir").arg(&opts.image_path);
    cmd.arg("--work-dir").arg(work_dir(opts));
    cmd.args(["--log-file", &format!("{action}.log"), "-v4"]);
    cmd.arg("--manage-cgroups");
    if let Some(mode) = &opts.manage_cgroups_mode {
        cmd.arg(format!("--manage-cgroups={mode}"));
    }
    for ns in &opts.empty_ns {
        cmd.arg("--empty-ns").arg(ns);
    }
    cmd
}

fn work_dir(opts: &CriuOptions) -> &Path {
    opts.work_path.as_deref().unwrap_or(&opts.image_path)
}

/// Runs CRIU; a failure is runc's "criu failed: type DUMP errno 0" with the log file named.
fn run(mut cmd: Command, opts: &CriuOptions, kind: &str, log: &str) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| Error::Criu(format!("run {}: {e}", opts.criu.display())))?;
    if status.success() {
        return Ok(());
    }
    // runc shows CRIU's cr_errno from its RPC reply; criu's command line has none to give.
    let errno = 0;
    // The log's path as runc names it: in the work path if one was given, else the bare name.
    let log = match &opts.work_path {
        Some(dir) => dir.join(log),
        None => PathBuf::from(log),
    };
    Err(Error::Criu(format!(
        "criu failed: type {kind} errno {errno}\nlog file: {}",
        log.display()
    )))
}

/// runc's version check: `criu --version` must say 3.0.0 or later.
fn check_version(criu: &Path) -> Result<()> {
    let fail = |why: String| Error::Criu(format!("CRIU version check failed: {why}"));
    let out = Command::new(criu)
        .arg("--version")
        .output()
        .map_err(|e| fail(format!("fork/exec {}: {e}", criu.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .and_then(parse_version)
        .ok_or_else(|| {
            let first = text.lines().next().unwrap_or_default();
            fail(format!("unexpected output {first:?}"))
        })?;
    if version < MIN_VERSION {
        return Err(Error::Criu(format!(
            "CRIU version {version} must be {MIN_VERSION} or higher"
        )));
    }
    Ok(())
}

/// "3.17.1" -> 31701, as runc numbers versions.
fn parse_version(s: &str) -> Option<u32> {
    let mut parts = s.trim().split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let sub = parts.next().flatten().unwrap_or(0);
    Some(major * 10000 + minor * 100 + sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_as_runc_numbers_them() {
        assert_eq!(parse_version("3.17.1"), Some(31701));
        assert_eq!(parse_version("3.0"), Some(30000));
        assert_eq!(parse_version("x"), None);
    }
}
