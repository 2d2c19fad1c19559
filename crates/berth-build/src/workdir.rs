//! A build's private directory under `<root>/build/tmp`: its steps' overlays and COPY --from
//! views. It is locked for the build's life; a build killed before it could clean up (SIGKILL,
//! a crash) leaves it unlocked, and the next build removes what it left: its step containers
//! (named after the directory), its mounts, its files.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::mount::MntFlags;

use crate::error::{Error, Result};

pub struct WorkDir {
    dir: tempfile::TempDir,
    _lock: File,
}

impl WorkDir {
    /// Sweeps what killed builds left in `work`, then makes and locks a directory of our own.
    pub fn create(engine: &berth_engine::Engine, work: &Path) -> Result<WorkDir> {
        std::fs::create_dir_all(work).map_err(Error::io("create", work))?;
        sweep(engine, work);
        let dir = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(work)
            .map_err(Error::io("create a directory in", work))?;
        let path = dir.path().join("lock");
        let lock = File::create(&path).map_err(Error::io("create", &path))?;
        lock.lock().map_err(Error::io("lock", &path))?;
        Ok(WorkDir { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The prefix of the ids of this build's step containers.
    pub fn name(&self) -> String {
        self.dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Removes what builds that are gone left: their directories (whose lock is free), their
/// mounts, and their step containers, with or without a directory left. Best effort: what
/// cannot be removed now is tried again by the next build.
fn sweep(engine: &berth_engine::Engine, work: &Path) {
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(work).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // No lock file yet: a build that has only just made its directory.
        let free = File::open(entry.path().join("lock")).is_ok_and(|f| f.try_lock().is_ok());
        // A context unpacked for a build (`context-`, locked alike) goes with it.
        if (name.starts_with("build-") || name.starts_with("context-")) && free {
            stale.push(name);
        }
    }
    // A build makes its directory before its first container, so a container whose directory
    // is missing is left from a build that is gone. Every container directory is looked at,
    // those without a state.json (which the runtime's `ids` skips) too.
    let runtime = std::fs::read_dir(engine.runtime.dir(""))
        .into_iter()
        .flatten()
        .flatten();
    for id in runtime.map(|e| e.file_name().to_string_lossy().into_owned()) {
        let Some((dir, _)) = id.rsplit_once('-') else {
            continue;
        };
        let gone = !work.join(dir).exists() || stale.iter().any(|s| s == dir);
        if dir.starts_with("build-") && gone {
            // Its network first, while its cgroups still tell it alive to other roots' sweeps
            // (`release_dead_steps`): its lease, veth and rules.
            let _ = berth_engine::network::detach(engine, &id, None);
            // Killed half-way through create, a container has no state.json to delete it
            // by: its cgroups and state directory go on their own.
            let _ = berth_runtime::container::delete(&engine.runtime, &id, true);
            remove_cgroups(&id);
            if engine.runtime.dir(&id).exists() {
                let _ = engine.runtime.remove_dir(&id);
            }
        }
    }
    release_dead_steps(engine);
    for name in stale {
        let dir = work.join(name);
        for mount in mounts_under(&dir) {
            let _ = nix::mount::umount2(&mount, MntFlags::MNT_DETACH);
        }
        if mounts_under(&dir).is_empty() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Frees the default network's leases (address, veth) of build steps that no longer run,
/// whichever data root they ran from: the network is the machine's, and a root whose killed
/// build is never followed by another (a temporary one) would hold its step's address for good.
/// A step's cgroups are made before its lease and removed after it is released, so a step
/// whose cgroups are gone holds its lease only by a build that was killed.
fn release_dead_steps(engine: &berth_engine::Engine) {
    // Rootless, a step's default network is a slirp4netns of its own: no lease.
    if berth_sys::rootless::is_rootless() {
        return;
    }
    let Ok(store) = berth_engine::network::store(engine) else {
        return;
    };
    // Not made yet: nothing leased.
    let Ok(net) = store.network("bridge") else {
        return;
    };
    for id in store.lease_holders(&net).unwrap_or_default() {
        if is_step_id(&id) && berth_engine::leftovers::cgroup_gone(&id) {
            let _ = berth_engine::network::detach(engine, &id, None);
        }
    }
}

/// Whether `id` names a build step's container: `build-<random>-<step>`, as [`WorkDir::name`]
/// and the step's number make it (a container's own id is 64 hex digits).
fn is_step_id(id: &str) -> bool {
    let Some((random, step)) = id
        .strip_prefix("build-")
        .and_then(|rest| rest.rsplit_once('-'))
    else {
        return false;
    };
    let alnum = |s: &str, f: fn(&u8) -> bool| !s.is_empty() && s.as_bytes().iter().all(f);
    alnum(random, u8::is_ascii_alphanumeric) && alnum(step, u8::is_ascii_digit)
}

/// Kills what is left in the step container's cgroups (`berth/<id>` in each hierarchy) and
/// removes them. Not the engine's `leftovers::cgroups`, which takes a cgroup missing from its
/// first hierarchy for one never made: a create killed while it made them leaves some only.
fn remove_cgroups(id: &str) {
    use berth_runtime::cgroup::CgroupManager;
    let relative = PathBuf::from(berth_engine::Engine::cgroups_path(id));
    if let Ok(cg) = berth_runtime::cgroup::open(&relative) {
        let wait = std::time::Duration::from_secs(10);
        let _ = berth_runtime::cgroup::kill_and_wait_empty(&cg, &relative, wait);
        let _ = cg.destroy();
    }
}

/// Mount points at or below `dir`, deepest first (/proc/self/mountinfo, octal escapes read).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            if let Ok(n) = u8::from_str_radix(&code, 8) {
                out.push(char::from(n));
                continue;
            }
            out.push(c);
            out.push_str(&code);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids() {
        assert!(is_step_id("build-DBZXXP-2"));
        assert!(is_step_id("build-72YkNH-12"));
        for not in [
            "build-DBZXXP",
            "build--2",
            "build-a-",
            "build-a b-2",
            "build-a-2x",
        ] {
            assert!(!is_step_id(not), "{not}");
        }
        assert!(!is_step_id(&"ab".repeat(32)));
    }

    #[test]
    fn mountinfo_escapes_are_read() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
    }
}
