//! Black-box tests of issue 10's robustness: images whose /etc files or volume targets are
//! symbolic links run, with the links resolved inside the container's root.
//!
//! Needs root and `cargo build -p berth` beforehand.

use std::fs;
use std::path::Path;
use std::process::Command;

use berth_harness::image::{image_tar, Berth, IMAGE};
use berth_harness::{need_root, unique};

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
