//! `run` flags seen from inside the container by the probe: environment, user, mounts,
//! security, resources, namespaces, files berth writes, and metadata.

use std::fs;

use berth_harness::image::{Berth, IMAGE};
use serde_json::Value;

use crate::{
    cap_mask, env_var, has_env, host_dir, mount_at, need_root, ns_of, path_str, probe_ns, state_pid,
};

const CAP_CHOWN: u64 = 1 << 0;
const CAP_SYS_ADMIN: u64 = 1 << 21;
const CAP_NET_ADMIN: u64 = 1 << 12;

#[test]
fn env_env_file_workdir_and_entrypoint() {
    need_root!();
    let berth = Berth::new();
    let host = host_dir();
    let env_file = host.path().join("env");
    fs::write(&env_file, "# a comment\nFROM_FILE=one\nSPACED=two words\n").unwrap();
    let report = berth.probe(&[
        "-e",
        "A=1",
        "--env",
        "EMPTY=",
        "--env-file",
        path_str(&env_file),
        "-w",
        "/tmp/work",
    ]);
    assert!(has_env(&report, "A=1"));
    assert!(has_env(&report, "EMPTY="));
    assert!(has_env(&report, "FROM_FILE=one"));
    assert!(has_env(&report, "SPACED=two words"));
    assert_eq!(report["cwd"], "/tmp/work", "-w is created if missing");

    let out = berth.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/echo",
        IMAGE,
        "from",
        "entrypoint",
    ]);
    assert_eq!(out, "from entrypoint");
}

#[test]
fn user_by_id_and_name_and_extra_groups() {
    need_root!();
    let berth = Berth::new();
    let report = berth.probe(&["-u", "1234:4321"]);
    assert_eq!(
        (report["uid"].clone(), report["gid"].clone()),
        (1234.into(), 4321.into())
    );

    let report = berth.probe(&["-u", "user"]);
    assert_eq!(report["uid"], 1000);
    assert_eq!(report["gid"], 1000);
    let groups: Vec<u64> = serde_json::from_value(report["groups"].clone()).unwrap();
    assert!(
        groups.contains(&50),
        "user is a member of staff: {groups:?}"
    );
    assert_eq!(env_var(&report, "HOME").as_deref(), Some("/home/user"));

    let report = berth.probe(&["-u", "nobody", "--group-add", "staff", "--group-add", "777"]);
    assert_eq!(report["uid"], 65534);
    let groups: Vec<u64> = serde_json::from_value(report["groups"].clone()).unwrap();
    assert!(groups.contains(&50) && groups.contains(&777), "{groups:?}");
}

#[test]
fn bind_mounts_read_only_and_read_write() {
    need_root!();
    let berth = Berth::new();
    let host = host_dir();
    fs::write(host.path().join("in"), "from the host").unwrap();
    let dir = path_str(host.path());

    let ro = format!("{dir}:/data:ro");
    let out = berth.run(&[
        "run", "--rm", "-v", &ro, IMAGE, "/probe", "write", "/data/x", "y",
    ]);
    assert_eq!(out.code(), Some(1), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("EROFS"), "{}", out.stdout);
    let out = berth.ok(&["run", "--rm", "-v", &ro, IMAGE, "/probe", "cat", "/data/in"]);
    assert_eq!(out, "from the host");

    let rw = format!("{dir}:/data");
    berth.ok(&[
        "run",
        "--rm",
        "-v",
        &rw,
        IMAGE,
        "/probe",
        "write",
        "/data/out",
        "hi",
    ]);
    assert_eq!(fs::read_to_string(host.path().join("out")).unwrap(), "hi");

    let mount = format!("type=bind,source={dir},target=/m,readonly");
    let out = berth.run(&[
        "run", "--rm", "--mount", &mount, IMAGE, "/probe", "write", "/m/x", "y",
    ]);
    assert!(
        out.stdout.contains("EROFS"),
        "--mount readonly: {}",
        out.stdout
    );
}

#[test]
fn a_named_volume_outlives_its_container_and_tmpfs_is_tmpfs() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run", "--rm", "-v", "keep:/v", IMAGE, "/probe", "write", "/v/f", "kept",
    ]);
    let out = berth.ok(&[
        "run", "--rm", "-v", "keep:/w", IMAGE, "/probe", "cat", "/w/f",
    ]);
    assert_eq!(out, "kept");

    let report = berth.probe(&["--tmpfs", "/scratch", "--read-only"]);
    let scratch = mount_at(&report, "/scratch").expect("a mount at /scratch");
    assert_eq!(scratch["fstype"], "tmpfs");
    let root = mount_at(&report, "/").expect("a root mount");
    let ro = root["options"]
        .as_str()
        .unwrap_or("")
        .split(',')
        .any(|o| o == "ro");
    assert!(ro, "--read-only root: {root}");
    let out = berth.run(&[
        "run",
        "--rm",
        "--read-only",
        IMAGE,
        "/probe",
        "write",
        "/x",
        "y",
    ]);
    assert!(out.stdout.contains("EROFS"), "{}", out.stdout);
    let out = berth.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        IMAGE,
        "/probe",
        "write",
        "/scratch/x",
        "y",
    ]);
    assert_eq!(out, "ok", "a tmpfs stays writable under --read-only");
}

#[test]
fn capabilities_privileged_and_security_options() {
    need_root!();
    let berth = Berth::new();
    let default = cap_mask(&berth.probe(&[]), "CapEff");
    assert_eq!(default & (CAP_SYS_ADMIN | CAP_NET_ADMIN), 0);
    assert_ne!(default & CAP_CHOWN, 0);

    let report = berth.probe(&[
        "--cap-add",
        "SYS_ADMIN",
        "--cap-add",
        "CAP_NET_ADMIN",
        "--cap-drop",
        "chown",
    ]);
    let eff = cap_mask(&report, "CapEff");
    assert_ne!(eff & CAP_SYS_ADMIN, 0, "--cap-add SYS_ADMIN");
    assert_ne!(eff & CAP_NET_ADMIN, 0, "--cap-add CAP_NET_ADMIN");
    assert_eq!(eff & CAP_CHOWN, 0, "--cap-drop chown");

    let report = berth.probe(&["--cap-drop", "ALL"]);
    assert_eq!(cap_mask(&report, "CapEff"), 0);

    let report = berth.probe(&["--privileged"]);
    let host_bounding = host_caps("CapBnd");
    assert_eq!(
        cap_mask(&report, "CapEff"),
        host_bounding,
        "--privileged: every capability"
    );
    assert_eq!(report["seccomp"], 0, "--privileged: no seccomp filter");

    let report = berth.probe(&["--security-opt", "no-new-privileges"]);
    assert_eq!(report["no_new_privs"], 1);
    assert_eq!(report["seccomp"], 2);
    let report = berth.probe(&["--security-opt", "seccomp=unconfined"]);
    assert_eq!(report["seccomp"], 0);
    assert_eq!(report["no_new_privs"], 0);
}

fn host_caps(set: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{set}:")))
        .expect("cap line")
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn memory_and_pids_limits_reach_the_cgroup() {
    need_root!();
    let berth = Berth::new();
    let id = berth.ok(&[
        "run",
        "-d",
        "-m",
        "64m",
        "--pids-limit",
        "10",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let memory = format!("/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes");
    let v2 = format!("/sys/fs/cgroup/berth/{id}/memory.max");
    let limit = fs::read_to_string(&memory).or_else(|_| fs::read_to_string(&v2));
    assert_eq!(limit.expect("the memory cgroup").trim(), "67108864");
    let out = berth.ok(&["exec", &id, "/probe", "forkbomb", "20"]);
    let spawned: Value = serde_json::from_str(&out).unwrap();
    let spawned = spawned["spawned"].as_u64().unwrap();
    assert!(
        spawned < 10,
        "--pids-limit 10 let {spawned} more processes start"
    );
}

#[test]
fn memory_and_pids_limits_are_visible_inside() {
    need_root!();
    let berth = Berth::new();
    let out = berth.ok(&[
        "run", "--rm", "-m", "64m", "--pids-limit", "10", IMAGE, "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; ls /sys/fs/cgroup/memory",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("67108864"));
    assert_eq!(lines.next(), Some("10"));
    assert!(
        !out.contains("berth\n"),
        "the host's cgroups are visible: {out}"
    );
}

/// As in Docker, the container's process starts with no signal ignored or blocked, though the
/// monitor that forks it (a Rust program) ignores SIGPIPE.
#[test]
fn the_process_starts_with_no_signal_ignored() {
    need_root!();
    let berth = Berth::new();
    let out = berth.ok(&[
        "run",
        "--rm",
        IMAGE,
        "grep",
        "-E",
        "^Sig(Ign|Blk)",
        "/proc/self/status",
    ]);
    assert_eq!(out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000");
}

/// A process the kernel's OOM killer takes: exit 137, and inspect says OOMKilled (read from
/// the cgroup by berth-cgroups before the cgroup goes).
#[test]
fn an_oom_kill_shows_in_inspect() {
    need_root!();
    let berth = Berth::new();
    #[rustfmt::skip]
    let ran = berth.run(&[
        "run", "--name", "oom", "-m", "32m", "--memory-swap", "32m", IMAGE, "/probe",
        "alloc", "200",
    ]);
    assert_eq!(ran.code(), Some(137), "not OOM-killed: {}", ran.stderr);
    let oom = berth.ok(&["inspect", "--format", "{{.State.OOMKilled}}", "oom"]);
    assert_eq!(oom.trim(), "true");
    berth.ok(&["rm", "oom"]);
}

#[test]
fn ulimit_sysctl_and_shm_size() {
    need_root!();
    let berth = Berth::new();
    let report = berth.probe(&[
        "--ulimit",
        "nofile=100:200",
        "--sysctl",
        "kernel.shm_rmid_forced=1",
    ]);
    let nofile = &report["rlimits"]["RLIMIT_NOFILE"];
    assert_eq!(
        (nofile["soft"].clone(), nofile["hard"].clone()),
        (100.into(), 200.into())
    );
    let out = berth.ok(&[
        "run",
        "--rm",
        "--sysctl",
        "kernel.shm_rmid_forced=1",
        "--shm-size",
        "16m",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/sys/kernel/shm_rmid_forced; df -k /dev/shm | tail -n 1",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"), "--sysctl");
    let df: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(df.get(1), Some(&"16384"), "--shm-size 16m: df says {df:?}");
}

/// Docker's network is in the container's namespace before runc's init writes the sysctls:
/// one of eth0 applies to it, and a `default` one is for interfaces made after, not eth0. The
/// network is attached while the init sets up its root: every time, not when it was quicker.
#[test]
fn interface_sysctls_are_written_once_eth0_is_there() {
    need_root!();
    let berth = Berth::new();
    let conf = "/proc/sys/net/ipv4/conf";
    let script = format!(
        "cat {conf}/eth0/arp_announce {conf}/eth0/igmpv3_unsolicited_report_interval \
         {conf}/lo/igmpv3_unsolicited_report_interval"
    );
    for round in 0..8 {
        let ran = berth.run(&[
            "run",
            "--rm",
            "--sysctl",
            "net.ipv4.conf.eth0.arp_announce=2",
            "--sysctl",
            "net.ipv4.conf.default.igmpv3_unsolicited_report_interval=1234",
            IMAGE,
            "sh",
            "-c",
            &script,
        ]);
        assert!(ran.success(), "round {round}: {}", ran.stderr);
        let values: Vec<&str> = ran.stdout.split_whitespace().collect();
        assert_eq!(values.first(), Some(&"2"), "round {round}: eth0's sysctl");
        assert_eq!(
            values.get(1),
            values.get(2),
            "round {round}: eth0 took the default written after it was made (lo did not)"
        );
    }
}

#[test]
fn namespaces_of_another_container_and_of_the_host() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "other", IMAGE, "sleep", "1000"]);
    let other = state_pid(&berth.inspect("other")).to_string();
    let report = berth.probe(&["--pid", "container:other", "--uts", "container:other"]);
    for kind in ["pid", "uts"] {
        assert_eq!(
            probe_ns(&report, kind),
            ns_of(&other, kind),
            "{kind} is other's"
        );
    }
    assert_ne!(probe_ns(&report, "mnt"), ns_of(&other, "mnt"));
    assert_ne!(
        report["pid"], 1,
        "the pid namespace's init is other's sleep"
    );

    let report = berth.probe(&["--cgroupns", "host", "--uts", "host", "--ipc", "host"]);
    for kind in ["cgroup", "uts", "ipc"] {
        assert_eq!(
            probe_ns(&report, kind),
            ns_of("self", kind),
            "--{kind} host"
        );
    }
    let report = berth.probe(&[]);
    assert_ne!(
        probe_ns(&report, "cgroup"),
        ns_of("self", "cgroup"),
        "cgroupns private by default"
    );
}

#[test]
fn a_private_time_namespace_shifts_the_clocks() {
    need_root!();
    let berth = Berth::new();
    let before = host_boottime();
    let report = berth.probe(&[
        "--timens",
        "private",
        "--time-offset",
        "monotonic=86400",
        "--time-offset",
        "boottime=172800",
    ]);
    assert_ne!(probe_ns(&report, "time"), ns_of("self", "time"));
    let uptime = report["clock"]["boottime_secs"].as_f64().expect("uptime");
    assert!(
        uptime >= before + 172800.0,
        "uptime {uptime} is not 2 days past {before}"
    );
    let monotonic = report["clock"]["monotonic_secs"]
        .as_f64()
        .expect("monotonic");
    assert!(monotonic >= 86400.0, "monotonic {monotonic}");
    let offsets = report["clock"]["timens_offsets"].as_str().unwrap_or("");
    assert!(
        offsets.contains("86400") && offsets.contains("172800"),
        "{offsets}"
    );
}

fn host_boottime() -> f64 {
    let uptime = fs::read_to_string("/proc/uptime").unwrap();
    uptime.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn hostname_add_host_dns_label_cidfile() {
    need_root!();
    let berth = Berth::new();
    let host = host_dir();
    let cidfile = host.path().join("cid");
    let out = berth.ok(&[
        "run",
        "--name",
        "meta",
        "--hostname",
        "box",
        "--add-host",
        "db.local:10.1.2.3",
        "--dns",
        "10.9.9.9",
        "--label",
        "team=berth",
        "--cidfile",
        path_str(&cidfile),
        IMAGE,
        "sh",
        "-c",
        "hostname; cat /etc/hosts /etc/resolv.conf /etc/hostname",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("box"));
    let rest: Vec<&str> = lines.collect();
    let has = |f: &dyn Fn(&str) -> bool| rest.iter().any(|l| f(l));
    assert!(
        has(&|l| l.starts_with("10.1.2.3") && l.contains("db.local")),
        "{out}"
    );
    assert!(has(&|l| l.trim() == "nameserver 10.9.9.9"), "{out}");
    assert!(has(&|l| l.trim() == "box"), "/etc/hostname: {out}");

    let inspect = berth.inspect("meta");
    assert_eq!(inspect["Config"]["Labels"]["team"], "berth");
    assert_eq!(inspect["Config"]["Hostname"], "box");
    let id = inspect["Id"].as_str().unwrap();
    assert_eq!(fs::read_to_string(&cidfile).unwrap().trim(), id);
    let filtered = berth.ok(&["ps", "-a", "-q", "--filter", "label=team=berth"]);
    assert_eq!(filtered, &id[..12]);
}

#[test]
fn stop_signal_is_what_stop_sends() {
    need_root!();
    let berth = Berth::new();
    let script = "trap 'exit 7' USR1; while :; do sleep 0.1; done";
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        "--stop-signal",
        "SIGUSR1",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    berth.ok(&["stop", "-t", "60", "sig"]);
    let inspect = berth.inspect("sig");
    assert_eq!(
        inspect["State"]["ExitCode"], 7,
        "USR1 reached the trap, not a SIGKILL"
    );
    assert_eq!(inspect["Config"]["StopSignal"], "SIGUSR1");
}

#[test]
fn init_is_pid_1_and_the_command_is_not() {
    need_root!();
    let berth = Berth::new();
    let out = berth.ok(&[
        "run",
        "--rm",
        "--init",
        IMAGE,
        "sh",
        "-c",
        "echo $$; cat /proc/1/cmdline",
    ]);
    let mut lines = out.lines();
    let shell_pid: u32 = lines.next().unwrap().parse().unwrap();
    assert_ne!(shell_pid, 1, "the shell is not PID 1 with --init");
    let pid1 = lines.next().unwrap_or("");
    assert!(!pid1.starts_with("sh"), "PID 1 is the reaper, not {pid1:?}");
    // A zombie left by the command is reaped: the orphaned child does not linger. Its /proc
    // entry goes only once it is reaped; the count bounds the wait (60 s) in case it never is.
    let script = "sh -c 'sleep 0.2 & echo $! > /tmp/orphan'; p=$(cat /tmp/orphan); i=0; \
        while [ -e /proc/$p ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
        ps -o stat,comm | grep -c '^Z' || true";
    let out = berth.ok(&["run", "--rm", "--init", IMAGE, "sh", "-c", script]);
    assert_eq!(out.lines().last(), Some("0"), "zombies: {out}");
}

#[test]
fn ipc_of_another_container() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--ipc",
        "shareable",
        IMAGE,
        "sleep",
        "1000",
    ]);
    berth.ok(&[
        "exec",
        "other",
        "/probe",
        "write",
        "/dev/shm/mark",
        "shared",
    ]);
    let other = state_pid(&berth.inspect("other")).to_string();
    let report = berth.probe(&["--ipc", "container:other"]);
    assert_eq!(probe_ns(&report, "ipc"), ns_of(&other, "ipc"));
    let out = berth.ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:other",
        IMAGE,
        "cat",
        "/dev/shm/mark",
    ]);
    assert_eq!(out, "shared", "/dev/shm is the other container's");
    // A container that joined `other` passes on other's /dev/shm (Docker's donor ShmPath).
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "middle",
        "--ipc",
        "container:other",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let out = berth.ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:middle",
        IMAGE,
        "cat",
        "/dev/shm/mark",
    ]);
    assert_eq!(out, "shared", "through middle");
    // A private container's directory may hold an unmounted `shm` (as an older berth left
    // it): that is no shareable tmpfs, and joining it is refused.
    let private = berth.ok(&["run", "-d", "--name", "private", IMAGE, "sleep", "1000"]);
    let leftover = berth.root().join("containers").join(&private).join("shm");
    fs::create_dir(&leftover).expect("the older berth's directory");
    let refused = berth.run(&["run", "--rm", "--ipc", "container:private", IMAGE, "true"]);
    assert_eq!(refused.code(), Some(125), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("non-shareable IPC"),
        "{}",
        refused.stderr
    );
    // A shareable container's tmpfs and its mount point go when it stops.
    let id = berth.ok(&["inspect", "--format", "{{.Id}}", "other"]);
    berth.ok(&["rm", "-f", "middle"]);
    berth.ok(&["stop", "-t", "0", "other"]);
    let shm = berth.root().join("containers").join(id.trim()).join("shm");
    assert!(!shm.exists(), "{} left", shm.display());
}

/// The CFS knobs, the memory soft limit and cpuset mems of `run`, seen from inside; a period
/// out of Docker's range is one line and 125.
#[test]
fn cpu_period_quota_memory_reservation_and_cpuset_mems() {
    need_root!();
    let berth = Berth::new();
    let read = "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us \
                /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/cpuset/cpuset.mems \
                2>/dev/null || cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.low /sys/fs/cgroup/cpuset.mems";
    #[rustfmt::skip]
    let out = berth.ok(&[
        "run", "--rm", "--cpu-period", "100000", "--cpu-quota", "50000",
        "--memory-reservation", "16m", "--cpuset-mems", "0", IMAGE, "sh", "-c", read,
    ]);
    let v1 = "50000\n100000\n16777216\n0";
    let v2 = "50000 100000\n16777216\n0";
    assert!(out == v1 || out == v2, "{out}");
    let ran = berth.run(&["run", "--rm", "--cpu-period", "10", IMAGE, "true"]);
    assert_eq!(ran.code(), Some(125), "{}", ran.stderr);
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
}

/// inspect shows the memory+swap limit as Docker records it: twice the memory when only
/// --memory was given, the given value otherwise.
#[test]
fn inspect_shows_memory_swap_as_docker_does() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["create", "--name", "m1", "-m", "64m", IMAGE, "true"]);
    berth.ok(&[
        "create",
        "--name",
        "m2",
        "-m",
        "64m",
        "--memory-swap",
        "-1",
        IMAGE,
        "true",
    ]);
    let swap = |name: &str| berth.ok(&["inspect", "--format", "{{.HostConfig.MemorySwap}}", name]);
    assert_eq!(swap("m1"), (128u64 << 20).to_string());
    assert_eq!(swap("m2"), "-1");
    berth.ok(&["rm", "m1", "m2"]);
}

/// Negative numbers are values, as Docker takes them: `stop -t -1` waits as long as the
/// process takes (here, it exits on SIGTERM), `--pids-limit -1` is no limit.
#[test]
fn negative_numbers_are_values() {
    need_root!();
    let berth = Berth::new();
    let script = "trap 'exit 3' TERM; while true; do sleep 0.1; done";
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "stopper",
        "--pids-limit",
        "-1",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    berth.ok(&["stop", "-t", "-1", "stopper"]);
    let code = berth.ok(&["inspect", "--format", "{{.State.ExitCode}}", "stopper"]);
    assert_eq!(code, "3");
    berth.ok(&["rm", "stopper"]);
}

/// --oom-score-adj reaches the process (and inspect); out of range is one line and 125.
#[test]
fn oom_score_adj() {
    need_root!();
    let berth = Berth::new();
    let adj = berth.ok(&[
        "run",
        "--name",
        "oomadj",
        "--oom-score-adj",
        "500",
        IMAGE,
        "cat",
        "/proc/self/oom_score_adj",
    ]);
    assert_eq!(adj, "500");
    let shown = berth.ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.OomScoreAdj}}",
        "oomadj",
    ]);
    assert_eq!(shown, "500");
    berth.ok(&["rm", "oomadj"]);
    let ran = berth.run(&["run", "--rm", "--oom-score-adj", "1001", IMAGE, "true"]);
    assert_eq!(ran.code(), Some(125), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("between -1000 and 1000"),
        "{}",
        ran.stderr
    );
}
