//! Helpers of the real-kernel tests: throwaway network namespaces, busybox servers and clients,
//! a store on a temp data root, and counts of what berth leaves behind.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_net::{AttachRequest, Attachment, NetStore, NetworkCreate, PortMapping};
use berth_sys::test_support::{scaled, skipping};

pub const BUSYBOX: &str = "/bin/busybox";

/// None, after printing `skipped: needs X`, when the machine cannot run these tests (where a
/// skip would hide a gap, CI, the test fails instead).
pub fn check_tools() -> Option<()> {
    let need = |ok: bool, what: &str| {
        if !ok {
            skipping(format_args!("needs {what}"));
        }
        ok
    };
    let root = nix::unistd::Uid::effective().is_root();
    let tools = ["unshare", "nsenter", "nft", "ip"].iter().all(|t| which(t));
    (need(root, "root")
        && need(Path::new(BUSYBOX).exists(), BUSYBOX)
        && need(tools, "unshare, nsenter, nft, ip"))
    .then_some(())
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
        .unwrap_or(false)
}

/// A network namespace held by a sleeping `unshare --net` process; killed on drop.
pub struct Netns {
    child: Child,
    pub path: PathBuf,
}

impl Netns {
    pub fn new() -> Netns {
        let mut child = Command::new("unshare")
            .args(["--net", "--", BUSYBOX, "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare --net");
        let path = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        // unshare(1) makes the namespace, then execs sleep; wait for the first, as long as a
        // loaded machine needs (a count of yields ran out under load).
        let deadline = Instant::now() + scaled(Duration::from_secs(30));
        while Instant::now() < deadline {
            match std::fs::read_link(&path) {
                Ok(l) if l != ours => return Netns { child, path },
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("unshare --net never entered a new namespace");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path.display()))
            .arg("--")
            .args(args);
        c
    }

    /// Runs `args` in the namespace; (success, stdout).
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let out = self
            .cmd(args)
            .stderr(Stdio::null())
            .output()
            .expect("nsenter");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    }

    pub fn links(&self) -> Vec<String> {
        link_names(&self.run(&["ip", "-j", "link"]).1)
    }

    /// busybox httpd on port 80 serving `body`; killed on drop.
    pub fn httpd(&self, dir: &Path, body: &str) -> Killed {
        std::fs::write(dir.join("index.html"), body).unwrap();
        let child = self
            .cmd(&[
                BUSYBOX,
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                dir.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("httpd");
        let killed = Killed(child);
        // Ready once the socket listens: poll its namespace's TCP tables (httpd may use v6).
        let pid = killed.0.id();
        let deadline = Instant::now() + scaled(Duration::from_secs(10));
        while Instant::now() < deadline {
            let tables = ["tcp", "tcp6"].map(|t| {
                std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).unwrap_or_default()
            });
            if tables
                .iter()
                .flat_map(|t| t.lines())
                .any(|l| l.contains(":0050 ") && l.contains(" 0A "))
            {
                return killed;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("httpd never listened");
    }

    /// `wget` from inside the namespace; the body, or None when it failed.
    pub fn wget(&self, url: &str) -> Option<String> {
        // busybox 1.35's `wget -T` crashes; coreutils' timeout bounds a blocked connect instead.
        let limit = wget_limit();
        let (ok, out) = self.run(&["timeout", &limit, BUSYBOX, "wget", "-q", "-O", "-", url]);
        ok.then_some(out)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long a `wget` may take, in seconds for timeout(1): 5 on an idle machine.
fn wget_limit() -> String {
    format!("{:.1}", scaled(Duration::from_secs(5)).as_secs_f64())
}

pub fn host_wget(url: &str) -> Option<String> {
    let out = Command::new("timeout")
        .args([&wget_limit(), BUSYBOX, "wget", "-q", "-O", "-", url])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

pub fn link_names(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["ifname"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn host_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-j", "link"])
        .output()
        .expect("ip -j link");
    link_names(&String::from_utf8_lossy(&out.stdout))
}

/// Elements of one of berth's maps or sets, as nft prints them.
pub fn nft_elements(set: &str) -> Vec<String> {
    let kind = if set == "internal" { "set" } else { "map" };
    let out = Command::new("nft")
        .args(["-j", "list", kind, "ip", "berth", set])
        .output()
        .expect("nft");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut elems = Vec::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        for e in item[kind]["elem"].as_array().into_iter().flatten() {
            elems.push(e.to_string());
        }
    }
    elems
}

/// A store on a temp data root; removes its networks (after detaching leftovers) on drop.
pub struct TestStore {
    pub store: NetStore,
    pub dir: tempfile::TempDir,
}

impl TestStore {
    pub fn new() -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let store =
            NetStore::open(dir.path(), Path::new(env!("CARGO_BIN_EXE_berth-net-dns"))).unwrap();
        TestStore { store, dir }
    }

    pub fn network(&self, name: &str, subnet: &str, internal: bool) -> berth_net::Network {
        let req = NetworkCreate {
            name: name.to_string(),
            subnet: Some(subnet.parse().unwrap()),
            internal,
            ..Default::default()
        };
        self.store.create_network(&req).unwrap()
    }

    pub fn attach(
        &self,
        ns: &Netns,
        network: &str,
        name: &str,
        ports: Vec<PortMapping>,
    ) -> Attachment {
        let req = AttachRequest {
            container_id: format!("{name}-{}", ns.pid()),
            container_name: name.to_string(),
            hostname: format!("{name}-host"),
            network: network.to_string(),
            netns: ns.path.clone(),
            aliases: vec![format!("{name}-alias")],
            ports,
            ..Default::default()
        };
        self.store.attach(&req).unwrap()
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        // The machine's default network is shared with other data roots: never torn down here.
        for net in self.store.networks().unwrap_or_default() {
            if net.default {
                continue;
            }
            for (ip, lease) in self.store.leases(&net).unwrap_or_default() {
                let att = Attachment {
                    container_id: lease.container_id,
                    network: net.name.clone(),
                    network_id: net.id.clone(),
                    ip: Some(ip),
                    prefix: net.subnet.prefix,
                    gateway: Some(net.gateway),
                    mac: None,
                    host_veth: Some(lease.veth),
                    ports: lease.ports,
                    dns: None,
                    warnings: Vec::new(),
                    ifname: String::new(),
                };
                let _ = self.store.detach(&att);
            }
            let _ = self.store.remove_network(&net.id);
        }
    }
}

pub fn tcp(host_port: u16, container_port: u16) -> PortMapping {
    PortMapping {
        host_ip: String::new(),
        host_port,
        host_port_end: 0,
        container_port,
        protocol: "tcp".into(),
    }
}
