//! Rootless berth's default network, berth-runc rootless, builds, the API service and the
//! fuse-overlayfs fallback.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use berth_harness::image::{image_tar, IMAGE};
use berth_harness::rootless::RootlessUser;
use berth_harness::{run_with_timeout, COMMAND_TIMEOUT};
use serde_json::Value;

use crate::user_with_image;

/// The host's first non-loopback IPv4 address, which a rootless container reaches through
/// slirp4netns (the host's loopback it does not: `--disable-host-loopback`).
pub(crate) fn host_address() -> Option<std::net::Ipv4Addr> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    probe.connect("10.255.255.255:9").ok()?;
    match probe.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// A server on `ip` that answers one request with "out": its URL and its thread.
pub(crate) fn answer_once(ip: std::net::Ipv4Addr) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind((ip, 0)).expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 512];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nout");
    });
    (format!("http://{ip}:{port}/"), server)
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
        let (url, server) = answer_once(ip);
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
    // A user network through the service: its threads may not fork into the user networks'
    // namespace, so the change runs in an exec'd `berth __netns` ("fork refused" before).
    let request = |head: &str, body: &str| {
        use std::io::{Read, Write};
        let mut conn = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
        let text = format!(
            "{head} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(text.as_bytes()).expect("send");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).expect("reply");
        reply
    };
    let created = request("POST /networks/create", r#"{"Name":"apinet"}"#);
    assert!(created.starts_with("HTTP/1.0 201"), "{created}");
    assert_eq!(
        user.ok(&["network", "ls", "-q", "--filter", "name=apinet"])
            .lines()
            .count(),
        1
    );
    let removed = request("DELETE /networks/apinet", "");
    assert!(removed.starts_with("HTTP/1.0 204"), "{removed}");
    assert_eq!(
        user.ok(&["network", "ls", "-q", "--filter", "name=apinet"]),
        ""
    );
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
