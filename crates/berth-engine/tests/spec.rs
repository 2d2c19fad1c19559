//! Golden tests of `spec::build`: the process, capabilities and security settings Docker would
//! give a container, built over a busybox-like root in a temporary directory.

mod spec_support;

use std::collections::HashSet;

use berth_engine::spec::{CAPABILITIES, MASKED_PATHS, READONLY_PATHS};
use oci_spec::runtime::{Capability, LinuxNamespaceType, LinuxSeccompAction, PosixRlimitType};
use serde_json::json;
use spec_support::*;

fn caps(set: &Option<HashSet<Capability>>) -> HashSet<Capability> {
    set.clone().unwrap_or_default()
}

#[test]
fn default_run_is_dockers() {
    let f = Fixture::new();
    let b = f.build_ok(&request());
    let p = b.spec.process().as_ref().unwrap();
    assert_eq!(args(&b), ["sh"]);
    assert_eq!(
        env(&b),
        [
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=0123456789ab",
            "HOME=/root"
        ]
    );
    assert_eq!(p.cwd().to_str(), Some("/"));
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    assert_eq!(p.terminal(), Some(false));
    assert_eq!(p.no_new_privileges(), Some(false));
    let c = p.capabilities().as_ref().unwrap();
    let docker: HashSet<Capability> = CAPABILITIES.into_iter().collect();
    assert_eq!(caps(c.bounding()), docker);
    assert_eq!(caps(c.effective()), docker);
    assert_eq!(caps(c.permitted()), docker);
    assert!(caps(c.inheritable()).is_empty() && caps(c.ambient()).is_empty());
    let nofile = &p.rlimits().as_ref().unwrap()[0];
    assert_eq!(nofile.typ(), PosixRlimitType::RlimitNofile);
    assert_eq!(
        (nofile.soft(), nofile.hard()),
        (4096, 4096),
        "capped to the host's"
    );

    assert_eq!(b.hostname, "0123456789ab");
    assert_eq!(b.spec.hostname().as_deref(), Some("0123456789ab"));
    assert_eq!(b.stop_signal, "SIGTERM");
    let root = b.spec.root().as_ref().unwrap();
    assert_eq!((root.path(), root.readonly()), (&f.rootfs(), Some(false)));

    let l = linux(&b);
    let kinds: Vec<_> = l
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    use LinuxNamespaceType as T;
    assert_eq!(
        kinds,
        [T::Mount, T::Pid, T::Network, T::Ipc, T::Uts, T::Cgroup]
    );
    assert!(l.uid_mappings().is_none() && l.time_offsets().is_none());
    assert_eq!(
        l.masked_paths().as_ref().unwrap(),
        &MASKED_PATHS.map(String::from)
    );
    assert_eq!(
        l.readonly_paths().as_ref().unwrap(),
        &READONLY_PATHS.map(String::from)
    );
    assert_eq!(
        l.cgroups_path().as_ref().unwrap().to_str(),
        Some("/berth/0123456789ab")
    );
    let sysctl = l.sysctl().as_ref().unwrap();
    assert_eq!(sysctl["net.ipv4.ip_unprivileged_port_start"], "0");
    assert_eq!(sysctl["net.ipv4.ping_group_range"], "0 2147483647");
    let seccomp = l.seccomp().as_ref().expect("Docker's default profile");
    assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
    let rules = l.resources().as_ref().unwrap().devices().clone().unwrap();
    assert_eq!(
        (rules[0].allow(), rules[0].major()),
        (false, None),
        "deny all first"
    );
    assert!(l.devices().as_ref().unwrap().is_empty());
    assert!(b.spec.annotations().as_ref().unwrap().is_empty());
}

#[test]
fn image_settings_and_tty() {
    let mut f = Fixture::new();
    f.image = json!({"config": {"Entrypoint": ["/bin/entry"], "Cmd": ["run"], "User": "app",
        "WorkingDir": "/srv", "StopSignal": "SIGQUIT", "Env": ["A=1"]}});
    let mut req = request();
    req.tty = true;
    req.init = true;
    let b = f.build_ok(&req);
    assert_eq!(args(&b), ["/bin/entry", "run"]);
    assert_eq!(
        env(&b),
        [
            format!(
                "PATH={}",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ),
            "HOSTNAME=0123456789ab".into(),
            "TERM=xterm".into(),
            "A=1".into(),
            "HOME=/home/app".into()
        ]
    );
    let p = b.spec.process().as_ref().unwrap();
    assert_eq!((p.user().uid(), p.cwd().to_str()), (1000, Some("/srv")));
    assert_eq!(p.terminal(), Some(true));
    assert_eq!(b.stop_signal, "SIGQUIT");
    assert_eq!(
        b.spec.annotations().as_ref().unwrap()["io.berth.init"],
        "true"
    );
}

#[test]
fn user_with_group_and_group_add() {
    let f = Fixture::new();
    let mut req = request();
    req.user = Some("app:staff".into());
    req.group_add = vec!["wheel".into(), "4000".into()];
    let b = f.build_ok(&req);
    let u = b.spec.process().as_ref().unwrap().user();
    assert_eq!((u.uid(), u.gid()), (1000, 50));
    assert_eq!(u.additional_gids().as_deref(), Some(&[10, 4000][..]));
    assert_eq!((b.user.uid, b.user.home.as_str()), (1000, "/home/app"));
    assert!(env(&b).contains(&"HOME=/home/app".to_string()));
    // A user other than root keeps only the bounding set, as after execve.
    let c = b
        .spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    assert_eq!(caps(c.bounding()).len(), 14);
    assert!(caps(c.effective()).is_empty() && caps(c.permitted()).is_empty());

    req.user = Some("app".into());
    req.group_add.clear();
    let b = f.build_ok(&req);
    assert_eq!(b.user.gids, [10, 50], "memberships from /etc/group");

    req.user = Some("nobody".into());
    let e = f.build(&req).unwrap_err().to_string();
    assert_eq!(
        e,
        "unable to find user nobody: no matching entries in passwd file"
    );
    req.user = Some("app:nogroup".into());
    let e = f.build(&req).unwrap_err().to_string();
    assert_eq!(
        e,
        "unable to find group nogroup: no matching entries in group file"
    );
}

#[test]
fn passwd_is_read_inside_the_root() {
    let f = Fixture::new();
    // A root whose /etc/passwd points at a host file: resolved inside the root, it is missing.
    let host_passwd = f.dir.path().join("host-passwd");
    std::fs::write(&host_passwd, "evil:x:4242:4242::/evil:/bin/sh\n").unwrap();
    let link = f.rootfs().join("etc/passwd");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&host_passwd, &link).unwrap();
    let mut req = request();
    req.user = Some("evil".into());
    let e = f.build(&req).unwrap_err().to_string();
    assert!(e.starts_with("unable to find user evil"), "{e}");
    // Without a passwd entry root's HOME is "/", like runc's default.
    req.user = None;
    assert!(env(&f.build_ok(&req)).contains(&"HOME=/".to_string()));
}

#[test]
fn privileged_gets_the_hosts_capabilities_and_devices() {
    let f = Fixture::new();
    let mut req = request();
    req.privileged = true;
    let b = f.build_ok(&req);
    let host: HashSet<String> = berth_runtime::capabilities::host_bounding()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let c = b
        .spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    let bounding: HashSet<String> = caps(c.bounding())
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect();
    assert_eq!(bounding, host);
    let l = linux(&b);
    assert!(l.seccomp().is_none());
    assert!(l.masked_paths().is_none() && l.readonly_paths().is_none());
    assert!(!options(&b, "/sys").contains(&"ro".to_string()));
    assert!(!options(&b, "/sys/fs/cgroup").contains(&"ro".to_string()));
    let devices = l.devices().as_ref().unwrap();
    assert!(devices
        .iter()
        .any(|d| d.path().to_str() == Some("/dev/null")));
    let rules = l.resources().as_ref().unwrap().devices().clone().unwrap();
    assert_eq!((rules.len(), rules[0].allow()), (1, true));
}

#[test]
fn cap_add_and_drop() {
    let f = Fixture::new();
    let mut req = request();
    req.cap_add = vec!["net_admin".into()];
    req.cap_drop = vec!["CAP_NET_RAW".into(), "MKNOD".into()];
    let b = f.build_ok(&req);
    let c = b
        .spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    let set = caps(c.effective());
    assert_eq!(set.len(), 13);
    assert!(set.contains(&Capability::NetAdmin) && !set.contains(&Capability::NetRaw));
    req.cap_add = vec!["CHOWN".into()];
    req.cap_drop = vec!["ALL".into()];
    let b = f.build_ok(&req);
    let c = b
        .spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    assert_eq!(caps(c.bounding()), HashSet::from([Capability::Chown]));
    req.cap_add = vec!["CAP_WARP_DRIVE".into()];
    let e = f.build(&req).unwrap_err().to_string();
    assert!(
        e.starts_with("--cap-add CAP_WARP_DRIVE: unknown capability"),
        "{e}"
    );
}

#[test]
fn env_override_and_entrypoint() {
    let mut f = Fixture::new();
    f.image["config"]["Env"] = json!(["PATH=/bin", "MODE=prod", "KEEP=1"]);
    f.image["config"]["Entrypoint"] = json!(["/docker-entrypoint.sh"]);
    let mut req = request();
    req.env = vec!["MODE=dev".into(), "HOSTNAME=mine".into(), "KEEP".into()];
    req.entrypoint = Some(vec!["/bin/echo".into()]);
    req.cmd = vec!["hi".into()];
    let b = f.build_ok(&req);
    assert_eq!(
        env(&b),
        ["PATH=/bin", "HOSTNAME=mine", "MODE=dev", "HOME=/root"]
    );
    assert_eq!(args(&b), ["/bin/echo", "hi"]);
    req.entrypoint = Some(vec![String::new()]);
    req.cmd.clear();
    assert_eq!(
        args(&f.build_ok(&req)),
        ["sh"],
        "--entrypoint \"\" keeps the image's Cmd"
    );
    f.image["config"]["Cmd"] = json!(null);
    let e = f.build(&req).unwrap_err().to_string();
    assert!(e.starts_with("no command specified"), "{e}");
}

#[test]
fn seccomp_choices() {
    let f = Fixture::new();
    let mut req = request();
    req.seccomp = berth_engine::request::SeccompChoice::Unconfined;
    req.no_new_privileges = true;
    let b = f.build_ok(&req);
    assert!(linux(&b).seccomp().is_none());
    assert_eq!(
        b.spec.process().as_ref().unwrap().no_new_privileges(),
        Some(true)
    );
    let profile = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#;
    req.seccomp = berth_engine::request::SeccompChoice::Profile(profile.into());
    let b = f.build_ok(&req);
    let s = linux(&b).seccomp().clone().unwrap();
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
    assert_eq!(s.syscalls().as_ref().unwrap()[0].names(), &["mkdir"]);
    req.seccomp = berth_engine::request::SeccompChoice::Profile("{".into());
    let e = f.build(&req).unwrap_err().to_string();
    assert!(e.starts_with("--security-opt seccomp: "), "{e}");
}

#[test]
fn hostname_and_domainname() {
    let f = Fixture::new();
    let mut req = request();
    req.hostname = Some("web".into());
    req.domainname = Some("example.org".into());
    let b = f.build_ok(&req);
    assert_eq!(b.spec.hostname().as_deref(), Some("web"));
    assert_eq!(b.spec.domainname().as_deref(), Some("example.org"));
    assert!(env(&b).contains(&"HOSTNAME=web".to_string()));
    req.uts = berth_engine::request::NsMode::Host;
    let e = f.build(&req).unwrap_err().to_string();
    assert!(e.starts_with("-h web: conflicts with --uts"), "{e}");
    req.hostname = None;
    let e = f.build(&req).unwrap_err().to_string();
    assert!(
        e.starts_with("--domainname example.org: conflicts with --uts"),
        "{e}"
    );
    req.domainname = None;
    let b = f.build_ok(&req);
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(
        (b.hostname.as_str(), b.spec.hostname().as_deref()),
        (host.as_str(), None)
    );
}
