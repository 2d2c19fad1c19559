//! Black-box tests of `berth events`: the engine's event log, as `docker events` prints and
//! filters it, read back from a time and followed live.
//!
//! Needs root and `cargo build -p berth` beforehand. Each test has its own data root
//! ([`Berth`]), removed with everything in it when the test ends.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use berth_harness::image::{Berth, IMAGE};
use berth_harness::need_root;

/// The events of a container's life and of an exec, in order, as Docker names them, with
/// its exit code on `die` and the exec's on `exec_die`; filters by type, event and name.
#[test]
fn a_containers_life_is_in_the_log() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "-d", "--name", "ev", IMAGE, "sleep", "1000"]);
    assert_eq!(
        berth.run(&["exec", "ev", "sh", "-c", "exit 3"]).code(),
        Some(3)
    );
    berth.ok(&["rename", "ev", "ev2"]);
    berth.ok(&["stop", "-t", "0", "ev2"]);
    berth.ok(&["rm", "ev2"]);
    let format = "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}";
    let all = berth.events(&["type=container"], Some(format));
    let lines: Vec<&str> = all.lines().map(str::trim_end).collect();
    let want = [
        "create ev <no value>",
        "start ev <no value>",
        "exec_create: sh -c exit 3 ev <no value>",
        "exec_start: sh -c exit 3 ev <no value>",
        "exec_die ev 3",
        "rename ev2 <no value>",
        "die ev2 137",
        "stop ev2 <no value>",
        "destroy ev2 <no value>",
    ];
    assert_eq!(lines, want, "{all}");
    let dies = berth.events(&["event=die", "container=ev2"], None);
    assert_eq!(dies.lines().count(), 1, "{dies}");
    let line = dies.lines().next().unwrap_or_default();
    assert!(line.contains(" container die "), "{line}");
    assert!(
        line.ends_with("(exitCode=137, image=busybox:latest, name=ev2)"),
        "{line}"
    );
    let refused = berth.run(&["events", "--filter", "bogus=1"]);
    assert_eq!(refused.code(), Some(1), "{refused:?}");
}

/// Without `--since`, `events` shows what happens from now on, as it happens.
#[test]
fn events_follows_the_log_live() {
    need_root!();
    let berth = Berth::new();
    berth.ok(&["run", "--rm", IMAGE, "true"]);
    let mut follower = berth
        .command()
        .args([
            "events",
            "--filter",
            "event=start",
            "--format",
            "{{.Actor.Attributes.name}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth events");
    let out = follower.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // The follower may start reading after a run: containers are run until one is seen, and
    // what it prints is one of them.
    let mut names = Vec::new();
    let seen = loop {
        let name = format!("live{}", names.len());
        berth.ok(&["run", "--rm", "--name", &name, IMAGE, "true"]);
        names.push(name);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            break Some(line);
        }
        if names.len() == 60 {
            break None;
        }
    };
    let _ = follower.kill();
    let _ = follower.wait();
    let seen = seen.expect("a start event while 60 containers ran");
    assert!(names.contains(&seen), "{seen:?} is not one of {names:?}");
}
