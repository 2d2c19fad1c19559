//! What `berth` leaves in /run after its containers are gone (issue 10): the runtime's state
//! directory of a data root.
//!
//! Needs root and `cargo build -p berth` beforehand.

use std::fs;
use std::path::PathBuf;

use berth_harness::image::{runtime_dir, Berth, IMAGE};
use berth_harness::need_root;

/// Pids of the monitors of container `id` (their command line holds `__monitor <id>`).
fn monitors_of(id: &str) -> Vec<i32> {
    let needle = format!("__monitor {id}");
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .contains(&needle)
        })
        .collect()
}

/// SIGKILLs the monitor of container `id`, as an OOM killer or a careless `kill -9` would.
fn kill_monitor(id: &str) {
    let monitors = monitors_of(id);
    assert_eq!(monitors.len(), 1, "one monitor of {id}: {monitors:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitors[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the monitor");
}

/// The runtime's state directory of the root, which must be gone with the root's last
/// container: before, each data root left one in /run/berth/runtime for good (made by every
/// command, `images` and `import` too), and a create killed before it wrote its state.json left
/// that container's directory in it.
#[test]
fn runs_of_every_kind_leave_no_runtime_state() {
    need_root!();
    let berth = Berth::new();
    let state = runtime_dir(berth.root());
    let gone = |after: &str| {
        let left: Vec<PathBuf> = fs::read_dir(&state)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            !state.exists(),
            "after {after}: {} holds {left:?}",
            state.display()
        );
    };
    berth.ok(&["images"]);
    gone("images");
    for i in 0..3 {
        berth.ok(&["run", "--rm", IMAGE, "true"]);
        gone(&format!("run --rm #{i}"));
        let id = berth.ok(&["run", "-d", IMAGE, "sleep", "600"]);
        berth.ok(&["rm", "-f", &id]);
        gone(&format!("run -d, rm -f #{i}"));
    }
    let failed = berth.run(&["run", "--name", "failed", IMAGE, "/nonexistent"]);
    assert_eq!(failed.code(), Some(127), "{}", failed.stderr);
    gone("a create that failed");
    berth.ok(&["rm", "failed"]);

    let id = berth.ok(&["run", "-d", IMAGE, "sleep", "600"]);
    kill_monitor(&id);
    berth.ok(&["rm", "-f", &id]);
    gone("rm -f after a killed monitor");

    // The monitor killed between the runtime's making the container's directory and its
    // writing state.json: the directory holds the exec fifo only.
    let id = berth.ok(&["run", "-d", IMAGE, "sleep", "600"]);
    kill_monitor(&id);
    fs::remove_file(state.join(&id).join("state.json")).expect("state.json");
    berth.ok(&["rm", "-f", &id]);
    gone("rm -f after a create killed before its state");
}
