//! Issue 10's robustness: a container's state is never taken from a process the container can
//! touch, and removal cleans up whatever the system holds for an id.

use berth_harness::image::{Berth, IMAGE};

use crate::{eventually, need_root, stat_fields, state_pid};

/// A container granted CAP_SYS_PTRACE ptrace-stops its own init: still Up. Another, sharing
/// the host's pid namespace, has a process trace its init and never collect the exit: the
/// monitor still sees the exit (before, it blocked in waitpid for good: `ps` said Up, `wait`
/// and `rm -f` hung).
#[test]
fn a_ptraced_init_is_neither_taken_for_an_exit_nor_able_to_hide_one() {
    need_root!();
    let berth = Berth::new();
    let stop = "/probe ptrace $$ stop & wait";
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "stopped",
        "--cap-add",
        "SYS_PTRACE",
        IMAGE,
        "sh",
        "-c",
        stop,
    ]);
    let pid = state_pid(&berth.inspect("stopped"));
    eventually("the init to be ptrace-stopped", || {
        let state = stat_fields(pid)?.first()?.clone();
        (state == "t").then_some(())
    });
    let ps = berth.ok(&["ps", "--filter", "name=stopped", "--format", "{{.Status}}"]);
    assert!(ps.starts_with("Up"), "{ps}");
    assert_eq!(berth.inspect("stopped")["State"]["Status"], "running");

    // The shell exits 3 once its tracer is attached; the tracer holds on to the exit.
    let hide = "/probe ptrace $$ run & \
        until grep -q 'TracerPid:[[:space:]]*[1-9]' /proc/$$/status; do sleep 0.1; done; exit 3";
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "hidden",
        "--pid",
        "host",
        "--cap-add",
        "SYS_PTRACE",
        IMAGE,
        "sh",
        "-c",
        hide,
    ]);
    assert_eq!(berth.ok(&["wait", "hidden"]), "3");
    assert_eq!(berth.inspect("hidden")["State"]["Status"], "exited");
    berth.ok(&["rm", "-f", "stopped", "hidden"]);
}
