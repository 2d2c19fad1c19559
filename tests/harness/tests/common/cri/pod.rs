//! Pods and containers as the kubelet asks for them, one CRI call per step, and the whole
//! cycle of one pod that the soak and the benchmark repeat.

use std::time::{Duration, Instant};

use k8s_cri::v1::*;

use super::{Cri, IMAGE};
use crate::clients::Teardown;

/// A pod sandbox the CRI ran, with the config the containers are created against.
pub struct Pod {
    pub id: String,
    pub config: PodSandboxConfig,
}

/// What a container runs and how.
pub struct ContainerSpec<'a> {
    pub name: &'a str,
    pub args: &'a [&'a str],
    /// Its pid namespace: the pod's (POD, `shareProcessNamespace`) or its own (CONTAINER,
    /// Kubernetes' default).
    pub pid: NamespaceMode,
    /// A memory limit in bytes (0 for none).
    pub memory: i64,
}

fn namespaces(network: NamespaceMode, pid: NamespaceMode) -> NamespaceOption {
    NamespaceOption {
        network: network as i32,
        pid: pid as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

impl Cri {
    /// RunPodSandbox, as the kubelet asks for a pod: its own network (through CNI), ipc and
    /// uts namespaces, or the node's network (and uts) with `host_network`.
    pub fn run_pod(&self, handler: &str, name: &str, host_network: bool) -> Result<Pod, String> {
        let uid = format!("{name}-{}", self.tag());
        let log_directory = self.dir().join("logs").join(&uid);
        std::fs::create_dir_all(&log_directory).map_err(|e| format!("mkdir logs: {e}"))?;
        let network = match host_network {
            true => NamespaceMode::Node,
            false => NamespaceMode::Pod,
        };
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_string(),
                uid: uid.clone(),
                namespace: "default".to_string(),
                attempt: 0,
            }),
            hostname: if host_network {
                String::new()
            } else {
                name.to_string()
            },
            log_directory: log_directory.display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("{}/pod{uid}", self.cgroup_root()),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces(network, NamespaceMode::Container)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let request = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_string(),
        };
        let response = self
            .try_call(|mut c| async move { c.run_pod_sandbox(request).await })
            .map_err(|s| format!("RunPodSandbox {name}: {}", s.message()))?;
        Ok(Pod {
            id: response.pod_sandbox_id,
            config,
        })
    }

    /// CreateContainer in `pod`, logging to `<name>.log` in the pod's log directory.
    pub fn create_container(&self, pod: &Pod, spec: &ContainerSpec) -> Result<String, String> {
        let network = pod
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .map_or(NamespaceMode::Pod as i32, |n| n.network);
        let network = NamespaceMode::try_from(network).unwrap_or(NamespaceMode::Pod);
        let resources = LinuxContainerResources {
            memory_limit_in_bytes: spec.memory,
            cpu_shares: 512,
            ..Default::default()
        };
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: spec.name.to_string(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: IMAGE.to_string(),
                ..Default::default()
            }),
            args: spec.args.iter().map(|a| a.to_string()).collect(),
            log_path: format!("{}.log", spec.name),
            linux: Some(LinuxContainerConfig {
                resources: Some(resources),
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(namespaces(network, spec.pid)),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let request = CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        self.try_call(|mut c| async move { c.create_container(request).await })
            .map(|r| r.container_id)
            .map_err(|s| format!("CreateContainer {}: {}", spec.name, s.message()))
    }

    pub fn start_container(&self, id: &str) -> Result<(), String> {
        let request = StartContainerRequest {
            container_id: id.to_string(),
        };
        self.try_call(|mut c| async move { c.start_container(request).await })
            .map(|_| ())
            .map_err(|s| format!("StartContainer {id}: {}", s.message()))
    }

    pub fn stop_container(&self, id: &str, timeout: i64) -> Result<(), String> {
        let request = StopContainerRequest {
            container_id: id.to_string(),
            timeout,
        };
        self.try_call(|mut c| async move { c.stop_container(request).await })
            .map(|_| ())
            .map_err(|s| format!("StopContainer {id}: {}", s.message()))
    }

    pub fn remove_container(&self, id: &str) -> Result<(), String> {
        let request = RemoveContainerRequest {
            container_id: id.to_string(),
        };
        self.try_call(|mut c| async move { c.remove_container(request).await })
            .map(|_| ())
            .map_err(|s| format!("RemoveContainer {id}: {}", s.message()))
    }

    pub fn stop_pod(&self, id: &str) -> Result<(), String> {
        let request = StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.try_call(|mut c| async move { c.stop_pod_sandbox(request).await })
            .map(|_| ())
            .map_err(|s| format!("StopPodSandbox {id}: {}", s.message()))
    }

    pub fn remove_pod(&self, id: &str) -> Result<(), String> {
        let request = RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.try_call(|mut c| async move { c.remove_pod_sandbox(request).await })
            .map(|_| ())
            .map_err(|s| format!("RemovePodSandbox {id}: {}", s.message()))
    }

    pub fn container_status(&self, id: &str) -> ContainerStatus {
        let request = ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        };
        let response = self.call("ContainerStatus", |mut c| async move {
            c.container_status(request).await
        });
        response.status.expect("ContainerStatus has a status")
    }

    pub fn pod_status(&self, id: &str) -> PodSandboxStatus {
        let request = PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: false,
        };
        let response = self.call("PodSandboxStatus", |mut c| async move {
            c.pod_sandbox_status(request).await
        });
        response.status.expect("a sandbox status")
    }

    pub fn exec_sync(&self, id: &str, cmd: &[&str]) -> ExecSyncResponse {
        let request = ExecSyncRequest {
            container_id: id.to_string(),
            cmd: cmd.iter().map(|a| a.to_string()).collect(),
            timeout: 60,
        };
        self.call(&format!("ExecSync {cmd:?}"), |mut c| async move {
            c.exec_sync(request).await
        })
    }

    pub fn pods(&self) -> Vec<PodSandbox> {
        let request = ListPodSandboxRequest::default();
        self.call("ListPodSandbox", |mut c| async move {
            c.list_pod_sandbox(request).await
        })
        .items
    }

    pub fn containers(&self) -> Vec<Container> {
        let request = ListContainersRequest::default();
        self.call("ListContainers", |mut c| async move {
            c.list_containers(request).await
        })
        .containers
    }
}

/// How long each half of a pod's life took.
pub struct Timings {
    /// RunPodSandbox, then CreateContainer and StartContainer for each container.
    pub start: Duration,
    /// StopContainer (KILL at once), RemoveContainer, StopPodSandbox, RemovePodSandbox.
    pub teardown: Duration,
}

/// One pod's life as the kubelet leads it: a sandbox with its own network, `containers`
/// containers (the first with a pid namespace of its own, any second sharing the pod's),
/// started, then stopped, removed, and the sandbox stopped and removed. The first failure is
/// the error; what it left is the caller's to clean up ([`remove_all`]).
pub fn cycle(cri: &Cri, handler: &str, name: &str, containers: usize) -> Result<Timings, String> {
    let began = Instant::now();
    let pod = cri.run_pod(handler, name, false)?;
    let mut ids = Vec::new();
    for n in 0..containers {
        let spec = ContainerSpec {
            name: &format!("c{n}"),
            args: &["sleep", "100000"],
            pid: if n == 0 {
                NamespaceMode::Container
            } else {
                NamespaceMode::Pod
            },
            memory: 64 << 20,
        };
        let id = cri.create_container(&pod, &spec)?;
        cri.start_container(&id)?;
        ids.push(id);
    }
    let start = began.elapsed();
    let began = Instant::now();
    for id in &ids {
        cri.stop_container(id, 0)?;
        cri.remove_container(id)?;
    }
    cri.stop_pod(&pod.id)?;
    cri.remove_pod(&pod.id)?;
    Ok(Timings {
        start,
        teardown: began.elapsed(),
    })
}

/// Stops and removes every pod (and so its containers) through the CRI; failures are noted.
/// A pod the CRI could not remove may leave its network namespace mounted: that goes too.
pub fn remove_all(cri: &Cri, teardown: &mut Teardown) {
    let Ok(pods) =
        cri.try_call(
            |mut c| async move { c.list_pod_sandbox(ListPodSandboxRequest::default()).await },
        )
    else {
        return;
    };
    for pod in pods.items {
        println!("teardown: removing pod {}", pod.id);
        let netns = netns_of(cri, &pod.id);
        for result in [cri.stop_pod(&pod.id), cri.remove_pod(&pod.id)] {
            if let Err(e) = result {
                teardown.note(e);
            }
        }
        if let Some(netns) = netns.filter(|p| std::path::Path::new(p).exists()) {
            let _ = teardown.quiet(std::process::Command::new("umount").arg(&netns));
            if let Err(e) = std::fs::remove_file(&netns) {
                teardown.note(format!("rm {netns}: {e}"));
            }
        }
    }
}

/// The network namespace containerd made for the sandbox (from the verbose status's runtime
/// spec), if it has one of its own.
pub fn netns_of(cri: &Cri, id: &str) -> Option<String> {
    let request = PodSandboxStatusRequest {
        pod_sandbox_id: id.to_string(),
        verbose: true,
    };
    let response = cri
        .try_call(|mut c| async move { c.pod_sandbox_status(request).await })
        .ok()?;
    let info: serde_json::Value = serde_json::from_str(response.info.get("info")?).ok()?;
    let namespaces = info["runtimeSpec"]["linux"]["namespaces"]
        .as_array()?
        .clone();
    let network = namespaces.into_iter().find(|ns| ns["type"] == "network")?;
    network["path"].as_str().map(str::to_string)
}
