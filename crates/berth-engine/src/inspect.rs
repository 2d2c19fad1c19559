//! `inspect` of a container: Docker's JSON shape (`Id`, `Name`, `State`, `Config`,
//! `HostConfig`, `Mounts`, `NetworkSettings`, ...) from the record and its bundle.

use berth_net::Attachment;
use serde_json::{json, Value};

use crate::engine::Engine;
use crate::records::{Record, Status};
use crate::request::{NsMode, RestartPolicy};

fn ns(mode: &NsMode, private: &str) -> String {
    match mode {
        NsMode::Private => private.to_string(),
        NsMode::Host => "host".into(),
        NsMode::Container(c) => format!("container:{c}"),
    }
}

/// Block device limits as Docker's HostConfig lists them: `[{"Path": ..., <value>: n}]`.
fn device_limits(limits: &[crate::request::DeviceLimit], value: &str) -> Value {
    limits
        .iter()
        .map(|l| json!({"Path": l.path, value: l.value}))
        .collect()
}

/// `--userns` as it was given: host, private, auto, auto:size=N, container:<id>.
fn userns_mode(req: &crate::request::RunRequest) -> String {
    match (&req.userns, req.userns_auto) {
        (NsMode::Private, Some(0)) => "auto".into(),
        (NsMode::Private, Some(n)) => format!("auto:size={n}"),
        (mode, _) => ns(mode, "private"),
    }
}

/// The process the container runs: the image's Entrypoint and Cmd merged with the request's,
/// as Docker shows it from create on (the runtime's process.args are made the same way;
/// `--init`'s reaper is not among them).
pub fn command(engine: &Engine, record: &Record) -> Vec<String> {
    command_with(record, crate::bundle::image_config(engine, record).as_ref())
}

/// [`command`], of the image's config already read (None when it cannot be read: the request's
/// alone then).
fn command_with(record: &Record, image: Option<&oci_spec::image::Config>) -> Vec<String> {
    crate::spec::process::args(image, &record.request)
        .unwrap_or_else(|_| record.request.cmd.clone())
}

/// Docker's `Mounts`: a volume's source is its `_data`, and its driver is named.
pub fn mounts(engine: &Engine, record: &Record) -> Vec<Value> {
    record
        .request
        .mounts
        .iter()
        .map(|m| {
            let source = if m.kind == "volume" {
                engine.volumes_dir().join(&m.source).join("_data").display().to_string()
            } else {
                m.source.clone()
            };
            let mut mount = json!({
                "Type": m.kind, "Name": if m.kind == "volume" { m.source.as_str() } else { "" },
                "Source": source, "Destination": m.target, "Mode": if m.read_only { "ro" } else { "" },
                "RW": !m.read_only, "Propagation": m.options.first().cloned().unwrap_or_default(),
            });
            if m.kind == "volume" {
                mount["Driver"] = "local".into();
            }
            mount
        })
        .collect()
}

pub fn container(engine: &Engine, record: &Record) -> Value {
    let req = &record.request;
    let st = &record.state;
    let dir = engine.containers.dir(&record.id);
    let image = crate::bundle::image_config(engine, record);
    let args = command_with(record, image.as_ref());
    let shown = crate::spec::process::shown(image.as_ref(), req);
    let restart = match &req.restart {
        RestartPolicy::No => json!({"Name": "no", "MaximumRetryCount": 0}),
        RestartPolicy::OnFailure { max_retries } => {
            json!({"Name": "on-failure", "MaximumRetryCount": max_retries})
        }
        RestartPolicy::Always => json!({"Name": "always", "MaximumRetryCount": 0}),
        RestartPolicy::UnlessStopped => json!({"Name": "unless-stopped", "MaximumRetryCount": 0}),
    };
    let mounts = mounts(engine, record);
    let network = record.network.as_ref();
    let text = |v: Option<String>| v.unwrap_or_default();
    let ip = text(network.and_then(|n| n.ip).map(|ip| ip.to_string()));
    let running = st.status.is_live();
    let mut v = json!({
        "Id": record.id,
        "Created": record.created,
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": st.status.as_str(),
            "Running": running && st.status != Status::Restarting,
            "Paused": st.status == Status::Paused,
            "Restarting": st.status == Status::Restarting,
            "OOMKilled": st.oom_killed,
            "Dead": st.status == Status::Dead,
            "Pid": if running { st.pid } else { 0 },
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": empty_time(&st.started_at),
            "FinishedAt": empty_time(&st.finished_at),
        },
        "Image": record.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": dir.join(format!("{}-json.log", record.id)),
        "Name": format!("/{}", record.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": {
            "AutoRemove": req.auto_remove,
            "Binds": req.mounts.iter().filter(|m| m.kind == "bind")
                .map(|m| format!("{}:{}{}", m.source, m.target, if m.read_only { ":ro" } else { "" }))
                .collect::<Vec<_>>(),
            "NetworkMode": if req.netns == NsMode::Private { req.network.clone() } else { ns(&req.netns, "") },
            "PidMode": ns(&req.pid, ""),
            "IpcMode": ns(&req.ipc, req.ipc_shm.name()),
            "UTSMode": ns(&req.uts, ""),
            "UsernsMode": userns_mode(req),
            // podman's: the container's ids as "container:host:count".
            "IDMappings": crate::userns::of(record).map(|m| {
                let map = [format!("0:{}:{}", m.host_id, m.size)];
                json!({"UidMap": map, "GidMap": map})
            }),
            "CgroupnsMode": ns(&req.cgroupns, "private"),
            "RestartPolicy": restart,
            "Privileged": req.privileged,
            "ReadonlyRootfs": req.read_only,
            "CapAdd": req.cap_add, "CapDrop": req.cap_drop,
            "SecurityOpt": if req.no_new_privileges { vec!["no-new-privileges"] } else { vec![] },
            "Memory": req.memory.unwrap_or(0),
            // As Docker records it: twice the memory when only --memory was given.
            "MemorySwap": req.memory_swap.or(req.memory.map(|m| m.saturating_mul(2))).unwrap_or(0),
            "NanoCpus": req.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            "CpuShares": req.cpu_shares.unwrap_or(0),
            "CpusetCpus": req.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": req.cpuset_mems.clone().unwrap_or_default(),
            "CpuPeriod": req.cpu_period.unwrap_or(0),
            "CpuQuota": req.cpu_quota.unwrap_or(0),
            "MemoryReservation": req.memory_reservation.unwrap_or(0),
            "BlkioWeight": req.blkio_weight.unwrap_or(0),
            "MemorySwappiness": req.memory_swappiness,
            "BlkioWeightDevice": device_limits(&req.blkio_weight_device, "Weight"),
            "BlkioDeviceReadBps": device_limits(&req.device_read_bps, "Rate"),
            "BlkioDeviceWriteBps": device_limits(&req.device_write_bps, "Rate"),
            "BlkioDeviceReadIOps": device_limits(&req.device_read_iops, "Rate"),
            "BlkioDeviceWriteIOps": device_limits(&req.device_write_iops, "Rate"),
            // null when none, as Docker's nil list.
            "DeviceCgroupRules": (!req.device_cgroup_rules.is_empty()).then_some(&req.device_cgroup_rules),
            "OomKillDisable": req.oom_kill_disable,
            "PidsLimit": req.pids_limit,
            "OomScoreAdj": req.oom_score_adj.unwrap_or(0),
            "ShmSize": req.shm_size.unwrap_or(64 << 20),
            "Init": req.init,
            "LogConfig": {"Type": req.log_driver, "Config": req.log_opts},
            "Sysctls": req.sysctls,
            "ExtraHosts": req.add_hosts,
            "Dns": req.dns,
            "Ulimits": req.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
        },
        "Mounts": mounts,
        "Config": {
            "Hostname": record.hostname,
            "Domainname": req.domainname.clone().unwrap_or_default(),
            "User": shown.user,
            "AttachStdin": req.interactive && !req.detach,
            "AttachStdout": !req.detach,
            "AttachStderr": !req.detach,
            "Tty": req.tty,
            "OpenStdin": req.interactive,
            "Env": shown.env,
            "Cmd": shown.cmd,
            "Image": record.image,
            "WorkingDir": shown.working_dir,
            "Entrypoint": shown.entrypoint,
            "Labels": shown.labels,
            "StopSignal": shown.stop_signal.unwrap_or_else(|| "SIGTERM".into()),
            "StopTimeout": req.stop_timeout,
        },
        "NetworkSettings": {
            "IPAddress": ip,
            "Gateway": text(network.and_then(|n| n.gateway).map(|g| g.to_string())),
            "MacAddress": text(network.and_then(|n| n.mac.clone())),
            "Ports": crate::ports::settings_json(record),
            "Networks": network_entries(record),
            "SandboxKey": if running && st.pid > 0 { format!("/proc/{}/ns/net", st.pid) } else { String::new() },
        },
    });
    // Docker's `omitempty`: no Annotations unless some were given.
    if !req.annotations.is_empty() {
        v["HostConfig"]["Annotations"] = json!(req.annotations);
    }
    more_fields(&mut v, record);
    v
}

/// Docker's fields that berth keeps no state for, or reads straight from the request: what
/// the docker CLI's templates, compose and docker-py find in a daemon's answer.
fn more_fields(v: &mut Value, record: &Record) {
    let req = &record.request;
    let anonymous = req
        .mounts
        .iter()
        .filter(|m| record.anonymous_volumes.contains(&m.source));
    let volumes: serde_json::Map<String, Value> =
        anonymous.map(|m| (m.target.clone(), json!({}))).collect();
    let tmpfs: serde_json::Map<String, Value> = req
        .mounts
        .iter()
        .filter(|m| m.kind == "tmpfs")
        .map(|m| (m.target.clone(), json!(m.options.join(","))))
        .collect();
    let devices: Vec<Value> = req
        .devices
        .iter()
        .map(|d| {
            json!({"PathOnHost": d.host_path, "PathInContainer": d.container_path,
                        "CgroupPermissions": d.permissions})
        })
        .collect();
    let host = &mut v["HostConfig"];
    host["PortBindings"] = crate::ports::bindings_json(req);
    host["PublishAllPorts"] = req.publish_all.into();
    host["DnsSearch"] = json!(req.dns_search);
    host["DnsOptions"] = json!(req.dns_options);
    host["GroupAdd"] = json!(req.group_add);
    host["Tmpfs"] = Value::Object(tmpfs);
    host["Devices"] = json!(devices);
    host["VolumesFrom"] = json!(req.volumes_from);
    host["Links"] = Value::Null;
    host["CgroupParent"] = "".into();
    v["Config"]["ExposedPorts"] = crate::ports::exposed_json(record);
    v["Config"]["Volumes"] = Value::Object(volumes);
    if let Some(h) = &record.state.health {
        v["State"]["Health"] = json!(h);
    }
    if let Some(h) = &req.healthcheck {
        v["Config"]["Healthcheck"] = json!(h);
    }
    if !req.shell.is_empty() {
        v["Config"]["Shell"] = json!(req.shell);
    }
    v["ExecIDs"] = Value::Null;
    v["MountLabel"] = "".into();
    v["ProcessLabel"] = "".into();
    v["AppArmorProfile"] = "".into();
}

/// Docker's `NetworkSettings.Networks`: every network the container is configured to join
/// (its mode's unless disconnected, those it was connected to), with the live attachment's
/// address while it runs.
fn network_entries(record: &Record) -> Value {
    let req = &record.request;
    if req.netns != NsMode::Private || req.network.is_empty() {
        return json!({});
    }
    let entry = |aliases: &[String], a: Option<&Attachment>| {
        let text = |v: Option<String>| v.unwrap_or_default();
        json!({
            "Aliases": aliases,
            "IPAddress": text(a.and_then(|a| a.ip).map(|ip| ip.to_string())),
            "IPPrefixLen": a.map_or(0, |a| a.prefix),
            "Gateway": text(a.and_then(|a| a.gateway).map(|g| g.to_string())),
            "MacAddress": text(a.and_then(|a| a.mac.clone())),
            "NetworkID": a.map(|a| a.network_id.clone()).unwrap_or_default(),
        })
    };
    let mut m = serde_json::Map::new();
    // Live attachments first, by the name berth-net recorded (a record older than the
    // connected list has them only), then the configuration with its aliases.
    for j in &record.networks {
        m.insert(j.network.clone(), entry(&[], Some(j)));
    }
    let joined = |name: &str| record.networks.iter().find(|a| a.network == name);
    for ep in &req.connected {
        m.insert(ep.network.clone(), entry(&ep.aliases, joined(&ep.network)));
    }
    if !req.network_disconnected {
        // Connected again while running, it is among the joined ones.
        let live = record.network.as_ref().or_else(|| joined(&req.network));
        m.insert(req.network.clone(), entry(&req.network_aliases, live));
    }
    Value::Object(m)
}

/// Docker's `SizeRw` (what the container wrote: its upper directory) and `SizeRootFs` (that
/// and its image).
pub fn sizes(engine: &Engine, record: &Record) -> (u64, u64) {
    let rw = crate::volumes::disk_usage(&engine.containers.dir(&record.id).join("upper"));
    let image = engine.images().ok().and_then(|store| {
        let image = store.resolve(&record.image_id).ok()?;
        Some(image.size(&store))
    });
    (rw, rw + image.unwrap_or(0))
}

fn empty_time(t: &str) -> &str {
    if t.is_empty() {
        "0001-01-01T00:00:00Z"
    } else {
        t
    }
}
