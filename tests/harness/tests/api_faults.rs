//! The service is optional: containers never depend on it. Killed with SIGKILL, as a crash
//! would end it, in the middle of attach streams and of a pull, it leaves its containers
//! running and logging with consistent records, no image half made and no unverified blob,
//! and a new service on the same data root serves all of it. What is left is read through
//! the `berth` CLI and the store's files, then through the new service with the docker CLI.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::Ordering;

use berth_harness::api::{Service, Streaming};
use berth_harness::image::{Berth, IMAGE};
use berth_harness::registry::{incompressible_tar, Registry, SlowProxy};
use berth_harness::{eventually, need_root};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Prints `line N` every tenth of a second, N counting up; exits 0 on SIGTERM.
const TICKER: &str =
    "trap 'exit 0' TERM; i=0; while :; do echo line $i; i=$((i+1)); sleep 0.1; done";

/// How many lines the container logged, as `berth logs` shows them.
fn logged(berth: &Berth, name: &str) -> usize {
    berth.ok(&["logs", name]).lines().count()
}

fn alive(pid: i64) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid of the container's monitor, from its record (inspect does not show it).
fn monitor_pid(berth: &Berth, id: &str) -> i64 {
    let path = berth.root().join("containers").join(id).join("record.json");
    let text = std::fs::read_to_string(&path).expect("the container's record");
    let record: Value = serde_json::from_str(&text).expect("the record is JSON");
    record["state"]["monitor_pid"].as_i64().unwrap_or(0)
}

/// The container runs, its process and its monitor alive, as `berth inspect` and `berth ps`
/// both tell.
fn still_running(berth: &Berth, name: &str) {
    let inspect = berth.inspect(name);
    let state = &inspect["State"];
    assert_eq!(state["Status"], "running", "{name}: {state}");
    assert_eq!(state["Running"], true, "{name}: {state}");
    assert_eq!(state["Restarting"], false, "{name}: {state}");
    assert_eq!(state["ExitCode"], 0, "{name}: {state}");
    let pid = state["Pid"].as_i64().unwrap_or(0);
    assert!(alive(pid), "{name}: its process {pid} is gone");
    let id = inspect["Id"].as_str().expect("an id");
    let monitor = monitor_pid(berth, id);
    assert!(alive(monitor), "{name}: its monitor {monitor} is gone");
    let ps = berth.ok(&[
        "ps",
        "--filter",
        &format!("name=^{name}$"),
        "--format",
        "{{.Status}}",
    ]);
    assert!(ps.starts_with("Up "), "{name}: berth ps says {ps:?}");
}

#[test]
fn containers_outlive_a_killed_service_and_a_new_one_serves_them() {
    need_root!();
    let Some(mut service) = Service::start() else {
        return;
    };
    // One container started by `docker run -i`: its attach (stdin held open) and its wait
    // are open through the service. Another started detached, then attached to.
    let mut command = service.client("docker");
    command
        .args(["run", "-i", "--name", "runner", IMAGE, "sh", "-c", TICKER])
        .stdin(Stdio::piped());
    let mut runner = Streaming::spawn(command);
    runner.wait_for("line 3\n");
    service.docker_ok(&["run", "-d", "--name", "attached", IMAGE, "sh", "-c", TICKER]);
    let mut command = service.client("docker");
    command.args(["attach", "attached"]);
    let mut attached = Streaming::spawn(command);
    attached.wait_for("line 3\n");

    service.kill();

    // The clients learn that their service is gone; the containers do not.
    runner.exit();
    attached.exit();
    for name in ["runner", "attached"] {
        still_running(&service.berth, name);
        // Their monitors go on logging: lines written after the kill.
        let at_kill = logged(&service.berth, name);
        eventually(&format!("{name} to log more after the kill"), || {
            (logged(&service.berth, name) >= at_kill + 5).then_some(())
        });
        still_running(&service.berth, name);
    }

    // A new service on the same data root (and the socket the dead one left) serves them.
    service.spawn();
    let ps = service.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    let mut ps: Vec<&str> = ps.lines().collect();
    ps.sort_unstable();
    assert_eq!(ps, ["attached running", "runner running"]);
    for name in ["runner", "attached"] {
        let before = logged(&service.berth, name);
        let logs = service.docker_ok(&["logs", name]);
        assert!(logs.lines().count() >= before, "{name}: {logs}");
        assert!(logs.starts_with("line 0\nline 1\n"), "{name}: {logs}");
        // Attached again through the new service, the stream is live.
        let mut command = service.client("docker");
        command.args(["attach", "--no-stdin", name]);
        let mut again = Streaming::spawn(command);
        again.wait_for("\n");
        let first: usize = again
            .text()
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("line "))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: attached again: {:?}", again.text()));
        assert!(
            first >= before,
            "{name}: line {first} again, {before} were logged"
        );
        again.kill();
    }
    service.docker_ok(&["stop", "runner", "attached"]);
    for name in ["runner", "attached"] {
        assert_eq!(
            service.docker_ok(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                name
            ]),
            "exited 0",
            "{name}: stopped by the new service, its TERM trap's exit"
        );
        let id = service.berth.inspect(name)["Id"]
            .as_str()
            .expect("an id")
            .to_string();
        let monitor = monitor_pid(&service.berth, &id);
        eventually(&format!("{name}'s monitor to exit"), || {
            (!alive(monitor)).then_some(())
        });
    }
    let ps = service
        .berth
        .ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    let mut ps: Vec<&str> = ps.lines().collect();
    ps.sort_unstable();
    assert_eq!(ps, ["attached exited", "runner exited"]);
    service.docker_ok(&["rm", "runner", "attached"]);
}

/// The names of the files in `dir` (none if it does not exist).
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every blob in the store is whole: its content hashes to its name.
fn blobs_verify(store: &Path) {
    let dir = store.join("blobs/sha256");
    for name in names(&dir) {
        let bytes = std::fs::read(dir.join(&name)).expect("read a blob");
        let hex: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, name, "blob {name} is not what its name says");
    }
}

/// The bytes of every file below `dir`.
fn bytes_below(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_below(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn wait_exit(child: &mut Child) {
    eventually("the docker client to exit", || {
        child.try_wait().expect("wait")
    });
}

#[test]
fn a_pull_cut_by_a_killed_service_leaves_no_image_and_pulls_again() {
    let Some(mut service) = Service::start() else {
        return;
    };
    let Some(registry) = Registry::start(false) else {
        return;
    };
    const LAYER: usize = 16 << 20;
    let tar = service.dir().join("big.tar");
    std::fs::write(&tar, incompressible_tar(LAYER)).expect("write the tar");
    let name = format!("{}/big/img:1", registry.addr);
    let berth = &service.berth;
    berth.ok(&["import", tar.to_str().expect("utf-8 path"), &name]);
    let id = berth.ok(&["image", "inspect", "--format", "{{.Id}}", &name]);
    berth.ok(&["push", &name]);
    berth.ok(&["rmi", &name]);
    let store = berth.root().join("image");
    let berth_images =
        |service: &Service| service.berth.ok(&["images", "--format", "{{.Repository}}"]);
    let (blobs, layers) = (
        names(&store.join("blobs/sha256")),
        names(&store.join("layers")),
    );

    // The registry's answers held after half the layer: the pull is in the middle of its
    // download for as long as the test needs.
    let proxy = SlowProxy::start(registry.addr.clone());
    proxy.slow.store(false, Ordering::SeqCst);
    proxy.limit.store(LAYER as u64 / 2, Ordering::SeqCst);
    let via_proxy = format!("{}/big/img:1", proxy.addr);
    let mut pull = service
        .client("docker")
        .args(["pull", &via_proxy])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn docker pull");
    eventually("part of the layer in the store's tmp/", || {
        (bytes_below(&store.join("tmp")) >= 1 << 20).then_some(())
    });

    service.kill();
    wait_exit(&mut pull);

    // No image, no layer that was not there before, and every blob whole (the manifest's
    // and the config's may be in: verified, for the next pull to reuse).
    let images = berth_images(&service);
    assert!(!images.contains("big/img"), "a partial image: {images}");
    assert_eq!(names(&store.join("layers")), layers, "layers added");
    blobs_verify(&store);

    // A new service on the same root: no such image, and the same pull completes.
    proxy.limit.store(u64::MAX, Ordering::SeqCst);
    service.spawn();
    let images = service.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("big/img"), "a partial image: {images}");
    let pulled = service.docker_ok(&["pull", &via_proxy]);
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    assert_eq!(
        service.docker_ok(&["image", "inspect", "--format", "{{.Id}}", &via_proxy]),
        id,
        "the same image, whole"
    );
    blobs_verify(&store);
    // Removed, it takes everything with it, the killed pull's partial download too.
    service.docker_ok(&["rmi", &via_proxy]);
    assert_eq!(names(&store.join("blobs/sha256")), blobs);
    assert_eq!(names(&store.join("layers")), layers);
    assert_eq!(names(&store.join("tmp")), BTreeSet::new(), "left in tmp/");
}

/// The processes whose parent is `pid`, from /proc (zombies included).
fn children(pid: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // The command (field 2) may hold spaces and parentheses: count from the last ')'.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            rest.split_whitespace().nth(1) == Some(pid.to_string().as_str())
        })
        .collect()
}

#[test]
fn monitors_are_not_the_services_children() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    for _ in 0..3 {
        service.docker_ok(&["run", "--rm", IMAGE, "true"]);
    }
    service.docker_ok(&["run", "-d", "--name", "sleeper", IMAGE, "sleep", "1000"]);
    // Neither the running container's monitor nor an exited one's zombie: a service that runs
    // for months would otherwise gather one zombie per container it ever started.
    assert_eq!(children(service.pid()), Vec::<String>::new());
    service.docker_ok(&["rm", "-f", "sleeper"]);
}
