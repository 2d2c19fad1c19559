//! Golden tests of `spec::build`: mounts, `--read-only`, resources, rlimits, sysctls and
//! namespaces joined or created, over a busybox-like root in a temporary directory.

mod spec_support;

use std::path::PathBuf;

use berth_engine::request::{DeviceRequest, MountRequest, NsMode, Ulimit};
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, PosixRlimitType};
use spec_support::*;

fn strs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn user_mount(kind: &str, source: &str, target: &str, ro: bool, options: &[&str]) -> MountRequest {
    MountRequest {
        kind: kind.into(),
        source: source.into(),
        target: target.into(),
        read_only: ro,
        options: strs(options),
    }
}

#[test]
fn default_mounts_in_dockers_order() {
    let f = Fixture::new();
    let b = f.build_ok(&request());
    assert_eq!(
        destinations(&b),
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts"
        ]
    );
    assert_eq!(
        options(&b, "/dev"),
        strs(&["nosuid", "strictatime", "mode=755", "size=65536k"])
    );
    assert_eq!(
        options(&b, "/dev/pts"),
        strs(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5"
        ])
    );
    assert_eq!(
        options(&b, "/sys"),
        strs(&["nosuid", "noexec", "nodev", "ro"])
    );
    assert_eq!(
        options(&b, "/dev/shm"),
        strs(&["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"])
    );
    let hosts = mount(&b, "/etc/hosts");
    assert_eq!(hosts.source().as_ref(), Some(&f.etc.hosts));
    assert_eq!(
        hosts.options().clone().unwrap(),
        strs(&["rbind", "rprivate"])
    );
}

#[test]
fn read_only_root() {
    let f = Fixture::new();
    let mut req = request();
    req.read_only = true;
    req.mounts = vec![user_mount("tmpfs", "", "/tmp", false, &[])];
    let b = f.build_ok(&req);
    assert_eq!(b.spec.root().as_ref().unwrap().readonly(), Some(true));
    let ro = |dest: &str| options(&b, dest).contains(&"ro".to_string());
    for dest in ["/sys", "/sys/fs/cgroup", "/etc/hosts", "/etc/resolv.conf"] {
        assert!(ro(dest), "{dest} should be read-only");
    }
    for dest in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/tmp",
    ] {
        assert!(!ro(dest), "{dest} should stay writable");
    }
}

#[test]
fn binds_volumes_and_tmpfs_sorted_by_depth() {
    let mut f = Fixture::new();
    f.volumes.insert(
        "data".into(),
        PathBuf::from("/var/lib/berth/volumes/data/_data"),
    );
    let mut req = request();
    req.mounts = vec![
        user_mount("bind", "/srv/site", "/usr/share/site", true, &["rshared"]),
        user_mount("volume", "data", "/data", false, &[]),
        user_mount("tmpfs", "", "/run/x", false, &["size=1m", "exec"]),
        user_mount("bind", "/etc/myhosts", "/etc/hosts", false, &[]),
    ];
    let b = f.build_ok(&req);
    let d = destinations(&b);
    assert_eq!(
        d[7..],
        [
            "/data",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/run/x",
            "/etc/hosts",
            "/usr/share/site"
        ],
        "stable by depth: the /etc files, then the user's in order"
    );
    assert_eq!(
        d.iter().filter(|x| *x == "/etc/hosts").count(),
        1,
        "the user's wins"
    );
    assert_eq!(
        mount(&b, "/etc/hosts").source().as_ref().unwrap().to_str(),
        Some("/etc/myhosts")
    );
    assert_eq!(
        options(&b, "/usr/share/site"),
        strs(&["rbind", "rshared", "ro"])
    );
    assert_eq!(
        linux(&b).rootfs_propagation().as_deref(),
        Some("rshared"),
        "a shared bind needs a shared root"
    );
    let data = mount(&b, "/data");
    assert_eq!(
        data.source().as_ref().unwrap().to_str(),
        Some("/var/lib/berth/volumes/data/_data")
    );
    assert_eq!(
        options(&b, "/run/x"),
        strs(&["noexec", "nosuid", "nodev", "size=1m", "exec"])
    );

    req.mounts = vec![user_mount("bind", "relative", "/x", false, &[])];
    assert!(f.build(&req).is_err());
    req.mounts = vec![user_mount("volume", "nope", "/x", false, &[])];
    assert!(f.build(&req).is_err());
    req.mounts = vec![user_mount("tmpfs", "", "/", false, &[])];
    assert!(f
        .build(&req)
        .unwrap_err()
        .to_string()
        .contains("can't be '/'"));
    req.mounts = vec![
        user_mount("tmpfs", "", "/x", false, &[]),
        user_mount("tmpfs", "", "/x/", false, &[]),
    ];
    assert!(f
        .build(&req)
        .unwrap_err()
        .to_string()
        .contains("duplicate mount point"));
    req.mounts = vec![user_mount("bind", "/a", "/x", false, &["bogus"])];
    assert!(f
        .build(&req)
        .unwrap_err()
        .to_string()
        .contains("unknown option \"bogus\""));
}

#[test]
fn tmpfs_options_are_checked_as_the_kernel_reads_them() {
    let f = Fixture::new();
    let mut req = request();
    let good = [
        "size=50%",
        "size=64k",
        "nr_inodes=1k",
        "mode=1777",
        "uid=1000",
        "huge=never",
    ];
    req.mounts = vec![user_mount("tmpfs", "", "/x", false, &good)];
    f.build_ok(&req);
    for (bad, says) in [
        (
            "size=abc",
            "invalid tmpfs option \"size=abc\": a number of bytes",
        ),
        ("size=1kk", "invalid tmpfs option \"size=1kk\""),
        ("mode=999", "an octal mode"),
        ("uid=me", "a numeric id"),
        ("bogus=1", "tmpfs takes size, mode"),
    ] {
        req.mounts = vec![user_mount("tmpfs", "", "/x", false, &[bad])];
        let e = f.build(&req).unwrap_err().to_string();
        assert!(
            e.starts_with("--tmpfs /x: ") && e.contains(says),
            "{bad}: {e}"
        );
    }
}

#[test]
fn limits_and_devices() {
    let f = Fixture::new();
    let mut req = request();
    req.memory = Some(256 << 20);
    req.cpus = Some(0.5);
    req.cpu_shares = Some(512);
    req.cpuset_cpus = Some("0".into());
    req.pids_limit = Some(100);
    req.shm_size = Some(1 << 20);
    req.devices = vec![DeviceRequest {
        host_path: "/dev/null".into(),
        container_path: "/dev/xnull".into(),
        permissions: "rw".into(),
    }];
    let b = f.build_ok(&req);
    let res = linux(&b).resources().clone().unwrap();
    let mem = res.memory().unwrap();
    assert_eq!(
        (mem.limit(), mem.swap()),
        (Some(256 << 20), Some(512 << 20))
    );
    let cpu = res.cpu().clone().unwrap();
    assert_eq!(
        (cpu.quota(), cpu.period(), cpu.shares()),
        (Some(50_000), Some(100_000), Some(512))
    );
    assert_eq!(cpu.cpus().as_deref(), Some("0"));
    assert_eq!(res.pids().unwrap().limit(), 100);
    let rule = res.devices().clone().unwrap().pop().unwrap();
    assert_eq!(
        (rule.allow(), rule.major(), rule.minor()),
        (true, Some(1), Some(3))
    );
    assert_eq!(rule.access().as_deref(), Some("rw"));
    let dev = &linux(&b).devices().clone().unwrap()[0];
    assert_eq!(
        (dev.path().to_str(), dev.typ()),
        (Some("/dev/xnull"), LinuxDeviceType::C)
    );
    assert!(options(&b, "/dev/shm").contains(&"size=1048576".to_string()));

    req.devices[0].host_path = "/dev/berth-no-such-device".into();
    let e = f.build(&req).unwrap_err().to_string();
    assert!(e.starts_with("--device /dev/berth-no-such-device: "), "{e}");
    req.devices.clear();
    req.cpus = Some(10_000.0);
    assert!(f
        .build(&req)
        .unwrap_err()
        .to_string()
        .starts_with("--cpus 10000: "));
    req.cpus = None;
    req.cpuset_cpus = Some("9999".into());
    assert!(f
        .build(&req)
        .unwrap_err()
        .to_string()
        .contains("CPU 9999 is not available"));
}

#[test]
fn ulimits_within_the_hosts_hard_limit() {
    let f = Fixture::new();
    let mut req = request();
    req.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 1024,
        hard: 2048,
    }];
    let b = f.build_ok(&req);
    let r = b
        .spec
        .process()
        .as_ref()
        .unwrap()
        .rlimits()
        .clone()
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].typ(), r[0].soft(), r[0].hard()),
        (PosixRlimitType::RlimitNofile, 1024, 2048)
    );
    req.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft: 99_999_999,
        hard: 99_999_999,
    }];
    let e = f.build(&req).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "--ulimit nofile=99999999:99999999: above the host's hard limit 4096; lower it"
        ),
        "{e}"
    );
}

#[test]
fn sysctls_checked_against_namespaces() {
    let f = Fixture::new();
    let mut req = request();
    req.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
    req.sysctls.insert("kernel.msgmax".into(), "65536".into());
    let b = f.build_ok(&req);
    let s = linux(&b).sysctl().clone().unwrap();
    assert_eq!(
        (
            s["net.ipv4.ip_forward"].as_str(),
            s["kernel.msgmax"].as_str()
        ),
        ("1", "65536")
    );
    req.netns = NsMode::Host;
    let e = f.build(&req).unwrap_err().to_string();
    assert!(
        e.starts_with("--sysctl net.ipv4.ip_forward: needs a network namespace"),
        "{e}"
    );
    req.sysctls.clear();
    let b = f.build_ok(&req);
    assert!(
        linux(&b).sysctl().clone().unwrap().is_empty(),
        "no defaults with the host's network"
    );
    req.sysctls.insert("kernel.panic".into(), "1".into());
    assert!(f.build(&req).is_err());
}

#[test]
fn joined_namespaces_and_shm() {
    let mut f = Fixture::new();
    let mut req = request();
    req.pid = NsMode::Container("c1".into());
    req.ipc = NsMode::Container("c1".into());
    req.netns = NsMode::Container("c1".into());
    f.joins.insert("pid".into(), "/proc/4242/ns/pid".into());
    f.joins.insert("ipc".into(), "/proc/4242/ns/ipc".into());
    f.joins.insert("network".into(), "/proc/4242/ns/net".into());
    let b = f.build_ok(&req);
    let ns = linux(&b).namespaces().clone().unwrap();
    let path = |k: LinuxNamespaceType| {
        ns.iter()
            .find(|n| n.typ() == k)
            .and_then(|n| n.path().clone())
    };
    assert_eq!(
        path(LinuxNamespaceType::Pid),
        Some("/proc/4242/ns/pid".into())
    );
    assert_eq!(
        path(LinuxNamespaceType::Network),
        Some("/proc/4242/ns/net".into())
    );
    assert_eq!(path(LinuxNamespaceType::Uts), None);
    let shm = mount(&b, "/dev/shm");
    assert_eq!(
        shm.source().as_ref().unwrap().to_str(),
        Some("/proc/4242/root/dev/shm")
    );
    assert!(!linux(&b)
        .sysctl()
        .clone()
        .unwrap()
        .contains_key("net.ipv4.ping_group_range"));
    f.joins.remove("pid");
    let e = f.build(&req).unwrap_err().to_string();
    assert!(e.starts_with("pid namespace of container c1"), "{e}");
}

#[test]
fn private_user_and_time_namespaces() {
    let f = Fixture::new();
    let mut req = request();
    req.userns = NsMode::Private;
    req.timens = NsMode::Private;
    req.time_offsets.insert("monotonic".into(), 86400);
    let b = f.build_ok(&req);
    let l = linux(&b);
    let map = &l.uid_mappings().clone().unwrap()[0];
    assert_eq!(
        (map.container_id(), map.host_id(), map.size()),
        (0, 100_000, 65_536)
    );
    assert_eq!(l.gid_mappings().clone().unwrap().len(), 1);
    assert_eq!(
        l.time_offsets().clone().unwrap()["monotonic"].secs(),
        Some(86400)
    );
    assert!(!options(&b, "/sys/fs/cgroup").contains(&"ro".to_string()));
    assert_eq!(
        l.sysctl().clone().unwrap()["net.ipv4.ping_group_range"],
        "0 65535"
    );
    req.netns = NsMode::Host;
    let b = f.build_ok(&req);
    assert_eq!(
        mount(&b, "/sys").typ().as_deref(),
        Some("bind"),
        "sysfs needs its own netns"
    );
    req.timens = NsMode::Host;
    assert!(f
        .build(&req)
        .unwrap_err()
        .to_string()
        .starts_with("--time-offset: "));
}
