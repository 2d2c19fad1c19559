//! The seed's lab, automated: `--pid=host` shares the host's PID namespace and only that, the
//! hostname is the short id, and a detached shell loop is an ordinary host process tree under
//! berth's monitor whose environment root can read.

use berth_harness::image::{Berth, IMAGE};

use crate::{
    children, cmdline, eventually, need_root, ns_of, ppid, probe_ns, stat_fields, state_pid,
};

#[test]
fn pid_host_sees_the_hosts_pid_1_and_shares_only_the_pid_namespace() {
    need_root!();
    let berth = Berth::new();
    let out = berth.ok(&["run", "--name", "lab", "--pid=host", IMAGE, "/probe"]);
    let report: serde_json::Value = serde_json::from_str(&out).expect("probe JSON");
    let id = berth.inspect("lab")["Id"]
        .as_str()
        .expect("inspect Id")
        .to_string();

    assert_eq!(
        report["pid1_cmdline"].as_str(),
        Some(cmdline(1).as_str()),
        "PID 1 inside is the host's PID 1"
    );
    assert_ne!(
        report["pid"], 1,
        "the probe is not PID 1 in the host's namespace"
    );
    assert_eq!(probe_ns(&report, "pid"), ns_of("self", "pid"));
    assert_eq!(
        probe_ns(&report, "pid_for_children"),
        ns_of("self", "pid_for_children")
    );
    for kind in ["uts", "ipc", "mnt", "net", "cgroup"] {
        assert_ne!(
            probe_ns(&report, kind),
            ns_of("self", kind),
            "{kind} is private to the container"
        );
    }
    for kind in ["user", "time"] {
        assert_eq!(
            probe_ns(&report, kind),
            ns_of("self", kind),
            "{kind} is the host's, as with Docker"
        );
    }
    assert_eq!(report["hostname"].as_str(), Some(&id[..12]));
    assert!(crate::has_env(&report, &format!("HOSTNAME={}", &id[..12])));
}

#[test]
fn a_detached_shell_loop_is_a_host_process_tree_under_the_monitor() {
    need_root!();
    let berth = Berth::new();
    let script = "export F00=BAR; while true; do echo $$; sleep 100; done";
    let id = berth.ok(&[
        "run",
        "-d",
        "--pid=host",
        "--name",
        "loop",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let sh = state_pid(&berth.inspect("loop"));
    let sleep = eventually("the loop's sleep", || {
        children(sh)
            .into_iter()
            .find(|&p| cmdline(p) == "sleep 100")
    });

    assert_eq!(ppid(sleep), Some(sh), "sleep's parent is the shell");
    let monitor = ppid(sh).expect("the shell's parent");
    let monitor_cmd = cmdline(monitor);
    assert!(
        monitor_cmd.contains("__monitor") && monitor_cmd.contains(&id),
        "the shell's parent is the container's monitor, not {monitor_cmd:?}"
    );
    assert!(stat_fields(monitor).is_some());

    let environ = std::fs::read(format!("/proc/{sleep}/environ")).expect("environ of sleep");
    let environ: Vec<String> = environ
        .split(|&b| b == 0)
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect();
    for want in [
        "F00=BAR".to_string(),
        format!("HOSTNAME={}", &id[..12]),
        "HOME=/root".to_string(),
    ] {
        assert!(environ.contains(&want), "{want} not in {environ:?}");
    }

    // `echo $$` prints the shell's pid as the host sees it: the namespace is shared.
    let logs = eventually("the loop's first line", || {
        let out = berth.ok(&["logs", "loop"]);
        (!out.is_empty()).then_some(out)
    });
    assert_eq!(logs.lines().next(), Some(sh.to_string().as_str()));
}

#[test]
fn without_pid_host_pid_1_is_the_containers_command() {
    need_root!();
    let berth = Berth::new();
    let report = berth.probe(&[]);
    assert_eq!(report["pid"], 1);
    assert_eq!(report["pid1_cmdline"], "/probe");
    assert_ne!(probe_ns(&report, "pid"), ns_of("self", "pid"));
}

/// The monitor's glibc setting (GLIBC_TUNABLES, its own heap's) stays its own: a network's DNS
/// server, which the first container's monitor starts, runs with glibc's defaults, as it does
/// when `network connect` starts it.
#[test]
fn what_the_monitor_spawns_does_not_inherit_its_glibc_tunables() {
    need_root!();
    let berth = Berth::new();
    let net = berth.ok(&["network", "create", "tunables"]);
    let args = ["run", "-d", "--network", "tunables", IMAGE, "sleep", "1000"];
    berth.ok(&args);
    let server = eventually("the network's DNS server", || {
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .find(|&p| {
                let line = cmdline(p);
                line.contains("__dns") && line.contains(&net)
            })
    });
    let environ = std::fs::read(format!("/proc/{server}/environ")).expect("the server's environ");
    let environ = String::from_utf8_lossy(&environ).replace('\0', " ");
    assert!(!environ.contains("GLIBC_TUNABLES"), "{environ}");
}

/// The monitor as `run` spawns it (posix_spawn with POSIX_SPAWN_SETSID): the leader of a
/// session of its own from its first instruction, without the caller's terminal, with the
/// environment berth gives it only, no signal blocked and none ignored but its own SIGPIPE.
#[test]
fn the_monitor_leads_a_session_of_its_own_with_berths_environment_only() {
    need_root!();
    let berth = Berth::new();
    let id = berth.ok(&["run", "-d", "--name", "mon", IMAGE, "sleep", "100"]);
    let monitor = eventually("the container's monitor", || {
        berth_harness::monitors_of(&id).first().copied()
    });
    let stat = stat_fields(monitor).expect("the monitor's stat");
    // After the command: state, ppid, pgrp, session, tty_nr.
    assert_eq!(stat[3], monitor.to_string(), "its own session: {stat:?}");
    assert_eq!(
        stat[2],
        monitor.to_string(),
        "its own process group: {stat:?}"
    );
    assert_eq!(stat[4], "0", "no controlling terminal: {stat:?}");
    let environ = std::fs::read(format!("/proc/{monitor}/environ")).expect("the environ");
    let keys: Vec<String> = environ
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            String::from_utf8_lossy(e)
                .split('=')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let allowed = [
        "PATH",
        "BERTH_EXE",
        "GLIBC_TUNABLES",
        "XDG_RUNTIME_DIR",
        "BERTH_OVERLAY",
        "BERTH_CONFIG_FILES",
    ];
    assert!(
        keys.iter().all(|k| allowed.contains(&k.as_str())) && keys.contains(&"BERTH_EXE".into()),
        "the monitor's environment: {keys:?}"
    );
    let status = std::fs::read_to_string(format!("/proc/{monitor}/status")).expect("status");
    assert!(
        status.lines().any(|l| l == "SigBlk:\t0000000000000000"),
        "no signal blocked: {status}"
    );
    // SIGPIPE alone, which the monitor's own runtime ignores: none left ignored by the spawn
    // (glibc's internal 32 and 33 were, an adversary found).
    assert!(
        status.lines().any(|l| l == "SigIgn:\t0000000000001000"),
        "only SIGPIPE ignored: {status}"
    );
    berth.ok(&["rm", "-f", "mon"]);
}
