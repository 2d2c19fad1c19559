//! `run -ti` through a real pseudo-terminal: the container's exit code comes back, the window
//! size reaches the container and follows a resize, and Ctrl-P Ctrl-Q detaches.

use std::time::Duration;

use berth_harness::image::{Berth, IMAGE};
use berth_harness::pty::Terminal;

use crate::{eventually, need_root};

/// `berth <args>` on a new terminal.
fn spawn(berth: &Berth, args: &[&str], rows: u16, cols: u16) -> Terminal {
    let mut command = berth.command();
    command.args(args);
    Terminal::spawn(command, rows, cols)
}

#[test]
fn ti_exit_code_and_window_size() {
    need_root!();
    let berth = Berth::new();
    let mut term = spawn(&berth, &["run", "-ti", "--rm", IMAGE, "sh"], 30, 100);
    term.send("stty size; echo TERM=$TERM\n");
    term.expect("30 100");
    term.expect("TERM=xterm");

    term.resize(40, 120);
    let from = term.seen;
    eventually("the new size inside the container", || {
        term.send("stty size\n");
        std::thread::sleep(Duration::from_millis(300));
        term.text_since(from).contains("40 120").then_some(())
    });
    term.send("exit 5\n");
    assert_eq!(term.exit_status().code(), Some(5));
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_the_container_keeps_running() {
    need_root!();
    let berth = Berth::new();
    let mut term = spawn(
        &berth,
        &["run", "-ti", "--name", "detach", IMAGE, "sh"],
        24,
        80,
    );
    // Wait for the shell's answer, not the echo of what we typed: the echo can come from our
    // terminal before berth has put it in raw mode, and in cooked mode Ctrl-Q (IXON) is eaten.
    term.send("echo $((6*7))\n");
    term.expect("42");
    term.send("\x10\x11");
    let status = term.exit_status();
    assert_eq!(status.code(), Some(0), "detaching is a success");
    let state = &berth.inspect("detach")["State"];
    assert_eq!(state["Status"], "running", "{state}");
    let ps = berth.ok(&["ps", "--filter", "name=detach", "-q"]);
    assert!(!ps.is_empty(), "ps lists the detached container");
    // Still interactive after detaching: exec sees the shell.
    let out = berth.ok(&["exec", "detach", "ps"]);
    assert!(out.lines().any(|l| l.trim_end().ends_with("sh")), "{out}");
}
