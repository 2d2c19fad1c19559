//! The Engine API's container endpoints driven by the real docker CLI (and curl for what no
//! client sends), each result checked against what the `berth` command line says about the
//! same data root.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;

use berth_harness::api::Service;
use berth_harness::eventually;
use berth_harness::image::IMAGE;
use serde_json::Value;

/// `curl` against the service: the HTTP status and the body.
fn call(service: &Service, method: &str, path: &str, body: Option<&str>) -> (String, String) {
    let url = format!("http://d{path}");
    let mut args = vec!["-s", "-X", method, "-w", "\n%{http_code}", &url];
    if let Some(b) = body {
        args.extend(["-H", "Content-Type: application/json", "-d", b]);
    }
    let ran = service.curl(&args);
    let (body, code) = ran.stdout.rsplit_once('\n').unwrap_or(("", &ran.stdout));
    (code.to_string(), body.to_string())
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn the_lifecycle_through_the_docker_cli_is_what_berth_sees() {
    let Some(service) = Service::start() else {
        return;
    };
    let berth = &service.berth;
    let id = service.docker_ok(&["create", "--name", "web", IMAGE, "sleep", "300"]);
    assert_eq!(berth.ids(), std::slice::from_ref(&id));
    let state = |name: &str| berth.ok(&["inspect", "-f", "{{.State.Status}}", name]);
    assert_eq!(state("web"), "created");
    assert_eq!(service.docker_ok(&["start", "web"]), "web");
    assert_eq!(state("web"), "running");
    // Started already: Docker's 304, which the CLI takes as done.
    assert_eq!(service.docker_ok(&["start", "web"]), "web");
    let ps = "{{.ID}} {{.Names}} {{.State}}";
    assert_eq!(
        service.docker_ok(&["ps", "--format", ps]),
        berth.ok(&["ps", "--format", ps])
    );
    assert_eq!(
        service.docker_ok(&["inspect", "-f", "{{.State.Running}} {{.Id}}", "web"]),
        format!("true {id}")
    );
    let top = service.docker_ok(&["top", "web"]);
    assert!(top.contains("sleep 300"), "{top}");
    service.docker_ok(&["pause", "web"]);
    assert_eq!(state("web"), "paused");
    let ran = service.docker(&["pause", "web"]);
    assert!(
        !ran.success() && ran.stderr.contains("is not running"),
        "{ran:?}"
    );
    service.docker_ok(&["unpause", "web"]);
    assert_eq!(state("web"), "running");
    service.docker_ok(&["stop", "-t", "1", "web"]);
    assert_eq!(state("web"), "exited");
    // Stopped already: 304.
    service.docker_ok(&["stop", "web"]);
    service.docker_ok(&["restart", "-t", "1", "web"]);
    assert_eq!(state("web"), "running");
    service.docker_ok(&["kill", "web"]);
    eventually("the killed container exits", || {
        (state("web") == "exited").then_some(())
    });
    assert_eq!(
        berth.ok(&["inspect", "-f", "{{.State.ExitCode}}", "web"]),
        "137"
    );
    let ran = service.docker(&["kill", "web"]);
    assert!(
        !ran.success() && ran.stderr.contains("is not running"),
        "{ran:?}"
    );
    service.docker_ok(&["rename", "web", "site"]);
    assert_eq!(
        berth.ok(&["inspect", "-f", "{{.Name}}", id.as_str()]),
        "/site"
    );
    service.docker_ok(&["start", "site"]);
    let ran = service.docker(&["rm", "site"]);
    assert!(
        !ran.success(),
        "a running container is not removed without -f"
    );
    assert!(ran.stderr.contains("running"), "{}", ran.stderr);
    service.docker_ok(&["rm", "-f", "site"]);
    assert!(berth.ids().is_empty());
    let ran = service.docker(&["inspect", "site"]);
    assert!(ran.stderr.contains("No such"), "{ran:?}");
    // A command that cannot run: the docker CLI's exit codes (127, 126) from the start's error.
    for (cmd, code) in [("/no/such/cmd", 127), ("/etc/passwd", 126)] {
        let ran = service.docker(&["run", "-d", "--name", "cannot", IMAGE, cmd]);
        assert_eq!(ran.code(), Some(code), "{cmd}: {ran:?}");
        assert!(ran.stderr.contains(cmd), "{cmd}: {}", ran.stderr);
        // Docker's status for it: the request's fault, not the daemon's.
        let (status, _) = call(&service, "POST", "/containers/cannot/start", None);
        assert_eq!(status, "400", "{cmd}");
        service.docker_ok(&["rm", "cannot"]);
    }
}

#[test]
fn ps_filters_and_formats_agree_with_berth() {
    let Some(service) = Service::start() else {
        return;
    };
    let berth = &service.berth;
    let make = |name: &str, label: &str, cmd: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name, "--label", label, IMAGE];
        args.extend_from_slice(cmd);
        service.docker_ok(&args)
    };
    let a = make("alpha", "tier=web", &["sleep", "300"]);
    make("beta", "tier=db", &["sh", "-c", "exit 3"]);
    service.docker_ok(&[
        "create",
        "--name",
        "gamma",
        "-v",
        "gdata:/data",
        IMAGE,
        "true",
    ]);
    make("alpha2", "tier=web", &["true"]);
    eventually("beta and alpha2 exit", || {
        let out = berth.ok(&["ps", "-a", "--filter", "status=exited", "-q"]);
        (out.lines().count() == 2).then_some(())
    });
    let format = "{{.Names}} {{.State}} {{.Image}} {{.Labels}} {{.Command}}";
    let filters: &[&[&str]] = &[
        &[],
        &["-a"],
        &["-a", "--filter", "status=exited"],
        &["--filter", "status=created"],
        &["-a", "--filter", "name=^/alpha"],
        &["-a", "--filter", "name=alpha", "--filter", "label=tier=web"],
        &["-a", "--filter", "label=tier"],
        &["-a", "--filter", "exited=3"],
        &["-a", "--filter", &format!("id={}", &a[..6])],
        &["-a", "--filter", &format!("ancestor={IMAGE}")],
        &["-a", "--filter", "volume=gdata"],
        &["-a", "--filter", "before=gamma"],
        &["-a", "--filter", "since=beta"],
        &["-n", "2"],
        &["-l"],
    ];
    for args in filters {
        let mut all = vec!["ps", "--format", format];
        all.extend_from_slice(args);
        let docker = service.docker_ok(&all);
        assert_eq!(docker, berth.ok(&all), "ps {args:?}");
        assert!(!docker.is_empty(), "ps {args:?} shows something");
    }
    let exited = service.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "exited=3",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(exited.starts_with("beta Exited (3)"), "{exited}");
    // Quiet and untruncated ids; a bad filter is the daemon's 400.
    assert_eq!(
        lines(&service.docker_ok(&["ps", "-aq", "--no-trunc"])),
        lines(&berth.ids().join("\n"))
    );
    // Docker's own table, and sizes.
    let table = service.docker_ok(&["ps", "-a", "-s"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("CONTAINER ID") && header.ends_with("SIZE"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 5, "{table}");
    let ran = service.docker(&["ps", "--filter", "colour=red"]);
    assert!(
        !ran.success() && ran.stderr.contains("invalid filter"),
        "{ran:?}"
    );
    let ran = service.docker(&["ps", "--filter", "status=sleeping"]);
    assert!(
        !ran.success() && ran.stderr.contains("status=sleeping"),
        "{ran:?}"
    );
}

#[test]
fn run_detached_with_a_port_env_bind_and_volume_inspects_as_berth_does() {
    let Some(service) = Service::start() else {
        return;
    };
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("greeting"), "hello\n").unwrap();
    let bind = format!("{}:/host:ro", host_dir.path().display());
    let id = service.docker_ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "-p",
        "127.0.0.1::80",
        "-e",
        "FOO=bar",
        "-v",
        &bind,
        "-v",
        "appdata:/data",
        "--label",
        "role=app",
        "--restart",
        "on-failure:2",
        "--memory",
        "64m",
        IMAGE,
        "sh",
        "-c",
        "cat /host/greeting > /data/copy; exec sleep 300",
    ]);
    let docker = json(&service.docker_ok(&["inspect", "app"]));
    let berth = json(&service.berth.ok(&["inspect", "app"]));
    assert_eq!(docker, berth, "docker inspect and berth inspect differ");
    let c = &docker[0];
    assert_eq!(c["Id"], id.as_str());
    // What compose 1.29 and docker-py read.
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(c["Config"]["Labels"]["role"], "app");
    assert!(
        c["NetworkSettings"]["Networks"]["bridge"].is_object(),
        "{c}"
    );
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(c["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    assert_eq!(c["HostConfig"]["Memory"], 64 << 20);
    let env = c["Config"]["Env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "FOO=bar"), "{env:?}");
    let mounts = c["Mounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["Type"] == "volume" && m["Name"] == "appdata"),
        "{mounts:?}"
    );
    assert!(
        mounts
            .iter()
            .any(|m| m["Type"] == "bind" && m["Destination"] == "/host" && m["RW"] == false),
        "{mounts:?}"
    );
    let port = service.docker_ok(&["port", "app", "80"]);
    assert!(port.starts_with("127.0.0.1:"), "{port}");
    let out = service.berth.ok(&["exec", "app", "cat", "/data/copy"]);
    assert_eq!(out, "hello");
    let ps = service.docker_ok(&["ps", "--format", "{{.Names}} {{.Ports}} {{.Mounts}}"]);
    assert!(
        ps.starts_with("app 127.0.0.1:") && ps.contains("->80/tcp"),
        "{ps}"
    );
    service.docker_ok(&["rm", "-f", "-v", "app"]);
}

#[test]
fn wait_answers_at_each_condition_and_lets_go_of_a_client_that_left() {
    let Some(service) = Service::start() else {
        return;
    };
    service.docker_ok(&[
        "run",
        "-d",
        "--name",
        "three",
        IMAGE,
        "sh",
        "-c",
        "sleep 1; exit 3",
    ]);
    assert_eq!(service.docker_ok(&["wait", "three"]), "3");
    // Not running: at once.
    assert_eq!(service.docker_ok(&["wait", "three"]), "3");
    // next-exit waits for a start, through the berth command line.
    service.docker_ok(&["create", "--name", "later", IMAGE, "sh", "-c", "exit 5"]);
    let later = waiter(&service, "/containers/later/wait?condition=next-exit");
    let (code, _) = call(
        &service,
        "POST",
        "/containers/later/wait?condition=bogus",
        None,
    );
    assert_eq!(code, "400");
    service.berth.ok(&["start", "later"]);
    let got = answer(later);
    assert_eq!(got["StatusCode"], 5, "{got}");
    assert!(got["Error"].is_null(), "{got}");
    // removed: once rm took it.
    let gone = waiter(&service, "/containers/later/wait?condition=removed");
    service.berth.ok(&["rm", "later"]);
    assert_eq!(answer(gone)["StatusCode"], 5);
    let (code, body) = call(&service, "POST", "/containers/nosuch/wait", None);
    assert_eq!(
        (code.as_str(), json(&body)["message"].as_str()),
        ("404", Some("No such container: nosuch"))
    );

    // A waiter that goes away: its thread and its connection to the monitor go too.
    service.docker_ok(&["run", "-d", "--name", "long", IMAGE, "sleep", "300"]);
    let pid = service_pid(&service);
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = fds();
    let mut waiters: Vec<UnixStream> = (0..5)
        .map(|_| waiter(&service, "/containers/long/wait"))
        .collect();
    // Each holds a connection to the service and one to the monitor.
    eventually("the waiters are in place", || {
        (fds() >= before + 10).then_some(())
    });
    waiters.clear();
    eventually("the service lets the waiters go", || {
        (fds() <= before).then_some(())
    });
    assert_eq!(
        service
            .berth
            .ok(&["inspect", "-f", "{{.State.Status}}", "long"]),
        "running"
    );
    service.docker_ok(&["rm", "-f", "long"]);
}

/// A wait posted on its own connection, returned once the answer's head came (so the wait is
/// in place); its body is read by [`answer`]. (curl prints no head before a body's first
/// chunk, so it cannot tell.)
fn waiter(service: &Service, path: &str) -> UnixStream {
    let mut conn = UnixStream::connect(service.socket()).unwrap();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(conn.read(&mut byte).unwrap(), 1, "the head of {path}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    conn
}

/// The rest of a [`waiter`]'s answer: its one chunk, as JSON.
fn answer(mut conn: UnixStream) -> Value {
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    // `<size>\r\n<json>\r\n0\r\n\r\n`
    let chunk = body.split("\r\n").nth(1).unwrap_or_default();
    json(chunk.trim())
}

/// The service's pid, from the process whose command line names its socket.
fn service_pid(service: &Service) -> u32 {
    let socket = service.socket().display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("system\0service") && cmdline.contains(&socket)
        })
        .expect("the service's process")
}

#[test]
fn stats_top_update_export_and_prune() {
    let Some(service) = Service::start() else {
        return;
    };
    let berth = &service.berth;
    service.docker_ok(&[
        "run", "-d", "--name", "busy", "--memory", "64m", IMAGE, "sleep", "300",
    ]);
    let stats = service.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}",
        "busy",
    ]);
    let fields: Vec<&str> = stats.split('|').collect();
    assert_eq!(fields.len(), 4, "{stats}");
    assert_eq!(fields[0], "busy");
    assert!(
        fields[1].ends_with("/ 64MiB") && !fields[1].starts_with("0B"),
        "{stats}"
    );
    assert_eq!(fields[2], "1", "{stats}");
    let cpu: f64 = fields[3].trim_end_matches('%').parse().unwrap();
    assert!((0.0..=200.0).contains(&cpu), "{stats}");
    let (code, body) = call(
        &service,
        "GET",
        "/containers/busy/stats?stream=false&one-shot=true",
        None,
    );
    assert_eq!(code, "200");
    let one = json(&body);
    assert_eq!(one["preread"], "0001-01-01T00:00:00Z", "{one}");
    assert_eq!(one["pids_stats"]["current"], 1, "{one}");
    // A stream: a reading a second, each against the one before; it ends with its client.
    let pid = service_pid(&service);
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = fds();
    let mut conn = UnixStream::connect(service.socket()).unwrap();
    write!(
        conn,
        "GET /containers/busy/stats HTTP/1.1\r\nHost: d\r\n\r\n"
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(conn);
    let mut frames = Vec::new();
    while frames.len() < 2 {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0);
        if line.starts_with('{') {
            frames.push(json(&line));
        }
    }
    assert_eq!(frames[1]["preread"], frames[0]["read"], "{frames:?}");
    drop(reader);
    eventually("the stream's thread lets go", || {
        (fds() <= before).then_some(())
    });

    service.docker_ok(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "192m",
        "--restart",
        "always",
        "busy",
    ]);
    let shown = berth.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}",
        "busy",
    ]);
    assert_eq!(shown, format!("{} always", 96 << 20));
    let ran = service.docker(&["update", "--memory", "1k", "busy"]);
    assert!(
        !ran.success() && ran.stderr.contains("Minimum memory limit"),
        "{ran:?}"
    );

    let (code, body) = call(
        &service,
        "GET",
        "/containers/busy/top?ps_args=-o%20pid,comm",
        None,
    );
    assert_eq!(code, "200");
    let top = json(&body);
    assert_eq!(
        top["Titles"],
        serde_json::json!(["PID", "COMMAND"]),
        "{top}"
    );
    assert_eq!(top["Processes"][0][1], "sleep", "{top}");

    let tar = service.dir().join("busy.tar");
    service.docker_ok(&["export", "-o", tar.to_str().unwrap(), "busy"]);
    let listing = Command::new("tar").arg("tf").arg(&tar).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.trim_start_matches("./") == "bin/sh"),
        "{listing}"
    );
    // A running container that changed nothing: dockerd's null.
    let (code, body) = call(&service, "GET", "/containers/busy/changes", None);
    assert_eq!((code.as_str(), body.trim()), ("200", "null"), "{body}");

    // Prune: the stopped ones the filter does not keep.
    service.docker_ok(&[
        "create", "--name", "old1", "--label", "keep=no", IMAGE, "true",
    ]);
    service.docker_ok(&[
        "create", "--name", "old2", "--label", "keep=yes", IMAGE, "true",
    ]);
    let out = service.docker_ok(&["container", "prune", "-f", "--filter", "label=keep=no"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    let names = berth.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(lines(&names), ["busy", "old2"]);
    let (code, body) = call(&service, "POST", "/containers/prune", None);
    assert_eq!(code, "200");
    let pruned = json(&body);
    assert_eq!(
        pruned["ContainersDeleted"].as_array().map(Vec::len),
        Some(1),
        "{pruned}"
    );
    let (code, body) = call(&service, "POST", "/containers/prune", None);
    assert_eq!(
        (code.as_str(), json(&body)["ContainersDeleted"].is_null()),
        ("200", true)
    );
    assert_eq!(berth.ok(&["ps", "-a", "--format", "{{.Names}}"]), "busy");
    service.docker_ok(&["rm", "-f", "busy"]);
}

#[test]
fn hostile_create_bodies_are_refused_and_leave_nothing() {
    let Some(service) = Service::start() else {
        return;
    };
    let image = format!("\"Image\": \"{IMAGE}\", \"Cmd\": [\"true\"]");
    let refused: &[(&str, String, &str)] = &[
        ("400", "{not json".into(), "invalid JSON"),
        ("400", r#"{"Image": 5}"#.into(), "invalid JSON"),
        (
            "400",
            format!(r#"{{{image}, "Cmd": {{"a": 1}}}}"#),
            "invalid JSON",
        ),
        (
            "400",
            format!(r#"{{{image}, "Env": "A=1"}}"#),
            "invalid JSON",
        ),
        ("400", "{}".into(), "no image given"),
        (
            "400",
            format!(r#"{{"Image": "{IMAGE}"}}"#),
            "no command specified",
        ),
        (
            "400",
            format!(r#"{{{image}, "HostConfig": {{"Memory": -1}}}}"#),
            "Minimum memory limit",
        ),
        (
            "400",
            format!(r#"{{{image}, "HostConfig": {{"Memory": "lots"}}}}"#),
            "invalid JSON",
        ),
        (
            "400",
            format!(r#"{{{image}, "HostConfig": {{"Binds": [":/x"]}}}}"#),
            "empty section",
        ),
        (
            "400",
            format!(r#"{{{image}, "HostConfig": {{"CpuShares": -5}}}}"#),
            "CpuShares",
        ),
        (
            "400",
            format!(r#"{{{image}, "HostConfig": {{"PortBindings": {{"http/tcp": [{{}}]}}}}}}"#),
            "PortBindings",
        ),
        (
            "400",
            format!(r#"{{{image}, "HostConfig": {{"RestartPolicy": {{"Name": "sometimes"}}}}}}"#),
            "--restart",
        ),
        (
            "400",
            format!(
                r#"{{{image}, "HostConfig": {{"Mounts": [{{"Type": "bind", "Source": "/no/such/dir", "Target": "/x"}}]}}}}"#
            ),
            "bind source path does not exist",
        ),
        // Volume options berth would drop are refused: a tmpfs asked for is not to become a
        // volume on disk, nor a subpath the whole volume.
        (
            "501",
            format!(
                r#"{{{image}, "HostConfig": {{"Mounts": [{{"Type": "volume", "Source": "secrets", "Target": "/x", "VolumeOptions": {{"DriverConfig": {{"Name": "local", "Options": {{"type": "tmpfs", "device": "tmpfs"}}}}}}}}]}}}}"#
            ),
            "DriverConfig",
        ),
        (
            "501",
            format!(
                r#"{{{image}, "HostConfig": {{"Mounts": [{{"Type": "volume", "Source": "secrets", "Target": "/x", "VolumeOptions": {{"Subpath": "a/b"}}}}]}}}}"#
            ),
            "Subpath",
        ),
        (
            "400",
            format!(r#"{{{image}, "HostConfig": {{"NetworkMode": "nosuchnet"}}}}"#),
            "nosuchnet",
        ),
        (
            "400",
            format!(r#"{{{image}, "HostConfig": {{"LogConfig": {{"Type": "syslog"}}}}}}"#),
            "--log-driver",
        ),
        (
            "400",
            format!(r#"{{{image}, "HostConfig": {{"Links": ["a:b"]}}}}"#),
            "links",
        ),
        (
            "400",
            format!(r#"{{{image}, "User": "nosuchuser"}}"#),
            "nosuchuser",
        ),
        (
            "404",
            r#"{"Image": "nosuch:1"}"#.into(),
            "No such image: nosuch:1",
        ),
    ];
    for (status, body, says) in refused {
        let (code, answer) = call(&service, "POST", "/containers/create", Some(body));
        assert_eq!(&code, status, "{body}: {answer}");
        let message = json(&answer)["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(says), "{body}: {message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
    // Names: Docker's rule, and one too long for a name (it was a 500: the name index's file).
    let long = "a".repeat(1000);
    for name in ["bad/name", "-x", long.as_str()] {
        let path = format!("/containers/create?name={name}");
        let (code, answer) = call(&service, "POST", &path, Some(&format!("{{{image}}}")));
        assert_eq!(code, "400", "{name}: {answer}");
        assert!(
            answer.len() < 400,
            "the message does not echo the whole name: {answer}"
        );
    }
    // A name too large for the request's head (1 MiB): refused by the server, which carries on.
    let mut conn = UnixStream::connect(service.socket()).unwrap();
    let huge = "a".repeat(1 << 20);
    let request = format!(
        "POST /containers/create?name={huge} HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    // The server may answer and close before it has read it all.
    let _ = conn.write_all(request.as_bytes());
    let mut status = String::new();
    let _ = conn.read_to_string(&mut status);
    let status = &status[..status.len().min(200)];
    assert!(status.starts_with("HTTP/1.1 4"), "{status}");
    assert!(
        service.berth.ids().is_empty(),
        "a refused create leaves no container"
    );
    let dir = service.berth.root().join("containers");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 64)
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let volumes = service.berth.ok(&["volume", "ls", "-q"]);
    assert!(volumes.is_empty(), "{volumes}");

    // A name in use is a 409; the first container is untouched.
    let (code, answer) = call(
        &service,
        "POST",
        "/containers/create?name=one",
        Some(&format!("{{{image}}}")),
    );
    assert_eq!(code, "201", "{answer}");
    let id = json(&answer)["Id"].as_str().unwrap().to_string();
    assert_eq!(json(&answer)["Warnings"], serde_json::json!([]));
    let (code, answer) = call(
        &service,
        "POST",
        "/containers/create?name=one",
        Some(&format!("{{{image}}}")),
    );
    assert_eq!(code, "409", "{answer}");
    assert!(
        json(&answer)["message"]
            .as_str()
            .unwrap()
            .contains("already in use"),
        "{answer}"
    );
    assert_eq!(service.berth.ids(), [id]);
    // A health check is taken as it is, without a warning; a malformed one is refused.
    let body = format!(r#"{{{image}, "Healthcheck": {{"Test": ["CMD", "true"], "Retries": 2}}}}"#);
    let (code, answer) = call(&service, "POST", "/containers/create", Some(&body));
    assert_eq!(code, "201", "{answer}");
    assert_eq!(json(&answer)["Warnings"], serde_json::json!([]), "{answer}");
    let id = json(&answer)["Id"].as_str().unwrap().to_string();
    let config = service.docker_ok(&["inspect", "-f", "{{json .Config.Healthcheck}}", &id]);
    assert_eq!(
        json(&config),
        serde_json::json!({"Test": ["CMD", "true"], "Retries": 2})
    );
    for bad in [
        r#"{"Test": "true"}"#,
        r#"{"Test": ["CMD"]}"#,
        r#"{"Interval": 5}"#,
    ] {
        let body = format!(r#"{{{image}, "Healthcheck": {bad}}}"#);
        let (code, answer) = call(&service, "POST", "/containers/create", Some(&body));
        assert_eq!(code, "400", "{bad}: {answer}");
    }
    service.docker_ok(&["version"]);
}

#[test]
fn create_takes_what_docker_clients_send() {
    let Some(service) = Service::start() else {
        return;
    };
    // A body as docker-py and compose send it: nulls, a string Cmd, an Entrypoint list,
    // anonymous Volumes, Tmpfs, aliases on the default endpoint.
    let body = format!(
        r#"{{"Image": "{IMAGE}", "Cmd": "echo hi", "Entrypoint": ["/bin/sh", "-c"],
        "Env": null, "Labels": {{"a": "b"}}, "Volumes": {{"/anon": {{}}}}, "Tty": false,
        "AttachStdout": true, "Hostname": "box", "StopSignal": "SIGINT", "StopTimeout": 3,
        "HostConfig": {{"Tmpfs": {{"/scratch": "size=1m"}}, "Init": null, "PidsLimit": 0,
            "NanoCpus": 500000000, "ShmSize": 0, "SecurityOpt": ["no-new-privileges"],
            "RestartPolicy": {{"Name": "", "MaximumRetryCount": 0}}, "NetworkMode": "default"}},
        "NetworkingConfig": {{"EndpointsConfig": {{"default": null}}}}}}"#
    );
    let (code, answer) = call(
        &service,
        "POST",
        "/containers/create?name=shaped",
        Some(&body),
    );
    assert_eq!(code, "201", "{answer}");
    let c = &json(&service.berth.ok(&["inspect", "shaped"]))[0];
    assert_eq!(
        c["Config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c"])
    );
    assert_eq!(c["Config"]["Cmd"], serde_json::json!(["echo hi"]));
    assert_eq!(c["Config"]["Hostname"], "box");
    assert_eq!(c["Config"]["StopSignal"], "SIGINT");
    assert_eq!(c["HostConfig"]["NanoCpus"], 500_000_000);
    let mounts = c["Mounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["Destination"] == "/anon" && m["Type"] == "volume"),
        "{c}"
    );
    service.docker_ok(&["start", "shaped"]);
    assert_eq!(service.docker_ok(&["wait", "shaped"]), "0");
    assert_eq!(service.berth.ok(&["logs", "shaped"]), "hi");
    // VolumesFrom: its volumes, read-only here.
    service.docker_ok(&[
        "create",
        "--name",
        "reader",
        "--volumes-from",
        "shaped:ro",
        IMAGE,
        "true",
    ]);
    let mounts = json(&service.berth.ok(&["inspect", "reader"]))[0]["Mounts"].clone();
    assert!(
        mounts
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["Destination"] == "/anon" && m["RW"] == false),
        "{mounts}"
    );
    service.docker_ok(&["rm", "-v", "reader", "shaped"]);
}

#[test]
fn docker_py_runs_lists_stops_and_prunes() {
    let Some(service) = Service::start() else {
        return;
    };
    let script = format!(
        r#"
import docker
c = docker.from_env(version="auto")
box = c.containers.run("{IMAGE}", "sleep 300", detach=True, name="pybox",
                       labels={{"made": "py"}}, environment={{"A": "1"}},
                       mem_limit="64m", restart_policy={{"Name": "on-failure", "MaximumRetryCount": 1}})
box.reload()
print(box.status, box.name, box.attrs["Config"]["Labels"]["made"], box.attrs["HostConfig"]["Memory"])
print([x.name for x in c.containers.list(filters={{"label": "made=py"}})])
print(box.top()["Processes"][0][-1])
print(box.stats(stream=False)["pids_stats"]["current"])
box.pause(); box.reload(); print(box.status)
box.unpause()
box.stop(timeout=1); box.reload(); print(box.status, box.attrs["State"]["ExitCode"])
print(box.wait()["StatusCode"])
short = c.containers.create("{IMAGE}", ["sh", "-c", "exit 4"], name="short")
short.start()
print(short.wait()["StatusCode"])
print(sorted(c.containers.prune()["ContainersDeleted"]) == sorted([box.id, short.id]))
print(c.containers.list(all=True))
"#
    );
    let ran = service.python(&script);
    assert!(ran.success(), "{}\n{}", ran.stdout, ran.stderr);
    let expected = [
        format!("running pybox py {}", 64 << 20),
        "['pybox']".to_string(),
        "sleep 300".to_string(),
        "1".to_string(),
        "paused".to_string(),
        "exited 137".to_string(),
        "137".to_string(),
        "4".to_string(),
        "True".to_string(),
        "[]".to_string(),
    ];
    let got: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(got, expected, "{}", ran.stderr);
    assert!(service.berth.ids().is_empty());
}

/// `--ipc` through the docker CLI (the API's `HostConfig.IpcMode`): Docker's modes as inspect
/// names them, a private container's IPC refused to another with Docker's words and 125, a
/// shareable one's joined, and no /dev/shm with `none`.
#[test]
fn ipc_modes_through_the_docker_cli() {
    let Some(service) = Service::start() else {
        return;
    };
    for (name, mode, shown) in [
        ("dflt", None, "private"),
        ("shar", Some("shareable"), "shareable"),
    ] {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend(mode.map(|m| ["--ipc", m]).into_iter().flatten());
        args.extend([IMAGE, "sleep", "1000"]);
        service.docker_ok(&args);
        let inspected = ["inspect", "--format", "{{.HostConfig.IpcMode}}", name];
        assert_eq!(service.docker_ok(&inspected), shown);
    }
    let refused = service.docker(&["run", "--rm", "--ipc", "container:dflt", IMAGE, "true"]);
    assert_eq!(refused.code(), Some(125), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("non-shareable IPC (hint: use IpcMode:shareable for the donor container)"),
        "{}",
        refused.stderr
    );
    let theirs = service.docker_ok(&["exec", "shar", "readlink", "/proc/self/ns/ipc"]);
    let joined = ["run", "--rm", "--ipc", "container:shar", IMAGE];
    let ours = service.docker_ok(&[&joined[..], &["readlink", "/proc/self/ns/ipc"]].concat());
    assert_eq!(ours, theirs);
    let none = service.docker(&["run", "--rm", "--ipc", "none", IMAGE, "ls", "/dev/shm"]);
    assert_eq!(none.code(), Some(1), "{}", none.stderr);
    service.docker_ok(&["rm", "-f", "dflt", "shar"]);
}

/// `--memory-swappiness` and `--oom-kill-disable` through the docker CLI (the API's
/// `MemorySwappiness`, `OomKillDisable`): written to the container's memory cgroup on a host
/// whose memory controller is v1, shown by inspect; discarded with Docker's warnings on v2.
#[test]
fn memory_swappiness_and_oom_kill_disable_through_the_docker_cli() {
    let Some(service) = Service::start() else {
        return;
    };
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory").is_dir();
    let flags = berth_harness::memory_knobs::FLAGS;
    let created =
        service.docker(&[&["create", "--name", "tuned"][..], &flags, &[IMAGE, "true"]].concat());
    assert!(created.success(), "{}", created.stderr);
    let shown = "{{.HostConfig.MemorySwappiness}} {{.HostConfig.OomKillDisable}}";
    let inspected = service.docker_ok(&["inspect", "--format", shown, "tuned"]);
    if v1 {
        assert_eq!(created.stderr.trim(), "", "no warning on v1");
        assert_eq!(inspected, "7 true");
        let read = berth_harness::memory_knobs::READ;
        let run = [&["run", "--rm"][..], &flags, &[IMAGE, "sh", "-c", read]].concat();
        assert_eq!(service.docker_ok(&run), berth_harness::memory_knobs::SEEN);
    } else {
        assert!(
            created.stderr.contains("OomKillDisable discarded"),
            "{}",
            created.stderr
        );
        assert_eq!(inspected, "<nil> false");
    }
    service.docker_ok(&["rm", "tuned"]);
}

/// Block I/O throttles, device cgroup rules and annotations through the docker CLI (the API's
/// `BlkioDeviceReadBps`..., `DeviceCgroupRules`, `Annotations`): in the container's cgroups
/// (a cgroup v1 host's files) and in inspect.
#[test]
fn block_io_limits_device_rules_and_annotations_through_the_docker_cli() {
    let Some(service) = Service::start() else {
        return;
    };
    let created = service.docker_ok(&[
        "create",
        "--annotation",
        "org.example/a=b",
        "--device-cgroup-rule",
        "c 1:3 r",
        IMAGE,
        "true",
    ]);
    let shown = "{{json .HostConfig.Annotations}} {{json .HostConfig.DeviceCgroupRules}}";
    assert_eq!(
        service.docker_ok(&["inspect", "--format", shown, &created]),
        r#"{"org.example/a":"b"} ["c 1:3 r"]"#
    );
    service.docker_ok(&["rm", &created]);
    // None given: no Annotations at all (Docker's omitempty), DeviceCgroupRules null.
    let plain = service.docker_ok(&["create", IMAGE, "true"]);
    let host = &json(&service.berth.ok(&["inspect", &plain]))[0]["HostConfig"];
    assert!(host.get("Annotations").is_none(), "{host}");
    assert!(host["DeviceCgroupRules"].is_null(), "{host}");
    service.docker_ok(&["rm", &plain]);
    let blkio = std::path::Path::new("/sys/fs/cgroup/blkio");
    let loop0 = std::path::Path::new("/dev/loop0");
    if !blkio.is_dir() || !loop0.exists() {
        berth_harness::skipping(format_args!("needs cgroup v1's blkio and /dev/loop0"));
        return;
    }
    let read = "cat /sys/fs/cgroup/blkio/blkio.throttle.write_bps_device";
    let limits = [
        "run",
        "--rm",
        "--device-write-bps",
        "/dev/loop0:2mb",
        IMAGE,
        "sh",
        "-c",
        read,
    ];
    let major_minor = {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(loop0).expect("/dev/loop0").rdev();
        format!(
            "{}:{}",
            nix::sys::stat::major(rdev),
            nix::sys::stat::minor(rdev)
        )
    };
    assert_eq!(service.docker_ok(&limits), format!("{major_minor} 2097152"));
}

/// `--add-host name:host-gateway`, as compose files reach the host (`host.docker.internal`):
/// the default network's gateway in /etc/hosts, whatever the container's network, through
/// berth's CLI and the docker CLI alike; inspect keeps `host-gateway` as asked, as Docker's.
#[test]
fn add_host_host_gateway_is_the_default_networks_gateway() {
    let Some(service) = Service::start() else {
        return;
    };
    let gateway = service.berth.ok(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{(index .IPAM.Config 0).Gateway}}",
    ]);
    assert!(gateway.parse::<std::net::Ipv4Addr>().is_ok(), "{gateway}");
    let flags = ["--add-host", "host.docker.internal:host-gateway"];
    let read = ["grep", "host.docker.internal", "/etc/hosts"];
    for network in ["bridge", "none"] {
        let args = [
            &["run", "--rm", "--network", network][..],
            &flags,
            &[IMAGE],
            &read,
        ]
        .concat();
        let want = format!("{gateway}\thost.docker.internal");
        assert_eq!(service.berth.ok(&args), want, "berth, {network}");
        assert_eq!(service.docker_ok(&args), want, "docker, {network}");
    }
    let created = service.docker_ok(&[&["create"][..], &flags, &[IMAGE, "true"]].concat());
    let shown = service.docker_ok(&[
        "inspect",
        "--format",
        "{{json .HostConfig.ExtraHosts}}",
        &created,
    ]);
    assert_eq!(shown, r#"["host.docker.internal:host-gateway"]"#);
    service.docker_ok(&["rm", &created]);
}
