//! The one error type of berth-net: each variant names the step, the operation and the object.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, NetError>;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{step}: netlink {op}: {source}")]
    Netlink {
        step: &'static str,
        op: String,
        source: io::Error,
    },
    #[error("{step}: nftables {op}: {source}")]
    Nft {
        step: &'static str,
        op: String,
        source: io::Error,
    },
    #[error("{step}: {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{step}: {path}: {source}")]
    Record {
        step: &'static str,
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("subnet {subnet} overlaps with {other}")]
    Overlap { subnet: String, other: String },
    #[error("network {name} has active endpoints ({count}); stop or disconnect them first")]
    InUse { name: String, count: usize },
    #[error("address {ip} is already in use on network {network}")]
    AddressInUse { ip: Ipv4Addr, network: String },
    #[error("no free address left in {subnet} on network {network}")]
    Exhausted { subnet: String, network: String },
    /// Docker's words (its endpoint prefix is the engine's).
    #[error("Bind for {host_ip}:{port} failed: port is already allocated")]
    PortInUse {
        host_ip: String,
        port: u16,
        protocol: String,
    },
    #[error("network teardown: {}", .0.join("; "))]
    Teardown(Vec<String>),
}

impl NetError {
    pub(crate) fn io(step: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        NetError::Io {
            step,
            path: path.into(),
            source,
        }
    }
    pub(crate) fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        NetError::Invalid {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }
}
