//! The escapes of issue 10, black box, through `berth` and through `berth-runc`, each checked
//! against the reference runtime where one runs here: a working directory through a host
//! descriptor (CVE-2024-21626), an exec'd process visible before it is inside (CVE-2016-9962
//! class), the caller's terminal kept by a container (TIOCSTI), a device node widening a
//! deny-all device cgroup, and mounts inside /proc (CVE-2019-16884 class).
//!
//! Each attack tries to write a file in the host's /tmp: the test fails if that file appears.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_harness::image::{Berth, IMAGE};
use berth_harness::{have, need_root, run_with_timeout, unique, Bundle, Ran, Runtime};
use oci_spec::runtime::{Capability, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

/// A file in the host's /tmp that no container may create; removed when dropped.
struct HostMarker(PathBuf);

impl HostMarker {
    fn new() -> HostMarker {
        HostMarker(Path::new("/tmp").join(unique("berth-escape")))
    }

    fn name(&self) -> String {
        self.0.file_name().unwrap().to_string_lossy().into_owned()
    }

    #[track_caller]
    fn assert_absent(&self, how: &str) {
        assert!(
            !self.0.exists(),
            "{how}: a container wrote the host's {}",
            self.0.display()
        );
    }
}

impl Drop for HostMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Climbs far enough from any host directory to reach `/`, then into /tmp.
fn climb_to(marker: &HostMarker) -> String {
    format!("{}tmp/{}", "../".repeat(24), marker.name())
}

#[test]
fn run_with_a_workdir_through_a_host_descriptor_is_refused() {
    need_root!();
    let berth = Berth::new();
    let marker = HostMarker::new();
    let touch = format!("touch {}; pwd", climb_to(&marker));
    for fd in 3..=12 {
        let cwd = format!("/proc/self/fd/{fd}");
        let ran = berth.run(&["run", "--rm", "-w", &cwd, IMAGE, "sh", "-c", &touch]);
        marker.assert_absent(&format!("run -w {cwd}"));
        assert_eq!(ran.code(), Some(125), "run -w {cwd}: {ran:?}");
        assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    }
    assert!(berth.ids().is_empty(), "a refused run left a container");
}

#[test]
fn an_image_whose_workdir_is_a_host_descriptor_cannot_reach_the_host() {
    need_root!();
    let berth = Berth::new();
    let marker = HostMarker::new();
    let touch = format!("touch {}; pwd", climb_to(&marker));
    for fd in 3..=8 {
        let image = format!("hostile-workdir-{fd}");
        let change = format!("WORKDIR /proc/self/fd/{fd}");
        let tar = berth_harness::image::image_tar();
        berth.ok(&["import", "-c", &change, tar.to_str().unwrap(), &image]);
        let ran = berth.run(&["run", "--rm", &image, "sh", "-c", &touch]);
        marker.assert_absent(&format!("an image with {change}"));
        assert_eq!(ran.code(), Some(125), "{change}: {ran:?}");
    }
}

#[test]
fn exec_with_a_workdir_through_a_host_descriptor_is_refused() {
    need_root!();
    let berth = Berth::new();
    let marker = HostMarker::new();
    berth.ok(&["run", "-d", "--name", "cwd", IMAGE, "sleep", "1000"]);
    let touch = format!("touch {}; pwd", climb_to(&marker));
    for fd in 3..=12 {
        let cwd = format!("/proc/self/fd/{fd}");
        let ran = berth.run(&["exec", "-w", &cwd, "cwd", "sh", "-c", &touch]);
        marker.assert_absent(&format!("exec -w {cwd}"));
        assert!(!ran.success(), "exec -w {cwd} ran: {ran:?}");
    }
}

/// A bundle whose process runs `script` with its working directory at `cwd`.
fn bundle_in(cwd: &str, script: &str) -> Bundle {
    let mut bundle = Bundle::new(&["sh", "-c", script]);
    bundle
        .spec_mut()
        .process_mut()
        .as_mut()
        .unwrap()
        .set_cwd(cwd.into());
    bundle.write();
    bundle
}

#[test]
fn runc_run_with_a_cwd_through_a_host_descriptor_is_refused_as_by_runc() {
    need_root!();
    let marker = HostMarker::new();
    let touch = format!("touch {}; pwd", climb_to(&marker));
    let mut references = vec![Runtime::new()];
    if have("/usr/sbin/runc") {
        references.push(Runtime::with_binary("/usr/sbin/runc"));
    }
    for rt in &references {
        for fd in 3..=10 {
            let cwd = format!("/proc/self/fd/{fd}");
            let bundle = bundle_in(&cwd, &touch);
            let ran = rt.run_container(&unique("cwd"), &bundle);
            marker.assert_absent(&format!("{} run with cwd {cwd}", rt.binary().display()));
            assert!(
                !ran.success(),
                "{} ran with cwd {cwd}: {ran:?}",
                rt.binary().display()
            );
        }
    }
}

/// Gives the bundle's process CAP_SYS_PTRACE in every set it has.
fn grant_ptrace(bundle: &mut Bundle) {
    let process = bundle.spec_mut().process_mut().as_mut().unwrap();
    let mut caps = process
        .capabilities()
        .clone()
        .expect("default capabilities");
    let add = |set: &Option<oci_spec::runtime::Capabilities>| {
        let mut set = set.clone().unwrap_or_default();
        set.insert(Capability::SysPtrace);
        Some(set)
    };
    caps.set_bounding(add(caps.bounding()));
    caps.set_effective(add(caps.effective()));
    caps.set_permitted(add(caps.permitted()));
    process.set_capabilities(Some(caps));
    bundle.write();
}

/// A container loop that writes the marker through the root of every process it can see, as
/// fast as it can: a process of the runtime visible with the host's root would take it.
fn hunter(marker: &HostMarker) -> String {
    format!(
        "while :; do for p in /proc/[0-9]*; do echo x > $p/root/tmp/{} 2>/dev/null; done; done",
        marker.name()
    )
}

#[test]
fn an_exec_is_never_visible_with_the_hosts_root_through_berth() {
    need_root!();
    let berth = Berth::new();
    let marker = HostMarker::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "hunter",
        "--cap-add",
        "SYS_PTRACE",
        IMAGE,
        "sh",
        "-c",
        &hunter(&marker),
    ]);
    for _ in 0..20 {
        berth.ok(&["exec", "hunter", "true"]);
        marker.assert_absent("berth exec into a container with CAP_SYS_PTRACE");
    }
    // The hunter did run: its own writes land in the container's /tmp.
    let inside = berth.ok(&["exec", "hunter", "ls", "/tmp"]);
    assert!(
        inside.contains(&marker.name()),
        "the hunter never ran: {inside}"
    );
}

#[test]
fn an_exec_is_never_visible_with_the_hosts_root_through_berth_runc() {
    need_root!();
    let marker = HostMarker::new();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sh", "-c", &hunter(&marker)]);
    grant_ptrace(&mut bundle);
    let id = unique("hunter");
    rt.create(&id, &bundle).ok();
    rt.start(&id).ok();
    for _ in 0..20 {
        rt.run(&["exec", &id, "true"]).ok();
        marker.assert_absent("berth-runc exec into a container with CAP_SYS_PTRACE");
    }
    rt.run(&["delete", "--force", &id]).ok();
}

/// Runs `command` (a shell line) in a new session whose controlling terminal is a pty, as a
/// person's shell would (util-linux's `script`): what it printed.
fn on_a_terminal(command: &str) -> Ran {
    let mut script = Command::new("script");
    script.args(["-qec", command, "/dev/null"]);
    run_with_timeout(script, berth_harness::COMMAND_TIMEOUT)
}

/// The container's answer to opening /dev/tty.
const TRY_TTY: &str = "if echo hi > /dev/tty; then echo TTY-OPENED; else echo TTY-REFUSED; fi";

#[test]
fn a_container_started_from_a_terminal_cannot_open_it() {
    need_root!();
    if !have("script") {
        berth_harness::skip!("needs script (util-linux)");
    }
    let berth = Berth::new();
    let berth_cmd = |args: &str| {
        format!(
            "{} --root {} {args}",
            berth_harness::image::berth_bin().display(),
            berth.root().display()
        )
    };
    // Foreground without -t, and detached.
    let ran = on_a_terminal(&berth_cmd(&format!("run --rm {IMAGE} sh -c '{TRY_TTY}'")));
    assert!(ran.stdout.contains("TTY-REFUSED"), "{ran:?}");
    assert!(ran.stdout.contains("No such device or address"), "{ran:?}");
    let ran = on_a_terminal(&berth_cmd(&format!(
        "run -d --name detached {IMAGE} sh -c '{TRY_TTY}'"
    )));
    assert!(ran.success(), "{ran:?}");
    berth.ok(&["wait", "detached"]);
    let logs = berth.run(&["logs", "detached"]);
    assert!(logs.stdout.contains("TTY-REFUSED"), "{logs:?}");
}

#[test]
fn a_runc_container_without_a_terminal_cannot_open_the_callers() {
    need_root!();
    if !have("script") {
        berth_harness::skip!("needs script (util-linux)");
    }
    let mut runtimes = vec![Runtime::new()];
    if have("/usr/sbin/runc") {
        runtimes.push(Runtime::with_binary("/usr/sbin/runc"));
    }
    for rt in &runtimes {
        let bundle = Bundle::new(&["sh", "-c", TRY_TTY]);
        let id = unique("tty");
        let line = format!(
            "{} --root {} run --bundle {} {id}",
            rt.binary().display(),
            rt.root().display(),
            bundle.path().display()
        );
        let ran = on_a_terminal(&line);
        assert!(
            ran.stdout.contains("TTY-REFUSED"),
            "{}: {ran:?}",
            rt.binary().display()
        );
        rt.run(&["delete", "--force", &id]);
    }
}

/// A bundle whose device cgroup denies everything but lists /dev/kmsg to be created.
fn kmsg_bundle() -> Bundle {
    let mut bundle = Bundle::new(&[
        "sh",
        "-c",
        // A write: reading needs CAP_SYSLOG, which the bundle lacks whatever the cgroup says.
        "if echo berth-test-kmsg > /dev/kmsg; then echo KMSG-WRITTEN; else echo KMSG-DENIED; fi",
    ]);
    let linux = bundle.spec_mut().linux_mut().as_mut().unwrap();
    let mut kmsg = LinuxDevice::default();
    kmsg.set_path("/dev/kmsg".into())
        .set_typ(LinuxDeviceType::C)
        .set_major(1)
        .set_minor(11)
        .set_file_mode(Some(0o666));
    linux.set_devices(Some(vec![kmsg]));
    let mut deny = LinuxDeviceCgroup::default();
    deny.set_allow(false).set_access(Some("rwm".into()));
    let mut resources = linux.resources().clone().unwrap_or_default();
    resources.set_devices(Some(vec![deny]));
    linux.set_resources(Some(resources));
    bundle.write();
    bundle
}

#[test]
fn a_listed_device_stays_denied_by_a_deny_all_device_cgroup_as_under_runc() {
    need_root!();
    let mut runtimes = vec![Runtime::new()];
    if have("/usr/sbin/runc") {
        runtimes.push(Runtime::with_binary("/usr/sbin/runc"));
    }
    for rt in &runtimes {
        let bundle = kmsg_bundle();
        let ran = rt.run_container(&unique("kmsg"), &bundle);
        assert!(
            ran.stdout.contains("KMSG-DENIED"),
            "{}: {ran:?}",
            rt.binary().display()
        );
    }
}

#[test]
fn berth_refuses_a_volume_inside_proc() {
    need_root!();
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    for target in ["/proc/self/attr", "/proc/sys/kernel", "/proc/1"] {
        let volume = format!("{}:{target}", dir.path().display());
        let ran = berth.run(&["run", "--rm", "-v", &volume, IMAGE, "true"]);
        assert_eq!(ran.code(), Some(125), "-v {volume}: {ran:?}");
        assert!(ran.stderr.contains("inside /proc"), "{}", ran.stderr);
    }
    assert!(berth.ids().is_empty(), "a refused run left a container");
}

/// Adds a bind mount of `source` on `destination` to the bundle.
fn with_bind(bundle: &mut Bundle, source: &Path, destination: &str) {
    let mut mounts = bundle.spec().mounts().clone().unwrap_or_default();
    let mut m = oci_spec::runtime::Mount::default();
    m.set_destination(destination.into())
        .set_typ(Some("bind".into()))
        .set_source(Some(source.to_path_buf()))
        .set_options(Some(vec!["rbind".into()]));
    mounts.push(m);
    bundle.spec_mut().set_mounts(Some(mounts));
    bundle.write();
}

#[test]
fn mounts_inside_proc_are_refused_as_by_runc_even_through_a_symlink() {
    need_root!();
    let dir = tempfile::tempdir().unwrap();
    let mut runtimes = vec![Runtime::new()];
    if have("/usr/sbin/runc") {
        runtimes.push(Runtime::with_binary("/usr/sbin/runc"));
    }
    for rt in &runtimes {
        for destination in ["/proc/self/attr", "/evil"] {
            let mut bundle = Bundle::new(&["true"]);
            std::os::unix::fs::symlink("/proc/self/attr", bundle.rootfs().join("evil")).unwrap();
            with_bind(&mut bundle, dir.path(), destination);
            let ran = rt.run_container(&unique("proc"), &bundle);
            assert!(
                !ran.success(),
                "{} mounted {destination}: {ran:?}",
                rt.binary().display()
            );
        }
        // A tmpfs over /proc itself.
        let mut bundle = Bundle::new(&["true"]);
        let mut mounts = bundle.spec().mounts().clone().unwrap_or_default();
        for m in &mut mounts {
            if m.destination() == Path::new("/proc") {
                m.set_typ(Some("tmpfs".into()))
                    .set_source(Some("tmpfs".into()));
                m.set_options(None);
            }
        }
        bundle.spec_mut().set_mounts(Some(mounts));
        bundle.write();
        let ran = rt.run_container(&unique("proc"), &bundle);
        assert!(
            !ran.success(),
            "{} put a tmpfs on /proc",
            rt.binary().display()
        );
    }
}

/// True when a local user (nobody, no groups) can reach `path` on the host.
fn nobody_reaches(path: &Path) -> bool {
    let mut test = Command::new("setpriv");
    test.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        "/usr/bin/test",
        "-e",
    ])
    .arg(path);
    run_with_timeout(test, berth_harness::COMMAND_TIMEOUT).success()
}

/// What a container writes (a setuid copy of a shell, here) and what images hold (their
/// setuid programs, device nodes) stay out of local users' reach on the host: through a data
/// root any user can traverse (0755, as one is made by default), a user ran a container's
/// setuid-root file from its upper layer and got euid 0 (an adversary helper's finding; Docker's
/// CVE-2021-41091). Each container's directory is root's (0710) and the image store 0700; a
/// container with a user namespace still reaches its root filesystem through its group.
/// Volumes (and build caches) are root's alone too.
#[test]
fn local_users_cannot_reach_what_containers_and_images_hold() {
    need_root!();
    if !have("setpriv") {
        berth_harness::skipping(format_args!("needs setpriv"));
        return;
    }
    let berth = Berth::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(berth.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "held",
        "-v",
        "kept:/kept",
        IMAGE,
        "sh",
        "-c",
        "cp /bin/busybox /suid && chmod 4755 /suid && cp -p /suid /kept/suid && touch /ready \
         && sleep 1000",
    ]);
    berth_harness::eventually("the container's setuid file", || {
        berth
            .run(&["exec", "held", "test", "-e", "/ready"])
            .success()
            .then_some(())
    });
    let id = berth.ok(&["inspect", "-f", "{{.Id}}", "held"]);
    let dir = berth.root().join("containers").join(&id);
    let layer = std::fs::read_dir(berth.root().join("image/layers"))
        .unwrap()
        .map(|e| e.unwrap().path().join("diff/bin/busybox"))
        .find(|p| p.exists())
        .expect("the image's busybox in a layer");
    let volume = berth.root().join("volumes/kept/_data/suid");
    for path in [
        dir.join("upper/suid"),
        dir.join("rootfs/suid"),
        layer,
        volume,
    ] {
        assert!(path.exists(), "{}", path.display());
        assert!(
            !nobody_reaches(&path),
            "a local user reaches {}",
            path.display()
        );
    }
    // Through its group, the root of a container with a user namespace reaches its root.
    berth.ok(&["run", "--rm", "--userns", "auto", IMAGE, "true"]);
}
