//! The container's life after `run`: logs, exec, stop with and without `--init`, restart
//! policies, a monitor killed with SIGKILL, twenty containers at once, and failing creates that
//! leave nothing behind.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;

use berth_harness::image::{cgroup_dirs, mounts_under, Berth, IMAGE};
use serde_json::Value;

use crate::{
    eventually, has_env, host_dir, monitors_of, need_root, path_str, ppid, run_restarting, running,
    scaled, state_pid, PATIENCE,
};

#[test]
fn logs_tail_timestamps_since_and_follow() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        IMAGE,
        "sh",
        "-c",
        "echo one; echo two >&2; echo three",
    ]);
    assert_eq!(berth.ok(&["wait", "talk"]), "0");
    let all = berth.run(&["logs", "talk"]);
    assert_eq!(all.stdout, "one\nthree\n");
    assert_eq!(all.stderr, "two\n", "stderr stays stderr");
    // stdout and stderr are read apart, so "two" may be logged before or after "three".
    let tail = berth.run(&["logs", "--tail", "2", "talk"]);
    assert_eq!(tail.stdout, "three\n", "--tail 2: {tail:?}");
    assert_eq!((tail.stdout + &tail.stderr).lines().count(), 2);
    let stamped = berth.ok(&["logs", "-t", "talk"]);
    for line in stamped.lines() {
        let (stamp, _) = line
            .split_once(' ')
            .expect("a timestamp, a space, the line");
        assert!(humantime_like(stamp), "not an RFC 3339 time: {line}");
    }
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let since_later = berth.run(&["logs", "--since", &later.to_string(), "talk"]);
    assert_eq!(
        since_later.stdout + &since_later.stderr,
        "",
        "nothing after an hour from now"
    );
    assert_eq!(
        berth.run(&["logs", "--since", "1h", "talk"]).stdout,
        "one\nthree\n"
    );
}

fn humantime_like(stamp: &str) -> bool {
    stamp.len() >= 20 && stamp.as_bytes()[4] == b'-' && stamp.contains('T') && stamp.ends_with('Z')
}

#[test]
fn logs_follow_ends_when_the_container_exits() {
    need_root!();
    let berth = Berth::new();
    let host = host_dir();
    let gate = format!("{}:/gate", path_str(host.path()));
    let script = "echo first; while [ ! -e /gate/go ]; do sleep 0.1; done; echo last";
    berth.ok(&[
        "run", "-d", "--name", "follow", "-v", &gate, IMAGE, "sh", "-c", script,
    ]);
    let mut child = berth
        .command()
        .args(["logs", "-f", "follow"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("logs -f");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    assert_eq!(rx.recv_timeout(scaled(PATIENCE)).as_deref(), Ok("first"));
    std::fs::write(host.path().join("go"), "").unwrap();
    assert_eq!(rx.recv_timeout(scaled(PATIENCE)).as_deref(), Ok("last"));
    let status = eventually("logs -f to end", || child.try_wait().unwrap());
    assert!(status.success());
}

#[test]
fn exec_env_workdir_user_exit_code_and_detach() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "-e",
        "FROM_RUN=1",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let out = berth.ok(&[
        "exec", "-e", "A=b", "-w", "/tmp", "-u", "1000:50", "box", "/probe",
    ]);
    let report: Value = serde_json::from_str(&out).expect("probe JSON");
    assert!(has_env(&report, "A=b"));
    assert!(
        has_env(&report, "FROM_RUN=1"),
        "exec inherits the container's env"
    );
    assert_eq!(report["cwd"], "/tmp");
    assert_eq!(
        (report["uid"].clone(), report["gid"].clone()),
        (1000.into(), 50.into())
    );
    let out = berth.ok(&["exec", "-u", "user", "box", "/probe"]);
    let report: Value = serde_json::from_str(&out).expect("probe JSON");
    assert_eq!(report["uid"], 1000);

    assert_eq!(
        berth.run(&["exec", "box", "sh", "-c", "exit 7"]).code(),
        Some(7)
    );
    assert_eq!(
        berth.run(&["exec", "box", "no-such-command"]).code(),
        Some(127)
    );

    berth.ok(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "sleep 0.2; echo done > /tmp/mark",
    ]);
    eventually("exec -d's work", || {
        let ran = berth.run(&["exec", "box", "cat", "/tmp/mark"]);
        (ran.stdout.trim() == "done").then_some(())
    });
}

/// `exec` runs through the container's monitor: ten megabytes of output come through whole
/// (the monitor reads no faster than the client takes them), stdin reaches the process and
/// its end is the process's, and an exec ends with its container, its code that of its kill.
#[test]
fn exec_streams_through_the_monitor_and_ends_with_the_container() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "box", IMAGE, "sleep", "1000"]);
    let big = berth.run(&[
        "exec",
        "box",
        "sh",
        "-c",
        "head -c 10000000 /dev/zero | tr '\\0' x",
    ]);
    assert_eq!(big.code(), Some(0), "{}", big.stderr);
    assert_eq!(big.stdout.len(), 10_000_000);
    assert!(big.stdout.bytes().all(|b| b == b'x'));
    let fed = berth.run_input(&["exec", "-i", "box", "sh", "-c", "cat; echo end"], b"in\n");
    assert_eq!(fed.stdout, "in\nend\n", "{fed:?}");

    let mut long = berth.command();
    long.args(["exec", "box", "sleep", "999"]);
    let exec = std::thread::spawn(move || {
        berth_harness::run_with_timeout(long, berth_harness::COMMAND_TIMEOUT)
    });
    eventually("the exec'd sleep to run", || {
        berth
            .ok(&["top", "box"])
            .contains("sleep 999")
            .then_some(())
    });
    berth.ok(&["stop", "-t", "0", "box"]);
    let ran = exec.join().expect("the exec's thread");
    assert_eq!(ran.code(), Some(137), "{ran:?}");
}

#[test]
fn stop_kills_a_shell_that_ignores_sigterm_as_pid_1() {
    need_root!();
    let berth = Berth::new();
    let script = "while :; do sleep 1; done";
    berth.ok(&["run", "-d", "--name", "stubborn", IMAGE, "sh", "-c", script]);
    berth.ok(&["stop", "-t", "1", "stubborn"]);
    let state = &berth.inspect("stubborn")["State"];
    assert_eq!(state["ExitCode"], 137, "SIGKILL after the timeout: {state}");
    assert_eq!(state["Status"], "exited");

    berth.ok(&[
        "run", "-d", "--init", "--name", "polite", IMAGE, "sh", "-c", script,
    ]);
    berth.ok(&["stop", "-t", "60", "polite"]);
    let state = &berth.inspect("polite")["State"];
    assert_eq!(
        state["ExitCode"], 143,
        "with --init SIGTERM reaches the shell: {state}"
    );
}

/// `rm -f` and `kill` of a paused container end it, as Docker's do: the kill thaws it (the
/// monitor no longer thaws it first on the `rm -f` path).
#[test]
fn rm_f_and_kill_end_a_paused_container() {
    need_root!();
    let berth = Berth::new();
    let id = berth.ok(&["run", "-d", "--name", "frozen", IMAGE, "sleep", "1000"]);
    let pid = state_pid(&berth.inspect("frozen"));
    berth.ok(&["pause", "frozen"]);
    assert_eq!(berth.inspect("frozen")["State"]["Status"], "paused");
    berth.ok(&["rm", "-f", "frozen"]);
    assert!(!berth.run(&["inspect", "frozen"]).success(), "removed");
    assert!(!running(pid), "the paused sleep was killed");
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));

    berth.ok(&["run", "-d", "--name", "frozen2", IMAGE, "sleep", "1000"]);
    let pid = state_pid(&berth.inspect("frozen2"));
    berth.ok(&["pause", "frozen2"]);
    berth.ok(&["kill", "frozen2"]);
    let state = eventually("the killed paused container to exit", || {
        let state = berth.inspect("frozen2")["State"].clone();
        (state["Status"] == "exited").then_some(state)
    });
    assert_eq!(state["ExitCode"], 137, "{state}");
    assert!(!running(pid));
}

/// `kill` as moby's killWithSignal: SIGKILL, the container's stop signal, or any signal where
/// it has none, ends it as `stop` does (its restart policy does not bring it back; a paused
/// one is thawed so the signal reaches it, "unpause" among the events); another signal is only
/// sent, and the policy restarts it when it exits; between two runs of the policy the kill
/// ends the wait for the next. Before, a killed `--restart always` container came back, a
/// paused one stayed paused with the signal queued, and one between runs could not be killed.
/// A systemd image stops on SIGRTMIN+3 (its STOPSIGNAL): Docker's signal table names the
/// real-time signals (RTMIN, RTMIN+n, RTMAX-n, RTMAX), and `stop` sends the container's stop
/// signal, not SIGTERM. berth refused the names ("invalid signal") and stopped such a
/// container with SIGTERM, then SIGKILL after the wait.
#[test]
fn real_time_signals_are_named_as_docker_names_them() {
    need_root!();
    let berth = Berth::new();
    // SIGRTMIN+3 is 37, SIGRTMAX-1 63 (moby's signal_linux.go: RTMIN is 34, RTMAX 64).
    let trap = "trap 'exit 7' 37; trap 'exit 8' 63; while :; do sleep 0.1; done";
    let exit_code = |name: &str| {
        eventually("the container to exit", || {
            let state = berth.inspect(name)["State"].clone();
            (state["Status"] == "exited").then(|| state["ExitCode"].clone())
        })
    };
    // With the stop signal the trap ends it at once; with SIGTERM it would be killed after
    // the wait (137).
    let stopped_by_rtmin3 = |name: &str, flags: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name, "--stop-signal", "SIGRTMIN+3"];
        args.extend(flags);
        args.extend([IMAGE, "sh", "-c", trap]);
        berth.ok(&args);
        berth.ok(&["stop", "-t", "30", name]);
        assert_eq!(exit_code(name), 7, "{flags:?}");
    };
    stopped_by_rtmin3("rt-stop", &[]);
    berth.ok(&["run", "-d", "--name", "rt-kill", IMAGE, "sh", "-c", trap]);
    // Outside moby's table: refused, by stop too (it fell back to the stop signal), and the
    // container goes on.
    for cmd in ["kill", "stop"] {
        let refused = berth.run(&[cmd, "-s", "RTMIN+16", "rt-kill"]);
        assert_eq!(refused.code(), Some(1), "{cmd}: {refused:?}");
        assert!(refused.stderr.contains("RTMIN+16"), "{cmd}: {refused:?}");
    }
    assert_eq!(berth.inspect("rt-kill")["State"]["Status"], "running");
    berth.ok(&["kill", "-s", "rtmax-1", "rt-kill"]);
    assert_eq!(exit_code("rt-kill"), 8);
    // With --init the stop signal goes through the reaper, which forwards it as tini does
    // (nix's sigwait panicked on it: the container died with 139).
    stopped_by_rtmin3("rt-init", &["--init"]);
    berth.ok(&["rm", "rt-stop", "rt-kill", "rt-init"]);
}

/// A process a real-time signal ends exits 128 + n as with any signal (Docker: 165 for
/// SIGRTMIN+3): the container's program, under --init's reaper or without, and an exec'd
/// one. nix's wait status cannot hold such a signal: berth said 255, or 1 under --init.
#[test]
fn a_real_time_signal_ends_a_process_with_128_plus_its_number() {
    need_root!();
    let berth = Berth::new();
    let suicide = "kill -37 $$";
    for flags in [&["--init"][..], &["--pid", "host"]] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend([IMAGE, "sh", "-c", suicide]);
        let ran = berth.run(&args);
        assert_eq!(ran.code(), Some(165), "{flags:?}: {ran:?}");
    }
    berth.ok(&["run", "-d", "--name", "rt-exec", IMAGE, "sleep", "1000"]);
    let ran = berth.run(&["exec", "rt-exec", "sh", "-c", suicide]);
    assert_eq!(ran.code(), Some(165), "{ran:?}");
    berth.ok(&["rm", "-f", "rt-exec"]);
}

#[test]
fn kill_ends_a_container_as_dockers_does() {
    need_root!();
    let berth = Berth::new();
    let trap = |code: u8| format!("trap 'exit {code}' TERM; while :; do sleep 0.1; done");
    let exited = |name: &str| {
        eventually("the killed container to exit", || {
            let state = berth.inspect(name)["State"].clone();
            (state["Status"] == "exited").then_some(state)
        })
    };
    berth.ok(&["run", "-d", "--name", "thawed", IMAGE, "sh", "-c", &trap(3)]);
    berth.ok(&["pause", "thawed"]);
    berth.ok(&["kill", "-s", "TERM", "thawed"]);
    assert_eq!(exited("thawed")["ExitCode"], 3);
    let events = berth.events(&["container=thawed"], Some("{{.Action}}"));
    assert!(events.lines().any(|a| a == "unpause"), "{events}");

    berth.ok(&[
        "run",
        "-d",
        "--name",
        "kept-down",
        "--restart",
        "always",
        IMAGE,
        "sleep",
        "1000",
    ]);
    berth.ok(&["kill", "kept-down"]);
    let state = exited("kept-down");
    assert_eq!(state["ExitCode"], 137, "{state}");
    // A restart would come within its first backoff (100 ms); give it ten times that.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let c = berth.inspect("kept-down");
    assert_eq!(
        (c["State"]["Status"].as_str(), c["RestartCount"].as_i64()),
        (Some("exited"), Some(0)),
        "{c}"
    );

    // Between two runs of its policy (no process): the kill ends the wait for the next run.
    run_restarting(&berth, "between", "always", "exit 1");
    eventually("the policy to restart it twice", || {
        (berth.inspect("between")["RestartCount"].as_i64() >= Some(2)).then_some(())
    });
    eventually("a kill between two runs", || {
        let c = berth.inspect("between");
        (c["State"]["Status"] == "restarting").then_some(())?;
        berth.run(&["kill", "between"]).success().then_some(())
    });
    exited("between");
    let count = berth.inspect("between")["RestartCount"].clone();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let c = berth.inspect("between");
    assert_eq!(
        (c["State"]["Status"].as_str(), &c["RestartCount"]),
        (Some("exited"), &count),
        "{c}"
    );

    // TERM is not this container's stop signal (USR1): sent, and the policy restarts it.
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "comes-back",
        "--restart",
        "always",
        "--stop-signal",
        "USR1",
        IMAGE,
        "sh",
        "-c",
        &trap(4),
    ]);
    berth.ok(&["kill", "-s", "TERM", "comes-back"]);
    eventually("the policy to restart it", || {
        (berth.inspect("comes-back")["RestartCount"].as_i64() >= Some(1)).then_some(())
    });
    berth.ok(&["rm", "-f", "thawed", "kept-down", "between", "comes-back"]);
}

#[test]
fn start_right_after_stop_finds_the_container_free() {
    need_root!();
    let berth = Berth::new();
    // Two user networks and a published port make the teardown that follows the exit long
    // enough for a start to come while the monitor still owned the container.
    berth.ok(&["network", "create", "again-a"]);
    berth.ok(&["network", "create", "again-b"]);
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--network",
        "again-a",
        "-p",
        "127.0.0.1::80",
        IMAGE,
        "sleep",
        "1000",
    ]);
    berth.ok(&["network", "connect", "again-b", "again"]);
    for round in 0..5 {
        berth.ok(&["stop", "-t", "0", "again"]);
        let started = berth.run(&["start", "again"]);
        assert!(
            started.success(),
            "round {round}: start right after stop: {started:?}"
        );
    }
    berth.ok(&["restart", "-t", "0", "again"]);
    assert_eq!(berth.inspect("again")["State"]["Status"], "running");
    berth.ok(&["rm", "-f", "again"]);
    berth.ok(&["network", "rm", "again-a", "again-b"]);
}

/// `start -a` (and an attached `run`) returns at the exit, which the monitor reports before
/// it deletes the run's links; a `start` right after found that monitor still owning the
/// container and failed ("is busy"), where Docker's starts it again (`docker run --name x
/// ...; docker start x`). Two networks and a published port make that teardown long.
#[test]
fn start_right_after_an_attached_run_finds_the_container_free() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["network", "create", "reattach-a"]);
    berth.ok(&["network", "create", "reattach-b"]);
    berth.ok(&[
        "run",
        "--name",
        "reattach",
        "--network",
        "reattach-a",
        "-p",
        "127.0.0.1::80",
        IMAGE,
        "true",
    ]);
    berth.ok(&["network", "connect", "reattach-b", "reattach"]);
    for round in 0..5 {
        let started = berth.run(&["start", "-a", "reattach"]);
        assert!(
            started.success(),
            "round {round}: start -a right after the last: {started:?}"
        );
    }
    berth.ok(&["rm", "reattach"]);
    berth.ok(&["network", "rm", "reattach-a", "reattach-b"]);
}

/// A `--rm` container's root is mounted `volatile`, as Podman mounts its `--rm` containers'
/// (no sync of the data root when it ends: it is removed anyway); any other container's is
/// synced, as Docker's. A root mounted volatile only to read the image's users (`create -u`)
/// leaves nothing that keeps the container from starting, nor from starting again.
#[test]
fn a_rm_containers_root_is_volatile_and_a_kept_ones_is_not() {
    need_root!();
    let berth = Berth::new();
    let root_options = |args: &[&str]| {
        let out = berth.ok(args);
        out.lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .unwrap_or_else(|| panic!("no root in the container's mountinfo: {out}"))
            .to_string()
    };
    let gone = root_options(&["run", "--rm", IMAGE, "cat", "/proc/self/mountinfo"]);
    assert!(gone.contains("volatile"), "--rm: {gone}");
    let kept = root_options(&[
        "run",
        "--name",
        "kept",
        IMAGE,
        "cat",
        "/proc/self/mountinfo",
    ]);
    assert!(!kept.contains("volatile"), "kept: {kept}");
    berth.ok(&[
        "create",
        "--name",
        "user",
        "-u",
        "root",
        IMAGE,
        "cat",
        "/proc/self/mountinfo",
    ]);
    for round in 0..2 {
        let out = berth.ok(&["start", "-a", "user"]);
        let root = out.lines().find(|l| l.split(' ').nth(4) == Some("/"));
        assert!(
            root.is_some_and(|l| !l.contains("volatile")),
            "start {round} after create -u: {out}"
        );
    }
    berth.ok(&["rm", "kept", "user"]);
}

#[test]
fn on_failure_restarts_twice_then_stays_exited() {
    need_root!();
    let berth = Berth::new();
    let id = run_restarting(&berth, "flaky", "on-failure:2", "echo run; exit 1");
    eventually("the monitor to give up", || {
        monitors_of(&id).is_empty().then_some(())
    });
    let inspect = berth.inspect("flaky");
    assert_eq!(inspect["RestartCount"], 2, "{inspect}");
    assert_eq!(inspect["State"]["Status"], "exited");
    assert_eq!(inspect["State"]["ExitCode"], 1);
    assert_eq!(
        berth.ok(&["logs", "flaky"]).lines().count(),
        3,
        "one run and two restarts"
    );
    // Each start stages its record beside record.json and renames it into place: the
    // restarts leave no temp file in the container's directory.
    let dir = berth.root().join("containers").join(&id);
    let temps: Vec<String> = std::fs::read_dir(&dir)
        .expect("the container's directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp") || n.ends_with(".staged"))
        .collect();
    assert_eq!(temps, Vec::<String>::new());
}

#[test]
fn always_restarts_until_stopped() {
    need_root!();
    let berth = Berth::new();
    let id = run_restarting(&berth, "again", "always", "echo run");
    eventually("two restarts", || {
        let count = berth.inspect("again")["RestartCount"].as_u64().unwrap_or(0);
        (count >= 2).then_some(())
    });
    berth.ok(&["stop", "-t", "1", "again"]);
    eventually("the monitor to end after stop", || {
        monitors_of(&id).is_empty().then_some(())
    });
    let state = &berth.inspect("again")["State"];
    assert_eq!(state["Status"], "exited", "stop ends the restarts: {state}");
}

#[test]
fn a_killed_monitor_leaves_the_truth_and_rm_f_cleans_up() {
    need_root!();
    let berth = Berth::new();
    let id = berth.ok(&["run", "-d", "--name", "orphan", IMAGE, "sleep", "1000"]);
    let pid = state_pid(&berth.inspect("orphan"));
    let monitor = ppid(pid).expect("the monitor");
    assert_eq!(monitors_of(&id), vec![monitor]);
    let pidfd = rustix::process::Pid::from_raw(monitor).expect("pid");
    rustix::process::kill_process(pidfd, rustix::process::Signal::KILL).expect("kill -9");
    eventually("the monitor to die", || (!running(monitor)).then_some(()));

    let status = berth.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=orphan",
        "--format",
        "{{.Status}}",
    ]);
    let state = &berth.inspect("orphan")["State"];
    if running(pid) {
        assert!(
            status.starts_with("Up"),
            "the init lives, ps says {status:?}"
        );
        assert_eq!(state["Status"], "running");
    } else {
        assert!(
            status.starts_with("Exited"),
            "the init is gone, ps says {status:?}"
        );
        assert_eq!(state["Status"], "exited");
    }
    berth.ok(&["rm", "-f", "orphan"]);
    eventually("the container's process to go", || {
        (!running(pid)).then_some(())
    });
    assert!(
        mounts_under(berth.root()).is_empty(),
        "{:?}",
        mounts_under(berth.root())
    );
    assert!(cgroup_dirs(&id).is_empty(), "{:?}", cgroup_dirs(&id));
    assert!(berth.ok(&["ps", "-a", "-q"]).is_empty());
}

#[test]
fn twenty_containers_at_once() {
    need_root!();
    let berth = Berth::new();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let berth = &berth;
                s.spawn(move || {
                    let name = format!("many{i}");
                    berth.ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "1000"])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a run -d"))
            .collect()
    });
    let listed = berth.ok(&["ps", "-q", "--no-trunc"]);
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(listed, want, "every container runs and is listed once");
    std::thread::scope(|s| {
        for id in &ids {
            let berth = &berth;
            s.spawn(move || berth.ok(&["rm", "-f", id]));
        }
    });
    assert!(berth.ok(&["ps", "-a", "-q"]).is_empty());
    // rm -f answers once the containers are gone from every listing; their monitors finish
    // the teardown behind (issue 16) and then end.
    for id in &ids {
        eventually(&format!("the monitor of {id} to end"), || {
            monitors_of(id).is_empty().then_some(())
        });
    }
}

/// `run` spawns its monitor before it resolves the image: a `run` killed while it pulls (here
/// from a loopback registry that never answers) leaves that monitor waiting for nobody only
/// until it sees the socket's end: none is left, nor any container, directory or name.
#[test]
fn a_run_killed_while_it_pulls_leaves_no_monitor() {
    need_root!();
    let berth = Berth::new();
    let registry = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
    let image = format!("{}/silent:1", registry.local_addr().expect("its address"));
    let mut run = berth.command();
    run.args(["run", "--rm", &image, "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = run.spawn().expect("spawn berth run");
    // The pull has begun once the registry is called: the monitor was spawned before it.
    let (conn, _) = registry.accept().expect("the pull's connection");
    child.kill().expect("SIGKILL berth run");
    let _ = child.wait();
    eventually("the early monitor to leave", || {
        berth_harness::monitors_of_root(berth.root())
            .is_empty()
            .then_some(())
    });
    drop(conn);
    assert!(berth.ids().is_empty(), "a container was made");
    let names = std::fs::read_dir(berth.root().join("containers/names"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(names, 0, "a name was taken");
}

#[test]
fn a_failing_create_leaves_nothing() {
    need_root!();
    let berth = Berth::new();
    let host = host_dir();
    let cases: &[&[&str]] = &[
        &["--pull", "never", "no-such-image:1"],
        &["-v", "/tmp:relative/target", IMAGE],
        &["-v", "/no/such/host/file:/x:ro,bogus", IMAGE],
        &["-u", "no-such-user", IMAGE],
        &["--ulimit", "nofile=abc", IMAGE],
    ];
    for (i, case) in cases.iter().enumerate() {
        let cidfile = host.path().join(format!("cid{i}"));
        let mut args = vec!["run", "--rm", "--cidfile", path_str(&cidfile)];
        args.extend_from_slice(case);
        args.push("true");
        let ran = berth.run(&args);
        assert_eq!(
            ran.code(),
            Some(125),
            "{case:?}: {}{}",
            ran.stdout,
            ran.stderr
        );
        let id = std::fs::read_to_string(&cidfile).unwrap_or_default();
        if id.is_empty() {
            // The monitor `run` spawns before the record exists is gone when `run` returns.
            let left = berth_harness::monitors_of_root(berth.root());
            assert!(left.is_empty(), "{case:?} left a monitor: {left:?}");
        } else {
            // A monitor that failed the start ends once its teardown is done.
            eventually(&format!("{case:?}'s monitor to end"), || {
                monitors_of(&id).is_empty().then_some(())
            });
            assert!(
                cgroup_dirs(&id).is_empty(),
                "{case:?} left {:?}",
                cgroup_dirs(&id)
            );
        }
        assert!(
            mounts_under(berth.root()).is_empty(),
            "{case:?} left a mount"
        );
        // Container directories are named by their 64-hex id (beside them: locks, the name index).
        let dirs = std::fs::read_dir(berth.root().join("containers"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_dir() && e.file_name().len() == 64)
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(dirs, 0, "{case:?} left a container directory");
        let names = std::fs::read_dir(berth.root().join("containers/names"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(names, 0, "{case:?} left a name taken");
    }
}
