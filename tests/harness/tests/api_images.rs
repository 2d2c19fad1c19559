//! The Engine API's images, networks, volumes and system df, driven by the docker CLI and
//! docker-py against `berth system service`, with a Debian docker-registry on loopback for
//! pulls and pushes; what the service did is read back through the `berth` CLI, which must
//! agree. Each test has its own service, data root and registry.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use berth_harness::api::Service;
use berth_harness::image::{dangling_image, Berth, IMAGE};
use berth_harness::registry::{incompressible_tar, Registry, SlowProxy, PASS, USER};
use berth_harness::{eventually, need_root, unique};
use serde_json::Value;

/// The HTTP status of `curl <args>` against the service.
fn status(service: &Service, args: &[&str]) -> String {
    let mut all = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
    all.extend_from_slice(args);
    service.curl(&all).stdout
}

/// The service's JSON answer to `curl -s <args>`.
fn curl_json(service: &Service, args: &[&str]) -> Value {
    let mut all = vec!["-s"];
    all.extend_from_slice(args);
    let ran = service.curl(&all);
    serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("curl {args:?}: not JSON ({e}): {}", ran.stdout))
}

fn lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    lines.sort();
    lines
}

#[test]
fn images_pull_tag_push_and_remove_through_a_registry() {
    let Some(service) = Service::start() else {
        return;
    };
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let repo = format!("{}/test/busybox", registry.addr);
    let name = format!("{repo}:v1");
    let id = service.docker_ok(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
    service.docker_ok(&["tag", IMAGE, &name]);
    let pushed = service.docker_ok(&["push", &name]);
    assert!(
        pushed.contains(&format!("The push refers to repository [{repo}]")),
        "{pushed}"
    );
    assert!(pushed.contains("v1: digest: sha256:"), "{pushed}");
    let removed = service.docker_ok(&["rmi", &name]);
    assert_eq!(removed, format!("Untagged: {name}"));
    assert!(service.berth.run(&["image", "inspect", &name]).code() != Some(0));

    let pulled = service.docker_ok(&["pull", &name]);
    assert!(pulled.contains("v1: Pulling from test/busybox"), "{pulled}");
    assert!(pulled.contains("Digest: sha256:"), "{pulled}");
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {name}")),
        "{pulled}"
    );
    let again = service.docker_ok(&["pull", &name]);
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}")),
        "{again}"
    );
    // The same image, now with the registry's digest, as berth sees it too.
    let inspect: Value =
        serde_json::from_str(&service.docker_ok(&["image", "inspect", &name])).expect("JSON");
    assert_eq!(inspect[0]["Id"], id.as_str());
    let digests = inspect[0]["RepoDigests"].to_string();
    assert!(digests.contains(&format!("{repo}@sha256:")), "{digests}");
    let berth_view: Value =
        serde_json::from_str(&service.berth.ok(&["image", "inspect", &name])).expect("JSON");
    assert_eq!(berth_view[0]["RepoDigests"], inspect[0]["RepoDigests"]);

    // docker images, its filters and formats, against berth images.
    let format = "{{.Repository}}:{{.Tag}} {{.ID}}";
    let docker = service.docker_ok(&["images", "--format", format]);
    assert_eq!(
        lines(&docker),
        lines(&service.berth.ok(&["images", "--format", format]))
    );
    assert!(docker.contains(&format!("{repo}:v1 ")), "{docker}");
    let only = service.docker_ok(&[
        "images",
        "--format",
        format,
        "--filter",
        "reference=*/test/*",
    ]);
    assert_eq!(only, format!("{repo}:v1 {}", &id[7..19]));
    assert_eq!(
        service.docker_ok(&["images", "-q", "--filter", "dangling=true"]),
        ""
    );
    let digests = service.docker_ok(&["images", "--digests", "--format", "{{.Digest}}", &repo]);
    assert!(digests.starts_with("sha256:"), "{digests}");
    // Unknown filters and images: Docker's statuses.
    assert_eq!(
        status(
            &service,
            &["http://d/images/json?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D"]
        ),
        "400"
    );
    assert_eq!(status(&service, &["http://d/images/nosuch:1/json"]), "404");
    let missing = service.docker(&["pull", &format!("{repo}:nosuch")]);
    assert!(!missing.success(), "{}", missing.stdout);
    assert!(
        missing.stderr.contains("not found"),
        "a missing tag says so: {}",
        missing.stderr
    );
    assert_eq!(
        status(
            &service,
            &[
                "-XPOST",
                &format!("http://d/images/create?fromImage={repo}&tag=nosuch")
            ]
        ),
        "404",
        "nothing was streamed yet: a plain 404"
    );

    // rmi by ID of an image with names and a container: Docker's conflict; by one of its
    // names, an untag.
    service.docker_ok(&["tag", IMAGE, "other:1"]);
    service
        .berth
        .ok(&["create", "--name", "user", IMAGE, "true"]);
    let refused = service.docker(&["rmi", &id]);
    assert!(!refused.success());
    assert!(refused.stderr.contains("conflict"), "{}", refused.stderr);
    assert_eq!(
        status(&service, &["-XDELETE", &format!("http://d/images/{id}")]),
        "409"
    );
    assert_eq!(service.docker_ok(&["rmi", "other:1"]), "Untagged: other:1");
    service.berth.ok(&["rm", "user"]);
}

#[test]
fn registry_credentials_come_from_the_client() {
    let Some(service) = Service::start() else {
        return;
    };
    let Some(registry) = Registry::start(true) else {
        return;
    };
    let name = format!("{}/private/busybox:1", registry.addr);
    service.docker_ok(&["tag", IMAGE, &name]);
    let denied = service.docker(&["push", &name]);
    assert!(!denied.success(), "pushed without credentials");
    assert!(denied.stderr.contains("unauthorized"), "{}", denied.stderr);
    let login = service.docker(&["login", "-u", USER, "--password-stdin", &registry.addr]);
    assert!(!login.success(), "stdin is empty: no password");
    let mut command = service.client("docker");
    command.args(["login", "-u", USER, "--password-stdin", &registry.addr]);
    let login = berth_harness::run_with_input(command, PASS.as_bytes());
    assert!(login.success(), "{}", login.stderr);
    // X-Registry-Auth carries the client's credentials: the service has none of its own.
    let pushed = service.docker_ok(&["push", &name]);
    assert!(pushed.contains("1: digest: sha256:"), "{pushed}");
    service.docker_ok(&["rmi", &name]);
    service.docker_ok(&["pull", &name]);
    service.docker_ok(&["logout", &registry.addr]);
    service.docker_ok(&["rmi", &name]);
    let denied = service.docker(&["pull", &name]);
    assert!(!denied.success(), "pulled without credentials");
    assert!(denied.stderr.contains("unauthorized"), "{}", denied.stderr);
}

#[test]
fn save_load_history_and_prune() {
    let Some(service) = Service::start() else {
        return;
    };
    let id = service.docker_ok(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
    let tar = service.dir().join("saved.tar");
    let tar_path = tar.to_str().expect("utf-8 path");
    service.docker_ok(&["save", "-o", tar_path, IMAGE]);
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .expect("tar -tf");
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("manifest.json"),
        "a docker-archive"
    );
    // The image, then the layer it took with it (one layer: its chain ID is its diff ID).
    let layer = service.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{index .RootFS.Layers 0}}",
        IMAGE,
    ]);
    assert_eq!(
        service.docker_ok(&["rmi", IMAGE]),
        format!("Untagged: {IMAGE}\nDeleted: {id}\nDeleted: {layer}")
    );
    let loaded = service.docker_ok(&["load", "-i", tar_path]);
    assert_eq!(loaded, format!("Loaded image: {IMAGE}"));
    assert_eq!(
        service.docker_ok(&["image", "inspect", "--format", "{{.Id}}", IMAGE]),
        id
    );
    // docker save | docker load, through pipes.
    let saved = {
        let mut command = service.client("docker");
        command.args(["save", IMAGE]).stdout(Stdio::piped());
        command.output().expect("docker save").stdout
    };
    let mut command = service.client("docker");
    command.arg("load");
    let piped = berth_harness::run_with_input(command, &saved);
    assert!(piped.success(), "{}", piped.stderr);
    assert_eq!(piped.stdout.trim(), format!("Loaded image: {IMAGE}"));
    // A broken archive is an error, and no image.
    let mut command = service.client("docker");
    command.arg("load");
    let broken = berth_harness::run_with_input(command, &saved[..saved.len() / 2]);
    assert!(!broken.success(), "{}", broken.stdout);
    let missing = service.docker(&["save", "nosuch:1"]);
    assert!(!missing.success());
    assert!(
        missing.stderr.contains("No such image"),
        "{}",
        missing.stderr
    );

    // history: the same steps as berth's.
    let format = "{{.CreatedBy}} {{.Size}}";
    assert_eq!(
        service
            .docker_ok(&["history", "--format", format, IMAGE])
            .lines()
            .count(),
        service.berth.ok(&["history", "-q", IMAGE]).lines().count()
    );
    let json = curl_json(&service, &[&format!("http://d/images/{IMAGE}/history")]);
    assert_eq!(json[0]["Id"], id.as_str());
    assert_eq!(json[0]["Tags"][0], IMAGE);

    // image prune: a dangling image goes, the tagged one stays.
    let dangling = dangling_image(&service.berth);
    assert_eq!(
        service.docker_ok(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]),
        dangling
    );
    let pruned = service.docker_ok(&["image", "prune", "-f"]);
    assert!(pruned.contains(&format!("deleted: {dangling}")), "{pruned}");
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    assert_eq!(service.berth.ok(&["images", "-q", "--no-trunc"]), id);
    // -a: every image without a container.
    service
        .berth
        .ok(&["create", "--name", "holder", IMAGE, "true"]);
    service.docker_ok(&["tag", IMAGE, "kept:1"]);
    let pruned = service.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(!pruned.contains("deleted:"), "in use: {pruned}");
    service.berth.ok(&["rm", "holder"]);
    let pruned = service.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(pruned.contains(&format!("deleted: {id}")), "{pruned}");
    assert!(pruned.contains("untagged: kept:1"), "{pruned}");
    assert_eq!(service.berth.ok(&["images", "-q"]), "");
}

#[test]
fn refusals_are_clear_and_leave_the_service_up() {
    let Some(service) = Service::start() else {
        return;
    };
    // Docker Hub's search, out of reach here: one line naming the host, as dockerd's.
    let search = service.docker(&["search", "busybox"]);
    assert!(!search.success());
    assert!(
        search.stderr.contains("lookup index.docker.io"),
        "{}",
        search.stderr
    );
    // A build without a context: nothing to find the Dockerfile in.
    let body = curl_json(&service, &["-XPOST", "http://d/build"]);
    assert_eq!(
        body["message"],
        "failed to read dockerfile: open Dockerfile: no such file or directory"
    );
    assert_eq!(status(&service, &["-XPOST", "http://d/build"]), "400");
    // Hostile or empty requests: one clean 4xx each, and the service goes on.
    let json = ["-H", "Content-Type: application/json", "-d"];
    for (args, want) in [
        (vec!["-XPOST", "http://d/images/create"], "400"),
        (
            vec!["-XPOST", "http://d/images/create?fromImage=UPPER/case"],
            "400",
        ),
        (
            vec![
                "-XPOST",
                "http://d/images/create?fromImage=busybox&platform=x/y/z/w",
            ],
            "400",
        ),
        (vec!["http://d/images/get"], "400"),
        (vec!["-XPOST", "http://d/images/busybox/tag?repo="], "400"),
        (
            vec![
                "-XPOST",
                "http://d/images/prune?filters=%7B%22x%22%3A%5B%221%22%5D%7D",
            ],
            "400",
        ),
        (
            [&["-XPOST"], &json[..], &["[]", "http://d/networks/create"]].concat(),
            "400",
        ),
        (
            [
                &["-XPOST"],
                &json[..],
                &[r#"{"Name":"n","Labels":[1]}"#, "http://d/networks/create"],
            ]
            .concat(),
            "400",
        ),
        (
            [
                &["-XPOST"],
                &json[..],
                &[r#"{"Name":"-bad"}"#, "http://d/volumes/create"],
            ]
            .concat(),
            "400",
        ),
        (
            [
                &["-XPOST"],
                &json[..],
                &["{}", "http://d/networks/nosuch/connect"],
            ]
            .concat(),
            "400",
        ),
        (
            vec!["http://d/volumes?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D"],
            "400",
        ),
    ] {
        assert_eq!(status(&service, &args), want, "{args:?}");
    }
    let loaded = service.curl(&[
        "-s",
        "-XPOST",
        "--data-binary",
        "not a tar",
        "http://d/images/load",
    ]);
    assert!(loaded.stdout.contains("errorDetail"), "{}", loaded.stdout);
    service.docker_ok(&["version"]);
}

/// A client that hangs up in the middle of a pull stops it: the download ends there, no
/// image is recorded, and the service pulls the same image whole afterwards.
#[test]
fn a_pull_whose_client_hangs_up_stops_and_leaves_no_image() {
    let Some(service) = Service::start() else {
        return;
    };
    let Some(registry) = Registry::start(false) else {
        return;
    };
    const LAYER: usize = 6 << 20;
    let tar = service.dir().join("big.tar");
    std::fs::write(&tar, incompressible_tar(LAYER)).expect("write the tar");
    let name = format!("{}/big/img:1", registry.addr);
    service
        .berth
        .ok(&["import", tar.to_str().expect("utf-8 path"), &name]);
    service.berth.ok(&["push", &name]);
    service.berth.ok(&["rmi", &name]);

    let proxy = SlowProxy::start(registry.addr.clone());
    let via_proxy = format!("{}/big/img", proxy.addr);
    let mut curl = Command::new("curl")
        .arg("-sN")
        .arg("--unix-socket")
        .arg(service.socket())
        .args([
            "-XPOST",
            &format!("http://d/images/create?fromImage={via_proxy}&tag=1"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn curl");
    let stdout = curl.stdout.take().expect("curl's stdout");
    let mut reader = BufReader::new(stdout);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read the stream");
        assert!(n > 0, "the stream ended before any download: {seen}");
        seen.push_str(&line);
        if line.contains("\"Downloading\"") {
            break;
        }
    }
    let _ = curl.kill();
    let _ = curl.wait();
    drop(reader);

    eventually("the pull to let go of the registry", || {
        (proxy.open.load(Ordering::SeqCst) == 0).then_some(())
    });
    let sent = proxy.sent.load(Ordering::SeqCst);
    assert!(
        sent < LAYER as u64,
        "the pull went on without its client: {sent} bytes of {LAYER} sent"
    );
    let images = service.docker_ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("big/img"), "a partial image: {images}");
    let berth_images = service.berth.ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!berth_images.contains("big/img"), "{berth_images}");
    // Nothing is stuck: the same pull, at full speed, completes.
    proxy.slow.store(false, Ordering::SeqCst);
    let pulled = service.docker_ok(&["pull", &format!("{via_proxy}:1")]);
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    service.docker_ok(&["image", "inspect", &format!("{via_proxy}:1")]);
}

#[test]
fn docker_py_pulls_and_creates_networks_and_volumes() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let Some(registry) = Registry::start(false) else {
        return;
    };
    let repo = format!("{}/py/busybox", registry.addr);
    service.berth.ok(&["tag", IMAGE, &format!("{repo}:2")]);
    service.berth.ok(&["push", &format!("{repo}:2")]);
    service.berth.ok(&["rmi", &format!("{repo}:2")]);
    let net = unique("py-net");
    let script = format!(
        r#"
import docker, json
c = docker.from_env()
img = c.images.pull("{repo}", tag="2")
ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.251.77.0/24")])
n = c.networks.create("{net}", driver="bridge", ipam=ipam, labels={{"by": "py"}})
v = c.volumes.create("pyvol", labels={{"by": "py"}})
print(json.dumps({{"image": img.id, "tags": img.tags, "net": n.id, "net_name": n.name,
    "subnet": n.attrs["IPAM"]["Config"][0]["Subnet"], "volume": v.name,
    "labels": v.attrs["Labels"],
    "volumes": [x.name for x in c.volumes.list(filters={{"label": "by=py"}})],
    "networks": [x.name for x in c.networks.list(names=["{net}"])]}}))
n.remove()
v.remove()
"#
    );
    let ran = service.python(&script);
    assert!(
        ran.success(),
        "{}\n{}\n{}",
        ran.stdout,
        ran.stderr,
        service.log()
    );
    let out: Value = serde_json::from_str(ran.stdout.trim()).expect("the script's JSON");
    let id = service
        .berth
        .ok(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
    assert_eq!(out["image"], id.as_str());
    let tags = out["tags"].to_string();
    assert!(tags.contains(&format!("\"{repo}:2\"")), "{tags}");
    assert_eq!(out["net_name"], net.as_str());
    assert_eq!(out["subnet"], "10.251.77.0/24");
    assert_eq!(out["volume"], "pyvol");
    assert_eq!(out["labels"]["by"], "py");
    assert_eq!(out["volumes"], serde_json::json!(["pyvol"]));
    assert_eq!(out["networks"], serde_json::json!([net]));
    assert!(service.berth.run(&["network", "inspect", &net]).code() != Some(0));
    assert!(service.berth.run(&["volume", "inspect", "pyvol"]).code() != Some(0));
}

/// Removes the test's container and networks when dropped, should the test not have: the
/// bridges are the machine's, and would outlive the data root.
struct Networks<'a>(&'a Berth, Vec<String>);

impl Drop for Networks<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["rm", "-f", "c1"]);
        for net in &self.1 {
            let _ = self.0.run(&["network", "rm", net]);
        }
    }
}

#[test]
fn networks_through_the_docker_cli() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let (a, b) = (unique("api-net-a"), unique("api-net-b"));
    let _guard = Networks(&service.berth, vec![a.clone(), b.clone()]);
    let id = service.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.252.31.0/24",
        "--gateway",
        "10.252.31.254",
        "--ip-range",
        "10.252.31.128/25",
        "--label",
        "team=api",
        &a,
    ]);
    assert_eq!(id.len(), 64, "{id}");
    service.docker_ok(&["network", "create", "--subnet", "10.252.32.0/24", &b]);
    let taken = service.docker(&["network", "create", &a]);
    assert!(!taken.success());
    assert!(taken.stderr.contains("already exists"), "{}", taken.stderr);
    let create = |body: String| {
        let url = "http://d/networks/create";
        let args = [
            "-XPOST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
            url,
        ];
        status(&service, &args)
    };
    assert_eq!(create(format!(r#"{{"Name":"{a}"}}"#)), "409");
    let overlap = r#"{"Name":"overlap","IPAM":{"Config":[{"Subnet":"10.252.31.0/25"}]}}"#;
    assert_eq!(create(overlap.to_string()), "403");
    assert_eq!(create(r#"{"Name":7}"#.to_string()), "400");

    let ls = |args: &[&str]| {
        let mut all = vec!["network", "ls"];
        all.extend_from_slice(args);
        lines(&service.docker_ok(&all))
    };
    assert_eq!(
        ls(&["--filter", "label=team=api", "--format", "{{.Name}}"]),
        std::slice::from_ref(&a)
    );
    assert_eq!(ls(&["--filter", &format!("name={b}"), "-q"]).len(), 1);
    assert_eq!(
        ls(&["-q", "--no-trunc"]),
        lines(&service.berth.ok(&["network", "ls", "-q", "--no-trunc"]))
    );
    let format = "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}} \
                  {{(index .IPAM.Config 0).IPRange}} {{.Labels.team}}";
    assert_eq!(
        service.docker_ok(&["network", "inspect", "--format", format, &a]),
        "10.252.31.0/24 10.252.31.254 10.252.31.128/25 api"
    );
    let berth_view: Value =
        serde_json::from_str(&service.berth.ok(&["network", "inspect", &a])).expect("JSON");
    assert_eq!(berth_view[0]["Id"], id.as_str());

    // A container on a, connected to b with an alias, then disconnected.
    service.berth.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        &a,
        IMAGE,
        "sleep",
        "1000",
    ]);
    // Its address comes from the IP range.
    let ip = service.berth.inspect("c1")["NetworkSettings"]["IPAddress"].clone();
    assert_eq!(ip, "10.252.31.128");
    service.docker_ok(&["network", "connect", "--alias", "side", &b, "c1"]);
    let names = "{{range .Containers}}{{.Name}}{{end}}";
    assert_eq!(
        service.docker_ok(&["network", "inspect", "--format", names, &b]),
        "c1"
    );
    // The alias is in the container's inspect and in the network's lease, which its DNS
    // answers from.
    let aliases = format!("{{{{json (index .NetworkSettings.Networks \"{b}\").Aliases}}}}");
    assert_eq!(
        service.docker_ok(&["inspect", "--format", &aliases, "c1"]),
        r#"["side"]"#
    );
    let b_id = service.docker_ok(&["network", "inspect", "--format", "{{.Id}}", &b]);
    // One file per lease in the network's leases/ directory.
    let dir = service.berth.root().join(format!("network/{b_id}/leases"));
    let leases: String = std::fs::read_dir(&dir)
        .expect("the network's leases")
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    assert!(leases.contains("\"side\""), "{leases}");
    let in_use = service.docker(&["network", "rm", &a]);
    assert!(!in_use.success());
    assert_eq!(
        status(&service, &["-XDELETE", &format!("http://d/networks/{a}")]),
        "403"
    );
    service.docker_ok(&["network", "disconnect", &b, "c1"]);
    assert_eq!(
        service.docker_ok(&["network", "inspect", "--format", names, &b]),
        ""
    );
    // Prune takes the unused network only.
    let pruned = service.docker_ok(&["network", "prune", "-f"]);
    assert_eq!(pruned, format!("Deleted Networks:\n{b}"));
    service.berth.ok(&["rm", "-f", "c1"]);
    service.docker_ok(&["network", "rm", &a]);
    assert!(service.berth.run(&["network", "inspect", &a]).code() != Some(0));
    assert_eq!(status(&service, &["http://d/networks/nosuch"]), "404");
}

#[test]
fn volumes_through_the_docker_cli() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    assert_eq!(
        service.docker_ok(&["volume", "create", "--label", "team=api", "named"]),
        "named"
    );
    // An anonymous volume, left by a container removed without -v.
    service
        .berth
        .ok(&["run", "--name", "anon", "-v", "/data", IMAGE, "true"]);
    service.berth.ok(&["rm", "anon"]);
    let all = lines(&service.docker_ok(&["volume", "ls", "-q"]));
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all, lines(&service.berth.ok(&["volume", "ls", "-q"])));
    let anon = all
        .iter()
        .find(|v| *v != "named")
        .expect("the anonymous one")
        .clone();
    assert_eq!(
        service.docker_ok(&["volume", "ls", "-q", "--filter", "label=team=api"]),
        "named"
    );
    let format = "{{.Driver}} {{.Labels.team}} {{.Mountpoint}}";
    let mountpoint = service.berth.root().join("volumes/named/_data");
    assert_eq!(
        service.docker_ok(&["volume", "inspect", "--format", format, "named"]),
        format!("local api {}", mountpoint.display())
    );
    assert_eq!(status(&service, &["http://d/volumes/nosuch"]), "404");
    let opts = service.docker(&["volume", "create", "-o", "type=tmpfs", "t"]);
    assert!(!opts.success(), "a type needs a device");
    assert!(
        opts.stderr.contains(r#"missing required option: "device""#),
        "{}",
        opts.stderr
    );

    service.berth.ok(&[
        "create",
        "--name",
        "user",
        "-v",
        "named:/data",
        IMAGE,
        "true",
    ]);
    let in_use = service.docker(&["volume", "rm", "named"]);
    assert!(!in_use.success());
    assert!(in_use.stderr.contains("in use"), "{}", in_use.stderr);
    assert_eq!(
        status(&service, &["-XDELETE", "http://d/volumes/named"]),
        "409"
    );
    assert_eq!(
        status(&service, &["-XDELETE", "http://d/volumes/named?force=1"]),
        "409",
        "force does not remove a volume a container refers to, as dockerd's"
    );
    assert_eq!(
        service.docker_ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        anon
    );
    service.berth.ok(&["rm", "user"]);

    // Prune: anonymous volumes only, as Docker since API 1.42; every unused one before.
    let pruned = service.docker_ok(&["volume", "prune", "-f"]);
    assert!(
        pruned.contains(&anon) && !pruned.contains("named"),
        "{pruned}"
    );
    let old = curl_json(&service, &["-XPOST", "http://d/v1.41/volumes/prune"]);
    assert_eq!(old["VolumesDeleted"], serde_json::json!(["named"]));
    assert_eq!(service.berth.ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn system_df_agrees_with_berth() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["create", "--name", "df-user", IMAGE, "true"]);
    service.docker_ok(&["volume", "create", "data"]);
    let mountpoint = service.berth.root().join("volumes/data/_data");
    std::fs::write(mountpoint.join("f"), vec![7u8; 5000]).expect("write into the volume");
    let docker = service.docker_ok(&["system", "df"]);
    assert_eq!(docker, service.berth.ok(&["system", "df"]));
    assert!(docker.contains("Local Volumes   1 "), "{docker}");
    let df = curl_json(&service, &["http://d/system/df"]);
    assert!(df["LayersSize"].as_u64().unwrap_or(0) > 0, "{df}");
    assert_eq!(df["Images"][0]["Containers"], 1, "{df}");
    assert_eq!(df["Containers"][0]["Names"][0], "/df-user", "{df}");
    assert_eq!(df["Volumes"][0]["UsageData"]["Size"], 5000, "{df}");
    assert_eq!(df["Volumes"][0]["UsageData"]["RefCount"], 0, "{df}");
    // No build has run in this root: an empty cache.
    assert_eq!(df["BuildCache"], serde_json::json!([]), "{df}");
    service.berth.ok(&["rm", "df-user"]);
}
