//! The build context: a directory (read in place, no copy), or a tar (a file or stdin) unpacked
//! into a private directory; `.dockerignore`; the sources a COPY names (wildcards, never a path
//! outside the root, whatever `..` or symlinks say); and their content digest for the cache,
//! with a stat cache so that an unchanged context is not read again.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsops::Root;
use crate::ignore::{glob, has_wildcards, Ignore};

pub struct Context {
    pub root: Root,
    pub ignore: Ignore,
    unpacked: Option<Unpacked>,
}

/// The directory a tar context is unpacked in, `<tmp>/context-XXXX/ctx`, locked (its `lock`
/// file) for the build's life: removed when the build ends, and by the next build's sweep
/// (`workdir`) when a killed one (SIGKILL, the OOM killer) could not.
struct Unpacked {
    _dir: tempfile::TempDir,
    _lock: std::fs::File,
}

impl Unpacked {
    fn create(tmp: &Path) -> Result<(Unpacked, PathBuf)> {
        let dir = tempfile::Builder::new()
            .prefix("context-")
            .tempdir_in(tmp)
            .map_err(Error::io("create a directory in", tmp))?;
        let lock_path = dir.path().join("lock");
        let lock = std::fs::File::create(&lock_path).map_err(Error::io("create", &lock_path))?;
        lock.lock().map_err(Error::io("lock", &lock_path))?;
        let ctx = dir.path().join("ctx");
        std::fs::create_dir(&ctx).map_err(Error::io("create", &ctx))?;
        Ok((
            Unpacked {
                _dir: dir,
                _lock: lock,
            },
            ctx,
        ))
    }
}

/// A source a COPY names: its path in its root (for messages and the ignore file) and on the host.
#[derive(Clone, Debug)]
pub struct Source {
    pub rel: String,
    pub host: PathBuf,
}

impl Context {
    /// A directory context, read in place.
    pub fn dir(path: &Path) -> Result<Context> {
        let real =
            std::fs::canonicalize(path).map_err(Error::io("open the build context", path))?;
        if !real.is_dir() {
            return Err(Error::Invalid(format!(
                "unable to prepare context: path {:?} not found",
                path.display().to_string()
            )));
        }
        let root = Root::open(&real).map_err(Error::io("open the build context", &real))?;
        // As the docker CLI reads a directory's: a link to a file of the user's is followed.
        let text = std::fs::read_to_string(real.join(".dockerignore")).ok();
        Context::with_ignore(root, text.as_deref(), None)
    }

    fn with_ignore(root: Root, text: Option<&str>, unpacked: Option<Unpacked>) -> Result<Context> {
        let ignore = match text {
            Some(text) => {
                Ignore::parse(text).map_err(|e| Error::Invalid(format!(".dockerignore: {e}")))?
            }
            None => Ignore::default(),
        };
        Ok(Context {
            root,
            ignore,
            unpacked,
        })
    }

    /// A context unpacked from a client's tar: its `.dockerignore` read as dockerd reads it,
    /// resolved inside the context (a link to /etc/shadow or /dev/zero finds nothing there).
    fn unpacked(dir: Unpacked, path: &Path) -> Result<Context> {
        let root = Root::open(path).map_err(Error::io("open the build context", path))?;
        let text = match read_in(&root, Path::new(".dockerignore")) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("read the context's", ".dockerignore")(e)),
        };
        Context::with_ignore(root, text.as_deref(), Some(dir))
    }

    /// A tar context (plain or compressed), unpacked below `tmp` as `cp` extracts into a
    /// container: each entry made beneath the directory (`openat2(RESOLVE_IN_ROOT)`, no link
    /// followed out of it, `..` refused, no device nodes), owned by root.
    pub fn tar(reader: impl Read, tmp: &Path) -> Result<Context> {
        let (dir, path) = Unpacked::create(tmp)?;
        let decoder = berth_image::compress::decoder(io::BufReader::new(reader))
            .map_err(Error::io("read the context archive", &path))?;
        let root = berth_engine::copy::open_host_dir(&path)?;
        let options = berth_engine::copy::ExtractOptions::default();
        berth_engine::copy::unpack(root.as_fd(), Path::new("/"), decoder, &options)?;
        Context::unpacked(dir, &path)
    }

    /// No context at all (a Dockerfile on stdin): an empty directory.
    pub fn empty(tmp: &Path) -> Result<Context> {
        let (dir, path) = Unpacked::create(tmp)?;
        Context::unpacked(dir, &path)
    }

    /// Whether the context was unpacked into a directory of its own (a tar, or nothing).
    pub fn is_temporary(&self) -> bool {
        self.unpacked.is_some()
    }

    /// Whether the host path `host` (below the root) is excluded by `.dockerignore`.
    pub fn excluded(&self, host: &Path) -> bool {
        let rel = host.strip_prefix(&self.root.path).unwrap_or(host);
        !self.ignore.is_empty() && self.ignore.excludes(&rel.to_string_lossy())
    }

    /// Whether a walk of a COPY source leaves `host` out: excluded, and not a directory that
    /// an exception (`!pattern`) may take files back from.
    pub fn skips(&self, host: &Path) -> bool {
        if !self.excluded(host) {
            return false;
        }
        let rel = host.strip_prefix(&self.root.path).unwrap_or(host);
        let dir = std::fs::symlink_metadata(host).is_ok_and(|m| m.is_dir());
        !(dir && self.ignore.may_include_below(&rel.to_string_lossy()))
    }
}

/// The text of the regular file `path` resolved inside `root`: links followed only inside it,
/// and a FIFO, device or directory refused rather than read (or waited on) forever.
pub fn read_in(root: &Root, path: &Path) -> io::Result<String> {
    use nix::fcntl::OFlag;
    let fd = root.resolve(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
    let file = std::fs::File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    (&file).read_to_string(&mut text)?;
    Ok(text)
}

/// Whether `head`, a stream's first bytes (1 KiB will do), starts a tar archive: a header
/// saying "ustar" at offset 257, an empty archive's zeros, or a compressed stream's magic.
pub fn is_tar(head: &[u8]) -> bool {
    head.get(257..262) == Some(b"ustar")
        || (head.len() >= 1024 && head[..1024].iter().all(|b| *b == 0))
        || head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

/// The sources `pattern` names in `root` (a path, or wildcards per element), none excluded by
/// `ignore`. A missing or excluded source is an error naming it.
pub fn sources(root: &Root, pattern: &str, ignore: Option<&Ignore>) -> Result<Vec<Source>> {
    let parts: Vec<&str> = pattern
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let mut found = vec![String::new()];
    for (i, part) in parts.iter().enumerate() {
        let mut next = Vec::new();
        for base in &found {
            if !has_wildcards(part) {
                next.push(join(base, part));
                continue;
            }
            let Ok(dir) = root.real_path(Path::new(if base.is_empty() { "." } else { base }))
            else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| glob(part.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            let last = i + 1 == parts.len();
            for n in names {
                let path = join(base, &n);
                if last && ignore.is_some_and(|ig| ig.excludes(&path)) {
                    continue;
                }
                next.push(path);
            }
        }
        found = next;
    }
    let wild = parts.iter().any(|p| has_wildcards(p));
    let mut out = Vec::new();
    for rel in found {
        let excluded = !rel.is_empty() && ignore.is_some_and(|ig| ig.excludes(&rel));
        let host = if excluded {
            None
        } else {
            root.real_path(Path::new(if rel.is_empty() { "." } else { &rel }))
                .ok()
        };
        match host {
            Some(host) => out.push(Source { rel, host }),
            None if wild => {}
            None => return Err(not_found(pattern)),
        }
    }
    if out.is_empty() {
        return Err(not_found(pattern));
    }
    Ok(out)
}

fn not_found(pattern: &str) -> Error {
    Error::Invalid(format!(
        "failed to compute cache key: \"/{}\": not found",
        pattern.trim_start_matches('/')
    ))
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// Content digests of files by what `stat` says of them, kept between builds.
#[derive(Default, Serialize, Deserialize)]
pub struct StatCache {
    files: HashMap<PathBuf, (u64, u64, u64, i64, i64, String)>,
    #[serde(skip)]
    dirty: bool,
}

impl StatCache {
    pub fn load(path: &Path) -> StatCache {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) {
        if self.dirty {
            if let Ok(bytes) = serde_json::to_vec(self) {
                let tmp = path.with_extension("tmp");
                if std::fs::write(&tmp, bytes).is_ok() {
                    let _ = std::fs::rename(&tmp, path);
                }
            }
        }
    }

    /// The SHA-256 of the regular file `path`, read only if its inode, size or times changed.
    fn file_digest(&mut self, path: &Path, meta: &std::fs::Metadata) -> io::Result<String> {
        let stamp = (
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        );
        if let Some(c) = self.files.get(path) {
            if (c.0, c.1, c.2, c.3, c.4) == stamp {
                return Ok(c.5.clone());
            }
        }
        let mut hasher = Sha256::new();
        io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
        let hex = format!("{:x}", hasher.finalize());
        self.files.insert(
            path.to_path_buf(),
            (stamp.0, stamp.1, stamp.2, stamp.3, stamp.4, hex.clone()),
        );
        self.dirty = true;
        Ok(hex)
    }
}

/// Feeds what a COPY of `source` would copy (paths below it, types, modes, owners, sizes,
/// contents, link targets) into `hasher`, skipping what `skip` leaves out.
pub fn digest_tree(
    hasher: &mut Sha256,
    host: &Path,
    stats: &mut StatCache,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    let mut stack = vec![(host.to_path_buf(), PathBuf::from("."))];
    while let Some((path, rel)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(Error::io("read", &path))?;
        hasher.update(
            format!(
                "{}\0{:o}\0{}:{}\0",
                rel.display(),
                meta.mode(),
                meta.uid(),
                meta.gid()
            )
            .as_bytes(),
        );
        if meta.is_file() {
            let d = stats
                .file_digest(&path, &meta)
                .map_err(Error::io("read", &path))?;
            hasher.update(d.as_bytes());
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(Error::io("read", &path))?;
            hasher.update(target.as_os_str().as_encoded_bytes());
        } else if meta.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&path)
                .map_err(Error::io("read", &path))?
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for name in names.into_iter().rev() {
                let child = path.join(&name);
                if !skip(&child) {
                    stack.push((child, rel.join(&name)));
                }
            }
        }
        hasher.update(b"\n");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_stay_inside_and_honour_the_ignore_file() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("a.txt"), "a").unwrap();
        std::fs::write(d.join("b.txt"), "b").unwrap();
        std::fs::write(d.join("sub/c.txt"), "c").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("out")).unwrap();
        let root = Root::open(d).unwrap();
        let ig = Ignore::parse("b.txt").unwrap();
        let found: Vec<String> = sources(&root, "*.txt", Some(&ig))
            .unwrap()
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(found, ["a.txt"]);
        assert!(sources(&root, "b.txt", Some(&ig))
            .unwrap_err()
            .to_string()
            .contains("\"/b.txt\": not found"));
        // The absolute link resolves inside the context, where there is no etc/passwd.
        assert!(sources(&root, "out", None).is_err());
        assert!(sources(&root, "../../../etc/passwd", None).is_err());
        assert_eq!(
            sources(&root, "sub/../a.txt", None).unwrap()[0].host,
            std::fs::canonicalize(d.join("a.txt")).unwrap()
        );
    }
}
