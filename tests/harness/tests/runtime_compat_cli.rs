//! runc compatibility of berth-runc's command line (issue 11): each case runs under berth-runc
//! and under runc (Debian's /usr/sbin/runc, the reference) on the same bundle, and what callers
//! read (exit codes, the words of errors, the text of JSON documents, files written) is compared.

use std::path::Path;
use std::process::Stdio;

use berth_harness::COMMAND_TIMEOUT;
use berth_harness::{eventually, have, need_root, run_with_timeout, unique, Bundle, Runtime};
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
