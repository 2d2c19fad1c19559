//! berth's nftables table `ip berth`: created once from a fixed ruleset, then changed only by
//! adding and deleting set and map elements in nf_tables netlink batches (the per-container path).
//!
//! The rules never name a network or a container: bridges are matched by the `berth*` name
//! prefix, internal bridges by the `internal` set, published ports by four maps, so that
//! attaching a container is at most one netlink batch and needs no rule change. The `same` set
//! holds (bridge, bridge) per network: with br_netfilter loaded, traffic bridged inside one
//! network passes the forward hook with the bridge as both interfaces, and nft cannot compare
//! iifname with oifname directly.
//!
//! The `subnets` interval set holds every network's subnet for the postrouting chain, where
//! the input interface is unknown (iifname is empty there): traffic leaving a network is found
//! by its source address. Hairpin traffic (a container to a published port through a host
//! address, its own included) is DNATed back onto its bridge and masqueraded there so the reply
//! returns through the host's conntrack; with br_netfilter such a frame is bridged back out of
//! the port it came in by, which is why attach turns on the port's hairpin mode.

use std::fs::{self, File};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

pub const TABLE: &str = "berth";
/// The marker set of the current ruleset (see [`RULESET`]).
const LAYOUT: &str = "layout_3";

/// The fixed ruleset; `{T}` is the table name.
/// Starts by deleting an older table (which lacks the `layout_N` marker set of this one), so
/// an upgrade replaces it; bump N with every change of the rules.
const RULESET: &str = r#"table ip {T} {}
delete table ip {T}
table ip {T} {
  set internal { type ifname; }
  set layout_3 { type ifname; }
  set subnets { type ipv4_addr; flags interval; }
  set same { type ifname . ifname; }
  map pub_tcp { type inet_service : ipv4_addr . inet_service; }
  map pub_udp { type inet_service : ipv4_addr . inet_service; }
  map pub_ip_tcp { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
  map pub_ip_udp { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
  chain publish {
    fib daddr type != local return
    dnat ip to ip daddr . tcp dport map @pub_ip_tcp
    dnat ip to ip daddr . udp dport map @pub_ip_udp
    dnat ip to tcp dport map @pub_tcp
    dnat ip to udp dport map @pub_udp
  }
  chain prerouting { type nat hook prerouting priority dstnat; policy accept; jump publish; }
  chain output { type nat hook output priority -100; policy accept; jump publish; }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    ip saddr 127.0.0.0/8 oifname "berth*" masquerade
    ct status dnat ip saddr @subnets oifname "berth*" masquerade
    ip saddr @subnets oifname != "berth*" masquerade
  }
  chain forward { type filter hook forward priority filter; policy accept;
    iifname . oifname @same accept
    iifname @internal drop
    oifname @internal drop
    ct state established,related accept
    ct status dnat accept
    iifname "berth*" oifname "berth*" drop
  }
}
"#;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_GETSET: u16 = 10;
const F_DUMP: u16 = 0x300;
const NF_INET_FORWARD: u32 = 2;
const NF_DROP: u32 = 0;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_IPV4: u8 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const F_REQUEST: u16 = 1;
const F_ACK: u16 = 4;
const F_EXCL: u16 = 0x200;
const F_CREATE: u16 = 0x400;

/// One element of a set (no data) or a map (with data), already in nf_tables byte layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub set: &'static str,
    pub key: Vec<u8>,
    pub data: Option<Vec<u8>>,
    /// The end of an interval (its first address past the range), for interval sets.
    pub end: bool,
}

impl Element {
    /// An element of the `internal` set of bridge names.
    pub fn internal_bridge(bridge: &str) -> Element {
        let mut key = vec![0u8; 16];
        let n = bridge.len().min(15);
        key[..n].copy_from_slice(&bridge.as_bytes()[..n]);
        Element {
            set: "internal",
            key,
            data: None,
            end: false,
        }
    }

    /// A network's subnet in the `subnets` interval set: its start and its end elements.
    pub fn subnet(subnet: &crate::Subnet) -> [Element; 2] {
        let past = u32::from(subnet.broadcast()).wrapping_add(1);
        [(subnet.addr, false), (Ipv4Addr::from(past), true)].map(|(ip, end)| Element {
            set: "subnets",
            key: ip.octets().to_vec(),
            data: None,
            end,
        })
    }

    /// The (bridge, bridge) pair that lets traffic inside one network through.
    pub fn same_bridge(bridge: &str) -> Element {
        let mut key = Element::internal_bridge(bridge).key;
        key.extend_from_within(..);
        Element {
            set: "same",
            key,
            data: None,
            end: false,
        }
    }

    /// A published port: `host_ip` None (or 0.0.0.0) means every local address.
    pub fn port(
        protocol: &str,
        host_ip: Option<Ipv4Addr>,
        host_port: u16,
        ip: Ipv4Addr,
        port: u16,
    ) -> Element {
        let data = concat_ip_port(ip, port);
        let udp = protocol == "udp";
        match host_ip.filter(|h| !h.is_unspecified()) {
            Some(h) => {
                let set = if udp { "pub_ip_udp" } else { "pub_ip_tcp" };
                Element {
                    set,
                    key: concat_ip_port(h, host_port),
                    data: Some(data),
                    end: false,
                }
            }
            None => {
                let set = if udp { "pub_udp" } else { "pub_tcp" };
                Element {
                    set,
                    key: host_port.to_be_bytes().to_vec(),
                    data: Some(data),
                    end: false,
                }
            }
        }
    }
}

/// `ipv4_addr . inet_service`: each part padded to 4 bytes, network byte order.
fn concat_ip_port(ip: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut v = ip.octets().to_vec();
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v
}

/// A netlink message under construction: header, nfgenmsg and attributes.
struct Msg(Vec<u8>);

impl Msg {
    fn new(ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Msg {
        let mut b = Vec::with_capacity(256);
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&[family, 0]);
        b.extend_from_slice(&res_id.to_be_bytes());
        Msg(b)
    }
    fn attr(&mut self, ty: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.pad();
    }
    fn str_attr(&mut self, ty: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v);
    }
    fn begin_nested(&mut self, ty: u16) -> usize {
        let at = self.0.len();
        self.0.extend_from_slice(&0u16.to_ne_bytes());
        self.0.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }
    fn end_nested(&mut self, at: usize) {
        let len = (self.0.len() - at) as u16;
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }
    fn pad(&mut self) {
        while self.0.len() & 3 != 0 {
            self.0.push(0);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

/// One NETLINK_NETFILTER socket in the calling thread's namespace.
pub struct Nft {
    sock: Socket,
    seq: u32,
}

impl Nft {
    pub fn open() -> io::Result<Nft> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Nft { sock, seq: 0 })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Whether the table exists in its current layout (it has the marker set).
    pub fn table_exists(&mut self) -> io::Result<bool> {
        let seq = self.next_seq();
        let mut m = Msg::new(
            NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETSET,
            F_REQUEST | F_ACK,
            seq,
            NFPROTO_IPV4,
            0,
        );
        m.str_attr(1, TABLE); // NFTA_SET_TABLE
        m.str_attr(2, LAYOUT); // NFTA_SET_NAME
        self.sock.send(&m.finish(), 0)?;
        match self.wait_ack(seq) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENOENT as i32) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds (or deletes) `elems`, all of one set, in one batch. Adding an element that exists
    /// fails with EEXIST; deleting one that is gone fails with ENOENT.
    pub fn elements(&mut self, add: bool, elems: &[Element]) -> io::Result<()> {
        let Some(first) = elems.first() else {
            return Ok(());
        };
        let (ty, flags) = if add {
            (NFT_MSG_NEWSETELEM, F_REQUEST | F_ACK | F_CREATE | F_EXCL)
        } else {
            (NFT_MSG_DELSETELEM, F_REQUEST | F_ACK)
        };
        let seq = self.next_seq();
        let mut batch = Msg::new(
            NFNL_MSG_BATCH_BEGIN,
            F_REQUEST,
            seq,
            0,
            NFNL_SUBSYS_NFTABLES,
        )
        .finish();
        let seq = self.next_seq();
        let mut m = Msg::new(NFNL_SUBSYS_NFTABLES << 8 | ty, flags, seq, NFPROTO_IPV4, 0);
        m.str_attr(1, TABLE); // NFTA_SET_ELEM_LIST_TABLE
        m.str_attr(2, first.set); // NFTA_SET_ELEM_LIST_SET
        let list = m.begin_nested(3); // NFTA_SET_ELEM_LIST_ELEMENTS
        for e in elems {
            let item = m.begin_nested(1); // NFTA_LIST_ELEM
            let key = m.begin_nested(1); // NFTA_SET_ELEM_KEY
            m.attr(1, &e.key); // NFTA_DATA_VALUE
            m.end_nested(key);
            if e.end {
                m.attr(3, &1u32.to_be_bytes()); // NFTA_SET_ELEM_FLAGS: NFT_SET_ELEM_INTERVAL_END
            }
            if let Some(d) = &e.data {
                let data = m.begin_nested(2); // NFTA_SET_ELEM_DATA
                m.attr(1, d);
                m.end_nested(data);
            }
            m.end_nested(item);
        }
        m.end_nested(list);
        batch.extend_from_slice(&m.finish());
        let end_seq = self.next_seq();
        batch.extend_from_slice(
            &Msg::new(
                NFNL_MSG_BATCH_END,
                F_REQUEST,
                end_seq,
                0,
                NFNL_SUBSYS_NFTABLES,
            )
            .finish(),
        );
        self.sock.send(&batch, 0)?;
        self.wait_ack(seq)
    }

    /// Base chains on the forward hook whose policy is drop, other than berth's, as
    /// `family table chain`: a host firewall that would drop what berth forwards.
    pub fn forward_drop_chains(&mut self) -> io::Result<Vec<String>> {
        let seq = self.next_seq();
        let m = Msg::new(
            NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETCHAIN,
            F_REQUEST | F_DUMP,
            seq,
            0,
            0,
        );
        self.sock.send(&m.finish(), 0)?;
        let mut found = Vec::new();
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            buf.clear();
            self.sock.recv(&mut buf, 0)?;
            let mut off = 0;
            while off + 20 <= buf.len() {
                let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or([0; 4]));
                let len = len as usize;
                let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                if len < 16 || off + len > buf.len() {
                    break;
                }
                let msg = &buf[off..off + len];
                off += (len + 3) & !3;
                match ty {
                    NLMSG_DONE => return Ok(found),
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(msg[16..20].try_into().unwrap_or([0; 4]));
                        return if code == 0 {
                            Ok(found)
                        } else {
                            Err(io::Error::from_raw_os_error(-code))
                        };
                    }
                    _ => {}
                }
                if let Some(chain) = drop_forward_chain(msg) {
                    found.push(chain);
                }
            }
        }
    }

    /// Waits for the NLMSG_ERROR answering `seq` (an ack when its code is 0).
    fn wait_ack(&mut self, seq: u32) -> io::Result<()> {
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            buf.clear();
            self.sock.recv(&mut buf, 0)?;
            let mut off = 0;
            while off + 16 <= buf.len() {
                let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
                    as usize;
                let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let mseq =
                    u32::from_ne_bytes([buf[off + 8], buf[off + 9], buf[off + 10], buf[off + 11]]);
                if len < 16 || off + len > buf.len() {
                    break;
                }
                if mseq == seq && ty == NLMSG_ERROR && len >= 20 {
                    let code = i32::from_ne_bytes([
                        buf[off + 16],
                        buf[off + 17],
                        buf[off + 18],
                        buf[off + 19],
                    ]);
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                if mseq == seq && ty == NLMSG_DONE {
                    return Ok(());
                }
                off += (len + 3) & !3;
            }
        }
    }
}

/// Attributes of a netlink message body: (type without flags, value).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

/// `family table chain` when the NEWCHAIN message `msg` is a forward base chain with policy
/// drop outside berth's table.
fn drop_forward_chain(msg: &[u8]) -> Option<String> {
    let family = match *msg.get(16)? {
        1 => "inet",
        2 => "ip",
        _ => return None,
    };
    let (mut table, mut name, mut hook, mut policy) = ("", "", None, None);
    for (ty, v) in attrs(msg.get(20..)?) {
        match ty {
            1 => table = c_str(v)?,
            3 => name = c_str(v)?,
            4 => {
                hook = attrs(v)
                    .into_iter()
                    .find(|(t, _)| *t == 1)
                    .and_then(|(_, n)| Some(u32::from_be_bytes(n.try_into().ok()?)))
            }
            5 => policy = Some(u32::from_be_bytes(v.try_into().ok()?)),
            _ => {}
        }
    }
    (hook == Some(NF_INET_FORWARD)
        && policy == Some(NF_DROP)
        && !(family == "ip" && table == TABLE))
        .then(|| format!("{family} {table} {name}"))
}

fn c_str(v: &[u8]) -> Option<&str> {
    std::str::from_utf8(v.split(|b| *b == 0).next().unwrap_or(&[])).ok()
}

/// Creates the table once (idempotent across processes); the only use of the `nft` binary, at
/// the first network setup after boot, never on a container's start once the table exists.
pub fn ensure_table(nft: &mut Nft) -> io::Result<()> {
    if nft.table_exists()? {
        return Ok(());
    }
    // Serializes the one-time creation of the table across data roots and processes (a
    // rootless user's table is in its own network namespace, its lock in its run directory).
    let dir = berth_sys::rootless::run_dir();
    fs::create_dir_all(&dir)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("nft.lock"))?;
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| io::Error::from(e))?;
    if nft.table_exists()? {
        return Ok(());
    }
    // A user's PATH often lacks /usr/sbin, where Debian puts nft.
    let sbin = std::path::Path::new("/usr/sbin/nft");
    let nft_bin = if sbin.is_file() {
        sbin
    } else {
        std::path::Path::new("nft")
    };
    let mut child = Command::new(nft_bin)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(RULESET.replace("{T}", TABLE).as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(io::Error::other(format!("nft -f: {msg}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_elements_use_the_nftables_layout() {
        let ip = Ipv4Addr::new(10, 1, 2, 3);
        let any = Element::port("tcp", None, 8080, ip, 80);
        assert_eq!(any.set, "pub_tcp");
        assert_eq!(any.key, vec![0x1f, 0x90]);
        assert_eq!(any.data.unwrap(), vec![10, 1, 2, 3, 0, 80, 0, 0]);
        let one = Element::port("udp", Some(Ipv4Addr::LOCALHOST), 53, ip, 5353);
        assert_eq!(one.set, "pub_ip_udp");
        assert_eq!(one.key, vec![127, 0, 0, 1, 0, 53, 0, 0]);
        assert_eq!(
            Element::port("tcp", Some(Ipv4Addr::UNSPECIFIED), 1, ip, 1).set,
            "pub_tcp"
        );
        let br = Element::internal_bridge("berth-abc");
        assert_eq!(br.key.len(), 16);
        assert_eq!(&br.key[..10], b"berth-abc\0");
        let [start, end] = Element::subnet(&"10.230.1.0/24".parse().unwrap());
        assert_eq!((start.key, start.end), (vec![10, 230, 1, 0], false));
        assert_eq!((end.key, end.end), (vec![10, 230, 2, 0], true));
        let same = Element::same_bridge("berth-abc");
        assert_eq!(same.key.len(), 32);
        assert_eq!(&same.key[16..26], b"berth-abc\0");
    }

    #[test]
    fn nested_attributes_have_their_length() {
        let mut m = Msg::new(1, 0, 7, 2, 0);
        let n = m.begin_nested(3);
        m.attr(1, &[1, 2, 3]);
        m.end_nested(n);
        let b = m.finish();
        assert_eq!(b.len(), 20 + 4 + 8);
        assert_eq!(u16::from_ne_bytes([b[20], b[21]]), 12);
        assert_eq!(u16::from_ne_bytes([b[22], b[23]]), 3 | NLA_F_NESTED);
        assert_eq!(
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize,
            b.len()
        );
    }
}
