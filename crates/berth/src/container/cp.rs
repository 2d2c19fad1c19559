//! `cp`: files and directories between a container and the host, both ways. Every path inside
//! the container is resolved with `openat2(RESOLVE_IN_ROOT)` from the container's root, and the
//! tree below it is walked one name at a time with `O_NOFOLLOW`, so no symbolic link in the
//! container (to `/`, to `../../..`) leads outside it. A running container is reached through
//! `/proc/<init>/root` (its own mount namespace: volumes and /etc files included); a stopped
//! one through its overlay root, mounted for the copy and unmounted after.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use berth_engine::records;
use berth_engine::rootfs::StoppedRoot;
use berth_engine::{lifecycle, Engine};
use berth_runtime::rootfs::resolve;
use clap::Args;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

use crate::commands::Context;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Always follow symbolic links in SRC_PATH (inside the container's root)
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH or a host path
    pub src: String,
    /// CONTAINER:DEST_PATH or a host path
    pub dest: String,
}

/// `web:/etc` -> Some(("web", "/etc")); a host path (absolute, or starting with `.`) -> None.
pub fn split_spec(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

pub fn run(ctx: &Context, args: CpArgs) -> Result<i32> {
    if args.src == "-" || args.dest == "-" {
        bail!("berth cp: tar streams (\"-\") are not supported yet: copy to or from a path");
    }
    let engine = ctx.engine()?;
    match (split_spec(&args.src), split_spec(&args.dest)) {
        (Some(_), Some(_)) => {
            bail!("copying between containers is not supported: copy through the host")
        }
        (None, None) => bail!("one of SRC and DEST must be CONTAINER:PATH"),
        (Some((c, path)), None) => with_root(&engine, c, |root| {
            copy_out(
                root,
                Path::new(path),
                Path::new(&args.dest),
                args.follow_link,
            )
        }),
        (None, Some((c, path))) => with_root(&engine, c, |root| {
            copy_in(
                Path::new(&args.src),
                root,
                Path::new(path),
                args.follow_link,
            )
        }),
    }?;
    Ok(0)
}

/// Runs `act` with a descriptor on the container's root.
fn with_root(
    engine: &Engine,
    key: &str,
    act: impl FnOnce(BorrowedFd<'_>) -> Result<()>,
) -> Result<()> {
    let record = lifecycle::refresh(engine, engine.containers.find(key)?)?;
    if let Some(pid) = berth_engine::ns::live_pid(&record) {
        let root = nix::fcntl::open(
            format!("/proc/{pid}/root").as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("open the root of container {key} (/proc/{pid}/root)"))?;
        // The pid could have been recycled between the check and the open.
        if !records::alive(pid, record.state.pid_start) {
            bail!("container {key} stopped during the copy: try again");
        }
        return act(root.as_fd());
    }
    let mount = StoppedRoot::mount(engine, &record)?;
    let root = nix::fcntl::open(
        &mount.dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", mount.dir.display()))?;
    act(root.as_fd())
}

/// The parent and last name of a path inside the container; `None` for the root itself.
fn split(path: &Path) -> (PathBuf, Option<OsString>) {
    let trimmed = path.as_os_str().as_bytes();
    let contents = trimmed.ends_with(b"/.") || trimmed == b".";
    match (path.file_name(), contents) {
        (Some(name), false) => (
            path.parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
            Some(name.to_os_string()),
        ),
        _ => (path.to_path_buf(), None),
    }
}

fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<FileStat> {
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Container -> host, with Docker's rules: into DEST if it is a directory (the contents only
/// for `SRC/.`), else as DEST.
fn copy_out(root: BorrowedFd<'_>, src: &Path, dest: &Path, follow: bool) -> Result<()> {
    let ctx = || format!("copy {} out of the container", src.display());
    let contents = src.as_os_str().as_bytes().ends_with(b"/.");
    let base = src
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| "rootfs".into());
    let (parent, name) = split(src);
    // (directory, name in it) of the source; with -L the whole path is resolved in the root.
    let (dir, name): (OwnedFd, OsString) = match name {
        Some(n) if !follow => (
            resolve::open(root, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY).with_context(ctx)?,
            n,
        ),
        _ => {
            let fd = resolve::open(root, src, OFlag::O_PATH).with_context(ctx)?;
            let st = nix::sys::stat::fstat(&fd).with_context(ctx)?;
            if kind(&st) != SFlag::S_IFDIR {
                let file = resolve::open(root, src, OFlag::O_RDONLY).with_context(ctx)?;
                let to = if dest.is_dir() {
                    dest.join(&base)
                } else {
                    dest.to_path_buf()
                };
                return out_file(file, Mode::from_bits_truncate(st.st_mode & 0o7777), &to)
                    .with_context(ctx);
            }
            (fd, OsString::from("."))
        }
    };
    let st = stat_at(dir.as_fd(), &name).with_context(ctx)?;
    let target = if dest.is_dir() {
        if contents {
            dest.to_path_buf()
        } else {
            dest.join(base)
        }
    } else if dest.as_os_str().as_bytes().ends_with(b"/") && kind(&st) != SFlag::S_IFDIR {
        bail!("destination directory {} does not exist", dest.display());
    } else {
        dest.to_path_buf()
    };
    out_entry(dir.as_fd(), &name, &target).with_context(ctx)
}

fn out_file(fd: OwnedFd, mode: Mode, to: &Path) -> Result<()> {
    replace_file(to)?;
    let mut out = File::create(to).with_context(|| format!("create {}", to.display()))?;
    std::io::copy(&mut File::from(fd), &mut out)?;
    out.set_permissions(fs::Permissions::from_mode(mode.bits()))?;
    Ok(())
}

/// Copies the entry `name` of the container directory `dir` to the host path `to`.
fn out_entry(dir: BorrowedFd<'_>, name: &OsStr, to: &Path) -> Result<()> {
    let st = stat_at(dir, name)?;
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    match kind(&st) {
        SFlag::S_IFDIR => {
            let fd = nix::fcntl::openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            fs::create_dir_all(to).with_context(|| format!("create {}", to.display()))?;
            for child in names(&fd)? {
                out_entry(fd.as_fd(), &child, &to.join(&child))?;
            }
            fs::set_permissions(to, fs::Permissions::from_mode(mode.bits()))?;
        }
        SFlag::S_IFREG => {
            let fd = nix::fcntl::openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            out_file(fd, mode, to)?;
        }
        SFlag::S_IFLNK => {
            let target = nix::fcntl::readlinkat(dir, name)?;
            replace_file(to)?;
            symlink(&target, to).with_context(|| format!("create the link {}", to.display()))?;
        }
        _ => eprintln!(
            "berth: cp: skipping {}: not a file, directory or link",
            to.display()
        ),
    }
    Ok(())
}

/// A file or link about to be written over goes first (a link is replaced, not followed).
fn replace_file(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => bail!("cannot overwrite directory {} with a file", path.display()),
        Ok(_) => fs::remove_file(path).with_context(|| format!("replace {}", path.display())),
        Err(_) => Ok(()),
    }
}

/// The names in a directory, without `.` and `..`.
fn names(dir: &OwnedFd) -> Result<Vec<OsString>> {
    let mut d = nix::dir::Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(out)
}

/// Host -> container: into DEST if it resolves (inside the root) to a directory, else as DEST
/// in its parent directory, which must exist.
fn copy_in(src: &Path, root: BorrowedFd<'_>, dest: &Path, follow: bool) -> Result<()> {
    let ctx = || {
        format!(
            "copy {} into the container at {}",
            src.display(),
            dest.display()
        )
    };
    let meta = if follow {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    }
    .with_context(|| format!("{}", src.display()))?;
    let contents = src.as_os_str().as_bytes().ends_with(b"/.");
    let base = src
        .file_name()
        .map(OsStr::to_os_string)
        .context("SRC has no name: give a file or directory")?;
    let existing = resolve::open(root, dest, OFlag::O_PATH | OFlag::O_DIRECTORY);
    let (dir, name) = match existing {
        Ok(fd) if contents && meta.is_dir() => {
            for child in fs::read_dir(src)? {
                let child = child?;
                in_entry(&child.path(), fd.as_fd(), &child.file_name(), false).with_context(ctx)?;
            }
            return Ok(());
        }
        Ok(fd) => (fd, base),
        Err(e)
            if e.raw_os_error() == Some(Errno::ENOTDIR as i32)
                || e.raw_os_error() == Some(Errno::ENOENT as i32) =>
        {
            let (parent, name) = split(dest);
            let name = name.context("DEST names no file")?;
            let fd = resolve::open(root, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
                .with_context(|| format!("the container has no directory {}", parent.display()))?;
            (fd, name)
        }
        Err(e) => return Err(e).with_context(ctx),
    };
    in_entry(src, dir.as_fd(), &name, follow).with_context(ctx)
}

/// Copies the host path `from` to the entry `name` of the container directory `dir`.
fn in_entry(from: &Path, dir: BorrowedFd<'_>, name: &OsStr, follow: bool) -> Result<()> {
    let meta = if follow {
        fs::metadata(from)
    } else {
        fs::symlink_metadata(from)
    }?;
    let mode = Mode::from_bits_truncate(meta.permissions().mode() & 0o7777);
    let ft = meta.file_type();
    if ft.is_dir() {
        match nix::sys::stat::mkdirat(dir, name, mode) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        // O_NOFOLLOW: an existing link in the container's way is refused, never followed.
        let child = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| {
            format!(
                "{} is not a directory in the container",
                Path::new(name).display()
            )
        })?;
        for e in fs::read_dir(from)? {
            let e = e?;
            in_entry(&e.path(), child.as_fd(), &e.file_name(), false)?;
        }
    } else if ft.is_file() {
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_TRUNC
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::openat(dir, name, flags, mode) {
            Err(Errno::ELOOP) => {
                nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)?;
                nix::fcntl::openat(dir, name, flags, mode)?
            }
            r => r?,
        };
        let mut out = File::from(fd);
        std::io::copy(&mut File::open(from)?, &mut out)?;
        nix::sys::stat::fchmod(&out, mode)?;
    } else if ft.is_symlink() {
        let target = fs::read_link(from)?;
        match nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        nix::unistd::symlinkat(&target, dir, name)?;
    } else {
        eprintln!(
            "berth: cp: skipping {}: not a file, directory or link",
            from.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_specs() {
        assert_eq!(split_spec("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split_spec("/tmp/a:b"), None);
        assert_eq!(split_spec("./a:b"), None);
        assert_eq!(split_spec("file"), None);
        assert_eq!(split_spec(":x"), None);
    }

    #[test]
    fn split_keeps_contents_copies_apart() {
        assert_eq!(
            split(Path::new("/etc/hosts")),
            (PathBuf::from("/etc"), Some("hosts".into()))
        );
        assert_eq!(split(Path::new("/")), (PathBuf::from("/"), None));
        assert_eq!(split(Path::new("/etc/.")).1, None);
    }
}
