//! What `berth version` and `berth --version` say of the build, as Docker's name their git
//! commit and Go version: `BERTH_GIT_COMMIT` (short, empty outside a git clone),
//! `BERTH_RUST_VERSION` (the rustc that compiles this crate) and `BERTH_VERSION_LINE`, what
//! follows the name in `berth --version` (`version 0.1.0, build 1a2b3c4`, as Docker's).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let commit = git(&["rev-parse", "--short=7", "HEAD"]).unwrap_or_default();
    println!("cargo:rustc-env=BERTH_GIT_COMMIT={commit}");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let line = match commit.as_str() {
        "" => format!("version {version}"),
        commit => format!("version {version}, build {commit}"),
    };
    println!("cargo:rustc-env=BERTH_VERSION_LINE={line}");
    println!("cargo:rustc-env=BERTH_RUST_VERSION={}", rust_version());
    println!("cargo:rerun-if-changed=build.rs");
    // The release binary is linked position-dependent (as Go links dockerd, containerd and
    // runc by default): a PIE's 16,000 relative relocations make the dynamic loader write every
    // page of its relocated read-only data (290 KiB) at each start, and those pages stay
    // private to the process. Every container's monitor is such a process: without them its
    // idle PSS is 0.29 MiB smaller, and each start (the CLI's, the monitor's) has 80 page
    // faults fewer. What it gives up is the random base of this binary's own code (libraries,
    // heap, stack and mappings stay randomized). Debug builds stay PIE. (bench/README.md)
    // scripts/lib.sh's build_fast_berth links the release binary static as well: it adds
    // `-C relocation-model=static` to crt-static for this -no-pie (a static-pie linked -no-pie
    // crashes at its start).
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bin=berth=-no-pie");
    }
    // What scripts/link-text-order, build_fast_berth's linker, lays out first: a new list is a
    // new link. Only when it is there (cargo reruns every build for a missing file).
    if Path::new("text-order").exists() {
        println!("cargo:rerun-if-changed=text-order");
    }
    // Run again when HEAD moves: HEAD itself (a checkout) and the branch it names (a commit),
    // loose or packed. Only files that exist: cargo reruns every build for a missing one.
    for file in head_files() {
        if file.exists() {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    }
}

/// `git ARGS` in this crate's directory, its output trimmed; None without git or a clone.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| text.trim().to_string())
}

fn head_files() -> Vec<PathBuf> {
    let absolute = |what: &str| git(&["rev-parse", "--path-format=absolute", what]);
    let (Some(dir), Some(common)) = (absolute("--git-dir"), absolute("--git-common-dir")) else {
        return Vec::new();
    };
    let mut files = vec![Path::new(&dir).join("HEAD")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(Path::new(&common).join(branch));
        files.push(Path::new(&common).join("packed-refs"));
    }
    files
}

/// `1.89.0` of `rustc 1.89.0 (29483883e 2025-08-04)`.
fn rust_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("--version").output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}
