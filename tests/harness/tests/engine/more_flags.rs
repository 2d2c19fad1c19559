//! The run flags the other files leave out: CPU and swap limits, --device, --userns private,
//! --platform, the log driver and its rotation, --stop-timeout, --restart unless-stopped.

use berth_harness::image::{Berth, IMAGE};

use crate::{eventually, monitors_of, need_root, run_restarting};

fn cgroup_file(controller: &str, id: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn cpu_and_swap_limits_reach_the_cgroup() {
    need_root!();
    let berth = Berth::new();
    let id = berth.ok(&[
        "run",
        "-d",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let Some(quota) = cgroup_file("cpu", &id, "cpu.cfs_quota_us") else {
        berth_harness::skip!("needs cgroup v1 cpu (this test reads v1 files)");
    };
    assert_eq!(quota, "50000", "--cpus 0.5 is half of a 100 ms period");
    assert_eq!(
        cgroup_file("cpu", &id, "cpu.shares").as_deref(),
        Some("512")
    );
    assert_eq!(
        cgroup_file("cpuset", &id, "cpuset.cpus").as_deref(),
        Some("0")
    );
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes").as_deref(),
        Some("67108864")
    );
    if let Some(swap) = cgroup_file("memory", &id, "memory.memsw.limit_in_bytes") {
        assert_eq!(swap, "134217728", "--memory-swap is memory plus swap");
    }
    let ran = berth.run(&["run", "--rm", "--cpuset-cpus", "999", IMAGE, "true"]);
    assert_eq!(
        ran.status.code(),
        Some(125),
        "a CPU the host lacks: {}",
        ran.stderr
    );
}

#[test]
fn a_device_is_created_and_allowed() {
    need_root!();
    let berth = Berth::new();
    let out = berth.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull",
        IMAGE,
        "sh",
        "-c",
        "ls -l /dev/mynull && echo x > /dev/mynull && echo written",
    ]);
    assert!(out.contains("1,   3") && out.contains("written"), "{out}");
    let ran = berth.run(&[
        "run",
        "--rm",
        "--device",
        "/dev/no-such-device",
        IMAGE,
        "true",
    ]);
    assert_eq!(ran.status.code(), Some(125), "{}", ran.stderr);
    assert_eq!(
        ran.stderr.trim().lines().count(),
        1,
        "one line: {}",
        ran.stderr
    );
}

#[test]
fn a_private_user_namespace_maps_root_elsewhere() {
    need_root!();
    let berth = Berth::new();
    let out = berth.ok(&[
        "run",
        "--rm",
        "--userns",
        "private",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/self/uid_map; id -u",
    ]);
    let map: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(map.first().copied(), Some("0"), "{out}");
    assert_ne!(
        map.get(1).copied(),
        Some("0"),
        "root inside is not root outside: {out}"
    );
    assert_eq!(out.lines().last(), Some("0"), "{out}");
}

#[test]
fn platform_must_match_a_local_image() {
    need_root!();
    let berth = Berth::new();
    let ran = berth.run(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--platform",
        "linux/arm64",
        IMAGE,
        "true",
    ]);
    assert_eq!(ran.status.code(), Some(125), "{}", ran.stderr);
    assert!(ran.stderr.contains("linux/arm64"), "{}", ran.stderr);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    berth.ok(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--platform",
        &format!("linux/{arch}"),
        IMAGE,
        "true",
    ]);
}

#[test]
fn log_driver_none_and_rotation() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        IMAGE,
        "echo",
        "unseen",
    ]);
    let ran = berth.run(&["logs", "quiet"]);
    assert!(!ran.success() && !ran.stdout.contains("unseen"), "{ran:?}");
    berth.ok(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        IMAGE,
        "sh",
        "-c",
        "i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); done",
    ]);
    let id = berth.ok(&["inspect", "-f", "{{.Id}}", "chatty"]);
    let log = berth.root().join(format!("containers/{id}/{id}-json.log"));
    assert!(log.exists(), "the current log");
    assert!(log.with_extension("log.1").exists(), "one rotated file");
    assert!(
        !log.with_extension("log.2").exists(),
        "no more than max-file files"
    );
    assert!(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) <= 1024);
    let logs = berth.ok(&["logs", "chatty"]);
    assert!(
        logs.ends_with("line 99"),
        "the newest lines survive: {logs}"
    );
}

#[test]
fn stop_timeout_and_unless_stopped() {
    need_root!();
    let berth = Berth::new();
    // A shell as PID 1 ignores SIGTERM: stop kills it after --stop-timeout.
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "--stop-timeout",
        "1",
        IMAGE,
        "sh",
        "-c",
        "sleep 1000",
    ]);
    let inspect = berth.inspect("stubborn");
    assert_eq!(inspect["Config"]["StopTimeout"], 1);
    berth.ok(&["stop", "stubborn"]);
    assert_eq!(berth.inspect("stubborn")["State"]["ExitCode"], 137);

    let id = run_restarting(&berth, "again", "unless-stopped", "exit 1");
    eventually("a restart", || {
        (berth.inspect("again")["RestartCount"].as_u64().unwrap_or(0) >= 2).then_some(())
    });
    berth.ok(&["stop", "-t", "0", "again"]);
    let after = berth.inspect("again");
    assert_eq!(after["State"]["Status"], "exited", "{after}");
    let count = after["RestartCount"].clone();
    // Restarts are the monitor's: once it has ended, no more can come.
    eventually("the monitor to end after stop", || {
        monitors_of(&id).is_empty().then_some(())
    });
    assert_eq!(
        berth.inspect("again")["RestartCount"],
        count,
        "stopped means no more restarts"
    );
}

#[test]
fn run_passes_its_signals_to_the_container() {
    need_root!();
    let berth = Berth::new();
    let (mut child, mut out) = run_until_ready(
        &berth,
        "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
    );
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
    let status = child.wait().expect("wait");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    assert!(
        rest.contains("got TERM"),
        "the container got the signal: {rest}"
    );
    assert_eq!(status.code(), Some(7), "and its exit code came back");
}

/// `berth run --rm IMAGE sh -c script` (no terminal, stdout piped) once the script printed its
/// first line, `ready`: the CLI and the rest of its output.
fn run_until_ready(
    berth: &Berth,
    script: &str,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    let mut child = berth
        .command()
        .args(["run", "--rm", IMAGE, "sh", "-c", script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn berth run");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("read");
    assert_eq!(line.trim(), "ready");
    (child, out)
}

/// Docker's CLI forwards every signal it gets (but SIGCHLD, SIGPIPE and its runtime's SIGURG),
/// real-time ones included; berth's passed on six, and died of the rest (SIGRTMIN+3 ended the
/// CLI with 165 and left the container running).
#[test]
fn run_passes_on_real_time_and_other_signals_too() {
    need_root!();
    let berth = Berth::new();
    for (signal, code) in [("37", 7), ("ALRM", 8)] {
        let (mut child, _out) = run_until_ready(
            &berth,
            "trap 'exit 7' 37; trap 'exit 8' ALRM; echo ready; while :; do sleep 0.1; done",
        );
        let sent = std::process::Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let status = child.wait().expect("wait");
        assert_eq!(
            status.code(),
            Some(code),
            "{signal}: the container's trap's code"
        );
    }
}

/// CVE-2019-5736: the process that enters a container (the monitor, which forks its init and
/// every exec'd process) runs from a binary no container process can write through
/// /proc/<pid>/exe; `berth exec`, even with a global flag with a value before the command, only
/// asks the monitor, whose child the exec'd process is.
#[test]
fn monitor_and_exec_run_from_a_read_only_binary() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "guarded", IMAGE, "sleep", "1000"]);
    let inspect = berth.inspect("guarded");
    let pid = inspect["State"]["Pid"].as_i64().unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let ppid = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(1))
        .unwrap_or("0");
    let unwritable = |pid: &str| {
        let link = format!("/proc/{pid}/exe");
        let exe = std::fs::read_link(&link).unwrap_or_default();
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(&link)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"x"));
        (exe, written.is_err())
    };
    let (exe, safe) = unwritable(ppid);
    assert!(
        safe,
        "the monitor's binary {exe:?} is writable through /proc/{ppid}/exe"
    );
    let mut exec = berth
        .command()
        .args([
            "--insecure-registry",
            "example.invalid",
            "exec",
            "guarded",
            "sleep",
            "30",
        ])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn berth exec");
    // The exec'd `sleep 30`: in the container's pid namespace.
    let container_ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).expect("pid ns");
    let parent = eventually("the exec'd process to run", || {
        let dir = std::fs::read_dir("/proc").ok()?;
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|p| {
                let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                let ns = std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
                cmdline == b"sleep\x0030\0" && ns.as_ref() == Some(&container_ns)
            })
            .find_map(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
                let ppid = stat.rsplit(')').next()?.split_whitespace().nth(1)?;
                Some(ppid.to_string())
            })
    });
    let _ = exec.kill();
    let _ = exec.wait();
    assert_eq!(parent, ppid, "the exec'd process is the monitor's child");
}

/// A container that never reads its stdin must not stall its monitor: with endless input
/// piped to `run -i`, `stop` still works and run returns the container's code.
#[test]
fn unread_stdin_does_not_stall_the_monitor() {
    need_root!();
    let berth = Berth::new();
    let zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
    let mut run = berth
        .command()
        .args(["run", "-i", "--name", "deaf", IMAGE, "sleep", "1000"])
        .stdin(zero)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn berth run");
    eventually("the container to run", || {
        let ran = berth.run(&["inspect", "-f", "{{.State.Status}}", "deaf"]);
        (ran.success() && ran.stdout.trim() == "running").then_some(())
    });
    // Once run has read 1 MiB of input, the container's 64 KiB pipe is full and the monitor
    // holds most of the rest as its backlog (only run's chunk and the socket's buffer are in
    // flight). Stop must still get through.
    eventually("run to read 1 MiB of input", || {
        let io = std::fs::read_to_string(format!("/proc/{}/io", run.id())).ok()?;
        let read = io.lines().find_map(|l| l.strip_prefix("rchar: "))?;
        (read.trim().parse::<u64>().ok()? >= 1 << 20).then_some(())
    });
    berth.ok(&["stop", "-t", "1", "deaf"]);
    let status = run.wait().expect("wait for run");
    assert_eq!(
        status.code(),
        Some(137),
        "killed after the timeout, and run says so"
    );
}

/// `run --sig-proxy=false`, as Docker's: a signal to the attached CLI is not passed on, so the
/// CLI dies of it and the container runs on; by default the container's process gets it.
/// Also `--label-file` (blank lines and comments skipped, a bare key, `--label` winning),
/// `--volumes-from` (read-only with `:ro`), `--link`, refused with one line and 125, and
/// `exec --env-file`.
#[test]
fn sig_proxy_label_file_volumes_from_link_and_exec_env_file() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    need_root!();
    let berth = Berth::new();
    let script = "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done";
    for (name, proxy) in [("proxied", "--sig-proxy"), ("kept", "--sig-proxy=false")] {
        let mut run = berth
            .command()
            .args(["run", "--name", name, proxy, IMAGE, "sh", "-c", script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn berth run");
        let mut lines = BufReader::new(run.stdout.take().expect("stdout")).lines();
        // Printed by the relay: it has our signals in hand by now.
        assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
        let pid = nix::unistd::Pid::from_raw(run.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let status = run.wait().expect("wait for berth run");
        let state = berth.ok(&["inspect", "--format", "{{.State.Status}}", name]);
        if name == "proxied" {
            assert_eq!(status.code(), Some(3), "the container's trap ends it");
            assert_eq!(
                lines.next().and_then(Result::ok).as_deref(),
                Some("got-term")
            );
            assert_eq!(state, "exited");
        } else {
            assert_eq!(status.signal(), Some(15), "the CLI dies of it: {status}");
            assert_eq!(state, "running", "the container runs on");
        }
    }
    berth.ok(&["rm", "-f", "proxied", "kept"]);

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("labels");
    std::fs::write(&file, "# a comment\nA=1\n  B=two\n\nC\n").expect("label file");
    let file = file.to_string_lossy();
    berth.ok(&[
        "create",
        "--name",
        "labelled",
        "--label-file",
        &file,
        "-l",
        "A=9",
        IMAGE,
        "true",
    ]);
    let labels = berth.ok(&["inspect", "--format", "{{json .Config.Labels}}", "labelled"]);
    assert_eq!(labels, r#"{"A":"9","B":"two","C":""}"#);

    berth.ok(&[
        "run",
        "-d",
        "--name",
        "data",
        "-v",
        "/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f && sleep 1000",
    ]);
    let read = [
        "run",
        "--rm",
        "--volumes-from",
        "data",
        IMAGE,
        "cat",
        "/data/f",
    ];
    assert_eq!(
        crate::eventually("data's file", || {
            let ran = berth.run(&read);
            ran.success().then(|| ran.stdout.trim().to_string())
        }),
        "kept"
    );
    let write = [
        "run",
        "--rm",
        "--volumes-from",
        "data:ro",
        IMAGE,
        "touch",
        "/data/g",
    ];
    let refused = berth.run(&write);
    assert!(
        refused.stderr.contains("Read-only file system"),
        "{}",
        refused.stderr
    );

    let linked = berth.run(&["run", "--rm", "--link", "data:db", IMAGE, "true"]);
    assert_eq!(linked.code(), Some(125));
    assert_eq!(
        linked.stderr.trim(),
        "berth: --link data:db: berth has no container links: put the containers on a user network, where they reach each other by name"
    );
    // exec --env-file: the file's, then -e; a bare key takes the caller's value, as run's.
    let env_file = dir.path().join("env");
    // A byte order mark, a comment, leading blanks dropped; a value's trailing blank kept.
    std::fs::write(&env_file, "\u{feff}E1=one \n# c\n  E2\n").expect("env file");
    let out = berth
        .command()
        .env("E2", "ours")
        .args(["exec", "--env-file"])
        .arg(&env_file)
        .args([
            "-e",
            "E3=3",
            "data",
            "sh",
            "-c",
            "printf '[%s][%s][%s]' \"$E1\" \"$E2\" \"$E3\"",
        ])
        .output()
        .expect("berth exec");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[one ][ours][3]");
    // Unlimited swap without a memory limit is no limit, as Docker takes it.
    berth.ok(&["run", "--rm", "--memory-swap", "-1", IMAGE, "true"]);
    berth.ok(&["rm", "-f", "-v", "labelled", "data"]);
}
