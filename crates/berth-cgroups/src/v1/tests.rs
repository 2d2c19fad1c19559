//! v1 against temp directories laid out like per-controller cgroupfs hierarchies.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceType, LinuxHugepageLimitBuilder,
    LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
    LinuxThrottleDeviceBuilder,
};

use super::controllers::device_writes;
use super::{Controller, Manager};
use crate::devices::rule;
use crate::error::CgroupError;
use crate::{CgroupManager, Created, FreezerState};

const CGROUP: &str = "berth/c1";

/// Files each controller's cgroup directory starts with, as the kernel would create them.
const FILES: &[(&str, &[(&str, &str)])] = &[
    (
        "cpu",
        &[
            ("cpu.shares", "1024"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.cfs_period_us", "100000"),
        ],
    ),
    ("cpuacct", &[("cpuacct.usage", "0")]),
    ("cpuset", &[("cpuset.cpus", ""), ("cpuset.mems", "")]),
    (
        "memory",
        &[
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
            ("memory.soft_limit_in_bytes", "9223372036854771712"),
            ("memory.swappiness", "60"),
            ("memory.oom_control", "oom_kill_disable 0"),
        ],
    ),
    ("devices", &[("devices.allow", ""), ("devices.deny", "")]),
    ("freezer", &[("freezer.state", "THAWED")]),
    (
        "blkio",
        &[
            ("blkio.bfq.weight", "100"),
            ("blkio.bfq.weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_iops_device", ""),
        ],
    ),
    ("pids", &[("pids.max", "max")]),
];

struct Fake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fake {
    /// A legacy tree: every controller of `FILES` mounted, the container's cgroup pre-made.
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        for (controller, files) in FILES {
            let dir = root.join(controller).join(CGROUP);
            fs::create_dir_all(&dir).unwrap();
            for (name, content) in *files {
                fs::write(dir.join(name), content).unwrap();
                fs::write(dir.parent().unwrap().join(name), content).unwrap();
                fs::write(root.join(controller).join(name), content).unwrap();
            }
            fs::write(dir.join("cgroup.procs"), "").unwrap();
            fs::write(root.join(controller).join("cgroup.procs"), "").unwrap();
        }
        fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
        Self { _tmp: tmp, root }
    }

    fn manager(&self) -> Manager {
        Manager::new(&self.root, &Path::new(CGROUP).into(), false)
    }

    fn read(&self, controller: &str, file: &str) -> String {
        let path = self.root.join(controller).join(CGROUP).join(file);
        fs::read_to_string(path).unwrap().trim().to_owned()
    }
}

fn resources(f: impl FnOnce(LinuxResourcesBuilder) -> LinuxResourcesBuilder) -> LinuxResources {
    f(LinuxResourcesBuilder::default()).build().unwrap()
}

#[test]
fn create_copies_cpuset_from_the_parent_at_each_level() {
    let fake = Fake::new();
    fake.manager().create().unwrap();
    assert_eq!(fake.read("cpuset", "cpuset.cpus"), "0-1");
    assert_eq!(fake.read("cpuset", "cpuset.mems"), "0");
    let parent = fs::read_to_string(fake.root.join("cpuset/berth/cpuset.cpus")).unwrap();
    assert_eq!(parent, "0-1");
}

#[test]
fn create_tells_a_new_cgroup_from_one_that_was_there() {
    let fake = Fake::new();
    // Without cpuset, whose new directories would need the files the kernel makes.
    fs::remove_dir_all(fake.root.join("cpuset")).unwrap();
    assert_eq!(fake.manager().create().unwrap(), Created::Existing);
    let m = Manager::new(&fake.root, &Path::new("berth/c2/c3").into(), false);
    assert_eq!(m.create().unwrap(), Created::New);
    assert!(fake.root.join("memory/berth/c2/c3").is_dir());
    assert_eq!(m.create().unwrap(), Created::Existing);
}

#[test]
fn remove_if_empty_stops_at_the_first_busy_hierarchy() {
    let fake = Fake::new();
    // The pre-made cgroup's directories hold files, as a busy cgroup refuses its rmdir.
    assert!(!fake.manager().remove_if_empty().unwrap());
    assert!(fake.root.join("cpu").join(CGROUP).is_dir());
    fs::remove_dir_all(fake.root.join("cpuset")).unwrap();
    let m = Manager::new(&fake.root, &Path::new("berth/c2").into(), false);
    m.create().unwrap();
    assert!(m.remove_if_empty().unwrap());
    assert!(!fake.root.join("memory/berth/c2").exists());
    assert!(m.remove_if_empty().unwrap(), "a cgroup already gone");
}

#[test]
fn memory_limits_use_v1_files_and_values() {
    let fake = Fake::new();
    let memory = LinuxMemoryBuilder::default()
        .limit(64 << 20)
        .swap(128 << 20)
        .reservation(32 << 20)
        .swappiness(10u64)
        .disable_oom_killer(true)
        .build()
        .unwrap();
    fake.manager()
        .apply(&resources(|r| r.memory(memory)))
        .unwrap();
    assert_eq!(fake.read("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(
        fake.read("memory", "memory.memsw.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(
        fake.read("memory", "memory.soft_limit_in_bytes"),
        "33554432"
    );
    assert_eq!(fake.read("memory", "memory.swappiness"), "10");
    assert_eq!(fake.read("memory", "memory.oom_control"), "1");
}

#[test]
fn unlimited_memory_makes_swap_unlimited_too() {
    let fake = Fake::new();
    let memory = LinuxMemoryBuilder::default().limit(-1).build().unwrap();
    fake.manager()
        .apply(&resources(|r| r.memory(memory)))
        .unwrap();
    assert_eq!(fake.read("memory", "memory.limit_in_bytes"), "-1");
    assert_eq!(fake.read("memory", "memory.memsw.limit_in_bytes"), "-1");
}

#[test]
fn swappiness_above_100_is_refused() {
    let fake = Fake::new();
    let memory = LinuxMemoryBuilder::default()
        .swappiness(101u64)
        .build()
        .unwrap();
    let err = fake
        .manager()
        .apply(&resources(|r| r.memory(memory)))
        .unwrap_err();
    assert!(matches!(err, CgroupError::InvalidResource { .. }), "{err}");
}

#[test]
fn cpu_and_cpuset_values() {
    let fake = Fake::new();
    let cpu = LinuxCpuBuilder::default()
        .shares(512u64)
        .quota(50_000)
        .period(100_000u64)
        .cpus("0")
        .mems("0")
        .build()
        .unwrap();
    fake.manager().apply(&resources(|r| r.cpu(cpu))).unwrap();
    assert_eq!(fake.read("cpu", "cpu.shares"), "512");
    assert_eq!(fake.read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(fake.read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(fake.read("cpuset", "cpuset.cpus"), "0");
    assert_eq!(fake.read("cpuset", "cpuset.mems"), "0");
}

#[test]
fn pids_limit_and_unlimited() {
    let fake = Fake::new();
    let m = fake.manager();
    let pids = |n| resources(|r| r.pids(LinuxPidsBuilder::default().limit(n).build().unwrap()));
    m.apply(&pids(100)).unwrap();
    assert_eq!(fake.read("pids", "pids.max"), "100");
    m.apply(&pids(-1)).unwrap();
    assert_eq!(fake.read("pids", "pids.max"), "max");
    // Zero is "not set" (runc 1.1): the limit stays as it was.
    m.apply(&pids(100)).unwrap();
    m.apply(&pids(0)).unwrap();
    assert_eq!(fake.read("pids", "pids.max"), "100");
}

#[test]
fn blkio_weight_falls_back_to_bfq_and_throttles_per_device() {
    let fake = Fake::new();
    let throttle = LinuxThrottleDeviceBuilder::default()
        .major(8)
        .minor(0)
        .rate(1_048_576u64)
        .build()
        .unwrap();
    let blkio = LinuxBlockIoBuilder::default()
        .weight(300u16)
        .throttle_read_bps_device(vec![throttle])
        .build()
        .unwrap();
    fake.manager()
        .apply(&resources(|r| r.block_io(blkio)))
        .unwrap();
    assert_eq!(fake.read("blkio", "blkio.bfq.weight"), "300");
    assert_eq!(
        fake.read("blkio", "blkio.throttle.read_bps_device"),
        "8:0 1048576"
    );
}

#[test]
fn device_rules_deny_all_first_then_apply_in_order() {
    use LinuxDeviceType::C;
    let rules = [
        rule(true, C, Some(1), Some(3), "rwm"),
        rule(false, C, Some(1), Some(3), "w"),
    ];
    let writes = device_writes(&rules).unwrap();
    let writes: Vec<(&str, &str)> = writes.iter().map(|(f, l)| (*f, l.as_str())).collect();
    assert_eq!(
        writes,
        [
            ("devices.deny", "a"),
            ("devices.allow", "c 1:3 rwm"),
            ("devices.deny", "c 1:3 w"),
        ]
    );
    let fake = Fake::new();
    fake.manager()
        .apply(&resources(|r| r.devices(rules.to_vec())))
        .unwrap();
    assert_eq!(fake.read("devices", "devices.allow"), "c 1:3 rwm");
}

#[test]
fn a_repeated_device_rule_is_written_once_unless_a_rule_of_the_other_kind_came_between() {
    use LinuxDeviceType::{A, C};
    let rules = [
        rule(false, A, None, None, "rwm"),
        rule(true, C, Some(1), Some(3), "rwm"),
        rule(true, C, Some(1), Some(5), "rwm"),
        rule(true, C, Some(1), Some(3), "rwm"),
        rule(false, C, Some(1), Some(5), "rwm"),
        rule(true, C, Some(1), Some(5), "rwm"),
    ];
    let writes = device_writes(&rules).unwrap();
    let writes: Vec<(&str, &str)> = writes.iter().map(|(f, l)| (*f, l.as_str())).collect();
    assert_eq!(
        writes,
        [
            ("devices.deny", "a"),
            ("devices.allow", "c 1:3 rwm"),
            ("devices.allow", "c 1:5 rwm"),
            ("devices.deny", "c 1:5 rwm"),
            ("devices.allow", "c 1:5 rwm"),
        ]
    );
}

#[test]
fn a_resource_without_its_controller_names_the_controller() {
    let fake = Fake::new();
    fs::remove_dir_all(fake.root.join("pids")).unwrap();
    let pids = LinuxPidsBuilder::default().limit(10).build().unwrap();
    let err = fake
        .manager()
        .apply(&resources(|r| r.pids(pids)))
        .unwrap_err();
    assert!(matches!(
        err,
        CgroupError::MissingController {
            controller: "pids",
            ..
        }
    ));
    let hugepages = LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(1 << 21)
        .build()
        .unwrap();
    let err = fake
        .manager()
        .apply(&resources(|r| r.hugepage_limits(vec![hugepages])));
    assert!(err.unwrap_err().to_string().contains("hugetlb"));
}

#[test]
fn unified_resources_are_refused_on_v1() {
    let fake = Fake::new();
    let unified: std::collections::HashMap<String, String> =
        [("memory.high".to_owned(), "1M".to_owned())].into();
    let err = fake
        .manager()
        .apply(&resources(|r| r.unified(unified)))
        .unwrap_err();
    assert!(matches!(err, CgroupError::Unsupported { .. }), "{err}");
}

#[test]
fn a_refused_write_names_the_file_and_value() {
    let fake = Fake::new();
    let file = fake
        .root
        .join("memory")
        .join(CGROUP)
        .join("memory.limit_in_bytes");
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    let memory = LinuxMemoryBuilder::default()
        .limit(1 << 20)
        .build()
        .unwrap();
    let err = fake
        .manager()
        .apply(&resources(|r| r.memory(memory)))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("write \"1048576\" to "), "{text}");
    assert!(text.contains("memory.limit_in_bytes: "), "{text}");
}

#[test]
fn add_task_joins_each_hierarchy() {
    let fake = Fake::new();
    fake.manager().add_task(4242).unwrap();
    for (controller, _) in FILES {
        assert_eq!(
            fake.read(controller, "cgroup.procs"),
            "4242",
            "{controller}"
        );
    }
    assert_eq!(fake.manager().pids().unwrap(), [4242]);
}

#[test]
fn freezer_state_round_trip() {
    let fake = Fake::new();
    let m = fake.manager();
    m.freeze().unwrap();
    assert_eq!(fake.read("freezer", "freezer.state"), "FROZEN");
    assert_eq!(m.state().unwrap(), FreezerState::Frozen);
    m.thaw().unwrap();
    assert_eq!(m.state().unwrap(), FreezerState::Thawed);
}

#[test]
fn hybrid_freezes_and_joins_through_the_unified_dir() {
    let fake = Fake::new();
    let unified = fake.root.join("unified").join(CGROUP);
    fs::create_dir_all(&unified).unwrap();
    for (file, content) in [
        ("cgroup.procs", ""),
        ("cgroup.freeze", "0"),
        ("cgroup.events", "frozen 1\n"),
    ] {
        fs::write(unified.join(file), content).unwrap();
    }
    let m = Manager::new(&fake.root, &Path::new(CGROUP).into(), true);
    m.freeze().unwrap();
    assert_eq!(
        fs::read_to_string(unified.join("cgroup.freeze")).unwrap(),
        "1"
    );
    assert_eq!(fake.read("freezer", "freezer.state"), "THAWED");
    m.add_task(7).unwrap();
    assert_eq!(
        fs::read_to_string(unified.join("cgroup.procs")).unwrap(),
        "7"
    );
    assert_eq!(fake.read("memory", "cgroup.procs"), "7");
}

#[test]
fn destroy_reports_every_hierarchy_it_could_not_remove() {
    let fake = Fake::new();
    // Plain directories keep their files, so each rmdir fails and must be reported.
    let err = fake.manager().destroy().unwrap_err();
    let CgroupError::Teardown(errors) = &err else {
        panic!("{err}")
    };
    assert_eq!(errors.len(), FILES.len(), "{err}");
    assert!(err.to_string().contains("freezer"), "{err}");
}

#[test]
fn destroy_of_a_missing_cgroup_succeeds() {
    let fake = Fake::new();
    let m = Manager::new(&fake.root, &Path::new("berth/never-created").into(), false);
    m.destroy().unwrap();
}

#[test]
fn join_self_writes_0_to_the_tasks_of_each_hierarchy() {
    let fake = Fake::new();
    fs::remove_dir_all(fake.root.join("cpuacct")).unwrap();
    std::os::unix::fs::symlink("cpu", fake.root.join("cpuacct")).unwrap();
    for (controller, _) in FILES {
        fs::write(fake.root.join(controller).join(CGROUP).join("tasks"), "").unwrap();
    }
    fake.manager().join_self().unwrap();
    for (controller, _) in FILES {
        assert_eq!(fake.read(controller, "tasks"), "0", "{controller}");
    }
}

#[test]
fn controllers_mounted_together_are_one_hierarchy() {
    let fake = Fake::new();
    fs::remove_dir_all(fake.root.join("cpuacct")).unwrap();
    std::os::unix::fs::symlink("cpu", fake.root.join("cpuacct")).unwrap();
    let m = fake.manager();
    m.add_task(9).unwrap();
    assert!(m.dir(Controller::Cpuacct).is_some());
    assert_eq!(m.hierarchies().len(), FILES.len() - 1);
}

#[test]
fn stats_come_from_the_v1_controllers() {
    let fake = Fake::new();
    let dir = fake.root.join("memory").join(CGROUP);
    fs::write(dir.join("memory.usage_in_bytes"), "4096").unwrap();
    fs::write(
        fake.root.join("cpuacct").join(CGROUP).join("cpuacct.usage"),
        "77",
    )
    .unwrap();
    let stats = fake.manager().stats().unwrap();
    assert_eq!(stats.memory.usage.usage, 4096);
    assert_eq!(stats.cpu.usage.total, 77);
}

#[test]
fn oom_kills_come_from_memory_oom_control() {
    let fake = Fake::new();
    assert_eq!(fake.manager().oom_kills().unwrap(), 0);
    let file = fake
        .root
        .join("memory")
        .join(CGROUP)
        .join("memory.oom_control");
    fs::write(&file, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n").unwrap();
    assert_eq!(fake.manager().oom_kills().unwrap(), 3);
}
