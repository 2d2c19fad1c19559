//! What `berth` leaves in /run after its containers are gone (issue 10): the runtime's state
//! directory of a data root, the read-only views of the binary under /run/berth/exe, and the
//! anonymous volumes of a container whose record is corrupt.
//!
//! Needs root and `cargo build -p berth` beforehand.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_harness::image::{berth_bin, execs_dir, runtime_dir, Berth, IMAGE};
use berth_harness::{eventually, need_root, run_with_timeout, Ran, COMMAND_TIMEOUT};
use berth_harness::{monitors_of, monitors_of_root};

/// SIGKILLs the monitor of container `id`, as an OOM killer or a careless `kill -9` would.
/// `run -d` returns once the init was told to start, which may be a moment before it has
/// exec'd its program: until then the init, a fork of the monitor, shows the same command
/// line (the suite caught the two of them once).
fn kill_monitor(id: &str) {
    let monitors = eventually(&format!("one monitor of {id}"), || {
        let monitors = monitors_of(id);
        (monitors.len() == 1).then_some(monitors)
    });
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
    let execs = execs_dir(berth.root());
    // `run --rm` and `rm -f` return once the container is gone from every listing; its
    // monitor deletes the runtime's state right after, before it ends.
    let gone = |after: &str| {
        let settled = || monitors_of_root(berth.root()).is_empty().then_some(());
        eventually(&format!("the monitors after {after} to end"), settled);
        let left: Vec<PathBuf> = fs::read_dir(&state)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            !state.exists(),
            "after {after}: {} holds {left:?}",
            state.display()
        );
        // The exec records (on /run too) go with their container.
        assert!(
            !execs.exists(),
            "after {after}: {} is left",
            execs.display()
        );
    };
    berth.ok(&["images"]);
    gone("images");
    for i in 0..3 {
        berth.ok(&["run", "--rm", IMAGE, "true"]);
        gone(&format!("run --rm #{i}"));
        let id = berth.ok(&["run", "-d", IMAGE, "sleep", "600"]);
        berth.ok(&["exec", &id, "true"]);
        assert!(
            execs.join(&id).is_dir(),
            "the exec's record in {}",
            execs.display()
        );
        berth.ok(&["rm", "-f", &id]);
        gone(&format!("run -d, exec, rm -f #{i}"));
    }
    let failed = berth.run(&["run", "--name", "failed", IMAGE, "/nonexistent"]);
    assert_eq!(failed.code(), Some(127), "{}", failed.stderr);
    gone("a create that failed");
    berth.ok(&["rm", "failed"]);

    // A stopped container's exec records stay for `exec inspect` until it is removed.
    let id = berth.ok(&["run", "-d", IMAGE, "sleep", "600"]);
    berth.ok(&["exec", &id, "true"]);
    berth.ok(&["stop", "-t", "0", &id]);
    assert!(execs.join(&id).is_dir(), "the exec's record after stop");
    berth.ok(&["rm", &id]);
    gone("exec, stop, rm");

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

/// `/run/berth/exe/berth-<dev>-<inode>-<mtime>-<size>` of `bin`: the view protected_exe makes.
fn view_of(bin: &Path) -> PathBuf {
    let meta = fs::metadata(bin).expect("the binary");
    let name = format!(
        "berth-{:x}-{:x}-{:x}-{:x}",
        meta.dev(),
        meta.ino(),
        meta.mtime(),
        meta.size()
    );
    Path::new("/run/berth/exe").join(name)
}

/// Whether a process runs from `view`.
fn runs_from(view: &Path) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten()
        .any(|e| fs::read_link(e.path().join("exe")).is_ok_and(|exe| exe == view))
}

/// `<bin> --root <root> <args>`, output captured.
fn berth_as(bin: &Path, berth: &Berth, args: &[&str]) -> String {
    let mut command = Command::new(bin);
    command
        .arg("--root")
        .arg(berth.root())
        .args(args)
        .stdin(Stdio::null());
    let ran: Ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert!(ran.success(), "{} {args:?}: {}", bin.display(), ran.stderr);
    ran.stdout.trim().to_string()
}

/// Views of the binary are one per binary version (device, inode, time, size): each build and
/// each checkout makes its own. Before, a view went only once its binary was deleted, so every
/// build of every worktree kept one. Now making a view removes the views no process runs
/// from or holds, and a view in use stays.
#[test]
fn views_of_the_binary_are_reused_and_those_unused_removed() {
    need_root!();
    let berth = Berth::new();
    let copies = tempfile::tempdir().unwrap();
    let [a, b, c] = ["a", "b", "c"].map(|name| {
        let path = copies.path().join(name).join("berth");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::copy(berth_bin(), &path).expect("copy the binary");
        path
    });
    let cleanup = Views(vec![view_of(&a), view_of(&b), view_of(&c)]);

    // A's monitor runs from A's view for as long as the container runs.
    let id = berth_as(&a, &berth, &["run", "-d", IMAGE, "sleep", "600"]);
    assert!(view_of(&a).exists());
    for _ in 0..3 {
        berth_as(&b, &berth, &["run", "--rm", IMAGE, "true"]);
    }
    assert!(view_of(&b).exists(), "B made one view and reused it");
    // The monitor of a `run --rm` removes the container after the CLI has its exit.
    eventually("B's last monitor to end", || {
        (!runs_from(&view_of(&b))).then_some(())
    });
    berth_as(&c, &berth, &["run", "--rm", IMAGE, "true"]);
    assert!(!view_of(&b).exists(), "C's view removed B's, unused");
    assert!(view_of(&a).exists(), "A's, in use, stays");
    assert_eq!(berth_as(&a, &berth, &["exec", &id, "echo", "ok"]), "ok");

    berth.ok(&["rm", "-f", &id]);
    eventually("the monitors of A and C to end", || {
        (!runs_from(&view_of(&a)) && !runs_from(&view_of(&c))).then_some(())
    });
    berth_as(&b, &berth, &["run", "--rm", IMAGE, "true"]);
    assert!(!view_of(&a).exists(), "A's, no longer in use, removed");
    assert!(!view_of(&c).exists(), "C's, unused, removed");
    drop(cleanup);
}

/// Removes the views a test made, whatever happened (each unmounted first: a file a mount
/// covers cannot be removed).
struct Views(Vec<PathBuf>);

impl Drop for Views {
    fn drop(&mut self) {
        for view in &self.0 {
            let _ = nix::mount::umount2(view, nix::mount::MntFlags::MNT_DETACH);
            let _ = fs::remove_file(view);
        }
    }
}

/// `rm -v` of a container whose record.json is corrupt removes its anonymous volumes, as it
/// does with the record (before: they stayed, listed by nothing but `volume ls`). Their names
/// follow from the container's id; named volumes and another container's stay.
#[test]
fn rm_v_of_a_corrupt_record_removes_its_anonymous_volumes() {
    need_root!();
    let berth = Berth::new();
    let volumes = || -> Vec<String> {
        let out = berth.ok(&["volume", "ls", "-q"]);
        let mut names: Vec<String> = out.split_whitespace().map(String::from).collect();
        names.sort();
        names
    };
    let other = berth.ok(&["create", "-v", "/kept", IMAGE, "true"]);
    let kept = berth.inspect(&other)["Mounts"][0]["Name"]
        .as_str()
        .expect("the other container's volume")
        .to_string();
    let id = berth.ok(&[
        "create",
        "-v",
        "/data",
        "-v",
        "named:/named",
        "-v",
        "/more",
        IMAGE,
        "true",
    ]);
    assert_eq!(volumes().len(), 4, "{:?}", volumes());
    let record = berth
        .root()
        .join("containers")
        .join(&id)
        .join("record.json");
    let text = fs::read(&record).expect("record");
    fs::write(&record, &text[..text.len() / 2]).expect("truncate the record");

    berth.ok(&["rm", "-v", &id]);
    let mut left = vec![kept, "named".to_string()];
    left.sort();
    assert_eq!(volumes(), left);
    berth.ok(&["rm", "-v", &other]);
    berth.ok(&["volume", "rm", "named"]);
}
