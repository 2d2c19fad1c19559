//! Process creation and pidfds: fork from a single-threaded process, pidfd_open, signals.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// What `fork` returned on this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// In the parent, with the child's pid.
    Parent(i32),
    /// In the child.
    Child,
}

/// Number of threads of this process: procfs gives /proc/self/task a link count of two plus
/// its threads, one statx where /proc/self/stat (field 20) took an open, a read and a close.
pub fn thread_count() -> io::Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let links = std::fs::metadata("/proc/self/task")?.nlink();
    usize::try_from(links.saturating_sub(2))
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc/self/task"))
}

/// `fork(2)` through glibc, refused when the process has more than one thread: a child forked
/// from a threaded process may inherit locks held by threads that do not exist in it.
pub fn fork() -> io::Result<Forked> {
    if thread_count()? != 1 {
        return Err(io::Error::other(
            "fork refused: the process has more than one thread",
        ));
    }
    // SAFETY: the process is single-threaded (checked above), so the child starts with a
    // consistent heap and no lock held by a thread that does not exist in it. glibc's fork also
    // resets its own cached thread state in the child.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// `clone3(2)` with `CLONE_INTO_CGROUP`: a fork whose child starts in the cgroup2 directory
/// `cgroup` (an O_RDONLY descriptor of it). Joining at birth takes the kernel's threadgroup
/// lock for reading only, where moving a process afterwards (a write to cgroup.procs) takes it
/// for writing and waits for an RCU grace period, often milliseconds. Refused, like [`fork`],
/// when the process has more than one thread. Errors as clone3 gives them: ENOSYS or E2BIG on
/// kernels before 5.7, EBADF or EOPNOTSUPP for a descriptor that is no cgroup2 directory.
/// With `new_pid_namespace`, the child is the first process of a new pid namespace as well
/// (CLONE_NEWPID), as after an unshare of this process's namespace for children.
pub fn fork_into_cgroup(cgroup: BorrowedFd<'_>, new_pid_namespace: bool) -> io::Result<Forked> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let newpid = if new_pid_namespace {
        libc::CLONE_NEWPID as u64
    } else {
        0
    };
    clone3_fork(
        CLONE_INTO_CGROUP | newpid,
        cgroup.as_raw_fd() as u64,
        SingleThreaded::check()?,
    )
}

/// `clone3(2)` with `CLONE_NEWPID`: a fork whose child is the first process of a new pid
/// namespace, this process's own namespace for children left as it was (an unshare would
/// change it, and going back by setns needs privilege over the pid namespace's owner, which
/// rootless berth lacks for the host's).
pub fn fork_new_pid_namespace() -> io::Result<Forked> {
    clone3_fork(libc::CLONE_NEWPID as u64, 0, SingleThreaded::check()?)
}

/// Proof that this process was single-threaded when it was checked, for a fork made after the
/// process lost its view of its own /proc (it joined a container's mount namespace, whose
/// procfs does not show it). Not `Send`: it stays on the thread that checked, and the holder
/// must start no thread meanwhile.
#[derive(Debug)]
pub struct SingleThreaded(std::marker::PhantomData<*const ()>);

impl SingleThreaded {
    /// Checks, from /proc/self/stat, that the process has one thread.
    pub fn check() -> io::Result<Self> {
        if thread_count()? != 1 {
            return Err(io::Error::other(
                "fork refused: the process has more than one thread",
            ));
        }
        Ok(Self(std::marker::PhantomData))
    }
}

/// `clone3(2)` with `CLONE_PARENT`: a fork whose child is our parent's child, not ours, so
/// that our parent waits for it and gets its exit status. For a middle process that joins a
/// container's namespaces (its pid namespace applying to children only) and forks the process
/// that lives there, then exits. EINVAL when this process is the init of a pid namespace.
pub fn fork_as_sibling(single: SingleThreaded) -> io::Result<Forked> {
    clone3_fork(libc::CLONE_PARENT as u64, 0, single)
}

/// clone3 without CLONE_VM: a fork with `flags` (and the cgroup2 descriptor `cgroup` when the
/// flags ask for CLONE_INTO_CGROUP).
fn clone3_fork(flags: u64, cgroup: u64, _single: SingleThreaded) -> io::Result<Forked> {
    /// struct clone_args of linux/sched.h, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let args = CloneArgs {
        flags,
        // With CLONE_PARENT the kernel takes our own exit signal instead (SIGCHLD for a
        // forked process), and refuses any other value here.
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        cgroup,
        ..CloneArgs::default()
    };
    // SAFETY: without CLONE_VM or a stack, clone3 duplicates the process like fork: the child
    // runs on a copy of this single-threaded process's memory (checked above, so no lock is
    // held by a missing thread). The kernel reads `args` (a live local of the size passed)
    // and writes nothing through it (no CLONE_PIDFD or CLONE_*_SETTID). Unlike glibc's fork,
    // the child's cached thread id in glibc's thread descriptor still reads the parent's: the
    // child (the container's init or exec'd process, Rust code that uses no pthread call
    // depending on it) must not rely on it, as crun's and runc's own raw clones do not.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// A program to start in a session of its own ([`spawn_in_new_session`]).
pub struct SessionSpawn<'a> {
    /// Executed as execve(2) takes it: no `PATH` search (a relative path is the working
    /// directory's).
    pub program: &'a std::path::Path,
    /// Its arguments, `argv[0]` first.
    pub argv: &'a [&'a std::ffi::OsStr],
    /// Its whole environment.
    pub env: &'a [(&'a std::ffi::OsStr, &'a std::ffi::OsStr)],
    /// Its standard input; its output and error go to /dev/null.
    pub stdin: BorrowedFd<'a>,
}

/// Starts `spawn` with `posix_spawn(3)`: in a new session (`POSIX_SPAWN_SETSID`, glibc 2.26
/// and later), every signal at its default disposition (glibc's internal 32 and 33 too) and
/// none blocked, descriptors 0 to 2 as [`SessionSpawn`] says and no other but those without
/// close-on-exec. Returns its pid, our child, for the caller to wait for or leave to init.
/// glibc starts it with `clone(CLONE_VM | CLONE_VFORK)`: no copy of this process's page tables,
/// and none of its pages write-protected as a `fork` leaves them (each then faults again at its
/// next write here: ~30 such faults in `run`, where std's spawn forks since a pre-exec closure,
/// its only way to a new session, asks for a fork). The call returns once the program is
/// executed, or with the exec's error.
pub fn spawn_in_new_session(spawn: &SessionSpawn<'_>) -> io::Result<i32> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |bytes: &[u8]| {
        CString::new(bytes).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a NUL byte in a program, argument or environment variable to spawn",
            )
        })
    };
    let program = c(spawn.program.as_os_str().as_bytes())?;
    let argv = spawn
        .argv
        .iter()
        .map(|a| c(a.as_bytes()))
        .collect::<io::Result<Vec<CString>>>()?;
    let env = spawn
        .env
        .iter()
        .map(|(k, v)| c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<io::Result<Vec<CString>>>()?;
    let pointers = |strings: &[CString]| -> Vec<*mut libc::c_char> {
        strings
            .iter()
            .map(|s| s.as_ptr().cast_mut())
            .chain([std::ptr::null_mut()])
            .collect()
    };
    let (argv_ptrs, env_ptrs) = (pointers(&argv), pointers(&env));
    let null = c(b"/dev/null")?;
    let mut actions = SpawnActions::new()?;
    actions.dup2(spawn.stdin.as_raw_fd(), 0)?;
    actions.open_write_only(1, &null)?;
    actions.dup2(1, 2)?;
    let mut attr = SpawnAttr::new()?;
    // libc types these flags as c_int or c_short by version; their values fit a c_short.
    let flags = [
        libc::POSIX_SPAWN_SETSID as libc::c_int,
        libc::POSIX_SPAWN_SETSIGMASK as libc::c_int,
        libc::POSIX_SPAWN_SETSIGDEF as libc::c_int,
    ]
    .iter()
    .fold(0, |all, flag| all | flag);
    attr.set(
        flags as libc::c_short,
        nix::sys::signal::SigSet::empty().as_ref(),
        &every_signal(),
    )?;
    let mut pid: libc::pid_t = 0;
    // SAFETY: the file actions and attributes were initialised (their guards destroy them
    // after); the program, argv and envp point into CStrings and Vecs that outlive the call,
    // argv and envp ending in a null pointer; the pid is written to a local. glibc's child runs
    // only its own async-signal-safe code between its clone and the exec.
    spawn_result(unsafe {
        libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            &actions.0,
            &attr.0,
            argv_ptrs.as_ptr(),
            env_ptrs.as_ptr(),
        )
    })?;
    Ok(pid)
}

/// Every signal, as posix_spawn's default set: glibc's `sigfillset` leaves out its internal
/// signals (32 and 33), and its posix_spawn sets those to ignored in the child when the
/// default set lacks them, which the exec keeps (and every program the child starts after).
fn every_signal() -> libc::sigset_t {
    const SIZE: usize = std::mem::size_of::<libc::sigset_t>();
    // SAFETY: sigset_t is a plain array of integers (a bit per signal): every bit pattern is a
    // valid value, and all ones is every signal.
    unsafe { std::mem::transmute::<[u8; SIZE], libc::sigset_t>([0xff; SIZE]) }
}

/// posix_spawn's functions return an error number, not -1 and errno.
fn spawn_result(rc: libc::c_int) -> io::Result<()> {
    match rc {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// posix_spawn's file actions, destroyed when dropped.
struct SpawnActions(libc::posix_spawn_file_actions_t);

impl SpawnActions {
    fn new() -> io::Result<SpawnActions> {
        let mut actions = std::mem::MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        // SAFETY: init writes the whole structure it is given.
        spawn_result(unsafe { libc::posix_spawn_file_actions_init(actions.as_mut_ptr()) })?;
        // SAFETY: initialised just above; it holds no pointer into itself, so it may move.
        Ok(SpawnActions(unsafe { actions.assume_init() }))
    }

    /// `from` may be `to` already: glibc (2.29 and later, Austin Group issue 411) then clears
    /// its close-on-exec flag, as the child needs.
    fn dup2(&mut self, from: libc::c_int, to: libc::c_int) -> io::Result<()> {
        // SAFETY: an initialised file actions object; the call copies the two numbers.
        spawn_result(unsafe { libc::posix_spawn_file_actions_adddup2(&mut self.0, from, to) })
    }

    fn open_write_only(&mut self, fd: libc::c_int, path: &std::ffi::CStr) -> io::Result<()> {
        // SAFETY: an initialised file actions object; glibc copies the path (since its
        // CVE-2014-4043 fix), and the caller's outlives the spawn anyway.
        spawn_result(unsafe {
            libc::posix_spawn_file_actions_addopen(
                &mut self.0,
                fd,
                path.as_ptr(),
                libc::O_WRONLY,
                0,
            )
        })
    }
}

impl Drop for SpawnActions {
    fn drop(&mut self) {
        // SAFETY: initialised by posix_spawn_file_actions_init, destroyed once, here.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// posix_spawn's attributes, destroyed when dropped.
struct SpawnAttr(libc::posix_spawnattr_t);

impl SpawnAttr {
    fn new() -> io::Result<SpawnAttr> {
        let mut attr = std::mem::MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        // SAFETY: init writes the whole structure it is given.
        spawn_result(unsafe { libc::posix_spawnattr_init(attr.as_mut_ptr()) })?;
        // SAFETY: initialised just above; plain data, it may move.
        Ok(SpawnAttr(unsafe { attr.assume_init() }))
    }

    /// The flags, the signal mask and the signals reset to their default disposition.
    fn set(
        &mut self,
        flags: libc::c_short,
        mask: &libc::sigset_t,
        default: &libc::sigset_t,
    ) -> io::Result<()> {
        // SAFETY: an initialised attributes object; the call copies the set it is given.
        spawn_result(unsafe { libc::posix_spawnattr_setsigmask(&mut self.0, mask) })?;
        // SAFETY: as above.
        spawn_result(unsafe { libc::posix_spawnattr_setsigdefault(&mut self.0, default) })?;
        // SAFETY: as above.
        spawn_result(unsafe { libc::posix_spawnattr_setflags(&mut self.0, flags) })
    }
}

impl Drop for SpawnAttr {
    fn drop(&mut self) {
        // SAFETY: initialised by posix_spawnattr_init, destroyed once, here.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

/// Spawns `command` detached: in a new session of its own (setsid(2) before its exec), and
/// nobody's child. Between its fork and its exec, the child forks again and exits at once
/// (reaped here before this returns); the grandchild starts its session and execs. When it
/// exits, init (or the nearest subreaper) reaps it, not us, so a long-running caller (the API
/// service) that never waits for what it started gathers no zombies; the second fork costs
/// about half a millisecond. A failed exec is still the spawn's error: the grandchild inherits
/// std's error pipe, which its exec closes.
pub fn spawn_detached(command: &mut std::process::Command) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    fn detach() -> io::Result<()> {
        // SAFETY: clone without CLONE_VM or a stack duplicates this process as fork does. We
        // run in the child of std's fork, which has one thread: the copy holds no lock of a
        // missing thread. No pidfd nor tid pointer is passed (the trailing zeros); the kernel
        // touches none of our memory. The grandchild's glibc-cached tid is stale, as with
        // clone3_fork: it runs only setsid and std's exec, neither of which reads it.
        let pid =
            unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
        match pid {
            -1 => return Err(io::Error::last_os_error()),
            0 => {}
            // SAFETY: _exit(2) ends the middle process at once, running nothing of ours.
            _ => unsafe { libc::_exit(0) },
        }
        // SAFETY: setsid(2) takes no argument and touches no memory of ours.
        if unsafe { libc::setsid() } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    // SAFETY: the closure runs in the forked child before exec and makes only raw system calls
    // (clone, _exit, setsid), which are async-signal-safe, allocate nothing and take no lock
    // (and, on failure, read errno).
    unsafe {
        command.pre_exec(detach);
    }
    let mut middle = command.spawn()?;
    middle.wait().map(drop)
}

/// `pidfd_open(2)`: a descriptor that names the process for as long as it is held, immune to
/// pid reuse, and becomes readable when the process exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers; on success it returns a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by the kernel, is valid and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(2)` with no siginfo.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills in SI_USER) and flags are 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A hexadecimal mask line of /proc/PID/status ("SigIgn:", "CapBnd:", ...): the signals a
/// process ignores (bit n-1 for signal n), its bounding set (bit n for capability n). One file
/// says what asking the kernel takes a call per signal or per capability to learn.
pub fn status_mask(status: &str, key: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix(key))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Puts the signals of `ignored` (a mask, as [`status_mask`] reads SigIgn) back to their
/// default and unblocks every signal, for a process about to execute a program that must start
/// as a shell would start it: execve keeps ignored signals ignored, and a Rust program ignores
/// SIGPIPE (so without this every container would too), while the caller may have left others
/// ignored, glibc's own real-time ones (32, 33) included, which its sigaction() refuses to
/// touch: hence the raw syscall. Signals with a handler need nothing: execve resets them. Best
/// effort: a signal the kernel refuses is left as it is. Only for a process that executes right
/// after: glibc's bookkeeping of its signals is bypassed.
pub fn default_signal_dispositions(ignored: u64) {
    // An all-zero struct sigaction is SIG_DFL with no flags, no restorer and an empty mask,
    // whatever the architecture's field order; 32 bytes cover the kernel's struct on every
    // 64-bit architecture.
    let act = [0u64; 4];
    for signal in 1..=64 {
        let is_ignored = ignored & (1 << (signal - 1)) != 0;
        if !is_ignored || signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads the kernel's struct sigaction from `act`, a live, zeroed
        // buffer at least that large; the old action pointer is null, so nothing is written.
        // SIG_DFL installs no handler, so no code of ours runs in signal context.
        let _ = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                act.as_ptr(),
                std::ptr::null_mut::<u64>(),
                KERNEL_SIGSET_SIZE,
            )
        };
    }
    // And none blocked: the mask, too, survives execve.
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// The kernel's sigset_t in bytes (_NSIG / 8), which rt_sigaction insists on.
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
const KERNEL_SIGSET_SIZE: usize = 16;
#[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
const KERNEL_SIGSET_SIZE: usize = 8;

/// `capset(2)` of the calling thread's effective, permitted and inheritable sets at once (masks
/// with bit n for capability n), where setting one set at a time takes a capget and a capset
/// apiece. The kernel checks the three against the old sets as one change: inheritable within
/// the old inheritable and permitted (or the bounding set, with CAP_SETPCAP), permitted within
/// the old permitted, effective within the new permitted.
pub fn set_capabilities(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    /// struct __user_cap_header_struct.
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    /// struct __user_cap_data_struct; version 3 takes two, the low and the high 32 bits.
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let half = |shift: u32| Data {
        effective: (effective >> shift) as u32,
        permitted: (permitted >> shift) as u32,
        inheritable: (inheritable >> shift) as u32,
    };
    let data = [half(0), half(32)];
    // SAFETY: capset reads a version-3 header and two data structs, laid out as the kernel's
    // (repr(C), three u32 each) and alive for the call; it writes no user memory (the header's
    // version is written back only on a version mismatch, and this one is the kernel's).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `_exit(2)`: leave the forked child without running atexit handlers or flushing buffers that
/// belong to the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and takes an integer.
    unsafe { libc::_exit(code) }
}

/// Gives the heap's free memory back to the kernel (glibc's `malloc_trim(0)`): for a
/// long-lived process, such as a container's monitor, after a burst of allocations at start.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own allocator state under its lock and returns
    // free pages with madvise; it touches no memory a Rust owner holds.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Drops from this process's page tables the pages of its read-only file mappings (the
/// binary's and libraries' code and constants) that hold nothing of its own, and returns how
/// many bytes were so mapped. For a long-lived, mostly idle process (a container's monitor)
/// whose start touched far more code than its loop needs: what the loop uses faults back in
/// from the page cache, the rest stops counting in its RSS and PSS.
///
/// Only mappings that are not writable and have no anonymous (copy-on-write) pages are
/// touched, per /proc/self/smaps: relocated data (RELRO), the heap, the stack and anything
/// written stay as they are.
pub fn drop_clean_code_pages() -> io::Result<usize> {
    // The SAFETY argument below needs the mappings to stay as read: no other thread.
    if thread_count()? != 1 {
        return Ok(0);
    }
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut dropped = 0;
    let mut current: Option<Mapping> = None;
    for line in smaps.lines().chain(std::iter::once("end-of-smaps x")) {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some(value) = first.strip_suffix(':').and(current.as_mut()) {
            let kb: usize = fields.next().and_then(|n| n.parse().ok()).unwrap_or(1);
            match first {
                "Anonymous:" | "Swap:" | "AnonHugePages:" => value.private_kb += kb,
                _ => {}
            }
            continue;
        }
        // A new mapping's header (or the end): decide for the previous one.
        if let Some(m) = current.take() {
            if m.candidate && m.private_kb == 0 {
                // SAFETY: [start, end) is a whole mapping of this single-threaded process,
                // read-only and file-backed, with no anonymous, swapped-out or huge private
                // page (a copy-on-write page, e.g. relocated RELRO data, would show in one of
                // those): discarding it only makes the next access read the same bytes from
                // the page cache. No Rust object lives in such memory as owned, mutable data.
                let rc = unsafe {
                    libc::madvise(
                        m.start as *mut libc::c_void,
                        m.end - m.start,
                        libc::MADV_DONTNEED,
                    )
                };
                if rc == 0 {
                    dropped += m.end - m.start;
                }
            }
        }
        current = parse_header(first, fields);
    }
    Ok(dropped)
}

/// Gives back the pages of this thread's stack that lie below its current frame, less a
/// margin, and returns how many bytes that was. A long-lived, mostly idle process whose start
/// went deep (a container's monitor, through the runtime's create) otherwise keeps them dirty
/// for good: a deeper call later simply finds fresh zeroed pages there, as on a new stack.
/// Single-threaded processes only (their one stack is `[stack]`); elsewhere it does nothing.
pub fn drop_unused_stack() -> io::Result<usize> {
    // Kept below this frame: madvise's own call (a few hundred bytes) needs it; more only keeps
    // pages a waiting loop (a poll, a waitid) would not touch (16 KiB kept 3 pages no idle
    // monitor used).
    const MARGIN: usize = 4 << 10;
    if thread_count()? != 1 {
        return Ok(0);
    }
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| usize::try_from(p).ok())
        .filter(|p| p.is_power_of_two())
        .ok_or_else(|| io::Error::other("sysconf(_SC_PAGESIZE)"))?;
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let Some((start, end)) = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| parse_range(l.split_whitespace().next()?))
    else {
        return Ok(0);
    };
    let here = 0u8;
    let sp = std::hint::black_box(std::ptr::addr_of!(here)) as usize;
    let low_end = sp.saturating_sub(MARGIN) & !(page - 1);
    if !(start..end).contains(&sp) || low_end <= start {
        return Ok(0);
    }
    // SAFETY: [start, low_end) is page-aligned and lies in the stack mapping of this process's
    // only thread, more than MARGIN below the current frame: nothing live is there (the stack
    // grows down from `end`; no signal handler runs now, on this same thread). MADV_DONTNEED on
    // private anonymous memory only makes the next touch of a page find it zeroed, as a fresh
    // stack page is; no Rust object owns memory there.
    let rc = unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            low_end - start,
            libc::MADV_DONTNEED,
        )
    };
    if rc == 0 {
        Ok(low_end - start)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `start-end` of a /proc/self/maps line, in hex.
fn parse_range(range: &str) -> Option<(usize, usize)> {
    let (start, end) = range.split_once('-')?;
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    ))
}

struct Mapping {
    start: usize,
    end: usize,
    candidate: bool,
    private_kb: usize,
}

/// `start-end perms offset dev inode path` of /proc/self/smaps.
fn parse_header<'a>(range: &str, mut fields: impl Iterator<Item = &'a str>) -> Option<Mapping> {
    let (start, end) = parse_range(range)?;
    let perms = fields.next()?;
    let path = fields.nth(3).unwrap_or("");
    Some(Mapping {
        start,
        end,
        candidate: path.starts_with('/') && !perms.contains('w'),
        private_kb: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_count_agrees_with_status() {
        // Other tests' threads come and go: the two reads agree on some try.
        let threads = || {
            let status = crate::file::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
            line["Threads:".len()..].trim().parse::<usize>().unwrap()
        };
        let agreed = (0..100).any(|_| {
            let before = threads();
            thread_count().unwrap() == before && threads() == before
        });
        assert!(agreed);
    }

    #[test]
    fn status_masks_parse() {
        let status = "Name:\tx\nSigIgn:\t0000000000001000\nCapBnd:\t000001fffeffffff\n";
        assert_eq!(status_mask(status, "SigIgn:"), Some(1 << 12));
        assert_eq!(status_mask(status, "CapBnd:"), Some(0x01ff_feff_ffff));
        assert_eq!(status_mask(status, "SigCgt:"), None);
    }

    #[test]
    fn a_rust_program_ignores_sigpipe() {
        let status = crate::file::read_to_string("/proc/self/status").unwrap();
        let ignored = status_mask(&status, "SigIgn:").unwrap();
        assert_ne!(ignored & (1 << (libc::SIGPIPE - 1)), 0);
    }
}
