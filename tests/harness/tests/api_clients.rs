//! Real clients of the Engine API against `berth system service` (issue 12's "How it is
//! shown"): Debian's docker-compose 1.29 brings a project up, looks at it, stops, starts and
//! takes it down; Debian's docker-py runs containers, streams logs, execs, pulls from a
//! registry on loopback, creates networks and volumes and prunes. What each client did is read
//! back through the docker CLI and the `berth` CLI over the same data root, which must agree.
#![forbid(unsafe_code)]

use std::fs;
use std::path::Path;

use berth_harness::api::Service;
use berth_harness::image::IMAGE;
use berth_harness::registry::{free_port, Registry};
use berth_harness::{
    eventually, have, http_get, need_root, run_with_timeout, skipping, Ran, COMMAND_TIMEOUT,
};
use serde_json::Value;

/// Two services on a user network: `web` serves a page written from its env file into a
/// named volume, published on 127.0.0.1; `client` starts after it and reaches it by name.
const COMPOSE_FILE: &str = r#"version: "3.7"
services:
  web:
    image: IMAGE
    command: ["sh", "-c", "echo hello from $$GREETING > /srv/index.html; exec httpd -f -p 80 -h /srv"]
    env_file: web.env
    volumes:
      - data:/srv
    ports:
      - "127.0.0.1:PORT:80"
    networks:
      - back
    stop_grace_period: 1s
  client:
    image: IMAGE
    command: ["sh", "-c", "echo client up; exec sleep 1000"]
    depends_on:
      - web
    networks:
      - back
    stop_grace_period: 1s
networks:
  back: {}
volumes:
  data: {}
"#;

fn lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    v.sort();
    v
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A compose project in the service's directory.
struct Project<'a> {
    service: &'a Service,
    name: String,
    dir: std::path::PathBuf,
}

impl Project<'_> {
    fn run(&self, args: &[&str]) -> Ran {
        self.service.compose(&self.dir, &self.name, args)
    }

    fn ok(&self, args: &[&str]) -> Ran {
        self.succeeded(args, self.run(args))
    }

    /// `docker-compose <args>` speaking API `version` (COMPOSE_API_VERSION); must succeed.
    fn ok_at(&self, version: &str, args: &[&str]) -> Ran {
        let mut command = self.service.compose_command(&self.dir, &self.name);
        command.env("COMPOSE_API_VERSION", version).args(args);
        let ran = run_with_timeout(command, 2 * COMMAND_TIMEOUT);
        self.succeeded(args, ran)
    }

    fn succeeded(&self, args: &[&str], ran: Ran) -> Ran {
        assert!(
            ran.success(),
            "docker-compose {args:?} failed ({}):\n{}\n{}\nservice log:\n{}",
            ran.status,
            ran.stdout,
            ran.stderr,
            self.service.log()
        );
        ran
    }

    /// Waits until `client` fetches `page` from `web` by the service's name, and the host
    /// through the published `port` (web may still be starting).
    fn serves(&self, page: &str, port: u16) {
        let get = [
            "exec",
            "-T",
            "client",
            "wget",
            "-q",
            "-O",
            "-",
            "http://web/",
        ];
        eventually("web to answer client by name", || {
            let ran = self.run(&get);
            (ran.success() && ran.stdout.trim() == page).then_some(())
        });
        let published = || http_get(([127, 0, 0, 1], port).into(), "/");
        eventually("the published port to answer", || {
            (published().as_deref() == Some(page)).then_some(())
        });
    }
}

#[test]
fn compose_up_ps_logs_exec_and_down_leave_nothing() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    if !have("docker-compose") {
        skipping(format_args!("needs docker-compose"));
        return;
    }
    let port = free_port();
    let project = Project {
        service: &service,
        name: format!("bc{}", std::process::id()),
        dir: service.dir().join("project"),
    };
    let (p, dir) = (&project.name, &project.dir);
    fs::create_dir(dir).expect("project dir");
    let file = COMPOSE_FILE
        .replace("IMAGE", IMAGE)
        .replace("PORT", &port.to_string());
    fs::write(dir.join("docker-compose.yml"), file).expect("compose file");
    fs::write(dir.join("web.env"), "GREETING=compose\n").expect("env file");

    let up = project.ok(&["up", "-d"]).stderr;
    for line in [
        format!("Creating network \"{p}_back\" with the default driver"),
        format!("Creating volume \"{p}_data\" with default driver"),
        format!("Creating {p}_web_1 ... done"),
        format!("Creating {p}_client_1 ... done"),
    ] {
        assert!(up.contains(&line), "{line:?} in:\n{up}");
    }
    // Up again: compose reads everything back and finds nothing to recreate.
    let again = project.ok(&["up", "-d"]).stderr;
    assert!(
        again.contains(&format!("{p}_web_1 is up-to-date")),
        "{again}"
    );
    assert!(
        again.contains(&format!("{p}_client_1 is up-to-date")),
        "{again}"
    );

    let ps = project.ok(&["ps"]).stdout;
    let row = |name: &str| {
        let row = ps.lines().find(|l| l.starts_with(name));
        row.unwrap_or_else(|| panic!("{name} in:\n{ps}"))
            .to_string()
    };
    assert!(row(&format!("{p}_client_1 ")).contains(" Up "), "{ps}");
    let web_row = row(&format!("{p}_web_1 "));
    assert!(web_row.contains(" Up "), "{ps}");
    assert!(
        web_row.ends_with(&format!("127.0.0.1:{port}->80/tcp")),
        "{ps}"
    );

    // The env file reached web's shell, the page is in the named volume, client reaches web
    // by name on the project's network, and the host through the published port.
    project.serves("hello from compose", port);
    let failed = project.run(&["exec", "-T", "client", "sh", "-c", "echo out; exit 3"]);
    assert_eq!(failed.code(), Some(3), "{}", failed.stderr);
    assert_eq!(failed.stdout.trim(), "out");
    let logs = project.ok(&["logs", "client"]).stdout;
    assert!(logs.contains("client_1  | client up"), "{logs}");

    the_api_and_berth_agree(&service, p);

    // Stopped and started: compose disconnects and connects each container again.
    project.ok(&["stop"]);
    let states = "{{.State.Status}}";
    let web = format!("{p}_web_1");
    assert_eq!(service.berth.ok(&["inspect", "-f", states, &web]), "exited");
    project.ok(&["start"]);
    project.serves("hello from compose", port);

    // A changed env file: up recreates web alone. Compose reads the image's ContainerConfig
    // to carry volumes over, which Docker's daemon, as berth, gives only before API 1.45
    // (compose's KeyError 'ContainerConfig' otherwise): with either, COMPOSE_API_VERSION=1.44.
    fs::write(dir.join("web.env"), "GREETING=again\n").expect("env file");
    let recreated = project.ok_at("1.44", &["up", "-d"]).stderr;
    assert!(
        recreated.contains(&format!("Recreating {p}_web_1 ... done")),
        "{recreated}"
    );
    assert!(
        recreated.contains(&format!("{p}_client_1 is up-to-date")),
        "{recreated}"
    );
    project.serves("hello from again", port);

    let links = network_links(&service, p);
    let net_id = service.docker_ok(&["network", "inspect", "-f", "{{.Id}}", &format!("{p}_back")]);
    let down = project.ok(&["down", "-v"]).stderr;
    assert!(
        down.contains(&format!("Removing network {p}_back")),
        "{down}"
    );
    assert!(
        down.contains(&format!("Removing volume {p}_data")),
        "{down}"
    );
    let berth = &service.berth;
    assert_eq!(berth.ok(&["ps", "-a", "-q"]), "");
    assert_eq!(berth.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(
        berth.ok(&["network", "ls", "-q"]),
        only_the_default_network(&service)
    );
    for link in &links {
        let shown = std::process::Command::new("ip")
            .args(["-o", "link", "show", link])
            .output()
            .expect("ip link");
        assert!(shown.stdout.is_empty(), "{link} is left");
    }
    let dns = format!("__dns {net_id}");
    assert!(
        processes_with(&dns).is_empty(),
        "the network's DNS server is left"
    );
    // The data root's mounts and cgroups are checked when the service's root is dropped.
}

/// `docker ps`, `docker inspect`, `docker network ls` and `docker volume ls` through the
/// service say what `berth` says of the same root; a client older than API 1.45 sees the short
/// id and hostname among a container's aliases, as Docker's own daemon shows them.
fn the_api_and_berth_agree(service: &Service, p: &str) {
    let berth = &service.berth;
    let project = format!("label=com.docker.compose.project={p}");
    let ps = "{{.ID}} {{.Names}} {{.Image}} {{.State}} {{.Ports}}";
    let listed = service.docker_ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &project,
        "--format",
        ps,
    ]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert_eq!(
        lines(&listed),
        lines(&berth.ok(&[
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &project,
            "--format",
            ps
        ]))
    );
    let inspect = "{{.Id}} {{.Name}} {{.State.Status}} {{.HostConfig.NetworkMode}} \
                   {{.Config.Labels}} {{.NetworkSettings.Networks}} {{.Mounts}}";
    for service_name in ["web", "client"] {
        let name = format!("{p}_{service_name}_1");
        let seen = service.docker_ok(&["inspect", "-f", inspect, &name]);
        assert_eq!(seen, berth.ok(&["inspect", "-f", inspect, &name]));
        assert!(
            seen.contains(&format!("com.docker.compose.service:{service_name}")),
            "{seen}"
        );
    }
    for listing in [["network", "ls"], ["volume", "ls"]] {
        assert_eq!(
            lines(&service.docker_ok(&listing)),
            lines(&berth.ok(&listing))
        );
    }

    let web = berth.inspect(&format!("{p}_web_1"));
    let id = web["Id"].as_str().expect("Id");
    let aliases = |version: &str| {
        let ran = service.curl(&["-s", &format!("http://d/{version}containers/{id}/json")]);
        let v = json(&ran.stdout);
        let mut a: Vec<String> = v["NetworkSettings"]["Networks"][format!("{p}_back")]["Aliases"]
            .as_array()
            .expect("Aliases")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect();
        a.sort();
        a
    };
    // compose gives the service's name and the short id itself.
    let short = &id[..12];
    assert_eq!(aliases(""), [short, "web"]);
    let hostname = web["Config"]["Hostname"].as_str().expect("Hostname");
    let mut old = vec![short, "web", hostname];
    old.sort();
    old.dedup();
    assert_eq!(aliases("v1.41/"), old);
}

/// The host's ends of the project's containers' veths, and the project network's bridge.
fn network_links(service: &Service, p: &str) -> Vec<String> {
    let root = service.berth.root();
    let mut links = Vec::new();
    for id in service.berth.ids() {
        let path = root.join("containers").join(&id).join("record.json");
        let record = json(&fs::read_to_string(&path).expect("record"));
        let veth = record["network"]["host_veth"].as_str().expect("host_veth");
        links.push(veth.to_string());
    }
    let net = service.docker_ok(&["network", "inspect", "-f", "{{.Id}}", &format!("{p}_back")]);
    links.push(format!("berth-{}", &net[..9]));
    assert_eq!(links.len(), 3, "{links:?}");
    links
}

/// Live processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let raw = fs::read(e.path().join("cmdline")).ok()?;
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            line.contains(needle).then_some(line)
        })
        .collect()
}

/// docker-py's containers, logs, exec and image pull: what it prints, as JSON.
const PY_CONTAINERS: &str = r#"
import json, docker
client = docker.from_env()
out = {}
out["run"] = client.containers.run("IMAGE", ["sh", "-c", "echo out; echo err >&2"],
                                   remove=True).decode()
try:
    client.containers.run("IMAGE", ["sh", "-c", "echo boom >&2; exit 3"], name="py-fail")
    out["fail"] = None
except docker.errors.ContainerError as e:
    out["fail"] = [e.exit_status, e.stderr.decode()]
c = client.containers.run("IMAGE", ["sh", "-c", "for i in 1 2 3; do echo line$i; done; exec sleep 1000"],
                          detach=True, name="py-bg", labels={"made": "by-py"})
out["bg"] = c.id
seen = ""
for chunk in c.logs(stream=True, follow=True):
    seen += chunk.decode()
    if seen.count("\n") >= 3:
        break
out["logs"] = seen
c.reload()
out["status"] = c.status
out["listed"] = [x.id for x in client.containers.list(filters={"label": "made=by-py"})]
r = c.exec_run(["sh", "-c", "echo in-exec; echo to-err >&2; exit 4"])
out["exec"] = [r.exit_code, r.output.decode()]
r = c.exec_run("cat /etc/hostname", demux=True)
out["exec_demux"] = [r.exit_code, r.output[0].decode(), r.output[1]]
c.stop(timeout=1)
out["wait"] = c.wait()["StatusCode"]
img = client.images.pull("REGISTRY/test/busybox", tag="v1")
out["pulled"] = [img.id, sorted(img.tags)]
net = client.networks.create("py-net", driver="bridge", labels={"made": "by-py"})
vol = client.volumes.create("py-vol", labels={"made": "by-py"})
out["net"] = net.id
out["vol"] = vol.name
r = client.containers.run("IMAGE", ["sh", "-c", "echo data > /v/f; cat /v/f; hostname -i"],
                          name="py-netvol", network="py-net", volumes={"py-vol": {"bind": "/v"}})
out["netvol"] = r.decode()
print(json.dumps(out))
"#;

/// docker-py's prune and removals: what it prints, as JSON.
const PY_PRUNE: &str = r#"
import json, docker
client = docker.from_env()
out = {}
out["pruned"] = sorted(client.containers.prune()["ContainersDeleted"] or [])
out["left"] = [c.name for c in client.containers.list(all=True)]
client.networks.get("py-net").remove()
client.volumes.get("py-vol").remove()
print(json.dumps(out))
"#;

fn python(service: &Service, script: &str) -> Value {
    let ran = service.python(script);
    assert!(
        ran.success(),
        "docker-py failed ({}):\n{}\n{}\nservice log:\n{}",
        ran.status,
        ran.stdout,
        ran.stderr,
        service.log()
    );
    json(&ran.stdout)
}

#[test]
fn docker_py_runs_streams_execs_pulls_and_prunes() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    if !Path::new("/usr/lib/python3/dist-packages/docker").exists() {
        skipping(format_args!("needs python3-docker"));
        return;
    }
    let Some(registry) = Registry::start(false) else {
        return;
    };
    // The image in the registry, and gone from the store under that name.
    let pushed = format!("{}/test/busybox:v1", registry.addr);
    service.docker_ok(&["tag", IMAGE, &pushed]);
    service.docker_ok(&["push", &pushed]);
    service.docker_ok(&["rmi", &pushed]);
    let image_id = service.docker_ok(&["image", "inspect", "-f", "{{.Id}}", IMAGE]);

    let script = PY_CONTAINERS
        .replace("IMAGE", IMAGE)
        .replace("REGISTRY", &registry.addr);
    let out = python(&service, &script);
    // Not detached: stdout back, and a failure's status and stderr.
    assert_eq!(out["run"], "out\n");
    assert_eq!(out["fail"], serde_json::json!([3, "boom\n"]));
    assert_eq!(out["logs"], "line1\nline2\nline3\n");
    assert_eq!(out["status"], "running");
    let bg = out["bg"].as_str().expect("bg id");
    assert_eq!(out["listed"], serde_json::json!([bg]));
    assert_eq!(out["exec"], serde_json::json!([4, "in-exec\nto-err\n"]));
    let hostname = format!("{}\n", &bg[..12]);
    assert_eq!(out["exec_demux"], serde_json::json!([0, hostname, null]));
    // sh as pid 1 ignores SIGTERM: the stop's SIGKILL ended it.
    assert_eq!(out["wait"], 137);
    let pulled = serde_json::json!([image_id, [pushed.as_str(), IMAGE]]);
    assert_eq!(out["pulled"], pulled);
    let netvol = out["netvol"].as_str().expect("netvol");
    assert!(netvol.starts_with("data\n"), "{netvol}");

    // berth's view of the same root.
    let berth = &service.berth;
    let state = "{{.Id}} {{.State.Status}} {{.State.ExitCode}}";
    assert_eq!(
        berth.ok(&["inspect", "-f", state, "py-bg"]),
        format!("{bg} exited 137")
    );
    let fail = berth.ok(&["inspect", "-f", "{{.State.ExitCode}}", "py-fail"]);
    assert_eq!(fail, "3");
    let net = berth.ok(&[
        "inspect",
        "--type",
        "network",
        "-f",
        "{{.Id}} {{.Labels}}",
        "py-net",
    ]);
    assert_eq!(
        net,
        format!("{} map[made:by-py]", out["net"].as_str().unwrap_or(""))
    );
    // The address the container saw is the one the network gave it.
    let subnet = berth.ok(&[
        "inspect",
        "--type",
        "network",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}}",
        "py-net",
    ]);
    let prefix = subnet.rsplit_once(".0/").map_or("", |(p, _)| p).to_string();
    assert!(
        netvol
            .lines()
            .nth(1)
            .is_some_and(|ip| ip.starts_with(&prefix)),
        "{netvol} {subnet}"
    );
    let vol = berth.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Labels}} {{.Mountpoint}}",
        "py-vol",
    ]);
    let (labels, mountpoint) = vol.split_once(' ').expect("labels and mountpoint");
    assert_eq!(labels, "map[made:by-py]");
    assert_eq!(
        fs::read_to_string(Path::new(mountpoint).join("f")).expect("the volume's file"),
        "data\n"
    );
    let images = berth.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    assert!(
        images.contains(&format!("{pushed} {}", &image_id[7..19])),
        "{images}"
    );

    // Every container has ended (the one run with remove=True is gone): prune takes them all.
    let stopped = lines(&berth.ok(&["ps", "-a", "-q", "--no-trunc"]));
    assert_eq!(stopped.len(), 3, "{stopped:?}");
    let out = python(&service, PY_PRUNE);
    assert_eq!(out["pruned"], serde_json::json!(stopped));
    assert_eq!(out["left"], serde_json::json!([]));
    assert_eq!(berth.ok(&["ps", "-a", "-q"]), "");
    assert_eq!(berth.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(
        berth.ok(&["network", "ls", "-q"]),
        only_the_default_network(&service)
    );
}

/// What `network ls -q` lists when the default network is the only one.
fn only_the_default_network(service: &Service) -> String {
    service.docker_ok(&["network", "inspect", "-f", "{{.Id}}", "bridge"])[..12].to_string()
}
