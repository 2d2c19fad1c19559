//! Black-box tests of berth-runc on the real kernel: each runs containers from a busybox
//! bundle and asserts, from inside, with berth-probe.

use berth_harness::need_root;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_harness::{have, run_with_timeout, skip, unique, Bundle, Runtime, COMMAND_TIMEOUT};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use serde_json::Value;

/// Runs `args` in a fresh container of `bundle` and returns the probe's JSON.
fn probe(rt: &Runtime, bundle: &Bundle) -> Value {
    let out = rt.run_container(&unique("probe"), bundle).ok();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {out}"))
}

fn host_ns(kind: &str) -> u64 {
    std::fs::metadata(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .ino()
}

fn ns(v: &Value, kind: &str) -> u64 {
    v["ns"][kind]
        .as_u64()
        .unwrap_or_else(|| panic!("no {kind} namespace in {v}"))
}

fn set_namespaces(bundle: &mut Bundle, list: Vec<(LinuxNamespaceType, Option<String>)>) {
    let namespaces = list
        .into_iter()
        .map(|(t, p)| {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(t);
            ns.set_path(p.map(Into::into));
            ns
        })
        .collect();
    bundle
        .spec_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .set_namespaces(Some(namespaces));
    bundle.write();
}

/// `run --detach` of `bundle`: the container's id and its init's host pid.
fn run_detached(rt: &Runtime, bundle: &Bundle, prefix: &str) -> (String, i64) {
    let id = unique(prefix);
    let path = bundle.path().to_str().unwrap();
    rt.run(&["run", "--detach", "--bundle", path, &id]).ok();
    let pid = rt.state(&id).unwrap()["pid"].as_i64().unwrap();
    (id, pid)
}

/// Every namespace kind but user, each new.
fn all_new_but_user() -> Vec<(LinuxNamespaceType, Option<String>)> {
    [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Time,
    ]
    .into_iter()
    .map(|t| (t, None))
    .collect()
}

#[test]
fn run_returns_the_process_exit_code() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sh", "-c", "exit 3"]);
    let ran = rt.run_container(&unique("exit"), &bundle);
    assert_eq!(ran.code(), Some(3), "{ran:?}");
    // PID 1 of a namespace ignores signals from inside it: kill a process that is not an init.
    let mut bundle = Bundle::new(&["sh", "-c", "kill -9 $$"]);
    let host_pid = format!("/proc/{}/ns/pid", std::process::id());
    set_namespaces(
        &mut bundle,
        vec![
            (LinuxNamespaceType::Pid, Some(host_pid)),
            (LinuxNamespaceType::Mount, None),
            (LinuxNamespaceType::Uts, None),
        ],
    );
    assert_eq!(rt.run_container(&unique("sig"), &bundle).code(), Some(137));
}

#[test]
fn every_namespace_is_new_by_default_and_names_are_set() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["berth-probe"]);
    bundle.spec_mut().set_domainname(Some("example.org".into()));
    set_namespaces(&mut bundle, all_new_but_user());
    let v = probe(&rt, &bundle);
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup", "time"] {
        assert_ne!(
            ns(&v, kind),
            host_ns(kind),
            "{kind} namespace is the host's"
        );
    }
    assert_eq!(
        ns(&v, "user"),
        host_ns("user"),
        "no user namespace was asked for"
    );
    assert_eq!(v["pid"], 1, "the probe is PID 1 of its own pid namespace");
    assert_eq!(v["hostname"], "berth");
    assert_eq!(v["domainname"], "example.org");
}

#[test]
fn user_namespace_with_id_mappings() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["berth-probe"]);
    let spec = bundle.spec_mut();
    let linux = spec.linux_mut().as_mut().unwrap();
    let mut nss = linux.namespaces().clone().unwrap();
    let mut user = LinuxNamespace::default();
    user.set_typ(LinuxNamespaceType::User);
    nss.push(user);
    linux.set_namespaces(Some(nss));
    let map = oci_spec::runtime::LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(100000u32)
        .size(65536u32)
        .build()
        .unwrap();
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    bundle.write();
    // The rootfs must be readable by the mapped root.
    std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(bundle.rootfs())
        .status()
        .unwrap();
    let v = probe(&rt, &bundle);
    assert_ne!(ns(&v, "user"), host_ns("user"));
    let uid_map: Vec<String> = v["uid_map"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(uid_map, ["0", "100000", "65536"]);
    assert_eq!(v["uid"], 0);
    assert_eq!(v["pid"], 1);
}

#[test]
fn time_namespace_applies_offsets() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["berth-probe"]);
    let linux = bundle.spec_mut().linux_mut().as_mut().unwrap();
    let mut nss = linux.namespaces().clone().unwrap();
    let mut t = LinuxNamespace::default();
    t.set_typ(LinuxNamespaceType::Time);
    nss.push(t);
    linux.set_namespaces(Some(nss));
    let mut off = oci_spec::runtime::LinuxTimeOffset::default();
    off.set_secs(Some(86400 * 365));
    linux.set_time_offsets(Some(HashMap::from([("boottime".to_string(), off)])));
    bundle.write();
    let v = probe(&rt, &bundle);
    let host_uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let inside = v["clock"]["boottime_secs"].as_f64().unwrap();
    assert!(
        inside > host_uptime + 86400.0 * 364.0,
        "boottime {inside} not shifted by a year (host {host_uptime})"
    );
    assert_ne!(ns(&v, "time"), host_ns("time"));
}

/// The seed's situation at runtime level: `--pid=host` is a config that joins /proc/1/ns/pid.
#[test]
fn joining_the_host_pid_namespace_shows_host_pid_1() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["berth-probe"]);
    // Where PID 1 holds capabilities we lack (as on some CI hosts), its ns files are not ours
    // to open: the host's pid namespace is then reached through our own process.
    let host_pid_ns = if std::fs::File::open("/proc/1/ns/pid").is_ok() {
        "/proc/1/ns/pid".to_string()
    } else {
        println!("note: /proc/1/ns/pid is not readable here; joining /proc/{}/ns/pid (the same namespace)", std::process::id());
        format!("/proc/{}/ns/pid", std::process::id())
    };
    set_namespaces(
        &mut bundle,
        vec![
            (LinuxNamespaceType::Pid, Some(host_pid_ns)),
            (LinuxNamespaceType::Network, None),
            (LinuxNamespaceType::Ipc, None),
            (LinuxNamespaceType::Uts, None),
            (LinuxNamespaceType::Mount, None),
            (LinuxNamespaceType::Cgroup, None),
        ],
    );
    let v = probe(&rt, &bundle);
    let host_pid1 = std::fs::read_to_string("/proc/1/cmdline")
        .unwrap()
        .trim_end_matches('\0')
        .replace('\0', " ");
    assert_eq!(v["pid1_cmdline"], host_pid1.as_str());
    assert_eq!(ns(&v, "pid"), host_ns("pid"));
    for kind in ["uts", "mnt", "net", "ipc", "cgroup"] {
        assert_ne!(ns(&v, kind), host_ns(kind), "{kind} must be private");
    }
    assert_ne!(v["pid"], 1);
}

#[test]
fn every_namespace_can_be_joined_by_path() {
    need_root!();
    let rt = Runtime::new();
    let mut first = Bundle::new(&["sleep", "60"]);
    set_namespaces(&mut first, all_new_but_user());
    let a = unique("joined");
    rt.create(&a, &first).ok();
    let pid = rt.state(&a).unwrap()["pid"].as_i64().unwrap();
    let mut second = Bundle::new(&["berth-probe"]);
    let kinds = [
        (LinuxNamespaceType::Pid, "pid"),
        (LinuxNamespaceType::Network, "net"),
        (LinuxNamespaceType::Ipc, "ipc"),
        (LinuxNamespaceType::Uts, "uts"),
        (LinuxNamespaceType::Cgroup, "cgroup"),
        (LinuxNamespaceType::Time, "time"),
    ];
    let mut list: Vec<_> = kinds
        .iter()
        .map(|(t, name)| (*t, Some(format!("/proc/{pid}/ns/{name}"))))
        .collect();
    list.push((LinuxNamespaceType::Mount, None));
    set_namespaces(&mut second, list);
    second.spec_mut().set_hostname(None);
    second.write();
    let v = probe(&rt, &second);
    for (_, name) in kinds {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"))
            .unwrap()
            .ino();
        assert_eq!(ns(&v, name), theirs, "{name} not joined");
    }
    rt.run(&["delete", "--force", &a]).ok();
}

#[test]
fn capabilities_are_the_configured_sets_and_ambient_is_empty() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["berth-probe"]);
    let process = bundle.spec_mut().process_mut().as_mut().unwrap();
    let mut caps = process.capabilities().clone().unwrap();
    caps.set_inheritable(None).set_ambient(None);
    process.set_capabilities(Some(caps));
    process.set_no_new_privileges(Some(true));
    bundle.write();
    let v = probe(&rt, &bundle);
    // oci-spec's default config: AUDIT_WRITE(29), KILL(5), NET_BIND_SERVICE(10).
    let want = format!("{:016x}", (1u64 << 29) | (1 << 5) | (1 << 10));
    assert_eq!(v["caps"]["CapEff"], want.as_str());
    assert_eq!(v["caps"]["CapBnd"], want.as_str());
    assert_eq!(v["caps"]["CapInh"], "0000000000000000");
    assert_eq!(v["caps"]["CapAmb"], "0000000000000000");
    assert_eq!(v["no_new_privs"], 1);
}

#[test]
fn a_capability_the_host_lacks_is_a_clear_error() {
    need_root!();
    if !have("setpriv") {
        skip!("needs setpriv (util-linux)");
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    let process = bundle.spec_mut().process_mut().as_mut().unwrap();
    let mut caps = process.capabilities().clone().unwrap();
    let mut b = caps.bounding().clone().unwrap();
    b.insert(oci_spec::runtime::Capability::SysResource);
    caps.set_bounding(Some(b));
    process.set_capabilities(Some(caps));
    bundle.write();
    let id = unique("nocap");
    // The runtime runs without CAP_SYS_RESOURCE in its bounding set, whatever the host has.
    let mut command = Command::new("setpriv");
    command
        .args(["--bounding-set", "-sys_resource", "--"])
        .arg(rt.binary())
        .arg("--root")
        .arg(rt.root())
        .args(["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .stdin(Stdio::null());
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert!(!ran.success());
    assert!(ran.stderr.contains("CAP_SYS_RESOURCE"), "{}", ran.stderr);
    assert!(!rt.root().join(&id).exists(), "state left behind");
}

#[test]
fn seccomp_rule_denies_a_syscall_with_its_errno() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["berth-probe", "mkdir", "/tmp/x"]);
    let seccomp: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    }))
    .unwrap();
    bundle
        .spec_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .set_seccomp(Some(seccomp));
    bundle.write();
    let ran = rt.run_container(&unique("seccomp"), &bundle);
    assert_eq!(ran.code(), Some(1), "{ran:?}");
    assert!(ran.stdout.contains("ENOSYS"), "{}", ran.stdout);
}

#[test]
fn memory_limit_oom_kills_and_pids_limit_stops_a_fork_bomb() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["berth-probe", "alloc", "200"]);
    let res: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
        "memory": {"limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024}
    }))
    .unwrap();
    bundle
        .spec_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .set_resources(Some(res));
    bundle.write();
    let ran = rt.run_container(&unique("oom"), &bundle);
    assert_eq!(ran.code(), Some(137), "not OOM-killed: {ran:?}");

    let mut bundle = Bundle::new(&["berth-probe", "forkbomb", "50"]);
    let res: oci_spec::runtime::LinuxResources =
        serde_json::from_value(serde_json::json!({"pids": {"limit": 10}})).unwrap();
    bundle
        .spec_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .set_resources(Some(res));
    bundle.write();
    let out = rt.run_container(&unique("pids"), &bundle).ok();
    let v: Value = serde_json::from_str(&out).unwrap();
    let spawned = v["spawned"].as_u64().unwrap();
    assert!(spawned < 10, "{spawned} children under a pids limit of 10");
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    need_root!();
    let rt = Runtime::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().display().to_string();
    let mut bundle = Bundle::new(&["true"]);
    // createContainer resolves in the runtime's mount namespace, startContainer in the
    // container's: both use sh, which the host and the rootfs have.
    let hook = |name: &str, target: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read -r state; echo {name} >> {target}; case \"$state\" in *ociVersion*) ;; *) echo bad-state-{name} >> {target};; esac")]});
    let inside = "/hooks.log";
    let hooks: oci_spec::runtime::Hooks = serde_json::from_value(serde_json::json!({
        "prestart": [hook("prestart", &log_path)],
        "createRuntime": [hook("createRuntime", &log_path)],
        "createContainer": [hook("createContainer", &log_path)],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo startContainer >> {inside}")]}],
        "poststart": [hook("poststart", &log_path)],
        "poststop": [hook("poststop", &log_path)],
    }))
    .unwrap();
    bundle.spec_mut().set_hooks(Some(hooks));
    bundle.write();
    let in_order = [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ];
    let id = unique("hooks");
    rt.create(&id, &bundle).ok();
    rt.start(&id).ok();
    rt.run(&["delete", "--force", &id]).ok();
    let got = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(got.lines().collect::<Vec<_>>(), in_order, "{got}");
    let inside_log = std::fs::read_to_string(bundle.rootfs().join("hooks.log")).unwrap();
    assert_eq!(inside_log.trim(), "startContainer");
    // `run` starts the container it made at once, through the init's socket, not the fifo:
    // the same hooks in the same order.
    std::fs::write(log.path(), "").unwrap();
    std::fs::remove_file(bundle.rootfs().join("hooks.log")).unwrap();
    rt.run_container(&unique("hooks-run"), &bundle).ok();
    let got = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(got.lines().collect::<Vec<_>>(), in_order, "{got}");
    let inside_log = std::fs::read_to_string(bundle.rootfs().join("hooks.log")).unwrap();
    assert_eq!(inside_log.trim(), "startContainer");
}

/// A createContainer hook gets the state on stdin and may ask the runtime for it, as the
/// prestart and createRuntime ones may: it is on disk before the init runs it, however late
/// the runtime gets to writing it (strace holds its renames back).
#[test]
fn a_create_container_hook_finds_the_state_on_disk() {
    need_root!();
    if !have("strace") {
        skip!("needs strace");
    }
    let rt = Runtime::new();
    let log = tempfile::NamedTempFile::new().unwrap();
    let id = unique("hook-state");
    let ask = format!(
        "{} --root {} state {id} >/dev/null 2>&1 && echo seen >> {log} || echo missing >> {log}",
        rt.binary().display(),
        rt.root().display(),
        log = log.path().display()
    );
    let mut bundle = Bundle::new(&["true"]);
    let hooks: oci_spec::runtime::Hooks = serde_json::from_value(serde_json::json!({
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", ask]}],
    }))
    .unwrap();
    bundle.spec_mut().set_hooks(Some(hooks));
    bundle.write();
    let late = "rename,renameat,renameat2";
    let mut command = Command::new("strace");
    command
        .args(["-o", "/dev/null", "-e", &format!("trace={late}")])
        .args(["-e", &format!("inject={late}:delay_enter=300000")])
        .arg(rt.binary())
        .arg("--root")
        .arg(rt.root())
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null());
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert!(ran.success(), "{ran:?}");
    let got = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(got.trim(), "seen", "the hook asked for the state");
}

#[test]
fn lifecycle_states_pause_resume_kill_and_delete() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique("life");
    rt.create(&id, &bundle).ok();
    let st = rt.state(&id).unwrap();
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    // CVE-2019-5736: before start, a process in the container cannot reach the runtime's
    // binary through the waiting init (PID 1, with the same capabilities as it): the init is
    // non-dumpable, or runs from a read-only view of the binary.
    let seen = rt
        .run(&[
            "exec",
            &id,
            "sh",
            "-c",
            "readlink /proc/1/exe || echo denied",
        ])
        .ok();
    assert!(
        seen.trim() == "denied" || seen.trim().starts_with("/run/berth/exe/"),
        "a process in the container reached the init's binary: {seen}"
    );
    rt.start(&id).ok();
    assert_eq!(rt.state(&id).unwrap()["status"], "running");
    rt.run(&["pause", &id]).ok();
    assert_eq!(rt.state(&id).unwrap()["status"], "paused");
    rt.run(&["resume", &id]).ok();
    assert_eq!(rt.state(&id).unwrap()["status"], "running");
    let ran = rt.delete(&id);
    assert!(
        !ran.success(),
        "deleting a running container without --force must fail"
    );
    let ps = rt.run(&["ps", "--format", "json", &id]).ok();
    assert_eq!(ps.trim(), format!("[{pid}]"));
    rt.kill(&id, "KILL").ok();
    let st = loop {
        let st = rt.state(&id).unwrap();
        if st["status"] == "stopped" {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(st["pid"], 0);
    rt.delete(&id).ok();
    assert!(rt.state(&id).is_none());
    assert!(!rt.root().join(&id).exists());
}

#[test]
fn delete_force_kills_a_running_container_and_removes_its_cgroup() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let (id, pid) = run_detached(&rt, &bundle, "force");
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mem_path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{}:memory:", l.split(':').next().unwrap())))
        .map(String::from);
    rt.run(&["delete", "--force", &id]).ok();
    // Gone, or a zombie waiting for the host's init to reap it: either way, not running.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next());
    assert!(
        matches!(state, None | Some('Z') | Some('X')),
        "init survived: {stat}"
    );
    if let Some(p) = mem_path {
        assert!(
            !Path::new(&format!("/sys/fs/cgroup/memory{p}")).exists(),
            "cgroup left behind"
        );
    }
}

/// CVE-2019-5736's way in: a container program that is /proc/self/exe. The runtime's binary
/// must never run in the container: through the exec trampoline, /proc/self/exe names the
/// sealed trampoline, which then runs out of arguments and reports a missing program (127).
#[test]
fn a_program_of_proc_self_exe_never_runs_the_runtime() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["/proc/self/exe", "--version"]);
    let id = unique("selfexe");
    let ran = rt.run_container(&id, &bundle);
    rt.run(&["delete", "--force", &id]);
    assert!(
        !ran.stdout.contains("spec: "),
        "berth-runc ran in the container: {}",
        ran.stdout
    );
    assert_eq!(ran.code(), Some(127), "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("No such file or directory"),
        "{}",
        ran.stderr
    );
}

/// The container's process, and an exec'd one, start with no signal ignored or blocked (as
/// Docker's do), though the runtime, a Rust program, ignores SIGPIPE, and its caller may have
/// left others ignored (here a shell's `trap ''`, which execve keeps): the runtime resets the
/// ones it finds ignored.
#[test]
fn processes_start_with_no_signal_ignored_or_blocked() {
    need_root!();
    let rt = Runtime::new();
    // grep itself, not through a shell, which sets dispositions of its own.
    let grep = ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"];
    let bundle = Bundle::new(&grep);
    let clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000";
    let out = rt.run_container(&unique("signals"), &bundle).ok();
    assert_eq!(out.trim(), clean);
    // The runtime started with SIGHUP, SIGINT, SIGUSR2 and a real-time signal ignored.
    let ignoring = |args: &[&str]| {
        let mut command = Command::new("sh");
        command
            .args(["-c", "trap '' HUP INT USR2 40 && exec \"$@\"", "sh"])
            .arg(rt.binary())
            .arg("--root")
            .arg(rt.root())
            .args(args)
            .stdin(Stdio::null());
        run_with_timeout(command, COMMAND_TIMEOUT).ok()
    };
    let path = bundle.path().to_str().unwrap();
    let id = unique("signals-ignored");
    let out = ignoring(&["run", "--bundle", path, &id]);
    assert_eq!(
        out.trim(),
        clean,
        "the caller's ignored signals reached the container"
    );
    let bundle = Bundle::new(&["sleep", "60"]);
    let (id, _) = run_detached(&rt, &bundle, "signals-exec");
    let out = rt
        .run(&[&["exec", id.as_str()][..], &grep[..]].concat())
        .ok();
    assert_eq!(out.trim(), clean);
    let out = ignoring(&[&["exec", id.as_str()][..], &grep[..]].concat());
    rt.run(&["delete", "--force", &id]).ok();
    assert_eq!(
        out.trim(),
        clean,
        "the caller's ignored signals reached exec"
    );
}

#[test]
fn exec_joins_the_container() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let (id, pid) = run_detached(&rt, &bundle, "exec");
    let out = rt.run(&["exec", &id, "berth-probe"]).ok();
    let v: Value = serde_json::from_str(&out).unwrap();
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
            .unwrap()
            .ino();
        assert_eq!(
            ns(&v, kind),
            theirs,
            "exec is not in the container's {kind} namespace"
        );
    }
    assert_eq!(v["hostname"], "berth");
    // In every cgroup hierarchy of the init (born there: clone3 into the cgroup2 side, its own
    // move into each v1 hierarchy).
    let cgroups = rt
        .run(&[
            "exec",
            &id,
            "sh",
            "-c",
            "cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup",
        ])
        .ok();
    let (own, init) = cgroups.split_once("---\n").unwrap();
    assert_eq!(own, init, "exec is not in the init's cgroups");
    let ran = rt.run(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(ran.code(), Some(7));
    rt.run(&["delete", "--force", &id]).ok();
}
