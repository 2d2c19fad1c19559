//! Black-box tests of `berth ns`, `top` (and `--tree`), `stats`, `cp`, `attach` and `volume`.
//!
//! Needs root and `cargo build -p berth` beforehand. Each test has its own data root
//! ([`Berth`]): dropping it removes every container, even when the test fails, and fails the
//! test if a mount or cgroup is left behind.

use berth_harness::eventually;
use berth_harness::need_root;
use std::fs;
use std::io::{Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use berth_harness::image::{Berth, IMAGE};
use berth_harness::{run_with_timeout, unique, COMMAND_TIMEOUT};
use serde_json::Value;

/// The inode of `/proc/<pid>/ns/<kind>` ("self" for the test process).
fn ns_inode(pid: &str, kind: &str) -> u64 {
    fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("stat /proc/{pid}/ns/{kind}: {e}"))
        .ino()
}

fn state_pid(berth: &Berth, name: &str) -> i32 {
    berth
        .ok(&["inspect", "--format", "{{.State.Pid}}", name])
        .parse()
        .expect("State.Pid")
}

/// One namespace row of `berth ns --json`'s report for a container.
fn ns_row<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["Namespaces"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["Kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} row in {report}"))
}

#[test]
fn ns_tells_private_host_and_shared_apart() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "one", IMAGE, "sleep", "1000"]);
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "two",
        "--pid=host",
        "--uts",
        "container:one",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let (pa, pb) = (state_pid(&berth, "one"), state_pid(&berth, "two"));
    let out = berth.ok(&["ns", "--json", "one", "two"]);
    let reports: Vec<Value> = serde_json::from_str(&out).expect("ns --json");
    let (a, b) = (&reports[0], &reports[1]);
    assert_eq!(a["Name"], "one");

    let pid_a = ns_row(a, "pid");
    assert_eq!(pid_a["Sharing"], "private");
    assert_eq!(pid_a["Container"], ns_inode(&pa.to_string(), "pid"));
    assert_eq!(pid_a["Host"], ns_inode("self", "pid"));
    assert_eq!(ns_row(b, "pid")["Sharing"], "host");
    assert_eq!(ns_row(b, "pid")["Container"], ns_inode("self", "pid"));
    assert_eq!(ns_row(a, "uts")["Sharing"], "shared");
    assert_eq!(ns_row(a, "uts")["SharedWith"], serde_json::json!(["two"]));
    assert_eq!(ns_row(b, "uts")["SharedWith"], serde_json::json!(["one"]));
    assert_eq!(
        ns_row(b, "uts")["Container"],
        ns_inode(&pa.to_string(), "uts")
    );
    for kind in ["ipc", "mnt", "net", "cgroup"] {
        assert_eq!(ns_row(b, kind)["Sharing"], "private", "{kind} of b");
        assert_eq!(
            ns_row(b, kind)["Container"],
            ns_inode(&pb.to_string(), kind)
        );
    }
    assert_eq!(ns_row(a, "user")["Sharing"], "host");

    let table = berth.ok(&["ns", "one"]);
    let header = table.lines().next().unwrap_or_default();
    for col in ["KIND", "CONTAINER", "HOST", "SHARING"] {
        assert!(header.contains(col), "{table}");
    }
    let pid_line = table
        .lines()
        .find(|l| l.starts_with("pid "))
        .expect("pid row");
    assert!(
        pid_line.contains(&ns_inode(&pa.to_string(), "pid").to_string())
            && pid_line.ends_with("private"),
        "{table}"
    );

    let all = berth.ok(&["ns", "--all"]);
    let a_pid_ns = ns_inode(&pa.to_string(), "pid").to_string();
    assert!(
        all.lines()
            .any(|l| l.starts_with(&a_pid_ns) && l.contains(" pid ") && l.contains("sleep 1000")),
        "{all}"
    );
    assert!(
        all.contains("one (") && all.contains("two ("),
        "grouped by container: {all}"
    );
    assert!(!berth.run(&["ns", "nosuch"]).success());
}

#[test]
fn top_lists_host_pids_and_tree_draws_them_under_the_monitor() {
    need_root!();
    let berth = Berth::new();
    let script = "export F00=BAR; while true; do echo $$; sleep 100; done";
    berth.ok(&["run", "-d", "--name", "lab", IMAGE, "sh", "-c", script]);
    let init = state_pid(&berth, "lab");
    let monitor = fs::read_to_string(format!("/proc/{init}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse::<i32>()
                .ok()
        })
        .expect("the init's parent");
    let top = eventually("sleep in top", || {
        let out = berth.ok(&["top", "lab"]);
        out.contains("sleep 100").then_some(out)
    });
    let header: Vec<&str> = top
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let sleep_line = top
        .lines()
        .find(|l| l.ends_with("sleep 100"))
        .expect("sleep row");
    let f: Vec<&str> = sleep_line.split_whitespace().collect();
    let sleep: i32 = f[1].parse().expect("PID");
    assert_eq!(
        f[2],
        init.to_string(),
        "the sleep's parent is the shell, as a host pid"
    );
    let environ = fs::read(format!("/proc/{sleep}/environ")).expect("environ");
    assert!(
        environ.split(|b| *b == 0).any(|e| e == b"F00=BAR"),
        "F00=BAR in the sleep's environment"
    );

    let tree = berth.ok(&["top", "--tree", "lab"]);
    let lines: Vec<&str> = tree.lines().skip(1).collect();
    assert!(
        lines[0].contains("__monitor")
            && lines[0].split_whitespace().nth(1) == Some(&*monitor.to_string()),
        "{tree}"
    );
    assert!(
        lines[1].contains(" \\_ sh -c")
            && lines[1].split_whitespace().nth(1) == Some(&*init.to_string()),
        "{tree}"
    );
    assert!(
        lines[2].contains("     \\_ sleep 100")
            && lines[2].split_whitespace().nth(1) == Some(&*sleep.to_string()),
        "{tree}"
    );

    // ps options: the host's ps, filtered to the container's pids.
    let custom = berth.ok(&["top", "lab", "-eo", "pid,comm"]);
    let pids: Vec<&str> = custom
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(pids.contains(&&*init.to_string()), "{custom}");
    assert!(
        !pids.contains(&&*std::process::id().to_string()),
        "only the container's: {custom}"
    );
    berth.ok(&["stop", "-t", "0", "lab"]);
    assert!(
        !berth.run(&["top", "lab"]).success(),
        "a stopped container has no processes"
    );
}

/// Every process under `pid` (itself, its children, theirs), as host pids.
fn tree_of(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let tasks = format!("/proc/{}/task", all[i]);
        for task in fs::read_dir(&tasks).into_iter().flatten().flatten() {
            let children = task.path().join("children");
            let text = fs::read_to_string(children).unwrap_or_default();
            all.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
        i += 1;
    }
    all
}

/// The monitor of the container whose init is `init`: the init's parent.
fn parent_of(pid: i32) -> i32 {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .expect("the parent's pid")
}

/// Whether `/proc/<pid>/environ` has a variable named `name`.
fn has_env(pid: i32, name: &str) -> bool {
    let env = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let prefix = format!("{name}=");
    env.split(|b| *b == 0)
        .any(|e| e.starts_with(prefix.as_bytes()))
}

/// `run`'s monitor is told it was spawned before its record in its environment
/// (BERTH_MONITOR_WHEN_ASKED): nothing of the container's, its `--init` PID 1, its program, an
/// exec'd process, sees that; nor does a monitor spawned later by `start`.
#[test]
fn the_early_monitors_word_stays_in_the_monitor() {
    need_root!();
    const WORD: &str = "BERTH_MONITOR_WHEN_ASKED";
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "envw",
        "--init",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "sleep 1000",
    ]);
    berth.ok(&["exec", "-d", "envw", "sleep", "999"]);
    let init = state_pid(&berth, "envw");
    let monitor = parent_of(init);
    let tree = eventually("the exec'd sleep", || {
        let tree = tree_of(monitor);
        let cmds: Vec<String> = tree
            .iter()
            .map(|p| fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default())
            .collect();
        cmds.iter()
            .any(|c| c.starts_with("sleep\0999"))
            .then_some(tree)
    });
    assert!(
        tree.len() >= 4,
        "monitor, init, sh/sleep, exec'd sleep: {tree:?}"
    );
    for pid in &tree[1..] {
        let cmd = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !has_env(*pid, WORD),
            "{WORD} in the environment of {pid} {cmd:?} ({tree:?})"
        );
    }
    berth.ok(&["stop", "-t", "0", "envw"]);
    berth.ok(&["start", "envw"]);
    let monitor = parent_of(state_pid(&berth, "envw"));
    assert!(
        !has_env(monitor, WORD),
        "a monitor spawned by start thinks it was early"
    );
}

#[test]
fn stats_reads_the_cgroups_once_with_no_stream() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--memory",
        "64m",
        IMAGE,
        "sh",
        "-c",
        "sleep 1000 & wait",
    ]);
    berth.ok(&["create", "--name", "idle", IMAGE, "true"]);
    let line = eventually("two processes in stats", || {
        let out = berth.ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}} {{.MemUsage}}",
            "busy",
        ]);
        out.starts_with("busy 2 ").then_some(out)
    });
    assert!(
        line.ends_with("/ 64MiB"),
        "the memory limit is the container's: {line}"
    );
    let table = berth.ok(&["stats", "--no-stream"]);
    let header = table.lines().next().unwrap_or_default();
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(header.contains(col), "{table}");
    }
    assert!(
        table.contains("busy") && !table.contains("idle"),
        "running ones by default: {table}"
    );
    let all = berth.ok(&[
        "stats",
        "--no-stream",
        "-a",
        "--format",
        "{{.Name}} {{.PIDs}} {{.CPUPerc}}",
    ]);
    assert!(all.lines().any(|l| l == "idle 0 0.00%"), "{all}");
}

#[test]
fn cp_copies_both_ways_and_never_leaves_the_containers_root() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "cpc", IMAGE, "sleep", "1000"]);
    berth.ok(&["exec", "cpc", "sh", "-c", "ln -s / /escape; ln -s ../../.. /up; mkdir -p /d/sub; echo inside > /d/sub/f; ln -s /etc/passwd /d/link"]);
    let host = tempfile::tempdir().expect("host dir");
    // A file only the host has, at a path the links would reach if they were followed outside.
    let marker = std::env::temp_dir().join(unique("berth-cp-marker"));
    fs::write(&marker, "host secret").expect("marker");
    let _cleanup = RemoveOnDrop(marker.clone());
    let m = marker.to_str().expect("utf-8 temp path");

    let out = host.path().join("out");
    for via in ["/escape", "/up"] {
        let ran = berth.run(&[
            "cp",
            &format!("cpc:{via}{m}"),
            out.to_str().unwrap_or_default(),
        ]);
        assert!(
            !ran.success() && !out.exists(),
            "{via}{m} resolved outside the container"
        );
    }
    // Into the container through the links: lands inside, under the container's /tmp.
    let src = host.path().join("in.txt");
    fs::write(&src, "from host").expect("src");
    let name = unique("berth-cp-in");
    for via in ["/escape/tmp", "/up/tmp"] {
        berth.ok(&[
            "cp",
            src.to_str().unwrap_or_default(),
            &format!("cpc:{via}/{name}"),
        ]);
        assert!(
            !std::path::Path::new("/tmp").join(&name).exists(),
            "cp wrote to the host's /tmp via {via}"
        );
        assert_eq!(
            berth.ok(&["exec", "cpc", "cat", &format!("/tmp/{name}")]),
            "from host"
        );
    }
    // A directory out, its link kept a link; and back in under a new name.
    berth.ok(&["cp", "cpc:/d", host.path().to_str().unwrap_or_default()]);
    assert_eq!(
        fs::read_to_string(host.path().join("d/sub/f")).unwrap_or_default(),
        "inside\n"
    );
    assert_eq!(
        fs::read_link(host.path().join("d/link")).expect("link kept"),
        std::path::Path::new("/etc/passwd")
    );
    berth.ok(&[
        "cp",
        host.path().join("d").to_str().unwrap_or_default(),
        "cpc:/copy",
    ]);
    assert_eq!(berth.ok(&["exec", "cpc", "cat", "/copy/sub/f"]), "inside");
    // A stopped container: its root is mounted for the copy and unmounted after (Berth's drop
    // fails the test on a leftover mount).
    berth.ok(&["stop", "-t", "0", "cpc"]);
    let back = host.path().join("back");
    berth.ok(&["cp", "cpc:/copy/sub/f", back.to_str().unwrap_or_default()]);
    assert_eq!(fs::read_to_string(&back).unwrap_or_default(), "inside\n");
    assert!(
        berth_harness::image::mounts_under(berth.root()).is_empty(),
        "cp left its mount"
    );
}

/// Paths resolved inside the container's root walk `..` with `openat2(RESOLVE_IN_ROOT)`, which
/// fails with EAGAIN whenever a rename happens anywhere on the machine during the walk: any
/// process (a container renaming a file in a loop) could make `cp` fail at will. Both ways,
/// with another process renaming files all along, every copy goes through.
#[test]
fn cp_through_dot_dot_holds_while_files_are_renamed_elsewhere() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "cpr", IMAGE, "sleep", "1000"]);
    let host = tempfile::tempdir().expect("host dir");
    let (x, y) = (host.path().join("x"), host.path().join("y"));
    fs::write(&x, "").expect("x");
    // Stopped when the test ends, however it ends (a panic included).
    struct Stop(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let stop = Stop(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
        false,
    )));
    let renamer = {
        let stop = stop.0.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = fs::rename(&x, &y);
                let _ = fs::rename(&y, &x);
                std::thread::sleep(std::time::Duration::from_micros(10));
            }
        })
    };
    let src = host.path().join("in.txt");
    fs::write(&src, "from host").expect("src");
    let out = host.path().join("out");
    let mut failed = Vec::new();
    for _ in 0..40 {
        let ran = berth.run(&[
            "cp",
            "cpr:/etc/../etc/passwd",
            out.to_str().unwrap_or_default(),
        ]);
        let ran_in = berth.run(&[
            "cp",
            src.to_str().unwrap_or_default(),
            "cpr:/tmp/../tmp/in.txt",
        ]);
        failed.extend(
            [ran, ran_in]
                .into_iter()
                .filter(|r| !r.success())
                .map(|r| r.stderr),
        );
    }
    drop(stop);
    renamer.join().expect("renamer");
    assert!(
        failed.is_empty(),
        "{} of 80 failed: {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(
        berth.ok(&["exec", "cpr", "cat", "/tmp/in.txt"]),
        "from host"
    );
}

/// A file the container grows while `cp` reads it: the stream carries the size its header
/// announced and no more. (The tar writer copied the file to its end: what the container
/// appended, a tar entry of its own making, was unpacked as a file of its choosing beside the
/// destination, owned by root and setuid if it liked: an adversary helper's finding.)
#[test]
fn cp_out_of_a_file_the_container_grows_writes_that_file_alone() {
    need_root!();
    let berth = Berth::new();
    let script = "echo owned > /injected && tar cf /p.tar injected && rm /injected && \
        dd if=/dev/zero of=/f bs=1M count=32 2>/dev/null && touch /ready && \
        i=0; while [ $i -lt 3000 ]; do cat /p.tar >> /f; i=$((i+1)); done; sleep 1000";
    berth.ok(&["run", "-d", "--name", "grow", IMAGE, "sh", "-c", script]);
    eventually("the container's file is there", || {
        berth
            .run(&["exec", "grow", "test", "-e", "/ready"])
            .success()
            .then_some(())
    });
    for round in 0..5 {
        let dest = tempfile::tempdir().expect("dest");
        let ran = berth.run(&[
            "cp",
            "grow:/f",
            dest.path().join("f").to_str().unwrap_or_default(),
        ]);
        assert!(ran.success(), "round {round}: {}", ran.stderr);
        let names: Vec<_> = fs::read_dir(dest.path())
            .expect("dest")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            ["f"],
            "round {round}: the container wrote beside the copy"
        );
    }
}

/// A regular file the container swaps for a device node between cp's stat and its open (cp
/// runs on the host as root, outside the container's device cgroup, so a node the container
/// may make but not open, /dev/kmsg's or a disk's, would be read, and opening one runs its
/// driver's open: a watchdog's arms it): cp never opens the device; it copies the file or
/// says it changed. /dev/zero's node here, harmless to open, whose zeros would show. The
/// swapping takes a static C program (renameat2 RENAME_EXCHANGE in a loop), built here, its
/// container held to half a CPU.
#[test]
fn cp_never_reads_a_device_swapped_in_for_a_file() {
    need_root!();
    let tools = tempfile::tempdir().expect("tools");
    let source = tools.path().join("swap.c");
    fs::write(
        &source,
        "#define _GNU_SOURCE\n#include <fcntl.h>\n#include <stdio.h>\n\
         int main(int c, char **v) { for (;;) renameat2(AT_FDCWD, v[1], AT_FDCWD, v[2], RENAME_EXCHANGE); }\n",
    )
    .expect("source");
    let swap = tools.path().join("swap");
    let built = std::process::Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&swap)
        .arg(&source)
        .output();
    if !built.is_ok_and(|o| o.status.success()) {
        berth_harness::skipping(format_args!("needs cc with a static libc"));
        return;
    }
    let berth = Berth::new();
    let tools_mount = format!("{}:/tools:ro", tools.path().display());
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "swapper",
        "-v",
        &tools_mount,
        IMAGE,
        "sleep",
        "1000",
    ]);
    // /d/f: 200 bytes of 'A'; /d/n: /dev/zero's node.
    berth.ok(&[
        "exec",
        "swapper",
        "sh",
        "-c",
        "mkdir /d && printf 'A%.0s' $(seq 200) > /d/f && mknod /d/n c 1 5",
    ]);
    berth.ok(&["exec", "-d", "swapper", "/tools/swap", "/d/f", "/d/n"]);
    let mut copied = 0;
    for round in 0..60 {
        let dest = tempfile::tempdir().expect("dest");
        let ran = berth.run(&["cp", "swapper:/d", dest.path().to_str().unwrap_or_default()]);
        if !ran.success() {
            assert!(
                ran.stderr.contains("replaced while being copied"),
                "round {round}: {}",
                ran.stderr
            );
            continue;
        }
        // Whichever name held the file when it was read holds 'A's (a node is not made on
        // the host's side).
        for name in ["f", "n"] {
            let path = dest.path().join("d").join(name);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
                let content = fs::read(&path).expect("read");
                assert!(
                    content.len() == 200 && content.iter().all(|b| *b == b'A'),
                    "round {round}: {name} holds {} bytes not the file's: the device was read",
                    content.len()
                );
                copied += 1;
            }
        }
    }
    assert!(copied > 0, "no copy went through in 60 rounds");
}

#[test]
fn cp_streams_a_tar_on_stdout_and_from_stdin() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "cps", IMAGE, "sleep", "1000"]);
    berth.ok(&[
        "exec",
        "cps",
        "sh",
        "-c",
        "mkdir -p /d/sub; echo x > /d/sub/f",
    ]);
    let out = berth
        .command()
        .args(["cp", "cps:/d", "-"])
        .output()
        .expect("berth cp to -");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .expect("a tar stream")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("name")
                .display()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["d", "d/sub", "d/sub/f"]);
    // The same stream back in, under /tmp.
    let ran = berth.run_input(&["cp", "-", "cps:/tmp"], &out.stdout);
    assert!(ran.success(), "{}", ran.stderr);
    assert_eq!(berth.ok(&["exec", "cps", "cat", "/tmp/d/sub/f"]), "x");
    let ran = berth.run_input(&["cp", "-", "cps:/d/sub/f"], &out.stdout);
    assert!(
        !ran.success() && ran.stderr.contains("must be a directory"),
        "{}",
        ran.stderr
    );
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn attach_relays_stdin_and_returns_the_exit_code() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "att",
        IMAGE,
        "sh",
        "-c",
        "read l; echo got $l; exit 3",
    ]);
    let mut input = tempfile::tempfile().expect("stdin file");
    input.write_all(b"hello\n").expect("stdin text");
    input.rewind().expect("rewind stdin");
    let mut command = berth.command();
    command.args(["attach", "att"]).stdin(Stdio::from(input));
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert_eq!(ran.stdout, "got hello\n", "{}", ran.stderr);
    assert_eq!(ran.code(), Some(3));
    let again = berth.run(&["attach", "att"]);
    assert_eq!(
        again.code(),
        Some(1),
        "a stopped container cannot be attached"
    );
}

#[test]
fn volumes_are_created_listed_inspected_refused_while_used_and_pruned() {
    need_root!();
    let berth = Berth::new();
    assert_eq!(
        berth.ok(&["volume", "create", "--label", "team=ops", "data"]),
        "data"
    );
    berth.ok(&["volume", "create", "spare"]);
    assert_eq!(berth.ok(&["volume", "ls", "-q"]), "data\nspare");
    let v: Value = serde_json::from_str(&berth.ok(&["volume", "inspect", "data"])).expect("JSON");
    let v = &v[0];
    assert_eq!(
        (
            v["Name"].as_str(),
            v["Driver"].as_str(),
            v["Scope"].as_str()
        ),
        (Some("data"), Some("local"), Some("local"))
    );
    assert_eq!(v["Labels"]["team"], "ops");
    let mountpoint = berth.root().join("volumes/data/_data");
    assert_eq!(v["Mountpoint"].as_str(), mountpoint.to_str());
    assert!(v["CreatedAt"].as_str().is_some_and(|t| t.len() >= 20));

    berth.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f; sleep 1000",
    ]);
    eventually("the container's write", || {
        mountpoint.join("f").exists().then_some(())
    });
    for args in [
        &["volume", "rm", "data"][..],
        &["volume", "rm", "-f", "data"],
    ] {
        assert!(
            !berth.run(args).success(),
            "{args:?} removed a running container's volume"
        );
    }
    berth.ok(&["stop", "-t", "0", "user"]);
    // As Docker: a stopped container's volume stays, -f or not (-f forgives only a missing
    // volume); the message is dockerd's.
    let id = berth.ok(&["inspect", "-f", "{{.Id}}", "user"]);
    for args in [
        &["volume", "rm", "data"][..],
        &["volume", "rm", "-f", "data"],
    ] {
        let refused = berth.run(args);
        assert_eq!(refused.status.code(), Some(1), "{args:?}: {refused:?}");
        let line = format!("remove data: volume is in use - [{id}]");
        assert!(refused.stderr.contains(&line), "{}", refused.stderr);
    }
    assert_eq!(berth.ok(&["volume", "rm", "-f", "nosuch"]), "nosuch");
    let pruned = berth.ok(&["volume", "prune", "-a", "-f"]);
    assert!(
        pruned.contains("spare") && !pruned.contains("data"),
        "{pruned}"
    );
    berth.ok(&["rm", "user"]);
    assert_eq!(berth.ok(&["volume", "rm", "data"]), "data");
    assert!(!mountpoint.exists());
    assert_eq!(berth.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn export_writes_the_containers_filesystem_running_or_stopped() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "exp",
        IMAGE,
        "sh",
        "-c",
        "echo changed > /root/f; ln -s / /root/up; sleep 1000",
    ]);
    eventually("the container's file", || {
        berth
            .run(&["exec", "exp", "cat", "/root/f"])
            .success()
            .then_some(())
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let list = |tar: &std::path::Path| -> String {
        let out = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(tar)
            .output()
            .expect("run tar");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let running = dir.path().join("running.tar");
    berth.ok(&["export", "exp", "-o", running.to_str().unwrap_or_default()]);
    let listing = list(&running);
    assert!(
        listing.contains("./root/f") || listing.contains("root/f"),
        "{listing}"
    );
    assert!(
        listing.contains("bin/busybox"),
        "the image's files are in: {listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('l') && l.contains("root/up ->")),
        "a link is stored as a link, not followed: {listing}"
    );
    berth.ok(&["stop", "-t", "0", "exp"]);
    let stopped = dir.path().join("stopped.tar");
    berth.ok(&["export", "exp", "-o", stopped.to_str().unwrap_or_default()]);
    assert!(
        list(&stopped).contains("root/f"),
        "the stopped container's changes are in"
    );
    assert!(
        berth_harness::image::mounts_under(berth.root()).is_empty(),
        "exporting a stopped container leaves no mount"
    );
    let ran = berth.run(&[
        "export",
        "no-such-container",
        "-o",
        dir.path().join("x.tar").to_str().unwrap_or_default(),
    ]);
    assert_eq!(ran.status.code(), Some(1), "{}", ran.stderr);
    assert!(!dir.path().join("x.tar").exists(), "no partial archive");
}

#[test]
fn rmi_refuses_an_image_a_container_uses_and_images_counts_it() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["create", "--name", "user", IMAGE, "true"]);
    let ran = berth.run(&["rmi", IMAGE]);
    assert_eq!(ran.status.code(), Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("container"), "says why: {}", ran.stderr);
    let count = berth.ok(&["images", "--format", "{{.Containers}}"]);
    assert_eq!(count.trim(), "1", "images counts the container");
    // -f removes the name only: the container's image stays, untagged.
    berth.ok(&["rmi", "-f", IMAGE]);
    let ids = berth.ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), 1, "the image stays: {ids}");
    berth.ok(&["start", "user"]);
    assert_eq!(
        berth.ok(&["wait", "user"]),
        "0",
        "it still runs from the untagged image"
    );
    berth.ok(&["rm", "user"]);
    berth.ok(&["image", "prune", "-f", "-a"]);
    assert!(
        berth.ok(&["images", "-q"]).is_empty(),
        "unused now, prune takes it"
    );
}

/// As Docker does, `create` makes the container's volumes (anonymous and named) at once, and
/// `rm -v` takes the anonymous one with the container.
#[test]
fn create_makes_the_containers_volumes() {
    need_root!();
    let berth = Berth::new();
    #[rustfmt::skip]
    berth.ok(&[
        "create", "--name", "vols", "-v", "/data", "-v", "named:/named", IMAGE, "true",
    ]);
    let volumes = berth.ok(&["volume", "ls", "-q"]);
    let names: Vec<&str> = volumes.lines().collect();
    assert_eq!(names.len(), 2, "{volumes}");
    assert!(names.contains(&"named"), "{volumes}");
    berth.ok(&["rm", "-v", "vols"]);
    assert_eq!(berth.ok(&["volume", "ls", "-q"]), "named");
    berth.ok(&["volume", "rm", "named"]);
}

/// Docker's copy-up: an empty volume mounted where the image has files starts with a copy of
/// them (links as links, owners and modes kept); a volume with content, and a `nocopy` mount,
/// are left as they are.
#[test]
fn an_empty_volume_starts_with_the_images_files() {
    use berth_harness::image::GROUP;
    use std::os::unix::fs::PermissionsExt;
    need_root!();
    let berth = Berth::new();
    let group = berth.ok(&["run", "--rm", "-v", "cfg:/etc", IMAGE, "cat", "/etc/group"]);
    assert_eq!(format!("{group}\n"), GROUP);
    // /bin holds busybox and its applets as links: the volume replaces /bin and still runs.
    berth.ok(&["run", "--rm", "-v", "bins:/bin", IMAGE, "/bin/true"]);
    let bins = berth.root().join("volumes/bins/_data");
    assert_eq!(
        fs::read_link(bins.join("sh")).expect("sh is a link"),
        std::path::Path::new("busybox")
    );
    let busybox = fs::symlink_metadata(bins.join("busybox")).expect("busybox");
    assert!(busybox.is_file());
    assert_eq!(busybox.permissions().mode() & 0o7777, 0o755);

    let check = "test -e /etc/group && echo copied || echo empty";
    let bare = berth.ok(&[
        "run",
        "--rm",
        "-v",
        "bare:/etc:nocopy",
        IMAGE,
        "sh",
        "-c",
        check,
    ]);
    assert_eq!(bare, "empty");
    berth.ok(&["volume", "create", "full"]);
    fs::write(berth.root().join("volumes/full/_data/mine"), "x").expect("a file of its own");
    let full = berth.ok(&["run", "--rm", "-v", "full:/etc", IMAGE, "sh", "-c", check]);
    assert_eq!(full, "empty");
    berth.ok(&["volume", "rm", "cfg", "bins", "bare", "full"]);
}

/// The image is not trusted by copy-up: a mount point that is a link climbing out of the root
/// resolves inside it (the image's /etc, not the host's).
#[test]
fn copy_up_follows_no_link_out_of_the_root() {
    use berth_harness::image::image_tar;
    need_root!();
    let berth = Berth::new();
    let tmp = tempfile::tempdir().expect("temp dir");
    let tar = tmp.path().join("evil.tar");
    fs::copy(image_tar(), &tar).expect("copy the test image");
    std::os::unix::fs::symlink("../../../../../../../../etc", tmp.path().join("data"))
        .expect("the link");
    let appended = std::process::Command::new("tar")
        .arg("-rf")
        .arg(&tar)
        .arg("-C")
        .arg(tmp.path())
        .arg("data")
        .status()
        .expect("tar");
    assert!(appended.success());
    berth.ok(&["import", tar.to_str().unwrap(), "evil:1"]);
    berth.ok(&["run", "--rm", "-v", "climb:/data", "evil:1", "true"]);
    let data = berth.root().join("volumes/climb/_data");
    assert!(
        data.join("group").exists(),
        "the image's /etc was not copied"
    );
    assert!(
        !data.join("debian_version").exists() && !data.join("os-release").exists(),
        "the host's /etc was copied"
    );
    berth.ok(&["volume", "rm", "climb"]);
}

/// A copy-up that fails (here: an image tree deeper than the copy goes) says which entry, and
/// leaves the volume empty, so a later start does not run on half the files.
#[test]
fn a_failed_copy_up_leaves_the_volume_empty() {
    use berth_harness::image::image_tar;
    need_root!();
    let berth = Berth::new();
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut deep = tmp.path().join("deep");
    fs::create_dir(&deep).expect("deep");
    fs::write(deep.join("first"), "copied before the failure").expect("a file");
    for _ in 0..300 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).expect("the deep tree");
    let tar = tmp.path().join("deep.tar");
    fs::copy(image_tar(), &tar).expect("copy the test image");
    let appended = std::process::Command::new("tar")
        .arg("-rf")
        .arg(&tar)
        .arg("-C")
        .arg(tmp.path())
        .arg("deep")
        .status()
        .expect("tar");
    assert!(appended.success());
    berth.ok(&["import", tar.to_str().unwrap(), "deep:1"]);
    let ran = berth.run(&[
        "run",
        "--name",
        "deep",
        "-v",
        "deepvol:/deep",
        "deep:1",
        "true",
    ]);
    assert_eq!(ran.code(), Some(125), "{}", ran.stderr);
    assert!(ran.stderr.contains("too deep"), "{}", ran.stderr);
    let data = berth.root().join("volumes/deepvol/_data");
    assert_eq!(fs::read_dir(&data).expect("the volume").count(), 0);
    berth.run(&["rm", "-f", "deep"]);
    berth.ok(&["volume", "rm", "deepvol"]);
}

/// A stopped container's volume is mounted for a copy where the container has it, its mount
/// point resolved inside the container's root: a container that made its mount point a link
/// to a host directory (`/data -> /../../../<host dir>`) has the volume mounted on its own
/// directory of that name, never on the host's, and the copy lands in the volume. No mount of
/// the copy's is ever the host's: they live in a helper's mount namespace.
#[test]
fn cp_into_a_stopped_container_mounts_its_volume_inside_its_root() {
    need_root!();
    let berth = Berth::new();
    let host = tempfile::tempdir().expect("host dir");
    let hostdir = host.path().to_string_lossy().into_owned();
    let volume = unique("berth-cp-vol");
    let data = format!("{volume}:/data");
    berth.ok(&["run", "--name", "cplink", "-v", &data, IMAGE, "true"]);
    let id = berth.ok(&["inspect", "--format", "{{.Id}}", "cplink"]);
    // What the container left in its root where its volume is not mounted over it: its
    // writable layer, as a process of it could have made it through another mount.
    let upper = berth.root().join("containers").join(&id).join("upper");
    let _ = fs::remove_dir_all(upper.join("data"));
    std::os::unix::fs::symlink(
        format!("/../../../../../../..{hostdir}"),
        upper.join("data"),
    )
    .expect("link in the container's root");
    let src = host.path().join("in");
    fs::write(&src, "to the volume").expect("src");
    berth.ok(&[
        "cp",
        src.to_str().unwrap_or_default(),
        "cplink:/data/copied",
    ]);
    assert!(
        !host.path().join("copied").exists(),
        "cp wrote through the link to the host"
    );
    // The copy's mounts were its helper's alone: none on the host, during it or after.
    let left = berth_harness::image::mounts_under(berth.root());
    assert!(left.is_empty(), "cp left its mounts: {left:?}");
    assert_eq!(
        berth.ok(&["run", "--rm", "-v", &data, IMAGE, "cat", "/data/copied"]),
        "to the volume"
    );
    berth.ok(&["rm", "-f", "cplink"]);
    berth.ok(&["volume", "rm", &volume]);
}

/// The adversary's two ways through a stopped container's mounts, each a link its processes
/// could leave in its root: a `:ro` bind's mount point made a link to `/` (the bind was
/// stacked over the root, the remount made the overlay read-only instead, and the copy wrote
/// the host directory), and a volume's mount point made a link into a host directory bound
/// in (the volume was mounted over it on the host while the copy lasted, on a shared mount
/// for every namespace to see). The first is refused; the second mounts nothing on the host.
#[test]
fn cp_mounts_of_a_stopped_container_never_reach_the_host() {
    need_root!();
    let berth = Berth::new();
    let host = tempfile::tempdir().expect("host dir");
    let ro = host.path().join("ro");
    let shared = host.path().join("shared");
    for d in [&ro, &shared.join("etc/cron.d")] {
        fs::create_dir_all(d).expect("host dirs");
    }
    fs::write(ro.join("keep"), "host").expect("canary");
    fs::write(shared.join("etc/cron.d/job"), "host job").expect("canary");
    let upper = |name: &str| {
        let id = berth.ok(&["inspect", "--format", "{{.Id}}", name]);
        berth.root().join("containers").join(id).join("upper")
    };
    let plant = |name: &str, at: &str, to: &str| {
        let link = upper(name).join(at);
        let _ = fs::remove_dir_all(&link);
        fs::create_dir_all(link.parent().expect("parent")).expect("parent");
        std::os::unix::fs::symlink(to, &link).expect("link in the container's root");
    };
    let payload = host.path().join("payload");
    fs::write(&payload, "from cp").expect("payload");
    let payload = payload.to_string_lossy().into_owned();

    let bind = format!("{}:/w:ro", ro.display());
    berth.ok(&["run", "--name", "roroot", "-v", &bind, IMAGE, "true"]);
    plant("roroot", "w", "/");
    let ran = berth.run(&["cp", &payload, "roroot:/"]);
    assert!(!ran.success(), "cp through a link to the root went on");
    assert!(ran.stderr.contains("leads to its root"), "{}", ran.stderr);
    assert!(
        !ro.join("payload").exists(),
        "cp wrote the read-only bind's host directory"
    );

    // A shared host mount, as systemd makes `/`: what is mounted under it shows in every peer.
    let ok = |cmd: &mut std::process::Command| {
        let out = cmd.output().expect("mount");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(std::process::Command::new("mount")
        .args(["--bind"])
        .arg(&shared)
        .arg(&shared));
    ok(std::process::Command::new("mount")
        .args(["--make-shared"])
        .arg(&shared));
    let _unmount = Unmount(shared.clone());
    let volume = unique("berth-cp-app");
    let etc = format!("{}:/host/etc:ro", shared.join("etc").display());
    let app = format!("{volume}:/var/lib/app");
    berth.ok(&[
        "run", "--name", "hostlink", "-v", &etc, "-v", &app, IMAGE, "true",
    ]);
    plant("hostlink", "var/lib/app", "/host/etc/cron.d");
    // A copy held open (its tar still to come on stdin) while the host is looked at.
    let mut cp = berth
        .command()
        .args(["cp", "-", "hostlink:/tmp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cp");
    eventually("the copy's helper to mount the root", || {
        let helpers = fs::read_dir("/proc").ok()?.filter_map(|e| {
            let pid = e.ok()?.file_name().into_string().ok()?;
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).into_owned();
            cmdline.contains("__stopped-root").then_some(pid)
        });
        let mut mounted = false;
        for pid in helpers {
            let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
            mounted |= info.contains("/var/lib/app") || info.contains("cron.d");
        }
        mounted.then_some(())
    });
    let host_mounts = berth_harness::image::mounts_under(&shared);
    let job = fs::read_to_string(shared.join("etc/cron.d/job")).unwrap_or_default();
    drop(cp.stdin.take());
    let _ = cp.wait();
    assert_eq!(
        host_mounts,
        vec![shared.to_string_lossy().into_owned()],
        "mounts on the host"
    );
    assert_eq!(
        job, "host job",
        "the host's directory was covered during the copy"
    );
    berth.ok(&["rm", "-f", "roroot", "hostlink"]);
    berth.ok(&["volume", "rm", &volume]);
}

/// Unmounts its directory when dropped (lazily: a test that failed may leave users).
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A copy into a stopped container holds its volumes as a user of its own while it lasts,
/// counted in the host's mount namespace: a copy ended by a signal to its process group (^C,
/// `timeout`) leaves no user behind, and the copy that is a volume's last user unmounts its
/// options on the host. (A tmpfs volume: its mount is the volume.)
#[test]
fn cp_into_a_stopped_container_holds_its_volumes_and_lets_them_go() {
    need_root!();
    let berth = Berth::new();
    let volume = unique("berth-cp-tmpfs");
    berth.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        &volume,
    ]);
    let data = berth.root().join("volumes").join(&volume).join("_data");
    let users = berth
        .root()
        .join("volumes")
        .join(&volume)
        .join("users.json");
    let mounted = || {
        berth_harness::image::mounts_under(&data)
            .iter()
            .any(|m| std::path::Path::new(m) == data)
    };
    let at = format!("{volume}:/t");
    berth.ok(&[
        "create",
        "--name",
        "cpheld",
        "--network",
        "none",
        "-v",
        &at,
        IMAGE,
        "true",
    ]);
    // Ended by a signal to its whole group, its tar still to come.
    let ran = std::process::Command::new("sh")
        .arg("-c")
        .arg("sleep 5 | timeout 1 \"$0\" cp - cpheld:/t")
        .arg(berth_harness::image::berth_bin())
        .env("BERTH_ROOT", berth.root())
        .output()
        .expect("timeout");
    assert!(!ran.status.success(), "the copy outlived its timeout");
    eventually("the copy's helper to let the volume go", || {
        (!users.exists() && !mounted()).then_some(())
    });
    // A running container's volume, and a copy into a stopped one that outlasts it.
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "cprun",
        "--network",
        "none",
        "-v",
        &at,
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(mounted(), "the running container's volume");
    let mut cp = berth
        .command()
        .args(["cp", "-", "cpheld:/t"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cp");
    eventually("the copy to hold the volume", || {
        fs::read_to_string(&users)
            .ok()?
            .contains(".cp-")
            .then_some(())
    });
    berth.ok(&["rm", "-f", "cprun"]);
    assert!(mounted(), "the volume went while the copy held it");
    drop(cp.stdin.take());
    let _ = cp.wait();
    eventually("the last user to unmount the volume on the host", || {
        (!users.exists() && !mounted()).then_some(())
    });
    berth.ok(&["rm", "-f", "cpheld"]);
    berth.ok(&["volume", "rm", &volume]);
}
