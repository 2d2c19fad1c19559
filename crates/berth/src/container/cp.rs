//! `cp`: files and directories between a container and the host, both ways, or a tar stream
//! (`-`) on stdin or stdout: the engine's tar streams of a container's files (berth-engine's
//! copy, which keeps every path inside the container's root) and, on the host side, the same
//! packing and extraction, the extraction confined to the destination. The naming rules are
//! the docker CLI's: into DEST if it is a directory (only the contents for `SRC/.`), else as DEST.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use berth_engine::copy::{self, ContainerRoot, ExtractOptions};
use berth_engine::Error;
use clap::Args;

use crate::commands::Context;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Always follow symbolic links in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Archive mode (copy all uid/gid information into the container)
    #[arg(short, long)]
    pub archive: bool,
    /// Suppress progress output during copy (berth prints none)
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH, a host path, or - (a tar stream on stdin)
    pub src: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar stream on stdout)
    pub dest: String,
}

/// `web:/etc` -> Some(("web", "/etc")); a host path (absolute, or starting with `.`) -> None.
pub fn split_spec(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

/// As the docker CLI copies: an existing directory is replaced by nothing else, nor the reverse.
const OPTIONS: ExtractOptions = ExtractOptions {
    no_overwrite_dir_non_dir: true,
    copy_uid_gid: false,
    userns: None,
};

pub fn run(ctx: &Context, args: CpArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    match (split_spec(&args.src), split_spec(&args.dest)) {
        (Some(_), Some(_)) => {
            bail!("copying between containers is not supported: copy through the host")
        }
        (None, None) => bail!("one of SRC and DEST must be CONTAINER:PATH"),
        (Some((c, path)), None) => {
            let root = copy::open_root(&engine, c)?;
            copy_out(&root, path, &args.dest, args.follow_link)
        }
        (None, Some((c, path))) => {
            let root = copy::open_root(&engine, c)?;
            // Docker's -a: the files keep the source's owners, not the container's root.
            let options = ExtractOptions {
                copy_uid_gid: args.archive,
                ..OPTIONS
            };
            copy_in(&args.src, &root, c, path, args.follow_link, &options)
        }
    }?;
    Ok(0)
}

/// Container -> host.
fn copy_out(root: &ContainerRoot, src: &str, dest: &str, follow: bool) -> Result<()> {
    let mut stat = root.stat(src)?;
    let mut src = src.to_string();
    if follow && stat.is_symlink() {
        src = stat.link_target.clone();
        stat = root.stat(&src)?;
    }
    if dest == "-" {
        let out = std::io::stdout().lock();
        return Ok(root.archive(&src, out)?);
    }
    let contents = src.ends_with("/.");
    let (dir, name) = match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => {
            let name = if contents {
                ".".into()
            } else {
                copy::base_name(&src)
            };
            (PathBuf::from(dest), name)
        }
        Ok(_) if stat.is_dir() => {
            bail!("cannot overwrite non-directory {dest} with directory {src}")
        }
        Ok(_) => as_named(Path::new(dest))?,
        Err(_) if dest.ends_with('/') && !stat.is_dir() => {
            bail!("destination directory {dest} does not exist")
        }
        Err(_) => as_named(Path::new(dest))?,
    };
    let host =
        copy::open_host_dir(&dir).with_context(|| format!("copy {src} out of the container"))?;
    relay(
        |out| root.archive_as(&src, &name, out),
        |input| copy::unpack(host.as_fd(), Path::new("/"), input, &OPTIONS),
    )
}

/// Host -> container (a tar stream on stdin goes into the directory DEST).
fn copy_in(
    src: &str,
    root: &ContainerRoot,
    container: &str,
    dest: &str,
    follow: bool,
    options: &ExtractOptions,
) -> Result<()> {
    if src == "-" {
        if !root.stat(dest)?.is_dir() {
            bail!("destination \"{container}:{dest}\" must be a directory");
        }
        return Ok(root.extract(dest, std::io::stdin().lock(), options)?);
    }
    let source = if follow {
        std::fs::canonicalize(src)
    } else {
        std::path::absolute(src)
    }
    .with_context(|| src.to_string())?;
    let meta = std::fs::symlink_metadata(&source).with_context(|| src.to_string())?;
    // Into where a link at DEST leads, as the docker CLI copies.
    let target = match root.stat(dest) {
        Ok(st) if st.is_symlink() => root.stat(&st.link_target).map(|s| (st.link_target, s)),
        r => r.map(|s| (dest.to_string(), s)),
    };
    let (dir, name) = match target {
        Ok((d, st)) if st.is_dir() => {
            let name = if src.ends_with("/.") {
                ".".into()
            } else {
                source
                    .file_name()
                    .map(OsStr::to_string_lossy)
                    .context("SRC has no name: give a file or directory")?
                    .into_owned()
            };
            (PathBuf::from(d), name)
        }
        Ok(_) if meta.is_dir() => {
            bail!("cannot overwrite non-directory {container}:{dest} with directory {src}")
        }
        Ok((d, _)) => as_named(Path::new(&d))?,
        Err(Error::NoSuchPath { .. }) if dest.ends_with('/') => {
            bail!("destination directory {container}:{dest} does not exist")
        }
        Err(Error::NoSuchPath { .. }) => as_named(Path::new(dest))?,
        Err(e) => return Err(e.into()),
    };
    let host = copy::open_host_dir(Path::new("/"))?;
    let dir = dir.to_string_lossy().into_owned();
    relay(
        |out| copy::pack(host.as_fd(), &source, Path::new(&name), out),
        |input| root.extract(&dir, input, options),
    )
}

/// The directory a copy named DEST goes into, and the name it takes there.
fn as_named(dest: &Path) -> Result<(PathBuf, String)> {
    let name = dest
        .file_name()
        .context("DEST names no file")?
        .to_string_lossy()
        .into_owned();
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((dir.to_path_buf(), name))
}

/// Packs on one thread into a pipe that `unpack` reads: no copy is ever held whole.
fn relay(
    pack: impl FnOnce(std::io::PipeWriter) -> berth_engine::Result<()> + Send,
    unpack: impl FnOnce(std::io::PipeReader) -> berth_engine::Result<()>,
) -> Result<()> {
    let (reader, writer) = std::io::pipe().context("create a pipe")?;
    std::thread::scope(|s| {
        let packer = s.spawn(move || pack(writer));
        let unpacked = unpack(reader);
        let packed = packer
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("the copy's reader failed".into())));
        // The reader's own error first: the other side's is then only a broken pipe.
        match (packed, unpacked) {
            (Err(e), _) if !broken_pipe(&e) => Err(e.into()),
            (_, Err(e)) | (Err(e), Ok(())) => Err(e.into()),
            (Ok(()), Ok(())) => Ok(()),
        }
    })
}

fn broken_pipe(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
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
        assert_eq!(split_spec("-"), None);
    }

    #[test]
    fn dest_names() {
        assert_eq!(
            as_named(Path::new("/tmp/x")).unwrap(),
            (PathBuf::from("/tmp"), "x".to_string())
        );
        assert_eq!(
            as_named(Path::new("x")).unwrap(),
            (PathBuf::from("."), "x".to_string())
        );
    }
}
