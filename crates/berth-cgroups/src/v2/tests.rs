//! v2 against temp directories laid out like a cgroup2 mount.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_sys::signal::SignalNumber;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder,
};

use super::controllers::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2};
use super::{set_frozen_within, Manager};
use crate::error::CgroupError;
use crate::{CgroupManager, FreezerState};

const CGROUP: &str = "berth/c1";

/// Interface files of the container's cgroup, as the kernel would create them.
const LEAF_FILES: &[(&str, &str)] = &[
    ("cgroup.procs", ""),
    ("cgroup.freeze", "0"),
    ("cgroup.events", "populated 0\nfrozen 0\n"),
    ("cgroup.kill", ""),
    ("memory.max", "max"),
    ("memory.low", "0"),
    ("memory.swap.max", "max"),
    ("cpu.weight", "100"),
    ("cpu.max", "max 100000"),
    ("cpuset.cpus", ""),
    ("cpuset.mems", ""),
    ("pids.max", "max"),
    ("io.weight", "default 100"),
    ("io.max", ""),
    ("hugetlb.2MB.max", "max"),
];

struct Fake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fake {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        let leaf = root.join(CGROUP);
        fs::create_dir_all(&leaf).unwrap();
        for (file, content) in LEAF_FILES {
            fs::write(leaf.join(file), content).unwrap();
        }
        fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        fs::write(root.join("berth/cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(root.join("berth/cgroup.subtree_control"), "cpu\n").unwrap();
        Self { _tmp: tmp, root }
    }

    fn manager(&self) -> Manager {
        Manager::new(&self.root, Path::new(CGROUP))
    }

    fn read(&self, file: &str) -> String {
        let content = fs::read_to_string(self.root.join(CGROUP).join(file)).unwrap();
        content.trim().to_owned()
    }

    fn write(&self, file: &str, content: &str) {
        fs::write(self.root.join(CGROUP).join(file), content).unwrap();
    }
}

fn resources(f: impl FnOnce(LinuxResourcesBuilder) -> LinuxResourcesBuilder) -> LinuxResources {
    f(LinuxResourcesBuilder::default()).build().unwrap()
}

#[test]
fn create_enables_the_missing_controllers_in_each_ancestor() {
    let fake = Fake::new();
    fake.manager().create().unwrap();
    let root = fs::read_to_string(fake.root.join("cgroup.subtree_control")).unwrap();
    assert_eq!(root, "+cpuset +cpu +io +memory +pids");
    let parent = fs::read_to_string(fake.root.join("berth/cgroup.subtree_control")).unwrap();
    assert_eq!(parent, "+memory +pids");
    // The container's own cgroup holds processes, so its children get nothing.
    assert!(!fake
        .root
        .join(CGROUP)
        .join("cgroup.subtree_control")
        .exists());
}

#[test]
fn membership_only_never_touches_subtree_control() {
    let fake = Fake::new();
    Manager::membership_only(&fake.root, Path::new("berth/c2"))
        .create()
        .unwrap();
    assert!(fake.root.join("berth/c2").is_dir());
    let root = fs::read_to_string(fake.root.join("cgroup.subtree_control")).unwrap();
    assert_eq!(root, "");
    let parent = fs::read_to_string(fake.root.join("berth/cgroup.subtree_control")).unwrap();
    assert_eq!(parent, "cpu\n");
}

#[test]
fn swap_is_converted_from_memory_plus_swap() {
    assert_eq!(swap_to_v2(300, 100).unwrap(), Some(200));
    assert_eq!(swap_to_v2(100, 100).unwrap(), Some(0));
    assert_eq!(swap_to_v2(-1, 100).unwrap(), Some(-1));
    assert_eq!(swap_to_v2(0, -1).unwrap(), Some(-1));
    assert_eq!(swap_to_v2(0, 100).unwrap(), None);
    assert!(swap_to_v2(50, 100).is_err());
    assert!(swap_to_v2(50, 0).is_err());
    assert!(swap_to_v2(50, -1).is_err());
}

#[test]
fn memory_values() {
    let fake = Fake::new();
    let memory = LinuxMemoryBuilder::default()
        .limit(100 << 20)
        .swap(300 << 20)
        .reservation(50 << 20)
        .build()
        .unwrap();
    fake.manager()
        .apply(&resources(|r| r.memory(memory)))
        .unwrap();
    assert_eq!(fake.read("memory.max"), (100u64 << 20).to_string());
    assert_eq!(fake.read("memory.swap.max"), (200u64 << 20).to_string());
    assert_eq!(fake.read("memory.low"), (50u64 << 20).to_string());

    let unlimited = LinuxMemoryBuilder::default().limit(-1).build().unwrap();
    fake.write("memory.swap.max", "0");
    fake.manager()
        .apply(&resources(|r| r.memory(unlimited)))
        .unwrap();
    assert_eq!(fake.read("memory.max"), "max");
    assert_eq!(fake.read("memory.swap.max"), "max");
}

#[test]
fn unlimited_swap_without_swap_accounting_is_no_error() {
    let fake = Fake::new();
    fs::remove_file(fake.root.join(CGROUP).join("memory.swap.max")).unwrap();
    let memory = LinuxMemoryBuilder::default()
        .limit(1 << 20)
        .swap(-1)
        .build()
        .unwrap();
    fake.manager()
        .apply(&resources(|r| r.memory(memory)))
        .unwrap();
    // memory+swap equal to memory is "no swap", which is what there is without accounting.
    let no_swap = LinuxMemoryBuilder::default()
        .limit(1 << 20)
        .swap(1 << 20)
        .build()
        .unwrap();
    fake.manager()
        .apply(&resources(|r| r.memory(no_swap)))
        .unwrap();
    let limited = LinuxMemoryBuilder::default()
        .limit(1 << 20)
        .swap(2 << 20)
        .build()
        .unwrap();
    let err = fake
        .manager()
        .apply(&resources(|r| r.memory(limited)))
        .unwrap_err();
    assert!(matches!(err, CgroupError::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("memory.swap.max"), "{err}");
}

#[test]
fn shares_become_weight_as_in_runc() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1), 1);
    assert_eq!(shares_to_weight(1 << 20), 10_000);
}

#[test]
fn blkio_weight_becomes_io_weight_as_in_runc() {
    assert_eq!(blkio_weight_to_io_weight(10), 1);
    assert_eq!(blkio_weight_to_io_weight(500), 4950);
    assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
}

#[test]
fn cpu_values() {
    let fake = Fake::new();
    let cpu = LinuxCpuBuilder::default()
        .shares(1024u64)
        .quota(50_000)
        .period(100_000u64)
        .cpus("0-1")
        .mems("0")
        .build()
        .unwrap();
    fake.manager().apply(&resources(|r| r.cpu(cpu))).unwrap();
    assert_eq!(fake.read("cpu.weight"), "39");
    assert_eq!(fake.read("cpu.max"), "50000 100000");
    assert_eq!(fake.read("cpuset.cpus"), "0-1");
    assert_eq!(fake.read("cpuset.mems"), "0");

    let unlimited = LinuxCpuBuilder::default().quota(-1).build().unwrap();
    fake.manager()
        .apply(&resources(|r| r.cpu(unlimited)))
        .unwrap();
    assert_eq!(fake.read("cpu.max"), "max");
}

#[test]
fn a_period_alone_keeps_the_quota() {
    let fake = Fake::new();
    fake.write("cpu.max", "20000 100000\n");
    let cpu = LinuxCpuBuilder::default()
        .period(50_000u64)
        .build()
        .unwrap();
    fake.manager().apply(&resources(|r| r.cpu(cpu))).unwrap();
    assert_eq!(fake.read("cpu.max"), "20000 50000");
}

#[test]
fn realtime_cpu_is_refused() {
    let fake = Fake::new();
    let cpu = LinuxCpuBuilder::default()
        .realtime_runtime(1000)
        .build()
        .unwrap();
    let err = fake
        .manager()
        .apply(&resources(|r| r.cpu(cpu)))
        .unwrap_err();
    assert!(
        matches!(err, CgroupError::Unsupported { version: "v2", .. }),
        "{err}"
    );
}

#[test]
fn pids_and_hugetlb() {
    let fake = Fake::new();
    let pids = LinuxPidsBuilder::default().limit(32).build().unwrap();
    let page = LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(4 << 21)
        .build()
        .unwrap();
    fake.manager()
        .apply(&resources(|r| r.pids(pids).hugepage_limits(vec![page])))
        .unwrap();
    assert_eq!(fake.read("pids.max"), "32");
    assert_eq!(fake.read("hugetlb.2MB.max"), (4u64 << 21).to_string());
    // Zero is "not set" (runc 1.1): the limit stays as it was.
    let zero = LinuxPidsBuilder::default().limit(0).build().unwrap();
    fake.manager().apply(&resources(|r| r.pids(zero))).unwrap();
    assert_eq!(fake.read("pids.max"), "32");
}

#[test]
fn io_weight_converts_unless_bfq_and_throttles_go_to_io_max() {
    let fake = Fake::new();
    let device = LinuxWeightDeviceBuilder::default()
        .major(8)
        .minor(0)
        .weight(1000u16)
        .build()
        .unwrap();
    let throttle = LinuxThrottleDeviceBuilder::default()
        .major(8)
        .minor(0)
        .rate(100u64)
        .build()
        .unwrap();
    let blkio = LinuxBlockIoBuilder::default()
        .weight(500u16)
        .throttle_write_iops_device(vec![throttle])
        .build()
        .unwrap();
    fake.manager()
        .apply(&resources(|r| r.block_io(blkio.clone())))
        .unwrap();
    assert_eq!(fake.read("io.weight"), "4950");
    assert_eq!(fake.read("io.max"), "8:0 wiops=100");

    fake.write("io.bfq.weight", "default 100");
    let per_device = LinuxBlockIoBuilder::default()
        .weight_device(vec![device])
        .build()
        .unwrap();
    fake.manager()
        .apply(&resources(|r| r.block_io(blkio)))
        .unwrap();
    assert_eq!(fake.read("io.bfq.weight"), "500");
    fake.manager()
        .apply(&resources(|r| r.block_io(per_device)))
        .unwrap();
    assert_eq!(fake.read("io.bfq.weight"), "8:0 1000");
}

#[test]
fn unified_keys_are_written_and_checked() {
    let fake = Fake::new();
    fake.write("memory.high", "max");
    let unified: HashMap<String, String> = [("memory.high".into(), "64M".into())].into();
    fake.manager()
        .apply(&resources(|r| r.unified(unified)))
        .unwrap();
    assert_eq!(fake.read("memory.high"), "64M");
    for bad in ["../memory.high", "memoryhigh", "..", "a/b.c"] {
        let unified: HashMap<String, String> = [(bad.to_owned(), "1".to_owned())].into();
        let err = fake
            .manager()
            .apply(&resources(|r| r.unified(unified)))
            .unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidResource { .. }),
            "{bad}: {err}"
        );
    }
    let missing: HashMap<String, String> = [("misc.max".into(), "x 1".into())].into();
    let err = fake
        .manager()
        .apply(&resources(|r| r.unified(missing)))
        .unwrap_err();
    assert!(err.to_string().contains("misc.max"), "{err}");
}

#[test]
fn freeze_waits_for_cgroup_events() {
    let fake = Fake::new();
    let m = fake.manager();
    fake.write("cgroup.events", "populated 1\nfrozen 1\n");
    m.freeze().unwrap();
    assert_eq!(fake.read("cgroup.freeze"), "1");
    assert_eq!(m.state().unwrap(), FreezerState::Frozen);

    // The kernel has not caught up: the wait must end in an error naming cgroup.events.
    let err = set_frozen_within(m.dir(), FreezerState::Thawed, Duration::from_millis(30));
    let err = err.unwrap_err();
    assert!(matches!(err, CgroupError::FreezeTimeout { .. }), "{err}");
    assert!(err.to_string().contains("cgroup.events"), "{err}");
    assert_eq!(fake.read("cgroup.freeze"), "0");
}

#[test]
fn sigkill_goes_through_cgroup_kill() {
    let fake = Fake::new();
    fake.manager().kill_all(SignalNumber::KILL).unwrap();
    assert_eq!(fake.read("cgroup.kill"), "1");
}

#[test]
fn stats_come_from_v2_files() {
    let fake = Fake::new();
    fake.write("memory.current", "2048");
    fake.write("pids.current", "2");
    fake.write("cpu.stat", "usage_usec 3\nuser_usec 2\nsystem_usec 1\n");
    let stats = fake.manager().stats().unwrap();
    assert_eq!(stats.memory.usage.usage, 2048);
    assert_eq!(stats.memory.usage.limit, u64::MAX);
    assert_eq!(stats.pids.current, 2);
    assert_eq!(stats.cpu.usage.total, 3000);
}

#[test]
fn destroy_collects_the_error_and_names_the_dir() {
    let fake = Fake::new();
    let err = fake.manager().destroy().unwrap_err();
    assert!(err.to_string().contains("berth/c1"), "{err}");
}

#[test]
fn oom_kills_come_from_memory_events() {
    let fake = Fake::new();
    assert_eq!(fake.manager().oom_kills().unwrap(), 0);
    fake.write("memory.events", "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n");
    assert_eq!(fake.manager().oom_kills().unwrap(), 2);
}
