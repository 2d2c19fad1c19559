//! Attaching a container's network namespace to a network, and detaching it without leaks.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use crate::error::{NetError, Result};
use crate::ipam::{self, mac_for, parse_mac};
use crate::nft::Nft;
use crate::rtnl::{Rtnl, LOOPBACK_INDEX};
use crate::store::{netlink, Lease, NetStore, DEFAULT_NETWORK};
use crate::{dns, leases, ports, AttachRequest, Attachment, Network};

const CONTAINER_IFNAME: &str = "eth0";

impl NetStore {
    /// Called by the monitor once the container's netns exists and before its process runs.
    pub fn attach(&self, req: &AttachRequest) -> Result<Attachment> {
        match req.network.as_str() {
            // Its loopback link alone, which the runtime brought up as it made the namespace
            // (as runc does): nothing to do in it.
            "none" => Ok(Attachment::none(&req.container_id)),
            "host" => Err(NetError::invalid(
                "network",
                "host",
                "host networking needs no attach",
            )),
            name => {
                let net = if name == DEFAULT_NETWORK || name.is_empty() {
                    self.default_network()?
                } else {
                    self.network(name)?
                };
                self.attach_bridge(&net, req)
            }
        }
    }

    fn attach_bridge(&self, net: &Network, req: &AttachRequest) -> Result<Attachment> {
        if let Some(m) = &req.mac {
            parse_mac(m)?;
        }
        req.ports.iter().try_for_each(ports::validate)?;
        let (bridge_index, ip, mac) = self.lease(net, req)?;
        let mut att = Attachment {
            container_id: req.container_id.clone(),
            network: net.name.clone(),
            network_id: net.id.clone(),
            ip: Some(ip),
            prefix: net.subnet.prefix,
            gateway: Some(net.gateway),
            mac: Some(mac.clone()),
            host_veth: Some(veth_name(&req.container_id, &net.id)),
            ports: Vec::new(),
            dns: None,
            warnings: Vec::new(),
            ifname: req.ifname.clone().unwrap_or_default(),
        };
        match self.plumb(net, req, &mut att, bridge_index, &mac) {
            Ok(()) => {
                if !net.internal {
                    att.warnings = firewall_warnings(net);
                }
                Ok(att)
            }
            Err(e) => {
                let _ = self.detach(&att);
                Err(e)
            }
        }
    }

    /// Under the network's lock: the bridge is up and the container has an address.
    fn lease(&self, net: &Network, req: &AttachRequest) -> Result<(u32, Ipv4Addr, String)> {
        let _lock = self.lock_network(&net.id)?;
        let dir = self.net_dir(&net.id);
        if !dir.join("network.json").exists() {
            return Err(NetError::NotFound(net.name.clone()));
        }
        let bridge_index = self.ensure_bridge(net)?;
        let used = leases::prepare_attach(&dir, &req.container_id)?;
        let ip = ipam::allocate(
            &net.subnet,
            net.ip_range.as_ref(),
            net.gateway,
            &used,
            req.ip,
            &net.name,
        )?;
        let mac = req.mac.clone().unwrap_or_else(|| mac_for(ip));
        let lease = Lease {
            container_id: req.container_id.clone(),
            name: req.container_name.clone(),
            hostname: req.hostname.clone(),
            aliases: req.aliases.clone(),
            mac: mac.clone(),
            veth: veth_name(&req.container_id, &net.id),
            ports: Vec::new(),
        };
        leases::write(&dir, ip, &lease)?;
        Ok((bridge_index, ip, mac))
    }

    /// Ports, veth pair, address and route; the DNS server of a user network.
    fn plumb(
        &self,
        net: &Network,
        req: &AttachRequest,
        att: &mut Attachment,
        bridge: u32,
        mac: &str,
    ) -> Result<()> {
        const STEP: &str = "attach";
        let ip = att.ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        att.ports = self.publish(&req.container_id, ip, &req.ports)?;
        if !att.ports.is_empty() {
            self.record_ports(net, &req.container_id, &att.ports)?;
        }
        let veth = att.host_veth.clone().unwrap_or_default();
        let ifname = req.ifname.as_deref().unwrap_or(CONTAINER_IFNAME);
        let netns = File::open(&req.netns).map_err(|e| NetError::io(STEP, &req.netns, e))?;
        let mut host = Rtnl::open().map_err(|e| netlink(STEP, "socket", e))?;
        let mac_bytes = parse_mac(mac)?;
        let op = || {
            format!(
                "RTM_NEWLINK veth {veth} (peer {ifname} in {})",
                req.netns.display()
            )
        };
        match host.create_veth(&veth, bridge, ifname, netns.as_fd(), mac_bytes) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                host.delete_link(&veth)
                    .map_err(|e| netlink(STEP, format!("RTM_DELLINK stale {veth}"), e))?;
                host.create_veth(&veth, bridge, ifname, netns.as_fd(), mac_bytes)
                    .map_err(|e| netlink(STEP, op(), e))?;
            }
            r => r.map_err(|e| netlink(STEP, op(), e))?,
        }
        // Neither end has carrier before the container's end is up: no IPv6 chatter yet.
        host.no_ipv6_link_local(&veth)
            .map_err(|e| netlink(STEP, format!("RTM_SETLINK {veth} addrgenmode none"), e))?;
        // A container reaching its own published port through a host address: with
        // br_netfilter the DNATed frame is bridged back out of the port it came in by.
        // Rootless berth's /sys is the host network namespace's, not the one its bridges are in;
        // it publishes no ports on user networks.
        if !berth_sys::rootless::is_rootless() {
            let hairpin = format!("/sys/class/net/{veth}/brport/hairpin_mode");
            std::fs::write(&hairpin, "1").map_err(|e| NetError::io(STEP, &hairpin, e))?;
        }
        let mut ns = Rtnl::open_in(&req.netns).map_err(|e| ns_err(STEP, req, "socket", e))?;
        ns.set_up(LOOPBACK_INDEX)
            .map_err(|e| ns_err(STEP, req, "RTM_SETLINK lo up", e))?;
        let index = ns
            .link_index(ifname)
            .and_then(|i| i.ok_or_else(|| io::ErrorKind::NotFound.into()))
            .map_err(|e| ns_err(STEP, req, &format!("RTM_GETLINK {ifname}"), e))?;
        ns.no_ipv6_link_local(ifname).map_err(|e| {
            ns_err(
                STEP,
                req,
                &format!("RTM_SETLINK {ifname} addrgenmode none"),
                e,
            )
        })?;
        ns.set_up(index)
            .map_err(|e| ns_err(STEP, req, &format!("RTM_SETLINK {ifname} up"), e))?;
        ns.add_address(index, ip, net.subnet.prefix, net.subnet.broadcast())
            .map_err(|e| ns_err(STEP, req, &format!("RTM_NEWADDR {ifname}"), e))?;
        if !net.internal && req.ifname.is_none() {
            ns.add_default_route(net.gateway)
                .map_err(|e| ns_err(STEP, req, "RTM_NEWROUTE default", e))?;
        }
        if !net.default {
            dns::ensure_running(self, net)?;
            att.dns = Some(net.gateway);
        }
        Ok(())
    }

    fn record_ports(
        &self,
        net: &Network,
        container_id: &str,
        ports: &[crate::PortMapping],
    ) -> Result<()> {
        let _lock = self.lock_network(&net.id)?;
        let dir = self.net_dir(&net.id);
        leases::update_container(&dir, container_id, |l| l.ports = ports.to_vec()).map(|_| ())
    }

    /// Idempotent; works when the netns is gone. Collects every error and keeps going.
    pub fn detach(&self, att: &Attachment) -> Result<()> {
        let link = self.delete_link(att);
        let rest = self.release_attachment(att);
        match (link, rest) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(NetError::Teardown(mut a)), Err(NetError::Teardown(b))) => {
                a.extend(b);
                Err(NetError::Teardown(a))
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// The host end of the container's veth, deleted (gone already is fine). The kernel does
    /// this too when the container's network namespace dies, but later and on its own time;
    /// deleting it waits for the kernel (tens of milliseconds), which is why the monitor does
    /// it last, after it has reported the exit.
    pub fn delete_link(&self, att: &Attachment) -> Result<()> {
        if att.network == "none" || att.network == "host" {
            return Ok(());
        }
        if let Some(veth) = &att.host_veth {
            let gone = Rtnl::open().and_then(|mut r| r.delete_link(veth));
            if let Err(e) = gone {
                return Err(NetError::Teardown(vec![netlink(
                    "detach",
                    format!("RTM_DELLINK {veth}"),
                    e,
                )
                .to_string()]));
            }
        }
        Ok(())
    }

    /// Everything of [`detach`](Self::detach) but the link: the lease, the published ports'
    /// rules and claims. Fast (no kernel wait): the address and ports are free at once.
    pub fn release_attachment(&self, att: &Attachment) -> Result<()> {
        if att.network == "none" || att.network == "host" {
            return Ok(());
        }
        let mut errors = Vec::new();
        let net = self.network(if att.network_id.is_empty() {
            &att.network
        } else {
            &att.network_id
        });
        let lease_ports = match &net {
            Ok(net) => self.release(net, &att.container_id, &mut errors),
            Err(NetError::NotFound(_)) => Vec::new(),
            Err(e) => {
                errors.push(e.to_string());
                Vec::new()
            }
        };
        let mut ports = att.ports.clone();
        ports.extend(lease_ports.into_iter().filter(|p| !att.ports.contains(p)));
        self.unpublish(&att.container_id, att.ip, &ports, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(NetError::Teardown(errors))
        }
    }

    /// The container's attachments as the leases tell them, on this root's networks and the
    /// machine's default one: what detach needs when the engine's own account is lost (a
    /// corrupt record) or behind (a `network connect` racing the teardown). The errors are
    /// those of networks whose leases could not be read.
    pub fn attachments_of(&self, container_id: &str) -> (Vec<Attachment>, Vec<NetError>) {
        let networks = match self.networks() {
            Ok(n) => n,
            Err(e) => return (Vec::new(), vec![e]),
        };
        let mut atts = Vec::new();
        let mut errors = Vec::new();
        for net in networks {
            let (mine, temporary) = match leases::held_by(&self.net_dir(&net.id), container_id) {
                Ok(held) => held,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            // Only a killed write's temporary: an attachment with nothing to undo but that
            // file, which releasing it removes.
            if mine.is_empty() && temporary {
                atts.push(Attachment {
                    network: net.name.clone(),
                    network_id: net.id.clone(),
                    prefix: net.subnet.prefix,
                    ..Attachment::none(container_id)
                });
            }
            atts.extend(mine.into_iter().map(|(ip, lease)| Attachment {
                container_id: lease.container_id,
                network: net.name.clone(),
                network_id: net.id.clone(),
                ip: Some(ip),
                prefix: net.subnet.prefix,
                gateway: Some(net.gateway),
                mac: Some(lease.mac),
                host_veth: Some(lease.veth),
                ports: lease.ports,
                dns: None,
                warnings: Vec::new(),
                ifname: String::new(),
            }));
        }
        (atts, errors)
    }

    /// A renamed container's leases take its new name: the DNS answers to it from then on.
    pub fn rename_container(&self, container_id: &str, name: &str) -> Result<()> {
        for net in self.networks()? {
            let dir = self.net_dir(&net.id);
            if leases::of_container(&dir, container_id)?.is_empty() {
                continue;
            }
            let _lock = self.lock_network(&net.id)?;
            leases::update_container(&dir, container_id, |l| l.name = name.to_string())?;
        }
        Ok(())
    }

    /// Drops the container's lease; returns the ports it recorded.
    fn release(
        &self,
        net: &Network,
        container_id: &str,
        errors: &mut Vec<String>,
    ) -> Vec<crate::PortMapping> {
        let _lock = match self.lock_network(&net.id) {
            Ok(l) => l,
            Err(e) => {
                errors.push(e.to_string());
                return Vec::new();
            }
        };
        match leases::remove_container(&self.net_dir(&net.id), container_id) {
            Ok(gone) => gone.into_values().flat_map(|l| l.ports).collect(),
            Err(e) => {
                errors.push(e.to_string());
                Vec::new()
            }
        }
    }
}

/// What the host's own firewall would drop of what berth forwards (published ports from other
/// hosts, the containers' outbound traffic). Only nftables base chains are seen (iptables-nft
/// included): iptables-legacy's policies are not readable without running iptables.
fn firewall_warnings(net: &Network) -> Vec<String> {
    let chains = match Nft::open().and_then(|mut n| n.forward_drop_chains()) {
        Ok(c) => c,
        Err(e) => return vec![format!("could not read the host's forward chains: {e}")],
    };
    chains
        .into_iter()
        .map(|c| {
            format!(
                "the host's firewall chain {c} drops forwarded packets by default (policy drop): \
                 published ports and outbound traffic of network {} may be dropped; accept \
                 forwarding for {} (bridge {}) in that chain",
                net.name, net.subnet, net.bridge
            )
        })
        .collect()
}

fn ns_err(step: &'static str, req: &AttachRequest, op: &str, e: io::Error) -> NetError {
    netlink(step, format!("{op} in {}", req.netns.display()), e)
}

/// `vberth` and 9 hex digits of a hash of container and network: 15 bytes, Linux's limit, and
/// never the `berth` prefix that the rules reserve for bridges.
pub(crate) fn veth_name(container_id: &str, network_id: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in container_id.bytes().chain([0]).chain(network_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("vberth{:09x}", h & 0xf_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_and_differ() {
        let a = veth_name("c1", "n1");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("vberth"));
        assert_ne!(a, veth_name("c1", "n2"));
        assert_ne!(a, veth_name("c2", "n1"));
        assert_eq!(a, veth_name("c1", "n1"));
    }
}
