//! The exec trampoline (see `trampoline/x86_64.S`): a sealed memfd holding a tiny program that
//! executes the container's program, so that a process of the runtime never executes a
//! container's file while `/proc/self/exe` still names the runtime's binary on the host
//! (CVE-2019-5736), without re-executing the whole runtime from a protected copy first.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{fcntl, AtFlags, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

/// The trampoline's ELF image; empty on architectures without one.
const IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trampoline"));

/// True when this architecture has a trampoline.
pub fn available() -> bool {
    !IMAGE.is_empty()
}

/// A close-on-exec, sealed memfd holding the trampoline: no one can write to it, and the
/// container's program it executes cannot reach the runtime's binary through it.
pub fn load() -> io::Result<OwnedFd> {
    if !available() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no exec trampoline for this architecture",
        ));
    }
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) says the memfd is meant to be executed, which vm.memfd_noexec=1
    // would otherwise forbid; older kernels reject the flag and allow execution anyway.
    let fd = match memfd_create(c"berth-exec", flags | MFD_EXEC) {
        Err(nix::errno::Errno::EINVAL) => memfd_create(c"berth-exec", flags)?,
        other => other?,
    };
    let mut file = std::fs::File::from(fd);
    io::Write::write_all(&mut file, IMAGE)?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(file.as_fd(), FcntlArg::F_ADD_SEALS(seals))?;
    Ok(OwnedFd::from(file))
}

/// MFD_EXEC from linux/memfd.h (nix does not name it yet).
const MFD_EXEC: MFdFlags = MFdFlags::from_bits_retain(0x0010);

/// Executes `path` with `args` and `env` through the trampoline `fd`. Returns only when the
/// trampoline itself could not be executed; a failure to execute `path` is reported by the
/// trampoline (a line on stderr, exit status 127 or 126).
pub fn exec(fd: &OwnedFd, path: &CStr, args: &[CString], env: &[CString]) -> io::Error {
    let mut argv: Vec<&CStr> = Vec::with_capacity(args.len() + 1);
    argv.push(path);
    argv.extend(args.iter().map(CString::as_c_str));
    match nix::unistd::execveat(fd.as_fd(), c"", &argv, env, AtFlags::AT_EMPTY_PATH) {
        Ok(never) => match never {},
        Err(e) => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// Runs the trampoline (through /proc/self/fd: the path is opened before the exec closes
    /// the close-on-exec memfd) with `path` and `args`: (status, stdout, stderr).
    fn run(path: &str, args: &[&str]) -> (i32, String, String) {
        let fd = load().expect("load the trampoline");
        let out = Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .arg0(path)
            .args(args)
            .env_clear()
            .env("FOO", "bar")
            .output()
            .expect("run the trampoline");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn executes_the_program_with_its_argv_and_env() {
        let (code, out, err) = run("/bin/sh", &["sh", "-c", "echo $0 $FOO", "zero"]);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "zero bar\n", ""));
    }

    #[test]
    fn a_missing_program_is_127_with_the_step_and_errno() {
        let (code, _, err) = run("/nonexistent/prog", &["prog"]);
        assert_eq!(code, 127);
        assert_eq!(
            err,
            "berth-runc init: exec \"prog\": ENOENT: No such file or directory\n"
        );
    }

    #[test]
    fn a_file_that_cannot_be_executed_is_126() {
        let dir = std::env::temp_dir().join(format!("berth-tramp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("data");
        std::fs::write(&file, "not a program").expect("write");
        let (code, _, err) = run(file.to_str().expect("utf-8"), &["data-file"]);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(code, 126);
        assert_eq!(
            err,
            "berth-runc init: exec \"data-file\": EACCES: Permission denied\n"
        );
    }

    #[test]
    fn a_path_through_a_file_is_127() {
        let (code, _, err) = run("/proc/self/status/x", &["x"]);
        assert_eq!(code, 127);
        assert!(err.ends_with("ENOTDIR: Not a directory\n"), "{err}");
    }

    #[test]
    fn proc_self_exe_names_the_trampoline_and_never_the_caller() {
        // The CVE's entry point: the program is /proc/self/exe. Through the trampoline it is
        // the trampoline again, which runs out of arguments and reports a missing program.
        let (code, out, err) = run("/proc/self/exe", &["/proc/self/exe", "--version"]);
        assert_eq!((code, out.as_str()), (127, ""));
        assert!(err.contains("ENOENT"), "{err}");
    }

    #[test]
    fn a_script_whose_interpreter_is_proc_self_exe_ends_instead_of_looping() {
        let dir = std::env::temp_dir().join(format!("berth-tramp-loop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let script = dir.join("self");
        std::fs::write(&script, "#!/proc/self/exe\necho escaped\n").expect("write");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let fd = load().expect("load the trampoline");
        let path = script.to_str().expect("utf-8");
        let mut child = Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .arg0(path)
            .arg(path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the trampoline");
        // A loop would never end: give it a few seconds, then kill it and fail.
        let deadline = std::time::Instant::now()
            + crate::test_support::scaled(std::time::Duration::from_secs(5));
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let _ = std::fs::remove_dir_all(&dir);
        let status = status.expect("the trampoline loops on a #!/proc/self/exe script");
        assert_eq!(status.code(), Some(127));
    }

    #[test]
    fn the_memfd_cannot_be_written() {
        let fd = load().expect("load the trampoline");
        let mut f = std::fs::File::from(fd);
        assert!(io::Write::write_all(&mut f, b"x").is_err());
    }
}
