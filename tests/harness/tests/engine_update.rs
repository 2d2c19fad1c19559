//! Black-box tests of `berth update`: new limits reach a running container's cgroups and
//! `inspect`, a stopped one takes them at its next start, and Docker's refusals.
//!
//! Needs root and `cargo build -p berth` beforehand. Each test has its own data root
//! ([`Berth`]): dropping it removes every container, even when the test fails, and fails the
//! test if a mount or cgroup is left behind.

use berth_harness::image::{Berth, IMAGE};
use berth_harness::need_root;

/// A shell line printing the container's memory limit, pids limit and CFS quota, whichever
/// cgroup version the host mounts (v1 controllers, or the v2 unified files).
const LIMITS: &str = "m=/sys/fs/cgroup/memory/memory.limit_in_bytes; \
    [ -e $m ] || m=/sys/fs/cgroup/memory.max; \
    p=/sys/fs/cgroup/pids/pids.max; [ -e $p ] || p=/sys/fs/cgroup/pids.max; \
    q=/sys/fs/cgroup/cpu/cpu.cfs_quota_us; [ -e $q ] || q=/sys/fs/cgroup/cpu.max; \
    echo $(cat $m) $(cat $p) $(cut -d' ' -f1 $q)";

fn limits_inside(berth: &Berth, name: &str) -> String {
    berth.ok(&["exec", name, "sh", "-c", LIMITS])
}

fn host_config(berth: &Berth, name: &str, field: &str) -> String {
    berth.ok(&[
        "inspect",
        "--format",
        &format!("{{{{.HostConfig.{field}}}}}"),
        name,
    ])
}

#[test]
fn running_container_takes_new_limits_now() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "live", IMAGE, "sleep", "1000"]);
    berth.ok(&["run", "-d", "--name", "other", IMAGE, "sleep", "1000"]);
    let before = limits_inside(&berth, "live");
    assert!(
        !before.starts_with("67108864 "),
        "already limited: {before}"
    );
    let out = berth.ok(&[
        "update",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "live",
    ]);
    assert_eq!(out, "live", "each updated name is printed");
    assert_eq!(limits_inside(&berth, "live"), "67108864 50 50000");
    assert_eq!(host_config(&berth, "live", "Memory"), "67108864");
    assert_eq!(host_config(&berth, "live", "PidsLimit"), "50");
    assert_eq!(host_config(&berth, "live", "NanoCpus"), "500000000");
    // Docker's default swap limit is twice the memory limit: above it needs a new one.
    let above = berth.run(&["update", "-m", "200m", "live"]);
    assert!(!above.success(), "memory above the swap limit: {above:?}");
    assert!(above.stderr.contains("--memory-swap"), "{}", above.stderr);
    assert_eq!(above.stderr.trim().lines().count(), 1, "{}", above.stderr);
    assert_eq!(host_config(&berth, "live", "Memory"), "67108864");
    berth.ok(&["update", "-m", "200m", "--memory-swap", "-1", "live"]);
    assert!(limits_inside(&berth, "live").starts_with("209715200 "));
    // Several at once, unlimited pids; a paused container is updated too.
    berth.ok(&["pause", "other"]);
    let both = berth.ok(&["update", "--pids-limit", "-1", "live", "other"]);
    assert_eq!(both, "live\nother");
    berth.ok(&["unpause", "other"]);
    let pids = limits_inside(&berth, "live");
    assert_eq!(pids.split(' ').nth(1), Some("max"), "{pids}");
}

#[test]
fn stopped_container_takes_new_limits_at_next_start() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "create", "--name", "later", "-m", "64m", IMAGE, "sh", "-c", LIMITS,
    ]);
    let out = berth.ok(&[
        "update",
        "-m",
        "32m",
        "--pids-limit",
        "20",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "--restart",
        "on-failure:2",
        "later",
    ]);
    assert_eq!(out, "later");
    assert_eq!(host_config(&berth, "later", "Memory"), "33554432");
    assert_eq!(host_config(&berth, "later", "PidsLimit"), "20");
    assert_eq!(host_config(&berth, "later", "CpuQuota"), "25000");
    assert_eq!(
        host_config(&berth, "later", "RestartPolicy.Name"),
        "on-failure"
    );
    assert_eq!(
        host_config(&berth, "later", "RestartPolicy.MaximumRetryCount"),
        "2"
    );
    assert_eq!(
        berth.ok(&["start", "-a", "later"]),
        "33554432 20 25000",
        "the next start runs with the new limits"
    );
    // --cpus sets the CFS period and quota itself: with them already set it is refused.
    let cpus = berth.run(&["update", "--cpus", "1", "later"]);
    assert!(!cpus.success(), "{cpus:?}");
    assert_eq!(cpus.stderr.trim().lines().count(), 1, "{}", cpus.stderr);
}

#[test]
fn restart_policy_of_an_auto_removed_container_is_refused() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run", "-d", "--rm", "--name", "gone", IMAGE, "sleep", "1000",
    ]);
    let ran = berth.run(&["update", "--restart", "always", "gone"]);
    assert!(!ran.success(), "{ran:?}");
    assert!(ran.stdout.is_empty(), "nothing updated: {ran:?}");
    assert!(
        ran.stderr.contains("AutoRemove is enabled"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    assert_eq!(host_config(&berth, "gone", "RestartPolicy.Name"), "no");
    assert_eq!(berth.ok(&["update", "--restart", "no", "gone"]), "gone");
}

#[test]
fn bad_values_are_one_line_and_exit_as_dockers() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["create", "--name", "box", IMAGE, "true"]);
    // The docker CLI's: a number that does not parse is a flag error (125); a restart policy
    // it does not know, or no flag at all, the command's failure (1).
    for (args, code) in [
        (&["update", "-m", "lots", "box"][..], 125),
        (&["update", "--pids-limit", "ten", "box"], 125),
        (&["update", "--cpus", "half", "box"], 125),
        (&["update", "--restart", "sometimes", "box"], 1),
        (&["update", "box"], 1),
    ] {
        let ran = berth.run(args);
        assert_eq!(ran.status.code(), Some(code), "{args:?}: {ran:?}");
        assert!(ran.stdout.is_empty(), "{args:?}: {ran:?}");
        assert_eq!(ran.stderr.trim().lines().count(), 1, "{args:?}: {ran:?}");
    }
    // A block I/O weight out of range: refused where the host takes weights; elsewhere Docker
    // discards it first, with its warning (cli_vs_docker's
    // update_discards_a_weight_the_host_cannot_take_as_docker).
    let weight = berth.run(&["update", "--blkio-weight", "5", "box"]);
    if weight.success() {
        assert!(weight.stdout.contains("Weight discarded"), "{weight:?}");
    } else {
        assert!(weight.stderr.contains("from 10 to 1000"), "{weight:?}");
        assert_eq!(weight.stderr.trim().lines().count(), 1, "{weight:?}");
    }
    // Checked as run checks them, per container: nothing changes.
    for args in [
        &["update", "-m", "1m", "box"][..],
        &["update", "--memory-swap", "64m", "box"],
        &["update", "-m", "64m", "nosuch"],
    ] {
        let ran = berth.run(args);
        assert!(!ran.success(), "{args:?}: {ran:?}");
        assert_eq!(ran.stderr.trim().lines().count(), 1, "{args:?}: {ran:?}");
    }
    assert_eq!(host_config(&berth, "box", "Memory"), "0");
}

/// An `update` that lands while the container starts (after the monitor read its record to
/// build the spec, before the record says running) is not lost: wherever it lands, the
/// container's cgroup and `inspect` agree, as with Docker, whose update waits for the start
/// or is applied to the running container.
#[test]
fn an_update_while_the_container_starts_is_not_lost() {
    need_root!();
    let berth = Berth::new();
    for round in 0..12u64 {
        let name = format!("race{round}");
        berth.ok(&[
            "create",
            "--name",
            &name,
            "--pids-limit",
            "100",
            IMAGE,
            "sleep",
            "1000",
        ]);
        let mut start = berth.command();
        start
            .args(["start", &name])
            .stdout(std::process::Stdio::null());
        let mut start = start.spawn().expect("spawn start");
        std::thread::sleep(std::time::Duration::from_millis(2 * (round % 6)));
        let want = (200 + round).to_string();
        berth.ok(&["update", "--pids-limit", &want, &name]);
        assert!(start.wait().expect("wait start").success(), "start {name}");
        assert_eq!(host_config(&berth, &name, "PidsLimit"), want);
        let inside = limits_inside(&berth, &name);
        assert_eq!(
            inside.split(' ').nth(1),
            Some(want.as_str()),
            "round {round}: inspect says {want}, the cgroup {inside}"
        );
        berth.ok(&["rm", "-f", &name]);
    }
}
