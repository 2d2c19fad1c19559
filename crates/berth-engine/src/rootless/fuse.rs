//! Rootless storage's fallback: where the kernel refuses overlayfs in the user's namespace
//! (an older kernel, a backing filesystem it will not stack), fuse-overlayfs mounts the same
//! layers, as podman's rootless storage falls back to it. `BERTH_OVERLAY=fuse` chooses it
//! outright (to test it, or where the native overlay misbehaves); `berth info` shows the choice.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const FUSE: &str = "/dev/fuse";

/// True when the fallback is chosen outright.
pub fn forced() -> bool {
    std::env::var_os("BERTH_OVERLAY").is_some_and(|v| v == "fuse")
}

/// What `berth info` says of rootless storage.
pub fn describe() -> &'static str {
    if forced() {
        "fuse-overlayfs (BERTH_OVERLAY=fuse)"
    } else {
        "native, in the user namespace (userxattr); fuse-overlayfs where the kernel refuses"
    }
}

/// Mounts `data` (the kernel overlay's options) at `root` with fuse-overlayfs.
pub fn mount(root: &Path, data: &str) -> Result<()> {
    let bin = which().ok_or_else(|| {
        Error::Invalid(
            "rootless: the kernel refused overlayfs in your user namespace and fuse-overlayfs, \
             the fallback, is not installed: apt-get install fuse-overlayfs"
                .into(),
        )
    })?;
    if nix::unistd::access(
        FUSE,
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    )
    .is_err()
    {
        return Err(Error::Invalid(format!(
            "rootless: fuse-overlayfs needs {FUSE}, which is missing or not yours to open: \
             modprobe fuse, and make it usable by users as udev does (chmod 0666 {FUSE})"
        )));
    }
    // The kernel's own option has no meaning for fuse-overlayfs.
    let options: Vec<&str> = data.split(',').filter(|o| *o != "userxattr").collect();
    let out = std::process::Command::new(&bin)
        .arg("-o")
        .arg(options.join(","))
        .arg(root)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(Error::io("run", bin.clone()))?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "rootless: fuse-overlayfs at {}: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn which() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("fuse-overlayfs"))
        .find(|p| p.is_file())
}
