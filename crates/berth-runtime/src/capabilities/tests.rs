//! Tests of the capability plan (pure, against an injected host) and of the apply functions in
//! a re-executed copy of this test binary.

use super::*;
use oci_spec::runtime::Capability as C;
use std::process::Command;

fn set(caps: &[C]) -> Option<Capabilities> {
    Some(caps.iter().copied().collect())
}

fn spec(b: &[C], e: &[C], p: &[C], i: &[C], a: &[C]) -> LinuxCapabilities {
    let mut s = LinuxCapabilities::default();
    s.set_bounding(set(b));
    s.set_effective(set(e));
    s.set_permitted(set(p));
    s.set_inheritable(set(i));
    s.set_ambient(set(a));
    s
}

/// A host like this machine: everything but CAP_SYS_RESOURCE, kernel up to CAP_CHECKPOINT_RESTORE.
fn host() -> Host {
    let mut bounding = caps::all();
    bounding.remove(&KernelCap::CAP_SYS_RESOURCE);
    Host {
        bounding,
        last_cap: 40,
    }
}

fn kernel(caps: &[KernelCap]) -> CapsHashSet {
    caps.iter().copied().collect()
}

#[test]
fn missing_sets_are_empty() {
    let plan = plan_for(None, &host()).unwrap();
    assert_eq!(
        plan,
        CapabilityPlan {
            last_cap: 40,
            ..CapabilityPlan::default()
        }
    );
    let mut only_bounding = LinuxCapabilities::default();
    only_bounding.set_effective(None);
    only_bounding.set_permitted(None);
    only_bounding.set_inheritable(None);
    only_bounding.set_ambient(None);
    let plan = plan_for(Some(&only_bounding), &host()).unwrap();
    assert_eq!(plan.bounding.len(), 3);
    assert!(plan.inheritable.is_empty() && plan.ambient.is_empty() && plan.effective.is_empty());
}

#[test]
fn maps_names_to_kernel_capabilities() {
    let docker = [
        C::Chown,
        C::DacOverride,
        C::NetBindService,
        C::SysChroot,
        C::AuditWrite,
    ];
    let plan = plan_for(Some(&spec(&docker, &docker, &docker, &[], &[])), &host()).unwrap();
    let expected = kernel(&[
        KernelCap::CAP_CHOWN,
        KernelCap::CAP_DAC_OVERRIDE,
        KernelCap::CAP_NET_BIND_SERVICE,
        KernelCap::CAP_SYS_CHROOT,
        KernelCap::CAP_AUDIT_WRITE,
    ]);
    assert_eq!(plan.bounding, expected);
    assert_eq!(plan.effective, expected);
    assert_eq!(plan.permitted, expected);
    assert_eq!(mask(&plan.bounding), 0x2000_0000 | 0x4_0000 | 0x400 | 0x3);
}

#[test]
fn every_kernel_capability_has_an_oci_name() {
    let full = Host {
        bounding: caps::all(),
        last_cap: 63,
    };
    for cap in caps::all() {
        let oci: C = serde_json::from_str(&format!("\"{cap}\"")).unwrap();
        assert_eq!(kernel_cap(&oci, &full).unwrap(), cap);
    }
}

#[test]
fn capability_outside_the_host_bounding_set_is_refused() {
    let err = plan_for(Some(&spec(&[C::SysResource], &[], &[], &[], &[])), &host()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "capability CAP_SYS_RESOURCE is not in the host's bounding set: berth cannot grant it; \
         drop it from the config"
    );
    // Whatever set asks for it.
    let err = plan_for(Some(&spec(&[], &[], &[], &[], &[C::SysResource])), &host()).unwrap_err();
    assert!(
        matches!(err, CapabilityError::NotInHostBounding { .. }),
        "{err}"
    );
}

#[test]
fn the_last_capability_is_the_bounding_sets_highest_unless_more_is_asked() {
    let status = "CapBnd:\t000001ffffffffff\n";
    let host = Host::read(Some(status), None).unwrap();
    assert_eq!(host.last_cap, 40);
    // Only CAP_CHOWN and CAP_DAC_OVERRIDE ours, CAP_KILL asked: the kernel's own answer.
    let mut asked = LinuxCapabilities::default();
    asked.set_bounding(set(&[C::Kill]));
    let host = Host::read(Some("CapBnd:\t0000000000000003\n"), Some(&asked)).unwrap();
    let kernel: u8 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(host.last_cap, kernel);
    assert!(matches!(
        plan_for(Some(&asked), &host),
        Err(CapabilityError::NotInHostBounding { .. })
    ));
}

#[test]
fn capability_above_cap_last_cap_is_refused() {
    let old_kernel = Host {
        bounding: caps::all(),
        last_cap: 37,
    };
    let err = plan_for(Some(&spec(&[C::Perfmon], &[], &[], &[], &[])), &old_kernel).unwrap_err();
    assert!(
        matches!(
            err,
            CapabilityError::AboveLastCap {
                number: 38,
                last_cap: 37,
                ..
            }
        ),
        "{err}"
    );
    assert!(err
        .to_string()
        .starts_with("capability CAP_PERFMON is not supported by this kernel"));
}

#[test]
fn inconsistent_sets_are_refused() {
    let k = [C::Kill];
    let err = plan_for(Some(&spec(&k, &k, &[], &[], &[])), &host()).unwrap_err();
    assert!(
        matches!(err, CapabilityError::EffectiveNotPermitted { .. }),
        "{err}"
    );
    let err = plan_for(Some(&spec(&[], &[], &[], &k, &[])), &host()).unwrap_err();
    assert!(
        matches!(err, CapabilityError::InheritableNotBounded { .. }),
        "{err}"
    );
    // Ambient needs both permitted and inheritable: the rest is left out, as runc does.
    let plan = plan_for(Some(&spec(&k, &[], &k, &[], &k)), &host()).unwrap();
    assert!(plan.ambient.is_empty());
    let plan = plan_for(Some(&spec(&k, &[], &[], &k, &k)), &host()).unwrap();
    assert!(plan.ambient.is_empty());
    let plan = plan_for(Some(&spec(&k, &[], &k, &k, &k)), &host()).unwrap();
    assert_eq!(plan.ambient.len(), k.len());
}

/// The plan reads the calling thread's bounding set: CAP_SYS_RESOURCE, dropped from it in a
/// fresh copy of this test binary (as the harness drops it with setpriv), is refused.
#[test]
fn plan_reads_this_host() {
    const NAME: &str = "plan_reads_this_host";
    let plan = plan(Some(&LinuxCapabilities::default()), None).unwrap();
    assert_eq!(plan.bounding.len(), 3);
    if !nix::unistd::geteuid().is_root() {
        berth_sys::skip!("needs root to drop CAP_SYS_RESOURCE from the bounding set");
    }
    if !is_child(NAME) {
        return run_in_child(NAME);
    }
    caps::drop(None, CapSet::Bounding, KernelCap::CAP_SYS_RESOURCE).unwrap();
    let resource = spec(&[C::SysResource], &[], &[], &[], &[]);
    assert!(matches!(
        super::plan(Some(&resource), None),
        Err(CapabilityError::NotInHostBounding {
            name: KernelCap::CAP_SYS_RESOURCE
        })
    ));
}

#[test]
fn the_bounding_set_from_proc_is_the_one_prctl_reads() {
    assert_eq!(host_bounding(), caps::read(None, CapSet::Bounding).unwrap());
}

// The apply functions, in a fresh copy of this test binary so the runner keeps its privileges.

const CHILD_ENV: &str = "BERTH_CAPS_TEST_CHILD";

fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

fn run_in_child(name: &str) {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("{module}::{name}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    print!(
        "{}",
        stdout
            .lines()
            .filter(|l| l.starts_with("skipped:"))
            .collect::<String>()
    );
}

/// The `Cap*:` lines of a /proc/.../status text, as masks.
fn status_masks(status: &str) -> [u64; 5] {
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
    };
    ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"].map(field)
}

/// Drops to a small set, switches to nobody keeping capabilities, and checks both the calling
/// thread and a program it executes, whose sets come from the ambient set.
#[test]
fn drops_to_a_small_set_across_setuid_and_exec() {
    const NAME: &str = "drops_to_a_small_set_across_setuid_and_exec";
    if !nix::unistd::geteuid().is_root() {
        berth_sys::skip!("needs root");
    }
    if !is_child(NAME) {
        return run_in_child(NAME);
    }
    let three = [C::Chown, C::Kill, C::NetBindService];
    let spec = spec(
        &three,
        &[C::Chown, C::Kill],
        &three,
        &[C::Chown, C::NetBindService],
        &[C::NetBindService],
    );
    let plan = super::plan(Some(&spec), None).unwrap();
    drop_bounding(&plan).unwrap();
    keep_caps_across_setuid(true).unwrap();
    let nobody = 65534;
    nix::unistd::setresgid(nobody.into(), nobody.into(), nobody.into()).unwrap();
    nix::unistd::setresuid(nobody.into(), nobody.into(), nobody.into()).unwrap();
    keep_caps_across_setuid(false).unwrap();
    apply_sets(&plan).unwrap();

    // Capabilities are per thread: the test body may not run on the main thread.
    let own = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let sets = [
        &plan.inheritable,
        &plan.permitted,
        &plan.effective,
        &plan.bounding,
        &plan.ambient,
    ];
    assert_eq!(status_masks(&own), sets.map(mask), "{own}");

    let out = Command::new("/bin/cat")
        .arg("/proc/self/status")
        .output()
        .unwrap();
    let child = String::from_utf8(out.stdout).unwrap();
    assert!(
        child.lines().any(|l| l.starts_with("Uid:\t65534\t65534")),
        "{child}"
    );
    let ambient = mask(&plan.ambient);
    let expected = [
        mask(&plan.inheritable),
        ambient,
        ambient,
        mask(&plan.bounding),
        ambient,
    ];
    assert_eq!(status_masks(&child), expected, "{child}");
}

/// Root keeps its uid: the bounding set still limits what an exec'd program gets.
#[test]
fn root_is_limited_by_the_bounding_set() {
    const NAME: &str = "root_is_limited_by_the_bounding_set";
    if !nix::unistd::geteuid().is_root() {
        berth_sys::skip!("needs root");
    }
    if !is_child(NAME) {
        return run_in_child(NAME);
    }
    let two = [C::Kill, C::Setpcap];
    let plan = super::plan(Some(&spec(&two, &two, &two, &[], &[])), None).unwrap();
    drop_bounding(&plan).unwrap();
    apply_sets(&plan).unwrap();
    // Dropping again from the reduced set needs nothing it lacks.
    drop_bounding(&plan).unwrap();
    let out = Command::new("/bin/cat")
        .arg("/proc/self/status")
        .output()
        .unwrap();
    let child = String::from_utf8(out.stdout).unwrap();
    let m = mask(&plan.bounding);
    assert_eq!(status_masks(&child), [0, m, m, m, 0], "{child}");
}
