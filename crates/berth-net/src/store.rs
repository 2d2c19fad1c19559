//! The network store under `<data_root>/network`: network records, leases, locks; create,
//! list, resolve and remove networks and bring their bridges up.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};
use crate::ipam::Subnet;
use crate::nft::{self, Element, Nft};
use crate::rtnl::Rtnl;
use crate::{Network, NetworkCreate, PortMapping};

pub const DEFAULT_NETWORK: &str = "bridge";
const DEFAULT_BRIDGE: &str = "berth0";
/// The default network (its record and leases) and the port claims, shared by every data
/// root: `berth0` and the nftables maps are the machine's, so their IPAM and claims must be one.
/// Under the run directory (`/run/berth`, a user's own for rootless berth) because they are
/// runtime state: a reboot takes the bridge, veths and rules too.
fn shared_dir() -> PathBuf {
    berth_sys::rootless::run_dir().join("network")
}

/// One container's address on one network: the source of the DNS answers, and what detach
/// needs when the engine lost its `Attachment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub container_id: String,
    pub name: String,
    pub hostname: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub mac: String,
    pub veth: String,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}

pub type Leases = BTreeMap<Ipv4Addr, Lease>;

/// Where the default network's and user networks' addresses come from: dockerd's `bridge`,
/// `bip` and `default-address-pools`, as berth's configuration file gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressing {
    /// The default network's bridge instead of `berth0`. Such a data root's default network
    /// is its own (its record and leases live in the data root), not the machine's.
    pub bridge: Option<String>,
    /// The default bridge's address and its subnet.
    pub bip: Option<(Ipv4Addr, Subnet)>,
    /// Subnets user networks are cut from when `--subnet` is not given: (base, size).
    pub pools: Vec<(Subnet, u8)>,
}

impl Addressing {
    /// Every subnet of size `size` inside `base`, in order; none when the sizes make no sense
    /// (`size` below the base's prefix or above 30, or more than 2^16 subnets).
    pub fn cut(base: Subnet, size: u8) -> impl Iterator<Item = Subnet> {
        let count = match size.checked_sub(base.prefix) {
            Some(bits) if size <= 30 && bits <= 16 => 1u32 << bits,
            _ => 0,
        };
        let step = 1u32 << (32 - u32::from(size.min(30)));
        (0..count).map(move |i| Subnet {
            addr: Ipv4Addr::from(u32::from(base.addr) + i * step),
            prefix: size,
        })
    }
}

pub struct NetStore {
    pub(crate) data_root: PathBuf,
    pub(crate) root: PathBuf,
    pub(crate) berth_exe: PathBuf,
    /// [`shared_dir`], or `root` for a store with a private default bridge (tests).
    pub(crate) shared: PathBuf,
    default_bridge: String,
    /// Candidates for the default network's subnet, as pools: (base, size).
    default_subnets: Vec<(Subnet, u8)>,
    /// The default bridge's address when one is configured (`bip`).
    bip: Option<(Ipv4Addr, Subnet)>,
    /// Where user networks' subnets are cut from, (base, size): cut only when a network is
    /// made, not each time the store opens (a /8 cut in /24s is 65536 candidates).
    pools: Vec<(Subnet, u8)>,
}

impl NetStore {
    pub fn open(data_root: &Path, berth_exe: &Path) -> Result<NetStore> {
        let root = data_root.join("network");
        fs::create_dir_all(&root).map_err(|e| NetError::io("open network store", &root, e))?;
        let default_subnets = (17..=31)
            .map(|b| {
                let base = Subnet {
                    addr: Ipv4Addr::new(172, b, 0, 0),
                    prefix: 16,
                };
                (base, 16)
            })
            .collect();
        Ok(NetStore {
            data_root: data_root.to_path_buf(),
            root,
            berth_exe: berth_exe.to_path_buf(),
            shared: shared_dir(),
            default_bridge: DEFAULT_BRIDGE.to_string(),
            default_subnets,
            bip: None,
            pools: user_pools(),
        })
    }

    /// The configuration's addressing (see [`Addressing`]); what it leaves out stays
    /// berth's default.
    pub fn with_addressing(mut self, addressing: &Addressing) -> NetStore {
        if let Some(bridge) = &addressing.bridge {
            if bridge != DEFAULT_BRIDGE {
                self.default_bridge = bridge.clone();
                self.shared = self.root.clone();
            }
        }
        if let Some((gateway, subnet)) = addressing.bip {
            self.bip = Some((gateway, subnet));
            self.default_subnets = vec![(subnet, subnet.prefix)];
        }
        if !addressing.pools.is_empty() {
            self.pools = addressing.pools.clone();
        }
        self
    }

    /// Another bridge and subnet for the default network, so tests never touch a live `berth0`.
    pub fn with_default_bridge(mut self, bridge: &str, subnet: Subnet) -> NetStore {
        self.default_bridge = bridge.to_string();
        self.default_subnets = vec![(subnet, subnet.prefix)];
        self.shared = self.root.clone();
        self
    }

    pub(crate) fn net_dir(&self, id: &str) -> PathBuf {
        let shared = self.shared.join(id);
        if self.shared != self.root && shared.join("network.json").exists() {
            shared
        } else {
            self.root.join(id)
        }
    }

    /// Serializes the shared default network's creation and the port claims across roots.
    pub(crate) fn lock_shared(&self) -> Result<Flock<File>> {
        fs::create_dir_all(&self.shared)
            .map_err(|e| NetError::io("open shared network state", &self.shared, e))?;
        lock(&self.shared.join("shared.lock"))
    }

    /// Held while a subnet is picked from the host's addresses and its bridge made, by every
    /// data root (whatever its default bridge): roots making networks at once otherwise read
    /// the addresses before either bridge existed and took one subnet (two bridges with one
    /// gateway address). Taken after the root's or the shared lock, before a network's.
    pub(crate) fn lock_subnets(&self) -> Result<Flock<File>> {
        let dir = shared_dir();
        fs::create_dir_all(&dir).map_err(|e| NetError::io("open shared network state", &dir, e))?;
        lock(&dir.join("subnets.lock"))
    }

    pub(crate) fn lock_global(&self) -> Result<Flock<File>> {
        lock(&self.root.join("lock"))
    }

    pub(crate) fn lock_network(&self, id: &str) -> Result<Flock<File>> {
        lock(&self.net_dir(id).join("lock"))
    }

    pub fn create_network(&self, req: &NetworkCreate) -> Result<Network> {
        validate_name(&req.name)?;
        if matches!(req.name.as_str(), DEFAULT_NETWORK | "host" | "none") {
            let reason = "is a predefined network";
            return Err(NetError::invalid("network name", &req.name, reason));
        }
        let _g = self.lock_global()?;
        let _subnets = self.lock_subnets()?;
        let existing = self.networks()?;
        if existing.iter().any(|n| n.name == req.name) {
            return Err(NetError::Exists(req.name.clone()));
        }
        let taken = self.taken_subnets(&existing)?;
        let subnet = match req.subnet {
            Some(s) => {
                if let Some(other) = taken.iter().find(|t| t.overlaps(&s)) {
                    return Err(NetError::Overlap {
                        subnet: s.to_string(),
                        other: other.to_string(),
                    });
                }
                s
            }
            None => pick_subnet(&self.pools, &taken).ok_or_else(|| {
                NetError::invalid(
                    "network",
                    &req.name,
                    "no free subnet left in the default pools; pass --subnet",
                )
            })?,
        };
        if let Some(range) = req.ip_range {
            if !subnet.contains(range.addr) || !subnet.contains(range.broadcast()) {
                let reason = format!("not inside the subnet {subnet}");
                return Err(NetError::invalid("ip range", range.to_string(), reason));
            }
        }
        let gateway = req.gateway.unwrap_or(subnet.first_host());
        if !subnet.is_host(gateway) {
            return Err(NetError::invalid(
                "gateway",
                gateway.to_string(),
                format!("not a host address of {subnet}"),
            ));
        }
        let id = random_id()?;
        let net = Network {
            bridge: format!("berth-{}", &id[..9]),
            id,
            name: req.name.clone(),
            driver: "bridge".to_string(),
            subnet,
            gateway,
            ip_range: req.ip_range,
            internal: req.internal,
            labels: req.labels.clone(),
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            default: false,
        };
        self.save_network(&net)?;
        if let Err(e) = self.ensure_bridge(&net) {
            let _ = fs::remove_dir_all(self.net_dir(&net.id));
            return Err(e);
        }
        Ok(net)
    }

    fn save_network(&self, net: &Network) -> Result<()> {
        let dir = if net.default {
            &self.shared
        } else {
            &self.root
        }
        .join(&net.id);
        fs::create_dir_all(&dir).map_err(|e| NetError::io("create network", &dir, e))?;
        crate::leases::init(&dir)?;
        write_json("create network", &dir.join("network.json"), net)
    }

    /// Subnets of berth's networks and of the host's addresses.
    fn taken_subnets(&self, existing: &[Network]) -> Result<Vec<Subnet>> {
        let mut taken: Vec<Subnet> = existing.iter().map(|n| n.subnet).collect();
        let host = Rtnl::open()
            .and_then(|mut r| r.addresses())
            .map_err(|e| NetError::Netlink {
                step: "check subnets",
                op: "RTM_GETADDR dump".into(),
                source: e,
            })?;
        for (_, ip, prefix) in host {
            if !ip.is_loopback() {
                taken.push(Subnet::new(ip, prefix.clamp(8, 30)).unwrap_or(Subnet {
                    addr: ip,
                    prefix: 30,
                }));
            }
        }
        Ok(taken)
    }

    /// This root's user networks and the machine's default network.
    pub fn networks(&self) -> Result<Vec<Network>> {
        let mut out = read_networks(&self.root)?;
        if self.shared != self.root {
            // A default network recorded in the root is from before the shared one: ignored.
            out.retain(|n| !n.default);
            let mut shared = read_networks(&self.shared)?;
            shared.retain(|n| n.default && n.bridge == self.default_bridge);
            out.extend(shared);
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(out)
    }

    /// By exact name, exact id, or unique id prefix.
    pub fn network(&self, name_or_id: &str) -> Result<Network> {
        let all = self.networks()?;
        if let Some(n) = all
            .iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
        {
            return Ok(n.clone());
        }
        let mut by_prefix = all
            .into_iter()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(n), None) => Ok(n),
            _ => Err(NetError::NotFound(name_or_id.to_string())),
        }
    }

    /// The default network, created on first use like docker0; a bridge already up (made
    /// before its record, e.g. by an older berth) keeps its address.
    ///
    /// A configured `bip` the default network does not have re-addresses it as soon as no
    /// container uses it (dockerd applies `bip` at its start, when no container runs); while
    /// one does, it keeps its address and [`NetStore::default_pending`] says so.
    pub(crate) fn default_network(&self) -> Result<Network> {
        if let Ok(n) = self.network(DEFAULT_NETWORK) {
            if !self.readdress_wanted(&n) {
                return Ok(n);
            }
        }
        let _g = self.lock_shared()?;
        let _subnets = self.lock_subnets()?;
        let existing = self.networks()?;
        if let Some(n) = existing.iter().find(|n| n.name == DEFAULT_NETWORK) {
            if !self.readdress_wanted(n) {
                return Ok(n.clone());
            }
            let _n = self.lock_network(&n.id)?;
            if self.lease_count(n)? > 0 {
                return Ok(n.clone());
            }
            self.teardown(n, "re-address the default network")?;
        }
        let adopted = match self.bip {
            Some(_) => None,
            None => self.bridge_address(&self.default_bridge)?,
        };
        let (subnet, gateway) = match (self.bip, adopted) {
            (Some((gateway, subnet)), _) => (subnet, gateway),
            (None, Some(a)) => a,
            (None, None) => {
                let taken = self.taken_subnets(&existing)?;
                let subnet = pick_subnet(&self.default_subnets, &taken).ok_or_else(|| {
                    NetError::invalid(
                        "network",
                        DEFAULT_NETWORK,
                        "every candidate subnet is in use",
                    )
                })?;
                (subnet, subnet.first_host())
            }
        };
        let net = Network {
            id: random_id()?,
            name: DEFAULT_NETWORK.to_string(),
            driver: "bridge".to_string(),
            bridge: self.default_bridge.clone(),
            subnet,
            gateway,
            ip_range: None,
            internal: false,
            labels: BTreeMap::new(),
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            default: true,
        };
        self.save_network(&net)?;
        Ok(net)
    }

    /// The first IPv4 address of link `name`, as (subnet, address).
    fn bridge_address(&self, name: &str) -> Result<Option<(Subnet, Ipv4Addr)>> {
        let step = "adopt the default bridge";
        let mut rtnl = Rtnl::open().map_err(|e| netlink(step, "socket", e))?;
        let Some(index) = rtnl
            .link_index(name)
            .map_err(|e| netlink(step, format!("RTM_GETLINK {name}"), e))?
        else {
            return Ok(None);
        };
        let addrs = rtnl
            .addresses()
            .map_err(|e| netlink(step, "RTM_GETADDR dump", e))?;
        Ok(addrs
            .into_iter()
            .find(|(i, _, _)| *i == index)
            .and_then(|(_, ip, prefix)| Some((Subnet::new(ip, prefix).ok()?, ip))))
    }

    /// The address Docker's `host-gateway` stands for in `--add-host name:host-gateway`: the
    /// default network's gateway (docker0's address), its bridge brought up with that address
    /// if it is not yet (after a reboot, before any container joined it), as dockerd has
    /// docker0 from its start: the address answers on the host whatever network the container
    /// is on. Rootless, the network's record only (its bridge lives in berth's namespaces).
    pub fn host_gateway(&self) -> Result<Ipv4Addr> {
        let net = self.default_network()?;
        if !berth_sys::rootless::is_rootless() {
            // Under the network's lock, as an attach brings it up.
            let _lock = self.lock_network(&net.id)?;
            self.ensure_bridge(&net)?;
        }
        Ok(net.gateway)
    }

    /// Every lease of the network (each read from its own file) that can be read.
    pub fn leases(&self, net: &Network) -> Result<Leases> {
        crate::leases::all(&self.net_dir(&net.id))
    }

    /// The ids of the containers holding leases on the network, damaged leases included (from
    /// the files' names, none read): cheap enough for a sweep on every build.
    pub fn lease_holders(&self, net: &Network) -> Result<std::collections::BTreeSet<String>> {
        crate::leases::holders(&self.net_dir(&net.id))
    }

    /// How many leases the network holds, damaged ones included: whether it is in use.
    pub fn lease_count(&self, net: &Network) -> Result<usize> {
        crate::leases::count(&self.net_dir(&net.id))
    }

    /// Refuses while containers are attached; removes the bridge and stops the DNS server.
    pub fn remove_network(&self, name_or_id: &str) -> Result<()> {
        let _g = self.lock_global()?;
        let net = self.network(name_or_id)?;
        let _n = self.lock_network(&net.id)?;
        let count = self.lease_count(&net)?;
        if count > 0 {
            return Err(NetError::InUse {
                name: net.name,
                count,
            });
        }
        self.teardown(&net, "remove network")
    }

    /// Whether the default network `net` lacks the configured `bip`.
    fn readdress_wanted(&self, net: &Network) -> bool {
        self.bip
            .is_some_and(|(gateway, subnet)| net.subnet != subnet || net.gateway != gateway)
    }

    /// The configured `bip` the default network does not have yet because containers use
    /// it, as (configured, in force); `None` when there is none or it is in force.
    pub fn default_pending(&self) -> Option<(String, String)> {
        let (gateway, subnet) = self.bip?;
        let net = self.network(DEFAULT_NETWORK).ok()?;
        self.readdress_wanted(&net).then(|| {
            (
                format!("{gateway}/{}", subnet.prefix),
                format!("{}/{}", net.gateway, net.subnet.prefix),
            )
        })
    }

    /// Everything of a network without leases, under its lock: DNS, bridge, rules, record.
    fn teardown(&self, net: &Network, step: &'static str) -> Result<()> {
        let dir = self.net_dir(&net.id);
        crate::dns::stop(&dir, net.gateway);
        let mut rtnl = Rtnl::open().map_err(|e| netlink(step, "socket", e))?;
        rtnl.delete_link(&net.bridge)
            .map_err(|e| netlink(step, format!("RTM_DELLINK {}", net.bridge), e))?;
        let mut nft = Nft::open().map_err(|e| nft_err(step, "socket", e))?;
        for els in network_elements(net, true) {
            match nft.elements(false, &els) {
                Err(e) if e.raw_os_error() != Some(nix::errno::Errno::ENOENT as i32) => {
                    return Err(nft_err(step, format!("delete @{} element", els[0].set), e));
                }
                _ => {}
            }
        }
        fs::remove_dir_all(&dir).map_err(|e| NetError::io(step, &dir, e))
    }

    /// Brings the network's bridge up (after creation or a reboot): bridge, gateway address,
    /// route_localnet for published ports on 127.0.0.1, ip_forward, berth's table.
    pub(crate) fn ensure_bridge(&self, net: &Network) -> Result<u32> {
        const STEP: &str = "set up bridge";
        let mut rtnl = Rtnl::open().map_err(|e| netlink(STEP, "socket", e))?;
        let mut nft = Nft::open().map_err(|e| nft_err(STEP, "socket", e))?;
        let created_table = !nft
            .table_exists()
            .map_err(|e| nft_err(STEP, "get table", e))?;
        if created_table {
            nft::ensure_table(&mut nft).map_err(|e| nft_err(STEP, "create table ip berth", e))?;
        }
        let existing = rtnl
            .link_index(&net.bridge)
            .map_err(|e| netlink(STEP, "RTM_GETLINK", e))?;
        let index = match existing {
            Some(i) => i,
            None => {
                match rtnl.create_bridge(&net.bridge) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(netlink(
                            STEP,
                            format!("RTM_NEWLINK bridge {}", net.bridge),
                            e,
                        ));
                    }
                    _ => {}
                }
                let i = rtnl
                    .link_index(&net.bridge)
                    .map_err(|e| netlink(STEP, "RTM_GETLINK", e))?;
                let i = i.ok_or_else(|| {
                    netlink(
                        STEP,
                        format!("RTM_GETLINK {}", net.bridge),
                        io::ErrorKind::NotFound.into(),
                    )
                })?;
                let op = format!(
                    "RTM_NEWADDR {}/{} on {}",
                    net.gateway, net.subnet.prefix, net.bridge
                );
                rtnl.add_address(i, net.gateway, net.subnet.prefix, net.subnet.broadcast())
                    .map_err(|e| netlink(STEP, op, e))?;
                sysctl(&format!("net/ipv4/conf/{}/route_localnet", net.bridge))?;
                i
            }
        };
        sysctl("net/ipv4/ip_forward")?;
        // An nf_tables transaction costs milliseconds even when it fails with EEXIST: the
        // network's elements go in with its bridge or a new table, never on every attach.
        if existing.is_some() && !created_table {
            return Ok(index);
        }
        for els in network_elements(net, net.internal) {
            match nft.elements(true, &els) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(nft_err(STEP, format!("add @{} element", els[0].set), e));
                }
                _ => {}
            }
        }
        Ok(index)
    }
}

/// The network's elements, one batch per set: its `same` pair, its subnet, and when
/// `internal` its bridge in the `internal` set.
fn network_elements(net: &Network, internal: bool) -> Vec<Vec<Element>> {
    let mut batches = vec![
        vec![Element::same_bridge(&net.bridge)],
        Element::subnet(&net.subnet).to_vec(),
    ];
    if internal {
        batches.push(vec![Element::internal_bridge(&net.bridge)]);
    }
    batches
}

/// Sets a boolean sysctl to 1 unless it already is.
fn sysctl(key: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key);
    if fs::read(&path)
        .map(|v| v.first() == Some(&b'1'))
        .unwrap_or(false)
    {
        return Ok(());
    }
    fs::write(&path, "1").map_err(|e| NetError::io("set up bridge", path, e))
}

pub(crate) fn netlink(step: &'static str, op: impl Into<String>, source: io::Error) -> NetError {
    NetError::Netlink {
        step,
        op: op.into(),
        source,
    }
}

pub(crate) fn nft_err(step: &'static str, op: impl Into<String>, source: io::Error) -> NetError {
    NetError::Nft {
        step,
        op: op.into(),
        source,
    }
}

/// Docker's default pools: 172.18-31.0.0/16 whole, then 192.168.0.0/16 in /20s.
fn user_pools() -> Vec<(Subnet, u8)> {
    let wide = (18..=31).map(|b| {
        let base = Subnet {
            addr: Ipv4Addr::new(172, b, 0, 0),
            prefix: 16,
        };
        (base, 16)
    });
    let narrow = Subnet {
        addr: Ipv4Addr::new(192, 168, 0, 0),
        prefix: 16,
    };
    wide.chain([(narrow, 20)]).collect()
}

/// The first subnet the pools give that overlaps none taken.
fn pick_subnet(pools: &[(Subnet, u8)], taken: &[Subnet]) -> Option<Subnet> {
    pools
        .iter()
        .flat_map(|&(base, size)| Addressing::cut(base, size))
        .find(|p| !taken.iter().any(|t| t.overlaps(p)))
}

fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(NetError::invalid(
            "network name",
            name,
            "use [a-zA-Z0-9][a-zA-Z0-9_.-]*",
        ))
    }
}

fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| NetError::io("make network id", "/dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The networks recorded under `dir` (none when it does not exist).
fn read_networks(dir: &Path) -> Result<Vec<Network>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetError::io("list networks", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
    {
        let path = entry.path().join("network.json");
        match read_json::<Network>("list networks", &path) {
            Ok(n) => out.push(n),
            Err(NetError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn lock(path: &Path) -> Result<Flock<File>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| NetError::io("lock", path, e))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| NetError::io("lock (flock)", path, e.into()))
}

pub(crate) fn read_json<T: DeserializeOwned>(step: &'static str, path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| NetError::io(step, path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| NetError::Record {
        step,
        path: path.to_path_buf(),
        source: e,
    })
}

/// Write-then-rename, so readers (the DNS server) never see half a file. The temporary is
/// `.<name>.tmp` beside it: a dot name no listing of leases or networks takes for a record.
pub(crate) fn write_json<T: Serialize>(step: &'static str, path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| NetError::Record {
        step,
        path: path.to_path_buf(),
        source: e,
    })?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, bytes).map_err(|e| NetError::io(step, &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| NetError::io(step, path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("web_1.net-a").is_ok());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
    }

    #[test]
    fn pools_are_cut_in_order() {
        let base: Subnet = "10.10.0.0/16".parse().unwrap();
        let cut: Vec<String> = Addressing::cut(base, 24).map(|s| s.to_string()).collect();
        assert_eq!(cut.len(), 256);
        assert_eq!(cut[0], "10.10.0.0/24");
        assert_eq!(cut[255], "10.10.255.0/24");
        assert_eq!(Addressing::cut(base, 16).count(), 1);
        assert_eq!(Addressing::cut(base, 8).count(), 0, "a size above the base");
        assert_eq!(Addressing::cut(base, 31).count(), 0);
        assert_eq!(
            Addressing::cut("10.0.0.0/8".parse().unwrap(), 25).count(),
            0
        );
    }

    #[test]
    fn pools_skip_taken() {
        let taken = vec![
            "172.18.5.0/24".parse().unwrap(),
            "172.19.0.0/16".parse().unwrap(),
        ];
        assert_eq!(
            pick_subnet(&user_pools(), &taken).unwrap().to_string(),
            "172.20.0.0/16"
        );
    }

    #[test]
    fn ids_are_64_hex() {
        let id = random_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, random_id().unwrap());
    }
}
