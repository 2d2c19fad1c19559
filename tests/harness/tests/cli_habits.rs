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
