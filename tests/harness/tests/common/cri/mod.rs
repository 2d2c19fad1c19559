//! Kubernetes' path to a runtime, without a kubelet: a private containerd with its CRI plugin
//! (Debian's containerd 1.6), two runtime handlers on the io.containerd.runc.v2 shim (`berth`,
//! whose `BinaryName` is the berth-runc under test, and `runc`, the reference), CNI from
//! Debian's containernetworking-plugins, a pause image made on the spot, and the CRI gRPC API
//! driven from Rust as the kubelet drives it. Everything lives in one temp dir and one cgroup
//! parent, and is torn down (and checked for leaks) by the test.
#![allow(dead_code)] // the test, the soak and the benchmark each use their own subset

pub mod leaks;
pub mod pod;
pub mod stream;

use std::fs::{self, File};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::clients::{image, run_ok, wait_until, Teardown};

/// The image every sandbox runs (containerd's `sandbox_image`): busybox's `sleep infinity`.
pub const PAUSE_IMAGE: &str = "localhost/berth-pause:test";
/// The image the pods' containers run: busybox, its applets and the static berth-probe.
pub const IMAGE: &str = "localhost/berth-cri:test";
/// The containerd namespace the CRI plugin works in.
pub const NAMESPACE: &str = "k8s.io";
/// The reference runtime, the other handler.
pub const RUNC: &str = "/usr/sbin/runc";

/// How long one CRI call may take before the test gives up on it: far beyond any stop timeout
/// the tests give, on a loaded two-core machine. A deadline, never a measurement.
pub const CALL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(150);

/// The tools a CRI test needs: containerd, its shim and ctr, the CNI plugins, tar and sha256sum.
pub const TOOLS: &[&str] = &[
    "containerd",
    "ctr",
    "containerd-shim-runc-v2",
    "/usr/lib/cni/bridge",
    "/usr/lib/cni/host-local",
    "/usr/lib/cni/loopback",
    RUNC,
    "tar",
    "sha256sum",
];

/// A running containerd with the CRI plugin and a client for its RuntimeService.
pub struct Cri {
    dir: TempDir,
    daemon: Child,
    /// A tag unique to this instance: the cgroup parent and the CNI bridge carry it.
    tag: String,
    berth_runc: PathBuf,
    tokio: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
}

impl Cri {
    /// Starts containerd with `berth_runc` as the `berth` handler's binary, waits until the CRI
    /// service answers, and imports the pause and test images.
    pub fn start(berth_runc: &Path) -> Cri {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("berth-cri-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path().to_owned();
        fs::create_dir_all(d.join("cni")).expect("mkdir cni");
        fs::write(d.join("cni/10-berth.conflist"), cni_config(&d, &tag)).expect("CNI config");
        fs::write(d.join("config.toml"), containerd_config(&d, berth_runc)).expect("config");
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        // The channel's connection task is spawned on this runtime.
        let client = {
            let _inside = tokio.enter();
            RuntimeServiceClient::new(lazy_channel(&d.join("containerd.sock")))
        };
        let log = File::create(d.join("containerd.log")).expect("containerd log");
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(d.join("config.toml"));
        println!(
            "+ {} &  (log: {})",
            crate::clients::shown(&cmd),
            d.join("containerd.log").display()
        );
        let daemon = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let cri = Cri {
            dir,
            daemon,
            tag,
            berth_runc: berth_runc.to_owned(),
            tokio,
            client,
        };
        // A readiness wait, not a timing: the CRI service answers once its plugins are up.
        wait_until("containerd's CRI service answering", || {
            let mut c = cri.client.clone();
            let version = k8s_cri::v1::VersionRequest::default();
            cri.tokio.block_on(c.version(version)).is_ok()
        });
        cri.import_images();
        cri
    }

    fn import_images(&self) {
        let d = self.dir.path();
        let pause = image::Spec {
            name: PAUSE_IMAGE,
            cmd: &["sleep", "infinity"],
            extra: &[],
        };
        let probe = berth_harness::probe_bin();
        let test = image::Spec {
            name: IMAGE,
            cmd: &["sh"],
            extra: &[(&probe, "/bin/berth-probe")],
        };
        for (file, spec) in [("pause", &pause), ("test", &test)] {
            let tar = image::archive(d, file, spec);
            run_ok(self.ctr().args(["images", "import"]).arg(&tar));
        }
    }

    /// `ctr` bound to this containerd and the CRI's namespace.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.socket())
            .args(["--namespace", NAMESPACE]);
        cmd
    }

    /// Runs one RPC to completion; the error is the gRPC status. A call that has not answered
    /// after [`CALL_DEADLINE`] fails (a hung stop must fail the test, not hang it).
    pub fn try_call<T, F>(
        &self,
        rpc: impl FnOnce(RuntimeServiceClient<Channel>) -> F,
    ) -> Result<T, tonic::Status>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = self.client.clone();
        let call = async { tokio::time::timeout(CALL_DEADLINE, rpc(client)).await };
        match self.tokio.block_on(call) {
            Ok(answer) => answer.map(tonic::Response::into_inner),
            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                "no answer after {CALL_DEADLINE:?}"
            ))),
        }
    }

    /// Runs one RPC that must succeed, failing the test with `what` and the status otherwise.
    pub fn call<T, F>(&self, what: &str, rpc: impl FnOnce(RuntimeServiceClient<Channel>) -> F) -> T
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.try_call(rpc)
            .unwrap_or_else(|s| panic!("{what}: {:?}: {}", s.code(), s.message()))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The tag this instance's cgroup parent and bridge carry.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The cgroup every pod of this instance lives under (the kubelet's `/kubepods`).
    pub fn cgroup_root(&self) -> String {
        format!("/berth-cri-{}", self.tag)
    }

    /// The runtime's `--root` for `handler` (the shim adds the namespace).
    pub fn runtime_state_root(&self, handler: &str) -> PathBuf {
        self.dir.path().join("runc").join(handler).join(NAMESPACE)
    }

    /// The binary behind `handler`.
    pub fn runtime_binary(&self, handler: &str) -> &Path {
        match handler {
            "berth" => &self.berth_runc,
            _ => Path::new(RUNC),
        }
    }

    /// containerd's own pid (the one process of ours allowed to outlive the pods).
    pub fn daemon_pid(&self) -> u32 {
        self.daemon.id()
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }
}

/// A channel that connects (and reconnects) to the unix socket on first use.
fn lazy_channel(socket: &Path) -> Channel {
    let socket = socket.to_owned();
    // The URI is a placeholder: the connector dials the socket.
    Endpoint::from_static("http://[::1]:50051").connect_with_connector_lazy(tower::service_fn(
        move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        },
    ))
}

/// A free port on loopback for the streaming server (containerd 1.6 puts the configured port,
/// not the bound one, in the URLs it hands out, so "0" would not do).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local addr").port()
}

fn containerd_config(d: &Path, berth_runc: &Path) -> String {
    let handler = |name: &str, binary: &Path| {
        format!(
            r#"    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
        BinaryName = "{binary}"
        Root = "{d}/runc/{name}"
"#,
            binary = binary.display(),
            d = d.display()
        )
    };
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "{port}"
  disable_apparmor = true
  # Sandboxes ask for oom_score_adj -998, which needs CAP_SYS_RESOURCE; where we run without it
  # (this machine's sessions and CI), containerd clamps to its own, as on rootless nodes.
  restrict_oom_score_adj = {restrict}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
{berth}{runc}  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
    max_conf_num = 1
"#,
        d = d.display(),
        port = free_port(),
        restrict = !has_cap_sys_resource(),
        berth = handler("berth", berth_runc),
        runc = handler("runc", Path::new(RUNC)),
    )
}

/// CAP_SYS_RESOURCE (bit 24) in our effective set, read from /proc.
fn has_cap_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status.lines().find_map(|l| l.strip_prefix("CapEff:"));
    let mask = effective.and_then(|m| u64::from_str_radix(m.trim(), 16).ok());
    mask.is_some_and(|m| m & (1 << 24) != 0)
}

/// A bridge name of at most 15 bytes (IFNAMSIZ), unique to the instance.
fn bridge_name(tag: &str) -> String {
    let mut name = format!("bcri{}", tag.replace('-', ""));
    name.truncate(15);
    name
}

/// A bridge without an address on the host (no gateway, no masquerade, no host route): the
/// pods get addresses and a network namespace of their own, and nothing on the host changes
/// beyond the bridge itself, which teardown removes. Leases stay in the temp dir.
fn cni_config(d: &Path, tag: &str) -> String {
    let third = tag
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32))
        % 250
        + 1;
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": format!("berth-cri-{tag}"),
        "plugins": [{
            "type": "bridge",
            "bridge": bridge_name(tag),
            "isGateway": false,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "subnet": format!("10.88.{third}.0/24"),
                "dataDir": d.join("cni-leases"),
            },
        }],
    })
    .to_string()
}

impl Drop for Cri {
    fn drop(&mut self) {
        let mut teardown = Teardown::default();
        let d = self.dir.path().to_owned();
        if std::thread::panicking() {
            let log = fs::read_to_string(d.join("containerd.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "containerd.log (last lines):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        // Through the CRI first, as the kubelet would: it knows the pods, their network
        // namespaces and CNI leases.
        pod::remove_all(self, &mut teardown);
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // Then whatever is left: runtime state, shims, mounts, cgroups, the bridge.
        for handler in ["berth", "runc"] {
            leaks::force_delete_all(self, handler, &mut teardown);
        }
        teardown.kill_processes_mentioning(&d);
        teardown.unmount_under(&d);
        leaks::remove_cgroups(&self.cgroup_root(), &mut teardown);
        let bridge = bridge_name(&self.tag);
        if Path::new("/sys/class/net").join(&bridge).exists()
            && !teardown.quiet(Command::new("ip").args(["link", "del", &bridge]))
        {
            teardown.note(format!("ip link del {bridge} failed"));
        }
        if let Err(e) = fs::remove_dir_all(&d) {
            teardown.note(format!("rm -r {}: {e}", d.display()));
        }
        teardown.finish("containerd (CRI)");
    }
}
