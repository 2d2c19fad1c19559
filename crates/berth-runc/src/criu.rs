//! `checkpoint` and `restore`: runc's flags over berth_runtime::criu.

use anyhow::{bail, Context, Result};
use berth_runtime::container;
use berth_runtime::criu::CriuOptions;
use berth_runtime::state::{Root, Status};

use crate::cli::{CheckpointArgs, CriuArgs, RestoreArgs};

pub fn checkpoint(root: &Root, criu: &str, a: &CheckpointArgs) -> Result<i32> {
    let mut opts = options(criu, &a.criu)?;
    opts.parent_path = a.parent_path.clone();
    opts.leave_running = a.leave_running;
    opts.lazy_pages = a.lazy_pages;
    opts.status_fd = a.status_fd;
    opts.page_server = a.page_server.clone();
    opts.pre_dump = a.pre_dump;
    berth_runtime::criu::checkpoint(root, &a.id, &opts)?;
    Ok(0)
}

/// Restores, then as `run`: detached, or waiting for the process and deleting the container.
pub fn restore(root: &Root, criu: &str, a: &RestoreArgs) -> Result<i32> {
    for (flag, given) in [
        ("--console-socket", a.console_socket.is_some()),
        ("--lsm-profile", a.lsm_profile.is_some()),
        ("--lsm-mount-context", a.lsm_mount_context.is_some()),
    ] {
        if given {
            bail!("restore {flag} is not supported by berth-runc: restore without it");
        }
    }
    let mut opts = options(criu, &a.criu)?;
    opts.lazy_pages = a.lazy_pages;
    nix::sys::prctl::set_child_subreaper(true).context("become a child subreaper")?;
    let bundle = std::path::absolute(&a.bundle).context("the bundle's path")?;
    let pid = berth_runtime::criu::restore(root, &a.id, &bundle, &opts)?;
    if let Some(p) = &a.pid_file {
        berth_runtime::process::parent::write_pid_file(p, pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    let code = container::wait_exit(pid)?;
    let record = root.load(&a.id)?;
    container::delete_loaded(
        root,
        container::Container {
            record,
            status: Status::Stopped,
            cgroup: None,
        },
        true,
    )?;
    Ok(code)
}

/// The options both take; the image path defaults to ./checkpoint, as runc's.
fn options(criu: &str, a: &CriuArgs) -> Result<CriuOptions> {
    let image_path = match &a.image_path {
        Some(p) => p.clone(),
        None => std::env::current_dir()
            .context("the current directory")?
            .join("checkpoint"),
    };
    Ok(CriuOptions {
        criu: criu.into(),
        image_path,
        work_path: a.work_path.clone(),
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        manage_cgroups_mode: a.manage_cgroups_mode.clone(),
        empty_ns: a.empty_ns.clone(),
        auto_dedup: a.auto_dedup,
        status_fd: -1,
        ..CriuOptions::default()
    })
}
