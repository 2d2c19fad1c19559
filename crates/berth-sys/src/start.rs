//! A program entry point without std's start-up, for berth-runc, which starts once per
//! container operation: `#![no_main]` and [`c_main!`].
//!
//! std's runtime set-up costs some twenty syscalls a start (a third of what `berth-runc kill`
//! makes), most of them for its stack-overflow message: glibc reads /proc/self/maps to find
//! the main thread's stack, then std maps an alternate signal stack and installs two
//! handlers, and unmaps it at exit. A runtime that lives for a command does without: a stack
//! overflow still faults on the kernel's guard gap (SIGSEGV), without std's message, and a
//! panic that would unwind out of `main` aborts. What the program relies on is kept, as std
//! does it: SIGPIPE ignored (a write to a closed pipe or socket fails rather than kills), and
//! descriptors 0-2 open (on /dev/null where the caller closed one), so that no file the program
//! opens takes their place. std reads the arguments itself (glibc hands them to its
//! `.init_array` hook), and `std::process::exit` flushes its stdout.

/// Defines the C `main` of a `#![no_main]` binary: [`prepare`], then `$main` (a `fn()`), then
/// `std::process::exit(0)` if it returns.
#[macro_export]
macro_rules! c_main {
    ($main:path) => {
        // SAFETY: the binary's one `main` symbol (it is #![no_main], so std defines none), with
        // C's signature; the C start-up calls it once, with arguments std reads on its own.
        #[unsafe(export_name = "main")]
        extern "C" fn c_main(
            _argc: ::std::ffi::c_int,
            _argv: *const *const ::std::ffi::c_char,
        ) -> ::std::ffi::c_int {
            $crate::start::prepare();
            $main();
            ::std::process::exit(0)
        }
    };
}

/// What a program started by [`c_main!`] keeps of std's start-up (std's own
/// `sanitize_standard_fds` and `reset_sigpipe`, which abort as this does when they cannot).
pub fn prepare() {
    // SAFETY: SIG_IGN installs no handler: no code of ours runs in signal context.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
        std::process::abort();
    }
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll reads and writes the three pollfds of a live local array, its length given.
    while unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } == -1 {
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            // A descriptor limit or a temporary shortage keeps poll from working: ask each.
            Some(libc::EINVAL | libc::EAGAIN | libc::ENOMEM) => {
                for fd in 0..3 {
                    // SAFETY: F_GETFD reads a descriptor's flags; it changes nothing.
                    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
                        reopen_on_dev_null();
                    }
                }
                return;
            }
            _ => std::process::abort(),
        }
    }
    for pfd in fds {
        if pfd.revents & libc::POLLNVAL != 0 {
            reopen_on_dev_null();
        }
    }
}

/// Opens /dev/null, which takes the lowest closed descriptor: the missing one of 0-2, in order.
fn reopen_on_dev_null() {
    // SAFETY: open reads a NUL-terminated path; the descriptor it returns is meant to stay
    // open for the life of the process, as one of 0-2.
    if unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) } == -1 {
        std::process::abort();
    }
}
