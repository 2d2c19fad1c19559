//! Bad and hostile input: syntax errors, failing RUNs, sources that try to leave the context,
//! destinations that try to leave the image, and builds stopped by a signal or killed.

use std::fs;
use std::path::{Path, PathBuf};

use berth_harness::image::Berth;
use berth_harness::need_root;
use tempfile::TempDir;

use crate::{berth_build, build_progress, context};

#[test]
fn a_failing_run_shows_its_output_and_leaves_nothing() {
    need_root!();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo about-to-fail && exit 3\n",
    )]);
    let berth = Berth::new();
    let before = berth.ok(&["images", "-q"]);
    let ran = berth.run(&["build", "-t", "broken", &ctx.path().to_string_lossy()]);
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("about-to-fail"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("process \"/bin/sh -c echo about-to-fail && exit 3\" did not complete successfully: exit code: 3"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        berth.ok(&["images", "-q"]),
        before,
        "a failed build left an image"
    );
    let tmp: Vec<_> = fs::read_dir(berth.root().join("build/tmp"))
        .expect("build/tmp")
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "a failed build left {tmp:?}");
}

#[test]
fn syntax_errors_name_the_file_line_and_instruction() {
    need_root!();
    let berth = Berth::new();
    for (text, want) in [
        (
            "FROM busybox\nFOO bar\n",
            "Dockerfile:2: unknown instruction: FOO",
        ),
        (
            "FROM busybox\nCOPY onlyone\n",
            "Dockerfile:2: COPY requires at least two arguments",
        ),
        (
            "RUN true\n",
            "Dockerfile:1: no build stage in current context",
        ),
        (
            "FROM busybox\nCOPY missing.txt /x\n",
            "\"/missing.txt\": not found",
        ),
        (
            "FROM busybox\nADD https://example.com/f /f\n",
            "ADD https://example.com/f: berth build does not download remote files",
        ),
    ] {
        let ctx = context(&[("Dockerfile", text)]);
        let ran = berth.run(&["build", "-q", &ctx.path().to_string_lossy()]);
        assert_eq!(ran.code(), Some(1), "{text:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(want), "{text:?}: {}", ran.stderr);
    }
}

#[test]
fn copy_sources_cannot_leave_the_context() {
    need_root!();
    let berth = Berth::new();
    for source in [
        "../../../../etc/hostname",
        "escape/hostname",
        "absolute",
        "escape-dir/",
    ] {
        let dockerfile = format!("FROM busybox\nCOPY {source} /stolen\n");
        let ctx = context(&[
            ("Dockerfile", &dockerfile),
            ("escape", "-> /etc"),
            ("escape-dir", "-> ../../../../../etc"),
            ("absolute", "-> /etc/hostname"),
        ]);
        let ran = berth.run(&["build", "-q", &ctx.path().to_string_lossy()]);
        assert_eq!(
            ran.code(),
            Some(1),
            "COPY {source} was allowed: {}",
            ran.stdout
        );
        assert!(ran.stderr.contains("not found"), "{source}: {}", ran.stderr);
    }
}

#[test]
fn destinations_resolve_inside_the_image() {
    need_root!();
    let name = berth_harness::unique("escaped");
    let outside = Path::new("/tmp").join(&name);
    // An image link pointing up and out, then a COPY and an ADD through it.
    let archive = tempfile::tempdir().expect("archive dir");
    let tar_path = archive.path().join("links.tar");
    let mut builder = tar::Builder::new(fs::File::create(&tar_path).expect("tar"));
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    link.set_uid(0);
    link.set_gid(0);
    builder
        .append_link(&mut link, "hop", "../../../../../../tmp")
        .expect("link entry");
    let mut file = tar::Header::new_gnu();
    file.set_size(4);
    file.set_mode(0o644);
    file.set_uid(0);
    file.set_gid(0);
    builder
        .append_data(&mut file, format!("hop/{name}-add"), &b"add\n"[..])
        .expect("file entry");
    builder.finish().expect("tar finish");
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\nRUN ln -s ../../../../tmp /up\nCOPY f /up/{name}\nADD links.tar /\n"
        ),
    )]);
    fs::write(ctx.path().join("f"), "copied\n").expect("f");
    fs::copy(&tar_path, ctx.path().join("links.tar")).expect("tar into context");
    let berth = Berth::new();
    let image = berth_build(&berth, ctx.path(), "contained", &[]);
    assert!(
        !outside.exists(),
        "COPY wrote {} on the host",
        outside.display()
    );
    assert!(
        !Path::new(&format!("/tmp/{name}-add")).exists(),
        "ADD wrote on the host"
    );
    assert!(
        image.tree.contains_key(&format!("tmp/{name}")),
        "COPY through the link missed the image's /tmp"
    );
    assert!(
        image.tree.contains_key(&format!("tmp/{name}-add")),
        "ADD through the link missed the image's /tmp"
    );
}

/// Starts `berth build` of a RUN that prints "started" and sleeps; returns it once it printed
/// (the command is written so that its own line in the progress does not say it),
/// with the file its stderr goes to.
fn build_in_a_long_run(berth: &Berth, ctx: &Path) -> (std::process::Child, PathBuf) {
    let log = ctx.join("build.log");
    let mut cmd = berth.command();
    cmd.args(["build", &ctx.to_string_lossy()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&log).expect("log"));
    let child = cmd.spawn().expect("berth build");
    berth_harness::eventually("the RUN step to start", || {
        fs::read_to_string(&log)
            .ok()?
            .contains(" started")
            .then_some(())
    });
    (child, log)
}

fn long_run_context() -> TempDir {
    context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo sta\"\"rted && sleep 1000\n",
    )])
}

fn build_dirs(berth: &Berth) -> Vec<String> {
    fs::read_dir(berth.root().join("build/tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("build-"))
        .collect()
}

#[test]
fn a_signal_cancels_the_build_and_leaves_nothing() {
    need_root!();
    let berth = Berth::new();
    let ctx = long_run_context();
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let (mut child, log) = build_in_a_long_run(&berth, ctx.path());
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal the build");
        let status = child.wait().expect("wait for the build");
        let err = fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(status.code(), Some(1), "{signal}: {err}");
        assert!(err.contains("the build was cancelled"), "{err}");
        assert!(
            build_dirs(&berth).is_empty(),
            "{signal} left {:?}",
            build_dirs(&berth)
        );
    }
}

#[test]
fn a_lease_half_written_by_a_killed_build_is_swept_too() {
    need_root!();
    // Killed between writing its lease's temporary and renaming it, a step leaves
    // `.<ip>_<step id>.tmp` in the default network's lease directory: no lease, but the
    // step's all the same, and a build of any root may leave it there.
    let berth = Berth::new();
    let next = context(&[("Dockerfile", "FROM busybox\nRUN true\n")]);
    build_progress(&berth, next.path(), &["-q"]);
    let out = berth.ok(&["network", "inspect", "bridge"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("network inspect JSON");
    let id = v[0]["Id"].as_str().expect("the bridge's id");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    let step = format!("build-t{}n{nanos}-1", std::process::id());
    let tmp = Path::new("/run/berth/network")
        .join(id)
        .join("leases")
        .join(format!(".172.17.255.250_{step}.tmp"));
    // The other tests' roots would find it too, and count it theirs, until it is swept.
    let paused = berth_harness::image::pause_lease_checks();
    fs::write(&tmp, b"{\"container_id\": ").expect("a killed write's temporary");
    build_progress(&berth, next.path(), &["-q"]);
    let left = tmp.exists();
    if left {
        let _ = fs::remove_file(&tmp);
    }
    drop(paused);
    assert!(!left, "{} left", tmp.display());
    // Dropping `berth` checks that no lease of a step that no longer runs is left.
}

/// The default network's endpoints (`network inspect bridge`) of the build whose directory is
/// `build`: its steps' ids (`<build>-<n>`) and host veths.
fn step_endpoints(berth: &Berth, build: &str) -> Vec<(String, String)> {
    let out = berth.ok(&["network", "inspect", "bridge"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("network inspect JSON");
    let containers = v[0]["Containers"].as_object().cloned().unwrap_or_default();
    containers
        .into_iter()
        .filter(|(id, _)| id.starts_with(&format!("{build}-")))
        .map(|(id, e)| (id, e["EndpointID"].as_str().unwrap_or_default().to_string()))
        .collect()
}

#[test]
fn the_next_build_sweeps_what_a_killed_one_left() {
    need_root!();
    let berth = Berth::new();
    let ctx = long_run_context();
    let (mut child, _) = build_in_a_long_run(&berth, ctx.path());
    child.kill().expect("SIGKILL the build");
    child.wait().expect("wait for the build");
    let dirs = build_dirs(&berth);
    assert_eq!(dirs.len(), 1, "the killed build's directory");
    // The step still runs, on the default network as `docker build`'s: its address is leased.
    let endpoints = step_endpoints(&berth, &dirs[0]);
    assert_eq!(endpoints.len(), 1, "the killed step's lease: {endpoints:?}");
    let next = context(&[("Dockerfile", "FROM busybox\nRUN true\n")]);
    build_progress(&berth, next.path(), &["-q"]);
    assert!(
        build_dirs(&berth).is_empty(),
        "left {:?}",
        build_dirs(&berth)
    );
    // Its address and veth are freed with it: the default network is the machine's.
    assert_eq!(step_endpoints(&berth, &dirs[0]), Vec::new());
    let veth = &endpoints[0].1;
    assert!(
        !Path::new("/sys/class/net").join(veth).exists(),
        "the killed step's veth {veth}"
    );
    // Dropping `berth` checks that no mount and no runtime state of the killed step is left.
}

#[test]
fn a_build_killed_as_its_step_starts_is_swept_too() {
    need_root!();
    // Killed as the RUN begins, a build may die before, during or after the runtime's create:
    // half-created, its container has a state directory and no state.json.
    let berth = Berth::new();
    let ctx = long_run_context();
    let log = ctx.path().join("build.log");
    let mut killed = Vec::new();
    for _ in 0..8 {
        let mut cmd = berth.command();
        cmd.args(["build", &ctx.path().to_string_lossy()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&log).expect("log"));
        let mut child = cmd.spawn().expect("berth build");
        berth_harness::eventually("the RUN step's line", || {
            fs::read_to_string(&log)
                .ok()?
                .contains("] RUN")
                .then_some(())
        });
        child.kill().expect("SIGKILL the build");
        child.wait().expect("wait for the build");
        killed.extend(
            build_dirs(&berth)
                .into_iter()
                .filter(|d| !killed.contains(d))
                .collect::<Vec<_>>(),
        );
    }
    let next = context(&[("Dockerfile", "FROM busybox\nRUN true\n")]);
    build_progress(&berth, next.path(), &["-q"]);
    assert!(
        build_dirs(&berth).is_empty(),
        "left {:?}",
        build_dirs(&berth)
    );
    for dir in &killed {
        assert_eq!(step_endpoints(&berth, dir), Vec::new(), "{dir}'s lease");
    }
    // Dropping `berth` checks that no runtime state of the killed steps is left.
}
