//! `run`/`create` flags, as Docker spells them, and their translation into a validated
//! `RunRequest`: every value is parsed here, so a typo fails before anything is created.

use anyhow::{bail, Context as _, Result};
use berth_engine::health::{parse_duration, HealthConfig};
use berth_engine::options::{self, ns_mode, restart, tmpfs, volume};
use berth_engine::request::{NsMode, RunRequest, SeccompChoice};
use clap::Args;

use super::flag_values::{
    bytes, content_trust, cpus, device, device_limits, env, flat, key_values, labels, mount,
    swap_bytes, time_offsets, Per,
};

/// Docker's `run` flags that berth has nothing to do with, each refused with one line.
#[derive(Args, Debug, Clone, Default)]
pub struct RefusedFlags {
    #[arg(long = "cpu-count", hide = true)]
    cpu_count: Option<String>,
    #[arg(long = "cpu-percent", hide = true)]
    cpu_percent: Option<String>,
    #[arg(long = "io-maxbandwidth", hide = true)]
    io_maxbandwidth: Option<String>,
    #[arg(long = "io-maxiops", hide = true)]
    io_maxiops: Option<String>,
    #[arg(long = "ip6", hide = true)]
    ip6: Option<String>,
    #[arg(long = "link-local-ip", hide = true)]
    link_local_ip: Vec<String>,
    #[arg(long = "cpu-rt-period", hide = true)]
    cpu_rt_period: Option<String>,
    #[arg(long = "cpu-rt-runtime", hide = true)]
    cpu_rt_runtime: Option<String>,
    #[arg(long = "use-api-socket", hide = true)]
    use_api_socket: bool,
}

impl RefusedFlags {
    /// `--cpu-rt-period` or `--cpu-rt-runtime` asked for (refused with the API's by
    /// [`options::Unused`]).
    fn realtime(&self) -> Result<bool> {
        super::flag_values::realtime(&self.cpu_rt_period, &self.cpu_rt_runtime)
    }

    fn check(&self) -> Result<()> {
        let windows = [
            ("cpu-count", &self.cpu_count),
            ("cpu-percent", &self.cpu_percent),
            ("io-maxbandwidth", &self.io_maxbandwidth),
            ("io-maxiops", &self.io_maxiops),
        ];
        if let Some((flag, _)) = windows.iter().find(|(_, v)| v.is_some()) {
            return Err(crate::cli::OsTypeError(flag).into());
        }
        if self.ip6.is_some() || !self.link_local_ip.is_empty() {
            let flag = if self.ip6.is_some() {
                "--ip6"
            } else {
                "--link-local-ip"
            };
            bail!("{flag}: berth's networks give containers IPv4 addresses only; drop it");
        }
        if self.use_api_socket {
            bail!("--use-api-socket: berth has no daemon socket to give a container (berth system service is a separate choice); mount one with -v if you run it");
        }
        Ok(())
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunFlags {
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Suppress the pull output
    #[arg(short, long)]
    pub quiet: bool,
    /// GPU devices to add to the container ('all' to pass all GPUs)
    #[arg(long)]
    pub gpus: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Bind mount a volume (src:dst[:opts])
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=bind|volume|tmpfs,source=,target=,...)
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (/path[:opts])
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// PID namespace to use (host, container:<name|id>)
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode to use (private, shareable, none, host, container:<name|id>)
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace to use (host)
    #[arg(long)]
    pub uts: Option<String>,
    /// User namespace to use (host, private, auto[:size=N]: a range of ids of the container's own)
    #[arg(long)]
    pub userns: Option<String>,
    /// Cgroup namespace to use (host, private)
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Time namespace to use (host, private, container:<name|id>): berth's own
    #[arg(long)]
    pub timens: Option<String>,
    /// Clock offset in a private time namespace (monotonic=SECS or boottime=SECS)
    #[arg(long = "time-offset")]
    pub time_offset: Vec<String>,
    /// Connect a container to a network (bridge, none, host, container:<name|id>, a network)
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address
    #[arg(long)]
    pub ip: Option<String>,
    /// Container MAC address
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Security options (seccomp=unconfined|<file>, no-new-privileges)
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Add a host device to the container
    #[arg(long)]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    /// Block IO weight (relative device weight)
    #[arg(long = "blkio-weight-device")]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps")]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops")]
    pub device_write_iops: Vec<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long)]
    pub annotation: Vec<String>,
    /// Memory limit
    #[arg(short, long, allow_negative_numbers = true, value_parser = bytes)]
    pub memory: Option<i64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_negative_numbers = true, value_parser = swap_bytes)]
    pub memory_swap: Option<i64>,
    /// Number of CPUs
    #[arg(long, allow_negative_numbers = true, value_parser = cpus)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_negative_numbers = true)]
    pub oom_score_adj: Option<i32>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", allow_negative_numbers = true, value_parser = bytes)]
    pub memory_reservation: Option<i64>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", allow_negative_numbers = true, default_value_t = -1,
          hide_default_value = true)]
    pub memory_swappiness: i64,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Optional parent cgroup for the container (refused: berth places each container's cgroup)
    #[arg(long = "cgroup-parent", hide = true)]
    pub cgroup_parent: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Ulimit options (name=soft[:hard])
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Sysctl options
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", allow_negative_numbers = true, value_parser = bytes)]
    pub shm_size: Option<i64>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", allow_negative_numbers = true)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Restart policy to apply when a container exits
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Set meta data on a container
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Add link to another container (legacy links: refused, as berth has none)
    #[arg(long, hide = true)]
    pub link: Vec<String>,
    /// Runtime to use for this container (berth has its own: runc's equal)
    #[arg(long)]
    pub runtime: Option<String>,
    /// Container isolation technology (Linux has only "default")
    #[arg(long)]
    pub isolation: Option<String>,
    /// Storage driver options for the container (refused: no per-container size)
    #[arg(long = "storage-opt", hide = true)]
    pub storage_opt: Vec<String>,
    /// Kernel memory limit (deprecated by the kernel: discarded with a warning)
    #[arg(long = "kernel-memory", value_parser = bytes, hide = true)]
    pub kernel_memory: Option<i64>,
    /// Skip image verification (berth verifies digests, not Docker Content Trust signatures)
    #[arg(long = "disable-content-trust", hide = true, default_value_t = true,
          action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub disable_content_trust: bool,
    /// Optional volume driver for the container (only "local")
    #[arg(long = "volume-driver", hide = true)]
    pub volume_driver: Option<String>,
    /// Docker's flags berth refuses with one line: Windows' (as the docker CLI refuses them
    /// from a Linux daemon), IPv6 and link-local addresses, real-time CPU time, the API socket.
    #[command(flatten)]
    pub refused: RefusedFlags,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Logging driver for the container (json-file, none)
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options (max-size, max-file)
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach")]
    pub attach: Vec<String>,
    /// The image, then the command and its arguments. One list, so that parsing stops at the
    /// image as Docker's does: `run IMG --version` gives `--version` to the container.
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        trailing_var_arg = true
    )]
    pub image_and_command: Vec<String>,
}

impl RunFlags {
    /// Every flag parsed and checked; nothing has been touched yet.
    pub fn request(&self) -> Result<RunRequest> {
        if let Some(gpus) = &self.gpus {
            bail!(
                "--gpus {gpus}: berth cannot give a container GPUs yet; pass a device node with --device instead"
            );
        }
        self.refused.check()?;
        content_trust(self.disable_content_trust)?;
        options::Unused {
            runtime: self.runtime.as_deref(),
            isolation: self.isolation.as_deref(),
            storage_opt: Some(&key_values("--storage-opt", &self.storage_opt)?),
            cgroup_parent: self.cgroup_parent.as_deref(),
            volume_driver: self.volume_driver.as_deref(),
            links: &self.link,
            realtime: self.refused.realtime()?,
        }
        .refuse()?;
        let mut r = RunRequest {
            image: self.image_and_command[0].clone(),
            cmd: self.image_and_command[1..].to_vec(),
            entrypoint: self.entrypoint.clone().map(|e| vec![e]),
            name: self.name.clone(),
            hostname: self.hostname.clone(),
            domainname: self.domainname.clone(),
            env: env(&self.env, &self.env_file)?,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            group_add: self.group_add.clone(),
            tty: self.tty,
            interactive: self.interactive,
            detach: self.detach,
            auto_remove: self.rm,
            read_only: self.read_only,
            pid: ns_mode("--pid", self.pid.as_deref(), false)?,
            uts: ns_mode("--uts", self.uts.as_deref(), false)?,
            cgroupns: ns_mode("--cgroupns", self.cgroupns.as_deref(), false)?,
            timens: match self.timens.as_deref() {
                None if !self.time_offset.is_empty() => NsMode::Private,
                None => NsMode::Host,
                Some(v) => ns_mode("--timens", Some(v), true)?,
            },
            time_offsets: time_offsets(&self.time_offset)?,
            privileged: self.privileged,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            devices: self
                .device
                .iter()
                .map(|d| device(d))
                .collect::<Result<_>>()?,
            device_cgroup_rules: self.device_cgroup_rule.clone(),
            blkio_weight_device: device_limits(
                "--blkio-weight-device",
                &self.blkio_weight_device,
                Per::Weight,
            )?,
            device_read_bps: device_limits("--device-read-bps", &self.device_read_bps, Per::Bytes)?,
            device_write_bps: device_limits(
                "--device-write-bps",
                &self.device_write_bps,
                Per::Bytes,
            )?,
            device_read_iops: device_limits(
                "--device-read-iops",
                &self.device_read_iops,
                Per::Ops,
            )?,
            device_write_iops: device_limits(
                "--device-write-iops",
                &self.device_write_iops,
                Per::Ops,
            )?,
            annotations: key_values("--annotation", &self.annotation)?,
            kernel_memory: self.kernel_memory,
            memory: self.memory,
            memory_swap: self.memory_swap,
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
            pids_limit: self.pids_limit,
            memory_reservation: self.memory_reservation,
            memory_swappiness: Some(self.memory_swappiness).filter(|s| *s != -1),
            oom_kill_disable: self.oom_kill_disable,
            oom_score_adj: self.oom_score_adj,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_mems: self.cpuset_mems.clone(),
            // As Docker: 0 leaves the weight alone.
            blkio_weight: self.blkio_weight.filter(|w| *w != 0),
            ulimits: self
                .ulimit
                .iter()
                .map(|u| berth_engine::options::ulimit(u))
                .collect::<Result<_, _>>()?,
            sysctls: key_values("--sysctl", &self.sysctl)?,
            shm_size: self.shm_size.map(|n| n as u64),
            init: self.init,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            healthcheck: self.healthcheck()?,
            restart: restart(&self.restart)?,
            labels: labels(&self.label_file, &self.label)?,
            volumes_from: self.volumes_from.clone(),
            add_hosts: self.add_host.clone(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_option.clone(),
            cidfile: self.cidfile.clone(),
            pull: self.pull.clone(),
            platform: self.platform.clone(),
            // Empty: the configuration's default, else json-file (chosen at create).
            log_driver: self.log_driver.clone().unwrap_or_default(),
            log_opts: key_values("--log-opt", &self.log_opt)?,
            network_aliases: self.network_alias.clone(),
            ip: self.ip.clone(),
            mac_address: self.mac_address.clone(),
            publish_all: self.publish_all,
            ports: flat(&self.publish, berth_engine::ports::publish)?,
            exposed_ports: flat(&self.expose, berth_engine::ports::expose)?,
            ..RunRequest::default()
        };
        self.security(&mut r)?;
        (r.ipc, r.ipc_shm) = options::ipc_mode(self.ipc.as_deref())?;
        (r.userns, r.userns_auto) = berth_engine::userns::parse_mode(self.userns.as_deref())?;
        r.userns_unset = self.userns.as_deref().is_none_or(str::is_empty);
        options::network_mode(&mut r, self.network.as_deref().unwrap_or("bridge"))?;
        for v in &self.volume {
            r.mounts.push(volume(v)?);
        }
        for m in &self.mount {
            r.mounts.push(mount(m)?);
        }
        for t in &self.tmpfs {
            r.mounts.push(tmpfs(t)?);
        }
        Ok(r)
    }

    /// Docker's CLI rules: `--no-healthcheck` is Test ["NONE"] and takes no `--health-*`;
    /// `--health-cmd` is CMD-SHELL; a duration or count left out is the image's or the default.
    fn healthcheck(&self) -> Result<Option<HealthConfig>> {
        let duration = |flag: &str, v: &Option<String>| -> Result<i64> {
            let Some(v) = v else { return Ok(0) };
            let nanos = parse_duration(v).with_context(|| {
                format!(
                    "invalid argument {v:?} for \"--{flag}\" flag: time: invalid duration {v:?}"
                )
            })?;
            if nanos < 0 {
                bail!("--{flag} cannot be negative");
            }
            Ok(nanos)
        };
        let h = HealthConfig {
            test: match &self.health_cmd {
                Some(cmd) if !cmd.is_empty() => vec!["CMD-SHELL".into(), cmd.clone()],
                _ => Vec::new(),
            },
            interval: duration("health-interval", &self.health_interval)?,
            timeout: duration("health-timeout", &self.health_timeout)?,
            start_period: duration("health-start-period", &self.health_start_period)?,
            start_interval: duration("health-start-interval", &self.health_start_interval)?,
            retries: self.health_retries.unwrap_or(0),
        };
        if h.retries < 0 {
            bail!("--health-retries cannot be negative");
        }
        let any = h != HealthConfig::default();
        if self.no_healthcheck {
            if any {
                bail!("--no-healthcheck conflicts with --health-* options");
            }
            return Ok(Some(HealthConfig {
                test: vec!["NONE".into()],
                ..HealthConfig::default()
            }));
        }
        Ok(any.then_some(h))
    }

    fn security(&self, r: &mut RunRequest) -> Result<()> {
        for opt in &self.security_opt {
            let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt, ""));
            match (key, value) {
                ("no-new-privileges", "" | "true") => r.no_new_privileges = true,
                ("no-new-privileges", "false") => r.no_new_privileges = false,
                ("seccomp", "unconfined") => r.seccomp = SeccompChoice::Unconfined,
                ("seccomp", path) if !path.is_empty() => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("--security-opt seccomp={path}: read the profile"))?;
                    r.seccomp = SeccompChoice::Profile(text);
                }
                ("apparmor" | "label", _) => {}
                _ => bail!("--security-opt {opt:?}: berth knows seccomp=unconfined|<file> and no-new-privileges"),
            }
        }
        Ok(())
    }
}
