//! Where a container's cgroup is: `linux.cgroupsPath` parsed, or runc's default below the
//! runtime's own cgroup, and the directory that makes in each hierarchy.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CgroupError, Result};

/// Where a container's cgroup is in each hierarchy, as the runtime records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CgroupPath {
    /// One path below every hierarchy's root: what a `linux.cgroupsPath` names.
    Rooted(PathBuf),
    /// `name` below the cgroup the runtime itself was in, in each hierarchy: runc's default
    /// without a `linux.cgroupsPath` (its cgroupfs driver joins a relative path to its own
    /// cgroup). `name` is the container's id (and a cgroup below it for `exec --cgroup`);
    /// `parents` is the runtime's /proc/self/cgroup at create: each line's path by its
    /// controller list ("memory", "cpu,cpuacct", "name=systemd", "" for cgroup2).
    UnderOwn {
        name: PathBuf,
        parents: BTreeMap<String, PathBuf>,
    },
}

impl From<&Path> for CgroupPath {
    fn from(path: &Path) -> Self {
        Self::Rooted(path.to_owned())
    }
}

impl From<&PathBuf> for CgroupPath {
    fn from(path: &PathBuf) -> Self {
        Self::Rooted(path.clone())
    }
}

impl std::fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rooted(path) => write!(f, "{}", path.display()),
            Self::UnderOwn { name, .. } => {
                write!(
                    f,
                    "{} (below the runtime's own cgroup)",
                    Path::new(name).display()
                )
            }
        }
    }
}

impl From<&CgroupPath> for CgroupPath {
    fn from(path: &CgroupPath) -> Self {
        path.clone()
    }
}

fn invalid(path: &str, reason: &str) -> CgroupError {
    CgroupError::InvalidPath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

impl CgroupPath {
    /// runc's default for container `id`: `id` below the cgroup of `own`, the runtime's
    /// /proc/self/cgroup, in every hierarchy.
    pub fn under_own(id: &str, own: &str) -> Result<Self> {
        if Path::new(id).components().count() != 1 {
            return Err(invalid(id, "a container id must be one path component"));
        }
        let mut parents = BTreeMap::new();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            if let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            {
                parents.insert(controllers.to_owned(), PathBuf::from(path));
            }
        }
        let path = Self::UnderOwn {
            name: PathBuf::from(id),
            parents,
        };
        path.check()?;
        Ok(path)
    }

    /// The cgroup `sub` below this one, in every hierarchy (`sub` relative, without `..`:
    /// `check` refuses anything else).
    pub fn join(&self, sub: &Path) -> Self {
        match self {
            Self::Rooted(path) => Self::Rooted(path.join(sub)),
            Self::UnderOwn { name, parents } => Self::UnderOwn {
                name: name.join(sub),
                parents: parents.clone(),
            },
        }
    }

    /// Every path stays below its hierarchy's root: no `..`, no absolute part.
    pub(crate) fn check(&self) -> Result<()> {
        let below = |path: &Path| {
            path.components().next().is_some()
                && path.components().all(|c| matches!(c, Component::Normal(_)))
        };
        match self {
            Self::Rooted(path) | Self::UnderOwn { name: path, .. } if !below(path) => {
                return Err(invalid(
                    &path.display().to_string(),
                    "must be relative to the hierarchy root, without \"..\"",
                ));
            }
            Self::Rooted(_) => {}
            Self::UnderOwn { parents, .. } => {
                for path in parents.values() {
                    let ok = path.is_absolute()
                        && path
                            .components()
                            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
                    if !ok {
                        let why = "our own cgroup is outside our cgroup namespace: \
                                   give linux.cgroupsPath";
                        return Err(invalid(&path.display().to_string(), why));
                    }
                }
            }
        }
        Ok(())
    }

    /// The path below the root of the hierarchy whose controller list holds `key` ("memory",
    /// "name=systemd", or "" for the cgroup2 side of a hybrid host).
    pub(crate) fn in_hierarchy(&self, key: &str) -> PathBuf {
        match self {
            Self::Rooted(path) => path.clone(),
            Self::UnderOwn { name, .. } => relative(self.parent(key)).join(name),
        }
    }

    /// The path below the root of a cgroup2-only host. runc's default there is below the
    /// *parent* of its own cgroup: its own (a session scope, say) holds processes, so no
    /// controller could be enabled for a child of it.
    pub(crate) fn in_unified_host(&self) -> PathBuf {
        match self {
            Self::Rooted(path) => path.clone(),
            Self::UnderOwn { name, .. } => {
                let own = self.parent("");
                relative(own.parent().unwrap_or(own)).join(name)
            }
        }
    }

    /// False when the runtime's /proc/self/cgroup (what `UnderOwn` keeps) has no hierarchy with
    /// the v1 controller `key`: the kernel lists every v1 hierarchy there, so that controller
    /// is mounted nowhere (it is cgroup2's, or not built). True when it has, or when the path
    /// does not say (`Rooted`).
    pub(crate) fn may_have_hierarchy(&self, key: &str) -> bool {
        match self {
            Self::UnderOwn { parents, .. } if !parents.is_empty() => parents
                .keys()
                .any(|controllers| controllers.split(',').any(|c| c == key)),
            _ => true,
        }
    }

    /// The runtime's own cgroup in the hierarchy of `key`; its root if it has no line there.
    fn parent(&self, key: &str) -> &Path {
        let Self::UnderOwn { parents, .. } = self else {
            return Path::new("/");
        };
        parents
            .iter()
            .find(|(controllers, _)| {
                if key.is_empty() {
                    controllers.is_empty()
                } else {
                    controllers.split(',').any(|c| c == key)
                }
            })
            .map_or(Path::new("/"), |(_, path)| path.as_path())
    }
}

fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// Maps a non-empty OCI `linux.cgroupsPath` to a path relative to each hierarchy root.
///
/// Absolute and relative paths both go under the root. The systemd form `slice:prefix:name`
/// (what podman and containerd send when set up for systemd) becomes the path systemd would
/// give the scope, `a.slice/a-b.slice/prefix-name.scope`, since berth has no systemd driver.
pub fn parse_cgroups_path(path: &str) -> Result<PathBuf> {
    if !path.contains('/') && path.matches(':').count() == 2 {
        return systemd_path(path).map_err(|reason| invalid(path, &reason));
    }
    let mut relative = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(c) => relative.push(c),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(invalid(path, "\"..\" is not allowed")),
            Component::Prefix(_) => return Err(invalid(path, "not a Unix path")),
        }
    }
    if relative.as_os_str().is_empty() {
        return Err(invalid(path, "a container cannot use the root cgroup"));
    }
    Ok(relative)
}

fn systemd_path(path: &str) -> std::result::Result<PathBuf, String> {
    let mut parts = path.split(':');
    let (slice, prefix, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(s), Some(p), Some(n)) => (s, p, n),
        _ => return Err("expected slice:prefix:name".to_owned()),
    };
    if name.is_empty() {
        return Err("the name after the last ':' is empty".to_owned());
    }
    let mut result = expand_slice(if slice.is_empty() {
        "system.slice"
    } else {
        slice
    })?;
    let unit = match (name.ends_with(".slice"), prefix.is_empty()) {
        (true, _) => name.to_owned(),
        (false, true) => format!("{name}.scope"),
        (false, false) => format!("{prefix}-{name}.scope"),
    };
    result.push(unit);
    Ok(result)
}

/// `a-b.slice` -> `a.slice/a-b.slice`: systemd encodes a slice's ancestors in its name.
fn expand_slice(slice: &str) -> std::result::Result<PathBuf, String> {
    let invalid = || Err(format!("invalid slice name {slice:?}"));
    let Some(stem) = slice.strip_suffix(".slice") else {
        return invalid();
    };
    if stem.is_empty() {
        return invalid();
    }
    let mut path = PathBuf::new();
    if stem == "-" {
        return Ok(path);
    }
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return invalid();
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
        prefix.push('-');
    }
    Ok(path)
}
