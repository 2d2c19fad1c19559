//! A network's leases on disk: one small file per lease in `<network dir>/leases/`, named
//! `<ip>_<container id>`, the [`Lease`] record inside.
//!
//! An attach or a release touches only its own file: the addresses in use and a container's
//! leases are read from the directory's names, so neither reads nor rewrites the other
//! containers' leases (the single leases.json they replace was rewritten whole by every attach,
//! under the network's lock: 130 KB at 400 containers, which serialized parallel starts). Files
//! are written under the network's lock, through a temporary name and a rename, so lockless
//! readers (the DNS server, `network inspect`) never see half a record.
//!
//! A network made before this kept its leases in `leases.json`: it is read as well, and its
//! entries are dropped from it when they are released, but nothing new is added to it.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{NetError, Result};
use crate::store::{read_json, write_json, Lease, Leases};

const DIR: &str = "leases";
const LEGACY: &str = "leases.json";
/// A lease record is a few hundred bytes: a file larger than this is none.
const MAX_LEASE: u64 = 64 * 1024;

/// The lease directory of a network directory.
fn dir(net_dir: &Path) -> PathBuf {
    net_dir.join(DIR)
}

/// A new network's (empty) lease directory.
pub(crate) fn init(net_dir: &Path) -> Result<()> {
    let d = dir(net_dir);
    fs::create_dir_all(&d).map_err(|e| NetError::io("create network", &d, e))
}

/// One lease file's name, taken apart.
struct Entry {
    ip: Ipv4Addr,
    container_id: String,
    path: PathBuf,
    /// `.<ip>_<id>.tmp`: a write's temporary (see `write_json`), renamed before the writer lets
    /// the network's lock go: one seen under the lock was left by a writer killed between the
    /// two; one seen without it may also be a write in progress (the readers that act on it,
    /// the build's sweep, look at the holder's cgroups first, and the removal takes the lock).
    /// No lease either way, but its container's to remove. The harness parses these names too
    /// (tests/harness/src/image.rs, `lease_holder`).
    temporary: bool,
}

fn file_name(ip: Ipv4Addr, container_id: &str) -> String {
    format!("{ip}_{container_id}")
}

/// The lease files and their temporaries by name (not read); other names are skipped.
fn entries(net_dir: &Path, step: &'static str) -> Result<Vec<Entry>> {
    let d = dir(net_dir);
    let read = match fs::read_dir(&d) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetError::io(step, &d, e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| NetError::io(step, &d, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let temporary = name.starts_with('.');
        let name = match temporary {
            true => name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")),
            false => Some(name),
        };
        let Some((ip, id)) = name.and_then(|n| n.split_once('_')) else {
            continue;
        };
        if let Ok(ip) = ip.parse() {
            out.push(Entry {
                ip,
                container_id: id.to_string(),
                path: entry.path(),
                temporary,
            });
        }
    }
    Ok(out)
}

/// One lease file: a regular file, never a symlink's target (O_NOFOLLOW), a FIFO's writer
/// awaited (O_NONBLOCK) or more than [`MAX_LEASE`] read, whatever the directory holds.
fn read_lease(step: &'static str, path: &Path) -> Result<Lease> {
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(|e| NetError::io(step, path, e))?;
    let meta = file.metadata().map_err(|e| NetError::io(step, path, e))?;
    if !meta.is_file() || meta.len() > MAX_LEASE {
        let e = io::Error::new(io::ErrorKind::InvalidData, "not a lease record");
        return Err(NetError::io(step, path, e));
    }
    let mut bytes = Vec::new();
    file.take(MAX_LEASE)
        .read_to_end(&mut bytes)
        .map_err(|e| NetError::io(step, path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| NetError::Record {
        step,
        path: path.to_path_buf(),
        source: e,
    })
}

/// The leases of a network made before the lease directory; none when it has no such file.
fn legacy(net_dir: &Path, step: &'static str) -> Result<Leases> {
    match read_json(step, &net_dir.join(LEGACY)) {
        Err(NetError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Ok(Leases::new())
        }
        r => r,
    }
}

/// The leases' files: [`entries`] less the temporaries.
fn lease_entries(net_dir: &Path, step: &'static str) -> Result<Vec<Entry>> {
    let mut all = entries(net_dir, step)?;
    all.retain(|e| !e.temporary);
    Ok(all)
}

/// Every lease of the network that can be read. A damaged one (empty after a crash, garbage,
/// not a file) is left out rather than failing every reader (`network inspect`, the DNS
/// server): its name still holds its address, and its container's release removes it.
pub(crate) fn all(net_dir: &Path) -> Result<Leases> {
    let mut leases = legacy(net_dir, "read leases")?;
    for e in lease_entries(net_dir, "read leases")? {
        // Err: released since the directory was listed, or damaged.
        if let Ok(l) = read_lease("read leases", &e.path) {
            leases.insert(e.ip, l);
        }
    }
    Ok(leases)
}

/// How many leases the network holds, damaged ones included (by their names): a network with
/// any is in use.
pub(crate) fn count(net_dir: &Path) -> Result<usize> {
    let step = "read leases";
    Ok(legacy(net_dir, step)?.len() + lease_entries(net_dir, step)?.len())
}

/// The ids of the containers holding leases, from the files' names (none read), with those
/// of the temporaries a killed writer left: a sweep that releases the holders removes them too.
pub(crate) fn holders(net_dir: &Path) -> Result<BTreeSet<String>> {
    let step = "read leases";
    let mut ids: BTreeSet<String> = legacy(net_dir, step)?
        .into_values()
        .map(|l| l.container_id)
        .collect();
    ids.extend(entries(net_dir, step)?.into_iter().map(|e| e.container_id));
    Ok(ids)
}

/// Before an attach, under the network's lock, in one listing: drops the container's leases
/// (and temporaries) left by an earlier attach whose teardown never ran, and returns the
/// addresses in use.
pub(crate) fn prepare_attach(net_dir: &Path, container_id: &str) -> Result<BTreeSet<Ipv4Addr>> {
    let step = "allocate address";
    let mut old = legacy(net_dir, step)?;
    if old.values().any(|l| l.container_id == container_id) {
        old.retain(|_, l| l.container_id != container_id);
        write_json(step, &net_dir.join(LEGACY), &old)?;
    }
    let mut used: BTreeSet<Ipv4Addr> = old.into_keys().collect();
    for e in entries(net_dir, step)? {
        if e.container_id != container_id {
            if !e.temporary {
                used.insert(e.ip);
            }
            continue;
        }
        match fs::remove_file(&e.path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(NetError::io(step, &e.path, err));
            }
            _ => {}
        }
    }
    Ok(used)
}

/// The container's leases (read only its own files).
pub(crate) fn of_container(net_dir: &Path, container_id: &str) -> Result<Leases> {
    Ok(held_by(net_dir, container_id)?.0)
}

/// The container's leases (read only its own files), and whether a write of its killed
/// before the rename left a temporary (no lease, but the container's release removes it).
pub(crate) fn held_by(net_dir: &Path, container_id: &str) -> Result<(Leases, bool)> {
    let step = "read leases";
    let mut mine = legacy(net_dir, step)?;
    mine.retain(|_, l| l.container_id == container_id);
    let mut temporary = false;
    for e in entries(net_dir, step)? {
        if e.container_id != container_id {
            continue;
        }
        if e.temporary {
            temporary = true;
            continue;
        }
        match read_lease(step, &e.path) {
            Ok(l) => {
                mine.insert(e.ip, l);
            }
            Err(NetError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok((mine, temporary))
}

/// Records a lease. Under the network's lock. The directory is made on the first lease of a
/// network from before it.
pub(crate) fn write(net_dir: &Path, ip: Ipv4Addr, lease: &Lease) -> Result<()> {
    let d = dir(net_dir);
    match fs::create_dir(&d) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(NetError::io("write lease", &d, e));
        }
        _ => {}
    }
    write_json(
        "write lease",
        &d.join(file_name(ip, &lease.container_id)),
        lease,
    )
}

/// Drops the container's leases and returns them, and removes its temporaries. Under the
/// network's lock.
pub(crate) fn remove_container(net_dir: &Path, container_id: &str) -> Result<Leases> {
    let step = "release lease";
    let mut gone = Leases::new();
    let mut others = false;
    let mut old = legacy(net_dir, step)?;
    if old.values().any(|l| l.container_id == container_id) {
        old.retain(|ip, l| {
            let mine = l.container_id == container_id;
            if mine {
                gone.insert(*ip, l.clone());
            }
            !mine
        });
        write_json(step, &net_dir.join(LEGACY), &old)?;
    }
    for e in entries(net_dir, step)? {
        if e.container_id != container_id {
            others = true;
            continue;
        }
        // A killed write's temporary is no lease: removed, not read.
        if !e.temporary {
            match read_lease(step, &e.path) {
                Ok(l) => {
                    gone.insert(e.ip, l);
                }
                Err(NetError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    continue
                }
                // A record that cannot be read is still this container's lease: freed all the
                // same.
                Err(_) => {}
            }
        }
        match fs::remove_file(&e.path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(NetError::io(step, &e.path, err));
            }
            _ => {}
        }
    }
    if !others {
        compact(net_dir);
    }
    Ok(gone)
}

/// A lease directory larger than this once empty has held many leases since it was made.
const COMPACT_ABOVE: u64 = 64 * 1024;

/// Replaces the lease directory, emptied under the network's lock, by a new one if it grew:
/// ext4 never shrinks a directory, and every attach and release lists this one whole (where
/// /run is on disk, a listing of one that 7,000 leases had come and gone through took 455 us,
/// against 30 for a new one, at both ends of every bridged container's life). Best effort: a
/// directory that is not empty (a name the listing skipped) stays.
fn compact(net_dir: &Path) {
    let d = dir(net_dir);
    if !fs::metadata(&d).is_ok_and(|m| m.is_dir() && m.len() > COMPACT_ABOVE) {
        return;
    }
    let fresh = net_dir.join(".leases.new");
    let _ = fs::remove_dir(&fresh);
    if fs::create_dir(&fresh).is_ok() && fs::rename(&fresh, &d).is_err() {
        let _ = fs::remove_dir(&fresh);
    }
}

/// Rewrites the container's leases with `change`. Under the network's lock. Whether it had any.
pub(crate) fn update_container(
    net_dir: &Path,
    container_id: &str,
    change: impl Fn(&mut Lease),
) -> Result<bool> {
    let step = "update lease";
    let mut found = false;
    let mut old = legacy(net_dir, step)?;
    if old.values().any(|l| l.container_id == container_id) {
        old.values_mut()
            .filter(|l| l.container_id == container_id)
            .for_each(&change);
        write_json(step, &net_dir.join(LEGACY), &old)?;
        found = true;
    }
    for e in lease_entries(net_dir, step)? {
        if e.container_id == container_id {
            let mut lease = read_lease(step, &e.path)?;
            change(&mut lease);
            write_json(step, &e.path, &lease)?;
            found = true;
        }
    }
    Ok(found)
}

/// What changes when a lease is written or removed: the directory's and the old file's
/// modification times. The DNS server re-reads the leases when it changes.
pub(crate) type Stamp = (Option<SystemTime>, Option<SystemTime>);

pub(crate) fn stamp(net_dir: &Path) -> Stamp {
    let mtime = |p: PathBuf| fs::metadata(p).and_then(|m| m.modified()).ok();
    (mtime(dir(net_dir)), mtime(net_dir.join(LEGACY)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn lease(id: &str, name: &str) -> Lease {
        Lease {
            container_id: id.to_string(),
            name: name.to_string(),
            hostname: String::new(),
            aliases: Vec::new(),
            mac: "02:42:0a:00:00:02".to_string(),
            veth: "vberth000000000".to_string(),
            ports: Vec::new(),
        }
    }

    /// The addresses in use (no container's lease dropped).
    fn used(net_dir: &Path) -> Result<BTreeSet<Ipv4Addr>> {
        prepare_attach(net_dir, "-")
    }

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    #[test]
    fn a_lease_is_a_file_of_its_own() {
        let d = tempfile::tempdir().unwrap();
        init(d.path()).unwrap();
        write(d.path(), ip(2), &lease("aaa", "a")).unwrap();
        write(d.path(), ip(3), &lease("bbb", "b")).unwrap();
        // A temporary of a write in progress is no lease.
        fs::write(d.path().join("leases/.10.0.0.4_ccc.tmp"), b"").unwrap();
        assert_eq!(all(d.path()).unwrap().len(), 2);
        assert_eq!(used(d.path()).unwrap(), BTreeSet::from([ip(2), ip(3)]));
        let ids = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        // ... but its container's, swept with it (a writer killed before the rename).
        assert_eq!(holders(d.path()).unwrap(), ids(&["aaa", "bbb", "ccc"]));
        assert_eq!(count(d.path()).unwrap(), 2);
        assert_eq!(held_by(d.path(), "ccc").unwrap(), (Leases::new(), true));
        assert!(remove_container(d.path(), "ccc").unwrap().is_empty());
        assert!(!d.path().join("leases/.10.0.0.4_ccc.tmp").exists());
        assert_eq!(holders(d.path()).unwrap(), ids(&["aaa", "bbb"]));
        assert_eq!(of_container(d.path(), "bbb").unwrap()[&ip(3)].name, "b");
        assert!(update_container(d.path(), "aaa", |l| l.name = "renamed".into()).unwrap());
        assert_eq!(all(d.path()).unwrap()[&ip(2)].name, "renamed");
        let gone = remove_container(d.path(), "aaa").unwrap();
        assert_eq!(gone.keys().copied().collect::<Vec<_>>(), vec![ip(2)]);
        assert_eq!(used(d.path()).unwrap(), BTreeSet::from([ip(3)]));
        assert!(!update_container(d.path(), "aaa", |_| {}).unwrap());
        // A stale lease of the container attaching again is dropped, its address free.
        write(d.path(), ip(5), &lease("ddd", "d")).unwrap();
        fs::write(d.path().join("leases/.10.0.0.6_ddd.tmp"), b"{").unwrap();
        assert_eq!(
            prepare_attach(d.path(), "ddd").unwrap(),
            BTreeSet::from([ip(3)])
        );
        assert!(of_container(d.path(), "ddd").unwrap().is_empty());
        assert!(!d.path().join("leases/.10.0.0.6_ddd.tmp").exists());
    }

    /// A directory that many leases went through is made again once the last one is released
    /// (each release and attach lists it); one still holding a lease is left as it is.
    #[test]
    fn an_emptied_lease_directory_that_grew_is_made_again() {
        let d = tempfile::tempdir().unwrap();
        init(d.path()).unwrap();
        let size = || fs::metadata(d.path().join(DIR)).unwrap().len();
        let many = |id: &str| {
            for i in 0..3000u32 {
                let [_, _, a, b] = i.to_be_bytes();
                let name = format!("leases/.10.1.{a}.{b}_{id}.tmp");
                fs::write(d.path().join(name), b"").unwrap();
            }
        };
        let ino = || fs::metadata(d.path().join(DIR)).unwrap().ino();
        write(d.path(), ip(2), &lease("kept", "k")).unwrap();
        let first = ino();
        many("gone");
        assert!(remove_container(d.path(), "gone").unwrap().is_empty());
        assert_eq!(
            ino(),
            first,
            "a directory still holding a lease is left as it is"
        );
        assert_eq!(holders(d.path()).unwrap().len(), 1);
        many("gone");
        assert!(remove_container(d.path(), "gone").unwrap().is_empty());
        assert_eq!(remove_container(d.path(), "kept").unwrap().len(), 1);
        assert!(
            size() <= COMPACT_ABOVE,
            "an emptied directory of {} bytes",
            size()
        );
        assert_eq!(fs::read_dir(d.path().join(DIR)).unwrap().count(), 0);
        assert!(!d.path().join(".leases.new").exists());
        write(d.path(), ip(3), &lease("next", "n")).unwrap();
        assert_eq!(used(d.path()).unwrap(), BTreeSet::from([ip(3)]));
    }

    #[test]
    fn a_network_from_before_keeps_its_leases_json_read_and_shrinking() {
        let d = tempfile::tempdir().unwrap();
        let old = Leases::from([(ip(2), lease("old", "o")), (ip(3), lease("older", "p"))]);
        write_json("test", &d.path().join(LEGACY), &old).unwrap();
        // No lease directory yet: the old file alone.
        assert_eq!(used(d.path()).unwrap(), BTreeSet::from([ip(2), ip(3)]));
        write(d.path(), ip(4), &lease("new", "n")).unwrap();
        assert_eq!(all(d.path()).unwrap().len(), 3);
        assert_eq!(holders(d.path()).unwrap().len(), 3);
        assert!(update_container(d.path(), "old", |l| l.name = "o2".into()).unwrap());
        assert_eq!(of_container(d.path(), "old").unwrap()[&ip(2)].name, "o2");
        assert_eq!(remove_container(d.path(), "old").unwrap().len(), 1);
        let left: Leases = read_json("test", &d.path().join(LEGACY)).unwrap();
        assert_eq!(left.keys().copied().collect::<Vec<_>>(), vec![ip(3)]);
        assert_eq!(used(d.path()).unwrap(), BTreeSet::from([ip(3), ip(4)]));
    }
}
