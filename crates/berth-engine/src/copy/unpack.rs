//! A tar stream extracted into a directory inside a root. Each entry's directory is resolved
//! from the root (`RESOLVE_IN_ROOT`: a link in the way leads somewhere inside it) and the entry
//! is made relative to that directory without following a link there; names with `..` are
//! refused, absolute ones taken as relative to the destination, as GNU tar takes them. Device
//! nodes are not made: a container gets its devices from its configuration, and a container's
//! archive must not make one on the host.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use berth_runtime::rootfs::resolve;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use tar::EntryType;

use super::pack::{names, open_at};
use super::{kind, lstat_at};
use crate::error::{Error, Result};
use crate::userns::IdMap;

/// Docker's options of an extraction (`PUT /archive`'s query).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory, or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Owners as the archive gives them; else whoever extracts (root) owns what is made.
    pub copy_uid_gid: bool,
    /// The container's user namespace, when it has one of its own (the engine sets it): owners
    /// are stored as the host ids of its range, root's being its root's.
    pub userns: Option<IdMap>,
}

/// Extracts `input` into the directory `dir` inside `root`.
pub fn unpack(
    root: BorrowedFd<'_>,
    dir: &Path,
    input: impl Read,
    options: &ExtractOptions,
) -> Result<()> {
    match resolve::open(root, dir, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(Error::Invalid(format!(
                "extraction point is not a directory: {} (copy into a directory)",
                dir.display()
            )))
        }
        Err(e) => return Err(Error::io("open the destination", dir)(e)),
    }
    let mut archive = tar::Archive::new(input);
    let mut dir_times = Vec::new();
    let entries = archive.entries().map_err(|e| not_tar(dir, &e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| not_tar(dir, &e))?;
        let name = entry
            .path()
            .map_err(Error::io("read an entry's name for", dir))?
            .into_owned();
        let Some(rel) = confined(&name)? else {
            continue;
        };
        let path = dir.join(&rel);
        let kind = entry.header().entry_type();
        let mtime = entry.header().mtime().unwrap_or(0);
        if rel.as_os_str().is_empty() {
            // `.`: the destination itself, as it is.
            continue;
        }
        let made = Entry::new(root, &path, options)?.make(&mut entry, kind, root, dir)?;
        if kind == EntryType::Directory {
            dir_times.push((path, mtime));
        } else if made {
            set_mtime(root, &path, mtime);
        }
    }
    // Last, and deepest first: what was made inside a directory changed its time.
    for (path, mtime) in dir_times.into_iter().rev() {
        set_mtime(root, &path, mtime);
    }
    Ok(())
}

/// What cannot be read as a tar stream is the request's fault (or its sender's, gone).
fn not_tar(dir: &Path, e: &std::io::Error) -> Error {
    Error::Invalid(format!(
        "the archive for {} is not a whole tar stream: {e}",
        dir.display()
    ))
}

/// An entry's name as a path relative to the destination: `/` and `.` dropped; `..` refused
/// (it names something outside what is extracted). None for an entry with no name.
fn confined(name: &Path) -> Result<Option<PathBuf>> {
    let mut rel = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(s) => rel.push(s),
            Component::ParentDir => {
                return Err(Error::Invalid(format!(
                    "refused the archive: its entry {} names a path outside the destination (..)",
                    name.display()
                )))
            }
            _ => {}
        }
    }
    Ok((!name.as_os_str().is_empty()).then_some(rel))
}

/// Where one entry goes: its directory (resolved inside the root, made if missing) and name.
struct Entry<'a> {
    dir: OwnedFd,
    name: PathBuf,
    path: &'a Path,
    options: &'a ExtractOptions,
}

impl<'a> Entry<'a> {
    fn new(root: BorrowedFd<'_>, path: &'a Path, options: &'a ExtractOptions) -> Result<Self> {
        let parent = path.parent().unwrap_or(Path::new("/"));
        let name = PathBuf::from(path.file_name().unwrap_or_default());
        let dir = resolve::create(root, parent, resolve::Leaf::Dir)
            .and_then(|_| resolve::open(root, parent, OFlag::O_PATH | OFlag::O_DIRECTORY))
            .map_err(Error::io("make the directory", parent))?;
        Ok(Entry {
            dir,
            name,
            path,
            options,
        })
    }

    fn io(&self, step: &'static str) -> impl FnOnce(std::io::Error) -> Error + use<> {
        Error::io(step, self.path.to_path_buf())
    }

    /// Makes the entry; false for one not made (a device node, an unknown kind).
    fn make<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        root: BorrowedFd<'_>,
        dest: &Path,
    ) -> Result<bool> {
        let header = entry.header();
        let mode = Mode::from_bits_truncate(header.mode().unwrap_or(0o644) & 0o7777);
        let owner = self.owner(header);
        let is_dir = kind == EntryType::Directory;
        if !self.clear(is_dir)? {
            // An existing directory stays, its mode and owner as the archive says.
            let fd = open_at(
                self.dir.as_fd(),
                &self.name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            )
            .map_err(|e| self.io("open")(e.into()))?;
            return self.finish(&fd, mode, owner).map(|()| true);
        }
        let dir = self.dir.as_fd();
        match kind {
            EntryType::Directory => {
                nix::sys::stat::mkdirat(dir, &self.name, Mode::from_bits_truncate(0o700))
                    .map_err(|e| self.io("make the directory")(e.into()))?;
                let fd = open_at(dir, &self.name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                    .map_err(|e| self.io("open")(e.into()))?;
                self.finish(&fd, mode, owner)?;
            }
            EntryType::Regular | EntryType::Continuous => {
                let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
                let fd = nix::fcntl::openat(
                    dir,
                    &self.name,
                    flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| self.io("create")(e.into()))?;
                let mut file = File::from(fd);
                std::io::copy(entry, &mut file).map_err(self.io("write"))?;
                self.finish(&file.into(), mode, owner)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(self.io("read the link of"))?
                    .unwrap_or_default();
                nix::unistd::symlinkat(target.as_ref(), dir, &self.name)
                    .map_err(|e| self.io("make the link")(e.into()))?;
                if self.chowns() {
                    self.chown_link(owner)?;
                }
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(self.io("read the link of"))?
                    .unwrap_or_default();
                let target = dest.join(confined(&target)?.unwrap_or_default());
                let (tdir, tname) = super::open_parent(root, &target)?;
                nix::unistd::linkat(
                    tdir.as_fd(),
                    &tname,
                    dir,
                    &self.name,
                    nix::fcntl::AtFlags::empty(),
                )
                .map_err(|e| self.io("make the hard link")(e.into()))?;
            }
            EntryType::Fifo => {
                nix::sys::stat::mknodat(dir, &self.name, SFlag::S_IFIFO, mode, 0)
                    .map_err(|e| self.io("make the fifo")(e.into()))?;
                if self.chowns() {
                    self.chown_link(owner)?;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Makes room for the entry: false when an existing directory stays (a directory entry
    /// over one); anything else in the way goes, unless the options forbid a directory and a
    /// non-directory to replace each other.
    fn clear(&self, is_dir: bool) -> Result<bool> {
        let st = match lstat_at(self.dir.as_fd(), &self.name) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(true),
            Err(e) => return Err(self.io("stat")(e.into())),
        };
        let was_dir = kind(&st) == SFlag::S_IFDIR;
        if was_dir && is_dir {
            return Ok(false);
        }
        if self.options.no_overwrite_dir_non_dir && was_dir != is_dir {
            let (old, new) = if was_dir {
                ("directory", "non-directory")
            } else {
                ("non-directory", "directory")
            };
            return Err(Error::Invalid(format!(
                "cannot overwrite {old} {} with {new}",
                self.path.display()
            )));
        }
        remove_all(self.dir.as_fd(), &self.name, was_dir)
            .map_err(|e| self.io("replace")(e.into()))?;
        Ok(true)
    }

    /// The mode (whatever the umask took) and, as asked, the owner of what was made.
    fn finish(&self, fd: &OwnedFd, mode: Mode, (uid, gid): (u64, u64)) -> Result<()> {
        if self.chowns() {
            let (uid, gid) = (u32::try_from(uid), u32::try_from(gid));
            if let (Ok(uid), Ok(gid)) = (uid, gid) {
                nix::unistd::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
                    .map_err(|e| self.io("chown")(e.into()))?;
            }
        }
        // After the chown, which clears the set-id bits.
        nix::sys::stat::fchmod(fd, mode).map_err(|e| self.io("chmod")(e.into()))
    }

    /// Whether what is made gets an owner other than the extractor (the host's root).
    fn chowns(&self) -> bool {
        self.options.copy_uid_gid || self.options.userns.is_some()
    }

    /// The owner of what is made: the archive's (`copy_uid_gid`) or root, as the host stores
    /// it for the container (an id its range lacks is nobody's).
    fn owner(&self, header: &tar::Header) -> (u64, u64) {
        let (uid, gid) = match self.options.copy_uid_gid {
            true => (header.uid().unwrap_or(0), header.gid().unwrap_or(0)),
            false => (0, 0),
        };
        let Some(map) = self.options.userns else {
            return (uid, gid);
        };
        let host = |id: u64| {
            let id = u32::try_from(id).ok().and_then(|id| map.host(id));
            u64::from(id.unwrap_or(65_534))
        };
        (host(uid), host(gid))
    }

    /// The owner of a link or fifo, the name itself (never what a link leads to).
    fn chown_link(&self, (uid, gid): (u64, u64)) -> Result<()> {
        let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
            return Ok(());
        };
        nix::unistd::fchownat(
            self.dir.as_fd(),
            &self.name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io("chown")(e.into()))
    }
}

/// Removes `name` from `dir`, a directory with everything in it, never following a link.
fn remove_all(dir: BorrowedFd<'_>, name: &Path, is_dir: bool) -> nix::Result<()> {
    use nix::unistd::UnlinkatFlags;
    if !is_dir {
        return nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
    }
    let fd = open_at(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    for child in names(fd.as_fd())? {
        let st = lstat_at(fd.as_fd(), &child)?;
        remove_all(fd.as_fd(), &child, kind(&st) == SFlag::S_IFDIR)?;
    }
    nix::unistd::unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// The entry's time as the archive gives it (best effort: a time is not worth failing a copy).
fn set_mtime(root: BorrowedFd<'_>, path: &Path, mtime: u64) {
    let Ok((dir, name)) = super::open_parent(root, path) else {
        return;
    };
    let t = TimeSpec::new(i64::try_from(mtime).unwrap_or(0), 0);
    let _ = nix::sys::stat::utimensat(
        dir.as_fd(),
        &name,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_below_the_destination() {
        let ok = |n: &str| confined(Path::new(n)).unwrap();
        assert_eq!(ok("a/b"), Some(PathBuf::from("a/b")));
        assert_eq!(ok("/etc/passwd"), Some(PathBuf::from("etc/passwd")));
        assert_eq!(ok("./x"), Some(PathBuf::from("x")));
        assert_eq!(ok("."), Some(PathBuf::new()));
        assert!(confined(Path::new("a/../../x")).is_err());
        assert!(confined(Path::new("../x")).is_err());
    }

    fn dir_fd(path: &Path) -> File {
        super::super::open_host_dir(path).unwrap()
    }

    /// A tar stream of the given entries: (name, kind, link target or contents).
    fn archive(entries: &[(&str, EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            match kind {
                EntryType::Symlink | EntryType::Link => {
                    h.set_size(0);
                    // Raw names: the builder's checks would refuse `..`.
                    h.set_link_name_literal(data).unwrap();
                    h.set_path(name).unwrap_or_else(|_| {
                        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes())
                    });
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                _ => {
                    h.set_size(data.len() as u64);
                    if h.set_path(name).is_err() {
                        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    }
                    h.set_cksum();
                    b.append(&h, data.as_bytes()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_tree_round_trips() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("d/sub")).unwrap();
        std::fs::write(src.path().join("d/sub/f"), "inside").unwrap();
        std::fs::hard_link(src.path().join("d/sub/f"), src.path().join("d/hard")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("d/link")).unwrap();
        let mut tar = Vec::new();
        let root = dir_fd(src.path());
        super::super::pack(root.as_fd(), Path::new("/d"), Path::new("copy"), &mut tar).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let opts = ExtractOptions::default();
        unpack(dir_fd(dst.path()).as_fd(), Path::new("/"), &tar[..], &opts).unwrap();
        let out = dst.path().join("copy");
        assert_eq!(
            std::fs::read_to_string(out.join("sub/f")).unwrap(),
            "inside"
        );
        assert_eq!(
            std::fs::read_link(out.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(
            ino(&out.join("hard")),
            ino(&out.join("sub/f")),
            "a hard link still"
        );
        // Again over it: files replaced, directories kept.
        unpack(dir_fd(dst.path()).as_fd(), Path::new("/"), &tar[..], &opts).unwrap();
        let strict = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            ..opts
        };
        let file_over_dir = archive(&[("copy/sub", EntryType::Regular, "x")]);
        let e = unpack(
            dir_fd(dst.path()).as_fd(),
            Path::new("/"),
            &file_over_dir[..],
            &strict,
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("cannot overwrite directory"));
    }

    #[test]
    fn nothing_lands_outside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let out = outside
            .path()
            .to_str()
            .unwrap()
            .trim_start_matches('/')
            .to_string();
        std::os::unix::fs::symlink("/", root.path().join("esc")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.path().join("up")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("abs")).unwrap();
        let fd = dir_fd(root.path());
        let opts = ExtractOptions::default();
        let put = |entries: &[(&str, EntryType, &str)]| {
            unpack(fd.as_fd(), Path::new("/"), &archive(entries)[..], &opts)
        };
        // Through links already in the root, and through one the archive makes first.
        let via_esc = format!("esc/{out}/a");
        let via_up = format!("up/{out}/b");
        put(&[
            (&via_esc, EntryType::Regular, "1"),
            (&via_up, EntryType::Regular, "2"),
        ])
        .unwrap();
        put(&[("abs/c", EntryType::Regular, "3")]).unwrap();
        put(&[
            ("made", EntryType::Symlink, outside.path().to_str().unwrap()),
            ("made/d", EntryType::Regular, "4"),
        ])
        .unwrap();
        for name in ["a", "b", "c", "d"] {
            assert!(
                !outside.path().join(name).exists(),
                "{name} escaped the root"
            );
            assert!(root.path().join(&out).join(name).exists(), "{name} inside");
        }
        // `..` in a name or a hard link's target: refused.
        assert!(put(&[("x/../../e", EntryType::Regular, "5")]).is_err());
        let target = format!("../../{out}/a");
        assert!(put(&[("h", EntryType::Link, &target)]).is_err());
        // A hard link to an absolute path is to the root's file, never the host's.
        let hosts = format!("/{out}/a");
        put(&[("h2", EntryType::Link, &hosts)]).unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(
            ino(&root.path().join("h2")),
            ino(&root.path().join(&out).join("a"))
        );
    }
}
