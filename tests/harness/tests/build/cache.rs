//! The layer cache: what an unchanged rebuild, a changed file, build args and --no-cache run
//! again; layers made twice or not at all; the cache against garbage collection and builder
//! prune; system df's and system prune's build cache; SOURCE_DATE_EPOCH.

use std::fs;
use std::process::Command;

use berth_harness::image::Berth;
use berth_harness::{need_root, run_with_timeout, Ran, COMMAND_TIMEOUT};
use serde_json::Value;

use crate::{build_progress, context};

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
    // As the docker CLI prints it: the IDs system df lists, then the bytes.
    assert!(
        pruned.starts_with("Deleted build cache objects:\n"),
        "{pruned}"
    );
    let last = pruned.lines().last().unwrap_or_default();
    assert!(last.starts_with("Total reclaimed space: "), "{pruned}");
    assert!(!last.ends_with(" 0B"), "{pruned}");
    build_progress(&berth, ctx.path(), &["-q", "-t", "cached"]);
    assert_eq!(runs(&berth), 1, "the cache mount was pruned: one run since");
    let again = build_progress(&berth, ctx.path(), &[]);
    assert!(again.stderr.contains("CACHED"), "{}", again.stderr);
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

#[test]
fn garbage_collection_waits_for_a_running_build() {
    need_root!();
    let berth = Berth::new();
    // A base whose layer only its name keeps (a commit's, which no cache pins).
    berth.ok(&[
        "run",
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo base > /base",
    ]);
    berth.ok(&["commit", "src", "base:gc"]);
    berth.ok(&["rm", "src"]);
    let dockerfile = "FROM base:gc\n\
        RUN --mount=type=bind,target=/ctx echo sta\"\"rted; while [ ! -e /ctx/go ]; do sleep 0.05; done\n\
        RUN cat /base > /copied\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let log = ctx.path().join("build.log");
    let mut cmd = berth.command();
    cmd.args(["build", "-t", "after-gc", &ctx.path().to_string_lossy()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&log).expect("log"));
    let mut child = cmd.spawn().expect("berth build");
    berth_harness::eventually("the RUN step to start", || {
        fs::read_to_string(&log)
            .ok()?
            .contains(" started")
            .then_some(())
    });
    berth.ok(&["rmi", "base:gc"]);
    berth.ok(&["image", "prune", "-f"]);
    fs::write(ctx.path().join("go"), "").expect("go");
    let status = child.wait().expect("wait for the build");
    let err = fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{err}");
    assert_eq!(
        berth.ok(&["run", "--rm", "after-gc", "cat", "/copied"]),
        "base"
    );
}

/// `system df`'s Build Cache line: TOTAL, ACTIVE, SIZE, RECLAIMABLE.
fn cache_line(berth: &Berth) -> Vec<String> {
    let df = berth.ok(&["system", "df"]);
    let line = df
        .lines()
        .find_map(|l| l.strip_prefix("Build Cache"))
        .unwrap_or_else(|| panic!("no Build Cache line in:\n{df}"));
    line.split_whitespace().map(String::from).collect()
}

#[test]
fn system_df_counts_the_build_cache_and_system_prune_empties_it() {
    need_root!();
    let berth = Berth::new();
    assert_eq!(cache_line(&berth), ["0", "0", "0B", "0B"]);
    let dockerfile = "FROM busybox\n\
        RUN --mount=type=cache,target=/c head -c 100000 /dev/zero > /c/blob\n\
        RUN head -c 200000 /dev/zero > /layer\n\
        ENV A=1\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    build_progress(&berth, ctx.path(), &["-q", "-t", "sized"]);
    // Two records (the RUNs) and the cache mount; the second RUN's layer is the image's too
    // (counted with the images), the first made nothing: the mount's 100 kB are the size.
    let line = cache_line(&berth);
    assert_eq!(line[..2], ["3", "0"], "{line:?}");
    assert!(line[2].ends_with("kB") && line[2] == line[3], "{line:?}");
    berth.ok(&["rmi", "sized"]);
    let line = cache_line(&berth);
    assert!(
        line[2].starts_with("3") && line[2].ends_with("kB"),
        "{line:?}"
    );

    let pruned = berth.ok(&["system", "prune", "-f"]);
    assert!(
        pruned.contains("Deleted build cache objects:\n"),
        "{pruned}"
    );
    assert_eq!(cache_line(&berth), ["0", "0", "0B", "0B"]);
    assert!(!berth
        .root()
        .join("build/mounts")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some()));
}
