//! A busybox image made on the spot from Debian's busybox-static, as a docker-archive tar: the
//! one format both `ctr images import` and `podman load` read. No registry, no network.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::run_ok;

/// The name the archive carries; `localhost/` keeps both clients from adding `docker.io/library`.
pub const IMAGE: &str = "localhost/berth-busybox:latest";

/// Where busybox-static puts its binary; the image holds nothing else, so it must be static.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets the tests call, plus a few a person poking at a failure would want.
const APPLETS: &[&str] = &[
    "sh", "true", "false", "echo", "sleep", "cat", "ls", "id", "env", "ps", "readlink", "hostname",
];

/// An image to build: busybox with its applets, plus `extra` files (host path, path in the
/// image), run as `cmd`.
pub struct Spec<'a> {
    pub name: &'a str,
    pub cmd: &'a [&'a str],
    pub extra: &'a [(&'a Path, &'a str)],
}

/// Builds `<dir>/busybox-image.tar` and returns its path.
pub fn busybox_archive(dir: &Path) -> PathBuf {
    let spec = Spec {
        name: IMAGE,
        cmd: &["sh"],
        extra: &[],
    };
    archive(dir, "busybox-image", &spec)
}

/// Builds `<dir>/<file>.tar` (using `<dir>/<file>-build` as scratch) from `spec` and returns its
/// path. Shells out to GNU tar and sha256sum, which every Debian has, rather than adding crates.
pub fn archive(dir: &Path, file: &str, spec: &Spec) -> PathBuf {
    let scratch = dir.join(format!("{file}-build"));
    let layer_root = scratch.join("layer");
    fs::create_dir_all(layer_root.join("bin")).expect("mkdir layer/bin");
    fs::copy(BUSYBOX, layer_root.join("bin/busybox")).expect("copy /bin/busybox");
    for applet in APPLETS {
        symlink("busybox", layer_root.join("bin").join(applet)).expect("applet symlink");
    }
    for (from, to) in spec.extra {
        let to = layer_root.join(to.trim_start_matches('/'));
        fs::create_dir_all(to.parent().expect("a file in a directory")).expect("mkdir for extra");
        fs::copy(from, &to)
            .unwrap_or_else(|e| panic!("copy {} into the image: {e}", from.display()));
    }
    // Mount points and the usual top-level directories, as in a real image; runtimes create
    // missing ones, but a client may stat them first.
    for dir in ["etc", "tmp", "proc", "sys", "dev", "root", "var", "run"] {
        fs::create_dir_all(layer_root.join(dir)).expect("mkdir in layer");
    }

    let archive = scratch.join("archive");
    fs::create_dir_all(&archive).expect("mkdir archive");
    let layer_tar = archive.join("layer.tar");
    // Owned by root, in a fixed order and time: the layer's digest does not depend on the host.
    run_ok(
        Command::new("tar")
            .args([
                "--numeric-owner",
                "--owner=0",
                "--group=0",
                "--sort=name",
                "--mtime=@0",
                "-cf",
            ])
            .arg(&layer_tar)
            .arg("-C")
            .arg(&layer_root)
            .arg("."),
    );
    let layer_digest = sha256(&layer_tar);
    let layer_dir = archive.join(&layer_digest);
    fs::create_dir(&layer_dir).expect("mkdir layer dir");
    fs::rename(&layer_tar, layer_dir.join("layer.tar")).expect("move layer.tar");

    let config = serde_json::json!({
        "architecture": go_arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": spec.cmd,
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_digest}")] },
        "history": [{ "created_by": "berth clients test: busybox-static" }],
    });
    let config_path = archive.join("config.json");
    fs::write(
        &config_path,
        serde_json::to_vec(&config).expect("config json"),
    )
    .expect("write config");
    let config_name = format!("{}.json", sha256(&config_path));
    fs::rename(&config_path, archive.join(&config_name)).expect("rename config");

    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [spec.name],
        "Layers": [format!("{layer_digest}/layer.tar")],
    }]);
    fs::write(
        archive.join("manifest.json"),
        serde_json::to_vec(&manifest).expect("manifest"),
    )
    .expect("write manifest.json");

    let tar = dir.join(format!("{file}.tar"));
    run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(&archive)
            .args([
                "manifest.json",
                &config_name,
                &format!("{layer_digest}/layer.tar"),
            ]),
    );
    tar
}

fn sha256(path: &Path) -> String {
    let out = run_ok(Command::new("sha256sum").arg(path));
    out.split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_owned()
}

/// The image config names architectures as Go does; both clients skip an image for another one.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
