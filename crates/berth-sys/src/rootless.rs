//! Rootless berth: whether this process is berth run by an ordinary user (before it joins its
//! user namespace, or as that namespace's root, which is the user outside), and where such a
//! berth keeps its runtime state and data (podman's XDG layout). Safe code: no syscall of its own.

use std::path::PathBuf;

/// The user this process acts for on the host: its effective uid when that is not root, else
/// the host id its root maps to (`/proc/self/uid_map`); 0 for the host's root.
pub fn host_uid() -> u32 {
    static UID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    // The same before and after joining the user namespace: euid outside, root's map inside.
    *UID.get_or_init(read_host_uid)
}

fn read_host_uid() -> u32 {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return euid;
    }
    crate::file::read_to_string("/proc/self/uid_map")
        .ok()
        .and_then(|map| outside_of_root(&map))
        .unwrap_or(0)
}

/// The outside id of inside id 0 in a uid_map's text.
fn outside_of_root(map: &str) -> Option<u32> {
    map.lines().find_map(|line| {
        let mut f = line.split_whitespace().map(|n| n.parse::<u32>().ok());
        match (f.next()??, f.next()??) {
            (0, outside) => Some(outside),
            _ => None,
        }
    })
}

/// True for berth run by an ordinary user, before or after it joins its user namespace.
pub fn is_rootless() -> bool {
    host_uid() != 0
}

/// The prefix of overlayfs' own xattrs (whiteouts, opaque directories) as berth writes and
/// reads them: `trusted.overlay.` for root; `user.overlay.` in a rootless user namespace, where
/// the kernel refuses `trusted.*` and overlay is mounted with `userxattr`.
pub fn overlay_xattr_prefix() -> &'static str {
    if is_rootless() {
        "user.overlay."
    } else {
        "trusted.overlay."
    }
}

/// `name` (e.g. `opaque`) under [`overlay_xattr_prefix`].
pub fn overlay_xattr(name: &str) -> String {
    format!("{}{name}", overlay_xattr_prefix())
}

/// Where berth keeps what lives only while the machine runs (runtime state, sockets, the pause
/// process's pid): `/run/berth` for root; for a user `$XDG_RUNTIME_DIR/berth`, or
/// `/tmp/berth-run-<uid>` (private to the user) when that is unset, as podman does.
pub fn run_dir() -> PathBuf {
    let uid = host_uid();
    if uid == 0 {
        return PathBuf::from("/run/berth");
    }
    user_run_dir(uid, std::env::var_os("XDG_RUNTIME_DIR"))
}

fn user_run_dir(uid: u32, xdg: Option<std::ffi::OsString>) -> PathBuf {
    match xdg.filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("berth"),
        None => PathBuf::from(format!("/tmp/berth-run-{uid}")),
    }
}

/// A user's data root: `$XDG_DATA_HOME/berth`, else `~/.local/share/berth`; `None` without
/// either variable.
pub fn user_data_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty());
    xdg.map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("berth"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_maps_to_the_user_in_a_rootless_namespace() {
        assert_eq!(
            outside_of_root("         0       1000          1\n         1     100000      65536\n"),
            Some(1000)
        );
        assert_eq!(
            outside_of_root("         0          0 4294967295\n"),
            Some(0)
        );
        assert_eq!(outside_of_root("         1     100000      65536\n"), None);
        assert_eq!(outside_of_root(""), None);
    }

    #[test]
    fn the_runtime_dir_follows_xdg_or_is_private_under_tmp() {
        assert_eq!(
            user_run_dir(1000, Some("/run/user/1000".into())),
            PathBuf::from("/run/user/1000/berth")
        );
        assert_eq!(
            user_run_dir(1000, Some("".into())),
            PathBuf::from("/tmp/berth-run-1000")
        );
        assert_eq!(
            user_run_dir(1000, None),
            PathBuf::from("/tmp/berth-run-1000")
        );
    }
}
