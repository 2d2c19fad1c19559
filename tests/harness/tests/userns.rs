//! Root's containers in user namespaces of their own (issue 15): `--userns private` and
//! `--userns auto` give each container its own range of host ids, its root owns the image's
//! files as the image's root does (idmapped layers, no copy of the image), and what it writes
//! is stored with the host ids of its range.
//!
//! Needs root and `cargo build --workspace --bins` beforehand.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_harness::image::{Berth, IMAGE};
use berth_harness::{need_root, run_with_timeout, COMMAND_TIMEOUT};

/// A container's map as `/proc/self/uid_map` shows it: (inside, outside, count).
fn uid_map(text: &str) -> (u64, u64, u64) {
    let n: Vec<u64> = text
        .split_whitespace()
        .take(3)
        .map(|w| w.parse().unwrap_or_else(|_| panic!("uid_map: {text}")))
        .collect();
    assert_eq!(n.len(), 3, "uid_map: {text}");
    (n[0], n[1], n[2])
}

/// KiB the data root takes on its own filesystem (mounts below it, such as a running
/// container's overlay, are not counted).
fn disk_use(dir: &Path) -> u64 {
    let out = Command::new("du")
        .arg("-skx")
        .arg(dir)
        .output()
        .expect("du");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("du -skx {}: {text}", dir.display()))
}

fn upper(berth: &Berth, id: &str) -> PathBuf {
    berth.root().join("containers").join(id).join("upper")
}

/// What a container's root does to the image's files: appends to /etc/passwd, makes a file in
/// the root-owned /etc and in /root, and lists owners as it sees them.
const WRITE_IMAGE_FILES: &str = "echo 'x:x:5:5::/:/bin/sh' >> /etc/passwd && touch /etc/made \
    && mkdir -p /root/dir && ls -lnd /etc/passwd /etc /bin/busybox && cat /proc/self/uid_map";

#[test]
fn private_root_writes_the_images_files_stored_shifted_on_the_host() {
    need_root!();
    let berth = Berth::new();
    let out = berth.ok(&[
        "run",
        "--name",
        "priv",
        "--userns",
        "private",
        IMAGE,
        "sh",
        "-c",
        WRITE_IMAGE_FILES,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    for line in &lines[..3] {
        let owner: Vec<&str> = line.split_whitespace().skip(2).take(2).collect();
        assert_eq!(owner, ["0", "0"], "the image's root owns it inside: {out}");
    }
    let (inside, host, count) = uid_map(lines[3]);
    assert_eq!((inside, count), (0, 65_536), "{out}");
    assert_ne!(host, 0, "{out}");
    let id = berth.ok(&["inspect", "-f", "{{.Id}}", "priv"]);
    let upper = upper(&berth, &id);
    for f in ["etc/passwd", "etc/made", "root/dir"] {
        let md = std::fs::metadata(upper.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(
            (u64::from(md.uid()), u64::from(md.gid())),
            (host, host),
            "{f} is the container's root's on the host"
        );
    }
    let v = berth.inspect("priv");
    assert_eq!(v["HostConfig"]["UsernsMode"], "private");
    let map = format!("0:{host}:65536");
    assert_eq!(v["HostConfig"]["IDMappings"]["UidMap"][0], map.as_str());
    assert_eq!(v["HostConfig"]["IDMappings"]["GidMap"][0], map.as_str());
    // A restart mounts the same range's view again: the changes are still the root's.
    let again = berth.ok(&["start", "-a", "priv"]);
    let last = again.lines().last().unwrap_or_default();
    assert_eq!(uid_map(last), (0, host, 65_536), "{again}");
    assert!(berth
        .ok(&["run", "--rm", IMAGE, "cat", "/etc/passwd"])
        .lines()
        .all(|l| l != "x:x:5:5::/:/bin/sh"));
}

#[test]
fn auto_ranges_are_distinct_and_the_image_is_not_copied() {
    need_root!();
    let berth = Berth::new();
    let before = disk_use(berth.root());
    let image = disk_use(&berth.root().join("image"));
    let mut maps = Vec::new();
    for name in ["a1", "a2"] {
        berth.ok(&[
            "run", "-d", "--name", name, "--userns", "auto", IMAGE, "sleep", "1000",
        ]);
    }
    for name in ["a1", "a2"] {
        let out = berth.ok(&["exec", name, "sh", "-c", WRITE_IMAGE_FILES]);
        let lines: Vec<&str> = out.lines().collect();
        for line in &lines[..3] {
            let owner: Vec<&str> = line.split_whitespace().skip(2).take(2).collect();
            assert_eq!(owner, ["0", "0"], "{name}: {out}");
        }
        let map = uid_map(lines[3]);
        // The image names ids up to 65534 (nobody): auto gives it that many and one.
        assert_eq!((map.0, map.2), (0, 65_535), "{name}: {out}");
        let v = berth.inspect(name);
        assert_eq!(v["HostConfig"]["UsernsMode"], "auto");
        let id = v["Id"].as_str().unwrap_or_default().to_string();
        let md = std::fs::metadata(upper(&berth, &id).join("etc/passwd")).expect("upper");
        assert_eq!(u64::from(md.uid()), map.1, "{name}'s change is its root's");
        maps.push(map);
    }
    let (a, b) = (maps[0], maps[1]);
    assert!(
        a.1 + a.2 <= b.1 || b.1 + b.2 <= a.1,
        "two auto containers share no id: {a:?} {b:?}"
    );
    let after = disk_use(berth.root());
    assert!(
        after - before < image / 2,
        "two containers took {} KiB beside an image of {image} KiB: the image was copied",
        after - before
    );
}

/// `create --userns auto:size=2000 IMAGE true` named `name`.
fn create_auto(berth: &Berth, name: &str) -> String {
    berth.ok(&[
        "create",
        "--name",
        name,
        "--userns",
        "auto:size=2000",
        IMAGE,
        "true",
    ])
}

#[test]
fn concurrent_auto_creates_never_share_a_range() {
    need_root!();
    let berth = Berth::new();
    let names: Vec<String> = (0..4).map(|i| format!("c{i}")).collect();
    std::thread::scope(|s| {
        for name in &names {
            let berth = &berth;
            s.spawn(move || create_auto(berth, name));
        }
    });
    let mut ranges: Vec<(u64, u64, &str)> = names
        .iter()
        .map(|n| {
            let v = berth.inspect(n);
            assert_eq!(v["HostConfig"]["UsernsMode"], "auto:size=2000");
            let map = v["HostConfig"]["IDMappings"]["UidMap"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{n}: no IDMappings"))
                .to_string();
            let f: Vec<u64> = map.split(':').map(|x| x.parse().unwrap()).collect();
            assert_eq!((f[0], f[2]), (0, 2000), "{map}");
            (f[1], f[2], n.as_str())
        })
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "overlap: {ranges:?}");
    }
    // A removed container's range is free again: the next container takes the lowest.
    let (lowest, _, holder) = ranges[0];
    berth.ok(&["rm", holder]);
    create_auto(&berth, "c4");
    let map = berth.inspect("c4")["HostConfig"]["IDMappings"]["UidMap"][0].clone();
    assert_eq!(map, format!("0:{lowest}:2000").as_str());
}

#[test]
fn bad_auto_options_are_refused() {
    need_root!();
    let berth = Berth::new();
    let ran = berth.run(&["run", "--rm", "--userns", "auto:size=0", IMAGE, "true"]);
    assert_eq!(ran.status.code(), Some(125), "{}", ran.stderr);
    assert!(ran.stderr.contains("auto:size=N"), "{}", ran.stderr);
    // Docker refuses a privileged container a user namespace (it failed before at the
    // runtime's /dev/ptmx, leaving a created container).
    for mode in ["private", "auto"] {
        let ran = berth.run(&["run", "--privileged", "--userns", mode, IMAGE, "true"]);
        assert_eq!(ran.status.code(), Some(125), "{}", ran.stderr);
        assert!(
            ran.stderr
                .contains("privileged mode is incompatible with user namespaces."),
            "{}",
            ran.stderr
        );
    }
    assert_eq!(berth.ok(&["ps", "-aq"]), "", "nothing created");
}

/// A volume is mounted idmapped: on disk its files keep the ids the containers see, so
/// containers of different ranges, and containers without a user namespace, share it.
#[test]
fn volumes_keep_the_containers_ids_on_disk() {
    need_root!();
    let berth = Berth::new();
    let list = "ls -lnd /home /home/user /home/mine";
    let first = berth.ok(&[
        "run",
        "--rm",
        "--userns",
        "auto",
        "-v",
        "shared:/home",
        IMAGE,
        "sh",
        "-c",
        &format!("touch /home/mine && {list}"),
    ]);
    let second = berth.ok(&[
        "run",
        "--rm",
        "--userns",
        "private",
        "-v",
        "shared:/home",
        IMAGE,
        "sh",
        "-c",
        &format!("echo x >> /home/mine && {list}"),
    ]);
    let host = berth.ok(&["run", "--rm", "-v", "shared:/home", IMAGE, "sh", "-c", list]);
    for out in [&first, &second, &host] {
        assert_eq!(out.lines().count(), 3, "{out}");
        for line in out.lines() {
            let owner: Vec<&str> = line.split_whitespace().skip(2).take(2).collect();
            assert_eq!(owner, ["0", "0"], "{out}");
        }
    }
    let data = berth.root().join("volumes/shared/_data");
    for f in ["", "user", "mine"] {
        let md = std::fs::metadata(data.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!((md.uid(), md.gid()), (0, 0), "_data/{f} on disk");
    }
}

/// Every directory named `name` below `dir`.
fn find_dirs(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if entry.file_name() == name {
            found.push(path);
        } else if !path.ends_with("rootfs") {
            find_dirs(&path, name, found);
        }
    }
}

/// Where layers cannot be idmapped (forced here with BERTH_USERNS_COPY), each is copied with
/// its owners shifted, once per range: a later container given the same range reuses it.
#[test]
fn the_chown_copy_fallback_is_made_once_per_range() {
    need_root!();
    let berth = Berth::new();
    let create = |name: &str| {
        let mut command = berth.command();
        command
            .env("BERTH_USERNS_COPY", "1")
            .args(["create", "--name", name, "--userns", "private", IMAGE])
            .args(["sh", "-c", WRITE_IMAGE_FILES])
            .stdin(std::process::Stdio::null());
        let ran = run_with_timeout(command, COMMAND_TIMEOUT);
        assert!(ran.success(), "create {name}: {}", ran.stderr);
    };
    let mut copies = Vec::new();
    let mut hosts = Vec::new();
    for name in ["copy1", "copy2"] {
        create(name);
        let out = berth.ok(&["start", "-a", name]);
        let lines: Vec<&str> = out.lines().collect();
        for line in &lines[..3] {
            let owner: Vec<&str> = line.split_whitespace().skip(2).take(2).collect();
            assert_eq!(owner, ["0", "0"], "{name}: {out}");
        }
        let (_, host, _) = uid_map(lines[3]);
        let mut found = Vec::new();
        find_dirs(berth.root(), &format!("diff-{host}-65536"), &mut found);
        assert_eq!(
            found.len(),
            1,
            "one copy of the image's one layer: {found:?}"
        );
        let copy = &found[0];
        let md = std::fs::metadata(copy.join("etc/passwd")).expect("the copy's passwd");
        assert_eq!(u64::from(md.uid()), host, "the copy is the range's");
        let layer = copy.with_file_name("diff").join("etc/passwd");
        assert_eq!(std::fs::metadata(layer).expect("layer").uid(), 0);
        copies.push(std::fs::metadata(copy).expect("copy").ino());
        hosts.push(host);
        // Removed, its range is free for the next container, which finds the copy made.
        berth.ok(&["rm", name]);
    }
    assert_eq!(hosts[0], hosts[1], "the freed range is taken again");
    assert_eq!(copies[0], copies[1], "the copy is reused, not made again");
}

/// The owners of a tar stream's entries: (name, uid, gid).
fn tar_owners(tar: &[u8]) -> Vec<(String, u64, u64)> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().expect("a tar stream");
    entries
        .map(|e| {
            let e = e.expect("a tar entry");
            let name = e.path().expect("a name").to_string_lossy().into_owned();
            let h = e.header();
            (name, h.uid().unwrap_or(99), h.gid().unwrap_or(99))
        })
        .collect()
}

/// What leaves a userns container (cp out, export, commit) has the ids it sees, not its
/// range's; what `cp` puts in is its root's.
#[test]
fn cp_export_and_commit_carry_the_containers_ids() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "--name",
        "made",
        "--userns",
        "auto",
        IMAGE,
        "sh",
        "-c",
        "echo hi > /etc/new && mkdir /root/d",
    ]);
    let host_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(host_file.path(), "in").expect("write");
    let dest = "made:/root/d/in";
    berth.ok(&["cp", &host_file.path().to_string_lossy(), dest]);
    let id = berth.ok(&["inspect", "-f", "{{.Id}}", "made"]);
    let map = berth.inspect("made")["HostConfig"]["IDMappings"]["UidMap"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let host: u32 = map
        .split(':')
        .nth(1)
        .and_then(|h| h.parse().ok())
        .expect(&map);
    let copied_in = std::fs::metadata(upper(&berth, &id).join("root/d/in")).expect("upper");
    assert_eq!(copied_in.uid(), host, "cp in: the container's root's");
    for (what, args) in [
        ("cp", vec!["cp", "made:/root", "-"]),
        ("export", vec!["export", "made"]),
    ] {
        let mut command = berth.command();
        command.args(&args);
        let out = command.output().expect("berth");
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let owners = tar_owners(&out.stdout);
        let ours: Vec<_> = owners
            .iter()
            .filter(|(n, ..)| n.contains("root/d") || n.ends_with("etc/new"))
            .collect();
        assert!(ours.len() >= 2, "{what}: {owners:?}");
        for (name, uid, gid) in ours {
            assert_eq!((*uid, *gid), (0, 0), "{what}: {name}");
        }
    }
    berth.ok(&["commit", "made", "committed"]);
    let out = berth.ok(&[
        "run",
        "--rm",
        "committed",
        "ls",
        "-lnd",
        "/etc/new",
        "/root/d/in",
    ]);
    for line in out.lines() {
        let owner: Vec<&str> = line.split_whitespace().skip(2).take(2).collect();
        assert_eq!(
            owner,
            ["0", "0"],
            "the image has the container's ids: {out}"
        );
    }
}

/// A working directory berth makes (and the directories above it) is the container's root's,
/// as Docker makes it with userns-remap.
#[test]
fn a_missing_working_directory_is_the_containers_roots() {
    need_root!();
    let berth = Berth::new();
    let out = berth.ok(&[
        "run",
        "--rm",
        "--userns",
        "auto",
        "-w",
        "/made/here",
        IMAGE,
        "sh",
        "-c",
        "touch /made/x && ls -lnd /made /made/here",
    ]);
    assert_eq!(out.lines().count(), 2, "{out}");
    for line in out.lines() {
        let owner: Vec<&str> = line.split_whitespace().skip(2).take(2).collect();
        assert_eq!(owner, ["0", "0"], "{out}");
    }
}

/// The API takes the mode as `HostConfig.UsernsMode`, and shows it back with the mapping.
#[test]
fn the_api_takes_usernsmode_auto() {
    need_root!();
    let Some(service) = berth_harness::api::Service::start() else {
        return;
    };
    let body = format!(
        r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{{"UsernsMode":"auto:size=4096"}}}}"#
    );
    let ran = service.curl(&[
        "-sf",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        &body,
        "http://d/containers/create?name=viaapi",
    ]);
    assert!(ran.success(), "create: {} {}", ran.stdout, ran.stderr);
    let mode = service.docker_ok(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", "viaapi"]);
    assert_eq!(mode, "auto:size=4096");
    let v = service.berth.inspect("viaapi");
    let map = v["HostConfig"]["IDMappings"]["UidMap"][0]
        .as_str()
        .unwrap_or_default();
    assert!(map.starts_with("0:") && map.ends_with(":4096"), "{v}");
}

/// The container's root must be able to reach its root filesystem: a data root others cannot
/// search is refused at create, naming it, rather than failing the start with a bare EACCES.
#[test]
fn a_data_root_the_containers_root_cannot_reach_is_named() {
    use std::os::unix::fs::PermissionsExt;
    need_root!();
    let berth = Berth::new();
    let mode = |m| std::fs::set_permissions(berth.root(), std::fs::Permissions::from_mode(m));
    mode(0o700).expect("chmod");
    let ran = berth.run(&["run", "--rm", "--userns", "auto", IMAGE, "true"]);
    mode(0o755).expect("chmod");
    assert_eq!(ran.status.code(), Some(125), "{}", ran.stderr);
    let root = berth.root().to_string_lossy().into_owned();
    assert!(
        ran.stderr.contains(&format!("{root} is not searchable")),
        "{}",
        ran.stderr
    );
    assert!(berth.ids().is_empty(), "nothing made");
    berth.ok(&["run", "--rm", "--userns", "auto", IMAGE, "true"]);
}

/// A container joining another's user namespace gets its files shifted as that namespace maps
/// them: its root owns its image's files too.
#[test]
fn joining_a_user_namespace_shifts_the_joiners_files_alike() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run", "-d", "--name", "owner", "--userns", "auto", IMAGE, "sleep", "1000",
    ]);
    let theirs = berth.ok(&["exec", "owner", "cat", "/proc/self/uid_map"]);
    // First sharing the owner's pid namespace too.
    let out = berth.ok(&[
        "run",
        "--rm",
        "--userns",
        "container:owner",
        "--pid",
        "container:owner",
        "--network",
        "container:owner",
        IMAGE,
        "sh",
        "-c",
        "echo x >> /etc/passwd && ls -ln /etc/passwd && cat /proc/self/uid_map",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    let owner: Vec<&str> = lines[0].split_whitespace().skip(2).take(2).collect();
    assert_eq!(owner, ["0", "0"], "{out}");
    assert_eq!(uid_map(lines[1]), uid_map(&theirs), "{out}");
    // A pid namespace of its own in the joined user namespace: the init makes it after the
    // join, so that namespace owns it and /proc mounts (EPERM before, as the runtime made it
    // first, owned by the host's).
    let out = berth.ok(&[
        "run",
        "--rm",
        "--userns",
        "container:owner",
        "--network",
        "container:owner",
        IMAGE,
        "sh",
        "-c",
        "echo $$; cat /proc/self/uid_map; ls /proc | grep -c '^[0-9]'",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "pid 1 of its own pid namespace: {out}");
    assert_eq!(uid_map(lines[1]), uid_map(&theirs), "{out}");
    // Its /proc is its pid namespace's (sh, ls, grep at most), never the host's bound in.
    let pids: usize = lines[2].parse().unwrap_or(usize::MAX);
    assert!(
        pids <= 4,
        "{pids} processes in its /proc: the host's? {out}"
    );
}

/// A range written by a create that died before the container's record (no record, nobody
/// holding the file's lock) is free; one whose create is still at work is not.
#[test]
fn a_dead_creates_range_is_free_and_a_live_ones_is_not() {
    need_root!();
    let berth = Berth::new();
    let range = |name: &str| {
        create_auto(&berth, name);
        berth.inspect(name)["HostConfig"]["IDMappings"]["UidMap"][0]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let first = range("probe1");
    berth.ok(&["rm", "probe1"]);
    let claim = |id: char| {
        let dir = berth
            .root()
            .join("containers")
            .join(id.to_string().repeat(64));
        std::fs::create_dir_all(&dir).expect("dir");
        let host: u64 = first
            .split(':')
            .nth(1)
            .and_then(|h| h.parse().ok())
            .expect(&first);
        let path = dir.join("userns");
        std::fs::write(&path, format!(r#"{{"host_id":{host},"size":2000}}"#)).expect("write");
        std::fs::File::open(path).expect("open")
    };
    let dead = claim('d');
    drop(dead);
    assert_eq!(
        range("probe2"),
        first,
        "a dead create's range is taken again"
    );
    berth.ok(&["rm", "probe2"]);
    std::fs::remove_dir_all(berth.root().join("containers").join("d".repeat(64))).expect("rm");
    let live = claim('e');
    live.lock().expect("flock");
    assert_ne!(range("probe3"), first, "a live create's range is not");
    drop(live);
    std::fs::remove_dir_all(berth.root().join("containers").join("e".repeat(64))).expect("rm");
}

/// `default-userns` in the configuration is Docker's userns-remap: a container that names no
/// `--userns` gets a range of its own; `--userns host`, a privileged container and one sharing
/// the host's network stay in the host's.
#[test]
fn the_configurations_default_userns_is_userns_remap() {
    need_root!();
    let berth = Berth::new();
    let config = berth.root().join("config.toml");
    std::fs::write(&config, "default-userns = \"auto\"\n").expect("config");
    let run = |args: &[&str]| {
        let mut command = berth.command();
        command
            .env("BERTH_CONFIG", &config)
            .args(["run", "--rm"])
            .args(args)
            .args([IMAGE, "cat", "/proc/self/uid_map"])
            .stdin(std::process::Stdio::null());
        let ran = run_with_timeout(command, COMMAND_TIMEOUT);
        assert!(ran.success(), "{args:?}: {}", ran.stderr);
        uid_map(&ran.stdout)
    };
    let (inside, host, count) = run(&[]);
    assert_eq!((inside, count), (0, 65_535));
    assert_ne!(host, 0);
    let identity = (0, 0, 4_294_967_295);
    assert_eq!(run(&["--userns", "host"]), identity);
    assert_eq!(run(&["--privileged"]), identity);
    assert_eq!(run(&["--network", "host"]), identity);
    assert_eq!(run(&["--userns", "auto:size=3000"]).2, 3000);
    std::fs::write(&config, "default-userns = \"host\"\n").expect("config");
    let mut command = berth.command();
    command.env("BERTH_CONFIG", &config).args(["ps"]);
    let ran = run_with_timeout(command, COMMAND_TIMEOUT);
    assert!(!ran.success(), "a bad default-userns is refused");
    assert!(ran.stderr.contains("default-userns"), "{}", ran.stderr);
}

/// A container with a user namespace of its own mounts its image's layers through longer paths
/// (an idmapped view under its directory) than the image store's, so it does without the
/// image's init layer, which create measures on the store's paths. In a data root of ~915
/// characters a one-layer image with its init layer fits one page of mount options by the
/// store's paths and not by the view's: such a container was made (its record said
/// init_layer) and then could never start (an adversary helper's finding).
#[test]
fn a_user_namespace_container_does_without_the_init_layer_it_could_not_mount() {
    need_root!();
    let base = tempfile::Builder::new()
        .prefix("berth-long-")
        .tempdir()
        .expect("temp dir");
    let mut root = base.path().to_path_buf();
    while root.as_os_str().len() < 915 - 11 {
        root.push("d".repeat(60.min(915 - 11 - root.as_os_str().len()).max(1)));
    }
    root.push("data-root");
    std::fs::create_dir_all(&root).expect("the long data root");
    berth_harness::image::import_image(&root, IMAGE);
    let berth = |args: &[&str]| {
        let mut command = Command::new(berth_harness::image::berth_bin());
        command
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdin(std::process::Stdio::null());
        run_with_timeout(command, COMMAND_TIMEOUT)
    };
    // The image's first container learns its init layer; the next ones may stack it.
    let ran = berth(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    assert!(ran.success(), "{}", ran.stderr);
    let ran = berth(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    assert!(
        ran.success(),
        "the init layer fits by the store's paths: {}",
        ran.stderr
    );
    let ran = berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns",
        "private",
        IMAGE,
        "cat",
        "/proc/self/uid_map",
    ]);
    assert!(ran.success(), "{}", ran.stderr);
    assert_ne!(uid_map(&ran.stdout).1, 0, "a range of its own");
    let ids = berth(&["ps", "-aq"]);
    assert_eq!(ids.stdout.trim(), "", "nothing left");
}
