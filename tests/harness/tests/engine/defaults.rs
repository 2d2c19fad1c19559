//! Docker's defaults seen from inside (environment, /etc files, capabilities, seccomp, masked
//! /proc, /dev/shm) and Docker's exit codes (125 berth's own, 126, 127, the command's, 128+n).

use berth_harness::image::{Berth, IMAGE};

use crate::{cap_mask, env_var, has_env, mount_at, need_root};

/// Docker's default capabilities: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
/// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
const DOCKER_CAPS: u64 = 0x0000_0000_a804_25fb;

#[test]
fn environment_and_etc_files() {
    need_root!();
    let berth = Berth::new();
    let report = berth.probe(&[]);
    assert_eq!(
        env_var(&report, "PATH").as_deref(),
        Some("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    );
    assert!(has_env(&report, "HOME=/root"));
    let hostname = report["hostname"].as_str().expect("hostname");
    assert_eq!(hostname.len(), 12);
    assert_eq!(env_var(&report, "HOSTNAME").as_deref(), Some(hostname));
    assert_eq!(env_var(&report, "TERM"), None, "TERM only with -t");
    for file in ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"] {
        assert!(mount_at(&report, file).is_some(), "{file} is provided");
    }
    let out = berth.ok(&["run", "--rm", IMAGE, "cat", "/etc/hostname", "/etc/hosts"]);
    assert!(out.lines().next().is_some_and(|l| l.len() == 12), "{out}");
    assert!(out.lines().any(|l| l.contains("localhost")), "{out}");

    let out = berth.ok(&["run", "--rm", "-t", IMAGE, "sh", "-c", "echo $TERM"]);
    assert_eq!(out.trim(), "xterm", "TERM=xterm with -t");
}

#[test]
fn capabilities_seccomp_and_masked_proc() {
    need_root!();
    let berth = Berth::new();
    let report = berth.probe(&[]);
    let eff = cap_mask(&report, "CapEff");
    assert_eq!(eff, DOCKER_CAPS, "Docker's 14 capabilities, got {eff:#x}");
    assert_eq!(eff.count_ones(), 14);
    assert_eq!(cap_mask(&report, "CapBnd"), DOCKER_CAPS);
    assert_eq!(report["seccomp"], 2, "a seccomp filter");

    // Docker masks those of its list the kernel has (this one may lack /proc/kcore).
    let masked = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
    ];
    let present: Vec<&str> = masked
        .into_iter()
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    assert!(!present.is_empty(), "none of {masked:?} on this host");
    for path in &present {
        let m = mount_at(&report, path).unwrap_or_else(|| panic!("{path} not masked"));
        assert_ne!(m["fstype"], "proc", "{path}: {m}");
        let size = berth.ok(&["run", "--rm", IMAGE, "sh", "-c", &format!("wc -c < {path}")]);
        assert_eq!(size.trim(), "0", "{path} reads as /dev/null");
    }
    let out = berth.run(&[
        "run",
        "--rm",
        IMAGE,
        "/probe",
        "write",
        "/proc/sys/kernel/hostname",
        "x",
    ]);
    assert!(
        out.stdout.contains("EROFS"),
        "/proc/sys is read-only: {}",
        out.stdout
    );
}

#[test]
fn dev_shm_is_64_mib() {
    need_root!();
    let berth = Berth::new();
    let out = berth.ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "df -k /dev/shm | tail -n 1",
    ]);
    let df: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(df.get(1), Some(&"65536"), "df: {out}");
}

#[test]
fn berths_own_errors_exit_125() {
    need_root!();
    let berth = Berth::new();
    let cases: &[&[&str]] = &[
        &["run", "--no-such-flag", IMAGE, "true"],
        &["run", "--rm", "--pull", "never", "no-such-image:1", "true"],
        &["run", "--rm", "--name", "bad name!", IMAGE, "true"],
        &["run", "--rm", "--memory", "lots", IMAGE, "true"],
    ];
    for args in cases {
        let ran = berth.run(args);
        assert_eq!(ran.code(), Some(125), "{args:?}: {}", ran.stderr);
        if args[1] == "--no-such-flag" {
            continue; // clap's usage message, as Docker prints its own
        }
        let lines = ran.stderr.trim().lines().count();
        assert_eq!(lines, 1, "{args:?}: one line of error: {}", ran.stderr);
    }
}

#[test]
fn command_exit_codes() {
    need_root!();
    let berth = Berth::new();
    let code = |args: &[&str]| berth.run(args).code();
    assert_eq!(code(&["run", "--rm", IMAGE, "/etc/passwd"]), Some(126));
    assert_eq!(code(&["run", "--rm", IMAGE, "no-such-command"]), Some(127));
    assert_eq!(code(&["run", "--rm", IMAGE, "sh", "-c", "exit 3"]), Some(3));
    let term = ["run", "--rm", "--init", IMAGE, "sh", "-c", "kill -TERM $$"];
    assert_eq!(code(&term), Some(143), "a command killed by SIGTERM");
    assert_eq!(code(&["run", "--rm", IMAGE, "true"]), Some(0));
}

#[test]
fn kill_s_kill_gives_137() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "killed", IMAGE, "sleep", "1000"]);
    berth.ok(&["kill", "-s", "KILL", "killed"]);
    assert_eq!(berth.ok(&["wait", "killed"]), "137");
    let state = &berth.inspect("killed")["State"];
    assert_eq!(state["ExitCode"], 137);
    assert_eq!(state["Status"], "exited");
}
