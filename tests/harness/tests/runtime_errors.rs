//! The error cases whose wording and exit code callers act on, each run under berth-runc and
//! under runc (the reference) with the same bundle: containerd's shim reads `kill`'s failure
//! text ("container not running", "does not exist", "no such process": pkg/process
//! checkKillError) and `delete`'s ("does not exist"), podman reads `state`'s ("does not exist"),
//! and both count on `kill --all` succeeding once the container has stopped; podman sorts a
//! failed start by the words of the logged error (libpod getOCIRuntimeError).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use berth_harness::{eventually, have, need_root, unique, Bundle, Ran, Runtime};

const RUNC: &str = "/usr/sbin/runc";

/// berth-runc and the reference, each with a private root; `None` (and a skip line) without runc.
fn runtimes() -> Option<[Runtime; 2]> {
    if !have(RUNC) {
        println!("skipped: needs {RUNC} (the reference)");
        return None;
    }
    Some([Runtime::new(), Runtime::with_binary(RUNC)])
}

fn name(rt: &Runtime) -> String {
    rt.binary().display().to_string()
}

/// Force-deletes a container when dropped, so a failing assertion leaves nothing behind.
struct Cleanup<'a>(&'a Runtime, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let mut command = self.0.command();
        command
            .args(["delete", "--force", &self.1])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = command.status();
    }
}

fn run_detached<'a>(rt: &'a Runtime, bundle: &Bundle, prefix: &str) -> (String, Cleanup<'a>) {
    let id = unique(prefix);
    let path = bundle.path().to_str().expect("UTF-8 bundle path");
    rt.run(&["run", "--detach", "--bundle", path, &id]).ok();
    let guard = Cleanup(rt, id.clone());
    (id, guard)
}

fn status(rt: &Runtime, id: &str) -> String {
    let state = rt
        .state(id)
        .unwrap_or_else(|| panic!("{}: no state for {id}", name(rt)));
    state["status"].as_str().unwrap_or_default().to_string()
}

fn wait_stopped(rt: &Runtime, id: &str) {
    eventually(&format!("{}: {id} to stop", name(rt)), || {
        (status(rt, id) == "stopped").then_some(())
    });
}

/// Exit 1 and `words` on stderr, as runc fails.
fn assert_fails_saying(rt: &Runtime, ran: &Ran, words: &str) {
    assert_eq!(ran.code(), Some(1), "{}: {ran:?}", name(rt));
    assert!(
        ran.stderr.contains(words),
        "{}: stderr does not say {words:?}: {ran:?}",
        name(rt)
    );
}

#[test]
fn kill_of_a_stopped_container_says_container_not_running_and_kill_all_succeeds() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let bundle = Bundle::new(&["true"]);
    for rt in &runtimes {
        let (id, _guard) = run_detached(rt, &bundle, "err-stopped");
        wait_stopped(rt, &id);
        for signal in ["TERM", "KILL"] {
            assert_fails_saying(rt, &rt.kill(&id, signal), "container not running");
            let all = rt.run(&["kill", "--all", &id, signal]);
            assert_eq!(
                all.code(),
                Some(0),
                "{}: kill --all {signal}: {all:?}",
                name(rt)
            );
        }
        rt.delete(&id).ok();
    }
}

#[test]
fn a_missing_container_does_not_exist_for_kill_delete_and_state() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    for rt in &runtimes {
        let id = unique("err-missing");
        for args in [
            &["kill", &id, "KILL"][..],
            &["kill", "--all", &id, "KILL"],
            &["delete", &id],
            &["state", &id],
        ] {
            assert_fails_saying(rt, &rt.run(args), "does not exist");
        }
        // delete --force of nothing is success for both: callers use it to be sure.
        rt.run(&["delete", "--force", &id]).ok();
    }
}

#[test]
fn create_with_a_taken_id_says_runcs_words_and_leaves_the_first_running() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let bundle = Bundle::new(&["sleep", "1000"]);
    for rt in &runtimes {
        let (id, _guard) = run_detached(rt, &bundle, "err-exists");
        let ran = rt.create(&id, &bundle);
        assert_fails_saying(rt, &ran, "container with given ID already exists");
        assert_eq!(status(rt, &id), "running", "{}", name(rt));
        rt.run(&["delete", "--force", &id]).ok();
    }
}

/// The v1 memory hierarchy's (or cgroup2's) list of the container's processes: both runtimes
/// put every process there.
fn cgroup_procs(rt: &Runtime, bundle: &Bundle) -> PathBuf {
    let linux = bundle.spec().linux().as_ref().expect("linux section");
    let path = linux.cgroups_path().as_ref().expect("cgroups path");
    let relative = path.strip_prefix("/").unwrap_or(path);
    let v1 = Path::new("/sys/fs/cgroup/memory").join(relative);
    let dir = if Path::new("/sys/fs/cgroup/memory").is_dir() {
        v1
    } else {
        Path::new("/sys/fs/cgroup").join(relative)
    };
    assert!(dir.is_dir(), "{}: no cgroup at {}", name(rt), dir.display());
    dir.join("cgroup.procs")
}

fn pids_in(procs: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(procs).unwrap_or_default();
    text.split_whitespace().map(str::to_string).collect()
}

/// A container without a pid namespace of its own (a pod's containers share one under
/// Kubernetes) leaves its init's children behind when the init exits; containerd's shim ends
/// them with `kill --all` on the stopped container, which must reach them.
#[test]
fn kill_all_of_a_stopped_container_ends_what_its_init_left_behind() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let mut bundle = Bundle::new(&["sh", "-c", "sleep 1000 & exit 0"]);
    if let Some(linux) = bundle.spec_mut().linux_mut() {
        let namespaces = linux.namespaces().clone().unwrap_or_default();
        let kept = namespaces
            .into_iter()
            .filter(|ns| ns.typ() != oci_spec::runtime::LinuxNamespaceType::Pid);
        linux.set_namespaces(Some(kept.collect()));
    }
    bundle.write();
    for rt in &runtimes {
        let (id, _guard) = run_detached(rt, &bundle, "err-leftover");
        wait_stopped(rt, &id);
        let procs = cgroup_procs(rt, &bundle);
        let left = pids_in(&procs);
        assert_eq!(
            left.len(),
            1,
            "{}: the sleep is not left: {left:?}",
            name(rt)
        );
        let all = rt.run(&["kill", "--all", &id, "KILL"]);
        assert_eq!(all.code(), Some(0), "{}: {all:?}", name(rt));
        eventually(
            &format!("{}: kill --all to end the sleep", name(rt)),
            || pids_in(&procs).is_empty().then_some(()),
        );
        rt.delete(&id).ok();
    }
}

#[test]
fn sigkill_ends_a_paused_container() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let bundle = Bundle::new(&["sleep", "1000"]);
    for rt in &runtimes {
        let (id, _guard) = run_detached(rt, &bundle, "err-paused");
        rt.run(&["pause", &id]).ok();
        assert_eq!(status(rt, &id), "paused", "{}", name(rt));
        rt.kill(&id, "KILL").ok();
        wait_stopped(rt, &id);
        rt.delete(&id).ok();
    }
}

/// The last `"level":"error"` message of a `--log-format json` log: what containerd's shim
/// (getLastRuntimeError) and podman (its oci-log) report when a runtime command fails.
fn last_logged_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut errors = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error");
    let last = errors
        .next_back()
        .map(|v| v["msg"].as_str().unwrap_or("").to_string());
    last.unwrap_or_default()
}

/// podman sorts a failed start by these words (getOCIRuntimeError): "executable file not found
/// in", "no such file or directory" make it "not found" (exit 127), "permission denied" makes
/// it 126.
#[test]
fn a_missing_or_unexecutable_program_is_told_in_podmans_words() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let cases = [
        ("nope", "executable file not found in $PATH"),
        ("/bin/nope", "no such file or directory"),
        ("/etc/passwd", "permission denied"),
    ];
    for (program, words) in cases {
        let bundle = Bundle::new(&[program]);
        for rt in &runtimes {
            let log = bundle
                .path()
                .join(format!("log-{}.json", unique("err-exec")));
            let id = unique("err-exec");
            let _guard = Cleanup(rt, id.clone());
            let path = bundle.path().to_str().expect("UTF-8 bundle path");
            let logged = log.to_str().expect("UTF-8 log path");
            let mut command = rt.command();
            command.args(["--log", logged, "--log-format", "json", "run"]);
            command.args(["--bundle", path, &id]).stdin(Stdio::null());
            let ran = berth_harness::run_with_timeout(command, berth_harness::COMMAND_TIMEOUT);
            assert!(!ran.success(), "{}: {program} ran: {ran:?}", name(rt));
            let msg = last_logged_error(&log);
            assert!(
                msg.contains(words),
                "{}: {program}: logged {msg:?}",
                name(rt)
            );
        }
    }
}
