//! A program on the slave side of a real pseudo-terminal whose master the test holds: what
//! it writes is collected, what the test types reaches it as a person's keys would, and the
//! window can be resized (`run -ti`, `attach`, `exec -t`, through berth or the docker CLI).

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};

use crate::eventually;

pub struct Terminal {
    master: File,
    output: Arc<Mutex<Vec<u8>>>,
    /// How far [`Terminal::expect`] has consumed the output.
    pub seen: usize,
    child: Child,
    /// Set once the reader has taken everything the program wrote (EOF or EIO on the master).
    drained: Arc<AtomicBool>,
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
    /// Spawns `command` with its stdin, stdout and stderr on a new pty of `rows` x `cols`.
    pub fn spawn(mut command: Command, rows: u16, cols: u16) -> Terminal {
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
        command
            .stdin(slave.try_clone().expect("slave fd"))
            .stdout(slave.try_clone().expect("slave fd"))
            .stderr(slave);
        let child = command.spawn().expect("spawning a program on the pty");
        drop(command); // our copies of the slave: EOF on the master once the program is gone
        let master = File::from(master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("master fd");
        let sink = Arc::clone(&output);
        let drained = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&drained);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every slave fd is closed.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            done.store(true, Ordering::Release);
        });
        Terminal {
            master,
            output,
            seen: 0,
            child,
            drained,
        }
    }

    pub fn send(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .expect("writing to the pty");
    }

    pub fn text_since(&self, from: usize) -> String {
        let out = self.output.lock().unwrap();
        String::from_utf8_lossy(&out[from.min(out.len())..]).into_owned()
    }

    /// Waits until `want` appears in the output after what earlier waits consumed.
    pub fn expect(&mut self, want: &str) {
        let from = self.seen;
        let at = eventually(&format!("{want:?} on the terminal"), || {
            self.text_since(from).find(want)
        });
        self.seen = from + at + want.len();
    }

    pub fn resize(&self, rows: u16, cols: u16) {
        tcsetwinsize(&self.master, winsize(rows, cols)).expect("resizing the pty");
    }

    /// Waits for the program to exit, then for the reader to take what it wrote last (a
    /// program's last words, `read escape sequence`, can still be in the pty when it is
    /// reaped). A process that kept the terminal open past the program is waited for a
    /// while only: what the program wrote is in by then.
    pub fn exit_status(&mut self) -> ExitStatus {
        let status = eventually("the program on the terminal to exit", || {
            self.child.try_wait().expect("try_wait")
        });
        let until = Instant::now() + crate::scaled(Duration::from_secs(2));
        while !self.drained.load(Ordering::Acquire) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        status
    }

    /// The program's pid (to kill it as a crash would).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
