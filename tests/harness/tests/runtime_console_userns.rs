//! Black-box tests of the terminal handed over a console socket (runc's protocol, driven by the
//! test itself as containerd's shim would) and of a user namespace joined by path.

use berth_harness::need_root;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::Duration;

use berth_harness::{unique, Bundle, Runtime};
use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType};
use serde_json::Value;

/// Not a timing assertion: only how long to wait for output that should come at once before
/// the test fails instead of hanging.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// The pty master's output, read on a thread and gathered until a wanted piece shows up.
struct Terminal {
    input: std::fs::File,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    fn new(master: std::os::fd::OwnedFd) -> Terminal {
        let input = std::fs::File::from(master);
        let mut reader = input.try_clone().expect("dup the pty master");
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the last slave closes: the shell is gone.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            input,
            output,
            seen: String::new(),
        }
    }

    fn type_line(&mut self, line: &str) {
        self.input
            .write_all(format!("{line}\n").as_bytes())
            .expect("write to the pty master");
    }

    /// Waits until the output holds `wanted` after everything matched so far.
    fn expect(&mut self, wanted: &str) {
        loop {
            if let Some(at) = self.seen.find(wanted) {
                self.seen.drain(..at + wanted.len());
                return;
            }
            match self.output.recv_timeout(berth_harness::scaled(HANG_GUARD)) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(e) => panic!(
                    "no {wanted:?} from the terminal ({e}); it showed:\n{}",
                    self.seen
                ),
            }
        }
    }

    /// Waits for the master to report that the slave side is gone.
    fn expect_hangup(&mut self) {
        loop {
            match self.output.recv_timeout(berth_harness::scaled(HANG_GUARD)) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(e) => panic!("the terminal stayed open ({e}); it showed:\n{}", self.seen),
            }
        }
    }
}

#[test]
fn the_console_socket_gets_a_working_pty_master() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sh"]);
    std::os::unix::fs::symlink("busybox", bundle.rootfs().join("bin/stty")).unwrap();
    let process = bundle.spec_mut().process_mut().as_mut().unwrap();
    process.set_terminal(Some(true));
    let size = oci_spec::runtime::BoxBuilder::default()
        .height(24u32)
        .width(80u32)
        .build()
        .unwrap();
    process.set_console_size(Some(size));
    bundle.write();

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let id = unique("console");
    let path = bundle.path().to_str().unwrap();
    let sock = socket.to_str().unwrap();
    rt.run(&["create", "--console-socket", sock, "--bundle", path, &id])
        .ok();
    // create has returned: its connection, with the master in it, waits in the backlog.
    listener.set_nonblocking(true).unwrap();
    let (conn, _) = listener
        .accept()
        .expect("create returned without connecting to the console socket");
    let master = berth_sys::fd::recv_fd(conn.as_fd()).expect("receive the pty master");
    let mut term = Terminal::new(master);
    rt.start(&id).ok();

    term.type_line("echo $((6*7)); tty");
    term.expect("\n42\r\n/dev/pts/0\r\n");
    term.type_line("stty size");
    term.expect("\n24 80\r\n");
    berth_sys::pty::set_window_size(term.input.as_fd(), 33, 101).expect("TIOCSWINSZ");
    term.type_line("stty size");
    term.expect("\n33 101\r\n");
    term.type_line("exit 0");
    term.expect_hangup();
    // The init is gone once the shell (its process) is. The hangup comes as the shell's exit
    // closes its descriptors, a moment before the exit is complete: the state says stopped
    // from then on (runc's too), not necessarily at the hangup.
    berth_harness::eventually("the state after the shell exited to say stopped", || {
        let state = rt.state(&id).expect("state after the shell exited");
        (state["status"] == "stopped").then_some(())
    });
}

fn namespace(kind: LinuxNamespaceType, path: Option<String>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(kind);
    ns.set_path(path.map(Into::into));
    ns
}

/// The rootfs must be readable by the mapped root.
fn chown_rootfs(bundle: &Bundle, id: u32) {
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{id}:{id}")])
        .arg(bundle.rootfs())
        .status()
        .unwrap();
    assert!(status.success(), "chown of the rootfs failed");
}

fn inode(path: &str) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .ino()
}

#[test]
fn a_user_namespace_is_joined_by_path_with_its_mappings() {
    need_root!();
    let rt = Runtime::new();
    // A: a new user namespace mapping 0 to 200000, and every other namespace new.
    let mut first = Bundle::new(&["sleep", "600"]);
    let linux = first.spec_mut().linux_mut().as_mut().unwrap();
    let kinds = [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ];
    linux.set_namespaces(Some(kinds.map(|k| namespace(k, None)).to_vec()));
    let map = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(200000u32)
        .size(65536u32)
        .build()
        .unwrap();
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    first.write();
    chown_rootfs(&first, 200000);
    let a = unique("userns-a");
    rt.create(&a, &first).ok();
    let pid = rt.state(&a).unwrap()["pid"].as_i64().unwrap();

    // B joins A's user namespace and those it owns that B's mounts need (proc wants the pid
    // namespace's owner, sysfs the network namespace's), with a mount namespace of its own.
    let mut second = Bundle::new(&["berth-probe"]);
    second.spec_mut().set_hostname(None);
    let linux = second.spec_mut().linux_mut().as_mut().unwrap();
    let mut list: Vec<LinuxNamespace> = [
        (LinuxNamespaceType::User, "user"),
        (LinuxNamespaceType::Pid, "pid"),
        (LinuxNamespaceType::Network, "net"),
        (LinuxNamespaceType::Ipc, "ipc"),
        (LinuxNamespaceType::Uts, "uts"),
    ]
    .into_iter()
    .map(|(k, name)| namespace(k, Some(format!("/proc/{pid}/ns/{name}"))))
    .collect();
    list.push(namespace(LinuxNamespaceType::Mount, None));
    linux.set_namespaces(Some(list));
    second.write();
    chown_rootfs(&second, 200000);
    let out = rt.run_container(&unique("userns-b"), &second).ok();
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));

    let user_ns = inode(&format!("/proc/{pid}/ns/user"));
    assert_ne!(
        user_ns,
        inode("/proc/self/ns/user"),
        "A's user ns is the host's"
    );
    assert_eq!(v["ns"]["user"].as_u64(), Some(user_ns), "{v}");
    assert_ne!(
        v["ns"]["mnt"].as_u64(),
        Some(inode(&format!("/proc/{pid}/ns/mnt"))),
        "B asked for a mount namespace of its own"
    );
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(words(&theirs), ["0", "200000", "65536"]);
    assert_eq!(words(v["uid_map"].as_str().unwrap()), words(&theirs), "{v}");
    assert_eq!(v["uid"], 0, "{v}");
    rt.run(&["delete", "--force", &a]).ok();
}
