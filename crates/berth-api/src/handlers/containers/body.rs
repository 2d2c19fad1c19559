//! Docker's JSON for a container's creation and update (`ContainerCreate`'s Config,
//! HostConfig and NetworkingConfig; `Resources`), as Go's clients send it: every field may be
//! null or left out, and unknown ones are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::ApiError;

/// The body: the container's `Config` fields, with its `HostConfig` and `NetworkingConfig`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Body {
    pub(super) hostname: Option<String>,
    pub(super) domainname: Option<String>,
    pub(super) user: Option<String>,
    pub(super) attach_stdin: Option<bool>,
    pub(super) attach_stdout: Option<bool>,
    pub(super) attach_stderr: Option<bool>,
    pub(super) tty: Option<bool>,
    pub(super) open_stdin: Option<bool>,
    pub(super) env: Option<Vec<String>>,
    #[serde(deserialize_with = "str_slice")]
    pub(super) cmd: Option<Vec<String>>,
    pub(super) healthcheck: Option<Value>,
    #[serde(deserialize_with = "str_slice")]
    pub(super) shell: Option<Vec<String>>,
    pub(super) image: Option<String>,
    pub(super) volumes: Option<BTreeMap<String, Value>>,
    pub(super) exposed_ports: Option<BTreeMap<String, Value>>,
    pub(super) working_dir: Option<String>,
    #[serde(deserialize_with = "str_slice")]
    pub(super) entrypoint: Option<Vec<String>>,
    pub(super) mac_address: Option<String>,
    pub(super) labels: Option<BTreeMap<String, String>>,
    pub(super) stop_signal: Option<String>,
    pub(super) stop_timeout: Option<i64>,
    pub(super) host_config: Option<HostConfig>,
    pub(super) networking_config: Option<NetworkingConfig>,
}

/// Docker's `strslice.StrSlice`: a list of strings, or one string.
pub(super) fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
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

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct HostConfig {
    pub(super) binds: Option<Vec<String>>,
    pub(super) log_config: Option<LogConfig>,
    pub(super) network_mode: Option<String>,
    pub(super) port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    pub(super) restart_policy: Option<RestartPolicy>,
    pub(super) auto_remove: Option<bool>,
    pub(super) volume_driver: Option<String>,
    pub(super) volumes_from: Option<Vec<String>>,
    pub(super) cap_add: Option<Vec<String>>,
    pub(super) cap_drop: Option<Vec<String>>,
    pub(super) cgroupns_mode: Option<String>,
    pub(super) dns: Option<Vec<String>>,
    pub(super) dns_options: Option<Vec<String>>,
    pub(super) dns_search: Option<Vec<String>>,
    pub(super) extra_hosts: Option<Vec<String>>,
    pub(super) group_add: Option<Vec<String>>,
    pub(super) ipc_mode: Option<String>,
    pub(super) links: Option<Vec<String>>,
    pub(super) oom_score_adj: Option<i32>,
    pub(super) pid_mode: Option<String>,
    pub(super) privileged: Option<bool>,
    pub(super) publish_all_ports: Option<bool>,
    pub(super) readonly_rootfs: Option<bool>,
    pub(super) security_opt: Option<Vec<String>>,
    pub(super) tmpfs: Option<BTreeMap<String, String>>,
    #[serde(rename = "UTSMode")]
    pub(super) uts_mode: Option<String>,
    pub(super) userns_mode: Option<String>,
    pub(super) shm_size: Option<i64>,
    pub(super) sysctls: Option<BTreeMap<String, String>>,
    pub(super) annotations: Option<BTreeMap<String, String>>,
    pub(super) runtime: Option<String>,
    pub(super) isolation: Option<String>,
    pub(super) storage_opt: Option<BTreeMap<String, String>>,
    pub(super) init: Option<bool>,
    pub(super) mounts: Option<Vec<Mount>>,
    /// Rows and columns; [0, 0] when the client has no terminal.
    pub(super) console_size: Option<[u16; 2]>,
    #[serde(flatten)]
    pub(super) resources: Resources,
}

/// Docker's `Resources`, in a create's HostConfig and in an update.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Resources {
    pub(super) cpu_shares: Option<i64>,
    pub(super) memory: Option<i64>,
    pub(super) nano_cpus: Option<i64>,
    pub(super) cgroup_parent: Option<String>,
    pub(super) blkio_weight: Option<u16>,
    pub(super) cpu_period: Option<i64>,
    pub(super) cpu_quota: Option<i64>,
    pub(super) cpuset_cpus: Option<String>,
    pub(super) cpuset_mems: Option<String>,
    pub(super) devices: Option<Vec<Device>>,
    pub(super) memory_reservation: Option<i64>,
    pub(super) memory_swap: Option<i64>,
    pub(super) oom_kill_disable: Option<bool>,
    pub(super) memory_swappiness: Option<i64>,
    pub(super) kernel_memory: Option<i64>,
    pub(super) blkio_weight_device: Option<Vec<WeightDevice>>,
    pub(super) blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    pub(super) blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub(super) blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub(super) blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    pub(super) device_cgroup_rules: Option<Vec<String>>,
    pub(super) pids_limit: Option<i64>,
    pub(super) ulimits: Option<Vec<UlimitBody>>,
    pub(super) cpu_realtime_period: Option<i64>,
    pub(super) cpu_realtime_runtime: Option<i64>,
}

impl Resources {
    /// A real-time CPU period or runtime asked for (0 is none), which berth refuses
    /// ([`berth_engine::options::Unused`]).
    pub(super) fn realtime(&self) -> bool {
        [self.cpu_realtime_period, self.cpu_realtime_runtime]
            .iter()
            .any(|v| v.is_some_and(|v| v != 0))
    }

    /// `NanoCpus` as CPUs; 0 is none.
    pub(super) fn cpus(&self) -> Result<Option<f64>, ApiError> {
        match self.nano_cpus {
            None | Some(0) => Ok(None),
            Some(n) if n < 0 => Err(ApiError::bad_request(format!(
                "NanoCpus {n}: give a positive number of CPUs (in 1e-9 CPUs)"
            ))),
            Some(n) => Ok(Some(n as f64 / 1e9)),
        }
    }

    pub(super) fn cpu_shares(&self) -> Result<Option<u64>, ApiError> {
        positive("CpuShares", self.cpu_shares)
    }

    pub(super) fn cpu_period(&self) -> Result<Option<u64>, ApiError> {
        positive("CpuPeriod", self.cpu_period)
    }
}

/// A count that Docker reads as "not set" at 0 and refuses below.
pub(super) fn positive(field: &str, v: Option<i64>) -> Result<Option<u64>, ApiError> {
    match v {
        None | Some(0) => Ok(None),
        Some(n) => u64::try_from(n)
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{field} {n}: must not be negative"))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct LogConfig {
    #[serde(rename = "Type")]
    pub(super) kind: Option<String>,
    pub(super) config: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct PortBinding {
    pub(super) host_ip: Option<String>,
    pub(super) host_port: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct RestartPolicy {
    pub(super) name: Option<String>,
    pub(super) maximum_retry_count: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Device {
    pub(super) path_on_host: Option<String>,
    pub(super) path_in_container: Option<String>,
    pub(super) cgroup_permissions: Option<String>,
}

/// A `BlkioWeightDevice` entry: `{"Path": "/dev/sda", "Weight": 200}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct WeightDevice {
    pub(super) path: String,
    pub(super) weight: u16,
}

/// A `BlkioDeviceReadBps` (and the other throttles') entry: `{"Path": "/dev/sda", "Rate": 1024}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ThrottleDevice {
    pub(super) path: String,
    pub(super) rate: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct UlimitBody {
    pub(super) name: Option<String>,
    pub(super) soft: Option<i64>,
    pub(super) hard: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Mount {
    #[serde(rename = "Type")]
    pub(super) kind: Option<String>,
    pub(super) source: Option<String>,
    pub(super) target: Option<String>,
    pub(super) read_only: Option<bool>,
    pub(super) bind_options: Option<BindOptions>,
    pub(super) volume_options: Option<VolumeOptions>,
    pub(super) tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct BindOptions {
    pub(super) propagation: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct VolumeOptions {
    pub(super) no_copy: Option<bool>,
    pub(super) driver_config: Option<DriverConfig>,
    pub(super) subpath: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct DriverConfig {
    pub(super) name: Option<String>,
    pub(super) options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct TmpfsOptions {
    pub(super) size_bytes: Option<i64>,
    pub(super) mode: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct NetworkingConfig {
    pub(super) endpoints_config: Option<BTreeMap<String, Option<Endpoint>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Endpoint {
    pub(super) aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    pub(super) ipam_config: Option<IpamConfig>,
    pub(super) mac_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct IpamConfig {
    #[serde(rename = "IPv4Address")]
    pub(super) ipv4_address: Option<String>,
}
