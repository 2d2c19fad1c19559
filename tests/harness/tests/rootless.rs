//! Rootless berth (issue 15): an ordinary user's berth, as a throwaway user with its own
//! ranges in /etc/subuid and /etc/subgid runs it (`RootlessUser`): its own user namespace and
//! paths, the image's owners kept, the seed's lab, a pull from a loopback registry, and what
//! a setuid shell in the image cannot reach; each missing piece said in one line.
#![forbid(unsafe_code)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use berth_harness::image::{image_tar, Berth, IMAGE};
use berth_harness::registry::Registry;
use berth_harness::rootless::{RootlessUser, RANGE};
use berth_harness::{run_with_timeout, COMMAND_TIMEOUT};
use serde_json::Value;

/// The user with the test image imported as `busybox:latest`.
fn user_with_image() -> Option<RootlessUser> {
    let user = RootlessUser::create()?;
    let tar = image_tar();
    user.ok(&["import", tar.to_str().expect("utf-8"), IMAGE]);
    Some(user)
}

fn ns_inode(link: &str) -> u64 {
    let target = std::fs::read_link(link).expect("namespace link");
    let text = target.to_string_lossy();
    text.split_once(":[")
        .and_then(|(_, r)| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .expect("namespace inode")
}

#[test]
fn a_users_berth_keeps_its_state_private_and_maps_its_ranges() {
    let Some(user) = user_with_image() else {
        return;
    };
    let start = user.subid_start.expect("a range");
    let maps = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map /proc/self/gid_map",
    ]);
    let lines: Vec<Vec<String>> = maps
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(lines[0], ["0"], "the container's root: {maps}");
    for map in [&lines[1..3], &lines[3..5]] {
        assert_eq!(
            map[0],
            ["0", &user.uid.to_string(), "1"],
            "root is the user: {maps}"
        );
        assert_eq!(
            map[1],
            ["1", &start.to_string(), &RANGE.to_string()],
            "1.. are the user's range: {maps}"
        );
    }

    // Data under XDG, runtime state private to the user, and the pause process theirs.
    let data = user.data_root();
    assert!(data.join("image").is_dir() && data.join("containers").is_dir());
    let run = user.run_dir().join("berth");
    let meta = std::fs::metadata(&run).expect("the runtime directory");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (user.uid, 0o700));
    for file in ["pause.pid", "pause.lock"] {
        let meta = std::fs::metadata(run.join(file)).expect(file);
        assert_eq!(
            (meta.uid(), meta.mode() & 0o777),
            (user.uid, 0o600),
            "{file}"
        );
    }
    let pause = user.pause_pid().expect("a pause process");
    let owner = std::fs::metadata(format!("/proc/{pause}"))
        .expect("pause")
        .uid();
    assert_eq!(owner, user.uid);
    assert_ne!(
        ns_inode(&format!("/proc/{pause}/ns/user")),
        ns_inode("/proc/self/ns/user")
    );

    let info = user.ok(&["info"]);
    assert!(info.contains("Storage Driver: overlay2"), "{info}");
    assert!(
        info.contains("Overlay: native, in the user namespace"),
        "{info}"
    );
    assert!(info.contains("rootless"), "{info}");
    assert!(
        info.contains(&format!("Docker Root Dir: {}", data.display())),
        "{info}"
    );
}

#[test]
fn run_exec_logs_ps_stop_rm_and_volumes_work_as_a_user() {
    let Some(user) = user_with_image() else {
        return;
    };
    let id = user.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    assert_eq!(
        user.ok(&["ps", "--format", "{{.Names}} {{.Status}}"])
            .split(' ')
            .next(),
        Some("web")
    );
    assert_eq!(user.ok(&["exec", "web", "hostname"]), id[..12]);
    assert_eq!(user.ok(&["exec", "-u", "1000", "web", "id", "-u"]), "1000");
    berth_harness::eventually("the container's first line", || {
        (user.ok(&["logs", "web"]) == "started").then_some(())
    });
    user.ok(&["stop", "-t", "1", "web"]);
    assert!(user
        .ok(&["ps", "-a", "--format", "{{.Status}}"])
        .starts_with("Exited"));
    user.ok(&["rm", "web"]);
    assert_eq!(user.ok(&["ps", "-aq"]), "");

    user.ok(&["volume", "create", "data"]);
    user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let out = user.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        "data:/data",
        IMAGE,
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "kept");
    assert!(user
        .ok(&["volume", "ls", "-q"])
        .lines()
        .any(|v| v == "data"));
    user.ok(&["volume", "rm", "data"]);

    // No cgroup can be made here (no delegation): limits are ignored with a warning, as podman
    // ignores them, and the container runs.
    let ran = user.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        IMAGE,
        "echo",
        "limited",
    ]);
    assert_eq!(ran.stdout.trim(), "limited", "{}", ran.stderr);
    let unified_only = Path::new("/sys/fs/cgroup/cgroup.subtree_control").exists();
    if !unified_only {
        assert!(
            ran.stderr
                .contains("resource limits are not supported and ignored"),
            "{}",
            ran.stderr
        );
    }
    assert_eq!(
        user.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        IMAGE
    );
}

#[test]
fn image_files_keep_their_owners_and_the_containers_root_writes_them() {
    let Some(user) = user_with_image() else {
        return;
    };
    let start = user.subid_start.expect("a range");
    // A layer with a file of the image's user 1000: made in a container, committed.
    user.ok(&[
        "run",
        "--name",
        "owned",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "echo mine > /home/user/f && chown 1000:1000 /home/user/f /home/user",
    ]);
    user.ok(&["commit", "owned", "owned:1"]);
    user.ok(&["rm", "owned"]);
    let listing = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "owned:1",
        "ls",
        "-ln",
        "/home/user/f",
    ]);
    let fields: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(&fields[2..4], ["1000", "1000"], "{listing}");
    // Root of the container writes a file of another owner, as root does.
    let out = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "owned:1",
        "sh",
        "-c",
        "echo more >> /home/user/f && cat /home/user/f",
    ]);
    assert_eq!(out, "mine\nmore");
    // On the host, the layer's file belongs to the user's subordinate id for 1000.
    let layers = user.data_root().join("image/layers");
    let owned = std::fs::read_dir(&layers)
        .expect("layers")
        .flatten()
        .map(|e| e.path().join("diff/home/user/f"))
        .find(|p| p.exists())
        .expect("the committed layer holds /home/user/f");
    let meta = std::fs::symlink_metadata(owned).expect("stat");
    assert_eq!((meta.uid(), meta.gid()), (start + 999, start + 999));
}

#[test]
fn the_seeds_lab_as_a_user() {
    let Some(user) = user_with_image() else {
        return;
    };
    let out = user.ok(&[
        "run",
        "--name",
        "lab",
        "--pid=host",
        "--network",
        "none",
        IMAGE,
        "/probe",
    ]);
    let report: Value = serde_json::from_str(&out).expect("probe JSON");
    let id = user.ok(&["inspect", "--format", "{{.Id}}", "lab"]);
    let host_pid1 = std::fs::read("/proc/1/cmdline").expect("pid 1");
    let host_pid1 = String::from_utf8_lossy(&host_pid1)
        .trim_end_matches('\0')
        .replace('\0', " ");
    assert_eq!(report["pid1_cmdline"].as_str(), Some(host_pid1.as_str()));
    assert_eq!(
        report["ns"]["pid"].as_u64(),
        Some(ns_inode("/proc/self/ns/pid"))
    );
    assert_ne!(
        report["ns"]["user"].as_u64(),
        Some(ns_inode("/proc/self/ns/user")),
        "a private user namespace"
    );
    let pause = user.pause_pid().expect("pause");
    assert_eq!(
        report["ns"]["user"].as_u64(),
        Some(ns_inode(&format!("/proc/{pause}/ns/user"))),
        "the user's rootless namespace"
    );
    assert_eq!(report["hostname"].as_str(), Some(&id[..12]));
    let env = report["env"].to_string();
    assert!(env.contains(&format!("HOSTNAME={}", &id[..12])), "{env}");
    user.ok(&["rm", "lab"]);

    // A detached loop's environment, read from the host as root reads it.
    user.ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "export F00=BAR; while true; do sleep 100; done",
    ]);
    let pid: i32 = user
        .ok(&["inspect", "--format", "{{.State.Pid}}", "loop"])
        .parse()
        .expect("pid");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let ppid: i32 = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .expect("ppid");
    let monitor = std::fs::read(format!("/proc/{ppid}/cmdline")).expect("monitor cmdline");
    assert!(
        String::from_utf8_lossy(&monitor).contains("__monitor"),
        "the loop's parent is its monitor"
    );
    let env = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    assert!(
        String::from_utf8_lossy(&env).contains("HOSTNAME="),
        "the container's environment"
    );
}

#[test]
fn a_pull_from_a_loopback_registry_runs_as_a_user() {
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let Some(user) = RootlessUser::create() else {
        return;
    };
    let root = Berth::new();
    let name = format!("{}/rootless/busybox:1", registry.addr);
    root.ok(&["tag", IMAGE, &name]);
    root.ok(&["push", &name]);
    user.ok(&["pull", &name]);
    let out = user.ok(&["run", "--rm", "--network", "none", &name, "echo", "pulled"]);
    assert_eq!(out, "pulled");
}

/// An image whose /bin/suid is busybox, setuid root: run by the container's user 1000 it is
/// the container's root, and still no more than the user outside.
#[test]
fn a_setuid_shell_in_the_image_gains_nothing_outside() {
    let Some(user) = user_with_image() else {
        return;
    };
    // The test image with /bin/suid added: extracted and packed again by root, owners kept.
    let dir = user.home.join("suid");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut extract = Command::new("tar");
    extract.arg("-xf").arg(image_tar()).arg("-C").arg(&dir);
    run_with_timeout(extract, COMMAND_TIMEOUT).ok();
    // busybox drops a setuid root for its applets: a tiny static wrapper keeps it, and runs
    // what it is given as root (setuid(0) first, as a setuid shell would).
    let source = user.home.join("suid.c");
    std::fs::write(
        &source,
        "#include <unistd.h>\nint main(int c, char **v) { setgid(0); setuid(0); \
         execv(v[1], v + 1); return 127; }\n",
    )
    .expect("write suid.c");
    let mut cc = Command::new("cc");
    cc.args(["-static", "-o"])
        .arg(dir.join("bin/suid"))
        .arg(&source);
    if !berth_harness::have("cc") {
        berth_harness::skip!("needs cc (gcc) and a static libc to build the setuid shell");
    }
    run_with_timeout(cc, COMMAND_TIMEOUT).ok();
    std::fs::set_permissions(
        dir.join("bin/suid"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .expect("chmod");
    let tar = user.home.join("suid.tar");
    let mut pack = Command::new("tar");
    pack.args(["--numeric-owner", "-C"])
        .arg(&dir)
        .arg("-cf")
        .arg(&tar)
        .arg(".");
    run_with_timeout(pack, COMMAND_TIMEOUT).ok();
    std::fs::set_permissions(&tar, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    user.ok(&["import", tar.to_str().expect("utf-8"), "suid:2"]);
    let mode = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "suid:2",
        "stat",
        "-c",
        "%a %u",
        "/bin/suid",
    ]);
    assert_eq!(mode, "4755 0", "the image keeps its setuid root binary");

    let script = "/bin/suid /bin/id -u; \
        /bin/suid /bin/cat /host/shadow >/dev/null 2>&1 && echo SHADOW-READ; \
        /bin/suid /bin/ls /host/root >/dev/null 2>&1 && echo ROOT-LISTED; \
        /bin/suid /bin/sh -c 'echo x > /host/root/berth-escape' 2>/dev/null && echo ROOT-WRITTEN; \
        echo done";
    let ran = user.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "1000",
        "-v",
        "/etc/shadow:/host/shadow:ro",
        "-v",
        "/root:/host/root",
        "suid:2",
        "sh",
        "-c",
        script,
    ]);
    let out = ran.stdout.trim().to_string();
    assert!(out.ends_with("done"), "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(
        out.lines().next(),
        Some("0"),
        "the setuid shell is the container's root: {out}"
    );
    for escaped in ["SHADOW-READ", "ROOT-LISTED", "ROOT-WRITTEN"] {
        assert!(!out.contains(escaped), "{escaped}: {out}");
    }
    assert!(!Path::new("/root/berth-escape").exists());
    // The container's root itself is no more: the user outside.
    let ran = user.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/etc/shadow:/host/shadow:ro",
        IMAGE,
        "cat",
        "/host/shadow",
    ]);
    assert!(
        !ran.success(),
        "root of a rootless container read /etc/shadow"
    );
}

#[test]
fn missing_pieces_are_named_in_one_line() {
    let Some(user) = RootlessUser::create() else {
        return;
    };
    // newuidmap not found.
    let ran = run_with_timeout(
        user.command_env(&["images"], &[("PATH", "/nonexistent")]),
        COMMAND_TIMEOUT,
    );
    assert!(!ran.success());
    assert!(
        ran.stderr.contains("newuidmap not found") && ran.stderr.contains("apt-get install uidmap"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    // User networks: not there yet, and said so.
    let ran = user.berth(&["network", "create", "n1"]);
    assert!(!ran.success());
    assert!(
        ran.stderr.contains("user networks are not supported"),
        "{}",
        ran.stderr
    );
    // A runtime directory that cannot be made.
    let ran = run_with_timeout(
        user.command_env(&["images"], &[("XDG_RUNTIME_DIR", "/proc/berth-nowhere")]),
        COMMAND_TIMEOUT,
    );
    assert!(!ran.success());
    assert!(ran.stderr.contains("XDG_RUNTIME_DIR"), "{}", ran.stderr);
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);

    // No ranges at all: a warning saying what that limits, and root alone still works.
    let Some(lone) = RootlessUser::without_ranges() else {
        return;
    };
    let ran = lone.berth(&["images"]);
    assert!(ran.success(), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("no ranges") && ran.stderr.contains("usermod --add-subuids"),
        "{}",
        ran.stderr
    );
    let tar = image_tar();
    lone.ok(&["import", tar.to_str().expect("utf-8"), IMAGE]);
    let maps = lone.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "cat",
        "/proc/self/uid_map",
    ]);
    let fields: Vec<&str> = maps.split_whitespace().collect();
    assert_eq!(fields, ["0", &lone.uid.to_string(), "1"]);

    // An empty range (count 0), which usermod will not write: named before newuidmap runs.
    let Some(empty) = RootlessUser::without_ranges() else {
        return;
    };
    for file in ["/etc/subuid", "/etc/subgid"] {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .expect(file);
        writeln!(f, "{}:1500000000:0", empty.name).expect("append a range");
    }
    let ran = empty.berth(&["images"]);
    assert!(!ran.success());
    assert!(
        ran.stderr.contains("/etc/subuid") && ran.stderr.contains("is empty (count 0)"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
}

/// The host's first non-loopback IPv4 address, which a rootless container reaches through
/// slirp4netns (the host's loopback it does not: `--disable-host-loopback`).
fn host_address() -> Option<std::net::Ipv4Addr> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    probe.connect("10.255.255.255:9").ok()?;
    match probe.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

#[test]
fn the_default_network_goes_out_resolves_through_slirp_and_publishes_ports() {
    if !berth_harness::have("slirp4netns") {
        berth_harness::skip!("needs slirp4netns (scripts/setup)");
    }
    let tun = std::fs::metadata("/dev/net/tun").map(|m| m.mode() & 0o777);
    if tun.ok() != Some(0o666) {
        berth_harness::skip!("needs /dev/net/tun usable by users (scripts/setup makes it 0666)");
    }
    let Some(user) = user_with_image() else {
        return;
    };
    let conf = user.ok(&["run", "--rm", IMAGE, "cat", "/etc/resolv.conf"]);
    assert!(
        conf.contains("nameserver 10.0.2.3"),
        "slirp4netns' DNS forwarder: {conf}"
    );

    // Out: a server on the host's address answers the container.
    if let Some(ip) = host_address() {
        let listener = std::net::TcpListener::bind((ip, 0)).expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut conn, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nout");
        });
        let url = format!("http://{ip}:{port}/");
        let got = user.ok(&["run", "--rm", IMAGE, "wget", "-q", "-O", "-", &url]);
        assert_eq!(got, "out");
        server.join().expect("server");
    }

    // In: a published port answers on the host's loopback.
    let port = berth_harness::registry::free_port();
    let publish = format!("{port}:80");
    user.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        "echo published > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    let shown = user.ok(&["port", "web"]);
    assert!(
        shown.contains(&format!("80/tcp -> 0.0.0.0:{port}")),
        "{shown}"
    );
    let body = berth_harness::eventually("the published port to answer", || {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply).ok()?;
        reply.contains("published").then_some(reply)
    });
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    user.ok(&["rm", "-f", "web"]);
    assert!(
        !user
            .run_dir()
            .join("berth/slirp")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "slirp4netns' socket and pid go with the container"
    );
}

/// `berth-runc spec --rootless` then `run` as an ordinary user, as runc's rootless mode: root
/// in the container is the user, state under `$XDG_RUNTIME_DIR/berth-runc`, and `--rootless`
/// takes runc's values. runc, given the same bundle, says the same.
#[test]
fn berth_runc_runs_a_spec_rootless_bundle_as_a_user() {
    let Some(user) = RootlessUser::create() else {
        return;
    };
    let bundle = user.home.join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs")).expect("mkdir");
    let mut extract = Command::new("tar");
    extract
        .arg("-xf")
        .arg(image_tar())
        .arg("-C")
        .arg(bundle.join("rootfs"));
    run_with_timeout(extract, COMMAND_TIMEOUT).ok();
    let mut chown = Command::new("chown");
    chown
        .args(["-R", &format!("{}:{}", user.uid, user.uid)])
        .arg(&bundle);
    run_with_timeout(chown, COMMAND_TIMEOUT).ok();
    let runc = berth_harness::target_dir().join("debug/berth-runc");
    let as_user = |binary: &str, args: &str| {
        user.shell(&format!(
            "export XDG_RUNTIME_DIR={}; cd {} && {binary} {args}",
            user.run_dir().display(),
            bundle.display()
        ))
    };
    std::fs::create_dir_all(user.run_dir()).expect("run dir");
    let mut chown = Command::new("chown");
    chown.arg(user.uid.to_string()).arg(user.run_dir());
    run_with_timeout(chown, COMMAND_TIMEOUT).ok();
    let runc = runc.to_str().expect("utf-8");
    as_user(runc, "spec --rootless").ok();
    let config = bundle.join("config.json");
    let mut spec: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("config")).expect("json");
    spec["process"]["terminal"] = Value::Bool(false);
    spec["process"]["args"] = serde_json::json!(["/bin/sh", "-c", "id -u; cat /proc/self/uid_map"]);
    std::fs::write(&config, spec.to_string()).expect("write config");

    let ours = as_user(runc, "run c1").ok();
    let want = format!("0\n         0 {:>10}          1\n", user.uid);
    assert_eq!(ours, want);
    for mode in ["auto", "true"] {
        let again = as_user(runc, &format!("--rootless {mode} run c-{mode}")).ok();
        assert_eq!(again, want, "--rootless {mode}");
    }
    assert!(
        user.run_dir().join("berth-runc").is_dir(),
        "runc's state root, as runc's"
    );
    let bad = as_user(runc, "--rootless maybe run c3");
    assert!(
        !bad.success() && bad.stderr.contains("use true, false or auto"),
        "{bad:?}"
    );
    if berth_harness::have("runc") {
        let reference = as_user("runc", "run r1").ok();
        assert_eq!(reference, want, "runc on the same bundle");
    }
}

/// A build's RUN steps run as the user's namespace's root, their files owned as written; the
/// API service listens on the user's own socket (`$XDG_RUNTIME_DIR/berth/docker.sock`, 0600).
#[test]
fn build_and_the_api_service_work_as_a_user() {
    let Some(user) = user_with_image() else {
        return;
    };
    let context = user.home.join("ctx");
    std::fs::create_dir_all(&context).expect("mkdir");
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo built > /built && chown 1000 /built\nCMD [\"cat\", \"/built\"]\n"),
    )
    .expect("Dockerfile");
    let mut chown = Command::new("chown");
    chown.args(["-R", &user.uid.to_string()]).arg(&context);
    run_with_timeout(chown, COMMAND_TIMEOUT).ok();
    user.ok(&[
        "build",
        "-q",
        "-t",
        "built:1",
        context.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        user.ok(&["run", "--rm", "--network", "none", "built:1"]),
        "built"
    );
    let owner = user.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "built:1",
        "stat",
        "-c",
        "%u",
        "/built",
    ]);
    assert_eq!(owner, "1000");

    let socket = user.run_dir().join("berth/docker.sock");
    let mut service = user
        .command_env(&["system", "service", "--time", "60"], &[])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn the service");
    let reply = berth_harness::eventually("the service's socket to answer", || {
        use std::io::{Read, Write};
        let mut conn = std::os::unix::net::UnixStream::connect(&socket).ok()?;
        conn.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply).ok()?;
        Some(reply)
    });
    assert!(reply.ends_with("OK"), "{reply}");
    let meta = std::fs::metadata(&socket).expect("socket");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (user.uid, 0o600));
    let _ = service.kill();
    let _ = service.wait();
}

/// fuse-overlayfs, the fallback where the kernel refuses overlayfs in the user's namespace
/// (chosen here with BERTH_OVERLAY=fuse): the image's owners as with the native overlay, the
/// choice in `berth info`; without a /dev/fuse the user may open, one line saying so.
#[test]
fn storage_falls_back_to_fuse_overlayfs() {
    if !berth_harness::have("fuse-overlayfs") {
        berth_harness::skip!("needs fuse-overlayfs (scripts/setup)");
    }
    let Some(user) = user_with_image() else {
        return;
    };
    let fuse = [("BERTH_OVERLAY", "fuse")];
    let berth = |args: &[&str]| run_with_timeout(user.command_env(args, &fuse), COMMAND_TIMEOUT);
    let info = berth(&["info"]).ok();
    assert!(info.contains("Overlay: fuse-overlayfs"), "{info}");
    let run = ["run", "--rm", "--network", "none", IMAGE, "sh", "-c"];
    let script = "stat -c %u /etc/passwd; mount | grep ' on / '; echo w > /etc/new && cat /etc/new";
    let ran = berth(&[&run[..], &[script]].concat());
    let usable = std::fs::metadata("/dev/fuse").is_ok_and(|m| m.mode() & 0o006 == 0o006);
    if usable {
        let out = ran.ok();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "0", "{out}");
        assert!(lines[1].contains("fuse-overlayfs"), "{out}");
        assert_eq!(lines[2], "w", "{out}");
    } else {
        assert!(!ran.success());
        assert!(
            ran.stderr.contains("/dev/fuse") && ran.stderr.contains("chmod 0666"),
            "{}",
            ran.stderr
        );
        assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    }
}
