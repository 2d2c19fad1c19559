//! Black-box tests of `berth build`. A corpus of Dockerfiles is built by berth and by buildah
//! (`buildah bud`, the reference) from the same context and the same busybox image, and the
//! two images' configs (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels,
//! StopSignal, Healthcheck, Shell, OnBuild) and file trees (names, types, modes, owners,
//! contents, whiteouts applied) must agree. Then, in build/, what only berth is checked for:
//! the layer cache (cache.rs), bad and hostile input and stopped builds (input.rs), heredocs,
//! secrets, ONBUILD and contexts (features.rs), `diff` and `commit` (commit.rs).
//!
//! Needs root, `cargo build -p berth` beforehand, and buildah for the comparisons.

#[path = "build/cache.rs"]
mod cache;
#[path = "build/commit.rs"]
mod commit;
#[path = "build/features.rs"]
mod features;
#[path = "build/input.rs"]
mod input;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use berth_harness::image::Berth;
use berth_harness::{have, need_root, run_with_timeout, target_dir, Ran, COMMAND_TIMEOUT};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;
/// Writes a context: `path` -> content; a path ending in `/` is a directory, a content
/// starting with `-> ` a symlink to the rest.
fn context(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().expect("context dir");
    for (path, content) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().expect("parent")).expect("context parent");
        if path.ends_with('/') {
            fs::create_dir_all(&p).expect("context dir");
        } else if let Some(target) = content.strip_prefix("-> ") {
            symlink(target, &p).expect("context link");
        } else {
            fs::write(&p, content).expect("context file");
        }
    }
    dir
}

/// One entry of an image's flattened tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    /// SHA-256 of a file, a link's target.
    content: String,
}

/// An image read from its docker-archive: the config document and the tree.
struct Image {
    config: Value,
    tree: BTreeMap<String, Entry>,
}

/// The members of a tar file, by name.
fn members(tar: &Path) -> BTreeMap<String, Vec<u8>> {
    let file = fs::File::open(tar).unwrap_or_else(|e| panic!("open {}: {e}", tar.display()));
    let mut archive = tar::Archive::new(file);
    let mut out = BTreeMap::new();
    for entry in archive.entries().expect("archive entries") {
        let mut entry = entry.expect("archive entry");
        let name = entry.path().expect("entry path").display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("entry bytes");
        out.insert(name, bytes);
    }
    out
}

/// The config and the layers of a docker-archive, applied in order as a runtime would.
fn read_archive(tar: &Path) -> Image {
    let files = members(tar);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).expect("manifest");
    let config_name = manifest[0]["Config"].as_str().expect("Config");
    let config: Value = serde_json::from_slice(&files[config_name]).expect("config");
    let mut tree = BTreeMap::new();
    for layer in manifest[0]["Layers"].as_array().expect("Layers") {
        let bytes = &files[layer.as_str().expect("layer name")];
        apply_layer(&mut tree, bytes);
    }
    Image { config, tree }
}

fn apply_layer(tree: &mut BTreeMap<String, Entry>, bytes: &[u8]) {
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().expect("layer entries") {
        let mut entry = entry.expect("layer entry");
        let path = entry.path().expect("path").display().to_string();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        let under = |p: &str, d: &str| d.is_empty() || p.starts_with(&format!("{d}/"));
        if name == ".wh..wh..opq" {
            tree.retain(|p, _| !under(p, dir) || p == dir);
            continue;
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            let gone = if dir.is_empty() {
                gone.to_string()
            } else {
                format!("{dir}/{gone}")
            };
            tree.retain(|p, _| p != &gone && !under(p, &gone));
            continue;
        }
        if path.is_empty() {
            continue;
        }
        let h = entry.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Regular => 'f',
            other => format!("{other:?}").chars().next().unwrap_or('?'),
        };
        let content = match kind {
            'l' | 'h' => entry
                .link_name()
                .ok()
                .flatten()
                .map(|l| l.display().to_string())
                .unwrap_or_default(),
            'f' => {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut data).expect("file data");
                format!("{:x}", Sha256::digest(&data))
            }
            _ => String::new(),
        };
        let e = Entry {
            kind,
            mode: h.mode().expect("mode") & 0o7777,
            uid: h.uid().expect("uid"),
            gid: h.gid().expect("gid"),
            content,
        };
        // A directory's later entry changes its attributes, not what is below it.
        if kind != 'd' {
            tree.retain(|p, _| !under(p, &path));
        }
        tree.insert(path, e);
    }
}

/// buildah with a private store (vfs) holding the test image as `busybox`, once per process.
struct Buildah {
    dir: PathBuf,
}

fn buildah() -> Option<&'static Buildah> {
    static BUILDAH: OnceLock<Option<Buildah>> = OnceLock::new();
    BUILDAH
        .get_or_init(|| {
            if !have("buildah") {
                return None;
            }
            let base = target_dir().join("berth-harness");
            remove_dead(&base);
            let dir = base.join(format!("buildah-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("buildah store");
            let b = Buildah { dir };
            let berth = Berth::new();
            let tar = b.dir.join("busybox.tar");
            berth.ok(&["save", "-o", &tar.to_string_lossy(), "busybox:latest"]);
            b.ok(&["pull", "-q", &format!("docker-archive:{}", tar.display())]);
            Some(b)
        })
        .as_ref()
}

/// Stores of test processes that have ended.
fn remove_dead(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("buildah-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

impl Buildah {
    fn run(&self, args: &[&str]) -> Ran {
        let mut cmd = Command::new("buildah");
        cmd.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        run_with_timeout(cmd, COMMAND_TIMEOUT)
    }

    fn ok(&self, args: &[&str]) -> String {
        let ran = self.run(args);
        assert!(
            ran.success(),
            "buildah {args:?} failed:\n{}\n{}",
            ran.stdout,
            ran.stderr
        );
        ran.stdout
    }

    /// `buildah bud` of `ctx` (Docker's format, runc, no pulls), read back as an image.
    fn build(&self, ctx: &Path, flags: &[&str]) -> Image {
        let name = format!("t{}", berth_harness::unique("b").replace('-', ""));
        let mut args = vec![
            "bud",
            "--runtime",
            "/usr/sbin/runc",
            "--pull-never",
            "--format",
            "docker",
            "-q",
        ];
        args.extend_from_slice(&["-t", &name]);
        args.extend_from_slice(flags);
        let ctx_arg = ctx.to_string_lossy();
        args.push(&ctx_arg);
        self.ok(&args);
        let tar = self.dir.join(format!("{name}.tar"));
        self.ok(&[
            "push",
            "-q",
            &name,
            &format!("docker-archive:{}:{name}:latest", tar.display()),
        ]);
        let image = read_archive(&tar);
        let _ = fs::remove_file(&tar);
        self.ok(&["rmi", "-f", &name]);
        image
    }
}

/// `berth build` of `ctx` into `name`, read back through `berth save`.
fn berth_build(berth: &Berth, ctx: &Path, name: &str, flags: &[&str]) -> Image {
    let mut args = vec!["build", "-q", "-t", name];
    args.extend_from_slice(flags);
    let ctx_arg = ctx.to_string_lossy();
    args.push(&ctx_arg);
    berth.ok(&args);
    let tar = berth.root().join(format!("{name}.tar"));
    berth.ok(&["save", "-o", &tar.to_string_lossy(), name]);
    let image = read_archive(&tar);
    let _ = fs::remove_file(&tar);
    image
}

/// buildah leaves the mount points of its RUN containers in the image (empty /etc/hostname,
/// /etc/hosts, /etc/resolv.conf, /run) when the base lacks them; BuildKit removes them, and so
/// does berth. They are left out of the comparison.
fn drop_mount_stubs(theirs: &mut Image, ours: &Image) {
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    for stub in ["etc/hostname", "etc/hosts", "etc/resolv.conf", "run"] {
        let empty = theirs
            .tree
            .get(stub)
            .is_some_and(|e| e.kind == 'd' || e.content == EMPTY);
        let under = format!("{stub}/");
        let only_stub = !theirs.tree.keys().any(|p| p.starts_with(&under));
        if empty && only_stub && !ours.tree.contains_key(stub) {
            theirs.tree.remove(stub);
        }
    }
}

/// The config fields the comparison covers; buildah's own label left out.
const FIELDS: [&str; 12] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
];

fn config_fields(image: &Image) -> BTreeMap<&'static str, Value> {
    let config = &image.config["config"];
    FIELDS
        .iter()
        .map(|f| {
            let mut v = config.get(*f).cloned().unwrap_or(Value::Null);
            if let Some(labels) = v.as_object_mut() {
                labels.remove("io.buildah.version");
            }
            let empty = v.as_object().is_some_and(|o| o.is_empty())
                || v.as_array().is_some_and(|a| a.is_empty())
                || v.as_str() == Some("");
            (*f, if empty { Value::Null } else { v })
        })
        .collect()
}

/// Builds `dockerfile` with `files` under berth and buildah and compares what they made.
fn same_as_buildah(dockerfile: &str, files: &[(&str, &str)], flags: &[&str]) -> Option<Image> {
    let mut all = files.to_vec();
    all.push(("Dockerfile", dockerfile));
    let ctx = context(&all);
    same_as_buildah_in(ctx.path(), flags)
}

/// Builds the context `ctx` under berth and buildah and compares what they made; berth's image.
fn same_as_buildah_in(ctx: &Path, flags: &[&str]) -> Option<Image> {
    let Some(reference) = buildah() else {
        berth_harness::skipping(format_args!("needs buildah"));
        return None;
    };
    let berth = Berth::new();
    let ours = berth_build(&berth, ctx, "built", flags);
    let mut theirs = reference.build(ctx, flags);
    drop_mount_stubs(&mut theirs, &ours);
    assert_eq!(
        config_fields(&ours),
        config_fields(&theirs),
        "image config differs from buildah's"
    );
    let differ: Vec<String> = ours
        .tree
        .keys()
        .chain(theirs.tree.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|p| ours.tree.get(*p) != theirs.tree.get(*p))
        .map(|p| {
            format!(
                "{p}: berth {:?}, buildah {:?}",
                ours.tree.get(p),
                theirs.tree.get(p)
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "file trees differ from buildah's:\n{}",
        differ.join("\n")
    );
    Some(ours)
}

#[test]
fn config_instructions_match_buildah() {
    need_root!();
    let dockerfile = r#"
FROM busybox
ARG VERSION=1.0
ARG GIVEN
ENV APP=/opt/app PATH=/opt/app/bin:$PATH
ENV OLD form with spaces
LABEL org.example.version=$VERSION "quoted key"="a value" given=${GIVEN:-none}
LABEL multi=1 \
      line=2
EXPOSE 80 53/udp 8080/tcp
VOLUME ["/data", "/logs"]
VOLUME /cache
USER user:staff
WORKDIR $APP/work
WORKDIR sub
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 CMD wget -q -O- localhost || exit 1
ENTRYPOINT exec echo entry
CMD ["--flag", "${APP}"]
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered
"#;
    same_as_buildah(dockerfile, &[], &["--build-arg", "GIVEN=yes"]);
}

#[test]
fn run_changes_match_buildah() {
    need_root!();
    let dockerfile = r#"
FROM busybox
RUN rm /bin/vi && mkdir -p /x/y && echo hello > /x/y/z && chmod 0640 /x/y/z && chown 1000:50 /x/y/z
RUN rm -rf /home && mkdir /home && touch /home/new && ln -s /x/y/z /home/link && ln /x/y/z /x/hard
RUN ["/bin/sh", "-c", "echo exec form > /exec"]
WORKDIR /made/by/workdir
USER 1000
WORKDIR /tmp/mine
RUN touch mine
"#;
    same_as_buildah(dockerfile, &[], &[]);
}

/// The build's `--add-host`, `--shm-size` and `--ulimit` reach every RUN step (its /etc/hosts,
/// /dev/shm, rlimits) as under buildah; `--rm` and `--force-rm` are taken, as Docker's legacy
/// builder and BuildKit take them (berth keeps no step's container either way; buildah takes
/// them only with --layers).
#[test]
fn run_steps_get_the_builds_hosts_shm_and_ulimits_like_buildah() {
    need_root!();
    let dockerfile = r#"
FROM busybox
RUN awk '/myhost/ {print $1, $2}' /etc/hosts > /hosts && df -k /dev/shm | awk 'NR == 2 {print $2}' > /shm && ulimit -n > /nofile
"#;
    let flags = [
        "--add-host",
        "myhost:10.1.2.3",
        "--shm-size",
        "2m",
        "--ulimit",
        "nofile=512:512",
    ];
    let Some(image) = same_as_buildah(dockerfile, &[], &flags) else {
        return;
    };
    // Buildah made the same files; these are what it and berth wrote.
    for (path, text) in [
        ("hosts", "10.1.2.3 myhost\n"),
        ("shm", "2048\n"),
        ("nofile", "512\n"),
    ] {
        let sha = format!("{:x}", Sha256::digest(text.as_bytes()));
        assert_eq!(
            image.tree.get(path).map(|e| e.content.as_str()),
            Some(sha.as_str()),
            "{path}"
        );
    }
    let berth = Berth::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN true\n")]);
    berth_build(&berth, ctx.path(), "kept", &["--rm=false", "--force-rm"]);
    assert_eq!(berth.ok(&["ps", "-aq"]), "", "no step's container is left");
}

/// The legacy builder's limits of the RUN steps (`--memory`, `--cpu-shares`, `--cpuset-cpus`)
/// as under buildah, read in the step's own cgroups (a cgroup v1 host's files).
#[test]
fn run_steps_get_the_builds_limits_like_buildah() {
    need_root!();
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        berth_harness::skipping(format_args!("needs cgroup v1's memory and cpu hierarchies"));
        return;
    }
    let dockerfile = r#"
FROM busybox
RUN cd /sys/fs/cgroup && cat memory/memory.limit_in_bytes cpu/cpu.shares cpuset/cpuset.cpus > /limits
"#;
    let flags = [
        "--memory",
        "64m",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
    ];
    let Some(image) = same_as_buildah(dockerfile, &[], &flags) else {
        return;
    };
    let sha = format!("{:x}", Sha256::digest(b"67108864\n512\n0\n"));
    assert_eq!(
        image.tree.get("limits").map(|e| e.content.as_str()),
        Some(sha.as_str())
    );
    // What Docker's flags have no place for here: one line each.
    let berth = Berth::new();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN true\n")]);
    for flag in [
        &["--squash"][..],
        &["--cgroup-parent", "x"],
        &["--security-opt", "seccomp=unconfined"],
        &["--isolation", "hyperv"],
        &["--add-host", "no-address"],
    ] {
        let ran = berth.run(&[&["build"][..], flag, &[ctx.path().to_str().unwrap()]].concat());
        assert!(!ran.success(), "{flag:?}");
        assert_eq!(
            ran.stderr.trim().lines().count(),
            1,
            "{flag:?}: {}",
            ran.stderr
        );
    }
}

#[test]
fn copy_semantics_match_buildah() {
    need_root!();
    let dockerfile = r#"
FROM busybox
COPY file.txt /single
COPY file.txt /into/
COPY dir /dir-contents
COPY dir/ /dir-slash/
COPY *.md /docs/
COPY file.txt other.md /multi/
COPY --chown=user:staff file.txt /owned
COPY --chown=1000 dir /owned-dir/
COPY --chmod=0600 file.txt /private
COPY link-to-file /followed
COPY dir /existing/
WORKDIR /rel
COPY file.txt .
COPY file.txt sub/
"#;
    let files = [
        ("file.txt", "file\n"),
        ("other.md", "other\n"),
        ("readme.md", "readme\n"),
        ("dir/a", "a\n"),
        ("dir/nested/b", "b\n"),
        ("dir/link", "-> a"),
        ("link-to-file", "-> file.txt"),
    ];
    same_as_buildah(dockerfile, &files, &[]);
}

/// A COPY through a link that leads nowhere yet makes what the link names, inside the image
/// (the scoped MkdirAll of Docker's and buildah's copier), whether absolute or relative.
#[test]
fn copy_through_a_dangling_link_matches_buildah() {
    need_root!();
    let dockerfile = "
FROM busybox
RUN ln -s /made/by/copy /abs && ln -s made/rel /rel
COPY file.txt /abs/f
COPY file.txt /rel/sub/
";
    same_as_buildah(dockerfile, &[("file.txt", "file\n")], &[]);
}

#[test]
fn dockerignore_matches_buildah() {
    need_root!();
    let dockerfile = "FROM busybox\nCOPY . /ctx/\n";
    let files = [
        (".dockerignore", "*.log\n!keep.log\nbuild/\n**/tmp\n"),
        ("a.log", "x"),
        ("keep.log", "kept"),
        ("build/out", "x"),
        ("src/main.c", "int main;"),
        ("src/tmp/junk", "x"),
    ];
    same_as_buildah(dockerfile, &files, &[]);
}

#[test]
fn multi_stage_and_scratch_match_buildah() {
    need_root!();
    let dockerfile = r#"
FROM busybox AS builder
RUN mkdir /out && echo artefact > /out/bin && chmod 755 /out/bin && chown 1000:1000 /out/bin
FROM busybox AS unused
RUN exit 1
FROM scratch
COPY --from=builder /out/bin /bin/tool
COPY --from=0 /out /out
COPY --from=busybox /etc/passwd /etc/passwd
CMD ["/bin/tool"]
"#;
    same_as_buildah(dockerfile, &[], &[]);
}

#[test]
fn target_stops_at_its_stage_like_buildah() {
    need_root!();
    let dockerfile =
        "FROM busybox AS one\nRUN echo one > /one\nFROM one AS two\nRUN echo two > /two\n";
    let image = same_as_buildah(dockerfile, &[], &["--target", "one"]);
    if let Some(image) = image {
        assert!(image.tree.contains_key("one") && !image.tree.contains_key("two"));
    }
}

#[test]
fn add_unpacks_local_archives_like_buildah() {
    need_root!();
    let staging = context(&[("top/inner.txt", "inner\n"), ("top/deep/x", "x\n")]);
    let ctx = tempfile::tempdir().expect("ctx");
    for (name, flag) in [("plain.tar", ""), ("packed.tar.gz", "z")] {
        let status = Command::new("tar")
            .arg(format!("-c{flag}f"))
            .arg(ctx.path().join(name))
            .args(["--owner=7", "--group=8", "-C"])
            .arg(staging.path())
            .arg("top")
            .status()
            .expect("tar");
        assert!(status.success());
    }
    fs::write(ctx.path().join("notes.txt"), "not an archive\n").expect("notes");
    fs::set_permissions(
        ctx.path().join("notes.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let dockerfile =
        "FROM busybox\nADD plain.tar /plain/\nADD packed.tar.gz /packed\nADD notes.txt /notes/\n";
    fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
    if let Some(image) = same_as_buildah_in(ctx.path(), &[]) {
        assert!(
            image.tree.contains_key("packed/top/deep/x"),
            "the archive was not unpacked"
        );
    }
}

/// Docker's rules that buildah 1.28 does not follow, so berth is checked alone: a shell-form
/// CMD or ENTRYPOINT runs through the SHELL in force (BuildKit's `withShell`; buildah always
/// uses /bin/sh -c), and EXPOSE's protocol is lower-cased (moby's nat.ParsePortSpec).
#[test]
fn shell_form_uses_the_shell_and_expose_lowercases() {
    need_root!();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nSHELL [\"/bin/sh\", \"-ec\"]\nENTRYPOINT exec echo hi\nEXPOSE 8080/TCP\n",
    )]);
    let berth = Berth::new();
    let image = berth_build(&berth, ctx.path(), "shelled", &[]);
    let config = &image.config["config"];
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/bin/sh", "-ec", "exec echo hi"])
    );
    assert!(config["ExposedPorts"].get("8080/tcp").is_some(), "{config}");
}

/// `berth build` of `ctx` with its progress (stderr) and `-q`'s image ID (stdout).
fn build_progress(berth: &Berth, ctx: &Path, flags: &[&str]) -> Ran {
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(flags);
    let ctx_arg = ctx.to_string_lossy();
    args.push(&ctx_arg);
    let ran = berth.run(&args);
    assert!(
        ran.success(),
        "berth {args:?} failed:\n{}\n{}",
        ran.stdout,
        ran.stderr
    );
    ran
}

#[test]
fn entrypoint_drops_only_an_inherited_cmd_like_buildah() {
    need_root!();
    let base = "FROM busybox AS base\nCMD [\"from-base\"]\n";
    let own = format!("{base}FROM base\nCMD [\"mine\"]\nENTRYPOINT [\"entry\"]\n");
    if let Some(image) = same_as_buildah(&own, &[], &[]) {
        assert_eq!(image.config["config"]["Cmd"], serde_json::json!(["mine"]));
    }
    let inherited = format!("{base}FROM base\nENTRYPOINT [\"entry\"]\n");
    if let Some(image) = same_as_buildah(&inherited, &[], &[]) {
        assert_eq!(
            image.config["config"]
                .get("Cmd")
                .cloned()
                .unwrap_or(Value::Null),
            Value::Null
        );
    }
}
