//! Black-box tests of issue 10's robustness: a `run` or `create` the engine refuses exits 125
//! with one line and leaves nothing (no record, name, volume, bind source, cgroup or mount);
//! nonsense values are refused rather than read as "no limit"; usage errors are one line in
//! Docker's words, checked against the docker CLI itself; images whose /etc files or volume
//! targets are symbolic links run, with the links resolved inside the container's root; a
//! container's time namespace can be joined.
//!
//! Needs root and `cargo build -p berth` beforehand.

use std::fs;
use std::path::Path;
use std::process::Command;

use berth_harness::image::{cgroup_dirs, image_tar, mounts_under, Berth, IMAGE};
use berth_harness::{have, need_root, run_with_timeout, unique, Ran, COMMAND_TIMEOUT};

/// The one line of a refusal, with what it is expected to say.
fn one_line(args: &[&str], ran: &Ran) -> String {
    let lines: Vec<&str> = ran.stderr.trim_end().lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: one line of error:\n{}",
        ran.stderr
    );
    assert!(lines[0].starts_with("berth: "), "{args:?}: {}", lines[0]);
    lines[0].to_string()
}

/// Nothing of a refused container is left in `berth`'s root, nor the host directory `bind`
/// that its `-v` named.
fn assert_nothing_left(berth: &Berth, case: &[&str], bind: &Path) {
    assert_eq!(
        berth.ok(&["ps", "-a", "-q"]),
        "",
        "{case:?} left a container"
    );
    let entries = |dir: &str| -> Vec<String> {
        fs::read_dir(berth.root().join(dir))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let dirs: Vec<String> = entries("containers")
        .into_iter()
        .filter(|n| n.len() == 64)
        .collect();
    assert!(
        dirs.is_empty(),
        "{case:?} left container directories {dirs:?}"
    );
    assert!(
        entries("containers/names").is_empty(),
        "{case:?} left a name taken"
    );
    assert!(
        entries("volumes").is_empty(),
        "{case:?} left volumes {:?}",
        entries("volumes")
    );
    assert!(!bind.exists(), "{case:?} made the bind source {bind:?}");
    assert!(
        mounts_under(berth.root()).is_empty(),
        "{case:?} left a mount"
    );
}

/// Each flag the engine refuses, in `run` and `create`, with a named volume and a missing bind
/// source beside it: exit 125, one line saying what was wrong, and no id ever given out (the
/// cidfile is never written), so no cgroup, record, name, volume or mount either.
#[test]
fn refused_flags_leave_nothing() {
    need_root!();
    let berth = Berth::new();
    let host = tempfile::tempdir().expect("host dir");
    let long_name = "h".repeat(100);
    let cases: &[(&[&str], &str)] = &[
        (&["-p", "1.2.3.4.5:80:80"], "invalid IP address: 1.2.3.4.5"),
        (&["-m", "1"], "Minimum memory limit allowed is 6MB"),
        (&["--cpus", "100000"], "Range of CPUs is from 0.01 to"),
        (&["--ulimit", "bogus=1"], "invalid ulimit type: bogus"),
        (&["--network", "nosuchnet"], "network nosuchnet not found"),
        (&["--pid", "container:nosuch"], "No such container: nosuch"),
        (&["--device", "/dev/missing"], "/dev/missing"),
        (
            &["--tmpfs", "/x:size=abc"],
            "invalid tmpfs option \"size=abc\"",
        ),
        (&["-h", &long_name], "not a valid hostname"),
        (
            &["--cap-add", "CAP_BOGUS"],
            "unknown capability: \"CAP_BOGUS\"",
        ),
        (&["-u", "a:b:c"], "unable to find user a"),
        (
            &["-w", "relative"],
            "the working directory 'relative' is invalid",
        ),
    ];
    for (i, (flags, says)) in cases.iter().enumerate() {
        for command in ["run", "create"] {
            let cidfile = host.path().join(format!("cid-{command}-{i}"));
            let bind = host.path().join(format!("bind-{command}-{i}"));
            let bind_spec = format!("{}:/bind", bind.display());
            let mut args = vec![command, "--name", "victim", "--cidfile"];
            args.push(cidfile.to_str().expect("UTF-8"));
            args.extend(["-v", "keep:/data", "-v", &bind_spec]);
            args.extend_from_slice(flags);
            args.extend([IMAGE, "true"]);
            let ran = berth.run(&args);
            assert_eq!(ran.code(), Some(125), "{args:?}: {}", ran.stderr);
            let line = one_line(&args, &ran);
            assert!(line.contains(says), "{flags:?} should say {says:?}: {line}");
            if let Ok(id) = fs::read_to_string(&cidfile) {
                panic!(
                    "{flags:?}: id {id} given out, cgroups {:?}",
                    cgroup_dirs(&id)
                );
            }
            assert_nothing_left(&berth, flags, &bind);
        }
    }
    // What needs no image is refused before the image is pulled.
    let args = [
        "run",
        "--pull",
        "always",
        "-p",
        "1.2.3.4.5:80:80",
        IMAGE,
        "true",
    ];
    let ran = berth.run(&args);
    assert_eq!(ran.code(), Some(125), "{}", ran.stderr);
    let line = one_line(&args, &ran);
    assert!(line.contains("invalid IP address"), "no pull first: {line}");
    // The same name, volume and bind are free for a container that is valid.
    let bind = host.path().join("made-at-start");
    let bind_spec = format!("{}:/bind", bind.display());
    let args = ["run", "--rm", "--name", "victim", "-v", "keep:/data"];
    let mut args = args.to_vec();
    args.extend(["-v", &bind_spec, IMAGE, "ls", "-d", "/bind", "/data"]);
    berth.ok(&args);
    assert!(bind.is_dir(), "-v makes a missing host directory at start");
}

/// Values Docker refuses that berth used to read as "no limit" or as an anonymous volume.
#[test]
fn nonsense_values_are_refused() {
    need_root!();
    let berth = Berth::new();
    let nowhere = Path::new("/nonexistent-bind-source");
    let cases: &[(&[&str], &str)] = &[
        (
            &["-m", "99999999999999999999999"],
            "invalid size: '99999999999999999999999'",
        ),
        (&["-m", "99999999999g"], "invalid size: '99999999999g'"),
        (
            &["--cpus", "inf"],
            "failed to parse inf as a rational number",
        ),
        (
            &["--cpus", "nan"],
            "failed to parse nan as a rational number",
        ),
        (&["-v", ":/x"], "empty section between colons"),
    ];
    for (flags, says) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend([IMAGE, "true"]);
        let ran = berth.run(&args);
        assert_eq!(ran.code(), Some(125), "{args:?}: {}", ran.stderr);
        let line = one_line(&args, &ran);
        assert!(line.contains(says), "{flags:?} should say {says:?}: {line}");
        assert_nothing_left(&berth, flags, nowhere);
    }
}

/// The docker CLI's line and exit status for `args`: it parses flags before it talks to a
/// daemon, and none answers at the address it is given.
fn docker(args: &[&str]) -> (String, Option<i32>) {
    let mut command = Command::new("docker");
    command
        .args(args)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join(unique("docker-cfg")),
        );
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    let first = ran.stderr.lines().next().unwrap_or_default();
    let line = first.strip_prefix("docker: ").unwrap_or(first);
    (line.replace("docker", "berth"), ran.code())
}

/// Usage errors of every kind of command are one line with Docker's words and exit status
/// (125 for a flag, 1 for the arguments or the command), compared with the docker CLI itself;
/// `--help` still prints the help.
#[test]
fn usage_errors_are_one_line_as_docker_says_them() {
    need_root!();
    let berth = Berth::new();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--bogus", "busybox"], "berth run"),
        (&["run", "-Z", "busybox"], "berth run"),
        (&["run", "-m", "-5", "busybox"], "berth run"),
        (&["run", "--cpus", "inf", "busybox"], "berth run"),
        (&["run"], "berth run"),
        (&["create", "--bogus", "busybox"], "berth create"),
        (
            &["container", "run", "--bogus", "busybox"],
            "berth container run",
        ),
        (&["ps", "--bogus"], "berth ps"),
        (&["rm"], "berth rm"),
        (&["rename", "a"], "berth rename"),
        (&["rename", "a", "b", "c"], "berth rename"),
        (&["volume", "ls", "extra"], "berth volume ls"),
        (
            &["network", "create", "--bogus", "n"],
            "berth network create",
        ),
        (&["images", "--bogus"], "berth images"),
        (&["bogus"], "berth"),
    ];
    let reference = have("docker");
    if !reference {
        println!("no docker CLI here: berth's lines are checked for their shape only");
    }
    for (args, command) in cases {
        let ran = berth.run(args);
        let line = one_line(args, &ran);
        let see = format!("; see '{command} --help'");
        assert!(line.ends_with(&see), "{args:?}: ends with {see:?}: {line}");
        if reference {
            let (says, code) = docker(args);
            assert!(
                line.contains(&says),
                "{args:?}: docker says {says:?}: {line}"
            );
            assert_eq!(ran.code(), code, "{args:?}: docker's exit status: {line}");
        }
    }
    let help = berth.run(&["run", "--help"]);
    assert!(
        help.success() && help.stdout.contains("Usage: berth run"),
        "{help:?}"
    );
    let help = berth.run(&["volume", "--help"]);
    assert!(
        help.success() && help.stdout.contains("Usage: berth volume"),
        "{help:?}"
    );
}

/// The test image with its /etc files as symbolic links, as many real images have them: one
/// dangling (systemd-resolved's stub), one climbing out of the root with `..`, one to a file
/// the image has (the engine's file is mounted over that file), and a volume target that is a
/// dangling absolute link.
fn import_linked_image(berth: &Berth, escape: &str) -> String {
    let dir = tempfile::tempdir().expect("image dir");
    let root = dir.path().join("rootfs");
    fs::create_dir(&root).expect("rootfs");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-xf")
        .arg(image_tar())
        .status()
        .expect("tar -x");
    assert!(status.success());
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, root.join(name)).expect("symlink");
    };
    link("../run/systemd/resolve/stub-resolv.conf", "etc/resolv.conf");
    link(&format!("../../../../../..{escape}/hosts"), "etc/hosts");
    fs::write(root.join("etc/hostname.image"), "from-the-image\n").expect("hostname");
    link("hostname.image", "etc/hostname");
    link("/srv/data", "data");
    let tar = dir.path().join("linked.tar");
    let status = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar -c");
    assert!(status.success());
    let reference = "linked:1";
    berth.ok(&["import", tar.to_str().expect("UTF-8"), reference]);
    reference.to_string()
}

/// Images whose /etc/resolv.conf, /etc/hosts, /etc/hostname and a volume's target are symbolic
/// links run; each file shows what it shows for an image without links (the engine's), the
/// links stay links, and the one climbing out of the root makes its file inside the root.
#[test]
fn symlinked_etc_files_and_volume_targets() {
    need_root!();
    let berth = Berth::new();
    let escape = format!("/tmp/{}", unique("berth-escape"));
    let linked = import_linked_image(&berth, &escape);
    let flags = [
        "--network",
        "none",
        "-h",
        "myhost",
        "--add-host",
        "foo:1.2.3.4",
        "--dns",
        "9.9.9.9",
        "--dns-search",
        "example.org",
    ];
    let show =
        "for f in /etc/resolv.conf /etc/hosts /etc/hostname; do echo \"== $f\"; cat $f; done";
    let run = |image: &str| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(&flags);
        args.extend([image, "sh", "-c", show]);
        berth.ok(&args)
    };
    let plain = run(IMAGE);
    assert!(plain.contains("nameserver 9.9.9.9") && plain.contains("1.2.3.4\tfoo"));
    assert_eq!(
        run(&linked),
        plain,
        "the linked image sees the engine's files"
    );
    assert!(
        !Path::new(&escape).exists(),
        "a link made {escape} on the host"
    );
    let links = berth.ok(&[
        "run",
        "--rm",
        &linked,
        "sh",
        "-c",
        "for f in /etc/resolv.conf /etc/hosts /etc/hostname; do readlink $f; done",
    ]);
    let links: Vec<&str> = links.lines().collect();
    assert_eq!(links.len(), 3, "{links:?}");
    assert_eq!(links[0], "../run/systemd/resolve/stub-resolv.conf");
    assert!(links[1].ends_with(&format!("{escape}/hosts")), "{links:?}");
    assert_eq!(links[2], "hostname.image", "the links stay links");
    let out = berth.ok(&[
        "run",
        "--rm",
        "-v",
        "linked-data:/data",
        &linked,
        "sh",
        "-c",
        "echo kept > /data/file && cat /srv/data/file",
    ]);
    assert_eq!(out, "kept");
    let mountpoint = berth.ok(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}}",
        "linked-data",
    ]);
    let kept = fs::read_to_string(Path::new(&mountpoint).join("file")).expect("volume file");
    assert_eq!(kept, "kept\n");
    assert!(
        !Path::new(&escape).exists(),
        "a link made {escape} on the host"
    );
}

/// `--timens container:<name>` joins that container's time namespace: the engine gave the
/// runtime no path for it, and every such start failed as "a bug in berth".
#[test]
fn a_containers_time_namespace_is_joined() {
    need_root!();
    let berth = Berth::new();
    let clock = [
        "run",
        "-d",
        "--name",
        "clock",
        "--timens",
        "private",
        "--time-offset",
        "monotonic=86400",
        IMAGE,
        "sleep",
        "1000",
    ];
    berth.ok(&clock);
    let pid = berth.ok(&["inspect", "--format", "{{.State.Pid}}", "clock"]);
    let theirs = fs::read_link(format!("/proc/{pid}/ns/time")).expect("its time namespace");
    let joined = ["run", "--rm", "--timens", "container:clock", IMAGE];
    let mut args = joined.to_vec();
    args.extend(["readlink", "/proc/self/ns/time"]);
    assert_eq!(berth.ok(&args), theirs.to_string_lossy());
}
