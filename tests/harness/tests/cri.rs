//! Kubernetes' path as a tested path (issue 11): containerd's CRI plugin (Debian's containerd
//! 1.6) with a runtime handler whose `BinaryName` is berth-runc, driven through the CRI gRPC API
//! as the kubelet drives it. The same test body runs under the `runc` handler, the reference,
//! so a failure under berth is berth's. Each test starts and stops its own containerd (see
//! common/cri). Run with `cargo test -p berth-harness --test cri -- --nocapture`.
//!
//! The soak (`BERTH_CRI_SOAK=<pods>`, `--ignored soak`) and the benchmark's measurement
//! (`--ignored bench`, driven by bench/cri.sh) are here too, outside the default suite.
#![forbid(unsafe_code)]

#[path = "common/clients/mod.rs"]
mod clients;
#[path = "common/cri/mod.rs"]
mod cri;

use std::path::Path;
use std::time::Duration;

use cri::pod::{ContainerSpec, Pod};
use cri::{leaks, stream, Cri};
use k8s_cri::v1::{
    ContainerState, ContainerStatsRequest, ExecRequest, LinuxContainerResources, NamespaceMode,
    PodSandboxState, ReopenContainerLogRequest, UpdateContainerResourcesRequest,
};

/// A loop that ignores SIGTERM and prints a line a second: StopContainer must fall back to
/// SIGKILL once its timeout passes, and the log has fresh lines to show after a reopen.
const TICKER: &[&str] = &[
    "sh",
    "-c",
    "trap '' TERM; echo ready; while :; do echo tick; sleep 1; done",
];

#[test]
fn kubernetes_path_under_berth_runc() {
    lifecycle("berth");
}

#[test]
fn kubernetes_path_under_runc_the_reference() {
    lifecycle("runc");
}

fn lifecycle(handler: &str) {
    if !clients::have(cri::TOOLS) {
        return;
    }
    let cri = Cri::start(&clients::runtime_under_test());
    pod_with_its_own_network(&cri, handler);
    pod_on_the_host_network(&cri, handler);
    out_of_memory(&cri, handler);
    assert!(cri.pods().is_empty(), "pods left: {:?}", cri.pods());
    assert!(cri.containers().is_empty(), "containers left");
    let leaks = leaks::find(&cri);
    assert!(leaks.is_empty(), "{handler}: left behind: {leaks:#?}");
}

/// The value, or the test fails with the CRI's error.
fn ok<T>(result: Result<T, String>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn spec<'a>(name: &'a str, args: &'a [&'a str], pid: NamespaceMode) -> ContainerSpec<'a> {
    ContainerSpec {
        name,
        args,
        pid,
        memory: 64 << 20,
    }
}

fn pod_with_its_own_network(cri: &Cri, handler: &str) {
    let pod = ok(cri.run_pod(handler, "web", false));
    let status = cri.pod_status(&pod.id);
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    assert!(!ip.is_empty(), "CNI gave the pod no address");
    let netns = cri::pod::netns_of(cri, &pod.id).expect("the pod's network namespace");
    // One container with a pid namespace of its own (Kubernetes' default), one sharing the
    // pod's (shareProcessNamespace), whose pid 1 is then the pause process.
    let own = ok(cri.create_container(&pod, &spec("own", TICKER, NamespaceMode::Container)));
    let shared = ok(cri.create_container(&pod, &spec("shared", TICKER, NamespaceMode::Pod)));
    for id in [&own, &shared] {
        ok(cri.start_container(id));
        assert_eq!(
            cri.container_status(id).state,
            ContainerState::ContainerRunning as i32
        );
    }
    let pid1 = |id: &str| {
        String::from_utf8_lossy(&cri.exec_sync(id, &["cat", "/proc/1/cmdline"]).stdout)
            .replace('\0', " ")
    };
    assert!(pid1(&own).starts_with("sh -c"), "{}", pid1(&own));
    assert!(
        pid1(&shared).starts_with("sleep infinity"),
        "{}",
        pid1(&shared)
    );
    // Network, ipc and uts are the pod's: the same in both containers, not the host's.
    for ns in ["net", "ipc", "uts"] {
        let link = format!("/proc/self/ns/{ns}");
        let seen = |id: &str| cri.exec_sync(id, &["readlink", &link]).stdout;
        assert_eq!(seen(&own), seen(&shared), "{ns} namespace not shared");
        let host = std::fs::read_link(&link).expect("our namespace");
        assert_ne!(
            String::from_utf8_lossy(&seen(&own)).trim(),
            host.to_string_lossy(),
            "{ns}"
        );
    }
    assert_eq!(cri.exec_sync(&own, &["hostname"]).stdout, b"web\n");
    exec_both_ways(cri, &own);
    stats_and_update(cri, &pod, &own);
    logs_and_reopen(cri, &pod, &own);
    // TERM is ignored: the stop must end in SIGKILL after its timeout, for each pid mode
    // (issue 11: under a pid namespace of its own it hung, and the pod could not be removed).
    for id in [&own, &shared] {
        ok(cri.stop_container(id, 2));
        let status = cri.container_status(id);
        assert_eq!(status.state, ContainerState::ContainerExited as i32);
        assert_eq!(status.exit_code, 137, "not ended by SIGKILL: {status:?}");
        ok(cri.remove_container(id));
    }
    ok(cri.stop_pod(&pod.id));
    let status = cri.pod_status(&pod.id);
    assert_eq!(status.state, PodSandboxState::SandboxNotready as i32);
    ok(cri.remove_pod(&pod.id));
    assert!(
        !Path::new(&netns).exists(),
        "the pod's netns {netns} is left"
    );
}

/// ExecSync (output, error and exit code) and Exec (the streaming URL, read as the kubelet's
/// WebSocket client reads it).
fn exec_both_ways(cri: &Cri, id: &str) {
    let ran = cri.exec_sync(id, &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(
        (ran.stdout.as_slice(), ran.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    assert_eq!(ran.exit_code, 3);
    let request = ExecRequest {
        container_id: id.to_string(),
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "echo streamed; echo to-stderr >&2".into(),
        ],
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let url = cri
        .call("Exec", |mut c| async move { c.exec(request).await })
        .url;
    let streamed = stream::exec(&url).unwrap_or_else(|e| panic!("exec stream {url}: {e}"));
    assert_eq!(streamed.stdout, "streamed\n", "{streamed:?}");
    assert_eq!(streamed.stderr, "to-stderr\n", "{streamed:?}");
    assert!(streamed.status.contains("Success"), "{streamed:?}");
}

/// ContainerStats reads the container's cgroup; UpdateContainerResources writes it (through
/// the runtime's `update`), seen from the host.
fn stats_and_update(cri: &Cri, pod: &Pod, id: &str) {
    let request = ContainerStatsRequest {
        container_id: id.to_string(),
    };
    let stats = cri.call("ContainerStats", |mut c| async move {
        c.container_stats(request).await
    });
    let stats = stats.stats.expect("stats");
    let memory = stats
        .memory
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value);
    assert!(memory.unwrap_or(0) > 0, "no memory usage: {memory:?}");
    let cpu = stats
        .cpu
        .and_then(|c| c.usage_core_nano_seconds)
        .map(|v| v.value);
    assert!(cpu.unwrap_or(0) > 0, "no cpu usage: {cpu:?}");
    let limit = 96_i64 << 20;
    let request = UpdateContainerResourcesRequest {
        container_id: id.to_string(),
        linux: Some(LinuxContainerResources {
            memory_limit_in_bytes: limit,
            cpu_shares: 256,
            ..Default::default()
        }),
        ..Default::default()
    };
    cri.call("UpdateContainerResources", |mut c| async move {
        c.update_container_resources(request).await
    });
    let parent = pod
        .config
        .linux
        .as_ref()
        .expect("linux")
        .cgroup_parent
        .clone();
    let cgroup = format!("{}/{id}", parent.trim_start_matches('/'));
    let v1 = Path::new("/sys/fs/cgroup/memory")
        .join(&cgroup)
        .join("memory.limit_in_bytes");
    let file = match v1.exists() {
        true => v1,
        false => Path::new("/sys/fs/cgroup").join(&cgroup).join("memory.max"),
    };
    let written = std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(written.trim(), limit.to_string(), "{}", file.display());
}

/// The CRI log file gets the container's output in the kubelet's format; after the log is
/// rotated away, ReopenContainerLog makes a new one that fills again.
fn logs_and_reopen(cri: &Cri, pod: &Pod, id: &str) {
    let log = Path::new(&pod.config.log_directory).join("own.log");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    clients::wait_until("the container's first line in its log", || {
        read().lines().any(|l| l.ends_with(" stdout F ready"))
    });
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).expect("rotate the log");
    let request = ReopenContainerLogRequest {
        container_id: id.to_string(),
    };
    cri.call("ReopenContainerLog", |mut c| async move {
        c.reopen_container_log(request).await
    });
    clients::wait_until("fresh lines in the reopened log", || {
        read().lines().any(|l| l.ends_with(" stdout F tick"))
    });
}

fn pod_on_the_host_network(cri: &Cri, handler: &str) {
    let pod = ok(cri.run_pod(handler, "hostnet", true));
    let id = ok(cri.create_container(
        &pod,
        &spec("app", &["sleep", "100000"], NamespaceMode::Container),
    ));
    ok(cri.start_container(&id));
    let seen = cri
        .exec_sync(&id, &["readlink", "/proc/self/ns/net"])
        .stdout;
    let host = std::fs::read_link("/proc/self/ns/net").expect("our netns");
    assert_eq!(
        String::from_utf8_lossy(&seen).trim(),
        host.to_string_lossy()
    );
    ok(cri.stop_container(&id, 0));
    ok(cri.remove_container(&id));
    ok(cri.stop_pod(&pod.id));
    ok(cri.remove_pod(&pod.id));
}

/// A container that allocates past its memory limit is reported as Kubernetes reads it:
/// exited, reason "OOMKilled".
fn out_of_memory(cri: &Cri, handler: &str) {
    let pod = ok(cri.run_pod(handler, "oom", false));
    let mut hog = spec(
        "hog",
        &["/bin/berth-probe", "alloc", "512"],
        NamespaceMode::Container,
    );
    hog.memory = 32 << 20;
    let id = ok(cri.create_container(&pod, &hog));
    ok(cri.start_container(&id));
    clients::wait_until("the hog to exit", || {
        cri.container_status(&id).state == ContainerState::ContainerExited as i32
    });
    let status = cri.container_status(&id);
    assert_eq!(status.reason, "OOMKilled", "{status:?}");
    assert_eq!(status.exit_code, 137, "{status:?}");
    ok(cri.remove_container(&id));
    ok(cri.stop_pod(&pod.id));
    ok(cri.remove_pod(&pod.id));
}

/// `BERTH_CRI_SOAK=<pods> cargo test -p berth-harness --test cri -- --ignored soak --nocapture`
/// (bench/cri-soak.sh): that many pod lifecycles in a row under the `berth` handler (sandbox,
/// two containers, stop, remove), counting failures, then what was left behind. A pod whose
/// failure the CRI cannot clean up ends the soak there, with the teardown's errors.
#[test]
#[ignore = "a soak: minutes to hours; run through bench/cri-soak.sh"]
fn soak() {
    if !clients::have(cri::TOOLS) {
        return;
    }
    let pods: usize = std::env::var("BERTH_CRI_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let handler = std::env::var("BERTH_CRI_HANDLER").unwrap_or_else(|_| "berth".into());
    let cri = Cri::start(&clients::runtime_under_test());
    let mut failures = Vec::new();
    let started = std::time::Instant::now();
    for n in 0..pods {
        if let Err(e) = cri::pod::cycle(&cri, &handler, &format!("soak{n}"), 2) {
            println!("pod {n}: FAILED: {e}");
            failures.push(e);
            let mut teardown = clients::Teardown::default();
            cri::pod::remove_all(&cri, &mut teardown);
            teardown.finish("soak: after a failure");
        }
        if (n + 1) % 100 == 0 {
            let left = leaks::find(&cri).counts();
            let elapsed = started.elapsed();
            println!(
                "{} pods, {} failed, {elapsed:?}; left now: {left}",
                n + 1,
                failures.len()
            );
        }
    }
    let leaks = leaks::find(&cri);
    // containerd 1.6 mounts the pods' network namespaces in /var/run/netns (cni-*), outside
    // our directory; the soak runs alone, so any left there are its own.
    let netns = std::fs::read_dir("/var/run/netns").map_or(0, |entries| {
        let names = entries.flatten().map(|e| e.file_name());
        names
            .filter(|n| n.to_string_lossy().starts_with("cni-"))
            .count()
    });
    println!(
        "soak ({handler}): {pods} pods in {:?}: {} failed; left behind: {}, netns {netns}",
        started.elapsed(),
        failures.len(),
        leaks.counts()
    );
    assert!(
        failures.is_empty() && leaks.is_empty() && netns == 0,
        "{failures:#?}\n{leaks:#?}"
    );
}

/// bench/cri.sh's measurement: `BERTH_CRI_BENCH=<rounds>` pods, one container each, alternating
/// the `berth` and `runc` handlers in one containerd; prints one line per pod
/// (`handler start_ms teardown_ms`) for the script to summarise.
#[test]
#[ignore = "a benchmark, not a test: run bench/cri.sh"]
fn bench() {
    if !clients::have(cri::TOOLS) {
        return;
    }
    let rounds: usize = std::env::var("BERTH_CRI_BENCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let cri = Cri::start(&clients::runtime_under_test());
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // One unmeasured pod each first: images, snapshots and page caches warm.
    for handler in ["berth", "runc"] {
        ok(cri::pod::cycle(
            &cri,
            handler,
            &format!("warm-{handler}"),
            1,
        ));
    }
    for n in 0..rounds {
        for handler in ["berth", "runc"] {
            let t = ok(cri::pod::cycle(
                &cri,
                handler,
                &format!("b{n}-{handler}"),
                1,
            ));
            println!("BENCH {handler} {:.1} {:.1}", ms(t.start), ms(t.teardown));
        }
    }
}
