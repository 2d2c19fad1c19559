//! What `berth run`/`create` ask for, after the command line was parsed and validated. The
//! record of a container keeps it, so `inspect` and `start` see exactly what was asked.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// How a namespace kind is set up (`--pid`, `--ipc`, `--uts`, `--userns`, `--cgroupns`,
/// `--network` for its namespace part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NsMode {
    /// A new namespace of the container's own (Docker's "private"; "" on the command line).
    #[default]
    Private,
    /// The host's namespace: none is created.
    Host,
    /// Another container's namespace (`container:<name|id>`); holds the id once resolved.
    Container(String),
}

/// What a private IPC namespace has at /dev/shm: the rest of Docker's `IpcMode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpcShm {
    /// "private" (Docker's default): a tmpfs mounted in the container's own mount namespace;
    /// no other container can join the namespace.
    #[default]
    Private,
    /// "shareable": a tmpfs the engine mounts on the host (`<dir>/shm`), which a container
    /// started with `--ipc container:<this>` binds at its own /dev/shm.
    Shareable,
    /// "none": no /dev/shm at all.
    None,
}

impl IpcShm {
    pub fn is_private(&self) -> bool {
        *self == Self::Private
    }

    /// The mode's name, as `--ipc` takes it and inspect shows it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Shareable => "shareable",
            Self::None => "none",
        }
    }
}

/// A `-v`/`--mount`/`--tmpfs` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRequest {
    /// "bind", "volume" or "tmpfs".
    pub kind: String,
    /// Host path for bind, volume name for volume (empty: anonymous), empty for tmpfs.
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    pub read_only: bool,
    /// Bind propagation ("rprivate" by default) or tmpfs options such as "size=64m".
    pub options: Vec<String>,
}

impl MountRequest {
    /// Read-only by its flag or by an option (`-v src:dst:ro`, `--mount ...,readonly`).
    pub fn is_read_only(&self) -> bool {
        self.read_only || self.options.iter().any(|o| o == "ro" || o == "readonly")
    }

    /// A bind or a volume: a directory or file of the host's mounted in (Docker's mount
    /// points), where a tmpfs is the container's own.
    pub fn is_host_path(&self) -> bool {
        self.kind == "bind" || self.kind == "volume"
    }
}

/// `--device /dev/x[:/dev/y[:rwm]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub host_path: String,
    pub container_path: String,
    pub permissions: String,
}

/// A block device's limit, as `--device-read-bps /dev/sda:1mb` or `--blkio-weight-device
/// /dev/sda:200` give it: the device node's path on the host (its numbers are read at the
/// start) and the value (bytes or operations a second, or a weight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceLimit {
    pub path: String,
    pub value: u64,
}

/// `--ulimit name=soft[:hard]`; name as Docker spells it ("nofile", "nproc", ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// `--restart`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure {
        #[serde(rename = "MaximumRetryCount")]
        max_retries: u32,
    },
    Always,
    UnlessStopped,
}

/// `--security-opt seccomp=...`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompChoice {
    /// Docker's default profile.
    #[default]
    Default,
    Unconfined,
    /// A profile file's content (Docker's JSON format, the same as the OCI `linux.seccomp`).
    Profile(String),
}

/// A network joined with `network connect`, as Docker keeps its endpoint settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    /// The network's name.
    pub network: String,
    pub aliases: Vec<String>,
    pub ip: Option<String>,
}

/// One container port of `-p [ip:][hostPort:]containerPort[/proto]` (a range is one of these
/// per port; see `ports::publish`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRequest {
    pub host_ip: String,
    /// 0: a free port chosen at start.
    pub host_port: u16,
    /// Above `host_port`: the last of the host ports to choose a free one from at start
    /// (`-p 8000-8010:80`); 0 for one port.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub host_port_end: u16,
    pub container_port: u16,
    /// "tcp" or "udp".
    pub protocol: String,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// A port the container exposes: Docker's `80/tcp` (a key of `Config.ExposedPorts`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExposedPort {
    pub port: u16,
    /// "tcp", "udp" or "sctp".
    pub protocol: String,
}

impl std::fmt::Display for ExposedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// Everything `run`/`create` take. Defaults are Docker's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRequest {
    /// The image as the user wrote it.
    pub image: String,
    /// Arguments after the image (replace the image's Cmd).
    pub cmd: Vec<String>,
    /// `--entrypoint` (the API's `Entrypoint`, a list): `None` keeps the image's; no word, or
    /// one empty word (`--entrypoint ""`), clears it.
    #[serde(deserialize_with = "words_or_word")]
    pub entrypoint: Option<Vec<String>>,
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// `-e` and `--env-file`, in order, already `KEY=VALUE` (a bare `KEY` was looked up).
    pub env: Vec<String>,
    pub workdir: Option<String>,
    /// `-u user[:group]`, names or numbers.
    pub user: Option<String>,
    pub group_add: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub auto_remove: bool,
    pub mounts: Vec<MountRequest>,
    /// `--volumes-from container[:ro|rw]`: its volumes and binds, added to `mounts` at create.
    pub volumes_from: Vec<String>,
    pub read_only: bool,
    pub pid: NsMode,
    pub ipc: NsMode,
    /// With `ipc` Private: its /dev/shm (`--ipc private`, `shareable` or `none`).
    #[serde(skip_serializing_if = "IpcShm::is_private")]
    pub ipc_shm: IpcShm,
    pub uts: NsMode,
    pub userns: NsMode,
    /// `--userns auto[:size=N]` (with `userns` Private): a range of N ids picked for the
    /// container, 0 for as many as its image names; `None` for `--userns private` (65536).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_auto: Option<u32>,
    /// No `--userns` was given: the configuration's `default-userns` may choose (at create;
    /// the record keeps what was chosen, not this).
    #[serde(skip)]
    pub userns_unset: bool,
    pub cgroupns: NsMode,
    /// The network namespace: Private (bridge/none decided by `network`), Host, Container.
    pub netns: NsMode,
    /// `--network` name when the namespace is private: "bridge" (default), "none", or a user
    /// network.
    pub network: String,
    pub network_aliases: Vec<String>,
    pub ip: Option<String>,
    pub mac_address: Option<String>,
    /// The terminal's size at the start, before any client resizes it (the API's
    /// `HostConfig.ConsoleSize`, rows then columns: `docker run -t` sends its own).
    pub console_size: Option<(u16, u16)>,
    /// `network` was left with `network disconnect`: the container keeps its network mode but
    /// joins that network no more, until connected to it again (as Docker's does).
    pub network_disconnected: bool,
    /// Networks joined with `network connect`: kept across restarts and joined at every start
    /// after `network`, as Docker keeps them.
    pub connected: Vec<Endpoint>,
    pub ports: Vec<PortRequest>,
    /// `--expose` (the API's `Config.ExposedPorts`); at create the image's EXPOSE and the
    /// ports of `-p` join them, so the record holds every port the container exposes.
    pub exposed_ports: Vec<ExposedPort>,
    pub publish_all: bool,
    /// `--timens private` (berth's own): a new time namespace...
    pub timens: NsMode,
    /// ...with these offsets (`--time-offset monotonic=SECS`, `boottime=SECS`).
    pub time_offsets: BTreeMap<String, i64>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub seccomp: SeccompChoice,
    pub no_new_privileges: bool,
    pub devices: Vec<DeviceRequest>,
    /// Bytes.
    pub memory: Option<i64>,
    /// Bytes of memory plus swap; -1 for unlimited.
    pub memory_swap: Option<i64>,
    /// Bytes: the soft limit (`--memory-reservation`).
    pub memory_reservation: Option<i64>,
    /// `--cpus` in CPUs (1.5).
    pub cpus: Option<f64>,
    /// `--cpu-period` and `--cpu-quota` in microseconds (the CFS knobs `--cpus` sets for you).
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// `--blkio-weight`: 10 to 1000.
    pub blkio_weight: Option<u16>,
    /// `--blkio-weight-device`: a weight (10 to 1000) for one device.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blkio_weight_device: Vec<DeviceLimit>,
    /// `--device-read-bps`, `--device-write-bps`: bytes a second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<DeviceLimit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<DeviceLimit>,
    /// `--device-read-iops`, `--device-write-iops`: operations a second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<DeviceLimit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<DeviceLimit>,
    /// `--device-cgroup-rule`: a device cgroup rule in Docker's syntax (`c 1:3 mr`, `a *:* rwm`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    /// `--annotation`: the OCI spec's annotations, as the runtime gets them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `--kernel-memory`: bytes, never applied (the kernel deprecated kmem limits, runc ignores
    /// them); create discards it with a warning.
    #[serde(skip)]
    pub kernel_memory: Option<i64>,
    /// `--memory-swappiness`: 0 to 100 (-1, the default, is `None`); a cgroup v1 knob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`: the kernel's OOM killer spares the container; a cgroup v1 knob.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub oom_kill_disable: bool,
    pub pids_limit: Option<i64>,
    /// `--oom-score-adj`: -1000 to 1000, the process's oom_score_adj.
    pub oom_score_adj: Option<i32>,
    pub ulimits: Vec<Ulimit>,
    pub sysctls: BTreeMap<String, String>,
    /// Bytes; Docker's default is 64 MiB.
    pub shm_size: Option<u64>,
    /// `--init`: berth runs a tiny init as PID 1 that reaps and forwards signals.
    pub init: bool,
    /// Signal name or number (`SIGTERM` by default, or the image's StopSignal).
    pub stop_signal: Option<String>,
    /// Seconds; 10 by default.
    pub stop_timeout: Option<i64>,
    /// The health check as asked (`--health-*`, `--no-healthcheck` as Test ["NONE"]); once
    /// created, merged with the image's as Docker merges it (health::merge).
    pub healthcheck: Option<crate::health::HealthConfig>,
    /// Docker's `Config.Shell`: the shell of CMD-SHELL health checks (the API's, else the
    /// image's SHELL; `/bin/sh -c` when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
    pub restart: RestartPolicy,
    pub labels: BTreeMap<String, String>,
    /// `--add-host name:ip`.
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub cidfile: Option<String>,
    /// "missing" (default), "always", "never".
    pub pull: String,
    pub platform: Option<String>,
    /// "json-file" (default) or "none".
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
}

impl RunRequest {
    /// Docker's refusals that need neither the host nor the image: the request's own values
    /// and how they combine. Part of `lifecycle::validate`, run before anything exists.
    pub fn check(&self) -> Result<()> {
        if let Some(n) = &self.name {
            crate::names::validate(n)?;
        }
        if self.privileged && self.userns == NsMode::Private {
            // Docker's words: a privileged container's capabilities are the host's.
            return Err(Error::Invalid(
                "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode".into(),
            ));
        }
        if let Some(s) = self.memory_swappiness.filter(|s| !(0..=100).contains(s)) {
            // Docker's daemon's words.
            return Err(Error::Invalid(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
        if self.auto_remove && self.restart != RestartPolicy::No {
            return Err(Error::Invalid(
                "conflicting options: --restart and --rm: choose one".into(),
            ));
        }
        let named = self.mounts.iter().filter(|m| m.kind == "volume");
        for m in named.filter(|m| !m.source.is_empty()) {
            crate::volumes::check_name(&m.source)?;
        }
        self.ports.iter().try_for_each(PortRequest::check)?;
        self.check_network()?;
        self.check_process()?;
        self.check_log()?;
        if let Some(ip) = &self.ip {
            ip.parse::<Ipv4Addr>().map_err(|_| {
                Error::Invalid(format!(
                    "--ip {ip}: invalid IPv4 address: {ip}; give one such as 172.18.0.5"
                ))
            })?;
        }
        if let Some(mac) = &self.mac_address {
            berth_net::ipam::parse_mac(mac).map_err(|_| {
                Error::Invalid(format!(
                    "--mac-address {mac}: {mac} is not a valid mac address; give six hex bytes such as 02:42:ac:11:00:02"
                ))
            })?;
        }
        Ok(())
    }

    fn check_network(&self) -> Result<()> {
        if self.ports.is_empty() || (self.netns == NsMode::Private && self.network != "none") {
            return Ok(());
        }
        let net = match &self.netns {
            NsMode::Host => "host".to_string(),
            NsMode::Container(c) => format!("container:{c}"),
            NsMode::Private => self.network.clone(),
        };
        Err(Error::Invalid(format!(
            "--publish needs a bridge or user network: --network {net} has no ports to publish"
        )))
    }

    fn check_process(&self) -> Result<()> {
        if let Some(adj) = self.oom_score_adj.filter(|a| !(-1000..=1000).contains(a)) {
            return Err(Error::Invalid(format!(
                "--oom-score-adj {adj}: must be between -1000 and 1000"
            )));
        }
        if let Some(s) = &self.stop_signal {
            if berth_sys::signal::SignalNumber::parse(s).is_none() {
                return Err(Error::Invalid(format!(
                    "--stop-signal {s:?}: not a signal name or number"
                )));
            }
        }
        if let Some(h) = &self.healthcheck {
            h.check()?;
        }
        if !["", "missing", "always", "never"].contains(&self.pull.as_str()) {
            return Err(Error::Invalid(format!(
                "--pull {:?}: use missing, always or never",
                self.pull
            )));
        }
        Ok(())
    }

    /// The log driver ("" is the default, json-file) and its options.
    fn check_log(&self) -> Result<()> {
        if !["", "json-file", "none"].contains(&self.log_driver.as_str()) {
            return Err(Error::Invalid(format!(
                "--log-driver {:?}: berth has json-file and none",
                self.log_driver
            )));
        }
        for (key, value) in &self.log_opts {
            match key.as_str() {
                "max-size" if crate::monitor::logfile::parse_size(value).is_some() => {}
                "max-size" => {
                    return Err(Error::Invalid(format!(
                        "--log-opt max-size={value}: invalid size: '{value}'; give one such as 10m"
                    )))
                }
                "max-file" => match value.parse::<u32>() {
                    Ok(1..=99) => {}
                    _ => {
                        return Err(Error::Invalid(format!(
                            "--log-opt max-file={value}: a number of files from 1 to 99"
                        )))
                    }
                },
                _ => {
                    return Err(Error::Invalid(format!(
                        "--log-opt {key}: berth's json-file driver knows max-size and max-file"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// An entrypoint as a list of words, or as one word: records written before it was a list
/// hold a string.
fn words_or_word<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Words {
        List(Vec<String>),
        One(String),
    }
    Ok(Option::<Words>::deserialize(d)?.map(|w| match w {
        Words::List(list) => list,
        Words::One(word) => vec![word],
    }))
}

impl PortRequest {
    /// Docker's "invalid IP address" for a host address that is none; berth-net publishes on
    /// IPv4 addresses only.
    fn check(&self) -> Result<()> {
        if self.host_port_end != 0 && self.host_port_end <= self.host_port {
            return Err(Error::Invalid(format!(
                "host ports {}-{}: invalid range specified for port",
                self.host_port, self.host_port_end
            )));
        }
        let ip = &self.host_ip;
        if ip.is_empty() {
            return Ok(());
        }
        let host_port = match (self.host_port, self.host_port_end) {
            (0, _) => String::new(),
            (p, 0) => p.to_string(),
            (p, end) => format!("{p}-{end}"),
        };
        let flag = format!("-p {ip}:{host_port}:{}", self.container_port);
        match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => Ok(()),
            Ok(IpAddr::V6(_)) => Err(Error::Invalid(format!(
                "{flag}: berth publishes ports on IPv4 addresses only; use one such as 127.0.0.1"
            ))),
            Err(_) => Err(Error::Invalid(format!(
                "{flag}: invalid IP address: {ip}; use an IPv4 address such as 127.0.0.1"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(host_ip: &str) -> PortRequest {
        PortRequest {
            host_ip: host_ip.into(),
            host_port: 8080,
            host_port_end: 0,
            container_port: 80,
            protocol: "tcp".into(),
        }
    }

    #[test]
    fn check_refuses_what_docker_refuses_before_create() {
        let ok = RunRequest {
            ports: vec![port(""), port("127.0.0.1")],
            ip: Some("172.18.0.5".into()),
            mac_address: Some("02:42:ac:11:00:02".into()),
            ..RunRequest::default()
        };
        ok.check().unwrap();
        let refused = |req: RunRequest, says: &str| {
            let e = req.check().unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        };
        let ports = vec![port("1.2.3.4.5")];
        refused(
            RunRequest {
                ports,
                ..ok.clone()
            },
            "-p 1.2.3.4.5:8080:80: invalid IP address: 1.2.3.4.5",
        );
        let ports = vec![port("::1")];
        refused(
            RunRequest {
                ports,
                ..ok.clone()
            },
            "IPv4 addresses only",
        );
        let ip = Some("10.0.0".into());
        refused(RunRequest { ip, ..ok.clone() }, "invalid IPv4 address");
        let mac_address = Some("02:42".into());
        refused(
            RunRequest {
                mac_address,
                ..ok.clone()
            },
            "is not a valid mac address",
        );
        let mounts = vec![MountRequest {
            kind: "volume".into(),
            source: "bad@name".into(),
            target: "/x".into(),
            read_only: false,
            options: Vec::new(),
        }];
        refused(
            RunRequest {
                mounts,
                ..ok.clone()
            },
            "volume name",
        );
        let (auto_remove, restart) = (true, RestartPolicy::Always);
        refused(
            RunRequest {
                auto_remove,
                restart,
                ..ok
            },
            "--restart and --rm",
        );
    }
}
