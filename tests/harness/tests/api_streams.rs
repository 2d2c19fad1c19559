//! The Engine API's streaming endpoints (logs, attach, exec, archive) driven by their real
//! clients: the docker CLI, docker-py, curl, and a raw socket for what a hijacked connection
//! does underneath. Containers are made with the `berth` CLI on the service's own root.
//!
//! The docker CLI inspects a container (`GET /containers/{id}/json`) before `logs`, `attach`
//! and `exec`, and `run` is create + attach + wait + start; the same streams are also checked
//! through clients that do not inspect.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::Command;

use berth_harness::api::{Service, Streaming};
use berth_harness::eventually;
use berth_harness::image::IMAGE;
use berth_harness::pty::Terminal;
use serde_json::Value;

/// How many descriptors the service holds.
fn fds(service: &Service) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", service.pid()))
        .expect("the service's fds")
        .count()
}

/// Waits until the service holds no more descriptors than `baseline` (a finished stream's
/// are released when its client is seen gone, within a second or so).
fn released(service: &Service, baseline: usize) {
    eventually("the service to release the stream's descriptors", || {
        (fds(service) <= baseline).then_some(())
    });
}

/// The service's descriptors once it has served a first request.
fn baseline(service: &Service) -> usize {
    service.docker_ok(&["version"]);
    fds(service)
}

/// `docker <args>` on a new terminal, its controlling one (as in a person's shell: the CLI
/// learns of a resize from SIGWINCH).
fn on_terminal(service: &Service, args: &[&str], rows: u16, cols: u16) -> Terminal {
    let mut command = service.client("setsid");
    command.args(["--ctty", "docker"]).args(args);
    Terminal::spawn(command, rows, cols)
}

fn running(service: &Service, name: &str) -> bool {
    service.berth.inspect(name)["State"]["Running"] == Value::Bool(true)
}

/// `GET /containers/<name>/logs?<query>` through curl: the body's bytes and the content type.
fn curl_logs(service: &Service, name: &str, query: &str) -> (Vec<u8>, String) {
    let body = service.dir().join("logs.out");
    let ran = service.curl(&[
        "-s",
        "-o",
        body.to_str().expect("utf-8 path"),
        "-w",
        "%{http_code} %{content_type}",
        &format!("http://d/containers/{name}/logs?{query}"),
    ]);
    let bytes = std::fs::read(&body).unwrap_or_default();
    (bytes, ran.stdout)
}

/// Docker's stdcopy framing, undone: (stream, bytes) for each frame.
fn frames(mut body: &[u8]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    while body.len() >= 8 {
        assert_eq!(&body[1..4], [0, 0, 0], "a frame header: {body:?}");
        let len = u32::from_be_bytes([body[4], body[5], body[6], body[7]]) as usize;
        let text = String::from_utf8_lossy(&body[8..8 + len]).into_owned();
        out.push((body[0], text));
        body = &body[8 + len..];
    }
    assert!(body.is_empty(), "a partial frame is left: {body:?}");
    out
}

#[test]
fn logs_are_framed_by_stream_and_raw_with_a_terminal() {
    let Some(service) = Service::start() else {
        return;
    };
    let script = "echo out1; echo err1 >&2; echo out2";
    service
        .berth
        .ok(&["run", "--name", "lg", IMAGE, "sh", "-c", script]);
    let (body, status) = curl_logs(&service, "lg", "stdout=1&stderr=1");
    assert_eq!(status, "200 application/vnd.docker.multiplexed-stream");
    // Two pipes: the order between the streams is the kernel's, within each it is kept.
    let of = |stream: u8| -> Vec<String> {
        let all = frames(&body).into_iter();
        all.filter(|f| f.0 == stream).map(|f| f.1).collect()
    };
    assert_eq!(of(1), ["out1\n", "out2\n"]);
    assert_eq!(of(2), ["err1\n"]);
    // One stream, the last entry, and times first: as `berth logs` shows them.
    let (body, _) = curl_logs(&service, "lg", "stderr=1");
    assert_eq!(frames(&body), [(2, "err1\n".to_string())]);
    service.berth.ok(&[
        "run",
        "--name",
        "tl",
        IMAGE,
        "sh",
        "-c",
        "echo one; echo two",
    ]);
    let (body, _) = curl_logs(&service, "tl", "stdout=1&stderr=1&tail=1");
    assert_eq!(frames(&body), [(1, "two\n".to_string())]);
    let (body, _) = curl_logs(&service, "lg", "stdout=1&timestamps=1");
    let stamped: Vec<String> = frames(&body).into_iter().map(|f| f.1).collect();
    let berth = service.berth.ok(&["logs", "-t", "lg"]);
    assert_eq!(
        stamped.concat().trim_end(),
        berth,
        "as berth logs -t shows it"
    );
    // An old client is told "raw" whatever the framing, as Docker tells it.
    let old = service.curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{content_type}",
        "http://d/v1.41/containers/lg/logs?stdout=1",
    ]);
    assert_eq!(old.stdout, "application/vnd.docker.raw-stream");
    // With a terminal, the bytes as they came.
    service
        .berth
        .ok(&["create", "-t", "--name", "tty", IMAGE, "echo", "on a tty"]);
    service.berth.ok(&["start", "tty"]);
    service.berth.ok(&["wait", "tty"]);
    let (body, status) = curl_logs(&service, "tty", "stdout=1&stderr=1");
    assert_eq!(status, "200 application/vnd.docker.raw-stream");
    assert_eq!(String::from_utf8_lossy(&body), "on a tty\r\n");
    // No stream asked for, no such container.
    let (_, status) = curl_logs(&service, "lg", "");
    assert!(status.starts_with("400"), "{status}");
    let (_, status) = curl_logs(&service, "nosuch", "stdout=1");
    assert!(status.starts_with("404"), "{status}");
}

/// A container that prints `a`, waits for /tmp/go, prints `b` and exits.
const GATED: &str = "echo a; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo b";

#[test]
fn a_follow_ends_with_the_container_and_a_gone_client_leaves_nothing() {
    let Some(service) = Service::start() else {
        return;
    };
    let baseline = baseline(&service);
    service
        .berth
        .ok(&["run", "-d", "--name", "fl", IMAGE, "sh", "-c", GATED]);
    let mut curl = Command::new("curl");
    curl.arg("--unix-socket")
        .arg(service.socket())
        .args(["-sN", "http://d/containers/fl/logs?stdout=1&follow=1"]);
    let mut follow = Streaming::spawn(curl);
    follow.wait_for("a\n");
    service.berth.ok(&["exec", "fl", "touch", "/tmp/go"]);
    assert!(
        follow.exit().success(),
        "the follow ends with the container"
    );
    assert!(follow.text().ends_with("b\n"), "{:?}", follow.text());
    released(&service, baseline);

    // A client killed mid-follow: the service lets go, the container runs on.
    service.berth.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        IMAGE,
        "sh",
        "-c",
        "echo up; sleep 1000",
    ]);
    let mut curl = Command::new("curl");
    curl.arg("--unix-socket")
        .arg(service.socket())
        .args(["-sN", "http://d/containers/busy/logs?stdout=1&follow=1"]);
    let mut follow = Streaming::spawn(curl);
    follow.wait_for("up");
    assert!(fds(&service) > baseline, "the follow holds its connection");
    follow.kill();
    released(&service, baseline);
    assert!(running(&service, "busy"));
    service.docker_ok(&["version"]);
}

/// A python script that attaches to `name` with `query` over a raw socket, prints the
/// answer's status line, then runs `then` (with `s`, the socket, and `frames()`, which reads
/// to the end and undoes the framing).
fn raw_attach(service: &Service, name: &str, query: &str, then: &str) -> String {
    format!(
        r#"
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect({sock:?})
s.sendall(b"POST /v1.50/containers/{name}/attach?{query} HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    c = s.recv(1)
    if not c:
        sys.exit("closed before the answer")
    head += c
print(head.split(b"\r\n")[0].decode(), flush=True)
def frames():
    buf = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        buf += c
    out = []
    while len(buf) >= 8:
        n = int.from_bytes(buf[4:8], "big")
        out.append((buf[0], buf[8:8 + n].decode()))
        buf = buf[8 + n:]
    return out
{then}
"#,
        sock = service.socket().display().to_string(),
    )
}

fn python(service: &Service, script: &str) -> Command {
    let mut command = service.client("/usr/bin/python3");
    command.arg("-c").arg(script);
    command
}

#[test]
fn attach_before_the_start_misses_nothing() {
    let Some(service) = Service::start() else {
        return;
    };
    // `docker run` attaches to the created container, then starts it.
    service.berth.ok(&[
        "create",
        "--name",
        "early",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    let script = raw_attach(
        &service,
        "early",
        "stream=1&stdout=1&stderr=1",
        "print(frames(), flush=True)",
    );
    let mut client = Streaming::spawn(python(&service, &script));
    client.wait_for("HTTP/1.1 101");
    service.berth.ok(&["start", "early"]);
    assert!(client.exit().success(), "{}", client.text());
    assert!(
        client.text().contains("[(1, 'out\\n'), (2, 'err\\n')]"),
        "{}",
        client.text()
    );
    assert_eq!(service.berth.inspect("early")["State"]["ExitCode"], 3);
    // The same for a stopped container started again, and nothing waits once it is removed.
    let mut client = Streaming::spawn(python(&service, &script));
    client.wait_for("HTTP/1.1 101");
    service.berth.ok(&["rm", "early"]);
    assert!(client.exit().success(), "{}", client.text());
    assert!(client.text().contains("[]"), "{}", client.text());
}

#[test]
fn attach_relays_input_and_its_end_and_a_gone_client_leaves_the_container_running() {
    let Some(service) = Service::start() else {
        return;
    };
    let baseline = baseline(&service);
    service
        .berth
        .ok(&["create", "-i", "--name", "cat1", IMAGE, "cat"]);
    service.berth.ok(&["start", "cat1"]);
    // Input in, its echo out, and the end of the input (a half-close, as the docker CLI does
    // at the end of its stdin) is the end of the container's.
    let script = raw_attach(
        &service,
        "cat1",
        "stream=1&stdin=1&stdout=1&stderr=1",
        "s.sendall(b'hello\\n')\ns.shutdown(socket.SHUT_WR)\nprint(frames())",
    );
    let ran = service.python(&script);
    assert!(ran.success(), "{}", ran.stderr);
    assert!(ran.stdout.contains("[(1, 'hello\\n')]"), "{}", ran.stdout);
    assert_eq!(service.berth.ok(&["wait", "cat1"]), "0");
    released(&service, baseline);

    // A client killed mid-attach (with input, and without): the container keeps running
    // (its stdin is not closed: the client did not end its input, it went away), and the
    // service lets go of everything.
    service
        .berth
        .ok(&["create", "-i", "--name", "cat2", IMAGE, "cat"]);
    service.berth.ok(&["start", "cat2"]);
    for query in ["stream=1&stdin=1&stdout=1", "stream=1&stdout=1"] {
        let script = raw_attach(&service, "cat2", query, "time.sleep(1000)");
        let mut client = Streaming::spawn(python(&service, &script));
        client.wait_for("HTTP/1.1 101");
        client.kill();
        released(&service, baseline);
        assert!(running(&service, "cat2"), "{query}");
    }
    service.docker_ok(&["version"]);
}

#[test]
fn exec_through_docker_py() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["run", "-d", "--name", "ex", IMAGE, "sleep", "1000"]);
    let ran = service.python(
        r#"
import docker
api = docker.from_env().api
e = api.exec_create("ex", ["sh", "-c", "echo out; echo err >&2; exit 3"])
print(api.exec_start(e["Id"], demux=True))
i = api.exec_inspect(e["Id"])
print(i["ExitCode"], i["Running"], i["ProcessConfig"]["entrypoint"])
e = api.exec_create("ex", ["nope"])
print(repr(api.exec_start(e["Id"])))
print(api.exec_inspect(e["Id"])["ExitCode"])
try:
    api.exec_inspect("0" * 64)
except docker.errors.NotFound:
    print("no such exec")
"#,
    );
    assert!(ran.success(), "{}", ran.stderr);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines[0], "(b'out\\n', b'err\\n')", "{}", ran.stdout);
    assert_eq!(lines[1], "3 False sh");
    assert!(lines[2].contains("nope"), "{}", ran.stdout);
    assert_eq!(lines[3], "127");
    assert_eq!(lines[4], "no such exec");
}

#[test]
fn docker_logs_tail_timestamps_follow() {
    let Some(service) = Service::start() else {
        return;
    };
    let script = "echo out1; echo err1 >&2; echo out2";
    service
        .berth
        .ok(&["run", "--name", "lg", IMAGE, "sh", "-c", script]);
    let ran = service.docker(&["logs", "lg"]);
    assert!(ran.success(), "{}", ran.stderr);
    assert_eq!(ran.stdout, "out1\nout2\n");
    assert_eq!(ran.stderr, "err1\n");
    service.berth.ok(&[
        "run",
        "--name",
        "tl",
        IMAGE,
        "sh",
        "-c",
        "echo one; echo two",
    ]);
    assert_eq!(service.docker_ok(&["logs", "--tail", "1", "tl"]), "two");
    assert_eq!(
        service.docker_ok(&["logs", "-t", "lg"]),
        service.berth.ok(&["logs", "-t", "lg"])
    );
    service
        .berth
        .ok(&["run", "-d", "--name", "fl", IMAGE, "sh", "-c", GATED]);
    let mut client = service.client("docker");
    client.args(["logs", "-f", "fl"]);
    let mut follow = Streaming::spawn(client);
    follow.wait_for("a\n");
    service.berth.ok(&["exec", "fl", "touch", "/tmp/go"]);
    assert!(follow.exit().success(), "{}", follow.text());
    assert_eq!(follow.text(), "a\nb\n");
}

#[test]
fn docker_clients_killed_mid_stream_leave_nothing_behind() {
    let Some(service) = Service::start() else {
        return;
    };
    let baseline = baseline(&service);
    service
        .berth
        .ok(&["create", "-i", "--name", "idle", IMAGE, "sh"]);
    service.berth.ok(&["start", "idle"]);
    service
        .berth
        .ok(&["exec", "idle", "sh", "-c", "echo up > /proc/1/fd/1"]);
    // `docker attach` waits on the container (POST /wait) beside its stream: that request's
    // hold on the container must go with the client too.
    for args in [["logs", "-f", "idle"], ["attach", "--no-stdin", "idle"]] {
        let mut client = service.client("docker");
        client.args(args);
        let mut streaming = Streaming::spawn(client);
        eventually("the stream to open", || {
            (fds(&service) > baseline).then_some(())
        });
        if args[0] == "logs" {
            streaming.wait_for("up");
        }
        streaming.kill();
        released(&service, baseline);
        assert!(running(&service, "idle"), "{args:?}");
    }
    // Attached with input, through a terminal: the same.
    let mut term = on_terminal(&service, &["attach", "idle"], 24, 80);
    term.send("echo $((6*7))\n");
    term.expect("42");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(term.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = term.exit_status();
    released(&service, baseline);
    assert!(running(&service, "idle"));
}

#[test]
fn docker_exec_with_and_without_a_terminal() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["run", "-d", "--name", "ex", IMAGE, "sleep", "1000"]);
    let ran = service.docker(&["exec", "ex", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(ran.code(), Some(3));
    assert_eq!(
        (ran.stdout.as_str(), ran.stderr.as_str()),
        ("out\n", "err\n")
    );
    let ran = service.docker_input(&["exec", "-i", "ex", "sh", "-c", "cat; exit 4"], b"piped\n");
    assert_eq!((ran.code(), ran.stdout.as_str()), (Some(4), "piped\n"));
    assert_eq!(service.docker(&["exec", "ex", "nope"]).code(), Some(127));
    // A working directory that is not there: the process never ran, Docker's 126 through both
    // CLIs (before: 0 through the docker CLI, nothing having recorded an exit code; 1 through
    // berth's).
    let cwd = ["exec", "-w", "/no/such/dir", "ex", "true"];
    let ran = service.docker(&cwd);
    assert_eq!(ran.code(), Some(126), "{ran:?}");
    assert!(ran.stdout.contains("/no/such/dir"), "{ran:?}");
    assert_eq!(service.berth.run(&cwd).code(), Some(126));
    service.docker_ok(&["exec", "-d", "ex", "touch", "/tmp/detached"]);
    eventually("the detached exec", || {
        service
            .berth
            .run(&["exec", "ex", "test", "-e", "/tmp/detached"])
            .success()
            .then_some(())
    });
    // -ti through a real terminal: its size, a resize, the exit code.
    let mut term = on_terminal(&service, &["exec", "-ti", "ex", "sh"], 20, 70);
    term.send("stty size\n");
    term.expect("20 70");
    term.resize(30, 90);
    let from = term.seen;
    eventually("the new size in the exec", || {
        term.send("stty size\n");
        std::thread::sleep(std::time::Duration::from_millis(300));
        term.text_since(from).contains("30 90").then_some(())
    });
    term.send("exit 7\n");
    assert_eq!(term.exit_status().code(), Some(7));
}

/// berth's own CLI detaches as the docker CLI does, command by command: `run -ti` and `start
/// -ai` silently with 0, `attach` and `exec -ti` with Docker's `read escape sequence` and 1;
/// `--detach-keys` on each. The keys are typed as a person types them, one write each with a
/// pause between: the first is held back, and nothing of them reaches the shell (whose line
/// editor takes a lone Ctrl-P for the previous command).
#[test]
fn berth_detaches_as_the_docker_cli() {
    let Some(service) = Service::start() else {
        return;
    };
    let berth_on_terminal = |args: &[&str]| {
        let mut command = service.berth.command();
        command.args(args);
        Terminal::spawn(command, 24, 80)
    };
    for name in ["viaberth", "viadocker"] {
        service
            .berth
            .ok(&["create", "-ti", "--name", name, IMAGE, "sh"]);
    }
    let cases: [(&[&str], &str); 5] = [
        (&["start", "-ai"], "\x10\x11"),
        (&["attach"], "\x10\x11"),
        (&["attach", "--detach-keys", "ctrl-x,y"], "\x18y"),
        (&["exec", "-ti", "--detach-keys", "ctrl-x,y"], "\x18y"),
        (&["exec", "-ti"], "\x10\x11"),
    ];
    for (flags, keys) in cases {
        let mut seen = Vec::new();
        for (name, docker) in [("viadocker", true), ("viaberth", false)] {
            let mut args = flags.to_vec();
            args.push(name);
            if flags[0] == "exec" {
                args.push("sh");
            }
            let mut term = if docker {
                on_terminal(&service, &args, 24, 80)
            } else {
                berth_on_terminal(&args)
            };
            term.send("echo $((6*7))\n");
            term.expect("42");
            let from = term.seen;
            let (first, second) = keys.split_at(1);
            term.send(first);
            std::thread::sleep(std::time::Duration::from_millis(300));
            term.send(second);
            let code = term.exit_status().code();
            let said = term.text_since(from);
            seen.push((code, said.contains("read escape sequence")));
            assert!(running(&service, name), "{args:?}");
        }
        assert_eq!(seen[0], seen[1], "{flags:?}: (docker, berth)");
    }
    // `run -ti` too, which only berth's CLI can do here with the same container twice.
    let mut term = berth_on_terminal(&["run", "-ti", "--name", "ran", IMAGE, "sh"]);
    term.send("echo $((6*7))\n");
    term.expect("42");
    term.send("\x10");
    std::thread::sleep(std::time::Duration::from_millis(300));
    term.send("\x11");
    assert_eq!(term.exit_status().code(), Some(0));
    assert!(running(&service, "ran"));
    // Nothing of the held Ctrl-P reached the shell: its line is empty, not the last command.
    let mut term = berth_on_terminal(&["attach", "ran"]);
    let from = term.seen;
    term.send("echo done\n");
    term.expect("done");
    assert!(
        !term.text_since(from).contains("42"),
        "{}",
        term.text_since(from)
    );
    term.send("exit 3\n");
    assert_eq!(term.exit_status().code(), Some(3));
}

#[test]
fn docker_attach_and_its_detach_keys_through_a_terminal() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["create", "-ti", "--name", "att", IMAGE, "sh"]);
    service.berth.ok(&["start", "att"]);
    for (flags, keys) in [
        (vec![], "\x10\x11"),
        (vec!["--detach-keys", "ctrl-x,y"], "\x18y"),
    ] {
        let args = [&["attach"][..], &flags, &["att"]].concat();
        let mut term = on_terminal(&service, &args, 30, 100);
        term.send("echo $((6*7)); stty size\n");
        term.expect("42");
        term.expect("30 100");
        term.send(keys);
        term.expect("read escape sequence");
        // Docker's CLI says so and exits 1; the container runs on.
        assert_eq!(term.exit_status().code(), Some(1), "{flags:?}");
        assert!(running(&service, "att"), "{flags:?}");
    }
    // Its exit code comes back through the attach.
    let mut term = on_terminal(&service, &["attach", "att"], 24, 80);
    term.send("echo $((6*7))\n");
    term.expect("42");
    term.send("exit 9\n");
    assert_eq!(term.exit_status().code(), Some(9));
}

#[test]
fn docker_run_in_the_foreground() {
    let Some(service) = Service::start() else {
        return;
    };
    let ran = service.docker(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 5",
    ]);
    assert_eq!(ran.code(), Some(5));
    assert_eq!(
        (ran.stdout.as_str(), ran.stderr.as_str()),
        ("out\n", "err\n")
    );
    let ran = service.docker_input(
        &["run", "--rm", "-i", IMAGE, "sh", "-c", "cat; exit 6"],
        b"piped\n",
    );
    assert_eq!((ran.code(), ran.stdout.as_str()), (Some(6), "piped\n"));
    let mut term = on_terminal(&service, &["run", "--rm", "-ti", IMAGE, "sh"], 25, 85);
    term.send("stty size\n");
    term.expect("25 85");
    term.send("exit 8\n");
    assert_eq!(term.exit_status().code(), Some(8));
}

/// A tar stream of (name, kind, link target or contents) entries, written header by header
/// so that names the tar crate's checks refuse (`..`) go in as they are.
fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        let body = if matches!(kind, tar::EntryType::Symlink) {
            h.set_link_name_literal(data).expect("link name");
            ""
        } else {
            data
        };
        h.set_size(body.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, body.as_bytes()).expect("tar entry");
    }
    b.into_inner().expect("tar")
}

/// `PUT /containers/<c>/archive?path=<dir>` with `tar` as the body: the HTTP status.
fn put_archive(service: &Service, container: &str, dir: &str, tar: &[u8]) -> String {
    let file = service.dir().join("put.tar");
    std::fs::write(&file, tar).expect("tar file");
    let ran = service.curl(&[
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/x-tar",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("http://d/containers/{container}/archive?path={dir}"),
    ]);
    ran.stdout
}

#[test]
fn archive_paths_never_leave_the_containers_root() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["run", "-d", "--name", "esc", IMAGE, "sleep", "1000"]);
    service.berth.ok(&[
        "exec",
        "esc",
        "sh",
        "-c",
        "ln -s / /escape; ln -s ../../.. /up; mkdir /in",
    ]);
    // A file only the host has, where the links would lead if followed on the host.
    let marker = tempfile::NamedTempFile::new().expect("marker");
    std::fs::write(marker.path(), "host secret").expect("marker");
    let m = marker.path().to_str().expect("utf-8 temp path");
    for via in ["/escape", "/up"] {
        for method in ["-I", "-G"] {
            let ran = service.curl(&[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                method,
                &format!("http://d/containers/esc/archive?path={via}{m}"),
            ]);
            assert_eq!(ran.stdout, "404", "{method} {via}{m} was found");
        }
    }
    // Into the container: `..` refused; through links of the container's and of the archive's
    // own making, the files land inside it.
    let host_tmp = std::env::temp_dir();
    let name = berth_harness::unique("berth-put");
    let climb = format!("../../../../../..{}/{name}-dots", host_tmp.display());
    let tar = tar_of(&[(climb.as_str(), tar::EntryType::Regular, "x")]);
    assert_eq!(put_archive(&service, "esc", "/in", &tar), "400");
    let through_root = format!("{}/{name}-escape", host_tmp.display());
    let tar = tar_of(&[(&through_root[1..], tar::EntryType::Regular, "1")]);
    assert_eq!(put_archive(&service, "esc", "/escape", &tar), "200");
    let own = format!("own{}/{name}-own", host_tmp.display());
    let tar = tar_of(&[
        ("own", tar::EntryType::Symlink, "/"),
        (own.as_str(), tar::EntryType::Regular, "2"),
    ]);
    assert_eq!(put_archive(&service, "esc", "/in", &tar), "200");
    for suffix in ["dots", "escape", "own"] {
        let path = host_tmp.join(format!("{name}-{suffix}"));
        assert!(!path.exists(), "{} was written on the host", path.display());
    }
    let inside = service.berth.ok(&[
        "exec",
        "esc",
        "cat",
        &format!("{}/{name}-escape", host_tmp.display()),
        &format!("{}/{name}-own", host_tmp.display()),
    ]);
    assert_eq!(inside, "12");
    // Not a directory, not there.
    assert_eq!(put_archive(&service, "esc", "/etc/hostname", &tar), "400");
    assert_eq!(put_archive(&service, "esc", "/nowhere", &tar), "404");
}

#[test]
fn docker_cp_both_ways() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["run", "-d", "--name", "cpc", IMAGE, "sleep", "1000"]);
    service.berth.ok(&[
        "exec",
        "cpc",
        "sh",
        "-c",
        "mkdir -p /d/sub; echo inside > /d/sub/f; ln -s /etc/passwd /d/link",
    ]);
    let host = tempfile::tempdir().expect("host dir");
    let h = |p: &str| host.path().join(p).to_str().expect("utf-8").to_string();
    // A directory out, its link kept a link; then back in under a new name.
    service.docker_ok(&["cp", "cpc:/d", &h("")]);
    assert_eq!(std::fs::read_to_string(h("d/sub/f")).unwrap(), "inside\n");
    assert_eq!(
        std::fs::read_link(h("d/link")).unwrap(),
        std::path::Path::new("/etc/passwd")
    );
    service.docker_ok(&["cp", &h("d"), "cpc:/copy"]);
    assert_eq!(
        service.berth.ok(&["exec", "cpc", "cat", "/copy/sub/f"]),
        "inside"
    );
    // A file both ways, into a directory and as a new name.
    std::fs::write(h("in.txt"), "from host").unwrap();
    service.docker_ok(&["cp", &h("in.txt"), "cpc:/tmp"]);
    service.docker_ok(&["cp", &h("in.txt"), "cpc:/tmp/renamed"]);
    assert_eq!(
        service
            .berth
            .ok(&["exec", "cpc", "cat", "/tmp/in.txt", "/tmp/renamed"]),
        "from hostfrom host"
    );
    service.docker_ok(&["cp", "cpc:/tmp/renamed", &h("back.txt")]);
    assert_eq!(std::fs::read_to_string(h("back.txt")).unwrap(), "from host");
    // Tar streams: out on stdout, in on stdin.
    let mut command = service.client("docker");
    command.args(["cp", "cpc:/d", "-"]);
    let out = command.output().expect("docker cp to -");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = tar::Archive::new(&out.stdout[..])
        .entries()
        .expect("a tar stream")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("name")
                .display()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["d", "d/link", "d/sub", "d/sub/f"]);
    let tar = tar_of(&[("streamed.txt", tar::EntryType::Regular, "via stdin")]);
    let ran = service.docker_input(&["cp", "-", "cpc:/tmp"], &tar);
    assert!(ran.success(), "{}", ran.stderr);
    assert_eq!(
        service
            .berth
            .ok(&["exec", "cpc", "cat", "/tmp/streamed.txt"]),
        "via stdin"
    );
    // A stopped container: both ways, its root mounted for the copy and unmounted after.
    service.berth.ok(&["stop", "-t", "0", "cpc"]);
    service.docker_ok(&["cp", &h("in.txt"), "cpc:/tmp/while-stopped"]);
    service.docker_ok(&["cp", "cpc:/tmp/while-stopped", &h("stopped.txt")]);
    assert_eq!(
        std::fs::read_to_string(h("stopped.txt")).unwrap(),
        "from host"
    );
    assert!(
        berth_harness::image::mounts_under(service.berth.root()).is_empty(),
        "cp left its mount"
    );
    service.berth.ok(&["start", "cpc"]);
    assert_eq!(
        service
            .berth
            .ok(&["exec", "cpc", "cat", "/tmp/while-stopped"]),
        "from host"
    );
    let missing = service.docker(&["cp", "cpc:/nope", &h("x")]);
    assert!(!missing.success());
    assert!(missing.stderr.contains("/nope"), "{}", missing.stderr);
}

#[test]
fn docker_start_attached_misses_nothing() {
    let Some(service) = Service::start() else {
        return;
    };
    // start -a attaches to the created container, then starts it.
    service.berth.ok(&[
        "create",
        "--name",
        "sa",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    let ran = service.docker(&["start", "-a", "sa"]);
    assert_eq!(ran.code(), Some(3), "{}", ran.stderr);
    assert_eq!(
        (ran.stdout.as_str(), ran.stderr.as_str()),
        ("out\n", "err\n")
    );
    // With input, through stdin.
    service.berth.ok(&[
        "create",
        "-i",
        "--name",
        "si",
        IMAGE,
        "sh",
        "-c",
        "cat; exit 4",
    ]);
    let ran = service.docker_input(&["start", "-ai", "si"], b"piped\n");
    assert_eq!((ran.code(), ran.stdout.as_str()), (Some(4), "piped\n"));
}

#[test]
fn hostile_requests_get_a_clean_status() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["run", "-d", "--name", "host", IMAGE, "sleep", "1000"]);
    let status = |args: &[&str]| {
        let mut all = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        service.curl(&all).stdout
    };
    let upgrade = ["-H", "Connection: Upgrade", "-H", "Upgrade: tcp"];
    let json = ["-H", "Content-Type: application/json", "-X", "POST", "-d"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["-XPOST", "http://d/containers/nosuch/attach?stream=1"],
            "404",
        ),
        (
            vec!["-XPOST", "http://d/containers/host/attach?stream=1"],
            "400",
        ),
        (
            [
                &upgrade[..],
                &[
                    "-XPOST",
                    "http://d/containers/host/attach?detachKeys=ctrl-1",
                ],
            ]
            .concat(),
            "400",
        ),
        (
            vec!["-XPOST", "http://d/containers/host/resize?h=x&w=80"],
            "400",
        ),
        (
            vec!["-XPOST", "http://d/containers/host/resize?h=99999999&w=80"],
            "400",
        ),
        (
            vec!["-XPOST", "http://d/containers/nosuch/resize?h=24&w=80"],
            "404",
        ),
        (
            [
                &json[..],
                &[r#"{"Cmd": "sh"}"#, "http://d/containers/host/exec"],
            ]
            .concat(),
            "400",
        ),
        (
            [
                &json[..],
                &[r#"{"Cmd": []}"#, "http://d/containers/host/exec"],
            ]
            .concat(),
            "400",
        ),
        (
            [&json[..], &["{", "http://d/containers/host/exec"]].concat(),
            "400",
        ),
        (
            [&json[..], &["{}", "http://d/exec/nosuch/start"]].concat(),
            "404",
        ),
        (vec!["-XPOST", "http://d/exec/nosuch/resize?h=1&w=1"], "404"),
        (vec!["http://d/exec/nosuch/json"], "404"),
        (
            vec!["http://d/containers/host/logs?stdout=1&since=yesterday-ish"],
            "400",
        ),
        (vec!["http://d/containers/host/archive"], "400"),
        (vec!["http://d/containers/host/attach/ws"], "501"),
    ];
    for (args, want) in &cases {
        assert_eq!(&status(args), want, "{args:?}");
    }
    assert_eq!(
        put_archive(&service, "host", "/tmp", b"not a tar stream at all"),
        "400"
    );
    assert!(running(&service, "host"));
    service.docker_ok(&["version"]);
}

/// Exec ids that are no exec's (traversal, NUL, very long, unknown): 404 with Docker's words
/// ("No such exec instance"), never a path outside the exec records (before: "no such").
#[test]
fn hostile_exec_ids_are_not_found() {
    let Some(service) = Service::start() else {
        return;
    };
    let long = "a".repeat(5000);
    let unknown = "f".repeat(64);
    for id in ["..", "..%2F..%2Fetc%2Fpasswd", "a%00b", &long, &unknown] {
        for (method, path) in [
            ("GET", format!("/exec/{id}/json")),
            ("POST", format!("/exec/{id}/start")),
            ("POST", format!("/exec/{id}/resize?h=10&w=10")),
        ] {
            let url = format!("http://berth{path}");
            let ran = service.curl(&[
                "-s",
                "--path-as-is",
                "-X",
                method,
                "-H",
                "Content-Type: application/json",
                "-d",
                "{}",
                "-w",
                "\n%{http_code}",
                &url,
            ]);
            let (body, code) = ran.stdout.rsplit_once('\n').unwrap_or_default();
            assert_eq!(code, "404", "{method} {path}: {body}");
            assert!(
                body.contains("No such exec instance: "),
                "{method} {path}: {body}"
            );
        }
    }
}

/// A PUT of an archive whose client stops sending before its Content-Length (its first entry
/// whole, then its write side shut) is an error, not a copy of what came: the cut falls
/// between two entries, where the tar alone cannot tell it from its end.
#[test]
fn an_archive_cut_short_by_its_client_is_not_taken_whole() {
    let Some(service) = Service::start() else {
        return;
    };
    let name = "cutshort";
    service
        .berth
        .ok(&["run", "-d", "--name", name, IMAGE, "sleep", "600"]);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("a"), "first\n").expect("file");
    std::fs::write(dir.path().join("b"), vec![b'b'; 64 * 1024]).expect("file");
    let tar = dir.path().join("two.tar");
    berth_harness::pack(dir.path(), &tar, &["a", "b"]);
    let body = std::fs::read(&tar).expect("tar bytes");
    let mut conn = std::os::unix::net::UnixStream::connect(service.socket()).expect("connect");
    write!(
        conn,
        "PUT /v1.50/containers/{name}/archive?path=/tmp HTTP/1.1\r\nHost: d\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("request");
    // a's header and its one block of data: the archive as far as its first entry.
    conn.write_all(&body[..1024]).expect("the first entry");
    conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    let status = answer.lines().next().unwrap_or_default().to_string();
    assert!(
        !status.contains(" 200 "),
        "a cut archive answered as copied whole: {answer}"
    );
    service.berth.ok(&["rm", "-f", name]);
}
