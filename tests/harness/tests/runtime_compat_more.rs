//! More of issue 11's runc compatibility, each case run under runc (Debian's /usr/sbin/runc,
//! the reference) and under berth-runc on the same bundle, and what each did compared: the
//! words and exit codes of commands in the wrong state, errors told once, a symlinked root, a
//! container without a mount namespace, `delete --force` of one of two containers sharing a
//! cgroup.

use std::path::Path;
use std::process::{Command, Stdio};

use berth_harness::{
    eventually, have, need_root, run_with_timeout, skip, unique, Bundle, Ran, Runtime,
    COMMAND_TIMEOUT,
};
use serde_json::{json, Value};

/// Debian's runc, the reference.
const RUNC: &str = "/usr/sbin/runc";

/// Returns from the calling test with `skipped: needs runc` when the reference is missing.
macro_rules! need_runc {
    () => {
        if !have(RUNC) {
            skip!("needs runc ({RUNC})");
        }
    };
}

/// The reference first, then berth-runc, each with its own state root, by name. The
/// berth-runc under test is `$BERTH_RUNC_UNDER_TEST` when set (an older build, to see a case
/// fail before its fix), else the workspace's.
fn runtimes() -> [(&'static str, Runtime); 2] {
    let berth = match std::env::var_os("BERTH_RUNC_UNDER_TEST") {
        Some(bin) => Runtime::with_binary(bin),
        None => Runtime::new(),
    };
    [("runc", Runtime::with_binary(RUNC)), ("berth-runc", berth)]
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Edits the bundle's config as JSON, and writes it.
fn edit(bundle: &mut Bundle, f: impl FnOnce(&mut Value)) {
    let mut v = serde_json::to_value(bundle.spec()).expect("spec as JSON");
    f(&mut v);
    *bundle.spec_mut() = serde_json::from_value(v).expect("edited spec");
    bundle.write();
}

fn run_detached(rt: &Runtime, bundle: &Bundle, id: &str) {
    rt.run(&["run", "--detach", "--bundle", path(bundle.path()), id])
        .ok();
}

fn status(rt: &Runtime, id: &str) -> String {
    rt.state(id).map_or_else(
        || "gone".to_string(),
        |s| s["status"].as_str().unwrap_or_default().to_string(),
    )
}

fn wait_status(rt: &Runtime, id: &str, want: &str) {
    eventually(&format!("{id} to be {want}"), || {
        (status(rt, id) == want).then_some(())
    });
}

/// The message of runc's last logged error (`level=error msg="..."` on stderr), without the
/// `runc create failed: ` some commands put first.
fn runc_message(ran: &Ran) -> String {
    let line = ran
        .stderr
        .lines()
        .rfind(|l| l.contains("level=error"))
        .unwrap_or_else(|| panic!("no error logged: {ran:?}"));
    let msg = &line[line.find("msg=\"").expect("msg=") + 5..];
    let msg = msg[..msg.rfind('"').expect("closing quote")]
        .replace("\\\"", "\"")
        .replace("\\n", "");
    match msg
        .strip_prefix("runc ")
        .and_then(|m| m.split_once(" failed: "))
    {
        Some((_, rest)) => rest.to_string(),
        None => msg,
    }
}

/// For each command, runc's exit code and words, and berth-runc's: its code must be runc's and
/// its one line must hold runc's words.
fn assert_same_failures(seen: &[(&str, Vec<Ran>)]) {
    let (runc, berth) = (&seen[0].1, &seen[1].1);
    for (r, b) in runc.iter().zip(berth) {
        let words = runc_message(r);
        assert_eq!(b.code(), r.code(), "exit code for {words:?}: {b:?}");
        assert!(b.stderr.contains(&words), "{words:?} in {:?}", b.stderr);
        assert_eq!(
            b.stderr.trim().lines().count(),
            1,
            "one line: {:?}",
            b.stderr
        );
    }
}

#[test]
fn commands_in_the_wrong_state_fail_in_runcs_words() {
    need_root!();
    need_runc!();
    let bundle = Bundle::new(&["sleep", "1000"]);
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let id = unique("state-words");
        run_detached(&rt, &bundle, &id);
        let mut ran = vec![rt.run(&["start", &id]), rt.run(&["resume", &id])];
        rt.run(&["pause", &id]).ok();
        ran.extend([rt.run(&["pause", &id]), rt.run(&["start", &id])]);
        rt.run(&["resume", &id]).ok();
        rt.run(&["kill", &id, "KILL"]).ok();
        wait_status(&rt, &id, "stopped");
        for cmd in ["start", "pause", "resume"] {
            ran.push(rt.run(&[cmd, &id]));
        }
        ran.push(rt.run(&["exec", &id, "true"]));
        rt.run(&["delete", &id]).ok();
        seen.push((name, ran));
    }
    assert_same_failures(&seen);
}

#[test]
fn an_os_error_is_told_once() {
    need_root!();
    need_runc!();
    let bundle = Bundle::new(&["true"]);
    for (name, rt) in runtimes() {
        let id = unique("once");
        let args = ["create", "--pid-file", "/nonexistent/pid", "--bundle"];
        let ran = rt.run(&[&args[..], &[path(bundle.path()), &id]].concat());
        assert_eq!(ran.code(), Some(1), "{name}: {ran:?}");
        let told = ran.stderr.to_lowercase();
        assert_eq!(
            told.matches("no such file or directory").count(),
            1,
            "{name}: {told}"
        );
        assert_eq!(
            rt.run(&["list", "-q"]).ok().trim(),
            "",
            "{name}: left behind"
        );
    }
}

#[test]
fn a_root_filesystem_reached_through_a_symlink_is_refused() {
    need_root!();
    need_runc!();
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let mut ran = Vec::new();
        // The rootfs itself a link, then a directory above it.
        let mut bundle = Bundle::new(&["true"]);
        std::os::unix::fs::symlink("rootfs", bundle.path().join("link")).expect("symlink");
        edit(&mut bundle, |v| v["root"]["path"] = json!("link"));
        ran.push(rt.run(&["run", "--bundle", path(bundle.path()), &unique("link")]));
        let above = tempfile::tempdir().expect("tempdir");
        let through = above.path().join("bundle");
        std::os::unix::fs::symlink(bundle.path(), &through).expect("symlink");
        edit(&mut bundle, |v| {
            v["root"]["path"] = json!(through.join("rootfs"))
        });
        ran.push(rt.run(&["run", "--bundle", path(bundle.path()), &unique("link")]));
        assert_eq!(
            rt.run(&["list", "-q"]).ok().trim(),
            "",
            "{name}: left behind"
        );
        seen.push((name, ran));
    }
    assert_same_failures(&seen);
}

/// berth resolves its data root as dockerd does, so that its containers' roots are no links.
#[test]
fn the_engine_runs_from_a_data_root_reached_through_a_symlink() {
    need_root!();
    let berth = berth_harness::image::Berth::new();
    let above = tempfile::tempdir().expect("tempdir");
    let link = above.path().join("root");
    std::os::unix::fs::symlink(berth.root(), &link).expect("symlink");
    let mut command = Command::new(berth_harness::image::berth_bin());
    command
        .arg("--root")
        .arg(&link)
        .env("BERTH_ROOT", &link)
        .args(["run", "--rm", berth_harness::image::IMAGE, "echo", "ran"])
        .stdin(Stdio::null());
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert_eq!(ran.ok().trim(), "ran");
}

/// The directory of cgroup `cg` in the pids hierarchy (v1), or in the unified one.
fn cgroup_dir(cg: &str) -> std::path::PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/pids");
    let base = if v1.exists() {
        v1
    } else {
        Path::new("/sys/fs/cgroup")
    };
    base.join(cg.trim_start_matches('/'))
}

/// Two containers in one cgroup (the same cgroupsPath): `delete --force` of the first ends
/// the other too only when the first has no pid namespace of its own, as runc decides; the
/// cgroup goes with the last of them.
#[test]
fn delete_force_of_a_container_sharing_its_cgroup() {
    need_root!();
    need_runc!();
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let mut outcome = Vec::new();
        for own_pid_ns in [true, false] {
            let cg = format!("/{}", unique("berth-shared"));
            let mut first = Bundle::new(&["sleep", "1000"]);
            edit(&mut first, |v| {
                v["linux"]["cgroupsPath"] = json!(cg);
                if !own_pid_ns {
                    let ns = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
                    ns.retain(|n| n["type"] != "pid");
                }
            });
            let mut other = Bundle::new(&["sleep", "1000"]);
            edit(&mut other, |v| v["linux"]["cgroupsPath"] = json!(cg));
            let (a, b) = (unique("shared-a"), unique("shared-b"));
            run_detached(&rt, &first, &a);
            run_detached(&rt, &other, &b);
            let deleted = rt.run(&["delete", "--force", &a]);
            if !own_pid_ns {
                // Killed with the first, but not waited for: it may take a moment to go.
                wait_status(&rt, &b, "stopped");
            }
            let other_status = status(&rt, &b);
            let left = cgroup_dir(&cg).exists();
            rt.run(&["delete", "--force", &b]).ok();
            let gone = !cgroup_dir(&cg).exists();
            outcome.push(format!(
                "own pid ns {own_pid_ns}: delete exit {:?}, the other {other_status}, \
                 cgroup left {left}, gone with the other {gone}",
                deleted.code()
            ));
        }
        seen.push((name, outcome));
    }
    assert_eq!(seen[0].1, seen[1].1, "{seen:?}");
}

/// `sh -c` as the container's process: the mount namespace it runs in, then `ls` of a file of
/// its root.
const SHOW_MOUNT_NS: [&str; 3] = [
    "sh",
    "-c",
    "readlink /proc/self/ns/mnt; ls /bin/berth-probe",
];

/// Without a mount namespace of its own, the container runs in its caller's, chrooted into its
/// root. Both runtimes run in a throw-away mount namespace (`unshare -m`): runc sets the
/// propagation of / in the one it is in, and both mount the container's /proc and /dev there.
#[test]
fn without_a_mount_namespace_the_container_runs_in_its_callers() {
    need_root!();
    need_runc!();
    if !have("unshare") {
        skip!("needs unshare (util-linux)");
    }
    let mut bundle = Bundle::new(&SHOW_MOUNT_NS);
    edit(&mut bundle, |v| {
        let ns = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "mount");
        v["linux"]["maskedPaths"] = json!([]);
        v["linux"]["readonlyPaths"] = json!([]);
    });
    for (name, rt) in runtimes() {
        let id = unique("host-mnt");
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("readlink /proc/self/ns/mnt && exec \"$@\"")
            .arg("sh")
            .arg(rt.binary())
            .arg("--root")
            .arg(rt.root())
            .args(["run", "--bundle", path(bundle.path()), &id])
            .stdin(Stdio::null());
        let ran = run_with_timeout(command, COMMAND_TIMEOUT);
        rt.run(&["delete", "--force", &id]);
        let out = ran.ok();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{name}: {out}");
        assert_eq!(lines[0], lines[1], "{name}: the caller's mount namespace");
        assert_eq!(lines[2], "/bin/berth-probe", "{name}: its own root");
    }
}

#[test]
fn masked_paths_without_a_mount_namespace_are_refused() {
    need_root!();
    need_runc!();
    let mut bundle = Bundle::new(&["true"]);
    edit(&mut bundle, |v| {
        let ns = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "mount");
    });
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let ran = rt.run(&["run", "--bundle", path(bundle.path()), &unique("masked")]);
        assert_eq!(
            rt.run(&["list", "-q"]).ok().trim(),
            "",
            "{name}: left behind"
        );
        seen.push((name, vec![ran]));
    }
    assert_same_failures(&seen);
}

/// `--no-pivot` moves the root over / of the mount namespace the init is in: without one of
/// its own, the host's. Newer runc refuses it in these words; runc 1.1 does it, so it is not
/// run here.
#[test]
fn no_pivot_without_a_mount_namespace_is_refused() {
    need_root!();
    let mut bundle = Bundle::new(&["true"]);
    edit(&mut bundle, |v| {
        let ns = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "mount");
        v["linux"]["maskedPaths"] = json!([]);
        v["linux"]["readonlyPaths"] = json!([]);
    });
    let rt = &runtimes()[1].1;
    let ran = rt.run(&[
        "run",
        "--no-pivot",
        "--bundle",
        path(bundle.path()),
        &unique("np"),
    ]);
    assert_eq!(ran.code(), Some(1), "{ran:?}");
    assert!(
        ran.stderr
            .contains("unable to use no-pivot without a private MNT namespace"),
        "{ran:?}"
    );
    assert_eq!(rt.run(&["list", "-q"]).ok().trim(), "", "left behind");
}
