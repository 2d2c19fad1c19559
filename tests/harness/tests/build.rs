//! Black-box tests of `berth build`. A corpus of Dockerfiles is built by berth and by buildah
//! (`buildah bud`, the reference) from the same context and the same busybox image, and the
//! two images' configs (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes, Labels,
//! StopSignal, Healthcheck, Shell, OnBuild) and file trees (names, types, modes, owners,
//! contents, whiteouts applied) must agree. Then what only berth is asked for: the layer cache,
//! and bad input (syntax errors, failing RUNs, sources outside the context).
//!
//! Needs root, `cargo build -p berth` beforehand, and buildah for the comparisons.

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

/// How many times the cache mount `runs` of the Dockerfiles below was appended to: one line
/// per RUN that ran.
fn runs(berth: &Berth) -> usize {
    let mounts = berth.root().join("build/mounts");
    fs::read_dir(&mounts)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("runs")).ok())
        .map(|t| t.lines().count())
        .sum()
}

#[test]
fn an_unchanged_rebuild_runs_nothing_and_a_changed_file_rebuilds_from_its_copy() {
    need_root!();
    let dockerfile = "FROM busybox\n\
        RUN --mount=type=cache,target=/c echo first >> /c/runs\n\
        COPY a.txt /a.txt\n\
        RUN --mount=type=cache,target=/c echo after-a >> /c/runs\n\
        COPY b.txt /b.txt\n\
        RUN --mount=type=cache,target=/c cat /a.txt /b.txt > /both && echo after-b >> /c/runs\n";
    let ctx = context(&[
        ("Dockerfile", dockerfile),
        ("a.txt", "a\n"),
        ("b.txt", "b\n"),
    ]);
    let berth = Berth::new();
    let id = |ran: &Ran| ran.stdout.trim().to_string();
    let first = build_progress(&berth, ctx.path(), &["-q"]);
    assert_eq!(runs(&berth), 3);
    let again = build_progress(&berth, ctx.path(), &["-q"]);
    assert_eq!(runs(&berth), 3, "an unchanged rebuild ran a RUN");
    assert_eq!(
        id(&again),
        id(&first),
        "an unchanged rebuild made another image"
    );
    let plain = build_progress(&berth, ctx.path(), &[]);
    assert_eq!(
        plain.stderr.matches("CACHED").count(),
        5,
        "{}",
        plain.stderr
    );

    fs::write(ctx.path().join("b.txt"), "b changed\n").expect("change b");
    let changed = build_progress(&berth, ctx.path(), &[]);
    assert_eq!(
        runs(&berth),
        4,
        "only the RUN after the changed COPY runs again"
    );
    assert_eq!(
        changed.stderr.matches("CACHED").count(),
        3,
        "{}",
        changed.stderr
    );
    berth.ok(&["tag", &id(&first), "first"]);
    let both = berth.ok(&["run", "--rm", "first", "cat", "/both"]);
    assert_eq!(both, "a\nb");

    build_progress(&berth, ctx.path(), &["--no-cache", "-q"]);
    assert_eq!(runs(&berth), 7, "--no-cache runs every RUN");
}

#[test]
fn build_args_reach_run_and_the_cache_key() {
    need_root!();
    let dockerfile = "FROM busybox\nARG WHO=nobody\nRUN echo \"hello $WHO\" > /greeting\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let berth = Berth::new();
    for (flags, want) in [
        (vec![], "hello nobody"),
        (vec!["--build-arg", "WHO=you"], "hello you"),
    ] {
        let mut args = vec!["-q", "-t", "greet"];
        args.extend(flags);
        build_progress(&berth, ctx.path(), &args);
        assert_eq!(
            berth.ok(&["run", "--rm", "greet", "cat", "/greeting"]),
            want
        );
    }
    let history = berth.ok(&["history", "--no-trunc", "greet"]);
    assert!(
        history.contains("RUN |1 WHO=you /bin/sh -c echo \"hello $WHO\" > /greeting # buildkit"),
        "{history}"
    );
}

#[test]
fn a_failing_run_shows_its_output_and_leaves_nothing() {
    need_root!();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo about-to-fail && exit 3\n",
    )]);
    let berth = Berth::new();
    let before = berth.ok(&["images", "-q"]);
    let ran = berth.run(&["build", "-t", "broken", &ctx.path().to_string_lossy()]);
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("about-to-fail"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("process \"/bin/sh -c echo about-to-fail && exit 3\" did not complete successfully: exit code: 3"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        berth.ok(&["images", "-q"]),
        before,
        "a failed build left an image"
    );
    let tmp: Vec<_> = fs::read_dir(berth.root().join("build/tmp"))
        .expect("build/tmp")
        .flatten()
        .collect();
    assert!(tmp.is_empty(), "a failed build left {tmp:?}");
}

#[test]
fn syntax_errors_name_the_file_line_and_instruction() {
    need_root!();
    let berth = Berth::new();
    for (text, want) in [
        (
            "FROM busybox\nFOO bar\n",
            "Dockerfile:2: unknown instruction: FOO",
        ),
        (
            "FROM busybox\nCOPY onlyone\n",
            "Dockerfile:2: COPY requires at least two arguments",
        ),
        (
            "RUN true\n",
            "Dockerfile:1: no build stage in current context",
        ),
        (
            "FROM busybox\nCOPY missing.txt /x\n",
            "\"/missing.txt\": not found",
        ),
        (
            "FROM busybox\nADD https://example.com/f /f\n",
            "ADD https://example.com/f: berth build does not download remote files",
        ),
    ] {
        let ctx = context(&[("Dockerfile", text)]);
        let ran = berth.run(&["build", "-q", &ctx.path().to_string_lossy()]);
        assert_eq!(ran.code(), Some(1), "{text:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(want), "{text:?}: {}", ran.stderr);
    }
}

#[test]
fn copy_sources_cannot_leave_the_context() {
    need_root!();
    let berth = Berth::new();
    for source in [
        "../../../../etc/hostname",
        "escape/hostname",
        "absolute",
        "escape-dir/",
    ] {
        let dockerfile = format!("FROM busybox\nCOPY {source} /stolen\n");
        let ctx = context(&[
            ("Dockerfile", &dockerfile),
            ("escape", "-> /etc"),
            ("escape-dir", "-> ../../../../../etc"),
            ("absolute", "-> /etc/hostname"),
        ]);
        let ran = berth.run(&["build", "-q", &ctx.path().to_string_lossy()]);
        assert_eq!(
            ran.code(),
            Some(1),
            "COPY {source} was allowed: {}",
            ran.stdout
        );
        assert!(ran.stderr.contains("not found"), "{source}: {}", ran.stderr);
    }
}

#[test]
fn destinations_resolve_inside_the_image() {
    need_root!();
    let name = berth_harness::unique("escaped");
    let outside = Path::new("/tmp").join(&name);
    // An image link pointing up and out, then a COPY and an ADD through it.
    let archive = tempfile::tempdir().expect("archive dir");
    let tar_path = archive.path().join("links.tar");
    let mut builder = tar::Builder::new(fs::File::create(&tar_path).expect("tar"));
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    link.set_uid(0);
    link.set_gid(0);
    builder
        .append_link(&mut link, "hop", "../../../../../../tmp")
        .expect("link entry");
    let mut file = tar::Header::new_gnu();
    file.set_size(4);
    file.set_mode(0o644);
    file.set_uid(0);
    file.set_gid(0);
    builder
        .append_data(&mut file, format!("hop/{name}-add"), &b"add\n"[..])
        .expect("file entry");
    builder.finish().expect("tar finish");
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\nRUN ln -s ../../../../tmp /up\nCOPY f /up/{name}\nADD links.tar /\n"
        ),
    )]);
    fs::write(ctx.path().join("f"), "copied\n").expect("f");
    fs::copy(&tar_path, ctx.path().join("links.tar")).expect("tar into context");
    let berth = Berth::new();
    let image = berth_build(&berth, ctx.path(), "contained", &[]);
    assert!(
        !outside.exists(),
        "COPY wrote {} on the host",
        outside.display()
    );
    assert!(
        !Path::new(&format!("/tmp/{name}-add")).exists(),
        "ADD wrote on the host"
    );
    assert!(
        image.tree.contains_key(&format!("tmp/{name}")),
        "COPY through the link missed the image's /tmp"
    );
    assert!(
        image.tree.contains_key(&format!("tmp/{name}-add")),
        "ADD through the link missed the image's /tmp"
    );
}

/// The diff IDs of an image, from `berth image inspect`.
fn layers(berth: &Berth, image: &str) -> Vec<Value> {
    let out = berth.ok(&["image", "inspect", image]);
    let v: Value = serde_json::from_str(&out).expect("inspect JSON");
    v[0]["RootFS"]["Layers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_run_that_changes_nothing_adds_no_layer() {
    need_root!();
    // The RUN's mount points (/etc/hostname, /c) are missing from the image: the runtime makes
    // them, and they, and /etc copied up for them, must not become a layer.
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,target=/c true\nRUN --network=none true\n",
    )]);
    let berth = Berth::new();
    build_progress(&berth, ctx.path(), &["-q", "-t", "nothing"]);
    assert_eq!(layers(&berth, "nothing"), layers(&berth, "busybox"));
}

#[test]
fn the_same_change_twice_gives_two_layers_that_still_mount() {
    need_root!();
    // Both COPYs make the same layer: overlayfs takes a directory once in a mount.
    let dockerfile = "FROM busybox\nCOPY a /a\nRUN rm /a\nCOPY a /a\nRUN cat /a > /b\n";
    let ctx = context(&[("Dockerfile", dockerfile), ("a", "twice\n")]);
    let berth = Berth::new();
    build_progress(&berth, ctx.path(), &["-q", "-t", "twice"]);
    let all = layers(&berth, "twice");
    assert_eq!(all.len(), layers(&berth, "busybox").len() + 4, "{all:?}");
    assert_eq!(all[all.len() - 2], all[all.len() - 4]);
    assert_eq!(berth.ok(&["run", "--rm", "twice", "cat", "/b"]), "twice");
}

#[test]
fn heredocs_run_and_copy() {
    need_root!();
    let dockerfile = "FROM busybox\n\
        ARG WHO=heredoc\n\
        RUN <<EOF\n\
        echo \"plain $WHO\" > /plain\n\
        echo second line >> /plain\n\
        EOF\n\
        RUN <<EOF\n\
        #!/bin/sh\n\
        echo script > /script\n\
        EOF\n\
        RUN cat <<A > /fed\n\
        fed by $WHO\n\
        A\n\
        COPY <<EOF /copied\n\
        expanded ${WHO}\n\
        EOF\n\
        COPY <<'EOF' /literal\n\
        kept $WHO\n\
        EOF\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let berth = Berth::new();
    build_progress(&berth, ctx.path(), &["-q", "-t", "docs"]);
    let cat = |path: &str| berth.ok(&["run", "--rm", "docs", "cat", path]);
    assert_eq!(cat("/plain"), "plain heredoc\nsecond line");
    assert_eq!(cat("/script"), "script");
    assert_eq!(cat("/fed"), "fed by heredoc");
    assert_eq!(cat("/copied"), "expanded heredoc");
    assert_eq!(cat("/literal"), "kept $WHO");
}

#[test]
fn secrets_reach_run_and_never_a_layer() {
    need_root!();
    let secret_dir = tempfile::tempdir().expect("secret dir");
    let secret = secret_dir.path().join("token");
    let value = format!("s3cret-{}", berth_harness::unique("v"));
    fs::write(&secret, &value).expect("secret");
    let dockerfile = "FROM busybox\n\
        RUN --mount=type=secret,id=token cp /run/secrets/token /copied-hash-only && md5sum /copied-hash-only > /sum && rm /copied-hash-only\n\
        RUN --mount=type=secret,id=token,target=/etc/tok test \"$(cat /etc/tok)\" != \"\"\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let berth = Berth::new();
    let src = format!("id=token,src={}", secret.display());
    build_progress(
        &berth,
        ctx.path(),
        &["-q", "-t", "secretive", "--secret", &src],
    );
    let tar = berth.root().join("secretive.tar");
    berth.ok(&["save", "-o", &tar.to_string_lossy(), "secretive"]);
    let bytes = fs::read(&tar).expect("saved image");
    assert!(
        !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
        "the secret is in the saved image"
    );
    let image = read_archive(&tar);
    assert!(image.tree.contains_key("sum") && !image.tree.contains_key("run/secrets/token"));
    let history = berth.ok(&["history", "--no-trunc", "secretive"]);
    assert!(!history.contains(&value));
}

#[test]
fn onbuild_triggers_run_in_the_child_and_are_not_inherited() {
    need_root!();
    let berth = Berth::new();
    let parent = context(&[(
        "Dockerfile",
        "FROM busybox\nONBUILD RUN echo triggered > /trig\nONBUILD COPY ctx.txt /from-child\n",
    )]);
    build_progress(&berth, parent.path(), &["-q", "-t", "parent"]);
    let child = context(&[("Dockerfile", "FROM parent\n"), ("ctx.txt", "child's\n")]);
    let image = berth_build(&berth, child.path(), "child", &[]);
    assert!(image.tree.contains_key("trig") && image.tree.contains_key("from-child"));
    assert_eq!(
        image.config["config"]
            .get("OnBuild")
            .cloned()
            .unwrap_or(Value::Null),
        Value::Null
    );
}

#[test]
fn contexts_from_stdin_tar_and_other_dockerfiles() {
    need_root!();
    let berth = Berth::new();
    // A Dockerfile on stdin, no context.
    let mut cmd = berth.command();
    cmd.args(["build", "-q", "-t", "stdin", "-"]);
    let ran = berth_harness::run_with_input(cmd, b"FROM busybox\nLABEL from=stdin\n");
    assert!(ran.success(), "{}", ran.stderr);
    // A tar context on stdin and as a file, with a Dockerfile under another name.
    let ctx = context(&[
        ("build/Custom", "FROM busybox\nCOPY data /data\n"),
        ("data", "in the tar\n"),
    ]);
    let tar = tempfile::NamedTempFile::new().expect("tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(tar.path())
        .arg("-C")
        .arg(ctx.path())
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success());
    let mut cmd = berth.command();
    cmd.args(["build", "-q", "-t", "tarstdin", "-f", "build/Custom", "-"]);
    let ran = berth_harness::run_with_input(cmd, &fs::read(tar.path()).expect("tar bytes"));
    assert!(ran.success(), "{}", ran.stderr);
    assert_eq!(
        berth.ok(&["run", "--rm", "tarstdin", "cat", "/data"]),
        "in the tar"
    );
    let iid = ctx.path().join("iid");
    berth.ok(&[
        "build",
        "-q",
        "-f",
        "build/Custom",
        "--iidfile",
        &iid.to_string_lossy(),
        &tar.path().to_string_lossy(),
    ]);
    let id = fs::read_to_string(&iid).expect("iidfile");
    assert!(id.starts_with("sha256:"), "{id}");
    // -f outside a directory context, relative to the current directory.
    let custom = ctx
        .path()
        .join("build/Custom")
        .to_string_lossy()
        .into_owned();
    berth.ok(&[
        "build",
        "-q",
        "-t",
        "dashf",
        "-f",
        &custom,
        &ctx.path().to_string_lossy(),
    ]);
}

#[test]
fn another_platform_is_ignored_with_a_warning() {
    need_root!();
    let ctx = context(&[(
        "Dockerfile",
        "FROM --platform=linux/s390x busybox AS other\nFROM --platform=$BUILDPLATFORM busybox\nCOPY --from=other /bin/true /t\n",
    )]);
    let berth = Berth::new();
    let ran = build_progress(&berth, ctx.path(), &[]);
    assert!(
        ran.stderr
            .contains("FROM --platform=linux/s390x: berth builds for the host's platform"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.matches("WARNING").count(), 1, "{}", ran.stderr);
}

#[test]
fn diff_lists_a_containers_changes_as_docker_does() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "--name",
        "changer",
        "busybox",
        "sh",
        "-c",
        "echo new > /new; rm /bin/vi; mkdir -p /tmp/d; echo x > /etc/added",
    ]);
    let out = berth.ok(&["diff", "changer"]);
    let want = "C /bin\nD /bin/vi\nC /etc\nA /etc/added\nA /new\nC /tmp\nA /tmp/d";
    assert_eq!(out, want, "the mount points the engine made are no changes");
    berth.ok(&["run", "--name", "untouched", "busybox", "true"]);
    assert_eq!(berth.ok(&["container", "diff", "untouched"]), "");
}

#[test]
fn commit_makes_an_image_of_a_containers_changes() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "source",
        "-e",
        "FROM_RUN=1",
        "-w",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "echo kept > /kept; rm /bin/vi; sleep 1000",
    ]);
    berth_harness::eventually("the container's change", || {
        berth
            .ok(&["diff", "source"])
            .contains("A /kept")
            .then_some(())
    });
    let id = berth.ok(&[
        "commit",
        "-a",
        "someone",
        "-m",
        "a message",
        "-c",
        "CMD [\"cat\", \"/kept\"]",
        "-c",
        "ENV ADDED=yes",
        "source",
        "committed:v1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        berth.inspect("source")["State"]["Status"],
        "running",
        "commit left the container paused"
    );
    assert_eq!(berth.ok(&["run", "--rm", "committed:v1"]), "kept");
    let env = berth.ok(&[
        "run",
        "--rm",
        "committed:v1",
        "sh",
        "-c",
        "echo $FROM_RUN $ADDED; pwd; ls /bin/vi || true",
    ]);
    assert_eq!(env, "1 yes\n/tmp");
    let image = berth_build(
        &berth,
        context(&[("Dockerfile", "FROM committed:v1\n")]).path(),
        "child",
        &[],
    );
    assert!(
        !image.tree.contains_key("etc/hostname"),
        "a mount point was committed"
    );
    let history = &image.config["history"];
    let last = &history[history.as_array().map_or(0, |h| h.len()) - 1];
    assert_eq!(
        (last["author"].as_str(), last["comment"].as_str()),
        (Some("someone"), Some("a message"))
    );
}

/// Starts `berth build` of a RUN that prints "started" and sleeps; returns it once it printed,
/// with the file its stderr goes to.
fn build_in_a_long_run(berth: &Berth, ctx: &Path) -> (std::process::Child, PathBuf) {
    let log = ctx.join("build.log");
    let mut cmd = berth.command();
    cmd.args(["build", &ctx.to_string_lossy()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&log).expect("log"));
    let child = cmd.spawn().expect("berth build");
    berth_harness::eventually("the RUN step to start", || {
        fs::read_to_string(&log)
            .ok()?
            .contains(" started")
            .then_some(())
    });
    (child, log)
}

fn long_run_context() -> TempDir {
    context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo started && sleep 1000\n",
    )])
}

fn build_dirs(berth: &Berth) -> Vec<String> {
    fs::read_dir(berth.root().join("build/tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("build-"))
        .collect()
}

#[test]
fn a_signal_cancels_the_build_and_leaves_nothing() {
    need_root!();
    let berth = Berth::new();
    let ctx = long_run_context();
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let (mut child, log) = build_in_a_long_run(&berth, ctx.path());
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal the build");
        let status = child.wait().expect("wait for the build");
        let err = fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(status.code(), Some(1), "{signal}: {err}");
        assert!(err.contains("the build was cancelled"), "{err}");
        assert!(
            build_dirs(&berth).is_empty(),
            "{signal} left {:?}",
            build_dirs(&berth)
        );
    }
}

#[test]
fn the_next_build_sweeps_what_a_killed_one_left() {
    need_root!();
    let berth = Berth::new();
    let ctx = long_run_context();
    let (mut child, _) = build_in_a_long_run(&berth, ctx.path());
    child.kill().expect("SIGKILL the build");
    child.wait().expect("wait for the build");
    assert_eq!(build_dirs(&berth).len(), 1, "the killed build's directory");
    let next = context(&[("Dockerfile", "FROM busybox\nRUN true\n")]);
    build_progress(&berth, next.path(), &["-q"]);
    assert!(
        build_dirs(&berth).is_empty(),
        "left {:?}",
        build_dirs(&berth)
    );
    // Dropping `berth` checks that no mount and no runtime state of the killed step is left.
}

#[test]
fn the_cache_outlives_its_images_until_builder_prune() {
    need_root!();
    let berth = Berth::new();
    let dockerfile = "FROM busybox\nRUN --mount=type=cache,target=/c echo ran >> /c/runs && echo layer > /layer\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    build_progress(&berth, ctx.path(), &["-q", "-t", "cached"]);
    berth.ok(&["rmi", "cached"]);
    berth.ok(&["image", "prune", "-f"]);
    build_progress(&berth, ctx.path(), &["-q", "-t", "cached"]);
    assert_eq!(runs(&berth), 1, "garbage collection took the cache's layer");
    let pruned = berth.ok(&["builder", "prune", "-f"]);
    assert!(pruned.starts_with("Total reclaimed space: "), "{pruned}");
    assert!(!pruned.ends_with(" 0B"), "{pruned}");
    build_progress(&berth, ctx.path(), &["-q", "-t", "cached"]);
    assert_eq!(runs(&berth), 1, "the cache mount was pruned: one run since");
    let again = build_progress(&berth, ctx.path(), &[]);
    assert!(again.stderr.contains("CACHED"), "{}", again.stderr);
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

#[test]
fn source_date_epoch_makes_builds_reproducible() {
    need_root!();
    let dockerfile =
        "FROM busybox\nCOPY data /data\nRUN touch -d \"2030-01-01 00:00:00\" /future && mkdir /made\n";
    let ctx = context(&[("Dockerfile", dockerfile), ("data", "same bytes\n")]);
    let berth = Berth::new();
    let touch = |when: &str| {
        let status = Command::new("touch")
            .args(["-d", when])
            .arg(ctx.path().join("data"))
            .status()
            .expect("touch");
        assert!(status.success());
    };
    let build = |epoch: Option<&str>| {
        let mut cmd = berth.command();
        cmd.args(["build", "-q", "--no-cache", &ctx.path().to_string_lossy()]);
        if let Some(e) = epoch {
            cmd.env("SOURCE_DATE_EPOCH", e);
        }
        run_with_timeout(cmd, COMMAND_TIMEOUT)
            .ok()
            .trim()
            .to_string()
    };
    touch("2029-01-01T00:00:00");
    let first = build(Some("1700000000"));
    touch("2029-06-01T00:00:00");
    assert_eq!(
        build(Some("1700000000")),
        first,
        "the same build with SOURCE_DATE_EPOCH differs"
    );
    assert_ne!(
        build(None),
        first,
        "without it the times are the files' own"
    );
}
