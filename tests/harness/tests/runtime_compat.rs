//! Black-box tests of berth-runc against the reference, runc (issue 11, "runc compatibility in
//! every corner"): each case runs the same busybox bundle under /usr/sbin/runc and under
//! berth-runc and compares what each did, rather than asserting what we believe runc does.

use std::path::{Path, PathBuf};

use berth_harness::{eventually, have, need_root, skip, unique, Bundle, Ran, Runtime};
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

/// Edits the bundle's config as JSON (shorter than oci-spec's setters for nested fields), and
/// writes it.
fn edit(bundle: &mut Bundle, f: impl FnOnce(&mut Value)) {
    let mut v = serde_json::to_value(bundle.spec()).expect("spec as JSON");
    f(&mut v);
    *bundle.spec_mut() = serde_json::from_value(v).expect("edited spec");
    bundle.write();
}

/// A cgroups path of its own for each run, so that the two runtimes never share one.
fn own_cgroup(bundle: &mut Bundle) -> String {
    let cg = format!("/{}", unique("berth-compat"));
    edit(bundle, |v| v["linux"]["cgroupsPath"] = json!(cg));
    cg
}

/// `file` of `controller` in the cgroup `cg`: in the controller's v1 hierarchy if it has one,
/// else in the unified one.
fn cgroup_file(cg: &str, controller: &str, file: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup").join(controller);
    let base = if v1.join("cgroup.procs").exists() {
        v1
    } else {
        PathBuf::from("/sys/fs/cgroup")
    };
    base.join(cg.trim_start_matches('/')).join(file)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// `run --detach` of `bundle` as `id`, which must succeed.
fn run_detached(rt: &Runtime, bundle: &Bundle, id: &str) {
    rt.run(&["run", "--detach", "--bundle", path(bundle.path()), id])
        .ok();
}

fn update(rt: &Runtime, id: &str, flags: &[&str]) -> Ran {
    let mut args = vec!["update"];
    args.extend_from_slice(flags);
    args.push(id);
    rt.run(&args)
}

#[test]
fn a_zero_pids_limit_sets_nothing_as_runc() {
    need_root!();
    need_runc!();
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let mut bundle = Bundle::new(&["sleep", "1000"]);
        let cg = own_cgroup(&mut bundle);
        edit(&mut bundle, |v| {
            v["linux"]["resources"] = json!({"pids": {"limit": 0}})
        });
        let id = unique("pids");
        run_detached(&rt, &bundle, &id);
        let max = cgroup_file(&cg, "pids", "pids.max");
        let mut values = vec![read(&max)];
        for limit in ["10", "0", "-1"] {
            update(&rt, &id, &["--pids-limit", limit]).ok();
            values.push(read(&max));
        }
        rt.run(&["delete", "--force", &id]).ok();
        seen.push((name, values));
    }
    assert_eq!(
        seen[0].1, seen[1].1,
        "pids.max after create, update 10, 0, -1: {seen:?}"
    );
}

#[test]
fn memory_and_swap_limits_update_in_the_order_the_kernel_takes_them() {
    need_root!();
    need_runc!();
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let mut bundle = Bundle::new(&["sleep", "1000"]);
        let cg = own_cgroup(&mut bundle);
        edit(&mut bundle, |v| {
            v["linux"]["resources"] = json!({"memory": {"limit": 67108864, "swap": 96468992}})
        });
        let v1 = Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
        let (limit, swap) = if v1 {
            ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        } else {
            ("memory.max", "memory.swap.max")
        };
        let id = unique("mem");
        run_detached(&rt, &bundle, &id);
        let (limit, swap) = (
            cgroup_file(&cg, "memory", limit),
            cgroup_file(&cg, "memory", swap),
        );
        if !swap.exists() {
            skip!("needs swap accounting ({})", swap.display());
        }
        let mut values = vec![("create".to_string(), true, read(&limit), read(&swap))];
        for flags in [
            &["--memory", "67108864", "--memory-swap", "96468992"][..],
            &["--memory", "-1"],
            &["--memory", "33554432"],
            &["--memory", "134217728", "--memory-swap", "268435456"],
            &["--memory-swap", "-1"],
            &["--memory", "67108864", "--memory-swap", "67108864"],
        ] {
            let ok = update(&rt, &id, flags).success();
            values.push((flags.join(" "), ok, read(&limit), read(&swap)));
        }
        rt.run(&["delete", "--force", &id]).ok();
        seen.push((name, values));
    }
    assert_eq!(
        seen[0].1, seen[1].1,
        "(update, succeeded, limit, swap): {seen:#?}"
    );
}

#[test]
fn duplicate_additional_gids_are_one_group_as_under_runc() {
    need_root!();
    need_runc!();
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let mut bundle = Bundle::new(&["grep", "^Groups:", "/proc/self/status"]);
        edit(
            &mut bundle,
            |v| {
                v["process"]["user"] =
                    json!({"uid": 0, "gid": 0, "additionalGids": [7, 5, 7, 6, 5]})
            },
        );
        let ran = rt.run_container(&unique("gids"), &bundle);
        seen.push((name, ran.code(), ran.stdout));
    }
    assert_eq!(seen[0].1, seen[1].1, "{seen:?}");
    assert_eq!(seen[0].2, seen[1].2, "{seen:?}");
}

/// The directory of a cgroup made frozen, its freezer file and the value that thaws it: on
/// drop it is thawed and removed.
struct FrozenCgroup(PathBuf, &'static str, &'static str);

impl FrozenCgroup {
    /// `cg` frozen where runc looks: the v1 freezer if there is one, else cgroup2.
    fn new(cg: &str) -> FrozenCgroup {
        let v1 = Path::new("/sys/fs/cgroup/freezer");
        if v1.join("cgroup.procs").exists() {
            let dir = v1.join(cg.trim_start_matches('/'));
            FrozenCgroup::make(dir, "freezer.state", "FROZEN", "THAWED")
        } else {
            FrozenCgroup::cgroup2(Path::new("/sys/fs/cgroup"), cg)
        }
    }

    /// `cg` frozen in the cgroup2 hierarchy at `root`.
    fn cgroup2(root: &Path, cg: &str) -> FrozenCgroup {
        let dir = root.join(cg.trim_start_matches('/'));
        FrozenCgroup::make(dir, "cgroup.freeze", "1", "0")
    }

    fn make(dir: PathBuf, file: &'static str, frozen: &str, thawed: &'static str) -> Self {
        std::fs::create_dir_all(&dir).expect("make the cgroup");
        let cgroup = FrozenCgroup(dir, file, thawed);
        std::fs::write(cgroup.0.join(file), frozen).expect("freeze the cgroup");
        cgroup
    }
}

impl Drop for FrozenCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join(self.1), self.2);
        // A runtime that went on left its init in there: the test's Runtime deletes it.
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_frozen_cgroup_is_refused_at_once_as_runc_refuses_it() {
    need_root!();
    need_runc!();
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let mut bundle = Bundle::new(&["sleep", "1000"]);
        let cg = own_cgroup(&mut bundle);
        let frozen = FrozenCgroup::new(&cg);
        let id = unique("frozen");
        let ran = rt.run(&["run", "--detach", "--bundle", path(bundle.path()), &id]);
        let said = ran
            .stderr
            .contains("container's cgroup unexpectedly frozen");
        let listed = rt.run(&["list", "--quiet"]).ok();
        // The refused cgroup is the caller's: left as it was.
        let kept = frozen.0.is_dir();
        drop(frozen);
        seen.push((name, ran.code(), said, listed.trim().to_string(), kept));
    }
    assert_eq!(seen[0].1, seen[1].1, "exit codes: {seen:?}");
    assert!(seen.iter().all(|s| s.2), "runc's words: {seen:?}");
    assert_eq!(seen[0].3, seen[1].3, "containers left: {seen:?}");
    assert_eq!(seen[0].4, seen[1].4, "the frozen cgroup kept: {seen:?}");
}

/// On a hybrid host berth freezes through the cgroup2 side, so a cgroup frozen there is
/// refused too. runc 1.1 checks only the v1 freezer and hangs: nothing to compare with.
#[test]
fn a_cgroup_frozen_on_the_hybrid_cgroup2_side_is_refused_too() {
    need_root!();
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !unified.join("cgroup.procs").exists() {
        skip!("needs a hybrid host ({} is not cgroup2)", unified.display());
    }
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "1000"]);
    let cg = own_cgroup(&mut bundle);
    let frozen = FrozenCgroup::cgroup2(unified, &cg);
    let id = unique("frozen2");
    let ran = rt.run(&["run", "--detach", "--bundle", path(bundle.path()), &id]);
    assert_eq!(ran.code(), Some(1), "{ran:?}");
    assert!(
        ran.stderr
            .contains("container's cgroup unexpectedly frozen"),
        "{ran:?}"
    );
    assert!(frozen.0.is_dir(), "the caller's cgroup was removed");
}

/// The container's /proc/self/cgroup with its id replaced by ID.
fn own_cgroups(rt: &Runtime, bundle: &Bundle) -> String {
    let id = unique("default-cg");
    let out = rt.run_container(&id, bundle).ok();
    out.replace(&id, "ID")
}

#[test]
fn without_a_cgroups_path_the_cgroup_is_runcs_default() {
    need_root!();
    need_runc!();
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let mut bundle = Bundle::new(&["cat", "/proc/self/cgroup"]);
        edit(&mut bundle, |v| {
            v["linux"].as_object_mut().map(|l| l.remove("cgroupsPath"));
            let ns = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
            ns.retain(|n| n["type"] != "cgroup");
        });
        seen.push((name, own_cgroups(&rt, &bundle)));
    }
    assert_eq!(seen[0].1, seen[1].1, "{seen:#?}");
}

/// A tmpfs mounted on the host, unmounted (lazily) on drop.
struct HostMount(PathBuf);

impl HostMount {
    fn tmpfs(at: &Path) -> HostMount {
        std::fs::create_dir_all(at).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "berth-compat"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs on {}", at.display());
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A mount spec entry.
fn bind(source: &Path, destination: &str, options: &[&str]) -> Value {
    json!({"destination": destination, "type": "bind", "source": source, "options": options})
}

fn add_mount(bundle: &mut Bundle, mount: Value) {
    edit(bundle, |v| {
        v["mounts"].as_array_mut().expect("mounts").push(mount)
    });
}

/// A shell script run with the bundle's busybox (whose applets are not all linked).
fn script(text: &str) -> Vec<String> {
    vec!["/bin/busybox".into(), "sh".into(), "-c".into(), text.into()]
}

/// Prints whether each path can be written, then each mount under `prefix` with its options.
const WRITABLE_AND_OPTIONS: &str = r#"for f in "$@"; do
  if busybox touch "$f" 2>/dev/null; then echo "$f writable"; else echo "$f read-only"; fi
done
busybox awk -v p="$PREFIX" 'index($5, p) == 1 {print $5, $6}' /proc/self/mountinfo"#;

#[test]
fn recursive_mount_options_reach_the_mounts_below_as_under_runc() {
    need_root!();
    need_runc!();
    let src = tempfile::tempdir().expect("source dir");
    let _sub = HostMount::tmpfs(&src.path().join("sub"));
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let mut bundle = Bundle::new(&["true"]);
        add_mount(
            &mut bundle,
            bind(src.path(), "/mnt", &["rbind", "rro", "rnoexec"]),
        );
        edit(&mut bundle, |v| {
            let mut args = script(WRITABLE_AND_OPTIONS);
            args.extend(["sh".into(), "/mnt/a".into(), "/mnt/sub/a".into()]);
            v["process"]["args"] = json!(args);
            v["process"]["env"] = json!(["PATH=/bin", "PREFIX=/mnt"]);
        });
        let ran = rt.run_container(&unique("rro"), &bundle);
        seen.push((name, ran.code(), ran.stdout, ran.stderr));
    }
    assert_eq!(seen[0].1, seen[1].1, "{seen:#?}");
    assert_eq!(seen[0].2, seen[1].2, "{seen:#?}");
    assert!(seen[0].2.contains("/mnt/sub/a read-only"), "{seen:#?}");
}

/// Adds CAP_SYS_ADMIN to every capability set of the process, for mounts inside.
fn with_sys_admin(v: &mut Value) {
    if let Some(sets) = v["process"]["capabilities"].as_object_mut() {
        for set in sets.values_mut() {
            if let Some(caps) = set.as_array_mut() {
                caps.push(json!("CAP_SYS_ADMIN"));
            }
        }
    }
}

/// The host's mounts at or below `dir`.
fn host_mounts_under(dir: &Path) -> Vec<String> {
    let info = read(Path::new("/proc/self/mountinfo"));
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .map(String::from)
        .collect()
}

/// Mounts a tmpfs on /tmp/x, writes the propagation of / and of it (their optional fields,
/// peer group numbers dropped) to /out, then waits.
const MOUNT_INSIDE: &str = r#"busybox mkdir -p /tmp/x && busybox mount -t tmpfs t /tmp/x || exit 1
busybox awk '$5 == "/" || $5 == "/tmp/x" {
  o = $5; for (i = 7; $i != "-"; i++) { f = $i; sub(/:[0-9]+/, "", f); o = o " " f }; print o
}' /proc/self/mountinfo > /out
busybox touch /ready
exec busybox sleep 1000"#;

/// Runs MOUNT_INSIDE detached with `propagation` as linux.rootfsPropagation: whether it ran,
/// what it saw, and the host's mounts below its rootfs while it runs.
fn propagation_seen(
    rt: &Runtime,
    bundle: &mut Bundle,
    propagation: &str,
) -> (bool, String, Vec<String>) {
    edit(bundle, |v| {
        v["process"]["args"] = json!(script(MOUNT_INSIDE));
        v["linux"]["rootfsPropagation"] = json!(propagation);
        with_sys_admin(v);
    });
    let rootfs = bundle.rootfs();
    let _ = std::fs::remove_file(rootfs.join("ready"));
    let id = unique("propagation");
    let ran = rt.run(&["run", "--detach", "--bundle", path(bundle.path()), &id]);
    if !ran.success() {
        return (false, ran.stderr, Vec::new());
    }
    eventually("the container to mount its tmpfs", || {
        rootfs.join("ready").exists().then_some(())
    });
    let seen = read(&rootfs.join("out"));
    let host = host_mounts_under(&rootfs);
    rt.run(&["delete", "--force", &id]).ok();
    let host = host
        .iter()
        .map(|m| m.replace(path(&rootfs), "ROOTFS"))
        .collect();
    (true, seen, host)
}

/// A directory bind-mounted on itself and made shared, on the host: a shared parent mount for
/// a bundle inside it. Unmounted on drop.
struct SharedDir(tempfile::TempDir);

impl SharedDir {
    fn new() -> SharedDir {
        let dir = tempfile::tempdir().expect("dir");
        for args in [&["--bind", "X", "X"][..], &["--make-shared", "X"]] {
            let args: Vec<&std::ffi::OsStr> = args
                .iter()
                .map(|a| {
                    if *a == "X" {
                        dir.path().as_os_str()
                    } else {
                        a.as_ref()
                    }
                })
                .collect();
            let status = std::process::Command::new("mount").args(args).status();
            assert!(status.is_ok_and(|s| s.success()), "mount {:?}", dir.path());
        }
        SharedDir(dir)
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[test]
fn shared_root_propagation_works_and_mounts_inside_stay_inside_as_under_runc() {
    need_root!();
    need_runc!();
    let shared = SharedDir::new();
    for propagation in ["shared", "rshared", "rslave", "private"] {
        for in_shared_dir in [false, true] {
            let mut seen = Vec::new();
            for (name, rt) in runtimes() {
                let mut bundle = if in_shared_dir {
                    Bundle::new_in(shared.0.path(), &["true"])
                } else {
                    Bundle::new(&["true"])
                };
                seen.push((name, propagation_seen(&rt, &mut bundle, propagation)));
            }
            assert_eq!(
                seen[0].1, seen[1].1,
                "{propagation}, bundle in a shared mount: {in_shared_dir}: {seen:#?}"
            );
            assert!(seen[0].1 .0, "runc ran it: {seen:#?}");
        }
    }
}

/// Mounts a tmpfs on /mnt/sub (the volume), writes the propagation of /mnt (peer group numbers
/// dropped) to /out, then waits.
const MOUNT_IN_VOLUME: &str = r#"busybox mount -t tmpfs t /mnt/sub || exit 1
busybox awk '$5 == "/mnt" {
  o = $5; for (i = 7; $i != "-"; i++) { f = $i; sub(/:[0-9]+/, "", f); o = o " " f }; print o
}' /proc/self/mountinfo > /out
busybox touch /ready
exec busybox sleep 1000"#;

/// An rshared volume from a shared host mount: a mount the container makes in it reaches the
/// host, with an rshared root as with an rslave one, as under runc (Docker's `-v a:b:rshared`).
/// berth-runc made the old root a slave through ".", which after pivot_root is the new root:
/// every mount of the container became a slave, the volume too.
#[test]
fn an_rshared_volume_propagates_mounts_to_the_host_as_under_runc() {
    need_root!();
    need_runc!();
    let shared = SharedDir::new();
    let sub = shared.0.path().join("sub");
    std::fs::create_dir(&sub).expect("sub dir");
    for propagation in ["rshared", "rslave"] {
        let mut seen = Vec::new();
        for (name, rt) in runtimes() {
            let mut bundle = Bundle::new(&["true"]);
            add_mount(
                &mut bundle,
                bind(shared.0.path(), "/mnt", &["rbind", "rshared"]),
            );
            edit(&mut bundle, |v| {
                v["process"]["args"] = json!(script(MOUNT_IN_VOLUME));
                v["linux"]["rootfsPropagation"] = json!(propagation);
                with_sys_admin(v);
            });
            let rootfs = bundle.rootfs();
            let id = unique("rshared-volume");
            rt.run(&["run", "--detach", "--bundle", path(bundle.path()), &id])
                .ok();
            eventually("the container to mount in its volume", || {
                rootfs.join("ready").exists().then_some(())
            });
            let inside = read(&rootfs.join("out"));
            let on_host = host_mounts_under(&sub).len();
            rt.run(&["delete", "--force", &id]).ok();
            // What reached the host stays there: unmounted for the next run.
            for _ in 0..on_host {
                let _ = std::process::Command::new("umount").arg(&sub).status();
            }
            seen.push((name, inside, on_host));
        }
        let outcome = |s: &(&str, String, usize)| (s.1.clone(), s.2);
        assert_eq!(
            outcome(&seen[0]),
            outcome(&seen[1]),
            "{propagation}: {seen:#?}"
        );
    }
}

/// A new user namespace mapping root to 100000 (65536 ids), with the rootfs owned by it and
/// the bundle searchable, as a user-namespaced root needs.
fn in_user_namespace(bundle: &mut Bundle) {
    edit(bundle, |v| {
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["uidMappings"] = map.clone();
        v["linux"]["gidMappings"] = map;
        let ns = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.push(json!({"type": "user"}));
    });
    let status = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(bundle.rootfs())
        .status();
    assert!(status.is_ok_and(|s| s.success()), "chown the rootfs");
    use std::os::unix::fs::PermissionsExt;
    let searchable = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(bundle.path(), searchable).expect("chmod the bundle");
}

#[test]
fn a_bind_source_the_user_namespace_cannot_reach_is_mounted_as_under_runc() {
    need_root!();
    need_runc!();
    // Only the host's root can search `secret` (0700): the container's root, 100000 on the
    // host, could not reach `inner` through it by itself.
    let secret = tempfile::tempdir().expect("dir");
    use std::os::unix::fs::PermissionsExt;
    let private = std::fs::Permissions::from_mode(0o700);
    std::fs::set_permissions(secret.path(), private).expect("chmod 0700");
    let inner = secret.path().join("inner");
    std::fs::create_dir(&inner).expect("inner dir");
    std::fs::write(inner.join("f"), "reached\n").expect("file");
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let mut bundle = Bundle::new(&["cat", "/mnt/f"]);
        in_user_namespace(&mut bundle);
        add_mount(&mut bundle, bind(&inner, "/mnt", &["rbind"]));
        let ran = rt.run_container(&unique("userns-src"), &bundle);
        seen.push((name, ran.code(), ran.stdout, ran.stderr));
    }
    assert_eq!(seen[0].1, seen[1].1, "{seen:#?}");
    assert_eq!(seen[0].2, seen[1].2, "{seen:#?}");
    assert_eq!(seen[0].2, "reached\n", "{seen:#?}");
}

/// Every mount destination is resolved inside the root; a bind source is the host's, and one
/// relative to the bundle may name a path outside it through `..`, as runc allows.
#[test]
fn a_bind_source_relative_to_the_bundle_may_leave_it_as_under_runc() {
    need_root!();
    need_runc!();
    let parent = tempfile::tempdir().expect("dir");
    let outside = parent.path().join("outside");
    std::fs::create_dir(&outside).expect("outside dir");
    std::fs::write(outside.join("f"), "outside\n").expect("file");
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let mut bundle = Bundle::new_in(parent.path(), &["cat", "/mnt/f"]);
        add_mount(
            &mut bundle,
            json!({"destination": "/mnt", "type": "none", "source": "../outside",
                   "options": ["rbind"]}),
        );
        let ran = rt.run_container(&unique("relative-src"), &bundle);
        seen.push((name, ran.code(), ran.stdout));
    }
    assert_eq!(
        seen[0],
        ("runc", Some(0), "outside\n".to_string()),
        "{seen:#?}"
    );
    assert_eq!(seen[0].1, seen[1].1, "{seen:#?}");
    assert_eq!(seen[0].2, seen[1].2, "{seen:#?}");
}

/// A volume mounted over /dev through a symbolic link in the image (/vol -> /dev) covers the
/// /dev tmpfs though its destination does not say so: the device nodes go where /dev now
/// resolves (the volume), as under runc, not into the tmpfs hidden below it, which left the
/// container without /dev/null and failed its start.
#[test]
fn a_volume_over_dev_through_a_symlink_gets_the_device_nodes_as_under_runc() {
    need_root!();
    need_runc!();
    let mut seen = Vec::new();
    for (name, rt) in runtimes() {
        let volume = tempfile::tempdir().expect("volume dir");
        let mut bundle = Bundle::new(&["ls", "/dev/"]);
        std::os::unix::fs::symlink("/dev", bundle.rootfs().join("vol")).expect("symlink");
        add_mount(&mut bundle, bind(volume.path(), "/vol", &["rbind"]));
        let ran = rt.run_container(&unique("dev-volume"), &bundle);
        let in_volume = volume.path().join("null").exists();
        let listed = ran.stdout.split_whitespace().any(|n| n == "null");
        seen.push((name, ran.code(), listed, in_volume, ran.stderr));
    }
    assert_eq!(seen[0].1, Some(0), "{seen:#?}");
    let outcome = |s: &(&str, Option<i32>, bool, bool, String)| (s.1, s.2, s.3);
    assert_eq!(outcome(&seen[0]), outcome(&seen[1]), "{seen:#?}");
}
