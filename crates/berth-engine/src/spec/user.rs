//! `-u user[:group]` and `--group-add` resolved against the container's own /etc/passwd and
//! /etc/group, read inside its root (runc's `user.GetExecUser` rules, which Docker uses).

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use berth_runtime::rootfs::resolve;
use nix::errno::Errno;
use nix::fcntl::OFlag;

use super::SpecError;

/// The identity the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the user's memberships in /etc/group (only when no group was
    /// named), then `--group-add`, without repeats.
    pub gids: Vec<u32>,
    /// From the passwd entry; "/" when there is none (runc's default).
    pub home: String,
}

/// The largest id runc accepts (its `maxID`): ids are signed 32-bit in many tools.
const MAX_ID: u32 = i32::MAX as u32;
/// passwd and group files larger than this are refused rather than read into memory.
const MAX_FILE: u64 = 4 << 20;

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `spec` ("" for the default, root) and `group_add` inside `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str, group_add: &[String]) -> Result<ResolvedUser, SpecError> {
    let root = File::open(rootfs).map_err(|source| SpecError::OpenRoot {
        path: rootfs.to_path_buf(),
        source,
    })?;
    let passwd = read_in_root(&root, "/etc/passwd")?;
    let group = read_in_root(&root, "/etc/group")?;
    resolve_from(&passwd, &group, spec, group_add)
}

/// The same as [`resolve`] on the files' contents (empty when a file is missing).
pub fn resolve_from(
    passwd: &str,
    group: &str,
    spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser, SpecError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid_arg = parse_id("-u", user_arg)?;
    let users = parse_passwd(passwd);
    let found = users.iter().find(|u| match (user_arg, uid_arg) {
        ("", _) => u.uid == 0,
        (_, Some(uid)) => u.uid == uid,
        (name, None) => u.name == name,
    });
    let mut user = ResolvedUser {
        uid: 0,
        gid: 0,
        gids: Vec::new(),
        home: "/".into(),
    };
    match (found, uid_arg) {
        (Some(u), _) => (user.uid, user.gid, user.home) = (u.uid, u.gid, u.home.clone()),
        (None, Some(uid)) => user.uid = uid,
        (None, None) if user_arg.is_empty() => {}
        (None, None) => {
            return Err(SpecError::UnknownUser {
                name: user_arg.into(),
            })
        }
    }
    let groups = parse_group(group);
    match group_arg.filter(|g| !g.is_empty()) {
        Some(g) => user.gid = lookup_group(&groups, "-u", g)?,
        None => {
            if let Some(u) = found {
                let member = groups.iter().filter(|g| g.members.contains(&u.name));
                user.gids = member.map(|g| g.gid).collect();
            }
        }
    }
    for g in group_add {
        let gid = lookup_group(&groups, "--group-add", g)?;
        user.gids.push(gid);
    }
    let mut seen = std::collections::BTreeSet::new();
    user.gids.retain(|g| seen.insert(*g));
    Ok(user)
}

/// The id of the host's group `name`, from /etc/group; None when it has none.
///
/// The host's files, not glibc's getgrnam: the release binary is linked statically
/// (scripts/lib.sh), and a static glibc runs NSS modules other than files and dns by dlopen,
/// which crashes it with Debian's default `group: files systemd` (nss_systemd's thread-local
/// variables; systemd issue 11970) for any name /etc/group lacks. Docker's static dockerd reads
/// the files alone too (Go's osusergo).
pub fn host_group_id(name: &str) -> Option<u32> {
    let text = read_host("/etc/group");
    parse_group(&text)
        .into_iter()
        .find(|g| g.name == name)
        .map(|g| g.gid)
}

/// The name of the host's user `uid`, from /etc/passwd (not getpwuid: see [`host_group_id`]).
pub fn host_user_name(uid: u32) -> Option<String> {
    let text = read_host("/etc/passwd");
    parse_passwd(&text)
        .into_iter()
        .find(|p| p.uid == uid)
        .map(|p| p.name)
}

/// A host file's text, at most MAX_FILE bytes of it; empty when it cannot be read.
fn read_host(path: &str) -> String {
    let mut bytes = Vec::new();
    if let Ok(file) = File::open(path) {
        let _ = file.take(MAX_FILE).read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A number, or None for a name. Numbers above runc's range are refused.
fn parse_id(flag: &str, text: &str) -> Result<Option<u32>, SpecError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(id) if id <= MAX_ID => Ok(Some(id)),
        _ => Err(SpecError::invalid(
            format!("{flag} {text}"),
            format!("ids go from 0 to {MAX_ID}; use a smaller one"),
        )),
    }
}

fn lookup_group(groups: &[Group], flag: &str, arg: &str) -> Result<u32, SpecError> {
    let gid_arg = parse_id(flag, arg)?;
    let found = groups.iter().find(|g| match gid_arg {
        Some(gid) => g.gid == gid,
        None => g.name == arg,
    });
    match (found, gid_arg) {
        (Some(g), _) => Ok(g.gid),
        (None, Some(gid)) => Ok(gid),
        (None, None) => Err(SpecError::UnknownGroup { name: arg.into() }),
    }
}

/// Lines of a colon-separated file, without comments and blank lines.
fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

fn parse_passwd(text: &str) -> Vec<Passwd> {
    records(text)
        .filter_map(|f| {
            Some(Passwd {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<Group> {
    records(text)
        .filter_map(|f| {
            Some(Group {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .unwrap_or(&"")
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

/// Reads a regular file inside the root without following anything out of it; a missing file
/// reads as empty, like runc.
fn read_in_root(root: &File, path: &'static str) -> Result<String, SpecError> {
    let err = |source| SpecError::ReadInRoot { path, source };
    let fd = match resolve::open(root.as_fd(), Path::new(path), OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(Errno::ENOENT as i32) => return Ok(String::new()),
        Err(e) => return Err(err(e)),
    };
    // Opened for reading only once it is known to be a regular file: a device node a
    // container made there is never opened by this host-root process.
    let file =
        match berth_sys::resolve::open_regular(fd.as_fd(), OFlag::O_RDONLY | OFlag::O_NONBLOCK) {
            Ok(Some((fd, _))) => File::from(fd),
            Ok(None) => return Err(err(std::io::Error::other("not a regular file"))),
            Err(e) => return Err(err(e.into())),
        };
    let mut bytes = Vec::new();
    file.take(MAX_FILE).read_to_end(&mut bytes).map_err(err)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nwww:x:33:33::/var/www:\n\
                          app:x:1000:1000:App:/home/app:/bin/sh\nbroken line\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:app\nstaff:x:50:app, www\napp:x:1000:\n";

    fn user(spec: &str, add: &[&str]) -> Result<ResolvedUser, SpecError> {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve_from(PASSWD, GROUP, spec, &add)
    }

    #[test]
    fn default_is_root_with_its_home() {
        let u = user("", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert!(u.gids.is_empty());
    }

    #[test]
    fn name_gets_its_gid_home_and_memberships() {
        let u = user("app", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        assert_eq!(u.gids, vec![33, 50]);
    }

    #[test]
    fn explicit_group_drops_memberships_like_runc() {
        let u = user("app:staff", &["www", "777"]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert_eq!(u.gids, vec![33, 777]);
    }

    #[test]
    fn unknown_numbers_pass_and_unknown_names_fail() {
        let u = user("4242:4343", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 4343, "/"));
        let e = user("nobody", &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "unable to find user nobody: no matching entries in passwd file"
        );
        let e = user("app:nogroup", &[]).unwrap_err().to_string();
        assert!(e.contains("unable to find group nogroup"), "{e}");
        assert!(user("", &["nogroup"]).is_err());
        assert!(user("4294967295", &[]).is_err());
    }

    #[test]
    fn uid_matches_by_number_first() {
        let u = user("33", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (33, 33, "/var/www"));
        assert_eq!(u.gids, vec![50]);
    }

    #[test]
    fn host_files_are_read_without_nss() {
        // Every Linux host has root in both files; a name no file can hold is not found.
        assert_eq!(host_group_id("root"), Some(0));
        assert_eq!(host_user_name(0).as_deref(), Some("root"));
        assert_eq!(host_group_id("no:such"), None);
    }
}
