//! The local driver's options (`volume create -o type=tmpfs -o device=tmpfs -o o=size=1m`):
//! checked at create as dockerd checks them, and mounted on the volume's `_data` while
//! containers use it, as dockerd's local driver does: mount(2) with them when the first
//! container using the volume starts, unmounted when the last one stops. Who uses it is kept
//! by container id in `<volume>/users.json`, under the volume's lock (the one copy-up takes),
//! so that every teardown, a dead monitor's cleanup included, can release its own use again.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::Record;

/// The options dockerd's local driver takes on Linux.
const VALID: &[&str] = &["type", "o", "device", "size"];
/// An option given needs these too (dockerd's `mandatoryOpts`).
const NEEDS: &[(&str, &[&str])] = &[
    ("device", &["type"]),
    ("type", &["device"]),
    ("o", &["device", "type"]),
];

/// dockerd's `validateOpts`, in its words (`create NAME: ...`, as its volume service says).
pub fn check(name: &str, opts: &BTreeMap<String, String>) -> Result<()> {
    let fail = |why: String| Error::Invalid(format!("create {name}: {why}"));
    if let Some(bad) = opts.keys().find(|k| !VALID.contains(&k.as_str())) {
        return Err(fail(format!("invalid option: {bad:?}")));
    }
    if let Some(size) = opts.get("size") {
        let bytes = crate::monitor::logfile::parse_size(size)
            .ok_or_else(|| fail(format!("invalid size: '{size}'")))?;
        if bytes > 0 {
            return Err(fail("quota size requested but no quota support".into()));
        }
    }
    for (opt, needs) in NEEDS {
        if opts.contains_key(*opt) {
            if let Some(missing) = needs.iter().find(|n| !opts.contains_key(**n)) {
                return Err(fail(format!("missing required option: {missing:?}")));
            }
        }
    }
    Ok(())
}

/// Whether the options make a mount (a type or a device; `size` alone does not).
pub fn mounts(opts: &BTreeMap<String, String>) -> bool {
    ["type", "device"]
        .iter()
        .any(|k| opts.get(*k).is_some_and(|v| !v.is_empty()))
}

fn users_path(dir: &Path) -> PathBuf {
    dir.join("users.json")
}

fn users(dir: &Path) -> Vec<String> {
    fs::read(users_path(dir))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default()
}

/// Held while a volume's users and mount change (the same lock as copy-up's).
fn lock(dir: &Path) -> Result<fs::File> {
    let file = fs::File::open(dir).map_err(Error::io("open volume", dir))?;
    file.lock().map_err(Error::io("lock volume", dir))?;
    Ok(file)
}

/// Container `id` starts with the volume `name`: its options mounted on `_data` unless they
/// are already, and `id` counted among its users.
pub fn acquire(engine: &Engine, name: &str, id: &str) -> Result<()> {
    let volume = super::inspect(engine, name)?;
    if !mounts(&volume.options) {
        return Ok(());
    }
    let dir = engine.volumes_dir().join(name);
    let _lock = lock(&dir)?;
    let mut users = users(&dir);
    if !crate::leftovers::is_mount_point(&volume.mountpoint) {
        mount(&volume.options, &volume.mountpoint)?;
    }
    if !users.iter().any(|u| u == id) {
        users.push(id.to_string());
    }
    let text = serde_json::to_vec(&users)
        .map_err(|e| Error::Invalid(format!("serialise volume users: {e}")))?;
    crate::records::write_atomic(&users_path(&dir), &text)
}

/// Container `id` no longer uses the volumes it mounts (its record's; every volume's users
/// are looked through without one): each one's mount goes with its last user. Idempotent;
/// every error is returned.
pub fn release_all(engine: &Engine, id: &str, record: Option<&Record>) -> Vec<String> {
    let names: Vec<String> = match record {
        Some(r) => r
            .request
            .mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .map(|m| m.source.clone())
            .collect(),
        None => fs::read_dir(engine.volumes_dir())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
    };
    let mut errors = Vec::new();
    for name in names {
        let dir = engine.volumes_dir().join(&name);
        if !users_path(&dir).exists() {
            continue;
        }
        if let Err(e) = release(&dir, id) {
            errors.push(e.to_string());
        }
    }
    errors
}

/// The name a copy into a stopped container holds its volumes by: the container's id and the
/// pid of the process that mounts them (`rootfs::serve`).
pub fn copy_holder(id: &str, pid: u32) -> String {
    format!("{id}{COPY}{pid}")
}

const COPY: &str = ".cp-";

/// A copy's name whose process is gone (killed before it released): dropped at any release.
fn gone_copy(user: &str) -> bool {
    let Some((_, pid)) = user.rsplit_once(COPY) else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    pid > 0
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH)
}

/// `id` no longer uses the volume whose directory is `dir` (a copy's holder, its copy over).
pub fn release_dir(dir: &Path, id: &str) -> Result<()> {
    if !users_path(dir).exists() {
        return Ok(());
    }
    release(dir, id)
}

fn release(dir: &Path, id: &str) -> Result<()> {
    let _lock = lock(dir)?;
    let mut users = users(dir);
    let before = users.len();
    users.retain(|u| u != id && !gone_copy(u));
    if users.is_empty() {
        unmount(&dir.join("_data"))?;
        return fs::remove_file(users_path(dir)).map_err(Error::io("remove", users_path(dir)));
    }
    if users.len() != before {
        let text = serde_json::to_vec(&users)
            .map_err(|e| Error::Invalid(format!("serialise volume users: {e}")))?;
        crate::records::write_atomic(&users_path(dir), &text)?;
    }
    Ok(())
}

/// Unmounts the volume's `_data` if something is mounted there, and makes sure nothing is:
/// before a volume's files are removed, a bind volume's host directory must be out of reach.
pub(crate) fn unmount(data: &Path) -> Result<()> {
    if !crate::leftovers::is_mount_point(data) {
        return Ok(());
    }
    nix::mount::umount2(data, MntFlags::MNT_DETACH)
        .map_err(|e| Error::io("unmount the volume", data)(e.into()))?;
    if crate::leftovers::is_mount_point(data) {
        return Err(Error::Invalid(format!(
            "unmount the volume {}: something is still mounted there",
            data.display()
        )));
    }
    Ok(())
}

/// mount(8)'s flag words of `o=` (moby/sys/mount's table); set or cleared.
const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("suid", true, MsFlags::MS_NOSUID),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("dev", true, MsFlags::MS_NODEV),
    ("nodev", false, MsFlags::MS_NODEV),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("atime", true, MsFlags::MS_NOATIME),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("unbindable", false, MsFlags::MS_UNBINDABLE),
    (
        "runbindable",
        false,
        MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC),
    ),
    ("private", false, MsFlags::MS_PRIVATE),
    (
        "rprivate",
        false,
        MsFlags::MS_PRIVATE.union(MsFlags::MS_REC),
    ),
    ("shared", false, MsFlags::MS_SHARED),
    ("rshared", false, MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", false, MsFlags::MS_SLAVE),
    ("rslave", false, MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
];

/// `o=` as flags and the data the filesystem reads (`size=1m,uid=1000`).
fn parse(options: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options
        .split(',')
        .filter(|o| !o.is_empty() && *o != "defaults")
    {
        match FLAGS.iter().find(|(word, ..)| word == &o) {
            Some((_, true, f)) => flags.remove(*f),
            Some((_, false, f)) => flags.insert(*f),
            None => data.push(o),
        }
    }
    (flags, data.join(","))
}

/// moby/sys/mount's `Mount`: the mount with every flag but propagation (none at all for what
/// it takes for a remount, `remount` in `o=` or a device "" or "none", unless `o=` has data),
/// then the propagation, then a read-only bind remounted read-only (a bind ignores MS_RDONLY).
fn mount(opts: &BTreeMap<String, String>, data_dir: &Path) -> Result<()> {
    let get = |k: &str| opts.get(k).map(String::as_str).unwrap_or("");
    let device = get("device");
    let (flags, data) = parse(get("o"));
    let propagation =
        MsFlags::MS_SHARED | MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE | MsFlags::MS_UNBINDABLE;
    let plain = flags - propagation;
    let fail = |flags: MsFlags, data: &str, e: nix::errno::Errno| {
        let mut detail = format!("mount {device}:{}", data_dir.display());
        if !flags.is_empty() {
            detail.push_str(&format!(", flags: {:#x}", flags.bits()));
        }
        if !data.is_empty() {
            detail.push_str(&format!(", data: {data}"));
        }
        Error::VolumeMount {
            path: data_dir.to_path_buf(),
            detail: format!("{detail}: {}", go_errno(e)),
        }
    };
    let fstype = Some(get("type")).filter(|t| !t.is_empty());
    let data_arg = Some(data.as_str()).filter(|d| !d.is_empty());
    let remount = flags.contains(MsFlags::MS_REMOUNT) || device.is_empty() || device == "none";
    if !remount || !data.is_empty() {
        nix::mount::mount(Some(device), data_dir, fstype, plain, data_arg)
            .map_err(|e| fail(plain, &data, e))?;
    }
    let undo = |e: Error| {
        let _ = nix::mount::umount2(data_dir, MntFlags::MNT_DETACH);
        e
    };
    if flags.intersects(propagation) {
        let how = flags & (propagation | MsFlags::MS_REC);
        nix::mount::mount(None::<&str>, data_dir, None::<&str>, how, None::<&str>)
            .map_err(|e| undo(fail(how, "", e)))?;
    }
    if plain.contains(MsFlags::MS_BIND | MsFlags::MS_RDONLY) {
        let again = plain | MsFlags::MS_REMOUNT;
        nix::mount::mount(None::<&str>, data_dir, None::<&str>, again, None::<&str>)
            .map_err(|e| undo(fail(again, "", e)))?;
    }
    Ok(())
}

/// An errno as Go prints it (`no such file or directory`), the words Docker's message has.
fn go_errno(e: nix::errno::Errno) -> String {
    let text = e.desc();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn check_refuses_in_dockerds_words() {
        let tmpfs = opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]);
        check("v", &tmpfs).unwrap();
        check("v", &BTreeMap::new()).unwrap();
        let e = |o| check("v", &o).unwrap_err().to_string();
        assert_eq!(
            e(opts(&[("foo", "1")])),
            "create v: invalid option: \"foo\""
        );
        assert_eq!(
            e(opts(&[("type", "tmpfs")])),
            "create v: missing required option: \"device\""
        );
        assert_eq!(
            e(opts(&[("o", "bind"), ("device", "/x")])),
            "create v: missing required option: \"type\""
        );
        assert!(e(opts(&[("size", "1m")])).contains("no quota support"));
        assert!(mounts(&tmpfs) && !mounts(&BTreeMap::new()));
    }

    #[test]
    fn o_splits_into_flags_and_data() {
        let (flags, data) = parse("size=1m,ro,uid=1000,noexec,defaults");
        assert_eq!(flags, MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC);
        assert_eq!(data, "size=1m,uid=1000");
        let (flags, data) = parse("bind,rw");
        assert_eq!((flags, data.as_str()), (MsFlags::MS_BIND, ""));
        assert_eq!(
            go_errno(nix::errno::Errno::ENOENT),
            "no such file or directory"
        );
    }
}
