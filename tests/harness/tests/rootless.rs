//! Rootless berth (issue 15): an ordinary user's berth, as a throwaway user with its own
//! ranges in /etc/subuid and /etc/subgid runs it (`RootlessUser`): its own user namespace and
//! paths, the image's owners kept, the seed's lab, a pull from a loopback registry, and what
//! a setuid shell in the image cannot reach; each missing piece said in one line.
#![forbid(unsafe_code)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_harness::image::{image_tar, Berth, IMAGE};
use berth_harness::registry::Registry;
use berth_harness::rootless::{RootlessUser, RANGE};
use serde_json::Value;

#[path = "rootless/more.rs"]
mod more;
#[path = "rootless/networks.rs"]
mod networks;
#[path = "rootless/security.rs"]
mod security;

/// The user with the test image imported as `busybox:latest`.
pub fn user_with_image() -> Option<RootlessUser> {
    let user = RootlessUser::create()?;
    let tar = image_tar();
    user.ok(&["import", tar.to_str().expect("utf-8"), IMAGE]);
    Some(user)
}

fn ns_inode(link: &str) -> u64 {
    let target = std::fs::read_link(link).expect("namespace link");
    let text = target.to_string_lossy();
    text.split_once(":[")
        .and_then(|(_, r)| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .expect("namespace inode")
}

#[test]
fn a_users_berth_keeps_its_state_private_and_maps_its_ranges() {
    let Some(user) = user_with_image() else {
        return;
    };
    let start = user.subid_start.expect("a range");
    let maps = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map /proc/self/gid_map",
    ]);
    let lines: Vec<Vec<String>> = maps
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(lines[0], ["0"], "the container's root: {maps}");
    for map in [&lines[1..3], &lines[3..5]] {
        assert_eq!(
            map[0],
            ["0", &user.uid.to_string(), "1"],
            "root is the user: {maps}"
        );
        assert_eq!(
            map[1],
            ["1", &start.to_string(), &RANGE.to_string()],
            "1.. are the user's range: {maps}"
        );
    }

    // Data under XDG, runtime state private to the user, and the pause process theirs.
    let data = user.data_root();
    assert!(data.join("image").is_dir() && data.join("containers").is_dir());
    let run = user.run_dir().join("berth");
    let meta = std::fs::metadata(&run).expect("the runtime directory");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (user.uid, 0o700));
    for file in ["pause.pid", "pause.lock"] {
        let meta = std::fs::metadata(run.join(file)).expect(file);
        assert_eq!(
            (meta.uid(), meta.mode() & 0o777),
            (user.uid, 0o600),
            "{file}"
        );
    }
    let pause = user.pause_pid().expect("a pause process");
    let owner = std::fs::metadata(format!("/proc/{pause}"))
        .expect("pause")
        .uid();
    assert_eq!(owner, user.uid);
    assert_ne!(
        ns_inode(&format!("/proc/{pause}/ns/user")),
        ns_inode("/proc/self/ns/user")
    );

    let info = user.ok(&["info"]);
    assert!(info.contains("Storage Driver: overlay2"), "{info}");
    assert!(
        info.contains("Overlay: native, in the user namespace"),
        "{info}"
    );
    assert!(info.contains("rootless"), "{info}");
    assert!(
        info.contains(&format!("Docker Root Dir: {}", data.display())),
        "{info}"
    );
}

#[test]
fn run_exec_logs_ps_stop_rm_and_volumes_work_as_a_user() {
    let Some(user) = user_with_image() else {
        return;
    };
    let id = user.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    assert_eq!(
        user.ok(&["ps", "--format", "{{.Names}} {{.Status}}"])
            .split(' ')
            .next(),
        Some("web")
    );
    assert_eq!(user.ok(&["exec", "web", "hostname"]), id[..12]);
    assert_eq!(user.ok(&["exec", "-u", "1000", "web", "id", "-u"]), "1000");
    berth_harness::eventually("the container's first line", || {
        (user.ok(&["logs", "web"]) == "started").then_some(())
    });
    user.ok(&["stop", "-t", "1", "web"]);
    assert!(user
        .ok(&["ps", "-a", "--format", "{{.Status}}"])
        .starts_with("Exited"));
    user.ok(&["rm", "web"]);
    assert_eq!(user.ok(&["ps", "-aq"]), "");

    user.ok(&["volume", "create", "data"]);
    user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let out = user.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        "data:/data",
        IMAGE,
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "kept");
    assert!(user
        .ok(&["volume", "ls", "-q"])
        .lines()
        .any(|v| v == "data"));
    user.ok(&["volume", "rm", "data"]);

    // No cgroup can be made here (no delegation): limits are ignored with a warning, as podman
    // ignores them, and the container runs.
    let ran = user.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        IMAGE,
        "echo",
        "limited",
    ]);
    assert_eq!(ran.stdout.trim(), "limited", "{}", ran.stderr);
    let unified_only = Path::new("/sys/fs/cgroup/cgroup.subtree_control").exists();
    if !unified_only {
        assert!(
            ran.stderr
                .contains("resource limits are not supported and ignored"),
            "{}",
            ran.stderr
        );
    }
    assert_eq!(
        user.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        IMAGE
    );
}

#[test]
fn image_files_keep_their_owners_and_the_containers_root_writes_them() {
    let Some(user) = user_with_image() else {
        return;
    };
    let start = user.subid_start.expect("a range");
    // A layer with a file of the image's user 1000: made in a container, committed.
    user.ok(&[
        "run",
        "--name",
        "owned",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo mine > /home/user/f && chown 1000:1000 /home/user/f /home/user",
    ]);
    user.ok(&["commit", "owned", "owned:1"]);
    user.ok(&["rm", "owned"]);
    let listing = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "owned:1",
        "ls",
        "-ln",
        "/home/user/f",
    ]);
    let fields: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(&fields[2..4], ["1000", "1000"], "{listing}");
    // Root of the container writes a file of another owner, as root does.
    let out = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "owned:1",
        "sh",
        "-c",
        "echo more >> /home/user/f && cat /home/user/f",
    ]);
    assert_eq!(out, "mine\nmore");
    // On the host, the layer's file belongs to the user's subordinate id for 1000.
    let layers = user.data_root().join("image/layers");
    let owned = std::fs::read_dir(&layers)
        .expect("layers")
        .flatten()
        .map(|e| e.path().join("diff/home/user/f"))
        .find(|p| p.exists())
        .expect("the committed layer holds /home/user/f");
    let meta = std::fs::symlink_metadata(owned).expect("stat");
    assert_eq!((meta.uid(), meta.gid()), (start + 999, start + 999));
}

#[test]
fn the_seeds_lab_as_a_user() {
    let Some(user) = user_with_image() else {
        return;
    };
    let out = user.ok(&[
        "run",
        "--name",
        "lab",
        "--pid=host",
        "--network",
        "none",
        IMAGE,
        "/probe",
    ]);
    let report: Value = serde_json::from_str(&out).expect("probe JSON");
    let id = user.ok(&["inspect", "--format", "{{.Id}}", "lab"]);
    let host_pid1 = std::fs::read("/proc/1/cmdline").expect("pid 1");
    let host_pid1 = String::from_utf8_lossy(&host_pid1)
        .trim_end_matches('\0')
        .replace('\0', " ");
    assert_eq!(report["pid1_cmdline"].as_str(), Some(host_pid1.as_str()));
    assert_eq!(
        report["ns"]["pid"].as_u64(),
        Some(ns_inode("/proc/self/ns/pid"))
    );
    assert_ne!(
        report["ns"]["user"].as_u64(),
        Some(ns_inode("/proc/self/ns/user")),
        "a private user namespace"
    );
    let pause = user.pause_pid().expect("pause");
    assert_eq!(
        report["ns"]["user"].as_u64(),
        Some(ns_inode(&format!("/proc/{pause}/ns/user"))),
        "the user's rootless namespace"
    );
    assert_eq!(report["hostname"].as_str(), Some(&id[..12]));
    let env = report["env"].to_string();
    assert!(env.contains(&format!("HOSTNAME={}", &id[..12])), "{env}");
    user.ok(&["rm", "lab"]);

    // A detached loop's environment, read from the host as root reads it.
    user.ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "export F00=BAR; while true; do sleep 100; done",
    ]);
    let pid: i32 = user
        .ok(&["inspect", "--format", "{{.State.Pid}}", "loop"])
        .parse()
        .expect("pid");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let ppid: i32 = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .expect("ppid");
    let monitor = std::fs::read(format!("/proc/{ppid}/cmdline")).expect("monitor cmdline");
    assert!(
        String::from_utf8_lossy(&monitor).contains("__monitor"),
        "the loop's parent is its monitor"
    );
    let env = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    assert!(
        String::from_utf8_lossy(&env).contains("HOSTNAME="),
        "the container's environment"
    );

    // `berth ns`: the user namespace private (not the host's), and what it maps.
    let report = user.ok(&["ns", "loop"]);
    let user_row = report
        .lines()
        .find(|l| l.starts_with("user "))
        .expect("a user row");
    assert!(user_row.ends_with("private"), "{report}");
    let start = user.subid_start.expect("a range");
    let maps = format!("uid map 0 {} 1, 1 {start} {RANGE}", user.uid);
    assert!(report.contains(&maps), "{report}");
}

#[test]
fn a_pull_from_a_loopback_registry_runs_as_a_user() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let Some(user) = RootlessUser::create() else {
        return;
    };
    let root = Berth::new();
    let name = format!("{}/rootless/busybox:1", registry.addr);
    root.ok(&["tag", IMAGE, &name]);
    root.ok(&["push", &name]);
    user.ok(&["pull", &name]);
    let out = user.ok(&["run", "--rm", "--network", "none", &name, "echo", "pulled"]);
    assert_eq!(out, "pulled");
}
