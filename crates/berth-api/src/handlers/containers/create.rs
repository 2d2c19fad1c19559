//! `POST /containers/create`: Docker's `ContainerCreate` body (Config, HostConfig,
//! NetworkingConfig) read into the engine's `RunRequest`, then the engine's create. Every field
//! may be null, as Go's clients send them; what berth cannot do is refused (400) rather than
//! dropped; its Healthcheck is merged with the image's by the engine's create. The image must
//! be local: a missing one is Docker's 404, on which the docker CLI pulls and asks again.

use std::sync::Arc;

use berth_engine::lifecycle::{self, ImageRef};
use berth_engine::options;
use berth_engine::request::{
    DeviceLimit, DeviceRequest, MountRequest, PortRequest, RunRequest, SeccompChoice, Ulimit,
};
use serde_json::json;

use super::body::{
    Body, Device, HostConfig, Mount, NetworkingConfig, PortBinding, Resources, RestartPolicy,
    ThrottleDevice, UlimitBody,
};
use super::State;
use crate::error::ApiError;
use crate::respond::{self, Reply};
use crate::router::Call;
use crate::version::ApiVersion;

/// `POST /containers/create?name=&platform=`: 201 `{"Id", "Warnings"}`.
pub async fn create(state: &Arc<State>, call: &mut Call) -> Reply {
    let name = call
        .query
        .get("name")
        .filter(|n| !n.is_empty())
        .map(String::from);
    let platform = call
        .query
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(String::from);
    let body: Body = call.json().await?;
    let mut req = request(body, call.version)?;
    req.name = name;
    req.platform = platform;
    let (id, warnings) = state
        .blocking(move |s| {
            let engine = &s.engine;
            lifecycle::validate(engine, &req)?;
            // Never pulled here: the client pulls (POST /images/create) on this 404.
            let image =
                berth_engine::images::local(engine, &req.image, req.platform.as_deref())?
                    .ok_or_else(|| ApiError::not_found(format!("No such image: {}", req.image)))?;
            let image = ImageRef::of(&image);
            let record = lifecycle::create(engine, req, &image)?;
            Ok((record.id, record.warnings))
        })
        .await?;
    // The engine's (what this host discards or ignores), as Docker's daemon answers them.
    respond::json(201, &json!({"Id": id, "Warnings": warnings}))
}

/// The body as the engine's request.
fn request(body: Body, version: ApiVersion) -> Result<RunRequest, ApiError> {
    let bad = ApiError::bad_request;
    let image = body.image.filter(|i| !i.is_empty()).ok_or_else(|| {
        bad("no image given: the body's Image names the image to create the container from")
    })?;
    let text = |v: Option<String>| v.filter(|s| !s.is_empty());
    let attached = [body.attach_stdin, body.attach_stdout, body.attach_stderr];
    let mut req = RunRequest {
        image,
        cmd: body.cmd.unwrap_or_default(),
        entrypoint: body.entrypoint,
        hostname: text(body.hostname),
        domainname: text(body.domainname),
        env: body.env.unwrap_or_default(),
        workdir: text(body.working_dir),
        user: text(body.user),
        tty: body.tty.unwrap_or(false),
        interactive: body.open_stdin.unwrap_or(false),
        detach: !attached.iter().any(|a| a.unwrap_or(false)),
        stop_signal: text(body.stop_signal),
        stop_timeout: body.stop_timeout,
        labels: body.labels.unwrap_or_default(),
        mac_address: text(body.mac_address),
        shell: body.shell.unwrap_or_default(),
        network: "bridge".into(),
        ..RunRequest::default()
    };
    req.healthcheck = match body.healthcheck.filter(|h| !h.is_null()) {
        Some(h) => Some(serde_json::from_value(h).map_err(|e| {
            ApiError::bad_request(format!("Healthcheck: {e}: give Test, Interval, Timeout, StartPeriod, StartInterval (nanoseconds) and Retries"))
        })?),
        None => None,
    };
    let host = body.host_config.unwrap_or_default();
    let mode = host.network_mode.clone().unwrap_or_default();
    host_config(&mut req, host, version)?;
    // The image's VOLUMEs and these become anonymous volumes where nothing else is mounted.
    for target in body.volumes.unwrap_or_default().into_keys() {
        if !req.mounts.iter().any(|m| m.target == target) {
            req.mounts.push(options::volume(&target)?);
        }
    }
    for key in body.exposed_ports.unwrap_or_default().into_keys() {
        let port = berth_engine::ports::key(&key)
            .map_err(|e| ApiError::bad_request(format!("ExposedPorts {key:?}: {e}")))?;
        req.exposed_ports.push(port);
    }
    endpoints(&mut req, &mode, body.networking_config.unwrap_or_default())?;
    Ok(req)
}

fn host_config(req: &mut RunRequest, h: HostConfig, version: ApiVersion) -> Result<(), ApiError> {
    options::Unused {
        runtime: h.runtime.as_deref(),
        isolation: h.isolation.as_deref(),
        storage_opt: h.storage_opt.as_ref(),
        cgroup_parent: h.resources.cgroup_parent.as_deref(),
        volume_driver: h.volume_driver.as_deref(),
        links: h.links.as_deref().unwrap_or_default(),
        realtime: h.resources.realtime(),
    }
    .refuse()?;
    options::network_mode(req, h.network_mode.as_deref().unwrap_or(""))?;
    for bind in h.binds.unwrap_or_default() {
        req.mounts.push(options::volume(&bind)?);
    }
    for m in h.mounts.unwrap_or_default() {
        req.mounts.push(mount(m)?);
    }
    for (path, opts) in h.tmpfs.unwrap_or_default() {
        let spec = if opts.is_empty() {
            path
        } else {
            format!("{path}:{opts}")
        };
        req.mounts.push(options::tmpfs(&spec)?);
    }
    req.volumes_from = h.volumes_from.unwrap_or_default();
    for (key, bindings) in h.port_bindings.unwrap_or_default() {
        for b in bindings.unwrap_or_default() {
            req.ports.push(port(&key, &b)?);
        }
    }
    req.publish_all = h.publish_all_ports.unwrap_or(false);
    if let Some(p) = &h.restart_policy {
        req.restart = restart_policy(p)?;
    }
    // Before 1.25 the client removed the container itself.
    req.auto_remove = h.auto_remove.unwrap_or(false) && version >= ApiVersion::new(1, 25);
    req.console_size = h
        .console_size
        .filter(|[rows, cols]| *rows > 0 && *cols > 0)
        .map(|[rows, cols]| (rows, cols));
    let mode = |flag, v: &Option<String>, host| options::ns_mode(flag, v.as_deref(), host);
    req.pid = mode("--pid", &h.pid_mode, false)?;
    (req.ipc, req.ipc_shm) = options::ipc_mode(h.ipc_mode.as_deref())?;
    req.uts = mode("--uts", &h.uts_mode, false)?;
    (req.userns, req.userns_auto) = berth_engine::userns::parse_mode(h.userns_mode.as_deref())?;
    req.userns_unset = h.userns_mode.as_deref().is_none_or(str::is_empty);
    req.cgroupns = mode("--cgroupns", &h.cgroupns_mode, false)?;
    req.cap_add = h.cap_add.unwrap_or_default();
    req.cap_drop = h.cap_drop.unwrap_or_default();
    req.privileged = h.privileged.unwrap_or(false);
    req.read_only = h.readonly_rootfs.unwrap_or(false);
    req.dns = h.dns.unwrap_or_default();
    req.dns_search = h.dns_search.unwrap_or_default();
    req.dns_options = h.dns_options.unwrap_or_default();
    req.add_hosts = h.extra_hosts.unwrap_or_default();
    req.group_add = h.group_add.unwrap_or_default();
    req.sysctls = h.sysctls.unwrap_or_default();
    req.annotations = h.annotations.unwrap_or_default();
    req.init = h.init.unwrap_or(false);
    req.oom_score_adj = h.oom_score_adj.filter(|a| *a != 0);
    req.shm_size = match h.shm_size {
        None | Some(0) => None,
        Some(n) => Some(u64::try_from(n).map_err(|_| {
            ApiError::bad_request(format!("ShmSize {n}: give a positive size in bytes"))
        })?),
    };
    security(req, &h.security_opt.unwrap_or_default())?;
    if let Some(log) = h.log_config {
        // Empty: the configuration's default, else json-file (chosen at create).
        req.log_driver = text_or(log.kind, "");
        req.log_opts = log.config.unwrap_or_default();
    }
    resources(req, h.resources)
}

fn text_or(v: Option<String>, default: &str) -> String {
    v.filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn resources(req: &mut RunRequest, r: Resources) -> Result<(), ApiError> {
    req.memory = r.memory.filter(|m| *m != 0);
    req.memory_swap = r.memory_swap.filter(|m| *m != 0);
    req.memory_reservation = r.memory_reservation.filter(|m| *m != 0);
    // -1 (the docker CLI's default) and null: the kernel's.
    req.memory_swappiness = r.memory_swappiness.filter(|s| *s != -1);
    req.oom_kill_disable = r.oom_kill_disable.unwrap_or(false);
    req.kernel_memory = r.kernel_memory;
    req.cpus = r.cpus()?;
    req.cpu_shares = r.cpu_shares()?;
    req.cpu_period = r.cpu_period()?;
    req.cpu_quota = r.cpu_quota.filter(|q| *q != 0);
    req.cpuset_cpus = r.cpuset_cpus.filter(|c| !c.is_empty());
    req.cpuset_mems = r.cpuset_mems.filter(|c| !c.is_empty());
    req.blkio_weight = r.blkio_weight.filter(|w| *w != 0);
    // 0 and below: no limit (Docker's reading).
    req.pids_limit = r.pids_limit.filter(|l| *l > 0);
    let limits = |list: Option<Vec<ThrottleDevice>>| {
        let limit = |d: ThrottleDevice| DeviceLimit {
            path: d.path,
            value: d.rate,
        };
        list.unwrap_or_default().into_iter().map(limit).collect()
    };
    req.device_read_bps = limits(r.blkio_device_read_bps);
    req.device_write_bps = limits(r.blkio_device_write_bps);
    req.device_read_iops = limits(r.blkio_device_read_iops);
    req.device_write_iops = limits(r.blkio_device_write_iops);
    req.blkio_weight_device = (r.blkio_weight_device.unwrap_or_default().into_iter())
        .map(|d| DeviceLimit {
            path: d.path,
            value: d.weight.into(),
        })
        .collect();
    req.device_cgroup_rules = r.device_cgroup_rules.unwrap_or_default();
    for d in r.devices.unwrap_or_default() {
        req.devices.push(device(d)?);
    }
    for u in r.ulimits.unwrap_or_default() {
        req.ulimits.push(ulimit(u)?);
    }
    Ok(())
}

/// `{"Name": "on-failure", "MaximumRetryCount": 3}` as the engine's policy.
pub(super) fn restart_policy(
    p: &RestartPolicy,
) -> Result<berth_engine::request::RestartPolicy, ApiError> {
    let name = p.name.as_deref().unwrap_or("");
    let spec = match p.maximum_retry_count {
        Some(n) if n < 0 => {
            return Err(ApiError::bad_request(format!(
                "invalid restart policy: MaximumRetryCount {n} must not be negative"
            )))
        }
        Some(n) if n > 0 && name == "on-failure" => format!("{name}:{n}"),
        Some(n) if n > 0 => {
            return Err(ApiError::bad_request(format!(
                "invalid restart policy: MaximumRetryCount {n} is for on-failure only, not {name:?}"
            )))
        }
        _ => name.to_string(),
    };
    Ok(options::restart(&spec)?)
}

/// A `PortBindings` entry: `"80/tcp": [{"HostIp": "", "HostPort": "8080"}]`; a HostPort
/// range (`8000-8010`) is where a free port is chosen at start.
fn port(key: &str, b: &PortBinding) -> Result<PortRequest, ApiError> {
    let bad = |why: String| ApiError::bad_request(format!("PortBindings {key:?}: {why}"));
    let port = berth_engine::ports::key(key).map_err(|e| bad(e.to_string()))?;
    if port.protocol == "sctp" {
        return Err(bad("berth publishes tcp and udp ports".into()));
    }
    let host_port = b.host_port.as_deref().unwrap_or("");
    let (host_port, host_port_end) =
        berth_engine::ports::host_port(host_port).map_err(|e| bad(e.to_string()))?;
    Ok(PortRequest {
        host_ip: b.host_ip.clone().unwrap_or_default(),
        host_port,
        host_port_end,
        container_port: port.port,
        protocol: port.protocol,
    })
}

/// A `Mounts` entry, checked as `--mount` is.
fn mount(m: Mount) -> Result<MountRequest, ApiError> {
    let kind = m.kind.unwrap_or_default();
    let mut out = MountRequest {
        kind: kind.clone(),
        source: m.source.unwrap_or_default(),
        target: m.target.unwrap_or_default(),
        read_only: m.read_only.unwrap_or(false),
        options: Vec::new(),
    };
    if let Some(p) = m
        .bind_options
        .and_then(|b| b.propagation)
        .filter(|p| !p.is_empty())
    {
        if !options::PROPAGATIONS.contains(&p.as_str()) {
            return Err(ApiError::bad_request(format!(
                "invalid mount config for type \"{kind}\": invalid propagation {p:?}"
            )));
        }
        out.options.push(p);
    }
    if let Some(v) = m.volume_options {
        // What berth would not do is refused, not dropped: a volume asked for as a tmpfs
        // must not silently be one on disk, nor a subpath the whole volume.
        let driver = v.driver_config.unwrap_or_default();
        let name = driver.name.unwrap_or_default();
        let opts = driver.options.unwrap_or_default();
        if !(name.is_empty() || name == "local") || !opts.is_empty() {
            return Err(ApiError::not_implemented(format!(
                "invalid mount config for type \"{kind}\": berth takes no VolumeOptions.DriverConfig \
                 here; create the volume with its driver options first (POST /volumes/create)"
            )));
        }
        if v.subpath.is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::not_implemented(format!(
                "invalid mount config for type \"{kind}\": VolumeOptions.Subpath is not supported"
            )));
        }
        if v.no_copy == Some(true) {
            out.options.push("nocopy".into());
        }
    }
    if let Some(t) = m.tmpfs_options {
        match t.size_bytes {
            None | Some(0) => {}
            Some(n) if n < 0 => {
                return Err(ApiError::bad_request(format!(
                    "invalid mount config for type \"{kind}\": SizeBytes {n} must not be negative"
                )))
            }
            Some(n) => out.options.push(format!("size={n}")),
        }
        if let Some(mode) = t.mode.filter(|m| *m != 0) {
            out.options.push(format!("mode={mode:o}"));
        }
    }
    options::check_mount(&out, &format!("invalid mount config for type \"{kind}\""))?;
    Ok(out)
}

fn device(d: Device) -> Result<DeviceRequest, ApiError> {
    let host = d.path_on_host.unwrap_or_default();
    let container = text_or(d.path_in_container, &host);
    let permissions = text_or(d.cgroup_permissions, "rwm");
    let valid = host.starts_with('/')
        && container.starts_with('/')
        && permissions.chars().all(|c| "rwm".contains(c));
    if !valid {
        return Err(ApiError::bad_request(format!(
            "Devices {host:?}: give absolute paths and permissions from rwm"
        )));
    }
    Ok(DeviceRequest {
        host_path: host,
        container_path: container,
        permissions,
    })
}

fn ulimit(u: UlimitBody) -> Result<Ulimit, ApiError> {
    let name = u.name.unwrap_or_default();
    // -1: unlimited.
    let limit = |v: Option<i64>| match v.unwrap_or(0) {
        -1 => Some(u64::MAX),
        n => u64::try_from(n).ok(),
    };
    match (limit(u.soft), limit(u.hard)) {
        (Some(soft), Some(hard)) if soft <= hard => Ok(Ulimit { name, soft, hard }),
        _ => Err(ApiError::bad_request(format!(
            "Ulimits {name:?}: the soft limit must be 0 to the hard limit, -1 for unlimited"
        ))),
    }
}

/// `SecurityOpt`: `no-new-privileges[:true|false]`, `seccomp=unconfined` or a profile's JSON
/// (the docker CLI sends the file's content), `apparmor=` and `label=` (no effect here).
fn security(req: &mut RunRequest, opts: &[String]) -> Result<(), ApiError> {
    for opt in opts {
        let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt, ""));
        match (key, value) {
            ("no-new-privileges", "" | "true") => req.no_new_privileges = true,
            ("no-new-privileges", "false") => req.no_new_privileges = false,
            ("seccomp", "unconfined") => req.seccomp = SeccompChoice::Unconfined,
            ("seccomp", profile) if profile.trim_start().starts_with('{') => {
                req.seccomp = SeccompChoice::Profile(profile.to_string())
            }
            ("apparmor" | "label", _) => {}
            _ => {
                let start: String = opt.chars().take(40).collect();
                return Err(ApiError::bad_request(format!(
                    "SecurityOpt {start:?}: berth knows seccomp=unconfined|<profile JSON> and no-new-privileges"
                )));
            }
        }
    }
    Ok(())
}

/// `NetworkingConfig.EndpointsConfig`: the aliases, address and MAC address on the network of
/// `NetworkMode` (berth joins one network at create; the others with network connect).
fn endpoints(req: &mut RunRequest, mode: &str, n: NetworkingConfig) -> Result<(), ApiError> {
    let default = ["", "default", "bridge"];
    for (name, endpoint) in n.endpoints_config.unwrap_or_default() {
        let ours = name == mode || (default.contains(&name.as_str()) && default.contains(&mode));
        if !ours {
            return Err(ApiError::bad_request(format!(
                "berth joins one network at create, the NetworkMode's ({mode}): connect the container to {name} after, with network connect"
            )));
        }
        let Some(e) = endpoint else { continue };
        req.network_aliases = e.aliases.unwrap_or_default();
        if let Some(ip) = e
            .ipam_config
            .and_then(|i| i.ipv4_address)
            .filter(|i| !i.is_empty())
        {
            req.ip = Some(ip);
        }
        if let Some(mac) = e.mac_address.filter(|m| !m.is_empty()) {
            req.mac_address = Some(mac);
        }
    }
    Ok(())
}
