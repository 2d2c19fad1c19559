//! Tests of detection, path parsing and backend choice.

use super::*;
use std::fs;

#[test]
fn layout_probe_tells_the_three_setups_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    assert_eq!(detect_with(root, fs_kind_by_layout).unwrap(), Setup::Legacy);
    fs::create_dir(root.join("unified")).unwrap();
    fs::write(root.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
    assert_eq!(detect_with(root, fs_kind_by_layout).unwrap(), Setup::Hybrid);
    fs::write(root.join("cgroup.controllers"), "cpu memory\n").unwrap();
    assert_eq!(
        detect_with(root, fs_kind_by_layout).unwrap(),
        Setup::Unified
    );
}

#[test]
fn detection_errors_name_the_path() {
    let err = detect_with(Path::new("/nonexistent/cgroup"), fs_kind_by_layout).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/cgroup"), "{err}");
    let err = detect(Path::new("/proc")).unwrap_err();
    assert!(matches!(err, CgroupError::UnknownSetup { .. }), "{err}");
}

#[test]
fn statfs_detects_this_host() {
    let root = Path::new("/sys/fs/cgroup");
    if !root.exists() {
        berth_sys::skip!("needs /sys/fs/cgroup");
    }
    let setup = detect(root).unwrap();
    let unified = fs_kind(&root.join("unified")).ok();
    match setup {
        Setup::Hybrid => assert_eq!(unified, Some(FsKind::Cgroup2)),
        Setup::Unified => assert_eq!(fs_kind(root).unwrap(), FsKind::Cgroup2),
        Setup::Legacy => assert_ne!(unified, Some(FsKind::Cgroup2)),
    }
}

#[test]
fn cgroups_path_forms() {
    let parse = |p| parse_cgroups_path(p).unwrap();
    assert_eq!(parse("/a/b"), Path::new("a/b"));
    assert_eq!(parse("a//./b/"), Path::new("a/b"));
    assert_eq!(
        parse("machine.slice:libpod:abc"),
        Path::new("machine.slice/libpod-abc.scope")
    );
    assert_eq!(
        parse("kubepods-besteffort-pod12.slice:cri-containerd:abc"),
        Path::new(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope"
        )
    );
    assert_eq!(parse(":runc:abc"), Path::new("system.slice/runc-abc.scope"));
    assert_eq!(parse("-.slice::abc"), Path::new("abc.scope"));
    assert_eq!(
        parse("user.slice::sub.slice"),
        Path::new("user.slice/sub.slice")
    );
}

#[test]
fn cgroups_path_rejects_escapes_and_bad_slices() {
    for bad in [
        "/a/../b",
        "..",
        "/",
        "bad:prefix:abc",
        "a--b.slice:p:abc",
        "-a.slice:p:abc",
        "a.slice:p:",
    ] {
        let err = parse_cgroups_path(bad).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidPath { .. }),
            "{bad}: {err}"
        );
    }
    for bad_id in ["", "..", "a/b"] {
        assert!(CgroupPath::under_own(bad_id, "0::/\n").is_err(), "{bad_id}");
    }
    // Outside our cgroup namespace, /proc/self/cgroup says "/.."; there is no default then.
    assert!(CgroupPath::under_own("abc", "0::/../x\n").is_err());
}

/// /proc/self/cgroup of a runtime in a session on a hybrid host.
const OWN: &str = "4:memory:/user.slice\n3:cpu,cpuacct:/\n\
                   1:name=systemd:/user.slice/s.scope\n0::/user.slice/s.scope\n";

#[test]
fn the_default_is_the_id_below_our_own_cgroup_in_each_hierarchy() {
    let path = CgroupPath::under_own("abc", OWN).unwrap();
    assert_eq!(path.in_hierarchy("memory"), Path::new("user.slice/abc"));
    assert_eq!(path.in_hierarchy("cpuacct"), Path::new("abc"));
    assert_eq!(
        path.in_hierarchy("name=systemd"),
        Path::new("user.slice/s.scope/abc")
    );
    assert_eq!(path.in_hierarchy(""), Path::new("user.slice/s.scope/abc"));
    // No line for a hierarchy: below its root.
    assert_eq!(path.in_hierarchy("pids"), Path::new("abc"));
    // A cgroup2-only host: below our cgroup's parent, as runc's fs2 driver.
    assert_eq!(path.in_unified_host(), Path::new("user.slice/abc"));
    // exec --cgroup: a cgroup below the container's, in each hierarchy.
    let sub = path.join(Path::new("sub"));
    assert_eq!(sub.in_hierarchy("memory"), Path::new("user.slice/abc/sub"));
    let rooted = CgroupPath::from(Path::new("berth/abc")).join(Path::new("sub"));
    assert_eq!(rooted.in_hierarchy("memory"), Path::new("berth/abc/sub"));
    assert!(path.join(Path::new("../x")).check().is_err());
    // Recorded in the state file and read back; a plain path still reads as one.
    let json = serde_json::to_string(&path).unwrap();
    assert_eq!(serde_json::from_str::<CgroupPath>(&json).unwrap(), path);
    let old: CgroupPath = serde_json::from_str("\"berth/abc\"").unwrap();
    assert_eq!(old, CgroupPath::Rooted("berth/abc".into()));
}

#[test]
fn only_the_hierarchies_our_cgroup_lists_are_looked_for() {
    let path = CgroupPath::under_own("abc", OWN).unwrap();
    for listed in ["memory", "cpu", "cpuacct", "name=systemd"] {
        assert!(path.may_have_hierarchy(listed), "{listed}");
    }
    for unlisted in ["pids", "net_cls", "freezer"] {
        assert!(!path.may_have_hierarchy(unlisted), "{unlisted}");
    }
    // A cgroupsPath says nothing of the host: every controller is looked for.
    assert!(CgroupPath::from(Path::new("berth/abc")).may_have_hierarchy("pids"));
}

#[test]
fn manager_refuses_paths_outside_the_root() {
    for bad in ["/abs", "a/../b", ""] {
        let path = CgroupPath::from(Path::new(bad));
        assert!(
            Manager::new(Setup::Unified, Path::new("/r"), &path).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn manager_picks_the_backend_of_the_setup() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir(root.join("memory")).unwrap();
    fs::write(root.join("memory/cgroup.procs"), "").unwrap();
    // A plain directory where a hierarchy failed to mount is not a controller.
    fs::create_dir(root.join("cpu")).unwrap();
    let path = &CgroupPath::from(Path::new("berth/c1"));
    let v2 = Manager::new(Setup::Unified, root, path).unwrap();
    assert_eq!(v2.unified_dir(), Some(root.join("berth/c1").as_path()));
    let hybrid = Manager::new(Setup::Hybrid, root, path).unwrap();
    assert_eq!(
        hybrid.unified_dir(),
        Some(root.join("unified/berth/c1").as_path())
    );
    let legacy = Manager::new(Setup::Legacy, root, path).unwrap();
    assert_eq!(legacy.unified_dir(), None);
    let Manager::V1(v1) = legacy else {
        panic!("legacy must be v1")
    };
    assert_eq!(
        v1.dir(v1::Controller::Memory),
        Some(root.join("memory/berth/c1").as_path())
    );
    assert_eq!(v1.dir(v1::Controller::Cpu), None);
}

#[test]
fn pid_zero_is_never_listed() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("cgroup.procs"), "12\n0\n34\n").unwrap();
    assert_eq!(read_procs(tmp.path()).unwrap(), [12, 34]);
}

#[test]
fn a_cgroup_frozen_already_is_refused_and_a_missing_one_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("freezer/c1")).unwrap();
    fs::write(root.join("freezer/cgroup.procs"), "").unwrap();
    fs::create_dir_all(root.join("unified/c2")).unwrap();
    let m = |p: &str| Manager::new(Setup::Hybrid, root, &Path::new(p).into()).unwrap();
    m("none").check_not_frozen().unwrap();
    fs::write(root.join("freezer/c1/freezer.state"), "THAWED\n").unwrap();
    m("c1").check_not_frozen().unwrap();
    fs::write(root.join("freezer/c1/freezer.state"), "FROZEN\n").unwrap();
    let err = m("c1").check_not_frozen().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("container's cgroup unexpectedly frozen"),
        "{err}"
    );
    // berth freezes a hybrid host's cgroup2 side: frozen there, or through an ancestor.
    fs::write(root.join("unified/c2/cgroup.freeze"), "1\n").unwrap();
    assert!(m("c2").check_not_frozen().is_err());
    fs::write(root.join("unified/c2/cgroup.freeze"), "0\n").unwrap();
    fs::write(
        root.join("unified/c2/cgroup.events"),
        "populated 0\nfrozen 1\n",
    )
    .unwrap();
    assert!(m("c2").check_not_frozen().is_err());
}
