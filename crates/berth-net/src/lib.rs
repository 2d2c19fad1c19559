//! berth-net: bridge and veth plumbing, IPAM, NAT and published ports, DNS for user networks.
//!
//! The engine's per-container monitor calls [`NetStore::attach`] after the runtime created the
//! container (its network namespace exists, its process has not started) and
//! [`NetStore::detach`] when it is gone. Everything is synchronous: netlink sockets driven by
//! hand, no async runtime, no thread, no `ip` or `iptables` process.
#![forbid(unsafe_code)]

mod attach;
pub mod dns;
pub mod error;
pub mod ipam;
mod leases;
pub mod nft;
mod ports;
mod rtnl;
mod store;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use error::{NetError, Result};
pub use ipam::Subnet;
pub use store::{Addressing, NetStore};
/// The lease records, for `network inspect`.
pub mod store_types {
    pub use crate::store::{Lease, Leases};
}

/// `berth network create`: everything but the name is optional.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    pub name: String,
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    /// Where containers' addresses come from, inside the subnet (the whole subnet if unset).
    pub ip_range: Option<Subnet>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// A network as stored in `<data_root>/network/<id>/network.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub driver: String,
    /// The Linux bridge; every berth bridge name starts with `berth` (the rules match on it).
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// Docker's IPRange: containers get addresses from here only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Subnet>,
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
    /// The default `bridge` network: no embedded DNS, as with Docker's docker0.
    #[serde(default)]
    pub default: bool,
}

/// A published port, as asked (`host_port` 0: pick a free one; `host_port_end` above it: a
/// free one of `host_port..=host_port_end`) and as published (one port, `host_port_end` 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Empty or `0.0.0.0`: every address of the host.
    #[serde(default)]
    pub host_ip: String,
    pub host_port: u16,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub host_port_end: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub container_id: String,
    pub container_name: String,
    pub hostname: String,
    /// `bridge` (the default network), `none`, or a user network's name or id.
    pub network: String,
    /// The container's network namespace, e.g. `/proc/<pid>/ns/net`.
    pub netns: PathBuf,
    pub aliases: Vec<String>,
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<String>,
    pub ports: Vec<PortMapping>,
    /// The interface in the container: None for the primary `eth0` (with the default route),
    /// `eth1`... for a network joined later (`network connect`), which gets no default route.
    pub ifname: Option<String>,
}

/// What attach did, kept by the engine in the container's record and handed back to detach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub container_id: String,
    /// `none`, or the network's name.
    pub network: String,
    #[serde(default)]
    pub network_id: String,
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mac: Option<String>,
    pub host_veth: Option<String>,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The nameserver for the container's resolv.conf (see [`dns::resolv_conf`]); None on the
    /// default bridge and `none`, where the host's servers are used, as with Docker.
    pub dns: Option<Ipv4Addr>,
    /// Things berth set up that may still not work, e.g. a host firewall that drops forwarding.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The interface in the container; empty for `eth0`.
    #[serde(default)]
    pub ifname: String,
}

impl Attachment {
    /// `--network none`'s: the container's own namespace with its loopback alone.
    pub fn none(container_id: &str) -> Attachment {
        Attachment {
            container_id: container_id.to_string(),
            network: "none".to_string(),
            network_id: String::new(),
            ip: None,
            prefix: 0,
            gateway: None,
            mac: None,
            host_veth: None,
            ports: Vec::new(),
            dns: None,
            warnings: Vec::new(),
            ifname: String::new(),
        }
    }
}
