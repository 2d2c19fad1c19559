//! Heredocs, secrets, ONBUILD, contexts from stdin and tar files, --platform.

use std::fs;

use berth_harness::image::Berth;
use berth_harness::need_root;
use serde_json::Value;

use crate::{berth_build, build_progress, context, read_archive};

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
    berth_harness::pack(ctx.path(), tar.path(), &["."]);
    let mut cmd = berth.command();
    cmd.args(["build", "-q", "-t", "tarstdin", "-f", "build/Custom", "-"]);
    let ran = berth_harness::run_with_input(cmd, &fs::read(tar.path()).expect("tar bytes"));
    assert!(ran.success(), "{}", ran.stderr);
    assert_eq!(
        berth.ok(&["run", "--rm", "tarstdin", "cat", "/data"]),
        "in the tar"
    );
    let kept = fs::read_dir(berth.root().join("build/context")).map_or(0, |d| d.count());
    assert_eq!(
        kept, 0,
        "a tar context's stat cache is kept, under a name used once"
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
