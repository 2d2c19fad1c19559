//! `berth network`: create, ls, inspect (Docker's JSON), rm and prune of bridge networks;
//! connect and disconnect of running containers.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use berth_net::store_types::Leases;
use berth_net::{NetStore, Network, NetworkCreate, Subnet};
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network
    Create {
        /// Subnet in CIDR format, e.g. 10.5.0.0/24
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway of the subnet (default: its first address)
        #[arg(long)]
        gateway: Option<String>,
        /// Restrict external access to the network
        #[arg(long)]
        internal: bool,
        /// Set metadata on the network (KEY=VALUE)
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Driver (only bridge)
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate the output
        #[arg(long)]
        no_trunc: bool,
    },
    /// Display detailed information on one or more networks
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a running container to a network
    Connect {
        /// Add network-scoped alias for the container
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// IPv4 address (e.g. 172.30.100.104)
        #[arg(long)]
        ip: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        /// Force the container to disconnect from a network
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
    /// Remove all unused networks
    Prune {
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

pub fn run(cmd: NetworkCommand, ctx: &super::Context) -> Result<()> {
    // Only connect starts a DNS server (through the engine): the others need no berth_exe.
    let store =
        NetStore::open(&ctx.global.root, Path::new("")).context("open the network store")?;
    match cmd {
        NetworkCommand::Create {
            subnet,
            gateway,
            internal,
            labels,
            driver,
            name,
        } => {
            if driver != "bridge" {
                bail!("network driver {driver:?} is not supported; use bridge");
            }
            let req = NetworkCreate {
                name,
                subnet: subnet.map(|s| s.parse::<Subnet>()).transpose()?,
                gateway: gateway
                    .map(|g| {
                        g.parse::<Ipv4Addr>()
                            .with_context(|| format!("invalid gateway {g:?}"))
                    })
                    .transpose()?,
                internal,
                labels: parse_labels(&labels)?,
            };
            outln!("{}", store.create_network(&req)?.id);
            Ok(())
        }
        NetworkCommand::Ls { quiet, no_trunc } => ls(&store, quiet, no_trunc),
        NetworkCommand::Inspect { networks } => {
            let mut out = Vec::new();
            for n in &networks {
                let net = store.network(n)?;
                out.push(inspect_json(&net, &store.leases(&net)?));
            }
            outln!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        NetworkCommand::Rm { networks } => rm(&store, &networks),
        NetworkCommand::Prune { force } => prune(&store, force),
        NetworkCommand::Connect {
            aliases,
            ip,
            network,
            container,
        } => {
            let engine = ctx.engine()?;
            let att = berth_engine::network::connect(
                &engine,
                &container,
                &network,
                &aliases,
                ip.as_deref(),
            )?;
            for w in &att.warnings {
                eprintln!("berth: warning: {w}");
            }
            Ok(())
        }
        NetworkCommand::Disconnect {
            force: _,
            network,
            container,
        } => Ok(berth_engine::network::disconnect(
            &ctx.engine()?,
            &container,
            &network,
        )?),
    }
}

fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            None if !l.is_empty() => Ok((l.clone(), String::new())),
            _ => bail!("invalid label {l:?}: use KEY=VALUE"),
        })
        .collect()
}

fn ls(store: &NetStore, quiet: bool, no_trunc: bool) -> Result<()> {
    let nets = store.networks()?;
    let id = |n: &Network| {
        if no_trunc {
            n.id.clone()
        } else {
            n.id[..12].to_string()
        }
    };
    if quiet {
        nets.iter().for_each(|n| outln!("{}", id(n)));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = nets
        .iter()
        .map(|n| vec![id(n), n.name.clone(), n.driver.clone(), "local".to_string()])
        .collect();
    crate::format::print_table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
    Ok(())
}

fn rm(store: &NetStore, networks: &[String]) -> Result<()> {
    let mut failures = Vec::new();
    for n in networks {
        let res = match store.network(n) {
            Ok(net) if net.default => Err(anyhow::anyhow!(
                "{n} is a pre-defined network and cannot be removed"
            )),
            Ok(net) => store.remove_network(&net.id).map_err(Into::into),
            Err(e) => Err(e.into()),
        };
        match res {
            Ok(()) => outln!("{n}"),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

fn prune(store: &NetStore, force: bool) -> Result<()> {
    let what = "This will remove all custom networks not used by at least one container.";
    if !super::confirmed(force, what)? {
        return Ok(());
    }
    let removed = store.prune_networks()?;
    if !removed.is_empty() {
        outln!("Deleted Networks:");
        removed.iter().for_each(|n| outln!("{n}"));
    }
    Ok(())
}

/// A network's `inspect` object, for `berth inspect`; `None` when there is no such network.
pub fn inspect_one(ctx: &super::Context, key: &str) -> Result<Option<Value>> {
    let store =
        NetStore::open(&ctx.global.root, Path::new("")).context("open the network store")?;
    match store.network(key) {
        Ok(net) => Ok(Some(inspect_json(&net, &store.leases(&net)?))),
        Err(berth_net::NetError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Docker's `network inspect` object.
fn inspect_json(net: &Network, leases: &Leases) -> Value {
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
    let mut options = serde_json::Map::new();
    options.insert("com.docker.network.bridge.name".into(), json!(net.bridge));
    if net.default {
        options.insert(
            "com.docker.network.bridge.default_bridge".into(),
            json!("true"),
        );
    }
    json!({
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{ "Subnet": net.subnet.to_string(), "Gateway": net.gateway.to_string() }],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_like_docker() {
        let l = parse_labels(&["a=1".into(), "b".into(), "c=x=y".into()]).unwrap();
        assert_eq!(l["a"], "1");
        assert_eq!(l["b"], "");
        assert_eq!(l["c"], "x=y");
        assert!(parse_labels(&["=v".into()]).is_err());
    }

    #[test]
    fn inspect_has_docker_fields() {
        let net = Network {
            id: "ab".repeat(32),
            name: "front".into(),
            driver: "bridge".into(),
            bridge: "berth-ababababa".into(),
            subnet: "10.5.0.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 5, 0, 1),
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
        let leases = Leases::from([(Ipv4Addr::new(10, 5, 0, 2), lease)]);
        let v = inspect_json(&net, &leases);
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.5.0.0/24");
        assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "10.5.0.1");
        assert_eq!(v["Internal"], true);
        assert_eq!(v["Containers"]["c1"]["IPv4Address"], "10.5.0.2/24");
        assert_eq!(v["Labels"]["k"], "v");
        assert_eq!(
            v["Options"]["com.docker.network.bridge.name"],
            "berth-ababababa"
        );
    }
}
