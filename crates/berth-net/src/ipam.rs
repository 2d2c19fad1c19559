//! IPv4 subnets and address allocation: pure functions over the set of addresses in use.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};

/// An IPv4 network in CIDR form, always stored with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        if !(8..=30).contains(&prefix) {
            return Err(NetError::invalid(
                "subnet",
                format!("{addr}/{prefix}"),
                "prefix must be 8 to 30",
            ));
        }
        Ok(Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        u32::from(self.addr) & mask(p) == u32::from(other.addr) & mask(p)
    }
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }
    /// The first host address, Docker's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }
    /// Whether `ip` may be given to a container or the gateway (not network or broadcast).
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.addr && ip != self.broadcast()
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl FromStr for Subnet {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = |r: &str| NetError::invalid("subnet", s, r);
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = p.parse().map_err(|_| bad("prefix is not a number"))?;
        Subnet::new(addr, prefix)
    }
}

impl TryFrom<String> for Subnet {
    type Error = NetError;
    fn try_from(s: String) -> Result<Subnet> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Picks `wanted` if it is free and valid (anywhere in the subnet, as Docker allows), else
/// the lowest free host address of `range` (the whole subnet without one).
pub fn allocate(
    subnet: &Subnet,
    range: Option<&Subnet>,
    gateway: Ipv4Addr,
    used: &BTreeSet<Ipv4Addr>,
    wanted: Option<Ipv4Addr>,
    network: &str,
) -> Result<Ipv4Addr> {
    if let Some(ip) = wanted {
        if !subnet.is_host(ip) || ip == gateway {
            let reason = format!("not a free host address of {subnet}");
            return Err(NetError::invalid("address", ip.to_string(), reason));
        }
        if used.contains(&ip) {
            return Err(NetError::AddressInUse {
                ip,
                network: network.to_string(),
            });
        }
        return Ok(ip);
    }
    let range = range.unwrap_or(subnet);
    let first = u32::from(range.addr);
    let last = u32::from(range.broadcast());
    (first..=last)
        .map(Ipv4Addr::from)
        .find(|ip| subnet.is_host(*ip) && *ip != gateway && !used.contains(ip))
        .ok_or_else(|| NetError::Exhausted {
            subnet: subnet.to_string(),
            network: network.to_string(),
        })
}

/// A MAC derived from the address, as Docker does: 02:42 then the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || {
        NetError::invalid(
            "MAC address",
            s,
            "expected six hex bytes like 02:42:ac:11:00:02",
        )
    };
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() || out[0] & 1 == 1 {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_parses_and_normalizes() {
        let s: Subnet = "10.1.2.77/24".parse().unwrap();
        assert_eq!(s.to_string(), "10.1.2.0/24");
        assert!(s.contains("10.1.2.255".parse().unwrap()));
        assert!(!s.contains("10.1.3.1".parse().unwrap()));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        assert!("10.1.2.0".parse::<Subnet>().is_err());
        assert!("10.1.2.0/31".parse::<Subnet>().is_err());
        assert!("10.1.2.0/x".parse::<Subnet>().is_err());
    }

    #[test]
    fn overlap_is_symmetric() {
        let a: Subnet = "10.0.0.0/8".parse().unwrap();
        let b: Subnet = "10.9.0.0/16".parse().unwrap();
        let c: Subnet = "172.17.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }

    #[test]
    fn allocate_skips_gateway_and_used_and_refuses_taken() {
        let s: Subnet = "10.1.2.0/29".parse().unwrap();
        let gw = s.first_host();
        let mut used = BTreeSet::new();
        let a = allocate(&s, None, gw, &used, None, "n").unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 1, 2, 2));
        used.insert(a);
        assert_eq!(
            allocate(&s, None, gw, &used, None, "n").unwrap(),
            Ipv4Addr::new(10, 1, 2, 3)
        );
        assert!(matches!(
            allocate(&s, None, gw, &used, Some(a), "n"),
            Err(NetError::AddressInUse { .. })
        ));
        assert!(allocate(&s, None, gw, &used, Some(gw), "n").is_err());
        assert!(allocate(&s, None, gw, &used, Some(s.broadcast()), "n").is_err());
        for i in 3..7 {
            used.insert(Ipv4Addr::new(10, 1, 2, i));
        }
        assert!(matches!(
            allocate(&s, None, gw, &used, None, "n"),
            Err(NetError::Exhausted { .. })
        ));
    }

    #[test]
    fn a_range_bounds_what_is_given_but_not_what_is_asked() {
        let s: Subnet = "10.1.2.0/24".parse().unwrap();
        let range: Subnet = "10.1.2.128/30".parse().unwrap();
        let gw = s.first_host();
        let mut used = BTreeSet::new();
        let mut given = Vec::new();
        for _ in 0..4 {
            let ip = allocate(&s, Some(&range), gw, &used, None, "n").unwrap();
            used.insert(ip);
            given.push(ip.octets()[3]);
        }
        assert_eq!(given, [128, 129, 130, 131]);
        assert!(allocate(&s, Some(&range), gw, &used, None, "n").is_err());
        let asked = Ipv4Addr::new(10, 1, 2, 9);
        assert_eq!(
            allocate(&s, Some(&range), gw, &used, Some(asked), "n").unwrap(),
            asked
        );
    }

    #[test]
    fn macs() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)), "02:42:ac:11:00:02");
        assert_eq!(
            parse_mac("02:42:ac:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        assert!(parse_mac("01:00:00:00:00:00").is_err(), "multicast refused");
        assert!(parse_mac("02:42:ac:11:00").is_err());
        assert!(parse_mac("02:42:ac:11:00:02:03").is_err());
    }
}
