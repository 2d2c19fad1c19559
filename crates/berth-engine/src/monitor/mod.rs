//! The per-container monitor: `berth __monitor <id>`, one single-threaded process per running
//! container, detached from the CLI that spawned it (its own session; a subreaper for the
//! container's orphans). It creates and starts the container through berth-runtime, holds its
//! stdio (pipes or the pty master), writes the json-file log, serves attach/stop clients on
//! `<dir>/monitor.sock` (protocol in proto.rs), starts exec'd processes and relays them
//! (exec.rs: the engine's callers never fork nor enter a namespace), runs the health check's
//! probes (health.rs), records the exit, tears down, and applies the restart policy or `--rm`.
//!
//! Stack: an idle monitor waits in `poll` in `Run::serve`, and what the frames above it hold
//! stays dirty memory for the container's whole life; what lies below is given back a second
//! after the start (`berth_sys::process::drop_unused_stack`). So the work that needs a large
//! frame — the container's start, every 32 KiB buffer of output read — is in functions never
//! inlined into the loop or its callers (`#[inline(never)]`): with them inlined, the loop's
//! frames took 94 KiB (gdb on an idle monitor: serve 40, main_loop 42); now 30. (A client's
//! frames are read straight into its own buffer: no array on the stack at all.)

mod client;
mod exec;
mod health;
pub mod logfile;
pub mod proto;
mod reap;
mod run;
mod serve;
mod stdio;

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use crate::engine::Engine;

pub use run::main_loop;
pub use stdio::short_path as stdio_short_path;

/// Entry point of `berth __monitor <id>`: fd 0 is the spawning CLI's end of a socketpair (the
/// first client). Nothing of the container's is touched until that client speaks (`run` spawns
/// its monitor before the record exists; `start` speaks before spawning it); if it hangs up
/// first (its `run` failed), the monitor leaves at once, silently.
/// Returns the monitor's exit status.
pub fn main(engine: &Engine, id: &str) -> i32 {
    // Whatever the spawning CLI's caller left open (a CI pipe...) is not ours to hold for the
    // container's whole life: only 0, 1 and 2 were handed to us.
    let _ = berth_sys::fd::close_from_for_good(3);
    // glibc read the heap setting spawn gave us (lifecycle.rs) when this process started: it
    // is the monitor's alone, not that of what it spawns (a network's DNS server, slirp4netns,
    // fuse-overlayfs). Still one thread here, as the variable's removal needs.
    std::env::remove_var("GLIBC_TUNABLES");
    if let Err(e) = own_session() {
        eprintln!("berth monitor {id}: {e}");
        return 1;
    }
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let first = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => UnixStream::from(fd),
        Err(e) => {
            eprintln!("berth monitor {id}: no client socket on stdin: {e}");
            return 1;
        }
    };
    // While `run` makes the record (its start needs these first; for `start`, which spoke
    // already, they come now rather than later).
    berth_runtime::cgroup::find_host_setup();
    if !asked(&first) {
        return 0;
    }
    if let Err(e) = stdio::detach_own_stdio(&engine.containers.dir(id)) {
        eprintln!("berth monitor {id}: {e}");
        return 1;
    }
    match main_loop(engine, id, first) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth monitor {id}: {e}");
            1
        }
    }
}

/// Waits until the first client has sent something (true) or has hung up (false).
fn asked(first: &UnixStream) -> bool {
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::fd::AsRawFd;
    loop {
        match recv(first.as_raw_fd(), &mut [0u8; 1], MsgFlags::MSG_PEEK) {
            Ok(n) => return n > 0,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// The monitor leads a session of its own, without a controlling terminal: the spawning CLI
/// made it one (lifecycle.rs), or, started some other way, it makes one now. Never ignored: a
/// container left in the caller's session could type into the caller's terminal.
fn own_session() -> nix::Result<()> {
    let me = nix::unistd::getpid();
    if nix::unistd::getsid(None)? == me {
        return Ok(());
    }
    nix::unistd::setsid().map(drop)
}
