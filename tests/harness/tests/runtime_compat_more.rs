//! More of issue 11's runc compatibility, each case run under runc (Debian's /usr/sbin/runc,
//! the reference) and under berth-runc on the same bundle, and what each did compared.

use std::path::Path;

use berth_harness::{have, need_root, skip, unique, Bundle, Runtime};

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

#[test]
fn an_os_error_is_told_once() {
    need_root!();
    need_runc!();
    let bundle = Bundle::new(&["true"]);
    for (name, rt) in runtimes() {
        let id = unique("once");
        let args = ["create", "--pid-file", "/nonexistent/pid", "--bundle"];
        let ran = rt.run(&[&args[..], &[path(bundle.path()), &id]].concat());
        assert_eq!(ran.code(), Some(1), "{name}: {ran:?}");
        let told = ran.stderr.to_lowercase();
        assert_eq!(
            told.matches("no such file or directory").count(),
            1,
            "{name}: {told}"
        );
        assert_eq!(
            rt.run(&["list", "-q"]).ok().trim(),
            "",
            "{name}: left behind"
        );
    }
}
