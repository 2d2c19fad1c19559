//! A container's bundle, checked once at create and made at each start: the overlay root from
//! the image's layers, the /etc files Docker provides, volumes, and the spec from
//! `spec::build` (handed to the runtime as it is). `teardown` undoes the mount; both are
//! idempotent, so a restart or a crashed monitor's cleanup can call them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use berth_image::store::InitLayer;
use nix::mount::{MntFlags, MsFlags};
use oci_spec::image::ImageConfiguration;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lifecycle::ImageRef;
use crate::records::{Record, Status};
use crate::request::{IpcShm, MountRequest, NsMode, RunRequest};
use crate::spec::{self, EtcFiles, HostLimits, SpecInputs};
use crate::userns::IdMap;

/// What the monitor needs to know from the bundle, the spec with it.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub stop_signal: String,
    pub hostname: String,
    /// The image's EXPOSEd ports, for `-P` of a record made before create kept them.
    pub exposed: Vec<crate::request::ExposedPort>,
    /// The spec, for the runtime to take as it is.
    pub spec: oci_spec::runtime::Spec,
    /// `--add-host`'s entries, `host-gateway` given its address once for the start: the
    /// /etc/hosts written now and again once the network gave the container its address.
    pub add_hosts: Vec<String>,
}

pub fn rootfs(dir: &Path) -> PathBuf {
    dir.join("rootfs")
}

/// Mounts the root and writes the /etc files in the container's directory. The spec is not
/// written there: the runtime takes it as it is and keeps it in its state, where `exec` finds
/// the process; inspect and ps make the command as the spec does (and the engine's specs have
/// no hooks, which would read their bundle's config.json).
pub fn prepare(engine: &Engine, record: &Record) -> Result<Prepared> {
    let dir = engine.containers.dir(&record.id);
    let store = engine.images()?;
    let (config, layers) = image_in(&store, record)?;
    let root = rootfs(&dir);
    let userns = crate::userns::of(record);
    // A `--rm` container's root goes with it, so a crash may lose it too: `volatile`, as
    // Podman mounts its `--rm` containers' (bench/README.md, "volatile").
    let durable = if record.request.auto_remove {
        Durability::Volatile
    } else {
        Durability::Synced
    };
    mount_overlay(&dir, &root, &layers, userns, durable)?;
    // The first start of an image's container learns what its init layer holds, for the
    // containers created after it (this one makes the mount points in its own upper
    // directory, as before). A root of a user namespace's own is seen through shifted ids:
    // left to another start. Only a quicker start for the others: a failure is not this one's.
    if !record.init_layer && userns.is_none() {
        let _ = crate::init_layer::learn(&store, &record.image_id, &root, &dir.join("upper"));
    }
    // The host's knobs looked at again, as Docker does at each start: a record made before a
    // reboot into cgroup v2 (or a change of I/O scheduler) starts without what is gone.
    let adjusted;
    let req = if spec::asks_host_knobs(&record.request) {
        let mut req = record.request.clone();
        spec::discard_unsupported(&mut req, spec::Knobs::of_host);
        adjusted = req;
        &adjusted
    } else {
        &record.request
    };
    let result = (|| {
        let add_hosts = crate::network::resolve_extra_hosts(engine, &req.add_hosts)?.into_owned();
        let etc = write_etc_files(&dir, record, &add_hosts)?;
        bind_sources(&req.mounts)?;
        let volumes = volumes(engine, &record.id, &req.mounts, &root, userns)?;
        let joins = joins(engine, req, true)?;
        let inputs = (&etc, &joins, &volumes, userns);
        let built = build(&record.id, req, &config, &root, inputs)?;
        let mut spec = built.spec;
        shared_shm(engine, record, &dir, &mut spec)?;
        let built = spec::Built { spec, ..built };
        ensure_cwd(&root, &built.spec, userns)?;
        if userns.is_some() {
            mount_points(&root, &built.spec)?;
        }
        Ok(Prepared {
            stop_signal: built.stop_signal,
            hostname: built.hostname,
            exposed: crate::ports::of_image(&config),
            spec: built.spec,
            add_hosts,
        })
    })();
    if result.is_err() {
        undo(engine, record);
    }
    result
}

/// Undoes `prepare`: the root unmounted, the volumes this container had mounted released.
pub fn undo(engine: &Engine, record: &Record) {
    let _ = teardown(&engine.containers.dir(&record.id));
    let _ = crate::volumes::local::release_all(engine, &record.id, Some(record));
}

/// At create, before the record exists: config.json built once and dropped, so that every
/// flag the spec refuses (a device the host lacks, an unknown capability, a user the image
/// lacks...) fails before anything is made rather than at start. It is built in the
/// container's directory `<containers>/<id>`, which the caller removes if this fails. The
/// spec reads the image's files only to resolve a user or a group (`-u`, `--group-add`, the
/// image's USER): only then is the root mounted, and unmounted after (an unmount waits for an
/// RCU grace period, milliseconds a `run` need not pay). Otherwise an empty root stands in for
/// it, where the default user resolves as in any image, to root.
pub fn check(
    engine: &Engine,
    id: &str,
    req: &RunRequest,
    userns: Option<IdMap>,
    image: &ImageRef<'_>,
    init_layer: bool,
) -> Result<()> {
    let dir = engine
        .containers
        .make_dir(id, userns.map(|map| map.host_id))?;
    let root = rootfs(&dir);
    let image_user = spec::image_user(image.config.config().as_ref()).is_some();
    let mount = req.user.is_some() || !req.group_add.is_empty() || image_user;
    if mount {
        // Only the image's users are read: its own ids, not idmapped.
        mount_overlay(
            &dir,
            &root,
            &layers_in(&engine.images()?, &image.id, image.config, init_layer)?,
            None,
            Durability::Volatile,
        )?;
    } else {
        fs::create_dir_all(&root).map_err(Error::io("create", &root))?;
    }
    let volumes = req
        .mounts
        .iter()
        .filter(|m| m.kind == "volume")
        .map(|m| {
            (
                m.source.clone(),
                crate::volumes::data_dir(engine, &m.source),
            )
        })
        .collect();
    let built = joins(engine, req, false).and_then(|joins| {
        let inputs = (&etc_files(&dir), &joins, &volumes, userns);
        build(id, req, image.config, &root, inputs)
    });
    if mount {
        built.and(teardown(&dir))
    } else {
        built.map(drop)
    }
}

/// The host's side of the spec: /etc files, joined namespaces, volumes, the user namespace's
/// ids.
type HostInputs<'a> = (
    &'a EtcFiles,
    &'a BTreeMap<String, PathBuf>,
    &'a BTreeMap<String, PathBuf>,
    Option<IdMap>,
);

/// config.json from the request and the image.
fn build(
    id: &str,
    req: &RunRequest,
    config: &ImageConfiguration,
    root: &Path,
    (etc, joins, volumes, userns): HostInputs<'_>,
) -> Result<spec::Built> {
    Ok(spec::build(&SpecInputs {
        id,
        request: req,
        image_config: config,
        rootfs: root,
        etc,
        joins,
        volumes,
        cgroups_path: &Engine::cgroups_path(id),
        host_rlimits: &HostLimits::current(req),
        userns,
    })?)
}

/// The container's image config and its layers (overlay lowerdirs, top first). The image was
/// resolved at create: its config blob, named by the image ID, gives the layers, with no scan
/// of the store's index.
pub fn image_of(engine: &Engine, record: &Record) -> Result<(ImageConfiguration, Vec<PathBuf>)> {
    image_in(&engine.images()?, record)
}

/// [`image_of`] in a store already open.
fn image_in(
    store: &berth_image::store::Store,
    record: &Record,
) -> Result<(ImageConfiguration, Vec<PathBuf>)> {
    let config = config_in(store, record)?;
    let layers = layers_in(store, &record.image_id, &config, record.init_layer)?;
    Ok((config, layers))
}

/// The `config` section of the container's image (what inspect merges into the request, the
/// stop signal `kill` looks for); None when it cannot be read (an image removed with --force):
/// the request alone then.
pub fn image_config(engine: &Engine, record: &Record) -> Option<oci_spec::image::Config> {
    let store = engine.images().ok()?;
    config_in(&store, record).ok()?.config().clone()
}

/// The config blob of the image the container was created from, named by its ID.
fn config_in(store: &berth_image::store::Store, record: &Record) -> Result<ImageConfiguration> {
    let image_id = berth_image::digest::parse_digest(&record.image_id)?;
    serde_json::from_slice(&store.read_blob(&image_id)?)
        .map_err(|e| Error::Invalid(format!("image {}: config: {e}", record.image_id)))
}

/// The layers of the image `image_id` whose config is `config`, top first.
pub(crate) fn layers_of(
    engine: &Engine,
    image_id: &str,
    config: &ImageConfiguration,
) -> Result<Vec<PathBuf>> {
    layers_in(&engine.images()?, image_id, config, false)
}

/// [`layers_of`] in a store already open, the image's init layer (`init_layer`) above them
/// when the container has it ([`init_layer_for`]).
fn layers_in(
    store: &berth_image::store::Store,
    image_id: &str,
    config: &ImageConfiguration,
    init_layer: bool,
) -> Result<Vec<PathBuf>> {
    let image_id = berth_image::digest::parse_digest(image_id)?;
    let mut layers = store.layers_of(&image_id, &diff_ids(config)?)?;
    // The store keeps an image's init layer as long as the image; if it went all the same (by
    // hand), the root mounts without it where overlay allows (its `index` feature would not).
    if init_layer {
        if let InitLayer::Layer(dir) = store.init_layer(&image_id) {
            layers.insert(0, dir);
        }
    }
    Ok(layers)
}

/// At create: whether the container `id` mounts its image's init layer above the image's
/// layers, for good (`Record::init_layer`). Every mount of a container's root stacks the same
/// layers over its upper directory: overlay's `index` feature refuses an upper directory
/// whose first lower layer changed, and a stopped container's root (cp, export, commit's
/// base) is the one it ran on. Only once the image's is known, and only where the mount's
/// options still fit their page with it (an image of many layers).
pub(crate) fn init_layer_for(engine: &Engine, id: &str, image: &ImageRef<'_>) -> Result<bool> {
    let store = engine.images()?;
    let image_id = berth_image::digest::parse_digest(&image.id)?;
    let InitLayer::Layer(init) = store.init_layer(&image_id) else {
        return Ok(false);
    };
    // Measured on the paths alone: the start checks the layers are there.
    let mut layers = store.lowerdirs(&diff_ids(image.config)?);
    layers.insert(0, init);
    let dir = engine.containers.dir(id);
    let fits =
        berth_image::snapshot::overlay_mount_data(&layers, &dir.join("upper"), &dir.join("work"));
    Ok(fits.is_ok())
}

/// The image's layer diff IDs, bottom first.
fn diff_ids(config: &ImageConfiguration) -> Result<Vec<oci_spec::image::Digest>> {
    Ok(config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| berth_image::digest::parse_digest(d))
        .collect::<berth_image::Result<Vec<_>>>()?)
}

/// Whether a container's root is synced to disk when it is unmounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// As Docker's: the unmount syncs the data root's filesystem (overlay's `syncfs` of its
    /// upper layer), so what the container wrote survives a crash.
    Synced,
    /// overlay's `volatile`: no sync at the unmount, nor for the container's `fsync`s. For
    /// roots that a crash would lose anyway (`--rm`, a root mounted only to be read): on a
    /// journaled filesystem each synced unmount commits the journal, ~250 KiB written and a
    /// device flush per `run --rm`.
    Volatile,
}

/// Mounts the image's layers at `root` as an overlay with the container's own upper and work
/// directories (`<dir>/upper`, `<dir>/work`), replacing a stale mount there. With the map of a
/// user namespace of the container's own, the layers are idmapped through it (`idmap`).
pub fn mount_overlay(
    dir: &Path,
    root: &Path,
    layers: &[PathBuf],
    userns: Option<IdMap>,
    durable: Durability,
) -> Result<()> {
    let upper = dir.join("upper");
    let work = dir.join("work");
    for d in [root, &upper, &work] {
        fs::create_dir_all(d).map_err(Error::io("create", d))?;
    }
    // A volatile mount leaves this behind, and overlay's documentation says a later mount of
    // the same work directory is refused while it is there (a root mounted volatile to be
    // read, then started; this kernel, 6.18, mounts it all the same).
    allow_remount(&work);
    // A monitor killed before it unmounted leaves the old mount: replace it.
    let _ = nix::mount::umount2(root, MntFlags::MNT_DETACH);
    let (lower, _view) = match userns {
        Some(map) => crate::idmap::layers(dir, layers, map)?,
        None => (layers.to_vec(), None),
    };
    let data = berth_image::snapshot::overlay_mount_data(&lower, &upper, &work)?;
    if crate::rootless::fuse::forced() && berth_sys::rootless::is_rootless() {
        return crate::rootless::fuse::mount(root, &data);
    }
    let volatile = format!("{data},volatile");
    let mount = |data: &str| {
        nix::mount::mount(
            Some("overlay"),
            root,
            Some("overlay"),
            MsFlags::empty(),
            Some(data),
        )
    };
    let mut mounted = match durable {
        Durability::Volatile => mount(&volatile),
        Durability::Synced => mount(&data),
    };
    // A kernel before 5.10 knows no `volatile`: synced, as Docker's (the refused mount left
    // nothing in `work`).
    if durable == Durability::Volatile && mounted == Err(nix::errno::Errno::EINVAL) {
        mounted = mount(&data);
    }
    // Refused in the user's namespace (not the data: that is berth's own): fuse-overlayfs.
    if let Err(nix::errno::Errno::EPERM | nix::errno::Errno::EINVAL | nix::errno::Errno::ENODEV) =
        mounted
    {
        if berth_sys::rootless::is_rootless() {
            return crate::rootless::fuse::mount(root, &data);
        }
    }
    mounted.map_err(|e| Error::Io {
        step: "mount overlay (the container's root) at",
        path: root.to_path_buf(),
        source: e.into(),
    })
}

/// Removes what a `volatile` mount left in `work` (`work/incompat/volatile`), which makes
/// overlay refuse the next mount of it.
fn allow_remount(work: &Path) {
    let incompat = work.join("work").join("incompat");
    if incompat.symlink_metadata().is_ok() {
        let _ = fs::remove_dir_all(&incompat);
    }
}

/// Docker makes a missing working directory (`-w`, WORKDIR); resolved inside the root, so a
/// symlink in the image cannot point it outside. With a user namespace of the container's own,
/// the directories made here are its root's, as Docker makes them with userns-remap (made as
/// the host's root, they would be nobody's in the container).
fn ensure_cwd(root: &Path, spec: &oci_spec::runtime::Spec, userns: Option<IdMap>) -> Result<()> {
    use berth_runtime::rootfs::resolve;
    use std::os::fd::{AsFd, AsRawFd};
    let Some(cwd) = spec.process().as_ref().map(|p| p.cwd().clone()) else {
        return Ok(());
    };
    let dir = fs::File::open(root).map_err(Error::io("open", root))?;
    let exists = |p: &Path| resolve::open(dir.as_fd(), p, nix::fcntl::OFlag::O_PATH).is_ok();
    // The working directory and each directory above it, the root's first.
    let mut paths = Vec::new();
    let mut at = PathBuf::from("/");
    for c in cwd.components() {
        if let std::path::Component::Normal(name) = c {
            at.push(name);
            paths.push(at.clone());
        }
    }
    let made = match paths.iter().position(|p| !exists(p)) {
        Some(first) => &paths[first..],
        None => return Ok(()),
    };
    resolve::create(dir.as_fd(), &cwd, resolve::Leaf::Dir)
        .map_err(Error::io("create the working directory", &cwd))?;
    let Some(owner) = userns.and_then(|m| m.host(0)) else {
        return Ok(());
    };
    for path in made {
        let give = |e| Error::io("give the container's root the directory", path)(e);
        let fd = resolve::open(dir.as_fd(), path, nix::fcntl::OFlag::O_PATH).map_err(give)?;
        let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
        std::os::unix::fs::chown(&proc, Some(owner), Some(owner)).map_err(give)?;
    }
    Ok(())
}

/// With a private user namespace the container's root may not be able to create a mount point
/// where the image has none (under a directory of a user it has not mapped, or a read-only
/// root): make every mount point now, as the host's root, inside the root (no symlink followed
/// out of it). The runtime mounts over them.
fn mount_points(root: &Path, spec: &oci_spec::runtime::Spec) -> Result<()> {
    use berth_runtime::rootfs::resolve::{create, Leaf};
    use std::os::fd::AsFd;
    let dir = fs::File::open(root).map_err(Error::io("open", root))?;
    for m in spec.mounts().iter().flatten() {
        let is_file = m
            .source()
            .as_ref()
            .is_some_and(|s| fs::metadata(s).is_ok_and(|md| !md.is_dir()));
        let leaf = if is_file { Leaf::File } else { Leaf::Dir };
        create(dir.as_fd(), m.destination(), leaf)
            .map(drop)
            .map_err(Error::io("create the mount point", m.destination()))?;
    }
    Ok(())
}

/// Unmounts the container's root, its /dev/shm and its idmapped volumes; what is not mounted
/// is fine.
pub fn teardown(dir: &Path) -> Result<()> {
    crate::idmap::release_volumes(dir);
    let mut result = Ok(());
    // /dev/shm's mount point goes too (the root's stays, the record's): nothing of a
    // shareable tmpfs is left to be taken for one.
    for (path, step, gone) in [
        (rootfs(dir), "unmount the container's root", false),
        (dir.join("shm"), "unmount the container's /dev/shm", true),
    ] {
        match nix::mount::umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {
                if gone {
                    let _ = fs::remove_dir(&path);
                }
            }
            Err(e) => {
                result = Err(Error::Io {
                    step,
                    path,
                    source: e.into(),
                })
            }
        }
    }
    result
}

/// Docker's "shareable" IPC: a shareable namespace gets its /dev/shm from a tmpfs the engine
/// mounts in the host's mount namespace (`<dir>/shm`), so `--ipc container:<it>` can bind the
/// same tmpfs — a mount inside another container's mount namespace cannot be bound (EINVAL).
/// A private one's is the spec's own tmpfs (none with `none`). Joining a container that has no
/// such tmpfs is refused as Docker refuses it ([`donor_shm`]).
fn shared_shm(
    engine: &Engine,
    record: &Record,
    dir: &Path,
    spec: &mut oci_spec::runtime::Spec,
) -> Result<()> {
    let source = match &record.request.ipc {
        NsMode::Host => return Ok(()),
        NsMode::Private if record.request.ipc_shm != IpcShm::Shareable => return Ok(()),
        NsMode::Private => {
            let shm = dir.join("shm");
            fs::create_dir_all(&shm).map_err(Error::io("create", &shm))?;
            let _ = nix::mount::umount2(&shm, MntFlags::MNT_DETACH);
            let size = format!(
                "mode=1777,size={}",
                record.request.shm_size.unwrap_or(64 << 20)
            );
            nix::mount::mount(
                Some("shm"),
                &shm,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some(size.as_str()),
            )
            .map_err(|e| Error::Io {
                step: "mount the container's /dev/shm at",
                path: shm.clone(),
                source: e.into(),
            })?;
            shm
        }
        NsMode::Container(other) => donor_shm(engine, other, other, 2)?,
    };
    let Some(mounts) = spec.mounts().clone() else {
        return Ok(());
    };
    let mounts = mounts
        .into_iter()
        .map(|m| {
            if m.destination() != Path::new("/dev/shm") {
                return m;
            }
            let mut bind = m.clone();
            bind.set_typ(Some("bind".into()));
            bind.set_source(Some(source.clone()));
            bind.set_options(Some(vec!["rbind".into(), "rprivate".into()]));
            bind
        })
        .collect();
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// The /dev/shm a container joining `key`'s IPC namespace binds, found as Docker finds the
/// donor's ShmPath: the host's for a donor of `--ipc host`, its own donor's for one that joined
/// another's (up to `hops` deep), else its host tmpfs while mounted (a shareable container, or
/// one an older berth started: the directory alone, left unmounted, shares nothing). Refused in
/// Docker's words otherwise; `asked` is the name the request gave.
fn donor_shm(engine: &Engine, asked: &str, key: &str, hops: u8) -> Result<PathBuf> {
    let target = engine.containers.find(key)?;
    match &target.request.ipc {
        NsMode::Host => return Ok(PathBuf::from("/dev/shm")),
        NsMode::Container(next) if hops > 0 => return donor_shm(engine, asked, next, hops - 1),
        _ => {}
    }
    let shm = engine.containers.dir(&target.id).join("shm");
    if crate::leftovers::is_mount_point(&shm) {
        return Ok(shm);
    }
    Err(Error::Invalid(format!(
        "container {asked}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
    )))
}

/// After the network is attached: the container's address in /etc/hosts and, on a user
/// network, its DNS server in /etc/resolv.conf. The files are rewritten in place, so the bind
/// mounts over the container's /etc keep showing them.
pub fn network_etc_files(
    dir: &Path,
    record: &Record,
    add_hosts: &[String],
    att: &berth_net::Attachment,
) -> Result<()> {
    let req = &record.request;
    let hosts = dir.join("hosts");
    let text = spec::hosts_file(
        &record.hostname,
        att.ip.map(std::net::IpAddr::V4),
        add_hosts,
    )?;
    // Rewritten only when it changes (no address: `--network none`): ext4 writes back a file
    // truncated and rewritten as it is closed.
    if fs::read_to_string(&hosts).ok().as_deref() != Some(text.as_str()) {
        fs::write(&hosts, text).map_err(Error::io("write", &hosts))?;
    }
    if att.dns.is_some() && req.dns.is_empty() {
        let resolv = dir.join("resolv.conf");
        fs::write(&resolv, berth_net::dns::resolv_conf(att))
            .map_err(Error::io("write", &resolv))?;
    }
    Ok(())
}

/// Where the container's /etc/hostname, /etc/hosts and /etc/resolv.conf live on the host.
fn etc_files(dir: &Path) -> EtcFiles {
    EtcFiles {
        hostname: dir.join("hostname"),
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
    }
}

fn write_etc_files(dir: &Path, record: &Record, add_hosts: &[String]) -> Result<EtcFiles> {
    let req = &record.request;
    let etc = etc_files(dir);
    let write = |path: &Path, text: String| fs::write(path, text).map_err(Error::io("write", path));
    write(&etc.hostname, format!("{}\n", record.hostname))?;
    let ip = record
        .network
        .as_ref()
        .and_then(|n| n.ip)
        .map(std::net::IpAddr::V4);
    write(
        &etc.hosts,
        spec::hosts_file(&record.hostname, ip, add_hosts)?,
    )?;
    // With a local stub (systemd-resolved's 127.0.0.53) the real upstream servers are in
    // resolved's own file.
    let etc_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolved = fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
    let host = spec::pick_host_resolv(&etc_resolv, resolved.as_deref());
    write(
        &etc.resolv_conf,
        spec::resolv_conf(host, &req.dns, &req.dns_search, &req.dns_options),
    )?;
    Ok(etc)
}

/// Docker makes the missing host directory of a `-v /src:/dst` when the container starts (a
/// `--mount` source had to exist when it was parsed).
fn bind_sources(mounts: &[MountRequest]) -> Result<()> {
    for m in mounts.iter().filter(|m| m.kind == "bind") {
        let src = Path::new(&m.source);
        if fs::symlink_metadata(src).is_err() {
            fs::create_dir_all(src).map_err(Error::io("create the bind mount source", src))?;
        }
    }
    Ok(())
}

/// Named and anonymous volumes: `<root>/volumes/<name>/_data` (made at create, or here for a
/// container created before that; with the driver's options mounted on it for container
/// `id`), an empty one first filled from the image's directory at its mount point (Docker's
/// copy-up) unless the mount says `nocopy`. With a user namespace of the container's own, each
/// is mounted idmapped for it (`idmap::volume`) and that view is what it gets.
fn volumes(
    engine: &Engine,
    id: &str,
    mounts: &[MountRequest],
    rootfs: &Path,
    userns: Option<IdMap>,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    let cdir = engine.containers.dir(id);
    for m in mounts.iter().filter(|m| m.kind == "volume") {
        let data = crate::volumes::ensure(engine, &m.source)?;
        crate::volumes::local::acquire(engine, &m.source, id)?;
        let view = match userns {
            Some(map) => crate::idmap::volume(&cdir, &m.source, &data, map)?,
            None => None,
        };
        if !m.options.iter().any(|o| o == "nocopy") {
            let shifted = userns.filter(|_| view.is_some());
            crate::copy_up::populate_as(rootfs, &m.target, &data, shifted)?;
        }
        out.insert(m.source.clone(), view.unwrap_or(data));
    }
    Ok(out)
}

/// `container:<name>` namespaces: the other container's init's namespace files. Only a start
/// needs that container `running`; at create it must exist.
fn joins(engine: &Engine, req: &RunRequest, running: bool) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for (kind, mode) in [
        ("pid", &req.pid),
        ("ipc", &req.ipc),
        ("uts", &req.uts),
        ("user", &req.userns),
        ("cgroup", &req.cgroupns),
        ("network", &req.netns),
        ("time", &req.timens),
    ] {
        let NsMode::Container(other) = mode else {
            continue;
        };
        let target = engine.containers.find(other)?;
        if running
            && (target.state.status != Status::Running
                || !crate::records::alive(target.state.pid, target.state.pid_start))
        {
            return Err(Error::state(
                &target.id,
                format!("is not running: cannot join its {kind} namespace"),
            ));
        }
        let file = if kind == "network" { "net" } else { kind };
        out.insert(
            kind.to_string(),
            PathBuf::from(format!("/proc/{}/ns/{file}", target.state.pid)),
        );
    }
    Ok(out)
}
