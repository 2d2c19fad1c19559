//! Volumes: directories under `<root>/volumes/<name>/_data`, as Docker's local driver keeps
//! them, with Docker's name rules; `meta.json` beside `_data` keeps what `volume inspect`
//! shows (creation time, labels, the driver's options) and whether the volume is anonymous
//! (made for one container, pruned by default). A volume with options has them mounted on
//! `_data` while containers use it (`local`).

pub mod local;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::{self, Event};
use crate::filters::{name_matches, Filters};
use crate::records::{self, Record};
use crate::request::RunRequest;

/// Docker's volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// What `meta.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    pub created: String,
    pub labels: BTreeMap<String, String>,
    pub anonymous: bool,
    /// The local driver's options (`-o type=tmpfs`...).
    pub options: BTreeMap<String, String>,
}

/// A volume as `docker volume inspect` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: &'static str,
    pub labels: BTreeMap<String, String>,
    pub mountpoint: PathBuf,
    pub name: String,
    pub options: BTreeMap<String, String>,
    pub scope: &'static str,
    /// Not Docker's: anonymous volumes are the ones `volume prune` removes without `-a`.
    #[serde(skip)]
    pub anonymous: bool,
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "volume name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        )))
    }
}

/// The volume's data directory, created if missing (a container's `-v name:/dst` or an image
/// VOLUME). A 64-hex name is one the engine made up: an anonymous volume.
pub fn ensure(engine: &Engine, name: &str) -> Result<PathBuf> {
    let anonymous = name.len() == 64 && records::is_hex(name);
    make(engine, name, BTreeMap::new(), BTreeMap::new(), anonymous)?;
    Ok(data_dir(engine, name))
}

/// The name of the anonymous volume a container makes for its `mount`-th mount: each byte of
/// the container's id plus `mount + 1` (mod 256). A function of the id, so the volumes of a
/// container whose record is lost are still known ([`anonymous_of`]).
pub(crate) fn anonymous_name(id_bytes: &[u8], mount: usize) -> String {
    let offset = (mount as u8).wrapping_add(1);
    id_bytes
        .iter()
        .map(|b| format!("{:02x}", b.wrapping_add(offset)))
        .collect()
}

/// The anonymous volumes of container `id` that exist, found without its record: every name
/// [`anonymous_name`] gives for the id that is an anonymous volume here.
pub(crate) fn anonymous_of(engine: &Engine, id: &str) -> Vec<String> {
    if id.len() != 64 || !records::is_hex(id) {
        return Vec::new();
    }
    // ASCII hex digits, checked above: every two-byte slice is on a char boundary.
    let bytes: Vec<u8> = (0..id.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&id[i..i + 2], 16).ok())
        .collect();
    (0..=usize::from(u8::MAX))
        .map(|mount| anonymous_name(&bytes, mount))
        .filter(|name| inspect(engine, name).is_ok_and(|v| v.anonymous))
        .collect()
}

/// Where the volume `name` keeps its files, whether or not it exists yet.
pub fn data_dir(engine: &Engine, name: &str) -> PathBuf {
    engine.volumes_dir().join(name).join("_data")
}

/// `volume create [NAME]`: a new volume, or the existing one of that name (as Docker does).
/// Without a name it gets a random 64-hex one, but is not anonymous: it was asked for.
/// `options` are the local driver's (`local::check`).
pub fn create(
    engine: &Engine,
    name: Option<&str>,
    labels: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
) -> Result<Volume> {
    let name = match name {
        Some(n) => n.to_string(),
        None => crate::names::new_id()?.0,
    };
    check_name(&name)?;
    local::check(&name, &options)?;
    make(engine, &name, labels, options, false)?;
    inspect(engine, &name)
}

fn make(
    engine: &Engine,
    name: &str,
    labels: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
    anonymous: bool,
) -> Result<()> {
    check_name(name)?;
    let dir = engine.volumes_dir().join(name);
    let data = dir.join("_data");
    // Root's alone: what containers write in volumes (setuid programs among it) is out of
    // local users' reach, as in containers' own directories (records::Containers::make_dir).
    crate::records::private_dir(&engine.volumes_dir())?;
    fs::create_dir_all(&data).map_err(Error::io("create volume", &data))?;
    let meta_path = dir.join("meta.json");
    if meta_path.exists() {
        return Ok(());
    }
    let meta = Meta {
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        labels,
        anonymous,
        options,
    };
    let text = serde_json::to_vec_pretty(&meta)
        .map_err(|e| Error::Invalid(format!("serialise volume metadata: {e}")))?;
    records::write_atomic(&meta_path, &text)?;
    let event = Event::new(events::Kind::Volume, "create", name).with("driver", "local");
    events::record(engine, event);
    Ok(())
}

/// The event of a volume's removal.
pub(crate) fn destroyed(engine: &Engine, name: &str) {
    let event = Event::new(events::Kind::Volume, "destroy", name).with("driver", "local");
    events::record(engine, event);
}

/// One volume by name.
pub fn inspect(engine: &Engine, name: &str) -> Result<Volume> {
    let dir = engine.volumes_dir().join(name);
    if !valid_name(name) || !dir.join("_data").is_dir() {
        return Err(Error::NoSuchVolume(name.to_string()));
    }
    let meta: Meta = fs::read(dir.join("meta.json"))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_else(|| Meta {
            // Made before berth kept metadata: the directory's time will do.
            created: fs::metadata(&dir)
                .and_then(|m| m.modified())
                .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                .unwrap_or_default(),
            labels: BTreeMap::new(),
            anonymous: name.len() == 64 && records::is_hex(name),
            options: BTreeMap::new(),
        });
    Ok(Volume {
        created_at: meta.created,
        driver: "local",
        labels: meta.labels,
        mountpoint: dir.join("_data"),
        name: name.to_string(),
        options: meta.options,
        scope: "local",
        anonymous: meta.anonymous,
    })
}

/// The filters `volume ls` takes.
pub const LIST_FILTERS: &[&str] = &["dangling", "driver", "label", "label!", "name"];
/// The filters `volume prune` takes (`all`: named volumes too, not only anonymous ones).
pub const PRUNE_FILTERS: &[&str] = &["all", "label", "label!"];

/// The volumes `filters` (of [`LIST_FILTERS`]) let through, by name: `dangling` is whether
/// no container refers to it.
pub fn list_filtered(engine: &Engine, filters: &Filters) -> Result<Vec<Volume>> {
    let dangling = filters.bool("dangling")?;
    let records = match dangling {
        Some(_) => engine.containers.all()?.records,
        None => Vec::new(),
    };
    Ok(list(engine)?
        .into_iter()
        .filter(|v| {
            dangling.is_none_or(|d| d != records.iter().any(|r| uses(r, &v.name)))
                && filters.any("driver", |d| d == v.driver)
                && filters.any("name", |n| name_matches(n, &v.name))
                && filters.labels_match(&v.labels)
        })
        .collect())
}

/// Every volume, by name.
pub fn list(engine: &Engine) -> Result<Vec<Volume>> {
    let dir = engine.volumes_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list volumes in", &dir)(e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names
        .iter()
        .filter_map(|n| inspect(engine, n).ok())
        .collect())
}

/// Does `record` mount the volume `name`?
pub fn uses(record: &Record, name: &str) -> bool {
    record
        .request
        .mounts
        .iter()
        .any(|m| m.kind == "volume" && m.source == name)
}

/// `--volumes-from container[:ro|rw]` (the API's `VolumesFrom`): that container's volumes and
/// binds, at the same targets, read-only with `ro` and as they are there otherwise; a target
/// the request mounts something at already keeps its own.
pub fn from_containers(engine: &Engine, req: &mut RunRequest) -> Result<()> {
    for spec in req.volumes_from.clone() {
        let (key, mode) = match spec.rsplit_once(':') {
            Some((key, mode @ ("ro" | "rw"))) => (key, Some(mode)),
            _ => (spec.as_str(), None),
        };
        let other = engine.containers.find(key).map_err(|e| {
            Error::Invalid(format!(
                "--volumes-from {spec}: {e}; name an existing container (berth ps -a)"
            ))
        })?;
        for m in other.request.mounts.iter().filter(|m| m.kind != "tmpfs") {
            if req.mounts.iter().any(|mine| mine.target == m.target) {
                continue;
            }
            let mut m = m.clone();
            if let Some(mode) = mode {
                m.read_only = mode == "ro";
            }
            req.mounts.push(m);
        }
    }
    Ok(())
}

/// The containers (any state) that mount `name`.
pub fn users(engine: &Engine, name: &str) -> Result<Vec<Record>> {
    Ok(engine
        .containers
        .all()?
        .records
        .into_iter()
        .filter(|r| uses(r, name))
        .collect())
}

/// `volume rm`: refused while a container refers to the volume; `force` removes it anyway
/// when those containers are stopped. A running container's volume is never removed under it.
pub fn remove(engine: &Engine, name: &str, force: bool) -> Result<()> {
    let volume = match inspect(engine, name) {
        Err(Error::NoSuchVolume(_)) if force => return Ok(()),
        found => found?,
    };
    let users = users(engine, name)?;
    // Docker's: a volume any container refers to, running or not, stays; -f does not change
    // that (it only forgives a volume that is not there, above).
    if !users.is_empty() {
        let ids: Vec<&str> = users.iter().map(|r| r.id.as_str()).collect();
        return Err(Error::Conflict(format!(
            "remove {name}: volume is in use - [{}]",
            ids.join(", ")
        )));
    }
    remove_files(engine, &volume.name)?;
    destroyed(engine, name);
    Ok(())
}

/// The volume's directory removed, after its `_data` is unmounted: the files of a bind
/// volume's host directory are never the volume's to remove.
pub(crate) fn remove_files(engine: &Engine, name: &str) -> Result<()> {
    let dir = engine.volumes_dir().join(name);
    local::unmount(&dir.join("_data"))?;
    fs::remove_dir_all(&dir).map_err(Error::io("remove volume", &dir))
}

/// `volume prune`: unused volumes, only anonymous ones unless `all`, with the labels
/// `filters` ask for (`label`, `label!`). Returns the names removed and the bytes freed; the
/// first error stops nothing, all are reported.
pub fn prune(engine: &Engine, all: bool, filters: &Filters) -> Result<(Vec<String>, u64)> {
    let records = engine.containers.all()?.records;
    let mut removed = Vec::new();
    let mut freed = 0;
    let mut errors = Vec::new();
    for v in list(engine)? {
        if !(all || v.anonymous)
            || !filters.labels_match(&v.labels)
            || records.iter().any(|r| uses(r, &v.name))
        {
            continue;
        }
        let size = disk_usage(&v.mountpoint);
        match remove_files(engine, &v.name) {
            Ok(()) => {
                destroyed(engine, &v.name);
                freed += size;
                removed.push(v.name);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok((removed, freed))
    } else {
        Err(Error::Invalid(format!(
            "volume prune: {}",
            errors.join("; ")
        )))
    }
}

/// Bytes used by the files under `path`, not following symbolic links.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| disk_usage(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), Path::new("/bin/true")).unwrap();
        (dir, engine)
    }

    #[test]
    fn create_inspect_list_and_remove() {
        let (_dir, engine) = engine();
        let mut labels = BTreeMap::new();
        labels.insert("team".to_string(), "ops".to_string());
        let v = create(&engine, Some("data"), labels, BTreeMap::new()).unwrap();
        assert_eq!(v.name, "data");
        assert_eq!(v.labels["team"], "ops");
        assert!(v.mountpoint.ends_with("volumes/data/_data") && v.mountpoint.is_dir());
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["Driver"], "local");
        assert_eq!(json["Scope"], "local");
        assert!(json["CreatedAt"].as_str().unwrap().ends_with('Z'));
        // Creating it again keeps it (and its labels).
        let again = create(&engine, Some("data"), BTreeMap::new(), BTreeMap::new()).unwrap();
        assert_eq!(again.labels["team"], "ops");
        let unnamed = create(&engine, None, BTreeMap::new(), BTreeMap::new()).unwrap();
        assert_eq!(unnamed.name.len(), 64);
        assert!(
            !unnamed.anonymous,
            "asked for by name or not, it is not anonymous"
        );
        assert_eq!(list(&engine).unwrap().len(), 2);
        remove(&engine, "data", false).unwrap();
        assert!(inspect(&engine, "data").is_err());
        assert!(remove(&engine, "data", false).is_err());
        assert!(create(&engine, Some("-bad"), BTreeMap::new(), BTreeMap::new()).is_err());
    }

    #[test]
    fn prune_takes_anonymous_volumes_unless_all() {
        let (_dir, engine) = engine();
        create(&engine, Some("named"), BTreeMap::new(), BTreeMap::new()).unwrap();
        let anon = "ab".repeat(32);
        let data = ensure(&engine, &anon).unwrap();
        fs::write(data.join("f"), b"12345").unwrap();
        let none = Filters::default();
        let (removed, freed) = prune(&engine, false, &none).unwrap();
        assert_eq!(removed, vec![anon]);
        assert_eq!(freed, 5);
        assert!(inspect(&engine, "named").is_ok());
        let (removed, _) = prune(&engine, true, &none).unwrap();
        assert_eq!(removed, vec!["named".to_string()]);
    }

    #[test]
    fn a_containers_anonymous_volumes_follow_from_its_id() {
        let (_dir, engine) = engine();
        let (id, bytes) = crate::names::new_id().unwrap();
        // Its mounts 0, 3 and 300 (as 44: it wraps), found in that order.
        let made: Vec<String> = [0, 3, 300]
            .map(|mount| anonymous_name(&bytes, mount))
            .into();
        for name in &made {
            ensure(&engine, name).unwrap();
        }
        // Not its own: a volume asked for by name, and another container's.
        create(&engine, Some("named"), BTreeMap::new(), BTreeMap::new()).unwrap();
        let (_, other) = crate::names::new_id().unwrap();
        ensure(&engine, &anonymous_name(&other, 0)).unwrap();
        assert_eq!(anonymous_of(&engine, &id), made);
        assert_eq!(anonymous_of(&engine, "not-an-id"), Vec::<String>::new());
    }
}
