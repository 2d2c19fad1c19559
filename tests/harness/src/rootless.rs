//! A throwaway ordinary user for rootless tests: made with useradd (its home under /tmp), given
//! its own ranges in /etc/subuid and /etc/subgid (or none), and `berth` run as that user through
//! runuser with a clean environment and XDG variables. Dropping it removes its containers, ends
//! its pause process (and with it every mount of its namespace) and deletes the user, its
//! ranges and its home.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::image::berth_bin;
use crate::{have, is_root, run_with_timeout, skipping, Ran, COMMAND_TIMEOUT};

/// One throwaway user.
pub struct RootlessUser {
    pub name: String,
    pub uid: u32,
    pub home: PathBuf,
    /// The first of its subordinate ids (uid and gid alike), when it has a range.
    pub subid_start: Option<u32>,
}

/// How many ids each user's range holds.
pub const RANGE: u32 = 65536;

impl RootlessUser {
    /// A user with a range of [`RANGE`] ids; `None` (the test skipped, or failed under CI)
    /// when not root or without useradd and Debian's uidmap.
    pub fn create() -> Option<RootlessUser> {
        RootlessUser::make(true)
    }

    /// A user with no range in /etc/subuid or /etc/subgid.
    pub fn without_ranges() -> Option<RootlessUser> {
        RootlessUser::make(false)
    }

    fn make(ranges: bool) -> Option<RootlessUser> {
        if !is_root() || !have("useradd") || !have("newuidmap") || !have("runuser") {
            skipping(format_args!(
                "needs root, useradd, runuser and newuidmap (Debian's uidmap)"
            ));
            return None;
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("brl{}x{n}", pid % 1_000_000);
        let home = PathBuf::from(format!("/tmp/{name}"));
        let _ = std::fs::remove_dir_all(&home);
        // No range of useradd's own choosing (login.defs' SUB_UID_COUNT): the test's only.
        let mut add = Command::new("useradd");
        add.args([
            "-m",
            "-s",
            "/bin/sh",
            "-K",
            "SUB_UID_COUNT=0",
            "-K",
            "SUB_GID_COUNT=0",
        ])
        .arg("-d")
        .arg(&home)
        .arg(&name);
        run_with_timeout(add, COMMAND_TIMEOUT).ok();
        let uid = nix::unistd::User::from_name(&name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
            .expect("the new user");
        let mut user = RootlessUser {
            name,
            uid,
            home,
            subid_start: None,
        };
        if ranges {
            // Far above any real user's range, one slot per user of this process and pid.
            let slot = (pid.wrapping_mul(16).wrapping_add(n)) % 4096;
            let start = 1_000_000 + slot * RANGE;
            let range = format!("{start}-{}", start + RANGE - 1);
            let mut set = Command::new("usermod");
            set.args(["--add-subuids", &range, "--add-subgids", &range])
                .arg(&user.name);
            run_with_timeout(set, COMMAND_TIMEOUT).ok();
            user.subid_start = Some(start);
        }
        Some(user)
    }

    /// The user's runtime directory (`XDG_RUNTIME_DIR`).
    pub fn run_dir(&self) -> PathBuf {
        self.home.join("run")
    }

    /// The user's berth data root (`~/.local/share/berth`).
    pub fn data_root(&self) -> PathBuf {
        self.home.join(".local/share/berth")
    }

    /// `berth <args>` as the user, with `env` added to its clean environment.
    pub fn command_env(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", &self.name, "--", "env", "-i"])
            .arg(format!("HOME={}", self.home.display()))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin")
            .arg(format!("XDG_RUNTIME_DIR={}", self.run_dir().display()))
            .args(env.iter().map(|(k, v)| format!("{k}={v}")))
            .arg(berth_bin())
            .args(args)
            .current_dir(&self.home);
        command
    }

    /// `berth <args>` as the user.
    pub fn berth(&self, args: &[&str]) -> Ran {
        run_with_timeout(self.command_env(args, &[]), COMMAND_TIMEOUT)
    }

    /// `berth <args>` as the user, which must succeed: its stdout, trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        self.berth(args).ok().trim_end().to_string()
    }

    /// A command run as the user (no berth): `runuser -u USER -- args`.
    pub fn shell(&self, script: &str) -> Ran {
        let mut command = Command::new("runuser");
        command
            .args(["-u", &self.name, "--", "sh", "-c", script])
            .current_dir(&self.home);
        run_with_timeout(command, COMMAND_TIMEOUT)
    }

    /// The pids of the user's processes.
    pub fn processes(&self) -> Vec<i32> {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                (e.metadata().ok()?.uid() == self.uid).then_some(pid)
            })
            .collect()
    }

    /// The pause process holding the user's namespaces, if one runs.
    pub fn pause_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.run_dir().join("berth/pause.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }
}

/// Appends `line` to `file` (/etc/subuid or /etc/subgid) under shadow-utils' own lock, the
/// `<file>.lock` that useradd, usermod and userdel take (holding the locker's pid) before they
/// rewrite the file: without it, a concurrent test's userdel could write back the file as it
/// read it a moment before, without the line (seen once in the suite).
pub fn append_subid_line(file: &str, line: &str) {
    use std::io::Write;
    let lock = format!("{file}.lock");
    let mut held = crate::eventually(&format!("shadow's lock {lock}"), || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .ok()
    });
    let _ = write!(held, "{}", std::process::id());
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| writeln!(f, "{line}"));
    let _ = std::fs::remove_file(&lock);
    appended.expect(file);
}

impl Drop for RootlessUser {
    fn drop(&mut self) {
        if self.pause_pid().is_some() {
            let ids = self.berth(&["ps", "-aq"]).stdout;
            for id in ids.split_whitespace() {
                let _ = self.berth(&["rm", "-f", "-v", id]);
            }
        }
        // The user's last processes (its pause process, monitors of containers that would
        // not go), each by its pid: every one of them this test's.
        for pid in self.processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
