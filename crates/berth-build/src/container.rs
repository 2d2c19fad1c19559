//! One RUN step's container, in-process through berth-runtime (no monitor): an overlay of the
//! layers so far with a fresh upper directory, a config.json made by the engine as for `berth
//! run` (Docker's capabilities, seccomp, masked paths, mounts), the build network, stdout and
//! stderr through a pipe to the caller, then wait, delete, detach, unmount. The upper directory
//! is the step's diff.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use berth_engine::request::{MountRequest, NsMode, RunRequest};
use berth_engine::spec::{self, EtcFiles};
use berth_sys::signal::SignalNumber;
use nix::mount::{MntFlags, MsFlags};
use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// The hostname of a step's container, as BuildKit names it.
const HOSTNAME: &str = "buildkitsandbox";

/// Where the step's container gets its network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// The default bridge, as `docker build` uses.
    Bridge,
    None,
    Host,
}

impl Network {
    pub fn parse(s: &str) -> Option<Network> {
        match s {
            "default" | "bridge" => Some(Network::Bridge),
            "none" => Some(Network::None),
            "host" => Some(Network::Host),
            _ => None,
        }
    }
}

/// What the step runs and how.
pub struct RunSpec {
    /// The container's id: the build's work directory's name and the step's number, so that
    /// the next build can tell the containers of a killed one.
    pub id: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: Network,
    /// RUN --mount and heredoc scripts, as `berth run` takes its `--mount`s.
    pub mounts: Vec<MountRequest>,
    /// The build's `--add-host`, `--shm-size`, `--ulimit`.
    pub options: crate::builder::StepOptions,
}

/// The step's directory: `rootfs` (the overlay), `upper`, `work`, and the /etc files.
pub struct StepDir {
    pub dir: PathBuf,
    mounted: bool,
}

impl StepDir {
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    /// Mounts `layers` (top first) with a new upper directory at `rootfs`.
    pub fn mount(dir: PathBuf, layers: &[PathBuf]) -> Result<StepDir> {
        let empty = dir.join("empty");
        for d in ["rootfs", "upper", "work", "empty"] {
            let p = dir.join(d);
            std::fs::create_dir_all(&p).map_err(Error::io("create", &p))?;
        }
        let mut step = StepDir {
            dir,
            mounted: false,
        };
        let lowers = if layers.is_empty() {
            vec![empty]
        } else {
            layers.to_vec()
        };
        let mut data = berth_image::snapshot::overlay_mount_data(
            &lowers,
            &step.upper(),
            &step.dir.join("work"),
        )?;
        // The upper directory becomes a layer as it is: no redirects or metadata-only copies.
        // In a rootless user namespace (userxattr) the kernel takes `nofollow`, which creates
        // no redirect either, and refuses `off`.
        data.push_str(if berth_sys::rootless::is_rootless() {
            ",redirect_dir=nofollow,metacopy=off"
        } else {
            ",redirect_dir=off,metacopy=off"
        });
        let root = step.rootfs();
        nix::mount::mount(
            Some("overlay"),
            &root,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| Error::io("mount the step's overlay at", &root)(e.into()))?;
        step.mounted = true;
        Ok(step)
    }

    /// Unmounts the overlay; the upper directory stays for the layer.
    pub fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            let root = self.rootfs();
            nix::mount::umount2(&root, MntFlags::empty())
                .map_err(|e| Error::io("unmount", &root)(e.into()))?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for StepDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.rootfs(), MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the step in `step`'s root; `output` gets what it prints. Its exit code.
pub fn run(
    engine: &berth_engine::Engine,
    step: &StepDir,
    spec: &RunSpec,
    cancel: Option<BorrowedFd<'_>>,
    output: &mut dyn FnMut(&[u8]),
) -> Result<i32> {
    let id = spec.id.clone();
    let rootfs = step.rootfs();
    let add_hosts = berth_engine::network::resolve_extra_hosts(engine, &spec.options.add_hosts)?;
    let etc = write_etc(&step.dir, &add_hosts)?;
    let config = step_spec(spec, &rootfs, &etc, &id)?;
    let stubs = crate::stubs::Stubs::find(&rootfs, &config);
    let data =
        serde_json::to_vec(&config).map_err(|e| Error::Invalid(format!("config.json: {e}")))?;
    let bundle = step.dir.join("config.json");
    std::fs::write(&bundle, data).map_err(Error::io("write", &bundle))?;
    wait_single_threaded();
    let created = create_with_pipe(engine, &id, &step.dir);
    let result = created.and_then(|(reader, created)| {
        let attached = attach(engine, &id, created.pid, spec.network)?;
        let started = berth_runtime::container::start(&engine.runtime, &id).map_err(Error::from);
        let cancelled = started.is_ok() && relay(engine, &id, reader, output, cancel);
        let code = started
            .and_then(|()| berth_runtime::container::wait_exit(created.pid).map_err(Error::from))
            .and_then(|code| {
                if cancelled {
                    Err(Error::Cancelled)
                } else {
                    Ok(code)
                }
            });
        if let Some((store, att)) = attached {
            let _ = store.detach(&att);
        } else if berth_sys::rootless::is_rootless() {
            berth_engine::rootless::slirp::detach(&id);
        }
        code
    });
    let deleted = match berth_runtime::container::delete(&engine.runtime, &id, true) {
        Err(_) if result.is_err() => Ok(()),
        other => other,
    };
    stubs.remove(&rootfs);
    let code = result?;
    deleted?;
    Ok(code)
}

/// The pull of a base image may have used threads: the runtime forks, which needs them gone.
fn wait_single_threaded() {
    for _ in 0..200 {
        if berth_sys::process::thread_count().is_ok_and(|n| n == 1) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Creates the container with its stdout and stderr on a new pipe (the runtime hands the
/// caller's 0, 1, 2 to the container), stdin on /dev/null; our own stdio is back afterwards.
fn create_with_pipe(
    engine: &berth_engine::Engine,
    id: &str,
    bundle: &Path,
) -> Result<(std::fs::File, berth_runtime::process::parent::Created)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("pipe", bundle)(e.into()))?;
    let null = std::fs::File::open("/dev/null").map_err(Error::io("open", "/dev/null"))?;
    let saved: Vec<std::os::fd::OwnedFd> = [0, 1, 2]
        .iter()
        .map(|fd| {
            // SAFETY-free: a borrowed descriptor of our own stdio, cloned (F_DUPFD_CLOEXEC).
            let b = match fd {
                0 => std::io::stdin().as_fd().try_clone_to_owned(),
                1 => std::io::stdout().as_fd().try_clone_to_owned(),
                _ => std::io::stderr().as_fd().try_clone_to_owned(),
            };
            b.map_err(Error::io("duplicate our stdio", bundle))
        })
        .collect::<Result<_>>()?;
    let swap = |fds: [std::os::fd::BorrowedFd<'_>; 3]| {
        for (target, fd) in fds.into_iter().enumerate() {
            let _ = berth_sys::fd::dup_onto(fd, target as i32);
        }
    };
    swap([null.as_fd(), w.as_fd(), w.as_fd()]);
    let opts = berth_runtime::process::parent::CreateOptions {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        ..Default::default()
    };
    let created = berth_runtime::process::parent::create(&engine.runtime, opts);
    swap([saved[0].as_fd(), saved[1].as_fd(), saved[2].as_fd()]);
    drop(w);
    Ok((std::fs::File::from(r), created?))
}

/// Copies the step's output to `output` until the pipe closes. When `cancel` (the build's
/// signal descriptor) becomes readable, the step's processes are killed and the rest of their
/// output still read. Whether it was cancelled.
fn relay(
    engine: &berth_engine::Engine,
    id: &str,
    mut reader: std::fs::File,
    output: &mut dyn FnMut(&[u8]),
    cancel: Option<BorrowedFd<'_>>,
) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut buf = [0u8; 16384];
    let mut cancelled = false;
    loop {
        let (readable, signalled) = {
            let mut fds = vec![PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
            if let (Some(c), false) = (cancel, cancelled) {
                fds.push(PollFd::new(c, PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return cancelled,
                Ok(_) => {}
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), fds.get(1).is_some_and(ready))
        };
        if signalled {
            cancelled = true;
            let _ = berth_runtime::container::kill(&engine.runtime, id, SignalNumber::KILL, true);
        }
        if readable {
            match reader.read(&mut buf) {
                Ok(0) => return cancelled,
                Ok(n) => output(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return cancelled,
            }
        }
    }
}

/// The step's network: none for the host's, loopback only for `none`, the default bridge.
fn attach(
    engine: &berth_engine::Engine,
    id: &str,
    pid: i32,
    network: Network,
) -> Result<Option<(berth_net::NetStore, berth_net::Attachment)>> {
    let name = match network {
        Network::Host => return Ok(None),
        Network::None => "none",
        // Rootless: the default network is the step's own slirp4netns.
        Network::Bridge if berth_sys::rootless::is_rootless() => {
            berth_engine::rootless::slirp::attach(id, pid, &[])?;
            return Ok(None);
        }
        Network::Bridge => "bridge",
    };
    let store = berth_engine::network::store(engine)?;
    let req = berth_net::AttachRequest {
        container_id: id.to_string(),
        container_name: id.to_string(),
        hostname: HOSTNAME.into(),
        network: name.into(),
        netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
        ..Default::default()
    };
    let att = store.attach(&req)?;
    Ok(Some((store, att)))
}

/// /etc/hosts, /etc/resolv.conf and /etc/hostname for the step, bind-mounted as BuildKit does.
fn write_etc(dir: &Path, add_hosts: &[String]) -> Result<EtcFiles> {
    let etc = EtcFiles {
        hosts: dir.join("hosts"),
        hostname: dir.join("hostname"),
        resolv_conf: dir.join("resolv.conf"),
    };
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolved = std::fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
    let pick = spec::pick_host_resolv(&host_resolv, resolved.as_deref());
    let hosts =
        spec::hosts_file(HOSTNAME, None, add_hosts).map_err(|e| Error::Invalid(e.to_string()))?;
    for (path, content) in [
        (&etc.hosts, hosts),
        (&etc.resolv_conf, spec::resolv_conf(pick, &[], &[], &[])),
        (&etc.hostname, format!("{HOSTNAME}\n")),
    ] {
        std::fs::write(path, content).map_err(Error::io("write", path))?;
    }
    Ok(etc)
}

/// The step's config.json, made by the engine from a request as `berth run` makes a
/// container's: Docker's capabilities, seccomp profile, masked paths, mounts and rlimits.
fn step_spec(spec: &RunSpec, rootfs: &Path, etc: &EtcFiles, id: &str) -> Result<Spec> {
    let (netns, network) = match spec.network {
        Network::Host => (NsMode::Host, String::new()),
        Network::None => (NsMode::Private, "none".to_string()),
        Network::Bridge => (NsMode::Private, "bridge".to_string()),
    };
    let limits = &spec.options.limits;
    let request = RunRequest {
        cmd: spec.args.clone(),
        entrypoint: Some(vec![String::new()]),
        hostname: (netns == NsMode::Private).then(|| HOSTNAME.to_string()),
        env: spec.env.clone(),
        workdir: Some(spec.cwd.clone()).filter(|w| !w.is_empty()),
        user: Some(spec.user.clone()).filter(|u| !u.is_empty()),
        mounts: spec.mounts.clone(),
        userns: NsMode::Host,
        timens: NsMode::Host,
        netns,
        network,
        log_driver: "none".into(),
        shm_size: spec.options.shm_size,
        ulimits: spec.options.ulimits.clone(),
        memory: limits.memory,
        memory_swap: limits.memory_swap,
        cpu_shares: limits.cpu_shares,
        cpu_period: limits.cpu_period,
        cpu_quota: limits.cpu_quota,
        cpuset_cpus: limits.cpuset_cpus.clone(),
        cpuset_mems: limits.cpuset_mems.clone(),
        ..RunRequest::default()
    };
    let inputs = spec::SpecInputs {
        id,
        request: &request,
        image_config: &oci_spec::image::ImageConfiguration::default(),
        rootfs,
        etc,
        joins: &Default::default(),
        volumes: &Default::default(),
        cgroups_path: &berth_engine::Engine::cgroups_path(id),
        host_rlimits: &spec::HostLimits::current(&request),
        userns: None,
    };
    let built = spec::build(&inputs).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(built.spec)
}
