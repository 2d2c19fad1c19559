//! What a rootless container cannot reach, and what rootless berth says is missing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use berth_harness::image::{image_tar, IMAGE};
use berth_harness::rootless::RootlessUser;
use berth_harness::{run_with_timeout, COMMAND_TIMEOUT};

use crate::user_with_image;

/// An image whose /bin/suid is busybox, setuid root: run by the container's user 1000 it is
/// the container's root, and still no more than the user outside.
#[test]
fn a_setuid_shell_in_the_image_gains_nothing_outside() {
    let Some(user) = user_with_image() else {
        return;
    };
    // The test image with /bin/suid added: extracted and packed again by root, owners kept.
    let dir = user.home.join("suid");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut extract = Command::new("tar");
    extract.arg("-xf").arg(image_tar()).arg("-C").arg(&dir);
    run_with_timeout(extract, COMMAND_TIMEOUT).ok();
    // busybox drops a setuid root for its applets: a tiny static wrapper keeps it, and runs
    // what it is given as root (setuid(0) first, as a setuid shell would).
    let source = user.home.join("suid.c");
    std::fs::write(
        &source,
        "#include <unistd.h>\nint main(int c, char **v) { setgid(0); setuid(0); \
         execv(v[1], v + 1); return 127; }\n",
    )
    .expect("write suid.c");
    let mut cc = Command::new("cc");
    cc.args(["-static", "-o"])
        .arg(dir.join("bin/suid"))
        .arg(&source);
    if !berth_harness::have("cc") {
        berth_harness::skip!("needs cc (gcc) and a static libc to build the setuid shell");
    }
    run_with_timeout(cc, COMMAND_TIMEOUT).ok();
    std::fs::set_permissions(
        dir.join("bin/suid"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .expect("chmod");
    let tar = user.home.join("suid.tar");
    let mut pack = Command::new("tar");
    pack.args(["--numeric-owner", "-C"])
        .arg(&dir)
        .arg("-cf")
        .arg(&tar)
        .arg(".");
    run_with_timeout(pack, COMMAND_TIMEOUT).ok();
    std::fs::set_permissions(&tar, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    user.ok(&["import", tar.to_str().expect("utf-8"), "suid:2"]);
    let mode = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "suid:2",
        "stat",
        "-c",
        "%a %u",
        "/bin/suid",
    ]);
    assert_eq!(mode, "4755 0", "the image keeps its setuid root binary");

    let script = "/bin/suid /bin/id -u; \
        /bin/suid /bin/cat /host/shadow >/dev/null 2>&1 && echo SHADOW-READ; \
        /bin/suid /bin/ls /host/root >/dev/null 2>&1 && echo ROOT-LISTED; \
        /bin/suid /bin/sh -c 'echo x > /host/root/berth-escape' 2>/dev/null && echo ROOT-WRITTEN; \
        echo done";
    let ran = user.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "1000",
        "-v",
        "/etc/shadow:/host/shadow:ro",
        "-v",
        "/root:/host/root",
        "suid:2",
        "sh",
        "-c",
        script,
    ]);
    let out = ran.stdout.trim().to_string();
    assert!(out.ends_with("done"), "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(
        out.lines().next(),
        Some("0"),
        "the setuid shell is the container's root: {out}"
    );
    for escaped in ["SHADOW-READ", "ROOT-LISTED", "ROOT-WRITTEN"] {
        assert!(!out.contains(escaped), "{escaped}: {out}");
    }
    assert!(!Path::new("/root/berth-escape").exists());
    // The container's root itself is no more: the user outside.
    let ran = user.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/etc/shadow:/host/shadow:ro",
        IMAGE,
        "cat",
        "/host/shadow",
    ]);
    assert!(
        !ran.success(),
        "root of a rootless container read /etc/shadow"
    );
}

#[test]
fn missing_pieces_are_named_in_one_line() {
    let Some(user) = RootlessUser::create() else {
        return;
    };
    // newuidmap not found.
    let ran = run_with_timeout(
        user.command_env(&["images"], &[("PATH", "/nonexistent")]),
        COMMAND_TIMEOUT,
    );
    assert!(!ran.success());
    assert!(
        ran.stderr.contains("newuidmap not found") && ran.stderr.contains("apt-get install uidmap"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    // A runtime directory that cannot be made.
    let ran = run_with_timeout(
        user.command_env(&["images"], &[("XDG_RUNTIME_DIR", "/proc/berth-nowhere")]),
        COMMAND_TIMEOUT,
    );
    assert!(!ran.success());
    assert!(ran.stderr.contains("XDG_RUNTIME_DIR"), "{}", ran.stderr);
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);

    // No ranges at all: a warning saying what that limits, and root alone still works.
    let Some(lone) = RootlessUser::without_ranges() else {
        return;
    };
    let ran = lone.berth(&["images"]);
    assert!(ran.success(), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("no ranges") && ran.stderr.contains("usermod --add-subuids"),
        "{}",
        ran.stderr
    );
    let tar = image_tar();
    lone.ok(&["import", tar.to_str().expect("utf-8"), IMAGE]);
    // --userns private is root's: said so, in one line.
    let ran = lone.berth(&["run", "--rm", "--userns", "private", IMAGE, "true"]);
    assert_eq!(ran.status.code(), Some(125));
    assert!(
        ran.stderr.contains("--userns private is root's"),
        "{}",
        ran.stderr
    );
    let maps = lone.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "cat",
        "/proc/self/uid_map",
    ]);
    let fields: Vec<&str> = maps.split_whitespace().collect();
    assert_eq!(fields, ["0", &lone.uid.to_string(), "1"]);

    // An empty range (count 0), which usermod will not write: named before newuidmap runs.
    let Some(empty) = RootlessUser::without_ranges() else {
        return;
    };
    for file in ["/etc/subuid", "/etc/subgid"] {
        berth_harness::rootless::append_subid_line(file, &format!("{}:1500000000:0", empty.name));
    }
    let ran = empty.berth(&["images"]);
    assert!(!ran.success());
    assert!(
        ran.stderr.contains("/etc/subuid") && ran.stderr.contains("is empty (count 0)"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
}

/// `exec` from a shell whose XDG_RUNTIME_DIR is not the one the container was started with
/// (its runtime's state is there) says so in one line. Before, it said that the running
/// container was not running.
#[test]
fn exec_from_another_runtime_dir_says_which_to_use() {
    let Some(user) = user_with_image() else {
        return;
    };
    let id = user.ok(&["run", "-d", "--network", "none", IMAGE, "sleep", "1000"]);
    let other = user.home.join("another-run");
    let made = user.shell(&format!("mkdir -m 700 {}", other.display()));
    assert!(made.success(), "{}", made.stderr);
    let other = other.to_str().expect("utf-8");
    let ran = run_with_timeout(
        user.command_env(&["exec", &id, "true"], &[("XDG_RUNTIME_DIR", other)]),
        COMMAND_TIMEOUT,
    );
    assert!(!ran.success());
    assert!(ran.stderr.contains("XDG_RUNTIME_DIR"), "{}", ran.stderr);
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    user.ok(&["exec", &id, "true"]);
    user.ok(&["rm", "-f", &id]);
}
