//! `RUN --mount`: `type=cache` (a directory kept under `<root>/build/mounts` across builds, by
//! `id`, with `sharing`), `type=bind` (from the context or a stage, read-only unless `rw`, when
//! a private copy takes the writes), `type=secret` (a `--secret` file at /run/secrets/<id>,
//! never in a layer) and `type=tmpfs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_engine::request::MountRequest;

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountKind {
    Cache,
    Bind,
    Secret,
    Tmpfs,
}

/// One `--mount` flag, parsed and expanded.
#[derive(Clone, Debug)]
pub struct MountSpec {
    pub kind: MountKind,
    pub target: String,
    pub source: String,
    pub from: Option<String>,
    pub id: String,
    pub sharing: String,
    pub readonly: bool,
    pub required: bool,
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    /// The text, for the cache key and messages.
    pub text: String,
}

pub fn parse(text: &str) -> Result<MountSpec> {
    let mut opts = BTreeMap::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        opts.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let bad = |why: String| Error::Invalid(format!("--mount={text}: {why}"));
    let kind = match opts.get("type").map(String::as_str).unwrap_or("bind") {
        "cache" => MountKind::Cache,
        "bind" => MountKind::Bind,
        "secret" => MountKind::Secret,
        "tmpfs" => MountKind::Tmpfs,
        "ssh" => return Err(bad("type=ssh is not supported by berth build".into())),
        other => return Err(bad(format!("unknown mount type {other:?}"))),
    };
    let get = |keys: &[&str]| keys.iter().find_map(|k| opts.get(*k).cloned());
    let id = get(&["id"]).unwrap_or_default();
    let target = match get(&["target", "dst", "destination"]) {
        Some(t) => t,
        None if kind == MountKind::Secret => format!("/run/secrets/{id}"),
        None => return Err(bad("a target is required".into())),
    };
    if kind == MountKind::Secret && id.is_empty() {
        return Err(bad("a secret mount needs id=".into()));
    }
    let num = |k: &str, default: u32, radix: u32| -> Result<u32> {
        match opts.get(k) {
            Some(v) => {
                u32::from_str_radix(v, radix).map_err(|_| bad(format!("{k}={v}: not a number")))
            }
            None => Ok(default),
        }
    };
    let flag = |k: &str| opts.get(k).is_some_and(|v| v.is_empty() || v == "true");
    let readonly = match kind {
        MountKind::Bind => !(flag("rw") || flag("readwrite")),
        _ => flag("ro") || flag("readonly"),
    };
    let sharing = get(&["sharing"]).unwrap_or_else(|| "shared".into());
    if !["shared", "private", "locked"].contains(&sharing.as_str()) {
        return Err(bad(format!(
            "sharing={sharing}: expected shared, private or locked"
        )));
    }
    Ok(MountSpec {
        id: if id.is_empty() { target.clone() } else { id },
        source: get(&["source", "src"]).unwrap_or_default(),
        from: get(&["from"]),
        sharing,
        readonly,
        required: flag("required"),
        mode: opts.get("mode").map(|_| num("mode", 0, 8)).transpose()?,
        uid: num("uid", 0, 10)?,
        gid: num("gid", 0, 10)?,
        kind,
        target,
        text: text.to_string(),
    })
}

/// A bind of `source` at `target`, as `berth run --mount type=bind` asks for it.
fn bind(target: &str, source: &Path, read_only: bool) -> MountRequest {
    MountRequest {
        kind: "bind".into(),
        source: source.to_string_lossy().into_owned(),
        target: target.to_string(),
        read_only,
        options: Vec::new(),
    }
}

/// What a mount needs while its step runs: the mount, and a lock held for `locked`.
pub struct Prepared {
    pub mount: Option<MountRequest>,
    pub _lock: Option<std::fs::File>,
}

/// The cache mount's directory: `<root>/build/mounts/<hash of id>`, made with uid, gid, mode.
pub fn cache_mount(data_root: &Path, m: &MountSpec) -> Result<Prepared> {
    let name = crate::cache::key("", &[m.id.as_bytes()]);
    let dir = data_root.join("build/mounts").join(&name[..32]);
    if !dir.exists() {
        berth_engine::build_cache::build_dir(data_root)?;
        std::fs::create_dir_all(&dir).map_err(Error::io("create the cache mount", &dir))?;
        std::os::unix::fs::chown(&dir, Some(m.uid), Some(m.gid))
            .map_err(Error::io("chown", &dir))?;
        let mode = m.mode.unwrap_or(0o755);
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(Error::io("chmod", &dir))?;
    }
    let lock = if m.sharing == "locked" {
        let f = std::fs::File::open(&dir).map_err(Error::io("open", &dir))?;
        f.lock().map_err(Error::io("lock", &dir))?;
        Some(f)
    } else {
        None
    };
    Ok(Prepared {
        mount: Some(bind(&m.target, &dir, m.readonly)),
        _lock: lock,
    })
}

/// A secret's file copied into the step's directory (mode 0400 or `mode=`), bound read-only.
pub fn secret_mount(
    step_dir: &Path,
    m: &MountSpec,
    secrets: &BTreeMap<String, PathBuf>,
) -> Result<Prepared> {
    let Some(src) = secrets.get(&m.id) else {
        if m.required {
            return Err(Error::Invalid(format!(
                "secret {} not found: give it with --secret id={},src=FILE",
                m.id, m.id
            )));
        }
        return Ok(Prepared {
            mount: None,
            _lock: None,
        });
    };
    let dir = step_dir.join("secrets");
    std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
    let file = dir.join(crate::cache::key("", &[m.id.as_bytes()]));
    std::fs::copy(src, &file).map_err(Error::io("read the secret", src))?;
    std::os::unix::fs::chown(&file, Some(m.uid), Some(m.gid)).map_err(Error::io("chown", &file))?;
    let mode = m.mode.unwrap_or(0o400);
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(Error::io("chmod", &file))?;
    Ok(Prepared {
        mount: Some(bind(&m.target, &file, true)),
        _lock: None,
    })
}

/// A bind of `host` (a resolved source); a writable one gets a private copy.
pub fn bind_mount(step_dir: &Path, m: &MountSpec, host: &Path, n: usize) -> Result<Prepared> {
    let source = if m.readonly {
        host.to_path_buf()
    } else {
        let copy = step_dir.join(format!("bind-{n}"));
        let status = std::process::Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(host)
            .arg(&copy)
            .status()
            .map_err(Error::io("copy the bind source", host))?;
        if !status.success() {
            return Err(Error::Invalid(format!(
                "copy the bind source {}: cp failed ({status})",
                host.display()
            )));
        }
        copy
    };
    Ok(Prepared {
        mount: Some(bind(&m.target, &source, m.readonly)),
        _lock: None,
    })
}

pub fn tmpfs_mount(m: &MountSpec) -> Prepared {
    let mount = MountRequest {
        kind: "tmpfs".into(),
        source: String::new(),
        target: m.target.clone(),
        read_only: m.readonly,
        options: Vec::new(),
    };
    Prepared {
        mount: Some(mount),
        _lock: None,
    }
}
