//! The habits of a Docker user that berth's command line must keep: where its own flags end,
//! and what it refuses only when it must.
#![forbid(unsafe_code)]

use berth_harness::image::{Berth, IMAGE};

#[test]
fn arguments_after_the_image_are_the_containers() {
    let berth = Berth::new();
    // As an ENTRYPOINT image invoked with its own flags: `docker run img --help`.
    let out = berth.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        IMAGE,
        "--version",
        "-c",
        "echo x",
    ]);
    assert_eq!(out, "--version -c echo x");
    let id = berth.ok(&["create", "--entrypoint", "echo", IMAGE, "--memory", "1g"]);
    assert_eq!(berth.ok(&["start", "-a", &id]), "--memory 1g");
    // The same for exec's command.
    berth.ok(&["run", "-d", "--name", "habits", IMAGE, "sleep", "1000"]);
    assert_eq!(
        berth.ok(&["exec", "habits", "echo", "--version", "-c", "x"]),
        "--version -c x"
    );
    // A flag no one knows, before the image, is still Docker's unknown flag (125).
    let ran = berth.run(&["run", "--rm", "--bogus", IMAGE]);
    assert_eq!(ran.code(), Some(125), "{}", ran.stderr);
    assert_eq!(
        ran.stderr.trim(),
        "berth: unknown flag: --bogus; see 'berth run --help'"
    );
    let ran = berth.run(&["container", "create", "-x", IMAGE]);
    assert_eq!(ran.code(), Some(125), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("unknown shorthand flag: 'x' in -x"),
        "{}",
        ran.stderr
    );
    // Nothing was made by the refusals.
    assert_eq!(berth.ids().len(), 2);
}

#[test]
fn run_dit_needs_no_terminal() {
    let berth = Berth::new();
    // stdin is /dev/null: Docker checks for a terminal only when it attaches.
    let id = berth.ok(&["run", "-dit", "--name", "dit", IMAGE, "sh"]);
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(
        berth.ok(&["inspect", "--format", "{{.State.Running}}", "dit"]),
        "true"
    );
    // Attaching without a terminal is still refused.
    let ran = berth.run(&["run", "-it", "--rm", IMAGE, "true"]);
    assert!(!ran.success());
    assert!(
        ran.stderr.contains("the input device is not a TTY"),
        "{}",
        ran.stderr
    );
}

#[test]
fn no_such_object_is_one_line_and_exit_1_everywhere_but_run() {
    let berth = Berth::new();
    // The docker CLI exits 1 when the engine refuses a command, and 125 only for run and
    // create, whose own status is the container's.
    for args in [
        &["rm", "nosuch"][..],
        &["stop", "nosuch"],
        &["start", "nosuch"],
        &["kill", "nosuch"],
        &["logs", "nosuch"],
        &["exec", "nosuch", "true"],
        &["top", "nosuch"],
        &["port", "nosuch"],
        &["attach", "nosuch"],
        &["export", "nosuch"],
        &["wait", "nosuch"],
        &["inspect", "nosuch"],
        &["container", "inspect", "nosuch"],
        &["rmi", "nosuch"],
        &["image", "inspect", "nosuch"],
        &["history", "nosuch"],
        &["tag", "nosuch", "other"],
        &["network", "rm", "nosuch"],
        &["network", "inspect", "nosuch"],
        &["volume", "rm", "nosuch"],
        &["volume", "inspect", "nosuch"],
    ] {
        let ran = berth.run(args);
        assert_eq!(ran.code(), Some(1), "{args:?}: {}", ran.stderr);
        let lines: Vec<&str> = ran.stderr.trim().lines().collect();
        // start says which failed after why, on a second line, as the docker CLI does.
        let expected = if args[0] == "start" { 2 } else { 1 };
        assert_eq!(lines.len(), expected, "{args:?}: {}", ran.stderr);
        assert!(lines[0].contains("nosuch"), "{args:?}: {}", ran.stderr);
    }
    for args in [
        &["run", "--rm", "--pull", "never", "nosuch:1"][..],
        &["create", "--pull", "never", "nosuch:1"],
    ] {
        let ran = berth.run(args);
        assert_eq!(ran.code(), Some(125), "{args:?}: {}", ran.stderr);
    }
    assert!(berth.ids().is_empty());
}

#[test]
fn inspect_finds_every_kind_of_object_as_docker_does() {
    let berth = Berth::new();
    // Names that are no hexadecimal prefix: an image is found by a prefix of its id, as in
    // Docker ("c1" found the test image one run in 256, its id changing with the tar's times).
    berth.ok(&["create", "--name", "box1", IMAGE, "true"]);
    berth.ok(&["network", "create", "n1"]);
    berth.ok(&["volume", "create", "v1"]);
    // Without --type: a container, an image, a network and a volume, in one list.
    let out = berth.ok(&[
        "inspect",
        "--format",
        "{{json .}}",
        "box1",
        IMAGE,
        "n1",
        "v1",
    ]);
    let found: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    assert_eq!(found.len(), 4, "{out}");
    assert_eq!(found[0]["Name"], "/box1");
    assert!(found[1]["RepoTags"].to_string().contains(IMAGE), "{out}");
    assert_eq!(found[2]["Name"], "n1");
    assert_eq!(found[2]["Driver"], "bridge");
    assert_eq!(found[3]["Name"], "v1");
    assert_eq!(found[3]["Driver"], "local");
    // What is found is printed, then what is not is named: Docker's `No such object`.
    let ran = berth.run(&["inspect", "box1", "nosuch"]);
    assert_eq!(ran.code(), Some(1));
    let found: serde_json::Value = serde_json::from_str(&ran.stdout).expect("JSON list");
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{}", ran.stdout);
    assert_eq!(ran.stderr.trim(), "berth: No such object: nosuch");
    // --type narrows the lookup, and its error names the kind.
    let ran = berth.run(&["inspect", "--type", "image", "box1"]);
    assert_eq!(ran.code(), Some(1));
    assert_eq!(ran.stderr.trim(), "berth: No such image: box1");
    assert_eq!(
        berth.ok(&["inspect", "--type", "volume", "--format", "{{.Name}}", "v1"]),
        "v1"
    );
    berth.ok(&["network", "rm", "n1"]);
}

#[test]
fn usage_and_registry_errors_say_what_was_wrong_once() {
    let berth = Berth::new();
    let ran = berth.run(&["run", "--rm", "-p", "80:80:80:80", IMAGE, "true"]);
    assert_eq!(ran.code(), Some(125));
    assert!(ran.stderr.contains("malformed port spec"), "{}", ran.stderr);
    // A registry no one answers for: one line, the URL once, Go's words for the cause.
    let ran = berth.run(&["pull", "127.0.0.1:1/x/y:1"]);
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    let line = ran.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert_eq!(line.matches("127.0.0.1:1/v2").count(), 1, "{line}");
    assert!(line.contains("dial tcp 127.0.0.1:1"), "{line}");
    let ran = berth.run(&["pull", "no-such-host.invalid/x/y:1"]);
    let line = ran.stderr.trim();
    assert!(
        line.ends_with("dial tcp: lookup no-such-host.invalid: no such host"),
        "{line}"
    );
    assert_eq!(berth.ok(&["images", "-q"]).lines().count(), 1);
}

/// A copy of a missing path names it and the container as the user wrote them, once (Docker's
/// `Could not find the file /x in container c`; berth said the short id, with its own prefix).
#[test]
fn cp_of_a_missing_path_says_so_once() {
    let berth = Berth::new();
    berth.ok(&["create", "--name", "holder", IMAGE, "true"]);
    let dest = tempfile::tempdir().unwrap();
    let dest = dest.path().to_str().unwrap();
    let ran = berth.run(&["cp", "holder:/no/such", dest]);
    assert_eq!(ran.code(), Some(1));
    assert_eq!(
        ran.stderr.trim(),
        "berth: Could not find the file /no/such in container holder"
    );
}

/// Switches take Docker's boolean forms: `--tty=false`, `--all=false`, `-a=true`, `--rm=true`.
#[test]
fn switches_take_docker_boolean_values() {
    let berth = Berth::new();
    let ran = berth.run(&["run", "--rm=true", "--tty=false", IMAGE, "echo", "plain"]);
    assert_eq!(
        (ran.code(), ran.stdout.as_str()),
        (Some(0), "plain\n"),
        "{}",
        ran.stderr
    );
    berth.ok(&[
        "create",
        "--name",
        "made",
        "--interactive=false",
        IMAGE,
        "true",
    ]);
    assert_eq!(berth.ok(&["ps", "--all=false", "-q"]), "");
    assert_eq!(berth.ok(&["ps", "-a=true", "-q"]).lines().count(), 1);
    // The short forms too, before run's image (clap took `-t=false` for the image).
    let ran = berth.run(&[
        "run", "--rm", "-t=false", "-i=false", IMAGE, "echo", "short",
    ]);
    assert_eq!(
        (ran.code(), ran.stdout.as_str()),
        (Some(0), "short\n"),
        "{}",
        ran.stderr
    );
    let ran = berth.run(&["run", "--rm", "--tty=maybe", IMAGE, "true"]);
    assert_eq!(ran.code(), Some(125));
    assert!(
        ran.stderr
            .starts_with("berth: invalid argument \"maybe\" for \"-t, --tty\" flag"),
        "{}",
        ran.stderr
    );
}

/// `exec --privileged` gives the process every capability the host has, whatever the
/// container was given, as Docker's does; without it the container's set holds.
#[test]
fn exec_privileged_has_every_capability() {
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "bare",
        "--cap-drop",
        "ALL",
        IMAGE,
        "sleep",
        "600",
    ]);
    let caps = |flags: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bare", "grep", "CapEff", "/proc/self/status"]);
        berth
            .ok(&args)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let host = host
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(caps(&[]), "0000000000000000");
    assert_eq!(caps(&["--privileged"]), host);
    berth.ok(&["rm", "-f", "bare"]);
}

/// `run -q` pulls without a word; without it, Docker's lines go to stderr. `--gpus` is refused
/// with a reason (125) rather than as an unknown flag.
#[test]
fn run_quiet_pulls_silently_and_gpus_says_why_not() {
    let Some(registry) = berth_harness::registry::Registry::start(false) else {
        return;
    };
    let berth = Berth::new();
    let pushed = format!("{}/quiet/busybox:1", registry.addr);
    berth.ok(&["tag", IMAGE, &pushed]);
    berth.ok(&["push", &pushed]);
    berth.ok(&["rmi", &pushed]);
    let ran = berth.run(&["run", "--rm", "-q", &pushed, "echo", "quiet"]);
    assert_eq!(
        (ran.code(), ran.stdout.as_str()),
        (Some(0), "quiet\n"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr, "");
    berth.ok(&["rmi", &pushed]);
    let ran = berth.run(&["run", "--rm", &pushed, "true"]);
    assert!(
        ran.stderr.contains("Unable to find image"),
        "{}",
        ran.stderr
    );
    let ran = berth.run(&["run", "--rm", "--gpus", "all", IMAGE, "true"]);
    assert_eq!(ran.code(), Some(125));
    assert!(
        ran.stderr.starts_with("berth: --gpus all: "),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.lines().count(), 1);
}

/// `push` lists the layers it pushed, not the config; `rmi` of an image's last name lists the
/// image and every layer that went with it (chain IDs, top first), as dockerd does; a pull of
/// layers already here says only `Already exists`.
#[test]
fn push_rmi_and_pull_list_what_docker_lists() {
    let Some(registry) = berth_harness::registry::Registry::start(false) else {
        return;
    };
    let berth = Berth::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("only-here"), b"a layer of its own\n").unwrap();
    let tar = dir.path().join("layer.tar");
    berth_harness::pack(dir.path(), &tar, &["only-here"]);
    let name = format!("{}/lists/solo:1", registry.addr);
    let id = berth.ok(&["import", tar.to_str().unwrap(), &name]);
    let id = id.trim();
    let layer = berth.ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .RootFS.Layers 0}}",
        &name,
    ]);
    let pushed = berth.ok(&["push", &name]);
    let short = |d: &str| d.trim_start_matches("sha256:")[..12].to_string();
    assert!(
        pushed.contains(&format!("{}: Pushed", short(layer.trim()))),
        "{pushed}"
    );
    assert!(
        !pushed.contains(&short(id)),
        "the config is no layer: {pushed}"
    );
    let removed = berth.ok(&["rmi", &name]);
    assert_eq!(
        removed.trim(),
        format!("Untagged: {name}\nDeleted: {id}\nDeleted: {}", layer.trim())
    );
    berth.ok(&["pull", &name]);
    berth.ok(&["tag", &name, "again:1"]);
    berth.ok(&["rmi", &name]);
    let pulled = berth.ok(&["pull", &name]);
    assert!(pulled.contains(": Already exists"), "{pulled}");
    assert!(!pulled.contains("Pulling fs layer"), "{pulled}");
    // The repository as the registry names it; a port is no tag.
    assert!(
        pulled.starts_with("1: Pulling from lists/solo\n"),
        "{pulled}"
    );
    let untagged = berth.run(&["pull", &format!("{}/lists/none", registry.addr)]);
    assert!(
        untagged
            .stdout
            .starts_with("Using default tag: latest\nlatest: Pulling from lists/none\n"),
        "{}",
        untagged.stdout
    );
}

/// `stop` and `restart` name their wait `-t, --timeout`, as the docker CLI does (28.x: the
/// old `--time` still accepted): a bad value is refused in the docker CLI's words, which the
/// docker CLI on PATH shows (it refuses the flag before it looks for a daemon).
#[test]
fn stop_names_its_wait_timeout_as_docker_does() {
    let berth = Berth::new();
    let wording = |stderr: &str| {
        stderr
            .find("invalid argument \"x\" for ")
            .map(|at| stderr[at..].split(" flag").next().unwrap_or("").to_string())
    };
    for command in ["stop", "restart"] {
        let ran = berth.run(&[command, "-t", "x", "nosuch"]);
        assert_eq!(ran.code(), Some(125), "{}", ran.stderr);
        let mut docker = std::process::Command::new("docker");
        docker
            .args([
                "-H",
                "unix:///nonexistent/docker.sock",
                command,
                "-t",
                "x",
                "nosuch",
            ])
            .env_remove("DOCKER_HOST");
        let docker = berth_harness::run_with_timeout(docker, berth_harness::COMMAND_TIMEOUT);
        assert_eq!(docker.code(), Some(125), "{}", docker.stderr);
        assert_eq!(
            wording(&ran.stderr),
            wording(&docker.stderr),
            "{}",
            ran.stderr
        );
        assert!(wording(&ran.stderr).is_some(), "{}", ran.stderr);
    }
    berth.ok(&["run", "-d", "--name", "waits", IMAGE, "sleep", "600"]);
    berth.ok(&["stop", "--timeout", "0", "waits"]);
    berth.ok(&["restart", "--time", "0", "waits"]);
    berth.ok(&["rm", "-f", "waits"]);
}
