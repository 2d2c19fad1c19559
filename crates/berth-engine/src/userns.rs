//! User namespaces for root's containers (`--userns private`, `--userns auto[:size=N]`): each
//! container gets a range of host ids of its own, its root being the range's first id, and
//! sees the image's files owned as they are in the image (idmapped layers, see
//! `bundle::mount_overlay`).
//!
//! Where the ranges come from: systemd's range for containers' ids, 524288 to 1879048191
//! (systemd's "UIDs and GIDs" document; systemd-nspawn's `--private-users=pick` takes from it
//! too), less every range that /etc/subuid or /etc/subgid gives a user (those are the users'
//! own, for their rootless containers). uids and gids are mapped alike: container id N is
//! host id `host_id + N` for both.
//!
//! Who holds what: a container's range is written in its directory (`<containers>/<id>/userns`)
//! when it is picked, under `<containers>/userns.lock`, and kept in its record. Picking a range
//! reads every container directory's, so two containers never share a range while both exist,
//! whatever created them and however many creates run at once; removing a container (its
//! directory) frees its range. Until its record is saved, the create holds a lock on that file
//! ([`Reservation`]): the range of a directory with no record and no create behind it (a
//! create killed half-way) is free.

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::Record;
use crate::request::{NsMode, RunRequest};

/// systemd's range for containers' ids: first id, and how many.
pub const POOL: (u32, u32) = (524_288, 1_879_048_191 - 524_288 + 1);
/// `--userns private`: as many ids as a default /etc/subuid range.
pub const PRIVATE_SIZE: u32 = 65_536;
/// `--userns auto`: at least this many ids (podman's `auto_userns_min_size`), at most
/// [`PRIVATE_SIZE`] unless `size=` asks for more.
pub const AUTO_MIN: u32 = 1024;
/// A private user namespace of a record made before ranges were picked per container.
const LEGACY: IdMap = IdMap {
    host_id: 100_000,
    size: 65_536,
    copied: false,
};

/// Set (to anything but empty, 0 or false) at create: the container's layers are chown-copied
/// for its range rather than idmapped, as they are anyway where the kernel or the data root's
/// filesystem cannot idmap a mount. For tests of that fallback.
pub const COPY_ENV: &str = "BERTH_USERNS_COPY";

/// Container ids `0..size` are host ids `host_id..host_id + size`, for uids and gids alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub host_id: u32,
    pub size: u32,
    /// The layers are chown-copied for the range, not idmapped ([`COPY_ENV`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub copied: bool,
}

impl IdMap {
    fn end(&self) -> u64 {
        u64::from(self.host_id) + u64::from(self.size)
    }

    /// The map as `/proc/PID/uid_map` and `gid_map` take it.
    pub fn proc_line(&self) -> String {
        format!("0 {} {}\n", self.host_id, self.size)
    }

    /// The host id of container id `id`, if the map has it.
    pub fn host(&self, id: u32) -> Option<u32> {
        (id < self.size).then(|| self.host_id + id)
    }
}

/// The container's map: the range it was given (or, joining another container's user
/// namespace, that one's), or the fixed one of a record made before ranges were given; none
/// in the host's user namespace.
pub fn of(record: &Record) -> Option<IdMap> {
    match record.request.userns {
        NsMode::Private => Some(record.userns.unwrap_or(LEGACY)),
        NsMode::Container(_) => record.userns,
        NsMode::Host => None,
    }
}

/// `--userns`: host, private, container:<id>, auto or auto:size=N. Returns the mode and, for
/// auto, the size asked (0: as many ids as the image names).
pub fn parse_mode(v: Option<&str>) -> Result<(NsMode, Option<u32>)> {
    let Some(auto) = v.and_then(|v| v.strip_prefix("auto")) else {
        return Ok((crate::options::ns_mode("--userns", v, true)?, None));
    };
    let bad = || {
        Error::Invalid(format!(
            "--userns auto{auto}: use auto or auto:size=N, N from 1 to {}",
            u32::MAX / 2
        ))
    };
    let size = match auto {
        "" => 0,
        _ => {
            let n = auto.strip_prefix(":size=").ok_or_else(bad)?;
            let n: u32 = n.parse().map_err(|_| bad())?;
            if n == 0 || n > u32::MAX / 2 {
                return Err(bad());
            }
            n
        }
    };
    Ok((NsMode::Private, Some(size)))
}

/// Picks the container's range and writes it in its directory (made here), when the request
/// has a private user namespace; joining another container's, returns that one's range (which
/// stays the other's: it is written nowhere). `layers` are the image's, top first: `auto`
/// sizes the range by the ids the image's /etc/passwd and /etc/group name.
pub fn allocate(
    engine: &Engine,
    id: &str,
    req: &RunRequest,
    layers: &[PathBuf],
) -> Result<(Option<IdMap>, Reservation)> {
    let none = Reservation::none();
    if let NsMode::Container(other) = &req.userns {
        // Its files must be shifted as the namespace it joins maps them.
        return Ok((of(&engine.containers.find(other)?), none));
    }
    if req.userns != NsMode::Private {
        return Ok((None, none));
    }
    let size = match req.userns_auto {
        None => PRIVATE_SIZE,
        Some(0) => image_size(layers),
        Some(n) => n,
    };
    let _lock = engine.containers.lock_userns()?;
    let mut taken = reserved_by_users();
    taken.extend(held(engine)?);
    let copied = std::env::var(COPY_ENV).is_ok_and(|v| !["", "0", "false"].contains(&v.as_str()));
    let mut map = pick(POOL, size, &mut taken).ok_or_else(|| {
        Error::Invalid(format!(
            "--userns: no free range of {size} ids left in {}..{}: remove containers with a user namespace of their own",
            POOL.0,
            u64::from(POOL.0) + u64::from(POOL.1)
        ))
    })?;
    map.copied = copied;
    let dir = engine.containers.make_dir(id, Some(map.host_id))?;
    let text = serde_json::to_vec(&map).map_err(|e| Error::Invalid(format!("userns: {e}")))?;
    let path = dir.join(FILE);
    let reservation = (|| {
        use std::io::Write;
        let mut file = fs::File::create(&path)?;
        file.lock()?;
        file.write_all(&text)?;
        Ok(Reservation { _file: Some(file) })
    })()
    .map_err(Error::io("write the container's id range", &path))?;
    reachable(&dir, &map)?;
    Ok((Some(map), reservation))
}

/// The range of a container being created, held until its record is saved (drop it then).
#[derive(Debug)]
pub struct Reservation {
    _file: Option<fs::File>,
}

impl Reservation {
    /// Nothing held.
    pub fn none() -> Reservation {
        Reservation { _file: None }
    }
}

/// Whether the range in `file` is still held: a create is still at work on it (it holds the
/// file's lock), or its container has a record. In that order: a create saves the record,
/// then lets the lock go, so a record looked for first could be missed by a create that
/// finished in between, and its range handed out twice (`concurrent_auto_creates_never_share_a_range`
/// caught it once in a full run).
fn still_held(dir: &Path, file: &Path) -> bool {
    match fs::File::open(file).map(|f| f.try_lock()) {
        Ok(Ok(())) => {}
        Ok(Err(std::fs::TryLockError::WouldBlock)) => return true,
        // Unsure: held, rather than hand it out twice.
        _ => return true,
    }
    dir.join("record.json").exists()
}

/// The runtime mounts the container's root from inside its user namespace, as its root (a
/// host id of the range, not the host's root): every directory down to the container's must
/// let that id through, or the start fails with a bare EACCES. Said at create instead, with
/// the directory at fault. (The mode bits only: an ACL that lets it through is not seen.)
fn reachable(dir: &Path, map: &IdMap) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    for d in dir.ancestors() {
        let Ok(md) = fs::metadata(d) else {
            continue;
        };
        let mode = md.mode();
        let through = mode & 0o001 != 0
            || (md.uid() == map.host_id && mode & 0o100 != 0)
            || (md.gid() == map.host_id && mode & 0o010 != 0);
        if !through {
            return Err(Error::Invalid(format!(
                "--userns: the container's root (host uid {}) cannot reach its root filesystem: {} is not searchable by others (mode {:o}); run chmod o+x on it, or use a data root others can reach (--root)",
                map.host_id,
                d.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(())
}

const FILE: &str = "userns";

/// The ranges of every container directory that has one.
fn held(engine: &Engine) -> Result<Vec<IdMap>> {
    let root = engine.containers.dir("");
    let mut out = Vec::new();
    for entry in fs::read_dir(&root).map_err(Error::io("list", &root))? {
        let entry = entry.map_err(Error::io("list", &root))?;
        let file = entry.path().join(FILE);
        let Ok(text) = fs::read(&file) else {
            continue;
        };
        if !still_held(&entry.path(), &file) {
            continue;
        }
        // Only a hand edit makes one berth cannot read back; that container is skipped.
        if let Ok(map) = serde_json::from_slice::<IdMap>(&text) {
            out.push(map);
        }
    }
    Ok(out)
}

/// The first `size` ids of `pool` that overlap none of `taken`.
fn pick(pool: (u32, u32), size: u32, taken: &mut [IdMap]) -> Option<IdMap> {
    taken.sort_by_key(|m| m.host_id);
    let end = u64::from(pool.0) + u64::from(pool.1);
    let mut start = u64::from(pool.0);
    for t in taken.iter() {
        if u64::from(t.host_id) >= start + u64::from(size) {
            break;
        }
        start = start.max(t.end());
    }
    if start + u64::from(size) > end {
        return None;
    }
    Some(IdMap {
        host_id: u32::try_from(start).ok()?,
        size,
        copied: false,
    })
}

/// The ranges /etc/subuid and /etc/subgid give users ("name:first:count" lines).
fn reserved_by_users() -> Vec<IdMap> {
    ["/etc/subuid", "/etc/subgid"]
        .iter()
        .filter_map(|f| fs::read_to_string(f).ok())
        .flat_map(|text| parse_subids(&text))
        .collect()
}

fn parse_subids(text: &str) -> Vec<IdMap> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.trim().split(':').skip(1);
            let host_id = f.next()?.parse().ok()?;
            let size = f.next()?.parse().ok()?;
            Some(IdMap {
                host_id,
                size,
                copied: false,
            })
        })
        .collect()
}

/// `auto`'s size: one more than the largest id of the image's /etc/passwd (uids and gids) and
/// /etc/group, within [`AUTO_MIN`]..=[`PRIVATE_SIZE`]. The files are read from the top
/// layer that has them, inside that layer (no symbolic link of the image leads out).
fn image_size(layers: &[PathBuf]) -> u32 {
    let mut max = 0u32;
    for name in ["/etc/passwd", "/etc/group"] {
        let fields: &[usize] = if name == "/etc/passwd" { &[2, 3] } else { &[2] };
        if let Some(text) = layers.iter().find_map(|l| read_in_layer(l, name)) {
            for line in text.lines() {
                let parts: Vec<&str> = line.split(':').collect();
                for &i in fields {
                    if let Some(id) = parts.get(i).and_then(|v| v.trim().parse::<u32>().ok()) {
                        max = max.max(id);
                    }
                }
            }
        }
    }
    max.saturating_add(1).clamp(AUTO_MIN, PRIVATE_SIZE)
}

fn read_in_layer(layer: &Path, name: &str) -> Option<String> {
    use std::io::Read;
    let root = fs::File::open(layer).ok()?;
    let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK;
    let fd = berth_runtime::rootfs::resolve::open(root.as_fd(), Path::new(name), flags).ok()?;
    let file = fs::File::from(fd);
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(4 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(host_id: u32, size: u32) -> IdMap {
        IdMap {
            host_id,
            size,
            copied: false,
        }
    }

    #[test]
    fn picks_the_first_free_range() {
        let pool = (1000, 10_000);
        assert_eq!(pick(pool, 100, &mut []), Some(m(1000, 100)));
        let mut taken = [m(1100, 50), m(1000, 100), m(1200, 10)];
        assert_eq!(pick(pool, 50, &mut taken), Some(m(1150, 50)));
        assert_eq!(pick(pool, 51, &mut taken), Some(m(1210, 51)));
        let mut outside = [m(0, 5000)];
        assert_eq!(pick(pool, 10, &mut outside), Some(m(5000, 10)));
        assert_eq!(pick(pool, 10_001, &mut []), None);
        assert_eq!(pick(pool, 10_000, &mut []), Some(m(1000, 10_000)));
    }

    #[test]
    fn modes_parse() {
        assert_eq!(parse_mode(None).unwrap(), (NsMode::Host, None));
        assert_eq!(
            parse_mode(Some("private")).unwrap(),
            (NsMode::Private, None)
        );
        assert_eq!(
            parse_mode(Some("auto")).unwrap(),
            (NsMode::Private, Some(0))
        );
        assert_eq!(
            parse_mode(Some("auto:size=2048")).unwrap(),
            (NsMode::Private, Some(2048))
        );
        for bad in ["auto:size=0", "auto:size=x", "auto:sise=5", "autox"] {
            assert!(parse_mode(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn subids_parse_and_auto_sizes_by_the_image() {
        assert_eq!(
            parse_subids("alice:100000:65536\n#x\nbad\nbob:165536:65536\n"),
            [m(100_000, 65_536), m(165_536, 65_536)]
        );
        let dir = tempfile::tempdir().unwrap();
        let (top, bottom) = (dir.path().join("top"), dir.path().join("bottom"));
        fs::create_dir_all(top.join("etc")).unwrap();
        fs::create_dir_all(bottom.join("etc")).unwrap();
        fs::write(
            bottom.join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nx:x:60000:1:::\n",
        )
        .unwrap();
        fs::write(
            top.join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1500:1501:::\n",
        )
        .unwrap();
        fs::write(bottom.join("etc/group"), "root:x:0:\nstaff:x:2000:\n").unwrap();
        assert_eq!(image_size(&[top.clone(), bottom.clone()]), 2001);
        assert_eq!(image_size(&[]), AUTO_MIN);
        std::os::unix::fs::symlink("/etc/passwd", top.join("etc/group")).unwrap();
        assert_eq!(image_size(&[top]), 1502, "no link out of the layer");
    }
}
