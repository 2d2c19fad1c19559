//! Black-box tests of berth-runc's command line surface as runc spells it (issue 2, "Command
//! line"): global flags, every command's flags and output formats, and exit codes.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use berth_harness::{eventually, have, need_root, run_with_timeout, skip, unique, Bundle};
use berth_harness::{Ran, Runtime, COMMAND_TIMEOUT};
use serde_json::Value;

/// Force-deletes a container when dropped, so a failing assertion leaves nothing behind even
/// when `Runtime` could not remember the id (flags after it: `create ID --bundle B`).
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

/// The failure is one clear line on stderr, nothing on stdout, and a non-zero exit.
fn one_line_error(ran: Ran) -> String {
    assert!(!ran.success(), "expected a failure: {ran:?}");
    assert_ne!(ran.code(), Some(0), "{ran:?}");
    let lines: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "not one line on stderr: {ran:?}");
    assert!(ran.stdout.is_empty(), "an error printed to stdout: {ran:?}");
    lines[0].to_string()
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}"))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A running `sleep` container (`run --detach`), cleaned up on drop.
fn running<'a>(rt: &'a Runtime, bundle: &Bundle, prefix: &str) -> (String, Cleanup<'a>) {
    let id = unique(prefix);
    rt.run(&["run", "--detach", "--bundle", path(bundle.path()), &id])
        .ok();
    let guard = Cleanup(rt, id.clone());
    (id, guard)
}

fn status(rt: &Runtime, id: &str) -> String {
    let state = rt.state(id).unwrap_or_else(|| panic!("no state for {id}"));
    state["status"].as_str().unwrap_or_default().to_string()
}

fn ps_json(rt: &Runtime, id: &str) -> Vec<i64> {
    let out = rt.run(&["ps", "--format", "json", id]).ok();
    let pids = json(&out);
    let pids = pids.as_array().unwrap_or_else(|| panic!("ps json: {out}"));
    pids.iter().map(|p| p.as_i64().expect("a pid")).collect()
}

#[test]
fn version_and_help_are_shaped_like_runcs() {
    let rt = Runtime::new();
    for flag in ["--version", "-v"] {
        let out = rt.run(&[flag]).ok();
        let first = out.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("berth-runc version 0."),
            "{flag}'s first line is not '<name> version <v>', as runc's: {out}"
        );
        let spec = out.lines().find_map(|l| l.strip_prefix("spec: "));
        assert!(
            spec.is_some_and(|v| v.starts_with("1.")),
            "no 'spec: 1.x' line: {out}"
        );
    }
    let help = rt.run(&["--help"]).ok();
    for command in [
        "create", "start", "run", "state", "kill", "delete", "exec", "ps", "list", "pause",
        "resume", "spec", "features", "events", "update",
    ] {
        let listed = help
            .lines()
            .any(|l| l.split_whitespace().next() == Some(command));
        assert!(listed, "--help does not list {command}: {help}");
    }
    // No arguments at all: the help, as runc prints it, and success.
    let bare = rt.run(&[]);
    assert_eq!(bare.code(), Some(0), "{bare:?}");
    assert!(bare.stdout.contains("create"), "{bare:?}");
}

#[test]
fn an_unknown_command_or_flag_is_one_line_and_exit_1() {
    let rt = Runtime::new();
    let line = one_line_error(rt.run(&["bogus"]));
    assert!(line.contains("bogus"), "{line}");
    for args in [
        &["--bogus", "list"][..],
        &["list", "--bogus"],
        &["list", "--format", "yaml"],
    ] {
        let ran = rt.run(args);
        assert_eq!(
            ran.code(),
            Some(1),
            "runc exits 1 on a usage error: {ran:?}"
        );
        let line = one_line_error(ran);
        assert!(line.contains("bogus") || line.contains("yaml"), "{line}");
    }
    let line = one_line_error(rt.run(&["create"]));
    assert!(
        line.contains("<ID>"),
        "the missing argument is named: {line}"
    );
}

#[test]
fn spec_writes_runcs_default_and_refuses_to_overwrite() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = rt.command();
    command.arg("spec").current_dir(dir.path());
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert!(ran.success(), "{ran:?}");
    let config = dir.path().join("config.json");
    let text = std::fs::read_to_string(&config).expect("spec wrote config.json in the cwd");
    let spec = json(&text);
    assert_eq!(spec["process"]["terminal"], true, "{spec}");
    assert_eq!(spec["process"]["args"], serde_json::json!(["sh"]), "{spec}");
    assert_eq!(spec["root"]["path"], "rootfs", "{spec}");
    assert!(namespaces(&spec).contains("network"), "{spec}");
    // A second spec refuses, and leaves the file as it was.
    std::fs::write(&config, "{}").expect("config.json");
    let line = one_line_error(rt.run(&["spec", "--bundle", path(dir.path())]));
    assert!(line.contains("exists"), "{line}");
    assert_eq!(std::fs::read_to_string(&config).expect("config"), "{}");
    // --bundle and -b write there.
    for flag in ["--bundle", "-b"] {
        let other = tempfile::tempdir().expect("tempdir");
        rt.run(&["spec", flag, path(other.path())]).ok();
        let spec = json(&std::fs::read_to_string(other.path().join("config.json")).unwrap());
        assert_eq!(spec["process"]["args"], serde_json::json!(["sh"]));
    }
}

fn namespaces(spec: &Value) -> BTreeSet<String> {
    let list = spec["linux"]["namespaces"].as_array().cloned();
    list.unwrap_or_default()
        .iter()
        .map(|ns| ns["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `spec --rootless` in `dir`, run as `uid:gid` (through setpriv) unless they are ours.
fn rootless_spec(rt: &Runtime, dir: &Path, ids: Option<(u32, u32)>) -> Value {
    let mut command = match ids {
        Some((uid, gid)) => {
            let mut c = std::process::Command::new("setpriv");
            let (uid, gid) = (uid.to_string(), gid.to_string());
            c.args(["--reuid", &uid, "--regid", &gid, "--clear-groups"]);
            c.arg(rt.binary()).arg("--root").arg(rt.root());
            c
        }
        None => rt.command(),
    };
    command.args(["spec", "--rootless", "--bundle", path(dir)]);
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert!(ran.success(), "{ran:?}");
    json(&std::fs::read_to_string(dir.join("config.json")).expect("config.json"))
}

#[test]
fn spec_rootless_maps_the_caller_and_keeps_the_hosts_network_and_cgroup_namespaces() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = rootless_spec(&rt, dir.path(), None);
    let linux = &spec["linux"];
    let names = namespaces(&spec);
    assert!(names.contains("user"), "{spec}");
    assert!(
        !names.contains("network") && !names.contains("cgroup"),
        "{names:?}"
    );
    assert!(linux.get("resources").is_none(), "{linux}");
    let me = std::fs::metadata("/proc/self").expect("/proc/self");
    use std::os::unix::fs::MetadataExt;
    for (key, id) in [("uidMappings", me.uid()), ("gidMappings", me.gid())] {
        let expected = serde_json::json!([{"containerID": 0, "hostID": id, "size": 1}]);
        assert_eq!(linux[key], expected, "{key}");
    }
    if have("runc") {
        let theirs = tempfile::tempdir().expect("tempdir");
        let reference = rootless_spec(&Runtime::with_binary("runc"), theirs.path(), None);
        assert_eq!(names, namespaces(&reference), "runc's rootless namespaces");
    }
    // Another caller gets its own ids mapped.
    if !berth_harness::is_root() || !have("setpriv") {
        skip!("needs root and setpriv for the nobody case");
    }
    let shared = tempfile::tempdir().expect("tempdir");
    let perms = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(shared.path(), perms).expect("chmod");
    let spec = rootless_spec(&rt, shared.path(), Some((65534, 65534)));
    assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], 65534, "{spec}");
    assert_eq!(spec["linux"]["gidMappings"][0]["hostID"], 65534, "{spec}");
}

#[test]
fn features_prints_the_runtime_spec_features_document() {
    let rt = Runtime::new();
    let f = json(&rt.run(&["features"]).ok());
    assert_eq!(f["ociVersionMin"], "1.0.0", "{f}");
    assert!(f["ociVersionMax"]
        .as_str()
        .is_some_and(|v| v.starts_with("1.")));
    let strings = |v: &Value| -> Vec<String> {
        let list = v.as_array().unwrap_or_else(|| panic!("not a list: {v}"));
        list.iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut ns = strings(&f["linux"]["namespaces"]);
    ns.sort();
    let all = [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
    ];
    assert_eq!(ns, all, "the eight namespaces");
    let caps = strings(&f["linux"]["capabilities"]);
    assert_eq!(
        caps.first().map(String::as_str),
        Some("CAP_CHOWN"),
        "by number"
    );
    for cap in ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_NET_RAW", "CAP_KILL"] {
        assert!(caps.iter().any(|c| c == cap), "{cap} missing: {caps:?}");
    }
    let options = strings(&f["mountOptions"]);
    for opt in ["ro", "rbind", "nosuid", "nodev", "noexec", "rprivate"] {
        assert!(options.iter().any(|o| o == opt), "mount option {opt}");
    }
    let actions = strings(&f["linux"]["seccomp"]["actions"]);
    for act in ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"] {
        assert!(actions.iter().any(|a| a == act), "seccomp action {act}");
    }
    assert_eq!(strings(&f["hooks"]).len(), 6, "{f}");
    assert_eq!(f["linux"]["cgroup"]["systemd"], false, "{f}");
}

#[test]
fn create_with_flags_after_the_id_then_state_start_list_ps_events_delete() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "1000"]);
    let annotations = [("org.example.key".to_string(), "value".to_string())];
    bundle.spec_mut().set_annotations(Some(annotations.into()));
    bundle.write();
    let id = unique("cli-life");
    let pid_file = bundle.path().join("init.pid");
    let _guard = Cleanup(&rt, id.clone());
    rt.run(&[
        "create",
        &id,
        "--bundle",
        path(bundle.path()),
        "--pid-file",
        path(&pid_file),
    ])
    .ok();
    let state = rt.state(&id).expect("state after create");
    let pid = std::fs::read_to_string(&pid_file).expect("--pid-file was written");
    assert_eq!(state["pid"].as_i64(), pid.trim().parse().ok(), "{state}");
    assert!(state["ociVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("1.")));
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["status"], "created");
    assert_eq!(state["bundle"], path(bundle.path()));
    assert_eq!(state["annotations"]["org.example.key"], "value", "{state}");
    let pid = state["pid"].as_i64().expect("pid");
    assert!(pid > 0, "{state}");

    let table = rt.run(&["list"]).ok();
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let row = lines.next().unwrap_or_default();
    let expected = [&id, &pid.to_string(), "created", path(bundle.path())];
    assert_columns(header, row, &[&expected[..], &["", "root"]].concat());
    let listed = json(&rt.run(&["list", "--format", "json"]).ok());
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["status"], "created", "{listed}");
    assert_eq!(listed[0]["pid"], pid, "{listed}");
    assert_eq!(rt.run(&["list", "-q"]).ok(), format!("{id}\n"));

    rt.start(&id).ok();
    assert_eq!(status(&rt, &id), "running");
    let ps = rt.run(&["ps", &id]).ok();
    assert!(
        ps.lines().next().unwrap_or_default().contains("PID"),
        "{ps}"
    );
    assert!(
        ps.lines()
            .skip(1)
            .any(|l| l.split_whitespace().any(|w| w == pid.to_string())),
        "ps does not show the init {pid}: {ps}"
    );
    assert_eq!(ps_json(&rt, &id), [pid]);
    let events = json(&rt.run(&["events", "--stats", &id]).ok());
    assert_eq!(events["type"], "stats", "{events}");
    assert_eq!(events["id"], id.as_str(), "{events}");
    assert_eq!(events["data"]["pids"]["current"], 1, "{events}");
    assert!(events["data"]["memory"].is_object(), "{events}");

    rt.run(&["pause", &id]).ok();
    assert_eq!(status(&rt, &id), "paused");
    let line = one_line_error(rt.run(&["exec", &id, "true"]));
    assert!(line.contains("paused"), "{line}");
    rt.run(&["resume", &id]).ok();
    assert_eq!(status(&rt, &id), "running");

    rt.kill(&id, "KILL").ok();
    eventually("the container to stop", || {
        (status(&rt, &id) == "stopped").then_some(())
    });
    rt.delete(&id).ok();
    assert!(rt.state(&id).is_none(), "state after delete");
    assert_eq!(rt.run(&["list", "-q"]).ok(), "");
}

/// Each cell of `row` starts where its column's header word does, as runc's tabwriter aligns
/// them, three spaces at least after the widest cell; an empty expectation is not checked.
fn assert_columns(header: &str, row: &str, expected: &[&str]) {
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|&(i, c)| c != ' ' && (i == 0 || header.as_bytes()[i - 1] == b' '))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), expected.len(), "{header}");
    for (n, (&at, cell)) in starts.iter().zip(expected).enumerate() {
        let rest = row.get(at..).unwrap_or_default();
        assert!(
            rest.starts_with(cell),
            "column {n} is not {cell:?}:\n{header}\n{row}"
        );
        if let Some(&next) = starts.get(n + 1) {
            assert!(
                next >= at + cell.len() + 3,
                "no 3-space gap after {cell:?}:\n{row}"
            );
        }
    }
}

#[test]
fn kill_takes_a_name_with_or_without_sig_and_a_number() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "1000"]);
    for signal in ["KILL", "SIGKILL", "9"] {
        let (id, _guard) = running(&rt, &bundle, "cli-kill");
        rt.kill(&id, signal).ok();
        eventually(&format!("kill {signal} to stop it"), || {
            (status(&rt, &id) == "stopped").then_some(())
        });
        rt.delete(&id).ok();
    }
    let (id, _guard) = running(&rt, &bundle, "cli-kill");
    let line = one_line_error(rt.kill(&id, "SIGBOGUS"));
    assert!(line.contains("SIGBOGUS"), "{line}");
    assert_eq!(status(&rt, &id), "running");
    rt.run(&["delete", "--force", &id]).ok();
}

#[test]
fn kill_all_reaches_the_processes_the_init_signal_does_not() {
    need_root!();
    let rt = Runtime::new();
    // The init is PID 1 of its namespace: a TERM from the host, without a handler, is dropped.
    let bundle = Bundle::new(&["sleep", "1000"]);
    let (id, _guard) = running(&rt, &bundle, "cli-killall");
    let init = rt.state(&id).unwrap()["pid"].as_i64().unwrap();
    rt.run(&["exec", "--detach", &id, "sleep", "1000"]).ok();
    assert_eq!(ps_json(&rt, &id).len(), 2);
    rt.kill(&id, "TERM").ok();
    assert_eq!(
        ps_json(&rt, &id).len(),
        2,
        "kill without --all reached the exec'd sleep"
    );
    rt.run(&["kill", "--all", &id, "TERM"]).ok();
    eventually("kill --all to end the exec'd sleep", || {
        (ps_json(&rt, &id) == [init]).then_some(())
    });
    assert_eq!(status(&rt, &id), "running");
    rt.run(&["delete", "--force", &id]).ok();
}

#[test]
fn delete_refuses_a_running_container_and_delete_force_kills_it() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "1000"]);
    let (id, _guard) = running(&rt, &bundle, "cli-delete");
    let line = one_line_error(rt.delete(&id));
    assert!(line.contains("running"), "{line}");
    assert_eq!(status(&rt, &id), "running");
    rt.run(&["delete", "--force", &id]).ok();
    assert!(rt.state(&id).is_none());
    assert_eq!(rt.run(&["list", "-q"]).ok(), "");
    let line = one_line_error(rt.delete(&id));
    assert!(line.contains("does not exist"), "{line}");
}

/// The process's bounding set from its /proc/self/status, as a mask.
fn cap_bnd(out: &str) -> u64 {
    let hex = out.lines().find_map(|l| l.strip_prefix("CapBnd:"));
    u64::from_str_radix(hex.expect(out).trim(), 16).expect("hex mask")
}

#[test]
fn exec_flags_cwd_env_user_cap_and_the_exit_code() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "1000"]);
    let (id, _guard) = running(&rt, &bundle, "cli-exec");
    let out = rt
        .run(&["exec", "--cwd", "/tmp", &id, "sh", "-c", "pwd"])
        .ok();
    assert_eq!(out, "/tmp\n");
    let env = [
        "exec",
        "--env",
        "A=1",
        "-e",
        "B=2",
        &id,
        "sh",
        "-c",
        "echo $A-$B",
    ];
    assert_eq!(rt.run(&env).ok(), "1-2\n");
    let out = rt.run(&["exec", "--user", "65534:65534", &id, "id"]).ok();
    assert!(
        out.starts_with("uid=65534(") && out.contains(" gid=65534("),
        "{out}"
    );
    // CAP_SYS_PTRACE is 19: not in the bundle's bounding set until --cap adds it.
    let status = ["grep", "Cap", "/proc/self/status"];
    let without = rt.run(&[&["exec", &id][..], &status].concat()).ok();
    assert_eq!(cap_bnd(&without) & (1 << 19), 0, "{without}");
    for flags in [["--cap", "CAP_SYS_PTRACE"], ["-c", "CAP_SYS_PTRACE"]] {
        let with = rt
            .run(&[&["exec"][..], &flags, &[&id], &status].concat())
            .ok();
        assert_ne!(cap_bnd(&with) & (1 << 19), 0, "{flags:?}: {with}");
    }
    // Flags may follow the id.
    let out = rt
        .run(&["exec", &id, "--cwd", "/proc", "sh", "-c", "pwd"])
        .ok();
    assert_eq!(out, "/proc\n");
    let ran = rt.run(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(ran.code(), Some(7), "{ran:?}");
    let line = one_line_error(rt.run(&["exec", "--cap", "CAP_BOGUS", &id, "true"]));
    assert!(line.contains("CAP_BOGUS"), "{line}");
    rt.run(&["delete", "--force", &id]).ok();
}

#[test]
fn exec_detach_pid_file_process_file_and_tty_without_a_socket() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "1000"]);
    let (id, _guard) = running(&rt, &bundle, "cli-exec2");
    let pid_file = bundle.path().join("exec.pid");
    let detach = [
        "exec",
        "--detach",
        "--pid-file",
        path(&pid_file),
        &id,
        "sleep",
        "1000",
    ];
    let ran = rt.run(&detach);
    assert_eq!(ran.code(), Some(0), "{ran:?}");
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .expect("exec --pid-file")
        .trim()
        .parse()
        .expect("a pid");
    assert!(
        ps_json(&rt, &id).contains(&pid),
        "the detached process {pid}"
    );

    let process = serde_json::json!({
        "args": ["sh", "-c", "echo from $WHO in $(pwd); exit 4"],
        "env": ["PATH=/bin", "WHO=process.json"],
        "cwd": "/etc",
        "user": {"uid": 0, "gid": 0},
    });
    let file = bundle.path().join("process.json");
    std::fs::write(&file, process.to_string()).expect("process.json");
    for flag in ["--process", "-p"] {
        let ran = rt.run(&["exec", flag, path(&file), &id]);
        assert_eq!(ran.code(), Some(4), "{ran:?}");
        assert_eq!(ran.stdout, "from process.json in /etc\n", "{ran:?}");
    }
    let line = one_line_error(rt.run(&["exec", "--tty", "--detach", &id, "sh"]));
    assert!(line.contains("console-socket"), "{line}");
    let line = one_line_error(rt.run(&["exec", &id]));
    assert!(line.contains("command"), "{line}");
    rt.run(&["delete", "--force", &id]).ok();
}

#[test]
fn systemd_cgroup_is_a_clear_error_and_creates_nothing() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&["true"]);
    let id = unique("cli-systemd");
    let _guard = Cleanup(&rt, id.clone());
    let create = [
        "--systemd-cgroup",
        "create",
        "--bundle",
        path(bundle.path()),
        &id,
    ];
    let line = one_line_error(rt.run(&create));
    assert!(line.contains("--systemd-cgroup"), "{line}");
    assert!(!rt.root().join(&id).exists(), "a state directory was left");
}

#[test]
fn log_json_records_a_failing_commands_error() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("runtime.log");
    let missing = unique("cli-missing");
    let args = [
        "--log",
        path(&log),
        "--log-format",
        "json",
        "state",
        &missing,
    ];
    let line = one_line_error(rt.run(&args));
    assert!(line.contains(&missing), "{line}");
    let bad_bundle = dir.path().join("no-such-bundle");
    let create = [
        "--log",
        path(&log),
        "--log-format",
        "json",
        "create",
        "--bundle",
    ];
    let id = unique("cli-log");
    let _guard = Cleanup(&rt, id.clone());
    one_line_error(rt.run(&[&create[..], &[path(&bad_bundle), &id]].concat()));
    let text = std::fs::read_to_string(&log).expect("--log was written");
    let entries: Vec<Value> = text.lines().map(json).collect();
    let errors: Vec<&Value> = entries.iter().filter(|e| e["level"] == "error").collect();
    assert_eq!(
        errors.len(),
        2,
        "one error line per failing command: {text}"
    );
    assert!(errors[0]["msg"]
        .as_str()
        .is_some_and(|m| m.contains(&missing)));
    assert!(errors[1]["msg"]
        .as_str()
        .is_some_and(|m| m.contains("no-such-bundle")));
    assert!(errors.iter().all(|e| e["time"].is_string()), "{text}");
}

/// As with runc, a created container can be paused (state says so) and resumed to created,
/// then started; exec refuses it while paused.
#[test]
fn a_created_container_pauses_and_resumes_to_created() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let id = unique("pause-created");
    rt.create(&id, &bundle).ok();
    let _guard = Cleanup(&rt, id.clone());
    rt.run(&["pause", &id]).ok();
    assert_eq!(status(&rt, &id), "paused");
    let line = one_line_error(rt.run(&["exec", &id, "true"]));
    assert!(line.contains("--ignore-paused"), "{line}");
    rt.run(&["resume", &id]).ok();
    assert_eq!(status(&rt, &id), "created");
    rt.start(&id).ok();
    assert_eq!(status(&rt, &id), "running");
}

/// `exec --ignore-paused` joins a paused container: its process starts frozen and runs once
/// the container is resumed.
#[test]
fn exec_ignore_paused_runs_once_resumed() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let (id, _guard) = running(&rt, &bundle, "ignore-paused");
    rt.run(&["pause", &id]).ok();
    let child = rt
        .command()
        .args(["exec", "--ignore-paused", &id, "echo", "thawed"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth-runc exec");
    rt.run(&["resume", &id]).ok();
    // Bounded: a process left frozen would hang the suite otherwise.
    let mut child = child;
    eventually("exec to end after the resume", || {
        child.try_wait().expect("wait for exec")
    });
    let out = child.wait_with_output().expect("exec's output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "thawed");
}

/// A reader that goes away (`berth-runc features | head -1`) ends the command quietly with the
/// status of a process SIGPIPE killed, not a Rust panic.
#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    let rt = Runtime::new();
    let (read, write) = std::io::pipe().expect("pipe");
    drop(read);
    let out = rt
        .command()
        .arg("features")
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .expect("run berth-runc features");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Started with stdin, stdout and stderr closed (`<&- >&- 2>&-`), berth-runc opens them on
/// /dev/null first, as std's start-up does (berth-runc starts without it): what it opens then
/// (the init's socket, the container's state) does not take their numbers, and the container's
/// process gets /dev/null as its stdio. (runc gives it pipes of its own; without the reopening
/// it got one of berth-runc's descriptors.)
#[test]
fn a_runtime_started_with_its_stdio_closed_gives_the_container_dev_null() {
    need_root!();
    let rt = Runtime::new();
    let script = concat!(
        "echo $(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) ",
        "$(readlink /proc/$$/fd/2) > /stdio"
    );
    let bundle = Bundle::new(&["sh", "-c", script]);
    let mut command = std::process::Command::new("sh");
    command.args(["-c", "exec \"$@\" <&- >&- 2>&-", "sh"]);
    command.arg(rt.binary()).arg("--root").arg(rt.root());
    let id = unique("closed-stdio");
    command.args(["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert!(ran.success(), "{}", ran.stderr);
    let stdio = std::fs::read_to_string(bundle.rootfs().join("stdio")).unwrap();
    assert_eq!(stdio.trim(), "/dev/null /dev/null /dev/null");
}

/// runc's `update`: flags (sizes with units, as runc takes them) and a resources JSON on stdin
/// change a running container's cgroup limits; `events --stats` and the cgroup files show them.
#[test]
fn update_changes_the_limits_of_a_running_container() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let cgroup = bundle
        .spec()
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .expect("the harness gives each bundle a cgroups path");
    let (id, _guard) = running(&rt, &bundle, "update");
    rt.run(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "64m",
        "--pids-limit",
        "20",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        &id,
    ])
    .ok();
    let stats = json(&rt.run(&["events", "--stats", &id]).ok());
    assert_eq!(
        stats["data"]["memory"]["usage"]["limit"],
        64 << 20,
        "{stats}"
    );
    assert_eq!(stats["data"]["pids"]["limit"], 20, "{stats}");
    let rel = cgroup.to_string_lossy().trim_start_matches('/').to_string();
    // v1 (cpu alone or co-mounted with cpuacct), else v2.
    let quota = ["cpu", "cpu,cpuacct"]
        .iter()
        .map(|h| {
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join(&rel)
                .join("cpu.cfs_quota_us")
        })
        .chain([Path::new("/sys/fs/cgroup").join(&rel).join("cpu.max")])
        .find_map(|p| std::fs::read_to_string(p).ok())
        .expect("the cpu quota file");
    assert!(quota.starts_with("50000"), "{quota}");

    rt.run_input(&["update", "-r", "-", &id], br#"{"pids": {"limit": 30}}"#)
        .ok();
    let stats = json(&rt.run(&["events", "--stats", &id]).ok());
    assert_eq!(stats["data"]["pids"]["limit"], 30, "{stats}");
    // What the JSON left out stays as the flags set it.
    assert_eq!(
        stats["data"]["memory"]["usage"]["limit"],
        64 << 20,
        "{stats}"
    );
    let line = one_line_error(rt.run(&["update", "--memory", "lots", &id]));
    assert!(line.contains("not a size"), "{line}");
    // Device rules are not updated (as in runc): a deny-all sent by a caller that passes the
    // whole resources object, as podman does, leaves /dev/null usable.
    let deny_all = br#"{"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 40}}"#;
    rt.run_input(&["update", "-r", "-", &id], deny_all).ok();
    let wrote = rt
        .run(&["exec", &id, "sh", "-c", "echo x > /dev/null && echo ok"])
        .ok();
    assert_eq!(wrote.trim(), "ok");
}
