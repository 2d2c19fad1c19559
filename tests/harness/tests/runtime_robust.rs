//! berth-runc killed half-way: what it started must not outlive it waiting for good, and what it
//! made goes with `delete`.

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use berth_harness::{eventually, need_root, unique, Bundle, Runtime};

/// Whether `pid` is gone or a zombie (its parent died: the init reaps it when it will).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn an_init_whose_runtime_was_killed_during_create_exits() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    // The runtime waits for this hook between the init's handshake and its Go: the moment a
    // killed create used to leave the init waiting on a socket it held both ends of.
    let marker = tempfile::NamedTempFile::new().unwrap();
    let hooks: oci_spec::runtime::Hooks = serde_json::from_value(serde_json::json!({
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c",
            format!("echo hook > {}; exec sleep 600", marker.path().display())]}],
    }))
    .unwrap();
    bundle.spec_mut().set_hooks(Some(hooks));
    bundle.write();
    let id = unique("killed");
    let mut create = rt.command();
    create
        .args(["create", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // The hook's sleep is in the runtime's process group: killed with it.
        .process_group(0);
    let mut child = create.spawn().unwrap();
    eventually("the createRuntime hook to run", || {
        (std::fs::read_to_string(marker.path()).unwrap_or_default() == "hook\n").then_some(())
    });
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(rt.root().join(&id).join("state.json")).expect("the container's state"),
    )
    .unwrap();
    let init = state["pid"].as_i64().expect("the init's pid in state.json") as i32;
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    // A test that fails must not leave the init waiting for good either.
    let _guard = KillOnDrop(init);
    eventually("the init of a killed create to exit", || {
        ended(init).then_some(())
    });
    rt.run(&["delete", "--force", &id]);
}

struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A create killed between making the container's directory and writing its state.json leaves
/// the directory (and the exec fifo) without state. `delete` removes it, `--force` or not, as
/// runc does; without `--force` it still says the container does not exist. Before, berth-runc
/// answered the same but kept the directory for good: nothing else ever looked at it again.
#[test]
fn delete_removes_the_directory_of_a_create_killed_before_its_state() {
    need_root!();
    let mut runtimes = vec![Runtime::new()];
    if berth_harness::have("runc") {
        runtimes.push(Runtime::with_binary("runc"));
    }
    for rt in &runtimes {
        for force in [true, false] {
            let id = unique("half");
            let dir = rt.root().join(&id);
            std::fs::create_dir_all(&dir).unwrap();
            nix::unistd::mkfifo(&dir.join("exec.fifo"), nix::sys::stat::Mode::S_IRUSR).unwrap();
            let args: &[&str] = if force {
                &["delete", "--force"]
            } else {
                &["delete"]
            };
            let mut args = args.to_vec();
            args.push(&id);
            let ran = rt.run(&args);
            let who = format!("{} {args:?}", rt.binary().display());
            assert_eq!(ran.success(), force, "{who}: {}", ran.stderr);
            if !force {
                assert!(
                    ran.stderr.contains("does not exist"),
                    "{who}: {}",
                    ran.stderr
                );
            }
            assert!(!dir.exists(), "{who} left {}", dir.display());
        }
    }
}
