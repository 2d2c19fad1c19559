//! Black-box tests of descriptors passed into the container (--preserve-fds, systemd's
//! LISTEN_FDS/LISTEN_PID) and of the container's session keyring (--no-new-keyring, and its
//! permissions as runc sets them).

use berth_harness::need_root;
use std::process::Command;

use berth_harness::{run_with_timeout, skip, unique, Bundle, Runtime, COMMAND_TIMEOUT};

/// `sh` opens `a` at fd 3 and `b` at fd 4, sets `env`, then becomes the runtime (same pid, so
/// `LISTEN_PID=$$` names the runtime) running `args`.
fn runtime_with_fds(rt: &Runtime, dir: &std::path::Path, env: &str, args: &[&str]) -> String {
    std::fs::write(dir.join("a"), "from-fd-3\n").unwrap();
    std::fs::write(dir.join("b"), "from-fd-4\n").unwrap();
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "exec 3<'{a}' 4<'{b}'; {env} exec '{bin}' --root '{root}' {args}",
        a = dir.join("a").display(),
        b = dir.join("b").display(),
        bin = rt.binary().display(),
        root = rt.root().display(),
        args = quoted.join(" ")
    );
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    ran.stdout
}

const SHOW_FDS: &[&str] = &[
    "sh",
    "-c",
    "echo \"fds=${LISTEN_FDS:-none} pid=${LISTEN_PID:-none}\"; \
     cat <&3 || echo no-fd-3; cat <&4 || echo no-fd-4",
];

#[test]
fn preserve_fds_and_listen_fds_pass_descriptors_in() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(SHOW_FDS);
    let path = bundle.path().to_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &str, extra: &[&str], prefix: &str| {
        let id = unique(prefix);
        let mut args = vec!["run", "--bundle", &path];
        args.extend_from_slice(extra);
        args.push(&id);
        // Not run through `rt.run`, so removed here (a no-op when `run` already deleted it).
        let out = runtime_with_fds(&rt, dir.path(), env, &args);
        let _ = rt.run(&["delete", "--force", &id]);
        out
    };
    // Nothing asked: no descriptor of ours reaches the container.
    assert_eq!(
        run("", &[], "nofds"),
        "fds=none pid=none\nno-fd-3\nno-fd-4\n"
    );
    assert_eq!(
        run("", &["--preserve-fds", "2"], "preserve"),
        "fds=none pid=none\nfrom-fd-3\nfrom-fd-4\n"
    );
    // systemd socket activation: one socket at fd 3, then one preserved fd after it.
    assert_eq!(
        run(
            "LISTEN_FDS=1 LISTEN_PID=$$",
            &["--preserve-fds", "1"],
            "listen"
        ),
        "fds=1 pid=1\nfrom-fd-3\nfrom-fd-4\n"
    );
    // LISTEN_FDS meant for another process is not ours to pass on.
    assert_eq!(
        run("LISTEN_FDS=1 LISTEN_PID=1", &[], "listen-other"),
        "fds=none pid=none\nno-fd-3\nno-fd-4\n"
    );
}

/// The permission column of the session keyring runc's way names for container `id`.
fn session_keyring_perm(keys: &str, id: &str) -> String {
    let ring = format!("_ses.{id}:");
    let line = keys
        .lines()
        .find(|l| l.contains(" keyring ") && l.contains(&ring))
        .unwrap_or_else(|| panic!("no session keyring {ring} in:\n{keys}"));
    line.split_whitespace().nth(4).unwrap().to_string()
}

/// A bundle that lists the keys it can see; /proc/keys is unmasked for it.
fn keys_bundle() -> Bundle {
    let mut bundle = Bundle::new(&["cat", "/proc/keys"]);
    let linux = bundle.spec_mut().linux_mut().as_mut().unwrap();
    let masked: Vec<String> = linux
        .masked_paths()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p != "/proc/keys")
        .collect();
    linux.set_masked_paths(Some(masked));
    bundle.write();
    bundle
}

#[test]
fn the_container_gets_a_session_keyring_of_its_own_unless_no_new_keyring() {
    need_root!();
    if !std::path::Path::new("/proc/keys").exists() {
        skip!("needs /proc/keys (CONFIG_KEYS)");
    }
    let rt = Runtime::new();
    let bundle = keys_bundle();
    let path = bundle.path().to_str().unwrap();
    let id = unique("keyring");
    let keys = rt.run(&["run", "--bundle", path, &id]).ok();
    // runc's permissions: the kernel's possessor-all, user view/read/link, plus user search.
    assert_eq!(session_keyring_perm(&keys, &id), "3f1b0000", "{keys}");
    let id = unique("no-keyring");
    let keys = rt
        .run(&["run", "--no-new-keyring", "--bundle", path, &id])
        .ok();
    assert!(
        !keys.contains(&format!("_ses.{id}")),
        "--no-new-keyring made a keyring:\n{keys}"
    );
}

#[test]
fn in_a_user_namespace_the_session_keyring_is_searchable_by_others() {
    need_root!();
    if !std::path::Path::new("/proc/keys").exists() {
        skip!("needs /proc/keys (CONFIG_KEYS)");
    }
    let rt = Runtime::new();
    let mut bundle = keys_bundle();
    let linux = bundle.spec_mut().linux_mut().as_mut().unwrap();
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    let mut user = oci_spec::runtime::LinuxNamespace::default();
    user.set_typ(oci_spec::runtime::LinuxNamespaceType::User);
    namespaces.push(user);
    linux.set_namespaces(Some(namespaces));
    let map = oci_spec::runtime::LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(300000u32)
        .size(65536u32)
        .build()
        .unwrap();
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    bundle.write();
    let chown = Command::new("chown")
        .args(["-R", "300000:300000"])
        .arg(bundle.rootfs())
        .status()
        .unwrap();
    assert!(chown.success());
    let id = unique("keyring-userns");
    let keys = rt
        .run(&["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .ok();
    // runc's: "other" search instead of "user" search, since the keyring's uid is not mapped.
    assert_eq!(session_keyring_perm(&keys, &id), "3f130008", "{keys}");
}
