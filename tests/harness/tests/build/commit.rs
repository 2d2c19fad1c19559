//! `berth diff` and `berth commit`, which share the builder's layer code.

use berth_harness::image::Berth;
use berth_harness::need_root;

use crate::{berth_build, context};

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
