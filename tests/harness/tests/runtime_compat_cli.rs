//! runc compatibility of berth-runc's command line (issue 11): each case runs under berth-runc
//! and under runc (Debian's /usr/sbin/runc, the reference) on the same bundle, and what callers
//! read (exit codes, the words of errors, the text of JSON documents, files written) is compared.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use berth_harness::COMMAND_TIMEOUT;
use berth_harness::{eventually, have, need_root, run_with_timeout, unique, Bundle, Ran, Runtime};
use serde_json::Value;

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

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
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
    rt.run(&["run", "--detach", "--bundle", path(bundle.path()), &id])
        .ok();
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

/// The keys of a JSON object in the order the text has them (serde_json's map sorts them).
fn key_order(text: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let Value::Object(map) = value else {
        panic!("not an object: {text}")
    };
    let mut keys: Vec<(usize, String)> = map
        .keys()
        .map(|k| {
            let at = text
                .find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} not in {text}"));
            (at, k.clone())
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

/// Runs `case` under both runtimes and returns what each gave, berth-runc's first.
fn under_both<T>(runtimes: &[Runtime; 2], mut case: impl FnMut(&Runtime) -> T) -> (T, T) {
    (case(&runtimes[0]), case(&runtimes[1]))
}

#[test]
fn a_failed_exec_exits_255_as_runcs() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let bundle = Bundle::new(&["sleep", "1000"]);
    let (berth, runc) = under_both(&runtimes, |rt| {
        let (id, _guard) = run_detached(rt, &bundle, "compat-exec-fail");
        let missing = rt.run(&["exec", &id, "/nonexistent"]);
        let not_executable = rt.run(&["exec", &id, "/etc"]);
        let pid_file = rt.run(&["exec", "--pid-file", "/proc/nonexistent/pid", &id, "true"]);
        let no_container = rt.run(&["exec", "no-such-container", "true"]);
        rt.run(&["pause", &id]).ok();
        let paused = rt.run(&["exec", &id, "true"]);
        rt.run(&["resume", &id]).ok();
        // The process's own status is its own: not the runtime's 255.
        let exit_3 = rt.run(&["exec", &id, "sh", "-c", "exit 3"]);
        [
            missing,
            not_executable,
            pid_file,
            no_container,
            paused,
            exit_3,
        ]
        .map(|r| r.code())
    });
    let failed = Some(255);
    assert_eq!(runc, [failed, failed, failed, failed, failed, Some(3)]);
    assert_eq!(
        berth, runc,
        "exit codes of failed execs, berth-runc vs runc"
    );
}

#[test]
fn kill_with_signal_0_checks_the_container_is_alive_as_runcs() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let sleeping = Bundle::new(&["sleep", "1000"]);
    let done = Bundle::new(&["true"]);
    let (berth, runc) = under_both(&runtimes, |rt| {
        let (running, _g1) = run_detached(rt, &sleeping, "compat-kill0");
        let alive = rt.run(&["kill", &running, "0"]);
        let (stopped, _g2) = run_detached(rt, &done, "compat-kill0-stopped");
        wait_stopped(rt, &stopped);
        let dead = rt.run(&["kill", &stopped, "0"]);
        let dead_all = rt.run(&["kill", "--all", &running, "0"]);
        assert!(
            dead.stderr.contains("container not running"),
            "{}: {dead:?}",
            name(rt)
        );
        // Still running: signal 0 delivers nothing.
        assert_eq!(status(rt, &running), "running", "{}", name(rt));
        [alive.code(), dead.code(), dead_all.code()]
    });
    assert_eq!(runc, [Some(0), Some(1), Some(0)]);
    assert_eq!(berth, runc, "kill 0, berth-runc vs runc");
}

#[test]
fn state_list_and_events_print_runcs_fields_in_runcs_order() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let bundle = Bundle::new(&["sleep", "1000"]);
    let (berth, runc) = under_both(&runtimes, |rt| {
        let (id, _guard) = run_detached(rt, &bundle, "compat-order");
        let state = rt.run(&["state", &id]).ok();
        let list = rt.run(&["list", "--format", "json"]).ok();
        let list = list.trim();
        let first = &list[1..=list.find('}').expect("an object in the list")];
        let events = rt.run(&["events", "--stats", &id]).ok();
        let ends_with_newline = state.ends_with('\n');
        (
            key_order(&state),
            key_order(first),
            key_order(&events),
            ends_with_newline,
        )
    });
    assert_eq!(
        berth, runc,
        "state, list and events keys, berth-runc vs runc"
    );
}

/// A process.json with only `args` and `cwd`, or without `cwd`, as a file.
fn process_file(dir: &Path, name: &str, json: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, json).expect("process.json");
    path(&file).to_string()
}

#[test]
fn exec_process_json_takes_runcs_defaults_for_missing_fields() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let bundle = Bundle::new(&["sleep", "1000"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let minimal = process_file(
        dir.path(),
        "minimal.json",
        r#"{"args": ["/bin/id"], "cwd": "/", "env": null, "capabilities": null}"#,
    );
    let no_cwd = process_file(dir.path(), "no-cwd.json", r#"{"args": ["/bin/id"]}"#);
    let relative = process_file(
        dir.path(),
        "relative.json",
        r#"{"args": ["/bin/id"], "cwd": "tmp"}"#,
    );
    let (berth, runc) = under_both(&runtimes, |rt| {
        let (id, _guard) = run_detached(rt, &bundle, "compat-process-json");
        let ran = rt.run(&["exec", "--process", &minimal, &id]);
        let refused = [&no_cwd, &relative].map(|p| {
            let ran = rt.run(&["exec", "--process", p, &id]);
            let words = ran
                .stderr
                .split("exec failed: ")
                .nth(1)
                .map(|w| w.trim().trim_end_matches('"').to_string());
            (ran.code(), words)
        });
        (ran.code(), ran.stdout, refused)
    });
    assert_eq!(runc.0, Some(0), "{runc:?}");
    assert!(runc.1.starts_with("uid=0(root) gid=0(root)"), "{runc:?}");
    assert_eq!(berth, runc, "exec -p, berth-runc vs runc");
}

/// `spec` (with `args`) run in a new directory; the config.json it wrote.
fn spec_in(rt: &Runtime, args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = rt.command();
    command.arg("spec").args(args).current_dir(dir.path());
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert!(ran.success(), "{}: {ran:?}", name(rt));
    std::fs::read_to_string(dir.path().join("config.json")).expect("config.json")
}

#[test]
fn spec_writes_runcs_file_byte_for_byte() {
    let Some(runtimes) = runtimes() else { return };
    let (berth, runc) = under_both(&runtimes, |rt| spec_in(rt, &[]));
    let spec: Value = serde_json::from_str(&runc).expect("runc's spec");
    let namespaces = spec["linux"]["namespaces"].to_string();
    assert!(!namespaces.contains("cgroup"), "{namespaces}");
    assert_eq!(berth, runc, "spec, berth-runc vs runc");
    let (berth, runc) = under_both(&runtimes, |rt| spec_in(rt, &["--rootless"]));
    assert_eq!(berth, runc, "spec --rootless, berth-runc vs runc");
}

/// A bundle whose config is `runc spec`'s, run without a terminal: `args` in `rootfs`.
fn runc_spec_bundle(args: &[&str]) -> Bundle {
    let mut bundle = Bundle::new(args);
    let text = spec_in(&Runtime::with_binary(RUNC), &[]);
    let mut spec: oci_spec::runtime::Spec = serde_json::from_str(&text).expect("runc's spec");
    let process = spec.process_mut().as_mut().expect("a process");
    process.set_terminal(Some(false));
    process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
    if let Some(root) = spec.root_mut() {
        root.set_readonly(Some(false));
    }
    if let Some(linux) = spec.linux_mut() {
        linux.set_cgroups_path(Some(format!("/{}", unique("compat-spec")).into()));
    }
    *bundle.spec_mut() = spec;
    bundle.write();
    bundle
}

#[test]
fn a_runc_spec_runs_without_a_warning_as_under_runc() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let bundle = runc_spec_bundle(&["true"]);
    let (berth, runc) = under_both(&runtimes, |rt| {
        let ran = rt.run(&[
            "run",
            "--bundle",
            path(bundle.path()),
            &unique("compat-quiet"),
        ]);
        (ran.code(), ran.stderr)
    });
    assert_eq!(runc, (Some(0), String::new()));
    assert_eq!(berth, runc, "run of runc's spec, berth-runc vs runc");
}

#[test]
fn help_and_version_are_in_runcs_shape() {
    let Some(runtimes) = runtimes() else { return };
    let (berth, runc) = under_both(&runtimes, |rt| {
        let help = rt.run(&["--help"]);
        let sections: Vec<String> = help
            .stdout
            .lines()
            .filter(|l| {
                l.ends_with(':')
                    && l.chars()
                        .all(|c| c.is_ascii_uppercase() || " :".contains(c))
            })
            .map(str::to_string)
            .collect();
        let exec = rt.run(&["exec", "--help"]);
        let exec_sections: Vec<String> = exec
            .stdout
            .lines()
            .filter(|l| ["NAME:", "USAGE:", "OPTIONS:"].contains(l))
            .map(str::to_string)
            .collect();
        let exec_name = exec.stdout.lines().nth(1).map(|l| {
            let name = l.split(" exec - ").nth(1);
            name.unwrap_or_default().to_string()
        });
        let version = rt.run(&["-v"]);
        let first = version.stdout.lines().next().unwrap_or_default();
        let spec = version.stdout.lines().any(|l| l.starts_with("spec: 1."));
        (
            help.code(),
            sections,
            exec_sections,
            exec_name,
            version.code(),
            first.contains(" version "),
            spec,
        )
    });
    assert_eq!(
        runc.1,
        [
            "NAME:",
            "USAGE:",
            "VERSION:",
            "COMMANDS:",
            "GLOBAL OPTIONS:"
        ]
    );
    assert_eq!(berth, runc, "help and version, berth-runc vs runc");
}

/// True for a line in logrus's text shape: `time="<RFC 3339, seconds>" level=<l> msg="<m>"`.
fn logrus_text(line: &str, level: &str) -> bool {
    let Some(rest) = line.strip_prefix("time=\"") else {
        return false;
    };
    let Some((time, rest)) = rest.split_once("\" ") else {
        return false;
    };
    time.len() == "2006-01-02T15:04:05Z".len()
        && time.ends_with('Z')
        && rest.starts_with(&format!("level={level} msg=\""))
}

#[test]
fn debug_writes_logrus_lines_to_stderr_or_the_log() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let bundle = Bundle::new(&["sleep", "1000"]);
    let (berth, runc) = under_both(&runtimes, |rt| {
        let id = unique("compat-debug");
        let ran = rt.run(&[
            "--debug",
            "run",
            "--detach",
            "--bundle",
            path(bundle.path()),
            &id,
        ]);
        let _guard = Cleanup(rt, id.clone());
        assert!(ran.success(), "{}: {ran:?}", name(rt));
        let text_lines = ran
            .stderr
            .lines()
            .filter(|l| logrus_text(l, "debug"))
            .count();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let args = ["--debug", "--log", path(log.path()), "--log-format", "json"];
        let mut command = rt.command();
        command.args(args).args(["exec", &id, "true"]);
        let exec = run_with_timeout(command, COMMAND_TIMEOUT);
        assert!(exec.success(), "{}: {exec:?}", name(rt));
        let mut command = rt.command();
        command.args(args).args(["kill", &id, "KILL"]);
        run_with_timeout(command, COMMAND_TIMEOUT);
        let written = std::fs::read_to_string(log.path()).expect("the log");
        let json_shapes: BTreeSet<Vec<String>> = written.lines().map(key_order).collect();
        (
            text_lines > 0,
            ran.stderr.lines().all(|l| logrus_text(l, "debug")),
            json_shapes,
        )
    });
    assert!(runc.0, "runc wrote debug lines");
    assert_eq!((berth.0, berth.1), (runc.0, runc.1), "--debug on stderr");
    // runc adds fields to some lines (func, file, pid): berth-runc's shapes are among runc's.
    assert!(
        !berth.2.is_empty() && berth.2.is_subset(&runc.2),
        "--debug --log-format json: berth-runc {:?}, runc {:?}",
        berth.2,
        runc.2
    );
}

#[test]
fn create_in_a_cgroup_with_processes_warns_as_runc() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let mut bundle = Bundle::new(&["sleep", "1000"]);
    let (berth, runc) = under_both(&runtimes, |rt| {
        let shared = format!("/{}", unique("compat-shared-cgroup"));
        let linux = bundle.spec_mut().linux_mut().as_mut().expect("linux");
        linux.set_cgroups_path(Some(shared.into()));
        bundle.write();
        let (_first, _g1) = run_detached(rt, &bundle, "compat-cg-first");
        let second = unique("compat-cg-second");
        let _g2 = Cleanup(rt, second.clone());
        let ran = rt.run(&["create", "--bundle", path(bundle.path()), &second]);
        let warned = ran.stderr.lines().any(|l| {
            l.contains("level=warning msg=\"container's cgroup is not empty: 1 process(es) found\"")
        });
        (ran.code(), warned)
    });
    assert_eq!(runc, (Some(0), true));
    assert_eq!(berth, runc, "create in a busy cgroup, berth-runc vs runc");
}

/// The words after the last `msg="` (runc) or `berth-runc: ` (ours), up to the first newline.
fn error_words(ran: &Ran) -> String {
    let text = ran.stderr.trim();
    let words = match text.rsplit_once("msg=\"") {
        Some((_, msg)) => msg.trim_end_matches('"').replace("\\n", "\n"),
        None => text
            .rsplit("berth-runc: ")
            .next()
            .unwrap_or(text)
            .to_string(),
    };
    words.lines().next().unwrap_or_default().to_string()
}

/// True when `criu check` passes on this kernel (Debian's criu 3.17 fails on 6.x: "vdso:
/// Unexpected rt vDSO area bounds"), false when it fails or is not installed.
fn criu_works() -> bool {
    std::process::Command::new("criu")
        .arg("check")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn checkpoint_and_restore_fail_as_runcs() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    if !have("criu") {
        berth_harness::skip!("needs criu (Debian's criu package)");
    }
    let bundle = Bundle::new(&["sleep", "1000"]);
    let stopped = Bundle::new(&["true"]);
    let (berth, runc) = under_both(&runtimes, |rt| {
        let images = tempfile::tempdir().expect("image dir");
        let work = tempfile::tempdir().expect("work dir");
        let empty = tempfile::tempdir().expect("empty image dir");
        let (id, _guard) = run_detached(rt, &bundle, "compat-criu");
        let (done, _g2) = run_detached(rt, &stopped, "compat-criu-stopped");
        wait_stopped(rt, &done);
        let img = ["--image-path", path(images.path())];
        let mut cases = vec![
            rt.run(&["checkpoint", img[0], img[1], &done]),
            rt.run(&[
                "--criu",
                "/nonexistent/criu",
                "checkpoint",
                img[0],
                img[1],
                &id,
            ]),
            rt.run(&[
                "restore",
                "--image-path",
                path(empty.path()),
                "--bundle",
                path(bundle.path()),
                &unique("compat-r"),
            ]),
            rt.run(&[
                "restore",
                img[0],
                img[1],
                "--bundle",
                path(bundle.path()),
                &id,
            ]),
        ];
        if !criu_works() {
            // CRIU itself fails here: the error names the log in the work path.
            let args = [
                "checkpoint",
                "--work-path",
                path(work.path()),
                img[0],
                img[1],
                &id,
            ];
            cases.push(rt.run(&args));
            assert!(work.path().join("dump.log").exists(), "{}", name(rt));
            assert!(
                images.path().join("descriptors.json").exists(),
                "{}",
                name(rt)
            );
        }
        let still = status(rt, &id);
        let words: Vec<(Option<i32>, String)> = cases
            .iter()
            .map(|r| (r.code(), error_words(r).replace(path(work.path()), "WORK")))
            .collect();
        (words, still)
    });
    println!("runc: {runc:?}");
    assert_eq!(
        runc.1, "running",
        "a failed checkpoint leaves the container running"
    );
    assert_eq!(berth.1, runc.1);
    // The words where both say the same; the ids and paths in them differ by runtime.
    let same = |i: usize, words: &str| {
        assert_eq!(berth.0[i].0, runc.0[i].0, "case {i}: {berth:?} vs {runc:?}");
        assert!(berth.0[i].1.contains(words), "case {i}: {berth:?}");
        assert!(runc.0[i].1.contains(words), "case {i}: {runc:?}");
    };
    same(0, "Container cannot be checkpointed in stopped state");
    same(
        1,
        "CRIU version check failed: fork/exec /nonexistent/criu: ",
    );
    same(2, "/descriptors.json: ");
    same(3, "already exists");
    if let Some(dump) = berth.0.get(4) {
        assert_eq!(dump, &runc.0[4], "a dump CRIU refuses");
    }
}

/// What the process reports of its scheduling: ionice's class, the policy, the nice value.
const SCHEDULING: &str =
    "ionice; grep '^policy' /proc/self/sched | tr -d ' '; cut -d' ' -f19 /proc/self/stat";

#[test]
fn io_priority_and_scheduler_are_applied_not_ignored() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let mut bundle = Bundle::new(&["sh", "-c", SCHEDULING]);
    for applet in ["ionice", "tr", "cut"] {
        std::os::unix::fs::symlink("busybox", bundle.rootfs().join("bin").join(applet))
            .expect("applet");
    }
    let process = bundle.spec_mut().process_mut().as_mut().expect("process");
    let io: oci_spec::runtime::LinuxIOPriority =
        serde_json::from_str(r#"{"class": "IOPRIO_CLASS_IDLE", "priority": 0}"#).unwrap();
    let sched: oci_spec::runtime::Scheduler =
        serde_json::from_str(r#"{"policy": "SCHED_BATCH", "nice": 7}"#).unwrap();
    process.set_io_priority(Some(io));
    process.set_scheduler(Some(sched));
    bundle.write();
    let sleeping = Bundle::new(&["sleep", "1000"]);
    for applet in ["tr", "cut"] {
        std::os::unix::fs::symlink("busybox", sleeping.rootfs().join("bin").join(applet))
            .expect("applet");
    }
    let (berth, runc) = under_both(&runtimes, |rt| {
        let id = unique("compat-sched");
        let run = rt.run(&["run", "--bundle", path(bundle.path()), &id]).ok();
        let (exec_id, _guard) = run_detached(rt, &sleeping, "compat-sched-exec");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = process_file(
            dir.path(),
            "p.json",
            r#"{"args": ["/bin/sh", "-c", "grep '^policy' /proc/self/sched | tr -d ' '; cut -d' ' -f19 /proc/self/stat"],
               "cwd": "/", "scheduler": {"policy": "SCHED_BATCH", "nice": 3}}"#,
        );
        let exec = rt.run(&["exec", "--process", &file, &exec_id]).ok();
        (run, exec)
    });
    // runc 1.1 ignores both fields (runc 1.2 applies them): the reference shows the defaults.
    assert_eq!(runc.0, "none: prio 0\npolicy:0\n0\n", "{runc:?}");
    assert_eq!(berth.0, "idle\npolicy:3\n7\n", "berth-runc run: {berth:?}");
    assert_eq!(berth.1, "policy:3\n3\n", "berth-runc exec: {berth:?}");
}

/// Makes `sub` below the cgroup of `pid` in every hierarchy (v1 controllers, named ones and
/// the unified one); the directories made.
fn make_sub_cgroups(pid: u64, sub: &str) -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup file");
    let mut made = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, names, path) = (fields.next(), fields.next(), fields.next());
        // A hierarchy the runtime leaves the container at the root of is not its own.
        let (Some(names), Some(path)) = (names, path.filter(|p| *p != "/")) else {
            continue;
        };
        let mounts: Vec<String> = match names {
            "" => vec!["unified".into(), String::new()],
            n => std::iter::once(n.trim_start_matches("name=").to_string())
                .chain(n.split(',').map(str::to_string))
                .collect(),
        };
        for mount in mounts {
            let dir = Path::new("/sys/fs/cgroup").join(&mount).join(&path[1..]);
            if dir.is_dir() && !made.contains(&dir.join(sub)) {
                std::fs::create_dir(dir.join(sub)).expect("sub-cgroup");
                // A v1 cpuset takes tasks only once it has cpus and mems: the parent's.
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    if let Ok(value) = std::fs::read_to_string(dir.join(file)) {
                        std::fs::write(dir.join(sub).join(file), value).expect(file);
                    }
                }
                made.push(dir.join(sub));
                break;
            }
        }
    }
    made
}

#[test]
fn exec_cgroup_runs_the_process_in_a_sub_cgroup_as_runc() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    let bundle = Bundle::new(&["sleep", "1000"]);
    let (berth, runc) = under_both(&runtimes, |rt| {
        let (id, guard) = run_detached(rt, &bundle, "compat-exec-cgroup");
        let pid = rt.state(&id).expect("state")["pid"].as_u64().expect("pid");
        let missing = rt.run(&["exec", "--cgroup", "sub", &id, "true"]).code();
        let subs = make_sub_cgroups(pid, "sub");
        let ran = rt.run(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
        let escape = rt.run(&["exec", "--cgroup", "../x", &id, "true"]);
        drop(guard);
        for dir in subs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        let text = ran.ok();
        // Hierarchies the runtime leaves at the root (berth-runc: name=systemd) show "/".
        let placed: Vec<&str> = text.lines().filter(|l| !l.ends_with(":/")).collect();
        let all_in_sub = !placed.is_empty() && placed.iter().all(|l| l.ends_with("/sub"));
        let words = error_words(&escape).contains("../x is not a sub cgroup path");
        (missing, all_in_sub, escape.code(), words)
    });
    assert!(runc.1, "runc placed the process in the sub-cgroups");
    assert_eq!(berth, runc, "exec --cgroup, berth-runc vs runc");
}

/// The lines `events --interval 100ms` prints until it has shown an `oom` event: the first
/// stats line and the oom line.
fn events_until_oom(rt: &Runtime, id: &str) -> (String, String) {
    use std::io::BufRead;
    let mut command = rt.command();
    command
        .args(["events", "--interval", "100ms", id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("events");
    let stdout = child.stdout.take().expect("stdout");
    let deadline = std::time::Instant::now() + berth_harness::PATIENCE;
    let (mut stats, mut oom) = (String::new(), String::new());
    // Stats come every 100 ms: each line is a chance to give up once the deadline passed.
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        if line.contains("\"type\":\"oom\"") {
            oom = line;
            break;
        }
        if stats.is_empty() {
            stats = line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: no oom event",
            name(rt)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    (stats, oom)
}

#[test]
fn events_streams_stats_and_oom_notifications_as_runc() {
    need_root!();
    let Some(runtimes) = runtimes() else { return };
    // Fills a shell variable past the 20 MB limit once events is watching.
    let script = "sleep 1; a=$(head -c 200000000 /dev/zero | tr '\\0' x); sleep 1000";
    let mut bundle = Bundle::new(&["sh", "-c", script]);
    std::os::unix::fs::symlink("busybox", bundle.rootfs().join("bin/tr")).expect("tr");
    let memory: oci_spec::runtime::LinuxResources =
        serde_json::from_str(r#"{"memory": {"limit": 20000000}}"#).unwrap();
    let linux = bundle.spec_mut().linux_mut().as_mut().expect("linux");
    linux.set_resources(Some(memory));
    bundle.write();
    let (berth, runc) = under_both(&runtimes, |rt| {
        let (id, _guard) = run_detached(rt, &bundle, "compat-events");
        let (stats, oom) = events_until_oom(rt, &id);
        let stats = key_order(&stats);
        (stats, oom.replace(&id, "ID"))
    });
    assert_eq!(runc.1, r#"{"type":"oom","id":"ID"}"#);
    assert_eq!(berth, runc, "events, berth-runc vs runc");
}
