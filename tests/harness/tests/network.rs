//! Black-box tests of berth's networking (issue 5's "How it is shown") with real traffic:
//! names and aliases on a user network, published ports on 127.0.0.1, on the bridge and back
//! to the container itself, `none`, `container:`, isolation, connect/disconnect, teardown after
//! `rm -f` and after a SIGKILLed monitor, and 100 containers with no collision and no leak.
//!
//! Needs root and `cargo build -p berth`. User networks are this file's own (10.234.N.0/24);
//! tests on the default `bridge` tolerate others using it at the same time: leaks are counted
//! on this test's containers (their veths, DNAT elements, leases and port claims) only.

#[path = "network/ports.rs"]
mod ports;
#[path = "network/subnets.rs"]
mod subnets;
#[path = "network/teardown.rs"]
mod teardown;
#[path = "network/traffic.rs"]
mod traffic;

pub(crate) use berth_harness::{eventually, http_get, need_root};
use std::fs;
use std::process::Command;

use berth_harness::image::{Berth, IMAGE};
pub use berth_harness::monitors_of as monitors_of_id;
use serde_json::Value;

/// A [`Berth`] root and the user networks made in it: dropping it removes the containers,
/// then the networks, then lets [`Berth`]'s own drop check for leftovers.
pub struct Lab {
    pub berth: Berth,
    nets: Vec<String>,
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Lab {
    pub fn new() -> Lab {
        Lab {
            berth: Berth::new(),
            nets: Vec::new(),
        }
    }

    /// `network create --subnet <subnet> <name>`; returns the network's inspect object.
    pub fn network(&mut self, name: &str, subnet: &str) -> Value {
        self.berth
            .ok(&["network", "create", "--subnet", subnet, name]);
        self.nets.push(name.to_string());
        self.network_inspect(name)
    }

    /// Removes the network `name` (made by other means) with the lab's own.
    pub fn adopt(&mut self, name: &str) {
        self.nets.push(name.to_string());
    }

    /// The lease directory of this root's network `net_id` (one file a lease: berth-net's
    /// leases.rs).
    pub fn lease_dir(&self, net_id: &str) -> std::path::PathBuf {
        self.berth
            .root()
            .join("network")
            .join(net_id)
            .join("leases")
    }

    pub fn network_inspect(&self, name: &str) -> Value {
        let out = self.berth.ok(&["network", "inspect", name]);
        let v: Value = serde_json::from_str(&out).expect("network inspect JSON");
        v[0].clone()
    }

    /// `start <name>` in the background, `during` a few ms into it (2 ms times `round` mod 6,
    /// so that a test's rounds land before, during and after the start), then the start's
    /// exit status once it returns.
    pub fn racing_start(&self, name: &str, round: u64, during: impl FnOnce()) -> bool {
        let mut start = self.berth.command();
        start
            .args(["start", name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut start = start.spawn().expect("spawn start");
        std::thread::sleep(std::time::Duration::from_millis(2 * (round % 6)));
        during();
        start.wait().expect("wait start").success()
    }

    /// `run -d <flags> busybox httpd` serving "hello from <name>" on port 80.
    pub fn web(&self, name: &str, flags: &[&str]) -> String {
        let script =
            format!("echo hello from {name} > /tmp/index.html; exec httpd -f -p 80 -h /tmp");
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "sh", "-c", &script]);
        self.berth.ok(&args)
    }

    /// `wget` of `url` from a new container run with `flags`: the body, or None.
    pub fn fetch(&self, flags: &[&str], url: &str) -> Option<String> {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        // busybox's `wget -T` crashes (Debian's static build): timeout(1) bounds it instead,
        // under a shell so that wget is not PID 1, which ignores timeout's SIGTERM.
        let script = format!("timeout 5 wget -q -O - {url}; exit $?");
        args.extend_from_slice(&[IMAGE, "sh", "-c", &script]);
        let ran = self.berth.run(&args);
        ran.success().then(|| ran.stdout.trim().to_string())
    }

    /// Like [`Lab::fetch`], retried until it answers (the server may still be starting).
    pub fn fetch_eventually(&self, flags: &[&str], url: &str) -> String {
        eventually(&format!("{url} to answer"), || self.fetch(flags, url))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut left = self.berth.clean();
        for n in &self.nets {
            let ran = self.berth.run(&["network", "rm", n]);
            if !ran.success() {
                left.push(format!("network rm {n}: {}", ran.stderr.trim()));
            }
        }
        if !left.is_empty() && !std::thread::panicking() {
            panic!("left behind: {left:#?}");
        }
    }
}

/// `inspect`'s State.Pid.
pub fn pid_of(lab: &Lab, name: &str) -> i32 {
    let v = lab.berth.inspect(name);
    v["State"]["Pid"].as_i64().expect("State.Pid") as i32
}

/// The inode of `/proc/<pid>/ns/net`.
pub fn netns_inode(pid: i32) -> String {
    fs::read_link(format!("/proc/{pid}/ns/net"))
        .expect("readlink ns/net")
        .to_string_lossy()
        .into_owned()
}

/// `ip -o <args>` on the host, its stdout.
pub fn ip_cmd(args: &[&str]) -> String {
    let out = Command::new("ip")
        .arg("-o")
        .args(args)
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Elements of berth's nft set or map `name`, as JSON text.
pub fn nft_elements(kind: &str, name: &str) -> Vec<String> {
    let out = Command::new("nft")
        .args(["-j", "list", kind, "ip", "berth", name])
        .output()
        .expect("nft");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut elems = Vec::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        for e in item[kind]["elem"].as_array().into_iter().flatten() {
            elems.push(e.to_string());
        }
    }
    elems
}

/// Every published-port element naming `ip` as its target.
pub fn dnat_elements_for(ip: &str) -> Vec<String> {
    ["pub_tcp", "pub_udp", "pub_ip_tcp", "pub_ip_udp"]
        .into_iter()
        .flat_map(|m| nft_elements("map", m))
        .filter(|e| e.contains(&format!("\"{ip}\"")))
        .collect()
}

/// The port claims left for container `id` in the machine's claim list.
pub fn port_claims_of(id: &str) -> usize {
    let text = fs::read_to_string("/run/berth/network/ports.json").unwrap_or_default();
    text.matches(id).count()
}

/// What a container's network left behind: its veth, DNAT elements, lease and claims.
pub fn leftovers(lab: &Lab, network: &str, id: &str, veth: &str, ip: &str) -> Vec<String> {
    let mut left = Vec::new();
    if !ip_cmd(&["link", "show", veth]).is_empty() {
        left.push(format!("veth {veth}"));
    }
    left.extend(dnat_elements_for(ip));
    left.extend(leases_and_claims(lab, id, &[network]));
    left
}

/// The leases container `id` still holds on `networks`, and its port claims.
pub fn leases_and_claims(lab: &Lab, id: &str, networks: &[&str]) -> Vec<String> {
    let mut left: Vec<String> = networks
        .iter()
        .filter(|net| lab.network_inspect(net)["Containers"].get(id).is_some())
        .map(|net| format!("lease of {id} on {net}"))
        .collect();
    if port_claims_of(id) > 0 {
        left.push(format!("port claim of {id}"));
    }
    left
}

/// The container's record.json.
pub fn record_of(lab: &Lab, name: &str) -> Value {
    let id = lab.berth.inspect(name)["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    let path = lab
        .berth
        .root()
        .join("containers")
        .join(&id)
        .join("record.json");
    serde_json::from_slice(&fs::read(&path).expect("record")).expect("record JSON")
}

/// The container's attachment as its record keeps it (`network` field): id, veth, IP.
pub fn attachment(lab: &Lab, name: &str) -> (String, String, String) {
    let record = record_of(lab, name);
    let id = record["id"].as_str().expect("id").to_string();
    let att = &record["network"];
    let veth = att["host_veth"].as_str().expect("host_veth").to_string();
    let ip = att["ip"].as_str().expect("ip").to_string();
    (id, veth, ip)
}
