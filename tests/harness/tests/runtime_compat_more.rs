//! More of issue 11's runc compatibility, each case run under runc (Debian's /usr/sbin/runc,
//! the reference) and under berth-runc on the same bundle, and what each did compared: the
//! words and exit codes of commands in the wrong state, errors told once, a symlinked root, a
//! container without a mount namespace, masked paths, `delete --force` of one of two
//! containers sharing a cgroup, a terminal the runtime relays itself (driven through a real
//! pty), SCMP_ACT_NOTIFY's listeners handed to a seccomp agent (a small one in the test).

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_harness::{
    eventually, have, need_root, run_with_timeout, skip, unique, Bundle, Ran, Runtime,
    COMMAND_TIMEOUT,
};
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};
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
        let told = b.stderr.to_lowercase();
        assert!(
            told.contains(&words.to_lowercase()),
            "{words:?} in {told:?}"
        );
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

/// containerd stops a task with its image's stop signal by number (`kill <id> 37` for a
/// systemd image's SIGRTMIN+3): runc takes any number, berth-runc took only the 31 standard
/// signals ("unknown signal").
#[test]
fn a_real_time_signal_by_number_reaches_the_init() {
    need_root!();
    need_runc!();
    let bundle = Bundle::new(&["sh", "-c", "trap 'exit 7' 37; while :; do sleep 0.1; done"]);
    for (name, rt) in runtimes() {
        let id = unique("rt-signal");
        run_detached(&rt, &bundle, &id);
        wait_status(&rt, &id, "running");
        let killed = rt.run(&["kill", &id, "37"]);
        assert_eq!(killed.code(), Some(0), "{name}: {killed:?}");
        // The init's trap ends it: no SIGKILL is needed.
        wait_status(&rt, &id, "stopped");
        rt.run(&["delete", &id]).ok();
    }
}

/// runc's foreground `run` without a terminal passes on the signals it gets: a TERM sent to
/// the runtime reaches the container's trap, and the runtime exits with its code and deletes
/// it. berth-runc died of the TERM (143) and left the container running.
#[test]
fn a_foreground_run_passes_its_signals_on() {
    need_root!();
    need_runc!();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "trap 'exit 42' TERM; while :; do sleep 0.1; done",
    ]);
    for (name, rt) in runtimes() {
        let id = unique("fg-signal");
        let mut child = rt
            .command()
            .args(["run", "--bundle", path(bundle.path()), &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn run");
        wait_status(&rt, &id, "running");
        let sent = Command::new("kill")
            .args(["-s", "TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let code = child.wait().expect("wait").code();
        let left = status(&rt, &id);
        rt.run(&["delete", "--force", &id]).ok();
        assert_eq!(code, Some(42), "{name}: the trap's code");
        assert_eq!(left, "gone", "{name}: deleted");
    }
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

/// Masked paths as runc's maskPath masks them: /dev/null over a file, an empty read-only tmpfs
/// over a directory, one reached through a symbolic link too (berth-runc failed with ENOTDIR),
/// and nothing for a path that is not there.
#[test]
fn masked_paths_are_masked_as_runc_masks_them() {
    need_root!();
    need_runc!();
    let script = "cat /secret-file; ls -A /secret-dir /dir-link; touch /dir-link/x || echo ro";
    let mut bundle = Bundle::new(&["sh", "-c", script]);
    let root = bundle.rootfs();
    std::fs::create_dir_all(root.join("secret-dir")).unwrap();
    std::fs::write(root.join("secret-dir/inside"), "x").unwrap();
    std::fs::write(root.join("secret-file"), "secret").unwrap();
    std::os::unix::fs::symlink("/secret-dir", root.join("dir-link")).unwrap();
    edit(&mut bundle, |v| {
        v["linux"]["maskedPaths"] = json!(["/secret-file", "/dir-link", "/missing"]);
    });
    let mut outputs = Vec::new();
    for (name, rt) in runtimes() {
        let ran = rt.run(&["run", "--bundle", path(bundle.path()), &unique("masked")]);
        outputs.push((name, ran.code(), ran.stdout));
    }
    let [(_, runc_code, runc_out), (_, code, out)] = &outputs[..] else {
        unreachable!()
    };
    assert_eq!(
        runc_out, "/dir-link:\n\n/secret-dir:\nro\n",
        "runc: {runc_code:?}"
    );
    assert_eq!((code, out), (runc_code, runc_out));
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

/// A runtime on the slave side of a pty whose master the test holds, the pty its controlling
/// terminal (`setsid -c`), so that a resize sends it SIGWINCH as a terminal emulator's does.
struct Terminal {
    master: std::fs::File,
    output: Arc<Mutex<Vec<u8>>>,
    seen: usize,
    child: Child,
}

impl Terminal {
    /// `<runtime> --root <root> <args>` on a new pty of 30 rows and 100 columns.
    fn spawn(rt: &Runtime, args: &[&str]) -> Terminal {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = std::fs::File::options()
            .read(true)
            .write(true)
            .open(name.to_str().expect("pts name"))
            .expect("opening the pty's slave");
        let master = std::fs::File::from(master);
        resize(&master, 30, 100);
        let mut command = Command::new("setsid");
        command
            .arg("-c")
            .arg(rt.binary())
            .arg("--root")
            .arg(rt.root())
            .args(args)
            .stdin(slave.try_clone().expect("slave fd"))
            .stdout(slave.try_clone().expect("slave fd"))
            .stderr(slave);
        let child = command.spawn().expect("spawning the runtime on the pty");
        drop(command); // our copies of the slave: EOF on the master once the runtime is gone
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("master fd");
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every slave fd is closed.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            master,
            output,
            seen: 0,
            child,
        }
    }

    fn send(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .expect("writing to the pty");
    }

    fn text_since(&self, from: usize) -> String {
        let out = self.output.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&out[from.min(out.len())..]).into_owned()
    }

    /// Waits until `want` appears in the output after what earlier waits consumed.
    fn expect(&mut self, want: &str) {
        let from = self.seen;
        let deadline = std::time::Instant::now() + berth_harness::PATIENCE;
        let at = loop {
            let text = self.text_since(from);
            if let Some(at) = text.find(want) {
                break at;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gave up waiting for {want:?} on the terminal, which shows {text:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        self.seen = from + at + want.len();
    }

    fn exit_code(&mut self) -> Option<i32> {
        let status = eventually("the runtime to exit", || {
            self.child.try_wait().expect("try_wait")
        });
        status.code()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn resize(master: &std::fs::File, rows: u16, cols: u16) {
    let size = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    tcsetwinsize(master, size).expect("setting the pty's size");
}

/// A shell on the terminal: its size, then its size after a resize (SIGWINCH to the runtime,
/// which copies it onto the container's pty), its exit code through the runtime's.
fn drive_shell(term: &mut Terminal, code: i32) -> Option<i32> {
    term.expect("# ");
    ask_size(term, "30 100");
    term.send("tty\n");
    term.expect("/dev/pts/");
    resize(&term.master, 40, 120);
    ask_size(term, "40 120");
    term.send(&format!("exit {code}\n"));
    term.exit_code()
}

/// Asks the shell its terminal's size until it answers `want`: the size is copied onto the
/// container's pty when the runtime gets to it (runc relays input before it copies the first
/// size; a resize comes as a signal).
fn ask_size(term: &mut Terminal, want: &str) {
    let from = term.seen;
    eventually(&format!("the size {want} inside the container"), || {
        term.send("stty size\n");
        std::thread::sleep(Duration::from_millis(200));
        term.text_since(from).contains(want).then_some(())
    });
}

/// `run` and `exec -t` of a shell with a terminal and no --console-socket: the runtime relays
/// its own terminal, as runc does.
#[test]
fn a_terminal_without_a_console_socket_is_relayed() {
    need_root!();
    need_runc!();
    if !have("setsid") {
        skip!("needs setsid (util-linux)");
    }
    let mut terminal = Bundle::new(&["sh"]);
    edit(&mut terminal, |v| v["process"]["terminal"] = json!(true));
    let sleeper = Bundle::new(&["sleep", "1000"]);
    for (name, rt) in runtimes() {
        let id = unique("relay");
        let mut term = Terminal::spawn(&rt, &["run", "--bundle", path(terminal.path()), &id]);
        assert_eq!(drive_shell(&mut term, 7), Some(7), "{name}: run");
        assert_eq!(
            rt.run(&["list", "-q"]).ok().trim(),
            "",
            "{name}: left behind"
        );
        let id = unique("relay-exec");
        run_detached(&rt, &sleeper, &id);
        let mut term = Terminal::spawn(&rt, &["exec", "-t", &id, "sh"]);
        assert_eq!(drive_shell(&mut term, 3), Some(3), "{name}: exec -t");
        rt.run(&["delete", "--force", &id]).ok();
    }
}

/// Without a console socket, a terminal is refused when the runtime would not stay to relay it,
/// or has no terminal of its own; a console socket, when the runtime stays attached.
#[test]
fn a_terminal_the_runtime_cannot_relay_is_refused() {
    need_root!();
    need_runc!();
    let mut terminal = Bundle::new(&["sh"]);
    edit(&mut terminal, |v| v["process"]["terminal"] = json!(true));
    let sleeper = Bundle::new(&["sleep", "1000"]);
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let bundle = path(terminal.path());
        let mut ran = vec![
            rt.run(&["run", "-d", "--bundle", bundle, &unique("tty")]),
            rt.run(&["create", "--bundle", bundle, &unique("tty")]),
            rt.run(&[
                "run",
                "--console-socket",
                "/nonexistent",
                "--bundle",
                bundle,
                &unique("tty"),
            ]),
        ];
        // No terminal among stdin, stdout and stderr, and none to open as /dev/tty.
        let mut command = Command::new("setsid");
        command
            .arg("-w")
            .arg(rt.binary())
            .arg("--root")
            .arg(rt.root())
            .args(["run", "--bundle", bundle, &unique("tty")])
            .stdin(Stdio::null());
        ran.push(run_with_timeout(command, COMMAND_TIMEOUT));
        let id = unique("tty-exec");
        run_detached(&rt, &sleeper, &id);
        ran.push(rt.run(&["exec", "-t", "-d", &id, "sh"]));
        ran.push(rt.run(&["exec", "--console-socket", "/nonexistent", &id, "true"]));
        rt.run(&["delete", "--force", &id]).ok();
        assert_eq!(
            rt.run(&["list", "-q"]).ok().trim(),
            "",
            "{name}: left behind"
        );
        seen.push((name, ran));
    }
    assert_same_failures(&seen);
}

/// A seccomp agent on a unix socket: it takes each process's listener with its state
/// (remembered, in order) and answers every notification with EXDEV, until the process is gone.
struct Agent {
    path: std::path::PathBuf,
    states: Arc<Mutex<Vec<Value>>>,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().expect("agent dir");
        let path = dir.path().join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind the agent");
        let states = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&states);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let mut buf = Vec::with_capacity(64 * 1024);
                let Ok(mut fds) = berth_sys::fd::recv_message_with_fds(conn.as_fd(), &mut buf)
                else {
                    continue;
                };
                let state = serde_json::from_slice(&buf).unwrap_or(Value::Null);
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(state);
                if let Some(fd) = fds.pop() {
                    std::thread::spawn(move || answer(fd));
                }
            }
        });
        Agent {
            path,
            states,
            _dir: dir,
        }
    }

    fn states(&self) -> Vec<Value> {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Answers the notifications on `listener` with EXDEV until no process uses its filter.
fn answer(listener: std::os::fd::OwnedFd) {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsRawFd;
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            return;
        }
        let events = fds[0].revents().unwrap_or(PollFlags::POLLHUP);
        if !events.contains(PollFlags::POLLIN) {
            return;
        }
        let Ok(req) = ScmpNotifReq::receive(listener.as_raw_fd()) else {
            continue;
        };
        let exdev = -(nix::errno::Errno::EXDEV as i32);
        let _ = ScmpNotifResp::new_error(req.id, exdev, ScmpNotifRespFlags::empty())
            .respond(listener.as_raw_fd());
    }
}

/// What runc's agent protocol says of a state the agent got: its fields, without the values
/// that differ between runs (the pids are compared with each other).
fn agent_view(state: &Value, id: &str, bundle: &Path) -> Value {
    let inner = &state["state"];
    json!({
        "keys": state.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        "state keys": inner.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        "fds": state["fds"],
        "metadata": state["metadata"],
        "status": inner["status"],
        "id is the container's": inner["id"] == id,
        "bundle": inner["bundle"] == path(bundle),
        "pid is the init's": state["pid"] == inner["pid"],
    })
}

/// SCMP_ACT_NOTIFY with a listenerPath: the init's and an exec'd process's filters are loaded
/// with a listener, which goes to the agent with the process's state (runc's
/// ContainerProcessState); the agent's answers are the syscalls' results. With and without
/// no_new_privileges, which move where the filter is loaded.
#[test]
fn seccomp_notify_hands_each_listener_to_the_agent() {
    need_root!();
    need_runc!();
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        for no_new_privileges in [true, false] {
            let agent = Agent::start();
            let mut bundle = Bundle::new(&[
                "sh",
                "-c",
                "busybox mkdir /tmp/a || echo > /tmp/refused; exec sleep 1000",
            ]);
            edit(&mut bundle, |v| {
                v["process"]["noNewPrivileges"] = json!(no_new_privileges);
                v["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "listenerPath": agent.path,
                    "listenerMetadata": "berth-test",
                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
                });
            });
            let id = unique("notify");
            run_detached(&rt, &bundle, &id);
            let mkdir = rt.run(&["exec", &id, "busybox", "mkdir", "/tmp/b"]);
            let listed = rt.run(&["exec", &id, "ls", "/tmp"]).ok();
            rt.run(&["delete", "--force", &id]).ok();
            let states: Vec<Value> = agent
                .states()
                .iter()
                .map(|s| agent_view(s, &id, bundle.path()))
                .collect();
            let what = json!({
                "no_new_privileges": no_new_privileges,
                "exec mkdir": [mkdir.code(), mkdir.stderr],
                "ls /tmp": listed,
                "agent got": states,
            });
            seen.push((name, what));
        }
    }
    let (runc, berth) = seen.split_at(2);
    for ((_, r), (_, b)) in runc.iter().zip(berth) {
        assert_eq!(r, b, "runc, then berth-runc");
    }
}

/// The init's last receive (the start word of a foreground `run`) comes after its seccomp
/// filter is loaded (without no_new_privs, before the capabilities go): a profile that
/// refuses recvmsg, which the container's program never makes, must not stop the runtime's
/// own receive. It is recv(2), the recvfrom call, as it was; for a while it was recvmsg, and
/// the init failed ("Operation not permitted") where runc ran the container.
#[test]
fn a_profile_without_recvmsg_still_starts_the_container() {
    need_root!();
    need_runc!();
    for no_new_privileges in [false, true] {
        let mut bundle = Bundle::new(&["true"]);
        edit(&mut bundle, |v| {
            v["process"]["noNewPrivileges"] = json!(no_new_privileges);
            v["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["recvmsg"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
            });
        });
        for (name, rt) in runtimes() {
            let id = unique("no-recvmsg");
            let ran = rt.run(&["run", "--bundle", path(bundle.path()), &id]);
            rt.run(&["delete", "--force", &id]).ok();
            assert_eq!(
                ran.code(),
                Some(0),
                "{name}, no_new_privileges {no_new_privileges}: {ran:?}"
            );
        }
    }
}

/// What runc refuses of SCMP_ACT_NOTIFY, refused as runc does, in its words, nothing left.
#[test]
fn seccomp_notify_without_a_way_to_an_agent_is_refused() {
    need_root!();
    need_runc!();
    let cases = [
        (
            "SCMP_ACT_NOTIFY",
            "mkdir",
            Some("/nonexistent/agent.sock"),
            "SCMP_ACT_NOTIFY cannot be used as default action",
        ),
        (
            "SCMP_ACT_ALLOW",
            "write",
            Some("/nonexistent/agent.sock"),
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ),
        ("SCMP_ACT_ALLOW", "mkdir", None, "listenerPath is not set"),
        (
            "SCMP_ACT_ALLOW",
            "mkdir",
            Some("/nonexistent/agent.sock"),
            "failed to connect with seccomp agent specified in the seccomp profile",
        ),
    ];
    for (default, syscall, listener, words) in cases {
        let mut bundle = Bundle::new(&["true"]);
        edit(&mut bundle, |v| {
            v["linux"]["seccomp"] = json!({
                "defaultAction": default,
                "listenerPath": listener,
                "syscalls": [{"names": [syscall], "action": "SCMP_ACT_NOTIFY"}],
            });
        });
        for (name, rt) in runtimes() {
            let ran = rt.run(&["run", "--bundle", path(bundle.path()), &unique("notify")]);
            assert_eq!(ran.code(), Some(1), "{name}: {ran:?}");
            assert!(ran.stderr.contains(words), "{name}: {words:?} in {ran:?}");
            assert_eq!(
                rt.run(&["list", "-q"]).ok().trim(),
                "",
                "{name}: left behind"
            );
        }
    }
}
