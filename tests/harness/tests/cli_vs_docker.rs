//! berth's own CLI beside the docker CLI, both on one data root: the docker CLI talks to
//! `berth system service`, so its output is Docker's client formatting of berth's state, and
//! berth's CLI must print the same for the same state.
#![forbid(unsafe_code)]

use berth_harness::api::Service;
use berth_harness::image::IMAGE;

/// `args` through both CLIs: (berth's stdout, docker's stdout), both successful.
fn both(service: &Service, args: &[&str]) -> (String, String) {
    (service.berth.ok(args), service.docker_ok(args))
}

/// A running container `name` that wrote `bytes` bytes to its root (its SizeRw).
fn running_with_bytes(service: &Service, name: &str, bytes: usize) {
    service
        .berth
        .ok(&["run", "-d", "--name", name, IMAGE, "sleep", "600"]);
    let write = format!("head -c {bytes} /dev/zero > /written");
    service.berth.ok(&["exec", name, "sh", "-c", &write]);
}

#[test]
fn ps_size_is_dockers() {
    let Some(service) = Service::start() else {
        return;
    };
    running_with_bytes(&service, "sized", 5000);
    // No CREATED or STATUS column: two calls a moment apart may word the age differently.
    for args in [
        &[
            "ps",
            "-s",
            "--format",
            "table {{.ID}}\t{{.Names}}\t{{.Size}}",
        ][..],
        &["ps", "--size", "--format", "{{.Names}} {{.Size}}"],
        &["ps", "--format", "{{.Size}}"],
        // (Not ps: the docker CLI first runs a ps template over an empty container.)
        &[
            "images",
            "--format",
            "{{slice .ID 0 5}} {{slice .Repository 1 3}}",
        ],
    ] {
        let (berth, docker) = both(&service, args);
        assert_eq!(berth, docker, "{args:?}");
    }
    service.berth.ok(&["rm", "-f", "sized"]);
}

#[test]
fn system_df_formats_are_dockers() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["run", "-d", "--name", "used", IMAGE, "sleep", "600"]);
    for args in [
        &["system", "df", "--format", "json"][..],
        &[
            "system",
            "df",
            "--format",
            "{{.Type}}: {{.TotalCount}} {{.Active}} {{.Size}} {{.Reclaimable}}",
        ],
        &["system", "df", "--format", "table {{.Type}}\t{{.Size}}"],
        &["system", "df", "--format", "table"],
    ] {
        let (berth, docker) = both(&service, args);
        assert_eq!(berth, docker, "{args:?}");
    }
    service.berth.ok(&["rm", "-f", "used"]);
}

#[test]
fn network_filters_formats_and_prune_filters_are_dockers() {
    let Some(service) = Service::start() else {
        return;
    };
    service
        .berth
        .ok(&["network", "create", "--label", "team=a", "labelled"]);
    service.berth.ok(&["network", "create", "plain"]);
    for args in [
        &["network", "ls", "--filter", "label=team=a"][..],
        &[
            "network",
            "ls",
            "-f",
            "name=pla",
            "--format",
            "{{.Name}} {{.Driver}}",
        ],
        &["network", "ls", "--format", "table {{.Name}}\t{{.Scope}}"],
        &[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}}",
            "labelled",
            "plain",
        ],
    ] {
        let (berth, docker) = both(&service, args);
        assert_eq!(berth, docker, "{args:?}");
    }
    // A prune's filters: only the labelled network goes.
    let pruned = service
        .berth
        .ok(&["network", "prune", "-f", "--filter", "label=team=a"]);
    assert_eq!(pruned.trim(), "Deleted Networks:\nlabelled");
    let names = service
        .berth
        .ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        names.contains("plain") && !names.contains("labelled"),
        "{names}"
    );
    // Images and containers take until=; a filter no prune knows is refused before anything.
    service
        .berth
        .ok(&["image", "prune", "-f", "--filter", "until=1h"]);
    service
        .berth
        .ok(&["container", "prune", "-f", "--filter", "until=1s"]);
    let ran = service
        .berth
        .run(&["system", "prune", "-f", "--filter", "bogus=1"]);
    assert_eq!(ran.code(), Some(1));
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    service.berth.ok(&["network", "rm", "plain"]);
}

/// `search` of a registry on loopback reads its catalog; both CLIs print the same table, and
/// Docker Hub, out of reach here, is one line saying so.
#[test]
fn search_reads_a_registrys_catalog() {
    let Some(service) = Service::start() else {
        return;
    };
    let Some(registry) = berth_harness::registry::Registry::start(false) else {
        return;
    };
    for repo in ["tools/busybox", "other/thing", "busyness"] {
        let name = format!("{}/{repo}:1", registry.addr);
        service.berth.ok(&["tag", IMAGE, &name]);
        service.berth.ok(&["push", &name]);
    }
    let term = format!("{}/busy", registry.addr);
    let (berth, docker) = both(&service, &["search", &term]);
    assert_eq!(berth, docker);
    let names: Vec<&str> = berth
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        [
            format!("{}/busyness", registry.addr),
            format!("{}/tools/busybox", registry.addr)
        ]
    );
    let (berth, docker) = both(&service, &["search", "--limit", "1", &term]);
    assert_eq!(berth, docker);
    assert_eq!(berth.lines().count(), 2);
    let ran = service.berth.run(&["search", "busybox"]);
    assert_eq!(ran.code(), Some(1));
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
}

/// Docker's run flags that berth does not apply, through both CLIs on one root: each refused
/// with one line and the docker CLI's status (its own words and 1 for Windows' flags, which it
/// refuses itself from a Linux daemon; the engine's and 125 for the rest, which it sends on),
/// and accepted where Docker's default or a value berth can honour is given.
#[test]
fn flags_berth_does_not_apply_are_refused_by_both_clis() {
    let Some(service) = Service::start() else {
        return;
    };
    let refused: [&[&str]; 6] = [
        &["--cpu-count", "1"],
        &["--cpu-rt-runtime", "950000"],
        &["--io-maxiops", "10"],
        &["--isolation", "hyperv"],
        &["--runtime", "runsc"],
        &["--storage-opt", "size=1G"],
    ];
    for flags in refused {
        let args = [&["run", "--rm"][..], flags, &[IMAGE, "true"]].concat();
        let berth = service.berth.run(&args);
        let docker = service.docker(&args);
        // The docker CLI refuses Windows' flags itself, with 1; the engine's refusals are 125.
        assert_eq!(
            berth.code(),
            docker.code(),
            "{flags:?}: {} / {}",
            berth.stderr,
            docker.stderr
        );
        assert!(matches!(berth.code(), Some(1 | 125)), "{}", berth.stderr);
        let line = berth.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{line}");
        let said = line.strip_prefix("berth: ").expect("berth's prefix");
        assert!(
            docker.stderr.contains(said),
            "docker {flags:?} said {:?}, berth {said:?}",
            docker.stderr
        );
    }
    // Berth's own: no IPv6, no API socket to hand out.
    for flags in [&["--ip6", "fd00::2"][..], &["--use-api-socket"]] {
        let args = [&["run", "--rm"][..], flags, &[IMAGE, "true"]].concat();
        let berth = service.berth.run(&args);
        assert_eq!(berth.code(), Some(125), "{flags:?}: {}", berth.stderr);
        assert_eq!(berth.stderr.trim().lines().count(), 1, "{}", berth.stderr);
    }
    let accepted: [&[&str]; 3] = [
        &["--runtime", "runc"],
        &["--isolation", "Default"],
        &["--disable-content-trust"],
    ];
    for flags in accepted {
        let args = [&["run", "--rm"][..], flags, &[IMAGE, "true"]].concat();
        let (berth, docker) = (service.berth.run(&args), service.docker(&args));
        assert!(
            berth.success() && docker.success(),
            "{flags:?}: {} / {}",
            berth.stderr,
            docker.stderr
        );
    }
    // Real-time CPU time through update too: Docker's daemon refuses it for each container
    // (exit 1), as berth's API now does where it took the request and changed nothing.
    service.berth.ok(&["create", "--name", "rt", IMAGE, "true"]);
    for flag in ["--cpu-rt-period", "--cpu-rt-runtime"] {
        let args = ["update", flag, "1000", "rt"];
        let (berth, docker) = (service.berth.run(&args), service.docker(&args));
        assert_eq!(
            (berth.code(), docker.code()),
            (Some(1), Some(1)),
            "{args:?}"
        );
        let said = berth
            .stderr
            .trim()
            .strip_prefix("berth: ")
            .expect("one line");
        assert!(docker.stderr.contains(said), "{} / {said}", docker.stderr);
        assert!(
            berth.stdout.is_empty() && docker.stdout.is_empty(),
            "{args:?}"
        );
    }
    // 0 is Docker's unset: taken, nothing changes.
    let (ours, theirs) = both(&service, &["update", "--cpu-rt-period", "0", "rt"]);
    assert_eq!((ours.as_str(), theirs.as_str()), ("rt", "rt"));
    service.berth.ok(&["rm", "rt"]);
    let kernel = service
        .berth
        .run(&["run", "--rm", "--kernel-memory", "64m", IMAGE, "true"]);
    assert!(kernel.success(), "{}", kernel.stderr);
    assert!(
        kernel.stderr.contains("--kernel-memory discarded"),
        "{}",
        kernel.stderr
    );
}

/// `cp -a` (archive mode) keeps the source's owners in the container, `cp` alone makes the
/// container's root the owner, and `-q` is taken: through berth's CLI and the docker CLI (the
/// API's copyUIDGID) on one root, the same owners.
#[test]
fn cp_archive_mode_keeps_owners_like_the_docker_cli() {
    let Some(service) = Service::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("owned");
    std::fs::write(&file, "x").expect("file");
    std::os::unix::fs::chown(&file, Some(1234), Some(4321)).expect("chown");
    let src = file.to_string_lossy().into_owned();
    service
        .berth
        .ok(&["run", "-d", "--name", "box", IMAGE, "sleep", "600"]);
    for (client, flags, name) in [
        ("berth", &["-a"][..], "b-archived"),
        ("berth", &["-q"], "b-plain"),
        ("docker", &["-a"], "d-archived"),
        ("docker", &["-q"], "d-plain"),
    ] {
        let dest = format!("box:/tmp/{name}");
        let args = [&["cp"][..], flags, &[&src, &dest]].concat();
        match client {
            "berth" => service.berth.ok(&args),
            _ => service.docker_ok(&args),
        };
    }
    let owners = service.berth.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "cd /tmp && stat -c '%n %u:%g' b-archived b-plain d-archived d-plain",
    ]);
    assert_eq!(
        owners,
        "b-archived 1234:4321\nb-plain 0:0\nd-archived 1234:4321\nd-plain 0:0"
    );
    service.berth.ok(&["rm", "-f", "box"]);
}

/// `inspect --size`: a container's SizeRw and SizeRootFs, the same through both CLIs (the API's
/// `size=1`); without it, neither field.
#[test]
fn inspect_size_is_dockers() {
    let Some(service) = Service::start() else {
        return;
    };
    running_with_bytes(&service, "sized", 7000);
    let args = [
        "inspect",
        "--size",
        "--format",
        "{{.SizeRw}} {{.SizeRootFs}}",
        "sized",
    ];
    let (berth, docker) = both(&service, &args);
    assert_eq!(berth, docker);
    let rw: u64 = berth.split(' ').next().unwrap().parse().expect("SizeRw");
    assert!(rw >= 7000, "{berth}");
    let plain = service.berth.ok(&["inspect", "sized"]);
    assert!(!plain.contains("SizeRw"), "{plain}");
    service.berth.ok(&["rm", "-f", "sized"]);
}

/// `logs --details` (with and without `-t`): the same lines through both CLIs, each with the
/// space Docker puts before a line that has no attributes.
#[test]
fn logs_details_are_dockers() {
    let Some(service) = Service::start() else {
        return;
    };
    service.berth.ok(&[
        "run",
        "--name",
        "said",
        IMAGE,
        "sh",
        "-c",
        "echo one; echo two",
    ]);
    let (berth, docker) = both(&service, &["logs", "--details", "said"]);
    assert_eq!(berth, docker);
    assert_eq!(
        berth, "one\n two",
        "trimmed by the harness: the first line's space too"
    );
    let (berth, docker) = both(&service, &["logs", "--details", "-t", "said"]);
    assert_eq!(berth, docker);
    assert!(berth.lines().all(|l| l.contains("Z  ")), "{berth}");
    service.berth.ok(&["rm", "said"]);
}

/// `update --blkio-weight` where the host has no block I/O weights (no BFQ or CFQ scheduler,
/// as here): Docker's daemon discards the weight with a warning, before its range is checked,
/// and the docker CLI prints the warning on stdout after the names. Both CLIs print the same
/// and exit 0, the weight is not written (it failed at the cgroup's missing file), and the
/// rest of the update still applies.
#[test]
fn update_discards_a_weight_the_host_cannot_take_as_docker() {
    let Some(service) = Service::start() else {
        return;
    };
    let berth = &service.berth;
    // berth's create warns where the host has no weights: elsewhere there is nothing to show.
    let probe = berth.run(&[
        "create",
        "--name",
        "probe",
        "--blkio-weight",
        "300",
        IMAGE,
        "true",
    ]);
    assert!(probe.success(), "{probe:?}");
    if !probe.stderr.contains("Weight discarded") {
        berth_harness::skipping(format_args!("this host takes block I/O weights"));
        return;
    }
    berth.ok(&["run", "-d", "--name", "weighed", IMAGE, "sleep", "600"]);
    let warning = "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";
    for weight in ["300", "5"] {
        let args = ["update", "--blkio-weight", weight, "weighed"];
        let (ours, theirs) = both(&service, &args);
        assert_eq!(ours, theirs, "{args:?}");
        assert_eq!(ours, format!("weighed\n{warning}"), "{args:?}");
    }
    let args = [
        "update",
        "--blkio-weight",
        "300",
        "-m",
        "64m",
        "weighed",
        "probe",
    ];
    let (ours, theirs) = both(&service, &args);
    assert_eq!(ours, theirs);
    assert_eq!(ours, format!("weighed\nprobe\n{warning}\n{warning}"));
    for name in ["weighed", "probe"] {
        let shown = berth.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.BlkioWeight}} {{.HostConfig.Memory}}",
            name,
        ]);
        assert_eq!(shown, "0 67108864", "{name}");
    }
    berth.ok(&["rm", "-f", "weighed", "probe"]);
}

/// A copy into a container started `--read-only` is refused outside its volumes, and into a
/// read-only volume, in Docker's words (its daemon's containerExtractToDir checks both before
/// it extracts, running or not); a writable volume of such a container takes it. Both CLIs
/// say the same and exit 1. Berth wrote a stopped `--read-only` container's root.
#[test]
fn cp_into_read_only_places_is_refused_as_docker() {
    let Some(service) = Service::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("f");
    std::fs::write(&file, "x").expect("file");
    let src = file.to_string_lossy().into_owned();
    for (name, state) in [("rorun", "running"), ("rostop", "stopped")] {
        let mut run = vec!["create"];
        if state == "running" {
            run = vec!["run", "-d"];
        }
        run.extend([
            "--name",
            name,
            "--read-only",
            "-v",
            "/rw",
            "-v",
            "rovol:/ro:ro",
            IMAGE,
            "sleep",
            "600",
        ]);
        service.berth.ok(&run);
        for (dest, refusal) in [
            ("/tmp", Some("container rootfs is marked read-only")),
            ("/ro", Some("mounted volume is marked read-only")),
            ("/rw", None),
        ] {
            let dest = format!("{name}:{dest}/");
            let berth = service.berth.run(&["cp", &src, &dest]);
            let docker = service.docker(&["cp", &src, &dest]);
            for (client, ran) in [("berth", &berth), ("docker", &docker)] {
                match refusal {
                    Some(words) => {
                        assert_eq!(
                            ran.code(),
                            Some(1),
                            "{client} {state} {dest}: {}",
                            ran.stderr
                        );
                        assert!(
                            ran.stderr.contains(words),
                            "{client} {state} {dest}: {}",
                            ran.stderr
                        );
                    }
                    None => assert!(ran.success(), "{client} {state} {dest}: {}", ran.stderr),
                }
            }
        }
    }
    // A refusal of a larger copy reaches the docker CLI too: the service reads the rest of a
    // refused body before it lets the connection go. Before, the docker CLI, still sending,
    // wrote into the closed connection and said "write: broken pipe" (4 of 20 copies here).
    let big = dir.path().join("big");
    std::fs::write(&big, vec![7u8; 200 * 1024]).expect("file");
    let big = big.to_string_lossy().into_owned();
    for _ in 0..8 {
        let docker = service.docker(&["cp", &big, "rorun:/tmp/"]);
        assert_eq!(docker.code(), Some(1), "{}", docker.stderr);
        assert!(
            docker
                .stderr
                .contains("container rootfs is marked read-only"),
            "{}",
            docker.stderr
        );
    }
    service.berth.ok(&["rm", "-f", "-v", "rorun", "rostop"]);
    service.berth.ok(&["volume", "rm", "rovol"]);
}
