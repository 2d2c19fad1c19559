//! Issue 10's robustness: a container's state is never taken from a process the container can
//! touch, and removal cleans up whatever the system holds for an id.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::Duration;

use berth_harness::image::{Berth, IMAGE};
use serde_json::Value;

use crate::{eventually, need_root, run_restarting, stat_fields, state_pid, PATIENCE};

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

/// `run -d` SIGKILLed early, at delays from 30 to 150 ms (before, during and after the record
/// and the monitor's start), then `rm -f` of every container on disk: each succeeds and nothing
/// is left (before: a directory holding only `lock`, which a starting monitor had made again
/// while `rm -f` removed it, failed the next `rm -f` with "Directory not empty").
#[test]
fn rm_f_after_run_d_was_killed_early_leaves_nothing() {
    need_root!();
    let berth = Berth::new();
    for ms in (30..=150).step_by(5) {
        let mut child = berth
            .command()
            .args(["run", "-d", IMAGE, "sleep", "1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("berth run -d");
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let _ = child.wait();
        // At once: the monitor the killed CLI started may be starting the container still.
        for id in ids_on_disk(&berth) {
            let ran = berth.run(&["rm", "-f", &id]);
            assert!(ran.success(), "rm -f {id} after {ms} ms: {}", ran.stderr);
        }
        // A monitor that `rm -f` had remove its container finishes the teardown behind it.
        crate::eventually("the monitors to finish", || {
            berth_harness::monitors_of_root(berth.root())
                .is_empty()
                .then_some(())
        });
        assert_eq!(entries_left(&berth), Vec::<String>::new(), "after {ms} ms");
    }
    let root = berth.root().to_string_lossy().into_owned();
    let monitors: Vec<i32> = crate::monitors_of("")
        .into_iter()
        .filter(|&pid| crate::cmdline(pid).contains(&root))
        .collect();
    assert_eq!(monitors, Vec::<i32>::new(), "monitors left");
}

/// Container directories under the root, a record in them or not.
fn ids_on_disk(berth: &Berth) -> Vec<String> {
    let dir = berth.root().join("containers");
    let names = fs::read_dir(dir).expect("containers dir").flatten();
    names
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 64)
        .collect()
}

/// What is in the containers directory besides the names index.
fn entries_left(berth: &Berth) -> Vec<String> {
    let dir = berth.root().join("containers");
    let names = fs::read_dir(dir).expect("containers dir").flatten();
    names
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "names" && n != "names.lock")
        .collect()
}

/// A create killed between writing its name's entry and renaming it into place leaves the
/// entry's temporary in the names index (`write_atomic`'s `.tmp*`, a random name nothing reads
/// again): `container prune` removes it, and the names in use stay.
#[test]
fn a_name_entry_half_written_by_a_killed_create_is_swept_by_prune() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["create", "--name", "kept", IMAGE, "true"]);
    let names = berth.root().join("containers/names");
    let id = berth.ok(&["inspect", "--format", "{{.Id}}", "kept"]);
    // As a SIGKILL after the write and before the rename leaves it.
    fs::write(names.join(".tmpK1lLeD"), &id).expect("plant the temporary");
    // Only containers labelled `pruned`: `kept` stays, its name too.
    berth.ok(&["container", "prune", "--force", "--filter", "label=pruned"]);
    let left: Vec<String> = fs::read_dir(&names)
        .expect("names dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["kept"], "the name in use stays");
    berth.ok(&["rm", "kept"]);
}

/// A client of the monitor of container `id`, on its socket (through /proc/self/fd: the path
/// is longer than a socket address takes).
fn monitor_client(berth: &Berth, id: &str) -> UnixStream {
    let dir = fs::File::open(berth.root().join("containers").join(id)).expect("container dir");
    let path = format!("/proc/self/fd/{}/monitor.sock", dir.as_raw_fd());
    let stream = UnixStream::connect(path).expect("connect to the monitor");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    stream
}

/// Writes one frame of the monitor's protocol: kind, three zero bytes, length, payload.
fn send_frame(stream: &mut UnixStream, kind: u8, payload: &[u8]) {
    let mut frame = vec![kind, 0, 0, 0];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    stream.write_all(&frame).expect("write a frame");
}

/// Reads one frame: its kind and payload.
fn read_frame(stream: &mut UnixStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 8];
    stream
        .read_exact(&mut head)
        .expect("a frame from the monitor");
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let mut payload = vec![0; len];
    stream
        .read_exact(&mut payload)
        .expect("the frame's payload");
    (head[0], payload)
}

const HELLO: u8 = 0;
const STOP: u8 = 6;
const ERROR: u8 = 8;

/// A malformed hello is refused with an Error frame (before: silently taken as an empty one).
#[test]
fn the_monitor_refuses_a_malformed_hello() {
    need_root!();
    let berth = Berth::new();
    let id = berth.ok(&["run", "-d", "--name", "up", IMAGE, "sleep", "1000"]);
    let mut client = monitor_client(&berth, &id);
    send_frame(&mut client, HELLO, b"{\"stdout\": tru");
    let (kind, payload) = read_frame(&mut client);
    assert_eq!(kind, ERROR, "{}", String::from_utf8_lossy(&payload));
    let reply: Value = serde_json::from_slice(&payload).expect("an error reply");
    assert!(
        reply["message"]
            .as_str()
            .unwrap_or("")
            .contains("malformed hello"),
        "{reply}"
    );
    // And the monitor is still at work.
    berth.ok(&["stop", "-t", "0", "up"]);
}

/// Clients that never read what they asked for cannot hold up the monitor: with thirty of
/// them attached to a container writing all it can, `stop` is served at once (before: every
/// write to each of them waited 5 s, 150 s in all, past the command timeout).
#[test]
fn clients_that_never_read_do_not_hold_up_the_monitor() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "loud", IMAGE, "yes", "loud"]);
    let id = berth.inspect("loud")["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    let clients: Vec<UnixStream> = (0..30)
        .map(|_| {
            let mut c = monitor_client(&berth, &id);
            send_frame(&mut c, HELLO, br#"{"stdout": true, "stderr": true}"#);
            c
        })
        .collect();
    berth.ok(&["stop", "-t", "0", "loud"]);
    assert_eq!(berth.inspect("loud")["State"]["Status"], "exited");
    drop(clients);
}

/// A client that connects while the container waits to be restarted and says nothing holds
/// up neither the restart nor a stop (before: the monitor read it with no timeout).
#[test]
fn a_silent_client_does_not_hold_up_a_restart() {
    need_root!();
    let berth = Berth::new();
    run_restarting(&berth, "again", "always", "exit 1");
    let restarts = |berth: &Berth| {
        berth.inspect("again")["RestartCount"]
            .as_u64()
            .expect("RestartCount")
    };
    // From the sixth restart on the back-off is 6.4 s and more: time to connect within it.
    let count = eventually("six restarts", || {
        let st = berth.inspect("again");
        let n = st["RestartCount"].as_u64()?;
        (n >= 6 && st["State"]["Status"] == "restarting").then_some(n)
    });
    let id = berth.inspect("again")["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    let silent = monitor_client(&berth, &id);
    eventually("one more restart", || {
        (restarts(&berth) > count).then_some(())
    });
    let mut stopper = monitor_client(&berth, &id);
    send_frame(&mut stopper, STOP, br#"{"timeout": 0}"#);
    drop(silent);
    eventually("the stop", || {
        (berth.inspect("again")["State"]["Status"] == "exited").then_some(())
    });
}

/// The container's processes are in a session of their own: a `kill(0, ...)` inside reaches
/// none of berth's processes (before: they shared the monitor's process group, and killed it).
#[test]
fn kill_0_inside_the_container_does_not_reach_its_monitor() {
    need_root!();
    let berth = Berth::new();
    let script = "kill -HUP 0; kill -KILL 0; echo alive; exec sleep 1000";
    berth.ok(&["run", "-d", "--name", "k0", IMAGE, "sh", "-c", script]);
    eventually("the kills to be done", || {
        berth
            .run(&["logs", "k0"])
            .stdout
            .contains("alive")
            .then_some(())
    });
    berth.ok(&["stop", "-t", "0", "k0"]);
    let state = &berth.inspect("k0")["State"];
    assert_eq!(state["ExitCode"], 137, "{state}");
    assert_eq!(state["Error"], "", "{state}");
}

/// Writes to a log on a full disk fail: monitor.log (on the same disk) gets one line for the
/// first failure and a count at the end, not one line per read of output.
#[test]
fn a_full_disk_under_the_log_is_reported_once_then_counted() {
    need_root!();
    let berth = Berth::new();
    let script = "for i in $(seq 2000); do echo line $i of output that goes nowhere; done";
    let id = berth.ok(&["create", "--name", "full", IMAGE, "sh", "-c", script]);
    let dir = berth.root().join("containers").join(&id);
    let log = dir.join(format!("{id}-json.log"));
    fs::write(&log, b"").expect("the log file");
    let bound = std::process::Command::new("mount")
        .args(["--bind", "/dev/full"])
        .arg(&log)
        .status()
        .expect("mount");
    assert!(bound.success());
    berth.ok(&["start", "full"]);
    let code = berth.ok(&["wait", "full"]);
    let _ = std::process::Command::new("umount").arg(&log).status();
    assert_eq!(code, "0");
    let text = fs::read_to_string(dir.join("monitor.log")).expect("monitor.log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.contains("write log")).count(),
        1,
        "{text}"
    );
    assert!(text.contains("writes to the log failed in all"), "{text}");
}

/// An image whose config oci-spec reads but JSON values cannot hold (a number out of range in
/// a field oci-spec does not model): the engine reads the config as oci-spec does, as Docker
/// reads it (the field is ignored), so `create` makes the image's VOLUMEs instead of taking
/// the config as `null` and silently dropping them.
#[test]
fn an_image_config_with_an_odd_extra_field_keeps_its_volumes() {
    need_root!();
    let berth = Berth::new();
    let dir = tempfile::tempdir().expect("archive dir");
    let d = dir.path();
    fs::write(d.join("file"), b"x").expect("a file");
    let tar = |args: &[&str]| {
        let ok = std::process::Command::new("tar")
            .current_dir(d)
            .args(args)
            .status()
            .expect("tar");
        assert!(ok.success(), "tar {args:?}");
    };
    tar(&[
        "--numeric-owner",
        "--owner=0",
        "--group=0",
        "-cf",
        "layer.tar",
        "file",
    ]);
    let sum = std::process::Command::new("sha256sum")
        .arg(d.join("layer.tar"))
        .output()
        .expect("sha256sum");
    let digest = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"],"Volumes":{{"/data":{{}}}}}},"rootfs":{{"type":"layers","diff_ids":["sha256:{digest}"]}},"x-extra":1e400}}"#
    );
    fs::write(d.join("config.json"), config).expect("config");
    let manifest = r#"[{"Config":"config.json","RepoTags":["odd:latest"],"Layers":["layer.tar"]}]"#;
    fs::write(d.join("manifest.json"), manifest).expect("manifest");
    tar(&[
        "-cf",
        "image.tar",
        "manifest.json",
        "config.json",
        "layer.tar",
    ]);
    let image = d.join("image.tar");
    berth.ok(&["load", "-i", image.to_str().expect("path")]);
    berth.ok(&["create", "--name", "odd", "odd:latest"]);
    let mounts = berth.inspect("odd")["Mounts"].clone();
    let targets: Vec<&str> = mounts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Type"] == "volume")
        .filter_map(|m| m["Destination"].as_str())
        .collect();
    assert_eq!(targets, ["/data"], "{mounts}");
}

/// A monitor that ends before it answers (here it cannot open its monitor.log; `rm -f`
/// removing a starting container's directory does the same) is an error of `start`, at once:
/// before, the CLI kept the monitor's end of their socketpair open and waited for good.
#[test]
fn a_monitor_that_ends_before_it_answers_fails_the_start() {
    need_root!();
    let berth = Berth::new();
    let id = berth.ok(&["create", "--name", "early", IMAGE, "true"]);
    let log = berth
        .root()
        .join("containers")
        .join(&id)
        .join("monitor.log");
    let _ = fs::remove_file(&log);
    fs::create_dir(&log).expect("monitor.log as a directory");
    let ran = berth.run(&["start", "early"]);
    assert_eq!(ran.code(), Some(1), "{ran:?}");
    assert!(
        ran.stderr
            .contains("the monitor stopped before the container started"),
        "{}",
        ran.stderr
    );
    fs::remove_dir(&log).expect("rmdir monitor.log");
    berth.ok(&["rm", "early"]);
}

/// A start that fails does not run the program: here the json log cannot be opened (its disk
/// went read-only), and the program, which would leave a file on the host, never ran. Before,
/// the log was opened after the start, and the program ran until the monitor undid it.
#[test]
fn a_log_that_cannot_be_opened_fails_the_start_before_the_program_runs() {
    need_root!();
    let berth = Berth::new();
    let (host, id) = witness(&berth, "rolog");
    let log = berth
        .root()
        .join("containers")
        .join(&id)
        .join(format!("{id}-json.log"));
    fs::write(&log, b"").expect("the log file");
    let elsewhere = crate::host_dir();
    let read_only = elsewhere.path().join("log");
    fs::write(&read_only, b"").expect("a file to bind");
    let mount = |args: &[&str]| {
        let ok = std::process::Command::new("mount")
            .args(args)
            .arg(&log)
            .status()
            .expect("mount");
        assert!(ok.success(), "mount {args:?}");
    };
    mount(&["--bind", crate::path_str(&read_only)]);
    mount(&["-o", "remount,bind,ro"]);
    let ran = berth.run(&["start", "rolog"]);
    let _ = std::process::Command::new("umount").arg(&log).status();
    assert_eq!(ran.code(), Some(1), "{ran:?}");
    assert!(ran.stderr.contains("open log"), "{}", ran.stderr);
    never_ran(&host);
    assert_eq!(berth.inspect("rolog")["State"]["Running"], false);
    berth.ok(&["rm", "rolog"]);
}

/// The same when the record cannot say Running (here record.json is a mount point, which a
/// rename cannot replace): the start fails and the program never ran. Before, the record was
/// updated after the start, and the program ran until the monitor undid it.
#[test]
fn a_record_that_cannot_be_updated_fails_the_start_before_the_program_runs() {
    need_root!();
    let berth = Berth::new();
    let (host, id) = witness(&berth, "pinned");
    let record = berth
        .root()
        .join("containers")
        .join(&id)
        .join("record.json");
    let bound = std::process::Command::new("mount")
        .arg("--bind")
        .args([&record, &record])
        .status()
        .expect("mount");
    assert!(bound.success());
    let ran = berth.run(&["start", "pinned"]);
    let _ = std::process::Command::new("umount").arg(&record).status();
    assert_eq!(ran.code(), Some(1), "{ran:?}");
    assert!(ran.stderr.contains("record.json"), "{}", ran.stderr);
    never_ran(&host);
    berth.ok(&["rm", "pinned"]);
}

/// A created container `name` whose program, if it ever runs, leaves a file `ran` in the
/// returned host directory; and its id.
fn witness(berth: &Berth, name: &str) -> (tempfile::TempDir, String) {
    let host = crate::host_dir();
    let volume = format!("{}:/out", crate::path_str(host.path()));
    let create = ["create", "--name", name, "-v", &volume, IMAGE];
    let id = berth.ok(&[&create[..], &["sh", "-c", "echo ran > /out/ran"]].concat());
    (host, id)
}

fn never_ran(host: &tempfile::TempDir) {
    assert!(
        !host.path().join("ran").exists(),
        "the program ran although its start failed"
    );
}

/// A memory node this machine does not have is refused when the container is made, as
/// Docker's create refuses it: one line naming the node, 125, no container kept. Before, it
/// was found only when the start wrote it to the cgroup. (What inspect shows of a container
/// that never ran: inspect_shows_the_images_config_merged_as_docker_does.)
#[test]
fn a_missing_memory_node_is_refused_at_create() {
    need_root!();
    let berth = Berth::new();
    for command in ["create", "run"] {
        let ran = berth.run(&[
            command,
            "--name",
            "nomem",
            "--cpuset-mems",
            "999",
            IMAGE,
            "true",
        ]);
        assert_eq!(ran.code(), Some(125), "{ran:?}");
        assert!(
            ran.stderr
                .contains("--cpuset-mems 999: memory node 999 is not available"),
            "{}",
            ran.stderr
        );
        assert!(
            !berth.run(&["inspect", "nomem"]).success(),
            "a container was kept"
        );
    }
}

/// inspect shows a container's `Config` as Docker's does, the image's merged into the request
/// at create (moby's `merge`): its Entrypoint, Cmd, Env (`-e` first, without the HOSTNAME and
/// HOME the process gets), WorkingDir, User, Labels and StopSignal; Path and Args what it will run, before it
/// ever starts (and `ps` its command), and the same after. Before, a created container showed
/// the command alone with a null Entrypoint and an empty Env, and once started the process's
/// environment; and `--change "ENV A=1 B=2"` set one variable, `A` to `1 B=2`.
#[test]
fn inspect_shows_the_images_config_merged_as_docker_does() {
    need_root!();
    let berth = Berth::new();
    let tar = berth_harness::image::image_tar();
    berth.ok(&[
        "import",
        "--change",
        r#"ENTRYPOINT ["/bin/echo", "ep"]"#,
        // One line, two variables, as a Dockerfile's ENV.
        "--change",
        "ENV FOO=bar PATH=/bin",
        "--change",
        "LABEL il=1 shared=image",
        "--change",
        "STOPSIGNAL SIGUSR1",
        "--change",
        "WORKDIR /tmp",
        tar.to_str().expect("path"),
        "merged:1",
    ]);
    berth.ok(&[
        "create",
        "--name",
        "merged",
        "-e",
        "X=1",
        "-l",
        "cl=2",
        "-l",
        "shared=asked",
        "merged:1",
        "hi",
    ]);
    let shown = |when: &str| {
        let c = berth.inspect("merged");
        let config = &c["Config"];
        assert_eq!(
            (c["Path"].clone(), c["Args"].clone()),
            (
                serde_json::json!("/bin/echo"),
                serde_json::json!(["ep", "hi"])
            ),
            "{when}: {c}"
        );
        assert_eq!(
            config["Entrypoint"],
            serde_json::json!(["/bin/echo", "ep"]),
            "{when}"
        );
        assert_eq!(config["Cmd"], serde_json::json!(["hi"]), "{when}");
        assert_eq!(
            config["Env"],
            serde_json::json!(["X=1", "FOO=bar", "PATH=/bin"]),
            "{when}"
        );
        assert_eq!(config["WorkingDir"], "/tmp", "{when}");
        assert_eq!(
            config["Labels"],
            serde_json::json!({"il": "1", "cl": "2", "shared": "asked"}),
            "{when}"
        );
        assert_eq!(config["StopSignal"], "SIGUSR1", "{when}");
    };
    shown("created");
    let ps = berth.ok(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    assert_eq!(ps.trim(), r#""/bin/echo ep hi""#);
    // `ps --filter label=` matches the labels inspect shows: the image's under the container's
    // (before, the container's alone: `il` found nothing).
    let labelled =
        |filter: &str| berth.ok(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
    assert_eq!(labelled("label=il=1").trim(), "merged");
    assert_eq!(labelled("label=il").trim(), "merged");
    assert_eq!(labelled("label=shared=asked").trim(), "merged");
    assert_eq!(labelled("label=shared=image").trim(), "");
    assert_eq!(berth.ok(&["start", "-a", "merged"]).trim(), "ep hi");
    shown("exited");
    berth.ok(&["rm", "merged"]);
}

/// A start that fails leaves the container created with Docker's exit code in inspect (moby's
/// containerStart): the command's 127 (not found) or 126 (not executable), 128 for a failure
/// of the engine's own; `wait` says it at once, as Docker's does for a container not running.
/// Before, the record kept 0, as if the command had run and succeeded.
#[test]
fn a_failed_start_records_dockers_exit_code() {
    need_root!();
    let berth = Berth::new();
    for (name, command, code) in [("missing", "/nosuch", 127), ("notexec", "/etc", 126)] {
        let ran = berth.run(&["run", "--name", name, "--network", "none", IMAGE, command]);
        assert_eq!(ran.code(), Some(code), "{ran:?}");
        let state = berth.inspect(name)["State"].clone();
        assert_eq!(
            (state["Status"].as_str(), state["ExitCode"].as_i64()),
            (Some("created"), Some(i64::from(code))),
            "{state}"
        );
        assert!(
            state["Error"].as_str().is_some_and(|e| e.contains(command)),
            "{state}"
        );
        assert_eq!(berth.ok(&["wait", name]).trim(), code.to_string());
    }
    // A failure of the engine's own at start: 128. A `--device` whose node is gone by then
    // is one (the spec is made again at each start).
    let host = tempfile::tempdir().expect("temp dir");
    let node = host.path().join("null");
    let dev = nix::sys::stat::makedev(1, 3);
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o666);
    nix::sys::stat::mknod(&node, nix::sys::stat::SFlag::S_IFCHR, mode, dev).expect("mknod");
    let device = format!("{}:/dev/gone", node.display());
    let args = [
        "create", "--name", "weighed", "--device", &device, IMAGE, "true",
    ];
    berth.ok(&args);
    fs::remove_file(&node).expect("remove the node");
    let ran = berth.run(&["start", "weighed"]);
    assert!(!ran.success(), "{ran:?}");
    assert_eq!(berth.inspect("weighed")["State"]["ExitCode"], 128);
    berth.ok(&["rm", "missing", "notexec", "weighed"]);
}

/// A monitor killed while it starts the container (seen holding the record's lock, which it
/// takes once the init is created and keeps until the record says running) leaves the record
/// created; the next `start` runs the container, as Docker's does after a daemon died
/// mid-start, and leaves nothing beside the record. Before, the killed start's init and
/// runtime state stayed, and every start failed with "container with given ID already
/// exists" until `rm -f`; and a kill after the staged record was written left its temp file
/// for good (one more at each such kill).
#[test]
fn a_monitor_killed_mid_start_leaves_the_container_startable() {
    need_root!();
    let berth = Berth::new();
    let mut caught = 0;
    for round in 0..60 {
        let name = format!("staged{round}");
        let id = berth
            .ok(&["create", "--name", &name, IMAGE, "sleep", "1000"])
            .trim()
            .to_string();
        let dir = berth.root().join("containers").join(&id);
        let lock = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .expect("the record's lock");
        let mut start = berth.command();
        start
            .args(["start", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut start = start.spawn().expect("spawn start");
        // The lock taken by someone else: the monitor between its stage and its rename
        // (nothing else here takes it while the container starts).
        let mut killed = false;
        while !killed && start.try_wait().expect("try_wait").is_none() {
            match lock.try_lock() {
                Err(std::fs::TryLockError::WouldBlock) => {
                    let owner = fs::read_to_string(dir.join("monitor.lock")).unwrap_or_default();
                    let pid = owner.split_whitespace().next().map(str::parse::<i32>);
                    if let Some(Ok(pid)) = pid {
                        // Some kills before the staged record is written, some after.
                        std::thread::sleep(Duration::from_micros(150 * (round % 4)));
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                        killed = true;
                    }
                }
                _ => {
                    let _ = lock.unlock();
                }
            }
        }
        let _ = start.wait();
        // Killed before the record said running (not just after its rename).
        if killed && berth.inspect(&name)["State"]["Status"] == "created" {
            berth.ok(&["start", &name]);
            let state = berth.inspect(&name);
            assert_eq!(state["State"]["Status"], "running", "{state}");
            let pid = state_pid(&state);
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            assert!(cmdline.starts_with(b"sleep"), "{cmdline:?}");
            // Nothing beside the record: a staged record the kill left was replaced.
            let beside: Vec<String> = fs::read_dir(&dir)
                .expect("the container's directory")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp") || n.ends_with(".staged"))
                .collect();
            assert_eq!(beside, Vec::<String>::new(), "round {round}");
            caught += 1;
        }
        berth.ok(&["rm", "-f", &name]);
        if caught == 4 {
            break;
        }
    }
    assert!(
        caught > 0,
        "no monitor killed while it started its container"
    );
}

/// A knob the host has no longer (a record made on a host with BFQ, or with cgroup v1's
/// memory controller, started after a reboot without) is dropped at the start, as Docker
/// checks its host's at each start: before, every start failed on the missing cgroup file.
#[test]
fn a_knob_the_host_lost_since_create_is_dropped_at_start() {
    need_root!();
    if std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .any(|d| {
            fs::read_to_string(d.path().join("queue/scheduler"))
                .is_ok_and(|s| s.contains("[bfq]") || s.contains("[cfq]"))
        })
        || std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
    {
        berth_harness::skipping(format_args!("needs a host without block I/O weights"));
        return;
    }
    let berth = Berth::new();
    let id = berth.ok(&["create", "--name", "weighed", IMAGE, "true"]);
    // As a host with BFQ recorded it.
    let path = berth
        .root()
        .join("containers")
        .join(&id)
        .join("record.json");
    let mut record: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    record["request"]["blkio_weight"] = 300.into();
    fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    let ran = berth.run(&["start", "--attach", "weighed"]);
    assert!(ran.success(), "{ran:?}");
    berth.ok(&["rm", "weighed"]);
}

/// An image of as many layers as one page of overlay's mount options holds for this data root
/// runs in every container, not only the first: the image's init layer (one lowerdir more) is
/// stacked only where it still fits (`bundle::init_layer_for`). Before, the first container
/// ran and learned the layer, and every later `run`, the first one's `start` and its `export`
/// failed with "too many layers for one page of mount options" (an adversary helper's
/// finding).
#[test]
fn an_image_at_the_mount_options_limit_runs_after_its_init_layer_is_known() {
    use sha2::{Digest, Sha256};
    need_root!();
    let berth = Berth::new();
    let root = berth.root().to_str().expect("utf-8 root").len();
    // `lowerdir=<layers joined by :>,upperdir=<dir>/upper,workdir=<dir>/work` within 4095
    // bytes, each layer `<root>/image/layers/<64 hex>/diff`, `<dir>` `<root>/containers/<id>`.
    let layer = root + "/image/layers/".len() + 64 + "/diff".len();
    let dir = root + "/containers/".len() + 64;
    let fixed = "lowerdir=".len()
        + ",upperdir=".len()
        + dir
        + "/upper".len()
        + ",workdir=".len()
        + dir
        + "/work".len();
    let count = (4095 - fixed + 1) / (layer + 1);
    let tar_of = |files: &[(&str, &[u8], u32)]| {
        let mut b = tar::Builder::new(Vec::new());
        for (name, bytes, mode) in files {
            let mut h = tar::Header::new_ustar();
            h.set_mode(*mode);
            h.set_size(bytes.len() as u64);
            if bytes.starts_with(b"->") {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, name, std::str::from_utf8(&bytes[2..]).unwrap())
                    .unwrap();
            } else {
                b.append_data(&mut h, name, *bytes).unwrap();
            }
        }
        b.into_inner().unwrap()
    };
    let busybox = fs::read("/bin/busybox").expect("busybox-static");
    let mut layers = vec![tar_of(&[
        ("bin/busybox", &busybox, 0o755),
        ("bin/sh", b"->busybox", 0o777),
        ("bin/true", b"->busybox", 0o777),
    ])];
    for i in 1..count {
        let name = format!("layer{i}");
        layers.push(tar_of(&[(&name, name.as_bytes(), 0o644)]));
    }
    let digest = |bytes: &[u8]| format!("sha256:{:x}", Sha256::digest(bytes));
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["true"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let names: Vec<String> = (0..count).map(|i| format!("{i}.tar")).collect();
    let manifest = serde_json::json!([{"Config": "config.json", "RepoTags": ["tall:1"],
        "Layers": names}]);
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let mut files: Vec<(&str, &[u8], u32)> = vec![
        ("manifest.json", &manifest, 0o644),
        ("config.json", &config, 0o644),
    ];
    files.extend(
        names
            .iter()
            .zip(&layers)
            .map(|(n, l)| (n.as_str(), &l[..], 0o644)),
    );
    let archive = tempfile::NamedTempFile::new().expect("archive");
    fs::write(archive.path(), tar_of(&files)).expect("write the archive");
    berth.ok(&["load", "-i", archive.path().to_str().unwrap()]);
    berth.ok(&["run", "--name", "tall1", "--network", "none", "tall:1"]);
    berth.ok(&["run", "--rm", "--network", "none", "tall:1"]);
    berth.ok(&["start", "-a", "tall1"]);
    // Not to /dev/null: export writes a file beside its target and renames it over, as
    // Docker's CLI does.
    let export = tempfile::NamedTempFile::new().expect("export");
    berth.ok(&["export", "-o", export.path().to_str().unwrap(), "tall1"]);
    let inits = fs::read_dir(berth.root().join("image/layers"))
        .expect("layers")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("init-"))
        .count();
    assert_eq!(inits, 1, "{count} layers: the init layer was learned");
}
