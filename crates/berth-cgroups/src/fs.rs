//! Reading and writing cgroupfs control files, with errors naming the file and the value.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use crate::error::{CgroupError, Result};
use crate::Created;

/// Writes `value` to the existing control file `dir/file` in a single write(2), as cgroupfs
/// needs. The file is never created: a missing file means the controller is not there.
pub(crate) fn write(dir: &Path, file: &str, value: impl Into<String>) -> Result<()> {
    write_each(dir, file, &[value.into()])
}

/// Writes each of `values` to the existing control file `dir/file`, one write(2) each (a
/// cgroupfs file takes one value a write), through one open: device rules come a dozen at a
/// time. Stops at the first refused.
pub(crate) fn write_each(dir: &Path, file: &str, values: &[String]) -> Result<()> {
    let Some(first) = values.first() else {
        return Ok(());
    };
    let f = open_write(dir, file, first)?;
    for value in values {
        write_to(&f, dir, file, value)?;
    }
    Ok(())
}

/// Opens the existing control file `dir/file` for writing `value` (named in the error).
pub(crate) fn open_write(dir: &Path, file: &str, value: &str) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.join(file))
        .map_err(|e| write_error(dir, file, value, e))
}

/// Writes `value` to `f`, the control file `dir/file` opened by [`open_write`], in one write(2).
pub(crate) fn write_to(mut f: &File, dir: &Path, file: &str, value: &str) -> Result<()> {
    f.write_all(value.as_bytes())
        .map_err(|e| write_error(dir, file, value, e))
}

fn write_error(dir: &Path, file: &str, value: &str, err: io::Error) -> CgroupError {
    let path = dir.join(file);
    let value = value.to_owned();
    match err.kind() {
        io::ErrorKind::NotFound => CgroupError::MissingFile { path, value },
        _ => CgroupError::Write {
            path,
            value,
            source: err,
        },
    }
}

pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    berth_sys::file::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Reads a file that may legitimately be absent (a controller or kernel feature not present).
pub(crate) fn read_optional(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match berth_sys::file::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

fn parse_error(dir: &Path, file: &str, content: &str) -> CgroupError {
    CgroupError::Parse {
        path: dir.join(file),
        content: content.to_owned(),
    }
}

/// Parses a single number; "max" (v2's "no limit") reads as `u64::MAX`.
pub(crate) fn parse_u64(dir: &Path, file: &str, content: &str) -> Result<u64> {
    let s = content.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse().map_err(|_| parse_error(dir, file, content))
}

/// Reads a single-number file, `None` when it does not exist.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<Option<u64>> {
    read_optional(dir, file)?
        .map(|s| parse_u64(dir, file, &s))
        .transpose()
}

/// Reads a flat keyed file (`key value` per line: cpu.stat, memory.stat, cgroup.events).
pub(crate) fn read_keyed(dir: &Path, file: &str) -> Result<Option<BTreeMap<String, u64>>> {
    let Some(content) = read_optional(dir, file)? else {
        return Ok(None);
    };
    let mut map = BTreeMap::new();
    for line in content.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(parse_error(dir, file, line));
        };
        let value = parse_u64(dir, file, value)?;
        map.insert(key.to_owned(), value);
    }
    Ok(Some(map))
}

/// Reads a whitespace-separated list of numbers (cgroup.procs, cpuacct.usage_percpu).
pub(crate) fn read_numbers<T: std::str::FromStr>(dir: &Path, file: &str) -> Result<Vec<T>> {
    let content = read(dir, file)?;
    content
        .split_whitespace()
        .map(|s| s.parse().map_err(|_| parse_error(dir, file, s)))
        .collect()
}

/// Removes a cgroup and every cgroup below it, deepest first. Directories in cgroupfs are
/// cgroups and the control files go with them, so rmdir is the whole job; a cgroup that is
/// already gone is fine. EBUSY is retried briefly because exiting tasks leave it late.
pub(crate) fn remove_tree(dir: &Path, errors: &mut Vec<CgroupError>) {
    // The common case, a cgroup without children whose tasks are gone, takes one rmdir;
    // only a failure lists the directory for child cgroups (and retries a busy one).
    match fs::remove_dir(dir) {
        Ok(()) => return,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return,
        Err(_) => {}
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return,
        Err(source) => {
            errors.push(CgroupError::Read {
                path: dir.to_owned(),
                source,
            });
            return;
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path(), errors);
        }
    }
    if let Err(source) = rmdir_retrying(dir) {
        errors.push(CgroupError::Remove {
            path: dir.to_owned(),
            source,
        });
    }
}

/// One rmdir of a cgroup: true when it is gone (or was), false when the kernel refuses it as
/// busy (processes in it, or cgroups below it).
pub(crate) fn remove_if_empty(dir: &Path) -> Result<bool> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(err)
            if matches!(
                err.raw_os_error(),
                Some(nix::libc::EBUSY | nix::libc::ENOTEMPTY)
            ) =>
        {
            Ok(false)
        }
        Err(source) => Err(CgroupError::Remove {
            path: dir.to_owned(),
            source,
        }),
    }
}

fn rmdir_retrying(dir: &Path) -> io::Result<()> {
    let mut delay = Duration::from_millis(5);
    for _ in 0..8 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(nix::libc::EBUSY) => {
                sleep(delay);
                delay *= 2;
            }
            Err(err) => return Err(err),
        }
    }
    match fs::remove_dir(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// `dir` and its ancestors below `root`, outermost first: the cgroups `create` may make.
pub(crate) fn levels(root: &Path, relative: &Path) -> Vec<PathBuf> {
    let mut dir = root.to_owned();
    relative
        .components()
        .map(|c| {
            dir.push(c);
            dir.clone()
        })
        .collect()
}

/// Makes the cgroup directory `dir`, and its parents if they are missing: whether `dir` itself
/// is new or was there.
pub(crate) fn make_dir(dir: &Path) -> Result<Created> {
    let error = |source| CgroupError::Create {
        path: dir.to_owned(),
        source,
    };
    match fs::create_dir(dir) {
        Ok(()) => Ok(Created::New),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(Created::Existing),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent).map_err(error)?;
            }
            match fs::create_dir(dir) {
                Ok(()) => Ok(Created::New),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(Created::Existing),
                Err(err) => Err(error(err)),
            }
        }
        Err(err) => Err(error(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_never_creates_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let err = write(tmp.path(), "memory.max", "max").unwrap_err();
        assert!(matches!(err, CgroupError::MissingFile { .. }));
        assert!(!tmp.path().join("memory.max").exists());
        assert!(err.to_string().starts_with("write \"max\" to "), "{err}");
    }

    #[test]
    fn write_replaces_the_content() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("pids.max"), "max\n").unwrap();
        write(tmp.path(), "pids.max", "10").unwrap();
        assert_eq!(read(tmp.path(), "pids.max").unwrap(), "10");
    }

    #[test]
    fn keyed_files_parse_and_report_garbage() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("cpu.stat"), "usage_usec 10\nnr_periods 2\n").unwrap();
        let map = read_keyed(tmp.path(), "cpu.stat").unwrap().unwrap();
        assert_eq!(map["usage_usec"], 10);
        assert_eq!(read_keyed(tmp.path(), "absent").unwrap(), None);
        fs::write(tmp.path().join("bad"), "usage_usec ten\n").unwrap();
        let err = read_keyed(tmp.path(), "bad").unwrap_err();
        assert!(err.to_string().contains("bad"), "{err}");
    }

    #[test]
    fn max_reads_as_unlimited() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(read_u64(tmp.path(), "memory.max").unwrap(), Some(u64::MAX));
    }

    #[test]
    fn levels_lists_each_ancestor() {
        let levels = levels(Path::new("/r"), Path::new("a/b"));
        assert_eq!(levels, [PathBuf::from("/r/a"), PathBuf::from("/r/a/b")]);
    }
}
