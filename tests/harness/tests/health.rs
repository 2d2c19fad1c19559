//! Docker's health checks through the berth binary: `--health-*` and `--no-healthcheck` on run,
//! the image's HEALTHCHECK (built here by `berth build`), the probes the monitor runs (a
//! passing one, a failing one, one past its timeout), `State.Health` and `Config.Healthcheck`
//! in inspect, `ps`'s status and `--filter health=`, and the docker CLI through the service
//! seeing the same. Intervals are short; every wait is a scaled deadline, never a timing.
//!
//! Needs root and `cargo build -p berth` beforehand; the service test needs the docker CLI.

use berth_harness::api::Service;
use berth_harness::image::{Berth, IMAGE};
use berth_harness::{eventually, need_root};
use serde_json::Value;

/// `inspect`'s State.Health once `cond` holds for it.
fn health_when(berth: &Berth, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    eventually(what, || {
        let health = berth.inspect(name)["State"]["Health"].clone();
        cond(&health).then_some(health)
    })
}

fn status(h: &Value) -> &str {
    h["Status"].as_str().unwrap_or("")
}

#[test]
fn a_passing_probe_makes_the_container_healthy() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "ok",
        "--health-cmd",
        "echo fine; exit 0",
        "--health-interval",
        "1s",
        IMAGE,
        "sleep",
        "300",
    ]);
    let config = &berth.inspect("ok")["Config"]["Healthcheck"];
    assert_eq!(
        config["Test"],
        serde_json::json!(["CMD-SHELL", "echo fine; exit 0"])
    );
    assert_eq!(config["Interval"], 1_000_000_000i64);
    assert!(config.get("Timeout").is_none(), "{config}");
    let h = health_when(&berth, "ok", "healthy", |h| status(h) == "healthy");
    assert_eq!(h["FailingStreak"], 0);
    let last = &h["Log"][h["Log"].as_array().map_or(0, Vec::len) - 1];
    assert_eq!(last["ExitCode"], 0);
    assert_eq!(last["Output"], "fine\n");
    assert!(
        last["Start"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{last}"
    );
    let ps = berth.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        ps.starts_with("ok Up ") && ps.ends_with(" (healthy)"),
        "{ps}"
    );
    // Stopped, its check is no longer watched: Docker's unhealthy. Started again, it starts
    // over (and its log goes on).
    berth.ok(&["stop", "-t", "0", "ok"]);
    assert_eq!(status(&berth.inspect("ok")["State"]["Health"]), "unhealthy");
    let logged = berth.inspect("ok")["State"]["Health"]["Log"].clone();
    berth.ok(&["start", "ok"]);
    // Kept until five newer results push it out (seconds away: a slow poll would still
    // see it, or the test fails for having waited too long, not on a timing).
    let last = logged.as_array().and_then(|l| l.last()).cloned();
    let kept = |h: &Value| {
        h["Log"]
            .as_array()
            .is_some_and(|l| l.iter().any(|e| Some(e) == last.as_ref()))
    };
    health_when(&berth, "ok", "healthy again, the old log kept", |h| {
        status(h) == "healthy" && h["FailingStreak"] == 0 && kept(h)
    });
    berth.ok(&["rm", "-f", "ok"]);
    // One event for each change; the probes themselves are execs, as Docker's are.
    let events =
        |filter: &str| berth.events(&[filter], Some("{{.Action}} {{.Actor.Attributes.name}}"));
    let changes = events("event=health_status");
    assert!(
        changes.starts_with("health_status: healthy ok\n"),
        "{changes}"
    );
    assert!(changes.ends_with("health_status: healthy ok"), "{changes}");
    assert!(events("event=exec_die").starts_with("exec_die ok"));
}

#[test]
fn a_failing_probe_turns_unhealthy_after_its_retries_and_logs_five() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "bad",
        "--health-cmd",
        "echo broken >&2; exit 3",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        IMAGE,
        "sleep",
        "300",
    ]);
    berth.ok(&["run", "-d", "--name", "plain", IMAGE, "sleep", "300"]);
    let ps = berth.ok(&[
        "ps",
        "--filter",
        "health=starting",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    // Starting until its second failure (unless the machine is slow enough to get there).
    if !ps.is_empty() {
        assert!(
            ps.starts_with("bad Up ") && ps.ends_with(" (health: starting)"),
            "{ps}"
        );
    }
    let h = health_when(&berth, "bad", "unhealthy", |h| status(h) == "unhealthy");
    assert!(h["FailingStreak"].as_i64().is_some_and(|n| n >= 2), "{h}");
    let last = &h["Log"][0];
    assert_eq!(last["ExitCode"], 3);
    assert_eq!(last["Output"], "broken\n");
    let h = health_when(&berth, "bad", "five results logged", |h| {
        h["FailingStreak"].as_i64().is_some_and(|n| n >= 6)
    });
    assert_eq!(h["Log"].as_array().map(Vec::len), Some(5), "{h}");
    let names = |filter: &str| berth.ok(&["ps", "--filter", filter, "--format", "{{.Names}}"]);
    assert_eq!(names("health=unhealthy"), "bad");
    assert_eq!(names("health=none"), "plain");
    assert_eq!(names("health=healthy"), "");
    let ps = berth.ok(&["ps", "--filter", "name=bad", "--format", "{{.Status}}"]);
    assert!(ps.ends_with(" (unhealthy)"), "{ps}");
    // Output past 4096 bytes is cut there, with Docker's "...".
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "long",
        "--health-cmd",
        "head -c 5000 /dev/zero | tr '\\0' x",
        "--health-interval",
        "1s",
        IMAGE,
        "sleep",
        "300",
    ]);
    let h = health_when(&berth, "long", "healthy", |h| status(h) == "healthy");
    assert_eq!(h["Log"][0]["Output"], format!("{}...", "x".repeat(4096)));
    berth.ok(&["rm", "-f", "long"]);
    let refused = berth.run(&["ps", "--filter", "health=sick"]);
    assert_eq!(refused.code(), Some(1));
    assert!(refused
        .stderr
        .contains("Unrecognised filter value for health: sick"));
    berth.ok(&["rm", "-f", "bad", "plain"]);
}

#[test]
fn a_probe_past_its_timeout_is_killed_and_fails_with_minus_one() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "echo waiting; sleep 600",
        "--health-interval",
        "1s",
        "--health-timeout",
        "1s",
        "--health-retries",
        "1",
        IMAGE,
        "sleep",
        "300",
    ]);
    let h = health_when(&berth, "slow", "unhealthy", |h| status(h) == "unhealthy");
    let last = &h["Log"][0];
    assert_eq!(last["ExitCode"], -1);
    assert_eq!(
        last["Output"],
        "Health check exceeded timeout (1s): waiting\n"
    );
    // Each probe is killed at its timeout: after two, at most the next one runs (they would
    // pile up otherwise).
    health_when(&berth, "slow", "two timed out probes", |h| {
        h["Log"].as_array().is_some_and(|l| l.len() >= 2)
    });
    let top = berth.ok(&["top", "slow"]);
    assert!(top.matches("sleep 600").count() <= 1, "{top}");
    berth.ok(&["rm", "-f", "slow"]);
}

#[test]
fn the_images_healthcheck_runs_unless_no_healthcheck() {
    need_root!();
    let berth = Berth::new();
    let ctx = tempfile::tempdir().expect("context");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nHEALTHCHECK --interval=1s --retries=7 CMD [\"sh\", \"-c\", \"echo from-image\"]\n"
        ),
    )
    .expect("Dockerfile");
    berth.ok(&[
        "build",
        "-q",
        "-t",
        "checked",
        &ctx.path().to_string_lossy(),
    ]);
    berth.ok(&["run", "-d", "--name", "img", "checked", "sleep", "300"]);
    // A flag overrides only its own field.
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "mixed",
        "--health-retries",
        "4",
        "checked",
        "sleep",
        "300",
    ]);
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        "checked",
        "sleep",
        "300",
    ]);
    let h = health_when(&berth, "img", "healthy", |h| status(h) == "healthy");
    assert_eq!(h["Log"][0]["Output"], "from-image\n");
    let mixed = &berth.inspect("mixed")["Config"]["Healthcheck"];
    assert_eq!(
        mixed["Test"],
        serde_json::json!(["CMD", "sh", "-c", "echo from-image"])
    );
    assert_eq!(
        (mixed["Retries"].as_i64(), mixed["Interval"].as_i64()),
        (Some(4), Some(1_000_000_000))
    );
    let off = berth.inspect("off");
    assert!(off["State"].get("Health").is_none(), "{}", off["State"]);
    assert_eq!(
        off["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["NONE"])
    );
    let refused = berth.run(&[
        "run",
        "--no-healthcheck",
        "--health-retries",
        "2",
        IMAGE,
        "true",
    ]);
    assert_eq!(refused.code(), Some(125));
    assert!(refused
        .stderr
        .contains("--no-healthcheck conflicts with --health-* options"));
    let none = berth.ok(&["ps", "--filter", "health=none", "--format", "{{.Names}}"]);
    assert_eq!(none, "off");
    // A commit keeps the container's health check, as Docker's does.
    berth.ok(&["commit", "mixed", "committed"]);
    let committed = berth.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Healthcheck}}",
        "committed",
    ]);
    let committed: Value = serde_json::from_str(&committed).expect("json");
    assert_eq!(&committed, mixed);
    berth.ok(&["rm", "-f", "img", "mixed", "off"]);
    berth.ok(&["rmi", "checked", "committed"]);
}

#[test]
fn the_docker_cli_through_the_service_sees_the_same_health() {
    need_root!();
    let Some(service) = Service::start() else {
        return;
    };
    let berth = &service.berth;
    service.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "--health-start-period",
        "1m",
        "--health-start-interval",
        "1s",
        IMAGE,
        "sleep",
        "300",
    ]);
    health_when(berth, "web", "healthy", |h| status(h) == "healthy");
    let status = "{{.State.Health.Status}} {{.State.Health.FailingStreak}}";
    assert_eq!(
        service.docker_ok(&["inspect", "-f", status, "web"]),
        "healthy 0"
    );
    let config = "{{json .Config.Healthcheck}}";
    // The same document (berth's `json` orders the keys; Go's keeps its struct's order).
    let parsed = |text: String| serde_json::from_str::<Value>(&text).expect("json");
    assert_eq!(
        parsed(service.docker_ok(&["inspect", "-f", config, "web"])),
        parsed(berth.ok(&["inspect", "-f", config, "web"]))
    );
    let test = service.docker_ok(&["inspect", "-f", "{{json .Config.Healthcheck.Test}}", "web"]);
    assert_eq!(test, r#"["CMD-SHELL","true"]"#);
    let ps = service.docker_ok(&[
        "ps",
        "--filter",
        "health=healthy",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(
        ps.starts_with("web Up ") && ps.ends_with(" (healthy)"),
        "{ps}"
    );
    service.docker_ok(&["rm", "-f", "web"]);
}

#[test]
fn compose_waits_for_a_service_to_be_healthy() {
    need_root!();
    if !berth_harness::have("docker-compose") {
        berth_harness::skipping(format_args!("needs docker-compose"));
        return;
    }
    let Some(service) = Service::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("project dir");
    let file = format!(
        "version: '2.4'\nservices:\n  db:\n    image: {IMAGE}\n    command: sleep 300\n    \
         healthcheck:\n      test: [\"CMD-SHELL\", \"test -e /tmp/ready || touch /tmp/ready; exit 0\"]\n      \
         interval: 1s\n      retries: 2\n  app:\n    image: {IMAGE}\n    command: sleep 300\n    \
         depends_on:\n      db:\n        condition: service_healthy\n"
    );
    std::fs::write(dir.path().join("docker-compose.yml"), file).expect("compose file");
    let compose = |args: &[&str]| service.compose(dir.path(), "hc", args);
    let up = compose(&["up", "-d"]);
    assert!(
        up.success(),
        "{}\n{}\n{}",
        up.stdout,
        up.stderr,
        service.log()
    );
    // `up` started app only once db was healthy.
    let db = service.docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", "hc_db_1"]);
    assert_eq!(db, "healthy");
    let app = service.docker_ok(&["inspect", "-f", "{{.State.Status}}", "hc_app_1"]);
    assert_eq!(app, "running");
    let down = compose(&["down", "-t", "0"]);
    assert!(down.success(), "{}\n{}", down.stdout, down.stderr);
}

/// A CMD-SHELL probe runs in the image's SHELL, as Docker's does (`Config.Shell`), and
/// `/bin/sh -c` without one.
#[test]
fn a_shell_probe_runs_in_the_images_shell() {
    need_root!();
    let berth = Berth::new();
    let ctx = tempfile::tempdir().expect("context");
    let dockerfile = format!(
        "FROM {IMAGE}\nSHELL [\"/bin/echo\", \"through\"]\nHEALTHCHECK --interval=1s CMD the-shell\n"
    );
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("Dockerfile");
    let context = ctx.path().to_string_lossy().into_owned();
    berth.ok(&["build", "-q", "-t", "shelled", &context]);
    berth.ok(&["run", "-d", "--name", "shelled", "shelled", "sleep", "300"]);
    let h = health_when(&berth, "shelled", "a probe", |h| h["Log"][0].is_object());
    assert_eq!(h["Log"][0]["Output"], "through the-shell\n", "{h}");
    let v = berth.inspect("shelled");
    assert_eq!(
        v["Config"]["Shell"],
        serde_json::json!(["/bin/echo", "through"])
    );
    berth.ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--health-cmd",
        "echo $0",
        "--health-interval",
        "1s",
        IMAGE,
        "sleep",
        "300",
    ]);
    let h = health_when(&berth, "plain", "a probe", |h| h["Log"][0].is_object());
    assert_eq!(h["Log"][0]["Output"], "/bin/sh\n", "{h}");
    berth.ok(&["rm", "-f", "shelled", "plain"]);
    berth.ok(&["rmi", "shelled"]);
}
