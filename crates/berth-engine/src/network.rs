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
pub fn attach(
    engine: &Engine,
    record: &Record,
    pid: i32,
    exposed: &[(u16, String)],
) -> Result<Option<Attachment>> {
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
            if !ports
                .iter()
                .any(|p| p.container_port == *port && &p.protocol == proto)
            {
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
        ifname: None,
    };
    // Its warnings (a host firewall that drops forwarded traffic...) stay in the attachment,
    // for the caller to show.
    Ok(Some(store(engine)?.attach(&attach)?))
}

/// Undoes `attach` and every `connect` of container `id` (see `release`); every error is
/// returned, nothing stops early.
pub fn detach(engine: &Engine, id: &str, record: Option<&Record>) -> Vec<String> {
    let (mut errors, links) = release(engine, id, record);
    errors.extend(delete_links(engine, &links));
    errors
}

/// Every attachment of the record: the primary network and those joined with `network
/// connect`.
pub fn attachments(record: &Record) -> Vec<Attachment> {
    record
        .network
        .iter()
        .chain(&record.networks)
        .cloned()
        .collect()
}

/// The fast half of `detach`: leases and published ports released, links left; returns the
/// attachments whose links `delete_links` must still remove. Those are the record's and any
/// lease naming the id that the record lacks: the record may be unreadable (None), or a
/// `network connect` may have raced the teardown.
pub fn release(
    engine: &Engine,
    id: &str,
    record: Option<&Record>,
) -> (Vec<String>, Vec<Attachment>) {
    let mut atts = record.map(attachments).unwrap_or_default();
    let mut errors = Vec::new();
    if record.is_some_and(|r| !wanted(r)) {
        return (errors, atts);
    }
    let store = match store(engine) {
        Ok(store) => store,
        Err(e) => {
            errors.push(e.to_string());
            return (errors, atts);
        }
    };
    let (leased, errs) = store.attachments_of(id);
    errors.extend(errs.iter().map(ToString::to_string));
    for att in leased {
        let known = |a: &Attachment| a.network_id == att.network_id || a.network == att.network;
        if !atts.iter().any(known) {
            atts.push(att);
        }
    }
    for att in &atts {
        if let Err(e) = store.release_attachment(att) {
            errors.push(e.to_string());
        }
    }
    (errors, atts)
}

/// The slow half of `detach`: the host ends of the veths (the kernel's wait).
pub fn delete_links(engine: &Engine, atts: &[Attachment]) -> Vec<String> {
    if atts.is_empty() {
        return Vec::new();
    }
    let store = match store(engine) {
        Ok(s) => s,
        Err(e) => return vec![e.to_string()],
    };
    atts.iter()
        .filter_map(|att| store.delete_link(att).err().map(|e| e.to_string()))
        .collect()
}

/// `network connect`: the running container joins `network` on a new interface (`eth1`...).
pub fn connect(
    engine: &Engine,
    key: &str,
    network: &str,
    aliases: &[String],
    ip: Option<&str>,
) -> Result<Attachment> {
    let id = engine.containers.find(key)?.id;
    let _lock = engine.containers.lock(&id)?;
    let mut record = engine.containers.load(&id)?;
    let st = &record.state;
    if !st.status.is_live() || !crate::records::alive(st.pid, st.pid_start) {
        return Err(Error::state(&id, "is not running"));
    }
    if !wanted(&record) || record.request.network == "none" {
        return Err(Error::Invalid(format!(
            "container {key} has no network of its own to connect (--network {})",
            mode_name(&record)
        )));
    }
    let store = store(engine)?;
    let attached = attachments(&record);
    if let Ok(net) = store.network(network) {
        if attached.iter().any(|a| a.network_id == net.id) {
            return Err(Error::Invalid(format!(
                "container {key} is already connected to network {network}"
            )));
        }
    }
    let ifname = (1..)
        .map(|n| format!("eth{n}"))
        .find(|n| !attached.iter().any(|a| &a.ifname == n))
        .unwrap_or_default();
    let ip = match ip {
        Some(s) => Some(
            s.parse::<Ipv4Addr>()
                .map_err(|_| Error::Invalid(format!("--ip {s:?}: not an IPv4 address")))?,
        ),
        None => None,
    };
    let att = store.attach(&AttachRequest {
        container_id: id.clone(),
        container_name: record.name.clone(),
        hostname: record.hostname.clone(),
        network: network.to_string(),
        netns: PathBuf::from(format!("/proc/{}/ns/net", record.state.pid)),
        aliases: aliases.to_vec(),
        ip,
        mac: None,
        ports: Vec::new(),
        ifname: Some(ifname),
    })?;
    record.networks.push(att.clone());
    if let Err(e) = engine.containers.save(&record) {
        let _ = store.detach(&att);
        return Err(e);
    }
    event(engine, "connect", &att);
    Ok(att)
}

/// After a rename: the container's leases, which the DNS answers from, take the new name.
pub fn rename(engine: &Engine, id: &str, name: &str) -> Result<()> {
    Ok(store(engine)?.rename_container(id, name)?)
}

/// `network disconnect`: the container leaves `network` (a joined one or its primary).
pub fn disconnect(engine: &Engine, key: &str, network: &str) -> Result<()> {
    let id = engine.containers.find(key)?.id;
    let _lock = engine.containers.lock(&id)?;
    let mut record = engine.containers.load(&id)?;
    let store = store(engine)?;
    let net_id = store.network(network).map(|n| n.id).unwrap_or_default();
    let matches =
        |a: &Attachment| a.network == network || (!net_id.is_empty() && a.network_id == net_id);
    let found = if record.network.as_ref().is_some_and(matches) {
        record.network.take()
    } else {
        let at = record.networks.iter().position(matches);
        at.map(|i| record.networks.remove(i))
    };
    let Some(att) = found else {
        return Err(Error::Invalid(format!(
            "container {key} is not connected to network {network}"
        )));
    };
    engine.containers.save(&record)?;
    store.detach(&att)?;
    event(engine, "disconnect", &att);
    Ok(())
}

/// A network's `connect` or `disconnect` of a container, as Docker logs it.
pub(crate) fn event(engine: &Engine, action: &str, att: &Attachment) {
    let id = if att.network_id.is_empty() {
        &att.network
    } else {
        &att.network_id
    };
    let event = crate::events::Event::new(crate::events::Kind::Network, action, id)
        .with("container", att.container_id.clone())
        .with("name", att.network.clone())
        .with(
            "type",
            if att.network == "none" {
                "null"
            } else {
                "bridge"
            },
        );
    crate::events::record(engine, event);
}

fn mode_name(record: &Record) -> String {
    match &record.request.netns {
        NsMode::Private => record.request.network.clone(),
        NsMode::Host => "host".into(),
        NsMode::Container(c) => format!("container:{}", crate::error::short(c)),
    }
}

/// The image's EXPOSED ports (`"80/tcp": {}`), for `-P`.
pub fn exposed_ports(config: &oci_spec::image::ImageConfiguration) -> Vec<(u16, String)> {
    let ports = config
        .config()
        .as_ref()
        .and_then(|c| c.exposed_ports().as_ref());
    ports
        .into_iter()
        .flatten()
        .filter_map(|k| {
            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            Some((port.parse().ok()?, proto.to_string()))
        })
        .collect()
}
