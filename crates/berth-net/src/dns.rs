//! The DNS server of a user network and the containers' resolv.conf.
//!
//! One small server per user network, run as `berth __dns <network> --root <data_root>` in the
//! host's namespace, listening on the gateway address, port 53/udp. It answers A queries for
//! the names, hostnames, aliases and short ids in the network's leases (re-read when they
//! change) and forwards everything else to the host's servers. Being on the host, it can use
//! a local stub such as 127.0.0.53 that a container could not reach. It exits once the network
//! is removed. Why not Docker's 127.0.0.11 inside each container: that needs a socket and
//! rules in every container's namespace; one process per network costs nothing per container.
//!
//! The server holds `<network dir>/dns.lock` for its whole life: that is how it is found
//! running, and how `stop` waits for its end, with no pid that could be another process's by
//! then. It is started detached (a first process starts the server and exits at once), so no
//! caller, however long it lives, has a child to reap.

use std::collections::HashMap;
use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{NetError, Result};
use crate::leases;
use crate::store::{Leases, NetStore};
use crate::{Attachment, Network};

const TTL: u32 = 600;
const FALLBACK: [Ipv4Addr; 2] = [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)];

/// Set by `ensure_running` for the first process, which only starts the server.
const DETACH: &str = "BERTH_DNS_DETACH";

/// Serves the network's DNS until the network is removed or `stop` asks.
pub fn serve(data_root: &Path, network: &str) -> Result<()> {
    if std::env::var_os(DETACH).is_some() {
        return detach();
    }
    let store = NetStore::open(data_root, Path::new(""))?;
    let net = store.network(network)?;
    let dir = store.net_dir(&net.id);
    let lock_path = dir.join(LOCK);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| NetError::io("dns: open lock", &lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        // Another server runs: it serves.
        Err(std::fs::TryLockError::WouldBlock) => return Ok(()),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(NetError::io("dns: lock", &lock_path, e))
        }
    }
    let addr = SocketAddr::from((net.gateway, 53));
    let sock =
        UdpSocket::bind(addr).map_err(|e| NetError::io("dns: bind udp", addr.to_string(), e))?;
    sock.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| NetError::io("dns: set timeout", addr.to_string(), e))?;
    let sock = Arc::new(sock);
    let upstreams = Arc::new(upstreams(&read("/etc/resolv.conf")));
    let mut names = Names::new(dir.clone());
    let mut buf = [0u8; 1500];
    loop {
        let received = sock.recv_from(&mut buf);
        // Checked at every wake: `stop` wakes us with a datagram.
        if dir.join(STOP).exists() || !dir.join("network.json").exists() {
            return Ok(());
        }
        let (n, from) = match received {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(NetError::io("dns: recv", addr.to_string(), e)),
        };
        let query = &buf[..n];
        match answer(query, names.reload()) {
            Some(reply) => {
                let _ = sock.send_to(&reply, from);
            }
            None => {
                let (sock, ups, q) = (Arc::clone(&sock), Arc::clone(&upstreams), query.to_vec());
                std::thread::spawn(move || forward(&sock, &ups, &q, from));
            }
        }
    }
}

/// Names of the network's containers, re-read when the leases change.
struct Names {
    /// The network's directory.
    dir: PathBuf,
    /// The leases' modification times when `map` was read; `None` before the first read.
    stamp: Option<leases::Stamp>,
    map: HashMap<String, Ipv4Addr>,
}

impl Names {
    fn new(dir: PathBuf) -> Names {
        Names {
            dir,
            stamp: None,
            map: HashMap::new(),
        }
    }

    /// Re-read when the stamp moved, or when it is so recent that a change in the same tick
    /// of the file system's clock (which leaves the time as it was) could have followed it.
    fn reload(&mut self) -> &HashMap<String, Ipv4Addr> {
        let stamp = leases::stamp(&self.dir);
        let recent = [stamp.0, stamp.1].into_iter().flatten().any(|t| {
            SystemTime::now()
                .duration_since(t)
                .map_or(true, |age| age < Duration::from_secs(1))
        });
        if self.stamp != Some(stamp) || recent {
            if let Ok(all) = leases::all(&self.dir) {
                self.map = names_of(&all);
                self.stamp = Some(stamp);
            }
        }
        &self.map
    }
}

pub(crate) fn names_of(leases: &Leases) -> HashMap<String, Ipv4Addr> {
    let mut map = HashMap::new();
    for (ip, l) in leases {
        let short = l.container_id.get(..12).unwrap_or(&l.container_id);
        let names = [l.name.as_str(), l.hostname.as_str(), short]
            .into_iter()
            .chain(l.aliases.iter().map(String::as_str));
        for n in names.filter(|n| !n.is_empty()) {
            map.insert(n.to_ascii_lowercase(), *ip);
        }
    }
    map
}

/// The reply to `query` when it is ours to answer: a known name (A records; no data for
/// other types) or a single label (NXDOMAIN, never sent upstream). None: forward it.
pub(crate) fn answer(query: &[u8], names: &HashMap<String, Ipv4Addr>) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || query[4..6] != [0, 1] {
        return None;
    }
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = *query.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question_end = i + 4;
    query.get(..question_end)?;
    let name = labels.join(".");
    let found = names.get(&name);
    if found.is_none() && labels.len() > 1 {
        return None;
    }
    let mut r = Vec::with_capacity(question_end + 16);
    r.extend_from_slice(&query[..2]);
    let rd = query[2] & 0x01;
    let rcode = if found.is_some() { 0 } else { 3 };
    r.extend_from_slice(&[0x84 | rd, 0x80 | rcode]);
    let ancount: u16 = if found.is_some() && qtype == 1 { 1 } else { 0 };
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&ancount.to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&query[12..question_end]);
    if let (Some(ip), 1) = (found, ancount) {
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        r.extend_from_slice(&TTL.to_be_bytes());
        r.extend_from_slice(&[0, 4]);
        r.extend_from_slice(&ip.octets());
    }
    Some(r)
}

fn forward(sock: &UdpSocket, upstreams: &[IpAddr], query: &[u8], client: SocketAddr) {
    for up in upstreams {
        let local: SocketAddr = if up.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(u) = UdpSocket::bind(local) else {
            continue;
        };
        let _ = u.set_read_timeout(Some(Duration::from_secs(3)));
        if u.connect((*up, 53)).and_then(|_| u.send(query)).is_err() {
            continue;
        }
        let mut buf = [0u8; 4096];
        if let Ok(n) = u.recv(&mut buf) {
            let _ = sock.send_to(&buf[..n], client);
            return;
        }
    }
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn nameservers(resolv: &str) -> Vec<IpAddr> {
    resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|v| v.trim().split('%').next()?.parse().ok())
        .collect()
}

/// The server's upstreams: the host's, as they are (it runs on the host, so a stub works).
fn upstreams(host_resolv: &str) -> Vec<IpAddr> {
    let s = nameservers(host_resolv);
    if s.is_empty() {
        FALLBACK.iter().map(|ip| IpAddr::V4(*ip)).collect()
    } else {
        s
    }
}

/// Servers a container can reach: the host's without loopback ones, else systemd-resolved's
/// upstreams, else Docker's fallback.
fn container_servers(host_resolv: &str, resolved: &str) -> Vec<IpAddr> {
    let reachable = |t: &str| -> Vec<IpAddr> {
        nameservers(t)
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .collect()
    };
    let s = reachable(host_resolv);
    if !s.is_empty() {
        return s;
    }
    let s = reachable(resolved);
    if !s.is_empty() {
        return s;
    }
    FALLBACK.iter().map(|ip| IpAddr::V4(*ip)).collect()
}

/// The container's /etc/resolv.conf for `att`.
pub fn resolv_conf(att: &Attachment) -> String {
    render_resolv(
        att,
        &read("/etc/resolv.conf"),
        &read("/run/systemd/resolve/resolv.conf"),
    )
}

fn render_resolv(att: &Attachment, host: &str, resolved: &str) -> String {
    let mut out = String::new();
    match att.dns {
        Some(ip) => out.push_str(&format!("nameserver {ip}\n")),
        None => {
            for ip in container_servers(host, resolved) {
                out.push_str(&format!("nameserver {ip}\n"));
            }
        }
    }
    for l in host.lines().map(str::trim) {
        if l.starts_with("search ") || (l.starts_with("options ") && att.dns.is_none()) {
            out.push_str(l);
            out.push('\n');
        }
    }
    if att.dns.is_some() {
        out.push_str("options ndots:0\n");
    }
    out
}

/// The lock a running server holds, and the marker that asks it to stop.
const LOCK: &str = "dns.lock";
const STOP: &str = "dns.stop";

/// Whether a server holds the network's lock.
fn running(dir: &Path) -> bool {
    File::open(dir.join(LOCK))
        .is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

/// The first process of `ensure_running`: starts the server as its own child and exits, so the
/// server is nobody's child to reap but init's (or a subreaper's, which reaps its orphans).
fn detach() -> Result<()> {
    let exe = PathBuf::from("/proc/self/exe");
    Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env_remove(DETACH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| NetError::io("dns: start the server", exe, e))
}

/// Starts the network's server unless it runs. A second server racing for the lock finds it
/// taken and exits, so two concurrent attaches need no lock here.
pub(crate) fn ensure_running(store: &NetStore, net: &Network) -> Result<()> {
    let dir = store.net_dir(&net.id);
    if store.berth_exe.as_os_str().is_empty() || running(&dir) {
        return Ok(());
    }
    let status = Command::new(&store.berth_exe)
        .arg("__dns")
        .arg(&net.id)
        .arg("--root")
        .arg(&store.data_root)
        .env(DETACH, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| NetError::io("start dns server", &store.berth_exe, e))?;
    if status.success() {
        Ok(())
    } else {
        Err(NetError::io(
            "start dns server",
            &store.berth_exe,
            std::io::Error::other(format!("the starter exited with {status}")),
        ))
    }
}

/// Stops the network's server if one runs, and waits (at most 3 s) for its end on its lock:
/// a marker file says stop, a datagram to its address wakes it to read it.
pub(crate) fn stop(dir: &Path, gateway: Ipv4Addr) {
    if !running(dir) {
        return;
    }
    let marker = dir.join(STOP);
    let _ = fs::write(&marker, b"");
    let poke = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0));
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut next_poke = std::time::Instant::now();
    while running(dir) && std::time::Instant::now() < deadline {
        if std::time::Instant::now() >= next_poke {
            if let Ok(s) = &poke {
                let _ = s.send_to(b"", (gateway, 53));
            }
            next_poke += Duration::from_millis(200);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = fs::remove_file(&marker);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    fn names() -> HashMap<String, Ipv4Addr> {
        HashMap::from([("web".to_string(), Ipv4Addr::new(10, 9, 0, 2))])
    }

    #[test]
    fn answers_known_names() {
        let r = answer(&query("WEB", 1), &names()).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0f, 0, "NOERROR");
        assert_eq!(&r[6..8], &[0, 1], "one answer");
        assert_eq!(&r[r.len() - 4..], &[10, 9, 0, 2]);
        let aaaa = answer(&query("web", 28), &names()).unwrap();
        assert_eq!(&aaaa[6..8], &[0, 0], "no AAAA data, and not forwarded");
    }

    #[test]
    fn unknown_single_labels_are_nxdomain_and_the_rest_is_forwarded() {
        let r = answer(&query("db", 1), &names()).unwrap();
        assert_eq!(r[3] & 0x0f, 3);
        assert!(answer(&query("example.org", 1), &names()).is_none());
        assert!(answer(&[0; 5], &names()).is_none());
        let mut truncated = query("web", 1);
        truncated.truncate(15);
        assert!(answer(&truncated, &names()).is_none());
    }

    #[test]
    fn resolv_conf_skips_stubs() {
        let host = "nameserver 127.0.0.53\nsearch corp.example\noptions edns0\n";
        let resolved = "nameserver 192.0.2.53\n";
        let mut att = Attachment::none("c");
        assert_eq!(
            render_resolv(&att, host, resolved),
            "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"
        );
        assert_eq!(
            render_resolv(&att, host, ""),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch corp.example\noptions edns0\n"
        );
        att.dns = Some(Ipv4Addr::new(10, 9, 0, 1));
        assert_eq!(
            render_resolv(&att, host, resolved),
            "nameserver 10.9.0.1\nsearch corp.example\noptions ndots:0\n"
        );
        assert_eq!(
            upstreams(host),
            vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53))]
        );
    }
}
