//! `run -ti` through a real pseudo-terminal: the container's exit code comes back, the window
//! size reaches the container and follows a resize, and Ctrl-P Ctrl-Q detaches.

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_harness::image::{Berth, IMAGE};
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};

use crate::{eventually, need_root};

/// `berth` running on the slave side of a pty whose master the test holds.
struct Terminal {
    master: File,
    output: Arc<Mutex<Vec<u8>>>,
    seen: usize,
    child: Child,
}

fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Terminal {
    fn spawn(berth: &Berth, args: &[&str], rows: u16, cols: u16) -> Terminal {
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        tcsetwinsize(&master, winsize(rows, cols)).expect("initial window size");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = File::options()
            .read(true)
            .write(true)
            .open(name.to_str().expect("pts name"))
            .expect("opening the pty's slave");
        let mut command = berth.command();
        command
            .args(args)
            .stdin(slave.try_clone().expect("slave fd"))
            .stdout(slave.try_clone().expect("slave fd"))
            .stderr(slave);
        let child = command.spawn().expect("spawning berth on the pty");
        drop(command); // our copies of the slave: EOF on the master once berth is gone
        let master = File::from(master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("master fd");
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every slave fd is closed.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            master,
            output,
            seen: 0,
            child,
        }
    }

    fn send(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .expect("writing to the pty");
    }

    fn text_since(&self, from: usize) -> String {
        let out = self.output.lock().unwrap();
        String::from_utf8_lossy(&out[from.min(out.len())..]).into_owned()
    }

    /// Waits until `want` appears in the output after what earlier waits consumed.
    fn expect(&mut self, want: &str) {
        let from = self.seen;
        let at = eventually(&format!("{want:?} on the terminal"), || {
            self.text_since(from).find(want)
        });
        self.seen = from + at + want.len();
    }

    fn resize(&self, rows: u16, cols: u16) {
        tcsetwinsize(&self.master, winsize(rows, cols)).expect("resizing the pty");
    }

    fn exit_status(&mut self) -> ExitStatus {
        eventually("berth to exit", || self.child.try_wait().expect("try_wait"))
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ti_exit_code_and_window_size() {
    need_root!();
    let berth = Berth::new();
    let mut term = Terminal::spawn(&berth, &["run", "-ti", "--rm", IMAGE, "sh"], 30, 100);
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
    let mut term = Terminal::spawn(
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
