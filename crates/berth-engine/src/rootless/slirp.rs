//! A rootless container's default network: slirp4netns (Debian's 1.2.0), as podman's rootless
//! containers had it by default until pasta. Chosen over pasta (passt 2023-03 in Debian 12,
//! months old then) for its maturity and its small, documented interface: `--configure` sets
//! the container's tap0 to 10.0.2.100/24 (gateway 10.0.2.2, DNS forwarder 10.0.2.3), and its
//! API socket's `add_hostfwd` publishes ports on the host. It runs in the host's network
//! namespace as the user, one per container, and ends when its container's monitor does
//! (`--exit-fd`) or when the container's network is detached (its pid file).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use berth_net::{Attachment, PortMapping};

use crate::error::{Error, Result};

pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

const TUN: &str = "/dev/net/tun";

/// Where a container's slirp4netns keeps its API socket and pid: the runtime directory (a
/// unix socket's path must stay short).
fn paths(id: &str) -> (PathBuf, PathBuf) {
    let dir = berth_sys::rootless::run_dir().join("slirp");
    let short = crate::error::short(id);
    (
        dir.join(format!("{short}.sock")),
        dir.join(format!("{short}.pid")),
    )
}

fn which() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("slirp4netns"))
        .find(|p| p.is_file())
}

/// Starts slirp4netns for the container whose init is `pid`, then publishes `ports`.
pub fn attach(id: &str, pid: i32, ports: &[PortMapping]) -> Result<Attachment> {
    let (socket, pid_file) = paths(id);
    start(&format!("/proc/{pid}/ns/net"), &socket, &pid_file, None)?;
    let mut published = Vec::new();
    for p in ports {
        for (offset, host_port) in host_ports(p)?.into_iter().enumerate() {
            let container_port = p.container_port + offset as u16;
            add_hostfwd(&socket, p, host_port, container_port).inspect_err(|_| detach(id))?;
            published.push(PortMapping {
                host_port,
                host_port_end: 0,
                container_port,
                ..p.clone()
            });
        }
    }
    Ok(Attachment {
        container_id: id.to_string(),
        network: "bridge".into(),
        network_id: String::new(),
        ip: Some(ADDRESS),
        prefix: 24,
        gateway: Some(GATEWAY),
        mac: None,
        host_veth: None,
        ports: published,
        dns: Some(DNS),
        warnings: Vec::new(),
        ifname: String::new(),
    })
}

/// Starts slirp4netns on the network namespace at `netns`, its API socket at `socket`, its pid
/// written to `pid_file`; it ends with the caller when `log` is None (`--exit-fd`, held by a
/// container's monitor), else it outlives it, its messages in `log`.
fn start(netns: &str, socket: &Path, pid_file: &Path, log: Option<&Path>) -> Result<()> {
    let bin = which().ok_or_else(|| {
        Error::Invalid(
            "rootless: the default network needs slirp4netns, which is not installed: \
             apt-get install slirp4netns (or run with --network none or --network host)"
                .into(),
        )
    })?;
    // slirp4netns opens it as the user: a machine without udev may leave it root's alone.
    if nix::unistd::access(
        TUN,
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    )
    .is_err()
    {
        return Err(Error::Invalid(format!(
            "rootless: the default network needs {TUN}, which you cannot open: make it usable \
             by users as udev does (chmod 0666 {TUN}), or run with --network none or --network host"
        )));
    }
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    }
    let _ = std::fs::remove_file(socket);
    let pipe = |what: &'static str| {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::io("pipe for slirp4netns", what)(e.into()))
    };
    let (ready_r, ready_w) = pipe("--ready-fd")?;
    let (exit_r, exit_w) = pipe("--exit-fd")?;
    // The child's ends only cross the exec.
    let crossing = match log {
        None => vec![ready_w.as_fd(), exit_r.as_fd()],
        Some(_) => vec![ready_w.as_fd()],
    };
    for fd in crossing {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .map_err(|e| Error::io("fcntl", "slirp4netns pipe")(e.into()))?;
    }
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["--configure", "--mtu=65520", "--disable-host-loopback"])
        .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
        .arg("--api-socket")
        .arg(socket)
        .args(["--netns-type=path", netns, "tap0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    match log {
        None => {
            cmd.arg(format!("--exit-fd={}", exit_r.as_raw_fd()))
                .stderr(std::process::Stdio::piped());
        }
        Some(log) => {
            let file = std::fs::File::create(log).map_err(Error::io("create", log))?;
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            cmd.stderr(file);
        }
    }
    let child = cmd.spawn().map_err(Error::io("spawn", bin.clone()))?;
    drop((ready_w, exit_r));
    // Held by the monitor: slirp4netns ends with it, whatever else happens.
    std::mem::forget(exit_w);
    let mut ready = [0u8; 1];
    let got = std::fs::File::from(ready_r).read(&mut ready);
    if !matches!(got, Ok(1)) {
        let mut stderr = String::new();
        match (child.stderr, log) {
            (Some(mut e), _) => {
                let _ = e.read_to_string(&mut stderr);
            }
            (None, Some(log)) => stderr = std::fs::read_to_string(log).unwrap_or_default(),
            (None, None) => {}
        }
        return Err(Error::Invalid(format!(
            "rootless: slirp4netns did not start for {netns}: {}",
            stderr.trim()
        )));
    }
    std::fs::write(pid_file, child.id().to_string()).map_err(Error::io("write", pid_file))?;
    Ok(())
}

/// Outbound traffic of the user networks' namespace at `netns` (see `netns.rs`): a
/// slirp4netns that outlives its caller, as the namespace does.
pub fn start_shared(netns: &Path) -> Result<()> {
    let dir = berth_sys::rootless::run_dir().join("slirp");
    start(
        &netns.to_string_lossy(),
        &dir.join("netns.sock"),
        &dir.join("netns.pid"),
        Some(&dir.join("netns.log")),
    )
}

/// The host ports of a mapping: its range, or one free port the kernel picks for `-p 80`.
fn host_ports(p: &PortMapping) -> Result<Vec<u16>> {
    if p.host_port != 0 {
        let end = p.host_port_end.max(p.host_port);
        return Ok((p.host_port..=end).collect());
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(Error::io("pick a free port", "127.0.0.1:0"))?;
    let port = listener
        .local_addr()
        .map_err(Error::io("pick a free port", "127.0.0.1:0"))?
        .port();
    Ok(vec![port])
}

/// slirp4netns' `add_hostfwd`: the host's `host_port` forwarded to the container's port.
fn add_hostfwd(socket: &Path, p: &PortMapping, host_port: u16, container_port: u16) -> Result<()> {
    let host_addr = match p.host_ip.as_str() {
        "" => "0.0.0.0",
        ip => ip,
    };
    let request = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": if p.protocol.is_empty() { "tcp" } else { p.protocol.as_str() },
            "host_addr": host_addr,
            "host_port": host_port,
            "guest_port": container_port,
        }
    });
    let fail = |detail: String| {
        Error::Invalid(format!(
            "rootless: publish {host_addr}:{host_port} -> {container_port}/{}: {detail}",
            p.protocol
        ))
    };
    let mut stream =
        std::os::unix::net::UnixStream::connect(socket).map_err(|e| fail(e.to_string()))?;
    stream
        .write_all(request.to_string().as_bytes())
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
        .map_err(|e| fail(e.to_string()))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| fail(e.to_string()))?;
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
    match reply.get("error") {
        Some(e) => Err(fail(e["desc"].as_str().unwrap_or("refused").to_string())),
        None => Ok(()),
    }
}

/// Ends the container's slirp4netns, if one runs (named by its pid file, checked by name).
pub fn detach(id: &str) {
    let (socket, pid_file) = paths(id);
    if let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "slirp4netns" {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    let _ = std::fs::remove_file(pid_file);
    let _ = std::fs::remove_file(socket);
}
