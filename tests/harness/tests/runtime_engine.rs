//! Black-box tests of what the engine needs from the runtime: lo up in a new network namespace,
//! a missing or non-executable program told apart (127/126) at create, and the `--init` reaper
//! of annotation `io.berth.init=true`.

use berth_harness::need_root;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_harness::{unique, Bundle, Runtime};
use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType};
use serde_json::Value;

fn probe(rt: &Runtime, bundle: &Bundle) -> Value {
    let out = rt.run_container(&unique("probe"), bundle).ok();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {out}"))
}

fn lo_flags(v: &Value) -> u64 {
    v["links"]["lo"]
        .as_u64()
        .unwrap_or_else(|| panic!("no lo in the probe's links: {}", v["links"]))
}

const IFF_UP: u64 = 1;

/// Adds a new user namespace mapping 0 to host 100000 and hands the rootfs to that user.
fn add_user_namespace(bundle: &mut Bundle) {
    let linux = bundle.spec_mut().linux_mut().as_mut().unwrap();
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    let mut user = LinuxNamespace::default();
    user.set_typ(LinuxNamespaceType::User);
    namespaces.push(user);
    linux.set_namespaces(Some(namespaces));
    let map = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(100000u32)
        .size(65536u32)
        .build()
        .unwrap();
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    bundle.write();
    let chown = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(bundle.rootfs())
        .status()
        .unwrap();
    assert!(chown.success());
}

#[test]
fn lo_is_up_in_a_new_network_namespace() {
    need_root!();
    let rt = Runtime::new();
    // oci-spec's default config has a new network namespace and mounts sysfs.
    let mut bundle = Bundle::new(&["berth-probe"]);
    let v = probe(&rt, &bundle);
    assert_eq!(lo_flags(&v) & IFF_UP, IFF_UP, "lo is down: {}", v["links"]);
    // The same inside a new user namespace, which owns the new network namespace.
    add_user_namespace(&mut bundle);
    let v = probe(&rt, &bundle);
    assert_eq!(lo_flags(&v) & IFF_UP, IFF_UP, "lo is down: {}", v["links"]);
}

#[test]
fn a_missing_program_fails_create_with_127_and_a_non_executable_one_with_126() {
    need_root!();
    let rt = Runtime::new();
    let cases: [(&[&str], i32, &str); 4] = [
        (&["no-such-program"], 127, "not found in $PATH"),
        (&["/bin/no-such-program"], 127, "not found"),
        (&["/etc/passwd"], 126, "not an executable"),
        (&["/bin"], 126, "not an executable"),
    ];
    for (args, code, says) in cases {
        let bundle = Bundle::new(args);
        let id = unique("noexec");
        // At create, before the container exists, as runc ≥ 1.1 does.
        let ran = rt.create(&id, &bundle);
        assert_eq!(ran.code(), Some(code), "{args:?}: {ran:?}");
        assert!(ran.stderr.contains(says), "{args:?}: {}", ran.stderr);
        assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
        assert!(rt.state(&id).is_none(), "{id} was left behind");
        let ran = rt.run_container(&unique("noexec-run"), &bundle);
        assert_eq!(ran.code(), Some(code), "run {args:?}: {ran:?}");
    }
}

fn with_init(args: &[&str]) -> Bundle {
    let mut bundle = Bundle::new(args);
    let spec = bundle.spec_mut();
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    annotations.insert("io.berth.init".into(), "true".into());
    spec.set_annotations(Some(annotations));
    bundle.write();
    bundle
}

#[test]
fn init_reaper_is_pid_1_and_passes_the_exit_status_through() {
    need_root!();
    let rt = Runtime::new();
    let v = probe(&rt, &with_init(&["berth-probe"]));
    assert_ne!(
        v["pid"], 1,
        "the program must not be PID 1 under the reaper"
    );
    assert_eq!(v["ppid"], 1);
    let pid1 = v["pid1_cmdline"].as_str().unwrap_or_default();
    assert!(!pid1.contains("berth-probe"), "PID 1 is {pid1:?}");
    let ran = rt.run_container(&unique("init-exit"), &with_init(&["sh", "-c", "exit 5"]));
    assert_eq!(ran.code(), Some(5), "{ran:?}");
    // A program killed by a signal: 128 + n, as a shell reports it.
    let killed = with_init(&["sh", "-c", "kill -9 $$"]);
    assert_eq!(
        rt.run_container(&unique("init-sig"), &killed).code(),
        Some(137)
    );
    // Without the annotation the program is PID 1 itself.
    let v = probe(&rt, &Bundle::new(&["berth-probe"]));
    assert_eq!(v["pid"], 1);
}

/// Zombies in /proc other than the caller: `stat` field 3 is the state.
const COUNT_ZOMBIES: &str = "z=0; for f in /proc/[0-9]*/stat; do \
    read -r _ _ state _ < $f 2>/dev/null && [ \"$state\" = Z ] && z=$((z+1)); done";

#[test]
fn init_reaper_reaps_orphans() {
    need_root!();
    let rt = Runtime::new();
    // An orphan (its parent subshell exits at once) blocked on a fifo is re-parented to PID 1;
    // once it is let go, only PID 1 can reap it. The loop ends when no zombie is left; without a
    // reaper it would not, and the harness's command timeout fails the test.
    let script = format!(
        "mkfifo /tmp/f && (cat /tmp/f >/dev/null &) && echo go > /tmp/f && \
         while :; do {COUNT_ZOMBIES}; [ $z = 0 ] && break; done; echo reaped"
    );
    let bundle = with_init(&["sh", "-c", &script]);
    let ran = rt.run_container(&unique("init-reap"), &bundle);
    assert_eq!(
        (ran.code(), ran.stdout.as_str()),
        (Some(0), "reaped\n"),
        "{ran:?}"
    );
}

/// Waits for `path` to appear, failing after a generous bound (a hang, not a timing check).
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + berth_harness::scaled(Duration::from_secs(30));
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn init_reaper_forwards_sigterm_to_the_program() {
    need_root!();
    let rt = Runtime::new();
    let script = "trap 'exit 7' TERM; touch /tmp/ready; while :; do sleep 1; done";
    let bundle = with_init(&["sh", "-c", script]);
    let id = unique("init-term");
    let path = bundle.path().to_str().unwrap().to_owned();
    let ran = std::thread::scope(|s| {
        let running = s.spawn(|| rt.run(&["run", "--bundle", &path, &id]));
        wait_for_file(&bundle.rootfs().join("tmp/ready"));
        // To PID 1, which is the reaper: the shell only sees it if it is forwarded.
        rt.kill(&id, "TERM").ok();
        running.join().unwrap()
    });
    assert_eq!(ran.code(), Some(7), "{ran:?}");
}
