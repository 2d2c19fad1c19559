//! The `berth` binary against real peers: a docker-registry on 127.0.0.1, skopeo and podman.

#[path = "../../berth-image/tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{rootfs_tar, Auth, Registry, PASS, USER};

/// A berth with its own data root and credentials file.
struct Berth {
    root: tempfile::TempDir,
}

impl Berth {
    fn new() -> Self {
        Berth {
            root: tempfile::tempdir().unwrap(),
        }
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.env("BERTH_ROOT", self.root.path().join("data"))
            .env("BERTH_AUTH_FILE", self.root.path().join("auth.json"))
            .env("DOCKER_CONFIG", self.root.path().join("docker"))
            .args(args);
        cmd
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    fn import(&self, marker: &str, extra: usize, name: &str) -> String {
        let tar = self.root.path().join(format!("{marker}.tar"));
        std::fs::write(&tar, rootfs_tar(marker, extra)).unwrap();
        self.ok(&["import", "-c", "CMD [\"sh\"]", tar.to_str().unwrap(), name])
            .trim()
            .to_string()
    }
    fn inspect(&self, name: &str) -> serde_json::Value {
        let out: serde_json::Value =
            serde_json::from_str(&self.ok(&["image", "inspect", name])).unwrap();
        out[0].clone()
    }
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo").args(args).output().expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn skopeo_digest(image: &str) -> String {
    let out: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", image])).unwrap();
    out["Digest"].as_str().unwrap().to_string()
}

#[test]
fn errors_exit_as_dockers_with_one_line() {
    let berth = Berth::new();
    // As the docker CLI: a flag no one knows is 125, a command that fails is 1.
    for (args, code) in [
        (&["pull", "Bad:Ref:x"][..], 1),
        (&["rmi", "nosuch"], 1),
        (&["image", "inspect", "nosuch"], 1),
        (&["--bogus-flag", "images"], 125),
    ] {
        let out = berth.run(args);
        assert_eq!(out.status.code(), Some(code), "berth {args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = berth.run(&["pull", "Bad"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("repository name must be lowercase"),
        "{stderr}"
    );
}

#[test]
fn skopeo_and_berth_agree_on_digests() {
    let registry = Registry::start(Auth::None);
    let berth = Berth::new();
    let id = berth.import("cross", 50_000, "local/cross:1");
    let ours = format!("{}/berth/cross:1", registry.addr);
    berth.ok(&["tag", "local/cross:1", &ours]);
    berth.ok(&["push", &ours]);
    let manifest = berth.inspect(&ours)["Descriptor"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(skopeo_digest(&format!("docker://{ours}")), manifest);

    // skopeo reads berth's push and writes it back as Docker schema 2; berth pulls that.
    let theirs = format!("{}/skopeo/cross:2", registry.addr);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &format!("docker://{ours}"),
        &format!("docker://{theirs}"),
    ]);
    let other = Berth::new();
    other.ok(&["pull", &theirs]);
    let inspect = other.inspect(&theirs);
    assert_eq!(inspect["Id"], id);
    let repo_digest = inspect["RepoDigests"][0].as_str().unwrap();
    assert_eq!(
        repo_digest.split('@').nth(1).unwrap(),
        skopeo_digest(&format!("docker://{theirs}"))
    );

    // A docker-archive written by skopeo loads in berth with the same image ID.
    let archive = berth.root.path().join("skopeo.tar");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{ours}"),
        &format!("docker-archive:{}:from/skopeo:3", archive.display()),
    ]);
    let third = Berth::new();
    let loaded = third.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("Loaded image: from/skopeo:3"), "{loaded}");
    assert_eq!(third.inspect("from/skopeo:3")["Id"], id);
}

#[test]
fn berth_save_loads_in_podman() {
    let berth = Berth::new();
    let id = berth.import("podman", 0, "local/podman:1");
    let archive = berth.root.path().join("save.tar");
    berth.ok(&["save", "-o", archive.to_str().unwrap(), "local/podman:1"]);
    let podman_root = tempfile::tempdir().unwrap();
    let podman = |args: &[&str]| {
        let out = Command::new("podman")
            .arg("--root")
            .arg(podman_root.path().join("root"))
            .arg("--runroot")
            .arg(podman_root.path().join("run"))
            .arg("--storage-driver")
            .arg("vfs")
            .args(args)
            .output()
            .expect("podman");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    podman(&["load", "-i", archive.to_str().unwrap()]);
    let ids = podman(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert!(
        ids.contains(id.trim_start_matches("sha256:")),
        "podman has {ids}, want {id}"
    );
    // And back: berth loads its own oci-archive too.
    let oci = berth.root.path().join("save-oci.tar");
    berth.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
        "local/podman:1",
    ]);
    let other = Berth::new();
    other.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(other.inspect("local/podman:1")["Id"], id);
}

#[test]
fn login_push_pull_logout() {
    let registry = Registry::start(Auth::Basic);
    let berth = Berth::new();
    let bad = berth.run(&["login", "-u", USER, "-p", "wrong", &registry.addr]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(!berth.root.path().join("auth.json").exists());
    let mut login = berth
        .cmd(&["login", "-u", USER, "--password-stdin", &registry.addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASS}\n").as_bytes())
        .unwrap();
    let out = login.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let name = format!("{}/auth/img:1", registry.addr);
    berth.import("auth", 0, &name);
    berth.ok(&["push", &name]);
    berth.ok(&["rmi", &name]);
    berth.ok(&["pull", &name]);
    assert!(berth
        .ok(&["logout", &registry.addr])
        .contains("Removing login credentials"));
    berth.ok(&["rmi", &name]);
    let denied = berth.run(&["pull", &name]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("unauthorized"));
}

/// A proxy whose first big response stalls forever after `after` bytes; the flag says when it
/// has.
fn stalling_proxy(upstream: String, after: usize) -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = stalled.clone();
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let stalled = stalled.clone();
            std::thread::spawn(move || {
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut c2, &mut s2));
                let mut buf = [0u8; 16384];
                let mut sent = 0;
                while let Ok(n) = server.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if sent + n > after && !stalled.swap(true, Ordering::SeqCst) {
                        let _ = client.write_all(&buf[..after.saturating_sub(sent)]);
                        std::thread::sleep(Duration::from_secs(60));
                        return;
                    }
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                }
            });
        }
    });
    (addr, flag)
}

#[test]
fn pull_killed_halfway_then_completed() {
    let registry = Registry::start(Auth::None);
    let source = Berth::new();
    let name = format!("{}/big/img:1", registry.addr);
    let id = source.import("killed", 4_000_000, &name);
    source.ok(&["push", &name]);
    let (proxy, stalled) = stalling_proxy(registry.addr.clone(), 1_500_000);
    let via_proxy = format!("{proxy}/big/img:1");
    let berth = Berth::new();
    let mut child = berth
        .cmd(&["pull", "-q", &via_proxy])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the proxy has stalled halfway through the layer, which is being written into
    // tmp/, then SIGKILL.
    let tmp = berth.root.path().join("data/image/tmp");
    let deadline = Instant::now() + berth_sys::test_support::scaled(Duration::from_secs(30));
    while !stalled.load(Ordering::SeqCst)
        || !std::fs::read_dir(&tmp)
            .map(|d| d.count() >= 2)
            .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "pull never stalled halfway");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        berth.ok(&["images", "-q"]),
        "",
        "a killed pull left an image"
    );
    berth.ok(&["pull", "-q", &via_proxy]);
    assert_eq!(berth.inspect(&via_proxy)["Id"], id);
    // rmi collects the leftovers of the killed pull along with the image.
    berth.ok(&["rmi", &via_proxy]);
    let data = berth.root.path().join("data/image");
    for sub in ["tmp", "layers", "blobs/sha256"] {
        assert_eq!(
            std::fs::read_dir(data.join(sub)).unwrap().count(),
            0,
            "{sub} not empty"
        );
    }
}

#[test]
fn push_all_tags_pushes_every_tag_of_the_repository() {
    let registry = Registry::start(Auth::None);
    let berth = Berth::new();
    let repo = format!("{}/all/tags", registry.addr);
    berth.import("a", 0, &format!("{repo}:a"));
    berth.import("b", 0, &format!("{repo}:b"));
    berth.import("c", 0, &format!("{}/all/other:c", registry.addr));
    let out = berth.ok(&["push", "-a", "-q", &repo]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let tags: serde_json::Value = serde_json::from_str(&skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{repo}"),
    ]))
    .unwrap();
    let mut tags: Vec<&str> = tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, ["a", "b"]);
    let out = berth.run(&["push", "-a", &format!("{repo}:a")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tag can't be used with --all-tags"));
}

#[test]
fn format_templates_for_images_and_inspect() {
    let berth = Berth::new();
    let id = berth.import("fmt", 0, "fmt/one:1");
    berth.ok(&["tag", "fmt/one:1", "fmt/two:2"]);
    let table = berth.ok(&["images", "--format", r"table {{.Repository}}\t{{.Tag}}"]);
    assert_eq!(table, "REPOSITORY   TAG\nfmt/one      1\nfmt/two      2\n");
    let lines = berth.ok(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}} {{upper .ID}}",
    ]);
    let short = id.trim_start_matches("sha256:")[..12].to_uppercase();
    assert_eq!(lines, format!("fmt/one:1 {short}\nfmt/two:2 {short}\n"));
    let json_line = berth.ok(&["images", "--format", "json", "fmt/two"]);
    let object: serde_json::Value = serde_json::from_str(json_line.trim()).unwrap();
    assert_eq!(object["Tag"], "2");

    let inspected = berth.ok(&[
        "image",
        "inspect",
        "--format",
        r#"{{.Id}} {{json .RepoTags}} {{join .Config.Cmd ","}} {{len .RootFS.Layers}}"#,
        "fmt/one:1",
    ]);
    assert_eq!(
        inspected,
        format!("{id} [\"fmt/one:1\",\"fmt/two:2\"] sh 1\n")
    );

    let bad = berth.run(&["image", "inspect", "--format", "{{.Id", "fmt/one:1"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("column 1: unclosed action"), "{stderr}");
}

#[test]
fn zstd_layers_written_by_skopeo_pull() {
    let registry = Registry::start(Auth::None);
    let berth = Berth::new();
    let id = berth.import("zstd", 100_000, "local/zstd:1");
    let ours = format!("{}/gzip/img:1", registry.addr);
    let zstd = format!("{}/zstd/img:1", registry.addr);
    berth.ok(&["tag", "local/zstd:1", &ours]);
    berth.ok(&["push", &ours]);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--dest-compress-format",
        "zstd",
        &format!("docker://{ours}"),
        &format!("docker://{zstd}"),
    ]);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{zstd}"),
    ]);
    assert!(raw.contains("tar+zstd"), "skopeo did not write zstd: {raw}");
    let other = Berth::new();
    other.ok(&["pull", &zstd]);
    assert_eq!(other.inspect(&zstd)["Id"], id);
}

/// A registry that answers every request with `status`.
fn failing_registry(status: u16) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = client.read(&mut buf);
            let body = r#"{"errors":[{"code":"UNKNOWN","message":"storage broke"}]}"#;
            let _ = write!(
                client,
                "HTTP/1.1 {status} Oops\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn registry_errors_are_one_line_and_leave_nothing() {
    let berth = Berth::new();
    let broken = failing_registry(500);
    let out = berth.run(&["pull", &format!("{broken}/x/y:1")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("registry answered 500 (UNKNOWN: storage broke)"),
        "{stderr}"
    );
    assert_eq!(berth.ok(&["images", "-q"]), "");
}

/// `create` pulls an image it does not have, saying so on stderr as Docker does (`--pull
/// always` pulls without the first word), and the event log has each pull.
#[test]
fn create_pulls_a_missing_image_and_says_so() {
    let registry = Registry::start(Auth::None);
    let source = Berth::new();
    let name = format!("{}/pull/onrun:1", registry.addr);
    source.import("onrun", 0, &name);
    source.ok(&["push", &name]);
    let berth = Berth::new();
    let lines = |out: &Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.lines().map(String::from).collect::<Vec<_>>()
    };
    let created = berth.run(&["create", "--network", "none", &name]);
    assert_eq!(
        lines(&created),
        [
            format!("Unable to find image '{name}' locally"),
            format!("Status: Downloaded image for {name}")
        ]
    );
    let always = berth.run(&["create", "--pull", "always", "--network", "none", &name]);
    assert_eq!(
        lines(&always),
        [format!("Status: Downloaded image for {name}")]
    );
    let local = berth.run(&["create", "--network", "none", &name]);
    assert!(lines(&local).is_empty());
    let pulls = berth.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    let want = format!("pull {name}");
    assert_eq!(pulls.lines().collect::<Vec<_>>(), [&want, &want]);
}
