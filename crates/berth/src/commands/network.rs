//! `berth network`: create, ls, inspect (Docker's JSON), rm and prune of bridge networks;
//! connect and disconnect of containers.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use berth_engine::filters::Filters;
use berth_engine::{network, Engine};
use berth_net::Network;
use clap::Subcommand;

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
        /// Allocate container addresses from a sub-range (CIDR inside the subnet)
        #[arg(long)]
        ip_range: Option<String>,
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
        /// Provide filter values (e.g. "driver=bridge")
        #[arg(short, long)]
        filter: Vec<String>,
        /// Pretty-print networks using a Go template, or "json"
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more networks
    Inspect(crate::container::inspect::InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a container to a network
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
        /// Provide filter values (e.g. "until=<timestamp>")
        #[arg(long)]
        filter: Vec<String>,
    },
}

pub fn run(cmd: NetworkCommand, ctx: &super::Context) -> Result<i32> {
    if let NetworkCommand::Inspect(args) = cmd {
        use crate::container::inspect::{run, Kind};
        return run(ctx, args, &[Kind::Network]);
    }
    run_one(cmd, ctx).map(|()| 0)
}

fn run_one(cmd: NetworkCommand, ctx: &super::Context) -> Result<()> {
    let engine = ctx.engine()?;
    match cmd {
        NetworkCommand::Create {
            subnet,
            gateway,
            ip_range,
            internal,
            labels,
            driver,
            name,
        } => {
            let req = network::CreateRequest {
                name,
                driver,
                subnet,
                gateway,
                ip_range,
                internal,
                labels: parse_labels(&labels)?,
            };
            outln!("{}", network::create(&engine, &req)?.id);
            Ok(())
        }
        NetworkCommand::Ls {
            quiet,
            no_trunc,
            filter,
            format,
        } => {
            let filters = Filters::parse(&filter, network::LIST_FILTERS)?;
            ls(&engine, &filters, quiet, no_trunc, format.as_deref())
        }
        // Answered in `run`.
        NetworkCommand::Inspect(_) => Ok(()),
        NetworkCommand::Rm { networks } => rm(&engine, &networks),
        NetworkCommand::Prune { force, filter } => {
            let filters = Filters::parse(&filter, network::PRUNE_FILTERS)?;
            prune(&engine, force, &filters)
        }
        NetworkCommand::Connect {
            aliases,
            ip,
            network,
            container,
        } => {
            let att = network::connect(&engine, &container, &network, &aliases, ip.as_deref())?;
            for w in att.iter().flat_map(|a| &a.warnings) {
                eprintln!("berth: warning: {w}");
            }
            Ok(())
        }
        NetworkCommand::Disconnect {
            force,
            network,
            container,
        } => Ok(network::disconnect(&engine, &container, &network, force)?),
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

fn ls(
    engine: &Engine,
    filters: &Filters,
    quiet: bool,
    no_trunc: bool,
    format: Option<&str>,
) -> Result<()> {
    let nets = network::list(engine, filters)?;
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
    let items: Vec<serde_json::Value> = nets
        .iter()
        .map(|n| {
            serde_json::json!({
                "ID": id(n),
                "Name": n.name,
                "Driver": n.driver,
                "Scope": "local",
                "IPv6": "false",
                "Internal": n.internal.to_string(),
                "CreatedAt": n.created,
                "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            })
        })
        .collect();
    let source = format.unwrap_or("table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}");
    if source == "json" {
        items.iter().for_each(|i| outln!("{i}"));
        return Ok(());
    }
    const TITLES: &[(&str, &str)] = &[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("CreatedAt", "CREATED AT"),
        ("Labels", "LABELS"),
    ];
    let template = crate::template::parse(source)?;
    crate::format::print_raw(&crate::format::render_list(&template, TITLES, &items)?);
    Ok(())
}

fn rm(engine: &Engine, networks: &[String]) -> Result<()> {
    let mut failures = Vec::new();
    for n in networks {
        match network::remove(engine, n) {
            Ok(()) => outln!("{n}"),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

fn prune(engine: &Engine, force: bool, filters: &Filters) -> Result<()> {
    let what = "This will remove all custom networks not used by at least one container.";
    if !super::confirmed(force, what)? {
        return Ok(());
    }
    let removed = network::prune(engine, filters)?;
    if !removed.is_empty() {
        outln!("Deleted Networks:");
        removed.iter().for_each(|n| outln!("{n}"));
    }
    Ok(())
}

/// A network's `inspect` object, for `berth inspect`; `None` when there is no such network.
pub fn inspect_one(ctx: &super::Context, key: &str) -> Result<Option<serde_json::Value>> {
    match network::inspect(&ctx.engine()?, key) {
        Ok(v) => Ok(Some(v)),
        Err(berth_engine::Error::Net(berth_net::NetError::NotFound(_))) => Ok(None),
        Err(e) => Err(e.into()),
    }
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
}
