//! fs.suid_dumpable = 1 makes a process dumpable again when it changes user: there, berth-runc
//! does not rely on the non-dumpable init and runs it from a read-only view
//! (crates/berth-runtime/src/protect.rs). A file of its own, since it changes a sysctl of the
//! whole machine while it runs; it puts the old value back even when it fails.

use berth_harness::need_root;
use berth_harness::{unique, Bundle, Runtime};

const SYSCTL: &str = "/proc/sys/fs/suid_dumpable";

struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, &self.0);
    }
}

#[test]
fn with_suid_dumpable_1_the_init_runs_from_a_read_only_view() {
    need_root!();
    let old = std::fs::read_to_string(SYSCTL).expect("read fs.suid_dumpable");
    let _restore = Restore(old.trim().to_string());
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sleep", "60"]);
    let exe_with = |value: &str| {
        std::fs::write(SYSCTL, value).expect("set fs.suid_dumpable");
        let id = unique("dumpable");
        rt.create(&id, &bundle).ok();
        let pid = rt.state(&id).expect("state")["pid"].as_i64().expect("pid");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("read the init's exe");
        rt.run(&["delete", "--force", &id]).ok();
        exe.to_string_lossy().into_owned()
    };
    let with_0 = exe_with("0");
    let with_1 = exe_with("1");
    assert!(!with_0.starts_with("/run/berth/exe/"), "{with_0}");
    assert!(with_1.starts_with("/run/berth/exe/"), "{with_1}");
}
