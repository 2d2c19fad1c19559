//! The Engine API's `POST /build`, driven by the legacy builder's real clients: the docker CLI
//! (`DOCKER_BUILDKIT=0`; docker 28 without buildx falls back to it anyway, with a warning),
//! docker-py's `images.build` and docker-compose 1.29's `build:`. What they build is checked
//! against `berth build` of the same context in the same root (the same image, the cache
//! shared), and hostile contexts and a client that leaves against what the host and the
//! root hold afterwards. Needs root.
#![forbid(unsafe_code)]

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

use berth_harness::api::Service;
use berth_harness::{eventually, need_root, run_with_timeout, Ran, COMMAND_TIMEOUT};
use serde_json::Value;
use tempfile::TempDir;

const DOCKERFILE: &str = "FROM busybox AS base
ARG GREETING=hi
RUN echo \"$GREETING from RUN\" && mkdir -p /out && echo built > /out/file
FROM busybox
COPY --from=base /out /out
COPY data /data
ENV MODE=api
CMD [\"cat\", \"/out/file\"]
";

/// A context directory: `path` -> content.
fn context(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("context dir");
    for (path, content) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().expect("parent")).expect("context parent");
        fs::write(&p, content).expect("context file");
    }
    dir
}

/// `docker build <args> .` in `dir`, the legacy builder asked for.
fn docker_build(service: &Service, dir: &Path, args: &[&str]) -> Ran {
    let mut command = service.client("docker");
    command
        .arg("build")
        .args(args)
        .arg(".")
        .current_dir(dir)
        .env("DOCKER_BUILDKIT", "0");
    run_with_timeout(command, COMMAND_TIMEOUT)
}

fn built(ran: &Ran) -> &str {
    assert!(
        ran.success(),
        "docker build failed ({}):\n{}\n{}",
        ran.status,
        ran.stdout,
        ran.stderr
    );
    &ran.stdout
}

/// `POST <path>` with `body` through curl: the status and the body.
fn post(service: &Service, path: &str, body: &Path) -> (String, String) {
    let url = format!("http://d{path}");
    let data = format!("@{}", body.display());
    let ran = service.curl(&[
        "-s",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/x-tar",
        "--data-binary",
        &data,
        "-w",
        "\n%{http_code}",
        &url,
    ]);
    let (body, code) = ran.stdout.rsplit_once('\n').unwrap_or(("", &ran.stdout));
    (code.to_string(), body.to_string())
}

/// What is left in the root's build directory for contexts and steps.
fn build_tmp(service: &Service) -> Vec<String> {
    let dir = service.berth.root().join("build/tmp");
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn docker_build_streams_as_the_legacy_builder_and_makes_what_berth_build_makes() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("data", "some data\n")]);
    let dir = ctx.path().to_string_lossy().into_owned();
    let cli = service.berth.ok(&["build", "-q", "-t", "cli", &dir]);

    // Every step from the cache the command line's build filled: the same image.
    let ran = docker_build(&service, ctx.path(), &["-t", "api:1"]);
    let out = built(&ran);
    for line in [
        "Step 1/8 : FROM busybox",
        "Step 2/8 : ARG GREETING=hi",
        "Step 3/8 : RUN echo \"$GREETING from RUN\" && mkdir -p /out && echo built > /out/file",
        " ---> Using cache",
        "Step 8/8 : CMD [\"cat\", \"/out/file\"]",
        &format!("Successfully built {}", &cli[7..19]),
        "Successfully tagged api:1",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
    let id = service.docker_ok(&["images", "-q", "--no-trunc", "api:1"]);
    assert_eq!(
        id, cli,
        "docker build and berth build made different images"
    );
    assert_eq!(service.berth.ok(&["run", "--rm", "api:1"]), "built");

    // Without the cache, with a build arg: the step's output in the stream.
    let ran = docker_build(
        &service,
        ctx.path(),
        &["--no-cache", "--build-arg", "GREETING=hello", "-t", "api:2"],
    );
    let out = built(&ran);
    assert!(out.lines().any(|l| l == "hello from RUN"), "{out}");
    assert!(!out.contains("Using cache"), "{out}");
    let inspect: Value = serde_json::from_str(&service.docker_ok(&["image", "inspect", "api:2"]))
        .expect("inspect JSON");
    let config = &inspect[0]["Config"];
    assert!(
        config["Env"]
            .as_array()
            .expect("Env")
            .iter()
            .any(|e| e == "MODE=api"),
        "{config}"
    );
    assert_eq!(config["Cmd"], serde_json::json!(["cat", "/out/file"]));

    // Quiet: the ID alone, as dockerd answers q=1.
    let ran = docker_build(&service, ctx.path(), &["-q", "-t", "api:3"]);
    let id = service.docker_ok(&["images", "-q", "--no-trunc", "api:3"]);
    assert_eq!(built(&ran).trim(), id);
    assert!(build_tmp(&service).is_empty(), "{:?}", build_tmp(&service));
}

#[test]
fn docker_py_and_compose_build_with_their_options() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let ctx = context(&[
        ("sub/Alt.Dockerfile", DOCKERFILE),
        ("Dockerfile", DOCKERFILE),
        ("data", "some data\n"),
    ]);
    let script = format!(
        r#"
import json, docker
c = docker.from_env()
img, logs = c.images.build(path={path:?}, tag="py:1", dockerfile="sub/Alt.Dockerfile",
    target="base", buildargs={{"GREETING": "py"}}, labels={{"from": "py"}}, nocache=True,
    rm=True, forcerm=True, network_mode="none")
logs = list(logs)
print(json.dumps({{"id": img.id, "tags": img.tags, "labels": img.labels,
    "stream": "".join(l.get("stream", "") for l in logs),
    "aux": [l["aux"]["ID"] for l in logs if "aux" in l]}}))
"#,
        path = ctx.path().display().to_string()
    );
    let ran = service.python(&script);
    assert!(ran.success(), "docker-py:\n{}\n{}", ran.stdout, ran.stderr);
    let v: Value = serde_json::from_str(ran.stdout.trim()).expect("docker-py's JSON");
    assert_eq!(v["tags"], serde_json::json!(["py:1"]));
    assert_eq!(v["labels"]["from"], "py");
    assert_eq!(v["aux"], serde_json::json!([v["id"].clone()]));
    let stream = v["stream"].as_str().expect("stream");
    assert!(stream.contains("py from RUN\n"), "{stream}");
    assert!(stream.contains("Step 3/3 : RUN"), "{stream}");
    // The target stage has no /data: only the stages it needs were built.
    let ran = service.berth.run(&["run", "--rm", "py:1", "ls", "/data"]);
    assert!(!ran.success(), "{}", ran.stdout);

    let compose = "version: '2.4'\nservices:\n  web:\n    build:\n      context: .\n      \
                   args:\n        GREETING: compose\n    image: composed:1\n";
    fs::write(ctx.path().join("docker-compose.yml"), compose).expect("compose file");
    let mut command = service.client("docker-compose");
    command.arg("build").current_dir(ctx.path());
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert!(
        ran.success(),
        "compose build:\n{}\n{}",
        ran.stdout,
        ran.stderr
    );
    let out = service.berth.ok(&["run", "--rm", "composed:1"]);
    assert_eq!(out, "built");
}

#[test]
fn failures_are_http_errors_before_the_stream_and_messages_in_it() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nRUN echo about to fail; exit 3\n",
        ),
        ("Bad.Dockerfile", "FROM busybox\nFOO bar\n"),
    ]);
    // A failing step: the stream has got this far, its error follows in it.
    let ran = docker_build(&service, ctx.path(), &["-t", "never"]);
    assert_eq!(ran.code(), Some(1), "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("about to fail"), "{}", ran.stdout);
    let all = format!("{}{}", ran.stdout, ran.stderr);
    assert!(all.contains("exit code: 3"), "{all}");
    let ran = service.docker(&["images", "-q", "never"]);
    assert_eq!(ran.stdout.trim(), "");
    let script = format!(
        r#"
import docker
try:
    docker.from_env().images.build(path={path:?})
except docker.errors.BuildError as e:
    print("BuildError", e.msg)
"#,
        path = ctx.path().display().to_string()
    );
    let ran = service.python(&script);
    assert!(
        ran.stdout.starts_with("BuildError ") && ran.stdout.contains("exit code: 3"),
        "{}\n{}",
        ran.stdout,
        ran.stderr
    );

    // Nothing sent yet: a Dockerfile that does not parse is the request's 400.
    let tar = ctx.path().join("ctx.tar");
    berth_harness::pack(ctx.path(), &tar, &["Dockerfile", "Bad.Dockerfile"]);
    let (code, body) = post(&service, "/build?dockerfile=Bad.Dockerfile", &tar);
    assert_eq!(code, "400", "{body}");
    assert!(body.contains("unknown instruction: FOO"), "{body}");
    let (code, body) = post(&service, "/build?dockerfile=Missing", &tar);
    assert_eq!(code, "400", "{body}");
    assert!(body.contains("failed to read dockerfile"), "{body}");
    let (code, body) = post(&service, "/build?buildargs=notjson", &tar);
    assert_eq!(code, "400", "{body}");
    let (code, body) = post(&service, "/build?version=2", &tar);
    assert_eq!(code, "501", "{body}");
    // What berth build refuses is refused through the API too, not dropped: squash.
    let (code, body) = post(&service, "/build?squash=1", &tar);
    assert!(
        body.contains("--squash: berth does not squash"),
        "{code} {body}"
    );
    // A body that is no tar archive (a Dockerfile sent as it is): Docker wants a context.
    let (code, body) = post(&service, "/build", &ctx.path().join("Dockerfile"));
    assert_eq!(code, "400", "{body}");
    assert!(body.contains("not a tar archive"), "{body}");
    assert!(build_tmp(&service).is_empty(), "{:?}", build_tmp(&service));
}

/// A tar of `entries`, each built as given (names and links the tar command refuses).
fn hostile_tar(path: &Path, entries: &[(&str, tar::EntryType, &str, &[u8])]) {
    let mut builder = tar::Builder::new(fs::File::create(path).expect("tar"));
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        // set_path refuses `..`: the name goes into the header's bytes as it is.
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        if !link.is_empty() {
            header.set_link_name(link).expect("link name");
        }
        header.set_cksum();
        builder.append(&header, *data).expect("tar entry");
    }
    builder.finish().expect("tar finish");
}

#[test]
fn hostile_contexts_stay_in_their_directory() {
    use tar::EntryType::{Link, Regular, Symlink};
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let host = tempfile::tempdir().expect("host dir");
    let secret = host.path().join("Dockerfile");
    fs::write(&secret, "FROM busybox\nLABEL leaked=yes\n").expect("host file");
    let target = host.path().to_string_lossy().into_owned();
    let tar = host.path().join("ctx.tar");

    // The Dockerfile a link to a host file: it is looked for inside the context.
    hostile_tar(
        &tar,
        &[("Dockerfile", Symlink, &secret.to_string_lossy(), b"")],
    );
    let (code, body) = post(&service, "/build?t=leak", &tar);
    assert_eq!(code, "400", "{body}");
    assert!(body.contains("failed to read dockerfile"), "{body}");

    // `..` in a name is refused; nothing is written beside the context.
    let climb = format!("../../../../../..{target}/climbed");
    let df: &[u8] = b"FROM busybox\n";
    hostile_tar(
        &tar,
        &[("Dockerfile", Regular, "", df), (&climb, Regular, "", b"x")],
    );
    let (code, body) = post(&service, "/build", &tar);
    assert_eq!(code, "400", "{body}");
    assert!(body.contains("outside the destination"), "{body}");

    // A link to the host's directory, then a file through it, and a hard link to a host
    // file: the file lands inside the context, the hard link finds nothing to link to.
    let through = "esc/through-the-link";
    let copy: &[u8] = b"FROM busybox\nCOPY . /c\nRUN find /c -name through-the-link\n";
    hostile_tar(
        &tar,
        &[
            ("Dockerfile", Regular, "", copy),
            ("esc", Symlink, &target, b""),
            (through, Regular, "", b"inside"),
        ],
    );
    let (code, body) = post(&service, "/build?t=linked", &tar);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("through-the-link"), "{body}");
    let secret_path = secret.to_string_lossy().into_owned();
    hostile_tar(
        &tar,
        &[
            ("Dockerfile", Regular, "", df),
            ("hard", Link, &secret_path, b""),
        ],
    );
    let (code, body) = post(&service, "/build", &tar);
    assert_eq!(code, "400", "{body}");
    let left: Vec<_> = fs::read_dir(host.path())
        .expect("host dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "written beside the context: {left:?}");
    assert_eq!(
        fs::read_to_string(&secret).expect("host file"),
        "FROM busybox\nLABEL leaked=yes\n"
    );

    // A gzip-compressed context is told by its magic.
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nCOPY f /f\n"),
        ("f", "zipped\n"),
    ]);
    let gz = host.path().join("ctx.tar.gz");
    let status = Command::new("tar")
        .arg("-C")
        .arg(ctx.path())
        .arg("-czf")
        .arg(&gz)
        .args(["Dockerfile", "f"])
        .status()
        .expect("tar");
    assert!(status.success());
    let (code, body) = post(&service, "/build?t=zipped", &gz);
    assert_eq!(code, "200", "{body}");
    assert_eq!(
        service.berth.ok(&["run", "--rm", "zipped", "cat", "/f"]),
        "zipped"
    );
    assert!(build_tmp(&service).is_empty(), "{:?}", build_tmp(&service));
}

/// Processes whose parent is `pid`.
fn children(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent is the second field after the command's closing parenthesis.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if after.split_whitespace().nth(1) == Some(&pid.to_string()) {
            found.push(stat);
        }
    }
    found
}

/// A build whose RUN sleeps for ten minutes, posted on a socket of its own and followed
/// until the step has started; the socket is its client.
fn start_long_build(service: &Service, tag: &str) -> UnixStream {
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo started; sleep 600; echo never\n",
    )]);
    let tar = ctx.path().join("ctx.tar");
    berth_harness::pack(ctx.path(), &tar, &["Dockerfile"]);
    let body = fs::read(&tar).expect("tar bytes");
    let mut socket = UnixStream::connect(service.socket()).expect("connect");
    write!(
        socket,
        "POST /build?t={tag} HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("request");
    socket.write_all(&body).expect("body");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(r#"{"stream":"started\n"}"#) {
        let n = socket.read(&mut buf).expect("read the stream");
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    socket
}

#[test]
fn a_client_that_leaves_stops_the_build() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let socket = start_long_build(&service, "abandoned");
    assert!(!children(service.pid()).is_empty(), "no build child");
    drop(socket);
    eventually("the build to stop once its client left", || {
        children(service.pid()).is_empty().then_some(())
    });
    assert!(build_tmp(&service).is_empty(), "{:?}", build_tmp(&service));
    let ran = service.berth.run(&["images", "-q", "abandoned"]);
    assert_eq!(ran.stdout.trim(), "");
}

#[test]
fn a_service_that_dies_stops_its_builds() {
    need_root!();
    let Some(mut service) = Service::start() else {
        return;
    };
    let _socket = start_long_build(&service, "orphaned");
    let child = children(service.pid())
        .first()
        .and_then(|stat| stat.split_whitespace().next().map(String::from))
        .expect("the build child");
    service.kill();
    // The build stops as it does when its client leaves: its step's container and the
    // unpacked context removed, nothing tagged.
    eventually("the build to stop once its service died", || {
        (!Path::new("/proc").join(&child).exists()).then_some(())
    });
    assert!(build_tmp(&service).is_empty(), "{:?}", build_tmp(&service));
    let ran = service.berth.run(&["images", "-q", "orphaned"]);
    assert_eq!(ran.stdout.trim(), "");
    assert_eq!(service.berth.ok(&["ps", "-aq"]), "");
}

#[test]
fn commit_and_changes_through_the_api_are_berths() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let script = "mkdir /newdir && echo x > /newdir/f && rm /bin/vi && echo more >> /etc/passwd";
    service.docker_ok(&["run", "--name", "changed", "busybox", "sh", "-c", script]);
    let docker = service.docker_ok(&["diff", "changed"]);
    assert_eq!(docker, service.berth.ok(&["diff", "changed"]));
    for line in ["D /bin/vi", "C /etc/passwd", "A /newdir", "A /newdir/f"] {
        assert!(
            docker.lines().any(|l| l == line),
            "no {line:?} in:\n{docker}"
        );
    }
    let id = service.docker_ok(&[
        "commit",
        "-c",
        "ENV Z=1",
        "-c",
        "CMD [\"cat\", \"/newdir/f\"]",
        "-m",
        "a message",
        "-a",
        "an author",
        "changed",
        "committed:1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(service.berth.ok(&["run", "--rm", "committed:1"]), "x");
    let shown = service.docker_ok(&[
        "image",
        "inspect",
        "committed:1",
        "--format",
        "{{.Id}} {{.Author}} {{.Comment}} {{.Config.Env}}",
    ]);
    assert!(
        shown.starts_with(&format!("{id} an author a message [")) && shown.contains("Z=1"),
        "{shown}"
    );

    // docker-py: a running container's changes (none: null), a commit with a Config body.
    service.docker_ok(&["run", "-d", "--name", "running", "busybox", "sleep", "600"]);
    let script = r#"
import docker
c = docker.from_env().containers.get("running")
print(c.diff())
img = c.commit(repository="py", tag="2", conf={"Env": ["FROM_BODY=1"], "Cmd": ["echo", "body"]})
print(img.tags, img.attrs["Config"]["Cmd"], "FROM_BODY=1" in img.attrs["Config"]["Env"])
print(c.status)
"#;
    let ran = service.python(script);
    assert!(ran.success(), "docker-py:\n{}\n{}", ran.stdout, ran.stderr);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(
        lines,
        ["None", "['py:2'] ['echo', 'body'] True", "running"],
        "{}",
        ran.stderr
    );
    assert_eq!(service.berth.ok(&["run", "--rm", "py:2"]), "body");
    let (code, _) = post(
        &service,
        "/commit?container=nonesuch",
        Path::new("/dev/null"),
    );
    assert_eq!(code, "404");
    service.docker_ok(&["rm", "-f", "changed", "running"]);
}

/// The Build Cache line of a `system df` table.
fn cache_line(df: &str) -> String {
    df.lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap_or_else(|| panic!("no Build Cache line in:\n{df}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_build_cache_in_system_df_and_its_prunes() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,target=/c head -c 100000 /dev/zero > /c/blob\n\
         RUN head -c 200000 /dev/zero > /layer\n",
    )]);
    built(&docker_build(&service, ctx.path(), &["-q", "-t", "sized"]));
    service.docker_ok(&["rmi", "sized"]);
    // The docker CLI draws its line from the service's BuildCache; berth draws its own.
    let docker = cache_line(&service.docker_ok(&["system", "df"]));
    assert_eq!(docker, cache_line(&service.berth.ok(&["system", "df"])));
    assert!(docker.starts_with("Build Cache 3 0 3"), "{docker}");
    let verbose = service.docker_ok(&["system", "df", "-v"]);
    for kind in ["regular", "exec.cachemount"] {
        assert!(verbose.contains(kind), "{verbose}");
    }

    let pruned = service.docker_ok(&["builder", "prune", "-f"]);
    assert!(
        pruned.starts_with("Deleted build cache objects:\n"),
        "{pruned}"
    );
    assert_eq!(pruned.lines().count(), 3 + 3, "{pruned}");
    let empty = "Build Cache 0 0 0B 0B";
    assert_eq!(cache_line(&service.docker_ok(&["system", "df"])), empty);

    built(&docker_build(&service, ctx.path(), &["-q"]));
    let pruned = service.docker_ok(&["system", "prune", "-f"]);
    assert!(pruned.contains("Deleted build cache objects:"), "{pruned}");
    assert_eq!(cache_line(&service.docker_ok(&["system", "df"])), empty);
}

#[test]
fn the_contexts_own_files_are_read_inside_it_and_only_if_regular() {
    use tar::EntryType::{Fifo, Regular, Symlink};
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let host = tempfile::tempdir().expect("host dir");
    let patterns = host.path().join("patterns");
    fs::write(&patterns, "secret\n").expect("host file");
    let tar = host.path().join("ctx.tar");
    let copy: &[u8] = b"FROM busybox\nCOPY secret /secret\n";

    // `.dockerignore` a link to a host file: dockerd resolves it inside the context, where
    // it leads nowhere; read on the host, its lines would decide what is left out (and a
    // link to /dev/zero would be read until memory runs out).
    hostile_tar(
        &tar,
        &[
            ("Dockerfile", Regular, "", copy),
            (".dockerignore", Symlink, &patterns.to_string_lossy(), b""),
            ("secret", Regular, "", b"kept"),
        ],
    );
    let (code, body) = post(&service, "/build?t=ignored", &tar);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("Successfully built"), "{body}");
    // An absolute link is resolved as the context's own path.
    hostile_tar(
        &tar,
        &[
            ("Dockerfile", Regular, "", copy),
            (".dockerignore", Symlink, "/patterns", b""),
            ("patterns", Regular, "", b"secret\n"),
            ("secret", Regular, "", b"kept"),
        ],
    );
    let (code, body) = post(&service, "/build", &tar);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains(r#"\"/secret\": not found"#), "{body}");

    // A FIFO for the Dockerfile or the ignore file is refused, not waited on.
    for name in ["Dockerfile", ".dockerignore"] {
        let mut entries = vec![(name, Fifo, "", &b""[..])];
        if name != "Dockerfile" {
            entries.push(("Dockerfile", Regular, "", b"FROM busybox\n"));
        }
        hostile_tar(&tar, &entries);
        let (code, body) = post(&service, "/build", &tar);
        assert_eq!(code, "400", "{name}: {body}");
        assert!(body.contains("not a regular file"), "{name}: {body}");
    }
    assert!(build_tmp(&service).is_empty(), "{:?}", build_tmp(&service));
}

/// The resident memory of `pid`, in KiB.
fn resident_kib(pid: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn an_endless_context_is_unpacked_as_it_comes_and_removed_when_its_client_leaves() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    const SENT_MIB: u64 = 160;
    let (socket, child) = endless_upload(&service, SENT_MIB);
    // What was sent is in the child but for the pipes' and the service's few buffers: kept
    // in memory, it would all be resident.
    let resident = resident_kib(&child);
    assert!(
        resident < (SENT_MIB << 10) / 2,
        "the build child holds {resident} KiB after {SENT_MIB} MiB of context"
    );
    drop(socket);
    eventually("the build to stop once its client left", || {
        children(service.pid()).is_empty().then_some(())
    });
    eventually("the half-unpacked context removed", || {
        build_tmp(&service).is_empty().then_some(())
    });
}

/// A build posted with a context without end (one file that says it has 64 GiB, chunked),
/// `mib` MiB of it sent: the client's socket and the build child's pid.
fn endless_upload(service: &Service, mib: u64) -> (UnixStream, String) {
    let mut header = tar::Header::new_gnu();
    header.set_path("big").expect("path");
    header.set_size(64 << 30);
    header.set_mode(0o644);
    header.set_cksum();
    let mut socket = UnixStream::connect(service.socket()).expect("connect");
    write!(
        socket,
        "POST /build HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .expect("request");
    let chunk = |socket: &mut UnixStream, bytes: &[u8]| {
        write!(socket, "{:x}\r\n", bytes.len()).expect("chunk size");
        socket.write_all(bytes).expect("chunk");
        socket.write_all(b"\r\n").expect("chunk end");
    };
    chunk(&mut socket, header.as_bytes());
    let block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        chunk(&mut socket, &block);
    }
    let child = eventually("the build child", || {
        children(service.pid())
            .first()
            .and_then(|stat| stat.split_whitespace().next().map(String::from))
    });
    (socket, child)
}

#[test]
fn a_killed_builds_context_is_removed_by_the_next_build() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let (socket, child) = endless_upload(&service, 8);
    eventually("the context being unpacked", || {
        (!build_tmp(&service).is_empty()).then_some(())
    });
    // SIGKILL (the OOM killer, say): the child removes nothing.
    let pid = nix::unistd::Pid::from_raw(child.parse().expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill the build");
    eventually("the killed build gone", || {
        (!Path::new("/proc").join(&child).exists()).then_some(())
    });
    drop(socket);
    assert!(
        !build_tmp(&service).is_empty(),
        "a killed build cleaned up?"
    );
    let ctx = context(&[("Dockerfile", "FROM busybox\n")]);
    let tar = ctx.path().join("ctx.tar");
    hostile_tar(
        &tar,
        &[("Dockerfile", tar::EntryType::Regular, "", b"FROM busybox\n")],
    );
    let (code, body) = post(&service, "/build", &tar);
    assert_eq!(code, "200", "{body}");
    assert!(build_tmp(&service).is_empty(), "{:?}", build_tmp(&service));
}

#[test]
fn a_nul_in_a_parameter_is_the_clients_error() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let ctx = context(&[("Dockerfile", "FROM busybox\n")]);
    let tar = ctx.path().join("ctx.tar");
    hostile_tar(
        &tar,
        &[("Dockerfile", tar::EntryType::Regular, "", b"FROM busybox\n")],
    );
    let (code, body) = post(&service, "/build?target=a%00b", &tar);
    assert_eq!(code, "400", "{body}");
    assert!(body.contains("invalid target"), "{body}");
}

/// The docker CLI's `--add-host`, `--shm-size`, `--ulimit`, `--memory` (the API's repeated
/// `extrahosts`, `shmsize`, `ulimits` JSON, `memory`) reach the RUN steps, as `berth build`'s flags do (build.rs checks
/// those against buildah); `--rm` and `--force-rm` are taken.
#[test]
fn docker_build_passes_hosts_shm_and_ulimits_to_the_run_steps() {
    let Some(service) = Service::start() else {
        return;
    };
    let dockerfile = "FROM busybox\nRUN awk '/myhost/ {print $1, $2}' /etc/hosts > /hosts && \
                      df -k /dev/shm | awk 'NR == 2 {print $2}' > /shm && ulimit -n > /nofile && \
                      (cat /sys/fs/cgroup/memory/memory.limit_in_bytes || echo v2) > /mem\n";
    let dir = context(&[("Dockerfile", dockerfile)]);
    let flags = [
        "-t",
        "stepped",
        "--add-host",
        "myhost:10.1.2.3",
        "--add-host",
        "other:10.1.2.4",
        "--shm-size",
        "2m",
        "--ulimit",
        "nofile=512:512",
        "--rm",
        "--force-rm",
        "--memory",
        "64m",
    ];
    let ran = docker_build(&service, dir.path(), &flags);
    assert!(ran.success(), "{}", ran.stderr);
    let read = [
        "run", "--rm", "stepped", "cat", "/hosts", "/shm", "/nofile", "/mem",
    ];
    let v1 = Path::new("/sys/fs/cgroup/memory").is_dir();
    let mem = if v1 { "67108864" } else { "v2" };
    assert_eq!(
        service.berth.ok(&read),
        format!("10.1.2.3 myhost\n2048\n512\n{mem}")
    );
    service.berth.ok(&["rmi", "stepped"]);
}
