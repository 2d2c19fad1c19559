//! The container's network through berth-net: attached by the monitor between the runtime's
//! create and start (the netns exists, nothing runs yet), detached at every teardown; and the
//! networks themselves as Docker manages them (create, ls with its filters, inspect, rm, prune).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use berth_net::{
    AttachRequest, Attachment, NetError, NetStore, Network, NetworkCreate, PortMapping,
};
use serde_json::{json, Value};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind};
use crate::filters::{name_matches, Filters};
use crate::records::Record;
use crate::request::{Endpoint, ExposedPort, NsMode, RunRequest};

/// The network store of the engine's data root, addressed as its configuration says.
pub fn store(engine: &Engine) -> Result<NetStore> {
    let addressing = engine.config.addressing()?;
    Ok(NetStore::open(&engine.root, &engine.exe)?.with_addressing(&addressing))
}

/// `--add-host` entries with Docker's `host-gateway` (`name:host-gateway`) given the address
/// it stands for, the default network's gateway; the others as they are. The request keeps
/// `host-gateway` (inspect shows it as asked); its /etc/hosts gets the address at each start.
pub fn resolve_extra_hosts<'a>(
    engine: &Engine,
    add_hosts: &'a [String],
) -> Result<std::borrow::Cow<'a, [String]>> {
    // The name of an entry for host-gateway (a malformed one is hosts_file's to refuse).
    let gateway_of = |entry: &str| match crate::spec::extra_host(entry) {
        Ok((name, None)) => Some(name.to_string()),
        _ => None,
    };
    if !add_hosts.iter().any(|e| gateway_of(e).is_some()) {
        return Ok(std::borrow::Cow::Borrowed(add_hosts));
    }
    let gateway = store(engine)?.host_gateway()?;
    let resolved = add_hosts
        .iter()
        .map(|e| match gateway_of(e) {
            Some(name) => format!("{name}:{gateway}"),
            None => e.clone(),
        })
        .collect();
    Ok(std::borrow::Cow::Owned(resolved))
}

/// Does this container get its own network set up by berth (bridge, user network or none)?
pub fn wanted(record: &Record) -> bool {
    record.request.netns == NsMode::Private && !record.request.network.is_empty()
}

/// Can this container be on berth's networks (hold leases)? Not `--network none`'s, whose
/// namespace has its loopback alone: `connect` refuses it.
fn networked(record: &Record) -> bool {
    wanted(record) && record.request.network != "none"
}

/// Attaches the container whose init is `pid` to its mode's network (not once disconnected
/// from it): `-p`'s ports published, and with `-P` every exposed one (`image`: the image's,
/// for a record made before create kept them).
pub fn attach(
    engine: &Engine,
    record: &Record,
    pid: i32,
    image: &[ExposedPort],
) -> Result<Option<Attachment>> {
    if !wanted(record) || record.request.network_disconnected {
        return Ok(None);
    }
    // `--network none`: its loopback alone, which the runtime brought up; no store to open.
    if !networked(record) {
        return Ok(Some(Attachment::none(&record.id)));
    }
    let req = &record.request;
    let all = crate::ports::publish_all(req, image);
    let ports: Vec<PortMapping> = req
        .ports
        .iter()
        .chain(&all)
        .map(|p| PortMapping {
            host_ip: p.host_ip.clone(),
            host_port: p.host_port,
            host_port_end: p.host_port_end,
            container_port: p.container_port,
            protocol: p.protocol.clone(),
        })
        .collect();
    if berth_sys::rootless::is_rootless() {
        if let Some(att) = crate::rootless::default_network(record, pid, &ports) {
            return att.map(Some);
        }
    }
    let ip = parse_ip(req.ip.as_deref())?;
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
    let att = crate::rootless::netns::run(|| Ok(store(engine)?.attach(&attach)?))?;
    Ok(Some(att))
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
    // One that cannot hold a lease (`connect` refuses it under its lock): the leases of every
    // network are not worth a read on its way out.
    if record.is_some_and(|r| !networked(r)) {
        return (errors, atts);
    }
    if berth_sys::rootless::is_rootless() {
        // Its slirp4netns: the default network's only piece.
        crate::rootless::slirp::detach(id);
        atts.retain(|a| a.network == "none" || !a.network_id.is_empty());
        // User networks' leases and links are in the user networks' namespace, if any is.
        if !user_networks(engine) {
            return (errors, atts);
        }
        if crate::rootless::netns::elsewhere() {
            return crate::rootless::netns::run(|| Ok(release(engine, id, record)))
                .unwrap_or_else(|e| (vec![e.to_string()], atts));
        }
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
        if atts.iter().any(known) {
            continue;
        }
        // A killed lease write's temporary alone (no address): released here, but it was never
        // an endpoint, so it is neither reported disconnected nor handed back to unlink.
        if att.ip.is_none() {
            if let Err(e) = store.release_attachment(&att) {
                errors.push(e.to_string());
            }
            continue;
        }
        atts.push(att);
    }
    for att in &atts {
        if let Err(e) = store.release_attachment(att) {
            errors.push(e.to_string());
        }
    }
    (errors, atts)
}

/// Whether rootless berth has user networks (whose namespace then holds leases and links).
fn user_networks(engine: &Engine) -> bool {
    store(engine)
        .and_then(|s| Ok(s.networks()?))
        .is_ok_and(|nets| nets.iter().any(|n| !n.default))
}

/// The slow half of `detach`: the host ends of the veths (the kernel's wait).
pub fn delete_links(engine: &Engine, atts: &[Attachment]) -> Vec<String> {
    if atts
        .iter()
        .all(|a| a.network == "none" || a.host_veth.is_none())
    {
        return Vec::new();
    }
    if crate::rootless::netns::elsewhere() {
        return crate::rootless::netns::run(|| Ok(delete_links(engine, atts)))
            .unwrap_or_else(|e| vec![e.to_string()]);
    }
    let store = match store(engine) {
        Ok(s) => s,
        Err(e) => return vec![e.to_string()],
    };
    atts.iter()
        .filter_map(|att| store.delete_link(att).err().map(|e| e.to_string()))
        .collect()
}

/// `network connect`: the container joins `network`, now on a new interface (`eth1`...; `eth0`
/// if it has none) if it runs, and at every start from now on, as Docker keeps a container's
/// networks. The live attachment, when there is one, is returned.
pub fn connect(
    engine: &Engine,
    key: &str,
    network: &str,
    aliases: &[String],
    ip: Option<&str>,
) -> Result<Option<Attachment>> {
    if berth_sys::rootless::is_rootless() {
        return Err(Error::Invalid(crate::rootless::NO_CONNECT.into()));
    }
    let id = engine.containers.find(key)?.id;
    let _lock = engine.containers.lock(&id)?;
    let mut record = engine.containers.load(&id)?;
    if !networked(&record) {
        return Err(Error::Invalid(format!(
            "container {key} has no network of its own to connect (--network {})",
            mode_name(&record)
        )));
    }
    let store = store(engine)?;
    let net = store.network(network)?;
    let joined = joined_networks(&record.request);
    let live = attachments(&record);
    if joined.iter().any(|n| same_network(&store, n, &net))
        || live.iter().any(|a| a.network_id == net.id)
    {
        return Err(Error::Invalid(format!(
            "container {key} is already connected to network {network}"
        )));
    }
    let st = &record.state;
    let running = st.status.is_live() && crate::records::alive(st.pid, st.pid_start);
    let att = if running {
        let ifname = free_ifname(&live);
        let join = join_request(&record, record.state.pid, &net.name, aliases, ip, ifname)?;
        Some(store.attach(&join)?)
    } else {
        parse_ip(ip)?;
        None
    };
    let req = &mut record.request;
    if req.network_disconnected && same_network(&store, &req.network, &net) {
        req.network_disconnected = false;
        req.network_aliases = aliases.to_vec();
        req.ip = ip.map(String::from);
    } else {
        req.connected.push(Endpoint {
            network: net.name.clone(),
            aliases: aliases.to_vec(),
            ip: ip.map(String::from),
        });
    }
    record.networks.extend(att.clone());
    if let Err(e) = engine.containers.save(&record) {
        if let Some(att) = &att {
            let _ = store.detach(att);
        }
        return Err(e);
    }
    if let Some(att) = &att {
        event(engine, "connect", att);
    }
    Ok(att)
}

/// Joins the container whose init is `pid` to the networks it was connected to (see
/// [`connect`]), after `primary`, each on the next free `ethN` (the first on `eth0` when
/// there is no primary); if one fails, those joined are left again.
pub fn attach_connected(
    engine: &Engine,
    record: &Record,
    pid: i32,
    primary: Option<&Attachment>,
) -> Result<Vec<Attachment>> {
    if !wanted(record) || record.request.connected.is_empty() {
        return Ok(Vec::new());
    }
    let store = store(engine)?;
    attach_endpoints(&store, record, pid, primary, &[], &record.request.connected)
}

/// The container's primary network and those joined with `network connect`, attached to the
/// init `pid`'s namespace; nothing is left attached when it fails.
pub fn attach_all(
    engine: &Engine,
    record: &Record,
    pid: i32,
    exposed: &[crate::request::ExposedPort],
) -> Result<(Option<Attachment>, Vec<Attachment>)> {
    let attachment = attach(engine, record, pid, exposed)?;
    match attach_connected(engine, record, pid, attachment.as_ref()) {
        Ok(joined) => Ok((attachment, joined)),
        Err(e) => {
            leave(engine, attachment.iter());
            Err(e)
        }
    }
}

/// Undoes [`attach_all`] (the leases and links of each attachment).
pub fn leave<'a>(engine: &Engine, atts: impl Iterator<Item = &'a Attachment>) {
    if let Ok(store) = store(engine) {
        for att in atts {
            let _ = store.detach(att);
        }
    }
}

/// Attaches `endpoints` to the init `pid`'s namespace, each on the first interface that
/// `primary`, `have` and those before it leave free; the new attachments, or an error with none
/// of them left attached.
fn attach_endpoints<'a>(
    store: &NetStore,
    record: &Record,
    pid: i32,
    primary: Option<&Attachment>,
    have: &[Attachment],
    endpoints: impl IntoIterator<Item = &'a crate::request::Endpoint>,
) -> Result<Vec<Attachment>> {
    let mut added: Vec<Attachment> = Vec::new();
    for ep in endpoints {
        let taken: Vec<Attachment> = primary
            .into_iter()
            .chain(have)
            .chain(&added)
            .cloned()
            .collect();
        let ifname = free_ifname(&taken);
        let attached = join_request(
            record,
            pid,
            &ep.network,
            &ep.aliases,
            ep.ip.as_deref(),
            ifname,
        )
        .and_then(|join| Ok(store.attach(&join)?));
        match attached {
            Ok(att) => added.push(att),
            Err(e) => {
                for att in &added {
                    let _ = store.detach(att);
                }
                return Err(e);
            }
        }
    }
    Ok(added)
}

/// What [`attach_connected`] attached from an older copy of the record, brought in line with
/// `record` as it is now (read under its lock): a `network connect` or `disconnect` saved while
/// the container was starting (not running yet, so neither attached nor detached it live) is
/// carried out here. Returns the attachments the container has; on an error, nothing this call
/// attached is left attached (what `joined` holds is the caller's to undo).
pub fn reconcile_connected(
    engine: &Engine,
    record: &Record,
    pid: i32,
    primary: Option<&Attachment>,
    joined: &[Attachment],
) -> Result<Vec<Attachment>> {
    let now = &record.request.connected;
    // An endpoint names its network as `connect` saved it (its name); by id too, to be sure.
    let on = |ep: &crate::request::Endpoint, a: &Attachment| {
        ep.network == a.network || ep.network == a.network_id
    };
    let is_wanted = |a: &Attachment| now.iter().any(|ep| on(ep, a));
    let new: Vec<_> = now
        .iter()
        .filter(|ep| !joined.iter().any(|a| on(ep, a)))
        .collect();
    if !wanted(record) || (new.is_empty() && joined.iter().all(is_wanted)) {
        return Ok(joined.to_vec());
    }
    let store = store(engine)?;
    let (mut have, gone): (Vec<Attachment>, Vec<Attachment>) =
        joined.iter().cloned().partition(|a| is_wanted(a));
    let added = attach_endpoints(&store, record, pid, primary, &have, new)?;
    have.extend(added);
    for att in &gone {
        let _ = store.detach(att);
    }
    Ok(have)
}

/// The networks the container is configured to join: its mode's (unless disconnected) and
/// those it was connected to.
fn joined_networks(req: &RunRequest) -> Vec<&str> {
    let primary = (!req.network_disconnected).then_some(req.network.as_str());
    primary
        .into_iter()
        .chain(req.connected.iter().map(|e| e.network.as_str()))
        .collect()
}

/// Does `name` (as a request or an endpoint names it: a name or an id) name `net`?
fn same_network(store: &NetStore, name: &str, net: &Network) -> bool {
    name == net.name || name == net.id || store.network(name).is_ok_and(|n| n.id == net.id)
}

/// The first `ethN` none of `attached` has: None for `eth0` (berth-net's primary interface,
/// the one with the default route, recorded as ""), `eth1`... for the others.
fn free_ifname(attached: &[Attachment]) -> Option<String> {
    let taken = |n: &str| attached.iter().any(|a| a.ifname == n);
    if !taken("") && !taken("eth0") {
        return None;
    }
    (1..).map(|n| format!("eth{n}")).find(|n| !taken(n))
}

fn parse_ip(ip: Option<&str>) -> Result<Option<Ipv4Addr>> {
    ip.map(|s| {
        s.parse::<Ipv4Addr>()
            .map_err(|_| Error::Invalid(format!("--ip {s:?}: not an IPv4 address")))
    })
    .transpose()
}

/// What berth-net needs to join the container whose init is `pid` to `network` on `ifname`.
fn join_request(
    record: &Record,
    pid: i32,
    network: &str,
    aliases: &[String],
    ip: Option<&str>,
    ifname: Option<String>,
) -> Result<AttachRequest> {
    Ok(AttachRequest {
        container_id: record.id.clone(),
        container_name: record.name.clone(),
        hostname: record.hostname.clone(),
        network: network.to_string(),
        netns: PathBuf::from(format!("/proc/{pid}/ns/net")),
        aliases: aliases.to_vec(),
        ip: parse_ip(ip)?,
        mac: None,
        ports: Vec::new(),
        ifname,
    })
}

/// After a rename: the container's leases, which the DNS answers from, take the new name.
pub fn rename(engine: &Engine, id: &str, name: &str) -> Result<()> {
    Ok(store(engine)?.rename_container(id, name)?)
}

/// `network disconnect`: the container leaves `network` (a joined one or its mode's), now if
/// it runs and for its later starts.
pub fn disconnect(engine: &Engine, key: &str, network: &str, force: bool) -> Result<()> {
    if berth_sys::rootless::is_rootless() {
        return Err(Error::Invalid(crate::rootless::NO_CONNECT.into()));
    }
    let id = match engine.containers.find(key) {
        Ok(c) => c.id,
        Err(Error::NoSuchContainer(_)) if force => return forget_endpoint(engine, key, network),
        Err(e) => return Err(e),
    };
    let _lock = engine.containers.lock(&id)?;
    let mut record = engine.containers.load(&id)?;
    let store = store(engine)?;
    let net = store.network(network).ok();
    let names =
        |n: &str| n == network || net.as_ref().is_some_and(|net| same_network(&store, n, net));
    let matches =
        |a: &Attachment| a.network == network || net.as_ref().is_some_and(|n| a.network_id == n.id);
    let live = if record.network.as_ref().is_some_and(matches) {
        record.network.take()
    } else {
        let at = record.networks.iter().position(matches);
        at.map(|i| record.networks.remove(i))
    };
    let primary = wanted(&record) && !record.request.network_disconnected;
    let req = &mut record.request;
    let configured = if primary && names(&req.network) {
        req.network_disconnected = true;
        true
    } else if let Some(i) = req.connected.iter().position(|e| names(&e.network)) {
        req.connected.remove(i);
        true
    } else {
        false
    };
    if live.is_none() && !configured {
        return Err(Error::Invalid(format!(
            "container {key} is not connected to network {network}"
        )));
    }
    engine.containers.save(&record)?;
    if let Some(att) = live {
        store.detach(&att)?;
        event(engine, "disconnect", &att);
    }
    Ok(())
}

/// `network disconnect -f` of a container that no longer exists, as Docker's: its endpoint
/// on the network (a lease by the container's name or id, left by a removal or an attach
/// that never finished) is torn down, which frees its address and lets the network go.
fn forget_endpoint(engine: &Engine, key: &str, network: &str) -> Result<()> {
    let store = store(engine)?;
    let net = store.network(network)?;
    let ids: Vec<String> = store
        .leases(&net)?
        .into_values()
        .filter(|l| !key.is_empty() && (l.name == key || l.container_id.starts_with(key)))
        .map(|l| l.container_id)
        .collect();
    if ids.is_empty() {
        return Err(Error::NoSuchContainer(key.to_string()));
    }
    for id in ids {
        let (atts, _) = store.attachments_of(&id);
        for att in atts.iter().filter(|a| a.network_id == net.id) {
            store.detach(att)?;
            event(engine, "disconnect", att);
        }
    }
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

/// `network create`: what Docker's API and command line ask for.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CreateRequest {
    pub name: String,
    /// `bridge` (or empty, which means it): berth has no other driver.
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    /// Where containers' addresses come from, inside the subnet.
    pub ip_range: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// `network create`: a bridge network (a name taken is refused, as Docker refuses it).
pub fn create(engine: &Engine, req: &CreateRequest) -> Result<Network> {
    if !matches!(req.driver.as_str(), "" | "bridge") {
        return Err(Error::Invalid(format!(
            "network driver {:?} is not supported; use bridge",
            req.driver
        )));
    }
    if crate::rootless::netns::elsewhere() {
        let op = crate::rootless::netops::NetworkOp::Create(req.clone());
        return crate::rootless::netops::run(engine, op);
    }
    let gateway = req
        .gateway
        .as_deref()
        .map(|g| {
            g.parse::<Ipv4Addr>()
                .map_err(|_| Error::Invalid(format!("invalid gateway {g:?}: not an IPv4 address")))
        })
        .transpose()?;
    let create = NetworkCreate {
        name: req.name.clone(),
        subnet: req.subnet.as_deref().map(str::parse).transpose()?,
        gateway,
        ip_range: req.ip_range.as_deref().map(str::parse).transpose()?,
        internal: req.internal,
        labels: req.labels.clone(),
    };
    let net = store(engine)?.create_network(&create)?;
    network_event(engine, "create", &net);
    Ok(net)
}

fn network_event(engine: &Engine, action: &str, net: &Network) {
    let event = Event::new(Kind::Network, action, net.id.clone())
        .with("name", net.name.clone())
        .with("type", net.driver.clone());
    events::record(engine, event);
}

/// The filters `network ls` takes.
pub const LIST_FILTERS: &[&str] = &[
    "dangling", "driver", "id", "label", "label!", "name", "scope", "type",
];
/// The filters `network prune` takes.
pub const PRUNE_FILTERS: &[&str] = &["label", "label!", "until"];

/// `network ls`: the networks `filters` (of [`LIST_FILTERS`]) let through. `type` is
/// `builtin` for the default network, `custom` for the others; `dangling` is whether no
/// container is attached (the default network is never dangling).
pub fn list(engine: &Engine, filters: &Filters) -> Result<Vec<Network>> {
    let store = store(engine)?;
    let dangling = filters.bool("dangling")?;
    let mut out = Vec::new();
    for net in store.networks()? {
        let kind = if net.default { "builtin" } else { "custom" };
        let passes = filters.any("driver", |d| d == net.driver)
            && filters.any("id", |i| net.id.starts_with(i))
            && filters.any("name", |n| name_matches(n, &net.name))
            && filters.any("scope", |s| s == "local")
            && filters.any("type", |t| t == kind)
            && filters.labels_match(&net.labels);
        let unused = || Ok::<_, Error>(!net.default && store.lease_count(&net)? == 0);
        if passes && dangling.map_or(Ok(true), |d| unused().map(|u| u == d))? {
            out.push(net);
        }
    }
    Ok(out)
}

/// `network inspect`: Docker's object for the network, its containers (by their leases)
/// included.
pub fn inspect(engine: &Engine, name_or_id: &str) -> Result<Value> {
    let store = store(engine)?;
    let net = store.network(name_or_id)?;
    let leases = store.leases(&net)?;
    Ok(inspect_json(&net, &leases))
}

/// Docker's `network inspect` object.
pub fn inspect_json(net: &Network, leases: &berth_net::store_types::Leases) -> Value {
    let containers: serde_json::Map<String, Value> = leases
        .iter()
        .map(|(ip, l)| {
            let v = json!({
                "Name": l.name,
                "EndpointID": l.veth,
                "MacAddress": l.mac,
                "IPv4Address": format!("{ip}/{}", net.subnet.prefix),
                "IPv6Address": "",
            });
            (l.container_id.clone(), v)
        })
        .collect();
    // A user network's options are those given at its create (berth takes none): compose
    // recreates a network whose options differ from its file's.
    let mut options = serde_json::Map::new();
    if net.default {
        options.insert("com.docker.network.bridge.name".into(), json!(net.bridge));
        options.insert(
            "com.docker.network.bridge.default_bridge".into(),
            json!("true"),
        );
    }
    let mut config =
        json!({ "Subnet": net.subnet.to_string(), "Gateway": net.gateway.to_string() });
    if let Some(range) = net.ip_range {
        config["IPRange"] = range.to_string().into();
    }
    json!({
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [config],
        },
        "Internal": net.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": net.labels,
    })
}

/// `network rm`: never the default network; refused while containers are attached.
pub fn remove(engine: &Engine, name_or_id: &str) -> Result<()> {
    let store = store(engine)?;
    let net = store.network(name_or_id)?;
    if net.default {
        return Err(Error::Forbidden(format!(
            "{name_or_id} is a pre-defined network and cannot be removed"
        )));
    }
    if crate::rootless::netns::elsewhere() {
        let op = crate::rootless::netops::NetworkOp::Remove(name_or_id.to_string());
        return crate::rootless::netops::run(engine, op);
    }
    store.remove_network(&net.id)?;
    network_event(engine, "destroy", &net);
    Ok(())
}

/// `network prune`: every user network no container is attached to that `filters` (of
/// [`PRUNE_FILTERS`]) let through; their names.
pub fn prune(engine: &Engine, filters: &Filters) -> Result<Vec<String>> {
    if crate::rootless::netns::elsewhere() {
        if !user_networks(engine) {
            return Ok(Vec::new());
        }
        let op = crate::rootless::netops::NetworkOp::Prune(filters.pairs());
        return crate::rootless::netops::run(engine, op);
    }
    let store = store(engine)?;
    let until = filters.until()?;
    let mut removed = Vec::new();
    for net in store.networks()? {
        let created = humantime::parse_rfc3339_weak(net.created.trim_end_matches('Z'))
            .map(events::nanos_since_epoch)
            .unwrap_or(0);
        if net.default || !filters.labels_match(&net.labels) || until.is_some_and(|u| created >= u)
        {
            continue;
        }
        match store.remove_network(&net.id) {
            Ok(()) => {
                network_event(engine, "destroy", &net);
                removed.push(net.name);
            }
            Err(NetError::InUse { .. } | NetError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_has_docker_fields() {
        let net = Network {
            id: "ab".repeat(32),
            name: "front".into(),
            driver: "bridge".into(),
            bridge: "berth-ababababa".into(),
            subnet: "10.5.0.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 5, 0, 1),
            ip_range: Some("10.5.0.128/25".parse().unwrap()),
            internal: true,
            labels: BTreeMap::from([("k".into(), "v".into())]),
            created: "2024-01-01T00:00:00Z".into(),
            default: false,
        };
        let lease = berth_net::store_types::Lease {
            container_id: "c1".into(),
            name: "web".into(),
            hostname: "web".into(),
            aliases: vec![],
            mac: "02:42:0a:05:00:02".into(),
            veth: "vberth123456789".into(),
            ports: vec![],
        };
        let leases = berth_net::store_types::Leases::from([(Ipv4Addr::new(10, 5, 0, 2), lease)]);
        let v = inspect_json(&net, &leases);
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.5.0.0/24");
        assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "10.5.0.1");
        assert_eq!(v["IPAM"]["Config"][0]["IPRange"], "10.5.0.128/25");
        assert_eq!(v["Internal"], true);
        assert_eq!(v["Containers"]["c1"]["IPv4Address"], "10.5.0.2/24");
        assert_eq!(v["Labels"]["k"], "v");
        assert_eq!(v["Options"], json!({}));
    }
}
