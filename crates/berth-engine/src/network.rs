//! The container's network through berth-net: attached by the monitor between the runtime's
//! create and start (the netns exists, nothing runs yet), detached at every teardown.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use berth_net::{AttachRequest, Attachment, NetStore, PortMapping};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::Record;
use crate::request::NsMode;

pub fn store(engine: &Engine) -> Result<NetStore> {
    Ok(NetStore::open(&engine.root, &engine.exe)?)
}

/// Does this container get its own network set up by berth (bridge, user network or none)?
pub fn wanted(record: &Record) -> bool {
    record.request.netns == NsMode::Private && !record.request.network.is_empty()
}

/// Attaches the container whose init is `pid`; `exposed` are the image's ports for `-P`.
pub fn attach(engine: &Engine, record: &Record, pid: i32, exposed: &[(u16, String)]) -> Result<Option<Attachment>> {
    if !wanted(record) {
        return Ok(None);
    }
    let req = &record.request;
    let mut ports: Vec<PortMapping> = req
        .ports
        .iter()
        .map(|p| PortMapping {
            host_ip: p.host_ip.clone(),
            host_port: p.host_port,
            container_port: p.container_port,
            protocol: p.protocol.clone(),
        })
        .collect();
    if req.publish_all {
        for (port, proto) in exposed {
            if !ports.iter().any(|p| p.container_port == *port && &p.protocol == proto) {
                ports.push(PortMapping {
                    host_ip: String::new(),
                    host_port: 0,
                    container_port: *port,
                    protocol: proto.clone(),
                });
            }
        }
    }
    let ip = match &req.ip {
        Some(s) => Some(
            s.parse::<Ipv4Addr>()
                .map_err(|_| Error::Invalid(format!("--ip {s:?}: not an IPv4 address")))?,
        ),
        None => None,
    };
    let attach = AttachRequest {
        container_id: record.id.clone(),
        container_name: record.name.clone(),
        hostname: record.hostname.clone(),
        network: req.network.clone(),
        netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
        aliases: req.network_aliases.clone(),
        ip,
        mac: req.mac_address.clone(),
        ports,
    };
    let att = store(engine)?.attach(&attach)?;
    for w in &att.warnings {
        eprintln!("berth monitor {}: warning: {w}", crate::error::short(&record.id));
    }
    Ok(Some(att))
}

/// Undoes `attach` from what the record kept; every error is returned, nothing stops early.
pub fn detach(engine: &Engine, record: &Record) -> Vec<String> {
    let Some(value) = &record.network else {
        return Vec::new();
    };
    let att: Attachment = match serde_json::from_value(value.clone()) {
        Ok(a) => a,
        Err(e) => return vec![format!("read the network attachment: {e}")],
    };
    match store(engine).and_then(|s| Ok(s.detach(&att)?)) {
        Ok(()) => Vec::new(),
        Err(e) => vec![e.to_string()],
    }
}

/// The image's EXPOSED ports (`"80/tcp": {}`), for `-P`.
pub fn exposed_ports(config: &serde_json::Value) -> Vec<(u16, String)> {
    let Some(ports) = config.pointer("/config/ExposedPorts").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    ports
        .keys()
        .filter_map(|k| {
            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            Some((port.parse().ok()?, proto.to_string()))
        })
        .collect()
}
