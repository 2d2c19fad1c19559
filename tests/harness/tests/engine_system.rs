//! Black-box tests of `berth version`, `berth info` (and `system info`) and `berth system prune`.
//!
//! Needs root and `cargo build -p berth` beforehand. Each test has its own data root
//! ([`Berth`]): dropping it removes every container, even when the test fails, and fails the
//! test if a mount or cgroup is left behind; a network made here is removed by its own guard.

use std::fs;

use berth_harness::image::{dangling_image, Berth, IMAGE};
use berth_harness::{need_root, unique};
use serde_json::Value;

/// Removes a network of this test's root when dropped, should `system prune` not have.
struct NetworkGuard<'a>(&'a Berth, String);

impl Drop for NetworkGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["network", "rm", &self.1]);
    }
}

/// The cgroup version that /sys/fs/cgroup's mount implies: 2 only if cgroup2 is mounted there.
fn host_cgroup_version() -> &'static str {
    let mounts = fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
    let cgroup2_root = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 2 && f[1] == "/sys/fs/cgroup" && f[2] == "cgroup2"
    });
    if cgroup2_root {
        "2"
    } else {
        "1"
    }
}

#[test]
fn version_shows_client_and_server_and_formats_the_client_version_alone() {
    need_root!();
    let berth = Berth::new();
    // `--version` as Docker's: "berth version X, build C".
    let line = berth.ok(&["--version"]);
    let expected = line
        .strip_prefix("berth version ")
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("berth --version: {line}"));
    let out = berth.ok(&["version"]);
    assert!(out.starts_with("Client: berth\n"), "{out}");
    assert!(
        out.contains(&format!(" Version:           {expected}\n")),
        "{out}"
    );
    assert!(out.contains("\nServer: berth (daemonless"), "{out}");
    assert!(
        out.contains(" Engine:\n") && out.contains(" berth-runtime:\n"),
        "{out}"
    );
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    assert_eq!(
        berth.ok(&["version", "--format", "{{.Server.KernelVersion}}"]),
        kernel.trim()
    );
    assert_eq!(
        berth.ok(&["version", "--format", "{{.Client.Version}}"]),
        expected
    );
    assert_eq!(
        berth.ok(&["version", "--format", "{{.Server.Version}}"]),
        expected
    );
    let bad = berth.run(&["version", "--format", "{{.Client.Version"]);
    // The docker CLI's own status for it, in `version` (64).
    assert_eq!(bad.code(), Some(64), "a broken template: {}", bad.stderr);
}

#[test]
fn info_counts_containers_by_state_and_images_and_tells_the_cgroup_version() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "up", IMAGE, "sleep", "1000"]);
    berth.ok(&["run", "-d", "--name", "held", IMAGE, "sleep", "1000"]);
    berth.ok(&["pause", "held"]);
    berth.ok(&["create", "--name", "new", IMAGE, "true"]);
    berth.ok(&["run", "--name", "done", IMAGE, "true"]);
    dangling_image(&berth);

    let counts = berth.ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}}",
    ]);
    assert_eq!(
        counts, "4 1 1 2 2",
        "containers, running, paused, stopped, images"
    );
    let out = berth.ok(&["info"]);
    assert!(
        out.contains(" Containers: 4\n  Running: 1\n  Paused: 1\n  Stopped: 2\n Images: 2\n"),
        "{out}"
    );
    let version = host_cgroup_version();
    assert!(
        out.contains(&format!(" Cgroup Version: {version}")),
        "cgroup {version}: {out}"
    );
    assert_eq!(
        berth.ok(&["info", "--format", "{{.CgroupVersion}}"]),
        version
    );
    let root = berth.root().display().to_string();
    assert!(
        out.contains(&format!(" Docker Root Dir: {root}\n")),
        "{out}"
    );

    let json = berth.ok(&["system", "info", "--format", "{{json .}}"]);
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["Containers"], 4, "{v}");
    assert_eq!(v["CgroupVersion"], version, "{v}");
    assert_eq!(v["Driver"], "overlay2", "{v}");
    assert_eq!(v["DockerRootDir"], root.as_str(), "{v}");
    assert!(v["NCPU"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert!(v["MemTotal"].as_u64().unwrap_or(0) > 0, "{v}");
    berth.ok(&["unpause", "held"]);
}

#[test]
fn system_prune_removes_stopped_unused_and_dangling_but_keeps_what_runs() {
    need_root!();
    let berth = Berth::new();
    let image_id = berth.ok(&["images", "-q", "--no-trunc", IMAGE]);
    let kept = berth.ok(&["run", "-d", "--name", "keep", IMAGE, "sleep", "1000"]);
    let stopped = berth.ok(&["create", "--name", "gone", IMAGE, "true"]);
    let dangling = dangling_image(&berth);
    let net = unique("prune-net");
    berth.ok(&["network", "create", "--subnet", "10.236.77.0/24", &net]);
    let _net_guard = NetworkGuard(&berth, net.clone());

    let ran = berth.run(&["system", "prune", "-f"]);
    assert!(ran.success(), "{}", ran.stderr);
    let out = &ran.stdout;
    assert!(!out.contains("WARNING!"), "-f does not ask: {out}");
    assert!(
        out.contains(&format!("Deleted Containers:\n{stopped}\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Deleted Networks:\n{net}\n")),
        "{out}"
    );
    assert!(out.contains(&format!("deleted: {dangling}\n")), "{out}");
    assert!(!out.contains(&kept), "the running container stays: {out}");
    assert!(!out.contains(&image_id), "its image stays: {out}");
    assert!(out.contains("\nTotal reclaimed space: "), "{out}");

    assert_eq!(
        berth.ids(),
        vec![kept.clone()],
        "only the running one is left"
    );
    assert_eq!(
        berth.ok(&["inspect", "--format", "{{.State.Running}}", "keep"]),
        "true"
    );
    assert!(
        berth.run(&["network", "inspect", &net]).code() != Some(0),
        "the unused network is gone"
    );
    let images = berth.ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(images, image_id, "only the used image is left");
    // -a takes every image without a container, which the running one's is not.
    berth.ok(&["system", "prune", "-f", "-a"]);
    let images = berth.ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(images, image_id, "-a keeps the image a container uses");
}

#[test]
fn system_prune_without_force_removes_nothing_unless_told_y() {
    need_root!();
    let berth = Berth::new();
    let stopped = berth.ok(&["create", "--name", "gone", IMAGE, "true"]);
    let dangling = dangling_image(&berth);
    let images = || berth.ok(&["images", "-q", "--no-trunc"]);
    let before = images();
    assert!(before.contains(&dangling), "{before}");

    for (what, input) in [("n", &b"n\n"[..]), ("EOF", &b""[..])] {
        let ran = berth.run_input(&["system", "prune", "--volumes"], input);
        assert!(ran.success(), "{what}: {}", ran.stderr);
        assert!(
            ran.stdout.starts_with(
                "WARNING! This will remove:\n  - all stopped containers\n  - all networks not \
                 used by at least one container\n  - all anonymous volumes not used by at least \
                 one container\n  - all dangling images\n  - unused build cache\n\nAre you sure \
                 you want to continue? [y/N] "
            ),
            "{what}: {}",
            ran.stdout
        );
        assert!(
            !ran.stdout.contains("Total reclaimed"),
            "{what}: {}",
            ran.stdout
        );
        assert_eq!(
            berth.ids(),
            vec![stopped.clone()],
            "{what}: the container stays"
        );
        assert_eq!(images(), before, "{what}: the images stay");
    }

    let ran = berth.run_input(&["system", "prune"], b"y\n");
    assert!(ran.success(), "{}", ran.stderr);
    assert!(
        ran.stdout.contains(&format!("{stopped}\n")),
        "{}",
        ran.stdout
    );
    assert!(berth.ids().is_empty(), "y goes on");
    assert!(!images().contains(&dangling), "the dangling image went");
}

#[test]
fn system_prune_takes_unused_anonymous_volumes_only_with_volumes() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["volume", "create", "named"]);
    // Anonymous volumes are made when the container starts, so it runs once.
    berth.ok(&[
        "run",
        "--name",
        "had",
        "-v",
        "/data",
        IMAGE,
        "sh",
        "-c",
        "echo x > /data/f",
    ]);
    let anonymous = berth.ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Name}}{{end}}",
        "had",
    ]);
    assert!(
        !anonymous.is_empty(),
        "the container has an anonymous volume"
    );
    let volumes = || berth.ok(&["volume", "ls", "-q"]);

    let out = berth.ok(&["system", "prune", "-f"]);
    assert!(!out.contains("Deleted Volumes:"), "{out}");
    assert!(volumes().contains(&anonymous), "kept without --volumes");

    let out = berth.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(
        out.contains(&format!("Deleted Volumes:\n{anonymous}\n")),
        "{out}"
    );
    assert!(
        !out.contains("Total reclaimed space: 0B"),
        "the volume's file counts: {out}"
    );
    assert_eq!(volumes(), "named", "a named volume stays");
}

/// `container prune` and `volume prune` ask first as Docker does (only "y" goes on), and
/// container prune reports what it reclaimed.
#[test]
fn container_and_volume_prune_ask_first() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["create", "--name", "idle", IMAGE, "true"]);
    berth.ok(&["volume", "create", "keepme"]);
    let ran = berth.run_input(&["container", "prune"], b"n\n");
    assert!(ran.success(), "{}", ran.stderr);
    assert!(
        ran.stdout
            .starts_with("WARNING! This will remove all stopped containers.\nAre you sure"),
        "{}",
        ran.stdout
    );
    assert_eq!(berth.ok(&["ps", "-a", "-q"]).lines().count(), 1);
    let ran = berth.run_input(&["volume", "prune", "-a"], b"\n");
    assert!(ran.success(), "{}", ran.stderr);
    assert!(berth.ok(&["volume", "ls", "-q"]).contains("keepme"));
    let out = berth.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(berth.ok(&["ps", "-a", "-q"]), "");
    berth.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(berth.ok(&["volume", "ls", "-q"]), "");
}

/// A data root whose image/tmp was removed (a sweep of temporary files, a backup restored
/// without empty directories) still takes images: the store makes it again when opened, as
/// it did before its open took a shortcut once index.json was there, and as dockerd remakes
/// its tmp. Before, every import, load, pull and build failed on the missing directory.
#[test]
fn a_root_whose_image_tmp_was_removed_still_takes_images() {
    need_root!();
    let berth = Berth::new();
    fs::remove_dir_all(berth.root().join("image/tmp")).expect("remove image/tmp");
    let id = dangling_image(&berth);
    assert!(id.starts_with("sha256:"), "{id}");
    assert!(berth.root().join("image/tmp").is_dir());
    berth.ok(&["run", "--rm", IMAGE, "true"]);
}
