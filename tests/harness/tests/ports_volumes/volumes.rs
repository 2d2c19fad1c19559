//! The local driver's options (`volume create -o`): tmpfs and bind volumes mounted while
//! containers use them, refused options in dockerd's words; `volume ls --filter`.

use std::fs;
use std::path::Path;

use berth_harness::api::Service;
use berth_harness::image::{mounts_under, Berth, IMAGE};

fn mounted(data: &Path) -> bool {
    mounts_under(data).iter().any(|m| Path::new(m) == data)
}

/// A tmpfs volume is a tmpfs with its options inside the container, mounted on `_data` by
/// the first container to start with it and unmounted when the last one stops (one left
/// running keeps it, and what it holds); `volume inspect` shows the options. (Before: `-o`
/// was no flag of `volume create`.)
#[test]
fn a_tmpfs_volume_is_mounted_from_the_first_start_to_the_last_stop() {
    crate::need_root!();
    let berth = Berth::new();
    let create = [
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "-o",
        "o=size=1m,uid=1000",
        "tv",
    ];
    assert_eq!(berth.ok(&create), "tv");
    let options = berth.ok(&["volume", "inspect", "-f", "{{json .Options}}", "tv"]);
    assert_eq!(
        options,
        r#"{"device":"tmpfs","o":"size=1m,uid=1000","type":"tmpfs"}"#
    );
    let data = berth.root().join("volumes/tv/_data");
    assert!(
        !mounted(&data),
        "nothing is mounted before a container starts"
    );
    let run = |name: &str| {
        berth.ok(&[
            "run", "-d", "--name", name, "-v", "tv:/data", IMAGE, "sleep", "1000",
        ])
    };
    run("first");
    assert!(mounted(&data), "the first start mounts it");
    let seen = berth.ok(&[
        "exec",
        "first",
        "sh",
        "-c",
        "grep ' /data ' /proc/mounts; stat -c %u /data",
    ]);
    assert!(
        seen.starts_with("tmpfs /data tmpfs")
            && seen.contains("size=1024k")
            && seen.contains("uid=1000"),
        "{seen}"
    );
    assert!(seen.ends_with("\n1000"), "owned as o= says: {seen}");
    berth.ok(&["exec", "first", "sh", "-c", "echo kept > /data/f"]);
    run("second");
    berth.ok(&["rm", "-f", "first"]);
    assert!(mounted(&data), "a user is left: still mounted");
    assert_eq!(berth.ok(&["exec", "second", "cat", "/data/f"]), "kept");
    berth.ok(&["stop", "-t", "0", "second"]);
    assert!(!mounted(&data), "the last stop unmounts it");
    assert!(
        fs::read_dir(&data).expect("_data").next().is_none(),
        "the tmpfs went with it"
    );
    // Started again: mounted again, and released again by rm.
    berth.ok(&["start", "second"]);
    assert!(mounted(&data));
    berth.ok(&["rm", "-f", "second"]);
    assert!(!mounted(&data));
    berth.ok(&["volume", "rm", "tv"]);
}

/// A bind volume shows the host directory in the container, both ways, only while it runs;
/// `volume rm` leaves the host's files alone. A bind volume whose device is missing fails
/// the start in Docker's words, leaving nothing mounted. Unknown and incomplete options are
/// refused at create as dockerd refuses them, and no volume is made.
#[test]
fn a_bind_volume_shows_its_device_and_refused_options_make_nothing() {
    crate::need_root!();
    let berth = Berth::new();
    let host = tempfile::tempdir().expect("host dir");
    fs::write(host.path().join("h"), "from the host").expect("host file");
    let device = format!("device={}", host.path().display());
    berth.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device,
        "bv",
    ]);
    let seen = berth.ok(&[
        "run",
        "--rm",
        "-v",
        "bv:/data",
        IMAGE,
        "sh",
        "-c",
        "cat /data/h; echo from c > /data/c",
    ]);
    assert_eq!(seen, "from the host");
    assert_eq!(
        fs::read_to_string(host.path().join("c")).expect("c"),
        "from c\n"
    );
    let data = berth.root().join("volumes/bv/_data");
    assert!(!mounted(&data));
    berth.ok(&["volume", "rm", "bv"]);
    assert!(host.path().join("h").exists() && host.path().join("c").exists());

    let missing = host.path().join("missing");
    let device = format!("device={}", missing.display());
    berth.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device,
        "nb",
    ]);
    let ran = berth.run(&["run", "--rm", "-v", "nb:/data", IMAGE, "true"]);
    assert_eq!(ran.code(), Some(125), "{}", ran.stderr);
    let data = berth.root().join("volumes/nb/_data");
    let words = format!(
        "error while mounting volume '{d}': failed to mount local volume: mount {m}:{d}, flags: 0x1000: no such file or directory",
        d = data.display(),
        m = missing.display()
    );
    assert!(ran.stderr.contains(&words), "{}", ran.stderr);
    assert!(
        mounts_under(berth.root()).is_empty(),
        "{:?}",
        mounts_under(berth.root())
    );
    berth.ok(&["volume", "rm", "nb"]);

    for (opts, says) in [
        (&["-o", "foo=1"][..], r#"create bad: invalid option: "foo""#),
        (
            &["-o", "type=tmpfs"][..],
            r#"create bad: missing required option: "device""#,
        ),
        (
            &["-o", "o=size=1m", "-o", "device=tmpfs"][..],
            r#"create bad: missing required option: "type""#,
        ),
    ] {
        let mut args = vec!["volume", "create"];
        args.extend_from_slice(opts);
        args.push("bad");
        let ran = berth.run(&args);
        assert_eq!(ran.code(), Some(1), "{opts:?}");
        assert_eq!(ran.stderr.trim(), format!("berth: {says}"), "{opts:?}");
    }
    assert_eq!(berth.ok(&["volume", "ls", "-q"]), "");
}

/// The docker CLI's `volume create --opt` reaches the engine as DriverOpts: the same
/// options inspected through either CLI, the tmpfs mounted in a container the docker CLI
/// runs, dockerd's words for an unknown option; and `volume ls --filter` lists through the
/// berth CLI what it lists through the docker CLI. (Before: DriverOpts were refused, and
/// berth's `volume ls` took no filter.)
#[test]
fn the_docker_cli_creates_volumes_with_options_and_filters_them_as_berth_does() {
    crate::need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let berth = &service.berth;
    service.docker_ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m,uid=1000",
        "--label",
        "team=a",
        "tv",
    ]);
    let template = "{{json .Options}} {{json .Labels}}";
    assert_eq!(
        service.docker_ok(&["volume", "inspect", "-f", template, "tv"]),
        berth.ok(&["volume", "inspect", "-f", template, "tv"])
    );
    let seen = service.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "tv:/data",
        IMAGE,
        "grep",
        " /data ",
        "/proc/mounts",
    ]);
    assert!(
        seen.starts_with("tmpfs /data tmpfs") && seen.contains("size=1024k"),
        "{seen}"
    );
    let refused = service.docker(&["volume", "create", "-o", "foo=1", "bad"]);
    assert_eq!(refused.code(), Some(1));
    assert!(
        refused
            .stderr
            .contains(r#"Error response from daemon: create bad: invalid option: "foo""#),
        "{}",
        refused.stderr
    );
    service.docker_ok(&["volume", "create", "plain"]);
    berth.ok(&["create", "--name", "user", "-v", "plain:/x", IMAGE, "true"]);
    for filter in [
        "dangling=true",
        "dangling=false",
        "name=tv",
        "name=pla",
        "label=team",
        "label=team=a",
        "label!=team",
        "driver=local",
    ] {
        let ls = ["volume", "ls", "--filter", filter];
        assert_eq!(service.docker_ok(&ls), berth.ok(&ls), "{filter}");
    }
    assert_eq!(
        berth.ok(&["volume", "ls", "-q", "-f", "dangling=true"]),
        "tv"
    );
    let bad = berth.run(&["volume", "ls", "-f", "colour=red"]);
    assert_eq!(bad.code(), Some(1));
    assert!(
        bad.stderr.contains("invalid filter 'colour'"),
        "{}",
        bad.stderr
    );
    berth.ok(&["rm", "user"]);
}

/// What dockerd's local driver (moby/sys/mount) takes for a remount, `remount` in `o=` or a
/// device "none", without filesystem data, is never passed to mount(2): nothing is mounted and
/// the volume is its plain directory, kept between containers.
#[test]
fn a_remount_without_data_mounts_nothing_as_dockerd() {
    crate::need_root!();
    let berth = Berth::new();
    for (name, device, o) in [
        ("remounted", "device=tmpfs", "o=remount,ro"),
        ("none", "device=none", "o=nosuid"),
    ] {
        let create = [
            "volume",
            "create",
            "-o",
            "type=tmpfs",
            "-o",
            device,
            "-o",
            o,
            name,
        ];
        assert_eq!(berth.ok(&create), name);
        let volume = format!("{name}:/data");
        let seen = berth.ok(&[
            "run",
            "--rm",
            "-v",
            &volume,
            IMAGE,
            "sh",
            "-c",
            "echo kept > /data/f; grep -c ' /data tmpfs' /proc/mounts || true",
        ]);
        assert_eq!(seen, "0", "{name}: no tmpfs at /data");
        let data = berth.root().join("volumes").join(name).join("_data");
        assert!(!mounted(&data), "{name}");
        assert_eq!(
            fs::read_to_string(data.join("f")).expect("the volume's file"),
            "kept\n",
            "{name}"
        );
        berth.ok(&["volume", "rm", name]);
    }
}
