//! CVE-2019-5736 where the exec trampoline is not enough (crates/berth-runtime/src/protect.rs):
//! a process with CAP_SYS_PTRACE, and an `exec` whose process file can be read only once.

use std::io::Write;
use std::process::Stdio;

use berth_harness::need_root;
use berth_harness::{unique, Bundle, Runtime};
use oci_spec::runtime::{Capability, Process};

/// The bundle's process with CAP_SYS_PTRACE added to every set but ambient.
fn with_ptrace(process: &Process) -> Process {
    let mut process = process.clone();
    let mut caps = process
        .capabilities()
        .clone()
        .expect("default capabilities");
    let add = |set: &Option<oci_spec::runtime::Capabilities>| {
        let mut set = set.clone().unwrap_or_default();
        set.insert(Capability::SysPtrace);
        Some(set)
    };
    caps.set_bounding(add(caps.bounding()));
    caps.set_effective(add(caps.effective()));
    caps.set_permitted(add(caps.permitted()));
    process.set_capabilities(Some(caps));
    process
}

fn init_exe(rt: &Runtime, id: &str) -> String {
    let pid = rt.state(id).expect("state")["pid"].as_i64().expect("pid");
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .expect("read the init's exe")
        .to_string_lossy()
        .into_owned()
}

fn protected(exe: &str) -> bool {
    exe.starts_with("/run/berth/exe/") || exe.starts_with("/memfd:berth-sealed")
}

/// Its processes could open any /proc/<pid>/exe: the init runs from a read-only view.
#[test]
fn a_container_with_cap_sys_ptrace_runs_its_init_from_a_read_only_view() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "60"]);
    let process = with_ptrace(bundle.spec().process().as_ref().unwrap());
    bundle.spec_mut().set_process(Some(process));
    bundle.write();
    let id = unique("ptrace");
    rt.create(&id, &bundle).ok();
    let exe = init_exe(&rt, &id);
    rt.run(&["delete", "--force", &id]).ok();
    assert!(
        protected(&exe),
        "the init of a CAP_SYS_PTRACE container runs {exe}"
    );
}

/// The init of a created container still runs the runtime's binary (non-dumpable): an exec
/// given CAP_SYS_PTRACE could open it, so it is refused until start, with the reason.
#[test]
fn exec_with_cap_sys_ptrace_waits_for_start() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique("ptrace-exec");
    rt.create(&id, &bundle).ok();
    let exe = init_exe(&rt, &id);
    let early = rt.run(&["exec", "--cap", "CAP_SYS_PTRACE", &id, "true"]);
    rt.start(&id).ok();
    let later = rt.run(&["exec", "--cap", "CAP_SYS_PTRACE", &id, "true"]);
    rt.run(&["delete", "--force", &id]).ok();
    assert!(!protected(&exe), "expected the trampoline path here: {exe}");
    assert!(!early.success(), "exec before start was let in");
    assert!(
        early.stderr.contains("must wait for start"),
        "{}",
        early.stderr
    );
    assert!(later.success(), "{}", later.stderr);
}

/// `exec --process /dev/stdin` that must run from the protected binary (CAP_SYS_PTRACE): the
/// re-execution comes before the pipe is read, so the process still gets its config.
#[test]
fn exec_reads_its_process_from_a_pipe_when_it_runs_protected() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique("pipe");
    let path = bundle.path().to_str().unwrap();
    rt.run(&["run", "--detach", "--bundle", path, &id]).ok();
    let mut process = with_ptrace(bundle.spec().process().as_ref().unwrap());
    process.set_args(Some(vec!["sh".into(), "-c".into(), "echo piped".into()]));
    let json = serde_json::to_vec(&process).unwrap();
    let mut child = rt
        .command()
        .args(["exec", "--process", "/dev/stdin", &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth-runc exec");
    child.stdin.take().unwrap().write_all(&json).unwrap();
    let out = child.wait_with_output().expect("wait for exec");
    rt.run(&["delete", "--force", &id]).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "piped",
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Once an exec was given CAP_SYS_PTRACE, every later exec into the container runs from the
/// read-only view (that process could open theirs): the debug log says why.
#[test]
fn after_an_exec_with_cap_sys_ptrace_later_execs_run_protected() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique("ptrace-later");
    let path = bundle.path().to_str().unwrap();
    rt.run(&["run", "--detach", "--bundle", path, &id]).ok();
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().to_str().unwrap();
    let exec = |extra: &[&str]| {
        let mut args = vec!["--log", log_path, "--debug", "exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[id.as_str(), "true"]);
        rt.run(&args).ok();
        std::fs::read_to_string(log.path()).unwrap()
    };
    let before = exec(&[]);
    let with_ptrace = exec(&["--cap", "CAP_SYS_PTRACE"]);
    let after = exec(&[]);
    rt.run(&["delete", "--force", &id]).ok();
    assert!(!before.contains("CAP_SYS_PTRACE"), "{before}");
    assert!(with_ptrace.contains("CAP_SYS_PTRACE"), "{with_ptrace}");
    let later = &after[with_ptrace.len()..];
    assert!(later.contains("a process of the container has"), "{later}");
}
