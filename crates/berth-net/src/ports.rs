//! Published ports: host port claims (`/run/berth/network/ports.json`, shared by every data
//! root like the nftables maps they mirror) and their elements in berth's DNAT maps.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};

use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};
use crate::nft::{Element, Nft};
use crate::store::{nft_err, read_json, write_json, NetStore};
use crate::PortMapping;

/// Docker's range for `-p CONTAINER_PORT` without a host port.
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    container_id: String,
    container_ip: Ipv4Addr,
    port: PortMapping,
}

type Claims = Vec<Claim>;

fn host_ip(p: &PortMapping) -> Result<Ipv4Addr> {
    if p.host_ip.is_empty() {
        return Ok(Ipv4Addr::UNSPECIFIED);
    }
    p.host_ip
        .parse()
        .map_err(|_| NetError::invalid("host IP", &p.host_ip, "not an IPv4 address"))
}

pub(crate) fn validate(p: &PortMapping) -> Result<()> {
    host_ip(p)?;
    if p.protocol != "tcp" && p.protocol != "udp" {
        return Err(NetError::invalid(
            "port protocol",
            &p.protocol,
            "use tcp or udp",
        ));
    }
    if p.container_port == 0 {
        return Err(NetError::invalid(
            "container port",
            "0",
            "must be 1 to 65535",
        ));
    }
    Ok(())
}

fn clashes(a: &PortMapping, b: &PortMapping) -> bool {
    let (ia, ib) = (host_ip(a).ok(), host_ip(b).ok());
    a.protocol == b.protocol
        && a.host_port == b.host_port
        && (ia == ib || ia == Some(Ipv4Addr::UNSPECIFIED) || ib == Some(Ipv4Addr::UNSPECIFIED))
}

/// Whether no host process holds the port (the DNAT would hide it).
fn bindable(protocol: &str, ip: Ipv4Addr, port: u16) -> bool {
    if protocol == "udp" {
        UdpSocket::bind((ip, port)).is_ok()
    } else {
        TcpListener::bind((ip, port)).is_ok()
    }
}

fn element(p: &PortMapping, ip: Ipv4Addr) -> Result<Element> {
    Ok(Element::port(
        &p.protocol,
        Some(host_ip(p)?),
        p.host_port,
        ip,
        p.container_port,
    ))
}

impl NetStore {
    fn claims_path(&self) -> std::path::PathBuf {
        self.shared.join("ports.json")
    }

    fn claims(&self) -> Result<Claims> {
        match read_json("read port claims", &self.claims_path()) {
            Err(NetError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(Claims::new())
            }
            r => r,
        }
    }

    /// Claims every port (choosing free host ports for 0) and adds its DNAT elements.
    pub(crate) fn publish(
        &self,
        container_id: &str,
        ip: Ipv4Addr,
        wanted: &[PortMapping],
    ) -> Result<Vec<PortMapping>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let _g = self.lock_shared()?;
        let mut claims = self.claims()?;
        let mut published = Vec::new();
        for want in wanted {
            let mut p = PortMapping {
                host_port_end: 0,
                ..want.clone()
            };
            let hip = host_ip(&p)?;
            let choices = match (want.host_port, want.host_port_end) {
                (0, _) => Some(EPHEMERAL),
                (first, last) if last > first => Some(first..=last),
                _ => None,
            };
            if let Some(choices) = choices {
                let range = format!("{}-{}", choices.start(), choices.end());
                p.host_port = choices
                    .clone()
                    .find(|port| {
                        let cand = PortMapping {
                            host_port: *port,
                            ..p.clone()
                        };
                        !claims.iter().any(|c| clashes(&c.port, &cand))
                            && !published_clash(&published, &cand)
                            && bindable(&p.protocol, hip, *port)
                    })
                    .ok_or_else(|| {
                        let why = format!("no free port left in {range}");
                        NetError::invalid("host port", &range, &why)
                    })?;
            } else if claims.iter().any(|c| clashes(&c.port, &p))
                || published_clash(&published, &p)
                || !bindable(&p.protocol, hip, p.host_port)
            {
                return Err(NetError::PortInUse {
                    host_ip: hip.to_string(),
                    port: p.host_port,
                    protocol: p.protocol,
                });
            }
            published.push(Claim {
                container_id: container_id.to_string(),
                container_ip: ip,
                port: p,
            });
        }
        add_elements(&published)?;
        let ports = published.iter().map(|c| c.port.clone()).collect();
        claims.extend(published);
        write_json("write port claims", &self.claims_path(), &claims)?;
        Ok(ports)
    }

    /// Removes the container's claims and DNAT elements; what is already gone is fine.
    pub(crate) fn unpublish(
        &self,
        container_id: &str,
        ip: Option<Ipv4Addr>,
        ports: &[PortMapping],
        errors: &mut Vec<String>,
    ) {
        let guard = self.lock_shared();
        if let Err(e) = &guard {
            errors.push(e.to_string());
        }
        let mut claims = self.claims().unwrap_or_else(|e| {
            errors.push(e.to_string());
            Claims::new()
        });
        let mine: Vec<Claim> = claims
            .iter()
            .filter(|c| c.container_id == container_id)
            .cloned()
            .collect();
        let mut to_remove: Vec<(PortMapping, Ipv4Addr)> = mine
            .iter()
            .map(|c| (c.port.clone(), c.container_ip))
            .collect();
        // Ports the caller knows of but no claim of ours holds (a second teardown, a stale
        // lease): their elements go too, unless another container claims that port now. An
        // element is deleted by its key (the host port, and address), whatever it points to,
        // so deleting it would unpublish that other container.
        if let Some(ip) = ip {
            for p in ports {
                let ours = mine.iter().any(|c| &c.port == p);
                let theirs = claims
                    .iter()
                    .any(|c| c.container_id != container_id && clashes(&c.port, p));
                if !ours && !theirs {
                    to_remove.push((p.clone(), ip));
                }
            }
        }
        if let Err(e) = Nft::open()
            .map_err(|e| nft_err("unpublish ports", "socket", e))
            .and_then(|mut nft| {
                for (p, ip) in &to_remove {
                    let el = element(p, *ip)?;
                    match nft.elements(false, std::slice::from_ref(&el)) {
                        Err(e) if e.raw_os_error() != Some(nix::errno::Errno::ENOENT as i32) => {
                            errors.push(
                                nft_err(
                                    "unpublish ports",
                                    format!("delete @{} element", el.set),
                                    e,
                                )
                                .to_string(),
                            );
                        }
                        _ => {}
                    }
                }
                Ok(())
            })
        {
            errors.push(e.to_string());
        }
        if !mine.is_empty() {
            claims.retain(|c| c.container_id != container_id);
            if let Err(e) = write_json("write port claims", &self.claims_path(), &claims) {
                errors.push(e.to_string());
            }
        }
    }
}

fn published_clash(published: &[Claim], p: &PortMapping) -> bool {
    published.iter().any(|c| clashes(&c.port, p))
}

/// One batch per map; an element left by a container whose teardown never ran is replaced.
fn add_elements(claims: &[Claim]) -> Result<()> {
    const STEP: &str = "publish ports";
    let mut by_set: BTreeMap<&'static str, Vec<Element>> = BTreeMap::new();
    for c in claims {
        let e = element(&c.port, c.container_ip)?;
        by_set.entry(e.set).or_default().push(e);
    }
    let mut nft = Nft::open().map_err(|e| nft_err(STEP, "socket", e))?;
    for (set, elems) in by_set {
        if let Err(e) = nft.elements(true, &elems) {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(nft_err(STEP, format!("add @{set} elements"), e));
            }
            for el in &elems {
                let _ = nft.elements(false, std::slice::from_ref(el));
            }
            nft.elements(true, &elems)
                .map_err(|e| nft_err(STEP, format!("add @{set} elements"), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(ip: &str, port: u16, proto: &str) -> PortMapping {
        PortMapping {
            host_ip: ip.into(),
            host_port: port,
            host_port_end: 0,
            container_port: 80,
            protocol: proto.into(),
        }
    }

    #[test]
    fn clash_rules() {
        assert!(clashes(&pm("", 80, "tcp"), &pm("127.0.0.1", 80, "tcp")));
        assert!(clashes(&pm("0.0.0.0", 80, "tcp"), &pm("", 80, "tcp")));
        assert!(!clashes(&pm("", 80, "tcp"), &pm("", 80, "udp")));
        assert!(!clashes(
            &pm("127.0.0.1", 80, "tcp"),
            &pm("127.0.0.2", 80, "tcp")
        ));
        assert!(!clashes(&pm("", 80, "tcp"), &pm("", 81, "tcp")));
    }

    #[test]
    fn validation() {
        assert!(validate(&pm("", 80, "sctp")).is_err());
        assert!(validate(&pm("x", 80, "tcp")).is_err());
        assert!(validate(&PortMapping {
            container_port: 0,
            ..pm("", 1, "tcp")
        })
        .is_err());
        assert!(validate(&pm("127.0.0.1", 0, "udp")).is_ok());
    }
}
